//! `If` with a condition the analysis knows: the taken branch replaces the node.
//!
//! The branch's nodes and initializers are copied into the parent graph (names made unique in
//! the parent's scope tree, then given back their own names where the other branch's copy does
//! not hold them), captured outer values resolve by id, the branch outputs replace the `If`'s
//! outputs (graph outputs keep their names), and the node goes with both branches. An `If`
//! nested in the taken branch comes along and is handled in a later round, when the parent's
//! facts may decide its condition too. What the inlining left unread (the condition, copies
//! whose outputs nothing reads) is swept. The whole replacement is one transaction: an `If` that
//! cannot be inlined stays exactly as it was.

use onnx_rewrite_ir::edit::{self, Names};
use onnx_rewrite_ir::{GraphId, Model, NodeId, ValueId};

use crate::copy::{ValueMap, copy_body};
use crate::splice::{
    Restore, SpliceError, Wanted, atomically, place_before, replace_node, restore_names, sort,
};
use onnx_rewrite_facts::GraphFacts;

/// The value of `node`'s condition, if the facts hold it as a single-element constant.
pub(crate) fn known_condition(model: &Model, facts: &GraphFacts, node: NodeId) -> Option<bool> {
    let cond = model.node(node).inputs().first().copied().flatten()?;
    let constant = facts.constant(cond)?;
    match constant.to_i64s()?.as_slice() {
        [v] => Some(*v != 0),
        _ => None,
    }
}

/// The graph of attribute `name` of `node`.
pub(crate) fn branch(model: &Model, node: NodeId, name: &str) -> Option<GraphId> {
    model.node(node).attribute(name)?.graph
}

/// Why the taken branch cannot replace its `If`.
#[derive(Debug, thiserror::Error)]
pub(crate) enum NotInlined {
    #[error("the branch declares inputs")]
    BranchInputs,
    #[error("the branch has {have} outputs, the If {want}")]
    OutputCount { have: usize, want: usize },
    #[error(transparent)]
    Splice(#[from] SpliceError),
}

/// Replaces `node` by a copy of its branch `taken`.
pub(crate) fn inline_branch(
    model: &mut Model,
    node: NodeId,
    taken: GraphId,
    names: &mut Names,
) -> Result<(), NotInlined> {
    if !model.graph(taken).inputs().is_empty() {
        return Err(NotInlined::BranchInputs);
    }
    let (have, want) = (
        model.graph(taken).outputs().len(),
        model.node(node).outputs().len(),
    );
    if have != want {
        return Err(NotInlined::OutputCount { have, want });
    }
    atomically(model, names, |model, names| {
        splice_branch(model, node, taken, names)
    })?;
    Ok(())
}

fn splice_branch(
    model: &mut Model,
    node: NodeId,
    taken: GraphId,
    names: &mut Names,
) -> Result<(), SpliceError> {
    let graph = model.node(node).graph();
    let condition: Vec<ValueId> = model
        .node(node)
        .inputs()
        .iter()
        .flatten()
        .copied()
        .collect();
    let mut map = ValueMap::default();
    let copied = copy_body(model, taken, graph, &mut map, names, None)?;
    place_before(model, &copied.nodes, node)?;
    let renamed = replace_node(model, node, &copied.outputs, &|v| copied.defines(v), names)?;
    let mut wanted = Wanted::of(model, &copied);
    for (value, output) in renamed {
        wanted.took_name_of(value, output);
    }
    restore_names(model, names, &wanted, Restore::WhereFree);
    let roots: Vec<ValueId> = copied.defined().chain(condition).collect();
    edit::sweep(model, &roots)?;
    sort(model, graph)
}
