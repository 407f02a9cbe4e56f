//! The pass framework: the unit the pipeline runs and the CLI names, what it is given and
//! what it reports. No rewriting engine here: a pass may rewrite in the e-graph (crate
//! `onnx-rewrite-egraph`) or edit the IR directly (`onnx_rewrite_ir::edit`).
//!
//! - [`Pass`]: one transformation with a name, the passes it needs to have run first, and a
//!   `run` that rewrites the model.
//! - [`PassContext`]: limits, tracing, options, checks; the same for every pass.
//! - [`PassReport`]: what a pass did — node counts, rules applied, e-graph sizes, time — and
//!   the one channel for what it declined and why ([`PassReport::decline`]) and for its trace
//!   ([`PassReport::trace`]), so `--trace-rules` reads the same for every pass.
//! - [`Pipeline`]: an ordered list of passes parsed from names against a registry, run with the
//!   IR's invariants checked after each pass.

mod pipeline;

use std::collections::BTreeMap;
use std::time::{Duration, Instant};

use onnx_rewrite_ir::edit::fit::FitOutcome;
use onnx_rewrite_ir::{GraphId, GraphOwner, Model, NodeId};

pub use pipeline::{Pipeline, PipelineError, PipelineReport, Registry};

/// Limits of the rewriting engine, for every pass: the e-graph's sizes, and a time limit that
/// fails a pass rather than let it give a different answer.
#[derive(Debug, Clone, PartialEq)]
pub struct RunLimits {
    /// E-nodes an e-graph may grow to; `None`: four times the lowered graph plus 10,000.
    pub node_limit: Option<usize>,
    /// Rule-application rounds.
    pub iter_limit: usize,
    /// Safety net: hitting it fails the pass.
    pub time_limit: Duration,
}

impl Default for RunLimits {
    fn default() -> Self {
        Self {
            node_limit: None,
            iter_limit: 30,
            time_limit: Duration::from_secs(600),
        }
    }
}

/// A node a pass (or one of its rules) left because rewriting it was not safe.
#[derive(Debug, Clone, PartialEq, Eq, serde::Serialize)]
pub struct Declined {
    /// The graph (`main graph`, `function 'f'`, `subgraph of node ...`).
    pub graph: String,
    /// The node, as `node 3 'name' (Op)`.
    pub node: String,
    pub rule: String,
    pub reason: String,
}

/// Sizes of the e-graphs of a run (zero for a pass that edits the IR directly).
#[derive(Debug, Clone, Default, PartialEq, serde::Serialize)]
pub struct EgraphStats {
    /// Graphs lowered.
    pub graphs: usize,
    /// E-nodes and e-classes at the end of each run, summed over graphs.
    pub nodes: usize,
    pub classes: usize,
    /// The largest single e-graph, in e-nodes.
    pub max_nodes: usize,
    /// Rule-application rounds, summed over graphs.
    pub iterations: usize,
    /// Why each run stopped, with how many runs stopped so.
    pub stop_reasons: BTreeMap<String, usize>,
    /// Milliseconds spent lowering, saturating, extracting and writing back, summed over graphs.
    pub lower_ms: f64,
    pub saturate_ms: f64,
    pub extract_ms: f64,
    pub emit_ms: f64,
}

/// A model transformation.
pub trait Pass: Send + Sync {
    /// The name the CLI and reports use (`gemm-to-matmul`).
    fn name(&self) -> &'static str;
    /// One line for `onnx-rewrite passes`.
    fn summary(&self) -> &'static str;
    /// Whether `all` runs this pass (a pass that transforms nothing a user asks for, such as
    /// the e-graph round trip, says no).
    fn in_all(&self) -> bool {
        true
    }
    /// Passes that must run before this one (the pipeline inserts them when missing).
    fn needs(&self) -> &'static [&'static str] {
        &[]
    }
    /// The pass's options. Each becomes the CLI flag `--<flag>` (named after the pass, such as
    /// `fp16-keep-io-types`); their values reach [`Pass::run`] in [`PassContext::options`].
    fn options(&self) -> &'static [PassOption] {
        &[]
    }
    /// What the pass would find in `model`, for `onnx-rewrite info` (`None`: nothing to do).
    /// The model comes back as it was: a survey that needs to try an edit does it in an
    /// [`onnx_rewrite_ir::edit::Transaction`] and rolls it back.
    fn survey(&self, _model: &mut Model) -> Option<String> {
        None
    }
    fn run(&self, model: &mut Model, cx: &PassContext) -> Result<PassReport, PassError>;
}

/// What every pass gets from the pipeline.
#[derive(Debug, Clone, Default)]
pub struct PassContext {
    pub limits: RunLimits,
    /// Record every rule decision in the report.
    pub trace: bool,
    /// Values of the passes' options, by flag name.
    pub options: PassOptions,
    /// A pass may leave large payloads it derives pending
    /// ([`onnx_rewrite_ir::PendingPayload`]): computed as [`onnx_rewrite_ir::save::save_file`]
    /// writes them, so they never sit in memory whole. The caller then saves to a file or
    /// calls [`Model::materialize_pending`] before reading them. Off by default.
    pub pending_payloads: bool,
    /// Check the IR's invariants ([`Model::check`]) after every pass, so a pass that breaks one
    /// is named at once instead of surfacing as a wrong model later. Always on in debug builds
    /// (every test runs with it); `apply --check` turns it on for users.
    pub check_invariants: bool,
}

/// One option of a pass.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub struct PassOption {
    /// The flag without dashes, prefixed with the pass name: `fp16-block-op`.
    pub flag: &'static str,
    pub help: &'static str,
    /// The value's name in help (`OP`); `None` for a switch that takes no value.
    pub value: Option<&'static str>,
    /// Whether the flag may be given several times (values accumulate, in order).
    pub repeated: bool,
}

/// Option values given on the command line (or by a library caller), by flag name.
#[derive(Debug, Clone, Default, PartialEq, Eq)]
pub struct PassOptions(BTreeMap<String, Vec<String>>);

impl PassOptions {
    /// Sets a switch (no value) or appends a value.
    pub fn set(&mut self, flag: &str, value: Option<String>) {
        let values = self.0.entry(flag.to_owned()).or_default();
        values.extend(value);
    }

    /// Whether a switch (or any value of the flag) was given.
    pub fn is_set(&self, flag: &str) -> bool {
        self.0.contains_key(flag)
    }

    /// The last value given for a flag.
    pub fn value(&self, flag: &str) -> Option<&str> {
        self.0.get(flag).and_then(|v| v.last()).map(String::as_str)
    }

    /// Every value given for a repeated flag, in order.
    pub fn values(&self, flag: &str) -> &[String] {
        self.0.get(flag).map_or(&[], Vec::as_slice)
    }
}

/// A pass could not produce output.
#[derive(Debug, thiserror::Error)]
pub enum PassError {
    /// The pass must not emit this model (a baked MoE trace): exit 2, nothing written.
    #[error("{0}")]
    Refused(String),
    /// The rewriting engine could not give an answer it trusts (a limit cut in, a conflict).
    #[error(transparent)]
    Engine(Box<dyn std::error::Error + Send + Sync>),
    /// The model is not something the pass can take (exit 1).
    #[error(transparent)]
    Input(Box<dyn std::error::Error + Send + Sync>),
    /// An option's value the pass cannot take (exit 1).
    #[error(transparent)]
    Option(#[from] BadOption),
    /// The pass's time limit ([`RunLimits::time_limit`]) cut in: an error, never a partial answer.
    #[error("{pass}: the time limit of {seconds} s cut in; raise it with --egraph-time-limit")]
    TimeLimit { pass: String, seconds: f64 },
    /// The pass left the IR inconsistent: a bug in the pass, found by the check after it.
    #[error("pass '{pass}' left the model inconsistent (a bug in onnx-rewrite): {error}")]
    Invariant {
        pass: String,
        error: onnx_rewrite_ir::InvariantError,
    },
}

/// A pass option's value the pass cannot take.
#[derive(Debug, Clone, PartialEq, Eq, thiserror::Error)]
#[error("--{flag}: expected {expected}, got '{got}'")]
pub struct BadOption {
    /// The flag without dashes (`fp16-type`).
    pub flag: &'static str,
    /// What it takes, in words (`float16 or bfloat16`).
    pub expected: &'static str,
    pub got: String,
}

impl PassError {
    /// The model is not something the pass can take, for the reason `error` gives.
    pub fn input(error: impl Into<Box<dyn std::error::Error + Send + Sync>>) -> Self {
        Self::Input(error.into())
    }
}

impl PassContext {
    /// When a pass that started at `started` must stop: its time limit.
    pub fn deadline(&self, started: Instant) -> Deadline {
        Deadline {
            started,
            limit: self.limits.time_limit,
        }
    }
}

/// A pass's time limit, checked between units of its work (a layer, an `If`, a graph).
#[derive(Debug, Clone, Copy)]
pub struct Deadline {
    started: Instant,
    limit: Duration,
}

impl Deadline {
    /// `Err` once the limit has passed: the pass stops with no output rather than a partial one.
    pub fn check(&self, pass: &str) -> Result<(), PassError> {
        if self.started.elapsed() > self.limit {
            return Err(PassError::TimeLimit {
                pass: pass.to_owned(),
                seconds: self.limit.as_secs_f64(),
            });
        }
        Ok(())
    }
}

/// What a pass did.
#[derive(Debug, Clone, Default, serde::Serialize)]
pub struct PassReport {
    pub pass: String,
    /// Nodes in every graph of the model, before and after.
    pub nodes_before: usize,
    pub nodes_after: usize,
    /// Times each rule changed the e-graph.
    pub rules: BTreeMap<String, usize>,
    pub egraph: EgraphStats,
    pub time_ms: f64,
    /// Nodes the pass left because rewriting them was not safe, with the reason.
    pub declined: Vec<Declined>,
    pub notes: Vec<String>,
    /// Pass-specific figures (bytes added, FLOPs, ...).
    pub details: BTreeMap<String, serde_json::Value>,
    /// Every rule decision, when the context asked for a trace.
    #[serde(skip_serializing_if = "Vec::is_empty")]
    pub trace: Vec<String>,
    #[serde(skip)]
    tracing: bool,
}

impl PassReport {
    /// An empty report for `pass`, with the model's node count before it runs and whether the
    /// context asked for a trace.
    pub fn new(pass: &str, model: &Model, cx: &PassContext) -> Self {
        Self {
            pass: pass.to_owned(),
            nodes_before: count_nodes(model),
            tracing: cx.trace,
            ..Self::default()
        }
    }

    /// Closes the report: the node count after, and the time since `started`.
    pub fn finish(mut self, model: &Model, started: Instant) -> Self {
        self.nodes_after = count_nodes(model);
        self.time_ms = started.elapsed().as_secs_f64() * 1000.0;
        self
    }

    /// Whether the context asked for a trace.
    pub fn tracing(&self) -> bool {
        self.tracing
    }

    /// Records that `rule` left `node` because of `reason`: a decline in the report, and a line
    /// of the trace when tracing.
    pub fn decline(&mut self, model: &Model, node: NodeId, rule: &str, reason: impl Into<String>) {
        let graph = describe_graph(model, model.node(node).graph());
        self.decline_at(graph, model.describe_node(node), rule, reason);
    }

    /// [`PassReport::decline`] for a place that is not one node (a region, a layer).
    pub fn decline_at(
        &mut self,
        graph: String,
        node: String,
        rule: &str,
        reason: impl Into<String>,
    ) {
        let declined = Declined {
            graph,
            node,
            rule: rule.to_owned(),
            reason: reason.into(),
        };
        if self.tracing {
            self.trace.push(format!(
                "{}: {} declined on {}: {}",
                declined.graph, declined.rule, declined.node, declined.reason
            ));
        }
        self.declined.push(declined);
    }

    /// A line of the trace, built only when tracing.
    pub fn trace(&mut self, line: impl FnOnce() -> String) {
        if self.tracing {
            self.trace.push(line());
        }
    }

    /// Puts a fit's outcome in the report: each fitted reader as a note, each unfit one as a
    /// decline of `rule`.
    pub fn record_fit(&mut self, model: &Model, outcome: FitOutcome, rule: &str) {
        if !outcome.fitted.is_empty() {
            let readers: Vec<String> = outcome
                .fitted
                .iter()
                .map(|f| {
                    format!(
                        "{} input {} ('{}', reshaped to {}-D)",
                        model.describe_node(f.node),
                        f.input,
                        f.value,
                        f.rank
                    )
                })
                .collect();
            self.notes.push(format!(
                "{} reader(s) that need a scalar or a 1-D tensor read a value of another rank the rewrite exposed: {}",
                readers.len(),
                readers.join(", ")
            ));
        }
        for unfit in outcome.unfit {
            self.decline(model, unfit.node, rule, unfit.reason);
        }
    }
}

/// A name for a graph in messages.
pub fn describe_graph(model: &Model, graph: GraphId) -> String {
    match model.graph(graph).owner() {
        GraphOwner::Model => "main graph".to_owned(),
        GraphOwner::Function { index } => {
            format!(
                "function '{}'",
                model
                    .functions
                    .get(index as usize)
                    .map_or("?", |f| f.proto.name())
            )
        }
        GraphOwner::Node { node, attribute } => {
            let attr = model
                .node(node)
                .attributes
                .get(attribute as usize)
                .map_or("?", |a| a.name());
            format!(
                "subgraph '{attr}' of {} in the {}",
                model.describe_node(node),
                describe_graph(model, model.node(node).graph())
            )
        }
    }
}

/// Nodes in every live graph of the model.
pub fn count_nodes(model: &Model) -> usize {
    model
        .graphs_innermost_first()
        .iter()
        .map(|g| model.graph(*g).nodes().len())
        .sum()
}

/// Live nodes of ONNX-domain op `op_type` in every graph of the model, subgraphs included.
pub fn count_ops(model: &Model, op_type: &str) -> usize {
    model
        .graphs_innermost_first()
        .iter()
        .flat_map(|g| model.graph(*g).nodes())
        .filter(|n| model.node(**n).op_type() == op_type && model.node(**n).domain().is_empty())
        .count()
}
