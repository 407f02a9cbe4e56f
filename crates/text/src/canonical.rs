//! What the text form keeps of a message: the message that printing and parsing back yields.
//!
//! `parse_model(&print_model(m, &PrintOptions::default()))` equals `canonical_model(m)` whenever
//! the latter is `Ok`, and a canonical model round-trips exactly. The differences between a
//! message and its canonical form are the limits of the syntax, listed here once:
//!
//! - **Not printed, so dropped:** doc strings (except the model's), `metadata_props` of graphs,
//!   nodes, values, tensors and functions, a node's device configurations, a graph's
//!   `sparse_initializer` and `quantization_annotation`, a model's `training_info` and
//!   `configuration`, a function's attribute defaults (`attribute_proto`) and `value_info`, type
//!   and dimension denotations, a tensor's `segment`, and every tensor value field other than the
//!   one its element type prints from.
//! - **Re-encoded:** `raw_data` reads back as the typed field (`float_data`, `int32_data`, ...)
//!   with the same values (float16/bfloat16/float8 as their bit patterns in `int32_data`; uint32
//!   in `uint64_data`); NaNs lose their payload but keep their sign.
//! - **Presence:** fields the printer always writes become present even when they were absent
//!   (`ir_version`, opset domains and versions, a node's `domain`, names of graphs, functions,
//!   values and attribute tensors, an attribute's value); a `domain`, `overload` or opaque-type
//!   name that is empty is not written, so it reads back absent.
//!
//! And some messages print as text that does not parse at all, for which the functions here
//! return a [`NotRoundTrippable`] saying where and why:
//!
//! - data with no value syntax: packed 2-, 4- and 6-bit types, complex numbers and strings held
//!   in `raw_data` (printed `...`), `raw_data` of the wrong size;
//! - sparse-tensor attributes (printed with no value), attributes of undefined type, element
//!   types the syntax cannot name (printed `undefined`), types with no value (printed as
//!   nothing);
//! - an empty `strings` attribute or string tensor (onnx.printer writes only the closing
//!   bracket), an external-data list with no entries, an initializer with no name, an unnamed
//!   scalar attribute tensor in external data (`float["location": ...]` reads as a shape);
//! - names printed without quotes that are not identifiers: op types, domains, overloads,
//!   attribute names, `@references`, opaque-type domains and names;
//! - names the parser reads as a type: a value without a type named like an element type or a
//!   type keyword (`float x` is the value `x`, not two names), a function input or output so
//!   named, a subgraph named `seq`, `map`, `optional`, `sparse_tensor` or `opaque`;
//! - byte strings that are not UTF-8 (the text is a Rust `String`).

use onnx_rewrite_proto::attribute_proto::AttributeType;
use onnx_rewrite_proto::tensor_proto::DataLocation;
use onnx_rewrite_proto::tensor_shape_proto::Dimension;
use onnx_rewrite_proto::type_proto::{self, Value as TypeValue};
use onnx_rewrite_proto::{
    AttributeProto, FunctionProto, GraphProto, ModelProto, NodeProto, OperatorSetIdProto,
    StringStringEntryProto, TensorProto, TensorShapeProto, TypeProto, ValueInfoProto,
};

use crate::names::{
    TypeKeyword, is_dotted_identifier, is_identifier, is_named_data_type, starts_type,
};
use crate::tensor_data::{PrintedData, printed_data};

/// A message whose text does not parse back (see the [module docs](self) for the cases).
#[derive(Debug, Clone, PartialEq, Eq, thiserror::Error)]
#[error("{path}: {reason}")]
pub struct NotRoundTrippable {
    /// Where, such as `model.graph.node[3].attribute[value]`.
    pub path: String,
    pub reason: String,
}

/// The model that printing `model` and parsing the text back yields.
pub fn canonical_model(model: &ModelProto) -> Result<ModelProto, NotRoundTrippable> {
    let mut c = Canon::new("model");
    c.model(model)
}

/// The graph that printing `graph` and parsing the text back yields.
pub fn canonical_graph(graph: &GraphProto) -> Result<GraphProto, NotRoundTrippable> {
    let mut c = Canon::new("graph");
    c.graph(graph)
}

/// The function that printing `function` and parsing the text back yields.
pub fn canonical_function(function: &FunctionProto) -> Result<FunctionProto, NotRoundTrippable> {
    let mut c = Canon::new("function");
    c.function(function)
}

/// The node that printing `node` and parsing the text back yields.
pub fn canonical_node(node: &NodeProto) -> Result<NodeProto, NotRoundTrippable> {
    let mut c = Canon::new("node");
    c.node(node)
}

/// Where a tensor sits: initializers and attribute values print differently.
#[derive(Clone, Copy, PartialEq, Eq)]
enum TensorPlace {
    Initializer,
    Attribute,
}

struct Canon {
    /// Path segments to the message being converted, for errors.
    path: Vec<String>,
}

impl Canon {
    fn new(root: &str) -> Self {
        Self {
            path: vec![root.to_owned()],
        }
    }

    fn fail<T>(&self, reason: impl Into<String>) -> Result<T, NotRoundTrippable> {
        Err(NotRoundTrippable {
            path: self.path.join("."),
            reason: reason.into(),
        })
    }

    /// Runs `f` with `segment` appended to the path.
    fn at<T>(&mut self, segment: impl Into<String>, f: impl FnOnce(&mut Self) -> T) -> T {
        self.path.push(segment.into());
        let result = f(self);
        self.path.pop();
        result
    }

    fn each<T, U>(
        &mut self,
        field: &str,
        items: &[T],
        mut f: impl FnMut(&mut Self, &T) -> Result<U, NotRoundTrippable>,
    ) -> Result<Vec<U>, NotRoundTrippable> {
        items
            .iter()
            .enumerate()
            .map(|(i, item)| self.at(format!("{field}[{i}]"), |c| f(c, item)))
            .collect()
    }

    fn model(&mut self, model: &ModelProto) -> Result<ModelProto, NotRoundTrippable> {
        let default_graph = GraphProto::default();
        Ok(ModelProto {
            ir_version: Some(model.ir_version.unwrap_or(0)),
            opset_import: opsets(&model.opset_import),
            producer_name: model.producer_name.clone(),
            producer_version: model.producer_version.clone(),
            domain: model.domain.clone(),
            model_version: model.model_version,
            doc_string: model.doc_string.clone(),
            metadata_props: entries(&model.metadata_props),
            graph: Some(self.at("graph", |c| {
                c.graph(model.graph.as_ref().unwrap_or(&default_graph))
            })?),
            functions: self.each("functions", &model.functions, Self::function)?,
            ..Default::default()
        })
    }

    fn function(&mut self, function: &FunctionProto) -> Result<FunctionProto, NotRoundTrippable> {
        for name in &function.attribute {
            if !is_identifier(name) {
                return self.fail(format!(
                    "attribute parameter `{name}` is not an identifier and prints unquoted"
                ));
            }
        }
        for name in function.input.iter().chain(&function.output) {
            if is_identifier(name) && starts_type(name) {
                return self.fail(format!("input or output `{name}` reads back as a type"));
            }
        }
        Ok(FunctionProto {
            name: Some(function.name.clone().unwrap_or_default()),
            input: function.input.clone(),
            output: function.output.clone(),
            attribute: function.attribute.clone(),
            node: self.each("node", &function.node, Self::node)?,
            opset_import: opsets(&function.opset_import),
            domain: Some(function.domain.clone().unwrap_or_default()),
            overload: function.overload.clone().filter(|o| !o.is_empty()),
            ..Default::default()
        })
    }

    fn graph(&mut self, graph: &GraphProto) -> Result<GraphProto, NotRoundTrippable> {
        Ok(GraphProto {
            name: Some(graph.name.clone().unwrap_or_default()),
            input: self.each("input", &graph.input, Self::value_info)?,
            output: self.each("output", &graph.output, Self::value_info)?,
            initializer: self.each("initializer", &graph.initializer, |c, t| {
                c.tensor(t, TensorPlace::Initializer)
            })?,
            value_info: self.each("value_info", &graph.value_info, Self::value_info)?,
            node: self.each("node", &graph.node, Self::node)?,
            ..Default::default()
        })
    }

    fn value_info(
        &mut self,
        value_info: &ValueInfoProto,
    ) -> Result<ValueInfoProto, NotRoundTrippable> {
        let name = value_info.name.clone().unwrap_or_default();
        let r#type = match &value_info.r#type {
            Some(t) if t.value.is_some() => Some(self.at("type", |c| c.type_proto(t))?),
            // A type with no value prints as nothing: the value reads back untyped.
            _ => {
                if is_identifier(&name) && starts_type(&name) {
                    return self.fail(format!(
                        "a value named `{name}` with no type reads back as a type"
                    ));
                }
                None
            }
        };
        Ok(ValueInfoProto {
            name: Some(name),
            r#type,
            ..Default::default()
        })
    }

    fn node(&mut self, node: &NodeProto) -> Result<NodeProto, NotRoundTrippable> {
        let domain = node.domain.clone().unwrap_or_default();
        let op_type = node.op_type.clone().unwrap_or_default();
        if !domain.is_empty() && !is_dotted_identifier(&domain) {
            return self.fail(format!(
                "domain `{domain}` is not a dotted identifier and prints unquoted"
            ));
        }
        let bare_empty_op = op_type.is_empty() && domain.is_empty();
        if !(is_identifier(&op_type) || bare_empty_op) {
            return self.fail(format!(
                "op type `{op_type}` is not an identifier and prints unquoted"
            ));
        }
        let overload = node.overload.clone().filter(|o| !o.is_empty());
        if let Some(overload) = &overload
            && !is_identifier(overload)
        {
            return self.fail(format!(
                "overload `{overload}` is not an identifier and prints unquoted"
            ));
        }
        Ok(NodeProto {
            input: node.input.clone(),
            output: node.output.clone(),
            name: node.name.clone(),
            op_type: Some(op_type),
            domain: Some(domain),
            overload,
            attribute: node
                .attribute
                .iter()
                .map(|a| self.attribute(a))
                .collect::<Result<_, _>>()?,
            ..Default::default()
        })
    }

    fn attribute(
        &mut self,
        attribute: &AttributeProto,
    ) -> Result<AttributeProto, NotRoundTrippable> {
        let name = attribute.name.clone().unwrap_or_default();
        self.at(format!("attribute[{name}]"), |c| {
            c.attribute_value(name, attribute)
        })
    }

    fn attribute_value(
        &mut self,
        name: String,
        a: &AttributeProto,
    ) -> Result<AttributeProto, NotRoundTrippable> {
        use AttributeType as A;
        if !is_identifier(&name) {
            return self.fail("the attribute name is not an identifier and prints unquoted");
        }
        let attribute_type = a
            .r#type
            .and_then(|t| A::try_from(t).ok())
            .unwrap_or(A::Undefined);
        let mut out = AttributeProto {
            name: Some(name),
            r#type: Some(attribute_type as i32),
            ..Default::default()
        };
        if let Some(reference) = &a.ref_attr_name {
            if attribute_type == A::Undefined {
                return self.fail("a reference of undefined type prints as `undefined`");
            }
            if !is_identifier(reference) {
                return self.fail(format!(
                    "reference `@{reference}` is not an identifier and prints unquoted"
                ));
            }
            out.ref_attr_name = Some(reference.clone());
            return Ok(out);
        }
        let default_graph = GraphProto::default();
        let default_tensor = TensorProto::default();
        let default_type = TypeProto::default();
        match attribute_type {
            A::Int => out.i = Some(a.i.unwrap_or(0)),
            A::Ints => out.ints = a.ints.clone(),
            A::Float => out.f = Some(canonical_f32(a.f.unwrap_or(0.0))),
            A::Floats => out.floats = a.floats.iter().map(|f| canonical_f32(*f)).collect(),
            A::String => out.s = Some(self.utf8(a.s.as_deref().unwrap_or_default())?),
            A::Strings => {
                if a.strings.is_empty() {
                    return self.fail("an empty `strings` list prints as `]` alone");
                }
                out.strings = a
                    .strings
                    .iter()
                    .map(|s| self.utf8(s))
                    .collect::<Result<_, _>>()?;
            }
            A::Graph => out.g = Some(self.subgraph(a.g.as_ref().unwrap_or(&default_graph))?),
            A::Graphs => out.graphs = self.each("graphs", &a.graphs, Self::subgraph)?,
            A::Tensor => {
                out.t = Some(Box::new(self.tensor(
                    a.t.as_deref().unwrap_or(&default_tensor),
                    TensorPlace::Attribute,
                )?));
            }
            A::Tensors => {
                out.tensors = self.each("tensors", &a.tensors, |c, t| {
                    c.tensor(t, TensorPlace::Attribute)
                })?
            }
            A::TypeProto => {
                out.tp = Some(Box::new(
                    self.type_proto(a.tp.as_deref().unwrap_or(&default_type))?,
                ))
            }
            A::TypeProtos => {
                out.type_protos = self.each("type_protos", &a.type_protos, Self::type_proto)?
            }
            A::SparseTensor | A::SparseTensors => {
                return self.fail("sparse-tensor attributes print with no value");
            }
            A::Undefined => {
                return self.fail("an attribute of undefined type prints with no value");
            }
        }
        Ok(out)
    }

    /// A graph-valued attribute's graph, whose name must not read as a type.
    fn subgraph(&mut self, graph: &GraphProto) -> Result<GraphProto, NotRoundTrippable> {
        let name = graph.name.as_deref().unwrap_or("");
        if TypeKeyword::lookup(name).is_some() {
            return self.fail(format!("a subgraph named `{name}` reads back as a type"));
        }
        self.graph(graph)
    }

    fn tensor(
        &mut self,
        tensor: &TensorProto,
        place: TensorPlace,
    ) -> Result<TensorProto, NotRoundTrippable> {
        let data_type = tensor.data_type.unwrap_or(0);
        if !is_named_data_type(data_type) {
            return self.fail(format!("element type {data_type} prints as `undefined`"));
        }
        let name = tensor.name.clone().unwrap_or_default();
        if place == TensorPlace::Initializer && name.is_empty() {
            return self.fail("an initializer with no name prints with none");
        }
        let mut out = TensorProto {
            dims: tensor.dims.clone(),
            data_type: Some(data_type),
            name: Some(name),
            ..Default::default()
        };
        match printed_data(tensor) {
            PrintedData::External(list) => {
                if list.is_empty() {
                    return self
                        .fail("an empty external-data list prints as `[]`, which does not parse");
                }
                if place == TensorPlace::Attribute
                    && out.name.as_deref() == Some("")
                    && out.dims.is_empty()
                {
                    return self
                        .fail("an unnamed scalar tensor's external data reads back as its shape");
                }
                out.data_location = Some(DataLocation::External as i32);
                out.external_data = entries(list);
            }
            PrintedData::Int32(values) => out.int32_data = values.into_owned(),
            PrintedData::Int64(values) => out.int64_data = values.into_owned(),
            PrintedData::Uint64(values) => out.uint64_data = values.into_owned(),
            PrintedData::Float(values) => {
                out.float_data = values.iter().map(|v| canonical_f32(*v)).collect()
            }
            PrintedData::Double(values) => {
                out.double_data = values.iter().map(|v| canonical_f64(*v)).collect()
            }
            PrintedData::Strings(values) => {
                if values.is_empty() {
                    return self.fail("a string tensor with no values prints as `}` alone");
                }
                out.string_data = values
                    .iter()
                    .map(|s| self.utf8(s))
                    .collect::<Result<_, _>>()?;
            }
            PrintedData::Elided(why) => return self.fail(why.describe()),
        }
        Ok(out)
    }

    fn type_proto(&mut self, value_type: &TypeProto) -> Result<TypeProto, NotRoundTrippable> {
        let value = match &value_type.value {
            None => return self.fail("a type with no value prints as nothing"),
            Some(TypeValue::TensorType(tensor)) => TypeValue::TensorType(type_proto::Tensor {
                elem_type: Some(self.element_type(tensor.elem_type)?),
                shape: tensor.shape.as_ref().map(shape),
            }),
            Some(TypeValue::SparseTensorType(sparse)) => {
                TypeValue::SparseTensorType(type_proto::SparseTensor {
                    elem_type: Some(self.element_type(sparse.elem_type)?),
                    shape: sparse.shape.as_ref().map(shape),
                })
            }
            Some(TypeValue::SequenceType(sequence)) => {
                TypeValue::SequenceType(Box::new(type_proto::Sequence {
                    elem_type: Some(Box::new(
                        self.at("seq", |c| c.inner_type(sequence.elem_type.as_deref()))?,
                    )),
                }))
            }
            Some(TypeValue::OptionalType(optional)) => {
                TypeValue::OptionalType(Box::new(type_proto::Optional {
                    elem_type: Some(Box::new(
                        self.at("optional", |c| c.inner_type(optional.elem_type.as_deref()))?,
                    )),
                }))
            }
            Some(TypeValue::MapType(map)) => TypeValue::MapType(Box::new(type_proto::Map {
                key_type: Some(self.element_type(map.key_type)?),
                value_type: Some(Box::new(
                    self.at("map", |c| c.inner_type(map.value_type.as_deref()))?,
                )),
            })),
            Some(TypeValue::OpaqueType(opaque)) => TypeValue::OpaqueType(self.opaque(opaque)?),
        };
        Ok(TypeProto {
            value: Some(value),
            denotation: None,
        })
    }

    fn inner_type(
        &mut self,
        value_type: Option<&TypeProto>,
    ) -> Result<TypeProto, NotRoundTrippable> {
        match value_type {
            Some(t) => self.type_proto(t),
            None => self.fail("a missing element type prints as nothing"),
        }
    }

    fn element_type(&self, data_type: Option<i32>) -> Result<i32, NotRoundTrippable> {
        let data_type = data_type.unwrap_or(0);
        if is_named_data_type(data_type) {
            Ok(data_type)
        } else {
            self.fail(format!("element type {data_type} prints as `undefined`"))
        }
    }

    fn opaque(&self, opaque: &type_proto::Opaque) -> Result<type_proto::Opaque, NotRoundTrippable> {
        let domain = opaque.domain.clone().filter(|d| !d.is_empty());
        let name = opaque.name.clone().filter(|n| !n.is_empty());
        let readable = match (&domain, &name) {
            (Some(domain), Some(name)) => is_dotted_identifier(domain) && is_identifier(name),
            (Some(_), None) => false,
            (None, Some(name)) => is_dotted_identifier(name),
            (None, None) => true,
        };
        if !readable {
            return self
                .fail("an opaque type's domain and name print unquoted and must be identifiers");
        }
        Ok(type_proto::Opaque { domain, name })
    }

    fn utf8(&self, bytes: &[u8]) -> Result<bytes::Bytes, NotRoundTrippable> {
        match std::str::from_utf8(bytes) {
            Ok(_) => Ok(bytes::Bytes::copy_from_slice(bytes)),
            Err(_) => self.fail("a byte string that is not UTF-8 cannot be written in the text"),
        }
    }
}

fn opsets(opsets: &[OperatorSetIdProto]) -> Vec<OperatorSetIdProto> {
    opsets
        .iter()
        .map(|o| OperatorSetIdProto {
            domain: Some(o.domain.clone().unwrap_or_default()),
            version: Some(o.version.unwrap_or(0)),
        })
        .collect()
}

fn entries(list: &[StringStringEntryProto]) -> Vec<StringStringEntryProto> {
    list.iter()
        .map(|e| StringStringEntryProto {
            key: Some(e.key.clone().unwrap_or_default()),
            value: Some(e.value.clone().unwrap_or_default()),
        })
        .collect()
}

fn shape(shape: &TensorShapeProto) -> TensorShapeProto {
    TensorShapeProto {
        dim: shape
            .dim
            .iter()
            .map(|d| Dimension {
                value: d.value.clone(),
                denotation: None,
            })
            .collect(),
    }
}

/// NaN prints as `nan` or `-nan`: the payload is lost, the sign kept.
fn canonical_f32(value: f32) -> f32 {
    if value.is_nan() {
        f32::NAN.copysign(value)
    } else {
        value
    }
}

fn canonical_f64(value: f64) -> f64 {
    if value.is_nan() {
        f64::NAN.copysign(value)
    } else {
        value
    }
}
