//! The copies `MemcpyTransformer` (transformer_memcpy.cc) inserts: one node per tensor that
//! crosses devices, however many readers it has.
//!
//! - `MemcpyFromHost`: a tensor in CPU memory (a CPU node's output, or a CUDA node's
//!   CPU-memory output) that a CUDA node reads at a device-memory input; or a graph input (or,
//!   in a subgraph, a captured outer value) read on both sides.
//! - `MemcpyToHost`: a device tensor that a CPU node reads, or that a CUDA node reads at a
//!   CPU-memory input.
//!
//! Initializers never get a copy node (ORT duplicates them), nor do graph outputs (the session
//! copies them after `Run`).

use super::capability::{CpuReason, Partition, Placement, produced_on_cpu, reads_on_cpu};
use super::sim::{Kind, N, Sim, V};

/// Which copy node.
#[derive(Debug, Clone, Copy, PartialEq, Eq, PartialOrd, Ord, serde::Serialize)]
pub enum MemcpyKind {
    MemcpyFromHost,
    MemcpyToHost,
}

/// One predicted copy node, in simulation terms.
#[derive(Debug, Clone)]
pub struct Crossing {
    pub kind: MemcpyKind,
    pub value: V,
    pub producer: Option<(N, usize)>,
    /// CUDA nodes reading the tensor in device memory (node, input slot).
    pub device_readers: Vec<(N, usize)>,
    /// CPU nodes, and CUDA nodes reading it in CPU memory.
    pub host_readers: Vec<(N, usize)>,
}

pub(crate) fn crossings(sim: &Sim, partition: &Partition) -> Vec<Crossing> {
    let producers = sim.producers();
    let mut device_readers: Vec<Vec<(N, usize)>> = vec![Vec::new(); sim.values.len()];
    let mut host_readers: Vec<Vec<(N, usize)>> = vec![Vec::new(); sim.values.len()];
    for (n, node) in sim.nodes.iter().enumerate().filter(|(_, n)| n.alive) {
        for (i, input) in node.inputs.iter().enumerate() {
            let Some(v) = *input else { continue };
            if reads_on_cpu(sim, partition, n, i) {
                host_readers[v].push((n, i));
            } else {
                device_readers[v].push((n, i));
            }
        }
    }
    let mut found = Vec::new();
    for (v, value) in sim.values.iter().enumerate() {
        if value.redirect.is_some() || device_readers[v].is_empty() && host_readers[v].is_empty() {
            continue;
        }
        let both = !device_readers[v].is_empty() && !host_readers[v].is_empty();
        let kind = match value.kind {
            Kind::Constant => None,
            Kind::Input | Kind::Outer => both.then_some(MemcpyKind::MemcpyFromHost),
            Kind::Computed => {
                let on_cpu = produced_on_cpu(sim, partition, producers[v]);
                if on_cpu && !device_readers[v].is_empty() {
                    Some(MemcpyKind::MemcpyFromHost)
                } else if !on_cpu && producers[v].is_some() && !host_readers[v].is_empty() {
                    Some(MemcpyKind::MemcpyToHost)
                } else {
                    None
                }
            }
        };
        if let Some(kind) = kind {
            found.push(Crossing {
                kind,
                value: v,
                producer: producers[v],
                device_readers: device_readers[v].clone(),
                host_readers: host_readers[v].clone(),
            });
        }
    }
    // Graph order: inputs first, then by producer.
    found.sort_by_key(|c| (c.producer.map_or(0, |(n, _)| n + 1), c.value));
    found
}

/// The CPU-side computation that led to a tensor on the host: from the seed (a CUDA `Shape` or
/// `Size`, whose output is in CPU memory, or a node without a CUDA kernel) to its producer.
pub(crate) fn host_chain(sim: &Sim, partition: &Partition, crossing: &Crossing) -> Vec<N> {
    let producers = sim.producers();
    let mut chain = Vec::new();
    let mut current = crossing.producer;
    while let Some((n, _)) = current {
        if chain.contains(&n) || chain.len() > 64 {
            break;
        }
        chain.push(n);
        match partition.placement[n] {
            Some(Placement::Cpu(CpuReason::ShapeSubgraph)) => {}
            _ => break,
        }
        // Follow the first input that is a CPU tensor computed in this graph.
        current = sim.nodes[n].inputs.iter().flatten().find_map(|&u| {
            (sim.values[u].kind == Kind::Computed && partition.cpu_args[u])
                .then_some(producers[u])
                .flatten()
        });
    }
    chain.reverse();
    chain
}
