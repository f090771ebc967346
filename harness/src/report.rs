//! Turning engine results into the format-neutral report (`firehose-reports`).

use std::time::SystemTime;

use firehose_generators::strategies::BufferHint;
use firehose_generators::wire::MAX_RECORD_BYTES;
use firehose_generators::{Dimension, GenConfig};
use firehose_reports::{
    BatchSize, CheckResult, CheckStatus, Dependency, Failure, LatencySummary, MAX_FAILURES_LISTED,
    PhaseCounts, RecordCounts, Report, Severity as RSeverity, ShrinkInfo, Verdict as RVerdict,
};

use crate::conformance::{CheckOutcome, CheckPlan, FailureGroup};
use crate::contract::{CheckId, CheckSet, RecordResults, Severity};
use crate::exit_codes;

/// Why a run that the deadline cut before any answer exits 4.
pub const NOTHING_JUDGED: &str = "no invocation finished before the --deadline, so nothing was judged; is the transformer hanging? (set --timeout below --deadline)";

/// Why a run cut short by `--max-hangs` before any answer exits 4.
pub const NOTHING_ANSWERED_HANGING: &str = "no invocation got an answer: the first ones each ran into --timeout and the run stopped (--max-hangs), so nothing was judged; is the transformer hanging?";

/// Why a run that judged nothing exits 4, when no target error says why.
pub fn nothing_judged_reason(outcome: &CheckOutcome) -> &'static str {
    if outcome.stopped == Some(crate::case::Stopped::Hanging) {
        NOTHING_ANSWERED_HANGING
    } else {
        NOTHING_JUDGED
    }
}

/// RFC 3339 in UTC, seconds precision.
pub fn timestamp(t: SystemTime) -> String {
    humantime::format_rfc3339_seconds(t).to_string()
}

/// The one-line error for regression folders that could not be read, if any.
pub fn corrupt_regressions(outcome: &CheckOutcome) -> Option<String> {
    let (first, why) = outcome.corrupt_regressions.first()?;
    let more = match outcome.corrupt_regressions.len() {
        1 => String::new(),
        n => format!(" (and {} more)", n - 1),
    };
    Some(format!(
        "regression {} is corrupt{more}: {why}; fix or delete the folder, the other regressions were replayed",
        first.display()
    ))
}

/// A run that judged nothing (exit 4): its reason becomes the first note, which every renderer
/// shows in place of the checks, and no check reads as passed.
pub fn mark_nothing_judged(report: &mut Report, reason: String) {
    report.notes.insert(0, reason);
    for c in &mut report.checks {
        c.status = CheckStatus::Skipped;
    }
    report.failures.clear();
}

/// The per-check table: status from the failures, counts from the run.
pub fn check_results(
    checks: &CheckSet,
    counts: &std::collections::BTreeMap<CheckId, u64>,
    groups: &[FailureGroup],
) -> Vec<CheckResult> {
    CheckId::ALL
        .iter()
        .map(|&id| {
            let violations = counts.get(&id).copied().unwrap_or(0);
            let status = if !checks.contains(id) {
                CheckStatus::Skipped
            } else if groups
                .iter()
                .any(|g| g.check == id && g.severity == Severity::Error)
            {
                CheckStatus::Fail
            } else if violations > 0 {
                CheckStatus::Warn
            } else {
                CheckStatus::Pass
            };
            CheckResult {
                id: id.id().into(),
                code: id.code().into(),
                status,
                violations,
                summary: id.summary().into(),
                firehose_documented: id.firehose_documented(),
            }
        })
        .collect()
}

/// One failure group as the report lists it.
pub fn failure(g: &FailureGroup) -> Failure {
    Failure {
        check: g.check.id().into(),
        code: g.check.code().into(),
        severity: match g.severity {
            Severity::Error => RSeverity::Error,
            Severity::Warning => RSeverity::Warning,
        },
        message: g.first.message.clone(),
        count: g.count,
        cases: g.cases,
        record_id: g.first.record_id.clone(),
        case: g.case.clone(),
        fingerprint: g.fingerprint.clone(),
        phase: g.phase.name().into(),
        flaky: g.flaky,
        shrink: g.shrink.as_ref().map(|s| ShrinkInfo {
            from_records: s.from_records as u64,
            to_records: s.to_records as u64,
            from_bytes: s.from_bytes as u64,
            to_bytes: s.to_bytes as u64,
            steps: s.steps,
            budget_exhausted: s.budget_exhausted,
        }),
        minimal_batch: g.minimal_batch.clone(),
        original_message: g.original_message.clone(),
        depends_on: g
            .depends_on
            .iter()
            .map(|d| Dependency {
                dimension: d.name().into(),
                flag: d.flag().into(),
            })
            .collect(),
    }
}

/// The failure groups a report lists: the first [`MAX_FAILURES_LISTED`].
pub fn failures(groups: &[FailureGroup]) -> Vec<Failure> {
    groups
        .iter()
        .take(MAX_FAILURES_LISTED)
        .map(failure)
        .collect()
}

/// Records sent and what came back, as the report counts them.
pub fn record_counts(sent: u64, results: &RecordResults) -> RecordCounts {
    RecordCounts {
        sent,
        ok: results.ok,
        dropped: results.dropped,
        processing_failed: results.processing_failed,
    }
}

/// The flags that reproduce a generator configuration.
pub fn generator_flags(g: &GenConfig) -> String {
    let join = |v: Vec<&str>| v.join(",");
    let mut s = format!(
        "--source {} --payload {} --compression {}",
        join(g.sources.iter().map(|x| x.name()).collect()),
        join(g.families.iter().map(|x| x.name()).collect()),
        join(g.compressions.iter().map(|x| x.name()).collect()),
    );
    if *g.records.start() > 1 || *g.records.end() != usize::MAX {
        s.push_str(&format!(
            " --records {}..{}",
            g.records.start(),
            g.records.end()
        ));
    }
    if *g.record_size.start() > 0 || *g.record_size.end() != MAX_RECORD_BYTES {
        s.push_str(&format!(
            " --record-size {}..{}",
            g.record_size.start(),
            g.record_size.end()
        ));
    }
    if let BufferHint::Fixed(n) = g.buffer {
        s.push_str(&format!(" --buffer-size {n}"));
    }
    s
}

/// The report of a `check` run.
pub fn check_report(outcome: &CheckOutcome, plan: &CheckPlan, started: SystemTime) -> Report {
    let mut report = Report::new("check", &outcome.target);
    report.seed = Some(outcome.seed.to_string());
    report.started_at = timestamp(started);
    report.duration_ms = outcome.duration.as_millis() as u64;
    report.stopped_early = outcome.stopped.as_ref().map(|s| s.name().to_string());
    report.phases = outcome
        .phases
        .iter()
        .map(|(phase, t)| PhaseCounts {
            phase: phase.name().into(),
            planned: t.planned,
            run: t.run,
            failed: t.failed,
        })
        .collect();
    report.checks = check_results(&plan.checks, &outcome.check_counts, &outcome.groups);
    report.failures = failures(&outcome.groups);
    report.failures_truncated =
        outcome.groups.len() > MAX_FAILURES_LISTED || !outcome.overflow.is_empty();
    report.records = record_counts(outcome.records_sent, &outcome.results);
    if !outcome.latency.is_empty() {
        report.latency = Some(LatencySummary::from_histogram(&outcome.latency));
    }
    report.largest_passing_batch = outcome.largest_passing.map(|(records, bytes)| BatchSize {
        records: records as u64,
        bytes: bytes as u64,
    });
    report.generator = Some(generator_flags(&plan.generator));
    report.notes = outcome.notes.clone();
    if !outcome.overflow.is_empty() {
        let n: u64 = outcome.overflow.values().sum();
        let checks: Vec<&str> = outcome.overflow.keys().map(|c| c.id()).collect();
        report.notes.push(format!(
            "{} more violation{} ({}) belong to distinct failures beyond the first {}: counted, not listed",
            crate::values::format_count(n),
            if n == 1 { "" } else { "s" },
            checks.join(", "),
            crate::values::format_count(crate::contract::MAX_FAILURE_KEYS as u64),
        ));
    }
    if let Some((records, bytes)) = outcome.largest_passing
        && outcome.smallest_failing.is_none_or(|failed| failed > bytes)
        && outcome
            .groups
            .iter()
            .any(|g| g.depends_on.contains(&Dimension::BatchSize))
    {
        report.notes.push(format!(
            "a failure depends on batch size; the largest batch that passed had {records} records and {} bytes of record data (as put, before base64), and no smaller batch failed — a buffer hint below that is safe for this transformer",
            crate::values::format_count(bytes as u64)
        ));
    }
    for id in report
        .checks
        .iter()
        .filter(|c| c.status == CheckStatus::Fail && !c.firehose_documented)
    {
        report.notes.push(format!(
            "`{}`: Firehose's exact behaviour here is undocumented; the verdict ({}) is the harness's own",
            id.id, id.code
        ));
    }
    report.exit_code = exit_codes::for_run(
        outcome.unreachable.is_some() || outcome.nothing_judged(),
        outcome.failed(),
        false,
        outcome.interrupted(),
    );
    if let Some(e) = &outcome.unreachable {
        mark_nothing_judged(&mut report, format!("{e}; {}", e.hint()));
    } else if outcome.nothing_judged() {
        mark_nothing_judged(&mut report, nothing_judged_reason(outcome).into());
    }
    if let Some(e) = corrupt_regressions(outcome) {
        // A configuration error outranks every verdict (exit 2), yet the rest was run and reported.
        report.notes.push(e);
        report.exit_code = exit_codes::USAGE;
    }
    report.verdict = RVerdict::from_exit_code(report.exit_code);
    report
}
