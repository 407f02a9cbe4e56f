//! Removing what an edit left computing nothing anyone reads.
//!
//! ONNX ops have no effect but their outputs, so a node none of whose outputs is read (by a
//! node, a subgraph, or a graph output) is dead whatever its op or domain. The sweep starts at
//! the values an edit stopped reading and walks up through producers, counting each value's
//! remaining readers, so it costs what it removes, not the graph's size: a long dead chain or a
//! value read by thousands of dying nodes is one visit per edge. Constants only dead nodes read
//! go too, and the `value_info` of everything removed. Nodes and constants that were dead before
//! the edit (not reachable from `roots`) are left: removing them is not this edit's business.

use rustc_hash::{FxHashMap as HashMap, FxHashSet as HashSet};

use crate::{GraphId, InvariantError, Model, NodeId, ValueDef, ValueId};

/// What a sweep removed.
#[derive(Clone, Debug, Default, PartialEq, Eq)]
pub struct Swept {
    pub nodes: Vec<NodeId>,
    pub constants: Vec<ValueId>,
}

/// Removes the nodes that computed only values nothing reads any more, starting from `roots`
/// (values whose readers an edit took away), transitively, with the constants only they read.
pub fn sweep(model: &mut Model, roots: &[ValueId]) -> Result<Swept, InvariantError> {
    let mut remaining: HashMap<ValueId, usize> = HashMap::default();
    let mut dead: HashSet<NodeId> = HashSet::default();
    let mut order: Vec<NodeId> = Vec::new();
    let mut constants: Vec<ValueId> = Vec::new();
    let mut stack: Vec<ValueId> = roots.to_vec();
    let mut seen_constants: HashSet<ValueId> = HashSet::default();
    while let Some(value) = stack.pop() {
        let left = *remaining
            .entry(value)
            .or_insert_with(|| model.value(value).uses().len());
        if left > 0 {
            continue;
        }
        match model.value(value).def() {
            ValueDef::Initializer | ValueDef::SparseInitializer => {
                if seen_constants.insert(value) {
                    constants.push(value);
                }
            }
            ValueDef::Input => {}
            ValueDef::Node { node, .. } => {
                let n = model.node(node);
                if n.is_removed() || dead.contains(&node) {
                    continue;
                }
                let unread = n.outputs().iter().flatten().all(|v| {
                    *remaining
                        .entry(*v)
                        .or_insert_with(|| model.value(*v).uses().len())
                        == 0
                });
                if !unread {
                    continue;
                }
                dead.insert(node);
                order.push(node);
                for read in reads_of(model, node) {
                    let count = remaining
                        .entry(read)
                        .or_insert_with(|| model.value(read).uses().len());
                    *count = count.saturating_sub(1);
                    stack.push(read);
                }
            }
        }
    }
    let gone_values: HashSet<ValueId> = order
        .iter()
        .flat_map(|n| model.node(*n).outputs().iter().flatten().copied())
        .chain(constants.iter().copied())
        .collect();
    let mut graphs: Vec<GraphId> = order
        .iter()
        .map(|n| model.node(*n).graph())
        .chain(constants.iter().map(|v| model.value(*v).graph()))
        .collect();
    model.remove_nodes(&order)?;
    // A constant counted as unread may still be read where the count could not see (a reader
    // outside the dying bodies); only what is truly unread goes.
    constants.retain(|v| model.value(*v).uses().is_empty());
    model.remove_initializers(&constants)?;
    graphs.sort();
    graphs.dedup();
    for graph in graphs {
        if model
            .graph(graph)
            .value_info
            .iter()
            .any(|e| e.value.is_some_and(|v| gone_values.contains(&v)))
        {
            model
                .graph_mut(graph)
                .value_info
                .retain(|e| e.value.is_none_or(|v| !gone_values.contains(&v)));
        }
    }
    Ok(Swept {
        nodes: order,
        constants,
    })
}

/// Every read `node` makes of a value defined outside it: its inputs, and the reads its
/// subgraphs (nodes and outputs) make of values outside them, once per use.
fn reads_of(model: &Model, node: NodeId) -> Vec<ValueId> {
    let n = model.node(node);
    let mut reads: Vec<ValueId> = n.inputs().iter().flatten().copied().collect();
    for body in n.subgraphs() {
        for inner in model.nodes_within(body) {
            for v in model.node(inner).inputs().iter().flatten() {
                if !model.is_within(model.value(*v).graph(), body) {
                    reads.push(*v);
                }
            }
        }
        let mut graphs = vec![body];
        while let Some(g) = graphs.pop() {
            for io in model.graph(g).outputs() {
                if !model.is_within(model.value(io.value).graph(), body) {
                    reads.push(io.value);
                }
            }
            for &inner in model.graph(g).nodes() {
                graphs.extend(model.node(inner).subgraphs());
            }
        }
    }
    reads
}
