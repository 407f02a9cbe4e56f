//! ONNX operator schemas as type constraints: which element types each type parameter allows,
//! and which formal inputs and outputs share a parameter (and so must hold one type).
//!
//! The table ([`table`]) is generated from onnxruntime 1.32.0's schema registry by
//! `tools/ort/gen_kernel_tables.py --schema-table`: every `since_version` of every operator of `ai.onnx` (opsets up to
//! 28), `ai.onnx.ml` and `com.microsoft`. A node's schema is the entry with the largest
//! `since_version` not above the opset its model imports for the node's domain.

#[rustfmt::skip]
mod table;

use onnx_rewrite_proto::tensor_proto::DataType;

/// A set of types: tensor element types and sequence element types (bit `i` is
/// `TensorProto.DataType` code `i`), and whether anything else (optionals, maps) is allowed.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub struct Types {
    pub tensor: u64,
    pub seq: u64,
    pub other: bool,
}

impl Types {
    pub const fn new(tensor: u64, seq: u64, other: bool) -> Self {
        Self { tensor, seq, other }
    }

    /// Whether `tensor(dtype)` is in the set.
    pub fn allows(&self, dtype: DataType) -> bool {
        let code = dtype as i32;
        (0..64).contains(&code) && self.tensor & (1u64 << code) != 0
    }

    /// The one tensor type of a fixed parameter such as `tensor(int64)`, if it is one.
    pub fn single_tensor(&self) -> Option<DataType> {
        (self.tensor.count_ones() == 1 && self.seq == 0 && !self.other)
            .then(|| DataType::try_from(self.tensor.trailing_zeros() as i32).ok())
            .flatten()
    }
}

/// How many values a formal parameter takes.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub enum Arity {
    One,
    Opt,
    /// Variadic, every value of one type.
    Many,
    /// Variadic, each value of its own type.
    ManyMixed,
}

/// What types a formal parameter holds.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub enum Slot {
    /// Type parameter `i` of the schema: every slot bound to it holds the same type.
    Var(u8),
    /// A fixed set, such as Resize's `scales: tensor(float)`.
    Fixed(Types),
}

#[derive(Clone, Copy, Debug)]
pub struct Param {
    pub slot: Slot,
    pub arity: Arity,
}

pub(crate) const fn p(slot: Slot, arity: Arity) -> Param {
    Param { slot, arity }
}

/// One version of an operator's signature.
#[derive(Debug)]
pub struct Schema {
    pub domain: &'static str,
    pub op: &'static str,
    pub since: i64,
    /// Type parameters: name and allowed types.
    pub vars: &'static [(&'static str, Types)],
    pub inputs: &'static [Param],
    pub outputs: &'static [Param],
}

impl Schema {
    /// The schema of `domain`.`op` at `opset` (`""` is the ONNX domain).
    pub fn find(domain: &str, op: &str, opset: i64) -> Option<&'static Schema> {
        let domain = if domain == "ai.onnx" { "" } else { domain };
        let table = &table::SCHEMAS;
        let end = table.partition_point(|s| (s.domain, s.op, s.since) <= (domain, op, opset));
        let candidate = table[..end].last()?;
        (candidate.domain == domain && candidate.op == op).then_some(candidate)
    }

    /// The slot of input `index` (the last parameter repeats when it is variadic).
    pub fn input(&self, index: usize) -> Option<Slot> {
        slot_at(self.inputs, index)
    }

    /// The slot of output `index`.
    pub fn output(&self, index: usize) -> Option<Slot> {
        slot_at(self.outputs, index)
    }

    /// The allowed types of type parameter `var`.
    pub fn var_types(&self, var: u8) -> Option<Types> {
        self.vars.get(var as usize).map(|(_, t)| *t)
    }

    pub fn var_name(&self, var: u8) -> &'static str {
        self.vars.get(var as usize).map_or("?", |(n, _)| n)
    }

    /// Whether some input is bound to `var` (else the output's type comes from an attribute).
    pub fn var_has_input(&self, var: u8) -> bool {
        self.inputs.iter().any(|p| p.slot == Slot::Var(var))
    }

    /// Whether some output is bound to `var`.
    pub fn var_has_output(&self, var: u8) -> bool {
        self.outputs.iter().any(|p| p.slot == Slot::Var(var))
    }
}

fn slot_at(params: &[Param], index: usize) -> Option<Slot> {
    match params.get(index) {
        Some(p) => Some(p.slot),
        None => params
            .last()
            .filter(|p| matches!(p.arity, Arity::Many | Arity::ManyMixed))
            .map(|p| p.slot),
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn range_gains_float16_at_opset_27() {
        let old = Schema::find("", "Range", 20).expect("Range-11");
        assert_eq!(old.since, 11);
        let t = old.var_types(0).unwrap();
        assert!(t.allows(DataType::Float) && !t.allows(DataType::Float16));
        let new = Schema::find("", "Range", 27).expect("Range-27");
        assert!(new.var_types(0).unwrap().allows(DataType::Float16));
    }

    #[test]
    fn resize_scales_are_float_only_and_layer_norm_stash_is_a_separate_parameter() {
        let resize = Schema::find("ai.onnx", "Resize", 20).unwrap();
        match resize.input(2) {
            Some(Slot::Fixed(t)) => assert_eq!(t.single_tensor(), Some(DataType::Float)),
            other => panic!("scales slot {other:?}"),
        }
        let ln = Schema::find("", "LayerNormalization", 17).unwrap();
        assert_eq!(ln.input(0), ln.output(0));
        assert_ne!(ln.output(0), ln.output(1));
    }

    #[test]
    fn variadic_inputs_repeat_and_unknown_ops_are_absent() {
        let concat = Schema::find("", "Concat", 13).unwrap();
        assert_eq!(concat.input(7), concat.input(0));
        assert!(Schema::find("", "NoSuchOp", 20).is_none());
        assert!(
            Schema::find("", "Gelu", 19).is_none(),
            "Gelu appears at opset 20"
        );
        assert!(Schema::find("com.microsoft", "RotaryEmbedding", 1).is_some());
    }
}
