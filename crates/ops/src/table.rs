//! The rows. One line per op and opset range; `since` is the opset that introduced the op (or
//! the version whose answer differs from the row before it).

use crate::{Effect, Failure, OpInfo, Opsets};

const fn from(since: i64) -> Opsets {
    Opsets { since, until: None }
}

/// A pure op that no input can make fail.
const fn total(op_type: &'static str, since: i64) -> OpInfo {
    OpInfo {
        domain: crate::ONNX_DOMAIN,
        op_type,
        opsets: from(since),
        effect: Effect::Pure,
        failure: Failure::Total,
        scalar_inputs: &[],
    }
}

/// An op that draws random numbers.
const fn random(op_type: &'static str, since: i64) -> OpInfo {
    OpInfo {
        domain: crate::ONNX_DOMAIN,
        op_type,
        opsets: from(since),
        effect: Effect::Random,
        failure: Failure::Partial,
        scalar_inputs: &[],
    }
}

/// A pure op some inputs make fail, with the inputs its schema declares 0-D.
const fn scalars(op_type: &'static str, since: i64, inputs: &'static [usize]) -> OpInfo {
    OpInfo {
        domain: crate::ONNX_DOMAIN,
        op_type,
        opsets: from(since),
        effect: Effect::Pure,
        failure: Failure::Partial,
        scalar_inputs: inputs,
    }
}

pub(crate) static ROWS: &[OpInfo] = &[
    // Elementwise on one input, defined for every value of the schema's types.
    total("Abs", 1),
    total("Neg", 1),
    total("Ceil", 1),
    total("Floor", 1),
    total("Round", 11),
    total("Sqrt", 1),
    total("Reciprocal", 1),
    total("Sign", 9),
    total("Exp", 1),
    total("Log", 1),
    total("Sin", 7),
    total("Cos", 7),
    total("Tan", 7),
    total("Asin", 7),
    total("Acos", 7),
    total("Atan", 7),
    total("Sinh", 9),
    total("Cosh", 9),
    total("Asinh", 9),
    total("Acosh", 9),
    total("Atanh", 9),
    total("Tanh", 1),
    total("Sigmoid", 1),
    total("HardSigmoid", 1),
    total("HardSwish", 14),
    total("Relu", 1),
    total("LeakyRelu", 1),
    total("Elu", 1),
    total("Selu", 1),
    total("Celu", 12),
    total("ThresholdedRelu", 10),
    total("Softplus", 1),
    total("Softsign", 1),
    total("Mish", 18),
    total("Gelu", 20),
    total("Erf", 9),
    total("Not", 1),
    total("IsNaN", 9),
    total("IsInf", 10),
    total("BitwiseNot", 18),
    total("Shrink", 9),
    // Whole-tensor ops that read no element as an index or a size.
    total("Identity", 1),
    total("Shape", 1),
    total("Size", 1),
    total("Constant", 1),
    total("NonZero", 9),
    // Total in inference mode; its training mode draws the mask at random.
    OpInfo {
        effect: Effect::RandomInTraining,
        ..total("Dropout", 1)
    },
    // Random generators: their result is not a function of their inputs.
    random("RandomNormal", 1),
    random("RandomUniform", 1),
    random("RandomNormalLike", 1),
    random("RandomUniformLike", 1),
    random("Multinomial", 7),
    random("Bernoulli", 15),
    // Inputs the schema declares 0-D.
    scalars("Range", 11, &[0, 1, 2]),
    scalars("Loop", 1, &[0, 1]),
    scalars("CumSum", 11, &[1]),
    scalars("Trilu", 14, &[1]),
    scalars("Pad", 11, &[2]),
    scalars("SequenceAt", 11, &[1]),
    scalars("SequenceInsert", 11, &[2]),
    scalars("SequenceErase", 11, &[1]),
    scalars("HannWindow", 17, &[0]),
    scalars("HammingWindow", 17, &[0]),
    scalars("BlackmanWindow", 17, &[0]),
    OpInfo {
        opsets: Opsets {
            since: 17,
            until: Some(19),
        },
        ..scalars("DFT", 17, &[1])
    },
    // Opset 20 moved `axis` from an attribute to a 0-D input.
    scalars("DFT", 20, &[1, 2]),
    scalars("STFT", 17, &[1, 3]),
    scalars("MelWeightMatrix", 17, &[0, 1, 2, 3, 4]),
];
