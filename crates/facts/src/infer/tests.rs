//! Inference by op family, with symbolic shapes and folding.

use onnx_rewrite_proto::attribute_proto::AttributeType;
use onnx_rewrite_proto::{AttributeProto, TensorProto};

use std::cell::{Cell, RefCell};

use super::*;
use crate::constant::ConstData;

fn attr_i(name: &str, v: i64) -> AttributeProto {
    AttributeProto {
        name: Some(name.into()),
        r#type: Some(AttributeType::Int as i32),
        i: Some(v),
        ..Default::default()
    }
}

fn attr_is(name: &str, v: &[i64]) -> AttributeProto {
    AttributeProto {
        name: Some(name.into()),
        r#type: Some(AttributeType::Ints as i32),
        ints: v.to_vec(),
        ..Default::default()
    }
}

fn attr_f(name: &str, v: f32) -> AttributeProto {
    AttributeProto {
        name: Some(name.into()),
        r#type: Some(AttributeType::Float as i32),
        f: Some(v),
        ..Default::default()
    }
}

fn attr_fs(name: &str, v: &[f32]) -> AttributeProto {
    AttributeProto {
        name: Some(name.into()),
        r#type: Some(AttributeType::Floats as i32),
        floats: v.to_vec(),
        ..Default::default()
    }
}

fn attr_s(name: &str, v: &str) -> AttributeProto {
    AttributeProto {
        name: Some(name.into()),
        r#type: Some(AttributeType::String as i32),
        s: Some(v.as_bytes().to_vec().into()),
        ..Default::default()
    }
}

fn attr_t(name: &str, t: TensorProto) -> AttributeProto {
    AttributeProto {
        name: Some(name.into()),
        r#type: Some(AttributeType::Tensor as i32),
        t: Some(Box::new(t)),
        ..Default::default()
    }
}

/// A test harness: one symbol table, ops run at a chosen opset.
/// Interior mutability lets a test build inputs inside the call that uses them.
struct T {
    syms: RefCell<Symbols>,
    opset: Cell<i64>,
}

impl T {
    fn new() -> Self {
        T {
            syms: RefCell::new(Symbols::new()),
            opset: Cell::new(21),
        }
    }

    fn dim(&self, s: &str) -> Dim {
        let mut syms = self.syms.borrow_mut();
        match s.parse::<i64>() {
            Ok(v) => Dim::Known(v),
            Err(_) if s == "?" => syms.fresh_dim(),
            Err(_) => Dim::Sym(syms.named(s)),
        }
    }

    /// A tensor of `dtype` and dims written like `"N,S,768"` (`""` is a scalar).
    fn t(&self, dtype: DataType, dims: &str) -> ValueFacts {
        let shape = if dims.is_empty() {
            Shape::scalar()
        } else {
            Shape::new(dims.split(',').map(|d| self.dim(d)).collect::<Vec<_>>())
        };
        ValueFacts {
            dtype: Some(dtype),
            shape: Some(shape),
            ..Default::default()
        }
    }

    fn f(&self, dims: &str) -> ValueFacts {
        self.t(DataType::Float, dims)
    }

    fn run(
        &self,
        op: &str,
        attrs: &[AttributeProto],
        inputs: &[Option<&ValueFacts>],
        outputs: usize,
    ) -> Vec<ValueFacts> {
        let info = OpInfo {
            domain: "",
            op_type: op,
            attributes: attrs,
            opset: self.opset.get(),
            outputs,
        };
        let out = infer(
            &info,
            inputs,
            &mut self.syms.borrow_mut(),
            &Limits::default(),
        );
        assert_eq!(out.len(), outputs);
        out
    }

    fn run1(&self, op: &str, attrs: &[AttributeProto], inputs: &[&ValueFacts]) -> ValueFacts {
        let inputs: Vec<Option<&ValueFacts>> = inputs.iter().map(|f| Some(*f)).collect();
        self.run(op, attrs, &inputs, 1).remove(0)
    }

    /// Dims as text: `[N,S,12,64]`, `?` for an anonymous symbol, `-` for an unknown rank.
    fn dims(&self, f: &ValueFacts) -> String {
        match &f.shape {
            None => "-".into(),
            Some(s) => {
                let mut syms = self.syms.borrow_mut();
                let parts: Vec<String> = s.0.iter().map(|&d| syms.display(d).to_string()).collect();
                format!("[{}]", parts.join(","))
            }
        }
    }

    /// Per-element dims as text, `dims(N,3)`.
    fn values(&self, f: &ValueFacts) -> String {
        let Some(v) = f.dim_values() else {
            return "-".into();
        };
        let mut syms = self.syms.borrow_mut();
        let parts: Vec<String> = v
            .iter()
            .map(|d| d.map_or_else(|| "?".into(), |d| syms.display(d).to_string()))
            .collect();
        parts.join(",")
    }
}

fn ints(dims: &[i64], v: &[i64]) -> ValueFacts {
    ValueFacts::of_constant(ConstTensor::new(dims.to_vec(), ConstData::I64(v.to_vec())).unwrap())
}

fn vec_i64(v: &[i64]) -> ValueFacts {
    ints(&[v.len() as i64], v)
}

fn floats(dims: &[i64], v: &[f32]) -> ValueFacts {
    ValueFacts::of_constant(ConstTensor::new(dims.to_vec(), ConstData::F32(v.to_vec())).unwrap())
}

fn const_i64s(f: &ValueFacts) -> Vec<i64> {
    f.constant.as_ref().expect("a constant").to_i64s().unwrap()
}

#[test]
fn reshape_copies_and_infers_over_symbols() {
    let t = T::new();
    let x = t.f("N,S,768");
    let out = t.run1("Reshape", &[], &[&x, &vec_i64(&[0, 0, 12, 64])]);
    assert_eq!(t.dims(&out), "[N,S,12,64]");
    assert_eq!(out.dtype, Some(DataType::Float));

    let back = t.run1("Reshape", &[], &[&out, &vec_i64(&[0, 0, -1])]);
    assert_eq!(t.dims(&back), "[N,S,768]");

    // [N, S, 768] -> [-1, 768]: the product N*S is no single dim.
    let flat = t.run1("Reshape", &[], &[&x, &vec_i64(&[-1, 768])]);
    assert_eq!(t.dims(&flat), "[?,768]");

    // allowzero keeps a literal 0; before opset 14 the attribute does not exist.
    let z = t.run1(
        "Reshape",
        &[attr_i("allowzero", 1)],
        &[&x, &vec_i64(&[0, 768])],
    );
    assert_eq!(t.dims(&z), "[0,768]");
    t.opset.set(5);
    let z = t.run1(
        "Reshape",
        &[attr_i("allowzero", 1)],
        &[&x, &vec_i64(&[0, 768])],
    );
    assert_eq!(t.dims(&z), "[N,768]");

    // Opset 1 reads the shape attribute; an unknown target of known length gives the rank.
    t.opset.set(4);
    let a = t.run1("Reshape", &[attr_is("shape", &[-1])], &[&x]);
    assert_eq!(t.dims(&a), "[?]");
    t.opset.set(21);
    let target = t.t(DataType::Int64, "3");
    let r = t.run1("Reshape", &[], &[&x, &target]);
    assert_eq!(t.dims(&r), "[?,?,?]");
    // Two -1s or a -2 are invalid: nothing is claimed.
    assert_eq!(t.dims(&t_run_reshape(&t, &x, &[-1, -1])), "-");
    assert_eq!(t.dims(&t_run_reshape(&t, &x, &[-2, 768])), "-");
}

fn t_run_reshape(t: &T, x: &ValueFacts, target: &[i64]) -> ValueFacts {
    t.run1("Reshape", &[], &[x, &vec_i64(target)])
}

#[test]
fn reshape_of_a_constant_folds() {
    let t = T::new();
    let c = ints(&[2, 2], &[1, 2, 3, 4]);
    let r = t.run1("Reshape", &[], &[&c, &vec_i64(&[-1])]);
    assert_eq!(r.constant.unwrap().dims, vec![4]);
}

#[test]
fn shape_gather_folds_known_dims_only() {
    let t = T::new();
    let x = t.f("N,3");
    let s = t.run1("Shape", &[], &[&x]);
    assert!(s.constant.is_none());
    assert_eq!(t.dims(&s), "[2]");
    assert_eq!(t.values(&s), "N,3");

    let three = t.run1("Gather", &[], &[&s, &ints(&[], &[1])]);
    assert_eq!(const_i64s(&three), vec![3]);
    assert_eq!(t.dims(&three), "[]");

    let n = t.run1("Gather", &[], &[&s, &ints(&[], &[-2])]);
    assert!(n.constant.is_none());
    assert_eq!(t.values(&n), "N");

    // A fully known shape is a constant; opset 15 start/end select part of it.
    let y = t.f("2,3,4");
    let s = t.run1("Shape", &[], &[&y]);
    assert_eq!(const_i64s(&s), vec![2, 3, 4]);
    let s = t.run1("Shape", &[attr_i("start", -2)], &[&y]);
    assert_eq!(const_i64s(&s), vec![3, 4]);
    let s = t.run1("Shape", &[attr_i("start", 2), attr_i("end", 1)], &[&y]);
    assert_eq!(const_i64s(&s), Vec::<i64>::new());
    t.opset.set(14);
    let s = t.run1("Shape", &[attr_i("start", 1)], &[&y]);
    assert_eq!(
        const_i64s(&s),
        vec![2, 3, 4],
        "start is ignored before opset 15"
    );

    let size = t.run1("Size", &[], &[&y]);
    assert_eq!(const_i64s(&size), vec![24]);
    let size = t.run1("Size", &[], &[&x]);
    assert_eq!(t.dims(&size), "[]");
    assert!(size.constant.is_none());
}

#[test]
fn computed_shapes_drive_reshape_and_expand() {
    let t = T::new();
    let x = t.f("N,S,768");
    let shape = t.run1("Shape", &[], &[&x]);
    let n = t.run1("Gather", &[attr_i("axis", 0)], &[&shape, &ints(&[], &[0])]);
    let n1 = t.run1("Unsqueeze", &[], &[&n, &vec_i64(&[0])]);
    assert_eq!(t.values(&n1), "N");
    let target = t.run1("Concat", &[attr_i("axis", 0)], &[&n1, &vec_i64(&[-1, 64])]);
    assert_eq!(t.values(&target), "N,-1,64");
    let r = t.run1("Reshape", &[], &[&x, &target]);
    assert_eq!(t.dims(&r), "[N,?,64]");

    // Slice of a shape, then Expand to it.
    let hw = t.run1(
        "Slice",
        &[],
        &[&shape, &vec_i64(&[1]), &vec_i64(&[i64::MAX])],
    );
    assert_eq!(t.values(&hw), "S,768");
    let one = t.f("1,1");
    let e = t.run1("Expand", &[], &[&one, &hw]);
    assert_eq!(t.dims(&e), "[S,768]");

    // Cast to int32 and back keeps the elements.
    let c = t.run1("Cast", &[attr_i("to", DataType::Int32 as i64)], &[&hw]);
    assert_eq!(c.dtype, Some(DataType::Int32));
    assert_eq!(t.values(&c), "S,768");

    // Arithmetic on shape elements: x + 0, x * 1 stay symbolic; known parts fold.
    let twice = t.run1("Mul", &[], &[&hw, &vec_i64(&[1, 2])]);
    assert_eq!(t.values(&twice), "S,1536");
    let sum = t.run1("Add", &[], &[&hw, &vec_i64(&[1, 0])]);
    assert_eq!(t.values(&sum), "?,768");

    // A dim is never -1: Equal(shape, -1) is known false (the pattern of exported reshapes).
    let eq = t.run1("Equal", &[], &[&shape, &vec_i64(&[-1])]);
    assert_eq!(
        eq.constant.unwrap().data,
        ConstData::Bool(vec![false, false, false])
    );
    let eq = t.run1("Equal", &[], &[&shape, &vec_i64(&[768])]);
    assert!(eq.constant.is_none(), "N == 768 is not known");

    // Where with a known condition picks elements.
    let cond = ValueFacts::of_constant(
        ConstTensor::new(vec![3], ConstData::Bool(vec![true, false, false])).unwrap(),
    );
    let w = t.run1("Where", &[], &[&cond, &vec_i64(&[1, 2, 3]), &shape]);
    assert_eq!(t.values(&w), "1,S,768");

    // Product of dims: ReduceProd over a shape is a dim when only one symbol is left.
    let prod = t.run1("ReduceProd", &[attr_i("keepdims", 0)], &[&hw]);
    assert_eq!(t.values(&prod), "?");
    let sv = t.run1("Slice", &[], &[&shape, &vec_i64(&[0]), &vec_i64(&[1])]);
    let prod = t.run1("ReduceProd", &[attr_i("keepdims", 0)], &[&sv]);
    assert_eq!(t.values(&prod), "N");

    // Everything known: a constant.
    let y = t.f("2,N");
    let sy = t.run1("Shape", &[], &[&y]);
    let first = t.run1("Slice", &[], &[&sy, &vec_i64(&[0]), &vec_i64(&[1])]);
    assert_eq!(const_i64s(&first), vec![2]);
}

#[test]
fn broadcasting_ops() {
    let t = T::new();
    let a = t.f("N,1,3");
    let b = t.f("4,3");
    let out = t.run1("Add", &[], &[&a, &b]);
    assert_eq!(t.dims(&out), "[N,4,3]");
    let m = t.f("M");
    let n = t.f("N");
    let out = t.run1("Mul", &[], &[&n, &m]);
    assert_eq!(t.dims(&out), "[?]");
    let out = t.run1("Mul", &[], &[&n, &n]);
    assert_eq!(t.dims(&out), "[N]");
    let out = t.run1("Less", &[], &[&a, &b]);
    assert_eq!(out.dtype, Some(DataType::Bool));
    let bad = t.run1("Add", &[], &[&t.f("2"), &t.f("3")]);
    assert_eq!(t.dims(&bad), "-");
    assert_eq!(bad.dtype, Some(DataType::Float));

    // Legacy broadcasting (opset < 7) gives A's shape.
    t.opset.set(6);
    let x = t.f("2,3");
    let y = t.f("3");
    let out = t.run1("Add", &[attr_i("broadcast", 1)], &[&x, &y]);
    assert_eq!(t.dims(&out), "[2,3]");
    t.opset.set(21);

    let c = t.t(DataType::Bool, "N,1");
    let w = t.run1("Where", &[], &[&c, &t.f("1,5"), &t.f("")]);
    assert_eq!(t.dims(&w), "[N,5]");
    let s = t.run1("Sum", &[], &[&t.f("3,1"), &t.f("1,4"), &t.f("4")]);
    assert_eq!(t.dims(&s), "[3,4]");
    let p = t.run1("Pow", &[], &[&t.f("2"), &t.t(DataType::Int64, "")]);
    assert_eq!(p.dtype, Some(DataType::Float));
}

#[test]
fn integer_arithmetic_folds_like_onnx_runtime() {
    let t = T::new();
    let a = vec_i64(&[7, -7, 7, -7]);
    let b = vec_i64(&[2, 2, -2, -2]);
    let d = t.run1("Div", &[], &[&a, &b]);
    assert_eq!(const_i64s(&d), vec![3, -3, -3, 3], "truncates toward zero");
    let m = t.run1("Mod", &[], &[&a, &b]);
    assert_eq!(const_i64s(&m), vec![1, 1, -1, -1], "sign of the divisor");
    let m = t.run1("Mod", &[attr_i("fmod", 1)], &[&a, &b]);
    assert_eq!(const_i64s(&m), vec![1, -1, 1, -1], "sign of the dividend");
    let z = t.run1("Div", &[], &[&a, &ints(&[], &[0])]);
    assert!(z.constant.is_none());
    assert_eq!(t.dims(&z), "[4]");
    let o = t.run1("Add", &[], &[&ints(&[], &[i64::MAX]), &ints(&[], &[1])]);
    assert!(o.constant.is_none());
    let n = t.run1("Neg", &[], &[&ints(&[], &[i64::MIN])]);
    assert!(n.constant.is_none());
    let mx = t.run1("Max", &[], &[&a, &b, &ints(&[], &[0])]);
    assert_eq!(const_i64s(&mx), vec![7, 2, 7, 0]);
    let f = t.run1("Sqrt", &[], &[&floats(&[], &[16.0])]);
    assert_eq!(f.constant.unwrap().data, ConstData::F32(vec![4.0]));
    let r = t.run1("Reciprocal", &[], &[&floats(&[], &[4.0])]);
    assert_eq!(r.constant.unwrap().data, ConstData::F32(vec![0.25]));
    let e = t.run1("Exp", &[], &[&floats(&[], &[1.0])]);
    assert!(e.constant.is_none(), "transcendentals depend on the libm");
}

#[test]
fn logic_and_comparisons_fold() {
    let t = T::new();
    let b = |v: &[bool]| {
        ValueFacts::of_constant(
            ConstTensor::new(vec![v.len() as i64], ConstData::Bool(v.to_vec())).unwrap(),
        )
    };
    let x = b(&[true, false]);
    let y = b(&[true, true]);
    assert_eq!(
        t.run1("And", &[], &[&x, &y]).constant.unwrap().data,
        ConstData::Bool(vec![true, false])
    );
    assert_eq!(
        t.run1("Or", &[], &[&x, &y]).constant.unwrap().data,
        ConstData::Bool(vec![true, true])
    );
    assert_eq!(
        t.run1("Xor", &[], &[&x, &y]).constant.unwrap().data,
        ConstData::Bool(vec![false, true])
    );
    assert_eq!(
        t.run1("Not", &[], &[&x]).constant.unwrap().data,
        ConstData::Bool(vec![false, true])
    );
    let l = t.run1("Less", &[], &[&vec_i64(&[1, 5]), &ints(&[], &[3])]);
    assert_eq!(l.constant.unwrap().data, ConstData::Bool(vec![true, false]));
    let g = t.run1(
        "GreaterOrEqual",
        &[],
        &[&vec_i64(&[1, 3]), &ints(&[], &[3])],
    );
    assert_eq!(g.constant.unwrap().data, ConstData::Bool(vec![false, true]));
    let w = t.run1("Where", &[], &[&x, &vec_i64(&[1, 2]), &ints(&[], &[9])]);
    assert_eq!(const_i64s(&w), vec![1, 9]);
}

#[test]
fn casts() {
    let t = T::new();
    let x = floats(&[3], &[1.5, -1.5, 2.0]);
    let c = t.run1("Cast", &[attr_i("to", DataType::Int64 as i64)], &[&x]);
    assert_eq!(const_i64s(&c), vec![1, -1, 2]);
    let like = t.t(DataType::Int32, "?");
    let c = t.run1("CastLike", &[], &[&x, &like]);
    assert_eq!(c.constant.unwrap().data, ConstData::I32(vec![1, -1, 2]));
    let big = floats(&[1], &[1e20]);
    let c = t.run1("Cast", &[attr_i("to", DataType::Int32 as i64)], &[&big]);
    assert!(
        c.constant.is_none(),
        "out of range: undefined in C++, not folded"
    );
    assert_eq!(c.dtype, Some(DataType::Int32));
    let s = t.f("N");
    let c = t.run1("Cast", &[attr_i("to", DataType::Float16 as i64)], &[&s]);
    assert_eq!(
        (c.dtype, t.dims(&c)),
        (Some(DataType::Float16), "[N]".into())
    );
    let c = t.run1("Cast", &[attr_i("to", 999)], &[&s]);
    assert_eq!(c.dtype, None);
}

#[test]
fn matmul_and_gemm() {
    let t = T::new();
    let cases = [
        ("B,S,64", "64,128", "[B,S,128]"),
        ("64", "64,128", "[128]"),
        ("S,64", "64", "[S]"),
        ("64", "64", "[]"),
        ("2,1,S,8", "3,8,S", "[2,3,S,S]"),
        ("B,4,5", "B,5,6", "[B,4,6]"),
    ];
    for (a, b, want) in cases {
        let (a, b) = (t.f(a), t.f(b));
        let out = t.run1("MatMul", &[], &[&a, &b]);
        assert_eq!(t.dims(&out), want);
    }
    let bad = t.run1("MatMul", &[], &[&t.f(""), &t.f("3")]);
    assert_eq!(t.dims(&bad), "-");
    let a = t.f("K,M");
    let b = t.f("N,K");
    let out = t.run1(
        "Gemm",
        &[attr_i("transA", 1), attr_i("transB", 1)],
        &[&a, &b, &t.f("N")],
    );
    assert_eq!(t.dims(&out), "[M,N]");
    let out = t.run1("Gemm", &[], &[&t.f("M,K"), &t.f("K,N")]);
    assert_eq!(t.dims(&out), "[M,N]");
    let i = t.t(DataType::Uint8, "2,3");
    let out = t.run1("MatMulInteger", &[], &[&i, &t.t(DataType::Uint8, "3,4")]);
    assert_eq!(
        (out.dtype, t.dims(&out)),
        (Some(DataType::Int32), "[2,4]".into())
    );
}

#[test]
fn einsum() {
    let t = T::new();
    let eq = |s: &str| attr_s("equation", s);
    let out = t.run1(
        "Einsum",
        &[eq("bij,bjk->bik")],
        &[&t.f("B,2,3"), &t.f("B,3,4")],
    );
    assert_eq!(t.dims(&out), "[B,2,4]");
    let out = t.run1("Einsum", &[eq("ij,jk")], &[&t.f("2,3"), &t.f("3,4")]);
    assert_eq!(t.dims(&out), "[2,4]");
    let out = t.run1("Einsum", &[eq("...ij->...ji")], &[&t.f("N,5,2,3")]);
    assert_eq!(t.dims(&out), "[N,5,3,2]");
    let out = t.run1("Einsum", &[eq("ii->")], &[&t.f("3,3")]);
    assert_eq!(t.dims(&out), "[]");
    let out = t.run1("Einsum", &[eq("i..j->")], &[&t.f("3,3")]);
    assert_eq!(t.dims(&out), "-");
}

#[test]
fn transpose_concat_split() {
    let t = T::new();
    let x = t.f("N,S,H");
    let out = t.run1("Transpose", &[attr_is("perm", &[0, 2, 1])], &[&x]);
    assert_eq!(t.dims(&out), "[N,H,S]");
    let out = t.run1("Transpose", &[], &[&x]);
    assert_eq!(t.dims(&out), "[H,S,N]");
    let bad = t.run1("Transpose", &[attr_is("perm", &[0, 0, 1])], &[&x]);
    assert_eq!(t.dims(&bad), "-");
    let c = ints(&[2, 3], &[1, 2, 3, 4, 5, 6]);
    let ct = t.run1("Transpose", &[], &[&c]);
    assert_eq!(const_i64s(&ct), vec![1, 4, 2, 5, 3, 6]);

    let a = t.f("N,2");
    let b = t.f("?,3");
    let out = t.run1("Concat", &[attr_i("axis", -1)], &[&a, &b]);
    assert_eq!(t.dims(&out), "[N,5]");
    let out = t.run1("Concat", &[attr_i("axis", 0)], &[&a, &t.f("1,2")]);
    assert_eq!(t.dims(&out), "[?,2]");
    let out = t.run1(
        "Concat",
        &[attr_i("axis", 0)],
        &[&vec_i64(&[1]), &vec_i64(&[2, 3])],
    );
    assert_eq!(const_i64s(&out), vec![1, 2, 3]);
    let out = t.run1(
        "Concat",
        &[attr_i("axis", 1)],
        &[&ints(&[2, 1], &[1, 2]), &ints(&[2, 1], &[3, 4])],
    );
    assert_eq!(const_i64s(&out), vec![1, 3, 2, 4]);

    let x = t.f("N,10");
    let parts = t.run(
        "Split",
        &[attr_i("axis", 1)],
        &[Some(&x), Some(&vec_i64(&[3, 7]))],
        2,
    );
    assert_eq!(t.dims(&parts[0]), "[N,3]");
    assert_eq!(t.dims(&parts[1]), "[N,7]");
    let parts = t.run("Split", &[attr_i("axis", 1)], &[Some(&x)], 2);
    assert_eq!(t.dims(&parts[1]), "[N,5]");
    let parts = t.run(
        "Split",
        &[attr_i("axis", 1), attr_i("num_outputs", 3)],
        &[Some(&x)],
        3,
    );
    assert_eq!(
        (t.dims(&parts[0]), t.dims(&parts[2])),
        ("[N,4]".into(), "[N,2]".into())
    );
    t.opset.set(11);
    let parts = t.run(
        "Split",
        &[attr_i("axis", 1), attr_is("split", &[4, 6])],
        &[Some(&x)],
        2,
    );
    assert_eq!(t.dims(&parts[1]), "[N,6]");
    let parts = t.run("Split", &[attr_i("axis", 0)], &[Some(&x)], 2);
    assert_eq!(t.dims(&parts[0]), t.dims(&parts[1]), "equal unknown halves");
    t.opset.set(21);
    let sv = t.run(
        "Split",
        &[],
        &[Some(&vec_i64(&[1, 2, 3])), Some(&vec_i64(&[1, 2]))],
        2,
    );
    assert_eq!(const_i64s(&sv[1]), vec![2, 3]);
}

#[test]
fn squeeze_unsqueeze_flatten_by_opset() {
    let t = T::new();
    let x = t.f("N,1,3,1");
    let out = t.run1("Squeeze", &[], &[&x, &vec_i64(&[1, -1])]);
    assert_eq!(t.dims(&out), "[N,3]");
    let out = t.run1("Squeeze", &[], &[&x]);
    assert_eq!(t.dims(&out), "-", "N may be 1");
    let y = t.f("1,3,1");
    let out = t.run1("Squeeze", &[], &[&y]);
    assert_eq!(t.dims(&out), "[3]");
    let out = t.run1("Unsqueeze", &[], &[&t.f("N,3"), &vec_i64(&[0, -1])]);
    assert_eq!(t.dims(&out), "[1,N,3,1]");
    let out = t.run1("Unsqueeze", &[attr_is("axes", &[0])], &[&t.f("N")]);
    assert_eq!(t.dims(&out), "-", "opset 13 takes axes from an input");
    t.opset.set(11);
    let out = t.run1("Unsqueeze", &[attr_is("axes", &[0])], &[&t.f("N")]);
    assert_eq!(t.dims(&out), "[1,N]");
    let out = t.run1("Squeeze", &[attr_is("axes", &[1])], &[&x]);
    assert_eq!(t.dims(&out), "[N,3,1]");
    t.opset.set(21);
    let out = t.run1("Unsqueeze", &[], &[&ints(&[], &[5]), &vec_i64(&[0])]);
    assert_eq!(out.constant.unwrap().dims, vec![1]);

    let out = t.run1("Flatten", &[], &[&t.f("N,3,4")]);
    assert_eq!(t.dims(&out), "[N,12]");
    let out = t.run1("Flatten", &[attr_i("axis", 0)], &[&t.f("N,3")]);
    assert_eq!(t.dims(&out), "[1,?]");
    let out = t.run1("Flatten", &[attr_i("axis", -1)], &[&t.f("2,3,4")]);
    assert_eq!(t.dims(&out), "[6,4]");
}

#[test]
fn slice() {
    let t = T::new();
    let x = t.f("N,10,8");
    let v = |s: &[i64]| vec_i64(s);
    let out = t.run1(
        "Slice",
        &[],
        &[&x, &v(&[0, 2]), &v(&[i64::MAX, -2]), &v(&[0, 1])],
    );
    assert_eq!(t.dims(&out), "[N,6,8]");
    let out = t.run1(
        "Slice",
        &[],
        &[&x, &v(&[-1]), &v(&[i64::MIN]), &v(&[2]), &v(&[-1])],
    );
    assert_eq!(t.dims(&out), "[N,10,8]");
    let out = t.run1(
        "Slice",
        &[],
        &[&x, &v(&[-1]), &v(&[i64::MIN]), &v(&[0]), &v(&[-1])],
    );
    assert_eq!(t.dims(&out), "[N,10,8]", "a full reverse keeps the symbol");
    let out = t.run1("Slice", &[], &[&x, &v(&[1]), &v(&[i64::MAX]), &v(&[0])]);
    assert_eq!(t.dims(&out), "[?,10,8]");
    let out = t.run1("Slice", &[], &[&x, &v(&[0]), &v(&[7]), &v(&[2]), &v(&[3])]);
    assert_eq!(t.dims(&out), "[N,10,3]");
    let out = t.run1("Slice", &[], &[&x, &v(&[0]), &v(&[7]), &v(&[2]), &v(&[0])]);
    assert_eq!(t.dims(&out), "-", "step 0 is invalid");
    // Unknown bounds on known axes: only those dims are unknown.
    let starts = t.t(DataType::Int64, "1");
    let out = t.run1("Slice", &[], &[&x, &starts, &v(&[5]), &v(&[1])]);
    assert_eq!(t.dims(&out), "[N,?,8]");
    t.opset.set(9);
    let out = t.run1(
        "Slice",
        &[
            attr_is("starts", &[1]),
            attr_is("ends", &[3]),
            attr_is("axes", &[2]),
        ],
        &[&x],
    );
    assert_eq!(t.dims(&out), "[N,10,2]");
    t.opset.set(21);
    let c = vec_i64(&[0, 1, 2, 3, 4]);
    let out = t.run1(
        "Slice",
        &[],
        &[&c, &v(&[-1]), &v(&[i64::MIN]), &v(&[0]), &v(&[-2])],
    );
    assert_eq!(const_i64s(&out), vec![4, 2, 0]);
}

#[test]
fn gathers() {
    let t = T::new();
    let data = t.f("V,D");
    let idx = t.t(DataType::Int64, "B,S");
    let out = t.run1("Gather", &[], &[&data, &idx]);
    assert_eq!(t.dims(&out), "[B,S,D]");
    let out = t.run1("Gather", &[attr_i("axis", -1)], &[&data, &idx]);
    assert_eq!(t.dims(&out), "[V,B,S]");
    let c = ints(&[2, 3], &[1, 2, 3, 4, 5, 6]);
    let out = t.run1("Gather", &[attr_i("axis", 1)], &[&c, &vec_i64(&[2, 0])]);
    assert_eq!(const_i64s(&out), vec![3, 1, 6, 4]);
    let out = t.run1("Gather", &[], &[&c, &vec_i64(&[2])]);
    assert!(out.constant.is_none(), "out of range: not folded");
    let out = t.run1("GatherElements", &[], &[&data, &idx]);
    assert_eq!(t.dims(&out), "[B,S]");
    let nd_idx = t.t(DataType::Int64, "B,1");
    let out = t.run1("GatherND", &[], &[&t.f("V,D,E"), &nd_idx]);
    assert_eq!(t.dims(&out), "[B,D,E]");
    let out = t.run1(
        "GatherND",
        &[attr_i("batch_dims", 1)],
        &[&t.f("B,V,D"), &nd_idx],
    );
    assert_eq!(t.dims(&out), "[B,D]");
}

#[test]
fn reductions_by_opset() {
    let t = T::new();
    let x = t.f("N,S,H");
    let out = t.run1("ReduceMean", &[attr_is("axes", &[-1])], &[&x]);
    assert_eq!(
        t.dims(&out),
        "[1,1,1]",
        "opset 18 ignores the old attribute: reduce all"
    );
    let out = t.run1("ReduceMean", &[], &[&x, &vec_i64(&[-1])]);
    assert_eq!(t.dims(&out), "[N,S,1]");
    let out = t.run1(
        "ReduceMean",
        &[attr_i("keepdims", 0)],
        &[&x, &vec_i64(&[1])],
    );
    assert_eq!(t.dims(&out), "[N,H]");
    let out = t.run1("ReduceMax", &[attr_i("keepdims", 0)], &[&x]);
    assert_eq!(t.dims(&out), "[]");
    let out = t.run1("ReduceSum", &[attr_i("noop_with_empty_axes", 1)], &[&x]);
    assert_eq!(t.dims(&out), "[N,S,H]");
    let out = t.run1(
        "ReduceSum",
        &[attr_i("noop_with_empty_axes", 1)],
        &[&x, &vec_i64(&[])],
    );
    assert_eq!(t.dims(&out), "[N,S,H]");
    let axes = t.t(DataType::Int64, "1");
    let out = t.run1("ReduceSum", &[], &[&x, &axes]);
    assert_eq!(t.dims(&out), "[?,?,?]");
    t.opset.set(17);
    let out = t.run1("ReduceMean", &[attr_is("axes", &[-1])], &[&x]);
    assert_eq!(t.dims(&out), "[N,S,1]");
    t.opset.set(12);
    let out = t.run1(
        "ReduceSum",
        &[attr_is("axes", &[0]), attr_i("keepdims", 0)],
        &[&x],
    );
    assert_eq!(t.dims(&out), "[S,H]");
    t.opset.set(21);
    let c = ints(&[2, 2], &[1, 2, 3, 4]);
    let out = t.run1("ReduceSum", &[attr_i("keepdims", 0)], &[&c, &vec_i64(&[0])]);
    assert_eq!(const_i64s(&out), vec![4, 6]);
    let out = t.run1("ReduceProd", &[attr_i("keepdims", 0)], &[&c]);
    assert_eq!(const_i64s(&out), vec![24]);
    let out = t.run1("ArgMax", &[attr_i("axis", 1), attr_i("keepdims", 0)], &[&x]);
    assert_eq!(
        (out.dtype, t.dims(&out)),
        (Some(DataType::Int64), "[N,H]".into())
    );
}

#[test]
fn generators() {
    let t = T::new();
    let f = t.run1("Constant", &[attr_f("value_float", 2.5)], &[]);
    assert_eq!(f.constant.unwrap().data, ConstData::F32(vec![2.5]));
    let f = t.run1("Constant", &[attr_fs("value_floats", &[1.0, 2.0])], &[]);
    assert_eq!(t.dims(&f), "[2]");
    let f = t.run1("Constant", &[attr_is("value_ints", &[1, 2, 3])], &[]);
    assert_eq!(const_i64s(&f), vec![1, 2, 3]);
    let f = t.run1("Constant", &[attr_i("value_int", 7)], &[]);
    assert_eq!((t.dims(&f), const_i64s(&f)), ("[]".into(), vec![7]));
    let f = t.run1("Constant", &[attr_s("value_string", "hi")], &[]);
    assert_eq!((f.dtype, t.dims(&f)), (Some(DataType::String), "[]".into()));
    let big = TensorProto {
        dims: vec![100, 100],
        data_type: Some(DataType::Float as i32),
        raw_data: Some(vec![0u8; 40_000].into()),
        ..Default::default()
    };
    let f = t.run1("Constant", &[attr_t("value", big)], &[]);
    assert!(f.constant.is_none(), "over the limit");
    assert_eq!(t.dims(&f), "[100,100]");

    let out = t.run1("ConstantOfShape", &[], &[&vec_i64(&[2, 3])]);
    assert_eq!(out.constant.unwrap().data, ConstData::F32(vec![0.0; 6]));
    let one = TensorProto {
        dims: vec![1],
        data_type: Some(DataType::Int64 as i32),
        int64_data: vec![1],
        ..Default::default()
    };
    let x = t.f("N,4");
    let s = t.run1("Shape", &[], &[&x]);
    let out = t.run1("ConstantOfShape", &[attr_t("value", one)], &[&s]);
    assert_eq!(
        (out.dtype, t.dims(&out)),
        (Some(DataType::Int64), "[N,4]".into())
    );

    let out = t.run1(
        "Range",
        &[],
        &[&ints(&[], &[0]), &ints(&[], &[10]), &ints(&[], &[3])],
    );
    assert_eq!(const_i64s(&out), vec![0, 3, 6, 9]);
    let out = t.run1(
        "Range",
        &[],
        &[
            &floats(&[], &[0.0]),
            &floats(&[], &[1.0]),
            &floats(&[], &[0.25]),
        ],
    );
    assert_eq!((t.dims(&out), out.constant.is_none()), ("[4]".into(), true));
    let out = t.run1(
        "Range",
        &[],
        &[&ints(&[], &[0]), &ints(&[], &[10]), &ints(&[], &[0])],
    );
    assert_eq!(t.dims(&out), "[?]");

    let out = t.run1(
        "EyeLike",
        &[attr_i("dtype", DataType::Double as i64)],
        &[&t.f("3,3")],
    );
    assert_eq!(out.dtype, Some(DataType::Double));
    let out = t.run1("RandomNormal", &[attr_is("shape", &[2, 3])], &[]);
    assert_eq!(
        (out.dtype, t.dims(&out)),
        (Some(DataType::Float), "[2,3]".into())
    );
    let out = t.run1("RandomUniformLike", &[], &[&t.t(DataType::Double, "N")]);
    assert_eq!(
        (out.dtype, t.dims(&out)),
        (Some(DataType::Double), "[N]".into())
    );
}

#[test]
fn expand_tile_pad() {
    let t = T::new();
    let x = t.f("N,1");
    let out = t.run1("Expand", &[], &[&x, &vec_i64(&[1, 4])]);
    assert_eq!(t.dims(&out), "[N,4]");
    let out = t.run1("Expand", &[], &[&x, &vec_i64(&[3, 1, 1])]);
    assert_eq!(t.dims(&out), "[3,N,1]");
    let out = t.run1("Expand", &[], &[&ints(&[], &[7]), &vec_i64(&[2])]);
    assert_eq!(const_i64s(&out), vec![7, 7]);
    let out = t.run1("Tile", &[], &[&t.f("N,2"), &vec_i64(&[1, 3])]);
    assert_eq!(t.dims(&out), "[N,6]");
    let out = t.run1("Tile", &[], &[&vec_i64(&[1, 2]), &vec_i64(&[2])]);
    assert_eq!(const_i64s(&out), vec![1, 2, 1, 2]);
    let out = t.run1("Pad", &[], &[&t.f("N,3"), &vec_i64(&[0, 1, 0, 2])]);
    assert_eq!(t.dims(&out), "[N,6]");
    let out = t.run1(
        "Pad",
        &[],
        &[
            &t.f("N,3"),
            &vec_i64(&[1, -1]),
            &floats(&[], &[0.0]),
            &vec_i64(&[1]),
        ],
    );
    assert_eq!(t.dims(&out), "[N,3]");
    t.opset.set(10);
    let out = t.run1("Pad", &[attr_is("pads", &[1, 0, 1, 0])], &[&t.f("2,3")]);
    assert_eq!(t.dims(&out), "[4,3]");
}

#[test]
fn nn_ops() {
    let t = T::new();
    let x = t.f("N,3,32,32");
    let w = t.f("16,3,3,3");
    let out = t.run1("Conv", &[attr_is("pads", &[1, 1, 1, 1])], &[&x, &w]);
    assert_eq!(t.dims(&out), "[N,16,32,32]");
    let out = t.run1("Conv", &[attr_is("strides", &[2, 2])], &[&x, &w]);
    assert_eq!(t.dims(&out), "[N,16,15,15]");
    let out = t.run1(
        "Conv",
        &[
            attr_s("auto_pad", "SAME_UPPER"),
            attr_is("strides", &[2, 2]),
        ],
        &[&x, &w],
    );
    assert_eq!(t.dims(&out), "[N,16,16,16]");
    let out = t.run1(
        "MaxPool",
        &[
            attr_is("kernel_shape", &[2, 2]),
            attr_is("strides", &[2, 2]),
        ],
        &[&x],
    );
    assert_eq!(t.dims(&out), "[N,3,16,16]");
    let pool = t.run(
        "MaxPool",
        &[
            attr_is("kernel_shape", &[3, 3]),
            attr_is("strides", &[2, 2]),
            attr_i("ceil_mode", 1),
        ],
        &[Some(&t.f("1,1,4,4"))],
        2,
    );
    assert_eq!(t.dims(&pool[0]), "[1,1,2,2]");
    assert_eq!(pool[1].dtype, Some(DataType::Int64));
    let out = t.run1("GlobalAveragePool", &[], &[&x]);
    assert_eq!(t.dims(&out), "[N,3,1,1]");
    let out = t.run1(
        "ConvTranspose",
        &[attr_is("strides", &[2, 2])],
        &[&t.f("N,16,8,8"), &t.f("16,4,3,3")],
    );
    assert_eq!(t.dims(&out), "[N,4,17,17]");

    let ln = t.run(
        "LayerNormalization",
        &[attr_i("axis", -1)],
        &[Some(&t.f("B,S,H"))],
        3,
    );
    assert_eq!(t.dims(&ln[0]), "[B,S,H]");
    assert_eq!(
        (ln[1].dtype, t.dims(&ln[1])),
        (Some(DataType::Float), "[B,S,1]".into())
    );
    let d = t.run("Dropout", &[], &[Some(&t.f("B,S"))], 2);
    assert_eq!(
        (d[1].dtype, t.dims(&d[1])),
        (Some(DataType::Bool), "[B,S]".into())
    );
    let sm = t.run1("Softmax", &[], &[&t.f("B,S")]);
    assert_eq!(t.dims(&sm), "[B,S]");
    let loss = t.run1(
        "SoftmaxCrossEntropyLoss",
        &[],
        &[&t.f("N,C"), &t.t(DataType::Int64, "N")],
    );
    assert_eq!(t.dims(&loss), "[]");
    let lstm = t.run(
        "LSTM",
        &[attr_i("hidden_size", 8)],
        &[Some(&t.f("S,B,4"))],
        3,
    );
    assert_eq!(
        (t.dims(&lstm[0]), t.dims(&lstm[2])),
        ("[S,1,B,8]".into(), "[1,B,8]".into())
    );
}

#[test]
fn selection_ops() {
    let t = T::new();
    let x = t.f("N,10");
    let k = vec_i64(&[3]);
    let out = t.run("TopK", &[], &[Some(&x), Some(&k)], 2);
    assert_eq!(
        (t.dims(&out[0]), out[1].dtype),
        ("[N,3]".into(), Some(DataType::Int64))
    );
    t.opset.set(9);
    let out = t.run("TopK", &[attr_i("k", 2), attr_i("axis", 0)], &[Some(&x)], 2);
    assert_eq!(t.dims(&out[1]), "[2,10]");
    t.opset.set(21);
    let nz = t.run1("NonZero", &[], &[&x]);
    assert_eq!(t.dims(&nz), "[2,?]");
    let oh = t.run1(
        "OneHot",
        &[],
        &[
            &t.t(DataType::Int64, "N"),
            &ints(&[], &[5]),
            &floats(&[2], &[0.0, 1.0]),
        ],
    );
    assert_eq!(t.dims(&oh), "[N,5]");
    let u = t.run("Unique", &[], &[Some(&x)], 4);
    assert_eq!(t.dims(&u[0]), t.dims(&u[1]));
    let r = t.run1(
        "Resize",
        &[],
        &[
            &t.f("N,3,4,4"),
            &floats(&[0], &[]),
            &floats(&[4], &[1.0, 1.0, 2.0, 0.5]),
        ],
    );
    assert_eq!(t.dims(&r), "[N,3,8,2]");
    let r = t.run1(
        "Resize",
        &[],
        &[
            &t.f("N,3,4,4"),
            &floats(&[0], &[]),
            &floats(&[0], &[]),
            &vec_i64(&[1, 3, 5, 6]),
        ],
    );
    assert_eq!(t.dims(&r), "[1,3,5,6]");
    let r = t.run1(
        "Resize",
        &[attr_is("axes", &[2, 3])],
        &[
            &t.f("N,3,4,4"),
            &floats(&[0], &[]),
            &floats(&[2], &[2.0, 2.0]),
        ],
    );
    assert_eq!(t.dims(&r), "[N,3,8,8]");
    t.opset.set(8);
    let r = t.run1(
        "Upsample",
        &[attr_fs("scales", &[1.0, 1.0, 2.0, 2.0])],
        &[&t.f("N,3,4,4")],
    );
    assert_eq!(t.dims(&r), "[N,3,8,8]");
}

#[test]
fn quantization_types() {
    let t = T::new();
    let x = t.f("N");
    let scale = t.f("");
    let zp = t.t(DataType::Int8, "");
    let q = t.run1("QuantizeLinear", &[], &[&x, &scale, &zp]);
    assert_eq!(q.dtype, Some(DataType::Int8));
    let q = t.run1("QuantizeLinear", &[], &[&x, &scale]);
    assert_eq!(q.dtype, Some(DataType::Uint8));
    let d = t.run1(
        "DequantizeLinear",
        &[],
        &[&t.t(DataType::Int8, "N"), &t.t(DataType::Float16, "")],
    );
    assert_eq!(
        (d.dtype, t.dims(&d)),
        (Some(DataType::Float16), "[N]".into())
    );
    t.opset.set(13);
    let d = t.run1(
        "DequantizeLinear",
        &[],
        &[&t.t(DataType::Int8, "N"), &t.t(DataType::Float16, "")],
    );
    assert_eq!(d.dtype, Some(DataType::Float));
}

#[test]
fn unknown_domains_and_missing_inputs() {
    let t = T::new();
    let x = t.f("N");
    let info = OpInfo {
        domain: "com.microsoft",
        op_type: "Add",
        attributes: &[],
        opset: 1,
        outputs: 3,
    };
    let out = infer(
        &info,
        &[Some(&x), Some(&x)],
        &mut t.syms.borrow_mut(),
        &Limits::default(),
    );
    assert_eq!(out, vec![ValueFacts::default(); 3]);
    // Missing inputs and too few inputs are unknowns, not panics.
    let out = t.run("Gemm", &[], &[None, None], 1);
    assert_eq!(out[0], ValueFacts::default());
    let out = t.run("Concat", &[attr_i("axis", 0)], &[], 1);
    assert_eq!(out[0].shape, None);
    let out = t.run("Where", &[], &[], 2);
    assert_eq!(out.len(), 2);
}

#[test]
fn function_attribute_references_are_not_defaults() {
    let t = T::new();
    let mut axis = attr_i("axis", 0);
    axis.ref_attr_name = Some("outer".into());
    let x = t.f("2,3");
    let out = t.run1("Softmax", &[], &[&x]);
    assert_eq!(t.dims(&out), "[2,3]");
    let out = t.run1("Gather", &[axis.clone()], &[&x, &vec_i64(&[0])]);
    assert_eq!(t.dims(&out), "-");
    let out = t.run1("Concat", &[axis], &[&x, &x]);
    assert_eq!(t.dims(&out), "-");
}

#[test]
fn limits_bound_folding() {
    let mut syms = Symbols::new();
    let info = OpInfo {
        domain: "",
        op_type: "ConstantOfShape",
        attributes: &[],
        opset: 21,
        outputs: 1,
    };
    let shape = vec_i64(&[1 << 40, 1 << 40]);
    let out = infer(&info, &[Some(&shape)], &mut syms, &Limits::default());
    assert!(out[0].constant.is_none());
    let shape = vec_i64(&[4]);
    let small = Limits {
        max_const_elements: 2,
    };
    let out = infer(&info, &[Some(&shape)], &mut syms, &small);
    assert!(out[0].constant.is_none());
    assert_eq!(out[0].shape, Some(Shape::known(&[4])));
}

#[test]
fn control_flow_uses_what_every_path_declares() {
    use onnx_rewrite_proto::tensor_shape_proto::{Dimension, dimension};
    use onnx_rewrite_proto::{GraphProto, TensorShapeProto, TypeProto, ValueInfoProto, type_proto};
    let out = |dtype: DataType, dims: &[i64]| ValueInfoProto {
        name: Some("o".into()),
        r#type: Some(TypeProto {
            denotation: None,
            value: Some(type_proto::Value::TensorType(type_proto::Tensor {
                elem_type: Some(dtype as i32),
                shape: Some(TensorShapeProto {
                    dim: dims
                        .iter()
                        .map(|&d| Dimension {
                            denotation: None,
                            value: Some(dimension::Value::DimValue(d)),
                        })
                        .collect(),
                }),
            })),
        }),
        ..Default::default()
    };
    let graph_attr = |name: &str, outputs: Vec<ValueInfoProto>| AttributeProto {
        name: Some(name.into()),
        r#type: Some(AttributeType::Graph as i32),
        g: Some(GraphProto {
            output: outputs,
            ..Default::default()
        }),
        ..Default::default()
    };
    let t = T::new();
    let cond = t.t(DataType::Bool, "");
    let attrs = [
        graph_attr(
            "then_branch",
            vec![out(DataType::Float, &[2, 3]), out(DataType::Int64, &[1])],
        ),
        graph_attr(
            "else_branch",
            vec![out(DataType::Float, &[2, 4]), out(DataType::Int32, &[1])],
        ),
    ];
    let o = t.run("If", &attrs, &[Some(&cond)], 2);
    assert_eq!(
        (o[0].dtype, t.dims(&o[0])),
        (Some(DataType::Float), "[2,?]".into())
    );
    assert_eq!((o[1].dtype, t.dims(&o[1])), (None, "[1]".into()));

    // Loop: a carried value keeps its type; a scan output gains a leading dim.
    let body = [graph_attr(
        "body",
        vec![
            out(DataType::Bool, &[]),
            ValueInfoProto::default(),
            out(DataType::Float, &[3]),
        ],
    )];
    let init = t.f("N");
    let o = t.run("Loop", &body, &[None, None, Some(&init)], 2);
    assert_eq!(
        (o[0].dtype, t.dims(&o[0])),
        (Some(DataType::Float), "-".into())
    );
    assert_eq!(
        (o[1].dtype, t.dims(&o[1])),
        (Some(DataType::Float), "[?,3]".into())
    );
}
