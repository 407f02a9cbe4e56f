//! The pattern layer: a rule over two operators declared in one line, named captures, a check
//! that declines with a reason, "does not apply" kept apart from "declined", anchors on
//! several operator types, and a malformed pattern reported as an error, not a panic.

use std::sync::Arc;

use onnx_rewrite_egraph::extract::NodeCount;
use onnx_rewrite_egraph::pattern::Match;
use onnx_rewrite_egraph::rule::{Decline, Outcome, Rule, RuleCx};
use onnx_rewrite_egraph::run::{RewriteOptions, RewriteSummary, RunError, rewrite_model};
use onnx_rewrite_ir::Model;

mod common;

use common::{model, text};

fn rewrite(model: &mut Model, rule: Arc<dyn Rule>) -> Result<RewriteSummary, RunError> {
    let options = RewriteOptions {
        limits: Default::default(),
        cost: &NodeCount,
        fold_constants: false,
        trace: true,
        only_anchored_graphs: true,
    };
    rewrite_model(model, &[rule], &options)
}

/// `Transpose(Transpose(x, p), q) → x` when `q ∘ p` is the identity: two transposes that
/// undo each other move no data.
struct TransposePair;

impl Rule for TransposePair {
    fn name(&self) -> &'static str {
        "transpose-pair"
    }

    fn pattern(&self) -> &'static str {
        "Transpose(Transpose(x) @inner) @outer"
    }

    fn apply(&self, cx: &mut RuleCx<'_>, m: &Match) -> Result<Outcome, Decline> {
        let x = cx.class(m, "x")?;
        let perm = |node| {
            cx.attribute(node, "perm")
                .map(|a| a.ints.clone())
                .ok_or_else(|| Decline::new("a Transpose without perm reverses the axes"))
        };
        let (p, q) = (perm(cx.node(m, "inner")?)?, perm(cx.node(m, "outer")?)?);
        if p.len() != q.len() {
            return Err(Decline::new("the two perms have different ranks"));
        }
        let composed: Option<Vec<i64>> = q
            .iter()
            .map(|&axis| usize::try_from(axis).ok().and_then(|a| p.get(a).copied()))
            .collect();
        let identity = (0..p.len() as i64).collect::<Vec<_>>();
        if composed.as_ref() != Some(&identity) {
            return Ok(Outcome::DoesNotApply(
                "the perms do not compose to the identity",
            ));
        }
        Ok(Outcome::Rewrite(x))
    }
}

const PAIRS: &str = r#"
<ir_version: 10, opset_import: ["" : 21]>
g (float[2,3,4] x) => (float[2,3,4] y, float[4,2,3] z, float[4,3,2] w) {
   [t1] a = Transpose <perm: ints = [1, 2, 0]> (x)
   [t2] y = Transpose <perm: ints = [2, 0, 1]> (a)
   [t3] b = Transpose <perm: ints = [1, 2, 0]> (x)
   [t4] z = Transpose <perm: ints = [1, 2, 0]> (b)
   [t5] c = Transpose (x)
   [t6] w = Transpose <perm: ints = [0, 1, 2]> (c)
}"#;

#[test]
fn a_two_op_pattern_rewrites_declines_and_does_not_apply_each_where_it_should() {
    let mut m = model(PAIRS);
    let summary = rewrite(&mut m, Arc::new(TransposePair)).expect("runs");
    let after = text(&m);
    // t1∘t2 is the identity: y reads x. t3 (one e-class with t1) ∘ t4 is not: t4 stays.
    // t5 has no perm: declined.
    assert!(!after.contains("[t2]"), "{after}");
    assert!(after.contains("[t4]"), "{after}");
    assert_eq!(summary.rules.get("transpose-pair"), Some(&1), "{summary:?}");
    // Once y ≡ x, `t5 = Transpose(x)` is a Transpose of a Transpose too, and also declined.
    assert!(
        summary.declined.iter().any(|d| d.node.contains("t6"))
            && summary
                .declined
                .iter()
                .all(|d| d.reason.contains("reverses the axes")),
        "{:?}",
        summary.declined
    );
    let trace = summary.trace.join("\n");
    assert!(trace.contains("transpose-pair applied"), "{trace}");
    assert!(
        trace.contains("does not apply") && trace.contains("do not compose"),
        "{trace}"
    );
    assert!(
        trace.contains("declined") && trace.contains("reverses the axes"),
        "{trace}"
    );
    // Only Transposes are tried.
    assert!(
        summary.trace.iter().all(|l| l.contains(" Transpose ")),
        "{trace}"
    );
}

/// One rule, several anchors: each operator type of the root is tried, no other.
struct NameTheAnchor;

impl Rule for NameTheAnchor {
    fn name(&self) -> &'static str {
        "name-the-anchor"
    }

    fn pattern(&self) -> &'static str {
        "Relu|Neg(x)"
    }

    fn apply(&self, _cx: &mut RuleCx<'_>, _m: &Match) -> Result<Outcome, Decline> {
        Ok(Outcome::DoesNotApply("only counting"))
    }
}

#[test]
fn a_rule_anchors_on_every_operator_of_its_root_and_no_other() {
    let mut m = model(
        r#"
<ir_version: 10, opset_import: ["" : 21]>
g (float[3] x) => (float[3] y) {
   [r] a = Relu (x)
   [n] b = Neg (a)
   [s] c = Sigmoid (b)
   [t] y = Tanh (c)
}"#,
    );
    let summary = rewrite(&mut m, Arc::new(NameTheAnchor)).expect("runs");
    let ops: Vec<&str> = summary
        .trace
        .iter()
        .filter_map(|l| l.split(" to ").nth(1))
        .filter_map(|l| l.split(' ').next())
        .collect();
    assert_eq!(ops.len(), 2, "{:?}", summary.trace);
    assert!(ops.contains(&"Relu") && ops.contains(&"Neg"), "{ops:?}");
}

struct Malformed;

impl Rule for Malformed {
    fn name(&self) -> &'static str {
        "malformed"
    }

    fn pattern(&self) -> &'static str {
        "Relu(x,"
    }

    fn apply(&self, _cx: &mut RuleCx<'_>, _m: &Match) -> Result<Outcome, Decline> {
        Ok(Outcome::DoesNotApply("never reached"))
    }
}

#[test]
fn a_malformed_pattern_is_an_error_naming_the_rule() {
    let mut m = model(PAIRS);
    let before = text(&m);
    let err = rewrite(&mut m, Arc::new(Malformed)).expect_err("refused");
    assert!(
        matches!(
            err,
            RunError::Pattern {
                rule: "malformed",
                ..
            }
        ),
        "{err}"
    );
    assert_eq!(text(&m), before, "nothing was touched");
}
