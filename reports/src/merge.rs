//! The arithmetic of combining reports of shards that ran side by side: counts add, histograms add
//! exactly, a check takes its worst status. Judging the result (thresholds, the exit code) is the
//! harness's job; this is only the sums, so any reader of `report.json` can do them the same way.
//! Counts saturate: a report is a file anyone can edit, and a sum past `u64::MAX` must not panic.

use std::collections::BTreeMap;

use crate::histogram::{HistogramError, LatencySummary};
use crate::model::{CheckResult, Failure, Interval, LoadLatency, LoadSection, RecordCounts};

/// Two shards' optional figures: their sum when both have one, else whichever has one.
fn sum<T: std::ops::Add<Output = T>>(a: Option<T>, b: Option<T>) -> Option<T> {
    match (a, b) {
        (Some(x), Some(y)) => Some(x + y),
        (x, y) => x.or(y),
    }
}

/// Two shards' optional histograms added exactly, else whichever has one.
pub fn add_latency(
    a: &Option<LatencySummary>,
    b: &Option<LatencySummary>,
) -> Result<Option<LatencySummary>, HistogramError> {
    Ok(match (a, b) {
        (Some(x), Some(y)) => Some(x.merge(y)?),
        (x, y) => x.clone().or_else(|| y.clone()),
    })
}

impl LoadSection {
    /// Add the section of a shard that ran side by side with this one: counts, rates and in-flight
    /// figures add, histograms add exactly, intervals align by second, thresholds join by
    /// expression, the error rate is recomputed. Thresholds are not judged again here: that needs
    /// their grammar, which the harness owns.
    pub fn add(&mut self, other: &LoadSection) -> Result<(), HistogramError> {
        self.invocations = self.invocations.saturating_add(other.invocations);
        self.planned_invocations = self
            .planned_invocations
            .saturating_add(other.planned_invocations);
        self.interrupted = self.interrupted.saturating_add(other.interrupted);
        self.duration_ms = self.duration_ms.max(other.duration_ms);
        self.rate_target = sum(self.rate_target, other.rate_target);
        self.rate_achieved += other.rate_achieved;
        self.late_sends = self.late_sends.saturating_add(other.late_sends);
        self.errors = self.errors.saturating_add(other.errors);
        self.violations = self.violations.saturating_add(other.violations);
        self.records_per_second += other.records_per_second;
        self.bytes_in_per_second += other.bytes_in_per_second;
        self.bytes_out_per_second += other.bytes_out_per_second;
        self.max_in_flight = self.max_in_flight.saturating_add(other.max_in_flight);
        self.peak_in_flight = self.peak_in_flight.saturating_add(other.peak_in_flight);
        self.mean_in_flight += other.mean_in_flight;
        self.warmup_invocations = self
            .warmup_invocations
            .saturating_add(other.warmup_invocations);
        self.throttles = self.throttles.saturating_add(other.throttles);
        let (mine, theirs) = (&self.latency, &other.latency);
        self.latency = LoadLatency {
            response_time: mine.response_time.merge(&theirs.response_time)?,
            service_time: mine.service_time.merge(&theirs.service_time)?,
            lag: mine.lag.merge(&theirs.lag)?,
            queue_wait: add_latency(&mine.queue_wait, &theirs.queue_wait)?,
        };
        for t in &other.thresholds {
            match self
                .thresholds
                .iter_mut()
                .find(|x| x.expression == t.expression)
            {
                Some(x) => x.aborted_run |= t.aborted_run,
                None => self.thresholds.push(t.clone()),
            }
        }
        let mut intervals: BTreeMap<u64, Interval> =
            self.intervals.drain(..).map(|i| (i.second, i)).collect();
        for i in &other.intervals {
            match intervals.get_mut(&i.second) {
                Some(a) => a.add(i)?,
                None => {
                    intervals.insert(i.second, i.clone());
                }
            }
        }
        self.intervals = intervals.into_values().collect();
        self.error_rate = if self.invocations == 0 {
            0.0
        } else {
            self.errors as f64 / self.invocations as f64
        };
        Ok(())
    }
}

impl RecordCounts {
    /// Add another shard's record counts.
    pub fn add(&mut self, other: &RecordCounts) {
        self.sent = self.sent.saturating_add(other.sent);
        self.ok = self.ok.saturating_add(other.ok);
        self.dropped = self.dropped.saturating_add(other.dropped);
        self.processing_failed = self
            .processing_failed
            .saturating_add(other.processing_failed);
    }
}

impl Interval {
    /// Add another shard's row for the same second, its histogram included, and recompute the
    /// percentiles from the sum.
    pub fn add(&mut self, other: &Interval) -> Result<(), HistogramError> {
        let mut h = LatencySummary::decode(&self.histogram)?;
        h.add(LatencySummary::decode(&other.histogram)?)
            .map_err(|e| HistogramError::Add(e.to_string()))?;
        self.invocations = self.invocations.saturating_add(other.invocations);
        self.records = self.records.saturating_add(other.records);
        self.bytes_in = self.bytes_in.saturating_add(other.bytes_in);
        self.bytes_out = self.bytes_out.saturating_add(other.bytes_out);
        self.errors = self.errors.saturating_add(other.errors);
        self.violations = self.violations.saturating_add(other.violations);
        self.late_sends = self.late_sends.saturating_add(other.late_sends);
        self.planned = sum(self.planned, other.planned);
        self.p50 = h.value_at_quantile(0.5);
        self.p99 = h.value_at_quantile(0.99);
        self.histogram = LatencySummary::encode(&h);
        Ok(())
    }
}

/// Fold another shard's checks into `into`, matched by check id: violations add, the worse status
/// wins, checks only the other shard ran are appended.
pub fn add_checks(into: &mut Vec<CheckResult>, other: &[CheckResult]) {
    for c in other {
        match into.iter_mut().find(|x| x.id == c.id) {
            Some(x) => {
                x.violations = x.violations.saturating_add(c.violations);
                x.status = x.status.worse(c.status);
            }
            None => into.push(c.clone()),
        }
    }
}

/// Fold another shard's failures into `into`, matched by check and fingerprint (never by message
/// text, which differs in ids and offsets): counts add, the first case folder named is kept.
pub fn add_failures(into: &mut Vec<Failure>, other: &[Failure]) {
    for f in other {
        match into
            .iter_mut()
            .find(|x| x.check == f.check && x.fingerprint == f.fingerprint)
        {
            Some(x) => {
                x.count = x.count.saturating_add(f.count);
                x.cases = x.cases.saturating_add(f.cases);
                if x.case.is_none() {
                    x.case = f.case.clone();
                }
            }
            None => into.push(f.clone()),
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::histogram::new_latency_histogram;
    use crate::model::{CheckStatus, Severity};

    fn check(id: &str, status: CheckStatus, violations: u64) -> CheckResult {
        CheckResult {
            id: id.into(),
            code: "X".into(),
            status,
            violations,
            summary: String::new(),
            firehose_documented: true,
        }
    }

    fn failure(check: &str, fingerprint: &str, message: &str, case: Option<&str>) -> Failure {
        Failure {
            check: check.into(),
            code: "X".into(),
            severity: Severity::Error,
            message: message.into(),
            count: 2,
            cases: 1,
            record_id: None,
            case: case.map(Into::into),
            fingerprint: fingerprint.into(),
            phase: "random".into(),
            flaky: false,
            shrink: None,
            minimal_batch: None,
            depends_on: Vec::new(),
            original_message: None,
        }
    }

    #[test]
    fn checks_add_by_id_and_the_worse_status_wins() {
        let mut into = vec![
            check("a", CheckStatus::Pass, 0),
            check("b", CheckStatus::Fail, 3),
        ];
        add_checks(
            &mut into,
            &[
                check("a", CheckStatus::Warn, 1),
                check("b", CheckStatus::Pass, 0),
                check("c", CheckStatus::Skipped, 0),
            ],
        );
        let got: Vec<_> = into
            .iter()
            .map(|c| (c.id.as_str(), c.status, c.violations))
            .collect();
        assert_eq!(
            got,
            [
                ("a", CheckStatus::Warn, 1),
                ("b", CheckStatus::Fail, 3),
                ("c", CheckStatus::Skipped, 0)
            ]
        );
    }

    #[test]
    fn failures_match_by_fingerprint_not_by_their_words() {
        let mut into = vec![failure("no_missing_record_ids", "f1", "id 1 missing", None)];
        add_failures(
            &mut into,
            &[
                failure(
                    "no_missing_record_ids",
                    "f1",
                    "id 7 missing",
                    Some("case-1"),
                ),
                failure("no_missing_record_ids", "f2", "id 1 missing", None),
            ],
        );
        assert_eq!(into.len(), 2);
        assert_eq!((into[0].count, into[0].cases), (4, 2));
        assert_eq!(into[0].case.as_deref(), Some("case-1"));
        assert_eq!(into[1].fingerprint, "f2");
    }

    #[test]
    fn intervals_add_their_histograms_exactly() {
        let row = |values: &[u64]| {
            let mut h = new_latency_histogram();
            for v in values {
                h.record(*v).unwrap();
            }
            Interval {
                invocations: values.len() as u64,
                late_sends: 1,
                planned: Some(2.0),
                histogram: LatencySummary::encode(&h),
                ..Interval::default()
            }
        };
        let mut a = row(&[100, 200]);
        a.add(&row(&[10_000, 20_000])).unwrap();
        assert_eq!(a.invocations, 4);
        assert_eq!(a.late_sends, 2);
        assert_eq!(a.planned, Some(4.0));
        assert_eq!(LatencySummary::decode(&a.histogram).unwrap().len(), 4);
        assert!(
            a.p99 >= 19_000,
            "p99 {} must come from the summed histogram",
            a.p99
        );
        let mut broken = row(&[1]);
        broken.histogram = "not base64!".into();
        assert!(a.add(&broken).is_err());
    }

    #[test]
    fn record_counts_add() {
        let mut a = RecordCounts {
            sent: 3,
            ok: 1,
            dropped: 1,
            processing_failed: 1,
        };
        a.add(&RecordCounts {
            sent: 2,
            ok: 2,
            dropped: 0,
            processing_failed: 0,
        });
        assert_eq!(
            a,
            RecordCounts {
                sent: 5,
                ok: 3,
                dropped: 1,
                processing_failed: 1
            }
        );
    }

    #[test]
    fn the_verdict_is_read_off_the_exit_code() {
        use crate::model::Verdict;
        assert_eq!(Verdict::from_exit_code(0), Verdict::Pass);
        for code in [1, 2, 3, 4, 130] {
            assert_eq!(Verdict::from_exit_code(code), Verdict::Fail);
        }
    }
}
