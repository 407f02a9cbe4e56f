//! Test support for passes: build a model from ONNX text syntax, run a pass, print the result
//! for a snapshot, and check by execution (tract-onnx, in process) that it computes what the
//! original computed.

use std::collections::BTreeMap;

use half::f16;
use onnx_rewrite_ir::Model;
use onnx_rewrite_pass::{Pass, PassContext, PassReport};
use onnx_rewrite_proto::tensor_proto::DataType;
use onnx_rewrite_proto::tensor_shape_proto::dimension::Value as Dim;
use onnx_rewrite_proto::type_proto::Value as Ty;
use onnx_rewrite_proto::{Message, ModelProto};
use onnx_rewrite_text::{PrintOptions, parse_model, print_model};
use tract_onnx::prelude::*;

/// A model from ONNX text syntax (panics with the parse error: test input is ours).
pub fn model(text: &str) -> Model {
    let proto = parse_model(text).unwrap_or_else(|e| panic!("test model parses: {e}"));
    onnx_rewrite_ir::load::from_proto(proto, None)
        .unwrap_or_else(|e| panic!("test model loads: {e}"))
}

/// The model in ONNX text syntax, initializers of more than 16 elements abbreviated.
pub fn text(model: &Model) -> String {
    let proto = onnx_rewrite_ir::save::to_proto(model).expect("the model converts to a proto");
    print_model(
        &proto,
        &PrintOptions {
            abbreviate_initializers_over: Some(16),
        },
    )
}

pub fn bytes(model: &Model) -> Vec<u8> {
    onnx_rewrite_ir::save::to_bytes(model).expect("the model serializes")
}

/// Runs `pass` on `source` twice (the second run must change nothing) and returns the
/// rewritten model and the first run's report.
pub fn apply(pass: &dyn Pass, source: &Model) -> (Model, PassReport) {
    let mut model = source.clone();
    let report = pass
        .run(&mut model, &PassContext::default())
        .unwrap_or_else(|e| panic!("{} runs: {e}", pass.name()));
    model.check().expect("IR invariants hold after the pass");
    let mut again = model.clone();
    pass.run(&mut again, &PassContext::default())
        .unwrap_or_else(|e| panic!("{} runs again: {e}", pass.name()));
    assert_eq!(
        bytes(&again),
        bytes(&model),
        "{} applied to its own output changes nothing",
        pass.name()
    );
    (model, report)
}

/// Runs `pass` on `source` with `options` (flag, value) and `--trace-rules` on, and checks the
/// one channel every pass reports through: it declines something, and each decline (its rule,
/// node and reason) is also a line of the trace. Returns the report.
pub fn assert_declines_traced(
    pass: &dyn Pass,
    source: &Model,
    options: &[(&str, Option<&str>)],
) -> PassReport {
    let mut model = source.clone();
    let mut cx = PassContext {
        trace: true,
        ..PassContext::default()
    };
    for (flag, value) in options {
        cx.options.set(flag, value.map(str::to_owned));
    }
    let report = pass
        .run(&mut model, &cx)
        .unwrap_or_else(|e| panic!("{} runs: {e}", pass.name()));
    assert!(
        !report.declined.is_empty(),
        "{}: the fixture must make the pass decline something",
        pass.name()
    );
    for d in &report.declined {
        assert!(
            report.trace.iter().any(|line| line.contains(&d.rule)
                && line.contains("declined")
                && line.contains(&d.reason)),
            "{}: decline {d:?} is not in the trace {:#?}",
            pass.name(),
            report.trace
        );
    }
    report
}

/// A MoE-style dispatch in ONNX text that no detector reads as a layer: a router `TopK` (top
/// `k` of `experts`) and, for each id in `tested`, that expert's tokens found with
/// `NonZero(Equal(ids, e))`, gathered and summed. The first expert's nodes are named `router`,
/// `pick`, `rows`; the others `pick{e}`, `rows{e}`.
pub fn moe_dispatch_text(experts: usize, k: usize, tested: &[i64]) -> String {
    let ids: Vec<String> = tested
        .iter()
        .map(|e| format!("int64 e{e} = {{{e}}}"))
        .collect();
    let mut body = String::from("   [router] w, ids = TopK <axis: int = -1> (logits, k)\n");
    let mut sums = Vec::new();
    for (i, e) in tested.iter().enumerate() {
        let s = if i == 0 { String::new() } else { e.to_string() };
        body.push_str(&format!(
            "   [pick{s}] hit{e} = Equal (ids, e{e})\n   [rows{s}] nz{e} = NonZero (hit{e})\n   [first{s}] tok{e} = Gather <axis: int = 0> (nz{e}, zero)\n   [take{s}] xs{e} = Gather <axis: int = 0> (x, tok{e})\n   [sum{s}] y{e} = ReduceSum <keepdims: int = 0> (xs{e}, axis0)\n"
        ));
        sums.push(format!("y{e}"));
    }
    let mut total = sums[0].clone();
    for (i, next) in sums.iter().enumerate().skip(1) {
        let out = if i + 1 == sums.len() {
            "y".to_owned()
        } else {
            format!("acc{i}")
        };
        body.push_str(&format!("   [add{i}] {out} = Add ({total}, {next})\n"));
        total = out;
    }
    if sums.len() == 1 {
        body.push_str(&format!("   [out] y = Identity ({total})\n"));
    }
    format!(
        "<ir_version: 10, opset_import: [\"\" : 17]>\ng (float[T,4] x, float[T,{experts}] logits) => (float[4] y) <int64[1] k = {{{k}}}, int64 zero = {{0}}, int64[1] axis0 = {{0}}, {}> {{\n{body}}}",
        ids.join(", ")
    )
}

/// Deterministic pseudo-random inputs for every graph input, symbolic dims bound to `dim`.
pub fn inputs(model: &Model, dim: usize, seed: u64) -> Vec<Tensor> {
    inputs_sized(model, &[dim], seed)
}

/// Deterministic pseudo-random inputs where the n-th distinct symbolic dim gets `sizes[n]`
/// (cycling; a dim with neither value nor name gets `sizes[0]`), so that a batch/sequence
/// mix-up shows. Floats lie in [-2, 2], integers in [-3, 3].
pub fn inputs_sized(model: &Model, sizes: &[usize], seed: u64) -> Vec<Tensor> {
    assert!(!sizes.is_empty(), "at least one size for symbolic dims");
    let proto = onnx_rewrite_ir::save::to_proto(model).expect("converts");
    let graph = proto.graph.expect("has a graph");
    let mut state = seed
        .wrapping_mul(6_364_136_223_846_793_005)
        .wrapping_add(1_442_695_040_888_963_407);
    let mut next = move || {
        state ^= state << 13;
        state ^= state >> 7;
        state ^= state << 17;
        state
    };
    let mut named: BTreeMap<String, usize> = BTreeMap::new();
    graph
        .input
        .iter()
        .filter(|i| !graph.initializer.iter().any(|t| t.name() == i.name()))
        .map(|input| {
            let Some(Ty::TensorType(t)) = input.r#type.as_ref().and_then(|t| t.value.as_ref())
            else {
                panic!("input {} is a tensor", input.name())
            };
            let shape: Vec<usize> = t
                .shape
                .as_ref()
                .map(|s| {
                    s.dim
                        .iter()
                        .map(|d| match &d.value {
                            Some(Dim::DimValue(v)) => *v as usize,
                            Some(Dim::DimParam(p)) => {
                                let n = named.len();
                                *named.entry(p.clone()).or_insert(sizes[n % sizes.len()])
                            }
                            None => sizes[0],
                        })
                        .collect()
                })
                .unwrap_or_default();
            let count: usize = shape.iter().product();
            match DataType::try_from(t.elem_type()).expect("known element type") {
                DataType::Float => Tensor::from_shape(
                    &shape,
                    &(0..count)
                        .map(|_| (next() % 2001) as f32 / 500.0 - 2.0)
                        .collect::<Vec<f32>>(),
                ),
                DataType::Float16 => Tensor::from_shape(
                    &shape,
                    &(0..count)
                        .map(|_| f16::from_f32((next() % 2001) as f32 / 500.0 - 2.0))
                        .collect::<Vec<f16>>(),
                ),
                DataType::Double => Tensor::from_shape(
                    &shape,
                    &(0..count)
                        .map(|_| (next() % 2001) as f64 / 500.0 - 2.0)
                        .collect::<Vec<f64>>(),
                ),
                DataType::Int64 => Tensor::from_shape(
                    &shape,
                    &(0..count)
                        .map(|_| (next() % 7) as i64 - 3)
                        .collect::<Vec<i64>>(),
                ),
                DataType::Int32 => Tensor::from_shape(
                    &shape,
                    &(0..count)
                        .map(|_| (next() % 7) as i32 - 3)
                        .collect::<Vec<i32>>(),
                ),
                DataType::Bool => Tensor::from_shape(
                    &shape,
                    &(0..count).map(|_| next() % 2 == 0).collect::<Vec<bool>>(),
                ),
                other => panic!("no random inputs for {other:?}"),
            }
            .expect("shape matches data")
        })
        .collect()
}

/// Runs a serialized model with tract on `inputs`.
pub fn execute(model: &[u8], inputs: &[Tensor]) -> Vec<Tensor> {
    // Declared output shapes and value_info say nothing the run needs, and symbolic ones
    // (`N`) would be unified with the concrete input sizes and fail, as in `--verify`.
    let mut m = tract_onnx::onnx()
        .with_ignore_output_shapes(true)
        .with_ignore_value_info(true)
        .model_for_read(&mut &model[..])
        .expect("tract reads the model");
    for (i, input) in inputs.iter().enumerate() {
        m = m
            .with_input_fact(
                i,
                InferenceFact::dt_shape(input.datum_type(), input.shape()),
            )
            .expect("input fact");
    }
    let plan = m
        .into_optimized()
        .expect("tract optimizes")
        .into_runnable()
        .expect("tract plans");
    let outputs = plan
        .run(inputs.iter().cloned().map(TValue::from).collect())
        .expect("tract runs");
    outputs.into_iter().map(|v| v.into_tensor()).collect()
}

/// Checks that `after` computes what `before` computes on random inputs (symbolic dims bound
/// to 1, 3 and 5), within `rtol`/`atol` (the tolerance table of DESIGN.md).
pub fn assert_same_outputs(before: &Model, after: &Model, rtol: f64, atol: f64) {
    assert_same_outputs_on(
        before,
        after,
        rtol,
        atol,
        &[(1, &[1]), (2, &[3]), (3, &[5])],
    );
}

/// [`assert_same_outputs`] on the given draws: a seed and the sizes of the symbolic dims
/// (see [`inputs_sized`]).
pub fn assert_same_outputs_on(
    before: &Model,
    after: &Model,
    rtol: f64,
    atol: f64,
    draws: &[(u64, &[usize])],
) {
    let (b, a) = (bytes(before), bytes(after));
    for &(seed, sizes) in draws {
        let inputs = inputs_sized(before, sizes, seed);
        let want = execute(&b, &inputs);
        let got = execute(&a, &inputs);
        assert_eq!(got.len(), want.len(), "output count");
        for (i, (g, w)) in got.iter().zip(&want).enumerate() {
            assert_eq!(g.shape(), w.shape(), "output {i} shape (sizes {sizes:?})");
            let (g, w) = (
                g.cast_to::<f64>().expect("numeric"),
                w.cast_to::<f64>().expect("numeric"),
            );
            let (g, w) = (
                g.to_plain_array_view::<f64>().expect("f64"),
                w.to_plain_array_view::<f64>().expect("f64"),
            );
            for (x, y) in g.iter().zip(w.iter()) {
                assert!(
                    (x - y).abs() <= atol + rtol * y.abs() || (x.is_nan() && y.is_nan()),
                    "output {i}: {x} vs {y} (sizes {sizes:?}, seed {seed})"
                );
            }
        }
    }
}

/// A decoded copy of the model's proto, for structural assertions.
pub fn proto(model: &Model) -> ModelProto {
    ModelProto::decode(bytes(model).as_slice()).expect("decodes")
}

/// How many nodes of `op_type` the main graph and its subgraphs hold.
pub fn count_ops(model: &Model, op_type: &str) -> usize {
    model
        .graph_ids()
        .flat_map(|g| model.graph(g).nodes().to_vec())
        .filter(|n| model.node(*n).op_type() == op_type)
        .count()
}
