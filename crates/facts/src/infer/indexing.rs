//! Ops that select elements: `Gather`, `GatherElements`, `GatherND`, `Slice`, `OneHot`,
//! `NonZero`, `Compress`, `TopK`, `Unique`.

use onnx_rewrite_proto::tensor_proto::DataType;

use super::Ctx;
use crate::constant::ConstData;
use crate::index::{self, SliceAxis};
use crate::shape::{Shape, normalize_axes, normalize_axis};
use crate::symbols::Dim;

/// `Gather(data, indices, axis)`: `data[:axis] + indices + data[axis+1:]`.
pub(super) fn gather(cx: &mut Ctx<'_, '_>) {
    cx.set_dtype(0, cx.dtype(0));
    let (Some(data), Some(indices), Some(axis)) =
        (cx.shape(0), cx.shape(1), cx.attrs.int_or("axis", 0))
    else {
        return;
    };
    let Some(axis) = normalize_axis(axis, data.rank()) else {
        return;
    };
    let mut out = Shape::new(data.0[..axis].iter().copied());
    out.0.extend(indices.0.iter().copied());
    out.0.extend(data.0[axis + 1..].iter().copied());
    cx.set_shape(0, Some(out));

    // Fold a constant (or per-element dims) gathered at constant indices.
    let (Some(src), Some(dims), Some(idx), Some(idx_dims)) =
        (cx.input(0), cx.known_dims(0), cx.ints(1), cx.known_dims(1))
    else {
        return;
    };
    let Some(&n) = dims.get(axis) else {
        return;
    };
    let normalized: Option<Vec<usize>> = idx
        .iter()
        .map(|&i| {
            let i = if i < 0 { i.checked_add(n)? } else { i };
            if (0..n).contains(&i) {
                usize::try_from(i).ok()
            } else {
                None
            }
        })
        .collect();
    if let Some(normalized) = normalized
        && let Some((out_dims, map)) = index::gather(&dims, axis, &normalized, &idx_dims, cx.limit)
    {
        cx.move_elements(0, src, out_dims, &map);
    }
}

/// `GatherElements(data, indices)`: indices' shape, data's type.
pub(super) fn gather_elements(cx: &mut Ctx<'_, '_>) {
    cx.set_dtype(0, cx.dtype(0));
    cx.set_shape(0, cx.shape(1));
}

/// `GatherND(data, indices, batch_dims)`: `indices[:-1] + data[batch_dims + indices[-1]:]`.
pub(super) fn gather_nd(cx: &mut Ctx<'_, '_>) {
    cx.set_dtype(0, cx.dtype(0));
    let (Some(data), Some(indices), Some(b)) =
        (cx.shape(0), cx.shape(1), cx.attrs.int_or("batch_dims", 0))
    else {
        return;
    };
    let Some((&last, lead)) = indices.0.split_last() else {
        return;
    };
    let Some(k) = cx.syms.value_of(last) else {
        return;
    };
    let (Ok(b), Ok(k)) = (usize::try_from(b), usize::try_from(k)) else {
        return;
    };
    let Some(from) = b.checked_add(k).filter(|&f| f <= data.rank()) else {
        return;
    };
    let mut out = Shape::new(lead.iter().copied());
    out.0.extend(data.0[from..].iter().copied());
    cx.set_shape(0, Some(out));
}

/// The operands of a `Slice`: attributes before opset 10, then inputs.
struct SliceParams {
    starts: Vec<i64>,
    ends: Vec<i64>,
    axes: Option<Vec<i64>>,
    steps: Option<Vec<i64>>,
}

fn slice_params(cx: &mut Ctx<'_, '_>) -> Option<SliceParams> {
    if cx.opset() < 10 {
        let list = |name| cx.attrs.ints(name).ok().map(|v| v.map(<[i64]>::to_vec));
        return Some(SliceParams {
            starts: list("starts")??,
            ends: list("ends")??,
            axes: list("axes")?,
            steps: None,
        });
    }
    let starts = cx.ints(1)?;
    let ends = cx.ints(2)?;
    let mut optional = |i: usize| match cx.input(i) {
        None => Some(None),
        Some(_) => cx.ints(i).map(Some),
    };
    Some(SliceParams {
        starts,
        ends,
        axes: optional(3)?,
        steps: optional(4)?,
    })
}

/// Whether a slice of a dim of unknown size keeps all of it. Ends at or beyond `i32::MAX`
/// (exporters write `INT64_MAX` or `INT32_MAX`) are taken as "to the end": no real dim is
/// larger.
fn keeps_whole_dim(start: i64, end: i64, step: i64) -> bool {
    let far = i64::from(i32::MAX);
    match step {
        1 => start == 0 && end >= far,
        -1 => (start == -1 || start >= far) && end <= -far,
        _ => false,
    }
}

/// `Slice(data, starts, ends, axes, steps)` with ONNX clamping; symbolic dims survive only a
/// whole-range slice.
pub(super) fn slice(cx: &mut Ctx<'_, '_>) {
    cx.set_dtype(0, cx.dtype(0));
    let Some(s) = cx.shape(0) else {
        return;
    };
    let rank = s.rank();
    let Some(p) = slice_params(cx) else {
        // Unknown bounds: the sliced axes (all, if not known) have unknown sizes.
        let sliced: Option<Vec<usize>> = if cx.opset() >= 10 && cx.input(3).is_some() {
            cx.ints(3).and_then(|a| normalize_axes(&a, rank))
        } else {
            None
        };
        let mut out = s.clone();
        for (i, d) in out.0.iter_mut().enumerate() {
            if sliced.as_ref().is_none_or(|a| a.contains(&i)) {
                *d = cx.syms.fresh_dim();
            }
        }
        cx.set_shape(0, Some(out));
        return;
    };
    let n = p.starts.len();
    let axes = match &p.axes {
        Some(a) => normalize_axes(a, rank),
        None => Some((0..n.min(rank)).collect()),
    };
    let steps = p.steps.unwrap_or_else(|| vec![1; n]);
    let Some(axes) = axes.filter(|a| a.len() == n && p.ends.len() == n && steps.len() == n) else {
        return;
    };
    let mut out = s.clone();
    let mut plan: Vec<Option<SliceAxis>> = vec![None; rank];
    for (k, &a) in axes.iter().enumerate() {
        let (start, end, step) = (p.starts[k], p.ends[k], steps[k]);
        if step == 0 {
            return;
        }
        out.0[a] = match cx.syms.resolve(s.0[a]) {
            Dim::Known(d) => match index::slice_axis(d, start, end, step) {
                Some(sa) => {
                    plan[a] = Some(sa);
                    Dim::Known(sa.len)
                }
                None => return,
            },
            d @ Dim::Sym(_) if keeps_whole_dim(start, end, step) => d,
            Dim::Sym(_) => cx.fresh(),
        };
    }
    cx.set_shape(0, Some(out));

    // Fold constants and per-element dims.
    let (Some(src), Some(dims)) = (cx.input(0), cx.known_dims(0)) else {
        return;
    };
    let full: Vec<SliceAxis> = dims
        .iter()
        .zip(plan)
        .map(|(&d, p)| {
            p.unwrap_or(SliceAxis {
                start: 0,
                step: 1,
                len: d,
            })
        })
        .collect();
    if let Some((out_dims, map)) = index::slice(&dims, &full, cx.limit) {
        cx.move_elements(0, src, out_dims, &map);
    }
}

/// `OneHot(indices, depth, values, axis)`: a `depth` axis inserted at `axis`, values' type.
pub(super) fn one_hot(cx: &mut Ctx<'_, '_>) {
    cx.set_dtype(0, cx.dtype(2));
    let (Some(s), Some(axis)) = (cx.shape(0), cx.attrs.int_or("axis", -1)) else {
        return;
    };
    let Some(axis) = normalize_axis(axis, s.rank() + 1) else {
        return;
    };
    // Depth may be any numeric type; a float depth is truncated.
    let depth = cx.constant(1).and_then(|c| {
        let v = c.scalar_as_f64()?;
        (0.0..9.0e18).contains(&v).then(|| v.trunc() as i64)
    });
    let depth = match depth {
        Some(d) => Dim::Known(d),
        None => cx.fresh(),
    };
    let mut out = s.clone();
    out.0.insert(axis, depth);
    cx.set_shape(0, Some(out));
}

/// `NonZero(x)`: int64 `[rank, count]`.
pub(super) fn non_zero(cx: &mut Ctx<'_, '_>) {
    cx.set_dtype(0, Some(DataType::Int64));
    let r = cx.rank(0);
    let count = cx.fresh();
    if let Some(r) = r {
        cx.set_shape(0, Some(Shape::new([Dim::Known(r as i64), count])));
    }
}

/// `Compress(x, condition, axis)`: as many elements along `axis` (or of the flattened x) as
/// `condition` selects.
pub(super) fn compress(cx: &mut Ctx<'_, '_>) {
    cx.set_dtype(0, cx.dtype(0));
    // The count of selected elements, when the condition is a known, not longer than the axis.
    let selected = |cx: &mut Ctx<'_, '_>, avail: Option<i64>| -> Dim {
        let count = cx.constant(1).and_then(|c| match &c.data {
            ConstData::Bool(v) if avail.is_some_and(|n| v.len() as i64 <= n) => {
                Some(v.iter().filter(|&&b| b).count() as i64)
            }
            _ => None,
        });
        count.map_or_else(|| cx.fresh(), Dim::Known)
    };
    match cx.attrs.int("axis") {
        Ok(None) => {
            let avail = cx
                .input(0)
                .and_then(|f| f.shape.clone())
                .and_then(|s| s.known_numel(cx.syms));
            let d = selected(cx, avail);
            cx.set_shape(0, Some(Shape::new([d])));
        }
        Ok(Some(axis)) => {
            let Some(s) = cx.shape(0) else {
                return;
            };
            let Some(axis) = normalize_axis(axis, s.rank()) else {
                return;
            };
            let avail = cx.syms.value_of(s.0[axis]);
            let mut out = s.clone();
            out.0[axis] = selected(cx, avail);
            cx.set_shape(0, Some(out));
        }
        Err(_) => {}
    }
}

/// `TopK(x, k)`: values (x's type) and int64 indices, `k` along `axis`. `k` is an attribute
/// before opset 10, then input 1.
pub(super) fn top_k(cx: &mut Ctx<'_, '_>) {
    cx.set_dtype(0, cx.dtype(0));
    cx.set_dtype(1, Some(DataType::Int64));
    let (Some(s), Some(axis)) = (cx.shape(0), cx.attrs.int_or("axis", -1)) else {
        return;
    };
    let Some(axis) = normalize_axis(axis, s.rank()) else {
        return;
    };
    let k = if cx.opset() < 10 {
        cx.attrs.int("k").ok().flatten()
    } else {
        cx.scalar_int(1)
    };
    let k = match k {
        Some(k) if k >= 0 => Dim::Known(k),
        Some(_) => return,
        None => cx.fresh(),
    };
    let mut out = s.clone();
    out.0[axis] = k;
    cx.set_shape(0, Some(out.clone()));
    cx.set_shape(1, Some(out));
}

/// `Unique(x)`: Y, indices, inverse_indices, counts. Y has one unknown count of unique
/// elements (or slices along `axis`), which indices and counts share.
pub(super) fn unique(cx: &mut Ctx<'_, '_>) {
    cx.set_dtype(0, cx.dtype(0));
    for i in 1..4 {
        cx.set_dtype(i, Some(DataType::Int64));
    }
    let unique = cx.fresh();
    let axis = match cx.attrs.int("axis") {
        Ok(a) => a,
        Err(_) => return,
    };
    let s = cx.shape(0);
    let (y, inverse) = match (axis, &s) {
        (None, _) => {
            let n = s
                .as_ref()
                .map(|s| s.numel(cx.syms))
                .unwrap_or_else(|| cx.fresh());
            (Some(Shape::new([unique])), Some(Shape::new([n])))
        }
        (Some(a), Some(s)) => match normalize_axis(a, s.rank()) {
            Some(a) => {
                let mut y = s.clone();
                y.0[a] = unique;
                (Some(y), Some(Shape::new([s.0[a]])))
            }
            None => return,
        },
        (Some(_), None) => (None, None),
    };
    cx.set_shape(0, y);
    cx.set_shape(1, Some(Shape::new([unique])));
    cx.set_shape(2, inverse);
    cx.set_shape(3, Some(Shape::new([unique])));
}
