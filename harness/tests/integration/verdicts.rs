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

/// An unhandled function error as the Lambda Invoke API answers it.
fn function_error(kind: &str, message: &str) -> Response {
    let mut resp = json_response(&json!({"errorMessage": message, "errorType": kind}));
    resp.headers_mut().insert(
        "X-Amz-Function-Error",
        HeaderValue::from_static("Unhandled"),
    );
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

/// A Python HTTP server from `fixtures/python/`, killed when dropped.
pub struct PythonServer {
    child: std::process::Child,
    pub port: u16,
}

impl PythonServer {
    pub fn start(script: &str) -> PythonServer {
        use std::io::BufRead as _;
        let path = std::path::Path::new(env!("CARGO_MANIFEST_DIR"))
            .join("tests/integration/fixtures/python")
            .join(script);
        let mut child = std::process::Command::new("python3")
            .arg(&path)
            .stdout(std::process::Stdio::piped())
            .spawn()
            .expect("start python3");
        let mut line = String::new();
        std::io::BufReader::new(child.stdout.take().expect("stdout"))
            .read_line(&mut line)
            .expect("port line");
        let port = line.trim().parse().expect("a port number");
        PythonServer { child, port }
    }

    pub fn url(&self) -> String {
        format!("http://127.0.0.1:{}/", self.port)
    }
}

impl Drop for PythonServer {
    fn drop(&mut self) {
        let _ = self.child.kill();
        let _ = self.child.wait();
    }
}

#[test]
fn two_errors_of_one_type_are_two_failures_each_shrunk_to_its_own_message() {
    let server = PythonServer::start("json_http.py");
    let dir = temp_dir();
    let (report, out) = check_in(
        dir.path(),
        &[
            "check",
            "--target",
            &server.url(),
            "--payload",
            "apache,text",
            "--compression",
            "none",
            "--cases",
            "30",
            "--seed",
            "7",
        ],
    );
    assert_eq!(out.status.code(), Some(1), "{}", describe(&out));
    let failures: Vec<&Value> = report["failures"]
        .as_array()
        .expect("failures")
        .iter()
        .filter(|f| f["check"] == "invocation_succeeded")
        .collect();
    let with = |words: &str| {
        failures
            .iter()
            .find(|f| f["message"].as_str().unwrap_or("").contains(words))
            .unwrap_or_else(|| panic!("no failure says {words:?}: {}", describe(&out)))
    };
    let extra = with("JSONDecodeError: Extra data");
    let expecting = with("JSONDecodeError: Expecting value");
    assert_ne!(extra["fingerprint"], expecting["fingerprint"]);
    // Each minimal case, as saved, fails with its own message.
    for (f, words) in [(extra, "Extra data"), (expecting, "Expecting value")] {
        let case = f["case"].as_str().expect("a saved case");
        let body =
            std::fs::read_to_string(dir.path().join("R/cases").join(case).join("response.body"))
                .expect("response.body");
        assert!(body.contains(words), "{case}: {body}");
        let meta: Value = serde_json::from_slice(
            &std::fs::read(dir.path().join("R/cases").join(case).join("case.json")).unwrap(),
        )
        .unwrap();
        assert_eq!(meta["fingerprint_version"], 2);
        assert_eq!(meta["fingerprint"], f["fingerprint"]);
    }
}

/// Counts the testcases of a junit.xml by outcome: (errors, failures, passes).
fn junit_outcomes(xml: &str) -> (usize, usize, usize) {
    let cases: Vec<&str> = xml.split("<testcase").skip(1).collect();
    let errors = cases.iter().filter(|c| c.contains("<error")).count();
    let failures = cases.iter().filter(|c| c.contains("<failure")).count();
    let skipped = cases.iter().filter(|c| c.contains("<skipped")).count();
    (errors, failures, cases.len() - errors - failures - skipped)
}

fn not_found_everywhere() -> Router {
    Router::new().fallback(|| async { (StatusCode::NOT_FOUND, "404 page not found") })
}

fn a_web_page() -> Router {
    Router::new().fallback(|| async {
        let mut resp = Response::new(Body::from(
            "<!DOCTYPE html>\n<html><head><title>Welcome to nginx!</title></head><body></body></html>",
        ));
        resp.headers_mut()
            .insert("content-type", HeaderValue::from_static("text/html"));
        resp
    })
}

#[test]
fn a_wrong_url_judges_nothing_exit_4_one_junit_error_no_regression() {
    for (what, router) in [("404", not_found_everywhere()), ("html", a_web_page())] {
        let server = serve(router);
        let dir = temp_dir();
        let (report, out) = check_in(
            dir.path(),
            &[
                "check",
                "--target",
                &server.url("/transform"),
                "--cases",
                "10",
                // This seed's first batches are large: the server answers without reading them,
                // so calls break off mid-write, which must not count as a transformer's answer.
                "--seed",
                "757734822",
            ],
        );
        assert_eq!(out.status.code(), Some(4), "{what}: {}", describe(&out));
        let stderr = String::from_utf8_lossy(&out.stderr);
        assert!(
            stderr.contains("invoke+http://"),
            "{what}: a hint: {stderr}"
        );
        let junit = std::fs::read_to_string(dir.path().join("R/junit.xml")).unwrap();
        assert_eq!(junit_outcomes(&junit), (1, 0, 0), "{what}: {junit}");
        let summary = std::fs::read_to_string(dir.path().join("R/summary.md")).unwrap();
        assert!(summary.contains("Nothing was judged"), "{what}: {summary}");
        assert!(
            report["failures"].as_array().unwrap().is_empty(),
            "{report}"
        );
        assert!(
            report["checks"]
                .as_array()
                .unwrap()
                .iter()
                .all(|c| c["status"] == "skipped"),
            "{report}"
        );
        // Nothing saved as a regression (the default folder is in the working directory).
        let saved = std::fs::read_dir(dir.path().join(".firehose-harness/regressions"))
            .map(|d| d.count())
            .unwrap_or(0);
        assert_eq!(saved, 0, "{what}: regressions were saved");
    }
}

#[test]
fn an_unreachable_target_writes_one_junit_error_and_no_pass() {
    let dir = temp_dir();
    let (_, out) = check_in(
        dir.path(),
        &["check", "--target", "http://127.0.0.1:9/", "--cases", "5"],
    );
    assert_eq!(out.status.code(), Some(4), "{}", describe(&out));
    let junit = std::fs::read_to_string(dir.path().join("R/junit.xml")).unwrap();
    assert_eq!(junit_outcomes(&junit), (1, 0, 0), "{junit}");
}

#[test]
fn a_transformer_answering_404_after_real_answers_is_judged() {
    // Real answers first: a later 404 is the function's own answer, and a finding.
    use std::sync::atomic::{AtomicU32, Ordering};
    static CALLS: AtomicU32 = AtomicU32::new(0);
    let router = Router::new().route(
        "/",
        post(|body: Bytes| async move {
            if CALLS.fetch_add(1, Ordering::SeqCst) < 5 {
                each_record(&body, |raw| json!(STANDARD.encode(raw)))
            } else {
                (StatusCode::NOT_FOUND, "gone").into_response()
            }
        }),
    );
    let server = serve(router.layer(axum::extract::DefaultBodyLimit::max(8 << 20)));
    let dir = temp_dir();
    let (report, out) = check_in(
        dir.path(),
        &[
            "check",
            "--target",
            &server.url("/"),
            "--cases",
            "10",
            "--no-shrink",
        ],
    );
    assert_eq!(out.status.code(), Some(1), "{}", describe(&out));
    assert_eq!(failing_checks(&report), ["invocation_succeeded"]);
}

#[test]
fn load_fails_by_default_when_the_function_fails() {
    let router = Router::new().route("/", post(|| async { function_error("Error", "boom") }));
    let server = serve(router);
    let dir = temp_dir();
    let url = server.url("/");
    let run = |extra: &[&str]| {
        let mut args = vec![
            "load",
            "--target",
            &url,
            "--rate",
            "50",
            "--invocations",
            "20",
            "--records",
            "1..2",
            "--report-dir",
            "R",
        ];
        args.extend_from_slice(extra);
        let out = crate::support::run_in(dir.path(), &args);
        (crate::support::read_report(&dir.path().join("R")), out)
    };
    let (report, out) = run(&[]);
    assert_eq!(out.status.code(), Some(3), "{}", describe(&out));
    let gates = report["load"]["thresholds"].as_array().unwrap();
    assert_eq!(gates.len(), 1, "{gates:?}");
    assert_eq!(gates[0]["expression"], "error_rate<1% (default)");
    assert_eq!(gates[0]["passed"], false);
    assert!(
        String::from_utf8_lossy(&out.stderr).contains("default gate")
            || String::from_utf8_lossy(&out.stdout).contains("default gate"),
        "{}",
        describe(&out)
    );
    // `report merge` judges the default gate again, alike.
    let m = crate::support::run_in(
        dir.path(),
        &["report", "merge", "R/report.json", "--report-dir", "M"],
    );
    assert_eq!(m.status.code(), Some(3), "{}", describe(&m));
    let merged = crate::support::read_report(&dir.path().join("M"));
    assert_eq!(
        merged["load"]["thresholds"][0]["expression"],
        "error_rate<1% (default)"
    );
    assert_eq!(merged["load"]["thresholds"][0]["passed"], false);
    // A threshold of the user's own on error_rate replaces the default.
    let (report, out) = run(&["--threshold", "error_rate<=100%"]);
    assert_eq!(out.status.code(), Some(0), "{}", describe(&out));
    let gates = report["load"]["thresholds"].as_array().unwrap();
    assert_eq!(gates.len(), 1);
    assert_eq!(gates[0]["expression"], "error_rate<=100%");
}

#[test]
fn a_minimal_batch_is_labelled_with_its_records_bytes_as_put() {
    // Fails on every gzip'd record: CloudWatch Logs subscription data always is.
    let router = Router::new().route(
        "/",
        post(|body: Bytes| async move {
            let event: Value = serde_json::from_slice(&body).unwrap_or_default();
            let gzip = event["records"].as_array().into_iter().flatten().any(|r| {
                r["data"]
                    .as_str()
                    .and_then(|s| STANDARD.decode(s).ok())
                    .is_some_and(|d| d.starts_with(&[0x1f, 0x8b]))
            });
            if gzip {
                return function_error("UnicodeDecodeError", "invalid start byte");
            }
            each_record(&body, |raw| json!(STANDARD.encode(raw)))
        }),
    );
    let server = serve(router.layer(axum::extract::DefaultBodyLimit::max(8 << 20)));
    let dir = temp_dir();
    let (report, out) = check_in(
        dir.path(),
        &[
            "check",
            "--target",
            &server.url("/"),
            "--payload",
            "cwl",
            "--cases",
            "10",
            "--seed",
            "3",
        ],
    );
    assert_eq!(out.status.code(), Some(1), "{}", describe(&out));
    let f = &report["failures"][0];
    let case = f["case"].as_str().expect("a saved case");
    let event: Value = serde_json::from_slice(
        &std::fs::read(dir.path().join("R/cases").join(case).join("event.json")).unwrap(),
    )
    .unwrap();
    let records = event["records"].as_array().unwrap();
    let bytes: usize = records
        .iter()
        .map(|r| STANDARD.decode(r["data"].as_str().unwrap()).unwrap().len())
        .sum();
    let label = f["minimal_batch"].as_str().expect("minimal_batch");
    let n = records.len();
    let expected = format!(
        "{n} record{} from direct-put, {} bytes of record data",
        if n == 1 { "" } else { "s" },
        firehose_reports::format_count(bytes as u64)
    );
    assert!(
        label.starts_with(&expected),
        "{label} (expected {expected})"
    );
}
