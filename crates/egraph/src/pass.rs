//! Passes: the unit the pipeline runs and the CLI names.
//!
//! A pass is one transformation with a name, the passes it needs to have run first, and a
//! `run` that rewrites the model and reports what it did: node counts, rules applied, e-graph
//! sizes, time, and every node it declined to rewrite with the reason.

use std::collections::BTreeMap;
use std::time::Instant;

use onnx_rewrite_ir::Model;

use crate::run::{Declined, EgraphStats, RewriteSummary, RunError, RunLimits};

/// A model transformation.
pub trait Pass: Send + Sync {
    /// The name the CLI and reports use (`gemm-to-matmul`).
    fn name(&self) -> &'static str;
    /// One line for `onnx-rewrite passes`.
    fn summary(&self) -> &'static str;
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
    #[error(transparent)]
    Run(#[from] RunError),
    /// The model is not something the pass can take (exit 1).
    #[error("{0}")]
    Input(String),
    /// The pass left the IR inconsistent: a bug in the pass, found by the check after it.
    #[error("pass '{pass}' left the model inconsistent (a bug in onnx-rewrite): {error}")]
    Invariant {
        pass: String,
        error: onnx_rewrite_ir::InvariantError,
    },
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
}

impl PassReport {
    /// A report for `pass`, timed from `started`, from an e-graph run's summary.
    pub fn from_run(
        pass: &str,
        model_before: usize,
        model: &Model,
        summary: RewriteSummary,
        started: Instant,
    ) -> Self {
        Self {
            pass: pass.to_owned(),
            nodes_before: model_before,
            nodes_after: count_nodes(model),
            rules: summary.rules,
            egraph: summary.egraph,
            time_ms: started.elapsed().as_secs_f64() * 1000.0,
            declined: summary.declined,
            notes: summary.notes,
            details: BTreeMap::new(),
            trace: summary.trace,
        }
    }
}

/// Nodes in every live graph of the model.
pub fn count_nodes(model: &Model) -> usize {
    crate::run::graphs_innermost_first(model)
        .iter()
        .map(|g| model.graph(*g).nodes().len())
        .sum()
}

/// Live nodes of ONNX-domain op `op_type` in every graph of the model, subgraphs included.
pub fn count_ops(model: &Model, op_type: &str) -> usize {
    crate::run::graphs_innermost_first(model)
        .iter()
        .flat_map(|g| model.graph(*g).nodes())
        .filter(|n| model.node(**n).op_type() == op_type && model.node(**n).domain().is_empty())
        .count()
}
