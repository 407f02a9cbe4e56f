//! The precision of every float32 value: a decision per node, then a forward and a backward
//! walk that settle the nodes whose precision is not theirs to choose.
//!
//! Each node is classified ([`Kind`]):
//! - **Low**: arithmetic on data (MatMul, Softmax, Add of activations...).
//! - **High** with a [`Reason`]: block lists, the rotary chain and integer-derived arithmetic
//!   ([`Origin::Position`]), Cos/Sin of constants, normalization statistics, a constant operand
//!   the target type cannot hold, an EP without a kernel.
//! - **Follow**: data movement, selection and comparison (Reshape, Gather, Concat, Where, Max,
//!   Relu...), exact in either precision: they take the precision of their inputs, so no Cast
//!   lands on a shape-only edge.
//! - **Consumers**: what is computed from constants only, `Constant`, and Casts from other
//!   float types: they take the precision their readers want (float32 if any reader is float32,
//!   so a constant feeding the rotary chain is never rounded).
//! - **Opaque**: unknown ops, sequences, bodies of blocked nodes: every float32 slot stays.
//! - **Flow**: If/Loop/Scan: one precision per output (and per carried state, the same on both
//!   sides of the body boundary).
//!
//! The forward walk settles Low/High/Follow; the backward walk (readers first) settles the rest.

use std::collections::BTreeMap;

use rustc_hash::{FxHashMap as HashMap, FxHashSet as HashSet};
use smallvec::SmallVec;

use onnx_rewrite_ir::{GraphId, GraphOwner, Model, Node, NodeId, Use, ValueDef, ValueId};
use onnx_rewrite_ops::Numerics;
use onnx_rewrite_proto::tensor_proto::DataType;

use crate::angle::small_angles;
use crate::constants;
use crate::convert::Target;
use crate::exactness::Exactness;
use crate::kernels::{self, Ep};
use crate::options::Options;
use crate::origin::{Origin, Origins, scan_inputs};
use crate::ports::{Opaque, Ports, Role, ports};
use crate::schema::Slot;
use crate::scope::Scope;
use crate::types::{Ty, Types};

#[derive(Clone, Copy, Debug, PartialEq, Eq, Hash, PartialOrd, Ord)]
pub enum Precision {
    Low,
    High,
}

/// Why a node that produces float32 still does.
#[derive(Clone, Debug, PartialEq, Eq, PartialOrd, Ord)]
pub(crate) enum Reason {
    BlockedOp,
    BlockedNode,
    InsideBlocked,
    NoSchema,
    Sequence,
    UnknownType,
    NoLowType,
    Target(&'static str),
    Rotary,
    Positional,
    NormStatistics,
    Accumulation,
    RunningStatistics,
    Range(String),
    FollowsInput,
    Consumers,
}

impl Reason {
    /// The report's key.
    pub fn key(&self) -> &'static str {
        match self {
            Reason::BlockedOp => "op block list",
            Reason::BlockedNode => "node block list",
            Reason::InsideBlocked => "inside a blocked node",
            Reason::NoSchema => "no schema (custom op or function)",
            Reason::Sequence => "sequence or optional values",
            Reason::UnknownType => "operand of unknown type",
            Reason::NoLowType => "schema has no low-precision type at this opset",
            Reason::Target(_) => "no kernel on the target EP",
            Reason::Rotary => "rotary",
            Reason::Positional => "integer-derived arithmetic",
            Reason::NormStatistics => "normalization statistics",
            Reason::Accumulation => "accumulating scatter",
            Reason::RunningStatistics => "running statistics (training-mode BatchNormalization)",
            Reason::Range(_) => "constant out of range",
            Reason::FollowsInput => "follows a float32 input",
            Reason::Consumers => "float32 readers",
        }
    }

    /// A decline rather than a policy: the pass could not convert the node safely.
    pub fn is_decline(&self) -> bool {
        matches!(
            self,
            Reason::NoSchema | Reason::Sequence | Reason::UnknownType
        )
    }

    pub fn detail(&self) -> String {
        match self {
            Reason::Range(what) => format!("{}: {what}", self.key()),
            Reason::Target(ep) => format!("no low-precision kernel on {ep}"),
            other => other.key().to_owned(),
        }
    }
}

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

/// The precisions of an If, Loop or Scan and its bodies.
#[derive(Default)]
pub(crate) struct Flow {
    /// Per output: the precision of a float32 output.
    pub outputs: Vec<Option<Precision>>,
    /// Per input slot: what a float32 operand must be.
    pub inputs: Vec<Option<Precision>>,
}

pub(crate) struct Plan {
    pub target: Target,
    pub keep_io_types: bool,
    pub nodes: HashMap<NodeId, NodePlan>,
    pub flows: HashMap<NodeId, Flow>,
    /// The precision each float32 value is produced at.
    pub values: HashMap<ValueId, Precision>,
    /// What each body output (graph, index) must be, for bodies of converted If/Loop/Scan.
    pub body_outputs: HashMap<(GraphId, usize), Precision>,
    pub frozen: HashSet<GraphId>,
    pub types: Types,
    pub origins: Origins,
    exactness: Exactness,
    /// Trig nodes whose operand is provably a small angle (a window function's), not rotary.
    small_angles: HashSet<NodeId>,
    pub scope: Scope,
    /// Float32 constants (initializers and `Constant` outputs) also needed in low precision
    /// beside their float32 readers.
    pub dual: HashSet<ValueId>,
    /// Small constants read only as guards (see [`is_guard`]) whose nonzero values flush to zero
    /// in the target, with the first such value: converted with those values raised to the
    /// target's smallest positive value, so that the guard stays nonzero.
    pub guards: HashMap<ValueId, f32>,
    /// The model's ONNX opset, for the op table ([`onnx_opset`]).
    opset: i64,
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
    pub fn new(model: &Model, options: &Options) -> Result<Self, onnx_rewrite_pass::PassError> {
        let scope = Scope::of(model)?;
        let types = Types::infer(model, &scope);
        let origins = Origins::infer(model, &scope, &types);
        let small_angles = small_angles(model, &scope, &types, options.target);
        let exactness = Exactness::infer(
            model,
            &scope,
            &types,
            &origins,
            &small_angles,
            options.target,
        );
        let mut plan = Plan {
            target: options.target,
            keep_io_types: options.keep_io_types,
            nodes: HashMap::default(),
            flows: HashMap::default(),
            values: HashMap::default(),
            body_outputs: HashMap::default(),
            frozen: HashSet::default(),
            types,
            origins,
            exactness,
            small_angles,
            scope,
            dual: HashSet::default(),
            guards: HashMap::default(),
            opset: onnx_opset(model),
        };
        plan.freeze(model, options);
        let norm = if options.keep_norm_statistics {
            norm_statistics(model, &plan)
        } else {
            HashSet::default()
        };
        let order = plan.scope.order.clone();
        let mut range = RangeCache::default();
        for &node in &order {
            let np = plan.classify(model, node, options, &norm, &mut range);
            plan.nodes.insert(node, np);
        }
        plan.guards = range.guards;
        for &node in &order {
            if plan.nodes[&node].kind == Kind::Flow {
                plan.flow(model, node);
            }
        }
        plan.forward(model);
        plan.backward(model);
        plan.label_rotary(model);
        if std::env::var_os("ONNX_REWRITE_FP16_DEBUG").is_some() {
            for &node in &plan.scope.order {
                let np = &plan.nodes[&node];
                eprintln!(
                    "{} kind={:?} precision={:?} reason={:?} in={:?} out={:?}",
                    model.describe_node(node),
                    np.kind,
                    np.precision,
                    np.reason,
                    np.inputs,
                    np.outputs
                );
            }
        }
        Ok(plan)
    }

    /// Bodies of blocked control flow and of ops the pass does not know stay as they are.
    fn freeze(&mut self, model: &Model, options: &Options) {
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

    fn classify(
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

    /// If/Loop/Scan: a precision per float32 output (positions that must stay exact stay
    /// float32), the same for the body values tied to it.
    fn flow(&mut self, model: &Model, node: NodeId) {
        let n = model.node(node);
        let is_float = |v: Option<ValueId>| v.is_some_and(|v| self.types.of(v).is(DataType::Float));
        // An If's result is the value of one branch: it needs exactness as its readers do. A
        // loop-carried position may grow past float16's integers on any iteration.
        let is_if = n.op_type() == "If";
        let choose = |v: ValueId| {
            let exact = if is_if {
                self.exactness.needs(v)
            } else {
                self.origins.of(v) == Origin::Position
            };
            if exact {
                Precision::High
            } else {
                Precision::Low
            }
        };
        let bodies: Vec<GraphId> = n.subgraphs().collect();
        let mut flow = Flow {
            outputs: vec![None; n.outputs().len()],
            inputs: vec![None; n.inputs().len()],
        };
        let outputs: Vec<Option<ValueId>> = n.outputs().to_vec();
        let mut body_inputs: Vec<(ValueId, Precision)> = Vec::new();
        let mut body_outputs: Vec<((GraphId, usize), Precision)> = Vec::new();
        let body_in = |g: GraphId, i: usize| model.graph(g).inputs().get(i).map(|io| io.value);
        let body_out = |g: GraphId, i: usize| model.graph(g).outputs().get(i).map(|io| io.value);
        match n.op_type() {
            "If" => {
                for (k, out) in outputs.iter().enumerate() {
                    let Some(out) = out.filter(|v| is_float(Some(*v))) else {
                        continue;
                    };
                    let p = choose(out);
                    let agree = bodies.iter().all(|b| is_float(body_out(*b, k)));
                    if !agree {
                        continue;
                    }
                    flow.outputs[k] = Some(p);
                    body_outputs.extend(bodies.iter().map(|b| ((*b, k), p)));
                }
            }
            "Loop" | "Scan" => {
                let Some(&body) = bodies.first() else {
                    // No body (a malformed node): its outputs stay float32.
                    if let Some(np) = self.nodes.get_mut(&node) {
                        np.precision = Some(Precision::High);
                    }
                    self.flows.insert(node, flow);
                    return;
                };
                let loop_ = n.op_type() == "Loop";
                let offset = if loop_ {
                    2
                } else {
                    usize::from(model.opset("").unwrap_or(0) < 9)
                };
                let body_in_offset = if loop_ { 2 } else { 0 };
                let body_out_offset = usize::from(loop_);
                let scans = if loop_ { 0 } else { scan_inputs(model, node) };
                let states = model
                    .graph(body)
                    .inputs()
                    .len()
                    .saturating_sub(body_in_offset + scans);
                // Carried state: outer input, body input, body output and outer output agree.
                for k in 0..states {
                    let outer_in = n.inputs().get(offset + k).copied().flatten();
                    let b_in = body_in(body, body_in_offset + k);
                    let b_out = body_out(body, body_out_offset + k);
                    let out = outputs.get(k).copied().flatten();
                    if !(is_float(outer_in) && is_float(b_in) && is_float(b_out) && is_float(out)) {
                        continue;
                    }
                    let p = [outer_in, b_in, b_out, out]
                        .into_iter()
                        .flatten()
                        .map(choose)
                        .max()
                        .unwrap_or(Precision::High);
                    flow.inputs[offset + k] = Some(p);
                    flow.outputs[k] = Some(p);
                    body_inputs.extend(b_in.map(|v| (v, p)));
                    body_outputs.push(((body, body_out_offset + k), p));
                }
                // Scanned inputs (Scan only): the slice has its input's precision.
                for j in 0..scans {
                    let outer_in = n.inputs().get(offset + states + j).copied().flatten();
                    let b_in = body_in(body, states + j);
                    if !(is_float(outer_in) && is_float(b_in)) {
                        continue;
                    }
                    let p = [outer_in, b_in].into_iter().flatten().map(choose).max();
                    let p = p.unwrap_or(Precision::High);
                    flow.inputs[offset + states + j] = Some(p);
                    body_inputs.extend(b_in.map(|v| (v, p)));
                }
                // Scan outputs: stacked body results.
                for (j, &out) in outputs.iter().enumerate().skip(states) {
                    let b_out = body_out(body, body_out_offset + j);
                    if !(is_float(b_out) && is_float(out)) {
                        continue;
                    }
                    let p = [b_out, out].into_iter().flatten().map(choose).max();
                    let p = p.unwrap_or(Precision::High);
                    flow.outputs[j] = Some(p);
                    body_outputs.push(((body, body_out_offset + j), p));
                }
            }
            _ => {}
        }
        for (v, p) in body_inputs {
            self.values.insert(v, p);
        }
        self.body_outputs.extend(body_outputs);
        let low = flow.outputs.contains(&Some(Precision::Low));
        if let Some(np) = self.nodes.get_mut(&node) {
            np.precision = Some(if low { Precision::Low } else { Precision::High });
        }
        self.flows.insert(node, flow);
    }

    /// Graph inputs of the scope, and every node whose precision its class or its inputs decide.
    fn forward(&mut self, model: &Model) {
        for &graph in &self.scope.graphs {
            let g = model.graph(graph);
            let frozen = self.frozen.contains(&graph);
            for io in g.inputs() {
                if !self.types.of(io.value).is(DataType::Float) {
                    continue;
                }
                if graph == model.main() {
                    let p = if self.keep_io_types {
                        Precision::High
                    } else {
                        Precision::Low
                    };
                    self.values.insert(io.value, p);
                } else if frozen || !self.values.contains_key(&io.value) {
                    self.values.insert(io.value, Precision::High);
                }
            }
        }
        let order = self.scope.order.clone();
        for node in order {
            let np = &self.nodes[&node];
            let precision = match &np.kind {
                Kind::Fixed(p) => Some(*p),
                Kind::Opaque => Some(Precision::High),
                Kind::Flow => np.precision,
                Kind::Consumers => None,
                Kind::Follow => self.follow(model, node),
            };
            if let Some(p) = precision {
                self.settle(model, node, p);
            }
        }
    }

    /// A follower is low when any settled operand is (a kept-float32 graph input counts as low:
    /// it is cast once at the boundary), high when all settled ones are high.
    fn follow(&self, model: &Model, node: NodeId) -> Option<Precision> {
        let n = model.node(node);
        let np = &self.nodes[&node];
        let mut seen = None;
        for (role, v) in np.inputs.iter().zip(n.inputs()) {
            let (Role::Convert, Some(v)) = (role, v) else {
                continue;
            };
            let p = if self.is_main_input(model, *v) {
                Some(Precision::Low)
            } else {
                self.values.get(v).copied()
            };
            match p {
                Some(Precision::Low) => return Some(Precision::Low),
                Some(Precision::High) => seen = Some(Precision::High),
                None => {}
            }
        }
        seen
    }

    /// A follower read only in float32: low when every float32 operand is low (casting its
    /// result up is then exact), else high (a float32 operand is never rounded on its way to a
    /// float32 reader, nor is a kept-float32 graph input).
    fn lean(&self, model: &Model, node: NodeId) -> Precision {
        let n = model.node(node);
        let np = &self.nodes[&node];
        let mut operands = np
            .inputs
            .iter()
            .zip(n.inputs())
            .filter_map(|(role, v)| (*role == Role::Convert).then_some(*v)?)
            .peekable();
        let all_low = operands.peek().is_some()
            && operands.all(|v| {
                !self.is_main_input(model, v) && self.values.get(&v) == Some(&Precision::Low)
            });
        if all_low {
            Precision::Low
        } else {
            Precision::High
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

    fn is_main_input(&self, model: &Model, value: ValueId) -> bool {
        let v = model.value(value);
        v.def() == onnx_rewrite_ir::ValueDef::Input && v.graph() == model.main()
    }

    fn settle(&mut self, model: &Model, node: NodeId, precision: Precision) {
        let n = model.node(node);
        let Some(np) = self.nodes.get_mut(&node) else {
            return;
        };
        np.precision = Some(precision);
        if np.kind == Kind::Flow {
            let outputs = self.flows.get(&node).map_or(&[][..], |f| &f.outputs[..]);
            for (out, p) in n
                .outputs()
                .iter()
                .zip(outputs.iter().chain(std::iter::repeat(&None)))
            {
                if let (Some(v), Some(p)) = (out, p) {
                    self.values.insert(*v, *p);
                } else if let Some(v) = out
                    && self.types.of(*v).is(DataType::Float)
                {
                    self.values.insert(*v, Precision::High);
                }
            }
            return;
        }
        for (role, out) in np.outputs.iter().zip(n.outputs()) {
            let Some(v) = out else { continue };
            match role {
                Role::Convert => {
                    self.values.insert(*v, precision);
                }
                Role::Pin | Role::Any => {
                    self.values.insert(*v, Precision::High);
                }
                Role::Other => {}
            }
        }
    }

    /// What a reader wants of a float32 value: `None` when either precision will do.
    pub fn requirement(&self, model: &Model, the_use: Use) -> Option<Precision> {
        match the_use {
            Use::Node { node, input } => {
                let np = self.nodes.get(&node)?;
                if np.kind == Kind::Flow {
                    return match self.flows.get(&node)?.inputs.get(input as usize) {
                        Some(Some(p)) => Some(*p),
                        // A float32 operand that belongs to no converted group (an If
                        // condition is never float) stays as it is.
                        _ => Some(Precision::High),
                    };
                }
                match np.inputs.get(input as usize)? {
                    Role::Convert => np.precision,
                    Role::Pin => Some(Precision::High),
                    Role::Any | Role::Other => None,
                }
            }
            Use::GraphOutput { graph, index } => {
                if graph == model.main() {
                    return if self.keep_io_types {
                        Some(Precision::High)
                    } else {
                        None
                    };
                }
                if self.frozen.contains(&graph) {
                    return Some(Precision::High);
                }
                match model.graph(graph).owner() {
                    GraphOwner::Node { .. } => Some(
                        self.body_outputs
                            .get(&(graph, index as usize))
                            .copied()
                            .unwrap_or(Precision::High),
                    ),
                    _ => Some(Precision::High),
                }
            }
        }
    }

    /// Whether `value`'s readers want it (low, high). A reader in `leaning` (a follower read
    /// only in float32, not settled yet) counts as wanting high.
    fn wants(&self, model: &Model, value: ValueId, leaning: &HashSet<NodeId>) -> (bool, bool) {
        let mut low = false;
        let mut high = false;
        for u in model.value(value).uses() {
            if let Use::Node { node, .. } = u
                && leaning.contains(node)
            {
                high = true;
                continue;
            }
            match self.requirement(model, *u) {
                Some(Precision::Low) => low = true,
                Some(Precision::High) => high = true,
                None => {}
            }
        }
        (low, high)
    }

    /// Readers first: a node nobody settled takes float32 if any reader wants float32, else low
    /// if any reader wants low, else stays float32. Constants wanted both ways are kept and
    /// also copied in low precision.
    fn backward(&mut self, model: &Model) {
        let order = self.scope.order.clone();
        let mut leaning: HashSet<NodeId> = HashSet::default();
        for &node in order.iter().rev() {
            if self.nodes[&node].precision.is_some() {
                continue;
            }
            let n = model.node(node);
            let np = &self.nodes[&node];
            // A follower with no float32 result (a comparison of data) takes its operands as
            // they come: settled after them, below.
            if np.kind == Kind::Follow && !np.outputs.contains(&Role::Convert) {
                continue;
            }
            let (mut low, mut high) = (false, false);
            for (role, out) in np.outputs.iter().zip(n.outputs()) {
                if let (Role::Convert, Some(v)) = (role, out) {
                    let (l, h) = self.wants(model, *v, &leaning);
                    low |= l;
                    high |= h;
                }
            }
            // A follower read only in float32 leans high: its operands count it as a float32
            // reader, and it settles after them (below): low when every operand is, moving low
            // values and cast once after (the same values, half the bytes).
            if np.kind == Kind::Follow && high && !low {
                leaning.insert(node);
                continue;
            }
            let is_constant = n.domain().is_empty() && n.op_type() == "Constant";
            // A follower moves data: low when anyone reads it low (its float32 readers get a
            // Cast of exact copies of low values). Constants stay float32 for a float32 reader.
            // Nothing read at all (dead, or read for its shape only): low, like its peers.
            let precision = match np.kind {
                Kind::Follow if low => Precision::Low,
                _ if !high => Precision::Low,
                _ => Precision::High,
            };
            if is_constant && low && high {
                self.dual.extend(n.outputs().iter().flatten().copied());
            }
            let reason = (precision == Precision::High).then_some(match np.kind {
                Kind::Follow => Reason::FollowsInput,
                _ => Reason::Consumers,
            });
            self.settle(model, node, precision);
            if let Some(np) = self.nodes.get_mut(&node)
                && np.reason.is_none()
            {
                np.reason = reason;
            }
        }
        for &node in &order {
            if self.nodes[&node].precision.is_none() {
                let p = if leaning.contains(&node) {
                    self.lean(model, node)
                } else {
                    self.follow(model, node).unwrap_or(Precision::High)
                };
                self.settle(model, node, p);
            }
        }
        // Followers settled high in the forward walk: say why.
        for np in self.nodes.values_mut() {
            if np.kind == Kind::Follow
                && np.precision == Some(Precision::High)
                && np.reason.is_none()
            {
                np.reason = Some(Reason::FollowsInput);
            }
        }
        for &graph in &self.scope.graphs {
            for &v in model.graph(graph).initializers() {
                if model.value(v).def() != ValueDef::Initializer
                    || !self.types.of(v).is(DataType::Float)
                {
                    continue;
                }
                let (low, high) = self.wants(model, v, &leaning);
                let p = if low && !high {
                    Precision::Low
                } else {
                    Precision::High
                };
                if low && high {
                    self.dual.insert(v);
                }
                self.values.insert(v, p);
            }
        }
    }

    /// Positional nodes that build or carry Cos/Sin tables are the rotary chain: the seeds, what
    /// feeds them (up to the integer and constant leaves), and what carries them to their
    /// readers.
    fn label_rotary(&mut self, model: &Model) {
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

fn blocked(n: &onnx_rewrite_ir::Node, options: &Options) -> Option<Reason> {
    if !n.name().is_empty() && options.block_nodes.contains(n.name()) {
        Some(Reason::BlockedNode)
    } else if options.blocks_op(n.domain(), n.op_type()) {
        Some(Reason::BlockedOp)
    } else {
        None
    }
}

/// Whether some EP of the target runs `node` in the target type (or none of them runs it in
/// float32 either: then the tables cannot tell, and the schema decides).
fn kernel_exists(
    model: &Model,
    node: NodeId,
    ports: &Ports,
    types: &Types,
    options: &Options,
) -> bool {
    let n = model.node(node);
    let schema = ports.schema;
    let binding = |low: bool| -> Vec<(&'static str, DataType)> {
        (0..schema.vars.len() as u8)
            .filter_map(|var| {
                let bound = |roles: &[Role],
                             slots: &dyn Fn(usize) -> Option<Slot>,
                             values: &[Option<ValueId>]| {
                    roles
                        .iter()
                        .zip(values)
                        .enumerate()
                        .filter(|(i, _)| slots(*i) == Some(Slot::Var(var)))
                        .map(|(_, (r, v))| (*r, *v))
                        .collect::<Vec<_>>()
                };
                let mut slots = bound(&ports.inputs, &|i| schema.input(i), n.inputs());
                slots.extend(bound(&ports.outputs, &|i| schema.output(i), n.outputs()));
                if slots.iter().any(|(r, _)| *r == Role::Convert) {
                    let dtype = if low {
                        options.target.dtype()
                    } else {
                        DataType::Float
                    };
                    return Some((schema.var_name(var), dtype));
                }
                slots
                    .iter()
                    .find_map(|(_, v)| match v.map(|v| types.of(v)) {
                        Some(Ty::Tensor(d)) => Some((schema.var_name(var), d)),
                        _ => None,
                    })
            })
            .collect()
    };
    let (low, high) = (binding(true), binding(false));
    let eps: &[Ep] = options.eps();
    let find = |ep: &Ep, b: &[(&str, DataType)]| {
        kernels::find(*ep, n.domain(), n.op_type(), schema.since, b).is_some()
    };
    eps.iter().any(|ep| find(ep, &low))
        || (!options.needs_kernel() && !eps.iter().any(|ep| find(ep, &high)))
}

/// Constant operands the target type cannot hold, checked once per value.
#[derive(Default)]
struct RangeCache {
    seen: HashMap<ValueId, Option<String>>,
    /// Constants whose only problem is values that flush to zero, read only as guards, with
    /// the first such value.
    guards: HashMap<ValueId, f32>,
}

impl RangeCache {
    fn violation(
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

/// Variance computations of decomposed LayerNorm/RMSNorm: `Pow(x, 2)` (or `Mul(x, x)`) feeding a
/// mean or sum, and the chain after it (`+ eps`, `Sqrt`, `Reciprocal`, division of a constant)
/// until it meets data again. Squares and sums of activations overflow float16 long before the
/// activations do (65504 is reached by |x| = 256).
fn norm_statistics(model: &Model, plan: &Plan) -> HashSet<NodeId> {
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
