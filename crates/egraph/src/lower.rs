//! Lowering one IR graph into an e-graph.
//!
//! Nodes are added in topological order, so each e-node's children exist and their facts are
//! known when it is made; a node's declared output types (`value_info`, graph outputs) refine
//! its e-class right away, before its consumers are made. The IR itself is not touched:
//! [`Lowered::origins`] remembers which IR node every lowered e-node came from, so that
//! extraction can keep the nodes no rule changed (their names, doc strings and metadata).

use rustc_hash::FxHashMap as HashMap;

use egg::Id;
use onnx_rewrite_ir::{GraphId, Model, NodeId, ValueDef, ValueId};
use smallvec::SmallVec;

use crate::analysis::{OnnxAnalysis, OnnxEGraph};
use crate::facts::{self, Limits, ValueFacts};
use crate::language::{Onnx, OpData, normalize_domain};

/// An IR node and the e-node it was lowered to.
#[derive(Debug, Clone)]
pub struct Origin {
    pub node: NodeId,
    /// The node's e-class: its value, or the tuple of its outputs.
    pub class: Id,
    /// The e-node as added (children canonical at that time).
    pub enode: Onnx,
    /// For an opaque node, the outer values its subgraphs capture, in child order.
    pub captures: Vec<ValueId>,
}

/// A lowered graph.
#[derive(Debug)]
pub struct Lowered {
    pub egraph: OnnxEGraph,
    pub graph: GraphId,
    /// The root e-class; its children are the graph outputs' classes, in order.
    pub root: Id,
    /// The graph's nodes in the order they were lowered (topological).
    pub origins: Vec<Origin>,
    /// The e-class of every value the graph defines or reads.
    pub classes: HashMap<ValueId, Id>,
    /// Declared types that contradicted inference (kept out of the analysis).
    pub notes: Vec<String>,
}

/// How to lower.
#[derive(Debug, Clone, Default)]
pub struct LowerOptions {
    pub limits: Limits,
    /// Add constant e-nodes for every class with a known small value.
    pub fold_constants: bool,
}

/// Lowers `graph` of `model`. Fails with a node on a cycle (a loaded model has none).
pub fn lower(model: &Model, graph: GraphId, options: &LowerOptions) -> Result<Lowered, NodeId> {
    let analysis = OnnxAnalysis {
        limits: options.limits,
        fold_constants: options.fold_constants,
        opsets: model
            .proto
            .opset_import
            .iter()
            .map(|o| (normalize_domain(o.domain()).to_owned(), o.version()))
            .collect(),
        ..OnnxAnalysis::default()
    };
    let mut lowered = Lowered {
        egraph: OnnxEGraph::new(analysis),
        graph,
        root: Id::from(0usize),
        origins: Vec::new(),
        classes: HashMap::default(),
        notes: Vec::new(),
    };
    let order = model.topological_order(graph)?;
    for node in order {
        lowered.lower_node(model, node);
    }
    let outputs: SmallVec<[Id; 4]> = model
        .graph(graph)
        .outputs()
        .iter()
        .map(|io| lowered.class_of(model, io.value))
        .collect();
    lowered.root = lowered.egraph.add(Onnx::Root(outputs));
    lowered.egraph.rebuild();
    Ok(lowered)
}

impl Lowered {
    /// The e-class of a value, adding a leaf for values the graph does not compute.
    fn class_of(&mut self, model: &Model, value: ValueId) -> Id {
        if let Some(id) = self.classes.get(&value) {
            return *id;
        }
        let analysis = &mut self.egraph.analysis;
        let facts = facts::leaf_facts(model, value, analysis.limits, &mut analysis.symbols);
        self.egraph.analysis.leaves.insert(value, facts);
        let v = model.value(value);
        self.egraph
            .analysis
            .leaf_names
            .insert(value, v.name().to_owned());
        if v.def() == ValueDef::Initializer
            && let Some(tensor) = v.initializer()
        {
            self.egraph
                .analysis
                .leaf_tensors
                .insert(value, tensor.clone());
        }
        let id = self.egraph.add(Onnx::Leaf(value));
        self.classes.insert(value, id);
        id
    }

    fn lower_node(&mut self, model: &Model, node: NodeId) {
        let n = model.node(node);
        let mut children: SmallVec<[Id; 3]> = n
            .inputs()
            .iter()
            .map(|input| match input {
                Some(value) => self.class_of(model, *value),
                None => self.egraph.add(Onnx::Missing),
            })
            .collect();
        let subgraphs: Vec<GraphId> = n.subgraphs().collect();
        let mut captures: Vec<ValueId> =
            subgraphs.iter().flat_map(|g| model.captures(*g)).collect();
        captures.sort();
        captures.dedup();
        for value in &captures {
            let class = self.class_of(model, *value);
            children.push(class);
        }

        let domain = normalize_domain(n.domain());
        let mut attributes: Vec<_> = n.attributes.iter().map(|a| a.proto.clone()).collect();
        attributes.sort_by(|a, b| a.name().cmp(b.name()));
        let data = OpData {
            domain: domain.to_owned(),
            op_type: n.op_type().to_owned(),
            overload: n.proto.overload().to_owned(),
            attributes,
            inputs: n.inputs().len(),
            outputs: n.outputs().iter().map(Option::is_some).collect(),
            identity: facts::identified_by_node(model, node).then_some(node),
        };
        let is_tuple = data.is_tuple();
        let key = self.egraph.analysis.ops.intern(data);
        let enode = Onnx::Op(key, children);
        let class = self.egraph.add(enode.clone());
        self.origins.push(Origin {
            node,
            class,
            enode,
            captures,
        });

        for (slot, output) in n.outputs().iter().enumerate() {
            let Some(value) = output else { continue };
            let id = if is_tuple {
                self.egraph.add(Onnx::Proj(slot as u32, [class]))
            } else {
                class
            };
            self.classes.insert(*value, id);
            if let Some(ty) = model.declared_type(*value) {
                let declared = ValueFacts::from_type(ty, &mut self.egraph.analysis.symbols);
                if let Err(conflict) = OnnxAnalysis::refine(&mut self.egraph, id, &declared) {
                    self.notes.push(format!("declared type of '{}' disagrees with inference ({conflict}); inference kept", model.value(*value).name()));
                }
            }
        }
    }
}
