//! Element types of every value, computed rather than read from `value_info`.
//!
//! Sources: graph inputs' declarations, initializers' `data_type`, attributes that set an output
//! type (`Cast.to`, `Constant`'s value, `ConstantOfShape.value`, `dtype`, `output_datatype`,
//! `stash_type`, `output_dtype`), control-flow bodies, and otherwise the schema: an output bound
//! to a type parameter has the type of the inputs bound to it. A declared type is the last
//! resort (custom ops); what nothing tells stays [`Ty::Unknown`], and the pass never converts
//! around a value of unknown type.

use rustc_hash::{FxHashMap as HashMap, FxHashSet as HashSet};

use onnx_rewrite_ir::{GraphId, GraphOwner, Model, NodeId, ValueDef, ValueId};
use onnx_rewrite_proto::tensor_proto::DataType;
use onnx_rewrite_proto::type_proto;
use onnx_rewrite_proto::{AttributeProto, TypeProto};

use crate::schema::{Schema, Slot};
use crate::scope::Scope;

/// The type of a value.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub(crate) enum Ty {
    Tensor(DataType),
    /// A sequence, optional, map or sparse tensor.
    Other,
    Unknown,
}

impl Ty {
    pub fn is(self, dtype: DataType) -> bool {
        self == Ty::Tensor(dtype)
    }

    /// A tensor of signed or unsigned integers.
    pub fn is_integer(self) -> bool {
        matches!(
            self,
            Ty::Tensor(
                DataType::Int64
                    | DataType::Int32
                    | DataType::Int16
                    | DataType::Int8
                    | DataType::Uint64
                    | DataType::Uint32
                    | DataType::Uint16
                    | DataType::Uint8
            )
        )
    }
}

pub(crate) fn of_type_proto(ty: &TypeProto) -> Ty {
    match &ty.value {
        Some(type_proto::Value::TensorType(t)) => t
            .elem_type
            .and_then(|e| DataType::try_from(e).ok())
            .filter(|d| *d != DataType::Undefined)
            .map_or(Ty::Unknown, Ty::Tensor),
        Some(_) => Ty::Other,
        None => Ty::Unknown,
    }
}

fn declared(model: &Model, value: ValueId) -> Ty {
    model
        .declared_type(value)
        .map_or(Ty::Unknown, of_type_proto)
}

pub(crate) fn attribute<'a>(
    model: &'a Model,
    node: NodeId,
    name: &str,
) -> Option<&'a AttributeProto> {
    model.node(node).attribute(name).map(|a| &a.proto)
}

fn dtype_attribute(model: &Model, node: NodeId, name: &str) -> Option<Ty> {
    let code = attribute(model, node, name)?.i?;
    let code = i32::try_from(code).ok()?;
    Some(
        DataType::try_from(code)
            .ok()
            .filter(|d| *d != DataType::Undefined)
            .map_or(Ty::Unknown, Ty::Tensor),
    )
}

/// Every value's type.
pub(crate) struct Types {
    map: HashMap<ValueId, Ty>,
}

impl Types {
    pub fn of(&self, value: ValueId) -> Ty {
        self.map.get(&value).copied().unwrap_or(Ty::Unknown)
    }

    pub fn infer(model: &Model, scope: &Scope) -> Self {
        let mut types = Types {
            map: HashMap::default(),
        };
        // A body's inputs take their types from what its owner feeds them, so each graph's
        // leaves are typed when the walk first reaches it (after the owner's operands).
        let mut started: HashSet<GraphId> = HashSet::default();
        for &node in &scope.order {
            let graphs =
                std::iter::once(model.node(node).graph()).chain(model.node(node).subgraphs());
            for graph in graphs.collect::<Vec<_>>() {
                if started.insert(graph) {
                    types.graph_leaves(model, graph);
                }
            }
            let outputs = types.outputs(model, node);
            for (slot, ty) in model.node(node).outputs().iter().zip(outputs) {
                if let Some(v) = slot {
                    let ty = if ty == Ty::Unknown {
                        declared(model, *v)
                    } else {
                        ty
                    };
                    types.map.insert(*v, ty);
                }
            }
        }
        for &graph in &scope.graphs {
            if started.insert(graph) {
                types.graph_leaves(model, graph);
            }
        }
        types
    }

    /// Inputs and constants of a graph. A subgraph input with no declared type takes the type
    /// of what its owner feeds it.
    fn graph_leaves(&mut self, model: &Model, graph: GraphId) {
        let g = model.graph(graph);
        for (index, io) in g.inputs().iter().enumerate() {
            let mut ty = declared(model, io.value);
            if ty == Ty::Unknown
                && let GraphOwner::Node { node, .. } = g.owner()
            {
                ty = self.fed_to_body_input(model, node, index);
            }
            self.map.insert(io.value, ty);
        }
        for &v in g.initializers() {
            if model.value(v).def() == ValueDef::Initializer {
                let ty = model
                    .value(v)
                    .initializer()
                    .and_then(|t| DataType::try_from(t.data_type()).ok())
                    .map_or(Ty::Unknown, Ty::Tensor);
                self.map.insert(v, ty);
            }
        }
        for &v in g.sparse_initializers() {
            self.map.insert(v, Ty::Other);
        }
    }

    fn fed_to_body_input(&self, model: &Model, owner: NodeId, index: usize) -> Ty {
        let n = model.node(owner);
        let input = |i: usize| n.inputs().get(i).copied().flatten().map(|v| self.of(v));
        match n.op_type() {
            "Loop" if index >= 2 => input(index).unwrap_or(Ty::Unknown),
            "Loop" if index == 0 => Ty::Tensor(DataType::Int64),
            "Loop" => Ty::Tensor(DataType::Bool),
            // Scan-8 has `sequence_lens` first; states and scan inputs follow in body order.
            "Scan" => {
                let offset = usize::from(model.opset("").unwrap_or(0) < 9);
                input(index + offset).unwrap_or(Ty::Unknown)
            }
            _ => Ty::Unknown,
        }
    }

    /// The types of `node`'s outputs, from its attributes, its inputs' types and its schema.
    fn outputs(&self, model: &Model, node: NodeId) -> Vec<Ty> {
        let n = model.node(node);
        let count = n.outputs().len();
        let input = |i: usize| {
            n.inputs()
                .get(i)
                .copied()
                .flatten()
                .map_or(Ty::Unknown, |v| self.of(v))
        };
        let all = |ty: Ty| vec![ty; count];
        let opset = model.opset(n.domain()).unwrap_or(0);
        if n.domain().is_empty() {
            match n.op_type() {
                "Cast" => return all(dtype_attribute(model, node, "to").unwrap_or(Ty::Unknown)),
                "CastLike" => return all(input(1)),
                "Constant" => return all(constant_type(model, node)),
                "ConstantOfShape" => {
                    let ty = attribute(model, node, "value")
                        .and_then(|a| a.t.as_ref())
                        .and_then(|t| DataType::try_from(t.data_type()).ok())
                        .map_or(Ty::Tensor(DataType::Float), Ty::Tensor);
                    return all(ty);
                }
                "RandomNormal" | "RandomUniform" => {
                    return all(dtype_attribute(model, node, "dtype")
                        .unwrap_or(Ty::Tensor(DataType::Float)));
                }
                "RandomNormalLike" | "RandomUniformLike" | "EyeLike" | "Bernoulli" => {
                    return all(dtype_attribute(model, node, "dtype").unwrap_or(input(0)));
                }
                "Multinomial" => {
                    return all(dtype_attribute(model, node, "dtype")
                        .unwrap_or(Ty::Tensor(DataType::Int32)));
                }
                "HannWindow" | "HammingWindow" | "BlackmanWindow" | "MelWeightMatrix" => {
                    return all(dtype_attribute(model, node, "output_datatype")
                        .unwrap_or(Ty::Tensor(DataType::Float)));
                }
                "LayerNormalization" if opset >= 17 => {
                    let stash = dtype_attribute(model, node, "stash_type")
                        .unwrap_or(Ty::Tensor(DataType::Float));
                    let mut out = vec![stash; count];
                    if let Some(first) = out.first_mut() {
                        *first = input(0);
                    }
                    return out;
                }
                "DequantizeLinear" if opset >= 23 => {
                    let ty = dtype_attribute(model, node, "output_dtype")
                        .filter(|t| !matches!(t, Ty::Unknown))
                        .unwrap_or(input(1));
                    return all(ty);
                }
                "If" | "Loop" | "Scan" => return self.control_flow_outputs(model, node),
                _ => {}
            }
        }
        let Some(schema) = Schema::find(n.domain(), n.op_type(), opset) else {
            return all(Ty::Unknown);
        };
        let binding = |var: u8| {
            n.inputs()
                .iter()
                .enumerate()
                .filter(|(i, _)| schema.input(*i) == Some(Slot::Var(var)))
                .filter_map(|(_, v)| v.map(|v| self.of(v)))
                .find(|t| *t != Ty::Unknown)
                .unwrap_or(Ty::Unknown)
        };
        (0..count)
            .map(|i| match schema.output(i) {
                Some(Slot::Var(var)) => match binding(var) {
                    // Bound by no input (Shape's T1): the parameter's only type, if it has one.
                    Ty::Unknown => schema
                        .var_types(var)
                        .and_then(|t| t.single_tensor())
                        .map_or(Ty::Unknown, Ty::Tensor),
                    ty => ty,
                },
                Some(Slot::Fixed(types)) => types.single_tensor().map_or(Ty::Unknown, Ty::Tensor),
                None => Ty::Unknown,
            })
            .collect()
    }

    /// If: the then-branch's outputs. Loop/Scan: carried state and scan outputs from the body.
    fn control_flow_outputs(&self, model: &Model, node: NodeId) -> Vec<Ty> {
        let n = model.node(node);
        let count = n.outputs().len();
        let body_output = |graph: GraphId, i: usize| {
            model
                .graph(graph)
                .outputs()
                .get(i)
                .map_or(Ty::Unknown, |io| match self.of(io.value) {
                    Ty::Unknown => io
                        .info
                        .as_ref()
                        .and_then(|i| i.r#type.as_ref())
                        .map_or(Ty::Unknown, of_type_proto),
                    ty => ty,
                })
        };
        let Some(first) = n.subgraphs().next() else {
            return vec![Ty::Unknown; count];
        };
        // Loop's body outputs start with the condition.
        let skip = usize::from(n.op_type() == "Loop");
        (0..count).map(|i| body_output(first, i + skip)).collect()
    }
}

fn constant_type(model: &Model, node: NodeId) -> Ty {
    let Some(attr) = model.node(node).attributes.first() else {
        return Ty::Unknown;
    };
    match attr.proto.name() {
        "value" => attr
            .proto
            .t
            .as_ref()
            .and_then(|t| DataType::try_from(t.data_type()).ok())
            .map_or(Ty::Unknown, Ty::Tensor),
        "value_float" | "value_floats" => Ty::Tensor(DataType::Float),
        "value_int" | "value_ints" => Ty::Tensor(DataType::Int64),
        "value_string" | "value_strings" => Ty::Tensor(DataType::String),
        "sparse_value" => Ty::Other,
        _ => Ty::Unknown,
    }
}
