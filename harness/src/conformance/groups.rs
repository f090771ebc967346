//! Failures grouped by (check, fingerprint): thousands of violations, a handful of bugs.

use std::collections::BTreeSet;

use firehose_generators::Dimension;

use crate::contract::{CheckId, Severity, Verdict, Violation};
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
    /// The first occurrence's message before shrinking replaced `first`, when it differs.
    pub original_message: Option<String>,
}

impl FailureGroup {
    /// A new group for the failure `(check, fingerprint)` of `verdict`, first seen in `phase`.
    ///
    /// A verdict keeps an example of every key it counts; should one ever be missing, the group
    /// still stands, with a message naming the key, rather than taking the run down.
    pub fn first_seen(verdict: &Verdict, check: CheckId, fingerprint: &str, phase: Phase) -> Self {
        let first = verdict
            .example(check, fingerprint)
            .cloned()
            .unwrap_or_else(|| Violation {
                check,
                severity: Severity::Error,
                message: format!("{} failed ({fingerprint}); no example was kept", check.id()),
                record_id: None,
                record_index: None,
                fingerprint: fingerprint.to_string(),
            });
        FailureGroup {
            check,
            fingerprint: fingerprint.to_string(),
            severity: first.severity,
            count: verdict
                .key_counts
                .get(&(check, fingerprint.to_string()))
                .copied()
                .unwrap_or(1),
            first,
            cases: 1,
            phase,
            case: None,
            flaky: false,
            shrink: None,
            minimal_batch: None,
            depends_on: BTreeSet::new(),
            original_message: None,
        }
    }

    /// One group per distinct failure of a single verdict (for `validate`).
    pub fn all_of(verdict: &Verdict, phase: Phase) -> Vec<Self> {
        verdict
            .key_counts
            .keys()
            .map(|(check, fp)| FailureGroup::first_seen(verdict, *check, fp, phase))
            .collect()
    }
}
