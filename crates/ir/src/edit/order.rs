//! Where new nodes go in a graph's serialization order.

use std::collections::HashMap;

use crate::{InvariantError, Model, NodeId};

/// Moves each `(new, anchor)` pair's `new` node right before `anchor` in their graph's order
/// (several new nodes before one anchor keep the order they are given in). One pass over each
/// graph's order, whatever the number of pairs.
pub fn place_before(model: &mut Model, pairs: &[(NodeId, NodeId)]) -> Result<(), InvariantError> {
    let mut by_graph: HashMap<_, HashMap<NodeId, Vec<NodeId>>> = HashMap::new();
    for &(new, anchor) in pairs {
        let graph = model.node(anchor).graph();
        if model.node(new).graph() != graph {
            return Err(InvariantError(format!(
                "{} is placed before {}, a node of another graph",
                model.describe_node(new),
                model.describe_node(anchor)
            )));
        }
        by_graph
            .entry(graph)
            .or_default()
            .entry(anchor)
            .or_default()
            .push(new);
    }
    let mut graphs: Vec<_> = by_graph.into_iter().collect();
    graphs.sort_by_key(|(g, _)| *g);
    for (graph, before) in graphs {
        let moved: std::collections::HashSet<NodeId> = before.values().flatten().copied().collect();
        let current = model.graph(graph).nodes().to_vec();
        let mut order = Vec::with_capacity(current.len());
        for node in current {
            if moved.contains(&node) {
                continue;
            }
            if let Some(new) = before.get(&node) {
                order.extend(new);
            }
            order.push(node);
        }
        model.set_node_order(graph, order)?;
    }
    Ok(())
}
