//! Visits every tensor of a model proto, wherever it sits: initializers, sparse initializers,
//! attribute tensors (Constant values and the like), subgraphs, function bodies, training info.

use onnx_rewrite_proto::{AttributeProto, GraphProto, ModelProto, NodeProto, TensorProto};

/// Where a tensor sits, for messages.
#[derive(Debug, Clone, Copy)]
pub(crate) enum Site<'a> {
    Initializer,
    SparseInitializer,
    Attribute {
        node: &'a str,
        op_type: &'a str,
        attribute: &'a str,
    },
}

impl Site<'_> {
    /// A name for the tensor: its own, or the attribute that holds it.
    pub(crate) fn describe(&self, tensor: &TensorProto) -> String {
        match self {
            Site::Initializer | Site::SparseInitializer => tensor.name().to_owned(),
            Site::Attribute {
                node,
                op_type,
                attribute,
            } => {
                format!(
                    "{}attribute '{attribute}' of node '{node}' ({op_type})",
                    if tensor.name().is_empty() {
                        String::new()
                    } else {
                        format!("{} in ", tensor.name())
                    }
                )
            }
        }
    }
}

pub(crate) type Visitor<'f, E> = dyn FnMut(&mut TensorProto, Site<'_>) -> Result<(), E> + 'f;

pub(crate) fn model_tensors<E>(
    model: &mut ModelProto,
    visit: &mut Visitor<'_, E>,
) -> Result<(), E> {
    if let Some(graph) = model.graph.as_mut() {
        graph_tensors(graph, visit)?;
    }
    for function in &mut model.functions {
        for node in &mut function.node {
            node_tensors(node, visit)?;
        }
    }
    for info in &mut model.training_info {
        for graph in [info.initialization.as_mut(), info.algorithm.as_mut()]
            .into_iter()
            .flatten()
        {
            graph_tensors(graph, visit)?;
        }
    }
    Ok(())
}

pub(crate) fn graph_tensors<E>(
    graph: &mut GraphProto,
    visit: &mut Visitor<'_, E>,
) -> Result<(), E> {
    for tensor in &mut graph.initializer {
        visit(tensor, Site::Initializer)?;
    }
    for sparse in &mut graph.sparse_initializer {
        for tensor in [sparse.values.as_deref_mut(), sparse.indices.as_deref_mut()]
            .into_iter()
            .flatten()
        {
            visit(tensor, Site::SparseInitializer)?;
        }
    }
    for node in &mut graph.node {
        node_tensors(node, visit)?;
    }
    Ok(())
}

fn node_tensors<E>(node: &mut NodeProto, visit: &mut Visitor<'_, E>) -> Result<(), E> {
    let name = node.name.clone().unwrap_or_default();
    let op_type = node.op_type.clone().unwrap_or_default();
    for attribute in &mut node.attribute {
        attribute_tensors(attribute, &name, &op_type, visit)?;
    }
    Ok(())
}

fn attribute_tensors<E>(
    attribute: &mut AttributeProto,
    node: &str,
    op_type: &str,
    visit: &mut Visitor<'_, E>,
) -> Result<(), E> {
    let attribute_name = attribute.name.clone().unwrap_or_default();
    let site = Site::Attribute {
        node,
        op_type,
        attribute: &attribute_name,
    };
    for tensor in attribute
        .t
        .as_deref_mut()
        .into_iter()
        .chain(attribute.tensors.iter_mut())
    {
        visit(tensor, site)?;
    }
    for sparse in attribute
        .sparse_tensor
        .as_deref_mut()
        .into_iter()
        .chain(attribute.sparse_tensors.iter_mut())
    {
        for tensor in [sparse.values.as_deref_mut(), sparse.indices.as_deref_mut()]
            .into_iter()
            .flatten()
        {
            visit(tensor, site)?;
        }
    }
    for graph in attribute.g.iter_mut().chain(attribute.graphs.iter_mut()) {
        graph_tensors(graph, visit)?;
    }
    Ok(())
}
