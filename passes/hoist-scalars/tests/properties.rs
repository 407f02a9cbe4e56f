//! Property test: random per-layer shape-arithmetic chains, the kind dynamo exports repeat in
//! every layer (`Shape -> Gather -> int64 math -> Cast -> float math -> Mul`), read from
//! dynamic and static dims of each layer's own tensor. For every generated graph the pass must
//! keep the outputs (tract, several size sets where each symbolic dim differs, the DESIGN.md
//! tolerance 1e-5 / 1e-6), be idempotent (checked by `testkit::apply`), and never raise the
//! predicted Memcpy count.

mod common;

use common::{assert_same_outputs, predicted};
use onnx_rewrite_hoist_scalars::HoistScalarsPass;
use onnx_rewrite_testkit::{apply, model};
use proptest::prelude::*;

/// One layer: which dim of `x: float[B, S, 4]` it reads, its int64 and float steps.
#[derive(Debug, Clone)]
struct Layer {
    /// 0 = B, 1 = S (dynamic), 2 = the static 4: folding must turn that chain into a constant.
    dim: usize,
    /// int64 steps on the dim: `true` = `Add(d, 2)`, `false` = `Mul(d, 3)`.
    int_steps: Vec<bool>,
    /// float steps after the Cast: 0 = Sqrt, 1 = Add 1, 2 = 1 / x.
    float_steps: Vec<u8>,
    /// Where the scalar comes from: the layer's own tensor (the dynamo form) or the input.
    from_input: bool,
}

fn layer() -> impl Strategy<Value = Layer> {
    (
        0usize..3,
        prop::collection::vec(any::<bool>(), 0..3),
        prop::collection::vec(0u8..3, 0..4),
        any::<bool>(),
    )
        .prop_map(|(dim, int_steps, float_steps, from_input)| Layer {
            dim,
            int_steps,
            float_steps,
            from_input,
        })
}

/// The model in ONNX text syntax. Every intermediate value stays positive (a dim is >= 1, the
/// steps keep it so), and each layer multiplies by `1 / (1 + v)` in (0, 1) and adds the layer's
/// input back, so values stay bounded and the comparison is meaningful.
fn source(layers: &[Layer]) -> String {
    let mut body = Vec::new();
    let mut h = "x".to_owned();
    for (i, l) in layers.iter().enumerate() {
        let src = if l.from_input { "x" } else { h.as_str() };
        body.push(format!("s{i} = Shape ({src})"));
        body.push(format!(
            "d{i}_0 = Gather <axis: int = 0> (s{i}, idx{})",
            l.dim
        ));
        let mut v = format!("d{i}_0");
        for (k, add) in l.int_steps.iter().enumerate() {
            let next = format!("d{i}_{}", k + 1);
            if *add {
                body.push(format!("{next} = Add ({v}, two)"));
            } else {
                body.push(format!("{next} = Mul ({v}, three)"));
            }
            v = next;
        }
        body.push(format!("f{i}_0 = Cast <to: int = 1> ({v})"));
        let mut f = format!("f{i}_0");
        for (k, step) in l.float_steps.iter().enumerate() {
            let next = format!("f{i}_{}", k + 1);
            match step {
                0 => body.push(format!("{next} = Sqrt ({f})")),
                1 => body.push(format!("{next} = Add ({f}, one)")),
                _ => body.push(format!("{next} = Div (one, {f})")),
            }
            f = next;
        }
        body.push(format!("p{i} = Add ({f}, one)"));
        body.push(format!("g{i} = Div (one, p{i})"));
        body.push(format!("m{i} = Mul ({h}, g{i})"));
        let out = if i + 1 == layers.len() {
            "y".to_owned()
        } else {
            format!("h{i}")
        };
        body.push(format!("{out} = Add (m{i}, {h})"));
        h = out;
    }
    format!(
        "<ir_version: 10, opset_import: [\"\" : 20]>\n\
         chains (float[B,S,4] x) => (float[B,S,4] y)\n\
         <int64 idx0 = {{0}}, int64 idx1 = {{1}}, int64 idx2 = {{2}}, int64 two = {{2}}, \
         int64 three = {{3}}, float one = {{1}}> {{\n   {}\n}}\n",
        body.join("\n   ")
    )
}

proptest! {
    // Each case runs the pass and tract several times: 48 cases keep the test under a few
    // seconds while still mixing static and dynamic dims, shared and per-layer sources.
    #![proptest_config(ProptestConfig { cases: 48, ..ProptestConfig::default() })]

    #[test]
    fn random_shape_chains_keep_outputs_and_never_add_copies(
        layers in prop::collection::vec(layer(), 1..5)
    ) {
        let original = model(&source(&layers));
        let (rewritten, _report) = apply(&HoistScalarsPass, &original);
        assert_same_outputs(&original, &rewritten, 1e-5, 1e-6);
        prop_assert!(predicted(&rewritten) <= predicted(&original));
    }
}
