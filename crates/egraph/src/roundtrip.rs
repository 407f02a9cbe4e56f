//! The `egraph` pass: lower every graph, extract, write back, with no rules.
//!
//! Hash-consing merges identical computations and extraction drops dead nodes; nothing else
//! changes. It is the e-graph machinery's own test: on the ONNX node-test corpus its output
//! must still pass every case, and applying it to its own output changes nothing.

use std::time::Instant;

use onnx_rewrite_ir::Model;

use crate::extract::NodeCount;
use crate::run::{RewriteOptions, rewrite_model};
use onnx_rewrite_pass::{Pass, PassContext, PassError, PassReport};

pub struct EgraphRoundTrip;

impl Pass for EgraphRoundTrip {
    fn name(&self) -> &'static str {
        "egraph"
    }

    fn summary(&self) -> &'static str {
        "IR → e-graph → extract → IR with no rules: merges duplicate computations, drops dead nodes"
    }

    fn in_all(&self) -> bool {
        false
    }

    fn run(&self, model: &mut Model, cx: &PassContext) -> Result<PassReport, PassError> {
        let started = Instant::now();
        let mut report = PassReport::new(self.name(), model, cx);
        let options = RewriteOptions {
            limits: cx.limits.clone(),
            cost: &NodeCount,
            fold_constants: false,
            trace: cx.trace,
            only_anchored_graphs: false,
        };
        rewrite_model(model, &[], &options)?.record(&mut report);
        Ok(report.finish(model, started))
    }
}
