//! Why a node that produces float32 still does: the reasons the policy, the solver and the
//! rotary labelling give, with the key and the detail the report shows for each.

/// Why a node that produces float32 still does.
#[derive(Clone, Debug, PartialEq, Eq, PartialOrd, Ord)]
pub(crate) enum Reason {
    BlockedOp,
    BlockedNode,
    InsideBlocked,
    NoSchema,
    Sequence,
    UnknownType,
    NoLowType,
    Target(&'static str),
    Rotary,
    Positional,
    NormStatistics,
    Accumulation,
    RunningStatistics,
    Range(String),
    FollowsInput,
    Consumers,
}

impl Reason {
    /// The report's key.
    pub fn key(&self) -> &'static str {
        match self {
            Reason::BlockedOp => "op block list",
            Reason::BlockedNode => "node block list",
            Reason::InsideBlocked => "inside a blocked node",
            Reason::NoSchema => "no schema (custom op or function)",
            Reason::Sequence => "sequence or optional values",
            Reason::UnknownType => "operand of unknown type",
            Reason::NoLowType => "schema has no low-precision type at this opset",
            Reason::Target(_) => "no kernel on the target EP",
            Reason::Rotary => "rotary",
            Reason::Positional => "integer-derived arithmetic",
            Reason::NormStatistics => "normalization statistics",
            Reason::Accumulation => "accumulating scatter",
            Reason::RunningStatistics => "running statistics (training-mode BatchNormalization)",
            Reason::Range(_) => "constant out of range",
            Reason::FollowsInput => "follows a float32 input",
            Reason::Consumers => "float32 readers",
        }
    }

    /// A decline rather than a policy: the pass could not convert the node safely.
    pub fn is_decline(&self) -> bool {
        matches!(
            self,
            Reason::NoSchema | Reason::Sequence | Reason::UnknownType
        )
    }

    pub fn detail(&self) -> String {
        match self {
            Reason::Range(what) => format!("{}: {what}", self.key()),
            Reason::Target(ep) => format!("no low-precision kernel on {ep}"),
            other => other.key().to_owned(),
        }
    }
}
