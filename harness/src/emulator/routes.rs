//! Every path the emulator serves and every protocol header, as constants and nothing else.
//!
//! Two APIs: the Runtime API (2018-06-01) that each function instance polls
//! ([`super::runtime_api`]), and the Invoke API (2015-03-31) that `emulate` puts in front of the
//! pool for any HTTP client ([`super::invoke_api`]). The routers mount these paths; clients,
//! handlers and tests name them from here, so a path or header is spelt once.

/// The Runtime API's version prefix.
pub const RUNTIME_PREFIX: &str = "/2018-06-01";

// Runtime API paths, under [`RUNTIME_PREFIX`] (LAMBDA_RUNTIME.md §1).
/// `GET`: the next event, long-polled.
pub const NEXT: &str = "/runtime/invocation/next";
/// `POST`: the function's answer to one invocation.
pub const RESPONSE: &str = "/runtime/invocation/{request_id}/response";
/// `POST`: the function's error for one invocation.
pub const ERROR: &str = "/runtime/invocation/{request_id}/error";
/// `POST`: the runtime failed before asking for its first event.
pub const INIT_ERROR: &str = "/runtime/init/error";

/// The Invoke API's one path: any function name is accepted (unlike RIE's `function` only).
pub const INVOKE: &str = "/2015-03-31/functions/{name}/invocations";

// Headers on a `/next` answer (LAMBDA_RUNTIME.md §1).
/// Required by every runtime client (Rust `lambda_runtime` panics without it).
pub const REQUEST_ID: &str = "lambda-runtime-aws-request-id";
/// Epoch milliseconds of the deadline; required by Rust `lambda_runtime`.
pub const DEADLINE_MS: &str = "lambda-runtime-deadline-ms";
pub const INVOKED_FUNCTION_ARN: &str = "lambda-runtime-invoked-function-arn";
pub const TRACE_ID: &str = "lambda-runtime-trace-id";

// Headers a runtime client may send.
/// Optional on `/error` and `/init/error` (awslambdaric never sends it).
pub const FUNCTION_ERROR_TYPE: &str = "lambda-runtime-function-error-type";

// Invoke API headers.
/// `Unhandled` on a function error, timeout or crash.
pub const FUNCTION_ERROR: &str = "x-amz-function-error";
/// `Tail` asks for the last 4 KB of the log in [`LOG_RESULT`].
pub const LOG_TYPE: &str = "x-amz-log-type";
/// The base64 log tail.
pub const LOG_RESULT: &str = "x-amz-log-result";
pub const EXECUTED_VERSION: &str = "x-amz-executed-version";
/// Lambda's error type header on a request it refused.
pub const AMZN_ERROR_TYPE: &str = "x-amzn-errortype";
pub const AMZN_REQUEST_ID: &str = "x-amzn-requestid";

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn headers_are_valid_lowercase_header_names() {
        for name in [
            REQUEST_ID,
            DEADLINE_MS,
            INVOKED_FUNCTION_ARN,
            TRACE_ID,
            FUNCTION_ERROR_TYPE,
            FUNCTION_ERROR,
            LOG_TYPE,
            LOG_RESULT,
            EXECUTED_VERSION,
            AMZN_ERROR_TYPE,
            AMZN_REQUEST_ID,
        ] {
            // `HeaderName::from_static` panics on anything but a valid lowercase name.
            let parsed = axum::http::HeaderName::from_static(name);
            assert_eq!(parsed.as_str(), name);
        }
    }

    #[test]
    fn paths_are_the_ones_runtime_clients_call() {
        // What the Rust, Python and Node runtime clients build from AWS_LAMBDA_RUNTIME_API.
        assert_eq!(
            format!("{RUNTIME_PREFIX}{NEXT}"),
            "/2018-06-01/runtime/invocation/next"
        );
        assert_eq!(
            format!(
                "{RUNTIME_PREFIX}{}",
                RESPONSE.replace("{request_id}", "abc")
            ),
            "/2018-06-01/runtime/invocation/abc/response"
        );
        assert_eq!(
            format!("{RUNTIME_PREFIX}{}", ERROR.replace("{request_id}", "abc")),
            "/2018-06-01/runtime/invocation/abc/error"
        );
        assert_eq!(
            format!("{RUNTIME_PREFIX}{INIT_ERROR}"),
            "/2018-06-01/runtime/init/error"
        );
        assert_eq!(
            INVOKE.replace("{name}", "function"),
            "/2015-03-31/functions/function/invocations"
        );
    }
}
