//! One case: what is sent, how one attempt is made and judged, how failures are filed and saved.
//!
//! `check`, `load`, `replay` and `validate` all turn an event into a judged answer and a judged
//! answer into failure groups and case folders. This layer does each of those once, so a fix to
//! how a call is judged lands in one place:
//!
//! ```text
//! Input (bytes + view + recipe) ──► attempt() ──► Attempt { Invocation, Verdict }
//!                                      │  Reach: the first error = unreachable, later = a finding
//!                                      ▼
//!                         FailureGroups::file ──► FailureGroup ──► Minimal ──► case folder (CaseJson)
//! ```
//!
//! - [`Input`], [`Origin`] — one event ready to send and where it came from.
//! - [`attempt`], [`Judge`], [`Reach`], [`Attempt`] — invoke, the reached/unreachable policy,
//!   [`crate::contract::check`] (and the second send of `deterministic`).
//! - [`FailureGroups`], [`FailureGroup`] — failures grouped by (check, fingerprint), capped.
//! - [`Minimal`], [`ShrinkSummary`] — the smallest failing case and how it was found.
//! - [`Stopped`] — why a run ended before its plan did, for `check` and `load` alike.
//! - [`CaseJson`], [`write_case`], [`load_case`] — case folders, written and read back typed.
//!
//! Nothing here imports `conformance` or `load`: both import this.

mod attempt;
mod file;
mod groups;
mod input;
mod minimal;
mod stopped;

pub use attempt::{Attempt, Judge, Reach, attempt};
pub use file::{
    CaseJson, PreparedRegression, Regressions, SavedCase, load_case, load_regressions,
    prepare_regression, write_case,
};
pub use groups::{FailureGroup, FailureGroups, ShrinkSummary};
pub use input::{Input, Origin, describe_batch};
pub use minimal::Minimal;
pub use stopped::Stopped;
