//! `--verify`: run the original and the rewritten model with tract-onnx, in process, on the same
//! random inputs, and compare every output against the tolerance table of DESIGN.md.
//!
//! Inputs follow the declared graph inputs: fixed dims as declared, symbolic dims bound to a
//! small size (2 unless the caller binds the symbol or the whole input's shape). Values are
//! drawn from a fixed-seed generator so a verification is reproducible.
//!
//! The running itself ([`tract`]) is the crate feature `verify` (on by default): a library user
//! who only applies passes can leave tract out of the build.

#[cfg(feature = "verify")]
mod tract;
mod tract_compat;

use std::collections::{BTreeMap, BTreeSet};
use std::path::Path;

use onnx_rewrite_ir::Model;
use onnx_rewrite_pass::PassOptions;
use onnx_rewrite_proto::tensor_proto::DataType;
use onnx_rewrite_proto::tensor_shape_proto::dimension::Value as Dim;
use onnx_rewrite_proto::type_proto::Value as Ty;

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
    #[error(
        "--verify: this build of onnx-rewrite has no tract-onnx (crate feature `verify` is off)"
    )]
    Unavailable,
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
    /// What was run in place of a model tract cannot run as it is, and why.
    #[serde(skip_serializing_if = "Vec::is_empty")]
    pub notes: Vec<String>,
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
        for note in &self.notes {
            let _ = writeln!(s, "    note: {note}");
        }
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

/// The rewritten model serialized as tract can run it, with a note for the report when that
/// is not the model itself (see `tract_compat`).
pub fn runnable_bytes(model: &Model) -> Result<(Vec<u8>, Option<String>), VerifyError> {
    tract_compat::runnable_bytes(model)
}

/// Runs both models on the same random inputs and compares every output.
pub fn verify(
    specs: &[InputSpec],
    original: Source<'_>,
    rewritten: Source<'_>,
    options: &VerifyOptions,
) -> Result<VerifyReport, VerifyError> {
    let shapes = bind_shapes(specs, &options.shapes)?;
    #[cfg(feature = "verify")]
    return tract::verify(specs, shapes, original, rewritten, options);
    #[cfg(not(feature = "verify"))]
    {
        let _ = (shapes, original, rewritten);
        Err(VerifyError::Unavailable)
    }
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
