//! ONNX Runtime's rules for one pinned version: operator schemas (which `since_version` a node
//! gets), kernel registrations per execution provider (which nodes an EP can run, by op,
//! version and type), and which CUDA kernel inputs and outputs live in CPU memory.
//!
//! The schemas and kernel registrations are data (`ort-<version>.json`, written by
//! `tools/ort/gen_kernel_tables.py`, kept in the shared crate `onnx-rewrite-ort-kernels`; its `sources` say where each part comes from and how exact
//! it is); the memory slots are code ([`memory`]), kept by hand from ORT's kernel definitions,
//! which no ORT API exports. The float16 pass asks the same [`KernelTable`] which ops have
//! float16 kernels, so both passes share one table.
//!
//! ```
//! use onnx_rewrite_hoist_scalars::ort::{self, Ep, KernelMatch};
//! let ort = ort::pinned();
//! // Equal at opset 20 is Equal-19, which the CUDA EP does not register.
//! let m = ort.lookup(Ep::Cuda, "", "Equal", 20, &[Some("int64"), Some("int64")], &[Some("bool")]);
//! assert!(matches!(m, KernelMatch::NoVersion { since_version: 19, .. }));
//! ```

pub mod kernels;
pub mod memory;
pub mod schemas;

use std::collections::BTreeMap;
use std::sync::OnceLock;

use serde::Deserialize;

pub use kernels::{Ep, KernelMatch, KernelTable, Registration};
pub use schemas::{Formal, FormalOption, Schema, Schemas};

/// The ONNX Runtime version whose rules the predictor encodes by default.
pub use onnx_rewrite_ort_kernels::PINNED_VERSION;

/// The one table shared with the fp16 pass (crate `onnx-rewrite-ort-kernels`): the schemas are
/// read from it here, the kernel registrations come parsed from that crate.
const PINNED_JSON: &str = onnx_rewrite_ort_kernels::PINNED_JSON;

/// Everything known about one ORT version.
#[derive(Debug)]
pub struct Ort {
    pub version: String,
    /// Where each part of the table comes from (and whether it is exact), by part.
    pub sources: BTreeMap<String, String>,
    pub schemas: Schemas,
    /// `(domain, op, since_version)` of the schemas that have a function body.
    functions: std::collections::BTreeSet<(String, String, i64)>,
    cpu: KernelTable,
    cuda: KernelTable,
}

/// A version the predictor has no table for.
#[derive(Debug, Clone, PartialEq, Eq, thiserror::Error)]
#[error("no ONNX Runtime table for version '{0}'; the tables cover: {PINNED_VERSION}")]
pub struct UnknownVersion(pub String);

/// The tables of the pinned version.
pub fn pinned() -> &'static Ort {
    static ORT: OnceLock<Ort> = OnceLock::new();
    ORT.get_or_init(|| Ort::parse(PINNED_JSON).expect("the embedded ORT table is well-formed"))
}

/// The tables of `version` (`1.32` and `1.32.0` name the same release).
pub fn for_version(version: &str) -> Result<&'static Ort, UnknownVersion> {
    let v = version.trim().trim_start_matches('v');
    if v == PINNED_VERSION || format!("{v}.0") == PINNED_VERSION {
        Ok(pinned())
    } else {
        Err(UnknownVersion(version.to_owned()))
    }
}

#[derive(Deserialize)]
struct RawTable {
    onnxruntime: String,
    sources: BTreeMap<String, String>,
    schemas: BTreeMap<String, BTreeMap<String, Vec<schemas::RawSchema>>>,
    functions: Vec<(String, String, i64)>,
}

impl Ort {
    fn parse(json: &str) -> Result<Self, String> {
        let raw: RawTable = serde_json::from_str(json).map_err(|e| e.to_string())?;
        // The kernel registrations come from the shared crate, which parses the same JSON.
        let take = |ep: Ep| {
            if onnx_rewrite_ort_kernels::kernels(ep).is_empty() {
                return Err(format!("no {} kernels in the table", ep.name()));
            }
            Ok(KernelTable::of(ep))
        };
        Ok(Self {
            version: raw.onnxruntime,
            sources: raw.sources,
            schemas: Schemas::new(raw.schemas),
            functions: raw.functions.into_iter().collect(),
            cpu: take(Ep::Cpu)?,
            cuda: take(Ep::Cuda)?,
        })
    }

    /// The kernel registrations of an execution provider.
    pub fn kernels(&self, ep: Ep) -> &KernelTable {
        match ep {
            Ep::Cpu => &self.cpu,
            Ep::Cuda => &self.cuda,
        }
    }

    /// The `since_version` ORT gives a node of `domain::op` in a model importing `opset` for
    /// that domain: the largest schema version not above it (`None`: no schema, or none that old).
    pub fn since_version(&self, domain: &str, op: &str, opset: i64) -> Option<i64> {
        self.schemas.get(domain, op, opset).map(|s| s.since)
    }

    /// Whether the schema a node of `domain::op` gets at `opset` has a function body, which ORT
    /// inlines before partitioning when no execution provider has a kernel for the node.
    pub fn has_function(&self, domain: &str, op: &str, opset: i64) -> bool {
        self.since_version(domain, op, opset).is_some_and(|since| {
            self.functions
                .contains(&(domain_key(domain).to_owned(), op.to_owned(), since))
        })
    }

    /// Whether `ep` has a kernel for a node, with the types of its inputs and outputs by
    /// position (`None`: absent, or of unknown type, which does not rule a kernel out). Types
    /// are ORT's names (`float`, `int64`, `float16`, ...); see [`type_name`].
    pub fn lookup(
        &self,
        ep: Ep,
        domain: &str,
        op: &str,
        opset: i64,
        inputs: &[Option<&str>],
        outputs: &[Option<&str>],
    ) -> KernelMatch {
        let Some(schema) = self.schemas.get(domain, op, opset) else {
            return KernelMatch::NoSchema;
        };
        self.kernels(ep).lookup(domain, op, schema, inputs, outputs)
    }

    /// The types `ep` accepts at input `index` of `domain::op` at `opset`, over every
    /// registration that covers the node's `since_version` (`None`: no such registration, or the
    /// input is not bound to a kernel type constraint). For the float16 pass: "can this input be
    /// float16 on CUDA?".
    pub fn input_types(
        &self,
        ep: Ep,
        domain: &str,
        op: &str,
        opset: i64,
        index: usize,
    ) -> Option<Vec<String>> {
        let schema = self.schemas.get(domain, op, opset)?;
        let formal = schema.input_formal(index)?;
        self.kernels(ep).types_of(domain, op, schema, formal)
    }
}

/// ORT's name of an ONNX element type (`float`, `int64`, `float8e4m3fn`...).
pub fn type_name(dtype: onnx_rewrite_proto::tensor_proto::DataType) -> String {
    onnx_rewrite_facts::dtype_name(dtype)
}

/// Normalizes `ai.onnx` to `""`, as the tables do.
pub(crate) fn domain_key(domain: &str) -> &str {
    if domain == "ai.onnx" { "" } else { domain }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn the_pinned_table_parses_and_knows_the_version_gaps() {
        let ort = pinned();
        assert_eq!(ort.version, PINNED_VERSION);
        assert_eq!(ort.since_version("", "Equal", 20), Some(19));
        assert_eq!(ort.since_version("", "Shape", 20), Some(19));
        assert_eq!(ort.since_version("ai.onnx", "Shape", 14), Some(13));
        assert_eq!(ort.since_version("", "Range", 10), None);
        let i64s = [Some("int64"), Some("int64")];
        let bool_out = [Some("bool")];
        assert!(matches!(
            ort.lookup(Ep::Cuda, "", "Equal", 18, &i64s, &bool_out),
            KernelMatch::Found
        ));
        assert!(matches!(
            ort.lookup(Ep::Cuda, "", "Equal", 20, &i64s, &bool_out),
            KernelMatch::NoVersion { .. }
        ));
        assert!(matches!(
            ort.lookup(Ep::Cpu, "", "Equal", 20, &i64s, &bool_out),
            KernelMatch::Found
        ));
        // No CUDA Sqrt for integers.
        assert!(matches!(
            ort.lookup(Ep::Cuda, "", "Sqrt", 20, &[Some("int64")], &[Some("int64")]),
            KernelMatch::NoType { .. }
        ));
        assert!(matches!(
            ort.lookup(Ep::Cuda, "", "NoSuchOp", 20, &[], &[]),
            KernelMatch::NoSchema
        ));
        let types = ort.input_types(Ep::Cuda, "", "Sqrt", 20, 0).unwrap();
        assert!(types.iter().any(|t| t == "float16"));
        assert!(for_version("1.32").is_ok());
        assert!(for_version("1.31.0").is_err());
    }
}
