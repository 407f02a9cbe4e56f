//! One ONNX Runtime release as the table describes it, read from the embedded JSON once: its
//! schema versions, the schemas with a function body, and the kernel registrations of each
//! execution provider.

use std::collections::{BTreeMap, BTreeSet};
use std::sync::OnceLock;

use serde::Deserialize;

use crate::lookup::{KernelMatch, KernelTable};
use crate::op_versions::{OpVersions, RawOpVersion};
use crate::registration::{Ep, Registration};

/// The ONNX Runtime release whose rules the table encodes.
pub const PINNED_VERSION: &str = "1.32.0";

/// The table of [`PINNED_VERSION`]: `{"onnxruntime", "sources", "schemas", "functions",
/// "kernels"}`, parsed here and nowhere else.
const PINNED_JSON: &str = include_str!("ort-1.32.0.json");

/// Everything known about one ORT version.
#[derive(Debug)]
pub struct Ort {
    pub version: String,
    /// Where each part of the table comes from (and whether it is exact), by part.
    pub sources: BTreeMap<String, String>,
    pub op_versions: OpVersions,
    /// `(domain, op, since_version)` of the schemas that have a function body.
    functions: BTreeSet<(String, String, i64)>,
    cpu: KernelTable,
    cuda: KernelTable,
}

/// A version the predictor has no table for.
#[derive(Debug, Clone, PartialEq, Eq, thiserror::Error)]
#[error("no ONNX Runtime table for version '{0}'; the tables cover: {PINNED_VERSION}")]
pub struct UnknownVersion(pub String);

/// Why a table could not be read.
#[derive(Debug, thiserror::Error)]
enum TableError {
    #[error("the table is not valid JSON of the expected layout: {0}")]
    Json(#[from] serde_json::Error),
    #[error("no {} kernels in the table", .0.name())]
    NoKernels(Ep),
}

/// The tables of the pinned version.
pub fn pinned() -> &'static Ort {
    static ORT: OnceLock<Ort> = OnceLock::new();
    // The JSON is compiled in and checked by this crate's tests, so a parse failure is a build
    // defect, not an input error: no caller could recover from it.
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

/// A registration as the generator writes it: `[domain, op, since, until, {constraint: types}]`.
type RawRegistration = (
    String,
    String,
    i64,
    Option<i64>,
    BTreeMap<String, Vec<String>>,
);

#[derive(Deserialize)]
struct RawTable {
    onnxruntime: String,
    sources: BTreeMap<String, String>,
    schemas: BTreeMap<String, BTreeMap<String, Vec<RawOpVersion>>>,
    functions: Vec<(String, String, i64)>,
    kernels: BTreeMap<String, Vec<RawRegistration>>,
}

impl Ort {
    fn parse(json: &str) -> Result<Self, TableError> {
        let raw: RawTable = serde_json::from_str(json)?;
        let mut kernels = raw.kernels;
        let mut take = |ep: Ep| {
            let rows: Vec<Registration> = kernels
                .remove(ep.name())
                .unwrap_or_default()
                .into_iter()
                .map(|(domain, op, since, until, types)| {
                    let domain = crate::domain_key(&domain).to_owned();
                    Registration::new(domain, op, since, until, types)
                })
                .collect();
            if rows.is_empty() {
                return Err(TableError::NoKernels(ep));
            }
            Ok(KernelTable::new(rows))
        };
        Ok(Self {
            version: raw.onnxruntime,
            sources: raw.sources,
            op_versions: OpVersions::new(raw.schemas),
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
        self.op_versions.get(domain, op, opset).map(|s| s.since)
    }

    /// Whether the schema a node of `domain::op` gets at `opset` has a function body, which ORT
    /// inlines before partitioning when no execution provider has a kernel for the node.
    pub fn has_function(&self, domain: &str, op: &str, opset: i64) -> bool {
        self.since_version(domain, op, opset).is_some_and(|since| {
            self.functions
                .contains(&(crate::domain_key(domain).to_owned(), op.to_owned(), since))
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
        let Some(schema) = self.op_versions.get(domain, op, opset) else {
            return KernelMatch::NoSchema;
        };
        self.kernels(ep).lookup(domain, op, schema, inputs, outputs)
    }

    /// The types `ep` accepts at input `index` of `domain::op` at `opset`, over every
    /// registration that covers the node's `since_version` (`None`: no such registration, or the
    /// input is not bound to a kernel type constraint): "can this input be float16 on CUDA?".
    pub fn input_types(
        &self,
        ep: Ep,
        domain: &str,
        op: &str,
        opset: i64,
        index: usize,
    ) -> Option<Vec<String>> {
        let schema = self.op_versions.get(domain, op, opset)?;
        let formal = schema.input_formal(index)?;
        self.kernels(ep).types_of(domain, op, schema, formal)
    }
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
