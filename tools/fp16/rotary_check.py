#!/usr/bin/env python3
"""Rotary check: the cos table a float16 model uses, against the float32 model's, at every position.

For each Llama-architecture export given, this converts the model with onnx-rewrite
(``apply --passes fp16``, default options) and with onnxruntime's transformers converter
(``convert_float_to_float16(keep_io_types=True)``), then cuts from each model the cone that
computes the cos table (``onnx.utils.Extractor``: graph inputs → the tensor the attention reads)
and runs it on onnxruntime CPU with position ids 0..N-1. "The tensor the attention reads" is the
Cos output or, where the converter cast it, that Cast's output (what meets q and k). The figure is
the largest |cos16 - cos32| over every position and channel, and the largest per 1024-position band.

    .venv/bin/python tools/fp16/rotary_check.py --tool target/release/onnx-rewrite \
        testdata/models/llama_legacy testdata/models/llama_dynamo [--positions 8192] [--json out.json]
"""

from __future__ import annotations

import argparse
import json
import subprocess
import sys
import tempfile
from pathlib import Path

import numpy as np
import onnx
import onnxruntime as ort
from onnx.utils import Extractor


def cos_tensor(model: onnx.ModelProto, cos_node: str) -> tuple[str, str]:
    """(tensor the attention reads, the tensor of the float32 model it stands for).

    Walks forward from the Cos node named `cos_node` to the first Cast to float16/bfloat16 (where
    the kept-float32 chain meets q and k); the Cast's input names the float32 model's tensor.
    Without such a Cast (the converter computed Cos in float16 itself) it is the Cos output."""
    node = next((n for n in model.graph.node if n.name == cos_node), None)
    if node is None:
        raise SystemExit(f"no node {cos_node} in the converted model")
    readers: dict[str, list] = {}
    for n in model.graph.node:
        for i in n.input:
            readers.setdefault(i, []).append(n)
    frontier, seen = [node.output[0]], set()
    while frontier:
        value = frontier.pop(0)
        if value in seen:
            continue
        seen.add(value)
        for n in readers.get(value, []):
            to = next((a.i for a in n.attribute if a.name == "to"), None)
            if n.op_type == "Cast" and to in (onnx.TensorProto.FLOAT16, onnx.TensorProto.BFLOAT16):
                return n.output[0], n.input[0]
            frontier.extend(o for o in n.output if o)
    return node.output[0], node.output[0]


def run_cone(model: onnx.ModelProto, tensor: str, positions: int) -> np.ndarray:
    inputs = [i.name for i in model.graph.input]
    # Extractor needs value_info for the output; shape inference gives it.
    model = onnx.shape_inference.infer_shapes(model)
    cone = Extractor(model).extract_model(inputs, [tensor])
    used = {i.name for i in cone.graph.input}
    feeds = {
        "input_ids": np.zeros((1, positions), np.int64),
        "attention_mask": np.ones((1, positions), np.int64),
        "position_ids": np.arange(positions, dtype=np.int64)[None, :],
    }
    feeds = {k: v for k, v in feeds.items() if k in used}
    options = ort.SessionOptions()
    options.log_severity_level = 4
    session = ort.InferenceSession(cone.SerializeToString(), options, providers=["CPUExecutionProvider"])
    (out,) = session.run([tensor], feeds)
    return np.asarray(out, dtype=np.float64).reshape(positions, -1)


def check(folder: Path, tool: str, positions: int) -> dict:
    source = onnx.load(str(folder / "model.onnx"))
    cos_nodes = [n.name for n in source.graph.node if n.op_type == "Cos"]
    if len(cos_nodes) != 1 or not cos_nodes[0]:
        raise SystemExit(f"{folder}: expected one named Cos node, found {cos_nodes}")
    cos_node = cos_nodes[0]
    result: dict = {"model": folder.name, "positions": positions, "cos_node": cos_node}
    with tempfile.TemporaryDirectory(prefix="rotary-") as tmp:
        ours_path = Path(tmp) / "ours.onnx"
        subprocess.run([tool, "apply", str(folder / "model.onnx"), "-o", str(ours_path), "--passes", "fp16", "-q"], check=True)
        ours = onnx.load(str(ours_path))
    from onnxruntime.transformers.float16 import convert_float_to_float16

    theirs = convert_float_to_float16(onnx.load(str(folder / "model.onnx")), keep_io_types=True)
    for label, model in (("onnx_rewrite", ours), ("onnxruntime", theirs)):
        tensor, reference_tensor = cos_tensor(model, cos_node)
        reference = run_cone(source, reference_tensor, positions)
        got = run_cone(model, tensor, positions)
        err = np.abs(got - reference)
        bands = {f"{lo}-{lo + 1023}": float(err[lo : lo + 1024].max()) for lo in range(0, positions, 1024)}
        result[label] = {
            "tensor": tensor,
            "float32_tensor": reference_tensor,
            "dtype": str(np.asarray(got).dtype),
            "max_abs_error": float(err.max()),
            "worst_position": int(np.unravel_index(err.argmax(), err.shape)[0]),
            "max_abs_error_by_band": bands,
        }
    return result


def main() -> int:
    ap = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    ap.add_argument("--tool", required=True)
    ap.add_argument("--positions", type=int, default=8192)
    ap.add_argument("--json", type=Path)
    ap.add_argument("models", nargs="+", type=Path)
    args = ap.parse_args()
    tool = str(Path(args.tool).resolve())
    results = [check(m, tool, args.positions) for m in args.models]
    for r in results:
        print(
            f"{r['model']}: positions 0..{r['positions'] - 1}: max |cos - cos32| "
            f"onnx-rewrite {r['onnx_rewrite']['max_abs_error']:.3g} (at {r['onnx_rewrite']['worst_position']}), "
            f"onnxruntime {r['onnxruntime']['max_abs_error']:.3g} (at {r['onnxruntime']['worst_position']})"
        )
    if args.json:
        args.json.write_text(json.dumps(results, indent=1) + "\n")
    return 0 if all(r["onnx_rewrite"]["max_abs_error"] <= 1e-3 for r in results) else 1


if __name__ == "__main__":
    sys.exit(main())
