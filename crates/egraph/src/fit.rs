//! The analysis's side of [`onnx_rewrite_ir::edit::fit`]: what is known of the shapes of the
//! values a rewrite exposed, and the fit itself.
//!
//! An `If` is opaque to the analysis, so its outputs have no shape in the graph that holds it;
//! when its condition is a known constant (a runtime inlines it: onnxruntime's constant folding
//! does), the shape is the taken branch's.

use onnx_rewrite_ir::edit::Names;
use onnx_rewrite_ir::edit::fit::{self, FitOutcome, KnownShape};
use onnx_rewrite_ir::{GraphId, InvariantError, Model, NodeId, Use, ValueId};
use rustc_hash::FxHashMap as HashMap;

use crate::lower::{self, LowerOptions, Lowered};
use crate::pass::PassReport;
use crate::run::{Declined, describe_graph};

/// Fits every reader of `exposed` that demands a scalar; shapes from the analysis, taken before
/// any edit.
pub fn scalar_readers(
    model: &mut Model,
    names: &mut Names,
    exposed: &[ValueId],
) -> Result<FitOutcome, InvariantError> {
    let demanded: Vec<ValueId> = exposed
        .iter()
        .copied()
        .filter(|&v| read_as_scalar(model, v))
        .collect();
    if demanded.is_empty() {
        return Ok(FitOutcome::default());
    }
    let shapes = known_shapes(model, &demanded);
    fit::scalar_readers(model, names, &demanded, |_, v| {
        shapes.get(&v).cloned().flatten()
    })
}

/// Every output of every `If` whose condition the analysis knows: what a runtime that inlines
/// such an `If` exposes to its readers.
pub fn outputs_of_decided_ifs(model: &Model) -> Vec<ValueId> {
    let mut lowered: HashMap<GraphId, Option<Lowered>> = HashMap::default();
    let mut found = Vec::new();
    for (graph, node) in live_ifs(model) {
        let n = model.node(node);
        let Some(cond) = n.inputs().first().copied().flatten() else {
            continue;
        };
        let facts = lowered
            .entry(graph)
            .or_insert_with(|| lower::lower(model, graph, &LowerOptions::default()).ok());
        if facts.as_ref().and_then(|l| condition(l, cond)).is_some() {
            found.extend(n.outputs().iter().flatten().copied());
        }
    }
    found
}

/// Every live ONNX `If` of the model, with its graph.
fn live_ifs(model: &Model) -> impl Iterator<Item = (GraphId, NodeId)> + '_ {
    model.graph_ids().flat_map(move |graph| {
        model.graph(graph).nodes().iter().filter_map(move |&node| {
            let n = model.node(node);
            (!n.is_removed() && n.domain().is_empty() && n.op_type() == "If")
                .then_some((graph, node))
        })
    })
}

fn read_as_scalar(model: &Model, value: ValueId) -> bool {
    model.value(value).uses().iter().any(|u| match *u {
        Use::Node { node, input } => fit::demands_scalar(model, node, input as usize),
        Use::GraphOutput { .. } => false,
    })
}

/// The shapes of `values`, each graph lowered once.
fn known_shapes(model: &Model, values: &[ValueId]) -> HashMap<ValueId, KnownShape> {
    let mut lowered: HashMap<GraphId, Option<Lowered>> = HashMap::default();
    let mut shapes = HashMap::default();
    for &value in values {
        let shape = shape_in(model, &mut lowered, value);
        shapes.insert(value, shape);
    }
    shapes
}

fn lowered_graph<'a>(
    model: &Model,
    lowered: &'a mut HashMap<GraphId, Option<Lowered>>,
    graph: GraphId,
) -> Option<&'a mut Lowered> {
    lowered
        .entry(graph)
        .or_insert_with(|| lower::lower(model, graph, &LowerOptions::default()).ok())
        .as_mut()
}

fn shape_in(
    model: &Model,
    lowered: &mut HashMap<GraphId, Option<Lowered>>,
    value: ValueId,
) -> KnownShape {
    let graph = model.value(value).graph();
    let l = lowered_graph(model, lowered, graph)?;
    if let Some(shape) = class_shape(l, value) {
        return Some(shape);
    }
    // An If's output: the taken branch's, when the condition is known.
    let (node, index) = model.value(value).producer()?;
    let n = model.node(node);
    if !n.domain().is_empty() || n.op_type() != "If" {
        return None;
    }
    let cond = n.inputs().first().copied().flatten()?;
    let taken = if condition(l, cond)? {
        "then_branch"
    } else {
        "else_branch"
    };
    let branch = n.attribute(taken)?.graph?;
    let inner = model.graph(branch).outputs().get(index as usize)?.value;
    let l = lowered_graph(model, lowered, branch)?;
    class_shape(l, inner)
}

fn class_shape(l: &mut Lowered, value: ValueId) -> KnownShape {
    let class = *l.classes.get(&value)?;
    let class = l.egraph.find(class);
    let shape = l.egraph[class].data.value()?.shape.clone()?;
    let syms = &mut l.egraph.analysis.symbols;
    Some(shape.dims().iter().map(|&d| syms.value_of(d)).collect())
}

/// The condition's value, when the analysis holds it as a one-element constant.
fn condition(l: &Lowered, cond: ValueId) -> Option<bool> {
    let class = l.egraph.find(*l.classes.get(&cond)?);
    let constant = l.egraph[class].data.value()?.constant.clone()?;
    match constant.to_i64s()?.as_slice() {
        [v] => Some(*v != 0),
        _ => None,
    }
}

/// The readers of `If` outputs that demand a scalar: where inlining or lowering an `If` will
/// expose a branch's value. Taken before a rewrite, read back with [`exposed_at`] after it.
pub fn scalar_readers_of_ifs(model: &Model) -> Vec<(NodeId, usize)> {
    let mut readers = Vec::new();
    for (_, node) in live_ifs(model) {
        for &out in model.node(node).outputs().iter().flatten() {
            for u in model.value(out).uses() {
                if let Use::Node {
                    node: reader,
                    input,
                } = *u
                    && fit::demands_scalar(model, reader, input as usize)
                {
                    readers.push((reader, input as usize));
                }
            }
        }
    }
    readers
}

/// What the live `readers` read now, except values an `If` still produces (not exposed).
pub fn exposed_at(model: &Model, readers: &[(NodeId, usize)]) -> Vec<ValueId> {
    let mut exposed: Vec<ValueId> = readers
        .iter()
        .filter(|(node, _)| !model.node(*node).is_removed())
        .filter_map(|&(node, input)| model.node(node).inputs().get(input).copied().flatten())
        .filter(|&v| {
            model
                .value(v)
                .producer()
                .is_none_or(|(p, _)| model.node(p).op_type() != "If")
        })
        .collect();
    exposed.sort();
    exposed.dedup();
    exposed
}

/// Puts a fit's outcome in `report`: each fitted reader as a note, each unfit one as a decline.
pub fn record(model: &Model, outcome: FitOutcome, rule: &str, report: &mut PassReport) {
    if !outcome.fitted.is_empty() {
        let readers: Vec<String> = outcome
            .fitted
            .iter()
            .map(|f| {
                format!(
                    "{} input {} ('{}')",
                    model.describe_node(f.node),
                    f.input,
                    f.value
                )
            })
            .collect();
        report.notes.push(format!(
            "{} reader(s) that need a scalar read a one-element tensor the rewrite exposed; each reads it reshaped to 0-D: {}",
            readers.len(),
            readers.join(", ")
        ));
    }
    for unfit in outcome.unfit {
        let graph = model.node(unfit.node).graph();
        report.declined.push(Declined {
            graph: describe_graph(model, graph),
            node: model.describe_node(unfit.node),
            rule: rule.to_owned(),
            reason: unfit.reason,
        });
    }
}
