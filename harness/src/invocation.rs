//! What one call of a transformer produced, whatever kind of target it was.
//!
//! Targets fill it in; the contract judges it; the load engine times it. It carries the body exactly as
//! received (capped, see [`BODY_READ_CAP`]) so a failing case can be saved byte for byte.

use std::time::Duration;

use bytes::Bytes;

/// The most of a response body any target reads. Twice Lambda's limit: enough to measure by how much a
/// response is too large, and a hostile 100 MB body cannot exhaust memory.
pub const BODY_READ_CAP: usize = 2 * firehose_generators::wire::MAX_RESPONSE_BYTES;

/// How the call ended.
#[derive(Debug, Clone, PartialEq, Eq)]
pub enum Outcome {
    /// The target answered (any status, any body).
    Answered,
    /// No complete answer within the timeout.
    TimedOut,
    /// The call broke after it was sent: connection reset, process crashed without a word, …
    Broken(String),
}

/// A function error as the target signalled it (X-Amz-Function-Error, a runtime `/error` post, a crash).
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct FunctionError {
    /// `Unhandled`, `Handled`, or the runtime's `errorType` (`Runtime.ExitError`, `ValueError`, …).
    pub kind: String,
    pub message: Option<String>,
}

/// A throttle or a failure of the service in front of the function (429 `TooManyRequestsException`,
/// a Lambda service 5xx) that was still there after every retry: the function never answered, so
/// there is nothing to judge.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct ServiceError {
    pub status: u16,
    /// `TooManyRequestsException`, `ServiceException`, … or `HTTP 503`.
    pub kind: String,
    /// True for a throttle (429), false for another service error.
    pub throttle: bool,
}

/// One invocation's result.
#[derive(Debug, Clone)]
pub struct Invocation {
    pub outcome: Outcome,
    /// HTTP status where the target speaks HTTP.
    pub status: Option<u16>,
    pub function_error: Option<FunctionError>,
    /// The body exactly as received, at most [`BODY_READ_CAP`] bytes.
    pub body: Bytes,
    /// True when the body was longer than [`BODY_READ_CAP`] and was cut.
    pub body_truncated: bool,
    /// From sending the request to the end of the body.
    pub elapsed: Duration,
    /// Set when this invocation started a new instance of the function (a cold start).
    pub init_duration: Option<Duration>,
    /// The function's log lines for this invocation, where the target can capture them.
    pub logs: Option<String>,
    /// Throttled or service-failed attempts retried before this answer (0 when the first attempt
    /// reached the function).
    pub throttles: u32,
    /// Set when the call was still throttled after its retries: not the function's answer.
    pub service_error: Option<ServiceError>,
    /// The service (Lambda's `Function.ResponseSizeTooLarge`) rejected the function's response as
    /// over the size limit, so the body is the service's error and not the response.
    pub reported_too_large: bool,
    /// How long the call waited for a free instance before the function got the event, where the
    /// target knows (`exec:`, and any target that queues behind a concurrency limit). Part of the
    /// caller's response time, never of the function's own clock: a queued call cannot time out.
    pub queue_wait: Option<Duration>,
    /// The call was refused for lack of concurrency (Lambda's 429 `TooManyRequestsException`) and
    /// the function never ran: nothing to judge, counted apart from function errors.
    pub throttled: bool,
}

impl Invocation {
    /// A plain answered invocation; targets adjust the fields they know more about.
    pub fn answered(status: Option<u16>, body: Bytes, elapsed: Duration) -> Self {
        Invocation {
            outcome: Outcome::Answered,
            status,
            function_error: None,
            body,
            body_truncated: false,
            elapsed,
            init_duration: None,
            logs: None,
            throttles: 0,
            service_error: None,
            reported_too_large: false,
            queue_wait: None,
            throttled: false,
        }
    }

    /// The function never answered this call: it was throttled (by the emulator's concurrency
    /// limit, or still by Lambda after its retries) or the service failed. Such a call is counted,
    /// never judged as the function's answer.
    pub fn unjudged(&self) -> bool {
        self.throttled || self.service_error.is_some()
    }

    pub fn timed_out(elapsed: Duration) -> Self {
        Invocation {
            outcome: Outcome::TimedOut,
            ..Invocation::answered(None, Bytes::new(), elapsed)
        }
    }

    pub fn broken(reason: impl Into<String>, elapsed: Duration) -> Self {
        Invocation {
            outcome: Outcome::Broken(reason.into()),
            ..Invocation::answered(None, Bytes::new(), elapsed)
        }
    }
}
