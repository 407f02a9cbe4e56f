//! Checks against files the onnx 1.23.2 oracle wrote (`tools/text/make_golden.py`):
//! - `golden/print/NAME.onnx` prints exactly as `NAME.txt`, which onnx.printer wrote, and that
//!   text reads back as the model's canonical form;
//! - `golden/parse/NAME.txt` (hand-written) parses into the model onnx.parser made of it,
//!   `NAME.onnx`, presence of optional fields included.

use std::path::{Path, PathBuf};

use onnx_rewrite_proto::{AttributeProto, GraphProto, Message as _, ModelProto};
use onnx_rewrite_text::{PrintOptions, canonical_model, parse_model, print_model};

fn golden_dir(kind: &str) -> PathBuf {
    Path::new(env!("CARGO_MANIFEST_DIR"))
        .join("tests/golden")
        .join(kind)
}

fn files_with_extension(dir: &Path, extension: &str) -> Vec<PathBuf> {
    let mut files: Vec<PathBuf> = std::fs::read_dir(dir)
        .unwrap_or_else(|e| panic!("{}: {e}", dir.display()))
        .map(|entry| entry.unwrap().path())
        .filter(|path| path.extension().is_some_and(|e| e == extension))
        .collect();
    files.sort();
    files
}

fn load(path: &Path) -> ModelProto {
    ModelProto::decode(std::fs::read(path).unwrap().as_slice()).unwrap()
}

#[test]
fn the_printer_writes_what_onnx_printer_wrote() {
    let files = files_with_extension(&golden_dir("print"), "onnx");
    assert!(files.len() > 50, "golden files missing");
    let mut failures = Vec::new();
    for path in &files {
        let expected = std::fs::read_to_string(path.with_extension("txt")).unwrap();
        let actual = print_model(&load(path), &PrintOptions::default());
        if actual != expected {
            let line = expected
                .lines()
                .zip(actual.lines())
                .position(|(e, a)| e != a)
                .map_or(0, |i| i + 1);
            failures.push(format!(
                "{} (first difference on line {line})",
                path.display()
            ));
        }
    }
    assert!(
        failures.is_empty(),
        "printer output differs from onnx.printer:\n{}",
        failures.join("\n")
    );
}

#[test]
fn onnx_printer_text_reads_back_as_the_canonical_model() {
    let mut checked = 0;
    for path in files_with_extension(&golden_dir("print"), "onnx") {
        let model = load(&path);
        let Ok(canonical) = canonical_model(&model) else {
            // The syntax cannot express this model (`...` data, sparse attributes, ...).
            let text = std::fs::read_to_string(path.with_extension("txt")).unwrap();
            assert!(
                parse_model(&text).is_err(),
                "{}: expected the text not to parse",
                path.display()
            );
            continue;
        };
        let text = std::fs::read_to_string(path.with_extension("txt")).unwrap();
        let parsed = parse_model(&text).unwrap_or_else(|e| panic!("{}: {e}", path.display()));
        assert_eq!(
            parsed.encode_to_vec(),
            canonical.encode_to_vec(),
            "{}",
            path.display()
        );
        // A canonical model is a fixed point of the round trip.
        let again = parse_model(&print_model(&canonical, &PrintOptions::default())).unwrap();
        assert_eq!(
            again.encode_to_vec(),
            canonical.encode_to_vec(),
            "{}",
            path.display()
        );
        checked += 1;
    }
    assert!(checked > 50);
}

#[test]
fn the_parser_builds_what_onnx_parser_built() {
    let texts = files_with_extension(&golden_dir("parse"), "txt");
    assert!(!texts.is_empty());
    for path in texts {
        let text = std::fs::read_to_string(&path).unwrap();
        let parsed = parse_model(&text).unwrap_or_else(|e| panic!("{}: {e}", path.display()));
        let expected_path = path.with_extension("onnx");
        if !expected_path.exists() {
            // onnx.parser rejects this text (see NAME.rejected); this parser reads it.
            continue;
        }
        // Re-encode the oracle's message with prost so that field order cannot differ.
        let expected = load(&expected_path).encode_to_vec();
        assert_eq!(
            without_dropped_lists(parsed).encode_to_vec(),
            expected,
            "{}",
            path.display()
        );
    }
}

#[test]
fn list_elements_that_onnx_parser_drops_are_kept() {
    let text = std::fs::read_to_string(golden_dir("parse").join("tensor_lists.txt")).unwrap();
    let model = parse_model(&text).unwrap();
    let node = &model.graph.as_ref().unwrap().node[0];
    assert_eq!(node.attribute[0].tensors.len(), 2);
    assert_eq!(node.attribute[0].tensors[1].name.as_deref(), Some("t1"));
    assert_eq!(node.attribute[1].type_protos.len(), 2);
    let text = std::fs::read_to_string(golden_dir("parse").join("subgraphs.txt")).unwrap();
    let model = parse_model(&text).unwrap();
    let foo = &model.graph.as_ref().unwrap().node[2];
    assert_eq!(foo.attribute[0].graphs.len(), 2);
}

/// The model with the elements of `tensors`, `graphs` and `type_protos` lists removed, which is
/// what onnx.parser makes of such lists.
fn without_dropped_lists(mut model: ModelProto) -> ModelProto {
    fn graph(g: &mut GraphProto) {
        for node in &mut g.node {
            node.attribute.iter_mut().for_each(attribute);
        }
    }
    fn attribute(a: &mut AttributeProto) {
        a.tensors.clear();
        a.graphs.clear();
        a.type_protos.clear();
        if let Some(g) = &mut a.g {
            graph(g);
        }
    }
    if let Some(g) = &mut model.graph {
        graph(g);
    }
    for function in &mut model.functions {
        for node in &mut function.node {
            node.attribute.iter_mut().for_each(attribute);
        }
    }
    model
}
