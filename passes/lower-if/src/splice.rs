//! Replacing a node (an `If`, a function call) by values computed in its graph.
//!
//! Readers of the node's outputs move to the replacements. Names follow the values: a
//! replacement made for this purpose takes the output's name, so `y = If(...)` becomes a
//! `y = Where(...)` (or the branch's last node, renamed `y`) and the graph's interface and
//! the names downstream stay as they were. A replacement that already has a name of its own
//! (an outer value a branch returns as is) keeps it, and when the output was an output of the
//! main graph, an `Identity` restores the name the model's users know.

use rustc_hash::FxHashSet as HashSet;

use onnx_rewrite_ir::proto::NodeProto;
use onnx_rewrite_ir::{GraphId, GraphOwner, Model, NodeId, Use, ValueDef, ValueId};

use crate::names::Names;

#[derive(Debug, thiserror::Error)]
pub(crate) enum SpliceError {
    #[error("output '{0}' is read, but what replaces it is a missing optional value")]
    Missing(String),
    #[error(transparent)]
    Invariant(#[from] onnx_rewrite_ir::InvariantError),
    #[error("the graph has a cycle through {0}")]
    Cycle(String),
}

/// Removes `node`, its readers reading `replacements` instead (slot by slot). `made_here`
/// says which replacements were created for this splice (they may take the outputs' names);
/// returns those that did.
pub(crate) fn replace_node(
    model: &mut Model,
    node: NodeId,
    replacements: &[Option<ValueId>],
    made_here: &dyn Fn(ValueId) -> bool,
    names: &mut Names,
) -> Result<HashSet<ValueId>, SpliceError> {
    let graph = model.node(node).graph();
    let outputs: Vec<Option<ValueId>> = model.node(node).outputs().to_vec();
    let mut claimed: HashSet<ValueId> = HashSet::default();
    for (slot, output) in outputs.iter().enumerate() {
        let Some(old) = *output else { continue };
        let old_name = model.value(old).name().to_owned();
        if model.value(old).uses().is_empty() {
            names.values.release(&old_name);
            drop_value_info(model, graph, old);
            continue;
        }
        let new = replacements
            .get(slot)
            .copied()
            .flatten()
            .ok_or_else(|| SpliceError::Missing(old_name.clone()))?;
        if made_here(new) && claimed.insert(new) {
            // The replacement takes the output's name (which stays reserved).
            names.values.release(model.value(new).name());
            model.replace_all_uses(old, new);
            model.rename_value(new, old_name);
            repoint_value_info(model, graph, old, new);
        } else if is_model_output(model, old) {
            let identity = model.add_node(
                graph,
                NodeProto {
                    name: Some(names.nodes.fresh(&format!("{old_name}_identity"))),
                    op_type: Some("Identity".into()),
                    ..NodeProto::default()
                },
                &[Some(new)],
                &[Some(old_name)],
                Vec::new(),
            );
            let Some(renamed) = model.node(identity).outputs().first().copied().flatten() else {
                continue;
            };
            model.replace_all_uses(old, renamed);
            repoint_value_info(model, graph, old, renamed);
        } else {
            model.replace_all_uses(old, new);
            names.values.release(&old_name);
            drop_value_info(model, graph, old);
        }
    }
    names.release_subgraphs_of(model, node);
    names.nodes.release(model.node(node).name());
    model.remove_node(node)?;
    Ok(claimed)
}

/// Gives copied values and nodes back the names of their sources where those are free again
/// (the sources went away with the node they were inside); values in `renamed` took the name of
/// an output they replace and keep it.
pub(crate) fn restore_names(
    model: &mut Model,
    names: &mut Names,
    values: &[(ValueId, ValueId)],
    nodes: &[(NodeId, NodeId)],
    renamed: &HashSet<ValueId>,
) {
    for &(source, copy) in values {
        if renamed.contains(&copy) {
            continue;
        }
        let want = model.value(source).name().to_owned();
        let have = model.value(copy).name().to_owned();
        if have != want && names.values.is_free(&want) && !have.is_empty() {
            names.values.release(&have);
            names.values.reserve(&want);
            model.rename_value(copy, want);
        }
    }
    for &(source, copy) in nodes {
        let want = model.node(source).name().to_owned();
        let have = model.node(copy).name().to_owned();
        if have != want && !want.is_empty() && names.nodes.is_free(&want) {
            names.nodes.release(&have);
            names.nodes.reserve(&want);
            model.node_mut(copy).proto.name = Some(want);
        }
    }
}

/// Moves `nodes` (appended to `anchor`'s graph) to just before `anchor`, so a replacement
/// reads where the node it replaces was.
pub(crate) fn place_before(
    model: &mut Model,
    nodes: &[NodeId],
    anchor: NodeId,
) -> Result<(), SpliceError> {
    let graph = model.node(anchor).graph();
    let moving: HashSet<NodeId> = nodes.iter().copied().collect();
    let mut order = Vec::with_capacity(model.graph(graph).nodes().len());
    for &n in model.graph(graph).nodes() {
        if n == anchor {
            order.extend(
                nodes
                    .iter()
                    .copied()
                    .filter(|m| model.node(*m).graph() == graph),
            );
        }
        if !moving.contains(&n) {
            order.push(n);
        }
    }
    model.set_node_order(graph, order)?;
    Ok(())
}

/// Puts `graph`'s nodes back in a topological order (new nodes were appended).
pub(crate) fn sort(model: &mut Model, graph: GraphId) -> Result<(), SpliceError> {
    let order = model
        .topological_order(graph)
        .map_err(|n| SpliceError::Cycle(model.describe_node(n)))?;
    model.set_node_order(graph, order)?;
    Ok(())
}

fn is_model_output(model: &Model, value: ValueId) -> bool {
    model.value(value).uses().iter().any(|u| match u {
        Use::GraphOutput { graph, .. } => model.graph(*graph).owner() == GraphOwner::Model,
        Use::Node { .. } => false,
    })
}

fn repoint_value_info(model: &mut Model, graph: GraphId, old: ValueId, new: ValueId) {
    let g = model.graph_mut(graph);
    let had_new = g.value_info.iter().any(|e| e.value == Some(new));
    g.value_info.retain(|e| !(had_new && e.value == Some(old)));
    for e in &mut g.value_info {
        if e.value == Some(old) {
            e.value = Some(new);
        }
    }
}

fn drop_value_info(model: &mut Model, graph: GraphId, old: ValueId) {
    model
        .graph_mut(graph)
        .value_info
        .retain(|e| e.value != Some(old));
}

/// Removes the nodes of `nodes` (and the constants of `constants`) that nothing reads any
/// more, repeatedly, so a copied computation whose result is unused goes entirely.
pub(crate) fn prune_dead(
    model: &mut Model,
    nodes: &[NodeId],
    constants: &[ValueId],
) -> Result<(), SpliceError> {
    let mut live: Vec<NodeId> = nodes.to_vec();
    loop {
        let (dead, rest): (Vec<NodeId>, Vec<NodeId>) = live.iter().partition(|&&n| {
            !model.node(n).is_removed()
                && model
                    .node(n)
                    .outputs()
                    .iter()
                    .flatten()
                    .all(|v| model.value(*v).uses().is_empty())
        });
        if dead.is_empty() {
            break;
        }
        model.remove_nodes(&dead)?;
        live = rest;
    }
    let unread: Vec<ValueId> = constants
        .iter()
        .copied()
        .filter(|v| model.value(*v).uses().is_empty())
        .collect();
    model.remove_initializers(&unread)?;
    Ok(())
}

/// Removes what computed `values` when nothing reads it any more (an inlined `If`'s
/// condition), and the constants only those nodes read.
pub(crate) fn prune_unread(model: &mut Model, values: &[ValueId]) -> Result<(), SpliceError> {
    let mut pending: Vec<ValueId> = values.to_vec();
    while let Some(value) = pending.pop() {
        if !model.value(value).uses().is_empty() {
            continue;
        }
        match model.value(value).def() {
            ValueDef::Initializer => {
                // A graph output or a reader elsewhere would have kept a use.
                model.remove_initializer(value)?;
            }
            ValueDef::Node { node, .. } => {
                let n = model.node(node);
                if n.is_removed()
                    || n.subgraphs().next().is_some()
                    || n.outputs()
                        .iter()
                        .flatten()
                        .any(|v| !model.value(*v).uses().is_empty())
                {
                    continue;
                }
                let inputs: Vec<ValueId> = n.inputs().iter().flatten().copied().collect();
                model.remove_node(node)?;
                pending.extend(inputs);
            }
            ValueDef::Input | ValueDef::SparseInitializer => {}
        }
    }
    Ok(())
}
