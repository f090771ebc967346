use std::path::PathBuf;
use std::time::{Duration, SystemTime};

use bytes::Bytes;
use clap::Args;
use firehose_generators::wire::EventView;

use crate::contract::{self, CheckId};
use crate::errors::CliError;
use crate::events::Phase;
use crate::invocation::Invocation;
use crate::terminal::TerminalReporter;
use crate::{exit_codes, report};

#[derive(Debug, Clone, Args)]
pub struct ValidateArgs {
    /// The event the response answers (JSON, quirks allowed).
    #[arg(long, value_name = "FILE")]
    pub event: PathBuf,
    /// The transformer's response body.
    #[arg(long, value_name = "FILE")]
    pub response: PathBuf,
    /// Checks: `+id` adds, `-id` removes, a plain list replaces the defaults.
    #[arg(long = "checks", value_name = "LIST", allow_hyphen_values = true)]
    pub checks: Vec<String>,
    /// Write report.json, junit.xml and summary.md here.
    #[arg(long, value_name = "DIR")]
    pub report_dir: Option<PathBuf>,
}

pub fn run(args: ValidateArgs) -> Result<i32, CliError> {
    let started = SystemTime::now();
    let checks = super::parse_checks(&args.checks)?;
    let read = |p: &PathBuf| {
        std::fs::read(p).map_err(|e| CliError::usage(format!("cannot read {}: {e}", p.display())))
    };
    let event = read(&args.event)?;
    let body = read(&args.response)?;
    let view = EventView::parse(&event)
        .map_err(|e| CliError::usage(format!("{}: {e}", args.event.display())))?;
    let inv = Invocation::answered(None, Bytes::from(body), Duration::ZERO);
    let verdict = contract::check(&view, &inv, &checks);

    let groups = crate::case::FailureGroup::all_of(&verdict, Phase::Corpus);
    let mut r = firehose_reports::Report::new("validate", &args.response.display().to_string());
    r.started_at = report::timestamp(started);
    r.checks = report::check_results(&checks, &verdict.counts, &groups);
    // Nothing was invoked: a check about the invocation itself (its error status, its clock, a
    // second send) cannot have passed. An error-shaped body still fails `invocation_succeeded`.
    for c in &mut r.checks {
        let needs_invocation = matches!(
            CheckId::parse(&c.id),
            Some(CheckId::InvocationSucceeded | CheckId::WithinTimeout | CheckId::Deterministic)
        );
        if needs_invocation && c.violations == 0 {
            c.status = firehose_reports::CheckStatus::Skipped;
        }
    }
    r.failures = groups
        .iter()
        .map(|g| {
            let mut f = report::failure(g);
            f.phase = "validate".into();
            f
        })
        .collect();
    r.records = firehose_reports::RecordCounts {
        sent: view.record_ids.len() as u64,
        ok: verdict.results.ok,
        dropped: verdict.results.dropped,
        processing_failed: verdict.results.processing_failed,
    };
    r.exit_code = if verdict.failed() {
        exit_codes::VIOLATIONS
    } else {
        exit_codes::OK
    };
    r.verdict = if verdict.failed() {
        firehose_reports::Verdict::Fail
    } else {
        firehose_reports::Verdict::Pass
    };
    let reporter = TerminalReporter::new();
    println!(
        "validate {} against {}",
        args.response.display(),
        args.event.display()
    );
    // Errors are listed by the summary, once each; warnings only counted there, so list them here.
    for f in r
        .failures
        .iter()
        .filter(|f| f.severity == firehose_reports::Severity::Warning)
    {
        println!("  warn {:<24} {} ({})", f.check, f.message, f.tally());
    }
    super::write_report(&r, &args.report_dir)?;
    reporter.summary(&r, args.report_dir.as_deref());
    Ok(r.exit_code)
}
