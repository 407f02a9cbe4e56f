//! The entry points for graphs, functions and nodes, and the places where the parser reads more
//! than onnx.parser. Expected texts are what onnx.printer 1.23.2 writes for the same messages.

use onnx_rewrite_proto::attribute_proto::AttributeType;
use onnx_rewrite_proto::tensor_proto::DataLocation;
use onnx_rewrite_text::{
    PrintOptions, canonical_function, canonical_graph, canonical_node, parse_function, parse_graph,
    parse_model, parse_node, print_function, print_graph, print_node,
};

#[test]
fn a_node_prints_as_one_indented_line() {
    let node =
        parse_node("[n1] y = com.example.Foo:v2 <alpha = 0.5, axes = [1, 2]> (x, , z)").unwrap();
    assert_eq!(node.name.as_deref(), Some("n1"));
    assert_eq!(node.domain.as_deref(), Some("com.example"));
    assert_eq!(node.overload.as_deref(), Some("v2"));
    assert_eq!(node.input, ["x", "", "z"]);
    let text = print_node(&node, &PrintOptions::default());
    assert_eq!(
        text,
        "   [n1] y = com.example.Foo:v2 <alpha: float = 0.5, axes: ints = [1, 2]> (x, \"\", z)\n"
    );
    assert_eq!(parse_node(&text).unwrap(), canonical_node(&node).unwrap());
}

#[test]
fn a_node_without_a_domain_still_has_one() {
    // As in onnx.parser: the domain is always set, to "" when the text has none.
    let node = parse_node("y = Relu (x)").unwrap();
    assert_eq!(node.domain.as_deref(), Some(""));
    assert_eq!(node.name, None);
    assert_eq!(node.overload, None);
}

#[test]
fn graphs_and_functions_print_as_inside_a_model() {
    let graph =
        parse_graph("g (float[N] x) => (float[N] y) <float[1] two = {2}> { y = Mul (x, two) }")
            .unwrap();
    let text = print_graph(&graph, &PrintOptions::default());
    assert_eq!(
        text,
        "g (float[N] x) => (float[N] y) \n   <float[1] two =  {2}>\n{\n   y = Mul (x, two)\n}"
    );
    assert_eq!(
        parse_graph(&text).unwrap(),
        canonical_graph(&graph).unwrap()
    );

    let function = parse_function(
        r#"<domain: "local", opset_import: ["" : 21]> Double <k> (x) => (y) { y = Add (x, x) }"#,
    )
    .unwrap();
    let text = print_function(&function, &PrintOptions::default());
    assert_eq!(
        text,
        "<\n  domain: \"local\",\n  opset_import: [\"\" : 21]\n>\nDouble <k>(x) => (y)\n{\n   y = Add (x, x)\n}"
    );
    assert_eq!(
        parse_function(&text).unwrap(),
        canonical_function(&function).unwrap()
    );
}

#[test]
fn subgraph_attributes_print_after_the_inputs_and_indent() {
    let text = "g (bool c) => (float y) { y = If (c) <then_branch: graph = t () => (float a) { a = Foo () }, else_branch: graph = e () => (float b) { b = Bar () }> }";
    let printed = print_graph(&parse_graph(text).unwrap(), &PrintOptions::default());
    assert_eq!(
        printed,
        "g (bool c) => (float y) {\n   y = If (c) <then_branch: graph = t () => (float a) {\n      a = Foo ()\n   }, else_branch: graph = e () => (float b) {\n      b = Bar ()\n   }>\n}"
    );
}

#[test]
fn unannotated_lists_of_tensors_graphs_and_types_keep_their_elements() {
    let node = parse_node(
        "y = Foo <ts = [float[1] {1}, int64 {2}], gs = [a () => () {}], tps = [float, seq(int8)]> ()",
    )
    .unwrap();
    let types: Vec<_> = node.attribute.iter().map(|a| a.r#type).collect();
    assert_eq!(
        types,
        [
            Some(AttributeType::Tensors as i32),
            Some(AttributeType::Graphs as i32),
            Some(AttributeType::TypeProtos as i32)
        ]
    );
    assert_eq!(node.attribute[0].tensors.len(), 2);
    assert_eq!(node.attribute[1].graphs.len(), 1);
    assert_eq!(node.attribute[2].type_protos.len(), 2);
}

#[test]
fn subgraphs_may_have_quoted_or_keyword_like_names() {
    let node = parse_node(
        r#"y = If (c) <then_branch: graph = "then body" () => () {}, else_branch: graph = float () => () {}>"#,
    )
    .unwrap();
    assert_eq!(
        node.attribute[0].g.as_ref().unwrap().name.as_deref(),
        Some("then body")
    );
    assert_eq!(
        node.attribute[1].g.as_ref().unwrap().name.as_deref(),
        Some("float")
    );
    let node =
        parse_node("y = If (c) <then_branch = inf () => () {}, else_branch = nan (x) => () {}>")
            .unwrap();
    assert_eq!(
        node.attribute[0].g.as_ref().unwrap().name.as_deref(),
        Some("inf")
    );
    // Without a signature, `inf` is still a float.
    let node = parse_node("y = Foo <a = inf, b = -nan> ()").unwrap();
    assert_eq!(node.attribute[0].f, Some(f32::INFINITY));
    assert!(
        node.attribute[1]
            .f
            .is_some_and(|f| f.is_nan() && f.is_sign_negative())
    );
}

#[test]
fn declared_tensor_attributes_read_quoted_names_and_external_data() {
    let node = parse_node(
        r#"y = Constant <a: tensor = float[2] "my tensor" {1, 2}, b: tensor = float[2]["location": "b.bin"]> ()"#,
    )
    .unwrap();
    let a = node.attribute[0].t.as_ref().unwrap();
    assert_eq!(a.name.as_deref(), Some("my tensor"));
    assert_eq!(a.float_data, [1.0, 2.0]);
    let b = node.attribute[1].t.as_ref().unwrap();
    assert_eq!(b.name.as_deref(), Some(""));
    assert_eq!(b.data_location, Some(DataLocation::External as i32));
    assert_eq!(b.external_data[0].value.as_deref(), Some("b.bin"));
}

#[test]
fn the_crate_example_round_trips() {
    let model = parse_model(
        "<ir_version: 10, opset_import: [\"\" : 21]>\nmain (float[N] x) => (float[N] y) { y = Relu (x) }",
    )
    .unwrap();
    assert_eq!(model.ir_version, Some(10));
    assert_eq!(
        model.graph.as_ref().unwrap().node[0].op_type.as_deref(),
        Some("Relu")
    );
}
