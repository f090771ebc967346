//! Failures grouped by (check, fingerprint): thousands of violations, a handful of bugs.

use std::collections::{BTreeMap, BTreeSet, HashMap};

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
        let mut groups = FailureGroups::new(usize::MAX);
        groups.file(verdict, phase);
        groups.into_groups()
    }
}

/// The failure groups of a run, filled one verdict at a time: the first verdict with a
/// (check, fingerprint) opens its group, later ones only count. Past `cap` groups, new failures
/// are counted per check in `overflow` and the list is marked truncated.
#[derive(Debug)]
pub struct FailureGroups {
    groups: Vec<FailureGroup>,
    index: HashMap<(CheckId, String), usize>,
    cap: usize,
    /// Violations per check of distinct failures not listed (past the cap here, or past the
    /// verdict's own key limit).
    pub overflow: BTreeMap<CheckId, u64>,
    /// Some failure was not listed for the cap.
    pub truncated: bool,
}

impl FailureGroups {
    pub fn new(cap: usize) -> Self {
        FailureGroups {
            groups: Vec::new(),
            index: HashMap::new(),
            cap,
            overflow: BTreeMap::new(),
            truncated: false,
        }
    }

    /// Count every distinct failure of `verdict` in. Returns the indices of the groups this
    /// verdict opened, in (check, fingerprint) order, for the caller to shrink, save and announce.
    pub fn file(&mut self, verdict: &Verdict, phase: Phase) -> Vec<usize> {
        for (check, n) in &verdict.overflow {
            *self.overflow.entry(*check).or_default() += n;
        }
        let mut opened = Vec::new();
        for ((check, fingerprint), count) in &verdict.key_counts {
            if let Some(&i) = self.index.get(&(*check, fingerprint.clone())) {
                let g = &mut self.groups[i];
                g.count += count;
                g.cases += 1;
                continue;
            }
            if self.groups.len() >= self.cap {
                *self.overflow.entry(*check).or_default() += count;
                self.truncated = true;
                continue;
            }
            let i = self.groups.len();
            self.index.insert((*check, fingerprint.clone()), i);
            self.groups.push(FailureGroup::first_seen(
                verdict,
                *check,
                fingerprint,
                phase,
            ));
            opened.push(i);
        }
        opened
    }

    /// The group of `(check, fingerprint)`, when listed.
    pub fn find(&self, check: CheckId, fingerprint: &str) -> Option<usize> {
        self.index.get(&(check, fingerprint.to_string())).copied()
    }

    pub fn get(&self, i: usize) -> &FailureGroup {
        &self.groups[i]
    }

    pub fn get_mut(&mut self, i: usize) -> &mut FailureGroup {
        &mut self.groups[i]
    }

    pub fn into_groups(self) -> Vec<FailureGroup> {
        self.groups
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::contract::CheckSet;

    fn verdict(failures: &[(CheckId, &str)]) -> Verdict {
        let checks = CheckSet::default();
        let mut v = Verdict::default();
        for (i, (check, fp)) in failures.iter().enumerate() {
            v.push(
                &checks,
                Violation {
                    check: *check,
                    severity: Severity::Error,
                    message: format!("{fp} #{i}"),
                    record_id: None,
                    record_index: Some(i),
                    fingerprint: fp.to_string(),
                },
            );
        }
        v
    }

    #[test]
    fn the_first_verdict_opens_a_group_and_later_ones_count() {
        let mut g = FailureGroups::new(10);
        let a = verdict(&[
            (CheckId::NoMissingRecordIds, "missing"),
            (CheckId::NoMissingRecordIds, "missing"),
        ]);
        assert_eq!(g.file(&a, Phase::Random), vec![0]);
        let b = verdict(&[
            (CheckId::NoMissingRecordIds, "missing"),
            (CheckId::ResultIsLegal, "bad"),
        ]);
        assert_eq!(g.file(&b, Phase::Boundary), vec![1]);
        let missing = g.get(g.find(CheckId::NoMissingRecordIds, "missing").unwrap());
        assert_eq!((missing.count, missing.cases), (3, 2));
        assert_eq!(missing.first.message, "missing #0");
        assert_eq!(missing.phase, Phase::Random);
        assert_eq!(g.get(1).phase, Phase::Boundary);
    }

    #[test]
    fn past_the_cap_failures_are_counted_not_listed() {
        let mut g = FailureGroups::new(1);
        g.file(&verdict(&[(CheckId::ResultIsLegal, "a")]), Phase::Random);
        let opened = g.file(
            &verdict(&[(CheckId::ResultIsLegal, "b"), (CheckId::ResultIsLegal, "b")]),
            Phase::Random,
        );
        assert!(opened.is_empty());
        assert_eq!(g.groups.len(), 1);
        assert!(g.truncated);
        assert_eq!(g.overflow.get(&CheckId::ResultIsLegal), Some(&2));
    }
}
