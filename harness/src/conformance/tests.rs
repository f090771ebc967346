//! The runner and shrinking against an in-process fake, in paused time: no process, no socket,
//! no real sleep.

use std::collections::HashSet;
use std::time::Duration;

use bytes::Bytes;
use firehose_generators::wire::EventView;
use firehose_generators::{GenConfig, strategies::sample};
use tokio_util::sync::CancellationToken;

use super::shrink::{self, Failing};
use super::{CheckOutcome, CheckPlan, ShrinkBudget, run_check};
use crate::case::{self, Attempt, Input, Judge, Origin, Reach, Stopped};
use crate::contract::{CheckId, CheckSet};
use crate::events::RunEvent;
use crate::invocation::Invocation;
use crate::targets::fake::{FakeTarget, Reply, answer};

/// Small batches of 1..=8 records, so shrinking has somewhere to go.
fn small() -> GenConfig {
    GenConfig {
        records: 1..=8,
        record_size: 0..=64,
        ..GenConfig::default()
    }
}

fn plan(seed: u64, cases: u64, workers: usize) -> CheckPlan {
    let mut plan = CheckPlan::new(small(), seed, cases);
    plan.workers = workers;
    plan.boundary = false;
    plan.timeout = Duration::from_secs(5);
    plan
}

fn records(event: &Bytes) -> usize {
    EventView::parse(event).map_or(0, |v| v.record_ids.len())
}

/// A pseudo-random delay from the event's bytes: later cases often finish first.
fn jitter(event: &Bytes) -> Duration {
    let h = event
        .iter()
        .fold(7u64, |h, b| h.wrapping_mul(31).wrapping_add(u64::from(*b)));
    Duration::from_millis(1 + h % 97)
}

/// Two distinct bugs and a legal oddity, by batch size: 5+ records lose their last record, a
/// single record gets an illegal result, 2 or 3 records answer `ProcessingFailed` (legal).
fn buggy() -> FakeTarget {
    FakeTarget::new(|event| {
        let n = records(event);
        let body = match n {
            5.. => answer(event, |i, _| i == n - 1, None),
            1 => answer(event, |i, _| i == 0, Some("Bogus")),
            2 | 3 => answer(event, |i, _| i == 0, Some("ProcessingFailed")),
            _ => answer(event, |_, _| false, None),
        };
        Reply::Answer {
            body,
            after: jitter(event),
        }
    })
}

/// Everything the report is made of, timings left out.
fn summary(o: &CheckOutcome) -> String {
    let groups: Vec<String> = o
        .groups
        .iter()
        .map(|g| {
            format!(
                "{} {} count={} cases={} first={:?} shrink={:?} batch={:?} flaky={} phase={:?}",
                g.check.id(),
                g.fingerprint,
                g.count,
                g.cases,
                g.first,
                g.shrink,
                g.minimal_batch,
                g.flaky,
                g.phase
            )
        })
        .collect();
    format!(
        "{groups:#?}\n{:?}\n{:?}\n{:?}\n{} {:?} {:?} {:?}",
        o.phases,
        o.check_counts,
        o.results,
        o.records_sent,
        o.largest_passing,
        o.smallest_failing,
        o.stopped
    )
}

fn without_timing(events: &[RunEvent]) -> Vec<String> {
    events
        .iter()
        .map(|e| match e {
            RunEvent::CaseFinished {
                phase,
                passed,
                records,
                bytes,
                ..
            } => format!("finished {phase:?} {passed} {records} {bytes}"),
            other => format!("{other:?}"),
        })
        .collect()
}

async fn run(plan: &CheckPlan, target: &FakeTarget) -> (CheckOutcome, Vec<RunEvent>) {
    let mut events = Vec::new();
    let outcome = run_check(plan, target, &mut events, CancellationToken::new()).await;
    (outcome, events)
}

#[tokio::test(start_paused = true)]
async fn the_outcome_is_the_same_for_one_worker_and_four() {
    let (one, one_events) = run(&plan(42, 40, 1), &buggy()).await;
    let target = buggy();
    let (four, four_events) = run(&plan(42, 40, 4), &target).await;
    assert_eq!(one.groups.len(), 2, "{}", summary(&one));
    assert!(one.failed());
    assert_eq!(summary(&one), summary(&four));
    assert_eq!(without_timing(&one_events), without_timing(&four_events));
    // Every case and every shrink step was really sent, each a distinct event.
    let steps: u64 = four
        .groups
        .iter()
        .filter_map(|g| g.shrink.as_ref())
        .map(|s| s.steps)
        .sum();
    let distinct: HashSet<Bytes> = target.received().into_iter().collect();
    assert_eq!(distinct.len() as u64, four.judged() + steps);
}

#[tokio::test(start_paused = true)]
async fn four_workers_run_four_cases_at_once() {
    // Each call takes a second; 40 cases that pass take 40 s with one worker, 10 s with four.
    let slow = || {
        FakeTarget::new(|event| Reply::Answer {
            body: answer(event, |_, _| false, None),
            after: Duration::from_secs(1),
        })
    };
    let (one, _) = run(&plan(7, 40, 1), &slow()).await;
    let (four, _) = run(&plan(7, 40, 4), &slow()).await;
    assert!(!one.failed() && !four.failed());
    assert_eq!(one.duration, Duration::from_secs(40));
    assert_eq!(four.duration, Duration::from_secs(10));
}

#[tokio::test(start_paused = true)]
async fn a_fingerprint_is_first_seen_at_the_lowest_case_that_hit_it() {
    // Case 0 is slow and fails; later cases fail the same way and finish long before it.
    let target = FakeTarget::new(|event| {
        let n = records(event);
        Reply::Answer {
            body: answer(event, |i, _| i == n - 1, None),
            after: if n == 0 {
                Duration::ZERO
            } else {
                jitter(event)
            },
        }
    });
    let mut p = plan(3, 12, 6);
    p.shrink.enabled = false;
    let (o, events) = run(&p, &target).await;
    assert_eq!(o.groups.len(), 1);
    let first_new = events
        .iter()
        .position(|e| matches!(e, RunEvent::NewFailure { .. }))
        .unwrap();
    let finished_before = events[..first_new]
        .iter()
        .filter(|e| matches!(e, RunEvent::CaseFinished { .. }))
        .count();
    assert_eq!(finished_before, 1, "the first case judged opens the group");
    assert_eq!(o.groups[0].cases, 12);
}

#[tokio::test(start_paused = true)]
async fn nothing_answering_is_unreachable_and_a_later_refusal_is_a_finding() {
    let (o, _) = run(&plan(1, 5, 3), &FakeTarget::new(|_| Reply::Refuse)).await;
    assert!(o.unreachable.is_some());
    assert_eq!(o.judged(), 0);

    // Answers three calls, then refuses: the transformer died under test.
    let calls = std::sync::atomic::AtomicU64::new(0);
    let target = FakeTarget::new(move |event| {
        if calls.fetch_add(1, std::sync::atomic::Ordering::Relaxed) >= 3 {
            Reply::Refuse
        } else {
            Reply::Answer {
                body: answer(event, |_, _| false, None),
                after: Duration::from_millis(5),
            }
        }
    });
    let mut p = plan(11, 30, 1);
    p.shrink.enabled = false;
    let (o, _) = run(&p, &target).await;
    assert!(o.unreachable.is_none(), "{:?}", o.unreachable);
    assert!(
        o.groups
            .iter()
            .any(|g| g.check == CheckId::InvocationSucceeded),
        "{}",
        summary(&o)
    );
}

#[tokio::test(start_paused = true)]
async fn a_hanging_target_stops_the_run_after_max_hangs() {
    let target = FakeTarget::new(|_| Reply::Hang);
    let (o, _) = run(&plan(5, 50, 4), &target).await;
    assert_eq!(o.stopped, Some(Stopped::Hanging));
    assert!(o.nothing_judged());
    assert!(target.received().len() < 50);
}

#[tokio::test(start_paused = true)]
async fn max_failures_stops_in_case_order() {
    let mut p = plan(9, 40, 4);
    p.max_failures = Some(2);
    p.shrink.enabled = false;
    let always = FakeTarget::new(|event| Reply::Answer {
        body: answer(event, |i, _| i == 0, Some("Bogus")),
        after: jitter(event),
    });
    let (o, _) = run(&p, &always).await;
    assert_eq!(o.stopped, Some(Stopped::MaxFailures));
    assert_eq!(o.judged(), 2);
}

/// A trial answering from a function of the record count, as a transformer would.
async fn judged(event: &Bytes, bad_from: usize) -> Attempt {
    let n = records(event);
    let body = answer(event, |i, _| n >= bad_from && i == n - 1, None);
    let inv = Invocation::answered(Some(200), Bytes::from(body), Duration::ZERO);
    let view = EventView::parse(event).unwrap();
    let verdict = crate::contract::check(&view, &inv, &CheckSet::default());
    Attempt { inv, verdict }
}

#[tokio::test(start_paused = true)]
async fn shrinking_finds_the_smallest_batch_that_still_fails() {
    // Fails from 4 records on: the minimal case has exactly 4. Generated with 8 records, shrunk
    // within 1..=8.
    let eight = GenConfig {
        records: 8..=8,
        ..small()
    };
    let config = small();
    let input = Input::from_spec(sample(&eight, 99), Origin::Random { index: 0 });
    let first = judged(&input.bytes, 4).await;
    let key = first.verdict.key_counts.keys().next().unwrap().clone();
    let mut tried = 0u64;
    let mut trial = |_step: u64, candidate: &Input| {
        tried += 1;
        let bytes = candidate.bytes.clone();
        async move { Some(judged(&bytes, 4).await) }
    };
    let minimal = shrink::shrink(
        Failing {
            input: &input,
            first: &first,
            key: (key.0, &key.1),
        },
        &config,
        ShrinkBudget::default(),
        &mut trial,
    )
    .await;
    assert_eq!(minimal.view.record_ids.len(), 4);
    let summary = minimal.summary.unwrap();
    assert_eq!((summary.from_records, summary.to_records), (8, 4));
    assert_eq!(summary.steps, tried);
    assert!(!summary.budget_exhausted);
    assert_eq!(minimal.origin, Origin::Random { index: 0 });
}

#[tokio::test(start_paused = true)]
async fn shrinking_stops_at_its_budget_and_when_the_trial_gives_up() {
    let config = small();
    let input = Input::from_spec(sample(&config, 5), Origin::Random { index: 3 });
    let first = judged(&input.bytes, 1).await;
    let key = first.verdict.key_counts.keys().next().unwrap().clone();
    let budget = ShrinkBudget {
        max_invocations: 2,
        ..ShrinkBudget::default()
    };
    let mut trial = |_: u64, c: &Input| {
        let bytes = c.bytes.clone();
        async move { Some(judged(&bytes, 1).await) }
    };
    let failing = || Failing {
        input: &input,
        first: &first,
        key: (key.0, &key.1),
    };
    let m = shrink::shrink(failing(), &config, budget, &mut trial).await;
    let s = m.summary.unwrap();
    assert!(s.budget_exhausted && s.steps == 2);
    // A trial that is stopped (deadline, Ctrl-C) keeps the original case.
    let mut stopped = |_: u64, _: &Input| async { None };
    let m = shrink::shrink(failing(), &config, ShrinkBudget::default(), &mut stopped).await;
    assert_eq!(m.bytes, input.bytes);
    assert!(m.summary.unwrap().budget_exhausted);
}

#[tokio::test(start_paused = true)]
async fn attempt_sends_twice_for_deterministic_and_judges_the_difference() {
    use std::sync::atomic::{AtomicU64, Ordering};
    let calls = std::sync::Arc::new(AtomicU64::new(0));
    let seen = calls.clone();
    // Answers Ok the first time, drops everything the second.
    let target = FakeTarget::new(move |event| {
        let n = seen.fetch_add(1, Ordering::Relaxed);
        Reply::Answer {
            body: answer(event, |_, _| n > 0, Some("Dropped")),
            after: Duration::ZERO,
        }
    });
    let mut checks = CheckSet::default();
    checks.apply("+deterministic").unwrap();
    let reach = Reach::default();
    let judge = Judge {
        target: &target,
        checks: &checks,
        timeout: Duration::from_secs(1),
        reach: &reach,
    };
    let input = Input::generated(&small(), 1, 0);
    let tried = case::attempt(judge, &input.bytes, &input.view)
        .await
        .unwrap();
    assert_eq!(calls.load(Ordering::Relaxed), 2);
    assert!(tried.verdict.counts.contains_key(&CheckId::Deterministic));
}
