//! Verdicts at the edges (issue 9): no panic, no phantom failure, no false alarm, no green when
//! nothing was judged. Each transformer here is written the way a real team writes one, with one
//! bug, served over real HTTP.

use axum::Router;
use axum::body::{Body, Bytes};
use axum::http::{HeaderValue, StatusCode};
use axum::response::{IntoResponse, Response};
use axum::routing::post;
use base64::Engine as _;
use base64::engine::general_purpose::STANDARD;
use serde_json::{Value, json};

use crate::support::{check_in, describe, failing_checks, serve, temp_dir};

/// Answer every record `Ok`, computing `data` with `f` from the decoded payload.
fn each_record(body: &[u8], f: impl Fn(&[u8]) -> Value) -> Response {
    let Ok(event) = serde_json::from_slice::<Value>(body) else {
        return (StatusCode::BAD_REQUEST, "not JSON").into_response();
    };
    let msk = event.get("sourceMSKArn").is_some();
    let key = if msk { "kafkaRecordValue" } else { "data" };
    let records = event["records"].as_array().cloned().unwrap_or_default();
    let out: Vec<Value> = records
        .iter()
        .map(|r| {
            let raw = r[key]
                .as_str()
                .and_then(|s| STANDARD.decode(s).ok())
                .unwrap_or_default();
            json!({"recordId": r["recordId"], "result": "Ok", key: f(&raw)})
        })
        .collect();
    json_response(&json!({ "records": out }))
}

fn json_response(v: &Value) -> Response {
    let mut resp = Response::new(Body::from(v.to_string()));
    resp.headers_mut()
        .insert("content-type", HeaderValue::from_static("application/json"));
    resp
}

/// Returns the decoded text instead of base64 whenever the payload is valid UTF-8 — a Node
/// handler that did `Buffer.from(data, 'base64').toString()` and forgot to encode it back.
fn decoded_text_when_utf8() -> Router {
    Router::new().route(
        "/",
        post(|body: Bytes| async move {
            each_record(&body, |raw| match std::str::from_utf8(raw) {
                Ok(text) => json!(text),
                Err(_) => json!(STANDARD.encode(raw)),
            })
        }),
    )
}

#[test]
fn decoded_text_at_the_pinned_seed_fails_without_a_panic() {
    let server =
        serve(decoded_text_when_utf8().layer(axum::extract::DefaultBodyLimit::max(8 << 20)));
    let dir = temp_dir();
    let (report, out) = check_in(
        dir.path(),
        &[
            "check",
            "--target",
            &server.url("/"),
            "--source",
            "all",
            "--cases",
            "100",
            "--seed",
            "20261126",
        ],
    );
    assert_eq!(out.status.code(), Some(1), "{}", describe(&out));
    assert_eq!(
        failing_checks(&report),
        ["data_is_base64"],
        "{}",
        describe(&out)
    );
    // Every listed failure carries its example.
    for f in report["failures"].as_array().expect("failures") {
        assert!(!f["message"].as_str().unwrap_or("").is_empty(), "{f}");
    }
}
