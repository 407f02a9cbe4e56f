//! The e-class analysis: the [`facts`](crate::facts) of every e-class, kept as rules merge
//! classes. Two classes whose facts contradict each other (different dtypes, ranks, known
//! dims or constants) must not be merged; when a rule does it anyway, the conflict is
//! recorded with the rule's name and the pass fails rather than emit a graph it cannot trust.

use rustc_hash::FxHashMap as HashMap;
use std::sync::Arc;

use egg::{Analysis, DidMerge, EGraph, Id};
use onnx_rewrite_ir::ValueId;
use onnx_rewrite_proto::TensorProto;

use crate::facts::{self, ConstTensor, Limits, OpInfo, Symbols, ValueFacts};
use crate::language::{ConstTable, Onnx, OpTable};

/// The e-graph of one ONNX graph.
pub type OnnxEGraph = EGraph<Onnx, OnnxAnalysis>;

/// What is known about an e-class.
#[derive(Debug, Clone)]
pub enum ClassData {
    /// A value: a tensor (or sequence, ...) of the graph.
    Value(ValueFacts),
    /// The tuple of a multi-output operator, one entry per output slot.
    Tuple(Vec<ValueFacts>),
    /// The root that ties the graph outputs together.
    Root,
}

impl ClassData {
    /// The facts of a value class (default facts for tuples and the root).
    pub fn value(&self) -> Option<&ValueFacts> {
        match self {
            ClassData::Value(facts) => Some(facts),
            ClassData::Tuple(_) | ClassData::Root => None,
        }
    }
}

/// Analysis state shared by every e-class of one e-graph.
#[derive(Debug, Default)]
pub struct OnnxAnalysis {
    pub ops: OpTable,
    pub consts: ConstTable,
    pub symbols: Symbols,
    pub limits: Limits,
    /// Opset version per domain (`""` for the default domain).
    pub opsets: HashMap<String, i64>,
    /// Facts of the leaves (inputs, initializers, captures), set when the graph is lowered.
    pub leaves: HashMap<ValueId, ValueFacts>,
    /// The data of leaves that are initializers (constants, unlike inputs with a default).
    pub leaf_tensors: HashMap<ValueId, TensorProto>,
    /// The names of the leaves, for naming what rules derive from them.
    pub leaf_names: HashMap<ValueId, String>,
    /// Why rules declined, per rule and e-class (the last reason wins).
    pub declines: Vec<crate::rule::DeclineRecord>,
    /// Every rule event, when tracing.
    pub trace: Option<Vec<crate::rule::TraceEvent>>,
    /// Add a constant e-node to every class whose value the analysis knows (scalar folding).
    pub fold_constants: bool,
    /// The rule being applied, so a conflict can be blamed on it.
    pub current_rule: Option<&'static str>,
    /// Merges that equated contradicting facts.
    pub conflicts: Vec<String>,
}

impl OnnxAnalysis {
    pub fn opset(&self, domain: &str) -> i64 {
        self.opsets
            .get(crate::language::normalize_domain(domain))
            .copied()
            .unwrap_or(0)
    }

    /// Facts of a tensor: its dtype, its (known) dims and, when small, its value.
    pub fn facts_of_tensor(&self, tensor: &TensorProto) -> ValueFacts {
        ValueFacts::of_tensor(tensor, self.limits)
    }

    /// Merges `extra` into a class's facts (declared types at lowering). A contradiction is
    /// reported, not fatal: a declared `value_info` can be wrong, inference is kept.
    pub fn refine(
        egraph: &mut OnnxEGraph,
        id: Id,
        extra: &ValueFacts,
    ) -> Result<(), facts::Conflict> {
        let id = egraph.find(id);
        let ClassData::Value(mut current) = egraph[id].data.clone() else {
            return Ok(());
        };
        current.merge(extra, &mut egraph.analysis.symbols)?;
        egraph[id].data = ClassData::Value(current);
        Ok(())
    }
}

impl Analysis<Onnx> for OnnxAnalysis {
    type Data = ClassData;

    fn make(egraph: &mut OnnxEGraph, enode: &Onnx, _id: Id) -> ClassData {
        match enode {
            Onnx::Leaf(value) => ClassData::Value(
                egraph
                    .analysis
                    .leaves
                    .get(value)
                    .cloned()
                    .unwrap_or_default(),
            ),
            Onnx::Missing => ClassData::Value(ValueFacts::default()),
            Onnx::Const(key) => {
                let tensor = egraph.analysis.consts.get(*key).tensor.clone();
                ClassData::Value(egraph.analysis.facts_of_tensor(&tensor))
            }
            Onnx::Root(_) => ClassData::Root,
            Onnx::Proj(index, [tuple]) => match &egraph[*tuple].data {
                ClassData::Tuple(outputs) => {
                    ClassData::Value(outputs.get(*index as usize).cloned().unwrap_or_default())
                }
                _ => ClassData::Value(ValueFacts::default()),
            },
            Onnx::Op(key, children) => {
                let explicit = egraph.analysis.ops.get(*key).inputs;
                let inputs: Vec<Option<ValueFacts>> = children
                    .iter()
                    .take(explicit)
                    .map(|child| {
                        let class = &egraph[*child];
                        if class.nodes.iter().any(|n| matches!(n, Onnx::Missing)) {
                            None
                        } else {
                            Some(class.data.value().cloned().unwrap_or_default())
                        }
                    })
                    .collect();
                let input_refs: Vec<Option<&ValueFacts>> =
                    inputs.iter().map(Option::as_ref).collect();
                // Disjoint borrows of the analysis: the key table, read; the symbols, written.
                let OnnxAnalysis {
                    ops,
                    symbols,
                    limits,
                    opsets,
                    ..
                } = &mut egraph.analysis;
                let op = ops.get(*key);
                let opset = opsets.get(op.domain.as_str()).copied().unwrap_or(0);
                let info = OpInfo {
                    domain: &op.domain,
                    op_type: &op.op_type,
                    attributes: &op.attributes,
                    opset,
                    outputs: op.output_slots(),
                };
                let mut outputs = facts::infer(&info, &input_refs, symbols, limits);
                outputs.resize_with(op.output_slots(), ValueFacts::default);
                if op.is_tuple() {
                    ClassData::Tuple(outputs)
                } else {
                    ClassData::Value(outputs.pop().unwrap_or_default())
                }
            }
        }
    }

    fn merge(&mut self, a: &mut ClassData, b: ClassData) -> DidMerge {
        let mut conflict = None;
        let mut merge_one =
            |x: &mut ValueFacts, y: &ValueFacts, symbols: &mut Symbols, what: String| {
                x.merge_both(y, symbols).unwrap_or_else(|e| {
                    conflict = Some(format!("{what}{e}"));
                    (false, false)
                })
            };
        let (a_changed, b_changed) = match (&mut *a, &b) {
            (ClassData::Value(x), ClassData::Value(y)) => {
                merge_one(x, y, &mut self.symbols, String::new())
            }
            (ClassData::Tuple(xs), ClassData::Tuple(ys)) if xs.len() == ys.len() => xs
                .iter_mut()
                .zip(ys)
                .enumerate()
                .fold((false, false), |(ca, cb), (i, (x, y))| {
                    let (da, db) = merge_one(x, y, &mut self.symbols, format!("output {i}: "));
                    (ca || da, cb || db)
                }),
            (ClassData::Root, ClassData::Root) => (false, false),
            _ => {
                conflict = Some("a value merged with a tuple or the root".to_owned());
                (false, false)
            }
        };
        if let Some(what) = conflict {
            let blame = self
                .current_rule
                .map_or_else(|| "lowering".to_owned(), |r| format!("rule {r}"));
            self.conflicts
                .push(format!("{blame} equated values that differ: {what}"));
        }
        DidMerge(a_changed, b_changed)
    }

    fn modify(egraph: &mut OnnxEGraph, id: Id) {
        if !egraph.analysis.fold_constants {
            return;
        }
        let Some(constant) = egraph[id].data.value().and_then(|f| f.constant.clone()) else {
            return;
        };
        if egraph[id]
            .nodes
            .iter()
            .any(|n| matches!(n, Onnx::Const(_) | Onnx::Leaf(_)))
        {
            return;
        }
        let key = egraph
            .analysis
            .consts
            .intern(constant_proto(&constant), "folded");
        let folded = egraph.add(Onnx::Const(key));
        egraph.union(id, folded);
    }
}

fn constant_proto(constant: &Arc<ConstTensor>) -> TensorProto {
    constant.to_proto()
}
