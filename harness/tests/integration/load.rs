//! `load` and `report merge/compare` driven as users drive them, against real HTTP transformers on
//! 127.0.0.1. Assertions count invocations; none asserts how long anything took.

use std::io::{BufRead, BufReader};
use std::path::Path;
use std::process::{Command, Stdio};
use std::time::{Duration, Instant};

use axum::Router;
use axum::body::Bytes;
use axum::routing::post;
use hdrhistogram::Histogram;
use hdrhistogram::serialization::interval_log::{IntervalLogIterator, LogEntry};
use serde_json::Value;

use crate::support::{bin, describe, read_report, run_in, serve, temp_dir};
use crate::zoo::{self, Animal};

/// Small batches, so the runs measure the engine rather than gzip.
const SMALL: &[&str] = &["--records", "1..4", "--record-size", "0..2KiB"];

fn load(cwd: &Path, target: &str, extra: &[&str]) -> std::process::Output {
    let mut args = vec!["load", "--target", target, "--seed", "7"];
    args.extend_from_slice(SMALL);
    args.extend_from_slice(extra);
    run_in(cwd, &args)
}

/// `load` with `--report-dir out`.
fn load_into(cwd: &Path, target: &str, out: &Path, extra: &[&str]) -> std::process::Output {
    let mut args = extra.to_vec();
    args.extend(["--report-dir", out.to_str().unwrap()]);
    load(cwd, target, &args)
}

/// `load_into` that must exit 0; its report.
fn load_ok(cwd: &Path, target: &str, out: &Path, extra: &[&str]) -> Value {
    let run = load_into(cwd, target, out, extra);
    assert_eq!(run.status.code(), Some(0), "{}", describe(&run));
    read_report(out)
}

fn histogram(summary: &Value) -> Histogram<u64> {
    firehose_reports::LatencySummary::decode(summary["histogram"].as_str().unwrap()).unwrap()
}

#[test]
fn constant_rate_issues_the_planned_number_of_invocations() {
    let server = serve(zoo::router());
    let dir = temp_dir();
    let out = dir.path().join("out");
    let report = load_ok(
        dir.path(),
        &server.url("/Correct"),
        &out,
        &["--rate", "50", "--duration", "2s"],
    );
    let load = &report["load"];
    assert_eq!(load["invocations"], 100);
    assert_eq!(load["planned_invocations"], 100);
    assert_eq!(load["interrupted"], 0);
    assert_eq!(load["latency"]["response_time"]["count"], 100);
    assert_eq!(load["latency"]["service_time"]["count"], 100);
    assert_eq!(histogram(&load["latency"]["lag"]).len(), 100);
    let per_second: u64 = load["intervals"]
        .as_array()
        .unwrap()
        .iter()
        .map(|i| i["invocations"].as_u64().unwrap())
        .sum();
    assert_eq!(per_second, 100, "every invocation lands in one second");
    assert_eq!(report["verdict"], "pass");
    // Every answer was checked: the checks saw every record and found nothing.
    assert!(report["records"]["sent"].as_u64().unwrap() >= 100);
    assert_eq!(report["records"]["ok"], report["records"]["sent"]);
    // The interval log reads back with HdrHistogram's own parser and holds the same invocations.
    let hlog = std::fs::read(out.join("latency.hlog")).unwrap();
    let mut corrected = 0;
    for entry in IntervalLogIterator::new(&hlog) {
        if let LogEntry::Interval(i) = entry.unwrap()
            && i.tag().is_none()
        {
            let h = firehose_reports::LatencySummary::decode(i.encoded_histogram()).unwrap();
            corrected += h.len();
        }
    }
    assert_eq!(corrected, 100);
    let junit = std::fs::read_to_string(out.join("junit.xml")).unwrap();
    assert!(junit.contains("no_missing_record_ids"));
}

#[test]
fn closed_model_sends_exactly_the_invocations_asked_for() {
    let server = serve(zoo::router());
    let dir = temp_dir();
    let out = dir.path().join("out");
    let load = &load_ok(
        dir.path(),
        &server.url("/Correct"),
        &out,
        &[
            "--concurrency",
            "4",
            "--invocations",
            "60",
            "--warmup",
            "200ms",
        ],
    )["load"];
    assert_eq!(load["invocations"], 60);
    assert!(load["peak_in_flight"].as_u64().unwrap() <= 4);
    assert!(load["model"].as_str().unwrap().starts_with("closed"));
    assert!(load["warmup_invocations"].as_u64().unwrap() > 0);
}

/// A transformer that stalls for the second half of every two seconds, like a stop-the-world pause.
fn stalling_router() -> Router {
    let born = Instant::now();
    Router::new().route(
        "/",
        post(move |body: Bytes| async move {
            let phase = born.elapsed().as_millis() % 2000;
            if phase >= 1000 {
                tokio::time::sleep(Duration::from_millis((2000 - phase) as u64)).await;
            }
            zoo::respond(Animal::Correct, body).await
        }),
    )
}

#[test]
fn a_stall_shows_in_corrected_latency_but_not_in_uncorrected() {
    let server = serve(stalling_router());
    let dir = temp_dir();
    let out = dir.path().join("out");
    let load = &load_ok(
        dir.path(),
        &server.url("/"),
        &out,
        &["--rate", "200", "--duration", "4s", "--max-in-flight", "1"],
    )["load"];
    // Nothing skipped: every due invocation was sent, late or not.
    assert_eq!(load["invocations"], 800);
    let corrected = load["latency"]["response_time"]["p99"].as_u64().unwrap();
    let uncorrected = load["latency"]["service_time"]["p99"].as_u64().unwrap();
    // Two stalls of up to a second each: ~half of all sends waited behind them.
    assert!(corrected >= 500_000, "corrected p99 {corrected} µs");
    // Only the one invocation in flight when each stall began saw it from the actual send.
    assert!(uncorrected < 250_000, "uncorrected p99 {uncorrected} µs");
    assert!(
        load["late_sends"].as_u64().unwrap() >= 100,
        "sends that waited for the one slot are late: {}",
        load["late_sends"]
    );
    assert!(histogram(&load["latency"]["lag"]).max() >= 500_000);
    assert_eq!(load["peak_in_flight"], 1);
}

#[test]
fn thresholds_gate_the_exit_code_and_become_junit_testcases() {
    let server = serve(zoo::router());
    let dir = temp_dir();
    let out = dir.path().join("out");
    let run = load_into(
        dir.path(),
        &server.url("/Correct"),
        &out,
        &[
            "--rate",
            "40",
            "--invocations",
            "20",
            "--threshold",
            "p99<1us",
            "--threshold",
            "p99.9<=30s",
            "--threshold",
            "error_rate<0.1%",
            "--threshold",
            "violations==0",
            "--threshold",
            "throughput>=1/s",
        ],
    );
    assert_eq!(run.status.code(), Some(3), "{}", describe(&run));
    let report = read_report(&out);
    let t: Vec<(String, bool)> = report["load"]["thresholds"]
        .as_array()
        .unwrap()
        .iter()
        .map(|t| {
            (
                t["expression"].as_str().unwrap().to_string(),
                t["passed"].as_bool().unwrap(),
            )
        })
        .collect();
    assert_eq!(
        t,
        vec![
            ("p99<1us".to_string(), false),
            ("p99.9<=30s".to_string(), true),
            ("error_rate<0.1%".to_string(), true),
            ("violations==0".to_string(), true),
            ("throughput>=1/s".to_string(), true),
        ]
    );
    let junit = std::fs::read_to_string(out.join("junit.xml")).unwrap();
    assert_eq!(junit.matches("name=\"threshold ").count(), 5);
    assert!(junit.contains("p99&lt;1us breached"), "{junit}");
}

#[test]
fn an_abort_threshold_stops_the_run_early() {
    let server = serve(zoo::router());
    let dir = temp_dir();
    let out = dir.path().join("out");
    let run = load_into(
        dir.path(),
        &server.url("/Correct"),
        &out,
        &[
            "--rate",
            "20",
            "--duration",
            "60s",
            "--threshold",
            "p50<1us:abort",
        ],
    );
    assert_eq!(run.status.code(), Some(3), "{}", describe(&run));
    let report = read_report(&out);
    assert_eq!(report["stopped_early"], "threshold");
    assert!(report["load"]["invocations"].as_u64().unwrap() < 1200);
    assert_eq!(report["load"]["thresholds"][0]["aborted_run"], true);
}

#[test]
fn errors_count_toward_error_rate_and_violations_exit_1_with_saved_cases() {
    let server = serve(zoo::router());
    let dir = temp_dir();
    // Function errors: measured, not a contract verdict — and by default they fail the run.
    let errors = dir.path().join("errors");
    let run = load_into(
        dir.path(),
        &server.url("/FunctionErrorHeader"),
        &errors,
        &["--rate", "50", "--invocations", "20"],
    );
    assert_eq!(run.status.code(), Some(3), "{}", describe(&run));
    let figures = &read_report(&errors)["load"];
    assert_eq!(figures["errors"], 20);
    assert_eq!(figures["error_rate"], 1.0);
    assert_eq!(figures["violations"], 0);
    // ... and the summary says where the gate came from.
    let summary = String::from_utf8_lossy(&run.stdout);
    assert!(
        summary.contains("the default gate `error_rate<1%`"),
        "{summary}"
    );
    let run = load_gated(dir.path(), &server.url("/FunctionErrorHeader"));
    assert_eq!(run.status.code(), Some(3), "{}", describe(&run));

    // A contract bug under load: exit 1, counted per check, the first few cases saved.
    let broken = dir.path().join("broken");
    let run = load_into(
        dir.path(),
        &server.url("/DropsLastId"),
        &broken,
        &["--rate", "50", "--invocations", "20"],
    );
    assert_eq!(run.status.code(), Some(1), "{}", describe(&run));
    let report = read_report(&broken);
    assert_eq!(report["load"]["violations"], 20);
    let check = report["checks"]
        .as_array()
        .unwrap()
        .iter()
        .find(|c| c["id"] == "no_missing_record_ids")
        .unwrap();
    assert_eq!(check["status"], "fail");
    assert_eq!(check["violations"], 20);
    let cases: Vec<_> = std::fs::read_dir(broken.join("cases"))
        .unwrap()
        .map(|e| e.unwrap().path())
        .collect();
    assert_eq!(cases.len(), 3, "{cases:?}");
    for case in &cases {
        assert!(case.join("event.json").is_file());
        assert!(case.join("response.body").is_file());
        assert!(case.join("reproduce.sh").is_file());
    }
    assert!(report["failures"][0]["case"].is_string());
}

fn load_gated(cwd: &Path, target: &str) -> std::process::Output {
    load(
        cwd,
        target,
        &[
            "--rate",
            "50",
            "--invocations",
            "10",
            "--threshold",
            "error_rate<1%",
        ],
    )
}

#[test]
fn firehose_model_derives_rate_batches_and_the_outstanding_limit() {
    let server = serve(zoo::router());
    let dir = temp_dir();
    let out = dir.path().join("out");
    let run = run_in(
        dir.path(),
        &[
            "load",
            "--target",
            &server.url("/Correct"),
            "--seed",
            "3",
            "--payload",
            "json",
            "--compression",
            "none",
            "--firehose-ingest",
            "2MB/s",
            "--buffer-size",
            "0.2MB",
            "--buffer-interval",
            "60s",
            "--duration",
            "2s",
            "--report-dir",
            out.to_str().unwrap(),
        ],
    );
    assert_eq!(run.status.code(), Some(0), "{}", describe(&run));
    let report = read_report(&out);
    let load = &report["load"];
    assert_eq!(load["invocations"], 20);
    assert_eq!(load["max_in_flight"], 5);
    let model = &load["firehose_model"];
    assert_eq!(model["invocation_rate"], 10.0);
    assert_eq!(model["batch_bytes"], 200_000);
    assert_eq!(model["outstanding_limit"], 5);
    assert_eq!(model["trigger"], "size");
    assert!(
        model["verdict"]
            .as_str()
            .unwrap()
            .contains("instances by Little's law")
    );
    // Batches are what Firehose would buffer: about 200 KB of records each.
    let per_invocation = load["bytes_in_per_second"].as_f64().unwrap() / 10.0;
    assert!(per_invocation > 200_000.0, "{per_invocation}");
    let stdout = String::from_utf8_lossy(&run.stdout);
    assert!(stdout.contains("Firehose invokes 10.000/s"), "{stdout}");
}

#[test]
fn merged_partitions_equal_the_whole_run() {
    let server = serve(zoo::router());
    let dir = temp_dir();
    let url = server.url("/Correct");
    let args = ["--rate", "100", "--invocations", "41"];
    let mut shards = Vec::new();
    for p in ["1/2", "2/2"] {
        let out = dir.path().join(format!("shard-{}", &p[..1]));
        let mut a = args.to_vec();
        a.extend(["--partition", p]);
        let run = load_into(dir.path(), &url, &out, &a);
        assert_eq!(run.status.code(), Some(0), "{}", describe(&run));
        shards.push(out);
    }
    let whole = dir.path().join("whole");
    let run = load_into(dir.path(), &url, &whole, &args);
    assert_eq!(run.status.code(), Some(0), "{}", describe(&run));

    let merged = dir.path().join("merged");
    let run = run_in(
        dir.path(),
        &[
            "report",
            "merge",
            shards[0].to_str().unwrap(),
            shards[1].join("report.json").to_str().unwrap(),
            "--report-dir",
            merged.to_str().unwrap(),
        ],
    );
    assert_eq!(run.status.code(), Some(0), "{}", describe(&run));
    let (a, b) = (read_report(&shards[0]), read_report(&shards[1]));
    let (m, w) = (read_report(&merged), read_report(&whole));
    assert_eq!(a["load"]["invocations"], 21);
    assert_eq!(b["load"]["invocations"], 20);
    // The shards sent exactly the whole run's events: same invocations, same records.
    assert_eq!(m["load"]["invocations"], w["load"]["invocations"]);
    assert_eq!(m["records"]["sent"], w["records"]["sent"]);
    assert_eq!(m["load"]["partition"], "1/2,2/2");
    // And the merged histograms are the exact sums of the shards', not averaged percentiles.
    for which in ["response_time", "service_time", "lag"] {
        let mut sum = histogram(&a["load"]["latency"][which]);
        sum.add(histogram(&b["load"]["latency"][which])).unwrap();
        let merged_h = histogram(&m["load"]["latency"][which]);
        assert_eq!(merged_h, sum, "{which}");
        assert_eq!(
            m["load"]["latency"][which]["p99"].as_u64().unwrap(),
            sum.value_at_quantile(0.99)
        );
        assert_eq!(
            merged_h.len(),
            histogram(&w["load"]["latency"][which]).len()
        );
    }
    // Without --report-dir the merged report.json goes to stdout.
    let run = run_in(
        dir.path(),
        &[
            "report",
            "merge",
            shards[0].to_str().unwrap(),
            shards[1].to_str().unwrap(),
        ],
    );
    let printed: Value = serde_json::from_slice(&run.stdout).expect("report.json on stdout");
    assert_eq!(printed["load"]["invocations"], 41);

    // A broken histogram is blamed on its own file, whichever position it has.
    let mut broken = read_report(&shards[1]);
    broken["load"]["latency"]["lag"]["histogram"] = "SElTVEZBQUFBSDR4".into();
    let broken_path = dir.path().join("broken.json");
    std::fs::write(&broken_path, serde_json::to_vec(&broken).unwrap()).unwrap();
    let run = run_in(
        dir.path(),
        &[
            "report",
            "merge",
            broken_path.to_str().unwrap(),
            shards[0].to_str().unwrap(),
        ],
    );
    assert_eq!(run.status.code(), Some(2), "{}", describe(&run));
    let err = String::from_utf8_lossy(&run.stderr);
    assert!(
        err.contains("broken.json") && !err.contains("shard-1") && err.trim().lines().count() == 1,
        "{err}"
    );
}

/// `report compare BASE EDITED`, EDITED written to `dir/name` first.
fn compare_with_edited(
    dir: &Path,
    base: &Path,
    name: &str,
    edited: &Value,
) -> std::process::Output {
    let path = dir.join(name);
    std::fs::write(&path, serde_json::to_vec(edited).unwrap()).unwrap();
    run_in(
        dir,
        &[
            "report",
            "compare",
            base.to_str().unwrap(),
            path.to_str().unwrap(),
        ],
    )
}

#[test]
fn report_compare_flags_regressions_with_exit_3() {
    let server = serve(zoo::router());
    let dir = temp_dir();
    let base = dir.path().join("base");
    let run = load_into(
        dir.path(),
        &server.url("/Correct"),
        &base,
        &["--rate", "50", "--invocations", "20"],
    );
    assert_eq!(run.status.code(), Some(0), "{}", describe(&run));
    let same = run_in(
        dir.path(),
        &[
            "report",
            "compare",
            base.to_str().unwrap(),
            base.to_str().unwrap(),
        ],
    );
    assert_eq!(same.status.code(), Some(0), "{}", describe(&same));
    assert!(String::from_utf8_lossy(&same.stdout).contains("no regression"));

    // Reports of different kinds have nothing to compare: that is not "no regression".
    let mut figureless = read_report(&base);
    figureless.as_object_mut().unwrap().remove("load");
    let cmp = compare_with_edited(dir.path(), &base, "figureless.json", &figureless);
    assert_eq!(cmp.status.code(), Some(2), "{}", describe(&cmp));

    // The same run, but at half the throughput and with a newly failing check. (Percentiles are
    // read from the histograms, and 20 samples are too few to judge p99 anyway.)
    let mut worse = read_report(&base);
    let rate = worse["load"]["rate_achieved"].as_f64().unwrap();
    worse["load"]["rate_achieved"] = (rate / 2.0).into();
    for c in worse["checks"].as_array_mut().unwrap() {
        if c["id"] == "no_duplicate_record_ids" {
            c["status"] = "fail".into();
            c["violations"] = 3.into();
        }
    }
    let cmp = compare_with_edited(dir.path(), &base, "worse.json", &worse);
    assert_eq!(cmp.status.code(), Some(3), "{}", describe(&cmp));
    let text = String::from_utf8_lossy(&cmp.stdout);
    assert!(text.contains("throughput (achieved)"), "{text}");
    assert!(text.contains("too few samples"), "{text}");
    assert!(text.contains("check no_duplicate_record_ids"), "{text}");
    assert_eq!(text.matches("REGRESSION").count(), 3, "{text}");
}

#[test]
fn bad_load_input_gets_one_line_and_the_documented_exit_code() {
    let dir = temp_dir();
    for (args, says) in [
        (vec!["--stages", "30s:fast"], "--stages"),
        (vec!["--rate", "10"], "--duration"),
        (
            vec![
                "--rate",
                "10",
                "--duration",
                "1s",
                "--threshold",
                "p99<soon",
            ],
            "--threshold",
        ),
        (
            vec!["--rate", "10", "--duration", "1s", "--partition", "3/2"],
            "--partition",
        ),
        (vec!["--stages", "5s:10", "--duration", "1s"], "--stages"),
        (
            vec![
                "--firehose-ingest",
                "5MB/s",
                "--buffer-size",
                "9MB",
                "--duration",
                "1s",
            ],
            "outside Firehose",
        ),
        (
            vec!["--rate", "10", "--concurrency", "2", "--duration", "1s"],
            "cannot be used",
        ),
    ] {
        let mut all = vec!["load", "--target", "builtin:ndjson"];
        all.extend(args.iter().copied());
        let run = run_in(dir.path(), &all);
        assert_eq!(run.status.code(), Some(2), "{args:?}: {}", describe(&run));
        let stderr = String::from_utf8_lossy(&run.stderr);
        assert_eq!(stderr.trim().lines().count(), 1, "{args:?}: {stderr}");
        assert!(stderr.contains(says), "{args:?}: {stderr}");
    }
    let run = run_in(dir.path(), &["report", "merge", "nowhere/report.json"]);
    assert_eq!(run.status.code(), Some(2), "{}", describe(&run));
}

#[test]
fn an_unreachable_target_exits_4_with_a_report() {
    // A port nobody listens on: bind one, then let it go.
    let port = std::net::TcpListener::bind("127.0.0.1:0")
        .unwrap()
        .local_addr()
        .unwrap()
        .port();
    let dir = temp_dir();
    let out = dir.path().join("out");
    let run = load_into(
        dir.path(),
        &format!("http://127.0.0.1:{port}/"),
        &out,
        &["--rate", "50", "--duration", "10s"],
    );
    assert_eq!(run.status.code(), Some(4), "{}", describe(&run));
    let stderr = String::from_utf8_lossy(&run.stderr);
    assert!(stderr.contains("cannot reach"), "{stderr}");
    let report = read_report(&out);
    assert_eq!(report["exit_code"], 4);
    assert_eq!(report["stopped_early"], "unreachable");
}

#[test]
fn ctrl_c_writes_a_partial_report_and_exits_130() {
    let server = serve(zoo::router());
    let dir = temp_dir();
    let out = dir.path().join("out");
    let mut child = Command::new(bin())
        .args([
            "load",
            "--target",
            &server.url("/Correct"),
            "--rate",
            "20",
            "--duration",
            "120s",
            "--report-dir",
            out.to_str().unwrap(),
        ])
        .args(SMALL)
        .current_dir(dir.path())
        .env("NO_COLOR", "1")
        .stdout(Stdio::null())
        .stderr(Stdio::piped())
        .spawn()
        .unwrap();
    // The header line comes once the run has begun; then interrupt it as a terminal would.
    let mut stderr = BufReader::new(child.stderr.take().unwrap());
    let mut line = String::new();
    while !line.contains("firehose-harness load") {
        line.clear();
        assert!(stderr.read_line(&mut line).unwrap() > 0, "no header line");
    }
    std::thread::sleep(Duration::from_millis(500));
    std::process::Command::new("kill")
        .args(["-INT", &child.id().to_string()])
        .status()
        .unwrap();
    let status = child.wait().unwrap();
    let mut rest = String::new();
    let _ = std::io::Read::read_to_string(&mut stderr, &mut rest);
    assert_eq!(status.code(), Some(130), "{status:?}\n{line}{rest}");
    let report = read_report(&out);
    assert_eq!(report["stopped_early"], "interrupted");
    assert_eq!(report["exit_code"], 130);
    assert!(report["load"]["invocations"].as_u64().unwrap() < 2400);
}

/// Answers correctly, a second after being asked: invocations are still in flight on kept-alive
/// connections when the schedule ends.
#[test]
fn answers_in_flight_at_the_end_of_the_schedule_complete_within_the_grace() {
    let slow = Router::new().route(
        "/",
        post(|body: Bytes| async move {
            tokio::time::sleep(Duration::from_secs(1)).await;
            zoo::respond(Animal::Correct, body).await
        }),
    );
    let server = serve(slow);
    let dir = temp_dir();
    let out = dir.path().join("out");
    let report = load_ok(
        dir.path(),
        &server.url("/"),
        &out,
        &[
            "--rate",
            "20",
            "--invocations",
            "60",
            "--timeout",
            "10s",
            "--grace",
            "20s",
        ],
    );
    let load = &report["load"];
    assert_eq!(load["invocations"], 60, "{load}");
    assert_eq!(load["errors"], 0, "{load}");
    assert_eq!(load["violations"], 0, "{load}");
    assert_eq!(load["interrupted"], 0, "{load}");
}

/// A closed-model run ends at `--duration`: callers still waiting for their (slow to generate)
/// batches start nothing more. 100 gzip'd batches of ~4 MB take far longer than a second to make.
#[test]
fn the_closed_model_starts_nothing_after_its_duration() {
    let dir = temp_dir();
    let out = dir.path().join("out");
    let run = run_in(
        dir.path(),
        &[
            "load",
            "--target",
            "builtin:identity",
            "--concurrency",
            "100",
            "--max-in-flight",
            "100",
            "--duration",
            "1s",
            "--records",
            "4..4",
            "--record-size",
            "900KB..1000KB",
            "--compression",
            "gzip",
            "--report-dir",
            out.to_str().unwrap(),
        ],
    );
    assert_eq!(run.status.code(), Some(0), "{}", describe(&run));
    let load = &read_report(&out)["load"];
    assert!(
        load["invocations"].as_u64().unwrap() < 100,
        "calls were started after the duration: {load}"
    );
}

/// A rate no target can meet: the run gives up the unsent slots once sends are a grace period
/// behind (and says how many), rather than running for hours.
#[test]
fn an_open_rate_far_beyond_the_target_gives_up_the_unsent_slots_after_the_grace() {
    let dir = temp_dir();
    let out = dir.path().join("out");
    let run = run_in(
        dir.path(),
        &[
            "load",
            "--target",
            "builtin:identity",
            "--rate",
            "1e9",
            "--duration",
            "1s",
            "--grace",
            "1s",
            "--payload",
            "empty",
            "--records",
            "1..1",
            "--compression",
            "none",
            "--report-dir",
            out.to_str().unwrap(),
        ],
    );
    assert_eq!(run.status.code(), Some(0), "{}", describe(&run));
    let report = read_report(&out);
    assert_eq!(report["stopped_early"], "overrun");
    let load = &report["load"];
    let sent = load["invocations"].as_u64().unwrap() + load["interrupted"].as_u64().unwrap();
    let planned = load["planned_invocations"].as_u64().unwrap();
    assert_eq!(planned, 1_000_000_000);
    let note = report["notes"]
        .as_array()
        .unwrap()
        .iter()
        .filter_map(|n| n.as_str())
        .find(|n| n.contains("never sent"))
        .expect("a note says how many were never sent");
    let unsent: u64 = note.split_whitespace().next().unwrap().parse().unwrap();
    assert_eq!(sent + unsent, planned, "{note}");
}

/// Issue 13: an answer of millions of `{}` records costs the oracle seconds of CPU each. Judged on
/// the worker runtimes, it held up their timers: a 5 s run took 88 s. Judged off them, the run ends
/// when its schedule and grace do, and the answers still being judged then are interrupted.
#[test]
fn millions_of_empty_records_do_not_hold_the_run_past_its_duration_and_grace() {
    let mut body = Vec::with_capacity(6_000_000);
    body.extend_from_slice(b"{\"records\":[{}");
    while body.len() < 5_900_000 {
        body.extend_from_slice(b",{}");
    }
    body.extend_from_slice(b"]}");
    let body = Bytes::from(body);
    let router = Router::new().route("/", post(move || async move { body.clone() }));
    let server = serve(router);
    let dir = temp_dir();
    let out = dir.path().join("out");
    let run = load_into(
        dir.path(),
        &server.url("/"),
        &out,
        &[
            "--rate",
            "20",
            "--duration",
            "2s",
            "--grace",
            "2s",
            "--timeout",
            "5s",
        ],
    );
    assert_eq!(run.status.code(), Some(1), "{}", describe(&run));
    let report = read_report(&out);
    let load = &report["load"];
    assert!(load["violations"].as_u64().unwrap() >= 1, "{load}");
    // The acceptance bound of the issue: the run's own clock, schedule plus grace, with a little
    // room for a busy machine — the unfixed engine overran it many times over.
    let ran = report["duration_ms"].as_u64().unwrap();
    assert!(ran < 2_000 + 2_000 + 2_500, "the run took {ran} ms");
    // No invocation waited on the oracle for its timeout: service times are the target's.
    let service = load["latency"]["service_time"]["max"].as_u64().unwrap();
    assert!(service < 5_000_000, "service time max {service} µs");
}

#[test]
fn a_target_that_never_answers_stops_after_max_hangs() {
    // A transformer that sleeps past every --timeout: three timeouts in a row, one call at a time,
    // and the ten-minute run is over — exit 4, nothing answered, the report says why.
    let server = serve(zoo::router());
    let dir = temp_dir();
    let out = dir.path().join("out");
    let run = load_into(
        dir.path(),
        &server.url(&Animal::Sleeps.path()),
        &out,
        &[
            "--rate",
            "10",
            "--duration",
            "10m",
            "--timeout",
            "300ms",
            "--max-in-flight",
            "1",
            "--max-hangs",
            "3",
        ],
    );
    assert_eq!(run.status.code(), Some(4), "{}", describe(&run));
    let stderr = String::from_utf8_lossy(&run.stderr);
    assert!(stderr.contains("--timeout"), "{stderr}");
    let report = read_report(&out);
    assert_eq!(report["exit_code"], 4);
    assert_eq!(report["stopped_early"], "hanging");
    assert_eq!(report["load"]["invocations"], 3, "{}", report["load"]);
}
