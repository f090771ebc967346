use std::path::PathBuf;

use clap::Args;

use super::TargetArgs;
use crate::case::{self, CaseJson, Judge, Reach, load_case};
use crate::contract::{self, CheckSet};
use crate::errors::CliError;
use crate::{exit_codes, targets};

#[derive(Debug, Clone, Args)]
pub struct ReplayArgs {
    /// Case folders (from REPORT_DIR/cases/ or the regressions folder).
    #[arg(required = true, value_name = "CASE_DIR")]
    pub cases: Vec<PathBuf>,
    #[command(flatten)]
    pub target: TargetArgs,
    /// How many times each case is sent: all fail = FAILED, none = FIXED, some = FLAKY.
    #[arg(long, default_value_t = 3, value_name = "N")]
    pub runs: u32,
    /// Checks: `+id` adds, `-id` removes, a plain list replaces the defaults.
    #[arg(long = "checks", value_name = "LIST", allow_hyphen_values = true)]
    pub checks: Vec<String>,
    /// Write what Firehose would deliver from each case's first run here: delivered/,
    /// processing-failed/, dropped.json.
    #[arg(long, value_name = "DIR")]
    pub report_dir: Option<PathBuf>,
    #[command(flatten)]
    pub delivery: super::delivery::DeliveryArgs,
}

/// What a case's failure was, from its case.json: (check id, fingerprint, fingerprint version).
fn original_failure(meta: &Option<CaseJson>) -> Option<(String, String, u32)> {
    let (check, fingerprint, version) = meta.as_ref()?.failure()?;
    Some((check.to_string(), fingerprint.to_string(), version))
}

pub fn run(args: ReplayArgs) -> Result<i32, CliError> {
    let checks: CheckSet = super::parse_checks(&args.checks)?;
    let (spec, options, timeout) = args.target.parse()?;
    if args.runs == 0 {
        return Err(CliError::usage("--runs must be at least 1"));
    }
    let cases = args
        .cases
        .iter()
        .map(|d| load_case(d).map_err(CliError::usage))
        .collect::<Result<Vec<_>, _>>()?;
    let delivery = args.delivery.log(args.report_dir.as_deref(), &spec)?;
    super::prepare_report_dir(&args.report_dir)?;
    let target = targets::build(&spec, &options)?;
    let rt = super::runtime()?;
    rt.block_on(async {
        target.start().await?;
        let mut worst = exit_codes::OK;
        let reach = Reach::default();
        let judge = Judge {
            target: target.as_ref(),
            checks: &checks,
            timeout,
            reach: &reach,
        };
        for case in &cases {
            let original = original_failure(&case.meta);
            let mut failed_runs = 0;
            let mut last_problem = None;
            let mut judged_runs = 0;
            let event = bytes::Bytes::from(case.event.clone());
            for _ in 0..args.runs {
                let (inv, verdict) = match case::attempt(judge, &event, &case.view).await {
                    // Throttled to the end: the function never saw the event, so this run says
                    // nothing about the case.
                    Ok(tried) if !tried.judged() => continue,
                    Ok(tried) => (tried.inv, tried.verdict),
                    Err(e) => {
                        // Stop what the target started (processes, containers) on this way out too.
                        target.shutdown().await;
                        return Err(e.into());
                    }
                };
                judged_runs += 1;
                if let Some(log) = delivery.as_ref().filter(|_| judged_runs == 1) {
                    log.observe(&case.event, &inv, &verdict);
                }
                let hit = match &original {
                    Some((check, fp, version)) => verdict.key_counts.keys().any(|(c, f)| {
                        c.id() == check && contract::fingerprint::matches_saved(fp, *version, f)
                    }),
                    None => verdict.failed(),
                };
                if hit {
                    failed_runs += 1;
                } else if verdict.failed() {
                    last_problem = verdict
                        .violations
                        .iter()
                        .find(|v| v.severity == contract::Severity::Error)
                        .map(|v| format!("{}: {}", v.check.id(), v.message));
                }
            }
            let what = original
                .as_ref()
                .map(|(c, _, _)| c.as_str())
                .unwrap_or("any check");
            if judged_runs == 0 {
                target.shutdown().await;
                return Err(targets::TargetError::Throttled {
                    target: target.describe(),
                }
                .into());
            }
            let status = if failed_runs == judged_runs {
                "FAILED"
            } else if failed_runs == 0 {
                "FIXED"
            } else {
                "FLAKY"
            };
            println!(
                "{status} {} ({what}: failed {failed_runs} of {judged_runs} runs)",
                case.dir.display(),
            );
            if let Some(p) = last_problem {
                println!("  but now: {p}");
                worst = exit_codes::VIOLATIONS;
            }
            if status != "FIXED" {
                worst = exit_codes::VIOLATIONS;
            }
        }
        target.shutdown().await;
        Ok::<i32, CliError>(worst)
    })
    .and_then(|worst| {
        if let (Some(log), Some(dir)) = (&delivery, &args.report_dir) {
            let section = log.finish().map_err(|e| {
                CliError::Io(format!(
                    "cannot write delivery files to {}: {e}",
                    dir.display()
                ))
            })?;
            println!("{}", super::delivery::summary_line(&section, dir));
        }
        Ok(worst)
    })
}
