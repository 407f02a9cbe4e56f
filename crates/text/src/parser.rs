//! The parser: recursive descent over the grammar of onnx's `parser.cc` (onnx 1.23.2), with the
//! extensions and limits the crate docs list.
//!
//! The grammar has no separate token stream (see [`crate::lexer`]); each method reads one
//! construct and builds its message. Nesting is counted in protobuf messages ([`Parser::nested`])
//! so that the limit is the protobuf decoder's.

use bytes::Bytes;
use onnx_rewrite_proto::attribute_proto::AttributeType;
use onnx_rewrite_proto::tensor_proto::{DataLocation, DataType};
use onnx_rewrite_proto::tensor_shape_proto::{Dimension, dimension};
use onnx_rewrite_proto::type_proto::{self, Value as TypeValue};
use onnx_rewrite_proto::{
    AttributeProto, FunctionProto, GraphProto, ModelProto, NodeProto, OperatorSetIdProto,
    StringStringEntryProto, TensorProto, TensorShapeProto, TypeProto, ValueInfoProto,
};

use crate::error::ParseError;
use crate::lexer::{Lexer, Literal};
use crate::names::{TypeKeyword, attribute_type_by_name, data_type_by_name, starts_type};

/// How deeply the messages the parser builds may nest, counting the outermost as 1: the limit
/// of the protobuf decoder ([`onnx_rewrite_proto::MAX_MESSAGE_DEPTH`]).
pub const MAX_NESTING_DEPTH: usize = onnx_rewrite_proto::MAX_MESSAGE_DEPTH;

/// Levels every nesting check keeps free below the message it opens: the deepest chain of
/// messages that does not recurse, a tensor type's `Tensor` → `TensorShapeProto` → `Dimension`.
const LEAF_LEVELS: usize = 3;

type Result<T> = std::result::Result<T, ParseError>;

pub(crate) struct Parser<'a> {
    lx: Lexer<'a>,
    /// Nesting depth of the message being filled; 0 before the outermost is opened.
    depth: usize,
}

impl<'a> Parser<'a> {
    pub(crate) fn new(input: &'a str) -> Self {
        Self {
            lx: Lexer::new(input),
            depth: 0,
        }
    }

    /// Requires that nothing but whitespace and comments is left.
    pub(crate) fn finish(mut self) -> Result<()> {
        if self.lx.at_end() {
            Ok(())
        } else {
            Err(self.lx.expected("the end of the input"))
        }
    }

    /// Runs `f` for a message `levels` deeper than the current one.
    fn nested<T>(&mut self, levels: usize, f: impl FnOnce(&mut Self) -> Result<T>) -> Result<T> {
        let depth = self.depth + levels;
        if depth + LEAF_LEVELS > MAX_NESTING_DEPTH {
            self.lx.skip_trivia();
            return Err(self.lx.error_at(
                self.lx.pos(),
                format!(
                    "nested too deeply: the model would nest more than {MAX_NESTING_DEPTH} protobuf \
                     messages, the most the protobuf decoder accepts"
                ),
            ));
        }
        let saved = self.depth;
        self.depth = depth;
        let result = f(self);
        self.depth = saved;
        result
    }

    // ---- Models, functions, graphs -------------------------------------------------------

    pub(crate) fn model(&mut self) -> Result<ModelProto> {
        self.nested(1, |p| {
            let mut model = ModelProto::default();
            if p.lx.eat(b'<') {
                loop {
                    let (key, at) = p.key()?;
                    match key {
                        "ir_version" => model.ir_version = Some(p.int64()?),
                        "opset_import" => p.opset_imports(&mut model.opset_import)?,
                        "producer_name" => model.producer_name = Some(p.string()?),
                        "producer_version" => model.producer_version = Some(p.string()?),
                        "domain" => model.domain = Some(p.string()?),
                        "model_version" => model.model_version = Some(p.int64()?),
                        "doc_string" => model.doc_string = Some(p.string()?),
                        "metadata_props" => {
                            p.lx.expect(b'[')?;
                            if !p.lx.eat(b']') {
                                p.string_entries(&mut model.metadata_props)?;
                                p.lx.expect(b']')?;
                            }
                        }
                        _ => return Err(p.lx.error_at(at, format!("unknown model key `{key}`"))),
                    }
                    if !p.lx.eat(b',') {
                        break;
                    }
                }
                p.lx.expect(b'>')?;
            }
            model.graph = Some(p.graph()?);
            while !p.lx.at_end() {
                model.functions.push(p.function()?);
            }
            Ok(model)
        })
    }

    /// A `key:` of a model's or function's header.
    fn key(&mut self) -> Result<(&'a str, usize)> {
        self.lx.skip_trivia();
        let at = self.lx.pos();
        let key = self.lx.identifier();
        if key.is_empty() {
            return Err(self
                .lx
                .expected("a key such as `ir_version` or `opset_import`"));
        }
        self.lx.expect(b':')?;
        Ok((key, at))
    }

    pub(crate) fn function(&mut self) -> Result<FunctionProto> {
        self.nested(1, |p| {
            let mut function = FunctionProto::default();
            if p.lx.eat(b'<') {
                loop {
                    let (key, at) = p.key()?;
                    match key {
                        "opset_import" => p.opset_imports(&mut function.opset_import)?,
                        "doc_string" => function.doc_string = Some(p.string()?),
                        "domain" => function.domain = Some(p.string()?),
                        "overload" => function.overload = Some(p.string()?),
                        _ => {
                            return Err(p.lx.error_at(at, format!("unknown function key `{key}`")));
                        }
                    }
                    if !p.lx.eat(b',') {
                        break;
                    }
                }
                p.lx.expect(b'>')?;
            }
            function.name = Some(p.quotable_identifier("a function name")?);
            if p.lx.eat(b'<') {
                // Attribute parameters: a bare name, or a name with a default value.
                loop {
                    let name = p.quotable_identifier("an attribute name")?;
                    if matches!(p.lx.peek(), Some(b':' | b'=')) {
                        let attribute = p.nested(1, |p| p.attribute_named(name))?;
                        function.attribute_proto.push(attribute);
                    } else {
                        function.attribute.push(name);
                    }
                    if !p.lx.eat(b',') {
                        break;
                    }
                }
                p.lx.expect(b'>')?;
            }
            p.function_signature(|f| &mut f.input, &mut function)?;
            p.arrow()?;
            p.function_signature(|f| &mut f.output, &mut function)?;
            if p.lx.eat(b'<') && !p.lx.eat(b'>') {
                loop {
                    function.value_info.push(p.value_info()?);
                    if !p.lx.eat(b',') {
                        break;
                    }
                }
                p.lx.expect(b'>')?;
            }
            function.node = p.nodes()?;
            Ok(function)
        })
    }

    /// `(name, type name, ...)`: names go to the list `names` selects, typed ones also to
    /// `value_info`.
    fn function_signature(
        &mut self,
        names: impl Fn(&mut FunctionProto) -> &mut Vec<String>,
        function: &mut FunctionProto,
    ) -> Result<()> {
        self.lx.expect(b'(')?;
        if self.lx.eat(b')') {
            return Ok(());
        }
        loop {
            if self.next_is_type() {
                let value_info = self.value_info()?;
                names(function).push(value_info.name.clone().unwrap_or_default());
                function.value_info.push(value_info);
            } else {
                let name = self.quotable_identifier("a name")?;
                names(function).push(name);
            }
            if !self.lx.eat(b',') {
                break;
            }
        }
        self.lx.expect(b')')
    }

    /// `=>`, written without a space.
    fn arrow(&mut self) -> Result<()> {
        self.lx.expect(b'=')?;
        if self.lx.eat_raw(b'>') {
            Ok(())
        } else {
            Err(self.lx.error_at(
                self.lx.pos(),
                "expected `>` right after `=`: write `=>` with no space inside",
            ))
        }
    }

    pub(crate) fn graph(&mut self) -> Result<GraphProto> {
        self.nested(1, |p| {
            let name = p.quotable_identifier("a graph name")?;
            p.graph_after_name(name)
        })
    }

    fn graph_after_name(&mut self, name: String) -> Result<GraphProto> {
        let mut graph = GraphProto {
            name: Some(name),
            ..Default::default()
        };
        // Inputs, each with an optional initial value (`float[2] x = {1, 2}`).
        if self.lx.eat(b'(') && !self.lx.eat(b')') {
            loop {
                let (value_info, initializer) = self.value_info_or_initializer()?;
                graph.input.push(value_info);
                graph.initializer.extend(initializer);
                if !self.lx.eat(b',') {
                    break;
                }
            }
            self.lx.expect(b')')?;
        }
        self.arrow()?;
        self.lx.expect(b'(')?;
        if !self.lx.eat(b')') {
            loop {
                graph.output.push(self.value_info()?);
                if !self.lx.eat(b',') {
                    break;
                }
            }
            self.lx.expect(b')')?;
        }
        // Initializers and value_info, in one list.
        if self.lx.eat(b'<') && !self.lx.eat(b'>') {
            loop {
                match self.value_info_or_initializer()? {
                    (_, Some(initializer)) => graph.initializer.push(initializer),
                    (value_info, None) => graph.value_info.push(value_info),
                }
                if !self.lx.eat(b',') {
                    break;
                }
            }
            self.lx.expect(b'>')?;
        }
        graph.node = self.nodes()?;
        Ok(graph)
    }

    /// `type name`, or `type name = data`, which is an initializer.
    fn value_info_or_initializer(&mut self) -> Result<(ValueInfoProto, Option<TensorProto>)> {
        self.lx.skip_trivia();
        let at = self.lx.pos();
        let value_info = self.value_info()?;
        if !self.lx.eat(b'=') {
            return Ok((value_info, None));
        }
        let name = value_info.name.clone().unwrap_or_default();
        let no_type = TypeProto::default();
        let value_type = value_info.r#type.as_ref().unwrap_or(&no_type);
        let initializer = self.nested(1, |p| p.tensor_data(name, value_type, at))?;
        Ok((value_info, Some(initializer)))
    }

    /// `type name` or `name`.
    fn value_info(&mut self) -> Result<ValueInfoProto> {
        self.nested(1, |p| {
            let r#type = if p.next_is_type() {
                Some(p.type_proto()?)
            } else {
                None
            };
            let name = p.quotable_identifier("a value name")?;
            Ok(ValueInfoProto {
                name: Some(name),
                r#type,
                ..Default::default()
            })
        })
    }

    fn next_is_type(&mut self) -> bool {
        starts_type(self.lx.peek_identifier())
    }

    // ---- Nodes and attributes ------------------------------------------------------------

    fn nodes(&mut self) -> Result<Vec<NodeProto>> {
        self.lx.expect(b'{')?;
        let mut nodes = Vec::new();
        while !self.lx.eat(b'}') {
            if self.lx.at_end() {
                return Err(self.lx.expected("a node or `}`"));
            }
            nodes.push(self.node()?);
        }
        Ok(nodes)
    }

    pub(crate) fn node(&mut self) -> Result<NodeProto> {
        self.nested(1, |p| {
            let mut node = NodeProto::default();
            if p.lx.eat(b'[') {
                node.name = Some(p.optional_quotable_identifier()?);
                p.lx.expect(b']')?;
            }
            node.output = p.id_list()?;
            p.lx.expect(b'=')?;
            // `a.b.Op`: everything before the last dot is the domain.
            let mut domain = String::new();
            let mut op_type = p.lx.identifier();
            while p.lx.eat(b'.') {
                if !domain.is_empty() {
                    domain.push('.');
                }
                domain.push_str(op_type);
                op_type = p.required_identifier("an operator name")?;
            }
            node.domain = Some(domain);
            node.op_type = Some(op_type.to_owned());
            if p.lx.eat(b':') {
                node.overload = Some(p.required_identifier("an overload name")?.to_owned());
            }
            node.attribute = p.attributes()?;
            p.lx.expect(b'(')?;
            node.input = p.id_list()?;
            p.lx.expect(b')')?;
            // Attributes may also follow the inputs (the printer puts them there when one of
            // them is a graph).
            if node.attribute.is_empty() {
                node.attribute = p.attributes()?;
            }
            Ok(node)
        })
    }

    /// A node's input or output names. An empty name is `""`, or nothing before a comma.
    fn id_list(&mut self) -> Result<Vec<String>> {
        let mut names = Vec::new();
        let Some(first) = self.listed_name()? else {
            return Ok(names);
        };
        names.push(first);
        while self.lx.eat(b',') {
            match self.listed_name()? {
                Some(name) => names.push(name),
                None => break,
            }
        }
        Ok(names)
    }

    fn listed_name(&mut self) -> Result<Option<String>> {
        if self.lx.peek() == Some(b'"') {
            return self.string().map(Some);
        }
        let id = self.lx.identifier();
        Ok((!id.is_empty() || self.lx.peek() == Some(b',')).then(|| id.to_owned()))
    }

    /// `<name: type = value, ...>`, or nothing.
    fn attributes(&mut self) -> Result<Vec<AttributeProto>> {
        let mut attributes = Vec::new();
        if self.lx.eat(b'<') {
            self.nested(1, |p| {
                loop {
                    let name = p.required_identifier("an attribute name")?.to_owned();
                    attributes.push(p.attribute_named(name)?);
                    if !p.lx.eat(b',') {
                        break;
                    }
                }
                p.lx.expect(b'>')
            })?;
        }
        Ok(attributes)
    }

    /// The rest of an attribute after its name: `[: type] = value`.
    fn attribute_named(&mut self, name: String) -> Result<AttributeProto> {
        let mut attribute = AttributeProto {
            name: Some(name),
            ..Default::default()
        };
        let mut declared = None;
        if self.lx.eat(b':') {
            self.lx.skip_trivia();
            let at = self.lx.pos();
            let type_name = self.required_identifier("an attribute type")?;
            let attribute_type = attribute_type_by_name(type_name).ok_or_else(|| {
                self.lx
                    .error_at(at, format!("unknown attribute type `{type_name}`"))
            })?;
            attribute.r#type = Some(attribute_type as i32);
            declared = Some(attribute_type);
        }
        self.lx.expect(b'=')?;
        if self.lx.peek() != Some(b'[') {
            self.attribute_value(&mut attribute, declared)?;
            return Ok(attribute);
        }
        self.lx.skip_trivia();
        let open = self.lx.pos();
        self.lx.expect(b'[')?;
        if self.lx.peek() == Some(b']') {
            match declared {
                None => {
                    return Err(self.lx.error_at(
                        open,
                        "an empty list needs a declared type, as in `axes: ints = []`",
                    ));
                }
                Some(t) if singleton(t) == t => {
                    return Err(self
                        .lx
                        .error_at(open, "a single-valued attribute type cannot take a list"));
                }
                Some(_) => {}
            }
        } else {
            loop {
                // The element type follows the list's type so far, as in onnx.parser: the
                // first element decides an undeclared list's type.
                let expected = attribute
                    .r#type
                    .and_then(|t| AttributeType::try_from(t).ok())
                    .map(singleton);
                self.lx.skip_trivia();
                let at = self.lx.pos();
                let mut element = AttributeProto::default();
                self.attribute_value(&mut element, expected)?;
                let list_type = match element.r#type.and_then(|t| AttributeType::try_from(t).ok()) {
                    Some(AttributeType::Int) => {
                        attribute.ints.extend(element.i);
                        AttributeType::Ints
                    }
                    Some(AttributeType::Float) => {
                        attribute.floats.extend(element.f);
                        AttributeType::Floats
                    }
                    Some(AttributeType::String) => {
                        attribute.strings.extend(element.s);
                        AttributeType::Strings
                    }
                    Some(AttributeType::Tensor) => {
                        attribute.tensors.extend(element.t.map(|t| *t));
                        AttributeType::Tensors
                    }
                    Some(AttributeType::Graph) => {
                        attribute.graphs.extend(element.g);
                        AttributeType::Graphs
                    }
                    Some(AttributeType::TypeProto) => {
                        attribute.type_protos.extend(element.tp.map(|t| *t));
                        AttributeType::TypeProtos
                    }
                    _ => {
                        return Err(self
                            .lx
                            .error_at(at, "an attribute reference cannot be a list element"));
                    }
                };
                attribute.r#type = Some(list_type as i32);
                if !self.lx.eat(b',') {
                    break;
                }
            }
        }
        self.lx.expect(b']')?;
        Ok(attribute)
    }

    /// One attribute value, into `attribute`'s fields and type; `expected` is the type it must
    /// have, when known.
    fn attribute_value(
        &mut self,
        attribute: &mut AttributeProto,
        expected: Option<AttributeType>,
    ) -> Result<()> {
        self.lx.skip_trivia();
        let at = self.lx.pos();
        let actual = match self.lx.peek_raw() {
            Some(b) if b.is_ascii_alphabetic() || b == b'_' => {
                let word = self.lx.peek_identifier();
                let names_a_graph = self.graph_signature_follows(word);
                if starts_type(word) && !(data_type_by_name(word).is_some() && names_a_graph) {
                    let value_type = self.type_proto()?;
                    let next = self.lx.peek();
                    let is_tensor_type = matches!(value_type.value, Some(TypeValue::TensorType(_)));
                    if next == Some(b'{')
                        || next == Some(b'=')
                        || !self.lx.peek_identifier().is_empty()
                        || (expected == Some(AttributeType::Tensor) && is_tensor_type)
                    {
                        let name = self.optional_quotable_identifier()?;
                        self.lx.eat(b'=');
                        attribute.t = Some(Box::new(
                            self.nested(1, |p| p.tensor_data(name, &value_type, at))?,
                        ));
                        AttributeType::Tensor
                    } else {
                        attribute.tp = Some(Box::new(value_type));
                        AttributeType::TypeProto
                    }
                } else if self.lx.at_special_float() && !names_a_graph {
                    attribute.f = Some(self.float32()?);
                    AttributeType::Float
                } else {
                    attribute.g = Some(self.graph()?);
                    AttributeType::Graph
                }
            }
            Some(b'@') => {
                self.lx.eat(b'@');
                attribute.ref_attr_name = Some(self.quotable_identifier("an attribute name")?);
                // A reference keeps the declared type, if any.
                return Ok(());
            }
            Some(b'"') if expected == Some(AttributeType::Graph) => {
                attribute.g = Some(self.graph()?);
                AttributeType::Graph
            }
            _ => match self.lx.literal()? {
                Some(Literal::Int(text)) if expected == Some(AttributeType::Float) => {
                    // An integer where a float is expected is a float, read from the text so that
                    // `-0` stays negative zero.
                    attribute.f = Some(self.parse_f32(text, at)?);
                    AttributeType::Float
                }
                Some(Literal::Int(text)) => {
                    attribute.i = Some(self.parse_i64(text, at)?);
                    AttributeType::Int
                }
                Some(Literal::Float(text)) => {
                    attribute.f = Some(self.parse_f32(text, at)?);
                    AttributeType::Float
                }
                Some(Literal::Str(s)) => {
                    attribute.s = Some(Bytes::from(s.into_owned()));
                    AttributeType::String
                }
                None => return Err(self.lx.expected("an attribute value")),
            },
        };
        attribute.r#type = Some(actual as i32);
        match expected {
            Some(expected) if expected != actual && expected != AttributeType::Undefined => {
                Err(self.lx.error_at(
                    at,
                    format!(
                        "expected a {} value, found a {} value",
                        expected.as_str_name().to_ascii_lowercase(),
                        actual.as_str_name().to_ascii_lowercase()
                    ),
                ))
            }
            _ => Ok(()),
        }
    }

    /// Whether the word under the cursor is followed by `(`, so that it names a graph (whose
    /// inputs follow) rather than being an element type or `inf`/`nan`, which never are.
    fn graph_signature_follows(&mut self, word: &str) -> bool {
        let saved = self.lx.pos();
        self.lx.skip_trivia();
        self.lx.set_pos(self.lx.pos() + word.len());
        let follows = self.lx.peek() == Some(b'(');
        self.lx.set_pos(saved);
        follows
    }

    // ---- Types ---------------------------------------------------------------------------

    /// A type; one message deeper than the caller's.
    fn type_proto(&mut self) -> Result<TypeProto> {
        self.nested(1, Self::type_proto_here)
    }

    fn type_proto_here(&mut self) -> Result<TypeProto> {
        self.lx.skip_trivia();
        let at = self.lx.pos();
        let word = self.required_identifier("a type")?;
        let value = if let Some(data_type) = data_type_by_name(word) {
            TypeValue::TensorType(type_proto::Tensor {
                elem_type: Some(data_type as i32),
                shape: self.shape()?,
            })
        } else {
            match TypeKeyword::lookup(word) {
                Some(TypeKeyword::Seq) => {
                    self.lx.expect(b'(')?;
                    let elem_type = self.nested(1, Self::type_proto)?;
                    self.lx.expect(b')')?;
                    TypeValue::SequenceType(Box::new(type_proto::Sequence {
                        elem_type: Some(Box::new(elem_type)),
                    }))
                }
                Some(TypeKeyword::Optional) => {
                    self.lx.expect(b'(')?;
                    let elem_type = self.nested(1, Self::type_proto)?;
                    self.lx.expect(b')')?;
                    TypeValue::OptionalType(Box::new(type_proto::Optional {
                        elem_type: Some(Box::new(elem_type)),
                    }))
                }
                Some(TypeKeyword::Map) => {
                    self.lx.expect(b'(')?;
                    let key_type = self.element_type("a map's key type")?;
                    self.lx.expect(b',')?;
                    let value_type = self.nested(1, Self::type_proto)?;
                    self.lx.expect(b')')?;
                    TypeValue::MapType(Box::new(type_proto::Map {
                        key_type: Some(key_type as i32),
                        value_type: Some(Box::new(value_type)),
                    }))
                }
                Some(TypeKeyword::SparseTensor) => {
                    self.lx.expect(b'(')?;
                    let elem_type = self.element_type("a sparse tensor's element type")?;
                    let shape = self.shape()?;
                    self.lx.expect(b')')?;
                    TypeValue::SparseTensorType(type_proto::SparseTensor {
                        elem_type: Some(elem_type as i32),
                        shape,
                    })
                }
                Some(TypeKeyword::Opaque) => TypeValue::OpaqueType(self.opaque()?),
                None => return Err(self.lx.error_at(at, format!("unknown type `{word}`"))),
            }
        };
        Ok(TypeProto {
            value: Some(value),
            denotation: None,
        })
    }

    fn element_type(&mut self, what: &str) -> Result<DataType> {
        self.lx.skip_trivia();
        let at = self.lx.pos();
        let word = self.required_identifier(what)?;
        data_type_by_name(word).ok_or_else(|| {
            self.lx.error_at(
                at,
                format!("expected {what} (an element type such as `float`), found `{word}`"),
            )
        })
    }

    /// After an element type: nothing is a scalar (an empty shape), `[]` is unknown rank (no
    /// shape), `[d, ...]` a shape.
    fn shape(&mut self) -> Result<Option<TensorShapeProto>> {
        if !self.lx.eat(b'[') {
            return Ok(Some(TensorShapeProto::default()));
        }
        if self.lx.eat(b']') {
            return Ok(None);
        }
        let mut shape = TensorShapeProto::default();
        loop {
            let value = if self.lx.eat(b'?') {
                None
            } else if self.lx.peek() == Some(b'"') {
                Some(dimension::Value::DimParam(self.string()?))
            } else {
                let id = self.lx.identifier();
                if id.is_empty() {
                    Some(dimension::Value::DimValue(self.int64()?))
                } else {
                    Some(dimension::Value::DimParam(id.to_owned()))
                }
            };
            shape.dim.push(Dimension {
                value,
                denotation: None,
            });
            if !self.lx.eat(b',') {
                break;
            }
        }
        self.lx.expect(b']')?;
        Ok(Some(shape))
    }

    /// `opaque()`, `opaque(name)`, `opaque(domain, name)`; a lone dotted name is the name.
    fn opaque(&mut self) -> Result<type_proto::Opaque> {
        let mut opaque = type_proto::Opaque::default();
        self.lx.expect(b'(')?;
        if self.lx.eat(b')') {
            return Ok(opaque);
        }
        let mut first = self
            .required_identifier("an opaque type's domain or name")?
            .to_owned();
        while self.lx.eat(b'.') {
            first.push('.');
            first.push_str(self.required_identifier("a domain component")?);
        }
        if self.lx.eat(b',') {
            opaque.domain = Some(first);
            opaque.name = Some(
                self.required_identifier("an opaque type's name")?
                    .to_owned(),
            );
        } else {
            opaque.name = Some(first);
        }
        self.lx.expect(b')')?;
        Ok(opaque)
    }

    // ---- Tensors -------------------------------------------------------------------------

    /// A tensor of type `value_type` named `name`: `{values}`, `[external data]` or nothing.
    /// `type_at` is where its type was written, for errors about the type.
    fn tensor_data(
        &mut self,
        name: String,
        value_type: &TypeProto,
        type_at: usize,
    ) -> Result<TensorProto> {
        let Some(TypeValue::TensorType(tensor_type)) = &value_type.value else {
            return Err(self.lx.error_at(
                type_at,
                "a tensor value needs a tensor type such as `float[2]`",
            ));
        };
        let Some(shape) = &tensor_type.shape else {
            return Err(self.lx.error_at(
                type_at,
                "a tensor value needs a known shape: `float[]` has none",
            ));
        };
        let dims = shape
            .dim
            .iter()
            .map(|d| match d.value {
                Some(dimension::Value::DimValue(v)) => Ok(v),
                _ => Err(self
                    .lx
                    .error_at(type_at, "a tensor value's dimensions must be numbers")),
            })
            .collect::<Result<Vec<i64>>>()?;
        let data_type = tensor_type.elem_type.unwrap_or(0);
        let mut tensor = TensorProto {
            name: Some(name),
            data_type: Some(data_type),
            dims,
            ..Default::default()
        };
        if self.lx.eat(b'{') {
            if !self.lx.eat(b'}') {
                loop {
                    self.tensor_element(data_type, &mut tensor)?;
                    if !self.lx.eat(b',') {
                        break;
                    }
                }
                self.lx.expect(b'}')?;
            }
        } else if self.lx.eat(b'[') {
            tensor.data_location = Some(DataLocation::External as i32);
            self.string_entries(&mut tensor.external_data)?;
            self.lx.expect(b']')?;
        }
        Ok(tensor)
    }

    /// One value of a tensor's `{...}`, into the field its element type uses.
    fn tensor_element(&mut self, data_type: i32, tensor: &mut TensorProto) -> Result<()> {
        use DataType as D;
        self.lx.skip_trivia();
        let at = self.lx.pos();
        match DataType::try_from(data_type) {
            Ok(
                D::Int2
                | D::Int4
                | D::Int8
                | D::Int16
                | D::Int32
                | D::Uint2
                | D::Uint4
                | D::Uint8
                | D::Uint16
                | D::Float16
                | D::Bfloat16
                | D::Float8e4m3fn
                | D::Float8e4m3fnuz
                | D::Float8e5m2
                | D::Float8e5m2fnuz
                | D::Float6e2m3
                | D::Float6e3m2
                | D::Float8e8m0
                | D::Bool
                | D::Float4e2m1,
            ) => {
                let value = self.int64()?;
                let value = i32::try_from(value).map_err(|_| {
                    self.lx.error_at(
                        at,
                        format!("{value} does not fit the 32-bit field this type uses"),
                    )
                })?;
                tensor.int32_data.push(value);
            }
            Ok(D::Int64) => tensor.int64_data.push(self.int64()?),
            Ok(D::Uint32 | D::Uint64) => tensor.uint64_data.push(self.uint64()?),
            Ok(D::Float | D::Complex64) => tensor.float_data.push(self.float32()?),
            Ok(D::Double | D::Complex128) => tensor.double_data.push(self.float64()?),
            Ok(D::String) => tensor.string_data.push(Bytes::from(self.string()?)),
            Ok(D::Undefined) | Err(_) => {
                return Err(self
                    .lx
                    .error_at(at, "a tensor of undefined type has no values"));
            }
        }
        Ok(())
    }

    // ---- Small pieces --------------------------------------------------------------------

    fn opset_imports(&mut self, opsets: &mut Vec<OperatorSetIdProto>) -> Result<()> {
        self.lx.expect(b'[')?;
        if self.lx.eat(b']') {
            return Ok(());
        }
        loop {
            let domain = self.string()?;
            self.lx.expect(b':')?;
            let version = self.int64()?;
            opsets.push(OperatorSetIdProto {
                domain: Some(domain),
                version: Some(version),
            });
            if !self.lx.eat(b',') {
                break;
            }
        }
        self.lx.expect(b']')
    }

    /// `"key": "value", ...` (at least one).
    fn string_entries(&mut self, entries: &mut Vec<StringStringEntryProto>) -> Result<()> {
        loop {
            let key = self.string()?;
            self.lx.expect(b':')?;
            let value = self.string()?;
            entries.push(StringStringEntryProto {
                key: Some(key),
                value: Some(value),
            });
            if !self.lx.eat(b',') {
                return Ok(());
            }
        }
    }

    fn required_identifier(&mut self, what: &str) -> Result<&'a str> {
        let id = self.lx.identifier();
        if id.is_empty() {
            Err(self.lx.expected(what))
        } else {
            Ok(id)
        }
    }

    /// A name: an identifier or a quoted string.
    fn quotable_identifier(&mut self, what: &str) -> Result<String> {
        if self.lx.peek() == Some(b'"') {
            return self.string();
        }
        self.required_identifier(what).map(str::to_owned)
    }

    /// A name, quoted, bare, or absent (`""`).
    fn optional_quotable_identifier(&mut self) -> Result<String> {
        if self.lx.peek() == Some(b'"') {
            return self.string();
        }
        Ok(self.lx.identifier().to_owned())
    }

    fn string(&mut self) -> Result<String> {
        match self.lx.literal()? {
            Some(Literal::Str(s)) => Ok(s.into_owned()),
            _ => Err(self.expected_literal("a quoted string")),
        }
    }

    fn int64(&mut self) -> Result<i64> {
        self.lx.skip_trivia();
        let at = self.lx.pos();
        match self.lx.literal()? {
            Some(Literal::Int(text)) => self.parse_i64(text, at),
            _ => Err(self.expected_literal_at(at, "an integer")),
        }
    }

    fn uint64(&mut self) -> Result<u64> {
        self.lx.skip_trivia();
        let at = self.lx.pos();
        match self.lx.literal()? {
            Some(Literal::Int(text)) => text.parse().map_err(|_| {
                self.lx
                    .error_at(at, format!("`{text}` is not an unsigned 64-bit integer"))
            }),
            _ => Err(self.expected_literal_at(at, "an unsigned integer")),
        }
    }

    fn float32(&mut self) -> Result<f32> {
        self.lx.skip_trivia();
        let at = self.lx.pos();
        match self.lx.literal()? {
            Some(Literal::Int(text) | Literal::Float(text)) => self.parse_f32(text, at),
            _ => Err(self.expected_literal_at(at, "a number")),
        }
    }

    fn float64(&mut self) -> Result<f64> {
        self.lx.skip_trivia();
        let at = self.lx.pos();
        match self.lx.literal()? {
            Some(Literal::Int(text) | Literal::Float(text)) => {
                let value: f64 = text
                    .parse()
                    .map_err(|_| self.lx.error_at(at, format!("`{text}` is not a number")))?;
                if value.is_infinite() && !is_infinity_word(text) {
                    return Err(self
                        .lx
                        .error_at(at, format!("`{text}` is out of range for a double")));
                }
                Ok(value)
            }
            _ => Err(self.expected_literal_at(at, "a number")),
        }
    }

    fn parse_i64(&self, text: &str, at: usize) -> Result<i64> {
        text.parse().map_err(|_| {
            self.lx
                .error_at(at, format!("`{text}` is out of range for a 64-bit integer"))
        })
    }

    /// A float as `std::from_chars` reads it: correctly rounded; underflow gives zero or a
    /// subnormal, overflow is an error.
    fn parse_f32(&self, text: &str, at: usize) -> Result<f32> {
        let value: f32 = text
            .parse()
            .map_err(|_| self.lx.error_at(at, format!("`{text}` is not a number")))?;
        if value.is_infinite() && !is_infinity_word(text) {
            return Err(self
                .lx
                .error_at(at, format!("`{text}` is out of range for a float")));
        }
        Ok(value)
    }

    fn expected_literal(&mut self, what: &str) -> ParseError {
        self.lx.skip_trivia();
        let at = self.lx.pos();
        self.expected_literal_at(at, what)
    }

    /// "expected X" at `at`, where a literal of the wrong kind (or none) started.
    fn expected_literal_at(&mut self, at: usize, what: &str) -> ParseError {
        self.lx.set_pos(at);
        self.lx.expected(what)
    }
}

fn is_infinity_word(text: &str) -> bool {
    text.trim_start_matches('-')
        .bytes()
        .next()
        .is_some_and(|b| b.is_ascii_alphabetic())
}

/// The element type of a list attribute type (`ints` → `int`); other types map to themselves.
fn singleton(attribute_type: AttributeType) -> AttributeType {
    use AttributeType as A;
    match attribute_type {
        A::Floats => A::Float,
        A::Ints => A::Int,
        A::Strings => A::String,
        A::Tensors => A::Tensor,
        A::Graphs => A::Graph,
        A::SparseTensors => A::SparseTensor,
        A::TypeProtos => A::TypeProto,
        other => other,
    }
}
