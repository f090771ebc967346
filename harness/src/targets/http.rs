//! `http://`, `https://` and `invoke+http(s)://` targets, and the transport of `lambda:`: one pooled
//! client, the body read in chunks up to [`BODY_READ_CAP`], the whole exchange (headers *and* body)
//! under one deadline, so a server that trickles a never-ending body is a timeout, not a hang.
//!
//! Signed requests (`--sigv4`, `lambda:`) and TLS go through reqwest with `--ca-cert` roots added;
//! unsigned plain HTTP through the lean keep-alive pool in [`super::h1`]. Throttles (429, and for
//! `lambda:` the Lambda service's own 5xx) are retried with jittered backoff and counted apart from
//! function errors; a call still throttled after its retries carries
//! [`Invocation::service_error`], which the runners do not judge as the function's answer.

use std::collections::BTreeMap;
use std::sync::Mutex;
use std::sync::atomic::{AtomicU64, Ordering};
use std::time::{Duration, Instant};

use async_trait::async_trait;
use base64::Engine as _;
use bytes::{Bytes, BytesMut};
use crossbeam_utils::CachePadded;
use reqwest::header::{CONTENT_TYPE, HeaderMap, HeaderName, HeaderValue};

use super::h1::{H1Client, H1Error, SHARDS, shard_index};
use super::retry::Backoff;
use super::sigv4::{SignError, Signer};
use super::{Target, TargetError, TargetOptions};
use crate::invocation::{BODY_READ_CAP, FunctionError, Invocation, ServiceError};

/// Header an Invoke-API endpoint sets when the function failed.
pub const FUNCTION_ERROR_HEADER: &str = "x-amz-function-error";
/// The Lambda service's name for a throttle or other failure of its own (`TooManyRequestsException`).
pub const AMZN_ERROR_TYPE_HEADER: &str = "x-amzn-errortype";
/// The version of the function that ran (`$LATEST`, `7`), behind an alias or not.
pub const EXECUTED_VERSION_HEADER: &str = "x-amz-executed-version";
/// The last 4 KB of the invocation's log, base64, when asked for with `X-Amz-Log-Type: Tail`.
pub const LOG_RESULT_HEADER: &str = "x-amz-log-result";
/// The headers read from every answer, parsed once: a lookup by `&str` parses the name each time.
static FUNCTION_ERROR: HeaderName = HeaderName::from_static(FUNCTION_ERROR_HEADER);
static EXECUTED_VERSION: HeaderName = HeaderName::from_static(EXECUTED_VERSION_HEADER);
static LOG_RESULT: HeaderName = HeaderName::from_static(LOG_RESULT_HEADER);
static AMZN_ERROR_TYPE: HeaderName = HeaderName::from_static(AMZN_ERROR_TYPE_HEADER);
/// The error type Lambda answers with when the function's response was over its 6 MB limit.
pub const RESPONSE_TOO_LARGE: &str = "Function.ResponseSizeTooLarge";

/// What kind of endpoint is behind the URL: it decides what a 5xx means and which headers to read.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Api {
    /// Any HTTP endpoint (a Function URL, API Gateway, a container): the body is the answer.
    Plain,
    /// A local Invoke-API endpoint (RIE, SAM, `emulate`): a 5xx is the function's crash.
    InvokeEndpoint,
    /// The real Lambda service: a 5xx without `X-Amz-Function-Error` is the service's own failure.
    Lambda,
}

/// Calls that did not reach the function, and versions that answered: the report's notes.
#[derive(Default)]
struct Tally {
    /// Counted per thread shard: one counter written by every call of every load thread moved
    /// its cache line between the cores at each call.
    calls: [CachePadded<AtomicU64>; SHARDS],
    /// Throttled or service-failed answers, retried or not.
    throttles: AtomicU64,
    /// Calls still throttled after every retry (not judged).
    gave_up: AtomicU64,
    /// `X-Amz-Executed-Version` → calls.
    versions: Mutex<BTreeMap<String, u64>>,
}

pub struct HttpTarget {
    url: reqwest::Url,
    /// Plain unsigned `http://`: the lean keep-alive pool (see [`super::h1`]); otherwise reqwest.
    h1: Option<H1Client>,
    /// How outputs name the target: the URL without its userinfo.
    described: String,
    /// The target as given, userinfo included: what a reproducer sends to again (reading the
    /// userinfo from the environment).
    given: String,
    /// Strings no output may show: the URL's userinfo and password, every `--header` value.
    secrets: Vec<String>,
    client: reqwest::Client,
    headers: HeaderMap,
    /// Raw `--header` pairs, for the reproducer.
    raw_headers: Vec<(String, String)>,
    api: Api,
    signer: Option<Signer>,
    retry: Backoff,
    tally: Tally,
    /// Flags a reproducer must pass again (`--region`, `--endpoint-url`, `--sigv4`, `--ca-cert`…).
    replay_flags: Vec<String>,
}

/// Why one exchange failed before an answer was complete.
#[derive(Debug, thiserror::Error)]
enum ExchangeError {
    #[error(transparent)]
    H1(#[from] H1Error),
    #[error(transparent)]
    Reqwest(#[from] reqwest::Error),
    #[error(transparent)]
    Sign(#[from] SignError),
}

impl HttpTarget {
    /// POST events to `url` as they are (signed with `--sigv4 SERVICE`).
    pub fn plain(url: String, options: &TargetOptions) -> Result<Self, TargetError> {
        let signer = options.aws.sigv4.as_ref().map(|service| {
            Signer::new(super::sigv4::SignerConfig {
                service: service.clone(),
                region: options.aws.region.clone(),
                profile: options.aws.profile.clone(),
            })
        });
        let described = super::spec::redact_userinfo(&url);
        Self::new(url.clone(), described, url, Api::Plain, signer, options)
    }

    /// POST events to a Lambda Invoke-API endpoint (`/2015-03-31/functions/{name}/invocations`).
    pub fn invoke_api(
        base: String,
        function: &str,
        options: &TargetOptions,
    ) -> Result<Self, TargetError> {
        let url = format!(
            "{}/2015-03-31/functions/{function}/invocations",
            base.trim_end_matches('/')
        );
        let given = format!("invoke+{base}/{function}");
        let described = super::spec::redact_userinfo(&given);
        Self::new(url, described, given, Api::InvokeEndpoint, None, options)
    }

    /// The transport of a `lambda:` target (see [`super::lambda`]): `url` is the full Invoke URL.
    pub(super) fn lambda(
        url: String,
        described: String,
        signer: Signer,
        options: &TargetOptions,
    ) -> Result<Self, TargetError> {
        let mut options = options.clone();
        options
            .headers
            .push(("X-Amz-Invocation-Type".into(), "RequestResponse".into()));
        if options.aws.log_tail {
            options
                .headers
                .push(("X-Amz-Log-Type".into(), "Tail".into()));
        }
        let given = described.clone();
        Self::new(url, described, given, Api::Lambda, Some(signer), &options)
    }

    fn new(
        url: String,
        described: String,
        given: String,
        api: Api,
        signer: Option<Signer>,
        options: &TargetOptions,
    ) -> Result<Self, TargetError> {
        let bad = |reason: String| TargetError::Start {
            target: described.clone(),
            reason,
        };
        let mut secrets: Vec<String> = Vec::new();
        if let Some(info) = super::spec::userinfo(&given) {
            secrets.push(info.to_string());
            secrets.extend(info.split_once(':').map(|(_, pw)| pw.to_string()));
        }
        // Short values ("1", "on") would blank out ordinary words in error messages; a value that
        // short is no secret worth the damage.
        secrets.extend(
            options
                .headers
                .iter()
                .map(|(_, v)| v.clone())
                .filter(|v| v.len() >= 4),
        );
        secrets.retain(|s| !s.is_empty());
        // Longest first, so a password inside its userinfo is not replaced before the whole.
        secrets.sort_by_key(|s| std::cmp::Reverse(s.len()));
        let url = reqwest::Url::parse(&url)
            .map_err(|e| bad(super::spec::redact_userinfo(&e.to_string())))?;
        let mut headers = HeaderMap::new();
        headers.insert(CONTENT_TYPE, HeaderValue::from_static("application/json"));
        for (k, v) in &options.headers {
            let name = HeaderName::from_bytes(k.as_bytes())
                .map_err(|_| bad(format!("`{k}` is not a valid header name")))?;
            let value = HeaderValue::from_str(v)
                .map_err(|_| bad(format!("the value of header `{k}` is not valid")))?;
            headers.append(name, value);
        }
        let mut builder = reqwest::Client::builder()
            .pool_idle_timeout(Duration::from_secs(90))
            .tcp_nodelay(true)
            .no_proxy();
        if let Some(path) = &options.aws.ca_cert {
            for cert in read_ca_certs(path).map_err(bad)? {
                builder = builder.add_root_certificate(cert);
            }
        }
        let client = builder.build().map_err(|e| bad(e.to_string()))?;
        let raw_headers = match api {
            // The reproducer passes the target again; these are the target's own headers.
            Api::Lambda => Vec::new(),
            _ => options.headers.clone(),
        };
        Ok(HttpTarget {
            h1: match signer {
                None => H1Client::new(&url, &headers),
                Some(_) => None,
            },
            url,
            described,
            given,
            secrets,
            client,
            headers,
            raw_headers,
            api,
            signer,
            retry: Backoff::default(),
            tally: Tally::default(),
            replay_flags: replay_flags(options),
        })
    }

    /// Read what the Invoke API says beside the body: the function error, the version that ran,
    /// the log tail.
    fn read_headers(&self, headers: &HeaderMap, inv: &mut Invocation) {
        let text = |name: &HeaderName| {
            headers
                .get(name)
                .map(|v| String::from_utf8_lossy(v.as_bytes()).into_owned())
        };
        inv.function_error = text(&FUNCTION_ERROR).map(|kind| FunctionError {
            message: error_message(&inv.body),
            kind,
        });
        if self.api != Api::Lambda {
            return;
        }
        if let Some(version) = text(&EXECUTED_VERSION)
            && let Ok(mut versions) = self.tally.versions.lock()
        {
            *versions.entry(version).or_default() += 1;
        }
        if let Some(tail) = text(&LOG_RESULT) {
            let decoded = base64::engine::general_purpose::STANDARD.decode(tail.trim());
            inv.logs = Some(match decoded {
                Ok(bytes) => String::from_utf8_lossy(&bytes).into_owned(),
                Err(e) => format!("(X-Amz-Log-Result is not base64: {e})"),
            });
        }
        // Lambda replaces a response over its limit with its own error: still the contract's
        // `response_within_limit`, as for every other target.
        if error_type(&inv.body).as_deref() == Some(RESPONSE_TOO_LARGE) {
            inv.function_error = None;
            inv.reported_too_large = true;
        }
    }

    /// A throttle or a failure of the service in front of the function, which is retried: 429 from
    /// anything, and for `lambda:` a 5xx the function did not cause (no `X-Amz-Function-Error`).
    fn service_error(&self, headers: &HeaderMap, inv: &Invocation) -> Option<ServiceError> {
        let status = inv.status?;
        let service_5xx = self.api == Api::Lambda
            && (500..600).contains(&status)
            && !headers.contains_key(&FUNCTION_ERROR);
        if status != 429 && !service_5xx {
            return None;
        }
        let kind = headers
            .get(&AMZN_ERROR_TYPE)
            .and_then(|v| v.to_str().ok())
            .map(|t| t.split(':').next().unwrap_or(t).to_string())
            .or_else(|| error_type(&inv.body))
            .unwrap_or_else(|| format!("HTTP {status}"));
        Some(ServiceError {
            status,
            kind,
            throttle: status == 429,
        })
    }

    /// One exchange over the lean HTTP/1 pool.
    async fn exchange_h1(
        &self,
        h1: &H1Client,
        event: Bytes,
        start: Instant,
        timeout: Duration,
    ) -> Result<(Invocation, Option<ServiceError>), ExchangeError> {
        let deadline = tokio::time::Instant::from_std(start) + timeout;
        let resp = h1.post(event, deadline).await?;
        let mut inv = Invocation::answered(Some(resp.status), resp.body, start.elapsed());
        inv.body_truncated = resp.truncated;
        self.read_headers(&resp.headers, &mut inv);
        let service = self.service_error(&resp.headers, &inv);
        Ok((inv, service))
    }

    async fn exchange(
        &self,
        event: Bytes,
    ) -> Result<(Invocation, Option<ServiceError>), ExchangeError> {
        let mut headers = self.headers.clone();
        if let Some(signer) = &self.signer {
            signer.sign("POST", &self.url, &mut headers, &event).await?;
        }
        let start = Instant::now();
        let mut resp = self
            .client
            .post(self.url.clone())
            .headers(headers)
            .body(event)
            .send()
            .await?;
        let status = resp.status().as_u16();
        let resp_headers = std::mem::take(resp.headers_mut());
        let mut body = BytesMut::with_capacity(
            resp.content_length()
                .map_or(64 * 1024, |n| (n as usize).min(BODY_READ_CAP)),
        );
        let mut truncated = false;
        while let Some(chunk) = resp.chunk().await? {
            let room = BODY_READ_CAP - body.len();
            if chunk.len() > room {
                body.extend_from_slice(&chunk[..room]);
                truncated = true;
                break;
            }
            body.extend_from_slice(&chunk);
        }
        let mut inv = Invocation::answered(Some(status), body.freeze(), start.elapsed());
        inv.body_truncated = truncated;
        self.read_headers(&resp_headers, &mut inv);
        let service = self.service_error(&resp_headers, &inv);
        Ok((inv, service))
    }

    /// One attempt under `timeout`: an answer (maybe a throttle), or unreachable.
    async fn attempt(
        &self,
        event: Bytes,
        timeout: Duration,
    ) -> Result<(Invocation, Option<ServiceError>), TargetError> {
        let start = Instant::now();
        let result = match &self.h1 {
            // Under the connection's own timer (see `h1::Conn`), not a new one per request.
            Some(h1) => Ok(self.exchange_h1(h1, event, start, timeout).await),
            // Boxed: reqwest's future is large, and unboxed it would size (and be copied with)
            // every invocation's future, the lean path's included.
            None => tokio::time::timeout(timeout, Box::pin(self.exchange(event))).await,
        };
        let unreachable = |e: &dyn std::error::Error| TargetError::Unreachable {
            target: self.described.clone(),
            reason: self.scrub(&chain(e)),
        };
        match result {
            Err(_) => Ok((Invocation::timed_out(start.elapsed()), None)),
            Ok(Ok(answer)) => Ok(answer),
            Ok(Err(ExchangeError::H1(H1Error::Connect(e)))) => Err(unreachable(&e)),
            Ok(Err(ExchangeError::H1(H1Error::TimedOut))) => {
                Ok((Invocation::timed_out(start.elapsed()), None))
            }
            Ok(Err(ExchangeError::Reqwest(e))) if e.is_connect() => Err(unreachable(&e)),
            Ok(Err(ExchangeError::Reqwest(e))) if e.is_timeout() => {
                Ok((Invocation::timed_out(start.elapsed()), None))
            }
            Ok(Err(ExchangeError::Sign(e))) => Err(TargetError::Credentials {
                target: self.described.clone(),
                reason: e.to_string(),
            }),
            Ok(Err(e)) => Ok((
                Invocation::broken(self.scrub(&chain(&e)), start.elapsed()),
                None,
            )),
        }
    }

    /// `text` (an error from the transport, which quotes URLs) without the target's credentials.
    fn scrub(&self, text: &str) -> String {
        let mut out = super::spec::redact_userinfo(text);
        for secret in &self.secrets {
            if out.contains(secret.as_str()) {
                out = out.replace(secret.as_str(), super::spec::REDACTED);
            }
        }
        out
    }
}

/// PEM certificates from `--ca-cert FILE` (one or a bundle).
pub fn read_ca_certs(path: &std::path::Path) -> Result<Vec<reqwest::Certificate>, String> {
    let pem = std::fs::read(path)
        .map_err(|e| format!("--ca-cert: cannot read {}: {e}", path.display()))?;
    let certs = reqwest::Certificate::from_pem_bundle(&pem).map_err(|e| {
        format!(
            "--ca-cert: {} is not a PEM certificate: {}",
            path.display(),
            chain(&e)
        )
    })?;
    if certs.is_empty() {
        return Err(format!(
            "--ca-cert: {} holds no PEM certificate",
            path.display()
        ));
    }
    Ok(certs)
}

/// The AWS and TLS flags a reproducer must pass again; never credentials (the chain finds them at
/// run time).
fn replay_flags(options: &TargetOptions) -> Vec<String> {
    let aws = &options.aws;
    let mut flags = Vec::new();
    for (flag, value) in [
        ("--region", aws.region.as_ref()),
        ("--profile", aws.profile.as_ref()),
        ("--endpoint-url", aws.endpoint_url.as_ref()),
        ("--sigv4", aws.sigv4.as_ref()),
    ] {
        if let Some(v) = value {
            flags.push(format!("{flag} {}", shell_quote(v)));
        }
    }
    if let Some(path) = &aws.ca_cert {
        let absolute = std::path::absolute(path).unwrap_or_else(|_| path.clone());
        flags.push(format!(
            "--ca-cert {}",
            shell_quote(&absolute.display().to_string())
        ));
    }
    if aws.log_tail {
        flags.push("--log-tail".into());
    }
    flags
}

/// `errorType` of an error-shaped body.
fn error_type(body: &[u8]) -> Option<String> {
    let v: serde_json::Value = serde_json::from_slice(body).ok()?;
    v.get("errorType")
        .or_else(|| v.get("__type"))
        .or_else(|| v.get("Type"))?
        .as_str()
        .map(str::to_string)
}

/// `errorMessage` of an error-shaped body, for the violation text.
fn error_message(body: &[u8]) -> Option<String> {
    let v: serde_json::Value = serde_json::from_slice(body).ok()?;
    let msg = v.get("errorMessage")?.as_str()?;
    Some(match v.get("errorType").and_then(|t| t.as_str()) {
        Some(t) => format!("{t}: {msg}"),
        None => msg.to_string(),
    })
}

/// The error and its causes in one line ("error sending request: connection refused").
pub(super) fn chain(e: &dyn std::error::Error) -> String {
    let mut s = e.to_string();
    let mut cur = e.source();
    while let Some(c) = cur {
        let text = c.to_string();
        if !s.contains(&text) {
            s.push_str(": ");
            s.push_str(&text);
        }
        cur = c.source();
    }
    s
}

#[async_trait]
impl Target for HttpTarget {
    fn describe(&self) -> String {
        self.described.clone()
    }

    async fn start(&self) -> Result<(), TargetError> {
        match &self.signer {
            Some(signer) => signer.load().await.map_err(|e| TargetError::Credentials {
                target: self.described.clone(),
                reason: e.to_string(),
            }),
            None => Ok(()),
        }
    }

    async fn invoke(&self, event: Bytes, timeout: Duration) -> Result<Invocation, TargetError> {
        self.tally.calls[shard_index()].fetch_add(1, Ordering::Relaxed);
        let mut retries = 0;
        loop {
            let (mut inv, service) = self.attempt(event.clone(), timeout).await?;
            if let Some(service) = service {
                self.tally.throttles.fetch_add(1, Ordering::Relaxed);
                if let Some(pause) = self.retry.pause(retries) {
                    retries += 1;
                    tokio::time::sleep(pause).await;
                    continue;
                }
                self.tally.gave_up.fetch_add(1, Ordering::Relaxed);
                inv.throttled = service.throttle;
                inv.service_error = Some(service);
            }
            inv.throttles = retries;
            return Ok(inv);
        }
    }

    fn throttles(&self) -> super::ThrottleStats {
        super::ThrottleStats {
            calls: self
                .tally
                .calls
                .iter()
                .map(|c| c.load(Ordering::Relaxed))
                .sum(),
            throttled: self.tally.throttles.load(Ordering::Relaxed),
            gave_up: self.tally.gave_up.load(Ordering::Relaxed),
        }
    }

    fn notes(&self) -> Vec<String> {
        let mut notes = Vec::new();
        if let Ok(versions) = self.tally.versions.lock()
            && !versions.is_empty()
        {
            let list: Vec<String> = versions
                .iter()
                .map(|(v, n)| format!("{v} ({n} calls)"))
                .collect();
            notes.push(format!("executed version: {}", list.join(", ")));
        }
        notes
    }

    fn reproduce_script(&self) -> Option<String> {
        self.script()
    }
}

impl HttpTarget {
    /// A comment naming the variables the script reads its secrets from, if it reads any.
    fn needs_comment(&self) -> String {
        let mut vars: Vec<String> = self
            .raw_headers
            .iter()
            .map(|(k, _)| header_var(k))
            .collect();
        if super::spec::userinfo(&self.given).is_some() {
            vars.insert(0, super::spec::USERINFO_VAR.to_string());
        }
        if vars.is_empty() {
            return String::new();
        }
        format!(
            "# Credentials are not written here: set {} before running it.\n",
            vars.join(", ")
        )
    }

    fn script(&self) -> Option<String> {
        if self.signer.is_some() || !self.replay_flags.is_empty() {
            // Signatures expire and TLS roots need a flag: replay through the harness, which signs
            // with whatever credentials the environment holds when the script runs.
            let mut script = format!(
                "#!/bin/sh\n# Sends this case's event.json to {t} again, signed with the credentials the\n# environment holds now (AWS_PROFILE, AWS_ACCESS_KEY_ID/AWS_SECRET_ACCESS_KEY/AWS_SESSION_TOKEN,\n# SSO, web identity), and says FIXED, FAILED or FLAKY.\n{needs}set -eu\nexec firehose-harness replay \"$(dirname \"$0\")\" --target {quoted}",
                t = self.described,
                needs = self.needs_comment(),
                quoted = super::spec::shell_url_from_env(&self.given),
            );
            for (k, _) in &self.raw_headers {
                script.push_str(&format!(" \\\n  --header {}", header_arg(k)));
            }
            for flag in &self.replay_flags {
                script.push_str(" \\\n  ");
                script.push_str(flag);
            }
            script.push('\n');
            return Some(script);
        }
        let mut headers = String::new();
        for (k, _) in &self.raw_headers {
            headers.push_str(&format!(" \\\n  -H {}", header_arg(k)));
        }
        Some(format!(
            "#!/bin/sh\n# Sends this case's event.json to {url} exactly as firehose-harness did.\n# Compare the answer with response.body; or run: firehose-harness replay \"$(dirname \"$0\")\" --target {url}\n{needs}set -eu\ncd \"$(dirname \"$0\")\"\ncurl -sS -X POST -H 'Content-Type: application/json'{headers} \\\n  --data-binary @event.json {quoted}\necho\n",
            url = shell_quote(&self.described),
            needs = self.needs_comment(),
            quoted = super::spec::shell_url_from_env(self.url.as_str()),
        ))
    }
}

/// The variable a reproducer reads header `k`'s value from: `HEADER_X_API_KEY` for `X-Api-Key`.
fn header_var(k: &str) -> String {
    format!(
        "HEADER_{}",
        k.to_ascii_uppercase()
            .replace(|c: char| !c.is_ascii_alphanumeric(), "_")
    )
}

/// A `K: V` header as a shell word that reads its value from `HEADER_K` at run time.
///
/// Every `--header` is treated as a secret: the harness cannot tell a tenant id from a token by
/// its name, and a case folder is what CI uploads as an artifact.
fn header_arg(k: &str) -> String {
    let var = header_var(k);
    format!("\"{k}: ${{{var}:?set {var} to the value of the {k} header}}\"")
}

/// Quote for a POSIX shell: single quotes, with embedded single quotes closed and escaped.
pub fn shell_quote(s: &str) -> String {
    format!("'{}'", s.replace('\'', r"'\''"))
}
