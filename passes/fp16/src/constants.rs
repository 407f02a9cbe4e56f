//! Constant operands: their tensors, small values, and whether they fit the target type.

use onnx_rewrite_ir::{Model, ValueDef, ValueId, tensor};
use onnx_rewrite_proto::TensorProto;
use onnx_rewrite_proto::tensor_proto::DataType;
use rayon::prelude::*;

use crate::convert::Target;

/// The tensor of an initializer or of a `Constant` node's `value`.
pub(crate) fn tensor_of(model: &Model, value: ValueId) -> Option<&TensorProto> {
    let v = model.value(value);
    match v.def() {
        ValueDef::Initializer => v.initializer(),
        ValueDef::Node { node, .. } => {
            let n = model.node(node);
            (n.op_type() == "Constant" && n.domain().is_empty())
                .then(|| n.attribute("value").and_then(|a| a.proto.t.as_deref()))
                .flatten()
        }
        _ => None,
    }
}

/// The values of a float32 constant operand of at most `max` elements (initializer, `Constant`
/// with `value`, `value_float` or `value_floats`).
pub(crate) fn small_floats(model: &Model, value: ValueId, max: usize) -> Option<Vec<f32>> {
    if let ValueDef::Node { node, .. } = model.value(value).def() {
        let n = model.node(node);
        if n.op_type() == "Constant" && n.domain().is_empty() {
            let attr = &n.attributes.first()?.proto;
            match attr.name() {
                "value_float" => return attr.f.map(|f| vec![f]),
                "value_floats" => return (attr.floats.len() <= max).then(|| attr.floats.clone()),
                _ => {}
            }
        }
    }
    let t = tensor_of(model, value)?;
    if t.data_type() != DataType::Float as i32 || tensor::element_count(t).ok()? > max as u64 {
        return None;
    }
    floats(t)
}

/// The elements of a float32 tensor (raw little-endian bytes or `float_data`).
pub(crate) fn floats(t: &TensorProto) -> Option<Vec<f32>> {
    tensor::check_payload(t).ok()?;
    match &t.raw_data {
        Some(raw) => Some(
            raw.chunks_exact(4)
                .map(|c| f32::from_le_bytes([c[0], c[1], c[2], c[3]]))
                .collect(),
        ),
        None => Some(t.float_data.clone()),
    }
}

/// The first value of a float32 tensor that the target type cannot hold: a finite magnitude
/// above its largest finite value, or (in a tensor of at most [`SMALL`] elements, where a value
/// is a parameter such as an epsilon rather than one weight among many) a nonzero magnitude
/// that rounds to zero.
pub(crate) fn out_of_range(t: &TensorProto, target: Target) -> Option<f32> {
    tensor::check_payload(t).ok()?;
    let small = tensor::element_count(t).ok()? <= SMALL;
    let (max, min) = (target.max_finite(), target.smallest());
    let bad = move |x: f32| {
        let a = x.abs();
        (a.is_finite() && a > max) || (small && a != 0.0 && a < min)
    };
    match &t.raw_data {
        Some(raw) => raw.par_chunks(1 << 18).find_map_first(|chunk| {
            chunk
                .chunks_exact(4)
                .map(|c| f32::from_le_bytes([c[0], c[1], c[2], c[3]]))
                .find(|x| bad(*x))
        }),
        None => t.float_data.iter().copied().find(|x| bad(*x)),
    }
}

/// Constants of at most this many elements are checked for values that flush to zero.
pub(crate) const SMALL: u64 = 16;
