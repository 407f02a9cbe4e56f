//! Ops the CUDA EP has no kernel for at the model's opset, rewritten into ops it has.
//!
//! ORT matches an open-ended kernel registration (`13+`) only to its own `since_version`, so a
//! newer opset can take an op off the device: at opset 19 and later, `Equal` is `Equal-19`,
//! which CUDA does not register. A device tensor compared that way goes to the host and the
//! result comes back. The rule consults the kernel table, so it stays quiet where the target ORT
//! has the kernel.

use onnx_rewrite_egraph::Id;
use onnx_rewrite_egraph::language::OpData;
use onnx_rewrite_egraph::pattern::Match;
use onnx_rewrite_egraph::rule::{Decline, Outcome, Rule, RuleCx};
use onnx_rewrite_facts::DataType;

use onnx_rewrite_ort_kernels::{Ep, Ort};

/// `Equal(a, b)` → `And(LessOrEqual(a, b), GreaterOrEqual(a, b))` for numbers (exact: a NaN
/// compares false both ways, `-0 <= +0` and `-0 >= +0`), `Not(Xor(a, b))` for booleans.
pub struct EqualByComparisons {
    pub ort: &'static Ort,
}

impl Rule for EqualByComparisons {
    fn name(&self) -> &'static str {
        "equal-by-comparisons"
    }

    fn pattern(&self) -> &'static str {
        "Equal(a, b)"
    }

    fn apply(&self, cx: &mut RuleCx<'_>, m: &Match) -> Result<Outcome, Decline> {
        let (a, b) = (cx.class(m, "a")?, cx.class(m, "b")?);
        // Comparisons of shape values run on the host anyway, with the rest of their chain.
        let host_side = |id: Id| {
            cx.facts(id)
                .is_some_and(|f| f.constant.is_some() || f.shape_value.is_some())
        };
        if host_side(a) && host_side(b) {
            return Ok(Outcome::DoesNotApply(
                "both operands are host-side shape values",
            ));
        }
        let Some(dtype) = cx.facts(a).and_then(|f| f.dtype) else {
            return Err(Decline::new("the element type is unknown"));
        };
        let opset = cx.opset("");
        let t = onnx_rewrite_ort_kernels::type_name(dtype);
        let has = |op: &str, inputs: &[&str], output: &str| {
            let inputs: Vec<Option<&str>> = inputs.iter().map(|t| Some(*t)).collect();
            self.ort
                .lookup(Ep::Cuda, "", op, opset, &inputs, &[Some(output)])
                .is_found()
        };
        if has("Equal", &[&t, &t], "bool") {
            return Ok(Outcome::DoesNotApply("CUDA has the Equal kernel here"));
        }
        if dtype == DataType::Bool {
            if !(has("Xor", &["bool", "bool"], "bool") && has("Not", &["bool"], "bool")) {
                return Err(Decline::new(
                    "CUDA has neither Equal nor Xor/Not for bool here",
                ));
            }
            let x = cx.add_op(OpData::new("Xor", Vec::new(), 2), &[a, b]);
            return Ok(Outcome::Rewrite(
                cx.add_op(OpData::new("Not", Vec::new(), 1), &[x]),
            ));
        }
        if opset < 12 {
            return Err(Decline::new("LessOrEqual/GreaterOrEqual need opset 12"));
        }
        if !(has("LessOrEqual", &[&t, &t], "bool")
            && has("GreaterOrEqual", &[&t, &t], "bool")
            && has("And", &["bool", "bool"], "bool"))
        {
            return Err(Decline::new(format!(
                "CUDA has neither Equal nor LessOrEqual/GreaterOrEqual for {t} here"
            )));
        }
        let le = cx.add_op(OpData::new("LessOrEqual", Vec::new(), 2), &[a, b]);
        let ge = cx.add_op(OpData::new("GreaterOrEqual", Vec::new(), 2), &[a, b]);
        Ok(Outcome::Rewrite(
            cx.add_op(OpData::new("And", Vec::new(), 2), &[le, ge]),
        ))
    }
}
