//! Unique names within one scope tree: a main graph (or a function body) with every subgraph
//! nested in it.
//!
//! ONNX names values in a flat namespace across a graph and its subgraphs (an inner graph may
//! read an outer name, so it must not redefine it), while two sibling branches may reuse a
//! name. Moving a branch into its parent therefore needs names checked against the whole tree,
//! and moving both branches of one `If` (the `Where` form) renames one copy of every name the
//! two branches share. Node names live in a namespace of their own.
//!
//! The tables count uses rather than hold a set, so that releasing the names of a node that
//! goes away (an inlined `If` and its branches) frees exactly them.

use rustc_hash::FxHashMap as HashMap;

use onnx_rewrite_ir::{GraphId, GraphOwner, Model, NodeId};

/// Names in use in one namespace, with how many definitions use each.
#[derive(Debug, Default, Clone)]
pub(crate) struct NameTable {
    used: HashMap<String, u32>,
    /// The next suffix to try per base name, so that a run of clashes stays linear.
    next_suffix: HashMap<String, u32>,
}

impl NameTable {
    pub(crate) fn reserve(&mut self, name: &str) {
        if !name.is_empty() {
            *self.used.entry(name.to_owned()).or_default() += 1;
        }
    }

    pub(crate) fn release(&mut self, name: &str) {
        if let Some(count) = self.used.get_mut(name) {
            *count -= 1;
            if *count == 0 {
                self.used.remove(name);
            }
        }
    }

    pub(crate) fn is_free(&self, name: &str) -> bool {
        !self.used.contains_key(name)
    }

    /// `base` if it is free, else `base_1`, `base_2`, ...; the result is reserved.
    pub(crate) fn fresh(&mut self, base: &str) -> String {
        let base = if base.is_empty() { "v" } else { base };
        if self.is_free(base) {
            self.reserve(base);
            return base.to_owned();
        }
        let mut n = self.next_suffix.get(base).copied().unwrap_or(1);
        loop {
            let candidate = format!("{base}_{n}");
            n += 1;
            if self.is_free(&candidate) {
                self.next_suffix.insert(base.to_owned(), n);
                self.reserve(&candidate);
                return candidate;
            }
        }
    }
}

/// The value and node names of one scope tree.
#[derive(Debug, Default, Clone)]
pub(crate) struct Names {
    pub values: NameTable,
    pub nodes: NameTable,
}

impl Names {
    /// The names defined anywhere in the tree rooted at `root`.
    pub(crate) fn of_tree(model: &Model, root: GraphId) -> Self {
        let mut names = Self::default();
        for graph in tree(model, root) {
            names.add_graph(model, graph, Reserve::Reserve);
        }
        names
    }

    /// Releases every name `node`'s subgraphs define (the node is going away with them).
    pub(crate) fn release_subgraphs_of(&mut self, model: &Model, node: NodeId) {
        let mut stack: Vec<GraphId> = model.node(node).subgraphs().collect();
        while let Some(graph) = stack.pop() {
            self.add_graph(model, graph, Reserve::Release);
            for &n in model.graph(graph).nodes() {
                stack.extend(model.node(n).subgraphs());
            }
        }
    }

    fn add_graph(&mut self, model: &Model, graph: GraphId, how: Reserve) {
        let g = model.graph(graph);
        let apply = |table: &mut NameTable, name: &str| match how {
            Reserve::Reserve => table.reserve(name),
            Reserve::Release => table.release(name),
        };
        for io in g.inputs() {
            apply(&mut self.values, model.value(io.value).name());
        }
        for &v in g.initializers().iter().chain(g.sparse_initializers()) {
            // An input with a default is one value, listed among the inputs already.
            if model.value(v).def() != onnx_rewrite_ir::ValueDef::Input {
                apply(&mut self.values, model.value(v).name());
            }
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

#[derive(Clone, Copy)]
enum Reserve {
    Reserve,
    Release,
}

/// The root of the scope tree `graph` belongs to: the main graph or a function body.
pub(crate) fn root_of(model: &Model, graph: GraphId) -> GraphId {
    let mut g = graph;
    while let GraphOwner::Node { node, .. } = model.graph(g).owner() {
        g = model.node(node).graph();
    }
    g
}

/// `root` and every graph nested in it, outermost first.
pub(crate) fn tree(model: &Model, root: GraphId) -> Vec<GraphId> {
    let mut out = vec![root];
    let mut i = 0;
    while let Some(&graph) = out.get(i) {
        for &node in model.graph(graph).nodes() {
            out.extend(model.node(node).subgraphs());
        }
        i += 1;
    }
    out
}

/// The name tables of every scope tree a pass touches, built when first needed.
#[derive(Debug, Default)]
pub(crate) struct Scopes {
    by_root: std::collections::BTreeMap<GraphId, Names>,
}

impl Scopes {
    /// The names of the tree that holds `graph`.
    pub(crate) fn of(&mut self, model: &Model, graph: GraphId) -> &mut Names {
        let root = root_of(model, graph);
        self.by_root
            .entry(root)
            .or_insert_with(|| Names::of_tree(model, root))
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn fresh_names_skip_what_is_taken_and_released_names_come_back() {
        let mut t = NameTable::default();
        t.reserve("x");
        t.reserve("x_1");
        assert_eq!(t.fresh("x"), "x_2");
        assert_eq!(t.fresh("y"), "y");
        assert_eq!(t.fresh("y"), "y_1");
        t.release("x");
        assert!(t.is_free("x"));
        assert_eq!(t.fresh("x"), "x");
        assert_eq!(t.fresh(""), "v");
    }

    #[test]
    fn names_are_counted_so_a_shared_name_survives_one_release() {
        let mut t = NameTable::default();
        t.reserve("tmp");
        t.reserve("tmp");
        t.release("tmp");
        assert!(!t.is_free("tmp"));
        t.release("tmp");
        assert!(t.is_free("tmp"));
    }
}
