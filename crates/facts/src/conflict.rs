//! The error of equating two facts that cannot both hold.

/// Two facts about one value disagree: two known dims, two dtypes, two ranks or two constants.
///
/// In an e-graph this means a rewrite claimed an equality that is false (or the model is
/// inconsistent); the pass that merged the classes must fail rather than go on.
#[derive(Clone, PartialEq, Eq, Debug, thiserror::Error)]
#[error("{what}")]
pub struct Conflict {
    what: String,
}

impl Conflict {
    pub fn new(what: impl Into<String>) -> Self {
        Self { what: what.into() }
    }

    /// What disagreed, e.g. `dim 2: 768 vs 1024`.
    pub fn what(&self) -> &str {
        &self.what
    }

    /// The same conflict, prefixed with where it was found.
    pub(crate) fn context(self, at: impl std::fmt::Display) -> Self {
        Self {
            what: format!("{at}: {}", self.what),
        }
    }
}
