//! `--verify`: run the original and the rewritten model with tract-onnx, in process, on the same
//! random inputs, and compare every output against the tolerance table of DESIGN.md.
//!
//! Inputs follow the declared graph inputs: fixed dims as declared, symbolic dims bound to a
//! small size (2 unless the caller binds the symbol or the whole input's shape). Values are
//! drawn from a fixed-seed generator so a verification is reproducible.

use std::collections::{BTreeMap, BTreeSet};
use std::path::{Path, PathBuf};

use onnx_rewrite_egraph::pass::PassOptions;
use onnx_rewrite_ir::Model;
use onnx_rewrite_proto::tensor_proto::DataType;
use onnx_rewrite_proto::tensor_shape_proto::dimension::Value as Dim;
use onnx_rewrite_proto::type_proto::Value as Ty;
use tract_onnx::prelude::*;

/// The size a symbolic dim gets when the caller binds neither it nor its input.
pub const DEFAULT_SYMBOL_SIZE: usize = 2;

/// Inputs bigger than this are refused: `--verify` is a check on small shapes, and a typo in
/// `--verify-shape` must not allocate gigabytes.
const MAX_INPUT_ELEMENTS: usize = 1 << 26;

/// A comparison tolerance: `|got - want| <= atol + rtol * |want|`.
#[derive(Debug, Clone, Copy, PartialEq, serde::Serialize)]
pub struct Tolerance {
    pub rtol: f64,
    pub atol: f64,
}

impl Tolerance {
    /// The loosest row of DESIGN.md's tolerance table among the passes run: an fp16 pipeline is
    /// compared to the float32 original at the fp16 row, whatever else ran before it.
    pub fn for_passes(passes: &[&str], options: &PassOptions) -> Self {
        let exact = Self {
            rtol: 1e-5,
            atol: 1e-6,
        };
        let mut tolerance = exact;
        for pass in passes {
            let row = match *pass {
                "moe-dense" => Self {
                    rtol: 1e-4,
                    atol: 1e-5,
                },
                "fp16" if matches!(options.value("fp16-type"), Some("bfloat16" | "bf16")) => Self {
                    rtol: 5e-2,
                    atol: 5e-2,
                },
                "fp16" => Self {
                    rtol: 2e-2,
                    atol: 2e-2,
                },
                _ => exact,
            };
            tolerance.rtol = tolerance.rtol.max(row.rtol);
            tolerance.atol = tolerance.atol.max(row.atol);
        }
        tolerance
    }
}

/// How to verify.
#[derive(Debug, Clone)]
pub struct VerifyOptions {
    /// Shapes by input name (the whole shape) or by symbol name (one size), as given with
    /// `--verify-shape name=dims`.
    pub shapes: BTreeMap<String, Vec<usize>>,
    pub tolerance: Tolerance,
    pub seed: u64,
}

/// Parses one `name=d0,d1,...` binding (`--verify-shape`).
pub fn parse_shape(spec: &str) -> Result<(String, Vec<usize>), VerifyError> {
    let bad = || VerifyError::BadShape(spec.to_owned());
    let (name, dims) = spec.split_once('=').ok_or_else(bad)?;
    let name = name.trim();
    if name.is_empty() {
        return Err(bad());
    }
    let dims = if dims.trim().is_empty() {
        Vec::new() // a scalar input
    } else {
        dims.split(',')
            .map(|d| d.trim().parse::<usize>().map_err(|_| bad()))
            .collect::<Result<Vec<_>, _>>()?
    };
    Ok((name.to_owned(), dims))
}

/// Where a model to run comes from.
#[derive(Debug, Clone, Copy)]
pub enum Source<'a> {
    /// A file (external data is read beside it).
    Path(&'a Path),
    /// A serialized model with every tensor inline.
    Bytes(&'a [u8]),
}

/// A declared graph input, taken from the original model before any pass runs.
#[derive(Debug, Clone)]
pub struct InputSpec {
    pub name: String,
    pub dtype: DataType,
    pub dims: Vec<DimSpec>,
}

#[derive(Debug, Clone)]
pub enum DimSpec {
    Fixed(usize),
    Symbol(String),
    Unknown,
}

/// The declared inputs of a model's main graph (initializers listed as inputs are left out:
/// they have a value already).
pub fn input_specs(model: &Model) -> Result<Vec<InputSpec>, VerifyError> {
    let main = model.graph(model.main());
    let initializers: BTreeSet<&str> = main.proto.initializer.iter().map(|t| t.name()).collect();
    let mut specs = Vec::new();
    for io in main.inputs() {
        let name = model.value(io.value).name().to_owned();
        if initializers.contains(name.as_str()) {
            continue;
        }
        let tensor = match io
            .info
            .as_ref()
            .and_then(|i| i.r#type.as_ref())
            .and_then(|t| t.value.as_ref())
        {
            Some(Ty::TensorType(t)) => t,
            _ => return Err(VerifyError::NotATensor(name)),
        };
        let dtype = DataType::try_from(tensor.elem_type())
            .map_err(|_| VerifyError::Dtype(name.clone(), tensor.elem_type().to_string()))?;
        let dims = tensor
            .shape
            .as_ref()
            .map(|s| {
                s.dim
                    .iter()
                    .map(|d| match &d.value {
                        Some(Dim::DimValue(v)) if *v >= 0 => DimSpec::Fixed(*v as usize),
                        Some(Dim::DimParam(p)) if !p.is_empty() => DimSpec::Symbol(p.clone()),
                        _ => DimSpec::Unknown,
                    })
                    .collect()
            })
            .unwrap_or_default();
        specs.push(InputSpec { name, dtype, dims });
    }
    Ok(specs)
}

/// Verification could not be carried out (as opposed to: it ran and found an error).
#[derive(Debug, thiserror::Error)]
pub enum VerifyError {
    #[error("--verify-shape '{0}': expected name=dims, such as input_ids=1,8")]
    BadShape(String),
    #[error("--verify-shape {name}: the input has rank {declared}, the binding gives {given} dims")]
    Rank {
        name: String,
        declared: usize,
        given: usize,
    },
    #[error("--verify-shape {0}: no input or symbolic dim of that name")]
    UnknownName(String),
    #[error("--verify: input '{0}' is not a tensor")]
    NotATensor(String),
    #[error("--verify: input '{0}' has element type {1}, which verification cannot draw")]
    Dtype(String, String),
    #[error(
        "--verify: input '{name}' would hold {elements} elements; bind smaller dims with --verify-shape"
    )]
    TooLarge { name: String, elements: usize },
    #[error("--verify: tract-onnx cannot run the {which} model: {message}")]
    Tract {
        which: &'static str,
        message: String,
    },
    #[error("--verify: cannot serialize the rewritten model for tract: {0}")]
    Serialize(String),
    #[error(
        "--verify: the rewritten model has {got} outputs, the original {want}: they cannot be compared"
    )]
    OutputCount { got: usize, want: usize },
}

/// One output compared.
#[derive(Debug, Clone, serde::Serialize)]
pub struct OutputCheck {
    pub name: String,
    pub shape: Vec<usize>,
    /// The largest `|got - want|`.
    pub max_abs_error: f64,
    /// The largest `|got - want| / (atol + rtol * |want|)`: over 1 is over tolerance.
    pub worst_ratio: f64,
    /// Elements where one side is NaN and the other is not, or shapes differ.
    pub mismatches: usize,
    pub within_tolerance: bool,
    /// Why the output could not be compared element by element, if so.
    #[serde(skip_serializing_if = "Option::is_none")]
    pub problem: Option<String>,
}

/// What a verification found.
#[derive(Debug, Clone, serde::Serialize)]
pub struct VerifyReport {
    pub tolerance: Tolerance,
    /// The inputs drawn: name and shape.
    pub inputs: Vec<(String, Vec<usize>)>,
    pub outputs: Vec<OutputCheck>,
    pub passed: bool,
}

impl VerifyReport {
    /// One line per output, for the terminal and for error messages.
    pub fn summary(&self) -> String {
        use std::fmt::Write as _;
        let mut s = format!(
            "verify (tract-onnx; rtol {:e}, atol {:e}; inputs {}):\n",
            self.tolerance.rtol,
            self.tolerance.atol,
            self.inputs
                .iter()
                .map(|(n, d)| format!("{n}={d:?}"))
                .collect::<Vec<_>>()
                .join(" ")
        );
        for o in &self.outputs {
            let _ = writeln!(
                s,
                "    {:<24} max |error| {:.3e}  worst error/tolerance {:.3}  {}{}",
                o.name,
                o.max_abs_error,
                o.worst_ratio,
                if o.within_tolerance { "ok" } else { "OVER" },
                o.problem
                    .as_ref()
                    .map(|p| format!(" ({p})"))
                    .unwrap_or_default()
            );
        }
        s
    }
}

/// Runs both models on the same random inputs and compares every output.
pub fn verify(
    specs: &[InputSpec],
    original: Source<'_>,
    rewritten: Source<'_>,
    options: &VerifyOptions,
) -> Result<VerifyReport, VerifyError> {
    let shapes = bind_shapes(specs, &options.shapes)?;
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
    })
}

/// Concrete shapes for every input: a binding by input name wins, then bindings by symbol,
/// then [`DEFAULT_SYMBOL_SIZE`]. A binding that names nothing is an error (a typo would
/// otherwise verify something other than what was asked).
fn bind_shapes(
    specs: &[InputSpec],
    bindings: &BTreeMap<String, Vec<usize>>,
) -> Result<Vec<Vec<usize>>, VerifyError> {
    let symbols: BTreeSet<&str> = specs
        .iter()
        .flat_map(|s| &s.dims)
        .filter_map(|d| match d {
            DimSpec::Symbol(s) => Some(s.as_str()),
            _ => None,
        })
        .collect();
    for name in bindings.keys() {
        if !specs.iter().any(|s| &s.name == name) && !symbols.contains(name.as_str()) {
            return Err(VerifyError::UnknownName(name.clone()));
        }
    }
    let mut shapes = Vec::new();
    for spec in specs {
        let shape = if let Some(dims) = bindings.get(&spec.name) {
            if !spec.dims.is_empty() && dims.len() != spec.dims.len() {
                return Err(VerifyError::Rank {
                    name: spec.name.clone(),
                    declared: spec.dims.len(),
                    given: dims.len(),
                });
            }
            dims.clone()
        } else {
            let mut shape = Vec::new();
            for dim in &spec.dims {
                shape.push(match dim {
                    DimSpec::Fixed(v) => *v,
                    DimSpec::Symbol(s) => match bindings.get(s).map(Vec::as_slice) {
                        Some([size]) => *size,
                        Some(other) => {
                            return Err(VerifyError::Rank {
                                name: s.clone(),
                                declared: 1,
                                given: other.len(),
                            });
                        }
                        None => DEFAULT_SYMBOL_SIZE,
                    },
                    DimSpec::Unknown => DEFAULT_SYMBOL_SIZE,
                });
            }
            shape
        };
        let elements = shape
            .iter()
            .try_fold(1usize, |n, d| n.checked_mul(*d))
            .unwrap_or(usize::MAX);
        if elements > MAX_INPUT_ELEMENTS {
            return Err(VerifyError::TooLarge {
                name: spec.name.clone(),
                elements,
            });
        }
        shapes.push(shape);
    }
    Ok(shapes)
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
