//! Driving the bisecting [`BatchTree`] around an async target.
//!
//! proptest's `TestRunner::run` is synchronous, so the shrinker drives `simplify`/`complicate`
//! itself: each candidate is handed to a [`Trial`], which invokes and judges it; it "still fails"
//! when it shows the same (check, fingerprint) as the original failure, so shrinking cannot slide
//! from one bug to another. The shrinker knows nothing of the runner: tests hand it a closure.

use std::collections::{BTreeSet, HashMap};
use std::hash::{Hash, Hasher};
use std::time::Instant;

use firehose_generators::strategies::EventTree;
use firehose_generators::{BatchSpec, BatchTree, Dimension, Event, GenConfig};
use proptest::strategy::ValueTree;

use super::ShrinkBudget;
use crate::case::{Attempt, Input, Minimal, ShrinkSummary};
use crate::contract::CheckId;

/// Whoever makes the attempts shrinking asks for.
pub(crate) trait Trial {
    /// Invoke and judge candidate number `step` (from 1). `None` ends shrinking at once with the
    /// best case so far (a deadline, Ctrl-C).
    async fn run(&mut self, step: u64, candidate: &Input) -> Option<Attempt>;
}

/// Any `FnMut(step, &Input) -> Future<Output = Option<Attempt>>` is a trial.
impl<F, Fut> Trial for F
where
    F: FnMut(u64, &Input) -> Fut,
    Fut: std::future::Future<Output = Option<Attempt>>,
{
    async fn run(&mut self, step: u64, candidate: &Input) -> Option<Attempt> {
        self(step, candidate).await
    }
}

/// The failure being shrunk: the case that showed it first and its (check, fingerprint).
pub(crate) struct Failing<'a> {
    pub input: &'a Input,
    pub first: &'a Attempt,
    pub key: (CheckId, &'a str),
}

/// Shrink `failing` as far as its input allows: a generated batch with the bisecting
/// [`BatchTree`], a parsed corpus event by dropping records, anything else not at all.
pub(crate) async fn shrink(
    failing: Failing<'_>,
    generator: &GenConfig,
    budget: ShrinkBudget,
    trial: &mut impl Trial,
) -> Minimal {
    let input = failing.input;
    let origin = input.origin.clone();
    match (&input.spec, &input.event, budget.enabled) {
        (Some(spec), _, true) => {
            let tree = BatchTree::new(spec.clone(), generator);
            drive(
                tree,
                |spec: BatchSpec| Input::from_spec(spec, origin.clone()),
                BatchTree::dependencies,
                failing,
                budget,
                trial,
            )
            .await
        }
        (None, Some(event), true) => {
            drive(
                EventTree::new(event.clone()),
                |event: Event| Input::from_event(event, origin.clone()),
                |_| BTreeSet::new(),
                failing,
                budget,
                trial,
            )
            .await
        }
        _ => Minimal::unshrunk(input, &failing.first.inv, &failing.first.verdict),
    }
}

/// The shrink loop, for any value tree whose values become inputs: `simplify` after a candidate
/// that still fails, `complicate` after one that passes, within the budget.
async fn drive<T: ValueTree>(
    mut tree: T,
    to_input: impl Fn(T::Value) -> Input,
    dependencies: impl Fn(&T) -> BTreeSet<Dimension>,
    failing: Failing<'_>,
    budget: ShrinkBudget,
    trial: &mut impl Trial,
) -> Minimal {
    let key = (failing.key.0, failing.key.1.to_string());
    let input = failing.input;
    let started = Instant::now();
    let from = (input.view.record_ids.len(), input.bytes.len());
    let mut best = Minimal::unshrunk(input, &failing.first.inv, &failing.first.verdict);
    let mut steps = 0u64;
    let mut exhausted = false;
    // The tree revisits values (a `complicate` can land on a batch tried before): each batch is
    // sent once, and a revisit takes the answer it got then. Keyed by a hash, not the bytes, so
    // 500 candidates of 6 MB are not kept.
    let mut seen: HashMap<(usize, u64), bool> = HashMap::new();
    seen.insert(fingerprint(&input.bytes), true);
    let mut more = tree.simplify();
    while more {
        if steps >= budget.max_invocations || started.elapsed() >= budget.max_time {
            exhausted = true;
            break;
        }
        let candidate = to_input(tree.current());
        let still_fails = match seen.get(&fingerprint(&candidate.bytes)) {
            Some(&fails) => fails,
            None => {
                let Some(tried) = trial.run(steps + 1, &candidate).await else {
                    // Deadline or Ctrl-C: keep what we have; the main loop stops at its next case.
                    exhausted = true;
                    break;
                };
                steps += 1;
                let fails = tried.judged() && tried.verdict.key_counts.contains_key(&key);
                seen.insert(fingerprint(&candidate.bytes), fails);
                if fails {
                    best = Minimal::unshrunk(&candidate, &tried.inv, &tried.verdict);
                }
                fails
            }
        };
        more = if still_fails {
            tree.simplify()
        } else {
            tree.complicate()
        };
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

/// (length, hash) of a candidate's bytes: which batches shrinking has sent already.
fn fingerprint(bytes: &[u8]) -> (usize, u64) {
    let mut h = std::collections::hash_map::DefaultHasher::new();
    bytes.hash(&mut h);
    (bytes.len(), h.finish())
}
