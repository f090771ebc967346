//! What a load run produced: why it stopped, the [`LoadOutcome`], and the per-invocation
//! [`Record`] that workers hand the collector.

use std::time::{Duration, SystemTime};

use tokio::time::Instant;

use super::super::stats::LoadStats;
use super::super::thresholds::{Judged, Threshold};
use crate::case::FailureGroup;
use crate::contract::{CheckId, RecordResults, Verdict};
use crate::targets::TargetError;

/// Why a run ended before its schedule did: the case layer's one enum, shared with `check`
/// (load never stops for `Deadline` or `MaxFailures`).
pub use crate::case::Stopped;

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
    /// Some invocation got an answer (anything but a timeout): a run stopped for hanging before
    /// any did judged nothing (exit 4).
    pub answered_any: bool,
    pub unreachable: Option<TargetError>,
    pub thresholds: Vec<(Threshold, Judged, bool)>,
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

    /// `--max-hangs` stopped the run before anything answered: only timeouts were seen, which
    /// says nothing about the contract (exit 4, as in `check`).
    pub fn hung_before_any_answer(&self) -> bool {
        self.stopped == Some(Stopped::Hanging) && !self.answered_any
    }

    /// Nothing answered: the run judged nothing, which must not read as a pass.
    pub fn nothing_judged(&self) -> bool {
        self.stats.invocations == 0 && self.warmup_invocations == 0
    }
}

/// How one invocation ended.
pub(super) enum End {
    /// Judged and found clean (nearly every invocation of a good transformer): its figures
    /// alone, nothing to allocate.
    Clean(Counted),
    /// Judged, with something to report.
    Answered(Box<Answered>),
    /// Refused for lack of concurrency (429): the function never ran, so nothing was judged.
    Throttled,
    /// Cut off by the end of the grace period or Ctrl-C.
    Interrupted,
    /// The very first attempts could not reach the target.
    Unreachable(TargetError),
}

/// What every judged invocation measured.
pub(super) struct Counted {
    pub(super) records: u64,
    pub(super) bytes_in: u64,
    pub(super) bytes_out: u64,
    /// How long it waited for a free instance, where the target says.
    pub(super) queue_wait: Option<Duration>,
    pub(super) results: RecordResults,
}

pub(super) struct Answered {
    pub(super) figures: Counted,
    pub(super) verdict: Verdict,
    /// Case folders saved for this invocation: (check, fingerprint, folder name).
    pub(super) saved: Vec<(CheckId, String, String)>,
}

/// One invocation, every timestamp included (STYLE habit 14).
pub(super) struct Record {
    pub(super) warmup: bool,
    pub(super) intended: Instant,
    pub(super) sent: Instant,
    pub(super) done: Instant,
    pub(super) end: End,
    /// This invocation made `--max-hangs` in a row without an answer: the run stops.
    pub(super) hang_limit: bool,
}
