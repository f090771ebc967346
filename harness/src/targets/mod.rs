//! Everything that can answer a Firehose event, behind one small trait.
//!
//! | scheme | file | what it does |
//! |---|---|---|
//! | `builtin:NAME` | [`builtin`] | a reference transformer compiled into the binary |
//! | `http://`, `https://` | [`http`] | POST the event, the body is the response |
//! | `invoke+http://HOST:PORT[/FUNCTION]` | [`http`] | a Lambda Invoke-API endpoint (RIE, SAM, `emulate`) |
//! | `exec:COMMAND` | [`exec`] | the unmodified Lambda function against the embedded Runtime API |
//! | `stdio:COMMAND` | [`stdio`] | one process per invocation: event on stdin, response on stdout |
//! | `image:REF` | [`image`] | a Lambda container image (port 8080) per instance, started with testcontainers |
//!
//! A target says *what happened* ([`Invocation`]); judging it is the contract's job. An `Err` from
//! [`Target::invoke`] means the target could not be reached at all (nothing to judge, exit code 4);
//! everything after the request left — timeouts, resets, garbage — is an `Ok(Invocation)`.

pub mod builtin;
pub mod containers;
pub mod exec;
mod h1;
pub mod http;
pub mod image;
mod spec;
pub mod stdio;

use std::time::Duration;

use async_trait::async_trait;
use bytes::Bytes;

pub use spec::{TargetOptions, TargetSpec};

pub use crate::emulator::PoolStats;
use crate::invocation::Invocation;

/// Why a target could not be used at all.
#[derive(Debug, thiserror::Error)]
pub enum TargetError {
    #[error("cannot reach {target}: {reason}")]
    Unreachable { target: String, reason: String },
    #[error("cannot start {target}: {reason}")]
    Start { target: String, reason: String },
    /// The function started but failed to initialise (its own error, e.g. a missing setting).
    #[error("cannot start {target}: {reason}")]
    Init { target: String, reason: String },
    /// Docker could not run the image's container (no engine, no such image, no answer).
    #[error("cannot run {target}: {reason}")]
    Container { target: String, reason: String },
}

impl TargetError {
    /// What the user can do about it.
    pub fn hint(&self) -> &'static str {
        match self {
            TargetError::Unreachable { .. } => {
                "is the transformer running and listening on that address?"
            }
            TargetError::Start { .. } => {
                "check the command, its working directory and its permissions"
            }
            TargetError::Init { .. } => {
                "run the command by hand to see the whole error; --env K=V passes configuration"
            }
            TargetError::Container { .. } => {
                "is Docker running (docker info), and is the image built or pullable (docker image ls)?"
            }
        }
    }
}

/// A transformer under test.
#[async_trait]
pub trait Target: Send + Sync {
    /// How reports name the target (`http://127.0.0.1:8080/`, `builtin:ndjson`).
    fn describe(&self) -> String;

    /// Called once before the first invocation: start processes, open pools. Default: nothing.
    async fn start(&self) -> Result<(), TargetError> {
        Ok(())
    }

    /// Send one event (the exact bytes) and wait for the answer, at most `timeout`.
    async fn invoke(&self, event: Bytes, timeout: Duration) -> Result<Invocation, TargetError>;

    /// A POSIX shell script that sends `event.json` from its own folder to this target the same way;
    /// `None` where no shell command can (in-process targets).
    fn reproduce_script(&self) -> Option<String> {
        None
    }

    /// The instances behind the target (cold starts, init durations, crashes), where it runs its
    /// own (`exec:`). Default: none.
    fn pool_stats(&self) -> Option<PoolStats> {
        None
    }

    /// Stop whatever `start` started. Default: nothing.
    async fn shutdown(&self) {}
}

/// Build the target a `--target` string names.
pub fn build(spec: &TargetSpec, options: &TargetOptions) -> Result<Box<dyn Target>, TargetError> {
    match spec {
        TargetSpec::Builtin(kind) => Ok(Box::new(builtin::BuiltinTarget::new(*kind))),
        TargetSpec::Http(url) => Ok(Box::new(http::HttpTarget::plain(url.clone(), options)?)),
        TargetSpec::InvokeHttp { base, function } => Ok(Box::new(http::HttpTarget::invoke_api(
            base.clone(),
            function,
            options,
        )?)),
        TargetSpec::Exec(command) => Ok(Box::new(exec::ExecTarget::new(command, options))),
        TargetSpec::Stdio(command) => Ok(Box::new(stdio::StdioTarget::new(command, options))),
        TargetSpec::Image(reference) => Ok(Box::new(image::ImageTarget::new(reference, options)?)),
    }
}
