//! Tensor sequences the CUDA EP cannot hold on the device.
//!
//! `torch.chunk`/`split` export (without onnxscript's optimizer) as `SplitToSequence` followed
//! by `SequenceAt` per piece. The CUDA EP has no `SplitToSequence` kernel, so the tensor goes to
//! the host and the sequence comes back: two copies per layer (ModernBERT's MLP, 56 copies over
//! 28 layers). Each piece is a `Slice` of the tensor, which runs on the device.

use onnx_rewrite_egraph::pattern::Match;
use onnx_rewrite_egraph::rule::{Decline, Outcome, Rule, RuleCx};

use super::build;

/// `SequenceAt(SplitToSequence(x, split, axis, keepdims), k)` → `Slice(x, k-th range, axis)`
/// (then `Squeeze(axis)` for unit pieces with `keepdims = 0`).
pub struct SliceSequencePiece;

impl Rule for SliceSequencePiece {
    fn name(&self) -> &'static str {
        "slice-sequence-piece"
    }

    fn pattern(&self) -> &'static str {
        "SequenceAt(SplitToSequence(x) @split, position)"
    }

    fn apply(&self, cx: &mut RuleCx<'_>, m: &Match) -> Result<Outcome, Decline> {
        let position = cx.class(m, "position")?;
        let split_node = cx.node(m, "split")?.clone();
        let position = cx
            .facts(position)
            .and_then(|f| f.constant.as_ref())
            .and_then(|c| c.scalar_as_i64())
            .ok_or_else(|| Decline::new("the position is not a constant"))?;
        let x = cx.class(m, "x")?;
        let axis = cx.int_attribute(&split_node, "axis", 0);
        let keepdims = cx.int_attribute(&split_node, "keepdims", 1);
        let rank = cx
            .facts(x)
            .and_then(|f| f.rank())
            .ok_or_else(|| Decline::new("the split tensor's rank is unknown"))?;
        let rank = i64::try_from(rank).map_err(|_| Decline::new("rank too large"))?;
        if !(-rank..rank).contains(&axis) {
            return Err(Decline::new(format!(
                "axis {axis} is out of range for rank {rank}"
            )));
        }
        let axis_index = usize::try_from(if axis < 0 { axis + rank } else { axis })
            .map_err(|_| Decline::new("axis out of range"))?;
        let dim = cx
            .facts(x)
            .and_then(|f| f.shape.clone())
            .and_then(|s| s.get(axis_index))
            .and_then(|d| cx.egraph.analysis.symbols.value_of(d));
        // Piece boundaries: `sizes` when every piece size is known, else a uniform size.
        let split = cx.input(&split_node, 1);
        let (start, end, unit) = match split {
            None => {
                let k = normalize_position(position, dim)?;
                (k, k.checked_add(1).ok_or_else(overflow)?, true)
            }
            Some(split) => {
                let sizes = cx
                    .facts(split)
                    .and_then(|f| f.constant.as_ref())
                    .ok_or_else(|| Decline::new("the split sizes are not constant"))?;
                let values = sizes
                    .to_i64s()
                    .ok_or_else(|| Decline::new("the split sizes are not integers"))?;
                if values.iter().any(|v| *v < 0) {
                    return Err(Decline::new("a split size is negative"));
                }
                if sizes.rank() == 0 {
                    let size = values[0];
                    if size == 0 {
                        return Err(Decline::new("a split size of 0"));
                    }
                    let pieces = dim.map(|d| (d + size - 1) / size);
                    let k = normalize_position(position, pieces)?;
                    let start = k.checked_mul(size).ok_or_else(overflow)?;
                    (start, start.checked_add(size).ok_or_else(overflow)?, false)
                } else {
                    let pieces = i64::try_from(values.len()).map_err(|_| overflow())?;
                    let k = normalize_position(position, Some(pieces))?;
                    let k = usize::try_from(k).map_err(|_| overflow())?;
                    let start = values[..k]
                        .iter()
                        .try_fold(0i64, |a, v| a.checked_add(*v))
                        .ok_or_else(overflow)?;
                    (
                        start,
                        start.checked_add(values[k]).ok_or_else(overflow)?,
                        false,
                    )
                }
            }
        };
        let piece = build::slice(cx, x, start, end, axis);
        Ok(Outcome::Rewrite(if unit && keepdims == 0 {
            build::squeeze(cx, piece, axis)
        } else {
            piece
        }))
    }
}

fn overflow() -> Decline {
    Decline::new("the piece bounds overflow int64")
}

/// A non-negative piece index: a negative position counts from the end, which needs the count.
fn normalize_position(position: i64, pieces: Option<i64>) -> Result<i64, Decline> {
    match (position, pieces) {
        (p, Some(n)) if (-n..n).contains(&p) => Ok(if p < 0 { p + n } else { p }),
        (p, Some(n)) => Err(Decline::new(format!(
            "position {p} is out of range for {n} pieces (the original fails at run time)"
        ))),
        (p, None) if p >= 0 => Ok(p),
        (p, None) => Err(Decline::new(format!(
            "position {p} counts from the end, and the number of pieces is not known"
        ))),
    }
}
