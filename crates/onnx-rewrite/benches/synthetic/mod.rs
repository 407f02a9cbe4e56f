//! A synthetic decoder of any size, with the patterns the passes rewrite, so that rule matches
//! grow with the graph: per layer, six 2-D linear layers as Gemm (two with `transB`, one with
//! `alpha`), the attention-scale chain dynamo emits (`Shape → Gather → Cast → Sqrt → Div`),
//! a float16 Cast pair, Identities, and Constants repeated in every layer (which hash-consing
//! merges). About 33 nodes per layer.

use onnx_rewrite_proto::tensor_proto::DataType;
use onnx_rewrite_proto::*;

const HIDDEN: i64 = 16;
pub const NODES_PER_LAYER: usize = 33;

fn attr_i(name: &str, v: i64) -> AttributeProto {
    AttributeProto {
        name: Some(name.into()),
        r#type: Some(attribute_proto::AttributeType::Int as i32),
        i: Some(v),
        ..Default::default()
    }
}

fn attr_f(name: &str, v: f32) -> AttributeProto {
    AttributeProto {
        name: Some(name.into()),
        r#type: Some(attribute_proto::AttributeType::Float as i32),
        f: Some(v),
        ..Default::default()
    }
}

fn attr_t(name: &str, t: TensorProto) -> AttributeProto {
    AttributeProto {
        name: Some(name.into()),
        r#type: Some(attribute_proto::AttributeType::Tensor as i32),
        t: Some(Box::new(t)),
        ..Default::default()
    }
}

fn weight(name: &str, dims: &[i64], seed: usize) -> TensorProto {
    let count: i64 = dims.iter().product();
    let data: Vec<u8> = (0..count)
        .flat_map(|k| ((((k as usize * 31 + seed * 17) % 97) as f32 - 48.0) / 200.0).to_le_bytes())
        .collect();
    TensorProto {
        name: Some(name.into()),
        dims: dims.to_vec(),
        data_type: Some(DataType::Float as i32),
        raw_data: Some(data.into()),
        ..Default::default()
    }
}

fn io(name: &str, elem: DataType, dims: &[&str]) -> ValueInfoProto {
    use tensor_shape_proto::{Dimension, dimension::Value};
    let dim = dims
        .iter()
        .map(|d| Dimension {
            value: Some(
                d.parse::<i64>()
                    .map_or_else(|_| Value::DimParam((*d).to_owned()), Value::DimValue),
            ),
            denotation: None,
        })
        .collect();
    ValueInfoProto {
        name: Some(name.into()),
        r#type: Some(TypeProto {
            value: Some(type_proto::Value::TensorType(type_proto::Tensor {
                elem_type: Some(elem as i32),
                shape: Some(TensorShapeProto { dim }),
            })),
            denotation: None,
        }),
        ..Default::default()
    }
}

/// A decoder with `layers` layers (`layers * NODES_PER_LAYER` nodes), input `x: float[T,16]`.
pub fn decoder(layers: usize) -> ModelProto {
    let mut nodes = Vec::new();
    let mut initializers = Vec::new();
    let mut node = |op: &str, inputs: &[&str], output: &str, attributes: Vec<AttributeProto>| {
        nodes.push(NodeProto {
            op_type: Some(op.into()),
            name: Some(format!("/{output}/{op}")),
            input: inputs.iter().map(|s| (*s).to_owned()).collect(),
            output: vec![output.to_owned()],
            attribute: attributes,
            ..Default::default()
        });
    };
    let scalar = |v: f32| TensorProto {
        data_type: Some(DataType::Float as i32),
        raw_data: Some(v.to_le_bytes().to_vec().into()),
        ..Default::default()
    };
    let index = |v: i64| TensorProto {
        data_type: Some(DataType::Int64 as i32),
        raw_data: Some(v.to_le_bytes().to_vec().into()),
        ..Default::default()
    };
    let mut h = "x".to_owned();
    for l in 0..layers {
        let p = |s: &str| format!("l{l}.{s}");
        for name in ["wq", "wk", "wv", "wo", "up", "down"] {
            initializers.push(weight(&p(name), &[HIDDEN, HIDDEN], l * 7 + name.len()));
        }
        initializers.push(weight(&p("bias"), &[HIDDEN], l));
        let (q, k, v) = (p("q"), p("k"), p("v"));
        node("Gemm", &[&h, &p("wq"), &p("bias")], &q, vec![]);
        node("Gemm", &[&h, &p("wk")], &k, vec![attr_i("transB", 1)]);
        node(
            "Gemm",
            &[&h, &p("wv"), &p("bias")],
            &v,
            vec![attr_f("alpha", 0.5)],
        );
        // The attention scale, as dynamo spells it per layer.
        node("Shape", &[&q], &p("shape"), vec![]);
        node(
            "Constant",
            &[],
            &p("one_index"),
            vec![attr_t("value", index(1))],
        );
        node(
            "Gather",
            &[&p("shape"), &p("one_index")],
            &p("head_dim"),
            vec![attr_i("axis", 0)],
        );
        node(
            "Cast",
            &[&p("head_dim")],
            &p("head_dim_f"),
            vec![attr_i("to", DataType::Float as i64)],
        );
        node("Sqrt", &[&p("head_dim_f")], &p("sqrt"), vec![]);
        node(
            "Constant",
            &[],
            &p("one"),
            vec![attr_t("value", scalar(1.0))],
        );
        node("Div", &[&p("one"), &p("sqrt")], &p("scale"), vec![]);
        node(
            "Transpose",
            &[&k],
            &p("kt"),
            vec![AttributeProto {
                name: Some("perm".into()),
                r#type: Some(7),
                ints: vec![1, 0],
                ..Default::default()
            }],
        );
        node("MatMul", &[&q, &p("kt")], &p("scores"), vec![]);
        node("Mul", &[&p("scores"), &p("scale")], &p("scaled"), vec![]);
        node(
            "Softmax",
            &[&p("scaled")],
            &p("probs"),
            vec![attr_i("axis", -1)],
        );
        node("MatMul", &[&p("probs"), &v], &p("attn"), vec![]);
        node("Identity", &[&p("attn")], &p("attn_id"), vec![]);
        node("Gemm", &[&p("attn_id"), &p("wo")], &p("proj"), vec![]);
        node("Add", &[&h, &p("proj")], &p("r1"), vec![]);
        // A float16 round trip, as mixed-precision exports leave them.
        node(
            "Cast",
            &[&p("r1")],
            &p("r1_half"),
            vec![attr_i("to", DataType::Float16 as i64)],
        );
        node(
            "Cast",
            &[&p("r1_half")],
            &p("r1_back"),
            vec![attr_i("to", DataType::Float as i64)],
        );
        node(
            "ReduceMean",
            &[&p("r1_back")],
            &p("mean"),
            vec![
                attr_i("keepdims", 1),
                AttributeProto {
                    name: Some("axes".into()),
                    r#type: Some(7),
                    ints: vec![-1],
                    ..Default::default()
                },
            ],
        );
        node("Sub", &[&p("r1_back"), &p("mean")], &p("centered"), vec![]);
        node("Mul", &[&p("centered"), &p("centered")], &p("sq"), vec![]);
        node(
            "ReduceMean",
            &[&p("sq")],
            &p("var"),
            vec![
                attr_i("keepdims", 1),
                AttributeProto {
                    name: Some("axes".into()),
                    r#type: Some(7),
                    ints: vec![-1],
                    ..Default::default()
                },
            ],
        );
        node(
            "Constant",
            &[],
            &p("eps"),
            vec![attr_t("value", scalar(1e-5))],
        );
        node("Add", &[&p("var"), &p("eps")], &p("var_eps"), vec![]);
        node("Sqrt", &[&p("var_eps")], &p("std"), vec![]);
        node("Div", &[&p("centered"), &p("std")], &p("normed"), vec![]);
        node(
            "Gemm",
            &[&p("normed"), &p("up")],
            &p("up_out"),
            vec![attr_i("transB", 1)],
        );
        node("Gelu", &[&p("up_out")], &p("act"), vec![]);
        node("Identity", &[&p("act")], &p("act_id"), vec![]);
        node(
            "Gemm",
            &[&p("act_id"), &p("down"), &p("bias")],
            &p("down_out"),
            vec![attr_f("beta", 2.0)],
        );
        node("Add", &[&p("normed"), &p("down_out")], &p("out"), vec![]);
        h = p("out");
    }
    ModelProto {
        ir_version: Some(10),
        opset_import: vec![OperatorSetIdProto {
            domain: Some(String::new()),
            version: Some(20),
        }],
        producer_name: Some("onnx-rewrite synthetic decoder".into()),
        graph: Some(GraphProto {
            name: Some(format!("decoder_{layers}")),
            node: nodes,
            initializer: initializers,
            input: vec![io("x", DataType::Float, &["T", "16"])],
            output: vec![io(&h, DataType::Float, &["T", "16"])],
            ..Default::default()
        }),
        ..Default::default()
    }
}
