//! Errors that end a command, each with the exit code it maps to and a hint.

use crate::exit_codes;

/// Why a command could not do its job.
#[derive(Debug, thiserror::Error)]
#[non_exhaustive]
pub enum CliError {
    /// A bad flag, value, file or target string.
    #[error("{0}")]
    Usage(String),
    /// The target could not be started or reached.
    #[error("{message}")]
    Unavailable { message: String, hint: String },
    /// Writing a report or reading an input failed.
    #[error("{0}")]
    Io(String),
}

impl CliError {
    pub fn usage(msg: impl Into<String>) -> Self {
        CliError::Usage(msg.into())
    }

    pub fn hint(&self) -> Option<&str> {
        match self {
            CliError::Unavailable { hint, .. } => Some(hint),
            CliError::Usage(_) => Some("see --help"),
            CliError::Io(_) => None,
        }
    }
}

/// The exit code of an error: the single place errors become codes.
pub fn exit_code(e: &CliError) -> i32 {
    match e {
        CliError::Usage(_) | CliError::Io(_) => exit_codes::USAGE,
        CliError::Unavailable { .. } => exit_codes::TARGET_UNAVAILABLE,
    }
}

impl From<crate::targets::TargetError> for CliError {
    fn from(e: crate::targets::TargetError) -> Self {
        CliError::Unavailable {
            hint: e.hint().to_string(),
            message: e.to_string(),
        }
    }
}
