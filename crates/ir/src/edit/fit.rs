//! Readers given what their schema demands of a value a rewrite exposed.
//!
//! A rewrite can put a value where a different one was read: inlining an `If` hands its readers
//! the branch's value, whose shape onnxruntime now sees. Range's inputs, a Loop's trip count,
//! Trilu's `k` are 0-D in their schemas; a branch that returns a one-element 1-D tensor was
//! accepted behind the `If` (whose output shape nothing checked) and is refused once exposed:
//! "Input to 'Range' op should be scalars" when the session is created. Such a reader gets a
//! `Reshape` of the value to 0-D, which holds the same element. The mirror case: a shape, axes
//! or `K` input is 1-D in its schema, and a branch's 0-D value gets a `Reshape` to `[1]`. A
//! reader whose value cannot be fitted so (not provably one element for a scalar, of rank 2 or
//! more for a 1-D input) is left, with the reason, for the pass to report.
//!
//! What the reader demands comes from the op table ([`onnx_rewrite_ops::demanded_rank`]);
//! what the value is, from the caller (the analysis lives above this crate).

use std::collections::HashMap;

use crate::proto::{TensorProto, tensor_proto::DataType};
use crate::{GraphId, InvariantError, Model, NodeId, Use, ValueId};

use super::{Names, Op, first_output, place_before};

/// What the caller knows of a value's shape: `None` when not even its rank is known; else one
/// entry per dim, `None` for a dim that is not a known number.
pub type KnownShape = Option<Vec<Option<i64>>>;

/// A reader given a Reshape to the rank its schema demands.
#[derive(Clone, Debug, PartialEq, Eq)]
pub struct Fitted {
    pub node: NodeId,
    pub input: usize,
    /// The rank the reader now reads: 0 or 1.
    pub rank: usize,
    /// The name of the value it read before.
    pub value: String,
}

/// A reader that demands a rank its value cannot be fitted to.
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

/// Fits every reader of the `exposed` values that demands a rank (see the module docs).
/// `shape_of` is asked once per exposed value that such a reader reads.
pub fn readers(
    model: &mut Model,
    names: &mut Names,
    exposed: &[ValueId],
    mut shape_of: impl FnMut(ValueId) -> KnownShape,
) -> Result<FitOutcome, InvariantError> {
    let mut outcome = FitOutcome::default();
    let mut shape_constants: HashMap<(GraphId, usize), ValueId> = HashMap::new();
    let mut placed = Vec::new();
    let mut seen = std::collections::HashSet::new();
    for &value in exposed {
        if !seen.insert(value) || !is_live(model, value) {
            continue;
        }
        let readers: Vec<(NodeId, usize, usize)> = model
            .value(value)
            .uses()
            .iter()
            .filter_map(|u| match *u {
                Use::Node { node, input } => {
                    let rank = demanded_rank(model, node, input as usize)?;
                    Some((node, input as usize, rank))
                }
                Use::GraphOutput { .. } => None,
            })
            .collect();
        if readers.is_empty() {
            continue;
        }
        // Nothing known: nothing the runtime can see either.
        let Some(dims) = shape_of(value) else {
            continue;
        };
        for (node, input, rank) in readers {
            if dims.len() == rank {
                continue;
            }
            let fits = match rank {
                0 => dims.iter().all(|d| *d == Some(1)),
                _ => dims.is_empty(),
            };
            let wanted = if rank == 0 {
                "a scalar"
            } else {
                "a 1-D tensor"
            };
            if !fits {
                let why = if rank == 0 {
                    "is not provably one element"
                } else {
                    "has more than one dimension"
                };
                outcome.unfit.push(Unfit {
                    node,
                    input,
                    reason: format!(
                        "{} needs input {input} as {wanted}, and '{}' (shape {}) {why}",
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
                        "{} needs input {input} as {wanted}, and a Reshape to it needs opset 5",
                        model.describe_node(node)
                    ),
                });
                continue;
            }
            let graph = model.node(node).graph();
            let shape = *shape_constants
                .entry((graph, rank))
                .or_insert_with(|| shape_of_rank(model, names, graph, rank));
            let base = model.value(value).name().to_owned();
            let (node_suffix, value_suffix) = if rank == 0 {
                ("to_scalar", "scalar")
            } else {
                ("to_vector", "vector")
            };
            let reshape = Op::new("Reshape")
                .name(format!("{base}_{node_suffix}"))
                .inputs(&[Some(value), Some(shape)])
                .output(format!("{base}_{value_suffix}"))
                .add(model, names, graph);
            let fitted = first_output(model, reshape)?;
            model.set_node_input(node, input, Some(fitted));
            placed.push((reshape, node));
            outcome.fitted.push(Fitted {
                node,
                input,
                rank,
                value: base,
            });
        }
    }
    place_before(model, &placed)?;
    Ok(outcome)
}

/// The rank input `input` of `node` must have by the op table: 0 or 1.
pub fn demanded_rank(model: &Model, node: NodeId, input: usize) -> Option<usize> {
    let n = model.node(node);
    let opset = model.opset(n.domain()).unwrap_or(i64::MAX);
    onnx_rewrite_ops::demanded_rank(n.domain(), n.op_type(), opset, input)
}

fn is_live(model: &Model, value: ValueId) -> bool {
    model
        .value(value)
        .producer()
        .is_none_or(|(node, _)| !model.node(node).is_removed())
}

/// The `Reshape` target of a tensor of one element at `rank` 0 or 1, an initializer of
/// `graph`: `int64[0]` (a 0-D tensor) or `int64[1]` holding 1.
fn shape_of_rank(model: &mut Model, names: &mut Names, graph: GraphId, rank: usize) -> ValueId {
    let (dims, data, base) = if rank == 0 {
        (vec![0], vec![], "scalar_shape")
    } else {
        (vec![1], vec![1], "vector_shape")
    };
    let tensor = TensorProto {
        dims,
        data_type: Some(DataType::Int64 as i32),
        int64_data: data,
        ..TensorProto::default()
    };
    let name = names.value(base);
    model.add_initializer(graph, name, tensor)
}

fn show(dims: &[Option<i64>]) -> String {
    let dims: Vec<String> = dims
        .iter()
        .map(|d| d.map_or_else(|| "?".to_owned(), |d| d.to_string()))
        .collect();
    format!("[{}]", dims.join(", "))
}
