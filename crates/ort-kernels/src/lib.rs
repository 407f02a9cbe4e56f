//! ONNX Runtime's rules for one pinned release (1.32.0): the operator schemas it knows and the
//! kernel registrations of its CPU and CUDA execution providers (operator, domain, opset range,
//! type constraints).
//!
//! This crate is the one source of truth for that table. `onnx-rewrite analyze --ep cuda`
//! (through `onnx-rewrite-hoist-scalars`) reads it to predict placement and Memcpy nodes, and
//! `fp16 --fp16-target` reads it to keep float32 what an EP has no float16 kernel for. Keeping
//! one copy matters: two tables that drift apart would make the two commands disagree about
//! the same node.
//!
//! The data is `ort-1.32.0.json`, written by `tools/ort/gen_kernel_tables.py`; its `sources`
//! field says where each part comes from and how exact it is (the CPU registrations come from
//! the onnxruntime 1.32.0 wheel and are exact; the CUDA ones from `docs/OperatorKernels.md` of a
//! source snapshot plus the registration changes merged after it, not yet checked against an
//! onnxruntime-gpu 1.32.0 binary). The JSON is embedded in the binary and parsed on first use.
//!
//! Version matching follows onnxruntime's `KernelRegistry::VerifyVersion`: a registration
//! `[since, until]` matches a node whose schema `since_version` lies in the range; an
//! open-ended one (`N+` in `OperatorKernels.md`) matches **only** `since_version == N`.
//!
//! ```
//! use onnx_rewrite_ort_kernels::{Ep, kernels};
//! let equal = kernels(Ep::Cuda).iter().filter(|r| r.domain == "" && r.op == "Equal");
//! // CUDA registers Equal as [7, 10], [11, 12] and 13+: no kernel for Equal-19.
//! assert!(!equal.clone().any(|r| r.covers(19)));
//! assert!(equal.clone().any(|r| r.covers(13)));
//! ```

pub mod schema;

use std::collections::BTreeMap;
use std::sync::OnceLock;

/// The ONNX Runtime release whose rules the table encodes.
pub const PINNED_VERSION: &str = "1.32.0";

/// The raw table: `{"onnxruntime", "sources", "schemas", "functions", "kernels"}`. Readers that
/// need the schemas (which `since_version` a node gets) parse it themselves; the kernel
/// registrations are also available parsed, through [`kernels`].
pub const PINNED_JSON: &str = include_str!("ort-1.32.0.json");

/// An execution provider the table covers.
#[derive(Debug, Clone, Copy, PartialEq, Eq, PartialOrd, Ord, Hash)]
pub enum Ep {
    Cpu,
    Cuda,
}

impl Ep {
    /// onnxruntime's name for the provider, which is also its key in the table.
    pub fn name(self) -> &'static str {
        match self {
            Ep::Cpu => "CPUExecutionProvider",
            Ep::Cuda => "CUDAExecutionProvider",
        }
    }
}

/// One kernel registration. Typed registrations are kept apart (a CPU kernel registered for
/// (int64, float) and (int64, double) does not run (int64, bfloat16) just because the union
/// of its types would allow it).
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Registration {
    /// `""` for the ONNX domain (the table never spells it `ai.onnx`).
    pub domain: String,
    pub op: String,
    pub since: i64,
    /// `None`: registered open-ended (`N+`), which matches only `since_version == N`.
    pub until: Option<i64>,
    /// Constraint name (a type parameter such as `T`, or a formal parameter name) → the types
    /// it accepts, as ORT names them: `float`, `int64`, `seq(tensor(float))`, `optional(...)`.
    pub types: BTreeMap<String, Vec<String>>,
}

impl Registration {
    /// ORT's `VerifyVersion`: an open-ended registration matches only its own start version; a
    /// bounded one matches any `since_version` inside it.
    pub fn covers(&self, since_version: i64) -> bool {
        match self.until {
            None => self.since == since_version,
            Some(until) => (self.since..=until).contains(&since_version),
        }
    }

    /// `[a, b]` or `a+`, as `docs/OperatorKernels.md` writes it.
    pub fn range(&self) -> String {
        match self.until {
            None => format!("{}+", self.since),
            Some(u) if u == self.since => format!("{u}"),
            Some(u) => format!("[{}, {u}]", self.since),
        }
    }
}

type RawRegistration = (
    String,
    String,
    i64,
    Option<i64>,
    BTreeMap<String, Vec<String>>,
);

#[derive(serde::Deserialize)]
struct RawKernels {
    kernels: BTreeMap<String, Vec<RawRegistration>>,
}

struct Tables {
    cpu: Vec<Registration>,
    cuda: Vec<Registration>,
}

fn tables() -> &'static Tables {
    static TABLES: OnceLock<Tables> = OnceLock::new();
    TABLES.get_or_init(|| {
        // The JSON is compiled in and checked by this crate's tests, so a parse failure is a
        // build defect, not an input error: no caller could recover from it.
        let raw: RawKernels =
            serde_json::from_str(PINNED_JSON).expect("the embedded ORT table is well-formed");
        let mut kernels = raw.kernels;
        let mut take = |ep: Ep| {
            let mut rows: Vec<Registration> = kernels
                .remove(ep.name())
                .unwrap_or_default()
                .into_iter()
                .map(|(domain, op, since, until, types)| Registration {
                    domain: if domain == "ai.onnx" {
                        String::new()
                    } else {
                        domain
                    },
                    op,
                    since,
                    until,
                    types,
                })
                .collect();
            // Sorted (stably, so the generator's order breaks ties) for binary search by op.
            rows.sort_by(|a, b| (&a.domain, &a.op, a.since).cmp(&(&b.domain, &b.op, b.since)));
            rows
        };
        Tables {
            cpu: take(Ep::Cpu),
            cuda: take(Ep::Cuda),
        }
    })
}

/// Every registration of `ep`, sorted by (domain, op, since).
pub fn kernels(ep: Ep) -> &'static [Registration] {
    let t = tables();
    match ep {
        Ep::Cpu => &t.cpu,
        Ep::Cuda => &t.cuda,
    }
}

/// The registrations of `domain`.`op` for `ep` (`""` and `ai.onnx` both name the ONNX domain).
pub fn registrations(ep: Ep, domain: &str, op: &str) -> &'static [Registration] {
    let domain = if domain == "ai.onnx" { "" } else { domain };
    let table = kernels(ep);
    let start = table.partition_point(|k| (k.domain.as_str(), k.op.as_str()) < (domain, op));
    let end = table.partition_point(|k| (k.domain.as_str(), k.op.as_str()) <= (domain, op));
    &table[start..end]
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn both_providers_are_present_and_sorted() {
        for ep in [Ep::Cpu, Ep::Cuda] {
            let t = kernels(ep);
            assert!(t.len() > 300, "{} has {} registrations", ep.name(), t.len());
            assert!(
                t.windows(2).all(|w| (&w[0].domain, &w[0].op, w[0].since)
                    <= (&w[1].domain, &w[1].op, w[1].since))
            );
        }
    }

    #[test]
    fn open_ended_registrations_match_only_their_start() {
        let open = registrations(Ep::Cpu, "", "Add")
            .iter()
            .find(|r| r.until.is_none())
            .expect("CPU registers Add open-ended");
        assert!(open.covers(open.since));
        assert!(!open.covers(open.since + 1));
    }

    #[test]
    fn version_gaps_the_predictor_relies_on() {
        // CUDA: no Equal-19 (a model at opset 19+ puts Equal on the CPU EP).
        assert!(
            !registrations(Ep::Cuda, "ai.onnx", "Equal")
                .iter()
                .any(|r| r.covers(19))
        );
        assert!(
            registrations(Ep::Cpu, "", "Equal")
                .iter()
                .any(|r| r.covers(19))
        );
        // CUDA has no integer Sqrt.
        assert!(
            !registrations(Ep::Cuda, "", "Sqrt")
                .iter()
                .any(|r| r.types.values().any(|ts| ts.iter().any(|t| t == "int64")))
        );
        assert!(registrations(Ep::Cuda, "", "NoSuchOp").is_empty());
    }
}
