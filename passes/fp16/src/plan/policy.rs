//! The precision policy: each node's [`Kind`] and, for a node held at float32, its [`Reason`],
//! decided from its schema, the op table's numerics, the options' block lists, the structural
//! analyses (origins, exactness, small angles), norm statistics, constant ranges and the target
//! EP's kernels. Also which bodies are frozen: those of blocked control flow and unknown ops.

use rustc_hash::FxHashSet as HashSet;
use smallvec::SmallVec;

use onnx_rewrite_ir::{GraphId, Model, Node, NodeId, ValueId};
use onnx_rewrite_ops::Numerics;
use onnx_rewrite_proto::tensor_proto::DataType;

use super::constant_range::RangeCache;
use super::ep::kernel_exists;
use super::{Plan, Precision, Reason};
use crate::convert::Target;
use crate::options::Options;
use crate::origin::Origin;
use crate::ports::{Opaque, Ports, Role, ports};
use crate::types::Ty;

#[derive(Clone, Debug, PartialEq, Eq)]
pub(crate) enum Kind {
    Fixed(Precision),
    Follow,
    Consumers,
    Opaque,
    Flow,
}

/// A node's classification and, once settled, its precision.
pub(crate) struct NodePlan {
    pub kind: Kind,
    pub inputs: SmallVec<[Role; 4]>,
    pub outputs: SmallVec<[Role; 2]>,
    pub reason: Option<Reason>,
    pub precision: Option<Precision>,
}

/// The model's ONNX opset, which the op table is asked at (the newest rows when the model
/// imports none).
pub(crate) fn onnx_opset(model: &Model) -> i64 {
    model
        .opset(onnx_rewrite_ops::ONNX_DOMAIN)
        .unwrap_or(i64::MAX)
}

/// What a node does to the numbers it reads, from the op table at `opset` (the model's ONNX
/// opset): [`Numerics::Exact`] ops (data movement, selection, comparison: Reshape, Gather,
/// Where, Max, Relu, Equal...) follow their inputs' precision, [`Numerics::Periodic`] ones
/// (Cos, Sin, Tan) need an exact operand. Nodes of other domains make no claim.
pub(crate) fn numerics(n: &Node, opset: i64) -> Numerics {
    if !n.domain().is_empty() {
        return Numerics::Rounds;
    }
    onnx_rewrite_ops::numerics(onnx_rewrite_ops::ONNX_DOMAIN, n.op_type(), opset)
}

impl Plan {
    /// Bodies of blocked control flow and of ops the pass does not know stay as they are.
    pub(super) fn freeze(&mut self, model: &Model, options: &Options) {
        for &node in &self.scope.order {
            let n = model.node(node);
            let bodies: Vec<GraphId> = n.subgraphs().collect();
            if bodies.is_empty() {
                continue;
            }
            let known = n.domain().is_empty() && matches!(n.op_type(), "If" | "Loop" | "Scan");
            if !known || blocked(n, options).is_some() {
                let mut stack = bodies;
                while let Some(g) = stack.pop() {
                    self.frozen.insert(g);
                    for &inner in model.graph(g).nodes() {
                        stack.extend(model.node(inner).subgraphs());
                    }
                }
            }
        }
    }

    pub(super) fn classify(
        &self,
        model: &Model,
        node: NodeId,
        options: &Options,
        norm: &HashSet<NodeId>,
        range: &mut RangeCache,
    ) -> NodePlan {
        let n = model.node(node);
        let float = |v: &Option<ValueId>| {
            if v.is_some_and(|v| self.types.of(v).is(DataType::Float)) {
                Role::Pin
            } else {
                Role::Other
            }
        };
        let opaque = |reason: Reason| NodePlan {
            kind: Kind::Opaque,
            inputs: n.inputs().iter().map(float).collect(),
            outputs: n.outputs().iter().map(float).collect(),
            reason: Some(reason),
            precision: Some(Precision::High),
        };
        if self.frozen.contains(&n.graph()) {
            return opaque(Reason::InsideBlocked);
        }
        let is_flow = n.domain().is_empty() && matches!(n.op_type(), "If" | "Loop" | "Scan");
        if is_flow {
            if let Some(reason) = blocked(n, options) {
                return opaque(reason);
            }
            return NodePlan {
                kind: Kind::Flow,
                inputs: n.inputs().iter().map(float).collect(),
                outputs: n.outputs().iter().map(float).collect(),
                reason: None,
                precision: None,
            };
        }
        let ports = match ports(model, node, &self.types, self.target) {
            Ok(p) => p,
            Err(Opaque::NoSchema) => return opaque(Reason::NoSchema),
            Err(Opaque::Sequence) => return opaque(Reason::Sequence),
            Err(Opaque::UnknownType) => return opaque(Reason::UnknownType),
        };
        let fixed = |precision: Precision, reason: Option<Reason>, ports: &Ports| NodePlan {
            kind: Kind::Fixed(precision),
            inputs: ports.inputs.clone(),
            outputs: ports.outputs.clone(),
            reason,
            precision: None,
        };
        // A Cast to float16 or bfloat16 written in the model rounds its operand anyway.
        let casts_to_low = n.domain().is_empty()
            && matches!(n.op_type(), "Cast" | "CastLike")
            && n.outputs().first().copied().flatten().is_some_and(|v| {
                matches!(
                    self.types.of(v),
                    Ty::Tensor(DataType::Float16 | DataType::Bfloat16)
                )
            });
        if !ports.converts() {
            let pinned = ports.outputs.contains(&Role::Pin);
            let mut np = fixed(Precision::High, pinned.then_some(Reason::NoLowType), &ports);
            np.kind = Kind::Opaque;
            // A Cast of a constant or a position to an integer must see the exact float32
            // (4097.0 in float16 is 4096); one to double, only while it holds whole numbers
            // (a fraction such as a scale's 1/√d is rounded like any data).
            if n.domain().is_empty() && n.op_type() == "Cast" && !casts_to_low {
                let widens = n
                    .outputs()
                    .first()
                    .copied()
                    .flatten()
                    .is_some_and(|v| self.types.of(v).is(DataType::Double));
                let fraction =
                    n.inputs().first().copied().flatten().is_some_and(|v| {
                        !self.exactness.holds_whole_numbers(model, &self.types, v)
                    });
                if !(widens && fraction) {
                    self.pin_exact(n, &mut np.inputs);
                }
            }
            return np;
        }
        if let Some(reason) = blocked(n, options) {
            return fixed(Precision::High, Some(reason), &ports);
        }
        let converted = |roles: &[Role], values: &[Option<ValueId>]| -> Vec<ValueId> {
            roles
                .iter()
                .zip(values)
                .filter(|(r, _)| **r == Role::Convert)
                .filter_map(|(_, v)| *v)
                .collect()
        };
        let ins = converted(&ports.inputs, n.inputs());
        let outs = converted(&ports.outputs, n.outputs());
        if outs.iter().any(|v| self.exactness.needs(*v)) {
            return fixed(Precision::High, Some(Reason::Positional), &ports);
        }
        if numerics(n, self.opset) == Numerics::Periodic
            && ins.iter().all(|v| self.origins.of(*v) != Origin::Data)
            && !self.small_angles.contains(&node)
        {
            return fixed(Precision::High, Some(Reason::Rotary), &ports);
        }
        // Scatter with `add` or `mul` accumulates into its data: sums of float16 lose what
        // float32 keeps. `max` and `min` select, exact in either precision, but onnxruntime's
        // CPU EP runs them only for ScatterElements in float16 (no reduction of ScatterND in
        // float16, none of ScatterElements in bfloat16: "not implemented" at run time).
        let selects_in_float16 = self.target == Target::Float16 && n.op_type() == "ScatterElements";
        if n.domain().is_empty()
            && matches!(n.op_type(), "ScatterND" | "ScatterElements")
            && n.attribute("reduction")
                .and_then(|a| a.proto.s.as_ref())
                .is_some_and(|s| match s.as_ref() {
                    b"none" => false,
                    b"max" | b"min" => !selects_in_float16,
                    _ => true,
                })
        {
            return fixed(Precision::High, Some(Reason::Accumulation), &ports);
        }
        // Training-mode BatchNormalization blends its running mean and variance with the
        // batch's (momentum): bfloat16's 8-bit mantissa loses the blend (10% off in the
        // node tests), so the statistics stay float32.
        if n.domain().is_empty()
            && n.op_type() == "BatchNormalization"
            && n.attribute("training_mode")
                .and_then(|a| a.proto.i)
                .is_some_and(|i| i != 0)
        {
            return fixed(Precision::High, Some(Reason::RunningStatistics), &ports);
        }
        // Attention's `qk_matmul_output` in modes 1 and 2 (scores with the mask or bias added)
        // shows the scores the op masks itself (a boolean `attn_mask`, `is_causal`,
        // `nonpad_kv_seqlen`) as the type's lowest value (-3.4e38 in float32), which float16
        // cannot hold. A float `attn_mask` is a bias, added as it is. Mode 0 (the raw scores)
        // and mode 3 (softmax probabilities) hold no mask.
        let input = |i: usize| n.inputs().get(i).copied().flatten();
        let masks_itself = input(3).is_some_and(|m| self.types.of(m).is(DataType::Bool))
            || input(6).is_some()
            || n.attribute("is_causal")
                .and_then(|a| a.proto.i)
                .is_some_and(|c| c != 0);
        if n.domain().is_empty()
            && n.op_type() == "Attention"
            && n.outputs().get(3).copied().flatten().is_some()
            && masks_itself
            && n.attribute("qk_matmul_output_mode")
                .and_then(|a| a.proto.i)
                .is_some_and(|mode| mode == 1 || mode == 2)
        {
            let what = "qk_matmul_output holds masked scores as float32's lowest value".to_owned();
            return fixed(Precision::High, Some(Reason::Range(what)), &ports);
        }
        if norm.contains(&node) {
            return fixed(Precision::High, Some(Reason::NormStatistics), &ports);
        }
        if let Some(what) = range.violation(model, node, &ins, self.target) {
            return fixed(Precision::High, Some(Reason::Range(what)), &ports);
        }
        let constant = ins
            .iter()
            .chain(&outs)
            .all(|v| self.origins.of(*v) == Origin::Constant);
        let kind = if n.domain().is_empty() && n.op_type() == "Cast" {
            let input = n.inputs().first().copied().flatten();
            let from = input.map_or(Ty::Unknown, |v| self.types.of(v));
            let to_float = ports.outputs.first() == Some(&Role::Convert);
            match from {
                Ty::Unknown | Ty::Other => return opaque(Reason::UnknownType),
                _ if !to_float => Kind::Follow,
                Ty::Tensor(DataType::Float) => Kind::Follow,
                Ty::Tensor(DataType::Float16 | DataType::Bfloat16 | DataType::Double) => {
                    Kind::Consumers
                }
                _ if constant => Kind::Consumers,
                _ => Kind::Fixed(Precision::Low),
            }
        } else if constant || (n.domain().is_empty() && n.op_type() == "Constant") {
            Kind::Consumers
        } else if numerics(n, self.opset) == Numerics::Exact {
            Kind::Follow
        } else {
            Kind::Fixed(Precision::Low)
        };
        // Comparisons and index computations of constants and positions (Equal, ArgMax of a
        // constant-derived tensor) must see exact float32 values too.
        if kind == Kind::Follow && !ports.outputs.contains(&Role::Convert) && !casts_to_low {
            let mut inputs = ports.inputs.clone();
            if self.pin_exact(n, &mut inputs) {
                return NodePlan {
                    kind: Kind::Opaque,
                    inputs,
                    outputs: ports.outputs,
                    reason: None,
                    precision: Some(Precision::High),
                };
            }
        }
        if !options.eps().is_empty() && !kernel_exists(model, node, &ports, &self.types, options) {
            let ep = options.eps().first().map_or("?", |ep| ep.name());
            return fixed(Precision::High, Some(Reason::Target(ep)), &ports);
        }
        NodePlan {
            kind,
            inputs: ports.inputs,
            outputs: ports.outputs,
            reason: None,
            precision: None,
        }
    }

    /// Pins the float32 operands of `n` when none of them is data; says whether it did.
    fn pin_exact(&self, n: &onnx_rewrite_ir::Node, roles: &mut [Role]) -> bool {
        let floats: Vec<usize> = roles
            .iter()
            .enumerate()
            .filter(|(_, r)| matches!(r, Role::Convert | Role::Any))
            .map(|(i, _)| i)
            .collect();
        let exact = !floats.is_empty()
            && floats
                .iter()
                .all(|i| n.inputs()[*i].is_some_and(|v| self.origins.of(v) != Origin::Data));
        if exact {
            for i in floats {
                roles[i] = Role::Pin;
            }
        }
        exact
    }
}

fn blocked(n: &onnx_rewrite_ir::Node, options: &Options) -> Option<Reason> {
    if !n.name().is_empty() && options.block_nodes.contains(n.name()) {
        Some(Reason::BlockedNode)
    } else if options.blocks_op(n.domain(), n.op_type()) {
        Some(Reason::BlockedOp)
    } else {
        None
    }
}
