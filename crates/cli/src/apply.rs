//! `onnx-rewrite apply`: load, run the passes, save.

use std::fmt::Write as _;
use std::path::{Path, PathBuf};
use std::time::Duration;

use onnx_rewrite::egraph::RunLimits;
use onnx_rewrite::ir::{self, ExternalDataPolicy, LoadOptions, SaveOptions};
use onnx_rewrite::{PassContext, PassError, Pipeline, PipelineReport};

use crate::args::{ApplyArgs, ExternalData, LimitArgs};
use crate::failure::Failure;
use crate::progress::Progress;

pub fn run(args: &ApplyArgs, options: onnx_rewrite::PassOptions) -> Result<(), Failure> {
    let pipeline =
        Pipeline::parse(&args.passes).map_err(|e| Failure::Input(format!("--passes: {e}")))?;
    if !args.in_place && same_file(&args.input, &args.output) {
        return Err(Failure::Input(format!(
            "{}: the output would replace the input; pass --in-place if that is what you want",
            args.output.display()
        )));
    }
    let cx = PassContext {
        limits: limits(&args.limits)?,
        trace: args.trace_rules,
        options,
    };

    let progress = Progress::for_model(&args.input);
    progress.stage(format!("loading {}", args.input.display()));
    let mut model = load(&args.input, args.load.allow_unknown_fields)?;

    let count = pipeline.names().len();
    let outcome = pipeline.run_with(&mut model, &cx, |index, name| {
        progress.stage(format!("pass {name} ({}/{count})", index + 1))
    });
    let report = match outcome {
        Ok(report) => report,
        Err(PassError::Refused(why)) => {
            return Err(Failure::Refused(format!("{}: {why}", args.input.display())));
        }
        Err(e) => return Err(Failure::Input(format!("{}: {e}", args.input.display()))),
    };
    if !args.quiet && !report.passes.is_empty() {
        eprint!("{}", table(&report));
    }
    if let Some(path) = &args.report {
        write_report(path, &report)?;
    }
    if args.strict && report.declines() > 0 {
        return Err(Failure::Refused(format!(
            "--strict: {} node(s) declined (see the report); nothing written",
            report.declines()
        )));
    }

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

/// Writes the report as JSON, atomically like the model.
fn write_report(path: &Path, report: &PipelineReport) -> Result<(), Failure> {
    let mut json = serde_json::to_vec_pretty(report).map_err(|e| Failure::Input(e.to_string()))?;
    json.push(b'\n');
    let folder = match path.parent() {
        Some(p) if !p.as_os_str().is_empty() => p.to_path_buf(),
        _ => PathBuf::from("."),
    };
    let fail = |e: std::io::Error| {
        Failure::Input(format!("{}: cannot write the report: {e}", path.display()))
    };
    let mut temp = tempfile::NamedTempFile::new_in(folder).map_err(fail)?;
    std::io::Write::write_all(&mut temp, &json).map_err(fail)?;
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

/// Whether two paths name the same file (the output need not exist yet).
fn same_file(a: &Path, b: &Path) -> bool {
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
