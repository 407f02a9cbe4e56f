//! Element-wise ops: output shape by broadcasting, dtype by the op's type rule, folding through
//! the kernels of [`fold`](crate::fold), and per-element dim arithmetic for shape
//! computations (`Shape(x)[0] * 2`, `Concat(...) - 1`).

use onnx_rewrite_proto::tensor_proto::DataType;

use super::Ctx;
use crate::constant::ConstTensor;
use crate::fold::{self, Binary, Compare, Logic, Unary};
use crate::index;
use crate::shape::{self, Shape};
use crate::symbols::Dim;
use crate::value::{DimValues, ValueFacts, is_int};

/// Output 0 has input 0's dtype and shape.
pub(super) fn same_as_input(cx: &mut Ctx<'_, '_>) {
    cx.set_dtype(0, cx.dtype(0));
    cx.set_shape(0, cx.shape(0));
}

/// `Identity` passes every fact through, constant included.
pub(super) fn identity(cx: &mut Ctx<'_, '_>) {
    if let (Some(f), Some(o)) = (cx.input(0), cx.out.get_mut(0)) {
        *o = f.clone();
    }
}

/// Unary ops that fold: numeric ones (when exact) and `Not`.
pub(super) fn unary_folding(cx: &mut Ctx<'_, '_>) {
    same_as_input(cx);
    let Some(c) = cx.constant(0) else {
        return;
    };
    let folded = match cx.op.op_type {
        "Not" => fold::not(c),
        "Neg" => fold::unary(Unary::Neg, c),
        "Abs" => fold::unary(Unary::Abs, c),
        "Sqrt" => fold::unary(Unary::Sqrt, c),
        "Reciprocal" => fold::unary(Unary::Reciprocal, c),
        "Floor" => fold::unary(Unary::Floor, c),
        "Ceil" => fold::unary(Unary::Ceil, c),
        "Round" => fold::unary(Unary::Round, c),
        "Sign" => fold::unary(Unary::Sign, c),
        "BitwiseNot" => fold::unary(Unary::BitNot, c),
        _ => None,
    };
    cx.fold(0, folded);
}

/// `IsNaN`, `IsInf`: bool, input's shape.
pub(super) fn predicate(cx: &mut Ctx<'_, '_>) {
    cx.set_dtype(0, Some(DataType::Bool));
    cx.set_shape(0, cx.shape(0));
}

/// The broadcast shape of the present inputs. Before opset 7, binary ops broadcast only with
/// the `broadcast` attribute, and then B to A: the output has A's shape.
fn broadcast_inputs(cx: &mut Ctx<'_, '_>, legacy: bool) -> Option<Shape> {
    if legacy && cx.opset() < 7 {
        return cx.shape(0);
    }
    let shapes: Vec<Shape> = (0..cx.inputs.len())
        .filter(|&i| cx.input(i).is_some())
        .map(|i| cx.shape(i))
        .collect::<Option<_>>()?;
    if shapes.is_empty() {
        return None;
    }
    let refs: Vec<&Shape> = shapes.iter().collect();
    shape::broadcast(cx.syms, &refs)
}

/// Whether folding may use numpy broadcasting (opset 7+, or operands of equal dims).
fn foldable_broadcast(cx: &Ctx<'_, '_>, a: &ConstTensor, b: &ConstTensor) -> bool {
    cx.opset() >= 7 || a.dims == b.dims
}

fn binary_op(cx: &Ctx<'_, '_>) -> Option<Binary> {
    Some(match cx.op.op_type {
        "Add" => Binary::Add,
        "Sub" => Binary::Sub,
        "Mul" => Binary::Mul,
        "Div" => Binary::Div,
        "Mod" => Binary::Mod {
            fmod: cx.attrs.int_or("fmod", 0)? != 0,
        },
        "BitwiseAnd" => Binary::BitAnd,
        "BitwiseOr" => Binary::BitOr,
        "BitwiseXor" => Binary::BitXor,
        "BitShift" => match cx.attrs.string("direction").ok()?? {
            b"LEFT" => Binary::ShiftLeft,
            b"RIGHT" => Binary::ShiftRight,
            _ => return None,
        },
        _ => return None,
    })
}

/// Binary arithmetic and bitwise ops: T × T → T (`Pow`: the base's type).
pub(super) fn arithmetic(cx: &mut Ctx<'_, '_>) {
    let dtype = cx.dtype(0).or_else(|| {
        if cx.op.op_type == "Pow" {
            None
        } else {
            cx.dtype(1)
        }
    });
    cx.set_dtype(0, dtype);
    let s = broadcast_inputs(cx, true);
    cx.set_shape(0, s);
    let Some(op) = binary_op(cx) else {
        return;
    };
    if let (Some(a), Some(b)) = (cx.constant(0), cx.constant(1)) {
        if foldable_broadcast(cx, a, b) {
            let r = fold::binary(op, a, b, cx.limit);
            cx.fold(0, r);
        }
        return;
    }
    if cx.opset() >= 7 {
        dim_arithmetic(cx, op);
    }
}

/// Element-wise arithmetic over per-element dims (at least one operand symbolic).
fn dim_arithmetic(cx: &mut Ctx<'_, '_>, op: Binary) {
    let (Some(a), Some(b)) = (cx.input(0), cx.input(1)) else {
        return;
    };
    let Some(dtype) = a.dtype.filter(|&d| is_int(d)) else {
        return;
    };
    let (Some(va), Some(vb)) = (a.dim_values(), b.dim_values()) else {
        return;
    };
    let Some((dims, ia, ib)) = broadcast_maps(cx, a, b) else {
        return;
    };
    let values: DimValues = ia
        .iter()
        .zip(&ib)
        .map(|(&i, &j)| {
            let (x, y) = (va.get(i).copied().flatten()?, vb.get(j).copied().flatten()?);
            dim_binary(cx, op, x, y, dtype)
        })
        .collect();
    cx.set_dim_values(0, dtype, Shape::known(&dims), values);
}

/// Known dims of two inputs, their broadcast and both index maps, within the limit.
fn broadcast_maps(
    cx: &mut Ctx<'_, '_>,
    a: &ValueFacts,
    b: &ValueFacts,
) -> Option<(Vec<i64>, Vec<usize>, Vec<usize>)> {
    let da = a.shape.as_ref()?.known_dims(cx.syms)?;
    let db = b.shape.as_ref()?.known_dims(cx.syms)?;
    let dims = index::broadcast_dims(&[&da, &db])?;
    let ia = index::broadcast(&da, &dims, cx.limit)?;
    let ib = index::broadcast(&db, &dims, cx.limit)?;
    Some((dims, ia, ib))
}

/// One element of dim arithmetic; `None` when the result is not a single dim or value.
/// Symbols are dims, hence `>= 0`, which the `Max`/`Min` identities use.
fn dim_binary(cx: &mut Ctx<'_, '_>, op: Binary, x: Dim, y: Dim, dtype: DataType) -> Option<Dim> {
    let (x, y) = (cx.syms.resolve(x), cx.syms.resolve(y));
    if let (Dim::Known(p), Dim::Known(q)) = (x, y) {
        let v = match op {
            Binary::Add => p.checked_add(q)?,
            Binary::Sub => p.checked_sub(q)?,
            Binary::Mul => p.checked_mul(q)?,
            Binary::Div => p.checked_div(q)?,
            Binary::Max => p.max(q),
            Binary::Min => p.min(q),
            _ => return None,
        };
        // int32 arithmetic must stay in range to mean the same thing.
        if dtype == DataType::Int32 && i32::try_from(v).is_err() {
            return None;
        }
        return Some(Dim::Known(v));
    }
    match (op, x, y) {
        (Binary::Add, d, Dim::Known(0)) | (Binary::Add, Dim::Known(0), d) => Some(d),
        (Binary::Sub, d, Dim::Known(0)) => Some(d),
        (Binary::Sub, a, b) if a == b => Some(Dim::Known(0)),
        (Binary::Mul, d, Dim::Known(1)) | (Binary::Mul, Dim::Known(1), d) => Some(d),
        (Binary::Mul, _, Dim::Known(0)) | (Binary::Mul, Dim::Known(0), _) => Some(Dim::Known(0)),
        (Binary::Div, d, Dim::Known(1)) => Some(d),
        (Binary::Max, d, Dim::Known(k)) | (Binary::Max, Dim::Known(k), d) if k <= 0 => Some(d),
        (Binary::Min, _, Dim::Known(k)) | (Binary::Min, Dim::Known(k), _) if k <= 0 => {
            Some(Dim::Known(k))
        }
        (Binary::Max | Binary::Min, a, b) if a == b => Some(a),
        _ => None,
    }
}

/// Comparisons: bool, broadcast.
pub(super) fn comparison(cx: &mut Ctx<'_, '_>) {
    cx.set_dtype(0, Some(DataType::Bool));
    let s = broadcast_inputs(cx, true);
    cx.set_shape(0, s);
    let op = match cx.op.op_type {
        "Equal" => Compare::Eq,
        "Less" => Compare::Lt,
        "Greater" => Compare::Gt,
        "LessOrEqual" => Compare::Le,
        _ => Compare::Ge,
    };
    if let (Some(a), Some(b)) = (cx.constant(0), cx.constant(1)) {
        if foldable_broadcast(cx, a, b) {
            let r = fold::compare(op, a, b, cx.limit);
            cx.fold(0, r);
        }
        return;
    }
    if cx.opset() >= 7 {
        dim_comparison(cx, op);
    }
}

/// A comparison decided on symbolic elements: a symbol equals itself, and a dim (`>= 0`) is
/// never equal to, or less than, a negative value.
fn dim_comparison(cx: &mut Ctx<'_, '_>, op: Compare) {
    let (Some(a), Some(b)) = (cx.input(0), cx.input(1)) else {
        return;
    };
    let (Some(va), Some(vb)) = (a.dim_values(), b.dim_values()) else {
        return;
    };
    let Some((dims, ia, ib)) = broadcast_maps(cx, a, b) else {
        return;
    };
    let mut out = Vec::with_capacity(ia.len());
    for (&i, &j) in ia.iter().zip(&ib) {
        let (Some(Some(x)), Some(Some(y))) = (va.get(i), vb.get(j)) else {
            return;
        };
        let (x, y) = (cx.syms.resolve(*x), cx.syms.resolve(*y));
        // Order as x - y: known when both are known, 0 when the same symbol, and positive
        // when a symbol meets a negative value.
        let ord = match (x, y) {
            (Dim::Known(p), Dim::Known(q)) => p.cmp(&q),
            _ if x == y => std::cmp::Ordering::Equal,
            (Dim::Sym(_), Dim::Known(q)) if q < 0 => std::cmp::Ordering::Greater,
            (Dim::Known(p), Dim::Sym(_)) if p < 0 => std::cmp::Ordering::Less,
            _ => return,
        };
        out.push(match op {
            Compare::Eq => ord.is_eq(),
            Compare::Lt => ord.is_lt(),
            Compare::Gt => ord.is_gt(),
            Compare::Le => ord.is_le(),
            Compare::Ge => ord.is_ge(),
        });
    }
    let c = ConstTensor::new(dims, crate::constant::ConstData::Bool(out));
    cx.fold(0, c);
}

/// `And`, `Or`, `Xor`: bool, broadcast.
pub(super) fn logical(cx: &mut Ctx<'_, '_>) {
    cx.set_dtype(0, Some(DataType::Bool));
    let s = broadcast_inputs(cx, true);
    cx.set_shape(0, s);
    let op = match cx.op.op_type {
        "And" => Logic::And,
        "Or" => Logic::Or,
        _ => Logic::Xor,
    };
    if let (Some(a), Some(b)) = (cx.constant(0), cx.constant(1))
        && foldable_broadcast(cx, a, b)
    {
        let r = fold::logic(op, a, b, cx.limit);
        cx.fold(0, r);
    }
}

/// `Sum`, `Max`, `Min`, `Mean`: any number of inputs, broadcast (opset 8+; equal shapes before).
pub(super) fn variadic(cx: &mut Ctx<'_, '_>) {
    let dtype = (0..cx.inputs.len()).find_map(|i| cx.dtype(i));
    cx.set_dtype(0, dtype);
    let s = if cx.opset() < 8 {
        (0..cx.inputs.len()).find_map(|i| cx.shape(i))
    } else {
        broadcast_inputs(cx, false)
    };
    cx.set_shape(0, s);
    let op = match cx.op.op_type {
        "Sum" => Binary::Add,
        "Max" => Binary::Max,
        "Min" => Binary::Min,
        _ => return,
    };
    let Some(consts) = cx.constants(0..cx.inputs.len()) else {
        return;
    };
    // A float sum of more than two terms depends on the runtime's order of additions.
    let is_float = consts.first().is_some_and(|c| {
        matches!(
            c.dtype,
            DataType::Float | DataType::Double | DataType::Float16 | DataType::Bfloat16
        )
    });
    if op == Binary::Add && is_float && consts.len() > 2 {
        return;
    }
    let Some((first, rest)) = consts.split_first() else {
        return;
    };
    let mut acc = Some((*first).clone());
    for c in rest {
        acc = acc.and_then(|a| fold::binary(op, &a, c, cx.limit));
    }
    if cx.opset() >= 8 || consts.iter().all(|c| c.dims == first.dims) {
        cx.fold(0, acc);
    }
}

/// `PRelu`: slope broadcasts to X (unidirectionally), so the output is X.
pub(super) fn prelu(cx: &mut Ctx<'_, '_>) {
    same_as_input(cx);
}

/// `Where(cond, x, y)`: x's type, three-way broadcast.
pub(super) fn where_(cx: &mut Ctx<'_, '_>) {
    cx.set_dtype(0, cx.dtype(1).or_else(|| cx.dtype(2)));
    let s = broadcast_inputs(cx, false);
    cx.set_shape(0, s);
    let Some(cond) = cx.constant(0) else {
        return;
    };
    if let (Some(x), Some(y)) = (cx.constant(1), cx.constant(2)) {
        let r = fold::select(cond, x, y, cx.limit);
        cx.fold(0, r);
        return;
    }
    where_dims(cx, cond);
}

/// `Where` with a known condition over per-element dims.
fn where_dims(cx: &mut Ctx<'_, '_>, cond: &ConstTensor) {
    let (Some(x), Some(y)) = (cx.input(1), cx.input(2)) else {
        return;
    };
    let Some(dtype) = x.dtype.filter(|&d| is_int(d)) else {
        return;
    };
    let crate::constant::ConstData::Bool(c) = &cond.data else {
        return;
    };
    let (Some(vx), Some(vy)) = (x.dim_values(), y.dim_values()) else {
        return;
    };
    let Some(dx) = x.shape.as_ref().and_then(|s| s.known_dims(cx.syms)) else {
        return;
    };
    let Some(dy) = y.shape.as_ref().and_then(|s| s.known_dims(cx.syms)) else {
        return;
    };
    let Some(dims) = index::broadcast_dims(&[&cond.dims, &dx, &dy]) else {
        return;
    };
    let (Some(ic), Some(ix), Some(iy)) = (
        index::broadcast(&cond.dims, &dims, cx.limit),
        index::broadcast(&dx, &dims, cx.limit),
        index::broadcast(&dy, &dims, cx.limit),
    ) else {
        return;
    };
    let values: Option<DimValues> = ic
        .iter()
        .zip(ix.iter().zip(&iy))
        .map(|(&k, (&i, &j))| Some(if *c.get(k)? { *vx.get(i)? } else { *vy.get(j)? }))
        .collect();
    if let Some(values) = values {
        cx.set_dim_values(0, dtype, Shape::known(&dims), values);
    }
}

/// `Cast` (to the `to` attribute) and `CastLike` (to input 1's type).
pub(super) fn cast(cx: &mut Ctx<'_, '_>) {
    let to = if cx.op.op_type == "CastLike" {
        cx.dtype(1)
    } else {
        cx.attrs
            .int("to")
            .ok()
            .flatten()
            .and_then(|t| i32::try_from(t).ok())
            .and_then(|t| DataType::try_from(t).ok())
            .filter(|&t| t != DataType::Undefined)
    };
    cx.set_dtype(0, to);
    cx.set_shape(0, cx.shape(0));
    let Some(to) = to else {
        return;
    };
    let Some(src) = cx.input(0) else {
        return;
    };
    if let Some(c) = &src.constant {
        let r = fold::cast(c, to);
        cx.fold(0, r);
        return;
    }
    // int64 <-> int32 keeps dims (which are far below 2^31 in any real model).
    if let (Some(sv), Some(from), Some(s)) = (&src.shape_value, src.dtype, &src.shape)
        && is_int(from)
        && is_int(to)
    {
        cx.set_dim_values(0, to, s.clone(), sv.clone());
    }
}

/// `QuantizeLinear`, `DequantizeLinear`, `DynamicQuantizeLinear`: shapes follow x.
pub(super) fn quantization(cx: &mut Ctx<'_, '_>) {
    let opset = cx.opset();
    let attr_type = |cx: &Ctx<'_, '_>| {
        cx.attrs
            .int_or("output_dtype", 0)
            .and_then(|t| i32::try_from(t).ok())
            .and_then(|t| DataType::try_from(t).ok())
    };
    cx.set_shape(0, cx.shape(0));
    match cx.op.op_type {
        "QuantizeLinear" => {
            // The zero point decides; without one, `output_dtype` (opset 21), else uint8.
            let d = if cx.input(2).is_some() {
                cx.dtype(2)
            } else {
                match attr_type(cx) {
                    Some(DataType::Undefined) => Some(DataType::Uint8),
                    other => other,
                }
            };
            cx.set_dtype(0, d);
        }
        "DequantizeLinear" => {
            let d = if opset < 19 {
                Some(DataType::Float)
            } else {
                match attr_type(cx) {
                    Some(DataType::Undefined) => cx.dtype(1),
                    other => other,
                }
            };
            cx.set_dtype(0, d);
        }
        _ => {
            cx.set_dtype(0, Some(DataType::Uint8));
            cx.set_dtype(1, Some(DataType::Float));
            cx.set_shape(1, Some(Shape::scalar()));
            cx.set_dtype(2, Some(DataType::Uint8));
            cx.set_shape(2, Some(Shape::scalar()));
        }
    }
}

/// `Dropout`: output like the input; the mask is bool (the input's type before opset 10).
pub(super) fn dropout(cx: &mut Ctx<'_, '_>) {
    same_as_input(cx);
    let mask = if cx.opset() < 10 {
        cx.dtype(0)
    } else {
        Some(DataType::Bool)
    };
    cx.set_dtype(1, mask);
    cx.set_shape(1, cx.shape(0));
}
