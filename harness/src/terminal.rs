//! The terminal face of a run: a progress bar while it works (on a terminal only), a line per new
//! failure, then the per-check table and the first failure's minimal batch and reproducer.
//!
//! Progress and notes go to stderr; the final summary to stdout.

use firehose_reports::text::visible;
use std::path::Path;
use std::time::{Duration, Instant};

use firehose_reports::markdown::micros;
use firehose_reports::{CheckStatus, Report, Severity, Verdict};
use indicatif::{ProgressBar, ProgressStyle};

use crate::events::{EventSink, RunEvent};
use crate::values::format_count;

/// A line on stdout. A closed pipe (`| head`) or a full disk loses the line, never the run: the
/// report files and the exit code are what CI reads, and `println!` would panic (exit 101) instead.
pub fn out(s: impl std::fmt::Display) {
    use std::io::Write;
    let _ = writeln!(std::io::stdout().lock(), "{s}");
}

/// Text on stdout as is (no newline added); errors ignored as in [`out`].
pub fn out_raw(s: impl std::fmt::Display) {
    use std::io::Write;
    let mut stdout = std::io::stdout().lock();
    let _ = write!(stdout, "{s}");
    let _ = stdout.flush();
}

/// A line on stderr; errors ignored as in [`out`].
pub fn err(s: impl std::fmt::Display) {
    use std::io::Write;
    let _ = writeln!(std::io::stderr().lock(), "{s}");
}

/// Text on stderr as is (no newline added); errors ignored as in [`out`].
pub fn err_raw(s: impl std::fmt::Display) {
    use std::io::Write;
    let _ = write!(std::io::stderr().lock(), "{s}");
}

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

/// A progress bar and its log ticker: `quiet` hides the bar and stops the log lines alike.
pub(crate) fn progress(template: &str, quiet: bool) -> (ProgressBar, LogTicker) {
    let bar = progress_bar(template);
    if quiet {
        bar.set_draw_target(indicatif::ProgressDrawTarget::hidden());
    }
    let ticker = LogTicker::new(&bar, quiet);
    (bar, ticker)
}

/// A line on stderr that does not tear the progress bar.
pub(crate) fn line_above(bar: &ProgressBar, s: String) {
    if bar.is_hidden() {
        err(s);
    } else {
        bar.println(s);
    }
}

/// Overrides [`CI_PROGRESS_EVERY`] (a duration such as `1s`), so a test need not wait ten seconds.
pub const PROGRESS_EVERY_ENV: &str = "FIREHOSE_HARNESS_PROGRESS_EVERY";

/// Without a terminal, one progress line this often, as k6 prints in CI.
pub const CI_PROGRESS_EVERY: Duration = Duration::from_secs(10);

/// Progress lines for logs: when stderr is not a terminal the bar is hidden, and a CI log would
/// stay silent for minutes; this says when the next plain line is due instead.
#[derive(Debug)]
pub(crate) struct LogTicker {
    /// `None`: a terminal shows the bar, or `--quiet`.
    every: Option<Duration>,
    start: Instant,
    next: Duration,
}

impl LogTicker {
    pub(crate) fn new(bar: &ProgressBar, quiet: bool) -> Self {
        let every = (bar.is_hidden() && !quiet).then(|| {
            std::env::var(PROGRESS_EVERY_ENV)
                .ok()
                .and_then(|v| crate::values::parse_duration(&v).ok())
                .filter(|d| !d.is_zero())
                .unwrap_or(CI_PROGRESS_EVERY)
        });
        LogTicker {
            every,
            start: Instant::now(),
            next: every.unwrap_or_default(),
        }
    }

    /// The elapsed time, when a line is due now.
    pub(crate) fn due(&mut self) -> Option<Duration> {
        self.due_at(self.start.elapsed())
    }

    /// Whether a line is due at `elapsed` on the caller's own clock (a run's time since start).
    pub(crate) fn due_at(&mut self, elapsed: Duration) -> Option<Duration> {
        let every = self.every?;
        if elapsed < self.next {
            return None;
        }
        while self.next <= elapsed {
            self.next += every;
        }
        Some(elapsed)
    }
}

pub struct TerminalReporter {
    bar: ProgressBar,
    failing: u64,
    done: u64,
    planned: u64,
    ticker: LogTicker,
}

impl Default for TerminalReporter {
    fn default() -> Self {
        Self::new()
    }
}

impl TerminalReporter {
    pub fn new() -> Self {
        Self::with_quiet(false)
    }

    /// `quiet`: no progress at all (the bar, or log lines without a terminal); the summary stays.
    pub fn with_quiet(quiet: bool) -> Self {
        let (bar, ticker) = progress(
            "{spinner} [{elapsed_precise}] {bar:30} {pos}/{len} cases · {msg}",
            quiet,
        );
        TerminalReporter {
            bar,
            failing: 0,
            done: 0,
            planned: 0,
            ticker,
        }
    }

    /// A plain progress line for a log, when one is due.
    fn log_progress(&mut self) {
        if let Some(elapsed) = self.ticker.due() {
            err(format_args!(
                "  [{}] {} of {} cases · {} failing · {:.1} cases/s",
                crate::values::format_duration(Duration::from_secs(elapsed.as_secs())),
                format_count(self.done),
                format_count(self.planned),
                format_count(self.failing),
                self.done as f64 / elapsed.as_secs_f64().max(0.001)
            ));
        }
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
            // A terminal column reads better with a dash than with "skipped".
            let status = match c.status {
                CheckStatus::Skipped => "-",
                other => other.label(),
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
            if let Some(deps) = f.depends_on_text() {
                out.push_str(&format!("    depends on: {deps}\n"));
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
        self::out(out);
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
            RunEvent::Started { planned, .. } => {
                self.planned = planned;
                self.bar.set_length(planned);
            }
            RunEvent::PhaseStarted { phase, cases } => {
                self.bar.set_message(format!("{} ({cases})", phase.name()));
            }
            RunEvent::CaseFinished {
                phase,
                passed,
                elapsed,
                records,
                bytes,
            } => {
                self.failing += u64::from(!passed);
                let failing = match self.failing {
                    0 => String::new(),
                    n => format!(" · {n} failing"),
                };
                // What is being sent right now, and how fast it comes back.
                self.bar.set_message(format!(
                    "{}: last case {records} records, {} bytes in {} ms{failing}",
                    phase.name(),
                    format_count(bytes as u64),
                    elapsed.as_millis()
                ));
                self.bar.inc(1);
                self.done += 1;
                self.log_progress();
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
            RunEvent::Note(n) => self.line(format!("  note: {}", visible(&n))),
            // `load` has its own live view (`load::live`).
            RunEvent::Load(_) => {}
        }
    }
}
