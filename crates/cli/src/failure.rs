//! Why a command failed, and the exit status that says so.

use std::fmt;

/// A failed command. Library errors already name the file, node and reason; this adds the
/// exit status.
#[derive(Debug)]
pub enum Failure {
    /// Bad input or usage: exit 1, nothing written.
    Input(String),
    /// A pass refused the model, `--strict` met a decline, or `--verify` failed: exit 2.
    Refused(String),
}

impl Failure {
    pub fn input(error: impl fmt::Display) -> Self {
        Self::Input(error.to_string())
    }

    pub fn exit_code(&self) -> u8 {
        match self {
            Self::Input(_) => 1,
            Self::Refused(_) => 2,
        }
    }
}

impl fmt::Display for Failure {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        match self {
            Self::Input(message) | Self::Refused(message) => f.write_str(message),
        }
    }
}
