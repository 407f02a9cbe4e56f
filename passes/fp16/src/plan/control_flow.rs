//! If, Loop and Scan: one precision per float32 output and per carried state, the same on both
//! sides of the body boundary, and what each body input and output must be.

use onnx_rewrite_ir::{GraphId, Model, NodeId, ValueId};
use onnx_rewrite_proto::tensor_proto::DataType;

use super::{Plan, Precision};
use crate::origin::{Origin, scan_inputs};

/// The precisions of an If, Loop or Scan and its bodies.
#[derive(Default)]
pub(crate) struct Flow {
    /// Per output: the precision of a float32 output.
    pub outputs: Vec<Option<Precision>>,
    /// Per input slot: what a float32 operand must be.
    pub inputs: Vec<Option<Precision>>,
}

impl Plan {
    /// If/Loop/Scan: a precision per float32 output (positions that must stay exact stay
    /// float32), the same for the body values tied to it.
    pub(super) fn flow(&mut self, model: &Model, node: NodeId) {
        let n = model.node(node);
        let is_float = |v: Option<ValueId>| v.is_some_and(|v| self.types.of(v).is(DataType::Float));
        // An If's result is the value of one branch: it needs exactness as its readers do. A
        // loop-carried position may grow past float16's integers on any iteration.
        let is_if = n.op_type() == "If";
        let choose = |v: ValueId| {
            let exact = if is_if {
                self.exactness.needs(v)
            } else {
                self.origins.of(v) == Origin::Position
            };
            if exact {
                Precision::High
            } else {
                Precision::Low
            }
        };
        let bodies: Vec<GraphId> = n.subgraphs().collect();
        let mut flow = Flow {
            outputs: vec![None; n.outputs().len()],
            inputs: vec![None; n.inputs().len()],
        };
        let outputs: Vec<Option<ValueId>> = n.outputs().to_vec();
        let mut body_inputs: Vec<(ValueId, Precision)> = Vec::new();
        let mut body_outputs: Vec<((GraphId, usize), Precision)> = Vec::new();
        let body_in = |g: GraphId, i: usize| model.graph(g).inputs().get(i).map(|io| io.value);
        let body_out = |g: GraphId, i: usize| model.graph(g).outputs().get(i).map(|io| io.value);
        match n.op_type() {
            "If" => {
                for (k, out) in outputs.iter().enumerate() {
                    let Some(out) = out.filter(|v| is_float(Some(*v))) else {
                        continue;
                    };
                    let p = choose(out);
                    let agree = bodies.iter().all(|b| is_float(body_out(*b, k)));
                    if !agree {
                        continue;
                    }
                    flow.outputs[k] = Some(p);
                    body_outputs.extend(bodies.iter().map(|b| ((*b, k), p)));
                }
            }
            "Loop" | "Scan" => {
                let Some(&body) = bodies.first() else {
                    // No body (a malformed node): its outputs stay float32.
                    if let Some(np) = self.nodes.get_mut(&node) {
                        np.precision = Some(Precision::High);
                    }
                    self.flows.insert(node, flow);
                    return;
                };
                let loop_ = n.op_type() == "Loop";
                let offset = if loop_ {
                    2
                } else {
                    usize::from(model.opset("").unwrap_or(0) < 9)
                };
                let body_in_offset = if loop_ { 2 } else { 0 };
                let body_out_offset = usize::from(loop_);
                let scans = if loop_ { 0 } else { scan_inputs(model, node) };
                let states = model
                    .graph(body)
                    .inputs()
                    .len()
                    .saturating_sub(body_in_offset + scans);
                // Carried state: outer input, body input, body output and outer output agree.
                for k in 0..states {
                    let outer_in = n.inputs().get(offset + k).copied().flatten();
                    let b_in = body_in(body, body_in_offset + k);
                    let b_out = body_out(body, body_out_offset + k);
                    let out = outputs.get(k).copied().flatten();
                    if !(is_float(outer_in) && is_float(b_in) && is_float(b_out) && is_float(out)) {
                        continue;
                    }
                    let p = [outer_in, b_in, b_out, out]
                        .into_iter()
                        .flatten()
                        .map(choose)
                        .max()
                        .unwrap_or(Precision::High);
                    flow.inputs[offset + k] = Some(p);
                    flow.outputs[k] = Some(p);
                    body_inputs.extend(b_in.map(|v| (v, p)));
                    body_outputs.push(((body, body_out_offset + k), p));
                }
                // Scanned inputs (Scan only): the slice has its input's precision.
                for j in 0..scans {
                    let outer_in = n.inputs().get(offset + states + j).copied().flatten();
                    let b_in = body_in(body, states + j);
                    if !(is_float(outer_in) && is_float(b_in)) {
                        continue;
                    }
                    let p = [outer_in, b_in].into_iter().flatten().map(choose).max();
                    let p = p.unwrap_or(Precision::High);
                    flow.inputs[offset + states + j] = Some(p);
                    body_inputs.extend(b_in.map(|v| (v, p)));
                }
                // Scan outputs: stacked body results.
                for (j, &out) in outputs.iter().enumerate().skip(states) {
                    let b_out = body_out(body, body_out_offset + j);
                    if !(is_float(b_out) && is_float(out)) {
                        continue;
                    }
                    let p = [b_out, out].into_iter().flatten().map(choose).max();
                    let p = p.unwrap_or(Precision::High);
                    flow.outputs[j] = Some(p);
                    body_outputs.push(((body, body_out_offset + j), p));
                }
            }
            _ => {}
        }
        for (v, p) in body_inputs {
            self.values.insert(v, p);
        }
        self.body_outputs.extend(body_outputs);
        let low = flow.outputs.contains(&Some(Precision::Low));
        if let Some(np) = self.nodes.get_mut(&node) {
            np.precision = Some(if low { Precision::Low } else { Precision::High });
        }
        self.flows.insert(node, flow);
    }
}
