//! One execution environment: a function process and the Runtime API endpoint only it talks to.
//!
//! Each instance gets its own listener on 127.0.0.1 (port 0), as each Lambda execution environment
//! has its own Runtime API: that is how the emulator knows which process took which event, so a
//! timeout kills exactly the process that overran, and a crash fails exactly the event it held.
//! An exit watcher owns the child: when it dies, for whatever reason, every open reply slot is told
//! and the endpoint closes.

use std::sync::atomic::{AtomicBool, Ordering};
use std::sync::{Arc, Mutex, MutexGuard};
use std::time::{Duration, Instant, SystemTime, UNIX_EPOCH};

use axum::serve::ListenerExt;
use bytes::Bytes;
use tokio::sync::{Notify, watch};
use tokio_util::sync::CancellationToken;

use super::error::{EmulatorError, RuntimeApiError};
use super::function::{FunctionSpec, inherited_env};
use super::logs::Capture;
use super::process;
use super::queue::{Finished, Next, Pending, Reply, Slot};

/// Where an instance is in its start.
#[derive(Debug, Clone)]
pub enum Readiness {
    Starting,
    /// The runtime asked for its first event this long after being spawned.
    Ready(Duration),
    Failed(EmulatorError),
}

/// An event handed to the runtime by `/next`.
#[derive(Debug)]
pub struct Delivery {
    pub request_id: String,
    pub event: Bytes,
    pub deadline_ms: u64,
}

/// The state the instance's Runtime API handlers share with the pool.
pub struct Shared {
    pub arn: String,
    pub version: String,
    pub memory_mb: u64,
    pub pid: u32,
    status: process::ProcStatus,
    slot: Mutex<Slot>,
    wake: Notify,
    closed: CancellationToken,
    pub capture: Arc<Capture>,
    ready: watch::Sender<Readiness>,
    spawned: Instant,
    /// Set by the first invocation, which reports the init duration (as Lambda's first REPORT does).
    init_reported: AtomicBool,
    /// Set when the statistics have counted the init duration.
    init_counted: AtomicBool,
    /// Set when the harness killed the process (timeout, shutdown): not a crash.
    killed: AtomicBool,
    /// How the process ended, once it has.
    exit_status: std::sync::OnceLock<String>,
}

impl Shared {
    fn slot(&self) -> MutexGuard<'_, Slot> {
        self.slot.lock().unwrap_or_else(|p| p.into_inner())
    }

    /// `GET /next`: the next event, waiting for one as long as the instance lives.
    pub async fn next(&self) -> Result<Delivery, RuntimeApiError> {
        loop {
            let woken = self.wake.notified();
            let (step, first) = self.slot().poll_next();
            if first {
                let init = self.spawned.elapsed();
                self.ready.send_if_modified(|r| match r {
                    Readiness::Starting => {
                        *r = Readiness::Ready(init);
                        true
                    }
                    _ => false,
                });
            }
            match step {
                Next::Deliver {
                    request_id,
                    event,
                    deadline_ms,
                } => {
                    self.capture.drain().log.push_str(&format!(
                        "START RequestId: {request_id} Version: {}\n",
                        self.version
                    ));
                    return Ok(Delivery {
                        request_id,
                        event,
                        deadline_ms,
                    });
                }
                Next::Reject(e) => {
                    return Err(self.broke(
                        e,
                        "asked for another event (GET /next) before answering the one it had",
                    ));
                }
                Next::Wait => {}
            }
            tokio::select! {
                _ = woken => {}
                _ = self.closed.cancelled() => return Err(RuntimeApiError::InvalidStateTransition),
            }
        }
    }

    /// The runtime broke the protocol: fail the invocation it held with `error` (so the batch it
    /// was given, not the next one, carries the failure), take it out of service and end it. Its
    /// process would otherwise be handed the next event, and a runtime that got a 4xx often exits.
    /// Returns `error` for the HTTP answer.
    pub fn broke(&self, error: RuntimeApiError, what: &str) -> RuntimeApiError {
        let open = self.slot().broke();
        let failure = EmulatorError::Protocol(format!(
            "{what}: {} {}",
            error.status().as_u16(),
            error.error_type()
        ));
        self.ready.send_if_modified(|r| match r {
            Readiness::Starting => {
                *r = Readiness::Failed(failure.clone());
                true
            }
            _ => false,
        });
        for (slot, delivered) in open {
            let _ = slot.send(Finished {
                reply: Reply::Rejected {
                    error,
                    what: what.to_string(),
                },
                ran: delivered.map(|d| d.elapsed()),
            });
        }
        self.killed.store(true, Ordering::SeqCst);
        process::kill_group(self.pid);
        error
    }

    /// `POST /{id}/response` and `/{id}/error`.
    pub fn answer(&self, request_id: &str, reply: Reply) -> Result<(), RuntimeApiError> {
        let answered = self.slot().answer(request_id);
        let (slot, delivered) = answered.map_err(|e| {
            let what = match e {
                RuntimeApiError::InvalidRequestId => {
                    format!("answered request id {request_id:?}, which it does not hold (or answered twice)")
                }
                _ => format!("answered request id {request_id:?} without holding an event"),
            };
            self.broke(e, &what)
        })?;
        // The invoker may have given up (timeout) a moment ago: nothing left to tell.
        let _ = slot.send(Finished {
            reply,
            ran: Some(delivered.elapsed()),
        });
        Ok(())
    }

    /// `POST /init/error`.
    pub fn init_error(&self, reply: Reply) -> Result<(), RuntimeApiError> {
        let waiting = self.slot().init_error();
        let waiting = waiting.map_err(|e| {
            self.broke(
                e,
                "reported an init error (POST /init/error) after its init",
            )
        })?;
        if let Reply::InitError(report) = &reply {
            // One line for the command's error; the whole report is in the function's log.
            let first_line = report
                .message
                .as_deref()
                .and_then(|m| m.lines().find(|l| !l.trim().is_empty()))
                .unwrap_or("")
                .trim()
                .to_string();
            let failure = EmulatorError::InitFailed {
                error_type: report.error_type.clone(),
                message: first_line,
            };
            self.ready.send_replace(Readiness::Failed(failure));
        }
        if let Some(p) = waiting {
            let _ = p.reply.send(Finished { reply, ran: None });
        }
        Ok(())
    }
}

/// A running function process with its Runtime API endpoint.
pub struct Instance {
    pub id: u64,
    pub shared: Arc<Shared>,
}

impl Instance {
    /// Start the function with its endpoint; returns once the process exists (not once it is ready:
    /// see [`Instance::ready`]).
    pub async fn spawn(spec: &FunctionSpec, id: u64) -> Result<Instance, EmulatorError> {
        let listener = tokio::net::TcpListener::bind("127.0.0.1:0")
            .await
            .map_err(|e| EmulatorError::Socket(e.to_string()))?;
        let addr = listener
            .local_addr()
            .map_err(|e| EmulatorError::Socket(e.to_string()))?;
        let env = spec.env_for(
            inherited_env(std::env::vars_os()),
            &addr.to_string(),
            &log_stream(id),
        );
        let mut cmd = process::command(
            spec.command.argv(),
            env,
            spec.cwd.as_deref(),
            std::process::Stdio::null(),
        );
        let spawned = Instant::now();
        let mut child = cmd
            .spawn()
            .map_err(|e| EmulatorError::Spawn(process::spawn_error(spec.command.program(), &e)))?;
        drop(cmd);
        let pid = child.id().unwrap_or(0);
        let (Some(stdout), Some(stderr)) = (child.stdout.take(), child.stderr.take()) else {
            process::kill_group(pid);
            return Err(EmulatorError::Spawn(
                "the function's output could not be captured".into(),
            ));
        };
        let capture = match Capture::start(stdout, stderr) {
            Ok(c) => c,
            Err(e) => {
                process::kill_group(pid);
                return Err(EmulatorError::Spawn(format!(
                    "the function's output could not be captured: {e}"
                )));
            }
        };
        let shared = Arc::new(Shared {
            arn: spec.arn(),
            version: spec.version(),
            memory_mb: spec.memory_mb(),
            pid,
            status: process::ProcStatus::open(pid),
            slot: Mutex::new(Slot::default()),
            wake: Notify::new(),
            closed: CancellationToken::new(),
            capture,
            ready: watch::Sender::new(Readiness::Starting),
            spawned,
            init_reported: AtomicBool::new(false),
            init_counted: AtomicBool::new(false),
            killed: AtomicBool::new(false),
            exit_status: std::sync::OnceLock::new(),
        });
        let router = super::runtime_api::router(shared.clone());
        let closed = shared.closed.clone();
        let listener = listener.tap_io(|tcp| {
            let _ = tcp.set_nodelay(true);
        });
        tokio::spawn(async move {
            let _ = axum::serve(listener, router)
                .with_graceful_shutdown(closed.cancelled_owned())
                .await;
        });
        tokio::spawn(watch_exit(shared.clone(), child));
        Ok(Instance { id, shared })
    }

    /// Wait until the runtime asks for its first event (its init duration), fails to initialise,
    /// or `limit` passes.
    pub async fn ready(&self, limit: Duration) -> Result<Duration, EmulatorError> {
        let mut rx = self.shared.ready.subscribe();
        let wait = rx.wait_for(|r| !matches!(r, Readiness::Starting));
        match tokio::time::timeout(limit, wait).await {
            Err(_) => Err(EmulatorError::InitTimeout(limit)),
            Ok(Err(_)) => Err(EmulatorError::ShutDown),
            Ok(Ok(r)) => match &*r {
                Readiness::Ready(d) => Ok(*d),
                Readiness::Failed(e) => Err(e.clone()),
                Readiness::Starting => unreachable!("waited for a change"),
            },
        }
    }

    /// The init duration, once: for the first invocation this instance serves.
    pub fn take_init_duration(&self) -> Option<Duration> {
        let init = match &*self.shared.ready.borrow() {
            Readiness::Ready(d) => *d,
            _ => return None,
        };
        (!self.shared.init_reported.swap(true, Ordering::SeqCst)).then_some(init)
    }

    /// True once: whether the caller should count this instance's init duration.
    pub fn count_init(&self) -> bool {
        !self.shared.init_counted.swap(true, Ordering::SeqCst)
    }

    /// How long the invocation in flight has run, if one is.
    pub fn ran_so_far(&self) -> Option<Duration> {
        self.shared.slot().delivered_at().map(|d| d.elapsed())
    }

    /// How the process ended (`exit status 1`, `signal: SIGSEGV`).
    pub fn exit_status(&self) -> String {
        self.shared
            .exit_status
            .get()
            .cloned()
            .unwrap_or_else(|| "an unknown status".into())
    }

    /// Hand the instance an event; it comes back if the instance is gone.
    pub fn dispatch(&self, pending: Pending) -> Result<(), Pending> {
        self.shared.slot().dispatch(pending)?;
        self.shared.wake.notify_one();
        Ok(())
    }

    /// Whether the runtime broke the protocol (it was ended for that, not by a crash).
    pub fn is_broken(&self) -> bool {
        self.shared.slot().is_broken()
    }

    /// Whether the runtime has not yet asked for its first event.
    pub fn initialising(&self) -> bool {
        self.shared.slot().initialising()
    }

    pub fn is_dead(&self) -> bool {
        self.shared.closed.is_cancelled() || self.shared.slot().is_dead()
    }

    /// Kill the process group now (timeout, shutdown). Its watcher reports the exit.
    pub fn kill(&self) {
        self.shared.killed.store(true, Ordering::SeqCst);
        process::kill_group(self.shared.pid);
    }

    pub fn was_killed(&self) -> bool {
        self.shared.killed.load(Ordering::SeqCst)
    }

    /// Lambda's `END` and `REPORT` lines after whatever the function printed, and the log taken.
    pub fn finish_log(
        &self,
        request_id: &str,
        note: Option<&str>,
        ran: Option<Duration>,
        init: Option<Duration>,
    ) -> String {
        let memory = self.shared.status.max_memory_mb();
        let mut state = self.shared.capture.drain();
        if let Some(note) = note {
            state.log.push_str(note);
            state.log.push_str("\n");
        }
        let ran_ms = ran.unwrap_or_default().as_secs_f64() * 1000.0;
        let mut report = format!(
            "END RequestId: {request_id}\nREPORT RequestId: {request_id}\tDuration: {ran_ms:.2} ms\tBilled Duration: {} ms\tMemory Size: {} MB",
            ran_ms.ceil() as u64,
            self.shared.memory_mb,
        );
        if let Some(mb) = memory {
            report.push_str(&format!("\tMax Memory Used: {mb} MB"));
        }
        if let Some(init) = init {
            report.push_str(&format!(
                "\tInit Duration: {:.2} ms",
                init.as_secs_f64() * 1000.0
            ));
        }
        report.push('\n');
        state.log.push_str(&report);
        std::mem::take(&mut state.log).render()
    }

    /// What the function wrote during this invocation so far (capped head and tail), left in
    /// place for its log.
    pub fn log_so_far(&self) -> String {
        self.shared.capture.drain().log.render()
    }

    /// The last bytes the function wrote to stderr (after reading what is left in the pipe).
    pub fn stderr_tail(&self) -> String {
        self.shared.capture.drain().stderr_tail()
    }
}

impl Drop for Instance {
    /// An instance dropped without a shutdown (a panic, an early return) must not leave its process
    /// group behind.
    fn drop(&mut self) {
        self.kill();
        self.shared.closed.cancel();
    }
}

/// A log stream name in Lambda's format: `2024/05/01/[$LATEST]` and a hex id.
fn log_stream(id: u64) -> String {
    let now = SystemTime::now()
        .duration_since(UNIX_EPOCH)
        .unwrap_or_default();
    let days = now.as_secs() / 86_400;
    let (y, m, d) = civil_from_days(days as i64);
    format!(
        "{y:04}/{m:02}/{d:02}/[$LATEST]{:016x}{:016x}",
        std::process::id(),
        id ^ now.as_nanos() as u64
    )
}

/// Days since 1970-01-01 → (year, month, day), Howard Hinnant's algorithm.
fn civil_from_days(z: i64) -> (i64, u32, u32) {
    let z = z + 719_468;
    let era = z.div_euclid(146_097);
    let doe = z.rem_euclid(146_097);
    let yoe = (doe - doe / 1460 + doe / 36_524 - doe / 146_096) / 365;
    let doy = doe - (365 * yoe + yoe / 4 - yoe / 100);
    let mp = (5 * doy + 2) / 153;
    let d = (doy - (153 * mp + 2) / 5 + 1) as u32;
    let m = if mp < 10 { mp + 3 } else { mp - 9 } as u32;
    let y = yoe + era * 400 + i64::from(m <= 2);
    (y, m, d)
}

/// Own the child until it dies; then tell every open reply slot, fail a start still under way, and
/// close the endpoint.
async fn watch_exit(shared: Arc<Shared>, mut child: tokio::process::Child) {
    let status = match child.wait().await {
        Ok(s) => process::describe_exit(s),
        Err(e) => format!("an unknown status ({e})"),
    };
    let _ = shared.exit_status.set(status.clone());
    // Whatever the runtime forked dies with it, and its pipes close.
    process::kill_group(shared.pid);
    for (slot, delivered) in shared.slot().exited() {
        let _ = slot.send(Finished {
            reply: Reply::Exited {
                status: status.clone(),
            },
            ran: delivered.map(|d| d.elapsed()),
        });
    }
    let stderr = shared.capture.drain().stderr_tail();
    shared.ready.send_if_modified(|r| match r {
        Readiness::Starting => {
            *r = Readiness::Failed(EmulatorError::InitExited {
                status: status.clone(),
                stderr,
            });
            true
        }
        _ => false,
    });
    shared.closed.cancel();
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn civil_dates() {
        assert_eq!(civil_from_days(0), (1970, 1, 1));
        assert_eq!(civil_from_days(19_844), (2024, 5, 1));
        assert_eq!(civil_from_days(11_016), (2000, 2, 29));
    }

    #[test]
    fn log_streams_look_like_lambdas() {
        let s = log_stream(3);
        assert_eq!(s.len(), "2024/05/01/[$LATEST]".len() + 32, "{s}");
        assert!(s[10..].starts_with("/[$LATEST]"), "{s}");
    }
}
