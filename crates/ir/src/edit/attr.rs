//! Attribute values, built one way: a pass says the name and the value, the type tag follows.

use onnx_rewrite_proto::attribute_proto::AttributeType;
use onnx_rewrite_proto::{AttributeProto, TensorProto};

use crate::{Attribute, Model, NodeId};

fn tagged(name: &str, kind: AttributeType) -> AttributeProto {
    AttributeProto {
        name: Some(name.to_owned()),
        r#type: Some(kind as i32),
        ..AttributeProto::default()
    }
}

pub fn int(name: &str, value: i64) -> AttributeProto {
    AttributeProto {
        i: Some(value),
        ..tagged(name, AttributeType::Int)
    }
}

pub fn ints(name: &str, values: &[i64]) -> AttributeProto {
    AttributeProto {
        ints: values.to_vec(),
        ..tagged(name, AttributeType::Ints)
    }
}

pub fn float(name: &str, value: f32) -> AttributeProto {
    AttributeProto {
        f: Some(value),
        ..tagged(name, AttributeType::Float)
    }
}

pub fn floats(name: &str, values: &[f32]) -> AttributeProto {
    AttributeProto {
        floats: values.to_vec(),
        ..tagged(name, AttributeType::Floats)
    }
}

pub fn string(name: &str, value: &str) -> AttributeProto {
    AttributeProto {
        s: Some(value.as_bytes().to_vec().into()),
        ..tagged(name, AttributeType::String)
    }
}

pub fn tensor(name: &str, value: TensorProto) -> AttributeProto {
    AttributeProto {
        t: Some(Box::new(value)),
        ..tagged(name, AttributeType::Tensor)
    }
}

/// Sets attribute `value.name` of `node` to `value`, adding it when the node has none of that
/// name (graph-valued attributes are not set this way).
pub fn set(model: &mut Model, node: NodeId, value: AttributeProto) {
    let n = model.node_mut(node);
    match n
        .attributes
        .iter_mut()
        .find(|a| a.proto.name() == value.name())
    {
        Some(a) => a.proto = value,
        None => n.attributes.push(Attribute {
            proto: value,
            graph: None,
            graphs: Vec::new(),
        }),
    }
}
