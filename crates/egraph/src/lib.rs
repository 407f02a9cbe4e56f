//! ONNX in an e-graph: the machinery every rewriting pass of onnx-rewrite runs on.
//!
//! - [`language`]: ONNX as an egg language (operators by interned key, projections for
//!   multi-output operators, leaves by IR value id, opaque nodes for subgraph-holding ops).
//! - [`facts`] and [`analysis`]: dtype, symbolic shape and small constant values per e-class.
//! - [`lower`], [`extract`], [`emit`]: IR → e-graph → DAG-aware extraction → IR, keeping
//!   untouched nodes as they were.
//! - [`rule`]: how rewrite rules are written (anchor, check with a reason, rewrite).
//! - [`run`]: the driver (limits, innermost graphs first); [`pass`]: the `Pass` trait and
//!   its report; [`roundtrip`]: the `egraph` pass.

pub mod analysis;
pub mod emit;
pub mod extract;
pub mod facts;
pub mod fit;
pub mod graph_facts;
pub mod language;
pub mod lower;
pub mod pass;
pub mod roundtrip;
pub mod rule;
pub mod rules;
pub mod run;

pub use analysis::{ClassData, OnnxAnalysis, OnnxEGraph};
pub use egg::Id;
pub use graph_facts::GraphFacts;
pub use language::{Onnx, OpData};
pub use pass::{Pass, PassContext, PassError, PassOption, PassOptions, PassReport};
pub use run::RunLimits;
