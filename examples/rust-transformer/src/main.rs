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
//!
//! Two switches make a deployment of it slow or wrong on purpose, to see the harness catch it (the
//! container tests use them): `EXAMPLE_DELAY_MS=N` waits N ms per invocation, as a slow downstream
//! call would; `EXAMPLE_FAULT=drop-last-record` forgets each batch's last record, which Firehose
//! reports as a missing record id (`--env EXAMPLE_FAULT=drop-last-record`: exit 1,
//! `no_missing_record_ids`). Unset, the function is as described above.

use aws_lambda_events::event::firehose::{
    KinesisFirehoseEvent, KinesisFirehoseResponse, KinesisFirehoseResponseRecord,
};
use lambda_runtime::{Error, LambdaEvent, service_fn};

/// Lambda's response limit (6 MiB) less room for the JSON around the records.
const RESPONSE_BUDGET: usize = 6 * 1024 * 1024 - 64 * 1024;

/// The switches described above, read once at init.
#[derive(Debug, Clone, Copy, Default)]
struct Switches {
    delay: Option<std::time::Duration>,
    drop_last_record: bool,
}

impl Switches {
    fn from_env() -> Result<Switches, Error> {
        let delay = match std::env::var("EXAMPLE_DELAY_MS") {
            Ok(ms) => Some(std::time::Duration::from_millis(
                ms.trim().parse().map_err(|_| {
                    format!("EXAMPLE_DELAY_MS: `{ms}` is not a number of milliseconds")
                })?,
            )),
            Err(_) => None,
        };
        let drop_last_record = match std::env::var("EXAMPLE_FAULT").as_deref() {
            Ok("drop-last-record") => true,
            Ok(other) => Err(format!(
                "EXAMPLE_FAULT: unknown fault `{other}`; known: drop-last-record"
            ))?,
            Err(_) => false,
        };
        Ok(Switches {
            delay,
            drop_last_record,
        })
    }
}

#[tokio::main(flavor = "current_thread")]
async fn main() -> Result<(), Error> {
    let switches = Switches::from_env()?;
    lambda_runtime::run(service_fn(move |event| handler(event, switches))).await
}

async fn handler(
    event: LambdaEvent<KinesisFirehoseEvent>,
    switches: Switches,
) -> Result<KinesisFirehoseResponse, Error> {
    if let Some(delay) = switches.delay {
        tokio::time::sleep(delay).await;
    }
    let mut response = transform_batch(event);
    if switches.drop_last_record {
        response.records.pop();
    }
    Ok(response)
}

fn transform_batch(event: LambdaEvent<KinesisFirehoseEvent>) -> KinesisFirehoseResponse {
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
    response
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
