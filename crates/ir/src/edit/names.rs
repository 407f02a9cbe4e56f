//! Fresh names, by one policy for the whole model.
//!
//! A subgraph reads outer values by name, a function body has its own scope, `value_info` and
//! sparse initializers name values too. A name is fresh when nothing anywhere in the model
//! holds it: then it can neither shadow an outer value in a subgraph nor be shadowed by one,
//! whatever graph the new value ends up in (so one policy serves every scope). Values and nodes
//! are separate namespaces, as in ONNX. Each base keeps a counter, so asking for many names of
//! one base stays linear. Names are counted, not just held: releasing the names of what an
//! edit removed (a node and its subgraphs) frees exactly those, for the edit's own results.

use std::collections::HashMap;

use crate::{GraphId, Model, NodeId};

#[derive(Clone, Debug, Default)]
pub struct Names {
    values: Namespace,
    nodes: Namespace,
}

#[derive(Clone, Debug, Default)]
struct Namespace {
    /// How many definitions hold each name.
    taken: HashMap<String, u32>,
    /// The next suffix to try per base.
    next: HashMap<String, usize>,
}

impl Namespace {
    fn take(&mut self, name: &str) {
        if let Some(count) = self.taken.get_mut(name) {
            *count += 1;
        } else {
            self.taken.insert(name.to_owned(), 1);
        }
    }

    fn release(&mut self, name: &str) {
        if let Some(count) = self.taken.get_mut(name) {
            *count -= 1;
            if *count == 0 {
                self.taken.remove(name);
            }
        }
    }

    fn is_free(&self, name: &str) -> bool {
        !self.taken.contains_key(name)
    }

    fn fresh(&mut self, base: &str) -> String {
        let base = if base.is_empty() { "v" } else { base };
        if self.is_free(base) {
            self.take(base);
            return base.to_owned();
        }
        let next = self.next.entry(base.to_owned()).or_insert(1);
        loop {
            let candidate = format!("{base}_{next}");
            *next += 1;
            if !self.taken.contains_key(&candidate) {
                self.taken.insert(candidate.clone(), 1);
                return candidate;
            }
        }
    }
}

impl Names {
    /// Every name the model holds: values of every graph and function body (inputs,
    /// initializers, sparse initializers, node outputs), `value_info` entries, graph outputs'
    /// names, node names.
    pub fn of(model: &Model) -> Self {
        let mut names = Self::default();
        for graph in model.graph_ids() {
            if is_live(model, graph) {
                names.visit(model, graph, Namespace::take);
            }
        }
        names
    }

    /// `base` if no value holds it, else `base_N` with the least N free.
    pub fn value(&mut self, base: &str) -> String {
        self.values.fresh(base)
    }

    /// `base` if no node holds it, else `base_N` with the least N free.
    pub fn node(&mut self, base: &str) -> String {
        self.nodes.fresh(base)
    }

    /// Whether no value holds `name`.
    pub fn value_is_free(&self, name: &str) -> bool {
        self.values.is_free(name)
    }

    /// Records a value name given by hand (a rename to a graph output's name).
    pub fn take_value(&mut self, name: &str) {
        self.values.take(name);
    }

    /// Frees one holding of a value name (its value was removed or renamed).
    pub fn release_value(&mut self, name: &str) {
        self.values.release(name);
    }

    /// Renames `value` to exactly `name` (a name the edit moved to it, such as a graph
    /// output's), its old name freed and the new one counted.
    pub fn rename(&mut self, model: &mut Model, value: crate::ValueId, name: &str) {
        if model.value(value).name() == name {
            return;
        }
        self.values.release(model.value(value).name());
        self.values.take(name);
        model.rename_value(value, name);
    }

    /// Frees one holding of a node name.
    pub fn release_node(&mut self, name: &str) {
        self.nodes.release(name);
    }

    /// Frees every name `node`'s subgraphs define (the node is going away with them).
    pub fn release_subgraphs_of(&mut self, model: &Model, node: NodeId) {
        let mut stack: Vec<GraphId> = model.node(node).subgraphs().collect();
        while let Some(graph) = stack.pop() {
            self.visit(model, graph, Namespace::release);
            for &n in model.graph(graph).nodes() {
                stack.extend(model.node(n).subgraphs());
            }
        }
    }

    fn visit(
        &mut self,
        model: &Model,
        graph: GraphId,
        mut apply: impl FnMut(&mut Namespace, &str),
    ) {
        let g = model.graph(graph);
        for io in g.inputs().iter().chain(g.outputs()) {
            apply(&mut self.values, model.value(io.value).name());
            if let Some(info) = &io.info {
                apply(&mut self.values, info.name());
            }
        }
        for &v in g.initializers().iter().chain(g.sparse_initializers()) {
            // An input with a default is one value, counted among the inputs.
            if model.value(v).def() != crate::ValueDef::Input {
                apply(&mut self.values, model.value(v).name());
            }
        }
        for entry in &g.value_info {
            apply(&mut self.values, entry.proto.name());
        }
        for &node in g.nodes() {
            let n = model.node(node);
            apply(&mut self.nodes, n.name());
            for v in n.outputs().iter().flatten() {
                apply(&mut self.values, model.value(*v).name());
            }
        }
    }
}

/// Whether `graph` still belongs to the model (a removed node's subgraphs stay allocated).
fn is_live(model: &Model, graph: GraphId) -> bool {
    let mut graph = graph;
    loop {
        match model.graph(graph).owner() {
            crate::GraphOwner::Node { node, .. } => {
                if model.node(node).is_removed() {
                    return false;
                }
                graph = model.node(node).graph();
            }
            crate::GraphOwner::Model | crate::GraphOwner::Function { .. } => return true,
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn a_taken_base_gets_the_next_free_suffix() {
        let mut ns = Namespace::default();
        ns.take("x");
        ns.take("x_2");
        assert_eq!(ns.fresh("x"), "x_1");
        assert_eq!(ns.fresh("x"), "x_3");
        assert_eq!(ns.fresh("y"), "y");
        assert_eq!(ns.fresh(""), "v");
        assert_eq!(ns.fresh(""), "v_1");
    }

    #[test]
    fn a_name_held_twice_is_free_after_two_releases() {
        let mut ns = Namespace::default();
        ns.take("x");
        ns.take("x");
        ns.release("x");
        assert!(!ns.is_free("x"));
        ns.release("x");
        assert!(ns.is_free("x"));
        assert_eq!(ns.fresh("x"), "x");
    }
}
