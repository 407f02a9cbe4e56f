//! What onnx-rewrite knows about operators, in one table every pass reads.
//!
//! Passes ask the same questions of an op: may two of these nodes be merged (is it a function of
//! its inputs)? can it fail at run time whatever its inputs hold? which inputs must be scalars?
//! does a lower float precision change more than its inputs' rounding? does it read its
//! operand's numbers or only its shape? Each answer used to live in a private list of the pass
//! that needed it, and the lists disagreed. Here they are one table, keyed by (domain, op type,
//! opset range): a row holds for the opsets it covers.
//!
//! An op the table does not hold is unknown, and every answer for it is the cautious one:
//! [`effect`] says nothing (the caller keys it by identity), [`is_total`] is false and
//! [`failure`] [`Failure::Partial`], [`scalar_inputs`] is empty (nothing to fit), [`numerics`]
//! is [`Numerics::Rounds`] (no claim of exactness), [`form`] is [`Form::Other`] (no claim of
//! structure), [`reads`] is [`Reads::Values`] (its numbers matter), and
//! [`sequence_or_optional`] is false (see there why that is no licence).
//!
//! ```
//! use onnx_rewrite_ops::{Effect, Failure, Form, Numerics, Reads};
//! use onnx_rewrite_ops::{effect, failure, form, is_total, numerics, reads, scalar_inputs};
//! assert_eq!(effect("", "RandomUniform", 21), Some(Effect::Random));
//! assert!(is_total("", "Relu", 14));
//! assert_eq!(scalar_inputs("", "Range", 11), &[0, 1, 2]);
//! assert!(scalar_inputs("", "Range", 10).is_empty()); // Range came with opset 11
//! assert_eq!(numerics("", "Gather", 13), Numerics::Exact);
//! assert_eq!(numerics("", "Cos", 13), Numerics::Periodic);
//! assert_eq!(reads("", "Shape", 13), Reads::Shape);
//! assert_eq!(failure("", "Add", 14), Failure::Broadcast);
//! assert_eq!(failure("", "Add", 6), Failure::Partial); // numpy broadcasting came with opset 7
//! assert_eq!(form("", "ReduceMean", 13), Form::Reduction { axes_input: false });
//! assert_eq!(form("", "ReduceMean", 18), Form::Reduction { axes_input: true });
//! ```

mod table;

use std::collections::HashMap;
use std::sync::OnceLock;

/// The ONNX domain; `ai.onnx` is its other spelling.
pub const ONNX_DOMAIN: &str = "";

/// Whether an op's result is a function of its inputs and attributes.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub enum Effect {
    /// A function of inputs and attributes: equal nodes may be merged, and running one that
    /// would not have run is not observable.
    Pure,
    /// Draws random numbers: never merged, never run speculatively.
    Random,
    /// Random when its `training_mode` input is true (Dropout), pure otherwise.
    RandomInTraining,
}

/// Whether some input can make the op fail at run time.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub enum Failure {
    /// Cannot fail whatever its inputs hold (schema-valid types assumed).
    Total,
    /// Fails only when its inputs' shapes do not broadcast together (numpy's multidirectional
    /// rules): total once a pass has shown the broadcast valid (Add, Equal, Where, ...). Not
    /// [`Failure::Total`]: [`is_total`] is false. Ops that can fail otherwise too (an integer
    /// Div by zero, a negative integer Pow) are [`Failure::Partial`]; so is every opset whose
    /// op broadcast by another rule (Add before opset 7, Max before 8).
    Broadcast,
    /// May fail on some inputs (shapes that do not broadcast, an index out of range, ...):
    /// a pass that runs it where it would not have run must prove those inputs fine itself.
    Partial,
}

/// What an op does to the numbers it reads: whether it computes the same in every float
/// precision its inputs arrive in.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub enum Numerics {
    /// Arithmetic: its results are new numbers, rounded to the result type, so a lower
    /// precision loses what a higher one keeps. The answer for an unknown op (no claim).
    Rounds,
    /// Its results are its inputs' values moved, selected or compared (Reshape, Gather, Where,
    /// Max, Relu, Equal, ArgMax), facts of their shapes (Shape), or the sign, negation,
    /// absolute value or integer rounding of one (Neg, Floor): nothing is rounded, so it is
    /// exact in either precision and may take its inputs' precision. An attribute that makes
    /// it accumulate (ScatterND `reduction = add`) the caller reads itself; Dropout is exact in
    /// inference mode, where it is Identity ([`Effect::RandomInTraining`] says when it is not),
    /// and CastLike's one rounding is the conversion the model asks for. Ops that select but
    /// are not marked (Clip) are not claimed exact: a pass decides their precision itself.
    Exact,
    /// Periodic in its operand (Cos, Sin, Tan): the result depends on the operand modulo 2π, so
    /// for a large operand (a position times a frequency) its low bits are the whole answer,
    /// and rounding the operand to a lower precision loses the result.
    Periodic,
}

/// How an op's outputs are made from its inputs.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub enum Form {
    /// No claim. The answer for an unknown op.
    Other,
    /// Each output element is a function of the input elements at its position, inputs
    /// broadcast together (Relu, Add, Where, Clip, Cast): running it on more rows computes the
    /// same rows.
    Elementwise,
    /// Reduces input 0 over `axes`, keeping the reduced dims or not by `keepdims`: the axes are
    /// input 1 when `axes_input` (ReduceSum from opset 13, the others from 18), else the
    /// `axes` attribute.
    Reduction { axes_input: bool },
    /// Computes no element: its result is its input's elements under another shape (Identity,
    /// Reshape, Squeeze, Unsqueeze, Flatten: a runtime aliases the buffer), its input's shape
    /// or size (Shape, Size), or its attribute's tensor (Constant). Costs nothing at run time.
    Metadata,
}

/// What an op reads of its inputs.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub enum Reads {
    /// Their numbers. The answer for an unknown op: changing an input's numbers (rounding it)
    /// may change the result.
    Values,
    /// Only their shapes and element types, never their numbers (Shape, Size, EyeLike,
    /// RandomUniformLike): a lower precision of the operand changes nothing it computes.
    Shape,
}

/// The opsets a row holds for: `since..=until` of the op's domain.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub struct Opsets {
    pub since: i64,
    pub until: Option<i64>,
}

impl Opsets {
    pub fn contains(self, opset: i64) -> bool {
        opset >= self.since && self.until.is_none_or(|until| opset <= until)
    }
}

/// One row of the table.
#[derive(Clone, Copy, Debug)]
pub struct OpInfo {
    pub domain: &'static str,
    pub op_type: &'static str,
    pub opsets: Opsets,
    pub effect: Effect,
    pub failure: Failure,
    /// Inputs the schema declares 0-D: a reader onnxruntime refuses a one-element 1-D tensor for
    /// once it can see the shape ("Input to 'Range' op should be scalars" at session creation).
    pub scalar_inputs: &'static [usize],
    /// Inputs the schema declares 1-D (a shape, axes, pads, `K`): a 0-D value exposed to one is
    /// refused once a runtime or strict shape inference sees it.
    pub vector_inputs: &'static [usize],
    pub numerics: Numerics,
    pub form: Form,
    pub reads: Reads,
    /// Takes or makes sequence or optional values rather than tensors only (SequenceAt,
    /// SplitToSequence, Optional, ...): a pass that retypes or selects tensors cannot handle
    /// its values as it handles tensors.
    pub sequence_or_optional: bool,
}

type Index = HashMap<(&'static str, &'static str), Vec<&'static OpInfo>>;

fn index() -> &'static Index {
    static INDEX: OnceLock<Index> = OnceLock::new();
    INDEX.get_or_init(|| {
        let mut index: Index = HashMap::new();
        for row in table::ROWS {
            index
                .entry((row.domain, row.op_type))
                .or_default()
                .push(row);
        }
        index
    })
}

fn canonical_domain(domain: &str) -> &str {
    if domain == "ai.onnx" {
        ONNX_DOMAIN
    } else {
        domain
    }
}

/// The row for `op_type` of `domain` at `opset` (the model's import of that domain).
pub fn lookup(domain: &str, op_type: &str, opset: i64) -> Option<&'static OpInfo> {
    index()
        .get(&(canonical_domain(domain), op_type))?
        .iter()
        .copied()
        .find(|row| row.opsets.contains(opset))
}

/// The op's effect, or `None` when the table does not know it.
pub fn effect(domain: &str, op_type: &str, opset: i64) -> Option<Effect> {
    lookup(domain, op_type, opset).map(|row| row.effect)
}

/// The least pure effect the op has at any opset the table knows: the question a pass asks
/// before merging or speculating, when a model's opset import may not match its ops.
pub fn worst_effect(domain: &str, op_type: &str) -> Option<Effect> {
    let rows = index().get(&(canonical_domain(domain), op_type))?;
    let rank = |e: &Effect| match e {
        Effect::Pure => 0,
        Effect::RandomInTraining => 1,
        Effect::Random => 2,
    };
    rows.iter().map(|r| r.effect).max_by_key(rank)
}

/// Whether some input can make the op fail, and which; [`Failure::Partial`] for an unknown op.
pub fn failure(domain: &str, op_type: &str, opset: i64) -> Failure {
    lookup(domain, op_type, opset).map_or(Failure::Partial, |row| row.failure)
}

/// Whether no input can make the op fail at run time.
pub fn is_total(domain: &str, op_type: &str, opset: i64) -> bool {
    failure(domain, op_type, opset) == Failure::Total
}

/// The inputs the op needs as scalars (0-D); empty for an unknown op.
pub fn scalar_inputs(domain: &str, op_type: &str, opset: i64) -> &'static [usize] {
    lookup(domain, op_type, opset).map_or(&[], |row| row.scalar_inputs)
}

/// The inputs the op needs as 1-D tensors; empty for an unknown op.
pub fn vector_inputs(domain: &str, op_type: &str, opset: i64) -> &'static [usize] {
    lookup(domain, op_type, opset).map_or(&[], |row| row.vector_inputs)
}

/// The rank input `input` of the op must have by its schema: 0 for a scalar input, 1 for a
/// 1-D one, `None` when the table demands nothing of it.
pub fn demanded_rank(domain: &str, op_type: &str, opset: i64, input: usize) -> Option<usize> {
    let row = lookup(domain, op_type, opset)?;
    if row.scalar_inputs.contains(&input) {
        Some(0)
    } else if row.vector_inputs.contains(&input) {
        Some(1)
    } else {
        None
    }
}

/// What the op does to the numbers it reads; [`Numerics::Rounds`] (no claim) for an unknown op.
/// A caller that needs an op shown *not* periodic must not read `Rounds` as that proof: the
/// table marks the ops it knows are periodic, and an unknown op may be anything (the fp16 pass
/// leaves ops without a schema in float32).
pub fn numerics(domain: &str, op_type: &str, opset: i64) -> Numerics {
    lookup(domain, op_type, opset).map_or(Numerics::Rounds, |row| row.numerics)
}

/// How the op makes its outputs; [`Form::Other`] (no claim) for an unknown op.
pub fn form(domain: &str, op_type: &str, opset: i64) -> Form {
    lookup(domain, op_type, opset).map_or(Form::Other, |row| row.form)
}

/// What the op reads of its inputs; [`Reads::Values`] for an unknown op.
pub fn reads(domain: &str, op_type: &str, opset: i64) -> Reads {
    lookup(domain, op_type, opset).map_or(Reads::Values, |row| row.reads)
}

/// Whether the op takes or makes sequence or optional values. False for an unknown op, which is
/// no proof that it makes tensors only: a caller that must not meet sequences checks the
/// values' types, or leaves unknown ops alone as it must anyway.
pub fn sequence_or_optional(domain: &str, op_type: &str, opset: i64) -> bool {
    lookup(domain, op_type, opset).is_some_and(|row| row.sequence_or_optional)
}

/// Every row of the table, in no promised order.
pub fn rows() -> impl Iterator<Item = &'static OpInfo> {
    table::ROWS.iter()
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn shape_inputs_are_one_dimensional_from_the_opset_that_made_them_inputs() {
        assert_eq!(demanded_rank("", "Reshape", 4, 1), None); // an attribute then
        assert_eq!(demanded_rank("", "Reshape", 5, 1), Some(1));
        assert_eq!(demanded_rank("", "Unsqueeze", 11, 1), None);
        assert_eq!(demanded_rank("", "Unsqueeze", 13, 1), Some(1));
        assert_eq!(demanded_rank("", "ReduceMax", 17, 1), None);
        assert_eq!(demanded_rank("", "ReduceMax", 18, 1), Some(1));
        assert_eq!(demanded_rank("", "Pad", 17, 3), None);
        assert_eq!(demanded_rank("", "Pad", 18, 3), Some(1));
        assert_eq!(demanded_rank("", "Pad", 18, 2), Some(0));
        assert_eq!(demanded_rank("", "Range", 11, 0), Some(0));
        assert_eq!(demanded_rank("", "Reshape", 5, 0), None);
        assert_eq!(demanded_rank("custom", "Reshape", 5, 1), None);
    }

    #[test]
    fn rows_of_one_op_do_not_overlap() {
        for ((domain, op), rows) in index() {
            for (i, a) in rows.iter().enumerate() {
                for b in &rows[i + 1..] {
                    let disjoint = a.opsets.until.is_some_and(|u| u < b.opsets.since)
                        || b.opsets.until.is_some_and(|u| u < a.opsets.since);
                    assert!(disjoint, "{domain}.{op}: rows {a:?} and {b:?} overlap");
                }
            }
        }
    }

    #[test]
    fn the_other_spelling_of_the_onnx_domain_finds_the_same_row() {
        assert_eq!(
            scalar_inputs("ai.onnx", "Range", 18),
            scalar_inputs("", "Range", 18)
        );
    }

    #[test]
    fn unknown_ops_get_the_cautious_answer() {
        assert_eq!(effect("custom", "Range", 1), None);
        assert!(!is_total("", "NoSuchOp", 21));
        assert!(scalar_inputs("", "NoSuchOp", 21).is_empty());
        assert_eq!(worst_effect("", "NoSuchOp"), None);
        assert_eq!(failure("", "NoSuchOp", 21), Failure::Partial);
        assert_eq!(numerics("custom", "Reshape", 21), Numerics::Rounds);
        assert_eq!(form("", "NoSuchOp", 21), Form::Other);
        assert_eq!(reads("custom", "Shape", 21), Reads::Values);
        assert!(!sequence_or_optional("custom", "SequenceAt", 21));
    }

    #[test]
    fn an_op_before_its_first_opset_is_unknown() {
        // Round came with opset 11, Where with 9, Trilu with 14, Optional with 15.
        assert_eq!(numerics("", "Round", 10), Numerics::Rounds);
        assert_eq!(numerics("", "Round", 11), Numerics::Exact);
        assert_eq!(numerics("", "Where", 8), Numerics::Rounds);
        assert_eq!(failure("", "Where", 9), Failure::Broadcast);
        assert_eq!(numerics("", "Trilu", 13), Numerics::Rounds);
        assert!(!sequence_or_optional("", "Optional", 14));
        assert!(sequence_or_optional("", "Optional", 15));
        assert_eq!(reads("", "EyeLike", 8), Reads::Values);
        assert_eq!(reads("", "EyeLike", 9), Reads::Shape);
    }

    #[test]
    fn data_movement_selection_and_comparison_are_exact() {
        for op in [
            "Reshape", "Gather", "Concat", "Max", "Relu", "Equal", "ArgMax", "Shape",
        ] {
            assert_eq!(numerics("", op, 17), Numerics::Exact, "{op}");
        }
        for op in ["Add", "MatMul", "Softmax", "Sqrt", "Cast", "Clip"] {
            assert_eq!(numerics("", op, 17), Numerics::Rounds, "{op}");
        }
        // Dropout is exact where it is Identity; the effect says when it is not.
        assert_eq!(numerics("", "Dropout", 13), Numerics::Exact);
    }

    #[test]
    fn cos_sin_and_tan_are_periodic_and_nothing_else_is() {
        let periodic: Vec<&str> = rows()
            .filter(|r| r.numerics == Numerics::Periodic)
            .map(|r| r.op_type)
            .collect();
        assert_eq!(periodic, ["Sin", "Cos", "Tan"]);
        assert_eq!(numerics("ai.onnx", "Cos", 22), Numerics::Periodic);
    }

    #[test]
    fn broadcasting_is_the_only_failure_only_from_numpy_broadcasting_on() {
        // Add-6 broadcast by its `broadcast` attribute, Max-6 took equal shapes only.
        assert_eq!(failure("", "Add", 6), Failure::Partial);
        assert_eq!(failure("", "Add", 7), Failure::Broadcast);
        assert_eq!(failure("", "Max", 7), Failure::Partial);
        assert_eq!(failure("", "Max", 8), Failure::Broadcast);
        assert_eq!(form("", "Max", 7), Form::Elementwise);
        // Div by an integer zero fails whatever the shapes.
        assert_eq!(failure("", "Div", 14), Failure::Partial);
        assert_eq!(form("", "Div", 14), Form::Elementwise);
        assert!(!is_total("", "Add", 14));
    }

    #[test]
    fn reductions_take_their_axes_as_an_input_from_their_opset() {
        assert_eq!(
            form("", "ReduceSum", 12),
            Form::Reduction { axes_input: false }
        );
        assert_eq!(
            form("", "ReduceSum", 13),
            Form::Reduction { axes_input: true }
        );
        assert_eq!(
            form("", "ReduceMax", 17),
            Form::Reduction { axes_input: false }
        );
        assert_eq!(
            form("", "ReduceMax", 18),
            Form::Reduction { axes_input: true }
        );
        assert_eq!(form("", "ArgMax", 18), Form::Other);
    }

    #[test]
    fn metadata_and_shape_readers() {
        for op in ["Reshape", "Squeeze", "Identity", "Shape", "Constant"] {
            assert_eq!(form("", op, 21), Form::Metadata, "{op}");
        }
        assert_eq!(form("", "Expand", 21), Form::Other);
        assert_eq!(reads("", "RandomUniformLike", 21), Reads::Shape);
        assert_eq!(reads("", "ConstantOfShape", 21), Reads::Values);
        assert_eq!(reads("", "Reshape", 21), Reads::Values);
    }

    #[test]
    fn sequence_ops_keep_their_other_answers() {
        assert!(sequence_or_optional("", "SequenceAt", 11));
        assert_eq!(scalar_inputs("", "SequenceAt", 11), &[1]);
        assert!(!sequence_or_optional("", "Identity", 16));
        // Pad gained its 0-D `constant_value` input with opset 11 and was exact before it too.
        assert!(scalar_inputs("", "Pad", 10).is_empty());
        assert_eq!(numerics("", "Pad", 10), Numerics::Exact);
        assert_eq!(scalar_inputs("", "Pad", 11), &[2]);
    }

    #[test]
    fn dropout_is_random_only_in_training() {
        assert_eq!(effect("", "Dropout", 13), Some(Effect::RandomInTraining));
        assert_eq!(worst_effect("", "Dropout"), Some(Effect::RandomInTraining));
        assert_eq!(worst_effect("ai.onnx", "Bernoulli"), Some(Effect::Random));
        assert!(is_total("", "Dropout", 13));
    }
}
