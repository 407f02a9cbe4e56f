#!/usr/bin/env python3
"""The documented quantization pipeline, measured: quant_pre_process → gemm-to-matmul → quantizer.

For each model with linear layers, quantize twice: without and with `onnx-rewrite apply --passes
gemm-to-matmul` between ORT's `quant_pre_process` and the quantizer. Count the linear layers
(Gemm, or MatMul whose weight is a constant float initializer), how many of them the 4-bit
`MatMulNBitsQuantizer` turned into MatMulNBits, and how many float linear layers
`quantize_dynamic(op_types_to_quantize=['MatMul'])` left. The quantized models must load and run
on onnxruntime (their accuracy is the quantizer's business, not ours).

    python3 tools/quantization/check_quantization.py --tool target/release/onnx-rewrite [NAME ...]

Exit 1 when, after the rewrite, a linear layer with a constant weight escapes either quantizer.
"""

from __future__ import annotations

import argparse
import logging
import subprocess
import sys
import tempfile
from pathlib import Path

import numpy as np
import onnx
import onnxruntime as ort
from onnx import numpy_helper
from onnxruntime.quantization import QuantType, quantize_dynamic
from onnxruntime.quantization.matmul_nbits_quantizer import MatMulNBitsQuantizer
from onnxruntime.quantization.shape_inference import quant_pre_process

ROOT = Path(__file__).resolve().parents[2]
MODELS = ROOT / "testdata" / "models"
DEFAULT = ["mlp_gemm_dynamo", "mlp_gemm_legacy", "mixtral_hf_batched_mm", "qwen2_moe_hf_batched_mm", "olmoe_hf_batched_mm", "moe_loop_dynamo"]


def constant_linear_layers(model: onnx.ModelProto) -> tuple[int, int]:
    """(Gemm count, MatMul-with-constant-float-weight count) in the main graph."""
    constants = {t.name for t in model.graph.initializer if t.data_type in (onnx.TensorProto.FLOAT, onnx.TensorProto.FLOAT16)}
    gemm = sum(1 for n in model.graph.node if n.op_type == "Gemm" and len(n.input) > 1 and n.input[1] in constants)
    matmul = sum(1 for n in model.graph.node if n.op_type == "MatMul" and n.input[1] in constants)
    return gemm, matmul


def count(model: onnx.ModelProto, *ops: str) -> int:
    return sum(1 for n in model.graph.node if n.op_type in ops)


def runs(path: Path, folder: Path) -> bool:
    options = ort.SessionOptions()
    options.log_severity_level = 3
    session = ort.InferenceSession(str(path), options, providers=["CPUExecutionProvider"])
    data = sorted(folder.glob("test_data_set_*"))[0]
    inputs = []
    for p in sorted(data.glob("input_*.pb"), key=lambda p: int(p.stem.split("_")[1])):
        t = onnx.TensorProto()
        t.ParseFromString(p.read_bytes())
        inputs.append(numpy_helper.to_array(t))
    outputs = session.run(None, {i.name: x for i, x in zip(session.get_inputs(), inputs)})
    return all(np.all(np.isfinite(o)) for o in outputs if np.asarray(o).dtype.kind == "f")


def quantize(src: Path, tmp: Path, tag: str) -> dict[str, int]:
    nbits_path, dyn_path = tmp / f"{tag}.nbits.onnx", tmp / f"{tag}.dynamic.onnx"
    quantizer = MatMulNBitsQuantizer(onnx.load(str(src)), block_size=16, is_symmetric=True)
    quantizer.process()
    quantizer.model.save_model_to_file(str(nbits_path), False)
    quantize_dynamic(str(src), str(dyn_path), op_types_to_quantize=["MatMul"], weight_type=QuantType.QInt8)
    nbits, dyn = onnx.load(str(nbits_path)), onnx.load(str(dyn_path))
    return {
        "nbits": count(nbits, "MatMulNBits"),
        "nbits_float_left": sum(constant_linear_layers(nbits)),
        "dynamic": count(dyn, "MatMulInteger", "DynamicQuantizeMatMul"),
        "dynamic_float_left": sum(constant_linear_layers(dyn)),
        "paths": (nbits_path, dyn_path),
    }


def main() -> int:
    ap = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    ap.add_argument("names", nargs="*", default=DEFAULT)
    ap.add_argument("--tool", type=Path, required=True)
    args = ap.parse_args()
    logging.disable(logging.WARNING)
    ort.set_default_logger_severity(3)
    failures = 0
    print(f"{'model':<26} {'linear (Gemm+MatMul)':>21} | {'4-bit MatMulNBits':>19} | {'dynamic int8: float left':>26}")
    print(f"{'':<26} {'':>21} | {'before → after':>19} | {'before → after':>26}")
    with tempfile.TemporaryDirectory() as tmp_dir:
        tmp = Path(tmp_dir)
        for name in args.names:
            folder = MODELS / name
            pre = tmp / f"{name}.pre.onnx"
            quant_pre_process(str(folder / "model.onnx"), str(pre))
            gemm, matmul = constant_linear_layers(onnx.load(str(pre)))
            rewritten = tmp / f"{name}.rewritten.onnx"
            proc = subprocess.run([str(args.tool), "apply", str(pre), "-o", str(rewritten), "--passes", "gemm-to-matmul", "-q"], capture_output=True, text=True)
            if proc.returncode != 0:
                print(f"{name:<26} onnx-rewrite failed: {proc.stderr.strip()[:300]}")
                failures += 1
                continue
            before, after = quantize(pre, tmp, f"{name}.before"), quantize(rewritten, tmp, f"{name}.after")
            ok = after["nbits_float_left"] == 0 and after["dynamic_float_left"] == 0 and all(runs(p, folder) for p in after["paths"])
            failures += not ok
            print(
                f"{name:<26} {gemm:>9} + {matmul:<9}  | {before['nbits']:>8} → {after['nbits']:<8} | "
                f"{before['dynamic_float_left']:>12} → {after['dynamic_float_left']:<11} {'ok' if ok else 'FAIL'}"
            )
    print(f"{failures} failure(s)")
    return 1 if failures else 0


if __name__ == "__main__":
    sys.exit(main())
