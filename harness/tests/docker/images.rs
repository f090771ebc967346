//! The images under test, built once by `ci/docker/build.sh`, and small Docker helpers.

use std::path::{Path, PathBuf};
use std::process::{Child, Command, Stdio};
use std::sync::OnceLock;
use std::time::{Duration, Instant};

/// The harness image (`ci/docker/Dockerfile`).
pub const HARNESS_IMAGE: &str = "firehose-harness-test/harness:latest";
/// The example function behind `emulate` (`ci/docker/function.Dockerfile`).
pub const FUNCTION_IMAGE: &str = "firehose-harness-test/function:latest";

/// The label carrying the pid of the harness process that started a container.
const OWNER_PID: &str = "dev.firehose-harness.owner-pid";

fn repo_root() -> PathBuf {
    Path::new(env!("CARGO_MANIFEST_DIR")).join("..")
}

/// Build (or find up to date) both images; every caller in this process shares one result, and
/// the script's lock serialises test processes.
pub fn images() -> (&'static str, &'static str) {
    static BUILT: OnceLock<()> = OnceLock::new();
    BUILT.get_or_init(|| {
        let out = Command::new("bash")
            .arg(repo_root().join("ci/docker/build.sh"))
            .args([
                "--profile",
                "dev",
                "--tag",
                HARNESS_IMAGE,
                "--function",
                FUNCTION_IMAGE,
            ])
            .stderr(Stdio::inherit())
            .output()
            .expect("run ci/docker/build.sh");
        assert!(
            out.status.success(),
            "ci/docker/build.sh failed: {:?}",
            out.status
        );
        let built = String::from_utf8_lossy(&out.stdout);
        assert!(built.contains(FUNCTION_IMAGE), "{built}");
    });
    (HARNESS_IMAGE, FUNCTION_IMAGE)
}

/// `docker ARGS`, stdout as text; panics with stderr when docker fails.
pub fn docker(args: &[&str]) -> String {
    let out = Command::new("docker")
        .args(args)
        .output()
        .expect("run docker");
    assert!(
        out.status.success(),
        "docker {args:?}: {}",
        String::from_utf8_lossy(&out.stderr)
    );
    String::from_utf8_lossy(&out.stdout).into_owned()
}

/// Ids of the containers (running or not) that harness process `pid` started.
pub fn containers_of(pid: u32) -> Vec<String> {
    docker(&[
        "ps",
        "-aq",
        "--no-trunc",
        "--filter",
        &format!("label={OWNER_PID}={pid}"),
    ])
    .lines()
    .map(str::to_string)
    .collect()
}

/// `firehose-harness ARGS` started in `cwd`, output captured.
pub fn spawn_harness(cwd: &Path, args: &[&str]) -> Child {
    Command::new(super::support::bin())
        .args(args)
        .current_dir(cwd)
        .env("NO_COLOR", "1")
        .stdout(Stdio::piped())
        .stderr(Stdio::piped())
        .spawn()
        .expect("start firehose-harness")
}

/// Poll until `pid` has at least `n` containers (every id seen is kept), or panic after a minute.
pub fn wait_for_containers(pid: u32, n: usize, seen: &mut Vec<String>) {
    let deadline = Instant::now() + Duration::from_secs(90);
    loop {
        let now = containers_of(pid);
        for id in &now {
            if !seen.contains(id) {
                seen.push(id.clone());
            }
        }
        if now.len() >= n {
            return;
        }
        assert!(
            Instant::now() < deadline,
            "run {pid} never had {n} containers (has {})",
            now.len()
        );
        std::thread::sleep(Duration::from_millis(200));
    }
}
