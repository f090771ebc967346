//! The command line: clap types, and their conversion into checked engine plans.
//!
//! Engine code never sees clap: each subcommand's `run` turns raw flags into a plan (errors are
//! [`CliError::Usage`], exit 2), builds the target, and calls the engine with the terminal reporter.

mod check;
mod emulate;
mod generate;
mod load;
mod replay;
mod report_cmd;
mod run;
mod validate;

use std::path::PathBuf;

use clap::{Args, Parser, Subcommand};
use firehose_generators::GenConfig;
use firehose_generators::payload::{Compression, PayloadFamily};
use firehose_generators::strategies::BufferHint;
use firehose_generators::wire::{MAX_RECORD_BYTES, Source};

use crate::contract::CheckSet;
use crate::errors::CliError;
use crate::targets::{TargetOptions, TargetSpec};
use crate::values;

#[derive(Debug, Parser)]
#[command(
    name = "firehose-harness",
    version,
    about = "Property-based conformance and load testing for Amazon Data Firehose transformation functions",
    after_help = "Exit codes: 0 everything held · 1 contract violations · 2 usage error · 3 threshold breached · 4 target unreachable · 130 interrupted"
)]
pub struct Cli {
    #[command(subcommand)]
    pub command: Command,
}

#[derive(Debug, Subcommand)]
pub enum Command {
    /// Generate batches, invoke the target, check every answer against the Firehose contract.
    Check(Box<check::CheckArgs>),
    /// Send saved case folders again and say FIXED, FAILED or FLAKY.
    Replay(replay::ReplayArgs),
    /// Check a response file against an event file, offline.
    Validate(validate::ValidateArgs),
    /// Print generated events as NDJSON (one event per line).
    Generate(generate::GenerateArgs),
    /// Run a scenario file: a command and its flags written down as TOML.
    Run(run::RunArgs),
    /// Serve the Lambda Invoke API in front of any Lambda runtime: emulate [--listen ADDR] -- COMMAND...
    Emulate(emulate::EmulateArgs),
    /// Load the target on a schedule (open or closed model), with honest latency and every answer
    /// contract-checked.
    Load(Box<load::LoadArgs>),
    /// Merge shard reports exactly, or compare a report with a baseline.
    Report(report_cmd::ReportArgs),
}

impl Cli {
    /// Run the chosen command; the result is the process exit code.
    pub fn run(self) -> Result<i32, CliError> {
        match self.command {
            Command::Check(a) => check::run(*a),
            Command::Replay(a) => replay::run(a),
            Command::Validate(a) => validate::run(a),
            Command::Generate(a) => generate::run(a),
            Command::Run(a) => run::run(a),
            Command::Emulate(a) => emulate::run(a),
            Command::Load(a) => load::run(*a),
            Command::Report(a) => report_cmd::run(a),
        }
    }
}

/// Which batches to generate (shared by `check`, `load` and `generate`).
#[derive(Debug, Clone, Args)]
pub struct GeneratorArgs {
    /// Event source: direct-put, kinesis, msk, a comma list, or all.
    #[arg(long, default_value = "direct-put", value_name = "SOURCE")]
    pub source: String,
    /// Payload families: json, text, cwl, apache, syslog, csv, binary, empty, a comma list, or all.
    #[arg(long, default_value = "all", value_name = "FAMILY")]
    pub payload: String,
    /// Producer compression: none, gzip, zlib, a comma list, or all.
    #[arg(long, default_value = "all", value_name = "KIND")]
    pub compression: String,
    /// Pin Firehose's buffer-size hint (0.2MB..3MB); default: explore the whole range.
    #[arg(long, value_name = "SIZE")]
    pub buffer_size: Option<String>,
    /// Records per batch, MIN..MAX.
    #[arg(long, value_name = "MIN..MAX")]
    pub records: Option<String>,
    /// Bytes per record before compression, MIN..MAX (up to 1,024,000).
    #[arg(long, value_name = "MIN..MAX")]
    pub record_size: Option<String>,
}

fn parse_choice<T: Copy + PartialEq>(
    flag: &str,
    value: &str,
    all: &[T],
    parse: impl Fn(&str) -> Option<T>,
    names: &[&str],
) -> Result<Vec<T>, CliError> {
    let mut out = Vec::new();
    for item in values::parse_list(value) {
        if item == "all" {
            return Ok(all.to_vec());
        }
        let v = parse(&item).ok_or_else(|| {
            CliError::usage(format!(
                "--{flag}: unknown value `{item}`; choose from {}, or all",
                names.join(", ")
            ))
        })?;
        if !out.contains(&v) {
            out.push(v);
        }
    }
    if out.is_empty() {
        return Err(CliError::usage(format!("--{flag} needs a value")));
    }
    Ok(out)
}

impl GeneratorArgs {
    pub fn to_config(&self) -> Result<GenConfig, CliError> {
        let mut cfg = GenConfig {
            sources: parse_choice(
                "source",
                &self.source,
                &Source::ALL,
                Source::parse,
                &Source::ALL.map(Source::name),
            )?,
            families: parse_choice(
                "payload",
                &self.payload,
                &PayloadFamily::ALL,
                PayloadFamily::parse,
                &PayloadFamily::ALL.map(PayloadFamily::name),
            )?,
            compressions: parse_choice(
                "compression",
                &self.compression,
                &Compression::ALL,
                Compression::parse,
                &Compression::ALL.map(Compression::name),
            )?,
            ..GenConfig::default()
        };
        fn flag(name: &'static str) -> impl Fn(String) -> CliError {
            move |e| CliError::usage(format!("--{name}: {e}"))
        }
        if let Some(s) = &self.buffer_size {
            cfg.buffer =
                BufferHint::Fixed(values::parse_size(s).map_err(flag("buffer-size"))? as usize);
        }
        if let Some(s) = &self.records {
            let (lo, hi) = values::parse_range(s, |x| {
                x.trim()
                    .parse::<usize>()
                    .map_err(|_| format!("`{x}` is not a count"))
            })
            .map_err(flag("records"))?;
            if hi == 0 {
                return Err(CliError::usage(
                    "--records: a batch holds at least one record",
                ));
            }
            cfg.records = lo.max(1)..=hi;
        }
        if let Some(s) = &self.record_size {
            let (lo, hi) =
                values::parse_range(s, values::parse_size).map_err(flag("record-size"))?;
            if hi as usize > MAX_RECORD_BYTES {
                return Err(CliError::usage(format!(
                    "--record-size: {hi} bytes is over Firehose's record limit of {MAX_RECORD_BYTES} bytes"
                )));
            }
            cfg.record_size = lo as usize..=hi as usize;
        }
        cfg.validate().map_err(CliError::usage)?;
        Ok(cfg)
    }
}

/// Where to send events (shared by every command that invokes).
#[derive(Debug, Clone, Args)]
pub struct TargetArgs {
    /// builtin:NAME, http(s)://URL, invoke+http://HOST:PORT[/FUNCTION], exec:COMMAND, stdio:COMMAND, image:REF.
    #[arg(long, short = 't', value_name = "TARGET")]
    pub target: String,
    /// Extra request header 'Name: value' (repeatable), e.g. an auth token.
    #[arg(long = "header", short = 'H', value_name = "'K: V'")]
    pub headers: Vec<String>,
    /// Per-invocation timeout (Firehose's hard cap is 5 minutes).
    #[arg(long, default_value = "300s", value_name = "DUR")]
    pub timeout: String,
    /// Environment for exec:/stdio:/image: functions, added or overriding (repeatable).
    #[arg(long = "env", short = 'e', value_name = "K=V")]
    pub env: Vec<String>,
    /// How many instances of an exec:/image: function may run at once (Lambda's concurrency).
    #[arg(long, value_name = "N")]
    pub instances: Option<usize>,
}

impl TargetArgs {
    pub fn parse(&self) -> Result<(TargetSpec, TargetOptions, std::time::Duration), CliError> {
        let spec = TargetSpec::parse(&self.target)
            .map_err(|e| CliError::usage(format!("--target: {e}")))?;
        let mut options = TargetOptions::default();
        for h in &self.headers {
            let (k, v) =
                values::parse_header(h).map_err(|e| CliError::usage(format!("--header: {e}")))?;
            if reqwest::header::HeaderName::from_bytes(k.as_bytes()).is_err() {
                return Err(CliError::usage(format!(
                    "--header: `{k}` is not a valid header name"
                )));
            }
            if reqwest::header::HeaderValue::from_str(&v).is_err() {
                return Err(CliError::usage(format!(
                    "--header: the value of `{k}` is not a valid header value"
                )));
            }
            options.headers.push((k, v));
        }
        for e in &self.env {
            options.env.push(
                values::parse_key_value(e).map_err(|e| CliError::usage(format!("--env: {e}")))?,
            );
        }
        if self.instances == Some(0) {
            return Err(CliError::usage("--instances must be at least 1"));
        }
        options.instances = self.instances;
        let timeout = values::parse_duration(&self.timeout)
            .map_err(|e| CliError::usage(format!("--timeout: {e}")))?;
        if timeout.is_zero() {
            return Err(CliError::usage("--timeout must be more than zero"));
        }
        options.timeout = Some(timeout);
        Ok((spec, options, timeout))
    }
}

/// `--checks` values applied in order to the defaults.
pub fn parse_checks(values: &[String]) -> Result<CheckSet, CliError> {
    let mut set = CheckSet::default();
    for v in values {
        set.apply(v)
            .map_err(|e| CliError::usage(format!("--checks: {e}")))?;
    }
    Ok(set)
}

/// `--report-dir`: created up front, so a bad path fails before any work.
pub fn prepare_report_dir(dir: &Option<PathBuf>) -> Result<(), CliError> {
    if let Some(d) = dir {
        std::fs::create_dir_all(d)
            .map_err(|e| CliError::Io(format!("cannot create report dir {}: {e}", d.display())))?;
    }
    Ok(())
}

/// Write the report files, turning failure into a one-line error.
pub fn write_report(
    report: &firehose_reports::Report,
    dir: &Option<PathBuf>,
) -> Result<(), CliError> {
    if let Some(d) = dir {
        firehose_reports::write_all(report, d).map_err(|e| {
            CliError::Io(format!("cannot write the report to {}: {e}", d.display()))
        })?;
    }
    Ok(())
}

/// A clap error in one line: its first paragraph (which can span lines: "not provided:" and then
/// the missing flags), without clap's `error: ` prefix.
pub fn clap_one_line(e: &clap::Error) -> String {
    let rendered = e.render().to_string();
    let first: Vec<&str> = rendered
        .lines()
        .map(str::trim)
        .skip_while(|l| l.is_empty())
        .take_while(|l| !l.is_empty())
        .collect();
    match first.join(" ") {
        s if s.is_empty() => "invalid arguments".to_string(),
        s => s.trim_start_matches("error: ").to_string(),
    }
}

/// `command` could not run at all (`e`): still leave a failing report with the reason behind, as CI
/// looks for one after every run, and hand the error back for the exit code.
pub fn report_nothing_ran(
    command: &str,
    target: &str,
    e: CliError,
    dir: &Option<PathBuf>,
) -> CliError {
    let mut r = firehose_reports::Report::new(command, target);
    r.exit_code = crate::errors::exit_code(&e);
    r.verdict = firehose_reports::Verdict::Fail;
    r.notes.push(match e.hint() {
        Some(hint) => format!("{e}; {hint}"),
        None => e.to_string(),
    });
    match write_report(&r, dir) {
        Ok(()) => e,
        Err(io) => io,
    }
}

/// A token cancelled on Ctrl-C (SIGINT) or SIGTERM (what CI systems send when a job is cancelled).
///
/// The handlers are registered before this returns, so no signal between "the run started" and "the
/// handler is listening" can kill the process without its report. Call it inside the runtime.
pub fn interrupt_token() -> Result<tokio_util::sync::CancellationToken, CliError> {
    use tokio::signal::unix::{SignalKind, signal};
    let token = tokio_util::sync::CancellationToken::new();
    let register =
        |kind| signal(kind).map_err(|e| CliError::Io(format!("cannot listen for signals: {e}")));
    let mut interrupt = register(SignalKind::interrupt())?;
    let mut terminate = register(SignalKind::terminate())?;
    let cancel = token.clone();
    tokio::spawn(async move {
        tokio::select! {
            _ = interrupt.recv() => {}
            _ = terminate.recv() => {}
        }
        cancel.cancel();
    });
    Ok(token)
}

/// A multi-threaded runtime for one command.
pub fn runtime() -> Result<tokio::runtime::Runtime, CliError> {
    tokio::runtime::Builder::new_multi_thread()
        .enable_all()
        .build()
        .map_err(|e| CliError::Io(format!("cannot start the async runtime: {e}")))
}
