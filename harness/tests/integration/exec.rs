//! Issue 4: real Lambda runtime clients through `exec:` — the Rust example built with
//! `lambda_runtime`, and Python handlers under PyPI's `awslambdaric`.

use std::time::Duration;

use base64::Engine as _;
use base64::engine::general_purpose::STANDARD;
use bytes::Bytes;
use firehose_harness::invocation::Outcome;
use firehose_harness::targets::{self, Target, TargetOptions, TargetSpec};
use serde_json::json;

use crate::runtimes::{
    Barrier, awslambdaric_target, python_example, python_fixtures, rust_panics_target, rust_target,
};
use crate::support::{check_in, describe, failing_checks, read_report, run_in, temp_dir};

/// Small batches keep the Python runs quick; the generators' own tests cover sizes.
const NARROW: &[&str] = &[
    "--record-size",
    "0..2KiB",
    "--records",
    "1..20",
    "--no-boundary",
    "--no-regressions",
];

/// A small Firehose event with `n` text records.
pub fn event(n: usize) -> Bytes {
    let records: Vec<_> = (0..n)
        .map(|i| {
            json!({
                "recordId": format!("record-{i}"),
                "approximateArrivalTimestamp": 1_700_000_000_000u64,
                "data": STANDARD.encode(format!("line {i}\n")),
            })
        })
        .collect();
    Bytes::from(
        json!({
            "invocationId": "4a6c1c5e-0000-4000-8000-000000000000",
            "deliveryStreamArn": "arn:aws:firehose:us-east-1:000000000000:deliverystream/test",
            "region": "us-east-1",
            "records": records,
        })
        .to_string(),
    )
}

fn pythonpath(dir: &std::path::Path) -> String {
    format!("PYTHONPATH={}", dir.display())
}

/// `check` a Python handler from the fixtures, from a fresh directory; the report and the output.
fn check_python(
    handler: &str,
    extra: &[&str],
) -> (serde_json::Value, std::process::Output, tempfile::TempDir) {
    let dir = temp_dir();
    let target = awslambdaric_target(handler);
    let env = pythonpath(&python_fixtures());
    let state = format!("STATE_DIR={}", dir.path().display());
    let mut args = vec![
        "check", "--target", &target, "--env", &env, "--env", &state, "--seed", "5",
    ];
    args.extend_from_slice(extra);
    let (report, out) = check_in(dir.path(), &args);
    (report, out, dir)
}

/// A target built the way `check` builds it, for tests that look at single invocations.
async fn exec_target(handler: &str, instances: usize, env: &[(&str, String)]) -> Box<dyn Target> {
    let spec = TargetSpec::parse(&awslambdaric_target(handler)).unwrap();
    let mut options = TargetOptions {
        instances: Some(instances),
        ..TargetOptions::default()
    };
    options
        .env
        .push(("PYTHONPATH".into(), python_fixtures().display().to_string()));
    for (k, v) in env {
        options.env.push((k.to_string(), v.clone()));
    }
    let target = targets::build(&spec, &options).unwrap();
    target.start().await.expect("the handler starts");
    target
}

#[test]
fn the_rust_example_built_with_lambda_runtime_passes_check() {
    let dir = temp_dir();
    let target = rust_target();
    let out = run_in(
        dir.path(),
        &[
            "check",
            "--target",
            &target,
            "--cases",
            "25",
            "--seed",
            "11",
            "--report-dir",
            "R",
        ],
    );
    assert_eq!(out.status.code(), Some(0), "{}", describe(&out));
    let report = read_report(&dir.path().join("R"));
    assert_eq!(report["verdict"], "pass");
    assert!(report["target"].as_str().unwrap().starts_with("exec:"));
}

#[test]
fn the_python_example_under_awslambdaric_passes_check() {
    let dir = temp_dir();
    let target = awslambdaric_target("app.handler");
    let env = pythonpath(&python_example());
    let out = run_in(
        dir.path(),
        &[
            "check",
            "--target",
            &target,
            "--env",
            &env,
            "--cases",
            "25",
            "--seed",
            "12",
            "--report-dir",
            "R",
        ],
    );
    assert_eq!(out.status.code(), Some(0), "{}", describe(&out));
    assert_eq!(read_report(&dir.path().join("R"))["verdict"], "pass");
}

#[test]
fn python_handler_bugs_are_caught_with_their_check_ids() {
    let mut narrow = vec!["--cases", "12", "--no-shrink"];
    narrow.extend_from_slice(NARROW);
    for (handler, check) in [
        ("handlers.raises", "invocation_succeeded"),
        ("handlers.drops_record", "no_missing_record_ids"),
        ("handlers.plain_text", "data_is_base64"),
    ] {
        let (report, out, dir) = check_python(handler, &narrow);
        assert_eq!(out.status.code(), Some(1), "{handler}: {}", describe(&out));
        assert_eq!(failing_checks(&report), [check], "{handler}");
        if handler == "handlers.raises" {
            let failure = &report["failures"][0];
            let message = failure["message"].as_str().unwrap();
            assert!(
                message.contains("ValueError") && message.contains("always fails"),
                "{message}"
            );
            // The case folder carries the function's log for that invocation.
            let case = failure["case"].as_str().expect("a saved case");
            let logs =
                std::fs::read_to_string(dir.path().join("R/cases").join(case).join("logs.txt"))
                    .expect("logs.txt");
            assert!(logs.contains("START RequestId:"), "{logs}");
            assert!(logs.contains("REPORT RequestId:"), "{logs}");
            assert!(logs.contains("[ERROR] ValueError"), "{logs}");
        }
    }
}

#[test]
fn the_correct_python_handler_passes_and_shrinks_nothing() {
    let mut args = vec!["--cases", "15"];
    args.extend_from_slice(NARROW);
    let (report, out, _dir) = check_python("handlers.correct", &args);
    assert_eq!(out.status.code(), Some(0), "{}", describe(&out));
    assert_eq!(report["verdict"], "pass");
}

#[test]
fn a_handler_that_overruns_is_reported_within_timeout_and_the_run_goes_on() {
    let mut args = vec!["--cases", "4", "--timeout", "3s", "--no-shrink"];
    args.extend_from_slice(NARROW);
    let (report, out, dir) = check_python("handlers.sleeps_once", &args);
    assert_eq!(out.status.code(), Some(1), "{}", describe(&out));
    assert_eq!(failing_checks(&report), ["within_timeout"]);
    // One case timed out; the others ran on a fresh instance and passed.
    assert_eq!(report["failures"][0]["count"], 1);
    // The message names the function's own time, which the timeout judges.
    let message = report["failures"][0]["message"].as_str().unwrap();
    assert!(message.contains("no answer within 3.0 s"), "{message}");
    let case = report["failures"][0]["case"]
        .as_str()
        .expect("a saved case");
    let logs = std::fs::read_to_string(dir.path().join("R/cases").join(case).join("logs.txt"))
        .expect("logs.txt");
    assert!(logs.contains("going to sleep"), "{logs}");
    assert!(logs.contains("Task timed out after 3.00 seconds"), "{logs}");
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn after_a_timeout_the_next_invocation_succeeds_on_a_fresh_instance() {
    let state = temp_dir();
    let target = exec_target(
        "handlers.sleeps_once",
        1,
        &[("STATE_DIR", state.path().display().to_string())],
    )
    .await;
    let first = target
        .invoke(event(2), Duration::from_secs(2))
        .await
        .unwrap();
    assert_eq!(first.outcome, Outcome::TimedOut);
    let second = target
        .invoke(event(2), Duration::from_secs(20))
        .await
        .unwrap();
    assert_eq!(second.outcome, Outcome::Answered, "{:?}", second.logs);
    assert!(second.function_error.is_none());
    assert!(
        second.init_duration.is_some(),
        "a cold start on a new instance"
    );
    let stats = target.pool_stats().unwrap();
    assert_eq!(
        (stats.cold_starts, stats.timeouts, stats.running),
        (2, 1, 1)
    );
    target.shutdown().await;
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn a_crash_mid_invocation_is_a_function_error_with_status_and_stderr() {
    let state = temp_dir();
    let env = [("STATE_DIR", state.path().display().to_string())];
    let target = exec_target("handlers.exits_once", 1, &env).await;
    let crashed = target
        .invoke(event(1), Duration::from_secs(20))
        .await
        .unwrap();
    let error = crashed.function_error.expect("a function error");
    assert_eq!(error.kind, "Runtime.ExitError");
    let message = error.message.unwrap();
    assert!(
        message.contains("Runtime exited with error: exit status 3"),
        "{message}"
    );
    assert!(
        message.contains("fatal: giving up on this batch"),
        "{message}"
    );
    let body: serde_json::Value = serde_json::from_slice(&crashed.body).unwrap();
    assert_eq!(body["errorType"], "Runtime.ExitError");
    let logs = crashed.logs.unwrap();
    assert!(
        logs.contains("about to exit") && logs.contains("END RequestId:"),
        "{logs}"
    );
    let next = target
        .invoke(event(1), Duration::from_secs(20))
        .await
        .unwrap();
    assert!(next.function_error.is_none(), "{:?}", next.logs);
    assert_eq!(target.pool_stats().unwrap().crashes, 1);
    target.shutdown().await;

    let target = exec_target("handlers.segfaults_once", 1, &env).await;
    let crashed = target
        .invoke(event(1), Duration::from_secs(20))
        .await
        .unwrap();
    let message = crashed.function_error.unwrap().message.unwrap();
    assert!(message.contains("signal: SIGSEGV"), "{message}");
    target.shutdown().await;
}

#[test]
fn a_handler_that_exits_mid_invocation_fails_its_case_and_the_run_goes_on() {
    let mut args = vec!["--cases", "4", "--no-shrink"];
    args.extend_from_slice(NARROW);
    let (report, out, _dir) = check_python("handlers.exits_once", &args);
    assert_eq!(out.status.code(), Some(1), "{}", describe(&out));
    assert_eq!(failing_checks(&report), ["invocation_succeeded"]);
    assert_eq!(report["failures"][0]["count"], 1);
    let message = report["failures"][0]["message"].as_str().unwrap();
    assert!(message.contains("Runtime.ExitError"), "{message}");
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn eight_simultaneous_invocations_run_in_eight_instances() {
    const N: usize = 8;
    let barrier = Barrier::new(N, Duration::from_secs(60));
    let target = exec_target(
        "handlers.rendezvous",
        N,
        &[("BARRIER_PORT", barrier.port.to_string())],
    )
    .await;
    let target: std::sync::Arc<dyn Target> = std::sync::Arc::from(target);
    let calls: Vec<_> = (0..N)
        .map(|_| {
            let target = target.clone();
            tokio::spawn(async move { target.invoke(event(1), Duration::from_secs(60)).await })
        })
        .collect();
    let mut pids = std::collections::BTreeSet::new();
    let mut cold = 0;
    for call in calls {
        let inv = call.await.unwrap().unwrap();
        assert_eq!(inv.outcome, Outcome::Answered, "{:?}", inv.logs);
        assert!(inv.function_error.is_none(), "{:?}", inv.logs);
        let answer: serde_json::Value = serde_json::from_slice(&inv.body).unwrap();
        pids.insert(answer["pid"].as_u64().unwrap());
        cold += usize::from(inv.init_duration.is_some());
    }
    // Every invocation was held at the barrier until all eight had arrived: they overlapped.
    assert_eq!(barrier.wait(), N);
    assert_eq!(pids.len(), N, "eight different processes");
    assert_eq!(
        cold, N,
        "each first invocation of an instance reports its init duration"
    );
    let stats = target.pool_stats().unwrap();
    assert_eq!((stats.cold_starts, stats.peak_busy, stats.inits), (8, 8, 8));
    target.shutdown().await;
}

#[test]
fn an_init_error_fails_fast_with_exit_4_and_the_functions_message() {
    let (report, out, _dir) = check_python("broken_init.handler", &["--cases", "3"]);
    assert_eq!(out.status.code(), Some(4), "{}", describe(&out));
    let err = String::from_utf8_lossy(&out.stderr);
    assert!(
        err.contains("missing configuration: DESTINATION_TABLE is not set"),
        "{err}"
    );
    assert_eq!(crate::support::error_lines(&err), 1, "one line: {err}");
    assert!(err.contains("--env K=V passes configuration"), "{err}");
    assert_eq!(report["exit_code"], 4);
}

#[test]
fn a_missing_binary_is_exit_4_with_one_clear_line() {
    let dir = temp_dir();
    let out = run_in(
        dir.path(),
        &["check", "--target", "exec:./no-such-bootstrap"],
    );
    assert_eq!(out.status.code(), Some(4), "{}", describe(&out));
    let err = String::from_utf8_lossy(&out.stderr);
    assert_eq!(crate::support::error_lines(&err), 1, "{err}");
    assert!(err.contains("`./no-such-bootstrap` was not found"), "{err}");
    let out = run_in(dir.path(), &["check", "--target", "exec:'unbalanced"]);
    assert_eq!(out.status.code(), Some(2), "{}", describe(&out));
}

/// An event whose invocationId tells the protocol probe which mistake to make.
fn probe_event(mode: &str) -> Bytes {
    let mut e: serde_json::Value = serde_json::from_slice(&event(1)).unwrap();
    e["invocationId"] = json!(mode);
    Bytes::from(e.to_string())
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn the_runtime_api_answers_protocol_mistakes_and_retires_the_runtime_that_made_them() {
    let probe = python_fixtures().join("protocol_probe.py");
    let spec = TargetSpec::parse(&format!("exec:python3 {}", probe.display())).unwrap();
    let target = targets::build(&spec, &TargetOptions::default()).unwrap();
    target.start().await.expect("the probe starts");
    let limit = Duration::from_secs(20);
    let inv = target.invoke(probe_event("headers"), limit).await.unwrap();
    assert!(inv.function_error.is_none(), "{:?}", inv.logs);
    let first: serde_json::Value = serde_json::from_slice(&inv.body).unwrap();
    let h = &first["next_headers"];
    assert_eq!(h["content-type"], "application/json");
    assert!(
        h["lambda-runtime-invoked-function-arn"]
            .as_str()
            .unwrap()
            .starts_with("arn:aws:lambda:")
    );
    assert!(
        h["lambda-runtime-trace-id"]
            .as_str()
            .unwrap()
            .starts_with("Root=1-")
    );
    // A real epoch deadline, about the invocation's timeout ahead of the moment of delivery.
    let deadline: i64 = h["lambda-runtime-deadline-ms"]
        .as_str()
        .unwrap()
        .parse()
        .unwrap();
    let now = first["now_ms"].as_i64().unwrap();
    assert!(
        deadline > now && deadline <= now + 20_000,
        "{deadline} vs {now}"
    );

    // Each mistake fails the invocation the runtime held, with the status the real Runtime API
    // answers, and the next invocation runs on a fresh instance (a cold start).
    for (mode, status) in [
        ("wrong_id", "400 InvalidRequestID"),
        ("next_while_busy", "403 InvalidStateTransition"),
        ("init_error_after_init", "403 InvalidStateTransition"),
    ] {
        let inv = target.invoke(probe_event(mode), limit).await.unwrap();
        let Outcome::Broken(reason) = &inv.outcome else {
            panic!("{mode}: {:?} {:?}", inv.outcome, inv.logs)
        };
        assert!(
            reason.contains("broke the Runtime API protocol"),
            "{reason}"
        );
        assert!(reason.contains(status), "{mode}: {reason}");
        let next = target.invoke(probe_event("fine"), limit).await.unwrap();
        assert!(next.init_duration.is_some(), "{mode}: a fresh instance");
        assert_eq!(next.outcome, Outcome::Answered);
    }
    // Over the limit: the runtime gets 413, the harness keeps the body to measure it, and the
    // next event does not go to the runtime that was refused.
    let inv = target
        .invoke(probe_event("too_large"), limit)
        .await
        .unwrap();
    assert!(inv.body.len() > 6 * 1024 * 1024 + 100);
    assert!(inv.function_error.is_none());
    assert!(
        inv.logs
            .unwrap()
            .contains("exceeded maximum allowed payload size")
    );
    let next = target.invoke(probe_event("fine"), limit).await.unwrap();
    assert!(next.init_duration.is_some(), "413: a fresh instance");
    let stats = target.pool_stats().unwrap();
    assert_eq!((stats.rejected, stats.crashes), (4, 0), "{stats:?}");
    target.shutdown().await;

    // A runtime that answers before asking for an event fails its start, with the reason.
    let mut options = TargetOptions::default();
    options.env.push(("PROBE_EARLY".into(), "1".into()));
    let target = targets::build(&spec, &options).unwrap();
    let err = target
        .start()
        .await
        .expect_err("a broken start")
        .to_string();
    assert!(err.contains("broke the Runtime API protocol"), "{err}");
    assert!(err.contains("403 InvalidStateTransition"), "{err}");
}

/// Issue 9, bug 2: a 0.3 s function sent 5 invocations a second on one instance queues. The wait
/// for the instance is queue wait — its own histogram — never a timeout, and never a reason to
/// kill the instance: one cold start, no `within_timeout`, a pass.
#[test]
fn issue_9_queue_wait_under_load_is_not_function_time() {
    let dir = temp_dir();
    let target = awslambdaric_target("handlers.sleeps");
    let env = pythonpath(&python_fixtures());
    let out = run_in(
        dir.path(),
        &[
            "load",
            "--target",
            &target,
            "--env",
            &env,
            "--instances",
            "1",
            "--timeout",
            "1s",
            "--rate",
            "5",
            "--duration",
            "6s",
            "--records",
            "1..5",
            "--record-size",
            "0..1KiB",
            "--seed",
            "3",
            "--report-dir",
            "R",
        ],
    );
    assert_eq!(out.status.code(), Some(0), "{}", describe(&out));
    let report = read_report(&dir.path().join("R"));
    let load = &report["load"];
    assert_eq!(load["invocations"], 30, "{load}");
    assert_eq!(load["throttles"], 0);
    let queue = &load["latency"]["queue_wait"];
    assert_eq!(queue["count"], 30, "every invocation's wait is recorded");
    // The function alone takes 0.3 s per call and calls come every 0.2 s: they had to queue.
    assert!(queue["max"].as_u64().unwrap() > 300_000, "{queue}");
    let within = report["checks"]
        .as_array()
        .unwrap()
        .iter()
        .find(|c| c["id"] == "within_timeout")
        .unwrap();
    assert_eq!(within["violations"], 0, "{report}");
    let notes = report["notes"].to_string();
    assert!(notes.contains("instances: 1 cold start "), "{notes}");
    assert!(!notes.contains("killed after a timeout"), "{notes}");
    let summary = std::fs::read_to_string(dir.path().join("R/summary.md")).unwrap();
    assert!(summary.contains("queue wait"), "{summary}");
}

/// Issue 9, bug 3: a response over 6 MB is answered 413 and the runtime is retired with it, so the
/// batch that was too large fails `response_within_limit` — and the next batch runs on a fresh
/// instance instead of meeting the dying one (`Runtime.ExitError`, flaky, a meaningless minimal
/// case).
#[test]
fn issue_9_an_oversized_response_fails_its_own_batch_only() {
    let (report, out, dir) = check_python(
        "handlers.inflates",
        &[
            "--cases",
            "10",
            "--payload",
            "text",
            "--compression",
            "none",
            "--records",
            "1..40",
            "--record-size",
            "20KiB..60KiB",
            "--no-boundary",
            "--no-regressions",
        ],
    );
    assert_eq!(out.status.code(), Some(1), "{}", describe(&out));
    assert_eq!(
        failing_checks(&report),
        ["response_within_limit"],
        "{report}"
    );
    let text = report.to_string();
    assert!(!text.contains("Runtime.ExitError"), "{report}");
    assert!(!text.contains("invocation_succeeded\",\"code"), "{report}");
    let failure = &report["failures"][0];
    assert_eq!(failure["flaky"], false, "{failure}");
    let random = report["phases"]
        .as_array()
        .unwrap()
        .iter()
        .find(|p| p["phase"] == "random")
        .unwrap();
    let (run, failed) = (
        random["run"].as_u64().unwrap(),
        random["failed"].as_u64().unwrap(),
    );
    assert!(
        failed > 0 && failed < run,
        "small batches pass, big ones fail: {random}"
    );
    let logs = std::fs::read_to_string(
        dir.path()
            .join("R/cases")
            .join(failure["case"].as_str().unwrap())
            .join("logs.txt"),
    )
    .unwrap();
    assert!(
        logs.contains("exceeded maximum allowed payload size"),
        "{logs}"
    );
}

/// Issue 9, point 10: the failure message names the exception by its line — Python's
/// `ValueError: bad record 17`, a Rust panic's `panicked at FILE:LINE:COL: bad record 17` — in
/// report.json and the HTML report, not a type name or the top of a traceback.
#[test]
fn issue_9_the_failure_message_names_the_exception_line() {
    let mut args = vec!["--cases", "3", "--no-shrink"];
    args.extend_from_slice(NARROW);
    let (report, out, dir) = check_python("handlers.bad_record", &args);
    assert_eq!(out.status.code(), Some(1), "{}", describe(&out));
    let message = report["failures"][0]["message"].as_str().unwrap();
    assert!(message.contains("ValueError: bad record 17"), "{message}");
    let html = std::fs::read_to_string(dir.path().join("R/report.html")).unwrap();
    assert!(
        html.contains("ValueError: bad record 17"),
        "the HTML report names it too"
    );

    let dir = temp_dir();
    let target = rust_panics_target();
    let mut args = vec!["check", "--target", &target, "--cases", "3", "--no-shrink"];
    args.extend_from_slice(NARROW);
    let (report, out) = crate::support::check_in(dir.path(), &args);
    assert_eq!(out.status.code(), Some(1), "{}", describe(&out));
    assert_eq!(failing_checks(&report), ["invocation_succeeded"]);
    let message = report["failures"][0]["message"].as_str().unwrap();
    assert!(
        message.contains("panicked at ")
            && message.contains("/panics.rs:")
            && message.contains(": bad record 17"),
        "{message}"
    );
    assert!(
        String::from_utf8_lossy(&out.stdout).contains("bad record 17")
            || String::from_utf8_lossy(&out.stderr).contains("bad record 17"),
        "the terminal names it: {}",
        describe(&out)
    );
}
