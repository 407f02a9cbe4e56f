//! The rewritten model as tract-onnx can run it.
//!
//! tract-onnx 0.23.9 expands a float16 or bfloat16 `Gemm` into ops whose output is float32 and
//! then refuses the model ("Output mismatch after rewiring expansion ... expected F16 got F32");
//! onnxruntime runs the same model. The copy handed to tract has those Gemms as MatMul (+ Mul,
//! Add) by the gemm-to-matmul pass, which computes the same thing, so an fp16 model with linear
//! layers as Gemm can still be verified. The report says when this was done.

use onnx_rewrite_gemm_to_matmul::GemmToMatmulPass;
use onnx_rewrite_ir::{Model, ValueId};
use onnx_rewrite_pass::{Pass, PassContext};
use onnx_rewrite_proto::tensor_proto::DataType;
use onnx_rewrite_proto::type_proto::Value as Ty;

use super::VerifyError;

/// The serialized model for tract, and a note when it is not the model itself.
pub(crate) fn runnable_bytes(model: &Model) -> Result<(Vec<u8>, Option<String>), VerifyError> {
    let serialize = |m: &Model| {
        onnx_rewrite_ir::save::to_bytes(m).map_err(|e| VerifyError::Serialize(e.to_string()))
    };
    let gemms = low_precision_gemms(model);
    if gemms == 0 {
        return Ok((serialize(model)?, None));
    }
    let mut lowered = model.clone();
    // If the lowering declines or fails, tract gets the model itself and says what it cannot run.
    match GemmToMatmulPass.run(&mut lowered, &PassContext::default()) {
        Ok(_) if low_precision_gemms(&lowered) == 0 => Ok((
            serialize(&lowered)?,
            Some(format!(
                "tract-onnx cannot run a float16/bfloat16 Gemm: the copy verified has the {gemms} such Gemm node(s) as MatMul (+Add) by gemm-to-matmul"
            )),
        )),
        _ => Ok((serialize(model)?, None)),
    }
}

/// Gemm nodes, in every graph, with a float16 or bfloat16 operand.
fn low_precision_gemms(model: &Model) -> usize {
    model
        .graph_ids()
        .flat_map(|g| model.graph(g).nodes().to_vec())
        .map(|n| model.node(n))
        .filter(|n| n.domain().is_empty() && n.op_type() == "Gemm")
        .filter(|n| {
            n.inputs().iter().flatten().any(|v| {
                matches!(
                    elem_type(model, *v),
                    Some(DataType::Float16 | DataType::Bfloat16)
                )
            })
        })
        .count()
}

fn elem_type(model: &Model, value: ValueId) -> Option<DataType> {
    if let Some(t) = model.value(value).initializer() {
        return DataType::try_from(t.data_type()).ok();
    }
    if let Some((node, 0)) = model.value(value).producer() {
        let n = model.node(node);
        if n.domain().is_empty() && n.op_type() == "Constant" {
            let t = n.attribute("value")?.proto.t.as_ref()?;
            return DataType::try_from(t.data_type()).ok();
        }
    }
    match model.declared_type(value)?.value.as_ref()? {
        Ty::TensorType(t) => DataType::try_from(t.elem_type()).ok(),
        _ => None,
    }
}
