//! `onnx-rewrite print`: the model in ONNX text syntax.

use std::io::Write;

use onnx_rewrite::ir;
use onnx_rewrite::text::{self, PrintOptions};

use crate::apply::load;
use crate::args::PrintArgs;
use crate::failure::Failure;

pub fn run(args: &PrintArgs) -> Result<(), Failure> {
    let model = load(&args.input, args.load.allow_unknown_fields)?;
    let proto = ir::save::to_proto(&model).map_err(Failure::input)?;
    let options = PrintOptions {
        abbreviate_initializers_over: args.abbreviate_initializers,
    };
    let mut text = text::print_model(&proto, &options);
    if !text.ends_with('\n') {
        text.push('\n');
    }
    write_stdout(&text)
}

/// Writes to stdout; a closed pipe (`| head`) is not an error.
pub fn write_stdout(text: &str) -> Result<(), Failure> {
    let mut stdout = std::io::stdout().lock();
    match stdout
        .write_all(text.as_bytes())
        .and_then(|()| stdout.flush())
    {
        Ok(()) => Ok(()),
        Err(e) if e.kind() == std::io::ErrorKind::BrokenPipe => Ok(()),
        Err(e) => Err(Failure::Input(format!("cannot write to stdout: {e}"))),
    }
}
