//! Readers given what their schema demands of a value a rewrite exposed.
//!
//! A rewrite can put a value where a different one was read: inlining an `If` hands its readers
//! the branch's value, whose shape onnxruntime now sees. Range's inputs, a Loop's trip count,
//! Trilu's `k` are 0-D in their schemas; a branch that returns a one-element 1-D tensor was
//! accepted behind the `If` (whose output shape nothing checked) and is refused once exposed:
//! "Input to 'Range' op should be scalars" when the session is created. Such a reader gets a
//! `Reshape` of the value to 0-D, which holds the same element; a reader whose value is not
//! provably one element is left, with the reason, for the pass to report.
//!
//! What the reader demands comes from the op table ([`onnx_rewrite_ops::scalar_inputs`]);
//! what the value is, from the caller (the analysis lives above this crate).

use std::collections::HashMap;

use crate::proto::{NodeProto, TensorProto, tensor_proto::DataType};
use crate::{GraphId, InvariantError, Model, NodeId, Use, ValueId};

use super::{Names, place_before};

/// What the caller knows of a value's shape: `None` when not even its rank is known; else one
/// entry per dim, `None` for a dim that is not a known number.
pub type KnownShape = Option<Vec<Option<i64>>>;

/// A reader given a Reshape to 0-D.
#[derive(Clone, Debug, PartialEq, Eq)]
pub struct Fitted {
    pub node: NodeId,
    pub input: usize,
    /// The name of the value it read before.
    pub value: String,
}

/// A reader that demands a scalar and reads a value not provably one element.
#[derive(Clone, Debug, PartialEq, Eq)]
pub struct Unfit {
    pub node: NodeId,
    pub input: usize,
    pub reason: String,
}

#[derive(Debug, Default)]
pub struct FitOutcome {
    pub fitted: Vec<Fitted>,
    pub unfit: Vec<Unfit>,
}

/// Fits every reader of the `exposed` values that demands a scalar (see the module docs).
/// `shape_of` is asked once per exposed value that such a reader reads.
pub fn scalar_readers(
    model: &mut Model,
    names: &mut Names,
    exposed: &[ValueId],
    mut shape_of: impl FnMut(ValueId) -> KnownShape,
) -> Result<FitOutcome, InvariantError> {
    let mut outcome = FitOutcome::default();
    let mut shape_constants: HashMap<GraphId, ValueId> = HashMap::new();
    let mut placed = Vec::new();
    let mut seen = std::collections::HashSet::new();
    for &value in exposed {
        if !seen.insert(value) || !is_live(model, value) {
            continue;
        }
        let readers: Vec<(NodeId, usize)> = model
            .value(value)
            .uses()
            .iter()
            .filter_map(|u| match *u {
                Use::Node { node, input } => Some((node, input as usize)),
                Use::GraphOutput { .. } => None,
            })
            .filter(|&(node, input)| demands_scalar(model, node, input))
            .collect();
        if readers.is_empty() {
            continue;
        }
        let dims = match shape_of(value) {
            None => continue, // nothing known: nothing the runtime can see either
            Some(dims) if dims.is_empty() => continue,
            Some(dims) => dims,
        };
        let one_element = dims.iter().all(|d| *d == Some(1));
        for (node, input) in readers {
            if !one_element {
                outcome.unfit.push(Unfit {
                    node,
                    input,
                    reason: format!(
                        "{} needs input {input} as a scalar, and '{}' (shape {}) is not provably one element",
                        model.describe_node(node),
                        model.value(value).name(),
                        show(&dims),
                    ),
                });
                continue;
            }
            if model.opset("").is_some_and(|v| v < 5) {
                outcome.unfit.push(Unfit {
                    node,
                    input,
                    reason: format!(
                        "{} needs input {input} as a scalar, and a Reshape to 0-D needs opset 5",
                        model.describe_node(node)
                    ),
                });
                continue;
            }
            let graph = model.node(node).graph();
            let shape = *shape_constants
                .entry(graph)
                .or_insert_with(|| empty_shape(model, names, graph));
            let base = model.value(value).name().to_owned();
            let header = NodeProto {
                name: Some(names.node(&format!("{base}_to_scalar"))),
                op_type: Some("Reshape".into()),
                ..NodeProto::default()
            };
            let output = names.value(&format!("{base}_scalar"));
            let reshape = model.add_node(
                graph,
                header,
                &[Some(value), Some(shape)],
                &[Some(output)],
                Vec::new(),
            );
            let scalar = model.node(reshape).outputs()[0]
                .ok_or_else(|| InvariantError("a new Reshape lost its output".into()))?;
            model.set_node_input(node, input, Some(scalar));
            placed.push((reshape, node));
            outcome.fitted.push(Fitted {
                node,
                input,
                value: base,
            });
        }
    }
    place_before(model, &placed)?;
    Ok(outcome)
}

/// Whether input `input` of `node` must be 0-D by the op table.
pub fn demands_scalar(model: &Model, node: NodeId, input: usize) -> bool {
    let n = model.node(node);
    let opset = model.opset(n.domain()).unwrap_or(i64::MAX);
    onnx_rewrite_ops::scalar_inputs(n.domain(), n.op_type(), opset).contains(&input)
}

fn is_live(model: &Model, value: ValueId) -> bool {
    model
        .value(value)
        .producer()
        .is_none_or(|(node, _)| !model.node(node).is_removed())
}

/// An `int64[0]` initializer of `graph`: the shape of a 0-D tensor.
fn empty_shape(model: &mut Model, names: &mut Names, graph: GraphId) -> ValueId {
    let tensor = TensorProto {
        dims: vec![0],
        data_type: Some(DataType::Int64 as i32),
        ..TensorProto::default()
    };
    let name = names.value("scalar_shape");
    model.add_initializer(graph, name, tensor)
}

fn show(dims: &[Option<i64>]) -> String {
    let dims: Vec<String> = dims
        .iter()
        .map(|d| d.map_or_else(|| "?".to_owned(), |d| d.to_string()))
        .collect();
    format!("[{}]", dims.join(", "))
}
