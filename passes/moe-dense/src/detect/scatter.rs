//! Accumulator chains: one step per expert, each adding the expert's weighted output at its
//! tokens' rows (the traced `for e in range(E): index_add_` loop, the `If` per expert once
//! lowered, and baked traces of either).

use onnx_rewrite_ir::{NodeId, ValueId};
use rustc_hash::FxHashSet as HashSet;

use super::routing::{Router, weights_source};
use super::{Form, Layer, Rejected, Routing};
use crate::expert::{ExpertError, Interpreter, Program, row_source};
use crate::graph::{Scope, input, int_attr, output, string_attr};

/// One accumulation step: `out = acc + scatter(indices, updates)`.
#[derive(Clone, Copy, Debug)]
struct Update {
    out: ValueId,
    acc: ValueId,
    indices: ValueId,
    updates: ValueId,
    form: Form,
    /// The scatter inside a `Where` step (claimed with it).
    inner: Option<ValueId>,
}

fn parse_update(scope: &Scope<'_>, value: ValueId) -> Option<Update> {
    let node = scope.producer(value)?;
    if !node.domain().is_empty() {
        return None;
    }
    let reduction = string_attr(node, "reduction").unwrap_or_else(|| "none".into());
    let scatter = |out: ValueId, acc: ValueId| -> Option<Update> {
        let n = scope.producer(out)?;
        let form = match n.op_type() {
            "ScatterND" => Form::ScatterNd,
            "ScatterElements" if int_attr(n, "axis", 0) == Some(0) => Form::ScatterElements,
            _ => return None,
        };
        Some(Update {
            out: value,
            acc,
            indices: input(n, 1)?,
            updates: input(n, 2)?,
            form,
            inner: None,
        })
    };
    match node.op_type() {
        "ScatterND" | "ScatterElements" if reduction == "add" => scatter(value, input(node, 0)?),
        "Add" => {
            let (a, b) = (input(node, 0)?, input(node, 1)?);
            [(a, b), (b, a)].into_iter().find_map(|(s, acc)| {
                let n = scope.producer(s)?;
                let plain = string_attr(n, "reduction").is_none_or(|r| r == "none");
                (plain && scope.is_zeros(input(n, 0)?))
                    .then(|| scatter(s, acc))
                    .flatten()
            })
        }
        "Where" => {
            let (taken, skipped) = (input(node, 1)?, input(node, 2)?);
            [(taken, skipped), (skipped, taken)]
                .into_iter()
                .find_map(|(step, other)| {
                    let inner = parse_update(scope, step)?;
                    (scope.through_identity(other) == inner.acc).then_some(Update {
                        out: value,
                        form: Form::LoweredIf,
                        inner: Some(step),
                        ..inner
                    })
                })
        }
        _ => None,
    }
}

/// Every accumulator chain of the graph, as (steps from first to last, start value).
fn chains(scope: &Scope<'_>) -> Vec<(Vec<Update>, ValueId)> {
    let mut claimed: HashSet<ValueId> = HashSet::default();
    let mut found = Vec::new();
    for &node in scope.model.graph(scope.graph).nodes().iter().rev() {
        let Some(out) = output(scope.model.node(node), 0) else {
            continue;
        };
        if claimed.contains(&out) {
            continue;
        }
        let mut steps = Vec::new();
        let mut at = out;
        while let Some(u) = parse_update(scope, at) {
            claimed.insert(u.out);
            claimed.extend(u.inner);
            at = u.acc;
            steps.push(u);
            if steps.len() > 65536 {
                break;
            }
        }
        if !steps.is_empty() {
            steps.reverse();
            found.push((steps, at));
        }
    }
    found.reverse();
    found
}

/// The expert a step serves: the `NonZero` its indices come from, over `Equal(top-k ids, e)`.
fn expert_of(scope: &mut Scope<'_>, indices: ValueId) -> Option<(NodeId, Router, i64)> {
    let nonzeros = scope.ancestor_nodes(indices, &|n| {
        n.op_type() == "NonZero" && n.domain().is_empty()
    });
    let [nonzero] = nonzeros.as_slice() else {
        return None;
    };
    let mut mask = input(scope.model.node(*nonzero), 0)?;
    while let Some(n) = scope
        .op(mask, "Cast")
        .or_else(|| scope.op(mask, "Identity"))
    {
        mask = input(n, 0)?;
    }
    let equal = scope.op(mask, "Equal")?;
    let (a, b) = (input(equal, 0)?, input(equal, 1)?);
    for (ids, e) in [(a, b), (b, a)] {
        if let (Some(router), Some(e)) = (Router::with_indices(scope, ids), scope.facts.int(e)) {
            return Some((*nonzero, router, e));
        }
    }
    None
}

/// Why an accumulation step is not read as one expert's weighted output.
#[derive(Debug, Clone, PartialEq, Eq, thiserror::Error)]
pub(crate) enum StepError {
    #[error("its scatter indices do not come from NonZero(Equal(top-k ids, e))")]
    NotRouted,
    #[error("NonZero has no output")]
    NonZeroOutput,
    #[error("its update is not an expert output times a routing weight")]
    NotWeighted,
    #[error("Mul without input")]
    MulInput,
    #[error("neither factor of its update is the routing weight of its tokens")]
    NoRoutingWeight,
    #[error("no gather of token rows by its selection")]
    NoTokenGather,
    #[error(transparent)]
    Expert(#[from] ExpertError),
    #[error("its expert reads token rows that its selection did not pick")]
    UnselectedRows,
}

/// Why an accumulator chain is not read as a MoE layer; `step` counts from the first.
#[derive(Debug, Clone, PartialEq, Eq, thiserror::Error)]
pub(crate) enum ChainError {
    #[error("accumulation step {step}: {reason}")]
    Step { step: usize, reason: StepError },
    #[error("accumulation step {step} follows another router")]
    OtherRouter { step: usize },
    #[error("accumulation step {step} reads other tokens or routing weights than step 0")]
    OtherTokens { step: usize },
    #[error("step {step} serves expert {expert} of {experts}")]
    ExpertOutOfRange {
        step: usize,
        expert: i64,
        experts: i64,
    },
    #[error("expert {expert} is accumulated twice")]
    Twice { expert: usize },
    #[error("empty chain")]
    Empty,
    #[error("the layer's output type is unknown")]
    OutputType,
    #[error("the routing weights' type is unknown")]
    WeightsType,
    #[error("the token matrix is not [tokens, hidden]")]
    TokensRank,
}

/// One step read as an expert: which expert, the router, its tokens, weights and program.
struct StepReading {
    expert: i64,
    router: Router,
    tokens: ValueId,
    weights: ValueId,
    program: Program,
}

fn read_step(scope: &mut Scope<'_>, u: &Update) -> Result<StepReading, StepError> {
    let (nonzero, router, expert) = expert_of(scope, u.indices).ok_or(StepError::NotRouted)?;
    let selected = output(scope.model.node(nonzero), 0).ok_or(StepError::NonZeroOutput)?;
    // The contribution: expert output times the routing weight, maybe broadcast to shape.
    let mut contribution = u.updates;
    for _ in 0..8 {
        let Some(n) = scope.producer(contribution) else {
            break;
        };
        let data = input(n, 0);
        let passes = n.domain().is_empty()
            && match n.op_type() {
                "Identity" => true,
                "Reshape" => data.is_some_and(|d| scope.facts.same_shape(d, contribution)),
                // index_add_'s broadcast of the source to the index shape (the legacy
                // exporter): the feature dims stay, the rows are the selected tokens' either way.
                "Expand" => data.is_some_and(|d| same_features(scope, d, contribution)),
                _ => false,
            };
        match (passes, data) {
            (true, Some(d)) => contribution = d,
            _ => break,
        }
    }
    let mul = scope
        .op(contribution, "Mul")
        .ok_or(StepError::NotWeighted)?;
    let (a, b) = (
        input(mul, 0).ok_or(StepError::MulInput)?,
        input(mul, 1).ok_or(StepError::MulInput)?,
    );
    let (body, weights) = [(a, b), (b, a)]
        .into_iter()
        .find_map(|(body, factor)| {
            let w = weights_source(scope, factor, &router)?;
            scope.depends_on(factor, selected).then_some((body, w))
        })
        .ok_or(StepError::NoRoutingWeight)?;
    // The token matrix: the data of the row gather that the selection drives.
    let gathers = scope.ancestor_nodes(body, &|n| {
        matches!(n.op_type(), "Gather" | "GatherND") && n.domain().is_empty()
    });
    let mut tokens = None;
    for g in gathers {
        let node = scope.model.node(g);
        if let (Some(data), Some(ids), Some(out)) =
            (input(node, 0), input(node, 1), output(node, 0))
            && scope.depends_on(ids, selected)
            && !scope.depends_on(data, selected)
        {
            let source = row_source(scope, out);
            if source != out && tokens.is_none_or(|t| t == source) {
                tokens = Some(source);
            }
        }
    }
    let tokens = tokens.ok_or(StepError::NoTokenGather)?;
    let reading = Interpreter::new(scope, tokens, None).program(body)?;
    let program = reading.program;
    if reading.rows.iter().any(|r| !scope.depends_on(*r, selected)) {
        return Err(StepError::UnselectedRows);
    }
    Ok(StepReading {
        expert,
        router,
        tokens,
        weights,
        program,
    })
}

/// Every accumulator-chain layer of the graph.
pub(crate) fn detect(scope: &mut Scope<'_>) -> (Vec<Layer>, Vec<Rejected>) {
    let mut layers = Vec::new();
    let mut rejected = Vec::new();
    for (steps, start) in chains(scope) {
        // A chain whose first step has no NonZero over the router ids is not MoE: skip quietly.
        let Some(first) = steps.first() else { continue };
        let Some((_, router, _)) = expert_of(scope, first.indices) else {
            continue;
        };
        match read_chain(scope, &steps, start, router) {
            Ok(layer) => layers.push(layer),
            Err(reason) => rejected.push(Rejected {
                node: router.topk,
                reason: reason.into(),
            }),
        }
    }
    (layers, rejected)
}

fn read_chain(
    scope: &mut Scope<'_>,
    steps: &[Update],
    start: ValueId,
    router: Router,
) -> Result<Layer, ChainError> {
    let mut programs: Vec<Option<Program>> = vec![None; router.experts as usize];
    let mut tokens = None;
    let mut weights = None;
    let mut form = Form::ScatterNd;
    for (i, u) in steps.iter().enumerate() {
        let r = read_step(scope, u).map_err(|reason| ChainError::Step { step: i, reason })?;
        if r.router != router {
            return Err(ChainError::OtherRouter { step: i });
        }
        if tokens.is_some_and(|t| t != r.tokens) || weights.is_some_and(|w| w != r.weights) {
            return Err(ChainError::OtherTokens { step: i });
        }
        tokens = Some(r.tokens);
        weights = Some(r.weights);
        let slot = usize::try_from(r.expert)
            .ok()
            .filter(|e| *e < programs.len())
            .ok_or(ChainError::ExpertOutOfRange {
                step: i,
                expert: r.expert,
                experts: router.experts,
            })?;
        if programs[slot].is_some() {
            return Err(ChainError::Twice { expert: slot });
        }
        programs[slot] = Some(r.program);
        if u.form == Form::LoweredIf || form != Form::LoweredIf {
            form = u.form;
        }
    }
    let tokens = tokens.ok_or(ChainError::Empty)?;
    let weights = weights.ok_or(ChainError::Empty)?;
    let output = steps.last().ok_or(ChainError::Empty)?.out;
    let dtype = scope.facts.dtype(output).ok_or(ChainError::OutputType)?;
    let weights_dtype = scope.facts.dtype(weights).ok_or(ChainError::WeightsType)?;
    if scope.facts.rank(tokens) != Some(2) {
        return Err(ChainError::TokensRank);
    }
    let hidden = scope.facts.known_dim(tokens, -1);
    Ok(Layer {
        anchor: router.topk,
        form,
        experts: router.experts,
        top_k: router.k,
        tokens,
        hidden,
        flatten_tokens: false,
        output,
        start: (!scope.is_zeros(start)).then_some(start),
        routing: Routing::Graph {
            indices: router.indices,
            weights,
        },
        dtype,
        weights_dtype,
        programs,
        notes: Vec::new(),
        shared: None,
    })
}

/// Whether two rank-2 values provably have the same feature (last) dim.
fn same_features(scope: &mut Scope<'_>, a: ValueId, b: ValueId) -> bool {
    scope.facts.rank(a) == Some(2)
        && scope.facts.rank(b) == Some(2)
        && matches!(
            (scope.facts.known_dim(a, -1), scope.facts.known_dim(b, -1)),
            (Some(x), Some(y)) if x == y
        )
}
