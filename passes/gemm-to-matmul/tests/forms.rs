//! Every Gemm form, before → after in ONNX text syntax, each checked by execution (tract) and
//! for idempotence.

use onnx_rewrite_gemm_to_matmul::GemmToMatmulPass;
use onnx_rewrite_testkit::{apply, assert_same_outputs, count_ops, model, text};

const HEADER: &str = r#"<ir_version: 10, opset_import: ["" : 13]>"#;

/// Applies the pass to `body` (a graph), checks it computes the same and leaves no Gemm, and
/// returns the text after.
fn rewrite(body: &str) -> String {
    let before = model(&format!("{HEADER}\n{body}"));
    let (after, report) = apply(&GemmToMatmulPass, &before);
    assert_eq!(count_ops(&after, "Gemm"), 0, "{report:?}");
    assert!(report.declined.is_empty(), "{:?}", report.declined);
    assert_same_outputs(&before, &after, 1e-5, 1e-6);
    text(&after)
}

#[test]
fn plain_gemm_with_bias_vector() {
    insta::assert_snapshot!(rewrite(
        r#"g (float[M,3] a) => (float[M,2] y) <float[3,2] w = {1,2,3,4,5,6}, float[2] b = {0.5,-1}> {
   [fc] y = Gemm (a, w, b)
}"#
    ));
}

#[test]
fn trans_b_on_a_constant_folds_into_a_new_initializer() {
    insta::assert_snapshot!(rewrite(
        r#"g (float[M,3] a) => (float[M,2] y) <float[2,3] w = {1,2,3,4,5,6}, float[1,2] b = {0.5,-1}> {
   [fc] y = Gemm <transB: int = 1> (a, w, b)
}"#
    ));
}

#[test]
fn trans_b_on_a_runtime_operand_becomes_a_transpose() {
    insta::assert_snapshot!(rewrite(
        r#"g (float[M,3] a, float[2,3] w) => (float[M,2] y) {
   [fc] y = Gemm <transB: int = 1> (a, w)
}"#
    ));
}

#[test]
fn trans_a_and_alpha_and_beta_on_runtime_operands() {
    insta::assert_snapshot!(rewrite(
        r#"g (float[3,M] a, float[3,2] w, float[M,2] c) => (float[M,2] y) {
   [fc] y = Gemm <transA: int = 1, alpha: float = 0.5, beta: float = 2.0> (a, w, c)
}"#
    ));
}

#[test]
fn alpha_and_beta_fold_into_constants() {
    insta::assert_snapshot!(rewrite(
        r#"g (float[M,3] a) => (float[M,2] y) <float[2,3] w = {1,2,3,4,5,6}, float[2] b = {0.5,-1}> {
   [fc] y = Gemm <transB: int = 1, alpha: float = 2.0, beta: float = 0.25> (a, w, b)
}"#
    ));
}

#[test]
fn every_bias_shape_gemm_allows() {
    for (c_type, c_value) in [
        ("float", "{3}"),
        ("float[1]", "{3}"),
        ("float[2]", "{1,2}"),
        ("float[1,2]", "{1,2}"),
    ] {
        let body = format!(
            "g (float[4,3] a) => (float[4,2] y) <float[3,2] w = {{1,2,3,4,5,6}}, {c_type} c = {c_value}> {{\n   [fc] y = Gemm (a, w, c)\n}}"
        );
        assert!(rewrite(&body).contains("Add"), "{c_type}");
    }
    for c_shape in ["[4,1]", "[4,2]"] {
        let body = format!(
            "g (float[4,3] a, float{c_shape} c) => (float[4,2] y) <float[3,2] w = {{1,2,3,4,5,6}}> {{\n   [fc] y = Gemm (a, w, c)\n}}"
        );
        assert!(rewrite(&body).contains("Add"), "{c_shape}");
    }
}

#[test]
fn beta_zero_drops_c_and_no_c_means_no_add() {
    let zero = rewrite(
        "g (float[M,3] a, float[M,2] c) => (float[M,2] y) <float[3,2] w = {1,2,3,4,5,6}> {\n   [fc] y = Gemm <beta: float = 0.0> (a, w, c)\n}",
    );
    assert!(!zero.contains("Add"), "{zero}");
    let absent = rewrite(
        "g (float[M,3] a) => (float[M,2] y) <float[3,2] w = {1,2,3,4,5,6}> {\n   [fc] y = Gemm (a, w)\n}",
    );
    assert!(!absent.contains("Add"), "{absent}");
}

#[test]
fn a_tied_weight_is_copied_only_because_it_must_be_transposed() {
    // The embedding table is also the lm_head weight (transB = 1): the Gather keeps the table,
    // the MatMul gets a transposed copy, and the report counts the bytes added.
    let source = format!(
        "{HEADER}\ng (int64[T] ids) => (float[T,4] logits) <float[4,3] table = {{1,2,3,4,5,6,7,8,9,10,11,12}}> {{
   [embed] h = Gather (table, ids)
   [lm_head] logits = Gemm <transB: int = 1> (h, table)
}}"
    );
    let before = model(&source);
    let (after, report) = apply(&GemmToMatmulPass, &before);
    assert_eq!(report.details["bytes_added"], 48);
    assert_eq!(report.details["bytes_removed"], 0);
    assert_eq!(count_ops(&after, "Gemm"), 0);
    insta::assert_snapshot!(text(&after));
    let untied = model(&format!(
        "{HEADER}\ng (float[T,3] h) => (float[T,4] logits) <float[4,3] w = {{1,2,3,4,5,6,7,8,9,10,11,12}}> {{\n   [lm_head] logits = Gemm <transB: int = 1> (h, w)\n}}"
    ));
    let (_, report) = apply(&GemmToMatmulPass, &untied);
    assert_eq!(
        (
            report.details["bytes_added"].as_u64(),
            report.details["bytes_removed"].as_u64()
        ),
        (Some(48), Some(48)),
        "the replaced weight goes"
    );
}

#[test]
fn gemms_inside_subgraphs_are_rewritten() {
    insta::assert_snapshot!(rewrite(
        r#"g (bool cond, float[2,3] a) => (float[2,2] y) <float[3,2] w = {1,2,3,4,5,6}> {
   [branch] y = If (cond) <then_branch: graph = then_g () => (float[2,2] t) {
      [inner] t = Gemm (a, w)
   }, else_branch: graph = else_g () => (float[2,2] e) {
      [inner_2] e = Gemm <alpha: float = 3.0> (a, w)
   }>
}"#
    ));
}

#[test]
fn unsafe_forms_are_declined_with_a_reason() {
    let source = format!(
        "{HEADER}\ng (int32[2,3] a, int32[3,2] w) => (int32[2,2] y) {{\n   [int_gemm] y = Gemm <alpha: float = 2.0> (a, w)\n}}"
    );
    let before = model(&source);
    let (after, report) = apply(&GemmToMatmulPass, &before);
    assert_eq!(count_ops(&after, "Gemm"), 1);
    assert_eq!(report.declined.len(), 1);
    assert!(
        report.declined[0].node.contains("int_gemm")
            && report.declined[0].reason.contains("integer scaling"),
        "{:?}",
        report.declined
    );
    let old = model(
        "<ir_version: 3, opset_import: [\"\" : 6]>\ng (float[2,3] a, float[3,2] w) => (float[2,2] y) {\n   [old] y = Gemm (a, w)\n}",
    );
    let (_, report) = apply(&GemmToMatmulPass, &old);
    assert!(
        report.declined[0].reason.contains("opset 6"),
        "{:?}",
        report.declined
    );
}

#[test]
fn a_replaced_value_with_value_info_passes_its_name_on() {
    // `h` is annotated; the MatMul that now computes it takes its name, not `h_1`.
    let after = rewrite(
        r#"g (float[M,3] a) => (float[M,2] y) <float[3,2] w = {1,2,3,4,5,6}, float[M,2] h> {
   [fc] h = Gemm (a, w)
   [act] y = Relu (h)
}"#,
    );
    assert!(after.contains("h = MatMul (a, w)"), "{after}");
    assert!(!after.contains("h_1"), "{after}");
}

/// `--trace-rules`: the decline is a line of the trace too.
#[test]
fn a_decline_is_in_the_trace() {
    let source = format!(
        "{HEADER}\ng (int32[2,3] a, int32[3,2] w) => (int32[2,2] y) {{\n   [int_gemm] y = Gemm <alpha: float = 2.0> (a, w)\n}}"
    );
    onnx_rewrite_testkit::assert_declines_traced(&GemmToMatmulPass, &model(&source), &[]);
}
