use serde::{Deserialize, Serialize};

use base64::Engine as _;
use base64::engine::general_purpose::STANDARD;

/// Where the delivery stream reads from. It decides the top-level source key, the per-record metadata,
/// and for MSK the name of the payload field (`kafkaRecordValue` instead of `data`), both ways.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Hash, PartialOrd, Ord, Serialize, Deserialize)]
#[serde(rename_all = "kebab-case")]
pub enum Source {
    DirectPut,
    Kinesis,
    Msk,
}

impl Source {
    pub const ALL: [Source; 3] = [Source::DirectPut, Source::Kinesis, Source::Msk];

    /// The name users type (`--source direct-put`).
    pub fn name(self) -> &'static str {
        match self {
            Source::DirectPut => "direct-put",
            Source::Kinesis => "kinesis",
            Source::Msk => "msk",
        }
    }

    /// The record key that carries the payload, in events and in responses.
    pub fn data_key(self) -> &'static str {
        match self {
            Source::Msk => "kafkaRecordValue",
            _ => "data",
        }
    }

    pub fn parse(s: &str) -> Option<Source> {
        Source::ALL.into_iter().find(|src| src.name() == s)
    }
}

impl std::fmt::Display for Source {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.write_str(self.name())
    }
}

/// The source-specific top-level key and its value.
#[derive(Debug, Clone, PartialEq, Eq)]
pub enum SourceMeta {
    DirectPut,
    Kinesis { stream_arn: String },
    Msk { cluster_arn: String },
}

impl SourceMeta {
    pub fn source(&self) -> Source {
        match self {
            SourceMeta::DirectPut => Source::DirectPut,
            SourceMeta::Kinesis { .. } => Source::Kinesis,
            SourceMeta::Msk { .. } => Source::Msk,
        }
    }
}

/// One invocation event: one buffered batch.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Event {
    pub invocation_id: String,
    pub delivery_stream_arn: String,
    pub region: String,
    pub source: SourceMeta,
    pub records: Vec<Record>,
}

/// One record of a batch. `data` holds the decoded payload; it is base64-encoded on serialisation under
/// `data`, or `kafkaRecordValue` for MSK events.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Record {
    pub record_id: String,
    /// Epoch milliseconds, a JSON number as in every captured real event.
    pub approximate_arrival_timestamp: u64,
    pub data: Vec<u8>,
    pub kinesis: Option<KinesisRecordMetadata>,
    pub msk: Option<MskRecordMetadata>,
}

#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
#[serde(rename_all = "camelCase")]
pub struct KinesisRecordMetadata {
    pub shard_id: String,
    pub partition_key: String,
    pub approximate_arrival_timestamp: u64,
    pub sequence_number: String,
    /// The number `0` in real captures (AWS's docs sample shows `""`, which typed libraries reject).
    pub subsequence_number: u64,
}

#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
#[serde(rename_all = "camelCase")]
pub struct MskRecordMetadata {
    /// A decimal string, as in AWS's Java library fixture.
    pub offset: String,
    pub partition_id: String,
    pub approximate_arrival_timestamp: u64,
}

impl Event {
    pub fn source(&self) -> Source {
        self.source.source()
    }

    /// The bytes to send: compact JSON, keys in the order real events use.
    pub fn to_json(&self) -> Vec<u8> {
        let mut out = Vec::with_capacity(self.serialized_len_estimate());
        self.write_json(&mut out);
        out
    }

    /// Append the event's JSON to `out`. Written by hand rather than through serde so that each
    /// payload is base64-encoded straight into the output buffer: no temporary string, no second pass
    /// looking for characters to escape (base64 has none). This is the hot path of generation.
    pub fn write_json(&self, out: &mut Vec<u8>) {
        out.extend_from_slice(b"{\"invocationId\":");
        json_str(out, &self.invocation_id);
        match &self.source {
            SourceMeta::DirectPut => {}
            SourceMeta::Kinesis { stream_arn } => {
                out.extend_from_slice(b",\"sourceKinesisStreamArn\":");
                json_str(out, stream_arn);
            }
            SourceMeta::Msk { cluster_arn } => {
                out.extend_from_slice(b",\"sourceMSKArn\":");
                json_str(out, cluster_arn);
            }
        }
        out.extend_from_slice(b",\"deliveryStreamArn\":");
        json_str(out, &self.delivery_stream_arn);
        out.extend_from_slice(b",\"region\":");
        json_str(out, &self.region);
        out.extend_from_slice(b",\"records\":[");
        let data_key: &[u8] = match self.source() {
            Source::Msk => b",\"kafkaRecordValue\":\"",
            _ => b",\"data\":\"",
        };
        for (i, r) in self.records.iter().enumerate() {
            if i > 0 {
                out.push(b',');
            }
            out.extend_from_slice(b"{\"recordId\":");
            json_str(out, &r.record_id);
            out.extend_from_slice(b",\"approximateArrivalTimestamp\":");
            out.extend_from_slice(
                itoa::Buffer::new()
                    .format(r.approximate_arrival_timestamp)
                    .as_bytes(),
            );
            if let Some(k) = &r.kinesis {
                out.extend_from_slice(b",\"kinesisRecordMetadata\":");
                serde_json::to_writer(&mut *out, k).expect("metadata into a Vec");
            }
            if let Some(m) = &r.msk {
                out.extend_from_slice(b",\"mskRecordMetadata\":");
                serde_json::to_writer(&mut *out, m).expect("metadata into a Vec");
            }
            out.extend_from_slice(data_key);
            let start = out.len();
            out.resize(start + crate::wire::base64_len(r.data.len()), 0);
            let written = STANDARD
                .encode_slice(&r.data, &mut out[start..])
                .expect("buffer sized by base64_len");
            out.truncate(start + written);
            out.extend_from_slice(b"\"}");
        }
        out.extend_from_slice(b"]}");
    }

    /// An upper-bound-ish estimate of the serialised size, used to size buffers and to shape batches.
    pub fn serialized_len_estimate(&self) -> usize {
        256 + self
            .records
            .iter()
            .map(Record::serialized_len_estimate)
            .sum::<usize>()
    }

    /// Record ids in batch order.
    pub fn record_ids(&self) -> impl Iterator<Item = &str> {
        self.records.iter().map(|r| r.record_id.as_str())
    }

    /// Parse an event this crate wrote (or any well-formed real one). Quirky real samples need
    /// [`crate::wire::EventView`] instead, which never rejects.
    pub fn from_json(bytes: &[u8]) -> Result<Event, serde_json::Error> {
        let raw: RawEvent = serde_json::from_slice(bytes)?;
        raw.try_into().map_err(serde::de::Error::custom)
    }
}

impl Record {
    /// Bytes this record adds to the serialised event (keys, quotes, base64 and metadata).
    pub fn serialized_len_estimate(&self) -> usize {
        let meta = if self.kinesis.is_some() {
            230
        } else if self.msk.is_some() {
            110
        } else {
            0
        };
        80 + self.record_id.len() * 6 + crate::wire::base64_len(self.data.len()) + meta
    }
}

/// A JSON string literal, escaped as serde_json escapes it.
fn json_str(out: &mut Vec<u8>, s: &str) {
    serde_json::to_writer(&mut *out, s).expect("string into a Vec");
}

/// The strict parse used by [`Event::from_json`]: the shapes this crate writes.
#[derive(Deserialize)]
#[serde(rename_all = "camelCase")]
struct RawEvent {
    invocation_id: String,
    #[serde(default)]
    delivery_stream_arn: String,
    #[serde(default)]
    region: String,
    source_kinesis_stream_arn: Option<String>,
    #[serde(rename = "sourceMSKArn")]
    source_msk_arn: Option<String>,
    records: Vec<RawRecord>,
}

#[derive(Deserialize)]
#[serde(rename_all = "camelCase")]
struct RawRecord {
    record_id: String,
    approximate_arrival_timestamp: u64,
    data: Option<String>,
    kafka_record_value: Option<String>,
    kinesis_record_metadata: Option<KinesisRecordMetadata>,
    msk_record_metadata: Option<MskRecordMetadata>,
}

impl TryFrom<RawEvent> for Event {
    type Error = String;

    fn try_from(raw: RawEvent) -> Result<Self, Self::Error> {
        let source = match (raw.source_kinesis_stream_arn, raw.source_msk_arn) {
            (_, Some(cluster_arn)) => SourceMeta::Msk { cluster_arn },
            (Some(stream_arn), None) => SourceMeta::Kinesis { stream_arn },
            (None, None) => SourceMeta::DirectPut,
        };
        let records = raw
            .records
            .into_iter()
            .enumerate()
            .map(|(i, r)| {
                let b64 = r.data.or(r.kafka_record_value).ok_or_else(|| {
                    format!(
                        "record {i} ({}) has neither data nor kafkaRecordValue",
                        r.record_id
                    )
                })?;
                let data = STANDARD
                    .decode(b64.as_bytes())
                    .map_err(|e| format!("record {i} ({}): {e}", r.record_id))?;
                Ok(Record {
                    record_id: r.record_id,
                    approximate_arrival_timestamp: r.approximate_arrival_timestamp,
                    data,
                    kinesis: r.kinesis_record_metadata,
                    msk: r.msk_record_metadata,
                })
            })
            .collect::<Result<Vec<_>, String>>()?;
        Ok(Event {
            invocation_id: raw.invocation_id,
            delivery_stream_arn: raw.delivery_stream_arn,
            region: raw.region,
            source,
            records,
        })
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    fn sample(source: SourceMeta) -> Event {
        let kinesis = matches!(source, SourceMeta::Kinesis { .. });
        let msk = matches!(source, SourceMeta::Msk { .. });
        Event {
            invocation_id: "inv-1".into(),
            delivery_stream_arn: "arn:aws:firehose:us-east-1:123456789012:deliverystream/s".into(),
            region: "us-east-1".into(),
            source,
            records: vec![Record {
                record_id: "r1".into(),
                approximate_arrival_timestamp: 1_700_000_000_123,
                data: b"hello".to_vec(),
                kinesis: kinesis.then(|| KinesisRecordMetadata {
                    shard_id: "shardId-000000000000".into(),
                    partition_key: "pk".into(),
                    approximate_arrival_timestamp: 1_700_000_000_123,
                    sequence_number: "4954".into(),
                    subsequence_number: 0,
                }),
                msk: msk.then(|| MskRecordMetadata {
                    offset: "0".into(),
                    partition_id: "1".into(),
                    approximate_arrival_timestamp: 1_700_000_000_123,
                }),
            }],
        }
    }

    #[test]
    fn direct_put_has_no_source_key_and_numeric_timestamps() {
        let json = String::from_utf8(sample(SourceMeta::DirectPut).to_json()).unwrap();
        assert_eq!(
            json,
            r#"{"invocationId":"inv-1","deliveryStreamArn":"arn:aws:firehose:us-east-1:123456789012:deliverystream/s","region":"us-east-1","records":[{"recordId":"r1","approximateArrivalTimestamp":1700000000123,"data":"aGVsbG8="}]}"#
        );
        assert!(!json.contains("null"));
    }

    #[test]
    fn msk_uses_kafka_record_value() {
        let json = String::from_utf8(
            sample(SourceMeta::Msk {
                cluster_arn: "arn:aws:kafka:x".into(),
            })
            .to_json(),
        )
        .unwrap();
        assert!(json.contains(r#""sourceMSKArn":"arn:aws:kafka:x""#));
        assert!(json.contains(r#""kafkaRecordValue":"aGVsbG8=""#));
        assert!(!json.contains(r#""data""#));
    }

    #[test]
    fn roundtrip_every_source() {
        for src in [
            SourceMeta::DirectPut,
            SourceMeta::Kinesis {
                stream_arn: "arn:aws:kinesis:us-east-1:1:stream/s".into(),
            },
            SourceMeta::Msk {
                cluster_arn: "arn:aws:kafka:x".into(),
            },
        ] {
            let ev = sample(src);
            assert_eq!(Event::from_json(&ev.to_json()).unwrap(), ev);
        }
    }
}
