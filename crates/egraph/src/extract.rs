//! DAG-aware extraction: which e-node each e-class becomes.
//!
//! Two phases, both linear-ish in the e-graph size (egg's `Extractor` minimizes tree cost,
//! which counts a shared subexpression once per use and overflows on deep residual networks;
//! an ILP is exact but does not scale to 100k nodes):
//!
//! 1. **Bottom-up choice.** A Dijkstra-style sweep (Knuth's generalization to hypergraphs)
//!    finalizes e-classes in increasing order of cost, where an e-node costs its own cost plus
//!    each child's cost divided among the child's parents (an estimate of DAG cost that stays
//!    bounded). A class is finalized through an e-node whose children are all finalized
//!    already, so the choices form a DAG: no cycle can be extracted.
//! 2. **DAG improvement.** With reference counts over the chosen DAG, each class that has
//!    alternatives tries them: the exact change in total DAG cost (nodes that become needed
//!    minus nodes no longer needed, each counted once) decides. An alternative is only
//!    eligible if its children were finalized before the class, which keeps the DAG acyclic.
//!
//! Ties break on e-class and e-node order, so the same e-graph always extracts the same way.

use rustc_hash::FxHashMap as HashMap;
use std::cmp::{Ordering, Reverse};
use std::collections::BinaryHeap;

use egg::{Id, Language};

use crate::analysis::OnnxEGraph;
use crate::language::Onnx;

/// The cost of one e-node under an objective.
pub trait CostModel {
    fn cost(&self, egraph: &OnnxEGraph, node: &Onnx) -> f64;
}

/// Count operator nodes; leaves, projections and constants are free (constants become
/// initializers, not nodes).
#[derive(Debug, Clone, Copy, Default)]
pub struct NodeCount;

impl CostModel for NodeCount {
    fn cost(&self, _egraph: &OnnxEGraph, node: &Onnx) -> f64 {
        match node {
            Onnx::Op(..) => 1.0,
            Onnx::Proj(..) | Onnx::Leaf(_) | Onnx::Missing | Onnx::Const(_) | Onnx::Root(_) => 0.0,
        }
    }
}

/// Nothing was extractable for a class the root needs (every e-node was pruned).
#[derive(Debug, Clone, thiserror::Error)]
#[error("no extractable e-node for e-class {0}")]
pub struct ExtractError(pub Id);

/// The chosen e-node of every finalized e-class.
#[derive(Debug, Clone)]
pub struct Extraction {
    choice: HashMap<Id, Onnx>,
    /// Total cost of the DAG needed by the root, each class counted once.
    pub cost: f64,
}

impl Extraction {
    /// The chosen e-node of `class` (canonical id), if it was finalized.
    pub fn node(&self, class: Id) -> Option<&Onnx> {
        self.choice.get(&class)
    }
}

#[derive(Clone, Copy, PartialEq)]
struct Cost(f64);

impl Eq for Cost {}

impl PartialOrd for Cost {
    fn partial_cmp(&self, other: &Self) -> Option<Ordering> {
        Some(self.cmp(other))
    }
}

impl Ord for Cost {
    fn cmp(&self, other: &Self) -> Ordering {
        self.0.total_cmp(&other.0)
    }
}

/// Extracts the DAG under `root`. `pruned` e-nodes are never chosen (mandatory rewrites).
pub fn extract(
    egraph: &OnnxEGraph,
    root: Id,
    model: &dyn CostModel,
    pruned: &dyn Fn(Id, &Onnx) -> bool,
) -> Result<Extraction, ExtractError> {
    let root = egraph.find(root);
    let mut classes: Vec<Id> = egraph.classes().map(|c| c.id).collect();
    classes.sort();
    let slot: HashMap<Id, usize> = classes.iter().enumerate().map(|(i, c)| (*c, i)).collect();
    let nodes: Vec<&[Onnx]> = classes
        .iter()
        .map(|c| egraph[*c].nodes.as_slice())
        .collect();
    let node_cost: Vec<Vec<f64>> = nodes
        .iter()
        .map(|ns| ns.iter().map(|n| model.cost(egraph, n).max(0.0)).collect())
        .collect();
    let distinct_children = |node: &Onnx| -> Vec<usize> {
        let mut children: Vec<usize> = node
            .children()
            .iter()
            .map(|c| slot[&egraph.find(*c)])
            .collect();
        children.sort_unstable();
        children.dedup();
        children
    };
    let children: Vec<Vec<Vec<usize>>> = nodes
        .iter()
        .map(|ns| ns.iter().map(&distinct_children).collect())
        .collect();

    // users[c] = (parent class, node index) for each e-node that reads c.
    let mut users: Vec<Vec<(usize, usize)>> = vec![Vec::new(); classes.len()];
    let mut parents: Vec<usize> = vec![0; classes.len()];
    for (p, per_node) in children.iter().enumerate() {
        let mut seen_parent: Vec<usize> = Vec::new();
        for (j, cs) in per_node.iter().enumerate() {
            for &c in cs {
                users[c].push((p, j));
                seen_parent.push(c);
            }
        }
        seen_parent.sort_unstable();
        seen_parent.dedup();
        for c in seen_parent {
            parents[c] += 1;
        }
    }

    // Phase 1.
    let mut pending: Vec<Vec<usize>> = children
        .iter()
        .map(|per_node| per_node.iter().map(Vec::len).collect())
        .collect();
    let mut best: Vec<Option<(Cost, usize)>> = vec![None; classes.len()];
    let mut finalized: Vec<Option<usize>> = vec![None; classes.len()];
    let mut cost: Vec<f64> = vec![0.0; classes.len()];
    let mut heap = BinaryHeap::new();
    let offer = |c: usize,
                 j: usize,
                 f: f64,
                 best: &mut Vec<Option<(Cost, usize)>>,
                 heap: &mut BinaryHeap<Reverse<(Cost, usize, usize)>>| {
        if best[c].is_none_or(|(b, bj)| (Cost(f), j) < (b, bj)) {
            best[c] = Some((Cost(f), j));
            heap.push(Reverse((Cost(f), c, j)));
        }
    };
    for c in 0..classes.len() {
        for j in 0..nodes[c].len() {
            if pending[c][j] == 0 && !pruned(classes[c], &nodes[c][j]) {
                offer(c, j, node_cost[c][j], &mut best, &mut heap);
            }
        }
    }
    let mut order = 0;
    while let Some(Reverse((Cost(f), c, j))) = heap.pop() {
        if finalized[c].is_some() || best[c] != Some((Cost(f), j)) {
            continue;
        }
        finalized[c] = Some(order);
        order += 1;
        cost[c] = f;
        for &(p, pj) in &users[c] {
            pending[p][pj] -= 1;
            if pending[p][pj] == 0 && finalized[p].is_none() && !pruned(classes[p], &nodes[p][pj]) {
                let share: f64 = children[p][pj]
                    .iter()
                    .map(|&ch| cost[ch] / parents[ch].max(1) as f64)
                    .sum();
                offer(p, pj, node_cost[p][pj] + share, &mut best, &mut heap);
            }
        }
    }
    let root_slot = slot[&root];
    if finalized[root_slot].is_none() {
        let stuck = (0..classes.len())
            .find(|c| finalized[*c].is_none())
            .map_or(root, |c| classes[c]);
        return Err(ExtractError(stuck));
    }
    let mut choice: Vec<Option<usize>> = best
        .iter()
        .zip(&finalized)
        .map(|(b, f)| f.and(b.map(|(_, j)| j)))
        .collect();

    // Phase 2: reference counts over the chosen DAG.
    let mut refs = vec![0usize; classes.len()];
    let mut total = 0.0;
    {
        let mut stack = vec![root_slot];
        refs[root_slot] = 1;
        total += choice[root_slot].map_or(0.0, |j| node_cost[root_slot][j]);
        while let Some(c) = stack.pop() {
            let Some(j) = choice[c] else { continue };
            for &ch in &children[c][j] {
                refs[ch] += 1;
                if refs[ch] == 1 {
                    total += choice[ch].map_or(0.0, |k| node_cost[ch][k]);
                    stack.push(ch);
                }
            }
        }
    }
    let mut by_order: Vec<usize> = (0..classes.len())
        .filter(|c| finalized[*c].is_some())
        .collect();
    by_order.sort_by_key(|c| finalized[*c]);
    for _round in 0..4 {
        let mut improved = false;
        for &c in &by_order {
            if refs[c] == 0 || nodes[c].len() < 2 {
                continue;
            }
            let Some(current) = choice[c] else { continue };
            let position = finalized[c];
            for j in 0..nodes[c].len() {
                if j == current
                    || pruned(classes[c], &nodes[c][j])
                    || !children[c][j]
                        .iter()
                        .all(|ch| finalized[*ch] < position && finalized[*ch].is_some())
                {
                    continue;
                }
                let mut log: Vec<(usize, usize)> = Vec::new();
                let before = choice[c];
                let mut delta = node_cost[c][j] - node_cost[c][current];
                for &ch in &children[c][j] {
                    delta += add_ref(ch, &mut refs, &choice, &children, &node_cost, &mut log);
                }
                choice[c] = Some(j);
                for &ch in &children[c][current] {
                    delta -= remove_ref(ch, &mut refs, &choice, &children, &node_cost, &mut log);
                }
                if delta < -1e-9 {
                    total += delta;
                    improved = true;
                    break;
                }
                for (class, old) in log.into_iter().rev() {
                    refs[class] = old;
                }
                choice[c] = before;
            }
        }
        if !improved {
            break;
        }
    }

    let choice = (0..classes.len())
        .filter_map(|c| choice[c].map(|j| (classes[c], nodes[c][j].clone())))
        .collect();
    Ok(Extraction {
        choice,
        cost: total,
    })
}

/// One more reference to `class`; returns the cost of what became needed.
fn add_ref(
    class: usize,
    refs: &mut [usize],
    choice: &[Option<usize>],
    children: &[Vec<Vec<usize>>],
    node_cost: &[Vec<f64>],
    log: &mut Vec<(usize, usize)>,
) -> f64 {
    let mut added = 0.0;
    let mut stack = vec![class];
    while let Some(c) = stack.pop() {
        log.push((c, refs[c]));
        refs[c] += 1;
        if refs[c] == 1
            && let Some(j) = choice[c]
        {
            added += node_cost[c][j];
            stack.extend(children[c][j].iter().copied());
        }
    }
    added
}

/// One reference fewer to `class`; returns the cost of what is no longer needed.
fn remove_ref(
    class: usize,
    refs: &mut [usize],
    choice: &[Option<usize>],
    children: &[Vec<Vec<usize>>],
    node_cost: &[Vec<f64>],
    log: &mut Vec<(usize, usize)>,
) -> f64 {
    let mut removed = 0.0;
    let mut stack = vec![class];
    while let Some(c) = stack.pop() {
        log.push((c, refs[c]));
        refs[c] = refs[c].saturating_sub(1);
        if refs[c] == 0
            && let Some(j) = choice[c]
        {
            removed += node_cost[c][j];
            stack.extend(children[c][j].iter().copied());
        }
    }
    removed
}
