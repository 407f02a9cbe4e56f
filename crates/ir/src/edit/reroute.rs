//! Pointing every reader of a value at its replacement, by one rule for graph outputs.
//!
//! The rule: **a graph output keeps its name.** Node readers of `old` read `new`. A graph output
//! that read `old` reads a value of `old`'s name after the edit:
//! - when `old` is an input or a constant of its graph, the output keeps reading it (`new`
//!   computes the same, and an interface or constant name cannot move);
//! - else `old` gives its name up (it is renamed fresh, and is normally swept next) and `new`
//!   takes it, when `new` may be renamed: a node output of the graph that defined `old`, not
//!   itself a graph output;
//! - else an `Identity` named for the output copies `new` into a value of that name.
//!
//! Renaming rather than always copying keeps a rewritten graph free of Identity nodes that
//! exist only to carry a name; the Identity covers the cases a rename would change another
//! output's or an input's name.

use super::{Names, Op};
use crate::{InvariantError, Model, Use, ValueDef, ValueId};

/// How a graph output that read the replaced value kept its name.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub enum OutputKept {
    /// No graph output read the value.
    NotAnOutput,
    /// The output still reads the input or constant it read.
    Unchanged,
    /// The replacement took the output's name.
    Renamed,
    /// An Identity (this value) carries the replacement under the output's name.
    Identity(ValueId),
}

/// Makes every reader of `old` read `new` (which computes the same), graph outputs by the rule
/// of this module.
pub fn reroute(
    model: &mut Model,
    names: &mut Names,
    old: ValueId,
    new: ValueId,
) -> Result<OutputKept, InvariantError> {
    if old == new {
        return Ok(OutputKept::NotAnOutput);
    }
    let outputs: Vec<Use> = model
        .value(old)
        .uses()
        .iter()
        .copied()
        .filter(|u| matches!(u, Use::GraphOutput { .. }))
        .collect();
    let readers: Vec<Use> = model
        .value(old)
        .uses()
        .iter()
        .copied()
        .filter(|u| matches!(u, Use::Node { .. }))
        .collect();
    for the_use in readers {
        if let Use::Node { node, input } = the_use {
            model.set_node_input(node, input as usize, Some(new));
        }
    }
    if outputs.is_empty() {
        return Ok(OutputKept::NotAnOutput);
    }
    if !matches!(model.value(old).def(), ValueDef::Node { .. }) {
        return Ok(OutputKept::Unchanged);
    }
    let name = model.value(old).name().to_owned();
    let retired = names.value(&name);
    model.rename_value(old, retired);
    let target = if may_take_name(model, old, new) {
        names.release_value(&name);
        names.rename(model, new, &name);
        new
    } else {
        let graph = model.value(old).graph();
        let identity = Op::new("Identity")
            .name(format!("{name}/Identity"))
            .input(new)
            .output(name.clone())
            .add(model, names, graph);
        let value = super::first_output(model, identity)?;
        // The name is still counted for `old`, which gave it up: the policy gave the Identity
        // a suffixed one, and the output's name moves to it by hand.
        names.release_value(&name);
        names.rename(model, value, &name);
        value
    };
    for the_use in outputs {
        if let Use::GraphOutput { graph, index } = the_use {
            model.set_graph_output(graph, index as usize, target);
        }
    }
    Ok(if target == new {
        OutputKept::Renamed
    } else {
        OutputKept::Identity(target)
    })
}

/// Whether `new` may take the name of the graph output `old` (the rule of this module): it is
/// computed by a node of `old`'s graph and is not itself a graph output.
pub fn may_take_name(model: &Model, old: ValueId, new: ValueId) -> bool {
    let v = model.value(new);
    matches!(v.def(), ValueDef::Node { .. })
        && v.graph() == model.value(old).graph()
        && !v
            .uses()
            .iter()
            .any(|u| matches!(u, Use::GraphOutput { .. }))
}
