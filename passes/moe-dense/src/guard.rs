//! Never silent: where a router's top-k indices pick experts and dispatch tokens at run time.
//!
//! A dispatch region is a `TopK` whose indices, through index plumbing (reshapes, casts,
//! transposes, slices, gathers), are tested against expert ids (`Equal(ids, e)`, `OneHot`),
//! and whose test, through mask plumbing (transposes, squeezes, reductions, comparisons),
//! decides at run time which rows move: a `NonZero`, a `Compress`, the condition of an `If` or
//! a `Loop`. That is what an exported MoE layer does and what top-k sampling or NMS does not:
//! they gather or scatter by the indices themselves, with no test against an expert id.
//!
//! Found on a pass's output, a region is one `moe-dense` did not prove to be a complete MoE
//! layer: it stays data-dependent, and it may be a baked trace missing experts. The pass
//! declines it by name and the CLI warns of it after every `apply`, whatever the passes.

use onnx_rewrite_facts::PerGraph;
use onnx_rewrite_ir::{GraphId, Model, NodeId, Use, ValueId};
use rustc_hash::FxHashSet as HashSet;

/// One region: the router, the expert test, and where the dispatch happens.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Dispatch {
    /// The graph of the dispatching node.
    pub graph: GraphId,
    pub router: NodeId,
    pub test: NodeId,
    pub sink: NodeId,
}

impl Dispatch {
    /// One line for reports and warnings.
    pub fn describe(&self, model: &Model) -> String {
        format!(
            "the top-k indices of {} pick experts through {} and dispatch tokens at run time through {}",
            model.describe_node(self.router),
            model.describe_node(self.test),
            model.describe_node(self.sink)
        )
    }
}

/// Ops that carry indices (or a mask) along without deciding anything.
const PLUMBING: &[&str] = &[
    "Identity",
    "Reshape",
    "Flatten",
    "Squeeze",
    "Unsqueeze",
    "Cast",
    "Transpose",
    "Slice",
    "Gather",
    "Split",
    "Concat",
    "Expand",
    "Tile",
];

/// Ops that turn a per-expert test into a mask or a count (`mask.sum(...) > 0`, `~mask`).
const MASK_OPS: &[&str] = &[
    "ReduceSum",
    "ReduceMax",
    "ReduceMin",
    "Sum",
    "Greater",
    "GreaterOrEqual",
    "Less",
    "LessOrEqual",
    "Not",
    "And",
    "Or",
    "Equal",
];

/// Where the number of rows that move depends on the data.
fn is_sink(op: &str, input: u32) -> bool {
    match op {
        "NonZero" => true,
        "Compress" => input == 1,
        "If" => input == 0,
        "Loop" => input <= 1,
        _ => false,
    }
}

/// Every dispatch region of the model, in every graph, in node order.
pub fn dispatch_regions(model: &Model) -> Vec<Dispatch> {
    let mut found = Vec::new();
    let mut seen: HashSet<(NodeId, NodeId)> = HashSet::default();
    for graph in model.graph_ids() {
        for &node in model.graph(graph).nodes() {
            let n = model.node(node);
            if n.op_type() != "TopK" || !n.domain().is_empty() || n.is_removed() {
                continue;
            }
            let Some(indices) = n.outputs().get(1).copied().flatten() else {
                continue;
            };
            for test in reached(model, indices, PLUMBING, |op, input| {
                op == "Equal" || (op == "OneHot" && input == 0)
            }) {
                let tested: Vec<ValueId> = model
                    .node(test)
                    .outputs()
                    .iter()
                    .flatten()
                    .copied()
                    .collect();
                for out in tested {
                    let mask_ops: Vec<&str> = PLUMBING.iter().chain(MASK_OPS).copied().collect();
                    for sink in reached(model, out, &mask_ops, is_sink) {
                        if seen.insert((node, sink)) {
                            found.push(Dispatch {
                                graph: model.node(sink).graph(),
                                router: node,
                                test,
                                sink,
                            });
                        }
                    }
                }
            }
        }
    }
    found
}

/// Nodes that read what flows from `start` through `through` ops and are a `stop` (by op and
/// input slot); each node visited once, so this is linear in the region.
fn reached(
    model: &Model,
    start: ValueId,
    through: &[&str],
    stop: impl Fn(&str, u32) -> bool,
) -> Vec<NodeId> {
    let mut out = Vec::new();
    let mut visited: HashSet<NodeId> = HashSet::default();
    let mut stack = vec![start];
    while let Some(value) = stack.pop() {
        for u in model.value(value).uses() {
            let Use::Node { node, input } = *u else {
                continue;
            };
            let n = model.node(node);
            if n.is_removed() || !n.domain().is_empty() {
                continue;
            }
            if stop(n.op_type(), input) {
                if !out.contains(&node) {
                    out.push(node);
                }
                continue;
            }
            if through.contains(&n.op_type()) && visited.insert(node) {
                stack.extend(n.outputs().iter().flatten().copied());
            }
        }
    }
    out
}

/// A router whose dispatch tests fewer experts than it chooses among: a trace that kept the
/// experts its example input reached.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Baked {
    pub router: NodeId,
    /// How many experts the router chooses among (its scores' last dim).
    pub experts: i64,
    /// The expert ids the graph tests, and those it does not.
    pub present: Vec<i64>,
    pub missing: Vec<i64>,
}

/// Routers of `regions` that are baked: every test is `Equal` against a constant expert id,
/// at least two ids are tested, the router's expert count is known, and some ids in
/// `0..experts` are never tested. A router tested any other way (`OneHot`, a loop counter) is
/// not judged, nor one tested against a single id: a generation loop's `ids == eos` looks
/// like that, and a refusal must never fall on a complete model (a top-1 trace that kept one
/// expert is still declined and warned of, not refused).
pub fn baked(model: &Model, regions: &[Dispatch]) -> Vec<Baked> {
    let mut facts = PerGraph::default();
    let mut routers: Vec<NodeId> = regions.iter().map(|r| r.router).collect();
    routers.sort_unstable();
    routers.dedup();
    let mut out = Vec::new();
    'router: for router in routers {
        let Some(experts) = expert_count(model, router, &mut facts) else {
            continue;
        };
        let mut present: Vec<i64> = Vec::new();
        for region in regions.iter().filter(|r| r.router == router) {
            let Some(id) = tested_id(model, region.test, &mut facts) else {
                continue 'router;
            };
            present.push(id);
        }
        present.sort_unstable();
        present.dedup();
        if present.len() < 2 || present.iter().any(|e| !(0..experts).contains(e)) {
            continue;
        }
        let missing: Vec<i64> = (0..experts).filter(|e| !present.contains(e)).collect();
        if !missing.is_empty() {
            out.push(Baked {
                router,
                experts,
                present,
                missing,
            });
        }
    }
    out
}

/// The router's expert count: its scores' dim on the `TopK` axis, when known.
fn expert_count(model: &Model, router: NodeId, facts: &mut PerGraph) -> Option<i64> {
    let n = model.node(router);
    let scores = n.inputs().first().copied().flatten()?;
    let axis = n.attribute("axis").and_then(|a| a.proto.i).unwrap_or(-1);
    let count = facts.of(model, n.graph())?.known_dim(scores, axis)?;
    (1..=crate::detect::MAX_EXPERTS)
        .contains(&count)
        .then_some(count)
}

/// The expert id an `Equal` test compares against, when it is a one-element integer constant.
fn tested_id(model: &Model, test: NodeId, facts: &mut PerGraph) -> Option<i64> {
    let n = model.node(test);
    if n.op_type() != "Equal" {
        return None;
    }
    let facts = facts.of(model, n.graph())?;
    let ids: Vec<i64> = n
        .inputs()
        .iter()
        .flatten()
        .filter_map(|v| facts.int(*v))
        .collect();
    match ids[..] {
        [id] => Some(id),
        _ => None,
    }
}
