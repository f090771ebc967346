//! `check --workers N` (issue 16, point 1): cases run side by side, yet the report is the same
//! for any N, and every case and every shrink step is really sent.

use std::collections::HashSet;
use std::sync::{Arc, Mutex};
use std::time::Duration;

use axum::Router;
use axum::body::Bytes;
use axum::extract::State;
use axum::http::StatusCode;
use axum::routing::post;
use serde_json::{Value, json};

use crate::support::{check_in, describe, serve, temp_dir};

type Seen = Arc<Mutex<HashSet<Vec<u8>>>>;

/// A transformer with several distinct bugs, chosen by the first record id, that answers after a delay
/// taken from the event's bytes, so later cases often finish before earlier ones.
async fn transform(State(seen): State<Seen>, body: Bytes) -> (StatusCode, Vec<u8>) {
    seen.lock().unwrap().insert(body.to_vec());
    let hash = body
        .iter()
        .fold(7u64, |h, b| h.wrapping_mul(31).wrapping_add(u64::from(*b)));
    tokio::time::sleep(Duration::from_millis(hash % 60)).await;
    let event: Value = serde_json::from_slice(&body).unwrap_or_default();
    let ids: Vec<Value> = event["records"]
        .as_array()
        .map(|r| r.iter().map(|r| r["recordId"].clone()).collect())
        .unwrap_or_default();
    let record =
        |id: &Value, result: &str| json!({"recordId": id, "result": result, "data": "aGkK"});
    // Which bug, from the first record's id: shrinking keeps the first record, so a case keeps
    // its bug while it shrinks.
    let first = ids.first().and_then(Value::as_str).unwrap_or_default();
    let which = first.bytes().map(u32::from).sum::<u32>() % 6;
    let records: Vec<Value> = match which {
        // The last record lost.
        0 => ids[..ids.len().saturating_sub(1)]
            .iter()
            .map(|id| record(id, "Ok"))
            .collect(),
        // A result Firehose does not know.
        1 => ids.iter().map(|id| record(id, "Fine")).collect(),
        // The first record twice.
        2 => ids
            .iter()
            .chain(ids.first())
            .map(|id| record(id, "Ok"))
            .collect(),
        // A crash.
        3 => return (StatusCode::INTERNAL_SERVER_ERROR, b"boom".to_vec()),
        _ => ids.iter().map(|id| record(id, "Ok")).collect(),
    };
    (
        StatusCode::OK,
        serde_json::to_vec(&json!({ "records": records })).unwrap(),
    )
}

/// The report without what depends on timing.
fn masked(mut report: Value) -> Value {
    fn strip(v: &mut Value) {
        match v {
            Value::Object(map) => {
                for key in [
                    "started_at",
                    "duration_ms",
                    "latency",
                    "elapsed_ms",
                    "notes",
                ] {
                    map.remove(key);
                }
                map.values_mut().for_each(strip);
            }
            Value::Array(items) => items.iter_mut().for_each(strip),
            _ => {}
        }
    }
    strip(&mut report);
    report
}

/// Every case.json of a run, by folder name, timing masked.
fn cases(dir: &std::path::Path) -> Vec<(String, Value)> {
    let mut out: Vec<(String, Value)> = std::fs::read_dir(dir.join("R/cases"))
        .map(|d| {
            d.filter_map(Result::ok)
                .map(|e| {
                    let meta = std::fs::read(e.path().join("case.json")).unwrap();
                    let meta = masked(serde_json::from_slice(&meta).unwrap());
                    (e.file_name().to_string_lossy().into_owned(), meta)
                })
                .collect()
        })
        .unwrap_or_default();
    out.sort_by(|a, b| a.0.cmp(&b.0));
    out
}

#[test]
fn one_worker_and_four_write_the_same_report_and_send_every_case() {
    let seen: Seen = Arc::default();
    let server = serve(
        Router::new()
            .route("/", post(transform))
            .with_state(seen.clone()),
    );
    let url = server.url("/");
    let run = |workers: &str| {
        seen.lock().unwrap().clear();
        let dir = temp_dir();
        let (report, out) = check_in(
            dir.path(),
            &[
                "check",
                "--target",
                &url,
                "--seed",
                "4242",
                "--cases",
                "40",
                "--records",
                "1..9",
                "--record-size",
                "0..300",
                "--no-boundary",
                "--workers",
                workers,
            ],
        );
        assert_eq!(out.status.code(), Some(1), "{}", describe(&out));
        let distinct = seen.lock().unwrap().len() as u64;
        (report, cases(dir.path()), distinct)
    };
    let (one, one_cases, _) = run("1");
    let (four, four_cases, distinct) = run("4");
    let failures = four["failures"].as_array().unwrap();
    let checks: HashSet<&str> = failures
        .iter()
        .map(|f| f["check"].as_str().unwrap())
        .collect();
    assert!(checks.len() >= 3, "several distinct failures: {checks:?}");
    assert_eq!(masked(one), masked(four.clone()));
    assert_eq!(one_cases, four_cases);
    assert!(!four_cases.is_empty());
    // Nothing skipped, nothing cached: the server saw each case and each shrink step once.
    let run: u64 = four["phases"]
        .as_array()
        .unwrap()
        .iter()
        .map(|p| p["run"].as_u64().unwrap())
        .sum();
    let steps: u64 = failures
        .iter()
        .filter_map(|f| f["shrink"]["steps"].as_u64())
        .sum();
    assert_eq!(run, 40);
    assert_eq!(distinct, run + steps);
}

#[test]
fn workers_must_be_a_number_or_auto() {
    let dir = temp_dir();
    let out = crate::support::run_in(
        dir.path(),
        &["check", "--target", "builtin:ndjson", "--workers", "0"],
    );
    assert_eq!(out.status.code(), Some(2), "{}", describe(&out));
    assert!(String::from_utf8_lossy(&out.stderr).contains("--workers"));
    let out = crate::support::run_in(
        dir.path(),
        &[
            "check",
            "--target",
            "builtin:ndjson",
            "--workers",
            "auto",
            "--cases",
            "3",
            "--no-boundary",
        ],
    );
    assert_eq!(out.status.code(), Some(0), "{}", describe(&out));
}
