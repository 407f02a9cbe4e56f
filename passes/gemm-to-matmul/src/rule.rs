//! `Gemm(A, B, C) → Add(Mul(MatMul(A', B'), alpha), Mul(C, beta))`, with every factor folded
//! into a constant operand where there is one.
//!
//! Gemm computes `alpha · A' · B' + beta · C`, where `A'` is `Aᵀ` under `transA` (`B'` alike)
//! and `C` broadcasts to `[M, N]` one way. Each piece becomes the cheapest faithful form:
//! - `transB` on a constant B: a new, transposed initializer (the original stays for any other
//!   reader); on a runtime B: a `Transpose`. The same for `transA`.
//! - `alpha ≠ 1`: folded into constant B (the usual weight), else a `Mul` after the MatMul.
//! - `beta ≠ 1`: folded into constant C, else a `Mul` on C; `beta = 0` drops C, as Gemm does.
//! - C present: an `Add`, whose numpy broadcasting covers every shape Gemm allows (scalar,
//!   `[N]`, `[1,N]`, `[M,1]`, `[M,N]`), since the MatMul result is `[M, N]`.

use onnx_rewrite_egraph::Id;
use onnx_rewrite_egraph::language::OpData;
use onnx_rewrite_egraph::pattern::Match;
use onnx_rewrite_egraph::rule::{Decline, Outcome, Rule, RuleCx};
use onnx_rewrite_ir::edit::attr;
use onnx_rewrite_proto::tensor_proto::DataType;

use crate::weights;

pub struct GemmToMatMul;

impl Rule for GemmToMatMul {
    fn name(&self) -> &'static str {
        "gemm-to-matmul"
    }

    fn pattern(&self) -> &'static str {
        "Gemm(a, b) @gemm"
    }

    /// The Gemm must go: quantizers only take MatMul.
    fn mandatory(&self) -> bool {
        true
    }

    fn apply(&self, cx: &mut RuleCx<'_>, m: &Match) -> Result<Outcome, Decline> {
        // Before opset 7, Add and Mul broadcast only through legacy attributes.
        if cx.opset("") < 7 {
            return Err(Decline::new(format!(
                "opset {} is below 7, where Add/Mul broadcast only with legacy attributes",
                cx.opset("")
            )));
        }
        let node = cx.node(m, "gemm")?.clone();
        let node = &node;
        let (a, b) = (cx.class(m, "a")?, cx.class(m, "b")?);
        let c = cx.input(node, 2);
        let dtype = [m.root, a, b]
            .iter()
            .find_map(|id| cx.facts(*id).and_then(|f| f.dtype))
            .ok_or_else(|| Decline::new("the element type is unknown"))?;
        let trans_a = cx.int_attribute(node, "transA", 0) != 0;
        let trans_b = cx.int_attribute(node, "transB", 0) != 0;
        let alpha = cx.float_attribute(node, "alpha", 1.0);
        let beta = cx.float_attribute(node, "beta", 1.0);
        let is_float = matches!(
            dtype,
            DataType::Float | DataType::Double | DataType::Float16 | DataType::Bfloat16
        );
        if !is_float && (alpha != 1.0 || (c.is_some() && beta != 1.0 && beta != 0.0)) {
            return Err(Decline::new(format!(
                "alpha={alpha}, beta={beta} on a Gemm of {dtype:?}: MatMul has no integer scaling"
            )));
        }

        let a = operand(cx, a, trans_a);
        let (b, alpha_folded) = if alpha == 1.0 {
            (operand(cx, b, trans_b), true)
        } else {
            match folded_constant(cx, b, trans_b, alpha) {
                Some(folded) => (folded, true),
                None => (operand(cx, b, trans_b), false),
            }
        };
        let mut y = cx.add_op(OpData::new("MatMul", Vec::new(), 2), &[a, b]);
        if !alpha_folded {
            let alpha = scalar(cx, dtype, alpha, "alpha")?;
            y = cx.add_op(OpData::new("Mul", Vec::new(), 2), &[y, alpha]);
        }
        if let Some(c) = c.filter(|_| beta != 0.0) {
            let c = if beta == 1.0 {
                c
            } else if let Some(folded) = folded_constant(cx, c, false, beta) {
                folded
            } else {
                let beta = scalar(cx, dtype, beta, "beta")?;
                cx.add_op(OpData::new("Mul", Vec::new(), 2), &[c, beta])
            };
            y = cx.add_op(OpData::new("Add", Vec::new(), 2), &[y, c]);
        }
        Ok(Outcome::Rewrite(y))
    }
}

/// `x` or `xᵀ`: a transposed copy of a constant, else a `Transpose` node.
fn operand(cx: &mut RuleCx<'_>, x: Id, transpose: bool) -> Id {
    if !transpose {
        return x;
    }
    folded_constant(cx, x, true, 1.0).unwrap_or_else(|| {
        cx.add_op(
            OpData::new("Transpose", vec![attr::ints("perm", &[1, 0])], 1),
            &[x],
        )
    })
}

/// A new constant `factor · x` (transposed on request), when `x` is a constant whose bytes the
/// pass can fold; the original tensor is left as it is.
fn folded_constant(cx: &mut RuleCx<'_>, x: Id, transpose: bool, factor: f32) -> Option<Id> {
    let (tensor, leaf) = cx.constant_tensor(x)?;
    let base = leaf
        .and_then(|v| cx.leaf_name(v))
        .unwrap_or("gemm_constant")
        .to_owned();
    let mut folded = tensor.clone();
    let mut suffix = String::new();
    if transpose {
        folded = weights::transpose(&folded)?;
        suffix.push_str("_transposed");
    }
    if factor != 1.0 {
        folded = weights::scale(&folded, factor)?;
        suffix.push_str("_scaled");
    }
    Some(cx.add_const(folded, &format!("{base}{suffix}")))
}

fn scalar(cx: &mut RuleCx<'_>, dtype: DataType, value: f32, name: &str) -> Result<Id, Decline> {
    let tensor = weights::scalar(dtype, value)
        .ok_or_else(|| Decline::new(format!("no {name} scalar of type {dtype:?}")))?;
    Ok(cx.add_const(tensor, &format!("gemm_{name}")))
}
