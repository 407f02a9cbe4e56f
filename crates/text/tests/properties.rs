//! Property tests: the parser never panics, and printing then parsing any model gives its
//! canonical form.

use bytes::Bytes;
use onnx_rewrite_proto::attribute_proto::AttributeType;
use onnx_rewrite_proto::tensor_proto::{DataLocation, DataType};
use onnx_rewrite_proto::tensor_shape_proto::{Dimension, dimension};
use onnx_rewrite_proto::type_proto::{self, Value as TypeValue};
use onnx_rewrite_proto::{
    AttributeProto, FunctionProto, GraphProto, Message as _, ModelProto, NodeProto,
    OperatorSetIdProto, StringStringEntryProto, TensorProto, TensorShapeProto, TypeProto,
    ValueInfoProto,
};
use onnx_rewrite_text::{
    PrintOptions, canonical_model, parse_function, parse_graph, parse_model, parse_node,
    print_model,
};
use proptest::prelude::*;

/// Runs every entry point on `text`; the point is that none of them panics. When the text is a
/// model, its round trip must also hold.
fn parse_everything(text: &str) {
    let _ = parse_graph(text);
    let _ = parse_function(text);
    let _ = parse_node(text);
    if let Ok(model) = parse_model(text) {
        check_round_trip(&model);
    }
}

/// `parse(print(m)) == canonical(m)`, compared as encoded protobuf (NaNs by their bits).
fn check_round_trip(model: &ModelProto) {
    let text = print_model(model, &PrintOptions::default());
    match canonical_model(model) {
        Ok(canonical) => {
            let parsed = parse_model(&text).unwrap_or_else(|e| panic!("{e}\n{text}"));
            assert_eq!(
                parsed.encode_to_vec(),
                canonical.encode_to_vec(),
                "\n{text}"
            );
            assert_eq!(
                print_model(&parsed, &PrintOptions::default()),
                print_model(&canonical, &PrintOptions::default())
            );
        }
        Err(_) => {
            // Not expressible; the printer must still not panic, which it did not.
        }
    }
}

const TOKENS: &[&str] = &[
    "<",
    ">",
    "(",
    ")",
    "[",
    "]",
    "{",
    "}",
    ",",
    ":",
    "=",
    "=>",
    "@",
    ".",
    "?",
    "-",
    "\"",
    "\\",
    "#c\n",
    " ",
    "\n",
    "\"s\"",
    "\"a b\"",
    "x",
    "y",
    "_z",
    "g",
    "Relu",
    "com.ms.Op",
    "float",
    "int64",
    "string",
    "float16",
    "int4",
    "seq",
    "map",
    "optional",
    "sparse_tensor",
    "opaque",
    "tensor",
    "graph",
    "ints",
    "floats",
    "strings",
    "tensors",
    "graphs",
    "type_proto",
    "type_protos",
    "1",
    "-2",
    "1.5e3",
    "1e",
    "0.5",
    "9223372036854775808",
    "inf",
    "-nan",
    "Infinity",
    "ir_version",
    "opset_import",
    "domain",
    "overload",
    "doc_string",
    "metadata_props",
    "...",
    "\"location\"",
    "é",
];

fn token_soup() -> impl Strategy<Value = String> {
    prop::collection::vec(prop::sample::select(TOKENS), 0..80).prop_map(|tokens| tokens.concat())
}

/// Valid texts to mutate.
const SEEDS: &[&str] = &[
    include_str!("golden/parse/attributes.txt"),
    include_str!("golden/parse/header_and_functions.txt"),
    include_str!("golden/parse/node_forms.txt"),
    include_str!("golden/parse/subgraphs.txt"),
    include_str!("golden/parse/types_and_values.txt"),
];

/// A seed text with a few edits: ranges deleted, duplicated, or replaced by a token.
fn mutated_seed() -> impl Strategy<Value = String> {
    (
        prop::sample::select(SEEDS),
        prop::collection::vec(
            (
                any::<prop::sample::Index>(),
                0usize..12,
                0usize..3,
                prop::sample::select(TOKENS),
            ),
            1..6,
        ),
    )
        .prop_map(|(seed, edits)| {
            let mut chars: Vec<char> = seed.chars().collect();
            for (at, len, kind, token) in edits {
                let start = at.index(chars.len() + 1);
                let end = (start + len).min(chars.len());
                match kind {
                    0 => {
                        chars.drain(start..end);
                    }
                    1 => {
                        let copy: Vec<char> = chars[start..end].to_vec();
                        chars.splice(start..start, copy);
                    }
                    _ => {
                        chars.splice(start..end, token.chars());
                    }
                }
            }
            chars.into_iter().collect()
        })
}

proptest! {
    #![proptest_config(ProptestConfig { cases: 2000, failure_persistence: None, ..ProptestConfig::default() })]

    #[test]
    fn arbitrary_strings_never_panic(text in any::<String>()) {
        parse_everything(&text);
    }

    #[test]
    fn token_soup_never_panics(text in token_soup()) {
        parse_everything(&text);
    }

    #[test]
    fn mutated_models_never_panic(text in mutated_seed()) {
        parse_everything(&text);
    }
}

// ---- Random models --------------------------------------------------------------------------

/// Names: identifiers mostly, sometimes names that need quotes, are empty, or read as types.
fn name() -> impl Strategy<Value = String> {
    prop_oneof![
        6 => "[a-z_][a-z0-9_]{0,6}",
        1 => Just(String::new()),
        1 => "[ -~]{1,6}",
        1 => prop::sample::select(vec!["float", "seq", "inf", "nan", "é", "a\"b\\c", "#x"]).prop_map(str::to_owned),
    ]
}

fn identifier() -> impl Strategy<Value = String> {
    "[A-Za-z_][A-Za-z0-9_]{0,6}"
}

fn data_type() -> impl Strategy<Value = i32> {
    prop_oneof![
        8 => prop::sample::select(vec![
            DataType::Float, DataType::Double, DataType::Int8, DataType::Uint8, DataType::Int16, DataType::Uint16,
            DataType::Int32, DataType::Uint32, DataType::Int64, DataType::Uint64, DataType::Bool, DataType::String,
            DataType::Float16, DataType::Bfloat16, DataType::Float8e4m3fn, DataType::Float8e5m2, DataType::Float8e8m0,
        ]).prop_map(|t| t as i32),
        1 => prop::sample::select(vec![DataType::Int4, DataType::Complex64, DataType::Undefined]).prop_map(|t| t as i32),
    ]
}

fn float32() -> impl Strategy<Value = f32> {
    prop_oneof![
        any::<f32>(),
        prop::num::f32::ANY,
        Just(f32::NAN),
        Just(-0.0f32)
    ]
}

fn float64() -> impl Strategy<Value = f64> {
    prop_oneof![any::<f64>(), prop::num::f64::ANY, Just(-f64::NAN)]
}

/// A tensor whose values fit its type, stored raw or typed, sometimes external.
fn tensor() -> impl Strategy<Value = TensorProto> {
    (
        data_type(),
        prop::collection::vec(0i64..3, 0..3),
        name(),
        any::<bool>(),
        any::<u64>(),
        0u8..10,
    )
        .prop_flat_map(|(data_type, dims, name, raw, seed, external)| {
            let count: usize = dims.iter().product::<i64>() as usize;
            let values = prop::collection::vec(any::<u64>(), count);
            (
                Just((data_type, dims, name, raw, seed, external)),
                values,
                prop::collection::vec(float32(), count),
                prop::collection::vec(float64(), count),
            )
        })
        .prop_map(
            |((data_type, dims, name, raw, _seed, external), ints, floats, doubles)| {
                let mut t = TensorProto {
                    data_type: Some(data_type),
                    dims,
                    name: Some(name),
                    ..Default::default()
                };
                if external == 0 {
                    t.data_location = Some(DataLocation::External as i32);
                    t.external_data = vec![StringStringEntryProto {
                        key: Some("location".into()),
                        value: Some("w.bin".into()),
                    }];
                    return t;
                }
                use DataType as D;
                let dt = DataType::try_from(data_type).unwrap_or(D::Undefined);
                let bytes_per = |width: usize| -> Vec<u8> {
                    ints.iter()
                        .flat_map(|v| v.to_le_bytes()[..width].to_vec())
                        .collect()
                };
                match dt {
                    D::Float if raw => {
                        t.raw_data = Some(
                            floats
                                .iter()
                                .flat_map(|f| f.to_le_bytes())
                                .collect::<Vec<_>>()
                                .into(),
                        )
                    }
                    D::Float => t.float_data = floats,
                    D::Double if raw => {
                        t.raw_data = Some(
                            doubles
                                .iter()
                                .flat_map(|f| f.to_le_bytes())
                                .collect::<Vec<_>>()
                                .into(),
                        )
                    }
                    D::Double => t.double_data = doubles,
                    D::Int8
                    | D::Uint8
                    | D::Bool
                    | D::Float8e4m3fn
                    | D::Float8e5m2
                    | D::Float8e8m0
                        if raw =>
                    {
                        t.raw_data = Some(bytes_per(1).into())
                    }
                    D::Int8 => t.int32_data = ints.iter().map(|v| *v as i8 as i32).collect(),
                    D::Uint8 | D::Bool | D::Float8e4m3fn | D::Float8e5m2 | D::Float8e8m0 => {
                        t.int32_data = ints.iter().map(|v| *v as u8 as i32).collect()
                    }
                    D::Int16 | D::Uint16 | D::Float16 | D::Bfloat16 if raw => {
                        t.raw_data = Some(bytes_per(2).into())
                    }
                    D::Int16 => t.int32_data = ints.iter().map(|v| *v as i16 as i32).collect(),
                    D::Uint16 | D::Float16 | D::Bfloat16 => {
                        t.int32_data = ints.iter().map(|v| *v as u16 as i32).collect()
                    }
                    D::Int32 | D::Uint32 if raw => t.raw_data = Some(bytes_per(4).into()),
                    D::Int32 => t.int32_data = ints.iter().map(|v| *v as i32).collect(),
                    D::Uint32 => t.uint64_data = ints.iter().map(|v| *v as u32 as u64).collect(),
                    D::Int64 | D::Uint64 if raw => t.raw_data = Some(bytes_per(8).into()),
                    D::Int64 => t.int64_data = ints.iter().map(|v| *v as i64).collect(),
                    D::Uint64 => t.uint64_data = ints.clone(),
                    D::String => {
                        t.string_data = ints
                            .iter()
                            .map(|v| Bytes::from(format!("s\"{v}\\")))
                            .collect()
                    }
                    _ => t.raw_data = Some(bytes_per(1).into()),
                }
                t
            },
        )
}

fn shape() -> impl Strategy<Value = Option<TensorShapeProto>> {
    prop::option::of(
        prop::collection::vec(
            prop_oneof![
                Just(None),
                (-2i64..100).prop_map(|v| Some(dimension::Value::DimValue(v))),
                name().prop_map(|n| Some(dimension::Value::DimParam(n))),
            ],
            0..4,
        )
        .prop_map(|dims| TensorShapeProto {
            dim: dims
                .into_iter()
                .map(|value| Dimension {
                    value,
                    denotation: None,
                })
                .collect(),
        }),
    )
}

fn type_proto() -> impl Strategy<Value = TypeProto> {
    let leaf = prop_oneof![
        (data_type(), shape()).prop_map(|(e, shape)| TypeValue::TensorType(type_proto::Tensor {
            elem_type: Some(e),
            shape
        })),
        (data_type(), shape()).prop_map(|(e, shape)| TypeValue::SparseTensorType(
            type_proto::SparseTensor {
                elem_type: Some(e),
                shape
            }
        )),
        (
            prop::option::of(prop::sample::select(vec!["", "ai.onnx", "x"])),
            prop::option::of(prop::sample::select(vec!["", "T", "a.b"]))
        )
            .prop_map(|(d, n)| TypeValue::OpaqueType(type_proto::Opaque {
                domain: d.map(str::to_owned),
                name: n.map(str::to_owned)
            })),
    ]
    .prop_map(|value| TypeProto {
        value: Some(value),
        denotation: None,
    });
    leaf.prop_recursive(3, 8, 2, |inner| {
        prop_oneof![
            inner
                .clone()
                .prop_map(|t| TypeValue::SequenceType(Box::new(type_proto::Sequence {
                    elem_type: Some(Box::new(t))
                }))),
            inner
                .clone()
                .prop_map(|t| TypeValue::OptionalType(Box::new(type_proto::Optional {
                    elem_type: Some(Box::new(t))
                }))),
            (data_type(), inner).prop_map(|(k, t)| TypeValue::MapType(Box::new(type_proto::Map {
                key_type: Some(k),
                value_type: Some(Box::new(t))
            }))),
        ]
        .prop_map(|value| TypeProto {
            value: Some(value),
            denotation: None,
        })
    })
}

fn value_info() -> impl Strategy<Value = ValueInfoProto> {
    (name(), prop::option::of(type_proto())).prop_map(|(name, r#type)| ValueInfoProto {
        name: Some(name),
        r#type,
        ..Default::default()
    })
}

fn attribute(graph: BoxedStrategy<GraphProto>) -> impl Strategy<Value = AttributeProto> {
    let value = prop_oneof![
        any::<i64>().prop_map(|i| AttributeProto {
            r#type: Some(AttributeType::Int as i32),
            i: Some(i),
            ..Default::default()
        }),
        float32().prop_map(|f| AttributeProto {
            r#type: Some(AttributeType::Float as i32),
            f: Some(f),
            ..Default::default()
        }),
        name().prop_map(|s| AttributeProto {
            r#type: Some(AttributeType::String as i32),
            s: Some(s.into()),
            ..Default::default()
        }),
        prop::collection::vec(any::<i64>(), 0..4).prop_map(|ints| AttributeProto {
            r#type: Some(AttributeType::Ints as i32),
            ints,
            ..Default::default()
        }),
        prop::collection::vec(float32(), 0..4).prop_map(|floats| AttributeProto {
            r#type: Some(AttributeType::Floats as i32),
            floats,
            ..Default::default()
        }),
        prop::collection::vec(name(), 0..3).prop_map(|s| AttributeProto {
            r#type: Some(AttributeType::Strings as i32),
            strings: s.into_iter().map(Bytes::from).collect(),
            ..Default::default()
        }),
        tensor().prop_map(|t| AttributeProto {
            r#type: Some(AttributeType::Tensor as i32),
            t: Some(Box::new(t)),
            ..Default::default()
        }),
        prop::collection::vec(tensor(), 0..3).prop_map(|tensors| AttributeProto {
            r#type: Some(AttributeType::Tensors as i32),
            tensors,
            ..Default::default()
        }),
        type_proto().prop_map(|tp| AttributeProto {
            r#type: Some(AttributeType::TypeProto as i32),
            tp: Some(Box::new(tp)),
            ..Default::default()
        }),
        prop::collection::vec(type_proto(), 0..3).prop_map(|type_protos| AttributeProto {
            r#type: Some(AttributeType::TypeProtos as i32),
            type_protos,
            ..Default::default()
        }),
        graph.clone().prop_map(|g| AttributeProto {
            r#type: Some(AttributeType::Graph as i32),
            g: Some(g),
            ..Default::default()
        }),
        prop::collection::vec(graph, 0..2).prop_map(|graphs| AttributeProto {
            r#type: Some(AttributeType::Graphs as i32),
            graphs,
            ..Default::default()
        }),
        (
            identifier(),
            prop::sample::select(vec![
                AttributeType::Int,
                AttributeType::Floats,
                AttributeType::Graph
            ])
        )
            .prop_map(|(r, t)| AttributeProto {
                r#type: Some(t as i32),
                ref_attr_name: Some(r),
                ..Default::default()
            }),
    ];
    (identifier(), value).prop_map(|(name, mut a)| {
        a.name = Some(name);
        a
    })
}

fn node(graph: BoxedStrategy<GraphProto>) -> impl Strategy<Value = NodeProto> {
    (
        prop::collection::vec(name(), 0..3),
        prop::collection::vec(name(), 0..3),
        prop::option::of(name()),
        identifier(),
        prop::option::of(prop::sample::select(vec![
            "",
            "com.microsoft",
            "ai.onnx.ml",
        ])),
        prop::option::of(prop::sample::select(vec!["", "v2"])),
        prop::collection::vec(attribute(graph), 0..3),
    )
        .prop_map(
            |(input, output, name, op_type, domain, overload, attribute)| NodeProto {
                input,
                output,
                name,
                op_type: Some(op_type),
                domain: domain.map(str::to_owned),
                overload: overload.map(str::to_owned),
                attribute,
                ..Default::default()
            },
        )
}

/// A graph whose graph-valued attributes hold graphs from `inner`.
fn graph_with(inner: BoxedStrategy<GraphProto>) -> BoxedStrategy<GraphProto> {
    (
        name(),
        prop::collection::vec(value_info(), 0..3),
        prop::collection::vec(value_info(), 0..2),
        prop::collection::vec(tensor(), 0..3),
        prop::collection::vec(value_info(), 0..2),
        prop::collection::vec(node(inner), 0..5),
    )
        .prop_map(
            |(name, input, output, initializer, value_info, node)| GraphProto {
                name: Some(name),
                input,
                output,
                initializer,
                value_info,
                node,
                doc_string: Some("dropped".into()),
                ..Default::default()
            },
        )
        .boxed()
}

/// Graphs nested up to three levels deep.
fn graph() -> impl Strategy<Value = GraphProto> {
    let empty = Just(GraphProto {
        name: Some("empty".into()),
        ..Default::default()
    })
    .boxed();
    graph_with(empty).prop_recursive(2, 8, 2, graph_with)
}

fn model() -> impl Strategy<Value = ModelProto> {
    (
        prop::option::of(any::<i64>()),
        prop::collection::vec(
            (prop::option::of(name()), prop::option::of(any::<i64>())),
            0..3,
        ),
        prop::option::of(name()),
        prop::option::weighted(0.9, graph()),
        prop::collection::vec(
            (
                name(),
                prop::collection::vec(identifier(), 0..3),
                prop::collection::vec(node(graph().boxed()), 0..2),
            ),
            0..2,
        ),
    )
        .prop_map(|(ir_version, opsets, doc, graph, functions)| ModelProto {
            ir_version,
            opset_import: opsets
                .into_iter()
                .map(|(domain, version)| OperatorSetIdProto { domain, version })
                .collect(),
            doc_string: doc,
            graph,
            functions: functions
                .into_iter()
                .map(|(name, io, node)| FunctionProto {
                    name: Some(name),
                    input: io.clone(),
                    output: io,
                    node,
                    domain: Some("local".into()),
                    ..Default::default()
                })
                .collect(),
            ..Default::default()
        })
}

proptest! {
    #![proptest_config(ProptestConfig { cases: 500, failure_persistence: None, ..ProptestConfig::default() })]

    #[test]
    fn print_then_parse_gives_the_canonical_model(model in model()) {
        check_round_trip(&model);
    }
}

/// Writes random models to the directory `$ONNX_TEXT_DUMP`, for comparison with the onnx oracle
/// (`tools/text/compare_printer.py DIR print_model`, `tools/text/compare_parser.py DIR parse_model`).
#[test]
#[ignore = "writes files; run by hand with ONNX_TEXT_DUMP set"]
fn dump_random_models() {
    use proptest::strategy::ValueTree as _;
    let dir = std::env::var("ONNX_TEXT_DUMP").expect("set ONNX_TEXT_DUMP to a directory");
    std::fs::create_dir_all(&dir).unwrap();
    let mut runner = proptest::test_runner::TestRunner::deterministic();
    let strategy = model();
    for i in 0..1000 {
        let model = strategy.new_tree(&mut runner).unwrap().current();
        std::fs::write(format!("{dir}/random_{i:04}.onnx"), model.encode_to_vec()).unwrap();
    }
}

/// The round-trip property is only worth something if most generated models can be expressed.
#[test]
fn most_random_models_are_expressible() {
    use proptest::strategy::ValueTree as _;
    let mut runner = proptest::test_runner::TestRunner::deterministic();
    let strategy = model();
    let (mut expressible, mut nodes) = (0, 0);
    for _ in 0..300 {
        let model = strategy.new_tree(&mut runner).unwrap().current();
        if canonical_model(&model).is_ok() {
            expressible += 1;
            nodes += model.graph.as_ref().map_or(0, |g| g.node.len());
        }
    }
    println!("{expressible} of 300 random models are expressible, with {nodes} top-level nodes");
    assert!(
        expressible > 100,
        "only {expressible} of 300 random models are expressible"
    );
    assert!(
        nodes > 100,
        "expressible models have only {nodes} nodes in all"
    );
}
