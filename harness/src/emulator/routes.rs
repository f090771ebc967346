//! Every route the emulator serves, in one place, and every protocol header as a constant.
//!
//! Two APIs: the Runtime API (2018-06-01) that each function instance polls, and the Invoke API
//! (2015-03-31) that `emulate` puts in front of the pool for any HTTP client.

use std::sync::Arc;

use axum::Router;
use axum::extract::DefaultBodyLimit;
use axum::routing::{get, post};

use super::front::Front;
use super::handlers;
use super::instance::Shared;

/// The Runtime API's version prefix.
pub const RUNTIME_PREFIX: &str = "/2018-06-01";

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

/// The Runtime API one instance polls. Bodies are read by the handlers under their own caps, so
/// axum's 2 MB default limit is off.
pub fn runtime_api(instance: Arc<Shared>) -> Router {
    let api = Router::new()
        .route("/runtime/invocation/next", get(handlers::next))
        .route(
            "/runtime/invocation/{request_id}/response",
            post(handlers::response),
        )
        .route(
            "/runtime/invocation/{request_id}/error",
            post(handlers::error),
        )
        .route("/runtime/init/error", post(handlers::init_error));
    Router::new()
        .nest(RUNTIME_PREFIX, api)
        .layer(DefaultBodyLimit::disable())
        .with_state(instance)
}

/// The Invoke API `emulate` serves: any function name is accepted (unlike RIE's `function` only).
pub fn invoke_api(front: Arc<Front>) -> Router {
    Router::new()
        .route(
            "/2015-03-31/functions/{name}/invocations",
            post(handlers::invoke),
        )
        .layer(DefaultBodyLimit::disable())
        .with_state(front)
}
