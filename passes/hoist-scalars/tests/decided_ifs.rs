//! An `If` whose condition the pass folds to a constant is inlined by onnxruntime's constant
//! folding, which exposes the taken branch's value to the `If`'s readers. A reader that needs a
//! scalar gets the value reshaped to 0-D, or onnxruntime refuses the model at session creation
//! ("Input to 'Range' op should be scalars"), as it did `test_affine_grid_2d_expanded`.

use onnx_rewrite_hoist_scalars::HoistScalarsPass;
use onnx_rewrite_testkit::{apply, assert_same_outputs, bytes, count_ops, model};

/// `Size(Shape(x))` is x's rank, 2: the pass folds the condition.
const DECIDED: &str = r#"<ir_version: 10, opset_import: ["" : 17]>
g (float[N,3] x) => (int64[3] y) {
   zero = Constant <value: tensor = int64 {0}> ()
   one = Constant <value: tensor = int64 {1}> ()
   two = Constant <value: tensor = int64 {2}> ()
   sh = Shape (x)
   rank = Size (sh)
   c = Equal (rank, two)
   w = If (c) <then_branch: graph = t () => (int64[1] a) {
      b = Constant <value: tensor = int64[1] {1}> ()
      e = Constant <value: tensor = int64[1] {2}> ()
      a = Slice (sh, b, e)
   }, else_branch: graph = f () => (int64[1] d) {
      d = Constant <value: tensor = int64[1] {3}> ()
   }>
   y = Range (zero, w, one)
}"#;

#[test]
fn a_reader_of_a_decided_if_that_needs_a_scalar_reads_it_reshaped() {
    let before = model(DECIDED);
    let (after, report) = apply(&HoistScalarsPass, &before);
    assert_eq!(count_ops(&after, "Reshape"), 1, "{:?}", report.notes);
    assert!(
        report.notes.iter().any(|n| n.contains("reshaped to 0-D")),
        "{:?}",
        report.notes
    );
    // tract refuses the original as onnxruntime does (Range's input must be rank 0): the
    // reference is the original with the Reshape written by hand.
    let reference = model(&DECIDED.replace(
        "   y = Range (zero, w, one)",
        "   none = Constant <value: tensor = int64[0] {}> ()\n   ws = Reshape (w, none)\n   y = Range (zero, ws, one)",
    ));
    assert_same_outputs(&reference, &after, 1e-5, 1e-6);
    let (again, _) = apply(&HoistScalarsPass, &after);
    assert_eq!(bytes(&again), bytes(&after), "idempotent");
}

/// The same `If` with a condition only the data decides: nothing is exposed, nothing changes
/// around the Range.
#[test]
fn a_reader_of_an_undecided_if_is_left_as_it_is() {
    let before = model(
        &DECIDED
            .replace(
                "(float[N,3] x) => (int64[3] y)",
                "(float[N,3] x, bool c) => (int64[3] y)",
            )
            .replace("   c = Equal (rank, two)\n", ""),
    );
    let (after, report) = apply(&HoistScalarsPass, &before);
    assert_eq!(count_ops(&after, "Reshape"), 0, "{:?}", report.notes);
}
