//! Editing the IR: splicing the dense form in, and removing what it replaced. Fresh names come
//! from the one policy of [`onnx_rewrite_ir::edit::Names`].

pub(crate) use onnx_rewrite_ir::edit::Names;
use onnx_rewrite_ir::{GraphId, GraphOwner, InvariantError, Model, NodeId, ValueDef, ValueId};
use rustc_hash::FxHashSet as HashSet;

/// Whether a value defined in `defined` can be read by a node of `graph`.
pub(crate) fn visible(model: &Model, defined: GraphId, graph: GraphId) -> bool {
    model.is_within(graph, defined)
}

/// Makes every reader of `old` read `new`. A graph output keeps its name: `new` takes it.
pub(crate) fn replace(model: &mut Model, names: &mut Names, old: ValueId, new: ValueId) {
    let is_output = model
        .value(old)
        .uses()
        .iter()
        .any(|u| matches!(u, onnx_rewrite_ir::Use::GraphOutput { .. }));
    model.replace_all_uses(old, new);
    if is_output {
        let name = model.value(old).name().to_owned();
        let retired = names.value(&format!("{name}_sparse"));
        model.rename_value(old, retired);
        model.rename_value(new, name);
    }
}

/// Removes the nodes that computed only what `roots` held (now unread), transitively, with
/// the initializers only they read and the `value_info` of what went.
pub(crate) fn remove_dead(
    model: &mut Model,
    graph: GraphId,
    roots: &[ValueId],
) -> Result<usize, InvariantError> {
    let mut dead: HashSet<NodeId> = HashSet::default();
    let mut order: Vec<NodeId> = Vec::new();
    let mut stack: Vec<NodeId> = roots
        .iter()
        .filter_map(|v| model.value(*v).producer().map(|(n, _)| n))
        .collect();
    while let Some(node) = stack.pop() {
        if dead.contains(&node)
            || model.node(node).is_removed()
            || model.node(node).graph() != graph
        {
            continue;
        }
        let unread = model.node(node).outputs().iter().flatten().all(|v| {
            model.value(*v).uses().iter().all(|u| match u {
                onnx_rewrite_ir::Use::Node { node: reader, .. } => dead.contains(reader),
                onnx_rewrite_ir::Use::GraphOutput { .. } => false,
            })
        });
        if !unread {
            continue;
        }
        dead.insert(node);
        order.push(node);
        for v in model.node(node).inputs().iter().flatten() {
            if let Some((p, _)) = model.value(*v).producer() {
                stack.push(p);
            }
        }
    }
    let mut read: Vec<ValueId> = order
        .iter()
        .flat_map(|n| model.node(*n).inputs().iter().flatten().copied())
        .collect();
    let gone_values: HashSet<ValueId> = order
        .iter()
        .flat_map(|n| model.node(*n).outputs().iter().flatten().copied())
        .collect();
    model.remove_nodes(&order)?;
    read.sort();
    read.dedup();
    let unread_constants: Vec<ValueId> = read
        .into_iter()
        .filter(|v| {
            let value = model.value(*v);
            value.def() == ValueDef::Initializer
                && value.uses().is_empty()
                && value.graph() == graph
        })
        .collect();
    model.remove_initializers(&unread_constants)?;
    let gone: HashSet<ValueId> = gone_values.into_iter().chain(unread_constants).collect();
    model
        .graph_mut(graph)
        .value_info
        .retain(|e| e.value.is_none_or(|v| !gone.contains(&v)));
    Ok(order.len())
}

/// Graphs the pass looks at: the main graph and node subgraphs (function bodies hold no
/// initializers to put expert weights in; `inline-functions` opens them first).
pub(crate) fn rewritable_graphs(model: &Model) -> Vec<GraphId> {
    model
        .graph_ids()
        .filter(|g| !matches!(model.graph(*g).owner(), GraphOwner::Function { .. }))
        .filter(|g| {
            // Live graphs only: a removed node's subgraphs stay allocated.
            match model.graph(*g).owner() {
                GraphOwner::Node { node, .. } => !model.node(node).is_removed(),
                _ => true,
            }
        })
        .collect()
}
