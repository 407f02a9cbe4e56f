//! Replacing a node (an `If`, a function call) by values computed in its graph.
//!
//! Readers of the node's outputs move to the replacements. Names follow the values: a
//! replacement made for this purpose takes the output's name, so `y = If(...)` becomes a
//! `y = Where(...)` (or the branch's last node, renamed `y`) and the graph's interface and the
//! names downstream stay as they were. A replacement that already has a name of its own (an
//! outer value a branch returns as is) keeps it, unless the output it replaces is a graph
//! output: then the output keeps its name by the one rule of [`edit::reroute`].
//!
//! Every edit here is journaled: [`atomically`] runs a whole replacement as one transaction.

use rustc_hash::{FxHashMap as HashMap, FxHashSet as HashSet};

use onnx_rewrite_ir::edit::{self, Names, OutputKept, Transaction};
use onnx_rewrite_ir::{GraphId, InvariantError, Model, NodeId, Use, ValueId};

use crate::copy::{Copied, CopyError};

#[derive(Debug, thiserror::Error)]
pub(crate) enum SpliceError {
    #[error("output '{0}' is read, but what replaces it is a missing optional value")]
    Missing(String),
    #[error("the condition is missing")]
    NoCondition,
    #[error(transparent)]
    Copy(#[from] CopyError),
    #[error(transparent)]
    Invariant(#[from] InvariantError),
    #[error("the graph has a cycle through {0}")]
    Cycle(String),
}

/// Runs `edit` as one transaction: kept when it succeeds, rolled back when it fails, `names`
/// then read again from the model as it is back to (names are not journaled).
pub(crate) fn atomically<T, E: From<InvariantError>>(
    model: &mut Model,
    names: &mut Names,
    edit: impl FnOnce(&mut Model, &mut Names) -> Result<T, E>,
) -> Result<T, E> {
    let mut tx = Transaction::begin(model);
    match edit(&mut tx, names) {
        Ok(kept) => {
            tx.commit()?;
            Ok(kept)
        }
        Err(e) => {
            tx.rollback()?;
            *names = Names::of(model);
            Err(e)
        }
    }
}

/// Removes `node`, its readers reading `replacements` instead (slot by slot). `made_here`
/// says which replacements were created for this splice (they may take the outputs' names);
/// returns each value that took an output's name, with that output.
pub(crate) fn replace_node(
    model: &mut Model,
    node: NodeId,
    replacements: &[Option<ValueId>],
    made_here: &dyn Fn(ValueId) -> bool,
    names: &mut Names,
) -> Result<Vec<(ValueId, ValueId)>, SpliceError> {
    let graph = model.node(node).graph();
    let outputs: Vec<Option<ValueId>> = model.node(node).outputs().to_vec();
    let mut claimed: HashSet<ValueId> = HashSet::default();
    let mut took = Vec::new();
    for (slot, output) in outputs.iter().enumerate() {
        let Some(old) = *output else { continue };
        let old_name = model.value(old).name().to_owned();
        if model.value(old).uses().is_empty() {
            names.release_value(&old_name);
            drop_value_info(model, graph, old);
            continue;
        }
        let new = replacements
            .get(slot)
            .copied()
            .flatten()
            .ok_or_else(|| SpliceError::Missing(old_name.clone()))?;
        if made_here(new) && claimed.insert(new) {
            // The replacement takes the output's name (which stays taken), graph output or not:
            // it is new, so no other name moves.
            took.push((new, old));
            names.release_value(model.value(new).name());
            model.replace_all_uses(old, new);
            model.rename_value(new, old_name);
            repoint_value_info(model, graph, old, new);
        } else if is_graph_output(model, old) {
            // The output keeps its name by the one rule; `old` got a fresh one for the moment
            // it is left.
            let kept = edit::reroute(model, names, old, new)?;
            names.release_value(model.value(old).name());
            match kept {
                OutputKept::Renamed => {
                    took.push((new, old));
                    repoint_value_info(model, graph, old, new);
                }
                OutputKept::Identity(carrier) => repoint_value_info(model, graph, old, carrier),
                OutputKept::NotAnOutput | OutputKept::Unchanged => {
                    drop_value_info(model, graph, old);
                }
            }
        } else {
            model.replace_all_uses(old, new);
            names.release_value(&old_name);
            drop_value_info(model, graph, old);
        }
    }
    names.release_subgraphs_of(model, node);
    names.release_node(model.node(node).name());
    model.remove_node(node)?;
    Ok(took)
}

/// The names copies should carry: those of what they copy, given back by [`restore_names`]
/// where they are free once the sources are gone.
#[derive(Debug, Default)]
pub(crate) struct Wanted {
    /// Copy → wanted name; `None` once the copy took another name it keeps.
    values: Vec<(ValueId, Option<String>)>,
    at: HashMap<ValueId, usize>,
    nodes: Vec<(NodeId, String)>,
}

impl Wanted {
    /// The names of the sources of `copied`, nested subgraphs included.
    pub(crate) fn of(model: &Model, copied: &Copied) -> Self {
        let mut wanted = Self::default();
        for &(source, copy) in &copied.all_values {
            wanted.want_value(copy, Some(model.value(source).name().to_owned()));
        }
        wanted.nodes = copied
            .all_node_pairs
            .iter()
            .map(|&(source, copy)| (copy, model.node(source).name().to_owned()))
            .collect();
        wanted
    }

    fn want_value(&mut self, value: ValueId, name: Option<String>) {
        match self.at.get(&value) {
            Some(&i) => self.values[i].1 = name,
            None => {
                self.at.insert(value, self.values.len());
                self.values.push((value, name));
            }
        }
    }

    /// Appends `other`'s wishes (a later copy's).
    pub(crate) fn extend(&mut self, other: Self) {
        for (value, name) in other.values {
            self.want_value(value, name);
        }
        self.nodes.extend(other.nodes);
    }

    /// `value` took the name of `output` (see [`replace_node`]): it keeps it, or wants what
    /// `output` wanted when that was a copy too.
    pub(crate) fn took_name_of(&mut self, value: ValueId, output: ValueId) {
        let inherited = self.at.get(&output).and_then(|&i| self.values[i].1.clone());
        self.want_value(value, inherited);
    }
}

/// How [`restore_names`] treats a copy whose wanted name is taken.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub(crate) enum Restore {
    /// It keeps the name it has.
    WhereFree,
    /// It is named afresh from the wanted name (the least free suffix), in the order copied:
    /// for names read again from the model, whose suffixes start over.
    Afresh,
}

/// Gives copied values and nodes back the names they want where those are free again (the
/// sources went away with the node they were inside, or the function they were in).
pub(crate) fn restore_names(model: &mut Model, names: &mut Names, wanted: &Wanted, how: Restore) {
    for (copy, want) in &wanted.values {
        let Some(want) = want else { continue };
        let have = model.value(*copy).name().to_owned();
        if have == *want || have.is_empty() || !is_live(model, *copy) {
            continue;
        }
        let given = if names.value_is_free(want) {
            names.take_value(want);
            names.release_value(&have);
            want.clone()
        } else if how == Restore::Afresh {
            names.release_value(&have);
            names.value(want)
        } else {
            continue;
        };
        if given != have {
            model.rename_value(*copy, given);
        }
    }
    for (copy, want) in &wanted.nodes {
        let have = model.node(*copy).name().to_owned();
        if have == *want || want.is_empty() || model.node(*copy).is_removed() {
            continue;
        }
        // `Names` tells whether a node name is free only by handing it out.
        let given = match how {
            Restore::WhereFree => {
                let given = names.node(want);
                if given != *want {
                    names.release_node(&given);
                    continue;
                }
                names.release_node(&have);
                given
            }
            Restore::Afresh => {
                names.release_node(&have);
                names.node(want)
            }
        };
        if given != have {
            model.node_mut(*copy).proto.name = Some(given);
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
    let pairs: Vec<(NodeId, NodeId)> = nodes.iter().map(|&n| (n, anchor)).collect();
    edit::place_before(model, &pairs)?;
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

/// Whether a graph (of any scope) outputs `value`.
fn is_graph_output(model: &Model, value: ValueId) -> bool {
    model
        .value(value)
        .uses()
        .iter()
        .any(|u| matches!(u, Use::GraphOutput { .. }))
}

/// Whether `value` is still defined: its producer (if any) not removed.
fn is_live(model: &Model, value: ValueId) -> bool {
    match model.value(value).def() {
        onnx_rewrite_ir::ValueDef::Node { node, .. } => !model.node(node).is_removed(),
        _ => true,
    }
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
