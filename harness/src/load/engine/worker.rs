//! Workers: take a slot, wait for its due time, invoke, judge, record — and the threads they run on.

use std::collections::BTreeMap;
use std::path::PathBuf;
use std::sync::Arc;
use std::sync::atomic::{AtomicBool, AtomicU32, AtomicU64, Ordering};
use std::task::Poll;
use std::time::Duration;

use atomic_waker::AtomicWaker;
use crossbeam_utils::CachePadded;
use tokio::sync::mpsc;
use tokio::time::Instant;
use tokio_util::sync::CancellationToken;

use super::super::Prepared;
use super::Runtimes;
use super::dispatch::{Claimed, Dispatcher};
use super::outcome::{Answered, Counted, End, Record};
use crate::case::{FailureGroup, Minimal, Reach, SavedCase, write_case};
use crate::contract::{self, CheckId, CheckSet, Severity, Verdict};
use crate::events::Phase;
use crate::invocation::{Invocation, Outcome};
use crate::targets::Target;

/// What every invocation task shares.
pub(super) struct Shared {
    pub(super) target: Arc<dyn Target>,
    pub(super) checks: CheckSet,
    pub(super) timeout: Duration,
    /// Cut in-flight invocations short (end of grace, Ctrl-C, unreachable target).
    pub(super) hard_stop: Arc<HardStop>,
    /// Something answered: from then on a connection error is a finding, not "unreachable"
    /// (the case layer's policy, shared with `check`, `replay` and `validate`).
    pub(super) reach: Reach,
    pub(super) in_flight: InFlight,
    pub(super) cases: CaseSaver,
    pub(super) delivery: Option<Arc<crate::delivery::DeliveryLog>>,
    pub(super) runtimes: Runtimes,
    /// Permits to judge a big answer off the worker runtimes (see [`JUDGE_INLINE_MAX`]).
    pub(super) oracle: Arc<tokio::sync::Semaphore>,
    /// `--max-hangs` (0 = never).
    pub(super) max_hangs: u32,
    /// Invocations in a row, in completion order, that got no answer within the timeout.
    pub(super) hangs_in_a_row: AtomicU32,
    /// Some invocation got an answer that was not a timeout.
    pub(super) answered: AtomicBool,
}

/// The hard stop: every in-flight invocation ends at once, as interrupted. Each invocation asks
/// it at every wake-up, so asking must cost next to nothing: one atomic load, and the waker put in
/// the worker's own slot. A `CancellationToken` took two locks per wake-up (its tree's and its
/// `Notify`'s).
#[derive(Default)]
pub(super) struct HardStop {
    stopped: AtomicBool,
    /// One per worker, registered once.
    workers: std::sync::Mutex<Vec<Arc<AtomicWaker>>>,
}

impl HardStop {
    pub(super) fn stop(&self) {
        self.stopped.store(true, Ordering::SeqCst);
        let workers = self.workers.lock().unwrap_or_else(|p| p.into_inner());
        for w in workers.iter() {
            w.wake();
        }
    }

    pub(super) fn is_stopped(&self) -> bool {
        self.stopped.load(Ordering::SeqCst)
    }

    /// A new worker's wait for the stop.
    fn waiter(self: &Arc<Self>) -> StopWaiter {
        let waker = Arc::new(AtomicWaker::new());
        self.workers
            .lock()
            .unwrap_or_else(|p| p.into_inner())
            .push(waker.clone());
        StopWaiter {
            stop: self.clone(),
            waker,
        }
    }
}

/// Ready once the hard stop is given (and ever after).
pub(super) struct StopWaiter {
    stop: Arc<HardStop>,
    waker: Arc<AtomicWaker>,
}

impl std::future::Future for StopWaiter {
    type Output = ();

    fn poll(self: std::pin::Pin<&mut Self>, cx: &mut std::task::Context<'_>) -> Poll<()> {
        if self.stop.is_stopped() {
            return Poll::Ready(());
        }
        self.waker.register(cx.waker());
        // A stop between the load and the registration woke the old waker: look again.
        if self.stop.is_stopped() {
            Poll::Ready(())
        } else {
            Poll::Pending
        }
    }
}

/// Invocations in flight, counted per worker thread. Every invocation counts itself in and out:
/// on one counter for all threads those two atomic writes moved its cache line between the cores
/// at every invocation, the costliest instructions of the whole send path.
#[derive(Default)]
pub(super) struct InFlight {
    threads: std::sync::Mutex<Vec<Arc<CachePadded<ThreadInFlight>>>>,
}

/// One worker thread's count, on a cache line of its own.
#[derive(Default)]
pub(super) struct ThreadInFlight {
    now: AtomicU64,
    peak: AtomicU64,
}

impl InFlight {
    /// A new worker thread's counter.
    fn thread(&self) -> Arc<CachePadded<ThreadInFlight>> {
        let count = Arc::new(CachePadded::new(ThreadInFlight::default()));
        self.threads
            .lock()
            .unwrap_or_else(|p| p.into_inner())
            .push(count.clone());
        count
    }

    fn sum(&self, field: impl Fn(&ThreadInFlight) -> u64) -> u64 {
        let threads = self.threads.lock().unwrap_or_else(|p| p.into_inner());
        threads.iter().map(|t| field(t)).sum()
    }

    /// In flight now, on all threads.
    pub(super) fn now(&self) -> u64 {
        self.sum(|t| t.now.load(Ordering::Relaxed))
    }

    /// The threads' peaks, summed: each thread's workers all busy at some moment is "the cap
    /// reached", which is what the report asks of it.
    pub(super) fn peak(&self) -> u64 {
        self.sum(|t| t.peak.load(Ordering::Relaxed))
    }
}

impl ThreadInFlight {
    fn start(&self) {
        let n = self.now.fetch_add(1, Ordering::Relaxed) + 1;
        if n > self.peak.load(Ordering::Relaxed) {
            self.peak.fetch_max(n, Ordering::Relaxed);
        }
    }

    fn end(&self) {
        self.now.fetch_sub(1, Ordering::Relaxed);
    }
}

/// Answers (and events) up to this size are judged where they arrive: the oracle takes
/// microseconds on them, less than a hand-off to another thread would cost. Bigger ones — a
/// 6 MB answer of millions of `{}` records costs the oracle seconds — go to a blocking pool, so
/// they cannot hold up the worker runtime's timers, timeouts and the end of the grace period.
pub(super) const JUDGE_INLINE_MAX: usize = 256 * 1024;

/// Big answers judged at once at most: one per core, so judging competes with sending for the
/// CPU no more than the machine has, and at most that many big verdicts are held in memory.
pub(super) fn oracle_threads() -> usize {
    std::thread::available_parallelism().map_or(1, |n| n.get())
}

/// Saves the first few failing cases per check, from whichever invocation gets there first.
pub(super) struct CaseSaver {
    pub(super) dir: Option<PathBuf>,
    pub(super) per_check: u32,
    pub(super) seed: u64,
    pub(super) claimed: std::sync::Mutex<(BTreeMap<CheckId, u32>, u64)>,
}

impl CaseSaver {
    /// A folder name for a new case of `check`, or `None` when enough are saved.
    pub(super) fn claim(&self, check: CheckId) -> Option<String> {
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
    pub(super) fn save(
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
            let mut group =
                FailureGroup::first_seen(verdict, v.check, &v.fingerprint, Phase::Random);
            group.case = Some(name.clone());
            let minimal = Minimal::of(
                event.bytes.clone(),
                event.view.clone(),
                event.spec.clone(),
                event.origin.clone(),
                inv,
                verdict,
            );
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

/// Records the workers of one thread hold before handing them to the collector in one go: one
/// collector wake-up per batch instead of per invocation (or per worker's batch), which is most of
/// what a fast target costs the engine. Shared by the thread's workers; the lock is not
/// contended across threads and never held across an await.
pub(super) struct Batch {
    records: std::sync::Mutex<Vec<Record>>,
}

/// A batch goes to the collector at this size, or when its oldest record is this old, so the live
/// view and the per-second figures stay current.
pub(super) const BATCH_RECORDS: usize = 128;
pub(super) const BATCH_AGE: Duration = Duration::from_millis(20);

impl Batch {
    fn new() -> Batch {
        Batch {
            records: std::sync::Mutex::new(Vec::with_capacity(BATCH_RECORDS)),
        }
    }

    fn lock(&self) -> std::sync::MutexGuard<'_, Vec<Record>> {
        self.records.lock().unwrap_or_else(|p| p.into_inner())
    }

    /// Add a record; the batch's records when it is due to go.
    fn push(&self, r: Record) -> Option<Vec<Record>> {
        let urgent = matches!(r.end, End::Unreachable(_)) || r.hang_limit;
        // The newest record's end stands for "now": no clock read per invocation.
        let now = r.done;
        let mut records = self.lock();
        records.push(r);
        let due = urgent
            || records.len() >= BATCH_RECORDS
            || now.saturating_duration_since(records[0].done) >= BATCH_AGE;
        due.then(|| std::mem::replace(&mut *records, Vec::with_capacity(BATCH_RECORDS)))
    }

    /// Hand whatever is held over. Waits while the collector is behind: a lagging collector slows
    /// the workers (visibly, as late sends) instead of growing a queue.
    async fn flush(&self, tx: &mpsc::Sender<Vec<Record>>) {
        let records = std::mem::take(&mut *self.lock());
        send(tx, records).await;
    }
}

async fn send(tx: &mpsc::Sender<Vec<Record>>, records: Vec<Record>) {
    if !records.is_empty() {
        let _ = tx.send(records).await;
    }
}

/// What the workers of one runtime thread share: their batch for the collector, their own child
/// of [`Dispatcher::stop`], their in-flight count and their copy of a fixed event. Nothing an
/// invocation writes is shared with another thread: a write to memory another core wrote last
/// waits for that core to give up the cache line, and at tens of thousands of invocations a
/// second each of those waits counts.
pub(super) struct ThreadShare {
    batch: Batch,
    /// Asked at every slot taken; polling a token takes its locks, so one token for all threads
    /// had them contend for those locks (and sleep on them).
    stop: CancellationToken,
    in_flight: Arc<CachePadded<ThreadInFlight>>,
    /// `--event`'s bytes copied for this thread: every invocation takes a reference to the event
    /// and to its bytes, and one copy for all threads would have its reference counts bounce
    /// between the cores.
    fixed: Option<Arc<Prepared>>,
}

impl ThreadShare {
    fn new(shared: &Shared, dispatch: &Dispatcher) -> Arc<ThreadShare> {
        Arc::new(ThreadShare {
            batch: Batch::new(),
            stop: dispatch.stop.child_token(),
            in_flight: shared.in_flight.thread(),
            fixed: dispatch.feed.fixed_copy(),
        })
    }
}

/// THE loop, for the open and the closed model alike. One worker per in-flight slot: take the next
/// slot, wait for its due time (open model; a slot whose time has passed because every worker was
/// busy goes at once and counts as late — never skipped), invoke, judge, record.
pub(super) async fn worker(
    shared: Arc<Shared>,
    dispatch: Arc<Dispatcher>,
    thread: Arc<ThreadShare>,
    tx: mpsc::Sender<Vec<Record>>,
) {
    let batch = &thread.batch;
    // Registered once per worker, not once per invocation.
    let mut hard_stop = shared.hard_stop.waiter();
    while let Some(claimed) = dispatch.claim(&thread.stop, thread.fixed.as_ref()).await {
        if let Some(due) = claimed.due
            && due > Instant::now()
        {
            // Nothing is held back while the worker idles.
            batch.flush(&tx).await;
            tokio::select! {
                biased;
                _ = sleep_until(shared.runtimes, due) => {}
                _ = thread.stop.cancelled() => {
                    dispatch.sent(&claimed);
                    break;
                }
            }
        }
        dispatch.sent(&claimed);
        let record = invoke_one(&shared, claimed, &thread, &mut hard_stop).await;
        if record.hang_limit {
            // No further send, here or on another worker, before the collector hears of it.
            dispatch.stop.cancel();
            shared.hard_stop.stop();
        }
        if let Some(records) = batch.push(record) {
            send(&tx, records).await;
        }
    }
    batch.flush(&tx).await;
}

/// Sleep until `due` on the mode's clock: tokio's timer alone on the caller's runtime (exact in
/// paused time, where yielding would never let the clock move), [`sleep_precisely`] otherwise.
async fn sleep_until(runtimes: Runtimes, due: Instant) {
    match runtimes {
        Runtimes::PerCore => sleep_precisely(due).await,
        Runtimes::Current => tokio::time::sleep_until(due).await,
    }
}

/// Sleep until `due`, to well under a millisecond. tokio's timer has a millisecond grain and
/// rounds up, which alone would make every open-model send ~1 ms late and add that to the corrected
/// latency: sleep coarsely to just before `due`, then yield until it.
pub(super) async fn sleep_precisely(due: Instant) {
    const GRAIN: Duration = Duration::from_millis(1);
    if let Some(coarse) = due.checked_sub(GRAIN)
        && coarse > Instant::now()
    {
        tokio::time::sleep_until(coarse).await;
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
pub(super) fn spawn_workers(
    n: usize,
    shared: &Arc<Shared>,
    dispatch: &Arc<Dispatcher>,
    tx: &mpsc::Sender<Vec<Record>>,
    done: &CancellationToken,
) {
    if shared.runtimes == Runtimes::Current {
        let thread = ThreadShare::new(shared, dispatch);
        for _ in 0..n {
            tokio::spawn(worker(
                shared.clone(),
                dispatch.clone(),
                thread.clone(),
                tx.clone(),
            ));
        }
        return;
    }
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
                        let thread = ThreadShare::new(&s, &d);
                        for _ in 0..count {
                            set.spawn(worker(s.clone(), d.clone(), thread.clone(), sender.clone()));
                        }
                        drop(sender);
                        while set.join_next().await.is_some() {}
                        done.cancelled().await;
                    });
                })
                .map_err(|e| e.to_string())
        });
        if started.is_err() {
            let thread = ThreadShare::new(shared, dispatch);
            for _ in 0..count {
                tokio::spawn(worker(
                    shared.clone(),
                    dispatch.clone(),
                    thread.clone(),
                    tx.clone(),
                ));
            }
        }
    }
}

/// One invocation: send, judge, save a case if it is among the first few of its check. It was
/// meant to go at its slot's due time (open model), or now (closed model).
pub(super) async fn invoke_one(
    shared: &Arc<Shared>,
    claimed: Claimed,
    thread: &ThreadShare,
    hard_stop: &mut StopWaiter,
) -> Record {
    let event = &claimed.event;
    thread.in_flight.start();
    let sent = Instant::now();
    let intended = claimed.due.unwrap_or(sent);
    let result = if shared.hard_stop.is_stopped() {
        None
    } else {
        tokio::select! {
            biased;
            r = shared.target.invoke(event.bytes.clone(), shared.timeout) => Some(r),
            _ = &mut *hard_stop => None,
        }
    };
    let done = Instant::now();
    thread.in_flight.end();
    let mut record = Record {
        warmup: claimed.warmup,
        intended,
        sent,
        done,
        end: End::Interrupted,
        hang_limit: false,
    };
    let Some(result) = result else {
        return record;
    };
    let inv = match shared.reach.classify(result, done - sent) {
        Ok(inv) => inv,
        Err(e) => {
            record.end = End::Unreachable(e);
            return record;
        }
    };
    record.hang_limit = shared.count_hang(&inv);
    if inv.unjudged() {
        record.end = End::Throttled;
        return record;
    }
    let big = inv.body.len().max(event.bytes.len()) > JUDGE_INLINE_MAX;
    let judged = if big && shared.runtimes == Runtimes::PerCore {
        // Off the worker runtime; a hard stop (end of grace, Ctrl-C) does not wait for it.
        tokio::select! {
            biased;
            a = judge_elsewhere(shared.clone(), claimed.event.clone(), inv, claimed.warmup) => a,
            _ = hard_stop => None,
        }
    } else {
        Some(judge(shared, event, inv, claimed.warmup))
    };
    if let Some(end) = judged {
        record.end = end;
    }
    record
}

/// Judge on the blocking pool, one big answer per core at a time. `None` if the pool is gone.
async fn judge_elsewhere(
    shared: Arc<Shared>,
    event: Arc<Prepared>,
    inv: Invocation,
    warmup: bool,
) -> Option<End> {
    let permit = shared.oracle.clone().acquire_owned().await.ok()?;
    let judged = tokio::task::spawn_blocking(move || {
        let answered = judge(&shared, &event, inv, warmup);
        drop(permit);
        answered
    });
    judged.await.ok()
}

/// The oracle, what Firehose would deliver, and the first few failing cases of each check.
fn judge(shared: &Shared, event: &Prepared, inv: Invocation, warmup: bool) -> End {
    let verdict = contract::check(&event.view, &inv, &shared.checks);
    if let Some(delivery) = shared.delivery.as_ref().filter(|_| !warmup) {
        delivery.observe(&event.bytes, &inv, &verdict);
    }
    let saved = if verdict.failed() {
        shared
            .cases
            .save(shared.target.as_ref(), event, &inv, &verdict)
    } else {
        Vec::new()
    };
    let figures = Counted {
        records: event.view.record_ids.len() as u64,
        bytes_in: event.bytes.len() as u64,
        bytes_out: inv.body.len() as u64,
        queue_wait: inv.queue_wait,
        results: verdict.results,
    };
    if verdict.violations.is_empty() && verdict.counts.is_empty() && verdict.overflow.is_empty() {
        End::Clean(figures)
    } else {
        End::Answered(Box::new(Answered {
            figures,
            verdict,
            saved,
        }))
    }
}

impl Shared {
    /// Count an answer toward `--max-hangs`, in completion order, as `check` does: a timeout adds
    /// one, anything else resets. True when this one reaches the limit.
    fn count_hang(&self, inv: &Invocation) -> bool {
        if inv.outcome == Outcome::TimedOut {
            let n = self.hangs_in_a_row.fetch_add(1, Ordering::Relaxed) + 1;
            self.max_hangs > 0 && n >= self.max_hangs
        } else {
            // Read before written: each is written once in a run that goes well, not once per
            // invocation by every thread (see `ThreadShare`).
            if self.hangs_in_a_row.load(Ordering::Relaxed) != 0 {
                self.hangs_in_a_row.store(0, Ordering::Relaxed);
            }
            if !self.answered.load(Ordering::Relaxed) {
                self.answered.store(true, Ordering::Relaxed);
            }
            false
        }
    }
}
