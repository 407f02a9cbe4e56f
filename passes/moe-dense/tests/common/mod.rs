//! Small MoE layers in ONNX text syntax, in the forms exporters write, with weights drawn
//! from a fixed generator so that a layer is easy to write again in another form: a form that
//! no in-process runtime runs (`com.microsoft.MoE`), or a graph that is wrong on purpose (a
//! baked trace), is checked against the same layer written in a form that tract runs.

#![allow(dead_code)]

use onnx_rewrite_ir::Model;
use onnx_rewrite_moe_dense::MoeDensePass;
use onnx_rewrite_pass::{Pass, PassContext, PassError, PassReport};
use onnx_rewrite_testkit::{assert_same_outputs_on, bytes, model};

/// The sizes of one layer.
#[derive(Clone, Copy, Debug)]
pub struct Dims {
    pub experts: usize,
    pub k: usize,
    pub hidden: usize,
    pub inter: usize,
}

/// The layer most tests use: 3 experts, top-2, hidden 4, intermediate 6 (not square, so the
/// `com.microsoft.MoE` weight layout is unambiguous).
pub const SMALL: Dims = Dims {
    experts: 3,
    k: 2,
    hidden: 4,
    inter: 6,
};

/// An expert's MLP.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub enum Mlp {
    /// `down(silu(up(x)))`.
    Silu,
    /// `down(silu(gate(x)) * up(x))` (SwiGLU, Mixtral/Qwen/OLMoE).
    SwiGlu,
}

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

/// Expert `e`'s weights, `[out, in]` as `nn.Linear` holds them: `up [I, H]`, `gate [I, H]`,
/// `down [H, I]`.
pub struct Expert {
    pub up: Vec<f32>,
    pub gate: Vec<f32>,
    pub down: Vec<f32>,
}

pub fn expert(d: Dims, e: usize) -> Expert {
    let e = e as u64;
    Expert {
        up: values(d.inter * d.hidden, 100 + e),
        gate: values(d.inter * d.hidden, 300 + e),
        down: values(d.hidden * d.inter, 200 + e),
    }
}

/// The router weight `[E, H]`.
pub fn router(d: Dims) -> Vec<f32> {
    values(d.experts * d.hidden, 7)
}

pub const HEADER: &str = r#"<ir_version: 10, opset_import: ["" : 18]>"#;
pub const HEADER_MS: &str = r#"<ir_version: 10, opset_import: ["" : 18, "com.microsoft" : 1]>"#;

/// The pass with options, run twice: the second run must change nothing.
pub fn apply_with(source: &Model, options: &[(&str, Option<&str>)]) -> (Model, PassReport) {
    let mut model = source.clone();
    let report = run_with(&mut model, options).unwrap_or_else(|e| panic!("moe-dense runs: {e}"));
    model.check().expect("IR invariants hold after the pass");
    let once = bytes(&model);
    run_with(&mut model, options).expect("runs again");
    assert_eq!(bytes(&model), once, "idempotent");
    (model, report)
}

/// One run of the pass with options.
pub fn run_with(
    model: &mut Model,
    options: &[(&str, Option<&str>)],
) -> Result<PassReport, PassError> {
    let mut cx = PassContext::default();
    for (flag, value) in options {
        cx.options.set(flag, value.map(str::to_owned));
    }
    MoeDensePass.run(model, &cx)
}

pub fn parse(body: &str) -> Model {
    model(&format!("{HEADER}\n{body}"))
}

pub fn parse_ms(body: &str) -> Model {
    model(&format!("{HEADER_MS}\n{body}"))
}

/// Checks that `got` computes what `reference` computes (same graph inputs) on random tokens,
/// 1, 2, 3, 5 and 9 of them (one token leaves all but k experts without a token).
pub fn assert_matches(reference: &Model, got: &Model, rtol: f64, atol: f64) {
    let draws: [(u64, &[usize]); 5] = [(11, &[1]), (12, &[2]), (13, &[3]), (14, &[5]), (15, &[9])];
    assert_same_outputs_on(reference, got, rtol, atol, &draws);
}

/// Lines computing an expert's MLP on `rows` into `out` with `Gemm(transB)` on `[out, in]`
/// weights named `up{w}`, `gate{w}`, `down{w}`; intermediate names end in `_{tag}`.
fn mlp_lines(mlp: Mlp, rows: &str, w: &str, tag: &str, out: &str) -> Vec<String> {
    let mut l = vec![format!(
        "   h_{tag} = Gemm <transB: int = 1> ({rows}, up{w})"
    )];
    match mlp {
        Mlp::Silu => l.extend([
            format!("   s_{tag} = Sigmoid (h_{tag})"),
            format!("   a_{tag} = Mul (h_{tag}, s_{tag})"),
        ]),
        Mlp::SwiGlu => l.extend([
            format!("   gt_{tag} = Gemm <transB: int = 1> ({rows}, gate{w})"),
            format!("   s_{tag} = Sigmoid (gt_{tag})"),
            format!("   sg_{tag} = Mul (gt_{tag}, s_{tag})"),
            format!("   a_{tag} = Mul (sg_{tag}, h_{tag})"),
        ]),
    }
    l.push(format!(
        "   {out} = Gemm <transB: int = 1> (a_{tag}, down{w})"
    ));
    l
}

/// `[out, in]` initializers of expert `e`: `up_e`, `down_e` (and `gate_e`).
fn expert_inits(d: Dims, mlp: Mlp, e: usize) -> Vec<String> {
    let (h, i) = (d.hidden, d.inter);
    let w = expert(d, e);
    let mut v = vec![
        format!("float[{i},{h}] up_{e} = {}", lit(&w.up)),
        format!("float[{h},{i}] down_{e} = {}", lit(&w.down)),
    ];
    if mlp == Mlp::SwiGlu {
        v.push(format!("float[{i},{h}] gate_{e} = {}", lit(&w.gate)));
    }
    v
}

/// `[E, out, in]` stacks of every expert's weights: `up_stack`, `down_stack`, `gate_stack`.
fn stack_inits(d: Dims, mlp: Mlp) -> Vec<String> {
    let (h, i, n) = (d.hidden, d.inter, d.experts);
    let all: Vec<Expert> = (0..n).map(|e| expert(d, e)).collect();
    let cat = |f: &dyn Fn(&Expert) -> &Vec<f32>| -> Vec<f32> {
        all.iter().flat_map(|x| f(x).iter().copied()).collect()
    };
    let mut v = vec![
        format!("float[{n},{i},{h}] up_stack = {}", lit(&cat(&|x| &x.up))),
        format!(
            "float[{n},{h},{i}] down_stack = {}",
            lit(&cat(&|x| &x.down))
        ),
    ];
    if mlp == Mlp::SwiGlu {
        v.push(format!(
            "float[{n},{i},{h}] gate_stack = {}",
            lit(&cat(&|x| &x.gate))
        ));
    }
    v
}

/// Router: `Gemm` → `Softmax` → `TopK` → renormalised weights `w`, ids `topi`.
fn router_lines(d: Dims) -> (Vec<String>, Vec<String>) {
    let inits = vec![
        format!("float[{},{}] wr = {}", d.experts, d.hidden, lit(&router(d))),
        format!("int64[1] k = {{{}}}", d.k),
        "int64[1] neg1 = {-1}".into(),
    ];
    let body = vec![
        "   logits = Gemm <transB: int = 1> (x, wr)".to_string(),
        "   probs = Softmax <axis: int = -1> (logits)".into(),
        "   topv, topi = TopK <axis: int = -1> (probs, k)".into(),
        "   tsum = ReduceSum <keepdims: int = 1> (topv, neg1)".into(),
        "   w = Div (topv, tsum)".into(),
    ];
    (inits, body)
}

fn graph(d: Dims, inits: &[String], body: &[String]) -> String {
    let h = d.hidden;
    format!(
        "g (float[T,{h}] x) => (float[T,{h}] y)\n   <{}>\n{{\n{}\n}}",
        inits.join(", "),
        body.join("\n")
    )
}

/// Where a scatter-loop step's expert weights come from.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub enum Weights {
    /// Per-expert initializers (`nn.ModuleList`): a baked trace of them cannot be repaired.
    PerExpert,
    /// `Gather(W[E, ...], e)` of 3-D stacks (transformers v5 parameters): the stacks hold every
    /// expert, also those a baked trace dropped.
    Stacked,
}

/// One expert step of the dynamo exporter's loop: `Equal` → `NonZero` → `GatherND` rows →
/// MLP → weight gathered per (token, slot) → `ScatterND(reduction="add")` onto `acc`.
fn scatter_nd_step(mlp: Mlp, e: usize, acc: &str, out: &str, w: &str) -> Vec<String> {
    let mut l = vec![
        format!("   eq_{e} = Equal (topi, id_{e})"),
        format!("   nz_{e} = NonZero (eq_{e})"),
        format!("   nzt_{e} = Transpose <perm: ints = [1, 0]> (nz_{e})"),
        format!("   tok_{e} = Slice (nzt_{e}, c0, c1, c1)"),
        format!("   pos_{e} = Slice (nzt_{e}, c1, c2, c1)"),
        format!("   rows_{e} = GatherND (x, tok_{e})"),
    ];
    l.extend(mlp_lines(
        mlp,
        &format!("rows_{e}"),
        w,
        &e.to_string(),
        &format!("o_{e}"),
    ));
    l.extend([
        format!("   at_{e} = Concat <axis: int = -1> (tok_{e}, pos_{e})"),
        format!("   g_{e} = GatherND (wu, at_{e})"),
        format!("   m_{e} = Mul (o_{e}, g_{e})"),
        format!("   {out} = ScatterND <reduction: string = \"add\"> ({acc}, tok_{e}, m_{e})"),
    ]);
    l
}

fn scatter_common(d: Dims) -> (Vec<String>, Vec<String>) {
    let (mut inits, mut body) = router_lines(d);
    inits.extend([
        "float zero = {0}".to_string(),
        "int64[1] c0 = {0}".into(),
        "int64[1] c1 = {1}".into(),
        "int64[1] c2 = {2}".into(),
    ]);
    body.extend([
        "   xshape = Shape (x)".to_string(),
        "   acc_0 = Expand (zero, xshape)".into(),
        "   wu = Unsqueeze (w, c2)".into(),
    ]);
    (inits, body)
}

/// The scatter loop as torch.onnx (dynamo) writes it; `present` lists the experts the graph
/// computes (fewer than all: a baked trace).
pub fn scatter_nd_layer(d: Dims, mlp: Mlp, weights: Weights, present: &[usize]) -> String {
    let (mut inits, mut body) = scatter_common(d);
    if weights == Weights::Stacked {
        inits.extend(stack_inits(d, mlp));
    }
    for (i, &e) in present.iter().enumerate() {
        inits.push(format!("int64 id_{e} = {{{e}}}"));
        match weights {
            Weights::PerExpert => inits.extend(expert_inits(d, mlp, e)),
            Weights::Stacked => {
                body.push(format!(
                    "   up_{e} = Gather <axis: int = 0> (up_stack, id_{e})"
                ));
                body.push(format!(
                    "   down_{e} = Gather <axis: int = 0> (down_stack, id_{e})"
                ));
                if mlp == Mlp::SwiGlu {
                    body.push(format!(
                        "   gate_{e} = Gather <axis: int = 0> (gate_stack, id_{e})"
                    ));
                }
            }
        }
        let out = if i + 1 == present.len() {
            "y".to_string()
        } else {
            format!("acc_{}", i + 1)
        };
        body.extend(scatter_nd_step(
            mlp,
            e,
            &format!("acc_{i}"),
            &out,
            &format!("_{e}"),
        ));
    }
    graph(d, &inits, &body)
}

/// The loop as the TorchScript exporter writes `index_add_`: `NonZero` → `Gather` rows →
/// MLP (`MatMul` with pre-transposed weights) → weight gathered from the flattened top-k
/// weights → `ScatterElements` onto zeros (indices expanded to the update's shape) + `Add`.
pub fn scatter_elements_layer(d: Dims, present: &[usize]) -> String {
    let (h, i) = (d.hidden, d.inter);
    let (mut inits, mut body) = router_lines(d);
    inits.extend([
        "int64[1] c0 = {0}".to_string(),
        "int64[1] c1 = {1}".into(),
        format!("int64 kk = {{{}}}", d.k),
    ]);
    body.extend([
        "   xshape = Shape (x)".to_string(),
        "   acc_0 = ConstantOfShape (xshape)".into(),
        "   wflat = Reshape (w, neg1)".into(),
    ]);
    for (n, &e) in present.iter().enumerate() {
        let w = expert(d, e);
        inits.push(format!("int64 id_{e} = {{{e}}}"));
        inits.push(format!(
            "float[{h},{i}] upt_{e} = {}",
            lit(&transpose(&w.up, i, h))
        ));
        inits.push(format!(
            "float[{i},{h}] downt_{e} = {}",
            lit(&transpose(&w.down, h, i))
        ));
        let out = if n + 1 == present.len() {
            "y".to_string()
        } else {
            format!("acc_{}", n + 1)
        };
        body.extend([
            format!("   eq_{e} = Equal (topi, id_{e})"),
            format!("   nz_{e} = NonZero (eq_{e})"),
            format!("   tok2_{e} = Gather <axis: int = 0> (nz_{e}, c0)"),
            format!("   pos2_{e} = Gather <axis: int = 0> (nz_{e}, c1)"),
            format!("   tok_{e} = Reshape (tok2_{e}, neg1)"),
            format!("   pos_{e} = Reshape (pos2_{e}, neg1)"),
            format!("   rows_{e} = Gather <axis: int = 0> (x, tok_{e})"),
            format!("   h_{e} = MatMul (rows_{e}, upt_{e})"),
            format!("   s_{e} = Sigmoid (h_{e})"),
            format!("   a_{e} = Mul (h_{e}, s_{e})"),
            format!("   o_{e} = MatMul (a_{e}, downt_{e})"),
            format!("   tk_{e} = Mul (tok_{e}, kk)"),
            format!("   flat_{e} = Add (tk_{e}, pos_{e})"),
            format!("   ws_{e} = Gather <axis: int = 0> (wflat, flat_{e})"),
            format!("   wsu_{e} = Unsqueeze (ws_{e}, c1)"),
            format!("   m_{e} = Mul (o_{e}, wsu_{e})"),
            format!("   mshape_{e} = Shape (m_{e})"),
            format!("   tu_{e} = Unsqueeze (tok_{e}, c1)"),
            format!("   idx_{e} = Expand (tu_{e}, mshape_{e})"),
            format!("   sc_{e} = ScatterElements <axis: int = 0> (acc_0, idx_{e}, m_{e})"),
            format!("   {out} = Add (acc_{n}, sc_{e})"),
        ]);
    }
    graph(d, &inits, &body)
}

/// One `If` per expert (torch.cond exported by dynamo): the then-branch is the scatter step,
/// the else-branch passes the accumulator through.
pub fn if_layer(d: Dims) -> String {
    let (mut inits, mut body) = scatter_common(d);
    inits.push("int64 izero = {0}".into());
    for e in 0..d.experts {
        inits.push(format!("int64 id_{e} = {{{e}}}"));
        inits.extend(expert_inits(d, Mlp::Silu, e));
        let out = if e + 1 == d.experts {
            "y".to_string()
        } else {
            format!("acc_{}", e + 1)
        };
        let then: Vec<String> = scatter_nd_step(
            Mlp::Silu,
            e,
            &format!("acc_{e}"),
            &format!("r_{e}"),
            &format!("_{e}"),
        )
        .into_iter()
        // The step's own Equal is computed outside, for the condition.
        .skip(1)
        .map(|l| format!("   {l}"))
        .collect();
        body.extend([
            format!("   eq_{e} = Equal (topi, id_{e})"),
            format!("   cnt_{e} = Cast <to: int = 7> (eq_{e})"),
            format!("   sum_{e} = ReduceSum <keepdims: int = 0> (cnt_{e})"),
            format!("   hit_{e} = Greater (sum_{e}, izero)"),
            format!(
                "   {out} = If (hit_{e}) <then_branch: graph = then_{e} () => (float[T,{}] r_{e}) {{\n{}\n   }}, else_branch: graph = else_{e} () => (float[T,{}] p_{e}) {{\n      p_{e} = Identity (acc_{e})\n   }}>",
                d.hidden,
                then.join("\n"),
                d.hidden
            ),
        ]);
    }
    graph(d, &inits, &body)
}

/// transformers' `batched_mm` experts: every (token, slot) row gathers its expert's weights
/// (`GatherND(W[E, out, in], ids)`), runs a batched `MatMul` against the row as a column,
/// is weighted and summed over the k slots. `shared`: plus a sigmoid-gated shared expert
/// (Qwen2-MoE), added after the routed sum.
pub fn batched_layer(d: Dims, mlp: Mlp, shared: bool) -> String {
    let (h, i) = (d.hidden, d.inter);
    let (mut inits, mut body) = router_lines(d);
    inits.extend(stack_inits(d, mlp));
    inits.extend([
        format!("int64[3] rep = {{1,{},1}}", d.k),
        format!("int64[2] rows_shape = {{-1,{h}}}"),
        format!("int64[3] slots_shape = {{-1,{},{h}}}", d.k),
        "int64[1] c1 = {1}".into(),
    ]);
    body.extend([
        "   xu = Unsqueeze (x, c1)".to_string(),
        "   xe = Expand (xu, rep)".into(),
        "   xr = Reshape (xe, rows_shape)".into(),
        "   ids = Reshape (topi, neg1)".into(),
        "   idsu = Unsqueeze (ids, neg1)".into(),
        "   xcol = Unsqueeze (xr, neg1)".into(),
        "   wup = GatherND (up_stack, idsu)".into(),
        "   hm = MatMul (wup, xcol)".into(),
        "   hb = Squeeze (hm, neg1)".into(),
    ]);
    match mlp {
        Mlp::Silu => body.extend([
            "   sb = Sigmoid (hb)".to_string(),
            "   ab = Mul (hb, sb)".into(),
        ]),
        Mlp::SwiGlu => body.extend([
            "   wgate = GatherND (gate_stack, idsu)".to_string(),
            "   gm = MatMul (wgate, xcol)".into(),
            "   gb = Squeeze (gm, neg1)".into(),
            "   sb = Sigmoid (gb)".into(),
            "   sgb = Mul (gb, sb)".into(),
            "   ab = Mul (sgb, hb)".into(),
        ]),
    }
    body.extend([
        "   acol = Unsqueeze (ab, neg1)".to_string(),
        "   wdown = GatherND (down_stack, idsu)".into(),
        "   om = MatMul (wdown, acol)".into(),
        "   ob = Squeeze (om, neg1)".into(),
        "   wf = Reshape (w, neg1)".into(),
        "   wfu = Unsqueeze (wf, neg1)".into(),
        "   z = Mul (ob, wfu)".into(),
        "   zs = Reshape (z, slots_shape)".into(),
    ]);
    if shared {
        let w = expert(d, 9);
        inits.extend([
            format!("float[{i},{h}] up_shared = {}", lit(&w.up)),
            format!("float[{i},{h}] gate_shared = {}", lit(&w.gate)),
            format!("float[{h},{i}] down_shared = {}", lit(&w.down)),
            format!("float[{h},1] shared_gate_w = {}", lit(&values(h, 11))),
        ]);
        body.push("   routed = ReduceSum <keepdims: int = 0> (zs, c1)".into());
        body.extend(mlp_lines(Mlp::SwiGlu, "x", "_shared", "shared", "so"));
        body.extend([
            "   sgl = MatMul (x, shared_gate_w)".to_string(),
            "   sgs = Sigmoid (sgl)".into(),
            "   sy = Mul (sgs, so)".into(),
            "   y = Add (routed, sy)".into(),
        ]);
    } else {
        body.push("   y = ReduceSum <keepdims: int = 0> (zs, c1)".into());
    }
    graph(d, &inits, &body)
}

/// transformers' `grouped_mm` experts as its fallback exports: (token, slot) rows sorted by
/// expert (`TopK` over the negated ids), a histogram of the ids and its `CumSum` bound one
/// segment per expert (`Range`), each segment multiplied by its expert's `[in, out]` weight,
/// the segments concatenated, weighted and put back in (token, slot) order.
pub fn grouped_layer(d: Dims) -> String {
    let (h, i, n) = (d.hidden, d.inter, d.experts);
    let (mut inits, mut body) = router_lines(d);
    let arange: Vec<String> = (0..n).map(|e| e.to_string()).collect();
    inits.extend([
        format!("int64[3] rep = {{1,{},1}}", d.k),
        format!("int64[2] rows_shape = {{-1,{h}}}"),
        format!("int64[3] slots_shape = {{-1,{},{h}}}", d.k),
        "int64[1] c1 = {1}".into(),
        "int64 c0s = {0}".into(),
        "int64 one = {1}".into(),
        format!("int64[{n}] experts = {{{}}}", arange.join(",")),
    ]);
    body.extend([
        "   xu = Unsqueeze (x, c1)".to_string(),
        "   xe = Expand (xu, rep)".into(),
        "   xr = Reshape (xe, rows_shape)".into(),
        "   ids = Reshape (topi, neg1)".into(),
        "   nids = Shape (ids)".into(),
        "   fids = Cast <to: int = 1> (ids)".into(),
        "   negids = Neg (fids)".into(),
        "   sv, order = TopK <axis: int = 0> (negids, nids)".into(),
        "   ford = Cast <to: int = 1> (order)".into(),
        "   negord = Neg (ford)".into(),
        "   sv2, inv = TopK <axis: int = 0> (negord, nids)".into(),
        "   xs = Gather <axis: int = 0> (xr, order)".into(),
        "   idsc = Unsqueeze (ids, c1)".into(),
        "   onehot = Equal (idsc, experts)".into(),
        // In float: tract's CumSum takes no int64 data.
        "   onehotf = Cast <to: int = 1> (onehot)".into(),
        "   counts = ReduceSum <keepdims: int = 0> (onehotf, c0s_1)".into(),
        "   endsf = CumSum (counts, c0s)".into(),
        "   startsf = Sub (endsf, counts)".into(),
        "   ends = Cast <to: int = 7> (endsf)".into(),
        "   starts = Cast <to: int = 7> (startsf)".into(),
    ]);
    inits.push("int64[1] c0s_1 = {0}".into());
    let mut ups = Vec::new();
    let mut downs = Vec::new();
    for e in 0..n {
        let w = expert(d, e);
        inits.push(format!("int64 id_{e} = {{{e}}}"));
        inits.push(format!(
            "float[{h},{i}] upt_{e} = {}",
            lit(&transpose(&w.up, i, h))
        ));
        inits.push(format!(
            "float[{i},{h}] downt_{e} = {}",
            lit(&transpose(&w.down, h, i))
        ));
        body.extend([
            format!("   st_{e} = Gather <axis: int = 0> (starts, id_{e})"),
            format!("   en_{e} = Gather <axis: int = 0> (ends, id_{e})"),
            format!("   rg_{e} = Range (st_{e}, en_{e}, one)"),
            format!("   seg_{e} = Gather <axis: int = 0> (xs, rg_{e})"),
            format!("   u_{e} = MatMul (seg_{e}, upt_{e})"),
        ]);
        ups.push(format!("u_{e}"));
        downs.push(format!("dn_{e}"));
    }
    body.extend([
        format!("   hs = Concat <axis: int = 0> ({})", ups.join(", ")),
        "   ss = Sigmoid (hs)".into(),
        "   acts = Mul (hs, ss)".into(),
    ]);
    for e in 0..n {
        body.extend([
            format!("   aseg_{e} = Gather <axis: int = 0> (acts, rg_{e})"),
            format!("   dn_{e} = MatMul (aseg_{e}, downt_{e})"),
        ]);
    }
    body.extend([
        format!("   os = Concat <axis: int = 0> ({})", downs.join(", ")),
        "   wf = Reshape (w, neg1)".into(),
        "   wfs = Gather <axis: int = 0> (wf, order)".into(),
        "   wfu = Unsqueeze (wfs, neg1)".into(),
        "   zsorted = Mul (os, wfu)".into(),
        "   z = Gather <axis: int = 0> (zsorted, inv)".into(),
        "   zs = Reshape (z, slots_shape)".into(),
        "   y = ReduceSum <keepdims: int = 0> (zs, c1)".into(),
    ]);
    graph(d, &inits, &body)
}

/// onnxruntime's `com.microsoft.MoE` with separate gate (`fc1`) and up (`fc3`) weights, SiLU,
/// top-k renormalised: the form ORT's CPU kernel rejects ("FC3 is not implemented"). Weights
/// in the ORT >= 1.23 layout `[E, out, in]`; the router logits go in raw.
pub fn contrib_layer(d: Dims) -> String {
    let h = d.hidden;
    let all: Vec<Expert> = (0..d.experts).map(|e| expert(d, e)).collect();
    let cat = |f: &dyn Fn(&Expert) -> &Vec<f32>| -> Vec<f32> {
        all.iter().flat_map(|x| f(x).iter().copied()).collect()
    };
    let (n, i) = (d.experts, d.inter);
    let inits = [
        format!("float[{n},{h}] wr = {}", lit(&router(d))),
        format!("float[{n},{i},{h}] fc1 = {}", lit(&cat(&|x| &x.gate))),
        format!("float[{n},{h},{i}] fc2 = {}", lit(&cat(&|x| &x.down))),
        format!("float[{n},{i},{h}] fc3 = {}", lit(&cat(&|x| &x.up))),
    ];
    let body = [
        "   logits = Gemm <transB: int = 1> (x, wr)".to_string(),
        format!(
            "   y = com.microsoft.MoE <k: int = {}, activation_type: string = \"silu\", normalize_routing_weights: int = 1> (x, logits, fc1, , fc2, , fc3)",
            d.k
        ),
    ];
    graph(d, &inits, &body)
}
