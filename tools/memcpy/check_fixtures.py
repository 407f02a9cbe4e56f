#!/usr/bin/env python3
"""Checks `--passes hoist-scalars` on the pattern fixtures by execution on onnxruntime (CPU).

The Rust tests check most fixtures with tract; this covers every fixture, tract-less ops
included (`SplitToSequence`), on inputs where each symbolic dim has its own size, and checks
that applying the pass again changes nothing.

    python tools/memcpy/check_fixtures.py --tool target/release/onnx-rewrite
"""

from __future__ import annotations

import argparse
import sys
import tempfile
from pathlib import Path

import numpy as np
import onnx
import onnx.parser
import onnxruntime as ort

ROOT = Path(__file__).resolve().parents[2]
FIXTURES = ROOT / "passes/hoist-scalars/tests/fixtures/patterns"
RTOL, ATOL = 1e-5, 1e-6
SIZES = [[2, 3, 5, 7], [3, 1, 4, 2], [1, 6, 2, 3]]


def inputs(model: onnx.ModelProto, sizes: list[int], rng: np.random.Generator) -> dict:
    named: dict[str, int] = {}
    feed = {}
    for i in model.graph.input:
        t = i.type.tensor_type
        shape = []
        for d in t.shape.dim:
            if d.HasField("dim_value"):
                shape.append(d.dim_value)
            else:
                shape.append(named.setdefault(d.dim_param, sizes[len(named) % len(sizes)]))
        dtype = onnx.helper.tensor_dtype_to_np_dtype(t.elem_type)
        if np.issubdtype(dtype, np.integer):
            feed[i.name] = rng.integers(0, 5, size=shape).astype(dtype)
        else:
            feed[i.name] = rng.uniform(-2, 2, size=shape).astype(dtype)
    return feed


def run(path: Path, feed: dict) -> list:
    so = ort.SessionOptions()
    so.graph_optimization_level = ort.GraphOptimizationLevel.ORT_DISABLE_ALL
    so.log_severity_level = 3
    return ort.InferenceSession(str(path), so, providers=["CPUExecutionProvider"]).run(None, feed)


def main() -> int:
    ap = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    ap.add_argument("--tool", type=Path, required=True)
    args = ap.parse_args()
    import subprocess

    failures = 0
    with tempfile.TemporaryDirectory() as td:
        tmp = Path(td)
        for fixture in sorted(FIXTURES.glob("*.onnxtxt")):
            model = onnx.parser.parse_model(fixture.read_text())
            before, after, again = (tmp / f"{fixture.stem}.{k}.onnx" for k in ("before", "after", "again"))
            onnx.save(model, str(before))
            ok, detail = True, ""
            for src, dst in ((before, after), (after, again)):
                proc = subprocess.run([str(args.tool), "apply", str(src), "-o", str(dst), "--passes", "hoist-scalars", "-q"],
                                      capture_output=True, text=True)
                if proc.returncode != 0:
                    ok, detail = False, f"apply exit {proc.returncode}: {proc.stderr.strip()[:200]}"
                    break
            if ok and again.read_bytes() != after.read_bytes():
                ok, detail = False, "not idempotent"
            if ok:
                onnx.checker.check_model(str(after), full_check=True)
                rng = np.random.default_rng(7)
                worst = 0.0
                for sizes in SIZES:
                    feed = inputs(model, sizes, rng)
                    for i, (g, w) in enumerate(zip(run(after, feed), run(before, feed))):
                        if g.shape != w.shape or not np.allclose(g.astype(np.float64), w.astype(np.float64), rtol=RTOL, atol=ATOL):
                            ok, detail = False, f"output {i} differs for sizes {sizes}"
                        elif g.size:
                            worst = max(worst, float(np.max(np.abs(g.astype(np.float64) - w.astype(np.float64)))))
                if ok:
                    detail = f"max abs error {worst:.3g}"
            failures += not ok
            print(f"{'PASS' if ok else 'FAIL'}  {fixture.stem:<28} {detail}")
    print(f"{failures} failure(s)")
    return 1 if failures else 0


if __name__ == "__main__":
    sys.exit(main())
