//! Forward inference: the facts of an op's outputs from the facts of its inputs.
//!
//! [`infer`] never fails: whatever it cannot tell stays unknown. It is opset-aware (attributes
//! that became inputs, defaults that changed) and folds constants when an op is foldable and
//! its inputs are known, within [`Limits::max_const_elements`]. Each op family lives in its own
//! module; this one holds the context they share and the dispatch by op type.

mod control_flow;
mod elementwise;
mod generators;
mod indexing;
mod linalg;
mod nn;
mod reduce;
mod shape_ops;

use onnx_rewrite_proto::AttributeProto;
use onnx_rewrite_proto::tensor_proto::DataType;

use super::attrs::Attrs;
use super::constant::ConstTensor;
use super::shape::Shape;
use super::symbols::{Dim, Symbols};
use super::value::{DimValues, ValueFacts};

/// The op being inferred, as the e-graph or the IR knows it.
#[derive(Clone, Copy, Debug)]
pub struct OpInfo<'a> {
    /// `""` (or `"ai.onnx"`) is the default ONNX domain.
    pub domain: &'a str,
    pub op_type: &'a str,
    pub attributes: &'a [AttributeProto],
    /// The opset version the model imports for `domain`.
    pub opset: i64,
    /// Number of output slots (optional outputs left empty still count).
    pub outputs: usize,
}

/// Bounds on the work and memory inference spends on constants.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub struct Limits {
    /// Largest constant (in elements) that folding produces or that `shape_value` tracks.
    pub max_const_elements: usize,
}

impl Default for Limits {
    fn default() -> Self {
        Limits {
            max_const_elements: 1024,
        }
    }
}

/// Facts for each output of `op` (exactly `op.outputs` of them) given its inputs' facts;
/// `inputs[i] == None` is a missing optional input. Never panics, never fails: what it cannot
/// tell is unknown. Ops of other domains than ONNX's get unknown facts.
pub fn infer(
    op: &OpInfo<'_>,
    inputs: &[Option<&ValueFacts>],
    syms: &mut Symbols,
    limits: &Limits,
) -> Vec<ValueFacts> {
    let mut cx = Ctx {
        op,
        attrs: Attrs(op.attributes),
        inputs,
        syms,
        limit: limits.max_const_elements,
        out: vec![ValueFacts::default(); op.outputs],
    };
    if matches!(op.domain, "" | "ai.onnx") {
        dispatch(&mut cx);
    }
    cx.out
}

fn dispatch(cx: &mut Ctx<'_, '_>) {
    match cx.op.op_type {
        // Element-wise, one input, output like the input.
        "Abs" | "Neg" | "Ceil" | "Floor" | "Round" | "Sqrt" | "Reciprocal" | "Sign"
        | "BitwiseNot" | "Not" => elementwise::unary_folding(cx),
        "Exp"
        | "Log"
        | "Sin"
        | "Cos"
        | "Tan"
        | "Asin"
        | "Acos"
        | "Atan"
        | "Sinh"
        | "Cosh"
        | "Asinh"
        | "Acosh"
        | "Atanh"
        | "Tanh"
        | "Sigmoid"
        | "HardSigmoid"
        | "HardSwish"
        | "Relu"
        | "LeakyRelu"
        | "Elu"
        | "Selu"
        | "Celu"
        | "ThresholdedRelu"
        | "Softplus"
        | "Softsign"
        | "Mish"
        | "Swish"
        | "Gelu"
        | "Erf"
        | "Shrink"
        | "Clip"
        | "Softmax"
        | "LogSoftmax"
        | "Hardmax"
        | "LpNormalization"
        | "MeanVarianceNormalization"
        | "CumSum"
        | "CumProd"
        | "Trilu"
        | "LRN"
        | "InstanceNormalization"
        | "GroupNormalization"
        | "ReverseSequence"
        | "Scatter"
        | "ScatterND"
        | "ScatterElements"
        | "RotaryEmbedding"
        | "ImageScaler"
        | "Binarizer" => elementwise::same_as_input(cx),
        "Identity" => elementwise::identity(cx),
        "IsNaN" | "IsInf" => elementwise::predicate(cx),
        "Add" | "Sub" | "Mul" | "Div" | "Mod" | "Pow" | "BitShift" | "BitwiseAnd" | "BitwiseOr"
        | "BitwiseXor" => elementwise::arithmetic(cx),
        "Equal" | "Less" | "Greater" | "LessOrEqual" | "GreaterOrEqual" => {
            elementwise::comparison(cx)
        }
        "And" | "Or" | "Xor" => elementwise::logical(cx),
        "Sum" | "Max" | "Min" | "Mean" => elementwise::variadic(cx),
        "PRelu" => elementwise::prelu(cx),
        "Where" => elementwise::where_(cx),
        "Cast" | "CastLike" => elementwise::cast(cx),
        "QuantizeLinear" | "DequantizeLinear" | "DynamicQuantizeLinear" => {
            elementwise::quantization(cx)
        }
        "Dropout" => elementwise::dropout(cx),

        "Shape" => shape_ops::shape(cx),
        "Size" => shape_ops::size(cx),
        "Reshape" => shape_ops::reshape(cx),
        "Flatten" => shape_ops::flatten(cx),
        "Squeeze" => shape_ops::squeeze(cx),
        "Unsqueeze" => shape_ops::unsqueeze(cx),
        "Transpose" => shape_ops::transpose(cx),
        "Concat" => shape_ops::concat(cx),
        "Split" => shape_ops::split(cx),
        "Expand" => shape_ops::expand(cx),
        "Tile" => shape_ops::tile(cx),
        "Pad" => shape_ops::pad(cx),
        "DepthToSpace" | "SpaceToDepth" => shape_ops::depth_space(cx),
        "Resize" | "Upsample" => shape_ops::resize(cx),
        "CenterCropPad" => shape_ops::center_crop_pad(cx),

        "Gather" => indexing::gather(cx),
        "GatherElements" => indexing::gather_elements(cx),
        "GatherND" => indexing::gather_nd(cx),
        "Slice" => indexing::slice(cx),
        "OneHot" => indexing::one_hot(cx),
        "NonZero" => indexing::non_zero(cx),
        "Compress" => indexing::compress(cx),
        "TopK" => indexing::top_k(cx),
        "Unique" => indexing::unique(cx),

        "ReduceSum" | "ReduceMean" | "ReduceMax" | "ReduceMin" | "ReduceProd" | "ReduceL1"
        | "ReduceL2" | "ReduceLogSum" | "ReduceLogSumExp" | "ReduceSumSquare" => reduce::reduce(cx),
        "ArgMax" | "ArgMin" => reduce::arg(cx),

        "MatMul" | "MatMulInteger" | "QLinearMatMul" => linalg::matmul(cx),
        "Gemm" => linalg::gemm(cx),
        "Einsum" => linalg::einsum(cx),
        "Det" => linalg::det(cx),

        "Conv" | "ConvInteger" | "QLinearConv" => nn::conv(cx),
        "ConvTranspose" => nn::conv_transpose(cx),
        "MaxPool" | "AveragePool" | "LpPool" => nn::pool(cx),
        "GlobalAveragePool" | "GlobalMaxPool" | "GlobalLpPool" => nn::global_pool(cx),
        "LayerNormalization" => nn::layer_norm(cx),
        "RMSNormalization" => nn::rms_norm(cx),
        "BatchNormalization" => nn::batch_norm(cx),
        "NegativeLogLikelihoodLoss" | "SoftmaxCrossEntropyLoss" => nn::loss(cx),
        "LSTM" | "GRU" | "RNN" => nn::rnn(cx),
        "Attention" => nn::attention(cx),

        "Constant" => generators::constant(cx),
        "ConstantOfShape" => generators::constant_of_shape(cx),
        "Range" => generators::range(cx),
        "EyeLike" => generators::eye_like(cx),
        "RandomNormal" | "RandomUniform" => generators::random(cx),
        "RandomNormalLike" | "RandomUniformLike" | "Bernoulli" => generators::random_like(cx),
        "Multinomial" => generators::multinomial(cx),
        "HannWindow" | "HammingWindow" | "BlackmanWindow" => generators::window(cx),

        "If" => control_flow::if_(cx),
        "Loop" => control_flow::loop_(cx),
        "Scan" => control_flow::scan(cx),
        _ => {}
    }
}

/// What an op-family function reads and writes.
pub(crate) struct Ctx<'a, 's> {
    pub op: &'a OpInfo<'a>,
    pub attrs: Attrs<'a>,
    pub inputs: &'a [Option<&'a ValueFacts>],
    pub syms: &'s mut Symbols,
    /// [`Limits::max_const_elements`].
    pub limit: usize,
    pub out: Vec<ValueFacts>,
}

impl<'a> Ctx<'a, '_> {
    /// The opset of the op's domain. A model that imports no version for it is treated as the
    /// newest, where attributes have become inputs.
    pub fn opset(&self) -> i64 {
        if self.op.opset > 0 {
            self.op.opset
        } else {
            i64::MAX
        }
    }

    /// The facts of input `i`; `None` for a missing optional input or one past the end.
    pub fn input(&self, i: usize) -> Option<&'a ValueFacts> {
        self.inputs.get(i).copied().flatten()
    }

    pub fn dtype(&self, i: usize) -> Option<DataType> {
        self.input(i)?.dtype
    }

    pub fn shape(&self, i: usize) -> Option<Shape> {
        self.input(i)?.shape.clone()
    }

    pub fn rank(&self, i: usize) -> Option<usize> {
        self.input(i)?.rank()
    }

    pub fn constant(&self, i: usize) -> Option<&'a ConstTensor> {
        self.input(i)?.constant.as_deref()
    }

    /// The values of a constant integer input (axes, pads, a target shape...). An input known
    /// to be empty has no values to know, whatever computes it.
    pub fn ints(&mut self, i: usize) -> Option<Vec<i64>> {
        if let Some(c) = self.constant(i) {
            return c.to_i64s();
        }
        let s = self.input(i)?.shape.as_ref()?;
        (s.known_numel(self.syms) == Some(0)).then(Vec::new)
    }

    /// The values of a constant scalar-like integer input.
    pub fn scalar_int(&self, i: usize) -> Option<i64> {
        self.constant(i)?.scalar_as_i64()
    }

    /// The elements of an integer input as dims (constant or symbolic).
    pub fn dim_values(&self, i: usize) -> Option<DimValues> {
        self.input(i)?.dim_values()
    }

    /// The known dims of input `i`, if all are known.
    pub fn known_dims(&mut self, i: usize) -> Option<Vec<i64>> {
        let s = self.input(i)?.shape.as_ref()?;
        s.known_dims(self.syms)
    }

    /// The output slot `i`, if the node has it.
    pub fn output(&mut self, i: usize) -> Option<&mut ValueFacts> {
        self.out.get_mut(i)
    }

    pub fn set_dtype(&mut self, i: usize, d: Option<DataType>) {
        if let Some(o) = self.out.get_mut(i) {
            o.dtype = d;
        }
    }

    pub fn set_shape(&mut self, i: usize, s: Option<Shape>) {
        if let Some(o) = self.out.get_mut(i) {
            o.shape = s;
        }
    }

    /// Output `i` is the constant `c` (a fold).
    pub fn set_constant(&mut self, i: usize, c: ConstTensor) {
        if let Some(o) = self.out.get_mut(i) {
            *o = ValueFacts::of_constant(c);
        }
    }

    /// Output `i` is the constant `c`, if folding produced one.
    pub fn fold(&mut self, i: usize, c: Option<ConstTensor>) {
        if let Some(c) = c
            && c.len() <= self.limit
        {
            self.set_constant(i, c);
        }
    }

    /// Output `i` is an integer tensor of `shape` with elements `values`.
    pub fn set_dim_values(&mut self, i: usize, dtype: DataType, shape: Shape, values: DimValues) {
        if values.len() > self.limit {
            return;
        }
        let f = ValueFacts::of_dim_values(dtype, shape, values, self.syms);
        if let Some(o) = self.out.get_mut(i) {
            *o = f;
        }
    }

    /// The length of a 1-D input (a shape operand computed at run time), if it is known and
    /// small enough to be a rank: it becomes the number of dims of an output.
    pub fn vector_len(&mut self, i: usize) -> Option<usize> {
        let s = self.input(i)?.shape.as_ref()?;
        let [d] = s.0.as_slice() else {
            return None;
        };
        let n = usize::try_from(self.syms.value_of(*d)?).ok()?;
        (n <= self.limit).then_some(n)
    }

    /// A fresh symbol.
    pub fn fresh(&mut self) -> Dim {
        self.syms.fresh_dim()
    }

    /// A shape of `rank` fresh symbols: a known rank with unknown dims.
    pub fn fresh_shape(&mut self, rank: usize) -> Shape {
        Shape::new((0..rank).map(|_| self.syms.fresh_dim()))
    }

    /// Dims from per-element values: an unknown element is a fresh symbol, a negative one is
    /// invalid (`None`).
    pub fn dims_of_values(&mut self, values: &[Option<Dim>]) -> Option<Shape> {
        let mut out = Shape::default();
        for v in values {
            let d = match v.map(|d| self.syms.resolve(d)) {
                Some(Dim::Known(k)) if k < 0 => return None,
                Some(d) => d,
                None => self.syms.fresh_dim(),
            };
            out.0.push(d);
        }
        Some(out)
    }

    /// The constant tensor of input `i` and whether it is present.
    pub fn constants(&self, range: std::ops::Range<usize>) -> Option<Vec<&'a ConstTensor>> {
        range.map(|i| self.constant(i)).collect()
    }

    /// Output `out` is `src`'s elements moved by an index map: a constant if `src` is one, a
    /// shape value if `src` has per-element dims.
    pub fn move_elements(
        &mut self,
        out: usize,
        src: &ValueFacts,
        out_dims: Vec<i64>,
        map: &[usize],
    ) {
        if map.len() > self.limit {
            return;
        }
        if let Some(c) = &src.constant {
            if map.iter().all(|&i| i < c.len()) {
                self.fold(out, ConstTensor::new(out_dims, c.data.select(map)));
            }
            return;
        }
        if let (Some(sv), Some(dtype)) = (&src.shape_value, src.dtype) {
            let values: Option<DimValues> = map.iter().map(|&i| sv.get(i).copied()).collect();
            if let Some(values) = values {
                self.set_dim_values(out, dtype, Shape::known(&out_dims), values);
            }
        }
    }

    /// Output 0 holds input 0's elements in the same order under new dims (`Reshape`,
    /// `Flatten`, `Squeeze`, `Unsqueeze`).
    pub fn same_elements(&mut self, out_shape: Option<&Shape>) {
        let Some(src) = self.input(0) else {
            return;
        };
        let Some(dims) = out_shape.and_then(|s| s.known_dims(self.syms)) else {
            return;
        };
        let n = super::constant::element_count(&dims);
        if n.is_some_and(|n| n <= self.limit) {
            let map: Vec<usize> = (0..n.unwrap_or(0)).collect();
            self.move_elements(0, src, dims, &map);
        }
    }
}

#[cfg(test)]
mod tests;
