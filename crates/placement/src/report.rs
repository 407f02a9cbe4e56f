//! A prediction in words: per graph, the copies with the tensor that crosses, who reads it on
//! each side and the host-side chain that produced it.

use std::fmt::Write as _;

use onnx_rewrite_ir::{GraphId, Model};

use super::capability::{CpuReason, Placement};
use super::copies::{self, MemcpyKind};
use super::sim::{Kind, N, Sim, V};
use super::{GraphPlacement, GraphPrediction, Memcpy, NodeNote, Prediction};

/// `Op 'name'` of a simulated node.
fn node_label(model: &Model, sim: &Sim, n: N) -> String {
    let node = &sim.nodes[n];
    let name = model.node(node.ir).name();
    if node.domain.is_empty() {
        format!("{} '{name}'", node.op)
    } else {
        format!("{}::{} '{name}'", node.domain, node.op)
    }
}

/// `int64[1]`, `float[?,?,64]`, `?` when nothing is known.
fn type_label(sim: &Sim, v: V) -> String {
    let value = &sim.values[v];
    let dtype = value
        .dtype
        .map_or_else(|| "?".to_owned(), onnx_rewrite_ort_kernels::type_name);
    match &value.dims {
        None => dtype,
        Some(dims) => {
            let dims: Vec<String> = dims
                .iter()
                .map(|d| d.map_or_else(|| "?".to_owned(), |d| d.to_string()))
                .collect();
            format!("{dtype}[{}]", dims.join(","))
        }
    }
}

pub(super) fn describe(model: &Model, graph: GraphId, placed: &GraphPlacement) -> GraphPrediction {
    let sim = &placed.sim;
    let partition = &placed.partition;
    let label = |n: N| node_label(model, sim, n);
    let mut cuda_nodes = 0;
    let mut cpu_nodes = 0;
    let mut shape_subgraph_nodes = 0;
    let mut no_cuda_kernel = Vec::new();
    for (n, placement) in partition.placement.iter().enumerate() {
        match placement {
            Some(Placement::Cuda) => cuda_nodes += 1,
            Some(Placement::Cpu(reason)) => {
                cpu_nodes += 1;
                match reason {
                    CpuReason::ShapeSubgraph => shape_subgraph_nodes += 1,
                    CpuReason::NoKernel(why) | CpuReason::Fallback(why) => {
                        no_cuda_kernel.push(NodeNote {
                            node: label(n),
                            reason: why.clone(),
                        })
                    }
                }
            }
            None => {}
        }
    }
    let memcpy = placed
        .crossings
        .iter()
        .map(|c| {
            let value = &sim.values[c.value];
            let readers = |list: &[(N, usize)]| -> Vec<String> {
                let mut seen: Vec<N> = Vec::new();
                list.iter()
                    .filter(|(n, _)| {
                        let fresh = !seen.contains(n);
                        seen.push(*n);
                        fresh
                    })
                    .map(|(n, i)| format!("{} (input {i})", label(*n)))
                    .collect()
            };
            let reason = reason(model, sim, placed, c);
            let chain = match c.kind {
                MemcpyKind::MemcpyFromHost => copies::host_chain(sim, partition, c)
                    .into_iter()
                    .map(&label)
                    .collect(),
                MemcpyKind::MemcpyToHost => Vec::new(),
            };
            Memcpy {
                kind: c.kind,
                tensor: model.value(value.id).name().to_owned(),
                ty: type_label(sim, c.value),
                producer: c.producer.map(|(n, _)| label(n)),
                read_on_device_by: readers(&c.device_readers),
                read_on_host_by: readers(&c.host_readers),
                reason,
                chain,
                value: value.id,
                device_uses: c
                    .device_readers
                    .iter()
                    .map(|(n, i)| (sim.nodes[*n].ir, *i))
                    .collect(),
            }
        })
        .collect();
    GraphPrediction {
        graph: onnx_rewrite_pass::describe_graph(model, graph),
        nodes: model.graph(graph).nodes().len(),
        level1: sim.stats,
        nodes_after_level1: sim.nodes.iter().filter(|n| n.alive).count(),
        cuda_nodes,
        cpu_nodes,
        shape_subgraph_nodes,
        no_cuda_kernel,
        memcpy,
    }
}

/// Why a tensor crosses, in words.
fn reason(model: &Model, sim: &Sim, placed: &GraphPlacement, c: &copies::Crossing) -> String {
    let partition = &placed.partition;
    let label = |n: N| node_label(model, sim, n);
    let value = &sim.values[c.value];
    match (c.kind, value.kind, c.producer) {
        (_, Kind::Input, _) => "a graph input read on both devices: each side needs its own copy".into(),
        (_, Kind::Outer, _) => "a captured outer value read on both devices in this subgraph".into(),
        (MemcpyKind::MemcpyFromHost, _, Some((n, _))) => match &partition.placement[n] {
            Some(Placement::Cpu(CpuReason::ShapeSubgraph)) => {
                "computed on CPU in a shape subgraph (every input a CPU tensor, small initializer or graph input), then used as data on CUDA".into()
            }
            Some(Placement::Cpu(CpuReason::NoKernel(why) | CpuReason::Fallback(why))) => {
                format!("produced on CPU: {why}")
            }
            Some(Placement::Cuda) => format!(
                "{} writes its output to CPU memory, and a CUDA kernel reads it in device memory",
                label(n)
            ),
            None => "produced on CPU".into(),
        },
        (MemcpyKind::MemcpyToHost, _, _) => {
            let (n, i) = c.host_readers[0];
            match &partition.placement[n] {
                Some(Placement::Cpu(CpuReason::NoKernel(why) | CpuReason::Fallback(why))) => {
                    format!("read on CPU by {}: {why}", label(n))
                }
                Some(Placement::Cpu(CpuReason::ShapeSubgraph)) => {
                    format!("read on CPU by {} (in a shape subgraph)", label(n))
                }
                _ => format!(
                    "read in CPU memory by input {i} of {} (a data-dependent shape or count)",
                    label(n)
                ),
            }
        }
        _ => "crosses devices".into(),
    }
}

impl Prediction {
    /// The prediction for people.
    pub fn render(&self) -> String {
        let mut s = String::new();
        let _ = writeln!(
            s,
            "onnxruntime {} {}, {}: {} Memcpy node(s) predicted ({} MemcpyFromHost, {} MemcpyToHost)",
            self.onnxruntime,
            self.execution_provider,
            self.optimization_level,
            self.memcpy_nodes,
            self.memcpy_from_host,
            self.memcpy_to_host
        );
        for g in &self.graphs {
            let _ = writeln!(
                s,
                "\n{}: {} nodes, {} after Level 1 ({} Constant nodes loaded as initializers, {} folded, {} merged, {} eliminated); {} on CUDA, {} on CPU ({} in shape subgraphs); {} Memcpy",
                g.graph,
                g.nodes,
                g.nodes_after_level1,
                g.level1.constant_nodes,
                g.level1.folded,
                g.level1.merged,
                g.level1.eliminated,
                g.cuda_nodes,
                g.cpu_nodes,
                g.shape_subgraph_nodes,
                g.memcpy.len()
            );
            for note in &g.no_cuda_kernel {
                let _ = writeln!(s, "  on CPU: {}: {}", note.node, note.reason);
            }
            for m in &g.memcpy {
                let _ = writeln!(s, "  {:?} of '{}' {}", m.kind, m.tensor, m.ty);
                let _ = writeln!(s, "      why: {}", m.reason);
                if let Some(p) = &m.producer {
                    let _ = writeln!(s, "      produced by {p}");
                }
                if !m.chain.is_empty() {
                    let _ = writeln!(s, "      host chain: {}", m.chain.join(" -> "));
                }
                if !m.read_on_device_by.is_empty() {
                    let _ = writeln!(
                        s,
                        "      read on CUDA by {}",
                        m.read_on_device_by.join(", ")
                    );
                }
                if !m.read_on_host_by.is_empty() {
                    let _ = writeln!(s, "      read on CPU by {}", m.read_on_host_by.join(", "));
                }
            }
        }
        let _ = writeln!(s, "\nkernel tables:");
        for (part, source) in &self.tables {
            let _ = writeln!(s, "  {part}: {source}");
        }
        s
    }
}
