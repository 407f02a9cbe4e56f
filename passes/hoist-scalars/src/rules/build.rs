//! Small builders the rules share: int64 constants, and the few ops they emit, each in the form
//! the model's opset allows (attributes come from `onnx_rewrite_ir::edit::attr`).

use onnx_rewrite_egraph::Id;
use onnx_rewrite_egraph::language::OpData;
use onnx_rewrite_egraph::rule::RuleCx;
use onnx_rewrite_facts::ConstTensor;
use onnx_rewrite_ir::edit::attr;

/// An int64 initializer of shape `dims`.
pub fn i64_const(cx: &mut RuleCx<'_>, dims: &[i64], values: Vec<i64>, hint: &str) -> Id {
    let tensor = ConstTensor::new(dims.to_vec(), onnx_rewrite_facts::ConstData::I64(values))
        .expect("dims and values agree")
        .to_proto();
    cx.add_const(tensor, hint)
}

/// `x[start:end]` along `axis` (opset 10 and later, where Slice takes inputs).
pub fn slice(cx: &mut RuleCx<'_>, x: Id, start: i64, end: i64, axis: i64) -> Id {
    let starts = i64_const(cx, &[1], vec![start], "slice_starts");
    let ends = i64_const(cx, &[1], vec![end], "slice_ends");
    let axes = i64_const(cx, &[1], vec![axis], "slice_axes");
    cx.add_op(
        OpData::new("Slice", Vec::new(), 4),
        &[x, starts, ends, axes],
    )
}

/// `x` without dimension `axis` (of size 1): axes an input from opset 13, an attribute before.
pub fn squeeze(cx: &mut RuleCx<'_>, x: Id, axis: i64) -> Id {
    if cx.opset("") >= 13 {
        let axes = i64_const(cx, &[1], vec![axis], "squeeze_axes");
        cx.add_op(OpData::new("Squeeze", Vec::new(), 2), &[x, axes])
    } else {
        cx.add_op(
            OpData::new("Squeeze", vec![attr::ints("axes", &[axis])], 1),
            &[x],
        )
    }
}

/// `Reshape(x, dims)` with a constant target shape.
pub fn reshape(cx: &mut RuleCx<'_>, x: Id, dims: &[i64]) -> Id {
    let shape = i64_const(cx, &[dims.len() as i64], dims.to_vec(), "shape");
    cx.add_op(OpData::new("Reshape", Vec::new(), 2), &[x, shape])
}
