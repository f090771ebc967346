//! Reference transformers compiled into the binary: `builtin:identity` and `builtin:ndjson`.
//!
//! `ndjson` is what a careful transformer looks like, and the default target of the quick start: it
//! gunzips CloudWatch Logs envelopes into one JSON line per log event, drops the CONTROL_MESSAGE health
//! check, passes JSON through with a trailing newline, wraps text lines as `{"message": …}` lines, marks
//! records it cannot decode `ProcessingFailed`, and keeps its response under Lambda's 6 MB limit by
//! answering the records that no longer fit `ProcessingFailed` without data — Firehose then keeps their
//! originals in `processing-failed/`, so nothing is lost.

use std::borrow::Cow;
use std::io::Write;
use std::time::{Duration, Instant};

use async_trait::async_trait;
use base64::Engine as _;
use base64::engine::general_purpose::STANDARD;
use bytes::Bytes;
use firehose_generators::payload::{Compression, decompress};
use firehose_generators::wire::MAX_RESPONSE_BYTES;
use serde::Deserialize;
use serde_json::Value;

use super::{Target, TargetError};
use crate::invocation::{FunctionError, Invocation};

/// Which builtin.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum BuiltinKind {
    /// Every record back `Ok`, data unchanged.
    Identity,
    /// The reference NDJSON normaliser described above.
    Ndjson,
}

impl BuiltinKind {
    pub const ALL: [BuiltinKind; 2] = [BuiltinKind::Identity, BuiltinKind::Ndjson];

    pub fn name(self) -> &'static str {
        match self {
            BuiltinKind::Identity => "identity",
            BuiltinKind::Ndjson => "ndjson",
        }
    }

    pub fn parse(s: &str) -> Option<BuiltinKind> {
        BuiltinKind::ALL.into_iter().find(|k| k.name() == s)
    }
}

pub struct BuiltinTarget {
    kind: BuiltinKind,
}

impl BuiltinTarget {
    pub fn new(kind: BuiltinKind) -> Self {
        BuiltinTarget { kind }
    }
}

#[async_trait]
impl Target for BuiltinTarget {
    fn describe(&self) -> String {
        format!("builtin:{}", self.kind.name())
    }

    async fn invoke(&self, event: Bytes, timeout: Duration) -> Result<Invocation, TargetError> {
        let kind = self.kind;
        let start = Instant::now();
        // Decompressing megabytes is CPU work: keep it off the async workers.
        let work = tokio::task::spawn_blocking(move || transform(kind, &event));
        let inv = match tokio::time::timeout(timeout, work).await {
            Err(_) => Invocation::timed_out(start.elapsed()),
            Ok(Err(join)) => {
                Invocation::broken(format!("builtin panicked: {join}"), start.elapsed())
            }
            Ok(Ok(Ok(body))) => Invocation::answered(Some(200), Bytes::from(body), start.elapsed()),
            Ok(Ok(Err(message))) => {
                let body =
                    serde_json::json!({"errorType": "InvalidEvent", "errorMessage": message});
                let mut inv =
                    Invocation::answered(Some(200), Bytes::from(body.to_string()), start.elapsed());
                inv.function_error = Some(FunctionError {
                    kind: "Unhandled".into(),
                    message: Some(message),
                });
                inv
            }
        };
        Ok(inv)
    }
}

#[derive(Deserialize)]
struct InEvent<'a> {
    #[serde(borrow)]
    records: Vec<InRecord<'a>>,
    #[serde(rename = "sourceMSKArn")]
    source_msk_arn: Option<Value>,
}

#[derive(Deserialize)]
struct InRecord<'a> {
    #[serde(rename = "recordId", borrow)]
    record_id: Cow<'a, str>,
    #[serde(borrow)]
    data: Option<Cow<'a, str>>,
    #[serde(rename = "kafkaRecordValue", borrow)]
    kafka_record_value: Option<Cow<'a, str>>,
}

/// The answer for one record.
enum Out {
    Ok(Vec<u8>),
    Dropped,
    Failed,
}

/// Transform one event (its JSON bytes) into a response body. An `Err` is a function error: the event
/// itself could not be read, as a real function would throw.
pub fn transform(kind: BuiltinKind, event: &[u8]) -> Result<Vec<u8>, String> {
    let ev: InEvent<'_> =
        serde_json::from_slice(event).map_err(|e| format!("cannot parse the event: {e}"))?;
    let msk =
        ev.source_msk_arn.is_some() || ev.records.iter().any(|r| r.kafka_record_value.is_some());
    let key = if msk { "kafkaRecordValue" } else { "data" };
    let mut out = Vec::with_capacity(event.len() + 1024);
    out.extend_from_slice(b"{\"records\":[");
    // Room for the closing bracket and a little slack.
    let budget = MAX_RESPONSE_BYTES - 64;
    // What the records after each one would need as bare `ProcessingFailed` answers: keep that room,
    // so a large answer early cannot push the smallest possible answers for later records over the limit.
    let failed_len = |r: &InRecord<'_>| r.record_id.len() * 6 + 48;
    let mut reserve: u64 = ev.records.iter().map(|r| failed_len(r) as u64).sum();
    for (i, r) in ev.records.iter().enumerate() {
        reserve -= failed_len(r) as u64;
        let payload = r.data.as_deref().or(r.kafka_record_value.as_deref());
        let answer = match kind {
            BuiltinKind::Identity => match payload {
                Some(p) => Encoded::Verbatim(p),
                None => Encoded::Result("ProcessingFailed"),
            },
            BuiltinKind::Ndjson => match payload.map(ndjson_record) {
                Some(Out::Ok(bytes)) => Encoded::Data(STANDARD.encode(bytes)),
                Some(Out::Dropped) => Encoded::Result("Dropped"),
                Some(Out::Failed) | None => Encoded::Result("ProcessingFailed"),
            },
        };
        let mark = out.len();
        if i > 0 {
            out.push(b',');
        }
        write_record(&mut out, &r.record_id, key, &answer);
        if out.len() as u64 + reserve > budget as u64 {
            // Over the response limit: this record goes to processing-failed/ with its original data.
            out.truncate(mark);
            if i > 0 {
                out.push(b',');
            }
            write_record(
                &mut out,
                &r.record_id,
                key,
                &Encoded::Result("ProcessingFailed"),
            );
        }
    }
    out.extend_from_slice(b"]}");
    Ok(out)
}

enum Encoded<'a> {
    Verbatim(&'a str),
    Data(String),
    Result(&'static str),
}

fn write_record(out: &mut Vec<u8>, id: &str, key: &str, answer: &Encoded<'_>) {
    out.extend_from_slice(b"{\"recordId\":");
    serde_json::to_writer(&mut *out, id).expect("string into a Vec");
    match answer {
        Encoded::Verbatim(data) => {
            let _ = write!(out, ",\"result\":\"Ok\",\"{key}\":");
            serde_json::to_writer(&mut *out, data).expect("string into a Vec");
        }
        Encoded::Data(b64) => {
            let _ = write!(out, ",\"result\":\"Ok\",\"{key}\":\"{b64}\"");
        }
        Encoded::Result(result) => {
            let _ = write!(out, ",\"result\":\"{result}\"");
        }
    }
    out.push(b'}');
}

/// One record through the NDJSON normaliser.
fn ndjson_record(b64: &str) -> Out {
    let Ok(raw) = STANDARD.decode(b64) else {
        return Out::Failed;
    };
    let bytes = match Compression::sniff(&raw) {
        Compression::None => raw,
        kind => match decompress(kind, &raw, MAX_RESPONSE_BYTES * 4) {
            Ok(b) => b,
            Err(_) => return Out::Failed,
        },
    };
    if bytes.iter().all(u8::is_ascii_whitespace) {
        return Out::Dropped;
    }
    let Ok(text) = std::str::from_utf8(&bytes) else {
        return Out::Failed;
    };
    let trimmed = text.trim_end();
    if let Ok(value) = serde_json::from_str::<Value>(trimmed) {
        if let Some(kind) = value.get("messageType").and_then(Value::as_str) {
            return cwl_lines(kind, &value);
        }
        if !trimmed.contains('\n') {
            // JSON on one line passes through unchanged, newline-terminated.
            let mut line = trimmed.as_bytes().to_vec();
            line.push(b'\n');
            return Out::Ok(line);
        }
        // Pretty-printed JSON: one line of compact JSON.
        let mut line = serde_json::to_vec(&value).expect("value to vec");
        line.push(b'\n');
        return Out::Ok(line);
    }
    // Text: one {"message": …} object per non-empty line.
    let mut out = Vec::with_capacity(text.len() + 16);
    for line in text.lines().filter(|l| !l.trim().is_empty()) {
        out.extend_from_slice(b"{\"message\":");
        serde_json::to_writer(&mut out, line).expect("string into a Vec");
        out.extend_from_slice(b"}\n");
    }
    Out::Ok(out)
}

/// A CloudWatch Logs envelope: drop the health check, one line per log event otherwise.
fn cwl_lines(kind: &str, env: &Value) -> Out {
    if kind == "CONTROL_MESSAGE" {
        return Out::Dropped;
    }
    let Some(events) = env.get("logEvents").and_then(Value::as_array) else {
        return Out::Failed;
    };
    let mut out = Vec::new();
    for e in events {
        let line = serde_json::json!({
            "id": e.get("id"),
            "timestamp": e.get("timestamp"),
            "logGroup": env.get("logGroup"),
            "logStream": env.get("logStream"),
            "message": e.get("message"),
        });
        serde_json::to_writer(&mut out, &line).expect("value to vec");
        out.push(b'\n');
    }
    if out.is_empty() {
        return Out::Dropped;
    }
    Out::Ok(out)
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::contract::{CheckSet, check};
    use firehose_generators::strategies::{GenConfig, sample};
    use firehose_generators::wire::EventView;

    #[test]
    fn ndjson_passes_its_own_contract() {
        let mut checks = CheckSet::default();
        checks.apply("+newline_delimited").unwrap();
        let cfg = GenConfig {
            sources: firehose_generators::Source::ALL.to_vec(),
            ..GenConfig::default()
        };
        for seed in 0..40 {
            let event = sample(&cfg, seed).materialize();
            let bytes = event.to_json();
            let body = transform(BuiltinKind::Ndjson, &bytes).unwrap();
            let inv = Invocation::answered(Some(200), Bytes::from(body), Duration::ZERO);
            let verdict = check(&EventView::from(&event), &inv, &checks);
            assert!(
                verdict.violations.is_empty(),
                "seed {seed}: {:?}",
                verdict.violations
            );
        }
    }

    #[test]
    fn ndjson_handles_cwl_and_control_messages() {
        let fixture = include_bytes!(
            "../../../fixtures/real-events/aws-blueprints/cwl-processor.testEvent.json"
        );
        let body = transform(BuiltinKind::Ndjson, fixture).unwrap();
        let v: Value = serde_json::from_slice(&body).unwrap();
        let results: Vec<_> = v["records"]
            .as_array()
            .unwrap()
            .iter()
            .map(|r| r["result"].as_str().unwrap().to_string())
            .collect();
        assert_eq!(results, ["Dropped", "Ok", "Ok", "Ok"]);
        let data = STANDARD
            .decode(v["records"][1]["data"].as_str().unwrap())
            .unwrap();
        let text = String::from_utf8(data).unwrap();
        assert!(text.lines().count() >= 1);
        for line in text.lines() {
            serde_json::from_str::<Value>(line).unwrap();
        }
    }

    #[test]
    fn ndjson_stays_under_the_response_limit() {
        // 4 MB of gzip'd zeros expands far beyond 6 MB when decompressed.
        let raw = vec![b'{'; 0]
            .into_iter()
            .chain(b"{\"a\":1}\n".repeat(600_000))
            .collect::<Vec<_>>();
        let gz = firehose_generators::payload::compress(Compression::Gzip, 6, &raw);
        let records: Vec<_> = (0..8)
            .map(|i| serde_json::json!({"recordId": format!("r{i}"), "approximateArrivalTimestamp": 1, "data": STANDARD.encode(&gz)}))
            .collect();
        let event = serde_json::json!({"invocationId":"i","deliveryStreamArn":"a","region":"r","records":records});
        let body = transform(BuiltinKind::Ndjson, event.to_string().as_bytes()).unwrap();
        assert!(body.len() <= MAX_RESPONSE_BYTES, "{}", body.len());
        let v: Value = serde_json::from_slice(&body).unwrap();
        assert_eq!(v["records"].as_array().unwrap().len(), 8);
        assert_eq!(v["records"][7]["result"], "ProcessingFailed");
    }
}
