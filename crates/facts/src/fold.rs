//! Arithmetic on constants: the element-wise, comparison, cast and reduction kernels of
//! constant folding.
//!
//! Every kernel either computes exactly what ONNX Runtime computes or declines (`None`):
//! integer arithmetic is checked (overflow, division by zero and `MIN / -1` decline instead of
//! wrapping or trapping), float arithmetic is limited to correctly rounded IEEE operations
//! (`+ - * /`, `sqrt`, exact rounding functions), so the folded value does not depend on a libm.
//! Float16 and bfloat16 compute in float32 and round once, which is exact for those operations
//! because float32 has more than twice their precision.

use half::{bf16, f16};
use onnx_rewrite_proto::tensor_proto::DataType;

use super::constant::{ConstData, ConstTensor, Elem};
use super::index;

#[derive(Clone, Copy, PartialEq, Eq, Debug)]
pub enum Binary {
    Add,
    Sub,
    Mul,
    /// Integer division truncates toward zero (ONNX Runtime's C++ `/`).
    Div,
    /// `fmod`: the sign of the dividend (C `fmod`); otherwise the sign of the divisor (Python).
    Mod {
        fmod: bool,
    },
    Max,
    Min,
    BitAnd,
    BitOr,
    BitXor,
    ShiftLeft,
    ShiftRight,
}

#[derive(Clone, Copy, PartialEq, Eq, Debug)]
pub enum Compare {
    Eq,
    Lt,
    Gt,
    Le,
    Ge,
}

#[derive(Clone, Copy, PartialEq, Eq, Debug)]
pub enum Logic {
    And,
    Or,
    Xor,
}

#[derive(Clone, Copy, PartialEq, Eq, Debug)]
pub enum Unary {
    Neg,
    Abs,
    Sqrt,
    Reciprocal,
    Floor,
    Ceil,
    Round,
    Sign,
    BitNot,
}

#[derive(Clone, Copy, PartialEq, Eq, Debug)]
pub enum Reduce {
    Sum,
    Prod,
    Max,
    Min,
}

/// Numeric element types: every [`Elem`] but `bool`. Each operation returns `None` where it
/// would overflow, trap, or is not defined for the type.
pub(crate) trait Num: Elem + PartialOrd {
    const ZERO: Self;
    const ONE: Self;
    fn add(self, o: Self) -> Option<Self>;
    fn sub(self, o: Self) -> Option<Self>;
    fn mul(self, o: Self) -> Option<Self>;
    fn div(self, o: Self) -> Option<Self>;
    fn rem(self, o: Self, fmod: bool) -> Option<Self>;
    fn neg(self) -> Option<Self>;
    fn abs(self) -> Option<Self>;
    fn max(self, o: Self) -> Option<Self>;
    fn min(self, o: Self) -> Option<Self>;
    fn sign(self) -> Option<Self>;
    fn float(self, _op: Unary) -> Option<Self> {
        None
    }
    fn bitwise(self, _op: Binary, _o: Self) -> Option<Self> {
        None
    }
    fn bit_not(self) -> Option<Self> {
        None
    }
}

macro_rules! impl_int {
    ($t:ty, signed: $signed:literal) => {
        impl Num for $t {
            const ZERO: Self = 0;
            const ONE: Self = 1;
            fn add(self, o: Self) -> Option<Self> {
                self.checked_add(o)
            }
            fn sub(self, o: Self) -> Option<Self> {
                self.checked_sub(o)
            }
            fn mul(self, o: Self) -> Option<Self> {
                self.checked_mul(o)
            }
            fn div(self, o: Self) -> Option<Self> {
                self.checked_div(o)
            }
            fn rem(self, o: Self, fmod: bool) -> Option<Self> {
                let r = self.checked_rem(o)?;
                // Compared as i128 so the same code serves unsigned types.
                let fix = !fmod && r != 0 && ((i128::from(r) < 0) != (i128::from(o) < 0));
                if fix { r.checked_add(o) } else { Some(r) }
            }
            fn neg(self) -> Option<Self> {
                Self::ZERO.checked_sub(self)
            }
            fn abs(self) -> Option<Self> {
                if i128::from(self) < 0 {
                    Self::ZERO.checked_sub(self)
                } else {
                    Some(self)
                }
            }
            fn max(self, o: Self) -> Option<Self> {
                Some(Ord::max(self, o))
            }
            fn min(self, o: Self) -> Option<Self> {
                Some(Ord::min(self, o))
            }
            fn sign(self) -> Option<Self> {
                Some(match i128::from(self).signum() {
                    1 => Self::ONE,
                    -1 => Self::ZERO.wrapping_sub(1),
                    _ => Self::ZERO,
                })
            }
            fn bitwise(self, op: Binary, o: Self) -> Option<Self> {
                match op {
                    Binary::BitAnd => Some(self & o),
                    Binary::BitOr => Some(self | o),
                    Binary::BitXor => Some(self ^ o),
                    // ONNX defines BitShift on unsigned types only; a shift by the width or
                    // more is undefined in C++, so it is not folded.
                    Binary::ShiftLeft if !$signed => self.checked_shl(u32::try_from(o).ok()?),
                    Binary::ShiftRight if !$signed => self.checked_shr(u32::try_from(o).ok()?),
                    _ => None,
                }
            }
            fn bit_not(self) -> Option<Self> {
                Some(!self)
            }
        }
    };
}

impl_int!(i8, signed: true);
impl_int!(u8, signed: false);
impl_int!(i16, signed: true);
impl_int!(u16, signed: false);
impl_int!(i32, signed: true);
impl_int!(u32, signed: false);
impl_int!(i64, signed: true);
impl_int!(u64, signed: false);

/// Float `Max`/`Min`: declined on NaN and on zeros of different signs, where runtimes differ.
fn float_pick<T: PartialOrd + Copy>(a: T, b: T, a_bits: u64, b_bits: u64, max: bool) -> Option<T> {
    let (lt, gt) = (a < b, a > b);
    if !lt && !gt {
        // Equal or unordered (NaN).
        return (a == b && a_bits == b_bits).then_some(a);
    }
    Some(if lt == max { b } else { a })
}

macro_rules! impl_float {
    ($t:ty, $to:expr, $from:expr) => {
        impl Num for $t {
            const ZERO: Self = <$t as FloatConsts>::ZERO;
            const ONE: Self = <$t as FloatConsts>::ONE;
            fn add(self, o: Self) -> Option<Self> {
                Some($from($to(self) + $to(o)))
            }
            fn sub(self, o: Self) -> Option<Self> {
                Some($from($to(self) - $to(o)))
            }
            fn mul(self, o: Self) -> Option<Self> {
                Some($from($to(self) * $to(o)))
            }
            fn div(self, o: Self) -> Option<Self> {
                Some($from($to(self) / $to(o)))
            }
            fn rem(self, o: Self, fmod: bool) -> Option<Self> {
                // Float Mod requires fmod=1; Rust's `%` on floats is C's fmod.
                fmod.then(|| $from($to(self) % $to(o)))
            }
            fn neg(self) -> Option<Self> {
                Some($from(-$to(self)))
            }
            fn abs(self) -> Option<Self> {
                Some($from($to(self).abs()))
            }
            fn max(self, o: Self) -> Option<Self> {
                float_pick(self, o, Elem::bits(self), Elem::bits(o), true)
            }
            fn min(self, o: Self) -> Option<Self> {
                float_pick(self, o, Elem::bits(self), Elem::bits(o), false)
            }
            fn sign(self) -> Option<Self> {
                let x = $to(self);
                if x.is_nan() {
                    return None;
                }
                Some($from(if x > 0.0 {
                    1.0
                } else if x < 0.0 {
                    -1.0
                } else {
                    0.0
                }))
            }
            fn float(self, op: Unary) -> Option<Self> {
                let x = $to(self);
                Some($from(match op {
                    Unary::Sqrt => x.sqrt(),
                    Unary::Reciprocal => 1.0 / x,
                    Unary::Floor => x.floor(),
                    Unary::Ceil => x.ceil(),
                    Unary::Round => x.round_ties_even(),
                    _ => return None,
                }))
            }
        }
    };
}

trait FloatConsts {
    const ZERO: Self;
    const ONE: Self;
}
impl FloatConsts for f32 {
    const ZERO: Self = 0.0;
    const ONE: Self = 1.0;
}
impl FloatConsts for f64 {
    const ZERO: Self = 0.0;
    const ONE: Self = 1.0;
}
impl FloatConsts for f16 {
    const ZERO: Self = f16::ZERO;
    const ONE: Self = f16::ONE;
}
impl FloatConsts for bf16 {
    const ZERO: Self = bf16::ZERO;
    const ONE: Self = bf16::ONE;
}

impl_float!(f32, |x: f32| x, |x: f32| x);
impl_float!(f64, |x: f64| x, |x: f64| x);
impl_float!(f16, |x: f16| x.to_f32(), f16::from_f32);
impl_float!(bf16, |x: bf16| x.to_f32(), bf16::from_f32);

/// Applies `$body` to two data vectors of the same numeric type (bound as `$x`, `$y`);
/// evaluates to `None` when the types differ or are `bool`.
macro_rules! same_numeric {
    ($a:expr, $b:expr, |$x:ident, $y:ident| $body:expr) => {
        match ($a, $b) {
            (ConstData::I8($x), ConstData::I8($y)) => $body,
            (ConstData::U8($x), ConstData::U8($y)) => $body,
            (ConstData::I16($x), ConstData::I16($y)) => $body,
            (ConstData::U16($x), ConstData::U16($y)) => $body,
            (ConstData::I32($x), ConstData::I32($y)) => $body,
            (ConstData::U32($x), ConstData::U32($y)) => $body,
            (ConstData::I64($x), ConstData::I64($y)) => $body,
            (ConstData::U64($x), ConstData::U64($y)) => $body,
            (ConstData::F16($x), ConstData::F16($y)) => $body,
            (ConstData::BF16($x), ConstData::BF16($y)) => $body,
            (ConstData::F32($x), ConstData::F32($y)) => $body,
            (ConstData::F64($x), ConstData::F64($y)) => $body,
            _ => None,
        }
    };
}

/// Like [`same_numeric`] for one vector.
macro_rules! numeric {
    ($a:expr, |$x:ident| $body:expr) => {
        match $a {
            ConstData::I8($x) => $body,
            ConstData::U8($x) => $body,
            ConstData::I16($x) => $body,
            ConstData::U16($x) => $body,
            ConstData::I32($x) => $body,
            ConstData::U32($x) => $body,
            ConstData::I64($x) => $body,
            ConstData::U64($x) => $body,
            ConstData::F16($x) => $body,
            ConstData::BF16($x) => $body,
            ConstData::F32($x) => $body,
            ConstData::F64($x) => $body,
            ConstData::Bool(_) => None,
        }
    };
}

/// Broadcast dims of two constants and each one's index map, bounded by `max_elements`.
fn broadcast2(
    a: &ConstTensor,
    b: &ConstTensor,
    max_elements: usize,
) -> Option<(Vec<i64>, Vec<usize>, Vec<usize>)> {
    if !a.is_consistent() || !b.is_consistent() {
        return None;
    }
    let dims = index::broadcast_dims(&[&a.dims, &b.dims])?;
    let ia = index::broadcast(&a.dims, &dims, max_elements)?;
    let ib = index::broadcast(&b.dims, &dims, max_elements)?;
    Some((dims, ia, ib))
}

fn zip_map<T: Copy, U>(
    x: &[T],
    y: &[T],
    ia: &[usize],
    ib: &[usize],
    f: impl Fn(T, T) -> Option<U>,
) -> Option<Vec<U>> {
    ia.iter()
        .zip(ib)
        .map(|(&i, &j)| f(*x.get(i)?, *y.get(j)?))
        .collect()
}

/// An element-wise binary op with numpy broadcasting.
pub fn binary(
    op: Binary,
    a: &ConstTensor,
    b: &ConstTensor,
    max_elements: usize,
) -> Option<ConstTensor> {
    fn apply<T: Num>(
        op: Binary,
        x: &[T],
        y: &[T],
        ia: &[usize],
        ib: &[usize],
    ) -> Option<ConstData> {
        let f = |p: T, q: T| match op {
            Binary::Add => p.add(q),
            Binary::Sub => p.sub(q),
            Binary::Mul => p.mul(q),
            Binary::Div => p.div(q),
            Binary::Mod { fmod } => p.rem(q, fmod),
            Binary::Max => p.max(q),
            Binary::Min => p.min(q),
            Binary::BitAnd
            | Binary::BitOr
            | Binary::BitXor
            | Binary::ShiftLeft
            | Binary::ShiftRight => p.bitwise(op, q),
        };
        zip_map(x, y, ia, ib, f).map(T::wrap)
    }
    let (dims, ia, ib) = broadcast2(a, b, max_elements)?;
    let data = same_numeric!(&a.data, &b.data, |x, y| apply(op, x, y, &ia, &ib))?;
    ConstTensor::new(dims, data)
}

/// A comparison with numpy broadcasting; the result is bool. IEEE semantics for floats.
pub fn compare(
    op: Compare,
    a: &ConstTensor,
    b: &ConstTensor,
    max_elements: usize,
) -> Option<ConstTensor> {
    fn apply<T: PartialOrd + Copy>(
        op: Compare,
        x: &[T],
        y: &[T],
        ia: &[usize],
        ib: &[usize],
    ) -> Option<ConstData> {
        let f = |p: T, q: T| {
            Some(match op {
                Compare::Eq => p == q,
                Compare::Lt => p < q,
                Compare::Gt => p > q,
                Compare::Le => p <= q,
                Compare::Ge => p >= q,
            })
        };
        zip_map(x, y, ia, ib, f).map(ConstData::Bool)
    }
    let (dims, ia, ib) = broadcast2(a, b, max_elements)?;
    let data = match (&a.data, &b.data) {
        (ConstData::Bool(x), ConstData::Bool(y)) => apply(op, x, y, &ia, &ib),
        _ => same_numeric!(&a.data, &b.data, |x, y| apply(op, x, y, &ia, &ib)),
    }?;
    ConstTensor::new(dims, data)
}

/// `And`, `Or`, `Xor` on bool tensors, with broadcasting.
pub fn logic(
    op: Logic,
    a: &ConstTensor,
    b: &ConstTensor,
    max_elements: usize,
) -> Option<ConstTensor> {
    let (ConstData::Bool(x), ConstData::Bool(y)) = (&a.data, &b.data) else {
        return None;
    };
    let (dims, ia, ib) = broadcast2(a, b, max_elements)?;
    let v = zip_map(x, y, &ia, &ib, |p, q| {
        Some(match op {
            Logic::And => p && q,
            Logic::Or => p || q,
            Logic::Xor => p != q,
        })
    })?;
    ConstTensor::new(dims, ConstData::Bool(v))
}

/// `Not` on a bool tensor.
pub fn not(a: &ConstTensor) -> Option<ConstTensor> {
    let ConstData::Bool(x) = &a.data else {
        return None;
    };
    ConstTensor::new(
        a.dims.clone(),
        ConstData::Bool(x.iter().map(|v| !v).collect()),
    )
}

/// An element-wise unary op.
pub fn unary(op: Unary, a: &ConstTensor) -> Option<ConstTensor> {
    fn apply<T: Num>(op: Unary, x: &[T]) -> Option<ConstData> {
        x.iter()
            .map(|&v| match op {
                Unary::Neg => v.neg(),
                Unary::Abs => v.abs(),
                Unary::Sign => v.sign(),
                Unary::BitNot => v.bit_not(),
                Unary::Sqrt | Unary::Reciprocal | Unary::Floor | Unary::Ceil | Unary::Round => {
                    v.float(op)
                }
            })
            .collect::<Option<Vec<T>>>()
            .map(T::wrap)
    }
    let data = numeric!(&a.data, |x| apply(op, x))?;
    ConstTensor::new(a.dims.clone(), data)
}

/// `Where(cond, x, y)` with three-way broadcasting.
pub fn select(
    cond: &ConstTensor,
    x: &ConstTensor,
    y: &ConstTensor,
    max_elements: usize,
) -> Option<ConstTensor> {
    let ConstData::Bool(c) = &cond.data else {
        return None;
    };
    if x.dtype != y.dtype || ![cond, x, y].iter().all(|t| t.is_consistent()) {
        return None;
    }
    let dims = index::broadcast_dims(&[&cond.dims, &x.dims, &y.dims])?;
    let ic = index::broadcast(&cond.dims, &dims, max_elements)?;
    let ix = index::broadcast(&x.dims, &dims, max_elements)?;
    let iy = index::broadcast(&y.dims, &dims, max_elements)?;
    // Pick from x and y laid end to end.
    let both = ConstData::concat(&[&x.data, &y.data])?;
    let picks: Vec<usize> = ic
        .iter()
        .zip(ix.iter().zip(&iy))
        .map(|(&k, (&i, &j))| Some(if *c.get(k)? { i } else { x.len() + j }))
        .collect::<Option<_>>()?;
    ConstTensor::new(dims, both.select(&picks))
}

/// A reduction of an integer tensor over `axes` (distinct, in range). Float reductions are not
/// folded: their result depends on the summation order.
pub fn reduce(
    op: Reduce,
    a: &ConstTensor,
    axes: &[usize],
    keepdims: bool,
    max_elements: usize,
) -> Option<ConstTensor> {
    fn apply<T: Num>(op: Reduce, x: &[T], groups: &[usize], n_out: usize) -> Option<ConstData> {
        let mut acc: Vec<Option<T>> = vec![
            match op {
                Reduce::Sum => Some(T::ZERO),
                Reduce::Prod => Some(T::ONE),
                Reduce::Max | Reduce::Min => None,
            };
            n_out
        ];
        for (&g, &v) in groups.iter().zip(x) {
            let slot = acc.get_mut(g)?;
            *slot = Some(match (*slot, op) {
                (None, _) => v,
                (Some(s), Reduce::Sum) => s.add(v)?,
                (Some(s), Reduce::Prod) => s.mul(v)?,
                (Some(s), Reduce::Max) => s.max(v)?,
                (Some(s), Reduce::Min) => s.min(v)?,
            });
        }
        // An empty Max/Min has no value (runtimes disagree on what to return).
        acc.into_iter().collect::<Option<Vec<T>>>().map(T::wrap)
    }
    if matches!(
        a.dtype,
        DataType::Float | DataType::Double | DataType::Float16 | DataType::Bfloat16
    ) {
        return None;
    }
    // The fields are public: do not size anything from dims the data does not back.
    if !a.is_consistent() {
        return None;
    }
    let rank = a.dims.len();
    let mut out_dims = Vec::with_capacity(rank);
    let mut kept_strides = vec![0usize; rank];
    let mut s = 1usize;
    for i in (0..rank).rev() {
        if !axes.contains(&i) {
            kept_strides[i] = s;
            s = s.checked_mul(usize::try_from(a.dims[i]).ok()?)?;
        }
    }
    for (i, &d) in a.dims.iter().enumerate() {
        if !axes.contains(&i) {
            out_dims.push(d);
        } else if keepdims {
            out_dims.push(1);
        }
    }
    // Output group of every input element.
    let dims_u: Vec<usize> = a
        .dims
        .iter()
        .map(|&d| usize::try_from(d).ok())
        .collect::<Option<_>>()?;
    let mut groups = Vec::with_capacity(a.len());
    let mut idx = vec![0usize; rank];
    for _ in 0..a.len() {
        groups.push(idx.iter().zip(&kept_strides).map(|(i, s)| i * s).sum());
        for k in (0..rank).rev() {
            idx[k] += 1;
            if idx[k] < dims_u[k] {
                break;
            }
            idx[k] = 0;
        }
    }
    // An empty input (a zero dim) can still have a large output: bound it too.
    if s > max_elements {
        return None;
    }
    let data = numeric!(&a.data, |x| apply(op, x, &groups, s))?;
    ConstTensor::new(out_dims, data)
}

/// One element on its way through a cast: integers (and bools) exactly, floats as `f64`
/// (exact for every float type held).
#[derive(Clone, Copy)]
enum Scalar {
    Int(i128),
    Float(f64),
}

fn scalars(d: &ConstData) -> Vec<Scalar> {
    match d {
        ConstData::F16(_) | ConstData::BF16(_) | ConstData::F32(_) | ConstData::F64(_) => {
            d.to_f64s().into_iter().map(Scalar::Float).collect()
        }
        ConstData::Bool(v) => v.iter().map(|&x| Scalar::Int(i128::from(x))).collect(),
        ConstData::I8(v) => v.iter().map(|&x| Scalar::Int(i128::from(x))).collect(),
        ConstData::U8(v) => v.iter().map(|&x| Scalar::Int(i128::from(x))).collect(),
        ConstData::I16(v) => v.iter().map(|&x| Scalar::Int(i128::from(x))).collect(),
        ConstData::U16(v) => v.iter().map(|&x| Scalar::Int(i128::from(x))).collect(),
        ConstData::I32(v) => v.iter().map(|&x| Scalar::Int(i128::from(x))).collect(),
        ConstData::U32(v) => v.iter().map(|&x| Scalar::Int(i128::from(x))).collect(),
        ConstData::I64(v) => v.iter().map(|&x| Scalar::Int(i128::from(x))).collect(),
        ConstData::U64(v) => v.iter().map(|&x| Scalar::Int(i128::from(x))).collect(),
    }
}

/// A float truncated toward zero, if it is finite and in range of the target (C++ leaves other
/// values undefined, so they are not folded).
fn trunc_int<T: TryFrom<i128>>(f: f64) -> Option<T> {
    if !f.is_finite() || f.abs() >= 1e30 {
        return None;
    }
    T::try_from(f.trunc() as i128).ok()
}

/// `Cast` to `to`, with ONNX Runtime's semantics: integers wrap (two's complement) when
/// narrowed, floats truncate toward zero into integers (declined when out of range or NaN),
/// anything non-zero (NaN included) is `true`.
pub fn cast(a: &ConstTensor, to: DataType) -> Option<ConstTensor> {
    if a.dtype == to {
        return Some(a.clone());
    }
    let xs = scalars(&a.data);
    // `i128 as iN` keeps the low bits: two's-complement wrap, like C++ conversions.
    macro_rules! ints {
        ($t:ty, $variant:ident) => {
            ConstData::$variant(
                xs.iter()
                    .map(|s| match *s {
                        Scalar::Int(i) => Some(i as $t),
                        Scalar::Float(f) => trunc_int::<$t>(f),
                    })
                    .collect::<Option<_>>()?,
            )
        };
    }
    // ONNX Runtime narrows double to half types through float; do the same.
    let to_f32 = |s: &Scalar| match *s {
        Scalar::Int(i) => i as f32,
        Scalar::Float(f) => f as f32,
    };
    let data = match to {
        DataType::Bool => ConstData::Bool(
            xs.iter()
                .map(|s| match *s {
                    Scalar::Int(i) => i != 0,
                    Scalar::Float(f) => f != 0.0,
                })
                .collect(),
        ),
        DataType::Int8 => ints!(i8, I8),
        DataType::Uint8 => ints!(u8, U8),
        DataType::Int16 => ints!(i16, I16),
        DataType::Uint16 => ints!(u16, U16),
        DataType::Int32 => ints!(i32, I32),
        DataType::Uint32 => ints!(u32, U32),
        DataType::Int64 => ints!(i64, I64),
        DataType::Uint64 => ints!(u64, U64),
        DataType::Float => ConstData::F32(xs.iter().map(to_f32).collect()),
        DataType::Double => ConstData::F64(
            xs.iter()
                .map(|s| match *s {
                    Scalar::Int(i) => i as f64,
                    Scalar::Float(f) => f,
                })
                .collect(),
        ),
        DataType::Float16 => ConstData::F16(xs.iter().map(|s| f16::from_f32(to_f32(s))).collect()),
        DataType::Bfloat16 => {
            ConstData::BF16(xs.iter().map(|s| bf16::from_f32(to_f32(s))).collect())
        }
        _ => return None,
    };
    ConstTensor::new(a.dims.clone(), data)
}

/// `Range(start, limit, delta)` over integers: `max(0, ceil((limit - start) / delta))` elements.
pub fn range_len(start: i64, limit: i64, delta: i64) -> Option<i64> {
    if delta == 0 {
        return None;
    }
    let span = i128::from(limit) - i128::from(start);
    let d = i128::from(delta);
    let (q, r) = (span / d, span % d);
    let n = if r != 0 && ((r > 0) == (d > 0)) {
        q + 1
    } else {
        q
    };
    i64::try_from(n.max(0)).ok()
}

/// The elements of an integer `Range` whose length the caller has bounded.
pub fn range_values(start: i64, delta: i64, n: i64) -> Option<Vec<i64>> {
    (0..n)
        .map(|i| i.checked_mul(delta).and_then(|o| start.checked_add(o)))
        .collect()
}

#[cfg(test)]
mod tests {
    use super::*;

    fn i64s(dims: &[i64], v: &[i64]) -> ConstTensor {
        ConstTensor::new(dims.to_vec(), ConstData::I64(v.to_vec())).unwrap()
    }

    fn f32s(dims: &[i64], v: &[f32]) -> ConstTensor {
        ConstTensor::new(dims.to_vec(), ConstData::F32(v.to_vec())).unwrap()
    }

    #[test]
    fn integer_arithmetic_is_checked() {
        let a = i64s(&[3], &[7, -7, i64::MIN]);
        let b = i64s(&[], &[2]);
        let d = binary(Binary::Div, &a, &b, 64).unwrap();
        assert_eq!(d.to_i64s().unwrap(), vec![3, -3, i64::MIN / 2]);
        let m = binary(Binary::Mod { fmod: false }, &a, &b, 64).unwrap();
        assert_eq!(m.to_i64s().unwrap(), vec![1, 1, 0]);
        let a2 = i64s(&[2], &[7, -7]);
        let b2 = i64s(&[], &[-2]);
        let m = binary(Binary::Mod { fmod: false }, &a2, &b2, 64).unwrap();
        assert_eq!(m.to_i64s().unwrap(), vec![-1, -1]);
        let m = binary(Binary::Mod { fmod: true }, &a2, &b2, 64).unwrap();
        assert_eq!(m.to_i64s().unwrap(), vec![1, -1]);
        assert!(binary(Binary::Div, &a, &i64s(&[], &[0]), 64).is_none());
        assert!(
            binary(Binary::Div, &a, &i64s(&[], &[-1]), 64).is_none(),
            "MIN / -1"
        );
        assert!(binary(Binary::Mul, &a, &b, 64).is_none(), "MIN * 2");
        assert!(
            binary(Binary::Add, &a, &f32s(&[], &[1.0]), 64).is_none(),
            "mixed types"
        );
        assert!(unary(Unary::Neg, &a).is_none());
        let big = i64s(&[2], &[1, 2]);
        assert!(
            binary(Binary::Add, &big, &i64s(&[3, 1], &[1, 2, 3]), 5).is_none(),
            "limit"
        );
    }

    #[test]
    fn floats_fold_exactly() {
        let a = f32s(&[2], &[1.0, 4.0]);
        let s = unary(Unary::Sqrt, &a).unwrap();
        assert_eq!(s.data, ConstData::F32(vec![1.0, 2.0]));
        let z = f32s(&[], &[0.0]);
        let d = binary(Binary::Div, &a, &z, 8).unwrap();
        assert_eq!(d.data, ConstData::F32(vec![f32::INFINITY, f32::INFINITY]));
        assert!(binary(Binary::Max, &f32s(&[], &[f32::NAN]), &z, 8).is_none());
        assert!(binary(Binary::Max, &f32s(&[], &[-0.0]), &z, 8).is_none());
        let h = ConstTensor::new(vec![], ConstData::F16(vec![f16::from_f32(0.1)])).unwrap();
        let r = binary(Binary::Add, &h, &h, 8).unwrap();
        assert_eq!(
            r.data,
            ConstData::F16(vec![f16::from_f32(0.1) + f16::from_f32(0.1)])
        );
    }

    #[test]
    fn casts() {
        let f = f32s(&[4], &[1.9, -1.9, f32::NAN, 3e10]);
        assert!(
            cast(&f, DataType::Int32).is_none(),
            "NaN and out of range decline"
        );
        let f = f32s(&[2], &[1.9, -1.9]);
        assert_eq!(
            cast(&f, DataType::Int64).unwrap().to_i64s().unwrap(),
            vec![1, -1]
        );
        assert!(cast(&f, DataType::Uint8).is_none(), "-1 does not fit uint8");
        let i = i64s(&[2], &[300, -1]);
        assert_eq!(
            cast(&i, DataType::Uint8).unwrap().data,
            ConstData::U8(vec![44, 255])
        );
        assert_eq!(
            cast(&i, DataType::Bool).unwrap().data,
            ConstData::Bool(vec![true, true])
        );
        let n = f32s(&[1], &[f32::NAN]);
        assert_eq!(
            cast(&n, DataType::Bool).unwrap().data,
            ConstData::Bool(vec![true])
        );
        let big = i64s(&[1], &[(1 << 53) + 1]);
        assert_eq!(
            cast(&big, DataType::Float).unwrap().data,
            ConstData::F32(vec![9_007_199_254_740_992.0])
        );
        assert_eq!(
            cast(&f32s(&[1], &[70000.0]), DataType::Float16)
                .unwrap()
                .data,
            ConstData::F16(vec![f16::INFINITY])
        );
    }

    #[test]
    fn reductions_and_select() {
        let a = i64s(&[2, 3], &[1, 2, 3, 4, 5, 6]);
        assert_eq!(
            reduce(Reduce::Sum, &a, &[1], false, 64).unwrap(),
            i64s(&[2], &[6, 15])
        );
        assert_eq!(
            reduce(Reduce::Prod, &a, &[0, 1], true, 64).unwrap(),
            i64s(&[1, 1], &[720])
        );
        assert_eq!(
            reduce(Reduce::Max, &a, &[0], false, 64).unwrap(),
            i64s(&[3], &[4, 5, 6])
        );
        let e = i64s(&[0], &[]);
        assert_eq!(
            reduce(Reduce::Sum, &e, &[0], false, 64).unwrap(),
            i64s(&[], &[0])
        );
        assert!(reduce(Reduce::Max, &e, &[0], false, 64).is_none());
        let c = ConstTensor::new(vec![2], ConstData::Bool(vec![true, false])).unwrap();
        let w = select(&c, &i64s(&[2], &[1, 2]), &i64s(&[], &[9]), 8).unwrap();
        assert_eq!(w, i64s(&[2], &[1, 9]));
    }

    #[test]
    fn ranges() {
        assert_eq!(range_len(0, 5, 2), Some(3));
        assert_eq!(range_len(5, 0, -2), Some(3));
        assert_eq!(range_len(0, 5, -1), Some(0));
        assert_eq!(range_len(i64::MIN, i64::MAX, 1), None);
        assert_eq!(range_len(0, 1, 0), None);
        assert_eq!(range_values(1, 2, 3), Some(vec![1, 3, 5]));
    }
}
