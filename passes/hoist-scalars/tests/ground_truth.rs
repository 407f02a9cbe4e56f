//! The predictor against onnxruntime-gpu, where it has been measured.
//!
//! `tools/memcpy/gpu_ground_truth.sh` runs on a machine with an NVIDIA GPU and writes
//! `tests/fixtures/memcpy_ground_truth.json` (the Memcpy nodes of each model of
//! `tools/memcpy/measure_list.json`, before and after the pass, in the optimized graph of a CUDA
//! session at ORT_ENABLE_BASIC) and `tests/fixtures/cuda_kernels.json` (the CUDA EP's kernel
//! registrations of that build).
//!
//! Neither file has been recorded yet: no session so far had an NVIDIA GPU. The two comparisons
//! are therefore `#[ignore]`d with that reason, and run with `--ignored` they fail (rather than
//! pass vacuously) while the fixture is missing. `ground_truth_is_not_recorded_yet` keeps the
//! arrangement honest from the other side: once a fixture is committed it fails until the
//! matching `#[ignore]` is removed, so the comparison can never be skipped silently.

mod common;

use std::collections::{BTreeMap, BTreeSet};
use std::path::PathBuf;

use onnx_rewrite_hoist_scalars::HoistScalarsPass;
use onnx_rewrite_ir::{LoadOptions, Model};
use onnx_rewrite_ort_kernels::{self as ort, Ep};
use onnx_rewrite_pass::{Pass, PassContext};
use onnx_rewrite_placement::{PredictOptions, predict};
use serde_json::Value;

fn repo_root() -> PathBuf {
    PathBuf::from(env!("CARGO_MANIFEST_DIR")).join("../..")
}

fn load(path: &PathBuf) -> Model {
    if path.extension().is_some_and(|e| e == "onnxtxt") {
        let source = std::fs::read_to_string(path).expect("readable fixture");
        onnx_rewrite_testkit::model(&source)
    } else {
        onnx_rewrite_ir::load::load_file(path, &LoadOptions::default()).expect("loads")
    }
}

const GROUND_TRUTH: &str = "memcpy_ground_truth.json";
const CUDA_KERNELS: &str = "cuda_kernels.json";

/// The fixture's text; a missing fixture is a failure, never a silent pass.
fn fixture(name: &str) -> String {
    let path = common::fixture_dir().join(name);
    std::fs::read_to_string(&path).unwrap_or_else(|e| {
        panic!(
            "{}: {e}; record it on a machine with an NVIDIA GPU: tools/memcpy/gpu_ground_truth.sh",
            path.display()
        )
    })
}

#[test]
fn ground_truth_is_not_recorded_yet() {
    for name in [GROUND_TRUTH, CUDA_KERNELS] {
        assert!(
            !common::fixture_dir().join(name).exists(),
            "{name} is recorded now: remove the #[ignore] of the test that compares against it"
        );
    }
}

#[test]
#[ignore = "needs tests/fixtures/memcpy_ground_truth.json, recorded on a GPU by tools/memcpy/gpu_ground_truth.sh"]
fn predicted_memcpy_counts_match_the_measured_ones() {
    let text = fixture(GROUND_TRUTH);
    let truth: Value = serde_json::from_str(&text).expect("valid JSON");
    assert_eq!(
        truth["onnxruntime"],
        ort::PINNED_VERSION,
        "measured with another onnxruntime"
    );
    let mut mismatches = Vec::new();
    let mut compared = 0;
    for record in truth["models"].as_array().expect("a model list") {
        let (Some(rel), Some(measured)) = (record["path"].as_str(), record["memcpy"].as_u64())
        else {
            continue; // an error on the GPU machine, recorded as such
        };
        let file = repo_root().join(rel);
        if !file.exists() {
            continue;
        }
        let mut model = load(&file);
        if record["variant"] == "after" {
            HoistScalarsPass
                .run(&mut model, &PassContext::default())
                .expect("the pass runs");
        }
        let prediction = predict(&model, &PredictOptions::default()).expect("predicts");
        compared += 1;
        let predicted: BTreeSet<String> = prediction
            .graphs
            .iter()
            .flat_map(|g| {
                g.memcpy
                    .iter()
                    .map(|m| format!("{:?} {}", m.kind, m.tensor))
            })
            .collect();
        let actual: BTreeSet<String> = record["copies"]
            .as_array()
            .into_iter()
            .flatten()
            .map(|c| {
                format!(
                    "{} {}",
                    c["kind"].as_str().unwrap_or("?"),
                    c["tensor"].as_str().unwrap_or("?")
                )
            })
            .collect();
        if prediction.memcpy_nodes as u64 != measured {
            mismatches.push(format!(
                "{} ({}): predicted {} Memcpy, measured {measured}; predicted {predicted:?}, measured {actual:?}",
                record["name"], record["variant"], prediction.memcpy_nodes
            ));
        }
    }
    eprintln!("compared {compared} measured models");
    assert!(mismatches.is_empty(), "{}", mismatches.join("\n"));
}

/// `(domain, op, since, until)` → constraint → types.
type Table = BTreeMap<(String, String, i64, Option<i64>), BTreeMap<String, BTreeSet<String>>>;

fn short(t: &str) -> String {
    t.strip_prefix("tensor(")
        .and_then(|s| s.strip_suffix(')'))
        .unwrap_or(t)
        .to_owned()
}

#[test]
#[ignore = "needs tests/fixtures/cuda_kernels.json, dumped on a GPU by tools/memcpy/gpu_ground_truth.sh"]
fn the_cuda_kernel_table_matches_the_measured_build() {
    let path = common::fixture_dir().join(CUDA_KERNELS);
    let text = fixture(CUDA_KERNELS);
    let dump: Value = serde_json::from_str(&text).expect("valid JSON");
    let mut measured = Table::new();
    for k in dump["kernels"]["CUDAExecutionProvider"]
        .as_array()
        .expect("a list")
    {
        let domain = k["domain"].as_str().unwrap_or("");
        let domain = if domain == "ai.onnx" { "" } else { domain };
        let lo = k["version_range"][0].as_i64().expect("a range");
        let hi = k["version_range"][1].as_i64().expect("a range");
        let key = (
            domain.to_owned(),
            k["op_name"].as_str().unwrap_or("").to_owned(),
            lo,
            (hi < i64::from(i32::MAX)).then_some(hi),
        );
        let entry = measured.entry(key).or_default();
        for (name, types) in k["type_constraints"].as_object().into_iter().flatten() {
            entry.entry(name.clone()).or_default().extend(
                types
                    .as_array()
                    .into_iter()
                    .flatten()
                    .filter_map(|t| t.as_str())
                    .map(short),
            );
        }
    }
    let mut ours = Table::new();
    for (domain, op, r) in ort::pinned().kernels(Ep::Cuda).all() {
        let entry = ours
            .entry((domain.to_owned(), op.to_owned(), r.since, r.until))
            .or_default();
        for (name, types) in &r.types {
            entry
                .entry(name.clone())
                .or_default()
                .extend(types.iter().cloned());
        }
    }
    let missing: Vec<_> = measured.keys().filter(|k| !ours.contains_key(*k)).collect();
    let extra: Vec<_> = ours.keys().filter(|k| !measured.contains_key(*k)).collect();
    let differ: Vec<_> = measured
        .iter()
        .filter(|(k, v)| ours.get(*k).is_some_and(|o| o != *v))
        .map(|(k, _)| k)
        .collect();
    assert!(
        missing.is_empty() && extra.is_empty() && differ.is_empty(),
        "the CUDA table differs from the measured build (regenerate it: python tools/ort/gen_kernel_tables.py --cuda-kernel-defs {}):\nmissing {missing:?}\nextra {extra:?}\ntypes differ {differ:?}",
        path.display()
    );
}
