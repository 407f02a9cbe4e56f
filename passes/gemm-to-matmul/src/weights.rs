//! Folding a Gemm's transposes and scale factors into its constant operands, on the tensor's
//! bytes. The source tensor is never modified: every function returns a new tensor (a weight
//! shared with another node, a tied embedding say, keeps serving that node unchanged).

use bytes::Bytes;
use half::{bf16, f16};
use onnx_rewrite_proto::TensorProto;
use onnx_rewrite_proto::tensor_proto::DataType;

/// The tensor's payload as little-endian bytes (`raw_data`, or the typed field), if it is a
/// fixed-width type of whole bytes.
fn payload(t: &TensorProto) -> Option<Bytes> {
    if let Some(raw) = &t.raw_data {
        return Some(raw.clone());
    }
    let bytes: Vec<u8> = match DataType::try_from(t.data_type()).ok()? {
        DataType::Float => t.float_data.iter().flat_map(|v| v.to_le_bytes()).collect(),
        DataType::Double => t.double_data.iter().flat_map(|v| v.to_le_bytes()).collect(),
        DataType::Int64 => t.int64_data.iter().flat_map(|v| v.to_le_bytes()).collect(),
        DataType::Int32 => t.int32_data.iter().flat_map(|v| v.to_le_bytes()).collect(),
        // 16-bit floats keep their bit patterns in the low half of each int32 entry.
        DataType::Float16 | DataType::Bfloat16 => t
            .int32_data
            .iter()
            .flat_map(|v| (*v as u16).to_le_bytes())
            .collect(),
        DataType::Uint64 => t.uint64_data.iter().flat_map(|v| v.to_le_bytes()).collect(),
        _ => return None,
    };
    Some(bytes.into())
}

fn element_size(t: &TensorProto) -> Option<usize> {
    let bits = DataType::try_from(t.data_type()).ok()?.bit_width()?;
    (bits % 8 == 0).then_some(bits as usize / 8)
}

fn with_payload(t: &TensorProto, dims: Vec<i64>, raw: Vec<u8>) -> TensorProto {
    TensorProto {
        dims,
        data_type: t.data_type,
        raw_data: Some(raw.into()),
        ..TensorProto::default()
    }
}

/// `tᵀ` of a 2-D tensor.
pub fn transpose(t: &TensorProto) -> Option<TensorProto> {
    let [rows, cols] = <[i64; 2]>::try_from(t.dims.as_slice()).ok()?;
    let (rows, cols) = (usize::try_from(rows).ok()?, usize::try_from(cols).ok()?);
    let size = element_size(t)?;
    let data = payload(t)?;
    if data.len() != rows.checked_mul(cols)?.checked_mul(size)? {
        return None;
    }
    let mut out = vec![0u8; data.len()];
    // Blocked so that both the reads and the writes stay within a few cache lines at a time.
    const BLOCK: usize = 32;
    for r0 in (0..rows).step_by(BLOCK) {
        for c0 in (0..cols).step_by(BLOCK) {
            for r in r0..(r0 + BLOCK).min(rows) {
                for c in c0..(c0 + BLOCK).min(cols) {
                    let from = (r * cols + c) * size;
                    let to = (c * rows + r) * size;
                    out[to..to + size].copy_from_slice(&data[from..from + size]);
                }
            }
        }
    }
    Some(with_payload(t, vec![cols as i64, rows as i64], out))
}

/// `factor · t` for a floating-point tensor, rounded to its own type.
pub fn scale(t: &TensorProto, factor: f32) -> Option<TensorProto> {
    let data = payload(t)?;
    let raw: Vec<u8> = match DataType::try_from(t.data_type()).ok()? {
        DataType::Float => data
            .chunks_exact(4)
            .flat_map(|c| (f32::from_le_bytes([c[0], c[1], c[2], c[3]]) * factor).to_le_bytes())
            .collect(),
        DataType::Double => data
            .chunks_exact(8)
            .flat_map(|c| {
                (f64::from_le_bytes([c[0], c[1], c[2], c[3], c[4], c[5], c[6], c[7]])
                    * f64::from(factor))
                .to_le_bytes()
            })
            .collect(),
        DataType::Float16 => data
            .chunks_exact(2)
            .flat_map(|c| {
                f16::from_f32(f16::from_le_bytes([c[0], c[1]]).to_f32() * factor).to_le_bytes()
            })
            .collect(),
        DataType::Bfloat16 => data
            .chunks_exact(2)
            .flat_map(|c| {
                bf16::from_f32(bf16::from_le_bytes([c[0], c[1]]).to_f32() * factor).to_le_bytes()
            })
            .collect(),
        _ => return None,
    };
    Some(with_payload(t, t.dims.clone(), raw))
}

/// A scalar of floating-point type `dtype` holding `value`.
pub fn scalar(dtype: DataType, value: f32) -> Option<TensorProto> {
    let raw: Vec<u8> = match dtype {
        DataType::Float => value.to_le_bytes().to_vec(),
        DataType::Double => f64::from(value).to_le_bytes().to_vec(),
        DataType::Float16 => f16::from_f32(value).to_le_bytes().to_vec(),
        DataType::Bfloat16 => bf16::from_f32(value).to_le_bytes().to_vec(),
        _ => return None,
    };
    Some(TensorProto {
        data_type: Some(dtype as i32),
        raw_data: Some(raw.into()),
        ..TensorProto::default()
    })
}

#[cfg(test)]
mod tests {
    use super::*;

    fn floats(dims: &[i64], values: &[f32]) -> TensorProto {
        TensorProto {
            dims: dims.to_vec(),
            data_type: Some(DataType::Float as i32),
            float_data: values.to_vec(),
            ..TensorProto::default()
        }
    }

    fn values(t: &TensorProto) -> Vec<f32> {
        payload(t)
            .unwrap()
            .chunks_exact(4)
            .map(|c| f32::from_le_bytes([c[0], c[1], c[2], c[3]]))
            .collect()
    }

    #[test]
    fn transpose_swaps_dims_and_elements() {
        let t = transpose(&floats(&[2, 3], &[1.0, 2.0, 3.0, 4.0, 5.0, 6.0])).unwrap();
        assert_eq!(t.dims, [3, 2]);
        assert_eq!(values(&t), [1.0, 4.0, 2.0, 5.0, 3.0, 6.0]);
        let big: Vec<f32> = (0..70 * 45).map(|i| i as f32).collect();
        let back = transpose(&transpose(&floats(&[70, 45], &big)).unwrap()).unwrap();
        assert_eq!(values(&back), big);
    }

    #[test]
    fn malformed_or_unsupported_tensors_are_not_folded() {
        assert!(
            transpose(&floats(&[2, 3], &[1.0])).is_none(),
            "size mismatch"
        );
        assert!(transpose(&floats(&[6], &[0.0; 6])).is_none(), "not 2-D");
        let strings = TensorProto {
            dims: vec![1, 1],
            data_type: Some(DataType::String as i32),
            ..TensorProto::default()
        };
        assert!(transpose(&strings).is_none());
        let ints = TensorProto {
            dims: vec![1],
            data_type: Some(DataType::Int64 as i32),
            int64_data: vec![3],
            ..TensorProto::default()
        };
        assert!(scale(&ints, 2.0).is_none(), "integers are never scaled");
    }

    #[test]
    fn scale_rounds_to_the_tensor_type() {
        assert_eq!(
            values(&scale(&floats(&[2], &[1.5, -2.0]), 0.5).unwrap()),
            [0.75, -1.0]
        );
        let halfs = TensorProto {
            dims: vec![1],
            data_type: Some(DataType::Float16 as i32),
            int32_data: vec![i32::from(f16::from_f32(3.0).to_bits())],
            ..TensorProto::default()
        };
        let raw = scale(&halfs, 0.5).unwrap().raw_data.unwrap();
        assert_eq!(f16::from_le_bytes([raw[0], raw[1]]).to_f32(), 1.5);
    }
}
