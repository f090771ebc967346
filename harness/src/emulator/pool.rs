//! The pool of function instances, run like Lambda runs an on-demand function: at most `limit`
//! instances, each serving one invocation at a time; a new one starts (a cold start) only when
//! every running one is busy; an instance that timed out or crashed is thrown away and the next
//! invocation gets a fresh one.
//!
//! Time is kept as Lambda keeps it. Waiting for a free instance is *queue wait*: reported on the
//! invocation, part of the caller's response time, never the function's — a queued invocation
//! cannot time out and never costs an instance its life. Starting an instance has its own budget
//! (`--init-timeout`, Lambda's 10 s). The function's `--timeout` starts when `/next` hands it the
//! event. Beyond the limit, invocations queue (FIFO, optionally bounded by `--max-queue`) or, with
//! `--throttle`, are refused at once with Lambda's 429 `TooManyRequestsException`.
//!
//! The policies are small and unit-tested below with tokio's paused clock: [`PoolState`] (which
//! instance, cold starts), [`QueuePolicy`] and [`Gate`] (queue or throttle, queue wait) and
//! [`wait_for_answer`] (init budget, then the function's timeout from delivery). [`Emulator`] drives
//! them.

use std::collections::HashMap;
use std::sync::atomic::{AtomicU64, Ordering};
use std::sync::{Arc, Mutex, MutexGuard};
use std::time::{Duration, Instant};

use std::sync::atomic::AtomicUsize;

use bytes::Bytes;
use tokio::sync::{Semaphore, SemaphorePermit, TryAcquireError, oneshot};

use super::error::EmulatorError;
use super::exception;
use super::function::FunctionSpec;
use super::ids;
use super::instance::Instance;
use super::queue::{ErrorReport, Finished, Pending, Reply};
use crate::invocation::{FunctionError, Invocation};

/// Lambda's limit on a function's init phase: a started instance that has not asked for an event
/// by then is a failed start.
pub const INIT_LIMIT: Duration = Duration::from_secs(10);

/// What a report or the load engine shows about the instances behind a target.
#[derive(Debug, Clone, Default, PartialEq, Eq)]
pub struct PoolStats {
    /// `--instances`: how many may run at once.
    pub limit: usize,
    /// Instances started (each one a cold start).
    pub cold_starts: u64,
    /// Instances alive now, busy or idle.
    pub running: usize,
    /// Instances serving an invocation now.
    pub busy: usize,
    /// The most instances ever busy at once.
    pub peak_busy: usize,
    /// Instances that died on their own (crash, init error).
    pub crashes: u64,
    /// Instances killed because an invocation overran its deadline.
    pub timeouts: u64,
    /// Instances retired because the runtime broke the protocol or had an answer refused (a
    /// response over 6 MB).
    pub rejected: u64,
    /// Invocations refused for lack of a free instance (`--throttle`, `--max-queue`).
    pub throttles: u64,
    /// Init durations seen, their sum and the longest.
    pub inits: u64,
    pub init_total: Duration,
    pub init_max: Duration,
}

impl PoolStats {
    pub fn init_mean(&self) -> Option<Duration> {
        (self.inits > 0).then(|| self.init_total / self.inits as u32)
    }

    /// One line for a report: "instances: 2 cold starts (init 140 ms mean, 180 ms max), at most
    /// 1 of 1 busy at once, 1 killed after a timeout".
    pub fn summary(&self) -> String {
        let mut s = format!(
            "instances: {} cold start{}",
            self.cold_starts,
            if self.cold_starts == 1 { "" } else { "s" }
        );
        if let Some(mean) = self.init_mean() {
            s.push_str(&format!(
                " (init {:.0} ms mean, {:.0} ms max)",
                mean.as_secs_f64() * 1000.0,
                self.init_max.as_secs_f64() * 1000.0
            ));
        }
        s.push_str(&format!(
            ", at most {} of {} busy at once",
            self.peak_busy, self.limit
        ));
        if self.timeouts > 0 {
            s.push_str(&format!(", {} killed after a timeout", self.timeouts));
        }
        if self.crashes > 0 {
            s.push_str(&format!(", {} crashed", self.crashes));
        }
        if self.rejected > 0 {
            s.push_str(&format!(
                ", {} retired after a refused answer or a protocol error",
                self.rejected
            ));
        }
        if self.throttles > 0 {
            s.push_str(&format!(
                ", {} invocation{} throttled",
                self.throttles,
                if self.throttles == 1 { "" } else { "s" }
            ));
        }
        s
    }
}

/// What a free permit should run on.
#[derive(Debug, PartialEq, Eq)]
pub enum Checkout {
    /// An idle, warm instance.
    Reuse(u64),
    /// None is idle: start one.
    Start,
}

/// Why an instance leaves the pool.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Retire {
    Crash,
    Timeout,
    /// The runtime broke the protocol, or its answer was refused (413).
    Rejected,
    /// Killed by shutdown, or never started.
    Quiet,
}

/// The pool's bookkeeping. Callers hold a semaphore permit per checkout, so at most `limit`
/// instances are ever busy, and since one starts only when none is idle, at most `limit` run.
#[derive(Debug)]
pub struct PoolState {
    idle: Vec<u64>,
    stats: PoolStats,
}

impl PoolState {
    pub fn new(limit: usize) -> Self {
        PoolState {
            idle: Vec::new(),
            stats: PoolStats {
                limit,
                ..PoolStats::default()
            },
        }
    }

    /// The most recently used idle instance (the warmest), or a start.
    pub fn checkout(&mut self) -> Checkout {
        self.stats.busy += 1;
        self.stats.peak_busy = self.stats.peak_busy.max(self.stats.busy);
        match self.idle.pop() {
            Some(id) => Checkout::Reuse(id),
            None => {
                self.stats.running += 1;
                Checkout::Start
            }
        }
    }

    /// The start a [`Checkout::Start`] asked for happened.
    pub fn started(&mut self) {
        self.stats.cold_starts += 1;
    }

    pub fn initialised(&mut self, init: Duration) {
        self.stats.inits += 1;
        self.stats.init_total += init;
        self.stats.init_max = self.stats.init_max.max(init);
    }

    /// The invocation is done and the instance lives: it is idle again.
    pub fn checkin(&mut self, id: u64) {
        self.stats.busy -= 1;
        self.idle.push(id);
    }

    /// The checked-out instance is gone (or never started).
    pub fn retire(&mut self, why: Retire) {
        self.stats.busy -= 1;
        self.stats.running -= 1;
        match why {
            Retire::Crash => self.stats.crashes += 1,
            Retire::Timeout => self.stats.timeouts += 1,
            Retire::Rejected => self.stats.rejected += 1,
            Retire::Quiet => {}
        }
    }

    pub fn throttled(&mut self) {
        self.stats.throttles += 1;
    }

    pub fn stats(&self) -> PoolStats {
        self.stats.clone()
    }
}

/// What an invocation does when every instance is busy.
#[derive(Debug, Clone, Copy, Default, PartialEq, Eq)]
pub struct QueuePolicy {
    /// Refuse it at once with a 429, as Lambda throttles synchronous invocations beyond its
    /// concurrency (`--throttle`).
    pub throttle: bool,
    /// At most this many invocations wait; more are throttled (`--max-queue`). `None`: no bound,
    /// the way Firehose's retries would absorb a throttle.
    pub max_queue: Option<usize>,
}

/// An arriving invocation's fate.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Admit {
    Run,
    Wait,
    Throttle,
}

impl QueuePolicy {
    /// `free`: an instance can take it now; `waiting`: invocations already queued.
    pub fn admit(&self, free: bool, waiting: usize) -> Admit {
        if free {
            Admit::Run
        } else if self.throttle || self.max_queue.is_some_and(|max| waiting >= max) {
            Admit::Throttle
        } else {
            Admit::Wait
        }
    }
}

/// The pool's door: `limit` invocations at a time, the rest queued in arrival order or throttled
/// as the [`QueuePolicy`] says.
pub struct Gate {
    permits: Semaphore,
    waiting: AtomicUsize,
    policy: QueuePolicy,
}

/// How an invocation got through the [`Gate`].
#[derive(Debug)]
pub enum Entry<'a> {
    /// It may run; it waited this long for an instance.
    Admitted {
        permit: SemaphorePermit<'a>,
        queue_wait: Duration,
    },
    /// Refused: every instance was busy and the queue (if any) full.
    Throttled,
    /// The emulator is shutting down.
    Closed,
}

/// Takes a queued invocation out of the count however its wait ends (admitted or cancelled).
struct Waiting<'a>(&'a AtomicUsize);

impl Drop for Waiting<'_> {
    fn drop(&mut self) {
        self.0.fetch_sub(1, Ordering::SeqCst);
    }
}

impl Gate {
    pub fn new(limit: usize, policy: QueuePolicy) -> Self {
        Gate {
            permits: Semaphore::new(limit),
            waiting: AtomicUsize::new(0),
            policy,
        }
    }

    /// Wait for a free instance (or be throttled). The semaphore is FIFO, so the queue is too.
    pub async fn enter(&self) -> Entry<'_> {
        let arrived = tokio::time::Instant::now();
        let free = match self.permits.try_acquire() {
            Ok(permit) => {
                return Entry::Admitted {
                    permit,
                    queue_wait: Duration::ZERO,
                };
            }
            Err(TryAcquireError::Closed) => return Entry::Closed,
            Err(TryAcquireError::NoPermits) => false,
        };
        let waiting = self.waiting.fetch_add(1, Ordering::SeqCst);
        let _counted = Waiting(&self.waiting);
        match self.policy.admit(free, waiting) {
            Admit::Throttle => return Entry::Throttled,
            Admit::Run | Admit::Wait => {}
        }
        match self.permits.acquire().await {
            Ok(permit) => Entry::Admitted {
                permit,
                queue_wait: arrived.elapsed(),
            },
            Err(_) => Entry::Closed,
        }
    }

    /// Invocations waiting now.
    pub fn waiting(&self) -> usize {
        self.waiting.load(Ordering::SeqCst)
    }

    fn close(&self) {
        self.permits.close();
    }
}

/// How waiting for an instance's answer ended.
#[derive(Debug)]
pub enum Waited {
    /// The instance answered, failed or died (`None`: the reply slot was dropped unanswered).
    Finished(Option<Finished>),
    /// The runtime did not ask for the event within the init budget (a cold start that overran
    /// `--init-timeout`, or a warm runtime that never came back to `/next`).
    NotTaken,
    /// The function had the event for its whole `timeout` without answering.
    TimedOut,
}

/// Wait for the answer to an event just dispatched: first for the runtime to take it (at most
/// `init_budget`: a cold start's init is not the function's time), then at most `timeout` from the
/// moment it was delivered — the function's own clock, as Lambda runs it.
pub async fn wait_for_answer(
    delivered: oneshot::Receiver<tokio::time::Instant>,
    mut reply: oneshot::Receiver<Finished>,
    init_budget: Duration,
    timeout: Duration,
) -> Waited {
    let not_taken = tokio::time::sleep(init_budget);
    tokio::pin!(not_taken);
    let taken_at = tokio::select! {
        biased;
        r = &mut reply => return Waited::Finished(r.ok()),
        d = delivered => d.ok(),
        _ = &mut not_taken => return Waited::NotTaken,
    };
    let Some(taken_at) = taken_at else {
        // The event was dropped undelivered: the instance died, and its reply slot says how.
        return tokio::select! {
            r = &mut reply => Waited::Finished(r.ok()),
            _ = not_taken => Waited::NotTaken,
        };
    };
    match tokio::time::timeout_at(taken_at + timeout, reply).await {
        Ok(r) => Waited::Finished(r.ok()),
        Err(_) => Waited::TimedOut,
    }
}

/// The pool settings a command line can change, besides `--instances`.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub struct PoolOptions {
    /// `--init-timeout`: the budget of a cold start's init.
    pub init_limit: Duration,
    pub queue: QueuePolicy,
}

impl Default for PoolOptions {
    fn default() -> Self {
        PoolOptions {
            init_limit: INIT_LIMIT,
            queue: QueuePolicy::default(),
        }
    }
}

/// How the emulator runs a function.
#[derive(Debug, Clone)]
pub struct EmulatorConfig {
    /// How many instances may run at once.
    pub instances: usize,
    /// The longest a starting instance may take to ask for its first event (`--init-timeout`),
    /// apart from the function's timeout.
    pub init_limit: Duration,
    /// What invocations do when every instance is busy.
    pub queue: QueuePolicy,
}

impl Default for EmulatorConfig {
    fn default() -> Self {
        EmulatorConfig {
            instances: 1,
            init_limit: INIT_LIMIT,
            queue: QueuePolicy::default(),
        }
    }
}

/// A Lambda function run locally: the pool of its instances behind one `invoke`.
pub struct Emulator {
    spec: FunctionSpec,
    config: EmulatorConfig,
    gate: Gate,
    state: Mutex<PoolState>,
    instances: Mutex<HashMap<u64, Arc<Instance>>>,
    next_id: AtomicU64,
}

impl Emulator {
    pub fn new(spec: FunctionSpec, config: EmulatorConfig) -> Self {
        let limit = config.instances.max(1);
        Emulator {
            spec,
            gate: Gate::new(limit, config.queue),
            state: Mutex::new(PoolState::new(limit)),
            instances: Mutex::new(HashMap::new()),
            next_id: AtomicU64::new(1),
            config,
        }
    }

    pub fn spec(&self) -> &FunctionSpec {
        &self.spec
    }

    fn state(&self) -> MutexGuard<'_, PoolState> {
        self.state.lock().unwrap_or_else(|p| p.into_inner())
    }

    fn instances(&self) -> MutexGuard<'_, HashMap<u64, Arc<Instance>>> {
        self.instances.lock().unwrap_or_else(|p| p.into_inner())
    }

    pub fn stats(&self) -> PoolStats {
        self.state().stats()
    }

    /// Start one instance and wait until it is ready, so a command that cannot run, or a function
    /// that fails to initialise, is reported before any event is sent.
    pub async fn warm(&self) -> Result<(), EmulatorError> {
        let _permit = match self.gate.enter().await {
            Entry::Admitted { permit, .. } => permit,
            // The prewarm runs before any invocation, so it is never throttled.
            Entry::Throttled | Entry::Closed => return Err(EmulatorError::ShutDown),
        };
        let instance = self.checkout().await?;
        match instance.ready(self.config.init_limit).await {
            Ok(init) => {
                if instance.count_init() {
                    self.state().initialised(init);
                }
                self.state().checkin(instance.id);
                Ok(())
            }
            Err(e) => {
                instance.kill();
                self.retire(&instance, Retire::Crash);
                Err(e)
            }
        }
    }

    /// A warm idle instance, or a freshly started one. Dead idle instances are retired on the way.
    async fn checkout(&self) -> Result<Arc<Instance>, EmulatorError> {
        loop {
            let choice = self.state().checkout();
            match choice {
                Checkout::Reuse(id) => {
                    let found = self.instances().get(&id).cloned();
                    match found {
                        Some(i) if !i.is_dead() => return Ok(i),
                        Some(i) if i.is_broken() => self.retire(&i, Retire::Rejected),
                        Some(i) => self.retire(&i, Retire::Crash),
                        None => self.state().retire(Retire::Quiet),
                    }
                }
                Checkout::Start => {
                    let id = self.next_id.fetch_add(1, Ordering::Relaxed);
                    match Instance::spawn(&self.spec, id).await {
                        Ok(instance) => {
                            let instance = Arc::new(instance);
                            self.instances().insert(id, instance.clone());
                            self.state().started();
                            return Ok(instance);
                        }
                        Err(e) => {
                            self.state().retire(Retire::Quiet);
                            return Err(e);
                        }
                    }
                }
            }
        }
    }

    fn retire(&self, instance: &Instance, why: Retire) {
        self.instances().remove(&instance.id);
        self.state().retire(why);
    }

    /// Run one invocation: queue for a free instance (or be throttled), start one if needed,
    /// deliver, and wait for the answer — `timeout` from the moment the function has the event.
    /// `Err` only when the function could not be started at all.
    pub async fn invoke(
        &self,
        event: Bytes,
        timeout: Duration,
    ) -> Result<Invocation, EmulatorError> {
        let start = Instant::now();
        let (_permit, queue_wait) = match self.gate.enter().await {
            Entry::Admitted { permit, queue_wait } => (permit, queue_wait),
            Entry::Throttled => {
                self.state().throttled();
                return Ok(throttled(start, self.config.instances, self.gate.waiting()));
            }
            Entry::Closed => return Err(EmulatorError::ShutDown),
        };
        let mut inv = self.run(event, timeout, start).await?;
        inv.queue_wait = Some(queue_wait);
        Ok(inv)
    }

    /// The part of [`Emulator::invoke`] that holds an instance.
    async fn run(
        &self,
        event: Bytes,
        timeout: Duration,
        start: Instant,
    ) -> Result<Invocation, EmulatorError> {
        let instance = self.checkout().await?;
        let request_id = ids::request_id();
        let (tx, rx) = oneshot::channel();
        let (told, delivered) = oneshot::channel();
        let pending = Pending {
            request_id: request_id.clone(),
            event,
            timeout,
            reply: tx,
            delivered: Some(told),
        };
        let waited = match instance.dispatch(pending) {
            Ok(()) => wait_for_answer(delivered, rx, self.config.init_limit, timeout).await,
            // Only a process that died a moment ago refuses an event.
            Err(_) => Waited::Finished(None),
        };
        let finished = match waited {
            Waited::Finished(f) => f,
            Waited::TimedOut => {
                // Over the deadline: the process that overran goes, as Lambda would end it.
                let ran = instance.ran_so_far();
                instance.kill();
                let mut inv = timed_out(ran, timeout, &request_id);
                let note = format!(
                    "{request_id} Task timed out after {:.2} seconds",
                    timeout.as_secs_f64()
                );
                inv.init_duration = self.take_init(&instance);
                inv.logs = Some(instance.finish_log(
                    &request_id,
                    Some(note.as_str()),
                    ran,
                    inv.init_duration,
                ));
                self.retire(&instance, Retire::Timeout);
                return Ok(inv);
            }
            Waited::NotTaken => {
                let cold = instance.initialising();
                instance.kill();
                let limit = self.config.init_limit.as_secs_f64();
                let message = if cold {
                    format!(
                        "RequestId: {request_id} Error: the function did not finish its init within {limit:.2} seconds (--init-timeout)"
                    )
                } else {
                    format!(
                        "RequestId: {request_id} Error: the runtime did not ask for the event (GET /next) within {limit:.2} seconds"
                    )
                };
                let mut inv = Invocation::answered(
                    None,
                    error_body("Sandbox.Timedout", &message),
                    start.elapsed(),
                );
                inv.function_error = Some(FunctionError {
                    kind: "Sandbox.Timedout".into(),
                    message: Some(message.clone()),
                });
                let note = cold.then(|| {
                    format!(
                        "INIT_REPORT Init Duration: {:.2} ms\tPhase: init\tStatus: timeout",
                        limit * 1000.0
                    )
                });
                inv.logs = Some(instance.finish_log(&request_id, note.as_deref(), None, None));
                self.retire(&instance, Retire::Timeout);
                return Ok(inv);
            }
        };
        let finished = finished.unwrap_or_else(|| Finished {
            reply: Reply::Exited {
                status: instance.exit_status(),
            },
            ran: None,
        });
        let (mut inv, fate, note) = conclude(&instance, &request_id, finished.reply, start);
        inv.init_duration = self.take_init(&instance);
        inv.logs = Some(instance.finish_log(
            &request_id,
            note.as_deref(),
            finished.ran,
            inv.init_duration,
        ));
        match fate {
            None => self.state().checkin(instance.id),
            Some(why) => {
                instance.kill();
                self.retire(&instance, why);
            }
        }
        Ok(inv)
    }

    /// The init duration for the first invocation an instance serves, counted in the statistics.
    fn take_init(&self, instance: &Instance) -> Option<Duration> {
        let init = instance.take_init_duration()?;
        if instance.count_init() {
            self.state().initialised(init);
        }
        Some(init)
    }

    /// Stop taking invocations and kill every instance; invocations in flight end at once.
    pub async fn shutdown(&self) {
        self.gate.close();
        let all: Vec<_> = self.instances().drain().map(|(_, i)| i).collect();
        for instance in all {
            instance.kill();
        }
    }
}

impl Drop for Emulator {
    fn drop(&mut self) {
        for instance in self.instances().values() {
            instance.kill();
        }
    }
}

/// The body the Invoke API returns for a failure the function did not report itself.
pub fn error_body(error_type: &str, message: &str) -> Bytes {
    Bytes::from(serde_json::json!({"errorType": error_type, "errorMessage": message}).to_string())
}

/// Lambda's answer to an invocation beyond its concurrency: HTTP 429 `TooManyRequestsException`.
pub fn throttle_body() -> Bytes {
    Bytes::from(
        serde_json::json!({
            "Reason": "ReservedFunctionConcurrentInvocationLimitExceeded",
            "Type": "User",
            "message": "Rate Exceeded.",
        })
        .to_string(),
    )
}

/// An invocation refused at the door: the function never saw it.
fn throttled(start: Instant, instances: usize, waiting: usize) -> Invocation {
    let mut inv = Invocation::answered(Some(429), throttle_body(), start.elapsed());
    inv.throttled = true;
    inv.logs = Some(format!(
        "throttled (429 TooManyRequestsException): all {instances} instance{} busy (--instances), {waiting} invocation{} queued\n",
        if instances == 1 { " was" } else { "s were" },
        if waiting == 1 { "" } else { "s" },
    ));
    inv
}

/// An invocation the function had for its whole `timeout` (`ran`, when known) without answering.
/// Its `elapsed` is the function's own time, which the timeout judges — not the queue wait or the
/// cold start before it (those are `queue_wait` and `init_duration`).
fn timed_out(ran: Option<Duration>, timeout: Duration, request_id: &str) -> Invocation {
    let mut inv = Invocation::timed_out(ran.unwrap_or(timeout));
    let prefix = format!("RequestId: {request_id} Error: ");
    inv.body = error_body(
        "Sandbox.Timedout",
        &format!(
            "{prefix}Task timed out after {:.2} seconds",
            timeout.as_secs_f64()
        ),
    );
    inv
}

/// An invocation that ended in the error a runtime reported: `errorType` as the kind, and as the
/// message the line that names the exception (see [`exception`]), so violations and reports lead
/// with it; the whole post stays the body.
fn function_error(report: ErrorReport, elapsed: Duration, instance: &Instance) -> Invocation {
    let line = exception::from_report(&report.error_type, report.message.as_deref(), || {
        instance.log_so_far()
    });
    let mut inv = Invocation::answered(None, report.body, elapsed);
    inv.function_error = Some(FunctionError {
        kind: report.error_type,
        message: Some(line),
    });
    inv
}

/// The invocation an instance's reply makes, whether the instance must go, and a line for the log.
fn conclude(
    instance: &Instance,
    request_id: &str,
    reply: Reply,
    start: Instant,
) -> (Invocation, Option<Retire>, Option<String>) {
    let elapsed = start.elapsed();
    match reply {
        Reply::Response {
            body,
            size,
            truncated,
        } => {
            let note = (size > firehose_generators::wire::MAX_RESPONSE_BYTES).then(|| {
                format!(
                    "Response payload size ({size} bytes) exceeded maximum allowed payload size ({} bytes).",
                    firehose_generators::wire::MAX_RESPONSE_BYTES
                )
            });
            let mut inv = Invocation::answered(None, body, elapsed);
            inv.body_truncated = truncated;
            // The runtime was answered 413 and may well exit: it gets no further event. The body
            // stays on the invocation, so the contract fails `response_within_limit` for it.
            let fate = note.is_some().then_some(Retire::Rejected);
            (inv, fate, note)
        }
        Reply::Rejected { error, what } => {
            let reason = format!(
                "the runtime broke the Runtime API protocol: it {what} ({} {}); the instance was retired",
                error.status().as_u16(),
                error.error_type()
            );
            let note = format!("RequestId: {request_id} Error: {reason}");
            (
                Invocation::broken(reason, elapsed),
                Some(Retire::Rejected),
                Some(note),
            )
        }
        Reply::Error(report) => (function_error(report, elapsed, instance), None, None),
        Reply::InitError(report) => {
            let note = format!(
                "INIT_REPORT Status: error\tError Type: {}",
                report.error_type
            );
            (
                function_error(report, elapsed, instance),
                Some(Retire::Crash),
                Some(note),
            )
        }
        Reply::Exited { .. } if instance.was_killed() => {
            let inv = Invocation::broken("the emulator shut down during the invocation", elapsed);
            (inv, Some(Retire::Quiet), None)
        }
        Reply::Exited { status } => {
            let message =
                format!("RequestId: {request_id} Error: Runtime exited with error: {status}");
            let tail = instance.stderr_tail();
            let tail = tail.trim_end();
            // The line that names the crash first (violations clip long messages), then the rest.
            let full = match exception::from_output(&instance.log_so_far(), tail) {
                None => format!("Runtime exited with error: {status}"),
                Some(line) => format!(
                    "Runtime exited with error: {status}: {line}\nstderr (last lines):\n{tail}"
                ),
            };
            let mut inv =
                Invocation::answered(None, error_body("Runtime.ExitError", &message), elapsed);
            inv.function_error = Some(FunctionError {
                kind: "Runtime.ExitError".into(),
                message: Some(full),
            });
            (
                inv,
                Some(Retire::Crash),
                Some(format!("{message}\nRuntime.ExitError")),
            )
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn starts_only_when_none_is_idle_and_reuses_the_warmest() {
        let mut p = PoolState::new(3);
        assert_eq!(p.checkout(), Checkout::Start);
        p.started();
        assert_eq!(p.checkout(), Checkout::Start);
        p.started();
        p.checkin(1);
        p.checkin(2);
        assert_eq!(p.checkout(), Checkout::Reuse(2));
        let s = p.stats();
        assert_eq!(
            (s.cold_starts, s.running, s.busy, s.peak_busy),
            (2, 2, 1, 2)
        );
    }

    #[test]
    fn retired_instances_free_their_place_and_are_counted() {
        let mut p = PoolState::new(1);
        assert_eq!(p.checkout(), Checkout::Start);
        p.started();
        p.retire(Retire::Timeout);
        assert_eq!(
            p.checkout(),
            Checkout::Start,
            "a fresh instance after a timeout"
        );
        p.started();
        p.retire(Retire::Crash);
        let s = p.stats();
        assert_eq!(
            (s.cold_starts, s.running, s.busy, s.timeouts, s.crashes),
            (2, 0, 0, 1, 1)
        );
    }

    #[test]
    fn the_summary_reads_as_a_sentence() {
        let mut p = PoolState::new(2);
        assert_eq!(p.checkout(), Checkout::Start);
        p.started();
        p.initialised(Duration::from_millis(120));
        p.retire(Retire::Timeout);
        assert_eq!(
            p.stats().summary(),
            "instances: 1 cold start (init 120 ms mean, 120 ms max), at most 1 of 2 busy at once, 1 killed after a timeout"
        );
    }

    #[test]
    fn the_queue_policy_runs_queues_or_throttles() {
        let queue = QueuePolicy::default();
        assert_eq!(queue.admit(true, 0), Admit::Run);
        assert_eq!(queue.admit(false, 10_000), Admit::Wait, "unbounded");
        let bounded = QueuePolicy {
            throttle: false,
            max_queue: Some(2),
        };
        assert_eq!(bounded.admit(false, 1), Admit::Wait);
        assert_eq!(bounded.admit(false, 2), Admit::Throttle);
        let throttle = QueuePolicy {
            throttle: true,
            max_queue: None,
        };
        assert_eq!(throttle.admit(true, 0), Admit::Run);
        assert_eq!(throttle.admit(false, 0), Admit::Throttle);
    }

    /// Two callers behind one busy instance: each waits its turn, in order, and its wait is
    /// measured — however long it is, it is queue wait, not a timeout.
    #[tokio::test(start_paused = true)]
    async fn queued_invocations_wait_in_order_and_measure_their_wait() {
        let gate = std::sync::Arc::new(Gate::new(1, QueuePolicy::default()));
        let Entry::Admitted { permit, queue_wait } = gate.enter().await else {
            panic!("a free instance")
        };
        assert_eq!(queue_wait, Duration::ZERO);
        let (tx, mut rx) = tokio::sync::mpsc::unbounded_channel();
        for caller in 0..2 {
            let (gate, tx) = (gate.clone(), tx.clone());
            tokio::spawn(async move {
                if let Entry::Admitted { permit, queue_wait } = gate.enter().await {
                    tx.send((caller, queue_wait)).unwrap();
                    tokio::time::sleep(Duration::from_secs(3)).await;
                    drop(permit);
                }
            });
            tokio::task::yield_now().await;
        }
        assert_eq!(gate.waiting(), 2);
        tokio::time::sleep(Duration::from_secs(5)).await;
        drop(permit);
        assert_eq!(rx.recv().await, Some((0, Duration::from_secs(5))));
        assert_eq!(rx.recv().await, Some((1, Duration::from_secs(8))));
        assert_eq!(gate.waiting(), 0);
    }

    #[tokio::test(start_paused = true)]
    async fn a_full_queue_or_throttle_mode_refuses_at_once() {
        let bounded = QueuePolicy {
            throttle: false,
            max_queue: Some(1),
        };
        let gate = std::sync::Arc::new(Gate::new(1, bounded));
        let Entry::Admitted { permit, .. } = gate.enter().await else {
            panic!("a free instance")
        };
        let queued = tokio::spawn({
            let gate = gate.clone();
            async move { matches!(gate.enter().await, Entry::Admitted { .. }) }
        });
        tokio::task::yield_now().await;
        assert!(matches!(gate.enter().await, Entry::Throttled), "queue full");
        drop(permit);
        assert!(queued.await.unwrap(), "the queued one still runs");

        let throttle = Gate::new(
            1,
            QueuePolicy {
                throttle: true,
                max_queue: None,
            },
        );
        let Entry::Admitted { permit: _held, .. } = throttle.enter().await else {
            panic!("a free instance")
        };
        assert!(matches!(throttle.enter().await, Entry::Throttled));
        assert_eq!(
            throttle.waiting(),
            0,
            "a throttled call is not left counted"
        );
    }

    fn answer() -> Finished {
        Finished {
            reply: Reply::Response {
                body: Bytes::from_static(b"{}"),
                size: 2,
                truncated: false,
            },
            ran: None,
        }
    }

    /// An instance that takes the event after `init` and answers `ran` later, waited for with a
    /// 10 s init budget and a 1 s timeout.
    /// Wait with a 10 s init budget and a 1 s function timeout.
    async fn within_10s_init_1s_run(
        delivered: oneshot::Receiver<tokio::time::Instant>,
        rx: oneshot::Receiver<Finished>,
    ) -> Waited {
        wait_for_answer(
            delivered,
            rx,
            Duration::from_secs(10),
            Duration::from_secs(1),
        )
        .await
    }

    async fn wait_for(init: Duration, ran: Duration) -> Waited {
        let (told, delivered) = oneshot::channel();
        let (tx, rx) = oneshot::channel();
        tokio::spawn(async move {
            tokio::time::sleep(init).await;
            told.send(tokio::time::Instant::now()).unwrap();
            tokio::time::sleep(ran).await;
            let _ = tx.send(answer());
        });
        within_10s_init_1s_run(delivered, rx).await
    }

    /// A slow cold start (3 s of init) then a 0.9 s function, with a 1 s timeout: the function
    /// is within its time, because its clock starts at delivery.
    #[tokio::test(start_paused = true)]
    async fn the_timeout_runs_from_delivery_not_from_the_call() {
        let waited = wait_for(Duration::from_secs(3), Duration::from_millis(900)).await;
        assert!(matches!(waited, Waited::Finished(Some(_))), "{waited:?}");
    }

    #[tokio::test(start_paused = true)]
    async fn an_overrun_after_delivery_is_a_timeout_and_a_slow_init_is_not_taken() {
        let waited = wait_for(Duration::ZERO, Duration::from_millis(1100)).await;
        assert!(matches!(waited, Waited::TimedOut), "{waited:?}");

        // Never delivered within the init budget: not the function's timeout, the init's.
        let (_told, delivered) = oneshot::channel();
        let (_tx, rx) = oneshot::channel();
        let started = tokio::time::Instant::now();
        let waited = within_10s_init_1s_run(delivered, rx).await;
        assert!(matches!(waited, Waited::NotTaken), "{waited:?}");
        assert_eq!(started.elapsed(), Duration::from_secs(10));
    }

    #[tokio::test(start_paused = true)]
    async fn a_death_before_delivery_is_reported_not_waited_out() {
        let (told, delivered) = oneshot::channel::<tokio::time::Instant>();
        let (tx, rx) = oneshot::channel();
        drop(told);
        tx.send(Finished {
            reply: Reply::Exited {
                status: "exit status 1".into(),
            },
            ran: None,
        })
        .unwrap();
        let waited = within_10s_init_1s_run(delivered, rx).await;
        assert!(
            matches!(
                waited,
                Waited::Finished(Some(Finished {
                    reply: Reply::Exited { .. },
                    ..
                }))
            ),
            "{waited:?}"
        );
    }

    #[test]
    fn init_durations_are_summed() {
        let mut p = PoolState::new(2);
        p.initialised(Duration::from_millis(100));
        p.initialised(Duration::from_millis(300));
        let s = p.stats();
        assert_eq!(s.init_max, Duration::from_millis(300));
        assert_eq!(s.init_mean(), Some(Duration::from_millis(200)));
        assert_eq!(PoolState::new(1).stats().init_mean(), None);
    }
}
