//! Applying a [`Plan`] to the model: attributes that set output types, initializers and
//! constants converted (or copied when read at both precisions: never changed under a float32
//! reader), one Cast per value per target precision where precision changes, declared types,
//! node order.

use rustc_hash::{FxHashMap as HashMap, FxHashSet as HashSet};

use onnx_rewrite_ir::edit::{Names, Op, attr, first_output};
use onnx_rewrite_ir::{
    GraphId, InvariantError, Model, NodeId, Use, ValueDef, ValueId, ValueInfoEntry,
};
use onnx_rewrite_proto::tensor_proto::DataType;
use onnx_rewrite_proto::{AttributeProto, TensorProto, type_proto};
use rayon::prelude::*;

use crate::convert::{self, Converted, Target};
use crate::plan::{Kind, Plan, Precision};
use crate::ports::Role;

/// What the rewrite did.
#[derive(Default, Debug)]
pub(crate) struct Stats {
    pub casts: usize,
    pub initializers_converted: usize,
    pub initializers_copied: usize,
    pub constants_copied: usize,
    pub bytes_converted: u64,
}

/// `pending`: large converted initializers may be left pending (see
/// [`onnx_rewrite_pass::PassContext::pending_payloads`]).
pub(crate) fn apply(
    model: &mut Model,
    plan: &Plan,
    pending: bool,
) -> Result<Stats, InvariantError> {
    let mut stats = Stats::default();
    let mut names = Names::of(model);
    let target = plan.target;
    retype_attributes(model, plan);
    convert_initializers(model, plan, pending, &mut stats);

    // The float32 values of the scope, in a deterministic order: graph inputs and initializers,
    // then node outputs in the global order.
    let mut values: Vec<ValueId> = Vec::new();
    for &graph in &plan.scope.graphs {
        let g = model.graph(graph);
        values.extend(g.inputs().iter().map(|io| io.value));
        values.extend(g.initializers().iter().copied());
    }
    for &node in &plan.scope.order {
        values.extend(model.node(node).outputs().iter().flatten().copied());
    }
    values.retain(|v| plan.values.contains_key(v));

    // New nodes, to be placed right after what they read.
    let mut after: HashMap<ValueId, Vec<NodeId>> = HashMap::default();
    let mut low: HashSet<ValueId> = plan
        .values
        .iter()
        .filter(|(_, p)| **p == Precision::Low)
        .map(|(v, _)| *v)
        .collect();
    let mut touched: Vec<GraphId> = Vec::new();
    for v in values {
        let produced = plan.values[&v];
        let uses: Vec<Use> = model.value(v).uses().to_vec();
        let mut wanted: [Vec<Use>; 2] = [Vec::new(), Vec::new()];
        for u in uses {
            if let Some(r) = plan.requirement(model, u)
                && r != produced
            {
                wanted[r as usize].push(u);
            }
        }
        for (index, uses) in wanted.into_iter().enumerate() {
            if uses.is_empty() {
                continue;
            }
            let to = if index == Precision::Low as usize {
                Precision::Low
            } else {
                Precision::High
            };
            let graph = model.value(v).graph();
            let replacement = if to == Precision::Low && plan.dual.contains(&v) {
                low_copy(model, plan, v, pending, &mut names, &mut stats)
            } else {
                None
            };
            let (new, node) = match replacement {
                Some(found) => found,
                None => {
                    stats.casts += 1;
                    add_cast(model, v, to, target, &uses, &mut names)?
                }
            };
            if to == Precision::Low {
                low.insert(new);
            }
            if let Some(node) = node {
                after.entry(v).or_default().push(node);
            }
            for u in uses {
                match u {
                    Use::Node { node, input } => {
                        model.set_node_input(node, input as usize, Some(new))
                    }
                    Use::GraphOutput { graph, index } => {
                        model.set_graph_output(graph, index as usize, new)
                    }
                }
            }
            touched.push(graph);
        }
    }
    declare_types(model, plan, &low);
    touched.sort();
    touched.dedup();
    for graph in touched {
        reorder(model, graph, &after);
    }
    Ok(stats)
}

/// A Cast of `value` to `to` in `value`'s graph. A float32 graph output of the main graph keeps
/// its name: the Cast produces it and the low-precision value is renamed.
fn add_cast(
    model: &mut Model,
    value: ValueId,
    to: Precision,
    target: Target,
    uses: &[Use],
    names: &mut Names,
) -> Result<(ValueId, Option<NodeId>), InvariantError> {
    let graph = model.value(value).graph();
    let base = model.value(value).name().to_owned();
    let main = model.main();
    let keeps_name = to == Precision::High
        && uses
            .iter()
            .any(|u| matches!(u, Use::GraphOutput { graph, .. } if *graph == main));
    let output = if keeps_name {
        let renamed = names.value(&format!("{base}_{}", target.suffix()));
        model.rename_value(value, renamed);
        names.release_value(&base);
        // The output's declaration goes with the renamed value (in low precision): its type
        // may be known from nothing else (an output of a custom op).
        let declared = model
            .graph(main)
            .outputs()
            .iter()
            .find(|io| io.value == value)
            .and_then(|io| io.info.clone());
        if let Some(mut info) = declared {
            if let Some(type_proto::Value::TensorType(t)) =
                info.r#type.as_mut().and_then(|t| t.value.as_mut())
            {
                t.elem_type = Some(target.dtype() as i32);
            }
            info.name = None;
            model.graph_mut(main).value_info.push(ValueInfoEntry {
                value: Some(value),
                proto: info,
            });
        }
        base.clone()
    } else {
        let suffix = match to {
            Precision::Low => target.suffix(),
            Precision::High => "fp32",
        };
        format!("{base}_{suffix}")
    };
    let dtype = match to {
        Precision::Low => target.dtype(),
        Precision::High => DataType::Float,
    };
    let node = Op::new("Cast")
        .name(format!("{output}_cast"))
        .input(value)
        .output(output.clone())
        .attr(attr::int("to", dtype as i64))
        .add(model, names, graph);
    let new = first_output(model, node)?;
    // The output's name is the renamed value's, which the policy may still count as held (a
    // graph output's name is counted once per place it appears): the Cast takes it by hand.
    if keeps_name {
        names.rename(model, new, &output);
    }
    Ok((new, Some(node)))
}

/// The low-precision copy of a constant read at both precisions: a new initializer, or a new
/// `Constant` node.
fn low_copy(
    model: &mut Model,
    plan: &Plan,
    value: ValueId,
    pending: bool,
    names: &mut Names,
    stats: &mut Stats,
) -> Option<(ValueId, Option<NodeId>)> {
    let v = model.value(value);
    let graph = v.graph();
    let base = format!("{}_{}", v.name(), plan.target.suffix());
    match v.def() {
        ValueDef::Initializer => {
            let name = names.value(&base);
            let mut converted = low_initializer(model, plan, value, pending)?;
            converted.tensor.name = Some(name.clone());
            stats.bytes_converted += converted.payload_len();
            stats.initializers_copied += 1;
            let copy = model.add_initializer(graph, name, TensorProto::default());
            store(model, copy, converted);
            Some((copy, None))
        }
        ValueDef::Node { node, .. } => {
            let attribute = low_constant(model, plan, node)?;
            let copy = Op::new("Constant")
                .name(base.clone())
                .output(base)
                .attr(attribute)
                .add(model, names, graph);
            stats.constants_copied += 1;
            Some((
                model.node(copy).outputs().first().copied().flatten()?,
                Some(copy),
            ))
        }
        _ => None,
    }
}

/// The initializer `value` converted; a guard's values that would flush to zero raised.
fn low_initializer(model: &Model, plan: &Plan, value: ValueId, pending: bool) -> Option<Converted> {
    let t = model.value(value).initializer()?;
    if !plan.guards.contains_key(&value) {
        return convert::initializer(t, plan.target, pending);
    }
    convert::tensor_raised(t, plan.target).map(|tensor| Converted {
        tensor,
        pending: None,
    })
}

/// A `Constant`'s float32 value as a low-precision `value` attribute; a guard's values that
/// would flush to zero raised.
fn low_constant(model: &Model, plan: &Plan, node: NodeId) -> Option<AttributeProto> {
    let target = plan.target;
    let guard = model
        .node(node)
        .outputs()
        .first()
        .copied()
        .flatten()
        .is_some_and(|v| plan.guards.contains_key(&v));
    let floats = |values: &[f32]| {
        if guard {
            convert::raise_flushed(values, target)
        } else {
            values.to_vec()
        }
    };
    let attr = &model.node(node).attributes.first()?.proto;
    let t = match attr.name() {
        "value" if guard => convert::tensor_raised(attr.t.as_ref()?, target)?,
        "value" => convert::tensor(attr.t.as_ref()?, target)?,
        "value_float" => convert::from_floats(&floats(&[attr.f?]), vec![], target),
        "value_floats" => convert::from_floats(
            &floats(&attr.floats),
            vec![attr.floats.len() as i64],
            target,
        ),
        _ => return None,
    };
    Some(attr::tensor("value", t))
}

/// Low nodes whose output type an attribute sets get that attribute rewritten.
fn retype_attributes(model: &mut Model, plan: &Plan) {
    let code = plan.target.dtype() as i64;
    for &node in &plan.scope.order {
        let np = &plan.nodes[&node];
        if np.precision != Some(Precision::Low)
            || np.kind == Kind::Flow
            || !np.outputs.contains(&Role::Convert)
        {
            continue;
        }
        let n = model.node(node);
        if !n.domain().is_empty() {
            continue;
        }
        match n.op_type() {
            "Cast" => attr::set(model, node, attr::int("to", code)),
            "Constant" => {
                if let Some(attribute) = low_constant(model, plan, node) {
                    model.node_mut(node).attributes[0].proto = attribute;
                }
            }
            "ConstantOfShape" => {
                let value = n
                    .attribute("value")
                    .and_then(|a| a.proto.t.as_ref())
                    .and_then(|t| convert::tensor(t, plan.target))
                    .unwrap_or_else(|| convert::from_floats(&[0.0], vec![1], plan.target));
                attr::set(model, node, attr::tensor("value", value));
            }
            "RandomNormal" | "RandomUniform" | "RandomNormalLike" | "RandomUniformLike"
            | "EyeLike" | "Bernoulli" => attr::set(model, node, attr::int("dtype", code)),
            "HannWindow" | "HammingWindow" | "BlackmanWindow" => {
                attr::set(model, node, attr::int("output_datatype", code))
            }
            // Only an explicit output_dtype is retargeted: 0 (absent) means "the scale's type",
            // which follows the scale's own conversion.
            "DequantizeLinear"
                if n.attribute("output_dtype")
                    .and_then(|a| a.proto.i)
                    .is_some_and(|i| i != 0) =>
            {
                attr::set(model, node, attr::int("output_dtype", code))
            }
            _ => {}
        }
    }
}

/// Float32 initializers read only in low precision become low precision (same name), converted
/// in parallel.
fn convert_initializers(model: &mut Model, plan: &Plan, pending: bool, stats: &mut Stats) {
    let mut jobs: Vec<ValueId> = Vec::new();
    for &graph in &plan.scope.graphs {
        for &v in model.graph(graph).initializers() {
            if model.value(v).def() == ValueDef::Initializer
                && plan.values.get(&v) == Some(&Precision::Low)
            {
                jobs.push(v);
            }
        }
    }
    let model_ref: &Model = model;
    let converted: Vec<(ValueId, Option<Converted>)> = jobs
        .par_iter()
        .map(|v| (*v, low_initializer(model_ref, plan, *v, pending)))
        .collect();
    for (v, converted) in converted {
        // A tensor that would not convert (a malformed payload) cannot be: the plan made it
        // low only for well-formed float32 data, which always converts.
        if let Some(converted) = converted {
            stats.bytes_converted += converted.payload_len();
            stats.initializers_converted += 1;
            store(model, v, converted);
        }
    }
}

/// Makes `converted` the data of the initializer `value`, its bytes computed or pending.
fn store(model: &mut Model, value: ValueId, converted: Converted) {
    match converted.pending {
        Some(payload) => model.set_pending_initializer(value, converted.tensor, payload),
        None => model.set_initializer(value, converted.tensor),
    }
}

/// Declared types (graph inputs and outputs, `value_info`) of values now in low precision say
/// so. (Values now float32 were float32 before, and new float32 Casts take over declarations
/// that said float32.)
fn declare_types(model: &mut Model, plan: &Plan, low: &HashSet<ValueId>) {
    let code = plan.target.dtype() as i32;
    let retype = |info: &mut onnx_rewrite_proto::ValueInfoProto| {
        if let Some(ty) = info.r#type.as_mut()
            && let Some(type_proto::Value::TensorType(t)) = ty.value.as_mut()
            && t.elem_type == Some(DataType::Float as i32)
        {
            t.elem_type = Some(code);
        }
    };
    for &graph in &plan.scope.graphs {
        let (inputs, outputs): (Vec<bool>, Vec<bool>) = {
            let g = model.graph(graph);
            (
                g.inputs()
                    .iter()
                    .map(|io| low.contains(&io.value))
                    .collect(),
                g.outputs()
                    .iter()
                    .map(|io| low.contains(&io.value))
                    .collect(),
            )
        };
        let g = model.graph_mut(graph);
        for (index, is_low) in inputs.into_iter().enumerate() {
            if is_low && let Some(Some(info)) = g.input_info_mut(index) {
                retype(info);
            }
        }
        for (index, is_low) in outputs.into_iter().enumerate() {
            if is_low && let Some(Some(info)) = g.output_info_mut(index) {
                retype(info);
            }
        }
        for entry in g.value_info.iter_mut() {
            if entry.value.is_some_and(|v| low.contains(&v)) {
                retype(&mut entry.proto);
            }
        }
    }
}

/// New nodes go right after what they read (graph inputs' and initializers' Casts first); the
/// result is then sorted, which keeps this order when it is already topological.
fn reorder(model: &mut Model, graph: GraphId, after: &HashMap<ValueId, Vec<NodeId>>) {
    let g = model.graph(graph);
    let new: HashSet<NodeId> = after.values().flatten().copied().collect();
    let mut order: Vec<NodeId> = Vec::with_capacity(g.nodes().len());
    let mut placed: HashSet<NodeId> = HashSet::default();
    let mut place = |v: ValueId, order: &mut Vec<NodeId>| {
        for n in after.get(&v).into_iter().flatten() {
            if model.node(*n).graph() == graph && placed.insert(*n) {
                order.push(*n);
            }
        }
    };
    for io in g.inputs() {
        place(io.value, &mut order);
    }
    for v in g.initializers() {
        place(*v, &mut order);
    }
    for &node in g.nodes() {
        if new.contains(&node) {
            continue;
        }
        order.push(node);
        for v in model.node(node).outputs().iter().flatten() {
            place(*v, &mut order);
        }
    }
    // Anything not placed yet (nothing should be) goes last; the sort puts it right.
    for &node in g.nodes() {
        if new.contains(&node) && !placed.contains(&node) {
            order.push(node);
        }
    }
    if model.set_node_order(graph, order).is_ok()
        && let Ok(sorted) = model.topological_order(graph)
    {
        let _ = model.set_node_order(graph, sorted);
    }
}
