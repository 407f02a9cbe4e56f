//! Kernel registrations of one execution provider and ORT's rule for matching a node to one
//! (`KernelRegistry::TryFindKernel`): the version must match exactly as `VerifyVersion` does,
//! and every type constraint must accept the type of the node argument it binds to.

use super::schemas::{Formal, Schema};

/// The execution providers of the shared table (`onnx-rewrite-ort-kernels`).
pub use onnx_rewrite_ort_kernels::Ep;

/// One kernel registration of the shared table: a version range and the types each constraint
/// accepts.
pub use onnx_rewrite_ort_kernels::Registration;

/// Why an EP has, or has no, kernel for a node.
#[derive(Debug, Clone, PartialEq, Eq)]
pub enum KernelMatch {
    Found,
    /// ORT has no schema for the op at this opset (unknown op or domain, or opset too old).
    NoSchema,
    /// The EP registers no kernel for the op at all.
    NoOp,
    /// The EP registers the op, but no registration covers the node's `since_version`.
    NoVersion {
        since_version: i64,
        registered: Vec<String>,
    },
    /// Registrations cover the version, but a type constraint rejects the node's type.
    NoType {
        since_version: i64,
        constraint: String,
        actual: String,
        allowed: Vec<String>,
    },
}

impl KernelMatch {
    pub fn is_found(&self) -> bool {
        matches!(self, KernelMatch::Found)
    }

    /// Why not, in words (`None` when found).
    pub fn reason(&self, op: &str) -> Option<String> {
        match self {
            KernelMatch::Found => None,
            KernelMatch::NoSchema => Some(format!("ORT has no schema for {op} at this opset")),
            KernelMatch::NoOp => Some(format!("no kernel registered for {op}")),
            KernelMatch::NoVersion {
                since_version,
                registered,
            } => Some(format!(
                "no kernel for {op}-{since_version} (registered: {}; an open-ended `N+` matches only N)",
                registered.join(", ")
            )),
            KernelMatch::NoType {
                since_version,
                constraint,
                actual,
                allowed,
            } => Some(format!(
                "no kernel for {op}-{since_version} with {constraint} = {actual} (accepts {})",
                allowed.join(", ")
            )),
        }
    }
}

/// The registrations of one execution provider: a view of the shared table.
#[derive(Debug, Clone, Copy)]
pub struct KernelTable {
    ep: Ep,
}

impl KernelTable {
    pub(super) fn of(ep: Ep) -> Self {
        Self { ep }
    }

    /// Every registration, as (domain, op, registration), sorted by domain and op.
    pub fn all(&self) -> impl Iterator<Item = (&str, &str, &Registration)> {
        onnx_rewrite_ort_kernels::kernels(self.ep)
            .iter()
            .map(|r| (r.domain.as_str(), r.op.as_str(), r))
    }

    /// Every registration of `domain::op`.
    pub fn registrations(&self, domain: &str, op: &str) -> &'static [Registration] {
        onnx_rewrite_ort_kernels::registrations(self.ep, domain, op)
    }

    /// Matches a node of `domain::op` with schema `schema` whose arguments have the given types
    /// (by position; `None`: absent, or unknown, which rules nothing out).
    pub fn lookup(
        &self,
        domain: &str,
        op: &str,
        schema: &Schema,
        inputs: &[Option<&str>],
        outputs: &[Option<&str>],
    ) -> KernelMatch {
        let all = self.registrations(domain, op);
        if all.is_empty() {
            return KernelMatch::NoOp;
        }
        let covering: Vec<&Registration> = all.iter().filter(|r| r.covers(schema.since)).collect();
        if covering.is_empty() {
            return KernelMatch::NoVersion {
                since_version: schema.since,
                registered: all.iter().map(Registration::range).collect(),
            };
        }
        let mut first_rejection = None;
        for registration in covering {
            match type_mismatch(registration, schema, inputs, outputs) {
                None => return KernelMatch::Found,
                Some((constraint, actual, allowed)) => {
                    first_rejection.get_or_insert(KernelMatch::NoType {
                        since_version: schema.since,
                        constraint,
                        actual,
                        allowed,
                    });
                }
            }
        }
        first_rejection.unwrap_or(KernelMatch::NoOp)
    }

    /// The union of the types every registration covering `schema` accepts for `formal`.
    pub fn types_of(
        &self,
        domain: &str,
        op: &str,
        schema: &Schema,
        formal: &Formal,
    ) -> Option<Vec<String>> {
        let mut found: Option<Vec<String>> = None;
        for r in self
            .registrations(domain, op)
            .iter()
            .filter(|r| r.covers(schema.since))
        {
            let allowed = r
                .types
                .get(&formal.type_str)
                .or_else(|| r.types.get(&formal.name))?;
            let set = found.get_or_insert_with(Vec::new);
            set.extend(allowed.iter().cloned());
        }
        found.map(|mut v| {
            v.sort();
            v.dedup();
            v
        })
    }
}

/// The first type constraint of `registration` that rejects the node, as (constraint, actual
/// type, allowed types). ORT resolves a constraint name to the formal parameters that use it
/// as their type (or that are named so) and checks the first argument present for each.
fn type_mismatch(
    registration: &Registration,
    schema: &Schema,
    inputs: &[Option<&str>],
    outputs: &[Option<&str>],
) -> Option<(String, String, Vec<String>)> {
    for (constraint, allowed) in &registration.types {
        let bound = bound_types(constraint, &schema.inputs, inputs).chain(bound_types(
            constraint,
            &schema.outputs,
            outputs,
        ));
        for actual in bound {
            if !allowed.iter().any(|a| a == actual) {
                return Some((constraint.clone(), actual.to_owned(), allowed.clone()));
            }
        }
    }
    None
}

/// For each formal parameter bound to `constraint`, the type of its first present argument.
fn bound_types<'a>(
    constraint: &'a str,
    formals: &'a [Formal],
    args: &'a [Option<&'a str>],
) -> impl Iterator<Item = &'a str> + 'a {
    let mut position = 0usize;
    formals.iter().enumerate().filter_map(move |(i, formal)| {
        let start = position;
        let count = if formal.option == super::FormalOption::Variadic && i + 1 == formals.len() {
            args.len().saturating_sub(start)
        } else {
            1
        };
        position += count;
        if formal.type_str != constraint && formal.name != constraint {
            return None;
        }
        args.get(start..start + count)?
            .iter()
            .flatten()
            .next()
            .copied()
    })
}
