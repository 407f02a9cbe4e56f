//! Every operator schema version ORT registers, with its formal parameters: which
//! `since_version` a node gets, and which of its inputs and outputs a kernel's type constraint
//! binds to.
//!
//! Read from the pinned JSON rather than from [`crate::schema`]: ORT resolves a node against
//! every version it registers, deprecated ones included (`Upsample-10`, `Scatter-11`), which the
//! type-constraint table leaves out; and a kernel constraint may name a formal parameter, whose
//! name only this table keeps.

use std::collections::BTreeMap;

use serde::Deserialize;

/// How a formal parameter takes arguments.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Deserialize)]
#[serde(rename_all = "lowercase")]
pub enum FormalOption {
    Single,
    Optional,
    Variadic,
}

/// A formal input or output: its name and its type (a type parameter such as `T`, or a fixed
/// type such as `int64`).
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Formal {
    pub name: String,
    pub type_str: String,
    pub option: FormalOption,
}

/// One version of an operator's schema.
#[derive(Debug, Clone)]
pub struct OpVersion {
    pub since: i64,
    pub inputs: Vec<Formal>,
    pub outputs: Vec<Formal>,
}

impl OpVersion {
    /// The formal parameter that node input `index` binds to (a trailing variadic takes the rest).
    pub fn input_formal(&self, index: usize) -> Option<&Formal> {
        formal_at(&self.inputs, index)
    }

    /// The formal parameter that node output `index` binds to.
    pub fn output_formal(&self, index: usize) -> Option<&Formal> {
        formal_at(&self.outputs, index)
    }
}

fn formal_at(formals: &[Formal], index: usize) -> Option<&Formal> {
    formals.get(index).or_else(|| {
        formals
            .last()
            .filter(|f| f.option == FormalOption::Variadic)
    })
}

#[derive(Deserialize)]
pub(crate) struct RawOpVersion {
    since: i64,
    inputs: Vec<(String, String, FormalOption)>,
    outputs: Vec<(String, String, FormalOption)>,
}

/// Every schema version, by domain and op, ascending.
#[derive(Debug, Default)]
pub struct OpVersions {
    by_op: BTreeMap<(String, String), Vec<OpVersion>>,
}

impl OpVersions {
    pub(crate) fn new(raw: BTreeMap<String, BTreeMap<String, Vec<RawOpVersion>>>) -> Self {
        let formal = |(name, type_str, option): (String, String, FormalOption)| Formal {
            name,
            type_str,
            option,
        };
        let mut by_op = BTreeMap::new();
        for (domain, ops) in raw {
            for (op, versions) in ops {
                let mut versions: Vec<OpVersion> = versions
                    .into_iter()
                    .map(|s| OpVersion {
                        since: s.since,
                        inputs: s.inputs.into_iter().map(formal).collect(),
                        outputs: s.outputs.into_iter().map(formal).collect(),
                    })
                    .collect();
                versions.sort_by_key(|s| s.since);
                by_op.insert((domain.clone(), op), versions);
            }
        }
        Self { by_op }
    }

    /// The schema a node of `domain::op` gets under opset `opset` of its domain.
    pub fn get(&self, domain: &str, op: &str, opset: i64) -> Option<&OpVersion> {
        self.by_op
            .get(&(crate::domain_key(domain).to_owned(), op.to_owned()))?
            .iter()
            .rev()
            .find(|s| s.since <= opset)
    }

    /// Every version of `domain::op`, ascending.
    pub fn versions(&self, domain: &str, op: &str) -> &[OpVersion] {
        self.by_op
            .get(&(crate::domain_key(domain).to_owned(), op.to_owned()))
            .map_or(&[], Vec::as_slice)
    }
}

#[cfg(test)]
mod tests {
    use crate::pinned;
    use crate::schema::Schema;

    #[test]
    fn the_type_constraint_table_resolves_only_to_versions_ort_registers() {
        let versions = &pinned().op_versions;
        let mut checked = 0;
        for ((domain, op), listed) in &versions.by_op {
            for v in listed {
                let Some(schema) = Schema::find(domain, op, v.since) else {
                    continue;
                };
                assert!(
                    listed.iter().any(|l| l.since == schema.since),
                    "{domain}::{op}-{}: not a version ORT registers",
                    schema.since
                );
                checked += 1;
            }
        }
        assert!(checked > 800, "{checked}");
    }
}
