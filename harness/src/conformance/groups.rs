//! Failures grouped by (check, fingerprint): thousands of violations, a handful of bugs.

use std::collections::BTreeSet;

use firehose_generators::Dimension;

use crate::contract::{CheckId, Severity, Violation};
use crate::events::Phase;

/// How a failing case was shrunk.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct ShrinkSummary {
    pub from_records: usize,
    pub to_records: usize,
    pub from_bytes: usize,
    pub to_bytes: usize,
    pub steps: u64,
    pub budget_exhausted: bool,
}

/// One distinct failure of a run.
#[derive(Debug, Clone)]
pub struct FailureGroup {
    pub check: CheckId,
    pub fingerprint: String,
    pub severity: Severity,
    /// The first occurrence (from the minimal case when it was shrunk).
    pub first: Violation,
    /// Violations over the run.
    pub count: u64,
    /// Cases in which it occurred.
    pub cases: u64,
    pub phase: Phase,
    /// Case folder name, when saved.
    pub case: Option<String>,
    pub flaky: bool,
    pub shrink: Option<ShrinkSummary>,
    /// "1 record: json, 65,537 bytes"
    pub minimal_batch: Option<String>,
    pub depends_on: BTreeSet<Dimension>,
}
