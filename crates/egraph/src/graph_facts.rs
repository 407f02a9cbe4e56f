//! What the e-graph analysis knows about the values of one graph: dtype, symbolic shape,
//! small constants, the elements of shape tensors. The graph is lowered with [`lower::lower`]
//! and nothing is rewritten; this is only a reader, for passes that decide outside the e-graph
//! (lower-if, moe-dense) what to rewrite.

use std::sync::Arc;

use egg::Id;

use crate::ClassData;
use crate::facts::{ConstTensor, DataType, Dim, DimValues, Shape, SymId, Symbols, ValueFacts};
use crate::lower::{self, LowerOptions, Lowered};
use onnx_rewrite_ir::{GraphId, GraphOwner, Model, NodeId, ValueDef, ValueId};
use rustc_hash::FxHashMap as HashMap;

/// The facts of one lowered graph.
pub struct GraphFacts {
    lowered: Lowered,
    /// Values nothing in the graph reads (yet): a copied branch's initializers, an outer value a
    /// branch returns as it is. Lowering makes no e-class for them.
    unread: HashMap<ValueId, ValueFacts>,
}

impl GraphFacts {
    /// Lowers `graph`; `Err` holds a node on a cycle. Values a subgraph captures are known by
    /// their declared types only (see [`GraphFacts::with_captures`]).
    pub fn of(model: &Model, graph: GraphId) -> Result<Self, NodeId> {
        let lowered = lower::lower(model, graph, &LowerOptions::default())?;
        Ok(Self {
            lowered,
            unread: HashMap::default(),
        })
    }

    /// [`GraphFacts::of`], with what the enclosing graphs know of the values a subgraph
    /// captures, and facts for the graph's unread constants too. It lowers every enclosing
    /// graph again: for the graphs a pass edits one at a time.
    pub fn with_captures(model: &Model, graph: GraphId) -> Result<Self, NodeId> {
        Self::nested(model, graph, 0)
    }

    fn nested(model: &Model, graph: GraphId, depth: usize) -> Result<Self, NodeId> {
        let mut facts = Self::of(model, graph)?;
        facts.seed_captures(model, graph, depth)?;
        let g = model.graph(graph);
        for &v in g.initializers().iter().chain(g.sparse_initializers()) {
            facts.add_leaf(model, v);
        }
        Ok(facts)
    }

    /// A subgraph's lowering knows its captured values only by their declared types; what
    /// the enclosing graph's analysis knows of them (a constant, a shape computed there) is
    /// brought in, and what follows from it is inferred again.
    fn seed_captures(&mut self, model: &Model, graph: GraphId, depth: usize) -> Result<(), NodeId> {
        let GraphOwner::Node { node, .. } = model.graph(graph).owner() else {
            return Ok(());
        };
        if depth >= MAX_NESTING {
            return Ok(());
        }
        let mut captured: Vec<(ValueId, Id)> = self
            .lowered
            .classes
            .iter()
            .filter(|(v, _)| !model.is_within(model.value(**v).graph(), graph))
            .map(|(v, c)| (*v, *c))
            .collect();
        if captured.is_empty() {
            return Ok(());
        }
        captured.sort();
        let mut outer = Self::nested(model, model.node(node).graph(), depth + 1)?;
        let mut translation: HashMap<SymId, Dim> = HashMap::default();
        let egraph = &mut self.lowered.egraph;
        for (value, class) in captured {
            let Some(known) = outer.get(value).cloned() else {
                continue;
            };
            let brought = translate(
                &known,
                outer.syms(),
                &mut egraph.analysis.symbols,
                &mut translation,
            );
            let id = egraph.find(class);
            let Some(mut current) = egraph[id].data.value().cloned() else {
                continue;
            };
            if current
                .merge(&brought, &mut egraph.analysis.symbols)
                .is_ok()
            {
                egraph.set_analysis_data(id, ClassData::Value(current));
            }
        }
        egraph.rebuild();
        Ok(())
    }

    /// Makes sure `value` has facts, when the graph can see it but does not read it.
    pub fn add_leaf(&mut self, model: &Model, value: ValueId) {
        if self.lowered.classes.contains_key(&value) || self.unread.contains_key(&value) {
            return;
        }
        let v = model.value(value);
        let analysis = &mut self.lowered.egraph.analysis;
        let facts = match (v.def(), v.initializer()) {
            (ValueDef::Initializer, Some(tensor)) => analysis.facts_of_tensor(tensor),
            _ => model
                .declared_type(value)
                .map(|ty| ValueFacts::from_type(ty, &mut analysis.symbols))
                .unwrap_or_default(),
        };
        self.unread.insert(value, facts);
    }

    /// The facts of a value the graph defines or reads (`None` for any other value).
    pub fn get(&self, value: ValueId) -> Option<&ValueFacts> {
        let Some(class) = self.lowered.classes.get(&value) else {
            return self.unread.get(&value);
        };
        self.lowered.egraph[self.lowered.egraph.find(*class)]
            .data
            .value()
    }

    pub fn syms(&mut self) -> &mut Symbols {
        &mut self.lowered.egraph.analysis.symbols
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

/// Enclosing graphs whose facts are brought into a subgraph's, at most.
const MAX_NESTING: usize = 16;

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
