//! Load results as reports, and reports combined: [`load_report`] (one run), [`merge`] (shards of one
//! run, exactly: histograms are added, never percentiles averaged). Comparing a baseline with a new
//! run is [`super::compare`].

use firehose_generators::GenConfig;
use firehose_reports::{
    CheckResult, CheckStatus, Failure, FirehoseModelSection, HistogramError, LatencySummary,
    LoadLatency, LoadSection, Report, Severity as RSeverity, ThresholdResult, Verdict,
};

use super::engine::{LoadOutcome, Stopped, describe_model};
use super::firehose_model::{FirehoseModel, Measured, Trigger};
use super::schedule::{Model, Partition, Schedule};
use super::thresholds::{Figures, Threshold};
use super::{LoadPlan, counts_as_error};
use crate::contract::CheckId;
use crate::exit_codes;
use crate::report::{check_results, failures, generator_flags, record_counts, timestamp};
use firehose_reports::markdown::micros;

/// Why a run that judged nothing exits 4.
pub const NOTHING_ANSWERED: &str = "no invocation was answered, so nothing was judged";

fn per_second(n: u64, secs: f64) -> f64 {
    if secs > 0.0 { n as f64 / secs } else { 0.0 }
}

/// Under load, function errors and timeouts feed `error_rate` (and its thresholds), not exit 1: their
/// checks read `warn`, their failures are warnings.
fn demote_error_checks(checks: &mut [CheckResult], failures: &mut [Failure]) {
    for c in checks.iter_mut() {
        if CheckId::parse(&c.id).is_some_and(counts_as_error) && c.status == CheckStatus::Fail {
            c.status = CheckStatus::Warn;
        }
    }
    for f in failures.iter_mut() {
        if CheckId::parse(&f.check).is_some_and(counts_as_error) {
            f.severity = RSeverity::Warning;
        }
    }
}

/// The Firehose model's answer in one sentence, with its formula.
fn firehose_section(m: &FirehoseModel, outcome: &LoadOutcome) -> FirehoseModelSection {
    let s = &m.settings;
    let st = &outcome.stats;
    let mean_service_s = if st.service_time.is_empty() {
        0.0
    } else {
        st.service_time.mean() / 1e6
    };
    let waited_for_limit = if outcome.peak_in_flight >= u64::from(m.outstanding) {
        st.late_sends
    } else {
        0
    };
    let verdict = m.verdict(&Measured {
        rate: outcome.rate_achieved(),
        mean_service_s,
        p99_us: st.response_time.value_at_quantile(0.99),
        peak_in_flight: outcome.peak_in_flight,
        waited_for_limit,
        run: outcome.measured_span,
    });
    FirehoseModelSection {
        ingest_bytes_per_second: s.ingest,
        buffer_size: s.buffer_size,
        buffer_interval_ms: s.buffer_interval.as_millis() as u64,
        shards: s.shards,
        trigger: match m.trigger {
            Trigger::Size => "size",
            Trigger::Interval => "interval",
        }
        .into(),
        invocation_rate: m.rate,
        batch_bytes: m.batch_bytes,
        outstanding_limit: m.outstanding,
        description: m.describe(),
        verdict,
    }
}

/// The invocations an open schedule planned for second `second` of the measured run (this
/// partition's share): the rate at the middle of that second.
fn planned_in_second(schedule: &Schedule, second: u64) -> Option<f64> {
    let Model::Open(profile) = schedule.model() else {
        return None;
    };
    let share = f64::from(schedule.slice().count);
    let mut t = second as f64 + 0.5;
    for seg in &profile.segments {
        let len = seg.duration.map_or(f64::INFINITY, |d| d.as_secs_f64());
        if t < len {
            let rate = if len.is_finite() && len > 0.0 {
                seg.from + (seg.to - seg.from) * t / len
            } else {
                seg.from
            };
            return Some(rate / share);
        }
        t -= len;
    }
    Some(0.0)
}

/// Achieved under this share of the planned rate, a run fell behind and says so.
pub const BEHIND_SHARE: f64 = 0.9;

/// Which limited a run that fell behind its schedule, and why, in words: the target (closed
/// model: callers wait for answers), the in-flight cap (reached: sends queued behind slow
/// answers), or the harness itself (the cap was never reached, yet sends were late: the harness
/// could not generate and send on time).
fn limiter(plan: &LoadPlan, outcome: &LoadOutcome) -> Option<(String, String)> {
    let st = &outcome.stats;
    let rate = outcome.rate_achieved();
    let planned = plan.schedule.rate_target();
    let behind = planned.is_some_and(|p| rate < p * BEHIND_SHARE);
    if matches!(plan.schedule.model(), Model::Closed { .. }) {
        return Some((
            "target".into(),
            format!(
                "closed model: each caller waits for its answer, so the target's service time (mean {}) sets the rate",
                micros(st.service_time.mean().round() as u64)
            ),
        ));
    }
    if st.late_sends == 0 && !behind {
        return None;
    }
    let cap = plan.max_in_flight as u64;
    if outcome.peak_in_flight >= cap {
        let needed = rate.max(planned.unwrap_or(0.0)) * st.service_time.mean() / 1e6;
        Some((
            "in-flight cap".into(),
            format!(
                "all {cap} in-flight slots were busy, so sends waited for the target's answers (Little's law: the planned rate × mean service time {} needs about {needed:.1} in flight); raise --max-in-flight or speed up the target",
                micros(st.service_time.mean().round() as u64)
            ),
        ))
    } else {
        Some((
            "harness".into(),
            format!(
                "the in-flight cap ({cap}) was never reached (peak {}), so the target was not what held sends back: the harness itself could not generate and send on time (CPU, event generation); try --event-pool, a smaller batch, or split the run with --partition",
                outcome.peak_in_flight
            ),
        ))
    }
}

/// The report of a `load` run.
pub fn load_report(
    outcome: &LoadOutcome,
    plan: &LoadPlan,
    generator: Option<&GenConfig>,
) -> Report {
    let st = &outcome.stats;
    let mut report = Report::new("load", &outcome.target);
    report.seed =
        matches!(plan.events, super::EventSource::Generate { .. }).then(|| plan.seed.to_string());
    report.started_at = timestamp(outcome.started_at);
    report.duration_ms = outcome.duration.as_millis() as u64;
    report.stopped_early = outcome.stopped.as_ref().map(|s| s.name().to_string());
    report.checks = check_results(&plan.checks, &st.check_counts, &outcome.groups);
    report.failures = failures(&outcome.groups);
    report.failures_truncated = outcome.groups_truncated;
    demote_error_checks(&mut report.checks, &mut report.failures);
    report.records = record_counts(st.records, &st.results);
    // The headline is the corrected figure: it is what thresholds judge and what Firehose waits.
    if !st.response_time.is_empty() {
        report.latency = Some(LatencySummary::from_histogram(&st.response_time));
    }
    report.generator = generator.map(generator_flags);
    report.notes = outcome.notes.clone();
    if let Some(e) = &outcome.unreachable {
        crate::report::mark_nothing_judged(&mut report, format!("{e}; {}", e.hint()));
    } else if outcome.hung_before_any_answer() {
        crate::report::mark_nothing_judged(
            &mut report,
            crate::report::NOTHING_ANSWERED_HANGING.into(),
        );
    } else if outcome.nothing_judged() && outcome.stopped != Some(Stopped::Interrupted) {
        crate::report::mark_nothing_judged(&mut report, NOTHING_ANSWERED.into());
    }
    let secs = outcome.measured_span.as_secs_f64();
    let rate = outcome.rate_achieved();
    let mean_service_s = if st.service_time.is_empty() {
        0.0
    } else {
        st.service_time.mean() / 1e6
    };
    let partition = plan.schedule.slice();
    report.load = Some(LoadSection {
        model: describe_model(&plan.schedule),
        invocations: st.invocations,
        planned_invocations: plan.schedule.planned().unwrap_or(st.invocations),
        interrupted: outcome.interrupted,
        duration_ms: outcome.measured_span.as_millis() as u64,
        rate_target: plan.schedule.rate_target(),
        rate_achieved: rate,
        late_sends: st.late_sends,
        errors: st.errors,
        error_rate: st.error_rate(),
        throttles: st.throttles,
        violations: st.violations,
        records_per_second: per_second(st.records, secs),
        bytes_in_per_second: per_second(st.bytes_in, secs),
        bytes_out_per_second: per_second(st.bytes_out, secs),
        max_in_flight: plan.max_in_flight as u64,
        peak_in_flight: outcome.peak_in_flight,
        mean_in_flight: rate * mean_service_s,
        warmup_invocations: outcome.warmup_invocations,
        events: plan.events.describe(),
        latency: LoadLatency {
            response_time: LatencySummary::from_histogram(&st.response_time),
            service_time: LatencySummary::from_histogram(&st.service_time),
            lag: LatencySummary::from_histogram(&st.lag),
            queue_wait: (!st.queue_wait.is_empty())
                .then(|| LatencySummary::from_histogram(&st.queue_wait)),
        },
        thresholds: outcome
            .thresholds
            .iter()
            .map(|(t, j, aborted)| ThresholdResult {
                expression: t.expression.clone(),
                passed: j.passed,
                actual: j.actual.clone(),
                aborted_run: *aborted,
            })
            .collect(),
        intervals: outcome.intervals.clone(),
        partition: (partition != Partition::WHOLE).then(|| partition.to_string()),
        firehose_model: plan.firehose.as_ref().map(|m| firehose_section(m, outcome)),
        ..LoadSection::default()
    });
    if let Some(load) = report.load.as_mut() {
        for i in &mut load.intervals {
            i.planned = planned_in_second(&plan.schedule, i.second);
        }
        if let Some((by, because)) = limiter(plan, outcome) {
            load.limited_by = Some(by);
            load.limited_because = Some(because);
        }
        if let Some(planned) = load.rate_target
            && st.invocations > 0
            && load.rate_achieved < planned * BEHIND_SHARE
        {
            load.warnings.push(format!(
                "achieved {:.1}/s of {planned:.1}/s planned ({:.0}%): the run did not test the rate it was asked to{}",
                load.rate_achieved,
                load.rate_achieved / planned * 100.0,
                load.limited_by
                    .as_ref()
                    .map(|b| format!("; limited by the {b}"))
                    .unwrap_or_default()
            ));
        }
        if let Some(w) = plan
            .firehose
            .as_ref()
            .and_then(|m| m.short_run_warning(outcome.measured_span))
        {
            load.warnings.push(w);
        }
    }
    let unreachable = outcome.unreachable.is_some()
        || outcome.hung_before_any_answer()
        || (outcome.nothing_judged() && outcome.stopped != Some(Stopped::Interrupted));
    report.exit_code = exit_codes::for_run(
        unreachable,
        outcome.violated(),
        outcome.threshold_breached(),
        outcome.stopped == Some(Stopped::Interrupted),
    );
    report.verdict = Verdict::from_exit_code(report.exit_code);
    report
}

/// Why reports cannot be merged or compared.
#[derive(Debug, thiserror::Error)]
pub enum CombineError {
    #[error("{0} is not a load report (merge combines the report.json of `load` runs)")]
    NotLoad(String),
    #[error("{name}: {source}")]
    Histogram {
        name: String,
        source: HistogramError,
    },
    #[error("nothing to merge")]
    Empty,
    #[error(
        "{name} is report schema {found} and {first} is schema {expected}: reports of different versions do not merge; re-run the shards with one firehose-harness"
    )]
    SchemaMismatch {
        name: String,
        found: u32,
        first: String,
        expected: u32,
    },
}

/// Combine the reports of shards that ran at the same time (`--partition i/n`) into the report of
/// the whole run. Counts and histograms add exactly; rates add (the shards ran side by side);
/// thresholds are judged again on the merged figures. `names` label errors and notes.
pub fn merge(reports: &[(String, Report)]) -> Result<Report, CombineError> {
    let ((first_name, first), rest) = reports.split_first().ok_or(CombineError::Empty)?;
    let hist_err = |name: &str| {
        let name = name.to_string();
        move |source| CombineError::Histogram {
            name: name.clone(),
            source,
        }
    };
    let mut sections = Vec::with_capacity(reports.len());
    for (name, r) in reports {
        if r.schema_version != first.schema_version {
            return Err(CombineError::SchemaMismatch {
                name: name.clone(),
                found: r.schema_version,
                first: first_name.clone(),
                expected: first.schema_version,
            });
        }
        let Some(l) = &r.load else {
            return Err(CombineError::NotLoad(name.clone()));
        };
        sections.push(l);
        // Every histogram is read once up front, so a broken one is blamed on its own file rather
        // than on whichever file it was being added to.
        let histograms = [
            &l.latency.response_time.histogram,
            &l.latency.service_time.histogram,
            &l.latency.lag.histogram,
        ];
        for h in histograms
            .into_iter()
            .chain(l.latency.queue_wait.iter().map(|q| &q.histogram))
            .chain(l.intervals.iter().map(|i| &i.histogram))
        {
            LatencySummary::decode(h).map_err(hist_err(name))?;
        }
    }
    let mut out = first.clone();
    let mut load = sections[0].clone();
    let mut partitions: Vec<String> = load.partition.iter().cloned().collect();
    let mut notes = out.notes.clone();
    for ((name, r), l) in rest.iter().zip(&sections[1..]) {
        let err = hist_err(name);
        load.add(l).map_err(&err)?;
        partitions.extend(l.partition.iter().cloned());
        // Top level.
        out.duration_ms = out.duration_ms.max(r.duration_ms);
        if r.started_at < out.started_at {
            out.started_at = r.started_at.clone();
        }
        if out.stopped_early.is_none() {
            out.stopped_early = r.stopped_early.clone();
        }
        if out.seed != r.seed {
            notes.push(format!(
                "{name} was run with seed {:?}, {first_name} with {:?}: the shards did not slice one run",
                r.seed, out.seed
            ));
        }
        if r.target != out.target {
            notes.push(format!("{name} ran against {}", r.target));
        }
        out.records.add(&r.records);
        out.latency =
            firehose_reports::merge::add_latency(&out.latency, &r.latency).map_err(&err)?;
        firehose_reports::merge::add_checks(&mut out.checks, &r.checks);
        firehose_reports::merge::add_failures(&mut out.failures, &r.failures);
        out.failures_truncated |= r.failures_truncated;
        for n in &r.notes {
            if !notes.contains(n) {
                notes.push(n.clone());
            }
        }
    }
    // Judge every threshold again on the whole run's figures.
    let response = load
        .latency
        .response_time
        .histogram()
        .map_err(hist_err(first_name))?;
    let figures = Figures {
        response_time: &response,
        invocations: load.invocations,
        errors: load.errors,
        throughput: load.rate_achieved,
        violations: load.violations,
        late_sends: load.late_sends,
    };
    for t in &mut load.thresholds {
        match Threshold::parse(&t.expression) {
            Ok(parsed) => {
                let j = parsed.judge(&figures);
                t.passed = j.passed;
                t.actual = j.actual;
            }
            Err(e) => notes.push(format!("threshold {} not judged again: {e}", t.expression)),
        }
    }
    check_partitions(&partitions, reports.len(), &mut notes);
    load.partition = (!partitions.is_empty()).then(|| partitions.join(","));
    if reports.len() > 1 {
        notes.push(format!(
            "merged from {} reports; rates and in-flight figures are sums (the shards ran side by side); intervals are aligned by seconds since each shard's own start; case folders named in failures are in the shard's own report directory",
            reports.len()
        ));
    }
    let breached = load.thresholds.iter().any(|t| !t.passed);
    let unreachable = reports
        .iter()
        .any(|(_, r)| r.exit_code == exit_codes::TARGET_UNAVAILABLE);
    let violated = load.violations > 0 || out.checks.iter().any(|c| c.status == CheckStatus::Fail);
    let interrupted = reports
        .iter()
        .any(|(_, r)| r.stopped_early.as_deref() == Some("interrupted"));
    out.load = Some(load);
    out.notes = notes;
    out.exit_code = exit_codes::for_run(unreachable, violated, breached, interrupted);
    out.verdict = Verdict::from_exit_code(out.exit_code);
    Ok(out)
}

/// Say so when the shards are not exactly the slices 1..n of one run.
fn check_partitions(partitions: &[String], reports: usize, notes: &mut Vec<String>) {
    if reports < 2 {
        return;
    }
    let parsed: Vec<(u32, u32)> = partitions
        .iter()
        .filter_map(|p| crate::values::parse_partition(p).ok())
        .collect();
    let n = parsed.first().map(|p| p.1);
    let complete = parsed.len() == reports
        && n == Some(reports as u32)
        && parsed.iter().all(|p| Some(p.1) == n)
        && (1..=reports as u32).all(|i| parsed.iter().filter(|p| p.0 == i).count() == 1);
    if !complete {
        notes.push(format!(
            "the merged reports are not the partitions 1/{reports}..{reports}/{reports} of one run (found: {}); the sums are still exact, but they are not one run's figures",
            if partitions.is_empty() {
                "none".to_string()
            } else {
                partitions.join(", ")
            }
        ));
    }
}

#[cfg(test)]
mod tests {
    use std::time::{Duration, SystemTime};

    use super::*;
    use crate::load::schedule::{Model, RateProfile, Schedule};
    use crate::load::stats::{Intervals, LoadStats, Sample};
    use crate::load::{EventSource, LoadPlan};

    /// A report from samples, as the engine would have made it.
    fn report_of(samples: &[Sample], partition: Partition) -> Report {
        let mut stats = LoadStats::default();
        let mut intervals = Intervals::new(Duration::ZERO);
        let mut rows = Vec::new();
        for s in samples {
            stats.record(s);
            rows.extend(intervals.record(s).iter().map(|i| i.row()));
        }
        stats.throttles = samples.len() as u64 / 100;
        rows.extend(intervals.finish().iter().map(|i| i.row()));
        let schedule = Schedule::new(
            Model::Open(RateProfile::constant(100.0, Some(Duration::from_secs(30)))),
            Duration::ZERO,
            None,
            None,
            partition,
        );
        let plan = LoadPlan::new(schedule, EventSource::Pool(Vec::new()));
        let outcome = LoadOutcome {
            target: "builtin:ndjson".into(),
            started_at: SystemTime::UNIX_EPOCH,
            duration: Duration::from_secs(30),
            measured_span: Duration::from_secs(30),
            stats,
            intervals: rows,
            groups: Vec::new(),
            groups_truncated: false,
            warmup_invocations: 0,
            interrupted: 0,
            peak_in_flight: 3,
            stopped: None,
            answered_any: true,
            unreachable: None,
            thresholds: vec![(
                Threshold::parse("p99<50ms").unwrap(),
                super::super::thresholds::Judged {
                    passed: true,
                    actual: String::new(),
                },
                false,
            )],
            notes: Vec::new(),
        };
        load_report(&outcome, &plan, None)
    }

    fn samples() -> Vec<Sample> {
        (0..3000u64)
            .map(|k| {
                let intended = Duration::from_millis(k * 10);
                let lag = Duration::from_micros((k * 7919) % 20_000);
                Sample {
                    intended,
                    sent: intended + lag,
                    done: intended + lag + Duration::from_micros(200 + (k * 104_729) % 90_000),
                    errored: k % 97 == 0,
                    records: 1 + k % 5,
                    bytes_in: 1000 + k,
                    bytes_out: 900 + k,
                    queue_wait: Some(Duration::from_micros((k * 31) % 5_000)),
                    ..Sample::default()
                }
            })
            .collect()
    }

    #[test]
    fn merged_shards_equal_the_whole_exactly() {
        let all = samples();
        let (a, b): (Vec<_>, Vec<_>) = all
            .iter()
            .cloned()
            .enumerate()
            .partition(|(k, _)| k % 2 == 0);
        let strip = |v: Vec<(usize, Sample)>| v.into_iter().map(|(_, s)| s).collect::<Vec<_>>();
        let shard_a = report_of(&strip(a), Partition { index: 1, count: 2 });
        let shard_b = report_of(&strip(b), Partition { index: 2, count: 2 });
        let whole = report_of(&all, Partition::WHOLE);
        let merged = merge(&[("a".into(), shard_a), ("b".into(), shard_b)]).unwrap();
        let (m, w) = (merged.load.unwrap(), whole.load.unwrap());
        for (x, y) in [
            (&m.latency.response_time, &w.latency.response_time),
            (&m.latency.service_time, &w.latency.service_time),
            (&m.latency.lag, &w.latency.lag),
            (
                m.latency.queue_wait.as_ref().unwrap(),
                w.latency.queue_wait.as_ref().unwrap(),
            ),
        ] {
            assert_eq!(x.histogram().unwrap(), y.histogram().unwrap());
            assert_eq!(
                (x.count, x.p50, x.p90, x.p99, x.p999, x.max),
                (y.count, y.p50, y.p90, y.p99, y.p999, y.max)
            );
        }
        assert_eq!(m.invocations, w.invocations);
        assert_eq!(m.throttles, 30, "15 + 15");
        assert_eq!(m.errors, w.errors);
        assert_eq!(m.error_rate, w.error_rate);
        assert_eq!(m.late_sends, w.late_sends);
        assert_eq!(m.intervals.len(), w.intervals.len());
        for (x, y) in m.intervals.iter().zip(&w.intervals) {
            assert_eq!(
                (
                    x.second,
                    x.invocations,
                    x.records,
                    x.bytes_in,
                    x.errors,
                    x.p50,
                    x.p99
                ),
                (
                    y.second,
                    y.invocations,
                    y.records,
                    y.bytes_in,
                    y.errors,
                    y.p50,
                    y.p99
                )
            );
        }
        assert_eq!(merged.records.sent, whole.records.sent);
        // Thresholds are judged again on the whole run, not copied from a shard.
        assert_eq!(m.thresholds.len(), 1);
        assert!(!m.thresholds[0].actual.is_empty());
        assert_eq!(m.partition.as_deref(), Some("1/2,2/2"));
    }

    #[test]
    fn merging_a_check_report_says_what_is_wrong() {
        let check = Report::new("check", "builtin:ndjson");
        let e = merge(&[("c.json".into(), check)]).unwrap_err();
        assert!(e.to_string().contains("not a load report"));
    }
}
