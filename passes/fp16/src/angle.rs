//! Trig arguments that are provably small: `cos(2π·n/N)` of a window function, as opposed to
//! the rotary `cos(position · inv_freq)`, whose angle grows with the sequence.
//!
//! A float16 angle is off by about its magnitude × 2⁻¹¹ per rounding. The rotary rule keeps
//! every trig of positions float32 because positions are unbounded. When the analysis below
//! proves the angle at most [`MAX_FLOAT16_ANGLE`] for every runtime size, the trig and the
//! arithmetic that feeds it convert like data instead.
//!
//! The proof is a small symbolic evaluation over one integer size `S` (a runtime scalar):
//! values are constants, `a·S + b`, `c / (a·S + b)`, the elements `k·n` of `Range(0, S, 1)`
//! (so `0 ≤ n ≤ S − 1`), or a magnitude bound. The only product it bounds is the one that makes
//! an angle: `k·n · c / (a·S + b)` ≤ `|k·c| · sup_{S ≥ 2} (S − 1) / |a·S + b|`, a Möbius
//! function of `S` and so monotone where its denominator has no root: the supremum is at
//! `S = 2` or in the limit. (`S ≤ 1` leaves `n = 0`, whose product is the same 0, or NaN, in
//! either precision.) Anything else is unknown, and the trig stays float32.

use rustc_hash::{FxHashMap as HashMap, FxHashSet as HashSet};

use onnx_rewrite_facts::ConstTensor;
use onnx_rewrite_ir::{Model, NodeId, ValueDef, ValueId};

use crate::constants;
use crate::convert::Target;
use crate::plan::{numerics, onnx_opset};
use crate::scope::Scope;
use crate::types::Types;
use onnx_rewrite_ops::Numerics;

/// Two turns: the window functions' `cos(4π·n/N)`. After the three roundings of
/// `n · (2π/N) · 2` the float16 angle is within about 3 · 4π · 2⁻¹¹ ≈ 0.02 rad. bfloat16's
/// 8-bit significand would be 8 times that: under bfloat16 no trig of positions converts.
/// (The slack admits 2π written as a float32 constant, 6.2831855.)
const MAX_FLOAT16_ANGLE: f64 = 4.0 * std::f64::consts::PI * (1.0 + 1e-6);

/// Symbolic nesting beyond this is unknown (a recursive evaluation must have a bound).
const MAX_DEPTH: usize = 64;

#[derive(Clone, Copy, Debug, PartialEq)]
enum Term {
    Const(f64),
    /// `a·S + b`, every element, for the runtime integer scalar `S` held by `size`.
    Affine {
        size: ValueId,
        a: f64,
        b: f64,
    },
    /// `c / (a·S + b)`.
    Reciprocal {
        size: ValueId,
        c: f64,
        a: f64,
        b: f64,
    },
    /// `k·n` for the elements `n` of `Range(0, S, 1)`.
    Steps {
        size: ValueId,
        k: f64,
    },
    /// At most this magnitude.
    Bounded(f64),
    Unknown,
}

/// The largest magnitude a trig operand can take, where it can be proved.
pub(crate) struct Angles<'a> {
    model: &'a Model,
    types: &'a Types,
    memo: HashMap<ValueId, Term>,
}

impl<'a> Angles<'a> {
    pub fn new(model: &'a Model, types: &'a Types) -> Self {
        Angles {
            model,
            types,
            memo: HashMap::default(),
        }
    }

    /// A bound on `|value|` for every runtime size, if one can be proved.
    pub fn bound(&mut self, value: ValueId) -> Option<f64> {
        match self.term(value, 0) {
            Term::Const(c) => Some(c.abs()),
            Term::Bounded(b) => Some(b),
            _ => None,
        }
        .filter(|b| b.is_finite())
    }

    fn term(&mut self, value: ValueId, depth: usize) -> Term {
        if let Some(t) = self.memo.get(&value) {
            return *t;
        }
        let t = if depth > MAX_DEPTH {
            Term::Unknown
        } else {
            self.evaluate(value, depth)
        };
        self.memo.insert(value, t);
        t
    }

    fn evaluate(&mut self, value: ValueId, depth: usize) -> Term {
        let model = self.model;
        if let Some(c) = scalar(model, value) {
            return Term::Const(c);
        }
        let is_integer = self.types.of(value).is_integer();
        // An integer the evaluation cannot see through is the size itself.
        let size = Term::Affine {
            size: value,
            a: 1.0,
            b: 0.0,
        };
        let opaque = if is_integer { size } else { Term::Unknown };
        let ValueDef::Node { node, .. } = model.value(value).def() else {
            return opaque;
        };
        let n = model.node(node);
        if !n.domain().is_empty() {
            return opaque;
        }
        let inputs: Vec<Option<ValueId>> = n.inputs().to_vec();
        let mut arg = |i: usize| match inputs.get(i).copied().flatten() {
            Some(v) => self.term(v, depth + 1),
            None => Term::Unknown,
        };
        match n.op_type() {
            // Integer to float is exact for the sizes this proves anything about; float to
            // integer truncates.
            "Cast" | "CastLike" if is_integer => opaque,
            "Cast" | "CastLike" | "Identity" | "Reshape" | "Squeeze" | "Unsqueeze" | "Flatten"
            | "Expand" => arg(0),
            "Neg" => mul(arg(0), Term::Const(-1.0)),
            "Add" => add(arg(0), arg(1)),
            "Sub" => {
                let (x, y) = (arg(0), arg(1));
                add(x, mul(y, Term::Const(-1.0)))
            }
            "Mul" => mul(arg(0), arg(1)),
            "Div" => {
                let (x, y) = (arg(0), arg(1));
                div(x, y)
            }
            "Range" => match (arg(0), arg(1), arg(2)) {
                (Term::Const(start), Term::Affine { size, a, b }, Term::Const(delta))
                    if start == 0.0 && delta == 1.0 && a == 1.0 && b == 0.0 =>
                {
                    Term::Steps { size, k: 1.0 }
                }
                _ => opaque,
            },
            _ => opaque,
        }
    }
}

fn add(x: Term, y: Term) -> Term {
    use Term::*;
    match (x, y) {
        (Const(p), Const(q)) => Const(p + q),
        (Affine { size, a, b }, Const(c)) | (Const(c), Affine { size, a, b }) => {
            Affine { size, a, b: b + c }
        }
        (
            Affine { size, a, b },
            Affine {
                size: other,
                a: a2,
                b: b2,
            },
        ) if size == other => Affine {
            size,
            a: a + a2,
            b: b + b2,
        },
        (Bounded(p), Bounded(q)) => Bounded(p + q),
        (Bounded(p), Const(c)) | (Const(c), Bounded(p)) => Bounded(p + c.abs()),
        _ => Unknown,
    }
}

fn mul(x: Term, y: Term) -> Term {
    use Term::*;
    match (x, y) {
        (Const(p), Const(q)) => Const(p * q),
        (Affine { size, a, b }, Const(c)) | (Const(c), Affine { size, a, b }) => Affine {
            size,
            a: a * c,
            b: b * c,
        },
        (Reciprocal { size, c, a, b }, Const(k)) | (Const(k), Reciprocal { size, c, a, b }) => {
            Reciprocal {
                size,
                c: c * k,
                a,
                b,
            }
        }
        (Steps { size, k }, Const(c)) | (Const(c), Steps { size, k }) => Steps { size, k: k * c },
        (Bounded(p), Const(c)) | (Const(c), Bounded(p)) => Bounded(p * c.abs()),
        (Steps { size, k }, Reciprocal { size: s2, c, a, b })
        | (Reciprocal { size: s2, c, a, b }, Steps { size, k })
            if size == s2 =>
        {
            steps_over(k * c, a, b).map_or(Unknown, Bounded)
        }
        _ => Unknown,
    }
}

fn div(x: Term, y: Term) -> Term {
    use Term::*;
    match (x, y) {
        (_, Const(c)) if c != 0.0 => mul(x, Const(1.0 / c)),
        (Const(c), Affine { size, a, b }) => Reciprocal { size, c, a, b },
        (Steps { size, k }, Affine { size: s2, a, b }) if size == s2 => {
            steps_over(k, a, b).map_or(Unknown, Bounded)
        }
        _ => Unknown,
    }
}

/// `sup |k · n / (a·S + b)|` over `S ≥ 2` and `0 ≤ n ≤ S − 1`, when the denominator has no root
/// there.
fn steps_over(k: f64, a: f64, b: f64) -> Option<f64> {
    if a == 0.0 || -b / a >= 2.0 || !(k.is_finite() && a.is_finite() && b.is_finite()) {
        return None;
    }
    let at_two = 1.0 / (2.0 * a + b).abs();
    let limit = 1.0 / a.abs();
    Some(k.abs() * at_two.max(limit))
}

/// The value of a one-element numeric constant (an initializer or a `Constant`).
fn scalar(model: &Model, value: ValueId) -> Option<f64> {
    if let Some(t) = constants::tensor_of(model, value) {
        return ConstTensor::from_proto(t, 1)?.scalar_as_f64();
    }
    let ValueDef::Node { node, .. } = model.value(value).def() else {
        return None;
    };
    let n = model.node(node);
    if !(n.domain().is_empty() && n.op_type() == "Constant") {
        return None;
    }
    let attr = &n.attributes.first()?.proto;
    match attr.name() {
        "value_float" => attr.f.map(f64::from),
        "value_floats" if attr.floats.len() == 1 => attr.floats.first().map(|f| f64::from(*f)),
        "value_int" => attr.i.map(|i| i as f64),
        _ => None,
    }
}

/// Trig nodes whose operand provably stays within [`MAX_FLOAT16_ANGLE`]: in float16 they lose
/// no more than other data. None under bfloat16.
pub(crate) fn small_angles(
    model: &Model,
    scope: &Scope,
    types: &Types,
    target: Target,
) -> HashSet<NodeId> {
    if target != Target::Float16 {
        return HashSet::default();
    }
    let opset = onnx_opset(model);
    let mut angles = Angles::new(model, types);
    scope
        .order
        .iter()
        .copied()
        .filter(|&node| {
            let n = model.node(node);
            numerics(n, opset) == Numerics::Periodic
                && n.inputs()
                    .first()
                    .copied()
                    .flatten()
                    .and_then(|v| angles.bound(v))
                    .is_some_and(|b| b <= MAX_FLOAT16_ANGLE)
        })
        .collect()
}

#[cfg(test)]
mod tests {
    use super::steps_over;
    use proptest::prelude::*;

    proptest! {
        /// The closed-form supremum is never below the product at any size: checked at every
        /// S up to 4096 and at a few large ones.
        #[test]
        fn the_bound_holds_at_every_size(
            k in -8.0f64..8.0,
            a in prop_oneof![-4.0f64..-0.01, 0.01f64..4.0],
            b in -8.0f64..8.0,
        ) {
            match steps_over(k, a, b) {
                Some(bound) => {
                    let sizes = (2..=4096_u64).chain([1 << 16, 1 << 24, 1 << 40]);
                    for s in sizes {
                        let s = s as f64;
                        let worst = (k * (s - 1.0) / (a * s + b)).abs();
                        prop_assert!(worst <= bound * (1.0 + 1e-12), "S={s}: {worst} > {bound}");
                    }
                }
                // Refused only where the denominator vanishes at some S ≥ 2.
                None => prop_assert!(-b / a >= 2.0),
            }
        }
    }

    #[test]
    fn window_angles_are_bounded_by_one_turn_per_factor() {
        // Periodic: n · 2π/S; symmetric: n · 2π/(S − 1). Both at most 2π.
        let tau = std::f64::consts::TAU;
        assert_eq!(steps_over(tau, 1.0, 0.0), Some(tau));
        assert_eq!(steps_over(tau, 1.0, -1.0), Some(tau));
        // n / (S − 3) has a pole at S = 3: no bound.
        assert_eq!(steps_over(1.0, 1.0, -3.0), None);
        // n / 2 grows with S: no bound.
        assert_eq!(steps_over(1.0, 0.0, 2.0), None);
    }
}
