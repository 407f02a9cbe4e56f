//! ONNX in an e-graph: the rewriting engine of onnx-rewrite — language, analysis, runner,
//! extraction, rules. The pass framework it serves is crate `onnx-rewrite-pass`; what the
//! analysis knows of each value comes from crate `onnx-rewrite-facts`.
//!
//! - [`language`]: ONNX as an egg language (operators by interned key, projections for
//!   multi-output operators, leaves by IR value id, opaque nodes for subgraph-holding ops).
//! - [`analysis`]: the [`facts`] (dtype, symbolic shape, small constant values) per e-class.
//! - [`lower`], [`extract`], [`emit`]: IR → e-graph → DAG-aware extraction → IR, keeping
//!   untouched nodes as they were.
//! - [`pattern`] and [`rule`]: how rewrite rules are written (a pattern with named captures,
//!   a check that declines with a reason, a rewrite), and how they are found (by operator type).
//! - [`run`]: the driver (limits, innermost graphs first); [`roundtrip`]: the `egraph` pass.

pub mod analysis;
pub mod emit;
pub mod example;
pub mod extract;
pub mod language;
pub mod lower;
pub mod pattern;
pub mod roundtrip;
pub mod rule;
pub mod run;

pub use analysis::{ClassData, OnnxAnalysis, OnnxEGraph};
pub use egg::Id;
pub use language::{Onnx, OpData};
/// What the analysis knows of a value, op by op.
pub use onnx_rewrite_facts as facts;
