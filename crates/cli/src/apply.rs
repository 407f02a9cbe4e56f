//! `onnx-rewrite apply`: load, run the passes, save.

use std::path::{Path, PathBuf};

use onnx_rewrite::Pipeline;
use onnx_rewrite::ir::{self, ExternalDataPolicy, LoadOptions, SaveOptions};

use crate::args::{ApplyArgs, ExternalData};
use crate::failure::Failure;
use crate::progress::Progress;

pub fn run(args: &ApplyArgs) -> Result<(), Failure> {
    let pipeline =
        Pipeline::parse(&args.passes).map_err(|e| Failure::Input(format!("--passes: {e}")))?;
    if !args.in_place && same_file(&args.input, &args.output) {
        return Err(Failure::Input(format!(
            "{}: the output would replace the input; pass --in-place if that is what you want",
            args.output.display()
        )));
    }

    let progress = Progress::for_model(&args.input);
    progress.stage(format!("loading {}", args.input.display()));
    let mut model = load(&args.input, args.load.allow_unknown_fields)?;

    for (index, name) in pipeline.names().iter().enumerate() {
        progress.stage(format!(
            "pass {name} ({}/{})",
            index + 1,
            pipeline.names().len()
        ));
    }
    pipeline.run(&mut model).map_err(Failure::input)?;

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
