//! The precision of every float32 value: a decision per node, then a forward and a backward
//! walk that settle the nodes whose precision is not theirs to choose.
//!
//! Each node is classified ([`Kind`]):
//! - **Low**: arithmetic on data (MatMul, Softmax, Add of activations...).
//! - **High** with a [`Reason`]: block lists, the rotary chain and integer-derived arithmetic
//!   ([`Origin::Position`](crate::origin::Origin::Position)), Cos/Sin of constants,
//!   normalization statistics, a constant operand the target type cannot hold, an EP without a
//!   kernel.
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
//!
//! The plan's type and its entry point ([`Plan::new`]) are here; the rest is one module per
//! concern: the reasons a node stays float32 ([`reason`]), the per-node policy ([`policy`]), the
//! target EP's kernels it consults ([`ep`]), constant operands out of the target's range
//! ([`constant_range`]), norm statistics ([`norm_statistics`](mod@norm_statistics)), control flow
//! ([`control_flow`]), the two walks ([`solver`]) and what the report shows ([`report`]).

mod constant_range;
mod control_flow;
mod ep;
mod norm_statistics;
mod policy;
mod reason;
mod report;
mod solver;

use rustc_hash::{FxHashMap as HashMap, FxHashSet as HashSet};

use onnx_rewrite_ir::{GraphId, Model, NodeId, ValueId};

use crate::angle::small_angles;
use crate::convert::Target;
use crate::exactness::Exactness;
use crate::options::Options;
use crate::origin::Origins;
use crate::scope::Scope;
use crate::types::Types;

use constant_range::RangeCache;
pub(crate) use control_flow::Flow;
use norm_statistics::norm_statistics;
pub(crate) use policy::{Kind, NodePlan, numerics, onnx_opset};
pub(crate) use reason::Reason;

#[derive(Clone, Copy, Debug, PartialEq, Eq, Hash, PartialOrd, Ord)]
pub enum Precision {
    Low,
    High,
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
    /// Small constants read only as guards (see `is_guard` in [`constant_range`]) whose nonzero
    /// values flush to zero in the target, with the first such value: converted with those
    /// values raised to the target's smallest positive value, so that the guard stays nonzero.
    pub guards: HashMap<ValueId, f32>,
    /// The model's ONNX opset, for the op table ([`onnx_opset`]).
    opset: i64,
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
}
