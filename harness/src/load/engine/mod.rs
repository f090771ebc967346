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
//!
//! The jobs live in their own files: [`outcome`] (what a run and an invocation produced),
//! [`dispatch`] (slots and their events), [`worker`] (invoke, judge, record; the worker threads),
//! [`collector`] (figures, groups, thresholds, events).

mod collector;
mod dispatch;
mod outcome;
mod worker;

use std::sync::Arc;
use std::sync::atomic::{AtomicBool, AtomicU32, AtomicU64, Ordering};
use std::time::SystemTime;

use tokio::sync::mpsc;
use tokio::time::Instant;
use tokio_util::sync::CancellationToken;

use super::schedule::{Model, Partition, Schedule};
use super::{LoadEvent, LoadPlan};
use crate::events::EventSink;
use crate::targets::Target;
use collector::Collector;
use dispatch::{ClosedSlots, Dispatch, Dispatcher, EventFeed};
use outcome::Record;
pub use outcome::{LoadOutcome, Stopped};
use worker::{CaseSaver, Shared, spawn_workers};

/// Where the engine runs, and so whose clock it reads.
///
/// Every timestamp the engine takes is a [`tokio::time::Instant`]: the runtime's clock, which a test
/// can pause and advance. The mode decides the rest.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Default)]
pub enum Runtimes {
    /// One single-threaded runtime per core (as oha runs), sends timed to well under a millisecond
    /// by yielding through the timer's millisecond grain, generated events made on background
    /// threads, and big answers judged on a bounded blocking pool so the oracle cannot stall timers.
    #[default]
    PerCore,
    /// Everything on the caller's runtime, on tokio's timer alone, events generated and answers
    /// judged inline: under `#[tokio::test(start_paused = true)]` a run is deterministic and takes
    /// no real time.
    Current,
}

/// Batches waiting for the collector at most: a full channel holds up the workers, never memory.
const CHANNEL: usize = 64;

/// Run `plan` against `target` (already started). Cancel `cancel` (Ctrl-C) to stop at once; the
/// outcome so far is returned either way.
pub async fn run_load(
    plan: LoadPlan,
    target: Arc<dyn Target>,
    sink: &mut dyn EventSink,
    cancel: CancellationToken,
) -> LoadOutcome {
    let feed = EventFeed::new(
        &plan.events,
        plan.schedule.slice(),
        plan.runtimes,
        plan.schedule.callers().is_some(),
    );
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
        hard_stop: Default::default(),
        reach: Default::default(),
        in_flight: Default::default(),
        cases: CaseSaver {
            dir: plan.cases_dir.clone(),
            per_check: plan.cases_per_check,
            seed: plan.seed,
            claimed: Default::default(),
        },
        delivery: plan.delivery.clone(),
        runtimes: plan.runtimes,
        oracle: Arc::new(tokio::sync::Semaphore::new(worker::oracle_threads())),
        max_hangs: plan.max_hangs,
        hangs_in_a_row: AtomicU32::new(0),
        answered: AtomicBool::new(false),
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
        all_sent: tokio::sync::Notify::new(),
        slots: std::sync::Mutex::new(Dispatch {
            schedule: plan.schedule.clone(),
            claimed: 0,
            measured: 0,
        }),
        finished: AtomicBool::new(false),
        closed: match plan.schedule.model() {
            Model::Closed { .. } => Some(ClosedSlots {
                partition: plan.schedule.slice(),
                next: Default::default(),
                measured: Default::default(),
                events_at_hand: feed.always_at_hand(),
            }),
            Model::Open(_) => None,
        },
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
    let mut exhausted = false;
    loop {
        tokio::select! {
            batch = rx.recv() => match batch {
                Some(records) => {
                    for r in records {
                        if let Some(stop) = collector.take(r) {
                            collector.stop(stop);
                            stop_sending.cancel();
                            shared.hard_stop.stop();
                        }
                    }
                }
                // Every worker is gone: the schedule is done and nothing is in flight.
                None => break,
            },
            _ = tick.tick() => {
                let in_flight = shared.in_flight.now();
                if let Some(expression) = collector.tick(start.elapsed(), in_flight) {
                    collector.stop(Stopped::Threshold(expression));
                    stop_sending.cancel();
                }
            }
            _ = dispatcher.exhausted.cancelled(), if !exhausted => exhausted = true,
            _ = dispatcher.all_sent.notified(), if exhausted && grace_ends.is_none() => {}
            _ = sleep_until_opt(grace_ends), if grace_ends.is_some() && !shared.hard_stop.is_stopped() => {
                shared.hard_stop.stop();
            }
            _ = cancel.cancelled(), if !interrupted_by_user => {
                interrupted_by_user = true;
                collector.stop(Stopped::Interrupted);
                stop_sending.cancel();
                shared.hard_stop.stop();
            }
        }
        // The grace period starts once no slot is left and every claimed one has been sent: the
        // last invocation of an open schedule may still be waiting for its due time.
        if grace_ends.is_none()
            && dispatcher.exhausted.is_cancelled()
            && dispatcher.waiting.load(Ordering::Relaxed) == 0
        {
            let in_flight = shared.in_flight.now();
            if in_flight > 0 && !shared.hard_stop.is_stopped() {
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
    let peak = shared.in_flight.peak();
    collector.finish(
        start.elapsed(),
        peak,
        shared.answered.load(Ordering::Relaxed),
    )
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

#[cfg(test)]
mod tests;
