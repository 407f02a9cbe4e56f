//! onnx-rewrite: graph-rewriting compiler passes for ONNX models.
//!
//! ```no_run
//! let mut model = onnx_rewrite::load("model.onnx")?;
//! let report = onnx_rewrite::pipeline("none")?.run(&mut model)?;
//! onnx_rewrite::save(&model, "out.onnx")?;
//! println!("{}", onnx_rewrite::info::ModelInfo::of(&mut model).ops.len());
//! # Ok::<(), Box<dyn std::error::Error>>(())
//! ```
//!
//! The pieces are re-exported: [`pass`] (the `Pass` trait, its report, the pipeline), [`egraph`] (the e-graph rewriting engine), [`facts`] (what inference knows of each value), [`ir`] (the in-memory model, load and save), [`proto`] (the ONNX
//! protobuf types) and [`text`] (the ONNX text syntax).

pub mod info;
mod registry;
pub mod report;
pub mod session;
pub mod signature;
pub mod verify;

use std::path::Path;

pub use onnx_rewrite_egraph as egraph;
pub use onnx_rewrite_facts as facts;
pub use onnx_rewrite_ir as ir;
pub use onnx_rewrite_pass as pass;
pub use onnx_rewrite_pass::{
    Pass, PassContext, PassError, PassOption, PassOptions, PassReport, Pipeline, PipelineError,
    PipelineReport, Registry,
};
/// The CUDA placement and Memcpy predictor (`onnx-rewrite analyze`).
pub use onnx_rewrite_placement as placement;
pub use onnx_rewrite_proto as proto;
pub use onnx_rewrite_text as text;
pub use registry::{pipeline, registry};
pub use session::ApplyError;

/// Loads a model file with default options (unknown fields refused).
pub fn load(path: impl AsRef<Path>) -> Result<ir::Model, ir::LoadError> {
    ir::load::load_file(path.as_ref(), &ir::LoadOptions::default())
}

/// Saves a model atomically with default options (external data kept as loaded).
pub fn save(model: &ir::Model, path: impl AsRef<Path>) -> Result<ir::SaveSummary, ir::SaveError> {
    ir::save::save_file(model, path.as_ref(), &ir::SaveOptions::default())
}
