//! `report merge` (shards → the whole run, exactly) and `report compare` (baseline vs new; exit 3 on a
//! regression).

use std::path::{Path, PathBuf};

use clap::{Args, Subcommand};
use firehose_reports::Report;

use crate::errors::CliError;
use crate::exit_codes;
use crate::load::compare::{MaxRegression, compare};
use crate::load::live::summary_text;
use crate::load::report::merge;
use crate::values;

#[derive(Debug, Clone, Args)]
pub struct ReportArgs {
    #[command(subcommand)]
    pub command: ReportCommand,
}

#[derive(Debug, Clone, Subcommand)]
pub enum ReportCommand {
    /// Combine the reports of `load --partition i/n` shards into the whole run's report: histograms
    /// add exactly, thresholds are judged again.
    Merge(MergeArgs),
    /// Compare a new report with a baseline; exit 3 on a regression (slower p50, p90, p99 or
    /// p99.9 where there are samples enough to judge them, lower throughput, more errors, newly
    /// failing checks).
    Compare(CompareArgs),
}

#[derive(Debug, Clone, Args)]
pub struct MergeArgs {
    /// report.json files (or the folders holding them).
    #[arg(required = true, value_name = "REPORT")]
    pub reports: Vec<PathBuf>,
    /// Write the merged report.json, junit.xml and summary.md here; without it, report.json goes
    /// to stdout.
    #[arg(long, value_name = "DIR")]
    pub report_dir: Option<PathBuf>,
}

#[derive(Debug, Clone, Args)]
pub struct CompareArgs {
    /// The baseline report.json (or its folder).
    #[arg(value_name = "BASE")]
    pub base: PathBuf,
    /// The new report.json (or its folder).
    #[arg(value_name = "NEW")]
    pub new: PathBuf,
    /// How much worse each figure may get, e.g. `p50=10%,p99=20%,throughput=5%,error_rate=0.1`
    /// (error_rate in percentage points). Keys not given keep their defaults: every percentile
    /// +10%, throughput −10%, error rate +0.1 pts.
    #[arg(long, value_name = "LIST")]
    pub max_regression: Option<String>,
    /// Latency changes smaller than this never count as a regression.
    #[arg(long, default_value = "1ms", value_name = "DUR")]
    pub latency_floor: String,
    /// `text` for a terminal or CI log, `markdown` for a pull-request comment.
    #[arg(long, default_value = "text", value_name = "FORMAT", value_parser = ["text", "markdown"])]
    pub format: String,
}

/// Read a report, given its file or its folder.
fn read(path: &Path) -> Result<(String, Report), CliError> {
    let file = if path.is_dir() {
        path.join("report.json")
    } else {
        path.to_path_buf()
    };
    let bytes = std::fs::read(&file)
        .map_err(|e| CliError::usage(format!("cannot read {}: {e}", file.display())))?;
    let report = firehose_reports::json::read(&bytes).map_err(|e| {
        CliError::usage(format!(
            "{} is not a firehose-harness report: {e}",
            file.display()
        ))
    })?;
    Ok((file.display().to_string(), report))
}

pub fn run(args: ReportArgs) -> Result<i32, CliError> {
    match args.command {
        ReportCommand::Merge(a) => run_merge(a),
        ReportCommand::Compare(a) => run_compare(a),
    }
}

fn run_merge(args: MergeArgs) -> Result<i32, CliError> {
    let reports = args
        .reports
        .iter()
        .map(|p| read(p))
        .collect::<Result<Vec<_>, _>>()?;
    let merged = merge(&reports).map_err(|e| CliError::usage(e.to_string()))?;
    match &args.report_dir {
        Some(dir) => {
            super::prepare_report_dir(&args.report_dir)?;
            super::write_report(&merged, &args.report_dir)?;
            crate::terminal::out(summary_text(&merged, Some(dir)));
        }
        None => {
            let mut out = Vec::new();
            firehose_reports::json::write(&merged, &mut out)
                .map_err(|e| CliError::Report(format!("cannot render the report: {e}")))?;
            crate::terminal::out_raw(String::from_utf8_lossy(&out));
        }
    }
    Ok(merged.exit_code)
}

fn run_compare(args: CompareArgs) -> Result<i32, CliError> {
    let mut limits = MaxRegression {
        latency_floor_us: values::parse_duration(&args.latency_floor)
            .map_err(|e| CliError::usage(format!("--latency-floor: {e}")))?
            .as_micros() as u64,
        ..MaxRegression::default()
    };
    if let Some(spec) = &args.max_regression {
        limits = MaxRegression::parse(spec, limits)
            .map_err(|e| CliError::usage(format!("--max-regression: {e}")))?;
    }
    let (base_name, base) = read(&args.base)?;
    let (new_name, new) = read(&args.new)?;
    let comparison = compare((&base_name, &base), (&new_name, &new), &limits)
        .map_err(|e| CliError::usage(e.to_string()))?;
    let text = if args.format == "markdown" {
        comparison.markdown(&base_name, &new_name, exit_codes::THRESHOLD)
    } else {
        comparison.text(&base_name, &new_name, exit_codes::THRESHOLD)
    };
    crate::terminal::out(text.trim_end());
    Ok(if comparison.regressions() > 0 {
        exit_codes::THRESHOLD
    } else {
        exit_codes::OK
    })
}
