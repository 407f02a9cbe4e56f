"""The onnx_rewrite package: kinds in and out, options, errors with the CLI's messages,
external data, verify, info, and the README's example."""

from __future__ import annotations

import subprocess
import sys
from pathlib import Path

import numpy as np
import onnx
import onnxruntime as ort
import pytest
from onnx import helper, numpy_helper, TensorProto

import onnx_rewrite


def ops(model: onnx.ModelProto) -> dict[str, int]:
    out: dict[str, int] = {}
    for n in model.graph.node:
        out[n.op_type] = out.get(n.op_type, 0) + 1
    return out


def run(model: onnx.ModelProto | bytes, feeds: dict[str, np.ndarray]) -> list[np.ndarray]:
    data = model if isinstance(model, bytes) else model.SerializeToString()
    return ort.InferenceSession(data, providers=["CPUExecutionProvider"]).run(None, feeds)


def mlp(models) -> onnx.ModelProto:
    return onnx.load(str(models / "mlp_gemm_dynamo" / "model.onnx"))


def x_feed() -> dict[str, np.ndarray]:
    return {"x": np.random.default_rng(0).standard_normal((3, 12)).astype(np.float32)}


def test_model_proto_in_model_proto_out(models):
    model = mlp(models)
    out = onnx_rewrite.apply(model, passes=["gemm-to-matmul"])
    assert isinstance(out, onnx.ModelProto)
    assert "Gemm" not in ops(out) and ops(out)["MatMul"] == 5
    assert ops(model)["Gemm"] == 5, "the input is left as it was"
    onnx.checker.check_model(out, full_check=True)
    np.testing.assert_allclose(run(out, x_feed())[0], run(model, x_feed())[0], rtol=1e-5, atol=1e-6)


def test_bytes_in_bytes_out(models):
    data = (models / "mlp_gemm_dynamo" / "model.onnx").read_bytes()
    out = onnx_rewrite.apply(data, passes="gemm-to-matmul,fp16")
    assert isinstance(out, bytes)
    model = onnx.load_from_string(out)
    assert "Gemm" not in ops(model)
    # bytearray and memoryview are taken too.
    assert onnx_rewrite.apply(bytearray(data), passes="none") == onnx_rewrite.apply(memoryview(data), passes="none")


def test_path_in_path_out_with_reports(models, tmp_path):
    out = tmp_path / "out.onnx"
    got, report = onnx_rewrite.apply(
        models / "mlp_gemm_dynamo" / "model.onnx",
        passes=["gemm-to-matmul"],
        output=out,
        report=tmp_path / "r.json",
        return_report=True,
    )
    assert got == out and out.is_file()
    assert report["passes"][0]["pass"] == "gemm-to-matmul"
    assert (tmp_path / "r.json").read_text().startswith("{")
    assert "Gemm" not in ops(onnx.load(str(out)))


def test_same_output_as_the_cli(models, tmp_path, cli):
    if cli is None:
        pytest.skip("no onnx-rewrite binary built (cargo build -p onnx-rewrite-cli) to compare with")
    src = models / "llama_legacy" / "model.onnx"
    subprocess.run([cli, "apply", str(src), "-o", str(tmp_path / "cli.onnx"), "--passes", "all", "-q"], check=True)
    assert onnx_rewrite.apply(src.read_bytes(), passes="all") == (tmp_path / "cli.onnx").read_bytes()


def test_pass_options_as_keywords(models):
    model = onnx.load(str(models / "llama_dynamo" / "model.onnx"))
    kept = onnx_rewrite.apply(model, passes="fp16")
    assert kept.graph.output[0].type.tensor_type.elem_type == TensorProto.FLOAT
    converted = onnx_rewrite.apply(model, passes="fp16", fp16_keep_io_types=False)
    assert converted.graph.output[0].type.tensor_type.elem_type == TensorProto.FLOAT16
    blocked = onnx_rewrite.apply(model, passes="fp16", fp16_block_op=["Softmax", "MatMul"])
    assert blocked.SerializeToString() != kept.SerializeToString()
    _, bf16 = onnx_rewrite.apply(model, passes="fp16", fp16_type="bfloat16", verify=True, return_report=True)
    assert bf16["verify"]["tolerance"] == {"rtol": 5e-2, "atol": 5e-2}
    assert "fp16_keep_io_types" in onnx_rewrite.pass_options()


def cli_message(cli, args) -> str:
    proc = subprocess.run([cli, *args], capture_output=True, text=True)
    assert proc.returncode in (1, 2)
    prefix = "onnx-rewrite: error: "
    line = proc.stderr.strip()
    assert line.startswith(prefix), line
    return line[len(prefix):]


def test_errors_are_exceptions_with_the_cli_messages(models, tmp_path, cli):
    src = models / "mlp_gemm_dynamo" / "model.onnx"
    with pytest.raises(onnx_rewrite.InputError) as unknown:
        onnx_rewrite.apply(src, passes="gemm-to-matmul,nope", output=tmp_path / "o.onnx")
    assert "unknown pass 'nope'" in str(unknown.value)
    missing = tmp_path / "missing.onnx"
    with pytest.raises(onnx_rewrite.InputError) as not_found:
        onnx_rewrite.apply(missing, passes="none", output=tmp_path / "o.onnx")
    baked = models / "moe_baked_weights_missing" / "model.onnx"
    with pytest.raises(onnx_rewrite.RefusedError) as refused:
        onnx_rewrite.apply(baked, passes="moe-dense", output=tmp_path / "o.onnx")
    assert "missing" in str(refused.value)
    assert not (tmp_path / "o.onnx").exists(), "nothing written"
    if cli is not None:
        out = str(tmp_path / "o.onnx")
        assert str(unknown.value) == cli_message(cli, ["apply", str(src), "-o", out, "--passes", "gemm-to-matmul,nope"])
        assert str(not_found.value) == cli_message(cli, ["apply", str(missing), "-o", out, "--passes", "none"])
        assert str(refused.value) == cli_message(cli, ["apply", str(baked), "-o", out, "--passes", "moe-dense"])
    with pytest.raises(onnx_rewrite.InputError, match="not a valid ONNX protobuf"):
        onnx_rewrite.apply(b"\xff\xff garbage", passes="none")
    with pytest.raises(onnx_rewrite.InputError, match="unknown option 'fp16_keep_io'"):
        onnx_rewrite.apply(mlp(models), passes="fp16", fp16_keep_io=True)
    with pytest.raises(onnx_rewrite.InputError, match="needs output="):
        onnx_rewrite.apply(src, passes="none")
    with pytest.raises(TypeError):
        onnx_rewrite.apply(42, passes="none")
    assert issubclass(onnx_rewrite.VerifyError, onnx_rewrite.RefusedError)
    assert issubclass(onnx_rewrite.RefusedError, onnx_rewrite.Error)


def test_external_data_by_path(models, tmp_path):
    model = mlp(models)
    src = tmp_path / "in" / "model.onnx"
    src.parent.mkdir()
    onnx.save(model, str(src), save_as_external_data=True, all_tensors_to_one_file=True, location="model.onnx.data", size_threshold=0)
    model = mlp(models)  # onnx.save turned the proto's tensors into external references
    out = tmp_path / "out" / "model.onnx"
    out.parent.mkdir()
    onnx_rewrite.apply(src, passes="gemm-to-matmul", output=out, verify=True)
    assert (out.parent / "model.onnx.data").is_file(), "external stays external"
    rewritten = onnx.load(str(out))
    assert "Gemm" not in ops(rewritten)
    np.testing.assert_allclose(
        run(rewritten, x_feed())[0], run(model, x_feed())[0], rtol=1e-5, atol=1e-6
    )
    # A ModelProto whose tensors are external: its folder is given with base_dir.
    light = onnx.load(str(src), load_external_data=False)
    out_proto = onnx_rewrite.apply(light, passes="gemm-to-matmul", base_dir=src.parent)
    np.testing.assert_allclose(run(out_proto, x_feed())[0], run(model, x_feed())[0], rtol=1e-5, atol=1e-6)
    with pytest.raises(onnx_rewrite.InputError):
        onnx_rewrite.apply(light, passes="none")


@pytest.mark.parametrize(
    "name", ["mlp_gemm_dynamo", "llama_legacy", "modernbert_dynamo", "qwen2_moe_hf_batched_mm"]
)
def test_verify_on_real_exports(models, name):
    _, report = onnx_rewrite.apply(
        onnx.load(str(models / name / "model.onnx")), passes="all", verify=True, return_report=True
    )
    verify = report["verify"]
    assert verify["passed"] and verify["tolerance"] == {"rtol": 2e-2, "atol": 2e-2}
    assert all(o["worst_ratio"] < 1 for o in verify["outputs"])


def test_verify_fp16_gemm_runs_through_matmul_form(models):
    # tract-onnx refuses float16 Gemm; the copy it runs has them as MatMul + Add, and says so.
    out, report = onnx_rewrite.apply(
        onnx.load(str(models / "mlp_gemm_legacy" / "model.onnx")), passes="fp16", verify=True, return_report=True
    )
    verify = report["verify"]
    assert verify["passed"], verify
    assert any("float16/bfloat16 Gemm" in note for note in verify["notes"]), verify
    assert any(n.op_type == "Gemm" for n in out.graph.node), "the model returned keeps its Gemm nodes"


def test_verify_shapes(models):
    _, report = onnx_rewrite.apply(
        onnx.load(str(models / "llama_dynamo" / "model.onnx")),
        passes="gemm-to-matmul",
        verify=True,
        verify_shapes={"batch": 1, "seq": 5},
        return_report=True,
    )
    assert report["verify"]["tolerance"] == {"rtol": 1e-5, "atol": 1e-6}
    assert [shape for _, shape in report["verify"]["inputs"]] == [[1, 5]] * 3
    with pytest.raises(onnx_rewrite.InputError, match="no input or symbolic dim"):
        onnx_rewrite.apply(mlp(models), passes="none", verify=True, verify_shapes={"sequence": 3})


def test_info(models):
    info = onnx_rewrite.info(mlp(models))
    assert info["ops"] == {"Gemm": 5, "Relu": 1, "Tanh": 1}
    assert info == onnx_rewrite.info(models / "mlp_gemm_dynamo" / "model.onnx")
    assert info["inputs"][0]["name"] == "x"


def test_passes_listed():
    names = [name for name, _ in onnx_rewrite.passes()]
    assert {"gemm-to-matmul", "lower-if", "fp16", "moe-dense", "hoist-scalars"} <= set(names)


def test_readme_example_runs():
    """The README's Python example: a transformers OnnxExporter export (made here when torch
    and transformers are installed, else the shipped one), gemm-to-matmul + fp16, onnxruntime."""
    proc = subprocess.run(
        [sys.executable, str(Path(__file__).resolve().parents[3] / "examples" / "python" / "export_and_rewrite.py")],
        capture_output=True,
        text=True,
    )
    assert proc.returncode == 0, proc.stdout + proc.stderr
    assert "Gemm 10 -> 0" in proc.stdout or "exported with" in proc.stdout
    assert proc.stdout.strip().endswith("ok")


def test_verify_error_when_outputs_differ(models, tmp_path):
    # The baked MoE trace computes only the experts its example token reached; moe-dense rebuilds
    # the rest, so the rewrite differs from the (wrong) original, and verify says so.
    src = models / "moe_baked_weights_present" / "model.onnx"
    with pytest.raises(onnx_rewrite.VerifyError, match="differ from the original's beyond tolerance") as e:
        onnx_rewrite.apply(src, passes="moe-dense", verify=True, output=tmp_path / "o.onnx")
    assert "OVER" in str(e.value)
    assert not (tmp_path / "o.onnx").exists()
    # tract-onnx cannot run every export; that is an InputError naming the model, not a pass.
    with pytest.raises(onnx_rewrite.InputError, match="tract-onnx cannot run the original model"):
        onnx_rewrite.apply(models / "mixtral_hf_default" / "model.onnx", passes="none", verify=True, output=tmp_path / "o.onnx")


def test_readme_python_block_runs(tmp_path):
    """The ```python block of README.md, run as written from the repository root."""
    root = Path(__file__).resolve().parents[3]
    readme = (root / "README.md").read_text()
    start = readme.index("```python\n") + len("```python\n")
    block = readme[start : readme.index("```", start)]
    proc = subprocess.run([sys.executable, "-c", block], cwd=root, capture_output=True, text=True)
    assert proc.returncode == 0, proc.stdout + proc.stderr
    assert proc.stdout.splitlines()[0] == "0 Gemm left", proc.stdout
