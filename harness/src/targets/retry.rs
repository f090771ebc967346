//! Jittered exponential backoff for throttles and service errors ("full jitter", as the AWS SDKs
//! do): the n-th retry waits a random time in `[0, min(cap, base·2ⁿ))`, so callers that were
//! throttled together do not come back together.

use std::hash::BuildHasher;
use std::time::Duration;

/// How often and how long to back off.
#[derive(Debug, Clone, Copy)]
pub struct Backoff {
    /// Retries after the first attempt.
    pub retries: u32,
    pub base: Duration,
    pub cap: Duration,
}

impl Default for Backoff {
    /// Five retries from 50 ms up to 2 s: at most about 3 s spent waiting on one call.
    fn default() -> Self {
        Backoff {
            retries: 5,
            base: Duration::from_millis(50),
            cap: Duration::from_secs(2),
        }
    }
}

impl Backoff {
    /// The pause before retry number `done + 1`, or `None` when the retries are spent.
    pub fn pause(&self, done: u32) -> Option<Duration> {
        if done >= self.retries {
            return None;
        }
        let ceiling = self.base.saturating_mul(1u32 << done.min(16)).min(self.cap);
        // A fresh randomly keyed hash per call: enough randomness for jitter, no RNG dependency.
        let r = std::collections::hash_map::RandomState::new().hash_one(done);
        let fraction = (r >> 11) as f64 / (1u64 << 53) as f64;
        Some(ceiling.mul_f64(fraction))
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn pauses_stay_under_the_growing_ceiling_and_stop_after_the_retries() {
        let b = Backoff::default();
        for done in 0..b.retries {
            let ceiling = (b.base * 2u32.pow(done)).min(b.cap);
            for _ in 0..50 {
                assert!(b.pause(done).unwrap() < ceiling);
            }
        }
        assert_eq!(b.pause(b.retries), None);
        // Jittered: fifty draws are not all equal.
        let draws: std::collections::BTreeSet<_> = (0..50).map(|_| b.pause(3).unwrap()).collect();
        assert!(draws.len() > 1);
    }
}
