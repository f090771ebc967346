//! Issue 3's acceptance: with default generator settings over every source, `check` finds bugs that
//! only particular inputs trigger, each with the right check id — and names the input dimension.

use crate::support::{describe, failing_checks, read_report, run_in, serve, temp_dir};
use crate::zoo::{Animal, router};

/// `check --source all --cases 100` with default generators against one animal.
fn default_run(
    server: &crate::support::Server,
    animal: Animal,
) -> (std::process::Output, serde_json::Value) {
    let dir = temp_dir();
    let url = server.url(&animal.path());
    let out = run_in(
        dir.path(),
        &[
            "check",
            "--target",
            &url,
            "--source",
            "all",
            "--cases",
            "100",
            "--seed",
            "11",
            "--report-dir",
            "R",
            "--timeout",
            "20s",
            "--shrink-time",
            "20s",
        ],
    );
    let report = read_report(&dir.path().join("R"));
    (out, report)
}

fn dependencies(report: &serde_json::Value, check: &str) -> Vec<String> {
    report["failures"]
        .as_array()
        .unwrap()
        .iter()
        .filter(|f| f["check"] == check)
        .flat_map(|f| f["depends_on"].as_array().unwrap().iter())
        .map(|d| d["dimension"].as_str().unwrap().to_string())
        .collect()
}

/// `animal` is caught by default settings with `check` failing, and the report names `dimension`.
fn caught(animal: Animal, check: &str, dimension: Option<&str>) {
    let server = serve(router());
    let (out, report) = default_run(&server, animal);
    assert_eq!(out.status.code(), Some(1), "{animal:?}: {}", describe(&out));
    let failing = failing_checks(&report);
    assert!(
        failing.contains(&check.to_string()),
        "{animal:?}: expected {check}, got {failing:?}"
    );
    if let Some(dimension) = dimension {
        let deps = dependencies(&report, check);
        assert!(
            deps.contains(&dimension.to_string()),
            "{animal:?}: expected {dimension}, got {deps:?}"
        );
    }
}

#[test]
fn records_over_64kib() {
    caught(
        Animal::FailsOver64KiB,
        "invocation_succeeded",
        Some("record size"),
    );
}

#[test]
fn gzip_data() {
    caught(
        Animal::FailsOnGzip,
        "invocation_succeeded",
        Some("compression"),
    );
}

#[test]
fn non_ascii_text() {
    caught(
        Animal::FailsOnNonAscii,
        "response_is_json",
        Some("payload family"),
    );
}

#[test]
fn msk_events_answered_with_data() {
    caught(Animal::MskAnswersData, "ok_has_data", Some("source"));
}

#[test]
fn long_record_ids_dropped() {
    caught(
        Animal::DropsLongIds,
        "no_missing_record_ids",
        Some("record ids"),
    );
}

#[test]
fn single_record_batches_answered_empty() {
    caught(Animal::SingleRecordEmpty, "no_missing_record_ids", None);
}

#[test]
fn large_batches_inflated_past_6mb() {
    caught(
        Animal::Inflates4x,
        "response_within_limit",
        Some("batch size"),
    );
}

#[test]
fn a_correct_transformer_passes_default_settings() {
    let server = serve(router());
    let (out, report) = default_run(&server, Animal::Correct);
    assert_eq!(out.status.code(), Some(0), "{}", describe(&out));
    assert_eq!(report["verdict"], "pass");
    // The boundary phase ran for every source and is reported apart.
    let boundary = report["phases"]
        .as_array()
        .unwrap()
        .iter()
        .find(|p| p["phase"] == "boundary")
        .unwrap();
    assert!(boundary["run"].as_u64().unwrap() >= 12, "{boundary}");
}

#[test]
fn over_64kib_shrinks_to_one_record_within_a_kib_of_the_threshold() {
    let server = serve(router());
    let (out, report) = default_run(&server, Animal::FailsOver64KiB);
    assert_eq!(out.status.code(), Some(1), "{}", describe(&out));
    let f = report["failures"]
        .as_array()
        .unwrap()
        .iter()
        .find(|f| f["check"] == "invocation_succeeded")
        .unwrap();
    assert_eq!(f["shrink"]["to_records"], 1, "{f}");
    let minimal = f["minimal_batch"].as_str().unwrap();
    // "1 record from …: text, 65,537 bytes"
    let bytes: u64 = minimal
        .rsplit(", ")
        .find_map(|part| part.strip_suffix(" bytes")?.parse().ok())
        .unwrap_or_else(|| panic!("{minimal}"));
    assert!((65_537..=65_536 + 1024).contains(&bytes), "{minimal}");
    assert!(
        !minimal.contains("gzip") && !minimal.contains("zlib"),
        "{minimal}"
    );
}

#[test]
fn gzip_only_bug_shrinks_to_one_small_gzip_record() {
    let server = serve(router());
    let (out, report) = default_run(&server, Animal::FailsOnGzip);
    assert_eq!(out.status.code(), Some(1), "{}", describe(&out));
    let f = report["failures"]
        .as_array()
        .unwrap()
        .iter()
        .find(|f| f["check"] == "invocation_succeeded")
        .unwrap();
    assert_eq!(f["shrink"]["to_records"], 1, "{f}");
    let minimal = f["minimal_batch"].as_str().unwrap();
    assert!(minimal.contains("gzip"), "{minimal}");
    assert!(f["shrink"]["to_bytes"].as_u64().unwrap() < 2000, "{f}");
    let deps = dependencies(&report, "invocation_succeeded");
    assert!(deps.contains(&"compression".to_string()), "{deps:?}");
}
