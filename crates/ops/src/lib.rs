//! What onnx-rewrite knows about operators, in one table every pass reads.
//!
//! Passes ask the same questions of an op: may two of these nodes be merged (is it a function of
//! its inputs)? can it fail at run time whatever its inputs hold? which inputs must be scalars?
//! Each answer used to live in a private list of the pass that needed it, and the lists
//! disagreed. Here they are one table, keyed by (domain, op type, opset range): a row holds
//! for the opsets it covers.
//!
//! An op the table does not hold is unknown, and every answer for it is the cautious one:
//! [`effect`] says nothing (the caller keys it by identity), [`is_total`] is false,
//! [`scalar_inputs`] is empty (nothing to fit).
//!
//! ```
//! use onnx_rewrite_ops::{Effect, effect, is_total, scalar_inputs};
//! assert_eq!(effect("", "RandomUniform", 21), Some(Effect::Random));
//! assert!(is_total("", "Relu", 14));
//! assert_eq!(scalar_inputs("", "Range", 11), &[0, 1, 2]);
//! assert!(scalar_inputs("", "Range", 10).is_empty()); // Range came with opset 11
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
    /// May fail on some inputs (shapes that do not broadcast, an index out of range, ...):
    /// a pass that runs it where it would not have run must prove those inputs fine itself.
    Partial,
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

/// Whether no input can make the op fail at run time.
pub fn is_total(domain: &str, op_type: &str, opset: i64) -> bool {
    lookup(domain, op_type, opset).is_some_and(|row| row.failure == Failure::Total)
}

/// The inputs the op needs as scalars (0-D); empty for an unknown op.
pub fn scalar_inputs(domain: &str, op_type: &str, opset: i64) -> &'static [usize] {
    lookup(domain, op_type, opset).map_or(&[], |row| row.scalar_inputs)
}

#[cfg(test)]
mod tests {
    use super::*;

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
    }

    #[test]
    fn dropout_is_random_only_in_training() {
        assert_eq!(effect("", "Dropout", 13), Some(Effect::RandomInTraining));
        assert_eq!(worst_effect("", "Dropout"), Some(Effect::RandomInTraining));
        assert_eq!(worst_effect("ai.onnx", "Bernoulli"), Some(Effect::Random));
        assert!(is_total("", "Dropout", 13));
    }
}
