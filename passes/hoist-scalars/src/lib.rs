//! The `hoist-scalars` pass: shape and scalar arithmetic rewritten so that ONNX Runtime's CUDA
//! EP needs as few Memcpy nodes as possible, as the placement predictor
//! (`onnx-rewrite-placement`, also behind `onnx-rewrite analyze`) counts them.
//!
//! ORT's CUDA EP runs `Shape`'s output, and everything computed only from it, on the CPU; a
//! value from that CPU island that a CUDA kernel reads as data (an attention scale, a mask
//! offset) costs a `MemcpyFromHost` node, and a node without a CUDA kernel costs copies both
//! ways. Dynamo exports root such chains at each layer's own tensor, so every layer pays. The
//! pass, in order:
//! 1. **folds** static dims inside partly dynamic shapes (`Gather(Shape(q), -1)` with a static
//!    head dim) and everything computed from them into initializers of the exact dtype and
//!    shape (the e-graph analysis with `fold_constants`);
//! 2. gives every **symbolic dim one source** (the graph input that declares it), so that
//!    hash-consing merges all layers' chains into one ([`rules::dims`]);
//! 3. rewrites ops the CUDA EP has no kernel for at the model's opset where an exact device-side
//!    form exists (`SplitToSequence` pieces as `Slice`s, [`rules::sequences`]; `Equal-19` as
//!    comparisons, [`rules::kernel_gaps`]);
//! 4. **bridges** the dynamic scalars that still cross with a copy-free `Range`
//!    ([`bridge`]), checked with the predictor ([`onnx_rewrite_placement`]): a graph where that
//!    does not lower the predicted count is left as step 3 made it.
//!
//! The prediction is for onnxruntime [`onnx_rewrite_ort_kernels::PINNED_VERSION`] at
//! `ORT_ENABLE_BASIC`; see [`onnx_rewrite_placement`] for what it replays and
//! [`onnx_rewrite_ort_kernels`] for where its tables come from.

mod bridge;
pub mod rules;

use std::sync::Arc;
use std::time::Instant;

use onnx_rewrite_egraph::run::{RewriteOptions, rewrite_model};
use onnx_rewrite_facts::fit;
use onnx_rewrite_ir::edit::{self, Names, Transaction};
use onnx_rewrite_ir::{Model, ValueId};
use onnx_rewrite_ort_kernels as ort;
use onnx_rewrite_pass::{Pass, PassContext, PassError, PassOption, PassReport, describe_graph};
use onnx_rewrite_placement::{self as placement, PredictOptions, Prediction, predict};
use serde_json::Value;

/// The pass.
pub struct HoistScalarsPass;

const ORT_VERSION: &str = "hoist-scalars-ort-version";
const NO_BRIDGE: &str = "hoist-scalars-no-bridge";

const OPTIONS: &[PassOption] = &[
    PassOption {
        flag: ORT_VERSION,
        help: "onnxruntime version whose CUDA kernel table and placement rules to target (default: the pinned one)",
        value: Some("X"),
        repeated: false,
    },
    PassOption {
        flag: NO_BRIDGE,
        help: "leave the dynamic scalars that still cross devices as they are (no Range bridges)",
        value: None,
        repeated: false,
    },
];

impl Pass for HoistScalarsPass {
    fn name(&self) -> &'static str {
        "hoist-scalars"
    }

    fn summary(&self) -> &'static str {
        "fold static dims, share each dynamic dim from one source, bridge what still crosses: no per-layer Memcpy on ORT's CUDA EP"
    }

    fn options(&self) -> &'static [PassOption] {
        OPTIONS
    }

    fn survey(&self, model: &mut Model) -> Option<String> {
        let p = predict(model, &PredictOptions::default()).ok()?;
        (p.memcpy_nodes > 0).then(|| {
            format!(
                "{} Memcpy node(s) predicted on ORT {}'s CUDA EP ({} to the device, {} to the host)",
                p.memcpy_nodes, p.onnxruntime, p.memcpy_from_host, p.memcpy_to_host
            )
        })
    }

    fn run(&self, model: &mut Model, cx: &PassContext) -> Result<PassReport, PassError> {
        let started = Instant::now();
        let mut report = PassReport::new(self.name(), model, cx);
        let options = PredictOptions {
            ort_version: cx.options.value(ORT_VERSION).map(str::to_owned),
        };
        let ort = match &options.ort_version {
            Some(v) => ort::for_version(v)
                .map_err(|e| PassError::input(format!("--{ORT_VERSION}: {e}")))?,
            None => ort::pinned(),
        };
        let predict = |model: &Model| predict(model, &options).map_err(PassError::input);
        let before = predict(model)?;

        // 1-3: fold, one source per dim, device forms of missing kernels.
        let sources: rules::Sources = Arc::new(dim_sources(model, ort)?);
        let rule_set = rules::all(&sources, ort);
        let cost = rules::HoistCost {
            sources: sources.clone(),
            ort,
        };
        let rewrite = RewriteOptions {
            limits: cx.limits.clone(),
            cost: &cost,
            fold_constants: true,
            trace: cx.trace,
            only_anchored_graphs: true,
        };
        let summary = rewrite_model(model, &rule_set, &rewrite)?;
        let emitted = summary.emitted.clone();
        summary.record(&mut report);
        let after_rules = predict(model)?;

        // 4: bridges, kept only where the predicted count goes down.
        let mut bridged: Vec<String> = Vec::new();
        let mut left: Vec<String> = Vec::new();
        if !cx.options.is_set(NO_BRIDGE) {
            let mut names = Names::of(model);
            for graph in placement::partitioned_graphs(model) {
                let label = describe_graph(model, graph);
                let placed = placement::place(model, graph, ort).map_err(PassError::input)?;
                let before_count = placed.crossings.len();
                if before_count == 0 {
                    continue;
                }
                let mut trial = Transaction::begin(model);
                let outcome = bridge::bridge_graph(&mut trial, graph, &placed, &mut names)
                    .map_err(|e| PassError::input(format!("{label}: {e}")))?;
                edit::sweep(&mut trial, &outcome.unread)
                    .map_err(|e| PassError::input(format!("{label}: {e}")))?;
                let after_count = placement::place(&trial, graph, ort)
                    .map_err(PassError::input)?
                    .crossings
                    .len();
                let kept = !outcome.bridged.is_empty() && after_count < before_count;
                if kept {
                    trial.commit()
                } else {
                    trial.rollback()
                }
                .map_err(|e| PassError::input(format!("{label}: {e}")))?;
                if kept {
                    bridged.extend(outcome.bridged.iter().map(|t| format!("{label}: '{t}'")));
                } else if !outcome.bridged.is_empty() {
                    left.push(format!(
                        "{label}: bridging {} left {after_count} crossing(s) of {before_count}; kept the graph unbridged",
                        outcome.bridged.join(", ")
                    ));
                }
                for crossing in outcome.left {
                    match (crossing.producer, crossing.why) {
                        (Some(node), bridge::Why::CannotBridge) => report.decline_at(
                            label.clone(),
                            model.describe_node(node),
                            "bridge",
                            crossing.reason,
                        ),
                        _ => left.push(format!("{label}: {}", crossing.reason)),
                    }
                }
            }
        }
        if !bridged.is_empty() {
            // The bridges read host scalars as the graph had them; one more round puts those
            // reads in canonical form too, so that the output is a fixed point of the pass.
            let again = rewrite_model(model, &rule_set, &rewrite)?;
            report.rules.extend(
                again
                    .rules
                    .into_iter()
                    .map(|(rule, n)| (format!("{rule} (after bridging)"), n)),
            );
        }
        // A condition folded to a constant lets onnxruntime inline its `If`, which exposes the
        // branch's values to the readers: those that need a scalar get one.
        let fitted = fit::readers_of_decided_ifs(model)
            .map_err(|e| PassError::input(format!("fitting the readers of decided Ifs: {e}")))?;
        report.record_fit(model, fitted, self.name());
        let after = predict(model)?;
        report
            .notes
            .extend(left.iter().map(|l| format!("crossing left: {l}")));
        let details: [(&str, Value); 10] = [
            ("onnxruntime", Value::from(after.onnxruntime.clone())),
            ("memcpy_before", Value::from(before.memcpy_nodes)),
            ("memcpy_after_rules", Value::from(after_rules.memcpy_nodes)),
            ("memcpy_after", Value::from(after.memcpy_nodes)),
            (
                "memcpy_from_host_after",
                Value::from(after.memcpy_from_host),
            ),
            ("memcpy_to_host_after", Value::from(after.memcpy_to_host)),
            ("bridged", Value::from(bridged)),
            ("remaining", Value::from(remaining(&after))),
            (
                "initializers_added",
                Value::from(emitted.initializers_added),
            ),
            (
                "initializers_removed",
                Value::from(emitted.initializers_removed),
            ),
        ];
        report
            .details
            .extend(details.into_iter().map(|(k, v)| (k.to_owned(), v)));
        Ok(report.finish(model, started))
    }
}

/// The graph inputs that may serve as the source of a symbolic dim, best first: the main
/// graph's inputs that no node reads in CPU memory (a `Shape`, which reads its input on the
/// device, of an input also read on the host would add a copy of that input), then the others.
fn dim_sources(model: &Model, ort: &ort::Ort) -> Result<Vec<ValueId>, PassError> {
    let on_host = placement::inputs_read_on_host(model, ort).map_err(PassError::input)?;
    let inputs = model.graph(model.main()).inputs().iter().map(|io| io.value);
    let (mut sources, host): (Vec<ValueId>, Vec<ValueId>) =
        inputs.partition(|v| !on_host.contains(v));
    sources.extend(host);
    Ok(sources)
}

/// The copies left, one line each.
fn remaining(prediction: &Prediction) -> Vec<String> {
    prediction
        .graphs
        .iter()
        .flat_map(|g| {
            g.memcpy
                .iter()
                .map(move |m| format!("{}: {:?} of '{}': {}", g.graph, m.kind, m.tensor, m.reason))
        })
        .collect()
}
