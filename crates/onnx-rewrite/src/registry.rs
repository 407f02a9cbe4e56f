//! The passes the library offers, by CLI name, in the sound order `all` runs them.

use std::sync::Arc;

use onnx_rewrite_egraph::roundtrip::EgraphRoundTrip;
use onnx_rewrite_fp16::Fp16Pass;
use onnx_rewrite_gemm_to_matmul::GemmToMatmulPass;
use onnx_rewrite_hoist_scalars::HoistScalarsPass;
use onnx_rewrite_lower_if::{InlineFunctionsPass, LowerIfPass};
use onnx_rewrite_moe_dense::MoeDensePass;
use onnx_rewrite_pass::{Pipeline, PipelineError, Registry};

/// Every pass, in the sound order `all` runs them.
pub fn registry() -> Registry {
    Registry::new(vec![
        // Not in `all`: the e-graph machinery's own round trip.
        Arc::new(EgraphRoundTrip),
        // First: every later pass then sees plain ops where a function was called.
        Arc::new(InlineFunctionsPass),
        Arc::new(GemmToMatmulPass),
        Arc::new(LowerIfPass),
        // After lower-if (it reads the Where steps of an If per expert), before fp16 (the
        // dense form's Where keeps an overflowing unchosen expert out of float16 sums).
        Arc::new(MoeDensePass),
        // After the structural passes (it types what they emit), before hoist-scalars (float16
        // inputs change where onnxruntime's CUDA EP places a node).
        Arc::new(Fp16Pass),
        // Last: it predicts ORT's placement of the graph the other passes leave.
        Arc::new(HoistScalarsPass),
    ])
}

/// Parses a comma-separated list of pass names against [`registry`]; `none` is the empty
/// pipeline (load and save only), `all` every pass in the documented order.
pub fn pipeline(list: &str) -> Result<Pipeline, PipelineError> {
    registry().parse(list)
}
