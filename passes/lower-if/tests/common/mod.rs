//! What the lower-if tests share: running the pass, printing the result with its report, and
//! checking by execution (tract) that the rewrite computes what the original computes.

#![allow(dead_code)]

use onnx_rewrite_ir::Model;
use onnx_rewrite_pass::{Pass, PassReport};
use onnx_rewrite_testkit::{apply, bytes, execute, inputs, text};

/// The rewritten model in ONNX text syntax, then what the report says (counts and declines),
/// so a snapshot pins both the output and every reason given.
pub fn snapshot(after: &Model, report: &PassReport) -> String {
    let mut out = text(after);
    out.push_str("\n--- report\n");
    for key in [
        "function_calls_inlined",
        "functions_removed",
        "ifs_inlined_constant",
        "ifs_lowered_where",
        "ifs_declined",
    ] {
        if let Some(v) = report.details.get(key) {
            out.push_str(&format!("{key}: {v}\n"));
        }
    }
    for d in &report.declined {
        out.push_str(&format!(
            "declined {} in the {} ({}): {}\n",
            d.node, d.graph, d.rule, d.reason
        ));
    }
    out
}

/// Runs `pass` (twice: the second run must change nothing) and checks by execution that the
/// result computes what `before` does, on `seeds` random input sets per size of the symbolic
/// dims (1, 3 and 5). Conditions that are graph inputs take both values over the seeds.
pub fn rewrite(pass: &dyn Pass, before: &Model, seeds: u64) -> (Model, PassReport) {
    let (after, report) = apply(pass, before);
    assert_same(before, &after, seeds);
    (after, report)
}

/// `after` computes what `reference` computes (tract, random inputs, exact for integers,
/// the DESIGN tolerance row 1e-5/1e-6 for floats).
pub fn assert_same(reference: &Model, after: &Model, seeds: u64) {
    let (r, a) = (bytes(reference), bytes(after));
    for dim in [1usize, 3, 5] {
        for seed in 0..seeds {
            let feed = inputs(reference, dim, seed * 7 + dim as u64);
            let want = execute(&r, &feed);
            let got = execute(&a, &feed);
            assert_eq!(got.len(), want.len(), "output count");
            for (i, (g, w)) in got.iter().zip(&want).enumerate() {
                assert_eq!(
                    g.shape(),
                    w.shape(),
                    "output {i} shape (dim {dim}, seed {seed})"
                );
                let g = g.cast_to::<f64>().expect("numeric");
                let w = w.cast_to::<f64>().expect("numeric");
                let g = g.to_plain_array_view::<f64>().expect("f64");
                let w = w.to_plain_array_view::<f64>().expect("f64");
                for (x, y) in g.iter().zip(w.iter()) {
                    assert!(
                        (x - y).abs() <= 1e-6 + 1e-5 * y.abs() || (x.is_nan() && y.is_nan()),
                        "output {i}: {x} vs {y} (dim {dim}, seed {seed})"
                    );
                }
            }
        }
    }
}
