//! A crossing bridging tries and cannot build is a decline naming the node (rule `bridge`);
//! one no bridge applies to (a copy to the host) is a note, not a decline.

use onnx_rewrite_hoist_scalars::HoistScalarsPass;
use onnx_rewrite_testkit::{apply, model};

/// `Unique` has no CUDA kernel: it runs on the host, and the Relu reading its output on the
/// device needs a copy that no recomputation on the device can avoid.
const NO_KERNEL: &str = r#"<ir_version: 10, opset_import: ["" : 17]>
g (float[N] x) => (float[M] y) {
   [unique] u = Unique (x)
   [relu] y = Relu (u)
}"#;

#[test]
fn a_crossing_from_a_node_without_a_device_kernel_is_declined_by_name() {
    let (_, report) = apply(&HoistScalarsPass, &model(NO_KERNEL));
    let bridge: Vec<_> = report
        .declined
        .iter()
        .filter(|d| d.rule == "bridge")
        .collect();
    assert_eq!(
        bridge.len(),
        1,
        "{:?} / {:?}",
        report.declined,
        report.notes
    );
    assert!(bridge[0].node.contains("unique"), "{:?}", bridge[0]);
    assert!(
        bridge[0].reason.contains("cannot be bridged") && bridge[0].reason.contains("Unique"),
        "{:?}",
        bridge[0]
    );
}

/// `--trace-rules`: the bridge's decline is a line of the trace too.
#[test]
fn a_decline_is_in_the_trace() {
    onnx_rewrite_testkit::assert_declines_traced(&HoistScalarsPass, &model(NO_KERNEL), &[]);
}
