//! Pair layouts: one row per (token, slot) pair, each row run through the expert its top-k id
//! names and weighted, then summed over the k slots: `ReduceSum(Reshape(Z, [-1, k, H]), 1)`.
//!
//! transformers' `batched_mm` gathers the expert weights per row (`GatherND(W[E, ...], ids)`);
//! its `grouped_mm` translation sorts the rows by expert and runs one segment per expert,
//! then puts the rows back in pair order. Either way, reading the rows' computation as expert
//! e (every dispatch site reads its expert-e branch) gives expert e's program.

use onnx_rewrite_ir::{NodeId, ValueId};
use rustc_hash::FxHashMap as HashMap;

use super::routing::{Router, weights_source};
use super::{Form, Layer, Rejected, Routing};
use crate::expert::{Dispatch, ExpertError, Interpreter, Program};
use crate::graph::{Scope, input, int_attr, ints_attr, output};

/// Why a pair layout is not read as a MoE layer.
#[derive(Debug, Clone, PartialEq, Eq, thiserror::Error)]
pub(crate) enum PairError {
    #[error("expert {expert}: {reason}")]
    Expert { expert: i64, reason: ExpertError },
    #[error("no reshape")]
    NoReshape,
    #[error("the pair sum runs over {slots:?} slots, the router picks {k}")]
    Slots { slots: Option<i64>, k: i64 },
    #[error("no routing weights")]
    NoRoutingWeights,
    #[error("the layer's output type is unknown")]
    OutputType,
    #[error("the routing weights' type is unknown")]
    WeightsType,
}

/// Every pair-layout layer of the graph.
pub(crate) fn detect(
    scope: &mut Scope<'_>,
    order: &HashMap<NodeId, usize>,
) -> (Vec<Layer>, Vec<Rejected>) {
    let mut layers = Vec::new();
    let mut rejected = Vec::new();
    let nodes: Vec<NodeId> = scope.model.graph(scope.graph).nodes().to_vec();
    for node in nodes {
        let Some((sum, pairs)) = slot_sum(scope, node) else {
            continue;
        };
        let Some((body, factor)) = weighted(scope, pairs) else {
            continue;
        };
        let Some(router) = Router::nearest_above(scope, factor, order) else {
            continue;
        };
        if weights_source(scope, factor, &router).is_none() {
            continue;
        }
        match read(scope, sum, body, factor, router) {
            Ok(Some(layer)) => layers.push(layer),
            Ok(None) => {}
            Err(reason) => rejected.push(Rejected {
                node: router.topk,
                reason: reason.into(),
            }),
        }
    }
    (layers, rejected)
}

/// `ReduceSum(Reshape(Z, [n, k, H]), axes=[1], keepdims=0)`: the output and `Z`.
fn slot_sum(scope: &mut Scope<'_>, node: NodeId) -> Option<(ValueId, ValueId)> {
    let n = scope.model.node(node);
    if n.op_type() != "ReduceSum" || !n.domain().is_empty() || int_attr(n, "keepdims", 1)? != 0 {
        return None;
    }
    let axes = input(n, 1)
        .and_then(|a| scope.facts.ints(a))
        .or_else(|| ints_attr(n, "axes"))?;
    let reshaped = input(n, 0)?;
    if !(axes == [1] || axes == [-2]) || scope.facts.rank(reshaped) != Some(3) {
        return None;
    }
    let reshape = scope.op(reshaped, "Reshape")?;
    Some((output(n, 0)?, input(reshape, 0)?))
}

/// Through the row permutations that put pairs back in order (`GatherND(Z, inverse[..., None])`)
/// to `Mul(body, factor)`: the expert rows and the weight factor (either operand order; the
/// factor is found by the caller as the one that moves routing weights).
fn weighted(scope: &mut Scope<'_>, mut z: ValueId) -> Option<(ValueId, ValueId)> {
    for _ in 0..8 {
        if let Some(mul) = scope.op(z, "Mul") {
            let (a, b) = (input(mul, 0)?, input(mul, 1)?);
            // The factor is the operand that is not rank-2 expert rows computed per row, i.e.
            // the one that is data movement of routing weights; decide by rank first.
            let (ra, rb) = (scope.facts.rank(a), scope.facts.rank(b));
            return match (ra, rb) {
                (Some(2), Some(2)) => {
                    let a_is_factor = scope.facts.known_dim(a, -1) == Some(1);
                    Some(if a_is_factor { (b, a) } else { (a, b) })
                }
                _ => None,
            };
        }
        let n = scope.producer(z)?;
        let permutes = n.domain().is_empty()
            && match n.op_type() {
                "GatherND" => {
                    int_attr(n, "batch_dims", 0) == Some(0)
                        && input(n, 1).is_some_and(|i| scope.facts.known_dim(i, -1) == Some(1))
                }
                "Gather" => int_attr(n, "axis", 0) == Some(0),
                "Identity" => true,
                _ => false,
            };
        if !permutes {
            return None;
        }
        z = input(n, 0)?;
    }
    None
}

fn read(
    scope: &mut Scope<'_>,
    sum: ValueId,
    body: ValueId,
    factor: ValueId,
    router: Router,
) -> Result<Option<Layer>, PairError> {
    let Some(tokens) = router.tokens(scope) else {
        return Ok(None);
    };
    let tokens = crate::expert::row_source(scope, tokens);
    let mut programs: Vec<Option<Program>> = Vec::with_capacity(router.experts as usize);
    let mut form = Form::Batched;
    for e in 0..router.experts {
        let dispatch = Dispatch {
            expert: e,
            experts: router.experts,
            router_indices: router.indices,
        };
        let reading = match Interpreter::new(scope, tokens, Some(dispatch)).program(body) {
            Ok(r) => r,
            // Not a per-expert computation at all: not a MoE layer, nothing to say.
            Err(_) if e == 0 => return Ok(None),
            Err(reason) => return Err(PairError::Expert { expert: e, reason }),
        };
        if reading.gathers + reading.segments == 0 {
            // Rows that no routing decision reaches: a plain weighted sum, not experts.
            return Ok(None);
        }
        if e == 0 {
            form = if reading.segments > 0 {
                Form::Grouped
            } else {
                Form::Batched
            };
        }
        programs.push(Some(reading.program));
    }
    let reshaped = scope
        .producer(sum)
        .and_then(|n| input(n, 0))
        .ok_or(PairError::NoReshape)?;
    let slots = scope.facts.known_dim(reshaped, 1);
    if slots != Some(router.k) {
        return Err(PairError::Slots { slots, k: router.k });
    }
    let weights = weights_source(scope, factor, &router).ok_or(PairError::NoRoutingWeights)?;
    let dtype = scope.facts.dtype(sum).ok_or(PairError::OutputType)?;
    let weights_dtype = scope.facts.dtype(weights).ok_or(PairError::WeightsType)?;
    Ok(Some(Layer {
        anchor: router.topk,
        form,
        experts: router.experts,
        top_k: router.k,
        tokens,
        hidden: scope.facts.known_dim(tokens, -1),
        flatten_tokens: false,
        output: sum,
        start: None,
        routing: Routing::Graph {
            indices: router.indices,
            weights,
        },
        dtype,
        weights_dtype,
        programs,
        notes: Vec::new(),
        shared: None,
    }))
}
