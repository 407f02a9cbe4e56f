//! Round-trips every `.onnx` model under the given paths through the text syntax and reports
//! how many come back as expected.
//!
//! ```text
//! cargo run --release -p onnx-rewrite-text --example roundtrip -- DIR_OR_FILE... [--verbose]
//! ```
//!
//! For each model `m` it checks that `parse(print(m))` equals `canonical_model(m)` (compared as
//! encoded protobuf, so NaNs compare by their bits), counts the models for which it also equals
//! `m` itself, checks that `canonical_model(m)` round-trips unchanged, and counts the models for
//! which printing is a fixed point, `print(parse(print(m))) == print(m)`.
//! Exit status 1 if any check fails; models with no canonical form (their text does not parse,
//! by the limits of the syntax) are listed with the reason and do not fail the run.

use std::collections::BTreeMap;
use std::path::{Path, PathBuf};
use std::process::ExitCode;

use onnx_rewrite_proto::{Message as _, ModelProto};
use onnx_rewrite_text::{PrintOptions, canonical_model, parse_model, print_model};

fn main() -> ExitCode {
    let mut verbose = false;
    let mut files = Vec::new();
    for arg in std::env::args().skip(1) {
        if arg == "--verbose" {
            verbose = true;
        } else {
            collect(Path::new(&arg), &mut files);
        }
    }
    files.sort();

    let options = PrintOptions::default();
    let (mut total, mut canonical_equal, mut exact_equal, mut fixed_point) = (0, 0, 0, 0);
    let mut not_round_trippable: BTreeMap<String, Vec<String>> = BTreeMap::new();
    let mut failures = Vec::new();
    let mut notes = Vec::new();
    for file in &files {
        let name = file.display().to_string();
        let model = match std::fs::read(file)
            .map_err(|e| e.to_string())
            .and_then(|bytes| ModelProto::decode(bytes.as_slice()).map_err(|e| e.to_string()))
        {
            Ok(model) => model,
            Err(e) => {
                failures.push(format!("{name}: cannot load: {e}"));
                continue;
            }
        };
        total += 1;
        let text = print_model(&model, &options);
        let canonical = match canonical_model(&model) {
            Ok(canonical) => canonical,
            Err(e) => {
                // Group by reason, without the path, so the summary stays short.
                not_round_trippable
                    .entry(e.reason.clone())
                    .or_default()
                    .push(format!("{name} ({})", e.path));
                continue;
            }
        };
        let parsed = match parse_model(&text) {
            Ok(parsed) => parsed,
            Err(e) => {
                failures.push(format!("{name}: the printed text does not parse: {e}"));
                continue;
            }
        };
        let parsed_bytes = parsed.encode_to_vec();
        if parsed_bytes == canonical.encode_to_vec() {
            canonical_equal += 1;
        } else {
            failures.push(format!(
                "{name}: parse(print(m)) differs from canonical_model(m)"
            ));
            if verbose {
                eprintln!("{name}\n  parsed:    {parsed:?}\n  canonical: {canonical:?}");
            }
        }
        if parsed_bytes == model.encode_to_vec() {
            exact_equal += 1;
        }
        if print_model(&parsed, &options) == text {
            fixed_point += 1;
        } else {
            // Possible only where the layout depends on a field the text drops (a graph held
            // by an attribute of another type moves the attributes after the inputs).
            notes.push(format!(
                "{name}: print(parse(print(m))) differs from print(m)"
            ));
        }
        // The canonical form itself must survive the round trip unchanged.
        match parse_model(&print_model(&canonical, &options)) {
            Ok(again) if again.encode_to_vec() == canonical.encode_to_vec() => {}
            _ => failures.push(format!("{name}: canonical_model(m) does not round-trip")),
        }
    }

    let skipped: usize = not_round_trippable.values().map(Vec::len).sum();
    println!("models:                                   {total}");
    println!("not round-trippable (limits of the syntax): {skipped}");
    println!("parse(print(m)) == canonical_model(m):    {canonical_equal}");
    println!("parse(print(m)) == m exactly:             {exact_equal}");
    println!("print(parse(print(m))) == print(m):       {fixed_point}");
    for (reason, models) in &not_round_trippable {
        println!("\n{} not round-trippable: {reason}", models.len());
        for model in models {
            println!("  {model}");
        }
    }
    for note in &notes {
        println!("NOTE {note}");
    }
    for failure in &failures {
        println!("FAIL {failure}");
    }
    if failures.is_empty() {
        ExitCode::SUCCESS
    } else {
        ExitCode::FAILURE
    }
}

fn collect(path: &Path, files: &mut Vec<PathBuf>) {
    if path.is_dir() {
        let Ok(entries) = std::fs::read_dir(path) else {
            return;
        };
        for entry in entries.flatten() {
            collect(&entry.path(), files);
        }
    } else if path.extension().is_some_and(|e| e == "onnx") {
        files.push(path.to_owned());
    }
}
