//! The emulator's two failure domains: protocol errors a runtime client made (answered with the
//! status and `errorType` the real Runtime API uses), and reasons a function could not be run at
//! all (which end a command with exit code 4).

use std::time::Duration;

use axum::Json;
use axum::http::StatusCode;
use axum::response::{IntoResponse, Response};

/// A runtime client broke the Runtime API protocol.
#[derive(Debug, Clone, Copy, PartialEq, Eq, thiserror::Error)]
pub enum RuntimeApiError {
    /// The request id is not the one in flight, or was already answered.
    #[error("Invalid request ID")]
    InvalidRequestId,
    /// The call does not fit the instance's state (`/response` before `/next`, `/next` while an
    /// invocation is in flight, `/init/error` after init).
    #[error("State transition is not allowed")]
    InvalidStateTransition,
    /// A response over 6 MiB + 100 bytes.
    #[error("Exceeded maximum allowed payload size (6291556 bytes).")]
    RequestEntityTooLarge,
}

impl RuntimeApiError {
    pub fn status(self) -> StatusCode {
        match self {
            RuntimeApiError::InvalidRequestId => StatusCode::BAD_REQUEST,
            RuntimeApiError::InvalidStateTransition => StatusCode::FORBIDDEN,
            RuntimeApiError::RequestEntityTooLarge => StatusCode::PAYLOAD_TOO_LARGE,
        }
    }

    /// The `errorType` the real Runtime API puts in the body.
    pub fn error_type(self) -> &'static str {
        match self {
            RuntimeApiError::InvalidRequestId => "InvalidRequestID",
            RuntimeApiError::InvalidStateTransition => "InvalidStateTransition",
            RuntimeApiError::RequestEntityTooLarge => "RequestEntityTooLarge",
        }
    }
}

/// The one place protocol errors become HTTP responses.
impl IntoResponse for RuntimeApiError {
    fn into_response(self) -> Response {
        let body = serde_json::json!({
            "errorMessage": self.to_string(),
            "errorType": self.error_type(),
        });
        (self.status(), Json(body)).into_response()
    }
}

/// Why the function could not be run at all.
#[derive(Debug, Clone, PartialEq, Eq, thiserror::Error)]
#[non_exhaustive]
pub enum EmulatorError {
    #[error("{0}")]
    Spawn(String),
    #[error("the function failed to initialise: {error_type}: {message}")]
    InitFailed { error_type: String, message: String },
    #[error("the function exited during initialisation with {status}{}", stderr_suffix(.stderr))]
    InitExited { status: String, stderr: String },
    #[error("the function did not ask for an event within {} s of starting (Lambda's init phase limit)", .0.as_secs())]
    InitTimeout(Duration),
    #[error("cannot open a Runtime API socket for the function: {0}")]
    Socket(String),
    #[error("the emulator is shutting down")]
    ShutDown,
    /// The runtime broke the Runtime API protocol (during its init, or with an event in hand).
    #[error("the runtime broke the Runtime API protocol: it {0}")]
    Protocol(String),
}

fn stderr_suffix(stderr: &str) -> String {
    let last = stderr
        .lines()
        .rev()
        .find(|l| !l.trim().is_empty())
        .unwrap_or("");
    if last.is_empty() {
        String::new()
    } else {
        format!("; its last words: {}", last.trim())
    }
}

impl EmulatorError {
    /// What the user can do about it.
    pub fn hint(&self) -> &'static str {
        match self {
            EmulatorError::Spawn(_) => {
                "check the command, its working directory and its permissions"
            }
            EmulatorError::InitFailed { .. } | EmulatorError::InitExited { .. } => {
                "run the command by hand to see the whole error; --env K=V passes configuration"
            }
            EmulatorError::InitTimeout(_) => {
                "is it a Lambda runtime? It must poll AWS_LAMBDA_RUNTIME_API for events"
            }
            EmulatorError::Socket(_) => "the machine may be out of ports or file descriptors",
            EmulatorError::ShutDown => "the run is ending",
            EmulatorError::Protocol(_) => {
                "a runtime asks for an event (GET /next), then answers that request id once; use a Lambda runtime client (awslambdaric, lambda_runtime, …)"
            }
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn each_protocol_error_has_the_real_status_and_type() {
        for (e, status, ty) in [
            (RuntimeApiError::InvalidRequestId, 400, "InvalidRequestID"),
            (
                RuntimeApiError::InvalidStateTransition,
                403,
                "InvalidStateTransition",
            ),
            (
                RuntimeApiError::RequestEntityTooLarge,
                413,
                "RequestEntityTooLarge",
            ),
        ] {
            assert_eq!(e.status().as_u16(), status);
            assert_eq!(e.error_type(), ty);
            assert_eq!(e.into_response().status().as_u16(), status);
        }
    }

    #[test]
    fn an_init_exit_quotes_the_last_line_of_stderr() {
        let e = EmulatorError::InitExited {
            status: "exit status 1".into(),
            stderr: "Traceback\n  File x\nModuleNotFoundError: No module named 'nope'\n\n".into(),
        };
        assert_eq!(
            e.to_string(),
            "the function exited during initialisation with exit status 1; its last words: ModuleNotFoundError: No module named 'nope'"
        );
    }
}
