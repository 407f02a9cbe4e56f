//! Helpers shared by the integration tests: fixtures, predictions, execution with tract on
//! inputs where each symbolic dim has its own size (binding every dim to one size, as
//! `testkit::inputs` does, would hide a batch/sequence mix-up).

#![allow(dead_code)]

use std::collections::BTreeMap;
use std::path::PathBuf;

use onnx_rewrite_hoist_scalars::HoistScalarsPass;
use onnx_rewrite_hoist_scalars::placement::{PredictOptions, predict};
use onnx_rewrite_ir::Model;
use onnx_rewrite_proto::tensor_proto::DataType;
use onnx_rewrite_proto::tensor_shape_proto::dimension::Value as Dim;
use onnx_rewrite_proto::type_proto::Value as Ty;
use onnx_rewrite_testkit::{apply, bytes, execute, model, text};
use tract_onnx::prelude::Tensor;

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
    let (b, a) = (bytes(before), bytes(after));
    for (seed, sizes) in SIZES.iter().enumerate() {
        let inputs = inputs(before, sizes, seed as u64 + 1);
        let want = execute(&b, &inputs);
        let got = execute(&a, &inputs);
        assert_eq!(got.len(), want.len(), "output count");
        for (i, (g, w)) in got.iter().zip(&want).enumerate() {
            assert_eq!(g.shape(), w.shape(), "output {i} shape");
            let g = g.cast_to::<f64>().expect("numeric");
            let w = w.cast_to::<f64>().expect("numeric");
            let g = g.to_plain_array_view::<f64>().expect("f64");
            let w = w.to_plain_array_view::<f64>().expect("f64");
            for (x, y) in g.iter().zip(w.iter()) {
                assert!(
                    (x - y).abs() <= atol + rtol * y.abs() || (x.is_nan() && y.is_nan()),
                    "output {i}: {x} vs {y} (sizes {sizes:?})"
                );
            }
        }
    }
}

/// Pseudo-random inputs; the n-th distinct `dim_param` gets `sizes[n]`.
pub fn inputs(model: &Model, sizes: &[usize], seed: u64) -> Vec<Tensor> {
    let proto = onnx_rewrite_ir::save::to_proto(model).expect("converts");
    let graph = proto.graph.expect("a graph");
    let mut state = seed.wrapping_mul(0x9e37_79b9_7f4a_7c15) | 1;
    let mut next = move || {
        state ^= state << 13;
        state ^= state >> 7;
        state ^= state << 17;
        state
    };
    let mut named: BTreeMap<String, usize> = BTreeMap::new();
    graph
        .input
        .iter()
        .map(|input| {
            let Some(Ty::TensorType(t)) = input.r#type.as_ref().and_then(|t| t.value.as_ref())
            else {
                panic!("input {} is a tensor", input.name())
            };
            let shape: Vec<usize> = t
                .shape
                .as_ref()
                .map(|s| {
                    s.dim
                        .iter()
                        .map(|d| match &d.value {
                            Some(Dim::DimValue(v)) => *v as usize,
                            Some(Dim::DimParam(p)) => {
                                let n = named.len();
                                *named.entry(p.clone()).or_insert(sizes[n % sizes.len()])
                            }
                            None => sizes[0],
                        })
                        .collect()
                })
                .unwrap_or_default();
            let count: usize = shape.iter().product();
            match DataType::try_from(t.elem_type()).expect("element type") {
                DataType::Float => Tensor::from_shape(
                    &shape,
                    &(0..count)
                        .map(|_| (next() % 2001) as f32 / 500.0 - 2.0)
                        .collect::<Vec<f32>>(),
                ),
                DataType::Float16 => Tensor::from_shape(
                    &shape,
                    &(0..count)
                        .map(|_| half::f16::from_f32((next() % 2001) as f32 / 500.0 - 2.0))
                        .collect::<Vec<half::f16>>(),
                ),
                DataType::Int64 => Tensor::from_shape(
                    &shape,
                    &(0..count)
                        .map(|_| (next() % 5) as i64)
                        .collect::<Vec<i64>>(),
                ),
                other => panic!("no inputs of {other:?}"),
            }
            .expect("shape matches data")
        })
        .collect()
}
