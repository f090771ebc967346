//! A batch described by a handful of numbers: the value the strategies generate and the shrinker edits.
//!
//! A [`BatchSpec`] is cheap to clone and to change (drop records, halve a size, switch a family) and is
//! turned into bytes by [`BatchSpec::materialize`], deterministically: the same spec always gives the
//! same event. Content is regenerated from each record's seed, so shrinking never stores megabytes.

use crate::payload::{self, Compression, PayloadFamily};
use crate::rng::{FastRng, mix};
use crate::wire::{Event, KinesisRecordMetadata, MskRecordMetadata, Record, Source, SourceMeta};

/// Bumped whenever the same spec would materialise to different bytes; written into every case file.
pub const GENERATOR_VERSION: &str = "2";

/// The shape of record ids.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Hash, PartialOrd, Ord)]
pub enum IdStyle {
    /// `r17`: what hand-written tests use.
    Short,
    /// ~160 characters, `shardId-000…` as new Direct PUT streams produce.
    DirectPut,
    /// 62 digits, as Kinesis-stream sources produce.
    KinesisDigits,
    /// Characters that need JSON escaping or break naive string handling.
    Odd,
}

impl IdStyle {
    pub const ALL: [IdStyle; 4] = [
        IdStyle::Short,
        IdStyle::DirectPut,
        IdStyle::KinesisDigits,
        IdStyle::Odd,
    ];

    pub fn name(self) -> &'static str {
        match self {
            IdStyle::Short => "short",
            IdStyle::DirectPut => "direct-put",
            IdStyle::KinesisDigits => "kinesis-digits",
            IdStyle::Odd => "odd",
        }
    }

    /// The recordId of the record with this `serial` in a batch seeded `batch_seed`: unique per serial.
    pub fn make(self, batch_seed: u64, serial: u32) -> String {
        let seq = 49_546_986_683_135_544u64.wrapping_add(batch_seed % 1_000_000_000_000) as u128
            * 1_000_000_000_000_000_000
            + u128::from(serial);
        match self {
            IdStyle::Short => format!("r{serial}"),
            IdStyle::DirectPut => format!("shardId-{:0>84}{:0>40}{:012}", "", seq, serial),
            IdStyle::KinesisDigits => format!("{seq:0>56}{serial:06}"),
            IdStyle::Odd => {
                const ODD: &[&str] = &["é", "\"", "\\", "/", " ", "\n", "🔥", "%2F", "<>", "\u{0}"];
                let mut rng = FastRng::new(mix(batch_seed, u64::from(serial)));
                let a = rng.pick(ODD);
                let b = rng.pick(ODD);
                format!("{a}id{b}{serial}")
            }
        }
    }
}

/// One record's recipe.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct RecordSpec {
    pub family: PayloadFamily,
    /// Family-specific flavour; 0 is the plainest (see [`PayloadFamily::variants`]).
    pub variant: u8,
    /// Target payload size before compression, in bytes.
    pub size: usize,
    pub compression: Compression,
    /// Compression level 1–9.
    pub level: u8,
    pub content_seed: u64,
    pub id_style: IdStyle,
    /// Unique within the batch; the record id and metadata derive from it.
    pub serial: u32,
}

/// A whole batch's recipe.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct BatchSpec {
    pub source: Source,
    /// Seeds the event-level values: invocation id, ARNs, region, timestamps, id prefixes.
    pub seed: u64,
    pub records: Vec<RecordSpec>,
}

const REGIONS: &[&str] = &[
    "us-east-1",
    "us-west-2",
    "eu-west-1",
    "eu-central-1",
    "ap-southeast-2",
];

impl RecordSpec {
    /// The bytes this record carries on the wire (after compression, before base64).
    pub fn payload(&self) -> Vec<u8> {
        let mut raw = Vec::new();
        payload::generate(
            self.family,
            self.variant,
            self.content_seed,
            self.size,
            &mut raw,
        );
        match self.compression {
            Compression::None => raw,
            kind => payload::compress(kind, self.level, &raw),
        }
    }

    /// An upper bound of [`RecordSpec::payload`]'s length, without generating it.
    pub fn payload_len_bound(&self) -> usize {
        // Line families and CWL overshoot small sizes by at most one line or one envelope header.
        let raw = match self.family {
            PayloadFamily::Empty => 0,
            family => self.size.max(family.floor()),
        };
        self.compression.worst_case_len(raw)
    }

    /// An upper bound of the bytes this record adds to the serialised event.
    pub fn serialized_len_bound(&self, source: Source) -> usize {
        // Only odd ids can need JSON escapes (`\u0000` is six bytes for one).
        let escape = if self.id_style == IdStyle::Odd { 6 } else { 1 };
        let id = self.id_style.make(0, self.serial).len() * escape;
        let meta = match source {
            Source::DirectPut => 0,
            Source::Kinesis => 260,
            Source::Msk => 140,
        };
        100 + id + meta + crate::wire::base64_len(self.payload_len_bound())
    }

    /// "json, 65,537 bytes, gzip" — how a case file and a report describe the record.
    pub fn describe(&self) -> String {
        let mut s = format!(
            "{}, {} bytes",
            self.family.describe(self.variant),
            self.size
        );
        if self.compression != Compression::None {
            s.push_str(&format!(", {} level {}", self.compression, self.level));
        }
        if self.id_style != IdStyle::Short {
            s.push_str(&format!(", {} id", self.id_style.name()));
        }
        s
    }
}

impl BatchSpec {
    /// An upper bound of the serialised event size, without generating any content.
    pub fn serialized_len_bound(&self) -> usize {
        400 + self
            .records
            .iter()
            .map(|r| r.serialized_len_bound(self.source))
            .sum::<usize>()
    }

    /// The event this spec describes. Deterministic: same spec, same event, same bytes.
    pub fn materialize(&self) -> Event {
        let mut rng = FastRng::new(self.seed);
        let region = *rng.pick(REGIONS);
        let account = 100_000_000_000 + rng.below(899_999_999_999);
        let invocation_id = uuid(&mut rng);
        let stream = format!("stream-{:04x}", rng.below(65_536));
        let base_ts = 1_735_689_600_000 + rng.below(60 * 24 * 3600 * 1000);
        let shard = rng.below(4);
        let partition = rng.below(12);
        let base_offset = rng.below(1_000_000);
        let source = match self.source {
            Source::DirectPut => SourceMeta::DirectPut,
            Source::Kinesis => SourceMeta::Kinesis {
                stream_arn: format!("arn:aws:kinesis:{region}:{account}:stream/source-{stream}"),
            },
            Source::Msk => SourceMeta::Msk {
                cluster_arn: format!(
                    "arn:aws:kafka:{region}:{account}:cluster/source-{stream}/{}",
                    uuid(&mut rng)
                ),
            },
        };
        let records = self
            .records
            .iter()
            .map(|r| {
                let serial = u64::from(r.serial);
                let ts = base_ts + serial * 7 + mix(self.seed, serial) % 5;
                Record {
                    record_id: r.id_style.make(self.seed, r.serial),
                    approximate_arrival_timestamp: ts,
                    data: r.payload(),
                    kinesis: (self.source == Source::Kinesis).then(|| KinesisRecordMetadata {
                        shard_id: format!("shardId-{shard:012}"),
                        partition_key: uuid(&mut FastRng::new(mix(self.seed, serial))),
                        approximate_arrival_timestamp: ts,
                        sequence_number: format!(
                            "4954698668313554428650745793632{:025}",
                            u128::from(self.seed % 1_000_000_000) * 1_000_000 + u128::from(serial)
                        ),
                        subsequence_number: 0,
                    }),
                    msk: (self.source == Source::Msk).then(|| MskRecordMetadata {
                        offset: (base_offset + serial).to_string(),
                        partition_id: partition.to_string(),
                        approximate_arrival_timestamp: ts,
                    }),
                }
            })
            .collect();
        Event {
            invocation_id,
            delivery_stream_arn: format!(
                "arn:aws:firehose:{region}:{account}:deliverystream/{stream}"
            ),
            region: region.to_string(),
            source,
            records,
        }
    }

    /// Total payload bytes before compression (what the buffer hint is about).
    pub fn raw_bytes(&self) -> usize {
        self.records.iter().map(|r| r.size).sum()
    }
}

fn uuid(rng: &mut FastRng) -> String {
    let a = rng.next_u64();
    let b = rng.next_u64();
    format!(
        "{:08x}-{:04x}-4{:03x}-{:04x}-{:012x}",
        a >> 32,
        (a >> 16) & 0xffff,
        a & 0xfff,
        (b >> 48) & 0x3fff | 0x8000,
        b & 0xffff_ffff_ffff
    )
}

#[cfg(test)]
mod tests {
    use super::*;

    fn rec(serial: u32, style: IdStyle) -> RecordSpec {
        RecordSpec {
            family: PayloadFamily::Json,
            variant: 1,
            size: 300,
            compression: Compression::Gzip,
            level: 6,
            content_seed: 11,
            id_style: style,
            serial,
        }
    }

    #[test]
    fn ids_are_unique_and_shaped() {
        for style in IdStyle::ALL {
            let ids: std::collections::HashSet<_> = (0..1000).map(|s| style.make(5, s)).collect();
            assert_eq!(ids.len(), 1000, "{style:?}");
        }
        assert_eq!(IdStyle::KinesisDigits.make(5, 3).len(), 62);
        let dp = IdStyle::DirectPut.make(5, 3);
        assert!(dp.starts_with("shardId-000") && dp.len() > 140, "{dp}");
    }

    #[test]
    fn materialize_is_deterministic_and_within_bound() {
        for source in Source::ALL {
            let spec = BatchSpec {
                source,
                seed: 99,
                records: IdStyle::ALL
                    .iter()
                    .enumerate()
                    .map(|(i, s)| rec(i as u32, *s))
                    .collect(),
            };
            let a = spec.materialize().to_json();
            assert_eq!(a, spec.materialize().to_json());
            assert!(
                a.len() <= spec.serialized_len_bound(),
                "{} > bound",
                a.len()
            );
        }
    }
}
