//! A float `Range` over whole numbers is computed in integers and cast:
//! `Range(0.0, Cast(n, float), 1.0)` becomes `Cast(Range(0, n, 1), float)`.
//!
//! Why: before opset 27 `Range` has no float16 type, so a float `Range` keeps float32 itself,
//! its bounds and everything that computes them (a window function's length, the constants 0
//! and 1), each converted value cast back up to meet it; where it has a float16 type, float16
//! counts only to 2048 (bfloat16: 256), so positions past that repeat. In integers the steps are
//! exact at every length, and the Cast that follows decides their precision as any position's
//! (float32 where the exact number is read back, the target type where it only meets data).
//!
//! Only bounds known to be whole are taken: a one-element constant holding a whole number, or
//! a Cast to float of an integer tensor. A fractional bound (`Range(0.5, n, 0.25)`) keeps its
//! float `Range`.

use onnx_rewrite_ir::edit::{Names, Op, attr, first_output, reroute, sweep};
use onnx_rewrite_ir::{GraphId, InvariantError, Model, NodeId, ValueDef, ValueId};
use onnx_rewrite_pass::PassError;
use onnx_rewrite_proto::TensorProto;
use onnx_rewrite_proto::tensor_proto::DataType;

use crate::constants;
use crate::scope::Scope;
use crate::types::{Ty, Types};

/// Where an integer bound comes from.
enum Bound {
    /// A whole-number constant (its dims: a scalar, or the one-element shape the model gave).
    Constant(i64, Vec<i64>),
    /// The integer tensor a `Cast` to float read.
    Integer(ValueId, DataType),
}

/// Whether any graph of the model has a `Range` node (the only thing [`apply`] rewrites).
pub(crate) fn has_range(model: &Model) -> bool {
    model.graph_ids().any(|graph| {
        model.graph(graph).nodes().iter().any(|&node| {
            let n = model.node(node);
            n.domain().is_empty() && n.op_type() == "Range"
        })
    })
}

/// What [`apply`] did.
#[derive(Clone, Copy, Debug, Default)]
pub(crate) struct Rewritten {
    /// Float `Range` nodes now computed in integers.
    pub ranges: usize,
    /// Float nodes that computed only their bounds (`Constant`s, Casts to float), which went
    /// with them.
    pub removed_bounds: usize,
}

/// Rewrites every float32 `Range` whose three bounds are whole numbers.
pub(crate) fn apply(model: &mut Model) -> Result<Rewritten, PassError> {
    let mut done = Rewritten::default();
    if !has_range(model) {
        return Ok(done);
    }
    let scope = Scope::of(model)?;
    let types = Types::infer(model, &scope);
    let ranges: Vec<(NodeId, [Bound; 3])> = scope
        .order
        .iter()
        .filter_map(|&node| Some((node, whole_bounds(model, &types, node)?)))
        .collect();
    if ranges.is_empty() {
        return Ok(done);
    }
    let mut names = Names::of(model);
    done.ranges = ranges.len();
    let mut graphs: Vec<GraphId> = Vec::new();
    for (node, bounds) in ranges {
        graphs.push(model.node(node).graph());
        done.removed_bounds += rewrite(model, node, bounds, &mut names)
            .map_err(|e| PassError::input(format!("computing a Range in integers: {e}")))?;
    }
    // New nodes were appended to their graph: put each graph back in topological order.
    graphs.sort();
    graphs.dedup();
    // (Scope::of refused a cyclic graph, and the new nodes read only what the old Range did.)
    for graph in graphs {
        if let Ok(order) = model.topological_order(graph) {
            let _ = model.set_node_order(graph, order);
        }
    }
    Ok(done)
}

fn whole_bounds(model: &Model, types: &Types, node: NodeId) -> Option<[Bound; 3]> {
    let n = model.node(node);
    if !n.domain().is_empty() || n.op_type() != "Range" || n.inputs().len() != 3 {
        return None;
    }
    let out = n.outputs().first().copied().flatten()?;
    if !types.of(out).is(DataType::Float) {
        return None;
    }
    let bound = |slot: usize| bound(model, types, n.inputs()[slot]?);
    Some([bound(0)?, bound(1)?, bound(2)?])
}

fn bound(model: &Model, types: &Types, value: ValueId) -> Option<Bound> {
    if let Some(xs) = constants::small_floats(model, value, 1) {
        let x = *xs.first()?;
        // Whole and within int32, so that any integer type Range takes can hold it.
        let whole = x.is_finite() && x.fract() == 0.0 && x.abs() <= i32::MAX as f32;
        let dims = constants::tensor_of(model, value).map_or_else(Vec::new, |t| t.dims.clone());
        return whole.then_some(Bound::Constant(x as i64, dims));
    }
    let ValueDef::Node { node, .. } = model.value(value).def() else {
        return None;
    };
    let cast = model.node(node);
    if !cast.domain().is_empty() || cast.op_type() != "Cast" {
        return None;
    }
    let source = cast.inputs().first().copied().flatten()?;
    match types.of(source) {
        Ty::Tensor(dtype) if types.of(source).is_integer() => Some(Bound::Integer(source, dtype)),
        _ => None,
    }
}

/// The integer type the three bounds share: the integer sources' own type where they agree
/// and Range takes it, int64 otherwise.
fn common_type(bounds: &[Bound; 3]) -> DataType {
    let mut sources = bounds.iter().filter_map(|b| match b {
        Bound::Integer(_, dtype) => Some(*dtype),
        Bound::Constant(..) => None,
    });
    let Some(first) = sources.next() else {
        return DataType::Int64;
    };
    let agree = sources.all(|d| d == first);
    let fits = |x: i64| match first {
        DataType::Int16 => i16::try_from(x).is_ok(),
        _ => true,
    };
    let constants_fit = bounds.iter().all(|b| match b {
        Bound::Constant(x, _) => fits(*x),
        Bound::Integer(..) => true,
    });
    match first {
        DataType::Int16 | DataType::Int32 | DataType::Int64 if agree && constants_fit => first,
        _ => DataType::Int64,
    }
}

/// Returns how many float nodes (bounds nothing else reads) went with the float Range.
fn rewrite(
    model: &mut Model,
    node: NodeId,
    bounds: [Bound; 3],
    names: &mut Names,
) -> Result<usize, InvariantError> {
    let graph = model.node(node).graph();
    let dtype = common_type(&bounds);
    let old_inputs: Vec<Option<ValueId>> = model.node(node).inputs().to_vec();
    let Some(old_out) = model.node(node).outputs().first().copied().flatten() else {
        return Ok(0);
    };
    let range_name = model.node(node).name().to_owned();
    let out_name = model.value(old_out).name().to_owned();
    let mut inputs = Vec::with_capacity(3);
    for (bound, old) in bounds.into_iter().zip(&old_inputs) {
        let base = old.map_or_else(|| out_name.clone(), |v| model.value(v).name().to_owned());
        let value = match bound {
            Bound::Constant(x, dims) => {
                let t = TensorProto {
                    dims,
                    data_type: Some(dtype as i32),
                    raw_data: Some(integer_bytes(x, dtype).into()),
                    ..Default::default()
                };
                let name = format!("{base}_int");
                Op::new("Constant")
                    .name(name.clone())
                    .output(name)
                    .attr(attr::tensor("value", t))
                    .add_value(model, names, graph)?
            }
            Bound::Integer(source, from) if from == dtype => source,
            Bound::Integer(source, _) => {
                let name = format!("{base}_int");
                Op::new("Cast")
                    .name(format!("{name}_cast"))
                    .input(source)
                    .output(name)
                    .attr(attr::int("to", dtype as i64))
                    .add_value(model, names, graph)?
            }
        };
        inputs.push(Some(value));
    }
    // The Cast takes the Range's name (it produces what the Range did); unnamed stays unnamed.
    let named = !range_name.is_empty();
    let range_int = Op::new("Range")
        .name(format!("{range_name}_int"))
        .inputs(&inputs)
        .output(format!("{out_name}_int"));
    let steps = range_int.add(model, names, graph);
    if named {
        // The Range is going: its name is free for the Cast.
        names.release_node(&range_name);
    }
    let cast = Op::new("Cast")
        .name(range_name)
        .input(first_output(model, steps)?)
        .output(format!("{out_name}_float"))
        .attr(attr::int("to", DataType::Float as i64))
        .add(model, names, graph);
    if !named {
        for new in [steps, cast] {
            names.release_node(model.node(new).name());
            model.node_mut(new).proto.name = None;
        }
    }
    let new_out = first_output(model, cast)?;
    // A declared type of the steps now declares the Cast's output (which the plan may retype).
    for entry in &mut model.graph_mut(graph).value_info {
        if entry.value == Some(old_out) {
            entry.value = Some(new_out);
        }
    }
    reroute(model, names, old_out, new_out)?;
    // The float Range goes, and with it the float bounds nothing else reads.
    let swept = sweep(model, &[old_out])?;
    // The Cast computes what the Range did, under its name.
    names.rename(model, new_out, &out_name);
    Ok(swept.nodes.iter().filter(|n| **n != node).count())
}

/// `x` as one little-endian element of `dtype` (int16, int32 or int64).
fn integer_bytes(x: i64, dtype: DataType) -> Vec<u8> {
    match dtype {
        DataType::Int16 => (x as i16).to_le_bytes().to_vec(),
        DataType::Int32 => (x as i32).to_le_bytes().to_vec(),
        _ => x.to_le_bytes().to_vec(),
    }
}
