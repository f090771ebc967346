//! What Firehose does with one judged answer: pure, `(event, invocation, verdict) → Settlement`.
//!
//! The rules, from FIREHOSE_CONTRACT.md §3:
//! - A batch that failed as a whole (function error, timeout, a response Firehose cannot use) goes to
//!   the error output record by record, each with its **original** data, after Firehose's retries.
//! - Otherwise each record follows its `result`: `Ok` data is delivered (decoded, concatenated with
//!   no delimiter added), `ProcessingFailed` goes to the error output with
//!   `Lambda.ProcessingFailedStatus` after one attempt, `Dropped` is gone.
//! - With dynamic partitioning (`!{partitionKeyFromLambda:…}` in the prefix) an `Ok` record without
//!   its key goes to the error output with `DynamicPartitioning.MetadataExtractionFailed`.

use std::borrow::Cow;

use base64::Engine as _;
use base64::engine::{DecodePaddingMode, GeneralPurpose, GeneralPurposeConfig};
use serde::{Deserialize, Serialize};
use serde_json::Value;

use super::prefix::S3Prefix;
use crate::contract::{CheckId, Item, ResponseView, Verdict};
use crate::invocation::{Invocation, Outcome};

/// Firehose's `NumberOfRetries` default (ProcessorParameter); a failed batch is tried 1 + this.
pub const DEFAULT_RETRIES: u32 = 3;

/// Firehose's own error messages, where the reference records them.
const FUNCTION_ERROR: &str =
    "The Lambda function was successfully invoked but it returned an error result.";
const MISSING_RECORD_ID: &str = "One or more record Ids were not returned. Ensure that the Lambda function returns all received record Ids.";
const PROCESSING_FAILED: &str = "ProcessingFailed status set for record";

/// How records are filed and failed records described.
#[derive(Debug, Clone)]
pub struct Settings {
    pub s3_prefix: Option<S3Prefix>,
    /// The function's name in `lambdaARN` (the ARN's region and account come from the event).
    pub function_name: String,
    /// Firehose's `NumberOfRetries`.
    pub retries: u32,
}

impl Default for Settings {
    fn default() -> Self {
        Settings {
            s3_prefix: None,
            function_name: "function".into(),
            retries: DEFAULT_RETRIES,
        }
    }
}

/// One line of `processing-failed/`, keys and types exactly as Firehose writes them.
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
#[serde(rename_all = "camelCase")]
pub struct FailedRecord {
    /// The record's original data, base64, as the event carried it.
    pub raw_data: String,
    pub error_code: String,
    pub error_message: String,
    pub attempts_made: u32,
    /// The record's `approximateArrivalTimestamp` (epoch ms).
    pub arrival_timestamp: Value,
    pub attempt_ending_timestamp: u64,
    #[serde(rename = "lambdaARN")]
    pub lambda_arn: String,
}

/// What became of one batch.
#[derive(Debug, Clone, Default, PartialEq)]
pub struct Settlement {
    /// Delivered data per S3 prefix (`""` without `--s3-prefix`), records concatenated in batch
    /// order: what one S3 object per prefix would hold.
    pub objects: Vec<(String, Vec<u8>)>,
    pub ok_records: u64,
    /// `Ok` records whose data does not end in `\n`: they run into the next record.
    pub undelimited: u64,
    pub failed: Vec<FailedRecord>,
    /// Ids answered `Dropped`.
    pub dropped: Vec<String>,
    /// The error code when the whole batch failed.
    pub batch_failure: Option<String>,
    /// The event itself could not be read (a raw corpus file), so nothing can be said.
    pub unreadable: bool,
}

impl Settlement {
    /// Bytes this settlement adds to the files.
    pub fn size(&self) -> u64 {
        let objects: usize = self.objects.iter().map(|(_, b)| b.len()).sum();
        let failed: usize = self.failed.iter().map(|f| f.raw_data.len() + 300).sum();
        let dropped: usize = self.dropped.iter().map(|d| d.len() + 32).sum();
        (objects + failed + dropped) as u64
    }
}

#[derive(Deserialize)]
#[serde(rename_all = "camelCase")]
struct EventIn<'a> {
    #[serde(borrow, default)]
    region: Option<Cow<'a, str>>,
    #[serde(borrow, default)]
    delivery_stream_arn: Option<Cow<'a, str>>,
    #[serde(borrow, default)]
    records: Vec<RecordIn<'a>>,
}

#[derive(Deserialize)]
#[serde(rename_all = "camelCase")]
struct RecordIn<'a> {
    #[serde(default)]
    record_id: Value,
    #[serde(borrow, default)]
    data: Option<Cow<'a, str>>,
    #[serde(borrow, default)]
    kafka_record_value: Option<Cow<'a, str>>,
    #[serde(default)]
    approximate_arrival_timestamp: Value,
}

impl RecordIn<'_> {
    /// The id as the oracle matches it (EventView): a string, or a non-string's JSON text.
    fn id(&self) -> String {
        match &self.record_id {
            Value::String(s) => s.clone(),
            Value::Null => String::new(),
            other => other.to_string(),
        }
    }

    fn raw(&self) -> String {
        self.data
            .as_deref()
            .or(self.kafka_record_value.as_deref())
            .unwrap_or("")
            .to_string()
    }
}

/// Padding optional: unpadded data is only a warning (Firehose's decoder is undocumented here).
const LENIENT: GeneralPurpose = GeneralPurpose::new(
    &base64::alphabet::STANDARD,
    GeneralPurposeConfig::new().with_decode_padding_mode(DecodePaddingMode::Indifferent),
);

/// Settle one batch: `event` as sent, `inv` as answered, `verdict` as judged; `now_ms` is the
/// attempt's end (epoch ms).
pub fn settle(
    event: &[u8],
    inv: &Invocation,
    verdict: &Verdict,
    settings: &Settings,
    now_ms: u64,
) -> Settlement {
    let mut out = Settlement::default();
    let Ok(ev) = serde_json::from_slice::<EventIn<'_>>(event) else {
        out.unreadable = true;
        return out;
    };
    let lambda_arn = lambda_arn(&ev, &settings.function_name);
    let failed = |r: &RecordIn<'_>, code: &str, message: &str, attempts: u32| FailedRecord {
        raw_data: r.raw(),
        error_code: code.to_string(),
        error_message: message.to_string(),
        attempts_made: attempts,
        arrival_timestamp: r.approximate_arrival_timestamp.clone(),
        attempt_ending_timestamp: now_ms,
        lambda_arn: lambda_arn.clone(),
    };

    let items = match batch_failure(inv, verdict) {
        Err((code, message)) => {
            let attempts = 1 + settings.retries;
            out.failed = ev
                .records
                .iter()
                .map(|r| failed(r, code, &message, attempts))
                .collect();
            out.batch_failure = Some(code.to_string());
            return out;
        }
        Ok(items) => items,
    };

    let msk = ev.records.iter().any(|r| r.kafka_record_value.is_some());
    let batch_ms = ev
        .records
        .iter()
        .filter_map(|r| r.approximate_arrival_timestamp.as_u64())
        .min()
        .unwrap_or(now_ms);
    // Input ids → indices; an id sent twice (raw corpus files) is answered copy by copy.
    let mut by_id: std::collections::HashMap<String, Vec<usize>> = Default::default();
    for (i, r) in ev.records.iter().enumerate().rev() {
        by_id.entry(r.id()).or_default().push(i);
    }
    for item in &items {
        let Item::Record(r) = item else { continue };
        let Some(id) = r.record_id.as_str() else {
            continue;
        };
        let Some(index) = by_id.get_mut(id).and_then(Vec::pop) else {
            continue;
        };
        let original = &ev.records[index];
        match r.result.as_str() {
            Some("Ok") => {
                let payload = if msk { &r.kafka_record_value } else { &r.data };
                let Ok(data) = LENIENT.decode(payload.as_str().unwrap_or("")) else {
                    // Only reachable with data_is_base64 turned off.
                    out.failed.push(failed(
                        original,
                        CheckId::DataIsBase64.code(),
                        "data is not base64",
                        1,
                    ));
                    continue;
                };
                let prefix = match &settings.s3_prefix {
                    None => String::new(),
                    Some(p) => match p.evaluate(r.metadata.as_deref(), batch_ms) {
                        Ok(prefix) => prefix,
                        Err(missing) => {
                            out.failed.push(failed(
                                original,
                                CheckId::PartitionKeysValid.code(),
                                &format!(
                                    "partition key `{}` is missing from metadata.partitionKeys or empty",
                                    missing.0
                                ),
                                1,
                            ));
                            continue;
                        }
                    },
                };
                out.ok_records += 1;
                if data.last().is_some_and(|b| *b != b'\n') {
                    out.undelimited += 1;
                }
                match out.objects.iter_mut().find(|(p, _)| *p == prefix) {
                    Some((_, bytes)) => bytes.extend_from_slice(&data),
                    None => out.objects.push((prefix, data)),
                }
            }
            Some("ProcessingFailed") => out.failed.push(failed(
                original,
                "Lambda.ProcessingFailedStatus",
                PROCESSING_FAILED,
                1,
            )),
            Some("Dropped") => out.dropped.push(id.to_string()),
            // Illegal results fail the batch (see batch_failure) unless result_is_legal is off.
            _ => {}
        }
    }
    out
}

/// `Err((code, message))` when Firehose would fail the whole batch; else the response's records.
///
/// Lambda reports a timed-out function as a function error, so a timeout is filed under
/// `Lambda.FunctionError`. Contract violations of the response as a whole keep their check's code.
/// `partition_keys_valid` is judged per record (above), `deterministic` is invisible to one attempt.
fn batch_failure<'a>(
    inv: &'a Invocation,
    verdict: &Verdict,
) -> Result<Vec<Item<'a>>, (&'static str, String)> {
    let function_error = |what: String| ("Lambda.FunctionError", what);
    if inv.outcome == Outcome::TimedOut {
        return Err(function_error(FUNCTION_ERROR.into()));
    }
    if matches!(inv.outcome, Outcome::Broken(_)) || inv.function_error.is_some() {
        return Err(function_error(FUNCTION_ERROR.into()));
    }
    let first = verdict
        .failure_keys()
        .into_iter()
        .map(|(check, _)| check)
        .filter(|c| !matches!(c, CheckId::PartitionKeysValid | CheckId::Deterministic))
        .min();
    if let Some(check) = first {
        let message = match check {
            CheckId::InvocationSucceeded | CheckId::WithinTimeout => {
                return Err(function_error(FUNCTION_ERROR.into()));
            }
            CheckId::NoMissingRecordIds => MISSING_RECORD_ID.to_string(),
            _ => verdict
                .violations
                .iter()
                .find(|v| v.check == check)
                .map(|v| v.message.clone())
                .unwrap_or_else(|| check.summary().to_string()),
        };
        return Err((check.code(), message));
    }
    match ResponseView::parse(&inv.body) {
        Ok(ResponseView::Object {
            records: Some(Ok(items)),
            ..
        }) => Ok(items),
        // Only reachable with the response checks turned off.
        _ => Err((
            CheckId::ResponseIsJson.code(),
            "the response has no records array Firehose can read".into(),
        )),
    }
}

/// `arn:aws:lambda:REGION:ACCOUNT:function:NAME`, region and account from the event.
fn lambda_arn(ev: &EventIn<'_>, function: &str) -> String {
    let region = ev.region.as_deref().unwrap_or("us-east-1");
    let account = ev
        .delivery_stream_arn
        .as_deref()
        .and_then(|arn| arn.split(':').nth(4))
        .filter(|a| !a.is_empty())
        .unwrap_or("123456789012");
    format!("arn:aws:lambda:{region}:{account}:function:{function}")
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::contract::{self, CheckSet};
    use crate::invocation::FunctionError;
    use bytes::Bytes;
    use firehose_generators::wire::EventView;
    use std::time::Duration;

    const EVENT: &str = r#"{"invocationId":"i","deliveryStreamArn":"arn:aws:firehose:eu-west-1:111122223333:deliverystream/s","region":"eu-west-1","records":[
        {"recordId":"a","approximateArrivalTimestamp":1700000000000,"data":"YQ=="},
        {"recordId":"b","approximateArrivalTimestamp":1700000000001,"data":"Yg=="},
        {"recordId":"c","approximateArrivalTimestamp":1700000000002,"data":"Yw=="}]}"#;

    fn run(body: &str, settings: &Settings) -> Settlement {
        let inv = Invocation::answered(Some(200), Bytes::from(body.to_string()), Duration::ZERO);
        judge_and_settle(inv, settings)
    }

    fn judge_and_settle(inv: Invocation, settings: &Settings) -> Settlement {
        let view = EventView::parse(EVENT.as_bytes()).unwrap();
        let verdict = contract::check(&view, &inv, &CheckSet::default());
        settle(EVENT.as_bytes(), &inv, &verdict, settings, 42)
    }

    #[test]
    fn each_result_goes_its_way() {
        let s = run(
            r#"{"records":[{"recordId":"a","result":"Ok","data":"eDEK"},{"recordId":"b","result":"ProcessingFailed"},{"recordId":"c","result":"Dropped"}]}"#,
            &Settings::default(),
        );
        assert_eq!(s.objects, vec![(String::new(), b"x1\n".to_vec())]);
        assert_eq!(s.dropped, vec!["c".to_string()]);
        assert_eq!(s.failed.len(), 1);
        let f = &s.failed[0];
        assert_eq!(f.raw_data, "Yg==");
        assert_eq!(f.error_code, "Lambda.ProcessingFailedStatus");
        assert_eq!(f.attempts_made, 1);
        assert_eq!(f.arrival_timestamp, Value::from(1700000000001u64));
        assert_eq!(f.attempt_ending_timestamp, 42);
        assert_eq!(
            f.lambda_arn,
            "arn:aws:lambda:eu-west-1:111122223333:function:function"
        );
        let line = serde_json::to_string(f).unwrap();
        assert!(
            line.starts_with(r#"{"rawData":"Yg==","errorCode":"#),
            "{line}"
        );
        assert!(line.contains(r#""lambdaARN":"#));
        assert_eq!(s.undelimited, 0);
    }

    #[test]
    fn failed_batches_fail_every_record_with_retries() {
        let mut inv = Invocation::answered(Some(200), Bytes::from("{}"), Duration::ZERO);
        inv.function_error = Some(FunctionError {
            kind: "Unhandled".into(),
            message: None,
        });
        let s = judge_and_settle(inv, &Settings::default());
        assert_eq!(s.batch_failure.as_deref(), Some("Lambda.FunctionError"));
        let raw: Vec<&str> = s.failed.iter().map(|f| f.raw_data.as_str()).collect();
        assert_eq!(raw, ["YQ==", "Yg==", "Yw=="]);
        assert!(s.failed.iter().all(|f| f.attempts_made == 4));
        assert!(s.objects.is_empty());

        let s = run(
            r#"{"records":[{"recordId":"a","result":"Ok","data":"eDEK"}]}"#,
            &Settings::default(),
        );
        assert_eq!(s.batch_failure.as_deref(), Some("Lambda.MissingRecordId"));
        assert_eq!(s.failed.len(), 3);
        assert!(s.objects.is_empty());

        let s = judge_and_settle(Invocation::timed_out(Duration::ZERO), &Settings::default());
        assert_eq!(s.batch_failure.as_deref(), Some("Lambda.FunctionError"));
        let s = run("not json", &Settings::default());
        assert_eq!(
            s.batch_failure.as_deref(),
            Some("Lambda.JsonProcessingException")
        );
    }

    #[test]
    fn prefixes_file_records_and_missing_keys_fail_them() {
        let settings = Settings {
            s3_prefix: Some(S3Prefix::parse("c=!{partitionKeyFromLambda:c}/").unwrap()),
            ..Settings::default()
        };
        let s = run(
            r#"{"records":[
              {"recordId":"a","result":"Ok","data":"YQ==","metadata":{"partitionKeys":{"c":"1"}}},
              {"recordId":"b","result":"Ok","data":"Yg==","metadata":{"partitionKeys":{"c":"2"}}},
              {"recordId":"c","result":"Ok","data":"Yw=="}]}"#,
            &settings,
        );
        assert_eq!(
            s.objects,
            vec![
                ("c=1/".to_string(), b"a".to_vec()),
                ("c=2/".into(), b"b".to_vec())
            ]
        );
        assert_eq!(s.undelimited, 2);
        assert_eq!(s.failed.len(), 1);
        assert_eq!(
            s.failed[0].error_code,
            "DynamicPartitioning.MetadataExtractionFailed"
        );
        assert_eq!(s.failed[0].raw_data, "Yw==");
    }
}
