//! What the engine tells the outside world while it runs: the only thing reporters ever see.
//!
//! The engine never prints. Run functions take an [`EventSink`]; the CLI wires a terminal reporter to
//! it, tests wire a `Vec`. Events are small and cheap to ignore.

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
    /// Something worth a line in the terminal ("deadline reached after 57 of 100 cases").
    Note(String),
    /// What a `load` run reports while it runs (progress, new failures, threshold breaches).
    Load(LoadEvent),
}

/// Receives events. `emit` must be quick: it runs on the engine's path.
pub trait EventSink: Send {
    fn emit(&mut self, event: RunEvent);
}

impl EventSink for Vec<RunEvent> {
    fn emit(&mut self, event: RunEvent) {
        self.push(event);
    }
}

/// What a load run tells the outside world while it runs (inside [`RunEvent::Load`]).
#[derive(Debug, Clone)]
pub enum LoadEvent {
    Started {
        target: String,
        model: String,
        planned: Option<u64>,
        warmup: Duration,
        max_in_flight: usize,
    },
    /// The warm-up is over; figures count from here.
    Measuring,
    Progress(Progress),
    /// A (check, fingerprint) not seen before in this run.
    NewFailure {
        check: &'static str,
        message: String,
    },
    ThresholdBreached {
        expression: String,
        actual: String,
        aborting: bool,
    },
    /// The schedule is done; `in_flight` invocations get `grace` to finish.
    Draining {
        in_flight: u64,
        grace: Duration,
    },
}

/// A snapshot for the live view.
#[derive(Debug, Clone, Default)]
pub struct Progress {
    pub elapsed: Duration,
    pub warming_up: bool,
    /// Measured invocations finished so far.
    pub invocations: u64,
    pub planned: Option<u64>,
    /// Invocations finished per second, over the last second.
    pub rate: f64,
    pub in_flight: u64,
    /// Corrected response time so far, µs.
    pub p99: u64,
    pub errors: u64,
    pub violations: u64,
    pub late_sends: u64,
}
