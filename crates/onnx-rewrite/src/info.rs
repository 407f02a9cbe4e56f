//! What `onnx-rewrite info` reports about a model: opsets, sizes, I/O types, the op histogram.

use std::collections::BTreeMap;

use onnx_rewrite_ir::{GraphIo, Model, tensor};
use onnx_rewrite_proto::{
    TypeProto, tensor_proto::DataType, tensor_shape_proto::dimension::Value as Dim,
    type_proto::Value as Ty,
};

/// A summary of a model.
#[derive(Debug, Clone, serde::Serialize)]
pub struct ModelInfo {
    pub ir_version: i64,
    pub producer: String,
    /// Opset version per domain (`""` is the default domain).
    pub opsets: BTreeMap<String, i64>,
    pub graph_name: String,
    pub inputs: Vec<IoInfo>,
    pub outputs: Vec<IoInfo>,
    /// Nodes in every graph (main graph, subgraphs and function bodies).
    pub nodes: usize,
    pub main_graph_nodes: usize,
    pub subgraphs: usize,
    pub functions: Vec<String>,
    pub initializers: usize,
    /// Bytes of constant data (initializers, in every graph).
    pub initializer_bytes: u64,
    /// The part of those bytes stored in external files.
    pub external_bytes: u64,
    /// Node count per operator, `domain.Op` for non-default domains, over every graph.
    pub ops: BTreeMap<String, usize>,
    /// What each pass would find, by pass name (passes with nothing to do are left out).
    pub passes: BTreeMap<String, String>,
    /// Where a router's top-k indices dispatch tokens at run time (MoE layers, in any form
    /// but the dense one), one line each.
    pub moe_dispatch: Vec<String>,
}

/// A graph input or output.
#[derive(Debug, Clone, serde::Serialize)]
pub struct IoInfo {
    pub name: String,
    /// The type in ONNX text syntax, such as `float[batch,seq,768]`.
    pub r#type: String,
}

impl ModelInfo {
    /// Surveys the passes too; the model comes back as it was.
    pub fn of(model: &mut Model) -> Self {
        let proto = &model.proto;
        let producer = match (proto.producer_name(), proto.producer_version()) {
            (name, "") => name.to_owned(),
            (name, version) => format!("{name} {version}"),
        };
        let main = model.graph(model.main());
        let io = |ios: &[GraphIo]| {
            ios.iter()
                .map(|io| IoInfo {
                    name: model.value(io.value).name().to_owned(),
                    r#type: io
                        .info
                        .as_ref()
                        .and_then(|i| i.r#type.as_ref())
                        .map_or_else(|| "?".to_owned(), type_string),
                })
                .collect()
        };
        let mut info = Self {
            ir_version: proto.ir_version(),
            producer,
            opsets: proto
                .opset_import
                .iter()
                .map(|o| (o.domain().to_owned(), o.version()))
                .collect(),
            graph_name: main.proto.name().to_owned(),
            inputs: io(main.inputs()),
            outputs: io(main.outputs()),
            nodes: 0,
            main_graph_nodes: main.nodes().len(),
            subgraphs: 0,
            functions: model
                .functions
                .iter()
                .map(|f| f.proto.name().to_owned())
                .collect(),
            initializers: 0,
            initializer_bytes: 0,
            external_bytes: 0,
            ops: BTreeMap::new(),
            passes: crate::registry()
                .passes()
                .iter()
                .filter_map(|p| Some((p.name().to_owned(), p.survey(model)?)))
                .collect(),
            moe_dispatch: crate::session::dispatch_regions(model),
        };
        for graph_id in model.graph_ids() {
            let graph = model.graph(graph_id);
            if matches!(graph.owner(), onnx_rewrite_ir::GraphOwner::Node { .. }) {
                info.subgraphs += 1;
            }
            for &node in graph.nodes() {
                let n = model.node(node);
                info.nodes += 1;
                let key = if n.domain().is_empty() {
                    n.op_type().to_owned()
                } else {
                    format!("{}.{}", n.domain(), n.op_type())
                };
                *info.ops.entry(key).or_default() += 1;
            }
            for &value in graph.initializers() {
                if let Some(t) = model.value(value).initializer() {
                    info.initializers += 1;
                    let bytes = tensor::payload_len(t);
                    info.initializer_bytes += bytes;
                    if tensor::is_external(t) {
                        info.external_bytes += bytes;
                    }
                }
            }
        }
        info
    }
}

/// A type in ONNX text syntax: `float[N,3]`, `seq(int64[])`, `map(string, float)`...
pub fn type_string(ty: &TypeProto) -> String {
    let elem = |code: i32| {
        DataType::try_from(code).map_or_else(
            |_| format!("type{code}"),
            |d| d.as_str_name().to_lowercase(),
        )
    };
    match &ty.value {
        Some(Ty::TensorType(t)) => {
            let shape = t.shape.as_ref().map(|s| {
                let dims: Vec<String> = s
                    .dim
                    .iter()
                    .map(|d| match &d.value {
                        Some(Dim::DimValue(v)) => v.to_string(),
                        Some(Dim::DimParam(p)) => p.clone(),
                        None => "?".to_owned(),
                    })
                    .collect();
                format!("[{}]", dims.join(","))
            });
            format!("{}{}", elem(t.elem_type()), shape.unwrap_or_default())
        }
        Some(Ty::SparseTensorType(t)) => format!("sparse_tensor({})", elem(t.elem_type())),
        Some(Ty::SequenceType(s)) => format!(
            "seq({})",
            s.elem_type
                .as_deref()
                .map_or_else(|| "?".to_owned(), type_string)
        ),
        Some(Ty::OptionalType(o)) => format!(
            "optional({})",
            o.elem_type
                .as_deref()
                .map_or_else(|| "?".to_owned(), type_string)
        ),
        Some(Ty::MapType(m)) => format!(
            "map({}, {})",
            elem(m.key_type()),
            m.value_type
                .as_deref()
                .map_or_else(|| "?".to_owned(), type_string)
        ),
        Some(Ty::OpaqueType(o)) => format!("opaque({}, {})", o.domain(), o.name()),
        None => "?".to_owned(),
    }
}
