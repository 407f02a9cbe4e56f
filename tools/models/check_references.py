#!/usr/bin/env python3
"""Apply pass lists to the real exports and compare the output with the stored PyTorch outputs.

`check_passes.py` takes the ORIGINAL model's onnxruntime outputs as the reference. That is the
right oracle for a pass that must not change what a model computes, and the wrong one where
the original is itself wrong or does not run: a baked MoE trace (wrong for tokens routed to the
experts it dropped) or a `com.microsoft.MoE` fused for CUDA (onnxruntime's CPU kernel refuses
it). Every `test_data_set_*/output_*.pb` in testdata/models holds PyTorch's outputs
(make_models.py), so this script compares the REWRITTEN model, run on onnxruntime CPU, with
them. For every model and pass list:
  1. `onnx-rewrite apply model.onnx -o out.onnx --passes LIST` must exit 0 (or, for a model
     named with --expect-refusal, exit 2 and write nothing);
  2. the output passes `onnx.checker.check_model(full_check=True)` when the original does;
  3. `--forbid OP` ops (`com.microsoft.MoE` for a contrib-domain op) are gone;
  4. every stored data set runs on onnxruntime CPU and matches the PyTorch outputs within the
     pass list's tolerance row (DESIGN.md);
  5. applying the same list to the output changes nothing;
  6. what users' tools ask still holds (tools/common/deployable.py): default session options
     load and run the output when they do the original, and onnx's strict shape inference with
     data propagation accepts it when it accepts the original.
The original model's own agreement with PyTorch is printed beside it, for context.

    python3 tools/models/check_references.py --tool target/release/onnx-rewrite \\
        --passes moe-dense --forbid moe-dense=NonZero --forbid moe-dense=com.microsoft.MoE \\
        --expect-refusal moe-dense=moe_baked_weights_missing moe_baked_weights_present ...

Prints one line per model and pass list (worst error per data set) and exits 1 on any failure.
"""

from __future__ import annotations

import subprocess
import sys
from pathlib import Path

import onnx
import onnxruntime as ort
from onnx import numpy_helper

from check_passes import datasets, deployability_regressions, ops, run_checks, tolerance, worst_error


def run(path: Path, inputs):
    """onnxruntime CPU, no graph optimizations; session logs off (the originals this script
    exists for fail on purpose, and the failure is reported in the model's line)."""
    options = ort.SessionOptions()
    options.graph_optimization_level = ort.GraphOptimizationLevel.ORT_DISABLE_ALL
    options.log_severity_level = 4
    sess = ort.InferenceSession(str(path), options, providers=["CPUExecutionProvider"])
    feed = {i.name: x for i, x in zip(sess.get_inputs(), inputs)}
    return sess.run(None, feed)


def references(folder: Path, name: str):
    outputs = sorted((folder / name).glob("output_*.pb"), key=lambda p: int(p.stem.split("_")[1]))
    result = []
    for p in outputs:
        t = onnx.TensorProto()
        t.ParseFromString(p.read_bytes())
        result.append(numpy_helper.to_array(t))
    return result


def check(tool: Path, folder: Path, passes: str, forbid: list[str], refusals: set[str], tmp: Path) -> tuple[bool, str]:
    model_path = folder / "model.onnx"
    out = tmp / f"{folder.name}.onnx"
    again = tmp / f"{folder.name}.again.onnx"
    first, *extra = passes.split()
    args = [str(tool), "apply", str(model_path), "-o", str(out), "--passes", first, "-q", *extra]
    proc = subprocess.run(args, capture_output=True, text=True)
    if folder.name in refusals:
        if proc.returncode == 2 and not out.exists():
            last = proc.stderr.strip().splitlines()[-1] if proc.stderr.strip() else ""
            return True, f"refused as expected (exit 2, nothing written): {last}"
        return False, f"expected a refusal (exit 2, nothing written), got exit {proc.returncode}"
    if proc.returncode != 0:
        return False, f"exit {proc.returncode}: {proc.stderr.strip()[:400]}"
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
    rewritten = onnx.load(str(out))
    present = [op for op in forbid if ops(rewritten)[op]]
    if present:
        return False, f"forbidden ops left: {present}"
    regressed = deployability_regressions(out, folder)
    if regressed:
        return False, regressed
    rtol, atol = tolerance(passes)
    notes = []
    for name, inputs in datasets(folder):
        want = references(folder, name)
        try:
            got = run(out, inputs)
        except Exception as e:  # noqa: BLE001 - a rewritten model that does not run is a failure
            return False, f"{name}: rewritten model fails on ORT: {str(e)[:300]}"
        ok, detail = worst_error(got, want, rtol, atol)
        if not ok:
            return False, f"{name}: rewritten vs PyTorch: {detail}"
        try:
            _, before = worst_error(run(model_path, inputs), want, rtol, atol)
        except Exception as e:  # noqa: BLE001 - context only
            before = f"does not run ({str(e).splitlines()[0][:60]})"
        notes.append(f"{name}: {detail.replace('max abs error ', '')} (original: {before})")
    proc = subprocess.run([args[0], args[1], str(out), "-o", str(again), *args[5:]], capture_output=True, text=True)
    if proc.returncode != 0 or again.read_bytes() != out.read_bytes():
        return False, f"not idempotent (second apply exit {proc.returncode})"
    return True, "; ".join(notes)


if __name__ == "__main__":
    sys.exit(run_checks(check, __doc__, against=" against the stored PyTorch outputs"))
