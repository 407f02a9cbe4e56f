//! Property tests: inference and folding never panic on hostile inputs, broadcasting is
//! commutative, merging is idempotent.

use std::sync::Arc;

use onnx_rewrite_proto::AttributeProto;
use onnx_rewrite_proto::attribute_proto::AttributeType;
use proptest::prelude::*;

use super::constant::ConstData;
use super::*;

/// Integers that break naive arithmetic.
fn hostile_i64() -> impl Strategy<Value = i64> {
    prop_oneof![
        Just(i64::MIN),
        Just(i64::MAX),
        Just(i64::MIN + 1),
        Just(0),
        Just(1),
        Just(-1),
        Just(i64::from(i32::MAX)),
        Just(1 << 40),
        -5i64..6,
        any::<i64>(),
    ]
}

/// Dims as a model may declare them, including invalid ones.
fn hostile_dim() -> impl Strategy<Value = i64> {
    prop_oneof![4 => 0i64..4, 1 => Just(-1i64), 1 => Just(i64::MAX), 1 => Just(1 << 33)]
}

/// A constant whose dims may not even match its data (the fields are public).
fn hostile_const() -> impl Strategy<Value = ConstTensor> {
    let dims = prop::collection::vec(hostile_dim(), 0..4);
    let data = prop_oneof![
        3 => prop::collection::vec(hostile_i64(), 0..13).prop_map(ConstData::I64),
        1 => prop::collection::vec(any::<i32>(), 0..13).prop_map(ConstData::I32),
        1 => prop::collection::vec(any::<f32>(), 0..13).prop_map(ConstData::F32),
        1 => prop::collection::vec(any::<bool>(), 0..13).prop_map(ConstData::Bool),
        1 => prop::collection::vec(any::<u8>(), 0..13).prop_map(ConstData::U8),
    ];
    (dims, data, any::<bool>()).prop_map(|(dims, data, consistent)| {
        if consistent {
            // Make the dims fit: a vector of the data's length.
            ConstTensor::new(vec![data.len() as i64], data).expect("consistent by construction")
        } else {
            ConstTensor {
                dtype: data.dtype(),
                dims,
                data,
            }
        }
    })
}

/// Input facts: a constant, a shape with symbols and odd dims, unknown, or missing.
#[derive(Clone, Debug)]
enum In {
    Missing,
    Unknown,
    Const(ConstTensor),
    Shaped(DataType, Vec<Option<i64>>, Option<Vec<Option<i64>>>),
}

fn input() -> impl Strategy<Value = In> {
    let dtype = prop_oneof![
        Just(DataType::Float),
        Just(DataType::Int64),
        Just(DataType::Int32),
        Just(DataType::Bool),
        Just(DataType::Float16),
    ];
    let dims = prop::collection::vec(prop::option::of(hostile_dim()), 0..5);
    let values = prop::option::of(prop::collection::vec(prop::option::of(hostile_i64()), 0..5));
    prop_oneof![
        1 => Just(In::Missing),
        1 => Just(In::Unknown),
        3 => hostile_const().prop_map(In::Const),
        3 => (dtype, dims, values).prop_map(|(d, s, v)| In::Shaped(d, s, v)),
    ]
}

fn facts_of(i: &In, syms: &mut Symbols) -> Option<ValueFacts> {
    Some(match i {
        In::Missing => return None,
        In::Unknown => ValueFacts::default(),
        In::Const(c) => ValueFacts::of_constant(c.clone()),
        In::Shaped(dtype, dims, values) => ValueFacts {
            dtype: Some(*dtype),
            shape: Some(Shape::new(
                dims.iter()
                    .map(|d| d.map_or_else(|| syms.fresh_dim(), Dim::Known))
                    .collect::<Vec<_>>(),
            )),
            constant: None,
            // Deliberately unchecked against the shape: inference must not trust it blindly.
            shape_value: values.as_ref().map(|v| {
                v.iter()
                    .map(|e| {
                        e.map(|x| {
                            if x == 7 {
                                Dim::Sym(syms.named("N"))
                            } else {
                                Dim::Known(x)
                            }
                        })
                    })
                    .collect()
            }),
        },
    })
}

const OPS: &[&str] = &[
    "Add",
    "Sub",
    "Mul",
    "Div",
    "Mod",
    "Pow",
    "Neg",
    "Abs",
    "Sqrt",
    "Reciprocal",
    "Floor",
    "Sign",
    "BitShift",
    "BitwiseAnd",
    "BitwiseNot",
    "Max",
    "Min",
    "Sum",
    "Mean",
    "Equal",
    "Less",
    "Greater",
    "LessOrEqual",
    "Not",
    "And",
    "Or",
    "Xor",
    "Where",
    "Cast",
    "CastLike",
    "Identity",
    "Shape",
    "Size",
    "Reshape",
    "Flatten",
    "Squeeze",
    "Unsqueeze",
    "Transpose",
    "Concat",
    "Split",
    "Expand",
    "Tile",
    "Pad",
    "DepthToSpace",
    "SpaceToDepth",
    "Resize",
    "Upsample",
    "CenterCropPad",
    "Gather",
    "GatherElements",
    "GatherND",
    "Slice",
    "OneHot",
    "NonZero",
    "Compress",
    "TopK",
    "Unique",
    "ReduceSum",
    "ReduceProd",
    "ReduceMax",
    "ReduceMin",
    "ReduceMean",
    "ArgMax",
    "MatMul",
    "Gemm",
    "Einsum",
    "Det",
    "Conv",
    "ConvTranspose",
    "MaxPool",
    "AveragePool",
    "GlobalAveragePool",
    "LayerNormalization",
    "BatchNormalization",
    "SoftmaxCrossEntropyLoss",
    "LSTM",
    "Attention",
    "Constant",
    "ConstantOfShape",
    "Range",
    "EyeLike",
    "RandomNormal",
    "Multinomial",
    "HannWindow",
    "QuantizeLinear",
    "DequantizeLinear",
    "Dropout",
    "Softmax",
];

fn attribute() -> impl Strategy<Value = AttributeProto> {
    let names = prop::sample::select(vec![
        "axis",
        "axes",
        "perm",
        "keepdims",
        "to",
        "allowzero",
        "start",
        "end",
        "split",
        "num_outputs",
        "transA",
        "transB",
        "kernel_shape",
        "strides",
        "pads",
        "dilations",
        "blocksize",
        "k",
        "fmod",
        "batch_dims",
        "noop_with_empty_axes",
        "group",
        "ceil_mode",
        "output_shape",
        "shape",
        "starts",
        "ends",
        "value_ints",
        "value_int",
        "sample_size",
        "hidden_size",
        "stash_type",
        "dtype",
        "output_padding",
        "q_num_heads",
        "kv_num_heads",
    ]);
    let ints = prop::collection::vec(hostile_i64(), 0..5);
    (names, hostile_i64(), ints, any::<bool>(), any::<bool>()).prop_map(
        |(name, i, ints, list, reference)| AttributeProto {
            name: Some(name.into()),
            r#type: Some(if list {
                AttributeType::Ints
            } else {
                AttributeType::Int
            } as i32),
            i: (!list).then_some(i),
            ints: if list { ints } else { Vec::new() },
            ref_attr_name: reference.then(|| "outer".into()),
            ..Default::default()
        },
    )
}

fn string_attribute() -> impl Strategy<Value = AttributeProto> {
    let names = prop::sample::select(vec![
        "equation",
        "auto_pad",
        "direction",
        "reduction",
        "mode",
    ]);
    let values = prop::sample::select(vec![
        "ij,jk->ik",
        "...i,i",
        "i..j",
        "->",
        "SAME_UPPER",
        "VALID",
        "LEFT",
        "RIGHT",
        "none",
        "",
        "bidirectional",
        "ab,ab,ab->a",
        ",",
    ]);
    (names, values).prop_map(|(n, v)| AttributeProto {
        name: Some(n.into()),
        r#type: Some(AttributeType::String as i32),
        s: Some(v.as_bytes().to_vec().into()),
        ..Default::default()
    })
}

proptest! {
    // No failure files: they would land outside this module's folder; a failure prints its
    // minimal input instead.
    #![proptest_config(ProptestConfig {
        cases: 10000,
        failure_persistence: None,
        ..ProptestConfig::default()
    })]

    /// `infer` returns `outputs` facts and never panics, whatever the inputs and attributes.
    #[test]
    fn infer_never_panics(
        op in prop::sample::select(OPS),
        opset in prop_oneof![Just(1i64), Just(6), Just(9), Just(11), Just(13), Just(18), Just(21), Just(0)],
        inputs in prop::collection::vec(input(), 0..6),
        attrs in prop::collection::vec(attribute(), 0..4),
        strings in prop::collection::vec(string_attribute(), 0..2),
        outputs in 0usize..5,
    ) {
        let mut syms = Symbols::new();
        let facts: Vec<Option<ValueFacts>> = inputs.iter().map(|i| facts_of(i, &mut syms)).collect();
        let refs: Vec<Option<&ValueFacts>> = facts.iter().map(Option::as_ref).collect();
        let mut all = attrs;
        all.extend(strings);
        let info = OpInfo { domain: "", op_type: op, attributes: &all, opset, outputs };
        // Work is bounded by the limits, not by the dims a model states: a case takes
        // microseconds, so a second means a loop over some huge declared size.
        let t0 = std::time::Instant::now();
        let out = infer(&info, &refs, &mut syms, &Limits::default());
        prop_assert!(t0.elapsed().as_millis() < 1000, "{} took {:?}", op, t0.elapsed());
        prop_assert_eq!(out.len(), outputs);
        for f in &out {
            // A constant always agrees with the dims stated beside it.
            if let (Some(c), Some(s)) = (&f.constant, &f.shape) {
                prop_assert_eq!(s.known_dims(&mut syms), Some(c.dims.clone()));
                prop_assert_eq!(Some(c.dtype), f.dtype);
            }
        }
    }

    /// The folding kernels decline rather than panic, and agree with exact arithmetic when they
    /// do fold.
    #[test]
    fn integer_folding_is_exact_or_declines(a in hostile_const(), b in hostile_const()) {
        use super::fold::{self, Binary};
        for op in [Binary::Add, Binary::Sub, Binary::Mul, Binary::Div, Binary::Mod { fmod: false },
                   Binary::Mod { fmod: true }, Binary::Max, Binary::Min, Binary::BitAnd,
                   Binary::ShiftLeft] {
            let r = fold::binary(op, &a, &b, 1024);
            if let (Some(r), Some(x), Some(y)) = (r, a.to_i64s(), b.to_i64s())
                && a.dtype == DataType::Int64 && a.dims == b.dims
            {
                let got = r.to_i64s().unwrap_or_default();
                for ((p, q), g) in x.iter().zip(&y).zip(&got) {
                    let (p, q) = (i128::from(*p), i128::from(*q));
                    let exact = match op {
                        Binary::Add => p + q,
                        Binary::Sub => p - q,
                        Binary::Mul => p * q,
                        Binary::Div => p / q,
                        Binary::Max => p.max(q),
                        Binary::Min => p.min(q),
                        _ => i128::from(*g),
                    };
                    prop_assert_eq!(exact, i128::from(*g));
                }
            }
        }
        let t0 = std::time::Instant::now();
        for to in [DataType::Int8, DataType::Uint64, DataType::Float16, DataType::Bool, DataType::Double] {
            let _ = fold::cast(&a, to);
        }
        let _ = fold::select(
            &ConstTensor::new(vec![], ConstData::Bool(vec![true])).expect("scalar"), &a, &b, 1024);
        for axes in [&[][..], &[0][..], &[0, 1][..]] {
            let _ = fold::reduce(fold::Reduce::Prod, &a, axes, true, 1024);
        }
        prop_assert!(t0.elapsed().as_millis() < 1000, "folding took {:?}", t0.elapsed());
    }

    /// Broadcasting is commutative, up to the identity of fresh symbols.
    #[test]
    fn broadcast_is_commutative(
        a in prop::collection::vec(0usize..7, 0..4),
        b in prop::collection::vec(0usize..7, 0..4),
    ) {
        let mut syms = Symbols::new();
        let named: Vec<Dim> = ["A", "B", "C"].iter().map(|n| Dim::Sym(syms.named(n))).collect();
        // 0..4: known sizes 0..3; 4..7: the symbols.
        let dim = |k: usize| if k < 4 { Dim::Known(k as i64) } else { named[k - 4] };
        let sa = Shape::new(a.iter().map(|&k| dim(k)).collect::<Vec<_>>());
        let sb = Shape::new(b.iter().map(|&k| dim(k)).collect::<Vec<_>>());
        let ab = broadcast(&mut syms, &[&sa, &sb]);
        let ba = broadcast(&mut syms, &[&sb, &sa]);
        match (ab, ba) {
            (None, None) => {}
            (Some(x), Some(y)) => {
                prop_assert_eq!(x.rank(), y.rank());
                for (p, q) in x.0.iter().zip(&y.0) {
                    let fresh = |d: &Dim| matches!(d, Dim::Sym(_)) && !named.contains(d);
                    prop_assert!(p == q || (fresh(p) && fresh(q)), "{:?} vs {:?}", p, q);
                }
            }
            (x, y) => prop_assert!(false, "one order broadcasts: {:?} / {:?}", x, y),
        }
    }

    /// Merging is idempotent: merging the same facts again learns nothing and changes nothing.
    #[test]
    fn merge_is_idempotent(a in facts(), b in facts()) {
        let mut syms = Symbols::new();
        let (mut x, y) = (a.build(&mut syms), b.build(&mut syms));
        let self_merge = x.clone().merge(&x, &mut syms);
        prop_assert_eq!(self_merge, Ok(false));
        if x.merge(&y, &mut syms).is_ok() {
            let before = x.clone();
            prop_assert_eq!(x.merge(&y, &mut syms), Ok(false));
            prop_assert_eq!(&x, &before);
            let again = x.clone();
            prop_assert_eq!(x.merge(&again, &mut syms), Ok(false));
            // The merged facts know everything both sides knew.
            let (mut b, mut a) = (y.clone(), x.clone());
            prop_assert_eq!(a.merge_both(&b, &mut syms), Ok((false, b.merge(&x, &mut syms).is_ok_and(|c| c))));
        }
    }
}

/// A recipe for facts over a small alphabet, so merges often succeed and sometimes conflict.
#[derive(Clone, Debug)]
struct FactsRecipe {
    dtype: Option<bool>,
    shape: Option<Vec<u8>>,
    constant: Option<Vec<i64>>,
    values: Option<Vec<Option<u8>>>,
}

impl FactsRecipe {
    fn build(&self, syms: &mut Symbols) -> ValueFacts {
        let dim = |syms: &mut Symbols, k: u8| match k {
            0..=2 => Dim::Known(i64::from(k) + 1),
            3 => Dim::Sym(syms.named("A")),
            4 => Dim::Sym(syms.named("B")),
            _ => syms.fresh_dim(),
        };
        if let Some(c) = &self.constant {
            return ValueFacts::of_constant(ConstTensor::vector_i64(c.clone()));
        }
        let shape = self
            .shape
            .as_ref()
            .map(|s| Shape::new(s.iter().map(|&k| dim(syms, k)).collect::<Vec<_>>()));
        let mut f = ValueFacts {
            dtype: self
                .dtype
                .map(|i| if i { DataType::Int64 } else { DataType::Float }),
            shape,
            constant: None,
            shape_value: None,
        };
        if let (Some(v), Some(DataType::Int64)) = (&self.values, f.dtype) {
            let values: value::DimValues = v.iter().map(|e| e.map(|k| dim(syms, k))).collect();
            f = ValueFacts::of_dim_values(
                DataType::Int64,
                Shape::known(&[values.len() as i64]),
                values,
                syms,
            );
        }
        f
    }
}

fn facts() -> impl Strategy<Value = FactsRecipe> {
    (
        prop::option::of(any::<bool>()),
        prop::option::of(prop::collection::vec(0u8..6, 0..3)),
        prop::option::weighted(0.2, prop::collection::vec(1i64..4, 0..3)),
        prop::option::of(prop::collection::vec(prop::option::of(0u8..6), 0..3)),
    )
        .prop_map(|(dtype, shape, constant, values)| FactsRecipe {
            dtype,
            shape,
            constant,
            values,
        })
}

#[test]
fn shared_constants_compare_by_value() {
    let a = ValueFacts::of_constant(ConstTensor::vector_i64(vec![1]));
    let b = ValueFacts {
        constant: Some(Arc::new(ConstTensor::vector_i64(vec![1]))),
        ..a.clone()
    };
    assert_eq!(a, b);
}
