//! onnxruntime's `com.microsoft.MoE`: the experts' weights are `[E, out, in]` stacks (the
//! layout of ORT 1.23 and later; ORT 1.22 and before documented `[E, in, out]`), the router
//! logits go in raw (the op applies softmax, top-k and, with `normalize_routing_weights`,
//! renormalisation itself).
//!
//! The model does not record which layout it was written for. The hidden size tells them
//! apart unless the intermediate size equals it; then the current layout is taken and a note
//! says so.

use onnx_rewrite_ir::NodeId;
use onnx_rewrite_proto::AttributeProto;

use super::{Form, Layer, Rejected, Routing};
use crate::expert::{Arg, Program, Step};
use crate::graph::{Scope, float_attr, input, int_attr, output, string_attr};
use crate::tensor::{ConstExpr, scalar};

/// Why a `com.microsoft.MoE` node is not expanded. `stack` is the weight input as the op's
/// schema names it, `attribute` the attribute.
#[derive(Debug, Clone, PartialEq, Eq, thiserror::Error)]
pub(crate) enum ContribError {
    #[error("quantized com.microsoft.QMoE is not expanded (its weights are packed integers)")]
    Quantized,
    #[error("MoE without {input}")]
    MissingInput { input: &'static str },
    #[error("MoE without output")]
    MissingOutput,
    #[error("unusable {attribute}")]
    Unusable { attribute: &'static str },
    #[error("use_sparse_mixer (Phi-3.5-MoE's two-round routing) is not expanded")]
    SparseMixer,
    #[error("the input's type is unknown")]
    InputType,
    #[error("the input's rank is unknown")]
    InputRankUnknown,
    #[error("input of rank {rank}, not [tokens, hidden] or [batch, seq, hidden]")]
    InputRank { rank: usize },
    #[error("the hidden size is unknown")]
    Hidden,
    #[error("the number of experts (router_probs' last dim) is unknown")]
    Experts,
    #[error(
        "router_probs says {experts} experts, more than the {} the pass expands",
        super::MAX_EXPERTS
    )]
    TooManyExperts { experts: i64 },
    #[error("router_probs is not [tokens, {experts}] or k={k} is out of range")]
    Routing { experts: i64, k: i64 },
    #[error("input {input} of the MoE node is not a constant")]
    NotConstant { input: usize },
    #[error("no {stack} weights")]
    NoWeights { stack: &'static str },
    #[error("a weight stack does not hold {experts} experts")]
    StackExperts { experts: i64 },
    #[error("a weight stack has no shape")]
    StackShape,
    #[error("{stack} has shape {dims:?}, not [experts, out, in]")]
    StackRank { stack: &'static str, dims: Vec<i64> },
    #[error("{stack} of shape {dims:?} takes neither {width_in} inputs per row nor per column")]
    StackWidth {
        stack: &'static str,
        dims: Vec<i64>,
        width_in: i64,
    },
    #[error(
        "activation_type '{activation}' is not expanded (onnxruntime's CPU and CUDA kernels compute GELU differently)"
    )]
    Activation { activation: String },
    #[error("the input type is not a float type")]
    NotFloat,
    #[error("swiglu with swiglu_fusion=0 needs fc3")]
    SwigluWithoutFc3,
    #[error("swiglu_fusion={fusion} is not 0, 1 or 2")]
    SwigluFusion { fusion: i64 },
    #[error("the logits' type is unknown")]
    LogitsType,
}

/// Every `com.microsoft.MoE` node of the graph.
pub(crate) fn detect(scope: &mut Scope<'_>) -> (Vec<Layer>, Vec<Rejected>) {
    let mut layers = Vec::new();
    let mut rejected = Vec::new();
    let nodes: Vec<NodeId> = scope.model.graph(scope.graph).nodes().to_vec();
    for node in nodes {
        let n = scope.model.node(node);
        if n.domain() != "com.microsoft" || !matches!(n.op_type(), "MoE" | "QMoE") {
            continue;
        }
        if n.op_type() == "QMoE" {
            rejected.push(Rejected {
                node,
                reason: ContribError::Quantized.into(),
            });
            continue;
        }
        match read(scope, node) {
            Ok(layer) => layers.push(layer),
            Err(reason) => rejected.push(Rejected {
                node,
                reason: reason.into(),
            }),
        }
    }
    (layers, rejected)
}

/// A weight stack's orientation.
#[derive(Clone, Copy, PartialEq, Eq)]
enum Layout {
    /// `[E, out, in]` (ORT ≥ 1.23).
    OutIn,
    /// `[E, in, out]` (ORT ≤ 1.22).
    InOut,
}

/// Reads `stack[e]` of a `[E, a, b]` weight as an `[in, out]` matrix taking `width_in` features.
fn orient(
    scope: &Scope<'_>,
    stack: &ConstExpr,
    width_in: i64,
    what: &'static str,
    notes: &mut Vec<String>,
) -> Result<(Layout, i64), ContribError> {
    let dims = stack.dims(scope.model).ok_or(ContribError::StackShape)?;
    let [_, a, b] = dims.as_slice() else {
        return Err(ContribError::StackRank { stack: what, dims });
    };
    match (*b == width_in, *a == width_in) {
        (true, true) => {
            notes.push(format!(
                "{what} is [{a}, {b}] per expert, square: read in the ORT >= 1.23 layout [out, in]; the model does not say which layout it was written for"
            ));
            Ok((Layout::OutIn, *a))
        }
        (true, false) => Ok((Layout::OutIn, *a)),
        (false, true) => {
            notes.push(format!("{what} is in the ORT <= 1.22 layout [in, out]"));
            Ok((Layout::InOut, *b))
        }
        (false, false) => Err(ContribError::StackWidth {
            stack: what,
            dims,
            width_in,
        }),
    }
}

/// Expert `e`'s `[in, out]` matrix of a stack in `layout`.
fn matrix(stack: &ConstExpr, layout: Layout, e: i64) -> ConstExpr {
    let slice = ConstExpr::Index {
        of: Box::new(stack.clone()),
        index: e,
    };
    match layout {
        Layout::OutIn => slice.transposed(),
        Layout::InOut => slice,
    }
}

fn bias(stack: Option<&ConstExpr>, e: i64) -> Option<ConstExpr> {
    stack.map(|s| ConstExpr::Index {
        of: Box::new(s.clone()),
        index: e,
    })
}

/// Builds programs step by step.
struct Builder(Vec<Step>);

impl Builder {
    fn push(&mut self, s: Step) -> usize {
        self.0.push(s);
        self.0.len() - 1
    }
    fn op(&mut self, op: &str, args: Vec<Arg>) -> usize {
        self.push(Step::Elementwise {
            op: op.into(),
            attributes: Vec::<AttributeProto>::new(),
            args,
        })
    }
    fn linear(&mut self, x: usize, w: ConstExpr, b: Option<ConstExpr>) -> usize {
        let y = self.push(Step::Linear { x, w });
        match b {
            Some(b) => self.op("Add", vec![Arg::Step(y), Arg::Const(b)]),
            None => y,
        }
    }
}

fn read(scope: &mut Scope<'_>, node: NodeId) -> Result<Layer, ContribError> {
    let n = scope.model.node(node);
    let unusable = |attribute| ContribError::Unusable { attribute };
    let x = input(n, 0).ok_or(ContribError::MissingInput { input: "input" })?;
    let logits = input(n, 1).ok_or(ContribError::MissingInput {
        input: "router_probs",
    })?;
    let out = output(n, 0).ok_or(ContribError::MissingOutput)?;
    let k = int_attr(n, "k", 1).ok_or_else(|| unusable("k"))?;
    let normalize = int_attr(n, "normalize_routing_weights", 0)
        .ok_or_else(|| unusable("normalize_routing_weights"))?
        != 0;
    if int_attr(n, "use_sparse_mixer", 0) != Some(0) {
        return Err(ContribError::SparseMixer);
    }
    let activation = string_attr(n, "activation_type").unwrap_or_else(|| "relu".into());
    let dtype = scope.facts.dtype(x).ok_or(ContribError::InputType)?;
    let rank = scope.facts.rank(x).ok_or(ContribError::InputRankUnknown)?;
    if !(rank == 2 || rank == 3) {
        return Err(ContribError::InputRank { rank });
    }
    let hidden = scope.facts.known_dim(x, -1).ok_or(ContribError::Hidden)?;
    let experts = scope
        .facts
        .known_dim(logits, -1)
        .ok_or(ContribError::Experts)?;
    if experts > super::MAX_EXPERTS {
        return Err(ContribError::TooManyExperts { experts });
    }
    if scope.facts.rank(logits) != Some(2) || !(1..=experts).contains(&k) {
        return Err(ContribError::Routing { experts, k });
    }
    let stack = |scope: &mut Scope<'_>, i: usize| -> Result<Option<ConstExpr>, ContribError> {
        match input(scope.model.node(node), i) {
            None => Ok(None),
            Some(v) => ConstExpr::of(scope, v)
                .map(Some)
                .ok_or(ContribError::NotConstant { input: i }),
        }
    };
    let fc1 = stack(scope, 2)?.ok_or(ContribError::NoWeights { stack: "fc1" })?;
    let fc1_b = stack(scope, 3)?;
    let fc2 = stack(scope, 4)?.ok_or(ContribError::NoWeights { stack: "fc2" })?;
    let fc2_b = stack(scope, 5)?;
    let fc3 = stack(scope, 6)?;
    let fc3_b = stack(scope, 7)?;
    for s in [Some(&fc1), Some(&fc2), fc3.as_ref()].into_iter().flatten() {
        if s.dims(scope.model).and_then(|d| d.first().copied()) != Some(experts) {
            return Err(ContribError::StackExperts { experts });
        }
    }
    let mut notes = Vec::new();
    let (l1, width1) = orient(scope, &fc1, hidden, "fc1_experts_weights", &mut notes)?;
    let l3 = match &fc3 {
        Some(s) => Some(orient(scope, s, hidden, "fc3_experts_weights", &mut notes)?.0),
        None => None,
    };
    let swiglu = activation == "swiglu";
    let fusion = int_attr(n, "swiglu_fusion", 0).ok_or_else(|| unusable("swiglu_fusion"))?;
    let inter = if swiglu && fusion != 0 {
        width1 / 2
    } else {
        width1
    };
    let (l2, _) = orient(scope, &fc2, inter, "fc2_experts_weights", &mut notes)?;
    let alpha = f64::from(
        float_attr(n, "activation_alpha", 1.0).ok_or_else(|| unusable("activation_alpha"))?,
    );
    let beta = f64::from(
        float_attr(n, "activation_beta", 0.0).ok_or_else(|| unusable("activation_beta"))?,
    );
    let limit = match n.attribute("swiglu_limit") {
        None => None,
        Some(_) => Some(f64::from(
            float_attr(n, "swiglu_limit", 0.0).ok_or_else(|| unusable("swiglu_limit"))?,
        )),
    };
    if !matches!(activation.as_str(), "relu" | "silu" | "identity" | "swiglu") {
        return Err(ContribError::Activation { activation });
    }
    let c = |v: f64| scalar(dtype, v).ok_or(ContribError::NotFloat);
    let mut programs = Vec::with_capacity(experts as usize);
    for e in 0..experts {
        let mut b = Builder(Vec::new());
        let x0 = b.push(Step::Input);
        let u = b.linear(x0, matrix(&fc1, l1, e), bias(fc1_b.as_ref(), e));
        let up = match (&fc3, l3) {
            (Some(s), Some(l)) => Some(b.linear(x0, matrix(s, l, e), bias(fc3_b.as_ref(), e))),
            _ => None,
        };
        let act = if swiglu {
            let (g, l) = match (fusion, up) {
                (0, Some(up)) => (u, up),
                (0, None) => return Err(ContribError::SwigluWithoutFc3),
                (1, _) => (
                    b.push(Step::Slice {
                        x: u,
                        start: 0,
                        end: width1,
                        step: 2,
                    }),
                    b.push(Step::Slice {
                        x: u,
                        start: 1,
                        end: width1,
                        step: 2,
                    }),
                ),
                (2, _) => (
                    b.push(Step::Slice {
                        x: u,
                        start: 0,
                        end: inter,
                        step: 1,
                    }),
                    b.push(Step::Slice {
                        x: u,
                        start: inter,
                        end: width1,
                        step: 1,
                    }),
                ),
                _ => return Err(ContribError::SwigluFusion { fusion }),
            };
            let (g, l) = match limit {
                Some(lim) => (
                    b.op(
                        "Clip",
                        vec![Arg::Step(g), Arg::Missing, Arg::Const(c(lim)?)],
                    ),
                    b.op(
                        "Clip",
                        vec![Arg::Step(l), Arg::Const(c(-lim)?), Arg::Const(c(lim)?)],
                    ),
                ),
                None => (g, l),
            };
            let scaled = b.op("Mul", vec![Arg::Step(g), Arg::Const(c(alpha)?)]);
            let sig = b.op("Sigmoid", vec![Arg::Step(scaled)]);
            let glu = b.op("Mul", vec![Arg::Step(g), Arg::Step(sig)]);
            let shifted = b.op("Add", vec![Arg::Step(l), Arg::Const(c(beta)?)]);
            b.op("Mul", vec![Arg::Step(glu), Arg::Step(shifted)])
        } else {
            let a = match activation.as_str() {
                "relu" => b.op("Relu", vec![Arg::Step(u)]),
                "silu" => {
                    let s = b.op("Sigmoid", vec![Arg::Step(u)]);
                    b.op("Mul", vec![Arg::Step(u), Arg::Step(s)])
                }
                _ => u,
            };
            match up {
                Some(up) => b.op("Mul", vec![Arg::Step(a), Arg::Step(up)]),
                None => a,
            }
        };
        let y = b.linear(act, matrix(&fc2, l2, e), bias(fc2_b.as_ref(), e));
        programs.push(Some(Program {
            steps: b.0,
            output: y,
        }));
    }
    let weights_dtype = scope.facts.dtype(logits).ok_or(ContribError::LogitsType)?;
    Ok(Layer {
        anchor: node,
        form: Form::Contrib,
        experts,
        top_k: k,
        tokens: x,
        hidden: Some(hidden),
        flatten_tokens: rank == 3,
        output: out,
        start: None,
        routing: Routing::Logits { logits, normalize },
        dtype,
        weights_dtype,
        programs,
        notes,
        shared: None,
    })
}
