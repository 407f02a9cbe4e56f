//! Undo records: how a transaction rolls a model back without a copy of it.
//!
//! While a [`Checkpoint`] is open, every mutation of the arena records how to reverse itself,
//! at the cost of what it changes (a rerouted use, an appended node, the node list it
//! reordered), never of the model's size. Rolling back replays the records newest first, so
//! each one meets the model exactly as its mutation left it: an appended value, node or graph
//! is the last of its arena again and is popped, a use removed from the middle of a list goes
//! back to its position. The model after a rollback equals the model before, use-list order
//! included, so a pass that tries and abandons an edit changes nothing later passes see.
//!
//! The header fields outside the arena (`Model::proto`, `Model::functions` pushed by hand) are
//! not journaled; [`Model::node_mut`] and [`Model::graph_mut`] snapshot what they hand out (a
//! node's header and attributes, a graph's header and `value_info`) once per checkpoint.

use rustc_hash::FxHashMap as HashMap;

use onnx_rewrite_proto as proto;

use super::{
    Attribute, Function, GraphId, GraphIo, GraphOwner, InvariantError, Model, NodeId, Use, ValueId,
    ValueInfoEntry,
};
use crate::pending::PendingPayload;

/// A point to roll back to, or to commit; checkpoints nest and close innermost first.
#[derive(Debug)]
#[must_use = "a checkpoint is committed or rolled back"]
pub struct Checkpoint {
    depth: usize,
    len: usize,
}

/// One mutation's reversal.
#[derive(Clone, Debug)]
pub(super) enum Undo {
    AddGraph,
    AttachSubgraph {
        node: NodeId,
        attribute: u32,
        many: bool,
    },
    AddValue,
    PushInput(GraphId),
    PushInitializer(GraphId),
    PushSparse(GraphId),
    PushOutput {
        graph: GraphId,
        value: ValueId,
    },
    AddNode {
        graph: GraphId,
    },
    /// Slot `slot` of `node` read `old` (its use was at `position` of `old`'s list) and now
    /// reads `new` (its use last in `new`'s list).
    SetInput {
        node: NodeId,
        slot: u32,
        old: Option<(ValueId, usize)>,
        new: Option<ValueId>,
    },
    SetOutput {
        graph: GraphId,
        index: u32,
        old: (ValueId, usize),
        new: ValueId,
    },
    ReplaceAll {
        old: ValueId,
        new: ValueId,
        uses: Vec<Use>,
        new_len: usize,
    },
    UseRemoved {
        value: ValueId,
        position: usize,
        the_use: Use,
    },
    Outputs {
        graph: GraphId,
        outputs: Vec<GraphIo>,
    },
    NodeList {
        graph: GraphId,
        nodes: Vec<NodeId>,
    },
    Removed(NodeId),
    ConstLists {
        graph: GraphId,
        initializers: Vec<ValueId>,
        sparse: Vec<ValueId>,
    },
    Pending {
        value: ValueId,
        payload: Option<PendingPayload>,
    },
    Tensor {
        value: ValueId,
        old: Option<Box<proto::TensorProto>>,
    },
    Rename {
        value: ValueId,
        old: String,
    },
    NodeHeader {
        node: NodeId,
        proto: Box<proto::NodeProto>,
        attributes: Vec<Attribute>,
    },
    GraphHeader {
        graph: GraphId,
        proto: Box<proto::GraphProto>,
        value_info: Vec<ValueInfoEntry>,
        inputs: Vec<Option<proto::ValueInfoProto>>,
        outputs: Vec<Option<proto::ValueInfoProto>>,
    },
    Function {
        index: usize,
        function: Box<Function>,
    },
}

/// The records of the open checkpoints.
#[derive(Clone, Debug, Default)]
pub(super) struct Journal {
    entries: Vec<Undo>,
    /// Journal length at each open checkpoint, outermost first.
    marks: Vec<usize>,
    /// Where the last snapshot of a node's or graph's header is, so one checkpoint takes one.
    node_snapshots: HashMap<NodeId, usize>,
    graph_snapshots: HashMap<GraphId, usize>,
}

impl Journal {
    fn mark(&self) -> usize {
        self.marks.last().copied().unwrap_or(0)
    }

    /// Whether the snapshot recorded at `at` still covers a change made now: it was taken since
    /// the innermost checkpoint, and no rollback dropped it (the entry there is still it).
    fn covers(&self, at: Option<&usize>, is_it: impl Fn(&Undo) -> bool) -> bool {
        at.is_some_and(|&at| at >= self.mark() && self.entries.get(at).is_some_and(is_it))
    }
}

impl Model {
    /// Opens a checkpoint: from here every change to the arena can be rolled back.
    pub fn checkpoint(&mut self) -> Checkpoint {
        let journal = self.journal.get_or_insert_with(Box::default);
        let len = journal.entries.len();
        journal.marks.push(len);
        Checkpoint {
            depth: journal.marks.len(),
            len,
        }
    }

    /// Keeps the changes made since `checkpoint`. They stay undoable by an enclosing one.
    pub fn commit(&mut self, checkpoint: Checkpoint) -> Result<(), InvariantError> {
        self.close(&checkpoint)?;
        if self.journal.as_ref().is_some_and(|j| j.marks.is_empty()) {
            self.journal = None;
        }
        Ok(())
    }

    /// Undoes every change made since `checkpoint`, newest first.
    pub fn rollback(&mut self, checkpoint: Checkpoint) -> Result<(), InvariantError> {
        self.close(&checkpoint)?;
        let Some(mut journal) = self.journal.take() else {
            return Ok(());
        };
        while journal.entries.len() > checkpoint.len {
            if let Some(entry) = journal.entries.pop() {
                self.undo(entry);
            }
        }
        if !journal.marks.is_empty() {
            self.journal = Some(journal);
        }
        Ok(())
    }

    /// Whether a checkpoint is open (the model is inside a transaction).
    pub fn in_transaction(&self) -> bool {
        self.journal.is_some()
    }

    fn close(&mut self, checkpoint: &Checkpoint) -> Result<(), InvariantError> {
        let journal = self
            .journal
            .as_mut()
            .ok_or_else(|| InvariantError("no checkpoint is open".into()))?;
        if journal.marks.len() != checkpoint.depth {
            return Err(InvariantError(format!(
                "checkpoint {} closed while {} are open (checkpoints close innermost first)",
                checkpoint.depth,
                journal.marks.len()
            )));
        }
        journal.marks.pop();
        Ok(())
    }

    pub(super) fn record(&mut self, entry: impl FnOnce() -> Undo) {
        if let Some(journal) = self.journal.as_mut() {
            journal.entries.push(entry());
        }
    }

    pub(super) fn snapshot_node(&mut self, node: NodeId) {
        let Some(journal) = self.journal.as_mut() else {
            return;
        };
        let at = journal.node_snapshots.get(&node);
        if journal.covers(
            at,
            |e| matches!(e, Undo::NodeHeader { node: n, .. } if *n == node),
        ) {
            return;
        }
        let n = &self.nodes[node.index()];
        journal.node_snapshots.insert(node, journal.entries.len());
        journal.entries.push(Undo::NodeHeader {
            node,
            proto: Box::new(n.proto.clone()),
            attributes: n.attributes.clone(),
        });
    }

    pub(super) fn snapshot_graph(&mut self, graph: GraphId) {
        let Some(journal) = self.journal.as_mut() else {
            return;
        };
        let at = journal.graph_snapshots.get(&graph);
        if journal.covers(
            at,
            |e| matches!(e, Undo::GraphHeader { graph: g, .. } if *g == graph),
        ) {
            return;
        }
        let g = &self.graphs[graph.index()];
        journal.graph_snapshots.insert(graph, journal.entries.len());
        journal.entries.push(Undo::GraphHeader {
            graph,
            proto: Box::new(g.proto.clone()),
            value_info: g.value_info.clone(),
            inputs: g.inputs.iter().map(|io| io.info.clone()).collect(),
            outputs: g.outputs.iter().map(|io| io.info.clone()).collect(),
        });
    }

    /// Removes `the_use` from `value`'s list, recording where it was.
    pub(super) fn remove_use(&mut self, value: ValueId, the_use: Use) -> Option<usize> {
        let uses = &mut self.values[value.index()].uses;
        let position = uses.iter().rposition(|u| *u == the_use)?;
        uses.remove(position);
        Some(position)
    }

    fn pop_use(&mut self, value: ValueId, the_use: Use) {
        let uses = &mut self.values[value.index()].uses;
        if uses.last() == Some(&the_use) {
            uses.pop();
        } else if let Some(position) = uses.iter().rposition(|u| *u == the_use) {
            uses.remove(position);
        }
    }

    fn insert_use(&mut self, value: ValueId, position: usize, the_use: Use) {
        let uses = &mut self.values[value.index()].uses;
        uses.insert(position.min(uses.len()), the_use);
    }

    fn undo(&mut self, entry: Undo) {
        match entry {
            Undo::AddGraph => {
                self.graphs.pop();
            }
            Undo::AttachSubgraph {
                node,
                attribute,
                many,
            } => {
                let attr = &mut self.nodes[node.index()].attributes[attribute as usize];
                if many {
                    attr.graphs.pop();
                } else {
                    attr.graph = None;
                }
            }
            Undo::AddValue => {
                self.values.pop();
            }
            Undo::PushInput(graph) => {
                self.graphs[graph.index()].inputs.pop();
            }
            Undo::PushInitializer(graph) => {
                self.graphs[graph.index()].initializers.pop();
            }
            Undo::PushSparse(graph) => {
                self.graphs[graph.index()].sparse_initializers.pop();
            }
            Undo::PushOutput { graph, value } => {
                let outputs = &mut self.graphs[graph.index()].outputs;
                let index = outputs.len().saturating_sub(1) as u32;
                outputs.pop();
                self.pop_use(value, Use::GraphOutput { graph, index });
            }
            Undo::AddNode { graph } => {
                if let Some(node) = self.nodes.pop() {
                    let id = NodeId::new(self.nodes.len());
                    for (slot, input) in node.inputs.iter().enumerate().rev() {
                        if let Some(value) = input {
                            self.pop_use(
                                *value,
                                Use::Node {
                                    node: id,
                                    input: slot as u32,
                                },
                            );
                        }
                    }
                }
                self.graphs[graph.index()].nodes.pop();
            }
            Undo::SetInput {
                node,
                slot,
                old,
                new,
            } => {
                let the_use = Use::Node { node, input: slot };
                if let Some(new) = new {
                    self.pop_use(new, the_use);
                }
                if let Some((old, position)) = old {
                    self.insert_use(old, position, the_use);
                }
                self.nodes[node.index()].inputs[slot as usize] = old.map(|(v, _)| v);
            }
            Undo::SetOutput {
                graph,
                index,
                old: (old, position),
                new,
            } => {
                let the_use = Use::GraphOutput { graph, index };
                self.pop_use(new, the_use);
                self.insert_use(old, position, the_use);
                self.graphs[graph.index()].outputs[index as usize].value = old;
            }
            Undo::ReplaceAll {
                old,
                new,
                uses,
                new_len,
            } => {
                self.values[new.index()].uses.truncate(new_len);
                for the_use in &uses {
                    match *the_use {
                        Use::Node { node, input } => {
                            self.nodes[node.index()].inputs[input as usize] = Some(old)
                        }
                        Use::GraphOutput { graph, index } => {
                            self.graphs[graph.index()].outputs[index as usize].value = old
                        }
                    }
                }
                self.values[old.index()].uses = uses;
            }
            Undo::UseRemoved {
                value,
                position,
                the_use,
            } => self.insert_use(value, position, the_use),
            Undo::Outputs { graph, outputs } => self.graphs[graph.index()].outputs = outputs,
            Undo::NodeList { graph, nodes } => self.graphs[graph.index()].nodes = nodes,
            Undo::Removed(node) => self.nodes[node.index()].removed = false,
            Undo::ConstLists {
                graph,
                initializers,
                sparse,
            } => {
                let g = &mut self.graphs[graph.index()];
                g.initializers = initializers;
                g.sparse_initializers = sparse;
            }
            Undo::Pending { value, payload } => match payload {
                Some(payload) => {
                    self.pending.insert(value, payload);
                }
                None => {
                    self.pending.remove(&value);
                }
            },
            Undo::Tensor { value, old } => self.values[value.index()].initializer = old,
            Undo::Rename { value, old } => self.values[value.index()].name = old,
            Undo::NodeHeader {
                node,
                proto,
                attributes,
            } => {
                let n = &mut self.nodes[node.index()];
                n.proto = *proto;
                n.attributes = attributes;
            }
            Undo::GraphHeader {
                graph,
                proto,
                value_info,
                inputs,
                outputs,
            } => {
                let g = &mut self.graphs[graph.index()];
                g.proto = *proto;
                g.value_info = value_info;
                for (io, info) in g.inputs.iter_mut().zip(inputs) {
                    io.info = info;
                }
                for (io, info) in g.outputs.iter_mut().zip(outputs) {
                    io.info = info;
                }
            }
            Undo::Function { index, function } => {
                for later in &self.functions[index..] {
                    if let GraphOwner::Function { index: i } =
                        &mut self.graphs[later.body.index()].owner
                    {
                        *i += 1;
                    }
                }
                self.functions.insert(index, *function);
            }
        }
    }
}
