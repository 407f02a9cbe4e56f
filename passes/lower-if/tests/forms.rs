//! Every `If` form the pass inlines, lowers or declines, before → after in ONNX text syntax,
//! each checked by execution (tract runs `If`) and for idempotence.

mod common;

use common::{assert_same, rewrite, snapshot};
use onnx_rewrite_lower_if::LowerIfPass;
use onnx_rewrite_testkit::{apply, bytes, count_ops, model};

const HEADER: &str = r#"<ir_version: 10, opset_import: ["" : 17]>"#;

/// Lowers `body`, checks it computes the same (`seeds` input sets per dim size), and returns
/// the snapshot text and how many `If`s are left.
fn lower(body: &str, seeds: u64) -> (String, usize) {
    let before = model(&format!("{HEADER}\n{body}"));
    let (after, report) = rewrite(&LowerIfPass, &before, seeds);
    let left = count_ops(&after, "If");
    assert_eq!(
        report.declined.len(),
        left,
        "every If left is explained: {:?}",
        report.declined
    );
    (snapshot(&after, &report), left)
}

fn lowered(body: &str) -> String {
    let (text, left) = lower(body, 6);
    assert_eq!(left, 0, "{text}");
    text
}

/// For originals tract cannot run (it analyses both branches of an `If` and rejects some
/// forms): the result is checked against `reference`, the model the `If` stands for.
fn lowered_as(body: &str, reference: &str) -> String {
    let before = model(&format!("{HEADER}\n{body}"));
    let (after, report) = apply(&LowerIfPass, &before);
    assert_eq!(count_ops(&after, "If"), 0, "{:?}", report.declined);
    assert_same(&model(&format!("{HEADER}\n{reference}")), &after, 6);
    snapshot(&after, &report)
}

/// A declined `If` leaves the model exactly as it was (so nothing needs executing).
fn declined(body: &str) -> String {
    let before = model(&format!("{HEADER}\n{body}"));
    let (after, report) = apply(&LowerIfPass, &before);
    assert_eq!(count_ops(&after, "If"), 1);
    assert_eq!(report.declined.len(), 1);
    assert_eq!(
        bytes(&after),
        bytes(&before),
        "a declined If changes nothing"
    );
    snapshot(&after, &report)
}

// ---- constant conditions ----------------------------------------------------------------

#[test]
fn constant_true_inlines_the_then_branch() {
    insta::assert_snapshot!(lowered(
        r#"g (float[N,3] x) => (float[N,3] y) {
   c = Constant <value: tensor = bool {1}> ()
   [cond] y = If (c) <then_branch: graph = t () => (float[N,3] a) {
      [relu] a = Relu (x)
   }, else_branch: graph = e () => (float[N,3] b) {
      [neg] b = Neg (x)
   }>
}"#
    ));
}

#[test]
fn constant_false_inlines_the_else_branch() {
    insta::assert_snapshot!(lowered(
        r#"g (float[N,3] x) => (float[N,3] y) <bool c = {0}> {
   [cond] y = If (c) <then_branch: graph = t () => (float[N,3] a) {
      [relu] a = Relu (x)
   }, else_branch: graph = e () => (float[N,3] b) {
      [neg] b = Neg (x)
      [abs] b2 = Abs (b)
      [add] b3 = Add (b2, x)
   }>
}"#
    ));
}

#[test]
fn a_condition_folded_from_shapes_is_constant() {
    // The legacy exporter's pattern: branch on a dim the shape already fixes.
    insta::assert_snapshot!(lowered_as(
        r#"g (float[2,3] x) => (float[3] y) {
   s = Shape (x)
   zero = Constant <value: tensor = int64[1] {0}> ()
   d = Gather (s, zero)
   two = Constant <value: tensor = int64[1] {2}> ()
   c = Equal (d, two)
   [cond] y = If (c) <then_branch: graph = t () => (float[3] a) {
      [sum] a = ReduceSum <keepdims: int = 0> (x, zero)
   }, else_branch: graph = e () => (float[3] b) {
      [max] b = ReduceMax <keepdims: int = 0> (x, zero)
   }>
}"#,
        r#"g (float[2,3] x) => (float[3] y) {
   zero = Constant <value: tensor = int64[1] {0}> ()
   y = ReduceSum <keepdims: int = 0> (x, zero)
}"#
    ));
}

#[test]
fn nested_constant_conditions_use_what_the_outer_graph_knows() {
    // The inner condition reads `k`, computed in the main graph: the branch's own analysis
    // knows it only through what the main graph's analysis brings in.
    insta::assert_snapshot!(lowered(
        r#"g (float[N,3] x) => (float[N,3] y) {
   k = Constant <value: tensor = float {3}> ()
   zero = Constant <value: tensor = float {0}> ()
   c = Greater (k, zero)
   [outer] y = If (c) <then_branch: graph = t () => (float[N,3] a) {
      ten = Constant <value: tensor = float {10}> ()
      d = Less (k, ten)
      [inner] a = If (d) <then_branch: graph = tt () => (float[N,3] p) {
         [mul] p = Mul (x, k)
      }, else_branch: graph = te () => (float[N,3] q) {
         [sub] q = Sub (x, k)
      }>
   }, else_branch: graph = e () => (float[N,3] b) {
      [neg] b = Neg (x)
   }>
}"#
    ));
}

#[test]
fn outer_captures_resolve_to_the_outer_values() {
    // The branch reads a graph input, an outer initializer and an outer node's output, and
    // returns an outer value as it is (the main graph output keeps its name via Identity).
    insta::assert_snapshot!(lowered(
        r#"g (float[N,3] x) => (float[N,3] y, float[N,3] z) <float[3] w = {1,2,3}, bool c = {1}> {
   [scale] s = Mul (x, w)
   [cond] y, z = If (c) <then_branch: graph = t () => (float[N,3] a, float[N,3] x2) {
      [add] a = Add (s, w)
      [id] x2 = Identity (x)
   }, else_branch: graph = e () => (float[N,3] b, float[N,3] x3) {
      [neg] b = Neg (s)
      [id2] x3 = Identity (x)
   }>
}"#
    ));
}

#[test]
fn a_branch_returning_an_outer_value_gets_an_identity_for_the_model_output() {
    insta::assert_snapshot!(lowered_as(
        r#"g (float[N,3] x) => (float[N,3] y) <bool c = {1}> {
   [cond] y = If (c) <then_branch: graph = t () => (float[N,3] x) {
   }, else_branch: graph = e () => (float[N,3] b) {
      [neg] b = Neg (x)
   }>
}"#,
        r#"g (float[N,3] x) => (float[N,3] y) {
   y = Identity (x)
}"#
    ));
}

#[test]
fn branch_names_that_clash_with_outer_names_are_renamed() {
    // `t` exists in the main graph and in the branch; `u` in both branches.
    insta::assert_snapshot!(lowered(
        r#"g (float[N,3] x) => (float[N,3] y, float[N,3] t) <bool c = {1}> {
   [outer_t] t = Relu (x)
   [cond] y = If (c) <then_branch: graph = tb () => (float[N,3] a) {
      [t] t = Neg (x)
      [u] u = Abs (t)
      [a] a = Add (u, t)
   }, else_branch: graph = eb () => (float[N,3] b) {
      [u2] u = Sigmoid (x)
      [b] b = Mul (u, x)
   }>
}"#
    ));
}

#[test]
fn subgraph_initializers_move_with_unique_names() {
    // onnxscript #2810: the Squeeze axes initializer of the branch must come along.
    insta::assert_snapshot!(lowered(
        r#"g (float[N,1] x) => (float[N] y) <int64[1] axes = {0}, bool c = {1}> {
   [use_outer] xa = Unsqueeze (x, axes)
   [cond] y = If (c) <then_branch: graph = t () => (float[N] a) <int64[1] axes = {1}> {
      [squeeze] a = Squeeze (x, axes)
   }, else_branch: graph = e () => (float[N] b) <int64[1] axes2 = {-1}> {
      [squeeze2] b = Squeeze (x, axes2)
   }>
}"#
    ));
}

#[test]
fn a_branch_output_that_is_a_branch_initializer() {
    // onnxsim #452 / onnx-optimizer #314: the taken branch's output is its initializer.
    insta::assert_snapshot!(lowered(
        r#"g (float[3] x) => (float[3] y, float[3] z) <bool c = {0}> {
   [cond] y = If (c) <then_branch: graph = t () => (float[3] a) {
      [neg] a = Neg (x)
   }, else_branch: graph = e () => (float[3] k) <float[3] k = {7,8,9}> {
   }>
   [add] z = Add (y, x)
}"#
    ));
}

// ---- dynamic conditions: the Where form -------------------------------------------------

#[test]
fn dynamic_condition_selects_with_where() {
    insta::assert_snapshot!(lowered(
        r#"g (bool c, float[N,3] x, float[N,3] y) => (float[N,3] z) {
   [cond] z = If (c) <then_branch: graph = t () => (float[N,3] a) {
      [add] a = Add (x, y)
   }, else_branch: graph = e () => (float[N,3] b) {
      [mul] b = Mul (x, y)
   }>
}"#
    ));
}

#[test]
fn a_one_element_condition_is_reshaped_to_a_scalar() {
    // Where(cond[1], a[], b[]) would give [1]: the condition becomes a scalar first.
    insta::assert_snapshot!(lowered(
        r#"g (bool[1] c, float x, float y) => (float z) {
   [cond] z = If (c) <then_branch: graph = t () => (float a) {
      [add] a = Add (x, y)
   }, else_branch: graph = e () => (float b) {
      [sub] b = Sub (x, y)
   }>
}"#
    ));
}

#[test]
fn multi_output_with_a_constant_output_and_a_shared_output() {
    // onnxscript #2184: several outputs, one a constant in each branch; one output the same
    // outer value in both branches (no Where needed).
    insta::assert_snapshot!(lowered(
        r#"g (bool c, float[N,3] x) => (float[N,3] p, float[3] q, float[N,3] r) {
   [cond] p, q, r = If (c) <then_branch: graph = t () => (float[N,3] a, float[3] k1, float[N,3] x) <float[3] k1 = {1,2,3}> {
      [relu] a = Relu (x)
   }, else_branch: graph = e () => (float[N,3] b, float[3] k2, float[N,3] x) {
      [neg] b = Neg (x)
      [k2] k2 = Constant <value: tensor = float[3] {4,5,6}> ()
   }>
}"#
    ));
}

#[test]
fn sibling_branch_names_are_made_unique() {
    insta::assert_snapshot!(lowered(
        r#"g (bool c, float[N,3] x) => (float[N,3] z) {
   [cond] z = If (c) <then_branch: graph = t () => (float[N,3] out) {
      [tmp] tmp = Relu (x)
      [out] out = Add (tmp, x)
   }, else_branch: graph = e () => (float[N,3] out) {
      [tmp] tmp = Neg (x)
      [out] out = Mul (tmp, x)
   }>
}"#
    ));
}

#[test]
fn nested_dynamic_ifs_are_lowered_innermost_first() {
    insta::assert_snapshot!(lowered(
        r#"g (bool c, bool d, float[N,3] x) => (float[N,3] y) {
   [outer] y = If (c) <then_branch: graph = t () => (float[N,3] a) {
      [inner_t] a = If (d) <then_branch: graph = tt () => (float[N,3] p) {
         [exp] p = Exp (x)
      }, else_branch: graph = te () => (float[N,3] q) {
         [neg] q = Neg (x)
      }>
   }, else_branch: graph = e () => (float[N,3] b) {
      [inner_e] b = If (d) <then_branch: graph = et () => (float[N,3] r) {
         [abs] r = Abs (x)
      }, else_branch: graph = ee () => (float[N,3] s) {
         [relu] s = Relu (x)
      }>
   }>
}"#
    ));
}

#[test]
fn an_if_inside_a_subgraph_is_lowered_there() {
    // The outer If stays (its else-branch gathers at an index the analysis cannot bound);
    // the inner one is lowered in its branch.
    let (text, left) = lower(
        r#"g (bool c, bool d, float[2,3] x, int64 j) => (float[3] y) {
   zero = Constant <value: tensor = int64 {0}> ()
   [outer] y = If (c) <then_branch: graph = t () => (float[3] a) {
      [row] r = Gather (x, zero)
      [inner] a = If (d) <then_branch: graph = tt () => (float[3] p) {
         [exp] p = Exp (r)
      }, else_branch: graph = te () => (float[3] q) {
         [neg] q = Neg (r)
      }>
   }, else_branch: graph = e () => (float[3] b) {
      [clip] i = Clip (j, zero, zero)
      [pick] b = Gather (x, i)
   }>
}"#,
        6,
    );
    assert_eq!(left, 1, "{text}");
    insta::assert_snapshot!(text);
}

#[test]
fn the_moe_expert_branch_is_total_by_its_nonzero_indices() {
    // One expert of an MoE layer, as torch.cond exports it: the tokens routed to expert 1 are
    // NonZero(Equal(topk, 1)); its columns index x ([tokens,4]) and the routing weights
    // ([tokens,2]), and the expert output is scattered back. The indices are in range by
    // construction, so computing the branch when no token is routed (NonZero empty) is safe.
    let text = lowered(
        r#"g (float[T,4] x, int64[T,2] topk, float[T,2] weights) => (float[T,4] y) <float[4,4] w1 = {1,0,0,0, 0,2,0,0, 0,0,3,0, 0,0,0,4}, int64 e = {1}, int64 zero = {0}, int64[1] col0 = {0}, int64[1] col1 = {1}, int64[1] col2 = {2}, int64[1] last = {-1}> {
   hit = Equal (topk, e)
   hit_i = Cast <to: int = 7> (hit)
   count = ReduceSum <keepdims: int = 0> (hit_i)
   c = Greater (count, zero)
   zero_f = Constant <value: tensor = float {0}> ()
   base = Mul (x, zero_f)
   [expert] y = If (c) <then_branch: graph = t () => (float[T,4] out) {
      pairs = NonZero (hit)
      pairs_t = Transpose <perm: ints = [1, 0]> (pairs)
      tok2 = Slice (pairs_t, col0, col1, col1)
      tok = Squeeze (tok2, col1)
      slot2 = Slice (pairs_t, col1, col2, col1)
      slot = Squeeze (slot2, col1)
      tok_u = Unsqueeze (tok, last)
      xs = GatherND (x, tok_u)
      h = MatMul (xs, w1)
      act = Relu (h)
      slot_u = Unsqueeze (slot, last)
      ts = Concat <axis: int = -1> (tok_u, slot_u)
      wsel = GatherND (weights, ts)
      wsel_u = Unsqueeze (wsel, last)
      scaled = Mul (act, wsel_u)
      out = ScatterND <reduction: string = "add"> (base, tok_u, scaled)
   }, else_branch: graph = e () => (float[T,4] skip) {
      skip = Identity (base)
   }>
}"#,
    );
    insta::assert_snapshot!(text);
}

// ---- declined ---------------------------------------------------------------------------

#[test]
fn declined_when_a_branch_is_random() {
    insta::assert_snapshot!(declined(
        r#"g (bool c, float[N,3] x) => (float[N,3] y) {
   [cond] y = If (c) <then_branch: graph = t () => (float[N,3] a) {
      [noise] a = RandomUniformLike <seed: float = 1> (x)
   }, else_branch: graph = e () => (float[N,3] b) {
      [neg] b = Neg (x)
   }>
}"#
    ));
}

#[test]
fn declined_when_shapes_only_broadcast() {
    // [1,D] against [N,D]: Where would widen the then-branch's result to [N,D].
    insta::assert_snapshot!(declined(
        r#"g (bool c, float[N,3] x) => (float[?,3] y) {
   zero = Constant <value: tensor = int64[1] {0}> ()
   [cond] y = If (c) <then_branch: graph = t () => (float[1,3] a) {
      [sum] a = ReduceSum <keepdims: int = 1> (x, zero)
   }, else_branch: graph = e () => (float[N,3] b) {
      [neg] b = Neg (x)
   }>
}"#
    ));
}

#[test]
fn declined_when_a_gather_index_comes_from_data() {
    // The condition guards the index; the else-branch would run the Gather anyway.
    insta::assert_snapshot!(declined(
        r#"g (float[N,3] x, int64 i) => (float[3] y) {
   s = Shape (x)
   zero = Constant <value: tensor = int64[1] {0}> ()
   n = Gather (s, zero)
   ns = Squeeze (n, zero)
   below = Less (i, ns)
   zero_s = Constant <value: tensor = int64 {0}> ()
   above = GreaterOrEqual (i, zero_s)
   c = And (below, above)
   [cond] y = If (c) <then_branch: graph = t () => (float[3] a) {
      [pick] a = Gather <axis: int = 0> (x, i)
   }, else_branch: graph = e () => (float[3] b) {
      [first] b = Gather <axis: int = 0> (x, zero_s)
   }>
}"#
    ));
}

#[test]
fn declined_when_a_squeeze_is_guarded_by_its_dim() {
    // The legacy exporter's If around Squeeze: squeezing a dim that may not be 1 fails.
    insta::assert_snapshot!(declined(
        r#"g (float[N,3] x) => (float[3] y) {
   s = Shape (x)
   zero = Constant <value: tensor = int64[1] {0}> ()
   n = Gather (s, zero)
   one = Constant <value: tensor = int64[1] {1}> ()
   c = Equal (n, one)
   [cond] y = If (c) <then_branch: graph = t () => (float[3] a) {
      [squeeze] a = Squeeze (x, zero)
   }, else_branch: graph = e () => (float[3] b) {
      [sum] b = ReduceSum <keepdims: int = 0> (x, zero)
   }>
}"#
    ));
}

#[test]
fn declined_when_an_integer_division_may_divide_by_zero() {
    insta::assert_snapshot!(declined(
        r#"g (int64[N] x, int64[N] d) => (int64[N] y) {
   zero = Constant <value: tensor = int64 {0}> ()
   eq = Equal (d, zero)
   nz = Not (eq)
   all = Cast <to: int = 7> (nz)
   m = ReduceMin <keepdims: int = 0> (all)
   c = Greater (m, zero)
   [cond] y = If (c) <then_branch: graph = t () => (int64[N] a) {
      [div] a = Div (x, d)
   }, else_branch: graph = e () => (int64[N] b) {
      [id] b = Identity (x)
   }>
}"#
    ));
}

/// An `If` whose branches make sequences: declined (Where selects tensors only).
const SEQUENCE_BRANCHES: &str = r#"g (bool c, float[3] x) => (seq(float[3]) y) {
   [cond] y = If (c) <then_branch: graph = t () => (seq(float[3]) a) {
      [seq] a = SequenceConstruct (x)
   }, else_branch: graph = e () => (seq(float[3]) b) {
      [seq2] b = SequenceConstruct (x, x)
   }>
}"#;

#[test]
fn declined_when_a_branch_makes_a_sequence() {
    // Not executed: the outputs are sequences.
    let before = model(&format!("{HEADER}\n{}", SEQUENCE_BRANCHES));
    let (after, report) = onnx_rewrite_testkit::apply(&LowerIfPass, &before);
    assert_eq!(count_ops(&after, "If"), 1);
    insta::assert_snapshot!(snapshot(&after, &report));
}

// ---- readers that need a scalar ----------------------------------------------------------

/// Behind the `If`, Range read a value whose shape nothing checked; inlined, the branch's
/// one-element 1-D tensor is what Range reads, and onnxruntime refuses a model where it can
/// see that ("Input to 'Range' op should be scalars"). The reader gets it reshaped to 0-D.
#[test]
fn an_exposed_one_element_tensor_read_as_a_scalar_is_reshaped_to_0d() {
    let body = r#"g (float[N,3] x) => (int64[3] y) {
   c = Constant <value: tensor = bool {1}> ()
   zero = Constant <value: tensor = int64 {0}> ()
   one = Constant <value: tensor = int64 {1}> ()
   [cond] w = If (c) <then_branch: graph = t () => (int64[1] a) {
      s = Shape (x)
      b = Constant <value: tensor = int64[1] {1}> ()
      e = Constant <value: tensor = int64[1] {2}> ()
      a = Slice (s, b, e)
   }, else_branch: graph = f () => (int64[1] d) {
      d = Constant <value: tensor = int64[1] {3}> ()
   }>
   [range] y = Range (zero, w, one)
}"#;
    let reference = r#"g (float[N,3] x) => (int64[3] y) {
   zero = Constant <value: tensor = int64 {0}> ()
   one = Constant <value: tensor = int64 {1}> ()
   s = Shape (x)
   b = Constant <value: tensor = int64[1] {1}> ()
   e = Constant <value: tensor = int64[1] {2}> ()
   a = Slice (s, b, e)
   none = Constant <value: tensor = int64[0] {}> ()
   w = Reshape (a, none)
   y = Range (zero, w, one)
}"#;
    let before = model(&format!("{HEADER}\n{body}"));
    let (after, report) = apply(&LowerIfPass, &before);
    assert_eq!(count_ops(&after, "If"), 0, "{:?}", report.declined);
    assert_eq!(count_ops(&after, "Reshape"), 1);
    assert_eq!(report.details["readers_fitted"], 1);
    assert!(
        report.notes.iter().any(|n| n.contains("reshaped to 0-D")),
        "{:?}",
        report.notes
    );
    assert_same(&model(&format!("{HEADER}\n{reference}")), &after, 3);
    let (again, _) = apply(&LowerIfPass, &after);
    assert_eq!(bytes(&again), bytes(&after), "idempotent");
}

/// A reader that needs a scalar and reads a value that is not one element is not "fitted" into
/// a different model: it is named in a decline.
#[test]
fn an_exposed_tensor_of_several_elements_read_as_a_scalar_is_declined_by_name() {
    let body = r#"g (float[N,3] x) => (int64[M] y) {
   c = Constant <value: tensor = bool {1}> ()
   zero = Constant <value: tensor = int64 {0}> ()
   one = Constant <value: tensor = int64 {1}> ()
   [cond] w = If (c) <then_branch: graph = t () => (int64[2] a) {
      a = Shape (x)
   }, else_branch: graph = f () => (int64[2] d) {
      d = Shape (x)
   }>
   [range] y = Range (zero, w, one)
}"#;
    let before = model(&format!("{HEADER}\n{body}"));
    let (after, report) = apply(&LowerIfPass, &before);
    assert_eq!(count_ops(&after, "Reshape"), 0);
    assert!(
        report
            .declined
            .iter()
            .any(|d| d.reason.contains("not provably one element") && d.node.contains("Range")),
        "{:?}",
        report.declined
    );
}

// ---- edits that fail or are judged unsound are rolled back ------------------------------

/// A branch whose nodes form a cycle (made after loading, which refuses one) cannot be copied:
/// the `If` stays, with the reason, and the model is exactly as it was (the partial copy, the
/// then-branch's for the select form, rolled back).
#[test]
fn a_branch_that_cannot_be_copied_leaves_the_model_as_it_was() {
    for (what, header) in [
        (
            "constant",
            "g (float[N,3] x) => (float[N,3] y) <bool c = {0}> {",
        ),
        ("dynamic", "g (bool c, float[N,3] x) => (float[N,3] y) {"),
    ] {
        let body = format!(
            r#"{header}
   [cond] y = If (c) <then_branch: graph = t () => (float[N,3] a) {{
      [relu] r = Relu (x)
      [add] a = Add (r, x)
   }}, else_branch: graph = e () => (float[N,3] b) {{
      [neg] b = Neg (x)
      [abs] d = Abs (b)
   }}>
}}"#
        );
        let mut before = model(&format!("{HEADER}\n{body}"));
        let find = |m: &onnx_rewrite_ir::Model, name: &str| {
            m.graph_ids()
                .flat_map(|g| m.graph(g).nodes().to_vec())
                .find(|n| m.node(*n).name() == name)
                .expect("the test model has the node")
        };
        let (neg, abs) = (find(&before, "neg"), find(&before, "abs"));
        let d = before.node(abs).outputs()[0].expect("abs has an output");
        before.set_node_input(neg, 0, Some(d));
        let (after, report) = apply(&LowerIfPass, &before);
        assert_eq!(count_ops(&after, "If"), 1, "{what}");
        assert!(
            report.declined.iter().any(|r| r.reason.contains("cycle")),
            "{what}: {:?}",
            report.declined
        );
        assert_eq!(
            bytes(&after),
            bytes(&before),
            "{what}: the declined If changes nothing"
        );
    }
}

/// In one graph, an `If` judged sound is lowered and one judged unsound stays exactly as it
/// was: the copies made to judge both are rolled back, the sound one copied again. (tract
/// cannot run the original, which holds two `If`s; the result is checked by what it holds.)
#[test]
fn a_sound_and_an_unsound_if_in_one_graph() {
    let before = model(&format!(
        "{HEADER}\n{}",
        r#"g (bool c, float[N,3] x) => (float[N,3] y, float[?,3] z) {
   zero = Constant <value: tensor = int64[1] {0}> ()
   [sound] y = If (c) <then_branch: graph = t () => (float[N,3] a) {
      [add] a = Add (x, x)
   }, else_branch: graph = e () => (float[N,3] b) {
      [mul] b = Mul (x, x)
   }>
   [unsound] z = If (c) <then_branch: graph = t2 () => (float[1,3] p) {
      [sum] p = ReduceSum <keepdims: int = 1> (x, zero)
   }, else_branch: graph = e2 () => (float[N,3] q) {
      [neg] q = Neg (x)
   }>
}"#
    ));
    let (after, report) = apply(&LowerIfPass, &before);
    assert_eq!(count_ops(&after, "If"), 1);
    assert_eq!(count_ops(&after, "Where"), 1);
    assert_eq!(report.declined.len(), 1);
    insta::assert_snapshot!(snapshot(&after, &report));
}

/// `--trace-rules`: an `If` left is a line of the trace too.
#[test]
fn a_decline_is_in_the_trace() {
    let before = model(&format!("{HEADER}\n{}", SEQUENCE_BRANCHES));
    onnx_rewrite_testkit::assert_declines_traced(&LowerIfPass, &before, &[]);
}

/// The time limit holds for a pass outside the e-graph too: past it, an error, no answer.
#[test]
fn the_time_limit_is_an_error() {
    use onnx_rewrite_pass::{Pass, PassContext, PassError, RunLimits};
    let mut m = model(&format!(
        "{HEADER}\n{}",
        r#"g (bool c, float[3] x) => (float[3] y) {
   [cond] y = If (c) <then_branch: graph = t () => (float[3] a) {
      [neg] a = Neg (x)
   }, else_branch: graph = e () => (float[3] b) {
      [abs] b = Abs (x)
   }>
}"#
    ));
    let cx = PassContext {
        limits: RunLimits {
            time_limit: std::time::Duration::ZERO,
            ..RunLimits::default()
        },
        ..PassContext::default()
    };
    let err = LowerIfPass.run(&mut m, &cx).expect_err("out of time");
    assert!(matches!(err, PassError::TimeLimit { .. }), "{err}");
}
