//! `report merge` (shards → the whole run, exactly) and `report compare` (baseline vs new; exit 3 on a
//! regression).

use std::path::{Path, PathBuf};

use clap::{Args, Subcommand};
use firehose_reports::Report;

use crate::errors::CliError;
use crate::exit_codes;
use crate::load::live::summary_text;
use crate::load::report::{Tolerances, compare, merge};
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
    /// Compare a new report with a baseline; exit 3 on a regression (slower p99 or p99.9, lower
    /// throughput, more errors, newly failing checks).
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
    /// How much slower p99 and p99.9 may get (a ratio: 10% or 0.1).
    #[arg(long, default_value = "10%", value_name = "RATIO")]
    pub tolerance: String,
    /// Latency changes smaller than this never count as a regression.
    #[arg(long, default_value = "1ms", value_name = "DUR")]
    pub latency_floor: String,
    /// How much the achieved throughput may fall.
    #[arg(long, default_value = "10%", value_name = "RATIO")]
    pub throughput_tolerance: String,
    /// How much the error rate may rise, in absolute terms.
    #[arg(long, default_value = "0.1%", value_name = "RATIO")]
    pub error_rate_tolerance: String,
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
            println!("{}", summary_text(&merged, Some(dir)));
        }
        None => {
            let mut out = Vec::new();
            firehose_reports::json::write(&merged, &mut out)
                .map_err(|e| CliError::Io(format!("cannot render the report: {e}")))?;
            print!("{}", String::from_utf8_lossy(&out));
        }
    }
    Ok(merged.exit_code)
}

fn run_compare(args: CompareArgs) -> Result<i32, CliError> {
    let ratio = |flag: &'static str, v: &str| {
        values::parse_ratio(v).map_err(|e| CliError::usage(format!("--{flag}: {e}")))
    };
    let tol = Tolerances {
        latency: ratio("tolerance", &args.tolerance)?,
        latency_floor_us: values::parse_duration(&args.latency_floor)
            .map_err(|e| CliError::usage(format!("--latency-floor: {e}")))?
            .as_micros() as u64,
        throughput: ratio("throughput-tolerance", &args.throughput_tolerance)?,
        error_rate: ratio("error-rate-tolerance", &args.error_rate_tolerance)?,
    };
    let (base_name, base) = read(&args.base)?;
    let (new_name, new) = read(&args.new)?;
    // Comparing a check with a load run (or a load report without its figures) would find nothing
    // to compare and read as "no regression".
    if base.command != new.command || base.load.is_some() != new.load.is_some() {
        return Err(CliError::usage(format!(
            "{base_name} ({}{}) and {new_name} ({}{}) are not the same kind of run",
            base.command,
            if base.load.is_some() {
                ""
            } else {
                ", no load figures"
            },
            new.command,
            if new.load.is_some() {
                ""
            } else {
                ", no load figures"
            },
        )));
    }
    let lines = compare(&base, &new, &tol);
    println!(
        "report compare {base_name} → {new_name} (tolerance: latency +{:.1}% beyond {}µs, throughput −{:.1}%, error rate +{:.3} pts)",
        tol.latency * 100.0,
        tol.latency_floor_us,
        tol.throughput * 100.0,
        tol.error_rate * 100.0
    );
    println!("  {:<34} {:>12} {:>12} {:>12}", "", "base", "new", "change");
    for l in &lines {
        println!(
            "  {:<34} {:>12} {:>12} {:>12}{}",
            l.what,
            l.base,
            l.new,
            l.change,
            if l.regressed { "  REGRESSION" } else { "" }
        );
    }
    let regressions = lines.iter().filter(|l| l.regressed).count();
    if regressions > 0 {
        println!(
            "\nREGRESSION: {regressions} figure{} worse than the baseline (exit {})",
            if regressions == 1 { " is" } else { "s are" },
            exit_codes::THRESHOLD
        );
        Ok(exit_codes::THRESHOLD)
    } else {
        println!("\nno regression (exit 0)");
        Ok(exit_codes::OK)
    }
}
