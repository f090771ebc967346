//! The Invoke API `emulate` serves (`POST /2015-03-31/functions/{name}/invocations`): one thin
//! handler in front of [`Front`], which decides every answer.

use std::sync::Arc;

use axum::Router;
use axum::body::Body;
use axum::extract::{DefaultBodyLimit, State};
use axum::http::{HeaderMap, StatusCode};
use axum::response::{IntoResponse, Response};
use axum::routing::post;

use super::body::read_capped;
use super::front::Front;
use super::routes;

/// The Invoke API: any function name is accepted (unlike RIE's `function` only). Bodies are read
/// under Lambda's request limit by the handler, so axum's 2 MB default limit is off.
pub fn router(front: Arc<Front>) -> Router {
    Router::new()
        .route(routes::INVOKE, post(invoke))
        .layer(DefaultBodyLimit::disable())
        .with_state(front)
}

/// `X-Amz-Log-Type: Tail` (any case) asks for the log tail.
fn wants_tail(headers: &HeaderMap) -> bool {
    headers
        .get(routes::LOG_TYPE)
        .is_some_and(|v| v.as_bytes().eq_ignore_ascii_case(b"tail"))
}

/// The function name in the path is not read: the emulator serves one function under any name.
async fn invoke(State(front): State<Arc<Front>>, headers: HeaderMap, body: Body) -> Response {
    let event = match read_capped(body, firehose_generators::wire::MAX_REQUEST_BYTES).await {
        Ok(b) if !b.truncated => b.bytes,
        Ok(_) => return front.too_large(),
        Err(_) => return StatusCode::BAD_REQUEST.into_response(),
    };
    front.invoke(event, wants_tail(&headers)).await
}

#[cfg(test)]
mod tests {
    use std::time::Duration;

    use axum::http::HeaderValue;

    use super::*;
    use crate::emulator::{CommandLine, Emulator, EmulatorConfig, FunctionSpec};

    /// A front whose function is never started: the tests below are decided before it would be.
    fn front() -> Arc<Front> {
        let spec = FunctionSpec::new(CommandLine::parse("/nonexistent/never-started").unwrap());
        let emulator = Arc::new(Emulator::new(spec, EmulatorConfig::default()));
        Arc::new(Front::new(emulator, Duration::from_secs(1)))
    }

    #[test]
    fn the_log_tail_is_asked_for_in_any_case() {
        let mut h = HeaderMap::new();
        assert!(!wants_tail(&h));
        h.insert(routes::LOG_TYPE, HeaderValue::from_static("TAIL"));
        assert!(wants_tail(&h));
        h.insert(routes::LOG_TYPE, HeaderValue::from_static("None"));
        assert!(!wants_tail(&h));
    }

    #[tokio::test]
    async fn an_event_over_lambdas_limit_is_refused_before_any_function_runs() {
        let big = vec![b' '; firehose_generators::wire::MAX_REQUEST_BYTES + 1];
        let resp = invoke(State(front()), HeaderMap::new(), Body::from(big)).await;
        assert_eq!(resp.status(), StatusCode::PAYLOAD_TOO_LARGE);
        assert_eq!(
            resp.headers()[routes::AMZN_ERROR_TYPE],
            "RequestTooLargeException"
        );
    }

    #[tokio::test]
    async fn a_body_that_breaks_off_is_a_bad_request() {
        let stream = futures_util::stream::iter(vec![
            Ok(bytes::Bytes::from_static(b"{")),
            Err(std::io::Error::other("reset")),
        ]);
        let resp = invoke(State(front()), HeaderMap::new(), Body::from_stream(stream)).await;
        assert_eq!(resp.status(), StatusCode::BAD_REQUEST);
    }
}
