//! Normalization statistics: the variance chains of decomposed LayerNorm/RMSNorm, held at
//! float32 when the options ask for it.

use rustc_hash::FxHashSet as HashSet;

use onnx_rewrite_ir::{Model, NodeId, Use, ValueId};
use onnx_rewrite_proto::tensor_proto::DataType;

use super::Plan;
use crate::constants;
use crate::origin::Origin;

/// Variance computations of decomposed LayerNorm/RMSNorm: `Pow(x, 2)` (or `Mul(x, x)`) feeding a
/// mean or sum, and the chain after it (`+ eps`, `Sqrt`, `Reciprocal`, division of a constant)
/// until it meets data again. Squares and sums of activations overflow float16 long before the
/// activations do (65504 is reached by |x| = 256).
pub(super) fn norm_statistics(model: &Model, plan: &Plan) -> HashSet<NodeId> {
    let mut found = HashSet::default();
    let is = |node: NodeId, ops: &[&str]| {
        let n = model.node(node);
        n.domain().is_empty() && ops.contains(&n.op_type())
    };
    let readers = |v: ValueId| -> Vec<NodeId> {
        model
            .value(v)
            .uses()
            .iter()
            .filter_map(|u| match u {
                Use::Node { node, .. } => Some(*node),
                Use::GraphOutput { .. } => None,
            })
            .collect()
    };
    for &node in &plan.scope.order {
        let n = model.node(node);
        let square = match (n.op_type(), n.inputs()) {
            ("Pow", [Some(_), Some(e)]) => {
                constants::small_floats(model, *e, 1).is_some_and(|v| v.first() == Some(&2.0))
            }
            ("Mul", [Some(a), Some(b)]) => a == b,
            _ => false,
        };
        let Some(out) = n.outputs().first().copied().flatten() else {
            continue;
        };
        if !n.domain().is_empty()
            || !square
            || !plan.types.of(out).is(DataType::Float)
            || !readers(out)
                .iter()
                .any(|r| is(*r, &["ReduceMean", "ReduceSum"]))
        {
            continue;
        }
        found.insert(node);
        let mut stack = vec![out];
        while let Some(v) = stack.pop() {
            for reader in readers(v) {
                let chain = is(
                    reader,
                    &[
                        "ReduceMean",
                        "ReduceSum",
                        "Add",
                        "Sqrt",
                        "Reciprocal",
                        "Div",
                        "Max",
                        "Clip",
                    ],
                );
                let others_constant = model
                    .node(reader)
                    .inputs()
                    .iter()
                    .flatten()
                    .filter(|x| **x != v && plan.types.of(**x).is(DataType::Float))
                    .all(|x| plan.origins.of(*x) == Origin::Constant);
                if chain && others_constant && found.insert(reader) {
                    stack.extend(model.node(reader).outputs().iter().flatten().copied());
                }
            }
        }
    }
    found
}
