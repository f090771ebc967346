//! `load`: how much load a transformer takes, with honest latency and every answer contract-checked.
//!
//! ```text
//! Schedule ──slots──► engine (one loop, open or closed) ──spawn──► invoke + contract::check
//!                        ▲ events: generated / pool / --event            │ one Record per invocation
//!                        │                                               ▼ (bounded channel)
//!                  EventFeed                                   collector: LoadStats, Intervals,
//!                                                              thresholds, hlog, LoadEvents ──► sink
//! ```
//!
//! - [`schedule`] — pure timelines: constant rate, k6 stages, closed-model callers, warm-up,
//!   partitions `i/n`.
//! - [`engine`] — [`run_load`]: the one loop, handed a [`Schedule`]. It never waits for answers to
//!   decide when to send (open model); when the in-flight cap is reached, sends wait and count as late.
//! - [`stats`] — [`LoadStats`] (three HDR histograms: corrected, uncorrected, lag) and per-second
//!   [`stats::Intervals`]; shards merge as reports (`report merge`).
//! - [`thresholds`] — `p99<250ms`, `error_rate<0.1%`, … with `:abort`.
//! - [`firehose_model`] — ingest rate + buffer hints → invocation rate, batch size, outstanding limit.
//! - [`hlog`] — per-second histograms as an HdrHistogram interval log.
//! - [`report`] — [`LoadOutcome`] → [`firehose_reports::Report`]; merging reports.
//! - [`compare`] — a baseline against a new run, percentile by percentile, for CI gates.
//! - [`live`] — the terminal's live view (a sink; the engine never prints).
//!
//! How to drive the engine without the CLI — a plan, a target, a sink — is shown by its unit tests
//! (`engine/tests.rs`), which run it in paused time against an in-process fake target.

pub mod compare;
pub mod engine;
pub mod firehose_model;
pub mod hlog;
pub mod live;
pub mod report;
pub mod schedule;
pub mod stats;
pub mod thresholds;

use std::path::PathBuf;
use std::sync::Arc;
use std::time::Duration;

use bytes::Bytes;
use firehose_generators::wire::EventView;
use firehose_generators::{BatchSpec, GenConfig};

pub use engine::{Runtimes, run_load};
pub use schedule::Schedule;

use crate::conformance::Origin;
use crate::contract::{CheckId, CheckSet};
use firehose_model::FirehoseModel;
use thresholds::Threshold;

/// Default `--max-in-flight`: enough to saturate most targets, small enough that 64 six-megabyte
/// events cannot exhaust memory.
pub const DEFAULT_MAX_IN_FLIGHT: usize = 64;

/// Default grace for invocations still in flight when the schedule ends (k6's `gracefulStop`).
pub const DEFAULT_GRACE: Duration = Duration::from_secs(30);

/// Failing cases saved per check: the first few are enough to debug, the rest are counted.
pub const CASES_PER_CHECK: u32 = 3;

/// Checks whose failures count toward `error_rate` under load rather than as contract violations:
/// under pressure, errors and timeouts are what is being measured (DESIGN.md).
pub fn counts_as_error(check: CheckId) -> bool {
    matches!(check, CheckId::InvocationSucceeded | CheckId::WithinTimeout)
}

/// One event ready to send, shared by every invocation that sends it.
#[derive(Debug)]
pub struct Prepared {
    pub bytes: Bytes,
    pub view: EventView,
    /// The generated batch's recipe (for case folders), when it was generated.
    pub spec: Option<BatchSpec>,
    pub(crate) origin: Origin,
}

impl Prepared {
    /// A generated batch: `seed` with case index `index` gives the same bytes `check` would send.
    pub fn generated(config: &GenConfig, seed: u64, index: u64) -> Prepared {
        let spec =
            firehose_generators::strategies::sample(config, GenConfig::case_seed(seed, index));
        let event = spec.materialize();
        Prepared {
            view: EventView::from(&event),
            bytes: Bytes::from(event.to_json()),
            spec: Some(spec),
            origin: Origin::Random { index },
        }
    }

    /// A fixed event from a file (`--event`), sent as is.
    pub fn from_file(label: String, bytes: Vec<u8>) -> Result<Prepared, String> {
        let view = EventView::parse(&bytes).map_err(|e| format!("{label}: {e}"))?;
        Ok(Prepared {
            bytes: Bytes::from(bytes),
            view,
            spec: None,
            origin: Origin::Corpus { file: label },
        })
    }
}

/// Where each invocation's event comes from.
#[derive(Debug, Clone)]
pub enum EventSource {
    /// Every invocation sends the same bytes (`--event FILE`), as oha sends one fixed body.
    Fixed(Arc<Prepared>),
    /// A pool generated up front (`--event-pool N`), reused round-robin: for targets so fast that
    /// generation would be the bottleneck.
    Pool(Vec<Arc<Prepared>>),
    /// A fresh batch per invocation, generated on background threads just ahead of the schedule:
    /// invocation `k` sends case `k` of `seed`.
    Generate { config: GenConfig, seed: u64 },
}

impl EventSource {
    /// How reports name it.
    pub fn describe(&self) -> String {
        match self {
            EventSource::Fixed(p) => match &p.origin {
                Origin::Corpus { file } => format!("fixed event {file}"),
                _ => "fixed event".into(),
            },
            EventSource::Pool(p) => format!("pool of {} generated events", p.len()),
            EventSource::Generate { .. } => "generated per invocation".into(),
        }
    }
}

/// Everything a load run needs, already validated.
#[derive(Debug, Clone)]
pub struct LoadPlan {
    pub schedule: Schedule,
    pub events: EventSource,
    /// Most invocations outstanding at once; further sends wait (and count as late).
    pub max_in_flight: usize,
    pub timeout: Duration,
    /// How long invocations still in flight after the schedule may take before they count as
    /// interrupted.
    pub grace: Duration,
    pub checks: CheckSet,
    pub thresholds: Vec<Threshold>,
    /// The run's seed (reports and case folders quote it).
    pub seed: u64,
    /// Where failing cases are saved (`REPORT_DIR/cases`).
    pub cases_dir: Option<PathBuf>,
    pub cases_per_check: u32,
    /// Where the interval log goes (`REPORT_DIR/latency.hlog`).
    pub hlog: Option<PathBuf>,
    pub firehose: Option<FirehoseModel>,
    /// How often the live view is refreshed.
    pub progress_every: Duration,
    /// `--keep-delivered`: told every measured answer, to work out what Firehose would deliver.
    pub delivery: Option<std::sync::Arc<crate::delivery::DeliveryLog>>,
    /// `--max-hangs`: this many invocations in a row (in completion order) without an answer
    /// within the timeout stop the run, as in `check` (0 = never).
    pub max_hangs: u32,
    /// Where the engine runs and whose clock it reads: per-core runtimes for real runs, the
    /// caller's runtime for unit tests in paused time.
    pub runtimes: Runtimes,
}

impl LoadPlan {
    /// A plan with `load`'s defaults.
    pub fn new(schedule: Schedule, events: EventSource) -> LoadPlan {
        let seed = match &events {
            EventSource::Generate { seed, .. } => *seed,
            _ => 0,
        };
        LoadPlan {
            schedule,
            events,
            max_in_flight: DEFAULT_MAX_IN_FLIGHT,
            timeout: Duration::from_secs(firehose_generators::wire::MAX_INVOCATION_SECS),
            grace: DEFAULT_GRACE,
            checks: CheckSet::default(),
            thresholds: Vec::new(),
            seed,
            cases_dir: None,
            cases_per_check: CASES_PER_CHECK,
            hlog: None,
            firehose: None,
            progress_every: Duration::from_millis(250),
            delivery: None,
            max_hangs: crate::conformance::DEFAULT_MAX_HANGS,
            runtimes: Runtimes::default(),
        }
    }
}

// The load run's events live with every other event (`events.rs` names no engine).
pub use crate::events::{LoadEvent, Progress};
