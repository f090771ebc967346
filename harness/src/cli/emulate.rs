//! `firehose-harness emulate [--listen ADDR] [--instances N] [--throttle] -- COMMAND...`: the Lambda Invoke API
//! in front of any Lambda runtime, for clients that speak it (the harness's own `invoke+http://`
//! target, SDKs, curl) and as a container image's entrypoint (`--listen 0.0.0.0:8080`).
//!
//! The function starts before the socket opens, so a bad command or an init error ends the command
//! at once (exit 4). SIGINT and SIGTERM stop it cleanly: no new connections, the function processes
//! killed (invocations in flight are answered as failures), exit 130 and 0 respectively.

use std::net::SocketAddr;
use std::sync::Arc;
use std::time::Duration;

use axum::serve::ListenerExt;
use clap::Args;
use tokio::signal::unix::{SignalKind, signal};
use tokio_util::sync::CancellationToken;

use crate::emulator::{CommandLine, Emulator, EmulatorConfig, Front, FunctionSpec, invoke_api};
use crate::errors::CliError;
use crate::{exit_codes, values};

#[derive(Debug, Clone, Args)]
pub struct EmulateArgs {
    /// Address to serve on; a container entrypoint passes 0.0.0.0:8080.
    #[arg(long, default_value = "127.0.0.1:8080", value_name = "ADDR")]
    pub listen: String,
    /// How many instances of the function may run at once; further invocations queue.
    #[arg(long, default_value_t = 1, value_name = "N")]
    pub instances: usize,
    /// Per-invocation timeout (the function's configured timeout in Lambda); default: the
    /// container layout's AWS_LAMBDA_FUNCTION_TIMEOUT (whole seconds) when set, else 300s.
    #[arg(long, value_name = "DUR")]
    pub timeout: Option<String>,
    /// Environment for the function, added or overriding (repeatable).
    #[arg(long = "env", short = 'e', value_name = "K=V")]
    pub env: Vec<String>,
    /// Do not print the function's logs (START … REPORT) on stderr.
    #[arg(long)]
    pub quiet: bool,
    #[command(flatten)]
    pub pool: super::PoolArgs,
    /// The function's command line, after `--` (e.g. `-- python3 -m awslambdaric app.handler`).
    #[arg(last = true, required = true, value_name = "COMMAND")]
    pub command: Vec<String>,
}

/// The variable a Lambda container image reads its timeout from (seconds), as RIE does.
const FUNCTION_TIMEOUT_VAR: &str = "AWS_LAMBDA_FUNCTION_TIMEOUT";

struct Plan {
    listen: SocketAddr,
    spec: FunctionSpec,
    config: EmulatorConfig,
    timeout: Duration,
}

impl EmulateArgs {
    fn plan(&self) -> Result<Plan, CliError> {
        let listen: SocketAddr = self.listen.parse().map_err(|_| {
            CliError::usage(format!(
                "--listen: `{}` is not an address like 127.0.0.1:8080",
                self.listen
            ))
        })?;
        if self.instances == 0 {
            return Err(CliError::usage("--instances must be at least 1"));
        }
        let timeout = match (&self.timeout, std::env::var(FUNCTION_TIMEOUT_VAR)) {
            (Some(t), _) => {
                values::parse_duration(t).map_err(|e| CliError::usage(format!("--timeout: {e}")))?
            }
            // As a container entrypoint, the timeout comes the way Lambda's images get it.
            (None, Ok(secs)) => Duration::from_secs(secs.trim().parse().map_err(|_| {
                CliError::usage(format!(
                    "{FUNCTION_TIMEOUT_VAR}: `{secs}` is not a whole number of seconds"
                ))
            })?),
            (None, Err(_)) => Duration::from_secs(300),
        };
        if timeout.is_zero() {
            return Err(CliError::usage("--timeout must be more than zero"));
        }
        let command = CommandLine::from_argv(self.command.clone())
            .map_err(|e| CliError::usage(format!("COMMAND: {e}")))?;
        let mut spec = FunctionSpec::new(command);
        for e in &self.env {
            spec.env.push(
                values::parse_key_value(e).map_err(|e| CliError::usage(format!("--env: {e}")))?,
            );
        }
        let pool = self.pool.parse()?;
        let config = EmulatorConfig {
            instances: self.instances,
            init_limit: pool.init_limit,
            queue: pool.queue,
        };
        Ok(Plan {
            listen,
            spec,
            config,
            timeout,
        })
    }
}

pub fn run(args: EmulateArgs) -> Result<i32, CliError> {
    let plan = args.plan()?;
    let rt = super::runtime()?;
    rt.block_on(serve(plan, args.quiet))
}

/// Wait for SIGINT (exit 130) or SIGTERM (exit 0, how `docker stop` ends a container).
/// The handlers are installed when this is called, not when the future first runs, so a signal
/// that arrives before the task is scheduled is not lost to the default action.
fn stopped() -> impl std::future::Future<Output = i32> {
    let handlers = (
        signal(SignalKind::interrupt()),
        signal(SignalKind::terminate()),
    );
    async move {
        let (Ok(mut int), Ok(mut term)) = handlers else {
            return std::future::pending().await;
        };
        tokio::select! {
            _ = int.recv() => exit_codes::INTERRUPTED,
            _ = term.recv() => exit_codes::OK,
        }
    }
}

async fn serve(plan: Plan, quiet: bool) -> Result<i32, CliError> {
    // Handlers first: a signal during the function's start must still kill it.
    let mut stop = tokio::spawn(stopped());
    let command = plan.spec.command.shell_quoted();
    let instances = plan.config.instances;
    let queue = plan.config.queue;
    let emulator = Arc::new(Emulator::new(plan.spec, plan.config));
    let warmed = tokio::select! {
        w = emulator.warm() => w,
        // Ctrl-C while the function starts: stop now, not at the end of the init timeout.
        code = &mut stop => {
            emulator.shutdown().await;
            return Ok(code.unwrap_or(exit_codes::INTERRUPTED));
        }
    };
    if let Err(e) = warmed {
        emulator.shutdown().await;
        return Err(CliError::Unavailable {
            message: format!("cannot start `{command}`: {e}"),
            hint: e.hint().to_string(),
        });
    }
    let listener = match tokio::net::TcpListener::bind(plan.listen).await {
        Ok(l) => l,
        Err(e) => {
            emulator.shutdown().await;
            return Err(CliError::usage(format!(
                "--listen: cannot listen on {}: {e}",
                plan.listen
            )));
        }
    };
    let local = listener.local_addr().unwrap_or(plan.listen);
    let (log_tx, mut log_rx) = tokio::sync::mpsc::channel::<String>(256);
    let mut front = Front::new(emulator.clone(), plan.timeout);
    if !quiet {
        front = front.with_logs(log_tx);
        tokio::spawn(async move {
            while let Some(log) = log_rx.recv().await {
                crate::terminal::err_raw(&log);
            }
        });
    }
    let beyond = match (queue.throttle, queue.max_queue) {
        (true, _) => "429 beyond".to_string(),
        (false, Some(n)) => format!("up to {n} queued beyond, then 429"),
        (false, None) => "queued beyond".to_string(),
    };
    crate::terminal::out(format_args!(
        "firehose-harness emulate: listening on http://{local} — POST /2015-03-31/functions/function/invocations; `{command}`, up to {instances} instance{} ({beyond}), timeout {}",
        if instances == 1 { "" } else { "s" },
        values::format_duration(plan.timeout)
    ));
    let closing = CancellationToken::new();
    let app = invoke_api::router(Arc::new(front));
    let listener = listener.tap_io(|tcp| {
        let _ = tcp.set_nodelay(true);
    });
    let server = tokio::spawn(
        axum::serve(listener, app)
            .with_graceful_shutdown(closing.clone().cancelled_owned())
            .into_future(),
    );
    let code = (&mut stop).await.unwrap_or(exit_codes::INTERRUPTED);
    closing.cancel();
    // Killing the functions ends every invocation in flight, so the server drains quickly.
    emulator.shutdown().await;
    let _ = tokio::time::timeout(Duration::from_secs(5), server).await;
    let stats = emulator.stats();
    crate::terminal::err(format_args!(
        "firehose-harness emulate: stopped; {} cold start{}, {} crash{}, {} timeout{}, {} throttle{}",
        stats.cold_starts,
        if stats.cold_starts == 1 { "" } else { "s" },
        stats.crashes,
        if stats.crashes == 1 { "" } else { "es" },
        stats.timeouts,
        if stats.timeouts == 1 { "" } else { "s" },
        stats.throttles,
        if stats.throttles == 1 { "" } else { "s" },
    ));
    Ok(code)
}
