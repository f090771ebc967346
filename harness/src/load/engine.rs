//! The load engine: ONE loop for the open and the closed model, handed a [`Schedule`].
//!
//! - **workers** — as many as invocations may be in flight (`--max-in-flight`, or the closed model's
//!   callers), spread over one single-threaded runtime per core ([`spawn_workers`]) — all run the
//!   same loop ([`worker`]): take the next slot and its event from the
//!   shared [`Dispatcher`] (schedule order), sleep until it is due (open model), invoke, judge the
//!   answer with [`contract::check`], save the first few failing cases per check, and record one
//!   [`Record`] with every timestamp (intended, sent, done). When every worker is busy the next slot
//!   waits and goes late — it is never skipped — and its corrected latency still runs from its due
//!   time. Workers never wait for answers to decide *when* a slot is due.
//! - the **collector** (this function's own loop) receives records in small batches over a bounded
//!   channel, folds them into [`LoadStats`] and per-second intervals, writes the interval log,
//!   judges `:abort` thresholds, emits [`LoadEvent`]s, and ends the run: once the schedule is done,
//!   in-flight invocations get the grace period, then are interrupted.
//!
//! Memory is bounded by the worker count, the channel and the generator's look-ahead; nothing grows
//! with the number of invocations.

use std::collections::BTreeMap;
use std::path::PathBuf;
use std::sync::Arc;
use std::sync::atomic::{AtomicBool, AtomicU64, Ordering};
use std::time::{Duration, Instant, SystemTime};

use firehose_generators::GenConfig;
use tokio::sync::mpsc;
use tokio_util::sync::{CancellationToken, WaitForCancellationFuture};

use super::hlog::{HlogEntry, HlogWriter};
use super::schedule::{Model, Partition, Schedule, Slot};
use super::stats::{IntervalStats, Intervals, LoadStats, Sample};
use super::thresholds::{Figures, Judged, Threshold};
use super::{EventSource, LoadEvent, LoadPlan, Prepared, Progress, counts_as_error};
use crate::conformance::{FailureGroup, Minimal, SavedCase, write_case};
use crate::contract::{self, CheckId, CheckSet, Severity, Verdict};
use crate::events::{EventSink, Phase, RunEvent};
use crate::invocation::Invocation;
use crate::targets::{Target, TargetError};

/// Distinct failures kept for the report; later kinds are still counted per check.
const MAX_GROUPS: usize = firehose_reports::MAX_FAILURES_LISTED;

/// Batches waiting for the collector at most: a full channel holds up the workers, never memory.
const CHANNEL: usize = 64;

/// Why a run ended before its schedule did.
#[derive(Debug, Clone, PartialEq, Eq)]
pub enum Stopped {
    /// Ctrl-C.
    Interrupted,
    /// A `:abort` threshold was breached.
    Threshold(String),
    /// The target could not be reached before anything answered.
    Unreachable,
    /// Open model: sends fell further behind the schedule than the grace period, so the slots
    /// still unsent were given up (k6's dropped iterations) instead of running for hours.
    Overrun { unsent: u64 },
}

/// What a load run measured.
#[derive(Debug)]
pub struct LoadOutcome {
    pub target: String,
    pub started_at: SystemTime,
    /// The whole run, warm-up and grace included.
    pub duration: Duration,
    /// From the end of the warm-up to the last measured answer, or the planned length if longer.
    pub measured_span: Duration,
    pub stats: LoadStats,
    /// One row per second of the measured run.
    pub intervals: Vec<firehose_reports::Interval>,
    pub groups: Vec<FailureGroup>,
    pub groups_truncated: bool,
    pub warmup_invocations: u64,
    /// Still in flight when the grace ran out (or at Ctrl-C): neither answered nor counted.
    pub interrupted: u64,
    pub peak_in_flight: u64,
    pub stopped: Option<Stopped>,
    pub unreachable: Option<TargetError>,
    pub thresholds: Vec<(Threshold, Judged, bool)>,
    pub hlog: Option<PathBuf>,
    pub notes: Vec<String>,
}

impl LoadOutcome {
    /// Achieved measured invocations per second.
    pub fn rate_achieved(&self) -> f64 {
        let secs = self.measured_span.as_secs_f64();
        if secs > 0.0 {
            self.stats.invocations as f64 / secs
        } else {
            0.0
        }
    }

    /// Contract violations (not errors) were found.
    pub fn violated(&self) -> bool {
        self.stats.violations > 0
    }

    pub fn threshold_breached(&self) -> bool {
        self.thresholds.iter().any(|(_, j, _)| !j.passed)
    }

    /// Nothing answered: the run judged nothing, which must not read as a pass.
    pub fn nothing_judged(&self) -> bool {
        self.stats.invocations == 0 && self.warmup_invocations == 0
    }
}

/// How one invocation ended.
enum End {
    Answered(Box<Answered>),
    /// Refused for lack of concurrency (429): the function never ran, so nothing was judged.
    Throttled,
    /// Cut off by the end of the grace period or Ctrl-C.
    Interrupted,
    /// The very first attempts could not reach the target.
    Unreachable(TargetError),
}

struct Answered {
    verdict: Verdict,
    records: u64,
    bytes_in: u64,
    bytes_out: u64,
    /// Case folders saved for this invocation: (check, fingerprint, folder name).
    saved: Vec<(CheckId, String, String)>,
    /// How long it waited for a free instance, where the target says.
    queue_wait: Option<Duration>,
}

/// One invocation, every timestamp included (STYLE habit 14).
struct Record {
    warmup: bool,
    intended: Instant,
    sent: Instant,
    done: Instant,
    end: End,
}

/// What every invocation task shares.
struct Shared {
    target: Arc<dyn Target>,
    checks: CheckSet,
    timeout: Duration,
    /// Cut in-flight invocations short (end of grace, Ctrl-C, unreachable target).
    hard_stop: CancellationToken,
    /// Something answered: from then on a connection error is a finding, not "unreachable".
    reached: AtomicBool,
    in_flight: AtomicU64,
    peak_in_flight: AtomicU64,
    cases: CaseSaver,
    delivery: Option<Arc<crate::delivery::DeliveryLog>>,
}

/// Saves the first few failing cases per check, from whichever invocation gets there first.
struct CaseSaver {
    dir: Option<PathBuf>,
    per_check: u32,
    seed: u64,
    claimed: std::sync::Mutex<(BTreeMap<CheckId, u32>, u64)>,
}

impl CaseSaver {
    /// A folder name for a new case of `check`, or `None` when enough are saved.
    fn claim(&self, check: CheckId) -> Option<String> {
        self.dir.as_ref()?;
        let mut guard = self.claimed.lock().unwrap_or_else(|p| p.into_inner());
        let (per, serial) = &mut *guard;
        let n = per.entry(check).or_default();
        if *n >= self.per_check {
            return None;
        }
        *n += 1;
        *serial += 1;
        Some(format!("{:04}-{}", serial, check.id()))
    }

    /// Save the case behind each new failing check of this invocation, as `check` does.
    fn save(
        &self,
        target: &dyn Target,
        event: &Prepared,
        inv: &Invocation,
        verdict: &Verdict,
    ) -> Vec<(CheckId, String, String)> {
        let Some(dir) = &self.dir else {
            return Vec::new();
        };
        let mut saved = Vec::new();
        let mut seen = Vec::new();
        for v in verdict
            .violations
            .iter()
            .filter(|v| v.severity == Severity::Error)
        {
            if seen.contains(&v.check) {
                continue;
            }
            seen.push(v.check);
            let Some(name) = self.claim(v.check) else {
                continue;
            };
            let group = FailureGroup {
                check: v.check,
                fingerprint: v.fingerprint.clone(),
                severity: v.severity,
                first: v.clone(),
                count: verdict
                    .key_counts
                    .get(&(v.check, v.fingerprint.clone()))
                    .copied()
                    .unwrap_or(1),
                cases: 1,
                phase: Phase::Random,
                case: Some(name.clone()),
                flaky: false,
                shrink: None,
                minimal_batch: None,
                depends_on: Default::default(),
                original_message: None,
            };
            let minimal = Minimal {
                spec: event.spec.clone(),
                bytes: event.bytes.clone(),
                view: event.view.clone(),
                inv: inv.clone(),
                verdict: verdict.clone(),
                origin: event.origin.clone(),
                flaky: false,
                summary: None,
                depends_on: Default::default(),
            };
            let case = SavedCase {
                name: &name,
                target,
                seed: self.seed,
                origin: &event.origin,
                phase: Phase::Random,
                group: &group,
                minimal: &minimal,
            };
            // A case that cannot be written is not worth failing the run over; the count stays.
            if write_case(&dir.join(&name), &case).is_ok() {
                saved.push((v.check, v.fingerprint.clone(), name));
            }
        }
        saved
    }
}

/// Run `plan` against `target` (already started). Cancel `cancel` (Ctrl-C) to stop at once; the
/// outcome so far is returned either way.
pub async fn run_load(
    plan: LoadPlan,
    target: Arc<dyn Target>,
    sink: &mut dyn EventSink,
    cancel: CancellationToken,
) -> LoadOutcome {
    let feed = EventFeed::new(&plan.events, plan.schedule.slice());
    tokio::select! {
        _ = feed.prime() => {}
        _ = cancel.cancelled() => {}
    }
    let started_at = SystemTime::now();
    let start = Instant::now();
    let warmup = plan.schedule.warmup();
    // One worker per in-flight slot: the cap is the number of workers.
    let workers = match plan.schedule.model() {
        Model::Closed { .. } => plan
            .schedule
            .callers()
            .map_or(plan.max_in_flight, |c| (c as usize).min(plan.max_in_flight)),
        Model::Open(_) => plan.max_in_flight,
    }
    .max(1);
    let shared = Arc::new(Shared {
        target: target.clone(),
        checks: plan.checks.clone(),
        timeout: plan.timeout,
        hard_stop: CancellationToken::new(),
        reached: AtomicBool::new(false),
        in_flight: AtomicU64::new(0),
        peak_in_flight: AtomicU64::new(0),
        cases: CaseSaver {
            dir: plan.cases_dir.clone(),
            per_check: plan.cases_per_check,
            seed: plan.seed,
            claimed: Default::default(),
        },
        delivery: plan.delivery.clone(),
    });
    let mut collector = Collector::new(&plan, target.describe(), start, started_at, sink);
    collector.emit(LoadEvent::Started {
        target: target.describe(),
        model: describe_model(&plan.schedule),
        planned: plan.schedule.planned(),
        warmup,
        max_in_flight: workers,
    });
    if warmup.is_zero() {
        collector.emit(LoadEvent::Measuring);
    }

    let stop_sending = cancel.child_token();
    let (tx, mut rx) = mpsc::channel::<Vec<Record>>(CHANNEL);
    let dispatcher = Arc::new(Dispatcher {
        start,
        deadline: plan.schedule.deadline().map(|d| start + d),
        overrun_at: match plan.schedule.model() {
            Model::Open(_) => plan
                .schedule
                .measured_duration()
                .map(|d| start + warmup + d + plan.grace),
            Model::Closed { .. } => None,
        },
        overran: AtomicBool::new(false),
        quota: plan.schedule.measured_quota(),
        warmup_end: start + warmup,
        stop: stop_sending.clone(),
        exhausted: CancellationToken::new(),
        waiting: AtomicU64::new(0),
        slots: std::sync::Mutex::new(Dispatch {
            schedule: plan.schedule.clone(),
            claimed: 0,
            measured: 0,
            finished: false,
        }),
        feed,
    });
    // The worker threads' runtimes drive the pooled connections they opened, which any worker
    // may be using: they all run until this function returns, not until their own workers end.
    let runtimes_done = CancellationToken::new();
    let _end_runtimes = runtimes_done.clone().drop_guard();
    spawn_workers(workers, &shared, &dispatcher, &tx, &runtimes_done);
    // Only the workers hold senders now: the channel closes when the last one is done.
    drop(tx);

    let mut tick = tokio::time::interval(plan.progress_every);
    tick.set_missed_tick_behavior(tokio::time::MissedTickBehavior::Delay);
    let mut grace_ends: Option<tokio::time::Instant> = None;
    let mut interrupted_by_user = false;
    loop {
        tokio::select! {
            batch = rx.recv() => match batch {
                Some(records) => {
                    for r in records {
                        if let Some(stop) = collector.take(r) {
                            collector.stop(stop);
                            stop_sending.cancel();
                            shared.hard_stop.cancel();
                        }
                    }
                }
                // Every worker is gone: the schedule is done and nothing is in flight.
                None => break,
            },
            _ = tick.tick() => {
                let in_flight = shared.in_flight.load(Ordering::Relaxed);
                if let Some(expression) = collector.tick(start.elapsed(), in_flight) {
                    collector.stop(Stopped::Threshold(expression));
                    stop_sending.cancel();
                }
            }
            _ = dispatcher.exhausted.cancelled(), if grace_ends.is_none() => {}
            _ = sleep_until_opt(grace_ends), if grace_ends.is_some() && !shared.hard_stop.is_cancelled() => {
                shared.hard_stop.cancel();
            }
            _ = cancel.cancelled(), if !interrupted_by_user => {
                interrupted_by_user = true;
                collector.stop(Stopped::Interrupted);
                stop_sending.cancel();
                shared.hard_stop.cancel();
            }
        }
        // The grace period starts once no slot is left and every claimed one has been sent: the
        // last invocation of an open schedule may still be waiting for its due time.
        if grace_ends.is_none()
            && dispatcher.exhausted.is_cancelled()
            && dispatcher.waiting.load(Ordering::Relaxed) == 0
        {
            let in_flight = shared.in_flight.load(Ordering::Relaxed);
            if in_flight > 0 && !shared.hard_stop.is_cancelled() {
                collector.emit(LoadEvent::Draining {
                    in_flight,
                    grace: plan.grace,
                });
            }
            grace_ends = Some(tokio::time::Instant::now() + plan.grace);
        }
    }
    // Ctrl-C also stops the workers, so the channel may close before the select above saw it.
    if cancel.is_cancelled() {
        collector.stop(Stopped::Interrupted);
    }
    if dispatcher.overran.load(Ordering::Relaxed) {
        let claimed = dispatcher
            .slots
            .lock()
            .unwrap_or_else(|p| p.into_inner())
            .claimed;
        // The slot that found the schedule overrun was taken from it but never claimed.
        let unsent = plan
            .schedule
            .planned()
            .map_or(0, |p| p.saturating_sub(claimed));
        collector.note(format!(
            "{unsent} planned invocation{} never sent: sends fell more than the grace period ({}) behind the schedule, so the target cannot keep up with this rate",
            if unsent == 1 { " was" } else { "s were" },
            crate::values::format_duration(plan.grace)
        ));
        collector.stop(Stopped::Overrun { unsent });
    }
    let peak = shared.peak_in_flight.load(Ordering::Relaxed);
    collector.finish(start.elapsed(), peak)
}

async fn sleep_until_opt(at: Option<tokio::time::Instant>) {
    match at {
        Some(at) => tokio::time::sleep_until(at).await,
        None => std::future::pending().await,
    }
}

/// "open: 100/s for 1m", "closed: 8 callers".
pub fn describe_model(s: &Schedule) -> String {
    let part = if s.slice() == Partition::WHOLE {
        String::new()
    } else {
        format!(", partition {}", s.slice())
    };
    match s.model() {
        Model::Open(p) => {
            let shape = if p.segments.len() == 1 && p.segments[0].from == p.segments[0].to {
                format!("{}/s", trim_rate(p.segments[0].from))
            } else {
                format!("stages peaking at {}/s", trim_rate(p.peak()))
            };
            format!("open ({shape}{part})")
        }
        Model::Closed { callers } => format!(
            "closed ({} caller{}{part})",
            callers,
            if *callers == 1 { "" } else { "s" }
        ),
    }
}

fn trim_rate(r: f64) -> String {
    let s = format!("{r:.3}");
    s.trim_end_matches('0').trim_end_matches('.').to_string()
}

/// The schedule's position, shared by the workers (a plain lock: taking a slot never waits).
struct Dispatch {
    schedule: Schedule,
    /// Slots handed out so far: the partition-local index of the next one.
    claimed: u64,
    /// Measured slots handed out (the closed model's `--invocations` quota counts these).
    measured: u64,
    finished: bool,
}

struct Dispatcher {
    start: Instant,
    /// The closed model stops taking slots here.
    deadline: Option<Instant>,
    /// The open model gives up the slots still unsent here: the planned end plus the grace.
    overrun_at: Option<Instant>,
    overran: AtomicBool,
    quota: Option<u64>,
    warmup_end: Instant,
    /// Stop taking slots: Ctrl-C, an `:abort` threshold, an unreachable target.
    stop: CancellationToken,
    /// Cancelled once no slot is left: the collector then starts the grace period.
    exhausted: CancellationToken,
    /// Slots taken but not yet sent (waiting for their event or due time).
    waiting: AtomicU64,
    slots: std::sync::Mutex<Dispatch>,
    feed: EventFeed,
}

/// A slot a worker took.
struct Claimed {
    event: Arc<Prepared>,
    /// When it is due (open model); `None`: now.
    due: Option<Instant>,
    warmup: bool,
}

impl Dispatcher {
    /// The next slot and its event, or `None` when the schedule is done or the run stops.
    async fn claim(&self) -> Option<Claimed> {
        let (slot, j, warmup) = self.next_slot()?;
        // The event comes first, the due time after: generation never eats into the wait.
        let past_deadline = async {
            match self.deadline {
                Some(at) => tokio::time::sleep_until(at.into()).await,
                None => std::future::pending().await,
            }
        };
        let event = tokio::select! {
            biased;
            e = self.feed.get(j, slot.index) => e,
            _ = self.stop.cancelled() => None,
            // The closed model's `--duration` is over: a call still waiting for its event is not
            // started (as k6 starts no iteration after the duration), or a run with many callers
            // and big batches would overrun by the time it takes to generate them all.
            _ = past_deadline => None,
        };
        let event = event.filter(|_| self.deadline.is_none_or(|at| Instant::now() < at));
        match event {
            Some(event) => Some(Claimed {
                event,
                due: slot.due.map(|t| self.start + t),
                warmup,
            }),
            None => {
                self.waiting.fetch_sub(1, Ordering::Relaxed);
                self.finish();
                None
            }
        }
    }

    fn finish(&self) {
        self.slots
            .lock()
            .unwrap_or_else(|p| p.into_inner())
            .finished = true;
        self.exhausted.cancel();
    }

    /// Take the next slot: (slot, partition-local index, warm-up?).
    fn next_slot(&self) -> Option<(Slot, u64, bool)> {
        let mut d = self.slots.lock().unwrap_or_else(|p| p.into_inner());
        let taken = (|| {
            if d.finished || self.stop.is_cancelled() {
                return None;
            }
            let slot = d.schedule.next()?;
            let now = Instant::now();
            if self.deadline.is_some_and(|at| now >= at) {
                return None;
            }
            if self.overrun_at.is_some_and(|at| now >= at) {
                self.overran.store(true, Ordering::Relaxed);
                return None;
            }
            let warmup = slot.warmup.unwrap_or(now < self.warmup_end);
            if !warmup {
                if self.quota.is_some_and(|q| d.measured >= q) {
                    return None;
                }
                d.measured += 1;
            }
            let j = d.claimed;
            d.claimed += 1;
            Some((slot, j, warmup))
        })();
        match taken {
            Some(t) => {
                self.waiting.fetch_add(1, Ordering::Relaxed);
                Some(t)
            }
            None => {
                d.finished = true;
                drop(d);
                self.exhausted.cancel();
                None
            }
        }
    }
}

/// Records a worker holds before handing them to the collector in one go: one wake-up per batch
/// instead of per invocation, which is most of what a fast target costs the engine.
struct Batch {
    records: Vec<Record>,
    tx: mpsc::Sender<Vec<Record>>,
}

/// A batch goes to the collector at this size, or when its oldest record is this old, so the live
/// view and the per-second figures stay current.
const BATCH_RECORDS: usize = 32;
const BATCH_AGE: Duration = Duration::from_millis(20);

impl Batch {
    fn push(&mut self, r: Record) -> bool {
        let urgent = matches!(r.end, End::Unreachable(_));
        self.records.push(r);
        urgent || self.records.len() >= BATCH_RECORDS || self.records[0].done.elapsed() >= BATCH_AGE
    }

    /// Hand the batch over. Waits while the collector is behind: a lagging collector slows the
    /// workers (visibly, as late sends) instead of growing a queue.
    async fn flush(&mut self) {
        if !self.records.is_empty() {
            let records = std::mem::replace(&mut self.records, Vec::with_capacity(BATCH_RECORDS));
            let _ = self.tx.send(records).await;
        }
    }
}

/// THE loop, for the open and the closed model alike. One worker per in-flight slot: take the next
/// slot, wait for its due time (open model; a slot whose time has passed because every worker was
/// busy goes at once and counts as late — never skipped), invoke, judge, record.
async fn worker(shared: Arc<Shared>, dispatch: Arc<Dispatcher>, tx: mpsc::Sender<Vec<Record>>) {
    let mut batch = Batch {
        records: Vec::with_capacity(BATCH_RECORDS),
        tx,
    };
    // Registered once per worker, not once per invocation.
    let hard_stop = shared.hard_stop.cancelled();
    tokio::pin!(hard_stop);
    while let Some(claimed) = dispatch.claim().await {
        if let Some(due) = claimed.due
            && due > Instant::now()
        {
            // Nothing is held back while the worker idles.
            batch.flush().await;
            tokio::select! {
                biased;
                _ = sleep_precisely(due) => {}
                _ = dispatch.stop.cancelled() => {
                    dispatch.waiting.fetch_sub(1, Ordering::Relaxed);
                    break;
                }
            }
        }
        dispatch.waiting.fetch_sub(1, Ordering::Relaxed);
        let intended = claimed.due.unwrap_or_else(Instant::now);
        let record = invoke_one(&shared, &claimed, intended, hard_stop.as_mut()).await;
        if batch.push(record) {
            batch.flush().await;
        }
    }
    batch.flush().await;
}

/// Sleep until `due`, to well under a millisecond. tokio's timer has a millisecond grain and
/// rounds up, which alone would make every open-model send ~1 ms late and add that to the corrected
/// latency: sleep coarsely to just before `due`, then yield until it.
async fn sleep_precisely(due: Instant) {
    const GRAIN: Duration = Duration::from_millis(1);
    if let Some(coarse) = due.checked_sub(GRAIN)
        && coarse > Instant::now()
    {
        tokio::time::sleep_until(coarse.into()).await;
    }
    while Instant::now() < due {
        tokio::task::yield_now().await;
    }
}

/// Start `n` workers on one thread per core, each thread with its own single-threaded runtime (as
/// oha does): a connection's answer then wakes its worker on the thread that sent the request,
/// instead of a work-stealing runtime bouncing tasks between threads and parking them on futexes
/// at every request. Falls back to the calling runtime if threads cannot be started.
///
/// A thread's runtime outlives its own workers until `done`: a keep-alive connection belongs to
/// the runtime that opened it, and a worker on another thread may still be waiting on it.
fn spawn_workers(
    n: usize,
    shared: &Arc<Shared>,
    dispatch: &Arc<Dispatcher>,
    tx: &mpsc::Sender<Vec<Record>>,
    done: &CancellationToken,
) {
    let threads = std::thread::available_parallelism()
        .map_or(1, |c| c.get())
        .clamp(1, n.max(1));
    for t in 0..threads {
        let count = n / threads + usize::from(t < n % threads);
        let (s, d, sender) = (shared.clone(), dispatch.clone(), tx.clone());
        let done = done.clone();
        let runtime = tokio::runtime::Builder::new_current_thread()
            .enable_all()
            .build();
        let started = runtime.map_err(|e| e.to_string()).and_then(|rt| {
            std::thread::Builder::new()
                .name(format!("load-worker-{t}"))
                .spawn(move || {
                    rt.block_on(async move {
                        let mut set = tokio::task::JoinSet::new();
                        for _ in 0..count {
                            set.spawn(worker(s.clone(), d.clone(), sender.clone()));
                        }
                        drop(sender);
                        while set.join_next().await.is_some() {}
                        done.cancelled().await;
                    });
                })
                .map_err(|e| e.to_string())
        });
        if started.is_err() {
            for _ in 0..count {
                tokio::spawn(worker(shared.clone(), dispatch.clone(), tx.clone()));
            }
        }
    }
}

/// One invocation: send, judge, save a case if it is among the first few of its check.
async fn invoke_one(
    shared: &Shared,
    claimed: &Claimed,
    intended: Instant,
    hard_stop: std::pin::Pin<&mut WaitForCancellationFuture<'_>>,
) -> Record {
    let event = &claimed.event;
    let n = shared.in_flight.fetch_add(1, Ordering::Relaxed) + 1;
    shared.peak_in_flight.fetch_max(n, Ordering::Relaxed);
    let sent = Instant::now();
    let result = if shared.hard_stop.is_cancelled() {
        None
    } else {
        tokio::select! {
            biased;
            r = shared.target.invoke(event.bytes.clone(), shared.timeout) => Some(r),
            _ = hard_stop => None,
        }
    };
    let done = Instant::now();
    shared.in_flight.fetch_sub(1, Ordering::Relaxed);
    let end = match result {
        None => End::Interrupted,
        Some(Err(e)) if !shared.reached.load(Ordering::Relaxed) => End::Unreachable(e),
        Some(result) => {
            let inv = match result {
                Ok(inv) => {
                    shared.reached.store(true, Ordering::Relaxed);
                    inv
                }
                // Reachable before, gone now: the transformer died under load. That is a finding.
                Err(e) => Invocation::broken(e.to_string(), done - sent),
            };
            if inv.unjudged() {
                return Record {
                    warmup: claimed.warmup,
                    intended,
                    sent,
                    done,
                    end: End::Throttled,
                };
            }
            let verdict = contract::check(&event.view, &inv, &shared.checks);
            if let Some(delivery) = shared.delivery.as_ref().filter(|_| !claimed.warmup) {
                delivery.observe(&event.bytes, &inv, &verdict);
            }
            let saved = if verdict.failed() {
                shared
                    .cases
                    .save(shared.target.as_ref(), event, &inv, &verdict)
            } else {
                Vec::new()
            };
            End::Answered(Box::new(Answered {
                records: event.view.record_ids.len() as u64,
                bytes_in: event.bytes.len() as u64,
                bytes_out: inv.body.len() as u64,
                verdict,
                saved,
                queue_wait: inv.queue_wait,
            }))
        }
    };
    Record {
        warmup: claimed.warmup,
        intended,
        sent,
        done,
        end,
    }
}

/// The event of each slot, shared by the workers.
struct EventFeed {
    source: EventSource,
    /// Generator threads' queues: thread `t` makes the partition's events `j ≡ t (mod threads)`.
    /// Behind an async lock because only generation ever has to wait.
    generated: tokio::sync::Mutex<Vec<mpsc::Receiver<Arc<Prepared>>>>,
    /// Each queue's first event, taken by [`EventFeed::prime`] before the clock starts.
    primed: std::sync::Mutex<Vec<Option<Arc<Prepared>>>>,
}

/// Batches a generator thread may have ready ahead of the schedule: enough to hide generation
/// time, few enough that look-ahead of 6 MB batches stays small.
const LOOKAHEAD_PER_THREAD: usize = 4;

impl EventFeed {
    fn new(source: &EventSource, partition: Partition) -> EventFeed {
        let mut generated = Vec::new();
        if let EventSource::Generate { config, seed } = source {
            let threads = std::thread::available_parallelism()
                .map_or(1, |n| n.get())
                .clamp(1, 4) as u64;
            for t in 0..threads {
                let (tx, rx) = mpsc::channel(LOOKAHEAD_PER_THREAD);
                let config: GenConfig = config.clone();
                let seed = *seed;
                let spawned = std::thread::Builder::new()
                    .name(format!("load-gen-{t}"))
                    .spawn(move || {
                        let mut j = t;
                        loop {
                            let index = partition.global(j);
                            let event = Arc::new(Prepared::generated(&config, seed, index));
                            // The engine is done when nobody listens any more.
                            if tx.blocking_send(event).is_err() {
                                return;
                            }
                            j += threads;
                        }
                    });
                if spawned.is_ok() {
                    generated.push(rx);
                }
            }
        }
        EventFeed {
            source: source.clone(),
            primed: std::sync::Mutex::new(vec![None; generated.len()]),
            generated: tokio::sync::Mutex::new(generated),
        }
    }

    /// Wait until every generator has its first event ready, so the run's clock starts with events
    /// in hand: a multi-megabyte first batch must not count as the target's lateness.
    async fn prime(&self) {
        let mut queues = self.generated.lock().await;
        let mut first = Vec::with_capacity(queues.len());
        for q in queues.iter_mut() {
            first.push(q.recv().await);
        }
        *self.primed.lock().unwrap_or_else(|p| p.into_inner()) = first;
    }

    /// The event of the partition's `j`-th slot, global index `k`.
    async fn get(&self, j: u64, k: u64) -> Option<Arc<Prepared>> {
        match &self.source {
            EventSource::Fixed(e) => Some(e.clone()),
            EventSource::Pool(pool) => pool.get((k % pool.len().max(1) as u64) as usize).cloned(),
            EventSource::Generate { .. } => {
                let mut queues = self.generated.lock().await;
                let n = queues.len() as u64;
                if n == 0 {
                    return None;
                }
                let i = (j % n) as usize;
                let primed = self
                    .primed
                    .lock()
                    .unwrap_or_else(|p| p.into_inner())
                    .get_mut(i)
                    .and_then(Option::take);
                match primed {
                    Some(e) => Some(e),
                    None => queues[i].recv().await,
                }
            }
        }
    }
}

/// Folds records into figures; owns everything the run reports.
struct Collector<'a> {
    sink: &'a mut dyn EventSink,
    start: Instant,
    warmup: Duration,
    planned: Option<u64>,
    planned_span: Option<Duration>,
    thresholds: Vec<Threshold>,
    aborted_by: Option<String>,
    stats: LoadStats,
    intervals: Intervals,
    rows: Vec<firehose_reports::Interval>,
    hlog: Option<HlogWriter>,
    groups: Vec<FailureGroup>,
    group_index: BTreeMap<(CheckId, String), usize>,
    groups_truncated: bool,
    warmup_invocations: u64,
    interrupted: u64,
    measuring_announced: bool,
    last_done: Option<Duration>,
    /// Measured invocations at the last progress event, and when, for the live rate.
    rate_mark: (u64, Duration),
    rate: f64,
    stopped: Option<Stopped>,
    unreachable: Option<TargetError>,
    target: String,
    started_at: SystemTime,
    notes: Vec<String>,
}

impl<'a> Collector<'a> {
    fn new(
        plan: &LoadPlan,
        target: String,
        start: Instant,
        started_at: SystemTime,
        sink: &'a mut dyn EventSink,
    ) -> Self {
        let warmup = plan.schedule.warmup();
        let mut notes = Vec::new();
        let hlog = plan.hlog.as_ref().and_then(|path| {
            match HlogWriter::create(path, started_at + warmup, &target) {
                Ok(w) => Some(w),
                Err(e) => {
                    notes.push(format!("no interval log: {e}"));
                    None
                }
            }
        });
        Collector {
            sink,
            start,
            warmup,
            planned: plan.schedule.planned(),
            planned_span: plan.schedule.measured_duration(),
            thresholds: plan.thresholds.clone(),
            aborted_by: None,
            stats: LoadStats::default(),
            intervals: Intervals::new(warmup),
            rows: Vec::new(),
            hlog,
            groups: Vec::new(),
            group_index: BTreeMap::new(),
            groups_truncated: false,
            warmup_invocations: 0,
            interrupted: 0,
            measuring_announced: warmup.is_zero(),
            last_done: None,
            rate_mark: (0, Duration::ZERO),
            rate: 0.0,
            stopped: None,
            unreachable: None,
            target,
            started_at,
            notes,
        }
    }

    fn emit(&mut self, e: LoadEvent) {
        self.sink.emit(RunEvent::Load(e));
    }

    fn note(&mut self, note: String) {
        self.sink.emit(RunEvent::Note(note.clone()));
        self.notes.push(note);
    }

    /// The first reason to stop wins.
    fn stop(&mut self, why: Stopped) {
        if self.stopped.is_none() {
            self.stopped = Some(why);
        }
    }

    /// Fold one record in. Returns a reason to stop everything at once.
    fn take(&mut self, r: Record) -> Option<Stopped> {
        let answered = match r.end {
            End::Interrupted => {
                self.interrupted += 1;
                return None;
            }
            End::Unreachable(e) => {
                if self.stats.invocations + self.warmup_invocations == 0 {
                    if self.unreachable.is_none() {
                        self.unreachable = Some(e);
                    }
                    return Some(Stopped::Unreachable);
                }
                // Lost a race with the first answer: not unreachable after all, but not judged.
                self.interrupted += 1;
                return None;
            }
            End::Throttled => {
                if !r.warmup {
                    self.stats.throttles += 1;
                }
                return None;
            }
            End::Answered(a) => a,
        };
        let v = &answered.verdict;
        for (check, n) in &v.counts {
            *self.stats.check_counts.entry(*check).or_default() += n;
        }
        self.stats.results.add(&v.results);
        self.group(v, &answered.saved);
        let violated = v
            .violations
            .iter()
            .any(|x| x.severity == Severity::Error && !counts_as_error(x.check));
        if r.warmup {
            self.warmup_invocations += 1;
            // Contract violations count whenever they happen; the warm-up only leaves the figures.
            self.stats.violations += u64::from(violated);
            return None;
        }
        let sample = Sample {
            intended: r.intended - self.start,
            sent: r.sent - self.start,
            done: r.done - self.start,
            errored: v.counts.keys().any(|c| counts_as_error(*c)),
            violated,
            records: answered.records,
            bytes_in: answered.bytes_in,
            bytes_out: answered.bytes_out,
            queue_wait: answered.queue_wait,
        };
        self.stats.record(&sample);
        self.last_done = Some(self.last_done.map_or(sample.done, |d| d.max(sample.done)));
        for closed in self.intervals.record(&sample) {
            self.close(closed);
        }
        None
    }

    /// Count a verdict's failures into (check, fingerprint) groups, announcing new ones.
    fn group(&mut self, v: &Verdict, saved: &[(CheckId, String, String)]) {
        for ((check, fingerprint), count) in &v.key_counts {
            let key = (*check, fingerprint.clone());
            if let Some(&i) = self.group_index.get(&key) {
                let g = &mut self.groups[i];
                g.count += count;
                g.cases += 1;
                if g.case.is_none() {
                    g.case = case_for(saved, &key);
                }
                continue;
            }
            let Some(first) = v
                .violations
                .iter()
                .find(|x| x.check == *check && &x.fingerprint == fingerprint)
            else {
                continue;
            };
            if self.groups.len() >= MAX_GROUPS {
                self.groups_truncated = true;
                continue;
            }
            self.emit(LoadEvent::NewFailure {
                check: check.id(),
                message: first.message.clone(),
            });
            self.group_index.insert(key.clone(), self.groups.len());
            self.groups.push(FailureGroup {
                check: *check,
                fingerprint: fingerprint.clone(),
                severity: first.severity,
                first: first.clone(),
                count: *count,
                cases: 1,
                phase: Phase::Random,
                case: case_for(saved, &key),
                flaky: false,
                shrink: None,
                minimal_batch: None,
                depends_on: Default::default(),
                original_message: None,
            });
        }
    }

    /// A closed second: a report row and two interval-log lines.
    fn close(&mut self, i: IntervalStats) {
        self.rows.push(i.row());
        if let Some(h) = &self.hlog {
            h.write(HlogEntry {
                start: Duration::from_secs(i.second),
                length: Duration::from_secs(1),
                response_time: i.response_time,
                service_time: i.service_time,
            });
        }
    }

    /// Periodic work: close settled seconds, judge `:abort` thresholds, refresh the live view.
    /// Returns the expression of a breached `:abort` threshold.
    fn tick(&mut self, now: Duration, in_flight: u64) -> Option<String> {
        let warming_up = now < self.warmup;
        if !warming_up && !self.measuring_announced {
            self.measuring_announced = true;
            self.emit(LoadEvent::Measuring);
        }
        for closed in self.intervals.tick(now) {
            self.close(closed);
        }
        let since = now.saturating_sub(self.rate_mark.1);
        if since >= Duration::from_secs(1) {
            self.rate = (self.stats.invocations - self.rate_mark.0) as f64 / since.as_secs_f64();
            self.rate_mark = (self.stats.invocations, now);
        }
        let progress = Progress {
            elapsed: now,
            warming_up,
            invocations: self.stats.invocations,
            planned: self.planned,
            rate: self.rate,
            in_flight,
            p99: self.stats.response_time.value_at_quantile(0.99),
            errors: self.stats.errors,
            violations: self.stats.violations,
            late_sends: self.stats.late_sends,
        };
        self.emit(LoadEvent::Progress(progress));
        if self.aborted_by.is_some() || self.stats.invocations == 0 {
            return None;
        }
        let span = self.span();
        let breach = {
            let figures = self.figures(span);
            self.thresholds
                .iter()
                .filter(|t| t.judged_mid_run())
                .map(|t| (t, t.judge(&figures)))
                .find(|(_, j)| !j.passed)
                .map(|(t, j)| (t.expression.clone(), j.actual))
        };
        let (expression, actual) = breach?;
        self.aborted_by = Some(expression.clone());
        self.emit(LoadEvent::ThresholdBreached {
            expression: expression.clone(),
            actual,
            aborting: true,
        });
        Some(expression)
    }

    fn span(&self) -> Duration {
        let actual = self
            .last_done
            .map_or(Duration::ZERO, |d| d.saturating_sub(self.warmup));
        // A run that went to plan spans at least its planned length: the last send of a 10 s run
        // at 100/s leaves at 9.99 s, and the achieved rate should read 100/s, not 100.1/s.
        match self.planned_span {
            Some(p) if self.stopped.is_none() => actual.max(p),
            _ => actual,
        }
    }

    fn figures(&self, span: Duration) -> Figures<'_> {
        let secs = span.as_secs_f64();
        Figures {
            response_time: &self.stats.response_time,
            invocations: self.stats.invocations,
            errors: self.stats.errors,
            throughput: if secs > 0.0 {
                self.stats.invocations as f64 / secs
            } else {
                0.0
            },
            violations: self.stats.violations,
            late_sends: self.stats.late_sends,
        }
    }

    fn finish(mut self, duration: Duration, peak_in_flight: u64) -> LoadOutcome {
        for closed in self.intervals.finish() {
            self.close(closed);
        }
        let hlog = match self.hlog.take().map(HlogWriter::finish) {
            Some(Ok(path)) => Some(path),
            Some(Err(e)) => {
                self.note(format!("the interval log is incomplete: {e}"));
                None
            }
            None => None,
        };
        if self.interrupted > 0 {
            let n = self.interrupted;
            self.note(format!(
                "{n} invocation{} still in flight at the end {} not counted (interrupted)",
                if n == 1 { " was" } else { "s were" },
                if self.stopped == Some(Stopped::Interrupted) {
                    "of the run"
                } else {
                    "of the grace period"
                }
            ));
        }
        let span = self.span();
        let judged: Vec<(Threshold, Judged, bool)> = {
            let figures = self.figures(span);
            self.thresholds
                .iter()
                .map(|t| {
                    let aborted = self.aborted_by.as_deref() == Some(t.expression.as_str());
                    (t.clone(), t.judge(&figures), aborted)
                })
                .collect()
        };
        LoadOutcome {
            target: self.target,
            started_at: self.started_at,
            duration,
            measured_span: span,
            stats: self.stats,
            intervals: self.rows,
            groups: self.groups,
            groups_truncated: self.groups_truncated,
            warmup_invocations: self.warmup_invocations,
            interrupted: self.interrupted,
            peak_in_flight,
            stopped: self.stopped,
            unreachable: self.unreachable,
            thresholds: judged,
            hlog,
            notes: self.notes,
        }
    }
}

fn case_for(saved: &[(CheckId, String, String)], key: &(CheckId, String)) -> Option<String> {
    saved
        .iter()
        .find(|(c, f, _)| *c == key.0 && f == &key.1)
        .map(|(_, _, name)| name.clone())
}
