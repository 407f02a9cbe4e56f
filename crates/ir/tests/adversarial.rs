//! Hostile models: each is refused with a message naming the problem, without a panic, a stack
//! overflow or an allocation the input did not pay for.

use bytes::Bytes;
use onnx_rewrite_ir::LoadOptions;
use onnx_rewrite_ir::load::load_bytes;
use onnx_rewrite_proto::tensor_proto::DataType;
use onnx_rewrite_proto::*;

fn refuse(bytes: Vec<u8>) -> String {
    match load_bytes(Bytes::from(bytes), None, &LoadOptions::default()) {
        Ok(_) => panic!("the model should be refused"),
        Err(e) => e.to_string(),
    }
}

fn s(text: &str) -> Option<String> {
    Some(text.to_owned())
}

fn model(graph: GraphProto) -> ModelProto {
    ModelProto {
        ir_version: Some(10),
        opset_import: vec![OperatorSetIdProto {
            domain: s(""),
            version: Some(21),
        }],
        graph: Some(graph),
        ..Default::default()
    }
}

/// `depth` If nodes, each inside the then-branch of the one before, written straight to the
/// wire (building it as nested prost messages would itself recurse that deep).
fn if_nest(depth: usize) -> Vec<u8> {
    use prost::encoding::{WireType, encode_key, encode_varint};
    fn field(number: u32, payload: &[u8], out: &mut Vec<u8>) {
        encode_key(number, WireType::LengthDelimited, out);
        encode_varint(payload.len() as u64, out);
        out.extend_from_slice(payload);
    }
    let mut graph = GraphProto {
        name: s("leaf"),
        ..Default::default()
    }
    .encode_to_vec();
    for _ in 0..depth {
        let mut attribute = AttributeProto {
            name: s("then_branch"),
            r#type: Some(5),
            ..Default::default()
        }
        .encode_to_vec();
        field(6, &graph, &mut attribute); // AttributeProto.g
        let mut node = NodeProto {
            op_type: s("If"),
            input: vec!["c".into()],
            ..Default::default()
        }
        .encode_to_vec();
        field(5, &attribute, &mut node); // NodeProto.attribute
        graph = Vec::new();
        field(1, &node, &mut graph); // GraphProto.node
    }
    let mut out = ModelProto {
        ir_version: Some(10),
        ..Default::default()
    }
    .encode_to_vec();
    field(7, &graph, &mut out); // ModelProto.graph
    out
}

#[test]
fn a_ten_thousand_deep_if_nest_is_refused_by_depth() {
    let message = refuse(if_nest(10_000));
    assert!(message.contains("nesting deeper than 100"), "{message}");
}

#[test]
fn a_node_in_a_domain_the_model_does_not_import_is_refused() {
    let node = NodeProto {
        op_type: s("Mystery"),
        domain: s("com.example"),
        name: s("m"),
        input: vec!["x".into()],
        output: vec!["y".into()],
        ..Default::default()
    };
    let graph = GraphProto {
        node: vec![node],
        input: vec![ValueInfoProto {
            name: s("x"),
            ..Default::default()
        }],
        output: vec![ValueInfoProto {
            name: s("y"),
            ..Default::default()
        }],
        ..Default::default()
    };
    let message = refuse(model(graph).encode_to_vec());
    assert!(
        message.contains("'com.example'") && message.contains("node 'm' (Mystery)"),
        "{message}"
    );
}

#[test]
fn an_absurdly_long_name_is_refused() {
    let long = "n".repeat(100_000);
    let node = NodeProto {
        op_type: s("Relu"),
        input: vec!["x".into()],
        output: vec![long.clone()],
        ..Default::default()
    };
    let graph = GraphProto {
        node: vec![node],
        input: vec![ValueInfoProto {
            name: s("x"),
            ..Default::default()
        }],
        output: vec![ValueInfoProto {
            name: Some(long),
            ..Default::default()
        }],
        ..Default::default()
    };
    let message = refuse(model(graph).encode_to_vec());
    assert!(message.contains("100000 bytes"), "{message}");
}

#[test]
fn a_two_gigabyte_declaration_over_ten_bytes_is_refused_without_allocating_it() {
    let tensor = TensorProto {
        name: s("w"),
        dims: vec![1 << 29],
        data_type: Some(DataType::Float as i32),
        raw_data: Some(Bytes::from_static(&[0; 10])),
        ..Default::default()
    };
    let graph = GraphProto {
        initializer: vec![tensor],
        output: vec![ValueInfoProto {
            name: s("w"),
            ..Default::default()
        }],
        ..Default::default()
    };
    let message = refuse(model(graph).encode_to_vec());
    assert!(
        message.contains("tensor 'w'")
            && message.contains("2147483648 bytes")
            && message.contains("holds 10"),
        "{message}"
    );
}

#[test]
fn a_length_prefix_past_the_end_is_refused() {
    let mut bytes = model(GraphProto::default()).encode_to_vec();
    bytes.extend_from_slice(&[0x3a, 0xff, 0xff, 0xff, 0x0f]); // field 7, length 2^32-1, no payload
    let message = refuse(bytes);
    assert!(message.contains("past the end"), "{message}");
}
