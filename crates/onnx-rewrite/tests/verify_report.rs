//! `--verify` and the before/after report, at the library level: a verification that finds a
//! difference fails with exit status 2's error, shapes bind as asked, and regions pair what a
//! pass removed with what it put in place.

use std::collections::BTreeMap;

use onnx_rewrite::report::{GraphSketch, regions};
use onnx_rewrite::session::{ApplyRequest, apply};
use onnx_rewrite::verify::{self, Source, Tolerance, VerifyOptions, input_specs, parse_shape};
use onnx_rewrite::{ApplyError, PassContext, PassOptions};

fn model(text: &str) -> onnx_rewrite::ir::Model {
    let proto = onnx_rewrite::text::parse_model(text).expect("test model parses");
    onnx_rewrite::ir::load::from_proto(proto, None).expect("test model loads")
}

fn bytes(m: &onnx_rewrite::ir::Model) -> Vec<u8> {
    onnx_rewrite::ir::save::to_bytes(m).expect("serializes")
}

const RELU: &str = r#"<ir_version: 8, opset_import: ["" : 17]>
g (float[batch, 3] x) => (float[batch, 3] y) { y = Relu(x) }"#;
const ABS: &str = r#"<ir_version: 8, opset_import: ["" : 17]>
g (float[batch, 3] x) => (float[batch, 3] y) { y = Abs(x) }"#;
const GEMM: &str = r#"<ir_version: 8, opset_import: ["" : 17]>
g (float[batch, 3] x) => (float[batch, 2] y)
<float[2, 3] w = {1, 2, 3, 4, 5, 6}, float[2] b = {1, -1}> { y = Gemm<transB: int = 1>(x, w, b) }"#;

fn options(shapes: &[(&str, &[usize])]) -> VerifyOptions {
    VerifyOptions {
        shapes: shapes
            .iter()
            .map(|(n, d)| ((*n).to_owned(), d.to_vec()))
            .collect::<BTreeMap<_, _>>(),
        tolerance: Tolerance {
            rtol: 1e-5,
            atol: 1e-6,
        },
        seed: 0,
    }
}

#[test]
fn a_different_model_is_over_tolerance() {
    let (relu, abs) = (model(RELU), model(ABS));
    let specs = input_specs(&relu).expect("specs");
    let (a, b) = (bytes(&relu), bytes(&abs));
    let report = verify::verify(
        &specs,
        Source::Bytes(&a),
        Source::Bytes(&b),
        &options(&[("batch", &[4])]),
    )
    .expect("verification runs");
    assert!(!report.passed, "{}", report.summary());
    assert_eq!(report.inputs, vec![("x".to_owned(), vec![4, 3])]);
    assert!(report.outputs[0].worst_ratio > 1.0);
    assert!(report.summary().contains("OVER"));

    let same = verify::verify(&specs, Source::Bytes(&a), Source::Bytes(&a), &options(&[]))
        .expect("verification runs");
    assert!(same.passed);
    assert_eq!(same.outputs[0].max_abs_error, 0.0);
    assert_eq!(same.inputs[0].1, vec![verify::DEFAULT_SYMBOL_SIZE, 3]);
}

#[test]
fn shape_bindings_are_checked() {
    let relu = model(RELU);
    let specs = input_specs(&relu).expect("specs");
    let a = bytes(&relu);
    let run = |o: VerifyOptions| verify::verify(&specs, Source::Bytes(&a), Source::Bytes(&a), &o);
    assert!(run(options(&[("x", &[5, 3])])).expect("binds").passed);
    assert!(matches!(
        run(options(&[("x", &[5])])),
        Err(verify::VerifyError::Rank { .. })
    ));
    assert!(matches!(
        run(options(&[("sequence", &[5])])),
        Err(verify::VerifyError::UnknownName(_))
    ));
    assert_eq!(
        parse_shape("input_ids=1,8").expect("parses"),
        ("input_ids".to_owned(), vec![1, 8])
    );
    assert!(parse_shape("input_ids").is_err());
    assert!(parse_shape("x=1,a").is_err());
}

#[test]
fn tolerance_follows_the_table() {
    let none = PassOptions::default();
    assert_eq!(
        Tolerance::for_passes(&["gemm-to-matmul"], &none),
        Tolerance {
            rtol: 1e-5,
            atol: 1e-6
        }
    );
    assert_eq!(
        Tolerance::for_passes(&["gemm-to-matmul", "moe-dense"], &none),
        Tolerance {
            rtol: 1e-4,
            atol: 1e-5
        }
    );
    assert_eq!(
        Tolerance::for_passes(&["moe-dense", "fp16"], &none).rtol,
        2e-2
    );
    let mut bf16 = PassOptions::default();
    bf16.set("fp16-type", Some("bfloat16".to_owned()));
    assert_eq!(Tolerance::for_passes(&["fp16"], &bf16).atol, 5e-2);
}

#[test]
fn apply_verifies_and_finds_the_rewritten_region() {
    let mut m = model(GEMM);
    let original = bytes(&m);
    let pipeline = onnx_rewrite::pipeline("gemm-to-matmul").expect("parses");
    let request = ApplyRequest {
        verify: Some(options(&[])),
        regions: true,
    };
    let outcome = apply(
        &pipeline,
        &mut m,
        "gemm.onnx",
        &PassContext::default(),
        &request,
        Source::Bytes(&original),
        |_, _| {},
    )
    .expect("applies");
    outcome.check_verified().expect("within tolerance");
    let v = outcome.verify.as_ref().expect("verified");
    assert!(v.passed && v.outputs[0].max_abs_error < 1e-5);
    assert_eq!(outcome.regions.len(), 1);
    let region = &outcome.regions[0][0];
    assert_eq!(
        region
            .before
            .iter()
            .map(|n| n.op.as_str())
            .collect::<Vec<_>>(),
        ["Gemm"]
    );
    assert!(region.after.iter().any(|n| n.op == "MatMul"));
    let html = outcome.html("gemm").expect("regions were asked for");
    for part in [
        "id=\"passes\"",
        "id=\"ops\"",
        "id=\"verify\"",
        "<svg class=\"region\"",
    ] {
        assert!(html.contains(part), "{part}");
    }
    assert!(outcome.dot().contains("cluster_"));
    assert_eq!(outcome.json()["verify"]["passed"], serde_json::json!(true));
}

#[test]
fn over_tolerance_is_a_refusal_with_the_summary() {
    let (relu, abs) = (model(RELU), model(ABS));
    let specs = input_specs(&relu).expect("specs");
    let (a, b) = (bytes(&relu), bytes(&abs));
    let report =
        verify::verify(&specs, Source::Bytes(&a), Source::Bytes(&b), &options(&[])).expect("runs");
    let error = ApplyError::OverTolerance {
        report: Box::new(report),
    };
    assert!(error.is_refusal());
    let message = error.to_string();
    assert!(
        message.starts_with("--verify: ") && message.contains("OVER"),
        "{message}"
    );
}

#[test]
fn unchanged_graph_has_no_regions() {
    let m = model(GEMM);
    let s = GraphSketch::of(&m);
    assert!(regions(&s, &s).is_empty());
}
