//! Weights the fp16 pass leaves pending (computed as the model is saved) are computed before
//! any later pass of the pipeline reads them: the same model comes out either way.

use onnx_rewrite::PassContext;

const GEMM: &str = r#"<ir_version: 8, opset_import: ["" : 17]>
g (float[batch, 1024] x) => (float[batch, 2048] y)
<float[1, 1] w = {1}> { y = Gemm<transB: int = 1>(x, w) }"#;

/// The Gemm with a 2048 × 1024 weight: 4 MiB once in float16, large enough to be left pending.
fn model() -> onnx_rewrite::ir::Model {
    let proto = onnx_rewrite::text::parse_model(GEMM).expect("test model parses");
    let mut model = onnx_rewrite::ir::load::from_proto(proto, None).expect("test model loads");
    let w = model.graph(model.main()).initializers()[0];
    let mut tensor = model.value(w).initializer().expect("w").clone();
    tensor.dims = vec![2048, 1024];
    tensor.float_data.clear();
    tensor.raw_data = Some(
        (0..2048 * 1024)
            .flat_map(|i| ((i % 977) as f32 * 0.01 - 4.0).to_le_bytes())
            .collect::<Vec<u8>>()
            .into(),
    );
    model.set_initializer(w, tensor);
    model
}

#[test]
fn a_pass_after_fp16_reads_the_weights_it_left_pending() {
    let pipeline = onnx_rewrite::pipeline("fp16,gemm-to-matmul").expect("known passes");
    let mut eager = model();
    pipeline
        .run_with(&mut eager, &PassContext::default(), |_, _| {})
        .expect("runs");
    let mut lazy = model();
    let cx = PassContext {
        pending_payloads: true,
        ..PassContext::default()
    };
    let report = pipeline.run_with(&mut lazy, &cx, |_, _| {}).expect("runs");
    assert!(
        report.passes[1].rules.values().sum::<usize>() > 0,
        "gemm-to-matmul rewrote the Gemm: {:?}",
        report.passes[1]
    );
    let bytes = |m: &onnx_rewrite::ir::Model| onnx_rewrite::ir::save::to_bytes(m).expect("saves");
    assert!(bytes(&lazy) == bytes(&eager), "same model either way");
}
