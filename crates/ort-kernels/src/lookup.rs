//! Whether an execution provider has a kernel for a node, as `KernelRegistry::TryFindKernel`
//! decides it: a registration must cover the node's `since_version`
//! ([`Registration::covers`]), and every type constraint must accept the type of the node
//! argument it binds to.

use onnx_rewrite_proto::tensor_proto::DataType;

use crate::op_versions::{Formal, FormalOption, OpVersion};
use crate::registration::Registration;

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

/// The registrations of one execution provider, sorted by (domain, op, since).
#[derive(Debug)]
pub struct KernelTable {
    rows: Vec<Registration>,
}

impl KernelTable {
    /// The table of `rows`, sorted (stably, so the generator's order breaks ties) for binary
    /// search by op.
    pub(crate) fn new(mut rows: Vec<Registration>) -> Self {
        rows.sort_by(|a, b| (&a.domain, &a.op, a.since).cmp(&(&b.domain, &b.op, b.since)));
        Self { rows }
    }

    /// Every registration, sorted by (domain, op, since).
    pub fn rows(&self) -> &[Registration] {
        &self.rows
    }

    /// Every registration, as (domain, op, registration), sorted by domain and op.
    pub fn all(&self) -> impl Iterator<Item = (&str, &str, &Registration)> {
        self.rows
            .iter()
            .map(|r| (r.domain.as_str(), r.op.as_str(), r))
    }

    /// Every registration of `domain::op` (`""` and `ai.onnx` both name the ONNX domain).
    pub fn registrations(&self, domain: &str, op: &str) -> &[Registration] {
        let domain = crate::domain_key(domain);
        let table = &self.rows;
        let start = table.partition_point(|k| (k.domain.as_str(), k.op.as_str()) < (domain, op));
        let end = table.partition_point(|k| (k.domain.as_str(), k.op.as_str()) <= (domain, op));
        &table[start..end]
    }

    /// A registration that runs a node of `domain::op` whose schema has `since_version`, with
    /// its type constraints bound as in `bindings` (constraint name → element type; names the
    /// registration does not constrain are ignored).
    pub fn find(
        &self,
        domain: &str,
        op: &str,
        since_version: i64,
        bindings: &[(&str, DataType)],
    ) -> Option<&Registration> {
        self.registrations(domain, op).iter().find(|r| {
            r.covers(since_version)
                && bindings
                    .iter()
                    .all(|(name, dtype)| r.allows(name, *dtype).unwrap_or(true))
        })
    }

    /// Matches a node of `domain::op` with schema `schema` whose arguments have the given types
    /// (by position; `None`: absent, or unknown, which rules nothing out).
    pub fn lookup(
        &self,
        domain: &str,
        op: &str,
        schema: &OpVersion,
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
        schema: &OpVersion,
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
    schema: &OpVersion,
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
        let count = if formal.option == FormalOption::Variadic && i + 1 == formals.len() {
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

#[cfg(test)]
mod tests {
    use onnx_rewrite_proto::tensor_proto::DataType;

    use crate::{Ep, find};

    #[test]
    fn cpu_lacks_float16_add_but_has_float16_cast_and_cuda_has_float16_matmul() {
        assert!(find(Ep::Cpu, "", "Add", 14, &[("T", DataType::Float)]).is_some());
        assert!(find(Ep::Cpu, "", "Add", 14, &[("T", DataType::Float16)]).is_none());
        assert!(find(Ep::Cpu, "", "Cast", 21, &[("T2", DataType::Float16)]).is_some());
        assert!(find(Ep::Cuda, "", "MatMul", 13, &[("T", DataType::Float16)]).is_some());
    }

    #[test]
    fn a_binding_the_registration_does_not_constrain_rules_nothing_out() {
        let unconstrained = [("NoSuchConstraint", DataType::Float16)];
        assert!(find(Ep::Cpu, "", "Add", 14, &unconstrained).is_some());
    }
}
