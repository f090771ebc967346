//! Load results as reports, and reports combined: [`load_report`] (one run), [`merge`] (shards of one
//! run, exactly: histograms are added, never percentiles averaged) and [`compare`] (a baseline against
//! a new run, for CI gates).

use std::collections::BTreeMap;

use firehose_generators::GenConfig;
use firehose_reports::{
    CheckResult, CheckStatus, Failure, FirehoseModelSection, HistogramError, Interval,
    LatencySummary, LoadLatency, LoadSection, Report, Severity as RSeverity, ThresholdResult,
    Verdict,
};

use super::engine::{LoadOutcome, Stopped, describe_model};
use super::firehose_model::{FirehoseModel, Trigger};
use super::schedule::Partition;
use super::thresholds::{Figures, Threshold};
use super::{LoadPlan, counts_as_error};
use crate::contract::CheckId;
use crate::exit_codes;
use crate::report::{check_results, failures, generator_flags, record_counts, timestamp};
use crate::values::format_count;

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

/// The Firehose model's answer in one sentence.
fn firehose_section(m: &FirehoseModel, outcome: &LoadOutcome) -> FirehoseModelSection {
    let s = &m.settings;
    let st = &outcome.stats;
    let mean_service_s = if st.service_time.is_empty() {
        0.0
    } else {
        st.service_time.mean() / 1e6
    };
    let mean_in_flight = outcome.rate_achieved() * mean_service_s;
    let mut verdict = format!(
        "at {} bytes/s this transformer answered with p99 {} (p99.9 {}, corrected) and needed up to {} concurrent instance{} (mean {:.2}); Firehose allows {} outstanding invocations",
        format_count(s.ingest.round() as u64),
        firehose_reports::markdown::micros(st.response_time.value_at_quantile(0.99)),
        firehose_reports::markdown::micros(st.response_time.value_at_quantile(0.999)),
        outcome.peak_in_flight,
        if outcome.peak_in_flight == 1 { "" } else { "s" },
        mean_in_flight,
        m.outstanding
    );
    if st.late_sends > 0 && outcome.peak_in_flight >= u64::from(m.outstanding) {
        verdict.push_str(&format!(
            " — it did not keep up: {} invocations waited for that limit, as Firehose's own buffer would back up",
            format_count(st.late_sends)
        ));
    }
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
    report.stopped_early = outcome.stopped.as_ref().map(|s| {
        match s {
            Stopped::Interrupted => "interrupted",
            Stopped::Threshold(_) => "threshold",
            Stopped::Unreachable => "unreachable",
            Stopped::Overrun { .. } => "overrun",
        }
        .to_string()
    });
    report.checks = check_results(&plan.checks, &st.check_counts, &outcome.groups);
    report.failures = failures(&outcome.groups);
    report.failures_truncated = outcome.groups_truncated;
    demote_error_checks(&mut report.checks, &mut report.failures);
    report.records = record_counts(st.records, &st.results);
    if !st.service_time.is_empty() {
        report.latency = Some(LatencySummary::from_histogram(&st.service_time));
    }
    report.generator = generator.map(generator_flags);
    report.notes = outcome.notes.clone();
    if let Some(e) = &outcome.unreachable {
        crate::report::mark_nothing_judged(&mut report, format!("{e}; {}", e.hint()));
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
    });
    let unreachable = outcome.unreachable.is_some()
        || (outcome.nothing_judged() && outcome.stopped != Some(Stopped::Interrupted));
    report.exit_code = exit_codes::for_run(
        unreachable,
        outcome.violated(),
        outcome.threshold_breached(),
        outcome.stopped == Some(Stopped::Interrupted),
    );
    report.verdict = verdict_of(report.exit_code);
    report
}

fn verdict_of(code: i32) -> Verdict {
    if code == exit_codes::OK {
        Verdict::Pass
    } else {
        Verdict::Fail
    }
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
}

fn status_rank(s: CheckStatus) -> u8 {
    match s {
        CheckStatus::Skipped => 0,
        CheckStatus::Pass => 1,
        CheckStatus::Warn => 2,
        CheckStatus::Fail => 3,
    }
}

/// Add two interval rows of the same second, histograms included.
fn merge_interval(a: &mut Interval, b: &Interval) -> Result<(), HistogramError> {
    let mut h = LatencySummary::decode(&a.histogram)?;
    h.add(LatencySummary::decode(&b.histogram)?)
        .map_err(|e| HistogramError::Add(e.to_string()))?;
    a.invocations += b.invocations;
    a.records += b.records;
    a.bytes_in += b.bytes_in;
    a.bytes_out += b.bytes_out;
    a.errors += b.errors;
    a.violations += b.violations;
    a.late_sends += b.late_sends;
    a.p50 = h.value_at_quantile(0.5);
    a.p99 = h.value_at_quantile(0.99);
    a.histogram = LatencySummary::encode(&h);
    Ok(())
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
    let mut intervals: BTreeMap<u64, Interval> =
        load.intervals.drain(..).map(|i| (i.second, i)).collect();
    let mut partitions: Vec<String> = load.partition.iter().cloned().collect();
    let mut notes = out.notes.clone();
    for ((name, r), l) in rest.iter().zip(&sections[1..]) {
        let err = hist_err(name);
        load.invocations += l.invocations;
        load.planned_invocations += l.planned_invocations;
        load.interrupted += l.interrupted;
        load.duration_ms = load.duration_ms.max(l.duration_ms);
        load.rate_target = match (load.rate_target, l.rate_target) {
            (Some(a), Some(b)) => Some(a + b),
            (a, b) => a.or(b),
        };
        load.rate_achieved += l.rate_achieved;
        load.late_sends += l.late_sends;
        load.errors += l.errors;
        load.violations += l.violations;
        load.records_per_second += l.records_per_second;
        load.bytes_in_per_second += l.bytes_in_per_second;
        load.bytes_out_per_second += l.bytes_out_per_second;
        load.max_in_flight += l.max_in_flight;
        load.peak_in_flight += l.peak_in_flight;
        load.mean_in_flight += l.mean_in_flight;
        load.warmup_invocations += l.warmup_invocations;
        load.latency = LoadLatency {
            response_time: load
                .latency
                .response_time
                .merge(&l.latency.response_time)
                .map_err(&err)?,
            service_time: load
                .latency
                .service_time
                .merge(&l.latency.service_time)
                .map_err(&err)?,
            lag: load.latency.lag.merge(&l.latency.lag).map_err(&err)?,
            queue_wait: match (&load.latency.queue_wait, &l.latency.queue_wait) {
                (Some(a), Some(b)) => Some(a.merge(b).map_err(&err)?),
                (a, b) => a.clone().or_else(|| b.clone()),
            },
        };
        load.throttles += l.throttles;
        for t in &l.thresholds {
            match load
                .thresholds
                .iter_mut()
                .find(|x| x.expression == t.expression)
            {
                Some(x) => x.aborted_run |= t.aborted_run,
                None => load.thresholds.push(t.clone()),
            }
        }
        for i in &l.intervals {
            match intervals.get_mut(&i.second) {
                Some(a) => merge_interval(a, i).map_err(&err)?,
                None => {
                    intervals.insert(i.second, i.clone());
                }
            }
        }
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
        out.records.sent += r.records.sent;
        out.records.ok += r.records.ok;
        out.records.dropped += r.records.dropped;
        out.records.processing_failed += r.records.processing_failed;
        out.latency = match (&out.latency, &r.latency) {
            (Some(a), Some(b)) => Some(a.merge(b).map_err(&err)?),
            (a, b) => a.clone().or_else(|| b.clone()),
        };
        for c in &r.checks {
            match out.checks.iter_mut().find(|x| x.id == c.id) {
                Some(x) => {
                    x.violations += c.violations;
                    if status_rank(c.status) > status_rank(x.status) {
                        x.status = c.status;
                    }
                }
                None => out.checks.push(c.clone()),
            }
        }
        for f in &r.failures {
            match out
                .failures
                .iter_mut()
                .find(|x| x.check == f.check && x.fingerprint == f.fingerprint)
            {
                Some(x) => {
                    x.count += f.count;
                    x.cases += f.cases;
                    if x.case.is_none() {
                        x.case = f.case.clone();
                    }
                }
                None => out.failures.push(f.clone()),
            }
        }
        out.failures_truncated |= r.failures_truncated;
        for n in &r.notes {
            if !notes.contains(n) {
                notes.push(n.clone());
            }
        }
    }
    load.error_rate = if load.invocations == 0 {
        0.0
    } else {
        load.errors as f64 / load.invocations as f64
    };
    load.intervals = intervals.into_values().collect();
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
    out.verdict = verdict_of(out.exit_code);
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

/// How much worse counts as a regression.
#[derive(Debug, Clone, Copy, PartialEq)]
pub struct Tolerances {
    /// Relative: p99 and p99.9 may grow by this fraction.
    pub latency: f64,
    /// Latency changes smaller than this (µs) never count: 80 µs → 100 µs is +25% and noise.
    pub latency_floor_us: u64,
    /// Relative: the achieved rate may fall by this fraction.
    pub throughput: f64,
    /// Absolute: the error rate may rise by this much.
    pub error_rate: f64,
}

impl Default for Tolerances {
    fn default() -> Self {
        Tolerances {
            latency: 0.10,
            latency_floor_us: 1000,
            throughput: 0.10,
            error_rate: 0.001,
        }
    }
}

/// One line of a comparison.
#[derive(Debug, Clone, PartialEq)]
pub struct Compared {
    pub what: String,
    pub base: String,
    pub new: String,
    pub change: String,
    pub regressed: bool,
}

fn relative(base: f64, new: f64) -> String {
    if base == 0.0 {
        if new == 0.0 {
            "±0%".into()
        } else {
            "new".into()
        }
    } else {
        format!("{:+.1}%", (new - base) / base * 100.0)
    }
}

/// Compare a new report with a baseline: latency, throughput and error rate within tolerance, no
/// newly failing checks, no new kinds of failure.
pub fn compare(base: &Report, new: &Report, tol: &Tolerances) -> Vec<Compared> {
    use firehose_reports::markdown::micros;
    let mut out = Vec::new();
    if let (Some(b), Some(n)) = (&base.load, &new.load) {
        // (what, figure, whether it can regress): p50 and the uncorrected figure are context.
        type Figure = fn(&LoadLatency) -> u64;
        let rows: [(&str, Figure, bool); 4] = [
            (
                "response time p50 (corrected)",
                |l| l.response_time.p50,
                false,
            ),
            (
                "response time p99 (corrected)",
                |l| l.response_time.p99,
                true,
            ),
            (
                "response time p99.9 (corrected)",
                |l| l.response_time.p999,
                true,
            ),
            (
                "service time p99 (uncorrected)",
                |l| l.service_time.p99,
                false,
            ),
        ];
        for (what, figure, judged) in rows {
            let (bv, nv) = (figure(&b.latency), figure(&n.latency));
            let worse = nv as f64 > bv as f64 * (1.0 + tol.latency)
                && nv.saturating_sub(bv) >= tol.latency_floor_us;
            out.push(Compared {
                what: what.into(),
                base: micros(bv),
                new: micros(nv),
                change: relative(bv as f64, nv as f64),
                regressed: judged && worse,
            });
        }
        out.push(Compared {
            what: "throughput (achieved)".into(),
            base: format!("{:.1}/s", b.rate_achieved),
            new: format!("{:.1}/s", n.rate_achieved),
            change: relative(b.rate_achieved, n.rate_achieved),
            regressed: n.rate_achieved < b.rate_achieved * (1.0 - tol.throughput),
        });
        out.push(Compared {
            what: "error rate".into(),
            base: format!("{:.3}%", b.error_rate * 100.0),
            new: format!("{:.3}%", n.error_rate * 100.0),
            change: format!("{:+.3} pts", (n.error_rate - b.error_rate) * 100.0),
            regressed: n.error_rate > b.error_rate + tol.error_rate,
        });
    }
    for c in &new.checks {
        let was = base.checks.iter().find(|x| x.id == c.id).map(|x| x.status);
        if c.status == CheckStatus::Fail && was != Some(CheckStatus::Fail) {
            out.push(Compared {
                what: format!("check {}", c.id),
                base: was.map_or("absent".into(), status_name),
                new: status_name(c.status),
                change: format!("{} violations", format_count(c.violations)),
                regressed: true,
            });
        }
    }
    for f in new.errors() {
        let known = base
            .failures
            .iter()
            .any(|x| x.check == f.check && x.fingerprint == f.fingerprint);
        let check_newly_failing = out.iter().any(|c| c.what == format!("check {}", f.check));
        if !known && !check_newly_failing {
            out.push(Compared {
                what: format!("new failure in {}", f.check),
                base: "-".into(),
                new: f.message.clone(),
                change: format!("{} violations", format_count(f.count)),
                regressed: true,
            });
        }
    }
    out
}

fn status_name(s: CheckStatus) -> String {
    match s {
        CheckStatus::Pass => "pass",
        CheckStatus::Fail => "fail",
        CheckStatus::Warn => "warn",
        CheckStatus::Skipped => "skipped",
    }
    .into()
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
            unreachable: None,
            thresholds: vec![(
                Threshold::parse("p99<50ms").unwrap(),
                super::super::thresholds::Judged {
                    passed: true,
                    actual: String::new(),
                },
                false,
            )],
            hlog: None,
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
    fn compare_flags_only_real_regressions() {
        let base = report_of(&samples(), Partition::WHOLE);
        assert!(
            compare(&base, &base, &Tolerances::default())
                .iter()
                .all(|c| !c.regressed)
        );
        let mut slower = base.clone();
        let l = slower.load.as_mut().unwrap();
        l.latency.response_time.p99 = l.latency.response_time.p99 * 2 + 2000;
        l.rate_achieved *= 0.5;
        let lines = compare(&base, &slower, &Tolerances::default());
        let regressed: Vec<_> = lines
            .iter()
            .filter(|c| c.regressed)
            .map(|c| c.what.as_str())
            .collect();
        assert_eq!(
            regressed,
            vec!["response time p99 (corrected)", "throughput (achieved)"]
        );
        // Within the floor: a few microseconds are noise, however many percent.
        let mut quick = base.clone();
        quick.load.as_mut().unwrap().latency.response_time.p999 = 100;
        let mut noise = quick.clone();
        noise.load.as_mut().unwrap().latency.response_time.p999 = 600;
        assert!(
            compare(&quick, &noise, &Tolerances::default())
                .iter()
                .all(|c| !c.regressed)
        );
    }

    #[test]
    fn merging_a_check_report_says_what_is_wrong() {
        let check = Report::new("check", "builtin:ndjson");
        let e = merge(&[("c.json".into(), check)]).unwrap_err();
        assert!(e.to_string().contains("not a load report"));
    }
}
