//! Everything that can answer a Firehose event, behind one small trait.
//!
//! | scheme | file | what it does |
//! |---|---|---|
//! | `builtin:NAME` | [`builtin`] | a reference transformer compiled into the binary |
//! | `http://`, `https://` | [`http`] | POST the event, the body is the response |
//! | `invoke+http(s)://HOST:PORT[/FUNCTION]` | [`http`] | a Lambda Invoke-API endpoint (RIE, SAM, `emulate`) |
//! | `lambda:NAME_OR_ARN[:QUALIFIER]` | [`lambda`] | the real Lambda Invoke API, SigV4 signed ([`sigv4`]) |
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
#[cfg(test)]
pub(crate) mod fake;
mod h1;
pub mod http;
pub mod image;
pub mod lambda;
mod retry;
pub mod sigv4;
mod spec;
pub mod stdio;

use std::time::Duration;

use async_trait::async_trait;
use bytes::Bytes;

pub use spec::{AwsOptions, LambdaFunction, TargetOptions, TargetSpec};

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
    /// No region, no credentials, or the credentials could not be refreshed.
    #[error("cannot sign requests to {target}: {reason}")]
    Credentials { target: String, reason: String },
    /// The service in front of the function throttled every call, even after retries.
    #[error(
        "{target} throttled every invocation (429) or failed in the service, even after retries: nothing was judged"
    )]
    Throttled { target: String },
    /// Something answers at that address, but not a transformer: every first call got 404/405 or
    /// an HTML page. Judging those answers would blame the function for a wrong URL.
    #[error("no transformer at {target}: {reason}")]
    WrongEndpoint { target: String, reason: String },
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
            TargetError::Throttled { .. } => {
                "raise the function's reserved or account concurrency, or lower --max-in-flight / the rate"
            }
            TargetError::Credentials { .. } => {
                "set AWS_PROFILE (or --profile; `aws sso login` for SSO) or AWS_ACCESS_KEY_ID and AWS_SECRET_ACCESS_KEY, and --region or AWS_REGION; in CI use OIDC web identity (see the README)"
            }
            TargetError::WrongEndpoint { .. } => {
                "check the URL's path; for a Lambda Invoke API endpoint (RIE, SAM local, `firehose-harness emulate`) use invoke+http://HOST:PORT"
            }
            TargetError::Container { .. } => {
                "is Docker running (docker info), and is the image built or pullable (docker image ls)?"
            }
        }
    }
}

/// Calls that met a throttle (429) or a service error, counted apart from function errors.
#[derive(Debug, Clone, Copy, Default, PartialEq, Eq)]
pub struct ThrottleStats {
    /// Calls made through [`Target::invoke`].
    pub calls: u64,
    /// Throttled or service-failed answers, retried or not.
    pub throttled: u64,
    /// Calls still throttled after every retry: never reached the function, not judged.
    pub gave_up: u64,
}

impl ThrottleStats {
    /// When calls were made and every one was throttled to the end (nothing was judged): the
    /// error that makes the run exit 4.
    pub fn all_throttled(&self, target: &str) -> Option<TargetError> {
        (self.calls > 0 && self.gave_up == self.calls).then(|| TargetError::Throttled {
            target: target.to_string(),
        })
    }

    /// One line for the report's notes; `per_second` over the run's length where there is one.
    pub fn note(&self, run: Option<Duration>) -> Option<String> {
        if self.throttled == 0 {
            return None;
        }
        let rate = match run.map(|d| d.as_secs_f64()).filter(|s| *s > 0.0) {
            Some(secs) => format!(" ({:.2}/s)", self.throttled as f64 / secs),
            None => String::new(),
        };
        Some(format!(
            "throttles: {} throttled or service-error answers{rate}, retried with backoff and not counted as function errors; {} of {} calls were still throttled after their retries",
            self.throttled, self.gave_up, self.calls
        ))
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

    /// Throttles and service errors met so far (targets behind a service: `lambda:`, `invoke+`,
    /// `http(s)://`). Default: none.
    fn throttles(&self) -> ThrottleStats {
        ThrottleStats::default()
    }

    /// Facts about the run the target alone knows (throttles, the Lambda version that ran), for the
    /// report's notes. Default: none.
    fn notes(&self) -> Vec<String> {
        Vec::new()
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
        TargetSpec::Lambda(function) => Ok(Box::new(lambda::build(function, options)?)),
        TargetSpec::Exec(command) => Ok(Box::new(exec::ExecTarget::new(command, options))),
        TargetSpec::Stdio(command) => Ok(Box::new(stdio::StdioTarget::new(command, options))),
        TargetSpec::Image(reference) => Ok(Box::new(image::ImageTarget::new(reference, options)?)),
    }
}
