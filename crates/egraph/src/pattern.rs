//! Patterns: what a rule matches, declared in one line.
//!
//! ```text
//! Transpose(Transpose(x) @inner) @outer
//! SequenceAt(SplitToSequence(x) @split, position)
//! Shape|Gather|Slice|Concat
//! ```
//!
//! - `Op(args)`: an e-node of operator `Op` (default domain; `domain:Op` for another), whose
//!   first inputs match `args` in order. Inputs past the last argument are not constrained;
//!   `Op` with no parentheses constrains none. `A|B` matches either operator.
//! - `@name` after an operator names the matched e-node, so the rule can read its attributes
//!   and optional inputs ([`Match::node`]).
//! - A lowercase name is a variable: it matches a present input and names its e-class
//!   ([`Match::class`]); the same name twice must be the same e-class.
//! - `_` matches any input, present or missing.
//!
//! The root's operators are the rule's anchors: the runner finds them through an index by
//! operator type, so a rule is tried on the e-classes that hold its anchor and on no other.
//! Matching only says whether the structure is there; whether the rewrite is sound is the
//! rule's check, which declines with a reason ([`crate::rule`]).

use egg::Id;
use smallvec::SmallVec;

use crate::analysis::OnnxEGraph;
use crate::language::Onnx;

/// A parsed pattern.
#[derive(Debug, Clone, PartialEq)]
pub struct Pattern {
    root: Node,
    text: &'static str,
}

#[derive(Debug, Clone, PartialEq)]
enum Node {
    Op {
        /// `(domain, op_type)` alternatives.
        ops: SmallVec<[(&'static str, &'static str); 1]>,
        args: Vec<Node>,
        bind: Option<&'static str>,
    },
    Var(&'static str),
    Any,
}

/// A pattern that does not parse: a bug in the rule that declares it.
#[derive(Debug, Clone, PartialEq, Eq, thiserror::Error)]
#[error("pattern '{text}': {what} at byte {at}")]
pub struct PatternError {
    pub text: &'static str,
    pub what: &'static str,
    pub at: usize,
}

/// What a match binds: variables to e-classes, `@names` to e-nodes.
#[derive(Debug, Clone, Default)]
pub struct Match {
    /// The e-class of the root.
    pub root: Id,
    classes: SmallVec<[(&'static str, Id); 4]>,
    nodes: SmallVec<[(&'static str, Onnx); 2]>,
}

/// At most this many matches per anchor e-node: an e-class with many equivalent members
/// under a pattern of several levels must not make one anchor cost more than the rest.
const MAX_MATCHES_PER_ANCHOR: usize = 16;

impl Match {
    /// The e-class bound to variable `name`.
    pub fn class(&self, name: &str) -> Option<Id> {
        self.classes
            .iter()
            .find(|(n, _)| *n == name)
            .map(|(_, c)| *c)
    }

    /// The e-node bound to `@name`.
    pub fn node(&self, name: &str) -> Option<&Onnx> {
        self.nodes.iter().find(|(n, _)| *n == name).map(|(_, e)| e)
    }

    /// Both bindings agree, merged; `None` when a variable is bound to two e-classes.
    fn join(&self, other: &Match) -> Option<Match> {
        let mut joined = self.clone();
        for &(name, class) in &other.classes {
            match joined.class(name) {
                Some(bound) if bound != class => return None,
                Some(_) => {}
                None => joined.classes.push((name, class)),
            }
        }
        joined.nodes.extend(other.nodes.iter().cloned());
        Some(joined)
    }
}

impl Pattern {
    /// Parses `text` (see the module docs for the syntax).
    pub fn parse(text: &'static str) -> Result<Self, PatternError> {
        let mut parser = Parser { text, at: 0 };
        let root = parser.node()?;
        parser.skip_space();
        if parser.at != text.len() {
            return Err(parser.error("unexpected text after the pattern"));
        }
        if !matches!(root, Node::Op { .. }) {
            return Err(PatternError {
                text,
                what: "the root must be an operator",
                at: 0,
            });
        }
        Ok(Self { root, text })
    }

    /// The pattern as written.
    pub fn text(&self) -> &'static str {
        self.text
    }

    /// The `(domain, op_type)` pairs of the root: the rule's anchors.
    pub fn anchors(&self) -> &[(&'static str, &'static str)] {
        match &self.root {
            Node::Op { ops, .. } => ops,
            Node::Var(_) | Node::Any => &[],
        }
    }

    /// Whether `node` is an anchor of this pattern (its root operator, inputs not looked at).
    pub fn is_anchor(&self, egraph: &OnnxEGraph, node: &Onnx) -> bool {
        is_op(egraph, self.anchors(), node)
    }

    /// Every way the pattern matches with `anchor` (an e-node of `class`) as its root.
    pub fn matches(&self, egraph: &OnnxEGraph, class: Id, anchor: &Onnx) -> Vec<Match> {
        let class = egraph.find(class);
        let mut found = node_matches(egraph, &self.root, anchor);
        for m in &mut found {
            m.root = class;
        }
        found
    }

    /// Whether the pattern matches some anchor of `class`.
    pub fn matches_class(&self, egraph: &OnnxEGraph, class: Id) -> bool {
        let Node::Op { args, .. } = &self.root else {
            return false;
        };
        let anchors = egraph[class]
            .nodes
            .iter()
            .filter(|n| self.is_anchor(egraph, n));
        if args.is_empty() {
            return anchors.count() > 0;
        }
        anchors
            .into_iter()
            .any(|n| !node_matches(egraph, &self.root, n).is_empty())
    }
}

fn is_op(egraph: &OnnxEGraph, ops: &[(&str, &str)], node: &Onnx) -> bool {
    let Onnx::Op(key, _) = node else {
        return false;
    };
    let op = egraph.analysis.ops.get(*key);
    ops.iter().any(|(domain, op_type)| op.is(domain, op_type))
}

/// The matches of an operator pattern rooted at one e-node.
fn node_matches(egraph: &OnnxEGraph, pattern: &Node, node: &Onnx) -> Vec<Match> {
    let Node::Op { ops, args, bind } = pattern else {
        return Vec::new();
    };
    let Onnx::Op(key, children) = node else {
        return Vec::new();
    };
    if !is_op(egraph, ops, node) || egraph.analysis.ops.get(*key).inputs < args.len() {
        return Vec::new();
    }
    let mut first = Match::default();
    if let Some(name) = bind {
        first.nodes.push((name, node.clone()));
    }
    let mut partial = vec![first];
    for (arg, child) in args.iter().zip(children) {
        let inner = class_matches(egraph, arg, *child);
        let mut next = Vec::new();
        'join: for p in &partial {
            for i in &inner {
                if let Some(j) = p.join(i) {
                    next.push(j);
                    if next.len() == MAX_MATCHES_PER_ANCHOR {
                        break 'join;
                    }
                }
            }
        }
        if next.is_empty() {
            return next;
        }
        partial = next;
    }
    partial
}

/// The matches of a pattern against one e-class (any of its members, for an operator).
fn class_matches(egraph: &OnnxEGraph, pattern: &Node, class: Id) -> Vec<Match> {
    let class = egraph.find(class);
    match pattern {
        Node::Any => vec![Match::default()],
        Node::Var(name) => {
            let missing = egraph[class]
                .nodes
                .iter()
                .any(|n| matches!(n, Onnx::Missing));
            if missing {
                return Vec::new();
            }
            let mut m = Match::default();
            m.classes.push((name, class));
            vec![m]
        }
        Node::Op { .. } => {
            let mut found = Vec::new();
            for node in &egraph[class].nodes {
                found.extend(node_matches(egraph, pattern, node));
                if found.len() >= MAX_MATCHES_PER_ANCHOR {
                    found.truncate(MAX_MATCHES_PER_ANCHOR);
                    break;
                }
            }
            found
        }
    }
}

struct Parser {
    text: &'static str,
    at: usize,
}

impl Parser {
    fn error(&self, what: &'static str) -> PatternError {
        PatternError {
            text: self.text,
            what,
            at: self.at,
        }
    }

    fn skip_space(&mut self) {
        let rest = &self.text[self.at..];
        self.at += rest.len() - rest.trim_start().len();
    }

    fn eat(&mut self, c: char) -> bool {
        self.skip_space();
        if self.text[self.at..].starts_with(c) {
            self.at += c.len_utf8();
            true
        } else {
            false
        }
    }

    /// A name: letters, digits, `_`, `.` (domains), starting with a letter or `_`.
    fn name(&mut self) -> Result<&'static str, PatternError> {
        self.skip_space();
        let text: &'static str = self.text;
        let rest = &text[self.at..];
        let len = rest
            .find(|c: char| !(c.is_ascii_alphanumeric() || c == '_' || c == '.'))
            .unwrap_or(rest.len());
        if len == 0 || rest.starts_with(|c: char| c.is_ascii_digit() || c == '.') {
            return Err(self.error("expected a name"));
        }
        self.at += len;
        Ok(&rest[..len])
    }

    fn node(&mut self) -> Result<Node, PatternError> {
        let name = self.name()?;
        if name == "_" {
            return Ok(Node::Any);
        }
        let is_op = name.starts_with(|c: char| c.is_ascii_uppercase()) || self.peek(':');
        if !is_op {
            return Ok(Node::Var(name));
        }
        let mut ops = SmallVec::new();
        ops.push(self.qualified(name)?);
        while self.eat('|') {
            let next = self.name()?;
            ops.push(self.qualified(next)?);
        }
        let mut args = Vec::new();
        if self.eat('(') && !self.eat(')') {
            loop {
                args.push(self.node()?);
                if self.eat(')') {
                    break;
                }
                if !self.eat(',') {
                    return Err(self.error("expected ',' or ')'"));
                }
            }
        }
        let bind = if self.eat('@') {
            Some(self.name()?)
        } else {
            None
        };
        Ok(Node::Op { ops, args, bind })
    }

    fn peek(&mut self, c: char) -> bool {
        self.skip_space();
        self.text[self.at..].starts_with(c)
    }

    /// `name` as `(domain, op_type)`: `domain:Op`, or an op of the default domain.
    fn qualified(
        &mut self,
        name: &'static str,
    ) -> Result<(&'static str, &'static str), PatternError> {
        if self.eat(':') {
            let op = self.name()?;
            return Ok((crate::language::normalize_domain(name), op));
        }
        if !name.starts_with(|c: char| c.is_ascii_uppercase()) {
            return Err(self.error("an operator starts with an uppercase letter"));
        }
        Ok(("", name))
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn parses_nested_alternatives_bindings_and_domains() {
        let p = Pattern::parse("Transpose(Transpose(x) @inner, _) @outer").expect("parses");
        assert_eq!(p.anchors(), &[("", "Transpose")]);
        let p = Pattern::parse("Shape|Gather|com.microsoft:FusedMatMul").expect("parses");
        assert_eq!(
            p.anchors(),
            &[
                ("", "Shape"),
                ("", "Gather"),
                ("com.microsoft", "FusedMatMul")
            ]
        );
        let p = Pattern::parse("ai.onnx:Relu(x)").expect("parses");
        assert_eq!(p.anchors(), &[("", "Relu")]);
    }

    #[test]
    fn rejects_what_is_not_a_pattern() {
        for bad in [
            "x",
            "_",
            "Relu(",
            "Relu(x,)",
            "Relu(x) y",
            "Relu|",
            "Relu(1)",
            "",
        ] {
            assert!(Pattern::parse(bad).is_err(), "{bad} should not parse");
        }
    }
}
