//! The `lower-if` pass: no `If` where removing it is sound, and a reason for every `If` left.
//! Also the `inline-functions` pass it runs first.
//!
//! `torch.cond` exports as `If` nodes (their branches calling model-local functions in the
//! unoptimized export), and static compilers, quantizers and fp16 converters handle `If` badly:
//! TensorRT wants equal-rank branch outputs, converters miss the nodes inside subgraphs. The
//! tools people use remove an `If` only when its condition is a constant, with known bugs
//! (initializers lost, names that clash). This pass:
//!
//! 1. inlines every call of a model-local function ([`functions`]), so the branches hold plain
//!    ops the analysis understands;
//! 2. replaces an `If` whose condition the e-graph analysis knows by its taken branch
//!    ([`constant`]), innermost graphs first and again until nothing changes, since inlining an
//!    outer branch can decide an inner condition;
//! 3. computes both branches of an `If` whose condition is dynamic and selects each output
//!    with `Where` ([`select`]), when both branches are pure, every output pair provably has
//!    one dtype and one shape, and every node of both branches is total, so the branch that was
//!    not taken runs harmlessly on inputs meant for the other. The expensive case, a whole
//!    expert MLP per branch, is still lowered (a static target needs it); the report gives the
//!    extra FLOPs.
//!
//! Every `If` left is reported with the reason, naming the node and its graph.

mod bounds;
mod constant;
mod copy;
mod cost;
mod functions;
mod purity;
mod select;
mod splice;
mod totality;

use std::collections::{BTreeMap, BTreeSet};
use std::time::Instant;

use onnx_rewrite_facts::fit;
use onnx_rewrite_ir::edit::Names;
use onnx_rewrite_ir::{GraphId, GraphOwner, Model, NodeId, ValueId};
use onnx_rewrite_pass::{
    Deadline, Pass, PassContext, PassError, PassReport, count_ops, describe_graph,
};
use serde_json::{Value as Json, json};

pub use functions::MAX_CALL_DEPTH;

use crate::constant::NotInlined;
use crate::functions::InlineOutcome;

use crate::select::{NotLowered, SelectCost, is_if};
use onnx_rewrite_facts::GraphFacts;

/// Rounds of constant inlining and select lowering over the whole model; each round that
/// changes something removes at least one `If`, so real models converge in a few.
const MAX_ROUNDS: usize = 64;

/// The `inline-functions` pass.
pub struct InlineFunctionsPass;

impl Pass for InlineFunctionsPass {
    fn name(&self) -> &'static str {
        "inline-functions"
    }

    fn summary(&self) -> &'static str {
        "calls of model-local functions replaced by their bodies (attributes bound, names made unique), unused functions removed"
    }

    fn survey(&self, model: &mut Model) -> Option<String> {
        let calls = functions::count_calls(model);
        (calls > 0).then(|| format!("{calls} call(s) of model-local functions to inline"))
    }

    fn run(&self, model: &mut Model, cx: &PassContext) -> Result<PassReport, PassError> {
        let started = Instant::now();
        let mut report = PassReport::new(self.name(), model, cx);
        let outcome = functions::inline_functions(model, &mut Names::of(model))?;
        record_inlining(&mut report, outcome);
        Ok(report.finish(model, started))
    }
}

/// The `lower-if` pass.
pub struct LowerIfPass;

impl Pass for LowerIfPass {
    fn name(&self) -> &'static str {
        "lower-if"
    }

    fn summary(&self) -> &'static str {
        "If nodes removed: the taken branch inlined when the condition is known, else both branches computed and selected with Where when that is sound; every If left is reported with the reason"
    }

    fn survey(&self, model: &mut Model) -> Option<String> {
        let ifs = count_ops(model, "If");
        (ifs > 0).then(|| format!("{ifs} If node(s) to inline or lower"))
    }

    fn run(&self, model: &mut Model, cx: &PassContext) -> Result<PassReport, PassError> {
        let started = Instant::now();
        let ifs_before = count_ops(model, "If");
        let mut names = Names::of(model);
        let mut report = PassReport::new(self.name(), model, cx);
        let inlined = functions::inline_functions(model, &mut names)?;
        record_inlining(&mut report, inlined);

        let lowering = lower_ifs(model, &mut names, &cx.deadline(started))?;
        let exposed = fit::exposed_at(model, lowering.rank_readers.iter().copied());
        let fitted = fit::readers(model, &exposed)
            .map_err(|e| PassError::input(format!("fitting the readers of inlined values: {e}")))?;
        let fitted_count = fitted.fitted.len();
        report.record_fit(model, fitted, self.name());
        let mut left = 0;
        for graph in model.graphs_innermost_first() {
            for &node in model.graph(graph).nodes() {
                if !is_if(model, node) {
                    continue;
                }
                left += 1;
                let reason = lowering.declines.get(&node).unwrap_or(&IfLeft::Undecided);
                report.decline(model, node, "lower-if", reason.to_string());
            }
        }
        let costs: Vec<Json> = lowering.lowered.iter().map(cost_json).collect();
        let details = [
            ("ifs_before", json!(ifs_before)),
            ("ifs_after", json!(count_ops(model, "If"))),
            ("ifs_inlined_constant", json!(lowering.inlined_constant)),
            ("ifs_lowered_where", json!(lowering.lowered.len())),
            ("ifs_declined", json!(left)),
            ("readers_fitted", json!(fitted_count)),
            ("where_cost", Json::Array(costs)),
        ];
        report
            .details
            .extend(details.into_iter().map(|(k, v)| (k.to_owned(), v)));
        if !lowering.lowered.is_empty() {
            report.notes.push(
                "the Where form runs both branches: each lowered If costs the FLOPs of the branch not taken plus one select per output element (details.where_cost)"
                    .into(),
            );
        }
        Ok(report.finish(model, started))
    }
}

fn record_inlining(report: &mut PassReport, outcome: InlineOutcome) {
    report.details.insert(
        "function_calls_inlined".into(),
        json!(outcome.calls_inlined),
    );
    report
        .details
        .insert("functions_removed".into(), json!(outcome.functions_removed));
    if !outcome.opsets_added.is_empty() {
        report.notes.push(format!(
            "opset imports added for inlined function bodies: {}",
            outcome.opsets_added.join(", ")
        ));
    }
    if !outcome.opsets_removed.is_empty() {
        report.notes.push(format!(
            "opset imports removed with the functions that needed them: {}",
            outcome.opsets_removed.join(", ")
        ));
    }
    for d in outcome.declined {
        report.decline_at(d.graph, d.node, &d.rule, d.reason);
    }
}

fn cost_json(c: &SelectCost) -> Json {
    json!({
        "if": c.if_name,
        "graph": c.graph,
        "then_flops": c.then_flops,
        "else_flops": c.else_flops,
        "where_elements": c.where_elements,
        "worst_extra_flops": c.worst_extra,
    })
}

/// Why an `If` is left; `branch` is the attribute naming the taken branch.
#[derive(Debug, thiserror::Error)]
enum IfLeft {
    #[error("the condition is {condition}, but {branch} is missing")]
    NoTakenBranch {
        condition: bool,
        branch: &'static str,
    },
    #[error("the condition is {condition}, but inlining {branch} failed: {reason}")]
    NotInlined {
        condition: bool,
        branch: &'static str,
        reason: NotInlined,
    },
    #[error(transparent)]
    NotLowered(#[from] NotLowered),
    #[error("still undecided after {MAX_ROUNDS} rounds of lowering")]
    Undecided,
}

/// What the rounds did.
#[derive(Default)]
struct Lowering {
    inlined_constant: usize,
    lowered: Vec<SelectCost>,
    /// The latest reason each `If` was left for.
    declines: BTreeMap<NodeId, IfLeft>,
    /// Readers of `If` outputs that need a scalar, seen at the start of each round.
    rank_readers: BTreeSet<(NodeId, usize)>,
}

fn lower_ifs(
    model: &mut Model,
    names: &mut Names,
    deadline: &Deadline,
) -> Result<Lowering, PassError> {
    let mut out = Lowering::default();
    let mut scalar_shapes: BTreeMap<GraphId, Option<ValueId>> = BTreeMap::new();
    for _ in 0..MAX_ROUNDS {
        out.rank_readers.extend(fit::rank_readers_of_ifs(model));
        let mut changed = false;
        for graph in graphs_with_ifs(model) {
            deadline.check("lower-if")?;
            changed |= inline_constants(model, graph, names, &mut out)?;
        }
        for graph in graphs_with_ifs(model) {
            deadline.check("lower-if")?;
            if !is_live(model, graph) {
                continue;
            }
            let scalar = scalar_shapes.entry(graph).or_default();
            let outcome = select::lower_graph(model, graph, names, scalar)
                .map_err(|e| PassError::input(format!("{}: {e}", describe_graph(model, graph))))?;
            for (node, reason) in outcome.declined {
                out.declines.insert(node, reason.into());
            }
            changed |= !outcome.lowered.is_empty();
            out.lowered.extend(outcome.lowered);
        }
        if !changed {
            break;
        }
    }
    Ok(out)
}

/// Live graphs holding an `If`, innermost first.
fn graphs_with_ifs(model: &Model) -> Vec<GraphId> {
    model
        .graphs_innermost_first()
        .into_iter()
        .filter(|g| model.graph(*g).nodes().iter().any(|n| is_if(model, *n)))
        .collect()
}

/// Replaces the `If`s of `graph` whose condition the facts know by their taken branch.
fn inline_constants(
    model: &mut Model,
    graph: GraphId,
    names: &mut Names,
    out: &mut Lowering,
) -> Result<bool, PassError> {
    if !is_live(model, graph) {
        return Ok(false);
    }
    let decided: Vec<(NodeId, bool)> = {
        let Ok(facts) = GraphFacts::with_captures(model, graph) else {
            return Ok(false);
        };
        model
            .graph(graph)
            .nodes()
            .iter()
            .filter(|n| is_if(model, **n))
            .filter_map(|n| Some((*n, constant::known_condition(model, &facts, *n)?)))
            .collect()
    };
    let mut changed = false;
    for (node, condition) in decided {
        let which = if condition {
            "then_branch"
        } else {
            "else_branch"
        };
        let Some(taken) = constant::branch(model, node, which) else {
            out.declines.insert(
                node,
                IfLeft::NoTakenBranch {
                    condition,
                    branch: which,
                },
            );
            continue;
        };
        match constant::inline_branch(model, node, taken, names) {
            Ok(()) => {
                out.inlined_constant += 1;
                out.declines.remove(&node);
                changed = true;
            }
            Err(reason) => {
                out.declines.insert(
                    node,
                    IfLeft::NotInlined {
                        condition,
                        branch: which,
                        reason,
                    },
                );
            }
        }
    }
    Ok(changed)
}

/// Whether `graph` is still part of the model (its owner node was not removed).
fn is_live(model: &Model, graph: GraphId) -> bool {
    let mut g = graph;
    loop {
        match model.graph(g).owner() {
            GraphOwner::Model => return true,
            GraphOwner::Function { index } => {
                return model
                    .functions
                    .get(index as usize)
                    .is_some_and(|f| f.body == g);
            }
            GraphOwner::Node { node, .. } => {
                if model.node(node).is_removed() {
                    return false;
                }
                g = model.node(node).graph();
            }
        }
    }
}
