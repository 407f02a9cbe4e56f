//! Purity: may a branch run when its `If` would not have run it?
//!
//! Running a branch that was not taken must not be observable except through its outputs,
//! which `Where` discards. That rules out random ops (their draws would change), training-mode
//! Dropout, ops of other domains (nothing is known of their effects or failures), nodes that
//! still hold subgraphs (an `If` the inner lowering could not remove, a `Loop` or `Scan`), and
//! sequences and optionals, which `Where` cannot select.

use onnx_rewrite_ir::proto::type_proto::Value as Ty;
use onnx_rewrite_ir::{GraphId, Model, NodeId, ValueId};
use onnx_rewrite_ops::Effect;

/// Why a branch may not run when its `If` would not have run it; `node` is the node's
/// description, `output` the output's name.
#[derive(Debug, Clone, PartialEq, Eq, thiserror::Error)]
pub(crate) enum Impure {
    #[error("{node} holds a subgraph")]
    Subgraph { node: String },
    #[error("{node} is of domain '{domain}'")]
    OtherDomain { node: String, domain: String },
    #[error("{node} is random")]
    Random { node: String },
    #[error("{node} may run in training mode")]
    Training { node: String },
    #[error("{node} makes or reads a sequence or optional")]
    Sequence { node: String },
    #[error("output '{output}' is a sequence, map or optional, which Where cannot select")]
    NotTensorOutput { output: String },
}

/// `Ok` when every node of `branch` is pure and its outputs are tensors; else the reason.
pub(crate) fn check_branch(model: &Model, branch: GraphId) -> Result<(), Impure> {
    for &node in model.graph(branch).nodes() {
        check_node(model, node)?;
    }
    for io in model.graph(branch).outputs() {
        let declared = io.info.as_ref().and_then(|i| i.r#type.as_ref());
        if declared.is_some_and(not_tensor) || is_not_tensor(model, io.value) {
            return Err(Impure::NotTensorOutput {
                output: model.value(io.value).name().to_owned(),
            });
        }
    }
    Ok(())
}

fn check_node(model: &Model, node: NodeId) -> Result<(), Impure> {
    let n = model.node(node);
    let op = n.op_type();
    let what = || model.describe_node(node);
    if n.subgraphs().next().is_some() {
        return Err(Impure::Subgraph { node: what() });
    }
    if !n.domain().is_empty() {
        return Err(Impure::OtherDomain {
            node: what(),
            domain: n.domain().to_owned(),
        });
    }
    match onnx_rewrite_ops::worst_effect(n.domain(), op) {
        Some(Effect::Random) => return Err(Impure::Random { node: what() }),
        Some(Effect::RandomInTraining)
            if !inference_mode(model, n.inputs().get(2).copied().flatten()) =>
        {
            return Err(Impure::Training { node: what() });
        }
        _ => {}
    }
    if op.starts_with("Sequence")
        || op.starts_with("Optional")
        || matches!(op, "SplitToSequence" | "ConcatFromSequence")
    {
        return Err(Impure::Sequence { node: what() });
    }
    Ok(())
}

/// Dropout's `training_mode` is absent or a constant false.
fn inference_mode(model: &Model, flag: Option<ValueId>) -> bool {
    let Some(flag) = flag else {
        return true;
    };
    let tensor = match model.value(flag).producer() {
        None => model.value(flag).initializer().cloned(),
        Some((node, _)) => {
            let n = model.node(node);
            (n.op_type() == "Constant")
                .then(|| {
                    n.attribute("value")
                        .and_then(|a| a.proto.t.as_deref().cloned())
                })
                .flatten()
        }
    };
    if model.value(flag).def() == onnx_rewrite_ir::ValueDef::Input {
        return false;
    }
    tensor.is_some_and(|t| {
        let raw_false = t
            .raw_data
            .as_ref()
            .is_some_and(|b| b.iter().all(|x| *x == 0));
        let int_false = !t.int32_data.is_empty() && t.int32_data.iter().all(|x| *x == 0);
        raw_false || int_false
    })
}

/// Whether `value` is declared a sequence, map or optional (in its graph's I/O or value_info).
pub(crate) fn is_not_tensor(model: &Model, value: ValueId) -> bool {
    model.declared_type(value).is_some_and(not_tensor)
}

fn not_tensor(ty: &onnx_rewrite_ir::proto::TypeProto) -> bool {
    matches!(
        ty.value,
        Some(Ty::SequenceType(_) | Ty::MapType(_) | Ty::OptionalType(_))
    )
}
