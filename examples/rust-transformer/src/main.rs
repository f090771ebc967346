//! A Firehose transformer as Rust users write one: `lambda_runtime` + `aws_lambda_events`.
//!
//! It normalises records to newline-delimited JSON: a JSON record is re-serialised compactly, a
//! text record is kept as is, and both get exactly one trailing newline so the objects Firehose
//! writes to S3 split into lines. Bytes that are not UTF-8 (binary or still-compressed payloads)
//! are answered `ProcessingFailed`, and Firehose keeps their originals under `processing-failed/`.
//! Records that would push the response past Lambda's 6 MB limit are answered `ProcessingFailed`
//! too, rather than failing the whole batch.
//!
//! Run it locally against the embedded Lambda Runtime API, exactly as Lambda would run it:
//!
//! ```text
//! cargo build -p rust-transformer
//! firehose-harness check --target exec:./target/debug/bootstrap
//! ```
//!
//! Expected: every check passes and the exit code is 0. `--instances 4` runs four copies at once.

use aws_lambda_events::event::firehose::{
    KinesisFirehoseEvent, KinesisFirehoseResponse, KinesisFirehoseResponseRecord,
};
use lambda_runtime::{Error, LambdaEvent, service_fn};

/// Lambda's response limit (6 MiB) less room for the JSON around the records.
const RESPONSE_BUDGET: usize = 6 * 1024 * 1024 - 64 * 1024;

#[tokio::main(flavor = "current_thread")]
async fn main() -> Result<(), Error> {
    lambda_runtime::run(service_fn(handler)).await
}

async fn handler(
    event: LambdaEvent<KinesisFirehoseEvent>,
) -> Result<KinesisFirehoseResponse, Error> {
    let mut budget = RESPONSE_BUDGET;
    let mut response = KinesisFirehoseResponse::default();
    for record in event.payload.records {
        let mut out = KinesisFirehoseResponseRecord::default();
        out.record_id = record.record_id;
        match transform(&record.data.0) {
            Some(data) if encoded_len(&data) + 128 <= budget => {
                budget -= encoded_len(&data) + 128;
                out.result = Some("Ok".into());
                out.data.0 = data;
            }
            _ => {
                budget = budget.saturating_sub(128);
                out.result = Some("ProcessingFailed".into());
            }
        }
        response.records.push(out);
    }
    Ok(response)
}

/// One record's new bytes, or `None` when it cannot be read as text.
fn transform(data: &[u8]) -> Option<Vec<u8>> {
    let text = std::str::from_utf8(data).ok()?;
    let mut line = match serde_json::from_str::<serde_json::Value>(text) {
        Ok(json) => serde_json::to_string(&json).ok()?,
        Err(_) => text.trim_end_matches(['\r', '\n']).to_string(),
    };
    line.push('\n');
    Some(line.into_bytes())
}

/// Length of `data` once base64-encoded.
fn encoded_len(data: &[u8]) -> usize {
    data.len().div_ceil(3) * 4
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn json_is_compacted_and_text_kept_each_with_one_newline() {
        assert_eq!(transform(b"{ \"a\" : 1 }").unwrap(), b"{\"a\":1}\n");
        assert_eq!(transform(b"plain line\n").unwrap(), b"plain line\n");
        assert_eq!(transform(b"").unwrap(), b"\n");
        assert_eq!(transform(&[0x1f, 0x8b, 0xff]), None);
    }
}
