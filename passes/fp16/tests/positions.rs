//! Floats computed from integer positions and sizes: float32 only where their exact value is
//! read back (an integer, a rotary angle), float16 where they only meet data or make a small
//! angle (a window function's).

use onnx_rewrite_fp16::Fp16Pass;
use onnx_rewrite_ir::{Model, ValueDef};
use onnx_rewrite_pass::PassReport;
use onnx_rewrite_testkit::{apply, assert_same_outputs, assert_same_outputs_on, model, text};

const FP16_TOL: f64 = 2e-2;

fn convert(body: &str) -> (Model, Model, PassReport) {
    let before = model(&format!(
        "<ir_version: 10, opset_import: [\"\" : 17]>\n{body}"
    ));
    let (after, report) = apply(&Fp16Pass, &before);
    (before, after, report)
}

/// Asserts that the model text holds each of `lines`.
fn assert_has(text: &str, lines: &[&str]) {
    for line in lines {
        assert!(text.contains(line), "no `{line}` in\n{text}");
    }
}

fn kept(report: &PassReport, reason: &str) -> u64 {
    report.details["kept_float32"][reason].as_u64().unwrap_or(0)
}

/// `cos(k · n · 2π/N)` over `n` in `Range(0, N)`, as the expanded window functions compute it,
/// with the angle scaled by `k` (the steps `n` have a declared type).
fn window(k: f32) -> String {
    format!(
        r#"g (int64 size) => (float[N] y) <float zero = {{0}}, float one = {{1}}, float tau = {{6.2831855}}, float k = {{{k}}}, float half = {{0.5}}, float[N] n> {{
   [size_f] nf = Cast <to: int = 1> (size)
   [range] n = Range (zero, nf, one)
   [step] d = Div (tau, nf)
   [angle] a = Mul (n, d)
   [scaled] b = Mul (a, k)
   [cos] c = Cos (b)
   [out] y = Mul (c, half)
}}"#
    )
}

#[test]
fn a_window_angle_is_small_and_converts() {
    // n ≤ N − 1, so n · 2π/N · 2 < 4π for every N: float16 holds it to ~0.02 rad.
    let (_, after, report) = convert(&window(2.0));
    assert_eq!(kept(&report, "rotary"), 0, "{report:?}");
    assert_eq!(report.details["small_angles_converted"], 1, "{report:?}");
    let t = text(&after);
    // The steps are counted in integers (exact at every length) and cast to float16 where
    // they meet the angle.
    assert_has(
        &t,
        &[
            "[range_int] n_int = Range (zero_int, size, one_int)",
            "[range] n = Cast <to: int = 10> (n_int)",
            "[angle] a = Mul (n, d)",
        ],
    );
    // The declared type follows: `n` is float16 now.
    assert_has(&t, &["float16[N] n,"]);
    assert_eq!(report.details["ranges_in_integers"], 1, "{report:?}");
}

#[test]
fn a_larger_angle_of_positions_stays_float32() {
    // Three turns and more: out of the bound, so the trig of positions is kept as rotary.
    let (_, _, report) = convert(&window(4.0));
    assert!(kept(&report, "rotary") > 0, "{report:?}");
}

#[test]
fn a_rotary_angle_stays_float32() {
    // position × inv_freq grows with the sequence: no bound, the chain stays float32.
    let (_, _, report) = convert(
        r#"g (int64 size) => (float[N] y) <float zero = {0}, float one = {1}, float inv_freq = {0.5}> {
   [size_f] nf = Cast <to: int = 1> (size)
   [range] n = Range (zero, nf, one)
   [angle] a = Mul (n, inv_freq)
   [cos] y = Cos (a)
}"#,
    );
    assert!(kept(&report, "rotary") >= 2, "{report:?}");
}

#[test]
fn positions_that_only_meet_data_convert() {
    // A coordinate grid −1 + n · 2/W added to data (the expanded AffineGrid): float16 stores
    // the sum anyway, so the grid converts with it.
    let (before, after, report) = convert(
        r#"g (float[2,W] x) => (float[2,W] y) <int64 zero = {0}, int64 one = {1}, float two = {2}, float minus_one = {-1}> {
   [width] w = Shape <start: int = 1> (x)
   [width_scalar] ws = Squeeze (w)
   [width_f] wf = Cast <to: int = 1> (ws)
   [step] s = Div (two, wf)
   [range] n = Range (zero, ws, one)
   [range_f] nf = Cast <to: int = 1> (n)
   [offsets] o = Mul (nf, s)
   [grid] g = Add (minus_one, o)
   [out] y = Add (x, g)
}"#,
    );
    assert_eq!(kept(&report, "integer-derived arithmetic"), 0, "{report:?}");
    let t = text(&after);
    assert_has(
        &t,
        &[
            "[width_f] wf = Cast <to: int = 10>",
            "[range_f] nf = Cast <to: int = 10>",
        ],
    );
    assert_same_outputs(&before, &after, FP16_TOL, FP16_TOL);
}

#[test]
fn a_position_read_back_as_an_integer_stays_float32() {
    // half = floor(W / 2) cast to int64: 4097/2 in float16 would be 2048, not 2048.5 → 2048
    // by luck, but 4099/2 → 2050 instead of 2049. The arithmetic stays float32.
    let (before, after, report) = convert(
        r#"g (float[2,W] x) => (float[2,N] y) <int64[1] axis = {1}, int64[1] start = {0}, float two = {2}> {
   [width] w = Shape <start: int = 1> (x)
   [width_f] wf = Cast <to: int = 1> (w)
   [half] h = Div (wf, two)
   [floor] fl = Floor (h)
   [back] i = Cast <to: int = 7> (fl)
   [slice] y = Slice (x, start, i, axis)
}"#,
    );
    assert!(
        kept(&report, "integer-derived arithmetic") >= 2,
        "{report:?}\n{}",
        text(&after)
    );
    assert_same_outputs(&before, &after, FP16_TOL, FP16_TOL);
}

#[test]
fn a_whole_number_returned_as_an_output_stays_exact() {
    // W + 1 leaves as a float32 output: 4097 would come back as 4096, so it stays float32.
    // W / 3 is a fraction: float16 and a Cast back lose no more than any converted output.
    let (before, after, report) = convert(
        r#"g (float[2,W] x) => (float[1] length, float[1] third) <float one = {1}, float three = {3}> {
   [width] w = Shape <start: int = 1> (x)
   [width_f] wf = Cast <to: int = 1> (w)
   [plus_one] length = Add (wf, one)
   [divide] third = Div (wf, three)
}"#,
    );
    let t = text(&after);
    assert_has(
        &t,
        &[
            "[plus_one] length = Add (wf, one)",
            "[divide] third_fp16 = Div",
        ],
    );
    assert!(
        kept(&report, "integer-derived arithmetic") >= 2,
        "{report:?}"
    );
    assert_same_outputs(&before, &after, FP16_TOL, FP16_TOL);
}

#[test]
fn a_size_widened_to_double_stays_exact_and_a_fraction_of_it_converts() {
    // Cast(W, double) keeps the whole number: float16 would turn 4097 into 4096. The scale
    // 1/√W widened to double is a fraction: rounding it in float16 loses no more than any
    // converted data would, so its float32 chain converts.
    let (before, after, report) = convert(
        r#"g (double[2,W] x) => (double[2,W] y, double[1] width) <float one = {1}> {
   [width] w = Shape <start: int = 1> (x)
   [width_f] wf = Cast <to: int = 1> (w)
   [whole] width = Cast <to: int = 11> (wf)
   [root] r = Sqrt (wf)
   [inverse] s = Div (one, r)
   [widen] sd = Cast <to: int = 11> (s)
   [scale] y = Mul (x, sd)
}"#,
    );
    let t = text(&after);
    assert_has(
        &t,
        &[
            "[whole] width = Cast <to: int = 11> (wf)",
            "<float16 one =",
            "[root] r = Sqrt (wf_fp16)",
        ],
    );
    assert_eq!(
        report.details["nodes_now_low_precision"], 2,
        "{report:?}\n{t}"
    );
    assert_same_outputs(&before, &after, FP16_TOL, FP16_TOL);
}

/// `Range(start, W, 1)` over the width of `x`, each step read back as an int64.
fn steps_read_back(start: f32) -> String {
    format!(
        r#"g (float[2,W] x) => (int64[N] i) <int64 index = {{1}}, float start = {{{start}}}, float one = {{1}}> {{
   [shape] s = Shape (x)
   [width] w = Gather <axis: int = 0> (s, index)
   [width_f] wf = Cast <to: int = 1> (w)
   [range] n = Range (start, wf, one)
   [back] i = Cast <to: int = 7> (n)
}}"#
    )
}

/// Whether every node of the main graph comes after the nodes it reads.
fn in_topological_order(model: &Model) -> bool {
    let mut seen = std::collections::HashSet::new();
    model.graph(model.main()).nodes().iter().all(|&node| {
        let n = model.node(node);
        let ready = n
            .inputs()
            .iter()
            .flatten()
            .all(|v| match model.value(*v).def() {
                ValueDef::Node { node, .. } => seen.contains(&node),
                _ => true,
            });
        seen.insert(node);
        ready
    })
}

#[test]
fn a_range_over_whole_numbers_counts_in_integers() {
    // Float16 counts only to 2048: past it, steps 4097 and 4098 would both read 4096. In
    // int64 every step is exact, and the float steps read back as integers stay float32.
    let (before, after, report) = convert(&steps_read_back(0.0));
    let t = text(&after);
    assert_has(
        &t,
        &[
            "[range_int] n_int = Range (start_int, w, one_int)",
            "[range] n = Cast <to: int = 1> (n_int)",
        ],
    );
    assert_eq!(report.details["ranges_in_integers"], 1, "{report:?}");
    assert!(in_topological_order(&after), "{t}");
    assert_same_outputs_on(&before, &after, 0.0, 0.0, &[(1, &[4100])]);
}

#[test]
fn a_range_with_a_fractional_bound_stays_float() {
    // 0.5, 1.5, ...: not integers, so no integer Range computes them.
    let (before, after, report) = convert(&steps_read_back(0.5));
    let t = text(&after);
    assert_has(&t, &["[range] n = Range (start, wf, one)"]);
    assert_eq!(report.details["ranges_in_integers"], 0, "{report:?}");
    assert_same_outputs_on(&before, &after, 0.0, 0.0, &[(1, &[4100])]);
}

#[test]
fn a_cast_bound_only_the_range_read_goes_with_it() {
    // `wf = Cast(w)` fed only the float Range: the integer Range reads `w` itself, so the Cast
    // computes nothing anyone reads and goes, counted among the float nodes before.
    let (before, after, report) = convert(&steps_read_back(0.0));
    let t = text(&after);
    assert!(!t.contains("[width_f]"), "{t}");
    assert_eq!(report.nodes_before, 5, "{report:?}");
    // Shape, Gather, two integer Constants, the integer Range, its Cast, the Cast back.
    assert_eq!(report.nodes_after, 7, "{report:?}\n{t}");
    assert_eq!(report.details["float_nodes_before"], 2, "{report:?}\n{t}");
    assert_same_outputs_on(&before, &after, 0.0, 0.0, &[(1, &[4100])]);
}

#[test]
fn an_unnamed_range_stays_unnamed_and_a_range_output_keeps_its_name() {
    // The Range has no name and its steps are the graph's output: the Cast that computes them
    // now has no name either and gives the output its name.
    let (before, after, _) = convert(
        r#"g (float[2,W] x) => (float[N] n) <int64 index = {1}, float zero = {0}, float one = {1}> {
   [shape] s = Shape (x)
   [width] w = Gather <axis: int = 0> (s, index)
   [width_f] wf = Cast <to: int = 1> (w)
   n = Range (zero, wf, one)
}"#,
    );
    let t = text(&after);
    assert_has(
        &t,
        &[
            "   n_int = Range (zero_int, w, one_int)",
            "   n = Cast <to: int = 1> (n_int)",
        ],
    );
    assert!(
        !t.contains("] n_int = Range") && !t.contains("] n = Cast"),
        "{t}"
    );
    assert_same_outputs_on(&before, &after, 0.0, 0.0, &[(1, &[4100])]);
}

#[test]
fn survey_leaves_the_model_as_it_was() {
    use onnx_rewrite_pass::Pass;
    use onnx_rewrite_testkit::bytes;
    let mut model = model(&format!(
        "<ir_version: 10, opset_import: [\"\" : 17]>\n{}",
        steps_read_back(0.0)
    ));
    let was = bytes(&model);
    let survey = Fp16Pass.survey(&mut model).unwrap_or_default();
    assert!(
        survey.contains("1 float Range(s) over whole numbers would count in integers"),
        "{survey}"
    );
    model.check().expect("IR invariants hold after the survey");
    assert_eq!(bytes(&model), was, "the survey changed the model");
    // And the pass still runs on it as on a fresh copy.
    let (after, report) = apply(&Fp16Pass, &model);
    assert_eq!(report.details["ranges_in_integers"], 1, "{report:?}");
    assert!(text(&after).contains("[range_int] n_int = Range"));
}
