//! Thin HTTP handlers: read the request under a cap, call the instance or the front, map the
//! outcome to a response. The protocol decisions live in `queue.rs` and `front.rs`.

use std::sync::Arc;

use axum::body::Body;
use axum::extract::{Path, State};
use axum::http::{HeaderMap, HeaderValue, StatusCode, header};
use axum::response::{IntoResponse, Response};
use bytes::{Bytes, BytesMut};
use firehose_generators::wire::MAX_RESPONSE_BYTES;
use http_body_util::BodyExt;

use super::error::RuntimeApiError;
use super::front::Front;
use super::instance::Shared;
use super::queue::{ErrorReport, Reply};
use super::routes;
use crate::invocation::BODY_READ_CAP;

/// The most of an error report kept: enough for any stack trace.
const ERROR_BODY_CAP: usize = 1024 * 1024;
/// Past this much a body is not read any further, only refused.
const DISCARD_LIMIT: usize = 64 * 1024 * 1024;

/// A request body: at most `cap` bytes kept, its whole size counted (up to [`DISCARD_LIMIT`]).
pub struct Capped {
    pub bytes: Bytes,
    pub size: usize,
    pub truncated: bool,
}

pub async fn read_capped(mut body: Body, cap: usize) -> Result<Capped, axum::Error> {
    let mut kept = BytesMut::new();
    let mut size = 0usize;
    while let Some(frame) = body.frame().await {
        let Ok(data) = frame?.into_data() else {
            continue;
        };
        size += data.len();
        let room = cap.saturating_sub(kept.len());
        kept.extend_from_slice(&data[..data.len().min(room)]);
        if size > DISCARD_LIMIT {
            break;
        }
    }
    Ok(Capped {
        truncated: size > kept.len(),
        bytes: kept.freeze(),
        size,
    })
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

pub async fn next(State(instance): State<Arc<Shared>>) -> Response {
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

pub async fn response(
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

pub async fn error(
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

pub async fn init_error(
    State(instance): State<Arc<Shared>>,
    headers: HeaderMap,
    body: Body,
) -> Response {
    match read_error_report(&headers, body).await {
        Some(report) => acknowledge(instance.init_error(Reply::InitError(report))),
        None => StatusCode::BAD_REQUEST.into_response(),
    }
}

pub async fn invoke(
    State(front): State<Arc<Front>>,
    Path(_function): Path<String>,
    headers: HeaderMap,
    body: Body,
) -> Response {
    let event = match read_capped(body, firehose_generators::wire::MAX_REQUEST_BYTES).await {
        Ok(b) if !b.truncated => b.bytes,
        Ok(_) => return front.too_large(),
        Err(_) => return StatusCode::BAD_REQUEST.into_response(),
    };
    let tail = headers
        .get(routes::LOG_TYPE)
        .is_some_and(|v| v.as_bytes().eq_ignore_ascii_case(b"tail"));
    front.invoke(event, tail).await
}
