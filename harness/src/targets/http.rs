//! `http://`, `https://` and `invoke+http://` targets: one pooled reqwest client, the body read in
//! chunks up to [`BODY_READ_CAP`], the whole exchange (headers *and* body) under one deadline, so a
//! server that trickles a never-ending body is a timeout, not a hang.

use std::time::{Duration, Instant};

use async_trait::async_trait;
use bytes::{Bytes, BytesMut};
use reqwest::header::{CONTENT_TYPE, HeaderMap, HeaderName, HeaderValue};

use super::h1::{H1Client, H1Error};
use super::{Target, TargetError, TargetOptions};
use crate::invocation::{BODY_READ_CAP, FunctionError, Invocation};

/// Header an Invoke-API endpoint sets when the function failed.
pub const FUNCTION_ERROR_HEADER: &str = "x-amz-function-error";

pub struct HttpTarget {
    url: reqwest::Url,
    /// Plain `http://`: the lean keep-alive pool (see [`super::h1`]); `https://` uses reqwest.
    h1: Option<H1Client>,
    described: String,
    client: reqwest::Client,
    headers: HeaderMap,
    /// Raw `--header` pairs, for the reproducer.
    raw_headers: Vec<(String, String)>,
}

impl HttpTarget {
    /// POST events to `url` as they are.
    pub fn plain(url: String, options: &TargetOptions) -> Result<Self, TargetError> {
        Self::new(url.clone(), url, options)
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
        let described = format!("invoke+{base}/{function}");
        Self::new(url, described, options)
    }

    fn new(url: String, described: String, options: &TargetOptions) -> Result<Self, TargetError> {
        let bad = |reason: String| TargetError::Start {
            target: described.clone(),
            reason,
        };
        let url = reqwest::Url::parse(&url).map_err(|e| bad(e.to_string()))?;
        let mut headers = HeaderMap::new();
        headers.insert(CONTENT_TYPE, HeaderValue::from_static("application/json"));
        for (k, v) in &options.headers {
            let name = HeaderName::from_bytes(k.as_bytes())
                .map_err(|_| bad(format!("`{k}` is not a valid header name")))?;
            let value = HeaderValue::from_str(v)
                .map_err(|_| bad(format!("the value of header `{k}` is not valid")))?;
            headers.append(name, value);
        }
        let client = reqwest::Client::builder()
            .pool_idle_timeout(Duration::from_secs(90))
            .tcp_nodelay(true)
            .no_proxy()
            .build()
            .map_err(|e| bad(e.to_string()))?;
        Ok(HttpTarget {
            h1: H1Client::new(&url, &headers),
            url,
            described,
            client,
            headers,
            raw_headers: options.headers.clone(),
        })
    }

    /// One exchange over the lean HTTP/1 pool.
    async fn exchange_h1(&self, h1: &H1Client, event: Bytes) -> Result<Invocation, H1Error> {
        let start = Instant::now();
        let resp = h1.post(event).await?;
        let function_error = resp
            .headers
            .get(FUNCTION_ERROR_HEADER)
            .map(|v| String::from_utf8_lossy(v.as_bytes()).into_owned());
        let mut inv = Invocation::answered(Some(resp.status), resp.body, start.elapsed());
        inv.body_truncated = resp.truncated;
        inv.function_error = function_error.map(|kind| FunctionError {
            message: error_message(&inv.body),
            kind,
        });
        Ok(inv)
    }

    async fn exchange(&self, event: Bytes) -> Result<Invocation, reqwest::Error> {
        let start = Instant::now();
        let mut resp = self
            .client
            .post(self.url.clone())
            .headers(self.headers.clone())
            .body(event)
            .send()
            .await?;
        let status = resp.status().as_u16();
        let function_error = resp
            .headers()
            .get(FUNCTION_ERROR_HEADER)
            .map(|v| String::from_utf8_lossy(v.as_bytes()).into_owned());
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
        inv.function_error = function_error.map(|kind| FunctionError {
            message: error_message(&inv.body),
            kind,
        });
        Ok(inv)
    }
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
fn chain(e: &dyn std::error::Error) -> String {
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

    async fn invoke(&self, event: Bytes, timeout: Duration) -> Result<Invocation, TargetError> {
        let start = Instant::now();
        if let Some(h1) = &self.h1 {
            return match tokio::time::timeout(timeout, self.exchange_h1(h1, event)).await {
                Err(_) => Ok(Invocation::timed_out(start.elapsed())),
                Ok(Ok(inv)) => Ok(inv),
                Ok(Err(H1Error::Connect(e))) => Err(TargetError::Unreachable {
                    target: self.described.clone(),
                    reason: chain(&e),
                }),
                Ok(Err(e)) => Ok(Invocation::broken(chain(&e), start.elapsed())),
            };
        }
        match tokio::time::timeout(timeout, self.exchange(event)).await {
            Err(_) => Ok(Invocation::timed_out(start.elapsed())),
            Ok(Ok(inv)) => Ok(inv),
            Ok(Err(e)) if e.is_connect() => Err(TargetError::Unreachable {
                target: self.described.clone(),
                reason: chain(&e),
            }),
            Ok(Err(e)) if e.is_timeout() => Ok(Invocation::timed_out(start.elapsed())),
            Ok(Err(e)) => Ok(Invocation::broken(chain(&e), start.elapsed())),
        }
    }

    fn reproduce_script(&self) -> Option<String> {
        let mut headers = String::new();
        for (k, v) in &self.raw_headers {
            let lower = k.to_ascii_lowercase();
            let secret = ["auth", "token", "key", "secret", "password", "cookie"]
                .iter()
                .any(|s| lower.contains(s));
            let var = format!(
                "HEADER_{}",
                k.to_ascii_uppercase()
                    .replace(|c: char| !c.is_ascii_alphanumeric(), "_")
            );
            if secret {
                // Never write credentials into a case folder that CI uploads as an artifact.
                headers.push_str(&format!(
                    " \\\n  -H \"{k}: ${{{var}:?set {var} to the value of the {k} header}}\""
                ));
            } else {
                headers.push_str(&format!(" \\\n  -H {}", shell_quote(&format!("{k}: {v}"))));
            }
        }
        Some(format!(
            "#!/bin/sh\n# Sends this case's event.json to {url} exactly as firehose-harness did.\n# Compare the answer with response.body; or run: firehose-harness replay \"$(dirname \"$0\")\" --target {url}\nset -eu\ncd \"$(dirname \"$0\")\"\ncurl -sS -X POST -H 'Content-Type: application/json'{headers} \\\n  --data-binary @event.json {quoted}\necho\n",
            url = self.described,
            quoted = shell_quote(self.url.as_str()),
        ))
    }
}

/// Quote for a POSIX shell: single quotes, with embedded single quotes closed and escaped.
pub fn shell_quote(s: &str) -> String {
    format!("'{}'", s.replace('\'', r"'\''"))
}
