//! `stdio:COMMAND`: one process per invocation — the event on stdin, the response on stdout, a
//! non-zero exit a function error (with the tail of stderr), stderr kept as the invocation's log.
//!
//! The answer is what the process wrote when it closed its stdout or exited, whichever came first.
//! Every step is bounded by the invocation's deadline: a process that never reads its stdin and
//! neither closes its stdout nor exits is killed with everything it started and reported as a
//! timeout. One that closed its stdout but keeps running is killed after [`LINGER_GRACE`], its
//! answer kept and the kill noted in its log. Under the [`crate::supervisor`] nothing it started
//! survives the invocation, `setsid()` children included.

use std::time::{Duration, Instant};

use async_trait::async_trait;
use bytes::{Bytes, BytesMut};
use tokio::io::{AsyncRead, AsyncReadExt, AsyncWriteExt};
use tokio_util::sync::CancellationToken;

use super::{Target, TargetError, TargetOptions};
use crate::emulator::function::{inherited_env, set};
use crate::emulator::logs::{CappedLog, STDERR_TAIL_BYTES};
use crate::emulator::pool::error_body;
use crate::emulator::{CommandLine, process};
use crate::invocation::{BODY_READ_CAP, FunctionError, Invocation};

pub struct StdioTarget {
    command: CommandLine,
    env: Vec<(String, String)>,
    described: String,
}

impl StdioTarget {
    pub fn new(command: &CommandLine, options: &TargetOptions) -> Self {
        StdioTarget {
            command: command.clone(),
            env: options.env.clone(),
            described: format!("stdio:{}", command.shell_quoted()),
        }
    }

    fn env(&self) -> Vec<(std::ffi::OsString, std::ffi::OsString)> {
        let mut env = inherited_env(std::env::vars_os());
        for (k, v) in &self.env {
            set(&mut env, k.into(), v.into());
        }
        env
    }

    fn start_error(&self, reason: String) -> TargetError {
        TargetError::Start {
            target: self.described.clone(),
            reason,
        }
    }
}

/// How long a process that closed its stdout may take to exit before it is killed: its answer is
/// in, and a process that lingers (a background thread, a child still holding stderr) must not turn
/// that answer into a timeout.
pub const LINGER_GRACE: Duration = Duration::from_millis(500);

/// Hand each chunk of `r` to `take` until its end (or a read error) or `stop`, whichever comes
/// first: the one reading loop of stdout and stderr, so a lingering process cannot hold either.
async fn read_until(
    mut r: impl AsyncRead + Unpin,
    stop: CancellationToken,
    chunk: usize,
    mut take: impl FnMut(&[u8]),
) {
    let mut buf = vec![0u8; chunk];
    loop {
        let n = tokio::select! {
            biased;
            read = r.read(&mut buf) => match read {
                Ok(0) | Err(_) => break,
                Ok(n) => n,
            },
            () = stop.cancelled() => break,
        };
        take(&buf[..n]);
    }
}

/// Read `r` to its end, or until `stop`, keeping at most `cap` bytes (the rest is read and
/// counted, so the writer never blocks on a full pipe).
async fn read_capped(
    r: impl AsyncRead + Unpin,
    cap: usize,
    stop: CancellationToken,
) -> (Bytes, bool) {
    let mut kept = BytesMut::new();
    let mut truncated = false;
    read_until(r, stop, 64 * 1024, |bytes| {
        let room = cap.saturating_sub(kept.len());
        truncated |= bytes.len() > room;
        kept.extend_from_slice(&bytes[..bytes.len().min(room)]);
    })
    .await;
    (kept.freeze(), truncated)
}

/// The log and its tail, read until the end of `r` or `stop`.
async fn read_log(r: impl AsyncRead + Unpin, stop: CancellationToken) -> (CappedLog, CappedLog) {
    let mut log = CappedLog::default();
    let mut tail = CappedLog::new(0, STDERR_TAIL_BYTES);
    read_until(r, stop, 16 * 1024, |bytes| {
        log.push(bytes);
        tail.push(bytes);
    })
    .await;
    (log, tail)
}

/// Kills the process (and, supervised, everything it started) if the invocation is dropped midway.
struct KillOnDrop(u32);

impl Drop for KillOnDrop {
    fn drop(&mut self) {
        process::kill_group(self.0);
    }
}

/// What ended the wait for an answer.
enum Ended {
    /// Stdout closed: the answer is in; the process may still be running.
    Closed((Bytes, bool)),
    Exited(std::io::Result<std::process::ExitStatus>),
}

#[async_trait]
impl Target for StdioTarget {
    fn describe(&self) -> String {
        self.described.clone()
    }

    /// A missing or non-executable program is reported before any case runs (exit 4), without
    /// running it: the command may have side effects.
    async fn start(&self) -> Result<(), TargetError> {
        process::resolve(self.command.program())
            .map(|_| ())
            .map_err(|e| self.start_error(e))
    }

    async fn invoke(&self, event: Bytes, timeout: Duration) -> Result<Invocation, TargetError> {
        let start = Instant::now();
        let mut cmd = process::command(
            self.command.argv(),
            self.env(),
            None,
            std::process::Stdio::piped(),
        );
        let mut child = cmd
            .spawn()
            .map_err(|e| self.start_error(process::spawn_error(self.command.program(), &e)))?;
        let pid = child.id().unwrap_or(0);
        let (Some(mut stdin), Some(stdout), Some(stderr)) =
            (child.stdin.take(), child.stdout.take(), child.stderr.take())
        else {
            process::kill_group(pid);
            return Err(self.start_error("its standard streams could not be opened".into()));
        };
        let _guard = KillOnDrop(pid);
        let deadline = tokio::time::Instant::now() + timeout;
        // A process that exits without reading its input is its own business, not an error.
        let feed = tokio::spawn(async move {
            let _ = stdin.write_all(&event).await;
            let _ = stdin.shutdown().await;
        });
        let stop = CancellationToken::new();
        let mut out = tokio::spawn(read_capped(stdout, BODY_READ_CAP, stop.clone()));
        let mut err = tokio::spawn(read_log(stderr, stop.clone()));
        // The answer is what the process wrote when it closed stdout or exited, whichever came first.
        let first = tokio::time::timeout_at(deadline, async {
            tokio::select! {
                body = &mut out => Ended::Closed(body.unwrap_or_default()),
                status = child.wait() => Ended::Exited(status),
            }
        })
        .await;
        let mut lingered = false;
        let (body, truncated, status) = match first {
            Err(_) => {
                process::kill_group(pid);
                stop.cancel();
                feed.abort();
                let mut inv = Invocation::timed_out(start.elapsed());
                inv.body = error_body(
                    "Sandbox.Timedout",
                    &format!("Task timed out after {:.2} seconds", timeout.as_secs_f64()),
                );
                inv.logs = Some(format!(
                    "Task timed out after {:.2} seconds; the process group was killed\n",
                    timeout.as_secs_f64()
                ));
                return Ok(inv);
            }
            Ok(Ended::Closed((body, truncated))) => {
                let status = match tokio::time::timeout(LINGER_GRACE, child.wait()).await {
                    Ok(status) => status,
                    Err(_) => {
                        lingered = true;
                        process::kill_group(pid);
                        child.wait().await
                    }
                };
                (body, truncated, status)
            }
            Ok(Ended::Exited(status)) => {
                // Whatever it forked goes with it, so its pipes close; what is still in them is read.
                process::kill_group(pid);
                let drained = tokio::time::timeout(LINGER_GRACE, &mut out).await;
                stop.cancel();
                let (body, truncated) = match drained {
                    Ok(read) => read.unwrap_or_default(),
                    Err(_) => out.await.unwrap_or_default(),
                };
                (body, truncated, status)
            }
        };
        process::kill_group(pid);
        feed.abort();
        let (log, tail) = match tokio::time::timeout(LINGER_GRACE, &mut err).await {
            Ok(read) => read.unwrap_or_default(),
            Err(_) => {
                stop.cancel();
                err.await.unwrap_or_default()
            }
        };
        let mut inv = Invocation::answered(None, body, start.elapsed());
        inv.body_truncated = truncated;
        let mut logs = if log.is_empty() {
            String::new()
        } else {
            log.render()
        };
        if lingered {
            logs.push_str(&format!(
                "firehose-harness: the process closed its stdout but was still running {} ms later; its answer stands and it was killed\n",
                LINGER_GRACE.as_millis()
            ));
        }
        if !logs.is_empty() {
            inv.logs = Some(logs);
        }
        let exit = match status {
            _ if lingered => None,
            Ok(s) if s.success() => None,
            Ok(s) => Some(process::describe_exit(s)),
            Err(e) => Some(format!("an unknown status ({e})")),
        };
        if let Some(exit) = exit {
            let tail = tail.render();
            let tail = tail.trim_end();
            inv.function_error = Some(FunctionError {
                kind: "Runtime.ExitError".into(),
                message: Some(if tail.is_empty() {
                    format!("the process ended with {exit}")
                } else {
                    format!("the process ended with {exit}; stderr (last lines):\n{tail}")
                }),
            });
        }
        Ok(inv)
    }

    fn reproduce_script(&self) -> Option<String> {
        Some(format!(
            "#!/bin/sh\n# Feeds this case's event.json to {target} exactly as firehose-harness did; the response is on stdout.\n# Run it from the directory the check ran in: the command is relative to it.\nset -eu\ncase_dir=$(cd \"$(dirname \"$0\")\" && pwd)\n{command} < \"$case_dir/event.json\"\n",
            target = self.described,
            command = self.command.shell_quoted(),
        ))
    }
}
