//! The rows. One line per op and opset range; `since` is the opset that introduced the op (or
//! the version whose answer differs from the row before it). An op whose answers changed at
//! some opset has one row per range, the earlier ones closed with `until`.

use crate::{Effect, Failure, Form, Numerics, OpInfo, Opsets, Reads};

const fn from(since: i64) -> Opsets {
    Opsets { since, until: None }
}

/// A row of the ONNX domain with no claim beyond its effect and failure.
const fn row(op_type: &'static str, since: i64, effect: Effect, failure: Failure) -> OpInfo {
    OpInfo {
        domain: crate::ONNX_DOMAIN,
        op_type,
        opsets: from(since),
        effect,
        failure,
        scalar_inputs: &[],
        vector_inputs: &[],
        numerics: Numerics::Rounds,
        form: Form::Other,
        reads: Reads::Values,
        sequence_or_optional: false,
    }
}

/// A pure op some inputs make fail.
const fn pure(op_type: &'static str, since: i64) -> OpInfo {
    row(op_type, since, Effect::Pure, Failure::Partial)
}

/// A pure op that no input can make fail.
const fn total(op_type: &'static str, since: i64) -> OpInfo {
    row(op_type, since, Effect::Pure, Failure::Total)
}

/// An op that draws random numbers.
const fn random(op_type: &'static str, since: i64) -> OpInfo {
    row(op_type, since, Effect::Random, Failure::Partial)
}

/// A pure op some inputs make fail, with the inputs its schema declares 0-D.
const fn scalars(op_type: &'static str, since: i64, inputs: &'static [usize]) -> OpInfo {
    OpInfo {
        scalar_inputs: inputs,
        ..pure(op_type, since)
    }
}

impl OpInfo {
    /// The row holds up to `until` (inclusive); a later row takes over.
    const fn until(self, until: i64) -> Self {
        OpInfo {
            opsets: Opsets {
                since: self.opsets.since,
                until: Some(until),
            },
            ..self
        }
    }

    const fn exact(self) -> Self {
        OpInfo {
            numerics: Numerics::Exact,
            ..self
        }
    }

    const fn periodic(self) -> Self {
        OpInfo {
            numerics: Numerics::Periodic,
            ..self
        }
    }

    const fn elementwise(self) -> Self {
        OpInfo {
            form: Form::Elementwise,
            ..self
        }
    }

    /// Elementwise, failing only when the inputs do not broadcast.
    const fn broadcasting(self) -> Self {
        OpInfo {
            form: Form::Elementwise,
            failure: Failure::Broadcast,
            ..self
        }
    }

    /// A reduction; with `axes_input`, its axes come from input 1, which is 1-D.
    const fn reduction(self, axes_input: bool) -> Self {
        OpInfo {
            form: Form::Reduction { axes_input },
            vector_inputs: if axes_input { &[1] } else { &[] },
            ..self
        }
    }

    /// The inputs the schema declares 1-D.
    const fn vectors(self, inputs: &'static [usize]) -> Self {
        OpInfo {
            vector_inputs: inputs,
            ..self
        }
    }

    const fn metadata(self) -> Self {
        OpInfo {
            form: Form::Metadata,
            ..self
        }
    }

    const fn reads_shape(self) -> Self {
        OpInfo {
            reads: Reads::Shape,
            ..self
        }
    }

    const fn sequence(self) -> Self {
        OpInfo {
            sequence_or_optional: true,
            ..self
        }
    }
}

pub(crate) static ROWS: &[OpInfo] = &[
    // Elementwise on one input, defined for every value of the schema's types. The sign,
    // negation, absolute value and integer roundings of a value are exact in any precision.
    total("Abs", 1).elementwise().exact(),
    total("Neg", 1).elementwise().exact(),
    total("Ceil", 1).elementwise().exact(),
    total("Floor", 1).elementwise().exact(),
    total("Round", 11).elementwise().exact(),
    total("Sqrt", 1).elementwise(),
    total("Reciprocal", 1).elementwise(),
    total("Sign", 9).elementwise().exact(),
    total("Exp", 1).elementwise(),
    total("Log", 1).elementwise(),
    total("Sin", 7).elementwise().periodic(),
    total("Cos", 7).elementwise().periodic(),
    total("Tan", 7).elementwise().periodic(),
    total("Asin", 7).elementwise(),
    total("Acos", 7).elementwise(),
    total("Atan", 7).elementwise(),
    total("Sinh", 9).elementwise(),
    total("Cosh", 9).elementwise(),
    total("Asinh", 9).elementwise(),
    total("Acosh", 9).elementwise(),
    total("Atanh", 9).elementwise(),
    total("Tanh", 1).elementwise(),
    total("Sigmoid", 1).elementwise(),
    total("HardSigmoid", 1).elementwise(),
    total("HardSwish", 14).elementwise(),
    // Relu selects between its input and 0.
    total("Relu", 1).elementwise().exact(),
    total("LeakyRelu", 1).elementwise(),
    total("Elu", 1).elementwise(),
    total("Selu", 1).elementwise(),
    total("Celu", 12).elementwise(),
    total("ThresholdedRelu", 10).elementwise(),
    total("Softplus", 1).elementwise(),
    total("Softsign", 1).elementwise(),
    total("Mish", 18).elementwise(),
    total("Gelu", 20).elementwise(),
    total("Erf", 9).elementwise(),
    total("Not", 1).elementwise(),
    total("IsNaN", 9).elementwise().exact(),
    total("IsInf", 10).elementwise().exact(),
    total("BitwiseNot", 18).elementwise(),
    total("Shrink", 9).elementwise(),
    // Whole-tensor ops that read no element as an index or a size.
    total("Identity", 1).metadata().exact(),
    total("Shape", 1).metadata().exact().reads_shape(),
    total("Size", 1).metadata().exact().reads_shape(),
    total("Constant", 1).metadata(),
    total("NonZero", 9).exact(),
    // Total in inference mode, where it is Identity; its training mode draws the mask at random.
    OpInfo {
        effect: Effect::RandomInTraining,
        ..total("Dropout", 1).exact()
    },
    // Elementwise over inputs broadcast together: from the opset that gave them numpy's
    // multidirectional broadcasting, the broadcast is their only failure. Before it (Add's
    // `broadcast` attribute, Max's equal shapes) they fail by other rules.
    pure("Add", 1).elementwise().until(6),
    pure("Add", 7).broadcasting(),
    pure("Sub", 1).elementwise().until(6),
    pure("Sub", 7).broadcasting(),
    pure("Mul", 1).elementwise().until(6),
    pure("Mul", 7).broadcasting(),
    pure("And", 1).elementwise().until(6),
    pure("And", 7).broadcasting(),
    pure("Or", 1).elementwise().until(6),
    pure("Or", 7).broadcasting(),
    pure("Xor", 1).elementwise().until(6),
    pure("Xor", 7).broadcasting(),
    pure("BitwiseAnd", 18).broadcasting(),
    pure("BitwiseOr", 18).broadcasting(),
    pure("BitwiseXor", 18).broadcasting(),
    pure("BitShift", 11).broadcasting(),
    pure("Sum", 1).elementwise().until(7),
    pure("Sum", 8).broadcasting(),
    pure("Mean", 1).elementwise().until(7),
    pure("Mean", 8).broadcasting(),
    // Comparisons and selections: exact in any precision.
    pure("Equal", 1).elementwise().exact().until(6),
    pure("Equal", 7).broadcasting().exact(),
    pure("Less", 1).elementwise().exact().until(6),
    pure("Less", 7).broadcasting().exact(),
    pure("Greater", 1).elementwise().exact().until(6),
    pure("Greater", 7).broadcasting().exact(),
    pure("LessOrEqual", 12).broadcasting().exact(),
    pure("GreaterOrEqual", 12).broadcasting().exact(),
    pure("Max", 1).elementwise().exact().until(7),
    pure("Max", 8).broadcasting().exact(),
    pure("Min", 1).elementwise().exact().until(7),
    pure("Min", 8).broadcasting().exact(),
    pure("Where", 9).broadcasting().exact(),
    // Elementwise with failures besides the broadcast: an integer divisor of 0, a negative
    // integer exponent, a Cast of text, bounds that are not scalars.
    pure("Div", 1).elementwise(),
    pure("Pow", 1).elementwise(),
    pure("Mod", 10).elementwise(),
    pure("PRelu", 1).elementwise(),
    pure("Clip", 1).elementwise(),
    pure("Cast", 1).elementwise(),
    // Reductions: the axes became an input with ReduceSum-13 and the others' opset 18.
    pure("ReduceSum", 1).reduction(false).until(12),
    pure("ReduceSum", 13).reduction(true),
    pure("ReduceMean", 1).reduction(false).until(17),
    pure("ReduceMean", 18).reduction(true),
    pure("ReduceProd", 1).reduction(false).until(17),
    pure("ReduceProd", 18).reduction(true),
    pure("ReduceL1", 1).reduction(false).until(17),
    pure("ReduceL1", 18).reduction(true),
    pure("ReduceL2", 1).reduction(false).until(17),
    pure("ReduceL2", 18).reduction(true),
    pure("ReduceLogSum", 1).reduction(false).until(17),
    pure("ReduceLogSum", 18).reduction(true),
    pure("ReduceLogSumExp", 1).reduction(false).until(17),
    pure("ReduceLogSumExp", 18).reduction(true),
    pure("ReduceSumSquare", 1).reduction(false).until(17),
    pure("ReduceSumSquare", 18).reduction(true),
    // ... and the two that select.
    pure("ReduceMax", 1).reduction(false).exact().until(17),
    pure("ReduceMax", 18).reduction(true).exact(),
    pure("ReduceMin", 1).reduction(false).exact().until(17),
    pure("ReduceMin", 18).reduction(true).exact(),
    // Views: the input's elements under another shape.
    pure("Reshape", 1).metadata().exact().until(4),
    pure("Reshape", 5).metadata().exact().vectors(&[1]),
    pure("Squeeze", 1).metadata().exact().until(12),
    pure("Squeeze", 13).metadata().exact().vectors(&[1]),
    pure("Unsqueeze", 1).metadata().exact().until(12),
    pure("Unsqueeze", 13).metadata().exact().vectors(&[1]),
    pure("Flatten", 1).metadata().exact(),
    // Data movement and selection: each result element is an input element, an index or a
    // comparison of them.
    pure("Transpose", 1).exact(),
    pure("Expand", 8).exact().vectors(&[1]),
    pure("Tile", 1).exact().until(5),
    pure("Tile", 6).exact().vectors(&[1]),
    pure("ConstantOfShape", 9).vectors(&[0]),
    pure("Slice", 1).exact().until(9),
    pure("Slice", 10).exact().vectors(&[1, 2, 3, 4]),
    pure("Gather", 1).exact(),
    pure("GatherElements", 11).exact(),
    pure("GatherND", 11).exact(),
    pure("Concat", 1).exact(),
    pure("Split", 1).exact().until(12),
    pure("Split", 13).exact().vectors(&[1]),
    pure("Pad", 1).exact().until(10),
    scalars("Pad", 11, &[2]).exact().vectors(&[1]).until(17),
    scalars("Pad", 18, &[2]).exact().vectors(&[1, 3]),
    pure("ArgMax", 1).exact(),
    pure("ArgMin", 1).exact(),
    pure("TopK", 1).exact().until(9),
    pure("TopK", 10).exact().vectors(&[1]),
    pure("Compress", 9).exact(),
    pure("Scatter", 9).exact(),
    pure("ScatterND", 11).exact(),
    pure("ScatterElements", 11).exact(),
    pure("DepthToSpace", 1).exact(),
    pure("SpaceToDepth", 1).exact(),
    pure("ReverseSequence", 10).exact(),
    scalars("Trilu", 14, &[1]).exact(),
    pure("CastLike", 15).exact(),
    pure("MaxPool", 1).exact(),
    pure("GlobalMaxPool", 1).exact(),
    pure("Unique", 11).exact(),
    // Read their operand's shape only.
    pure("EyeLike", 9).reads_shape(),
    // Random generators: their result is not a function of their inputs.
    random("RandomNormal", 1),
    random("RandomUniform", 1),
    random("RandomNormalLike", 1).reads_shape(),
    random("RandomUniformLike", 1).reads_shape(),
    random("Multinomial", 7),
    random("Bernoulli", 15),
    // The sequence and optional families: they build, read or take apart sequence or
    // optional values.
    pure("SequenceConstruct", 11).sequence(),
    pure("SequenceEmpty", 11).sequence(),
    pure("SequenceLength", 11).sequence(),
    pure("SplitToSequence", 11).sequence(),
    pure("ConcatFromSequence", 11).sequence(),
    pure("SequenceMap", 17).sequence(),
    pure("Optional", 15).sequence(),
    pure("OptionalGetElement", 15).sequence(),
    pure("OptionalHasElement", 15).sequence(),
    // Inputs the schema declares 0-D.
    scalars("Range", 11, &[0, 1, 2]),
    scalars("Loop", 1, &[0, 1]),
    scalars("CumSum", 11, &[1]),
    scalars("SequenceAt", 11, &[1]).sequence(),
    scalars("SequenceInsert", 11, &[2]).sequence(),
    scalars("SequenceErase", 11, &[1]).sequence(),
    scalars("HannWindow", 17, &[0]),
    scalars("HammingWindow", 17, &[0]),
    scalars("BlackmanWindow", 17, &[0]),
    scalars("DFT", 17, &[1]).until(19),
    // Opset 20 moved `axis` from an attribute to a 0-D input.
    scalars("DFT", 20, &[1, 2]),
    scalars("STFT", 17, &[1, 3]),
    scalars("MelWeightMatrix", 17, &[0, 1, 2, 3, 4]),
];
