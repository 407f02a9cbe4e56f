//! Parses a model in the ONNX text syntax and writes it as a binary `.onnx` to stdout, for
//! comparison with `onnx.parser.parse_model` (`tools/text/compare_parser.py`).
//!
//! ```text
//! cargo run --release -p onnx-rewrite-text --example parse_model -- [TEXT_FILE] > model.onnx
//! ```
//!
//! With no file, reads stdin. A parse error goes to stderr, with exit status 1.

use std::io::{Read as _, Write as _};
use std::process::ExitCode;

use onnx_rewrite_proto::Message as _;
use onnx_rewrite_text::parse_model;

fn main() -> ExitCode {
    let mut text = String::new();
    let read = match std::env::args().nth(1) {
        Some(path) => std::fs::read_to_string(&path)
            .map(|t| text = t)
            .map_err(|e| format!("{path}: {e}")),
        None => std::io::stdin()
            .read_to_string(&mut text)
            .map(drop)
            .map_err(|e| format!("stdin: {e}")),
    };
    if let Err(e) = read {
        eprintln!("parse_model: {e}");
        return ExitCode::FAILURE;
    }
    match parse_model(&text) {
        Ok(model) => match std::io::stdout().lock().write_all(&model.encode_to_vec()) {
            Ok(()) => ExitCode::SUCCESS,
            Err(e) => {
                eprintln!("parse_model: stdout: {e}");
                ExitCode::FAILURE
            }
        },
        Err(e) => {
            eprintln!("parse_model: {e}");
            ExitCode::FAILURE
        }
    }
}
