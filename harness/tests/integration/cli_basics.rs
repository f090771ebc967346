//! Usage errors, unreachable targets, determinism of generation, offline validation.

use crate::support::{describe, failing_checks, fixtures, read_report, run_in, temp_dir};

#[test]
fn unknown_target_scheme_is_a_one_line_usage_error() {
    let dir = temp_dir();
    let out = run_in(dir.path(), &["check", "--target", "nonsense:x"]);
    assert_eq!(out.status.code(), Some(2), "{}", describe(&out));
    let err = String::from_utf8_lossy(&out.stderr);
    assert_eq!(err.trim().lines().count(), 1, "{err}");
    assert!(
        err.contains("nonsense:x") && err.contains("known schemes"),
        "{err}"
    );
}

#[test]
fn bad_flags_and_values_exit_2_with_one_line() {
    let dir = temp_dir();
    for args in [
        &["check", "--target", "builtin:ndjson", "--bogus"][..],
        &["check", "--target", "builtin:ndjson", "--timeout", "5"],
        &[
            "check",
            "--target",
            "builtin:ndjson",
            "--record-size",
            "2MB",
        ],
        &["check", "--target", "builtin:ndjson", "--source", "sqs"],
        &[
            "check",
            "--target",
            "builtin:ndjson",
            "--checks",
            "+no_such_check",
        ],
        &[
            "check",
            "--target",
            "builtin:ndjson",
            "--buffer-size",
            "10MB",
        ],
        &["check", "--target", "builtin:ndjson", "--records", "9..3"],
        &[
            "check",
            "--target",
            "http://127.0.0.1:1/",
            "--header",
            "no colon",
        ],
        &["check"],
    ] {
        let out = run_in(dir.path(), args);
        assert_eq!(out.status.code(), Some(2), "{args:?}: {}", describe(&out));
        let err = String::from_utf8_lossy(&out.stderr);
        assert_eq!(err.trim().lines().count(), 1, "{args:?}: {err}");
    }
}

#[test]
fn a_missing_argument_is_named_in_the_one_line() {
    let dir = temp_dir();
    let out = run_in(dir.path(), &["validate", "--response", "r.json"]);
    assert_eq!(out.status.code(), Some(2), "{}", describe(&out));
    let err = String::from_utf8_lossy(&out.stderr);
    assert_eq!(err.trim().lines().count(), 1, "{err}");
    assert!(err.contains("--event <FILE>"), "{err}");
}

#[test]
fn unreachable_target_exits_4_and_still_writes_a_report() {
    let dir = temp_dir();
    let out = run_in(
        dir.path(),
        &[
            "check",
            "--target",
            "http://127.0.0.1:1/",
            "--report-dir",
            "R",
        ],
    );
    assert_eq!(out.status.code(), Some(4), "{}", describe(&out));
    let err = String::from_utf8_lossy(&out.stderr);
    assert!(err.contains("cannot reach"), "{err}");
    let report = read_report(&dir.path().join("R"));
    assert_eq!(report["exit_code"], 4);
    assert_eq!(report["verdict"], "fail");
}

#[test]
fn same_seed_gives_byte_identical_events() {
    let dir = temp_dir();
    let a = run_in(
        dir.path(),
        &[
            "generate", "--count", "25", "--seed", "3", "--source", "all",
        ],
    );
    let b = run_in(
        dir.path(),
        &[
            "generate", "--count", "25", "--seed", "3", "--source", "all",
        ],
    );
    assert_eq!(a.status.code(), Some(0), "{}", describe(&a));
    assert!(a.stdout.len() > 1000);
    assert_eq!(a.stdout, b.stdout);
    let c = run_in(
        dir.path(),
        &[
            "generate", "--count", "25", "--seed", "4", "--source", "all",
        ],
    );
    assert_ne!(a.stdout, c.stdout);
    let lines: Vec<_> = a
        .stdout
        .split(|b| *b == b'\n')
        .filter(|l| !l.is_empty())
        .collect();
    assert_eq!(lines.len(), 25);
    for line in lines {
        let v: serde_json::Value = serde_json::from_slice(line).unwrap();
        assert!(v["records"].is_array());
    }
}

#[test]
fn builtin_ndjson_passes_and_writes_all_report_files() {
    let dir = temp_dir();
    let out = run_in(
        dir.path(),
        &[
            "check",
            "--target",
            "builtin:ndjson",
            "--cases",
            "20",
            "--seed",
            "1",
            "--report-dir",
            "R",
            "--source",
            "all",
        ],
    );
    assert_eq!(out.status.code(), Some(0), "{}", describe(&out));
    let report = read_report(&dir.path().join("R"));
    assert_eq!(report["verdict"], "pass");
    assert_eq!(report["schema_version"], 2);
    assert_eq!(report["seed"], "1");
    assert!(report["latency"]["p99"].as_u64().unwrap() > 0);
    let junit = std::fs::read_to_string(dir.path().join("R/junit.xml")).unwrap();
    assert!(junit.contains("no_missing_record_ids"));
    assert!(dir.path().join("R/summary.md").exists());
    assert!(
        std::fs::read_to_string(dir.path().join("R/report.html"))
            .unwrap()
            .contains("<svg")
    );
    // The seed is always printed.
    assert!(String::from_utf8_lossy(&out.stderr).contains("seed 1"));
}

#[test]
fn validate_flags_invalid_result_strings_in_real_fixtures() {
    let dir = temp_dir();
    let fx = fixtures();
    for (event, response) in [
        (
            "rust-aws_lambda_events/example-firehose-event.json",
            "rust-aws_lambda_events/example-kinesis-firehose-response.json",
        ),
        (
            "rust-aws_lambda_events/example-firehose-event.json",
            "go-aws-lambda-go/kinesis-firehose-response.json",
        ),
    ] {
        let out = run_in(
            dir.path(),
            &[
                "validate",
                "--event",
                fx.join(event).to_str().unwrap(),
                "--response",
                fx.join(response).to_str().unwrap(),
                "--report-dir",
                "R",
            ],
        );
        assert_eq!(out.status.code(), Some(1), "{}", describe(&out));
        let stdout = String::from_utf8_lossy(&out.stdout);
        assert!(stdout.contains("\"TRANSFORMED_STATE_OK\""), "{stdout}");
        let report = read_report(&dir.path().join("R"));
        assert!(failing_checks(&report).contains(&"result_is_legal".to_string()));
    }
    // A correct MSK response against its event passes.
    let out = run_in(
        dir.path(),
        &[
            "validate",
            "--event",
            fx.join("java-aws-lambda-java-libs/msk_firehose_event.json")
                .to_str()
                .unwrap(),
            "--response",
            fx.join("java-aws-lambda-java-libs/msk_firehose_response.json")
                .to_str()
                .unwrap(),
        ],
    );
    // The fixture answers a recordId the event does not have: the oracle must say so.
    assert_eq!(out.status.code(), Some(1), "{}", describe(&out));
    assert!(String::from_utf8_lossy(&out.stdout).contains("no_unknown_record_ids"));
}

#[test]
fn every_fixture_event_checks_against_builtin_ndjson() {
    let dir = temp_dir();
    let out = run_in(
        dir.path(),
        &[
            "check",
            "--target",
            "builtin:ndjson",
            "--cases",
            "0",
            "--no-boundary",
            "--corpus",
            fixtures().to_str().unwrap(),
            "--report-dir",
            "R",
        ],
    );
    assert_eq!(out.status.code(), Some(0), "{}", describe(&out));
    let report = read_report(&dir.path().join("R"));
    let corpus = report["phases"]
        .as_array()
        .unwrap()
        .iter()
        .find(|p| p["phase"] == "corpus")
        .unwrap();
    assert!(corpus["run"].as_u64().unwrap() >= 15, "{corpus}");
    assert!(
        report["notes"]
            .as_array()
            .unwrap()
            .iter()
            .any(|n| n.as_str().unwrap().contains("normalised"))
    );
}

#[test]
fn corpus_events_are_mutated_and_shrunk_by_dropping_records() {
    use crate::support::serve;
    use crate::zoo::{Animal, router};
    let dir = temp_dir();
    // The reference transformer handles every real sample and its mutations.
    let out = run_in(
        dir.path(),
        &[
            "check",
            "--target",
            "builtin:ndjson",
            "--cases",
            "24",
            "--seed",
            "5",
            "--no-boundary",
            "--corpus",
            fixtures().to_str().unwrap(),
            "--report-dir",
            "R",
            "--record-size",
            "0..2KiB",
        ],
    );
    assert_eq!(out.status.code(), Some(0), "{}", describe(&out));
    // A transformer that drops the last id: the corpus phase catches it, and the real event (no spec
    // describes it) shrinks to a single record.
    let server = serve(router());
    let url = server.url(&Animal::DropsLastId.path());
    let out = run_in(
        dir.path(),
        &[
            "check",
            "--target",
            &url,
            "--cases",
            "0",
            "--no-boundary",
            "--no-regressions",
            "--corpus",
            fixtures().to_str().unwrap(),
            "--report-dir",
            "R2",
        ],
    );
    assert_eq!(out.status.code(), Some(1), "{}", describe(&out));
    let report = read_report(&dir.path().join("R2"));
    let f = &report["failures"][0];
    assert_eq!(f["phase"], "corpus");
    assert_eq!(f["shrink"]["to_records"], 1, "{f}");
    assert!(
        f["minimal_batch"]
            .as_str()
            .unwrap()
            .contains("corpus event"),
        "{f}"
    );
}

#[test]
fn scenario_files_run_like_the_command_line() {
    let dir = temp_dir();
    std::fs::write(
        dir.path().join("s.toml"),
        "command = \"check\"\ntarget = \"builtin:ndjson\"\ncases = 5\nseed = 2\nreport-dir = \"R\"\n[generators]\nsource = \"kinesis\"\n",
    )
    .unwrap();
    let out = run_in(dir.path(), &["run", "s.toml"]);
    assert_eq!(out.status.code(), Some(0), "{}", describe(&out));
    assert_eq!(read_report(&dir.path().join("R"))["seed"], "2");
    std::fs::write(
        dir.path().join("bad.toml"),
        "command = \"check\"\ntarget = \"builtin:ndjson\"\ncasez = 5\n",
    )
    .unwrap();
    let out = run_in(dir.path(), &["run", "bad.toml"]);
    assert_eq!(out.status.code(), Some(2), "{}", describe(&out));
    let err = String::from_utf8_lossy(&out.stderr);
    assert!(
        err.contains("casez") && err.trim().lines().count() == 1,
        "{err}"
    );
    for (text, says) in [
        ("command = \"check\"\n", "--target <TARGET>"),
        ("command = \"report\"\n", "not a complete command"),
    ] {
        std::fs::write(dir.path().join("incomplete.toml"), text).unwrap();
        let out = run_in(dir.path(), &["run", "incomplete.toml"]);
        assert_eq!(out.status.code(), Some(2), "{}", describe(&out));
        let err = String::from_utf8_lossy(&out.stderr);
        assert!(
            err.contains(says) && err.trim().lines().count() == 1,
            "{err}"
        );
    }
}
