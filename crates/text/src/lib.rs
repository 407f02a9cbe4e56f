//! The ONNX text syntax for onnx-rewrite's protobuf types: the form `onnx.printer.to_text`
//! writes and `onnx.parser.parse_model` reads (onnx 1.23.2), used for snapshots and hand-written
//! test models.
//!
//! ```
//! use onnx_rewrite_text::{PrintOptions, parse_model, print_model};
//!
//! let text = r#"
//! <ir_version: 10, opset_import: ["" : 21]>
//! main (float[N, 4] x) => (float[N, 4] y) {
//!     two = Constant <value: tensor = float {2}> ()
//!     y = Mul (x, two)
//! }
//! "#;
//! let model = parse_model(text)?;
//! let printed = print_model(&model, &PrintOptions::default());
//! assert!(printed.contains("y = Mul (x, two)"));
//! assert_eq!(parse_model(&printed)?, model);
//! # Ok::<(), onnx_rewrite_text::ParseError>(())
//! ```
//!
//! # The printer
//!
//! With abbreviation off ([`PrintOptions::default`]) the output is byte for byte what
//! onnx.printer 1.23.2 writes (checked against it on the 1,884 ONNX node-test models, edge-case
//! and random models: `tools/text/`), quirks included:
//! - nodes indent three spaces per graph level; a subgraph's closing brace sits one level out;
//! - a node's attributes go before its inputs, unless one of them holds a graph, in which case
//!   they all go after (`y = If (c) <then_branch: graph = ...>`);
//! - initializers print in the `<...>` block after the graph signature as `type[dims] name =
//!   {values}` with two spaces after `=`, followed by the graph's `value_info`;
//! - floats print as C++ `std::to_chars` writes them (shortest round trip, `1e-05`, exact
//!   integers: `float(123456789)` is `123456792`); float16, bfloat16 and float8 data print as
//!   their bit patterns; packed 2/4/6-bit, complex and raw string data print as `...`;
//! - names that are not `[A-Za-z_][A-Za-z0-9_]*` are quoted, except op types, domains,
//!   attribute names, references and opaque-type names, which print as they are;
//! - an empty `strings` attribute prints as `]` and an empty string tensor as `}`.
//!
//! Doc strings (except the model's), metadata of graphs, nodes, values and tensors, function
//! attribute defaults and `value_info`, sparse initializers, training info and sparse-tensor
//! attribute values have no place in the syntax and are not printed. Where onnx.printer raises
//! an error this printer still prints: byte strings that are not UTF-8 print with U+FFFD, and
//! `raw_data` whose size does not match the dims prints as `...`.
//!
//! # The parser
//!
//! On text onnx.parser accepts, [`parse_model`] builds the message onnx.parser builds, field for
//! field, presence included (checked on every text of `tests/golden/parse`): a node's `domain`
//! is always set (to `""` when the text has none), an attribute tensor always has a `name`, a
//! scalar type has an empty shape while `float[]` has none. It goes further only on text
//! onnx.parser rejects or misreads, so that everything this printer writes with a value syntax
//! reads back:
//! - the elements of `tensors`, `graphs` and `type_protos` lists are kept (onnx.parser parses
//!   them and drops them);
//! - a graph-valued attribute may have a quoted name (`g: graph = "my body" (...) => ...`), or be
//!   named like an element type, `inf` or `nan` when its signature follows;
//! - an attribute declared `tensor` reads as a tensor whatever follows its type: a quoted name,
//!   or external data with no name (`float[2]["location": "w.bin"]`);
//! - [`parse_graph`], [`parse_function`] and [`parse_node`] reject text left after the item;
//! - what onnx.parser ignores, throws on or drops is an error: a malformed attribute default in
//!   a function's attribute list, a number out of range, an `@reference` inside a list.
//!
//! Errors ([`ParseError`]) carry a line, a column and a reason. The parser never panics and
//! never recurses without bound: text whose messages would nest deeper than the protobuf decoder
//! accepts ([`MAX_NESTING_DEPTH`]; about 30 levels of subgraphs or 45 of `seq(...)`) is an
//! error, so whatever it returns can be encoded and decoded again. The printer recurses along
//! the message it is given, whose depth the protobuf decoder has already bounded.
//!
//! # Round trip
//!
//! `parse_model(&print_model(m, &PrintOptions::default()))` is [`canonical_model`]`(m)`: `m` less
//! what the syntax cannot hold, with `raw_data` read back into the typed fields. For a model
//! already in that form the round trip is the identity. Models whose text does not parse at all
//! (`...` data, sparse-tensor attributes, ...) make [`canonical_model`] return the reason; the
//! [`canonical`] module lists every case.
//!
//! # Abbreviation
//!
//! With [`PrintOptions::abbreviate_initializers_over`] set, large tensors print as
//! `float[1024,1024] w = ["sha256": "3f2a9c0d1e4b5a67"]`: type, shape, name and content hash, in
//! a form both parsers read back (as a tensor with no data). See [`abbrev`].

#![forbid(unsafe_code)]

pub mod abbrev;
pub mod canonical;
mod error;
mod lexer;
mod names;
mod number;
mod parser;
mod printer;
mod tensor_data;

use onnx_rewrite_proto::{FunctionProto, GraphProto, ModelProto, NodeProto};

pub use canonical::{
    NotRoundTrippable, canonical_function, canonical_graph, canonical_model, canonical_node,
};
pub use error::ParseError;
pub use parser::MAX_NESTING_DEPTH;

/// How to print.
#[derive(Debug, Clone, Default, PartialEq, Eq)]
pub struct PrintOptions {
    /// Initializers (and tensor-valued attributes) with more elements than this print as
    /// `dtype[shape] name = ["sha256": "<16 hex digits>"]` instead of their values; see
    /// [`abbrev`]. `None` prints every value, exactly like onnx.printer.
    pub abbreviate_initializers_over: Option<usize>,
}

/// A model in the text syntax.
pub fn print_model(model: &ModelProto, options: &PrintOptions) -> String {
    let mut printer = printer::Printer::new(options);
    printer.model(model);
    printer.finish()
}

/// A graph in the text syntax, as it appears inside a model.
pub fn print_graph(graph: &GraphProto, options: &PrintOptions) -> String {
    let mut printer = printer::Printer::new(options);
    printer.graph(graph);
    printer.finish()
}

/// A function in the text syntax, as it appears after a model's graph.
pub fn print_function(function: &FunctionProto, options: &PrintOptions) -> String {
    let mut printer = printer::Printer::new(options);
    printer.function(function);
    printer.finish()
}

/// A node in the text syntax: one line, indented as in a top-level graph, with its newline.
pub fn print_node(node: &NodeProto, options: &PrintOptions) -> String {
    let mut printer = printer::Printer::new(options);
    printer.node(node);
    printer.finish()
}

/// Reads a model: an optional `<key: value, ...>` header, a graph, then functions.
pub fn parse_model(text: &str) -> Result<ModelProto, ParseError> {
    let mut parser = parser::Parser::new(text);
    let model = parser.model()?;
    parser.finish()?;
    Ok(model)
}

/// Reads one graph: `name (inputs) => (outputs) <initializers, value infos> { nodes }`.
pub fn parse_graph(text: &str) -> Result<GraphProto, ParseError> {
    let mut parser = parser::Parser::new(text);
    let graph = parser.graph()?;
    parser.finish()?;
    Ok(graph)
}

/// Reads one function: `<domain: ..., opset_import: [...]> name <attrs> (inputs) => (outputs) { nodes }`.
pub fn parse_function(text: &str) -> Result<FunctionProto, ParseError> {
    let mut parser = parser::Parser::new(text);
    let function = parser.function()?;
    parser.finish()?;
    Ok(function)
}

/// Reads one node: `[name] outputs = domain.Op:overload <attrs> (inputs)`.
pub fn parse_node(text: &str) -> Result<NodeProto, ParseError> {
    let mut parser = parser::Parser::new(text);
    let node = parser.node()?;
    parser.finish()?;
    Ok(node)
}
