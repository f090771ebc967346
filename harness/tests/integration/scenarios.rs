//! Scenario files: every shipped one runs, flags after the file replace its keys, and a misspelt
//! key fails with exit 2 naming the line and the key.

use axum::Router;
use axum::routing::post;

use crate::support::{describe, read_report, run_in, serve, temp_dir};

fn scenarios() -> std::path::PathBuf {
    std::path::Path::new(env!("CARGO_MANIFEST_DIR")).join("../scenarios")
}

/// An `Ok`-for-everything transformer with newline-terminated data, over real HTTP.
async fn pass_through(body: axum::body::Bytes) -> axum::Json<serde_json::Value> {
    let event: serde_json::Value = serde_json::from_slice(&body).unwrap_or_default();
    let records: Vec<serde_json::Value> = event["records"]
        .as_array()
        .map(Vec::as_slice)
        .unwrap_or_default()
        .iter()
        .map(|r| serde_json::json!({"recordId": r["recordId"], "result": "Ok", "data": "e30K"}))
        .collect();
    axum::Json(serde_json::json!({ "records": records }))
}

#[test]
fn ci_gate_runs_against_the_target_given_on_the_command_line() {
    // The boundary phase sends a batch near Lambda's 6 MB request limit.
    let server = serve(
        Router::new()
            .route("/", post(pass_through))
            .layer(axum::extract::DefaultBodyLimit::max(8 << 20)),
    );
    let dir = temp_dir();
    let url = server.url("/");
    let gate = scenarios().join("ci-gate.toml");
    // --cases and the generator flags only keep the test small; the target is the point.
    let out = run_in(
        dir.path(),
        &[
            "run",
            gate.to_str().unwrap(),
            "--target",
            &url,
            "--cases",
            "3",
            "--records",
            "1..20",
            "--record-size",
            "0..4KiB",
        ],
    );
    assert_eq!(out.status.code(), Some(0), "{}", describe(&out));
    // report-dir comes from the scenario; the target from the command line.
    let report = read_report(&dir.path().join("firehose-report"));
    assert_eq!(report["target"], url.as_str());
    assert_eq!(report["verdict"], "pass");
}

#[test]
fn every_shipped_scenario_runs() {
    let mut ran = Vec::new();
    let mut paths: Vec<_> = std::fs::read_dir(scenarios())
        .unwrap()
        .map(|e| e.unwrap().path())
        .filter(|p| p.extension().is_some_and(|e| e == "toml"))
        .collect();
    paths.sort();
    for path in paths {
        let text = std::fs::read_to_string(&path).unwrap();
        let dir = temp_dir();
        let mut args = vec!["run", path.to_str().unwrap()];
        // Shortened, not changed: fewer cases, a 2-second load, smaller records.
        if text.contains("command = \"load\"") {
            args.extend([
                "--duration",
                "2s",
                "--firehose-ingest",
                "400KB/s",
                "--buffer-size",
                "0.2MB",
            ]);
        } else {
            args.extend([
                "--cases",
                "3",
                "--record-size",
                "0..16KiB",
                "--records",
                "1..50",
            ]);
        }
        let out = run_in(dir.path(), &args);
        assert_eq!(
            out.status.code(),
            Some(0),
            "{}: {}",
            path.display(),
            describe(&out)
        );
        let report_dir = std::fs::read_dir(dir.path())
            .unwrap()
            .map(|e| e.unwrap().path())
            .find(|p| p.join("report.json").exists())
            .unwrap_or_else(|| panic!("{}: no report written", path.display()));
        let report = read_report(&report_dir);
        assert_eq!(report["verdict"], "pass", "{}", path.display());
        ran.push(report["command"].as_str().unwrap().to_string());
    }
    assert!(ran.len() >= 4, "{ran:?}");
    assert!(ran.contains(&"load".to_string()), "{ran:?}");
}

#[test]
fn a_misspelt_key_fails_naming_line_and_key() {
    let dir = temp_dir();
    std::fs::write(
        dir.path().join("s.toml"),
        "command = \"check\"\ntarget = \"builtin:ndjson\"\n# a comment\ncasez = 3\n",
    )
    .unwrap();
    let out = run_in(dir.path(), &["run", "s.toml"]);
    assert_eq!(out.status.code(), Some(2), "{}", describe(&out));
    let err = String::from_utf8_lossy(&out.stderr);
    assert_eq!(err.lines().count(), 1, "{err}");
    assert!(err.contains("s.toml:4: key `casez`"), "{err}");
}

#[test]
fn variables_come_from_the_environment() {
    let dir = temp_dir();
    std::fs::write(
        dir.path().join("s.toml"),
        "command = \"check\"\ntarget = \"${SCENARIO_TEST_TARGET}\"\ncases = \"${SCENARIO_TEST_CASES:-1}\"\nno-boundary = true\nrecord-size = \"0..1KiB\"\nreport-dir = \"R\"\n",
    )
    .unwrap();
    let out = run_in(dir.path(), &["run", "s.toml"]);
    assert_eq!(out.status.code(), Some(2), "{}", describe(&out));
    let err = String::from_utf8_lossy(&out.stderr);
    assert!(
        err.contains("s.toml:2: key `target`")
            && err.contains("${SCENARIO_TEST_TARGET} is not set"),
        "{err}"
    );
    let out = std::process::Command::new(crate::support::bin())
        .args(["run", "s.toml"])
        .current_dir(dir.path())
        .env("SCENARIO_TEST_TARGET", "builtin:identity")
        .output()
        .unwrap();
    assert_eq!(out.status.code(), Some(0), "{}", describe(&out));
    let report = read_report(&dir.path().join("R"));
    assert_eq!(report["target"], "builtin:identity");
    assert_eq!(report["phases"][0]["run"], 1, "{}", report["phases"]);
}
