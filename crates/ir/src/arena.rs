//! The arena: values, nodes and graphs of one model, connected by id.
//!
//! Invariants the mutation methods keep (and [`Model::check`] verifies):
//! - every value has exactly one definition ([`ValueDef`]) and lives in one graph;
//! - a value's use list holds exactly the node input slots and graph output slots that name it;
//! - a node's output count never changes after creation;
//! - a removed node is in no graph's node list, and its outputs have no uses.

use rustc_hash::{FxHashMap as HashMap, FxHashSet as HashSet};

use onnx_rewrite_proto as proto;
use smallvec::SmallVec;

use crate::pending::PendingPayload;

mod journal;

pub use journal::Checkpoint;
use journal::{Journal, Undo};

macro_rules! id_type {
    ($(#[$doc:meta])* $name:ident) => {
        $(#[$doc])*
        #[derive(Clone, Copy, PartialEq, Eq, Hash, PartialOrd, Ord, Debug)]
        pub struct $name(u32);

        impl $name {
            /// The arena index (stable for the life of the model; never reused).
            pub fn index(self) -> usize {
                self.0 as usize
            }

            fn new(index: usize) -> Self {
                Self(u32::try_from(index).expect("arena holds fewer than 2^32 entries"))
            }
        }
    };
}

id_type!(
    /// A value (tensor, sequence, ...) of the model.
    ValueId
);
id_type!(
    /// A node of the model.
    NodeId
);
id_type!(
    /// A graph of the model: the main graph, a subgraph or a function body.
    GraphId
);

/// How a value comes to exist.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub enum ValueDef {
    /// An input of its graph (or function). It may also carry an initializer (a default value,
    /// as IR versions before 4 required).
    Input,
    /// A constant of its graph (`GraphProto.initializer`) that is not an input.
    Initializer,
    /// A sparse constant of its graph (`GraphProto.sparse_initializer`).
    SparseInitializer,
    /// Output `index` of `node`.
    Node { node: NodeId, index: u32 },
}

/// One place a value is read.
#[derive(Clone, Copy, Debug, PartialEq, Eq, Hash, PartialOrd, Ord)]
pub enum Use {
    /// Input slot `input` of `node`.
    Node { node: NodeId, input: u32 },
    /// Output slot `index` of `graph`.
    GraphOutput { graph: GraphId, index: u32 },
}

/// A value: a graph input, a constant, or a node output.
#[derive(Clone, Debug)]
pub struct Value {
    name: String,
    graph: GraphId,
    def: ValueDef,
    uses: Vec<Use>,
    // Boxed: most values are node outputs, and a TensorProto is 344 bytes.
    initializer: Option<Box<proto::TensorProto>>,
    sparse_initializer: Option<Box<proto::SparseTensorProto>>,
}

impl Value {
    pub fn name(&self) -> &str {
        &self.name
    }
    /// The graph whose scope defines this value.
    pub fn graph(&self) -> GraphId {
        self.graph
    }
    pub fn def(&self) -> ValueDef {
        self.def
    }
    /// Every place this value is read, in the order the uses were made.
    pub fn uses(&self) -> &[Use] {
        &self.uses
    }
    /// The producing node, if a node produces this value.
    pub fn producer(&self) -> Option<(NodeId, u32)> {
        match self.def {
            ValueDef::Node { node, index } => Some((node, index)),
            _ => None,
        }
    }
    /// The constant data of an initializer, or the default of an input that has one.
    ///
    /// In the IR a tensor's `raw_data` always holds its payload when the payload is raw bytes,
    /// even when `data_location` is `EXTERNAL`: that field records where the tensor was stored
    /// (and where [`crate::save`] stores it again by default), not where its bytes are now.
    pub fn initializer(&self) -> Option<&proto::TensorProto> {
        self.initializer.as_deref()
    }
    pub fn sparse_initializer(&self) -> Option<&proto::SparseTensorProto> {
        self.sparse_initializer.as_deref()
    }
}

/// A node: an operator application. Its `proto` keeps every `NodeProto` field the IR does not
/// model (name, op_type, domain, overload, doc_string, metadata_props, device configurations);
/// inputs, outputs and attributes live in the IR.
#[derive(Clone, Debug)]
pub struct Node {
    pub proto: proto::NodeProto,
    pub attributes: Vec<Attribute>,
    graph: GraphId,
    inputs: SmallVec<[Option<ValueId>; 4]>,
    outputs: SmallVec<[Option<ValueId>; 2]>,
    removed: bool,
}

impl Node {
    pub fn op_type(&self) -> &str {
        self.proto.op_type()
    }
    /// The operator domain, with the default domain spelled `""` (the proto also allows `ai.onnx`).
    pub fn domain(&self) -> &str {
        match self.proto.domain() {
            "ai.onnx" => "",
            domain => domain,
        }
    }
    pub fn name(&self) -> &str {
        self.proto.name()
    }
    pub fn graph(&self) -> GraphId {
        self.graph
    }
    /// Input slots; `None` is a missing optional input (an empty name in the proto).
    pub fn inputs(&self) -> &[Option<ValueId>] {
        &self.inputs
    }
    /// Output slots, fixed at creation; `None` is an optional output the node does not produce.
    pub fn outputs(&self) -> &[Option<ValueId>] {
        &self.outputs
    }
    pub fn attribute(&self, name: &str) -> Option<&Attribute> {
        self.attributes.iter().find(|a| a.proto.name() == name)
    }
    /// The subgraphs this node owns, in attribute order.
    pub fn subgraphs(&self) -> impl Iterator<Item = GraphId> + '_ {
        self.attributes
            .iter()
            .flat_map(|a| a.graph.iter().chain(a.graphs.iter()).copied())
    }
    pub fn is_removed(&self) -> bool {
        self.removed
    }
}

/// An attribute. Graph-valued fields (`g`, `graphs`) are owned IR graphs; everything else stays
/// in `proto` (whose `g` and `graphs` are kept empty).
#[derive(Clone, Debug, Default)]
pub struct Attribute {
    pub proto: proto::AttributeProto,
    pub graph: Option<GraphId>,
    pub graphs: Vec<GraphId>,
}

impl Attribute {
    pub fn name(&self) -> &str {
        self.proto.name()
    }
}

/// A graph input or output. `info` is `None` only in function bodies, whose inputs and outputs
/// are bare names.
#[derive(Clone, Debug)]
pub struct GraphIo {
    pub value: ValueId,
    pub info: Option<proto::ValueInfoProto>,
}

/// A `value_info` annotation. `value` is `None` when it names no value of its graph (the proto
/// allows stale annotations; `none` keeps them, passes drop them).
#[derive(Clone, Debug)]
pub struct ValueInfoEntry {
    pub value: Option<ValueId>,
    pub proto: proto::ValueInfoProto,
}

/// Who owns a graph.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub enum GraphOwner {
    /// The model's main graph.
    Model,
    /// A graph attribute of a node (`attribute` indexes `Node::attributes`).
    Node { node: NodeId, attribute: u32 },
    /// The body of `Model::functions[index]`.
    Function { index: u32 },
}

/// A graph: the main graph, a subgraph of a node, or a function body.
#[derive(Clone, Debug)]
pub struct Graph {
    /// `GraphProto` fields the IR does not model (name, doc_string, quantization_annotation,
    /// metadata_props); its repeated structural fields are kept empty.
    pub proto: proto::GraphProto,
    pub value_info: Vec<ValueInfoEntry>,
    owner: GraphOwner,
    inputs: Vec<GraphIo>,
    outputs: Vec<GraphIo>,
    initializers: Vec<ValueId>,
    sparse_initializers: Vec<ValueId>,
    nodes: Vec<NodeId>,
}

impl Graph {
    fn new(proto: proto::GraphProto, owner: GraphOwner) -> Self {
        Self {
            proto,
            value_info: Vec::new(),
            owner,
            inputs: Vec::new(),
            outputs: Vec::new(),
            initializers: Vec::new(),
            sparse_initializers: Vec::new(),
            nodes: Vec::new(),
        }
    }
    pub fn owner(&self) -> GraphOwner {
        self.owner
    }
    pub fn inputs(&self) -> &[GraphIo] {
        &self.inputs
    }
    pub fn outputs(&self) -> &[GraphIo] {
        &self.outputs
    }
    /// Initializers in `GraphProto.initializer` order (inputs with a default included).
    pub fn initializers(&self) -> &[ValueId] {
        &self.initializers
    }
    pub fn sparse_initializers(&self) -> &[ValueId] {
        &self.sparse_initializers
    }
    /// Nodes in their serialization order.
    pub fn nodes(&self) -> &[NodeId] {
        &self.nodes
    }
    /// The declaration of input `index`, to edit (its type, say); which value the input is
    /// cannot change here.
    pub fn input_info_mut(&mut self, index: usize) -> Option<&mut Option<proto::ValueInfoProto>> {
        self.inputs.get_mut(index).map(|io| &mut io.info)
    }
    /// The declaration of output `index`, to edit; [`Model::set_graph_output`] changes the value.
    pub fn output_info_mut(&mut self, index: usize) -> Option<&mut Option<proto::ValueInfoProto>> {
        self.outputs.get_mut(index).map(|io| &mut io.info)
    }
}

/// A model-local function. `proto` keeps every `FunctionProto` field but the body (input,
/// output, node, value_info), which is the graph `body`.
#[derive(Clone, Debug)]
pub struct Function {
    pub proto: proto::FunctionProto,
    pub body: GraphId,
}

/// A whole model.
#[derive(Clone, Debug)]
pub struct Model {
    /// `ModelProto` fields the IR does not model (ir_version, opset_import, producer, metadata,
    /// training_info, configuration, ...); `graph` is `None` and `functions` is empty.
    pub proto: proto::ModelProto,
    pub functions: Vec<Function>,
    main: GraphId,
    values: Vec<Value>,
    nodes: Vec<Node>,
    graphs: Vec<Graph>,
    dropped_unknown_fields: Vec<proto::wire::UnknownField>,
    /// Initializers whose bytes are computed when saved (see [`crate::pending`]).
    pending: HashMap<ValueId, PendingPayload>,
    /// Undo records while a [`Checkpoint`] is open.
    journal: Option<Box<Journal>>,
}

/// A violated IR invariant; only a bug in a pass (or in this crate) produces one.
#[derive(Debug, Clone, PartialEq, Eq, thiserror::Error)]
#[error("IR invariant violated: {0}")]
pub struct InvariantError(pub String);

impl Model {
    /// An empty model with the given header (its `graph` and `functions` are ignored).
    pub fn new(mut header: proto::ModelProto, main_graph: proto::GraphProto) -> Self {
        header.graph = None;
        header.functions.clear();
        let mut model = Self {
            proto: header,
            functions: Vec::new(),
            main: GraphId(0),
            values: Vec::new(),
            nodes: Vec::new(),
            graphs: Vec::new(),
            dropped_unknown_fields: Vec::new(),
            pending: HashMap::default(),
            journal: None,
        };
        model.main = model.add_graph(main_graph, GraphOwner::Model);
        model
    }

    pub fn main(&self) -> GraphId {
        self.main
    }
    pub fn value(&self, id: ValueId) -> &Value {
        &self.values[id.index()]
    }
    pub fn node(&self, id: NodeId) -> &Node {
        &self.nodes[id.index()]
    }
    /// Mutable access to the parts of a node that no invariant depends on (proto, attribute protos).
    pub fn node_mut(&mut self, id: NodeId) -> &mut Node {
        self.snapshot_node(id);
        &mut self.nodes[id.index()]
    }
    pub fn graph(&self, id: GraphId) -> &Graph {
        &self.graphs[id.index()]
    }
    pub fn graph_mut(&mut self, id: GraphId) -> &mut Graph {
        self.snapshot_graph(id);
        &mut self.graphs[id.index()]
    }
    /// Every graph id, main graph first, then in creation order.
    pub fn graph_ids(&self) -> impl Iterator<Item = GraphId> + use<> {
        (0..self.graphs.len()).map(GraphId::new)
    }
    /// Fields of the input the schema did not know, dropped at load (only when the caller
    /// allowed it; by default such a model is refused).
    pub fn dropped_unknown_fields(&self) -> &[proto::wire::UnknownField] {
        &self.dropped_unknown_fields
    }
    pub(crate) fn set_dropped_unknown_fields(&mut self, fields: Vec<proto::wire::UnknownField>) {
        self.dropped_unknown_fields = fields;
    }

    /// Opset version imported for `domain` (`""` and `"ai.onnx"` are the same domain).
    pub fn opset(&self, domain: &str) -> Option<i64> {
        let normalize = |d: &str| if d == "ai.onnx" { "" } else { d }.to_owned();
        let wanted = normalize(domain);
        self.proto
            .opset_import
            .iter()
            .find(|o| normalize(o.domain()) == wanted)
            .map(|o| o.version())
    }

    // ---- construction -------------------------------------------------------------------

    /// Adds an empty graph. Use [`Model::add_subgraph`] for a node's graph attribute.
    pub fn add_graph(&mut self, proto: proto::GraphProto, owner: GraphOwner) -> GraphId {
        let id = GraphId::new(self.graphs.len());
        self.graphs.push(Graph::new(strip_graph(proto), owner));
        self.record(|| Undo::AddGraph);
        id
    }

    fn add_value(&mut self, graph: GraphId, name: String, def: ValueDef) -> ValueId {
        let id = ValueId::new(self.values.len());
        self.values.push(Value {
            name,
            graph,
            def,
            uses: Vec::new(),
            initializer: None,
            sparse_initializer: None,
        });
        self.record(|| Undo::AddValue);
        id
    }

    /// Appends an input to `graph`.
    pub fn add_input(
        &mut self,
        graph: GraphId,
        name: impl Into<String>,
        info: Option<proto::ValueInfoProto>,
    ) -> ValueId {
        let value = self.add_value(graph, name.into(), ValueDef::Input);
        self.graphs[graph.index()]
            .inputs
            .push(GraphIo { value, info });
        self.record(|| Undo::PushInput(graph));
        value
    }

    /// Appends a constant to `graph`'s initializers.
    pub fn add_initializer(
        &mut self,
        graph: GraphId,
        name: impl Into<String>,
        tensor: proto::TensorProto,
    ) -> ValueId {
        let value = self.add_value(graph, name.into(), ValueDef::Initializer);
        self.values[value.index()].initializer = Some(Box::new(tensor));
        self.graphs[graph.index()].initializers.push(value);
        self.record(|| Undo::PushInitializer(graph));
        value
    }

    /// Gives the input `value` a default (an initializer of the same name), appended to the
    /// graph's initializer list.
    pub fn set_input_default(&mut self, value: ValueId, tensor: proto::TensorProto) {
        let v = &mut self.values[value.index()];
        debug_assert_eq!(v.def, ValueDef::Input);
        let graph = v.graph;
        let old = v.initializer.replace(Box::new(tensor));
        let first = old.is_none();
        self.record(|| Undo::Tensor { value, old });
        let payload = self.pending.remove(&value);
        self.record(|| Undo::Pending { value, payload });
        if first {
            self.graphs[graph.index()].initializers.push(value);
            self.record(|| Undo::PushInitializer(graph));
        }
    }

    /// Replaces the data of an initializer (or an input's default).
    pub fn set_initializer(&mut self, value: ValueId, tensor: proto::TensorProto) {
        let v = &mut self.values[value.index()];
        debug_assert!(v.initializer.is_some(), "only constants have data");
        let old = v.initializer.replace(Box::new(tensor));
        self.record(|| Undo::Tensor { value, old });
        let payload = self.pending.remove(&value);
        self.record(|| Undo::Pending { value, payload });
    }

    /// Makes `tensor` (its payload left out) the initializer's, with bytes `payload` computes
    /// when the model is saved or [materialized](Model::materialize_pending).
    pub fn set_pending_initializer(
        &mut self,
        value: ValueId,
        mut tensor: proto::TensorProto,
        payload: PendingPayload,
    ) {
        tensor.raw_data = None;
        self.set_initializer(value, tensor);
        let old = self.pending.insert(value, payload);
        self.record(|| Undo::Pending {
            value,
            payload: old,
        });
    }

    /// The bytes still to be computed for the initializer `value`, if they are pending.
    pub fn pending_payload(&self, value: ValueId) -> Option<&PendingPayload> {
        self.pending.get(&value)
    }

    pub fn has_pending_payloads(&self) -> bool {
        !self.pending.is_empty()
    }

    /// Computes every pending payload into its initializer, for readers of the bytes.
    pub fn materialize_pending(&mut self) {
        let mut pending: Vec<(ValueId, PendingPayload)> =
            std::mem::take(&mut self.pending).into_iter().collect();
        pending.sort_by_key(|(value, _)| *value);
        for (value, payload) in pending {
            let bytes = payload.materialize();
            let old = self
                .journal
                .is_some()
                .then(|| self.values[value.index()].initializer.clone())
                .flatten();
            self.record(|| Undo::Pending {
                value,
                payload: Some(payload),
            });
            if let Some(tensor) = self.values[value.index()].initializer.as_mut() {
                tensor.raw_data = Some(bytes);
                self.record(|| Undo::Tensor { value, old });
            }
        }
    }

    /// Appends a sparse constant to `graph`.
    pub fn add_sparse_initializer(
        &mut self,
        graph: GraphId,
        name: impl Into<String>,
        tensor: proto::SparseTensorProto,
    ) -> ValueId {
        let value = self.add_value(graph, name.into(), ValueDef::SparseInitializer);
        self.values[value.index()].sparse_initializer = Some(Box::new(tensor));
        self.graphs[graph.index()].sparse_initializers.push(value);
        self.record(|| Undo::PushSparse(graph));
        value
    }

    /// Appends a node to `graph`. `outputs` names its output slots (`None`: an optional output
    /// it does not produce); the values are created here. Attributes with graphs are attached
    /// afterwards with [`Model::add_subgraph`].
    pub fn add_node(
        &mut self,
        graph: GraphId,
        header: proto::NodeProto,
        inputs: &[Option<ValueId>],
        outputs: &[Option<String>],
        attributes: Vec<proto::AttributeProto>,
    ) -> NodeId {
        let id = NodeId::new(self.nodes.len());
        let output_ids = outputs
            .iter()
            .enumerate()
            .map(|(index, name)| {
                name.clone().map(|name| {
                    self.add_value(
                        graph,
                        name,
                        ValueDef::Node {
                            node: id,
                            index: index as u32,
                        },
                    )
                })
            })
            .collect();
        let attributes = attributes
            .into_iter()
            .map(|proto| Attribute {
                proto: strip_attribute(proto),
                graph: None,
                graphs: Vec::new(),
            })
            .collect();
        self.nodes.push(Node {
            proto: strip_node(header),
            attributes,
            graph,
            inputs: SmallVec::new(),
            outputs: output_ids,
            removed: false,
        });
        for (slot, input) in inputs.iter().enumerate() {
            self.nodes[id.index()].inputs.push(*input);
            if let Some(value) = input {
                self.values[value.index()].uses.push(Use::Node {
                    node: id,
                    input: slot as u32,
                });
            }
        }
        self.graphs[graph.index()].nodes.push(id);
        self.record(|| Undo::AddNode { graph });
        id
    }

    /// Creates an empty graph owned by attribute `attribute` of `node`; `many` selects the
    /// `graphs` list instead of the single `g`.
    pub fn add_subgraph(
        &mut self,
        node: NodeId,
        attribute: usize,
        proto: proto::GraphProto,
        many: bool,
    ) -> GraphId {
        let graph = self.add_graph(
            proto,
            GraphOwner::Node {
                node,
                attribute: attribute as u32,
            },
        );
        let attr = &mut self.nodes[node.index()].attributes[attribute];
        if many {
            attr.graphs.push(graph);
        } else {
            attr.graph = Some(graph);
        }
        self.record(|| Undo::AttachSubgraph {
            node,
            attribute: attribute as u32,
            many,
        });
        graph
    }

    /// Appends an output slot to `graph` reading `value`.
    pub fn add_output(
        &mut self,
        graph: GraphId,
        value: ValueId,
        info: Option<proto::ValueInfoProto>,
    ) {
        let outputs = &mut self.graphs[graph.index()].outputs;
        let index = outputs.len() as u32;
        outputs.push(GraphIo { value, info });
        self.values[value.index()]
            .uses
            .push(Use::GraphOutput { graph, index });
        self.record(|| Undo::PushOutput { graph, value });
    }

    // ---- mutation -----------------------------------------------------------------------

    /// Points input slot `slot` of `node` at `value` (or makes it missing).
    pub fn set_node_input(&mut self, node: NodeId, slot: usize, value: Option<ValueId>) {
        let the_use = Use::Node {
            node,
            input: slot as u32,
        };
        let old = self.nodes[node.index()].inputs[slot]
            .and_then(|old| Some((old, self.remove_use(old, the_use)?)));
        self.nodes[node.index()].inputs[slot] = value;
        if let Some(new) = value {
            self.values[new.index()].uses.push(the_use);
        }
        self.record(|| Undo::SetInput {
            node,
            slot: slot as u32,
            old,
            new: value,
        });
    }

    /// Points output slot `index` of `graph` at `value`.
    pub fn set_graph_output(&mut self, graph: GraphId, index: usize, value: ValueId) {
        let the_use = Use::GraphOutput {
            graph,
            index: index as u32,
        };
        let old = self.graphs[graph.index()].outputs[index].value;
        let position = self.remove_use(old, the_use).unwrap_or(0);
        self.graphs[graph.index()].outputs[index].value = value;
        self.values[value.index()].uses.push(the_use);
        self.record(|| Undo::SetOutput {
            graph,
            index: index as u32,
            old: (old, position),
            new: value,
        });
    }

    /// Makes every reader of `old` read `new` instead.
    pub fn replace_all_uses(&mut self, old: ValueId, new: ValueId) {
        if old == new {
            return;
        }
        let uses = std::mem::take(&mut self.values[old.index()].uses);
        let new_len = self.values[new.index()].uses.len();
        for &the_use in &uses {
            match the_use {
                Use::Node { node, input } => {
                    self.nodes[node.index()].inputs[input as usize] = Some(new)
                }
                Use::GraphOutput { graph, index } => {
                    self.graphs[graph.index()].outputs[index as usize].value = new
                }
            }
            self.values[new.index()].uses.push(the_use);
        }
        if self.journal.is_some() {
            self.record(|| Undo::ReplaceAll {
                old,
                new,
                uses,
                new_len,
            });
        }
    }

    /// Removes `node` from its graph, with everything inside its subgraphs. Its outputs must be
    /// unused; its inputs (and its subgraphs' reads of outer values) stop using their values.
    /// The ids stay allocated (never reused).
    pub fn remove_node(&mut self, node: NodeId) -> Result<(), InvariantError> {
        self.remove_nodes(&[node])
    }

    /// Removes several nodes at once (in one pass over each graph's node list); the outputs of
    /// each may be read only by nodes of the same batch.
    pub fn remove_nodes(&mut self, nodes: &[NodeId]) -> Result<(), InvariantError> {
        let batch: HashSet<NodeId> = nodes
            .iter()
            .copied()
            .filter(|n| !self.nodes[n.index()].removed)
            .collect();
        let bodies: Vec<GraphId> = batch
            .iter()
            .flat_map(|n| self.nodes[n.index()].subgraphs())
            .collect();
        let goes = |graph: GraphId| bodies.iter().any(|b| self.is_within(graph, *b));
        // Check everything first, so that a refusal leaves the model as it was.
        for &node in nodes {
            for output in self.nodes[node.index()].outputs.iter().flatten() {
                let outside = self.values[output.index()].uses.iter().find(|u| match u {
                    Use::Node { node: reader, .. } => {
                        !batch.contains(reader) && !goes(self.nodes[reader.index()].graph)
                    }
                    Use::GraphOutput { graph, .. } => !goes(*graph),
                });
                if let Some(reader) = outside {
                    return Err(InvariantError(format!(
                        "node {} still has readers of output '{}' ({reader:?})",
                        self.describe_node(node),
                        self.values[output.index()].name
                    )));
                }
            }
        }
        let mut graphs: Vec<GraphId> = Vec::new();
        for &node in nodes {
            if self.nodes[node.index()].removed {
                continue;
            }
            let mut nested: Vec<GraphId> = self.nodes[node.index()].subgraphs().collect();
            while let Some(graph) = nested.pop() {
                let inner_nodes = std::mem::take(&mut self.graphs[graph.index()].nodes);
                for &inner in &inner_nodes {
                    nested.extend(self.nodes[inner.index()].subgraphs());
                    for slot in 0..self.nodes[inner.index()].inputs.len() {
                        self.set_node_input(inner, slot, None);
                    }
                    self.nodes[inner.index()].removed = true;
                    self.record(|| Undo::Removed(inner));
                }
                self.record(|| Undo::NodeList {
                    graph,
                    nodes: inner_nodes,
                });
                self.take_outputs(graph);
            }
            for slot in 0..self.nodes[node.index()].inputs.len() {
                self.set_node_input(node, slot, None);
            }
            self.nodes[node.index()].removed = true;
            self.record(|| Undo::Removed(node));
            graphs.push(self.nodes[node.index()].graph);
        }
        graphs.sort();
        graphs.dedup();
        for graph in graphs {
            let nodes = &self.nodes;
            let before = self
                .journal
                .is_some()
                .then(|| self.graphs[graph.index()].nodes.clone());
            self.graphs[graph.index()]
                .nodes
                .retain(|n| !nodes[n.index()].removed);
            if let Some(nodes) = before {
                self.record(|| Undo::NodeList { graph, nodes });
            }
        }
        Ok(())
    }

    /// Empties `graph`'s output list (its owner is going away), dropping the uses it made.
    fn take_outputs(&mut self, graph: GraphId) {
        let outputs = std::mem::take(&mut self.graphs[graph.index()].outputs);
        for (index, output) in outputs.iter().enumerate().rev() {
            let the_use = Use::GraphOutput {
                graph,
                index: index as u32,
            };
            if let Some(position) = self.remove_use(output.value, the_use) {
                self.record(|| Undo::UseRemoved {
                    value: output.value,
                    position,
                    the_use,
                });
            }
        }
        self.record(|| Undo::Outputs { graph, outputs });
    }

    /// Removes a constant (initializer or sparse initializer) that nothing reads.
    pub fn remove_initializer(&mut self, value: ValueId) -> Result<(), InvariantError> {
        self.remove_initializers(&[value])
    }

    /// Removes several unread constants at once (one pass over each graph's lists).
    pub fn remove_initializers(&mut self, values: &[ValueId]) -> Result<(), InvariantError> {
        for &value in values {
            let v = &self.values[value.index()];
            if !v.uses.is_empty() {
                return Err(InvariantError(format!(
                    "initializer '{}' is still read",
                    v.name
                )));
            }
            if !matches!(v.def, ValueDef::Initializer | ValueDef::SparseInitializer) {
                return Err(InvariantError(format!(
                    "'{}' is not an initializer",
                    v.name
                )));
            }
        }
        for &value in values {
            if let Some(payload) = self.pending.remove(&value) {
                self.record(|| Undo::Pending {
                    value,
                    payload: Some(payload),
                });
            }
        }
        let gone: HashSet<ValueId> = values.iter().copied().collect();
        let mut graphs: Vec<GraphId> = values
            .iter()
            .map(|v| self.values[v.index()].graph)
            .collect();
        graphs.sort();
        graphs.dedup();
        for graph in graphs {
            let g = &mut self.graphs[graph.index()];
            let before = (g.initializers.clone(), g.sparse_initializers.clone());
            g.initializers.retain(|i| !gone.contains(i));
            g.sparse_initializers.retain(|i| !gone.contains(i));
            self.record(|| Undo::ConstLists {
                graph,
                initializers: before.0,
                sparse: before.1,
            });
        }
        Ok(())
    }

    /// Removes model-local function `index` (its body's nodes go with it) and renumbers the
    /// owners of the function bodies after it, so `GraphOwner::Function` keeps naming the right
    /// entry of [`Model::functions`].
    pub fn remove_function(&mut self, index: usize) -> Result<Function, InvariantError> {
        if index >= self.functions.len() {
            return Err(InvariantError(format!("no function {index}")));
        }
        let body = self.functions[index].body;
        self.take_outputs(body);
        let nodes = self.graphs[body.index()].nodes.clone();
        self.remove_nodes(&nodes)?;
        let function = self.functions.remove(index);
        for later in &self.functions[index..] {
            if let GraphOwner::Function { index: i } = &mut self.graphs[later.body.index()].owner {
                *i -= 1;
            }
        }
        if self.journal.is_some() {
            self.record(|| Undo::Function {
                index,
                function: Box::new(function.clone()),
            });
        }
        Ok(function)
    }

    /// Sets the serialization order of `graph`'s nodes; `order` must be a permutation of them.
    pub fn set_node_order(
        &mut self,
        graph: GraphId,
        order: Vec<NodeId>,
    ) -> Result<(), InvariantError> {
        let mut current = self.graphs[graph.index()].nodes.clone();
        let mut proposed = order.clone();
        current.sort();
        proposed.sort();
        if current != proposed {
            return Err(InvariantError(
                "new node order is not a permutation of the graph's nodes".into(),
            ));
        }
        let old = std::mem::replace(&mut self.graphs[graph.index()].nodes, order);
        self.record(|| Undo::NodeList { graph, nodes: old });
        Ok(())
    }

    /// Renames a value (names are for serialization; uniqueness is checked on save).
    pub fn rename_value(&mut self, value: ValueId, name: impl Into<String>) {
        let old = std::mem::replace(&mut self.values[value.index()].name, name.into());
        self.record(|| Undo::Rename { value, old });
    }

    // ---- queries ------------------------------------------------------------------------

    /// A short description for messages: `node 3 'encoder/MatMul' (MatMul)`.
    pub fn describe_node(&self, node: NodeId) -> String {
        let n = &self.nodes[node.index()];
        let op = if n.domain().is_empty() {
            n.op_type().to_owned()
        } else {
            format!("{}.{}", n.domain(), n.op_type())
        };
        let position = self.graphs[n.graph.index()]
            .nodes
            .iter()
            .position(|x| *x == node);
        let position = position.map_or_else(|| "(removed)".to_owned(), |p| p.to_string());
        format!("node {position} '{}' ({op})", n.name())
    }

    /// Whether `inner` is `outer` or nested (through node attributes) inside it.
    pub fn is_within(&self, inner: GraphId, outer: GraphId) -> bool {
        let mut graph = inner;
        loop {
            if graph == outer {
                return true;
            }
            match self.graphs[graph.index()].owner {
                GraphOwner::Node { node, .. } => graph = self.nodes[node.index()].graph,
                GraphOwner::Model | GraphOwner::Function { .. } => return false,
            }
        }
    }
    /// Live graphs, deepest nesting first (then creation order), function bodies included: the
    /// order in which a rewrite of every graph sees each subgraph finished before its parent.
    pub fn graphs_innermost_first(&self) -> Vec<GraphId> {
        let mut found: Vec<(usize, GraphId)> = Vec::new();
        let mut stack: Vec<(usize, GraphId)> = vec![(0, self.main())];
        stack.extend(self.functions.iter().map(|f| (0, f.body)));
        while let Some((depth, graph)) = stack.pop() {
            found.push((depth, graph));
            for &node in self.graph(graph).nodes() {
                stack.extend(self.node(node).subgraphs().map(|g| (depth + 1, g)));
            }
        }
        found.sort_by_key(|(depth, graph)| (std::cmp::Reverse(*depth), *graph));
        found.into_iter().map(|(_, g)| g).collect()
    }

    /// Values that nodes inside `graph` (or inside its nested subgraphs) read but that are
    /// defined outside it: the graph's outer-scope captures, in first-use order.
    pub fn captures(&self, graph: GraphId) -> Vec<ValueId> {
        let mut found = Vec::new();
        let mut stack = vec![graph];
        while let Some(g) = stack.pop() {
            for &node in &self.graphs[g.index()].nodes {
                let n = &self.nodes[node.index()];
                for value in n.inputs.iter().flatten() {
                    if !self.is_within(self.values[value.index()].graph, graph)
                        && !found.contains(value)
                    {
                        found.push(*value);
                    }
                }
                stack.extend(n.subgraphs());
            }
            for output in &self.graphs[g.index()].outputs {
                if !self.is_within(self.values[output.value.index()].graph, graph)
                    && !found.contains(&output.value)
                {
                    found.push(output.value);
                }
            }
        }
        found
    }

    /// The declared type of a value: from its graph input or output declaration, or from a
    /// `value_info` entry.
    pub fn declared_type(&self, value: ValueId) -> Option<&proto::TypeProto> {
        let v = &self.values[value.index()];
        let graph = &self.graphs[v.graph.index()];
        fn from_io(ios: &[GraphIo], value: ValueId) -> Option<&proto::TypeProto> {
            ios.iter()
                .filter(|io| io.value == value)
                .find_map(|io| io.info.as_ref()?.r#type.as_ref())
        }
        from_io(&graph.inputs, value)
            .or_else(|| {
                graph
                    .value_info
                    .iter()
                    .find(|e| e.value == Some(value))
                    .and_then(|e| e.proto.r#type.as_ref())
            })
            .or_else(|| from_io(&graph.outputs, value))
    }

    /// A map from name to value for the values defined directly in `graph`.
    pub fn names_in(&self, graph: GraphId) -> HashMap<&str, ValueId> {
        let g = &self.graphs[graph.index()];
        let mut map = HashMap::default();
        for io in &g.inputs {
            map.insert(self.values[io.value.index()].name.as_str(), io.value);
        }
        for v in g.initializers.iter().chain(&g.sparse_initializers) {
            map.insert(self.values[v.index()].name.as_str(), *v);
        }
        for node in &g.nodes {
            for v in self.nodes[node.index()].outputs.iter().flatten() {
                map.insert(self.values[v.index()].name.as_str(), *v);
            }
        }
        map
    }

    /// Live nodes of `graph` and all graphs nested in it, depth first, each graph's nodes in order.
    pub fn nodes_within(&self, graph: GraphId) -> Vec<NodeId> {
        let mut out = Vec::new();
        let mut stack = vec![graph];
        while let Some(g) = stack.pop() {
            for &node in &self.graphs[g.index()].nodes {
                out.push(node);
                let mut subs: Vec<GraphId> = self.nodes[node.index()].subgraphs().collect();
                subs.reverse();
                stack.extend(subs);
            }
        }
        out
    }

    /// The nodes of `graph` in an order where every node comes after the producers of its
    /// inputs and of the outer values its subgraphs capture; among ready nodes, the current
    /// order wins (so a sorted graph keeps its order). `Err` holds a node on a cycle.
    pub fn topological_order(&self, graph: GraphId) -> Result<Vec<NodeId>, NodeId> {
        let nodes = &self.graphs[graph.index()].nodes;
        let position: HashMap<NodeId, usize> =
            nodes.iter().enumerate().map(|(i, n)| (*n, i)).collect();
        let mut dependents: Vec<Vec<usize>> = vec![Vec::new(); nodes.len()];
        let mut pending = vec![0usize; nodes.len()];
        for (i, &node) in nodes.iter().enumerate() {
            let n = &self.nodes[node.index()];
            let mut reads: Vec<ValueId> = n.inputs.iter().flatten().copied().collect();
            for sub in n.subgraphs() {
                reads.extend(self.captures(sub));
            }
            reads.sort();
            reads.dedup();
            for value in reads {
                if let Some((producer, _)) = self.values[value.index()].producer()
                    && let Some(&p) = position.get(&producer)
                {
                    dependents[p].push(i);
                    pending[i] += 1;
                }
            }
        }
        let mut ready: std::collections::BinaryHeap<std::cmp::Reverse<usize>> = (0..nodes.len())
            .filter(|i| pending[*i] == 0)
            .map(std::cmp::Reverse)
            .collect();
        let mut order = Vec::with_capacity(nodes.len());
        while let Some(std::cmp::Reverse(i)) = ready.pop() {
            order.push(nodes[i]);
            for &d in &dependents[i] {
                pending[d] -= 1;
                if pending[d] == 0 {
                    ready.push(std::cmp::Reverse(d));
                }
            }
        }
        if order.len() == nodes.len() {
            return Ok(order);
        }
        Err((0..nodes.len())
            .find(|i| pending[*i] > 0)
            .map_or(nodes[0], |i| nodes[i]))
    }

    /// Checks every arena invariant. Loaders and passes call it in tests and debug builds.
    pub fn check(&self) -> Result<(), InvariantError> {
        let mut expected: HashMap<ValueId, Vec<Use>> = HashMap::default();
        for (gi, graph) in self.graphs.iter().enumerate() {
            let gid = GraphId::new(gi);
            for &node in &graph.nodes {
                let n = &self.nodes[node.index()];
                if n.removed || n.graph != gid {
                    return Err(InvariantError(format!(
                        "graph {gi} lists node {} that is removed or elsewhere",
                        node.index()
                    )));
                }
                for (slot, input) in n.inputs.iter().enumerate() {
                    if let Some(v) = input {
                        expected.entry(*v).or_default().push(Use::Node {
                            node,
                            input: slot as u32,
                        });
                    }
                }
                for (index, output) in n.outputs.iter().enumerate() {
                    if let Some(v) = output
                        && self.values[v.index()].def
                            != (ValueDef::Node {
                                node,
                                index: index as u32,
                            })
                    {
                        return Err(InvariantError(format!(
                            "output {index} of {} does not point back",
                            self.describe_node(node)
                        )));
                    }
                }
            }
            for (index, io) in graph.outputs.iter().enumerate() {
                expected
                    .entry(io.value)
                    .or_default()
                    .push(Use::GraphOutput {
                        graph: gid,
                        index: index as u32,
                    });
            }
        }
        for (vi, value) in self.values.iter().enumerate() {
            let id = ValueId::new(vi);
            let mut want = expected.remove(&id).unwrap_or_default();
            let mut have = value.uses.clone();
            want.sort();
            have.sort();
            if want != have {
                return Err(InvariantError(format!(
                    "use list of '{}' is stale",
                    value.name
                )));
            }
        }
        Ok(())
    }
}

/// Clears the fields the IR models itself, so they cannot disagree with it.
fn strip_graph(mut proto: proto::GraphProto) -> proto::GraphProto {
    proto.node.clear();
    proto.initializer.clear();
    proto.sparse_initializer.clear();
    proto.input.clear();
    proto.output.clear();
    proto.value_info.clear();
    proto
}

fn strip_node(mut proto: proto::NodeProto) -> proto::NodeProto {
    proto.input.clear();
    proto.output.clear();
    proto.attribute.clear();
    proto
}

fn strip_attribute(mut proto: proto::AttributeProto) -> proto::AttributeProto {
    proto.g = None;
    proto.graphs.clear();
    proto
}

#[cfg(test)]
mod tests {
    use super::*;

    fn relu_model() -> (Model, ValueId, NodeId) {
        let mut m = Model::new(proto::ModelProto::default(), proto::GraphProto::default());
        let g = m.main();
        let x = m.add_input(g, "x", None);
        let n = m.add_node(
            g,
            proto::NodeProto {
                op_type: Some("Relu".into()),
                ..Default::default()
            },
            &[Some(x)],
            &[Some("y".into())],
            vec![],
        );
        let y = m.node(n).outputs()[0].unwrap();
        m.add_output(g, y, None);
        (m, x, n)
    }

    #[test]
    fn uses_follow_mutations() {
        let (mut m, x, n) = relu_model();
        let g = m.main();
        assert_eq!(m.value(x).uses(), &[Use::Node { node: n, input: 0 }]);
        let y = m.node(n).outputs()[0].unwrap();
        let n2 = m.add_node(
            g,
            proto::NodeProto {
                op_type: Some("Neg".into()),
                ..Default::default()
            },
            &[Some(y)],
            &[Some("z".into())],
            vec![],
        );
        let z = m.node(n2).outputs()[0].unwrap();
        m.replace_all_uses(y, z);
        // replace_all_uses moves every reader, Neg's own input included.
        assert_eq!(m.node(n2).inputs()[0], Some(z));
        m.set_node_input(n2, 0, Some(y));
        m.check().unwrap();
        assert!(m.remove_node(n).is_err(), "y is still read by Neg");
        m.set_node_input(n2, 0, Some(x));
        m.remove_node(n).unwrap();
        m.check().unwrap();
        assert_eq!(m.graph(g).nodes(), &[n2]);
    }

    #[test]
    fn captures_are_outer_values_read_inside() {
        let (mut m, x, _) = relu_model();
        let g = m.main();
        let if_node = m.add_node(
            g,
            proto::NodeProto {
                op_type: Some("If".into()),
                ..Default::default()
            },
            &[Some(x)],
            &[Some("o".into())],
            vec![proto::AttributeProto {
                name: Some("then_branch".into()),
                ..Default::default()
            }],
        );
        let body = m.add_subgraph(if_node, 0, proto::GraphProto::default(), false);
        let inner = m.add_node(
            body,
            proto::NodeProto {
                op_type: Some("Identity".into()),
                ..Default::default()
            },
            &[Some(x)],
            &[Some("t".into())],
            vec![],
        );
        let t = m.node(inner).outputs()[0].unwrap();
        m.add_output(body, t, None);
        assert_eq!(m.captures(body), vec![x]);
        assert!(m.is_within(body, g));
        assert!(!m.is_within(g, body));
        m.check().unwrap();
    }
}
