//! The command line: clap types, and their conversion into checked engine plans.
//!
//! Engine code never sees clap: each subcommand's `run` turns raw flags into a plan (errors are
//! [`CliError::Usage`], exit 2), builds the target, and calls the engine with the terminal reporter.

mod check;
mod completions;
mod delivery;
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
    Replay(Box<replay::ReplayArgs>),
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
    /// Print a shell completion script: completions bash > /etc/bash_completion.d/firehose-harness
    Completions(completions::CompletionsArgs),
    /// Print the man page (or write one per command with --out-dir).
    Man(completions::ManArgs),
    /// Internal: run a function under a supervisor (see `firehose_harness::supervisor`).
    #[command(name = "__spawn", hide = true)]
    Spawn(SpawnArgs),
}

/// `__spawn --parent PID -- COMMAND...`: what the harness re-executes itself as for each function.
#[derive(Debug, Args)]
pub struct SpawnArgs {
    /// The harness's pid, to notice that it died before the supervisor could watch for it.
    #[arg(long)]
    pub parent: u32,
    /// The function's command line, exactly as given to `exec:` or `stdio:`.
    #[arg(last = true, required = true, value_parser = clap::value_parser!(std::ffi::OsString))]
    pub command: Vec<std::ffi::OsString>,
}

impl Cli {
    /// Run the chosen command; the result is the process exit code.
    pub fn run(self) -> Result<i32, CliError> {
        match self.command {
            Command::Check(a) => check::run(*a),
            Command::Replay(a) => replay::run(*a),
            Command::Validate(a) => validate::run(a),
            Command::Generate(a) => generate::run(a),
            Command::Run(a) => run::run(a),
            Command::Emulate(a) => emulate::run(a),
            Command::Load(a) => load::run(*a),
            Command::Report(a) => report_cmd::run(a),
            Command::Completions(a) => completions::completions(a),
            Command::Man(a) => completions::man(a),
            Command::Spawn(a) => Ok(crate::supervisor::run(a.parent, &a.command)),
        }
    }
}

/// Which batches to generate (shared by `check`, `load` and `generate`).
#[derive(Debug, Clone, Args)]
pub struct GeneratorArgs {
    /// Event source: direct-put, kinesis, msk, a comma list, or all.
    #[arg(long, default_value = "direct-put", value_name = "SOURCE")]
    pub source: String,
    /// Payload families: json, text, cwl, cwl-decompressed, cwl-extracted, apache, syslog, csv,
    /// binary, empty, a comma list, or all (every family the other flags allow).
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
        if values::parse_list(&self.payload).iter().any(|p| p == "all") {
            // `all` means every family the other flags allow (no gzip'd CloudWatch Logs under
            // `--compression none`); a family named outright and ruled out is an error below.
            cfg.keep_possible_families();
        }
        cfg.validate().map_err(CliError::usage)?;
        Ok(cfg)
    }
}

/// Where to send events (shared by every command that invokes).
#[derive(Debug, Clone, Args)]
pub struct TargetArgs {
    /// builtin:NAME, http(s)://URL, invoke+http(s)://HOST:PORT[/FUNCTION], lambda:NAME[:QUALIFIER],
    /// exec:COMMAND, stdio:COMMAND, image:REF.
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
    /// AWS region for lambda: and --sigv4 (default: the function ARN's, AWS_REGION, the profile's).
    #[arg(long, value_name = "REGION")]
    pub region: Option<String>,
    /// Named profile from the AWS config files for lambda: and --sigv4 (default: AWS_PROFILE).
    #[arg(long, value_name = "NAME")]
    pub profile: Option<String>,
    /// Lambda API endpoint for lambda: (LocalStack, tests); default: AWS_ENDPOINT_URL_LAMBDA, AWS.
    #[arg(long, value_name = "URL")]
    pub endpoint_url: Option<String>,
    /// lambda: ask for the last 4 KB of each invocation's log and keep it in failing cases.
    #[arg(long)]
    pub log_tail: bool,
    /// Sign http(s):// requests with SigV4 for SERVICE: `lambda` (Function URLs), `execute-api`.
    #[arg(long, value_name = "SERVICE")]
    pub sigv4: Option<String>,
    /// Trust the PEM certificate(s) in FILE for https:// and invoke+https:// (self-signed, private CA).
    #[arg(long, value_name = "FILE")]
    pub ca_cert: Option<PathBuf>,
    #[command(flatten)]
    pub pool: PoolArgs,
}

/// How an exec:/emulate function's instances start and queue (shared by `emulate`).
#[derive(Debug, Clone, Args)]
pub struct PoolArgs {
    /// How long a starting function instance (exec:, emulate) may take to initialise (Lambda's init limit), apart from --timeout.
    #[arg(long, default_value = "10s", value_name = "DUR")]
    pub init_timeout: String,
    /// At most N invocations wait for a busy function (exec:, emulate); more are throttled (429). Default: no bound.
    #[arg(long, value_name = "N")]
    pub max_queue: Option<usize>,
    /// Refuse invocations beyond --instances at once with 429 TooManyRequestsException, as Lambda does, instead of queueing.
    #[arg(long)]
    pub throttle: bool,
}

impl PoolArgs {
    pub fn parse(&self) -> Result<crate::emulator::PoolOptions, CliError> {
        let init_limit = values::parse_duration(&self.init_timeout)
            .map_err(|e| CliError::usage(format!("--init-timeout: {e}")))?;
        if init_limit.is_zero() {
            return Err(CliError::usage("--init-timeout must be more than zero"));
        }
        Ok(crate::emulator::PoolOptions {
            init_limit,
            queue: crate::emulator::QueuePolicy {
                throttle: self.throttle,
                max_queue: self.max_queue,
            },
        })
    }
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
        options.aws = self.aws_options(&spec)?;
        options.pool = self.pool.parse()?;
        let timeout = values::parse_duration(&self.timeout)
            .map_err(|e| CliError::usage(format!("--timeout: {e}")))?;
        if timeout.is_zero() {
            return Err(CliError::usage("--timeout must be more than zero"));
        }
        options.timeout = Some(timeout);
        Ok((spec, options, timeout))
    }
}

impl TargetArgs {
    /// The AWS and TLS flags, checked against the target they apply to.
    fn aws_options(&self, spec: &TargetSpec) -> Result<crate::targets::AwsOptions, CliError> {
        let is_lambda = matches!(spec, TargetSpec::Lambda(_));
        let is_http = matches!(spec, TargetSpec::Http(_));
        let networked = is_lambda || is_http || matches!(spec, TargetSpec::InvokeHttp { .. });
        let misplaced = |flag: &str, wants: &str| {
            CliError::usage(format!("{flag} applies to {wants} targets only"))
        };
        if self.log_tail && !is_lambda {
            return Err(misplaced("--log-tail", "lambda:"));
        }
        if self.endpoint_url.is_some() && !is_lambda {
            return Err(misplaced("--endpoint-url", "lambda:"));
        }
        if self.sigv4.is_some() && !is_http {
            return Err(misplaced(
                "--sigv4",
                "http(s):// (lambda: is always signed)",
            ));
        }
        if (self.region.is_some() || self.profile.is_some()) && !(is_lambda || self.sigv4.is_some())
        {
            return Err(misplaced("--region and --profile", "lambda: and --sigv4"));
        }
        if self.ca_cert.is_some() && !networked {
            return Err(misplaced(
                "--ca-cert",
                "https://, invoke+https:// and lambda:",
            ));
        }
        if let Some(service) = &self.sigv4
            && (service.is_empty()
                || !service
                    .chars()
                    .all(|c| c.is_ascii_alphanumeric() || c == '-'))
        {
            return Err(CliError::usage(format!(
                "--sigv4: `{service}` is not a service name; use lambda (Function URLs) or execute-api (API Gateway)"
            )));
        }
        if let Some(url) = &self.endpoint_url {
            let parsed = reqwest::Url::parse(url).map_err(|e| {
                CliError::usage(format!("--endpoint-url: `{url}` is not a URL: {e}"))
            })?;
            if !matches!(parsed.scheme(), "http" | "https") {
                return Err(CliError::usage(format!(
                    "--endpoint-url: `{url}` is not an http(s) URL"
                )));
            }
        }
        if let Some(path) = &self.ca_cert {
            crate::targets::http::read_ca_certs(path).map_err(CliError::usage)?;
        }
        Ok(crate::targets::AwsOptions {
            region: self.region.clone(),
            profile: self.profile.clone(),
            endpoint_url: self.endpoint_url.clone(),
            log_tail: self.log_tail,
            sigv4: self.sigv4.clone(),
            ca_cert: self.ca_cert.clone(),
        })
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
        std::fs::create_dir_all(d).map_err(|e| {
            CliError::Report(format!("cannot create report dir {}: {e}", d.display()))
        })?;
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
            CliError::Report(format!("cannot write the report to {}: {e}", d.display()))
        })?;
    }
    append_step_summary(report)
}

/// In GitHub Actions, append summary.md to `$GITHUB_STEP_SUMMARY`, so the run's verdict shows on
/// the job's page without an upload step.
fn append_step_summary(report: &firehose_reports::Report) -> Result<(), CliError> {
    let Some(path) = std::env::var_os("GITHUB_STEP_SUMMARY").filter(|p| !p.is_empty()) else {
        return Ok(());
    };
    let mut md = Vec::new();
    firehose_reports::markdown::write(report, &mut md)
        .map_err(|e| CliError::Report(format!("cannot render summary.md: {e}")))?;
    use std::io::Write as _;
    std::fs::OpenOptions::new()
        .create(true)
        .append(true)
        .open(&path)
        .and_then(|mut f| f.write_all(&md))
        .map_err(|e| {
            CliError::Report(format!(
                "cannot append to $GITHUB_STEP_SUMMARY ({}): {e}",
                std::path::Path::new(&path).display()
            ))
        })
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
        |kind| signal(kind).map_err(|e| CliError::Setup(format!("cannot listen for signals: {e}")));
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
        .map_err(|e| CliError::Setup(format!("cannot start the async runtime: {e}")))
}
