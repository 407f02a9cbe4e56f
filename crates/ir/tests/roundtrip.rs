//! Load → IR → save must keep every field, byte for byte, and refuse malformed models with a
//! message that names the problem.

use bytes::Bytes;
use onnx_rewrite_ir::load::{load_bytes, load_file};
use onnx_rewrite_ir::save::{save_file, to_bytes, to_proto};
use onnx_rewrite_ir::{
    ExternalDataPolicy, LoadErrorKind, LoadOptions, PendingPayload, SaveOptions,
};
use onnx_rewrite_proto::tensor_proto::{DataLocation, DataType};
use onnx_rewrite_proto::*;

fn s(text: &str) -> Option<String> {
    Some(text.to_owned())
}

fn entry(key: &str, value: &str) -> StringStringEntryProto {
    StringStringEntryProto {
        key: s(key),
        value: s(value),
    }
}

fn tensor_type(elem: DataType, dims: &[Option<i64>]) -> TypeProto {
    use tensor_shape_proto::{Dimension, dimension::Value};
    let dim = dims
        .iter()
        .map(|d| Dimension {
            value: Some(d.map_or_else(|| Value::DimParam("N".into()), Value::DimValue)),
            denotation: None,
        })
        .collect();
    TypeProto {
        value: Some(type_proto::Value::TensorType(type_proto::Tensor {
            elem_type: Some(elem as i32),
            shape: Some(TensorShapeProto { dim }),
        })),
        denotation: None,
    }
}

fn info(name: &str, ty: TypeProto) -> ValueInfoProto {
    ValueInfoProto {
        name: s(name),
        r#type: Some(ty),
        doc_string: s("an I/O doc"),
        metadata_props: vec![entry("k", "v")],
    }
}

fn node(op: &str, inputs: &[&str], outputs: &[&str]) -> NodeProto {
    NodeProto {
        op_type: s(op),
        name: s(&format!("{op}_{}", outputs.first().unwrap_or(&""))),
        input: inputs.iter().map(|i| (*i).to_owned()).collect(),
        output: outputs.iter().map(|o| (*o).to_owned()).collect(),
        ..Default::default()
    }
}

fn float_tensor(name: &str, dims: &[i64], values: &[f32]) -> TensorProto {
    TensorProto {
        name: s(name),
        dims: dims.to_vec(),
        data_type: Some(DataType::Float as i32),
        raw_data: Some(
            values
                .iter()
                .flat_map(|v| v.to_le_bytes())
                .collect::<Vec<u8>>()
                .into(),
        ),
        ..Default::default()
    }
}

/// A model that sets every field the IR has to carry through.
fn rich_model() -> ModelProto {
    let then_branch = GraphProto {
        name: s("then"),
        node: vec![node("Add", &["x", "w"], &["t"])],
        output: vec![info("t", tensor_type(DataType::Float, &[None, Some(3)]))],
        initializer: vec![float_tensor("inner_c", &[1], &[2.0])],
        ..Default::default()
    };
    let else_branch = GraphProto {
        name: s("else"),
        node: vec![node("Identity", &["x"], &["e"])],
        output: vec![info("e", TypeProto::default())],
        ..Default::default()
    };
    let mut if_node = node("If", &["cond"], &["y"]);
    if_node.attribute = vec![
        AttributeProto {
            name: s("then_branch"),
            r#type: Some(attribute_proto::AttributeType::Graph as i32),
            g: Some(then_branch),
            ..Default::default()
        },
        AttributeProto {
            name: s("else_branch"),
            r#type: Some(attribute_proto::AttributeType::Graph as i32),
            g: Some(else_branch),
            ..Default::default()
        },
    ];
    if_node.doc_string = s("node doc");
    if_node.metadata_props = vec![entry("origin", "torch.cond")];
    let mut constant = node("Constant", &[], &["c"]);
    constant.attribute = vec![AttributeProto {
        name: s("value"),
        r#type: Some(4),
        t: Some(Box::new(float_tensor("", &[], &[1.5]))),
        ..Default::default()
    }];
    let mut resize = node("Resize", &["y", "", "scales"], &["r", ""]);
    resize.domain = s("");
    let call = NodeProto {
        domain: s("local"),
        ..node("Twice", &["r"], &["out"])
    };
    let graph = GraphProto {
        name: s("main"),
        doc_string: s("graph doc"),
        node: vec![constant, if_node, resize, call],
        input: vec![
            info("x", tensor_type(DataType::Float, &[None, Some(3)])),
            info("cond", tensor_type(DataType::Bool, &[])),
            info("w", tensor_type(DataType::Float, &[Some(3)])),
        ],
        initializer: vec![
            float_tensor("w", &[3], &[1.0, 2.0, 3.0]),
            float_tensor("scales", &[4], &[1.0, 1.0, 2.0, 2.0]),
        ],
        sparse_initializer: vec![SparseTensorProto {
            values: Some(Box::new(float_tensor("sp", &[2], &[5.0, 6.0]))),
            indices: Some(Box::new(TensorProto {
                name: s("sp_idx"),
                dims: vec![2],
                data_type: Some(DataType::Int64 as i32),
                int64_data: vec![0, 3],
                ..Default::default()
            })),
            dims: vec![4],
        }],
        output: vec![info("out", tensor_type(DataType::Float, &[None, None]))],
        value_info: vec![
            info("y", tensor_type(DataType::Float, &[None, Some(3)])),
            info("stale_name", TypeProto::default()),
        ],
        quantization_annotation: vec![TensorAnnotation {
            tensor_name: s("y"),
            quant_parameter_tensor_names: vec![entry("SCALE_TENSOR", "s")],
        }],
        metadata_props: vec![entry("graph_key", "graph_value")],
    };
    let function = FunctionProto {
        name: s("Twice"),
        domain: s("local"),
        input: vec!["a".into()],
        output: vec!["b".into()],
        attribute: vec!["alpha".into()],
        node: vec![node("Add", &["a", "a"], &["b"])],
        opset_import: vec![OperatorSetIdProto {
            domain: s(""),
            version: Some(18),
        }],
        doc_string: s("function doc"),
        value_info: vec![info("b", TypeProto::default())],
        metadata_props: vec![entry("fk", "fv")],
        ..Default::default()
    };
    ModelProto {
        ir_version: Some(10),
        opset_import: vec![
            OperatorSetIdProto {
                domain: s(""),
                version: Some(18),
            },
            OperatorSetIdProto {
                domain: s("local"),
                version: Some(1),
            },
        ],
        producer_name: s("test"),
        producer_version: s("1"),
        domain: s("ai.test"),
        model_version: Some(7),
        doc_string: s("model doc"),
        graph: Some(graph),
        metadata_props: vec![entry("author", "me")],
        training_info: vec![TrainingInfoProto {
            initialization: Some(GraphProto {
                name: s("init"),
                ..Default::default()
            }),
            update_binding: vec![entry("w", "w_new")],
            ..Default::default()
        }],
        functions: vec![function],
        ..Default::default()
    }
}

#[test]
fn every_field_survives_load_and_save_byte_for_byte() {
    let bytes = rich_model().encode_to_vec();
    let model = load_bytes(Bytes::from(bytes.clone()), None, &LoadOptions::default()).unwrap();
    model.check().unwrap();
    assert_eq!(to_proto(&model).unwrap().encode_to_vec(), bytes);
    assert_eq!(to_bytes(&model).unwrap(), bytes);
}

#[test]
fn subgraph_captures_resolve_to_outer_values() {
    let model = load_bytes(
        Bytes::from(rich_model().encode_to_vec()),
        None,
        &LoadOptions::default(),
    )
    .unwrap();
    let main = model.graph(model.main());
    let if_node = main
        .nodes()
        .iter()
        .copied()
        .find(|n| model.node(*n).op_type() == "If")
        .unwrap();
    let then_graph = model.node(if_node).subgraphs().next().unwrap();
    let captured: Vec<&str> = model
        .captures(then_graph)
        .iter()
        .map(|v| model.value(*v).name())
        .collect();
    assert_eq!(captured, ["x", "w"]);
    let resize = main
        .nodes()
        .iter()
        .copied()
        .find(|n| model.node(*n).op_type() == "Resize")
        .unwrap();
    assert_eq!(
        model.node(resize).inputs()[1],
        None,
        "a missing optional input is explicit"
    );
    assert_eq!(
        model.node(resize).outputs()[1],
        None,
        "an unproduced optional output is explicit"
    );
}

fn load_err(model: ModelProto) -> String {
    match load_bytes(
        Bytes::from(model.encode_to_vec()),
        None,
        &LoadOptions::default(),
    ) {
        Ok(_) => panic!("the model should be refused"),
        Err(e) => e.to_string(),
    }
}

fn simple_graph(nodes: Vec<NodeProto>, inputs: &[&str], outputs: &[&str]) -> ModelProto {
    ModelProto {
        ir_version: Some(10),
        graph: Some(GraphProto {
            name: s("g"),
            node: nodes,
            input: inputs
                .iter()
                .map(|i| info(i, tensor_type(DataType::Float, &[Some(1)])))
                .collect(),
            output: outputs
                .iter()
                .map(|o| info(o, TypeProto::default()))
                .collect(),
            ..Default::default()
        }),
        ..Default::default()
    }
}

#[test]
fn malformed_graphs_are_refused_with_the_node_and_name() {
    let undefined = load_err(simple_graph(
        vec![node("Relu", &["nope"], &["y"])],
        &["x"],
        &["y"],
    ));
    assert!(
        undefined.contains("'nope'") && undefined.contains("Relu_y"),
        "{undefined}"
    );

    let duplicate = load_err(simple_graph(
        vec![node("Relu", &["x"], &["y"]), node("Neg", &["x"], &["y"])],
        &["x"],
        &["y"],
    ));
    assert!(
        duplicate.contains("'y' is defined more than once"),
        "{duplicate}"
    );

    let cycle = load_err(simple_graph(
        vec![
            node("Add", &["x", "b"], &["a"]),
            node("Neg", &["a"], &["b"]),
        ],
        &["x"],
        &["b"],
    ));
    assert!(cycle.contains("cycle"), "{cycle}");

    let output = load_err(simple_graph(vec![], &["x"], &["missing"]));
    assert!(output.contains("output 'missing'"), "{output}");

    let duplicate_input = load_err(simple_graph(vec![], &["x", "x"], &["x"]));
    assert!(duplicate_input.contains("input 'x'"), "{duplicate_input}");

    let mut bad_tensor = simple_graph(vec![], &["x"], &["x"]);
    let mut t = float_tensor("big", &[1 << 28, 8], &[]);
    t.raw_data = Some(Bytes::from_static(&[0; 10]));
    bad_tensor.graph.as_mut().unwrap().initializer.push(t);
    let message = load_err(bad_tensor);
    assert!(
        message.contains("'big'") && message.contains("8589934592 bytes"),
        "{message}"
    );
}

#[test]
fn unsorted_graphs_load_and_keep_their_order() {
    let model = simple_graph(
        vec![node("Neg", &["a"], &["b"]), node("Relu", &["x"], &["a"])],
        &["x"],
        &["b"],
    );
    let bytes = model.encode_to_vec();
    let loaded = load_bytes(Bytes::from(bytes.clone()), None, &LoadOptions::default()).unwrap();
    assert_eq!(to_bytes(&loaded).unwrap(), bytes);
}

#[test]
fn truncated_and_garbage_input_is_an_error_never_a_panic() {
    let bytes = rich_model().encode_to_vec();
    for cut in (0..bytes.len()).step_by(7) {
        let _ = load_bytes(
            Bytes::copy_from_slice(&bytes[..cut]),
            None,
            &LoadOptions::default(),
        );
    }
    let err = load_bytes(
        Bytes::copy_from_slice(&bytes[..bytes.len() / 2]),
        None,
        &LoadOptions::default(),
    )
    .unwrap_err();
    assert!(
        matches!(err.kind, LoadErrorKind::Wire(_) | LoadErrorKind::Decode(_)),
        "{err}"
    );
    let err = load_bytes(
        Bytes::from_static(b"\xff\xff\xff\xff garbage"),
        None,
        &LoadOptions::default(),
    )
    .unwrap_err();
    assert!(
        err.to_string().contains("not a valid ONNX protobuf"),
        "{err}"
    );
}

#[test]
fn unknown_fields_are_refused_unless_allowed() {
    let mut bytes = rich_model().encode_to_vec();
    bytes.extend_from_slice(&[0xf8, 0x07, 0x01]); // field 127, varint 1, at the top level
    let err = load_bytes(Bytes::from(bytes.clone()), None, &LoadOptions::default()).unwrap_err();
    assert!(
        err.to_string().contains("field number 127")
            && err.to_string().contains("--allow-unknown-fields"),
        "{err}"
    );
    let model = load_bytes(
        Bytes::from(bytes),
        None,
        &LoadOptions {
            allow_unknown_fields: true,
        },
    )
    .unwrap();
    assert_eq!(model.dropped_unknown_fields().len(), 1);
    assert_eq!(to_bytes(&model).unwrap(), rich_model().encode_to_vec());
}

#[test]
fn external_data_is_read_checked_and_written_to_a_sidecar() {
    let dir = tempfile::tempdir().unwrap();
    let payload: Vec<u8> = (0..4096u32)
        .flat_map(|i| (i as f32).to_le_bytes())
        .collect();
    std::fs::write(
        dir.path().join("weights.bin"),
        [&[0u8; 16][..], &payload].concat(),
    )
    .unwrap();
    let mut model = simple_graph(vec![node("Add", &["x", "w"], &["y"])], &["x"], &["y"]);
    model.graph.as_mut().unwrap().initializer.push(TensorProto {
        name: s("w"),
        dims: vec![4096],
        data_type: Some(DataType::Float as i32),
        data_location: Some(DataLocation::External as i32),
        external_data: vec![
            entry("location", "weights.bin"),
            entry("offset", "16"),
            entry("length", "16384"),
        ],
        ..Default::default()
    });
    let input = dir.path().join("model.onnx");
    std::fs::write(&input, model.encode_to_vec()).unwrap();
    let loaded = load_file(&input, &LoadOptions::default()).unwrap();
    let w = loaded.graph(loaded.main()).initializers()[0];
    assert_eq!(
        loaded.value(w).initializer().unwrap().raw_data.as_deref(),
        Some(&payload[..])
    );

    // As loaded: still external, now in `<output>.data`.
    let output = dir.path().join("out.onnx");
    let summary = save_file(&loaded, &output, &SaveOptions::default()).unwrap();
    assert_eq!(
        summary
            .external_data
            .as_ref()
            .map(|(p, n)| (p.file_name().unwrap().to_owned(), *n)),
        Some(("out.onnx.data".into(), 16384))
    );
    let reloaded = load_file(&output, &LoadOptions::default()).unwrap();
    let w = reloaded.graph(reloaded.main()).initializers()[0];
    let tensor = reloaded.value(w).initializer().unwrap();
    assert_eq!(tensor.raw_data.as_deref(), Some(&payload[..]));
    assert_eq!(
        tensor.external_data,
        vec![
            entry("location", "out.onnx.data"),
            entry("offset", "0"),
            entry("length", "16384")
        ]
    );

    // Inline on request: the same bytes, no sidecar.
    let inline = dir.path().join("inline.onnx");
    let summary = save_file(
        &loaded,
        &inline,
        &SaveOptions {
            external_data: ExternalDataPolicy::Never,
            ..Default::default()
        },
    )
    .unwrap();
    assert_eq!(summary.external_data, None);
    let decoded = ModelProto::decode(std::fs::read(&inline).unwrap().as_slice()).unwrap();
    let t = &decoded.graph.unwrap().initializer[0];
    assert_eq!(t.raw_data.as_deref(), Some(&payload[..]));
    assert_eq!(t.data_location, None);
    assert!(t.external_data.is_empty());

    // Escapes are refused.
    for (location, what) in [
        ("../weights.bin", "'..'"),
        ("/etc/passwd", "not a plain relative path"),
    ] {
        let mut bad = model.clone();
        bad.graph.as_mut().unwrap().initializer[0].external_data[0] = entry("location", location);
        let path = dir.path().join("bad.onnx");
        std::fs::write(&path, bad.encode_to_vec()).unwrap();
        let err = load_file(&path, &LoadOptions::default())
            .unwrap_err()
            .to_string();
        assert!(
            err.contains(what) && err.contains("bad.onnx") && err.contains("'w'"),
            "{err}"
        );
    }
    let mut past_end = model.clone();
    past_end.graph.as_mut().unwrap().initializer[0].external_data[1] = entry("offset", "100");
    let path = dir.path().join("past_end.onnx");
    std::fs::write(&path, past_end.encode_to_vec()).unwrap();
    let err = load_file(&path, &LoadOptions::default())
        .unwrap_err()
        .to_string();
    assert!(err.contains("past the end"), "{err}");
}

#[test]
fn a_failed_save_leaves_the_destination_untouched() {
    let dir = tempfile::tempdir().unwrap();
    let model = load_bytes(
        Bytes::from(rich_model().encode_to_vec()),
        None,
        &LoadOptions::default(),
    )
    .unwrap();
    let missing_folder = dir.path().join("no/such/folder/out.onnx");
    assert!(save_file(&model, &missing_folder, &SaveOptions::default()).is_err());
    let out = dir.path().join("out.onnx");
    save_file(&model, &out, &SaveOptions::default()).unwrap();
    let leftovers: Vec<_> = std::fs::read_dir(dir.path())
        .unwrap()
        .map(|e| e.unwrap().file_name())
        .collect();
    assert_eq!(
        leftovers,
        vec![std::ffi::OsString::from("out.onnx")],
        "no temporary file is left behind"
    );
    assert_eq!(std::fs::read(&out).unwrap(), rich_model().encode_to_vec());
}

#[test]
fn a_pending_payload_is_computed_into_every_kind_of_output() {
    // 3 MiB of bytes that are a function of their offset, in a main-graph initializer and in
    // an If branch's, standing for what a pass would derive from a tensor it has.
    const LEN: usize = 3 << 20;
    let byte = |i: usize| (i.wrapping_mul(31) % 253) as u8;
    let want: Vec<u8> = (0..LEN).map(byte).collect();
    let branch = |name: &str| GraphProto {
        name: s(name),
        node: vec![node("Identity", &["b"], &[&format!("{name}_out")])],
        initializer: vec![float_tensor("b", &[1], &[0.0])],
        output: vec![info(&format!("{name}_out"), TypeProto::default())],
        ..Default::default()
    };
    let mut if_node = node("If", &["c"], &["z"]);
    for (key, name) in [("then_branch", "then"), ("else_branch", "else")] {
        if_node.attribute.push(AttributeProto {
            name: s(key),
            r#type: Some(attribute_proto::AttributeType::Graph as i32),
            g: Some(branch(name)),
            ..Default::default()
        });
    }
    let mut proto = simple_graph(
        vec![node("Add", &["x", "w"], &["y"]), if_node],
        &["x", "c"],
        &["y", "z"],
    );
    proto
        .graph
        .as_mut()
        .unwrap()
        .initializer
        .push(float_tensor("w", &[1], &[0.0]));
    let mut model = load_bytes(
        Bytes::from(proto.encode_to_vec()),
        None,
        &LoadOptions::default(),
    )
    .unwrap();
    let w = model.graph(model.main()).initializers()[0];
    let then_graph = model
        .node(model.graph(model.main()).nodes()[1])
        .subgraphs()
        .next()
        .unwrap();
    let b = model.graph(then_graph).initializers()[0];
    for v in [w, b] {
        let tensor = TensorProto {
            dims: vec![(LEN / 2) as i64],
            data_type: Some(DataType::Float16 as i32),
            ..Default::default()
        };
        let payload = PendingPayload::new(LEN, 2, move |offset, out| {
            for (i, x) in out.iter_mut().enumerate() {
                *x = byte(offset + i);
            }
        });
        model.set_pending_initializer(v, tensor, payload);
    }
    // Until computed, a reader sees no bytes, never wrong ones.
    assert_eq!(model.value(w).initializer().unwrap().raw_data, None);

    let payloads = |decoded: &ModelProto| -> Vec<Vec<u8>> {
        let g = decoded.graph.as_ref().unwrap();
        let then = g.node[1]
            .attribute
            .iter()
            .find(|a| a.name() == "then_branch")
            .unwrap();
        vec![
            g.initializer[0]
                .raw_data
                .as_deref()
                .unwrap_or_default()
                .to_vec(),
            then.g.as_ref().unwrap().initializer[0]
                .raw_data
                .as_deref()
                .unwrap_or_default()
                .to_vec(),
        ]
    };
    let dir = tempfile::tempdir().unwrap();
    let inline = dir.path().join("inline.onnx");
    save_file(&model, &inline, &SaveOptions::default()).unwrap();
    let decoded = ModelProto::decode(std::fs::read(&inline).unwrap().as_slice()).unwrap();
    assert_eq!(
        payloads(&decoded),
        [want.clone(), want.clone()],
        "streamed inline"
    );

    let external = dir.path().join("external.onnx");
    let options = SaveOptions {
        external_data: ExternalDataPolicy::Always,
        ..Default::default()
    };
    save_file(&model, &external, &options).unwrap();
    let reloaded = load_file(&external, &LoadOptions::default()).unwrap();
    let bytes_of = |m: &onnx_rewrite_ir::Model, v| {
        m.value(v)
            .initializer()
            .unwrap()
            .raw_data
            .as_deref()
            .unwrap()
            .to_vec()
    };
    assert_eq!(bytes_of(&reloaded, w), want, "streamed to the sidecar");
    assert_eq!(bytes_of(&reloaded, b), want, "streamed to the sidecar");

    let in_memory = ModelProto::decode(to_bytes(&model).unwrap().as_slice()).unwrap();
    assert_eq!(
        payloads(&in_memory),
        [want.clone(), want.clone()],
        "computed in memory"
    );

    model.materialize_pending();
    assert!(!model.has_pending_payloads());
    assert_eq!(bytes_of(&model, w), want, "materialized");
}
