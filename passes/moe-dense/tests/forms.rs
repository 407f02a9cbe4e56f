//! Every MoE form, before → after in ONNX text syntax, each checked by execution (tract:
//! the original and the rewrite on random tokens, 1, 3 and 5 of them, so that some experts
//! get no token) and for idempotence.

mod common;

use common::*;
use onnx_rewrite_egraph::pass::{Pass, PassContext, PassError};
use onnx_rewrite_moe_dense::MoeDensePass;
use onnx_rewrite_testkit::{assert_same_outputs, bytes, count_ops, text};

/// Ops that must not survive the rewrite.
const DYNAMIC: &[&str] = &[
    "NonZero",
    "If",
    "Loop",
    "Compress",
    "ScatterND",
    "MoE",
    "Range",
    "CumSum",
];

/// Applies the pass (with `options`), checks the rewrite computes what the original computes
/// and is static, and returns the text after.
fn rewrite_with(body: &str, options: &[(&str, Option<&str>)]) -> String {
    let before = parse(body);
    let (after, report) = apply_with(&before, options);
    assert!(report.declined.is_empty(), "{:?}", report.declined);
    for op in DYNAMIC {
        assert_eq!(count_ops(&after, op), 0, "{op} left:\n{}", text(&after));
    }
    assert_eq!(report.details["layers_rewritten"], 1, "{report:?}");
    assert_same_outputs(&before, &after, 1e-4, 1e-5);
    text(&after)
}

fn rewrite(body: &str) -> String {
    rewrite_with(body, &[])
}

#[test]
fn scatter_nd_loop_of_the_dynamo_exporter() {
    insta::assert_snapshot!(rewrite(&scatter_nd_layer(3, &[0, 1, 2])));
}
