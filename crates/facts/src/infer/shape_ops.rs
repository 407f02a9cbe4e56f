//! Ops that compute or rearrange shapes: `Shape`, `Size`, `Reshape`, `Flatten`, `Squeeze`,
//! `Unsqueeze`, `Transpose`, `Concat`, `Split`, `Expand`, `Tile`, `Pad`, `DepthToSpace`,
//! `SpaceToDepth`, `Resize`/`Upsample`, `CenterCropPad`.
//!
//! Where a shape operand is computed in the graph, its per-element dims (a constant or a
//! `shape_value`) stand in for a constant, so `Reshape(x, Concat(Shape(x)[0], [-1]))` keeps `N`.

use onnx_rewrite_proto::tensor_proto::DataType;

use super::Ctx;
use crate::constant::{ConstData, ConstTensor};
use crate::index;
use crate::shape::{self, Monomial, Shape, normalize_axes, normalize_axis};
use crate::symbols::Dim;
use crate::value::DimValues;

/// `Shape(x)`: int64 `[rank]` (or `[end - start]`, opset 15), whose elements are x's dims.
pub(super) fn shape(cx: &mut Ctx<'_, '_>) {
    cx.set_dtype(0, Some(DataType::Int64));
    let Some(s) = cx.shape(0) else {
        let len = cx.fresh();
        cx.set_shape(0, Some(Shape::new([len])));
        return;
    };
    let Some(rank) = i64::try_from(s.rank()).ok() else {
        return;
    };
    let (start, end) = if cx.opset() >= 15 {
        match (cx.attrs.int_or("start", 0), cx.attrs.int_or("end", rank)) {
            (Some(a), Some(b)) => (a, b),
            _ => {
                let len = cx.fresh();
                cx.set_shape(0, Some(Shape::new([len])));
                return;
            }
        }
    } else {
        (0, rank)
    };
    let clamp = |v: i64| (if v < 0 { v.saturating_add(rank) } else { v }).clamp(0, rank);
    let (start, end) = (clamp(start), clamp(end));
    let dims: DimValues = if start < end {
        s.0[start as usize..end as usize]
            .iter()
            .map(|&d| Some(d))
            .collect()
    } else {
        DimValues::new()
    };
    let len = dims.len() as i64;
    cx.set_shape(0, Some(Shape::known(&[len])));
    cx.set_dim_values(0, DataType::Int64, Shape::known(&[len]), dims);
}

/// `Size(x)`: an int64 scalar, x's element count.
pub(super) fn size(cx: &mut Ctx<'_, '_>) {
    cx.set_dtype(0, Some(DataType::Int64));
    cx.set_shape(0, Some(Shape::scalar()));
    let Some(s) = cx.shape(0) else {
        return;
    };
    // Only a value or a single symbol is a dim; a product of symbols stays unknown.
    let n = shape::product_exact(cx.syms, &s.0);
    let values: DimValues = [n].into_iter().collect();
    cx.set_dim_values(0, DataType::Int64, Shape::scalar(), values);
}

/// The output dims of a `Reshape` of `input` (if known) to `target` elements.
fn reshape_dims(
    cx: &mut Ctx<'_, '_>,
    input: Option<&Shape>,
    target: &[Option<Dim>],
    allowzero: bool,
) -> Option<Shape> {
    let mut out = Shape::default();
    let mut infer_at = None;
    for (i, t) in target.iter().enumerate() {
        let d = match t.map(|d| cx.syms.resolve(d)) {
            Some(Dim::Known(0)) if !allowzero => match input.and_then(|s| s.get(i)) {
                Some(d) => d,
                None if input.is_some() => return None,
                None => cx.fresh(),
            },
            Some(Dim::Known(-1)) => {
                if infer_at.replace(i).is_some() {
                    return None;
                }
                Dim::Known(-1)
            }
            Some(Dim::Known(k)) if k < -1 => return None,
            Some(d) => d,
            None => cx.fresh(),
        };
        out.0.push(d);
    }
    if let Some(at) = infer_at {
        let others: Vec<Dim> = out
            .0
            .iter()
            .enumerate()
            .filter(|&(i, _)| i != at)
            .map(|(_, &d)| d)
            .collect();
        let inferred = input
            .and_then(|s| {
                let total = Monomial::of(cx.syms, &s.0);
                let known = Monomial::of(cx.syms, &others);
                total.checked_div(&known)
            })
            .map(|q| q.to_dim(cx.syms))
            .unwrap_or_else(|| cx.fresh());
        out.0[at] = inferred;
    }
    Some(out)
}

/// `Reshape(data, shape)`: the target is the `shape` attribute before opset 5, else input 1.
pub(super) fn reshape(cx: &mut Ctx<'_, '_>) {
    cx.set_dtype(0, cx.dtype(0));
    let target: Option<DimValues> = if cx.opset() < 5 {
        cx.attrs
            .ints("shape")
            .ok()
            .flatten()
            .map(|v| v.iter().map(|&x| Some(Dim::Known(x))).collect())
    } else {
        cx.dim_values(1)
    };
    let allowzero = cx.opset() >= 14 && cx.attrs.int_or("allowzero", 0) != Some(0);
    let input = cx.shape(0);
    let out = match target {
        Some(t) => reshape_dims(cx, input.as_ref(), &t, allowzero),
        // An unknown target of known length still gives the rank.
        None => cx.vector_len(1).map(|n| cx.fresh_shape(n)),
    };
    cx.set_shape(0, out.clone());
    cx.same_elements(out.as_ref());
}

/// `Flatten(x)`: `[prod(dims[..axis]), prod(dims[axis..])]`.
pub(super) fn flatten(cx: &mut Ctx<'_, '_>) {
    cx.set_dtype(0, cx.dtype(0));
    let (Some(s), Some(axis)) = (cx.shape(0), cx.attrs.int_or("axis", 1)) else {
        // The output is 2-D whatever the input.
        let out = cx.fresh_shape(2);
        cx.set_shape(0, Some(out));
        return;
    };
    let rank = s.rank() as i64;
    let axis = if axis < 0 {
        axis.saturating_add(rank)
    } else {
        axis
    };
    if !(0..=rank).contains(&axis) {
        return;
    }
    let (head, tail) = s.0.split_at(axis as usize);
    let out = Shape::new([shape::product(cx.syms, head), shape::product(cx.syms, tail)]);
    cx.set_shape(0, Some(out.clone()));
    cx.same_elements(Some(&out));
}

/// The axes of `Squeeze`/`Unsqueeze`: the attribute before opset 13, then input 1.
/// `Ok(None)`: no axes given; `Err(())`: given but unknown.
fn axes_operand(cx: &mut Ctx<'_, '_>) -> Result<Option<Vec<i64>>, ()> {
    if cx.opset() < 13 {
        return cx
            .attrs
            .ints("axes")
            .map(|a| a.map(<[i64]>::to_vec))
            .map_err(|_| ());
    }
    if cx.input(1).is_none() {
        return Ok(None);
    }
    cx.ints(1).map(Some).ok_or(())
}

/// `Squeeze(x, axes)`: removes the given dims, or every dim of size 1 when none are given
/// (unknown unless each dim is known to be 1 or not).
pub(super) fn squeeze(cx: &mut Ctx<'_, '_>) {
    cx.set_dtype(0, cx.dtype(0));
    let Some(s) = cx.shape(0) else {
        return;
    };
    let out = match axes_operand(cx) {
        Ok(Some(axes)) => normalize_axes(&axes, s.rank()).map(|axes| {
            Shape::new(
                s.0.iter()
                    .enumerate()
                    .filter(|(i, _)| !axes.contains(i))
                    .map(|(_, &d)| d),
            )
        }),
        Ok(None) => {
            let resolved = s.resolved(cx.syms);
            if resolved.0.iter().any(|d| matches!(d, Dim::Sym(_))) {
                None
            } else {
                Some(Shape::new(
                    resolved.0.into_iter().filter(|&d| d != Dim::Known(1)),
                ))
            }
        }
        Err(()) => None,
    };
    cx.set_shape(0, out.clone());
    cx.same_elements(out.as_ref());
}

/// `Unsqueeze(x, axes)`: inserts dims of size 1 at `axes` of the output.
pub(super) fn unsqueeze(cx: &mut Ctx<'_, '_>) {
    cx.set_dtype(0, cx.dtype(0));
    let Some(s) = cx.shape(0) else {
        return;
    };
    let out = match axes_operand(cx) {
        Ok(Some(axes)) => s.rank().checked_add(axes.len()).and_then(|rank| {
            let axes = normalize_axes(&axes, rank)?;
            let mut src = s.0.iter();
            (0..rank)
                .map(|i| {
                    if axes.contains(&i) {
                        Some(Dim::Known(1))
                    } else {
                        src.next().copied()
                    }
                })
                .collect::<Option<Shape>>()
        }),
        Ok(None) | Err(()) => None,
    };
    cx.set_shape(0, out.clone());
    cx.same_elements(out.as_ref());
}

/// `Transpose(x)` by `perm` (default: reversed).
pub(super) fn transpose(cx: &mut Ctx<'_, '_>) {
    cx.set_dtype(0, cx.dtype(0));
    let Some(s) = cx.shape(0) else {
        return;
    };
    let perm: Vec<usize> = match cx.attrs.ints("perm") {
        Ok(Some(p)) => match normalize_axes(p, s.rank()) {
            // A permutation: every axis exactly once (normalize_axes refuses repeats).
            Some(p) if p.len() == s.rank() => p,
            _ => return,
        },
        Ok(None) => (0..s.rank()).rev().collect(),
        Err(_) => {
            let out = cx.fresh_shape(s.rank());
            cx.set_shape(0, Some(out));
            return;
        }
    };
    let out = Shape::new(perm.iter().map(|&p| s.0[p]));
    cx.set_shape(0, Some(out));
    let Some(src) = cx.input(0) else {
        return;
    };
    if let Some(dims) = s.known_dims(cx.syms)
        && let Some((out_dims, map)) = index::transpose(&dims, &perm, cx.limit)
    {
        cx.move_elements(0, src, out_dims, &map);
    }
}

/// `Concat(inputs..., axis)`: dims add up along `axis`, agree elsewhere.
pub(super) fn concat(cx: &mut Ctx<'_, '_>) {
    let n = cx.inputs.len();
    cx.set_dtype(0, (0..n).find_map(|i| cx.dtype(i)));
    let default_axis = if cx.opset() < 4 { 1 } else { 0 };
    let Some(axis) = cx.attrs.int_or("axis", default_axis) else {
        return;
    };
    let shapes: Vec<Option<Shape>> = (0..n).map(|i| cx.shape(i)).collect();
    let Some(rank) = shapes.iter().flatten().map(Shape::rank).next() else {
        return;
    };
    if shapes.iter().flatten().any(|s| s.rank() != rank) {
        return;
    }
    let Some(axis) = normalize_axis(axis, rank) else {
        return;
    };
    let mut out = Shape::default();
    for d in 0..rank {
        let dim = if d == axis {
            let parts: Option<Vec<Dim>> =
                shapes.iter().map(|s| s.as_ref().map(|s| s.0[d])).collect();
            match parts {
                Some(parts) => shape::sum(cx.syms, &parts),
                None => cx.fresh(),
            }
        } else {
            // Every input has this dim; take the most precise one.
            let mut best = None;
            for s in shapes.iter().flatten() {
                let r = cx.syms.resolve(s.0[d]);
                if best.is_none() || matches!(r, Dim::Known(_)) {
                    best = Some(r);
                }
            }
            best.unwrap_or(Dim::Known(1))
        };
        out.0.push(dim);
    }
    cx.set_shape(0, Some(out));
    concat_elements(cx, axis);
}

/// Concat of constants or per-element dims.
fn concat_elements(cx: &mut Ctx<'_, '_>, axis: usize) {
    let n = cx.inputs.len();
    let mut dims = Vec::with_capacity(n);
    for i in 0..n {
        match cx.known_dims(i) {
            Some(d) => dims.push(d),
            None => return,
        }
    }
    let parts: Vec<&[i64]> = dims.iter().map(Vec::as_slice).collect();
    let Some((out_dims, map)) = index::concat(&parts, axis, cx.limit) else {
        return;
    };
    if let Some(consts) = cx.constants(0..n) {
        let datas: Vec<&ConstData> = consts.iter().map(|c| &c.data).collect();
        if let Some(all) = ConstData::concat(&datas)
            && map.iter().all(|&i| i < all.len())
        {
            cx.fold(0, ConstTensor::new(out_dims, all.select(&map)));
        }
        return;
    }
    let Some(dtype) = cx.dtype(0) else {
        return;
    };
    let mut all = DimValues::new();
    for i in 0..n {
        match cx.dim_values(i) {
            Some(v) => all.extend(v),
            None => return,
        }
    }
    let values: Option<DimValues> = map.iter().map(|&i| all.get(i).copied()).collect();
    if let Some(values) = values {
        cx.set_dim_values(0, dtype, Shape::known(&out_dims), values);
    }
}

/// The split sizes of `Split`, if given: the `split` attribute (opsets 1–12; opset 1 also took
/// an input), then input 1 (opset 13+). `Err(())`: given but unknown.
fn split_sizes(cx: &mut Ctx<'_, '_>) -> Result<Option<Vec<i64>>, ()> {
    if cx.opset() < 13 {
        if let Some(s) = cx.attrs.ints("split").map_err(|_| ())? {
            return Ok(Some(s.to_vec()));
        }
        if cx.opset() < 2 && cx.input(1).is_some() {
            return cx.ints(1).map(Some).ok_or(());
        }
        return Ok(None);
    }
    if cx.input(1).is_none() {
        return Ok(None);
    }
    cx.ints(1).map(Some).ok_or(())
}

/// `Split(x)` into `outputs` parts along `axis`: given sizes, or equal parts (opset 18's
/// `num_outputs` allows a smaller last part).
pub(super) fn split(cx: &mut Ctx<'_, '_>) {
    let n_out = cx.op.outputs;
    for i in 0..n_out {
        cx.set_dtype(i, cx.dtype(0));
    }
    let (Some(s), Some(axis)) = (cx.shape(0), cx.attrs.int_or("axis", 0)) else {
        return;
    };
    let Some(axis) = normalize_axis(axis, s.rank()) else {
        return;
    };
    let dim = cx.syms.resolve(s.0[axis]);
    let sizes: Vec<Dim> = match split_sizes(cx) {
        Ok(Some(sizes)) if sizes.len() == n_out && sizes.iter().all(|&v| v >= 0) => {
            sizes.into_iter().map(Dim::Known).collect()
        }
        Ok(Some(_)) => return,
        Ok(None) => {
            let num_outputs = cx.attrs.int("num_outputs").ok().flatten();
            let n = i64::try_from(n_out).unwrap_or(i64::MAX).max(1);
            match dim {
                Dim::Known(d) if num_outputs.is_some() && cx.opset() >= 18 => {
                    // ceil(d / n) each, the remainder last.
                    let chunk = d / n + i64::from(d % n != 0);
                    let last = d - chunk * (n - 1);
                    if last < 0 {
                        return;
                    }
                    (0..n_out)
                        .map(|i| Dim::Known(if i + 1 == n_out { last } else { chunk }))
                        .collect()
                }
                Dim::Known(d) if d % n == 0 => vec![Dim::Known(d / n); n_out],
                Dim::Known(_) => return,
                Dim::Sym(_) => {
                    // Equal parts (all but the last with num_outputs) are one unknown size.
                    let part = cx.fresh();
                    let mut v = vec![part; n_out];
                    if num_outputs.is_some()
                        && let Some(last) = v.last_mut()
                    {
                        *last = cx.syms.fresh_dim();
                    }
                    v
                }
            }
        }
        Err(()) => {
            // Unknown sizes: only the split axis is unknown.
            for i in 0..n_out {
                let mut out = s.clone();
                out.0[axis] = cx.fresh();
                cx.set_shape(i, Some(out));
            }
            return;
        }
    };
    let mut start = 0i64;
    let known = s.known_dims(cx.syms);
    for (i, &size) in sizes.iter().enumerate() {
        let mut out = s.clone();
        out.0[axis] = size;
        cx.set_shape(i, Some(out));
        // Fold the parts of a constant (or of per-element dims).
        if let (Some(dims), Dim::Known(len), Some(src)) = (&known, size, cx.input(0)) {
            let axes: Vec<index::SliceAxis> = dims
                .iter()
                .enumerate()
                .map(|(d, &n)| {
                    if d == axis {
                        index::SliceAxis {
                            start,
                            step: 1,
                            len,
                        }
                    } else {
                        index::SliceAxis {
                            start: 0,
                            step: 1,
                            len: n,
                        }
                    }
                })
                .collect();
            if let Some((out_dims, map)) = index::slice(dims, &axes, cx.limit) {
                cx.move_elements(i, src, out_dims, &map);
            }
            start = start.saturating_add(len);
        }
    }
}

/// `Expand(x, shape)`: x broadcast with the target shape.
pub(super) fn expand(cx: &mut Ctx<'_, '_>) {
    cx.set_dtype(0, cx.dtype(0));
    let Some(target) = cx.dim_values(1) else {
        // The output rank is max(rank(x), len(shape)); its dims are unknown.
        if let (Some(len), Some(r)) = (cx.vector_len(1), cx.rank(0)) {
            let out = cx.fresh_shape(len.max(r));
            cx.set_shape(0, Some(out));
        }
        return;
    };
    let Some(target) = cx.dims_of_values(&target) else {
        return;
    };
    let Some(s) = cx.shape(0) else {
        return;
    };
    let out = shape::broadcast(cx.syms, &[&s, &target]);
    cx.set_shape(0, out.clone());
    if let (Some(src), Some(in_dims), Some(out_dims)) = (
        cx.input(0),
        s.known_dims(cx.syms),
        out.and_then(|o| o.known_dims(cx.syms)),
    ) && let Some(map) = index::broadcast(&in_dims, &out_dims, cx.limit)
    {
        cx.move_elements(0, src, out_dims, &map);
    }
}

/// `Tile(x, repeats)`: each dim times its repeat count.
pub(super) fn tile(cx: &mut Ctx<'_, '_>) {
    cx.set_dtype(0, cx.dtype(0));
    let Some(s) = cx.shape(0) else {
        return;
    };
    let Some(repeats) = cx.ints(1) else {
        let out = cx.fresh_shape(s.rank());
        cx.set_shape(0, Some(out));
        return;
    };
    if repeats.len() != s.rank() || repeats.iter().any(|&r| r < 0) {
        return;
    }
    let out = Shape::new(
        s.0.iter()
            .zip(&repeats)
            .map(|(&d, &r)| shape::mul_dim(cx.syms, d, Dim::Known(r)))
            .collect::<Vec<_>>(),
    );
    cx.set_shape(0, Some(out));
    if let (Some(src), Some(dims)) = (cx.input(0), s.known_dims(cx.syms))
        && let Some((out_dims, map)) = index::tile(&dims, &repeats, cx.limit)
    {
        cx.move_elements(0, src, out_dims, &map);
    }
}

/// `Pad(x, pads)`: `[begin..., end...]` added to the padded axes. Pads are the `paddings`
/// attribute in opset 1, `pads` in 2–10, then input 1 (with `axes`, input 3, from opset 18).
pub(super) fn pad(cx: &mut Ctx<'_, '_>) {
    cx.set_dtype(0, cx.dtype(0));
    let Some(s) = cx.shape(0) else {
        return;
    };
    let rank = s.rank();
    let pads = match cx.opset() {
        ..2 => cx
            .attrs
            .ints("paddings")
            .ok()
            .flatten()
            .map(<[i64]>::to_vec),
        2..11 => cx.attrs.ints("pads").ok().flatten().map(<[i64]>::to_vec),
        _ => cx.ints(1),
    };
    let axes: Option<Vec<usize>> = if cx.opset() >= 18 && cx.input(3).is_some() {
        cx.ints(3).and_then(|a| normalize_axes(&a, rank))
    } else {
        Some((0..rank).collect())
    };
    let (Some(pads), Some(axes)) = (pads, axes) else {
        let out = cx.fresh_shape(rank);
        cx.set_shape(0, Some(out));
        return;
    };
    if pads.len() != axes.len() * 2 {
        return;
    }
    let mut out = s.clone();
    for (k, &a) in axes.iter().enumerate() {
        let (b, e) = (pads[k], pads[k + axes.len()]);
        out.0[a] = shape::sum(cx.syms, &[s.0[a], Dim::Known(b), Dim::Known(e)]);
    }
    cx.set_shape(0, Some(out));
}

/// `DepthToSpace` / `SpaceToDepth` on `[N, C, H, W]` with `blocksize`.
pub(super) fn depth_space(cx: &mut Ctx<'_, '_>) {
    cx.set_dtype(0, cx.dtype(0));
    let (Some(s), Some(b)) = (cx.shape(0), cx.attrs.int("blocksize").ok().flatten()) else {
        return;
    };
    let [n, c, h, w] = s.0.as_slice() else {
        return;
    };
    let Some(bb) = b.checked_mul(b).filter(|&v| v > 0) else {
        return;
    };
    let div = |cx: &mut Ctx<'_, '_>, d: Dim, by: i64| match cx.syms.resolve(d) {
        Dim::Known(v) if v % by == 0 => Dim::Known(v / by),
        _ => cx.fresh(),
    };
    let out = if cx.op.op_type == "DepthToSpace" {
        [
            *n,
            div(cx, *c, bb),
            shape::mul_dim(cx.syms, *h, Dim::Known(b)),
            shape::mul_dim(cx.syms, *w, Dim::Known(b)),
        ]
    } else {
        [
            *n,
            shape::mul_dim(cx.syms, *c, Dim::Known(bb)),
            div(cx, *h, b),
            div(cx, *w, b),
        ]
    };
    cx.set_shape(0, Some(Shape::new(out)));
}

/// `floor(dim * scale)`, as onnx (in double) and ONNX Runtime (in float) compute it; a fresh
/// symbol where the two disagree or the value is out of range.
fn scaled(cx: &mut Ctx<'_, '_>, d: Dim, scale: f32) -> Dim {
    let Dim::Known(v) = cx.syms.resolve(d) else {
        return if scale == 1.0 { d } else { cx.fresh() };
    };
    let wide = (v as f64 * f64::from(scale)).floor();
    let narrow = f64::from(v as f32 * scale).floor();
    if wide == narrow && wide.is_finite() && (0.0..9.0e18).contains(&wide) {
        Dim::Known(wide as i64)
    } else {
        cx.fresh()
    }
}

/// `Resize` (scales or sizes, opset 10 / 11+ inputs, `axes` and aspect policy from 18) and
/// `Upsample` (scales attribute before opset 9, input after).
pub(super) fn resize(cx: &mut Ctx<'_, '_>) {
    cx.set_dtype(0, cx.dtype(0));
    let Some(s) = cx.shape(0) else {
        return;
    };
    let rank = s.rank();
    let upsample = cx.op.op_type == "Upsample";
    let (scales_at, sizes_at) = if upsample || cx.opset() < 11 {
        (1, None)
    } else {
        (2, Some(3))
    };
    let axes: Vec<usize> = match cx.attrs.ints("axes") {
        Ok(Some(a)) if cx.opset() >= 18 => match normalize_axes(a, rank) {
            Some(a) => a,
            None => return,
        },
        Ok(_) => (0..rank).collect(),
        Err(_) => return,
    };
    let stretch = match cx.attrs.string("keep_aspect_ratio_policy") {
        Ok(None) => true,
        Ok(Some(p)) => p == b"stretch",
        Err(_) => false,
    };
    let mut out = s.clone();
    let sizes = sizes_at
        .and_then(|i| cx.constant(i))
        .filter(|c| !c.is_empty());
    let scales: Option<Vec<f32>> = if upsample && cx.opset() < 9 {
        cx.attrs
            .floats("scales")
            .ok()
            .flatten()
            .map(<[f32]>::to_vec)
    } else {
        cx.constant(scales_at)
            .filter(|c| !c.is_empty())
            .and_then(|c| match &c.data {
                ConstData::F32(v) => Some(v.clone()),
                _ => None,
            })
    };
    if let Some(sizes) = sizes {
        match sizes.to_i64s() {
            Some(v) if v.len() == axes.len() && stretch => {
                for (&a, &n) in axes.iter().zip(&v) {
                    out.0[a] = if n >= 0 { Dim::Known(n) } else { cx.fresh() };
                }
            }
            _ => {
                for &a in &axes {
                    out.0[a] = cx.fresh();
                }
            }
        }
    } else if let Some(scales) = scales {
        if scales.len() != axes.len() {
            return;
        }
        for (&a, &f) in axes.iter().zip(&scales) {
            out.0[a] = scaled(cx, s.0[a], f);
        }
    } else {
        // Scales or sizes computed at run time: the rank is all we know.
        out = cx.fresh_shape(rank);
    }
    cx.set_shape(0, Some(out));
}

/// `CenterCropPad(x, shape)`: the given `axes` (default all) take the target sizes.
pub(super) fn center_crop_pad(cx: &mut Ctx<'_, '_>) {
    cx.set_dtype(0, cx.dtype(0));
    let Some(s) = cx.shape(0) else {
        return;
    };
    let axes: Vec<usize> = match cx.attrs.ints("axes") {
        Ok(Some(a)) => match normalize_axes(a, s.rank()) {
            Some(a) => a,
            None => return,
        },
        Ok(None) => (0..s.rank()).collect(),
        Err(_) => return,
    };
    let mut out = s.clone();
    let target = cx.dim_values(1);
    for (k, &a) in axes.iter().enumerate() {
        out.0[a] = match target.as_ref().and_then(|t| t.get(k).copied().flatten()) {
            Some(d) => d,
            None => cx.fresh(),
        };
    }
    cx.set_shape(0, Some(out));
}
