//! The printer: byte-identical to `onnx.printer.to_text` of onnx 1.23.2 when abbreviation is
//! off (the crate docs list the layout rules it reproduces). Its structure follows onnx's
//! `printer.cc` closely on purpose: one method per message, the same separators, the same
//! indentation arithmetic, so that the two can be compared line by line.

use bytes::Bytes;
use onnx_rewrite_proto::attribute_proto::AttributeType;
use onnx_rewrite_proto::tensor_shape_proto::{Dimension, dimension};
use onnx_rewrite_proto::type_proto::{self, Value as TypeValue};
use onnx_rewrite_proto::{
    AttributeProto, FunctionProto, GraphProto, ModelProto, NodeProto, OperatorSetIdProto,
    StringStringEntryProto, TensorProto, TensorShapeProto, TypeProto, ValueInfoProto,
};

use crate::PrintOptions;
use crate::abbrev;
use crate::names::{attribute_type_name, data_type_name, is_identifier};
use crate::number::write_float;
use crate::tensor_data::{PrintedData, printed_data};

/// Spaces per indentation level; also the indentation of a top-level graph's nodes.
const INDENT: usize = 3;

pub(crate) struct Printer<'o> {
    out: String,
    /// Indentation of the nodes of the graph being printed.
    indent: usize,
    options: &'o PrintOptions,
}

impl<'o> Printer<'o> {
    pub(crate) fn new(options: &'o PrintOptions) -> Self {
        Self {
            out: String::new(),
            indent: INDENT,
            options,
        }
    }

    pub(crate) fn finish(self) -> String {
        self.out
    }

    pub(crate) fn model(&mut self, model: &ModelProto) {
        self.out.push('<');
        self.key("ir_version");
        self.integer(model.ir_version.unwrap_or(0));
        self.out.push(',');
        self.key("opset_import");
        self.opset_imports(&model.opset_import, ", ");
        for (key, value) in [
            ("producer_name", &model.producer_name),
            ("producer_version", &model.producer_version),
            ("domain", &model.domain),
        ] {
            if let Some(value) = value {
                self.out.push(',');
                self.key(key);
                self.quoted(value);
            }
        }
        if let Some(version) = model.model_version {
            self.out.push(',');
            self.key("model_version");
            self.integer(version);
        }
        if let Some(doc) = &model.doc_string {
            self.out.push(',');
            self.key("doc_string");
            self.quoted(doc);
        }
        if !model.metadata_props.is_empty() {
            self.out.push(',');
            self.key("metadata_props");
            self.string_entries(&model.metadata_props);
        }
        self.out.push_str("\n>\n");

        self.graph(model.graph.as_ref().unwrap_or(&GraphProto::default()));
        for function in &model.functions {
            self.out.push('\n');
            self.function(function);
        }
    }

    /// A `key: ` line of the model's header, indented; the value follows.
    fn key(&mut self, key: &str) {
        self.out.push('\n');
        self.spaces(INDENT);
        self.out.push_str(key);
        self.out.push_str(": ");
    }

    pub(crate) fn function(&mut self, function: &FunctionProto) {
        self.out.push_str("<\n  domain: ");
        self.quoted(function.domain.as_deref().unwrap_or(""));
        self.out.push_str(",\n");
        if let Some(overload) = function.overload.as_deref().filter(|o| !o.is_empty()) {
            self.out.push_str("  overload: ");
            self.quoted(overload);
            self.out.push_str(",\n");
        }
        self.out.push_str("  opset_import: ");
        self.opset_imports(&function.opset_import, ",");
        self.out.push_str("\n>\n");
        self.id(function.name.as_deref().unwrap_or(""));
        self.out.push(' ');
        if !function.attribute.is_empty() {
            self.out.push('<');
            self.out.push_str(&function.attribute.join(","));
            self.out.push('>');
        }
        self.id_list("(", &function.input, ")");
        self.out.push_str(" => ");
        self.id_list("(", &function.output, ")");
        self.out.push('\n');
        self.nodes(&function.node);
    }

    pub(crate) fn graph(&mut self, graph: &GraphProto) {
        self.id(graph.name.as_deref().unwrap_or(""));
        self.out.push(' ');
        self.value_infos(&graph.input);
        self.out.push_str(" => ");
        self.value_infos(&graph.output);
        self.out.push(' ');
        if !graph.initializer.is_empty() || !graph.value_info.is_empty() {
            self.out.push('\n');
            self.spaces(self.indent);
            self.out.push('<');
            let mut separator = "";
            for initializer in &graph.initializer {
                self.out.push_str(separator);
                self.tensor(initializer, true);
                separator = ", ";
            }
            for value_info in &graph.value_info {
                self.out.push_str(separator);
                self.value_info(value_info);
                separator = ", ";
            }
            self.out.push_str(">\n");
        }
        self.nodes(&graph.node);
    }

    fn nodes(&mut self, nodes: &[NodeProto]) {
        self.out.push_str("{\n");
        for node in nodes {
            self.node(node);
        }
        self.spaces(self.indent - INDENT);
        self.out.push('}');
    }

    pub(crate) fn node(&mut self, node: &NodeProto) {
        self.spaces(self.indent);
        if let Some(name) = &node.name {
            self.out.push('[');
            self.id(name);
            self.out.push_str("] ");
        }
        self.id_list("", &node.output, "");
        self.out.push_str(" = ");
        if let Some(domain) = node.domain.as_deref().filter(|d| !d.is_empty()) {
            self.out.push_str(domain);
            self.out.push('.');
        }
        self.out.push_str(node.op_type.as_deref().unwrap_or(""));
        if let Some(overload) = node.overload.as_deref().filter(|o| !o.is_empty()) {
            self.out.push(':');
            self.out.push_str(overload);
        }
        // The test is on the fields, not the declared type, as onnx.printer's is.
        let has_subgraph = node
            .attribute
            .iter()
            .any(|a| a.g.is_some() || !a.graphs.is_empty());
        if !has_subgraph && !node.attribute.is_empty() {
            self.attributes(&node.attribute);
        }
        self.id_list(" (", &node.input, ")");
        if has_subgraph {
            self.attributes(&node.attribute);
        }
        self.out.push('\n');
    }

    fn attributes(&mut self, attributes: &[AttributeProto]) {
        self.out.push_str(" <");
        for (i, attribute) in attributes.iter().enumerate() {
            if i > 0 {
                self.out.push_str(", ");
            }
            self.attribute(attribute);
        }
        self.out.push('>');
    }

    fn attribute(&mut self, attribute: &AttributeProto) {
        self.out.push_str(attribute.name.as_deref().unwrap_or(""));
        self.out.push_str(": ");
        let attribute_type = attribute.r#type.unwrap_or(0);
        self.out.push_str(attribute_type_name(attribute_type));
        self.out.push_str(" = ");
        if let Some(reference) = &attribute.ref_attr_name {
            self.out.push('@');
            self.out.push_str(reference);
            return;
        }
        match AttributeType::try_from(attribute_type) {
            Ok(AttributeType::Int) => self.integer(attribute.i.unwrap_or(0)),
            Ok(AttributeType::Ints) => {
                self.list("[", ", ", "]", &attribute.ints, |p, v| p.integer(*v))
            }
            Ok(AttributeType::Float) => write_float(&mut self.out, attribute.f.unwrap_or(0.0)),
            Ok(AttributeType::Floats) => {
                self.list("[", ", ", "]", &attribute.floats, |p, v| {
                    write_float(&mut p.out, *v)
                });
            }
            Ok(AttributeType::String) => {
                self.quoted_bytes(attribute.s.as_ref().map_or(&[][..], |s| s))
            }
            Ok(AttributeType::Strings) => {
                self.quoted_byte_strings(&attribute.strings, "[", ", ", "]")
            }
            Ok(AttributeType::Graph) => {
                self.indent += INDENT;
                self.graph(attribute.g.as_ref().unwrap_or(&GraphProto::default()));
                self.indent -= INDENT;
            }
            Ok(AttributeType::Graphs) => {
                self.indent += INDENT;
                self.list("[", ", ", "]", &attribute.graphs, |p, g| p.graph(g));
                self.indent -= INDENT;
            }
            Ok(AttributeType::Tensor) => self.tensor(
                attribute.t.as_deref().unwrap_or(&TensorProto::default()),
                false,
            ),
            Ok(AttributeType::Tensors) => self.list("[", ", ", "]", &attribute.tensors, |p, t| {
                p.tensor(t, false)
            }),
            Ok(AttributeType::TypeProto) => {
                self.r#type(attribute.tp.as_deref().unwrap_or(&TypeProto::default()))
            }
            Ok(AttributeType::TypeProtos) => {
                self.list("[", ", ", "]", &attribute.type_protos, |p, t| p.r#type(t))
            }
            // onnx.printer writes no value for these: the text does not parse back.
            Ok(
                AttributeType::SparseTensor
                | AttributeType::SparseTensors
                | AttributeType::Undefined,
            )
            | Err(_) => {}
        }
    }

    /// A tensor: `type[dims] name` and its data. An initializer has ` = ` before its data.
    fn tensor(&mut self, tensor: &TensorProto, is_initializer: bool) {
        self.out
            .push_str(data_type_name(tensor.data_type.unwrap_or(0)));
        if !tensor.dims.is_empty() {
            self.list("[", ",", "]", &tensor.dims, |p, d| p.integer(*d));
        }
        if let Some(name) = tensor.name.as_deref().filter(|n| !n.is_empty()) {
            self.out.push(' ');
            self.id(name);
        }
        if let Some(entries) = abbrev::abbreviation(tensor, self.options) {
            // Always with `=`: `float[1024] = [...]` is a tensor to onnx.parser, where
            // `float[1024] [...]` would be a type followed by a list.
            self.out.push_str(" = ");
            self.string_entries(&entries);
            return;
        }
        if is_initializer {
            self.out.push_str(" = ");
        }
        match printed_data(tensor) {
            PrintedData::External(entries) => self.string_entries(entries),
            PrintedData::Int32(values) => self.list(" {", ",", "}", &values, |p, v| p.integer(*v)),
            PrintedData::Int64(values) => self.list(" {", ",", "}", &values, |p, v| p.integer(*v)),
            PrintedData::Uint64(values) => self.list(" {", ",", "}", &values, |p, v| p.integer(*v)),
            PrintedData::Float(values) => {
                self.list(" {", ",", "}", &values, |p, v| write_float(&mut p.out, *v))
            }
            PrintedData::Double(values) => {
                self.list(" {", ",", "}", &values, |p, v| write_float(&mut p.out, *v))
            }
            // No space before the brace, and no opening brace at all for an empty list: both
            // onnx.printer's.
            PrintedData::Strings(values) => self.quoted_byte_strings(values, "{", ", ", "}"),
            PrintedData::Elided(_) => self.out.push_str("..."),
        }
    }

    fn value_infos(&mut self, value_infos: &[ValueInfoProto]) {
        self.list("(", ", ", ")", value_infos, |p, v| p.value_info(v));
    }

    fn value_info(&mut self, value_info: &ValueInfoProto) {
        if let Some(value_type) = &value_info.r#type {
            self.r#type(value_type);
        }
        self.out.push(' ');
        self.id(value_info.name.as_deref().unwrap_or(""));
    }

    /// A type; nothing at all for a `TypeProto` with no value set.
    fn r#type(&mut self, value_type: &TypeProto) {
        match &value_type.value {
            Some(TypeValue::TensorType(tensor)) => {
                self.out
                    .push_str(data_type_name(tensor.elem_type.unwrap_or(0)));
                self.optional_shape(tensor.shape.as_ref());
            }
            Some(TypeValue::SequenceType(sequence)) => {
                self.out.push_str("seq(");
                self.boxed_type(sequence.elem_type.as_deref());
                self.out.push(')');
            }
            Some(TypeValue::MapType(map)) => {
                self.out.push_str("map(");
                self.out.push_str(data_type_name(map.key_type.unwrap_or(0)));
                self.out.push_str(", ");
                self.boxed_type(map.value_type.as_deref());
                self.out.push(')');
            }
            Some(TypeValue::OptionalType(optional)) => {
                self.out.push_str("optional(");
                self.boxed_type(optional.elem_type.as_deref());
                self.out.push(')');
            }
            Some(TypeValue::SparseTensorType(sparse)) => {
                self.out.push_str("sparse_tensor(");
                self.out
                    .push_str(data_type_name(sparse.elem_type.unwrap_or(0)));
                self.optional_shape(sparse.shape.as_ref());
                self.out.push(')');
            }
            Some(TypeValue::OpaqueType(opaque)) => self.opaque(opaque),
            None => {}
        }
    }

    fn boxed_type(&mut self, value_type: Option<&TypeProto>) {
        if let Some(value_type) = value_type {
            self.r#type(value_type);
        }
    }

    /// No shape at all is unknown rank, `[]`; a shape of no dims is a scalar and prints nothing.
    fn optional_shape(&mut self, shape: Option<&TensorShapeProto>) {
        match shape {
            None => self.out.push_str("[]"),
            Some(shape) if shape.dim.is_empty() => {}
            Some(shape) => self.list("[", ",", "]", &shape.dim, |p, d| p.dimension(d)),
        }
    }

    fn dimension(&mut self, dimension: &Dimension) {
        match &dimension.value {
            Some(dimension::Value::DimValue(value)) => self.integer(*value),
            Some(dimension::Value::DimParam(param)) => self.id(param),
            None => self.out.push('?'),
        }
    }

    fn opaque(&mut self, opaque: &type_proto::Opaque) {
        self.out.push_str("opaque(");
        if let Some(domain) = opaque.domain.as_deref().filter(|d| !d.is_empty()) {
            self.out.push_str(domain);
            self.out.push(',');
        }
        if let Some(name) = opaque.name.as_deref().filter(|n| !n.is_empty()) {
            self.out.push_str(name);
        }
        self.out.push(')');
    }

    fn opset_imports(&mut self, opsets: &[OperatorSetIdProto], separator: &str) {
        self.list("[", separator, "]", opsets, |p, opset| {
            p.quoted(opset.domain.as_deref().unwrap_or(""));
            p.out.push_str(" : ");
            p.integer(opset.version.unwrap_or(0));
        });
    }

    fn string_entries(&mut self, entries: &[StringStringEntryProto]) {
        self.list("[", ", ", "]", entries, |p, entry| {
            p.quoted(entry.key.as_deref().unwrap_or(""));
            p.out.push_str(": ");
            p.quoted(entry.value.as_deref().unwrap_or(""));
        });
    }

    /// `open item sep item ... close`.
    fn list<T>(
        &mut self,
        open: &str,
        separator: &str,
        close: &str,
        items: &[T],
        mut item: impl FnMut(&mut Self, &T),
    ) {
        self.out.push_str(open);
        for (i, value) in items.iter().enumerate() {
            if i > 0 {
                self.out.push_str(separator);
            }
            item(self, value);
        }
        self.out.push_str(close);
    }

    /// onnx.printer writes string lists with the opening bracket as the first separator, so an
    /// empty list is only its closing bracket. Kept: the output must match byte for byte.
    fn quoted_byte_strings(&mut self, values: &[Bytes], open: &str, separator: &str, close: &str) {
        for (i, value) in values.iter().enumerate() {
            self.out.push_str(if i == 0 { open } else { separator });
            self.quoted_bytes(value);
        }
        self.out.push_str(close);
    }

    fn id_list(&mut self, open: &str, names: &[String], close: &str) {
        self.list(open, ", ", close, names, |p, name| p.id(name));
    }

    /// A name, bare when it is an identifier, quoted otherwise.
    fn id(&mut self, name: &str) {
        if is_identifier(name) {
            self.out.push_str(name);
        } else {
            self.quoted(name);
        }
    }

    fn quoted(&mut self, s: &str) {
        self.out.push('"');
        for c in s.chars() {
            if c == '\\' || c == '"' {
                self.out.push('\\');
            }
            self.out.push(c);
        }
        self.out.push('"');
    }

    /// Byte strings print as text; bytes that are not UTF-8 print as U+FFFD (onnx.printer writes
    /// them raw, and Python then fails to decode its output).
    fn quoted_bytes(&mut self, bytes: &[u8]) {
        self.quoted(&String::from_utf8_lossy(bytes));
    }

    fn integer(&mut self, value: impl std::fmt::Display) {
        use std::fmt::Write as _;
        let _ = write!(self.out, "{value}");
    }

    fn spaces(&mut self, count: usize) {
        self.out.extend(std::iter::repeat_n(' ', count));
    }
}
