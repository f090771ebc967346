//! Issue 4: `stdio:` runs one process per invocation — event on stdin, response on stdout.

use crate::runtimes::stdio_target;
use crate::support::{check_in, describe, failing_checks, run_in, temp_dir};

fn check(
    mode: &str,
    extra: &[&str],
) -> (serde_json::Value, std::process::Output, tempfile::TempDir) {
    let target = stdio_target(mode);
    let mut args = vec![
        "check",
        "--target",
        &target,
        "--seed",
        "9",
        "--no-regressions",
        "--records",
        "1..10",
        "--record-size",
        "0..1KiB",
        "--no-boundary",
    ];
    args.extend_from_slice(extra);
    let dir = temp_dir();
    let (report, out) = check_in(dir.path(), &args);
    (report, out, dir)
}

#[test]
fn a_correct_stdio_transformer_passes() {
    let (report, out, _dir) = check("correct", &["--cases", "10"]);
    assert_eq!(out.status.code(), Some(0), "{}", describe(&out));
    assert_eq!(report["verdict"], "pass");
}

#[test]
fn a_non_zero_exit_is_a_function_error_with_the_stderr_tail() {
    let (report, out, dir) = check("fail", &["--cases", "2", "--no-shrink"]);
    assert_eq!(out.status.code(), Some(1), "{}", describe(&out));
    assert_eq!(failing_checks(&report), ["invocation_succeeded"]);
    let message = report["failures"][0]["message"].as_str().unwrap();
    assert!(message.contains("exit status 3"), "{message}");
    assert!(message.contains("cannot handle this batch"), "{message}");
    let case = report["failures"][0]["case"].as_str().unwrap();
    let case_dir = dir.path().join("R/cases").join(case);
    let logs = std::fs::read_to_string(case_dir.join("logs.txt")).unwrap();
    assert!(logs.contains("cannot handle this batch"), "{logs}");
    let script = std::fs::read_to_string(case_dir.join("reproduce.sh")).unwrap();
    assert!(
        script.contains("transform.py fail < \"$case_dir/event.json\""),
        "{script}"
    );
}

#[test]
fn a_stdio_transformer_that_hangs_is_a_timeout() {
    let (report, out, _dir) = check("sleep", &["--cases", "1", "--no-shrink", "--timeout", "1s"]);
    assert_eq!(out.status.code(), Some(1), "{}", describe(&out));
    assert_eq!(failing_checks(&report), ["within_timeout"]);
}

#[test]
fn a_missing_stdio_program_is_exit_4() {
    let dir = temp_dir();
    let out = run_in(dir.path(), &["check", "--target", "stdio:./nope.sh --flag"]);
    assert_eq!(out.status.code(), Some(4), "{}", describe(&out));
    let err = String::from_utf8_lossy(&out.stderr);
    assert_eq!(crate::support::error_lines(&err), 1, "{err}");
    assert!(err.contains("./nope.sh"), "{err}");
}

/// Issue 13, point 7: answers, closes stdout, then lingers (`drop`: the answer misses a record).
const LINGERER: &str = r#"
import json, os, sys, time
event = json.load(sys.stdin)
records = [{"recordId": x["recordId"], "result": "Ok", "data": x["data"]} for x in event["records"]]
if sys.argv[1:] == ["drop"]:
    records = records[1:]
json.dump({"records": records}, sys.stdout)
sys.stdout.flush()
os.close(1)
time.sleep(600)
"#;

#[test]
fn issue_13_a_process_that_answers_closes_stdout_and_lingers_is_judged_on_its_answer() {
    let dir = temp_dir();
    std::fs::write(dir.path().join("linger.py"), LINGERER).unwrap();
    let common = [
        "--cases",
        "2",
        "--records",
        "2..4",
        "--no-boundary",
        "--no-regressions",
        "--no-shrink",
        "--timeout",
        "120s",
    ];
    let mut args = vec!["check", "--target", "stdio:python3 linger.py"];
    args.extend(common);
    let (report, out) = check_in(dir.path(), &args);
    assert_eq!(out.status.code(), Some(0), "{}", describe(&out));
    assert_eq!(report["verdict"], "pass");

    // A wrong answer is judged as what it is, and the kill is noted in the case's log.
    let dir = temp_dir();
    std::fs::write(dir.path().join("linger.py"), LINGERER).unwrap();
    let mut args = vec!["check", "--target", "stdio:python3 linger.py drop"];
    args.extend(common);
    let (report, out) = check_in(dir.path(), &args);
    assert_eq!(out.status.code(), Some(1), "{}", describe(&out));
    assert_eq!(failing_checks(&report), ["no_missing_record_ids"]);
    let case = report["failures"][0]["case"].as_str().unwrap();
    let logs = std::fs::read_to_string(dir.path().join("R/cases").join(case).join("logs.txt"))
        .expect("logs.txt");
    assert!(logs.contains("closed its stdout"), "{logs}");
}
