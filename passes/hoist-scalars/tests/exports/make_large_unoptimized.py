#!/usr/bin/env python3
"""ModernBERT-large (28 layers, random weights) exported by dynamo with `optimize=False`.

The same model, config and seeds as `tools/bench/make_modernbert_large.py` (whose dynamo export
runs onnxscript's optimizer); without the optimizer each layer's `chunk` stays a
`SplitToSequence`, which the CUDA EP has no kernel for: 2 copies a layer, 56 in all, the count
of the original report. Writes target/bench/modernbert-large-dynamo-unoptimized/model.onnx
(+ .data, 1.6 GB). About 2 minutes and 3 GB of memory.

    /tmp/models-venv/bin/python passes/hoist-scalars/tests/exports/make_large_unoptimized.py
"""

import sys
from pathlib import Path

ROOT = Path(__file__).resolve().parents[4]
sys.path.insert(0, str(ROOT / "tools" / "bench"))

import make_modernbert_large as mb  # noqa: E402
import torch  # noqa: E402


def main() -> None:
    out = ROOT / "target" / "bench" / "modernbert-large-dynamo-unoptimized"
    out.mkdir(parents=True, exist_ok=True)
    w, cfg = mb.build_model(mb.LARGE_CONFIG)
    gen = torch.Generator().manual_seed(mb.TRACE_SEED)
    ids, mask = mb.example_inputs(gen, cfg.vocab_size, 2, 7, [7, 5])
    batch, seq = torch.export.Dim("batch"), torch.export.Dim("seq")
    prog = torch.onnx.export(
        w,
        (ids, mask),
        input_names=mb.INPUT_NAMES,
        output_names=mb.OUTPUT_NAMES,
        dynamic_shapes={"input_ids": {0: batch, 1: seq}, "attention_mask": {0: batch, 1: seq}},
        opset_version=mb.OPSET,
        dynamo=True,
        external_data=True,
        optimize=False,
    )
    prog.save(str(out / "model.onnx"), external_data=True)
    print(out / "model.onnx")


if __name__ == "__main__":
    main()
