//! Floats computed from integer positions and sizes: float32 only where their exact value is
//! read back (an integer, a rotary angle), float16 where they only meet data or make a small
//! angle (a window function's).

use onnx_rewrite_egraph::pass::PassReport;
use onnx_rewrite_fp16::Fp16Pass;
use onnx_rewrite_ir::Model;
use onnx_rewrite_testkit::{apply, assert_same_outputs, model, text};

const FP16_TOL: f64 = 2e-2;

fn convert(body: &str) -> (Model, Model, PassReport) {
    let before = model(&format!(
        "<ir_version: 10, opset_import: [\"\" : 17]>\n{body}"
    ));
    let (after, report) = apply(&Fp16Pass, &before);
    (before, after, report)
}

fn kept(report: &PassReport, reason: &str) -> u64 {
    report.details["kept_float32"][reason].as_u64().unwrap_or(0)
}

/// `cos(k · n · 2π/N)` over `n` in `Range(0, N)`, as the expanded window functions compute it,
/// with the angle scaled by `k`.
fn window(k: f32) -> String {
    format!(
        r#"g (int64 size) => (float[N] y) <float zero = {{0}}, float one = {{1}}, float tau = {{6.2831855}}, float k = {{{k}}}, float half = {{0.5}}> {{
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
    // The angle is computed from float16 steps (Cast where the float32 Range meets it).
    assert!(t.contains("[angle] a = Mul (n_fp16, d)"), "{t}");
    // The Range limit stays exact: it decides the window's length.
    assert!(t.contains("[size_f] nf = Cast <to: int = 1>"), "{t}");
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
    assert!(t.contains("[width_f] wf = Cast <to: int = 10>"), "{t}");
    assert!(t.contains("[range_f] nf = Cast <to: int = 10>"), "{t}");
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
    assert!(t.contains("[plus_one] length = Add (wf, one)"), "{t}");
    assert!(t.contains("[divide] third_fp16 = Div"), "{t}");
    assert!(
        kept(&report, "integer-derived arithmetic") >= 2,
        "{report:?}"
    );
    assert_same_outputs(&before, &after, FP16_TOL, FP16_TOL);
}
