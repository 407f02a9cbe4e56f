//! The run behind `--verify`: random inputs, both models in tract-onnx, every output compared.

use std::path::PathBuf;

use onnx_rewrite_proto::tensor_proto::DataType;
use tract_onnx::prelude::*;

use super::{InputSpec, OutputCheck, Source, Tolerance, VerifyError, VerifyOptions, VerifyReport};

/// Runs both models on the same random inputs and compares every output.
pub(super) fn verify(
    specs: &[InputSpec],
    shapes: Vec<Vec<usize>>,
    original: Source<'_>,
    rewritten: Source<'_>,
    options: &VerifyOptions,
) -> Result<VerifyReport, VerifyError> {
    let mut rng = Rng::new(options.seed);
    let inputs: Vec<Tensor> = specs
        .iter()
        .zip(&shapes)
        .map(|(spec, shape)| random_tensor(spec, shape, &mut rng))
        .collect::<Result<_, _>>()?;

    let want = run(original, &inputs).map_err(|message| VerifyError::Tract {
        which: "original",
        message,
    })?;
    let got = run(rewritten, &inputs).map_err(|message| VerifyError::Tract {
        which: "rewritten",
        message,
    })?;
    if got.len() != want.len() {
        return Err(VerifyError::OutputCount {
            got: got.len(),
            want: want.len(),
        });
    }
    let tolerance = options.tolerance;
    let outputs: Vec<OutputCheck> = want
        .into_iter()
        .zip(got)
        .map(|((name, w), (_, g))| compare(name, &w, &g, tolerance))
        .collect();
    Ok(VerifyReport {
        tolerance,
        inputs: specs
            .iter()
            .zip(shapes)
            .map(|(s, shape)| (s.name.clone(), shape))
            .collect(),
        passed: outputs.iter().all(|o| o.within_tolerance),
        outputs,
        notes: Vec::new(),
    })
}

/// xorshift64*: deterministic, dependency-free, good enough for test inputs.
struct Rng(u64);

impl Rng {
    fn new(seed: u64) -> Self {
        Self(seed.wrapping_mul(6_364_136_223_846_793_005) | 1)
    }

    fn next(&mut self) -> u64 {
        self.0 ^= self.0 >> 12;
        self.0 ^= self.0 << 25;
        self.0 ^= self.0 >> 27;
        self.0.wrapping_mul(0x2545_f491_4f6c_dd1d)
    }

    /// Uniform in [-2, 2], in steps of 1/500 (exactly representable sums stay likely).
    fn float(&mut self) -> f64 {
        (self.next() % 2001) as f64 / 500.0 - 2.0
    }
}

/// A random tensor for one input. Integer inputs draw small non-negative values (token ids,
/// positions and indices are valid for any vocabulary of 8 or more); an integer input named
/// like a mask is all ones, since an all-masked row makes softmax NaN in both models and
/// compares nothing.
fn random_tensor(spec: &InputSpec, shape: &[usize], rng: &mut Rng) -> Result<Tensor, VerifyError> {
    let count: usize = shape.iter().product();
    let is_mask = spec.name.to_ascii_lowercase().contains("mask");
    let int = |rng: &mut Rng| {
        if is_mask { 1 } else { (rng.next() % 8) as i64 }
    };
    let tract = |e: TractError| VerifyError::Tract {
        which: "original",
        message: format!("input '{}': {e}", spec.name),
    };
    let tensor = match spec.dtype {
        DataType::Float => Tensor::from_shape(
            shape,
            &(0..count).map(|_| rng.float() as f32).collect::<Vec<_>>(),
        ),
        DataType::Double => {
            Tensor::from_shape(shape, &(0..count).map(|_| rng.float()).collect::<Vec<_>>())
        }
        DataType::Float16 => Tensor::from_shape(
            shape,
            &(0..count)
                .map(|_| f16::from_f64(rng.float()))
                .collect::<Vec<_>>(),
        ),
        DataType::Int64 => {
            Tensor::from_shape(shape, &(0..count).map(|_| int(rng)).collect::<Vec<_>>())
        }
        DataType::Int32 => Tensor::from_shape(
            shape,
            &(0..count).map(|_| int(rng) as i32).collect::<Vec<_>>(),
        ),
        DataType::Bool => Tensor::from_shape(
            shape,
            &(0..count)
                .map(|_| is_mask || rng.next().is_multiple_of(2))
                .collect::<Vec<_>>(),
        ),
        other => {
            return Err(VerifyError::Dtype(
                spec.name.clone(),
                other.as_str_name().to_owned(),
            ));
        }
    };
    tensor.map_err(tract)
}

/// Runs a model on `inputs`; the outputs with their names. Errors are tract's, as text.
fn run(source: Source<'_>, inputs: &[Tensor]) -> Result<Vec<(String, Tensor)>, String> {
    // The exporter's symbolic annotations (output shapes, value_info) would be unified with the
    // concrete input sizes and fail (`batch` against 2); they say nothing the run needs.
    let onnx = tract_onnx::onnx()
        .with_ignore_output_shapes(true)
        .with_ignore_value_info(true);
    let mut model = match source {
        Source::Path(path) => onnx.model_for_path(PathBuf::from(path)),
        Source::Bytes(bytes) => onnx.model_for_read(&mut &bytes[..]),
    }
    .map_err(|e| format!("{e:#}"))?;
    for (i, input) in inputs.iter().enumerate() {
        model = model
            .with_input_fact(
                i,
                InferenceFact::dt_shape(input.datum_type(), input.shape()),
            )
            .map_err(|e| format!("{e:#}"))?;
    }
    let names: Vec<String> = model
        .output_outlets()
        .map_err(|e| format!("{e:#}"))?
        .iter()
        .map(|o| {
            model
                .outlet_label(*o)
                .map_or_else(|| model.node(o.node).name.clone(), str::to_owned)
        })
        .collect();
    let plan = model
        .into_optimized()
        .and_then(|m| m.into_runnable())
        .map_err(|e| format!("{e:#}"))?;
    let outputs = plan
        .run(inputs.iter().cloned().map(TValue::from).collect())
        .map_err(|e| format!("{e:#}"))?;
    Ok(names
        .into_iter()
        .zip(outputs.into_iter().map(|v| v.into_tensor()))
        .collect())
}

fn compare(name: String, want: &Tensor, got: &Tensor, tolerance: Tolerance) -> OutputCheck {
    let mut check = OutputCheck {
        name,
        shape: want.shape().to_vec(),
        max_abs_error: 0.0,
        worst_ratio: 0.0,
        mismatches: 0,
        within_tolerance: false,
        problem: None,
    };
    if got.shape() != want.shape() {
        check.mismatches = 1;
        check.problem = Some(format!(
            "shape {:?}, the original's {:?}",
            got.shape(),
            want.shape()
        ));
        return check;
    }
    let (want, got) = match (want.cast_to::<f64>(), got.cast_to::<f64>()) {
        (Ok(w), Ok(g)) => (w, g),
        _ => {
            check.problem = Some(format!(
                "element type {:?} is not numeric",
                want.datum_type()
            ));
            return check;
        }
    };
    let (want, got) = match (
        want.to_plain_array_view::<f64>(),
        got.to_plain_array_view::<f64>(),
    ) {
        (Ok(w), Ok(g)) => (w, g),
        _ => {
            check.problem = Some("cannot read the values".to_owned());
            return check;
        }
    };
    for (w, g) in want.iter().zip(got.iter()) {
        if w.is_nan() || g.is_nan() {
            if w.is_nan() != g.is_nan() {
                check.mismatches += 1;
            }
            continue;
        }
        if w == g {
            continue; // equal infinities included
        }
        let error = (g - w).abs();
        let ratio = error / (tolerance.atol + tolerance.rtol * w.abs());
        // An infinity on one side only is an infinite error.
        check.max_abs_error = check.max_abs_error.max(error);
        check.worst_ratio = check.worst_ratio.max(ratio);
    }
    check.within_tolerance = check.mismatches == 0 && check.worst_ratio <= 1.0;
    check
}
