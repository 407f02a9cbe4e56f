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
    let max = target.max_finite();
    let bad = move |x: f32| {
        let a = x.abs();
        (a.is_finite() && a > max) || (small && target.flushes(x))
    };
    // The magnitude's bits order like the magnitudes: a finite value is too large when its bits
    // lie between the target's largest finite value and infinity.
    let (max_bits, infinity_bits) = (max.to_bits(), f32::INFINITY.to_bits());
    match &t.raw_data {
        Some(raw) => raw.par_chunks(1 << 18).find_map_first(|chunk| {
            // A branch-free screen that vectorizes (weights are gigabytes); the exact search
            // runs only in a chunk that has a value too large, or in a small tensor.
            let (words, _) = chunk.as_chunks::<4>();
            let too_large = words.iter().fold(0u32, |found, word| {
                let bits = u32::from_le_bytes(*word) & 0x7fff_ffff;
                found | u32::from((bits > max_bits) & (bits < infinity_bits))
            });
            if too_large == 0 && !small {
                return None;
            }
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

#[cfg(test)]
mod tests {
    use super::*;
    use bytes::Bytes;

    fn raw_tensor(values: &[f32]) -> TensorProto {
        TensorProto {
            dims: vec![values.len() as i64],
            data_type: Some(DataType::Float as i32),
            raw_data: Some(Bytes::from(
                values
                    .iter()
                    .flat_map(|x| x.to_le_bytes())
                    .collect::<Vec<u8>>(),
            )),
            ..Default::default()
        }
    }

    #[test]
    fn screen_finds_the_first_large_value_in_a_large_tensor_and_ignores_specials() {
        let mut values = vec![0.5f32; 300_000];
        values[10] = f32::INFINITY;
        values[11] = f32::NAN;
        values[12] = -65504.0;
        values[13] = 1e-30; // flushes to zero, but only small tensors care
        assert_eq!(out_of_range(&raw_tensor(&values), Target::Float16), None);
        values[290_000] = -70000.0;
        values[200_001] = 65520.0; // rounds to infinity in float16
        assert_eq!(
            out_of_range(&raw_tensor(&values), Target::Float16),
            Some(65520.0)
        );
        assert_eq!(out_of_range(&raw_tensor(&values), Target::Bfloat16), None);
    }

    #[test]
    fn small_tensors_also_refuse_values_that_flush_to_zero() {
        assert_eq!(
            out_of_range(&raw_tensor(&[1.0, 1e-9]), Target::Float16),
            Some(1e-9)
        );
        assert_eq!(
            out_of_range(&raw_tensor(&[1.0, 1e-9]), Target::Bfloat16),
            None
        );
    }
}
