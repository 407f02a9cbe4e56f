//! What the `Where` form costs: both branches run, so the branch that would not have run is
//! extra work. The estimate counts a FLOP per output element for elementwise and data-movement
//! ops, per input element for reductions, `2·M·N·K` for matrix products, and nothing for ops
//! that only change metadata. Shapes are symbolic, so a count is a polynomial in the graph's
//! dims (`4096·tokens + 32·?`); an anonymous dim (a `NonZero` count) prints as `?`.

use std::collections::BTreeMap;

use onnx_rewrite_facts::{Dim, Shape, SymId};
use onnx_rewrite_ir::{Model, NodeId};
use onnx_rewrite_ops::Form;

use onnx_rewrite_facts::GraphFacts;

/// A count as a sum of `coefficient · product of symbols`; `unknown` when some shape was not.
#[derive(Debug, Default, Clone)]
pub(crate) struct Flops {
    terms: BTreeMap<Vec<SymId>, i64>,
    unknown: bool,
}

impl Flops {
    /// Adds `factor · product(dims)`.
    pub(crate) fn add_dims(&mut self, facts: &mut GraphFacts, dims: &[Dim], factor: i64) {
        let mut coefficient = factor;
        let mut symbols = Vec::new();
        for &d in dims {
            match facts.syms().resolve(d) {
                Dim::Known(k) => match coefficient.checked_mul(k) {
                    Some(c) => coefficient = c,
                    None => {
                        self.unknown = true;
                        return;
                    }
                },
                Dim::Sym(s) => symbols.push(s),
            }
        }
        if coefficient == 0 {
            return;
        }
        symbols.sort_unstable();
        let slot = self.terms.entry(symbols).or_default();
        *slot = slot.saturating_add(coefficient);
    }

    pub(crate) fn merge(&mut self, other: &Flops) {
        self.unknown |= other.unknown;
        for (k, v) in &other.terms {
            let slot = self.terms.entry(k.clone()).or_default();
            *slot = slot.saturating_add(*v);
        }
    }

    /// The count when no symbol is left in it.
    pub(crate) fn known(&self) -> Option<i64> {
        if self.unknown || self.terms.keys().any(|k| !k.is_empty()) {
            return None;
        }
        Some(self.terms.values().fold(0i64, |a, b| a.saturating_add(*b)))
    }

    pub(crate) fn show(&self, facts: &mut GraphFacts) -> String {
        if self.unknown {
            return "unknown".into();
        }
        if self.terms.is_empty() {
            return "0".into();
        }
        let terms: Vec<String> = self
            .terms
            .iter()
            .map(|(symbols, c)| {
                let mut parts = vec![c.to_string()];
                parts.extend(symbols.iter().map(|s| facts.show(Dim::Sym(*s))));
                parts.join("·")
            })
            .collect();
        terms.join(" + ")
    }
}

/// The estimated FLOPs of `nodes`.
pub(crate) fn flops(model: &Model, facts: &mut GraphFacts, nodes: &[NodeId]) -> Flops {
    let opset = model.opset("").unwrap_or(i64::MAX);
    let mut total = Flops::default();
    for &node in nodes {
        node_flops(model, facts, node, opset, &mut total);
    }
    total
}

fn node_flops(model: &Model, facts: &mut GraphFacts, node: NodeId, opset: i64, total: &mut Flops) {
    let n = model.node(node);
    let op = n.op_type();
    // Views, shape reads and constants compute no element (the op table's `Form::Metadata`).
    if onnx_rewrite_ops::form(n.domain(), op, opset) == Form::Metadata {
        return;
    }
    let mut shape = |i: Option<onnx_rewrite_ir::ValueId>| -> Option<Shape> { facts.shape(i?) };
    let input = |i: usize| n.inputs().get(i).copied().flatten();
    let output = n.outputs().first().copied().flatten();
    let (dims, factor): (Option<Vec<Dim>>, i64) = match op {
        "MatMul" | "Gemm" => {
            let a = shape(input(0));
            let y = shape(output);
            let trans_a = n.attribute("transA").and_then(|a| a.proto.i).unwrap_or(0) != 0;
            let k = a.and_then(|a| {
                let r = a.rank();
                if op == "Gemm" && trans_a {
                    a.get(0)
                } else {
                    a.get(r.checked_sub(1)?)
                }
            });
            let bias = op == "Gemm" && input(2).is_some();
            if bias && let Some(y) = &y {
                total.add_dims(facts, y.dims(), 1);
            }
            (
                y.zip(k).map(|(y, k)| {
                    let mut d = y.dims().to_vec();
                    d.push(k);
                    d
                }),
                2,
            )
        }
        _ if op.starts_with("Reduce") || matches!(op, "ArgMax" | "ArgMin" | "Softmax") => {
            (shape(input(0)).map(|s| s.dims().to_vec()), 1)
        }
        _ => (shape(output).map(|s| s.dims().to_vec()), 1),
    };
    match dims {
        Some(d) => total.add_dims(facts, &d, factor),
        None => total.unknown = true,
    }
}
