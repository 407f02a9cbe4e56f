//! What the text form says about a tensor's data: the one list of values the printer writes and
//! the parser reads back, whichever `TensorProto` field held them.
//!
//! The printer and [`crate::canonical`] both take their answer from [`printed_data`], so what is
//! printed and what a round trip is expected to give can never disagree.

use std::borrow::Cow;

use bytes::Bytes;
use onnx_rewrite_proto::tensor_proto::{DataLocation, DataType};
use onnx_rewrite_proto::{StringStringEntryProto, TensorProto};

/// A tensor's data as the text form carries it.
#[derive(Debug, Clone, PartialEq)]
pub(crate) enum PrintedData<'a> {
    /// `["location": "w.bin", ...]`: the external-data key-value list.
    External(&'a [StringStringEntryProto]),
    /// `{...}` of integers that read back into `int32_data`.
    Int32(Cow<'a, [i32]>),
    /// `{...}` of integers that read back into `int64_data`.
    Int64(Cow<'a, [i64]>),
    /// `{...}` of integers that read back into `uint64_data`.
    Uint64(Cow<'a, [u64]>),
    /// `{...}` of floats that read back into `float_data`.
    Float(Cow<'a, [f32]>),
    /// `{...}` of doubles that read back into `double_data`.
    Double(Cow<'a, [f64]>),
    /// `{"a", "b"}`: read back into `string_data`.
    Strings(&'a [Bytes]),
    /// `...`: the data has no text form; the printed model does not parse back.
    Elided(Elision),
}

/// Why a tensor's data prints as `...`.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub(crate) enum Elision {
    /// The element type has no value syntax in this form (packed 2/4/6-bit types, complex, and
    /// strings in `raw_data`).
    ElementType,
    /// `raw_data` does not hold exactly the elements `dims` asks for. onnx.printer raises an
    /// error here; this printer writes `...` so that printing never fails.
    RawSizeMismatch,
}

impl Elision {
    pub(crate) fn describe(self) -> &'static str {
        match self {
            Self::ElementType => {
                "its element type has no value syntax, so the data prints as `...`"
            }
            Self::RawSizeMismatch => {
                "raw_data does not hold exactly the elements its dims ask for, so the data prints as `...`"
            }
        }
    }
}

/// The data of `tensor` as onnx.printer writes it.
pub(crate) fn printed_data(tensor: &TensorProto) -> PrintedData<'_> {
    if tensor.data_location == Some(DataLocation::External as i32) {
        return PrintedData::External(&tensor.external_data);
    }
    let data_type = DataType::try_from(tensor.data_type.unwrap_or(0)).ok();
    if let Some(raw) = &tensor.raw_data {
        return decode_raw(tensor, raw, data_type);
    }
    use DataType as D;
    match data_type {
        Some(
            D::Int8
            | D::Int16
            | D::Int32
            | D::Uint8
            | D::Uint16
            | D::Bool
            | D::Float16
            | D::Bfloat16
            | D::Float8e4m3fn
            | D::Float8e4m3fnuz
            | D::Float8e5m2
            | D::Float8e5m2fnuz
            | D::Float8e8m0,
        ) => PrintedData::Int32(Cow::Borrowed(&tensor.int32_data)),
        Some(D::Int64) => PrintedData::Int64(Cow::Borrowed(&tensor.int64_data)),
        Some(D::Uint32 | D::Uint64) => PrintedData::Uint64(Cow::Borrowed(&tensor.uint64_data)),
        Some(D::Float) => PrintedData::Float(Cow::Borrowed(&tensor.float_data)),
        Some(D::Double) => PrintedData::Double(Cow::Borrowed(&tensor.double_data)),
        Some(D::String) => PrintedData::Strings(&tensor.string_data),
        _ => PrintedData::Elided(Elision::ElementType),
    }
}

/// Decodes little-endian `raw_data` the way onnx.printer does: each type widens to the typed
/// field the parser would fill (8- and 16-bit types, float8 and float16/bfloat16 bit patterns to
/// `int32_data`; uint32 to `uint64_data`).
fn decode_raw<'a>(
    tensor: &TensorProto,
    raw: &[u8],
    data_type: Option<DataType>,
) -> PrintedData<'a> {
    use DataType as D;
    let Some(data_type) = data_type else {
        return PrintedData::Elided(Elision::ElementType);
    };
    let width = match data_type {
        D::Int8 | D::Uint8 | D::Bool => 1,
        D::Float8e4m3fn | D::Float8e4m3fnuz | D::Float8e5m2 | D::Float8e5m2fnuz | D::Float8e8m0 => {
            1
        }
        D::Int16 | D::Uint16 | D::Float16 | D::Bfloat16 => 2,
        D::Int32 | D::Uint32 | D::Float => 4,
        D::Int64 | D::Uint64 | D::Double => 8,
        _ => return PrintedData::Elided(Elision::ElementType),
    };
    if element_count(&tensor.dims) != Some(raw.len() / width) || !raw.len().is_multiple_of(width) {
        return PrintedData::Elided(Elision::RawSizeMismatch);
    }
    let chunks = raw.chunks_exact(width);
    // `chunks_exact` yields slices of exactly `width` bytes, so the conversions cannot fail.
    fn array<const N: usize>(chunk: &[u8]) -> [u8; N] {
        chunk.try_into().unwrap_or([0; N])
    }
    match data_type {
        D::Int8 => PrintedData::Int32(
            chunks
                .map(|c| i32::from(i8::from_le_bytes(array(c))))
                .collect(),
        ),
        D::Uint8
        | D::Bool
        | D::Float8e4m3fn
        | D::Float8e4m3fnuz
        | D::Float8e5m2
        | D::Float8e5m2fnuz
        | D::Float8e8m0 => PrintedData::Int32(
            chunks
                .map(|c| i32::from(u8::from_le_bytes(array(c))))
                .collect(),
        ),
        D::Int16 => PrintedData::Int32(
            chunks
                .map(|c| i32::from(i16::from_le_bytes(array(c))))
                .collect(),
        ),
        D::Uint16 | D::Float16 | D::Bfloat16 => PrintedData::Int32(
            chunks
                .map(|c| i32::from(u16::from_le_bytes(array(c))))
                .collect(),
        ),
        D::Int32 => PrintedData::Int32(chunks.map(|c| i32::from_le_bytes(array(c))).collect()),
        D::Uint32 => PrintedData::Uint64(
            chunks
                .map(|c| u64::from(u32::from_le_bytes(array(c))))
                .collect(),
        ),
        D::Int64 => PrintedData::Int64(chunks.map(|c| i64::from_le_bytes(array(c))).collect()),
        D::Uint64 => PrintedData::Uint64(chunks.map(|c| u64::from_le_bytes(array(c))).collect()),
        D::Float => PrintedData::Float(chunks.map(|c| f32::from_le_bytes(array(c))).collect()),
        D::Double => PrintedData::Double(chunks.map(|c| f64::from_le_bytes(array(c))).collect()),
        _ => PrintedData::Elided(Elision::ElementType),
    }
}

/// The number of elements `dims` describe; `None` for a negative dimension or an overflow
/// (onnx.printer raises on both).
pub(crate) fn element_count(dims: &[i64]) -> Option<usize> {
    dims.iter().try_fold(1usize, |count, &dim| {
        let dim = usize::try_from(dim).ok()?;
        count.checked_mul(dim)
    })
}

#[cfg(test)]
mod tests {
    use super::*;

    fn raw(data_type: DataType, dims: Vec<i64>, bytes: &'static [u8]) -> TensorProto {
        TensorProto {
            data_type: Some(data_type as i32),
            dims,
            raw_data: Some(Bytes::from_static(bytes)),
            ..Default::default()
        }
    }

    #[test]
    fn raw_data_widens_like_the_printer() {
        let t = raw(DataType::Int8, vec![2], &[0xff, 0x01]);
        assert_eq!(
            printed_data(&t),
            PrintedData::Int32(Cow::Owned(vec![-1, 1]))
        );
        let t = raw(DataType::Float16, vec![1], &[0x00, 0x3c]);
        assert_eq!(
            printed_data(&t),
            PrintedData::Int32(Cow::Owned(vec![0x3c00]))
        );
        let t = raw(DataType::Uint32, vec![1], &[0xff, 0xff, 0xff, 0xff]);
        assert_eq!(
            printed_data(&t),
            PrintedData::Uint64(Cow::Owned(vec![u64::from(u32::MAX)]))
        );
    }

    #[test]
    fn mismatched_raw_data_is_elided_not_a_panic() {
        let t = raw(DataType::Float, vec![2], &[0, 0, 0]);
        assert_eq!(
            printed_data(&t),
            PrintedData::Elided(Elision::RawSizeMismatch)
        );
        let t = raw(DataType::Float, vec![-1], &[]);
        assert_eq!(
            printed_data(&t),
            PrintedData::Elided(Elision::RawSizeMismatch)
        );
        let t = raw(DataType::Float, vec![i64::MAX, i64::MAX], &[]);
        assert_eq!(
            printed_data(&t),
            PrintedData::Elided(Elision::RawSizeMismatch)
        );
        let t = raw(DataType::Int4, vec![2], &[0x12]);
        assert_eq!(printed_data(&t), PrintedData::Elided(Elision::ElementType));
    }
}
