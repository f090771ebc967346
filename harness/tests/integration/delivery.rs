//! "Where did my record go?": `delivered/`, `processing-failed/` and `dropped.json` after a `check`
//! against a real HTTP transformer whose answers are known record by record.
//!
//! The transformer decides by the record's data: `FAIL…` → ProcessingFailed, `DROP…` → Dropped,
//! anything else → Ok with the data upper-cased plus `\n`. A batch holding a `BOOM…` record gets HTTP
//! 500 (a function error); one holding `SKIP…` comes back without that record (MissingRecordId).
//! The events are sent verbatim through `--corpus`, so the test knows every byte that went out.

use axum::Router;
use axum::body::Bytes;
use axum::http::StatusCode;
use axum::response::{IntoResponse, Response};
use axum::routing::post;
use base64::Engine as _;
use base64::engine::general_purpose::STANDARD;
use serde_json::{Value, json};

use crate::support::{describe, read_report, run_in, serve, temp_dir};

async fn transform(body: Bytes) -> Response {
    let Ok(event) = serde_json::from_slice::<Value>(&body) else {
        return (StatusCode::BAD_REQUEST, "not json").into_response();
    };
    let records = event["records"].as_array().cloned().unwrap_or_default();
    let decoded: Vec<(String, Vec<u8>)> = records
        .iter()
        .map(|r| {
            let id = r["recordId"].as_str().unwrap_or_default().to_string();
            let data = STANDARD
                .decode(r["data"].as_str().unwrap_or_default())
                .unwrap_or_default();
            (id, data)
        })
        .collect();
    if decoded.iter().any(|(_, d)| d.starts_with(b"BOOM")) {
        return (StatusCode::INTERNAL_SERVER_ERROR, "boom").into_response();
    }
    let answers: Vec<Value> = decoded
        .iter()
        .filter(|(_, d)| !d.starts_with(b"SKIP"))
        .map(|(id, d)| {
            if d.starts_with(b"FAIL") {
                json!({"recordId": id, "result": "ProcessingFailed"})
            } else if d.starts_with(b"DROP") {
                json!({"recordId": id, "result": "Dropped"})
            } else {
                let mut out = d.to_ascii_uppercase();
                out.push(b'\n');
                let kind = String::from_utf8_lossy(&d[..d.len().min(3)]).to_lowercase();
                json!({"recordId": id, "result": "Ok", "data": STANDARD.encode(out),
                       "metadata": {"partitionKeys": {"kind": kind}}})
            }
        })
        .collect();
    axum::Json(json!({ "records": answers })).into_response()
}

/// Three batches: a good one with a failed and a dropped record, one that fails as a function
/// error, one that loses a record. Each record: (id, data, arrival timestamp).
fn batches() -> Vec<Vec<(&'static str, &'static str, u64)>> {
    vec![
        vec![
            ("a1", "abc one", 1_700_000_000_001),
            ("a2", "FAIL two", 1_700_000_000_002),
            ("a3", "xyz three", 1_700_000_000_003),
            ("a4", "DROP four", 1_700_000_000_004),
            ("a5", "abc five", 1_700_000_000_005),
        ],
        vec![
            ("b1", "fine", 1_700_000_000_011),
            ("b2", "BOOM", 1_700_000_000_012),
        ],
        vec![
            ("c1", "ok too", 1_700_000_000_021),
            ("c2", "SKIP me", 1_700_000_000_022),
        ],
    ]
}

fn write_corpus(dir: &std::path::Path) {
    std::fs::create_dir_all(dir).unwrap();
    for (i, batch) in batches().iter().enumerate() {
        let records: Vec<Value> = batch
            .iter()
            .map(|(id, data, ts)| {
                json!({"recordId": id, "approximateArrivalTimestamp": ts, "data": STANDARD.encode(data)})
            })
            .collect();
        let event = json!({
            "invocationId": format!("inv-{i}"),
            "deliveryStreamArn": "arn:aws:firehose:eu-west-1:111122223333:deliverystream/s",
            "region": "eu-west-1",
            "records": records,
        });
        std::fs::write(dir.join(format!("{i}.json")), event.to_string()).unwrap();
    }
}

fn check(extra: &[&str]) -> (tempfile::TempDir, Value) {
    let server = serve(Router::new().route("/", post(transform)));
    let dir = temp_dir();
    write_corpus(&dir.path().join("corpus"));
    let url = server.url("/");
    let mut args = vec![
        "check",
        "--target",
        &url,
        "--corpus",
        "corpus",
        "--cases",
        "0",
        "--no-boundary",
        "--no-regressions",
        "--report-dir",
        "R",
    ];
    args.extend_from_slice(extra);
    let out = run_in(dir.path(), &args);
    // The function error and the missing record are contract violations.
    assert_eq!(out.status.code(), Some(1), "{}", describe(&out));
    let report = read_report(&dir.path().join("R"));
    (dir, report)
}

fn failed_lines(dir: &std::path::Path) -> Vec<Value> {
    let mut files: Vec<_> = std::fs::read_dir(dir.join("R/processing-failed"))
        .unwrap()
        .map(|e| e.unwrap().path())
        .collect();
    files.sort();
    files
        .iter()
        .flat_map(|f| {
            std::fs::read_to_string(f)
                .unwrap()
                .lines()
                .map(|l| serde_json::from_str::<Value>(l).expect("one JSON object per line"))
                .collect::<Vec<_>>()
        })
        .collect()
}

#[test]
fn failed_records_and_batches_land_in_processing_failed_and_ok_data_in_delivered() {
    let (dir, report) = check(&[]);
    let root = dir.path().join("R");

    // delivered/: exactly the Ok data of the one batch that went through, byte for byte, as one
    // object (no delimiter added; this transformer adds its own newline).
    let delivered = std::fs::read(root.join("delivered/batch-000001")).unwrap();
    assert_eq!(delivered, b"ABC ONE\nXYZ THREE\nABC FIVE\n");
    let objects: Vec<_> = std::fs::read_dir(root.join("delivered")).unwrap().collect();
    assert_eq!(objects.len(), 1, "batches 2 and 3 failed as a whole");

    // processing-failed/: the original data with Firehose's codes, keys and types.
    let lines = failed_lines(dir.path());
    let by_code = |code: &str| -> Vec<(String, u64, u64)> {
        lines
            .iter()
            .filter(|l| l["errorCode"] == code)
            .map(|l| {
                let raw = STANDARD.decode(l["rawData"].as_str().unwrap()).unwrap();
                (
                    String::from_utf8(raw).unwrap(),
                    l["attemptsMade"].as_u64().unwrap(),
                    l["arrivalTimestamp"].as_u64().unwrap(),
                )
            })
            .collect()
    };
    assert_eq!(
        by_code("Lambda.ProcessingFailedStatus"),
        vec![("FAIL two".to_string(), 1, 1_700_000_000_002)]
    );
    assert_eq!(
        by_code("Lambda.FunctionError"),
        vec![
            ("fine".to_string(), 4, 1_700_000_000_011),
            ("BOOM".to_string(), 4, 1_700_000_000_012)
        ]
    );
    assert_eq!(
        by_code("Lambda.MissingRecordId"),
        vec![
            ("ok too".to_string(), 4, 1_700_000_000_021),
            ("SKIP me".to_string(), 4, 1_700_000_000_022)
        ]
    );
    assert_eq!(lines.len(), 5);
    for l in &lines {
        let keys: Vec<&str> = l.as_object().unwrap().keys().map(String::as_str).collect();
        for key in [
            "rawData",
            "errorCode",
            "errorMessage",
            "attemptsMade",
            "arrivalTimestamp",
            "attemptEndingTimestamp",
            "lambdaARN",
        ] {
            assert!(keys.contains(&key), "{key} in {l}");
        }
        assert!(l["attemptEndingTimestamp"].is_u64());
        assert_eq!(
            l["lambdaARN"],
            "arn:aws:lambda:eu-west-1:111122223333:function:function"
        );
    }
    let processing_failed = lines
        .iter()
        .find(|l| l["errorCode"] == "Lambda.ProcessingFailedStatus")
        .unwrap();
    assert_eq!(
        processing_failed["errorMessage"],
        "ProcessingFailed status set for record"
    );

    // dropped.json and the report's section agree.
    let dropped: Value =
        serde_json::from_slice(&std::fs::read(root.join("dropped.json")).unwrap()).unwrap();
    assert_eq!(dropped, json!([{"batch": 1, "recordId": "a4"}]));
    let d = &report["delivery"];
    assert_eq!(d["delivered_dir"], "delivered/");
    assert_eq!(d["batches"], 3);
    assert_eq!(d["delivered_records"], 3);
    assert_eq!(d["failed_records"], 5);
    assert_eq!(d["failed_batches"], 2);
    assert_eq!(d["dropped_records"], 1);
    assert_eq!(d["error_codes"]["Lambda.FunctionError"], 2);
    assert_eq!(d["undelimited_records"], 0);
    let html = std::fs::read_to_string(root.join("report.html")).unwrap();
    for link in [
        "href=\"delivered/\"",
        "href=\"processing-failed/\"",
        "href=\"dropped.json\"",
    ] {
        assert!(html.contains(link), "{link}");
    }
}

#[test]
fn s3_prefix_files_records_by_their_partition_keys() {
    let (dir, report) = check(&["--s3-prefix", "kind=!{partitionKeyFromLambda:kind}/"]);
    let root = dir.path().join("R/delivered");
    assert_eq!(
        std::fs::read(root.join("kind=abc/batch-000001")).unwrap(),
        b"ABC ONE\nABC FIVE\n"
    );
    assert_eq!(
        std::fs::read(root.join("kind=xyz/batch-000001")).unwrap(),
        b"XYZ THREE\n"
    );
    assert_eq!(
        report["delivery"]["s3_prefix"],
        "kind=!{partitionKeyFromLambda:kind}/"
    );
    assert_eq!(
        report["delivery"]["prefixes"],
        json!(["kind=abc/", "kind=xyz/"])
    );
}

#[test]
fn a_bad_s3_prefix_is_a_usage_error() {
    let dir = temp_dir();
    let out = run_in(
        dir.path(),
        &[
            "check",
            "--target",
            "builtin:ndjson",
            "--report-dir",
            "R",
            "--s3-prefix",
            "!{partitionKeyFromQuery:id}/",
        ],
    );
    assert_eq!(out.status.code(), Some(2), "{}", describe(&out));
    let err = String::from_utf8_lossy(&out.stderr);
    assert!(
        err.contains("--s3-prefix") && err.contains("partitionKeyFromQuery"),
        "{err}"
    );
    assert_eq!(err.lines().count(), 1, "{err}");
}

#[test]
fn replay_and_load_keep_delivered_write_the_same_files() {
    let server = serve(Router::new().route("/", post(transform)));
    let dir = temp_dir();
    write_corpus(&dir.path().join("corpus"));
    let case = dir.path().join("case");
    std::fs::create_dir_all(&case).unwrap();
    std::fs::copy(dir.path().join("corpus/0.json"), case.join("event.json")).unwrap();
    let url = server.url("/");

    let out = run_in(
        dir.path(),
        &["replay", "case", "--target", &url, "--report-dir", "RP"],
    );
    assert_eq!(out.status.code(), Some(0), "{}", describe(&out));
    // Three runs of the case, one delivery: the first run's.
    assert_eq!(
        std::fs::read(dir.path().join("RP/delivered/batch-000001")).unwrap(),
        b"ABC ONE\nXYZ THREE\nABC FIVE\n"
    );
    assert!(!dir.path().join("RP/delivered/batch-000002").exists());
    assert!(String::from_utf8_lossy(&out.stdout).contains("delivery: 3 records Ok"));

    // `load` sending corpus/0.json `n` times, one at a time, reporting to `report_dir`.
    let load = |n: &str, report_dir: &str, extra: &[&str]| {
        let mut args = vec![
            "load",
            "--target",
            &url,
            "--event",
            "corpus/0.json",
            "--concurrency",
            "1",
            "--invocations",
            n,
            "--report-dir",
            report_dir,
        ];
        args.extend_from_slice(extra);
        let out = run_in(dir.path(), &args);
        assert_eq!(out.status.code(), Some(0), "{}", describe(&out));
    };
    load("3", "RL", &["--keep-delivered"]);
    for n in 1..=3 {
        assert_eq!(
            std::fs::read(dir.path().join(format!("RL/delivered/batch-{n:06}"))).unwrap(),
            b"ABC ONE\nXYZ THREE\nABC FIVE\n"
        );
    }
    let report = read_report(&dir.path().join("RL"));
    assert_eq!(report["delivery"]["failed_records"], 3);
    assert_eq!(report["delivery"]["dropped_records"], 3);
    assert_eq!(
        report["delivery"]["error_codes"],
        json!({"Lambda.ProcessingFailedStatus": 3})
    );

    // Without --keep-delivered, load writes none of it.
    load("1", "RN", &[]);
    assert!(!dir.path().join("RN/delivered").exists());
    assert!(
        read_report(&dir.path().join("RN"))
            .get("delivery")
            .is_none()
    );
}
