//! `load`: flags → a checked [`LoadPlan`] → target → [`run_load`] with the live view → report → exit
//! code.

use std::path::PathBuf;
use std::sync::Arc;

use clap::{ArgGroup, Args};
use firehose_generators::GenConfig;
use firehose_generators::strategies::BufferHint;
use firehose_generators::wire::BUFFER_HINT_DEFAULT;

use super::{GeneratorArgs, TargetArgs};
use crate::contract::CheckId;
use crate::errors::CliError;
use crate::events::{EventSink, RunEvent};
use crate::load::firehose_model::FirehoseSettings;
use crate::load::live::LoadView;
use crate::load::schedule::{Model, Partition, RateProfile, Schedule};
use crate::load::thresholds::Threshold;
use crate::load::{self, EventSource, LoadPlan, Prepared, run_load};
use crate::targets::{self, Target};
use crate::values;

#[derive(Debug, Clone, Args)]
#[command(group(
    ArgGroup::new("model")
        .required(true)
        .args(["rate", "stages", "concurrency", "firehose_ingest"])
))]
#[command(group(ArgGroup::new("events").args(["event", "event_pool"])))]
pub struct LoadArgs {
    #[command(flatten)]
    pub target: TargetArgs,
    #[command(flatten)]
    pub generator: GeneratorArgs,
    /// Open model: invocations per second, whatever the target does (50, 50/s, 120/m, 0.5/s).
    #[arg(long, value_name = "RATE")]
    pub rate: Option<String>,
    /// Open model, k6 style: ramp linearly to each rate over each duration (30s:100,1m:100,30s:0).
    #[arg(long, value_name = "DUR:RATE,...")]
    pub stages: Option<String>,
    /// Closed model: this many callers, each sending again when its answer arrives.
    #[arg(long, value_name = "C")]
    pub concurrency: Option<u32>,
    /// Firehose model: the stream's ingest (5MB/s); derives rate, batch size and the in-flight cap.
    #[arg(long, value_name = "BYTES/s")]
    pub firehose_ingest: Option<String>,
    /// Firehose model: the Lambda processor's buffer interval (0s..900s).
    #[arg(long, default_value = "60s", value_name = "DUR")]
    pub buffer_interval: String,
    /// Firehose model: shards of the delivery stream (5 outstanding invocations each).
    #[arg(long, default_value_t = 1, value_name = "N")]
    pub firehose_shards: u32,
    /// How long to measure (after the warm-up).
    #[arg(long, value_name = "DUR")]
    pub duration: Option<String>,
    /// How many invocations to measure (over all partitions).
    #[arg(long, value_name = "N")]
    pub invocations: Option<u64>,
    /// Run this long first, at the starting rate, and leave it out of every figure.
    #[arg(long, value_name = "DUR")]
    pub warmup: Option<String>,
    /// Most invocations outstanding at once; further sends wait and count as late [default: 64, or
    /// Firehose's outstanding limit with --firehose-ingest].
    #[arg(long, value_name = "N")]
    pub max_in_flight: Option<usize>,
    /// After the schedule, how long in-flight invocations may take before they count as interrupted.
    #[arg(long, default_value = "30s", value_name = "DUR")]
    pub grace: String,
    /// Pass/fail gate (repeatable): p99<250ms, p99.9<=1s, error_rate<0.1%, throughput>=100/s,
    /// violations==0; add :abort to stop at the first breach.
    #[arg(long = "threshold", value_name = "EXPR")]
    pub thresholds: Vec<String>,
    /// Run the I-th of N slices of the schedule (1-based), for several machines; merge the reports
    /// with `report merge`.
    #[arg(long, value_name = "I/N")]
    pub partition: Option<String>,
    /// Seed of the generated events; a random one is chosen (and printed) when absent.
    #[arg(long, value_name = "S")]
    pub seed: Option<u64>,
    /// Checks: `+id` adds, `-id` removes (write --checks=-id), a plain list replaces the defaults.
    #[arg(long = "checks", value_name = "LIST", allow_hyphen_values = true)]
    pub checks: Vec<String>,
    /// Send this event file on every invocation (as oha sends one fixed body); still checked.
    #[arg(long, value_name = "FILE")]
    pub event: Option<PathBuf>,
    /// Generate N events up front and reuse them round-robin, instead of one per invocation.
    #[arg(long, value_name = "N")]
    pub event_pool: Option<usize>,
    /// Stop after this many invocations in a row (in completion order) got no answer within
    /// --timeout (0 = never).
    #[arg(long, default_value_t = crate::conformance::DEFAULT_MAX_HANGS, value_name = "N")]
    pub max_hangs: u32,
    /// Write report.json, junit.xml, summary.md, latency.hlog and cases/ here.
    #[arg(long, value_name = "DIR")]
    pub report_dir: Option<PathBuf>,
    /// Also write what Firehose would deliver (delivered/, processing-failed/, dropped.json) to
    /// --report-dir, up to 64 MiB.
    #[arg(long, requires = "report_dir")]
    pub keep_delivered: bool,
    #[command(flatten)]
    pub delivery: super::delivery::DeliveryArgs,
    /// No progress while running (without a terminal: no line every 10 s); the summary stays.
    #[arg(long)]
    pub quiet: bool,
}

fn usage(flag: &'static str) -> impl Fn(String) -> CliError {
    move |e| CliError::usage(format!("--{flag}: {e}"))
}

impl LoadArgs {
    fn duration(
        &self,
        flag: &'static str,
        v: &Option<String>,
    ) -> Result<Option<std::time::Duration>, CliError> {
        v.as_deref()
            .map(values::parse_duration)
            .transpose()
            .map_err(usage(flag))
    }

    /// Flags → a validated plan, and the generator settings (for the report).
    pub fn plan(&self) -> Result<(LoadPlan, Option<GenConfig>), CliError> {
        let mut generator = self.generator.to_config()?;
        let duration = self.duration("duration", &self.duration)?;
        if duration.is_some_and(|d| d.is_zero()) {
            return Err(CliError::usage("--duration must be more than zero"));
        }
        if self.invocations == Some(0) {
            return Err(CliError::usage("--invocations must be at least 1"));
        }
        let warmup = self.duration("warmup", &self.warmup)?.unwrap_or_default();
        let partition = match &self.partition {
            Some(p) => {
                let (index, count) = values::parse_partition(p).map_err(usage("partition"))?;
                Partition { index, count }
            }
            None => Partition::WHOLE,
        };
        let needs_length = || {
            if duration.is_none() && self.invocations.is_none() {
                Err(CliError::usage(
                    "say how long to run: --duration DUR or --invocations N",
                ))
            } else {
                Ok(())
            }
        };
        let mut firehose = None;
        let model = if let Some(r) = &self.rate {
            needs_length()?;
            let rate = values::parse_rate(r).map_err(usage("rate"))?;
            if rate <= 0.0 {
                return Err(CliError::usage("--rate must be more than zero"));
            }
            Model::Open(RateProfile::constant(rate, duration))
        } else if let Some(s) = &self.stages {
            if duration.is_some() {
                return Err(CliError::usage(
                    "--stages sets the run's length itself; drop --duration (--invocations may still cap it)",
                ));
            }
            let stages = values::parse_stages(s).map_err(usage("stages"))?;
            let profile = RateProfile::stages(&stages);
            if profile.total() < 1.0 {
                return Err(CliError::usage(format!(
                    "--stages: `{s}` never sends an invocation; give a stage a rate above zero"
                )));
            }
            Model::Open(profile)
        } else if let Some(c) = self.concurrency {
            needs_length()?;
            if c == 0 {
                return Err(CliError::usage("--concurrency must be at least 1"));
            }
            if c < partition.count {
                return Err(CliError::usage(format!(
                    "--concurrency {c} cannot be split into {} partitions; each needs a caller",
                    partition.count
                )));
            }
            Model::Closed { callers: c }
        } else if let Some(i) = &self.firehose_ingest {
            needs_length()?;
            let settings = FirehoseSettings {
                ingest: values::parse_byte_rate(i).map_err(usage("firehose-ingest"))?,
                buffer_size: match &self.generator.buffer_size {
                    Some(s) => values::parse_size(s).map_err(usage("buffer-size"))?,
                    None => BUFFER_HINT_DEFAULT as u64,
                },
                buffer_interval: values::parse_duration(&self.buffer_interval)
                    .map_err(usage("buffer-interval"))?,
                shards: self.firehose_shards,
            };
            let m = settings.derive().map_err(CliError::usage)?;
            // Batches of what Firehose would buffer; an interval-triggered batch may be smaller
            // than the 0.2 MB a --buffer-size hint allows, so it is set after validation.
            generator.buffer = BufferHint::Fixed(m.batch_bytes as usize);
            firehose = Some(m);
            Model::Open(RateProfile::constant(m.rate, duration))
        } else {
            return Err(CliError::usage(
                "choose a load model: --rate, --stages, --concurrency or --firehose-ingest",
            ));
        };
        let schedule = Schedule::new(model, warmup, duration, self.invocations, partition);
        if schedule.planned() == Some(0) {
            return Err(CliError::usage(format!(
                "partition {partition} of this schedule has no invocation; use fewer partitions or a longer run"
            )));
        }
        let seed = self.seed.unwrap_or_else(super::check::random_seed);
        let events = if let Some(path) = &self.event {
            let bytes = std::fs::read(path).map_err(|e| {
                CliError::usage(format!("--event: cannot read {}: {e}", path.display()))
            })?;
            let label = path.display().to_string();
            EventSource::Fixed(Arc::new(
                Prepared::from_file(label, bytes).map_err(usage("event"))?,
            ))
        } else if let Some(n) = self.event_pool {
            if n == 0 {
                return Err(CliError::usage("--event-pool must be at least 1"));
            }
            EventSource::Pool(
                (0..n as u64)
                    .map(|i| Arc::new(Prepared::generated(&generator, seed, i)))
                    .collect(),
            )
        } else {
            EventSource::Generate {
                config: generator.clone(),
                seed,
            }
        };
        let mut plan = LoadPlan::new(schedule, events);
        plan.seed = seed;
        plan.firehose = firehose;
        plan.max_in_flight = match (self.max_in_flight, &firehose) {
            (Some(0), _) => return Err(CliError::usage("--max-in-flight must be at least 1")),
            (Some(n), _) => n,
            (None, Some(m)) => m.outstanding as usize,
            (None, None) => load::DEFAULT_MAX_IN_FLIGHT,
        };
        let (_, _, timeout) = self.target.parse()?;
        plan.timeout = timeout;
        plan.max_hangs = self.max_hangs;
        plan.grace = values::parse_duration(&self.grace).map_err(usage("grace"))?;
        plan.checks = super::parse_checks(&self.checks)?;
        plan.thresholds = Threshold::with_default_gate(
            self.thresholds
                .iter()
                .map(|t| Threshold::parse(t).map_err(usage("threshold")))
                .collect::<Result<_, _>>()?,
        );
        plan.cases_dir = self.report_dir.as_ref().map(|d| d.join("cases"));
        plan.hlog = self
            .report_dir
            .as_ref()
            .map(|d| d.join(load::hlog::FILE_NAME));
        if self.keep_delivered {
            let (spec, _, _) = self.target.parse()?;
            plan.delivery = self.delivery.log(self.report_dir.as_deref(), &spec)?;
        } else if self.delivery.s3_prefix.is_some() {
            return Err(CliError::usage("--s3-prefix needs --keep-delivered"));
        }
        let generated = self.event.is_none().then_some(generator);
        Ok((plan, generated))
    }
}

pub fn run(args: LoadArgs) -> Result<i32, CliError> {
    let (mut plan, generator) = args.plan()?;
    let (spec, mut options, _) = args.target.parse()?;
    // exec: functions run as many instances as there may be invocations in flight; an image:
    // starts one container unless --instances asks for more (not 64 containers by accident).
    if !matches!(spec, targets::TargetSpec::Image(_)) {
        options.instances.get_or_insert(plan.max_in_flight);
    }
    super::prepare_report_dir(&args.report_dir)?;
    let target: Arc<dyn Target> = Arc::from(targets::build(&spec, &options)?);
    let mut view = LoadView::with_quiet(args.quiet);
    if plan.checks.contains(CheckId::Deterministic) {
        // Sending every batch twice would double the load being measured.
        let _ = plan.checks.apply("-deterministic");
        view.emit(RunEvent::Note(
            "`deterministic` is not judged under load (it would send every batch twice); run `check` for it".into(),
        ));
    }
    if generator.is_some() && args.seed.is_none() {
        view.emit(RunEvent::Note(format!(
            "seed {} (rerun with --seed {})",
            plan.seed, plan.seed
        )));
    }
    let rt = super::runtime()?;
    let report = rt.block_on(async {
        let cancel = super::interrupt_token()?;
        target.start().await?;
        let mut outcome = run_load(plan.clone(), target.clone(), &mut view, cancel).await;
        // Cold starts, init durations, crashes and throttles of the instances an exec: target ran.
        let pool = target.pool_stats();
        if let Some(stats) = &pool {
            outcome.notes.push(stats.summary());
        }
        target.shutdown().await;
        // Throttles per second and the Lambda version that ran: what only the target saw.
        outcome
            .notes
            .extend(target.throttles().note(Some(outcome.duration)));
        outcome.notes.extend(target.notes());
        if outcome.unreachable.is_none() {
            outcome.unreachable = target.throttles().all_throttled(&target.describe());
        }
        let mut report = load::report::load_report(&outcome, &plan, generator.as_ref());
        if let (Some(stats), Some(l)) = (&pool, report.load.as_mut()) {
            l.cold_starts = Some(stats.cold_starts);
        }
        if let (Some(log), Some(dir)) = (&plan.delivery, &args.report_dir) {
            super::delivery::finish(log, dir, &mut report);
        }
        Ok::<_, CliError>((outcome.unreachable.take(), report))
    });
    let (unreachable, report) = match report {
        Ok(r) => r,
        Err(e) => {
            // Nothing ran; still leave a report behind for CI.
            return Err(super::report_nothing_ran(
                "load",
                &target.describe(),
                e,
                &args.report_dir,
            ));
        }
    };
    view.finish();
    super::write_report(&report, &args.report_dir)?;
    if let Some(e) = unreachable {
        return Err(e.into());
    }

    if report.exit_code == crate::exit_codes::TARGET_UNAVAILABLE {
        let message = if report.stopped_early.as_deref() == Some("hanging") {
            crate::report::NOTHING_ANSWERED_HANGING
        } else {
            load::report::NOTHING_ANSWERED
        };
        return Err(CliError::Unavailable {
            message: message.into(),
            hint: "is the transformer hanging? a --timeout below the run's length turns a hang into a finding".into(),
        });
    }
    view.summary(&report, args.report_dir.as_deref());
    Ok(report.exit_code)
}
