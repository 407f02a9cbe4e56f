//! hoist-scalars' e-graph rules alone (lower, saturate, extract, write back; no placement
//! prediction, no bridging) on the synthetic decoder with dynamic dims that
//! `tools/bench/make_synthetic_decoder.py` writes (skipped when absent). Each run loads the
//! model afresh in this process; prints the median of five runs of each phase.
//!
//! ```sh
//! .venv/bin/python tools/bench/make_synthetic_decoder.py --layers 1100 --out target/bench/synthetic-1100.onnx
//! cargo bench -p onnx-rewrite --bench hoist_rules    # ONNX_REWRITE_BENCH_MODEL=path for another model
//! ```

use std::path::PathBuf;
use std::sync::Arc;
use std::time::Instant;

use onnx_rewrite::egraph::run::{RewriteOptions, rewrite_model};
use onnx_rewrite::ir::{self, Model};
use onnx_rewrite_hoist_scalars::rules;

#[global_allocator]
static ALLOCATOR: mimalloc::MiMalloc = mimalloc::MiMalloc;

const RUNS: usize = 5;

fn main() {
    let path = std::env::var_os("ONNX_REWRITE_BENCH_MODEL").map_or_else(
        || PathBuf::from(env!("CARGO_MANIFEST_DIR")).join("../../target/bench/synthetic-1100.onnx"),
        PathBuf::from,
    );
    if !path.exists() {
        println!(
            "skipped: run tools/bench/make_synthetic_decoder.py --layers 1100 --out {}",
            path.display()
        );
        return;
    }
    let ort = onnx_rewrite_ort_kernels::pinned();
    let mut phases: Vec<[f64; 5]> = Vec::new();
    let mut nodes = (0, 0);
    for _ in 0..RUNS {
        let mut model: Model =
            ir::load::load_file(&path, &ir::LoadOptions::default()).expect("the model loads");
        let sources: rules::Sources = Arc::new(
            model
                .graph(model.main())
                .inputs()
                .iter()
                .map(|io| io.value)
                .collect(),
        );
        let rule_set = rules::all(&sources, ort);
        let cost = rules::HoistCost {
            sources: sources.clone(),
            ort,
        };
        let options = RewriteOptions {
            limits: Default::default(),
            cost: &cost,
            fold_constants: true,
            trace: false,
            only_anchored_graphs: true,
        };
        let started = Instant::now();
        let summary = rewrite_model(&mut model, &rule_set, &options).expect("the rules run");
        let total = started.elapsed().as_secs_f64() * 1e3;
        let e = &summary.egraph;
        phases.push([e.lower_ms, e.saturate_ms, e.extract_ms, e.emit_ms, total]);
        nodes = (e.nodes, summary.rules.values().sum::<usize>());
    }
    let median = |i: usize| {
        let mut v: Vec<f64> = phases.iter().map(|p| p[i]).collect();
        v.sort_by(f64::total_cmp);
        v[v.len() / 2]
    };
    println!(
        "{}: {} e-nodes, {} rewrites; median of {RUNS} ms: lower {:.1}, saturate {:.1}, extract {:.1}, emit {:.1}, total {:.1}",
        path.display(),
        nodes.0,
        nodes.1,
        median(0),
        median(1),
        median(2),
        median(3),
        median(4)
    );
}
