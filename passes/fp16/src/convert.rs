//! Float32 tensors to float16 or bfloat16: round to nearest even with `half`'s slice conversion
//! (F16C on x86-64), in parallel over chunks, written as little-endian `raw_data`.

use bytes::Bytes;
use half::slice::HalfFloatSliceExt;
use half::{bf16, f16};
use onnx_rewrite_ir::PendingPayload;
use onnx_rewrite_proto::TensorProto;
use onnx_rewrite_proto::tensor_proto::DataType;
use rayon::prelude::*;

/// The low-precision type.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub enum Target {
    Float16,
    Bfloat16,
}

impl Target {
    pub fn dtype(self) -> DataType {
        match self {
            Target::Float16 => DataType::Float16,
            Target::Bfloat16 => DataType::Bfloat16,
        }
    }

    /// The suffix of names the pass makes (`x_fp16`).
    pub fn suffix(self) -> &'static str {
        match self {
            Target::Float16 => "fp16",
            Target::Bfloat16 => "bf16",
        }
    }

    pub fn max_finite(self) -> f32 {
        match self {
            Target::Float16 => f16::MAX.to_f32(),
            Target::Bfloat16 => bf16::MAX.to_f32(),
        }
    }

    /// Whether a nonzero `x` becomes zero in the target type: at most half the smallest
    /// subnormal (half is a tie, rounded to the even zero).
    pub fn flushes(self, x: f32) -> bool {
        x != 0.0 && x.abs() <= self.least_positive() / 2.0
    }

    /// The smallest positive value (the smallest subnormal).
    pub fn least_positive(self) -> f32 {
        match self {
            Target::Float16 => f16::from_bits(1).to_f32(),
            Target::Bfloat16 => bf16::from_bits(1).to_f32(),
        }
    }
}

/// Elements converted per task; a multiple of 8 for the SIMD path.
const CHUNK: usize = 1 << 14;

/// `tensor` (float32) as a `target` tensor with the same name, dims and storage location.
/// `None` when it is not a float32 tensor with a well-formed payload.
pub(crate) fn tensor(tensor: &TensorProto, target: Target) -> Option<TensorProto> {
    let mut out = retyped(tensor, target)?;
    out.raw_data = Some(match &tensor.raw_data {
        Some(raw) => convert_raw(raw, target),
        None => {
            let mut raw = Vec::with_capacity(tensor.float_data.len() * 4);
            for x in &tensor.float_data {
                raw.extend_from_slice(&x.to_le_bytes());
            }
            convert_raw(&raw, target)
        }
    });
    Some(out)
}

/// Payloads at least this large (after conversion) may be left pending.
const PENDING_FROM: usize = 4 << 20;

/// A converted initializer: its tensor, and the bytes when they are left pending.
pub(crate) struct Converted {
    pub tensor: TensorProto,
    pub pending: Option<PendingPayload>,
}

impl Converted {
    /// Bytes of the converted payload, computed or pending.
    pub fn payload_len(&self) -> u64 {
        match &self.pending {
            Some(payload) => payload.len() as u64,
            None => self.tensor.raw_data.as_ref().map_or(0, |r| r.len() as u64),
        }
    }
}

/// Like [`tensor`]; with `allow_pending`, a large raw payload's converted bytes are left
/// pending: computed from the float32 bytes (shared, not copied) as the model is saved.
pub(crate) fn initializer(
    tensor: &TensorProto,
    target: Target,
    allow_pending: bool,
) -> Option<Converted> {
    let source = tensor
        .raw_data
        .clone()
        .filter(|raw| allow_pending && raw.len() / 2 >= PENDING_FROM);
    let Some(source) = source else {
        return self::tensor(tensor, target).map(|tensor| Converted {
            tensor,
            pending: None,
        });
    };
    let out = retyped(tensor, target)?;
    let payload = PendingPayload::new(source.len() / 2, 2, move |offset, out| {
        // In range by construction (offset + out.len() ≤ len); a miss would leave zeros.
        if let Some(src) = source.get(offset * 2..(offset + out.len()) * 2) {
            convert_into(src, out, target);
        }
    });
    Some(Converted {
        tensor: out,
        pending: Some(payload),
    })
}

/// `tensor`'s header as a `target` tensor, without a payload; `None` when it is not a float32
/// tensor with a well-formed payload.
fn retyped(tensor: &TensorProto, target: Target) -> Option<TensorProto> {
    if tensor.data_type() != DataType::Float as i32 {
        return None;
    }
    onnx_rewrite_ir::tensor::check_payload(tensor).ok()?;
    let mut out = tensor.clone();
    out.data_type = Some(target.dtype() as i32);
    out.float_data.clear();
    out.raw_data = None;
    Some(out)
}

fn convert_raw(src: &[u8], target: Target) -> Bytes {
    onnx_rewrite_ir::tensor::new_payload(src.len() / 2, |out| convert_into(src, out, target))
}

fn convert_into(src: &[u8], out: &mut [u8], target: Target) {
    out.par_chunks_mut(CHUNK * 2)
        .zip(src.par_chunks(CHUNK * 4))
        .for_each(|(dst, src)| {
            let mut wide = [0f32; CHUNK];
            let wide = &mut wide[..src.len() / 4];
            for (w, word) in wide.iter_mut().zip(src.as_chunks::<4>().0) {
                *w = f32::from_le_bytes(*word);
            }
            let mut bits = [0u16; CHUNK];
            let bits = &mut bits[..wide.len()];
            match target {
                Target::Float16 => {
                    let mut narrow = [f16::ZERO; CHUNK];
                    let narrow = &mut narrow[..wide.len()];
                    narrow.convert_from_f32_slice(wide);
                    for (b, h) in bits.iter_mut().zip(narrow.iter()) {
                        *b = h.to_bits();
                    }
                }
                Target::Bfloat16 => {
                    let mut narrow = [bf16::ZERO; CHUNK];
                    let narrow = &mut narrow[..wide.len()];
                    narrow.convert_from_f32_slice(wide);
                    for (b, h) in bits.iter_mut().zip(narrow.iter()) {
                        *b = h.to_bits();
                    }
                }
            }
            for (d, b) in dst.chunks_exact_mut(2).zip(bits.iter()) {
                d.copy_from_slice(&b.to_le_bytes());
            }
        });
}

/// `values` with every value that would flush to zero in `target` raised to the target's
/// smallest positive value, sign kept.
pub(crate) fn raise_flushed(values: &[f32], target: Target) -> Vec<f32> {
    values
        .iter()
        .map(|&x| {
            if target.flushes(x) {
                target.least_positive().copysign(x)
            } else {
                x
            }
        })
        .collect()
}

/// `tensor` (float32) as a `target` tensor, values that would flush to zero raised (see
/// [`raise_flushed`]). For small tensors (parameters such as an epsilon).
pub(crate) fn tensor_raised(tensor: &TensorProto, target: Target) -> Option<TensorProto> {
    let mut out = retyped(tensor, target)?;
    let values = raise_flushed(&crate::constants::floats(tensor)?, target);
    out.raw_data = Some(from_floats(&values, Vec::new(), target).raw_data?);
    Some(out)
}

/// A float32 scalar list as a `target` tensor (for `Constant.value_float(s)`).
pub(crate) fn from_floats(values: &[f32], dims: Vec<i64>, target: Target) -> TensorProto {
    let mut raw = Vec::with_capacity(values.len() * 4);
    for x in values {
        raw.extend_from_slice(&x.to_le_bytes());
    }
    TensorProto {
        dims,
        data_type: Some(target.dtype() as i32),
        raw_data: Some(convert_raw(&raw, target)),
        ..Default::default()
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn rounds_to_nearest_even_and_keeps_specials() {
        let values = [
            1.0f32,
            65504.0,
            70000.0,
            -0.0,
            f32::INFINITY,
            1e-8,
            2049.0,
            4173.0,
        ];
        let t = from_floats(&values, vec![values.len() as i64], Target::Float16);
        let raw = t.raw_data.unwrap();
        let back: Vec<f32> = raw
            .chunks_exact(2)
            .map(|c| f16::from_bits(u16::from_le_bytes([c[0], c[1]])).to_f32())
            .collect();
        assert_eq!(
            back,
            [
                1.0,
                65504.0,
                f32::INFINITY,
                -0.0,
                f32::INFINITY,
                0.0,
                2048.0,
                4172.0
            ]
        );
        let t = from_floats(&[3.0e38, 257.0], vec![2], Target::Bfloat16);
        let raw = t.raw_data.unwrap();
        let back: Vec<f32> = raw
            .chunks_exact(2)
            .map(|c| bf16::from_bits(u16::from_le_bytes([c[0], c[1]])).to_f32())
            .collect();
        assert_eq!(back[1], 256.0);
        assert!(back[0].is_finite());
    }

    #[test]
    fn raising_keeps_flushed_values_nonzero_and_leaves_the_rest() {
        let least = f16::from_bits(1).to_f32();
        let half = least / 2.0;
        assert!(Target::Float16.flushes(half) && !Target::Float16.flushes(half * 1.01));
        assert_eq!(
            raise_flushed(&[1e-9, -1e-12, 0.0, -0.0, 1e-5, half], Target::Float16),
            [least, -least, 0.0, -0.0, 1e-5, least]
        );
        let t = TensorProto {
            dims: vec![2],
            data_type: Some(DataType::Float as i32),
            float_data: vec![1e-9, 0.5],
            ..Default::default()
        };
        let out = tensor_raised(&t, Target::Float16).unwrap();
        assert_eq!(out.dims, [2]);
        let raw = out.raw_data.unwrap();
        assert_eq!(&raw[..], &[1, 0, 0, 0x38]);
        assert!(!Target::Bfloat16.flushes(1e-9));
    }

    #[test]
    fn large_tensors_convert_across_chunks() {
        let n = CHUNK * 3 + 5;
        let values: Vec<f32> = (0..n).map(|i| i as f32 * 0.25).collect();
        let mut raw = Vec::new();
        for x in &values {
            raw.extend_from_slice(&x.to_le_bytes());
        }
        let t = TensorProto {
            dims: vec![n as i64],
            data_type: Some(DataType::Float as i32),
            raw_data: Some(Bytes::from(raw)),
            ..Default::default()
        };
        let out = tensor(&t, Target::Float16).unwrap();
        let raw = out.raw_data.unwrap();
        assert_eq!(raw.len(), n * 2);
        for (i, c) in raw.chunks_exact(2).enumerate() {
            let x = f16::from_bits(u16::from_le_bytes([c[0], c[1]]));
            assert_eq!(x, f16::from_f32(values[i]));
        }
    }
}
