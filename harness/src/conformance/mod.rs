//! `check`: generate → invoke → judge → shrink → persist, phase by phase.
//!
//! [`run_check`] takes a validated [`CheckPlan`] and a started [`Target`], emits [`RunEvent`]s while it
//! works, and returns a [`CheckOutcome`] that [`crate::report`] turns into the report. Phases run in
//! order: regressions saved by earlier runs, the boundary corners, the corpus, then `--cases` random
//! batches from the seed. A failure not seen before in the run is shrunk (within a budget), re-run to
//! tell flaky from real, saved as a case folder and as a regression; later occurrences only count.
//!
//! Up to [`CheckPlan::workers`] cases are in flight at once (`inflight.rs`), but the runner takes
//! their answers strictly in case order: a failure's first case is the lowest index that hit it,
//! and the outcome is the same for any number of workers. Invoking and judging is the case layer's
//! [`crate::case::attempt`]; shrinking (`shrink.rs`) asks for attempts through its `Trial` trait and
//! knows nothing of the runner, so `runner → shrink → case` has no way back.

mod endpoint;
mod inflight;
mod runner;
mod shrink;
#[cfg(test)]
mod tests;

use std::path::PathBuf;
use std::time::Duration;

use firehose_generators::GenConfig;

// The case layer's types, where callers of `check` have always found them.
pub use crate::case::{FailureGroup, Origin, load_case, load_regressions};
pub use runner::{CheckOutcome, run_check};

use crate::contract::CheckSet;

/// `--max-hangs`: consecutive unanswered invocations that end a run.
pub const DEFAULT_MAX_HANGS: u32 = 3;

/// How much effort shrinking one failure may cost.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub struct ShrinkBudget {
    pub enabled: bool,
    /// Invocations spent on one failure at most.
    pub max_invocations: u64,
    /// Wall time spent on one failure at most.
    pub max_time: Duration,
}

impl Default for ShrinkBudget {
    fn default() -> Self {
        ShrinkBudget {
            enabled: true,
            max_invocations: 500,
            max_time: Duration::from_secs(60),
        }
    }
}

/// An event from a corpus, ready to send.
#[derive(Debug, Clone)]
pub struct CorpusCase {
    /// The file it came from, for reports.
    pub label: String,
    /// The bytes to send: the file verbatim (`--corpus-raw`) or its normalised event.
    pub bytes: Vec<u8>,
}

/// Everything `check` needs to know, already validated.
#[derive(Debug, Clone)]
pub struct CheckPlan {
    pub generator: GenConfig,
    pub seed: u64,
    /// Random cases, after the boundary phase.
    pub cases: u64,
    pub checks: CheckSet,
    /// Per invocation.
    pub timeout: Duration,
    /// For the whole run.
    pub deadline: Option<Duration>,
    /// Stop after this many failing cases.
    pub max_failures: Option<u64>,
    /// Cases in flight at once (`--workers`); at least 1. Judging stays in case order, so the
    /// outcome does not depend on it.
    pub workers: usize,
    /// Stop after this many invocations in a row got no answer (0 = never): a target that hangs
    /// must not hold CI for cases × timeout.
    pub max_hangs: u32,
    pub shrink: ShrinkBudget,
    pub boundary: bool,
    /// Where minimal failing cases are saved and replayed from.
    pub regressions: Option<PathBuf>,
    /// Where case folders are written (`REPORT_DIR/cases`).
    pub cases_dir: Option<PathBuf>,
    pub corpus: Vec<CorpusCase>,
    /// Facts about the inputs the report should state (e.g. that corpus quirks were normalised).
    pub notes: Vec<String>,
    /// Told every judged invocation, to work out what Firehose would deliver.
    pub delivery: Option<std::sync::Arc<crate::delivery::DeliveryLog>>,
}

impl CheckPlan {
    /// A plan with the defaults of `check` and the given generator settings.
    pub fn new(generator: GenConfig, seed: u64, cases: u64) -> Self {
        CheckPlan {
            generator,
            seed,
            cases,
            checks: CheckSet::default(),
            timeout: Duration::from_secs(firehose_generators::wire::MAX_INVOCATION_SECS),
            deadline: None,
            max_failures: None,
            workers: 1,
            max_hangs: DEFAULT_MAX_HANGS,
            shrink: ShrinkBudget::default(),
            boundary: true,
            regressions: None,
            cases_dir: None,
            corpus: Vec::new(),
            notes: Vec::new(),
            delivery: None,
        }
    }
}
