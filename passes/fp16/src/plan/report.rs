//! What the report says of the plan: the rotary chain labelled as such, the census of float32
//! nodes (converted, kept and why) and the guards raised to the target's least positive value.

use std::collections::BTreeMap;

use rustc_hash::FxHashSet as HashSet;

use onnx_rewrite_ir::{Model, NodeId, Use, ValueId};
use onnx_rewrite_ops::Numerics;
use onnx_rewrite_proto::tensor_proto::DataType;

use super::{NodePlan, Plan, Precision, Reason, numerics};

impl Plan {
    /// Positional nodes that build or carry Cos/Sin tables are the rotary chain: the seeds, what
    /// feeds them (up to the integer and constant leaves), and what carries them to their
    /// readers.
    pub(super) fn label_rotary(&mut self, model: &Model) {
        let high = |np: &NodePlan| np.precision == Some(Precision::High);
        let seeds: Vec<NodeId> = self
            .scope
            .order
            .iter()
            .copied()
            .filter(|n| {
                let node = model.node(*n);
                numerics(node, self.opset) == Numerics::Periodic
                    && matches!(
                        self.nodes[n].reason,
                        Some(Reason::Rotary | Reason::Positional)
                    )
            })
            .collect();
        let mut chain: HashSet<NodeId> = seeds.iter().copied().collect();
        let mut stack = seeds.clone();
        while let Some(node) = stack.pop() {
            for v in model.node(node).inputs().iter().flatten() {
                if let Some((producer, _)) = model.value(*v).producer()
                    && let Some(np) = self.nodes.get(&producer)
                    && high(np)
                    && matches!(
                        np.reason,
                        Some(
                            Reason::Positional
                                | Reason::Consumers
                                | Reason::FollowsInput
                                | Reason::Rotary
                        )
                    )
                    && chain.insert(producer)
                {
                    stack.push(producer);
                }
            }
        }
        let mut stack = seeds;
        while let Some(node) = stack.pop() {
            for v in model.node(node).outputs().iter().flatten() {
                for u in model.value(*v).uses() {
                    if let Use::Node { node: reader, .. } = u
                        && let Some(np) = self.nodes.get(reader)
                        && high(np)
                        && matches!(np.reason, Some(Reason::Positional | Reason::FollowsInput))
                        && chain.insert(*reader)
                    {
                        stack.push(*reader);
                    }
                }
            }
        }
        for node in chain {
            if let Some(np) = self.nodes.get_mut(&node)
                && model
                    .node(node)
                    .outputs()
                    .iter()
                    .flatten()
                    .any(|v| self.types.of(*v).is(DataType::Float))
            {
                np.reason = Some(Reason::Rotary);
            }
        }
    }

    /// The guards converted to low precision (read low, or copied low beside a float32 reader)
    /// with their first raised value, in value order.
    pub fn guards_raised(&self) -> Vec<(ValueId, f32)> {
        let mut raised: Vec<(ValueId, f32)> = self
            .guards
            .iter()
            .filter(|(v, _)| self.values.get(*v) == Some(&Precision::Low) || self.dual.contains(*v))
            .map(|(v, x)| (*v, *x))
            .collect();
        raised.sort_by_key(|(v, _)| *v);
        raised
    }

    /// Per report key: nodes with a float32 output, those now low, those kept and why.
    pub fn census(&self, model: &Model) -> Census {
        let mut census = Census::default();
        for &node in &self.scope.order {
            let n = model.node(node);
            let float_out = n
                .outputs()
                .iter()
                .flatten()
                .any(|v| self.types.of(*v).is(DataType::Float));
            if !float_out {
                continue;
            }
            census.float_nodes += 1;
            let np = &self.nodes[&node];
            let low = n
                .outputs()
                .iter()
                .flatten()
                .any(|v| self.values.get(v) == Some(&Precision::Low));
            if low {
                census.low_nodes += 1;
                if self.small_angles.contains(&node) {
                    census.small_angles += 1;
                }
            } else {
                let reason = np.reason.clone().unwrap_or(Reason::NoLowType);
                *census.kept.entry(reason.key()).or_default() += 1;
                census.kept_nodes.push((node, reason));
            }
        }
        census
    }
}

#[derive(Default)]
pub(crate) struct Census {
    pub float_nodes: usize,
    pub low_nodes: usize,
    pub kept: BTreeMap<&'static str, usize>,
    pub kept_nodes: Vec<(NodeId, Reason)>,
    /// Trig nodes of positions converted because their angle is proved small.
    pub small_angles: usize,
}
