//! Small MoE layers in ONNX text syntax, in the forms exporters write, with weights drawn
//! from a fixed generator so that a layer is easy to write again in another form.

#![allow(dead_code)]

use onnx_rewrite_egraph::pass::{Pass, PassContext, PassReport};
use onnx_rewrite_ir::Model;
use onnx_rewrite_moe_dense::MoeDensePass;
use onnx_rewrite_testkit::{bytes, model};

/// Hidden size, expert intermediate size.
pub const H: usize = 4;
pub const I: usize = 6;

/// `n` values in [-1, 1] with three decimals, from `seed`.
pub fn values(n: usize, seed: u64) -> Vec<f32> {
    let mut s = seed.wrapping_mul(0x9E37_79B9_7F4A_7C15).wrapping_add(12345);
    (0..n)
        .map(|_| {
            s = s
                .wrapping_mul(6_364_136_223_846_793_005)
                .wrapping_add(1_442_695_040_888_963_407);
            ((s >> 33) % 2001) as f32 / 1000.0 - 1.0
        })
        .collect()
}

/// An initializer literal `{a,b,...}`.
pub fn lit(v: &[f32]) -> String {
    let items: Vec<String> = v.iter().map(|x| format!("{x}")).collect();
    format!("{{{}}}", items.join(","))
}

/// A row-major matrix transposed.
pub fn transpose(v: &[f32], rows: usize, cols: usize) -> Vec<f32> {
    let mut t = vec![0.0; v.len()];
    for r in 0..rows {
        for c in 0..cols {
            t[c * rows + r] = v[r * cols + c];
        }
    }
    t
}

/// Expert `e`'s weights: `up [I, H]` (out, in) and `down [H, I]`.
pub fn expert(e: usize) -> (Vec<f32>, Vec<f32>) {
    (values(I * H, 100 + e as u64), values(H * I, 200 + e as u64))
}

/// The router weight `[E, H]`.
pub fn router(experts: usize) -> Vec<f32> {
    values(experts * H, 7)
}

pub const HEADER: &str = r#"<ir_version: 10, opset_import: ["" : 18]>"#;

/// The pass with options, run twice: the second run must change nothing.
pub fn apply_with(source: &Model, options: &[(&str, Option<&str>)]) -> (Model, PassReport) {
    let mut cx = PassContext::default();
    for (flag, value) in options {
        cx.options.set(flag, value.map(str::to_owned));
    }
    let mut model = source.clone();
    let report = MoeDensePass
        .run(&mut model, &cx)
        .unwrap_or_else(|e| panic!("moe-dense runs: {e}"));
    model.check().expect("IR invariants hold after the pass");
    let mut again = model.clone();
    MoeDensePass.run(&mut again, &cx).expect("runs again");
    assert_eq!(bytes(&again), bytes(&model), "idempotent");
    (model, report)
}

pub fn parse(body: &str) -> Model {
    model(&format!("{HEADER}\n{body}"))
}

/// The scatter-loop layer as torch.onnx (dynamo) writes it: per expert `Equal` → `NonZero`
/// → `GatherND` rows → `Gemm(transB)` MLP → weight gathered per (token, slot) →
/// `ScatterND(reduction="add")`. `present` lists the experts the graph computes.
pub fn scatter_nd_layer(experts: usize, present: &[usize]) -> String {
    let mut inits = vec![
        format!("float[{experts},{H}] wr = {}", lit(&router(experts))),
        "int64[1] k = {2}".into(),
        "int64[1] neg1 = {-1}".into(),
        "float zero = {0}".into(),
        "int64[1] c0 = {0}".into(),
        "int64[1] c1 = {1}".into(),
        "int64[1] c2 = {2}".into(),
    ];
    let mut body = vec![
        "   logits = Gemm <transB: int = 1> (x, wr)".to_string(),
        "   probs = Softmax <axis: int = -1> (logits)".into(),
        "   topv, topi = TopK <axis: int = -1> (probs, k)".into(),
        "   tsum = ReduceSum <keepdims: int = 1> (topv, neg1)".into(),
        "   w = Div (topv, tsum)".into(),
        "   xshape = Shape (x)".into(),
        "   acc_0 = Expand (zero, xshape)".into(),
        "   wu = Unsqueeze (w, c2)".into(),
    ];
    for (i, &e) in present.iter().enumerate() {
        let (up, down) = expert(e);
        inits.push(format!("float[{I},{H}] up_{e} = {}", lit(&up)));
        inits.push(format!("float[{H},{I}] down_{e} = {}", lit(&down)));
        inits.push(format!("int64 id_{e} = {{{e}}}"));
        let out = if i + 1 == present.len() {
            "y".to_string()
        } else {
            format!("acc_{}", i + 1)
        };
        body.extend([
            format!("   eq_{e} = Equal (topi, id_{e})"),
            format!("   nz_{e} = NonZero (eq_{e})"),
            format!("   nzt_{e} = Transpose <perm: ints = [1, 0]> (nz_{e})"),
            format!("   tok_{e} = Slice (nzt_{e}, c0, c1, c1)"),
            format!("   pos_{e} = Slice (nzt_{e}, c1, c2, c1)"),
            format!("   rows_{e} = GatherND (x, tok_{e})"),
            format!("   h_{e} = Gemm <transB: int = 1> (rows_{e}, up_{e})"),
            format!("   s_{e} = Sigmoid (h_{e})"),
            format!("   a_{e} = Mul (h_{e}, s_{e})"),
            format!("   o_{e} = Gemm <transB: int = 1> (a_{e}, down_{e})"),
            format!("   at_{e} = Concat <axis: int = -1> (tok_{e}, pos_{e})"),
            format!("   g_{e} = GatherND (wu, at_{e})"),
            format!("   m_{e} = Mul (o_{e}, g_{e})"),
            format!("   {out} = ScatterND <reduction: string = \"add\"> (acc_{i}, tok_{e}, m_{e})"),
        ]);
    }
    format!(
        "g (float[T,{H}] x) => (float[T,{H}] y)\n   <{}>\n{{\n{}\n}}",
        inits.join(", "),
        body.join("\n")
    )
}
