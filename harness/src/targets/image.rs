//! `image:REF`: a Lambda container image, one container per instance, started with testcontainers
//! and invoked through the Invoke API on its port 8080 (the layout of AWS's base images, whose
//! Runtime Interface Emulator listens there, and of images whose entrypoint is `firehose-harness
//! emulate --listen 0.0.0.0:8080`).
//!
//! `start` reaps the containers of dead runs, then starts one container and waits until it answers
//! HTTP, so a missing image or a crashing entrypoint ends the run at once (exit 4) with the
//! container's own output. After that, containers start on demand up to `--instances` (default 1:
//! a container costs far more than a process), each serves one invocation at a time, and one whose
//! invocation timed out or broke off is removed, as Lambda discards such a sandbox. Each invocation
//! carries the container's output since it began. `shutdown` removes every container of the run
//! (by the run's label, which also catches a start cut short); see [`super::containers`].

use std::collections::HashMap;
use std::collections::VecDeque;
use std::sync::Arc;
use std::sync::atomic::{AtomicBool, Ordering};
use std::time::{Duration, Instant};

use async_trait::async_trait;
use bytes::Bytes;
use testcontainers::core::logs::LogFrame;
use testcontainers::core::{ImageExt, IntoContainerPort};
use testcontainers::runners::AsyncRunner;
use testcontainers::{ContainerAsync, GenericImage};
use tokio::io::{AsyncReadExt, AsyncWriteExt};
use tokio::sync::Semaphore;

use super::containers::{self, ApiShim, Owner, ShimGuard};
use super::http::HttpTarget;
use super::{PoolStats, Target, TargetError, TargetOptions};
use crate::invocation::{Invocation, Outcome};

/// The port a Lambda container image serves the Invoke API on.
pub const LAMBDA_PORT: u16 = 8080;
/// How long a container may take from `docker run` to answering HTTP.
const START_TIMEOUT: Duration = Duration::from_secs(60);
/// How much of each container's output is kept for the invocations' logs.
const LOG_KEEP: usize = 64 * 1024;
/// How long an invocation's logs may trail its answer before the `REPORT` line is given up on.
const REPORT_WAIT: Duration = Duration::from_secs(1);
/// What is known of the image's `REPORT` lines ([`ImageTarget::logs_of`]).
const REPORTS_UNKNOWN: u8 = 0;
const REPORTS_SEEN: u8 = 1;
const REPORTS_NEVER: u8 = 2;

/// An image reference as Docker takes it: `name[:tag]` or `name@sha256:…`.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct ImageRef {
    /// What testcontainers calls the name: everything before the last `:` (for a digest,
    /// `name@sha256`, so that `name:tag` rebuilds the reference exactly).
    name: String,
    tag: String,
}

impl ImageRef {
    pub fn parse(s: &str) -> Result<ImageRef, String> {
        if s.is_empty() {
            return Err("needs an image reference, like image:my-transformer:latest".into());
        }
        if s.chars().any(|c| c.is_whitespace() || c.is_control()) {
            return Err(format!("`{s}` is not an image reference (it holds spaces)"));
        }
        let last_slash = s.rfind('/').map_or(0, |i| i + 1);
        let (name, tag) = match s.rfind(':') {
            // A port in the registry (`host:5000/name`) is before the last slash, not a tag.
            Some(i) if i >= last_slash || s.contains('@') => (&s[..i], &s[i + 1..]),
            _ => (s, "latest"),
        };
        if name.is_empty() || tag.is_empty() || name.ends_with('/') || name.ends_with('@') {
            return Err(format!("`{s}` is not an image reference"));
        }
        Ok(ImageRef {
            name: name.into(),
            tag: tag.into(),
        })
    }
}

impl std::fmt::Display for ImageRef {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        write!(f, "{}:{}", self.name, self.tag)
    }
}

/// The line a Lambda runtime (AWS's Runtime Interface Emulator, `firehose-harness emulate`) writes
/// when an invocation is over: once it is in the output, that invocation's logs are complete.
const REPORT_LINE: &str = "REPORT RequestId";

/// The newest output of one container, as testcontainers streams it in.
#[derive(Default)]
struct LogTail {
    inner: std::sync::Mutex<(u64, VecDeque<u8>)>,
    /// Woken on every write, so a wait for the `REPORT` line costs no polling.
    written: tokio::sync::Notify,
}

impl LogTail {
    fn push(&self, bytes: &[u8]) {
        {
            let mut g = self.inner.lock().unwrap_or_else(|p| p.into_inner());
            g.0 += bytes.len() as u64;
            g.1.extend(bytes);
            let over = g.1.len().saturating_sub(LOG_KEEP);
            g.1.drain(..over);
        }
        self.written.notify_waiters();
    }

    /// [`LogTail::since`] once it holds the invocation's `REPORT` line, or `None` if that line
    /// has not arrived by `wait` (the image's runtime does not write one).
    async fn until_report(&self, mark: u64, wait: Duration) -> Option<String> {
        let deadline = tokio::time::Instant::now() + wait;
        loop {
            // Registered before reading, so a write between the read and the wait still wakes us.
            let written = self.written.notified();
            let text = self.since(mark);
            if text.contains(REPORT_LINE) {
                return Some(text);
            }
            if tokio::time::timeout_at(deadline, written).await.is_err() {
                return None;
            }
        }
    }

    /// How much has been written so far.
    fn mark(&self) -> u64 {
        self.inner.lock().unwrap_or_else(|p| p.into_inner()).0
    }

    /// What was written after `mark`, as far as it is still kept.
    fn since(&self, mark: u64) -> String {
        let g = self.inner.lock().unwrap_or_else(|p| p.into_inner());
        let kept_from = g.0 - g.1.len() as u64;
        let skip = mark.saturating_sub(kept_from) as usize;
        let (a, b) = g.1.as_slices();
        let bytes: Vec<u8> = a.iter().chain(b).skip(skip).copied().collect();
        let text = String::from_utf8_lossy(&bytes).into_owned();
        if mark < kept_from {
            format!("[… earlier output not kept]\n{text}")
        } else {
            text
        }
    }

    /// [`LogTail::since`], once the output has been quiet for a moment (it arrives through the
    /// engine after the answer): at most a second.
    async fn settled_since(&self, mark: u64) -> String {
        let deadline = Instant::now() + Duration::from_secs(1);
        let mut last = self.mark();
        let mut quiet = 0;
        while quiet < 3 && Instant::now() < deadline {
            tokio::time::sleep(Duration::from_millis(50)).await;
            let now = self.mark();
            quiet = if now == last { quiet + 1 } else { 0 };
            last = now;
        }
        self.since(mark)
    }
}

/// One running container.
struct Instance {
    id: String,
    client: HttpTarget,
    tail: Arc<LogTail>,
    /// From `docker run` to answering; reported with the container's first invocation.
    init: Duration,
    fresh: AtomicBool,
}

pub struct ImageTarget {
    image: ImageRef,
    described: String,
    options: TargetOptions,
    owner: Owner,
    run: String,
    /// Where testcontainers' client is too new for the engine: the shim, until `start` serves it.
    shim: std::sync::Mutex<Option<ApiShim>>,
    shim_guard: std::sync::Mutex<Option<ShimGuard>>,
    /// One permit per instance: a container serves one invocation at a time.
    slots: Semaphore,
    idle: std::sync::Mutex<Vec<Arc<Instance>>>,
    /// Every container of this run that is still there, owned here so that all of them are removed
    /// by `shutdown`, wherever invocations stopped.
    containers: tokio::sync::Mutex<HashMap<String, ContainerAsync<GenericImage>>>,
    stats: std::sync::Mutex<PoolStats>,
    /// `REPORTS_UNKNOWN`, `REPORTS_SEEN` or `REPORTS_NEVER`.
    reports: std::sync::atomic::AtomicU8,
}

impl ImageTarget {
    /// `options.instances` defaults to 1. Call before the async runtime starts: against a Docker
    /// Engine older than testcontainers' client this points `DOCKER_HOST` at a shim (see
    /// [`ApiShim::prepare`]).
    pub fn new(image: &ImageRef, options: &TargetOptions) -> Result<Self, TargetError> {
        let described = format!("image:{image}");
        let in_runtime = tokio::runtime::Handle::try_current().is_ok();
        let shim = if in_runtime {
            None
        } else {
            ApiShim::prepare().map_err(|reason| TargetError::Start {
                target: described.clone(),
                reason,
            })?
        };
        let owner = Owner::current();
        let nanos = std::time::SystemTime::now()
            .duration_since(std::time::UNIX_EPOCH)
            .unwrap_or_default()
            .as_nanos();
        let limit = options.instances.unwrap_or(1).max(1);
        Ok(ImageTarget {
            image: image.clone(),
            described,
            options: options.clone(),
            run: format!("{}-{nanos:x}", owner.pid),
            owner,
            shim: std::sync::Mutex::new(shim),
            shim_guard: std::sync::Mutex::new(None),
            slots: Semaphore::new(limit),
            idle: std::sync::Mutex::new(Vec::new()),
            containers: tokio::sync::Mutex::new(HashMap::new()),
            stats: std::sync::Mutex::new(PoolStats {
                limit,
                ..PoolStats::default()
            }),
            reports: std::sync::atomic::AtomicU8::new(REPORTS_UNKNOWN),
        })
    }

    /// The label value every container of this run carries ([`containers::LABEL_RUN`]).
    pub fn run_id(&self) -> &str {
        &self.run
    }

    fn stats(&self) -> std::sync::MutexGuard<'_, PoolStats> {
        self.stats.lock().unwrap_or_else(|p| p.into_inner())
    }

    fn failed(&self, reason: impl Into<String>) -> TargetError {
        TargetError::Container {
            target: self.described.clone(),
            reason: reason.into(),
        }
    }

    /// The container's output for the invocation that began at `mark`. The output comes through
    /// the engine after the answer, so it is waited for: until the runtime's `REPORT` line where
    /// the image writes one (a contract violation, judged later, then has its logs too), or until
    /// the output has been quiet for a moment after a failure the target could see. Whether the
    /// image writes `REPORT` lines is learnt from its first invocation.
    async fn logs_of(&self, tail: &LogTail, mark: u64, seen_failing: bool) -> String {
        let reports = self.reports.load(Ordering::Relaxed);
        if reports != REPORTS_NEVER {
            if let Some(text) = tail.until_report(mark, REPORT_WAIT).await {
                self.reports.store(REPORTS_SEEN, Ordering::Relaxed);
                return text;
            }
            if reports == REPORTS_UNKNOWN && !seen_failing {
                self.reports.store(REPORTS_NEVER, Ordering::Relaxed);
            }
        }
        if seen_failing {
            tail.settled_since(mark).await
        } else {
            tail.since(mark)
        }
    }

    /// Start one container and wait until it answers.
    async fn start_instance(&self) -> Result<Arc<Instance>, TargetError> {
        let began = Instant::now();
        let tail = Arc::new(LogTail::default());
        let sink = tail.clone();
        // Lambda's layout: the function's timeout in whole seconds, at least one.
        let timeout = self.options.timeout.unwrap_or(Duration::from_secs(300));
        let mut request = GenericImage::new(self.image.name.clone(), self.image.tag.clone())
            .with_exposed_port(LAMBDA_PORT.tcp())
            .with_startup_timeout(START_TIMEOUT)
            .with_env_var(
                "AWS_LAMBDA_FUNCTION_TIMEOUT",
                (timeout.as_secs_f64().ceil() as u64).max(1).to_string(),
            )
            .with_log_consumer(move |frame: &LogFrame| sink.push(frame.bytes()));
        for (k, v) in self.owner.labels(&self.run) {
            request = request.with_label(k, v);
        }
        for (k, v) in &self.options.env {
            request = request.with_env_var(k, v);
        }
        let container = request
            .start()
            .await
            .map_err(|e| self.failed(e.to_string()))?;
        let id = container.id().to_string();
        let address = async {
            let host = container.get_host().await?.to_string();
            let port = container.get_host_port_ipv4(LAMBDA_PORT).await?;
            // Docker publishes on IPv4; `localhost` may resolve to ::1 first.
            let host = if host == "localhost" {
                "127.0.0.1".to_string()
            } else {
                host
            };
            Ok::<_, testcontainers::TestcontainersError>(format!("{host}:{port}"))
        }
        .await;
        self.containers.lock().await.insert(id.clone(), container);
        let ready = match address {
            Ok(address) => self
                .wait_ready(&id, &address, &tail)
                .await
                .map(|()| address),
            // A function that dies at once has no published port by the time it is asked for:
            // its exit (and its own words) is the reason, not the missing port.
            Err(e) => Err(match self.exited(&id, &tail).await {
                Some(exited) => exited,
                None => self.failed(format!("cannot find its port {LAMBDA_PORT}: {e}")),
            }),
        };
        let address = match ready {
            Ok(a) => a,
            Err(e) => {
                self.remove(&id).await;
                return Err(e);
            }
        };
        let client =
            HttpTarget::invoke_api(format!("http://{address}"), "function", &self.options)?;
        let init = began.elapsed();
        let mut stats = self.stats();
        stats.cold_starts += 1;
        stats.running += 1;
        stats.inits += 1;
        stats.init_total += init;
        stats.init_max = stats.init_max.max(init);
        Ok(Arc::new(Instance {
            id,
            client,
            tail,
            init,
            fresh: AtomicBool::new(true),
        }))
    }

    /// Until `address` answers HTTP (any status: RIE answers 404 on `/`), the container exits
    /// (its output is the reason), or [`START_TIMEOUT`] passes.
    async fn wait_ready(&self, id: &str, address: &str, tail: &LogTail) -> Result<(), TargetError> {
        let deadline = Instant::now() + START_TIMEOUT;
        loop {
            if answers_http(address).await {
                return Ok(());
            }
            if let Some(exited) = self.exited(id, tail).await {
                return Err(exited);
            }
            if Instant::now() >= deadline {
                return Err(self.failed(format!(
                    "the container did not answer on port {LAMBDA_PORT} within {} s",
                    START_TIMEOUT.as_secs()
                )));
            }
            tokio::time::sleep(Duration::from_millis(100)).await;
        }
    }

    /// If the container `id` has stopped before answering: the init error that quotes its last
    /// words. `None` while it runs.
    async fn exited(&self, id: &str, tail: &LogTail) -> Option<TargetError> {
        let code = match self.containers.lock().await.get(id) {
            Some(c) => match c.is_running().await {
                Ok(true) => return None,
                Ok(false) => c.exit_code().await.ok().flatten(),
                Err(_) => None,
            },
            None => None,
        };
        // Its last words arrive through the log stream a moment later.
        let output = tail.settled_since(0).await;
        let code = code.map_or("?".to_string(), |c| c.to_string());
        Some(TargetError::Init {
            target: self.described.clone(),
            reason: format!(
                "the container exited (code {code}) before answering on port {LAMBDA_PORT}: {}",
                last_lines(&output, 5)
            ),
        })
    }

    /// Remove one container (after a timeout, a broken invocation, a failed start).
    async fn remove(&self, id: &str) {
        let container = self.containers.lock().await.remove(id);
        if let Some(c) = container {
            let _ = c.rm().await;
        }
    }

    fn take_idle(&self) -> Option<Arc<Instance>> {
        self.idle.lock().unwrap_or_else(|p| p.into_inner()).pop()
    }

    fn put_idle(&self, instance: Arc<Instance>) {
        self.idle
            .lock()
            .unwrap_or_else(|p| p.into_inner())
            .push(instance);
    }

    /// Remove everything this run started: the containers it holds, then any still labelled with
    /// the run (a start that was cut short).
    async fn remove_all(&self) {
        self.idle.lock().unwrap_or_else(|p| p.into_inner()).clear();
        let held: Vec<_> = self.containers.lock().await.drain().collect();
        let mut removals = tokio::task::JoinSet::new();
        for (_, c) in held {
            removals.spawn(async move {
                let _ = c.rm().await;
            });
        }
        while removals.join_next().await.is_some() {}
        if let Ok(docker) = containers::docker().await {
            let _ = containers::remove_run(&docker, &self.run).await;
        }
        let mut stats = self.stats();
        stats.running = 0;
        stats.busy = 0;
    }
}

/// Whether something at `address` answers a GET with an HTTP status line.
async fn answers_http(address: &str) -> bool {
    let attempt = async {
        let mut stream = tokio::net::TcpStream::connect(address).await.ok()?;
        stream
            .write_all(b"GET / HTTP/1.0\r\nHost: function\r\n\r\n")
            .await
            .ok()?;
        let mut head = [0u8; 5];
        stream.read_exact(&mut head).await.ok()?;
        (&head == b"HTTP/").then_some(())
    };
    matches!(
        tokio::time::timeout(Duration::from_secs(2), attempt).await,
        Ok(Some(()))
    )
}

/// The last `n` non-empty lines of `text`, joined with ` | ` for a one-line error.
fn last_lines(text: &str, n: usize) -> String {
    let lines: Vec<&str> = text.lines().filter(|l| !l.trim().is_empty()).collect();
    match lines.len() {
        0 => "it printed nothing".to_string(),
        len => lines[len.saturating_sub(n)..].join(" | "),
    }
}

#[async_trait]
impl Target for ImageTarget {
    fn describe(&self) -> String {
        self.described.clone()
    }

    async fn start(&self) -> Result<(), TargetError> {
        let shim = self.shim.lock().unwrap_or_else(|p| p.into_inner()).take();
        if let Some(shim) = shim {
            let guard = shim.serve().map_err(|e| self.failed(e))?;
            *self.shim_guard.lock().unwrap_or_else(|p| p.into_inner()) = Some(guard);
        }
        let docker = containers::docker()
            .await
            .map_err(|e| self.failed(format!("cannot reach Docker: {e}")))?;
        // Containers of runs that were killed before they could remove their own.
        containers::reap_orphans(&docker, &self.owner)
            .await
            .map_err(|e| self.failed(format!("cannot reach Docker: {e}")))?;
        match self.start_instance().await {
            Ok(first) => {
                self.put_idle(first);
                Ok(())
            }
            Err(e) => {
                self.remove_all().await;
                Err(e)
            }
        }
    }

    async fn invoke(&self, event: Bytes, timeout: Duration) -> Result<Invocation, TargetError> {
        // Waiting here for a free container is queue wait, not part of the function's timeout.
        let Ok(_slot) = self.slots.acquire().await else {
            return Err(self.failed("the target was shut down"));
        };
        let instance = match self.take_idle() {
            Some(i) => i,
            None => self.start_instance().await?,
        };
        {
            let mut stats = self.stats();
            stats.busy += 1;
            stats.peak_busy = stats.peak_busy.max(stats.busy);
        }
        let mark = instance.tail.mark();
        let started = Instant::now();
        let mut inv = match instance.client.invoke(event, timeout).await {
            Ok(inv) => inv,
            Err(e) => Invocation::broken(
                format!("the container stopped answering: {e}"),
                started.elapsed(),
            ),
        };
        if instance.fresh.swap(false, Ordering::Relaxed) {
            inv.init_duration = Some(instance.init);
        }
        let seen_failing = inv.outcome != Outcome::Answered
            || inv.function_error.is_some()
            || inv.status != Some(200);
        inv.logs =
            Some(self.logs_of(&instance.tail, mark, seen_failing).await).filter(|l| !l.is_empty());
        self.stats().busy -= 1;
        match &inv.outcome {
            Outcome::Answered => self.put_idle(instance),
            // A sandbox in an unknown state is discarded, as Lambda does; the next invocation
            // starts a new one.
            outcome => {
                {
                    let mut stats = self.stats();
                    stats.running = stats.running.saturating_sub(1);
                    match outcome {
                        Outcome::TimedOut => stats.timeouts += 1,
                        _ => stats.crashes += 1,
                    }
                }
                self.remove(&instance.id).await;
            }
        }
        Ok(inv)
    }

    fn reproduce_script(&self) -> Option<String> {
        Some(format!(
            "#!/bin/sh\n# Starts {target} as firehose-harness did and sends it this case's event.json.\n# Pass the same --env K=V as the run, if it had any.\nset -eu\ncase_dir=$(cd \"$(dirname \"$0\")\" && pwd)\nexec firehose-harness replay \"$case_dir\" --target {quoted}\n",
            target = self.described,
            quoted = super::http::shell_quote(&self.described),
        ))
    }

    fn pool_stats(&self) -> Option<PoolStats> {
        Some(self.stats().clone())
    }

    async fn shutdown(&self) {
        self.slots.close();
        self.remove_all().await;
        self.shim_guard
            .lock()
            .unwrap_or_else(|p| p.into_inner())
            .take();
    }
}

impl Drop for ImageTarget {
    /// A caller that never called `shutdown` (an early error) still leaves no container behind.
    /// testcontainers removes a dropped container from inside a runtime, so without one, make one.
    fn drop(&mut self) {
        let held: Vec<_> = self.containers.get_mut().drain().map(|(_, c)| c).collect();
        if held.is_empty() || tokio::runtime::Handle::try_current().is_ok() {
            return;
        }
        if let Ok(rt) = tokio::runtime::Builder::new_current_thread()
            .enable_all()
            .build()
        {
            rt.block_on(async {
                for c in held {
                    let _ = tokio::time::timeout(Duration::from_secs(10), c.rm()).await;
                }
            });
        } else {
            // No runtime can be had: leave them to the next run's reaper rather than panic.
            held.into_iter().for_each(std::mem::forget);
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn parses_references_as_docker_does() {
        let r =
            |s: &str| ImageRef::parse(s).map(|r| (r.name.clone(), r.tag.clone(), r.to_string()));
        assert_eq!(
            r("my-fn").unwrap(),
            ("my-fn".into(), "latest".into(), "my-fn:latest".into())
        );
        assert_eq!(r("my-fn:v2").unwrap().2, "my-fn:v2");
        assert_eq!(
            r("registry.local:5000/team/my-fn").unwrap().2,
            "registry.local:5000/team/my-fn:latest"
        );
        assert_eq!(r("registry.local:5000/team/my-fn:v2").unwrap().1, "v2");
        let digest = "public.ecr.aws/lambda/provided@sha256:0123abcd";
        assert_eq!(r(digest).unwrap().2, digest);
        assert!(ImageRef::parse("").is_err());
        assert!(ImageRef::parse("my fn").is_err());
        assert!(ImageRef::parse("my-fn:").is_err());
    }

    #[test]
    fn the_tail_keeps_what_came_after_a_mark() {
        let tail = LogTail::default();
        tail.push(b"before\n");
        let mark = tail.mark();
        tail.push(b"during\n");
        assert_eq!(tail.since(mark), "during\n");
        let big = vec![b'x'; LOG_KEEP];
        tail.push(&big);
        assert!(tail.since(mark).starts_with("[… earlier output not kept]"));
        assert_eq!(last_lines("a\n\nb\nc\n", 2), "b | c");
        assert_eq!(last_lines("", 2), "it printed nothing");
    }

    /// The CI failure this guards against: a contract violation answered at once, its output
    /// arriving through the engine a moment later, and the case saved without `logs.txt`.
    #[tokio::test]
    async fn logs_that_trail_the_answer_are_waited_for_until_the_report_line() {
        let tail = Arc::new(LogTail::default());
        let mark = tail.mark();
        tail.push(b"START RequestId: 1\n");
        let late = tail.clone();
        tokio::spawn(async move {
            tokio::time::sleep(Duration::from_millis(100)).await;
            late.push(b"END RequestId: 1\nREPORT RequestId: 1 Duration: 1 ms\n");
        });
        let text = tail.until_report(mark, Duration::from_secs(5)).await;
        assert!(text.is_some_and(|t| t.contains("START") && t.contains("REPORT")));
        // An image whose runtime writes no REPORT line is given up on after the wait.
        let quiet = LogTail::default();
        assert_eq!(quiet.until_report(0, Duration::from_millis(50)).await, None);
    }
}
