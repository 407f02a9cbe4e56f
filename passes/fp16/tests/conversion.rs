//! The fp16 pass on small hand-written graphs, before → after in ONNX text syntax: each
//! snapshot is checked for idempotence (testkit's `apply`) and, where tract runs every op of
//! the result, by execution against the float32 model at the fp16 row of the tolerance table.

use onnx_rewrite_fp16::Fp16Pass;
use onnx_rewrite_ir::Model;
use onnx_rewrite_pass::{Pass, PassContext, PassOptions, PassReport};
use onnx_rewrite_testkit::{apply, assert_same_outputs, count_ops, model, text};

const FP16_TOL: f64 = 2e-2;

fn header(opset: u32) -> String {
    format!(r#"<ir_version: 10, opset_import: ["" : {opset}]>"#)
}

/// Default options: applies the pass (idempotence checked) and returns the model and report.
fn convert(opset: u32, body: &str) -> (Model, Model, PassReport) {
    let before = model(&format!("{}\n{body}", header(opset)));
    let (after, report) = apply(&Fp16Pass, &before);
    (before, after, report)
}

/// With pass options (flag name without `--`, value): run twice, the second run a no-op.
fn convert_with(opset: u32, body: &str, flags: &[(&str, &str)]) -> (Model, Model, PassReport) {
    let before = model(&format!("{}\n{body}", header(opset)));
    let mut options = PassOptions::default();
    for (flag, value) in flags {
        options.set(flag, Some((*value).to_owned()));
    }
    let cx = PassContext {
        options,
        ..PassContext::default()
    };
    let mut after = before.clone();
    let report = Fp16Pass.run(&mut after, &cx).expect("fp16 runs");
    after.check().expect("IR invariants hold");
    let mut again = after.clone();
    Fp16Pass.run(&mut again, &cx).expect("fp16 runs again");
    assert_eq!(text(&again), text(&after), "idempotent with {flags:?}");
    (before, after, report)
}

fn assert_has(model_text: &str, line: &str) {
    assert!(model_text.contains(line), "no `{line}` in:\n{model_text}");
}

fn casts_to(model_text: &str, to: u32) -> usize {
    model_text
        .matches(&format!("Cast <to: int = {to}>"))
        .count()
}

#[test]
fn shared_type_parameter_agrees_with_one_cast_per_tensor() {
    // `x` (kept float32 at the boundary) feeds three float16 readers: one Cast, shared.
    // `Add`'s two inputs share T: both float16, no mixed node.
    let (before, after, _) = convert(
        17,
        r#"g (float[2,3] x) => (float[2,3] y) <float[3] b = {0.5, -1, 2}> {
   [a] t = Add (x, b)
   [m] u = Mul (x, t)
   [s] v = Sub (u, x)
   [r] y = Relu (v)
}"#,
    );
    let t = text(&after);
    assert_eq!(casts_to(&t, 10), 1, "{t}");
    assert_eq!(casts_to(&t, 1), 1, "{t}");
    assert_same_outputs(&before, &after, FP16_TOL, FP16_TOL);
    insta::assert_snapshot!(t);
}

#[test]
fn initializer_read_at_both_precisions_is_duplicated() {
    // `w` is read by a blocked (float32) node and a float16 one: the float32 reader keeps the
    // original bits, the float16 reader gets a converted copy.
    let (before, after, report) = convert_with(
        17,
        r#"g (float[2,3] x) => (float[2,3] y, float[2,3] z) <float[3] w = {0.1, 0.2, 0.3}> {
   [keep] y = Add (x, w)
   [low] z = Mul (x, w)
}"#,
        &[("fp16-block-node", "keep")],
    );
    assert_eq!(report.details["initializers_copied"], 1, "{report:?}");
    let t = text(&after);
    assert!(
        t.contains("float[3] w = {0.1,0.2,0.3}") || t.contains("float[3] w ="),
        "{t}"
    );
    assert!(t.contains("float16[3]"), "{t}");
    assert_same_outputs(&before, &after, FP16_TOL, FP16_TOL);
    insta::assert_snapshot!(t);
}

#[test]
fn attribute_typed_outputs_follow_their_readers() {
    // Constant(value_float), ConstantOfShape without `value` (float32 0), Cast(to=FLOAT) of an
    // integer: all feed float16 arithmetic, so each produces float16 itself (no Cast after).
    let (before, after, _) = convert(
        17,
        r#"g (float[2,3] x, int64[2,3] i) => (float[2,3] y) {
   [k] c = Constant <value_float: float = 1.5> ()
   [shape] s = Shape (x)
   [zeros] z = ConstantOfShape (s)
   [ci] f = Cast <to: int = 1> (i)
   [a] t = Add (x, c)
   [b] u = Add (t, z)
   [m] v = Mul (u, f)
   [r] y = Relu (v)
}"#,
    );
    let t = text(&after);
    assert!(!t.contains("value_float"), "{t}");
    assert_same_outputs(&before, &after, FP16_TOL, FP16_TOL);
    insta::assert_snapshot!(t);
}

#[test]
fn range_stays_float32_before_opset_27() {
    // Range has no float16 type before opset 27: it stays float32 and is cast where it meets
    // float16 data. Its float limit comes from a size, so the chain is integer-derived too.
    let (before, after, report) = convert(
        17,
        r#"g (float[5] x) => (float[5] y) <float start = {0}, float delta = {1}> {
   [shape] s = Shape (x)
   [cast] n = Cast <to: int = 1> (s)
   [sq] lim = Squeeze (n)
   [range] r = Range (start, lim, delta)
   [add] y = Add (x, r)
}"#,
    );
    let t = text(&after);
    assert!(t.contains("Range"), "{t}");
    assert!(
        report.details["kept_float32"].as_object().is_some(),
        "{report:?}"
    );
    assert_same_outputs(&before, &after, FP16_TOL, FP16_TOL);
    insta::assert_snapshot!(t);
}

#[test]
fn resize_scales_stay_float32() {
    let (_, after, _) = convert(
        13,
        r#"g (float[1,1,2,2] x) => (float[1,1,4,4] y) <float[4] scales = {1, 1, 2, 2}> {
   [pre] h = Relu (x)
   [resize] r = Resize <mode: string = "nearest"> (h, , scales)
   [post] y = Relu (r)
}"#,
    );
    let t = text(&after);
    assert!(t.contains("float[4] scales"), "scales stay float32: {t}");
    insta::assert_snapshot!(t);
}

#[test]
fn layer_normalization_keeps_float32_statistics() {
    let (_, after, _) = convert(
        17,
        r#"g (float[2,4] x) => (float[2,4] y) <float[4] scale = {1, 1, 1, 1}, float[4] bias = {0, 0, 0, 0}> {
   [ln] n = LayerNormalization <axis: int = -1, epsilon: float = 1e-5> (x, scale, bias)
   [relu] y = Relu (n)
}"#,
    );
    let t = text(&after);
    // stash_type stays 1 (float32 statistics) whatever X's type.
    assert!(!t.contains("stash_type: int = 10"), "{t}");
    insta::assert_snapshot!(t);
}

#[test]
fn if_branches_agree_and_casts_stay_in_their_scope() {
    // Both branches must produce the If's output type; a blocked node inside a branch gets
    // its Casts inside that branch, not in the main graph.
    let body = r#"g (bool c, float[2,3] x) => (float[2,3] y) {
   [pre] h = Relu (x)
   [if] o = If (c) <then_branch: graph = tg () => (float[2,3] tout) {
      [t_neg] tout = Neg (h)
   }, else_branch: graph = eg () => (float[2,3] eout) {
      [e_blocked] e1 = Sigmoid (h)
      [e_mul] eout = Mul (e1, h)
   }>
   [post] y = Abs (o)
}"#;
    let (before, after, _) = convert_with(17, body, &[("fp16-block-node", "e_blocked")]);
    let t = text(&after);
    assert_eq!(count_ops(&after, "If"), 1);
    assert_same_outputs(&before, &after, FP16_TOL, FP16_TOL);
    insta::assert_snapshot!(t);
}

/// A Llama-style rotary block: position ids → Cast → angle MatMul with inv_freq → Cos/Sin,
/// which meet q at Mul. θ = 5e5 would overflow float16 (never clamped), and positions past
/// 2048 are not exact in float16.
const ROTARY: &str = r#"g (int64[1,S] pos, float[1,S,4] q) => (float[1,S,4] y) <float[2,1] inv_freq = {1, 0.002}, float theta = {500000}> {
   [unsq] p3 = Unsqueeze (pos, axes)
   [axes_c] axes = Constant <value: tensor = int64[1] {1}> ()
   [castp] pf = Cast <to: int = 1> (p3)
   [freqs] f = MatMul (inv_freq, pf)
   [tr] ft = Transpose <perm: ints = [0, 2, 1]> (f)
   [cat] emb = Concat <axis: int = -1> (ft, ft)
   [cos] c = Cos (emb)
   [sin] s = Sin (emb)
   [qc] a = Mul (q, c)
   [qs] b = Mul (q, s)
   [sum] y = Add (a, b)
}"#;

#[test]
fn rotary_chain_stays_float32_cos_and_sin_cast_where_they_meet_q() {
    let body = ROTARY.replace(
        "[unsq] p3 = Unsqueeze (pos, axes)\n   [axes_c] axes = Constant <value: tensor = int64[1] {1}> ()",
        "[axes_c] axes = Constant <value: tensor = int64[1] {1}> ()\n   [unsq] p3 = Unsqueeze (pos, axes)",
    );
    let (_, after, report) = convert(17, &body);
    let t = text(&after);
    let kept = &report.details["kept_float32"];
    assert!(kept["rotary"].as_u64().unwrap_or(0) >= 2, "{report:?}");
    // inv_freq and the position Cast stay float32.
    assert!(t.contains("float[2,1] inv_freq"), "{t}");
    assert!(t.contains("Cast <to: int = 1> (p3)"), "{t}");
    // cos and sin each cast once, to float16, where they meet q.
    assert_eq!(casts_to(&t, 10), 3, "q, cos, sin: {t}");
    insta::assert_snapshot!(t);
}

#[test]
fn op_block_list_and_node_block_list() {
    let body = r#"g (float[2,3] x) => (float[2,3] y) {
   [e] a = Exp (x)
   [t] b = Tanh (a)
   [s] c = Sigmoid (b)
   [y] y = Relu (c)
}"#;
    let (before, after, report) = convert_with(
        17,
        body,
        &[("fp16-block-op", "Exp"), ("fp16-block-node", "s")],
    );
    let kept = &report.details["kept_float32"];
    assert_eq!(kept["op block list"], 1, "{report:?}");
    assert_eq!(kept["node block list"], 1, "{report:?}");
    assert_same_outputs(&before, &after, FP16_TOL, FP16_TOL);
    insta::assert_snapshot!(text(&after));
}

#[test]
fn default_block_list_entry_can_be_removed() {
    let body = r#"g (float[2,3,4,4] x) => (float[2,3,4,4] y) {
   [mvn] m = MeanVarianceNormalization (x)
   [y] y = Relu (m)
}"#;
    let (_, kept, report) = convert(13, body);
    assert_eq!(
        report.details["kept_float32"]["op block list"], 1,
        "{report:?}"
    );
    let (_, removed, _) =
        convert_with(13, body, &[("fp16-block-op", "-MeanVarianceNormalization")]);
    assert_ne!(text(&kept), text(&removed));
}

#[test]
fn keep_io_types_off_makes_the_interface_float16() {
    let body = r#"g (float[2,3] x) => (float[2,3] y) {
   [r] y = Relu (x)
}"#;
    let (_, on, _) = convert(17, body);
    let on = text(&on);
    assert!(on.contains("(float[2,3] x) => (float[2,3] y)"), "{on}");
    let (_, off, _) = convert_with(17, body, &[("fp16-keep-io-types", "false")]);
    let off = text(&off);
    assert!(
        off.contains("(float16[2,3] x) => (float16[2,3] y)"),
        "{off}"
    );
    assert_eq!(casts_to(&off, 10) + casts_to(&off, 1), 0, "{off}");
    insta::assert_snapshot!(off);
}

#[test]
fn bfloat16_target() {
    let body = r#"g (float[2,3] x) => (float[2,3] y) <float[3] w = {0.5, 0.25, 2}> {
   [m] a = Mul (x, w)
   [r] y = Relu (a)
}"#;
    // onnxruntime has no fallback for a bfloat16 node without a kernel, so bfloat16 is checked
    // against an EP's table; CUDA has bfloat16 Mul and Relu.
    let (_, after, report) = convert_with(
        17,
        body,
        &[("fp16-type", "bfloat16"), ("fp16-target", "cuda")],
    );
    assert_eq!(report.details["type"], "bfloat16");
    let t = text(&after);
    assert!(t.contains("bfloat16[3] w"), "{t}");
    assert_eq!(casts_to(&t, 16), 1, "{t}");
    insta::assert_snapshot!(t);
}

#[test]
fn constant_outside_float16_range_keeps_its_reader_float32() {
    // 5e5 > 65504: never clamped, the Mul stays float32.
    let (before, after, report) = convert(
        17,
        r#"g (float[2,3] x) => (float[2,3] y) <float big = {500000}> {
   [scale] a = Mul (x, big)
   [div] y = Div (a, big)
}"#,
    );
    let kept = &report.details["kept_float32"];
    assert!(
        kept["constant out of range"].as_u64().unwrap_or(0) >= 1,
        "{report:?}"
    );
    let t = text(&after);
    assert!(
        !t.contains("65504") && !t.contains("10000"),
        "never clamped: {t}"
    );
    assert!(t.contains("float big"), "{t}");
    assert_same_outputs(&before, &after, FP16_TOL, FP16_TOL);
}

#[test]
fn epsilon_that_flushes_to_zero_is_raised_where_it_guards_and_kept_elsewhere() {
    // `d` is zero for every input: float32 gives 0 / sqrt(0 + 1e-9) = 0. Flushed to zero (or
    // added in float32 and rounded back to float16) the guard is lost and the result is
    // 0 / 0 = NaN, which the execution check refuses. Raised to float16's least positive value
    // it still guards: 0 / sqrt(6e-8) = 0.
    let (before, after, report) = convert(
        17,
        r#"g (float[2,3] x) => (float[2,3] y, float[2,3] z) <float eps = {1e-9}> {
   [centre] d = Sub (x, x)
   [spread] s = Abs (d)
   [guard] g = Add (s, eps)
   [root] r = Sqrt (g)
   [norm] y = Div (d, r)
   [tiny] t = Constant <value_float: float = 1e-12> ()
   [floor] f = Max (s, t)
   [root2] r2 = Sqrt (f)
   [norm2] z = Div (d, r2)
}"#,
    );
    assert_same_outputs(&before, &after, FP16_TOL, FP16_TOL);
    let raised = report.details["guards_raised"].as_array().expect("a list");
    assert_eq!(raised.len(), 2, "{report:?}");
    assert_eq!(report.details["nodes_now_low_precision"].as_u64(), Some(9));
    let eps = after
        .graph(after.main())
        .initializers()
        .iter()
        .filter_map(|v| after.value(*v).initializer())
        .find(|t| t.name() == "eps")
        .expect("eps is still an initializer");
    assert_eq!(
        eps.raw_data.as_deref(),
        Some(&[1u8, 0][..]),
        "the least positive float16"
    );

    // Read by a Mul as well, the value is a scale, not a guard: its readers stay float32.
    let (_, after, report) = convert(
        17,
        r#"g (float[2,3] x) => (float[2,3] y) <float eps = {1e-9}> {
   [guard] g = Add (x, eps)
   [scale] y = Mul (g, eps)
}"#,
    );
    assert!(
        report.details["guards_raised"]
            .as_array()
            .is_some_and(|a| a.is_empty())
    );
    assert_eq!(
        report.details["kept_float32"]["constant out of range"].as_u64(),
        Some(2),
        "{}",
        text(&after)
    );
}

#[test]
fn follower_read_only_in_float32_moves_low_values_and_is_cast_after() {
    // `r` is low (the MatMul reads it low); the Identity before the float32 output moves it in
    // float16 and one Cast follows: the same values as casting before it, half the bytes.
    let (before, after, _) = convert(
        17,
        r#"g (double[2,3] d, float[3,2] w) => (float[2,2] y, float[2,3] z) {
   [narrow] s = Cast <to: int = 1> (d)
   [relu] r = Relu (s)
   [mm] y = MatMul (r, w)
   [copy] z = Identity (r)
}"#,
    );
    let t = text(&after);
    assert_has(&t, "[copy] z_fp16 = Identity (r)");
    assert_has(&t, "z = Cast <to: int = 1> (z_fp16)");
    assert_same_outputs(&before, &after, FP16_TOL, FP16_TOL);
}

#[test]
fn attention_scores_output_stays_float32_only_where_it_shows_masked_scores() {
    // Modes 1 and 2 show the scores after masking: the ones the op masks itself (here
    // `is_causal`) are float32's lowest value, which float16 cannot hold. Without a mask of
    // its own (no mask, or a float bias) nothing is masked; mode 0 is the raw QK product and
    // mode 3 softmax probabilities. The corpus's `test_attention_*qk_matmul*` cases check the
    // converted nodes by execution.
    let graph = |mode: i64, causal: i64| {
        format!(
            r#"g (float[1,2,3,4] q, float[1,2,3,4] k, float[1,2,3,4] v) => (float[1,2,3,4] y, float[1,2,3,3] s) {{
   [attn] y, , , s = Attention <qk_matmul_output_mode: int = {mode}, is_causal: int = {causal}> (q, k, v)
}}"#
        )
    };
    for causal in [0, 1] {
        for mode in 0..4 {
            let kept = causal == 1 && (mode == 1 || mode == 2);
            let (_, after, report) = convert(23, &graph(mode, causal));
            let reasons = &report.details["kept_float32"];
            assert_eq!(
                reasons["constant out of range"].as_u64().unwrap_or(0) == 1,
                kept,
                "mode {mode}, is_causal {causal}: {report:?}"
            );
            let low = report.details["nodes_now_low_precision"].as_u64();
            assert_eq!(
                low == Some(1),
                !kept,
                "mode {mode}, is_causal {causal}: {}",
                text(&after)
            );
        }
    }
}

#[test]
fn symbolic_dims_survive_conversion_and_run() {
    // `N` is bound to 1, 3 and 5 by the execution check; the declared shapes stay symbolic.
    let (before, after, _) = convert(
        17,
        r#"g (float[N,3] x) => (float[N,3] y) <float[3] b = {0.5, -1, 2}> {
   [a] t = Add (x, b)
   [m] u = Mul (x, t)
   [r] y = Relu (u)
}"#,
    );
    let t = text(&after);
    assert!(
        t.contains("float[N,3] x") && t.contains("float[N,3] y"),
        "{t}"
    );
    assert_same_outputs(&before, &after, FP16_TOL, FP16_TOL);
}

#[test]
fn scatter_reductions_that_select_convert_where_onnxruntime_runs_them() {
    // `max` selects (exact in float16) and onnxruntime's CPU EP runs it for ScatterElements in
    // float16; `add` accumulates; bfloat16 has no kernel for either. The corpus's
    // `test_scatter_elements_with_reduction_*` cases check the converted nodes by execution.
    let graph = |reduction: &str| {
        format!(
            r#"g (float[2,3] x, float[2,2] u) => (float[2,3] y) <int64[2,2] i = {{0, 2, 1, 0}}> {{
   [scatter] y = ScatterElements <axis: int = 1, reduction: string = "{reduction}"> (x, i, u)
}}"#
        )
    };
    for (reduction, flags, converts) in [
        ("max", &[][..], true),
        ("min", &[][..], true),
        ("add", &[][..], false),
        ("max", &[("fp16-type", "bfloat16")][..], false),
    ] {
        let (_, after, report) = convert_with(18, &graph(reduction), flags);
        let low = report.details["nodes_now_low_precision"].as_u64();
        assert_eq!(
            low == Some(1),
            converts,
            "{reduction} {flags:?}: {}",
            text(&after)
        );
    }
}

#[test]
fn large_weights_are_converted_as_the_model_is_saved() {
    // A 4 MiB float16 weight (2 Mi elements) is left pending when the caller allows it: the
    // file written holds the same bytes as the conversion done in memory.
    let mut before = model(&format!(
        "{}\n{}",
        header(17),
        r#"g (float[1,1024] x) => (float[1,2048] y) <float[1,1] w = {0.5}> {
   [matmul] y = MatMul (x, w)
}"#
    ));
    let w = before.graph(before.main()).initializers()[0];
    let values: Vec<u8> = (0..1024 * 2048)
        .flat_map(|i| ((i % 4099) as f32 * 0.37 - 700.0).to_le_bytes())
        .collect();
    let mut tensor = before.value(w).initializer().expect("w").clone();
    tensor.dims = vec![1024, 2048];
    tensor.raw_data = Some(values.into());
    tensor.float_data.clear();
    before.set_initializer(w, tensor);

    let mut eager = before.clone();
    Fp16Pass
        .run(&mut eager, &PassContext::default())
        .expect("fp16 runs");
    assert!(!eager.has_pending_payloads());
    let mut lazy = before.clone();
    let cx = PassContext {
        pending_payloads: true,
        ..PassContext::default()
    };
    let report = Fp16Pass.run(&mut lazy, &cx).expect("fp16 runs");
    assert!(lazy.has_pending_payloads());
    assert_eq!(report.details["bytes_converted"], 1024 * 2048 * 2);

    let want = onnx_rewrite_ir::save::to_bytes(&eager).expect("serializes");
    let dir = tempfile::tempdir().expect("temp dir");
    let path = dir.path().join("lazy.onnx");
    onnx_rewrite_ir::save::save_file(&lazy, &path, &Default::default()).expect("saves");
    assert!(
        std::fs::read(&path).expect("written") == want,
        "streamed file"
    );
    assert!(
        onnx_rewrite_ir::save::to_bytes(&lazy).expect("serializes") == want,
        "in memory"
    );
}

/// `--trace-rules`: a node kept float32 because nothing is known of its op (a custom domain)
/// is a decline, and a line of the trace too.
#[test]
fn a_decline_is_in_the_trace() {
    let before = model(&format!(
        "<ir_version: 10, opset_import: [\"\" : 17, \"custom\" : 1]>\n{}",
        r#"g (float[2,3] x) => (float[2,3] y) {
   [relu] r = Relu (x)
   [mystery] y = custom.Mystery (r)
}"#
    ));
    onnx_rewrite_testkit::assert_declines_traced(&Fp16Pass, &before, &[]);
}

/// A value an option cannot take is a typed error naming the flag, not a message to parse.
#[test]
fn a_bad_option_value_is_a_typed_error() {
    let mut before = model(&format!(
        "{}\ng (float[2] x) => (float[2] y) {{\n   y = Relu (x)\n}}",
        header(17)
    ));
    let mut options = PassOptions::default();
    options.set("fp16-type", Some("float8".into()));
    let cx = PassContext {
        options,
        ..PassContext::default()
    };
    let err = Fp16Pass.run(&mut before, &cx).expect_err("refused");
    let onnx_rewrite_pass::PassError::Option(bad) = &err else {
        panic!("not an option error: {err}");
    };
    assert_eq!((bad.flag, bad.got.as_str()), ("fp16-type", "float8"));
    assert_eq!(
        err.to_string(),
        "--fp16-type: expected float16 or bfloat16, got 'float8'"
    );
}
