//! `onnx-rewrite analyze IN --ep cuda [--ort-version X] [--json]`: ONNX Runtime's predicted
//! placement and Memcpy nodes, without a GPU (the predictor of crate `onnx-rewrite-placement`).
//!
//! What the prediction encodes:
//! - **ORT version**: the rules of onnxruntime 1.32.0, the pinned release
//!   (`onnx_rewrite_ort_kernels::PINNED_VERSION`); `--ort-version` accepts only that one and
//!   fails (exit 1) on any other, since no other table is shipped. Kernel availability by op,
//!   `since_version` and type comes from the one table shared with `fp16 --fp16-target`
//!   (crate `onnx-rewrite-ort-kernels`); the CPU registrations are exact (read from the
//!   1.32.0 wheel), the CUDA ones come from `OperatorKernels.md` of a source snapshot plus the
//!   changes merged since, not yet checked against an onnxruntime-gpu 1.32.0 binary.
//! - **Optimization level**: a session at `ORT_ENABLE_BASIC`. The predictor replays what runs
//!   before partitioning at that level (Constant nodes loaded as initializers, constant folding,
//!   constant sharing, CSE, the eliminations that change placement), then `GetCpuPreferredNodes`
//!   and `MemcpyTransformer`. Level-2/3 fusions (`ORT_ENABLE_EXTENDED`/`ALL`) run after
//!   placement and can move or absorb nodes, so counts at those levels may differ. The report
//!   lists what is not modelled (`placement::NOT_MODELLED`).
//! - **No GPU measurement yet**: the predictor has not been checked against onnxruntime-gpu;
//!   `tools/memcpy/gpu_ground_truth.sh` records the fixtures that the ignored tests in
//!   `passes/hoist-scalars/tests/ground_truth.rs` compare against (they stay with the pass:
//!   one compares the pass's output too).
//!
//! Output: one line per predicted Memcpy node with the tensor that crosses, why, the host-side
//! chain that produced it and its device readers; `--json` writes the same as an object.

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
