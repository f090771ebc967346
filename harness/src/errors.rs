//! Errors that end a command, each with the exit code it maps to and a hint.
//!
//! One kind per way a command can fail, so the exit code is chosen by what went wrong rather than
//! by which `String` happened to carry it: [`exit_code`] is the one place kinds become codes.

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
    /// An input could not be read or an output stream or file (stdout, man pages, delivery
    /// files) could not be written.
    #[error("{0}")]
    Io(String),
    /// The report files could not be written: the one failure that loses the run's verdict.
    #[error("{0}")]
    Report(String),
    /// The harness could not set itself up: signal handlers, the async runtime. Nothing about the
    /// target or the flags is wrong; the machine refused a resource.
    #[error("{0}")]
    Setup(String),
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
            CliError::Report(_) => {
                Some("check that --report-dir is writable and its disk has room")
            }
            CliError::Setup(_) => Some(
                "the machine refused a resource the harness needs (threads, signal handlers): check ulimit -a",
            ),
        }
    }
}

/// The exit code of an error: the single place errors become codes.
pub fn exit_code(e: &CliError) -> i32 {
    match e {
        CliError::Usage(_) => exit_codes::USAGE,
        CliError::Unavailable { .. } => exit_codes::TARGET_UNAVAILABLE,
        // DESIGN.md: only a report that cannot be written is exit 2 after a run; the rest are
        // configuration errors of the command or of the machine it runs on.
        CliError::Io(_) | CliError::Report(_) | CliError::Setup(_) => exit_codes::USAGE,
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

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn each_kind_has_its_exit_code_and_a_hint_where_one_helps() {
        let cases = [
            (CliError::usage("bad flag"), exit_codes::USAGE, true),
            (
                CliError::Unavailable {
                    message: "connection refused".into(),
                    hint: "is it running?".into(),
                },
                exit_codes::TARGET_UNAVAILABLE,
                true,
            ),
            (
                CliError::Io("cannot write to stdout".into()),
                exit_codes::USAGE,
                false,
            ),
            (
                CliError::Report("disk full".into()),
                exit_codes::USAGE,
                true,
            ),
            (
                CliError::Setup("cannot listen for signals".into()),
                exit_codes::USAGE,
                true,
            ),
        ];
        for (e, code, hinted) in cases {
            assert_eq!(exit_code(&e), code, "{e:?}");
            assert_eq!(e.hint().is_some(), hinted, "{e:?}");
        }
    }
}
