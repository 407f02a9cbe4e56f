//! One source per symbolic dimension.
//!
//! Exporters read a dynamic size from whatever tensor is at hand: `Shape(query_i)[2]` in layer
//! i, `Shape(past_key_i)[2]` in the next. The values are equal (one symbol of the export), but
//! rooted at different tensors, so no common-subexpression elimination merges them and each
//! layer keeps its own CPU island. The analysis knows each such value as a vector of dims
//! (`[batch, 2, seq, 16]`); this rule adds, to every class holding such a vector, the same
//! vector built from the graph inputs that declare those dims (`Shape(input_ids, 1, 2)` for
//! `seq`) and constants. Every layer's class then contains the same e-node, so they become one
//! class, and everything computed from them merges too. The cost model
//! ([`super::HoistCost`]) prefers the input-rooted form.
//!
//! It relies on the model's shape contract: two graph inputs naming a dim `seq` have equal
//! sizes (torch.export checks this when it exports; ONNX Runtime does not check it).

use std::sync::Arc;

use onnx_rewrite_egraph::language::OpData;
use onnx_rewrite_egraph::pattern::Match;
use onnx_rewrite_egraph::rule::{Decline, Outcome, Rule, RuleCx};
use onnx_rewrite_egraph::{Id, Onnx};
use onnx_rewrite_facts::{DataType, Dim};
use onnx_rewrite_ir::ValueId;
use onnx_rewrite_ir::edit::attr;

use super::build;

/// Shape vectors longer than this are left alone (they are whole tensor shapes, read by
/// Reshape/Expand in CPU memory, where one more or less source does not move a copy).
const MAX_ELEMENTS: usize = 8;

/// Graph inputs that may serve as the source of a dim, best first.
pub type Sources = Arc<Vec<ValueId>>;

/// Adds the input-rooted form of a small int64/int32 shape value (a scalar or a vector whose
/// elements are known dims).
pub struct CanonicalDims {
    pub sources: Sources,
}

enum Piece {
    Known(Vec<i64>),
    /// Dims `start..end` of graph input `source`.
    Dims {
        source: ValueId,
        start: usize,
        end: usize,
    },
}

impl Rule for CanonicalDims {
    fn name(&self) -> &'static str {
        "canonical-dims"
    }

    /// Every op that computes a shape vector from shapes.
    fn pattern(&self) -> &'static str {
        "Shape|Gather|Slice|Squeeze|Unsqueeze|Concat|Reshape|Cast"
    }

    fn apply(&self, cx: &mut RuleCx<'_>, m: &Match) -> Result<Outcome, Decline> {
        Ok(canonical(cx, m.root, &self.sources).map_or(
            Outcome::DoesNotApply(
                "not a small shape value, a dim without a source, or already canonical",
            ),
            Outcome::Rewrite,
        ))
    }
}

fn canonical(cx: &mut RuleCx<'_>, class: Id, sources: &[ValueId]) -> Option<Id> {
    let facts = cx.facts(class)?.clone();
    let dtype = facts
        .dtype
        .filter(|d| matches!(d, DataType::Int64 | DataType::Int32))?;
    if facts.constant.is_some() {
        return None; // folding makes it an initializer
    }
    let rank = facts.rank()?;
    let elements = facts.shape_value.clone()?;
    if rank > 1 || elements.is_empty() || elements.len() > MAX_ELEMENTS {
        return None;
    }
    let syms = &mut cx.egraph.analysis.symbols;
    let elements: Vec<Dim> = elements
        .into_iter()
        .map(|e| e.map(|d| syms.resolve(d)))
        .collect::<Option<_>>()?;
    if elements.iter().all(|d| matches!(d, Dim::Known(_))) {
        return None;
    }
    // Where each symbol is declared: the first source (in preference order) with that dim.
    let mut declared: Vec<(Dim, ValueId, usize)> = Vec::new();
    for &source in sources {
        let Some(shape) = cx
            .egraph
            .analysis
            .leaves
            .get(&source)
            .and_then(|f| f.shape.clone())
        else {
            continue;
        };
        for (j, d) in shape.dims().iter().enumerate() {
            let d = cx.egraph.analysis.symbols.resolve(*d);
            if matches!(d, Dim::Sym(_)) && !declared.iter().any(|(x, _, _)| *x == d) {
                declared.push((d, source, j));
            }
        }
    }
    let mut pieces: Vec<Piece> = Vec::new();
    for d in &elements {
        match *d {
            Dim::Known(v) => match pieces.last_mut() {
                Some(Piece::Known(values)) => values.push(v),
                _ => pieces.push(Piece::Known(vec![v])),
            },
            Dim::Sym(_) => {
                let &(_, source, j) = declared.iter().find(|(x, _, _)| x == d)?;
                match pieces.last_mut() {
                    Some(Piece::Dims { source: s, end, .. }) if *s == source && *end == j => {
                        *end += 1;
                    }
                    _ => pieces.push(Piece::Dims {
                        source,
                        start: j,
                        end: j + 1,
                    }),
                }
            }
        }
    }
    let mut parts: Vec<Id> = Vec::with_capacity(pieces.len());
    for piece in pieces {
        parts.push(match piece {
            Piece::Known(values) => {
                let n = values.len() as i64;
                build::i64_const(cx, &[n], values, "dims")
            }
            Piece::Dims { source, start, end } => shape_of(cx, source, start, end),
        });
    }
    let mut vector = if parts.len() == 1 {
        parts[0]
    } else {
        let n = parts.len();
        cx.add_op(OpData::new("Concat", vec![attr::int("axis", 0)], n), &parts)
    };
    if rank == 0 {
        vector = build::reshape(cx, vector, &[]);
    }
    if dtype == DataType::Int32 {
        vector = cx.add_op(
            OpData::new("Cast", vec![attr::int("to", DataType::Int32 as i64)], 1),
            &[vector],
        );
    }
    (vector != cx.egraph.find(class)).then_some(vector)
}

/// Dims `start..end` of a graph input as a 1-D int64 tensor.
fn shape_of(cx: &mut RuleCx<'_>, source: ValueId, start: usize, end: usize) -> Id {
    let leaf = cx.egraph.add(Onnx::Leaf(source));
    if cx.opset("") >= 15 {
        let attributes = vec![
            attr::int("start", start as i64),
            attr::int("end", end as i64),
        ];
        cx.add_op(OpData::new("Shape", attributes, 1), &[leaf])
    } else {
        let shape = cx.add_op(OpData::new("Shape", Vec::new(), 1), &[leaf]);
        let indices: Vec<i64> = (start as i64..end as i64).collect();
        let n = indices.len() as i64;
        let indices = build::i64_const(cx, &[n], indices, "dim_indices");
        cx.add_op(
            OpData::new("Gather", vec![attr::int("axis", 0)], 2),
            &[shape, indices],
        )
    }
}
