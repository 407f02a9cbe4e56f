//! Ops that make tensors: `Constant`, `ConstantOfShape`, `Range`, `EyeLike`, the random
//! generators and the window functions.

use onnx_rewrite_proto::tensor_proto::DataType;

use super::Ctx;
use crate::constant::{ConstData, ConstTensor, element_count};
use crate::fold;
use crate::shape::Shape;
use crate::symbols::Dim;
use crate::value::ValueFacts;

/// A dtype attribute (`to`, `dtype`, `output_datatype`), or `default` when absent.
fn dtype_attr(cx: &Ctx<'_, '_>, name: &str, default: Option<DataType>) -> Option<DataType> {
    match cx.attrs.int(name) {
        Ok(Some(v)) => i32::try_from(v)
            .ok()
            .and_then(|v| DataType::try_from(v).ok())
            .filter(|&d| d != DataType::Undefined),
        Ok(None) => default,
        Err(_) => None,
    }
}

/// `Constant`: whichever `value*` attribute it has.
pub(super) fn constant(cx: &mut Ctx<'_, '_>) {
    let limit = cx.limit;
    let facts = if let Ok(Some(t)) = cx.attrs.tensor("value") {
        match ConstTensor::from_proto(t, limit) {
            Some(c) => ValueFacts::of_constant(c),
            None => ValueFacts {
                dtype: t
                    .data_type
                    .and_then(|d| DataType::try_from(d).ok())
                    .filter(|&d| d != DataType::Undefined),
                shape: t
                    .dims
                    .iter()
                    .all(|&d| d >= 0)
                    .then(|| Shape::known(&t.dims)),
                ..Default::default()
            },
        }
    } else if let Ok(Some(f)) = cx.attrs.float("value_float") {
        ValueFacts::of_constant(ConstTensor {
            dtype: DataType::Float,
            dims: vec![],
            data: ConstData::F32(vec![f]),
        })
    } else if let Ok(Some(v)) = cx.attrs.floats("value_floats") {
        let c = ConstTensor::new(vec![v.len() as i64], ConstData::F32(v.to_vec()));
        match c.filter(|c| c.len() <= limit) {
            Some(c) => ValueFacts::of_constant(c),
            None => sized(DataType::Float, Shape::known(&[v.len() as i64])),
        }
    } else if let Ok(Some(i)) = cx.attrs.int("value_int") {
        ValueFacts::of_constant(ConstTensor::scalar_i64(i))
    } else if let Ok(Some(v)) = cx.attrs.ints("value_ints") {
        if v.len() <= limit {
            ValueFacts::of_constant(ConstTensor::vector_i64(v.to_vec()))
        } else {
            sized(DataType::Int64, Shape::known(&[v.len() as i64]))
        }
    } else if let Ok(Some(_)) = cx.attrs.string("value_string") {
        sized(DataType::String, Shape::scalar())
    } else if let Ok(Some(n)) = cx.attrs.strings("value_strings") {
        sized(DataType::String, Shape::known(&[n as i64]))
    } else if let Ok(Some(a)) = cx.attrs.get("sparse_value")
        && let Some(sp) = &a.sparse_tensor
    {
        sized_opt(
            sp.values
                .as_ref()
                .and_then(|v| v.data_type)
                .and_then(|d| DataType::try_from(d).ok()),
            sp.dims
                .iter()
                .all(|&d| d >= 0)
                .then(|| Shape::known(&sp.dims)),
        )
    } else {
        return;
    };
    if let Some(o) = cx.output(0) {
        *o = facts;
    }
}

fn sized(dtype: DataType, shape: Shape) -> ValueFacts {
    sized_opt(Some(dtype), Some(shape))
}

fn sized_opt(dtype: Option<DataType>, shape: Option<Shape>) -> ValueFacts {
    ValueFacts {
        dtype,
        shape,
        ..Default::default()
    }
}

/// `ConstantOfShape(shape)`: `value` (one element, float 0 by default) repeated.
pub(super) fn constant_of_shape(cx: &mut Ctx<'_, '_>) {
    let value = match cx.attrs.tensor("value") {
        Ok(Some(t)) => ConstTensor::from_proto(t, 1).filter(|c| c.len() == 1),
        Ok(None) => Some(ConstTensor {
            dtype: DataType::Float,
            dims: vec![],
            data: ConstData::F32(vec![0.0]),
        }),
        Err(_) => None,
    };
    let dtype = match (&value, cx.attrs.tensor("value")) {
        (Some(v), _) => Some(v.dtype),
        (None, Ok(Some(t))) => t.data_type.and_then(|d| DataType::try_from(d).ok()),
        _ => None,
    };
    cx.set_dtype(0, dtype);
    let Some(target) = cx.dim_values(0) else {
        if let Some(n) = cx.vector_len(0) {
            let out = cx.fresh_shape(n);
            cx.set_shape(0, Some(out));
        }
        return;
    };
    let Some(out) = cx.dims_of_values(&target) else {
        return;
    };
    cx.set_shape(0, Some(out.clone()));
    if let (Some(v), Some(dims)) = (value, out.known_dims(cx.syms))
        && let Some(n) = element_count(&dims).filter(|&n| n <= cx.limit)
        && let Some(data) = v.data.splat(0, n)
    {
        cx.fold(0, ConstTensor::new(dims, data));
    }
}

/// The length of a float `Range`: `ceil((limit - start) / delta)`, the difference taken in the
/// element type and the division in double, as onnx and ONNX Runtime compute it.
fn float_range_len(start: &ConstTensor, limit: &ConstTensor, delta: &ConstTensor) -> Option<i64> {
    let (s, l, d) = (
        start.scalar_as_f64()?,
        limit.scalar_as_f64()?,
        delta.scalar_as_f64()?,
    );
    let diff = if start.dtype == DataType::Float {
        f64::from(l as f32 - s as f32)
    } else {
        l - s
    };
    let n = (diff / d).ceil();
    (n.is_finite() && n < 9.0e18).then(|| (n.max(0.0)) as i64)
}

/// `Range(start, limit, delta)`: 1-D, `start`'s type; folded over integers.
pub(super) fn range(cx: &mut Ctx<'_, '_>) {
    let dtype = cx.dtype(0).or_else(|| cx.dtype(1)).or_else(|| cx.dtype(2));
    cx.set_dtype(0, dtype);
    let (Some(start), Some(limit), Some(delta)) = (cx.constant(0), cx.constant(1), cx.constant(2))
    else {
        let n = cx.fresh();
        cx.set_shape(0, Some(Shape::new([n])));
        return;
    };
    let integer = start.to_i64s().is_some();
    let ints = (
        start.scalar_as_i64(),
        limit.scalar_as_i64(),
        delta.scalar_as_i64(),
    );
    let len = match ints {
        (Some(s), Some(l), Some(d)) if integer => fold::range_len(s, l, d),
        _ => float_range_len(start, limit, delta),
    };
    let dim = len.map_or_else(|| cx.fresh(), Dim::Known);
    cx.set_shape(0, Some(Shape::new([dim])));
    if let ((Some(s), _, Some(d)), Some(n), true) = (ints, len, integer)
        && usize::try_from(n).is_ok_and(|n| n <= cx.limit)
        && let Some(values) = fold::range_values(s, d, n)
    {
        // Every value lies between start and limit, so it fits start's type.
        let r = fold::cast(&ConstTensor::vector_i64(values), start.dtype);
        cx.fold(0, r);
    }
}

/// `EyeLike(x)`: x's 2-D shape, `dtype` or x's type.
pub(super) fn eye_like(cx: &mut Ctx<'_, '_>) {
    let d = dtype_attr(cx, "dtype", cx.dtype(0));
    cx.set_dtype(0, d);
    cx.set_shape(0, cx.shape(0));
}

/// `RandomNormal`, `RandomUniform`: `shape` attribute, `dtype` (float).
pub(super) fn random(cx: &mut Ctx<'_, '_>) {
    let d = dtype_attr(cx, "dtype", Some(DataType::Float));
    cx.set_dtype(0, d);
    let s = cx
        .attrs
        .ints("shape")
        .ok()
        .flatten()
        .filter(|s| s.iter().all(|&d| d >= 0));
    cx.set_shape(0, s.map(Shape::known));
}

/// `RandomNormalLike`, `RandomUniformLike`, `Bernoulli`: the input's shape, `dtype` or its type.
pub(super) fn random_like(cx: &mut Ctx<'_, '_>) {
    let d = dtype_attr(cx, "dtype", cx.dtype(0));
    cx.set_dtype(0, d);
    cx.set_shape(0, cx.shape(0));
}

/// `Multinomial(input [batch, classes])`: `[batch, sample_size]`, `dtype` (int32).
pub(super) fn multinomial(cx: &mut Ctx<'_, '_>) {
    let d = dtype_attr(cx, "dtype", Some(DataType::Int32));
    cx.set_dtype(0, d);
    if let (Some(s), Some(n)) = (cx.shape(0), cx.attrs.int_or("sample_size", 1))
        && let [batch, _] = s.0.as_slice()
    {
        cx.set_shape(0, Some(Shape::new([*batch, Dim::Known(n)])));
    }
}

/// `HannWindow`, `HammingWindow`, `BlackmanWindow(size)`: `[size]`, `output_datatype` (float).
pub(super) fn window(cx: &mut Ctx<'_, '_>) {
    let d = dtype_attr(cx, "output_datatype", Some(DataType::Float));
    cx.set_dtype(0, d);
    let n = match cx.scalar_int(0) {
        Some(n) if n >= 0 => Dim::Known(n),
        Some(_) => return,
        None => cx.fresh(),
    };
    cx.set_shape(0, Some(Shape::new([n])));
}
