//! Issue 13, point 2: no process outlives its instance or the harness. Functions plant `setsid()`
//! grandchildren (which leave the process group, so a group kill misses them) marked with a unique
//! environment variable; a scan of `/proc` then looks for any marked process still alive.

use std::path::Path;
use std::process::{Child, Command, Stdio};
use std::time::{Duration, Instant};

use crate::support::{bin, describe, temp_dir};

/// A Lambda runtime written against the Runtime API with Python's standard library only: each
/// event plants a `setsid()` grandchild and a plain child, then (`hang`) says so in a file and
/// never answers, or answers correctly.
const RUNTIME: &str = r#"
import json, os, subprocess, sys, time, urllib.request
base = "http://%s/2018-06-01/runtime/invocation" % os.environ["AWS_LAMBDA_RUNTIME_API"]
while True:
    with urllib.request.urlopen(base + "/next") as r:
        rid = r.headers["Lambda-Runtime-Aws-Request-Id"]
        event = json.load(r)
    subprocess.Popen(["sleep", "600"], start_new_session=True)
    subprocess.Popen(["sleep", "600"])
    if sys.argv[1:] == ["hang"]:
        open(os.environ["READY_FILE"], "w").write("planted")
        time.sleep(600)
    records = [{"recordId": x["recordId"], "result": "Ok", "data": x["data"]} for x in event["records"]]
    body = json.dumps({"records": records}).encode()
    urllib.request.urlopen(urllib.request.Request(base + "/" + rid + "/response", data=body, method="POST")).read()
"#;

/// A stdio transformer: plants a `setsid()` grandchild, notes its pid, and answers — correctly
/// only if no grandchild an earlier invocation planted is still alive (`hang`: never answers).
const STDIO: &str = r#"
import json, os, subprocess, sys, time
pids = os.environ["PIDS_FILE"]
alive = []
if os.path.exists(pids):
    for line in open(pids):
        try:
            state = open("/proc/%s/stat" % line.strip()).read().rsplit(")", 1)[1].split()[0]
        except OSError:
            continue
        if state != "Z":
            alive.append(line.strip())
child = subprocess.Popen(["sleep", "600"], start_new_session=True, stdout=subprocess.DEVNULL)
open(pids, "a").write("%d\n" % child.pid)
event = json.load(sys.stdin)
if sys.argv[1:] == ["hang"]:
    open(os.environ["READY_FILE"], "w").write("planted")
    time.sleep(600)
if alive:
    print("earlier grandchildren still alive: " + " ".join(alive))
    sys.exit(0)
records = [{"recordId": x["recordId"], "result": "Ok", "data": x["data"]} for x in event["records"]]
json.dump({"records": records}, sys.stdout)
"#;

const MARK: &str = "FIREHOSE_HARNESS_ORPHAN_MARK";

/// Live (not zombie) processes whose environment carries `MARK=mark`, as `pid state command`.
fn marked(mark: &str) -> Vec<String> {
    let needle = format!("{MARK}={mark}");
    let mut found = Vec::new();
    for entry in std::fs::read_dir("/proc").expect("/proc").flatten() {
        let name = entry.file_name();
        let Some(pid) = name
            .to_str()
            .filter(|n| n.bytes().all(|b| b.is_ascii_digit()))
        else {
            continue;
        };
        let Ok(environ) = std::fs::read(entry.path().join("environ")) else {
            continue;
        };
        if !environ.split(|&b| b == 0).any(|v| v == needle.as_bytes()) {
            continue;
        }
        let stat = std::fs::read_to_string(entry.path().join("stat")).unwrap_or_default();
        let state = stat
            .rsplit_once(')')
            .and_then(|(_, rest)| rest.split_whitespace().next())
            .unwrap_or("?")
            .to_string();
        if state == "Z" {
            continue;
        }
        let cmdline = std::fs::read(entry.path().join("cmdline")).unwrap_or_default();
        let cmdline = String::from_utf8_lossy(&cmdline).replace('\0', " ");
        found.push(format!("{pid} {state} {cmdline}"));
    }
    found
}

/// Marked processes still alive once the supervisor had time to act: empty when none survive.
/// (A bound on waiting, not a speed assertion: cleanup is asynchronous after a SIGKILL.)
fn survivors(mark: &str) -> Vec<String> {
    let give_up = Instant::now() + Duration::from_secs(60);
    loop {
        let left = marked(mark);
        if left.is_empty() || Instant::now() > give_up {
            return left;
        }
        std::thread::sleep(Duration::from_millis(100));
    }
}

/// Kill whatever a failed test left behind, by pid, so one failure does not leak into the machine.
fn kill_marked(mark: &str) {
    for line in marked(mark) {
        if let Some(pid) = line.split(' ').next() {
            let _ = Command::new("kill").args(["-9", pid]).status();
        }
    }
}

fn unique_mark(name: &str) -> String {
    format!("{name}-{}-{}", std::process::id(), rand_suffix())
}

fn rand_suffix() -> u128 {
    std::time::SystemTime::now()
        .duration_since(std::time::UNIX_EPOCH)
        .map(|d| d.as_nanos())
        .unwrap_or_default()
}

/// Start `check` against `target` in `dir`, marked, with stdout and stderr discarded.
fn start_harness(dir: &Path, target: &str, mark: &str) -> Child {
    Command::new(bin())
        .args([
            "check",
            "--target",
            target,
            "--cases",
            "3",
            "--records",
            "1..3",
            "--no-boundary",
            "--no-regressions",
            "--timeout",
            "300s",
        ])
        .current_dir(dir)
        .env(MARK, mark)
        .env("READY_FILE", dir.join("ready"))
        .env("PIDS_FILE", dir.join("pids"))
        .stdout(Stdio::null())
        .stderr(Stdio::null())
        .spawn()
        .expect("start firehose-harness")
}

/// Wait until the function says it planted its grandchildren (or the harness ended early).
fn wait_ready(dir: &Path, harness: &mut Child) {
    let give_up = Instant::now() + Duration::from_secs(120);
    while !dir.join("ready").exists() {
        if let Ok(Some(status)) = harness.try_wait() {
            panic!("the harness ended before the function planted anything: {status}");
        }
        assert!(
            Instant::now() < give_up,
            "the function never planted its grandchildren"
        );
        std::thread::sleep(Duration::from_millis(50));
    }
}

fn sigkill_leaves_no_survivor(name: &str, target: &str, script: &str) {
    let dir = temp_dir();
    std::fs::write(dir.path().join("f.py"), script).unwrap();
    let mark = unique_mark(name);
    let mut harness = start_harness(dir.path(), target, &mark);
    wait_ready(dir.path(), &mut harness);
    let planted = marked(&mark);
    assert!(
        planted.iter().any(|p| p.contains("sleep 600")),
        "the grandchildren are running before the kill: {planted:?}"
    );
    // What the OOM killer or a CI hard kill does: no chance to clean up.
    harness.kill().expect("SIGKILL the harness");
    let _ = harness.wait();
    let left = survivors(&mark);
    kill_marked(&mark);
    assert!(
        left.is_empty(),
        "processes outlived a SIGKILLed harness: {left:?}"
    );
}

#[test]
fn an_exec_function_and_its_setsid_grandchild_die_with_a_sigkilled_harness() {
    sigkill_leaves_no_survivor("exec", "exec:python3 f.py hang", RUNTIME);
}

#[test]
fn a_stdio_process_and_its_setsid_grandchild_die_with_a_sigkilled_harness() {
    sigkill_leaves_no_survivor("stdio", "stdio:python3 f.py hang", STDIO);
}

#[test]
fn a_setsid_child_of_a_stdio_process_does_not_survive_its_invocation() {
    let dir = temp_dir();
    std::fs::write(dir.path().join("f.py"), STDIO).unwrap();
    let mark = unique_mark("stdio-each");
    let out = Command::new(bin())
        .args([
            "check",
            "--target",
            "stdio:python3 f.py",
            "--cases",
            "4",
            "--records",
            "1..3",
            "--no-boundary",
            "--no-regressions",
            "--no-shrink",
            "--report-dir",
            "R",
        ])
        .current_dir(dir.path())
        .env(MARK, &mark)
        .env("PIDS_FILE", dir.path().join("pids"))
        .env("NO_COLOR", "1")
        .output()
        .expect("run firehose-harness");
    let left = marked(&mark);
    kill_marked(&mark);
    // Each invocation checks that the grandchildren of the ones before it are gone.
    assert_eq!(out.status.code(), Some(0), "{}", describe(&out));
    let planted = std::fs::read_to_string(dir.path().join("pids")).unwrap();
    assert!(planted.lines().count() >= 4, "{planted}");
    assert!(left.is_empty(), "still running after the run: {left:?}");
}

#[test]
fn exec_grandchildren_are_gone_when_the_run_ends() {
    let dir = temp_dir();
    std::fs::write(dir.path().join("f.py"), RUNTIME).unwrap();
    let mark = unique_mark("exec-end");
    let out = Command::new(bin())
        .args([
            "check",
            "--target",
            "exec:python3 f.py",
            "--cases",
            "3",
            "--records",
            "1..3",
            "--no-boundary",
            "--no-regressions",
            "--report-dir",
            "R",
        ])
        .current_dir(dir.path())
        .env(MARK, &mark)
        .env("NO_COLOR", "1")
        .output()
        .expect("run firehose-harness");
    let left = survivors(&mark);
    kill_marked(&mark);
    assert_eq!(out.status.code(), Some(0), "{}", describe(&out));
    assert!(left.is_empty(), "still running after the run: {left:?}");
}
