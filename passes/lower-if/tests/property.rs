//! Property: for random pure branches (elementwise chains over graph inputs, an outer value and
//! branch constants, sometimes an `If` nested in a branch) and random conditions (a graph
//! input, scalar or `[1]`, or a constant), the pass removes every `If` and the result computes
//! what the original computes (tract, several input sets per dim size, both condition values).

mod common;

use common::assert_same;
use onnx_rewrite_lower_if::LowerIfPass;
use onnx_rewrite_testkit::{apply, count_ops, model};
use proptest::prelude::*;

#[derive(Debug, Clone)]
enum Step {
    Unary(&'static str, usize),
    Binary(&'static str, usize, usize),
    /// `v OP k` with the branch constant `k` (a `[3]` initializer).
    WithConstant(&'static str, usize),
}

#[derive(Debug, Clone)]
struct Branch {
    steps: Vec<Step>,
    outputs: Vec<usize>,
    constant: [f32; 3],
    nested: Option<Box<(Condition, Branch, Branch)>>,
}

#[derive(Debug, Clone, Copy)]
enum Condition {
    Input,
    Constant(bool),
}

const UNARY: &[&str] = &["Relu", "Neg", "Abs", "Sigmoid", "Tanh", "Softsign"];
const BINARY: &[&str] = &["Add", "Sub", "Mul", "Max", "Min"];

fn step() -> impl Strategy<Value = Step> {
    prop_oneof![
        (prop::sample::select(UNARY), any::<prop::sample::Index>())
            .prop_map(|(op, i)| Step::Unary(op, i.index(usize::MAX))),
        (
            prop::sample::select(BINARY),
            any::<prop::sample::Index>(),
            any::<prop::sample::Index>()
        )
            .prop_map(|(op, a, b)| Step::Binary(
                op,
                a.index(usize::MAX),
                b.index(usize::MAX)
            )),
        (prop::sample::select(BINARY), any::<prop::sample::Index>())
            .prop_map(|(op, a)| Step::WithConstant(op, a.index(usize::MAX))),
    ]
}

fn leaf_branch(outputs: usize) -> impl Strategy<Value = Branch> {
    (
        prop::collection::vec(step(), 1..5),
        prop::collection::vec(any::<prop::sample::Index>(), outputs),
        prop::array::uniform3(-2.0f32..2.0),
    )
        .prop_map(|(steps, outs, constant)| Branch {
            steps,
            outputs: outs.iter().map(|i| i.index(usize::MAX)).collect(),
            constant,
            nested: None,
        })
}

fn condition() -> impl Strategy<Value = Condition> {
    prop_oneof![
        3 => Just(Condition::Input),
        1 => any::<bool>().prop_map(Condition::Constant),
    ]
}

fn branch(outputs: usize) -> impl Strategy<Value = Branch> {
    (
        leaf_branch(outputs),
        prop::option::weighted(
            0.3,
            (condition(), leaf_branch(1), leaf_branch(1)).prop_map(Box::new),
        ),
    )
        .prop_map(|(mut b, nested)| {
            b.nested = nested;
            b
        })
}

/// Writes `branch` as the body of a subgraph; values are `{prefix}{i}`.
fn render_branch(
    b: &Branch,
    prefix: &str,
    cond_name: &str,
    indent: &str,
    out: &mut String,
) -> Vec<String> {
    // Values every step may read: the graph inputs, an outer value, earlier results.
    let mut values: Vec<String> = vec!["x".into(), "y".into(), "s".into()];
    let mut body = String::new();
    if let Some(nested) = &b.nested {
        let (cond, then_b, else_b) = nested.as_ref();
        let name = format!("{prefix}n");
        let inner_cond = match cond {
            Condition::Input => cond_name.to_owned(),
            Condition::Constant(v) => {
                body.push_str(&format!(
                    "{indent}{prefix}k = Constant <value: tensor = bool {{{}}}> ()\n",
                    u8::from(*v)
                ));
                format!("{prefix}k")
            }
        };
        let mut then_text = String::new();
        let t = render_branch(
            then_b,
            &format!("{prefix}t"),
            cond_name,
            &format!("{indent}   "),
            &mut then_text,
        );
        let mut else_text = String::new();
        let e = render_branch(
            else_b,
            &format!("{prefix}e"),
            cond_name,
            &format!("{indent}   "),
            &mut else_text,
        );
        body.push_str(&format!(
            "{indent}{name} = If ({inner_cond}) <then_branch: graph = {prefix}tg () => (float[N,3] {}) {{\n{then_text}{indent}}}, else_branch: graph = {prefix}eg () => (float[N,3] {}) {{\n{else_text}{indent}}}>\n",
            t[0], e[0]
        ));
        values.push(name);
    }
    for (i, s) in b.steps.iter().enumerate() {
        let v = format!("{prefix}{i}");
        let pick = |k: usize| values[k % values.len()].clone();
        let line = match s {
            Step::Unary(op, a) => format!("{v} = {op} ({})", pick(*a)),
            Step::Binary(op, a, c) => format!("{v} = {op} ({}, {})", pick(*a), pick(*c)),
            Step::WithConstant(op, a) => format!("{v} = {op} ({}, {prefix}c)", pick(*a)),
        };
        body.push_str(&format!("{indent}{line}\n"));
        values.push(v);
    }
    // Outputs: results of this branch (an output may repeat).
    let computed = &values[3..];
    let outputs: Vec<String> = b
        .outputs
        .iter()
        .map(|k| computed[k % computed.len()].clone())
        .collect();
    // Distinct output names: repeat a value through Identity.
    let mut names = Vec::new();
    for (i, o) in outputs.iter().enumerate() {
        let name = format!("{prefix}o{i}");
        body.push_str(&format!("{indent}{name} = Identity ({o})\n"));
        names.push(name);
    }
    out.push_str(&format!(
        "{indent}{prefix}c = Constant <value: tensor = float[3] {{{},{},{}}}> ()\n",
        b.constant[0], b.constant[1], b.constant[2]
    ));
    out.push_str(&body);
    names
}

fn render(cond: Condition, one_element: bool, then_b: &Branch, else_b: &Branch) -> String {
    let cond_type = if one_element { "bool[1]" } else { "bool" };
    let mut text = format!(
        "<ir_version: 10, opset_import: [\"\" : 17]>\ng ({cond_type} c, float[N,3] x, float[N,3] y) => ("
    );
    let outs: Vec<String> = (0..then_b.outputs.len())
        .map(|i| format!("float[N,3] r{i}"))
        .collect();
    text.push_str(&outs.join(", "));
    text.push_str(") {\n   s = Add (x, y)\n");
    let cond_name = match cond {
        Condition::Input => "c".to_owned(),
        Condition::Constant(v) => {
            text.push_str(&format!(
                "   k = Constant <value: tensor = {cond_type} {{{}}}> ()\n",
                u8::from(v)
            ));
            "k".to_owned()
        }
    };
    let mut then_text = String::new();
    let t = render_branch(then_b, "t", &cond_name, "      ", &mut then_text);
    let mut else_text = String::new();
    let e = render_branch(else_b, "e", &cond_name, "      ", &mut else_text);
    let results: Vec<String> = (0..t.len()).map(|i| format!("r{i}")).collect();
    let typed = |names: &[String]| {
        names
            .iter()
            .map(|n| format!("float[N,3] {n}"))
            .collect::<Vec<_>>()
            .join(", ")
    };
    text.push_str(&format!(
        "   {} = If ({cond_name}) <then_branch: graph = tg () => ({}) {{\n{then_text}   }}, else_branch: graph = eg () => ({}) {{\n{else_text}   }}>\n}}",
        results.join(", "),
        typed(&t),
        typed(&e)
    ));
    text
}

proptest! {
    #![proptest_config(ProptestConfig { cases: 48, ..ProptestConfig::default() })]

    #[test]
    fn random_pure_branches_lower_and_compute_the_same(
        outputs in 1usize..3,
        cond in condition(),
        one_element in any::<bool>(),
        (t1, e1, t2, e2) in (branch(1), branch(1), branch(2), branch(2)),
    ) {
        let (then_b, else_b) = if outputs == 1 { (t1, e1) } else { (t2, e2) };
        let text = render(cond, one_element, &then_b, &else_b);
        let before = model(&text);
        let (after, report) = apply(&LowerIfPass, &before);
        prop_assert_eq!(count_ops(&after, "If"), 0, "{}\n{:?}", text, report.declined);
        assert_same(&before, &after, 4);
    }
}
