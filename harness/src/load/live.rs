//! The terminal face of `load`: a live line while it runs (indicatif, on a terminal only) — elapsed,
//! achieved rate, in flight, p99 so far, errors — then a summary with corrected and uncorrected
//! latency side by side. A reporter, not engine code: it only sees [`RunEvent`]s and the report.
//!
//! Progress and notes go to stderr; the summary to stdout.

use std::path::Path;
use std::time::Duration;

use firehose_reports::markdown::micros;
use firehose_reports::{CheckStatus, LatencySummary, Report};
use indicatif::{ProgressBar, ProgressStyle};

use super::{LoadEvent, Progress};
use crate::events::{EventSink, RunEvent};
use crate::terminal::{LogTicker, line_above, progress, verdict_line};
use crate::values::{format_count, format_duration};

pub struct LoadView {
    bar: ProgressBar,
    ticker: LogTicker,
}

impl Default for LoadView {
    fn default() -> Self {
        Self::new()
    }
}

impl LoadView {
    pub fn new() -> Self {
        Self::with_quiet(false)
    }

    /// `quiet`: no progress (the bar, or a log line every 10 s without a terminal); notes and the
    /// summary stay.
    pub fn with_quiet(quiet: bool) -> Self {
        let (bar, ticker) = progress("{spinner} [{elapsed_precise}] {bar:20} {msg}", quiet);
        LoadView { bar, ticker }
    }

    fn line(&self, s: String) {
        line_above(&self.bar, s);
    }

    pub fn finish(&self) {
        self.bar.finish_and_clear();
    }

    fn progress(&mut self, p: &Progress) {
        if let Some(planned) = p.planned {
            self.bar.set_length(planned);
        }
        self.bar.set_position(p.invocations);
        let phase = if p.warming_up { "warming up · " } else { "" };
        let text = format!(
            "{phase}{} done{} · {:.1}/s · in flight {} · p99 {} (corrected) · errors {} · violations {} · late {}",
            format_count(p.invocations),
            p.planned
                .map(|n| format!(" of {}", format_count(n)))
                .unwrap_or_default(),
            p.rate,
            p.in_flight,
            micros(p.p99),
            format_count(p.errors),
            format_count(p.violations),
            format_count(p.late_sends),
        );
        if self.ticker.due_at(p.elapsed).is_some() {
            // No terminal: a plain line for the log, as k6 prints in CI.
            crate::terminal::err(format_args!(
                "  [{}] {text}",
                format_duration(Duration::from_secs(p.elapsed.as_secs()))
            ));
        }
        self.bar.set_message(text);
    }

    /// The end-of-run summary on stdout.
    pub fn summary(&self, report: &Report, report_dir: Option<&Path>) {
        self.bar.finish_and_clear();
        crate::terminal::out(summary_text(report, report_dir));
    }
}

fn latency_row(name: &str, l: &LatencySummary) -> String {
    format!(
        "  {name:<28} p50 {:>9}  p90 {:>9}  p99 {:>9}  p99.9 {:>9}  max {:>9}\n",
        micros(l.p50),
        micros(l.p90),
        micros(l.p99),
        micros(l.p999),
        micros(l.max)
    )
}

/// The summary as text (also what the README shows).
pub fn summary_text(report: &Report, report_dir: Option<&Path>) -> String {
    let mut out = String::new();
    if let Some(load) = &report.load {
        let target = load
            .rate_target
            .map(|r| format!(" of {r:.1}/s planned"))
            .unwrap_or_default();
        out.push_str(&format!(
            "  model        {}{}\n",
            load.model,
            load.partition
                .as_ref()
                .map(|p| format!(" · partition {p}"))
                .unwrap_or_default()
        ));
        out.push_str(&format!(
            "  invocations  {} in {} ({:.1}/s achieved{target}) · {} warm-up · {} late · {} interrupted · peak in flight {} of {}\n",
            format_count(load.invocations),
            format_duration(Duration::from_millis(load.duration_ms)),
            load.rate_achieved,
            format_count(load.warmup_invocations),
            format_count(load.late_sends),
            format_count(load.interrupted),
            load.peak_in_flight,
            load.max_in_flight
        ));
        if let (Some(by), Some(why)) = (&load.limited_by, &load.limited_because) {
            out.push_str(&format!("  limited by   the {by}: {why}\n"));
        }
        if let Some(n) = load.cold_starts {
            out.push_str(&format!("  cold starts  {}\n", format_count(n)));
        }
        out.push_str(&format!(
            "  throughput   {:.1} records/s · {}/s in · {}/s out (bytes: {})\n",
            load.records_per_second,
            bytes(load.bytes_in_per_second),
            bytes(load.bytes_out_per_second),
            firehose_reports::BYTE_RATE_BASIS
        ));
        out.push_str(&latency_row(
            "response time (corrected)",
            &load.latency.response_time,
        ));
        out.push_str(&latency_row(
            "service time (uncorrected)",
            &load.latency.service_time,
        ));
        out.push_str(&latency_row("schedule lag", &load.latency.lag));
        if let Some(q) = &load.latency.queue_wait {
            out.push_str(&latency_row("queue wait (free instance)", q));
        }
        out.push_str(&format!(
            "  why they differ: {}\n",
            load.latency_explanation()
        ));
        out.push_str(&format!(
            "  errors       {} ({:.3}% of invocations) · contract violations in {} invocations\n",
            format_count(load.errors),
            load.error_rate * 100.0,
            format_count(load.violations)
        ));
        if load.throttles > 0 {
            out.push_str(&format!(
                "  throttled    {} calls (429: every instance busy; not invocations, not errors)\n",
                format_count(load.throttles)
            ));
        }
        if let Some(f) = &load.firehose_model {
            out.push_str(&format!("  firehose     {}\n", f.description));
            out.push_str(&format!("               {}\n", f.verdict));
        }
        for w in &load.warnings {
            out.push_str(&format!("  WARNING      {w}\n"));
        }
        for t in &load.thresholds {
            out.push_str(&format!(
                "  threshold    {} {} (actual {}){}\n",
                if t.passed { "ok    " } else { "BREACH" },
                t.expression,
                t.actual,
                if t.aborted_run {
                    " — aborted the run"
                } else {
                    ""
                }
            ));
        }
    }
    let failing: Vec<_> = report
        .checks
        .iter()
        .filter(|c| c.violations > 0 && c.status != CheckStatus::Skipped)
        .collect();
    if !failing.is_empty() {
        out.push_str("\n  check                      status   violations\n");
        for c in failing {
            let status = match c.status {
                CheckStatus::Fail => "FAIL",
                _ => "warn",
            };
            out.push_str(&format!(
                "  {:<26} {:<8} {}\n",
                c.id,
                status,
                format_count(c.violations)
            ));
        }
    }
    for f in report.errors().take(5) {
        out.push_str(&format!(
            "  FAIL {} ({}) — {}{}\n",
            f.check,
            f.code,
            f.message,
            match (&f.case, report_dir) {
                (Some(c), Some(d)) => format!(" · case {}", d.join("cases").join(c).display()),
                _ => String::new(),
            }
        ));
    }
    for note in &report.notes {
        out.push_str(&format!("  note: {note}\n"));
    }
    if let Some(load) = &report.load
        && load
            .thresholds
            .iter()
            .any(|t| t.expression.ends_with("(default)"))
    {
        // Unlike k6, errors fail a run by default: say where the gate came from and how to move it.
        out.push_str(&format!(
            "  note: function errors and timeouts were {:.3}% of invocations; the default gate `{}` applies (any --threshold on error_rate replaces it)\n",
            load.error_rate * 100.0,
            crate::load::thresholds::DEFAULT_ERROR_GATE,
        ));
    }
    out.push_str(&verdict_line(report, report_dir));
    out
}

/// `1.2 MB`, powers of ten like the value grammar's `MB`.
fn bytes(n: f64) -> String {
    if n >= 1e9 {
        format!("{:.2} GB", n / 1e9)
    } else if n >= 1e6 {
        format!("{:.2} MB", n / 1e6)
    } else if n >= 1e3 {
        format!("{:.1} kB", n / 1e3)
    } else {
        format!("{n:.0} B")
    }
}

impl EventSink for LoadView {
    fn emit(&mut self, event: RunEvent) {
        match event {
            RunEvent::Load(LoadEvent::Started {
                target,
                model,
                planned,
                warmup,
                max_in_flight,
            }) => {
                let planned_text = planned
                    .map(|n| format!(" · {} invocations planned", format_count(n)))
                    .unwrap_or_default();
                let warmup = if warmup.is_zero() {
                    String::new()
                } else {
                    format!(" · warm-up {}", format_duration(warmup))
                };
                if planned.is_none() {
                    // No count to fill a bar with (a closed model run for a duration): a spinner.
                    self.bar.set_style(
                        ProgressStyle::with_template("{spinner} [{elapsed_precise}] {msg}")
                            .expect("static template"),
                    );
                }
                self.line(format!(
                    "firehose-harness load · target {target} · {model}{planned_text}{warmup} · max in flight {max_in_flight}"
                ));
            }
            RunEvent::Load(LoadEvent::Measuring) => {}
            RunEvent::Load(LoadEvent::Progress(p)) => self.progress(&p),
            RunEvent::Load(LoadEvent::NewFailure { check, message }) => {
                self.line(format!("  new failure: {check}: {message}"));
            }
            RunEvent::Load(LoadEvent::ThresholdBreached {
                expression,
                actual,
                aborting,
            }) => self.line(format!(
                "  threshold {expression} breached (actual {actual}){}",
                if aborting { "; stopping the run" } else { "" }
            )),
            RunEvent::Load(LoadEvent::Draining { in_flight, grace }) => self.line(format!(
                "  schedule done; waiting up to {} for {in_flight} invocation{} still in flight",
                format_duration(grace),
                if in_flight == 1 { "" } else { "s" }
            )),
            RunEvent::Note(n) => self.line(format!("  note: {n}")),
            _ => {}
        }
    }
}
