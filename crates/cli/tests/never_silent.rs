//! Whatever the passes, an output that still holds a MoE dispatch no pass proved (it may be a
//! trace missing experts) leaves with a warning, even under `--quiet`; `info` lists it.

use std::process::Command;

use onnx_rewrite_testkit::{bytes, model, moe_dispatch_text};

#[test]
fn every_apply_warns_of_a_dispatch_left_and_info_lists_it() {
    let dir = tempfile::tempdir().expect("a temporary folder");
    let input = dir.path().join("dispatch.onnx");
    // Every expert tested: no refusal, a dispatch no detector reads.
    let dispatch = model(&moe_dispatch_text(3, 1, &[0, 1, 2]));
    std::fs::write(&input, bytes(&dispatch)).expect("written");
    let output = dir.path().join("out.onnx");
    for passes in ["none", "gemm-to-matmul", "all"] {
        let out = Command::new(env!("CARGO_BIN_EXE_onnx-rewrite"))
            .args(["apply", "--quiet", "--passes", passes])
            .arg(&input)
            .arg("-o")
            .arg(&output)
            .output()
            .expect("the binary runs");
        let stderr = String::from_utf8_lossy(&out.stderr);
        assert_eq!(out.status.code(), Some(0), "{passes}: {stderr}");
        assert!(
            stderr.contains("warning: MoE dispatch left")
                && stderr.contains("'router' (TopK)")
                && stderr.contains("'rows' (NonZero)"),
            "{passes}: {stderr}"
        );
    }
    // moe-dense declines it by name: `--strict` makes that exit 2, with nothing written.
    let strict = dir.path().join("strict.onnx");
    let out = Command::new(env!("CARGO_BIN_EXE_onnx-rewrite"))
        .args(["apply", "--strict", "--passes", "moe-dense"])
        .arg(&input)
        .arg("-o")
        .arg(&strict)
        .output()
        .expect("the binary runs");
    assert_eq!(
        out.status.code(),
        Some(2),
        "{}",
        String::from_utf8_lossy(&out.stderr)
    );
    assert!(!strict.exists());
    let out = Command::new(env!("CARGO_BIN_EXE_onnx-rewrite"))
        .arg("info")
        .arg(&input)
        .output()
        .expect("the binary runs");
    let stdout = String::from_utf8_lossy(&out.stdout);
    assert!(
        stdout.contains("moe dispatch") && stdout.contains("'pick' (Equal)"),
        "{stdout}"
    );
}
