//! The passes the library offers, by CLI name, and a pipeline of them.

use onnx_rewrite_ir::Model;

/// A pass list could not be parsed.
#[derive(Debug, thiserror::Error)]
pub enum PipelineError {
    #[error("unknown pass '{name}'; the passes are: {known}")]
    UnknownPass { name: String, known: String },
    #[error("the pass list is empty")]
    Empty,
}

/// What `onnx-rewrite passes` lists: name and one line.
pub const PASSES: &[(&str, &str)] = &[(
    "none",
    "load and save only: a lossless round trip through the IR",
)];

/// An ordered list of passes.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Pipeline {
    passes: Vec<&'static str>,
}

/// What a pipeline did.
#[derive(Debug, Clone, Default, serde::Serialize)]
pub struct PipelineReport {
    pub passes: Vec<String>,
}

impl Pipeline {
    /// Parses a comma-separated list of pass names.
    pub fn parse(list: &str) -> Result<Self, PipelineError> {
        let mut passes = Vec::new();
        for name in list.split(',').map(str::trim).filter(|n| !n.is_empty()) {
            let known = PASSES.iter().find(|(n, _)| *n == name).ok_or_else(|| {
                PipelineError::UnknownPass {
                    name: name.to_owned(),
                    known: PASSES
                        .iter()
                        .map(|(n, _)| *n)
                        .collect::<Vec<_>>()
                        .join(", "),
                }
            })?;
            passes.push(known.0);
        }
        if passes.is_empty() {
            return Err(PipelineError::Empty);
        }
        Ok(Self { passes })
    }

    /// The pass names, in order.
    pub fn names(&self) -> &[&'static str] {
        &self.passes
    }

    /// Runs every pass in order.
    pub fn run(&self, _model: &mut Model) -> Result<PipelineReport, PipelineError> {
        Ok(PipelineReport {
            passes: self.passes.iter().map(|p| (*p).to_owned()).collect(),
        })
    }
}
