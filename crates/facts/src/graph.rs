//! What inference knows about the values of one graph: dtype, symbolic shape, small constants,
//! the elements of shape tensors. Nodes are inferred in topological order, each from its
//! inputs' facts, and a value's declared type (`value_info`, graph outputs) refines it before
//! its readers are inferred. Nothing is rewritten: this is the reader for passes that decide
//! outside the e-graph (lower-if, moe-dense, fp16) what to rewrite, and what the e-graph's
//! analysis computes for each e-class of a freshly lowered graph.
//!
//! Two nodes that apply the same pure operator to the same inputs share their facts, as they
//! share an e-class in the e-graph: a data-dependent dim (`NonZero`'s count) is then the same
//! symbol for both.

use std::sync::Arc;

use onnx_rewrite_ir::{GraphId, GraphOwner, Model, NodeId, ValueDef, ValueId};
use onnx_rewrite_ops::Effect;
use onnx_rewrite_proto::TensorProto;
use prost::Message;
use rustc_hash::FxHashMap as HashMap;

use crate::{
    ConstTensor, DataType, Dim, DimValues, Limits, OpInfo, Shape, SymId, Symbols, ValueFacts,
};

/// The facts of one graph.
pub struct GraphFacts {
    /// Each value's slot in `facts`; values that share facts share a slot.
    slots: HashMap<ValueId, usize>,
    facts: Vec<ValueFacts>,
    symbols: Symbols,
    limits: Limits,
    /// Declared types that contradicted inference (inference kept).
    notes: Vec<String>,
}

/// Domains whose operators are known to be pure functions; any other domain (custom ops,
/// model-local functions) is identified by node, never shared.
const KNOWN_DOMAINS: &[&str] = &[
    "",
    "ai.onnx.ml",
    "com.microsoft",
    "ai.onnx.preview.training",
];

/// `""` for the default domain, as `ai.onnx` means the same.
pub fn normalize_domain(domain: &str) -> &str {
    if domain == "ai.onnx" { "" } else { domain }
}

/// Whether `node`'s result is not a function of its inputs and attributes alone, so that two
/// such nodes must never be taken for each other: a random op, an op of an unknown domain, or
/// one holding subgraphs. Dropout is random only in training mode, which needs its
/// `training_mode` input; any opset's answer counts, so a model whose import disagrees with
/// its ops is still never merged.
pub fn identified_by_node(model: &Model, node: NodeId) -> bool {
    let n = model.node(node);
    let domain = normalize_domain(n.domain());
    let impure = !KNOWN_DOMAINS.contains(&domain)
        || match onnx_rewrite_ops::worst_effect(domain, n.op_type()) {
            Some(Effect::Random) => true,
            Some(Effect::RandomInTraining) => n.inputs().get(2).copied().flatten().is_some(),
            Some(Effect::Pure) | None => false,
        };
    impure || n.subgraphs().next().is_some()
}

/// Facts of a value the graph reads but does not compute: an initializer's contents, a sparse
/// initializer's dims, else the declared type.
pub fn leaf_facts(model: &Model, value: ValueId, limits: Limits, syms: &mut Symbols) -> ValueFacts {
    let v = model.value(value);
    let declared = model
        .declared_type(value)
        .map(|ty| ValueFacts::from_type(ty, syms));
    // A graph input's default can be overridden at run time: only its declared type holds.
    if v.def() != ValueDef::Input
        && let Some(tensor) = v.initializer()
    {
        return ValueFacts::of_tensor(tensor, limits);
    }
    if let Some(sparse) = v.sparse_initializer() {
        let dtype = sparse
            .values
            .as_ref()
            .and_then(|t| DataType::try_from(t.data_type()).ok());
        return ValueFacts {
            dtype,
            shape: Some(Shape::new(sparse.dims.iter().map(|d| Dim::Known(*d)))),
            ..ValueFacts::default()
        };
    }
    declared.unwrap_or_default()
}

impl ValueFacts {
    /// Facts of a tensor: its dtype, its (known) dims and, when small, its value.
    pub fn of_tensor(tensor: &TensorProto, limits: Limits) -> ValueFacts {
        let dtype = DataType::try_from(tensor.data_type()).ok();
        match ConstTensor::from_proto(tensor, limits.max_const_elements) {
            Some(constant) => ValueFacts::of_constant(constant),
            None => ValueFacts {
                dtype,
                shape: Some(Shape::new(tensor.dims.iter().map(|d| Dim::Known(*d)))),
                ..ValueFacts::default()
            },
        }
    }
}

/// A byte string two nodes share exactly when they apply the same operator, with the same
/// attributes, to the same inputs (`inputs`: the inputs' slots, `None` for a missing one).
fn application_key(model: &Model, node: NodeId, inputs: &[Option<usize>]) -> Vec<u8> {
    let n = model.node(node);
    let mut bytes = Vec::new();
    let mut push = |s: &[u8]| {
        bytes.extend_from_slice(&(s.len() as u64).to_le_bytes());
        bytes.extend_from_slice(s);
    };
    push(normalize_domain(n.domain()).as_bytes());
    push(n.op_type().as_bytes());
    push(n.proto.overload().as_bytes());
    let slots: Vec<u8> = inputs
        .iter()
        .flat_map(|s| s.map_or(u64::MAX, |s| s as u64).to_le_bytes())
        .collect();
    push(&slots);
    let produced: Vec<u8> = n.outputs().iter().map(|o| u8::from(o.is_some())).collect();
    push(&produced);
    let mut attributes: Vec<_> = n.attributes.iter().map(|a| &a.proto).collect();
    attributes.sort_by(|a, b| a.name().cmp(b.name()));
    for attribute in attributes {
        push(&attribute.encode_to_vec());
    }
    bytes
}

impl GraphFacts {
    /// Infers `graph`; `Err` holds a node on a cycle. Values a subgraph captures are known by
    /// their declared types only (see [`GraphFacts::with_captures`]).
    pub fn of(model: &Model, graph: GraphId) -> Result<Self, NodeId> {
        Self::infer(model, graph, None)
    }

    /// [`GraphFacts::of`], with what the enclosing graphs know of the values a subgraph
    /// captures, and facts for the graph's unread constants too. It infers every enclosing
    /// graph again: for the graphs a pass edits one at a time.
    pub fn with_captures(model: &Model, graph: GraphId) -> Result<Self, NodeId> {
        Self::nested(model, graph, 0)
    }

    fn nested(model: &Model, graph: GraphId, depth: usize) -> Result<Self, NodeId> {
        let outer = match model.graph(graph).owner() {
            GraphOwner::Node { node, .. }
                if depth < MAX_NESTING && !model.captures(graph).is_empty() =>
            {
                Some(Self::nested(model, model.node(node).graph(), depth + 1)?)
            }
            _ => None,
        };
        let mut facts = Self::infer(model, graph, outer)?;
        let g = model.graph(graph);
        for &v in g.initializers().iter().chain(g.sparse_initializers()) {
            facts.add_leaf(model, v);
        }
        Ok(facts)
    }

    /// Infers every node of `graph` in topological order. A captured value's facts are what
    /// `outer` (the enclosing graph's facts) knows of it, when that agrees with its declared type.
    fn infer(model: &Model, graph: GraphId, outer: Option<Self>) -> Result<Self, NodeId> {
        let mut this = Self {
            slots: HashMap::default(),
            facts: Vec::new(),
            symbols: Symbols::default(),
            limits: Limits::default(),
            notes: Vec::new(),
        };
        let mut capture = outer.map(|outer| Capture {
            outer,
            translation: HashMap::default(),
        });
        let opsets: HashMap<&str, i64> = model
            .proto
            .opset_import
            .iter()
            .map(|o| (normalize_domain(o.domain()), o.version()))
            .collect();
        let mut applications: HashMap<Vec<u8>, Vec<Option<usize>>> = HashMap::default();
        for node in model.topological_order(graph)? {
            let n = model.node(node);
            let inputs: Vec<Option<usize>> = n
                .inputs()
                .iter()
                .map(|input| input.map(|v| this.slot_of(model, graph, v, &mut capture)))
                .collect();
            let mut captures: Vec<ValueId> =
                n.subgraphs().flat_map(|g| model.captures(g)).collect();
            captures.sort();
            captures.dedup();
            for value in captures {
                this.slot_of(model, graph, value, &mut capture);
            }
            let key =
                (!identified_by_node(model, node)).then(|| application_key(model, node, &inputs));
            let shared = key.as_ref().and_then(|k| applications.get(k)).cloned();
            let slots = match shared {
                Some(slots) => slots,
                None => {
                    let slots = this.apply(model, node, &inputs, &opsets);
                    if let Some(key) = key {
                        applications.insert(key, slots.clone());
                    }
                    slots
                }
            };
            for (output, slot) in n.outputs().iter().zip(slots) {
                let (Some(value), Some(slot)) = (output, slot) else {
                    continue;
                };
                this.slots.insert(*value, slot);
                if let Some(ty) = model.declared_type(*value) {
                    let declared = ValueFacts::from_type(ty, &mut this.symbols);
                    let mut refined = this.facts[slot].clone();
                    match refined.merge(&declared, &mut this.symbols) {
                        Ok(_) => this.facts[slot] = refined,
                        Err(conflict) => this.notes.push(format!(
                            "declared type of '{}' disagrees with inference ({conflict}); inference kept",
                            model.value(*value).name()
                        )),
                    }
                }
            }
        }
        for io in model.graph(graph).outputs() {
            this.slot_of(model, graph, io.value, &mut capture);
        }
        Ok(this)
    }

    /// The facts of `node`'s outputs, each in a new slot (`None` for a slot it does not produce).
    fn apply(
        &mut self,
        model: &Model,
        node: NodeId,
        inputs: &[Option<usize>],
        opsets: &HashMap<&str, i64>,
    ) -> Vec<Option<usize>> {
        let n = model.node(node);
        let domain = normalize_domain(n.domain());
        let input_facts: Vec<Option<&ValueFacts>> =
            inputs.iter().map(|s| s.map(|s| &self.facts[s])).collect();
        let attributes: Vec<_> = {
            let mut a: Vec<_> = n.attributes.iter().map(|a| a.proto.clone()).collect();
            a.sort_by(|x, y| x.name().cmp(y.name()));
            a
        };
        let info = OpInfo {
            domain,
            op_type: n.op_type(),
            attributes: &attributes,
            opset: opsets.get(domain).copied().unwrap_or(0),
            outputs: n.outputs().len(),
        };
        let mut outputs = crate::infer(&info, &input_facts, &mut self.symbols, &self.limits);
        outputs.resize_with(n.outputs().len(), ValueFacts::default);
        n.outputs()
            .iter()
            .zip(outputs)
            .map(|(produced, facts)| produced.map(|_| self.push(facts)))
            .collect()
    }

    fn push(&mut self, facts: ValueFacts) -> usize {
        self.facts.push(facts);
        self.facts.len() - 1
    }

    /// The slot of a value `graph`'s nodes read, making a leaf for one the graph does not compute.
    fn slot_of(
        &mut self,
        model: &Model,
        graph: GraphId,
        value: ValueId,
        capture: &mut Option<Capture>,
    ) -> usize {
        if let Some(slot) = self.slots.get(&value) {
            return *slot;
        }
        let mut facts = leaf_facts(model, value, self.limits, &mut self.symbols);
        if !model.is_within(model.value(value).graph(), graph)
            && let Some(capture) = capture
        {
            facts = capture.bring(value, facts, &mut self.symbols);
        }
        let slot = self.push(facts);
        self.slots.insert(value, slot);
        slot
    }

    /// Makes sure `value` has facts, when the graph can see it but does not read it.
    pub fn add_leaf(&mut self, model: &Model, value: ValueId) {
        if self.slots.contains_key(&value) {
            return;
        }
        let v = model.value(value);
        let facts = match (v.def(), v.initializer()) {
            (ValueDef::Initializer, Some(tensor)) => ValueFacts::of_tensor(tensor, self.limits),
            _ => model
                .declared_type(value)
                .map(|ty| ValueFacts::from_type(ty, &mut self.symbols))
                .unwrap_or_default(),
        };
        let slot = self.push(facts);
        self.slots.insert(value, slot);
    }

    /// The facts of a value the graph defines or reads (`None` for any other value).
    pub fn get(&self, value: ValueId) -> Option<&ValueFacts> {
        self.facts.get(*self.slots.get(&value)?)
    }

    pub fn syms(&mut self) -> &mut Symbols {
        &mut self.symbols
    }

    /// Declared types that contradicted inference (inference was kept).
    pub fn notes(&self) -> &[String] {
        &self.notes
    }

    pub fn dtype(&self, value: ValueId) -> Option<DataType> {
        self.get(value)?.dtype
    }

    /// The shape, every dim resolved to its canonical form.
    pub fn shape(&mut self, value: ValueId) -> Option<Shape> {
        let shape = self.get(value)?.shape.clone()?;
        Some(shape.resolved(self.syms()))
    }

    pub fn rank(&self, value: ValueId) -> Option<usize> {
        self.get(value)?.rank()
    }

    pub fn constant(&self, value: ValueId) -> Option<Arc<ConstTensor>> {
        self.get(value)?.constant.clone()
    }

    /// The elements of a constant integer tensor.
    pub fn ints(&self, value: ValueId) -> Option<Vec<i64>> {
        self.constant(value)?.to_i64s()
    }

    /// The elements of an integer tensor as dims, when each one is known or is a dimension of
    /// some tensor (a shape computed from shapes, never from data).
    pub fn dims(&mut self, value: ValueId) -> Option<Vec<Dim>> {
        let values: DimValues = self.get(value)?.dim_values()?;
        values
            .into_iter()
            .map(|d| d.map(|d| self.syms().resolve(d)))
            .collect()
    }

    /// Whether two dims are provably equal.
    pub fn same(&mut self, a: Dim, b: Dim) -> bool {
        self.syms().same(a, b)
    }

    /// The single element of a one-element integer constant.
    pub fn int(&self, value: ValueId) -> Option<i64> {
        self.constant(value)?.scalar_as_i64()
    }

    /// The dims of `value`'s shape, each in canonical form.
    pub fn shape_dims(&mut self, value: ValueId) -> Option<Vec<Dim>> {
        Some(self.shape(value)?.dims().to_vec())
    }

    /// Dim `axis` of `value`'s shape (negative counts from the end).
    pub fn dim(&mut self, value: ValueId, axis: i64) -> Option<Dim> {
        let dims = self.shape_dims(value)?;
        let rank = i64::try_from(dims.len()).ok()?;
        let axis = if axis < 0 { axis + rank } else { axis };
        dims.get(usize::try_from(axis).ok()?).copied()
    }

    /// Dim `axis` of `value`, when it is a known number.
    pub fn known_dim(&mut self, value: ValueId, axis: i64) -> Option<i64> {
        self.dim(value, axis)?.known()
    }

    /// Whether two values provably have the same shape.
    pub fn same_shape(&mut self, a: ValueId, b: ValueId) -> bool {
        match (self.shape_dims(a), self.shape_dims(b)) {
            (Some(x), Some(y)) => {
                x.len() == y.len() && x.iter().zip(&y).all(|(p, q)| self.same(*p, *q))
            }
            _ => false,
        }
    }

    /// Whether `a <= b` holds for every value of their symbols (a dim is never negative).
    pub fn at_most(&mut self, a: Dim, b: Dim) -> bool {
        if self.same(a, b) {
            return true;
        }
        let (a, b) = (self.syms().resolve(a), self.syms().resolve(b));
        match (a, b) {
            (Dim::Known(x), Dim::Known(y)) => x <= y,
            (Dim::Known(x), Dim::Sym(_)) => x <= 0,
            (Dim::Sym(_), _) => false,
        }
    }

    /// The dim for humans: its value, its `dim_param` name, or `?`.
    pub fn show(&mut self, d: Dim) -> String {
        self.syms().display(d).to_string()
    }

    pub fn show_shape(&mut self, shape: &Shape) -> String {
        let dims: Vec<String> = shape.dims().iter().map(|d| self.show(*d)).collect();
        format!("[{}]", dims.join(","))
    }
}

/// Graphs inferred at most once each, on first need: for a reader that asks about values of
/// several graphs of one model, unedited between its questions.
#[derive(Default)]
pub struct PerGraph(HashMap<GraphId, Option<GraphFacts>>);

impl PerGraph {
    /// The facts of `graph` (`None` when it has a cycle).
    pub fn of(&mut self, model: &Model, graph: GraphId) -> Option<&mut GraphFacts> {
        self.0
            .entry(graph)
            .or_insert_with(|| GraphFacts::of(model, graph).ok())
            .as_mut()
    }
}

/// Enclosing graphs whose facts are brought into a subgraph's, at most.
const MAX_NESTING: usize = 16;

/// What the enclosing graph knows of the values a subgraph captures.
struct Capture {
    outer: GraphFacts,
    /// The outer graph's symbols, as mapped into the subgraph's.
    translation: HashMap<SymId, Dim>,
}

impl Capture {
    /// `declared` (the subgraph's own facts of a captured value) refined by the outer graph's.
    fn bring(&mut self, value: ValueId, declared: ValueFacts, to: &mut Symbols) -> ValueFacts {
        let Some(known) = self.outer.get(value).cloned() else {
            return declared;
        };
        let brought = translate(&known, &mut self.outer.symbols, to, &mut self.translation);
        let mut refined = declared.clone();
        match refined.merge(&brought, to) {
            Ok(_) => refined,
            Err(_) => declared,
        }
    }
}

/// `facts` of another analysis, its symbols mapped into `to`: a named dim to the symbol of that
/// name, an anonymous one to a fresh symbol (the same one each time it recurs).
fn translate(
    facts: &ValueFacts,
    from: &mut Symbols,
    to: &mut Symbols,
    map: &mut HashMap<SymId, Dim>,
) -> ValueFacts {
    let mut dim = |d: Dim| match from.resolve(d) {
        Dim::Known(k) => Dim::Known(k),
        Dim::Sym(s) => *map.entry(s).or_insert_with(|| match from.name_of(s) {
            Some(name) => Dim::Sym(to.named(&name)),
            None => to.fresh_dim(),
        }),
    };
    ValueFacts {
        dtype: facts.dtype,
        shape: facts
            .shape
            .as_ref()
            .map(|s| Shape::new(s.dims().iter().map(|d| dim(*d)).collect::<Vec<_>>())),
        constant: facts.constant.clone(),
        shape_value: facts
            .shape_value
            .as_ref()
            .map(|v| v.iter().map(|d| d.map(&mut dim)).collect()),
    }
}
