//! Reports as a reader meets them: the HTML page of a failing load run parsed and asserted on (and,
//! where Debian's `chromium` is installed, rendered to a screenshot under `target/`), and progress
//! lines in a log without a terminal.

use std::path::{Path, PathBuf};
use std::process::Command;

use axum::Router;
use axum::routing::post;
use scraper::{Html, Selector};
use serde_json::json;

use crate::support::{bin, describe, read_report, run_in, serve, temp_dir};

/// A transformer whose every answer is a function error with markup in its message.
fn script_error_router() -> Router {
    Router::new().route(
        "/",
        post(|| async {
            axum::Json(json!({
                "errorMessage": "<script>alert('pwned')</script> went wrong",
                "errorType": "Boom"
            }))
        }),
    )
}

fn select<'a>(doc: &'a Html, css: &str) -> Vec<scraper::ElementRef<'a>> {
    let sel = Selector::parse(css).unwrap();
    doc.select(&sel).collect()
}

fn text(e: &scraper::ElementRef<'_>) -> String {
    e.text().collect::<String>()
}

/// Where a reader finds the screenshot: next to the other build output.
fn screenshot_dir() -> PathBuf {
    Path::new(env!("CARGO_MANIFEST_DIR"))
        .join("../target/report-screenshots")
        .to_path_buf()
}

fn chromium() -> Option<&'static str> {
    ["chromium", "chromium-browser"].into_iter().find(|c| {
        Command::new(c)
            .arg("--version")
            .output()
            .is_ok_and(|o| o.status.success())
    })
}

#[test]
fn a_failing_load_run_explains_itself_in_report_html() {
    let server = serve(script_error_router());
    let dir = temp_dir();
    let out = run_in(
        dir.path(),
        &[
            "load",
            "--target",
            &server.url("/"),
            "--firehose-ingest",
            "1MB/s",
            "--buffer-size",
            "0.2MB",
            "--record-size",
            "100..2000",
            "--duration",
            "3s",
            "--threshold",
            "p99<10s",
            "--report-dir",
            "R",
        ],
    );
    // Every invocation is a function error: the default error gate is breached.
    assert_eq!(out.status.code(), Some(3), "{}", describe(&out));
    let report = read_report(&dir.path().join("R"));
    assert_eq!(report["schema_version"], 2);
    // The headline latency is the corrected one.
    assert_eq!(
        report["latency"]["p99"],
        report["load"]["latency"]["response_time"]["p99"]
    );
    let html = std::fs::read_to_string(dir.path().join("R/report.html")).unwrap();
    let doc = Html::parse_document(&html);

    // The threshold table names the breached gate and its value.
    let rows: Vec<String> = select(&doc, "table.thresholds tr")
        .iter()
        .map(text)
        .collect();
    let breached = rows
        .iter()
        .find(|r| r.contains("error_rate<1%"))
        .unwrap_or_else(|| panic!("no error_rate row in {rows:?}"));
    assert!(
        breached.contains("BREACHED") && breached.contains("100"),
        "{breached}"
    );
    let held = rows.iter().find(|r| r.contains("p99<10s")).unwrap();
    assert!(held.contains("pass"), "{held}");

    // The error rate, the achieved-against-planned rate, the Firehose verdict with its formula.
    let load: Vec<String> = select(&doc, "table.load tr").iter().map(text).collect();
    let error_row = load.iter().find(|r| r.starts_with("error rate")).unwrap();
    assert!(error_row.contains("100.000%"), "{error_row}");
    let invocations = load.iter().find(|r| r.starts_with("invocations")).unwrap();
    assert!(invocations.contains("planned"), "{invocations}");
    let verdict = text(&select(&doc, ".firehose-verdict")[0]);
    assert!(
        verdict.contains("by Little's law") && verdict.contains("buffer interval"),
        "{verdict}"
    );
    assert!(verdict.ends_with("met"), "{verdict}");

    // Every chart's axes say what and in which unit; legends sit outside the plot, as HTML.
    let svg_text: Vec<String> = select(&doc, "svg text")
        .iter()
        .map(|e| text(e).trim().to_string())
        .collect();
    for label in [
        "invocations per second",
        "milliseconds",
        "seconds since the start of the measured run",
        "percentile",
    ] {
        assert!(
            svg_text.iter().any(|t| t == label),
            "no axis {label}: {svg_text:?}"
        );
    }
    assert!(
        select(&doc, "h2, svg text")
            .iter()
            .map(text)
            .any(|t| t.contains("corrected")),
        "latency over time must say which latency"
    );
    let legends: Vec<String> = select(&doc, "figure > p.legend").iter().map(text).collect();
    assert!(legends.iter().any(|l| l.contains("planned")), "{legends:?}");

    // The transformer's markup is text, never markup.
    assert!(
        select(&doc, "script").is_empty(),
        "a <script> element got through"
    );
    assert!(
        doc.root_element()
            .text()
            .any(|t| t.contains("<script>alert('pwned')</script>")),
        "the error message should be shown as text"
    );

    // A reader can look at it: a screenshot where chromium is installed.
    if let Some(chromium) = chromium() {
        let shots = screenshot_dir();
        std::fs::create_dir_all(&shots).unwrap();
        let png = shots.join("failing-load-run.png");
        let _ = std::fs::remove_file(&png);
        let status = Command::new(chromium)
            .args([
                "--headless",
                "--no-sandbox",
                "--disable-gpu",
                "--hide-scrollbars",
                "--window-size=1100,3400",
                &format!("--screenshot={}", png.display()),
            ])
            .arg(format!(
                "file://{}",
                dir.path().join("R/report.html").display()
            ))
            .output()
            .expect("run chromium");
        assert!(png.exists(), "no screenshot: {}", describe(&status));
    }
}

#[test]
fn without_a_terminal_progress_lines_reach_the_log() {
    let server = serve(crate::zoo::router());
    let dir = temp_dir();
    // The interval is overridable so the test need not run for ten seconds per line.
    let run = |quiet: bool| {
        let mut cmd = Command::new(bin());
        cmd.args([
            "load",
            "--target",
            &server.url("/Correct"),
            "--rate",
            "20",
            "--duration",
            "3s",
            "--record-size",
            "10..200",
        ]);
        if quiet {
            cmd.arg("--quiet");
        }
        cmd.current_dir(dir.path())
            .env("NO_COLOR", "1")
            .env_remove("GITHUB_STEP_SUMMARY")
            .env("FIREHOSE_HARNESS_PROGRESS_EVERY", "1s")
            .output()
            .unwrap()
    };
    let out = run(false);
    assert_eq!(out.status.code(), Some(0), "{}", describe(&out));
    let err = String::from_utf8_lossy(&out.stderr);
    let lines: Vec<&str> = err.lines().filter(|l| l.contains(" done of ")).collect();
    // A three-second run (longer on a busy machine) at one line a second: at least two lines, and
    // never two for the same second, however many progress events the engine sent.
    assert!(lines.len() >= 2, "{err}");
    let seconds: Vec<&str> = lines
        .iter()
        .map(|l| l.trim_start().split(']').next().unwrap())
        .collect();
    let mut distinct = seconds.clone();
    distinct.dedup();
    assert_eq!(distinct, seconds, "{err}");
    let quiet = run(true);
    assert_eq!(quiet.status.code(), Some(0), "{}", describe(&quiet));
    let err = String::from_utf8_lossy(&quiet.stderr);
    assert!(!err.lines().any(|l| l.contains(" done of ")), "{err}");
}

#[test]
fn the_step_summary_gets_summary_md_appended() {
    let dir = temp_dir();
    let summary = dir.path().join("step-summary.md");
    std::fs::write(&summary, "earlier step\n").unwrap();
    let out = Command::new(bin())
        .args([
            "check",
            "--target",
            "builtin:ndjson",
            "--cases",
            "5",
            "--seed",
            "1",
        ])
        .current_dir(dir.path())
        .env("GITHUB_STEP_SUMMARY", &summary)
        .output()
        .unwrap();
    assert_eq!(out.status.code(), Some(0), "{}", describe(&out));
    let text = std::fs::read_to_string(&summary).unwrap();
    assert!(text.starts_with("earlier step\n"), "{text}");
    assert!(text.contains("firehose-harness check: pass"), "{text}");
}

#[test]
fn validate_prints_each_violation_once_and_skips_invocation_checks() {
    let dir = temp_dir();
    let fx = Path::new(env!("CARGO_MANIFEST_DIR")).join("../fixtures/real-events");
    let event = fx.join("java-aws-lambda-java-libs/msk_firehose_event.json");
    let response = fx.join("java-aws-lambda-java-libs/msk_firehose_response.json");
    let out = run_in(
        dir.path(),
        &[
            "validate",
            "--event",
            event.to_str().unwrap(),
            "--response",
            response.to_str().unwrap(),
            "--report-dir",
            "R",
        ],
    );
    assert_eq!(out.status.code(), Some(1), "{}", describe(&out));
    let stdout = String::from_utf8_lossy(&out.stdout);
    // The unknown recordId is one violation: its message appears once.
    let report = read_report(&dir.path().join("R"));
    let failure = report["failures"]
        .as_array()
        .unwrap()
        .iter()
        .find(|f| f["check"] == "no_unknown_record_ids")
        .unwrap();
    let message = failure["message"].as_str().unwrap();
    assert_eq!(stdout.matches(message).count(), 1, "{stdout}");
    let status = |id: &str| {
        report["checks"]
            .as_array()
            .unwrap()
            .iter()
            .find(|c| c["id"] == id)
            .unwrap()["status"]
            .clone()
    };
    assert_eq!(status("invocation_succeeded"), "skipped");
    assert_eq!(status("within_timeout"), "skipped");
    assert_eq!(status("response_is_json"), "pass");
}
