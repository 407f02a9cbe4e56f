//! `If` with a condition known only at run time: both branches are computed in the parent
//! graph and each output is selected with `Where(cond, then_i, else_i)`.
//!
//! `cond` is reshaped to a scalar first: an `If` condition may be `[1]`, and `Where` would
//! broadcast a `[1]` condition into a scalar output, making it rank 1.
//!
//! Sound only when running the branch that was not taken changes nothing and cannot fail, and
//! when `Where` gives each output the shape the `If` would have: both branches pure
//! ([`crate::purity`]), each output pair of one dtype and provably one shape (equal symbolic
//! dims: `[1,D]` against `[N,D]` would silently broadcast), every node of both branches total
//! ([`crate::totality`]). Shapes and totality are judged on the parent graph's facts with both
//! branches already copied into it, so captured values have what the parent knows of them and
//! both branches share one symbol table.
//!
//! All candidates of one graph are copied and judged against one lowering of the graph, in a
//! transaction that is then rolled back; an `If` that reads another's output sees only what
//! that `If` declares, and is retried in the next round once the other is lowered. Each `If`
//! that passed is then lowered in a transaction of its own (its branches copied again); one
//! that failed a check stays as it was, with the reason.

use std::fmt;

use onnx_rewrite_facts::{DataType, Shape, dtype_name};
use onnx_rewrite_ir::edit::{self, Names, Op, Transaction};
use onnx_rewrite_ir::proto::{TensorProto, tensor_proto};
use onnx_rewrite_ir::{GraphId, Model, NodeId, ValueId};

use crate::constant::branch;
use crate::copy::{Copied, CopyError, ValueMap, copy_body};
use crate::cost::{self, Flops};
use crate::purity::{self, Impure};
use crate::splice::{
    Restore, SpliceError, Wanted, atomically, place_before, replace_node, restore_names, sort,
};
use crate::totality::{NotTotal, Totality};
use onnx_rewrite_facts::GraphFacts;

/// What lowering one `If` to the select form costs, for the report.
#[derive(Debug, Clone)]
pub(crate) struct SelectCost {
    pub if_name: String,
    /// The graph the `If` was in.
    pub graph: String,
    pub then_flops: String,
    pub else_flops: String,
    pub where_elements: String,
    /// `max(then, else) + where`, when every shape is known.
    pub worst_extra: Option<i64>,
}

/// The outcome for one graph.
#[derive(Debug, Default)]
pub(crate) struct GraphOutcome {
    pub lowered: Vec<SelectCost>,
    pub declined: Vec<(NodeId, NotLowered)>,
}

/// One branch of an `If`.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub(crate) enum Branch {
    Then,
    Else,
}

impl fmt::Display for Branch {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.write_str(match self {
            Branch::Then => "then",
            Branch::Else => "else",
        })
    }
}

/// Why an `If` is not lowered to the select form; `slot` is an output's position.
#[derive(Debug, thiserror::Error)]
pub(crate) enum NotLowered {
    #[error("the select form needs Where (opset 9); the model imports opset {opset}")]
    Opset { opset: i64 },
    #[error("the condition is missing")]
    NoCondition,
    #[error("a branch is missing")]
    NoBranch,
    #[error("the {branch} branch declares inputs")]
    BranchInputs { branch: Branch },
    #[error("the {branch} branch has {have} outputs, the If {want}")]
    OutputCount {
        branch: Branch,
        have: usize,
        want: usize,
    },
    #[error("the {branch} branch: {reason}")]
    Impure { branch: Branch, reason: Impure },
    #[error("output '{output}' is a sequence, map or optional")]
    NotTensor { output: String },
    #[error("the {branch} branch: {reason}")]
    CopyFailed { branch: Branch, reason: CopyError },
    #[error("output {slot} is missing in a branch")]
    MissingOutput { slot: usize },
    #[error(
        "output {slot}: the then-branch gives {}, the else-branch {}",
        dtype_name(*then_dtype),
        dtype_name(*else_dtype)
    )]
    DtypesDiffer {
        slot: usize,
        then_dtype: DataType,
        else_dtype: DataType,
    },
    #[error("output {slot}: the element type is unknown")]
    UnknownDtype { slot: usize },
    #[error("output {slot}: Where at opset {opset} does not take {}", dtype_name(*dtype))]
    WhereDtype {
        slot: usize,
        opset: i64,
        dtype: DataType,
    },
    #[error("output {slot}: the shape of a branch output is unknown")]
    UnknownShape { slot: usize },
    #[error(
        "output {slot}: shapes {then_shape} (then) and {else_shape} (else) are not shown equal; Where would broadcast them"
    )]
    ShapesDiffer {
        slot: usize,
        then_shape: String,
        else_shape: String,
    },
    /// `node` is the node of the branch as the model has it, not its copy.
    #[error("the {branch} branch may fail when not taken: {node}: {reason}")]
    MayFail {
        branch: Branch,
        node: String,
        reason: NotTotal,
    },
}

struct Candidate {
    node: NodeId,
    then_copy: Copied,
    else_copy: Copied,
}

/// An `If`'s then and else branches.
type Branches = (GraphId, GraphId);

struct Plan {
    reshape_cond: bool,
    cost: SelectCost,
}

/// Lowers every `If` of `graph` that can be lowered soundly; reports the others.
pub(crate) fn lower_graph(
    model: &mut Model,
    graph: GraphId,
    names: &mut Names,
    scalar_shape: &mut Option<ValueId>,
) -> Result<GraphOutcome, SpliceError> {
    let mut outcome = GraphOutcome::default();
    let ifs: Vec<NodeId> = model
        .graph(graph)
        .nodes()
        .iter()
        .copied()
        .filter(|n| is_if(model, *n))
        .collect();
    let mut prechecked = Vec::new();
    for node in ifs {
        match precheck(model, node) {
            Err(reason) => outcome.declined.push((node, reason)),
            Ok(branches) => prechecked.push((node, branches)),
        }
    }
    if prechecked.is_empty() {
        return Ok(outcome);
    }
    let passed = judge_all(model, graph, names, prechecked, &mut outcome)?;
    if passed.is_empty() {
        return Ok(outcome);
    }
    for (node, (then_g, else_g), plan) in passed {
        let mut shape = *scalar_shape;
        atomically(model, names, |model, names| {
            let then_copy = copy_body(model, then_g, graph, &mut ValueMap::default(), names, None)?;
            let else_copy = copy_body(model, else_g, graph, &mut ValueMap::default(), names, None)?;
            let c = Candidate {
                node,
                then_copy,
                else_copy,
            };
            commit(model, c, &plan, names, &mut shape)
        })?;
        *scalar_shape = shape;
        outcome.lowered.push(plan.cost);
    }
    sort(model, graph)?;
    Ok(outcome)
}

/// Copies the branches of every prechecked `If` into `graph` and judges them on one set of
/// facts, then rolls the copies back; returns the `If`s that passed, with their plans.
fn judge_all(
    model: &mut Model,
    graph: GraphId,
    names: &Names,
    prechecked: Vec<(NodeId, Branches)>,
    outcome: &mut GraphOutcome,
) -> Result<Vec<(NodeId, Branches, Plan)>, SpliceError> {
    // The copies are rolled back, so the names they take are too.
    let mut scratch = names.clone();
    let mut tx = Transaction::begin(model);
    let mut candidates = Vec::new();
    for (node, (then_g, else_g)) in prechecked {
        let checkpoint = tx.checkpoint();
        let copies = copy_body(
            &mut tx,
            then_g,
            graph,
            &mut ValueMap::default(),
            &mut scratch,
            None,
        )
        .map_err(|reason| NotLowered::CopyFailed {
            branch: Branch::Then,
            reason,
        })
        .and_then(|then_copy| {
            copy_body(
                &mut tx,
                else_g,
                graph,
                &mut ValueMap::default(),
                &mut scratch,
                None,
            )
            .map(|else_copy| (then_copy, else_copy))
            .map_err(|reason| NotLowered::CopyFailed {
                branch: Branch::Else,
                reason,
            })
        });
        match copies {
            Ok((then_copy, else_copy)) => {
                Model::commit(&mut tx, checkpoint)?;
                candidates.push((
                    (then_g, else_g),
                    Candidate {
                        node,
                        then_copy,
                        else_copy,
                    },
                ));
            }
            Err(reason) => {
                Model::rollback(&mut tx, checkpoint)?;
                outcome.declined.push((node, reason));
            }
        }
    }
    let mut passed = Vec::with_capacity(candidates.len());
    if !candidates.is_empty() {
        let mut facts = GraphFacts::with_captures(&tx, graph)
            .map_err(|n| SpliceError::Cycle(tx.describe_node(n)))?;
        for (branches, c) in candidates {
            match judge(&tx, &mut facts, &c) {
                Ok(plan) => passed.push((c.node, branches, plan)),
                Err(reason) => outcome.declined.push((c.node, reason)),
            }
        }
    }
    tx.rollback()?;
    Ok(passed)
}

pub(crate) fn is_if(model: &Model, node: NodeId) -> bool {
    let n = model.node(node);
    n.op_type() == "If" && n.domain().is_empty()
}

/// Checks that need no facts: opset, structure, purity.
fn precheck(model: &Model, node: NodeId) -> Result<Branches, NotLowered> {
    let opset = model.opset("").unwrap_or(0);
    if opset < 9 {
        return Err(NotLowered::Opset { opset });
    }
    let n = model.node(node);
    if n.inputs().first().copied().flatten().is_none() {
        return Err(NotLowered::NoCondition);
    }
    let (Some(then_g), Some(else_g)) = (
        branch(model, node, "then_branch"),
        branch(model, node, "else_branch"),
    ) else {
        return Err(NotLowered::NoBranch);
    };
    for (branch, g) in [(Branch::Then, then_g), (Branch::Else, else_g)] {
        if !model.graph(g).inputs().is_empty() {
            return Err(NotLowered::BranchInputs { branch });
        }
        let have = model.graph(g).outputs().len();
        if have != n.outputs().len() {
            return Err(NotLowered::OutputCount {
                branch,
                have,
                want: n.outputs().len(),
            });
        }
        purity::check_branch(model, g).map_err(|reason| NotLowered::Impure { branch, reason })?;
    }
    for v in n.outputs().iter().flatten() {
        if purity::is_not_tensor(model, *v) {
            return Err(NotLowered::NotTensor {
                output: model.value(*v).name().to_owned(),
            });
        }
    }
    Ok((then_g, else_g))
}

/// Checks on the parent's facts with both branches copied in: types, shapes, totality.
fn judge(model: &Model, facts: &mut GraphFacts, c: &Candidate) -> Result<Plan, NotLowered> {
    let n = model.node(c.node);
    let opset = model.opset("").unwrap_or(0);
    let mut where_elements = Flops::default();
    for (slot, out) in n.outputs().iter().enumerate() {
        if out.is_none() {
            continue;
        }
        let (Some(t), Some(e)) = (
            c.then_copy.outputs.get(slot).copied().flatten(),
            c.else_copy.outputs.get(slot).copied().flatten(),
        ) else {
            return Err(NotLowered::MissingOutput { slot });
        };
        facts.add_leaf(model, t);
        facts.add_leaf(model, e);
        let (td, ed) = (facts.dtype(t), facts.dtype(e));
        let dtype = match (td, ed) {
            (Some(a), Some(b)) if a == b => a,
            (Some(then_dtype), Some(else_dtype)) => {
                return Err(NotLowered::DtypesDiffer {
                    slot,
                    then_dtype,
                    else_dtype,
                });
            }
            _ => return Err(NotLowered::UnknownDtype { slot }),
        };
        if !where_takes(dtype, opset) {
            return Err(NotLowered::WhereDtype { slot, opset, dtype });
        }
        let (ts, es) = (facts.shape(t), facts.shape(e));
        let (Some(ts), Some(es)) = (ts, es) else {
            return Err(NotLowered::UnknownShape { slot });
        };
        if t != e && !same_shape(facts, &ts, &es) {
            return Err(NotLowered::ShapesDiffer {
                slot,
                then_shape: facts.show_shape(&ts),
                else_shape: facts.show_shape(&es),
            });
        }
        if t != e {
            where_elements.merge(&element_count(facts, &ts));
        }
    }
    for (branch, copy) in [(Branch::Then, &c.then_copy), (Branch::Else, &c.else_copy)] {
        let mut totality = Totality::new(model, facts).with_sources(&copy.all_values);
        for &node in &copy.nodes {
            totality.check(node).map_err(|reason| NotLowered::MayFail {
                branch,
                node: source_description(model, copy, node),
                reason,
            })?;
        }
    }
    let cond = n.inputs().first().copied().flatten();
    let reshape_cond = cond.and_then(|v| facts.rank(v)) != Some(0);
    let then_flops = cost::flops(model, facts, &c.then_copy.nodes);
    let else_flops = cost::flops(model, facts, &c.else_copy.nodes);
    let worst_extra = match (
        then_flops.known(),
        else_flops.known(),
        where_elements.known(),
    ) {
        (Some(a), Some(b), Some(w)) => Some(a.max(b).saturating_add(w)),
        _ => None,
    };
    Ok(Plan {
        reshape_cond,
        cost: SelectCost {
            if_name: n.name().to_owned(),
            graph: onnx_rewrite_pass::describe_graph(model, n.graph()),
            then_flops: then_flops.show(facts),
            else_flops: else_flops.show(facts),
            where_elements: where_elements.show(facts),
            worst_extra,
        },
    })
}

/// The copied node as the source node it came from (its position and name in the branch).
fn source_description(model: &Model, copy: &Copied, node: NodeId) -> String {
    copy.all_node_pairs
        .iter()
        .find(|(_, c)| *c == node)
        .map_or_else(
            || model.describe_node(node),
            |(s, _)| model.describe_node(*s),
        )
}

fn same_shape(facts: &mut GraphFacts, a: &Shape, b: &Shape) -> bool {
    a.rank() == b.rank()
        && a.dims()
            .iter()
            .zip(b.dims())
            .all(|(x, y)| facts.same(*x, *y))
}

fn element_count(facts: &mut GraphFacts, shape: &Shape) -> Flops {
    let mut f = Flops::default();
    f.add_dims(facts, shape.dims(), 1);
    f
}

/// The element types `Where` accepts at `opset`.
fn where_takes(dtype: DataType, opset: i64) -> bool {
    use DataType as D;
    match dtype {
        D::Bfloat16 => opset >= 16,
        D::Float | D::Double | D::Float16 | D::Bool | D::String | D::Complex64 | D::Complex128 => {
            true
        }
        D::Int8 | D::Int16 | D::Int32 | D::Int64 | D::Uint8 | D::Uint16 | D::Uint32 | D::Uint64 => {
            true
        }
        _ => false,
    }
}

/// Builds the `Reshape` and `Where` nodes and replaces the `If`.
fn commit(
    model: &mut Model,
    c: Candidate,
    plan: &Plan,
    names: &mut Names,
    scalar_shape: &mut Option<ValueId>,
) -> Result<(), SpliceError> {
    let graph = model.node(c.node).graph();
    let if_name = model.node(c.node).name().to_owned();
    let label = if if_name.is_empty() { "if" } else { &if_name }.to_owned();
    let mut cond = model
        .node(c.node)
        .inputs()
        .first()
        .copied()
        .flatten()
        .ok_or(SpliceError::NoCondition)?;
    let mut made: Vec<ValueId> = Vec::new();
    let mut added: Vec<NodeId> = Vec::new();
    if plan.reshape_cond {
        // A later sweep may have taken the constant with the last Reshape that read it.
        let cached = scalar_shape.filter(|v| model.graph(graph).initializers().contains(v));
        let shape = match cached {
            Some(v) => v,
            None => {
                let name = names.value("lower_if_scalar_shape");
                let tensor = TensorProto {
                    dims: vec![0],
                    data_type: Some(tensor_proto::DataType::Int64 as i32),
                    ..TensorProto::default()
                };
                let v = model.add_initializer(graph, name, tensor);
                *scalar_shape = Some(v);
                v
            }
        };
        let cond_name = model.value(cond).name().to_owned();
        let reshape = Op::new("Reshape")
            .name(format!("{label}_condition"))
            .inputs(&[Some(cond), Some(shape)])
            .output(format!("{cond_name}_scalar"))
            .add_value(model, names, graph)?;
        added.extend(model.value(reshape).producer().map(|(n, _)| n));
        cond = reshape;
    }
    let outputs: Vec<Option<ValueId>> = model.node(c.node).outputs().to_vec();
    let mut replacements = Vec::with_capacity(outputs.len());
    for (slot, out) in outputs.iter().enumerate() {
        let (Some(out), Some(t), Some(e)) = (
            *out,
            c.then_copy.outputs.get(slot).copied().flatten(),
            c.else_copy.outputs.get(slot).copied().flatten(),
        ) else {
            replacements.push(None);
            continue;
        };
        if t == e {
            replacements.push(Some(t));
            continue;
        }
        let out_name = model.value(out).name().to_owned();
        let select = Op::new("Where")
            .name(format!("{label}_select_{slot}"))
            .inputs(&[Some(cond), Some(t), Some(e)])
            .output(format!("{out_name}_select"))
            .add_value(model, names, graph)?;
        added.extend(model.value(select).producer().map(|(n, _)| n));
        made.push(select);
        replacements.push(Some(select));
    }
    let created: Vec<NodeId> = c
        .then_copy
        .nodes
        .iter()
        .chain(&c.else_copy.nodes)
        .chain(&added)
        .copied()
        .collect();
    place_before(model, &created, c.node)?;
    let made_here =
        |v: ValueId| made.contains(&v) || c.then_copy.defines(v) || c.else_copy.defines(v);
    let renamed = replace_node(model, c.node, &replacements, &made_here, names)?;
    let mut wanted = Wanted::of(model, &c.then_copy);
    wanted.extend(Wanted::of(model, &c.else_copy));
    for (value, output) in renamed {
        wanted.took_name_of(value, output);
    }
    restore_names(model, names, &wanted, Restore::WhereFree);
    let roots: Vec<ValueId> = c.then_copy.defined().chain(c.else_copy.defined()).collect();
    edit::sweep(model, &roots)?;
    Ok(())
}
