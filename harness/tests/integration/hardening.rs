//! Surviving what a CI machine does to a run (issue 13): corrupt state left by an earlier run must
//! not switch a gate off silently, and nothing is left half-written.

use crate::support::{describe, read_report, run_in, serve, temp_dir};
use crate::zoo::{Animal, router};

#[test]
fn a_corrupt_regression_exits_2_naming_it_after_the_others_ran() {
    let server = serve(router());
    let dir = temp_dir();
    let target = server.url(&Animal::DropsLastId.path());
    // A first run saves a real regression.
    let first = run_in(
        dir.path(),
        &["check", "--target", &target, "--cases", "3", "--seed", "1"],
    );
    assert_eq!(first.status.code(), Some(1), "{}", describe(&first));
    let regressions = dir.path().join(".firehose-harness/regressions");
    let saved: Vec<_> = std::fs::read_dir(&regressions).unwrap().flatten().collect();
    assert!(!saved.is_empty());
    assert!(
        saved
            .iter()
            .all(|e| !e.file_name().to_string_lossy().contains(".tmp-")),
        "a temporary folder was left behind"
    );
    // A CI cache restored half a folder.
    let broken = regressions.join("no_missing_record_ids-0000000000000000");
    std::fs::create_dir_all(&broken).unwrap();
    std::fs::write(broken.join("event.json"), b"{\"records\": [").unwrap();
    let second = run_in(
        dir.path(),
        &[
            "check",
            "--target",
            &target,
            "--cases",
            "3",
            "--seed",
            "1",
            "--report-dir",
            "R",
        ],
    );
    assert_eq!(second.status.code(), Some(2), "{}", describe(&second));
    let stderr = String::from_utf8_lossy(&second.stderr);
    assert!(
        stderr.contains("no_missing_record_ids-0000000000000000"),
        "names the folder: {stderr}"
    );
    let report = read_report(&dir.path().join("R"));
    assert_eq!(report["exit_code"], 2);
    let regression_phase = report["phases"]
        .as_array()
        .unwrap()
        .iter()
        .find(|p| p["phase"] == "regression")
        .cloned()
        .unwrap_or_default();
    assert_eq!(
        regression_phase["run"],
        saved.len(),
        "the good ones still ran: {report}"
    );
}

#[test]
fn a_corpus_file_that_is_no_event_exits_2_naming_it_responses_are_skipped_with_a_note() {
    let dir = temp_dir();
    let corpus = dir.path().join("corpus");
    std::fs::create_dir_all(&corpus).unwrap();
    std::fs::write(
        corpus.join("event.json"),
        br#"{"invocationId":"i","deliveryStreamArn":"arn:aws:firehose:us-east-1:1:deliverystream/s","region":"us-east-1","records":[{"recordId":"r1","approximateArrivalTimestamp":1,"data":"aGkK"}]}"#,
    )
    .unwrap();
    std::fs::write(corpus.join("my-response.json"), br#"{"records":[]}"#).unwrap();
    let ok = run_in(
        dir.path(),
        &[
            "check",
            "--target",
            "builtin:identity",
            "--corpus",
            "corpus",
            "--cases",
            "0",
        ],
    );
    assert_eq!(ok.status.code(), Some(0), "{}", describe(&ok));
    assert!(
        String::from_utf8_lossy(&ok.stdout).contains("named like a response"),
        "{}",
        describe(&ok)
    );
    std::fs::write(corpus.join("settings.json"), br#"{"batchSize": 100}"#).unwrap();
    for raw in [false, true] {
        let mut args = vec![
            "check",
            "--target",
            "builtin:identity",
            "--corpus",
            "corpus",
            "--cases",
            "0",
        ];
        if raw {
            args.push("--corpus-raw");
        }
        let bad = run_in(dir.path(), &args);
        assert_eq!(bad.status.code(), Some(2), "{}", describe(&bad));
        let stderr = String::from_utf8_lossy(&bad.stderr);
        assert!(stderr.contains("settings.json"), "{stderr}");
        assert_eq!(crate::support::error_lines(&stderr), 1, "{stderr}");
    }
}

#[test]
fn a_target_that_never_answers_stops_after_max_hangs() {
    let server = serve(router());
    let dir = temp_dir();
    // Hangs from the first call: nothing was judged, exit 4, no regression kept.
    let out = run_in(
        dir.path(),
        &[
            "check",
            "--target",
            &server.url(&Animal::Sleeps.path()),
            "--timeout",
            "100ms",
            "--cases",
            "100",
            "--report-dir",
            "R",
        ],
    );
    assert_eq!(out.status.code(), Some(4), "{}", describe(&out));
    let report = read_report(&dir.path().join("R"));
    assert_eq!(report["stopped_early"], "hanging", "{report}");
    let run: u64 = report["phases"]
        .as_array()
        .unwrap()
        .iter()
        .map(|p| p["run"].as_u64().unwrap())
        .sum();
    assert!(run <= 3, "{run} cases ran against a hanging target");
    assert!(
        !dir.path().join(".firehose-harness/regressions").exists()
            || std::fs::read_dir(dir.path().join(".firehose-harness/regressions"))
                .unwrap()
                .next()
                .is_none(),
        "a run that judged nothing saved a regression"
    );
    // --max-hangs 0 never stops: every case runs into the timeout and is judged.
    let out = run_in(
        dir.path(),
        &[
            "check",
            "--target",
            &server.url(&Animal::Sleeps.path()),
            "--timeout",
            "50ms",
            "--cases",
            "4",
            "--no-boundary",
            "--no-shrink",
            "--max-hangs",
            "0",
            "--no-regressions",
            "--report-dir",
            "R0",
        ],
    );
    assert_eq!(out.status.code(), Some(1), "{}", describe(&out));
    let report = read_report(&dir.path().join("R0"));
    assert!(report["stopped_early"].is_null(), "{report}");
}

#[test]
fn control_characters_from_a_target_never_reach_the_terminal_or_the_reports_raw() {
    use axum::routing::post;
    let evil = "boom \u{1b}[2J\u{1b}]0;owned\u{7}\rPASS \u{0}\u{ffff}\u{fffe}";
    let router = axum::Router::new().route(
        "/",
        post(move || async move {
            let body = serde_json::json!({"errorMessage": evil, "errorType": "Error"}).to_string();
            let mut resp = axum::response::Response::new(axum::body::Body::from(body));
            resp.headers_mut().insert(
                "X-Amz-Function-Error",
                axum::http::HeaderValue::from_static("Unhandled"),
            );
            resp
        }),
    );
    let server = serve(router);
    let dir = temp_dir();
    let out = run_in(
        dir.path(),
        &[
            "check",
            "--target",
            &server.url("/"),
            "--cases",
            "2",
            "--no-shrink",
            "--report-dir",
            "R",
        ],
    );
    assert_eq!(out.status.code(), Some(1), "{}", describe(&out));
    let raw = |bytes: &[u8]| {
        String::from_utf8_lossy(bytes).chars().any(|c| {
            matches!(
                c,
                '\u{1b}' | '\u{7}' | '\r' | '\u{0}' | '\u{ffff}' | '\u{fffe}'
            )
        })
    };
    assert!(
        !raw(&out.stdout),
        "stdout: {:?}",
        String::from_utf8_lossy(&out.stdout)
    );
    assert!(
        !raw(&out.stderr),
        "stderr: {:?}",
        String::from_utf8_lossy(&out.stderr)
    );
    for file in ["summary.md", "junit.xml"] {
        let bytes = std::fs::read(dir.path().join("R").join(file)).unwrap();
        assert!(
            !raw(&bytes),
            "{file}: {:?}",
            String::from_utf8_lossy(&bytes)
        );
    }
    // Shown escaped, not dropped: the reader sees something was there.
    assert!(
        String::from_utf8_lossy(&out.stdout).contains("\\u{1b}"),
        "{}",
        describe(&out)
    );
}

/// Where a run's stdout and stderr go in [`broken_output_run`].
#[derive(Clone, Copy, Debug)]
enum BrokenSink {
    /// Every write fails with ENOSPC.
    DevFull,
    /// The reader is gone before the first write: EPIPE.
    ClosedPipe,
}

/// Run `firehose-harness ARGS --report-dir R` in a fresh directory with stdout and stderr broken:
/// its exit code, and whether `R/report.json` was written.
fn broken_output_run(args: &[&str], sink: BrokenSink) -> (Option<i32>, bool) {
    use std::process::{Command, Stdio};
    let dir = temp_dir();
    let mut cmd = Command::new(crate::support::bin());
    cmd.args(args)
        .args(["--report-dir", "R"])
        .current_dir(dir.path())
        .env("NO_COLOR", "1")
        .env_remove("GITHUB_STEP_SUMMARY");
    let status = match sink {
        BrokenSink::DevFull => {
            let full = || std::fs::OpenOptions::new().write(true).open("/dev/full");
            cmd.stdout(full().expect("/dev/full"))
                .stderr(full().expect("/dev/full"))
                .status()
                .expect("run firehose-harness")
        }
        BrokenSink::ClosedPipe => {
            let mut child = cmd
                .stdout(Stdio::piped())
                .stderr(Stdio::piped())
                .spawn()
                .expect("run firehose-harness");
            // Close both read ends before the run writes anything.
            drop(child.stdout.take());
            drop(child.stderr.take());
            child.wait().expect("wait for firehose-harness")
        }
    };
    (status.code(), dir.path().join("R/report.json").exists())
}

#[test]
fn issue_13_a_broken_stdout_or_stderr_never_panics_and_the_verdict_decides_the_exit_code() {
    let failing = crate::runtimes::stdio_target("fail");
    for sink in [BrokenSink::DevFull, BrokenSink::ClosedPipe] {
        let passing = [
            "check",
            "--target",
            "builtin:ndjson",
            "--cases",
            "5",
            "--no-regressions",
        ];
        assert_eq!(
            broken_output_run(&passing, sink),
            (Some(0), true),
            "check, passing, {sink:?}"
        );
        let failing = [
            "check",
            "--target",
            &failing,
            "--cases",
            "2",
            "--no-shrink",
            "--no-boundary",
            "--no-regressions",
        ];
        assert_eq!(
            broken_output_run(&failing, sink),
            (Some(1), true),
            "check, failing, {sink:?}"
        );
        let load = [
            "load",
            "--target",
            "builtin:ndjson",
            "--rate",
            "20",
            "--invocations",
            "10",
        ];
        assert_eq!(
            broken_output_run(&load, sink),
            (Some(0), true),
            "load, {sink:?}"
        );
    }
}
