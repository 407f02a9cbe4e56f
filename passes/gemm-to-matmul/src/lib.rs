//! The `gemm-to-matmul` pass: every Gemm becomes MatMul (+ Add), so that quantizers take every
//! linear layer.
//!
//! ONNX Runtime's `quantize_dynamic(op_types_to_quantize=['MatMul'])` and its 4-bit
//! `MatMulNBitsQuantizer` skip Gemm, so the routers, heads and 2-D linears that exporters emit
//! as Gemm silently stay float. The rule ([`rule::GemmToMatMul`]) handles every Gemm form and
//! is mandatory: where it produced a MatMul form, the Gemm is pruned from its e-class, so no
//! cost model can pick it back. Where it cannot (an integer Gemm with scale factors, an opset
//! before 7, an unknown element type), the Gemm stays and the report says why.
//!
//! Run it after ORT's `quant_pre_process` (whose basic optimizations fuse MatMul + Add back
//! into Gemm) and right before the quantizer.

mod rule;
mod weights;

use std::sync::Arc;
use std::time::Instant;

use onnx_rewrite_egraph::extract::NodeCount;
use onnx_rewrite_egraph::rule::Rule;
use onnx_rewrite_egraph::run::{RewriteOptions, rewrite_model};
use onnx_rewrite_ir::Model;
use onnx_rewrite_pass::{Pass, PassContext, PassError, PassReport, count_ops};

pub use rule::GemmToMatMul;

/// The pass.
pub struct GemmToMatmulPass;

impl Pass for GemmToMatmulPass {
    fn name(&self) -> &'static str {
        "gemm-to-matmul"
    }

    fn summary(&self) -> &'static str {
        "Gemm → MatMul (+Add), transposes and scales folded into constant weights, so quantizers take every linear layer"
    }

    fn survey(&self, model: &mut Model) -> Option<String> {
        let gemms = count_ops(model, "Gemm");
        (gemms > 0).then(|| format!("{gemms} Gemm node(s) to rewrite"))
    }

    fn run(&self, model: &mut Model, cx: &PassContext) -> Result<PassReport, PassError> {
        let started = Instant::now();
        let mut report = PassReport::new(self.name(), model, cx);
        let gemms_before = count_ops(model, "Gemm");
        let rules: Vec<Arc<dyn Rule>> = vec![Arc::new(GemmToMatMul)];
        let options = RewriteOptions {
            limits: cx.limits.clone(),
            cost: &NodeCount,
            fold_constants: false,
            trace: cx.trace,
            only_anchored_graphs: true,
        };
        let summary = rewrite_model(model, &rules, &options)?;
        let emitted = summary.emitted.clone();
        summary.record(&mut report);
        let details = [
            ("gemm_before", gemms_before as u64),
            ("gemm_after", count_ops(model, "Gemm") as u64),
            ("initializers_added", emitted.initializers_added as u64),
            ("initializers_removed", emitted.initializers_removed as u64),
            ("bytes_added", emitted.bytes_added),
            ("bytes_removed", emitted.bytes_removed),
        ];
        report.details.extend(
            details
                .into_iter()
                .map(|(k, v)| (k.to_owned(), serde_json::Value::from(v))),
        );
        Ok(report.finish(model, started))
    }
}
