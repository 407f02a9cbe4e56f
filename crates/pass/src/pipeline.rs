//! A pipeline: passes parsed by name from a [`Registry`], run in order with the IR's
//! invariants checked after each.

use std::sync::Arc;

use onnx_rewrite_ir::Model;

use crate::{Pass, PassContext, PassError, PassReport};

/// A pass list could not be parsed.
#[derive(Debug, thiserror::Error)]
pub enum PipelineError {
    #[error("unknown pass '{name}'; the passes are: {known}")]
    UnknownPass { name: String, known: String },
    #[error("the pass list is empty")]
    Empty,
    #[error("'none' cannot be combined with other passes")]
    NoneWithOthers,
}

/// Every pass a front end offers, in the sound order `all` runs them.
#[derive(Clone, Default)]
pub struct Registry {
    passes: Vec<Arc<dyn Pass>>,
}

impl Registry {
    pub fn new(passes: Vec<Arc<dyn Pass>>) -> Self {
        Self { passes }
    }

    /// Every pass, in `all`'s order (those [`Pass::in_all`] leaves out included).
    pub fn passes(&self) -> &[Arc<dyn Pass>] {
        &self.passes
    }

    /// The pass named `name`.
    pub fn get(&self, name: &str) -> Option<&Arc<dyn Pass>> {
        self.passes.iter().find(|p| p.name() == name)
    }

    /// Parses a comma-separated list of pass names; `none` is the empty pipeline (load and
    /// save only), `all` every pass in the documented order.
    pub fn parse(&self, list: &str) -> Result<Pipeline, PipelineError> {
        Pipeline::parse_in(self, list)
    }
}

/// An ordered list of passes.
#[derive(Clone)]
pub struct Pipeline {
    passes: Vec<Arc<dyn Pass>>,
    /// Passes the list did not name but another pass needs; inserted before it.
    inserted: Vec<String>,
}

impl std::fmt::Debug for Pipeline {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.debug_list()
            .entries(self.passes.iter().map(|p| p.name()))
            .finish()
    }
}

/// What a pipeline did: one report per pass, in order.
#[derive(Debug, Clone, Default, serde::Serialize)]
pub struct PipelineReport {
    pub passes: Vec<PassReport>,
    /// Passes run because a named pass needs them.
    #[serde(skip_serializing_if = "Vec::is_empty")]
    pub inserted: Vec<String>,
    /// What the output still holds that a user must hear of, whatever the passes (a MoE
    /// dispatch no pass proved, which may be a baked trace); filled by the front end.
    #[serde(skip_serializing_if = "Vec::is_empty")]
    pub warnings: Vec<String>,
}

impl PipelineReport {
    /// Declines over every pass.
    pub fn declines(&self) -> usize {
        self.passes.iter().map(|p| p.declined.len()).sum()
    }
}

impl Pipeline {
    fn parse_in(registry: &Registry, list: &str) -> Result<Self, PipelineError> {
        let registry = &registry.passes;
        let names: Vec<&str> = list
            .split(',')
            .map(str::trim)
            .filter(|n| !n.is_empty())
            .collect();
        if names.is_empty() {
            return Err(PipelineError::Empty);
        }
        if names.contains(&"none") {
            return if names.len() == 1 {
                Ok(Self {
                    passes: Vec::new(),
                    inserted: Vec::new(),
                })
            } else {
                Err(PipelineError::NoneWithOthers)
            };
        }
        let mut wanted: Vec<Arc<dyn Pass>> = Vec::new();
        for name in names {
            if name == "all" {
                wanted.extend(registry.iter().filter(|p| p.in_all()).cloned());
                continue;
            }
            let pass = registry.iter().find(|p| p.name() == name).ok_or_else(|| {
                PipelineError::UnknownPass {
                    name: name.to_owned(),
                    known: std::iter::once("none")
                        .chain(std::iter::once("all"))
                        .chain(registry.iter().map(|p| p.name()))
                        .collect::<Vec<_>>()
                        .join(", "),
                }
            })?;
            wanted.push(pass.clone());
        }
        let mut passes: Vec<Arc<dyn Pass>> = Vec::new();
        let mut inserted = Vec::new();
        for pass in wanted {
            for need in pass.needs() {
                if !passes.iter().any(|p| p.name() == *need)
                    && let Some(needed) = registry.iter().find(|p| p.name() == *need)
                {
                    passes.push(needed.clone());
                    inserted.push((*need).to_owned());
                }
            }
            if !passes.iter().any(|p| p.name() == pass.name()) {
                passes.push(pass);
            }
        }
        Ok(Self { passes, inserted })
    }

    /// The pass names, in order.
    pub fn names(&self) -> Vec<&'static str> {
        self.passes.iter().map(|p| p.name()).collect()
    }

    /// Runs every pass in order; `on_pass` hears each pass's name before it runs.
    pub fn run_with(
        &self,
        model: &mut Model,
        cx: &PassContext,
        on_pass: impl FnMut(usize, &str),
    ) -> Result<PipelineReport, PassError> {
        self.run_observed(model, cx, on_pass, |_, _| {})
    }

    /// Like [`Pipeline::run_with`], and `after_pass` sees the model after each pass (the HTML
    /// report diffs the graph pass by pass).
    pub fn run_observed(
        &self,
        model: &mut Model,
        cx: &PassContext,
        mut on_pass: impl FnMut(usize, &str),
        mut after_pass: impl FnMut(usize, &Model),
    ) -> Result<PipelineReport, PassError> {
        let mut report = PipelineReport {
            passes: Vec::new(),
            inserted: self.inserted.clone(),
            warnings: Vec::new(),
        };
        for (index, pass) in self.passes.iter().enumerate() {
            on_pass(index, pass.name());
            // A pass reads the bytes the one before it left pending.
            if model.has_pending_payloads() {
                model.materialize_pending();
            }
            report.passes.push(pass.run(model, cx)?);
            if cx.check_invariants || cfg!(debug_assertions) {
                model.check().map_err(|error| PassError::Invariant {
                    pass: pass.name().to_owned(),
                    error,
                })?;
            }
            after_pass(index, model);
        }
        Ok(report)
    }

    /// Runs every pass in order with default limits.
    pub fn run(&self, model: &mut Model) -> Result<PipelineReport, PassError> {
        self.run_with(model, &PassContext::default(), |_, _| {})
    }
}
