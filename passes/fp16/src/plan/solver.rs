//! The solver: a forward walk that settles the nodes whose class or inputs decide their
//! precision, then a backward walk (readers first) that settles the rest, and what each reader
//! requires of a float32 value.

use rustc_hash::FxHashSet as HashSet;

use onnx_rewrite_ir::{GraphOwner, Model, NodeId, Use, ValueDef, ValueId};
use onnx_rewrite_proto::tensor_proto::DataType;

use super::{Kind, Plan, Precision, Reason};
use crate::ports::Role;

impl Plan {
    /// Graph inputs of the scope, and every node whose precision its class or its inputs decide.
    pub(super) fn forward(&mut self, model: &Model) {
        for &graph in &self.scope.graphs {
            let g = model.graph(graph);
            let frozen = self.frozen.contains(&graph);
            for io in g.inputs() {
                if !self.types.of(io.value).is(DataType::Float) {
                    continue;
                }
                if graph == model.main() {
                    let p = if self.keep_io_types {
                        Precision::High
                    } else {
                        Precision::Low
                    };
                    self.values.insert(io.value, p);
                } else if frozen || !self.values.contains_key(&io.value) {
                    self.values.insert(io.value, Precision::High);
                }
            }
        }
        let order = self.scope.order.clone();
        for node in order {
            let np = &self.nodes[&node];
            let precision = match &np.kind {
                Kind::Fixed(p) => Some(*p),
                Kind::Opaque => Some(Precision::High),
                Kind::Flow => np.precision,
                Kind::Consumers => None,
                Kind::Follow => self.follow(model, node),
            };
            if let Some(p) = precision {
                self.settle(model, node, p);
            }
        }
    }

    /// A follower is low when any settled operand is (a kept-float32 graph input counts as low:
    /// it is cast once at the boundary), high when all settled ones are high.
    fn follow(&self, model: &Model, node: NodeId) -> Option<Precision> {
        let n = model.node(node);
        let np = &self.nodes[&node];
        let mut seen = None;
        for (role, v) in np.inputs.iter().zip(n.inputs()) {
            let (Role::Convert, Some(v)) = (role, v) else {
                continue;
            };
            let p = if self.is_main_input(model, *v) {
                Some(Precision::Low)
            } else {
                self.values.get(v).copied()
            };
            match p {
                Some(Precision::Low) => return Some(Precision::Low),
                Some(Precision::High) => seen = Some(Precision::High),
                None => {}
            }
        }
        seen
    }

    /// A follower read only in float32: low when every float32 operand is low (casting its
    /// result up is then exact), else high (a float32 operand is never rounded on its way to a
    /// float32 reader, nor is a kept-float32 graph input).
    fn lean(&self, model: &Model, node: NodeId) -> Precision {
        let n = model.node(node);
        let np = &self.nodes[&node];
        let mut operands = np
            .inputs
            .iter()
            .zip(n.inputs())
            .filter_map(|(role, v)| (*role == Role::Convert).then_some(*v)?)
            .peekable();
        let all_low = operands.peek().is_some()
            && operands.all(|v| {
                !self.is_main_input(model, v) && self.values.get(&v) == Some(&Precision::Low)
            });
        if all_low {
            Precision::Low
        } else {
            Precision::High
        }
    }

    fn is_main_input(&self, model: &Model, value: ValueId) -> bool {
        let v = model.value(value);
        v.def() == onnx_rewrite_ir::ValueDef::Input && v.graph() == model.main()
    }

    fn settle(&mut self, model: &Model, node: NodeId, precision: Precision) {
        let n = model.node(node);
        let Some(np) = self.nodes.get_mut(&node) else {
            return;
        };
        np.precision = Some(precision);
        if np.kind == Kind::Flow {
            let outputs = self.flows.get(&node).map_or(&[][..], |f| &f.outputs[..]);
            for (out, p) in n
                .outputs()
                .iter()
                .zip(outputs.iter().chain(std::iter::repeat(&None)))
            {
                if let (Some(v), Some(p)) = (out, p) {
                    self.values.insert(*v, *p);
                } else if let Some(v) = out
                    && self.types.of(*v).is(DataType::Float)
                {
                    self.values.insert(*v, Precision::High);
                }
            }
            return;
        }
        for (role, out) in np.outputs.iter().zip(n.outputs()) {
            let Some(v) = out else { continue };
            match role {
                Role::Convert => {
                    self.values.insert(*v, precision);
                }
                Role::Pin | Role::Any => {
                    self.values.insert(*v, Precision::High);
                }
                Role::Other => {}
            }
        }
    }

    /// What a reader wants of a float32 value: `None` when either precision will do.
    pub fn requirement(&self, model: &Model, the_use: Use) -> Option<Precision> {
        match the_use {
            Use::Node { node, input } => {
                let np = self.nodes.get(&node)?;
                if np.kind == Kind::Flow {
                    return match self.flows.get(&node)?.inputs.get(input as usize) {
                        Some(Some(p)) => Some(*p),
                        // A float32 operand that belongs to no converted group (an If
                        // condition is never float) stays as it is.
                        _ => Some(Precision::High),
                    };
                }
                match np.inputs.get(input as usize)? {
                    Role::Convert => np.precision,
                    Role::Pin => Some(Precision::High),
                    Role::Any | Role::Other => None,
                }
            }
            Use::GraphOutput { graph, index } => {
                if graph == model.main() {
                    return if self.keep_io_types {
                        Some(Precision::High)
                    } else {
                        None
                    };
                }
                if self.frozen.contains(&graph) {
                    return Some(Precision::High);
                }
                match model.graph(graph).owner() {
                    GraphOwner::Node { .. } => Some(
                        self.body_outputs
                            .get(&(graph, index as usize))
                            .copied()
                            .unwrap_or(Precision::High),
                    ),
                    _ => Some(Precision::High),
                }
            }
        }
    }

    /// Whether `value`'s readers want it (low, high). A reader in `leaning` (a follower read
    /// only in float32, not settled yet) counts as wanting high.
    fn wants(&self, model: &Model, value: ValueId, leaning: &HashSet<NodeId>) -> (bool, bool) {
        let mut low = false;
        let mut high = false;
        for u in model.value(value).uses() {
            if let Use::Node { node, .. } = u
                && leaning.contains(node)
            {
                high = true;
                continue;
            }
            match self.requirement(model, *u) {
                Some(Precision::Low) => low = true,
                Some(Precision::High) => high = true,
                None => {}
            }
        }
        (low, high)
    }

    /// Readers first: a node nobody settled takes float32 if any reader wants float32, else low
    /// if any reader wants low, else stays float32. Constants wanted both ways are kept and
    /// also copied in low precision.
    pub(super) fn backward(&mut self, model: &Model) {
        let order = self.scope.order.clone();
        let mut leaning: HashSet<NodeId> = HashSet::default();
        for &node in order.iter().rev() {
            if self.nodes[&node].precision.is_some() {
                continue;
            }
            let n = model.node(node);
            let np = &self.nodes[&node];
            // A follower with no float32 result (a comparison of data) takes its operands as
            // they come: settled after them, below.
            if np.kind == Kind::Follow && !np.outputs.contains(&Role::Convert) {
                continue;
            }
            let (mut low, mut high) = (false, false);
            for (role, out) in np.outputs.iter().zip(n.outputs()) {
                if let (Role::Convert, Some(v)) = (role, out) {
                    let (l, h) = self.wants(model, *v, &leaning);
                    low |= l;
                    high |= h;
                }
            }
            // A follower read only in float32 leans high: its operands count it as a float32
            // reader, and it settles after them (below): low when every operand is, moving low
            // values and cast once after (the same values, half the bytes).
            if np.kind == Kind::Follow && high && !low {
                leaning.insert(node);
                continue;
            }
            let is_constant = n.domain().is_empty() && n.op_type() == "Constant";
            // A follower moves data: low when anyone reads it low (its float32 readers get a
            // Cast of exact copies of low values). Constants stay float32 for a float32 reader.
            // Nothing read at all (dead, or read for its shape only): low, like its peers.
            let precision = match np.kind {
                Kind::Follow if low => Precision::Low,
                _ if !high => Precision::Low,
                _ => Precision::High,
            };
            if is_constant && low && high {
                self.dual.extend(n.outputs().iter().flatten().copied());
            }
            let reason = (precision == Precision::High).then_some(match np.kind {
                Kind::Follow => Reason::FollowsInput,
                _ => Reason::Consumers,
            });
            self.settle(model, node, precision);
            if let Some(np) = self.nodes.get_mut(&node)
                && np.reason.is_none()
            {
                np.reason = reason;
            }
        }
        for &node in &order {
            if self.nodes[&node].precision.is_none() {
                let p = if leaning.contains(&node) {
                    self.lean(model, node)
                } else {
                    self.follow(model, node).unwrap_or(Precision::High)
                };
                self.settle(model, node, p);
            }
        }
        // Followers settled high in the forward walk: say why.
        for np in self.nodes.values_mut() {
            if np.kind == Kind::Follow
                && np.precision == Some(Precision::High)
                && np.reason.is_none()
            {
                np.reason = Some(Reason::FollowsInput);
            }
        }
        for &graph in &self.scope.graphs {
            for &v in model.graph(graph).initializers() {
                if model.value(v).def() != ValueDef::Initializer
                    || !self.types.of(v).is(DataType::Float)
                {
                    continue;
                }
                let (low, high) = self.wants(model, v, &leaning);
                let p = if low && !high {
                    Precision::Low
                } else {
                    Precision::High
                };
                if low && high {
                    self.dual.insert(v);
                }
                self.values.insert(v, p);
            }
        }
    }
}
