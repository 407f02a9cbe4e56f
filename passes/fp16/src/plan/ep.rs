//! The target EP's kernels: whether onnxruntime runs a node in the target type, looked up in
//! the kernel tables ([`crate::kernels`]) with the node's type binding.

use onnx_rewrite_ir::{Model, NodeId, ValueId};
use onnx_rewrite_proto::tensor_proto::DataType;

use crate::kernels::{self, Ep};
use crate::options::Options;
use crate::ports::{Ports, Role};
use crate::schema::Slot;
use crate::types::{Ty, Types};

/// Whether some EP of the target runs `node` in the target type (or none of them runs it in
/// float32 either: then the tables cannot tell, and the schema decides).
pub(super) fn kernel_exists(
    model: &Model,
    node: NodeId,
    ports: &Ports,
    types: &Types,
    options: &Options,
) -> bool {
    let n = model.node(node);
    let schema = ports.schema;
    let binding = |low: bool| -> Vec<(&'static str, DataType)> {
        (0..schema.vars.len() as u8)
            .filter_map(|var| {
                let bound = |roles: &[Role],
                             slots: &dyn Fn(usize) -> Option<Slot>,
                             values: &[Option<ValueId>]| {
                    roles
                        .iter()
                        .zip(values)
                        .enumerate()
                        .filter(|(i, _)| slots(*i) == Some(Slot::Var(var)))
                        .map(|(_, (r, v))| (*r, *v))
                        .collect::<Vec<_>>()
                };
                let mut slots = bound(&ports.inputs, &|i| schema.input(i), n.inputs());
                slots.extend(bound(&ports.outputs, &|i| schema.output(i), n.outputs()));
                if slots.iter().any(|(r, _)| *r == Role::Convert) {
                    let dtype = if low {
                        options.target.dtype()
                    } else {
                        DataType::Float
                    };
                    return Some((schema.var_name(var), dtype));
                }
                slots
                    .iter()
                    .find_map(|(_, v)| match v.map(|v| types.of(v)) {
                        Some(Ty::Tensor(d)) => Some((schema.var_name(var), d)),
                        _ => None,
                    })
            })
            .collect()
    };
    let (low, high) = (binding(true), binding(false));
    let eps: &[Ep] = options.eps();
    let find = |ep: &Ep, b: &[(&str, DataType)]| {
        kernels::find(*ep, n.domain(), n.op_type(), schema.since, b).is_some()
    };
    eps.iter().any(|ep| find(ep, &low))
        || (!options.needs_kernel() && !eps.iter().any(|ep| find(ep, &high)))
}
