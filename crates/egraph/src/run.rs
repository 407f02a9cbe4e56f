//! The driver of an e-graph pass: for every graph of the model (innermost first, so that an
//! outer graph sees its subgraphs' final captures), lower it, run the rules under limits,
//! prune what mandatory rules replaced, extract and write back.
//!
//! Output must not depend on the machine's speed: the node and iteration limits decide where
//! saturation stops; the time limit is only a safety net, and a run that hits it is an error,
//! not a different answer.

use rustc_hash::FxHashSet as HashSet;
use std::collections::BTreeMap;
use std::sync::Arc;

use egg::{BackoffScheduler, Id, Runner, StopReason};
use onnx_rewrite_ir::edit::Names;
use onnx_rewrite_ir::{GraphId, Model, NodeId, ValueDef, ValueId};

use crate::emit::{self, EmitStats};
use crate::extract::{self, CostModel};
use crate::facts::Limits;
use crate::language::Onnx;
use crate::lower::{self, LowerOptions};
use crate::pattern::PatternError;
use crate::rule::{self, Compiled, Rule, TraceEvent, Traced};
use onnx_rewrite_pass::{Declined, EgraphStats, PassError, PassReport, RunLimits, describe_graph};

/// How to run a set of rules.
pub struct RewriteOptions<'a> {
    pub limits: RunLimits,
    pub cost: &'a dyn CostModel,
    pub fold_constants: bool,
    pub trace: bool,
    /// Leave graphs alone that hold no anchor of any rule (so a pass changes only what it is
    /// about); `false` rewrites every graph (the `egraph` round trip).
    pub only_anchored_graphs: bool,
}

/// What a run did.
#[derive(Debug, Clone, Default)]
pub struct RewriteSummary {
    /// Times each rule changed the e-graph.
    pub rules: BTreeMap<String, usize>,
    pub egraph: EgraphStats,
    pub emitted: EmitStats,
    pub declined: Vec<Declined>,
    pub notes: Vec<String>,
    pub trace: Vec<String>,
}

impl RewriteSummary {
    /// Puts the run's figures in a pass's report: rules applied, e-graph sizes, declines,
    /// notes and trace.
    pub fn record(self, report: &mut PassReport) {
        for (rule, count) in self.rules {
            *report.rules.entry(rule).or_default() += count;
        }
        report.egraph = self.egraph;
        report.declined.extend(self.declined);
        report.notes.extend(self.notes);
        report.trace.extend(self.trace);
    }
}

impl From<RunError> for PassError {
    fn from(error: RunError) -> Self {
        PassError::Engine(Box::new(error))
    }
}

/// A run that must not produce output.
#[derive(Debug, thiserror::Error)]
pub enum RunError {
    #[error("{graph}: {what}")]
    Conflict { graph: String, what: String },
    #[error(
        "{graph}: the e-graph time limit of {seconds} s cut in; raise it or lower the node and iteration limits"
    )]
    TimeLimit { graph: String, seconds: f64 },
    #[error("{graph}: {source}")]
    Extract {
        graph: String,
        #[source]
        source: extract::ExtractError,
    },
    #[error("{graph}: {source}")]
    Emit {
        graph: String,
        #[source]
        source: emit::EmitError,
    },
    #[error("{graph}: the nodes form a cycle through {node}")]
    Cycle { graph: String, node: String },
    /// A rule's pattern does not parse: a bug in the rule.
    #[error("rule {rule}: {source}")]
    Pattern {
        rule: &'static str,
        #[source]
        source: PatternError,
    },
}

/// Runs `rules` over every graph of the model.
pub fn rewrite_model(
    model: &mut Model,
    rules: &[Arc<dyn Rule>],
    options: &RewriteOptions<'_>,
) -> Result<RewriteSummary, RunError> {
    let rules =
        rule::compile(rules).map_err(|(rule, source)| RunError::Pattern { rule, source })?;
    let rules = rules.as_slice();
    let mut summary = RewriteSummary::default();
    let mut names = Names::of(model);
    let read_before: Vec<ValueId> = constants(model)
        .filter(|v| !model.value(*v).uses().is_empty())
        .collect();
    for graph in model.graphs_innermost_first() {
        if options.only_anchored_graphs && !has_anchor(model, graph, rules) {
            continue;
        }
        rewrite_graph(model, graph, rules, options, &mut names, &mut summary)?;
    }
    // Constants the rewrite left unread go (a replaced weight); those unread before stay.
    let unread: Vec<ValueId> = read_before
        .into_iter()
        .filter(|v| model.value(*v).uses().is_empty())
        .collect();
    for value in &unread {
        summary.emitted.bytes_removed += model
            .value(*value)
            .initializer()
            .map_or(0, onnx_rewrite_ir::tensor::payload_len);
    }
    summary.emitted.initializers_removed += unread.len();
    model
        .remove_initializers(&unread)
        .map_err(|source| RunError::Emit {
            graph: "the model".to_owned(),
            source: source.into(),
        })?;
    Ok(summary)
}

/// The initializers (not input defaults) of every live graph.
fn constants(model: &Model) -> impl Iterator<Item = ValueId> + '_ {
    model
        .graphs_innermost_first()
        .into_iter()
        .flat_map(move |g| model.graph(g).initializers().to_vec())
        .filter(move |v| model.value(*v).def() == ValueDef::Initializer)
}

fn rewrite_graph(
    model: &mut Model,
    graph: GraphId,
    rules: &[Arc<Compiled>],
    options: &RewriteOptions<'_>,
    names: &mut Names,
    summary: &mut RewriteSummary,
) -> Result<(), RunError> {
    let label = describe_graph(model, graph);
    let clock = std::time::Instant::now();
    let lower_options = LowerOptions {
        limits: Limits::default(),
        fold_constants: options.fold_constants,
    };
    let mut lowered =
        lower::lower(model, graph, &lower_options).map_err(|node| RunError::Cycle {
            graph: label.clone(),
            node: model.describe_node(node),
        })?;
    summary
        .notes
        .extend(lowered.notes.iter().map(|n| format!("{label}: {n}")));
    if options.trace {
        lowered.egraph.analysis.trace = Some(Vec::new());
    }

    let lower_ms = clock.elapsed().as_secs_f64() * 1e3;
    let clock = std::time::Instant::now();
    let egraph = std::mem::take(&mut lowered.egraph);
    let node_limit = options
        .limits
        .node_limit
        .unwrap_or_else(|| 4 * egraph.total_size() + 10_000);
    let rewrites: Vec<_> = rules.iter().map(|r| rule::to_rewrite(r.clone())).collect();
    let mut runner = Runner::default()
        .with_egraph(egraph)
        .with_node_limit(node_limit)
        .with_iter_limit(options.limits.iter_limit)
        .with_time_limit(options.limits.time_limit)
        // Rules here are anchored on one operator and rewrite each anchor once; banning a
        // rule because a big graph has many anchors would only spread the work over more
        // iterations. The backoff still reins in a rule that explodes past the graph's size.
        .with_scheduler(
            BackoffScheduler::default()
                .with_initial_match_limit(2 * node_limit.min(1 << 24) / 4 + 1000),
        );
    if !rewrites.is_empty() {
        runner = runner.run(&rewrites);
    }
    let stop = match &runner.stop_reason {
        None | Some(StopReason::Saturated) => "saturated".to_owned(),
        Some(StopReason::IterationLimit(n)) => format!("iteration limit ({n})"),
        Some(StopReason::NodeLimit(n)) => format!("node limit ({n})"),
        Some(StopReason::TimeLimit(seconds)) => {
            return Err(RunError::TimeLimit {
                graph: label,
                seconds: *seconds,
            });
        }
        Some(StopReason::Other(why)) => why.clone(),
    };
    for iteration in &runner.iterations {
        for (rule, count) in &iteration.applied {
            *summary.rules.entry(rule.to_string()).or_default() += count;
        }
    }
    let mut egraph = runner.egraph;
    egraph.rebuild();
    if let Some(conflict) = egraph.analysis.conflicts.first() {
        return Err(RunError::Conflict {
            graph: label,
            what: conflict.clone(),
        });
    }
    let saturate_ms = clock.elapsed().as_secs_f64() * 1e3;
    let stats = &mut summary.egraph;
    stats.lower_ms += lower_ms;
    stats.saturate_ms += saturate_ms;
    stats.graphs += 1;
    stats.nodes += egraph.total_size();
    stats.classes += egraph.number_of_classes();
    stats.max_nodes = stats.max_nodes.max(egraph.total_size());
    stats.iterations += runner.iterations.len();
    *stats.stop_reasons.entry(stop).or_default() += 1;

    // Mandatory rules: their anchor goes wherever they produced an alternative.
    let mandatory: Vec<&Arc<Compiled>> = rules.iter().filter(|r| r.rule.mandatory()).collect();
    let mut pruned: HashSet<(Id, Onnx)> = HashSet::default();
    for class in egraph.classes() {
        for rule in &mandatory {
            let (anchors, others): (Vec<&Onnx>, Vec<&Onnx>) = class
                .nodes
                .iter()
                .partition(|n| rule.pattern.is_anchor(&egraph, n));
            if !anchors.is_empty() && !others.is_empty() {
                pruned.extend(anchors.into_iter().map(|n| (class.id, n.clone())));
            }
        }
    }
    let is_pruned = |class: Id, node: &Onnx| pruned.contains(&(class, node.clone()));
    let clock = std::time::Instant::now();
    lowered.egraph = egraph;
    let extraction = extract::extract(&lowered.egraph, lowered.root, options.cost, &is_pruned)
        .map_err(|source| RunError::Extract {
            graph: label.clone(),
            source,
        })?;
    summary.egraph.extract_ms += clock.elapsed().as_secs_f64() * 1e3;
    let clock = std::time::Instant::now();
    let (emitted, node_of) =
        emit::emit(model, &lowered, &extraction, names).map_err(|source| RunError::Emit {
            graph: label.clone(),
            source,
        })?;
    summary.egraph.emit_ms += clock.elapsed().as_secs_f64() * 1e3;
    accumulate(&mut summary.emitted, &emitted);

    // Report the declines whose node stayed.
    let mut reported: HashSet<(&'static str, Id)> = HashSet::default();
    for record in &lowered.egraph.analysis.declines {
        let class = lowered.egraph.find(record.class);
        let Some(rule) = rules.iter().find(|r| r.rule.name() == record.rule) else {
            continue;
        };
        let stayed = extraction
            .node(class)
            .is_some_and(|n| rule.pattern.is_anchor(&lowered.egraph, n));
        if !stayed || !reported.insert((record.rule, class)) {
            continue;
        }
        let node = node_of.get(&class).map_or_else(
            || "an unreachable node".to_owned(),
            |n: &NodeId| model.describe_node(*n),
        );
        summary.declined.push(Declined {
            graph: label.clone(),
            node,
            rule: record.rule.to_owned(),
            reason: record.reason.clone(),
        });
    }
    if let Some(trace) = &lowered.egraph.analysis.trace {
        summary
            .trace
            .extend(trace.iter().map(|e: &TraceEvent| match &e.outcome {
                Traced::Applied => format!(
                    "{label}: {} applied to {} (e-class {})",
                    e.rule, e.op, e.class
                ),
                Traced::DoesNotApply(why) => format!(
                    "{label}: {} does not apply to {} (e-class {}): {why}",
                    e.rule, e.op, e.class
                ),
                Traced::Declined(reason) => format!(
                    "{label}: {} declined on {} (e-class {}): {reason}",
                    e.rule, e.op, e.class
                ),
            }));
    }
    Ok(())
}

fn accumulate(total: &mut EmitStats, one: &EmitStats) {
    total.nodes_before += one.nodes_before;
    total.nodes_after += one.nodes_after;
    total.nodes_kept += one.nodes_kept;
    total.nodes_added += one.nodes_added;
    total.initializers_added += one.initializers_added;
    total.initializers_removed += one.initializers_removed;
    total.bytes_added += one.bytes_added;
    total.bytes_removed += one.bytes_removed;
}

fn has_anchor(model: &Model, graph: GraphId, rules: &[Arc<Compiled>]) -> bool {
    let anchors: HashSet<(&str, &str)> = rules
        .iter()
        .flat_map(|r| r.pattern.anchors().iter().copied())
        .collect();
    model.graph(graph).nodes().iter().any(|n| {
        let node = model.node(*n);
        anchors.contains(&(
            crate::language::normalize_domain(node.domain()),
            node.op_type(),
        ))
    })
}
