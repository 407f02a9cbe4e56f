//! Arbitrary text through the ONNX text-syntax parser: never a panic; whatever parses prints
//! and parses back to the same model.
#![no_main]

use libfuzzer_sys::fuzz_target;
use onnx_rewrite_text::{parse_model, print_model, PrintOptions};

fuzz_target!(|data: &[u8]| {
    let Ok(text) = std::str::from_utf8(data) else { return };
    let Ok(model) = parse_model(text) else { return };
    let printed = print_model(&model, &PrintOptions::default());
    if let Ok(again) = parse_model(&printed) {
        assert_eq!(print_model(&again, &PrintOptions::default()), printed, "print is a fixed point of parse");
    }
});
