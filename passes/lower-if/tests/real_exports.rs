//! The torch.cond exports in testdata/models: no `If` left, and tract, running the rewritten
//! model on every stored data set (each takes the branch it was made for), gives PyTorch's
//! reference outputs. `tools/models/check_passes.py` does the same with onnxruntime.
//!
//! In `cond_moe_experts` most experts receive no token in the first data set, so the select
//! form runs those experts' branches on empty `NonZero` results: empty `GatherND` and
//! `ScatterND` indices, which both runtimes must (and do) treat as no-ops.

use std::path::{Path, PathBuf};

use onnx_rewrite_lower_if::LowerIfPass;
use onnx_rewrite_testkit::{apply, bytes, count_ops, execute};
use tract_onnx::prelude::*;

fn models() -> PathBuf {
    Path::new(env!("CARGO_MANIFEST_DIR")).join("../../testdata/models")
}

fn tensor(path: &Path) -> Tensor {
    let file = std::fs::File::open(path).expect("data file opens");
    let proto = tract_onnx::tensor::proto_from_reader(file).expect("tensor decodes");
    let resolver = tract_onnx::data_resolver::default();
    tract_onnx::tensor::load_tensor(&*resolver, &proto, None).expect("tensor loads")
}

fn data_files(set: &Path, prefix: &str) -> Vec<PathBuf> {
    let mut files: Vec<PathBuf> = (0..)
        .map(|i| set.join(format!("{prefix}_{i}.pb")))
        .take_while(|p| p.exists())
        .collect();
    files.sort();
    files
}

fn check(name: &str, lowered: usize) {
    let folder = models().join(name);
    let before = onnx_rewrite_ir::load::load_file(
        &folder.join("model.onnx"),
        &onnx_rewrite_ir::LoadOptions::default(),
    )
    .expect("model loads");
    let (after, report) = apply(&LowerIfPass, &before);
    assert_eq!(count_ops(&after, "If"), 0, "{:?}", report.declined);
    assert_eq!(
        report.details["ifs_lowered_where"],
        serde_json::json!(lowered)
    );
    // tract unifies the exporter's symbolic value_info dims with the concrete input sizes
    // and fails on some (`tokens` against 1); the annotations say nothing the run needs.
    let mut plain = after.clone();
    for graph in plain.graph_ids().collect::<Vec<_>>() {
        plain.graph_mut(graph).value_info.clear();
    }
    let rewritten = bytes(&plain);
    let mut sets: Vec<PathBuf> = std::fs::read_dir(&folder)
        .expect("model folder")
        .flatten()
        .map(|e| e.path())
        .filter(|p| p.is_dir())
        .collect();
    sets.sort();
    assert!(!sets.is_empty());
    for set in sets {
        let inputs: Vec<Tensor> = data_files(&set, "input")
            .iter()
            .map(|p| tensor(p))
            .collect();
        let want: Vec<Tensor> = data_files(&set, "output")
            .iter()
            .map(|p| tensor(p))
            .collect();
        let got = execute(&rewritten, &inputs);
        assert_eq!(got.len(), want.len());
        for (g, w) in got.iter().zip(&want) {
            assert_eq!(g.shape(), w.shape(), "{}", set.display());
            let g = g.cast_to::<f32>().expect("float");
            let w = w.cast_to::<f32>().expect("float");
            let g = g.to_plain_array_view::<f32>().expect("f32");
            let w = w.to_plain_array_view::<f32>().expect("f32");
            for (x, y) in g.iter().zip(w.iter()) {
                // PyTorch against tract: the reference tolerance of testdata/models.
                assert!(
                    (x - y).abs() <= 1e-5 + 1e-4 * y.abs(),
                    "{}: {x} vs {y}",
                    set.display()
                );
            }
        }
    }
}

#[test]
fn cond_single() {
    check("cond_single", 1);
}

#[test]
fn cond_multi_output() {
    check("cond_multi_output", 1);
}

#[test]
fn cond_nested() {
    check("cond_nested", 3);
}

#[test]
fn cond_capture() {
    check("cond_capture", 1);
}

#[test]
fn cond_moe_experts() {
    check("cond_moe_experts", 6);
}
