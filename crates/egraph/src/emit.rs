//! Writing an extraction back into the IR graph it was lowered from.
//!
//! An extracted e-node that is exactly what an IR node was lowered to *is* that node: the node
//! is kept, with its name, doc string, metadata and output names, and only its inputs are
//! re-pointed. Everything else is new: new nodes get readable names derived from the node they
//! replace (`/fc/Gemm` → `/fc/Gemm/MatMul`), and a value keeps the name of the original value
//! of its e-class when it can. Original nodes no longer needed are removed (dead code, merged
//! duplicates, rewritten nodes); the driver then drops initializers that nothing reads any more.
//!
//! Graph outputs keep their names, by the rule of `onnx_rewrite_ir::edit::reroute`: the value
//! of an output's e-class takes the output's name when it may be renamed, else an `Identity`
//! gives it the name (one the output already had is kept). Nodes come out in topological order
//! that follows the original order wherever the graph did not change, so an untouched graph
//! comes out byte for byte.

use rustc_hash::{FxHashMap as HashMap, FxHashSet as HashSet};
use std::cmp::Reverse;
use std::collections::{BTreeSet, BinaryHeap};

use egg::{Id, Language};
use onnx_rewrite_ir::edit::{self, Names, Op, OutputKept};
use onnx_rewrite_ir::{GraphId, InvariantError, Model, NodeId, Use, ValueId};

use crate::extract::Extraction;
use crate::language::{Onnx, OpData};
use crate::lower::Lowered;

/// What the write-back changed.
#[derive(Debug, Clone, Default, PartialEq, Eq)]
pub struct EmitStats {
    pub nodes_before: usize,
    pub nodes_after: usize,
    pub nodes_kept: usize,
    pub nodes_added: usize,
    pub initializers_added: usize,
    pub initializers_removed: usize,
    /// Bytes of initializer data added and removed.
    pub bytes_added: u64,
    pub bytes_removed: u64,
}

/// The write-back failed; only a bug produces this.
#[derive(Debug, thiserror::Error)]
pub enum EmitError {
    #[error("the extraction has no choice for e-class {0}")]
    NoChoice(Id),
    #[error(transparent)]
    Invariant(#[from] InvariantError),
}

/// Writes `extraction` of `lowered` back into the model.
/// Returns what changed and the IR node that each extracted operator e-class became.
pub fn emit(
    model: &mut Model,
    lowered: &Lowered,
    extraction: &Extraction,
    names: &mut Names,
) -> Result<(EmitStats, HashMap<Id, NodeId>), EmitError> {
    let egraph = &lowered.egraph;
    let graph = lowered.graph;
    let find = |id: Id| egraph.find(id);
    let chosen = |class: Id| {
        extraction
            .node(find(class))
            .ok_or(EmitError::NoChoice(class))
    };

    // The needed classes, children before parents, and each class's first consumer.
    let root = find(lowered.root);
    let mut post_order: Vec<Id> = Vec::new();
    let mut consumer: HashMap<Id, Id> = HashMap::default();
    {
        let mut seen: HashSet<Id> = HashSet::default();
        let mut stack: Vec<(Id, bool)> = vec![(root, false)];
        while let Some((class, expanded)) = stack.pop() {
            if expanded {
                post_order.push(class);
                continue;
            }
            if !seen.insert(class) {
                continue;
            }
            stack.push((class, true));
            for child in chosen(class)?.children().iter().rev() {
                let child = find(*child);
                consumer.entry(child).or_insert(class);
                stack.push((child, false));
            }
        }
    }

    // Which original node each chosen e-node is, first in graph order wins.
    let position: HashMap<NodeId, usize> = model
        .graph(graph)
        .nodes()
        .iter()
        .enumerate()
        .map(|(i, n)| (*n, i))
        .collect();
    let origin_of_node: HashMap<NodeId, &crate::lower::Origin> =
        lowered.origins.iter().map(|o| (o.node, o)).collect();
    let mut origins: Vec<&crate::lower::Origin> = lowered.origins.iter().collect();
    origins.sort_by_key(|o| position.get(&o.node).copied().unwrap_or(usize::MAX));
    let mut claimable: HashMap<Onnx, Vec<NodeId>> = HashMap::default();
    let mut origin_of_class: HashMap<Id, NodeId> = HashMap::default();
    for origin in &origins {
        claimable
            .entry(origin.enode.clone().map_children(find))
            .or_default()
            .push(origin.node);
        origin_of_class
            .entry(find(origin.class))
            .or_insert(origin.node);
    }
    for list in claimable.values_mut() {
        list.reverse();
    }
    let mut claimed: HashMap<Id, NodeId> = HashMap::default();
    for &class in &post_order {
        if let Onnx::Op(..) = chosen(class)?
            && let Some(list) = claimable.get_mut(&chosen(class)?.clone().map_children(find))
            && let Some(node) = list.pop()
        {
            claimed.insert(class, node);
        }
    }
    // A graph output computed by a duplicate of a kept node keeps its own node: merging them
    // would only bring the duplicate back as an Identity to carry the output's name.
    let original_outputs: Vec<ValueId> = model
        .graph(graph)
        .outputs()
        .iter()
        .map(|io| io.value)
        .collect();
    let mut kept: HashSet<NodeId> = claimed.values().copied().collect();
    let mut output_claims: HashMap<usize, (Id, NodeId)> = HashMap::default();
    if let Onnx::Root(outputs) = chosen(root)? {
        for (index, class) in outputs.iter().enumerate() {
            let Some((node, _)) = original_outputs
                .get(index)
                .and_then(|v| model.value(*v).producer())
            else {
                continue;
            };
            let Some(origin) = origin_of_node.get(&node) else {
                continue;
            };
            let class = find(*class);
            let op_class = match chosen(class)? {
                Onnx::Proj(_, [tuple]) => find(*tuple),
                _ => class,
            };
            if !kept.contains(&node)
                && chosen(op_class)?.clone().map_children(find)
                    == origin.enode.clone().map_children(find)
            {
                kept.insert(node);
                output_claims.insert(index, (op_class, node));
            }
        }
    }
    let mut dying: Vec<NodeId> = model
        .graph(graph)
        .nodes()
        .iter()
        .copied()
        .filter(|n| !kept.contains(n))
        .collect();
    // What goes with the dying nodes frees its names (their outputs, the `value_info` dropped
    // with them below, their subgraphs), so that the new values of their classes can take them.
    let dying_values: HashSet<ValueId> = dying
        .iter()
        .flat_map(|n| model.node(*n).outputs().iter().flatten().copied())
        .collect();
    for &node in &dying {
        for value in model.node(node).outputs().iter().flatten() {
            names.release_value(model.value(*value).name());
        }
        names.release_subgraphs_of(model, node);
    }
    for entry in &model.graph(graph).value_info {
        if entry.value.is_some_and(|v| dying_values.contains(&v)) {
            names.release_value(entry.proto.name());
        }
    }

    // The name each class would like: the earliest original value of it.
    let mut preferred: HashMap<Id, String> = HashMap::default();
    for origin in &origins {
        for output in model.node(origin.node).outputs().iter().flatten() {
            if let Some(class) = lowered.classes.get(output) {
                preferred
                    .entry(find(*class))
                    .or_insert_with(|| model.value(*output).name().to_owned());
            }
        }
    }
    // Where each class goes: its original node's position, else its consumer's; and the base
    // of new node names.
    let mut rank: HashMap<Id, usize> = HashMap::default();
    let mut base: HashMap<Id, String> = HashMap::default();
    for &class in post_order.iter().rev() {
        let own = match chosen(class)? {
            Onnx::Proj(_, [tuple]) => origin_of_class.get(&find(*tuple)),
            _ => origin_of_class.get(&class),
        };
        let (r, b) = match (own, consumer.get(&class)) {
            (Some(node), _) => (
                position.get(node).copied().unwrap_or(usize::MAX),
                model.node(*node).name().to_owned(),
            ),
            (None, Some(parent)) => (
                rank.get(parent).copied().unwrap_or(usize::MAX),
                base.get(parent).cloned().unwrap_or_default(),
            ),
            (None, None) => (usize::MAX, String::new()),
        };
        rank.insert(class, r);
        base.insert(class, b);
    }

    let mut stats = EmitStats {
        nodes_before: model.graph(graph).nodes().len(),
        ..EmitStats::default()
    };
    // Values for every needed class, children first.
    let mut value_of: HashMap<Id, Option<ValueId>> = HashMap::default();
    let mut node_of: HashMap<Id, NodeId> = HashMap::default();
    let mut emitted: Vec<(NodeId, usize)> = Vec::new();
    let mut new_nodes = 0;
    for &class in &post_order {
        let node = chosen(class)?.clone();
        let value = match &node {
            Onnx::Root(_) => None,
            Onnx::Missing => None,
            Onnx::Leaf(v) => Some(*v),
            Onnx::Const(key) => {
                let entry = egraph.analysis.consts.get(*key);
                let name = names.value(&entry.name_hint);
                stats.initializers_added += 1;
                stats.bytes_added += onnx_rewrite_ir::tensor::payload_len(&entry.tensor);
                Some(model.add_initializer(graph, name, entry.tensor.clone()))
            }
            Onnx::Proj(index, [tuple]) => {
                let owner = node_of
                    .get(&find(*tuple))
                    .ok_or(EmitError::NoChoice(*tuple))?;
                model
                    .node(*owner)
                    .outputs()
                    .get(*index as usize)
                    .copied()
                    .flatten()
            }
            Onnx::Op(key, children) => {
                let op = egraph.analysis.ops.get(*key);
                let inputs: Vec<Option<ValueId>> = children
                    .iter()
                    .take(op.inputs)
                    .map(|c| value_of.get(&find(*c)).copied().flatten())
                    .collect();
                let id = if let Some(&original) = claimed.get(&class) {
                    for (slot, input) in inputs.iter().enumerate() {
                        if model.node(original).inputs().get(slot).copied().flatten() != *input {
                            model.set_node_input(original, slot, *input);
                        }
                    }
                    redirect_captures(
                        model,
                        &origin_of_node,
                        original,
                        children.get(op.inputs..).unwrap_or(&[]),
                        &value_of,
                        &find,
                    );
                    stats.nodes_kept += 1;
                    original
                } else {
                    let node_base = base
                        .get(&class)
                        .map(String::as_str)
                        .filter(|b| !b.is_empty())
                        .map_or_else(|| op.op_type.clone(), |b| format!("{b}/{}", op.op_type));
                    new_nodes += 1;
                    let preferred = preferred.get(&class).filter(|_| !op.is_tuple());
                    add_op(model, names, graph, op, &inputs, &node_base, preferred)
                };
                emitted.push((id, rank.get(&class).copied().unwrap_or(usize::MAX)));
                node_of.insert(class, id);
                if op.is_tuple() {
                    None
                } else {
                    model.node(id).outputs().first().copied().flatten()
                }
            }
        };
        value_of.insert(class, value);
    }
    stats.nodes_added = new_nodes;
    let mut output_claims: Vec<(usize, (Id, NodeId))> = output_claims.into_iter().collect();
    output_claims.sort();
    for &(_, (op_class, node)) in &output_claims {
        let Onnx::Op(key, children) = chosen(op_class)?.clone() else {
            continue;
        };
        let inputs = egraph.analysis.ops.get(key).inputs;
        for (slot, child) in children.iter().take(inputs).enumerate() {
            let input = value_of.get(&find(*child)).copied().flatten();
            if model.node(node).inputs().get(slot).copied().flatten() != input {
                model.set_node_input(node, slot, input);
            }
        }
        redirect_captures(
            model,
            &origin_of_node,
            node,
            children.get(inputs..).unwrap_or(&[]),
            &value_of,
            &find,
        );
        emitted.push((node, position.get(&node).copied().unwrap_or(usize::MAX)));
        stats.nodes_kept += 1;
    }
    let output_claims: HashMap<usize, (Id, NodeId)> = output_claims.into_iter().collect();

    // Graph outputs keep their names, by `edit::reroute`'s rule. The write-back has its own form
    // of the cases reroute does not know: the output's original node is kept (claimed above), or
    // the output already was an Identity (that node is kept, reading the new value, rather than a
    // new one added). Everything else is a reroute of the original value, which is renamed away
    // and removed with its dying node: the new value takes the output's name when it may be
    // renamed, else an Identity carries it, and an input or constant output stays as it is.
    let Onnx::Root(outputs) = chosen(root)?.clone() else {
        return Err(EmitError::NoChoice(root));
    };
    // The names before any reroute renames an original value away.
    let wanted_names: Vec<String> = original_outputs
        .iter()
        .map(|v| model.value(*v).name().to_owned())
        .collect();
    for (index, class) in outputs.iter().enumerate() {
        let Some(value) = value_of.get(&find(*class)).copied().flatten() else {
            continue;
        };
        let (Some(&original), Some(wanted)) =
            (original_outputs.get(index), wanted_names.get(index))
        else {
            continue;
        };
        let target = if output_claims.contains_key(&index) {
            original
        } else if value == original || model.value(value).name() == wanted {
            value
        } else if let Some((identity, _)) = model.value(original).producer().filter(|(n, _)| {
            dying.contains(n)
                && model.node(*n).op_type() == "Identity"
                && model.node(*n).domain().is_empty()
                && !edit::may_take_name(model, original, value)
        }) {
            // The output was an Identity already: keep that node, reading the value now (its
            // names, released with the dying nodes, are held again).
            names.take_value(wanted);
            for entry in &model.graph(graph).value_info {
                if entry.value == Some(original) {
                    names.take_value(entry.proto.name());
                }
            }
            model.set_node_input(identity, 0, Some(value));
            dying.retain(|n| *n != identity);
            emitted.push((
                identity,
                position.get(&identity).copied().unwrap_or(usize::MAX),
            ));
            stats.nodes_kept += 1;
            original
        } else {
            match edit::reroute(model, names, original, value)? {
                OutputKept::Renamed => value,
                OutputKept::Identity(carrier) => {
                    let (id, _) = model
                        .value(carrier)
                        .producer()
                        .ok_or(EmitError::NoChoice(*class))?;
                    emitted.push((id, usize::MAX));
                    stats.nodes_added += 1;
                    carrier
                }
                // An earlier output of the same value was rerouted, this one with it.
                OutputKept::NotAnOutput => model.graph(graph).outputs()[index].value,
                OutputKept::Unchanged => {
                    // The output keeps its input or constant; what computed the same value
                    // for it goes unless something else reads it.
                    let swept = edit::sweep(model, &[value])?;
                    for node in swept.nodes {
                        if model.node(node).graph() == graph {
                            if kept.contains(&node) {
                                stats.nodes_kept = stats.nodes_kept.saturating_sub(1);
                            } else {
                                stats.nodes_added = stats.nodes_added.saturating_sub(1);
                            }
                        }
                    }
                    original
                }
            }
        };
        if model.graph(graph).outputs()[index].value != target {
            model.set_graph_output(graph, index, target);
        }
    }

    // Remove what is no longer needed.
    model.remove_nodes(&dying)?;
    let live: HashSet<ValueId> = live_values(model, graph);
    model
        .graph_mut(graph)
        .value_info
        .retain(|entry| entry.value.is_none_or(|v| live.contains(&v)));

    order_nodes(model, graph, &emitted)?;
    stats.nodes_after = model.graph(graph).nodes().len();
    Ok((stats, node_of))
}

/// Points the reads that `node`'s subgraphs make of outer values at the values their e-classes
/// now have.
fn redirect_captures(
    model: &mut Model,
    origin_of_node: &HashMap<NodeId, &crate::lower::Origin>,
    node: NodeId,
    capture_classes: &[Id],
    value_of: &HashMap<Id, Option<ValueId>>,
    find: &dyn Fn(Id) -> Id,
) {
    // Only opaque nodes capture; looking up the origin of every other node would cost a scan.
    if capture_classes.is_empty() {
        return;
    }
    let Some(origin) = origin_of_node.get(&node) else {
        return;
    };
    let subgraphs: Vec<GraphId> = model.node(node).subgraphs().collect();
    for (old, class) in origin.captures.iter().zip(capture_classes) {
        let Some(Some(new)) = value_of.get(&find(*class)).copied() else {
            continue;
        };
        if *old == new {
            continue;
        }
        for the_use in model.value(*old).uses().to_vec() {
            match the_use {
                Use::Node {
                    node: reader,
                    input,
                } if subgraphs
                    .iter()
                    .any(|g| model.is_within(model.node(reader).graph(), *g)) =>
                {
                    model.set_node_input(reader, input as usize, Some(new));
                }
                Use::GraphOutput { graph, index }
                    if subgraphs.iter().any(|g| model.is_within(graph, *g)) =>
                {
                    model.set_graph_output(graph, index as usize, new);
                }
                _ => {}
            }
        }
    }
}

/// A new node computing `op` on `inputs`, named `node_base` made fresh; a single value is named
/// `preferred` made fresh when there is one, other outputs `<node name>_output_<slot>`.
fn add_op(
    model: &mut Model,
    names: &mut Names,
    graph: GraphId,
    op: &OpData,
    inputs: &[Option<ValueId>],
    node_base: &str,
    preferred: Option<&String>,
) -> NodeId {
    let mut new = Op::new(&op.op_type)
        .domain(&op.domain)
        .overload(&op.overload)
        .name(node_base)
        .inputs(inputs)
        .produced(&op.outputs)
        .attrs(op.attributes.iter().cloned());
    if let Some(name) = preferred.filter(|_| op.outputs.len() == 1) {
        new = new.output(name.clone());
    }
    new.add(model, names, graph)
}

fn live_values(model: &Model, graph: GraphId) -> HashSet<ValueId> {
    let g = model.graph(graph);
    let mut live: HashSet<ValueId> = g.inputs().iter().map(|io| io.value).collect();
    live.extend(g.initializers().iter().chain(g.sparse_initializers()));
    for &node in g.nodes() {
        live.extend(model.node(node).outputs().iter().flatten());
    }
    live
}

/// Topological order of the graph's nodes, preferring the rank each was emitted with (the
/// original position), then emission order.
fn order_nodes(
    model: &mut Model,
    graph: GraphId,
    emitted: &[(NodeId, usize)],
) -> Result<(), EmitError> {
    let nodes: Vec<NodeId> = model.graph(graph).nodes().to_vec();
    let key: HashMap<NodeId, (usize, usize)> = emitted
        .iter()
        .enumerate()
        .map(|(seq, (n, r))| (*n, (*r, seq)))
        .collect();
    let index: HashMap<NodeId, usize> = nodes.iter().enumerate().map(|(i, n)| (*n, i)).collect();
    let mut dependents: Vec<Vec<usize>> = vec![Vec::new(); nodes.len()];
    let mut pending = vec![0usize; nodes.len()];
    for (i, &node) in nodes.iter().enumerate() {
        let n = model.node(node);
        let mut reads: BTreeSet<ValueId> = n.inputs().iter().flatten().copied().collect();
        for sub in n.subgraphs() {
            reads.extend(model.captures(sub));
        }
        for value in reads {
            if let Some((producer, _)) = model.value(value).producer()
                && let Some(&p) = index.get(&producer)
            {
                dependents[p].push(i);
                pending[i] += 1;
            }
        }
    }
    let sort_key = |i: usize| {
        key.get(&nodes[i])
            .copied()
            .unwrap_or((usize::MAX, usize::MAX))
    };
    let mut ready: BinaryHeap<Reverse<((usize, usize), usize)>> = (0..nodes.len())
        .filter(|i| pending[*i] == 0)
        .map(|i| Reverse((sort_key(i), i)))
        .collect();
    let mut order = Vec::with_capacity(nodes.len());
    while let Some(Reverse((_, i))) = ready.pop() {
        order.push(nodes[i]);
        for &d in &dependents[i] {
            pending[d] -= 1;
            if pending[d] == 0 {
                ready.push(Reverse((sort_key(d), d)));
            }
        }
    }
    if order.len() != nodes.len() {
        return Err(EmitError::Invariant(InvariantError(
            "the extracted graph has a cycle".into(),
        )));
    }
    model.set_node_order(graph, order)?;
    Ok(())
}
