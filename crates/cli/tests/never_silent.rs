//! Whatever the passes, an output that still holds a MoE dispatch no pass proved (it may be a
//! trace missing experts) leaves with a warning, even under `--quiet`; `info` lists it.

use std::process::Command;

use onnx_rewrite_proto::Message;

const DISPATCH: &str = r#"<ir_version: 10, opset_import: ["" : 17]>
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

#[test]
fn every_apply_warns_of_a_dispatch_left_and_info_lists_it() {
    let dir = tempfile::tempdir().expect("a temporary folder");
    let input = dir.path().join("dispatch.onnx");
    let proto = onnx_rewrite_text::parse_model(DISPATCH).expect("the test model parses");
    std::fs::write(&input, proto.encode_to_vec()).expect("written");
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
