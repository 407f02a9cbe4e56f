//! Reading one graph: producers, attributes, constants and ancestry, for the detectors; which
//! graphs the pass looks at, and which values a graph can read.

use onnx_rewrite_facts::Attrs;
use onnx_rewrite_ir::{GraphId, GraphOwner, Model, Node, NodeId, ValueId};
use rustc_hash::FxHashSet as HashSet;

use onnx_rewrite_facts::GraphFacts;

/// Graphs the pass looks at: the main graph and node subgraphs (function bodies hold no
/// initializers to put expert weights in; `inline-functions` opens them first).
pub(crate) fn rewritable_graphs(model: &Model) -> Vec<GraphId> {
    model
        .graph_ids()
        .filter(|g| !matches!(model.graph(*g).owner(), GraphOwner::Function { .. }))
        .filter(|g| {
            // Live graphs only: a removed node's subgraphs stay allocated.
            match model.graph(*g).owner() {
                GraphOwner::Node { node, .. } => !model.node(node).is_removed(),
                _ => true,
            }
        })
        .collect()
}

/// Whether a value defined in `defined` can be read by a node of `graph`.
pub(crate) fn visible(model: &Model, defined: GraphId, graph: GraphId) -> bool {
    model.is_within(graph, defined)
}

/// One graph of a model, with the analysis' facts about its values.
pub(crate) struct Scope<'m> {
    pub model: &'m Model,
    pub graph: GraphId,
    pub facts: GraphFacts,
}

impl<'m> Scope<'m> {
    pub(crate) fn new(model: &'m Model, graph: GraphId) -> Result<Self, NodeId> {
        Ok(Self {
            model,
            graph,
            facts: GraphFacts::of(model, graph)?,
        })
    }

    /// The node producing `value`, if a node does.
    pub(crate) fn producer(&self, value: ValueId) -> Option<&'m Node> {
        let (node, _) = self.model.value(value).producer()?;
        Some(self.model.node(node))
    }

    pub(crate) fn producer_id(&self, value: ValueId) -> Option<NodeId> {
        self.model.value(value).producer().map(|(n, _)| n)
    }

    /// Whether `node` reads only its inputs' shapes (the op table's `Reads::Shape`: Shape,
    /// Size, the `*Like` generators): ancestry of data stops there.
    fn shape_only(&self, node: &Node) -> bool {
        let opset = self.model.opset(node.domain()).unwrap_or(i64::MAX);
        onnx_rewrite_ops::reads(node.domain(), node.op_type(), opset)
            == onnx_rewrite_ops::Reads::Shape
    }

    /// Which output of its producer `value` is.
    pub(crate) fn output_index(&self, value: ValueId) -> Option<u32> {
        self.model.value(value).producer().map(|(_, i)| i)
    }

    /// The producer of `value` when it is the default-domain operator `op_type`.
    pub(crate) fn op(&self, value: ValueId, op_type: &str) -> Option<&'m Node> {
        self.producer(value)
            .filter(|n| n.domain().is_empty() && n.op_type() == op_type)
    }

    /// Strips `Identity` nodes.
    pub(crate) fn through_identity(&self, mut value: ValueId) -> ValueId {
        while let Some(n) = self.op(value, "Identity") {
            match input(n, 0) {
                Some(v) => value = v,
                None => break,
            }
        }
        value
    }

    /// Whether `value` provably holds only zeros: `ConstantOfShape` of a zero (or of the
    /// default value), an `Expand` of a zero constant, or a small constant of zeros.
    pub(crate) fn is_zeros(&self, value: ValueId) -> bool {
        let value = self.through_identity(value);
        if let Some(c) = self.facts.constant(value) {
            return c.data.to_f64s().iter().all(|x| *x == 0.0) && !c.is_empty();
        }
        let Some(n) = self.producer(value) else {
            return false;
        };
        if !n.domain().is_empty() {
            return false;
        }
        match n.op_type() {
            "ConstantOfShape" => match Attrs(&attribute_protos(n)).tensor("value") {
                Ok(None) => true,
                Ok(Some(t)) => onnx_rewrite_facts::ConstTensor::from_proto(t, 1)
                    .is_some_and(|c| c.data.to_f64s().iter().all(|x| *x == 0.0)),
                Err(_) => false,
            },
            "Expand" => input(n, 0).is_some_and(|v| {
                self.facts
                    .constant(v)
                    .is_some_and(|c| !c.is_empty() && c.data.to_f64s().iter().all(|x| *x == 0.0))
            }),
            _ => false,
        }
    }

    /// Whether `value` is computed (in this graph) from `target`'s data (reads of its shape
    /// alone do not count).
    pub(crate) fn depends_on(&self, value: ValueId, target: ValueId) -> bool {
        self.find_ancestor(value, &mut |v| v == target).is_some()
    }

    /// The first ancestor value of `value` (itself included, breadth first) that `wanted`
    /// accepts; the walk stays inside this graph's nodes.
    pub(crate) fn find_ancestor(
        &self,
        value: ValueId,
        wanted: &mut dyn FnMut(ValueId) -> bool,
    ) -> Option<ValueId> {
        let mut seen: HashSet<ValueId> = HashSet::default();
        let mut queue = std::collections::VecDeque::from([value]);
        while let Some(v) = queue.pop_front() {
            if !seen.insert(v) {
                continue;
            }
            if wanted(v) {
                return Some(v);
            }
            if let Some(n) = self.producer(v)
                && !self.shape_only(n)
            {
                queue.extend(n.inputs().iter().flatten().copied());
            }
        }
        None
    }

    /// Every node `value` is computed from that `wanted` accepts, without walking past them.
    pub(crate) fn ancestor_nodes(
        &self,
        value: ValueId,
        wanted: &dyn Fn(&Node) -> bool,
    ) -> Vec<NodeId> {
        let mut seen: HashSet<ValueId> = HashSet::default();
        let mut found = Vec::new();
        let mut stack = vec![value];
        while let Some(v) = stack.pop() {
            if !seen.insert(v) {
                continue;
            }
            let Some(id) = self.producer_id(v) else {
                continue;
            };
            let n = self.model.node(id);
            if wanted(n) {
                if !found.contains(&id) {
                    found.push(id);
                }
                continue;
            }
            if self.shape_only(n) {
                continue;
            }
            stack.extend(n.inputs().iter().flatten().copied());
        }
        found.sort();
        found
    }
}

/// Input `i` of `node`, when present.
pub(crate) fn input(node: &Node, i: usize) -> Option<ValueId> {
    node.inputs().get(i).copied().flatten()
}

/// Output `i` of `node`, when produced.
pub(crate) fn output(node: &Node, i: usize) -> Option<ValueId> {
    node.outputs().get(i).copied().flatten()
}

/// The attribute protos of a node (for [`Attrs`]).
pub(crate) fn attribute_protos(node: &Node) -> Vec<onnx_rewrite_proto::AttributeProto> {
    node.attributes.iter().map(|a| a.proto.clone()).collect()
}

/// An int attribute, `default` when absent; `None` when unusable.
pub(crate) fn int_attr(node: &Node, name: &str, default: i64) -> Option<i64> {
    node.attribute(name).map_or(Some(default), |a| {
        Attrs(std::slice::from_ref(&a.proto)).int_or(name, default)
    })
}

/// An ints attribute, if present and usable.
pub(crate) fn ints_attr(node: &Node, name: &str) -> Option<Vec<i64>> {
    let a = node.attribute(name)?;
    Attrs(std::slice::from_ref(&a.proto))
        .ints(name)
        .ok()
        .flatten()
        .map(<[i64]>::to_vec)
}

/// A float attribute, `default` when absent; `None` when unusable.
pub(crate) fn float_attr(node: &Node, name: &str, default: f32) -> Option<f32> {
    match node.attribute(name) {
        None => Some(default),
        Some(a) => Attrs(std::slice::from_ref(&a.proto))
            .float(name)
            .ok()
            .map(|v| v.unwrap_or(default)),
    }
}

/// A string attribute, if present and usable.
pub(crate) fn string_attr(node: &Node, name: &str) -> Option<String> {
    let a = node.attribute(name)?;
    Attrs(std::slice::from_ref(&a.proto))
        .string(name)
        .ok()
        .flatten()
        .map(|s| String::from_utf8_lossy(s).into_owned())
}
