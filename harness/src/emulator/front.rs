//! The Invoke API in front of the pool (`firehose-harness emulate`): what a Lambda client sees.
//!
//! Unlike RIE (LAMBDA_RUNTIME.md §4), every failure comes back the way real Lambda answers it —
//! HTTP 200, `X-Amz-Function-Error: Unhandled`, and a JSON body with `errorType` and
//! `errorMessage` — whether the function reported the error, overran its timeout
//! (`Sandbox.Timedout`) or died (`Runtime.ExitError`, the signal named). Concurrent invocations are
//! pooled, then queued; with `--throttle` (or beyond `--max-queue`) the excess is refused as Lambda
//! refuses it: HTTP 429, `x-amzn-ErrorType: TooManyRequestsException`.

use std::sync::Arc;
use std::time::Duration;

use axum::http::{HeaderMap, HeaderValue, StatusCode, header};
use axum::response::{IntoResponse, Response};
use base64::Engine as _;
use base64::engine::general_purpose::STANDARD;
use bytes::Bytes;
use serde_json::Value;
use tokio::sync::mpsc;

use super::error::EmulatorError;
use super::pool::{Emulator, error_body};
use super::queue::ErrorReport;
use super::routes;
use crate::invocation::{Invocation, Outcome};

/// How much of the log `X-Amz-Log-Type: Tail` returns, as Lambda does.
const LOG_TAIL_BYTES: usize = 4 * 1024;

/// The Invoke API's state: the pool, the per-invocation timeout, and where finished invocations'
/// logs go (the CLI prints them; the engine never does).
pub struct Front {
    emulator: Arc<Emulator>,
    timeout: Duration,
    logs: Option<mpsc::Sender<String>>,
}

impl Front {
    pub fn new(emulator: Arc<Emulator>, timeout: Duration) -> Self {
        Front {
            emulator,
            timeout,
            logs: None,
        }
    }

    /// Send each invocation's log here; when the receiver lags, logs are dropped, never awaited.
    pub fn with_logs(mut self, sink: mpsc::Sender<String>) -> Self {
        self.logs = Some(sink);
        self
    }

    pub async fn invoke(&self, event: Bytes, tail: bool) -> Response {
        match self.emulator.invoke(event, self.timeout).await {
            Ok(inv) => {
                if let (Some(sink), Some(logs)) = (&self.logs, &inv.logs) {
                    let _ = sink.try_send(logs.clone());
                }
                invocation_response(&inv, tail)
            }
            Err(e) => unavailable(&e),
        }
    }

    /// Lambda's answer to a request over its 6 MB synchronous payload limit.
    pub fn too_large(&self) -> Response {
        let body = serde_json::json!({
            "Type": "User",
            "message": format!(
                "Request must be smaller than {} bytes for the InvokeFunction operation",
                firehose_generators::wire::MAX_REQUEST_BYTES
            ),
        });
        (
            StatusCode::PAYLOAD_TOO_LARGE,
            [(routes::AMZN_ERROR_TYPE, "RequestTooLargeException")],
            axum::Json(body),
        )
            .into_response()
    }
}

/// An invocation as Lambda's Invoke API returns it.
pub fn invocation_response(inv: &Invocation, tail: bool) -> Response {
    if inv.throttled {
        return (
            StatusCode::TOO_MANY_REQUESTS,
            [
                (routes::AMZN_ERROR_TYPE, "TooManyRequestsException"),
                (header::CONTENT_TYPE.as_str(), "application/json"),
            ],
            inv.body.clone(),
        )
            .into_response();
    }
    let failed = inv.function_error.is_some() || inv.outcome != Outcome::Answered;
    let body = match &inv.outcome {
        Outcome::Broken(reason) if inv.body.is_empty() => error_body("Runtime.Unknown", reason),
        _ => inv.body.clone(),
    };
    let mut resp = (StatusCode::OK, body).into_response();
    let h = resp.headers_mut();
    h.insert(
        header::CONTENT_TYPE,
        HeaderValue::from_static("application/json"),
    );
    h.insert(
        routes::EXECUTED_VERSION,
        HeaderValue::from_static("$LATEST"),
    );
    if failed {
        h.insert(
            routes::FUNCTION_ERROR,
            HeaderValue::from_static("Unhandled"),
        );
    }
    if tail && let Some(logs) = &inv.logs {
        let bytes = logs.as_bytes();
        let last = &bytes[bytes.len().saturating_sub(LOG_TAIL_BYTES)..];
        if let Ok(v) = HeaderValue::from_str(&STANDARD.encode(last)) {
            h.insert(routes::LOG_RESULT, v);
        }
    }
    resp
}

/// The function could not be run at all: a function error, as Lambda reports a runtime it cannot
/// start, or 503 once the emulator is shutting down.
fn unavailable(e: &EmulatorError) -> Response {
    let error_type = match e {
        EmulatorError::ShutDown => {
            let body = serde_json::json!({"Type": "Service", "message": e.to_string()});
            return (
                StatusCode::SERVICE_UNAVAILABLE,
                [(routes::AMZN_ERROR_TYPE, "ServiceException")],
                axum::Json(body),
            )
                .into_response();
        }
        EmulatorError::Spawn(_) => "Runtime.InvalidEntrypoint",
        EmulatorError::InitFailed { error_type, .. } => error_type.as_str(),
        EmulatorError::InitExited { .. } => "Runtime.ExitError",
        _ => "Runtime.Unknown",
    };
    (
        StatusCode::OK,
        [
            (routes::FUNCTION_ERROR, "Unhandled"),
            (header::CONTENT_TYPE.as_str(), "application/json"),
        ],
        error_body(error_type, &e.to_string()),
    )
        .into_response()
}

/// Read a runtime's `/error` or `/init/error` post leniently: `errorType` from the body, else the
/// optional `Lambda-Runtime-Function-Error-Type` header, else `Unhandled`; the body kept when it is
/// a JSON object (it is what the Invoke API returns), else wrapped in one.
pub fn error_report(body: &[u8], headers: &HeaderMap) -> ErrorReport {
    let object = match serde_json::from_slice::<Value>(body) {
        Ok(Value::Object(m)) => Some(m),
        _ => None,
    };
    let field = |k: &str| {
        object
            .as_ref()
            .and_then(|m| m.get(k))
            .and_then(Value::as_str)
            .filter(|s| !s.is_empty())
            .map(str::to_string)
    };
    let error_type = field("errorType")
        .or_else(|| {
            headers
                .get(routes::FUNCTION_ERROR_TYPE)
                .and_then(|v| v.to_str().ok())
                .filter(|s| !s.is_empty())
                .map(str::to_string)
        })
        .unwrap_or_else(|| "Unhandled".into());
    let message = match &object {
        Some(_) => field("errorMessage"),
        None if body.is_empty() => None,
        None => Some(String::from_utf8_lossy(&body[..body.len().min(4096)]).into_owned()),
    };
    let body = match object {
        Some(_) => Bytes::copy_from_slice(body),
        None => error_body(&error_type, message.as_deref().unwrap_or("")),
    };
    ErrorReport {
        body,
        error_type,
        message,
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn error_reports_are_read_from_body_then_header() {
        let mut headers = HeaderMap::new();
        let r = error_report(
            br#"{"errorMessage":"boom","errorType":"ValueError","requestId":"x","stackTrace":[]}"#,
            &headers,
        );
        assert_eq!(
            (r.error_type.as_str(), r.message.as_deref()),
            ("ValueError", Some("boom"))
        );
        assert!(r.body.starts_with(b"{\"errorMessage\""));
        headers.insert(
            routes::FUNCTION_ERROR_TYPE,
            HeaderValue::from_static("unhandled"),
        );
        let r = error_report(br#"{"errorMessage":"x"}"#, &headers);
        assert_eq!(
            (r.error_type.as_str(), r.message.as_deref()),
            ("unhandled", Some("x"))
        );
        let r = error_report(b"plain words", &HeaderMap::new());
        assert_eq!(
            (r.error_type.as_str(), r.message.as_deref()),
            ("Unhandled", Some("plain words"))
        );
        let v: Value = serde_json::from_slice(&r.body).unwrap();
        assert_eq!(v["errorMessage"], "plain words");
    }

    #[test]
    fn failures_carry_the_function_error_header_and_a_json_body() {
        let mut inv = Invocation::timed_out(Duration::from_secs(1));
        inv.body = error_body("Sandbox.Timedout", "Task timed out after 1.00 seconds");
        inv.logs = Some("START\nlog line\nEND\n".into());
        let resp = invocation_response(&inv, true);
        assert_eq!(resp.status(), StatusCode::OK);
        assert_eq!(resp.headers()[routes::FUNCTION_ERROR], "Unhandled");
        let tail = STANDARD
            .decode(resp.headers()[routes::LOG_RESULT].as_bytes())
            .unwrap();
        assert_eq!(tail, b"START\nlog line\nEND\n");
        let ok = Invocation::answered(None, Bytes::from_static(b"{}"), Duration::ZERO);
        let resp = invocation_response(&ok, false);
        assert!(resp.headers().get(routes::FUNCTION_ERROR).is_none());
        let mut throttled = Invocation::answered(
            Some(429),
            crate::emulator::pool::throttle_body(),
            Duration::ZERO,
        );
        throttled.throttled = true;
        let resp = invocation_response(&throttled, false);
        assert_eq!(resp.status(), StatusCode::TOO_MANY_REQUESTS);
        assert_eq!(
            resp.headers()[routes::AMZN_ERROR_TYPE],
            "TooManyRequestsException"
        );
        let broken = Invocation::broken("gone", Duration::ZERO);
        assert_eq!(
            invocation_response(&broken, false).headers()[routes::FUNCTION_ERROR],
            "Unhandled"
        );
    }
}
