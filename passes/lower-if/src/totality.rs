//! Totality: can this node fail at run time on inputs the parent graph can produce?
//!
//! In the `Where` form the branch that was not taken still runs, on inputs meant for the other
//! branch. A condition often guards exactly the op that would fail (`if n > 0: x[idx]`, the
//! legacy exporter's `If` around a `Squeeze` of a dim that may not be 1), so every node of both
//! branches must be shown unable to fail, using what the parent graph guarantees: the facts of
//! the graph the branches were copied into (whose own ops run whatever the condition), never an
//! assumption that a branch op succeeds.
//!
//! The check is a list of ops with what makes each one total; an op not on the list is not
//! shown total. Shape errors count as failures too: an elementwise op broadcasts only dims
//! that are provably equal or 1, a `MatMul`'s inner dims must be provably equal, and so on.
//! Index ops need their indices bounded ([`crate::bounds`]); an integer `Div`/`Mod` needs a
//! divisor with no zero.

use std::fmt;

use onnx_rewrite_facts::{DataType, Dim, Monomial, Shape, normalize_axes, normalize_axis};
use onnx_rewrite_ir::{Model, Node, NodeId, ValueId};
use onnx_rewrite_ops::{Failure, Form};
use rustc_hash::FxHashMap as HashMap;

use crate::bounds::{BoundsAnalysis, Interval, within};
use onnx_rewrite_facts::GraphFacts;

// What the op table knows decides the shape of proof: ops that cannot fail whatever their input
// holds (`onnx_rewrite_ops::is_total`), elementwise ops whose only failure is a broadcast
// (`Failure::Broadcast`), reductions (`Form::Reduction`); the arms below own the other proofs.

/// Checks nodes of one graph against its facts.
pub(crate) struct Totality<'a> {
    model: &'a Model,
    facts: &'a mut GraphFacts,
    bounds: BoundsAnalysis,
    /// Copied value → the value it copies, so that reasons name what the model's author wrote.
    sources: HashMap<ValueId, ValueId>,
}

/// An op, or one of its operands, as a reason names it: `Concat`, `Slice steps`, `Gemm C`.
#[derive(Debug, Clone, PartialEq, Eq)]
pub(crate) struct Operand {
    pub op: String,
    /// Empty when the reason is about the op as a whole.
    pub part: &'static str,
}

impl Operand {
    fn of(n: &Node, part: &'static str) -> Self {
        Self {
            op: n.op_type().to_owned(),
            part,
        }
    }
}

impl fmt::Display for Operand {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        if self.part.is_empty() {
            f.write_str(&self.op)
        } else {
            write!(f, "{} {}", self.op, self.part)
        }
    }
}

/// The indices a range check is about: all of them, or one column of a `GatherND`'s.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub(crate) enum Indices {
    All,
    Column(usize),
}

impl fmt::Display for Indices {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        match self {
            Indices::All => f.write_str("indices"),
            Indices::Column(j) => write!(f, "index column {j}"),
        }
    }
}

/// Why a node is not shown total. Dims and shapes are held as the facts show them (symbols
/// by name), values by the names the model's author wrote.
#[derive(Debug, Clone, PartialEq, Eq, thiserror::Error)]
pub(crate) enum NotTotal {
    #[error("{domain}.{op} is not known to be total")]
    OtherDomain { domain: String, op: String },
    #[error("{op} is not known to be total")]
    UnknownOp { op: String },
    #[error("{op} input {input} is missing")]
    MissingInput { op: String, input: usize },
    #[error("the shape of {op} input {input} ('{name}') is unknown")]
    UnknownShape {
        op: String,
        input: usize,
        name: String,
    },
    #[error("{operand} is missing")]
    MissingOperand { operand: Operand },
    #[error("{operand} is computed at run time")]
    RunTimeOperand { operand: Operand },
    #[error("{operand} is computed from data")]
    DataOperand { operand: Operand },
    #[error("{operand} has a negative element")]
    NegativeElement { operand: Operand },
    #[error("{op} axis {axis} is out of range")]
    AxisOutOfRange { op: String, axis: i64 },
    /// An axis given as an input, whatever its value.
    #[error("{op} axis is out of range")]
    AxisInputOutOfRange { op: String },
    #[error("{op} axes {axes:?} are invalid")]
    InvalidAxes { op: String, axes: Vec<i64> },
    #[error("{op} has no axes")]
    NoAxes { op: String },
    #[error("Transpose perm {perm:?} is invalid")]
    InvalidPerm { perm: Vec<i64> },
    #[error("{operand}: dims {first} and {second} are not shown to broadcast")]
    NotBroadcast {
        operand: Operand,
        first: String,
        second: String,
    },
    #[error("{operand} has a higher rank than its target")]
    HigherRank { operand: Operand },
    #[error("{operand}: dim {dim} is not shown to broadcast to {target}")]
    NotBroadcastTo {
        operand: Operand,
        dim: String,
        target: String,
    },
    #[error("{operand}: {a} and {b} are not shown equal")]
    NotEqual {
        operand: Operand,
        a: String,
        b: String,
    },
    #[error("{op} may reduce an empty axis {axis}")]
    EmptyAxis { op: String, axis: usize },
    #[error("Clip bound is not shown to be a scalar")]
    ClipBound,
    #[error("Tile repeats do not match the rank")]
    TileRepeats,
    #[error("a Cast from or to string can fail on the text")]
    StringCast,
    #[error("the types of a Cast are unknown")]
    CastTypes,
    #[error("integer {op} by a divisor that holds 0")]
    ZeroDivisor { op: String },
    #[error("integer {op} by a divisor not shown to be non-zero")]
    Divisor { op: String },
    #[error("integer Pow with an exponent not shown non-negative")]
    Exponent,
    #[error("MatMul of a scalar")]
    ScalarMatMul,
    #[error("Gemm operand is not 2-D")]
    GemmRank,
    #[error("Reshape has no shape")]
    ReshapeNoShape,
    #[error("the Reshape target is computed from data")]
    ReshapeDataTarget,
    #[error("the Reshape result shape is unknown")]
    ReshapeResult,
    #[error("Reshape {input} -> {output} is not shown to keep the element count")]
    ReshapeCount { input: String, output: String },
    #[error("Squeeze of axis {axis}, whose dim {dim} is not shown to be 1")]
    SqueezeDim { axis: usize, dim: String },
    #[error("Concat has no inputs")]
    ConcatEmpty,
    #[error("Concat inputs of different ranks")]
    ConcatRanks,
    #[error("Split of {elements} elements into {outputs} outputs")]
    SplitOutputs { elements: i64, outputs: i64 },
    #[error("Split sizes are not shown to match the split dim")]
    SplitSizes,
    #[error("a Slice operand is not 1-D")]
    SliceOperandRank,
    #[error("the Slice starts have an unknown length")]
    SliceStarts,
    #[error("the Slice ends are not shown to match the starts")]
    SliceEnds,
    #[error("Slice has more starts than dims")]
    SliceTooManyStarts,
    #[error("Slice steps {steps:?} are invalid")]
    SliceSteps { steps: Vec<i64> },
    #[error("Range delta is not shown non-zero")]
    RangeDelta,
    #[error("TopK k is not a single value")]
    TopKValues,
    #[error("TopK has no k")]
    TopKNoK,
    #[error("TopK k = {k} is not shown to be at most the dim {dim}")]
    TopKTooLarge { k: i64, dim: String },
    #[error("the indices are missing")]
    NoIndices,
    #[error("{op} indices '{indices}' come from data and are not shown to be in range")]
    UnboundedIndices { op: String, indices: String },
    #[error("{op} {indices} in [{lo}, {hi}) are not shown to be within a dim of {size}")]
    IndicesOutOfRange {
        op: String,
        indices: Indices,
        lo: i64,
        hi: String,
        size: String,
    },
    #[error("{op} indices have another rank")]
    IndicesRank { op: String },
    #[error("ScatterElements updates have another rank")]
    ScatterElementsUpdatesRank,
    #[error("{op} indices dim {dim} is not shown within the data's")]
    IndicesDim { op: String, dim: usize },
    #[error("{op} batch_dims is negative")]
    NegativeBatchDims { op: String },
    #[error("{op} indices are a scalar")]
    ScalarIndices { op: String },
    #[error("{op} index depth is unknown or too deep")]
    IndexDepth { op: String },
    #[error("{op} batch_dims exceeds the indices' rank")]
    BatchDims { op: String },
    #[error("ScatterND updates have the wrong rank")]
    ScatterNdUpdatesRank,
}

type Verdict = Result<(), NotTotal>;

impl<'a> Totality<'a> {
    pub(crate) fn new(model: &'a Model, facts: &'a mut GraphFacts) -> Self {
        Self {
            model,
            facts,
            bounds: BoundsAnalysis::default(),
            sources: HashMap::default(),
        }
    }

    /// Names copied values in reasons by the values they copy.
    pub(crate) fn with_sources(mut self, pairs: &[(ValueId, ValueId)]) -> Self {
        self.sources = pairs
            .iter()
            .map(|(source, copy)| (*copy, *source))
            .collect();
        self
    }

    fn name(&self, value: ValueId) -> &str {
        let source = self.sources.get(&value).copied().unwrap_or(value);
        self.model.value(source).name()
    }

    /// `Ok` when `node` cannot fail; else why it is not shown total.
    pub(crate) fn check(&mut self, node: NodeId) -> Verdict {
        let n = self.model.node(node);
        if !n.domain().is_empty() {
            return Err(NotTotal::OtherDomain {
                domain: n.domain().to_owned(),
                op: n.op_type().to_owned(),
            });
        }
        let op = n.op_type();
        let opset = self.opset();
        match op {
            _ if onnx_rewrite_ops::is_total(n.domain(), op, opset) => Ok(()),
            "Cast" | "CastLike" => self.cast(n),
            _ if onnx_rewrite_ops::failure(n.domain(), op, opset) == Failure::Broadcast => {
                self.broadcasting(n)
            }
            "PRelu" => {
                let (x, slope) = (self.shape_of(n, 0)?, self.shape_of(n, 1)?);
                self.unidirectional(&slope, &x, Operand::of(n, "slope"))
            }
            "Div" | "Mod" => {
                self.broadcasting(n)?;
                self.nonzero_divisor(n)
            }
            "Pow" => {
                self.broadcasting(n)?;
                self.integer_power(n)
            }
            "Softmax" | "LogSoftmax" | "Hardmax" | "Flatten" => {
                let rank = self.rank_of(n, 0)?;
                let default = if op != "Flatten" && self.opset() >= 13 {
                    -1
                } else {
                    1
                };
                let axis = self.int_attr(n, "axis").unwrap_or(default);
                // Flatten's axis ranges over [-r, r], the others' over [-r, r).
                let ok = if op == "Flatten" {
                    normalize_axis(axis, rank + 1).is_some()
                } else {
                    normalize_axis(axis, rank).is_some()
                };
                ok.then_some(()).ok_or_else(|| NotTotal::AxisOutOfRange {
                    op: op.to_owned(),
                    axis,
                })
            }
            "CumSum" => {
                let rank = self.rank_of(n, 0)?;
                let axis = self.constant_ints(n, 1, "axis")?;
                match axis.as_slice() {
                    [a] if normalize_axis(*a, rank).is_some() => Ok(()),
                    _ => Err(NotTotal::AxisInputOutOfRange { op: op.to_owned() }),
                }
            }
            "Clip" => {
                for i in 1..3 {
                    if let Some(v) = self.input(n, i)
                        && self.facts.rank(v) != Some(0)
                    {
                        return Err(NotTotal::ClipBound);
                    }
                }
                Ok(())
            }
            _ if let Form::Reduction { axes_input } =
                onnx_rewrite_ops::form(n.domain(), op, opset) =>
            {
                self.reduction(n, axes_input)
            }
            "ArgMax" | "ArgMin" => {
                let shape = self.shape_of(n, 0)?;
                let axis = self.int_attr(n, "axis").unwrap_or(0);
                let axis =
                    normalize_axis(axis, shape.rank()).ok_or_else(|| NotTotal::AxisOutOfRange {
                        op: op.to_owned(),
                        axis,
                    })?;
                self.nonempty(&shape, &[axis], op)
            }
            "MatMul" => self.matmul(n),
            "Gemm" => self.gemm(n),
            "Reshape" => self.reshape(n),
            "Squeeze" => self.squeeze(n),
            "Unsqueeze" => {
                let rank = self.rank_of(n, 0)?;
                let axes = self
                    .axes(n, 1, 13, "axes")?
                    .ok_or_else(|| NotTotal::NoAxes { op: op.to_owned() })?;
                match normalize_axes(&axes, rank + axes.len()) {
                    Some(_) => Ok(()),
                    None => Err(NotTotal::InvalidAxes {
                        op: op.to_owned(),
                        axes,
                    }),
                }
            }
            "Transpose" => {
                let rank = self.rank_of(n, 0)?;
                match n.attribute("perm").map(|a| a.proto.ints.clone()) {
                    None => Ok(()),
                    Some(perm) if perm.len() == rank && normalize_axes(&perm, rank).is_some() => {
                        Ok(())
                    }
                    Some(perm) => Err(NotTotal::InvalidPerm { perm }),
                }
            }
            "Concat" => self.concat(n),
            "Split" => self.split(n),
            "Slice" => self.slice(n),
            "Expand" => {
                let x = self.shape_of(n, 0)?;
                let target = self.shape_operand(n, 1, "shape")?;
                self.broadcast_safe(&[x, target], Operand::of(n, ""))
            }
            "Tile" => {
                let rank = self.rank_of(n, 0)?;
                let repeats = self.shape_operand(n, 1, "repeats")?;
                (repeats.rank() == rank)
                    .then_some(())
                    .ok_or(NotTotal::TileRepeats)
            }
            "ConstantOfShape" => self.shape_operand(n, 0, "shape").map(drop),
            "Range" => self.range(n),
            "TopK" => self.top_k(n),
            "Gather" => self.gather(n),
            "GatherElements" | "ScatterElements" => self.elements(n),
            "GatherND" | "ScatterND" => self.nd(n),
            "LayerNormalization" => {
                let x = self.shape_of(n, 0)?;
                let axis = self.int_attr(n, "axis").unwrap_or(-1);
                let axis =
                    normalize_axis(axis, x.rank()).ok_or_else(|| NotTotal::AxisOutOfRange {
                        op: op.to_owned(),
                        axis,
                    })?;
                let normalized = Shape::new(x.dims()[axis..].iter().copied());
                for i in 1..3 {
                    if self.input(n, i).is_some() {
                        let p = self.shape_of(n, i)?;
                        self.unidirectional(&p, &normalized, Operand::of(n, "scale/bias"))?;
                    }
                }
                Ok(())
            }
            _ => Err(NotTotal::UnknownOp { op: op.to_owned() }),
        }
    }

    // ---- reading the node -------------------------------------------------------------------

    fn opset(&self) -> i64 {
        self.model.opset("").unwrap_or(i64::MAX)
    }

    fn input(&self, n: &Node, i: usize) -> Option<ValueId> {
        n.inputs().get(i).copied().flatten()
    }

    fn int_attr(&self, n: &Node, name: &str) -> Option<i64> {
        n.attribute(name).and_then(|a| a.proto.i)
    }

    fn shape_of(&mut self, n: &Node, i: usize) -> Result<Shape, NotTotal> {
        let v = self.input(n, i).ok_or_else(|| NotTotal::MissingInput {
            op: n.op_type().to_owned(),
            input: i,
        })?;
        self.facts.shape(v).ok_or_else(|| NotTotal::UnknownShape {
            op: n.op_type().to_owned(),
            input: i,
            name: self.name(v).to_owned(),
        })
    }

    fn rank_of(&mut self, n: &Node, i: usize) -> Result<usize, NotTotal> {
        self.shape_of(n, i).map(|s| s.rank())
    }

    /// The constant integers of input `i`, `part` of `n` (its `axes`, its `k`).
    fn constant_ints(&self, n: &Node, i: usize, part: &'static str) -> Result<Vec<i64>, NotTotal> {
        self.input(n, i)
            .and_then(|v| self.facts.ints(v))
            .ok_or_else(|| NotTotal::RunTimeOperand {
                operand: Operand::of(n, part),
            })
    }

    /// Axes given as input `i` from opset `since`, else as attribute `attr`; `None`: absent.
    fn axes(
        &self,
        n: &Node,
        i: usize,
        since: i64,
        attr: &str,
    ) -> Result<Option<Vec<i64>>, NotTotal> {
        self.axes_from(n, i, self.opset() >= since, attr)
    }

    /// Axes given as input `i` when `from_input`, else as attribute `attr`; `None`: absent.
    fn axes_from(
        &self,
        n: &Node,
        i: usize,
        from_input: bool,
        attr: &str,
    ) -> Result<Option<Vec<i64>>, NotTotal> {
        if from_input {
            match self.input(n, i) {
                None => Ok(None),
                Some(_) => self.constant_ints(n, i, "axes").map(Some),
            }
        } else {
            Ok(n.attribute(attr).map(|a| a.proto.ints.clone()))
        }
    }

    /// A shape operand (Expand's target, Tile's repeats, ConstantOfShape's shape): every
    /// element must be a known non-negative value or a dim of some tensor, never data.
    fn shape_operand(&mut self, n: &Node, i: usize, part: &'static str) -> Result<Shape, NotTotal> {
        let operand = || Operand::of(n, part);
        let v = self
            .input(n, i)
            .ok_or_else(|| NotTotal::MissingOperand { operand: operand() })?;
        let dims = self
            .facts
            .dims(v)
            .ok_or_else(|| NotTotal::DataOperand { operand: operand() })?;
        if dims.iter().any(|d| matches!(d, Dim::Known(k) if *k < 0)) {
            return Err(NotTotal::NegativeElement { operand: operand() });
        }
        Ok(Shape::new(dims))
    }

    // ---- shape rules ------------------------------------------------------------------------

    /// Numpy broadcasting of `shapes` is valid: per aligned position, every dim that is not
    /// 1 is provably the same.
    fn broadcast_safe(&mut self, shapes: &[Shape], what: Operand) -> Verdict {
        let rank = shapes.iter().map(Shape::rank).max().unwrap_or(0);
        for pos in 0..rank {
            let mut seen: Option<Dim> = None;
            for s in shapes {
                let Some(k) = (pos + s.rank()).checked_sub(rank) else {
                    continue;
                };
                let d = s.dims()[k];
                if self.facts.same(d, Dim::Known(1)) {
                    continue;
                }
                match seen {
                    None => seen = Some(d),
                    Some(e) if self.facts.same(d, e) => {}
                    Some(e) => {
                        return Err(NotTotal::NotBroadcast {
                            operand: what,
                            first: self.facts.show(e),
                            second: self.facts.show(d),
                        });
                    }
                }
            }
        }
        Ok(())
    }

    /// `from` broadcasts to `to` without changing it (Gemm's C, PRelu's slope).
    fn unidirectional(&mut self, from: &Shape, to: &Shape, what: Operand) -> Verdict {
        if from.rank() > to.rank() {
            return Err(NotTotal::HigherRank { operand: what });
        }
        let offset = to.rank() - from.rank();
        for (i, &d) in from.dims().iter().enumerate() {
            let t = to.dims()[offset + i];
            if !(self.facts.same(d, Dim::Known(1)) || self.facts.same(d, t)) {
                return Err(NotTotal::NotBroadcastTo {
                    operand: what,
                    dim: self.facts.show(d),
                    target: self.facts.show(t),
                });
            }
        }
        Ok(())
    }

    fn same_dim(&mut self, a: Dim, b: Dim, what: Operand) -> Verdict {
        if self.facts.same(a, b) {
            return Ok(());
        }
        Err(NotTotal::NotEqual {
            operand: what,
            a: self.facts.show(a),
            b: self.facts.show(b),
        })
    }

    /// The dims at `axes` are known to be non-zero.
    fn nonempty(&mut self, shape: &Shape, axes: &[usize], op: &str) -> Verdict {
        for &a in axes {
            match shape.get(a).map(|d| self.facts.syms().resolve(d)) {
                Some(Dim::Known(k)) if k > 0 => {}
                _ => {
                    return Err(NotTotal::EmptyAxis {
                        op: op.to_owned(),
                        axis: a,
                    });
                }
            }
        }
        Ok(())
    }

    // ---- per-op rules -----------------------------------------------------------------------

    fn cast(&mut self, n: &Node) -> Verdict {
        let from = self.input(n, 0).and_then(|v| self.facts.dtype(v));
        let to = match n.op_type() {
            "Cast" => self
                .int_attr(n, "to")
                .and_then(|t| DataType::try_from(t as i32).ok()),
            _ => self.input(n, 1).and_then(|v| self.facts.dtype(v)),
        };
        match (from, to) {
            (Some(DataType::String), _) | (_, Some(DataType::String)) => Err(NotTotal::StringCast),
            (Some(_), Some(_)) => Ok(()),
            _ => Err(NotTotal::CastTypes),
        }
    }

    fn broadcasting(&mut self, n: &Node) -> Verdict {
        let mut shapes = Vec::new();
        for i in 0..n.inputs().len() {
            if self.input(n, i).is_some() {
                shapes.push(self.shape_of(n, i)?);
            }
        }
        self.broadcast_safe(&shapes, Operand::of(n, ""))
    }

    fn nonzero_divisor(&mut self, n: &Node) -> Verdict {
        let dtype = self.input(n, 0).and_then(|v| self.facts.dtype(v));
        if dtype.is_some_and(is_float) {
            return Ok(());
        }
        let divisor = self.input(n, 1).and_then(|v| self.facts.constant(v));
        match divisor.and_then(|c| c.to_i64s()) {
            Some(values) if !values.contains(&0) => Ok(()),
            Some(_) => Err(NotTotal::ZeroDivisor {
                op: n.op_type().to_owned(),
            }),
            None => Err(NotTotal::Divisor {
                op: n.op_type().to_owned(),
            }),
        }
    }

    fn integer_power(&mut self, n: &Node) -> Verdict {
        let dtype = self.input(n, 0).and_then(|v| self.facts.dtype(v));
        if dtype.is_some_and(is_float) {
            return Ok(());
        }
        let exponent = self.input(n, 1).and_then(|v| self.facts.constant(v));
        match exponent.map(|c| c.data.to_f64s()) {
            Some(values) if values.iter().all(|e| *e >= 0.0) => Ok(()),
            _ => Err(NotTotal::Exponent),
        }
    }

    /// A reduction whose axes are input 1 when `axes_input`, else its `axes` attribute.
    fn reduction(&mut self, n: &Node, axes_input: bool) -> Verdict {
        let op = n.op_type();
        let shape = self.shape_of(n, 0)?;
        let axes = match self.axes_from(n, 1, axes_input, "axes")? {
            Some(axes) if !axes.is_empty() => match normalize_axes(&axes, shape.rank()) {
                Some(normalized) => normalized,
                None => {
                    return Err(NotTotal::InvalidAxes {
                        op: op.to_owned(),
                        axes,
                    });
                }
            },
            _ => (0..shape.rank()).collect(),
        };
        // Max/Min of an empty set fails for bool in ONNX Runtime (float gives -inf/inf, ints
        // their extremes).
        let dtype = self.input(n, 0).and_then(|v| self.facts.dtype(v));
        if matches!(op, "ReduceMax" | "ReduceMin") && dtype == Some(DataType::Bool) {
            self.nonempty(&shape, &axes, op)?;
        }
        Ok(())
    }

    fn matmul(&mut self, n: &Node) -> Verdict {
        let (a, b) = (self.shape_of(n, 0)?, self.shape_of(n, 1)?);
        if a.rank() == 0 || b.rank() == 0 {
            return Err(NotTotal::ScalarMatMul);
        }
        let ka = a.dims()[a.rank() - 1];
        let kb = b.dims()[b.rank().saturating_sub(2)];
        self.same_dim(ka, kb, Operand::of(n, "inner dims"))?;
        let batch = |s: &Shape| Shape::new(s.dims()[..s.rank().saturating_sub(2)].iter().copied());
        self.broadcast_safe(&[batch(&a), batch(&b)], Operand::of(n, "batch dims"))
    }

    fn gemm(&mut self, n: &Node) -> Verdict {
        let (a, b) = (self.shape_of(n, 0)?, self.shape_of(n, 1)?);
        if a.rank() != 2 || b.rank() != 2 {
            return Err(NotTotal::GemmRank);
        }
        let trans = |name| self.int_attr(n, name).unwrap_or(0) != 0;
        let (ta, tb) = (trans("transA"), trans("transB"));
        let (m, ka) = if ta {
            (a.dims()[1], a.dims()[0])
        } else {
            (a.dims()[0], a.dims()[1])
        };
        let (kb, cols) = if tb {
            (b.dims()[1], b.dims()[0])
        } else {
            (b.dims()[0], b.dims()[1])
        };
        self.same_dim(ka, kb, Operand::of(n, "inner dims"))?;
        if self.input(n, 2).is_some() {
            let c = self.shape_of(n, 2)?;
            self.unidirectional(&c, &Shape::new([m, cols]), Operand::of(n, "C"))?;
        }
        Ok(())
    }

    fn reshape(&mut self, n: &Node) -> Verdict {
        if self.opset() >= 5 {
            self.facts
                .dims(self.input(n, 1).ok_or(NotTotal::ReshapeNoShape)?)
                .ok_or(NotTotal::ReshapeDataTarget)?;
        }
        let input = self.shape_of(n, 0)?;
        let out = n.outputs().first().copied().flatten();
        let output = out
            .and_then(|v| self.facts.shape(v))
            .ok_or(NotTotal::ReshapeResult)?;
        let a = Monomial::of(self.facts.syms(), input.dims());
        let b = Monomial::of(self.facts.syms(), output.dims());
        if a.coefficient.is_some() && a == b {
            return Ok(());
        }
        Err(NotTotal::ReshapeCount {
            input: self.facts.show_shape(&input),
            output: self.facts.show_shape(&output),
        })
    }

    fn squeeze(&mut self, n: &Node) -> Verdict {
        let shape = self.shape_of(n, 0)?;
        let Some(axes) = self.axes(n, 1, 13, "axes")? else {
            return Ok(());
        };
        let Some(normalized) = normalize_axes(&axes, shape.rank()) else {
            return Err(NotTotal::InvalidAxes {
                op: n.op_type().to_owned(),
                axes,
            });
        };
        for a in normalized {
            if !self.facts.same(shape.dims()[a], Dim::Known(1)) {
                return Err(NotTotal::SqueezeDim {
                    axis: a,
                    dim: self.facts.show(shape.dims()[a]),
                });
            }
        }
        Ok(())
    }

    fn concat(&mut self, n: &Node) -> Verdict {
        let mut shapes = Vec::new();
        for i in 0..n.inputs().len() {
            shapes.push(self.shape_of(n, i)?);
        }
        let Some(rank) = shapes.first().map(Shape::rank) else {
            return Err(NotTotal::ConcatEmpty);
        };
        let axis = self.int_attr(n, "axis").unwrap_or(0);
        let axis = normalize_axis(axis, rank).ok_or_else(|| NotTotal::AxisOutOfRange {
            op: n.op_type().to_owned(),
            axis,
        })?;
        for s in &shapes[1..] {
            if s.rank() != rank {
                return Err(NotTotal::ConcatRanks);
            }
            for d in (0..rank).filter(|&d| d != axis) {
                self.same_dim(shapes[0].dims()[d], s.dims()[d], Operand::of(n, ""))?;
            }
        }
        Ok(())
    }

    fn split(&mut self, n: &Node) -> Verdict {
        let shape = self.shape_of(n, 0)?;
        let axis = self.int_attr(n, "axis").unwrap_or(0);
        let axis = normalize_axis(axis, shape.rank()).ok_or_else(|| NotTotal::AxisOutOfRange {
            op: n.op_type().to_owned(),
            axis,
        })?;
        let dim = self.facts.syms().resolve(shape.dims()[axis]);
        let parts = if self.opset() >= 13 {
            match self.input(n, 1) {
                Some(_) => Some(self.constant_ints(n, 1, "sizes")?),
                None => None,
            }
        } else {
            n.attribute("split").map(|a| a.proto.ints.clone())
        };
        let outputs = n.outputs().len() as i64;
        match (parts, dim) {
            (Some(parts), Dim::Known(d))
                if parts.iter().all(|p| *p >= 0)
                    && parts.iter().try_fold(0i64, |a, p| a.checked_add(*p)) == Some(d) =>
            {
                Ok(())
            }
            (None, Dim::Known(d)) if self.int_attr(n, "num_outputs").is_some() => {
                (d >= outputs).then_some(()).ok_or(NotTotal::SplitOutputs {
                    elements: d,
                    outputs,
                })
            }
            (None, Dim::Known(d)) if outputs > 0 && d % outputs == 0 => Ok(()),
            _ => Err(NotTotal::SplitSizes),
        }
    }

    fn slice(&mut self, n: &Node) -> Verdict {
        // Starts and ends clamp, so any value is fine; axes and steps must be valid.
        let rank = self.rank_of(n, 0)?;
        if self.opset() < 10 {
            return Ok(());
        }
        let len = |this: &mut Self, i: usize| -> Result<Option<i64>, NotTotal> {
            match this.input(n, i) {
                None => Ok(None),
                Some(_) => {
                    let s = this.shape_of(n, i)?;
                    match s.dims() {
                        [d] => Ok(this.facts.syms().resolve(*d).known()),
                        _ => Err(NotTotal::SliceOperandRank),
                    }
                }
            }
        };
        let starts = len(self, 1)?.ok_or(NotTotal::SliceStarts)?;
        if len(self, 2)? != Some(starts) {
            return Err(NotTotal::SliceEnds);
        }
        if self.input(n, 3).is_some() {
            let axes = self.constant_ints(n, 3, "axes")?;
            if axes.len() as i64 != starts || normalize_axes(&axes, rank).is_none() {
                return Err(NotTotal::InvalidAxes {
                    op: n.op_type().to_owned(),
                    axes,
                });
            }
        } else if starts > rank as i64 {
            return Err(NotTotal::SliceTooManyStarts);
        }
        if self.input(n, 4).is_some() {
            let steps = self.constant_ints(n, 4, "steps")?;
            if steps.len() as i64 != starts || steps.contains(&0) {
                return Err(NotTotal::SliceSteps { steps });
            }
        }
        Ok(())
    }

    fn range(&mut self, n: &Node) -> Verdict {
        for (i, part) in [(0, "start"), (1, "limit"), (2, "delta")] {
            let v = self.input(n, i).ok_or_else(|| NotTotal::MissingOperand {
                operand: Operand::of(n, part),
            })?;
            let dims = self.facts.dims(v);
            let is_dim_scalar = matches!(dims.as_deref(), Some([_]));
            let is_float_constant = self
                .facts
                .constant(v)
                .is_some_and(|c| c.len() == 1 && is_float(c.dtype));
            if !(is_dim_scalar || is_float_constant) {
                return Err(NotTotal::DataOperand {
                    operand: Operand::of(n, part),
                });
            }
        }
        let delta = self.input(n, 2).and_then(|v| self.facts.constant(v));
        match delta.map(|c| c.data.to_f64s()) {
            Some(d) if d.len() == 1 && d[0] != 0.0 && d[0].is_finite() => Ok(()),
            _ => Err(NotTotal::RangeDelta),
        }
    }

    fn top_k(&mut self, n: &Node) -> Verdict {
        let shape = self.shape_of(n, 0)?;
        let axis = self.int_attr(n, "axis").unwrap_or(-1);
        let axis = normalize_axis(axis, shape.rank()).ok_or_else(|| NotTotal::AxisOutOfRange {
            op: n.op_type().to_owned(),
            axis,
        })?;
        let k = if self.opset() >= 10 {
            match self.constant_ints(n, 1, "k")?.as_slice() {
                [k] => *k,
                _ => return Err(NotTotal::TopKValues),
            }
        } else {
            self.int_attr(n, "k").ok_or(NotTotal::TopKNoK)?
        };
        if k >= 0 && self.facts.at_most(Dim::Known(k), shape.dims()[axis]) {
            return Ok(());
        }
        Err(NotTotal::TopKTooLarge {
            k,
            dim: self.facts.show(shape.dims()[axis]),
        })
    }

    /// The indices of `n` (input `i`), in one interval.
    fn uniform_indices(&mut self, n: &Node, i: usize) -> Result<Interval, NotTotal> {
        let v = self.input(n, i).ok_or(NotTotal::NoIndices)?;
        let b = self
            .bounds
            .of(self.model, self.facts, v)
            .ok_or_else(|| self.unbounded(n, v))?;
        b.uniform(self.facts).ok_or_else(|| self.unbounded(n, v))
    }

    fn unbounded(&self, n: &Node, indices: ValueId) -> NotTotal {
        NotTotal::UnboundedIndices {
            op: n.op_type().to_owned(),
            indices: self.name(indices).to_owned(),
        }
    }

    fn in_range(&mut self, iv: Interval, size: Dim, n: &Node, indices: Indices) -> Verdict {
        if within(self.facts, iv, size) {
            return Ok(());
        }
        Err(NotTotal::IndicesOutOfRange {
            op: n.op_type().to_owned(),
            indices,
            lo: iv.lo,
            hi: self.facts.show(iv.hi),
            size: self.facts.show(size),
        })
    }

    fn gather(&mut self, n: &Node) -> Verdict {
        let data = self.shape_of(n, 0)?;
        let axis = self.int_attr(n, "axis").unwrap_or(0);
        let axis = normalize_axis(axis, data.rank()).ok_or_else(|| NotTotal::AxisOutOfRange {
            op: n.op_type().to_owned(),
            axis,
        })?;
        let iv = self.uniform_indices(n, 1)?;
        self.in_range(iv, data.dims()[axis], n, Indices::All)
    }

    /// GatherElements(data, indices) and ScatterElements(data, indices, updates).
    fn elements(&mut self, n: &Node) -> Verdict {
        let data = self.shape_of(n, 0)?;
        let indices = self.shape_of(n, 1)?;
        let axis = self.int_attr(n, "axis").unwrap_or(0);
        let axis = normalize_axis(axis, data.rank()).ok_or_else(|| NotTotal::AxisOutOfRange {
            op: n.op_type().to_owned(),
            axis,
        })?;
        if indices.rank() != data.rank() {
            return Err(NotTotal::IndicesRank {
                op: n.op_type().to_owned(),
            });
        }
        if n.op_type() == "ScatterElements" {
            let updates = self.shape_of(n, 2)?;
            if updates.rank() != indices.rank() {
                return Err(NotTotal::ScatterElementsUpdatesRank);
            }
            for d in 0..indices.rank() {
                self.same_dim(
                    indices.dims()[d],
                    updates.dims()[d],
                    Operand::of(n, "updates"),
                )?;
            }
        }
        for d in (0..data.rank()).filter(|&d| d != axis) {
            if !self.facts.at_most(indices.dims()[d], data.dims()[d]) {
                return Err(NotTotal::IndicesDim {
                    op: n.op_type().to_owned(),
                    dim: d,
                });
            }
        }
        let iv = self.uniform_indices(n, 1)?;
        self.in_range(iv, data.dims()[axis], n, Indices::All)
    }

    /// GatherND(data, indices) and ScatterND(data, indices, updates): column `j` of the
    /// indices' last axis indexes data dim `batch_dims + j`.
    fn nd(&mut self, n: &Node) -> Verdict {
        let op = n.op_type();
        let data = self.shape_of(n, 0)?;
        let indices = self.shape_of(n, 1)?;
        let batch = usize::try_from(self.int_attr(n, "batch_dims").unwrap_or(0))
            .map_err(|_| NotTotal::NegativeBatchDims { op: op.to_owned() })?;
        let last = indices
            .rank()
            .checked_sub(1)
            .ok_or_else(|| NotTotal::ScalarIndices { op: op.to_owned() })?;
        let q = match self.facts.syms().resolve(indices.dims()[last]) {
            Dim::Known(q) if q >= 1 && batch + (q as usize) <= data.rank() => q as usize,
            _ => return Err(NotTotal::IndexDepth { op: op.to_owned() }),
        };
        if batch > last {
            return Err(NotTotal::BatchDims { op: op.to_owned() });
        }
        for b in 0..batch {
            self.same_dim(
                indices.dims()[b],
                data.dims()[b],
                Operand::of(n, "batch dims"),
            )?;
        }
        if op == "ScatterND" {
            let updates = self.shape_of(n, 2)?;
            let want: Vec<Dim> = indices.dims()[..last]
                .iter()
                .chain(&data.dims()[q..])
                .copied()
                .collect();
            if updates.rank() != want.len() {
                return Err(NotTotal::ScatterNdUpdatesRank);
            }
            for (u, w) in updates.dims().iter().zip(want) {
                self.same_dim(*u, w, Operand::of(n, "updates"))?;
            }
        }
        let v = self.input(n, 1).ok_or(NotTotal::NoIndices)?;
        let bounds = self
            .bounds
            .of(self.model, self.facts, v)
            .ok_or_else(|| self.unbounded(n, v))?;
        for j in 0..q {
            let iv = bounds
                .at(last, j, self.facts)
                .ok_or_else(|| self.unbounded(n, v))?;
            self.in_range(iv, data.dims()[batch + j], n, Indices::Column(j))?;
        }
        Ok(())
    }
}

fn is_float(d: DataType) -> bool {
    matches!(
        d,
        DataType::Float
            | DataType::Double
            | DataType::Float16
            | DataType::Bfloat16
            | DataType::Float8e4m3fn
            | DataType::Float8e4m3fnuz
            | DataType::Float8e5m2
            | DataType::Float8e5m2fnuz
    )
}
