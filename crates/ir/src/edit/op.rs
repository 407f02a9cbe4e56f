//! New nodes, built one way: op, inputs, attributes, and name bases the [`Names`] policy makes
//! fresh.

use onnx_rewrite_proto::{AttributeProto, NodeProto};

use super::Names;
use crate::{GraphId, InvariantError, Model, NodeId, ValueId};

/// A node to add. The node's name is `name` made fresh; each output's is its base made fresh
/// (by default `<node name>_output_<slot>`).
#[derive(Clone, Debug)]
pub struct Op<'a> {
    op_type: &'a str,
    domain: &'a str,
    overload: &'a str,
    name: String,
    inputs: Vec<Option<ValueId>>,
    outputs: Vec<Slot>,
    attributes: Vec<AttributeProto>,
}

/// An output slot: named from a base, named by default, or an optional output not produced.
#[derive(Clone, Debug)]
enum Slot {
    Named(String),
    Default,
    Absent,
}

impl<'a> Op<'a> {
    /// An op of the ONNX domain, named for its type until [`Op::name`] says otherwise.
    pub fn new(op_type: &'a str) -> Self {
        Self {
            op_type,
            domain: "",
            overload: "",
            name: op_type.to_owned(),
            inputs: Vec::new(),
            outputs: vec![Slot::Default],
            attributes: Vec::new(),
        }
    }

    pub fn domain(mut self, domain: &'a str) -> Self {
        self.domain = domain;
        self
    }

    /// The overload of a model-local function the node calls.
    pub fn overload(mut self, overload: &'a str) -> Self {
        self.overload = overload;
        self
    }

    /// The base of the node's name.
    pub fn name(mut self, base: impl Into<String>) -> Self {
        self.name = base.into();
        self
    }

    pub fn input(mut self, value: ValueId) -> Self {
        self.inputs.push(Some(value));
        self
    }

    /// Every input slot at once; `None` is a missing optional input.
    pub fn inputs(mut self, values: &[Option<ValueId>]) -> Self {
        self.inputs = values.to_vec();
        self
    }

    /// The node has `count` outputs, named by default.
    pub fn outputs(mut self, count: usize) -> Self {
        self.outputs = vec![Slot::Default; count];
        self
    }

    /// One output slot per entry, named by default; `false` is an optional output the node
    /// does not produce.
    pub fn produced(mut self, slots: &[bool]) -> Self {
        self.outputs = slots
            .iter()
            .map(|p| if *p { Slot::Default } else { Slot::Absent })
            .collect();
        self
    }

    /// The base of the first output's name.
    pub fn output(self, base: impl Into<String>) -> Self {
        self.output_names(&[base.into()])
    }

    /// One output per base, named from it.
    pub fn output_names(mut self, bases: &[String]) -> Self {
        self.outputs = bases.iter().cloned().map(Slot::Named).collect();
        self
    }

    /// One output slot per entry: `Some(base)` named from the base, `None` an optional output
    /// the node does not produce.
    pub fn output_slots(mut self, slots: Vec<Option<String>>) -> Self {
        self.outputs = slots
            .into_iter()
            .map(|s| s.map_or(Slot::Absent, Slot::Named))
            .collect();
        self
    }

    pub fn attr(mut self, attribute: AttributeProto) -> Self {
        self.attributes.push(attribute);
        self
    }

    pub fn attrs(mut self, attributes: impl IntoIterator<Item = AttributeProto>) -> Self {
        self.attributes.extend(attributes);
        self
    }

    /// Appends the node to `graph` (callers place it with [`super::place_before`] or a
    /// topological order).
    pub fn add(self, model: &mut Model, names: &mut Names, graph: GraphId) -> NodeId {
        let name = names.node(&self.name);
        let outputs: Vec<Option<String>> = self
            .outputs
            .iter()
            .enumerate()
            .map(|(slot, base)| match base {
                Slot::Named(base) => Some(names.value(base)),
                Slot::Default => Some(names.value(&format!("{name}_output_{slot}"))),
                Slot::Absent => None,
            })
            .collect();
        let header = NodeProto {
            op_type: Some(self.op_type.to_owned()),
            domain: (!self.domain.is_empty()).then(|| self.domain.to_owned()),
            overload: (!self.overload.is_empty()).then(|| self.overload.to_owned()),
            name: Some(name),
            ..NodeProto::default()
        };
        model.add_node(graph, header, &self.inputs, &outputs, self.attributes)
    }

    /// [`Op::add`], returning the first output.
    pub fn add_value(
        self,
        model: &mut Model,
        names: &mut Names,
        graph: GraphId,
    ) -> Result<ValueId, InvariantError> {
        let node = self.add(model, names, graph);
        first_output(model, node)
    }
}

/// The first output of `node` (a node an edit just built, say).
pub fn first_output(model: &Model, node: NodeId) -> Result<ValueId, InvariantError> {
    model
        .node(node)
        .outputs()
        .first()
        .copied()
        .flatten()
        .ok_or_else(|| InvariantError(format!("{} has no output", model.describe_node(node))))
}
