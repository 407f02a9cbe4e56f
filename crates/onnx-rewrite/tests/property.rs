//! Property test: random well-typed graphs → lower → (rules) → extract → execute with
//! tract-onnx, in process; the outputs must equal the original's, the interface must not
//! change, and a second application must change nothing.
//!
//! The generator builds graphs over `float[3,4]` values from a menu of operators, including
//! multi-output ones (Split), attribute variants (Gemm transB), constants, and deliberate
//! duplicates of earlier nodes so that hash-consing has something to merge.

use std::sync::Arc;

use onnx_rewrite::egraph::example::RemoveIdentity;
use onnx_rewrite::egraph::extract::NodeCount;
use onnx_rewrite::egraph::rule::Rule;
use onnx_rewrite::egraph::run::{RewriteOptions, rewrite_model};
use onnx_rewrite::proto::tensor_proto::DataType;
use onnx_rewrite::proto::*;
use proptest::prelude::*;
use tract_onnx::prelude::*;

const ROWS: usize = 3;
const COLS: usize = 4;

/// One step of the generator; indices pick earlier values (modulo how many exist).
#[derive(Debug, Clone)]
enum Step {
    Unary(&'static str, usize),
    Binary(&'static str, usize, usize),
    AddBias(usize),
    MatMul(usize),
    Gemm {
        a: usize,
        trans_b: bool,
        alpha: f32,
    },
    TransposeTwice(usize),
    ReshapeRoundTrip(usize),
    ConcatSplit {
        a: usize,
        b: usize,
        take_second: bool,
    },
    /// Repeat the node that produced an earlier value, verbatim (a duplicate to merge).
    Repeat(usize),
}

fn step() -> impl Strategy<Value = Step> {
    let i = 0usize..64;
    prop_oneof![
        (
            prop::sample::select(vec!["Relu", "Neg", "Abs", "Sigmoid", "Tanh", "Identity"]),
            i.clone()
        )
            .prop_map(|(op, a)| Step::Unary(op, a)),
        (
            prop::sample::select(vec!["Add", "Sub", "Mul", "Max"]),
            i.clone(),
            i.clone()
        )
            .prop_map(|(op, a, b)| Step::Binary(op, a, b)),
        i.clone().prop_map(Step::AddBias),
        i.clone().prop_map(Step::MatMul),
        (
            i.clone(),
            any::<bool>(),
            prop::sample::select(vec![1.0f32, 0.5, 2.0])
        )
            .prop_map(|(a, trans_b, alpha)| Step::Gemm { a, trans_b, alpha }),
        i.clone().prop_map(Step::TransposeTwice),
        i.clone().prop_map(Step::ReshapeRoundTrip),
        (i.clone(), i.clone(), any::<bool>()).prop_map(|(a, b, take_second)| Step::ConcatSplit {
            a,
            b,
            take_second
        }),
        i.prop_map(Step::Repeat),
    ]
}

struct Builder {
    nodes: Vec<NodeProto>,
    initializers: Vec<TensorProto>,
    /// Values of type float[3,4], and the node index that made each (None for inputs).
    values: Vec<(String, Option<usize>)>,
    counter: usize,
}

impl Builder {
    fn fresh(&mut self, stem: &str) -> String {
        self.counter += 1;
        format!("{stem}_{}", self.counter)
    }

    fn pick(&self, i: usize) -> String {
        self.values[i % self.values.len()].0.clone()
    }

    fn node(
        &mut self,
        op: &str,
        inputs: Vec<String>,
        outputs: Vec<String>,
        attributes: Vec<AttributeProto>,
    ) -> usize {
        let name = self.fresh(op);
        self.nodes.push(NodeProto {
            op_type: Some(op.into()),
            name: Some(name),
            input: inputs,
            output: outputs,
            attribute: attributes,
            ..Default::default()
        });
        self.nodes.len() - 1
    }

    fn value(&mut self, op: &str, inputs: Vec<String>, attributes: Vec<AttributeProto>) -> String {
        let out = self.fresh("v");
        let index = self.node(op, inputs, vec![out.clone()], attributes);
        self.values.push((out.clone(), Some(index)));
        out
    }

    fn constant(&mut self, dims: &[i64], seed: usize) -> String {
        let name = self.fresh("w");
        let count: i64 = dims.iter().product();
        let data: Vec<f32> = (0..count)
            .map(|k| (((k as usize * 7 + seed * 13) % 11) as f32 - 5.0) / 8.0)
            .collect();
        self.initializers.push(TensorProto {
            name: Some(name.clone()),
            dims: dims.to_vec(),
            data_type: Some(DataType::Float as i32),
            raw_data: Some(
                data.iter()
                    .flat_map(|f| f.to_le_bytes())
                    .collect::<Vec<u8>>()
                    .into(),
            ),
            ..Default::default()
        });
        name
    }

    fn int_constant(&mut self, values: &[i64]) -> String {
        let name = self.fresh("shape");
        self.initializers.push(TensorProto {
            name: Some(name.clone()),
            dims: vec![values.len() as i64],
            data_type: Some(DataType::Int64 as i32),
            int64_data: values.to_vec(),
            ..Default::default()
        });
        name
    }
}

fn attr_i(name: &str, v: i64) -> AttributeProto {
    AttributeProto {
        name: Some(name.into()),
        r#type: Some(attribute_proto::AttributeType::Int as i32),
        i: Some(v),
        ..Default::default()
    }
}

fn attr_f(name: &str, v: f32) -> AttributeProto {
    AttributeProto {
        name: Some(name.into()),
        r#type: Some(attribute_proto::AttributeType::Float as i32),
        f: Some(v),
        ..Default::default()
    }
}

fn attr_ints(name: &str, v: &[i64]) -> AttributeProto {
    AttributeProto {
        name: Some(name.into()),
        r#type: Some(attribute_proto::AttributeType::Ints as i32),
        ints: v.to_vec(),
        ..Default::default()
    }
}

fn float_io(name: &str) -> ValueInfoProto {
    use tensor_shape_proto::{Dimension, dimension::Value};
    let dim = |d: usize| Dimension {
        value: Some(Value::DimValue(d as i64)),
        denotation: None,
    };
    ValueInfoProto {
        name: Some(name.into()),
        r#type: Some(TypeProto {
            value: Some(type_proto::Value::TensorType(type_proto::Tensor {
                elem_type: Some(DataType::Float as i32),
                shape: Some(TensorShapeProto {
                    dim: vec![dim(ROWS), dim(COLS)],
                }),
            })),
            denotation: None,
        }),
        ..Default::default()
    }
}

fn build(steps: &[Step], extra_outputs: &[usize]) -> ModelProto {
    let mut b = Builder {
        nodes: Vec::new(),
        initializers: Vec::new(),
        values: vec![("x0".into(), None), ("x1".into(), None)],
        counter: 0,
    };
    for (k, s) in steps.iter().enumerate() {
        match s {
            Step::Unary(op, a) => {
                let a = b.pick(*a);
                b.value(op, vec![a], vec![]);
            }
            Step::Binary(op, x, y) => {
                let (x, y) = (b.pick(*x), b.pick(*y));
                b.value(op, vec![x, y], vec![]);
            }
            Step::AddBias(a) => {
                let a = b.pick(*a);
                let bias = b.constant(&[COLS as i64], k);
                b.value("Add", vec![a, bias], vec![]);
            }
            Step::MatMul(a) => {
                let a = b.pick(*a);
                let w = b.constant(&[COLS as i64, COLS as i64], k);
                b.value("MatMul", vec![a, w], vec![]);
            }
            Step::Gemm { a, trans_b, alpha } => {
                let a = b.pick(*a);
                let w = b.constant(&[COLS as i64, COLS as i64], k);
                let c = b.constant(&[COLS as i64], k + 1);
                b.value(
                    "Gemm",
                    vec![a, w, c],
                    vec![
                        attr_i("transB", i64::from(*trans_b)),
                        attr_f("alpha", *alpha),
                    ],
                );
            }
            Step::TransposeTwice(a) => {
                let a = b.pick(*a);
                let t = b.fresh("t");
                b.node(
                    "Transpose",
                    vec![a],
                    vec![t.clone()],
                    vec![attr_ints("perm", &[1, 0])],
                );
                b.value("Transpose", vec![t], vec![attr_ints("perm", &[1, 0])]);
            }
            Step::ReshapeRoundTrip(a) => {
                let a = b.pick(*a);
                let flat_shape = b.int_constant(&[(ROWS * COLS) as i64]);
                let back_shape = b.int_constant(&[ROWS as i64, COLS as i64]);
                let flat = b.fresh("flat");
                b.node("Reshape", vec![a, flat_shape], vec![flat.clone()], vec![]);
                b.value("Reshape", vec![flat, back_shape], vec![]);
            }
            Step::ConcatSplit {
                a,
                b: other,
                take_second,
            } => {
                let (x, y) = (b.pick(*a), b.pick(*other));
                let cat = b.fresh("cat");
                b.node(
                    "Concat",
                    vec![x, y],
                    vec![cat.clone()],
                    vec![attr_i("axis", 1)],
                );
                let (first, second) = (b.fresh("s"), b.fresh("s"));
                let index = b.node(
                    "Split",
                    vec![cat],
                    vec![first.clone(), second.clone()],
                    vec![attr_i("axis", 1), attr_i("num_outputs", 2)],
                );
                b.values
                    .push((if *take_second { second } else { first }, Some(index)));
            }
            Step::Repeat(i) => {
                let (_, producer) = b.values[i % b.values.len()].clone();
                if let Some(index) = producer {
                    let mut copy = b.nodes[index].clone();
                    copy.name = Some(b.fresh("repeat"));
                    copy.output = copy.output.iter().map(|_| b.fresh("r")).collect();
                    let outputs = copy.output.clone();
                    b.nodes.push(copy);
                    let index = b.nodes.len() - 1;
                    b.values.push((outputs[0].clone(), Some(index)));
                }
            }
        }
    }
    let mut outputs: Vec<String> = vec![
        b.values
            .last()
            .map(|v| v.0.clone())
            .unwrap_or_else(|| "x0".into()),
    ];
    for i in extra_outputs {
        let name = b.pick(*i);
        if !outputs.contains(&name) {
            outputs.push(name);
        }
    }
    ModelProto {
        ir_version: Some(10),
        opset_import: vec![OperatorSetIdProto {
            domain: Some(String::new()),
            version: Some(18),
        }],
        graph: Some(GraphProto {
            name: Some("random".into()),
            node: b.nodes,
            initializer: b.initializers,
            input: vec![float_io("x0"), float_io("x1")],
            output: outputs.iter().map(|o| float_io(o)).collect(),
            ..Default::default()
        }),
        ..Default::default()
    }
}

fn execute(bytes: &[u8], inputs: &[Vec<f32>]) -> Vec<Vec<f32>> {
    let mut model = tract_onnx::onnx()
        .model_for_read(&mut &bytes[..])
        .expect("tract reads the model");
    for i in 0..inputs.len() {
        model = model
            .with_input_fact(i, f32::fact([ROWS, COLS]).into())
            .expect("input fact");
    }
    let model = model
        .into_optimized()
        .expect("tract optimizes")
        .into_runnable()
        .expect("tract plans");
    let inputs: TVec<TValue> = inputs
        .iter()
        .map(|v| Tensor::from_shape(&[ROWS, COLS], v).expect("shape").into())
        .collect();
    let outputs = model.run(inputs).expect("tract runs");
    outputs
        .iter()
        .map(|t| {
            t.to_plain_array_view::<f32>()
                .expect("float output")
                .iter()
                .copied()
                .collect()
        })
        .collect()
}

fn assert_close(got: &[Vec<f32>], want: &[Vec<f32>]) {
    assert_eq!(got.len(), want.len());
    for (g, w) in got.iter().zip(want) {
        for (a, b) in g.iter().zip(w) {
            assert!((a - b).abs() <= 1e-6 + 1e-5 * b.abs(), "{a} vs {b}");
        }
    }
}

fn rewrite(bytes: &[u8], rules: Vec<Arc<dyn Rule>>) -> Vec<u8> {
    let mut model =
        onnx_rewrite::ir::load::load_bytes(bytes.to_vec().into(), None, &Default::default())
            .expect("loads");
    let options = RewriteOptions {
        limits: Default::default(),
        cost: &NodeCount,
        fold_constants: false,
        trace: false,
        only_anchored_graphs: false,
    };
    rewrite_model(&mut model, &rules, &options).expect("rewrites");
    model.check().expect("IR invariants");
    onnx_rewrite::ir::save::to_bytes(&model).expect("saves")
}

proptest! {
    #![proptest_config(ProptestConfig { cases: 48, ..ProptestConfig::default() })]

    #[test]
    fn lower_extract_preserves_semantics(
        steps in prop::collection::vec(step(), 1..24),
        extra in prop::collection::vec(0usize..64, 0..3),
        x0 in prop::collection::vec(-2.0f32..2.0, ROWS * COLS),
        x1 in prop::collection::vec(-2.0f32..2.0, ROWS * COLS),
    ) {
        let original = build(&steps, &extra).encode_to_vec();
        let inputs = [x0, x1];
        let want = execute(&original, &inputs);
        for rules in [Vec::new(), vec![Arc::new(RemoveIdentity) as Arc<dyn Rule>]] {
            let once = rewrite(&original, rules.clone());
            assert_close(&execute(&once, &inputs), &want);
            let decoded = ModelProto::decode(once.as_slice()).expect("decodes");
            let names = |m: &ModelProto| m.graph.as_ref().map(|g| (g.input.iter().map(|i| i.name().to_owned()).collect::<Vec<_>>(), g.output.iter().map(|o| o.name().to_owned()).collect::<Vec<_>>()));
            prop_assert_eq!(names(&decoded), names(&ModelProto::decode(original.as_slice()).expect("decodes")));
            prop_assert_eq!(rewrite(&once, rules), once.clone(), "a second application changes nothing");
        }
    }
}
