//! One kernel registration of an execution provider, and onnxruntime's rule for whether it
//! serves a node's `since_version` (`KernelRegistry::VerifyVersion`): the one version-matching
//! rule every reader of the table uses.

use std::collections::BTreeMap;

use onnx_rewrite_proto::tensor_proto::DataType;

use crate::schema::Types;
use crate::type_names::type_set;

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
    /// `types` as bit sets, built once when the table is read: the float16 pass asks about
    /// every float node, and a bit test is what that costs.
    type_sets: BTreeMap<String, Types>,
}

impl Registration {
    pub(crate) fn new(
        domain: String,
        op: String,
        since: i64,
        until: Option<i64>,
        types: BTreeMap<String, Vec<String>>,
    ) -> Self {
        let type_sets = types
            .iter()
            .map(|(name, names)| (name.clone(), type_set(names)))
            .collect();
        Self {
            domain,
            op,
            since,
            until,
            types,
            type_sets,
        }
    }

    /// ORT's `VerifyVersion`: an open-ended registration matches only its own start version; a
    /// bounded one matches any `since_version` inside it.
    pub fn covers(&self, since_version: i64) -> bool {
        match self.until {
            None => self.since == since_version,
            Some(until) => (self.since..=until).contains(&since_version),
        }
    }

    /// Whether constraint `name` admits `tensor(dtype)`; `None` when the registration has no
    /// constraint of that name.
    pub fn allows(&self, name: &str, dtype: DataType) -> Option<bool> {
        self.type_sets.get(name).map(|t| t.allows(dtype))
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

#[cfg(test)]
mod tests {
    use crate::{Ep, kernels, registrations};

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
    fn every_bounded_registration_ends_at_or_after_its_start() {
        // A range that ended before it started would match nothing: a table defect.
        for ep in [Ep::Cpu, Ep::Cuda] {
            for r in kernels(ep) {
                assert!(r.until.is_none_or(|u| u >= r.since), "{}: {r:?}", ep.name());
                assert!(r.covers(r.since), "{}: {r:?}", ep.name());
            }
        }
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
