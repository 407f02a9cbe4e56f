//! `onnx-rewrite analyze --ep cuda`: the report names the ORT version and optimization level it
//! predicts for, `--json` carries the counts, an unknown `--ort-version` is a usage error, and
//! `apply --passes hoist-scalars` brings a real export's predicted copies down.

use std::path::PathBuf;
use std::process::{Command, Output};

fn tool() -> Command {
    Command::new(env!("CARGO_BIN_EXE_onnx-rewrite"))
}

fn run(args: &[&str]) -> Output {
    tool().args(args).output().expect("the binary runs")
}

fn model(name: &str) -> String {
    let path = PathBuf::from(env!("CARGO_MANIFEST_DIR"))
        .join("../../testdata/models")
        .join(name)
        .join("model.onnx");
    path.to_str().expect("a UTF-8 path").to_owned()
}

fn memcpy_nodes(path: &str) -> u64 {
    let out = run(&["analyze", path, "--ep", "cuda", "--json"]);
    assert!(
        out.status.success(),
        "{}",
        String::from_utf8_lossy(&out.stderr)
    );
    let json: serde_json::Value = serde_json::from_slice(&out.stdout).expect("JSON on stdout");
    json["memcpy_nodes"].as_u64().expect("a memcpy_nodes count")
}

#[test]
fn the_report_says_which_rules_it_applies() {
    let out = run(&["analyze", &model("modernbert_legacy"), "--ep", "cuda"]);
    assert!(out.status.success());
    let text = String::from_utf8_lossy(&out.stdout);
    let first = text.lines().next().unwrap_or_default();
    assert!(first.contains("onnxruntime 1.32.0"), "{first}");
    assert!(first.contains("ORT_ENABLE_BASIC"), "{first}");
    assert!(text.contains("kernel tables:"), "{text}");
}

#[test]
fn json_counts_match_the_legacy_export() {
    // The legacy export's one copy: a Gather of a Shape read as data by a CUDA Mul.
    assert_eq!(memcpy_nodes(&model("modernbert_legacy")), 1);
    assert_eq!(memcpy_nodes(&model("llama_legacy")), 1);
}

#[test]
fn an_unknown_ort_version_is_a_usage_error() {
    let out = run(&[
        "analyze",
        &model("modernbert_legacy"),
        "--ep",
        "cuda",
        "--ort-version",
        "1.31.0",
    ]);
    assert_eq!(out.status.code(), Some(1));
    let err = String::from_utf8_lossy(&out.stderr);
    assert!(err.contains("1.31.0") && err.contains("1.32.0"), "{err}");
    // The pinned version, spelled either way, is accepted.
    for v in ["1.32", "1.32.0"] {
        let out = run(&[
            "analyze",
            &model("llama_legacy"),
            "--ep",
            "cuda",
            "--ort-version",
            v,
        ]);
        assert!(out.status.success(), "{v}");
    }
}

#[test]
fn a_missing_file_is_named() {
    let out = run(&["analyze", "no/such/model.onnx", "--ep", "cuda"]);
    assert_eq!(out.status.code(), Some(1));
    assert!(String::from_utf8_lossy(&out.stderr).contains("no/such/model.onnx"));
}

#[test]
fn hoist_scalars_leaves_no_more_copies_than_the_legacy_export() {
    let dir = tempfile::tempdir().expect("a temp dir");
    for (dynamo, legacy) in [
        ("modernbert_dynamo", "modernbert_legacy"),
        ("llama_dynamo", "llama_legacy"),
    ] {
        let out_path = dir.path().join(format!("{dynamo}.onnx"));
        let out_str = out_path.to_str().expect("a UTF-8 path");
        let out = run(&[
            "apply",
            &model(dynamo),
            "-o",
            out_str,
            "--passes",
            "hoist-scalars",
        ]);
        assert!(
            out.status.success(),
            "{}",
            String::from_utf8_lossy(&out.stderr)
        );
        assert!(
            memcpy_nodes(out_str) <= memcpy_nodes(&model(legacy)),
            "{dynamo}"
        );
    }
}
