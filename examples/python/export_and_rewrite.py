"""Export a small transformers model with transformers' OnnxExporter, rewrite it in memory with
onnx-rewrite (`gemm-to-matmul,fp16`), and run the result in onnxruntime.

    python examples/python/export_and_rewrite.py            # export if torch/transformers are
                                                            # installed, else a shipped export
    python examples/python/export_and_rewrite.py --shipped  # always the shipped export

The shipped export (testdata/models/qwen2_moe_hf_batched_mm) was made by the same export step
(testdata/models/make_models.py) and comes with PyTorch's reference outputs, which the rewritten
float16 model is checked against at the fp16 row of the tolerance table (rtol = atol = 2e-2).
"""

from __future__ import annotations

import argparse
import sys
from pathlib import Path

import numpy as np
import onnx
import onnxruntime as ort
from onnx import numpy_helper

import onnx_rewrite

ROOT = Path(__file__).resolve().parents[2]
SHIPPED = ROOT / "testdata" / "models" / "qwen2_moe_hf_batched_mm"


def export_with_transformers() -> onnx.ModelProto:
    """The export step, for users who have torch and transformers (with its OnnxExporter)."""
    import onnx_ir
    import torch
    from transformers import Qwen2MoeConfig, Qwen2MoeForCausalLM
    from transformers.exporters.configs import OnnxConfig
    from transformers.exporters.exporter_onnx import OnnxExporter

    torch.manual_seed(0)
    config = Qwen2MoeConfig(
        vocab_size=128, hidden_size=32, intermediate_size=64, moe_intermediate_size=48,
        shared_expert_intermediate_size=64, num_hidden_layers=2, num_attention_heads=4,
        num_key_value_heads=2, num_experts=8, num_experts_per_tok=2, use_cache=False,
    )
    model = Qwen2MoeForCausalLM(config).eval()
    model.set_experts_implementation("batched_mm")
    ids = torch.randint(3, 128, (2, 7))
    mask = torch.ones(2, 7, dtype=torch.long)
    batch, seq = torch.export.Dim("batch"), torch.export.Dim("seq")
    dims = {"input_ids": {0: batch, 1: seq}, "attention_mask": {0: batch, 1: seq}}
    exported = OnnxExporter().export(
        model, {"input_ids": ids, "attention_mask": mask}, OnnxConfig(dynamic=True, dynamic_shapes=dims)
    )
    return onnx_ir.to_proto(exported.program)


def shipped_inputs_and_reference() -> tuple[dict[str, np.ndarray], np.ndarray]:
    folder = SHIPPED / "test_data_set_1"
    ids, mask = (numpy_helper.to_array(onnx.load_tensor(str(folder / f"input_{i}.pb"))) for i in (0, 1))
    logits = numpy_helper.to_array(onnx.load_tensor(str(folder / "output_0.pb")))
    return {"input_ids": ids, "attention_mask": mask}, logits


def main() -> int:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--shipped", action="store_true", help="use the shipped export even if torch is installed")
    args = parser.parse_args()

    model, exported = None, False
    if not args.shipped:
        try:
            model, exported = export_with_transformers(), True
            print("exported with transformers' OnnxExporter")
        except ImportError as e:
            print(f"torch/transformers not available ({e.name}); using the shipped export {SHIPPED.name}")
    if model is None:
        model = onnx.load(str(SHIPPED / "model.onnx"))

    before = onnx_rewrite.info(model)["ops"]
    # In memory: ModelProto in, ModelProto out. verify=True also runs both models with
    # tract-onnx on random inputs and raises onnx_rewrite.VerifyError if they disagree.
    rewritten, report = onnx_rewrite.apply(
        model, passes=["gemm-to-matmul", "fp16"], verify=True, return_report=True
    )
    after = onnx_rewrite.info(rewritten)["ops"]
    print(f"Gemm {before.get('Gemm', 0)} -> {after.get('Gemm', 0)}, MatMul {before.get('MatMul', 0)} -> {after.get('MatMul', 0)}")
    worst = max(o["worst_ratio"] for o in report["verify"]["outputs"])
    print(f"verify (tract-onnx): worst error / tolerance {worst:.3f}")

    feeds, reference = shipped_inputs_and_reference()

    def run(m: onnx.ModelProto) -> np.ndarray:
        session = ort.InferenceSession(m.SerializeToString(), providers=["CPUExecutionProvider"])
        return session.run(None, feeds)[0]

    logits = run(rewritten).astype(np.float32)
    # The float32 original in onnxruntime; for the shipped export also PyTorch's own outputs.
    references = {"the float32 model": run(model)}
    if not exported:
        references["PyTorch"] = reference
    for name, want in references.items():
        error = float(np.max(np.abs(logits - want)))
        print(f"onnxruntime: logits {logits.shape}, max |error| vs {name} {error:.2e}")
        if not np.allclose(logits, want, rtol=2e-2, atol=2e-2):
            print(f"FAILED: outputs differ from {name}'s beyond the fp16 tolerance", file=sys.stderr)
            return 1
    print("ok")
    return 0


if __name__ == "__main__":
    sys.exit(main())
