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

type Verdict = Result<(), String>;

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
            return Err(format!(
                "{}.{} is not known to be total",
                n.domain(),
                n.op_type()
            ));
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
                self.unidirectional(&slope, &x, "PRelu slope")
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
                ok.then_some(())
                    .ok_or_else(|| format!("{op} axis {axis} is out of range"))
            }
            "CumSum" => {
                let rank = self.rank_of(n, 0)?;
                let axis = self.constant_ints(n, 1, "CumSum axis")?;
                match axis.as_slice() {
                    [a] if normalize_axis(*a, rank).is_some() => Ok(()),
                    _ => Err("CumSum axis is out of range".into()),
                }
            }
            "Clip" => {
                for i in 1..3 {
                    if let Some(v) = self.input(n, i)
                        && self.facts.rank(v) != Some(0)
                    {
                        return Err("Clip bound is not shown to be a scalar".into());
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
                let axis = normalize_axis(axis, shape.rank())
                    .ok_or_else(|| format!("{op} axis {axis} is out of range"))?;
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
                    .ok_or("Unsqueeze has no axes")?;
                normalize_axes(&axes, rank + axes.len())
                    .map(drop)
                    .ok_or_else(|| format!("Unsqueeze axes {axes:?} are invalid"))
            }
            "Transpose" => {
                let rank = self.rank_of(n, 0)?;
                match n.attribute("perm").map(|a| a.proto.ints.clone()) {
                    None => Ok(()),
                    Some(perm) if perm.len() == rank && normalize_axes(&perm, rank).is_some() => {
                        Ok(())
                    }
                    Some(perm) => Err(format!("Transpose perm {perm:?} is invalid")),
                }
            }
            "Concat" => self.concat(n),
            "Split" => self.split(n),
            "Slice" => self.slice(n),
            "Expand" => {
                let x = self.shape_of(n, 0)?;
                let target = self.shape_operand(n, 1, "Expand shape")?;
                self.broadcast_safe(&[x, target], "Expand")
            }
            "Tile" => {
                let rank = self.rank_of(n, 0)?;
                let repeats = self.shape_operand(n, 1, "Tile repeats")?;
                (repeats.rank() == rank)
                    .then_some(())
                    .ok_or_else(|| "Tile repeats do not match the rank".into())
            }
            "ConstantOfShape" => self.shape_operand(n, 0, "ConstantOfShape shape").map(drop),
            "Range" => self.range(n),
            "TopK" => self.top_k(n),
            "Gather" => self.gather(n),
            "GatherElements" | "ScatterElements" => self.elements(n),
            "GatherND" | "ScatterND" => self.nd(n),
            "LayerNormalization" => {
                let x = self.shape_of(n, 0)?;
                let axis = self.int_attr(n, "axis").unwrap_or(-1);
                let axis = normalize_axis(axis, x.rank())
                    .ok_or_else(|| format!("LayerNormalization axis {axis} is out of range"))?;
                let normalized = Shape::new(x.dims()[axis..].iter().copied());
                for i in 1..3 {
                    if self.input(n, i).is_some() {
                        let p = self.shape_of(n, i)?;
                        self.unidirectional(&p, &normalized, "LayerNormalization scale/bias")?;
                    }
                }
                Ok(())
            }
            _ => Err(format!("{op} is not known to be total")),
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

    fn shape_of(&mut self, n: &Node, i: usize) -> Result<Shape, String> {
        let v = self
            .input(n, i)
            .ok_or_else(|| format!("{} input {i} is missing", n.op_type()))?;
        self.facts.shape(v).ok_or_else(|| {
            format!(
                "the shape of {} input {i} ('{}') is unknown",
                n.op_type(),
                self.name(v)
            )
        })
    }

    fn rank_of(&mut self, n: &Node, i: usize) -> Result<usize, String> {
        self.shape_of(n, i).map(|s| s.rank())
    }

    fn constant_ints(&self, n: &Node, i: usize, what: &str) -> Result<Vec<i64>, String> {
        self.input(n, i)
            .and_then(|v| self.facts.ints(v))
            .ok_or_else(|| format!("{what} is computed at run time"))
    }

    /// Axes given as input `i` from opset `since`, else as attribute `attr`; `None`: absent.
    fn axes(&self, n: &Node, i: usize, since: i64, attr: &str) -> Result<Option<Vec<i64>>, String> {
        self.axes_from(n, i, self.opset() >= since, attr)
    }

    /// Axes given as input `i` when `from_input`, else as attribute `attr`; `None`: absent.
    fn axes_from(
        &self,
        n: &Node,
        i: usize,
        from_input: bool,
        attr: &str,
    ) -> Result<Option<Vec<i64>>, String> {
        if from_input {
            match self.input(n, i) {
                None => Ok(None),
                Some(_) => self
                    .constant_ints(n, i, &format!("{} axes", n.op_type()))
                    .map(Some),
            }
        } else {
            Ok(n.attribute(attr).map(|a| a.proto.ints.clone()))
        }
    }

    /// A shape operand (Expand's target, Tile's repeats, ConstantOfShape's shape): every
    /// element must be a known non-negative value or a dim of some tensor, never data.
    fn shape_operand(&mut self, n: &Node, i: usize, what: &str) -> Result<Shape, String> {
        let v = self
            .input(n, i)
            .ok_or_else(|| format!("{what} is missing"))?;
        let dims = self
            .facts
            .dims(v)
            .ok_or_else(|| format!("{what} is computed from data"))?;
        if dims.iter().any(|d| matches!(d, Dim::Known(k) if *k < 0)) {
            return Err(format!("{what} has a negative element"));
        }
        Ok(Shape::new(dims))
    }

    // ---- shape rules ------------------------------------------------------------------------

    /// Numpy broadcasting of `shapes` is valid: per aligned position, every dim that is not
    /// 1 is provably the same.
    fn broadcast_safe(&mut self, shapes: &[Shape], what: &str) -> Verdict {
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
                        let (d, e) = (self.facts.show(d), self.facts.show(e));
                        return Err(format!(
                            "{what}: dims {e} and {d} are not shown to broadcast"
                        ));
                    }
                }
            }
        }
        Ok(())
    }

    /// `from` broadcasts to `to` without changing it (Gemm's C, PRelu's slope).
    fn unidirectional(&mut self, from: &Shape, to: &Shape, what: &str) -> Verdict {
        if from.rank() > to.rank() {
            return Err(format!("{what} has a higher rank than its target"));
        }
        let offset = to.rank() - from.rank();
        for (i, &d) in from.dims().iter().enumerate() {
            let t = to.dims()[offset + i];
            if !(self.facts.same(d, Dim::Known(1)) || self.facts.same(d, t)) {
                let (d, t) = (self.facts.show(d), self.facts.show(t));
                return Err(format!("{what}: dim {d} is not shown to broadcast to {t}"));
            }
        }
        Ok(())
    }

    fn same_dim(&mut self, a: Dim, b: Dim, what: &str) -> Verdict {
        if self.facts.same(a, b) {
            return Ok(());
        }
        let (a, b) = (self.facts.show(a), self.facts.show(b));
        Err(format!("{what}: {a} and {b} are not shown equal"))
    }

    /// The dims at `axes` are known to be non-zero.
    fn nonempty(&mut self, shape: &Shape, axes: &[usize], op: &str) -> Verdict {
        for &a in axes {
            match shape.get(a).map(|d| self.facts.syms().resolve(d)) {
                Some(Dim::Known(k)) if k > 0 => {}
                _ => return Err(format!("{op} may reduce an empty axis {a}")),
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
            (Some(DataType::String), _) | (_, Some(DataType::String)) => {
                Err("a Cast from or to string can fail on the text".into())
            }
            (Some(_), Some(_)) => Ok(()),
            _ => Err("the types of a Cast are unknown".into()),
        }
    }

    fn broadcasting(&mut self, n: &Node) -> Verdict {
        let mut shapes = Vec::new();
        for i in 0..n.inputs().len() {
            if self.input(n, i).is_some() {
                shapes.push(self.shape_of(n, i)?);
            }
        }
        self.broadcast_safe(&shapes, n.op_type())
    }

    fn nonzero_divisor(&mut self, n: &Node) -> Verdict {
        let dtype = self.input(n, 0).and_then(|v| self.facts.dtype(v));
        if dtype.is_some_and(is_float) {
            return Ok(());
        }
        let divisor = self.input(n, 1).and_then(|v| self.facts.constant(v));
        match divisor.and_then(|c| c.to_i64s()) {
            Some(values) if !values.contains(&0) => Ok(()),
            Some(_) => Err(format!("integer {} by a divisor that holds 0", n.op_type())),
            None => Err(format!(
                "integer {} by a divisor not shown to be non-zero",
                n.op_type()
            )),
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
            _ => Err("integer Pow with an exponent not shown non-negative".into()),
        }
    }

    /// A reduction whose axes are input 1 when `axes_input`, else its `axes` attribute.
    fn reduction(&mut self, n: &Node, axes_input: bool) -> Verdict {
        let op = n.op_type();
        let shape = self.shape_of(n, 0)?;
        let axes = match self.axes_from(n, 1, axes_input, "axes")? {
            Some(axes) if !axes.is_empty() => normalize_axes(&axes, shape.rank())
                .ok_or_else(|| format!("{op} axes {axes:?} are invalid"))?,
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
            return Err("MatMul of a scalar".into());
        }
        let ka = a.dims()[a.rank() - 1];
        let kb = b.dims()[b.rank().saturating_sub(2)];
        self.same_dim(ka, kb, "MatMul inner dims")?;
        let batch = |s: &Shape| Shape::new(s.dims()[..s.rank().saturating_sub(2)].iter().copied());
        self.broadcast_safe(&[batch(&a), batch(&b)], "MatMul batch dims")
    }

    fn gemm(&mut self, n: &Node) -> Verdict {
        let (a, b) = (self.shape_of(n, 0)?, self.shape_of(n, 1)?);
        if a.rank() != 2 || b.rank() != 2 {
            return Err("Gemm operand is not 2-D".into());
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
        self.same_dim(ka, kb, "Gemm inner dims")?;
        if self.input(n, 2).is_some() {
            let c = self.shape_of(n, 2)?;
            self.unidirectional(&c, &Shape::new([m, cols]), "Gemm C")?;
        }
        Ok(())
    }

    fn reshape(&mut self, n: &Node) -> Verdict {
        if self.opset() >= 5 {
            self.facts
                .dims(self.input(n, 1).ok_or("Reshape has no shape")?)
                .ok_or("the Reshape target is computed from data")?;
        }
        let input = self.shape_of(n, 0)?;
        let out = n.outputs().first().copied().flatten();
        let output = out
            .and_then(|v| self.facts.shape(v))
            .ok_or("the Reshape result shape is unknown")?;
        let a = Monomial::of(self.facts.syms(), input.dims());
        let b = Monomial::of(self.facts.syms(), output.dims());
        if a.coefficient.is_some() && a == b {
            return Ok(());
        }
        let (i, o) = (
            self.facts.show_shape(&input),
            self.facts.show_shape(&output),
        );
        Err(format!(
            "Reshape {i} -> {o} is not shown to keep the element count"
        ))
    }

    fn squeeze(&mut self, n: &Node) -> Verdict {
        let shape = self.shape_of(n, 0)?;
        let Some(axes) = self.axes(n, 1, 13, "axes")? else {
            return Ok(());
        };
        let axes = normalize_axes(&axes, shape.rank())
            .ok_or_else(|| format!("Squeeze axes {axes:?} are invalid"))?;
        for a in axes {
            if !self.facts.same(shape.dims()[a], Dim::Known(1)) {
                let d = self.facts.show(shape.dims()[a]);
                return Err(format!(
                    "Squeeze of axis {a}, whose dim {d} is not shown to be 1"
                ));
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
            return Err("Concat has no inputs".into());
        };
        let axis = self.int_attr(n, "axis").unwrap_or(0);
        let axis = normalize_axis(axis, rank)
            .ok_or_else(|| format!("Concat axis {axis} is out of range"))?;
        for s in &shapes[1..] {
            if s.rank() != rank {
                return Err("Concat inputs of different ranks".into());
            }
            for d in (0..rank).filter(|&d| d != axis) {
                self.same_dim(shapes[0].dims()[d], s.dims()[d], "Concat")?;
            }
        }
        Ok(())
    }

    fn split(&mut self, n: &Node) -> Verdict {
        let shape = self.shape_of(n, 0)?;
        let axis = self.int_attr(n, "axis").unwrap_or(0);
        let axis = normalize_axis(axis, shape.rank())
            .ok_or_else(|| format!("Split axis {axis} is out of range"))?;
        let dim = self.facts.syms().resolve(shape.dims()[axis]);
        let parts = if self.opset() >= 13 {
            match self.input(n, 1) {
                Some(_) => Some(self.constant_ints(n, 1, "Split sizes")?),
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
            (None, Dim::Known(d)) if self.int_attr(n, "num_outputs").is_some() => (d >= outputs)
                .then_some(())
                .ok_or_else(|| format!("Split of {d} elements into {outputs} outputs")),
            (None, Dim::Known(d)) if outputs > 0 && d % outputs == 0 => Ok(()),
            _ => Err("Split sizes are not shown to match the split dim".into()),
        }
    }

    fn slice(&mut self, n: &Node) -> Verdict {
        // Starts and ends clamp, so any value is fine; axes and steps must be valid.
        let rank = self.rank_of(n, 0)?;
        if self.opset() < 10 {
            return Ok(());
        }
        let len = |this: &mut Self, i: usize| -> Result<Option<i64>, String> {
            match this.input(n, i) {
                None => Ok(None),
                Some(_) => {
                    let s = this.shape_of(n, i)?;
                    match s.dims() {
                        [d] => Ok(this.facts.syms().resolve(*d).known()),
                        _ => Err("a Slice operand is not 1-D".into()),
                    }
                }
            }
        };
        let starts = len(self, 1)?.ok_or("the Slice starts have an unknown length")?;
        if len(self, 2)? != Some(starts) {
            return Err("the Slice ends are not shown to match the starts".into());
        }
        if self.input(n, 3).is_some() {
            let axes = self.constant_ints(n, 3, "Slice axes")?;
            if axes.len() as i64 != starts || normalize_axes(&axes, rank).is_none() {
                return Err(format!("Slice axes {axes:?} are invalid"));
            }
        } else if starts > rank as i64 {
            return Err("Slice has more starts than dims".into());
        }
        if self.input(n, 4).is_some() {
            let steps = self.constant_ints(n, 4, "Slice steps")?;
            if steps.len() as i64 != starts || steps.contains(&0) {
                return Err(format!("Slice steps {steps:?} are invalid"));
            }
        }
        Ok(())
    }

    fn range(&mut self, n: &Node) -> Verdict {
        for (i, what) in [(0, "start"), (1, "limit"), (2, "delta")] {
            let v = self
                .input(n, i)
                .ok_or_else(|| format!("Range {what} is missing"))?;
            let dims = self.facts.dims(v);
            let is_dim_scalar = matches!(dims.as_deref(), Some([_]));
            let is_float_constant = self
                .facts
                .constant(v)
                .is_some_and(|c| c.len() == 1 && is_float(c.dtype));
            if !(is_dim_scalar || is_float_constant) {
                return Err(format!("Range {what} is computed from data"));
            }
        }
        let delta = self.input(n, 2).and_then(|v| self.facts.constant(v));
        match delta.map(|c| c.data.to_f64s()) {
            Some(d) if d.len() == 1 && d[0] != 0.0 && d[0].is_finite() => Ok(()),
            _ => Err("Range delta is not shown non-zero".into()),
        }
    }

    fn top_k(&mut self, n: &Node) -> Verdict {
        let shape = self.shape_of(n, 0)?;
        let axis = self.int_attr(n, "axis").unwrap_or(-1);
        let axis = normalize_axis(axis, shape.rank())
            .ok_or_else(|| format!("TopK axis {axis} is out of range"))?;
        let k = if self.opset() >= 10 {
            match self.constant_ints(n, 1, "TopK k")?.as_slice() {
                [k] => *k,
                _ => return Err("TopK k is not a single value".into()),
            }
        } else {
            self.int_attr(n, "k").ok_or("TopK has no k")?
        };
        if k >= 0 && self.facts.at_most(Dim::Known(k), shape.dims()[axis]) {
            return Ok(());
        }
        let d = self.facts.show(shape.dims()[axis]);
        Err(format!(
            "TopK k = {k} is not shown to be at most the dim {d}"
        ))
    }

    /// The indices of `n` (input `i`), in one interval.
    fn uniform_indices(&mut self, n: &Node, i: usize) -> Result<Interval, String> {
        let v = self.input(n, i).ok_or("the indices are missing")?;
        let b = self
            .bounds
            .of(self.model, self.facts, v)
            .ok_or_else(|| self.unbounded(n, v))?;
        b.uniform(self.facts).ok_or_else(|| self.unbounded(n, v))
    }

    fn unbounded(&self, n: &Node, indices: ValueId) -> String {
        format!(
            "{} indices '{}' come from data and are not shown to be in range",
            n.op_type(),
            self.name(indices)
        )
    }

    fn in_range(&mut self, iv: Interval, size: Dim, n: &Node, what: &str) -> Verdict {
        if within(self.facts, iv, size) {
            return Ok(());
        }
        let (hi, size) = (self.facts.show(iv.hi), self.facts.show(size));
        Err(format!(
            "{} {what} in [{}, {hi}) are not shown to be within a dim of {size}",
            n.op_type(),
            iv.lo
        ))
    }

    fn gather(&mut self, n: &Node) -> Verdict {
        let data = self.shape_of(n, 0)?;
        let axis = self.int_attr(n, "axis").unwrap_or(0);
        let axis = normalize_axis(axis, data.rank())
            .ok_or_else(|| format!("Gather axis {axis} is out of range"))?;
        let iv = self.uniform_indices(n, 1)?;
        self.in_range(iv, data.dims()[axis], n, "indices")
    }

    /// GatherElements(data, indices) and ScatterElements(data, indices, updates).
    fn elements(&mut self, n: &Node) -> Verdict {
        let data = self.shape_of(n, 0)?;
        let indices = self.shape_of(n, 1)?;
        let axis = self.int_attr(n, "axis").unwrap_or(0);
        let axis = normalize_axis(axis, data.rank())
            .ok_or_else(|| format!("{} axis {axis} is out of range", n.op_type()))?;
        if indices.rank() != data.rank() {
            return Err(format!("{} indices have another rank", n.op_type()));
        }
        if n.op_type() == "ScatterElements" {
            let updates = self.shape_of(n, 2)?;
            if updates.rank() != indices.rank() {
                return Err("ScatterElements updates have another rank".into());
            }
            for d in 0..indices.rank() {
                self.same_dim(
                    indices.dims()[d],
                    updates.dims()[d],
                    "ScatterElements updates",
                )?;
            }
        }
        for d in (0..data.rank()).filter(|&d| d != axis) {
            if !self.facts.at_most(indices.dims()[d], data.dims()[d]) {
                return Err(format!(
                    "{} indices dim {d} is not shown within the data's",
                    n.op_type()
                ));
            }
        }
        let iv = self.uniform_indices(n, 1)?;
        self.in_range(iv, data.dims()[axis], n, "indices")
    }

    /// GatherND(data, indices) and ScatterND(data, indices, updates): column `j` of the
    /// indices' last axis indexes data dim `batch_dims + j`.
    fn nd(&mut self, n: &Node) -> Verdict {
        let op = n.op_type();
        let data = self.shape_of(n, 0)?;
        let indices = self.shape_of(n, 1)?;
        let batch = usize::try_from(self.int_attr(n, "batch_dims").unwrap_or(0))
            .map_err(|_| format!("{op} batch_dims is negative"))?;
        let last = indices
            .rank()
            .checked_sub(1)
            .ok_or_else(|| format!("{op} indices are a scalar"))?;
        let q = match self.facts.syms().resolve(indices.dims()[last]) {
            Dim::Known(q) if q >= 1 && batch + (q as usize) <= data.rank() => q as usize,
            _ => return Err(format!("{op} index depth is unknown or too deep")),
        };
        if batch > last {
            return Err(format!("{op} batch_dims exceeds the indices' rank"));
        }
        for b in 0..batch {
            self.same_dim(
                indices.dims()[b],
                data.dims()[b],
                &format!("{op} batch dims"),
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
                return Err("ScatterND updates have the wrong rank".into());
            }
            for (u, w) in updates.dims().iter().zip(want) {
                self.same_dim(*u, w, "ScatterND updates")?;
            }
        }
        let v = self.input(n, 1).ok_or("the indices are missing")?;
        let bounds = self
            .bounds
            .of(self.model, self.facts, v)
            .ok_or_else(|| self.unbounded(n, v))?;
        for j in 0..q {
            let iv = bounds
                .at(last, j, self.facts)
                .ok_or_else(|| self.unbounded(n, v))?;
            self.in_range(iv, data.dims()[batch + j], n, &format!("index column {j}"))?;
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
