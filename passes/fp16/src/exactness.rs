//! Which integer-derived floats must stay exact: the float32 positions and sizes
//! ([`Origin::Position`]) whose numbers reach something that needs every unit of them.
//!
//! A float computed from integers loses exactness in float16 above 2048 (bfloat16: 256). That
//! matters only where the value is read back as a number in its own right:
//! - converted to an integer or compared (`Cast` to int64, `Less`, `ArgMax`): 4097 reads as 4096;
//! - reduced modulo 2π by `Cos`/`Sin`/`Tan` (the rotary angles; not a window function's
//!   angle that [`crate::angle`] proves small);
//! - subtracted from another position (catastrophic cancellation: 4097 − 4095 = 0);
//! - read by a slot that keeps float32 by schema (`Range` before opset 27, Resize `scales`), by
//!   a control-flow node or an op without a schema;
//! - returned as a graph output, or widened to double, while it holds whole numbers (a
//!   length, a position).
//!
//! A position that only meets data (a grid coordinate `−1 + n·2/W` scaled by `theta`, a mask
//! added to scores) is stored in the target type by that data anyway: it converts like data.
//! The walk goes backward (readers first) and through `If` bodies; it only grows, so it runs
//! to a fixed point.

use rustc_hash::FxHashSet as HashSet;

use onnx_rewrite_ir::{GraphOwner, Model, NodeId, Use, ValueId};
use onnx_rewrite_ops::{Numerics, Reads};
use onnx_rewrite_proto::tensor_proto::DataType;

use crate::constants;
use crate::convert::Target;
use crate::origin::{Origin, Origins};
use crate::plan::{numerics, onnx_opset};
use crate::ports::{Role, ports};
use crate::scope::Scope;
use crate::types::{Ty, Types};

pub(crate) struct Exactness {
    exact: HashSet<ValueId>,
    /// Float values that hold whole numbers (see [`integral_values`]).
    integral: HashSet<ValueId>,
}

impl Exactness {
    /// Whether `value` is a position whose every unit counts.
    pub fn needs(&self, value: ValueId) -> bool {
        self.exact.contains(&value)
    }

    /// Whether `value` holds whole numbers only: an integer or boolean tensor, a small
    /// constant of whole numbers, or a float computed from those by whole-number arithmetic.
    pub fn holds_whole_numbers(&self, model: &Model, types: &Types, value: ValueId) -> bool {
        whole(model, types, &self.integral, value)
    }

    pub fn infer(
        model: &Model,
        scope: &Scope,
        types: &Types,
        origins: &Origins,
        small_angles: &HashSet<NodeId>,
        target: Target,
    ) -> Self {
        let walk = Walk {
            model,
            types,
            origins,
            small_angles,
            target,
            opset: onnx_opset(model),
            integral: integral_values(model, scope, types),
        };
        let mut exactness = Exactness {
            exact: HashSet::default(),
            integral: HashSet::default(),
        };
        // The global order puts a body right before its node, so one backward sweep sees
        // almost everything; a Loop or an `If` read inside a later body may need another.
        for _ in 0..16 {
            let mut changed = false;
            for &node in scope.order.iter().rev() {
                for v in model.node(node).outputs().iter().flatten() {
                    if walk.is_position(*v)
                        && !exactness.exact.contains(v)
                        && model
                            .value(*v)
                            .uses()
                            .iter()
                            .any(|u| walk.demands(&exactness, *v, *u))
                    {
                        exactness.exact.insert(*v);
                        changed = true;
                    }
                }
            }
            if !changed {
                break;
            }
        }
        exactness.integral = walk.integral;
        exactness
    }
}

struct Walk<'a> {
    model: &'a Model,
    types: &'a Types,
    origins: &'a Origins,
    small_angles: &'a HashSet<NodeId>,
    target: Target,
    /// The model's ONNX opset, for the op table.
    opset: i64,
    /// Float values that hold whole numbers.
    integral: HashSet<ValueId>,
}

impl Walk<'_> {
    fn is_position(&self, value: ValueId) -> bool {
        self.types.of(value).is(DataType::Float) && self.origins.of(value) == Origin::Position
    }

    /// Whether a use of the position `value` needs it exact.
    fn demands(&self, exactness: &Exactness, value: ValueId, the_use: Use) -> bool {
        let model = self.model;
        let (reader, slot) = match the_use {
            Use::Node { node, input } => (node, input as usize),
            Use::GraphOutput { graph, index } => {
                // A graph output is float32 by type: a fraction (a window) may leave in the
                // target type and be cast back, a whole number (a length, a position) may not.
                if graph == model.main() {
                    return self.integral.contains(&value);
                }
                return match model.graph(graph).owner() {
                    GraphOwner::Node { node, .. }
                        if model.node(node).domain().is_empty()
                            && model.node(node).op_type() == "If" =>
                    {
                        model
                            .node(node)
                            .outputs()
                            .get(index as usize)
                            .copied()
                            .flatten()
                            .is_none_or(|out| exactness.needs(out))
                    }
                    _ => true,
                };
            }
        };
        let n = model.node(reader);
        if n.subgraphs().next().is_some() {
            return true;
        }
        let op = n.op_type();
        let standard = n.domain().is_empty();
        if numerics(n, self.opset) == Numerics::Periodic && !self.small_angles.contains(&reader) {
            return true;
        }
        if standard
            && op == "Sub"
            && n.inputs()
                .iter()
                .all(|v| v.is_some_and(|v| self.origins.of(v) == Origin::Position))
        {
            return true;
        }
        let Ok(roles) = ports(model, reader, self.types, self.target) else {
            return true;
        };
        match roles.inputs.get(slot) {
            Some(Role::Pin) | None => return true,
            // Read for its shape only.
            Some(Role::Any)
                if standard
                    && onnx_rewrite_ops::reads(n.domain(), op, self.opset) == Reads::Shape =>
            {
                return false;
            }
            Some(Role::Convert | Role::Any | Role::Other) => {}
        }
        // An integer or boolean result (a Cast to int64, a comparison, an index) reads the
        // exact number; a double result keeps what it reads, so it needs every unit only of
        // a whole number (a fraction like a scale's 1/√d is rounded like any data); a Cast
        // to float16 or bfloat16 written in the model rounds it on purpose; a float32 result
        // passes the question on.
        let (mut any_float, mut widens, mut counts) = (false, false, false);
        for out in n.outputs().iter().flatten() {
            match self.types.of(*out) {
                Ty::Tensor(DataType::Float) if exactness.needs(*out) => return true,
                Ty::Tensor(DataType::Float | DataType::Float16 | DataType::Bfloat16) => {
                    any_float = true;
                }
                Ty::Tensor(DataType::Double) => widens = true,
                _ => counts = true,
            }
        }
        match (any_float, widens, counts) {
            (true, _, _) => false,
            (false, true, false) => self.integral.contains(&value),
            (false, _, _) => true,
        }
    }
}

fn whole(model: &Model, types: &Types, integral: &HashSet<ValueId>, v: ValueId) -> bool {
    integral.contains(&v)
        || types.of(v).is_integer()
        || types.of(v).is(DataType::Bool)
        || constants::small_floats(model, v, 64)
            .is_some_and(|xs| xs.iter().all(|x| x.fract() == 0.0))
}

/// Float values that hold whole numbers: integers cast to float and what adds, multiplies,
/// rounds, selects or moves them (one forward sweep; the order is topological).
fn integral_values(model: &Model, scope: &Scope, types: &Types) -> HashSet<ValueId> {
    let mut integral = HashSet::default();
    let whole = |integral: &HashSet<ValueId>, v: Option<ValueId>| {
        v.is_some_and(|v| whole(model, types, integral, v))
    };
    for &node in &scope.order {
        let n = model.node(node);
        if !n.domain().is_empty() {
            continue;
        }
        let input = |i: usize| n.inputs().get(i).copied().flatten();
        let all = |integral: &HashSet<ValueId>| {
            !n.inputs().is_empty() && n.inputs().iter().all(|v| whole(integral, *v))
        };
        let holds = match n.op_type() {
            "Floor" | "Ceil" | "Round" => true,
            "Cast" | "CastLike" | "Identity" | "Reshape" | "Squeeze" | "Unsqueeze" | "Flatten"
            | "Expand" | "Transpose" | "Tile" | "Slice" | "Gather" | "GatherElements"
            | "ReduceMax" | "ReduceMin" | "ReduceSum" => whole(&integral, input(0)),
            "Where" => whole(&integral, input(1)) && whole(&integral, input(2)),
            "Add" | "Sub" | "Mul" | "Neg" | "Abs" | "Max" | "Min" | "Relu" | "Concat" | "Range" => {
                all(&integral)
            }
            _ => false,
        };
        if holds {
            for v in n.outputs().iter().flatten() {
                if types.of(*v).is(DataType::Float) {
                    integral.insert(*v);
                }
            }
        }
    }
    integral
}
