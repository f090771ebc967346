//! Real sample files (the format of `shared/fixtures/real-events/`): load every one, keep its raw JSON,
//! name its quirks, and normalise it into an event Firehose itself could have sent.
//!
//! Real samples are messy — duplicate recordIds, broken base64, ISO timestamps, `""` subsequence numbers,
//! key typos, `null` for absent keys. Loading never fails on any of that: only a file that is not JSON at
//! all, or an unreadable directory, is an error.

use std::path::{Path, PathBuf};

use base64::Engine as _;
use base64::engine::general_purpose::{STANDARD, STANDARD_NO_PAD};
use serde_json::{Map, Value};

use super::{Event, EventView, KinesisRecordMetadata, MskRecordMetadata, Record, SourceMeta};

/// One file of a corpus.
#[derive(Debug, Clone)]
pub struct CorpusFile {
    pub path: PathBuf,
    /// The file's bytes exactly as read.
    pub raw: Vec<u8>,
    pub value: Value,
    /// True for transformer *responses* (file name contains `response`), false for events.
    pub is_response: bool,
    /// For events: the lenient view; `None` when not even a `records` array was found.
    pub view: Option<EventView>,
    /// What Firehose itself would never send.
    pub quirks: Vec<CorpusQuirk>,
}

/// A way a real sample differs from what Firehose sends.
#[derive(Debug, Clone, PartialEq, Eq)]
pub enum CorpusQuirk {
    DuplicateRecordId { record: usize, id: String },
    MissingRecordId { record: usize },
    InvalidBase64 { record: usize },
    TimestampNotNumber { record: usize, field: &'static str },
    SubsequenceNotNumber { record: usize },
    NullKey { key: String },
    UnknownKey { key: String },
    MissingKey { key: &'static str },
    NoRecords,
}

impl std::fmt::Display for CorpusQuirk {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        match self {
            CorpusQuirk::DuplicateRecordId { record, id } => {
                write!(f, "record {record} repeats recordId {id}")
            }
            CorpusQuirk::MissingRecordId { record } => write!(f, "record {record} has no recordId"),
            CorpusQuirk::InvalidBase64 { record } => {
                write!(f, "record {record} carries data that is not strict base64")
            }
            CorpusQuirk::TimestampNotNumber { record, field } => {
                write!(
                    f,
                    "record {record}: {field} is not an epoch-millisecond number"
                )
            }
            CorpusQuirk::SubsequenceNotNumber { record } => {
                write!(f, "record {record}: subsequenceNumber is not a number")
            }
            CorpusQuirk::NullKey { key } => write!(f, "key {key} is null instead of absent"),
            CorpusQuirk::UnknownKey { key } => write!(f, "unknown top-level key {key}"),
            CorpusQuirk::MissingKey { key } => write!(f, "key {key} is missing"),
            CorpusQuirk::NoRecords => write!(f, "no records array"),
        }
    }
}

#[derive(Debug, thiserror::Error)]
pub enum CorpusError {
    #[error("cannot read corpus {path}: {source}")]
    Io {
        path: PathBuf,
        source: std::io::Error,
    },
    #[error("corpus file {path} is not JSON: {source}")]
    NotJson {
        path: PathBuf,
        source: serde_json::Error,
    },
    #[error("corpus {path} holds no .json event files")]
    Empty { path: PathBuf },
}

const KNOWN_TOP_LEVEL: [&str; 6] = [
    "invocationId",
    "deliveryStreamArn",
    "region",
    "records",
    "sourceKinesisStreamArn",
    "sourceMSKArn",
];

/// Every `.json` file below `dir`, sorted by path so runs are reproducible.
pub fn load_corpus_dir(dir: &Path) -> Result<Vec<CorpusFile>, CorpusError> {
    let mut paths = Vec::new();
    collect_json(dir, &mut paths)?;
    paths.sort();
    let files = paths
        .iter()
        .map(|p| load_corpus_file(p))
        .collect::<Result<Vec<_>, _>>()?;
    if files.iter().all(|f| f.is_response) {
        return Err(CorpusError::Empty {
            path: dir.to_path_buf(),
        });
    }
    Ok(files)
}

fn collect_json(dir: &Path, out: &mut Vec<PathBuf>) -> Result<(), CorpusError> {
    let io = |source| CorpusError::Io {
        path: dir.to_path_buf(),
        source,
    };
    for entry in std::fs::read_dir(dir).map_err(io)? {
        let path = entry.map_err(io)?.path();
        if path.is_dir() {
            collect_json(&path, out)?;
        } else if path.extension().is_some_and(|e| e == "json") {
            out.push(path);
        }
    }
    Ok(())
}

pub fn load_corpus_file(path: &Path) -> Result<CorpusFile, CorpusError> {
    let raw = std::fs::read(path).map_err(|source| CorpusError::Io {
        path: path.to_path_buf(),
        source,
    })?;
    let value: Value = serde_json::from_slice(&raw).map_err(|source| CorpusError::NotJson {
        path: path.to_path_buf(),
        source,
    })?;
    let is_response = path
        .file_name()
        .and_then(|n| n.to_str())
        .is_some_and(|n| n.to_ascii_lowercase().contains("response"));
    let view = EventView::from_value(&value).ok();
    let quirks = if is_response {
        Vec::new()
    } else {
        find_quirks(&value)
    };
    Ok(CorpusFile {
        path: path.to_path_buf(),
        raw,
        value,
        is_response,
        view,
        quirks,
    })
}

fn find_quirks(value: &Value) -> Vec<CorpusQuirk> {
    let mut quirks = Vec::new();
    let Some(obj) = value.as_object() else {
        quirks.push(CorpusQuirk::NoRecords);
        return quirks;
    };
    for (key, v) in obj {
        if !KNOWN_TOP_LEVEL.contains(&key.as_str()) {
            quirks.push(CorpusQuirk::UnknownKey { key: key.clone() });
        } else if v.is_null() {
            quirks.push(CorpusQuirk::NullKey { key: key.clone() });
        }
    }
    for key in ["invocationId", "deliveryStreamArn", "region"] {
        if !obj.contains_key(key) {
            quirks.push(CorpusQuirk::MissingKey { key });
        }
    }
    let Some(records) = obj.get("records").and_then(Value::as_array) else {
        quirks.push(CorpusQuirk::NoRecords);
        return quirks;
    };
    let mut seen = std::collections::HashSet::new();
    for (i, r) in records.iter().enumerate() {
        match r.get("recordId").and_then(Value::as_str) {
            Some(id) if !seen.insert(id.to_string()) => {
                quirks.push(CorpusQuirk::DuplicateRecordId {
                    record: i,
                    id: id.to_string(),
                })
            }
            Some(_) => {}
            None => quirks.push(CorpusQuirk::MissingRecordId { record: i }),
        }
        let payload = r.get("data").or_else(|| r.get("kafkaRecordValue"));
        if payload
            .and_then(Value::as_str)
            .is_none_or(|s| STANDARD.decode(s).is_err())
        {
            quirks.push(CorpusQuirk::InvalidBase64 { record: i });
        }
        // Epoch milliseconds, where the record has them and inside its Kinesis metadata.
        let kinesis = r.get("kinesisRecordMetadata");
        let stamps = [
            (Some(r), "approximateArrivalTimestamp"),
            (kinesis, "kinesisRecordMetadata.approximateArrivalTimestamp"),
        ];
        for (holder, field) in stamps {
            let name = field.rsplit('.').next().unwrap_or(field);
            if holder.is_some_and(|h| !h.get(name).is_some_and(Value::is_u64)) {
                quirks.push(CorpusQuirk::TimestampNotNumber { record: i, field });
            }
        }
        if let Some(k) = kinesis {
            if !k.get("subsequenceNumber").is_some_and(Value::is_u64) {
                quirks.push(CorpusQuirk::SubsequenceNotNumber { record: i });
            }
        }
    }
    quirks
}

impl CorpusFile {
    /// The event Firehose could have sent in this sample's place: unique ids, numeric timestamps, strict
    /// base64 of leniently decoded data, no unknown or null keys. `None` for responses and files without
    /// records.
    pub fn normalised(&self) -> Option<Event> {
        if self.is_response {
            return None;
        }
        let obj = self.value.as_object()?;
        let records = obj.get("records")?.as_array()?;
        let view = self.view.as_ref()?;
        let str_of = |key: &str| obj.get(key).and_then(Value::as_str).map(str::to_string);
        let source = match view.source {
            super::Source::DirectPut => SourceMeta::DirectPut,
            super::Source::Kinesis => SourceMeta::Kinesis {
                stream_arn: str_of("sourceKinesisStreamArn").unwrap_or_else(|| {
                    "arn:aws:kinesis:us-east-1:123456789012:stream/corpus".into()
                }),
            },
            super::Source::Msk => SourceMeta::Msk {
                cluster_arn: str_of("sourceMSKArn").unwrap_or_default(),
            },
        };
        let mut seen = std::collections::HashSet::new();
        let fallback_ts = 1_700_000_000_000;
        let out: Vec<Record> = records
            .iter()
            .enumerate()
            .map(|(i, r)| {
                let r = r.as_object().cloned().unwrap_or_else(Map::new);
                let mut id = r
                    .get("recordId")
                    .and_then(Value::as_str)
                    .map(str::to_string)
                    .unwrap_or_else(|| format!("corpus-record-{i}"));
                if !seen.insert(id.clone()) {
                    id = format!("{id}-{i}");
                    seen.insert(id.clone());
                }
                let ts = r
                    .get("approximateArrivalTimestamp")
                    .and_then(timestamp_ms)
                    .unwrap_or(fallback_ts);
                let payload = r
                    .get(view.source.data_key())
                    .or_else(|| r.get("data"))
                    .and_then(Value::as_str)
                    .unwrap_or("");
                let kinesis = r
                    .get("kinesisRecordMetadata")
                    .map(|k| KinesisRecordMetadata {
                        shard_id: k
                            .get("shardId")
                            .and_then(Value::as_str)
                            .unwrap_or("shardId-000000000000")
                            .into(),
                        partition_key: k
                            .get("partitionKey")
                            .and_then(Value::as_str)
                            .unwrap_or("partitionKey")
                            .into(),
                        approximate_arrival_timestamp: k
                            .get("approximateArrivalTimestamp")
                            .and_then(timestamp_ms)
                            .unwrap_or(ts),
                        sequence_number: k
                            .get("sequenceNumber")
                            .and_then(Value::as_str)
                            .unwrap_or("0")
                            .into(),
                        subsequence_number: k
                            .get("subsequenceNumber")
                            .and_then(|v| v.as_u64().or_else(|| v.as_str()?.parse().ok()))
                            .unwrap_or(0),
                    });
                let kinesis = kinesis.or_else(|| {
                    (view.source == super::Source::Kinesis).then(|| KinesisRecordMetadata {
                        shard_id: "shardId-000000000000".into(),
                        partition_key: format!("pk-{i}"),
                        approximate_arrival_timestamp: ts,
                        sequence_number: format!("{}", 49_546_986_683_135_544u64 + i as u64),
                        subsequence_number: 0,
                    })
                });
                let msk = (view.source == super::Source::Msk).then(|| {
                    let m = r.get("mskRecordMetadata");
                    let field = |k: &str| {
                        m.and_then(|m| m.get(k)).map(|v| {
                            v.as_str()
                                .map(str::to_string)
                                .unwrap_or_else(|| v.to_string())
                        })
                    };
                    MskRecordMetadata {
                        offset: field("offset").unwrap_or_else(|| i.to_string()),
                        partition_id: field("partitionId").unwrap_or_else(|| "0".into()),
                        approximate_arrival_timestamp: ts,
                    }
                });
                Record {
                    record_id: id,
                    approximate_arrival_timestamp: ts,
                    data: decode_lenient(payload),
                    kinesis: if view.source == super::Source::Kinesis {
                        kinesis
                    } else {
                        None
                    },
                    msk,
                }
            })
            .collect();
        Some(Event {
            invocation_id: str_of("invocationId").unwrap_or_else(|| "corpus-invocation".into()),
            delivery_stream_arn: str_of("deliveryStreamArn").unwrap_or_else(|| {
                "arn:aws:firehose:us-east-1:123456789012:deliverystream/corpus".into()
            }),
            region: str_of("region").unwrap_or_else(|| "us-east-1".into()),
            source,
            records: out,
        })
    }
}

/// Decode base64 the way lenient decoders do (Node's Buffer, Python without validate): ignore
/// whitespace and surplus padding. Text that is not base64 at all is taken as the payload itself.
pub fn decode_lenient(s: &str) -> Vec<u8> {
    let cleaned: String = s.chars().filter(|c| !c.is_whitespace()).collect();
    let trimmed = cleaned.trim_end_matches('=');
    STANDARD_NO_PAD
        .decode(trimmed)
        .or_else(|_| STANDARD.decode(&cleaned))
        .unwrap_or_else(|_| s.as_bytes().to_vec())
}

/// An epoch-millisecond timestamp from a number, a digit string, or an ISO-8601 / RFC 3339 string.
fn timestamp_ms(v: &Value) -> Option<u64> {
    if let Some(n) = v.as_u64() {
        return Some(n);
    }
    if let Some(f) = v.as_f64() {
        return (f >= 0.0).then_some(f as u64);
    }
    let s = v.as_str()?;
    s.parse::<u64>().ok().or_else(|| parse_rfc3339_ms(s))
}

/// `2012-04-23T18:25:43.511Z` → epoch milliseconds. Offsets other than `Z` are honoured.
fn parse_rfc3339_ms(s: &str) -> Option<u64> {
    let b = s.as_bytes();
    if b.len() < 19 || b[4] != b'-' || b[7] != b'-' || b[13] != b':' || b[16] != b':' {
        return None;
    }
    let num = |r: std::ops::Range<usize>| s.get(r)?.parse::<i64>().ok();
    let (y, mo, d) = (num(0..4)?, num(5..7)?, num(8..10)?);
    let (h, mi, se) = (num(11..13)?, num(14..16)?, num(17..19)?);
    let mut rest = &s[19..];
    let mut ms = 0i64;
    if let Some(frac) = rest.strip_prefix('.') {
        let digits = frac.bytes().take_while(u8::is_ascii_digit).count();
        let scaled = format!("{:0<3}", &frac[..digits.min(3)]);
        ms = scaled.parse().ok()?;
        rest = &frac[digits..];
    }
    let offset_min = match rest {
        "" | "Z" | "z" => 0,
        _ => {
            let sign = if rest.starts_with('-') { -1 } else { 1 };
            let hh: i64 = rest.get(1..3)?.parse().ok()?;
            let mm: i64 = rest.get(4..6).and_then(|m| m.parse().ok()).unwrap_or(0);
            sign * (hh * 60 + mm)
        }
    };
    // Days from civil (Howard Hinnant).
    let y2 = if mo <= 2 { y - 1 } else { y };
    let era = y2.div_euclid(400);
    let yoe = y2 - era * 400;
    let doy = (153 * (mo + if mo > 2 { -3 } else { 9 }) + 2) / 5 + d - 1;
    let doe = yoe * 365 + yoe / 4 - yoe / 100 + doy;
    let days = era * 146_097 + doe - 719_468;
    let secs = days * 86_400 + h * 3600 + mi * 60 + se - offset_min * 60;
    u64::try_from(secs * 1000 + ms).ok()
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn iso_timestamps_parse() {
        assert_eq!(parse_rfc3339_ms("1970-01-01T00:00:00Z"), Some(0));
        assert_eq!(
            parse_rfc3339_ms("2012-04-23T18:25:43.511Z"),
            Some(1_335_205_543_511)
        );
        assert_eq!(
            parse_rfc3339_ms("2012-04-23T20:25:43.511+02:00"),
            Some(1_335_205_543_511)
        );
        assert_eq!(parse_rfc3339_ms("yesterday"), None);
    }

    #[test]
    fn lenient_base64() {
        assert_eq!(decode_lenient("aGVsbG8="), b"hello");
        assert_eq!(decode_lenient("aGVsbG8=== "), b"hello");
        assert_eq!(decode_lenient("aGVsbG8"), b"hello");
        assert_eq!(decode_lenient("not base64!"), b"not base64!");
    }
}
