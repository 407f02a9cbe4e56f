//! Calls of model-local functions, inlined: attribute binding, nested calls, calls inside
//! branches (the torch.cond export form), and the calls that must stay. tract does not run
//! model-local functions, so each result is executed against a hand-written expansion.

mod common;

use common::{assert_same, snapshot};
use onnx_rewrite_ir::GraphOwner;
use onnx_rewrite_lower_if::{InlineFunctionsPass, LowerIfPass};
use onnx_rewrite_pass::{Pass, PassContext};
use onnx_rewrite_testkit::{apply, count_ops, model};

fn inline(pass: &dyn Pass, text: &str, reference: &str) -> String {
    let before = model(text);
    let (after, report) = apply(pass, &before);
    assert!(
        report.declined.is_empty(),
        "nothing declined: {:?}",
        report.declined
    );
    assert!(after.functions.is_empty(), "called functions are removed");
    assert_same(&model(reference), &after, 4);
    snapshot(&after, &report)
}

#[test]
fn attributes_are_bound_by_name_with_defaults_and_unbound_references_dropped() {
    insta::assert_snapshot!(inline(
        &InlineFunctionsPass,
        r#"<ir_version: 10, opset_import: ["" : 17, "local" : 1]>
g (float[N,3] x) => (float[N,3] y, float[N,3] z) {
   [call1] y = local.Scale <alpha: float = 3.0> (x)
   [call2] z = local.Scale (x)
}
<domain: "local", opset_import: ["" : 17]>
Scale <alpha: float = 2.0, slope> (a) => (b) {
   [scale] c = Constant <value_float: float = @alpha> ()
   [mul] m = Mul (a, c)
   [act] b = LeakyRelu <alpha: float = @slope> (m)
}"#,
        r#"<ir_version: 10, opset_import: ["" : 17]>
g (float[N,3] x) => (float[N,3] y, float[N,3] z) {
   c1 = Constant <value_float: float = 3.0> ()
   m1 = Mul (x, c1)
   y = LeakyRelu (m1)
   c2 = Constant <value_float: float = 2.0> ()
   m2 = Mul (x, c2)
   z = LeakyRelu (m2)
}"#,
    ));
}

/// The form torch.cond exported in: each branch one call of a function, the branch graph
/// with no inputs, the function calling another.
const TORCH_COND: &str = r#"<ir_version: 10, opset_import: ["" : 17, "pkg.torch.__subgraph__" : 1]>
g (bool c, float[N,3] x) => (float[N,3] y) <float[3] w = {1,2,3}> {
   [cond] y = If (c) <then_branch: graph = true_graph () => (float[N,3] t_out) {
      [call_t] t_out = pkg.torch.__subgraph__.true_graph_0 (x, w)
   }, else_branch: graph = false_graph () => (float[N,3] e_out) {
      [call_e] e_out = pkg.torch.__subgraph__.false_graph_0 (x)
   }>
}
<domain: "pkg.torch.__subgraph__", opset_import: ["" : 17, "pkg.torch.__subgraph__" : 1]>
true_graph_0 (x, w) => (out) {
   [mul] m = Mul (x, w)
   [call_helper] out = pkg.torch.__subgraph__.helper (m)
}
<domain: "pkg.torch.__subgraph__", opset_import: ["" : 17]>
helper (a) => (b) {
   [relu] b = Relu (a)
}
<domain: "pkg.torch.__subgraph__", opset_import: ["" : 17]>
false_graph_0 (x) => (out) {
   [neg] out = Neg (x)
}"#;

const TORCH_COND_EXPANDED: &str = r#"<ir_version: 10, opset_import: ["" : 17]>
g (bool c, float[N,3] x) => (float[N,3] y) <float[3] w = {1,2,3}> {
   m = Mul (x, w)
   t = Relu (m)
   e = Neg (x)
   y = Where (c, t, e)
}"#;

#[test]
fn calls_inside_branches_and_inside_functions_are_inlined() {
    insta::assert_snapshot!(inline(
        &InlineFunctionsPass,
        TORCH_COND,
        TORCH_COND_EXPANDED
    ));
}

#[test]
fn lower_if_inlines_the_branch_functions_first() {
    let text = inline(&LowerIfPass, TORCH_COND, TORCH_COND_EXPANDED);
    assert!(!text.contains("If ("), "{text}");
    insta::assert_snapshot!(text);
}

#[test]
fn a_missing_optional_input_stays_missing_and_overloads_are_told_apart() {
    insta::assert_snapshot!(inline(
        &InlineFunctionsPass,
        r#"<ir_version: 10, opset_import: ["" : 17, "local" : 1]>
g (float[N,3] x) => (float[N,3] y, float[N,3] z) <float lo = {-1}> {
   [clamp] y = local.Clamp:low (x, lo)
   [twice] z = local.Clamp:double (x)
}
<domain: "local", overload: "low", opset_import: ["" : 17]>
Clamp (a, low, high) => (b) {
   [clip] b = Clip (a, low, high)
}
<domain: "local", overload: "double", opset_import: ["" : 17]>
Clamp (a) => (b) {
   [add] b = Add (a, a)
}"#,
        r#"<ir_version: 10, opset_import: ["" : 17]>
g (float[N,3] x) => (float[N,3] y, float[N,3] z) <float lo = {-1}> {
   y = Clip (x, lo)
   z = Add (x, x)
}"#,
    ));
}

#[test]
fn a_function_with_another_opset_is_declined_and_kept() {
    let before = model(
        r#"<ir_version: 10, opset_import: ["" : 17, "local" : 1]>
g (float[N,3] x) => (float[N,3] y) {
   [first] t = local.Neg1 (x)
   [call] y = local.Twice (t)
}
<domain: "local", opset_import: ["" : 17]>
Neg1 (a) => (b) {
   [neg] b = Neg (a)
}
<domain: "local", opset_import: ["" : 13]>
Twice (a) => (b) {
   [add] b = Add (a, a)
}"#,
    );
    let (after, report) = apply(&InlineFunctionsPass, &before);
    assert_eq!(report.declined.len(), 1);
    assert_eq!(after.functions.len(), 1, "a function still called stays");
    // The inlined function before it went; the kept one's body still names its entry.
    assert_eq!(
        after.graph(after.functions[0].body).owner(),
        GraphOwner::Function { index: 0 }
    );
    insta::assert_snapshot!(snapshot(&after, &report));
}

#[test]
fn an_opset_only_the_function_imports_is_added_to_the_model() {
    let before = model(
        r#"<ir_version: 10, opset_import: ["" : 17, "local" : 1]>
g (float[N] x) => (float[N] y) {
   [call] y = local.Binarize (x)
}
<domain: "local", opset_import: ["" : 17, "ai.onnx.ml" : 1]>
Binarize (a) => (b) {
   [bin] b = ai.onnx.ml.Binarizer <threshold: float = 0.5> (a)
}"#,
    );
    let (after, report) = apply(&InlineFunctionsPass, &before);
    assert!(report.declined.is_empty());
    assert_eq!(count_ops(&after, "Binarizer"), 1);
    assert_eq!(after.opset("ai.onnx.ml"), Some(1));
    insta::assert_snapshot!(snapshot(&after, &report));
}

#[test]
fn a_recursive_function_is_an_error() {
    let mut m = model(
        r#"<ir_version: 10, opset_import: ["" : 17, "local" : 1]>
g (float[N] x) => (float[N] y) {
   [call] y = local.Ping (x)
}
<domain: "local", opset_import: ["" : 17, "local" : 1]>
Ping (a) => (b) {
   [pong] b = local.Pong (a)
}
<domain: "local", opset_import: ["" : 17, "local" : 1]>
Pong (a) => (b) {
   [ping] b = local.Ping (a)
}"#,
    );
    let err = InlineFunctionsPass
        .run(&mut m, &PassContext::default())
        .expect_err("recursion is refused");
    insta::assert_snapshot!(err.to_string(), @"function 'Ping' calls itself (Ping → Pong → Ping); ONNX functions cannot be recursive");
}

#[test]
fn calls_inside_a_kept_function_are_inlined_under_its_opsets() {
    // `Old` stays (it uses opset 13, the model 17); the `Helper` it calls matches its own
    // imports, so the call inside it is inlined, `@scale` now referring to `Old`'s attribute.
    let before = model(
        r#"<ir_version: 10, opset_import: ["" : 17, "local" : 1]>
g (float[N,3] x) => (float[N,3] y) {
   [call] y = local.Old <k: float = 2.0> (x)
}
<domain: "local", opset_import: ["" : 13, "local" : 1]>
Old <k> (a) => (b) {
   [inner] h = local.Helper <scale: float = @k> (a)
   [relu] b = Relu (h)
}
<domain: "local", opset_import: ["" : 13]>
Helper <scale> (a) => (b) {
   [c] c = Constant <value_float: float = @scale> ()
   [mul] b = Mul (a, c)
}"#,
    );
    let (after, report) = apply(&InlineFunctionsPass, &before);
    assert_eq!(report.declined.len(), 1);
    assert_eq!(after.functions.len(), 1);
    insta::assert_snapshot!(snapshot(&after, &report));
}

/// `--trace-rules`: a call kept is a line of the trace too.
#[test]
fn a_decline_is_in_the_trace() {
    let before = model(
        r#"<ir_version: 10, opset_import: ["" : 17, "local" : 1]>
g (float[N,3] x) => (float[N,3] y) {
   [call] y = local.Twice (x)
}
<domain: "local", opset_import: ["" : 13]>
Twice (a) => (b) {
   [add] b = Add (a, a)
}"#,
    );
    onnx_rewrite_testkit::assert_declines_traced(&InlineFunctionsPass, &before, &[]);
}
