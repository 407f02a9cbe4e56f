//! Which execution provider runs each node: the CUDA EP's `GetCapability` (a kernel for the
//! node's exact `since_version` and types, minus a few explicit fallbacks) and
//! `GetCpuPreferredNodes` (fallback_cpu_capability.cc), which moves shape subgraphs to the CPU.
//!
//! `GetCpuPreferredNodes`, exactly: seed with the consumers of every CPU-memory output of a
//! CUDA candidate (`Shape`, `Size`); visit candidates in topological order; a candidate without
//! a CUDA kernel that was reached runs on CPU and passes CPU-ness on; a CUDA candidate goes to
//! CPU when every input is a small initializer (at most 100 elements), a graph input, or a CPU
//! tensor that its kernel does not read in CPU memory, and none is float16/bfloat16/float8/float4.
//! Visiting in topological order gives the same result as ORT's priority queue.

use onnx_rewrite_ort_kernels::{Ep, KernelMatch, Ort, memory};
use onnx_rewrite_proto::tensor_proto::DataType;

use super::sim::{Kind, N, Sim};

/// Where a node runs.
#[derive(Debug, Clone, PartialEq, Eq)]
pub enum Placement {
    Cuda,
    /// On the CPU EP, and why.
    Cpu(CpuReason),
}

#[derive(Debug, Clone, PartialEq, Eq)]
pub enum CpuReason {
    /// Moved by `GetCpuPreferredNodes`: all its inputs are CPU tensors (a shape subgraph).
    ShapeSubgraph,
    /// No CUDA kernel (op, version or type): the reason in words.
    NoKernel(String),
    /// A CUDA kernel exists but `GetCapability` falls back for this node.
    Fallback(String),
}

/// Small-initializer threshold of `GetCpuPreferredNodes` (elements).
const SMALL_INITIALIZER: i64 = 100;

/// Element types that keep a node on the device (`GetCpuPreferredNodes`, rule A).
fn low_precision(dtype: Option<DataType>) -> bool {
    use DataType as D;
    matches!(
        dtype,
        Some(
            D::Float16
                | D::Bfloat16
                | D::Float8e4m3fn
                | D::Float8e4m3fnuz
                | D::Float8e5m2
                | D::Float8e5m2fnuz
                | D::Float4e2m1
        )
    )
}

/// The placement of every live node (`None` for dead ones), and the values ORT holds in CPU
/// memory at partition time (`cpu_output_args`).
pub struct Partition {
    pub placement: Vec<Option<Placement>>,
    pub cpu_args: Vec<bool>,
}

pub(crate) fn partition(sim: &Sim, ort: &Ort) -> Partition {
    let consumers = sim.consumers();
    let mut placement: Vec<Option<Placement>> = vec![None; sim.nodes.len()];
    let mut tentative = vec![false; sim.nodes.len()];
    for (n, node) in sim.nodes.iter().enumerate().filter(|(_, n)| n.alive) {
        let kernel = sim.kernel(ort, Ep::Cuda, n);
        if node.inlined {
            tentative[n] = true;
        } else if let Some(reason) = kernel.reason(&node.op) {
            let reason = match kernel {
                KernelMatch::NoSchema if !node.domain.is_empty() => {
                    format!(
                        "no CUDA kernel for {}::{} (unknown domain or op)",
                        node.domain, node.op
                    )
                }
                _ => format!("CUDA: {reason}"),
            };
            placement[n] = Some(Placement::Cpu(CpuReason::NoKernel(reason)));
        } else if let Some(why) = explicit_fallback(sim, n) {
            placement[n] = Some(Placement::Cpu(CpuReason::Fallback(why)));
        } else {
            tentative[n] = true;
        }
    }

    // GetCpuPreferredNodes.
    let mut cpu_args = vec![false; sim.values.len()];
    let mut candidate = vec![false; sim.nodes.len()];
    for (_, node) in sim.nodes.iter().enumerate().filter(|(n, _)| tentative[*n]) {
        for (slot, out) in node.outputs.iter().enumerate() {
            if let Some(v) = out
                && memory::cpu_output(&node.domain, &node.op, slot)
            {
                cpu_args[*v] = true;
                for &c in &consumers[*v] {
                    candidate[c] = true;
                }
            }
        }
    }
    let mut cpu_preferred = vec![false; sim.nodes.len()];
    for n in 0..sim.nodes.len() {
        if !candidate[n] || !sim.nodes[n].alive {
            continue;
        }
        let node = &sim.nodes[n];
        let to_cpu = if !tentative[n] {
            // No CUDA kernel: it runs on CPU, so its outputs are CPU tensors.
            true
        } else {
            node.inputs.iter().enumerate().all(|(i, input)| {
                let Some(v) = *input else {
                    // An absent input in the middle: a nameless arg, not a CPU tensor.
                    return false;
                };
                let value = &sim.values[v];
                if low_precision(value.dtype) {
                    return false;
                }
                let small_initializer = value.kind == Kind::Constant
                    && value.elements().is_some_and(|e| e <= SMALL_INITIALIZER);
                if small_initializer || value.kind == Kind::Input {
                    return true;
                }
                cpu_args[v]
                    && !memory::cpu_input(
                        &node.domain,
                        &node.op,
                        node.since_version.unwrap_or(0),
                        i,
                    )
            })
        };
        if to_cpu {
            cpu_preferred[n] = tentative[n];
            for v in node.outputs.iter().flatten() {
                cpu_args[*v] = true;
                for &c in &consumers[*v] {
                    candidate[c] = true;
                }
            }
        }
    }
    for n in 0..sim.nodes.len() {
        if tentative[n] {
            placement[n] = Some(if cpu_preferred[n] {
                Placement::Cpu(CpuReason::ShapeSubgraph)
            } else {
                Placement::Cuda
            });
        }
    }
    Partition {
        placement,
        cpu_args,
    }
}

/// `GetCapability`'s explicit fallbacks for nodes that have a kernel. (RNN activations and
/// ConvTranspose/NhwcConv configurations are not modelled.)
fn explicit_fallback(sim: &Sim, n: N) -> Option<String> {
    let node = &sim.nodes[n];
    if !node.domain.is_empty() {
        return None;
    }
    match node.op.as_str() {
        "Cast" if node.int_attribute("to") == Some(8) => Some("Cast to string runs on CPU".into()),
        "ArgMax" | "ArgMin"
            if node.since_version.unwrap_or(0) >= 12
                && node.int_attribute("select_last_index").unwrap_or(0) != 0 =>
        {
            Some(format!("{} with select_last_index runs on CPU", node.op))
        }
        _ => None,
    }
}

/// Whether a value sits in CPU memory when produced: a CPU node's output, or a CUDA node's
/// CPU-memory output.
pub(crate) fn produced_on_cpu(
    sim: &Sim,
    partition: &Partition,
    producer: Option<(N, usize)>,
) -> bool {
    let Some((n, slot)) = producer else {
        return false;
    };
    match &partition.placement[n] {
        Some(Placement::Cpu(_)) => true,
        Some(Placement::Cuda) => {
            let node = &sim.nodes[n];
            memory::cpu_output(&node.domain, &node.op, slot)
        }
        None => false,
    }
}

/// Whether node `n` reads input `i` in CPU memory.
pub(crate) fn reads_on_cpu(sim: &Sim, partition: &Partition, n: N, i: usize) -> bool {
    match &partition.placement[n] {
        Some(Placement::Cpu(_)) => true,
        Some(Placement::Cuda) => {
            let node = &sim.nodes[n];
            memory::cpu_input(&node.domain, &node.op, node.since_version.unwrap_or(0), i)
        }
        None => false,
    }
}
