//! Constant operands the target type cannot hold (too large, or flushed to zero), and the
//! guards (`var + eps`, `Max(norm, eps)`) whose flushed epsilon is raised instead of kept.

use rustc_hash::FxHashMap as HashMap;

use onnx_rewrite_ir::{Model, NodeId, Use, ValueId};
use onnx_rewrite_proto::tensor_proto::DataType;

use crate::constants;
use crate::convert::Target;

/// Constant operands the target type cannot hold, checked once per value.
#[derive(Default)]
pub(super) struct RangeCache {
    seen: HashMap<ValueId, Option<String>>,
    /// Constants whose only problem is values that flush to zero, read only as guards, with
    /// the first such value.
    pub(super) guards: HashMap<ValueId, f32>,
}

impl RangeCache {
    pub(super) fn violation(
        &mut self,
        model: &Model,
        node: NodeId,
        converted_inputs: &[ValueId],
        target: Target,
    ) -> Option<String> {
        let n = model.node(node);
        if n.domain().is_empty() && n.op_type() == "ConstantOfShape" {
            let t = n.attribute("value").and_then(|a| a.proto.t.as_ref())?;
            if t.data_type() == DataType::Float as i32 {
                return constants::out_of_range(t, target).map(|x| format!("value {x:e}"));
            }
            return None;
        }
        if n.domain().is_empty() && n.op_type() == "Constant" {
            return n
                .outputs()
                .first()
                .copied()
                .flatten()
                .and_then(|v| self.check(model, v, target));
        }
        converted_inputs
            .iter()
            .find_map(|v| self.check(model, *v, target))
    }

    fn check(&mut self, model: &Model, value: ValueId, target: Target) -> Option<String> {
        if let Some(hit) = self.seen.get(&value) {
            return hit.clone();
        }
        let hit =
            if let Some(small) = constants::small_floats(model, value, constants::SMALL as usize) {
                let max = target.max_finite();
                let too_large = small.iter().find(|x| x.is_finite() && x.abs() > max);
                let flushed = small.iter().find(|x| target.flushes(**x));
                match (too_large, flushed) {
                    (Some(x), _) => Some(*x),
                    (None, Some(x)) if is_guard(model, value) => {
                        self.guards.insert(value, *x);
                        None
                    }
                    (None, flushed) => flushed.copied(),
                }
            } else {
                constants::tensor_of(model, value).and_then(|t| constants::out_of_range(t, target))
            };
        let hit = hit.map(|x| format!("'{}' holds {x:e}", model.value(value).name()));
        self.seen.insert(value, hit.clone());
        hit
    }
}

/// A guard: a constant read only to keep a value off zero, as an addend (`var + eps`), a floor
/// (`Max(norm, eps)`, `Clip(norm, eps)`). Flushed to zero it guards nothing (`0 / 0` is NaN),
/// and a float32 `Add` would not help: its sum rounds back to the same float16 value. Raised
/// to the target's smallest positive value it still guards, off by at most that value.
fn is_guard(model: &Model, value: ValueId) -> bool {
    let uses = model.value(value).uses();
    !uses.is_empty()
        && uses.iter().all(|u| match u {
            Use::Node { node, input } => {
                let n = model.node(*node);
                n.domain().is_empty()
                    && match n.op_type() {
                        "Add" | "Max" => true,
                        "Clip" => *input == 1,
                        _ => false,
                    }
            }
            Use::GraphOutput { .. } => false,
        })
}
