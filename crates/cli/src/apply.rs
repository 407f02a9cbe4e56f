//! `onnx-rewrite apply`: load, run the passes, report, verify, save.

use std::collections::BTreeMap;
use std::fmt::Write as _;
use std::path::{Path, PathBuf};
use std::time::Duration;

use onnx_rewrite::ir::{self, ExternalDataPolicy, LoadOptions, SaveOptions};
use onnx_rewrite::pass::RunLimits;
use onnx_rewrite::session::{self, ApplyOutcome, ApplyRequest};
use onnx_rewrite::verify::{self, VerifyOptions};
use onnx_rewrite::{ApplyError, PassContext, PipelineReport};

use crate::args::{ApplyArgs, ExternalData, LimitArgs};
use crate::failure::Failure;
use crate::progress::Progress;

pub fn run(args: &ApplyArgs, options: onnx_rewrite::PassOptions) -> Result<(), Failure> {
    let pipeline = onnx_rewrite::pipeline(&args.passes).map_err(|e| failure(e.into()))?;
    if !args.in_place && session::same_file(&args.input, &args.output) {
        return Err(Failure::Input(format!(
            "{}: the output would replace the input; pass --in-place if that is what you want",
            args.output.display()
        )));
    }
    let cx = PassContext {
        limits: limits(&args.limits)?,
        trace: args.trace_rules,
        options,
        // The model goes straight to `save_file`, which computes pending payloads as it writes.
        pending_payloads: true,
        check_invariants: args.check,
    };
    let request = ApplyRequest {
        verify: if args.verify {
            Some(verify_options(&args.verify_shape)?)
        } else {
            None
        },
        regions: args.report_html.is_some() || args.dot.is_some(),
    };

    let progress = Progress::for_model(&args.input);
    progress.stage(format!("loading {}", args.input.display()));
    let mut model = load(&args.input, args.load.allow_unknown_fields)?;

    let count = pipeline.names().len();
    let outcome = session::apply(
        &pipeline,
        &mut model,
        &args.input.display().to_string(),
        &cx,
        &request,
        // The input file is the original: the passes changed only the in-memory model.
        verify::Source::Path(&args.input),
        |index, name| progress.stage(format!("pass {name} ({}/{count})", index + 1)),
    )
    .map_err(failure)?;
    if !args.quiet && !outcome.report.passes.is_empty() {
        eprint!("{}", table(&outcome.report));
    }
    // Even under --quiet: the output may be a wrong model, and nothing else says so.
    for warning in &outcome.report.warnings {
        eprintln!("onnx-rewrite: warning: MoE dispatch left in the {warning}");
    }
    // A failed verification prints its summary in the error message instead.
    if let (false, Some(v)) = (args.quiet, &outcome.verify)
        && v.passed
    {
        eprint!("{}", v.summary());
    }
    write_reports(args, &outcome)?;
    if args.strict {
        session::check_strict(&outcome.report).map_err(failure)?;
    }
    outcome.check_verified().map_err(failure)?;

    progress.stage(format!("saving {}", args.output.display()));
    let options = SaveOptions {
        external_data: match args.external_data {
            ExternalData::AsLoaded => ExternalDataPolicy::AsLoaded,
            ExternalData::Always => ExternalDataPolicy::Always,
            ExternalData::Never => ExternalDataPolicy::Never,
        },
        ..SaveOptions::default()
    };
    ir::save::save_file(&model, &args.output, &options).map_err(Failure::input)?;
    Ok(())
}

/// The exit status an apply error calls for.
fn failure(e: ApplyError) -> Failure {
    if e.is_refusal() {
        Failure::Refused(e.to_string())
    } else {
        Failure::Input(e.to_string())
    }
}

fn verify_options(shapes: &[String]) -> Result<VerifyOptions, Failure> {
    let mut bound = BTreeMap::new();
    for spec in shapes {
        let (name, dims) = verify::parse_shape(spec).map_err(Failure::input)?;
        bound.insert(name, dims);
    }
    Ok(VerifyOptions {
        shapes: bound,
        // Replaced by the pipeline's row of the tolerance table.
        tolerance: verify::Tolerance {
            rtol: 0.0,
            atol: 0.0,
        },
        seed: 0,
    })
}

/// Writes the reports asked for; they are written even when `--strict` or `--verify` then
/// fails, since that is when people read them.
fn write_reports(args: &ApplyArgs, outcome: &ApplyOutcome) -> Result<(), Failure> {
    if let Some(path) = &args.report {
        let mut json = serde_json::to_vec_pretty(&outcome.json())
            .map_err(|e| Failure::Input(e.to_string()))?;
        json.push(b'\n');
        write_atomically(path, &json, "report")?;
    }
    if let Some(path) = &args.report_html {
        let title = format!(
            "onnx-rewrite: {} ({})",
            args.input.display(),
            args.passes.trim()
        );
        if let Some(html) = outcome.html(&title) {
            write_atomically(path, html.as_bytes(), "HTML report")?;
        }
    }
    if let Some(path) = &args.dot {
        write_atomically(path, outcome.dot().as_bytes(), "Graphviz file")?;
    }
    Ok(())
}

fn limits(args: &LimitArgs) -> Result<RunLimits, Failure> {
    if !(args.egraph_time_limit.is_finite() && args.egraph_time_limit > 0.0) {
        return Err(Failure::Input(
            "--egraph-time-limit must be a positive number of seconds".into(),
        ));
    }
    Ok(RunLimits {
        node_limit: args.egraph_node_limit,
        iter_limit: args.egraph_iter_limit,
        time_limit: Duration::from_secs_f64(args.egraph_time_limit),
    })
}

/// The per-pass table printed after a run.
fn table(report: &PipelineReport) -> String {
    let mut s = String::new();
    let _ = writeln!(
        s,
        "{:<16} {:>8} {:>8} {:>9} {:>9} {:>6} {:>9} {:>8}",
        "pass", "nodes", "after", "e-nodes", "e-classes", "iters", "ms", "declined"
    );
    for p in &report.passes {
        let _ = writeln!(
            s,
            "{:<16} {:>8} {:>8} {:>9} {:>9} {:>6} {:>9.1} {:>8}",
            p.pass,
            p.nodes_before,
            p.nodes_after,
            p.egraph.nodes,
            p.egraph.classes,
            p.egraph.iterations,
            p.time_ms,
            p.declined.len()
        );
        for (rule, count) in &p.rules {
            let _ = writeln!(s, "    rule {rule}: applied {count}");
        }
        for d in &p.declined {
            let _ = writeln!(
                s,
                "    declined {} in the {} ({}): {}",
                d.node, d.graph, d.rule, d.reason
            );
        }
        for note in &p.notes {
            let _ = writeln!(s, "    note: {note}");
        }
    }
    s
}

/// Writes a file atomically, like the model: a temporary file renamed when complete.
fn write_atomically(path: &Path, bytes: &[u8], what: &str) -> Result<(), Failure> {
    let folder = match path.parent() {
        Some(p) if !p.as_os_str().is_empty() => p.to_path_buf(),
        _ => PathBuf::from("."),
    };
    let fail = |e: std::io::Error| {
        Failure::Input(format!("{}: cannot write the {what}: {e}", path.display()))
    };
    let mut temp = tempfile::NamedTempFile::new_in(folder).map_err(fail)?;
    std::io::Write::write_all(&mut temp, bytes).map_err(fail)?;
    temp.persist(path).map_err(|e| fail(e.error))?;
    Ok(())
}

/// Loads a model, warning about any unknown fields that were dropped on request.
pub fn load(path: &Path, allow_unknown_fields: bool) -> Result<ir::Model, Failure> {
    let model = ir::load::load_file(
        path,
        &LoadOptions {
            allow_unknown_fields,
        },
    )
    .map_err(Failure::input)?;
    for field in model.dropped_unknown_fields() {
        eprintln!("onnx-rewrite: warning: {}: dropped {field}", path.display());
    }
    Ok(model)
}
