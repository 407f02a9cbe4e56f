//! An expert as a per-token program, and the interpreter that reads it out of a graph.
//!
//! Every exporter writes an expert's MLP differently (`Gemm` with `transB`, `MatMul` with a
//! pre-transposed initializer, a batched `MatMul` of gathered `[E, out, in]` weights against an
//! unsqueezed column, a `Concat` of per-expert segments), but what it computes is the same: a
//! function of one token's features that every row gets independently. The interpreter walks
//! back from an expert's output to its token rows and accepts only operations that act row by
//! row (matrix products with a constant right-hand side, elementwise operations with constants
//! that broadcast over rows, slices of the feature axis); the result is a [`Program`] that
//! can be run on all tokens at once. Anything else is a reason, not a guess.

use onnx_rewrite_facts::DataType;
use onnx_rewrite_ir::{Model, ValueId};
use onnx_rewrite_proto::AttributeProto;
use rustc_hash::FxHashMap as HashMap;

use crate::graph::{Scope, input, int_attr, ints_attr};
use crate::tensor::ConstExpr;

/// Why an expert's computation is not read as a per-token program. `at` names where reading
/// stopped: the node, or the value in quotes when no node computes it.
#[derive(Debug, Clone, PartialEq, Eq, thiserror::Error)]
pub(crate) enum ExpertError {
    #[error("the expert's output does not depend on its tokens")]
    OutputIgnoresTokens,
    #[error("the expert reads no token rows")]
    NoTokenRows,
    #[error("{at} was expected to depend on the tokens")]
    ExpectedTokens { at: String },
    #[error("the expert body is deeper than the pass follows")]
    TooDeep,
    #[error("'{value}' is neither a constant nor computed from the tokens")]
    Unknown { value: String },
    #[error("{at} is not an operation the pass can run on every token")]
    Unsupported { at: String },
    #[error("{op} without input")]
    NoInput { op: &'static str },
    #[error("a constant has no shape")]
    ShapelessConstant,
    #[error(
        "{at} combines the tokens with a constant of shape {dims:?}, which does not broadcast over tokens"
    )]
    ConstantBroadcast { at: String, dims: Vec<i64> },
    #[error("unusable Split axis")]
    SplitAxis,
    #[error("{at} splits another axis than the features")]
    SplitsOtherAxis { at: String },
    #[error("no slot")]
    NoSlot,
    #[error("{at}: part widths unknown")]
    PartWidths { at: String },
    #[error("{at}: part width unknown")]
    PartWidth { at: String },
    #[error("missing weight")]
    MissingWeight,
    #[error("{at} multiplies the tokens by a weight that is not a constant")]
    WeightNotConstant { at: String },
    #[error("{at} multiplies the tokens by a weight of shape {dims:?}, not a matrix")]
    WeightNotMatrix { at: String, dims: Option<Vec<i64>> },
    #[error("{at} has transA, alpha or beta the pass does not fold")]
    GemmAttributes { at: String },
    #[error("{at}: the bias is not a constant")]
    BiasNotConstant { at: String },
    #[error("{at}: a bias of shape {dims:?} does not broadcast over tokens")]
    BiasBroadcast { at: String, dims: Vec<i64> },
    #[error("{at} is not a constant slice of the features")]
    NotFeatureSlice { at: String },
}

/// An operand of a step: an earlier step's result, a constant, or a missing optional input.
#[derive(Clone, Debug, PartialEq, Eq, Hash)]
pub(crate) enum Arg {
    Step(usize),
    Const(ConstExpr),
    Missing,
}

/// One operation of an expert, on `[rows, features]` values.
#[derive(Clone, Debug, PartialEq)]
pub(crate) enum Step {
    /// The token rows, `[rows, hidden]`.
    Input,
    /// `x @ w` with `w: [in, out]` constant.
    Linear { x: usize, w: ConstExpr },
    /// An elementwise operator, attributes as the graph had them; constants broadcast over rows.
    Elementwise {
        op: String,
        attributes: Vec<AttributeProto>,
        args: Vec<Arg>,
    },
    /// Features `start, start + step, ...` below `end` of the last axis.
    Slice {
        x: usize,
        start: i64,
        end: i64,
        step: i64,
    },
}

/// An expert's computation, steps in dependency order; `output` is the expert's result.
#[derive(Clone, Debug, PartialEq)]
pub(crate) struct Program {
    pub steps: Vec<Step>,
    pub output: usize,
}

impl Program {
    /// Multiply-adds of the linear layers per token, times two.
    pub(crate) fn flops_per_token(&self, model: &Model) -> u64 {
        self.steps
            .iter()
            .filter_map(|s| match s {
                Step::Linear { w, .. } => w.dims(model),
                _ => None,
            })
            .map(|d| {
                2 * d
                    .iter()
                    .map(|x| u64::try_from(*x).unwrap_or(0))
                    .product::<u64>()
            })
            .sum()
    }

    /// The width of the last linear layer's input (the "intermediate size" of an MLP).
    pub(crate) fn intermediate(&self, model: &Model) -> Option<i64> {
        self.steps.iter().rev().find_map(|s| match s {
            Step::Linear { w, .. } => w.dims(model)?.first().copied(),
            _ => None,
        })
    }

    /// Every constant of the program, in step order.
    pub(crate) fn constants(&self) -> impl Iterator<Item = &ConstExpr> {
        self.steps.iter().flat_map(|s| {
            let consts: Vec<&ConstExpr> = match s {
                Step::Linear { w, .. } => vec![w],
                Step::Elementwise { args, .. } => args
                    .iter()
                    .filter_map(|a| match a {
                        Arg::Const(c) => Some(c),
                        _ => None,
                    })
                    .collect(),
                Step::Input | Step::Slice { .. } => Vec::new(),
            };
            consts
        })
    }

    /// The linear layers' weights, in step order.
    pub(crate) fn weights(&self) -> impl Iterator<Item = &ConstExpr> {
        self.steps.iter().filter_map(|s| match s {
            Step::Linear { w, .. } => Some(w),
            _ => None,
        })
    }

    /// The same program with every expert slice `from` of a stack re-pointed at `to`.
    pub(crate) fn reindexed(&self, from: i64, to: i64) -> Program {
        let steps = self
            .steps
            .iter()
            .map(|s| match s {
                Step::Linear { x, w } => Step::Linear {
                    x: *x,
                    w: w.reindexed(from, to),
                },
                Step::Elementwise {
                    op,
                    attributes,
                    args,
                } => Step::Elementwise {
                    op: op.clone(),
                    attributes: attributes.clone(),
                    args: args
                        .iter()
                        .map(|a| match a {
                            Arg::Const(c) => Arg::Const(c.reindexed(from, to)),
                            other => other.clone(),
                        })
                        .collect(),
                },
                other => other.clone(),
            })
            .collect();
        Program {
            steps,
            output: self.output,
        }
    }

    /// Whether two programs differ only in the data of their constants (same operations, same
    /// constant shapes), so that their weights can be stacked.
    pub(crate) fn same_structure(&self, other: &Program, model: &Model) -> bool {
        let dims = |c: &ConstExpr| c.dims(model);
        self.output == other.output
            && self.steps.len() == other.steps.len()
            && self
                .steps
                .iter()
                .zip(&other.steps)
                .all(|(a, b)| match (a, b) {
                    (Step::Linear { x: xa, w: wa }, Step::Linear { x: xb, w: wb }) => {
                        xa == xb && dims(wa) == dims(wb)
                    }
                    (
                        Step::Elementwise {
                            op: oa,
                            attributes: aa,
                            args: ra,
                        },
                        Step::Elementwise {
                            op: ob,
                            attributes: ab,
                            args: rb,
                        },
                    ) => {
                        oa == ob
                            && aa == ab
                            && ra.len() == rb.len()
                            && ra.iter().zip(rb).all(|(p, q)| match (p, q) {
                                (Arg::Const(p), Arg::Const(q)) => dims(p) == dims(q),
                                _ => p == q,
                            })
                    }
                    _ => a == b,
                })
    }
}

/// Elementwise operators of one input (attributes kept as they are). Which elementwise ops the
/// pass replays over every token is its own choice, a subset of the op table's
/// `Form::Elementwise` (a test checks it is one): not Floor, Tan, IsNaN...
const UNARY: &[&str] = &[
    "Sigmoid",
    "Tanh",
    "Relu",
    "Gelu",
    "Erf",
    "Exp",
    "Log",
    "Neg",
    "Abs",
    "Sqrt",
    "Reciprocal",
    "Softplus",
    "Softsign",
    "LeakyRelu",
    "Elu",
    "Selu",
    "Celu",
    "HardSigmoid",
    "HardSwish",
    "Mish",
    "ThresholdedRelu",
    "Sin",
    "Cos",
];

/// Elementwise operators of two inputs (numpy broadcasting).
const BINARY: &[&str] = &["Add", "Sub", "Mul", "Div", "Pow", "Max", "Min"];

/// Where the expert's computation selects per-expert data by the routing, and which expert to
/// read it as: the batched form's gathered weight stacks and the grouped form's segments.
#[derive(Clone, Copy, Debug)]
pub(crate) struct Dispatch {
    pub expert: i64,
    pub experts: i64,
    /// The router's top-k indices: a gather is a dispatch only when its ids come from them.
    pub router_indices: ValueId,
}

/// The source `[tokens, hidden]` tensor whose rows `value` holds (gathered, permuted or
/// repeated rows of it), or `value` itself.
pub(crate) fn row_source(scope: &mut Scope<'_>, mut value: ValueId) -> ValueId {
    for _ in 0..16 {
        let Some(node) = scope.producer(value) else {
            return value;
        };
        if !node.domain().is_empty() {
            return value;
        }
        let data = input(node, 0);
        let next = match node.op_type() {
            "Identity" => data,
            "Gather" if int_attr(node, "axis", 0) == Some(0) => {
                data.filter(|d| scope.facts.rank(*d) == Some(2))
            }
            "GatherND" if int_attr(node, "batch_dims", 0) == Some(0) => data.filter(|d| {
                scope.facts.rank(*d) == Some(2)
                    && input(node, 1).is_some_and(|i| scope.facts.known_dim(i, -1) == Some(1))
            }),
            "Reshape" => data.and_then(|d| reshape_rows_of(scope, value, d)),
            _ => None,
        };
        match next {
            Some(v) => value = v,
            None => return value,
        }
    }
    value
}

/// The rank-2 tensor whose rows a `Reshape` to `[-1, hidden]` lists: its input when that is
/// `[rows, hidden]` already, or `x` of a repeat-interleave `Tile|Expand(Unsqueeze(x, 1))`.
fn reshape_rows_of(scope: &mut Scope<'_>, out: ValueId, data: ValueId) -> Option<ValueId> {
    let hidden = scope.facts.known_dim(out, -1)?;
    if scope.facts.rank(out) != Some(2) {
        return None;
    }
    if scope.facts.rank(data) == Some(2) && scope.facts.known_dim(data, -1) == Some(hidden) {
        return Some(data);
    }
    let repeat = scope
        .op(data, "Tile")
        .or_else(|| scope.op(data, "Expand"))?;
    let unsqueeze = scope.op(input(repeat, 0)?, "Unsqueeze")?;
    let x = input(unsqueeze, 0)?;
    let axes = input(unsqueeze, 1)
        .and_then(|a| scope.facts.ints(a))
        .or_else(|| ints_attr(unsqueeze, "axes"))?;
    let repeated = scope.facts.shape_dims(data)?;
    let x_dims = scope.facts.shape_dims(x)?;
    // [T, H] → [T, 1, H] → [T, k, H] → [T·k, H]: the rows of x, each k times in a row.
    (axes == [1]
        && repeated.len() == 3
        && x_dims.len() == 2
        && repeated[2].known() == Some(hidden)
        && x_dims[1].known() == Some(hidden)
        && scope.facts.same(repeated[0], x_dims[0]))
    .then_some(x)
}

/// Reads one expert's program out of the graph.
pub(crate) struct Interpreter<'a, 'm> {
    scope: &'a mut Scope<'m>,
    /// The token matrix whose rows are the expert's input.
    tokens: ValueId,
    dispatch: Option<Dispatch>,
    memo: HashMap<ValueId, Arg>,
    steps: Vec<Step>,
    input: Option<usize>,
    /// The graph values read as the expert's input rows.
    pub rows: Vec<ValueId>,
    /// Dispatch sites met: gathered expert weights, and per-expert segments.
    gathers: usize,
    segments: usize,
}

/// What the interpreter read: the program, the graph values it took as token rows, and the
/// dispatch sites it met (a batched body has gathers, a grouped body segments).
pub(crate) struct Reading {
    pub program: Program,
    pub rows: Vec<ValueId>,
    pub gathers: usize,
    pub segments: usize,
}

/// How deep the interpreter follows one expert body.
const MAX_DEPTH: usize = 256;

impl<'a, 'm> Interpreter<'a, 'm> {
    pub(crate) fn new(
        scope: &'a mut Scope<'m>,
        tokens: ValueId,
        dispatch: Option<Dispatch>,
    ) -> Self {
        Self {
            scope,
            tokens,
            dispatch,
            memo: HashMap::default(),
            steps: Vec::new(),
            input: None,
            rows: Vec::new(),
            gathers: 0,
            segments: 0,
        }
    }

    /// The program computing `output` from the token rows.
    pub(crate) fn program(mut self, output: ValueId) -> Result<Reading, ExpertError> {
        let arg = self.arg(output, 0)?;
        let Arg::Step(out) = arg else {
            return Err(ExpertError::OutputIgnoresTokens);
        };
        if self.input.is_none() {
            return Err(ExpertError::NoTokenRows);
        }
        Ok(Reading {
            program: Program {
                steps: self.steps,
                output: out,
            },
            rows: self.rows,
            gathers: self.gathers,
            segments: self.segments,
        })
    }

    fn push(&mut self, step: Step) -> Arg {
        self.steps.push(step);
        Arg::Step(self.steps.len() - 1)
    }

    fn describe(&self, value: ValueId) -> String {
        match self.scope.producer_id(value) {
            Some(n) => self.scope.model.describe_node(n),
            None => format!("'{}'", self.scope.model.value(value).name()),
        }
    }

    fn step_arg(&mut self, value: ValueId, depth: usize) -> Result<usize, ExpertError> {
        match self.arg(value, depth)? {
            Arg::Step(s) => Ok(s),
            _ => Err(ExpertError::ExpectedTokens {
                at: self.describe(value),
            }),
        }
    }

    fn arg(&mut self, value: ValueId, depth: usize) -> Result<Arg, ExpertError> {
        if depth > MAX_DEPTH {
            return Err(ExpertError::TooDeep);
        }
        if let Some(a) = self.memo.get(&value) {
            return Ok(a.clone());
        }
        let a = self.arg_uncached(value, depth)?;
        self.memo.insert(value, a.clone());
        Ok(a)
    }

    fn arg_uncached(&mut self, value: ValueId, depth: usize) -> Result<Arg, ExpertError> {
        if row_source(self.scope, value) == self.tokens && self.scope.facts.rank(value) == Some(2) {
            self.rows.push(value);
            if let Some(i) = self.input {
                return Ok(Arg::Step(i));
            }
            let a = self.push(Step::Input);
            if let Arg::Step(i) = a {
                self.input = Some(i);
            }
            return Ok(a);
        }
        if let Some(c) = self.dispatched(value) {
            return Ok(Arg::Const(c));
        }
        if let Some(c) = ConstExpr::of(self.scope, value) {
            return Ok(Arg::Const(c));
        }
        let Some(node) = self.scope.producer(value) else {
            return Err(ExpertError::Unknown {
                value: self.scope.model.value(value).name().to_owned(),
            });
        };
        let at = self.describe(value);
        let unsupported = || Err(ExpertError::Unsupported { at: at.clone() });
        if !node.domain().is_empty() {
            return unsupported();
        }
        let op = node.op_type();
        let operand = |i: usize| input(node, i);
        let d = depth + 1;
        match op {
            "Identity" => self.arg(
                operand(0).ok_or(ExpertError::NoInput { op: "Identity" })?,
                d,
            ),
            "MatMul" => {
                let x =
                    self.step_arg(operand(0).ok_or(ExpertError::NoInput { op: "MatMul" })?, d)?;
                let w = self.constant_matrix(operand(1), value)?;
                Ok(self.push(Step::Linear { x, w }))
            }
            "Gemm" => self.gemm(node, value, d),
            _ if BINARY.contains(&op) || UNARY.contains(&op) || op == "Clip" || op == "Cast" => {
                if op == "Cast" && !float_cast(node) {
                    return unsupported();
                }
                let mut args = Vec::with_capacity(node.inputs().len());
                for slot in node.inputs() {
                    args.push(match slot {
                        Some(v) => self.arg(*v, d)?,
                        None => Arg::Missing,
                    });
                }
                if !args.iter().any(|a| matches!(a, Arg::Step(_))) {
                    return unsupported();
                }
                for a in &args {
                    if let Arg::Const(c) = a {
                        let dims = c
                            .dims(self.scope.model)
                            .ok_or(ExpertError::ShapelessConstant)?;
                        let scalar_only = op == "Clip";
                        let rows_broadcast = match dims.len() {
                            0 => true,
                            1 => !scalar_only || dims[0] == 1,
                            2 => dims[0] == 1 && (!scalar_only || dims[1] == 1),
                            _ => false,
                        };
                        if !rows_broadcast {
                            return Err(ExpertError::ConstantBroadcast {
                                at: at.clone(),
                                dims,
                            });
                        }
                    }
                }
                Ok(self.push(Step::Elementwise {
                    op: op.to_owned(),
                    attributes: node.attributes.iter().map(|a| a.proto.clone()).collect(),
                    args,
                }))
            }
            "Split" => {
                let x = operand(0).ok_or(ExpertError::NoInput { op: "Split" })?;
                let axis = int_attr(node, "axis", 0).ok_or(ExpertError::SplitAxis)?;
                if self.scope.facts.rank(x) != Some(2) || !(axis == 1 || axis == -1) {
                    return Err(ExpertError::SplitsOtherAxis { at });
                }
                let slot = self.scope.output_index(value).ok_or(ExpertError::NoSlot)? as usize;
                let mut start = 0;
                for earlier in &node.outputs()[..slot] {
                    start += earlier
                        .and_then(|v| self.scope.facts.known_dim(v, -1))
                        .ok_or_else(|| ExpertError::PartWidths { at: at.clone() })?;
                }
                let width = self
                    .scope
                    .facts
                    .known_dim(value, -1)
                    .ok_or_else(|| ExpertError::PartWidth { at: at.clone() })?;
                let x = self.step_arg(x, d)?;
                Ok(self.push(Step::Slice {
                    x,
                    start,
                    end: start + width,
                    step: 1,
                }))
            }
            "Slice" => self.slice(node, value, d),
            "Reshape" => {
                let x = operand(0).ok_or(ExpertError::NoInput { op: "Reshape" })?;
                let target = operand(1).and_then(|s| self.scope.facts.ints(s));
                let width = self.scope.facts.known_dim(x, -1);
                match (target.as_deref(), width, self.scope.facts.rank(x)) {
                    (Some([rows, w]), Some(width), Some(2))
                        if (*rows == -1 || *rows == 0) && *w == width =>
                    {
                        self.arg(x, d)
                    }
                    _ => unsupported(),
                }
            }
            "Squeeze" => self
                .batched_product(node, value, d)
                .unwrap_or_else(unsupported),
            "Concat" => self
                .grouped_segments(node, value, d)
                .unwrap_or_else(unsupported),
            _ => unsupported(),
        }
    }

    /// A constant `[in, out]` matrix operand.
    fn constant_matrix(
        &mut self,
        w: Option<ValueId>,
        at: ValueId,
    ) -> Result<ConstExpr, ExpertError> {
        let w = w.ok_or(ExpertError::MissingWeight)?;
        let c = ConstExpr::of(self.scope, w).ok_or_else(|| ExpertError::WeightNotConstant {
            at: self.describe(at),
        })?;
        match c.dims(self.scope.model) {
            Some(d) if d.len() == 2 => Ok(c),
            dims => Err(ExpertError::WeightNotMatrix {
                at: self.describe(at),
                dims,
            }),
        }
    }

    fn gemm(
        &mut self,
        node: &onnx_rewrite_ir::Node,
        value: ValueId,
        d: usize,
    ) -> Result<Arg, ExpertError> {
        let trans_a = int_attr(node, "transA", 0);
        let trans_b = int_attr(node, "transB", 0);
        let alpha = crate::graph::float_attr(node, "alpha", 1.0);
        let beta = crate::graph::float_attr(node, "beta", 1.0);
        if trans_a != Some(0) || alpha != Some(1.0) || beta != Some(1.0) || trans_b.is_none() {
            return Err(ExpertError::GemmAttributes {
                at: self.describe(value),
            });
        }
        let x = self.step_arg(
            input(node, 0).ok_or(ExpertError::NoInput { op: "Gemm" })?,
            d,
        )?;
        let mut w = self.constant_matrix(input(node, 1), value)?;
        if trans_b == Some(1) {
            w = w.transposed();
        }
        let linear = self.push(Step::Linear { x, w });
        let Some(c) = input(node, 2) else {
            return Ok(linear);
        };
        let bias = ConstExpr::of(self.scope, c).ok_or_else(|| ExpertError::BiasNotConstant {
            at: self.describe(value),
        })?;
        let dims = bias.dims(self.scope.model).unwrap_or_default();
        if dims.len() > 2 || (dims.len() == 2 && dims[0] != 1) {
            return Err(ExpertError::BiasBroadcast {
                at: self.describe(value),
                dims,
            });
        }
        Ok(self.push(Step::Elementwise {
            op: "Add".into(),
            attributes: Vec::new(),
            args: vec![linear, Arg::Const(bias)],
        }))
    }

    fn slice(
        &mut self,
        node: &onnx_rewrite_ir::Node,
        value: ValueId,
        d: usize,
    ) -> Result<Arg, ExpertError> {
        let x = input(node, 0).ok_or(ExpertError::NoInput { op: "Slice" })?;
        let consts: Vec<Option<Vec<i64>>> = (1..5)
            .map(|i| input(node, i).and_then(|v| self.scope.facts.ints(v)))
            .collect();
        let at = self.describe(value);
        let bad = || ExpertError::NotFeatureSlice { at: at.clone() };
        let (Some(starts), Some(ends)) = (&consts[0], &consts[1]) else {
            return Err(bad());
        };
        let axes = consts[2].clone().unwrap_or_else(|| vec![0]);
        let steps = consts[3].clone().unwrap_or_else(|| vec![1]);
        if self.scope.facts.rank(x) != Some(2)
            || starts.len() != 1
            || ends.len() != 1
            || axes.len() != 1
            || steps.len() != 1
            || !(axes[0] == 1 || axes[0] == -1)
            || steps[0] <= 0
        {
            return Err(bad());
        }
        let width = self.scope.facts.known_dim(x, -1).ok_or_else(bad)?;
        let clamp = |v: i64| {
            let v = if v < 0 { v.saturating_add(width) } else { v };
            v.clamp(0, width)
        };
        let (start, end) = (clamp(starts[0]), clamp(ends[0]));
        let x = self.step_arg(x, d)?;
        Ok(self.push(Step::Slice {
            x,
            start,
            end: end.max(start),
            step: steps[0],
        }))
    }

    /// Under a dispatch, a per-row gather of an expert stack `W[E, ...]` by routing-derived ids
    /// reads `W[expert]` for every row.
    fn dispatched(&mut self, value: ValueId) -> Option<ConstExpr> {
        let dispatch = self.dispatch?;
        let node = self.scope.producer(value)?;
        let (data, ids) = (input(node, 0)?, input(node, 1)?);
        let per_row = match node.op_type() {
            "Gather" => int_attr(node, "axis", 0) == Some(0),
            "GatherND" => {
                int_attr(node, "batch_dims", 0) == Some(0)
                    && self.scope.facts.known_dim(ids, -1) == Some(1)
            }
            _ => false,
        };
        if !per_row || !node.domain().is_empty() {
            return None;
        }
        let stack = ConstExpr::of(self.scope, data)?;
        let dims = stack.dims(self.scope.model)?;
        if dims.first() != Some(&dispatch.experts)
            || !self.scope.depends_on(ids, dispatch.router_indices)
        {
            return None;
        }
        self.gathers += 1;
        Some(ConstExpr::Index {
            of: Box::new(stack),
            index: dispatch.expert,
        })
    }

    /// The batched form's matrix products of gathered weights, one per row:
    /// `Squeeze(MatMul(W[ids], Unsqueeze(h, -1)), -1)` is `h @ W[e]ᵀ` and
    /// `Squeeze(MatMul(Unsqueeze(h, 1), W[ids]), 1)` is `h @ W[e]`.
    fn batched_product(
        &mut self,
        squeeze: &onnx_rewrite_ir::Node,
        value: ValueId,
        d: usize,
    ) -> Option<Result<Arg, ExpertError>> {
        let axes = |s: &mut Self, n: &onnx_rewrite_ir::Node| {
            input(n, 1)
                .and_then(|a| s.scope.facts.ints(a))
                .or_else(|| ints_attr(n, "axes"))
        };
        let matmul = self.scope.op(input(squeeze, 0)?, "MatMul")?;
        let squeezed = axes(self, squeeze)?;
        if self.scope.facts.rank(value) != Some(2) {
            return None;
        }
        let (a, b) = (input(matmul, 0)?, input(matmul, 1)?);
        // Column form: the weight on the left, the token as a column on the right.
        if let Some(column) = self.scope.op(b, "Unsqueeze")
            && matches!(squeezed.as_slice(), [-1] | [2])
            && matches!(axes(self, column).as_deref(), Some([-1] | [2]))
            && let Some(w) = self.dispatched(a)
        {
            let h = input(column, 0)?;
            return Some(self.step_arg(h, d + 1).map(|x| {
                self.push(Step::Linear {
                    x,
                    w: w.transposed(),
                })
            }));
        }
        // Row form: the token as a row on the left, the weight on the right.
        if let Some(row) = self.scope.op(a, "Unsqueeze")
            && matches!(squeezed.as_slice(), [1] | [-2])
            && matches!(axes(self, row).as_deref(), Some([1] | [-2]))
            && let Some(w) = self.dispatched(b)
        {
            let h = input(row, 0)?;
            return Some(
                self.step_arg(h, d + 1)
                    .map(|x| self.push(Step::Linear { x, w })),
            );
        }
        None
    }

    /// The grouped form's per-expert segments: `Concat(axis 0)` of E products
    /// `MatMul(Gather(A, Range(start_e, end_e)), W_e)`, the segment bounds counted from the
    /// routing (`CumSum` of a histogram of the expert ids). Under a dispatch, expert e's rows
    /// are the rows of its segment: the product is `A @ W_e` on every row.
    fn grouped_segments(
        &mut self,
        concat: &onnx_rewrite_ir::Node,
        _value: ValueId,
        d: usize,
    ) -> Option<Result<Arg, ExpertError>> {
        let dispatch = self.dispatch?;
        if int_attr(concat, "axis", 0) != Some(0)
            || i64::try_from(concat.inputs().len()).ok()? != dispatch.experts
        {
            return None;
        }
        let mut rows_of = None;
        let mut chosen = None;
        for (e, part) in concat.inputs().iter().enumerate() {
            let matmul = self.scope.op((*part)?, "MatMul")?;
            let gather = self.scope.op(input(matmul, 0)?, "Gather")?;
            if int_attr(gather, "axis", 0) != Some(0) {
                return None;
            }
            let range = self.scope.op(input(gather, 1)?, "Range")?;
            let counted = range.inputs().iter().flatten().all(|bound| {
                self.scope
                    .find_ancestor(*bound, &mut |v| {
                        self.scope.op(v, "CumSum").is_some()
                            || self.scope.facts.constant(v).is_some()
                    })
                    .is_some()
                    && (self.scope.facts.constant(*bound).is_some()
                        || self.scope.depends_on(*bound, dispatch.router_indices))
            });
            let a = input(gather, 0)?;
            if !counted || rows_of.is_some_and(|r| r != a) {
                return None;
            }
            rows_of = Some(a);
            if e as i64 == dispatch.expert {
                chosen = Some(input(matmul, 1)?);
            }
        }
        self.segments += 1;
        let (a, w) = (rows_of?, chosen?);
        Some((|| {
            let x = self.step_arg(a, d + 1)?;
            let w = self.constant_matrix(Some(w), a)?;
            Ok(self.push(Step::Linear { x, w }))
        })())
    }
}

/// A `Cast` to a floating-point type (casts to integers are not expert math).
fn float_cast(node: &onnx_rewrite_ir::Node) -> bool {
    int_attr(node, "to", 0)
        .and_then(|t| DataType::try_from(i32::try_from(t).ok()?).ok())
        .is_some_and(|t| {
            matches!(
                t,
                DataType::Float | DataType::Float16 | DataType::Bfloat16 | DataType::Double
            )
        })
}

#[cfg(test)]
mod tests {
    use super::{BINARY, UNARY};
    use onnx_rewrite_ops::{Failure, Form, failure, form, lookup};

    /// The ops the pass replays are elementwise at every opset from 13 (the dense form's least)
    /// that has them (Gelu came with 20), and the binary ones fail only where they do not
    /// broadcast or, Div and Pow, on integers.
    #[test]
    fn replayed_ops_are_elementwise_in_the_op_table() {
        for op in UNARY.iter().chain(BINARY) {
            assert!(lookup("", op, 24).is_some(), "{op}");
            for opset in (13..=24).filter(|o| lookup("", op, *o).is_some()) {
                assert_eq!(form("", op, opset), Form::Elementwise, "{op}-{opset}");
                if BINARY.contains(op) && !matches!(*op, "Div" | "Pow") {
                    assert_eq!(failure("", op, opset), Failure::Broadcast, "{op}-{opset}");
                }
            }
        }
    }
}
