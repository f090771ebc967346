//! CloudWatch Logs subscription payloads (`FIREHOSE_CONTRACT.md` §4).
//!
//! [`envelope`] writes the JSON of a DATA_MESSAGE or CONTROL_MESSAGE: `cwl` records carry it gzip'd,
//! as a subscription sends it, and `cwl-decompressed` records carry it as is, as Firehose delivers it
//! with decompression on. [`extracted`] writes the log messages alone, one per line, as Firehose
//! delivers them with message extraction on.

use std::io::Write;

use serde_json::Value;

use super::CWL_CONTROL;
use crate::rng::FastRng;

/// The message text of the CONTROL_MESSAGE health check CloudWatch Logs sends first.
pub const CONTROL_MESSAGE_TEXT: &str =
    "CWL CONTROL MESSAGE: Checking health of destination Firehose.";

const GROUPS: &[&str] = &[
    "/aws/lambda/orders",
    "CloudTrail/logs",
    "/ecs/web",
    "API-Gateway-Execution-Logs_abc123/prod",
];

/// Log messages, one per line, whole lines while they fit in `size` (at least one).
pub(super) fn extracted(rng: &mut FastRng, size: usize, out: &mut Vec<u8>) {
    let end = out.len() + size;
    let mut msg = String::with_capacity(256);
    let mut wrote = false;
    loop {
        message(rng, &mut msg);
        if wrote && out.len() + msg.len() + 1 > end {
            break;
        }
        out.extend_from_slice(msg.as_bytes());
        out.push(b'\n');
        wrote = true;
    }
}

/// A DATA_MESSAGE envelope of about `size` bytes (at least one log event), or the CONTROL_MESSAGE.
pub(super) fn envelope(rng: &mut FastRng, variant: u8, seed: u64, size: usize, out: &mut Vec<u8>) {
    let ts = 1_700_000_000_000 + (seed % 100_000_000_000);
    if variant == CWL_CONTROL {
        let _ = write!(
            out,
            r#"{{"messageType":"CONTROL_MESSAGE","owner":"CloudwatchLogs","logGroup":"","logStream":"","subscriptionFilters":[],"logEvents":[{{"id":"","timestamp":{ts},"message":"{CONTROL_MESSAGE_TEXT}"}}]}}"#
        );
        return;
    }
    let end = out.len() + size;
    let mut msg = String::with_capacity(256);
    let group = rng.pick(GROUPS);
    let _ = write!(
        out,
        r#"{{"messageType":"DATA_MESSAGE","owner":"{:012}","logGroup":"{group}","logStream":"2026/11/{:02}/[$LATEST]{:016x}","subscriptionFilters":["to-firehose"],"logEvents":["#,
        rng.below(1_000_000_000_000),
        rng.range(1, 28),
        rng.next_u64(),
    );
    let mut event = Vec::with_capacity(512);
    let mut first = true;
    let mut event_ts = ts;
    loop {
        event.clear();
        message(rng, &mut msg);
        event_ts += rng.below(2000);
        let _ = write!(
            event,
            r#"{}{{"id":"{:020}{:020}{:016}","timestamp":{event_ts},"message":"#,
            if first { "" } else { "," },
            rng.next_u64(),
            rng.next_u64(),
            rng.below(10_000_000_000_000_000),
        );
        serde_json::to_writer(&mut event, msg.as_str()).expect("string to vec");
        event.push(b'}');
        if !first && out.len() + event.len() + 2 > end {
            break;
        }
        out.extend_from_slice(&event);
        first = false;
    }
    out.extend_from_slice(b"]}");
}

fn message(rng: &mut FastRng, msg: &mut String) {
    use std::fmt::Write as _;
    msg.clear();
    match rng.below(3) {
        0 => {
            let _ = write!(
                msg,
                r#"{{"eventVersion":"1.08","eventName":"{}","awsRegion":"us-east-1","sourceIPAddress":"10.0.{}.{}","requestID":"{:016x}"}}"#,
                rng.pick(&["PutObject", "GetObject", "AssumeRole", "RunInstances"]),
                rng.below(256),
                rng.below(256),
                rng.next_u64()
            );
        }
        1 => {
            let _ = write!(
                msg,
                "START RequestId: {:08x}-{:04x} Version: $LATEST",
                rng.next_u64() as u32,
                rng.below(65_536)
            );
        }
        _ => {
            let _ = write!(
                msg,
                "{} [{}] order {} processed in {} ms",
                rng.pick(&["INFO", "WARN", "ERROR", "DEBUG"]),
                rng.pick(&["main", "worker-1", "worker-2"]),
                rng.below(1_000_000),
                rng.below(5_000)
            );
        }
    }
}

#[derive(Debug, thiserror::Error)]
pub enum CwlEnvelopeError {
    #[error("not JSON: {0}")]
    NotJson(#[from] serde_json::Error),
    #[error("missing or mistyped key {0}")]
    Key(&'static str),
}

/// Check that `bytes` is a CloudWatch Logs envelope with every key a consumer relies on.
pub fn check_envelope(bytes: &[u8]) -> Result<(), CwlEnvelopeError> {
    let v: Value = serde_json::from_slice(bytes)?;
    let s = |k: &'static str| {
        v.get(k)
            .and_then(Value::as_str)
            .ok_or(CwlEnvelopeError::Key(k))
    };
    let kind = s("messageType")?;
    if kind != "DATA_MESSAGE" && kind != "CONTROL_MESSAGE" {
        return Err(CwlEnvelopeError::Key("messageType"));
    }
    s("owner")?;
    s("logGroup")?;
    s("logStream")?;
    v.get("subscriptionFilters")
        .and_then(Value::as_array)
        .ok_or(CwlEnvelopeError::Key("subscriptionFilters"))?;
    let events = v
        .get("logEvents")
        .and_then(Value::as_array)
        .ok_or(CwlEnvelopeError::Key("logEvents"))?;
    if events.is_empty() {
        return Err(CwlEnvelopeError::Key("logEvents"));
    }
    for e in events {
        e.get("id")
            .and_then(Value::as_str)
            .ok_or(CwlEnvelopeError::Key("logEvents[].id"))?;
        e.get("timestamp")
            .and_then(Value::as_u64)
            .ok_or(CwlEnvelopeError::Key("logEvents[].timestamp"))?;
        e.get("message")
            .and_then(Value::as_str)
            .ok_or(CwlEnvelopeError::Key("logEvents[].message"))?;
    }
    Ok(())
}

#[cfg(test)]
mod tests {
    use super::super::{CWL_DATA, PayloadFamily, generate};
    use super::*;

    #[test]
    fn envelopes_have_required_keys() {
        for size in [0usize, 100, 5_000, 300_000] {
            for (family, variant) in [
                (PayloadFamily::Cwl, CWL_DATA),
                (PayloadFamily::Cwl, CWL_CONTROL),
                (PayloadFamily::CwlDecompressed, CWL_DATA),
                (PayloadFamily::CwlDecompressed, CWL_CONTROL),
            ] {
                let mut out = Vec::new();
                generate(family, variant, size as u64, size, &mut out);
                check_envelope(&out).unwrap_or_else(|e| panic!("size {size} v{variant}: {e}"));
                if variant == CWL_DATA && size > 1000 {
                    assert!(out.len() <= size && out.len() > size / 2, "{}", out.len());
                }
            }
        }
    }
}
