//! Node signatures, checked before any pass runs: a node that leaves out an input its operator
//! requires or passes more inputs than the operator takes, and a control-flow node without its
//! body graph, are bad input. The protobuf decodes and the graph is well-formed, so only the
//! operator's schema can tell; without this check such a model would be copied (or rewritten)
//! into an output no runtime loads.

use std::collections::HashSet;

use onnx_rewrite_ir::{GraphId, GraphOwner, Model, NodeId};
use onnx_rewrite_ort_kernels::schema::{Arity, Schema};

/// A node whose inputs do not fit its operator's schema.
#[derive(Debug, Clone, PartialEq, Eq, thiserror::Error)]
pub enum SignatureError {
    #[error(
        "{node}: required input {index} is missing ({op} version {since} takes {formals} input(s))"
    )]
    MissingInput {
        node: String,
        op: String,
        since: i64,
        index: usize,
        formals: usize,
    },
    #[error("{node}: {given} inputs given, but {op} version {since} takes at most {formals}")]
    TooManyInputs {
        node: String,
        op: String,
        since: i64,
        given: usize,
        formals: usize,
    },
    #[error("{node}: {op} has no '{attribute}' graph attribute (its body)")]
    MissingBody {
        node: String,
        op: String,
        attribute: &'static str,
    },
}

/// The graph attributes each control-flow operator of the default domain requires.
fn body_attributes(op: &str) -> &'static [&'static str] {
    match op {
        "If" => &["then_branch", "else_branch"],
        "Loop" | "Scan" | "SequenceMap" => &["body"],
        _ => &[],
    }
}

/// Checks every node of the main graph and its subgraphs whose operator has a schema at the
/// model's opset, and that every control-flow node, function bodies included, has its body.
/// Function bodies are otherwise left out: they import their own opsets and are checked where
/// they are inlined.
pub fn check(model: &Model) -> Result<(), SignatureError> {
    let in_functions = graphs_in_functions(model);
    for graph in model.graph_ids() {
        let in_function = in_functions.contains(&graph);
        for &node in model.graph(graph).nodes() {
            check_bodies(model, node)?;
            if !in_function {
                check_node(model, node)?;
            }
        }
    }
    Ok(())
}

fn check_bodies(model: &Model, node: NodeId) -> Result<(), SignatureError> {
    let n = model.node(node);
    if !n.domain().is_empty() {
        return Ok(());
    }
    for &attribute in body_attributes(n.op_type()) {
        if n.attribute(attribute).and_then(|a| a.graph).is_none() {
            return Err(SignatureError::MissingBody {
                node: model.describe_node(node),
                op: n.op_type().to_owned(),
                attribute,
            });
        }
    }
    Ok(())
}

fn check_node(model: &Model, node: NodeId) -> Result<(), SignatureError> {
    let n = model.node(node);
    let Some(opset) = model.opset(n.domain()) else {
        return Ok(());
    };
    let Some(schema) = Schema::find(n.domain(), n.op_type(), opset) else {
        return Ok(());
    };
    let given = n.inputs();
    let variadic = schema
        .inputs
        .last()
        .is_some_and(|p| matches!(p.arity, Arity::Many | Arity::ManyMixed));
    if !variadic && given.len() > schema.inputs.len() {
        return Err(SignatureError::TooManyInputs {
            node: model.describe_node(node),
            op: n.op_type().to_owned(),
            since: schema.since,
            given: given.len(),
            formals: schema.inputs.len(),
        });
    }
    for (index, formal) in schema.inputs.iter().enumerate() {
        if formal.arity == Arity::One && given.get(index).copied().flatten().is_none() {
            return Err(SignatureError::MissingInput {
                node: model.describe_node(node),
                op: n.op_type().to_owned(),
                since: schema.since,
                index,
                formals: schema.inputs.len(),
            });
        }
    }
    Ok(())
}

/// Function bodies and every graph nested in one.
fn graphs_in_functions(model: &Model) -> HashSet<GraphId> {
    model
        .graph_ids()
        .filter(|&graph| {
            let mut current = graph;
            loop {
                match model.graph(current).owner() {
                    GraphOwner::Function { .. } => return true,
                    GraphOwner::Model => return false,
                    GraphOwner::Node { node, .. } => current = model.node(node).graph(),
                }
            }
        })
        .collect()
}

#[cfg(test)]
mod tests {
    use super::*;

    /// The refusal `check` gives the model in `text`.
    fn refusal(text: &str) -> String {
        let proto = onnx_rewrite_text::parse_model(text).expect("parses");
        let model = onnx_rewrite_ir::load::from_proto(proto, None).expect("loads");
        check(&model).expect_err("refused").to_string()
    }

    #[test]
    fn a_control_flow_node_without_its_body_is_refused_in_functions_too() {
        let in_main = refusal(
            r#"<ir_version: 10, opset_import: ["" : 17]>
g (bool c) => (float y) {
   [bad] y = If (c)
}"#,
        );
        assert!(
            in_main.contains("If has no 'then_branch' graph attribute"),
            "{in_main}"
        );
        let in_function = refusal(
            r#"<ir_version: 10, opset_import: ["" : 17, "local" : 1]>
g (bool c) => (float y) {
   [call] y = local.F (c)
}
<domain: "local", opset_import: ["" : 17]>
F (a) => (b) {
   [bad] b = Loop (a)
}"#,
        );
        assert!(
            in_function.contains("Loop has no 'body' graph attribute"),
            "{in_function}"
        );
    }
}
