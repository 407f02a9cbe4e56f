//! The command-line grammar.

use std::path::PathBuf;

use clap::{Args, Parser, Subcommand, ValueEnum};

#[derive(Parser, Debug)]
#[command(
    name = "onnx-rewrite",
    version,
    about = "Graph-rewriting compiler passes for ONNX models"
)]
pub struct Cli {
    #[command(subcommand)]
    pub command: Command,
}

#[derive(Subcommand, Debug)]
pub enum Command {
    /// Apply passes to a model and write the result.
    Apply(ApplyArgs),
    /// Print a model in ONNX text syntax (the form `onnx.printer.to_text` writes).
    Print(PrintArgs),
    /// Summarize a model: opsets, sizes, inputs and outputs, the op histogram.
    Info(InfoArgs),
    /// Predict where ONNX Runtime places each node and which Memcpy nodes it inserts.
    Analyze(AnalyzeArgs),
    /// List the passes, one line each.
    Passes,
}

#[derive(Args, Debug)]
pub struct LoadArgs {
    /// Drop protobuf fields that the onnx 1.23.2 schema does not define (with a warning)
    /// instead of refusing the model.
    #[arg(long)]
    pub allow_unknown_fields: bool,
}

#[derive(Args, Debug)]
pub struct ApplyArgs {
    /// The model to read.
    pub input: PathBuf,
    /// Where to write the result (atomically: a temporary file renamed when complete).
    #[arg(short, long)]
    pub output: PathBuf,
    /// Comma-separated passes to run, in order (`onnx-rewrite passes` lists them).
    #[arg(long)]
    pub passes: String,
    /// Allow the output to replace the input file.
    #[arg(long)]
    pub in_place: bool,
    /// Write what each pass did (nodes, rules, e-graph sizes, time, declines) as JSON.
    #[arg(long, value_name = "FILE")]
    pub report: Option<PathBuf>,
    /// Exit 2 (and write no model) when a pass declined a node.
    #[arg(long)]
    pub strict: bool,
    /// Do not print the per-pass table on stderr.
    #[arg(long, short)]
    pub quiet: bool,
    /// Record every rule decision (applied, or declined and why) in the report.
    #[arg(long)]
    pub trace_rules: bool,
    /// Check the IR's invariants after every pass (a failure names the pass; exit 1, nothing
    /// written). Always on in debug builds.
    #[arg(long)]
    pub check: bool,
    /// Run the original and the rewritten model with tract-onnx on the same random inputs and
    /// compare every output against the tolerance table; exit 2 (nothing written) if over.
    #[arg(long)]
    pub verify: bool,
    /// Bind an input's shape (`input_ids=1,8`) or a symbolic dim (`seq=8`) for --verify;
    /// unbound symbolic dims are 2. Repeatable.
    #[arg(long, value_name = "NAME=DIMS", requires = "verify")]
    pub verify_shape: Vec<String>,
    /// Write a before/after page: per-pass tables, the op histogram before and after, and each
    /// rewritten region drawn as SVG.
    #[arg(long, value_name = "FILE")]
    pub report_html: Option<PathBuf>,
    /// Write the rewritten regions as a Graphviz graph (before and after, one cluster each).
    #[arg(long, value_name = "FILE")]
    pub dot: Option<PathBuf>,
    #[command(flatten)]
    pub limits: LimitArgs,
    /// Where tensor data goes: as it was in the input (external stays external; everything goes
    /// external past protobuf's 2 GiB limit), always external, or never.
    #[arg(long, value_enum, default_value_t = ExternalData::AsLoaded)]
    pub external_data: ExternalData,
    #[command(flatten)]
    pub load: LoadArgs,
}

/// E-graph limits. Node and iteration limits decide the result; the time limit is a safety
/// net whose hitting is an error (so output never depends on the machine's speed).
#[derive(Args, Debug)]
pub struct LimitArgs {
    /// E-nodes an e-graph may grow to (default: 4 x the graph + 10,000).
    #[arg(long, value_name = "N")]
    pub egraph_node_limit: Option<usize>,
    /// Rule-application rounds per graph.
    #[arg(long, value_name = "N", default_value_t = 30)]
    pub egraph_iter_limit: usize,
    /// Seconds an e-graph may saturate, and a pass outside the e-graph may run, before the pass
    /// fails.
    #[arg(long, value_name = "SECONDS", default_value_t = 600.0)]
    pub egraph_time_limit: f64,
}

#[derive(Clone, Copy, Debug, PartialEq, Eq, ValueEnum)]
pub enum ExternalData {
    AsLoaded,
    Always,
    Never,
}

#[derive(Args, Debug)]
pub struct PrintArgs {
    pub input: PathBuf,
    /// Print initializers with more than N elements as `dtype[shape] name` plus a content hash.
    #[arg(long, value_name = "N")]
    pub abbreviate_initializers: Option<usize>,
    #[command(flatten)]
    pub load: LoadArgs,
}

#[derive(Args, Debug)]
pub struct InfoArgs {
    pub input: PathBuf,
    /// Machine-readable output.
    #[arg(long)]
    pub json: bool,
    #[command(flatten)]
    pub load: LoadArgs,
}

#[derive(Args, Debug)]
pub struct AnalyzeArgs {
    pub input: PathBuf,
    /// The execution provider to predict for.
    #[arg(long, value_enum)]
    pub ep: AnalyzeEp,
    /// The onnxruntime version whose kernel tables and rules to apply (default: the pinned one).
    #[arg(long, value_name = "X")]
    pub ort_version: Option<String>,
    /// Machine-readable output.
    #[arg(long)]
    pub json: bool,
    #[command(flatten)]
    pub load: LoadArgs,
}

#[derive(Clone, Copy, Debug, PartialEq, Eq, ValueEnum)]
pub enum AnalyzeEp {
    Cuda,
}
