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
            // Judge every timeout: the run-stopping hang policy has its own test (hardening).
            "--max-hangs",
            "0",
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

#[test]
fn ctrl_c_exits_130_and_writes_the_partial_report() {
    let server = serve(router());
    let dir = temp_dir();
    let url = server.url(&Animal::Sleeps.path());
    // The transformer answers every 5 s; interrupt while the first case waits.
    let mut child = std::process::Command::new(crate::support::bin())
        .args([
            "check",
            "--target",
            &url,
            "--cases",
            "10",
            "--no-boundary",
            "--report-dir",
            "R",
        ])
        .current_dir(dir.path())
        .stdout(std::process::Stdio::piped())
        .stderr(std::process::Stdio::piped())
        .spawn()
        .unwrap();
    // Wait until the run has started (the seed line is printed first), then send SIGINT.
    let mut stderr = std::io::BufReader::new(child.stderr.take().unwrap());
    let mut first = String::new();
    std::io::BufRead::read_line(&mut stderr, &mut first).unwrap();
    assert!(first.contains("seed"), "{first}");
    let rc = interrupt(child.id());
    assert_eq!(rc, 0);
    let status = child.wait().unwrap();
    assert_eq!(status.code(), Some(130));
    let report = read_report(&dir.path().join("R"));
    assert_eq!(report["exit_code"], 130);
    assert_eq!(report["stopped_early"], "interrupted");
}

/// Send SIGINT as a terminal's Ctrl-C would.
fn interrupt(pid: u32) -> i32 {
    std::process::Command::new("kill")
        .args(["-INT", &pid.to_string()])
        .status()
        .map(|s| if s.success() { 0 } else { 1 })
        .unwrap_or(1)
}
