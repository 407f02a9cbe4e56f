//! Copy-free host→device bridges for the dynamic scalars that still cross after folding and
//! sharing.
//!
//! CUDA's `Range` reads all three inputs in CPU memory and writes its output to the device,
//! and ORT keeps it on CUDA when an input is a computed CPU tensor. So an int64 scalar `d`
//! computed on the host reaches the device, with no Memcpy node, as
//! `Reshape(Range(d, d + 1, 1), [])`: the value travels as a kernel argument. A float value
//! computed from such ints (`Sqrt(Cast(d))`) is recomputed on the device from the bridged
//! ints, since every op in a shape subgraph has a CUDA kernel (that is why ORT considered it).
//! Exact for |d| < 2^53 (Range computes its length in double), which every size satisfies.
//!
//! Structural: it edits the IR where the predictor says a tensor crosses, then the pass checks
//! with the predictor that the count went down (else it keeps the graph as it was).

use std::collections::BTreeMap;

use onnx_rewrite_facts::{ConstData, ConstTensor, DataType};
use onnx_rewrite_ir::edit::{Names, Op, attr};
use onnx_rewrite_ir::{GraphId, InvariantError, Model, NodeId, ValueId};
use onnx_rewrite_proto::AttributeProto;

use onnx_rewrite_ort_kernels::memory;
use onnx_rewrite_placement::sim::{Kind, V};
use onnx_rewrite_placement::{CpuReason, GraphPlacement, MemcpyKind, Placement};

/// Elements of the largest integer tensor bridged (one `Range` per element).
const MAX_BRIDGED_ELEMENTS: i64 = 8;
/// How many ops of a float chain are recomputed on the device, at most.
const MAX_RECOMPUTED_DEPTH: usize = 16;

/// What bridging one graph did.
#[derive(Debug, Default)]
pub(crate) struct Bridged {
    /// Crossing tensors now reaching the device through a `Range`.
    pub bridged: Vec<String>,
    /// Crossings left.
    pub left: Vec<Left>,
    /// Values some reader no longer reads (the roots of the sweep of what they computed).
    pub unread: Vec<ValueId>,
}

/// A crossing bridging leaves.
#[derive(Debug)]
pub(crate) struct Left {
    /// The node producing the crossing value, when a node does.
    pub producer: Option<NodeId>,
    pub why: Why,
    pub reason: String,
}

/// Why a crossing is left.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub(crate) enum Why {
    /// No bridge applies to this kind of crossing (a copy to the host, a graph input, an opset
    /// without Range): nothing was tried.
    NotBridgeable,
    /// A bridge was tried and its producer could not be recomputed on the device: a decline.
    CannotBridge,
}

/// Why a host value cannot be brought to the device; `op` is the producer's op type.
#[derive(Debug, thiserror::Error)]
pub(crate) enum NotBridged {
    #[error("the host chain is too long to recompute on the device")]
    ChainTooLong,
    #[error("no producer")]
    NoProducer,
    /// `why` is the placement's reason for running the producer on the host.
    #[error("it is computed by {op} ({why})")]
    HostOnly { op: String, why: String },
    #[error("{op} is not a host node")]
    NotHostNode { op: String },
    #[error("{op} has subgraphs or several outputs")]
    NotSingleOutput { op: String },
    #[error("the recomputed node has no output")]
    NoRecomputedOutput,
    #[error(transparent)]
    Invariant(#[from] InvariantError),
}

/// Bridges every host→device crossing of `graph` that can be.
pub(crate) fn bridge_graph(
    model: &mut Model,
    graph: GraphId,
    placed: &GraphPlacement,
    names: &mut Names,
) -> Result<Bridged, InvariantError> {
    let mut out = Bridged::default();
    let opset = model
        .opset("")
        .or_else(|| model.opset("ai.onnx"))
        .unwrap_or(1);
    // Small initializers the graph already has are reused (what ORT's ConstantSharing does).
    let mut constants = BTreeMap::new();
    for &init in model.graph(graph).initializers() {
        let value = model.value(init);
        if value.def() == onnx_rewrite_ir::ValueDef::Initializer
            && let Some(c) = value
                .initializer()
                .and_then(|t| ConstTensor::from_proto(t, 8))
        {
            constants.entry(content_key(&c)).or_insert(init);
        }
    }
    let mut b = Builder {
        model,
        graph,
        placed,
        names,
        memo: BTreeMap::new(),
        constants,
    };
    for c in &placed.crossings {
        let value = &placed.sim.values[c.value];
        let name = b.model.value(value.id).name().to_owned();
        if c.kind != MemcpyKind::MemcpyFromHost || value.kind != Kind::Computed {
            let why = match c.kind {
                MemcpyKind::MemcpyToHost => {
                    "a device tensor read on the host (a data-dependent shape or a node without a CUDA kernel) stays"
                }
                MemcpyKind::MemcpyFromHost => {
                    "a graph input read on both devices is copied by ORT; bridging would not avoid it"
                }
            };
            out.left.push(Left {
                producer: c.producer.map(|(n, _)| placed.sim.nodes[n].ir),
                why: Why::NotBridgeable,
                reason: format!("'{name}': {why}"),
            });
            continue;
        }
        if opset < 11 {
            out.left.push(Left {
                producer: None,
                why: Why::NotBridgeable,
                reason: format!("'{name}': opset {opset} has no Range (11) to bridge with"),
            });
            continue;
        }
        match b.on_device(c.value, 0) {
            Ok(bridged) => {
                for &(n, slot) in &c.device_readers {
                    let node = placed.sim.nodes[n].ir;
                    if let Some(old) = b.model.node(node).inputs().get(slot).copied().flatten() {
                        out.unread.push(old);
                    }
                    b.model.set_node_input(node, slot, Some(bridged));
                }
                out.bridged.push(name);
            }
            Err(why) => out.left.push(Left {
                producer: c.producer.map(|(n, _)| placed.sim.nodes[n].ir),
                why: Why::CannotBridge,
                reason: format!("'{name}' cannot be bridged: {why}"),
            }),
        }
    }
    let order = b.model.topological_order(graph).map_err(|n| {
        InvariantError(format!(
            "bridging made a cycle through {}",
            b.model.describe_node(n)
        ))
    })?;
    b.model.set_node_order(graph, order)?;
    Ok(out)
}

struct Builder<'a> {
    model: &'a mut Model,
    graph: GraphId,
    placed: &'a GraphPlacement,
    names: &'a mut Names,
    /// Simulation value → its device-side IR value.
    memo: BTreeMap<V, ValueId>,
    /// Shared small initializers by content.
    constants: BTreeMap<Vec<u8>, ValueId>,
}

impl Builder<'_> {
    /// The device-side equivalent of host value `v`: bridged if it is a small integer tensor,
    /// recomputed on the device from bridged inputs otherwise.
    fn on_device(&mut self, v: V, depth: usize) -> Result<ValueId, NotBridged> {
        if let Some(done) = self.memo.get(&v) {
            return Ok(*done);
        }
        let placed = self.placed;
        let value = &placed.sim.values[v];
        let elements = value.elements();
        let result = match value.dtype {
            Some(dtype @ (DataType::Int64 | DataType::Int32))
                if elements.is_some_and(|n| (1..=MAX_BRIDGED_ELEMENTS).contains(&n)) =>
            {
                let dims = value.static_dims().unwrap_or_default();
                self.bridge_integer(value.id, dtype, &dims)?
            }
            _ => self.recompute(v, depth)?,
        };
        self.memo.insert(v, result);
        Ok(result)
    }

    /// Host op `producer(v)` again, on device-side inputs.
    fn recompute(&mut self, v: V, depth: usize) -> Result<ValueId, NotBridged> {
        if depth >= MAX_RECOMPUTED_DEPTH {
            return Err(NotBridged::ChainTooLong);
        }
        let placed = self.placed;
        let sim = &placed.sim;
        let Some((n, slot)) = sim.producers()[v] else {
            return Err(NotBridged::NoProducer);
        };
        let node = &sim.nodes[n];
        match &placed.partition.placement[n] {
            Some(Placement::Cpu(CpuReason::ShapeSubgraph)) => {}
            Some(Placement::Cpu(CpuReason::NoKernel(why) | CpuReason::Fallback(why))) => {
                return Err(NotBridged::HostOnly {
                    op: node.op.clone(),
                    why: why.clone(),
                });
            }
            _ => {
                return Err(NotBridged::NotHostNode {
                    op: node.op.clone(),
                });
            }
        }
        if node.has_subgraph || node.outputs.iter().flatten().count() != 1 {
            return Err(NotBridged::NotSingleOutput {
                op: node.op.clone(),
            });
        }
        let since = node.since_version.unwrap_or(0);
        let mut inputs = Vec::with_capacity(node.inputs.len());
        for (i, input) in node.inputs.iter().enumerate() {
            let Some(u) = *input else {
                inputs.push(None);
                continue;
            };
            let uv = &sim.values[u];
            let host_computed = uv.kind == Kind::Computed
                && !memory::cpu_input(&node.domain, &node.op, since, i)
                && placed.partition.cpu_args[u];
            inputs.push(Some(if host_computed {
                self.on_device(u, depth + 1)?
            } else {
                uv.id
            }));
        }
        let ir = self.model.node(node.ir);
        let base = self.model.value(sim.values[v].id).name().to_owned();
        let name = format!("{}/on_device", ir.name());
        let domain = ir.proto.domain().to_owned();
        let attributes: Vec<AttributeProto> =
            ir.attributes.iter().map(|a| a.proto.clone()).collect();
        let slots = ir.outputs().len();
        let mut outputs = vec![None; slots];
        if let Some(named) = outputs.get_mut(slot) {
            *named = Some(format!("{base}_on_device"));
        }
        let id = Op::new(&node.op)
            .domain(&domain)
            .name(name)
            .inputs(&inputs)
            .output_slots(outputs)
            .attrs(attributes)
            .add(self.model, self.names, self.graph);
        self.model
            .node(id)
            .outputs()
            .get(slot)
            .copied()
            .flatten()
            .ok_or(NotBridged::NoRecomputedOutput)
    }

    /// `Reshape(Concat(Range(x[k], x[k] + 1, 1) for k), dims)`: the value of `x`, on the device.
    fn bridge_integer(
        &mut self,
        x: ValueId,
        dtype: DataType,
        dims: &[i64],
    ) -> Result<ValueId, InvariantError> {
        let count: i64 = dims.iter().product();
        let base = self.model.value(x).name().to_owned();
        let one = self.scalar(dtype, 1);
        let flat = if dims.len() <= 1 {
            x
        } else {
            let shape = self.i64_vector(&[-1]);
            self.op("Reshape", &[x, shape], None, &base, "flat")?
        };
        let mut pieces = Vec::new();
        for k in 0..count {
            let scalar = if dims.is_empty() {
                x
            } else {
                let index = self.i64_scalar(k);
                self.op(
                    "Gather",
                    &[flat, index],
                    Some(attr::int("axis", 0)),
                    &base,
                    "element",
                )?
            };
            let limit = self.op("Add", &[scalar, one], None, &base, "limit")?;
            pieces.push(self.op("Range", &[scalar, limit, one], None, &base, "on_device")?);
        }
        let joined = if pieces.len() == 1 {
            pieces[0]
        } else {
            self.op(
                "Concat",
                &pieces,
                Some(attr::int("axis", 0)),
                &base,
                "on_device",
            )?
        };
        if dims.len() == 1 {
            Ok(joined)
        } else {
            let shape = self.i64_vector(dims);
            self.op("Reshape", &[joined, shape], None, &base, "on_device")
        }
    }

    /// `op_type` of the default domain with one output, named `<base>/<op_type>_<suffix>`, its
    /// value `<base>_<suffix>`.
    fn op(
        &mut self,
        op_type: &str,
        inputs: &[ValueId],
        attribute: Option<AttributeProto>,
        base: &str,
        suffix: &str,
    ) -> Result<ValueId, InvariantError> {
        let inputs: Vec<Option<ValueId>> = inputs.iter().copied().map(Some).collect();
        Op::new(op_type)
            .name(format!("{base}/{op_type}_{suffix}"))
            .inputs(&inputs)
            .output(format!("{base}_{suffix}"))
            .attrs(attribute)
            .add_value(self.model, self.names, self.graph)
    }

    fn constant(&mut self, tensor: ConstTensor, hint: &str) -> ValueId {
        let key = content_key(&tensor);
        if let Some(v) = self.constants.get(&key) {
            return *v;
        }
        let mut proto = tensor.to_proto();
        let name = self.names.value(hint);
        proto.name = Some(name.clone());
        let v = self.model.add_initializer(self.graph, name, proto);
        self.constants.insert(key, v);
        v
    }

    fn scalar(&mut self, dtype: DataType, value: i64) -> ValueId {
        let data = match dtype {
            DataType::Int32 => ConstData::I32(vec![value as i32]),
            _ => ConstData::I64(vec![value]),
        };
        let t = ConstTensor::new(Vec::new(), data).expect("a scalar");
        self.constant(t, "bridge_one")
    }

    fn i64_scalar(&mut self, value: i64) -> ValueId {
        self.constant(ConstTensor::scalar_i64(value), "bridge_index")
    }

    fn i64_vector(&mut self, values: &[i64]) -> ValueId {
        let t = ConstTensor::new(vec![values.len() as i64], ConstData::I64(values.to_vec()))
            .expect("a vector");
        self.constant(t, "bridge_shape")
    }
}

/// Dtype, dims and bytes of a small tensor, as a map key.
fn content_key(tensor: &ConstTensor) -> Vec<u8> {
    use onnx_rewrite_proto::Message;
    let mut proto = tensor.to_proto();
    proto.name = None;
    proto.encode_to_vec()
}
