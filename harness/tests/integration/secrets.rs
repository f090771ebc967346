//! No output carries a credential: not the userinfo of a target URL, not a `--header` value, not a
//! secret in the harness's environment — in any report file, case folder, regression, the step
//! summary, stdout or stderr (issue "Survive the worst transformer", point 4).
//!
//! The secrets are planted, real runs write every output there is (a failing `check` writes a case
//! folder and a regression; `load` and an unreachable target write theirs), and then every byte
//! is searched.

use std::path::{Path, PathBuf};
use std::process::{Command, Output};

use base64::Engine as _;

use super::support::{bin, describe, serve, temp_dir};
use super::zoo::{Animal, router};

const URL_USER: &str = "alice";
const URL_PASSWORD: &str = "hunter2-url-secret";
const API_KEY: &str = "hdr-secret-value-42";
/// A header whose name does not look secret: it is redacted all the same.
const TENANT: &str = "tenant-secret-7";
const ENV_AWS: &str = "env-secret-aws-99";
const ENV_PASSWORD: &str = "env-secret-pw-55";

fn secrets() -> Vec<String> {
    let userinfo = format!("{URL_USER}:{URL_PASSWORD}");
    vec![
        URL_PASSWORD.to_string(),
        userinfo.clone(),
        // What a Basic authorisation header would carry.
        base64::engine::general_purpose::STANDARD.encode(&userinfo),
        API_KEY.to_string(),
        TENANT.to_string(),
        ENV_AWS.to_string(),
        ENV_PASSWORD.to_string(),
    ]
}

/// Run the harness in `cwd` with the secrets in its environment and `$GITHUB_STEP_SUMMARY` set.
fn run(cwd: &Path, args: &[&str]) -> Output {
    Command::new(bin())
        .args(args)
        .current_dir(cwd)
        .env("NO_COLOR", "1")
        .env("AWS_SECRET_ACCESS_KEY", ENV_AWS)
        .env("MY_SERVICE_PASSWORD", ENV_PASSWORD)
        .env("GITHUB_STEP_SUMMARY", cwd.join("step-summary.md"))
        .output()
        .expect("run firehose-harness")
}

fn files_under(dir: &Path, out: &mut Vec<PathBuf>) {
    for entry in std::fs::read_dir(dir).unwrap().flatten() {
        let p = entry.path();
        if p.is_dir() {
            files_under(&p, out);
        } else {
            out.push(p);
        }
    }
}

/// Every place a secret was found: `(where, which)`.
fn leaks(cwd: &Path, outputs: &[(&str, &Output)]) -> Vec<String> {
    let mut found = Vec::new();
    let mut search = |name: String, bytes: &[u8]| {
        for s in secrets() {
            if bytes
                .windows(s.len())
                .any(|w| w.eq_ignore_ascii_case(s.as_bytes()))
            {
                found.push(format!("{s} in {name}"));
            }
        }
    };
    let mut files = Vec::new();
    files_under(cwd, &mut files);
    for f in &files {
        search(f.display().to_string(), &std::fs::read(f).unwrap());
    }
    for (what, out) in outputs {
        search(format!("{what} stdout"), &out.stdout);
        search(format!("{what} stderr"), &out.stderr);
    }
    found
}

#[test]
fn credentials_in_the_url_headers_and_environment_reach_no_output() {
    let server = serve(router());
    let with_userinfo = format!(
        "http://{URL_USER}:{URL_PASSWORD}@{}{}",
        server.addr,
        Animal::DropsLastId.path()
    );
    let api_key = format!("X-Api-Key: {API_KEY}");
    let tenant = format!("X-Tenant: {TENANT}");
    let dir = temp_dir();
    let cwd = dir.path();
    let target_flags = [
        "--target",
        with_userinfo.as_str(),
        "--header",
        api_key.as_str(),
        "--header",
        tenant.as_str(),
    ];
    let mut check = vec![
        "check",
        "--cases",
        "10",
        "--seed",
        "7",
        "--report-dir",
        "check",
    ];
    check.extend(target_flags);
    let checked = run(cwd, &check);
    assert_eq!(checked.status.code(), Some(1), "{}", describe(&checked));

    let mut load = vec![
        "load",
        "--concurrency",
        "1",
        "--invocations",
        "10",
        "--seed",
        "7",
        "--report-dir",
        "load",
    ];
    load.extend(target_flags);
    let loaded = run(cwd, &load);
    assert!(
        matches!(loaded.status.code(), Some(1 | 3)),
        "{}",
        describe(&loaded)
    );

    // Nothing listens on port 1: the error names the target, without its credentials.
    let unreachable = format!("http://{URL_USER}:{URL_PASSWORD}@127.0.0.1:1/");
    let refused = run(
        cwd,
        &[
            "check",
            "--target",
            &unreachable,
            "--header",
            &api_key,
            "--report-dir",
            "unreachable",
            "--no-regressions",
        ],
    );
    assert_eq!(refused.status.code(), Some(4), "{}", describe(&refused));

    // The runs wrote what they should have, so the search below searched something.
    let case = std::fs::read_dir(cwd.join("check/cases"))
        .expect("a case folder")
        .flatten()
        .next()
        .expect("a case")
        .path();
    for file in ["case.json", "reproduce.sh", "event.json"] {
        assert!(case.join(file).is_file(), "{file} in {}", case.display());
    }
    assert!(cwd.join(".firehose-harness/regressions").is_dir());
    assert!(cwd.join("step-summary.md").is_file());
    let report = std::fs::read_to_string(cwd.join("check/report.json")).unwrap();
    assert!(report.contains("http://***@127.0.0.1:"), "{report}");

    let found = leaks(
        cwd,
        &[
            ("check", &checked),
            ("load", &loaded),
            ("unreachable", &refused),
        ],
    );
    assert!(found.is_empty(), "secrets leaked:\n{}", found.join("\n"));

    // reproduce.sh reads the credentials from the environment and still sends the case.
    let script = std::fs::read_to_string(case.join("reproduce.sh")).unwrap();
    for var in [
        "FIREHOSE_TARGET_USERINFO",
        "HEADER_X_API_KEY",
        "HEADER_X_TENANT",
    ] {
        assert!(script.contains(var), "{var} not read:\n{script}");
    }
    let replayed = Command::new("sh")
        .arg(case.join("reproduce.sh"))
        .env(
            "FIREHOSE_TARGET_USERINFO",
            format!("{URL_USER}:{URL_PASSWORD}"),
        )
        .env("HEADER_X_API_KEY", API_KEY)
        .env("HEADER_X_TENANT", TENANT)
        .output()
        .expect("sh runs");
    assert!(replayed.status.success(), "{}", describe(&replayed));
    let answer: serde_json::Value = serde_json::from_slice(&replayed.stdout)
        .unwrap_or_else(|e| panic!("{e}: {}", describe(&replayed)));
    assert!(answer["records"].is_array(), "{answer}");
    // Without a variable it refuses to run rather than send no credentials.
    let bare = Command::new("sh")
        .arg(case.join("reproduce.sh"))
        .env("HEADER_X_API_KEY", API_KEY)
        .env("HEADER_X_TENANT", TENANT)
        .env_remove("FIREHOSE_TARGET_USERINFO")
        .output()
        .expect("sh runs");
    assert!(!bare.status.success(), "{}", describe(&bare));
    assert!(
        String::from_utf8_lossy(&bare.stderr).contains("FIREHOSE_TARGET_USERINFO"),
        "{}",
        describe(&bare)
    );
}
