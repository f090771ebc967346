//! The CI templates users copy: they lint clean, the GitHub workflow really carries its regressions
//! from one run to the next, and the Kubernetes script stops as soon as a shard fails.
//!
//! The workflow test runs the workflow's own steps, read from `ci/github-actions.yml`: its shell
//! steps under bash as GitHub runs them (`bash --noprofile --norc -eo pipefail`), `actions/cache`
//! restore and save against a cache folder that behaves as GitHub's does (immutable keys, restore
//! by exact key and then by prefix, newest first), each run in a fresh workspace.

use std::collections::BTreeMap;
use std::path::{Path, PathBuf};
use std::process::Command;

use axum::Router;
use axum::routing::post;
use serde_json::{Value, json};

use crate::runtimes::ci_tools;
use crate::support::{bin, describe, read_report, serve, temp_dir};

fn ci() -> PathBuf {
    Path::new(env!("CARGO_MANIFEST_DIR")).join("../ci")
}

/// A YAML file as JSON, read by PyYAML (the reading GitHub's and GitLab's YAML 1.1 needs).
fn yaml(path: &Path) -> Value {
    let out = Command::new(ci_tools().join("python"))
        .args([
            "-c",
            "import json, sys, yaml; json.dump(yaml.safe_load(open(sys.argv[1])), sys.stdout)",
        ])
        .arg(path)
        .output()
        .expect("run python");
    assert!(
        out.status.success(),
        "{}",
        String::from_utf8_lossy(&out.stderr)
    );
    serde_json::from_slice(&out.stdout).expect("JSON from PyYAML")
}

#[test]
fn the_github_workflow_passes_actionlint() {
    let out = Command::new(ci_tools().join("actionlint"))
        .arg("-no-color")
        .arg(ci().join("github-actions.yml"))
        .output()
        .expect("run actionlint");
    assert!(
        out.status.success(),
        "actionlint:\n{}{}",
        String::from_utf8_lossy(&out.stdout),
        String::from_utf8_lossy(&out.stderr)
    );
}

/// A transformer with one bug: a batch holding an empty record comes back without any records.
async fn loses_empty_batches(body: axum::body::Bytes) -> axum::Json<Value> {
    let event: Value = serde_json::from_slice(&body).unwrap_or_default();
    let records = event["records"].as_array().cloned().unwrap_or_default();
    if records.iter().any(|r| r["data"] == "") {
        return axum::Json(json!({"records": []}));
    }
    let answers: Vec<Value> = records
        .iter()
        .map(|r| json!({"recordId": r["recordId"], "result": "Ok", "data": r["data"]}))
        .collect();
    axum::Json(json!({ "records": answers }))
}

/// GitHub's cache, as a folder: entries in creation order, keys immutable.
struct Cache {
    dir: PathBuf,
}

impl Cache {
    fn entries(&self) -> Vec<(String, PathBuf)> {
        let mut dirs: Vec<PathBuf> = std::fs::read_dir(&self.dir)
            .map(|d| d.map(|e| e.unwrap().path()).collect())
            .unwrap_or_default();
        dirs.sort();
        dirs.into_iter()
            .map(|d| {
                (
                    std::fs::read_to_string(d.join("key")).unwrap(),
                    d.join("data"),
                )
            })
            .collect()
    }

    /// `actions/cache/restore`: the exact key, else the newest entry starting with a restore key.
    fn restore(&self, with: &Value, path: &Path) -> Option<String> {
        let key = with["key"].as_str().unwrap();
        let entries = self.entries();
        let prefixes: Vec<&str> = with["restore-keys"]
            .as_str()
            .unwrap_or("")
            .lines()
            .map(str::trim)
            .filter(|l| !l.is_empty())
            .collect();
        let hit = entries.iter().find(|(k, _)| k == key).or_else(|| {
            prefixes
                .iter()
                .find_map(|p| entries.iter().rev().find(|(k, _)| k.starts_with(p)))
        })?;
        copy_dir(&hit.1, path);
        Some(hit.0.clone())
    }

    /// `actions/cache/save`: a new entry; an existing key cannot be overwritten.
    fn save(&self, with: &Value, path: &Path) -> Result<(), String> {
        let key = with["key"].as_str().unwrap();
        if self.entries().iter().any(|(k, _)| k == key) {
            return Err(format!("cache key {key} exists and is immutable"));
        }
        let entry = self.dir.join(format!("{:04}", self.entries().len()));
        std::fs::create_dir_all(&entry).unwrap();
        std::fs::write(entry.join("key"), key).unwrap();
        copy_dir(path, &entry.join("data"));
        Ok(())
    }
}

fn copy_dir(from: &Path, to: &Path) {
    std::fs::create_dir_all(to).unwrap();
    for e in std::fs::read_dir(from).unwrap() {
        let e = e.unwrap();
        if e.path().is_dir() {
            copy_dir(&e.path(), &to.join(e.file_name()));
        } else {
            std::fs::copy(e.path(), to.join(e.file_name())).unwrap();
        }
    }
}

/// `${{ github.X }}` in a `with:` value.
fn expand(s: &str, github: &BTreeMap<&str, String>) -> String {
    let mut out = s.to_string();
    for (k, v) in github {
        out = out.replace(&format!("${{{{ github.{k} }}}}"), v);
    }
    assert!(!out.contains("${{"), "unsupported expression in {s}");
    out
}

/// What one simulated workflow run did.
struct RunLog {
    /// (step name, exit code) of the shell steps run.
    ran: Vec<(String, i32)>,
    restored: Option<String>,
    saved: bool,
}

/// Run the workflow's steps in `workspace`, as GitHub would on run `run_id` of branch `main`.
fn run_workflow(
    workflow: &Value,
    workspace: &Path,
    cache: &Cache,
    run_id: u32,
    env: &[(&str, &str)],
) -> RunLog {
    let job = &workflow["jobs"]["contract"];
    let github = BTreeMap::from([
        ("ref_name", "main".to_string()),
        ("run_id", run_id.to_string()),
    ]);
    let path_var = format!(
        "{}:{}",
        Path::new(bin()).parent().unwrap().display(),
        std::env::var("PATH").unwrap_or_default()
    );
    let summary = workspace.join("step-summary.md");
    let mut log = RunLog {
        ran: Vec::new(),
        restored: None,
        saved: false,
    };
    let mut failed = false;
    for step in job["steps"].as_array().unwrap() {
        let name = step["name"].as_str().unwrap_or("").to_string();
        match step["if"].as_str() {
            None if failed => continue,
            None => {}
            Some("always()") => {}
            Some(other) => panic!("unsupported if: {other}"),
        }
        if let Some(uses) = step["uses"].as_str() {
            let with: Value = step["with"]
                .as_object()
                .map(|m| {
                    m.iter()
                        .map(|(k, v)| (k.clone(), json!(expand(v.as_str().unwrap(), &github))))
                        .collect()
                })
                .unwrap_or_default();
            let path = with["path"]
                .as_str()
                .map(|p| workspace.join(p.lines().next().unwrap().trim()));
            if uses.starts_with("actions/cache/restore@") {
                log.restored = cache.restore(&with, &path.unwrap());
            } else if uses.starts_with("actions/cache/save@") {
                cache.save(&with, &path.unwrap()).unwrap();
                log.saved = true;
            }
            // checkout, toolchain, artifact upload, JUnit publishing: nothing to simulate.
            continue;
        }
        let script = step["run"].as_str().expect("a step has uses or run");
        // Installing the harness and building the transformer need the network and the user's
        // project: the test puts firehose-harness on PATH and serves the transformer itself.
        if script.trim_start().starts_with("cargo ") {
            continue;
        }
        assert!(
            !script.contains("${{"),
            "expressions belong in env, not run: {script}"
        );
        let mut cmd = Command::new("bash");
        cmd.args(["--noprofile", "--norc", "-eo", "pipefail", "-c", script])
            .current_dir(workspace)
            .env("PATH", &path_var)
            .env("GITHUB_STEP_SUMMARY", &summary)
            .env("NO_COLOR", "1");
        for (k, v) in job["env"].as_object().into_iter().flatten() {
            cmd.env(k, v.as_str().unwrap());
        }
        for (k, v) in env {
            cmd.env(k, v);
        }
        let out = cmd.output().expect("run bash");
        let code = out.status.code().unwrap_or(-1);
        if code != 0 {
            failed = true;
        }
        log.ran.push((name, code));
        if code != 0 && code != 1 {
            panic!("step failed unexpectedly: {}", describe(&out));
        }
    }
    log
}

#[test]
fn the_github_workflow_replays_the_first_runs_regression_in_the_second() {
    let workflow = yaml(&ci().join("github-actions.yml"));
    let server = serve(
        Router::new()
            .route("/", post(loses_empty_batches))
            .layer(axum::extract::DefaultBodyLimit::max(8 << 20)),
    );
    let url = server.url("/");
    let cache_dir = temp_dir();
    let cache = Cache {
        dir: cache_dir.path().to_path_buf(),
    };
    let small = "--cases 2 --records 1..5 --compression none";
    // Boundary corners stay inside --payload (issue 9): the empty record needs `empty` in it.
    let first_args = format!("{small} --payload json,empty --seed 1 --record-size 0..1KiB");

    // Run 1: the boundary phase's empty record finds the bug; the check fails and the regression
    // is saved to the cache all the same (that is when it matters).
    let first = temp_dir();
    let log = run_workflow(
        &workflow,
        first.path(),
        &cache,
        101,
        &[("FIREHOSE_TARGET", &url), ("FIREHOSE_ARGS", &first_args)],
    );
    assert_eq!(log.restored, None, "nothing cached yet");
    assert!(
        log.ran
            .iter()
            .any(|(n, c)| n == "Check the contract" && *c == 1),
        "{:?}",
        log.ran
    );
    assert!(
        log.ran.iter().any(|(n, c)| n == "Summary" && *c == 0),
        "{:?}",
        log.ran
    );
    assert!(
        log.saved,
        "the regressions are saved even though the check failed"
    );
    let saved: Vec<String> = std::fs::read_dir(first.path().join(".firehose-harness/regressions"))
        .unwrap()
        .map(|e| e.unwrap().file_name().to_string_lossy().into_owned())
        .collect();
    assert_eq!(saved.len(), 1, "{saved:?}");

    // Run 2: a fresh workspace, and inputs that never hold an empty record (no boundary phase,
    // records of at least one byte): only the restored regression can find the bug now.
    let second = temp_dir();
    let args = format!("{small} --payload json --seed 2 --record-size 1..1KiB --no-boundary");
    let log = run_workflow(
        &workflow,
        second.path(),
        &cache,
        102,
        &[("FIREHOSE_TARGET", &url), ("FIREHOSE_ARGS", &args)],
    );
    assert_eq!(
        log.restored.as_deref(),
        Some("firehose-regressions-main-101")
    );
    let report = read_report(&second.path().join("firehose-report"));
    let regression = report["phases"]
        .as_array()
        .unwrap()
        .iter()
        .find(|p| p["phase"] == "regression")
        .unwrap_or_else(|| panic!("no regression phase: {}", report["phases"]));
    assert_eq!(
        (regression["run"].as_u64(), regression["failed"].as_u64()),
        (Some(1), Some(1))
    );
    assert_eq!(
        report["failures"][0]["phase"], "regression",
        "{}",
        report["failures"]
    );
    assert_eq!(report["exit_code"], 1);
    assert!(log.saved);
    assert_eq!(cache.entries().len(), 2, "one immutable entry per run");
    let event = std::fs::read(
        second
            .path()
            .join(".firehose-harness/regressions")
            .join(&saved[0])
            .join("event.json"),
    )
    .unwrap();
    let event: Value = serde_json::from_slice(&event).unwrap();
    assert!(
        event["records"]
            .as_array()
            .unwrap()
            .iter()
            .any(|r| r["data"] == ""),
        "the replayed case is the first run's empty record"
    );
}

#[test]
fn the_gitlab_template_keeps_the_regressions_per_branch_even_on_failure() {
    let gitlab = yaml(&ci().join("gitlab-ci.yml"));
    let job = &gitlab["firehose-contract"];
    let cache = &job["cache"];
    assert_eq!(cache["when"], "always");
    assert!(
        cache["key"]
            .as_str()
            .unwrap()
            .contains("$CI_COMMIT_REF_SLUG")
    );
    assert_eq!(cache["paths"], json!([".firehose-harness/regressions/"]));
    let script = job["script"].as_array().unwrap();
    assert!(
        script.iter().any(|l| l
            .as_str()
            .unwrap()
            .contains("firehose-harness check --target \"$FIREHOSE_TARGET\"")),
        "{script:?}"
    );
}

/// `ci/kubernetes/run.sh` against a stub `kubectl` that logs its calls and answers from `state`.
fn run_k8s(shards: &str, merge: &str, merge_exit: u32) -> (i32, String, String) {
    let dir = temp_dir();
    let stub = dir.path().join("kubectl");
    let log = dir.path().join("calls.log");
    std::fs::write(
        &stub,
        format!(
            r#"#!/usr/bin/env bash
echo "$*" >> {log}
case "$*" in
  *"get job firehose-load-merge"*) echo {merge} ;;
  *"get job firehose-load"*) echo {shards} ;;
  *"get pods -l job-name=firehose-load-merge"*) printf {merge_exit} ;;
  *"get pods -l job-name=firehose-load "*) printf 4 ;;
  *logs*) echo "shard log line" ;;
esac
"#,
            log = log.display()
        ),
    )
    .unwrap();
    use std::os::unix::fs::PermissionsExt;
    std::fs::set_permissions(&stub, std::fs::Permissions::from_mode(0o755)).unwrap();
    let out = Command::new("bash")
        .arg(ci().join("kubernetes/run.sh"))
        .arg("test-ns")
        .env(
            "PATH",
            format!(
                "{}:{}",
                dir.path().display(),
                std::env::var("PATH").unwrap_or_default()
            ),
        )
        .env("FIREHOSE_POLL_SECONDS", "0")
        .output()
        .unwrap();
    (
        out.status.code().unwrap_or(-1),
        std::fs::read_to_string(&log).unwrap_or_default(),
        String::from_utf8_lossy(&out.stderr).into_owned(),
    )
}

#[test]
fn the_kubernetes_script_stops_as_soon_as_a_shard_fails() {
    let (code, calls, stderr) = run_k8s("Failed", "Complete", 0);
    assert_eq!(code, 4, "the failed shard's exit code\n{calls}\n{stderr}");
    assert_eq!(
        calls.matches("get job firehose-load ").count(),
        1,
        "{calls}"
    );
    assert!(
        !calls.contains("load-merge-job.yaml"),
        "no merge after a broken shard\n{calls}"
    );
    assert!(stderr.contains("a load shard failed"), "{stderr}");
}

#[test]
fn the_kubernetes_script_returns_the_merges_exit_code() {
    let (code, calls, _) = run_k8s("Complete", "Failed", 3);
    assert_eq!(code, 3, "{calls}");
    assert!(calls.contains("apply -f load-merge-job.yaml"), "{calls}");
}

#[test]
fn completions_and_man_pages_come_from_the_cli() {
    let dir = temp_dir();
    let out = Command::new(bin())
        .args(["completions", "bash"])
        .output()
        .unwrap();
    assert!(out.status.success(), "{}", describe(&out));
    let script = dir.path().join("fh.bash");
    std::fs::write(&script, &out.stdout).unwrap();
    let script_text = String::from_utf8_lossy(&out.stdout);
    assert!(
        script_text.contains("--s3-prefix"),
        "new flags are completed too"
    );
    // bash loads it and registers the completion.
    let out = Command::new("bash")
        .arg("-c")
        .arg(format!(
            "source {} && complete -p firehose-harness",
            script.display()
        ))
        .output()
        .unwrap();
    assert!(out.status.success(), "{}", describe(&out));

    let out = Command::new(bin()).arg("man").output().unwrap();
    assert!(out.status.success(), "{}", describe(&out));
    assert!(
        String::from_utf8_lossy(&out.stdout).starts_with(".ie"),
        "roff"
    );
    let pages = dir.path().join("man");
    let out = Command::new(bin())
        .args(["man", "--out-dir"])
        .arg(&pages)
        .output()
        .unwrap();
    assert!(out.status.success(), "{}", describe(&out));
    for page in [
        "firehose-harness.1",
        "firehose-harness-check.1",
        "firehose-harness-run.1",
    ] {
        assert!(pages.join(page).exists(), "{page}");
    }
    let out = Command::new(bin())
        .args(["completions", "nosuchshell"])
        .output()
        .unwrap();
    assert_eq!(out.status.code(), Some(2), "{}", describe(&out));
}
