//! `stdio:COMMAND`: one process per invocation — the event on stdin, the response on stdout, a
//! non-zero exit a function error (with the tail of stderr), stderr kept as the invocation's log.
//!
//! Every step is bounded by the invocation's deadline: a process that never reads its stdin, never
//! closes its stdout or never exits is killed with its whole process group and reported as a
//! timeout.

use std::time::{Duration, Instant};

use async_trait::async_trait;
use bytes::{Bytes, BytesMut};
use tokio::io::{AsyncRead, AsyncReadExt, AsyncWriteExt};

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

/// Read `r` to its end, keeping at most `cap` bytes (the rest is read and counted, so the writer
/// never blocks on a full pipe).
async fn read_capped(mut r: impl AsyncRead + Unpin, cap: usize) -> (Bytes, bool) {
    let mut kept = BytesMut::new();
    let mut truncated = false;
    let mut buf = vec![0u8; 64 * 1024];
    loop {
        match r.read(&mut buf).await {
            Ok(0) | Err(_) => break,
            Ok(n) => {
                let room = cap.saturating_sub(kept.len());
                truncated |= n > room;
                kept.extend_from_slice(&buf[..n.min(room)]);
            }
        }
    }
    (kept.freeze(), truncated)
}

async fn read_log(mut r: impl AsyncRead + Unpin) -> (CappedLog, CappedLog) {
    let mut log = CappedLog::default();
    let mut tail = CappedLog::new(0, STDERR_TAIL_BYTES);
    let mut buf = vec![0u8; 16 * 1024];
    loop {
        match r.read(&mut buf).await {
            Ok(0) | Err(_) => break,
            Ok(n) => {
                log.push(&buf[..n]);
                tail.push(&buf[..n]);
            }
        }
    }
    (log, tail)
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
        let feed = async move {
            // A process that exits without reading its input is its own business, not an error.
            let _ = stdin.write_all(&event).await;
            let _ = stdin.shutdown().await;
        };
        let run = async {
            let exited = async {
                let status = child.wait().await;
                // Whatever it forked goes with it, so its pipes close and the reads end.
                process::kill_group(pid);
                status
            };
            let ((), (body, truncated), (log, tail), status) = tokio::join!(
                feed,
                read_capped(stdout, BODY_READ_CAP),
                read_log(stderr),
                exited
            );
            (body, truncated, log, tail, status)
        };
        let finished = tokio::time::timeout(timeout, run).await;
        process::kill_group(pid);
        let Ok((body, truncated, log, tail, status)) = finished else {
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
        };
        let mut inv = Invocation::answered(None, body, start.elapsed());
        inv.body_truncated = truncated;
        if !log.is_empty() {
            inv.logs = Some(log.render());
        }
        let exit = match status {
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
