//! `exec:COMMAND`: the user's unmodified Lambda function (a `bootstrap` binary, `python -m
//! awslambdaric app.handler`, …) run against the embedded Runtime API emulator, as Lambda runs it.
//!
//! `start` launches one instance and waits for it to ask for an event, so a missing binary or an
//! init error ends the run at once (exit 4) with the function's own message; after that, instances
//! start on demand up to `--instances`, and each invocation carries its logs (START … REPORT).
//! Invocations beyond `--instances` queue (their wait is the invocation's `queue_wait`, never part
//! of `--timeout`) or, with `--throttle`/`--max-queue`, come back `throttled` (429).

use std::time::Duration;

use async_trait::async_trait;
use bytes::Bytes;

use super::{Target, TargetError, TargetOptions};
use crate::emulator::{
    CommandLine, Emulator, EmulatorConfig, EmulatorError, FunctionSpec, PoolStats,
};
use crate::invocation::Invocation;

pub struct ExecTarget {
    emulator: Emulator,
    described: String,
}

impl ExecTarget {
    /// `command` as written after `exec:`; `options.instances` defaults to 1.
    pub fn new(command: &CommandLine, options: &TargetOptions) -> Self {
        let mut spec = FunctionSpec::new(command.clone());
        spec.env = options.env.clone();
        let config = EmulatorConfig {
            instances: options.instances.unwrap_or(1),
            init_limit: options.pool.init_limit,
            queue: options.pool.queue,
        };
        ExecTarget {
            emulator: Emulator::new(spec, config),
            described: format!("exec:{}", command.shell_quoted()),
        }
    }

    fn error(&self, e: EmulatorError) -> TargetError {
        let (target, reason) = (self.described.clone(), e.to_string());
        match e {
            EmulatorError::InitFailed { .. } | EmulatorError::InitExited { .. } => {
                TargetError::Init { target, reason }
            }
            _ => TargetError::Start { target, reason },
        }
    }
}

#[async_trait]
impl Target for ExecTarget {
    fn describe(&self) -> String {
        self.described.clone()
    }

    async fn start(&self) -> Result<(), TargetError> {
        self.emulator.warm().await.map_err(|e| self.error(e))
    }

    async fn invoke(&self, event: Bytes, timeout: Duration) -> Result<Invocation, TargetError> {
        self.emulator
            .invoke(event, timeout)
            .await
            .map_err(|e| self.error(e))
    }

    fn reproduce_script(&self) -> Option<String> {
        Some(format!(
            "#!/bin/sh\n# Runs the function exactly as firehose-harness did ({target}) and sends it this case's event.json.\n# Run it from the directory the check ran in: the command is relative to it.\nset -eu\ncase_dir=$(cd \"$(dirname \"$0\")\" && pwd)\nexec firehose-harness replay \"$case_dir\" --target {quoted}\n",
            target = self.described,
            quoted = super::http::shell_quote(&self.described),
        ))
    }

    fn pool_stats(&self) -> Option<PoolStats> {
        Some(self.emulator.stats())
    }

    async fn shutdown(&self) {
        self.emulator.shutdown().await;
    }
}
