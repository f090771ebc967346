use std::path::PathBuf;
use std::time::SystemTime;

use clap::Args;
use firehose_generators::wire::load_corpus_dir;

use super::{GeneratorArgs, TargetArgs};
use crate::conformance::{CheckPlan, CorpusCase, ShrinkBudget, run_check};
use crate::errors::CliError;
use crate::terminal::TerminalReporter;
use crate::{report, targets, values};

#[derive(Debug, Clone, Args)]
pub struct CheckArgs {
    #[command(flatten)]
    pub target: TargetArgs,
    #[command(flatten)]
    pub generator: GeneratorArgs,
    /// Random cases to run after the boundary phase.
    #[arg(long, default_value_t = 100, value_name = "N")]
    pub cases: u64,
    /// Seed of the random cases; a random one is chosen (and printed) when absent.
    #[arg(long, value_name = "S")]
    pub seed: Option<u64>,
    /// Checks: `+id` adds, `-id` removes (write --checks=-id), a plain list replaces the defaults.
    #[arg(long = "checks", value_name = "LIST", allow_hyphen_values = true)]
    pub checks: Vec<String>,
    /// Stop the whole run after this long (a hanging target cannot stall CI).
    #[arg(long, value_name = "DUR")]
    pub deadline: Option<String>,
    /// Stop after this many failing cases.
    #[arg(long, value_name = "N")]
    pub max_failures: Option<u64>,
    /// Cases in flight at once: N, or `auto` (the --instances of exec:/image:, 4 for http(s):// and
    /// lambda:, 1 for invoke+http(s)://, stdio: and builtin:). Answers are judged in case order, so
    /// the report is the same for any N.
    #[arg(long, default_value = "1", value_name = "N|auto")]
    pub workers: String,
    /// Stop after this many invocations in a row got no answer within --timeout (0 = never).
    #[arg(long, default_value_t = crate::conformance::DEFAULT_MAX_HANGS, value_name = "N")]
    pub max_hangs: u32,
    /// Report failures as found, without shrinking them.
    #[arg(long)]
    pub no_shrink: bool,
    /// Invocations spent shrinking one failure at most.
    #[arg(long, default_value_t = 500, value_name = "N")]
    pub shrink_invocations: u64,
    /// Time spent shrinking one failure at most.
    #[arg(long, default_value = "60s", value_name = "DUR")]
    pub shrink_time: String,
    /// Skip the boundary phase (one record, empty record, maximal record, near-6 MB batch, …).
    #[arg(long)]
    pub no_boundary: bool,
    /// Replay real event files from DIR (e.g. fixtures/real-events in this repository) before the
    /// random cases.
    #[arg(long, value_name = "DIR")]
    pub corpus: Option<PathBuf>,
    /// Send corpus files verbatim, quirks and all, instead of normalising them.
    #[arg(long)]
    pub corpus_raw: bool,
    /// Where minimal failing cases are saved and replayed from on every run.
    #[arg(
        long,
        default_value = ".firehose-harness/regressions",
        value_name = "DIR"
    )]
    pub regressions: PathBuf,
    /// Neither replay nor save regressions.
    #[arg(long)]
    pub no_regressions: bool,
    /// Write report.json, junit.xml, summary.md, cases/, and what Firehose would deliver
    /// (delivered/, processing-failed/, dropped.json) here.
    #[arg(long, value_name = "DIR")]
    pub report_dir: Option<PathBuf>,
    #[command(flatten)]
    pub delivery: super::delivery::DeliveryArgs,
    /// No progress while running (without a terminal: no line every 10 s); the summary stays.
    #[arg(long)]
    pub quiet: bool,
}

impl CheckArgs {
    fn plan(&self) -> Result<CheckPlan, CliError> {
        let generator = self.generator.to_config()?;
        let seed = self.seed.unwrap_or_else(random_seed);
        let mut plan = CheckPlan::new(generator, seed, self.cases);
        plan.checks = super::parse_checks(&self.checks)?;
        let (spec, _, timeout) = self.target.parse()?;
        plan.timeout = timeout;
        plan.delivery = self.delivery.log(self.report_dir.as_deref(), &spec)?;
        plan.deadline = self
            .deadline
            .as_deref()
            .map(values::parse_duration)
            .transpose()
            .map_err(|e| CliError::usage(format!("--deadline: {e}")))?;
        plan.max_failures = self.max_failures;
        plan.max_hangs = self.max_hangs;
        plan.workers = workers(&self.workers, &spec, self.target.instances)?;
        if self.max_failures == Some(0) {
            return Err(CliError::usage("--max-failures must be at least 1"));
        }
        plan.shrink = ShrinkBudget {
            enabled: !self.no_shrink,
            max_invocations: self.shrink_invocations,
            max_time: values::parse_duration(&self.shrink_time)
                .map_err(|e| CliError::usage(format!("--shrink-time: {e}")))?,
        };
        plan.boundary = !self.no_boundary;
        plan.regressions = (!self.no_regressions).then(|| self.regressions.clone());
        plan.cases_dir = self.report_dir.as_ref().map(|d| d.join("cases"));
        if let Some(dir) = &self.corpus {
            let (cases, notes) = load_corpus(dir, self.corpus_raw)?;
            plan.corpus = cases;
            plan.notes.extend(notes);
        }
        Ok(plan)
    }
}

/// `--workers N|auto`. Auto uses what the target can serve at once: every instance of a function
/// the harness runs; 4 calls to a service that scales by itself (a URL, Lambda); one to RIE, which
/// breaks on concurrent invokes, to `stdio:`, which starts a process per call, and to `builtin:`,
/// which computes in the harness's own task.
fn workers(
    value: &str,
    spec: &targets::TargetSpec,
    instances: Option<usize>,
) -> Result<usize, CliError> {
    use targets::TargetSpec;
    if value.eq_ignore_ascii_case("auto") {
        return Ok(match spec {
            TargetSpec::Exec(_) | TargetSpec::Image(_) => instances.unwrap_or(1),
            TargetSpec::Http(_) | TargetSpec::Lambda(_) => 4,
            TargetSpec::InvokeHttp { .. } | TargetSpec::Stdio(_) | TargetSpec::Builtin(_) => 1,
        });
    }
    match value.parse::<usize>() {
        Ok(n) if n >= 1 => Ok(n),
        _ => Err(CliError::usage(format!(
            "--workers: `{value}` is neither a number of at least 1 nor `auto`"
        ))),
    }
}

/// Corpus files as cases: normalised (quirks fixed, and said so) or raw.
fn load_corpus(
    dir: &std::path::Path,
    raw: bool,
) -> Result<(Vec<CorpusCase>, Vec<String>), CliError> {
    let files = load_corpus_dir(dir).map_err(|e| CliError::usage(format!("--corpus: {e}")))?;
    let mut cases = Vec::new();
    let mut normalised = 0;
    for f in files.iter().filter(|f| !f.is_response) {
        let label = f
            .path
            .strip_prefix(dir)
            .unwrap_or(&f.path)
            .display()
            .to_string();
        // A JSON file that is no event must not shrink the corpus phase without a word.
        if f.view.is_none() || (!raw && f.normalised().is_none()) {
            return Err(CliError::usage(format!(
                "--corpus: {} is JSON but not a Firehose event (it needs a records array of objects with recordId); remove it, or name it *response*.json if it is a response",
                f.path.display()
            )));
        }
        if raw {
            cases.push(CorpusCase {
                label,
                bytes: f.raw.clone(),
            });
        } else if let Some(event) = f.normalised() {
            if !f.quirks.is_empty() {
                normalised += 1;
            }
            cases.push(CorpusCase {
                label,
                bytes: event.to_json(),
            });
        }
    }
    let mut notes = Vec::new();
    let responses = files.iter().filter(|f| f.is_response).count();
    if responses > 0 {
        notes.push(format!(
            "{responses} corpus file{} named like a response (*response*.json) skipped",
            if responses == 1 { "" } else { "s" }
        ));
    }
    if normalised > 0 {
        notes.push(format!(
            "{normalised} corpus files had quirks Firehose never sends (duplicate ids, broken base64, ISO timestamps, …) and were normalised; --corpus-raw sends them verbatim"
        ));
    }
    Ok((cases, notes))
}

pub(super) fn random_seed() -> u64 {
    use std::hash::{BuildHasher, Hasher};
    let mut h = std::collections::hash_map::RandomState::new().build_hasher();
    h.write_u128(
        SystemTime::now()
            .duration_since(SystemTime::UNIX_EPOCH)
            .unwrap_or_default()
            .as_nanos(),
    );
    h.finish() % 1_000_000_000
}

pub fn run(args: CheckArgs) -> Result<i32, CliError> {
    let plan = args.plan()?;
    let (spec, options, _) = args.target.parse()?;
    super::prepare_report_dir(&args.report_dir)?;
    let target = targets::build(&spec, &options)?;
    let started = SystemTime::now();
    let rt = super::runtime()?;
    let mut reporter = TerminalReporter::with_quiet(args.quiet);
    let outcome = rt.block_on(async {
        let cancel = super::interrupt_token()?;
        reporter.header("check", &target.describe(), Some(plan.seed));
        target.start().await?;
        let mut outcome = run_check(&plan, target.as_ref(), &mut reporter, cancel).await;
        // Cold starts, init durations, crashes of the instances an exec: target ran.
        if let Some(stats) = target.pool_stats() {
            outcome.notes.push(stats.summary());
        }
        // Throttles, the Lambda version that ran: what only the target saw.
        outcome.notes.extend(target.throttles().note(None));
        outcome.notes.extend(target.notes());
        if outcome.judged() == 0 && outcome.unreachable.is_none() {
            outcome.unreachable = target.throttles().all_throttled(&target.describe());
        }
        target.shutdown().await;
        Ok::<_, CliError>(outcome)
    });
    let outcome = match outcome {
        Ok(o) => o,
        Err(e) => {
            // Nothing ran; still leave a report behind for CI.
            return Err(super::report_nothing_ran(
                "check",
                &target.describe(),
                e,
                &args.report_dir,
            ));
        }
    };
    let mut report = report::check_report(&outcome, &plan, started);
    if let (Some(log), Some(dir)) = (&plan.delivery, &args.report_dir) {
        super::delivery::finish(log, dir, &mut report);
    }
    reporter.finish();
    super::write_report(&report, &args.report_dir)?;
    if let Some(e) = &outcome.unreachable {
        return Err(CliError::Unavailable {
            message: e.to_string(),
            hint: e.hint().to_string(),
        });
    }
    if outcome.nothing_judged() {
        return Err(CliError::Unavailable {
            message: report::nothing_judged_reason(&outcome).into(),
            hint: "a hanging target".into(),
        });
    }
    if let Some(e) = report::corrupt_regressions(&outcome) {
        reporter.summary(&report, args.report_dir.as_deref());
        return Err(CliError::usage(e));
    }
    reporter.summary(&report, args.report_dir.as_deref());
    if let (Some(section), Some(dir)) = (&report.delivery, &args.report_dir) {
        crate::terminal::out(super::delivery::summary_line(section, dir));
    }
    Ok(report.exit_code)
}
