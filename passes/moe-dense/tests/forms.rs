//! Every MoE form, before → after in ONNX text syntax, each checked by execution (tract, on
//! 1 to 9 random tokens, so that some experts get no token) and for idempotence. Forms that
//! tract cannot run before the rewrite (`com.microsoft.MoE`) or that are wrong on purpose (a
//! baked trace) are checked against the same layer written in a complete, standard form.

mod common;

use common::*;
use onnx_rewrite_ir::Model;
use onnx_rewrite_lower_if::LowerIfPass;
use onnx_rewrite_pass::{Pass, PassContext, PassError};
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

/// Applies the pass (with `options`), checks that the rewrite is static and rewrote one
/// layer, and returns it with its text.
fn dense(before: &Model, options: &[(&str, Option<&str>)]) -> (Model, String) {
    let (after, report) = apply_with(before, options);
    assert!(report.declined.is_empty(), "{:?}", report.declined);
    for op in DYNAMIC {
        assert_eq!(count_ops(&after, op), 0, "{op} left:\n{}", text(&after));
    }
    assert_eq!(report.details["layers_rewritten"], 1, "{report:?}");
    let t = text(&after);
    (after, t)
}

/// The rewrite of `body`, checked against the original by execution.
fn rewrite_with(body: &str, options: &[(&str, Option<&str>)]) -> String {
    let before = parse(body);
    let (after, t) = dense(&before, options);
    assert_same_outputs(&before, &after, 1e-4, 1e-5);
    assert_matches(&before, &after, 1e-4, 1e-5);
    t
}

fn rewrite(body: &str) -> String {
    rewrite_with(body, &[])
}

#[test]
fn scatter_nd_loop_of_the_dynamo_exporter() {
    insta::assert_snapshot!(rewrite(&scatter_nd_layer(
        SMALL,
        Mlp::Silu,
        Weights::PerExpert,
        &[0, 1, 2]
    )));
}

#[test]
fn scatter_elements_loop_of_the_torchscript_exporter() {
    insta::assert_snapshot!(rewrite(&scatter_elements_layer(SMALL, &[0, 1, 2])));
}

#[test]
fn swiglu_experts_in_a_scatter_loop() {
    insta::assert_snapshot!(rewrite(&scatter_nd_layer(
        SMALL,
        Mlp::SwiGlu,
        Weights::PerExpert,
        &[0, 1, 2]
    )));
}

#[test]
fn if_per_expert_after_lower_if() {
    let before = parse(&if_layer(SMALL));
    assert_eq!(count_ops(&before, "If"), SMALL.experts);
    let mut lowered = before.clone();
    LowerIfPass
        .run(&mut lowered, &PassContext::default())
        .expect("lower-if runs");
    assert_eq!(count_ops(&lowered, "If"), 0, "{}", text(&lowered));
    let (after, t) = dense(&lowered, &[]);
    // The If form computes what the plain loop computes; the loop is the reference tract runs.
    let reference = parse(&scatter_nd_layer(
        SMALL,
        Mlp::Silu,
        Weights::PerExpert,
        &[0, 1, 2],
    ));
    assert_matches(&reference, &after, 1e-4, 1e-5);
    assert_matches(&lowered, &after, 1e-4, 1e-5);
    insta::assert_snapshot!(t);
}

#[test]
fn batched_experts_of_transformers() {
    insta::assert_snapshot!(rewrite(&batched_layer(SMALL, Mlp::SwiGlu, false)));
}

#[test]
fn batched_experts_stacked_into_one_matmul_per_projection() {
    let t = rewrite_with(
        &batched_layer(SMALL, Mlp::SwiGlu, false),
        &[("moe-stack-experts", None)],
    );
    insta::assert_snapshot!(t);
}

#[test]
fn grouped_experts_of_transformers() {
    insta::assert_snapshot!(rewrite(&grouped_layer(SMALL)));
}

#[test]
fn shared_expert_stays_beside_the_dense_experts() {
    let t = rewrite(&batched_layer(SMALL, Mlp::SwiGlu, true));
    // The shared expert and its sigmoid gate do not depend on the routing: left as they are.
    for kept in ["up_shared", "gate_shared", "down_shared", "shared_gate_w"] {
        assert!(t.contains(kept), "{kept} gone:\n{t}");
    }
    insta::assert_snapshot!(t);
}

#[test]
fn shared_expert_is_found_and_described() {
    let (_, report) = apply_with(&parse(&batched_layer(SMALL, Mlp::SwiGlu, true)), &[]);
    let layer = &report.details["layers"][0];
    assert_eq!(
        layer["shared_expert"],
        serde_json::json!({"intermediate": SMALL.inter, "gated": true}),
        "{layer}"
    );
    assert!(
        report.notes.iter().any(|n| n.contains(&format!(
            "a shared expert (intermediate {}, sigmoid-gated)",
            SMALL.inter
        ))),
        "{:?}",
        report.notes
    );
    let (_, report) = apply_with(&parse(&batched_layer(SMALL, Mlp::SwiGlu, false)), &[]);
    assert!(report.details["layers"][0]["shared_expert"].is_null());
}

#[test]
fn contrib_moe_with_fc3_runs_on_standard_ops() {
    let before = parse_ms(&contrib_layer(SMALL));
    let (after, t) = dense(&before, &[]);
    assert_eq!(count_ops(&after, "MoE"), 0);
    // com.microsoft.MoE runs nowhere in process; the same experts (fc1 = gate, fc3 = up) in
    // the scatter loop are the reference.
    let reference = parse(&scatter_nd_layer(
        SMALL,
        Mlp::SwiGlu,
        Weights::PerExpert,
        &[0, 1, 2],
    ));
    assert_matches(&reference, &after, 1e-4, 1e-5);
    insta::assert_snapshot!(t);
}

#[test]
fn baked_trace_without_the_missing_weights_is_refused() {
    let d = Dims {
        experts: 6,
        ..SMALL
    };
    let before = parse(&scatter_nd_layer(d, Mlp::Silu, Weights::PerExpert, &[0, 5]));
    let mut model = before.clone();
    let err = run_with(&mut model, &[]).expect_err("a baked trace is refused");
    let PassError::Refused(message) = &err else {
        panic!("not a refusal: {err}")
    };
    // The message names the layer, the experts present and the experts missing.
    assert!(message.contains("(TopK)"), "{message}");
    assert!(message.contains("experts [0, 5] only"), "{message}");
    assert!(
        message.contains("experts [1, 2, 3, 4] are missing"),
        "{message}"
    );
    assert!(message.ends_with("nothing written"), "{message}");
    // Nothing changed.
    assert_eq!(bytes(&model), bytes(&before));
    insta::assert_snapshot!(message);
}

#[test]
fn baked_trace_with_the_weight_stacks_is_rebuilt() {
    let d = Dims {
        experts: 6,
        ..SMALL
    };
    let before = parse(&scatter_nd_layer(d, Mlp::SwiGlu, Weights::Stacked, &[0, 5]));
    let (after, report) = apply_with(&before, &[]);
    assert!(report.declined.is_empty(), "{:?}", report.declined);
    assert_eq!(
        report.details["layers"][0]["rebuilt_experts"],
        serde_json::json!([1, 2, 3, 4]),
        "{report:?}"
    );
    for op in DYNAMIC {
        assert_eq!(count_ops(&after, op), 0, "{op} left");
    }
    // Exact against the complete layer, which the baked original is not.
    let complete = parse(&scatter_nd_layer(
        d,
        Mlp::SwiGlu,
        Weights::PerExpert,
        &[0, 1, 2, 3, 4, 5],
    ));
    assert_matches(&complete, &after, 1e-4, 1e-5);
    insta::assert_snapshot!(text(&after));
}

#[test]
fn a_complete_loop_with_stacked_weights_is_never_refused() {
    let d = Dims {
        experts: 6,
        ..SMALL
    };
    let before = parse(&scatter_nd_layer(
        d,
        Mlp::Silu,
        Weights::Stacked,
        &[0, 1, 2, 3, 4, 5],
    ));
    let (after, report) = apply_with(&before, &[]);
    assert_eq!(
        report.details["layers"][0]["rebuilt_experts"],
        serde_json::json!([])
    );
    assert_matches(&before, &after, 1e-4, 1e-5);
}

#[test]
fn layers_over_the_flops_limit_are_declined_with_the_reason() {
    let body = batched_layer(SMALL, Mlp::Silu, false);
    let before = parse(&body);
    let (after, report) = apply_with(&before, &[("moe-max-flops-ratio", Some("1.2"))]);
    assert_eq!(bytes(&after), bytes(&before));
    assert_eq!(report.declined.len(), 1, "{report:?}");
    assert!(
        report.declined[0].reason.contains("1.500 times the sparse"),
        "{}",
        report.declined[0].reason
    );
}

/// A layer whose dense form fails half-way through (stacked `Clip` bounds that differ between
/// experts, found only once the nodes before them are written) is declined with the reason, and
/// what was written of it is rolled back: the model is as it was.
#[test]
fn a_layer_that_fails_half_way_is_declined_and_rolled_back() {
    let mut body = scatter_nd_layer(SMALL, Mlp::Silu, Weights::PerExpert, &[0, 1, 2]);
    for e in 0..SMALL.experts {
        let gemm = format!("   o_{e} = Gemm <transB: int = 1> (a_{e}, down_{e})");
        assert!(body.contains(&gemm), "{body}");
        body = body.replace(
            &gemm,
            &format!(
                "   c_{e} = Clip (a_{e}, lo_{e}, hi_{e})\n   o_{e} = Gemm <transB: int = 1> (c_{e}, down_{e})"
            ),
        );
        let id = format!("int64 id_{e} = {{{e}}}");
        body = body.replace(
            &id,
            &format!(
                "{id}, float lo_{e} = {{-0.{}}}, float hi_{e} = {{0.{}}}",
                e + 1,
                e + 2
            ),
        );
    }
    let before = parse(&body);
    // The same layer unstacked is rewritten: the experts are read, Clip included.
    dense(&before, &[]);
    let (after, report) = apply_with(&before, &[("moe-stack-experts", None)]);
    assert_eq!(report.declined.len(), 1, "{report:?}");
    assert!(
        report.declined[0].reason.contains("Clip bounds differ"),
        "{}",
        report.declined[0].reason
    );
    assert_eq!(report.details["layers_rewritten"], 0, "{report:?}");
    assert_eq!(bytes(&after), bytes(&before), "{}", text(&after));
}

#[test]
fn info_lists_the_layer() {
    let mut model = parse(&batched_layer(SMALL, Mlp::SwiGlu, false));
    let survey = onnx_rewrite_moe_dense::MoeDensePass
        .survey(&mut model)
        .expect("a layer");
    insta::assert_snapshot!(survey);
    let d = Dims {
        experts: 6,
        ..SMALL
    };
    let mut baked = parse(&scatter_nd_layer(d, Mlp::Silu, Weights::PerExpert, &[0, 5]));
    let survey = onnx_rewrite_moe_dense::MoeDensePass
        .survey(&mut baked)
        .expect("a layer");
    assert!(
        survey.contains("BAKED") && survey.contains("apply refuses"),
        "{survey}"
    );
}

/// `--trace-rules`: a layer declined is a line of the trace too.
#[test]
fn a_decline_is_in_the_trace() {
    let before = parse(&batched_layer(SMALL, Mlp::Silu, false));
    onnx_rewrite_testkit::assert_declines_traced(
        &onnx_rewrite_moe_dense::MoeDensePass,
        &before,
        &[("moe-max-flops-ratio", Some("1.2"))],
    );
}
