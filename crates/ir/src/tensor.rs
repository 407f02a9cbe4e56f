//! Tensor payloads: element counts, byte sizes, and the check that a tensor holds exactly the
//! data its dims declare (a 2 GB declaration over 10 bytes is refused, not trusted).

use bytes::Bytes;
use onnx_rewrite_proto::TensorProto;
use onnx_rewrite_proto::tensor_proto::{DataLocation, DataType};

/// A tensor whose declaration and data disagree.
#[derive(Debug, Clone, PartialEq, Eq, thiserror::Error)]
pub enum TensorError {
    #[error("data type {0} is not a tensor element type")]
    BadDataType(i32),
    #[error("dimension {0} is negative")]
    NegativeDim(i64),
    #[error("dims {0:?} hold more elements than can be addressed")]
    TooManyElements(Vec<i64>),
    #[error("dims {dims:?} of {dtype} need {expected} bytes of data, but it holds {actual}")]
    RawSize {
        dims: Vec<i64>,
        dtype: &'static str,
        expected: u64,
        actual: u64,
    },
    #[error("dims {dims:?} need {expected} entries in `{field}`, but it holds {actual}")]
    FieldSize {
        dims: Vec<i64>,
        field: &'static str,
        expected: u64,
        actual: u64,
    },
    #[error("dims {dims:?} declare {count} elements but the tensor holds no data")]
    NoData { dims: Vec<i64>, count: u64 },
}

/// Payloads at least this large get their own anonymous mapping.
const MAPPED_PAYLOAD: usize = 4 << 20;

/// A new payload of `len` bytes written by `fill`. A large one gets its own anonymous mapping
/// with transparent huge pages asked for: a pass that writes a gigabyte of converted weights
/// otherwise spends a fifth of its time in 4 KiB page faults, and the mapping goes back to the
/// OS as soon as the last `Bytes` referring to it is dropped. Where the mapping cannot be made
/// (or is small), a heap buffer serves.
pub fn new_payload(len: usize, fill: impl FnOnce(&mut [u8])) -> Bytes {
    if len >= MAPPED_PAYLOAD
        && let Ok(mut map) = memmap2::MmapOptions::new().len(len).map_anon()
    {
        // Only a hint: without huge pages the mapping still works, with 4 KiB pages.
        #[cfg(target_os = "linux")]
        let _ = map.advise(memmap2::Advice::HugePage);
        fill(&mut map);
        // `Bytes` hands out shared slices only: the writable mapping is never written again.
        return Bytes::from_owner(map);
    }
    let mut buffer = vec![0u8; len];
    fill(&mut buffer);
    Bytes::from(buffer)
}

/// The element type, if the code is one the schema knows.
pub fn data_type(tensor: &TensorProto) -> Option<DataType> {
    DataType::try_from(tensor.data_type()).ok()
}

/// Number of elements its dims declare (1 for a scalar), in checked arithmetic.
pub fn element_count(tensor: &TensorProto) -> Result<u64, TensorError> {
    element_count_of(&tensor.dims)
}

/// Number of elements of a shape, in checked arithmetic.
pub fn element_count_of(dims: &[i64]) -> Result<u64, TensorError> {
    dims.iter().try_fold(1u64, |acc, &d| {
        let d = u64::try_from(d).map_err(|_| TensorError::NegativeDim(d))?;
        acc.checked_mul(d)
            .ok_or_else(|| TensorError::TooManyElements(dims.to_vec()))
    })
}

/// Whether the tensor is (or, once saved, will by default be) stored in an external file.
pub fn is_external(tensor: &TensorProto) -> bool {
    tensor.data_location == Some(DataLocation::External as i32)
}

/// The raw payload, when the tensor's data is raw bytes (inline, or external once loaded).
pub fn raw_payload(tensor: &TensorProto) -> Option<&Bytes> {
    tensor.raw_data.as_ref()
}

/// Bytes the tensor's payload takes, whether raw or in typed fields (an estimate for typed
/// fields, exact for raw data).
pub fn payload_len(tensor: &TensorProto) -> u64 {
    if let Some(raw) = &tensor.raw_data {
        return raw.len() as u64;
    }
    let strings: usize = tensor.string_data.iter().map(Bytes::len).sum();
    (tensor.float_data.len() * 4
        + tensor.int32_data.len() * 4
        + tensor.int64_data.len() * 8
        + tensor.double_data.len() * 8
        + tensor.uint64_data.len() * 8
        + strings) as u64
}

/// Checks that the tensor holds exactly as much data as its dims and type declare.
pub fn check_payload(tensor: &TensorProto) -> Result<(), TensorError> {
    let count = element_count(tensor)?;
    let code = tensor.data_type();
    let dtype = DataType::try_from(code).map_err(|_| TensorError::BadDataType(code))?;
    if dtype == DataType::Undefined {
        return Err(TensorError::BadDataType(code));
    }
    let dims = || tensor.dims.clone();
    if let Some(raw) = &tensor.raw_data {
        if dtype == DataType::String {
            return Err(TensorError::RawSize {
                dims: dims(),
                dtype: dtype.as_str_name(),
                expected: 0,
                actual: raw.len() as u64,
            });
        }
        let expected = dtype
            .raw_byte_len(count)
            .ok_or_else(|| TensorError::TooManyElements(dims()))?;
        if expected != raw.len() as u64 {
            return Err(TensorError::RawSize {
                dims: dims(),
                dtype: dtype.as_str_name(),
                expected,
                actual: raw.len() as u64,
            });
        }
        return Ok(());
    }
    let (field, actual, per_entry): (&'static str, usize, u64) = match dtype {
        DataType::Float => ("float_data", tensor.float_data.len(), 1),
        DataType::Complex64 => ("float_data", tensor.float_data.len(), 1),
        DataType::Double | DataType::Complex128 => ("double_data", tensor.double_data.len(), 1),
        DataType::Int64 => ("int64_data", tensor.int64_data.len(), 1),
        DataType::Uint32 | DataType::Uint64 => ("uint64_data", tensor.uint64_data.len(), 1),
        DataType::String => ("string_data", tensor.string_data.len(), 1),
        DataType::Int4 | DataType::Uint4 | DataType::Float4e2m1 => {
            ("int32_data", tensor.int32_data.len(), 2)
        }
        DataType::Int2 | DataType::Uint2 => ("int32_data", tensor.int32_data.len(), 4),
        _ => ("int32_data", tensor.int32_data.len(), 1),
    };
    let scalars_per_element = if matches!(dtype, DataType::Complex64 | DataType::Complex128) {
        2
    } else {
        1
    };
    let expected = count
        .checked_mul(scalars_per_element)
        .ok_or_else(|| TensorError::TooManyElements(dims()))?
        .div_ceil(per_entry);
    if actual == 0 && expected > 0 {
        return Err(TensorError::NoData {
            dims: dims(),
            count,
        });
    }
    if actual as u64 != expected {
        return Err(TensorError::FieldSize {
            dims: dims(),
            field,
            expected,
            actual: actual as u64,
        });
    }
    Ok(())
}

#[cfg(test)]
mod tests {
    use super::*;

    fn tensor(dims: &[i64], dtype: DataType) -> TensorProto {
        TensorProto {
            dims: dims.to_vec(),
            data_type: Some(dtype as i32),
            ..Default::default()
        }
    }

    #[test]
    fn raw_size_must_match_the_declaration() {
        let mut t = tensor(&[2, 3], DataType::Float);
        t.raw_data = Some(Bytes::from(vec![0u8; 24]));
        assert_eq!(check_payload(&t), Ok(()));
        t.raw_data = Some(Bytes::from(vec![0u8; 10]));
        assert!(matches!(
            check_payload(&t),
            Err(TensorError::RawSize {
                expected: 24,
                actual: 10,
                ..
            })
        ));
    }

    #[test]
    fn a_huge_declaration_over_few_bytes_is_refused_without_allocating() {
        let mut t = tensor(&[1 << 20, 1 << 20, 1 << 20], DataType::Float);
        t.raw_data = Some(Bytes::from_static(&[0; 10]));
        assert!(check_payload(&t).is_err());
        let t = tensor(&[i64::MAX, i64::MAX], DataType::Float);
        assert!(matches!(
            check_payload(&t),
            Err(TensorError::TooManyElements(_))
        ));
    }

    #[test]
    fn packed_types_count_entries_not_elements() {
        let mut t = tensor(&[5], DataType::Int4);
        t.int32_data = vec![0, 0, 0];
        assert_eq!(check_payload(&t), Ok(()));
        let mut t = tensor(&[5], DataType::Uint4);
        t.raw_data = Some(Bytes::from_static(&[0, 0, 0]));
        assert_eq!(check_payload(&t), Ok(()));
    }

    #[test]
    fn empty_and_scalar_tensors() {
        let t = tensor(&[0, 4], DataType::Float);
        assert_eq!(check_payload(&t), Ok(()));
        let mut t = tensor(&[], DataType::Int64);
        t.int64_data = vec![7];
        assert_eq!(check_payload(&t), Ok(()));
        let t = tensor(&[], DataType::Int64);
        assert!(matches!(check_payload(&t), Err(TensorError::NoData { .. })));
    }

    #[test]
    fn new_payload_holds_what_fill_wrote_mapped_or_not() {
        for len in [
            0,
            10,
            MAPPED_PAYLOAD - 1,
            MAPPED_PAYLOAD,
            MAPPED_PAYLOAD + 4097,
        ] {
            let payload = new_payload(len, |out| {
                assert!(out.iter().all(|b| *b == 0), "starts zeroed");
                for (i, b) in out.iter_mut().enumerate() {
                    *b = (i % 251) as u8;
                }
            });
            assert_eq!(payload.len(), len);
            assert!(
                payload
                    .iter()
                    .enumerate()
                    .all(|(i, b)| *b == (i % 251) as u8)
            );
        }
    }
}
