//! Identity elimination: the worked example of the rule API.
//!
//! A rule has three parts:
//! 1. an **anchor**, the operator it rewrites (here `Identity` of the default domain);
//! 2. a **check** that returns a [`Decline`] with a reason when the rewrite would be unsafe
//!    (the reason ends up in the pass report and in `--trace-rules`);
//! 3. a **rewrite** that builds the replacement and returns its e-class; the runner merges it
//!    with the anchor's e-class, and extraction picks the cheaper of the two.
//!
//! Here the replacement is the Identity's own input: no new node at all. When the Identity's
//! output is a graph output, extraction keeps the output's name (it re-inserts an Identity
//! only if the input is itself an input, a constant or another output).

use egg::Id;

use crate::language::Onnx;
use crate::rule::{Decline, Rule, RuleCx};

/// `Identity(x) → x`: an Identity computes nothing.
pub struct RemoveIdentity;

impl Rule for RemoveIdentity {
    fn name(&self) -> &'static str {
        "remove-identity"
    }

    fn anchor(&self) -> (&'static str, &'static str) {
        ("", "Identity")
    }

    fn rewrite(&self, cx: &mut RuleCx<'_>, _class: Id, node: &Onnx) -> Result<Id, Decline> {
        let input = cx
            .input(node, 0)
            .ok_or_else(|| Decline::new("the input is missing"))?;
        // Identity is also defined on sequences and optionals, whose e-classes carry no dtype;
        // only tensors are known to be safe to forward.
        if cx.facts(input).and_then(|f| f.dtype).is_none() {
            return Err(Decline::new(
                "the input is not a tensor of known element type",
            ));
        }
        Ok(input)
    }
}
