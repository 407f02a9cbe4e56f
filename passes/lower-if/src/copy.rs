//! Copying a graph body (an `If` branch, a function body) into another graph.
//!
//! Values are connected by id, so a copied node reads what the [`ValueMap`] says its source read,
//! and a value the map does not know is an outer value the copy reads as it is (a branch's
//! captures resolve by id). Every value and node defined by the copy, nested subgraphs included,
//! gets a name that is free in the destination's scope tree. Attributes that reference an
//! attribute of the function being inlined (`ref_attr_name`) are bound on the way.
//!
//! The source is left as it was: the caller removes it (an inlined `If`) or keeps it (a function
//! called again elsewhere). A copy is an edit like any other: the caller opens a checkpoint (a
//! [`onnx_rewrite_ir::edit::Transaction`]) before copying, and rolls it back to undo the copy,
//! a partial one that failed included.
//!
//! The source graph's own `value_info` is not copied: its `dim_param`s name dims of the scope
//! it came from, and the analysis of the destination infers those types anyway. Subgraphs
//! nested in the copy keep theirs (their scope moves with them).

use std::collections::BTreeMap;

use rustc_hash::FxHashMap as HashMap;

use onnx_rewrite_ir::proto::AttributeProto;
use onnx_rewrite_ir::{GraphId, Model, NodeId, ValueDef, ValueId, ValueInfoEntry};

use onnx_rewrite_ir::edit::Names;

/// Source value → value in the destination scope; `None` is a missing optional value.
pub(crate) type ValueMap = HashMap<ValueId, Option<ValueId>>;

/// The attributes a function call binds: name → value (the call's, else the default).
pub(crate) type AttributeEnv = BTreeMap<String, AttributeProto>;

/// Subgraphs nested deeper than this are refused rather than copied by a deep recursion.
const MAX_NESTING: usize = 64;

#[derive(Debug, thiserror::Error)]
pub(crate) enum CopyError {
    #[error("the nodes of the {0} form a cycle")]
    Cycle(String),
    #[error("subgraphs are nested more than {MAX_NESTING} deep")]
    TooDeep,
    #[error("output '{0}' of a subgraph is a missing optional value")]
    MissingOutput(String),
    #[error(transparent)]
    Invariant(#[from] onnx_rewrite_ir::InvariantError),
}

/// What a copy created.
#[derive(Debug, Default)]
pub(crate) struct Copied {
    /// Copies of the source graph's nodes, in the destination graph, in topological order.
    pub nodes: Vec<NodeId>,
    /// Every node created, those inside copied subgraphs included.
    pub all_nodes: Vec<NodeId>,
    /// (source, copy) for every value the copy defines directly in the destination graph.
    pub values: Vec<(ValueId, ValueId)>,
    /// (source, copy) for every value the copy defines, nested subgraphs included.
    pub all_values: Vec<(ValueId, ValueId)>,
    /// (source, copy) for every node the copy creates, nested subgraphs included.
    pub all_node_pairs: Vec<(NodeId, NodeId)>,
    /// The source graph's outputs as values of the destination scope (`None`: missing).
    pub outputs: Vec<Option<ValueId>>,
}

impl Copied {
    /// Whether `value` was defined by this copy in the destination graph.
    pub(crate) fn defines(&self, value: ValueId) -> bool {
        self.values.iter().any(|(_, c)| *c == value)
    }

    /// Every value the copy defines directly in the destination graph (where what it left
    /// unread is swept from).
    pub(crate) fn defined(&self) -> impl Iterator<Item = ValueId> + '_ {
        self.values.iter().map(|(_, c)| *c)
    }
}

/// Copies the initializers and nodes of `source` into `dest`. Values of `source` read before
/// they are defined (its inputs, for a function body) must be in `map`. On an error the copy
/// may be partial: the caller rolls back the checkpoint it opened before copying.
pub(crate) fn copy_body(
    model: &mut Model,
    source: GraphId,
    dest: GraphId,
    map: &mut ValueMap,
    names: &mut Names,
    env: Option<&AttributeEnv>,
) -> Result<Copied, CopyError> {
    let mut copier = Copier {
        model,
        map,
        names,
        env,
        out: Copied::default(),
    };
    copier.body(source, dest)?;
    let outputs: Vec<Option<ValueId>> = copier
        .model
        .graph(source)
        .outputs()
        .iter()
        .map(|io| resolve(copier.map, io.value))
        .collect();
    copier.out.outputs = outputs;
    Ok(copier.out)
}

struct Copier<'a> {
    model: &'a mut Model,
    map: &'a mut ValueMap,
    names: &'a mut Names,
    env: Option<&'a AttributeEnv>,
    out: Copied,
}

impl Copier<'_> {
    fn body(&mut self, source: GraphId, dest: GraphId) -> Result<(), CopyError> {
        self.constants(source, dest, true)?;
        let order = self
            .model
            .topological_order(source)
            .map_err(|_| CopyError::Cycle("graph being copied".into()))?;
        for node in order {
            self.node(node, dest, 0, true)?;
        }
        Ok(())
    }

    /// Copies `source`'s initializers (dense, then sparse) into `dest`; inputs with a default
    /// are copied with the inputs.
    fn constants(&mut self, source: GraphId, dest: GraphId, top: bool) -> Result<(), CopyError> {
        let dense: Vec<ValueId> = self.model.graph(source).initializers().to_vec();
        for value in dense {
            if self.model.value(value).def() != ValueDef::Initializer {
                continue;
            }
            let Some(tensor) = self.model.value(value).initializer().cloned() else {
                continue;
            };
            let base = self.model.value(value).name().to_owned();
            let name = self.names.value(&base);
            let copy = self.model.add_initializer(dest, name, tensor);
            self.defined(value, copy, top);
        }
        let sparse: Vec<ValueId> = self.model.graph(source).sparse_initializers().to_vec();
        for value in sparse {
            let Some(tensor) = self.model.value(value).sparse_initializer().cloned() else {
                continue;
            };
            let base = self.model.value(value).name().to_owned();
            let name = self.names.value(&base);
            let copy = self.model.add_sparse_initializer(dest, name, tensor);
            self.defined(value, copy, top);
        }
        Ok(())
    }

    fn defined(&mut self, source: ValueId, copy: ValueId, top: bool) {
        self.map.insert(source, Some(copy));
        self.out.all_values.push((source, copy));
        if top {
            self.out.values.push((source, copy));
        }
    }

    fn node(
        &mut self,
        source: NodeId,
        dest: GraphId,
        depth: usize,
        top: bool,
    ) -> Result<NodeId, CopyError> {
        let n = self.model.node(source).clone();
        let mut inputs: Vec<Option<ValueId>> = n
            .inputs()
            .iter()
            .map(|i| i.and_then(|v| resolve(self.map, v)))
            .collect();
        // Trailing inputs left out by a call are simply absent.
        while inputs.last() == Some(&None) {
            inputs.pop();
        }
        let mut header = n.proto.clone();
        if !n.name().is_empty() {
            header.name = Some(self.names.node(n.name()));
        }
        let mut attributes = Vec::with_capacity(n.attributes.len());
        let mut graphs: Vec<(usize, Option<GraphId>, Vec<GraphId>)> = Vec::new();
        for attribute in &n.attributes {
            let Some(bound) = bind(self.env, &attribute.proto) else {
                continue;
            };
            if attribute.graph.is_some() || !attribute.graphs.is_empty() {
                graphs.push((attributes.len(), attribute.graph, attribute.graphs.clone()));
            }
            attributes.push(bound);
        }
        let mut outputs: Vec<Option<String>> = Vec::with_capacity(n.outputs().len());
        for o in n.outputs() {
            let name = o.map(|v| self.model.value(v).name().to_owned());
            outputs.push(name.map(|name| self.names.value(&name)));
        }
        let copy = self
            .model
            .add_node(dest, header, &inputs, &outputs, attributes);
        self.out.all_nodes.push(copy);
        self.out.all_node_pairs.push((source, copy));
        if top {
            self.out.nodes.push(copy);
        }
        let copies: Vec<Option<ValueId>> = self.model.node(copy).outputs().to_vec();
        for (from, to) in n.outputs().iter().zip(copies) {
            if let (Some(from), Some(to)) = (from, to) {
                self.defined(*from, to, top);
            }
        }
        for (index, single, many) in graphs {
            let bodies = single
                .into_iter()
                .map(|g| (g, false))
                .chain(many.into_iter().map(|g| (g, true)));
            for (body, is_many) in bodies {
                let proto = self.model.graph(body).proto.clone();
                let sub = self.model.add_subgraph(copy, index, proto, is_many);
                self.subgraph(body, sub, depth + 1)?;
            }
        }
        Ok(copy)
    }

    /// Copies a whole subgraph (inputs, constants, nodes, outputs, value_info) into the empty
    /// graph `dest`.
    fn subgraph(&mut self, source: GraphId, dest: GraphId, depth: usize) -> Result<(), CopyError> {
        if depth > MAX_NESTING {
            return Err(CopyError::TooDeep);
        }
        let inputs = self.model.graph(source).inputs().to_vec();
        for io in inputs {
            let base = self.model.value(io.value).name().to_owned();
            let name = self.names.value(&base);
            let copy = self.model.add_input(dest, name, io.info.clone());
            if let Some(default) = self.model.value(io.value).initializer().cloned() {
                self.model.set_input_default(copy, default);
            }
            self.map.insert(io.value, Some(copy));
        }
        self.constants(source, dest, false)?;
        let order = self
            .model
            .topological_order(source)
            .map_err(|_| CopyError::Cycle("subgraph being copied".into()))?;
        for node in order {
            self.node(node, dest, depth, false)?;
        }
        let outputs = self.model.graph(source).outputs().to_vec();
        for io in outputs {
            let value = resolve(self.map, io.value).ok_or_else(|| {
                CopyError::MissingOutput(self.model.value(io.value).name().to_owned())
            })?;
            self.model.add_output(dest, value, io.info.clone());
        }
        let entries = self.model.graph(source).value_info.clone();
        let mapped: Vec<ValueInfoEntry> = entries
            .into_iter()
            .filter_map(|entry| {
                let value = entry
                    .value
                    .and_then(|v| self.map.get(&v).copied().flatten())?;
                Some(ValueInfoEntry {
                    value: Some(value),
                    proto: entry.proto,
                })
            })
            .collect();
        self.model.graph_mut(dest).value_info.extend(mapped);
        Ok(())
    }
}

/// What a copied node reads for `value`: its copy, or the value itself when it is outside what
/// is being copied.
pub(crate) fn resolve(map: &ValueMap, value: ValueId) -> Option<ValueId> {
    map.get(&value).copied().unwrap_or(Some(value))
}

/// The attribute a copy carries: unchanged, bound to the call's value (under the inner name),
/// or dropped when it references a function attribute the call does not bind.
fn bind(env: Option<&AttributeEnv>, attribute: &AttributeProto) -> Option<AttributeProto> {
    let reference = attribute.ref_attr_name.as_deref().filter(|r| !r.is_empty());
    let (Some(reference), Some(env)) = (reference, env) else {
        return Some(attribute.clone());
    };
    let value = env.get(reference)?;
    let mut bound = value.clone();
    bound.name = attribute.name.clone();
    // The bound value may itself reference an attribute of the function the call sits in.
    bound.ref_attr_name = value.ref_attr_name.clone();
    if attribute.doc_string.is_some() {
        bound.doc_string = attribute.doc_string.clone();
    }
    Some(bound)
}
