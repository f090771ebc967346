//! How batches are drawn: a [`GenConfig`] says which sources, payload families, compressions and sizes
//! are allowed; [`sample`] draws one [`BatchSpec`] from a seed; [`BatchStrategy`] wraps that as a
//! proptest strategy whose value tree ([`BatchTree`]) shrinks by bisection.
//!
//! Each dimension is one function below, so widening a dimension is a local change.

mod boundary;
mod corpus;
mod ddmin;
mod tree;

use std::ops::RangeInclusive;

use proptest::strategy::{NewTree, Strategy};
use proptest::test_runner::TestRunner;

pub use boundary::{BoundaryCase, BoundaryCorner, boundary_cases, boundary_corners};
pub use corpus::{EventTree, mutate};
pub use ddmin::Ddmin;
pub use tree::{BatchTree, Dimension};

use crate::payload::{CWL_CONTROL, Compression, PayloadFamily};
use crate::rng::{FastRng, mix};
use crate::spec::{BatchSpec, IdStyle, RecordSpec};
use crate::wire::{BUFFER_HINT_MAX, BUFFER_HINT_MIN, MAX_RECORD_BYTES, MAX_REQUEST_BYTES, Source};

/// Which buffer hint batches are shaped by.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum BufferHint {
    /// Explore Firehose's whole legal range, 0.2–3 MB, edges included.
    Explore,
    /// The user's own setting (`--buffer-size`), in bytes.
    Fixed(usize),
}

/// What the generators may produce. `Default` is what `check` uses without flags.
#[derive(Debug, Clone, PartialEq)]
pub struct GenConfig {
    pub sources: Vec<Source>,
    pub families: Vec<PayloadFamily>,
    pub compressions: Vec<Compression>,
    /// Records per batch.
    pub records: RangeInclusive<usize>,
    /// Payload bytes per record, before compression.
    pub record_size: RangeInclusive<usize>,
    pub buffer: BufferHint,
    pub id_styles: Vec<IdStyle>,
    /// Percentage of batches that hold a single record (they break transformers that assume many).
    pub single_record_percent: u8,
}

impl Default for GenConfig {
    fn default() -> Self {
        GenConfig {
            sources: vec![Source::DirectPut],
            families: PayloadFamily::ALL.to_vec(),
            compressions: Compression::ALL.to_vec(),
            records: 1..=usize::MAX,
            record_size: 0..=MAX_RECORD_BYTES,
            buffer: BufferHint::Explore,
            id_styles: IdStyle::ALL.to_vec(),
            single_record_percent: 15,
        }
    }
}

impl GenConfig {
    /// The largest record this configuration may produce, before compression.
    pub fn max_record(&self) -> usize {
        (*self.record_size.end()).min(MAX_RECORD_BYTES)
    }

    /// The largest record this configuration may put on the wire (after compression, before base64):
    /// the "one record" a batch may exceed its buffer hint by.
    pub fn max_record_wire(&self) -> usize {
        self.families
            .iter()
            .flat_map(|f| {
                self.compressions
                    .iter()
                    .filter(|c| f.allows(**c))
                    .map(|c| largest_record(*f, *c, self.max_record()).payload_len_bound())
            })
            .max()
            .unwrap_or(0)
    }

    /// The largest buffer hint batches are shaped by.
    pub fn max_hint(&self) -> usize {
        match self.buffer {
            BufferHint::Fixed(n) => n,
            BufferHint::Explore => BUFFER_HINT_MAX,
        }
    }

    /// Firehose's bound on a batch buffered under `hint`: the sum of its records' data as put (after
    /// compression, before base64) is at most the hint plus one record (`FIREHOSE_CONTRACT.md` §5).
    pub fn batch_limit(&self, hint: usize) -> usize {
        hint + self.max_record_wire()
    }

    /// The seed of case `index` in a run seeded `seed`: each case is reproducible on its own.
    pub fn case_seed(seed: u64, index: u64) -> u64 {
        mix(seed, index)
    }

    /// Check that the configuration can produce anything at all, and nothing real producers cannot.
    pub fn validate(&self) -> Result<(), String> {
        if self.sources.is_empty() {
            return Err("no source selected".into());
        }
        if self.families.is_empty() {
            return Err("no payload family selected".into());
        }
        if self.compressions.is_empty() {
            return Err("no compression selected".into());
        }
        if self.id_styles.is_empty() {
            return Err("no record-id style selected".into());
        }
        if self.records.is_empty() || *self.records.end() == 0 {
            return Err(format!(
                "record count range {}..{} is empty",
                self.records.start(),
                self.records.end()
            ));
        }
        if self.record_size.is_empty() {
            return Err("record size range is empty".into());
        }
        if *self.record_size.start() > MAX_RECORD_BYTES {
            return Err(format!(
                "records cannot be larger than {MAX_RECORD_BYTES} bytes (Firehose's limit)"
            ));
        }
        if let BufferHint::Fixed(n) = self.buffer
            && !(BUFFER_HINT_MIN..=BUFFER_HINT_MAX).contains(&n)
        {
            return Err(format!(
                "buffer size {n} bytes is outside Firehose's range of {BUFFER_HINT_MIN}..{BUFFER_HINT_MAX} bytes"
            ));
        }
        for family in &self.families {
            if let Some(reason) = self.excludes(*family) {
                return Err(reason);
            }
        }
        Ok(())
    }

    /// Keep only the families the other settings allow: what `--payload all` means.
    pub fn keep_possible_families(&mut self) {
        let excluded: Vec<PayloadFamily> = self
            .families
            .iter()
            .copied()
            .filter(|f| self.excludes(*f).is_some())
            .collect();
        self.families.retain(|f| !excluded.contains(f));
    }

    /// Why the other settings rule out `family`, naming the flags; `None` when it can be generated.
    ///
    /// A CloudWatch Logs subscription always gzips (`--payload cwl` needs gzip among the
    /// compressions); Firehose's decompression and extraction deliver plain bytes (`cwl-decompressed`
    /// and `cwl-extracted` need `none`); an empty record has no size but zero.
    pub fn excludes(&self, family: PayloadFamily) -> Option<String> {
        if let Some(fixed) = family.fixed_compression()
            && !self.compressions.contains(&fixed)
        {
            let given: Vec<&str> = self.compressions.iter().map(|c| c.name()).collect();
            let why = match family {
                PayloadFamily::Cwl => "CloudWatch Logs gzips every record it sends",
                _ => "Firehose hands it over decompressed",
            };
            return Some(format!(
                "--payload {family} cannot be sent with --compression {}: {why}, so it needs --compression {fixed}",
                given.join(",")
            ));
        }
        if family == PayloadFamily::Empty && *self.record_size.start() > 0 {
            return Some(format!(
                "--payload empty cannot be sent with --record-size {}..{}: an empty record has 0 bytes",
                self.record_size.start(),
                self.record_size.end()
            ));
        }
        None
    }
}

/// The largest record of `family` sent with `compression` when records may hold `max_raw` bytes.
fn largest_record(family: PayloadFamily, compression: Compression, max_raw: usize) -> RecordSpec {
    RecordSpec {
        family,
        variant: 0,
        size: fit_compressed(compression, max_raw),
        compression,
        level: 6,
        content_seed: 0,
        id_style: IdStyle::Short,
        serial: 0,
    }
}

/// Compression can grow incompressible data by a few bytes: the raw size whose compressed form
/// stays within Firehose's record limit.
fn fit_compressed(compression: Compression, size: usize) -> usize {
    if compression == Compression::None {
        size
    } else {
        size.min((MAX_RECORD_BYTES - 64) * 1000 / 1001)
    }
}

/// Draw one batch from `seed`. Same config and seed, same spec.
pub fn sample(config: &GenConfig, seed: u64) -> BatchSpec {
    let mut rng = FastRng::new(seed);
    let source = *rng.pick(&config.sources);
    let batch_seed = rng.next_u64();
    let id_style = *rng.pick(&config.id_styles);
    let hint = buffer_hint(&mut rng, config.buffer);
    let primary_family = pick_family(&mut rng, &config.families);
    let primary_compression = *rng.pick(&config.compressions);
    let min_records = (*config.records.start()).max(1);
    let max_records = *config.records.end();
    let single = max_records == 1
        || (min_records == 1 && rng.chance(u64::from(config.single_record_percent), 100));

    let mut spec = BatchSpec {
        source,
        seed: batch_seed,
        records: Vec::new(),
    };
    let draw_record = |rng: &mut FastRng, serial: u32, size: usize| {
        let family = if rng.chance(7, 10) {
            primary_family
        } else {
            pick_family(rng, &config.families)
        };
        let drawn = if rng.chance(4, 5) {
            primary_compression
        } else {
            *rng.pick(&config.compressions)
        };
        // CloudWatch Logs always gzips; Firehose's decompression always delivers plain bytes.
        let compression = family.fixed_compression().unwrap_or(drawn);
        let size = match family {
            PayloadFamily::Empty => 0,
            _ => fit_compressed(compression, size),
        };
        RecordSpec {
            family,
            variant: rng.below(u64::from(family.variants())) as u8,
            size,
            compression,
            // Producers mostly use their library's default level (6); the rest of 1–9 stays covered.
            level: if rng.chance(3, 5) {
                6
            } else {
                rng.range(1, 9) as u8
            },
            content_seed: rng.next_u64(),
            id_style,
            serial,
        }
    };

    // Firehose invokes once its buffer reaches the hint, so a batch is at most the hint plus the
    // record that tipped it over; the request must also fit Lambda's 6 MB after base64 and JSON.
    let limit = config.batch_limit(hint);
    let budget = MAX_REQUEST_BYTES - 512;
    let mut bound = 400usize;
    if single {
        let size = record_size(&mut rng, &config.record_size, None);
        spec.records.push(draw_record(&mut rng, 0, size));
    } else {
        let typical = record_size(&mut rng, &config.record_size, None);
        let mut wire_total = 0usize;
        while spec.records.len() < max_records {
            if spec.records.len() >= min_records && wire_total >= hint {
                break;
            }
            let size = record_size(&mut rng, &config.record_size, Some(typical));
            let mut record = draw_record(&mut rng, spec.records.len() as u32, size);
            let fits = |r: &RecordSpec, bound: usize, wire: usize| {
                bound + r.serialized_len_bound(source) <= budget
                    && wire + r.payload_len_bound() <= limit
            };
            if !fits(&record, bound, wire_total) {
                if spec.records.len() >= min_records {
                    break;
                }
                // The user asked for more records than fit at this size: make this one fit, and
                // leave room for the rest of the minimum.
                let left = min_records - spec.records.len();
                let request_room = budget.saturating_sub(bound + 1024) * 3 / 4;
                let wire_room = limit.saturating_sub(wire_total);
                let room = request_room.min(wire_room) / left;
                record.size = record
                    .size
                    .min(room.saturating_sub(2048))
                    .max(*config.record_size.start());
                if !fits(&record, bound, wire_total) {
                    // Not even the smallest record fits any more: Firehose's bounds win over
                    // `--records MIN`.
                    break;
                }
            }
            bound += record.serialized_len_bound(source);
            wire_total += record.payload_len_bound();
            spec.records.push(record);
        }
    }
    spec
}

fn pick_family(rng: &mut FastRng, families: &[PayloadFamily]) -> PayloadFamily {
    // Empty records are a corner, not a stream: weight them lightly when others are allowed.
    let family = *rng.pick(families);
    if family == PayloadFamily::Empty && families.len() > 1 && !rng.chance(1, 4) {
        return *rng.pick(families);
    }
    family
}

fn buffer_hint(rng: &mut FastRng, hint: BufferHint) -> usize {
    match hint {
        BufferHint::Fixed(n) => n,
        BufferHint::Explore => match rng.below(10) {
            0 => BUFFER_HINT_MIN,
            1 => BUFFER_HINT_MAX,
            _ => rng.range(BUFFER_HINT_MIN as u64, BUFFER_HINT_MAX as u64) as usize,
        },
    }
}

/// A record size in `range`: log-uniform so every scale from bytes to a megabyte is common, with the
/// range's edges drawn on purpose; around `typical` (±50%) when a batch has one.
fn record_size(rng: &mut FastRng, range: &RangeInclusive<usize>, typical: Option<usize>) -> usize {
    let lo = *range.start();
    let hi = (*range.end()).min(MAX_RECORD_BYTES).max(lo);
    // Inside a batch an edge is rare, or one megabyte record would end every batch early.
    if rng.chance(1, if typical.is_some() { 1000 } else { 10 }) {
        let edges = [lo, (lo + 1).min(hi), hi.saturating_sub(1).max(lo), hi];
        return *rng.pick(&edges);
    }
    let size = match typical {
        Some(t) => {
            let t = t.max(1) as u64;
            rng.range(t / 2, t + t / 2) as usize
        }
        None => {
            let (l, h) = ((lo.max(1) as f64).ln(), (hi.max(1) as f64).ln());
            let unit = rng.below(1 << 20) as f64 / f64::from(1 << 20);
            (l + (h - l) * unit).exp() as usize
        }
    };
    size.clamp(lo, hi)
}

/// The proptest face of [`sample`]: values are [`BatchSpec`]s, trees shrink them by bisection.
#[derive(Debug, Clone)]
pub struct BatchStrategy {
    pub config: GenConfig,
}

impl BatchStrategy {
    pub fn new(config: GenConfig) -> Self {
        BatchStrategy { config }
    }
}

impl Strategy for BatchStrategy {
    type Tree = BatchTree;
    type Value = BatchSpec;

    fn new_tree(&self, runner: &mut TestRunner) -> NewTree<Self> {
        use proptest::prelude::RngCore;
        let seed = runner.rng().next_u64();
        Ok(BatchTree::new(sample(&self.config, seed), &self.config))
    }
}

/// True if `spec` is a lone CONTROL_MESSAGE (useful to label boundary cases).
pub fn is_control_message(spec: &BatchSpec) -> bool {
    spec.records.len() == 1
        && matches!(
            spec.records[0].family,
            PayloadFamily::Cwl | PayloadFamily::CwlDecompressed
        )
        && spec.records[0].variant == CWL_CONTROL
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn same_seed_same_spec() {
        let cfg = GenConfig::default();
        for seed in 0..50 {
            assert_eq!(sample(&cfg, seed), sample(&cfg, seed));
        }
    }

    #[test]
    fn narrowing_is_respected() {
        let cfg = GenConfig {
            sources: vec![Source::Kinesis],
            families: vec![PayloadFamily::Json],
            compressions: vec![Compression::None],
            records: 3..=7,
            record_size: 10..=20,
            ..GenConfig::default()
        };
        for seed in 0..200 {
            let spec = sample(&cfg, seed);
            assert_eq!(spec.source, Source::Kinesis);
            assert!(
                (3..=7).contains(&spec.records.len()),
                "{}",
                spec.records.len()
            );
            for r in &spec.records {
                assert!((10..=20).contains(&r.size));
                assert_eq!(r.family, PayloadFamily::Json);
                assert_eq!(r.compression, Compression::None);
            }
        }
    }

    #[test]
    fn the_request_cap_wins_over_a_minimum_record_count() {
        for (records, record_size) in [
            (20_000..=20_000, 0..=MAX_RECORD_BYTES),
            (1_000_000..=1_000_000, 0..=0),
        ] {
            let cfg = GenConfig {
                records,
                record_size,
                ..GenConfig::default()
            };
            for seed in 0..5 {
                let spec = sample(&cfg, seed);
                let json = spec.materialize().to_json();
                assert!(json.len() <= MAX_REQUEST_BYTES, "{} bytes", json.len());
                assert!(spec.serialized_len_bound() <= MAX_REQUEST_BYTES);
            }
        }
    }

    #[test]
    fn distribution_reaches_the_corners() {
        let cfg = GenConfig::default();
        let specs: Vec<_> = (0..2000).map(|s| sample(&cfg, s)).collect();
        assert!(specs.iter().any(|s| s.records.len() == 1));
        assert!(
            specs.iter().any(|s| s.records.len() > 2000),
            "thousands of small records"
        );
        assert!(
            specs
                .iter()
                .any(|s| s.records.iter().any(|r| r.size == MAX_RECORD_BYTES))
        );
        assert!(specs.iter().any(|s| s.records.iter().any(|r| r.size == 0)));
        assert!(specs.iter().any(|s| s.serialized_len_bound() > 5_000_000));
        for s in &specs {
            assert!(s.serialized_len_bound() <= MAX_REQUEST_BYTES);
        }
    }
}
