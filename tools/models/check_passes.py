#!/usr/bin/env python3
"""Apply pass lists to the real exports in testdata/models and check them by execution.

For every model folder and every pass list:
  1. `onnx-rewrite apply model.onnx -o out.onnx --passes LIST` must exit 0 (or 2 when the
     model is listed under --expect-refusal, which must then write nothing);
  2. the output must pass `onnx.checker.check_model(full_check=True)` when the original does;
  3. every stored data set runs on onnxruntime (CPU, no graph optimizations) with the original
     and with the output: outputs must agree within the pass's tolerance row (DESIGN.md);
  4. applying the same list to the output must change nothing (idempotence);
  5. `--forbid OP` ops must not appear in the output (e.g. `--forbid Gemm`);
  6. what users' tools ask must still hold (tools/common/deployable.py): when the original loads
     and runs with onnxruntime's default session options, so must the output, and when onnx's
     strict shape inference with data propagation accepts the original, it must accept the output.

`--ep cuda` runs the rewritten model on onnxruntime's CUDA EP (the original stays the CPU
oracle): the CPU EP upcasts float16 nodes it has no float16 kernel for, which hides overflow,
so a float16 model is only fully checked on a GPU. It needs onnxruntime-gpu (1.32.0).

    python3 tools/models/check_passes.py --tool target/release/onnx-rewrite \\
        --passes egraph --passes gemm-to-matmul --forbid gemm-to-matmul=Gemm [NAME ...]

Prints one line per model and pass list, the op counts that changed, and exits 1 on any failure.
"""

from __future__ import annotations

import argparse
import functools
import subprocess
import sys
import tempfile
from collections import Counter
from pathlib import Path

import numpy as np
import onnx
import onnxruntime as ort

ort.set_default_logger_severity(3)
from onnx import numpy_helper

ROOT = Path(__file__).resolve().parents[2]
MODELS = ROOT / "testdata" / "models"
sys.path.insert(0, str(ROOT / "tools" / "common"))
import deployable  # noqa: E402 - found through the path set above

# DESIGN.md's tolerance table.
TOLERANCE = {"moe-dense": (1e-4, 1e-5), "fp16": (2e-2, 2e-2), "bf16": (5e-2, 5e-2)}
DEFAULT_TOLERANCE = (1e-5, 1e-6)


def tolerance(passes: str) -> tuple[float, float]:
    rtol, atol = DEFAULT_TOLERANCE
    names = passes.replace(",", " ").split()
    if "all" in names:
        # `all` runs every pass (onnx-rewrite passes): the loosest row is fp16's.
        names += ["moe-dense", "fp16"]
    for name in names:
        r, a = TOLERANCE.get(name, DEFAULT_TOLERANCE)
        rtol, atol = max(rtol, r), max(atol, a)
    if "bf16" in passes or "bfloat16" in passes:
        rtol, atol = max(rtol, 5e-2), max(atol, 5e-2)
    return rtol, atol


def ops(model: onnx.ModelProto) -> Counter:
    counts: Counter = Counter()

    def walk(graph: onnx.GraphProto) -> None:
        for node in graph.node:
            counts[f"{node.domain + '.' if node.domain else ''}{node.op_type}"] += 1
            for attr in node.attribute:
                if attr.type == onnx.AttributeProto.GRAPH:
                    walk(attr.g)
                for g in attr.graphs:
                    walk(g)

    walk(model.graph)
    for f in model.functions:
        for node in f.node:
            counts[node.op_type] += 1
    return counts


def datasets(folder: Path):
    for d in sorted(folder.glob("test_data_set_*")):
        inputs = []
        for p in sorted(d.glob("input_*.pb"), key=lambda p: int(p.stem.split("_")[1])):
            t = onnx.TensorProto()
            t.ParseFromString(p.read_bytes())
            inputs.append(numpy_helper.to_array(t))
        yield d.name, inputs


# The EPs the rewritten model runs on (`--ep`); the original always runs on the CPU EP.
PROVIDERS = {"cpu": ["CPUExecutionProvider"], "cuda": ["CUDAExecutionProvider", "CPUExecutionProvider"]}
REWRITTEN_PROVIDERS = PROVIDERS["cpu"]


def run(path: Path, inputs, providers=PROVIDERS["cpu"]):
    options = ort.SessionOptions()
    options.graph_optimization_level = ort.GraphOptimizationLevel.ORT_DISABLE_ALL
    options.log_severity_level = 3
    sess = ort.InferenceSession(str(path), options, providers=providers)
    feed = {i.name: x for i, x in zip(sess.get_inputs(), inputs)}
    return sess.run(None, feed)


def worst_error(got, ref, rtol: float, atol: float) -> tuple[bool, str]:
    worst = 0.0
    for i, (g, r) in enumerate(zip(got, ref)):
        g, r = np.asarray(g), np.asarray(r)
        if g.shape != r.shape:
            return False, f"output {i}: shape {g.shape} vs {r.shape}"
        if g.dtype.kind in "fc" or r.dtype.kind in "fc":
            g64, r64 = g.astype(np.float64), r.astype(np.float64)
            if not np.allclose(g64, r64, rtol=rtol, atol=atol, equal_nan=True):
                diff = np.nanmax(np.abs(g64 - r64)) if g.size else 0.0
                return False, f"output {i}: max abs error {diff:.3g} over rtol={rtol} atol={atol}"
            if g.size:
                worst = max(worst, float(np.nanmax(np.abs(g64 - r64))))
        elif not np.array_equal(g, r):
            return False, f"output {i}: values differ"
    return True, f"max abs error {worst:.3g}"


def run_datasets(folder: Path):
    """Runs every stored data set of `folder` in a session (what deployable.py's checks run)."""

    def run_all(session) -> None:
        for _, inputs in datasets(folder):
            session.run(None, {i.name: x for i, x in zip(session.get_inputs(), inputs)})

    return run_all


@functools.cache
def original_deployability(folder: Path) -> deployable.Deployability:
    """The original's checks, once per model whatever the number of pass lists."""
    return deployable.deployability(folder / "model.onnx", run_datasets(folder))


def deployability_regressions(rewritten: Path, folder: Path) -> str | None:
    """None unless a check users' tools make passes on the original and fails on the output."""
    found = deployable.regressions(original_deployability(folder), rewritten, run_datasets(folder))
    return "; ".join(found) or None


def check(tool: Path, folder: Path, passes: str, forbid: list[str], refusals: set[str], tmp: Path) -> tuple[bool, str]:
    model_path = folder / "model.onnx"
    out = tmp / f"{folder.name}.onnx"
    again = tmp / f"{folder.name}.again.onnx"
    first, *extra = passes.split()
    args = [str(tool), "apply", str(model_path), "-o", str(out), "--passes", first, "-q", *extra]
    proc = subprocess.run(args, capture_output=True, text=True)
    if folder.name in refusals:
        if proc.returncode == 2 and not out.exists():
            return True, f"refused as expected: {proc.stderr.strip().splitlines()[-1] if proc.stderr.strip() else ''}"
        return False, f"expected a refusal (exit 2, nothing written), got exit {proc.returncode}"
    if proc.returncode != 0:
        return False, f"exit {proc.returncode}: {proc.stderr.strip()[:400]}"
    original, rewritten = onnx.load(str(model_path)), onnx.load(str(out))
    try:
        onnx.checker.check_model(str(model_path), full_check=True)
        original_checks = True
    except Exception:  # noqa: BLE001 - the original's own failure is only context
        original_checks = False
    if original_checks:
        try:
            onnx.checker.check_model(str(out), full_check=True)
        except Exception as e:  # noqa: BLE001 - reported as the failure it is
            return False, f"checker: {str(e)[:300]}"
    present = [op for op in forbid if ops(rewritten)[op]]
    if present:
        return False, f"forbidden ops left: {present}"
    regressed = deployability_regressions(out, folder)
    if regressed:
        return False, regressed
    rtol, atol = tolerance(passes)
    notes = []
    for name, inputs in datasets(folder):
        try:
            ref = run(model_path, inputs)
        except Exception as e:  # noqa: BLE001 - an original that ORT cannot run is skipped, with the reason
            notes.append(f"{name}: original does not run on ORT CPU ({str(e).splitlines()[0][:80]})")
            continue
        try:
            got = run(out, inputs, REWRITTEN_PROVIDERS)
        except Exception as e:  # noqa: BLE001 - a rewritten model that does not run is a failure
            return False, f"{name}: rewritten model fails on ORT: {str(e)[:300]}"
        ok, detail = worst_error(got, ref, rtol, atol)
        if not ok:
            return False, f"{name}: {detail}"
        notes.append(f"{name}: {detail}")
    proc = subprocess.run([args[0], args[1], str(out), "-o", str(again), *args[5:]], capture_output=True, text=True)
    if proc.returncode != 0 or again.read_bytes() != out.read_bytes():
        return False, f"not idempotent (second apply exit {proc.returncode})"
    before, after = ops(original), ops(rewritten)
    changed = {op: (before[op], after[op]) for op in sorted(set(before) | set(after)) if before[op] != after[op]}
    summary = ", ".join(f"{op} {b}->{a}" for op, (b, a) in changed.items()) or "no op count changed"
    return True, f"{summary}; {'; '.join(notes[:1])}"


def run_checks(check, doc: str, against: str = "", choose_ep: bool = False) -> int:
    """The command line both checkers share: `check(tool, folder, passes, forbid, refusals, tmp)`
    rates one model folder under one pass list; `against` names the oracle in the heading."""
    ap = argparse.ArgumentParser(description=doc, formatter_class=argparse.RawDescriptionHelpFormatter)
    ap.add_argument("names", nargs="*", help="model folders (default: all)")
    ap.add_argument("--tool", type=Path, required=True)
    ap.add_argument("--passes", action="append", required=True, help="a pass list; extra apply flags may follow in the same value")
    ap.add_argument("--forbid", action="append", default=[], help="PASSLIST=OP: OP (domain.op for other domains) must not remain")
    ap.add_argument("--expect-refusal", action="append", default=[], help="PASSLIST=MODEL: the pass must refuse MODEL (exit 2)")
    if choose_ep:
        ap.add_argument("--ep", choices=sorted(PROVIDERS), default="cpu",
                        help="onnxruntime EP for the rewritten model (the original runs on CPU)")
    args = ap.parse_args()
    args.ep = getattr(args, "ep", "cpu")
    global REWRITTEN_PROVIDERS
    REWRITTEN_PROVIDERS = PROVIDERS[args.ep]
    if args.ep == "cuda" and "CUDAExecutionProvider" not in ort.get_available_providers():
        print("error: this onnxruntime has no CUDA EP (pip install onnxruntime-gpu==1.32.0 on a machine with an NVIDIA GPU)", file=sys.stderr)
        return 2
    folders = [MODELS / n for n in args.names] if args.names else sorted(p.parent for p in MODELS.glob("*/model.onnx"))
    failures = 0
    with tempfile.TemporaryDirectory() as tmp_dir:
        tmp = Path(tmp_dir)
        for passes in args.passes:
            forbid = [f.split("=", 1)[1] for f in args.forbid if f.split("=", 1)[0] == passes]
            refusals = {f.split("=", 1)[1] for f in args.expect_refusal if f.split("=", 1)[0] == passes}
            rtol, atol = tolerance(passes)
            on = f", rewritten model on {args.ep.upper()} EP" if args.ep != "cpu" else ""
            print(f"== --passes {passes}{against}{on}  (tolerance rtol={rtol} atol={atol})")
            for folder in folders:
                ok, detail = check(args.tool, folder, passes, forbid, refusals, tmp)
                failures += not ok
                print(f"{'PASS' if ok else 'FAIL'}  {folder.name:<28} {detail}")
    print(f"{failures} failure(s)")
    return 1 if failures else 0


if __name__ == "__main__":
    sys.exit(run_checks(check, __doc__, choose_ep=True))
