//! Helpers shared by the integration tests: fixtures, predictions, execution with tract on
//! inputs where each symbolic dim has its own size (binding every dim to one size would hide a
//! batch/sequence mix-up).

#![allow(dead_code)]

use std::path::PathBuf;

use onnx_rewrite_hoist_scalars::HoistScalarsPass;
use onnx_rewrite_ir::Model;
use onnx_rewrite_placement::{PredictOptions, predict};
use onnx_rewrite_testkit::{apply, assert_same_outputs_on, model, text};

pub fn fixture_dir() -> PathBuf {
    PathBuf::from(env!("CARGO_MANIFEST_DIR")).join("tests/fixtures")
}

/// A pattern fixture (`tests/fixtures/patterns/<name>.onnxtxt`).
pub fn fixture(name: &str) -> Model {
    let path = fixture_dir()
        .join("patterns")
        .join(format!("{name}.onnxtxt"));
    let source =
        std::fs::read_to_string(&path).unwrap_or_else(|e| panic!("{}: {e}", path.display()));
    model(&source)
}

/// Predicted Memcpy nodes over every graph.
pub fn predicted(model: &Model) -> usize {
    predict(model, &PredictOptions::default())
        .expect("predicts")
        .memcpy_nodes
}

/// Applies the pass to fixture `name`, checks the predicted counts and the outputs, and returns
/// the graph after in text syntax.
pub fn case(name: &str, before: usize, after: usize) -> String {
    case_with(name, before, after, true)
}

/// [`case`]; `tract: false` for ops tract does not run (`tools/memcpy/check_fixtures.py`
/// checks those fixtures on onnxruntime).
pub fn case_with(name: &str, before: usize, after: usize, tract: bool) -> String {
    let original = fixture(name);
    assert_eq!(
        predicted(&original),
        before,
        "{name}: Memcpy predicted before"
    );
    let (rewritten, report) = apply(&HoistScalarsPass, &original);
    assert_eq!(
        predicted(&rewritten),
        after,
        "{name}: Memcpy predicted after; report {report:?}"
    );
    assert_eq!(report.details["memcpy_before"], before, "{name}");
    assert_eq!(report.details["memcpy_after"], after, "{name}");
    if tract {
        assert_same_outputs(&original, &rewritten, 1e-5, 1e-6);
    }
    text(&rewritten)
}

/// Size sets for the symbolic dims, each dim its own size.
const SIZES: &[&[usize]] = &[&[2, 3, 5, 7], &[3, 1, 4, 2], &[1, 6, 2, 3]];

/// Same outputs on tract, for several size sets where each symbolic dim differs.
pub fn assert_same_outputs(before: &Model, after: &Model, rtol: f64, atol: f64) {
    let draws: Vec<(u64, &[usize])> = SIZES
        .iter()
        .enumerate()
        .map(|(seed, sizes)| (seed as u64 + 1, *sizes))
        .collect();
    assert_same_outputs_on(before, after, rtol, atol, &draws);
}
