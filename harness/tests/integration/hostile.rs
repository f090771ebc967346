//! Hostile answers: huge, never-ending, not UTF-8, too slow. Each gets a verdict, never a hang or a panic.

use crate::support::{describe, failing_checks, read_report, run_in, serve, temp_dir};
use crate::zoo::{Animal, router};

fn expect(animal: Animal, check: &str) {
    let server = serve(router());
    let dir = temp_dir();
    let url = server.url(&animal.path());
    let out = run_in(
        dir.path(),
        &[
            "check",
            "--target",
            &url,
            "--cases",
            "2",
            "--seed",
            "1",
            "--timeout",
            "1s",
            "--no-boundary",
            "--no-shrink",
            "--records",
            "1..3",
            "--record-size",
            "0..100",
            "--report-dir",
            "R",
        ],
    );
    assert_eq!(out.status.code(), Some(1), "{animal:?}: {}", describe(&out));
    let err = String::from_utf8_lossy(&out.stderr);
    assert!(!err.contains("panicked"), "{err}");
    let report = read_report(&dir.path().join("R"));
    assert!(
        failing_checks(&report).contains(&check.to_string()),
        "{animal:?}: {:?}",
        failing_checks(&report)
    );
}

#[test]
fn a_100mb_body_is_cut_and_reported_too_large() {
    expect(Animal::Huge, "response_within_limit");
}

#[test]
fn a_body_that_never_ends_is_a_timeout() {
    expect(Animal::NeverEnds, "within_timeout");
}

#[test]
fn invalid_utf8_is_not_json() {
    expect(Animal::InvalidUtf8, "response_is_json");
}

#[test]
fn a_slow_transformer_times_out() {
    expect(Animal::Sleeps, "within_timeout");
}

#[test]
fn the_deadline_stops_a_hanging_target_and_keeps_the_report() {
    let server = serve(router());
    let dir = temp_dir();
    let url = server.url(&Animal::Sleeps.path());
    let args = [
        "check",
        "--target",
        &url,
        "--cases",
        "100",
        "--seed",
        "1",
        "--deadline",
        "2500ms",
        "--no-boundary",
        "--no-shrink",
        "--report-dir",
        "R",
    ];
    // Cases time out after 1 s each; the deadline ends the run after the second.
    let mut with_timeout = args.to_vec();
    with_timeout.extend(["--timeout", "1s"]);
    let out = run_in(dir.path(), &with_timeout);
    assert_eq!(out.status.code(), Some(1), "{}", describe(&out));
    let report = read_report(&dir.path().join("R"));
    assert_eq!(report["stopped_early"], "deadline");
    assert!(failing_checks(&report).contains(&"within_timeout".to_string()));
    // Without a timeout shorter than the deadline nothing is ever judged: that is not a pass.
    let out = run_in(dir.path(), &args);
    assert_eq!(out.status.code(), Some(4), "{}", describe(&out));
    assert!(String::from_utf8_lossy(&out.stderr).contains("deadline"));
    assert_eq!(read_report(&dir.path().join("R"))["exit_code"], 4);
}
