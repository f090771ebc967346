//! `check --target image:…` end to end, and the harness image driving a remote target.

use crate::images::{self, containers_of, docker, spawn_harness};
use crate::support::{describe, failing_checks, read_report, temp_dir};

#[test]
fn check_passes_on_the_function_image_and_removes_its_container() {
    let (_, function) = images::images();
    let dir = temp_dir();
    let target = format!("image:{function}");
    let child = spawn_harness(
        dir.path(),
        &["check", "--target", &target, "--cases", "30", "--seed", "7"],
    );
    let pid = child.id();
    let out = child.wait_with_output().unwrap();
    assert_eq!(out.status.code(), Some(0), "{}", describe(&out));
    // The header names the image; the notes count its one container.
    let stderr = String::from_utf8_lossy(&out.stderr);
    assert!(stderr.contains(&target), "{stderr}");
    let stdout = String::from_utf8_lossy(&out.stdout);
    assert!(stdout.contains("instances: 1 cold start"), "{stdout}");
    assert_eq!(containers_of(pid), Vec::<String>::new(), "left behind");
}

#[test]
fn a_misbehaving_deployment_is_caught_with_its_check_id_and_its_logs() {
    let (_, function) = images::images();
    let dir = temp_dir();
    let target = format!("image:{function}");
    let child = spawn_harness(
        dir.path(),
        &[
            "check",
            "--target",
            &target,
            "--env",
            "EXAMPLE_FAULT=drop-last-record",
            "--cases",
            "10",
            "--max-failures",
            "1",
            "--shrink-invocations",
            "20",
            "--report-dir",
            "R",
        ],
    );
    let pid = child.id();
    let out = child.wait_with_output().unwrap();
    assert_eq!(out.status.code(), Some(1), "{}", describe(&out));
    let report = read_report(&dir.path().join("R"));
    assert_eq!(
        failing_checks(&report),
        vec!["no_missing_record_ids".to_string()],
        "{report}"
    );
    // The case carries the container's output for that invocation: emulate's START … REPORT.
    let cases = dir.path().join("R/cases");
    let case = std::fs::read_dir(&cases)
        .unwrap()
        .next()
        .expect("a case folder")
        .unwrap()
        .path();
    let logs = std::fs::read_to_string(case.join("logs.txt")).expect("logs.txt in the case");
    assert!(logs.contains("REPORT RequestId"), "{logs}");
    let script = std::fs::read_to_string(case.join("reproduce.sh")).unwrap();
    assert!(script.contains(&target), "{script}");
    assert_eq!(containers_of(pid), Vec::<String>::new(), "left behind");
}

#[test]
fn a_function_that_fails_to_start_is_exit_4_with_its_own_words() {
    let (_, function) = images::images();
    let dir = temp_dir();
    let child = spawn_harness(
        dir.path(),
        &[
            "check",
            "--target",
            &format!("image:{function}"),
            "--env",
            "EXAMPLE_FAULT=no-such-fault",
            "--report-dir",
            "R",
        ],
    );
    let pid = child.id();
    let out = child.wait_with_output().unwrap();
    assert_eq!(out.status.code(), Some(4), "{}", describe(&out));
    let stderr = String::from_utf8_lossy(&out.stderr);
    let errors: Vec<&str> = stderr
        .lines()
        .filter(|l| l.starts_with("firehose-harness: "))
        .collect();
    assert_eq!(errors.len(), 1, "{stderr}");
    assert!(
        errors[0].contains("container exited") && errors[0].contains("no-such-fault"),
        "{stderr}"
    );
    assert_eq!(read_report(&dir.path().join("R"))["exit_code"], 4);
    assert_eq!(containers_of(pid), Vec::<String>::new(), "left behind");
}

#[test]
fn an_image_that_is_not_there_is_exit_4() {
    images::images();
    let dir = temp_dir();
    let out = spawn_harness(
        dir.path(),
        &[
            "check",
            "--target",
            "image:firehose-harness-test/not-built-anywhere:nope",
        ],
    )
    .wait_with_output()
    .unwrap();
    assert_eq!(out.status.code(), Some(4), "{}", describe(&out));
    let stderr = String::from_utf8_lossy(&out.stderr);
    assert!(stderr.contains("not-built-anywhere"), "{stderr}");
    assert!(!stderr.contains("panicked"), "{stderr}");
}

/// The harness image (a static binary in `FROM scratch`) checks a function served elsewhere: here
/// the function image run by plain `docker run`, reached over the host's network.
#[test]
fn the_harness_image_checks_a_remote_invoke_api_target() {
    let (harness, function) = images::images();
    let id = docker(&["run", "-d", "-p", "127.0.0.1::8080", function])
        .trim()
        .to_string();
    let _cleanup = RemoveOnDrop(id.clone());
    let port = docker(&["port", &id, "8080/tcp"]);
    let port = port
        .lines()
        .next()
        .and_then(|l| l.rsplit(':').next())
        .expect("a published port")
        .trim()
        .to_string();
    let target = format!("invoke+http://127.0.0.1:{port}");
    let out = std::process::Command::new("docker")
        .args([
            "run",
            "--rm",
            "--network",
            "host",
            harness,
            "check",
            "--target",
            &target,
            "--cases",
            "10",
            "--no-regressions",
        ])
        .output()
        .unwrap();
    assert_eq!(out.status.code(), Some(0), "{}", describe(&out));
    assert!(
        String::from_utf8_lossy(&out.stdout).contains("PASS (exit 0)"),
        "{}",
        describe(&out)
    );
}

struct RemoveOnDrop(String);

impl Drop for RemoveOnDrop {
    fn drop(&mut self) {
        let _ = std::process::Command::new("docker")
            .args(["rm", "-f", &self.0])
            .output();
    }
}
