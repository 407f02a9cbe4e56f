//! Lower + saturate + extract + write back, on (a) the ModernBERT-large-size exports that
//! `tools/bench/make_modernbert_large.py` makes (28 layers, 1.6 GB; skipped when absent) and
//! (b) a synthetic decoder of about 1k, 10k and 100k nodes (`synthetic/mod.rs`), whose rule
//! matches grow with its size. Rules: gemm-to-matmul and identity removal.
//!
//! Prints, per model: nodes, e-graph size, rules applied, time per phase, total time and peak
//! anonymous memory; then the growth from 10k to 100k nodes (it should stay near linear: at
//! most about 12x time for 10x nodes).
//!
//! `cargo bench -p onnx-rewrite --bench egraph`

use std::path::{Path, PathBuf};
use std::sync::Arc;
use std::time::Instant;

use onnx_rewrite::egraph::example::RemoveIdentity;
use onnx_rewrite::egraph::extract::NodeCount;
use onnx_rewrite::egraph::rule::Rule;
use onnx_rewrite::egraph::run::{RewriteOptions, RewriteSummary, rewrite_model};
use onnx_rewrite::ir::{self, Model};
use onnx_rewrite::pass::RunLimits;
use onnx_rewrite::pass::count_nodes;
use onnx_rewrite::proto::Message;
use onnx_rewrite_gemm_to_matmul::GemmToMatMul;

#[global_allocator]
static ALLOCATOR: mimalloc::MiMalloc = mimalloc::MiMalloc;

mod support;
mod synthetic;

use support::AnonSampler;

struct Measured {
    nodes_before: usize,
    nodes_after: usize,
    seconds: f64,
    peak_anon_mib: u64,
    summary: RewriteSummary,
}

fn measure(mut model: Model) -> Measured {
    let rules: Vec<Arc<dyn Rule>> = vec![Arc::new(GemmToMatMul), Arc::new(RemoveIdentity)];
    let options = RewriteOptions {
        limits: RunLimits::default(),
        cost: &NodeCount,
        fold_constants: false,
        trace: false,
        only_anchored_graphs: false,
    };
    let nodes_before = count_nodes(&model);
    let sampler = AnonSampler::start();
    let start = Instant::now();
    let summary = rewrite_model(&mut model, &rules, &options).expect("the rewrite runs");
    let seconds = start.elapsed().as_secs_f64();
    let peak_anon_mib = sampler.stop() / 1024;
    Measured {
        nodes_before,
        nodes_after: count_nodes(&model),
        seconds,
        peak_anon_mib,
        summary,
    }
}

fn print(label: &str, m: &Measured) {
    let e = &m.summary.egraph;
    let applied: usize = m.summary.rules.values().sum();
    println!(
        "{label:<34} nodes {:>7} -> {:>7}  e-nodes {:>8}  e-classes {:>8}  iters {:>2}  applied {:>6}  lower {:>7.0} ms  saturate {:>7.0} ms  extract {:>7.0} ms  emit {:>7.0} ms  total {:>7.2} s  peak RssAnon {:>5} MiB",
        m.nodes_before,
        m.nodes_after,
        e.nodes,
        e.classes,
        e.iterations,
        applied,
        e.lower_ms,
        e.saturate_ms,
        e.extract_ms,
        e.emit_ms,
        m.seconds,
        m.peak_anon_mib
    );
}

fn main() {
    let bench_dir = std::env::var_os("ONNX_REWRITE_BENCH_DIR").map_or_else(
        || PathBuf::from(env!("CARGO_MANIFEST_DIR")).join("../../target/bench"),
        PathBuf::from,
    );
    let only_synthetic = std::env::var_os("ONNX_REWRITE_BENCH_LAYERS").is_some();
    for export in ["modernbert-large-dynamo", "modernbert-large-legacy"]
        .into_iter()
        .filter(|_| !only_synthetic)
    {
        let path = bench_dir.join(export).join("model.onnx");
        if !path.exists() {
            println!(
                "{export:<34} skipped: run tools/bench/make_modernbert_large.py to make {}",
                path.display()
            );
            continue;
        }
        let model = load(&path);
        print(export, &measure(model));
    }

    let mut totals = Vec::new();
    // ONNX_REWRITE_BENCH_LAYERS=N runs one size only (for profilers).
    let sizes: Vec<usize> = match std::env::var("ONNX_REWRITE_BENCH_LAYERS")
        .ok()
        .and_then(|v| v.parse().ok())
    {
        Some(layers) => vec![layers],
        None => vec![30, 300, 1000, 3000],
    };
    for layers in sizes {
        let bytes = synthetic::decoder(layers).encode_to_vec();
        let load = || {
            ir::load::load_bytes(bytes.clone().into(), None, &ir::LoadOptions::default())
                .expect("loads")
        };
        // Best of three below 100k nodes; one run at 100k.
        let runs = 3;
        let best = (0..runs)
            .map(|_| measure(load()))
            .min_by(|a, b| a.seconds.total_cmp(&b.seconds))
            .expect("at least one run");
        print(&format!("synthetic decoder, {layers} layers"), &best);
        totals.push((best.nodes_before, best.seconds));
    }
    if let [_, (n10, t10), _, (n100, t100)] = totals[..] {
        println!(
            "growth 10k -> 100k nodes: {:.1}x nodes, {:.1}x time",
            n100 as f64 / n10 as f64,
            t100 / t10
        );
    }
    println!("({} nodes per synthetic layer)", synthetic::NODES_PER_LAYER);
}

fn load(path: &Path) -> Model {
    ir::load::load_file(path, &ir::LoadOptions::default()).expect("the export loads")
}
