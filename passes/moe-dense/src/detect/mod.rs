//! Finding MoE layers, whatever the exporter wrote.
//!
//! A layer is recognised by what it computes, anchored where every form agrees:
//! - a router `TopK` (largest k of float scores over the experts) whose indices select experts
//!   and whose values (renormalised, scaled, ... — any computation) weight them;
//! - per expert, a function of one token's features ([`crate::expert::Program`]);
//! - a combine that adds, per token, each chosen expert's output times its weight.
//!
//! The detectors differ only in how the combine is laid out:
//! - [`scatter`]: an accumulator chain, one step per expert (`NonZero` of `Equal(ids, e)`,
//!   rows gathered, expert, weight gathered, `ScatterND(add)` or `ScatterElements` + `Add`),
//!   including the `Where` steps `lower-if` leaves of one `If` per expert, and baked traces
//!   that kept fewer steps than the router has experts;
//! - [`pairs`]: one row per (token, slot) pair, summed over the k slots: expert weights
//!   gathered per row by the routing (transformers' `batched_mm`) or rows sorted by expert
//!   into per-expert segments (`grouped_mm`);
//! - [`contrib`]: onnxruntime's `com.microsoft.MoE`.
//!
//! What is trusted rather than re-derived: the index arithmetic between a `NonZero`, a sort
//! or a `CumSum` and the gathers and scatters it drives (it is the exporter's own translation of
//! `index_add_`, `repeat_interleave` and `grouped_mm`); the detectors check that those indices
//! come from the router and that the pieces fit (one router, one token matrix, one weight
//! tensor, each expert once), and the rewrite is checked by execution in the tests.

pub(crate) mod contrib;
pub(crate) mod pairs;
pub(crate) mod routing;
pub(crate) mod scatter;
pub(crate) mod shared;

use onnx_rewrite_facts::DataType;
use onnx_rewrite_ir::{Model, NodeId, ValueId};

use crate::expert::Program;

/// The most experts a router may choose among. Every per-expert table the pass builds is
/// sized by the expert count read from the model, so an absurd count (a corrupt or hostile
/// shape) is not taken for a router rather than allocated; real models have at most a few
/// hundred (DeepSeek-V3: 256).
pub(crate) const MAX_EXPERTS: i64 = 4096;

/// How a layer was written.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub(crate) enum Form {
    /// Per-expert `NonZero` → gather → expert → `ScatterND(reduction="add")`.
    ScatterNd,
    /// Per-expert `NonZero` → gather → expert → `ScatterElements` + `Add` (index_add_).
    ScatterElements,
    /// One `If` per expert, lowered by `lower-if` to `Where` steps.
    LoweredIf,
    /// Expert weights gathered per (token, slot) by the top-k ids (`batched_mm`).
    Batched,
    /// Tokens sorted by expert, one segment per expert (`grouped_mm`).
    Grouped,
    /// `com.microsoft.MoE`.
    Contrib,
}

impl Form {
    pub(crate) fn describe(self) -> &'static str {
        match self {
            Form::ScatterNd => "per-expert loop (NonZero, GatherND, ScatterND add)",
            Form::ScatterElements => "per-expert loop (NonZero, Gather, ScatterElements + Add)",
            Form::LoweredIf => "If per expert, lowered to Where (NonZero, ScatterND add)",
            Form::Batched => "batched experts (weights gathered by top-k ids)",
            Form::Grouped => "grouped experts (tokens sorted by expert, per-expert segments)",
            Form::Contrib => "com.microsoft.MoE",
        }
    }
}

/// How the dense form gets each token's top-k experts and weights.
#[derive(Clone, Debug)]
pub(crate) enum Routing {
    /// The graph's own `TopK` indices and weights (tie-breaking stays the graph's).
    Graph { indices: ValueId, weights: ValueId },
    /// Softmax over the logits, top-k, renormalised or not (`com.microsoft.MoE`'s routing).
    Logits { logits: ValueId, normalize: bool },
}

/// One MoE layer found in a graph.
#[derive(Clone, Debug)]
pub(crate) struct Layer {
    /// The node that names the layer in messages (the router `TopK` or the MoE node).
    pub anchor: NodeId,
    pub form: Form,
    pub experts: i64,
    pub top_k: i64,
    /// The `[tokens, hidden]` matrix (or, for `com.microsoft.MoE`, its input of rank 2 or 3).
    pub tokens: ValueId,
    pub hidden: Option<i64>,
    /// The tokens come as `[batch, seq, hidden]`: flattened for the experts, the output
    /// reshaped back.
    pub flatten_tokens: bool,
    /// The value the dense form replaces.
    pub output: ValueId,
    /// What the combine adds onto, when it is not zeros.
    pub start: Option<ValueId>,
    pub routing: Routing,
    /// Element type of the expert outputs and of the routing weights.
    pub dtype: DataType,
    pub weights_dtype: DataType,
    /// Per expert, its program; `None` where the graph does not compute that expert.
    pub programs: Vec<Option<Program>>,
    pub notes: Vec<String>,
    /// A shared expert added to the output (left as it is by the rewrite).
    pub shared: Option<shared::SharedExpert>,
}

impl Layer {
    pub(crate) fn name(&self, model: &Model) -> String {
        model.describe_node(self.anchor)
    }

    /// The experts the graph computes, and those it does not.
    pub(crate) fn present_and_missing(&self) -> (Vec<usize>, Vec<usize>) {
        let present = (0..self.programs.len())
            .filter(|e| self.programs[*e].is_some())
            .collect();
        let missing = (0..self.programs.len())
            .filter(|e| self.programs[*e].is_none())
            .collect();
        (present, missing)
    }

    /// One line for `info` and the report.
    pub(crate) fn summary(&self, model: &Model) -> String {
        let intermediate = self
            .programs
            .iter()
            .flatten()
            .next()
            .and_then(|p| p.intermediate(model));
        let (present, missing) = self.present_and_missing();
        let baked = if missing.is_empty() {
            String::new()
        } else {
            format!("; BAKED: computes experts {present:?} only, missing {missing:?}")
        };
        let shared = match &self.shared {
            Some(s) => format!(
                "; a shared expert (intermediate {}{})",
                s.intermediate.map_or("?".into(), |i| i.to_string()),
                if s.gated { ", sigmoid-gated" } else { "" }
            ),
            None => String::new(),
        };
        format!(
            "{}: {} experts, top-{}, hidden {}, intermediate {}, {}{shared}{baked}",
            self.name(model),
            self.experts,
            self.top_k,
            self.hidden.map_or("?".into(), |h| h.to_string()),
            intermediate.map_or("?".into(), |i| i.to_string()),
            self.form.describe(),
        )
    }
}

/// A layer the detectors recognised as MoE but cannot rewrite: where and why.
#[derive(Clone, Debug)]
pub(crate) struct Rejected {
    pub node: NodeId,
    pub reason: Rejection,
}

/// Why a recognised layer is not rewritten, as the detector that found it says.
#[derive(Clone, Debug, PartialEq, Eq, thiserror::Error)]
pub(crate) enum Rejection {
    #[error(transparent)]
    Chain(#[from] scatter::ChainError),
    #[error(transparent)]
    Pairs(#[from] pairs::PairError),
    #[error(transparent)]
    Contrib(#[from] contrib::ContribError),
}
