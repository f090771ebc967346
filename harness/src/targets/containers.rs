//! Docker-side housekeeping for `image:` targets: whose a container is, removing a run's
//! containers, reaping those of runs that died, and talking to Docker Engines older than the client.
//!
//! Every container the harness starts carries four labels: the run ([`LABEL_RUN`]) and its owner
//! process (pid, the process's start time, the host). A run removes its own containers by the run
//! label on every way out (end, Ctrl-C, SIGTERM); a run that was SIGKILLed cannot, so every
//! `image:` start removes the containers whose owner process is gone (same host, and that pid no
//! longer exists or is now another process).
//!
//! testcontainers' Docker client (bollard) names API version 1.48 in every request path, and a
//! Docker Engine older than 28 refuses it ("client version 1.48 is too new"). Before the async
//! runtime starts, [`ApiShim::prepare`] asks the engine which version it speaks; where it is older,
//! the shim serves a private socket that rewrites the version in each path and forwards the rest
//! untouched, and testcontainers is pointed at it through `DOCKER_HOST`.

use std::collections::HashMap;
use std::io::{Read, Write};
use std::os::unix::net::UnixStream as StdUnixStream;
use std::path::{Path, PathBuf};
use std::sync::Arc;
use std::time::Duration;

use testcontainers::bollard::Docker;
use testcontainers::bollard::query_parameters::{ListContainersOptions, RemoveContainerOptions};

/// The run a container belongs to.
pub const LABEL_RUN: &str = "dev.firehose-harness.run";
/// The pid of the harness process that started it.
pub const LABEL_OWNER_PID: &str = "dev.firehose-harness.owner-pid";
/// That process's start time (clock ticks since boot), so a reused pid is not taken for the owner.
pub const LABEL_OWNER_START: &str = "dev.firehose-harness.owner-start";
/// The host the owner runs on: pids mean nothing on another host sharing the engine.
pub const LABEL_OWNER_HOST: &str = "dev.firehose-harness.owner-host";

/// Docker's socket when `DOCKER_HOST` is not set (testcontainers' default too).
const DEFAULT_SOCKET: &str = "/var/run/docker.sock";

/// The harness process that owns containers.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Owner {
    pub pid: u32,
    pub start: String,
    pub host: String,
}

impl Owner {
    pub fn current() -> Owner {
        let pid = std::process::id();
        Owner {
            pid,
            start: process_start(pid).unwrap_or_default(),
            host: std::fs::read_to_string("/proc/sys/kernel/hostname")
                .map(|h| h.trim().to_string())
                .unwrap_or_default(),
        }
    }

    /// The labels a container of run `run` carries.
    pub fn labels(&self, run: &str) -> [(&'static str, String); 4] {
        [
            (LABEL_RUN, run.to_string()),
            (LABEL_OWNER_PID, self.pid.to_string()),
            (LABEL_OWNER_START, self.start.clone()),
            (LABEL_OWNER_HOST, self.host.clone()),
        ]
    }

    /// Whether a container with `labels` was started by a process of this host that is gone.
    fn orphaned(&self, labels: &HashMap<String, String>) -> bool {
        let (Some(pid), Some(start), Some(host)) = (
            labels.get(LABEL_OWNER_PID),
            labels.get(LABEL_OWNER_START),
            labels.get(LABEL_OWNER_HOST),
        ) else {
            return false;
        };
        let Ok(pid) = pid.parse::<u32>() else {
            return false;
        };
        if *host != self.host || pid == self.pid {
            return false;
        }
        match process_start(pid) {
            None => true,
            // The pid now belongs to a process started at another time: the owner is gone.
            Some(now) => !start.is_empty() && now != *start,
        }
    }
}

/// Field 22 of `/proc/PID/stat` (the start time in clock ticks since boot); `None` when there is no
/// such process.
fn process_start(pid: u32) -> Option<String> {
    let stat = std::fs::read_to_string(format!("/proc/{pid}/stat")).ok()?;
    // The command name (field 2) is in parentheses and may hold spaces: count after its end.
    let rest = &stat[stat.rfind(')')? + 1..];
    rest.split_whitespace().nth(19).map(str::to_string)
}

/// Docker as testcontainers reaches it (`DOCKER_HOST`, or the default socket).
pub async fn docker() -> Result<Docker, String> {
    testcontainers::core::client::docker_client_instance()
        .await
        .map_err(|e| e.to_string())
}

/// Remove (forcibly, with their anonymous volumes) the containers, running or not, that carry
/// `label=value`, or whose labels `keep` rejects; returns how many were removed.
async fn remove_where(
    docker: &Docker,
    label: &str,
    value: Option<&str>,
    keep: impl Fn(&HashMap<String, String>) -> bool,
) -> Result<usize, String> {
    let filter = match value {
        Some(v) => format!("{label}={v}"),
        None => label.to_string(),
    };
    let options = ListContainersOptions {
        all: true,
        filters: Some(HashMap::from([("label".to_string(), vec![filter])])),
        ..Default::default()
    };
    let listed = docker
        .list_containers(Some(options))
        .await
        .map_err(|e| format!("cannot list containers: {e}"))?;
    let mut removed = 0;
    for c in listed {
        let (Some(id), labels) = (c.id, c.labels.unwrap_or_default()) else {
            continue;
        };
        if keep(&labels) {
            continue;
        }
        let options = RemoveContainerOptions {
            force: true,
            v: true,
            ..Default::default()
        };
        // Already gone (removed by a parallel cleanup) counts as done.
        if docker.remove_container(&id, Some(options)).await.is_ok() {
            removed += 1;
        }
    }
    Ok(removed)
}

/// Remove every container of run `run`.
pub async fn remove_run(docker: &Docker, run: &str) -> Result<usize, String> {
    remove_where(docker, LABEL_RUN, Some(run), |_| false).await
}

/// Remove the containers of earlier runs on this host whose owner process is gone.
pub async fn reap_orphans(docker: &Docker, me: &Owner) -> Result<usize, String> {
    remove_where(docker, LABEL_OWNER_PID, None, |labels| !me.orphaned(labels)).await
}

/// A Docker Engine API version, `1.41`.
#[derive(Debug, Clone, Copy, PartialEq, Eq, PartialOrd, Ord)]
pub struct ApiVersion(pub usize, pub usize);

impl ApiVersion {
    fn parse(s: &str) -> Option<ApiVersion> {
        let (major, minor) = s.trim().split_once('.')?;
        Some(ApiVersion(major.parse().ok()?, minor.parse().ok()?))
    }

    /// The version testcontainers' client puts in every path.
    pub fn client() -> ApiVersion {
        let v = testcontainers::bollard::API_DEFAULT_VERSION;
        ApiVersion(v.major_version, v.minor_version)
    }
}

impl std::fmt::Display for ApiVersion {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        write!(f, "{}.{}", self.0, self.1)
    }
}

/// The engine's socket: `DOCKER_HOST` when it is `unix://`, the default socket when unset, `None`
/// for other transports (TCP, TLS), which are left as they are.
fn engine_socket() -> Option<PathBuf> {
    match std::env::var("DOCKER_HOST") {
        Ok(host) if host.is_empty() => Some(DEFAULT_SOCKET.into()),
        Ok(host) => host.strip_prefix("unix://").map(PathBuf::from),
        Err(_) => Some(DEFAULT_SOCKET.into()),
    }
}

/// The API version the engine behind `socket` speaks, from `/_ping` (which needs no version).
fn engine_version(socket: &Path) -> Option<ApiVersion> {
    let mut stream = StdUnixStream::connect(socket).ok()?;
    stream.set_read_timeout(Some(Duration::from_secs(5))).ok()?;
    stream
        .set_write_timeout(Some(Duration::from_secs(5)))
        .ok()?;
    stream
        .write_all(b"GET /_ping HTTP/1.0\r\nHost: docker\r\n\r\n")
        .ok()?;
    let mut head = Vec::new();
    let mut buf = [0u8; 1024];
    while !head.windows(4).any(|w| w == b"\r\n\r\n") && head.len() < 16 * 1024 {
        let n = stream.read(&mut buf).ok()?;
        if n == 0 {
            break;
        }
        head.extend_from_slice(&buf[..n]);
    }
    String::from_utf8_lossy(&head).lines().find_map(|line| {
        let (name, value) = line.split_once(':')?;
        name.trim()
            .eq_ignore_ascii_case("api-version")
            .then(|| ApiVersion::parse(value))?
    })
}

/// A private socket in front of an older engine, rewriting `/v{client}/` to `/v{engine}/`.
pub struct ApiShim {
    listener: std::os::unix::net::UnixListener,
    dir: PathBuf,
    engine: PathBuf,
    from: String,
    to: String,
}

impl ApiShim {
    /// Ask the engine its version; where it is older than the client's, bind the shim's socket
    /// and point `DOCKER_HOST` at it.
    ///
    /// Changing the environment is only sound while no other thread runs: call this before the
    /// async runtime starts. Engines that cannot be asked (not running, TCP) are left alone, and
    /// testcontainers then says what is wrong.
    pub fn prepare() -> Result<Option<ApiShim>, String> {
        let Some(engine) = engine_socket() else {
            return Ok(None);
        };
        let Some(version) = engine_version(&engine) else {
            return Ok(None);
        };
        let client = ApiVersion::client();
        if version >= client {
            return Ok(None);
        }
        let dir =
            std::env::temp_dir().join(format!("firehose-harness-docker-{}", std::process::id()));
        std::fs::create_dir_all(&dir)
            .map_err(|e| format!("cannot create {}: {e}", dir.display()))?;
        let path = dir.join("docker.sock");
        let _ = std::fs::remove_file(&path);
        let listener = std::os::unix::net::UnixListener::bind(&path)
            .map_err(|e| format!("cannot listen on {}: {e}", path.display()))?;
        listener
            .set_nonblocking(true)
            .map_err(|e| format!("cannot listen on {}: {e}", path.display()))?;
        set_docker_host(&format!("unix://{}", path.display()));
        Ok(Some(ApiShim {
            listener,
            dir,
            engine,
            from: format!("/v{client}/"),
            to: format!("/v{version}/"),
        }))
    }

    /// Serve until the returned token is cancelled (call inside the runtime).
    pub fn serve(self) -> Result<ShimGuard, String> {
        let listener = tokio::net::UnixListener::from_std(self.listener)
            .map_err(|e| format!("cannot serve the Docker API shim: {e}"))?;
        let stop = tokio_util::sync::CancellationToken::new();
        let rewrite = Arc::new(Rewrite {
            engine: self.engine,
            from: self.from,
            to: self.to,
        });
        let token = stop.clone();
        tokio::spawn(async move {
            loop {
                let conn = tokio::select! {
                    _ = token.cancelled() => break,
                    accepted = listener.accept() => accepted,
                };
                if let Ok((stream, _)) = conn {
                    tokio::spawn(proxy(stream, rewrite.clone()));
                }
            }
        });
        Ok(ShimGuard {
            stop,
            dir: self.dir,
        })
    }
}

/// Stops the shim and removes its socket when dropped.
pub struct ShimGuard {
    stop: tokio_util::sync::CancellationToken,
    dir: PathBuf,
}

impl Drop for ShimGuard {
    fn drop(&mut self) {
        self.stop.cancel();
        let _ = std::fs::remove_dir_all(&self.dir);
    }
}

struct Rewrite {
    engine: PathBuf,
    from: String,
    to: String,
}

/// One client connection: each request goes to the engine over one connection of its own, with
/// the version in its path rewritten; bodies stream both ways (followed logs never end).
async fn proxy(stream: tokio::net::UnixStream, rewrite: Arc<Rewrite>) {
    use hyper::body::Incoming;
    use hyper_util::rt::TokioIo;
    let Ok(upstream) = tokio::net::UnixStream::connect(&rewrite.engine).await else {
        return;
    };
    let Ok((sender, conn)) = hyper::client::conn::http1::handshake(TokioIo::new(upstream)).await
    else {
        return;
    };
    tokio::spawn(conn);
    let sender = Arc::new(tokio::sync::Mutex::new(sender));
    let service = hyper::service::service_fn(move |mut req: hyper::Request<Incoming>| {
        let (sender, rewrite) = (sender.clone(), rewrite.clone());
        async move {
            let path = req
                .uri()
                .path_and_query()
                .map_or("/", |p| p.as_str())
                .to_string();
            if let Some(rest) = path.strip_prefix(&rewrite.from)
                && let Ok(uri) = format!("{}{rest}", rewrite.to).parse()
            {
                *req.uri_mut() = uri;
            }
            sender.lock().await.send_request(req).await
        }
    });
    let _ = hyper::server::conn::http1::Builder::new()
        .serve_connection(TokioIo::new(stream), service)
        .await;
}

/// Point testcontainers (which reads `DOCKER_HOST` when it first connects) at `host`.
#[allow(unsafe_code)]
fn set_docker_host(host: &str) {
    // SAFETY: `ApiShim::prepare` runs before the async runtime and any other thread start (see its
    // documentation), so nothing reads the environment while it changes.
    unsafe { std::env::set_var("DOCKER_HOST", host) };
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn api_versions_compare_numerically() {
        assert!(ApiVersion::parse("1.41").unwrap() < ApiVersion::parse("1.48").unwrap());
        assert!(ApiVersion::parse("1.9").unwrap() < ApiVersion::parse("1.10").unwrap());
        assert_eq!(ApiVersion::parse(" 1.41 "), Some(ApiVersion(1, 41)));
        assert_eq!(ApiVersion::parse("x"), None);
    }

    #[test]
    fn this_process_is_not_an_orphan_and_a_dead_pid_is() {
        let me = Owner::current();
        assert!(!me.start.is_empty(), "reads /proc/self/stat");
        let labels = |o: &Owner| -> HashMap<String, String> {
            o.labels("r")
                .into_iter()
                .map(|(k, v)| (k.to_string(), v))
                .collect()
        };
        assert!(!me.orphaned(&labels(&me)));
        // A process that has exited (and been waited for) is gone.
        let mut child = std::process::Command::new("true").spawn().unwrap();
        let pid = child.id();
        child.wait().unwrap();
        let dead = Owner {
            pid,
            start: "1".into(),
            host: me.host.clone(),
        };
        assert!(me.orphaned(&labels(&dead)));
        // Another host's pids are not ours to judge.
        let elsewhere = Owner {
            host: format!("{}-other", me.host),
            ..dead.clone()
        };
        assert!(!me.orphaned(&labels(&elsewhere)));
        // The parent process is alive, with its own start time.
        let parent = std::os::unix::process::parent_id();
        let alive = Owner {
            pid: parent,
            start: process_start(parent).unwrap(),
            host: me.host.clone(),
        };
        assert!(!me.orphaned(&labels(&alive)));
        let reused = Owner {
            start: "0".into(),
            ..alive
        };
        assert!(me.orphaned(&labels(&reused)));
    }
}
