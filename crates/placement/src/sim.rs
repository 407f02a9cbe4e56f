//! One graph as ONNX Runtime sees it when it partitions: `Constant` nodes turned into
//! initializers at load, then the Level-1 (`ORT_ENABLE_BASIC`) transformers that change which
//! nodes exist: Identity/Dropout/same-type-Cast elimination, `ConstantSharing` + common
//! subexpression elimination, and `ConstantFolding` (including a `Shape` of a fully static
//! input), repeated until nothing changes (at most 10 rounds, ORT's default).
//!
//! The IR is not touched: the simulation holds its own nodes and values, indexed like the IR's
//! (each value is an IR value; a merged or eliminated value is redirected to the one that
//! replaces it), so a prediction maps back to IR nodes and values.
//!
//! Level-1 transformers left out, with why they do not move a Memcpy in the graphs this is for:
//! `NoopElimination`, `EliminateSlice`/`ExpandElimination` (no-op nodes on either side of a
//! boundary), fusions (`MatMulAdd`, `Gelu`, `LayerNorm`, `Reshape`: device-side, or shape chains
//! that end in CPU-memory inputs), `TransposeOptimizer`, QDQ passes, and inlining an `If` with a
//! constant condition.

use std::sync::Arc;

use rustc_hash::FxHashMap as HashMap;

use onnx_rewrite_facts::{ConstTensor, GraphFacts};
use onnx_rewrite_ir::edit::attr;
use onnx_rewrite_ir::{GraphId, Model, NodeId, ValueDef, ValueId};
use onnx_rewrite_ort_kernels::{Ep, KernelMatch, Ort};
use onnx_rewrite_proto::tensor_proto::DataType;
use onnx_rewrite_proto::{AttributeProto, Message};

/// Index of a value in [`Sim::values`].
pub type V = usize;
/// Index of a node in [`Sim::nodes`] (topological order).
pub type N = usize;

/// Where a value comes from, as ORT's graph sees it.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Kind {
    /// A graph input (`GraphViewer::GetInputs`).
    Input,
    /// A constant initializer of this graph or an enclosing one (a folded value becomes one).
    Constant,
    /// An output of a node of this graph.
    Computed,
    /// A value of an enclosing graph that is not a constant (a subgraph capture).
    Outer,
}

#[derive(Debug, Clone)]
pub struct SimValue {
    pub id: ValueId,
    pub kind: Kind,
    pub dtype: Option<DataType>,
    /// Dims, each known or not; `None`: unknown rank.
    pub dims: Option<Vec<Option<i64>>>,
    /// The value, when small and known.
    pub constant: Option<Arc<ConstTensor>>,
    /// Replaced by this value (CSE, Identity elimination...).
    pub redirect: Option<V>,
    pub graph_output: bool,
}

impl SimValue {
    /// Element count, when every dim is known.
    pub fn elements(&self) -> Option<i64> {
        self.dims
            .as_ref()?
            .iter()
            .try_fold(1i64, |n, d| n.checked_mul((*d)?))
    }

    pub fn static_dims(&self) -> Option<Vec<i64>> {
        self.dims.as_ref()?.iter().copied().collect()
    }
}

#[derive(Debug, Clone)]
pub struct SimNode {
    pub ir: NodeId,
    pub domain: String,
    pub op: String,
    pub attributes: Vec<AttributeProto>,
    pub inputs: Vec<Option<V>>,
    pub outputs: Vec<Option<V>>,
    /// Outer values its subgraphs read.
    pub implicit: Vec<V>,
    pub has_subgraph: bool,
    /// A function op no EP has a kernel for: ORT inlines its body before partitioning (taken
    /// here as one node whose primitives run on CUDA).
    pub inlined: bool,
    pub alive: bool,
    /// ORT's `since_version` for the node (`None`: no schema).
    pub since_version: Option<i64>,
    pub opset: i64,
}

impl SimNode {
    pub fn int_attribute(&self, name: &str) -> Option<i64> {
        self.attributes
            .iter()
            .find(|a| a.name() == name)
            .and_then(|a| a.i)
    }
}

/// What Level 1 did, for the report.
#[derive(Debug, Clone, Copy, Default, PartialEq, Eq, serde::Serialize)]
pub struct Level1Stats {
    /// `Constant` nodes turned into initializers at load.
    pub constant_nodes: usize,
    pub folded: usize,
    pub merged: usize,
    pub eliminated: usize,
    pub rounds: usize,
}

/// A graph after load and Level 1.
pub struct Sim {
    pub nodes: Vec<SimNode>,
    pub values: Vec<SimValue>,
    pub index: HashMap<ValueId, V>,
    pub inputs: Vec<V>,
    pub outputs: Vec<V>,
    pub stats: Level1Stats,
}

/// ORT's `IsOperationDeterministic` (ONNX domain): the ops ORT's constant folding and CSE leave
/// alone. ORT's own list, not the op table's random ops: it lacks Bernoulli, which ORT so
/// treats as deterministic, and the simulation predicts what ORT does.
const NONDETERMINISTIC: &[&str] = &[
    "RandomUniform",
    "RandomNormal",
    "RandomUniformLike",
    "RandomNormalLike",
    "Multinomial",
];

/// `ConstantSharing`'s limits: at most 8 elements, of these types.
const SHARE_MAX_ELEMENTS: i64 = 8;
const SHARE_TYPES: &[DataType] = &[
    DataType::Float16,
    DataType::Float,
    DataType::Double,
    DataType::Int32,
    DataType::Int64,
];

impl Sim {
    /// Builds the graph as loaded (facts from inference) and runs Level 1.
    pub fn new(model: &Model, graph: GraphId, ort: &Ort) -> Result<Self, NodeId> {
        let order = model.topological_order(graph)?;
        let mut inferred = GraphFacts::of(model, graph)?;
        let mut sim = Sim {
            nodes: Vec::with_capacity(order.len()),
            values: Vec::new(),
            index: HashMap::default(),
            inputs: Vec::new(),
            outputs: Vec::new(),
            stats: Level1Stats::default(),
        };
        let mut facts_of = |value: ValueId| {
            let facts = inferred.get(value)?.clone();
            let syms = inferred.syms();
            let dims = facts.shape.as_ref().map(|s| {
                s.dims()
                    .iter()
                    .map(|d| syms.value_of(*d))
                    .collect::<Vec<_>>()
            });
            Some((facts.dtype, dims, facts.constant))
        };
        let mut add_value = |sim: &mut Sim, value: ValueId| -> V {
            if let Some(&v) = sim.index.get(&value) {
                return v;
            }
            let ir = model.value(value);
            let local = ir.graph() == graph;
            let kind = match ir.def() {
                ValueDef::Input if local => Kind::Input,
                ValueDef::Node { .. } if local => Kind::Computed,
                ValueDef::Initializer | ValueDef::SparseInitializer => Kind::Constant,
                _ => Kind::Outer,
            };
            let (mut dtype, mut dims, mut constant) = facts_of(value).unwrap_or((None, None, None));
            if let (Kind::Constant, Some(t)) = (kind, ir.initializer()) {
                dtype = DataType::try_from(t.data_type()).ok();
                dims = Some(t.dims.iter().map(|d| Some(*d)).collect());
                if constant.is_none() {
                    constant =
                        ConstTensor::from_proto(t, SHARE_MAX_ELEMENTS as usize).map(Arc::new);
                }
            }
            let v = sim.values.len();
            sim.values.push(SimValue {
                id: value,
                kind,
                dtype,
                dims,
                constant,
                redirect: None,
                graph_output: false,
            });
            sim.index.insert(value, v);
            v
        };
        let g = model.graph(graph);
        for io in g.inputs() {
            let v = add_value(&mut sim, io.value);
            if sim.values[v].kind == Kind::Input {
                sim.inputs.push(v);
            }
        }
        for &init in g.initializers() {
            add_value(&mut sim, init);
        }
        for &node in &order {
            let n = model.node(node);
            let inputs = n
                .inputs()
                .iter()
                .map(|i| i.map(|value| add_value(&mut sim, value)))
                .collect();
            let outputs = n
                .outputs()
                .iter()
                .map(|o| o.map(|value| add_value(&mut sim, value)))
                .collect();
            let mut implicit: Vec<V> = n
                .subgraphs()
                .flat_map(|sub| model.captures(sub))
                .map(|value| add_value(&mut sim, value))
                .collect();
            implicit.sort_unstable();
            implicit.dedup();
            let domain = onnx_rewrite_ort_kernels::domain_key(n.domain()).to_owned();
            let opset = model
                .opset(&domain)
                .or_else(|| {
                    (domain.is_empty())
                        .then(|| model.opset("ai.onnx"))
                        .flatten()
                })
                .unwrap_or(1);
            let since_version = ort.since_version(&domain, n.op_type(), opset);
            sim.nodes.push(SimNode {
                ir: node,
                domain,
                op: n.op_type().to_owned(),
                attributes: n.attributes.iter().map(|a| a.proto.clone()).collect(),
                inputs,
                outputs,
                implicit,
                has_subgraph: n.subgraphs().next().is_some(),
                inlined: false,
                alive: true,
                since_version,
                opset,
            });
        }
        for io in g.outputs() {
            let v = add_value(&mut sim, io.value);
            sim.values[v].graph_output = true;
            sim.outputs.push(v);
        }
        sim.load_constants();
        sim.inline_functions(ort);
        sim.level1(ort);
        Ok(sim)
    }

    /// Graph load: every `Constant` node becomes an initializer.
    fn load_constants(&mut self) {
        for n in 0..self.nodes.len() {
            if self.nodes[n].op == "Constant" && self.nodes[n].domain.is_empty() {
                self.fold(n);
                self.stats.constant_nodes += 1;
                self.stats.folded -= 1;
            }
        }
    }

    /// `InlineFunctionsAOT`: a node with a function body that no EP has a kernel for is
    /// replaced by its body. `CastLike` becomes the `Cast` its body is; other bodies are kept as
    /// one node (see [`SimNode::inlined`]).
    fn inline_functions(&mut self, ort: &Ort) {
        for n in 0..self.nodes.len() {
            let node = &self.nodes[n];
            if !node.alive
                || !ort.has_function(&node.domain, &node.op, node.opset)
                || self.kernel(ort, Ep::Cuda, n).is_found()
                || self.kernel(ort, Ep::Cpu, n).is_found()
            {
                continue;
            }
            let target = node
                .inputs
                .get(1)
                .copied()
                .flatten()
                .and_then(|v| self.values[v].dtype);
            match (node.op.as_str(), target) {
                ("CastLike", Some(to)) => {
                    let node = &mut self.nodes[n];
                    node.op = "Cast".to_owned();
                    node.attributes = vec![attr::int("to", to as i64)];
                    node.inputs.truncate(1);
                    node.since_version = ort.since_version("", "Cast", node.opset);
                }
                _ => self.nodes[n].inlined = true,
            }
        }
    }

    fn level1(&mut self, ort: &Ort) {
        for round in 0..10 {
            let mut changed = self.eliminate();
            changed |= self.cse();
            changed |= self.constant_folding(ort);
            self.stats.rounds = round + 1;
            if !changed {
                break;
            }
        }
    }

    /// Makes every reader of `old` read `new` (graph outputs keep their value).
    fn redirect(&mut self, old: V, new: V) {
        self.values[old].redirect = Some(new);
        for node in self.nodes.iter_mut().filter(|n| n.alive) {
            for input in node.inputs.iter_mut().flatten() {
                if *input == old {
                    *input = new;
                }
            }
            for v in node.implicit.iter_mut() {
                if *v == old {
                    *v = new;
                }
            }
        }
    }

    /// `EliminateIdentity`, `EliminateDropout`, `CastElimination` (cast to its own type).
    fn eliminate(&mut self) -> bool {
        let mut changed = false;
        for n in 0..self.nodes.len() {
            let node = &self.nodes[n];
            if !node.alive || !node.domain.is_empty() || node.has_subgraph {
                continue;
            }
            let (Some(Some(input)), Some(Some(output))) =
                (node.inputs.first(), node.outputs.first())
            else {
                continue;
            };
            let (input, output) = (*input, *output);
            let removable = match node.op.as_str() {
                "Identity" => true,
                "Dropout" => {
                    let mask_unused = node
                        .outputs
                        .get(1)
                        .copied()
                        .flatten()
                        .is_none_or(|m| !self.values[m].graph_output && !self.is_read(m));
                    mask_unused && node.inputs.get(2).copied().flatten().is_none()
                }
                "Cast" => {
                    let to = node.int_attribute("to");
                    let from = self.values[input].dtype;
                    from.is_some() && to == from.map(|d| d as i64)
                }
                _ => false,
            };
            if removable && !self.values[output].graph_output {
                self.nodes[n].alive = false;
                self.redirect(output, input);
                self.stats.eliminated += 1;
                changed = true;
            }
        }
        changed
    }

    fn is_read(&self, v: V) -> bool {
        self.nodes
            .iter()
            .filter(|n| n.alive)
            .any(|n| n.inputs.contains(&Some(v)) || n.implicit.contains(&v))
    }

    /// `ConstantSharing` then `CommonSubexpressionElimination`: nodes with the same operator,
    /// attributes and inputs compute one value; the first in topological order represents it.
    /// Equal small constants count as one input (sharing); graph outputs are never replaced.
    fn cse(&mut self) -> bool {
        #[derive(Hash, PartialEq, Eq)]
        enum Class {
            Value(V),
            Shared(DataType, Vec<i64>, Arc<ConstTensor>),
            Output(usize, u32),
        }
        let mut class_of: HashMap<V, usize> = HashMap::default();
        let mut classes: HashMap<Class, usize> = HashMap::default();
        let mut representative: Vec<V> = Vec::new();
        let intern =
            |classes: &mut HashMap<Class, usize>, representative: &mut Vec<V>, c: Class, v: V| {
                let next = representative.len();
                let id = *classes.entry(c).or_insert(next);
                if id == next {
                    representative.push(v);
                }
                id
            };
        let mut changed = false;
        let mut node_keys: HashMap<Vec<u8>, usize> = HashMap::default();
        for n in 0..self.nodes.len() {
            if !self.nodes[n].alive {
                continue;
            }
            let mut inputs = Vec::with_capacity(self.nodes[n].inputs.len());
            for input in &self.nodes[n].inputs {
                let Some(v) = *input else {
                    inputs.push(u32::MAX);
                    continue;
                };
                let id = match class_of.get(&v) {
                    Some(id) => *id,
                    None => {
                        let value = &self.values[v];
                        let shared = match (&value.constant, value.dtype, value.static_dims()) {
                            (Some(c), Some(dtype), Some(dims))
                                if value.kind == Kind::Constant
                                    && !value.graph_output
                                    && SHARE_TYPES.contains(&dtype)
                                    && (1..=SHARE_MAX_ELEMENTS)
                                        .contains(&value.elements().unwrap_or(0)) =>
                            {
                                Class::Shared(dtype, dims, c.clone())
                            }
                            _ => Class::Value(v),
                        };
                        let id = intern(&mut classes, &mut representative, shared, v);
                        class_of.insert(v, id);
                        id
                    }
                };
                inputs.push(id as u32);
            }
            let node = &self.nodes[n];
            let nondeterministic =
                node.domain.is_empty() && NONDETERMINISTIC.contains(&node.op.as_str());
            let supported = !node.has_subgraph
                && !nondeterministic
                && node.op != "DequantizeLinear"
                && (node.domain.is_empty()
                    || node.domain == "com.microsoft"
                    || node.domain == "ai.onnx.ml");
            let key = supported.then(|| {
                let mut key = Vec::new();
                for part in [node.domain.as_bytes(), node.op.as_bytes()] {
                    key.extend((part.len() as u64).to_le_bytes());
                    key.extend(part);
                }
                let mut attributes = node.attributes.clone();
                attributes.sort_by(|a, b| a.name().cmp(b.name()));
                for a in &attributes {
                    let bytes = a.encode_to_vec();
                    key.extend((bytes.len() as u64).to_le_bytes());
                    key.extend(bytes);
                }
                key.extend((inputs.len() as u64).to_le_bytes());
                for i in &inputs {
                    key.extend(i.to_le_bytes());
                }
                key.extend((node.outputs.len() as u64).to_le_bytes());
                key
            });
            let node_id = key.map(|k| {
                let next = node_keys.len();
                *node_keys.entry(k).or_insert(next)
            });
            let mut replaced = 0;
            let outputs = self.nodes[n].outputs.clone();
            for (slot, output) in outputs.iter().enumerate() {
                let Some(v) = *output else { continue };
                let class = match node_id {
                    Some(id) => Class::Output(id, slot as u32),
                    None => Class::Value(v),
                };
                let id = intern(&mut classes, &mut representative, class, v);
                class_of.insert(v, id);
                let rep = representative[id];
                if rep != v && !self.values[v].graph_output {
                    self.redirect(v, rep);
                    self.stats.merged += 1;
                    replaced += 1;
                    changed = true;
                }
            }
            // A node whose every output was replaced is gone.
            if replaced > 0 && replaced == outputs.iter().flatten().count() {
                self.nodes[n].alive = false;
            }
        }
        // Constants shared by value: readers of a duplicate read the representative.
        let shared: Vec<(V, V)> = class_of
            .iter()
            .filter(|(v, id)| {
                representative[**id] != **v && self.values[**v].kind == Kind::Constant
            })
            .map(|(v, id)| (*v, representative[*id]))
            .collect();
        let mut shared = shared;
        shared.sort_unstable();
        for (v, rep) in shared {
            if self.values[v].redirect.is_none() {
                self.redirect(v, rep);
                changed = true;
            }
        }
        changed
    }

    /// `ConstantFolding`: a deterministic node without subgraphs whose inputs are all constant
    /// initializers, and which the CPU EP has a kernel for, becomes initializers; so does a
    /// `Shape` whose input has a fully static shape.
    fn constant_folding(&mut self, ort: &Ort) -> bool {
        let mut changed = false;
        for n in 0..self.nodes.len() {
            let node = &self.nodes[n];
            if !node.alive || node.has_subgraph {
                continue;
            }
            let foldable = if node.domain.is_empty() && node.op == "Shape" {
                node.inputs
                    .first()
                    .copied()
                    .flatten()
                    .is_some_and(|v| self.values[v].static_dims().is_some())
            } else {
                let deterministic =
                    !(node.domain.is_empty() && NONDETERMINISTIC.contains(&node.op.as_str()));
                let constant_inputs = node
                    .inputs
                    .iter()
                    .flatten()
                    .all(|v| self.values[*v].kind == Kind::Constant);
                deterministic
                    && constant_inputs
                    && (node.inlined || self.kernel(ort, Ep::Cpu, n).is_found())
                    && node.op != "DequantizeLinear"
                    && node.op != "QuantizeLinear"
            };
            if foldable {
                self.fold(n);
                changed = true;
            }
        }
        changed
    }

    fn fold(&mut self, n: N) {
        self.nodes[n].alive = false;
        for v in self.nodes[n].outputs.clone().into_iter().flatten() {
            self.values[v].kind = Kind::Constant;
        }
        self.stats.folded += 1;
    }

    /// Whether `ep` has a kernel for node `n`, and why not.
    pub fn kernel(&self, ort: &Ort, ep: Ep, n: N) -> KernelMatch {
        let node = &self.nodes[n];
        let names = |vs: &[Option<V>]| -> Vec<Option<String>> {
            vs.iter()
                .map(|v| {
                    v.and_then(|v| self.values[v].dtype)
                        .map(onnx_rewrite_ort_kernels::type_name)
                })
                .collect()
        };
        let inputs = names(&node.inputs);
        let outputs = names(&node.outputs);
        fn as_refs(v: &[Option<String>]) -> Vec<Option<&str>> {
            v.iter().map(|t| t.as_deref()).collect()
        }
        ort.lookup(
            ep,
            &node.domain,
            &node.op,
            node.opset,
            &as_refs(&inputs),
            &as_refs(&outputs),
        )
    }

    /// The live nodes reading each value (explicitly or as a subgraph capture).
    pub fn consumers(&self) -> Vec<Vec<N>> {
        let mut consumers = vec![Vec::new(); self.values.len()];
        for (n, node) in self.nodes.iter().enumerate().filter(|(_, n)| n.alive) {
            for v in node.inputs.iter().flatten().chain(node.implicit.iter()) {
                if consumers[*v].last() != Some(&n) {
                    consumers[*v].push(n);
                }
            }
        }
        consumers
    }

    /// The live node producing each value, with the output slot.
    pub fn producers(&self) -> Vec<Option<(N, usize)>> {
        let mut producers = vec![None; self.values.len()];
        for (n, node) in self.nodes.iter().enumerate().filter(|(_, n)| n.alive) {
            for (slot, v) in node.outputs.iter().enumerate() {
                if let Some(v) = v {
                    producers[*v] = Some((n, slot));
                }
            }
        }
        producers
    }
}

#[cfg(test)]
mod tests {
    use super::NONDETERMINISTIC;
    use onnx_rewrite_ops::{Effect, rows, worst_effect};

    /// Every op ORT treats as nondeterministic is random in the op table, and the table's other
    /// random ops are the ones ORT is known to miss.
    #[test]
    fn orts_nondeterministic_ops_are_the_tables_random_ops_but_bernoulli() {
        for op in NONDETERMINISTIC {
            assert_eq!(worst_effect("", op), Some(Effect::Random), "{op}");
        }
        let missed: Vec<&str> = rows()
            .filter(|r| r.effect == Effect::Random && !NONDETERMINISTIC.contains(&r.op_type))
            .map(|r| r.op_type)
            .collect();
        assert_eq!(missed, ["Bernoulli"]);
    }
}
