//! Bad text: errors say where and why, deep nesting is refused, nothing panics.

use onnx_rewrite_proto::{Message as _, ModelProto};
use onnx_rewrite_text::{
    MAX_NESTING_DEPTH, ParseError, parse_function, parse_graph, parse_model, parse_node,
};

fn error(text: &str) -> ParseError {
    parse_model(text).expect_err("the text should not parse")
}

fn at(text: &str) -> (u32, u32) {
    let e = error(text);
    (e.line, e.column)
}

#[test]
fn errors_point_at_the_offending_character() {
    // A missing `=>`: the error is at the `(` where it was expected.
    let text = "g (float x)\n  (float y) {}";
    let e = error(text);
    assert_eq!((e.line, e.column), (2, 3), "{e}");
    assert!(e.reason.contains("expected `=`"), "{e}");

    // `=>` with a space inside.
    let e = error("g (float x) = > (float y) {}");
    assert_eq!((e.line, e.column), (1, 14), "{e}");
    assert!(e.reason.contains("write `=>` with no space"), "{e}");

    // An unknown type where a type must be: inside `seq(...)`.
    let e = error("g (seq(floot) x) => () {}");
    assert_eq!((e.line, e.column), (1, 8), "{e}");
    assert!(e.reason.contains("unknown type `floot`"), "{e}");
    // Where a type is optional, an unknown one is a name, and the error comes after it.
    let e = error("g (floot[2] x) => () {}");
    assert_eq!((e.line, e.column), (1, 9), "{e}");

    // An unknown attribute type, on line 3.
    let text = "<ir_version: 10>\ng () => () {\n  y = Foo <a: integer = 1> ()\n}";
    let e = error(text);
    assert_eq!((e.line, e.column), (3, 15), "{e}");
    assert!(e.reason.contains("unknown attribute type `integer`"), "{e}");

    // An unknown header key.
    let e = error("<ir_version: 10, opset: []>\ng () => () {}");
    assert_eq!((e.line, e.column), (1, 18), "{e}");
    assert!(e.reason.contains("unknown model key `opset`"), "{e}");

    // Columns count characters, not bytes.
    let e = error("\"é\" (float x) => (float y) { y = Relu (x) ");
    assert_eq!(e.line, 1);
    assert_eq!(e.column, 43, "{e}");
    assert!(e.reason.contains("the end of the input"), "{e}");
}

#[test]
fn comments_count_as_whitespace_in_positions() {
    let text = "# a comment line\ng () => () { # another\n  y = Foo <a = > ()\n}";
    assert_eq!(at(text), (3, 16));
}

#[test]
fn literal_errors() {
    let e = error("g () => () { y = Foo <a = 99999999999999999999> () }");
    assert!(
        e.reason.contains("out of range for a 64-bit integer"),
        "{e}"
    );
    let e = error("g () => () { y = Foo <a = 1e39> () }");
    assert!(e.reason.contains("out of range for a float"), "{e}");
    let e = error("g () => (float[2] y) <float[2] y = {1, 2.5.5}> {}");
    assert!(
        e.reason.contains("expected `}`") || e.reason.contains("expected"),
        "{e}"
    );
    let e = error("g () => () <int32[1] w = {3000000000}> {}");
    assert!(e.reason.contains("does not fit"), "{e}");
    let e = error("g () => () <uint64[1] w = {-1}> {}");
    assert!(e.reason.contains("unsigned"), "{e}");
    let e = error("g () => () <int64[1] w = {1.5}> {}");
    assert!(e.reason.contains("expected an integer"), "{e}");
    let e = error("g () => () { y = Foo <s = \"unterminated> () }");
    assert!(e.reason.contains("unterminated string"), "{e}");
    let e = error("g () => () { y = Foo <a = - 1> () }");
    assert!(e.reason.contains("a number must follow `-`"), "{e}");
}

#[test]
fn structural_errors() {
    // An empty list needs its type.
    let e = error("g () => () { y = Foo <a = []> () }");
    assert!(e.reason.contains("needs a declared type"), "{e}");
    // A declared type the value does not have.
    let e = error("g () => () { y = Foo <a: int = 1.5> () }");
    assert!(
        e.reason
            .contains("expected a int value, found a float value"),
        "{e}"
    );
    // A tensor value needs numeric dims.
    let e = error("g () => () <float[N] w = {1}> {}");
    assert!(e.reason.contains("dimensions must be numbers"), "{e}");
    let e = error("g () => () <float[] w = {1}> {}");
    assert!(e.reason.contains("known shape"), "{e}");
    // `...` (data the printer could not write) does not parse.
    let e = error("g () => () <int4[2] w = ...> {}");
    assert!(e.reason.contains("expected"), "{e}");
    // A map's key must be an element type.
    let e = error("g (map(seq(float), float) m) => () {}");
    assert!(e.reason.contains("map's key type"), "{e}");
    // An unclosed node list.
    let e = error("g () => () { y = Relu (x)");
    assert!(e.reason.contains("a node or `}`"), "{e}");
    // Text after the model.
    let e = parse_graph("g () => () {} extra").unwrap_err();
    assert_eq!((e.line, e.column), (1, 15), "{e}");
    assert!(parse_node("y = Relu (x) z").is_err());
    assert!(parse_function("f (x) => (y) {} {}").is_err());
}

#[test]
fn empty_and_trivial_inputs_are_errors() {
    for text in [
        "",
        "   ",
        "# only a comment",
        "<",
        "<>",
        "g",
        "g (",
        "g () =>",
        "g () => ()",
    ] {
        assert!(parse_model(text).is_err(), "{text:?}");
        assert!(parse_graph(text).is_err(), "{text:?}");
    }
    assert!(parse_node("").is_err());
    assert!(parse_function("").is_err());
}

/// `seq(seq(...float...))` nested `depth` times, as the type of a graph input.
fn nested_seq_model(depth: usize) -> String {
    format!(
        "g ({}float{} x) => () {{}}",
        "seq(".repeat(depth),
        ")".repeat(depth)
    )
}

/// A graph whose only node is an `If` whose branch is such a graph, `depth` times.
fn nested_graph_model(depth: usize) -> String {
    let mut text = String::from("g () => () {}");
    for _ in 0..depth {
        text = format!("g () => () {{ y = If (c) <then_branch: graph = {text}> }}");
    }
    text
}

#[test]
fn ten_thousand_levels_of_nesting_are_an_error_not_a_crash() {
    for text in [nested_seq_model(10_000), nested_graph_model(10_000)] {
        let e = parse_model(&text).expect_err("too deep");
        assert!(e.reason.contains("nested too deeply"), "{e}");
        assert_eq!(e.line, 1);
    }
    // Unbalanced openers, which never close, are refused the same way.
    let e = parse_model(&format!("g ({} x", "optional(".repeat(10_000))).expect_err("too deep");
    assert!(e.reason.contains("nested too deeply"), "{e}");
}

#[test]
fn the_deepest_accepted_model_survives_protobuf_encoding() {
    // Find the deepest nesting the parser accepts, for types and for graphs, and check that the
    // protobuf decoder takes the result back: the parser's limit is the decoder's.
    for make in [nested_seq_model as fn(usize) -> String, nested_graph_model] {
        let deepest = (1..200)
            .take_while(|d| parse_model(&make(*d)).is_ok())
            .last()
            .expect("some depth parses");
        println!("deepest accepted nesting: {deepest}");
        assert!(deepest >= 10, "nesting limit too tight: {deepest}");
        let model = parse_model(&make(deepest)).unwrap();
        let bytes = model.encode_to_vec();
        let decoded =
            ModelProto::decode(bytes.as_slice()).expect("prost decodes what the parser built");
        assert_eq!(decoded, model);
    }
    assert_eq!(MAX_NESTING_DEPTH, onnx_rewrite_proto::MAX_MESSAGE_DEPTH);
}
