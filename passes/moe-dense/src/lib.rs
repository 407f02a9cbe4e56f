//! The `moe-dense` pass: Mixture-of-Experts layers rewritten to a static dense-masked form.
//!
//! Exported MoE layers pick experts per token at run time, and exporters write that in forms
//! static runtimes, compilers and quantizers cannot take (`NonZero`, data-dependent gathers and
//! scatters, one `If` per expert, a contrib op one execution provider runs), or that are wrong
//! (a trace that kept only the experts its example input reached). This pass finds each layer
//! by what it computes ([`detect`]: router `TopK`, per-expert programs, a weighted combine),
//! reads every expert as a per-token program ([`expert`]) and writes the layer again as
//! every expert on every token, gated by the top-k weights scattered to `[tokens, experts]`
//! and combined with `Where(mask, gate · y, 0)` ([`dense`]).
//!
//! - Baked traces: when the router chooses among E experts but fewer are computed, the
//!   missing experts are rebuilt when their weights are in the graph (slices of the same
//!   `[E, ...]` stacks the present experts read); otherwise the pass refuses the model
//!   (`PassError::Refused`, exit 2), naming the layer and the experts present and missing.
//! - Cost: the dense form runs E/k times the sparse expert FLOPs; layers beyond
//!   `--moe-max-flops-ratio` (default 16) are left as they are, with the reason.
//! - Shared experts (Qwen-MoE) do not depend on the routing and stay as they are.
//! - `lower-if` runs first (the `If`-per-expert form becomes `Where` steps it reads).

mod dense;
mod detect;
mod expert;
mod graph;
pub mod guard;
mod tensor;

use std::time::Instant;

use onnx_rewrite_ir::edit::{self, Names, Transaction};
use onnx_rewrite_ir::{GraphId, InvariantError, Model, NodeId};
use onnx_rewrite_pass::describe_graph;
use onnx_rewrite_pass::{Pass, PassContext, PassError, PassOption, PassReport};
use rustc_hash::FxHashMap as HashMap;
use serde_json::json;

use detect::{Layer, Rejected};
use graph::Scope;

/// The pass.
pub struct MoeDensePass;

const MAX_RATIO_FLAG: &str = "moe-max-flops-ratio";
const STACK_FLAG: &str = "moe-stack-experts";
const DEFAULT_MAX_RATIO: f64 = 16.0;

const OPTIONS: &[PassOption] = &[
    PassOption {
        flag: MAX_RATIO_FLAG,
        help: "leave MoE layers whose dense form costs more than RATIO times the sparse expert FLOPs (experts / top-k; default 16)",
        value: Some("RATIO"),
        repeated: false,
    },
    PassOption {
        flag: STACK_FLAG,
        help: "one batched MatMul per projection over [experts, in, out] weight stacks, instead of one 2-D MatMul per expert",
        value: None,
        repeated: false,
    },
];

/// Why the pass stops without writing anything.
#[derive(Debug, thiserror::Error)]
pub enum MoeError {
    /// A baked trace whose missing experts cannot be rebuilt from the graph: the model is wrong
    /// for tokens routed to them, and a dense rewrite would only hide that.
    #[error(
        "MoE layer at {layer}: the router picks {top_k} of {experts} experts, but the graph computes experts {present:?} only (a trace that kept the experts its example input reached); experts {missing:?} are missing and cannot be rebuilt: {why}. The model is wrong for any token routed to them; re-export it with every expert (a static loop over all experts, or transformers' batched_mm experts)"
    )]
    BakedTrace {
        layer: String,
        top_k: i64,
        experts: i64,
        present: Vec<usize>,
        missing: Vec<usize>,
        // Boxed: the refusal is rare, and every `Result` of the pass carries its size.
        why: Box<RebuildError>,
    },
    /// A dispatch no detector reads whose router chooses among more experts than the graph
    /// tests: a baked trace the pass can neither prove nor rebuild.
    #[error(
        "MoE dispatch at {router}: the router chooses among {experts} experts, but the graph tests experts {present:?} only (a trace that kept the experts its example input reached); experts {missing:?} are missing, and this spelling is not one the pass can rebuild. The model is wrong for any token routed to them; re-export it with every expert (a static loop over all experts, or transformers' batched_mm experts)"
    )]
    BakedUnread {
        router: String,
        experts: i64,
        present: Vec<i64>,
        missing: Vec<i64>,
    },
    /// A baked trace only the dense form repairs, over the FLOPs limit: leaving it as it is
    /// would leave a wrong model.
    #[error(
        "MoE layer at {layer}: baked trace (experts {missing:?} missing) that only the dense form repairs, and the dense form would run {ratio:.3} times the sparse expert FLOPs, over --{MAX_RATIO_FLAG} {max_ratio}"
    )]
    BakedOverBudget {
        layer: String,
        missing: Vec<usize>,
        ratio: f64,
        max_ratio: f64,
    },
    #[error(transparent)]
    BadRatio(#[from] onnx_rewrite_pass::BadOption),
    #[error("{graph}: {node} is on a cycle")]
    Cycle { graph: String, node: String },
}

/// Why the experts a baked trace dropped cannot be rebuilt from the graph; `expert` is the
/// first expert the graph computes, the template of the others.
#[derive(Debug, Clone, PartialEq, Eq, thiserror::Error)]
pub enum RebuildError {
    #[error("no expert is computed at all")]
    NoExpert,
    #[error("no template")]
    NoTemplate,
    #[error(
        "expert {expert}'s weights are its own initializers, not slices of [{experts}, ...] stacks"
    )]
    OwnWeights { expert: usize, experts: i64 },
    /// `lead` is the stack's leading dim, when known.
    #[error(
        "expert {expert} reads slice {index} of a stack of {lead:?}, not slice {expert} of {experts} experts"
    )]
    OtherSlice {
        expert: usize,
        index: i64,
        lead: Option<i64>,
        experts: i64,
    },
    #[error("experts {expert} and {other} do not read their weights the same way")]
    ReadDifferently { expert: usize, other: usize },
}

/// Why a layer's rewrite failed; the model is left as it was.
#[derive(Debug, thiserror::Error)]
enum RewriteError {
    #[error(transparent)]
    Emit(#[from] dense::EmitError),
    #[error(transparent)]
    Invariant(#[from] InvariantError),
    #[error("{node} is on a cycle")]
    Cycle { node: String },
}

/// Several refusals (one per baked layer) in one message; nothing is written.
fn refused(errors: &[MoeError]) -> PassError {
    let all: Vec<String> = errors.iter().map(ToString::to_string).collect();
    PassError::Refused(format!("{}; nothing written", all.join("; ")))
}

impl From<MoeError> for PassError {
    fn from(e: MoeError) -> Self {
        match e {
            MoeError::BakedTrace { .. }
            | MoeError::BakedOverBudget { .. }
            | MoeError::BakedUnread { .. } => refused(&[e]),
            MoeError::BadRatio(bad) => PassError::Option(bad),
            MoeError::Cycle { .. } => PassError::input(e),
        }
    }
}

/// The MoE layers of one graph, and what was recognised but cannot be rewritten.
struct Found {
    graph: GraphId,
    layers: Vec<Layer>,
    rejected: Vec<Rejected>,
    /// `If` nodes whose branches gather tokens and scatter them back (If per expert).
    per_expert_ifs: usize,
}

fn find(model: &Model) -> Result<Vec<Found>, MoeError> {
    let mut all = Vec::new();
    for graph in graph::rewritable_graphs(model) {
        let g = model.graph(graph);
        let candidates = g.nodes().iter().any(|n| {
            let node = model.node(*n);
            matches!(node.op_type(), "TopK" | "MoE" | "QMoE")
        });
        let per_expert_ifs = g
            .nodes()
            .iter()
            .filter(|n| is_per_expert_if(model, **n))
            .count();
        if !candidates {
            if per_expert_ifs > 0 {
                all.push(Found {
                    graph,
                    layers: Vec::new(),
                    rejected: Vec::new(),
                    per_expert_ifs,
                });
            }
            continue;
        }
        let mut scope = Scope::new(model, graph).map_err(|n| MoeError::Cycle {
            graph: describe_graph(model, graph),
            node: model.describe_node(n),
        })?;
        let order: HashMap<NodeId, usize> = model
            .topological_order(graph)
            .unwrap_or_default()
            .into_iter()
            .enumerate()
            .map(|(i, n)| (n, i))
            .collect();
        let (mut layers, mut rejected) = detect::scatter::detect(&mut scope);
        let (l, r) = detect::pairs::detect(&mut scope, &order);
        layers.extend(l);
        rejected.extend(r);
        let (l, r) = detect::contrib::detect(&mut scope);
        layers.extend(l);
        rejected.extend(r);
        for layer in &mut layers {
            layer.shared = detect::shared::find(&mut scope, layer);
        }
        if !layers.is_empty() || !rejected.is_empty() || per_expert_ifs > 0 {
            all.push(Found {
                graph,
                layers,
                rejected,
                per_expert_ifs,
            });
        }
    }
    Ok(all)
}

/// An `If` whose branches pick rows with `NonZero` and scatter them back: one expert's body.
fn is_per_expert_if(model: &Model, node: NodeId) -> bool {
    let n = model.node(node);
    if n.op_type() != "If" || !n.domain().is_empty() {
        return false;
    }
    n.subgraphs().any(|g| {
        let ops: Vec<&str> = model
            .nodes_within(g)
            .iter()
            .map(|n| model.node(*n).op_type())
            .collect();
        ops.contains(&"NonZero") && ops.iter().any(|o| o.starts_with("Scatter"))
    })
}

/// Rebuilds the experts a baked trace dropped from the weight stacks the kept experts read:
/// every constant slice of a kept expert must be `W[e]` of an `[E, ...]` stack at its own
/// index `e`, and the kept experts must agree on how they read them. Returns the rebuilt
/// experts, or why it cannot.
fn rebuild_missing(layer: &mut Layer, model: &Model) -> Result<Vec<usize>, RebuildError> {
    let (present, missing) = layer.present_and_missing();
    let Some(&first) = present.first() else {
        return Err(RebuildError::NoExpert);
    };
    let template = layer.programs[first]
        .clone()
        .ok_or(RebuildError::NoTemplate)?;
    let e0 = first as i64;
    for w in template.weights() {
        let slices = w.expert_slices();
        if slices.is_empty() {
            return Err(RebuildError::OwnWeights {
                expert: first,
                experts: layer.experts,
            });
        }
    }
    for c in template.constants() {
        for (stack, index) in c.expert_slices() {
            let lead = stack.dims(model).and_then(|d| d.first().copied());
            if lead != Some(layer.experts) || index != e0 {
                return Err(RebuildError::OtherSlice {
                    expert: first,
                    index,
                    lead,
                    experts: layer.experts,
                });
            }
        }
    }
    for &p in &present[1..] {
        if layer.programs[p].as_ref() != Some(&template.reindexed(e0, p as i64)) {
            return Err(RebuildError::ReadDifferently {
                expert: first,
                other: p,
            });
        }
    }
    for &m in &missing {
        layer.programs[m] = Some(template.reindexed(e0, m as i64));
    }
    Ok(missing)
}

/// What the pass will do with one layer.
enum Decision {
    Rewrite {
        stack: bool,
    },
    Decline(LayerDecline),
    /// A baked trace that cannot be rebuilt: the pass refuses the model.
    Refuse,
}

/// Why a layer is left as it is.
#[derive(Debug, thiserror::Error)]
enum LayerDecline {
    #[error("the model imports opset {opset}; the dense form needs opset 13 or later")]
    Opset { opset: i64 },
    #[error(
        "the dense form would run {ratio:.3} times the sparse expert FLOPs ({experts} experts, top-{top_k}), over --{MAX_RATIO_FLAG} {max_ratio}"
    )]
    OverBudget {
        ratio: f64,
        experts: i64,
        top_k: i64,
        max_ratio: f64,
    },
}

impl Pass for MoeDensePass {
    fn name(&self) -> &'static str {
        "moe-dense"
    }

    fn summary(&self) -> &'static str {
        "MoE layers (per-expert loops, If per expert, batched/grouped experts, com.microsoft.MoE) → static dense-masked form; baked traces rebuilt, or refused when their weights are gone"
    }

    fn needs(&self) -> &'static [&'static str] {
        &["lower-if"]
    }

    fn options(&self) -> &'static [PassOption] {
        OPTIONS
    }

    fn survey(&self, model: &mut Model) -> Option<String> {
        let found = find(model).ok()?;
        let mut parts: Vec<String> = Vec::new();
        let mut layers = 0;
        let mut ifs = 0;
        for f in &found {
            layers += f.layers.len();
            ifs += f.per_expert_ifs;
            parts.extend(f.layers.iter().map(|l| {
                let mut line = l.summary(model);
                // Say up front what `apply` will do with a baked trace: rebuild or refuse.
                if !l.present_and_missing().1.is_empty() {
                    match rebuild_missing(&mut l.clone(), model) {
                        Ok(_) => line.push_str(
                            " (the missing experts' weights are in the graph: apply rebuilds them)",
                        ),
                        Err(why) => {
                            line.push_str(&format!(" (cannot be rebuilt: {why}; apply refuses)"))
                        }
                    }
                }
                line
            }));
            parts.extend(f.rejected.iter().map(|r| {
                format!(
                    "{}: MoE-like, left as it is: {}",
                    model.describe_node(r.node),
                    r.reason
                )
            }));
        }
        if ifs > 0 {
            parts.push(format!(
                "{ifs} If node(s) that gather tokens and scatter them back (If per expert: lower-if runs first, then each layer is expanded)"
            ));
        }
        (!parts.is_empty()).then(|| format!("{layers} MoE layer(s): {}", parts.join("; ")))
    }

    fn run(&self, model: &mut Model, cx: &PassContext) -> Result<PassReport, PassError> {
        let started = Instant::now();
        let mut report = PassReport::new(self.name(), model, cx);
        let max_ratio = match cx.options.value(MAX_RATIO_FLAG) {
            None => DEFAULT_MAX_RATIO,
            Some(v) => v
                .parse::<f64>()
                .ok()
                .filter(|r| r.is_finite() && *r > 0.0)
                .ok_or_else(|| {
                    MoeError::BadRatio(onnx_rewrite_pass::BadOption {
                        flag: MAX_RATIO_FLAG,
                        expected: "a positive number",
                        got: v.to_owned(),
                    })
                })?,
        };
        let want_stack = cx.options.is_set(STACK_FLAG);
        let mut found = find(model)?;

        // Decide everything before editing, so that a refusal writes (and changes) nothing.
        let mut refusals = Vec::new();
        let mut decisions: Vec<Vec<Decision>> = Vec::new();
        let mut rebuilt: Vec<Vec<Vec<usize>>> = Vec::new();
        let opset = model.opset("").unwrap_or(0);
        for f in &mut found {
            let mut ds = Vec::new();
            let mut rs = Vec::new();
            for layer in &mut f.layers {
                let (present, missing) = layer.present_and_missing();
                let ratio = layer.experts as f64 / layer.top_k as f64;
                let mut repaired = Vec::new();
                if !missing.is_empty() {
                    match rebuild_missing(layer, model) {
                        Ok(r) => repaired = r,
                        Err(why) => {
                            refusals.push(MoeError::BakedTrace {
                                layer: layer.name(model),
                                top_k: layer.top_k,
                                experts: layer.experts,
                                present,
                                missing,
                                why: Box::new(why),
                            });
                            rs.push(Vec::new());
                            ds.push(Decision::Refuse);
                            continue;
                        }
                    }
                }
                let decision = if opset < 13 {
                    Decision::Decline(LayerDecline::Opset { opset })
                } else if ratio > max_ratio {
                    let why = LayerDecline::OverBudget {
                        ratio,
                        experts: layer.experts,
                        top_k: layer.top_k,
                        max_ratio,
                    };
                    if !repaired.is_empty() {
                        refusals.push(MoeError::BakedOverBudget {
                            layer: layer.name(model),
                            missing,
                            ratio,
                            max_ratio,
                        });
                    }
                    Decision::Decline(why)
                } else {
                    let programs: Vec<&expert::Program> = layer.programs.iter().flatten().collect();
                    let stackable = programs
                        .windows(2)
                        .all(|w| w[0].same_structure(w[1], model));
                    if want_stack && !stackable {
                        layer.notes.push(format!(
                            "{}: experts differ in structure; not stacked",
                            layer.name(model)
                        ));
                    }
                    Decision::Rewrite {
                        stack: want_stack && stackable,
                    }
                };
                ds.push(decision);
                rs.push(repaired);
            }
            decisions.push(ds);
            rebuilt.push(rs);
        }
        // A baked dispatch no detector read: nothing to rebuild it from, so refused too.
        let layers: Vec<NodeId> = found
            .iter()
            .flat_map(|f| f.layers.iter().map(|l| l.anchor))
            .collect();
        let unread: Vec<guard::Dispatch> = guard::dispatch_regions(model)
            .into_iter()
            .filter(|d| !layers.contains(&d.router))
            .collect();
        refusals.extend(
            guard::baked(model, &unread)
                .into_iter()
                .map(|b| MoeError::BakedUnread {
                    router: model.describe_node(b.router),
                    experts: b.experts,
                    present: b.present,
                    missing: b.missing,
                }),
        );
        if !refusals.is_empty() {
            return Err(refused(&refusals));
        }

        let mut names = Names::of(model);
        let mut rows = Vec::new();
        let mut extra_flops: u64 = 0;
        let mut rewritten = 0usize;
        for (fi, f) in found.iter().enumerate() {
            let graph_label = describe_graph(model, f.graph);
            for r in &f.rejected {
                report.decline_at(
                    graph_label.clone(),
                    model.describe_node(r.node),
                    "moe-dense",
                    r.reason.to_string(),
                );
            }
            if f.per_expert_ifs > 0 {
                report.notes.push(format!(
                    "{graph_label}: {} If node(s) per expert remain (lower-if left them)",
                    f.per_expert_ifs
                ));
            }
            for (li, layer) in f.layers.iter().enumerate() {
                cx.deadline(started).check(self.name())?;
                let name = layer.name(model);
                let stack = match &decisions[fi][li] {
                    Decision::Decline(why) => {
                        report.decline_at(graph_label.clone(), name, "moe-dense", why.to_string());
                        continue;
                    }
                    // Unreached: a refusal returns before anything is edited.
                    Decision::Refuse => continue,
                    Decision::Rewrite { stack } => *stack,
                };
                let programs: Vec<&expert::Program> = layer.programs.iter().flatten().collect();
                let flops: Vec<u64> = programs.iter().map(|p| p.flops_per_token(model)).collect();
                let dense_flops: u64 = flops.iter().sum();
                let sparse_flops =
                    (dense_flops as f64 * layer.top_k as f64 / layer.experts as f64).round() as u64;
                match rewrite_layer(model, f.graph, &mut names, layer, programs, stack) {
                    Ok(()) => {
                        rewritten += 1;
                        extra_flops += dense_flops.saturating_sub(sparse_flops);
                        report.notes.push(format!(
                            "{}; dense form: {dense_flops} expert FLOPs per token, {:.3}x the sparse {sparse_flops}",
                            layer.summary(model),
                            layer.experts as f64 / layer.top_k as f64
                        ));
                        report.notes.extend(layer.notes.iter().cloned());
                        if !rebuilt[fi][li].is_empty() {
                            report.notes.push(format!(
                                "{name}: baked trace repaired: experts {:?} rebuilt from the weight stacks in the graph",
                                rebuilt[fi][li]
                            ));
                        }
                        rows.push(json!({
                            "layer": name,
                            "form": layer.form.describe(),
                            "experts": layer.experts,
                            "top_k": layer.top_k,
                            "hidden": layer.hidden,
                            "intermediate": programs_intermediate(layer, model),
                            "shared_expert": layer.shared.as_ref().map(|s| json!({
                                "intermediate": s.intermediate,
                                "gated": s.gated,
                            })),
                            "rebuilt_experts": rebuilt[fi][li],
                            "stacked": stack,
                            "flops_per_token_sparse": sparse_flops,
                            "flops_per_token_dense": dense_flops,
                            "flops_ratio": layer.experts as f64 / layer.top_k as f64,
                        }));
                    }
                    Err(why) => {
                        report.decline_at(graph_label.clone(), name, "moe-dense", why.to_string())
                    }
                }
            }
        }
        report.details.insert("layers".into(), json!(rows));
        report
            .details
            .insert("layers_rewritten".into(), json!(rewritten));
        report
            .details
            .insert("extra_flops_per_token".into(), json!(extra_flops));
        decline_dispatch_left(model, &mut report);
        Ok(report.finish(model, started))
    }
}

/// Every MoE dispatch still in the model that no decline above names (a spelling no detector
/// reads, a region a detector rejected elsewhere) is declined by its dispatching node: the
/// model stays data-dependent there, and it may be a trace missing experts.
fn decline_dispatch_left(model: &Model, report: &mut PassReport) {
    for region in guard::dispatch_regions(model) {
        let named = [region.router, region.sink].map(|n| model.describe_node(n));
        if report.declined.iter().any(|d| named.contains(&d.node)) {
            continue;
        }
        let reason = format!(
            "{}; no MoE layer was proved here (router, every expert, a weighted combine), so it stays data-dependent and may be a trace missing experts",
            region.describe(model)
        );
        report.decline(model, region.sink, "moe-dense", reason);
    }
}

fn programs_intermediate(layer: &Layer, model: &Model) -> Option<i64> {
    layer
        .programs
        .iter()
        .flatten()
        .next()
        .and_then(|p| p.intermediate(model))
}

/// Emits one layer's dense form, points the layer's readers at it and removes what it
/// replaced, in one transaction: on failure the model is left as it was.
fn rewrite_layer(
    model: &mut Model,
    graph: GraphId,
    names: &mut Names,
    layer: &Layer,
    programs: Vec<&expert::Program>,
    stack: bool,
) -> Result<(), RewriteError> {
    let anchor = model.node(layer.anchor);
    let label = match anchor.name() {
        "" => anchor
            .outputs()
            .iter()
            .flatten()
            .next()
            .map_or("layer".to_owned(), |v| model.value(*v).name().to_owned()),
        name => name.to_owned(),
    };
    let prefix = format!("moe_dense/{label}");
    let plan = dense::Plan {
        layer,
        programs,
        stack,
    };
    // Every early return below drops the transaction, which rolls the edit back.
    let mut tx = Transaction::begin(model);
    let out = {
        let mut em = dense::Emitter::new(&mut tx, graph, names, prefix);
        dense::emit(&mut em, &plan)?
    };
    edit::reroute(&mut tx, names, layer.output, out)?;
    edit::sweep(&mut tx, &[layer.output])?;
    let order = tx
        .topological_order(graph)
        .map_err(|n| RewriteError::Cycle {
            node: tx.describe_node(n),
        })?;
    tx.set_node_order(graph, order)?;
    Ok(tx.commit()?)
}
