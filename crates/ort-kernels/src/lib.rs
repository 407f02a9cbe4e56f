//! ONNX Runtime's rules for one pinned release (1.32.0), the one source every crate reads them
//! from:
//! - which `since_version` a node gets ([`op_versions`]: every schema version ORT registers,
//!   with its formal parameters), and which schemas have a function body ORT may inline;
//! - the kernel registrations of its CPU and CUDA execution providers ([`Registration`]:
//!   operator, domain, version range, type constraints) and whether one runs a given node
//!   ([`lookup`]);
//! - which CUDA kernel inputs and outputs live in CPU memory ([`memory`]);
//! - the operator schemas as type constraints ([`schema`]), for the float16 pass and the
//!   signature check.
//!
//! `onnx-rewrite analyze --ep cuda` (through `onnx-rewrite-placement`) reads it to predict
//! placement and Memcpy nodes, hoist-scalars to decide its rewrites, and `fp16 --fp16-target`
//! to keep float32 what an EP has no float16 kernel for. Keeping one copy matters: two tables
//! that drift apart would make the commands disagree about the same node.
//!
//! The registrations and schema versions are data (`ort-1.32.0.json`, written by
//! `tools/ort/gen_kernel_tables.py`; its `sources` field says where each part comes from and
//! how exact it is: the CPU registrations come from the onnxruntime 1.32.0 wheel and are exact,
//! the CUDA ones from `docs/OperatorKernels.md` of a source snapshot plus the registration
//! changes merged after it, not yet checked against an onnxruntime-gpu 1.32.0 binary). The JSON
//! is embedded in the binary and parsed once, on first use ([`pinned`]). The memory slots are
//! code, kept by hand from ORT's kernel definitions, which no ORT API exports.
//!
//! Version matching follows onnxruntime's `KernelRegistry::VerifyVersion`, in one place
//! ([`Registration::covers`]): a registration `[since, until]` matches a node whose schema
//! `since_version` lies in the range; an open-ended one (`N+` in `OperatorKernels.md`) matches
//! **only** `since_version == N`.
//!
//! ```
//! use onnx_rewrite_ort_kernels::{Ep, KernelMatch, kernels, pinned};
//! let equal = kernels(Ep::Cuda).iter().filter(|r| r.domain == "" && r.op == "Equal");
//! // CUDA registers Equal as [7, 10], [11, 12] and 13+: no kernel for Equal-19.
//! assert!(!equal.clone().any(|r| r.covers(19)));
//! assert!(equal.clone().any(|r| r.covers(13)));
//! // Equal at opset 20 is Equal-19.
//! let m = pinned().lookup(Ep::Cuda, "", "Equal", 20, &[Some("int64"), Some("int64")], &[Some("bool")]);
//! assert!(matches!(m, KernelMatch::NoVersion { since_version: 19, .. }));
//! ```

pub mod lookup;
pub mod memory;
pub mod op_versions;
mod registration;
mod release;
pub mod schema;
mod type_names;

pub use lookup::{KernelMatch, KernelTable};
pub use op_versions::{Formal, FormalOption, OpVersion, OpVersions};
pub use registration::{Ep, Registration};
pub use release::{Ort, PINNED_VERSION, UnknownVersion, for_version, pinned};
pub use type_names::{element_type, type_name};

use onnx_rewrite_proto::tensor_proto::DataType;

/// Every registration of `ep` in the pinned release, sorted by (domain, op, since).
pub fn kernels(ep: Ep) -> &'static [Registration] {
    pinned().kernels(ep).rows()
}

/// The registrations of `domain`.`op` for `ep` in the pinned release (`""` and `ai.onnx` both
/// name the ONNX domain).
pub fn registrations(ep: Ep, domain: &str, op: &str) -> &'static [Registration] {
    pinned().kernels(ep).registrations(domain, op)
}

/// A registration of `ep` in the pinned release that runs a node of `domain`.`op` whose schema
/// has `since_version`, with its type constraints bound as in `bindings` (constraint name →
/// element type; names the registration does not constrain are ignored).
pub fn find(
    ep: Ep,
    domain: &str,
    op: &str,
    since_version: i64,
    bindings: &[(&str, DataType)],
) -> Option<&'static Registration> {
    pinned()
        .kernels(ep)
        .find(domain, op, since_version, bindings)
}

/// The tables' name of a domain: `ai.onnx` is spelled `""`.
pub fn domain_key(domain: &str) -> &str {
    if domain == "ai.onnx" { "" } else { domain }
}
