//! Fresh names, by one policy for the whole model.
//!
//! A subgraph reads outer values by name, a function body has its own scope, `value_info` and
//! sparse initializers name values too. A name is fresh when nothing anywhere in the model
//! holds it: then it can neither shadow an outer value in a subgraph nor be shadowed by one,
//! whatever graph the new value ends up in. Values and nodes are separate namespaces, as in
//! ONNX. Each base keeps a counter, so asking for many names of one base stays linear.

use std::collections::{HashMap, HashSet};

use crate::Model;

#[derive(Debug, Default)]
pub struct Names {
    values: Namespace,
    nodes: Namespace,
}

#[derive(Debug, Default)]
struct Namespace {
    taken: HashSet<String>,
    /// The next suffix to try per base.
    next: HashMap<String, usize>,
}

impl Namespace {
    fn take(&mut self, name: &str) {
        if !self.taken.contains(name) {
            self.taken.insert(name.to_owned());
        }
    }

    fn fresh(&mut self, base: &str) -> String {
        let base = if base.is_empty() { "v" } else { base };
        if !self.taken.contains(base) {
            self.taken.insert(base.to_owned());
            return base.to_owned();
        }
        let next = self.next.entry(base.to_owned()).or_insert(1);
        loop {
            let candidate = format!("{base}_{next}");
            *next += 1;
            if !self.taken.contains(&candidate) {
                self.taken.insert(candidate.clone());
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
            let g = model.graph(graph);
            for io in g.inputs().iter().chain(g.outputs()) {
                names.values.take(model.value(io.value).name());
                if let Some(info) = &io.info {
                    names.values.take(info.name());
                }
            }
            for v in g.initializers().iter().chain(g.sparse_initializers()) {
                names.values.take(model.value(*v).name());
            }
            for entry in &g.value_info {
                names.values.take(entry.proto.name());
            }
            for &node in g.nodes() {
                let n = model.node(node);
                names.nodes.take(n.name());
                for v in n.outputs().iter().flatten() {
                    names.values.take(model.value(*v).name());
                }
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
}
