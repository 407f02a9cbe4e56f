//! Prints a model file in the ONNX text syntax, for comparison with `onnx.printer.to_text`
//! (`tools/text/compare_printer.py`).
//!
//! ```text
//! cargo run --release -p onnx-rewrite-text --example print_model -- MODEL.onnx [--abbreviate N]
//! ```

use std::io::Write as _;
use std::process::ExitCode;

use onnx_rewrite_proto::{Message as _, ModelProto};
use onnx_rewrite_text::{PrintOptions, print_model};

fn main() -> ExitCode {
    let args: Vec<String> = std::env::args().skip(1).collect();
    let (path, options) = match args.as_slice() {
        [path] => (path, PrintOptions::default()),
        [path, flag, n] if flag == "--abbreviate" => match n.parse() {
            Ok(n) => (
                path,
                PrintOptions {
                    abbreviate_initializers_over: Some(n),
                },
            ),
            Err(e) => return fail(&format!("--abbreviate {n}: {e}")),
        },
        _ => return fail("usage: print_model MODEL.onnx [--abbreviate N]"),
    };
    let bytes = match std::fs::read(path) {
        Ok(bytes) => bytes,
        Err(e) => return fail(&format!("{path}: {e}")),
    };
    let model = match ModelProto::decode(bytes.as_slice()) {
        Ok(model) => model,
        Err(e) => return fail(&format!("{path}: {e}")),
    };
    let text = print_model(&model, &options);
    if let Err(e) = std::io::stdout().lock().write_all(text.as_bytes()) {
        return fail(&format!("stdout: {e}"));
    }
    ExitCode::SUCCESS
}

fn fail(message: &str) -> ExitCode {
    eprintln!("print_model: {message}");
    ExitCode::FAILURE
}
