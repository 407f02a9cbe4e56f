//! Where a value's numbers come from: compile-time constants, integer positions and sizes, or
//! data. This is what tells the rotary chain and the float length arithmetic (both must stay
//! float32) from the activations (which go to float16), structurally and without names.
//!
//! - [`Origin::Constant`]: initializers, `Constant`, `ConstantOfShape`, and what is computed
//!   from them alone.
//! - [`Origin::Position`]: runtime integers that index or count (`position_ids`, `Shape`,
//!   `Range`, an int64/int32/bool graph input) and float arithmetic on them and constants:
//!   `Cast(position_ids) × inv_freq`, `Cast(attention_mask)`, `floor((L + 2p − k) / s) + 1`.
//! - [`Origin::Data`]: activations. A float graph input, a lookup of a constant table by a runtime
//!   index (an embedding), randomness, or a product with a weight matrix is data.
//!
//! Origins only grow (`Constant < Position < Data`); loop-carried values are iterated to a fixed
//! point.

use rustc_hash::{FxHashMap as HashMap, FxHashSet as HashSet};

use onnx_rewrite_facts::GraphFacts;

use onnx_rewrite_ir::{GraphId, GraphOwner, Model, NodeId, ValueDef, ValueId};
use onnx_rewrite_proto::tensor_proto::DataType;

use crate::scope::Scope;
use crate::types::{Ty, Types};

#[derive(Clone, Copy, Debug, PartialEq, Eq, PartialOrd, Ord)]
pub(crate) enum Origin {
    Constant,
    Position,
    Data,
}

/// A constant operand above this many elements is a weight: a product with it is data.
const WEIGHT_ELEMENTS: u64 = 4096;

pub(crate) struct Origins {
    map: HashMap<ValueId, Origin>,
}

fn is_float(ty: Ty) -> bool {
    matches!(
        ty,
        Ty::Tensor(DataType::Float | DataType::Float16 | DataType::Bfloat16 | DataType::Double)
    )
}

/// Integer types that hold positions, sizes and masks (as opposed to 8- and 16-bit data such as
/// pixels).
fn is_index(ty: Ty) -> bool {
    matches!(
        ty,
        Ty::Tensor(
            DataType::Int64
                | DataType::Int32
                | DataType::Uint64
                | DataType::Uint32
                | DataType::Bool
        )
    )
}

impl Origins {
    pub fn of(&self, value: ValueId) -> Origin {
        self.map.get(&value).copied().unwrap_or(Origin::Constant)
    }

    pub fn infer(model: &Model, scope: &Scope, types: &Types) -> Self {
        let mut origins = Origins {
            map: HashMap::default(),
        };
        for &graph in &scope.graphs {
            origins.graph_leaves(model, graph, types);
        }
        let known = statically_known(model, scope);
        // Loop-carried state needs a few rounds; each round only raises origins.
        for _ in 0..16 {
            let mut changed = false;
            for &graph in &scope.graphs {
                changed |= origins.body_inputs(model, graph, types);
            }
            for &node in &scope.order {
                let outputs = origins.node(model, node, types);
                for (slot, origin) in model.node(node).outputs().iter().zip(outputs) {
                    if let Some(v) = slot {
                        let origin = if known.contains(v) {
                            Origin::Constant
                        } else {
                            origin
                        };
                        changed |= origins.raise(*v, origin);
                    }
                }
            }
            if !changed {
                break;
            }
        }
        origins
    }

    fn raise(&mut self, value: ValueId, origin: Origin) -> bool {
        let entry = self.map.entry(value).or_insert(Origin::Constant);
        let before = *entry;
        *entry = (*entry).max(origin);
        *entry != before
    }

    fn graph_leaves(&mut self, model: &Model, graph: GraphId, types: &Types) {
        let g = model.graph(graph);
        if graph == model.main() {
            for io in g.inputs() {
                let ty = types.of(io.value);
                let origin = if is_index(ty) {
                    Origin::Position
                } else {
                    Origin::Data
                };
                self.map.insert(io.value, origin);
            }
        }
        for &v in g.initializers() {
            if model.value(v).def() == ValueDef::Initializer {
                self.map.insert(v, Origin::Constant);
            }
        }
    }

    /// The inputs of a Loop or Scan body: the loop counter is a position; carried state joins
    /// its initial value and the body's result; a scan slice comes from its scanned input.
    fn body_inputs(&mut self, model: &Model, graph: GraphId, types: &Types) -> bool {
        let GraphOwner::Node { node, .. } = model.graph(graph).owner() else {
            return false;
        };
        let n = model.node(node);
        let body = model.graph(graph);
        let outer = |i: usize| n.inputs().get(i).copied().flatten();
        let body_out = |i: usize| body.outputs().get(i).map(|io| io.value);
        let mut changed = false;
        for (index, io) in body.inputs().iter().enumerate() {
            let origin = match n.op_type() {
                "Loop" if index < 2 => Origin::Position,
                "Loop" => {
                    let init = outer(index).map_or(Origin::Constant, |v| self.of(v));
                    let back = body_out(index - 1).map_or(Origin::Constant, |v| self.of(v));
                    init.max(back)
                }
                "Scan" => {
                    let offset = usize::from(model.opset("").unwrap_or(0) < 9);
                    let init = outer(index + offset).map_or(Origin::Constant, |v| self.of(v));
                    let states =
                        body.inputs().len() - scan_inputs(model, node).min(body.inputs().len());
                    let back = if index < states {
                        body_out(index).map_or(Origin::Constant, |v| self.of(v))
                    } else {
                        Origin::Constant
                    };
                    init.max(back)
                }
                _ if is_index(types.of(io.value)) => Origin::Position,
                _ => Origin::Data,
            };
            changed |= self.raise(io.value, origin);
        }
        changed
    }

    fn node(&self, model: &Model, node: NodeId, types: &Types) -> Vec<Origin> {
        let n = model.node(node);
        let count = n.outputs().len();
        let input = |i: usize| n.inputs().get(i).copied().flatten();
        let origin_of = |i: usize| input(i).map_or(Origin::Constant, |v| self.of(v));
        let join_all = || {
            n.inputs()
                .iter()
                .flatten()
                .map(|v| self.of(*v))
                .max()
                .unwrap_or(Origin::Data)
        };
        let all = |o: Origin| vec![o; count];
        if !matches!(n.domain(), "" | "com.microsoft") {
            return all(Origin::Data);
        }
        let origin = match n.op_type() {
            "Constant" | "ConstantOfShape" | "EyeLike" => Origin::Constant,
            "Shape" | "Size" | "Range" => Origin::Position,
            "RandomNormal" | "RandomUniform" | "RandomNormalLike" | "RandomUniformLike"
            | "Bernoulli" | "Multinomial" => Origin::Data,
            "Cast" | "CastLike" => {
                let from = origin_of(0);
                let ty = input(0).map_or(Ty::Unknown, |v| types.of(v));
                match from {
                    Origin::Position if !is_float(ty) && !is_index(ty) => Origin::Data,
                    other => other,
                }
            }
            "Gather" | "GatherElements" | "GatherND" => lookup(origin_of(0), origin_of(1)),
            "OneHot" => lookup(origin_of(2), origin_of(0)),
            "If" | "Loop" | "Scan" => return self.control_flow(model, node),
            "MatMul" | "Gemm" | "Conv" | "ConvTranspose" | "Einsum" | "MatMulInteger" => {
                let joined = join_all();
                let weighted = n
                    .inputs()
                    .iter()
                    .flatten()
                    .any(|v| constant_elements(model, *v) > WEIGHT_ELEMENTS);
                if joined == Origin::Position && weighted {
                    Origin::Data
                } else {
                    joined
                }
            }
            // A window's values lie in [0, 1], computed inside the kernel: data, unless its size
            // is a constant.
            "HannWindow" | "HammingWindow" | "BlackmanWindow" => match origin_of(0) {
                Origin::Constant => Origin::Constant,
                _ => Origin::Data,
            },
            _ => {
                // Float results carry the numbers of the float operands; integer operands of
                // such ops are shapes, axes and counts (Expand, Reshape, Slice, Pad, Tile).
                let floats: Vec<Origin> = n
                    .inputs()
                    .iter()
                    .flatten()
                    .filter(|v| is_float(types.of(**v)))
                    .map(|v| self.of(*v))
                    .collect();
                let produces_float = n.outputs().iter().flatten().any(|v| is_float(types.of(*v)));
                match floats.iter().max() {
                    Some(o) if produces_float => *o,
                    _ => join_all(),
                }
            }
        };
        all(origin)
    }

    fn control_flow(&self, model: &Model, node: NodeId) -> Vec<Origin> {
        let n = model.node(node);
        let bodies: Vec<GraphId> = n.subgraphs().collect();
        let out = |graph: GraphId, i: usize| {
            model
                .graph(graph)
                .outputs()
                .get(i)
                .map_or(Origin::Data, |io| self.of(io.value))
        };
        let count = n.outputs().len();
        match n.op_type() {
            "If" => (0..count)
                .map(|i| {
                    bodies
                        .iter()
                        .map(|b| out(*b, i))
                        .max()
                        .unwrap_or(Origin::Data)
                })
                .collect(),
            "Loop" => {
                let Some(body) = bodies.first() else {
                    return vec![Origin::Data; count];
                };
                let carried = n.inputs().len().saturating_sub(2);
                (0..count)
                    .map(|i| {
                        let back = out(*body, i + 1);
                        if i < carried {
                            let init = n.inputs()[i + 2].map_or(Origin::Constant, |v| self.of(v));
                            init.max(back)
                        } else {
                            back
                        }
                    })
                    .collect()
            }
            _ => {
                let Some(body) = bodies.first() else {
                    return vec![Origin::Data; count];
                };
                (0..count).map(|i| out(*body, i)).collect()
            }
        }
    }
}

/// Node outputs whose value inference knows at compile time (constants folded,
/// `Shape` of static dims, arithmetic on them): sizes known statically are constants, not
/// positions.
fn statically_known(model: &Model, scope: &Scope) -> HashSet<ValueId> {
    let mut known = HashSet::default();
    for &graph in &scope.graphs {
        let Ok(facts) = GraphFacts::of(model, graph) else {
            continue;
        };
        for &node in model.graph(graph).nodes() {
            for v in model.node(node).outputs().iter().flatten() {
                if facts.constant(*v).is_some() {
                    known.insert(*v);
                }
            }
        }
    }
    known
}

/// A constant table read at a runtime index is data (an embedding); otherwise the lookup keeps
/// the larger origin of table and index.
fn lookup(table: Origin, index: Origin) -> Origin {
    if table == Origin::Constant && index != Origin::Constant {
        Origin::Data
    } else {
        table.max(index)
    }
}

/// Elements of a constant operand (an initializer or a `Constant` output); 0 for anything else.
pub(crate) fn constant_elements(model: &Model, value: ValueId) -> u64 {
    crate::constants::tensor_of(model, value)
        .and_then(|t| onnx_rewrite_ir::tensor::element_count(t).ok())
        .unwrap_or(0)
}

/// Scan's `num_scan_inputs`.
pub(crate) fn scan_inputs(model: &Model, node: NodeId) -> usize {
    crate::types::attribute(model, node, "num_scan_inputs")
        .and_then(|a| a.i)
        .and_then(|i| usize::try_from(i).ok())
        .unwrap_or(0)
}
