//! Writing rewrite rules.
//!
//! A rule is one declaration: a name, a [pattern](crate::pattern) of one or more operators
//! with named captures, and `apply`, which checks what the pattern cannot say (a dtype, an
//! attribute, a shape) and builds the replacement. Its outcome keeps three cases apart:
//!
//! - [`Outcome::Rewrite`]: the replacement's e-class, merged with the anchor's; extraction
//!   then picks the cheaper form.
//! - [`Outcome::DoesNotApply`]: the rule has nothing to do here (the target already has the
//!   kernel, the value is already canonical). Not reported.
//! - `Err(`[`Decline`]`)`: the rewrite would change what the model computes or could not be
//!   proved safe; the reason goes to the pass report when the anchor stays, and to
//!   `--trace-rules` always, so "why did this Gemm stay?" has an answer.
//!
//! The runner (egg's, with backoff and limits) finds the e-classes that hold a rule's anchors
//! through an index by operator type, never by a scan of every e-class.
//!
//! ## Authoring rules
//!
//! - **Directional.** A rule rewrites towards a form the pass wants (fewer nodes, a kernel the
//!   target has, a quantizable MatMul), with a one-line reason in its doc comment. No rule
//!   states a general commutativity or associativity: those grow the e-graph without bound
//!   and leave extraction a choice among equals.
//! - **Sound or declined.** Every condition the rewrite needs is checked on the analysis's
//!   facts (dtype, symbolic shape, constants); when one cannot be proved, decline with what
//!   was missing.
//! - **Mandatory rules** ([`Rule::mandatory`]) replace their anchor: after the run the anchor
//!   e-node is pruned wherever the rule produced an alternative, so no cost model picks it
//!   back (gemm-to-matmul must leave no `Gemm` it could rewrite).
//! - **One file per topic**, rules grouped as the pass uses them; a snapshot test per rule on
//!   a graph written in ONNX text, and a property test that outputs stay equal.
//!
//! Running a rule over a model takes one call:
//!
//! ```
//! use std::sync::Arc;
//! use onnx_rewrite_egraph::Id;
//! use onnx_rewrite_egraph::extract::NodeCount;
//! use onnx_rewrite_egraph::pattern::Match;
//! use onnx_rewrite_egraph::rule::{Decline, Outcome, Rule, RuleCx};
//! use onnx_rewrite_egraph::run::{RewriteOptions, rewrite_model};
//!
//! /// `Identity(x) → x`: an Identity computes nothing.
//! struct RemoveIdentity;
//!
//! impl Rule for RemoveIdentity {
//!     fn name(&self) -> &'static str {
//!         "remove-identity"
//!     }
//!     fn pattern(&self) -> &'static str {
//!         "Identity(x)"
//!     }
//!     fn apply(&self, cx: &mut RuleCx<'_>, m: &Match) -> Result<Outcome, Decline> {
//!         let x = cx.class(m, "x")?;
//!         // Identity also forwards sequences and optionals, which carry no dtype.
//!         if cx.facts(x).and_then(|f| f.dtype).is_none() {
//!             return Err(Decline::new("the input is not a tensor of known element type"));
//!         }
//!         Ok(Outcome::Rewrite(x))
//!     }
//! }
//!
//! # fn demo(model: &mut onnx_rewrite_ir::Model) -> Result<(), onnx_rewrite_egraph::run::RunError> {
//! let rules: Vec<Arc<dyn Rule>> = vec![Arc::new(RemoveIdentity)];
//! let options = RewriteOptions {
//!     limits: Default::default(),
//!     cost: &NodeCount,
//!     fold_constants: false,
//!     trace: false,
//!     only_anchored_graphs: true,
//! };
//! let summary = rewrite_model(model, &rules, &options)?;
//! println!("applied: {:?}, declined: {:?}", summary.rules, summary.declined);
//! # Ok(())
//! # }
//! ```

use std::sync::Arc;

use egg::{
    Applier, Id, Language, PatternAst, Rewrite, SearchMatches, Searcher, Subst, Symbol, Var,
};
use onnx_rewrite_ir::ValueId;
use onnx_rewrite_proto::{AttributeProto, TensorProto};

use crate::analysis::{OnnxAnalysis, OnnxEGraph};
use crate::facts::ValueFacts;
use crate::language::{Discriminant, Onnx, OpData};
use crate::pattern::{Match, Pattern, PatternError};

/// Why a rule left an e-node alone.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Decline(pub String);

impl Decline {
    pub fn new(reason: impl Into<String>) -> Self {
        Self(reason.into())
    }
}

/// What a rule did with one match.
#[derive(Debug, Clone, PartialEq, Eq)]
pub enum Outcome {
    /// The replacement's e-class, to be merged with the anchor's.
    Rewrite(Id),
    /// Nothing to do here, and nothing wrong: the reason is for the trace only.
    DoesNotApply(&'static str),
}

/// A rewrite rule: a pattern, and what to do with each match.
pub trait Rule: Send + Sync {
    /// Stable name, used in reports and traces.
    fn name(&self) -> &'static str;

    /// What the rule rewrites, in the [pattern syntax](crate::pattern); the root's operators
    /// are its anchors.
    fn pattern(&self) -> &'static str;

    /// Checks one match and builds its replacement (see [`Outcome`] and [`Decline`]).
    fn apply(&self, cx: &mut RuleCx<'_>, m: &Match) -> Result<Outcome, Decline>;

    /// Whether the anchored operator must go: after the run it is pruned from every e-class
    /// where the rule produced an alternative, so no cost model can pick it back.
    fn mandatory(&self) -> bool {
        false
    }
}

/// A rule with its pattern parsed.
pub struct Compiled {
    pub rule: Arc<dyn Rule>,
    pub pattern: Pattern,
}

/// Parses every rule's pattern; a pattern that does not parse is named with its rule.
pub fn compile(
    rules: &[Arc<dyn Rule>],
) -> Result<Vec<Arc<Compiled>>, (&'static str, PatternError)> {
    rules
        .iter()
        .map(|rule| {
            let pattern = Pattern::parse(rule.pattern()).map_err(|e| (rule.name(), e))?;
            Ok(Arc::new(Compiled {
                rule: rule.clone(),
                pattern,
            }))
        })
        .collect()
}

/// What a rule sees and how it builds.
pub struct RuleCx<'a> {
    pub egraph: &'a mut OnnxEGraph,
}

impl RuleCx<'_> {
    /// The e-class a match bound to variable `name`; a rule asking for a name its pattern
    /// does not bind declines rather than panics.
    pub fn class(&self, m: &Match, name: &'static str) -> Result<Id, Decline> {
        m.class(name)
            .map(|c| self.egraph.find(c))
            .ok_or_else(|| Decline::new(format!("the pattern binds no '{name}'")))
    }

    /// The e-node a match bound to `@name`.
    pub fn node<'m>(&self, m: &'m Match, name: &'static str) -> Result<&'m Onnx, Decline> {
        m.node(name)
            .ok_or_else(|| Decline::new(format!("the pattern binds no '@{name}'")))
    }

    /// The operator of an `Op` e-node.
    pub fn op(&self, node: &Onnx) -> Option<&OpData> {
        match node {
            Onnx::Op(key, _) => Some(self.egraph.analysis.ops.get(*key)),
            _ => None,
        }
    }

    /// Input `index` of an `Op` e-node, `None` when absent or missing.
    pub fn input(&self, node: &Onnx, index: usize) -> Option<Id> {
        let Onnx::Op(key, children) = node else {
            return None;
        };
        if index >= self.egraph.analysis.ops.get(*key).inputs {
            return None;
        }
        let child = self.egraph.find(*children.get(index)?);
        let missing = self.egraph[child]
            .nodes
            .iter()
            .any(|n| matches!(n, Onnx::Missing));
        (!missing).then_some(child)
    }

    /// The facts of a value e-class.
    pub fn facts(&self, class: Id) -> Option<&ValueFacts> {
        self.egraph[self.egraph.find(class)].data.value()
    }

    pub fn attribute<'n>(&'n self, node: &Onnx, name: &str) -> Option<&'n AttributeProto> {
        self.op(node)?.attribute(name)
    }

    pub fn int_attribute(&self, node: &Onnx, name: &str, default: i64) -> i64 {
        self.attribute(node, name)
            .and_then(|a| a.i)
            .unwrap_or(default)
    }

    pub fn float_attribute(&self, node: &Onnx, name: &str, default: f32) -> f32 {
        self.attribute(node, name)
            .and_then(|a| a.f)
            .unwrap_or(default)
    }

    /// The constant tensor of a class, when it holds an initializer (never a graph input with a
    /// default, which a caller may override) or a tensor a rule made.
    pub fn constant_tensor(&self, class: Id) -> Option<(&TensorProto, Option<ValueId>)> {
        let class = self.egraph.find(class);
        self.egraph[class].nodes.iter().find_map(|n| match n {
            Onnx::Leaf(v) => self
                .egraph
                .analysis
                .leaf_tensors
                .get(v)
                .map(|t| (t, Some(*v))),
            Onnx::Const(key) => Some((&self.egraph.analysis.consts.get(*key).tensor, None)),
            _ => None,
        })
    }

    /// The name of a leaf (input, initializer or capture), for naming what is derived from it.
    pub fn leaf_name(&self, value: ValueId) -> Option<&str> {
        self.egraph
            .analysis
            .leaf_names
            .get(&value)
            .map(String::as_str)
    }

    /// Opset of a domain in this model.
    pub fn opset(&self, domain: &str) -> i64 {
        self.egraph.analysis.opset(domain)
    }

    /// Adds a single-output operator.
    pub fn add_op(&mut self, op: OpData, inputs: &[Id]) -> Id {
        let key = self.egraph.analysis.ops.intern(op);
        self.egraph
            .add(Onnx::Op(key, inputs.iter().copied().collect()))
    }

    /// Adds a tensor (an initializer once emitted); equal tensors are shared.
    pub fn add_const(&mut self, tensor: TensorProto, name_hint: &str) -> Id {
        let key = self.egraph.analysis.consts.intern(tensor, name_hint);
        self.egraph.add(Onnx::Const(key))
    }
}

/// A decline kept for the report.
#[derive(Debug, Clone)]
pub struct DeclineRecord {
    pub rule: &'static str,
    pub class: Id,
    pub node: Onnx,
    pub reason: String,
}

/// One rule decision, recorded when tracing.
#[derive(Debug, Clone)]
pub struct TraceEvent {
    pub rule: &'static str,
    pub class: Id,
    pub op: String,
    pub outcome: Traced,
}

/// What a traced rule decided.
#[derive(Debug, Clone)]
pub enum Traced {
    Applied,
    DoesNotApply(&'static str),
    Declined(String),
}

/// The egg rewrite that runs a compiled rule.
pub fn to_rewrite(rule: Arc<Compiled>) -> Rewrite<Onnx, OnnxAnalysis> {
    let name = rule.rule.name();
    Rewrite::new(
        name,
        AnchorSearcher { rule: rule.clone() },
        RuleApplier { rule },
    )
    .unwrap_or_else(|e| panic!("rule {name} is well-formed: {e}"))
}

/// Finds the e-classes where a rule's pattern matches, from egg's index of e-classes by
/// operator key, the keys of each anchor operator taken from the operator table.
struct AnchorSearcher {
    rule: Arc<Compiled>,
}

impl AnchorSearcher {
    fn candidates(&self, egraph: &OnnxEGraph) -> Vec<Id> {
        let mut classes: Vec<Id> = Vec::new();
        for (domain, op_type) in self.rule.pattern.anchors() {
            for key in egraph.analysis.ops.keys_of(domain, op_type) {
                if let Some(ids) = egraph.classes_for_op(&Discriminant::Op(*key)) {
                    classes.extend(ids);
                }
            }
        }
        // The index is a hash set: sorted, the order (and so the output) never depends on it.
        classes.sort_unstable();
        classes.dedup();
        classes
    }
}

impl Searcher<Onnx, OnnxAnalysis> for AnchorSearcher {
    fn search_with_limit(&self, egraph: &OnnxEGraph, limit: usize) -> Vec<SearchMatches<'_, Onnx>> {
        self.candidates(egraph)
            .into_iter()
            .filter_map(|class| self.search_eclass_with_limit(egraph, class, limit))
            .take(limit)
            .collect()
    }

    fn search_eclass_with_limit(
        &self,
        egraph: &OnnxEGraph,
        eclass: Id,
        _limit: usize,
    ) -> Option<SearchMatches<'_, Onnx>> {
        self.rule
            .pattern
            .matches_class(egraph, eclass)
            .then(|| SearchMatches {
                eclass,
                substs: vec![Subst::default()],
                ast: None,
            })
    }

    fn vars(&self) -> Vec<Var> {
        Vec::new()
    }
}

struct RuleApplier {
    rule: Arc<Compiled>,
}

impl Applier<Onnx, OnnxAnalysis> for RuleApplier {
    fn apply_matches(
        &self,
        egraph: &mut OnnxEGraph,
        matches: &[SearchMatches<Onnx>],
        rule_name: Symbol,
    ) -> Vec<Id> {
        let mut changed = Vec::new();
        for m in matches {
            changed.extend(self.apply_one(egraph, m.eclass, &Subst::default(), None, rule_name));
        }
        changed
    }

    fn apply_one(
        &self,
        egraph: &mut OnnxEGraph,
        eclass: Id,
        _subst: &Subst,
        _ast: Option<&PatternAst<Onnx>>,
        _rule_name: Symbol,
    ) -> Vec<Id> {
        let rule = self.rule.rule.as_ref();
        let pattern = &self.rule.pattern;
        let eclass = egraph.find(eclass);
        // Matched again here: an earlier rule of this round may have changed the class.
        let anchors: Vec<Onnx> = egraph[eclass]
            .nodes
            .iter()
            .filter(|n| pattern.is_anchor(egraph, n))
            .cloned()
            .collect();
        let mut changed = Vec::new();
        for node in anchors {
            for m in pattern.matches(egraph, eclass, &node) {
                egraph.analysis.current_rule = Some(rule.name());
                let outcome = rule.apply(&mut RuleCx { egraph }, &m);
                let traced = match outcome {
                    Ok(Outcome::Rewrite(new)) => {
                        if egraph.union(eclass, new) {
                            changed.push(eclass);
                        }
                        Traced::Applied
                    }
                    Ok(Outcome::DoesNotApply(why)) => Traced::DoesNotApply(why),
                    Err(Decline(reason)) => {
                        egraph.analysis.declines.push(DeclineRecord {
                            rule: rule.name(),
                            class: eclass,
                            node: node.clone().map_children(|c| c),
                            reason: reason.clone(),
                        });
                        Traced::Declined(reason)
                    }
                };
                egraph.analysis.current_rule = None;
                if egraph.analysis.trace.is_some() {
                    let op = match &node {
                        Onnx::Op(key, _) => egraph.analysis.ops.get(*key).op_type.clone(),
                        _ => String::new(),
                    };
                    let event = TraceEvent {
                        rule: rule.name(),
                        class: eclass,
                        op,
                        outcome: traced,
                    };
                    egraph.analysis.trace.get_or_insert_default().push(event);
                }
            }
        }
        changed
    }
}
