//! One attempt: invoke, decide what a failed call means, judge the answer.

use std::sync::atomic::{AtomicBool, Ordering};
use std::time::{Duration, Instant};

use bytes::Bytes;
use firehose_generators::wire::EventView;

use crate::contract::{self, CheckId, CheckSet, Verdict};
use crate::invocation::Invocation;
use crate::targets::{Target, TargetError};

/// Whether anything has answered yet. It decides what a call that could not be made means: before
/// the first answer the target is unreachable (nothing judged, exit 4); after it, the transformer
/// died under test, which is a finding. Shared by every concurrent caller of one run.
#[derive(Debug, Default)]
pub struct Reach(AtomicBool);

impl Reach {
    pub fn reached(&self) -> bool {
        self.0.load(Ordering::Relaxed)
    }

    /// Apply the policy to one call's result.
    pub fn classify(
        &self,
        result: Result<Invocation, TargetError>,
        elapsed: Duration,
    ) -> Result<Invocation, TargetError> {
        match result {
            Ok(inv) => {
                // Read first: written once, not by every invocation of every load thread (a
                // write takes the cache line from the core that wrote it last).
                if !self.reached() {
                    self.0.store(true, Ordering::Relaxed);
                }
                Ok(inv)
            }
            Err(e) if !self.reached() => Err(e),
            // Reachable before, gone now: the transformer died under test. That is a finding.
            Err(e) => Ok(Invocation::broken(e.to_string(), elapsed)),
        }
    }
}

/// What one attempt needs besides the event.
#[derive(Clone, Copy)]
pub struct Judge<'a> {
    pub target: &'a dyn Target,
    pub checks: &'a CheckSet,
    /// Per invocation.
    pub timeout: Duration,
    pub reach: &'a Reach,
}

/// One judged call (two with `deterministic`).
#[derive(Debug, Clone)]
pub struct Attempt {
    pub inv: Invocation,
    /// Empty when the call was not judged (see [`Attempt::judged`]).
    pub verdict: Verdict,
}

impl Attempt {
    /// False when the function never answered (still throttled after its retries, or refused for
    /// lack of concurrency): counted by the target, never judged as the function's answer.
    pub fn judged(&self) -> bool {
        !self.inv.unjudged()
    }
}

/// Invoke once (twice when `deterministic` is checked and the first answer passed) and judge.
/// `Err` only when the target could not be reached and nothing has answered yet; cancel by
/// dropping the future (callers `select!` it against their deadline and Ctrl-C).
pub async fn attempt(
    judge: Judge<'_>,
    bytes: &Bytes,
    view: &EventView,
) -> Result<Attempt, TargetError> {
    let inv = invoke(judge, bytes).await?;
    if inv.unjudged() {
        return Ok(Attempt {
            inv,
            verdict: Verdict::default(),
        });
    }
    let mut verdict = contract::check(view, &inv, judge.checks);
    if judge.checks.contains(CheckId::Deterministic) && !verdict.failed() {
        let again = invoke(judge, bytes).await?;
        if let Some(v) = contract::compare_answers(&inv, &again) {
            verdict.push(judge.checks, v);
        }
    }
    Ok(Attempt { inv, verdict })
}

async fn invoke(judge: Judge<'_>, bytes: &Bytes) -> Result<Invocation, TargetError> {
    let sent = Instant::now();
    let result = judge.target.invoke(bytes.clone(), judge.timeout).await;
    judge.reach.classify(result, sent.elapsed())
}

#[cfg(test)]
mod tests {
    use super::*;

    fn unreachable() -> TargetError {
        TargetError::Unreachable {
            target: "t".into(),
            reason: "refused".into(),
        }
    }

    #[test]
    fn an_error_before_any_answer_is_unreachable_and_after_one_a_finding() {
        let reach = Reach::default();
        assert!(reach.classify(Err(unreachable()), Duration::ZERO).is_err());
        assert!(!reach.reached());
        let ok = Invocation::answered(Some(200), Bytes::new(), Duration::ZERO);
        assert!(reach.classify(Ok(ok), Duration::ZERO).is_ok());
        assert!(reach.reached());
        let later = reach
            .classify(Err(unreachable()), Duration::from_millis(5))
            .expect("a later error is a finding, not unreachable");
        assert!(matches!(
            later.outcome,
            crate::invocation::Outcome::Broken(ref why) if why.contains("refused")
        ));
        assert_eq!(later.elapsed, Duration::from_millis(5));
    }
}
