//! `onnx-rewrite analyze --ep cuda`: ONNX Runtime's predicted placement and Memcpy nodes.

use onnx_rewrite::placement::{PredictOptions, predict};

use crate::apply::load;
use crate::args::{AnalyzeArgs, AnalyzeEp};
use crate::failure::Failure;
use crate::print::write_stdout;

pub fn run(args: &AnalyzeArgs) -> Result<(), Failure> {
    match args.ep {
        AnalyzeEp::Cuda => {}
    }
    let model = load(&args.input, args.load.allow_unknown_fields)?;
    let options = PredictOptions {
        ort_version: args.ort_version.clone(),
    };
    let prediction = predict(&model, &options)
        .map_err(|e| Failure::Input(format!("{}: {e}", args.input.display())))?;
    if args.json {
        let mut json =
            serde_json::to_string_pretty(&prediction).map_err(|e| Failure::Input(e.to_string()))?;
        json.push('\n');
        return write_stdout(&json);
    }
    write_stdout(&prediction.render())
}
