//! The worked example of the rule API: `Identity(x) → x`. The engine's own tests, property
//! tests and benchmarks run it; passes keep their rules with them.
//!
//! A rule has three parts:
//! 1. a **pattern**, what it rewrites (here `Identity` of the default domain, its input `x`);
//! 2. a **check** that returns a [`Decline`] with a reason when the rewrite would be unsafe
//!    (the reason ends up in the pass report and in `--trace-rules`);
//! 3. a **rewrite** that builds the replacement and returns its e-class; the runner merges it
//!    with the anchor's e-class, and extraction picks the cheaper of the two.
//!
//! Here the replacement is the Identity's own input: no new node at all. When the Identity's
//! output is a graph output, extraction keeps the output's name (it re-inserts an Identity
//! only if the input is itself an input, a constant or another output).

use crate::pattern::Match;
use crate::rule::{Decline, Outcome, Rule, RuleCx};

/// `Identity(x) → x`: an Identity computes nothing.
pub struct RemoveIdentity;

impl Rule for RemoveIdentity {
    fn name(&self) -> &'static str {
        "remove-identity"
    }

    fn pattern(&self) -> &'static str {
        "Identity(x)"
    }

    fn apply(&self, cx: &mut RuleCx<'_>, m: &Match) -> Result<Outcome, Decline> {
        let x = cx.class(m, "x")?;
        // Identity is also defined on sequences and optionals, whose e-classes carry no dtype;
        // only tensors are known to be safe to forward.
        if cx.facts(x).and_then(|f| f.dtype).is_none() {
            return Err(Decline::new(
                "the input is not a tensor of known element type",
            ));
        }
        Ok(Outcome::Rewrite(x))
    }
}
