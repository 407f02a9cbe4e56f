//! The router: the `TopK` that picks each token's experts, and the weights it gives them.

use onnx_rewrite_facts::DataType;
use onnx_rewrite_ir::{NodeId, ValueId};
use rustc_hash::FxHashMap as HashMap;

use crate::graph::{Scope, input, int_attr, output};

/// A router `TopK`: largest-k over the last axis of float scores `[tokens, experts]`.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub(crate) struct Router {
    pub topk: NodeId,
    pub values: ValueId,
    pub indices: ValueId,
    pub k: i64,
    pub experts: i64,
}

const FLOATS: &[DataType] = &[
    DataType::Float,
    DataType::Float16,
    DataType::Bfloat16,
    DataType::Double,
];

impl Router {
    /// `node` read as a router, if it is one.
    pub(crate) fn of(scope: &mut Scope<'_>, node: NodeId) -> Option<Router> {
        let n = scope.model.node(node);
        if n.op_type() != "TopK" || !n.domain().is_empty() || int_attr(n, "largest", 1)? != 1 {
            return None;
        }
        let scores = input(n, 0)?;
        if !FLOATS.contains(&scope.facts.dtype(scores)?) {
            return None;
        }
        let rank = i64::try_from(scope.facts.rank(scores)?).ok()?;
        let axis = int_attr(n, "axis", -1)?;
        if axis != -1 && axis != rank - 1 {
            return None;
        }
        let k = scope.facts.int(input(n, 1)?)?;
        let experts = scope.facts.known_dim(scores, -1)?;
        (experts <= super::MAX_EXPERTS && (1..=experts).contains(&k)).then_some(())?;
        Some(Router {
            topk: node,
            values: output(n, 0)?,
            indices: output(n, 1)?,
            k,
            experts,
        })
    }

    /// The router whose indices output is `value`.
    pub(crate) fn with_indices(scope: &mut Scope<'_>, value: ValueId) -> Option<Router> {
        let node = scope.producer_id(value)?;
        Self::of(scope, node).filter(|r| r.indices == value)
    }

    /// The latest router (in graph order) that `value` is computed from: the layer's own, not
    /// an earlier layer's whose output flows in through the residual stream.
    pub(crate) fn nearest_above(
        scope: &mut Scope<'_>,
        value: ValueId,
        order: &HashMap<NodeId, usize>,
    ) -> Option<Router> {
        let topks =
            scope.ancestor_nodes(value, &|n| n.op_type() == "TopK" && n.domain().is_empty());
        let mut best: Option<(usize, Router)> = None;
        for t in topks {
            let Some(router) = Self::of(scope, t) else {
                continue;
            };
            let at = order.get(&t).copied().unwrap_or(0);
            if best.is_none_or(|(b, _)| at > b) {
                best = Some((at, router));
            }
        }
        best.map(|(_, r)| r)
    }

    /// The `[tokens, hidden]` matrix the router scores: the data operand of the projection
    /// (`MatMul`/`Gemm` with a constant weight) under the score function.
    pub(crate) fn tokens(&self, scope: &mut Scope<'_>) -> Option<ValueId> {
        let mut v = input(scope.model.node(self.topk), 0)?;
        for _ in 0..16 {
            let n = scope.producer(v)?;
            if !n.domain().is_empty() {
                return None;
            }
            match n.op_type() {
                "MatMul" | "Gemm" => {
                    let w = input(n, 1)?;
                    crate::tensor::ConstExpr::of(scope, w)?;
                    return input(n, 0);
                }
                "Softmax" | "Sigmoid" | "Cast" | "Identity" | "Reshape" | "LogSoftmax" => {
                    v = input(n, 0)?;
                }
                "Add" | "Mul" | "Div" | "Sub" => {
                    // A bias or a scale: follow the operand that is not a constant.
                    let (a, b) = (input(n, 0)?, input(n, 1)?);
                    v = if crate::tensor::ConstExpr::of(scope, b).is_some() {
                        a
                    } else if crate::tensor::ConstExpr::of(scope, a).is_some() {
                        b
                    } else {
                        return None;
                    };
                }
                _ => return None,
            }
        }
        None
    }
}

/// The routing weights `[tokens, k]` that `value` moves around (reshaped, unsqueezed, gathered
/// per token and slot): the value reached by walking back through data movement only.
pub(crate) fn weights_source(
    scope: &mut Scope<'_>,
    mut value: ValueId,
    router: &Router,
) -> Option<ValueId> {
    for _ in 0..32 {
        let n = scope.producer(value)?;
        let moves = n.domain().is_empty()
            && matches!(
                n.op_type(),
                "Identity"
                    | "Reshape"
                    | "Unsqueeze"
                    | "Squeeze"
                    | "Flatten"
                    | "Expand"
                    | "Gather"
                    | "GatherND"
                    | "GatherElements"
            );
        if !moves {
            break;
        }
        value = input(n, 0)?;
    }
    let float = FLOATS.contains(&scope.facts.dtype(value)?);
    let routed = value == router.values
        || scope.depends_on(value, router.values)
        || scope.depends_on(value, router.indices);
    (float && routed && scope.facts.same_shape(value, router.indices)).then_some(value)
}
