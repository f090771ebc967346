//! What the engine tells the outside world while it runs: the only thing reporters ever see.
//!
//! The engine never prints. Run functions take an [`EventSink`]; the CLI wires a terminal reporter to
//! it, tests wire a `Vec`. Events are small and cheap to ignore.

use std::path::PathBuf;
use std::time::Duration;

/// The phases of a `check` run, in the order they run.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Hash, PartialOrd, Ord)]
pub enum Phase {
    /// Minimal failing cases saved by earlier runs, replayed first so fixed bugs stay fixed.
    Regression,
    /// Fixed corner batches (one record, empty record, maximal record, near-6 MB batch, …).
    Boundary,
    /// Real sample events from `--corpus`.
    Corpus,
    /// Random batches from the seed.
    Random,
}

impl Phase {
    pub fn name(self) -> &'static str {
        match self {
            Phase::Regression => "regression",
            Phase::Boundary => "boundary",
            Phase::Corpus => "corpus",
            Phase::Random => "random",
        }
    }
}

/// One thing that happened.
#[derive(Debug, Clone)]
pub enum RunEvent {
    Started {
        target: String,
        seed: u64,
        planned: u64,
    },
    PhaseStarted {
        phase: Phase,
        cases: u64,
    },
    CaseFinished {
        phase: Phase,
        passed: bool,
        elapsed: Duration,
        records: usize,
        bytes: usize,
    },
    /// A failure not seen before in this run.
    NewFailure {
        phase: Phase,
        check: &'static str,
        message: String,
    },
    Shrinking {
        step: u64,
        records: usize,
        bytes: usize,
    },
    CaseSaved {
        dir: PathBuf,
    },
    /// Something worth a line in the terminal ("deadline reached after 57 of 100 cases").
    Note(String),
    /// What a `load` run reports while it runs (progress, new failures, threshold breaches).
    Load(crate::load::LoadEvent),
}

/// Receives events. `emit` must be quick: it runs on the engine's path.
pub trait EventSink: Send {
    fn emit(&mut self, event: RunEvent);
}

/// Ignores everything.
pub struct NullSink;

impl EventSink for NullSink {
    fn emit(&mut self, _: RunEvent) {}
}

impl EventSink for Vec<RunEvent> {
    fn emit(&mut self, event: RunEvent) {
        self.push(event);
    }
}
