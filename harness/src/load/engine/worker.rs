//! Workers: take a slot, wait for its due time, invoke, judge, record — and the threads they run on.

use std::collections::BTreeMap;
use std::path::PathBuf;
use std::sync::Arc;
use std::sync::atomic::{AtomicBool, AtomicU64, Ordering};
use std::time::Duration;

use tokio::sync::mpsc;
use tokio::time::Instant;
use tokio_util::sync::{CancellationToken, WaitForCancellationFuture};

use super::super::Prepared;
use super::dispatch::{Claimed, Dispatcher};
use super::outcome::{Answered, End, Record};
use crate::conformance::{FailureGroup, Minimal, SavedCase, write_case};
use crate::contract::{self, CheckId, CheckSet, Severity, Verdict};
use crate::events::Phase;
use crate::invocation::Invocation;
use crate::targets::Target;

/// What every invocation task shares.
pub(super) struct Shared {
    pub(super) target: Arc<dyn Target>,
    pub(super) checks: CheckSet,
    pub(super) timeout: Duration,
    /// Cut in-flight invocations short (end of grace, Ctrl-C, unreachable target).
    pub(super) hard_stop: CancellationToken,
    /// Something answered: from then on a connection error is a finding, not "unreachable".
    pub(super) reached: AtomicBool,
    pub(super) in_flight: AtomicU64,
    pub(super) peak_in_flight: AtomicU64,
    pub(super) cases: CaseSaver,
    pub(super) delivery: Option<Arc<crate::delivery::DeliveryLog>>,
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

/// Records a worker holds before handing them to the collector in one go: one wake-up per batch
/// instead of per invocation, which is most of what a fast target costs the engine.
pub(super) struct Batch {
    pub(super) records: Vec<Record>,
    pub(super) tx: mpsc::Sender<Vec<Record>>,
}

/// A batch goes to the collector at this size, or when its oldest record is this old, so the live
/// view and the per-second figures stay current.
pub(super) const BATCH_RECORDS: usize = 32;
pub(super) const BATCH_AGE: Duration = Duration::from_millis(20);

impl Batch {
    pub(super) fn push(&mut self, r: Record) -> bool {
        let urgent = matches!(r.end, End::Unreachable(_));
        self.records.push(r);
        urgent || self.records.len() >= BATCH_RECORDS || self.records[0].done.elapsed() >= BATCH_AGE
    }

    /// Hand the batch over. Waits while the collector is behind: a lagging collector slows the
    /// workers (visibly, as late sends) instead of growing a queue.
    pub(super) async fn flush(&mut self) {
        if !self.records.is_empty() {
            let records = std::mem::replace(&mut self.records, Vec::with_capacity(BATCH_RECORDS));
            let _ = self.tx.send(records).await;
        }
    }
}

/// THE loop, for the open and the closed model alike. One worker per in-flight slot: take the next
/// slot, wait for its due time (open model; a slot whose time has passed because every worker was
/// busy goes at once and counts as late — never skipped), invoke, judge, record.
pub(super) async fn worker(
    shared: Arc<Shared>,
    dispatch: Arc<Dispatcher>,
    tx: mpsc::Sender<Vec<Record>>,
) {
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
pub(super) async fn sleep_precisely(due: Instant) {
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
pub(super) fn spawn_workers(
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
pub(super) async fn invoke_one(
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
