//! Ops with subgraphs: `If`, `Loop`, `Scan`. Their bodies are not analysed here (an e-graph
//! keeps them opaque); what their outputs declare is used, and only what holds on every path:
//! an `If` output has a dtype or a dim only where both branches declare the same one.

use onnx_rewrite_proto::{GraphProto, ValueInfoProto};

use super::Ctx;
use crate::shape::Shape;
use crate::symbols::{Dim, Symbols};
use crate::value::ValueFacts;

/// The facts a subgraph output declares. Its `dim_param`s name dims of the subgraph's own
/// scope, so they become fresh symbols rather than the model's symbols of the same name.
fn declared(v: Option<&ValueInfoProto>, syms: &mut Symbols) -> ValueFacts {
    let Some(ty) = v.and_then(|v| v.r#type.as_ref()) else {
        return ValueFacts::default();
    };
    let mut scratch = Symbols::new();
    let mut f = ValueFacts::from_type(ty, &mut scratch);
    if let Some(s) = &mut f.shape {
        for d in &mut s.0 {
            if let Dim::Sym(_) = d {
                *d = syms.fresh_dim();
            }
        }
    }
    f
}

/// What two alternatives have in common: equal dtypes, equal ranks, equal known dims (other
/// dims fresh).
fn common(a: &ValueFacts, b: &ValueFacts, syms: &mut Symbols) -> ValueFacts {
    let dtype = a.dtype.filter(|&d| Some(d) == b.dtype);
    let shape = match (&a.shape, &b.shape) {
        (Some(x), Some(y)) if x.rank() == y.rank() => Some(Shape::new(
            x.0.iter()
                .zip(&y.0)
                .map(|(&p, &q)| {
                    if syms.same(p, q) {
                        syms.resolve(p)
                    } else {
                        syms.fresh_dim()
                    }
                })
                .collect::<Vec<_>>(),
        )),
        _ => None,
    };
    ValueFacts {
        dtype,
        shape,
        ..Default::default()
    }
}

fn body<'a>(cx: &Ctx<'a, '_>, name: &str) -> Option<&'a GraphProto> {
    cx.attrs.graph(name).ok().flatten()
}

/// `If(cond)`: each output as both branches declare it.
pub(super) fn if_(cx: &mut Ctx<'_, '_>) {
    let (Some(then_b), Some(else_b)) = (body(cx, "then_branch"), body(cx, "else_branch")) else {
        return;
    };
    for i in 0..cx.op.outputs {
        let t = declared(then_b.output.get(i), cx.syms);
        let e = declared(else_b.output.get(i), cx.syms);
        let f = common(&t, &e, cx.syms);
        if let Some(o) = cx.output(i) {
            *o = f;
        }
    }
}

/// `Loop(M, cond, v_initial...)`: the final loop-carried values (the initial ones after zero
/// iterations, the body's after more), then the scan outputs, one more leading dim than the
/// body's per-iteration values.
pub(super) fn loop_(cx: &mut Ctx<'_, '_>) {
    let Some(b) = body(cx, "body") else {
        return;
    };
    let carried = cx.inputs.len().saturating_sub(2);
    for i in 0..cx.op.outputs {
        // Body outputs: the condition, then the carried values, then the scan values.
        let per_iteration = declared(b.output.get(i + 1), cx.syms);
        let f = if i < carried {
            let initial = cx.input(i + 2).cloned().unwrap_or_default();
            let initial = ValueFacts {
                dtype: initial.dtype,
                shape: initial.shape,
                ..Default::default()
            };
            carried_value(&initial, &per_iteration, cx.syms)
        } else {
            stacked(per_iteration, cx.syms)
        };
        if let Some(o) = cx.output(i) {
            *o = f;
        }
    }
}

/// A loop-carried value after the loop: the initial value or the body's last. Its type never
/// changes (one type variable binds both), its shape may: only the common part is kept.
fn carried_value(initial: &ValueFacts, body: &ValueFacts, syms: &mut Symbols) -> ValueFacts {
    let mut f = common(initial, body, syms);
    f.dtype = initial.dtype.or(body.dtype);
    f
}

/// Per-iteration facts stacked along a new leading axis of unknown length.
fn stacked(mut f: ValueFacts, syms: &mut Symbols) -> ValueFacts {
    if let Some(s) = &mut f.shape {
        s.0.insert(0, syms.fresh_dim());
    }
    f.constant = None;
    f.shape_value = None;
    f
}

/// `Scan(states..., scan inputs...)`: the final states have the initial states' types and
/// what their shapes have in common with the body's; the scan outputs have the body's dtypes (their scan axis may be
/// anywhere, so no shape).
pub(super) fn scan(cx: &mut Ctx<'_, '_>) {
    let Some(b) = body(cx, "body") else {
        return;
    };
    let Some(Ok(num_scan)) = cx.attrs.int_or("num_scan_inputs", -1).map(usize::try_from) else {
        return;
    };
    // Opset 8 has a leading optional sequence-lengths input.
    let first_state = usize::from(cx.opset() < 9);
    let states = cx.inputs.len().saturating_sub(first_state + num_scan);
    for i in 0..cx.op.outputs {
        let per_iteration = declared(b.output.get(i), cx.syms);
        let f = if i < states {
            let initial = cx.input(first_state + i).cloned().unwrap_or_default();
            let initial = ValueFacts {
                dtype: initial.dtype,
                shape: initial.shape,
                ..Default::default()
            };
            carried_value(&initial, &per_iteration, cx.syms)
        } else {
            ValueFacts {
                dtype: per_iteration.dtype,
                ..Default::default()
            }
        };
        if let Some(o) = cx.output(i) {
            *o = f;
        }
    }
}
