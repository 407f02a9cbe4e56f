//! `apply --verify`, `--verify-shape`, `--report-html` and `--dot` on shipped real exports.

use std::path::{Path, PathBuf};
use std::process::{Command, Output};

fn run(args: &[&str]) -> Output {
    Command::new(env!("CARGO_BIN_EXE_onnx-rewrite"))
        .args(args)
        .output()
        .expect("the binary runs")
}

fn export(name: &str) -> String {
    Path::new(env!("CARGO_MANIFEST_DIR"))
        .join("../../testdata/models")
        .join(name)
        .join("model.onnx")
        .display()
        .to_string()
}

fn stderr(out: &Output) -> String {
    String::from_utf8_lossy(&out.stderr).into_owned()
}

fn out_path(dir: &tempfile::TempDir, name: &str) -> PathBuf {
    dir.path().join(name)
}

#[test]
fn verify_passes_on_a_real_export_and_reports_each_output() {
    let dir = tempfile::tempdir().expect("temp dir");
    let output = out_path(&dir, "out.onnx");
    let out = run(&[
        "apply",
        &export("llama_dynamo"),
        "-o",
        output.to_str().expect("utf-8"),
        "--passes",
        "gemm-to-matmul,fp16",
        "--verify",
        "--verify-shape",
        "batch=1",
        "--verify-shape",
        "seq=5",
    ]);
    let err = stderr(&out);
    assert_eq!(out.status.code(), Some(0), "{err}");
    assert!(err.contains("rtol 2e-2, atol 2e-2"), "{err}");
    assert!(err.contains("input_ids=[1, 5]"), "{err}");
    assert!(err.contains("logits") && err.contains(" ok"), "{err}");
    assert!(output.is_file());
}

/// tract-onnx refuses a float16 Gemm; the copy it runs has them as MatMul + Add, and the
/// report says so (before, this was exit 1 with tract's "expected F16 got F32").
#[test]
fn verify_runs_fp16_gemm_models_through_their_matmul_form() {
    for name in ["mlp_gemm_dynamo", "mlp_gemm_legacy"] {
        let dir = tempfile::tempdir().expect("temp dir");
        let output = out_path(&dir, "out.onnx");
        let out = run(&[
            "apply",
            &export(name),
            "-o",
            output.to_str().expect("utf-8"),
            "--passes",
            "fp16",
            "--verify",
        ]);
        let err = stderr(&out);
        assert_eq!(out.status.code(), Some(0), "{name}: {err}");
        assert!(
            err.contains("note: tract-onnx cannot run a float16/bfloat16 Gemm"),
            "{name}: {err}"
        );
        assert!(err.contains(" ok"), "{name}: {err}");
        assert!(!err.contains("OVER"), "{name}: {err}");
        // The file written keeps its Gemms: only the copy tract ran was lowered.
        let written = std::fs::read(&output).expect("output written");
        assert!(
            written.windows(4).any(|w| w == b"Gemm"),
            "{name}: the output keeps its Gemm nodes"
        );
    }
}

#[test]
fn verify_usage_errors_exit_1_and_write_nothing() {
    let dir = tempfile::tempdir().expect("temp dir");
    let output = out_path(&dir, "out.onnx");
    let o = output.to_str().expect("utf-8");
    let model = export("mlp_gemm_dynamo");
    for (args, message) in [
        (
            vec!["--verify", "--verify-shape", "sequence=3"],
            "--verify-shape sequence: no input or symbolic dim of that name",
        ),
        (
            vec!["--verify", "--verify-shape", "x=3"],
            "the input has rank 2, the binding gives 1 dims",
        ),
        (
            vec!["--verify", "--verify-shape", "x"],
            "expected name=dims",
        ),
        // --verify-shape needs --verify.
        (vec!["--verify-shape", "x=3,12"], "--verify"),
    ] {
        let mut all = vec!["apply", &model, "-o", o, "--passes", "gemm-to-matmul"];
        all.extend(args);
        let out = run(&all);
        let err = stderr(&out);
        assert_eq!(out.status.code(), Some(1), "{err}");
        assert!(err.contains(message), "{message}: {err}");
        assert!(!output.exists());
    }
}

#[test]
fn report_html_and_dot_of_all_passes_on_a_moe_export() {
    let dir = tempfile::tempdir().expect("temp dir");
    let (output, html, dot, json) = (
        out_path(&dir, "out.onnx"),
        out_path(&dir, "r.html"),
        out_path(&dir, "r.dot"),
        out_path(&dir, "r.json"),
    );
    let out = run(&[
        "apply",
        &export("qwen2_moe_hf_batched_mm"),
        "-o",
        output.to_str().expect("utf-8"),
        "--passes",
        "all",
        "--verify",
        "-q",
        "--report-html",
        html.to_str().expect("utf-8"),
        "--dot",
        dot.to_str().expect("utf-8"),
        "--report",
        json.to_str().expect("utf-8"),
    ]);
    assert_eq!(out.status.code(), Some(0), "{}", stderr(&out));
    let page = std::fs::read_to_string(&html).expect("HTML written");
    for part in [
        "<table id=\"passes\">",
        "<tr data-pass=\"gemm-to-matmul\">",
        "<tr data-pass=\"moe-dense\">",
        "<table id=\"ops\">",
        "<tr data-op=\"Gemm\" class=\"changed\"><td>Gemm</td><td>10</td><td>0</td>",
        "<table id=\"verify\">",
        "<figure class=\"region\"><svg class=\"region\"",
    ] {
        assert!(page.contains(part), "{part}");
    }
    assert!(!page.contains("<script"), "the page is static");
    let graph = std::fs::read_to_string(&dot).expect("dot written");
    assert!(graph.starts_with("digraph rewrites {") && graph.contains("Gemm"));
    let report: serde_json::Value =
        serde_json::from_slice(&std::fs::read(&json).expect("report written")).expect("JSON");
    assert_eq!(report["verify"]["passed"], serde_json::json!(true));
}

#[test]
fn verify_over_tolerance_exits_2_and_writes_nothing() {
    // The baked MoE trace computes only the experts its one example token reached; moe-dense
    // rebuilds the others from the weight stacks, so the rewritten model is right where the
    // original is not, and comparing the two must flag it.
    let dir = tempfile::tempdir().expect("temp dir");
    let output = out_path(&dir, "out.onnx");
    let html = out_path(&dir, "r.html");
    let out = run(&[
        "apply",
        &export("moe_baked_weights_present"),
        "-o",
        output.to_str().expect("utf-8"),
        "--passes",
        "moe-dense",
        "--verify",
        "--report-html",
        html.to_str().expect("utf-8"),
    ]);
    let err = stderr(&out);
    assert_eq!(out.status.code(), Some(2), "{err}");
    assert!(
        err.contains("--verify: the rewritten model's outputs differ"),
        "{err}"
    );
    assert!(
        err.contains("rtol 1e-4, atol 1e-5") && err.contains("OVER"),
        "{err}"
    );
    assert_eq!(
        err.matches("OVER").count(),
        1,
        "the summary is printed once: {err}"
    );
    assert!(!output.exists(), "nothing written");
    let page = std::fs::read_to_string(&html).expect("the report is written all the same");
    assert!(page.contains("class=\"over\""));
}
