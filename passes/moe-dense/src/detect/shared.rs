//! Shared experts (Qwen-MoE): an MLP that every token goes through, outside the routing, whose
//! output (optionally times `Sigmoid` of a width-1 gate) is added to the layer's combine. It
//! does not depend on the routing, so the rewrite leaves it as it is; it is found so that
//! `info` and the report describe the layer whole.

use onnx_rewrite_ir::{Use, ValueId};

use super::Layer;
use crate::expert::{Interpreter, Step};
use crate::graph::{Scope, input};

/// What `info` says of a shared expert.
#[derive(Clone, Debug, PartialEq, Eq)]
pub(crate) struct SharedExpert {
    /// The widest output of a linear layer that reads the tokens (gate/up projection).
    pub intermediate: Option<i64>,
    /// Scaled by `Sigmoid` of a width-1 linear gate of the tokens.
    pub gated: bool,
}

/// The shared expert added to `layer`'s output, if there is one: an `Add` reading the layer's
/// output (directly or after a `Reshape`) whose other operand is a per-token function of the
/// layer's own token rows, all of them.
pub(crate) fn find(scope: &mut Scope<'_>, layer: &Layer) -> Option<SharedExpert> {
    let model = scope.model;
    let mut outputs = vec![layer.output];
    for &u in model.value(layer.output).uses() {
        if let Use::Node { node, input: 0 } = u {
            let n = model.node(node);
            if n.domain().is_empty() && n.op_type() == "Reshape" {
                outputs.extend(n.outputs().iter().flatten().copied());
            }
        }
    }
    for out in outputs {
        for &u in model.value(out).uses() {
            let Use::Node { node, input: slot } = u else {
                continue;
            };
            let n = model.node(node);
            if !(n.domain().is_empty() && n.op_type() == "Add") || slot > 1 {
                continue;
            }
            let Some(other) = input(n, 1 - slot as usize) else {
                continue;
            };
            if let Some(shared) = read(scope, layer.tokens, other) {
                return Some(shared);
            }
        }
    }
    None
}

fn read(scope: &mut Scope<'_>, tokens: ValueId, value: ValueId) -> Option<SharedExpert> {
    let reading = Interpreter::new(scope, tokens, None).program(value).ok()?;
    // Rows picked by a routing decision are an expert's, not a shared one's.
    if reading.gathers + reading.segments > 0 || reading.rows.iter().any(|r| *r != tokens) {
        return None;
    }
    let program = reading.program;
    let input = program
        .steps
        .iter()
        .position(|s| matches!(s, Step::Input))?;
    let widths: Vec<(usize, i64)> = program
        .steps
        .iter()
        .enumerate()
        .filter_map(|(i, s)| match s {
            Step::Linear { x, w } if *x == input => Some((i, *w.dims(scope.model)?.last()?)),
            _ => None,
        })
        .collect();
    if widths.is_empty() {
        return None;
    }
    let gated = program.steps.iter().any(|s| match s {
        Step::Elementwise { op, args, .. } if op == "Sigmoid" => args
            .iter()
            .any(|a| matches!(a, crate::expert::Arg::Step(i) if widths.contains(&(*i, 1)))),
        _ => false,
    });
    Some(SharedExpert {
        intermediate: widths.iter().map(|(_, w)| *w).filter(|w| *w > 1).max(),
        gated,
    })
}
