//! Writing rewrite rules.
//!
//! A rule is anchored on one operator. For each e-node of that operator it checks what it
//! needs (and says why not, in words, when it declines) and builds the replacement, whose
//! e-class is then merged with the anchor's. The runner (egg's, with backoff and limits) finds
//! the anchors; a [`Tracer`](TraceEvent) records every decision when asked, so "why did this
//! Gemm stay?" has an answer.
//!
//! The worked example is [`crate::rules::identity::RemoveIdentity`] (`Identity(x) → x`);
//! running a rule over a model takes one call:
//!
//! ```
//! use std::sync::Arc;
//! use onnx_rewrite_egraph::extract::NodeCount;
//! use onnx_rewrite_egraph::rule::Rule;
//! use onnx_rewrite_egraph::rules::identity::RemoveIdentity;
//! use onnx_rewrite_egraph::run::{RewriteOptions, rewrite_model};
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
//!
//! Its snapshot test (`tests/rules.rs`) runs it on a graph written in ONNX text syntax.

use std::sync::Arc;

use egg::{
    Applier, Id, Language, PatternAst, Rewrite, SearchMatches, Searcher, Subst, Symbol, Var,
};
use onnx_rewrite_ir::ValueId;
use onnx_rewrite_proto::{AttributeProto, TensorProto};

use crate::analysis::{OnnxAnalysis, OnnxEGraph};
use crate::facts::ValueFacts;
use crate::language::{Onnx, OpData};

/// Why a rule left an e-node alone.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Decline(pub String);

impl Decline {
    pub fn new(reason: impl Into<String>) -> Self {
        Self(reason.into())
    }
}

/// A rewrite rule anchored on one operator.
pub trait Rule: Send + Sync {
    /// Stable name, used in reports and traces.
    fn name(&self) -> &'static str;

    /// `(domain, op_type)` of the e-nodes the rule rewrites (`""` is the default domain).
    fn anchor(&self) -> (&'static str, &'static str);

    /// Rewrites one anchored e-node of `class`: adds the replacement to the e-graph and returns
    /// its e-class (which is then merged with `class`), or says why it declines.
    fn rewrite(&self, cx: &mut RuleCx<'_>, class: Id, node: &Onnx) -> Result<Id, Decline>;

    /// Whether the anchored operator must go: after the run it is pruned from every e-class
    /// where the rule produced an alternative, so no cost model can pick it back.
    fn mandatory(&self) -> bool {
        false
    }
}

/// What a rule sees and how it builds.
pub struct RuleCx<'a> {
    pub egraph: &'a mut OnnxEGraph,
}

impl RuleCx<'_> {
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
    /// `None`: applied; `Some(reason)`: declined.
    pub declined: Option<String>,
}

/// The egg rewrite that runs a [`Rule`].
pub fn to_rewrite(rule: Arc<dyn Rule>) -> Rewrite<Onnx, OnnxAnalysis> {
    let name = rule.name();
    Rewrite::new(
        name,
        AnchorSearcher { rule: rule.clone() },
        RuleApplier { rule },
    )
    .unwrap_or_else(|e| panic!("rule {name} is well-formed: {e}"))
}

/// Whether an e-node is the anchor of `rule`.
pub fn is_anchor(egraph: &OnnxEGraph, rule: &dyn Rule, node: &Onnx) -> bool {
    let (domain, op_type) = rule.anchor();
    matches!(node, Onnx::Op(key, _) if egraph.analysis.ops.get(*key).is(domain, op_type))
}

struct AnchorSearcher {
    rule: Arc<dyn Rule>,
}

impl Searcher<Onnx, OnnxAnalysis> for AnchorSearcher {
    fn search_eclass_with_limit(
        &self,
        egraph: &OnnxEGraph,
        eclass: Id,
        _limit: usize,
    ) -> Option<SearchMatches<'_, Onnx>> {
        egraph[eclass]
            .nodes
            .iter()
            .any(|n| is_anchor(egraph, self.rule.as_ref(), n))
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
    rule: Arc<dyn Rule>,
}

impl Applier<Onnx, OnnxAnalysis> for RuleApplier {
    fn apply_matches(
        &self,
        egraph: &mut OnnxEGraph,
        matches: &[SearchMatches<Onnx>],
        _rule_name: Symbol,
    ) -> Vec<Id> {
        let mut changed = Vec::new();
        for m in matches {
            changed.extend(self.apply_one(egraph, m.eclass, &Subst::default(), None, _rule_name));
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
        let eclass = egraph.find(eclass);
        let anchors: Vec<Onnx> = egraph[eclass]
            .nodes
            .iter()
            .filter(|n| is_anchor(egraph, self.rule.as_ref(), n))
            .cloned()
            .collect();
        let mut changed = Vec::new();
        for node in anchors {
            let op = match &node {
                Onnx::Op(key, _) => egraph.analysis.ops.get(*key).op_type.clone(),
                _ => String::new(),
            };
            egraph.analysis.current_rule = Some(self.rule.name());
            let outcome = self.rule.rewrite(&mut RuleCx { egraph }, eclass, &node);
            let declined = match outcome {
                Ok(new) => {
                    if egraph.union(eclass, new) {
                        changed.push(eclass);
                    }
                    None
                }
                Err(Decline(reason)) => {
                    egraph.analysis.declines.push(DeclineRecord {
                        rule: self.rule.name(),
                        class: eclass,
                        node: node.clone().map_children(|c| c),
                        reason: reason.clone(),
                    });
                    Some(reason)
                }
            };
            egraph.analysis.current_rule = None;
            if let Some(trace) = egraph.analysis.trace.as_mut() {
                trace.push(TraceEvent {
                    rule: self.rule.name(),
                    class: eclass,
                    op,
                    declined,
                });
            }
        }
        changed
    }
}
