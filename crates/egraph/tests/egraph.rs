//! Lower → (rules) → extract → write back, on small graphs written in ONNX text syntax.
//! Snapshots show the graph after; each test also checks the IR invariants and idempotence.

use std::sync::Arc;

use onnx_rewrite_egraph::example::RemoveIdentity;
use onnx_rewrite_egraph::extract::NodeCount;
use onnx_rewrite_egraph::roundtrip::EgraphRoundTrip;
use onnx_rewrite_egraph::rule::Rule;
use onnx_rewrite_egraph::run::{RewriteOptions, RewriteSummary, rewrite_model};
use onnx_rewrite_ir::Model;
use onnx_rewrite_pass::{Pass, PassContext};

mod common;

use common::{model, text};

fn rewrite(model: &mut Model, rules: Vec<Arc<dyn Rule>>) -> RewriteSummary {
    let options = RewriteOptions {
        limits: Default::default(),
        cost: &NodeCount,
        fold_constants: false,
        trace: true,
        only_anchored_graphs: false,
    };
    let summary = rewrite_model(model, &rules, &options).expect("the rewrite runs");
    model.check().expect("IR invariants hold after the rewrite");
    summary
}

/// Runs the rules twice: the second run must not change the text.
fn rewrite_to_fixpoint(source: &str, rules: Vec<Arc<dyn Rule>>) -> (String, RewriteSummary) {
    let mut m = model(source);
    let summary = rewrite(&mut m, rules.clone());
    let once = text(&m);
    rewrite(&mut m, rules);
    assert_eq!(
        text(&m),
        once,
        "applying the rules to their own output changes nothing"
    );
    (once, summary)
}

const IDENTITIES: &str = r#"
<ir_version: 10, opset_import: ["" : 21]>
g (float[N,4] x) => (float[N,4] y, float[N,4] z) {
   [keep_me] a = Identity (x)
   [relu] b = Relu (a)
   [out_y] y = Identity (b)
   [out_z] z = Identity (x)
}
"#;

#[test]
fn remove_identity_worked_example() {
    let (after, summary) = rewrite_to_fixpoint(IDENTITIES, vec![Arc::new(RemoveIdentity)]);
    // `a` and `z` are the same e-node (Identity of x), so two e-classes change, not three.
    assert_eq!(summary.rules.get("remove-identity"), Some(&2));
    insta::assert_snapshot!(after);
}

#[test]
fn a_rule_that_declines_says_why() {
    let source = r#"
<ir_version: 10, opset_import: ["" : 21]>
g (seq(float[N]) s) => (seq(float[N]) t) {
   [seq_identity] t = Identity (s)
}
"#;
    let (after, summary) = rewrite_to_fixpoint(source, vec![Arc::new(RemoveIdentity)]);
    assert_eq!(summary.declined.len(), 1, "{summary:?}");
    let declined = &summary.declined[0];
    assert!(
        declined.node.contains("seq_identity") && declined.reason.contains("not a tensor"),
        "{declined:?}"
    );
    assert!(
        summary
            .trace
            .iter()
            .any(|t| t.contains("declined on Identity")),
        "{:?}",
        summary.trace
    );
    assert!(after.contains("t = Identity (s)"), "{after}");
}

#[test]
fn egraph_round_trip_merges_duplicates_and_drops_dead_nodes() {
    let source = r#"
<ir_version: 10, opset_import: ["" : 21]>
g (float[2] x, bool c) => (float[2] o, float[2] p, float[2] q) {
   [first] a = Relu (x)
   [duplicate] b = Relu (x)
   [dead] d = Sigmoid (x)
   [random_1] r1 = RandomNormalLike (x)
   [random_2] r2 = RandomNormalLike (x)
   [sum] p = Add (r1, r2)
   [same_as_p_inputs] q = Add (a, b)
   [branch] o = If (c) <then_branch: graph = then_g () => (float[2] t) {
      [then_neg] t = Neg (b)
   }, else_branch: graph = else_g () => (float[2] e) {
      [else_neg] e = Neg (a)
   }>
}
"#;
    let mut m = model(source);
    let report = EgraphRoundTrip
        .run(&mut m, &PassContext::default())
        .expect("runs");
    m.check().expect("invariants");
    let after = text(&m);
    // The two RandomNormalLike stay apart (impure), the dead Sigmoid goes, `b` becomes `a`
    // everywhere, the then-branch's capture included.
    assert_eq!(report.nodes_before, 10);
    assert_eq!(report.nodes_after, 8);
    insta::assert_snapshot!(after);
    let mut again = model(&after);
    EgraphRoundTrip
        .run(&mut again, &PassContext::default())
        .expect("runs");
    assert_eq!(text(&again), after, "egraph is idempotent");
}

#[test]
fn egraph_round_trip_keeps_an_unchanged_graph_byte_for_byte() {
    let source = r#"
<ir_version: 10, opset_import: ["" : 21]>
g (float[N,4] x, float[4,4] w) => (float[N,4] y, float[N] s) {
   [mm] h = MatMul (x, w)
   [act] g = Gelu (h)
   [split] a, b = Split <axis: int = 1, num_outputs: int = 2> (g)
   [cat] y = Concat <axis: int = 1> (b, a)
   [sum] s = ReduceSum <keepdims: int = 0> (y, axes)
}
"#;
    let with_axes = source.replace(
        "(float[N,4] x, float[4,4] w)",
        "(float[N,4] x, float[4,4] w, int64[1] axes)",
    );
    let mut m = model(&with_axes);
    let before = onnx_rewrite_ir::save::to_bytes(&m).expect("saves");
    EgraphRoundTrip
        .run(&mut m, &PassContext::default())
        .expect("runs");
    assert_eq!(onnx_rewrite_ir::save::to_bytes(&m).expect("saves"), before);
}

#[test]
fn duplicated_graph_outputs_keep_their_own_nodes() {
    let source = r#"
<ir_version: 10, opset_import: ["" : 21]>
g (float[2] x) => (float[2] y1, float[2] y2) {
   [one] y1 = Relu (x)
   [two] y2 = Relu (x)
}
"#;
    let (after, _) = rewrite_to_fixpoint(source, Vec::new());
    assert!(
        after.contains("y1 = Relu (x)") && after.contains("y2 = Relu (x)"),
        "{after}"
    );
    assert!(!after.contains("Identity"), "{after}");
}

#[test]
fn an_output_value_takes_the_name_once_and_an_output_identity_carries_it_again() {
    // `y` and `z` are both `t` once their Identities go: `t` takes the first output's name
    // (reroute's rule renames a value no other output holds), the second keeps its Identity.
    let source = r#"
<ir_version: 10, opset_import: ["" : 21]>
g (float[2] x) => (float[2] y, float[2] z) {
   [relu] t = Relu (x)
   [out_y] y = Identity (t)
   [out_z] z = Identity (t)
}
"#;
    let (after, summary) = rewrite_to_fixpoint(source, vec![Arc::new(RemoveIdentity)]);
    assert_eq!(summary.emitted.nodes_after, 2, "{after}");
    assert!(after.contains("[relu] y = Relu (x)"), "{after}");
    assert!(after.contains("[out_z] z = Identity (y)"), "{after}");
}
