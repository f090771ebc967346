//! Helpers: run the real binary, serve transformers over real HTTP, read reports.

use std::net::SocketAddr;
use std::path::{Path, PathBuf};
use std::process::{Command, Output};

use axum::Router;
use serde_json::Value;

pub fn bin() -> &'static str {
    env!("CARGO_BIN_EXE_firehose-harness")
}

/// Run `firehose-harness ARGS` in `cwd` (so regressions land in a temp dir, never the repo).
pub fn run_in(cwd: &Path, args: &[&str]) -> Output {
    Command::new(bin())
        .args(args)
        .current_dir(cwd)
        .env("NO_COLOR", "1")
        // A test run inside GitHub Actions must not write into the job's summary.
        .env_remove("GITHUB_STEP_SUMMARY")
        .output()
        .expect("run firehose-harness")
}

/// Exit code, stdout and stderr of a run, for assertion messages.
pub fn describe(out: &Output) -> String {
    format!(
        "exit {:?}\n--- stdout\n{}\n--- stderr\n{}",
        out.status.code(),
        String::from_utf8_lossy(&out.stdout),
        String::from_utf8_lossy(&out.stderr)
    )
}

/// `firehose-harness check ARGS --report-dir R` in `cwd`: the report and the output (case folders
/// are under `cwd/R/cases`).
pub fn check_in(cwd: &Path, args: &[&str]) -> (Value, Output) {
    let mut all = args.to_vec();
    all.extend(["--report-dir", "R"]);
    let out = run_in(cwd, &all);
    (read_report(&cwd.join("R")), out)
}

/// How many lines of `stderr` are errors (`firehose-harness: …`), and none is a panic.
pub fn error_lines(stderr: &str) -> usize {
    assert!(!stderr.contains("panicked"), "{stderr}");
    stderr
        .lines()
        .filter(|l| l.starts_with("firehose-harness: "))
        .count()
}

pub fn read_report(dir: &Path) -> Value {
    let bytes = std::fs::read(dir.join("report.json")).expect("report.json written");
    serde_json::from_slice(&bytes).expect("report.json is JSON")
}

/// Ids of the checks a report marks `fail`.
pub fn failing_checks(report: &Value) -> Vec<String> {
    report["checks"]
        .as_array()
        .expect("checks array")
        .iter()
        .filter(|c| c["status"] == "fail")
        .map(|c| c["id"].as_str().unwrap().to_string())
        .collect()
}

/// A server running on its own thread and runtime until dropped.
pub struct Server {
    pub addr: SocketAddr,
    _shutdown: tokio::sync::oneshot::Sender<()>,
    _thread: std::thread::JoinHandle<()>,
}

impl Server {
    pub fn url(&self, path: &str) -> String {
        format!("http://{}{path}", self.addr)
    }
}

/// Serve `router` on 127.0.0.1 with a port the OS picks.
pub fn serve(router: Router) -> Server {
    let (addr_tx, addr_rx) = std::sync::mpsc::channel();
    let (shutdown_tx, shutdown_rx) = tokio::sync::oneshot::channel::<()>();
    let thread = std::thread::spawn(move || {
        let rt = tokio::runtime::Builder::new_multi_thread()
            .worker_threads(2)
            .enable_all()
            .build()
            .unwrap();
        rt.block_on(async move {
            let listener = tokio::net::TcpListener::bind("127.0.0.1:0").await.unwrap();
            addr_tx.send(listener.local_addr().unwrap()).unwrap();
            axum::serve(listener, router)
                .with_graceful_shutdown(async {
                    let _ = shutdown_rx.await;
                })
                .await
                .unwrap();
        });
    });
    Server {
        addr: addr_rx.recv().unwrap(),
        _shutdown: shutdown_tx,
        _thread: thread,
    }
}

pub fn temp_dir() -> tempfile::TempDir {
    tempfile::tempdir().expect("temp dir")
}

pub fn fixtures() -> PathBuf {
    Path::new(env!("CARGO_MANIFEST_DIR")).join("../fixtures/real-events")
}
