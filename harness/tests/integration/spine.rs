//! Issue 2's acceptance: each broken transformer makes `check` exit 1 with the right check failing; a
//! correct one exits 0; "drops the last id" shrinks to the fewest records `--records` allows.

use crate::support::{describe, failing_checks, read_report, run_in, serve, temp_dir};
use crate::zoo::{Animal, router};

/// Small batches keep these runs quick; the generators' own tests cover sizes.
const NARROW: &[&str] = &[
    "--record-size",
    "0..4KiB",
    "--records",
    "1..40",
    "--no-boundary",
];

fn check(
    animal: Animal,
    extra: &[&str],
) -> (serde_json::Value, std::process::Output, tempfile::TempDir) {
    let server = serve(router());
    let dir = temp_dir();
    let url = server.url(&animal.path());
    let mut args = vec![
        "check",
        "--target",
        &url,
        "--cases",
        "30",
        "--seed",
        "7",
        "--report-dir",
        "R",
        "--timeout",
        "2s",
    ];
    args.extend_from_slice(extra);
    let out = run_in(dir.path(), &args);
    let report = read_report(&dir.path().join("R"));
    (report, out, dir)
}

#[test]
fn correct_transformer_passes() {
    let (report, out, _dir) = check(Animal::Correct, NARROW);
    assert_eq!(out.status.code(), Some(0), "{}", describe(&out));
    assert_eq!(report["verdict"], "pass");
    assert_eq!(report["exit_code"], 0);
}

#[test]
fn each_contract_bug_is_caught_with_its_check_id() {
    let expected = [
        (Animal::DropsLastId, "no_missing_record_ids"),
        (Animal::DuplicatesId, "no_duplicate_record_ids"),
        (Animal::InventsId, "no_unknown_record_ids"),
        (Animal::OkWrongCase, "result_is_legal"),
        (Animal::PlainTextData, "data_is_base64"),
        (Animal::OkWithoutData, "ok_has_data"),
        (Animal::NotJson, "response_is_json"),
        (Animal::NoRecordsKey, "response_shape"),
        (Animal::NumericPartitionKeys, "partition_keys_valid"),
        (Animal::FunctionErrorHeader, "invocation_succeeded"),
    ];
    let server = serve(router());
    for (animal, check_id) in expected {
        let dir = temp_dir();
        let url = server.url(&animal.path());
        let mut args = vec![
            "check",
            "--target",
            &url,
            "--cases",
            "20",
            "--seed",
            "3",
            "--report-dir",
            "R",
            "--no-shrink",
        ];
        args.extend_from_slice(NARROW);
        let out = run_in(dir.path(), &args);
        assert_eq!(out.status.code(), Some(1), "{animal:?}: {}", describe(&out));
        let report = read_report(&dir.path().join("R"));
        let failing = failing_checks(&report);
        assert!(
            failing.contains(&check_id.to_string()),
            "{animal:?}: expected {check_id} among {failing:?}"
        );
        assert_eq!(report["verdict"], "fail");
    }
}

#[test]
fn drops_last_id_shrinks_to_the_fewest_records_allowed() {
    let (report, out, dir) = check(
        Animal::DropsLastId,
        &[
            "--records",
            "5..300",
            "--record-size",
            "0..8KiB",
            "--no-boundary",
        ],
    );
    assert_eq!(out.status.code(), Some(1), "{}", describe(&out));
    let failure = &report["failures"][0];
    assert_eq!(failure["check"], "no_missing_record_ids");
    assert!(
        failure["shrink"]["from_records"].as_u64().unwrap() >= 5,
        "{failure}"
    );
    // Shrinking stays inside the flags: `--records 5..300` keeps five records (issue 9).
    assert_eq!(failure["shrink"]["to_records"], 5, "{failure}");
    assert_eq!(failure["flaky"], false);
    // The case folder reproduces the minimal batch on its own.
    let case = dir
        .path()
        .join("R/cases")
        .join(failure["case"].as_str().unwrap());
    let event: serde_json::Value =
        serde_json::from_slice(&std::fs::read(case.join("event.json")).unwrap()).unwrap();
    assert_eq!(event["records"].as_array().unwrap().len(), 5);
    let response: serde_json::Value =
        serde_json::from_slice(&std::fs::read(case.join("response.body")).unwrap()).unwrap();
    assert_eq!(response["records"].as_array().unwrap().len(), 4);
    let meta: serde_json::Value =
        serde_json::from_slice(&std::fs::read(case.join("case.json")).unwrap()).unwrap();
    assert_eq!(meta["seed"], "7");
    assert!(meta["generator_version"].is_string());
    let script = std::fs::read_to_string(case.join("reproduce.sh")).unwrap();
    assert!(
        script.contains("curl") && script.contains("@event.json"),
        "{script}"
    );
    // The terminal shows the minimal batch and the reproducer.
    let stdout = String::from_utf8_lossy(&out.stdout);
    assert!(stdout.contains("minimal batch: 5 records"), "{stdout}");
    assert!(stdout.contains("reproduce.sh"), "{stdout}");
}

#[test]
fn failures_are_grouped_not_repeated() {
    let (report, out, _dir) = check(Animal::OkWrongCase, NARROW);
    assert_eq!(out.status.code(), Some(1));
    let failures = report["failures"].as_array().unwrap();
    assert_eq!(failures.len(), 1, "{failures:?}");
    assert!(failures[0]["cases"].as_u64().unwrap() >= 30);
    assert!(failures[0]["count"].as_u64().unwrap() >= failures[0]["cases"].as_u64().unwrap());
}

#[test]
fn regressions_are_saved_and_replayed_first() {
    let server = serve(router());
    let dir = temp_dir();
    let bad = server.url(&Animal::DropsLastId.path());
    let args = |url: &str| {
        let mut a: Vec<String> = [
            "check",
            "--target",
            url,
            "--cases",
            "5",
            "--seed",
            "1",
            "--report-dir",
            "R",
        ]
        .iter()
        .map(|s| s.to_string())
        .collect();
        a.extend(NARROW.iter().map(|s| s.to_string()));
        a
    };
    fn as_str(v: &[String]) -> Vec<&str> {
        v.iter().map(String::as_str).collect()
    }
    let out = run_in(dir.path(), &as_str(&args(&bad)));
    assert_eq!(out.status.code(), Some(1));
    let saved = std::fs::read_dir(dir.path().join(".firehose-harness/regressions"))
        .unwrap()
        .count();
    assert_eq!(saved, 1);
    // The fix: the regression is replayed first and passes.
    let good = server.url(&Animal::Correct.path());
    let out = run_in(dir.path(), &as_str(&args(&good)));
    assert_eq!(out.status.code(), Some(0), "{}", describe(&out));
    let report = read_report(&dir.path().join("R"));
    let phases = report["phases"].as_array().unwrap();
    assert_eq!(phases[0]["phase"], "regression");
    assert_eq!(phases[0]["run"], 1);
}

#[test]
fn replay_says_fixed_failed_or_flaky() {
    let server = serve(router());
    let dir = temp_dir();
    let bad = server.url(&Animal::DuplicatesId.path());
    let out = run_in(
        dir.path(),
        &[
            "check",
            "--target",
            &bad,
            "--cases",
            "3",
            "--seed",
            "1",
            "--report-dir",
            "R",
            "--no-regressions",
            "--records",
            "1..5",
            "--record-size",
            "0..100",
            "--no-boundary",
        ],
    );
    assert_eq!(out.status.code(), Some(1), "{}", describe(&out));
    let report = read_report(&dir.path().join("R"));
    let case = format!(
        "R/cases/{}",
        report["failures"][0]["case"].as_str().unwrap()
    );
    let out = run_in(dir.path(), &["replay", &case, "--target", &bad]);
    assert_eq!(out.status.code(), Some(1));
    assert!(
        String::from_utf8_lossy(&out.stdout).starts_with("FAILED"),
        "{}",
        describe(&out)
    );
    let good = server.url(&Animal::Correct.path());
    let out = run_in(dir.path(), &["replay", &case, "--target", &good]);
    assert_eq!(out.status.code(), Some(0), "{}", describe(&out));
    assert!(String::from_utf8_lossy(&out.stdout).starts_with("FIXED"));
}
