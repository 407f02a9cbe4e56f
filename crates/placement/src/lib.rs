//! A static predictor of ONNX Runtime's CUDA execution provider: which nodes run on the CPU and
//! which `MemcpyFromHost`/`MemcpyToHost` nodes the session inserts, each with the tensor that
//! crosses and the chain that put it on the wrong side.
//!
//! It replays, per graph, what `InferenceSession` does at `ORT_ENABLE_BASIC`:
//! 1. load and Level 1 ([`sim`]): `Constant` nodes become initializers; Identity, Dropout and
//!    same-type Cast are eliminated; equal small constants are shared and common
//!    subexpressions merged; constant nodes (and `Shape` of a static shape) are folded;
//! 2. partitioning ([`capability`]): the CUDA kernel table of the pinned ORT version, by op,
//!    `since_version` (an open-ended registration matches only its own version) and type, then
//!    `GetCpuPreferredNodes` for the shape subgraphs;
//! 3. `MemcpyTransformer` ([`copies`]): one copy per crossing tensor.
//!
//! At `ORT_ENABLE_EXTENDED`/`ALL`, Level-2 fusions on CUDA nodes can only remove crossings
//! (an attention fusion swallowing a scale), so the prediction is an upper bound there.
//!
//! [`predict`] is what `onnx-rewrite analyze --ep cuda` reports; [`place`] and the simulation it
//! returns are for a pass that edits the graph where a tensor crosses (hoist-scalars' bridges)
//! and then asks again. The rules of ORT itself (schema versions, kernel registrations, CPU-memory
//! slots) come from `onnx-rewrite-ort-kernels`.

mod capability;
mod copies;
mod report;
pub mod sim;

use std::collections::BTreeMap;

use onnx_rewrite_ir::{GraphId, GraphOwner, Model, NodeId, ValueId};
use onnx_rewrite_ort_kernels::{self as ort, Ort};

pub use capability::{CpuReason, Partition, Placement};
pub use copies::{Crossing, MemcpyKind};
pub use sim::{Level1Stats, Sim};

/// The optimization level the prediction is for.
pub const OPTIMIZATION_LEVEL: &str = "ORT_ENABLE_BASIC";

/// What the predictor does not replay (each can make the real count differ).
pub const NOT_MODELLED: &[&str] = &[
    "Level-1 NoopElimination, EliminateSlice, ExpandElimination, ReshapeFusion, GeluFusion, LayerNormFusion, MatMulAddFusion, TransposeOptimizer and QDQ passes",
    "inlining an If with a constant condition, and of model-local functions (their nodes are taken as CPU nodes)",
    "ORT's own shape inference: static shapes come from onnx-rewrite's inference, which can know more (a Shape it folds that ORT would not)",
    "RNN/GRU/LSTM activation and ConvTranspose configuration fallbacks",
];

/// Options of a prediction.
#[derive(Debug, Clone, Default)]
pub struct PredictOptions {
    /// ORT version whose rules to apply; `None`: the pinned one.
    pub ort_version: Option<String>,
}

/// A prediction failed.
#[derive(Debug, thiserror::Error)]
pub enum PredictError {
    #[error(transparent)]
    Version(#[from] ort::UnknownVersion),
    #[error("{graph}: the nodes form a cycle through {node}")]
    Cycle { graph: String, node: String },
}

/// The prediction for a model.
#[derive(Debug, Clone, serde::Serialize)]
pub struct Prediction {
    pub onnxruntime: String,
    pub execution_provider: &'static str,
    pub optimization_level: &'static str,
    /// Where the kernel table comes from, per part (and whether it is exact).
    pub tables: BTreeMap<String, String>,
    /// Copy nodes over every graph.
    pub memcpy_nodes: usize,
    pub memcpy_from_host: usize,
    pub memcpy_to_host: usize,
    pub graphs: Vec<GraphPrediction>,
    pub not_modelled: &'static [&'static str],
}

/// The prediction for one graph (ORT partitions and copies each graph on its own).
#[derive(Debug, Clone, serde::Serialize)]
pub struct GraphPrediction {
    pub graph: String,
    pub nodes: usize,
    pub level1: Level1Stats,
    pub nodes_after_level1: usize,
    pub cuda_nodes: usize,
    pub cpu_nodes: usize,
    /// CPU nodes moved there by `GetCpuPreferredNodes` (shape subgraphs).
    pub shape_subgraph_nodes: usize,
    /// Nodes on the CPU because the CUDA EP has no kernel for them (or falls back), and why.
    pub no_cuda_kernel: Vec<NodeNote>,
    pub memcpy: Vec<Memcpy>,
}

#[derive(Debug, Clone, serde::Serialize)]
pub struct NodeNote {
    pub node: String,
    pub reason: String,
}

/// One predicted copy node.
#[derive(Debug, Clone, serde::Serialize)]
pub struct Memcpy {
    pub kind: MemcpyKind,
    /// The tensor that crosses.
    pub tensor: String,
    /// Its type as far as known (`int64[1]`, `float[?,?,64]`).
    #[serde(rename = "type")]
    pub ty: String,
    pub producer: Option<String>,
    pub read_on_device_by: Vec<String>,
    pub read_on_host_by: Vec<String>,
    /// Why it is on the side it is produced on, in words.
    pub reason: String,
    /// The host-side computation that produced it, seed first.
    pub chain: Vec<String>,
    #[serde(skip)]
    pub value: ValueId,
    /// CUDA readers in device memory (IR node, input slot).
    #[serde(skip)]
    pub device_uses: Vec<(NodeId, usize)>,
}

/// Predicts the CUDA EP's placement and copies for every graph of `model` that ORT partitions
/// (the main graph and the subgraphs of its control-flow nodes).
pub fn predict(model: &Model, options: &PredictOptions) -> Result<Prediction, PredictError> {
    let ort = match &options.ort_version {
        Some(v) => ort::for_version(v)?,
        None => ort::pinned(),
    };
    let mut graphs = Vec::new();
    for graph in partitioned_graphs(model) {
        graphs.push(predict_graph(model, graph, ort)?);
    }
    let count = |kind| {
        graphs
            .iter()
            .flat_map(|g| &g.memcpy)
            .filter(|m| m.kind == kind)
            .count()
    };
    let (from_host, to_host) = (
        count(MemcpyKind::MemcpyFromHost),
        count(MemcpyKind::MemcpyToHost),
    );
    Ok(Prediction {
        onnxruntime: ort.version.clone(),
        execution_provider: ort::Ep::Cuda.name(),
        optimization_level: OPTIMIZATION_LEVEL,
        tables: ort.sources.clone(),
        memcpy_nodes: from_host + to_host,
        memcpy_from_host: from_host,
        memcpy_to_host: to_host,
        graphs,
        not_modelled: NOT_MODELLED,
    })
}

/// The main graph, then the subgraphs of its nodes, depth first (not function bodies: ORT
/// inlines local functions before partitioning).
pub fn partitioned_graphs(model: &Model) -> Vec<GraphId> {
    let mut found = Vec::new();
    let mut stack = vec![model.main()];
    while let Some(graph) = stack.pop() {
        found.push(graph);
        let mut subs: Vec<GraphId> = model
            .graph(graph)
            .nodes()
            .iter()
            .flat_map(|n| model.node(*n).subgraphs().collect::<Vec<_>>())
            .collect();
        subs.reverse();
        stack.extend(subs);
    }
    found.retain(|g| !matches!(model.graph(*g).owner(), GraphOwner::Function { .. }));
    found
}

/// One graph, simulated, partitioned and copied.
pub struct GraphPlacement {
    pub sim: Sim,
    pub partition: Partition,
    pub crossings: Vec<Crossing>,
}

/// Simulates, partitions and copies one graph as ORT would.
pub fn place(model: &Model, graph: GraphId, ort: &Ort) -> Result<GraphPlacement, PredictError> {
    let sim = Sim::new(model, graph, ort).map_err(|node| PredictError::Cycle {
        graph: onnx_rewrite_pass::describe_graph(model, graph),
        node: model.describe_node(node),
    })?;
    let partition = capability::partition(&sim, ort);
    let crossings = copies::crossings(&sim, &partition);
    Ok(GraphPlacement {
        sim,
        partition,
        crossings,
    })
}

/// The main graph's inputs that some node reads in CPU memory (at `ort`'s placement).
pub fn inputs_read_on_host(model: &Model, ort: &Ort) -> Result<Vec<ValueId>, PredictError> {
    let placed = place(model, model.main(), ort)?;
    let sim = &placed.sim;
    let mut found = Vec::new();
    for (n, node) in sim.nodes.iter().enumerate().filter(|(_, n)| n.alive) {
        for (i, input) in node.inputs.iter().enumerate() {
            if let Some(v) = *input
                && sim.values[v].kind == sim::Kind::Input
                && capability::reads_on_cpu(sim, &placed.partition, n, i)
                && !found.contains(&sim.values[v].id)
            {
                found.push(sim.values[v].id);
            }
        }
    }
    Ok(found)
}

fn predict_graph(
    model: &Model,
    graph: GraphId,
    ort: &Ort,
) -> Result<GraphPrediction, PredictError> {
    let placed = place(model, graph, ort)?;
    Ok(report::describe(model, graph, &placed))
}
