#!/usr/bin/env python3
"""Write small models that exercise every corner of the ONNX text syntax.

Usage:
    edge_models.py OUT_DIR [--seed N]

The node-test corpus is regular (one op, typed tensors, few strings); these models are not:
every element type in raw and typed storage, float16/bfloat16/float8 bit patterns, packed
sub-byte types, random float bit patterns, quoted and empty names, string escapes, nested
seq/map/optional/sparse/opaque types, symbolic dims, subgraphs with initializers, functions
with overloads, attribute references and defaults, metadata, external data, and list
attributes of tensors, graphs and types. Many are not valid models (the checker would reject
them); they only need to be printable.

Feed OUT_DIR to compare_printer.py (printer against onnx.printer), compare_parser.py (parser
against onnx.parser) and the `roundtrip` example (print, parse, compare).
"""

from __future__ import annotations

import argparse
import pathlib

import numpy as np
import onnx
from onnx import TensorProto, helper, numpy_helper

DTYPES_WITH_NUMPY = {
    TensorProto.FLOAT: np.float32,
    TensorProto.DOUBLE: np.float64,
    TensorProto.INT8: np.int8,
    TensorProto.UINT8: np.uint8,
    TensorProto.INT16: np.int16,
    TensorProto.UINT16: np.uint16,
    TensorProto.INT32: np.int32,
    TensorProto.UINT32: np.uint32,
    TensorProto.INT64: np.int64,
    TensorProto.UINT64: np.uint64,
    TensorProto.BOOL: np.bool_,
}

# Element types stored as 8- or 16-bit patterns: (type, bytes per element).
BIT_PATTERN_TYPES = [
    (TensorProto.FLOAT16, 2),
    (TensorProto.BFLOAT16, 2),
    (TensorProto.FLOAT8E4M3FN, 1),
    (TensorProto.FLOAT8E4M3FNUZ, 1),
    (TensorProto.FLOAT8E5M2, 1),
    (TensorProto.FLOAT8E5M2FNUZ, 1),
    (TensorProto.FLOAT8E8M0, 1),
]

PACKED_TYPES = [
    TensorProto.INT4,
    TensorProto.UINT4,
    TensorProto.FLOAT4E2M1,
    TensorProto.INT2,
    TensorProto.UINT2,
]


def model_of(nodes, inputs=(), outputs=(), initializers=(), value_info=(), functions=(), name="g", opsets=None):
    graph = helper.make_graph(list(nodes), name, list(inputs), list(outputs), list(initializers), value_info=list(value_info))
    model = helper.make_model(graph, opset_imports=opsets or [helper.make_opsetid("", 21)], functions=list(functions))
    return model


def constant_model(tensor: TensorProto) -> onnx.ModelProto:
    """The tensor both as an initializer and as a Constant's value."""
    init = TensorProto()
    init.CopyFrom(tensor)
    init.name = "init"
    const = helper.make_node("Constant", [], ["c"], value=tensor)
    return model_of([const], initializers=[init])


def raw_tensor(data_type: int, dims: list[int], raw: bytes, name: str = "") -> TensorProto:
    t = TensorProto()
    t.data_type = data_type
    t.dims.extend(dims)
    t.raw_data = raw
    if name:
        t.name = name
    return t


def cases(rng: np.random.Generator, n_random: int = 20000) -> dict[str, onnx.ModelProto]:
    """The models by name; `n_random` sets the size of the random-float tensors."""
    out: dict[str, onnx.ModelProto] = {}

    # --- Every element type, raw and typed -------------------------------------------------
    for data_type, np_type in DTYPES_WITH_NUMPY.items():
        name = TensorProto.DataType.Name(data_type).lower()
        if np_type is np.bool_:
            values = rng.integers(0, 2, size=7).astype(np.bool_)
        elif np.issubdtype(np_type, np.integer):
            info = np.iinfo(np_type)
            values = np.concatenate([np.array([info.min, info.max, 0], dtype=np_type), rng.integers(info.min, info.max, size=5, endpoint=True, dtype=np_type)])
        else:
            values = (rng.standard_normal(7) * 10.0 ** rng.integers(-8, 8, size=7)).astype(np_type)
        out[f"raw_{name}"] = constant_model(numpy_helper.from_array(values))
        out[f"typed_{name}"] = constant_model(helper.make_tensor("", data_type, [len(values)], values.tolist()))
    for data_type, width in BIT_PATTERN_TYPES:
        name = TensorProto.DataType.Name(data_type).lower()
        raw = rng.integers(0, 256, size=6 * width, dtype=np.uint8).tobytes()
        out[f"raw_{name}"] = constant_model(raw_tensor(data_type, [2, 3], raw))
        typed = TensorProto(data_type=data_type, dims=[3])
        typed.int32_data.extend(int(v) for v in rng.integers(0, 2 ** (8 * width), size=3))
        out[f"typed_{name}"] = constant_model(typed)
    for data_type in PACKED_TYPES:
        name = TensorProto.DataType.Name(data_type).lower()
        out[f"raw_{name}"] = constant_model(raw_tensor(data_type, [4], b"\x12\x34"))
        typed = TensorProto(data_type=data_type, dims=[2])
        typed.int32_data.extend([1, 2])
        out[f"typed_{name}"] = constant_model(typed)
    out["raw_complex64"] = constant_model(numpy_helper.from_array(np.array([1 + 2j], dtype=np.complex64)))
    out["typed_complex64"] = constant_model(TensorProto(data_type=TensorProto.COMPLEX64, dims=[1], float_data=[1.0, 2.0]))
    out["typed_complex128"] = constant_model(TensorProto(data_type=TensorProto.COMPLEX128, dims=[1], double_data=[1.0, 2.0]))
    out["raw_string"] = constant_model(raw_tensor(TensorProto.STRING, [1], b"abc"))
    out["typed_string"] = constant_model(helper.make_tensor("", TensorProto.STRING, [4], [b"plain", b'quote " here', b"back\\slash", "ünï\n\t#".encode()]))
    out["empty_float_tensor"] = constant_model(TensorProto(data_type=TensorProto.FLOAT, dims=[0]))
    out["scalar_tensor"] = constant_model(TensorProto(data_type=TensorProto.INT64, int64_data=[-(2**63)]))
    out["raw_and_typed"] = constant_model(TensorProto(data_type=TensorProto.FLOAT, dims=[1], raw_data=np.float32([3.5]).tobytes(), float_data=[9.0], int32_data=[4]))
    out["explicit_default_location"] = constant_model(TensorProto(data_type=TensorProto.FLOAT, dims=[1], float_data=[1.0], data_location=TensorProto.DEFAULT))
    out["uint64_max"] = constant_model(TensorProto(data_type=TensorProto.UINT64, dims=[2], uint64_data=[2**64 - 1, 0]))
    external = TensorProto(data_type=TensorProto.FLOAT, dims=[1024, 4], name="ext", data_location=TensorProto.EXTERNAL)
    for key, value in [("location", "weights dir/w.bin"), ("offset", "4096"), ("length", "16384")]:
        entry = external.external_data.add()
        entry.key, entry.value = key, value
    out["external_data"] = constant_model(external)

    # --- Floats: random bit patterns, specials ----------------------------------------------
    bits32 = rng.integers(0, 2**32, size=n_random, dtype=np.uint64).astype(np.uint32)
    floats = bits32.view(np.float32)
    out["random_float_bits_raw"] = constant_model(numpy_helper.from_array(floats))
    out["random_float_bits_typed"] = constant_model(helper.make_tensor("", TensorProto.FLOAT, [floats.size], floats.tolist()))
    bits64 = rng.integers(0, 2**63, size=n_random, dtype=np.uint64) * 2 + rng.integers(0, 2, size=n_random, dtype=np.uint64)
    doubles = bits64.view(np.float64)
    out["random_double_bits_raw"] = constant_model(numpy_helper.from_array(doubles))
    magnitudes = (rng.standard_normal(n_random) * 10.0 ** rng.integers(-30, 30, size=n_random)).astype(np.float32)
    out["random_float_magnitudes"] = constant_model(numpy_helper.from_array(magnitudes))
    integral = np.round(rng.standard_normal(n_random // 4) * 10.0 ** rng.integers(0, 25, size=n_random // 4))
    out["integral_doubles"] = constant_model(numpy_helper.from_array(integral.astype(np.float64)))
    out["integral_floats"] = constant_model(numpy_helper.from_array(integral.astype(np.float32)))
    specials = np.array([0.0, -0.0, np.inf, -np.inf, np.nan, -np.nan, 1e-45, 1.17549435e-38, 3.4028235e38, 1e-5, 1e-4, 1e-3, 0.1, 1e15, 1e16, 1e17, 123456789, 16777217], dtype=np.float32)
    out["special_floats"] = constant_model(numpy_helper.from_array(specials))
    nan_payload = np.array([0x7FC00001, 0xFFC00123, 0x7F800001], dtype=np.uint32).view(np.float32)
    out["nan_payloads"] = constant_model(numpy_helper.from_array(nan_payload))
    out["float_attributes"] = model_of([
        helper.make_node("Foo", ["x"], ["y"], alpha=float("nan"), beta=float("-inf"), gamma=-0.0, delta=1e-40, eps=[float(v) for v in floats[:200]]),
    ])

    # --- Names, strings, labels, domains ----------------------------------------------------
    weird = helper.make_node("Add", ["a b", ""], ["", "out-1"], name="node with spaces", domain="com.example.ops")
    unnamed = helper.make_node("Relu", ["", "x", ""], ["r"], name="")
    overloaded = helper.make_node("Fn", ["x"], ["z"], domain="local", overload="v2")
    no_outputs = helper.make_node("Print", ["x"], [])
    strings = helper.make_node(
        "Foo", ["x"], ["s"],
        s='say "hi" \\ there\nnext line # not a comment',
        ss=[b"a", b"", "ü".encode()],
        i=-(2**63), ii=[2**63 - 1, 0, -1],
    )
    out["names_and_strings"] = model_of(
        [weird, unnamed, overloaded, no_outputs, strings],
        inputs=[helper.make_tensor_value_info("a b", TensorProto.FLOAT, [1]), helper.make_tensor_value_info("x", TensorProto.FLOAT, ["batch size", "N", None, 3])],
        outputs=[helper.make_tensor_value_info("out-1", TensorProto.FLOAT, None)],
        name="graph name!",
    )
    out["empty_graph_name"] = model_of([], name="")
    no_graph = onnx.ModelProto(ir_version=10)
    out["no_graph"] = no_graph

    # --- Types ------------------------------------------------------------------------------
    seq_map = helper.make_sequence_type_proto(helper.make_map_type_proto(TensorProto.INT64, helper.make_optional_type_proto(helper.make_tensor_type_proto(TensorProto.FLOAT, ["N", "M + 1", None, 3]))))
    sparse = helper.make_sparse_tensor_type_proto(TensorProto.FLOAT, [2, 3])
    sparse_scalar = helper.make_sparse_tensor_type_proto(TensorProto.FLOAT, [])
    sparse_unranked = helper.make_sparse_tensor_type_proto(TensorProto.FLOAT, None)
    opaque_empty = onnx.TypeProto()
    opaque_empty.opaque_type.SetInParent()
    opaque_named = onnx.TypeProto()
    opaque_named.opaque_type.name = "Thing"
    opaque_domain = onnx.TypeProto()
    opaque_domain.opaque_type.domain = "ai.onnx.ml"
    opaque_domain.opaque_type.name = "Thing"
    opaque_dotted = onnx.TypeProto()
    opaque_dotted.opaque_type.name = "a.b.c"
    no_shape = onnx.TypeProto()
    no_shape.tensor_type.elem_type = TensorProto.INT32
    scalar = helper.make_tensor_type_proto(TensorProto.BOOL, [])
    denoted = helper.make_tensor_type_proto(TensorProto.FLOAT, [2])
    denoted.denotation = "IMAGE"
    denoted.tensor_type.shape.dim[0].denotation = "BATCH"
    types = [seq_map, sparse, sparse_scalar, sparse_unranked, opaque_empty, opaque_named, opaque_domain, opaque_dotted, no_shape, scalar, denoted]
    values = [helper.make_value_info(f"v{i}", t) for i, t in enumerate(types)]
    out["types"] = model_of(
        [helper.make_node("Identity", ["v0"], ["v1"])],
        inputs=values[:6],
        outputs=values[6:],
        value_info=[helper.make_value_info("vi_seq", seq_map), helper.make_value_info("untyped", onnx.TypeProto())],
    )
    out["type_attributes"] = model_of([
        helper.make_node("Foo", [], ["y"], tp=seq_map, tps=[sparse, scalar, no_shape]),
    ])

    # --- Subgraphs --------------------------------------------------------------------------
    inner_init = numpy_helper.from_array(np.array([1.5, -2.0], dtype=np.float32), "inner_w")
    then_graph = helper.make_graph(
        [helper.make_node("Add", ["x", "inner_w"], ["t"], name="inner_add")], "then_body", [], [helper.make_tensor_value_info("t", TensorProto.FLOAT, [2])], [inner_init],
        value_info=[helper.make_tensor_value_info("inner_vi", TensorProto.FLOAT, [2])],
    )
    deeper = helper.make_graph([helper.make_node("If", ["c"], ["e"], then_branch=then_graph, else_branch=then_graph)], "else_body", [], [helper.make_tensor_value_info("e", TensorProto.FLOAT, [2])])
    loop_body = helper.make_graph(
        [helper.make_node("If", ["cond_in"], ["y"], then_branch=then_graph, else_branch=deeper), helper.make_node("Identity", ["cond_in"], ["cond_out"])],
        "loop_body",
        [helper.make_tensor_value_info("i", TensorProto.INT64, []), helper.make_tensor_value_info("cond_in", TensorProto.BOOL, [])],
        [helper.make_tensor_value_info("cond_out", TensorProto.BOOL, []), helper.make_tensor_value_info("y", TensorProto.FLOAT, [2])],
    )
    out["nested_subgraphs"] = model_of(
        [helper.make_node("Loop", ["n", "c"], ["ys"], body=loop_body, name="the loop")],
        inputs=[helper.make_tensor_value_info("n", TensorProto.INT64, []), helper.make_tensor_value_info("c", TensorProto.BOOL, []), helper.make_tensor_value_info("x", TensorProto.FLOAT, [2])],
        outputs=[helper.make_tensor_value_info("ys", TensorProto.FLOAT, [None, 2])],
        initializers=[numpy_helper.from_array(np.array([3], dtype=np.int64), "outer_init")],
    )
    list_attrs = helper.make_node("Foo", ["x"], ["y"], branches=[then_graph, deeper], axis=1)
    out["graphs_attribute"] = model_of([list_attrs])
    tensors_attr = helper.make_node("Foo", ["x"], ["y"], ts=[helper.make_tensor("t0", TensorProto.FLOAT, [2], [1, 2]), numpy_helper.from_array(np.array([7], dtype=np.int64))])
    out["tensors_attribute"] = model_of([tensors_attr])
    empty_lists = helper.make_node("Foo", ["x"], ["y"])
    for name, attr_type in [("e_ints", onnx.AttributeProto.INTS), ("e_floats", onnx.AttributeProto.FLOATS), ("e_strings", onnx.AttributeProto.STRINGS), ("e_tensors", onnx.AttributeProto.TENSORS), ("e_graphs", onnx.AttributeProto.GRAPHS)]:
        a = empty_lists.attribute.add()
        a.name, a.type = name, attr_type
    out["empty_list_attributes"] = model_of([empty_lists])
    sparse_attr = helper.make_node("Constant", [], ["s"])
    st = helper.make_sparse_tensor(helper.make_tensor("v", TensorProto.FLOAT, [2], [1, 2]), helper.make_tensor("i", TensorProto.INT64, [2], [0, 3]), [4])
    sparse_attr.attribute.append(helper.make_attribute("sparse_value", st))
    out["sparse_attribute"] = model_of([sparse_attr])
    undefined_attr = helper.make_node("Foo", ["x"], ["y"])
    undefined_attr.attribute.add().name = "nothing"
    out["undefined_attribute"] = model_of([undefined_attr])
    graph_in_int = helper.make_node("Foo", ["x"], ["y"], n=3)
    graph_in_int.attribute[0].g.CopyFrom(then_graph)
    out["graph_field_on_int_attribute"] = model_of([graph_in_int])
    quoted_subgraph = helper.make_graph([], "my body", [], [])
    typeword_subgraph = helper.make_graph([], "float", [], [])
    nan_subgraph = helper.make_graph([], "nan", [], [])
    out["subgraph_names"] = model_of([helper.make_node("If", ["c"], ["y"], then_branch=quoted_subgraph, else_branch=typeword_subgraph), helper.make_node("If", ["c"], ["z"], then_branch=nan_subgraph, else_branch=nan_subgraph)])

    # --- Functions --------------------------------------------------------------------------
    fn_body = [
        helper.make_node("Constant", [], ["k"], value_float=2.0),
        helper.make_node("Mul", ["x", "k"], ["y"]),
        helper.make_node("Foo", ["y"], ["z"], domain="custom", alpha=0.5),
    ]
    fn_body[2].attribute[0].ref_attr_name = "scale"
    fn = helper.make_function("local", "Scale", ["x"], ["z"], fn_body, [helper.make_opsetid("", 21), helper.make_opsetid("custom", 1)], attributes=["scale", "mode"], doc_string="a function")
    fn_with_default = helper.make_function("local", "Scale", ["x"], ["z"], fn_body, [helper.make_opsetid("", 21)], attribute_protos=[helper.make_attribute("scale", 1.0)])
    fn_with_default.overload = "v2"
    fn_with_default.value_info.append(helper.make_tensor_value_info("y", TensorProto.FLOAT, [2]))
    out["functions"] = model_of(
        [helper.make_node("Scale", ["x"], ["y"], domain="local", scale=3.0), helper.make_node("Scale", ["y"], ["z"], domain="local", overload="v2")],
        opsets=[helper.make_opsetid("", 21), helper.make_opsetid("local", 1)],
        functions=[fn, fn_with_default],
    )

    # --- Model header -----------------------------------------------------------------------
    header = model_of([helper.make_node("Relu", ["x"], ["y"])], inputs=[helper.make_tensor_value_info("x", TensorProto.FLOAT, [1])], outputs=[helper.make_tensor_value_info("y", TensorProto.FLOAT, [1])])
    header.producer_name = 'pro"ducer'
    header.producer_version = ""
    header.domain = "ai.example"
    header.model_version = -3
    header.doc_string = "line one\nline two \\ end"
    helper.set_model_props(header, {"key \"one\"": "value\\1", "": ""})
    header.graph.doc_string = "graph doc is not printed"
    header.graph.node[0].doc_string = "node doc is not printed"
    out["model_header"] = header
    return out


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    parser.add_argument("out", type=pathlib.Path)
    parser.add_argument("--seed", type=int, default=0)
    args = parser.parse_args()
    args.out.mkdir(parents=True, exist_ok=True)
    rng = np.random.default_rng(args.seed)
    written = cases(rng)
    for name, model in written.items():
        (args.out / f"{name}.onnx").write_bytes(model.SerializeToString())
    print(f"wrote {len(written)} models to {args.out}")


if __name__ == "__main__":
    main()
