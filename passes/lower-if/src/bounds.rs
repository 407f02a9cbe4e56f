//! Index bounds: where the elements of an integer tensor are known to lie, so that an index op
//! in a branch that also runs when not taken can be shown unable to fail.
//!
//! The case that matters is the MoE expert branch: `NonZero(Equal(topk_idx, e))` gives the
//! (token, slot) pairs routed to expert `e`; it is transposed, its columns sliced out, squeezed,
//! unsqueezed, concatenated back, and used as `GatherND`/`ScatterND` indices into tensors whose
//! leading dim is the same `tokens`. By construction, column `j` of `NonZero(m)` lies in
//! `[0, m.shape[j])`, and that is what this module carries through the data-movement ops, as
//! symbolic dims (so `[0, tokens)` is checked against `x.shape[0] == tokens` by symbol, not by
//! value).
//!
//! A value's bounds are either one interval for every element, or one interval per index
//! along one axis (the columns of a `NonZero` result). Anything the analysis does not
//! understand has no bounds, and an index op reading it is not shown total.

use rustc_hash::FxHashMap as HashMap;

use onnx_rewrite_facts::{DataType, Dim, normalize_axes, normalize_axis};
use onnx_rewrite_ir::{Model, ValueId};

use onnx_rewrite_facts::GraphFacts;

/// Every element `x` it describes satisfies `lo <= x < hi`.
#[derive(Clone, Copy, Debug)]
pub(crate) struct Interval {
    pub lo: i64,
    pub hi: Dim,
}

/// Where the elements of an integer tensor lie.
#[derive(Clone, Debug)]
pub(crate) enum Bounds {
    /// Every element lies in the interval.
    All(Interval),
    /// The elements at index `k` along `axis` lie in `slices[k]` (the axis has that many).
    Along { axis: usize, slices: Vec<Interval> },
}

/// Recursion through producers stops here (the chains that matter are a handful of ops).
const MAX_DEPTH: usize = 32;
/// An `All` interval is spread over at most this many slices when concatenated along an axis.
const MAX_SLICES: i64 = 64;

/// Bounds of the values of one lowered graph, computed on demand and remembered.
#[derive(Default)]
pub(crate) struct BoundsAnalysis {
    memo: HashMap<ValueId, Option<Bounds>>,
}

impl Bounds {
    /// One interval for every element, if the per-slice intervals are all the same.
    pub(crate) fn uniform(&self, facts: &mut GraphFacts) -> Option<Interval> {
        match self {
            Bounds::All(iv) => Some(*iv),
            Bounds::Along { slices, .. } => {
                let first = *slices.first()?;
                slices
                    .iter()
                    .all(|s| s.lo == first.lo && facts.same(s.hi, first.hi))
                    .then_some(first)
            }
        }
    }

    /// The interval of the elements at index `k` along `axis`.
    pub(crate) fn at(&self, axis: usize, k: usize, facts: &mut GraphFacts) -> Option<Interval> {
        match self {
            Bounds::Along { axis: a, slices } if *a == axis => slices.get(k).copied(),
            _ => self.uniform(facts),
        }
    }
}

/// Whether every element of `iv` is a valid index into a dim of `size` (negative indices
/// count from the end, as Gather and the Scatter ops allow).
pub(crate) fn within(facts: &mut GraphFacts, iv: Interval, size: Dim) -> bool {
    if !facts.at_most(iv.hi, size) {
        return false;
    }
    if iv.lo >= 0 {
        return true;
    }
    matches!(facts.syms().resolve(size), Dim::Known(s) if iv.lo >= -s)
}

impl BoundsAnalysis {
    pub(crate) fn of(
        &mut self,
        model: &Model,
        facts: &mut GraphFacts,
        value: ValueId,
    ) -> Option<Bounds> {
        self.derive(model, facts, value, 0)
    }

    fn derive(
        &mut self,
        model: &Model,
        facts: &mut GraphFacts,
        value: ValueId,
        depth: usize,
    ) -> Option<Bounds> {
        if depth > MAX_DEPTH {
            return None;
        }
        if let Some(known) = self.memo.get(&value) {
            return known.clone();
        }
        let bounds = self.compute(model, facts, value, depth);
        self.memo.insert(value, bounds.clone());
        bounds
    }

    fn compute(
        &mut self,
        model: &Model,
        facts: &mut GraphFacts,
        value: ValueId,
        depth: usize,
    ) -> Option<Bounds> {
        if let Some(elements) = facts.ints(value) {
            let (lo, hi) = match (elements.iter().min(), elements.iter().max()) {
                (Some(&lo), Some(&hi)) => (lo, hi.checked_add(1)?),
                _ => (0, 0),
            };
            return Some(Bounds::All(Interval {
                lo,
                hi: Dim::Known(hi),
            }));
        }
        let (node, slot) = model.value(value).producer()?;
        let n = model.node(node);
        if !n.domain().is_empty() {
            return None;
        }
        let input = |i: usize| n.inputs().get(i).copied().flatten();
        let opset = model.opset("").unwrap_or(i64::MAX);
        let int_attr = |name: &str| n.attribute(name).and_then(|a| a.proto.i);
        let ints_attr = |name: &str| n.attribute(name).map(|a| a.proto.ints.clone());
        let inner = |me: &mut Self, facts: &mut GraphFacts, i: usize| -> Option<Bounds> {
            me.derive(model, facts, input(i)?, depth + 1)
        };
        match n.op_type() {
            // Column j of NonZero(m) indexes dim j of m.
            "NonZero" => {
                let shape = facts.shape(input(0)?)?;
                Some(Bounds::Along {
                    axis: 0,
                    slices: shape
                        .dims()
                        .iter()
                        .map(|&hi| Interval { lo: 0, hi })
                        .collect(),
                })
            }
            "ArgMax" | "ArgMin" => {
                let shape = facts.shape(input(0)?)?;
                let axis = normalize_axis(int_attr("axis").unwrap_or(0), shape.rank())?;
                Some(Bounds::All(Interval {
                    lo: 0,
                    hi: shape.get(axis)?,
                }))
            }
            "TopK" if slot == 1 => {
                let shape = facts.shape(input(0)?)?;
                let axis = normalize_axis(int_attr("axis").unwrap_or(-1), shape.rank())?;
                Some(Bounds::All(Interval {
                    lo: 0,
                    hi: shape.get(axis)?,
                }))
            }
            "Identity" => inner(self, facts, 0),
            "Cast" => {
                let from = facts.dtype(input(0)?)?;
                let to = int_attr("to").and_then(|t| DataType::try_from(t as i32).ok())?;
                // Dims stay below 2^31 by the analysis' convention, so int32 holds them.
                (is_index_int(from) && matches!(to, DataType::Int64 | DataType::Int32))
                    .then(|| inner(self, facts, 0))
                    .flatten()
            }
            "Transpose" => {
                let rank = facts.rank(input(0)?)?;
                let perm = ints_attr("perm").unwrap_or_else(|| (0..rank as i64).rev().collect());
                match inner(self, facts, 0)? {
                    Bounds::All(iv) => Some(Bounds::All(iv)),
                    Bounds::Along { axis, slices } => {
                        let to = perm.iter().position(|&p| p == axis as i64)?;
                        Some(Bounds::Along { axis: to, slices })
                    }
                }
            }
            "Squeeze" => {
                let shape = facts.shape(input(0)?)?;
                let axes = match if opset >= 13 {
                    input(1).map(|a| facts.ints(a))
                } else {
                    ints_attr("axes").map(Some)
                } {
                    Some(axes) => normalize_axes(&axes?, shape.rank())?,
                    None => (0..shape.rank())
                        .filter(|&i| shape.get(i) == Some(Dim::Known(1)))
                        .collect(),
                };
                match inner(self, facts, 0)? {
                    Bounds::All(iv) => Some(Bounds::All(iv)),
                    Bounds::Along { axis, slices } if axes.contains(&axis) => {
                        (slices.len() == 1).then(|| Bounds::All(slices[0]))
                    }
                    Bounds::Along { axis, slices } => Some(Bounds::Along {
                        axis: axis - axes.iter().filter(|&&a| a < axis).count(),
                        slices,
                    }),
                }
            }
            "Unsqueeze" => {
                let rank = facts.rank(input(0)?)?;
                let axes = if opset >= 13 {
                    facts.ints(input(1)?)?
                } else {
                    ints_attr("axes")?
                };
                let inserted = normalize_axes(&axes, rank + axes.len())?;
                match inner(self, facts, 0)? {
                    Bounds::All(iv) => Some(Bounds::All(iv)),
                    Bounds::Along { axis, slices } => {
                        let to = (0..rank + axes.len())
                            .filter(|p| !inserted.contains(p))
                            .nth(axis)?;
                        Some(Bounds::Along { axis: to, slices })
                    }
                }
            }
            "Slice" => self.slice(model, facts, node, depth),
            "Concat" => self.concat(model, facts, node, depth),
            // Data movement: every output element is some input element.
            "Reshape" | "Flatten" | "Expand" | "Tile" | "Gather" | "GatherElements"
            | "GatherND" => {
                let b = inner(self, facts, 0)?;
                b.uniform(facts).map(Bounds::All)
            }
            _ => None,
        }
    }

    fn slice(
        &mut self,
        model: &Model,
        facts: &mut GraphFacts,
        node: onnx_rewrite_ir::NodeId,
        depth: usize,
    ) -> Option<Bounds> {
        let n = model.node(node);
        let input = |i: usize| n.inputs().get(i).copied().flatten();
        let data = self.derive(model, facts, input(0)?, depth + 1)?;
        let Bounds::Along { axis, slices } = data else {
            return Some(data);
        };
        let rank = facts.rank(input(0)?)?;
        let opset = model.opset("").unwrap_or(i64::MAX);
        let (starts, ends, axes, steps) = if opset >= 10 {
            let starts = facts.ints(input(1)?)?;
            let ends = facts.ints(input(2)?)?;
            let axes = match input(3) {
                Some(a) => facts.ints(a)?,
                None => (0..starts.len() as i64).collect(),
            };
            let steps = match input(4) {
                Some(s) => facts.ints(s)?,
                None => vec![1; starts.len()],
            };
            (starts, ends, axes, steps)
        } else {
            let attr = |name: &str| n.attribute(name).map(|a| a.proto.ints.clone());
            let starts = attr("starts")?;
            let axes = attr("axes").unwrap_or_else(|| (0..starts.len() as i64).collect());
            let steps = vec![1; starts.len()];
            (starts, attr("ends")?, axes, steps)
        };
        let axes = normalize_axes(&axes, rank)?;
        if starts.len() != axes.len() || ends.len() != axes.len() || steps.len() != axes.len() {
            return None;
        }
        let Some(k) = axes.iter().position(|&a| a == axis) else {
            return Some(Bounds::Along { axis, slices });
        };
        let picked = slice_indices(slices.len() as i64, starts[k], ends[k], steps[k])?;
        Some(Bounds::Along {
            axis,
            slices: picked
                .into_iter()
                .map(|i| slices.get(i).copied())
                .collect::<Option<Vec<_>>>()?,
        })
    }

    fn concat(
        &mut self,
        model: &Model,
        facts: &mut GraphFacts,
        node: onnx_rewrite_ir::NodeId,
        depth: usize,
    ) -> Option<Bounds> {
        let n = model.node(node);
        let inputs: Vec<ValueId> = n.inputs().iter().copied().collect::<Option<_>>()?;
        let rank = facts.rank(*inputs.first()?)?;
        let axis = normalize_axis(n.attribute("axis")?.proto.i?, rank)?;
        let mut parts = Vec::with_capacity(inputs.len());
        for &v in &inputs {
            parts.push((v, self.derive(model, facts, v, depth + 1)?));
        }
        // The same interval everywhere: the result has it too, whatever the lengths.
        let uniform: Option<Vec<Interval>> = parts.iter().map(|(_, b)| b.uniform(facts)).collect();
        if let Some(ivs) = &uniform
            && let Some(first) = ivs.first()
            && ivs
                .iter()
                .all(|iv| iv.lo == first.lo && facts.same(iv.hi, first.hi))
        {
            return Some(Bounds::All(*first));
        }
        let mut slices = Vec::new();
        for (v, b) in parts {
            match b {
                Bounds::Along { axis: a, slices: s } if a == axis => slices.extend(s),
                other => {
                    let iv = other.uniform(facts)?;
                    let len = facts.shape(v)?.get(axis)?.known()?;
                    if !(0..=MAX_SLICES).contains(&len) {
                        return None;
                    }
                    slices.extend(std::iter::repeat_n(iv, len as usize));
                }
            }
        }
        Some(Bounds::Along { axis, slices })
    }
}

fn is_index_int(d: DataType) -> bool {
    matches!(
        d,
        DataType::Int64
            | DataType::Int32
            | DataType::Int16
            | DataType::Int8
            | DataType::Uint32
            | DataType::Uint16
            | DataType::Uint8
    )
}

/// The indices `Slice` picks along an axis of `len` elements (ONNX clamping rules).
fn slice_indices(len: i64, start: i64, end: i64, step: i64) -> Option<Vec<usize>> {
    if step == 0 || !(0..=MAX_SLICES).contains(&len) {
        return None;
    }
    let norm = |v: i64| if v < 0 { v.saturating_add(len) } else { v };
    let mut out = Vec::new();
    if step > 0 {
        let (s, e) = (norm(start).clamp(0, len), norm(end).clamp(0, len));
        let mut i = s;
        while i < e {
            out.push(i as usize);
            i = i.saturating_add(step);
        }
    } else {
        let (s, e) = (norm(start).clamp(-1, len - 1), norm(end).clamp(-1, len - 1));
        let mut i = s;
        while i > e {
            out.push(i as usize);
            i = i.saturating_add(step);
        }
    }
    Some(out)
}

#[cfg(test)]
mod tests {
    use super::slice_indices;

    #[test]
    fn slice_indices_follow_onnx_clamping() {
        assert_eq!(slice_indices(2, 0, 1, 1), Some(vec![0]));
        assert_eq!(slice_indices(2, 1, 2, 1), Some(vec![1]));
        assert_eq!(slice_indices(2, 1, i64::MAX, 1), Some(vec![1]));
        assert_eq!(slice_indices(3, -1, i64::MIN, -1), Some(vec![2, 1, 0]));
        assert_eq!(slice_indices(4, 0, 4, 2), Some(vec![0, 2]));
        assert_eq!(slice_indices(2, 5, 9, 1), Some(vec![]));
        assert_eq!(slice_indices(2, 0, 1, 0), None);
    }
}
