//! Operator schemas as ORT knows them: the `since_version`s of each op and its formal
//! parameters, which bind a kernel's type constraints to a node's inputs and outputs.

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
pub struct Schema {
    pub since: i64,
    pub inputs: Vec<Formal>,
    pub outputs: Vec<Formal>,
}

impl Schema {
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
pub(super) struct RawSchema {
    since: i64,
    inputs: Vec<(String, String, FormalOption)>,
    outputs: Vec<(String, String, FormalOption)>,
}

/// Every schema, by domain and op, versions ascending.
#[derive(Debug, Default)]
pub struct Schemas {
    by_op: BTreeMap<(String, String), Vec<Schema>>,
}

impl Schemas {
    pub(super) fn new(raw: BTreeMap<String, BTreeMap<String, Vec<RawSchema>>>) -> Self {
        let formal = |(name, type_str, option): (String, String, FormalOption)| Formal {
            name,
            type_str,
            option,
        };
        let mut by_op = BTreeMap::new();
        for (domain, ops) in raw {
            for (op, versions) in ops {
                let mut versions: Vec<Schema> = versions
                    .into_iter()
                    .map(|s| Schema {
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
    pub fn get(&self, domain: &str, op: &str, opset: i64) -> Option<&Schema> {
        self.by_op
            .get(&(super::domain_key(domain).to_owned(), op.to_owned()))?
            .iter()
            .rev()
            .find(|s| s.since <= opset)
    }

    /// Every version of `domain::op`, ascending.
    pub fn versions(&self, domain: &str, op: &str) -> &[Schema] {
        self.by_op
            .get(&(super::domain_key(domain).to_owned(), op.to_owned()))
            .map_or(&[], Vec::as_slice)
    }
}
