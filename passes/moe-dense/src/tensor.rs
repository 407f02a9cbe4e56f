//! Constant expert weights: where they come from in the graph ([`ConstExpr`]) and their data
//! ([`HostTensor`]).
//!
//! Expert weights reach an expert's matrix multiply through data movement on constants: a
//! plain initializer, a `Gather(W[E, ...], e)` of a 3-D stack, a `Split` of it, a `Transpose`.
//! A [`ConstExpr`] records that path instead of its result, so that a baked trace's expert can
//! be re-pointed at another expert's slice of the same stack (`W[e]` → `W[e']`), and so that a
//! plain initializer is reused as it is rather than copied. Data movement is byte-level, so
//! every fixed-width element type (float16 and bfloat16 weights included) goes through as it is.

use std::sync::Arc;

use onnx_rewrite_facts::{ConstData, ConstTensor, DataType};
use onnx_rewrite_ir::{Model, ValueDef, ValueId};
use onnx_rewrite_proto::TensorProto;

use crate::graph::{Scope, input, int_attr, ints_attr};

/// A dense tensor held in memory: element type, dims and little-endian bytes.
#[derive(Clone, Debug, PartialEq, Eq)]
pub(crate) struct HostTensor {
    pub data_type: DataType,
    pub dims: Vec<i64>,
    pub bytes: Vec<u8>,
}

/// Element count of `dims`; `None` on a negative dim or overflow.
fn count(dims: &[i64]) -> Option<usize> {
    dims.iter()
        .try_fold(1usize, |acc, &d| acc.checked_mul(usize::try_from(d).ok()?))
}

impl HostTensor {
    /// Bytes per element (whole-byte types only).
    fn elem(&self) -> usize {
        self.data_type.bit_width().map_or(0, |b| b as usize / 8)
    }

    /// The tensor's data, for fixed-width whole-byte element types stored in the model.
    pub(crate) fn from_proto(t: &TensorProto) -> Option<Self> {
        let data_type = DataType::try_from(t.data_type?).ok()?;
        let bits = data_type.bit_width()?;
        if bits % 8 != 0 || matches!(data_type, DataType::Complex64 | DataType::Complex128) {
            return None;
        }
        let n = count(&t.dims)?;
        let bytes = match &t.raw_data {
            Some(raw) => raw.to_vec(),
            None => ConstTensor::from_proto(t, n)?
                .to_proto()
                .raw_data
                .map(|b| b.to_vec())?,
        };
        (bytes.len() == n.checked_mul(bits as usize / 8)?).then(|| Self {
            data_type,
            dims: t.dims.clone(),
            bytes,
        })
    }

    pub(crate) fn to_proto(&self) -> TensorProto {
        TensorProto {
            dims: self.dims.clone(),
            data_type: Some(self.data_type as i32),
            raw_data: Some(self.bytes.clone().into()),
            ..TensorProto::default()
        }
    }

    /// `self[index]` along axis 0 (that axis dropped).
    fn index0(&self, index: i64) -> Option<Self> {
        let (&first, rest) = self.dims.split_first()?;
        let index = if index < 0 { index + first } else { index };
        if !(0..first).contains(&index) {
            return None;
        }
        let size = count(rest)?.checked_mul(self.elem())?;
        let start = usize::try_from(index).ok()?.checked_mul(size)?;
        Some(Self {
            data_type: self.data_type,
            dims: rest.to_vec(),
            bytes: self.bytes.get(start..start.checked_add(size)?)?.to_vec(),
        })
    }

    fn reshape(&self, dims: &[i64]) -> Option<Self> {
        (count(dims)? == count(&self.dims)?).then(|| Self {
            data_type: self.data_type,
            dims: dims.to_vec(),
            bytes: self.bytes.clone(),
        })
    }

    fn transpose(&self, perm: &[usize]) -> Option<Self> {
        let rank = self.dims.len();
        if perm.len() != rank || (0..rank).any(|a| !perm.contains(&a)) {
            return None;
        }
        let dims: Vec<usize> = self
            .dims
            .iter()
            .map(|d| usize::try_from(*d).ok())
            .collect::<Option<_>>()?;
        let mut strides = vec![1usize; rank];
        for a in (0..rank.saturating_sub(1)).rev() {
            strides[a] = strides[a + 1].checked_mul(dims[a + 1])?;
        }
        let out_dims: Vec<usize> = perm.iter().map(|&p| dims[p]).collect();
        let n = count(&self.dims)?;
        let elem = self.elem();
        let mut bytes = Vec::with_capacity(self.bytes.len());
        let mut index = vec![0usize; rank];
        for _ in 0..n {
            let offset: usize = index
                .iter()
                .zip(perm)
                .map(|(i, &p)| i * strides[p])
                .sum::<usize>()
                * elem;
            bytes.extend_from_slice(self.bytes.get(offset..offset + elem)?);
            for a in (0..rank).rev() {
                index[a] += 1;
                if index[a] < out_dims[a] {
                    break;
                }
                index[a] = 0;
            }
        }
        Some(Self {
            data_type: self.data_type,
            dims: out_dims.iter().map(|&d| d as i64).collect(),
            bytes,
        })
    }

    /// Elements `start, start + step, ...` below `end` along `axis` (`step > 0`).
    fn slice(&self, axis: usize, start: i64, end: i64, step: i64) -> Option<Self> {
        let dim = *self.dims.get(axis)?;
        if step <= 0 || start < 0 || end > dim || start > end {
            return None;
        }
        let outer = count(&self.dims[..axis])?;
        let inner = count(&self.dims[axis + 1..])?.checked_mul(self.elem())?;
        let picked: Vec<usize> = (start..end)
            .step_by(usize::try_from(step).ok()?)
            .map(|i| i as usize)
            .collect();
        let mut bytes = Vec::with_capacity(outer * picked.len() * inner);
        let dim = usize::try_from(dim).ok()?;
        for o in 0..outer {
            for &i in &picked {
                let at = (o * dim + i) * inner;
                bytes.extend_from_slice(self.bytes.get(at..at + inner)?);
            }
        }
        let mut dims = self.dims.clone();
        dims[axis] = picked.len() as i64;
        Some(Self {
            data_type: self.data_type,
            dims,
            bytes,
        })
    }

    /// The tensors stacked along a new axis 0 (same type and dims).
    pub(crate) fn stack(parts: &[HostTensor]) -> Option<Self> {
        let first = parts.first()?;
        if parts
            .iter()
            .any(|p| p.data_type != first.data_type || p.dims != first.dims)
        {
            return None;
        }
        let mut dims = vec![parts.len() as i64];
        dims.extend(&first.dims);
        Some(Self {
            data_type: first.data_type,
            dims,
            bytes: parts.iter().flat_map(|p| p.bytes.iter().copied()).collect(),
        })
    }

    /// The same data with `dims` (element count unchanged).
    pub(crate) fn with_dims(&self, dims: &[i64]) -> Option<Self> {
        self.reshape(dims)
    }
}

/// How a constant is computed from the model's constants, by data movement only.
#[derive(Clone, Debug, PartialEq, Eq, Hash)]
pub(crate) enum ConstExpr {
    /// An initializer, or the output of a `Constant` node with a `value` tensor.
    Value(ValueId),
    /// A small constant the analysis folded (a `Constant` with `value_float`, ...).
    Small(Arc<ConstTensor>),
    /// `of[index]` along axis 0, that axis dropped: expert `index` of a stack.
    Index {
        of: Box<ConstExpr>,
        index: i64,
    },
    Transpose {
        of: Box<ConstExpr>,
        perm: Vec<usize>,
    },
    Reshape {
        of: Box<ConstExpr>,
        dims: Vec<i64>,
    },
    Slice {
        of: Box<ConstExpr>,
        axis: usize,
        start: i64,
        end: i64,
    },
}

/// How deep a chain of data movement on a constant may be.
const MAX_DEPTH: usize = 32;

impl ConstExpr {
    /// The data movement that computes `value` from constants, if it is one.
    pub(crate) fn of(scope: &mut Scope<'_>, value: ValueId) -> Option<ConstExpr> {
        Self::build(scope, value, 0)
    }

    fn build(scope: &mut Scope<'_>, value: ValueId, depth: usize) -> Option<ConstExpr> {
        if depth > MAX_DEPTH {
            return None;
        }
        let model = scope.model;
        let v = model.value(value);
        if v.def() == ValueDef::Initializer {
            return Some(ConstExpr::Value(value));
        }
        let node = scope.producer(value)?;
        if !node.domain().is_empty() {
            return None;
        }
        let operand = |i| input(node, i);
        let expr = match node.op_type() {
            "Constant" if node.attribute("value").is_some() => ConstExpr::Value(value),
            "Identity" => Self::build(scope, operand(0)?, depth + 1)?,
            "Transpose" => {
                let of = Self::build(scope, operand(0)?, depth + 1)?;
                let rank = of.dims(model)?.len();
                let perm = match ints_attr(node, "perm") {
                    Some(p) => p
                        .iter()
                        .map(|&a| usize::try_from(a).ok())
                        .collect::<Option<Vec<_>>>()?,
                    None => (0..rank).rev().collect(),
                };
                ConstExpr::Transpose {
                    of: Box::new(of),
                    perm,
                }
            }
            "Gather" if int_attr(node, "axis", 0)? == 0 => {
                let index = scope.facts.constant(operand(1)?)?;
                if index.rank() != 0 {
                    return None;
                }
                let index = index.scalar_as_i64()?;
                let of = Self::build(scope, operand(0)?, depth + 1)?;
                let first = *of.dims(model)?.first()?;
                let index = if index < 0 { index + first } else { index };
                (0..first).contains(&index).then_some(())?;
                ConstExpr::Index {
                    of: Box::new(of),
                    index,
                }
            }
            "Squeeze" | "Unsqueeze" | "Reshape" | "Flatten" => {
                let of = Self::build(scope, operand(0)?, depth + 1)?;
                let dims: Vec<i64> = scope
                    .facts
                    .shape_dims(value)?
                    .iter()
                    .map(|d| d.known())
                    .collect::<Option<_>>()?;
                ConstExpr::Reshape {
                    of: Box::new(of),
                    dims,
                }
            }
            "Split" => {
                let of = Self::build(scope, operand(0)?, depth + 1)?;
                let rank = of.dims(model)?.len() as i64;
                let axis = int_attr(node, "axis", 0)?;
                let axis = usize::try_from(if axis < 0 { axis + rank } else { axis }).ok()?;
                let slot = scope.output_index(value)? as usize;
                let mut start = 0;
                for earlier in &node.outputs()[..slot] {
                    start += scope.facts.known_dim((*earlier)?, axis as i64)?;
                }
                let end = start + scope.facts.known_dim(value, axis as i64)?;
                ConstExpr::Slice {
                    of: Box::new(of),
                    axis,
                    start,
                    end,
                }
            }
            _ => ConstExpr::Small(scope.facts.constant(value)?),
        };
        // A shape that does not check out means we misread the graph: no constant then.
        expr.dims(model)?;
        Some(expr)
    }

    /// The dims of the constant.
    pub(crate) fn dims(&self, model: &Model) -> Option<Vec<i64>> {
        match self {
            ConstExpr::Value(v) => Some(leaf_tensor(model, *v)?.dims.clone()),
            ConstExpr::Small(c) => Some(c.dims.clone()),
            ConstExpr::Index { of, .. } => Some(of.dims(model)?.get(1..)?.to_vec()),
            ConstExpr::Transpose { of, perm } => {
                let d = of.dims(model)?;
                (perm.len() == d.len())
                    .then(|| perm.iter().map(|&p| d.get(p).copied()).collect())?
            }
            ConstExpr::Reshape { of, dims } => {
                (count(&of.dims(model)?)? == count(dims)?).then(|| dims.clone())
            }
            ConstExpr::Slice {
                of,
                axis,
                start,
                end,
            } => {
                let mut d = of.dims(model)?;
                let n = *d.get(*axis)?;
                (0 <= *start && start <= end && *end <= n).then_some(())?;
                d[*axis] = end - start;
                Some(d)
            }
        }
    }

    /// The constant's data.
    pub(crate) fn eval(&self, model: &Model) -> Option<HostTensor> {
        match self {
            ConstExpr::Value(v) => HostTensor::from_proto(leaf_tensor(model, *v)?),
            ConstExpr::Small(c) => HostTensor::from_proto(&c.to_proto()),
            ConstExpr::Index { of, index } => of.eval(model)?.index0(*index),
            ConstExpr::Transpose { of, perm } => of.eval(model)?.transpose(perm),
            ConstExpr::Reshape { of, dims } => of.eval(model)?.reshape(dims),
            ConstExpr::Slice {
                of,
                axis,
                start,
                end,
            } => of.eval(model)?.slice(*axis, *start, *end, 1),
        }
    }

    /// The expert slices this constant takes: `(stack, index)` for every `Index` in it.
    pub(crate) fn expert_slices(&self) -> Vec<(&ConstExpr, i64)> {
        match self {
            ConstExpr::Value(_) | ConstExpr::Small(_) => Vec::new(),
            ConstExpr::Index { of, index } => {
                let mut v = of.expert_slices();
                v.push((of, *index));
                v
            }
            ConstExpr::Transpose { of, .. }
            | ConstExpr::Reshape { of, .. }
            | ConstExpr::Slice { of, .. } => of.expert_slices(),
        }
    }

    /// The same constant with every slice `index == from` of a stack re-pointed at `to`.
    pub(crate) fn reindexed(&self, from: i64, to: i64) -> ConstExpr {
        match self {
            ConstExpr::Value(_) | ConstExpr::Small(_) => self.clone(),
            ConstExpr::Index { of, index } => ConstExpr::Index {
                of: Box::new(of.reindexed(from, to)),
                index: if *index == from { to } else { *index },
            },
            ConstExpr::Transpose { of, perm } => ConstExpr::Transpose {
                of: Box::new(of.reindexed(from, to)),
                perm: perm.clone(),
            },
            ConstExpr::Reshape { of, dims } => ConstExpr::Reshape {
                of: Box::new(of.reindexed(from, to)),
                dims: dims.clone(),
            },
            ConstExpr::Slice {
                of,
                axis,
                start,
                end,
            } => ConstExpr::Slice {
                of: Box::new(of.reindexed(from, to)),
                axis: *axis,
                start: *start,
                end: *end,
            },
        }
    }

    /// A transposed 2-D view (`[a, b]` → `[b, a]`).
    pub(crate) fn transposed(self) -> ConstExpr {
        ConstExpr::Transpose {
            of: Box::new(self),
            perm: vec![1, 0],
        }
    }
}

/// The tensor of an initializer or of a `Constant` node's `value` attribute.
fn leaf_tensor(model: &Model, value: ValueId) -> Option<&TensorProto> {
    let v = model.value(value);
    if v.def() == ValueDef::Initializer {
        return v.initializer();
    }
    let (node, _) = v.producer()?;
    let node = model.node(node);
    (node.op_type() == "Constant" && node.domain().is_empty())
        .then(|| node.attribute("value")?.proto.t.as_deref())
        .flatten()
}

/// A scalar constant of a floating-point `dtype`.
pub(crate) fn scalar(dtype: DataType, v: f64) -> Option<ConstExpr> {
    let data = match dtype {
        DataType::Float => ConstData::F32(vec![v as f32]),
        DataType::Double => ConstData::F64(vec![v]),
        DataType::Float16 => ConstData::F16(vec![half::f16::from_f64(v)]),
        DataType::Bfloat16 => ConstData::BF16(vec![half::bf16::from_f64(v)]),
        _ => return None,
    };
    Some(ConstExpr::Small(Arc::new(ConstTensor::new(
        Vec::new(),
        data,
    )?)))
}
