//! The placement predictor on graphs whose outcome follows from ORT's code (research notes
//! §2-§4): one ORT behaviour per test.

use onnx_rewrite_placement::{MemcpyKind, PredictOptions, Prediction, predict};
use onnx_rewrite_testkit::model;

fn prediction(opset: i64, graph: &str) -> Prediction {
    let m = model(&format!(
        "<ir_version: 10, opset_import: [\"\" : {opset}]>\n{graph}"
    ));
    predict(&m, &PredictOptions::default()).expect("predicts")
}

fn copies(p: &Prediction) -> Vec<(MemcpyKind, String)> {
    p.graphs
        .iter()
        .flat_map(|g| g.memcpy.iter().map(|m| (m.kind, m.tensor.clone())))
        .collect()
}

const SCALE: &str = r#"g (float[B,S,8] x) => (float[B,S,8] y) <int64 last = {-1}, float one = {1}> {
   a = Sigmoid (x)
   s = Shape (a)
   d = Gather <axis: int = 0> (s, last)
   f = Cast <to: int = 1> (d)
   r1 = Sqrt (f)
   r2 = Sqrt (f)
   u = Div (one, r1)
   v = Div (one, r2)
   m = Mul (a, u)
   y = Mul (m, v)
}"#;

#[test]
fn a_static_shape_folds_and_a_cpu_scalar_read_as_data_is_copied_once() {
    // `x` is [B,S,8]: Shape is not static, so the chain runs on the CPU; CSE merges the two
    // Sqrt/Div copies, so one tensor crosses (E1).
    let p = prediction(20, SCALE);
    assert_eq!(
        copies(&p),
        vec![(MemcpyKind::MemcpyFromHost, "u".to_owned())]
    );
    assert_eq!(p.graphs[0].level1.merged, 2);
    // With every dim static, ORT folds the Shape and everything after it.
    let p = prediction(
        20,
        &SCALE.replace(
            "float[B,S,8] x) => (float[B,S,8] y)",
            "float[2,3,8] x) => (float[2,3,8] y)",
        ),
    );
    assert_eq!(p.memcpy_nodes, 0);
}

#[test]
fn an_open_ended_cuda_registration_matches_only_its_version() {
    let graph = r#"g (int64[N] ids, float[N] x) => (float[N] y) <int64 pad = {0}, float zero = {0}> {
   t = Add (ids, ids)
   p = Equal (t, pad)
   y = Where (p, zero, x)
}"#;
    // Opset 18: Equal-13, which CUDA registers as `13+`.
    assert_eq!(prediction(18, graph).memcpy_nodes, 0);
    // Opset 20: Equal-19, which it does not: the mask goes to the host and back (E4).
    let p = prediction(20, graph);
    assert_eq!(
        copies(&p),
        vec![
            (MemcpyKind::MemcpyToHost, "t".to_owned()),
            (MemcpyKind::MemcpyFromHost, "p".to_owned())
        ]
    );
    assert!(p.graphs[0].no_cuda_kernel[0].reason.contains("Equal-19"));
}

#[test]
fn a_graph_input_read_on_both_devices_gets_one_copy() {
    let p = prediction(
        20,
        r#"g (int64[N] ids, float[N] x) => (int64[N] a, float[N] b) <int64 one = {1}> {
   s = Shape (x)
   a = Add (ids, s)
   f = Cast <to: int = 1> (ids)
   b = Mul (x, f)
}"#,
    );
    assert_eq!(
        copies(&p),
        vec![(MemcpyKind::MemcpyFromHost, "ids".to_owned())]
    );
}

#[test]
fn a_float16_input_keeps_the_consumer_on_the_device() {
    // Rule A: the int64 -> float16 Cast still runs on the CPU; Sqrt(float16) does not, so the
    // Cast's output crosses (E2).
    let p = prediction(
        20,
        r#"g (float16[B,S] x) => (float16[B,S] y) <int64 last = {-1}> {
   a = Sigmoid (x)
   s = Shape (a)
   d = Gather <axis: int = 0> (s, last)
   h = Cast <to: int = 10> (d)
   r = Sqrt (h)
   y = Mul (a, r)
}"#,
    );
    assert_eq!(
        copies(&p),
        vec![(MemcpyKind::MemcpyFromHost, "h".to_owned())]
    );
}

#[test]
fn a_computed_cpu_input_at_a_cpu_memory_slot_keeps_the_node_on_the_device() {
    // Rule D: Slice's bounds are read in CPU memory; computed on the host, they keep Slice on
    // CUDA even though its data is the host shape vector, which then crosses twice.
    let p = prediction(
        20,
        r#"g (float[B,S,8] x) => (float[B,S,8] y) <int64[1] zero = {0}, int64 one = {1}, int64[1] axis0 = {0}> {
   a = Sigmoid (x)
   s = Shape (a)
   n = Gather <axis: int = 0> (s, one)
   e = Unsqueeze (n, axis0)
   v = Slice (s, zero, e)
   y = Reshape (a, v)
}"#,
    );
    assert_eq!(
        copies(&p),
        vec![
            (MemcpyKind::MemcpyFromHost, "s".to_owned()),
            (MemcpyKind::MemcpyToHost, "v".to_owned())
        ]
    );
}

#[test]
fn range_reads_its_bounds_on_the_host_and_writes_to_the_device() {
    // The bridge the pass builds: no copy node.
    let p = prediction(
        20,
        r#"g (float[B,S] x) => (float[B,S] y) <int64 one = {1}, int64[0] scalar = {}> {
   a = Sigmoid (x)
   s = Shape (a)
   n = Gather <axis: int = 0> (s, one)
   l = Add (n, one)
   r = Range (n, l, one)
   d = Reshape (r, scalar)
   f = Cast <to: int = 1> (d)
   y = Mul (a, f)
}"#,
    );
    assert_eq!(p.memcpy_nodes, 0);
}

#[test]
fn cast_like_is_inlined_into_a_cast_that_folds() {
    // CastLike has no kernel on any EP: ORT inlines its body (a Cast), which then folds.
    let p = prediction(
        20,
        r#"g (float[N] x) => (float[N] y) <float c = {0.25}> {
   a = Sigmoid (x)
   k = CastLike (c, a)
   r = Sqrt (k)
   y = Mul (a, r)
}"#,
    );
    assert_eq!(p.memcpy_nodes, 0);
    assert_eq!(p.graphs[0].no_cuda_kernel.len(), 0);
}

#[test]
fn constant_nodes_are_initializers_and_small_ones_are_shared() {
    let p = prediction(
        20,
        r#"g (float[B,S] x) => (float[B,S] y) {
   a = Sigmoid (x)
   s = Shape (a)
   i1 = Constant <value: tensor = int64 {1}> ()
   i2 = Constant <value: tensor = int64 {1}> ()
   n1 = Gather <axis: int = 0> (s, i1)
   n2 = Gather <axis: int = 0> (s, i2)
   f1 = Cast <to: int = 1> (n1)
   f2 = Cast <to: int = 1> (n2)
   m = Mul (a, f1)
   y = Mul (m, f2)
}"#,
    );
    // The two Constant nodes share one value, so the two chains merge: one copy, not two.
    assert_eq!(p.graphs[0].level1.constant_nodes, 2);
    assert_eq!(p.memcpy_nodes, 1);
}

#[test]
fn an_unknown_version_is_refused() {
    let m = model(
        "<ir_version: 10, opset_import: [\"\" : 20]>\ng (float[N] x) => (float[N] y) {\n y = Relu (x)\n}",
    );
    let options = PredictOptions {
        ort_version: Some("1.20.0".into()),
    };
    let err = predict(&m, &options).unwrap_err().to_string();
    assert!(err.contains("1.20.0") && err.contains("1.32.0"), "{err}");
}
