//! Property: random small well-typed float graphs (elementwise chains over two inputs and a
//! constant, with MatMul, Softmax, ReduceMean and Concat) convert to a model that tract runs
//! and that matches the float32 model within the fp16 row of the tolerance table (2e-2), and
//! converting the result again changes nothing (testkit's `apply`).

use onnx_rewrite_fp16::Fp16Pass;
use onnx_rewrite_testkit::{apply, assert_same_outputs, model};
use proptest::prelude::*;

#[derive(Debug, Clone)]
enum Step {
    Unary(&'static str, usize),
    Binary(&'static str, usize, usize),
    WithConstant(&'static str, usize),
    /// `[2,3] x [3,3]` with a constant weight keeps the shape.
    MatMul(usize),
    Softmax(usize),
    /// ReduceMean over the last axis (keepdims), broadcast back by Sub.
    Center(usize),
}

// Bounded ops only: values stay within a few units, so float16's relative error (~5e-4) per
// step stays under the tolerance over a chain of at most 6 steps.
const UNARY: &[&str] = &[
    "Relu", "Neg", "Abs", "Sigmoid", "Tanh", "Softsign", "Sin", "Cos",
];
const BINARY: &[&str] = &["Add", "Sub", "Max", "Min"];

fn step() -> impl Strategy<Value = Step> {
    let i = || any::<prop::sample::Index>().prop_map(|i| i.index(usize::MAX));
    prop_oneof![
        (prop::sample::select(UNARY), i()).prop_map(|(op, a)| Step::Unary(op, a)),
        (prop::sample::select(BINARY), i(), i()).prop_map(|(op, a, b)| Step::Binary(op, a, b)),
        (prop::sample::select(BINARY), i()).prop_map(|(op, a)| Step::WithConstant(op, a)),
        i().prop_map(Step::MatMul),
        i().prop_map(Step::Softmax),
        i().prop_map(Step::Center),
    ]
}

fn graph(steps: &[Step], constant: [f32; 3], weight: [f32; 9], outputs: usize) -> String {
    let mut values = vec!["x".to_owned(), "z".to_owned()];
    let mut body = String::new();
    for (k, s) in steps.iter().enumerate() {
        let pick = |i: usize| values[i % values.len()].clone();
        let v = format!("v{k}");
        let line = match s {
            Step::Unary(op, a) => format!("{v} = {op} ({})", pick(*a)),
            Step::Binary(op, a, b) => format!("{v} = {op} ({}, {})", pick(*a), pick(*b)),
            Step::WithConstant(op, a) => format!("{v} = {op} ({}, k)", pick(*a)),
            Step::MatMul(a) => format!("{v} = MatMul ({}, w)", pick(*a)),
            Step::Softmax(a) => format!("{v} = Softmax <axis: int = -1> ({})", pick(*a)),
            Step::Center(a) => {
                let m = format!("m{k}");
                body.push_str(&format!(
                    "   {m} = ReduceMean <axes: ints = [-1], keepdims: int = 1> ({})\n",
                    pick(*a)
                ));
                format!("{v} = Sub ({}, {m})", pick(*a))
            }
        };
        body.push_str(&format!("   {line}\n"));
        values.push(v);
    }
    let outs: Vec<String> = (0..outputs)
        .map(|i| values[values.len() - 1 - i % values.len()].clone())
        .collect();
    let mut declared = Vec::new();
    for (i, o) in outs.iter().enumerate() {
        body.push_str(&format!("   r{i} = Identity ({o})\n"));
        declared.push(format!("float[2,3] r{i}"));
    }
    let list = |xs: &[f32]| {
        xs.iter()
            .map(|x| format!("{x:?}"))
            .collect::<Vec<_>>()
            .join(",")
    };
    format!(
        "<ir_version: 8, opset_import: [\"\" : 17]>\ng (float[2,3] x, float[2,3] z) => ({}) <float[3] k = {{{}}}, float[3,3] w = {{{}}}> {{\n{body}}}",
        declared.join(", "),
        list(&constant),
        list(&weight),
    )
}

proptest! {
    #![proptest_config(ProptestConfig { cases: 48, ..ProptestConfig::default() })]

    #[test]
    fn converted_graphs_run_and_match(
        steps in prop::collection::vec(step(), 1..7),
        constant in prop::array::uniform3(-2.0f32..2.0),
        weight in prop::array::uniform9(-0.5f32..0.5),
        outputs in 1usize..3,
    ) {
        let before = model(&graph(&steps, constant, weight, outputs));
        let (after, _) = apply(&Fp16Pass, &before);
        assert_same_outputs(&before, &after, 2e-2, 2e-2);
    }
}
