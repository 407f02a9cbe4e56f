#!/usr/bin/env python3
"""Replay every stored data set of testdata/models/ on onnxruntime (CPU) and compare with the
stored PyTorch reference outputs. Needs only onnx, onnxruntime and numpy (no torch).

    python3 testdata/models/check_models.py [--dir testdata/models] [--rtol 1e-4] [--atol 1e-5] [NAME ...]
    python3 testdata/models/check_models.py --model OTHER.onnx --data testdata/models/NAME   # a rewritten model

One line per model/data set:
  PASS   the outputs match the stored ones (rtol/atol, shapes and dtypes equal)
  XFAIL  the data set is known not to match on ORT CPU and behaved as manifest.json says
         (a baked MoE trace that is wrong for this input, a com.microsoft.MoE that the CPU
         provider cannot run); not counted as a pass
  FAIL   anything else (a mismatch or an error that manifest.json does not expect, or an expected
         failure that no longer happens)

The last line reads 'N passed, N failed, N expected failures (XFAIL)'. Exit status 1
if anything FAILed, else 0.
"""

from __future__ import annotations

import argparse
import json
import sys
from pathlib import Path

import numpy as np
import onnx
import onnxruntime as ort
from onnx import numpy_helper

HERE = Path(__file__).resolve().parent


def load_tensor(path: Path) -> tuple[str, np.ndarray]:
    t = onnx.TensorProto()
    t.ParseFromString(path.read_bytes())
    return t.name, numpy_helper.to_array(t)


def load_dataset(d: Path):
    def collect(prefix):
        files = sorted(d.glob(f"{prefix}_*.pb"), key=lambda p: int(p.stem.split("_")[1]))
        return [load_tensor(p) for p in files]

    return collect("input"), collect("output")


def compare(got, ref, rtol, atol):
    if len(got) != len(ref):
        return False, float("inf"), f"{len(got)} outputs, expected {len(ref)}"
    worst = 0.0
    for i, (g, (name, r)) in enumerate(zip(got, ref)):
        g = np.asarray(g)
        if g.shape != r.shape:
            return False, float("inf"), f"output {i} ({name}): shape {g.shape}, expected {r.shape}"
        if g.dtype != r.dtype:
            return False, float("inf"), f"output {i} ({name}): dtype {g.dtype}, expected {r.dtype}"
        if g.size == 0:
            continue
        if np.issubdtype(r.dtype, np.floating):
            d = float(np.max(np.abs(g.astype(np.float64) - r.astype(np.float64))))
            ok = bool(np.allclose(g, r, rtol=rtol, atol=atol, equal_nan=True))
        else:
            d = float(np.max(np.abs(g.astype(np.int64) - r.astype(np.int64))))
            ok = bool(np.array_equal(g, r))
        worst = max(worst, d)
        if not ok:
            return False, worst, f"output {i} ({name}): max abs diff {d:.3g}"
    return True, worst, ""


def session(model_path: Path):
    so = ort.SessionOptions()
    so.log_severity_level = 4
    return ort.InferenceSession(str(model_path), so, providers=["CPUExecutionProvider"])


def run_one(sess, inputs):
    feed = {}
    names = [i.name for i in sess.get_inputs()]
    for k, (name, arr) in enumerate(inputs):
        feed[name if name in names else names[k]] = arr
    return sess.run(None, feed)


def check_model(name, model_path, data_dir, expectations, rtol, atol, counts):
    ds_dirs = sorted(data_dir.glob("test_data_set_*"), key=lambda p: int(p.name.rsplit("_", 1)[1]))
    if not ds_dirs:
        print(f"FAIL   {name}: no test_data_set_* folder")
        counts["failed"] += 1
        return
    sess, load_err = None, None
    try:
        sess = session(model_path)
    except Exception as e:  # noqa: BLE001
        load_err = " ".join(str(e).split())[:300]
    for d in ds_dirs:
        exp = expectations.get(d.name, {"expect": "match", "reason": ""})
        label = f"{name}/{d.name}"
        inputs, ref = load_dataset(d)
        if load_err is not None:
            outcome, diff, detail = "error", None, f"session creation failed: {load_err}"
        else:
            try:
                got = run_one(sess, inputs)
                ok, diff, detail = compare(got, ref, rtol, atol)
                outcome = "match" if ok else "mismatch"
            except Exception as e:  # noqa: BLE001
                outcome, diff, detail = "error", None, " ".join(str(e).split())[:300]
        diff_txt = "" if diff is None else f" max_abs_diff={diff:.3g}"
        if outcome == "match" and exp["expect"] == "match":
            print(f"PASS   {label}{diff_txt}")
            counts["passed"] += 1
        elif outcome == exp["expect"]:
            print(f"XFAIL  {label}: {outcome} as expected ({exp['reason']}){diff_txt}; {detail}")
            counts["xfail"] += 1
        else:
            print(f"FAIL   {label}: {outcome}, expected {exp['expect']}{diff_txt}; {detail}")
            counts["failed"] += 1


def main() -> int:
    ap = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    ap.add_argument("names", nargs="*", help="models to check (default: every folder with a model.onnx)")
    ap.add_argument("--dir", type=Path, default=HERE)
    ap.add_argument("--rtol", type=float, default=None, help="default: manifest.json's (1e-4)")
    ap.add_argument("--atol", type=float, default=None, help="default: manifest.json's (1e-5)")
    ap.add_argument("--model", type=Path, help="check this model file against --data's data sets instead")
    ap.add_argument("--data", type=Path, help="a model folder whose test_data_set_* to use with --model")
    args = ap.parse_args()

    manifest_path = args.dir / "manifest.json"
    manifest = json.loads(manifest_path.read_text()) if manifest_path.exists() else {"models": [], "failures": []}
    tol = manifest.get("tolerance", {})
    rtol = args.rtol if args.rtol is not None else tol.get("rtol", 1e-4)
    atol = args.atol if args.atol is not None else tol.get("atol", 1e-5)
    expect = {m["name"]: {d["dir"]: d for d in m["datasets"]} for m in manifest["models"]}
    print(f"onnxruntime {ort.__version__}, onnx {onnx.__version__}, numpy {np.__version__}; rtol {rtol:g}, atol {atol:g}")
    counts = {"passed": 0, "failed": 0, "xfail": 0}

    if args.model:
        if not args.data:
            sys.exit("--model needs --data")
        name = args.data.name
        check_model(f"{args.model} on {name}", args.model, args.data, expect.get(name, {}), rtol, atol, counts)
    else:
        folders = sorted(p.parent for p in args.dir.glob("*/model.onnx"))
        if args.names:
            folders = [args.dir / n for n in args.names]
        for f in folders:
            if not (f / "model.onnx").exists():
                print(f"FAIL   {f.name}: no model.onnx")
                counts["failed"] += 1
                continue
            check_model(f.name, f / "model.onnx", f, expect.get(f.name, {}), rtol, atol, counts)
        for fail in manifest.get("failures", []):
            if not args.names or fail["name"] in args.names:
                print(f"NOTE   {fail['name']}: not produced, the export failed: {fail['error'][:200]}")

    print(
        f"models: {counts['passed']} passed, {counts['failed']} failed, "
        f"{counts['xfail']} expected failures (XFAIL, each with its reason above)"
    )
    return 1 if counts["failed"] else 0


if __name__ == "__main__":
    sys.exit(main())
