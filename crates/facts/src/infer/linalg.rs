//! Linear algebra: `MatMul` (and its integer and quantized forms), `Gemm`, `Einsum`, `Det`.

use std::collections::BTreeMap;

use onnx_rewrite_proto::tensor_proto::DataType;

use super::Ctx;
use crate::shape::{self, Shape, broadcast_dim};
use crate::symbols::Dim;

/// numpy `matmul` shapes: 1-D operands are promoted (and the added axis removed), batch dims
/// broadcast.
fn matmul_shape(cx: &mut Ctx<'_, '_>, a: &Shape, b: &Shape) -> Option<Shape> {
    let (ra, rb) = (a.rank(), b.rank());
    if ra == 0 || rb == 0 {
        return None;
    }
    let (a_batch, m) = if ra == 1 {
        (Shape::default(), None)
    } else {
        (Shape::new(a.0[..ra - 2].iter().copied()), Some(a.0[ra - 2]))
    };
    let (b_batch, n) = if rb == 1 {
        (Shape::default(), None)
    } else {
        (Shape::new(b.0[..rb - 2].iter().copied()), Some(b.0[rb - 1]))
    };
    let mut out = shape::broadcast(cx.syms, &[&a_batch, &b_batch])?;
    out.0.extend(m);
    out.0.extend(n);
    Some(out)
}

/// `MatMul(a, b)`; `MatMulInteger` gives int32; `QLinearMatMul(a, .., .., b, .., .., .., y_zp)`
/// gives the output zero point's type.
pub(super) fn matmul(cx: &mut Ctx<'_, '_>) {
    let (a, b, dtype) = match cx.op.op_type {
        "MatMulInteger" => (0, 1, Some(DataType::Int32)),
        "QLinearMatMul" => (0, 3, cx.dtype(7)),
        _ => (0, 1, cx.dtype(0).or_else(|| cx.dtype(1))),
    };
    cx.set_dtype(0, dtype);
    if let (Some(sa), Some(sb)) = (cx.shape(a), cx.shape(b)) {
        let out = matmul_shape(cx, &sa, &sb);
        cx.set_shape(0, out);
    }
}

/// `Gemm(A, B, C)`: `[M, N]` from A (transposed with `transA`) and B (`transB`).
pub(super) fn gemm(cx: &mut Ctx<'_, '_>) {
    cx.set_dtype(0, cx.dtype(0).or_else(|| cx.dtype(1)));
    let (Some(a), Some(b), Some(ta), Some(tb)) = (
        cx.shape(0),
        cx.shape(1),
        cx.attrs.int_or("transA", 0),
        cx.attrs.int_or("transB", 0),
    ) else {
        return;
    };
    let (Some(m), Some(n)) = (a.get(usize::from(ta != 0)), b.get(usize::from(tb == 0))) else {
        return;
    };
    if a.rank() == 2 && b.rank() == 2 {
        cx.set_shape(0, Some(Shape::new([m, n])));
    }
}

/// One operand's subscripts: labels before and after an optional ellipsis.
struct Term {
    labels: Vec<u8>,
    ellipsis_at: Option<usize>,
}

fn parse_term(t: &str) -> Option<Term> {
    let (labels, ellipsis_at) = match t.split_once("...") {
        Some((head, tail)) => {
            if tail.contains('.') {
                return None;
            }
            let mut l = head.as_bytes().to_vec();
            let at = l.len();
            l.extend_from_slice(tail.as_bytes());
            (l, Some(at))
        }
        None => (t.as_bytes().to_vec(), None),
    };
    labels.iter().all(u8::is_ascii_alphabetic).then_some(Term {
        labels,
        ellipsis_at,
    })
}

/// `Einsum(inputs...)` by its `equation`, explicit (`->`) or implicit (sorted labels that
/// appear once).
pub(super) fn einsum(cx: &mut Ctx<'_, '_>) {
    cx.set_dtype(0, cx.dtype(0));
    let out = einsum_shape(cx);
    cx.set_shape(0, out);
}

fn einsum_shape(cx: &mut Ctx<'_, '_>) -> Option<Shape> {
    let eq: String = std::str::from_utf8(cx.attrs.string("equation").ok()??)
        .ok()?
        .chars()
        .filter(|c| !c.is_whitespace())
        .collect();
    let (lhs, rhs) = match eq.split_once("->") {
        Some((l, r)) => (l, Some(r)),
        None => (eq.as_str(), None),
    };
    let terms: Vec<Term> = lhs.split(',').map(parse_term).collect::<Option<_>>()?;
    if terms.len() != cx.inputs.len() {
        return None;
    }
    let mut label_dims: BTreeMap<u8, Dim> = BTreeMap::new();
    let mut counts: BTreeMap<u8, usize> = BTreeMap::new();
    let mut ellipsis = Shape::default();
    for (i, term) in terms.iter().enumerate() {
        let s = cx.shape(i)?;
        let n_ell = s.rank().checked_sub(term.labels.len())?;
        if term.ellipsis_at.is_none() && n_ell != 0 {
            return None;
        }
        let at = term.ellipsis_at.unwrap_or(term.labels.len());
        let ell = Shape::new(s.0[at..at + n_ell].iter().copied());
        ellipsis = shape::broadcast(cx.syms, &[&ellipsis, &ell])?;
        for (k, &l) in term.labels.iter().enumerate() {
            let d = s.0[if k < at { k } else { k + n_ell }];
            let merged = match label_dims.get(&l) {
                Some(&prev) => broadcast_dim(cx.syms, prev, d)?,
                None => d,
            };
            label_dims.insert(l, merged);
            *counts.entry(l).or_default() += 1;
        }
    }
    let mut out = Shape::default();
    match rhs {
        Some(rhs) => {
            let term = parse_term(rhs)?;
            for (k, l) in term.labels.iter().enumerate() {
                if term.ellipsis_at == Some(k) {
                    out.0.extend(ellipsis.0.iter().copied());
                }
                out.0.push(*label_dims.get(l)?);
            }
            if term.ellipsis_at == Some(term.labels.len()) {
                out.0.extend(ellipsis.0.iter().copied());
            }
        }
        None => {
            out.0.extend(ellipsis.0.iter().copied());
            for (l, &c) in &counts {
                if c == 1 {
                    out.0.push(*label_dims.get(l)?);
                }
            }
        }
    }
    Some(out)
}

/// `Det(x)`: x's batch dims.
pub(super) fn det(cx: &mut Ctx<'_, '_>) {
    cx.set_dtype(0, cx.dtype(0));
    let out = cx.shape(0).and_then(|s| {
        let r = s.rank().checked_sub(2)?;
        Some(Shape::new(s.0[..r].iter().copied()))
    });
    cx.set_shape(0, out);
}
