//! Never silent: a router's top-k indices tested against expert ids and dispatching tokens at
//! run time, in a spelling no detector reads, is declined by name (and traced); top-k
//! sampling and NMS-like graphs, which gather and scatter by top-k indices with no expert
//! test, are not taken for one.

use onnx_rewrite_moe_dense::MoeDensePass;
use onnx_rewrite_moe_dense::guard::dispatch_regions;
use onnx_rewrite_pass::{Pass, PassContext, PassError};
use onnx_rewrite_testkit::{apply, assert_declines_traced, bytes, model};

/// Each expert's tokens found with `NonZero(Equal(ids, e))`, then summed: not a MoE layer any
/// detector proves (no expert computation, no weighted combine), and data-dependent.
const UNREAD: &str = r#"<ir_version: 10, opset_import: ["" : 17]>
g (float[T,4] x, float[T,3] logits) => (float[4] y) <int64[1] k = {1}, int64 e0 = {0}, int64 e1 = {1}, int64 e2 = {2}, int64[1] axis0 = {0}> {
   [router] w, ids = TopK <axis: int = -1> (logits, k)
   [pick] hit0 = Equal (ids, e0)
   [rows] nz0 = NonZero (hit0)
   [first] tok0 = Gather <axis: int = 0> (nz0, e0)
   [take] xs0 = Gather <axis: int = 0> (x, tok0)
   [sum] y0 = ReduceSum <keepdims: int = 0> (xs0, axis0)
   [pick1] hit1 = Equal (ids, e1)
   [rows1] nz1 = NonZero (hit1)
   [first1] tok1 = Gather <axis: int = 0> (nz1, e0)
   [take1] xs1 = Gather <axis: int = 0> (x, tok1)
   [sum1] y1 = ReduceSum <keepdims: int = 0> (xs1, axis0)
   [pick2] hit2 = Equal (ids, e2)
   [rows2] nz2 = NonZero (hit2)
   [first2] tok2 = Gather <axis: int = 0> (nz2, e0)
   [take2] xs2 = Gather <axis: int = 0> (x, tok2)
   [sum2] y2 = ReduceSum <keepdims: int = 0> (xs2, axis0)
   [add] y01 = Add (y0, y1)
   [add2] y = Add (y01, y2)
}"#;

/// Only experts 0 and 1 of the router's four are tested: a trace that kept what its example
/// input reached.
const BAKED: &str = r#"<ir_version: 10, opset_import: ["" : 17]>
g (float[T,4] x, float[T,4] logits) => (float[4] y) <int64[1] k = {2}, int64 e0 = {0}, int64 e1 = {1}, int64[1] axis0 = {0}> {
   [router] w, ids = TopK <axis: int = -1> (logits, k)
   [pick] hit0 = Equal (ids, e0)
   [rows] nz0 = NonZero (hit0)
   [first] tok0 = Gather <axis: int = 0> (nz0, e0)
   [take] xs0 = Gather <axis: int = 0> (x, tok0)
   [sum] y0 = ReduceSum <keepdims: int = 0> (xs0, axis0)
   [pick1] hit1 = Equal (ids, e1)
   [rows1] nz1 = NonZero (hit1)
   [first1] tok1 = Gather <axis: int = 0> (nz1, e0)
   [take1] xs1 = Gather <axis: int = 0> (x, tok1)
   [sum1] y1 = ReduceSum <keepdims: int = 0> (xs1, axis0)
   [add] y = Add (y0, y1)
}"#;

/// One id tested, as a generation loop tests `ids == eos`: declined and warned of, never
/// refused (a complete model must not be refused).
const ONE_ID: &str = r#"<ir_version: 10, opset_import: ["" : 17]>
g (float[T,4] x, float[T,3] logits) => (float[4] y) <int64[1] k = {1}, int64 e0 = {0}, int64[1] axis0 = {0}> {
   [router] w, ids = TopK <axis: int = -1> (logits, k)
   [pick] hit = Equal (ids, e0)
   [rows] nz = NonZero (hit)
   [first] tok = Gather <axis: int = 0> (nz, e0)
   [take] xs = Gather <axis: int = 0> (x, tok)
   [sum] y = ReduceSum <keepdims: int = 0> (xs, axis0)
}"#;

#[test]
fn a_dispatch_no_detector_reads_is_declined_by_name() {
    let before = model(UNREAD);
    let regions = dispatch_regions(&before);
    assert_eq!(regions.len(), 3, "{regions:?}");
    let (after, report) = apply(&MoeDensePass, &before);
    assert_eq!(bytes(&after), bytes(&before), "nothing rewritten");
    assert_eq!(report.declined.len(), 3, "{:?}", report.declined);
    let d = &report.declined[0];
    assert!(d.node.contains("'rows' (NonZero)"), "{d:?}");
    assert!(
        d.reason.contains("'router' (TopK)")
            && d.reason.contains("'pick' (Equal)")
            && d.reason.contains("no MoE layer was proved"),
        "{d:?}"
    );
    assert_declines_traced(&MoeDensePass, &before, &[]);
}

/// Top-k sampling: the top-k logits kept, every other set to -inf by scattering at the top-k
/// indices. NMS-like: boxes gathered by top-k scores. Neither tests an expert id.
const SAMPLING_AND_NMS: &str = r#"<ir_version: 10, opset_import: ["" : 17]>
g (float[B,V] logits, float[N,4] boxes, float[N] scores) => (float[B,V] masked, float[5,4] kept) <int64[1] k = {5}, float[1] neg = {-10000}> {
   [topk] v, i = TopK <axis: int = -1> (logits, k)
   [fill] base = Mul (logits, neg)
   [scatter] masked = ScatterElements <axis: int = 1> (base, i, v)
   [best] s, j = TopK (scores, k)
   [boxes] kept = Gather <axis: int = 0> (boxes, j)
}"#;

#[test]
fn a_baked_dispatch_no_detector_reads_is_refused_with_the_missing_experts() {
    let mut m = model(BAKED);
    let before = bytes(&m);
    let err = MoeDensePass
        .run(&mut m, &PassContext::default())
        .expect_err("refused");
    let PassError::Refused(message) = &err else {
        panic!("not a refusal: {err}");
    };
    assert!(
        message.contains("'router' (TopK)")
            && message.contains("chooses among 4 experts")
            && message.contains("tests experts [0, 1] only")
            && message.contains("experts [2, 3] are missing"),
        "{message}"
    );
    assert_eq!(bytes(&m), before, "nothing edited");
}

#[test]
fn a_single_tested_id_is_declined_not_refused() {
    let before = model(ONE_ID);
    let (after, report) = apply(&MoeDensePass, &before);
    assert_eq!(bytes(&after), bytes(&before));
    assert_eq!(report.declined.len(), 1, "{:?}", report.declined);
}

#[test]
fn top_k_sampling_and_nms_are_no_dispatch() {
    let m = model(SAMPLING_AND_NMS);
    assert!(dispatch_regions(&m).is_empty());
    let (_, report) = apply(&MoeDensePass, &m);
    assert!(report.declined.is_empty(), "{:?}", report.declined);
}
