//! Small constant tensors: the values the analysis folds and compares.
//!
//! Only element types with a native Rust representation are held (booleans, 8 to 64-bit
//! integers, float16, bfloat16, float32, float64); strings, complex numbers and the sub-byte and
//! 8-bit float formats stay unknown. Equality and hashing go by bit pattern, so a constant is a
//! value in the e-graph sense: `NaN == NaN`, and `0.0 != -0.0`.

use std::hash::{Hash, Hasher};

use half::{bf16, f16};
use onnx_rewrite_proto::TensorProto;
use onnx_rewrite_proto::tensor_proto::{DataLocation, DataType};

/// The elements of a [`ConstTensor`], in row-major order.
#[derive(Clone, Debug)]
pub enum ConstData {
    Bool(Vec<bool>),
    I8(Vec<i8>),
    U8(Vec<u8>),
    I16(Vec<i16>),
    U16(Vec<u16>),
    I32(Vec<i32>),
    U32(Vec<u32>),
    I64(Vec<i64>),
    U64(Vec<u64>),
    F16(Vec<f16>),
    BF16(Vec<bf16>),
    F32(Vec<f32>),
    F64(Vec<f64>),
}

/// Applies `$body` to the vector inside any [`ConstData`] variant, bound as `$v`. The body is
/// generic code: it is instantiated once per element type.
macro_rules! with_data {
    ($data:expr, $v:ident => $body:expr) => {
        match $data {
            ConstData::Bool($v) => $body,
            ConstData::I8($v) => $body,
            ConstData::U8($v) => $body,
            ConstData::I16($v) => $body,
            ConstData::U16($v) => $body,
            ConstData::I32($v) => $body,
            ConstData::U32($v) => $body,
            ConstData::I64($v) => $body,
            ConstData::U64($v) => $body,
            ConstData::F16($v) => $body,
            ConstData::BF16($v) => $body,
            ConstData::F32($v) => $body,
            ConstData::F64($v) => $body,
        }
    };
}

/// A Rust element type that a [`ConstData`] variant holds.
pub(crate) trait Elem: Copy + std::fmt::Debug + 'static {
    const DTYPE: DataType;
    /// Bytes per element in `raw_data`.
    const SIZE: usize;
    fn wrap(v: Vec<Self>) -> ConstData;
    fn slice(d: &ConstData) -> Option<&[Self]>;
    /// Decodes one element from exactly `SIZE` little-endian bytes.
    fn from_le(b: &[u8]) -> Self;
    fn write_le(self, out: &mut Vec<u8>);
    /// The bit pattern, for equality and hashing.
    fn bits(self) -> u64;
}

macro_rules! impl_elem {
    ($t:ty, $variant:ident, $dtype:ident, $size:literal, |$x:ident| $bits:expr, |$b:ident| $from:expr, |$y:ident| $to:expr) => {
        impl Elem for $t {
            const DTYPE: DataType = DataType::$dtype;
            const SIZE: usize = $size;
            fn wrap(v: Vec<Self>) -> ConstData {
                ConstData::$variant(v)
            }
            fn slice(d: &ConstData) -> Option<&[Self]> {
                match d {
                    ConstData::$variant(v) => Some(v),
                    _ => None,
                }
            }
            fn from_le($b: &[u8]) -> Self {
                $from
            }
            fn write_le(self, out: &mut Vec<u8>) {
                let $y = self;
                out.extend_from_slice(&$to);
            }
            fn bits(self) -> u64 {
                let $x = self;
                $bits
            }
        }
    };
}

/// `N` bytes from a slice that the caller sized to exactly `N`.
fn array<const N: usize>(b: &[u8]) -> [u8; N] {
    let mut a = [0u8; N];
    a.copy_from_slice(&b[..N]);
    a
}

impl_elem!(bool, Bool, Bool, 1, |x| u64::from(x), |b| b[0] != 0, |y| [
    u8::from(y)
]);
impl_elem!(i8, I8, Int8, 1, |x| x as u8 as u64, |b| b[0] as i8, |y| y
    .to_le_bytes());
impl_elem!(u8, U8, Uint8, 1, |x| u64::from(x), |b| b[0], |y| y
    .to_le_bytes());
impl_elem!(
    i16,
    I16,
    Int16,
    2,
    |x| x as u16 as u64,
    |b| i16::from_le_bytes(array(b)),
    |y| y.to_le_bytes()
);
impl_elem!(
    u16,
    U16,
    Uint16,
    2,
    |x| u64::from(x),
    |b| u16::from_le_bytes(array(b)),
    |y| y.to_le_bytes()
);
impl_elem!(
    i32,
    I32,
    Int32,
    4,
    |x| x as u32 as u64,
    |b| i32::from_le_bytes(array(b)),
    |y| y.to_le_bytes()
);
impl_elem!(
    u32,
    U32,
    Uint32,
    4,
    |x| u64::from(x),
    |b| u32::from_le_bytes(array(b)),
    |y| y.to_le_bytes()
);
impl_elem!(
    i64,
    I64,
    Int64,
    8,
    |x| x as u64,
    |b| i64::from_le_bytes(array(b)),
    |y| y.to_le_bytes()
);
impl_elem!(
    u64,
    U64,
    Uint64,
    8,
    |x| x,
    |b| u64::from_le_bytes(array(b)),
    |y| y.to_le_bytes()
);
impl_elem!(
    f16,
    F16,
    Float16,
    2,
    |x| u64::from(x.to_bits()),
    |b| f16::from_bits(u16::from_le_bytes(array(b))),
    |y| y.to_bits().to_le_bytes()
);
impl_elem!(
    bf16,
    BF16,
    Bfloat16,
    2,
    |x| u64::from(x.to_bits()),
    |b| bf16::from_bits(u16::from_le_bytes(array(b))),
    |y| y.to_bits().to_le_bytes()
);
impl_elem!(
    f32,
    F32,
    Float,
    4,
    |x| u64::from(x.to_bits()),
    |b| f32::from_le_bytes(array(b)),
    |y| y.to_le_bytes()
);
impl_elem!(
    f64,
    F64,
    Double,
    8,
    |x| x.to_bits(),
    |b| f64::from_le_bytes(array(b)),
    |y| y.to_le_bytes()
);

impl ConstData {
    pub fn len(&self) -> usize {
        with_data!(self, v => v.len())
    }

    pub fn is_empty(&self) -> bool {
        self.len() == 0
    }

    /// The ONNX element type of this data.
    pub fn dtype(&self) -> DataType {
        fn dt<T: Elem>(_: &[T]) -> DataType {
            T::DTYPE
        }
        with_data!(self, v => dt(v))
    }

    /// The elements at `indices` (each `< len()`, which the caller guarantees), in that order.
    pub(crate) fn select(&self, indices: &[usize]) -> ConstData {
        fn pick<T: Elem>(v: &[T], indices: &[usize]) -> ConstData {
            T::wrap(indices.iter().filter_map(|&i| v.get(i).copied()).collect())
        }
        with_data!(self, v => pick(v, indices))
    }

    /// `len` copies of element `index`.
    pub(crate) fn splat(&self, index: usize, len: usize) -> Option<ConstData> {
        fn fill<T: Elem>(v: &[T], index: usize, len: usize) -> Option<ConstData> {
            Some(T::wrap(vec![*v.get(index)?; len]))
        }
        with_data!(self, v => fill(v, index, len))
    }

    /// The concatenation of `parts`, which must all hold the same element type.
    pub(crate) fn concat(parts: &[&ConstData]) -> Option<ConstData> {
        fn join<T: Elem>(first: &[T], parts: &[&ConstData]) -> Option<ConstData> {
            let mut out = first.to_vec();
            for p in parts {
                out.extend_from_slice(T::slice(p)?);
            }
            Some(T::wrap(out))
        }
        let (first, rest) = parts.split_first()?;
        with_data!(first, v => join(v, rest))
    }

    /// Every element as `i64`, for integer and boolean data (`None` for floats, or a `u64`
    /// above `i64::MAX`).
    pub fn to_i64s(&self) -> Option<Vec<i64>> {
        Some(match self {
            ConstData::Bool(v) => v.iter().map(|&x| i64::from(x)).collect(),
            ConstData::I8(v) => v.iter().map(|&x| i64::from(x)).collect(),
            ConstData::U8(v) => v.iter().map(|&x| i64::from(x)).collect(),
            ConstData::I16(v) => v.iter().map(|&x| i64::from(x)).collect(),
            ConstData::U16(v) => v.iter().map(|&x| i64::from(x)).collect(),
            ConstData::I32(v) => v.iter().map(|&x| i64::from(x)).collect(),
            ConstData::U32(v) => v.iter().map(|&x| i64::from(x)).collect(),
            ConstData::I64(v) => v.clone(),
            ConstData::U64(v) => v
                .iter()
                .map(|&x| i64::try_from(x).ok())
                .collect::<Option<_>>()?,
            ConstData::F16(_) | ConstData::BF16(_) | ConstData::F32(_) | ConstData::F64(_) => {
                return None;
            }
        })
    }

    /// Every element as `f64` (exact for every type held except 64-bit integers beyond 2^53).
    pub fn to_f64s(&self) -> Vec<f64> {
        match self {
            ConstData::Bool(v) => v.iter().map(|&x| f64::from(u8::from(x))).collect(),
            ConstData::I8(v) => v.iter().map(|&x| f64::from(x)).collect(),
            ConstData::U8(v) => v.iter().map(|&x| f64::from(x)).collect(),
            ConstData::I16(v) => v.iter().map(|&x| f64::from(x)).collect(),
            ConstData::U16(v) => v.iter().map(|&x| f64::from(x)).collect(),
            ConstData::I32(v) => v.iter().map(|&x| f64::from(x)).collect(),
            ConstData::U32(v) => v.iter().map(|&x| f64::from(x)).collect(),
            ConstData::I64(v) => v.iter().map(|&x| x as f64).collect(),
            ConstData::U64(v) => v.iter().map(|&x| x as f64).collect(),
            ConstData::F16(v) => v.iter().map(|x| x.to_f64()).collect(),
            ConstData::BF16(v) => v.iter().map(|x| x.to_f64()).collect(),
            ConstData::F32(v) => v.iter().map(|&x| f64::from(x)).collect(),
            ConstData::F64(v) => v.clone(),
        }
    }

    fn bits(&self) -> impl Iterator<Item = u64> + '_ {
        fn it<T: Elem>(v: &[T]) -> Box<dyn Iterator<Item = u64> + '_> {
            Box::new(v.iter().map(|x| x.bits()))
        }
        with_data!(self, v => it(v))
    }
}

impl PartialEq for ConstData {
    fn eq(&self, other: &Self) -> bool {
        self.dtype() == other.dtype() && self.len() == other.len() && self.bits().eq(other.bits())
    }
}

impl Eq for ConstData {}

impl Hash for ConstData {
    fn hash<H: Hasher>(&self, state: &mut H) {
        (self.dtype() as i32).hash(state);
        self.len().hash(state);
        for b in self.bits() {
            b.hash(state);
        }
    }
}

/// A small constant tensor.
#[derive(Clone, PartialEq, Eq, Hash, Debug)]
pub struct ConstTensor {
    /// Always `data.dtype()`; kept as a field so callers read it without matching.
    pub dtype: DataType,
    pub dims: Vec<i64>,
    pub data: ConstData,
}

impl ConstTensor {
    /// A tensor of `dims` over `data`; `None` if the element count does not match.
    pub fn new(dims: Vec<i64>, data: ConstData) -> Option<Self> {
        let n = element_count(&dims)?;
        if n != data.len() {
            return None;
        }
        Some(ConstTensor {
            dtype: data.dtype(),
            dims,
            data,
        })
    }

    /// A rank-0 int64 tensor.
    pub fn scalar_i64(v: i64) -> Self {
        ConstTensor {
            dtype: DataType::Int64,
            dims: Vec::new(),
            data: ConstData::I64(vec![v]),
        }
    }

    /// A rank-1 int64 tensor.
    pub fn vector_i64(v: Vec<i64>) -> Self {
        ConstTensor {
            dtype: DataType::Int64,
            dims: vec![v.len() as i64],
            data: ConstData::I64(v),
        }
    }

    pub fn len(&self) -> usize {
        self.data.len()
    }

    pub fn is_empty(&self) -> bool {
        self.data.is_empty()
    }

    /// Whether `dims` and `data` agree (always, for tensors built by this module; the fields
    /// are public, so kernels check before trusting the dims).
    pub fn is_consistent(&self) -> bool {
        self.dtype == self.data.dtype() && element_count(&self.dims) == Some(self.data.len())
    }

    pub fn rank(&self) -> usize {
        self.dims.len()
    }

    /// The elements as `i64` (integer and boolean tensors only).
    pub fn to_i64s(&self) -> Option<Vec<i64>> {
        self.data.to_i64s()
    }

    /// The single element of a one-element tensor (of any rank), as `i64`.
    pub fn scalar_as_i64(&self) -> Option<i64> {
        match self.to_i64s()?.as_slice() {
            [v] => Some(*v),
            _ => None,
        }
    }

    /// The single element of a one-element tensor, as `f64`.
    pub fn scalar_as_f64(&self) -> Option<f64> {
        match self.data.to_f64s().as_slice() {
            [v] => Some(*v),
            _ => None,
        }
    }

    /// Decodes a tensor stored in the model: `raw_data` (little-endian) or the typed field.
    ///
    /// `None` when the tensor has more than `max_elements` elements, an element type this module
    /// does not hold, external or segmented data, or data that disagrees with its dims.
    pub fn from_proto(t: &TensorProto, max_elements: usize) -> Option<Self> {
        if t.data_location == Some(DataLocation::External as i32) || t.segment.is_some() {
            return None;
        }
        let dtype = DataType::try_from(t.data_type?).ok()?;
        let n = element_count(&t.dims)?;
        if n > max_elements {
            return None;
        }
        let data = match &t.raw_data {
            Some(raw) => decode_raw(dtype, raw, n)?,
            None => decode_typed(dtype, t)?,
        };
        if data.len() != n {
            return None;
        }
        Some(ConstTensor {
            dtype,
            dims: t.dims.clone(),
            data,
        })
    }

    /// The tensor as an unnamed `TensorProto` with its data in `raw_data`.
    pub fn to_proto(&self) -> TensorProto {
        fn raw<T: Elem>(v: &[T]) -> Vec<u8> {
            let mut out = Vec::with_capacity(v.len() * T::SIZE);
            for &x in v {
                x.write_le(&mut out);
            }
            out
        }
        TensorProto {
            dims: self.dims.clone(),
            data_type: Some(self.dtype as i32),
            raw_data: Some(with_data!(&self.data, v => raw(v)).into()),
            ..TensorProto::default()
        }
    }
}

/// Element count of `dims` (1 for a scalar); `None` if a dim is negative or the count overflows.
pub(crate) fn element_count(dims: &[i64]) -> Option<usize> {
    dims.iter()
        .try_fold(1usize, |acc, &d| acc.checked_mul(usize::try_from(d).ok()?))
}

fn decode_raw(dtype: DataType, raw: &[u8], n: usize) -> Option<ConstData> {
    fn dec<T: Elem>(raw: &[u8], n: usize) -> Option<ConstData> {
        if raw.len() != n.checked_mul(T::SIZE)? {
            return None;
        }
        Some(T::wrap(raw.chunks_exact(T::SIZE).map(T::from_le).collect()))
    }
    match dtype {
        DataType::Bool => dec::<bool>(raw, n),
        DataType::Int8 => dec::<i8>(raw, n),
        DataType::Uint8 => dec::<u8>(raw, n),
        DataType::Int16 => dec::<i16>(raw, n),
        DataType::Uint16 => dec::<u16>(raw, n),
        DataType::Int32 => dec::<i32>(raw, n),
        DataType::Uint32 => dec::<u32>(raw, n),
        DataType::Int64 => dec::<i64>(raw, n),
        DataType::Uint64 => dec::<u64>(raw, n),
        DataType::Float16 => dec::<f16>(raw, n),
        DataType::Bfloat16 => dec::<bf16>(raw, n),
        DataType::Float => dec::<f32>(raw, n),
        DataType::Double => dec::<f64>(raw, n),
        _ => None,
    }
}

fn decode_typed(dtype: DataType, t: &TensorProto) -> Option<ConstData> {
    // Types narrower than 32 bits travel in `int32_data`, one element per entry; the writer
    // must have put values of the element type there, so a value out of range is a malformed
    // tensor and is refused rather than wrapped.
    fn narrow<T: TryFrom<i32>>(v: &[i32]) -> Option<Vec<T>> {
        v.iter().map(|&x| T::try_from(x).ok()).collect()
    }
    let i32d = &t.int32_data;
    Some(match dtype {
        DataType::Bool => ConstData::Bool(
            i32d.iter()
                .map(|&x| match x {
                    0 => Some(false),
                    1 => Some(true),
                    _ => None,
                })
                .collect::<Option<_>>()?,
        ),
        DataType::Int8 => ConstData::I8(narrow(i32d)?),
        DataType::Uint8 => ConstData::U8(narrow(i32d)?),
        DataType::Int16 => ConstData::I16(narrow(i32d)?),
        DataType::Uint16 => ConstData::U16(narrow(i32d)?),
        DataType::Int32 => ConstData::I32(i32d.clone()),
        DataType::Float16 => ConstData::F16(
            narrow::<u16>(i32d)?
                .into_iter()
                .map(f16::from_bits)
                .collect(),
        ),
        DataType::Bfloat16 => ConstData::BF16(
            narrow::<u16>(i32d)?
                .into_iter()
                .map(bf16::from_bits)
                .collect(),
        ),
        DataType::Int64 => ConstData::I64(t.int64_data.clone()),
        DataType::Uint32 => ConstData::U32(
            t.uint64_data
                .iter()
                .map(|&x| u32::try_from(x).ok())
                .collect::<Option<_>>()?,
        ),
        DataType::Uint64 => ConstData::U64(t.uint64_data.clone()),
        DataType::Float => ConstData::F32(t.float_data.clone()),
        DataType::Double => ConstData::F64(t.double_data.clone()),
        _ => return None,
    })
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn raw_round_trip_for_every_type() {
        let cases = [
            ConstData::Bool(vec![true, false]),
            ConstData::I8(vec![-128, 127]),
            ConstData::U8(vec![0, 255]),
            ConstData::I16(vec![i16::MIN, 7]),
            ConstData::U16(vec![u16::MAX, 1]),
            ConstData::I32(vec![i32::MIN, -1]),
            ConstData::U32(vec![u32::MAX, 3]),
            ConstData::I64(vec![i64::MIN, i64::MAX]),
            ConstData::U64(vec![u64::MAX, 0]),
            ConstData::F16(vec![f16::from_f32(1.5), f16::NAN]),
            ConstData::BF16(vec![bf16::from_f32(-2.0), bf16::INFINITY]),
            ConstData::F32(vec![f32::NAN, -0.0]),
            ConstData::F64(vec![1e300, f64::NEG_INFINITY]),
        ];
        for data in cases {
            let c = ConstTensor::new(vec![2], data).unwrap();
            let p = c.to_proto();
            assert_eq!(ConstTensor::from_proto(&p, 16).as_ref(), Some(&c));
        }
    }

    #[test]
    fn typed_fields() {
        let t = TensorProto {
            dims: vec![3],
            data_type: Some(DataType::Int64 as i32),
            int64_data: vec![1, -2, 3],
            ..Default::default()
        };
        let c = ConstTensor::from_proto(&t, 16).unwrap();
        assert_eq!(c.to_i64s().unwrap(), vec![1, -2, 3]);
        assert!(ConstTensor::from_proto(&t, 2).is_none(), "over the limit");

        let t = TensorProto {
            dims: vec![2],
            data_type: Some(DataType::Float16 as i32),
            int32_data: vec![0x3c00, 0xc000],
            ..Default::default()
        };
        let c = ConstTensor::from_proto(&t, 16).unwrap();
        assert_eq!(c.data.to_f64s(), vec![1.0, -2.0]);

        let bad = TensorProto {
            dims: vec![2],
            data_type: Some(DataType::Uint8 as i32),
            int32_data: vec![1, 300],
            ..Default::default()
        };
        assert!(ConstTensor::from_proto(&bad, 16).is_none());
        let short = TensorProto {
            dims: vec![4],
            data_type: Some(DataType::Float as i32),
            raw_data: Some(vec![0u8; 12].into()),
            ..Default::default()
        };
        assert!(ConstTensor::from_proto(&short, 16).is_none());
        let huge = TensorProto {
            dims: vec![i64::MAX, i64::MAX],
            data_type: Some(DataType::Float as i32),
            ..Default::default()
        };
        assert!(ConstTensor::from_proto(&huge, 16).is_none());
        let negative = TensorProto {
            dims: vec![-1],
            data_type: Some(DataType::Float as i32),
            ..Default::default()
        };
        assert!(ConstTensor::from_proto(&negative, 16).is_none());
    }

    #[test]
    fn equality_is_by_bits() {
        let nan = ConstTensor::new(vec![], ConstData::F32(vec![f32::NAN])).unwrap();
        assert_eq!(nan, nan.clone());
        let pz = ConstTensor::new(vec![], ConstData::F32(vec![0.0])).unwrap();
        let nz = ConstTensor::new(vec![], ConstData::F32(vec![-0.0])).unwrap();
        assert_ne!(pz, nz);
        let i = ConstTensor::new(vec![], ConstData::I32(vec![0])).unwrap();
        let u = ConstTensor::new(vec![], ConstData::U32(vec![0])).unwrap();
        assert_ne!(i, u);
    }
}
