//! Driving the bisecting [`BatchTree`] around an async target.
//!
//! proptest's `TestRunner::run` is synchronous, so the runner drives `simplify`/`complicate` itself:
//! each candidate is invoked and judged; it "still fails" when it shows the same (check, fingerprint)
//! as the original failure, so shrinking cannot slide from one bug to another.

use std::collections::BTreeSet;
use std::time::Instant;

use bytes::Bytes;
use firehose_generators::strategies::EventTree;
use firehose_generators::wire::EventView;
use firehose_generators::{BatchSpec, BatchTree, Dimension, Event};
use proptest::strategy::ValueTree;

use super::groups::ShrinkSummary;
use super::runner::{Input, Origin, Runner};
use crate::contract::{CheckId, Verdict};
use crate::events::RunEvent;
use crate::invocation::Invocation;

/// The smallest failing case found, with what it took to get there.
pub(crate) struct Minimal {
    pub spec: Option<BatchSpec>,
    pub bytes: Bytes,
    pub view: EventView,
    pub inv: Invocation,
    pub verdict: Verdict,
    pub origin: Origin,
    pub flaky: bool,
    pub summary: Option<ShrinkSummary>,
    pub depends_on: BTreeSet<Dimension>,
}

impl Minimal {
    pub(super) fn unshrunk(input: &Input, inv: &Invocation, verdict: &Verdict) -> Minimal {
        Minimal {
            spec: input.spec.clone(),
            bytes: input.bytes.clone(),
            view: input.view.clone(),
            inv: inv.clone(),
            verdict: verdict.clone(),
            origin: input.origin.clone(),
            flaky: false,
            summary: None,
            depends_on: BTreeSet::new(),
        }
    }
}

/// Shrink a generated batch with the bisecting [`BatchTree`].
pub(super) async fn shrink_spec(
    runner: &mut Runner<'_>,
    spec: BatchSpec,
    input: &Input,
    inv: &Invocation,
    verdict: &Verdict,
    key: (CheckId, &String),
) -> Minimal {
    let origin = input.origin.clone();
    let tree = BatchTree::new(spec, &runner.plan.generator);
    drive(
        runner,
        tree,
        |spec| Input::from_spec(spec, origin.clone()),
        BatchTree::dependencies,
        (input, inv, verdict),
        key,
    )
    .await
}

/// Shrink an event no spec describes (a corpus event) by dropping records.
pub(super) async fn shrink_event(
    runner: &mut Runner<'_>,
    event: Event,
    input: &Input,
    inv: &Invocation,
    verdict: &Verdict,
    key: (CheckId, &String),
) -> Minimal {
    let origin = input.origin.clone();
    drive(
        runner,
        EventTree::new(event),
        |event| Input::from_event(event, origin.clone()),
        |_| BTreeSet::new(),
        (input, inv, verdict),
        key,
    )
    .await
}

/// The shrink loop, for any value tree whose values become inputs: `simplify` after a candidate
/// that still fails, `complicate` after one that passes, within the budget.
async fn drive<T: ValueTree>(
    runner: &mut Runner<'_>,
    mut tree: T,
    to_input: impl Fn(T::Value) -> Input,
    dependencies: impl Fn(&T) -> BTreeSet<Dimension>,
    (input, inv, verdict): (&Input, &Invocation, &Verdict),
    key: (CheckId, &String),
) -> Minimal {
    let key = (key.0, key.1.clone());
    let budget = runner.plan.shrink;
    let started = Instant::now();
    let from = (input.view.record_ids.len(), input.bytes.len());
    let mut best = Minimal::unshrunk(input, inv, verdict);
    let mut steps = 0u64;
    let mut exhausted = false;
    let mut more = tree.simplify();
    while more {
        if steps >= budget.max_invocations || started.elapsed() >= budget.max_time {
            exhausted = true;
            break;
        }
        let attempt = to_input(tree.current());
        let (cinv, cverdict) = match runner.attempt(&attempt).await {
            Ok(r) => r,
            // Deadline or Ctrl-C: keep what we have; the main loop stops at its next case.
            Err(_) => {
                exhausted = true;
                break;
            }
        };
        steps += 1;
        runner.sink.emit(RunEvent::Shrinking {
            step: steps,
            records: attempt.view.record_ids.len(),
            bytes: attempt.bytes.len(),
        });
        if cverdict.key_counts.contains_key(&key) {
            best = Minimal {
                spec: attempt.spec.clone(),
                bytes: attempt.bytes,
                view: attempt.view,
                inv: cinv,
                verdict: cverdict,
                origin: input.origin.clone(),
                flaky: false,
                summary: None,
                depends_on: BTreeSet::new(),
            };
            more = tree.simplify();
        } else {
            more = tree.complicate();
        }
    }
    best.summary = Some(ShrinkSummary {
        from_records: from.0,
        to_records: best.view.record_ids.len(),
        from_bytes: from.1,
        to_bytes: best.bytes.len(),
        steps,
        budget_exhausted: exhausted,
    });
    best.depends_on = dependencies(&tree);
    best
}
