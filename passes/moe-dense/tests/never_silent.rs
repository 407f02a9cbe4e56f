//! Never silent: a router's top-k indices tested against expert ids and dispatching tokens at
//! run time, in a spelling no detector reads, is declined by name (and traced), or refused when
//! it tests fewer experts than the router chooses among; top-k sampling and NMS-like graphs,
//! which gather and scatter by top-k indices with no expert test, are not taken for one.

use onnx_rewrite_moe_dense::MoeDensePass;
use onnx_rewrite_moe_dense::guard::dispatch_regions;
use onnx_rewrite_pass::{Pass, PassContext, PassError};
use onnx_rewrite_testkit::{apply, assert_declines_traced, bytes, model, moe_dispatch_text};

#[test]
fn a_dispatch_no_detector_reads_is_declined_by_name() {
    // Every expert tested: complete, but no layer (no expert computation, no weighted combine).
    let before = model(&moe_dispatch_text(3, 1, &[0, 1, 2]));
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

#[test]
fn a_baked_dispatch_no_detector_reads_is_refused_with_the_missing_experts() {
    // Experts 0 and 1 of four: a trace that kept what its example input reached.
    let mut m = model(&moe_dispatch_text(4, 2, &[0, 1]));
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

/// Over variants (expert count, top-k, which ids are tested): refused exactly when two or more
/// ids are tested and some expert is not (one id alone looks like a generation loop's
/// `ids == eos`, and a complete model must never be refused); declined otherwise, one decline
/// per tested id, the model untouched.
#[test]
fn refused_exactly_when_two_or_more_ids_are_tested_and_some_are_missing() {
    for experts in 2..=5usize {
        for mask in 1u32..(1 << experts) {
            let tested: Vec<i64> = (0..experts as i64)
                .filter(|e| mask & (1 << e) != 0)
                .collect();
            let k = tested.len().min(2);
            let mut m = model(&moe_dispatch_text(experts, k, &tested));
            let before = bytes(&m);
            let outcome = MoeDensePass.run(&mut m, &PassContext::default());
            let baked = tested.len() >= 2 && tested.len() < experts;
            match outcome {
                Err(PassError::Refused(_)) if baked => {}
                Ok(report) if !baked => assert_eq!(
                    report.declined.len(),
                    tested.len(),
                    "{experts} experts, {tested:?}: {:?}",
                    report.declined
                ),
                other => panic!("{experts} experts, {tested:?}: {other:?}"),
            }
            assert_eq!(
                bytes(&m),
                before,
                "{experts} experts, {tested:?}: untouched"
            );
        }
    }
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
fn top_k_sampling_and_nms_are_no_dispatch() {
    let m = model(SAMPLING_AND_NMS);
    assert!(dispatch_regions(&m).is_empty());
    let (_, report) = apply(&MoeDensePass, &m);
    assert!(report.declined.is_empty(), "{:?}", report.declined);
}
