//! The terminal face of a run: a progress bar while it works (on a terminal only), a line per new
//! failure, then the per-check table and the first failure's minimal batch and reproducer.
//!
//! Progress and notes go to stderr; the final summary to stdout.

use firehose_reports::text::visible;
use std::path::Path;
use std::time::Duration;

use firehose_reports::markdown::micros;
use firehose_reports::{CheckStatus, Report, Severity, Verdict};
use indicatif::{ProgressBar, ProgressStyle};

use crate::events::{EventSink, RunEvent};
use crate::values::format_count;

/// A progress bar on stderr (hidden when stderr is not a terminal), ticking on its own.
pub(crate) fn progress_bar(template: &str) -> ProgressBar {
    let bar = ProgressBar::new(0);
    bar.set_style(
        ProgressStyle::with_template(template)
            .expect("static template")
            .progress_chars("█▉▊▋▌▍▎▏ "),
    );
    bar.enable_steady_tick(Duration::from_millis(200));
    bar
}

/// A line on stderr that does not tear the progress bar.
pub(crate) fn line_above(bar: &ProgressBar, s: String) {
    if bar.is_hidden() {
        eprintln!("{s}");
    } else {
        bar.println(s);
    }
}

pub struct TerminalReporter {
    bar: ProgressBar,
    failing: u64,
}

impl Default for TerminalReporter {
    fn default() -> Self {
        Self::new()
    }
}

impl TerminalReporter {
    pub fn new() -> Self {
        let bar = progress_bar("{spinner} [{elapsed_precise}] {bar:30} {pos}/{len} cases · {msg}");
        TerminalReporter { bar, failing: 0 }
    }

    fn line(&self, s: String) {
        line_above(&self.bar, s);
    }

    pub fn header(&self, command: &str, target: &str, seed: Option<u64>) {
        match seed {
            Some(seed) => self.line(format!(
                "firehose-harness {command} · target {target} · seed {seed} (rerun with --seed {seed})"
            )),
            None => self.line(format!("firehose-harness {command} · target {target}")),
        }
    }

    pub fn finish(&self) {
        self.bar.finish_and_clear();
    }

    /// The end-of-run summary on stdout.
    pub fn summary(&self, report: &Report, report_dir: Option<&Path>) {
        self.bar.finish_and_clear();
        let mut out = String::new();
        for p in &report.phases {
            out.push_str(&format!(
                "  {:<10} {:>6} cases {:>6} failed\n",
                p.phase, p.run, p.failed
            ));
        }
        out.push_str(&format!(
            "\n  {:<26} {:<8} {}\n",
            "check", "status", "violations"
        ));
        for c in &report.checks {
            let status = match c.status {
                CheckStatus::Pass => "pass",
                CheckStatus::Fail => "FAIL",
                CheckStatus::Warn => "warn",
                CheckStatus::Skipped => "-",
            };
            out.push_str(&format!(
                "  {:<26} {:<8} {}\n",
                c.id,
                status,
                format_count(c.violations)
            ));
        }
        let r = &report.records;
        out.push_str(&format!(
            "\n  records: {} sent · {} Ok · {} Dropped · {} ProcessingFailed\n",
            format_count(r.sent),
            format_count(r.ok),
            format_count(r.dropped),
            format_count(r.processing_failed)
        ));
        if let Some(l) = &report.latency {
            out.push_str(&format!(
                "  latency: p50 {} · p99 {} · max {} ({} invocations)\n",
                micros(l.p50),
                micros(l.p99),
                micros(l.max),
                l.count
            ));
        }
        let errors: Vec<_> = report.errors().collect();
        for (i, f) in errors.iter().enumerate() {
            out.push_str(&format!(
                "\n  FAIL {} ({}) — {}{}\n    {}\n",
                f.check,
                f.code,
                f.tally(),
                if f.flaky {
                    " · FLAKY: the minimal case passed when re-run"
                } else {
                    ""
                },
                visible(&f.message)
            ));
            if let Some(m) = &f.original_message {
                out.push_str(&format!("    first seen as: {m}\n"));
            }
            if let Some(b) = &f.minimal_batch {
                let shrunk = f
                    .shrink
                    .as_ref()
                    .map(|s| {
                        format!(
                            " (shrunk from {} record{} in {} invocations{})",
                            s.from_records,
                            if s.from_records == 1 { "" } else { "s" },
                            s.steps,
                            if s.budget_exhausted {
                                ", budget exhausted"
                            } else {
                                ""
                            }
                        )
                    })
                    .unwrap_or_default();
                out.push_str(&format!("    minimal batch: {b}{shrunk}\n"));
            }
            if !f.depends_on.is_empty() {
                let deps: Vec<_> = f
                    .depends_on
                    .iter()
                    .map(|d| format!("{} ({})", d.dimension, d.flag))
                    .collect();
                out.push_str(&format!("    depends on: {}\n", deps.join(", ")));
            }
            if let (Some(case), Some(dir)) = (&f.case, report_dir) {
                let case_dir = dir.join("cases").join(case);
                out.push_str(&format!(
                    "    case: {}/  ·  reproduce: sh {}\n",
                    case_dir.display(),
                    case_dir.join("reproduce.sh").display()
                ));
                if i == 0 {
                    if let Ok(event) = std::fs::read(case_dir.join("event.json")) {
                        out.push_str(&format!("    event.json:    {}\n", preview(&event)));
                    }
                    if let Ok(body) = std::fs::read(case_dir.join("response.body")) {
                        out.push_str(&format!("    response.body: {}\n", preview(&body)));
                    }
                }
            }
        }
        let warnings = report
            .failures
            .iter()
            .filter(|f| f.severity == Severity::Warning)
            .count();
        if warnings > 0 {
            let kinds = if warnings == 1 { "kind" } else { "kinds" };
            out.push_str(&format!("\n  {warnings} {kinds} of warning (see report)\n"));
        }
        for note in &report.notes {
            out.push_str(&format!("\n  note: {}\n", visible(note)));
        }
        out.push_str(&verdict_line(report, report_dir));
        println!("{out}");
    }
}

/// The last line of a summary: `PASS (exit 0) — report in DIR/`.
pub(crate) fn verdict_line(report: &Report, report_dir: Option<&Path>) -> String {
    let verdict = match report.verdict {
        Verdict::Pass => "PASS",
        Verdict::Fail => "FAIL",
    };
    let mut line = format!("\n{verdict} (exit {})", report.exit_code);
    if let Some(d) = report_dir {
        line.push_str(&format!(" — report in {}/", d.display()));
    }
    line
}

fn preview(bytes: &[u8]) -> String {
    const MAX: usize = 300;
    let text =
        visible(&String::from_utf8_lossy(&bytes[..bytes.len().min(MAX)]).replace('\n', "\\n"))
            .into_owned();
    if bytes.len() > MAX {
        format!("{text}… ({} bytes)", format_count(bytes.len() as u64))
    } else {
        text
    }
}

impl EventSink for TerminalReporter {
    fn emit(&mut self, event: RunEvent) {
        match event {
            RunEvent::Started { planned, .. } => self.bar.set_length(planned),
            RunEvent::PhaseStarted { phase, cases } => {
                self.bar.set_message(format!("{} ({cases})", phase.name()));
            }
            RunEvent::CaseFinished { passed, .. } => {
                if !passed {
                    self.failing += 1;
                    self.bar.set_message(format!("{} failing", self.failing));
                }
                self.bar.inc(1);
            }
            RunEvent::NewFailure {
                phase,
                check,
                message,
            } => self.line(format!(
                "  new failure in {} phase: {check}: {}",
                phase.name(),
                visible(&message)
            )),
            RunEvent::Shrinking {
                step,
                records,
                bytes,
            } => self.bar.set_message(format!(
                "shrinking: step {step}, {records} records, {} bytes",
                format_count(bytes as u64)
            )),
            RunEvent::CaseSaved { .. } => {}
            RunEvent::Note(n) => self.line(format!("  note: {}", visible(&n))),
            // `load` has its own live view (`load::live`).
            RunEvent::Load(_) => {}
        }
    }
}
