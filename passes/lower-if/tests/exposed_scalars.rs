//! Readers that need a scalar or a 1-D input, behind an `If` the pass inlines: generators of
//! the spellings a one-element value takes (a constant, an Unsqueeze of a scalar, a rank-2
//! constant, a value computed from shapes; for 1-D readers, 0-D spellings) crossed with every
//! reader the op table says needs that rank and tract runs, and with either branch taken. Each
//! case must come out fitted (one Reshape per reader), compute what the hand-inlined reference
//! computes, and be idempotent.

mod common;

use common::assert_same;
use onnx_rewrite_lower_if::LowerIfPass;
use onnx_rewrite_testkit::{apply, bytes, count_ops, model};

const HEADER: &str = r#"<ir_version: 10, opset_import: ["" : 17]>"#;

/// Spellings of a one-element tensor holding 1: the nodes that define `v`, and its declared type.
const SPELLINGS: &[(&str, &str, &str)] = &[
    (
        "constant [1]",
        "v = Constant <value: tensor = int64[1] {1}> ()",
        "int64[1]",
    ),
    (
        "unsqueezed scalar",
        "s1 = Constant <value: tensor = int64 {1}> ()
      ax = Constant <value: tensor = int64[1] {0}> ()
      v = Unsqueeze (s1, ax)",
        "int64[1]",
    ),
    (
        "constant [1,1]",
        "v = Constant <value: tensor = int64[1,1] {1}> ()",
        "int64[1,1]",
    ),
    (
        "dim over dim",
        "sh = Shape (x)
      b = Constant <value: tensor = int64[1] {1}> ()
      e = Constant <value: tensor = int64[1] {2}> ()
      d = Slice (sh, b, e)
      v = Div (d, d)",
        "int64[1]",
    ),
];

/// Readers of `w` that need it as a scalar, with the graph's output: (name, nodes, output type).
const READERS: &[(&str, &str, &str)] = &[
    ("Range start", "y = Range (w, five, one)", "int64[4]"),
    ("Range limit", "y = Range (zero, w, one)", "int64[1]"),
    ("Range delta", "y = Range (zero, five, w)", "int64[5]"),
    ("CumSum axis", "y = CumSum (x, w)", "float[N,3]"),
];

const CONSTANTS: &str = "zero = Constant <value: tensor = int64 {0}> ()
   one = Constant <value: tensor = int64 {1}> ()
   five = Constant <value: tensor = int64 {5}> ()";

fn case(spelling: &str, ty: &str, reader: &str, out: &str, taken: bool) -> (String, String) {
    let other = "o = Constant <value: tensor = int64[1] {7}> ()";
    let (then_body, then_out, else_body, else_out) = if taken {
        (spelling, "v", other, "o")
    } else {
        (other, "o", spelling, "v")
    };
    let cond = if taken { 1 } else { 0 };
    let body = format!(
        r#"g (float[N,3] x) => ({out} y) {{
   {CONSTANTS}
   c = Constant <value: tensor = bool {{{cond}}}> ()
   w = If (c) <then_branch: graph = t () => ({ty} {then_out}) {{
      {then_body}
   }}, else_branch: graph = f () => ({ty} {else_out}) {{
      {else_body}
   }}>
   {reader}
}}"#
    );
    let reference = format!(
        r#"g (float[N,3] x) => ({out} y) {{
   {CONSTANTS}
   {spelling}
   none = Constant <value: tensor = int64[0] {{}}> ()
   w = Reshape (v, none)
   {reader}
}}"#
    );
    (body, reference)
}

/// The If inlined, its one reader fitted with one Reshape, the outputs those of the hand-written
/// `reference`, and a second run changing nothing.
fn assert_fitted(what: &str, body: &str, reference: &str) {
    let before = model(&format!("{HEADER}\n{body}"));
    let (after, report) = apply(&LowerIfPass, &before);
    assert_eq!(count_ops(&after, "If"), 0, "{what}: {:?}", report.declined);
    assert!(report.declined.is_empty(), "{what}: {:?}", report.declined);
    assert_eq!(
        report.details["readers_fitted"], 1,
        "{what}: {:?}",
        report.notes
    );
    assert_eq!(count_ops(&after, "Reshape"), 1, "{what}");
    assert_same(&model(&format!("{HEADER}\n{reference}")), &after, 2);
    let (again, _) = apply(&LowerIfPass, &after);
    assert_eq!(bytes(&again), bytes(&after), "{what}: idempotent");
}

#[test]
fn every_spelling_read_as_a_scalar_by_every_reader_is_fitted() {
    let mut checked = 0;
    for (spelled, spelling, ty) in SPELLINGS {
        for (read, reader, out) in READERS {
            for taken in [true, false] {
                let what = format!("{spelled} read as {read}, branch taken: {taken}");
                let (body, reference) = case(spelling, ty, reader, out, taken);
                assert_fitted(&what, &body, &reference);
                checked += 1;
            }
        }
    }
    assert_eq!(checked, SPELLINGS.len() * READERS.len() * 2);
}

/// The branch not taken holds a tensor of several elements: only the taken branch's value is
/// exposed, so it is what decides.
#[test]
fn the_branch_not_taken_does_not_decide() {
    let (body, reference) = case(
        "v = Constant <value: tensor = int64[1] {1}> ()",
        "int64[1]",
        "y = Range (zero, w, one)",
        "int64[1]",
        true,
    );
    let body = body.replace(
        "o = Constant <value: tensor = int64[1] {7}> ()",
        "o = Constant <value: tensor = int64[2] {7, 8}> ()",
    );
    let before = model(&format!("{HEADER}\n{body}"));
    let (after, report) = apply(&LowerIfPass, &before);
    assert!(report.declined.is_empty(), "{:?}", report.declined);
    assert_eq!(count_ops(&after, "Reshape"), 1);
    assert_same(&model(&format!("{HEADER}\n{reference}")), &after, 2);
}

/// Spellings of a 0-D tensor holding 1.
const SCALAR_SPELLINGS: &[(&str, &str)] = &[
    (
        "constant scalar",
        "v = Constant <value: tensor = int64 {1}> ()",
    ),
    (
        "squeezed [1]",
        "s1 = Constant <value: tensor = int64[1] {1}> ()
      v = Squeeze (s1)",
    ),
    (
        "dim over dim",
        "sh = Shape (x)
      i1 = Constant <value: tensor = int64 {1}> ()
      d = Gather (sh, i1)
      v = Div (d, d)",
    ),
];

/// Readers of `w` that need it 1-D (axes, a shape, `K`, slice bounds), with the graph's output.
const VECTOR_READERS: &[(&str, &str, &str)] = &[
    ("Unsqueeze axes", "y = Unsqueeze (x, w)", "float[N,1,3]"),
    ("Expand shape", "y = Expand (x, w)", "float[N,3]"),
    ("TopK K", "y, yi = TopK (x, w)", "float[N,1]"),
    ("Slice ends", "y = Slice (x, start0, w)", "float[1,3]"),
];

fn vector_case(spelling: &str, reader: &str, out: &str, taken: bool) -> (String, String) {
    let other = "o = Constant <value: tensor = int64 {7}> ()";
    let (then_body, then_out, else_body, else_out) = if taken {
        (spelling, "v", other, "o")
    } else {
        (other, "o", spelling, "v")
    };
    let cond = if taken { 1 } else { 0 };
    let start = "start0 = Constant <value: tensor = int64[1] {0}> ()";
    let body = format!(
        r#"g (float[N,3] x) => ({out} y) {{
   {start}
   c = Constant <value: tensor = bool {{{cond}}}> ()
   w = If (c) <then_branch: graph = t () => (int64 {then_out}) {{
      {then_body}
   }}, else_branch: graph = f () => (int64 {else_out}) {{
      {else_body}
   }}>
   {reader}
}}"#
    );
    let reference = format!(
        r#"g (float[N,3] x) => ({out} y) {{
   {start}
   {spelling}
   one = Constant <value: tensor = int64[1] {{1}}> ()
   w = Reshape (v, one)
   {reader}
}}"#
    );
    (body, reference)
}

#[test]
fn every_scalar_spelling_read_as_a_vector_by_every_reader_is_fitted() {
    let mut checked = 0;
    for (spelled, spelling) in SCALAR_SPELLINGS {
        for (read, reader, out) in VECTOR_READERS {
            for taken in [true, false] {
                let what = format!("{spelled} read as {read}, branch taken: {taken}");
                let (body, reference) = vector_case(spelling, reader, out, taken);
                assert_fitted(&what, &body, &reference);
                checked += 1;
            }
        }
    }
    assert_eq!(checked, SCALAR_SPELLINGS.len() * VECTOR_READERS.len() * 2);
}

/// A rank-2 value exposed where a 1-D one is needed cannot be fitted: declined by name.
#[test]
fn a_matrix_exposed_to_a_shape_input_is_declined() {
    let (body, _) = vector_case(
        "v = Constant <value: tensor = int64[1,1] {1}> ()",
        "y = Expand (x, w)",
        "float[N,3]",
        true,
    );
    let body = body.replace("(int64 v)", "(int64[1,1] v)");
    let before = model(&format!("{HEADER}\n{body}"));
    let (_, report) = apply(&LowerIfPass, &before);
    assert!(
        report
            .declined
            .iter()
            .any(|d| d.reason.contains("as a 1-D tensor")
                && d.reason.contains("more than one dimension")),
        "{:?}",
        report.declined
    );
}
