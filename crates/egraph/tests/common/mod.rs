//! Models from ONNX text syntax and back, for the engine's tests.

use onnx_rewrite_ir::Model;
use onnx_rewrite_text::{PrintOptions, parse_model, print_model};

pub fn model(text: &str) -> Model {
    let proto = parse_model(text).unwrap_or_else(|e| panic!("test model parses: {e}"));
    onnx_rewrite_ir::load::from_proto(proto, None).expect("test model loads")
}

pub fn text(model: &Model) -> String {
    print_model(
        &onnx_rewrite_ir::save::to_proto(model).expect("saves"),
        &PrintOptions::default(),
    )
}
