//! One `apply`, shared by the command line and the Python package: run the pipeline, enforce
//! `--strict`, verify. The error messages are written here once, so `onnx-rewrite apply` and
//! `onnx_rewrite.apply` say the same thing about the same model.

use std::path::{Path, PathBuf};

use onnx_rewrite_ir::Model;
use onnx_rewrite_pass::{PassContext, PassError, PassOption};

use crate::info::ModelInfo;
use crate::registry;
use crate::report;
use crate::verify::{self, VerifyError, VerifyReport};
use onnx_rewrite_pass::{Pipeline, PipelineError, PipelineReport};

/// Why an apply failed. [`ApplyError::is_refusal`] separates exit status 2 (a pass refused,
/// `--strict` met a decline, `--verify` found an error) from 1 (bad input or usage).
#[derive(Debug, thiserror::Error)]
pub enum ApplyError {
    #[error("--passes: {0}")]
    Passes(#[from] PipelineError),
    /// A pass refused the model (`model` names it: a path or `<memory>`).
    #[error("{model}: {reason}")]
    Refused { model: String, reason: String },
    /// A pass could not take the model.
    #[error("{model}: {source}")]
    Pass { model: String, source: PassError },
    /// A node does not fit its operator's schema (bad input, exit status 1).
    #[error("{model}: {source}")]
    Signature {
        model: String,
        source: crate::signature::SignatureError,
    },
    #[error("--strict: {0} node(s) declined (see the report); nothing written")]
    Strict(usize),
    #[error(transparent)]
    Verify(#[from] VerifyError),
    /// Verification ran and found outputs over tolerance.
    #[error("--verify: the rewritten model's outputs differ from the original's beyond tolerance; nothing written\n{0}", .report.summary())]
    OverTolerance { report: Box<VerifyReport> },
}

impl ApplyError {
    /// Exit status 2 rather than 1.
    pub fn is_refusal(&self) -> bool {
        matches!(
            self,
            Self::Refused { .. } | Self::Strict(_) | Self::OverTolerance { .. }
        )
    }
}

/// Every MoE dispatch the model holds (see [`onnx_rewrite_moe_dense::guard`]), one line each.
pub fn dispatch_regions(model: &Model) -> Vec<String> {
    onnx_rewrite_moe_dense::guard::dispatch_regions(model)
        .iter()
        .map(|d| {
            format!(
                "{}: {}",
                onnx_rewrite_pass::describe_graph(model, d.graph),
                d.describe(model)
            )
        })
        .collect()
}

/// The dispatch an output still holds, as warnings: a model that may be a baked trace never
/// leaves without a word, whatever the passes.
fn dispatch_warnings(model: &Model) -> Vec<String> {
    dispatch_regions(model)
        .into_iter()
        .map(|r| {
            format!(
                "{r}; no pass proved it a complete MoE layer, so the model stays data-dependent there and may be a trace missing experts"
            )
        })
        .collect()
}

/// `--strict`: any decline fails the apply.
pub fn check_strict(report: &PipelineReport) -> Result<(), ApplyError> {
    match report.declines() {
        0 => Ok(()),
        n => Err(ApplyError::Strict(n)),
    }
}

/// Every pass option, as `--<pass>-<option>` flags (the command line's `apply` grows one flag
/// per entry; Python takes them as keyword arguments with `_` for `-`).
pub fn pass_options() -> Vec<PassOption> {
    registry()
        .passes()
        .iter()
        .flat_map(|p| p.options().iter().copied())
        .collect()
}

/// The verification tolerance for a pipeline, from DESIGN.md's table.
pub fn tolerance(pipeline: &Pipeline, cx: &PassContext) -> verify::Tolerance {
    verify::Tolerance::for_passes(&pipeline.names(), &cx.options)
}

/// What one apply asks for beyond the passes.
#[derive(Debug, Clone, Default)]
pub struct ApplyRequest {
    /// Run both models with tract-onnx and compare (`--verify`).
    pub verify: Option<verify::VerifyOptions>,
    /// Diff the graph pass by pass for `--report-html` / `--dot`.
    pub regions: bool,
}

/// What one apply found; the caller writes reports, then checks [`check_strict`] and
/// [`ApplyOutcome::check_verified`] before saving.
#[derive(Debug, Clone)]
pub struct ApplyOutcome {
    pub report: PipelineReport,
    pub verify: Option<VerifyReport>,
    /// Per pass, the regions it rewrote (empty unless asked for).
    pub regions: Vec<Vec<report::Region>>,
    pub info_before: Option<ModelInfo>,
    pub info_after: Option<ModelInfo>,
}

impl ApplyOutcome {
    /// Fails when verification found outputs over tolerance.
    pub fn check_verified(&self) -> Result<(), ApplyError> {
        match &self.verify {
            Some(v) if !v.passed => Err(ApplyError::OverTolerance {
                report: Box::new(v.clone()),
            }),
            _ => Ok(()),
        }
    }

    /// The JSON report: the pipeline's, with the verification beside it when there was one.
    pub fn json(&self) -> serde_json::Value {
        let mut value = serde_json::to_value(&self.report).unwrap_or(serde_json::Value::Null);
        if let (Some(v), serde_json::Value::Object(map)) = (&self.verify, &mut value) {
            map.insert(
                "verify".to_owned(),
                serde_json::to_value(v).unwrap_or(serde_json::Value::Null),
            );
        }
        value
    }

    /// The `--report-html` page; `None` unless the request asked for regions.
    pub fn html(&self, title: &str) -> Option<String> {
        Some(report::render_html(&report::ReportData {
            title: title.to_owned(),
            info_before: self.info_before.as_ref()?,
            info_after: self.info_after.as_ref()?,
            pipeline: &self.report,
            regions: &self.regions,
            verify: self.verify.as_ref(),
        }))
    }

    /// The `--dot` graph.
    pub fn dot(&self) -> String {
        report::render_dot(&self.report, &self.regions)
    }
}

/// Runs the pipeline on `model` and, as asked, diffs it pass by pass and verifies it against
/// `original` (the model as it was before the passes: its file, or its serialized bytes).
pub fn apply(
    pipeline: &Pipeline,
    model: &mut Model,
    model_name: &str,
    cx: &PassContext,
    request: &ApplyRequest,
    original: verify::Source<'_>,
    on_pass: impl FnMut(usize, &str),
) -> Result<ApplyOutcome, ApplyError> {
    crate::signature::check(model).map_err(|source| ApplyError::Signature {
        model: model_name.to_owned(),
        source,
    })?;
    // Declared inputs are read before the passes: fp16 with its I/O types converted changes them.
    let specs = match &request.verify {
        Some(_) => Some(verify::input_specs(model)?),
        None => None,
    };
    let info_before = request.regions.then(|| ModelInfo::of(model));
    let mut sketch = request.regions.then(|| report::GraphSketch::of(model));
    let mut regions = Vec::new();
    let mut report = pipeline
        .run_observed(model, cx, on_pass, |_, after| {
            if let Some(before) = &mut sketch {
                let now = report::GraphSketch::of(after);
                regions.push(report::regions(before, &now));
                *before = now;
            }
        })
        .map_err(|e| match e {
            PassError::Refused(reason) => ApplyError::Refused {
                model: model_name.to_owned(),
                reason,
            },
            source => ApplyError::Pass {
                model: model_name.to_owned(),
                source,
            },
        })?;
    report.warnings = dispatch_warnings(model);
    // Verification and the before/after pages read the weights.
    if request.verify.is_some() || request.regions {
        model.materialize_pending();
    }
    let verify = match (&request.verify, specs) {
        (Some(options), Some(specs)) => {
            // tract reads a serialized model; this copy of the weights exists only under --verify.
            let (rewritten, note) = verify::runnable_bytes(model)?;
            let mut options = options.clone();
            options.tolerance = tolerance(pipeline, cx);
            let mut report = verify::verify(
                &specs,
                original,
                verify::Source::Bytes(&rewritten),
                &options,
            )?;
            report.notes.extend(note);
            Some(report)
        }
        _ => None,
    };
    Ok(ApplyOutcome {
        report,
        verify,
        regions,
        info_before,
        info_after: request.regions.then(|| ModelInfo::of(model)),
    })
}

/// Whether two paths name the same file (the output need not exist yet): how `apply` tells an
/// output that would overwrite its input, for the command line and Python alike.
pub fn same_file(a: &Path, b: &Path) -> bool {
    let resolve = |p: &Path| -> Option<PathBuf> {
        if let Ok(full) = p.canonicalize() {
            return Some(full);
        }
        let parent = match p.parent() {
            Some(parent) if !parent.as_os_str().is_empty() => parent.canonicalize().ok()?,
            _ => std::env::current_dir().ok()?,
        };
        Some(parent.join(p.file_name()?))
    };
    matches!((resolve(a), resolve(b)), (Some(x), Some(y)) if x == y)
}
