//! The engine in paused time: a fake target answers from a closure, in-process, so these tests
//! start no process, open no socket and sleep for real not once. Every duration below is the
//! paused clock's, so the figures are exact.

use std::sync::Arc;
use std::sync::atomic::{AtomicU64, Ordering};
use std::time::Duration;

use async_trait::async_trait;
use bytes::Bytes;
use tokio_util::sync::CancellationToken;

use super::{LoadOutcome, Runtimes, Stopped, run_load};
use crate::events::RunEvent;
use crate::invocation::Invocation;
use crate::load::schedule::{Model, Partition, RateProfile, Schedule};
use crate::load::{EventSource, LoadPlan};
use crate::targets::{Target, TargetError};

/// How the fake answers the `n`-th call (0-based): after how long, and with what.
enum Answer {
    /// Every record back `Ok` with its data, after this long.
    Correct(Duration),
    /// The first record left out: a contract violation.
    DropsFirst(Duration),
    /// No answer within the timeout.
    Hangs,
}

struct Fake {
    answer: Box<dyn Fn(u64) -> Answer + Send + Sync>,
    calls: AtomicU64,
}

impl Fake {
    fn new(answer: impl Fn(u64) -> Answer + Send + Sync + 'static) -> Arc<Fake> {
        Arc::new(Fake {
            answer: Box::new(answer),
            calls: AtomicU64::new(0),
        })
    }
}

/// The identity transformer's answer to `event`, `skip` records left out.
fn identity(event: &[u8], skip: usize) -> Bytes {
    let event: serde_json::Value = serde_json::from_slice(event).unwrap_or_default();
    let records: Vec<serde_json::Value> = event["records"]
        .as_array()
        .into_iter()
        .flatten()
        .skip(skip)
        .map(|r| serde_json::json!({"recordId": r["recordId"], "result": "Ok", "data": r["data"]}))
        .collect();
    Bytes::from(serde_json::json!({ "records": records }).to_string())
}

#[async_trait]
impl Target for Fake {
    fn describe(&self) -> String {
        "fake".into()
    }

    async fn invoke(&self, event: Bytes, timeout: Duration) -> Result<Invocation, TargetError> {
        let n = self.calls.fetch_add(1, Ordering::Relaxed);
        let (after, skip) = match (self.answer)(n) {
            Answer::Correct(after) => (after, 0),
            Answer::DropsFirst(after) => (after, 1),
            Answer::Hangs => {
                tokio::time::sleep(timeout).await;
                return Ok(Invocation::timed_out(timeout));
            }
        };
        tokio::time::sleep(after).await;
        Ok(Invocation::answered(
            Some(200),
            identity(&event, skip),
            after,
        ))
    }
}

fn open(rate: f64, secs: u64) -> Schedule {
    Schedule::new(
        Model::Open(RateProfile::constant(rate, Some(Duration::from_secs(secs)))),
        Duration::ZERO,
        Some(Duration::from_secs(secs)),
        None,
        Partition::WHOLE,
    )
}

fn plan(schedule: Schedule) -> LoadPlan {
    // Small batches: generation and the oracle are real CPU work even in paused time.
    let config = firehose_generators::GenConfig {
        records: 1..=4,
        record_size: 0..=512,
        ..Default::default()
    };
    let mut plan = LoadPlan::new(schedule, EventSource::Generate { config, seed: 7 });
    plan.runtimes = Runtimes::Current;
    plan.timeout = Duration::from_secs(1);
    plan.grace = Duration::from_secs(2);
    plan
}

async fn run(plan: LoadPlan, target: Arc<Fake>) -> LoadOutcome {
    run_load(
        plan,
        target,
        &mut Vec::<RunEvent>::new(),
        CancellationToken::new(),
    )
    .await
}

#[tokio::test(start_paused = true)]
async fn an_open_rate_sends_every_slot_on_time() {
    let target = Fake::new(|_| Answer::Correct(Duration::from_millis(5)));
    let out = run(plan(open(100.0, 2)), target.clone()).await;
    assert_eq!(out.stats.invocations, 200);
    assert_eq!(target.calls.load(Ordering::Relaxed), 200);
    assert_eq!(out.stats.late_sends, 0);
    assert_eq!(out.stats.violations, 0, "{:?}", out.groups);
    assert_eq!(out.stopped, None);
    // Paused time: every answer took the fake's 5 ms (to the timer's millisecond grain), from the
    // due time on.
    let p100 = out.stats.response_time.max();
    assert!((4_990..=6_010).contains(&p100), "corrected max {p100} µs");
    assert_eq!(out.stats.response_time.min(), out.stats.service_time.min());
    // The run ends with the last answer (due at 1.99 s), not a moment later.
    assert!(
        out.duration >= Duration::from_millis(1_990),
        "{:?}",
        out.duration
    );
    assert!(
        out.duration < Duration::from_millis(2_100),
        "{:?}",
        out.duration
    );
}

#[tokio::test(start_paused = true)]
async fn a_slow_target_behind_one_slot_shows_in_corrected_latency_only() {
    // 100/s with one slot against 20 ms answers: sends fall behind, never skipped.
    let target = Fake::new(|_| Answer::Correct(Duration::from_millis(20)));
    let mut p = plan(open(100.0, 1));
    p.max_in_flight = 1;
    let out = run(p, target).await;
    assert_eq!(out.stats.invocations, 100);
    assert!(out.stats.late_sends >= 90, "late {}", out.stats.late_sends);
    let service = out.stats.service_time.max();
    assert!(
        (19_990..=21_010).contains(&service),
        "service max {service} µs"
    );
    // The last slot was due at 0.99 s and went at ~2 s: a second of waiting it was never told.
    assert!(out.stats.response_time.max() >= 900_000);
    assert_eq!(out.peak_in_flight, 1);
}

#[tokio::test(start_paused = true)]
async fn the_closed_model_sends_exactly_its_quota_with_its_callers() {
    let target = Fake::new(|n| Answer::Correct(Duration::from_millis(1 + n % 7)));
    let schedule = Schedule::new(
        Model::Closed { callers: 4 },
        Duration::ZERO,
        None,
        Some(40),
        Partition::WHOLE,
    );
    let out = run(plan(schedule), target.clone()).await;
    assert_eq!(out.stats.invocations, 40);
    assert_eq!(target.calls.load(Ordering::Relaxed), 40);
    assert!(out.peak_in_flight <= 4 && out.peak_in_flight >= 2);
}

#[tokio::test(start_paused = true)]
async fn violations_are_grouped_once_per_check_and_fingerprint() {
    let target = Fake::new(|n| {
        if n % 10 == 3 {
            Answer::DropsFirst(Duration::from_millis(2))
        } else {
            Answer::Correct(Duration::from_millis(2))
        }
    });
    let out = run(plan(open(50.0, 2)), target).await;
    assert_eq!(out.stats.invocations, 100);
    assert_eq!(out.stats.violations, 10);
    assert!(out.violated());
    assert!(!out.groups.is_empty());
    let cases: u64 = out
        .groups
        .iter()
        .filter(|g| g.check == crate::contract::CheckId::NoMissingRecordIds)
        .map(|g| g.cases)
        .sum();
    assert_eq!(cases, 10, "{:?}", out.groups);
}

#[tokio::test(start_paused = true)]
async fn a_target_that_never_answers_stops_after_max_hangs() {
    let target = Fake::new(|_| Answer::Hangs);
    let mut p = plan(open(10.0, 600));
    p.max_in_flight = 1;
    let out = run(p, target.clone()).await;
    assert_eq!(out.stopped, Some(Stopped::Hanging));
    assert!(out.hung_before_any_answer());
    // Three timeouts in a row, one at a time: the run did not wait out its ten minutes.
    assert_eq!(target.calls.load(Ordering::Relaxed), 3);
    assert!(out.duration < Duration::from_secs(5), "{:?}", out.duration);
}

#[tokio::test(start_paused = true)]
async fn hanging_after_answers_is_a_finding_that_cuts_the_run_short() {
    let target = Fake::new(|n| {
        if n < 5 {
            Answer::Correct(Duration::from_millis(1))
        } else {
            Answer::Hangs
        }
    });
    let mut p = plan(open(10.0, 600));
    p.max_in_flight = 1;
    let out = run(p, target).await;
    assert_eq!(out.stopped, Some(Stopped::Hanging));
    assert!(out.answered_any && !out.hung_before_any_answer());
    assert_eq!(out.stats.errors, 3, "the timeouts stay errors");
    assert!(
        out.notes.iter().any(|n| n.contains("--max-hangs")),
        "{:?}",
        out.notes
    );
}

#[tokio::test(start_paused = true)]
async fn max_hangs_zero_never_stops_the_run() {
    let target = Fake::new(|_| Answer::Hangs);
    let mut p = plan(open(10.0, 1));
    p.max_hangs = 0;
    let out = run(p, target.clone()).await;
    assert_eq!(out.stopped, None);
    assert_eq!(target.calls.load(Ordering::Relaxed), 10);
    assert_eq!(out.stats.errors, 10);
}

#[tokio::test(start_paused = true)]
async fn answers_still_out_after_the_grace_are_interrupted_not_waited_for() {
    let target = Fake::new(|_| Answer::Correct(Duration::from_secs(3_600)));
    let mut p = plan(open(10.0, 1));
    p.timeout = Duration::from_secs(7_200);
    let out = run(p, target).await;
    assert_eq!(out.interrupted, 10);
    assert_eq!(out.stats.invocations, 0);
    // One second of schedule and two of grace, not an hour.
    assert!(out.duration >= Duration::from_secs(2), "{:?}", out.duration);
    assert!(out.duration < Duration::from_secs(4), "{:?}", out.duration);
}
