//! No container outlives its run: `--instances` is the number of containers, and they are gone at
//! the end, after Ctrl-C, and (for a run killed outright) once the next run starts.

use std::time::Duration;

use nix::sys::signal::{Signal, kill};
use nix::unistd::Pid;

use crate::images::{self, containers_of, spawn_harness, wait_for_containers};
use crate::support::{describe, read_report, temp_dir};

/// `load` against the example slowed to 200 ms per invocation, 8 callers, at most 4 containers.
fn load_args<'a>(target: &'a str, until: &'a [&'a str]) -> Vec<&'a str> {
    let mut args = vec![
        "load",
        "--target",
        target,
        "--env",
        "EXAMPLE_DELAY_MS=200",
        "--instances",
        "4",
        "--concurrency",
        "8",
        "--records",
        "1..20",
        "--record-size",
        "0..2KB",
        "--report-dir",
        "R",
    ];
    args.extend_from_slice(until);
    args
}

#[test]
fn load_with_four_instances_runs_exactly_four_containers_and_leaves_none() {
    let (_, function) = images::images();
    let dir = temp_dir();
    let target = format!("image:{function}");
    let mut child = spawn_harness(dir.path(), &load_args(&target, &["--invocations", "120"]));
    let pid = child.id();
    // Watch the run's containers while it runs: more than four would show up here.
    let mut seen = Vec::new();
    let mut most = 0;
    while child.try_wait().unwrap().is_none() {
        let now = containers_of(pid);
        most = most.max(now.len());
        for id in now {
            if !seen.contains(&id) {
                seen.push(id);
            }
        }
        std::thread::sleep(Duration::from_millis(100));
    }
    let out = child.wait_with_output().unwrap();
    assert_eq!(out.status.code(), Some(0), "{}", describe(&out));
    let report = read_report(&dir.path().join("R"));
    assert_eq!(report["load"]["invocations"], 120, "{report}");
    let notes = report["notes"].to_string();
    assert!(notes.contains("instances: 4 cold starts"), "{notes}");
    assert_eq!(seen.len(), 4, "containers seen: {seen:?}");
    assert!(most <= 4, "{most} containers at once");
    assert_eq!(containers_of(pid), Vec::<String>::new(), "left behind");
}

#[test]
fn ctrl_c_writes_the_partial_report_and_removes_every_container() {
    let (_, function) = images::images();
    let dir = temp_dir();
    let target = format!("image:{function}");
    let child = spawn_harness(dir.path(), &load_args(&target, &["--duration", "5m"]));
    let pid = child.id();
    let mut seen = Vec::new();
    wait_for_containers(pid, 4, &mut seen);
    kill(Pid::from_raw(pid as i32), Signal::SIGINT).unwrap();
    let out = child.wait_with_output().unwrap();
    assert_eq!(out.status.code(), Some(130), "{}", describe(&out));
    let report = read_report(&dir.path().join("R"));
    assert_eq!(report["exit_code"], 130, "{report}");
    assert_eq!(containers_of(pid), Vec::<String>::new(), "left behind");
    for id in &seen {
        let out = std::process::Command::new("docker")
            .args(["inspect", id])
            .output()
            .unwrap();
        assert!(!out.status.success(), "container {id} is still there");
    }
}

#[test]
fn a_killed_runs_containers_are_reaped_when_the_next_run_starts() {
    let (_, function) = images::images();
    let dir = temp_dir();
    let target = format!("image:{function}");
    let mut child = spawn_harness(dir.path(), &load_args(&target, &["--duration", "5m"]));
    let pid = child.id();
    let mut seen = Vec::new();
    wait_for_containers(pid, 2, &mut seen);
    // SIGKILL: the run cannot remove anything; its containers stay until someone reaps them.
    child.kill().unwrap();
    child.wait().unwrap();
    let next = spawn_harness(
        dir.path(),
        &[
            "check",
            "--target",
            &target,
            "--cases",
            "1",
            "--no-boundary",
            "--no-regressions",
        ],
    )
    .wait_with_output()
    .unwrap();
    assert_eq!(next.status.code(), Some(0), "{}", describe(&next));
    assert_eq!(containers_of(pid), Vec::<String>::new(), "not reaped");
}
