//! What the analysis knows about one value: dtype, shape, constant value, and (for small integer
//! tensors that are not fully constant) per-element symbolic values.

use std::sync::Arc;

use onnx_rewrite_proto::TypeProto;
use onnx_rewrite_proto::tensor_proto::DataType;
use onnx_rewrite_proto::tensor_shape_proto::dimension;
use onnx_rewrite_proto::type_proto;
use smallvec::SmallVec;

use super::Conflict;
use super::constant::{ConstData, ConstTensor};
use super::shape::Shape;
use super::symbols::{Dim, Symbols};

/// The elements of a small integer tensor, each a dim (known, or a symbol) or unknown (`None`).
///
/// This is how `Shape(x)` for `x: [N, 3]` is described: not a constant, but `[Sym N, Known 3]`,
/// so `Gather(Shape(x), 1)` folds to `3` and `Reshape(y, Concat(Shape(x)[0], [-1]))` has shape
/// `[N, ...]`. A `Sym` element always comes from a dimension, so it stands for a value `>= 0`.
pub type DimValues = SmallVec<[Option<Dim>; 4]>;

/// Facts about one value. `None` fields are unknown; `Default` knows nothing.
///
/// Invariants kept by every constructor here and by [`infer`](super::infer): a `constant`
/// agrees with `dtype` and `shape`; `shape_value` is only set when `constant` is not, on an
/// integer tensor whose shape has a known element count equal to its length.
#[derive(Clone, Default, Debug, PartialEq)]
pub struct ValueFacts {
    pub dtype: Option<DataType>,
    pub shape: Option<Shape>,
    pub constant: Option<Arc<ConstTensor>>,
    pub shape_value: Option<DimValues>,
}

impl ValueFacts {
    /// The facts a declared type states (graph inputs, value_info). Only dense tensor types say
    /// anything; a missing dim is a fresh symbol and a `dim_param` the symbol of that name.
    pub fn from_type(ty: &TypeProto, syms: &mut Symbols) -> Self {
        let Some(type_proto::Value::TensorType(t)) = &ty.value else {
            return Self::default();
        };
        let dtype = t
            .elem_type
            .and_then(|e| DataType::try_from(e).ok())
            .filter(|&d| d != DataType::Undefined);
        let shape = t.shape.as_ref().map(|s| {
            Shape::new(s.dim.iter().map(|d| match &d.value {
                Some(dimension::Value::DimValue(v)) if *v >= 0 => Dim::Known(*v),
                Some(dimension::Value::DimParam(name)) => Dim::Sym(syms.named(name)),
                _ => syms.fresh_dim(),
            }))
        });
        ValueFacts {
            dtype,
            shape,
            constant: None,
            shape_value: None,
        }
    }

    /// The facts of a known constant.
    pub fn of_constant(c: ConstTensor) -> Self {
        ValueFacts {
            dtype: Some(c.dtype),
            shape: Some(Shape::known(&c.dims)),
            constant: Some(Arc::new(c)),
            shape_value: None,
        }
    }

    /// Facts of an integer tensor of `shape` whose elements are `values`: a constant when every
    /// element is known, else a `shape_value`.
    pub fn of_dim_values(
        dtype: DataType,
        shape: Shape,
        values: DimValues,
        syms: &mut Symbols,
    ) -> Self {
        if let Some(dims) = shape.known_dims(syms)
            && let Some(c) = known_elements(dtype, dims, &values, syms)
        {
            return Self::of_constant(c);
        }
        let consistent = is_int(dtype)
            && shape
                .known_numel(syms)
                .is_some_and(|n| usize::try_from(n).is_ok_and(|n| n == values.len()));
        ValueFacts {
            dtype: Some(dtype),
            shape: Some(shape),
            constant: None,
            shape_value: consistent.then_some(values),
        }
    }

    /// The rank, if the shape is known.
    pub fn rank(&self) -> Option<usize> {
        self.shape.as_ref().map(Shape::rank)
    }

    /// The elements of an integer tensor as dims: from the constant, or from `shape_value`.
    pub fn dim_values(&self) -> Option<DimValues> {
        if let Some(c) = &self.constant {
            return Some(
                c.to_i64s()?
                    .into_iter()
                    .map(|v| Some(Dim::Known(v)))
                    .collect(),
            );
        }
        self.shape_value.clone()
    }

    /// Unify `other` into `self` (both describe one value): dtypes must agree, ranks must agree,
    /// dims unify, constants must be equal. Unknown ⊔ x = x.
    ///
    /// Returns whether `self` learnt something: a field that was unknown, a dim that was a free
    /// symbol and is now a value, an element that was unknown. Two free symbols becoming one
    /// class is not counted: facts read symbols through the union-find, so nothing needs
    /// recomputing, and counting it would let an e-graph rebuild cycle on fresh symbols.
    ///
    /// On a conflict `self` is left unchanged, but symbols unified before the conflict was
    /// found stay unified: the caller is expected to abandon the analysis.
    pub fn merge(&mut self, other: &ValueFacts, syms: &mut Symbols) -> Result<bool, Conflict> {
        let mut merged = self.clone();
        let mut changed = false;

        match (merged.dtype, other.dtype) {
            (Some(a), Some(b)) if a != b => {
                return Err(Conflict::new(format!(
                    "dtype {} vs {}",
                    dtype_name(a),
                    dtype_name(b)
                )));
            }
            (None, Some(b)) => {
                merged.dtype = Some(b);
                changed = true;
            }
            _ => {}
        }

        if let Some(b) = &other.shape {
            changed |= merge_shape(&mut merged.shape, b, syms)?;
        }

        match (&merged.constant, &other.constant) {
            (Some(a), Some(b)) if a != b => {
                return Err(Conflict::new("constant values differ"));
            }
            (None, Some(b)) => {
                merged.constant = Some(b.clone());
                changed = true;
            }
            _ => {}
        }

        // Against a constant, per-element dims teach `self` nothing (reconcile checks them);
        // otherwise they merge element by element.
        if let Some(b) = &other.shape_value
            && merged.constant.is_some()
        {
            merged.shape_value = Some(b.clone());
        } else if let Some(b) = &other.shape_value {
            match &mut merged.shape_value {
                Some(a) => {
                    if a.len() != b.len() {
                        return Err(Conflict::new(format!(
                            "shape value of {} elements vs {}",
                            a.len(),
                            b.len()
                        )));
                    }
                    for (i, (x, y)) in a.iter_mut().zip(b).enumerate() {
                        changed |= merge_element(x, *y, syms)
                            .map_err(|e| e.context(format!("element {i}")))?;
                    }
                }
                None => {
                    merged.shape_value = Some(b.clone());
                    changed = true;
                }
            }
        }

        changed |= merged.reconcile(syms)?;
        merged.canonicalize(syms);
        *self = merged;
        Ok(changed)
    }

    /// Every dim and element in canonical form, so equal facts compare equal.
    fn canonicalize(&mut self, syms: &mut Symbols) {
        if let Some(s) = &mut self.shape {
            for d in &mut s.0 {
                *d = syms.resolve(*d);
            }
        }
        if let Some(v) = &mut self.shape_value {
            for d in v.iter_mut().flatten() {
                *d = syms.resolve(*d);
            }
        }
    }

    /// [`merge`](Self::merge) for an e-graph analysis, which must also say whether `other`
    /// learnt something from `self` (egg's `DidMerge(a, b)`): returns `(self changed, other
    /// would change)`.
    pub fn merge_both(
        &mut self,
        other: &ValueFacts,
        syms: &mut Symbols,
    ) -> Result<(bool, bool), Conflict> {
        let a_changed = self.merge(other, syms)?;
        // The symbols are already unified, so this second merge only measures.
        let b_changed = other.clone().merge(self, syms)?;
        Ok((a_changed, b_changed))
    }

    /// Makes the constant, dtype, shape and shape value agree (after a merge brought them
    /// from different sources); returns whether anything was learnt.
    fn reconcile(&mut self, syms: &mut Symbols) -> Result<bool, Conflict> {
        let mut changed = false;
        if let Some(c) = self.constant.clone() {
            if let Some(d) = self.dtype
                && d != c.dtype
            {
                return Err(Conflict::new(format!(
                    "dtype {} vs constant of {}",
                    dtype_name(d),
                    dtype_name(c.dtype)
                )));
            }
            self.dtype = Some(c.dtype);
            changed |= merge_shape(&mut self.shape, &Shape::known(&c.dims), syms)?;
            if let Some(sv) = self.shape_value.take() {
                let Some(elems) = c.to_i64s() else {
                    return Err(Conflict::new("shape value vs a non-integer constant"));
                };
                if elems.len() != sv.len() {
                    return Err(Conflict::new("shape value and constant lengths differ"));
                }
                for (i, (x, v)) in sv.iter().zip(elems).enumerate() {
                    if let Some(x) = x {
                        syms.unify(*x, Dim::Known(v))
                            .map_err(|e| e.context(format!("element {i}")))?;
                    }
                }
            }
        } else if let (Some(sv), Some(shape), Some(dtype)) =
            (&self.shape_value, &self.shape, self.dtype)
        {
            // Every element may have become known through bindings: then it is a constant.
            if let Some(dims) = shape.known_dims(syms)
                && let Some(c) = known_elements(dtype, dims, sv, syms)
            {
                self.constant = Some(Arc::new(c));
                self.shape_value = None;
                changed = true;
            }
        }
        Ok(changed)
    }
}

/// Unifies shape `b` into `a`; returns whether `a` learnt something.
fn merge_shape(a: &mut Option<Shape>, b: &Shape, syms: &mut Symbols) -> Result<bool, Conflict> {
    let Some(a) = a else {
        *a = Some(b.clone());
        return Ok(true);
    };
    if a.rank() != b.rank() {
        return Err(Conflict::new(format!("rank {} vs {}", a.rank(), b.rank())));
    }
    let before: Vec<Dim> = a.0.iter().map(|&d| syms.resolve(d)).collect();
    for (i, (&x, &y)) in a.0.iter().zip(&b.0).enumerate() {
        syms.unify(x, y)
            .map_err(|e| e.context(format!("dim {i}")))?;
    }
    // Canonical form only after every unification: a later dim can bind an earlier symbol.
    let mut changed = false;
    for (x, b) in a.0.iter_mut().zip(before) {
        *x = syms.resolve(*x);
        changed |= matches!(b, Dim::Sym(_)) && matches!(x, Dim::Known(_));
    }
    Ok(changed)
}

fn merge_element(
    x: &mut Option<Dim>,
    y: Option<Dim>,
    syms: &mut Symbols,
) -> Result<bool, Conflict> {
    match (*x, y) {
        (Some(a), Some(b)) => {
            let before = syms.resolve(a);
            let u = syms.unify(a, b)?;
            *x = Some(u);
            Ok(matches!(before, Dim::Sym(_)) && matches!(u, Dim::Known(_)))
        }
        (None, Some(b)) => {
            *x = Some(b);
            Ok(true)
        }
        _ => Ok(false),
    }
}

/// A constant of `dtype` and `dims` from elements that are all known, else `None`.
pub(crate) fn known_elements(
    dtype: DataType,
    dims: Vec<i64>,
    values: &[Option<Dim>],
    syms: &mut Symbols,
) -> Option<ConstTensor> {
    let v: Vec<i64> = values
        .iter()
        .map(|d| d.and_then(|d| syms.value_of(d)))
        .collect::<Option<_>>()?;
    let data = match dtype {
        DataType::Int64 => ConstData::I64(v),
        DataType::Int32 => ConstData::I32(
            v.into_iter()
                .map(|x| i32::try_from(x).ok())
                .collect::<Option<_>>()?,
        ),
        _ => return None,
    };
    ConstTensor::new(dims, data)
}

/// Whether per-element dim values are tracked for this type.
pub(crate) fn is_int(dtype: DataType) -> bool {
    matches!(dtype, DataType::Int64 | DataType::Int32)
}

/// The lower-case ONNX name of a type (`float`, `int64`), as onnx's helpers print it.
pub fn dtype_name(d: DataType) -> String {
    d.as_str_name().to_ascii_lowercase()
}

#[cfg(test)]
mod tests {
    use super::*;
    use onnx_rewrite_proto::TensorShapeProto;
    use onnx_rewrite_proto::tensor_shape_proto::Dimension;

    fn tensor_type(elem: DataType, dims: &[Option<dimension::Value>]) -> TypeProto {
        TypeProto {
            value: Some(type_proto::Value::TensorType(type_proto::Tensor {
                elem_type: Some(elem as i32),
                shape: Some(TensorShapeProto {
                    dim: dims
                        .iter()
                        .map(|v| Dimension {
                            denotation: None,
                            value: v.clone(),
                        })
                        .collect(),
                }),
            })),
            denotation: None,
        }
    }

    #[test]
    fn from_type_reads_params_values_and_gaps() {
        let mut syms = Symbols::new();
        let ty = tensor_type(
            DataType::Float,
            &[
                Some(dimension::Value::DimParam("N".into())),
                Some(dimension::Value::DimValue(3)),
                None,
            ],
        );
        let f = ValueFacts::from_type(&ty, &mut syms);
        assert_eq!(f.dtype, Some(DataType::Float));
        let s = f.shape.unwrap();
        assert_eq!(s.0[0], Dim::Sym(syms.named("N")));
        assert_eq!(s.0[1], Dim::Known(3));
        assert!(matches!(s.0[2], Dim::Sym(_)));
        assert_eq!(
            ValueFacts::from_type(&TypeProto::default(), &mut syms),
            ValueFacts::default()
        );
    }

    #[test]
    fn merge_learns_and_conflicts() {
        let mut syms = Symbols::new();
        let n = Dim::Sym(syms.named("N"));
        let mut a = ValueFacts {
            dtype: Some(DataType::Float),
            shape: Some(Shape::new([n, Dim::Known(768)])),
            ..Default::default()
        };
        let b = ValueFacts {
            dtype: None,
            shape: Some(Shape::known(&[2, 768])),
            ..Default::default()
        };
        assert!(a.merge(&b, &mut syms).unwrap());
        assert_eq!(syms.resolve(n), Dim::Known(2));
        assert!(!a.merge(&b, &mut syms).unwrap());

        let c = ValueFacts {
            shape: Some(Shape::known(&[2, 1024])),
            ..Default::default()
        };
        let err = a.merge(&c, &mut syms).unwrap_err();
        assert_eq!(err.to_string(), "dim 1: 768 vs 1024");
        let d = ValueFacts {
            dtype: Some(DataType::Int64),
            ..Default::default()
        };
        assert_eq!(
            a.merge(&d, &mut syms).unwrap_err().to_string(),
            "dtype float vs int64"
        );
        let e = ValueFacts::of_constant(ConstTensor::vector_i64(vec![1, 2]));
        let f = ValueFacts::of_constant(ConstTensor::vector_i64(vec![1, 3]));
        let mut g = e.clone();
        assert_eq!(
            g.merge(&f, &mut syms).unwrap_err().to_string(),
            "constant values differ"
        );
        assert_eq!(g, e, "unchanged on conflict");
    }

    #[test]
    fn shape_value_meets_constant() {
        let mut syms = Symbols::new();
        let n = Dim::Sym(syms.named("N"));
        let mut sv = ValueFacts::of_dim_values(
            DataType::Int64,
            Shape::known(&[2]),
            [Some(n), Some(Dim::Known(3))].into_iter().collect(),
            &mut syms,
        );
        assert!(sv.constant.is_none());
        let c = ValueFacts::of_constant(ConstTensor::vector_i64(vec![5, 3]));
        assert!(sv.merge(&c, &mut syms).unwrap());
        assert_eq!(syms.resolve(n), Dim::Known(5));
        assert_eq!(sv, c);

        // A binding learnt elsewhere turns a shape value into a constant on the next merge.
        let m = Dim::Sym(syms.named("M"));
        let mut sv = ValueFacts::of_dim_values(
            DataType::Int64,
            Shape::known(&[1]),
            [Some(m)].into_iter().collect(),
            &mut syms,
        );
        syms.unify(m, Dim::Known(7)).unwrap();
        assert!(sv.merge(&ValueFacts::default(), &mut syms).unwrap());
        assert_eq!(sv.constant.unwrap().to_i64s().unwrap(), vec![7]);
    }
}
