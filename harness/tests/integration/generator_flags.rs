//! Issue 9, points 4 and 6: the generators stay inside the user's flags in every phase (boundary,
//! random, shrinking), a batch is at most the buffer hint plus one record, and payloads are what
//! real producers send — CloudWatch Logs as a subscription delivers it, JSON with lone surrogates.

use std::sync::{Arc, Mutex};

use axum::Router;
use axum::body::Bytes;
use axum::http::{HeaderValue, StatusCode};
use axum::response::{IntoResponse, Response};
use axum::routing::post;
use base64::Engine as _;
use base64::engine::general_purpose::STANDARD;
use firehose_generators::payload::{Compression, decompress};
use firehose_generators::wire::MAX_RECORD_BYTES;
use serde_json::{Value, json};

use crate::runtimes::{awslambdaric_target, python_fixtures};
use crate::support::{check_in, describe, failing_checks, run_in, serve, temp_dir};

const HINT: usize = 1_000_000;

/// What one received event looked like, measured as it arrived.
#[derive(Debug, Clone)]
struct Shape {
    source: &'static str,
    /// The sum of the records' data as put (decoded base64): what the buffer hint measures.
    data: usize,
    /// Per record: (compression sniffed from the bytes, the decompressed bytes look like one JSON
    /// object).
    records: Vec<(Compression, bool)>,
}

fn shape(event: &Value) -> Shape {
    let source = if event.get("sourceKinesisStreamArn").is_some() {
        "kinesis"
    } else if event.get("sourceMSKArn").is_some() {
        "msk"
    } else {
        "direct-put"
    };
    let key = if source == "msk" {
        "kafkaRecordValue"
    } else {
        "data"
    };
    let mut data = 0;
    let mut records = Vec::new();
    for r in event["records"].as_array().into_iter().flatten() {
        let bytes = r[key]
            .as_str()
            .and_then(|s| STANDARD.decode(s).ok())
            .unwrap_or_default();
        data += bytes.len();
        // A header that only looks compressed (random binary bytes can) counts as none.
        let (kind, raw) = match decompress(Compression::sniff(&bytes), &bytes, 64 << 20) {
            Ok(raw) => (Compression::sniff(&bytes), raw),
            Err(_) => (Compression::None, bytes),
        };
        // serde_json refuses lone surrogates, which are legal JSON: judge the object's outline.
        let json = std::str::from_utf8(&raw).is_ok_and(|s| s.starts_with('{') && s.ends_with('}'));
        records.push((kind, json));
    }
    Shape {
        source,
        data,
        records,
    }
}

/// An HTTP transformer that records the shape of every event it gets: `/identity` answers every
/// record `Ok` unchanged, `/fail` answers every batch with a function error (so shrinking runs).
fn recorder() -> (Router, Arc<Mutex<Vec<Shape>>>) {
    let seen = Arc::new(Mutex::new(Vec::new()));
    let route = |fail: bool| {
        let seen = seen.clone();
        post(move |body: Bytes| {
            let seen = seen.clone();
            async move { answer(&seen, fail, &body) }
        })
    };
    let router = Router::new()
        .route("/identity", route(false))
        .route("/fail", route(true))
        .layer(axum::extract::DefaultBodyLimit::max(8 << 20));
    (router, seen)
}

fn answer(seen: &Mutex<Vec<Shape>>, fail: bool, body: &[u8]) -> Response {
    let Ok(event) = serde_json::from_slice::<Value>(body) else {
        return (StatusCode::BAD_REQUEST, "not JSON").into_response();
    };
    let shape = shape(&event);
    let key = if shape.source == "msk" {
        "kafkaRecordValue"
    } else {
        "data"
    };
    seen.lock().unwrap().push(shape);
    if fail {
        let mut resp = axum::Json(json!({"errorMessage": "always fails", "errorType": "Error"}))
            .into_response();
        resp.headers_mut().insert(
            "X-Amz-Function-Error",
            HeaderValue::from_static("Unhandled"),
        );
        return resp;
    }
    let records: Vec<Value> = event["records"]
        .as_array()
        .into_iter()
        .flatten()
        .map(|r| json!({"recordId": r["recordId"], "result": "Ok", key: r[key]}))
        .collect();
    axum::Json(json!({ "records": records })).into_response()
}

/// Firehose's bound under a 1 MB hint with default record sizes: the hint plus one record.
const LIMIT: usize = HINT + MAX_RECORD_BYTES;

/// `check --buffer-size 1MB --source SOURCE --cases 30` against `target`, which must pass.
fn check_1mb(target: &str, source: &str, seed: &str) -> Value {
    let dir = temp_dir();
    let (report, out) = check_in(
        dir.path(),
        &[
            "check",
            "--target",
            target,
            "--buffer-size",
            "1MB",
            "--source",
            source,
            "--cases",
            "30",
            "--seed",
            seed,
        ],
    );
    assert_eq!(out.status.code(), Some(0), "{source}: {}", describe(&out));
    assert_eq!(report["verdict"], "pass", "{source}");
    report
}

#[test]
fn identity_passes_a_1mb_buffer_on_every_source_and_the_buffer_is_filled() {
    for source in ["direct-put", "kinesis", "msk"] {
        let report = check_1mb("builtin:identity", source, "9");
        // The largest batch's records' data as put is at least 0.9 × (hint + one record).
        let largest = report["largest_passing_batch"]["bytes"].as_u64().unwrap() as usize;
        assert!(largest * 10 >= LIMIT * 9, "{source}: {largest}");
        assert!(largest <= LIMIT, "{source}: {largest}");
    }
}

#[test]
fn identity_over_http_sees_every_batch_within_hint_plus_one_record() {
    let (router, seen) = recorder();
    let server = serve(router);
    for source in ["direct-put", "kinesis", "msk"] {
        seen.lock().unwrap().clear();
        check_1mb(&server.url("/identity"), source, "4");
        let seen = seen.lock().unwrap();
        assert!(seen.len() >= 30, "{source}: {} events", seen.len());
        let largest = seen.iter().map(|s| s.data).max().unwrap();
        for s in seen.iter() {
            assert_eq!(s.source, source);
            assert!(s.data <= LIMIT, "{source}: a batch of {} bytes", s.data);
        }
        assert!(largest * 10 >= LIMIT * 9, "{source}: largest {largest}");
    }
}

#[test]
fn kinesis_gzip_json_is_all_that_is_sent_in_every_phase() {
    let (router, seen) = recorder();
    let server = serve(router);
    let dir = temp_dir();
    let (report, out) = check_in(
        dir.path(),
        &[
            "check",
            "--target",
            &server.url("/fail"),
            "--source",
            "kinesis",
            "--compression",
            "gzip",
            "--payload",
            "json",
            "--cases",
            "5",
            "--seed",
            "3",
            "--timeout",
            "20s",
        ],
    );
    assert_eq!(out.status.code(), Some(1), "{}", describe(&out));
    assert_eq!(failing_checks(&report), ["invocation_succeeded"]);
    // Shrinking ran: it sent more than the boundary and random cases.
    let phases = report["phases"].as_array().unwrap();
    let planned: u64 = phases.iter().map(|p| p["run"].as_u64().unwrap()).sum();
    let seen = seen.lock().unwrap();
    assert!(seen.len() as u64 > planned + 5, "{} events", seen.len());
    for s in seen.iter() {
        assert_eq!(s.source, "kinesis");
        for (kind, json) in &s.records {
            assert_eq!(*kind, Compression::Gzip, "{s:?}");
            assert!(json, "{s:?}");
        }
    }
    // The minimal case says so too.
    let minimal = report["failures"][0]["minimal_batch"].as_str().unwrap();
    assert!(minimal.starts_with("1 record from kinesis"), "{minimal}");
    assert!(
        minimal.contains(": json") && minimal.contains("gzip"),
        "{minimal}"
    );
    // The corners the flags rule out are named in the notes, not sent.
    let notes = report["notes"].to_string();
    assert!(notes.contains("kinesis/empty-record skipped"), "{notes}");
}

#[test]
fn impossible_payload_and_compression_pairs_exit_2_naming_the_flags() {
    let dir = temp_dir();
    for (payload, compression) in [
        ("cwl", "none"),
        ("cwl", "zlib"),
        ("cwl-decompressed", "gzip"),
        ("cwl-extracted", "gzip,zlib"),
    ] {
        let out = run_in(
            dir.path(),
            &[
                "generate",
                "--count",
                "1",
                "--payload",
                payload,
                "--compression",
                compression,
            ],
        );
        assert_eq!(out.status.code(), Some(2), "{payload}/{compression}");
        let stderr = String::from_utf8_lossy(&out.stderr);
        assert_eq!(stderr.trim().lines().count(), 1, "{stderr}");
        assert!(
            stderr.contains("--payload") && stderr.contains("--compression"),
            "{stderr}"
        );
    }
    let out = run_in(
        dir.path(),
        &[
            "generate",
            "--count",
            "1",
            "--payload",
            "empty",
            "--record-size",
            "10..20",
        ],
    );
    assert_eq!(out.status.code(), Some(2), "{}", describe(&out));
    // `all` means every family the flags allow: no CloudWatch Logs records under `none`.
    let out = run_in(
        dir.path(),
        &[
            "generate",
            "--count",
            "50",
            "--seed",
            "1",
            "--compression",
            "none",
        ],
    );
    assert_eq!(out.status.code(), Some(0), "{}", describe(&out));
    for line in String::from_utf8_lossy(&out.stdout).lines() {
        let event: Value = serde_json::from_str(line).unwrap();
        for (kind, _) in shape(&event).records {
            assert_eq!(kind, Compression::None);
        }
    }
}

/// `check` with default generator flags against an awslambdaric handler from the fixtures.
fn check_python(handler: &str, extra: &[&str]) -> (Value, std::process::Output) {
    let dir = temp_dir();
    let target = awslambdaric_target(handler);
    let env = format!("PYTHONPATH={}", python_fixtures().display());
    let mut args = vec![
        "check",
        "--target",
        &target,
        "--env",
        &env,
        "--timeout",
        "60s",
    ];
    args.extend_from_slice(extra);
    check_in(dir.path(), &args)
}

#[test]
fn a_json_transformer_that_crashes_on_a_lone_surrogate_is_caught_on_every_seed() {
    for seed in ["1", "2", "3"] {
        let (report, out) = check_python(
            "json_team.handler",
            &["--cases", "3", "--seed", seed, "--no-shrink"],
        );
        assert_eq!(
            out.status.code(),
            Some(1),
            "seed {seed}: {}",
            describe(&out)
        );
        let failure = report["failures"]
            .as_array()
            .unwrap()
            .iter()
            .find(|f| f["check"] == "invocation_succeeded")
            .unwrap_or_else(|| panic!("seed {seed}: {}", report["failures"]));
        let message = failure["message"].as_str().unwrap();
        assert!(
            message.contains("UnicodeEncodeError") && message.contains("surrogate"),
            "{message}"
        );
    }
}

#[test]
fn the_cloudwatch_logs_blueprint_passes_cwl_and_fails_on_decompressed_envelopes() {
    let (report, out) = check_python(
        "cwl_blueprint.handler",
        &["--payload", "cwl", "--cases", "20", "--seed", "8"],
    );
    assert_eq!(out.status.code(), Some(0), "{}", describe(&out));
    assert_eq!(report["verdict"], "pass");
    // Under decompression the records are plain JSON: the blueprint's unguarded gunzip throws.
    let (report, out) = check_python(
        "cwl_blueprint.handler",
        &[
            "--payload",
            "cwl-decompressed",
            "--cases",
            "3",
            "--seed",
            "8",
            "--no-shrink",
        ],
    );
    assert_eq!(out.status.code(), Some(1), "{}", describe(&out));
    assert_eq!(failing_checks(&report), ["invocation_succeeded"]);
    let message = report["failures"][0]["message"].as_str().unwrap();
    assert!(message.contains("gzip"), "{message}");
}
