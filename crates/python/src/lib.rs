//! The native half of the `onnx_rewrite` Python package (the Python half, in `python/`, turns
//! `onnx.ModelProto`s and keyword options into what these functions take).
//!
//! Weights are not copied: a `bytes` argument is borrowed for the model's lifetime (the IR's
//! tensors are slices of it), and the result is encoded straight into the `bytes` object
//! returned. The passes run with the GIL released.

use std::collections::BTreeMap;
use std::path::{Path, PathBuf};
use std::time::Duration;

use bytes::Bytes;
use onnx_rewrite::info::ModelInfo;
use onnx_rewrite::ir::{self, ExternalDataPolicy, LoadOptions, Model, SaveOptions};
use onnx_rewrite::pass::RunLimits;
use onnx_rewrite::proto::Message;
use onnx_rewrite::session::{self, ApplyOutcome, ApplyRequest};
use onnx_rewrite::verify::{self, VerifyOptions};
use onnx_rewrite::{ApplyError, PassContext, PassOptions, Pipeline};
use pyo3::create_exception;
use pyo3::exceptions::PyException;
use pyo3::prelude::*;
use pyo3::pybacked::PyBackedBytes;
use pyo3::types::PyBytes;

create_exception!(
    _native,
    Error,
    PyException,
    "An onnx-rewrite error; the message is the command line's."
);
create_exception!(
    _native,
    InputError,
    Error,
    "Bad input or usage (the command line's exit status 1)."
);
create_exception!(
    _native,
    RefusedError,
    Error,
    "A pass refused the model, or strict=True met a decline (exit status 2)."
);
create_exception!(
    _native,
    VerifyError,
    RefusedError,
    "verify=True found outputs over tolerance (exit status 2)."
);

/// Maps a library error to the exception of its exit status, with the command line's message.
fn raise(e: ApplyError) -> PyErr {
    match e {
        ApplyError::OverTolerance { .. } => VerifyError::new_err(e.to_string()),
        e if e.is_refusal() => RefusedError::new_err(e.to_string()),
        e => InputError::new_err(e.to_string()),
    }
}

fn input_error(e: impl std::fmt::Display) -> PyErr {
    InputError::new_err(e.to_string())
}

/// Everything `apply` takes besides the model, as the Python layer hands it over.
#[derive(FromPyObject)]
#[pyo3(from_item_all)]
struct Settings {
    passes: String,
    /// (flag, value) pairs; `None` for a switch.
    options: Vec<(String, Option<String>)>,
    strict: bool,
    verify: bool,
    verify_shapes: Vec<(String, Vec<usize>)>,
    report_html: Option<PathBuf>,
    dot: Option<PathBuf>,
    trace_rules: bool,
    egraph_node_limit: Option<usize>,
    egraph_iter_limit: usize,
    egraph_time_limit: f64,
    allow_unknown_fields: bool,
}

struct Prepared {
    pipeline: Pipeline,
    cx: PassContext,
    request: ApplyRequest,
}

fn prepare(s: &Settings) -> PyResult<Prepared> {
    let pipeline = onnx_rewrite::pipeline(&s.passes).map_err(|e| raise(e.into()))?;
    if !(s.egraph_time_limit.is_finite() && s.egraph_time_limit > 0.0) {
        return Err(input_error(
            "--egraph-time-limit must be a positive number of seconds",
        ));
    }
    let mut options = PassOptions::default();
    for (flag, value) in &s.options {
        options.set(flag, value.clone());
    }
    let request = ApplyRequest {
        verify: s.verify.then(|| VerifyOptions {
            shapes: s.verify_shapes.iter().cloned().collect::<BTreeMap<_, _>>(),
            // Replaced by the pipeline's row of the tolerance table.
            tolerance: verify::Tolerance {
                rtol: 0.0,
                atol: 0.0,
            },
            seed: 0,
        }),
        regions: s.report_html.is_some() || s.dot.is_some(),
    };
    Ok(Prepared {
        pipeline,
        cx: PassContext {
            limits: RunLimits {
                node_limit: s.egraph_node_limit,
                iter_limit: s.egraph_iter_limit,
                time_limit: Duration::from_secs_f64(s.egraph_time_limit),
            },
            trace: s.trace_rules,
            options,
            // Off unless the model goes straight to a file (`apply_path`).
            pending_payloads: false,
            check_invariants: false,
        },
        request,
    })
}

/// Writes the HTML and dot reports (before the strict and verify checks, like the CLI), then
/// applies those checks.
fn finish(s: &Settings, model_name: &str, outcome: &ApplyOutcome) -> Result<(), PyErr> {
    if let Some(path) = &s.report_html {
        let title = format!("onnx-rewrite: {model_name} ({})", s.passes.trim());
        if let Some(html) = outcome.html(&title) {
            write_atomically(path, html.as_bytes(), "HTML report")?;
        }
    }
    if let Some(path) = &s.dot {
        write_atomically(path, outcome.dot().as_bytes(), "Graphviz file")?;
    }
    if s.strict {
        session::check_strict(&outcome.report).map_err(raise)?;
    }
    outcome.check_verified().map_err(raise)?;
    Ok(())
}

fn write_atomically(path: &Path, bytes: &[u8], what: &str) -> PyResult<()> {
    let folder = match path.parent() {
        Some(p) if !p.as_os_str().is_empty() => p.to_path_buf(),
        _ => PathBuf::from("."),
    };
    let fail = |e: std::io::Error| {
        input_error(format!("{}: cannot write the {what}: {e}", path.display()))
    };
    let mut temp = tempfile::NamedTempFile::new_in(folder).map_err(fail)?;
    std::io::Write::write_all(&mut temp, bytes).map_err(fail)?;
    temp.persist(path).map_err(|e| fail(e.error))?;
    Ok(())
}

fn report_json(outcome: &ApplyOutcome) -> String {
    outcome.json().to_string()
}

/// Loads the model with `load` and runs the pipeline on it (outside the GIL: the caller
/// detaches).
fn load_and_apply<E: std::fmt::Display>(
    prepared: &Prepared,
    name: &str,
    source: verify::Source<'_>,
    load: impl FnOnce(&LoadOptions) -> Result<Model, E>,
    allow_unknown_fields: bool,
) -> PyResult<(Model, ApplyOutcome)> {
    let mut model = load(&LoadOptions {
        allow_unknown_fields,
    })
    .map_err(input_error)?;
    let outcome = session::apply(
        &prepared.pipeline,
        &mut model,
        name,
        &prepared.cx,
        &prepared.request,
        source,
        |_, _| {},
    )
    .map_err(raise)?;
    Ok((model, outcome))
}

/// Applies passes to a serialized model; returns the rewritten model's bytes and the JSON
/// report. `model_folder` is where external data lives, if the model has any.
#[pyfunction]
#[pyo3(signature = (data, settings, model_folder=None))]
fn apply_bytes<'py>(
    py: Python<'py>,
    data: PyBackedBytes,
    settings: Settings,
    model_folder: Option<PathBuf>,
) -> PyResult<(Bound<'py, PyBytes>, String)> {
    let prepared = prepare(&settings)?;
    let name = "<memory>";
    // Borrowed, not copied: the model's tensors point into the Python bytes object, which the
    // `Bytes` keeps alive.
    let original = Bytes::from_owner(data);
    let (model, outcome) = py.detach(|| {
        load_and_apply(
            &prepared,
            name,
            verify::Source::Bytes(&original),
            |options| ir::load::load_bytes(original.clone(), model_folder.as_deref(), options),
            settings.allow_unknown_fields,
        )
    })?;
    finish(&settings, name, &outcome)?;
    let out = encode(py, &model, model_folder.is_some())?;
    Ok((out, report_json(&outcome)))
}

/// The model as a Python `bytes`, encoded in place (no intermediate buffer) unless tensors are
/// external, which must be read in first.
fn encode<'py>(py: Python<'py>, model: &Model, has_folder: bool) -> PyResult<Bound<'py, PyBytes>> {
    if has_folder {
        let bytes = ir::save::to_bytes(model).map_err(input_error)?;
        return Ok(PyBytes::new(py, &bytes));
    }
    // Loaded from memory with no folder, the model has no external tensors, so the proto for
    // printing is the whole model.
    let proto = ir::save::to_proto(model).map_err(input_error)?;
    let len = proto.encoded_len();
    if len as u64 > (2u64 << 30) - 1 {
        return Err(input_error(format!(
            "<memory>: the rewritten model is {len} bytes, over protobuf's 2 GiB limit; pass a path to save it with external data"
        )));
    }
    PyBytes::new_with(py, len, |buf| {
        let mut slice: &mut [u8] = buf;
        proto
            .encode(&mut slice)
            .map_err(|e| input_error(format!("<memory>: cannot encode the model: {e}")))
    })
}

/// Applies passes to a model file and writes the result; returns the JSON report.
#[pyfunction]
#[pyo3(signature = (input, output, settings, external_data="as-loaded", in_place=false))]
fn apply_path(
    py: Python<'_>,
    input: PathBuf,
    output: PathBuf,
    settings: Settings,
    external_data: &str,
    in_place: bool,
) -> PyResult<String> {
    let mut prepared = prepare(&settings)?;
    // The model goes straight to `save_file`, which computes pending payloads as it writes.
    prepared.cx.pending_payloads = true;
    let policy = match external_data {
        "as-loaded" => ExternalDataPolicy::AsLoaded,
        "always" => ExternalDataPolicy::Always,
        "never" => ExternalDataPolicy::Never,
        other => {
            return Err(input_error(format!(
                "external_data '{other}': expected 'as-loaded', 'always' or 'never'"
            )));
        }
    };
    if !in_place && session::same_file(&input, &output) {
        return Err(input_error(format!(
            "{}: the output would replace the input; pass in_place=True if that is what you want",
            output.display()
        )));
    }
    let name = input.display().to_string();
    let (model, outcome) = py.detach(|| {
        load_and_apply(
            &prepared,
            &name,
            verify::Source::Path(&input),
            |options| ir::load::load_file(&input, options),
            settings.allow_unknown_fields,
        )
    })?;
    finish(&settings, &name, &outcome)?;
    py.detach(|| {
        ir::save::save_file(
            &model,
            &output,
            &SaveOptions {
                external_data: policy,
                ..SaveOptions::default()
            },
        )
        .map_err(input_error)
    })?;
    Ok(report_json(&outcome))
}

/// `onnx-rewrite info --json` of a serialized model.
#[pyfunction]
#[pyo3(signature = (data, model_folder=None))]
fn info_bytes(
    py: Python<'_>,
    data: PyBackedBytes,
    model_folder: Option<PathBuf>,
) -> PyResult<String> {
    py.detach(|| {
        let mut model = ir::load::load_bytes(
            Bytes::from_owner(data),
            model_folder.as_deref(),
            &LoadOptions::default(),
        )
        .map_err(input_error)?;
        serde_json::to_string(&ModelInfo::of(&mut model)).map_err(input_error)
    })
}

/// `onnx-rewrite info --json` of a model file.
#[pyfunction]
fn info_path(py: Python<'_>, path: PathBuf) -> PyResult<String> {
    py.detach(|| {
        let mut model = ir::load::load_file(&path, &LoadOptions::default()).map_err(input_error)?;
        serde_json::to_string(&ModelInfo::of(&mut model)).map_err(input_error)
    })
}

/// The passes: (name, summary), in the order `all` runs them.
#[pyfunction]
fn passes() -> Vec<(&'static str, &'static str)> {
    onnx_rewrite::registry()
        .passes()
        .iter()
        .map(|p| (p.name(), p.summary()))
        .collect()
}

/// Every pass option: (flag, value name or None for a switch, repeated, help).
#[pyfunction]
fn pass_options() -> Vec<(&'static str, Option<&'static str>, bool, &'static str)> {
    session::pass_options()
        .into_iter()
        .map(|o| (o.flag, o.value, o.repeated, o.help))
        .collect()
}

#[pymodule]
fn _native(m: &Bound<'_, PyModule>) -> PyResult<()> {
    let py = m.py();
    m.add("Error", py.get_type::<Error>())?;
    m.add("InputError", py.get_type::<InputError>())?;
    m.add("RefusedError", py.get_type::<RefusedError>())?;
    m.add("VerifyError", py.get_type::<VerifyError>())?;
    m.add_function(wrap_pyfunction!(apply_bytes, m)?)?;
    m.add_function(wrap_pyfunction!(apply_path, m)?)?;
    m.add_function(wrap_pyfunction!(info_bytes, m)?)?;
    m.add_function(wrap_pyfunction!(info_path, m)?)?;
    m.add_function(wrap_pyfunction!(passes, m)?)?;
    m.add_function(wrap_pyfunction!(pass_options, m)?)?;
    m.add("__version__", env!("CARGO_PKG_VERSION"))?;
    Ok(())
}
