#!/usr/bin/env python3
"""Dynamo exports whose per-layer scalar chains are not folded: the shape `hoist-scalars` is for.

`testdata/models/{modernbert,llama}_dynamo` are exported with the default
`torch.onnx.export(dynamo=True)`, which runs onnxscript's optimizer: it folds the attention
scale and most static-dim chains, so ORT places those graphs without a single copy. Exports
made with `optimize=False` (or with onnxscript before 0.2) keep one
`Shape(q) -> Gather -> Cast -> Sqrt -> Div` chain per layer, each rooted at its own tensor;
that is the graph behind the "56 Memcpy nodes, 8x slower" report.

This script exports the same tiny ModernBERT and Llama as testdata/models (same configs,
seeds and data sets, imported from testdata/models/make_models.py) with `optimize=False`, into

    passes/hoist-scalars/tests/exports/<name>/model.onnx
    passes/hoist-scalars/tests/exports/<name>/test_data_set_<n>/{input,output}_<i>.pb

    /tmp/models-venv/bin/python passes/hoist-scalars/tests/exports/make_exports.py
"""

from __future__ import annotations

import os
import sys
from pathlib import Path

HERE = Path(__file__).resolve().parent
ROOT = HERE.parents[3]
sys.path.insert(0, str(ROOT / "testdata" / "models"))

import make_models as mm  # noqa: E402  (re-executes with PYTHONHASHSEED=0 first)
import onnx  # noqa: E402
import torch  # noqa: E402
from onnx import numpy_helper  # noqa: E402


def export_unoptimized(module, args, names, outputs, dynamic_shapes) -> onnx.ModelProto:
    return mm.torch_dynamo_export(module, args, names, outputs, dynamic_shapes, optimize=False)


def write(name: str, model: onnx.ModelProto, datasets) -> None:
    folder = HERE / name
    folder.mkdir(exist_ok=True)
    for old in folder.glob("test_data_set_*"):
        for f in old.iterdir():
            f.unlink()
        old.rmdir()
    model = mm.normalize_model(model)
    onnx.save(model, str(folder / "model.onnx"))
    inputs = [i.name for i in model.graph.input]
    outputs = [o.name for o in model.graph.output]
    for k, ds in enumerate(datasets):
        d = folder / f"test_data_set_{k}"
        d.mkdir()
        for i, (n, x) in enumerate(zip(inputs, ds.inputs)):
            (d / f"input_{i}.pb").write_bytes(numpy_helper.from_array(x, n).SerializeToString())
        for i, (n, x) in enumerate(zip(outputs, ds.outputs)):
            (d / f"output_{i}.pb").write_bytes(numpy_helper.from_array(x, n).SerializeToString())
    print(f"{folder}: {len(model.graph.node)} nodes, {len(datasets)} data sets")


def main() -> None:
    w, cfg = mm.make_modernbert()
    gen = torch.Generator().manual_seed(2000)
    ids, mask = mm.modernbert_inputs(gen, 2, 7, [7, 5])
    B, S = torch.export.Dim("batch"), torch.export.Dim("seq")
    m = export_unoptimized(
        w, (ids, mask), mm.MB_NAMES, ["last_hidden_state"], {n: {0: B, 1: S} for n in mm.MB_NAMES}
    )
    write("modernbert_dynamo_unoptimized", m, mm.modernbert_datasets(w, cfg.local_attention))

    w, _ = mm.make_llama()
    gen = torch.Generator().manual_seed(2000)
    args = mm.llama_inputs(gen, 2, 7, [7, 5])
    B, S = torch.export.Dim("batch"), torch.export.Dim("seq")
    m = export_unoptimized(w, args, mm.LL_NAMES, ["logits"], {n: {0: B, 1: S} for n in mm.LL_NAMES})
    write("llama_dynamo_unoptimized", m, mm.llama_datasets(w))


if __name__ == "__main__":
    os.chdir(ROOT)
    main()
