//! `summary.md`: short enough for `$GITHUB_STEP_SUMMARY`.

use std::io::Write;

use crate::{CheckStatus, Report, Verdict};

pub fn write(report: &Report, out: &mut impl Write) -> std::io::Result<()> {
    let icon = match report.verdict {
        Verdict::Pass => "✅",
        Verdict::Fail => "❌",
    };
    writeln!(
        out,
        "## {icon} firehose-harness {}: {}\n",
        report.command,
        match report.verdict {
            Verdict::Pass => "pass",
            Verdict::Fail => "fail",
        }
    )?;
    writeln!(out, "- target: `{}`", report.target)?;
    if report.nothing_judged() {
        writeln!(
            out,
            "\n**Nothing was judged**: {}. No check ran, so none passed.",
            report.nothing_judged_reason()
        )?;
        return Ok(());
    }
    if let Some(seed) = &report.seed {
        writeln!(out, "- seed: `{seed}`")?;
    }
    for p in &report.phases {
        writeln!(
            out,
            "- {}: {} of {} cases run, {} failed",
            p.phase, p.run, p.planned, p.failed
        )?;
    }
    let r = &report.records;
    writeln!(
        out,
        "- records: {} sent; {} Ok, {} Dropped, {} ProcessingFailed",
        r.sent, r.ok, r.dropped, r.processing_failed
    )?;
    if let Some(l) = &report.latency {
        writeln!(
            out,
            "- {}: p50 {} · p99 {} · max {} ({} invocations)",
            if report.load.is_some() {
                "latency (response time, corrected: from when each invocation was due)"
            } else {
                "latency"
            },
            micros(l.p50),
            micros(l.p99),
            micros(l.max),
            l.count
        )?;
    }
    if let Some(b) = &report.largest_passing_batch {
        writeln!(
            out,
            "- largest batch that passed: {} records, {} bytes of record data",
            b.records, b.bytes
        )?;
    }
    if let Some(why) = &report.stopped_early {
        writeln!(out, "- stopped early: {why}")?;
    }
    writeln!(out, "\n| check | status | violations |\n|---|---|---|")?;
    for c in &report.checks {
        let status = match c.status {
            CheckStatus::Fail => format!("**{}**", c.status.label()),
            other => other.label().to_string(),
        };
        writeln!(out, "| `{}` | {status} | {} |", c.id, c.violations)?;
    }
    if let Some(load) = &report.load {
        writeln!(out, "\n### Load\n")?;
        if !load.thresholds.is_empty() {
            writeln!(out, "| threshold | actual | result |\n|---|---|---|")?;
            for t in &load.thresholds {
                writeln!(
                    out,
                    "| `{}` | {} | {}{} |",
                    t.expression,
                    t.actual,
                    if t.passed { "pass" } else { "**BREACHED**" },
                    if t.aborted_run {
                        " (aborted the run)"
                    } else {
                        ""
                    }
                )?;
            }
            writeln!(out)?;
        }
        for w in &load.warnings {
            writeln!(out, "> ⚠️ {w}\n")?;
        }
        writeln!(
            out,
            "- {} invocations at {:.1}/s achieved{}, model {}",
            load.invocations,
            load.rate_achieved,
            load.rate_target
                .map(|p| format!(" of {p:.1}/s planned"))
                .unwrap_or_default(),
            load.model,
        )?;
        writeln!(
            out,
            "- error rate {:.3}% ({} function errors and timeouts); contract violations in {} invocations",
            load.error_rate * 100.0,
            load.errors,
            load.violations
        )?;
        writeln!(
            out,
            "- {} late sends{}",
            load.late_sends,
            match (&load.limited_by, &load.limited_because) {
                (Some(by), Some(why)) => format!("; limited by the **{by}**: {why}"),
                _ => String::new(),
            }
        )?;
        if let Some(n) = load.cold_starts {
            writeln!(out, "- cold starts: {n}")?;
        }
        let lat = &load.latency;
        writeln!(
            out,
            "- response time (corrected) p50 {} · p99 {} · p99.9 {}; service time (uncorrected) p50 {} · p99 {} · p99.9 {}",
            micros(lat.response_time.p50),
            micros(lat.response_time.p99),
            micros(lat.response_time.p999),
            micros(lat.service_time.p50),
            micros(lat.service_time.p99),
            micros(lat.service_time.p999)
        )?;
        if let Some(q) = &lat.queue_wait {
            writeln!(
                out,
                "- queue wait (for a free function instance, included above) p50 {} · p99 {} · max {}",
                micros(q.p50),
                micros(q.p99),
                micros(q.max)
            )?;
        }
        if load.throttles > 0 {
            writeln!(
                out,
                "- {} calls throttled (429 TooManyRequestsException: every instance busy), counted apart from invocations and errors",
                load.throttles
            )?;
        }
        writeln!(out, "- {}", load.latency_explanation())?;
        writeln!(
            out,
            "- throughput {:.1} records/s, {:.0} bytes/s in, {:.0} bytes/s out (bytes count the {})",
            load.records_per_second,
            load.bytes_in_per_second,
            load.bytes_out_per_second,
            crate::BYTE_RATE_BASIS
        )?;
        if let Some(f) = &load.firehose_model {
            writeln!(out, "- Firehose model: {}", f.description)?;
            writeln!(out, "- **{}**", f.verdict)?;
        }
    }
    let errors: Vec<_> = report.failures.iter().collect();
    if !errors.is_empty() {
        writeln!(out, "\n### Failures\n")?;
        for f in errors.iter().take(20) {
            writeln!(
                out,
                "- `{}` ({}): {} — {}{}",
                f.check,
                f.code,
                crate::text::visible(&f.message),
                f.tally(),
                f.case
                    .as_ref()
                    .map(|c| format!("; minimal case `cases/{c}`"))
                    .unwrap_or_default()
            )?;
            if let Some(m) = &f.original_message {
                writeln!(out, "  - first seen as: {m}")?;
            }
            if let Some(deps) = f.depends_on_text() {
                writeln!(out, "  - depends on: {deps}")?;
            }
        }
        if errors.len() > 20 {
            writeln!(out, "- … and {} more (see report.json)", errors.len() - 20)?;
        }
    }
    for note in &report.notes {
        writeln!(out, "\n> {}", crate::text::visible(note))?;
    }
    Ok(())
}

/// `1234` µs → `1.23ms`.
pub fn micros(us: u64) -> String {
    if us >= 1_000_000 {
        format!("{:.2}s", us as f64 / 1e6)
    } else if us >= 1000 {
        format!("{:.2}ms", us as f64 / 1e3)
    } else {
        format!("{us}µs")
    }
}
