//! What the pass looks at: the main graph and every subgraph nested in it (function bodies are
//! left alone: a call of a model-local function is opaque), in one global order.
//!
//! The order is topological in every graph, and a node's subgraphs come right before the node:
//! after the outer values they capture are produced (the IR's topological order counts
//! captures) and before anything reads the node's outputs. A forward walk over it therefore
//! sees every value's producer first; a backward walk sees every reader first.

use onnx_rewrite_ir::{GraphId, Model, NodeId};
use onnx_rewrite_pass::PassError;

/// Nesting deeper than this is refused (a recursive walk must have a bound).
const MAX_DEPTH: usize = 64;

/// A model the walk cannot order.
#[derive(Debug, thiserror::Error)]
pub(crate) enum ScopeError {
    #[error("subgraphs nested more than {MAX_DEPTH} deep")]
    TooDeep,
    #[error("{0} is on a cycle")]
    Cycle(String),
}

pub(crate) struct Scope {
    /// Every node of the main graph and its subgraphs, in the global order.
    pub order: Vec<NodeId>,
    /// The graphs, outer before inner.
    pub graphs: Vec<GraphId>,
}

impl Scope {
    pub fn of(model: &Model) -> Result<Self, PassError> {
        let mut scope = Scope {
            order: Vec::new(),
            graphs: Vec::new(),
        };
        scope.visit(model, model.main(), 0)?;
        Ok(scope)
    }

    fn visit(&mut self, model: &Model, graph: GraphId, depth: usize) -> Result<(), PassError> {
        if depth > MAX_DEPTH {
            return Err(PassError::input(ScopeError::TooDeep));
        }
        self.graphs.push(graph);
        let order = model
            .topological_order(graph)
            .map_err(|node| PassError::input(ScopeError::Cycle(model.describe_node(node))))?;
        for node in order {
            let subgraphs: Vec<GraphId> = model.node(node).subgraphs().collect();
            for sub in subgraphs {
                self.visit(model, sub, depth + 1)?;
            }
            self.order.push(node);
        }
        Ok(())
    }
}
