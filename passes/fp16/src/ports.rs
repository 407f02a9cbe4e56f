//! The role each input and output of a node plays in the conversion, from its schema's type
//! constraints and a few per-operator policies.
//!
//! A float32 value at a slot bound to a type parameter that admits the target type is
//! [`Role::Convert`]: it takes the node's precision, and every other slot bound to the same
//! parameter does too, so "bound to different types" cannot happen. A float32 value at a fixed
//! `tensor(float)` slot (Resize `scales`), at a parameter without the target type at the model's
//! opset (Range before 27), or at a parameter set by an attribute the pass does not rewrite
//! (LayerNormalization's `Mean`/`InvStdDev`) is [`Role::Pin`]: it stays float32. A slot whose
//! value only lends its shape (Shape, Size, `*Like` inputs) is [`Role::Any`].

use smallvec::SmallVec;

use onnx_rewrite_ir::{Model, NodeId};
use onnx_rewrite_proto::tensor_proto::DataType;

use crate::convert::Target;
use crate::schema::{Schema, Slot};
use crate::types::{Ty, Types};

#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub(crate) enum Role {
    /// A float32 value that takes the node's precision.
    Convert,
    /// A float32 value that stays float32.
    Pin,
    /// A float32 value read for its shape only: either precision will do.
    Any,
    /// Not a float32 tensor.
    Other,
}

pub(crate) struct Ports {
    pub inputs: SmallVec<[Role; 4]>,
    pub outputs: SmallVec<[Role; 2]>,
    pub schema: &'static Schema,
}

impl Ports {
    pub fn converts(&self) -> bool {
        self.inputs
            .iter()
            .chain(&self.outputs)
            .any(|r| *r == Role::Convert)
    }
}

/// Why a node's slots cannot be given roles: it is left exactly as it is.
pub(crate) enum Opaque {
    /// No schema: a custom domain, a model-local function, or an op unknown at this opset.
    NoSchema,
    /// Sequence and optional values keep their element type.
    Sequence,
    /// A slot that shares a type parameter with a float32 value has a type nobody knows.
    UnknownType,
}

/// Type parameters kept float32 by policy, not by schema.
const PINNED: &[(&str, &str, &str)] = &[
    // `roi` is float32 in every exporter; ModelOpt and ORT keep it so.
    ("", "Resize", "T2"),
    // BitCast reinterprets the bits: its operand's type is its meaning.
    ("", "BitCast", "T1"),
    // Mean/InvStdDev are typed by `stash_type`, which stays float32.
    ("", "LayerNormalization", "U"),
    // onnxruntime reads gamma/beta as float (its ALWAYS_FLOAT_INPUTS).
    ("com.microsoft", "GroupNorm", "M"),
    ("com.microsoft", "SkipGroupNorm", "M"),
];

/// Output-only type parameters whose attribute the pass rewrites (see `rewrite::retype`).
const ATTRIBUTE_TYPED: &[(&str, &str)] = &[
    ("Constant", "T"),
    ("ConstantOfShape", "T2"),
    ("Cast", "T2"),
    ("RandomNormal", "T"),
    ("RandomUniform", "T"),
    ("RandomNormalLike", "T2"),
    ("RandomUniformLike", "T2"),
    ("EyeLike", "T2"),
    ("Bernoulli", "T2"),
    ("HannWindow", "T2"),
    ("HammingWindow", "T2"),
    ("BlackmanWindow", "T2"),
    ("DequantizeLinear", "T3"),
];

/// The roles of `node`'s slots when converting to `target`.
pub(crate) fn ports(
    model: &Model,
    node: NodeId,
    types: &Types,
    target: Target,
) -> Result<Ports, Opaque> {
    let n = model.node(node);
    let domain = n.domain();
    let op = n.op_type();
    let opset = model.opset(domain);
    // The pass does not retype sequence or optional values: the ops that build, read or take
    // them apart ([`onnx_rewrite_ops::sequence_or_optional`]) stay as they are.
    if domain.is_empty()
        && onnx_rewrite_ops::sequence_or_optional(domain, op, opset.unwrap_or(i64::MAX))
    {
        return Err(Opaque::Sequence);
    }
    let opset = opset.ok_or(Opaque::NoSchema)?;
    let schema = Schema::find(domain, op, opset).ok_or(Opaque::NoSchema)?;
    // A missing optional slot has no type and plays no part.
    let in_types: SmallVec<[Option<Ty>; 4]> =
        n.inputs().iter().map(|v| v.map(|v| types.of(v))).collect();
    let out_types: SmallVec<[Option<Ty>; 2]> =
        n.outputs().iter().map(|v| v.map(|v| types.of(v))).collect();
    let slots: Vec<(Option<Slot>, Ty)> = in_types
        .iter()
        .enumerate()
        .filter_map(|(i, t)| t.map(|t| (schema.input(i), t)))
        .chain(
            out_types
                .iter()
                .enumerate()
                .filter_map(|(i, t)| t.map(|t| (schema.output(i), t))),
        )
        .collect();
    let has_float = slots.iter().any(|(_, t)| t.is(DataType::Float));
    if has_float && slots.iter().any(|(_, t)| *t == Ty::Other) {
        return Err(Opaque::Sequence);
    }
    // An op that reads only its operand's shape (Shape, EyeLike, RandomUniformLike: the op
    // table's `Reads::Shape`) takes that operand at any precision: its input-only type
    // parameter lends only a shape.
    let reads_shape = domain.is_empty()
        && onnx_rewrite_ops::reads(domain, op, opset) == onnx_rewrite_ops::Reads::Shape;
    let var_role = |var: u8| -> Role {
        let name = schema.var_name(var);
        if reads_shape && !schema.var_has_output(var) {
            return Role::Any;
        }
        if PINNED.contains(&(domain, op, name)) {
            return Role::Pin;
        }
        let set_by_attribute = !schema.var_has_input(var) && schema.var_has_output(var);
        if set_by_attribute && !(domain.is_empty() && ATTRIBUTE_TYPED.contains(&(op, name))) {
            return Role::Pin;
        }
        match schema.var_types(var) {
            Some(t) if t.allows(target.dtype()) => Role::Convert,
            _ => Role::Pin,
        }
    };
    // A parameter bound to a float32 value must not also hold a value of unknown type: the pass
    // could not tell whether that value needs a Cast.
    for (slot, ty) in &slots {
        if let (Some(Slot::Var(var)), Ty::Unknown) = (slot, ty)
            && slots
                .iter()
                .any(|(s, t)| *s == Some(Slot::Var(*var)) && t.is(DataType::Float))
        {
            return Err(Opaque::UnknownType);
        }
    }
    let role = |slot: Option<Slot>, ty: Option<Ty>| -> Role {
        if !ty.is_some_and(|t| t.is(DataType::Float)) {
            return Role::Other;
        }
        match slot {
            Some(Slot::Var(var)) => var_role(var),
            _ => Role::Pin,
        }
    };
    let outputs: SmallVec<[Role; 2]> = (0..out_types.len())
        .map(|i| role(schema.output(i), out_types[i]))
        .collect();
    let mut inputs: SmallVec<[Role; 4]> = (0..in_types.len())
        .map(|i| role(schema.input(i), in_types[i]))
        .collect();
    // A Cast from float32 to another type reads its operand at whatever precision it comes:
    // a Cast in front of it would only round twice.
    if domain.is_empty() && op == "Cast" && outputs.first() != Some(&Role::Convert) {
        for r in inputs.iter_mut().filter(|r| **r == Role::Convert) {
            *r = Role::Any;
        }
    }
    Ok(Ports {
        inputs,
        outputs,
        schema,
    })
}

#[cfg(test)]
mod tests {
    use super::*;

    /// The op table's shape readers lend only a shape through their input-only type parameter:
    /// the parameters the pass used to list by name.
    #[test]
    fn shape_readers_lend_their_input_only_type_parameter() {
        let listed = [
            ("Shape", "T"),
            ("Size", "T"),
            ("RandomNormalLike", "T1"),
            ("RandomUniformLike", "T1"),
            ("EyeLike", "T1"),
        ];
        for opset in 1..=30 {
            for (op, name) in listed {
                let Some(schema) = Schema::find("", op, opset) else {
                    continue;
                };
                assert_eq!(
                    onnx_rewrite_ops::reads("", op, opset),
                    onnx_rewrite_ops::Reads::Shape,
                    "{op}-{opset}"
                );
                let input_only: Vec<&str> = (0..schema.vars.len() as u8)
                    .filter(|v| !schema.var_has_output(*v))
                    .map(|v| schema.var_name(v))
                    .collect();
                assert_eq!(input_only, [name], "{op}-{opset}");
            }
        }
    }
}
