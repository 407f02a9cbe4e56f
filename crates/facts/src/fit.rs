//! Inference's side of [`onnx_rewrite_ir::edit::fit`]: what is known of the shapes of the
//! values a rewrite exposed, and the fit itself.
//!
//! An `If` is opaque to the analysis, so its outputs have no shape in the graph that holds it;
//! when its condition is a known constant (a runtime inlines it: onnxruntime's constant folding
//! does), the shape is the taken branch's.

use onnx_rewrite_ir::edit::Names;
use onnx_rewrite_ir::edit::fit::{self, FitOutcome, KnownShape};
use onnx_rewrite_ir::{GraphId, InvariantError, Model, Node, NodeId, Use, ValueId};
use rustc_hash::FxHashMap as HashMap;

use crate::{GraphFacts, PerGraph};

/// Fits every reader of `exposed` that demands a rank (a scalar, a 1-D shape or axes); shapes
/// from the analysis, taken before any edit. Nothing is lowered or named unless such a reader
/// exists.
pub fn readers(model: &mut Model, exposed: &[ValueId]) -> Result<FitOutcome, InvariantError> {
    fit_with(model, exposed, &mut Analyses::default())
}

/// Fits the rank-demanding readers of every `If` whose condition the analysis knows: what a runtime
/// that inlines such an `If` (onnxruntime's constant folding does) exposes to them.
pub fn readers_of_decided_ifs(model: &mut Model) -> Result<FitOutcome, InvariantError> {
    let mut analyses = Analyses::default();
    let mut exposed = Vec::new();
    for (graph, node) in live_ifs(model) {
        let n = model.node(node);
        // Only an `If` something reads at a demanded rank is worth lowering its graph for.
        let outputs: Vec<ValueId> = n.outputs().iter().flatten().copied().collect();
        if !outputs.iter().any(|&v| read_at_demanded_rank(model, v)) {
            continue;
        }
        let Some(cond) = n.inputs().first().copied().flatten() else {
            continue;
        };
        if analyses.condition(model, graph, cond).is_some() {
            exposed.extend(outputs);
        }
    }
    fit_with(model, &exposed, &mut analyses)
}

/// The readers of `If` outputs that demand a rank: where inlining or lowering an `If` will
/// expose a branch's value. Taken before a rewrite, read back with [`exposed_at`] after it.
pub fn rank_readers_of_ifs(model: &Model) -> Vec<(NodeId, usize)> {
    let mut readers = Vec::new();
    for (_, node) in live_ifs(model) {
        for &out in model.node(node).outputs().iter().flatten() {
            readers.extend(rank_demanding_uses(model, out));
        }
    }
    readers
}

/// What the live `readers` read now, except values an `If` still produces (not exposed).
pub fn exposed_at(
    model: &Model,
    readers: impl IntoIterator<Item = (NodeId, usize)>,
) -> Vec<ValueId> {
    let mut exposed: Vec<ValueId> = readers
        .into_iter()
        .filter(|(node, _)| !model.node(*node).is_removed())
        .filter_map(|(node, input)| model.node(node).inputs().get(input).copied().flatten())
        .filter(|&v| {
            model
                .value(v)
                .producer()
                .is_none_or(|(p, _)| !is_onnx_if(model.node(p)))
        })
        .collect();
    exposed.sort();
    exposed.dedup();
    exposed
}

fn fit_with(
    model: &mut Model,
    exposed: &[ValueId],
    analyses: &mut Analyses,
) -> Result<FitOutcome, InvariantError> {
    let shapes: HashMap<ValueId, KnownShape> = exposed
        .iter()
        .filter(|&&v| read_at_demanded_rank(model, v))
        .map(|&v| (v, analyses.shape(model, v)))
        .collect();
    if shapes.is_empty() {
        return Ok(FitOutcome::default());
    }
    let demanded: Vec<ValueId> = exposed
        .iter()
        .copied()
        .filter(|v| shapes.contains_key(v))
        .collect();
    let mut names = Names::of(model);
    fit::readers(model, &mut names, &demanded, |v| {
        shapes.get(&v).cloned().flatten()
    })
}

/// Each graph inferred at most once, on first need.
#[derive(Default)]
struct Analyses {
    graphs: PerGraph,
}

impl Analyses {
    fn of(&mut self, model: &Model, graph: GraphId) -> Option<&mut GraphFacts> {
        self.graphs.of(model, graph)
    }

    /// The value of an `If` condition of `graph`, when inference holds it as a constant.
    fn condition(&mut self, model: &Model, graph: GraphId, cond: ValueId) -> Option<bool> {
        let constant = self.of(model, graph)?.constant(cond)?;
        Some(constant.scalar_as_i64()? != 0)
    }

    /// The value's shape; for an `If` output, the taken branch's when the condition is known.
    fn shape(&mut self, model: &Model, value: ValueId) -> KnownShape {
        let graph = model.value(value).graph();
        if let Some(shape) = self.class_shape(model, graph, value) {
            return Some(shape);
        }
        let (node, index) = model.value(value).producer()?;
        let n = model.node(node);
        if !is_onnx_if(n) {
            return None;
        }
        let cond = n.inputs().first().copied().flatten()?;
        let taken = if self.condition(model, graph, cond)? {
            "then_branch"
        } else {
            "else_branch"
        };
        let branch = n.attribute(taken)?.graph?;
        let inner = model.graph(branch).outputs().get(index as usize)?.value;
        self.class_shape(model, branch, inner)
    }

    fn class_shape(&mut self, model: &Model, graph: GraphId, value: ValueId) -> KnownShape {
        let facts = self.of(model, graph)?;
        let shape = facts.get(value)?.shape.clone()?;
        let syms = facts.syms();
        Some(shape.dims().iter().map(|&d| syms.value_of(d)).collect())
    }
}

fn is_onnx_if(n: &Node) -> bool {
    !n.is_removed() && n.domain().is_empty() && n.op_type() == "If"
}

/// Every live ONNX `If` of the model, with its graph.
fn live_ifs(model: &Model) -> impl Iterator<Item = (GraphId, NodeId)> + '_ {
    model.graph_ids().flat_map(move |graph| {
        model
            .graph(graph)
            .nodes()
            .iter()
            .filter(move |&&node| is_onnx_if(model.node(node)))
            .map(move |&node| (graph, node))
    })
}

/// The uses of `value` whose op demands a scalar there.
fn rank_demanding_uses(
    model: &Model,
    value: ValueId,
) -> impl Iterator<Item = (NodeId, usize)> + '_ {
    model
        .value(value)
        .uses()
        .iter()
        .filter_map(move |u| match *u {
            Use::Node { node, input }
                if fit::demanded_rank(model, node, input as usize).is_some() =>
            {
                Some((node, input as usize))
            }
            _ => None,
        })
}

fn read_at_demanded_rank(model: &Model, value: ValueId) -> bool {
    rank_demanding_uses(model, value).next().is_some()
}
