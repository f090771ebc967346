//! The Runtime API one function instance polls: `/next`, `/response`, `/error`, `/init/error`.
//!
//! Thin handlers: read the request under a cap, call the instance, map the outcome to a response.
//! The protocol decisions (which request id is current, what is a 400 or a 403) live in
//! `queue.rs` and `instance.rs`.

use std::sync::Arc;

use axum::Router;
use axum::body::Body;
use axum::extract::{DefaultBodyLimit, Path, State};
use axum::http::{HeaderMap, HeaderValue, StatusCode, header};
use axum::response::{IntoResponse, Response};
use axum::routing::{get, post};
use firehose_generators::wire::MAX_RESPONSE_BYTES;

use super::body::read_capped;
use super::error::RuntimeApiError;
use super::instance::Shared;
use super::queue::{ErrorReport, Reply};
use super::routes;
use crate::invocation::BODY_READ_CAP;

/// The most of an error report kept: enough for any stack trace.
const ERROR_BODY_CAP: usize = 1024 * 1024;

/// The Runtime API of one instance. Bodies are read by the handlers under their own caps, so
/// axum's 2 MB default limit is off.
pub fn router(instance: Arc<Shared>) -> Router {
    let api = Router::new()
        .route(routes::NEXT, get(next))
        .route(routes::RESPONSE, post(response))
        .route(routes::ERROR, post(error))
        .route(routes::INIT_ERROR, post(init_error));
    Router::new()
        .nest(routes::RUNTIME_PREFIX, api)
        .layer(DefaultBodyLimit::disable())
        .with_state(instance)
}

/// `202 {"status":"OK"}`, as the Runtime API acknowledges.
fn accepted() -> Response {
    (
        StatusCode::ACCEPTED,
        [(header::CONTENT_TYPE, "application/json")],
        r#"{"status":"OK"}"#,
    )
        .into_response()
}

async fn next(State(instance): State<Arc<Shared>>) -> Response {
    let delivery = match instance.next().await {
        Ok(d) => d,
        Err(e) => return e.into_response(),
    };
    let mut headers = HeaderMap::new();
    // awslambdaric segfaults on a `/next` answer without Content-Type (LAMBDA_RUNTIME.md §1).
    headers.insert(
        header::CONTENT_TYPE,
        HeaderValue::from_static("application/json"),
    );
    let values = [
        (routes::REQUEST_ID, delivery.request_id.clone()),
        (routes::DEADLINE_MS, delivery.deadline_ms.to_string()),
        (routes::INVOKED_FUNCTION_ARN, instance.arn.clone()),
        (routes::TRACE_ID, super::ids::trace_id()),
    ];
    for (name, value) in values {
        if let Ok(v) = HeaderValue::from_str(&value) {
            headers.insert(name, v);
        }
    }
    (StatusCode::OK, headers, delivery.event).into_response()
}

async fn response(
    State(instance): State<Arc<Shared>>,
    Path(request_id): Path<String>,
    body: Body,
) -> Response {
    let Ok(body) = read_capped(body, BODY_READ_CAP).await else {
        return StatusCode::BAD_REQUEST.into_response();
    };
    let too_large = body.size > MAX_RESPONSE_BYTES;
    let reply = Reply::Response {
        size: body.size,
        truncated: body.truncated,
        body: body.bytes,
    };
    match instance.answer(&request_id, reply) {
        // The invocation still gets the body, so the contract can say by how much it is too large.
        Ok(()) if too_large => RuntimeApiError::RequestEntityTooLarge.into_response(),
        other => acknowledge(other),
    }
}

/// Read an `/error` or `/init/error` post, `None` when the body could not be read.
async fn read_error_report(headers: &HeaderMap, body: Body) -> Option<ErrorReport> {
    let body = read_capped(body, ERROR_BODY_CAP).await.ok()?;
    Some(super::front::error_report(&body.bytes, headers))
}

fn acknowledge(result: Result<(), RuntimeApiError>) -> Response {
    match result {
        Ok(()) => accepted(),
        Err(e) => e.into_response(),
    }
}

async fn error(
    State(instance): State<Arc<Shared>>,
    Path(request_id): Path<String>,
    headers: HeaderMap,
    body: Body,
) -> Response {
    match read_error_report(&headers, body).await {
        Some(report) => acknowledge(instance.answer(&request_id, Reply::Error(report))),
        None => StatusCode::BAD_REQUEST.into_response(),
    }
}

async fn init_error(
    State(instance): State<Arc<Shared>>,
    headers: HeaderMap,
    body: Body,
) -> Response {
    match read_error_report(&headers, body).await {
        Some(report) => acknowledge(instance.init_error(Reply::InitError(report))),
        None => StatusCode::BAD_REQUEST.into_response(),
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[tokio::test]
    async fn acknowledgements_are_202_with_the_runtime_apis_body() {
        let ok = acknowledge(Ok(()));
        assert_eq!(ok.status(), StatusCode::ACCEPTED);
        assert_eq!(ok.headers()[header::CONTENT_TYPE], "application/json");
        let body = axum::body::to_bytes(ok.into_body(), 1024).await.unwrap();
        assert_eq!(&body[..], br#"{"status":"OK"}"#);
        let refused = acknowledge(Err(RuntimeApiError::RequestEntityTooLarge));
        assert_eq!(refused.status(), StatusCode::PAYLOAD_TOO_LARGE);
    }

    #[tokio::test]
    async fn error_posts_are_read_from_body_and_header() {
        let mut headers = HeaderMap::new();
        headers.insert(
            routes::FUNCTION_ERROR_TYPE,
            HeaderValue::from_static("Runtime.Crash"),
        );
        let report = read_error_report(&headers, Body::from("not json"))
            .await
            .expect("a readable body");
        assert_eq!(report.error_type, "Runtime.Crash");
        assert_eq!(report.message.as_deref(), Some("not json"));
    }
}
