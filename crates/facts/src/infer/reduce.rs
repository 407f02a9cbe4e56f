//! Reductions: `Reduce*` (axes an attribute or, from opset 13 for `ReduceSum` and 18 for the
//! others, an input; `keepdims`; `noop_with_empty_axes`) and `ArgMax`/`ArgMin`.

use onnx_rewrite_proto::tensor_proto::DataType;

use super::Ctx;
use crate::fold::{self, Reduce};
use crate::shape::{Shape, normalize_axes, normalize_axis, product_exact, sum_exact};
use crate::symbols::Dim;
use crate::value::DimValues;

/// The axes to reduce: `Ok(None)` when none are given; `Err(())` when given but unknown.
fn axes(cx: &mut Ctx<'_, '_>) -> Result<Option<Vec<i64>>, ()> {
    let from_input = cx.opset() >= if cx.op.op_type == "ReduceSum" { 13 } else { 18 };
    if !from_input {
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

pub(super) fn reduce(cx: &mut Ctx<'_, '_>) {
    cx.set_dtype(0, cx.dtype(0));
    let Some(s) = cx.shape(0) else {
        return;
    };
    let Some(keepdims) = cx.attrs.int_or("keepdims", 1).map(|k| k != 0) else {
        return;
    };
    let axes = match axes(cx) {
        Ok(Some(a)) if !a.is_empty() => a,
        Ok(_) => {
            let noop = cx.attrs.int_or("noop_with_empty_axes", 0);
            match noop {
                Some(0) => (0..s.rank() as i64).collect(),
                Some(_) => {
                    // Nothing to reduce: the input itself.
                    if let (Some(f), Some(o)) = (cx.input(0), cx.out.get_mut(0)) {
                        *o = f.clone();
                    }
                    return;
                }
                None => return,
            }
        }
        Err(()) => {
            if keepdims {
                let out = cx.fresh_shape(s.rank());
                cx.set_shape(0, Some(out));
            }
            return;
        }
    };
    let Some(axes) = normalize_axes(&axes, s.rank()) else {
        return;
    };
    let out = reduced_shape(&s, &axes, keepdims);
    cx.set_shape(0, Some(out.clone()));

    let op = match cx.op.op_type {
        "ReduceSum" => Reduce::Sum,
        "ReduceProd" => Reduce::Prod,
        "ReduceMax" => Reduce::Max,
        "ReduceMin" => Reduce::Min,
        _ => return,
    };
    if let Some(c) = cx.constant(0) {
        let r = fold::reduce(op, c, &axes, keepdims, cx.limit);
        cx.fold(0, r);
        return;
    }
    // The sum or product of a vector of dims (a shape's element count, say).
    let (Some(values), Some(dtype), true) = (cx.dim_values(0), cx.dtype(0), s.rank() == 1) else {
        return;
    };
    let dims: Option<Vec<Dim>> = values.iter().copied().collect();
    let total = dims.and_then(|dims| match op {
        Reduce::Sum => sum_exact(cx.syms, &dims),
        Reduce::Prod => product_exact(cx.syms, &dims),
        Reduce::Max | Reduce::Min => None,
    });
    let values: DimValues = [total].into_iter().collect();
    cx.set_dim_values(0, dtype, out, values);
}

fn reduced_shape(s: &Shape, axes: &[usize], keepdims: bool) -> Shape {
    let mut out = Shape::default();
    for (i, &d) in s.0.iter().enumerate() {
        if !axes.contains(&i) {
            out.0.push(d);
        } else if keepdims {
            out.0.push(Dim::Known(1));
        }
    }
    out
}

/// `ArgMax` / `ArgMin`: int64 indices, one axis reduced.
pub(super) fn arg(cx: &mut Ctx<'_, '_>) {
    cx.set_dtype(0, Some(DataType::Int64));
    let (Some(s), Some(axis), Some(keepdims)) = (
        cx.shape(0),
        cx.attrs.int_or("axis", 0),
        cx.attrs.int_or("keepdims", 1),
    ) else {
        return;
    };
    let Some(axis) = normalize_axis(axis, s.rank()) else {
        return;
    };
    cx.set_shape(0, Some(reduced_shape(&s, &[axis], keepdims != 0)));
}
