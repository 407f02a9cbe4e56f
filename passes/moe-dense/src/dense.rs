//! The dense-masked form: every expert on every token, each output gated by its top-k weight.
//!
//! ```text
//! gate  = ScatterElements(zeros[T, E], top-k ids, top-k weights, axis=1)   # [T, E]
//! mask  = Cast(ScatterElements(zeros[T, E], top-k ids, ones, axis=1), bool)
//! y     = Sum_e Where(mask[:, e], gate[:, e] * expert_e(x), 0)
//! ```
//! `Where`, not a plain product: an expert that overflows on a token it was not chosen for
//! (float16) must give 0 there, not 0·inf = NaN. The top-k ids and weights are the graph's own
//! (`TopK` tie-breaking unchanged); `com.microsoft.MoE` gets its routing spelled out
//! (softmax, top-k, renormalisation as the op's attributes say).
//!
//! Each expert's weights are constant 2-D right operands of `MatMul` (what weight-only
//! quantizers such as MatMulNBits take); with stacking, one batched `MatMul` per projection
//! over `[E, in, out]` stacks instead, combined with a `ReduceSum` over the expert axis.

use onnx_rewrite_facts::DataType;
use onnx_rewrite_ir::edit::{Names, Op, attr};
use onnx_rewrite_ir::{GraphId, Model, ValueId};
use onnx_rewrite_proto::{AttributeProto, TensorProto};
use rustc_hash::FxHashMap as HashMap;

use crate::detect::{Layer, Routing};
use crate::expert::{Arg, Program, Step};
use crate::graph::visible;
use crate::tensor::{ConstExpr, HostTensor, scalar};

/// Why a layer's dense form cannot be written; `role` names the constant as its initializer
/// would have been named.
#[derive(Debug, Clone, PartialEq, Eq, thiserror::Error)]
pub(crate) enum EmitError {
    #[error("the data of constant {role} could not be read")]
    UnreadableConstant { role: String },
    #[error("the layer computes in a non-float type")]
    NonFloatLayer,
    #[error("the routing weights are not a float type")]
    NonFloatWeights,
    #[error("fill value")]
    FillValue,
    #[error("program without output")]
    NoProgramOutput,
    #[error("no experts")]
    NoExperts,
    #[error("programs differ")]
    ProgramsDiffer,
    #[error("constant data unreadable")]
    UnreadableData,
    #[error("constants of different shapes")]
    ConstantShapes,
    #[error("a constant does not broadcast over tokens")]
    ConstantBroadcast,
    #[error("Clip bounds differ between experts")]
    ClipBounds,
}

/// Adds nodes and constants to one graph, named after the layer.
pub(crate) struct Emitter<'a> {
    pub model: &'a mut Model,
    pub graph: GraphId,
    pub names: &'a mut Names,
    prefix: String,
    /// Small int64 vectors already added, by content.
    ints: HashMap<Vec<i64>, ValueId>,
    /// Constant expressions already materialised.
    consts: HashMap<ConstExpr, ValueId>,
}

impl<'a> Emitter<'a> {
    pub(crate) fn new(
        model: &'a mut Model,
        graph: GraphId,
        names: &'a mut Names,
        prefix: String,
    ) -> Self {
        Self {
            model,
            graph,
            names,
            prefix,
            ints: HashMap::default(),
            consts: HashMap::default(),
        }
    }

    /// Adds a node with `outputs` results named `<prefix>/<role>` (`<prefix>/<role>_<i>` when
    /// there are several).
    fn node(
        &mut self,
        op: &str,
        role: &str,
        inputs: &[Option<ValueId>],
        outputs: usize,
        attributes: Vec<AttributeProto>,
    ) -> Vec<ValueId> {
        let base = format!("{}/{role}", self.prefix);
        let bases: Vec<String> = if outputs == 1 {
            vec![base.clone()]
        } else {
            (0..outputs).map(|i| format!("{base}_{i}")).collect()
        };
        let node = Op::new(op)
            .name(base)
            .inputs(inputs)
            .output_names(&bases)
            .attrs(attributes)
            .add(self.model, self.names, self.graph);
        self.model
            .node(node)
            .outputs()
            .iter()
            .flatten()
            .copied()
            .collect()
    }

    fn one(
        &mut self,
        op: &str,
        role: &str,
        inputs: &[Option<ValueId>],
        attributes: Vec<AttributeProto>,
    ) -> ValueId {
        self.node(op, role, inputs, 1, attributes)[0]
    }

    fn constant(&mut self, role: &str, tensor: TensorProto) -> ValueId {
        let name = self.names.value(&format!("{}/{role}", self.prefix));
        self.model.add_initializer(self.graph, name, tensor)
    }

    fn ints(&mut self, v: &[i64]) -> ValueId {
        if let Some(id) = self.ints.get(v) {
            return *id;
        }
        let tensor = TensorProto {
            dims: vec![v.len() as i64],
            data_type: Some(DataType::Int64 as i32),
            raw_data: Some(
                v.iter()
                    .flat_map(|x| x.to_le_bytes())
                    .collect::<Vec<u8>>()
                    .into(),
            ),
            ..TensorProto::default()
        };
        let id = self.constant("const", tensor);
        self.ints.insert(v.to_vec(), id);
        id
    }

    /// The value of a constant expression: the graph's own value when it is one this graph
    /// can read, else a new initializer.
    fn const_expr(&mut self, c: &ConstExpr, role: &str) -> Result<ValueId, EmitError> {
        if let ConstExpr::Value(v) = c
            && visible(self.model, self.model.value(*v).graph(), self.graph)
        {
            return Ok(*v);
        }
        if let Some(id) = self.consts.get(c) {
            return Ok(*id);
        }
        let data = c
            .eval(self.model)
            .ok_or_else(|| EmitError::UnreadableConstant {
                role: role.to_owned(),
            })?;
        let id = self.constant(role, data.to_proto());
        self.consts.insert(c.clone(), id);
        Ok(id)
    }

    fn scalar(&mut self, dtype: DataType, v: f64, role: &str) -> Result<ValueId, EmitError> {
        let c = scalar(dtype, v).ok_or(EmitError::NonFloatLayer)?;
        self.const_expr(&c, role)
    }
}

/// How one layer is emitted.
pub(crate) struct Plan<'p> {
    pub layer: &'p Layer,
    /// Every expert's program, all present.
    pub programs: Vec<&'p Program>,
    pub stack: bool,
}

/// Emits the dense form of `plan.layer` and returns the value that replaces its output.
pub(crate) fn emit(em: &mut Emitter<'_>, plan: &Plan<'_>) -> Result<ValueId, EmitError> {
    let layer = plan.layer;
    let experts = layer.experts;
    // Tokens as [T, H]; com.microsoft.MoE also takes [B, S, H].
    let (tokens, restore) = match (layer.flatten_tokens, layer.hidden) {
        (true, Some(h)) => {
            let flat = em.ints(&[-1, h]);
            let x = em.one(
                "Reshape",
                "tokens",
                &[Some(layer.tokens), Some(flat)],
                Vec::new(),
            );
            let shape = em.one("Shape", "input_shape", &[Some(layer.tokens)], Vec::new());
            (x, Some(shape))
        }
        _ => (layer.tokens, None),
    };
    let (indices, weights) = match &layer.routing {
        Routing::Graph { indices, weights } => (*indices, *weights),
        Routing::Logits { logits, normalize } => {
            let probs = em.one(
                "Softmax",
                "router_probs",
                &[Some(*logits)],
                vec![attr::int("axis", -1)],
            );
            let k = em.ints(&[layer.top_k]);
            let topk = em.node(
                "TopK",
                "router_topk",
                &[Some(probs), Some(k)],
                2,
                vec![
                    attr::int("axis", -1),
                    attr::int("largest", 1),
                    attr::int("sorted", 1),
                ],
            );
            let (values, ids) = (topk[0], topk[1]);
            let w = if *normalize {
                let last = em.ints(&[-1]);
                let total = em.one(
                    "ReduceSum",
                    "router_topk_sum",
                    &[Some(values), Some(last)],
                    vec![attr::int("keepdims", 1)],
                );
                em.one(
                    "Div",
                    "router_weights",
                    &[Some(values), Some(total)],
                    Vec::new(),
                )
            } else {
                values
            };
            (ids, w)
        }
    };

    // gate[T, E] and mask[T, E].
    let shape_ids = em.one("Shape", "ids_shape", &[Some(indices)], Vec::new());
    let (zero_idx, one_idx) = (em.ints(&[0]), em.ints(&[1]));
    let tokens_dim = em.one(
        "Slice",
        "tokens_dim",
        &[Some(shape_ids), Some(zero_idx), Some(one_idx)],
        Vec::new(),
    );
    let e_dim = em.ints(&[experts]);
    let gate_shape = em.one(
        "Concat",
        "gate_shape",
        &[Some(tokens_dim), Some(e_dim)],
        vec![attr::int("axis", 0)],
    );
    let wt = layer.weights_dtype;
    let zero_w = scalar(wt, 0.0)
        .and_then(|c| c.eval(em.model))
        .ok_or(EmitError::NonFloatWeights)?;
    let one_w = scalar(wt, 1.0)
        .and_then(|c| c.eval(em.model))
        .ok_or(EmitError::NonFloatWeights)?;
    let as_fill = |t: HostTensor| t.with_dims(&[1]).map(|t| t.to_proto());
    let zeros = em.one(
        "ConstantOfShape",
        "gate_zeros",
        &[Some(gate_shape)],
        vec![attr::tensor(
            "value",
            as_fill(zero_w).ok_or(EmitError::FillValue)?,
        )],
    );
    let ones = em.one(
        "ConstantOfShape",
        "ids_ones",
        &[Some(shape_ids)],
        vec![attr::tensor(
            "value",
            as_fill(one_w).ok_or(EmitError::FillValue)?,
        )],
    );
    let mut gate = em.one(
        "ScatterElements",
        "gate",
        &[Some(zeros), Some(indices), Some(weights)],
        vec![attr::int("axis", 1)],
    );
    let chosen = em.one(
        "ScatterElements",
        "chosen",
        &[Some(zeros), Some(indices), Some(ones)],
        vec![attr::int("axis", 1)],
    );
    let mask = em.one(
        "Cast",
        "mask",
        &[Some(chosen)],
        vec![attr::int("to", DataType::Bool as i64)],
    );
    if wt != layer.dtype {
        gate = em.one(
            "Cast",
            "gate_cast",
            &[Some(gate)],
            vec![attr::int("to", layer.dtype as i64)],
        );
    }
    let zero = em.scalar(layer.dtype, 0.0, "zero")?;

    let combined = if plan.stack {
        let perm = vec![attr::ints("perm", &[1, 0])];
        let axis2 = em.ints(&[2]);
        let gate_t = em.one("Transpose", "gate_by_expert", &[Some(gate)], perm.clone());
        let gate_t = em.one(
            "Unsqueeze",
            "gate_by_expert",
            &[Some(gate_t), Some(axis2)],
            Vec::new(),
        );
        let mask_t = em.one("Transpose", "mask_by_expert", &[Some(mask)], perm);
        let mask_t = em.one(
            "Unsqueeze",
            "mask_by_expert",
            &[Some(mask_t), Some(axis2)],
            Vec::new(),
        );
        let all = stacked_program(em, tokens, &plan.programs)?;
        let weighted = em.one("Mul", "weighted", &[Some(all), Some(gate_t)], Vec::new());
        let kept = em.one(
            "Where",
            "masked",
            &[Some(mask_t), Some(weighted), Some(zero)],
            Vec::new(),
        );
        let axis0 = em.ints(&[0]);
        em.one(
            "ReduceSum",
            "combined",
            &[Some(kept), Some(axis0)],
            vec![attr::int("keepdims", 0)],
        )
    } else {
        let split = em.ints(&vec![1; experts as usize]);
        let (gates, masks) = if experts == 1 {
            (vec![gate], vec![mask])
        } else {
            (
                em.node(
                    "Split",
                    "gate_e",
                    &[Some(gate), Some(split)],
                    experts as usize,
                    vec![attr::int("axis", 1)],
                ),
                em.node(
                    "Split",
                    "mask_e",
                    &[Some(mask), Some(split)],
                    experts as usize,
                    vec![attr::int("axis", 1)],
                ),
            )
        };
        let mut outs = Vec::with_capacity(experts as usize);
        for (e, program) in plan.programs.iter().enumerate() {
            let y = program_values(em, tokens, program, &format!("expert{e}"))?;
            let weighted = em.one(
                "Mul",
                &format!("expert{e}/weighted"),
                &[Some(y), Some(gates[e])],
                Vec::new(),
            );
            outs.push(Some(em.one(
                "Where",
                &format!("expert{e}/masked"),
                &[Some(masks[e]), Some(weighted), Some(zero)],
                Vec::new(),
            )));
        }
        em.one("Sum", "combined", &outs, Vec::new())
    };
    let mut out = combined;
    if let Some(start) = layer.start {
        out = em.one("Add", "accumulated", &[Some(start), Some(out)], Vec::new());
    }
    if let Some(shape) = restore {
        out = em.one("Reshape", "output", &[Some(out), Some(shape)], Vec::new());
    }
    Ok(out)
}

/// One expert's program on all tokens, `[T, out]`.
fn program_values(
    em: &mut Emitter<'_>,
    tokens: ValueId,
    program: &Program,
    role: &str,
) -> Result<ValueId, EmitError> {
    let mut values: Vec<ValueId> = Vec::with_capacity(program.steps.len());
    let mut linears = 0;
    for (i, step) in program.steps.iter().enumerate() {
        let v = match step {
            Step::Input => tokens,
            Step::Linear { x, w } => {
                linears += 1;
                let w = em.const_expr(w, &format!("{role}/fc{linears}_weight"))?;
                em.one(
                    "MatMul",
                    &format!("{role}/fc{linears}"),
                    &[Some(values[*x]), Some(w)],
                    Vec::new(),
                )
            }
            Step::Elementwise {
                op,
                attributes,
                args,
            } => {
                let mut inputs = Vec::with_capacity(args.len());
                for (j, a) in args.iter().enumerate() {
                    inputs.push(match a {
                        Arg::Step(s) => Some(values[*s]),
                        Arg::Const(c) => Some(em.const_expr(c, &format!("{role}/const{i}_{j}"))?),
                        Arg::Missing => None,
                    });
                }
                em.one(
                    op,
                    &format!("{role}/{}", op.to_lowercase()),
                    &inputs,
                    attributes.clone(),
                )
            }
            Step::Slice {
                x,
                start,
                end,
                step,
            } => slice(em, values[*x], *start, *end, *step, role),
        };
        values.push(v);
    }
    values
        .get(program.output)
        .copied()
        .ok_or(EmitError::NoProgramOutput)
}

fn slice(em: &mut Emitter<'_>, x: ValueId, start: i64, end: i64, step: i64, role: &str) -> ValueId {
    let inputs = [
        Some(x),
        Some(em.ints(&[start])),
        Some(em.ints(&[end])),
        Some(em.ints(&[-1])),
        Some(em.ints(&[step])),
    ];
    em.one("Slice", &format!("{role}/features"), &inputs, Vec::new())
}

/// Every expert at once on `[E, T, ...]` values: each constant stacked over the experts
/// (`[E, in, out]` weights, `[E, 1, F]` vectors) unless every expert has the same one.
fn stacked_program(
    em: &mut Emitter<'_>,
    tokens: ValueId,
    programs: &[&Program],
) -> Result<ValueId, EmitError> {
    let first = programs.first().ok_or(EmitError::NoExperts)?;
    let mut values: Vec<ValueId> = Vec::with_capacity(first.steps.len());
    let mut linears = 0;
    let stacked = |em: &mut Emitter<'_>,
                   pick: &dyn Fn(&Program) -> Option<ConstExpr>,
                   role: &str,
                   weight: bool|
     -> Result<ValueId, EmitError> {
        let consts: Vec<ConstExpr> = programs
            .iter()
            .map(|p| pick(p).ok_or(EmitError::ProgramsDiffer))
            .collect::<Result<_, _>>()?;
        if !weight && consts.windows(2).all(|w| w[0] == w[1]) {
            return em.const_expr(&consts[0], role);
        }
        let data: Vec<HostTensor> = consts
            .iter()
            .map(|c| c.eval(em.model).ok_or(EmitError::UnreadableData))
            .collect::<Result<_, _>>()?;
        if !weight && data.windows(2).all(|w| w[0] == w[1]) {
            return em.const_expr(&consts[0], role);
        }
        let mut all = HostTensor::stack(&data).ok_or(EmitError::ConstantShapes)?;
        if !weight {
            // [E, ...] → [E, 1, F]: one row per expert, broadcast over tokens.
            let width = data[0].dims.last().copied().unwrap_or(1);
            all = all
                .with_dims(&[programs.len() as i64, 1, width])
                .ok_or(EmitError::ConstantBroadcast)?;
        }
        let name = format!("{}/{role}", em.prefix);
        let name = em.names.value(&name);
        Ok(em.model.add_initializer(em.graph, name, all.to_proto()))
    };
    for (i, step) in first.steps.iter().enumerate() {
        let v = match step {
            Step::Input => tokens,
            Step::Linear { x, .. } => {
                let pick = |p: &Program| match p.steps.get(i) {
                    Some(Step::Linear { w, .. }) => Some(w.clone()),
                    _ => None,
                };
                linears += 1;
                let w = stacked(em, &pick, &format!("experts/fc{linears}_weight"), true)?;
                em.one(
                    "MatMul",
                    &format!("experts/fc{linears}"),
                    &[Some(values[*x]), Some(w)],
                    Vec::new(),
                )
            }
            Step::Elementwise {
                op,
                attributes,
                args,
            } => {
                let mut inputs = Vec::with_capacity(args.len());
                for (j, a) in args.iter().enumerate() {
                    inputs.push(match a {
                        Arg::Step(s) => Some(values[*s]),
                        Arg::Missing => None,
                        Arg::Const(_) => {
                            let pick = |p: &Program| match p.steps.get(i) {
                                Some(Step::Elementwise { args, .. }) => match args.get(j) {
                                    Some(Arg::Const(c)) => Some(c.clone()),
                                    _ => None,
                                },
                                _ => None,
                            };
                            let v = stacked(em, &pick, &format!("experts/const{i}_{j}"), false)?;
                            if op == "Clip"
                                && em
                                    .model
                                    .value(v)
                                    .initializer()
                                    .is_some_and(|t| t.dims.len() > 1)
                            {
                                return Err(EmitError::ClipBounds);
                            }
                            Some(v)
                        }
                    });
                }
                em.one(
                    op,
                    &format!("experts/{}", op.to_lowercase()),
                    &inputs,
                    attributes.clone(),
                )
            }
            Step::Slice {
                x,
                start,
                end,
                step,
            } => slice(em, values[*x], *start, *end, *step, "experts"),
        };
        values.push(v);
    }
    values
        .get(first.output)
        .copied()
        .ok_or(EmitError::NoProgramOutput)
}
