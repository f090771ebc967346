//! firehose-harness: does a Firehose transformation function honour the contract, and how much load
//! does it take?
//!
//! How data flows (no stage reaches back into an earlier one):
//!
//! ```text
//! cli ──► plan ──► generator (firehose-generators) ──► event bytes ──► targets::Target::invoke
//!                                                                        │
//!            reports ◄── report ◄── conformance (shrink, persist) ◄── contract::check ◄── Invocation
//! ```
//!
//! - [`cli`] — clap types → checked plans; the only place that knows about flags.
//! - [`values`] — the value grammar (durations, sizes, ranges, rates, stages).
//! - [`targets`] — the [`targets::Target`] trait and one file per scheme.
//! - [`emulator`] — an embedded Lambda Runtime API that runs real functions (`exec:`, `emulate`).
//! - [`invocation`] — [`invocation::Invocation`], what one call produced.
//! - [`contract`] — the oracle: `(event, invocation) → Verdict`.
//! - [`case`] — one case: input, `attempt()` (invoke + reach policy + contract), failure groups,
//!   minimal cases, `case.json`; shared by check, load, replay and validate.
//! - [`conformance`] — `check`: phases, shrinking, case folders, regressions.
//! - [`delivery`] — what Firehose would deliver: `delivered/`, `processing-failed/`, dropped ids.
//! - [`load`] — `load`: schedules, the one open/closed engine, mergeable histograms, thresholds.
//! - [`events`] — [`events::RunEvent`], the only thing reporters see; [`terminal`] renders it.
//! - [`report`] — engine results → [`firehose_reports::Report`].
//! - [`supervisor`] — `__spawn`: what `exec:`/`stdio:` functions run under, so none outlives the run.
//! - [`exit_codes`], [`errors`] — outcomes and failures → exit codes, in one place.

// The rooms only this crate enters. Their `pub` items are visible to each other, not outside.
mod case;
mod conformance;
mod delivery;
mod events;
mod load;
mod report;
mod supervisor;
mod values;

// What other crates use — the binary, the benches, the integration tests, `fuzz/` — whole…
pub mod cli;
pub mod contract;
pub mod emulator;
pub mod errors;
pub mod exit_codes;
pub mod invocation;
pub mod targets;
pub mod terminal;

// …and single items from rooms kept in (the fuzz targets read saved cases and load reports).
pub use conformance::{load_case, load_regressions};
pub use load::compare::{MaxRegression, compare as compare_load_reports};
pub use load::report::merge as merge_load_reports;
