//! The kernel lookups of `--fp16-target`: whether an execution provider registers a kernel for
//! a node with its type parameters bound to float16 (or float32).
//!
//! Asked of `onnx-rewrite-ort-kernels`, the one table (and the one version-matching rule) that
//! `onnx-rewrite analyze --ep cuda` and hoist-scalars read too, so `--fp16-target` and the
//! placement predictor cannot disagree about a kernel. Which providers a target means is the
//! pass's own policy ([`crate::Options`]).

pub use onnx_rewrite_ort_kernels::{Ep, find};
