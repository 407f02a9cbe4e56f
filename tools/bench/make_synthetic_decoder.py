#!/usr/bin/env python3
"""A synthetic decoder with dynamic batch and sequence, in the spellings dynamo exports leave for
hoist-scalars: every layer reads its sizes from the tensor at hand (`Shape(q)[0]`, `Shape(x)`),
builds its reshape targets with Unsqueeze/Concat, scales by `Sqrt(Cast(Shape(k)[3]))`, and masks
with `Equal` on int64 (no CUDA kernel at opset 20). About 42 nodes a layer; the weights are tiny
(hidden 16), so the file's size is the graph's.

    .venv/bin/python tools/bench/make_synthetic_decoder.py --layers 1000 --out target/bench/synthetic-1000.onnx

Deterministic (seeded); `--check` runs it in onnxruntime at two sequence lengths.
"""

import argparse
import pathlib

import numpy as np
import onnx
from onnx import TensorProto, helper, numpy_helper

HIDDEN, HEADS = 16, 2
HEAD_DIM = HIDDEN // HEADS
OPSET = 20


def layer(i: int, x: str, mask: str, rng: np.random.Generator, nodes: list, inits: list) -> str:
    p = f"l{i}"

    def w(name: str, shape, scale=0.2) -> str:
        inits.append(numpy_helper.from_array((rng.standard_normal(shape) * scale).astype(np.float32), f"{p}.{name}"))
        return f"{p}.{name}"

    def c(name: str, value) -> str:
        inits.append(numpy_helper.from_array(np.asarray(value), f"{p}.{name}"))
        return f"{p}.{name}"

    def n(op: str, inputs, out: str, **attrs) -> str:
        nodes.append(helper.make_node(op, inputs, [f"{p}.{out}"], name=f"{p}/{out}", **attrs))
        return f"{p}.{out}"

    # RMS-style norm: 7 nodes.
    sq = n("Mul", [x, x], "sq")
    mean = n("ReduceMean", [sq, c("axes", np.array([-1], np.int64))], "mean", keepdims=1)
    eps = n("Add", [mean, c("eps", np.array(1e-6, np.float32))], "eps_add")
    rms = n("Sqrt", [eps], "rms")
    normed = n("Div", [x, rms], "normed")
    h = n("Mul", [normed, w("gamma", (HIDDEN,), 1.0)], "h")
    # Projections: 3.
    q = n("MatMul", [h, w("wq", (HIDDEN, HIDDEN))], "q")
    k = n("MatMul", [h, w("wk", (HIDDEN, HIDDEN))], "k")
    v = n("MatMul", [h, w("wv", (HIDDEN, HIDDEN))], "v")
    # The reshape target from q's shape: 6.
    s = n("Shape", [q], "q_shape")
    b = n("Gather", [s, c("i0", np.array(0, np.int64))], "batch", axis=0)
    t = n("Gather", [s, c("i1", np.array(1, np.int64))], "seq", axis=0)
    ub = n("Unsqueeze", [b, c("ax0", np.array([0], np.int64))], "batch_1d")
    ut = n("Unsqueeze", [t, c("ax0b", np.array([0], np.int64))], "seq_1d")
    heads = n("Concat", [ub, ut, c("heads", np.array([HEADS, HEAD_DIM], np.int64))], "heads_shape", axis=0)
    # Heads: 6.
    qh = n("Transpose", [n("Reshape", [q, heads], "q4")], "qh", perm=[0, 2, 1, 3])
    kh = n("Transpose", [n("Reshape", [k, heads], "k4")], "kh", perm=[0, 2, 3, 1])
    vh = n("Transpose", [n("Reshape", [v, heads], "v4")], "vh", perm=[0, 2, 1, 3])
    # Scale from k's head dim: 5.
    ks = n("Shape", [kh], "k_shape")
    d = n("Gather", [ks, c("i2", np.array(2, np.int64))], "head_dim", axis=0)
    df = n("Cast", [d], "head_dim_f", to=TensorProto.FLOAT)
    scale = n("Sqrt", [df], "scale")
    scores = n("MatMul", [qh, kh], "qk")
    scaled = n("Div", [scores, scale], "scaled")
    # Padding mask: Equal on int64, Where, Unsqueeze twice, Add: 5.
    pad = n("Equal", [mask, c("zero", np.array(0, np.int64))], "pad")
    bias = n("Where", [pad, c("neg", np.array(-1e4, np.float32)), c("pos", np.array(0.0, np.float32))], "bias")
    bias4 = n("Unsqueeze", [bias, c("ax12", np.array([1, 2], np.int64))], "bias4")
    masked = n("Add", [scaled, bias4], "masked")
    probs = n("Softmax", [masked], "probs", axis=-1)
    # Back to [B, S, H] with x's shape: 6.
    ctx = n("MatMul", [probs, vh], "ctx")
    ctx_t = n("Transpose", [ctx], "ctx_t", perm=[0, 2, 1, 3])
    xs = n("Shape", [x], "x_shape")
    merged = n("Reshape", [ctx_t, xs], "merged")
    out = n("MatMul", [merged, w("wo", (HIDDEN, HIDDEN))], "o")
    return n("Add", [x, out], "residual")


def build(layers: int, seed: int) -> onnx.ModelProto:
    rng = np.random.default_rng(seed)
    nodes: list = []
    inits: list = []
    x = "x"
    for i in range(layers):
        x = layer(i, x, "attention_mask", rng, nodes, inits)
    nodes.append(helper.make_node("Identity", [x], ["y"], name="output"))
    graph = helper.make_graph(
        nodes,
        "synthetic_decoder",
        [
            helper.make_tensor_value_info("x", TensorProto.FLOAT, ["batch", "seq", HIDDEN]),
            helper.make_tensor_value_info("attention_mask", TensorProto.INT64, ["batch", "seq"]),
        ],
        [helper.make_tensor_value_info("y", TensorProto.FLOAT, ["batch", "seq", HIDDEN])],
        inits,
    )
    return helper.make_model(graph, opset_imports=[helper.make_opsetid("", OPSET)], ir_version=10)


def main() -> int:
    ap = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    ap.add_argument("--layers", type=int, default=1000)
    ap.add_argument("--seed", type=int, default=20261208)
    ap.add_argument("--out", type=pathlib.Path, required=True)
    ap.add_argument("--check", action="store_true", help="run it in onnxruntime at two sequence lengths")
    args = ap.parse_args()
    model = build(args.layers, args.seed)
    onnx.checker.check_model(model)
    args.out.parent.mkdir(parents=True, exist_ok=True)
    onnx.save(model, args.out)
    print(f"{args.out}: {args.layers} layers, {len(model.graph.node)} nodes")
    if args.check:
        import onnxruntime as ort

        session = ort.InferenceSession(str(args.out), providers=["CPUExecutionProvider"])
        for seq in (3, 7):
            x = np.random.default_rng(seq).standard_normal((2, seq, HIDDEN)).astype(np.float32)
            mask = np.ones((2, seq), np.int64)
            mask[1, -1] = 0
            (y,) = session.run(None, {"x": x, "attention_mask": mask})
            assert y.shape == x.shape and np.isfinite(y).all(), (y.shape, seq)
        print("onnxruntime: runs at sequence lengths 3 and 7")
    return 0


if __name__ == "__main__":
    raise SystemExit(main())
