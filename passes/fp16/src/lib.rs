//! The `fp16` pass: float32 → float16 (or bfloat16) as a type assignment over the IR.
//!
//! Not rewrite rules that claim float32 = float16: the pass computes every value's element type
//! from the operators' schemas ([`schema`]), decides a precision per node ([`plan`]), and inserts
//! a Cast only where a value's precision and a reader's differ, one per value per target type,
//! in the value's own graph. Slots that share a type parameter take one precision, so the
//! result is well-typed by construction; attribute-typed outputs (`Cast.to`, `Constant`,
//! `ConstantOfShape`, `dtype`, `output_datatype`) are rewritten with their node.
//!
//! What stays float32, and why, is in the report:
//! - the rotary chain (position ids, `Range`, inv_freq → angle MatMul/Mul → Cos/Sin) and every
//!   other float computed from integer positions and sizes, found structurally ([`origin`]):
//!   float16 holds integers exactly only up to 2048 (bfloat16: 256), and angles of thousands of
//!   radians lose their fraction; cos/sin are cast where they meet q and k;
//! - variance statistics of decomposed LayerNorm/RMSNorm (squares overflow float16 at 256);
//! - a node with a constant operand outside the target's range (never clamped), except a
//!   guard (`var + eps`, `Max(norm, eps)`) whose epsilon flushes to zero: flushed, it guards
//!   nothing, and a float32 sum rounds back to the same value, so the epsilon is converted as
//!   the target's least positive value and reported;
//! - ops whose schema has no low-precision type at the model's opset (Range before 27, Resize
//!   `scales`, NonMaxSuppression, `ai.onnx.ml`), unknown ops and sequences;
//! - the op and node block lists, and with `--fp16-target cpu|cuda` the ops onnxruntime 1.32's
//!   EP has no low-precision kernel for ([`kernels`]).
//!
//! Initializers read only in low precision are converted (in parallel, `half`'s F16C slice
//! conversion); one read at both precisions is kept and copied, never changed under a float32
//! reader. Applying the pass to its own output changes nothing.

mod angle;
mod constants;
pub mod convert;
mod exactness;
mod integer_range;
pub mod kernels;
mod options;
mod origin;
mod plan;
mod ports;
mod rewrite;
mod scope;
mod types;

use std::time::Instant;

use onnx_rewrite_ir::Model;
use onnx_rewrite_ir::edit::Transaction;
use onnx_rewrite_pass::describe_graph;
use onnx_rewrite_pass::{Pass, PassContext, PassError, PassOption, PassReport};
use onnx_rewrite_proto::tensor_proto::DataType;

pub use convert::Target;
/// The operator schemas the pass types nodes by (shared with the façade's signature check).
pub use onnx_rewrite_ort_kernels::schema;
pub use options::{DEFAULT_BLOCK_OPS, Options};
pub use plan::Precision;

use plan::Plan;
use schema::{Schema, Slot};

/// The pass.
pub struct Fp16Pass;

impl Pass for Fp16Pass {
    fn name(&self) -> &'static str {
        "fp16"
    }

    fn summary(&self) -> &'static str {
        "float32 → float16/bfloat16, type-consistent by construction; rotary chain and integer-derived arithmetic kept float32"
    }

    fn options(&self) -> &'static [PassOption] {
        options::OPTIONS
    }

    fn survey(&self, model: &mut Model) -> Option<String> {
        // What `run` would see: the float Ranges over whole numbers already in integers, tried
        // in a transaction that is rolled back (an early return drops it, which rolls back too).
        let mut tried = Transaction::begin(model);
        let integer_ranges = integer_range::apply(&mut tried).ok()?;
        let plan = Plan::new(&tried, &Options::default()).ok()?;
        let census = plan.census(&tried);
        tried.rollback().ok()?;
        // The float bounds the integer Ranges no longer read were float nodes before.
        let float_nodes = census.float_nodes + integer_ranges.removed_bounds;
        if float_nodes == 0 {
            return None;
        }
        let rotary = census.kept.get("rotary").copied().unwrap_or(0);
        let positional = census
            .kept
            .get("integer-derived arithmetic")
            .copied()
            .unwrap_or(0);
        let mut survey = format!(
            "{} float32 node(s), {} would become float16; rotary chain: {rotary} node(s) kept float32; integer-derived arithmetic: {positional}",
            float_nodes, census.low_nodes
        );
        if census.small_angles > 0 {
            survey.push_str(&format!(
                "; {} trig node(s) of positions with an angle proved at most 4π (window functions) would convert",
                census.small_angles
            ));
        }
        if integer_ranges.ranges > 0 {
            survey.push_str(&format!(
                "; {} float Range(s) over whole numbers would count in integers",
                integer_ranges.ranges
            ));
        }
        Some(survey)
    }

    fn run(&self, model: &mut Model, cx: &PassContext) -> Result<PassReport, PassError> {
        let started = Instant::now();
        let options = Options::parse(&cx.options)?;
        let mut report = PassReport::new(self.name(), model, cx);
        if let Some(why) = cannot_cast(model, options.target) {
            report.notes.push(format!("nothing converted: {why}"));
            return Ok(report.finish(model, started));
        }
        let integer_ranges = integer_range::apply(model)?;
        let plan = Plan::new(model, &options)?;
        let census = plan.census(model);
        for (node, reason) in &census.kept_nodes {
            if reason.is_decline() {
                report.decline(
                    model,
                    *node,
                    "fp16",
                    format!("kept float32: {}", reason.detail()),
                );
            }
        }
        let kept_nodes: Vec<serde_json::Value> = census
            .kept_nodes
            .iter()
            .map(|(node, reason)| {
                serde_json::json!({
                    "graph": describe_graph(model, model.node(*node).graph()),
                    "node": model.describe_node(*node),
                    "reason": reason.detail(),
                })
            })
            .collect();
        let guards: Vec<(String, f32)> = plan
            .guards_raised()
            .into_iter()
            .map(|(v, x)| (model.value(v).name().to_owned(), x))
            .collect();
        cx.deadline(started).check(self.name())?;
        let stats = rewrite::apply(model, &plan, cx.pending_payloads)
            .map_err(|e| PassError::input(format!("applying the precision plan: {e}")))?;
        let type_name = match options.target {
            Target::Float16 => "float16",
            Target::Bfloat16 => "bfloat16",
        };
        if let Some(rotary) = census.kept.get("rotary") {
            report.notes.push(format!(
                "rotary: {rotary} node(s) (positions → angles → Cos/Sin) kept float32"
            ));
        }
        if census.small_angles > 0 {
            report.notes.push(format!(
                "{} trig node(s) of positions converted: angle proved at most 4π for every size (window functions, not rotary)",
                census.small_angles
            ));
        }
        if integer_ranges.ranges > 0 {
            report.notes.push(format!(
                "{} float Range node(s) over whole numbers computed in integers and cast (exact steps at every length)",
                integer_ranges.ranges
            ));
        }
        for (name, was) in &guards {
            report.notes.push(format!(
                "guard '{name}' holds {was:e}, which {type_name} flushes to zero; converted as {:e}, the least positive {type_name}, so that it keeps its operand off zero",
                options.target.least_positive()
            ));
        }
        for (node, reason) in &census.kept_nodes {
            if let plan::Reason::Range(_) = reason {
                report.notes.push(format!(
                    "{} kept float32: {}",
                    model.describe_node(*node),
                    reason.detail()
                ));
            }
        }
        let details = &mut report.details;
        let mut put = |k: &str, v: serde_json::Value| {
            details.insert(k.to_owned(), v);
        };
        put("type", type_name.into());
        put(
            "target",
            options.target_ep.map_or("any", |ep| ep.name()).into(),
        );
        put("keep_io_types", options.keep_io_types.into());
        put(
            "float_nodes_before",
            (census.float_nodes + integer_ranges.removed_bounds).into(),
        );
        put("nodes_now_low_precision", census.low_nodes.into());
        put(
            "kept_float32",
            serde_json::to_value(&census.kept).unwrap_or_default(),
        );
        put("kept_float32_nodes", kept_nodes.into());
        put("small_angles_converted", census.small_angles.into());
        put("ranges_in_integers", integer_ranges.ranges.into());
        put("casts_inserted", stats.casts.into());
        put(
            "initializers_converted",
            stats.initializers_converted.into(),
        );
        put("initializers_copied", stats.initializers_copied.into());
        put("constants_copied", stats.constants_copied.into());
        put("bytes_converted", stats.bytes_converted.into());
        put(
            "guards_raised",
            guards
                .iter()
                .map(|(name, was)| serde_json::json!({ "value": name, "holds": was }))
                .collect::<Vec<_>>()
                .into(),
        );
        Ok(report.finish(model, started))
    }
}

/// Why the model's opset cannot cast to the target type, if it cannot (Cast gained float16 at
/// opset 6 and bfloat16 at 13).
fn cannot_cast(model: &Model, target: Target) -> Option<String> {
    let Some(opset) = model.opset("") else {
        return Some("the model imports no ai.onnx opset".into());
    };
    let cast = Schema::find("", "Cast", opset)?;
    let allows = |slot: Option<Slot>| match slot {
        Some(Slot::Var(v)) => cast
            .var_types(v)
            .is_some_and(|t| t.allows(target.dtype()) && t.allows(DataType::Float)),
        _ => false,
    };
    (!(allows(cast.input(0)) && allows(cast.output(0)))).then(|| {
        format!(
            "Cast at opset {opset} has no {:?}",
            target.dtype().as_str_name()
        )
    })
}
