//! What the e-graph analysis knows about the values of one graph (dtype, symbolic shape, small
//! constants), read-only: the graph is lowered once and nothing is rewritten there.

use std::sync::Arc;

use onnx_rewrite_egraph::facts::{ConstTensor, DataType, Dim, ValueFacts};
use onnx_rewrite_egraph::lower::{self, LowerOptions, Lowered};
use onnx_rewrite_ir::{GraphId, Model, NodeId, ValueId};

/// The facts of one lowered graph.
pub(crate) struct GraphFacts {
    lowered: Lowered,
}

impl GraphFacts {
    /// Lowers `graph`; `Err` holds a node on a cycle.
    pub(crate) fn of(model: &Model, graph: GraphId) -> Result<Self, NodeId> {
        let lowered = lower::lower(model, graph, &LowerOptions::default())?;
        Ok(Self { lowered })
    }

    fn get(&self, value: ValueId) -> Option<&ValueFacts> {
        let class = *self.lowered.classes.get(&value)?;
        let egraph = &self.lowered.egraph;
        egraph[egraph.find(class)].data.value()
    }

    pub(crate) fn dtype(&self, value: ValueId) -> Option<DataType> {
        self.get(value)?.dtype
    }

    pub(crate) fn rank(&self, value: ValueId) -> Option<usize> {
        self.get(value)?.rank()
    }

    /// The small constant the analysis folded for `value` (initializers, Constant nodes and
    /// what is computed from them, up to the analysis' element limit).
    pub(crate) fn constant(&self, value: ValueId) -> Option<Arc<ConstTensor>> {
        self.get(value)?.constant.clone()
    }

    /// The elements of an integer constant.
    pub(crate) fn ints(&self, value: ValueId) -> Option<Vec<i64>> {
        self.constant(value)?.to_i64s()
    }

    /// The single element of a one-element integer constant.
    pub(crate) fn int(&self, value: ValueId) -> Option<i64> {
        self.constant(value)?.scalar_as_i64()
    }

    /// The shape of `value`, every dim in canonical form.
    pub(crate) fn dims(&mut self, value: ValueId) -> Option<Vec<Dim>> {
        let shape = self.get(value)?.shape.clone()?;
        let syms = &mut self.lowered.egraph.analysis.symbols;
        Some(shape.dims().iter().map(|d| syms.resolve(*d)).collect())
    }

    /// Dim `axis` of `value` (negative counts from the end).
    pub(crate) fn dim(&mut self, value: ValueId, axis: i64) -> Option<Dim> {
        let dims = self.dims(value)?;
        let rank = i64::try_from(dims.len()).ok()?;
        let axis = if axis < 0 { axis + rank } else { axis };
        dims.get(usize::try_from(axis).ok()?).copied()
    }

    /// Dim `axis` of `value`, when it is a known number.
    pub(crate) fn known_dim(&mut self, value: ValueId, axis: i64) -> Option<i64> {
        self.dim(value, axis)?.known()
    }

    /// Whether `a` and `b` are provably the same dimension.
    pub(crate) fn same_dim(&mut self, a: Dim, b: Dim) -> bool {
        self.lowered.egraph.analysis.symbols.same(a, b)
    }

    /// Whether two values provably have the same shape.
    pub(crate) fn same_shape(&mut self, a: ValueId, b: ValueId) -> bool {
        match (self.dims(a), self.dims(b)) {
            (Some(x), Some(y)) => {
                x.len() == y.len() && x.iter().zip(&y).all(|(p, q)| self.same_dim(*p, *q))
            }
            _ => false,
        }
    }
}
