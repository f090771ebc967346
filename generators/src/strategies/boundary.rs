//! The boundary phase: a fixed set of corner batches run before random search, as Schemathesis runs its
//! coverage phase. Each is the smallest batch that exercises one corner Firehose really produces, and
//! each stays inside the generator flags: a corner the flags rule out is listed with the reason, so a
//! run can say what it did not send instead of sending what the user's stream never carries.
//!
//! Corners, per selected source: `one-record`, `empty-record`, `max-record`, `full-buffer` (records
//! just under the buffer hint plus one maximal record: the largest batch Firehose sends),
//! `control-message` (gzip'd, as a subscription sends it), `control-message-decompressed`, and
//! `json-lone-surrogate` (a JSON record holding `"\ud800"`, which real producers emit).

use super::{GenConfig, fit_compressed};
use crate::payload::{CWL_CONTROL, Compression, JSON_LONE_SURROGATE, PayloadFamily};
use crate::spec::{BatchSpec, RecordSpec};
use crate::wire::{MAX_REQUEST_BYTES, Source};

/// A named corner batch that the configuration allows.
#[derive(Debug, Clone)]
pub struct BoundaryCase {
    /// `direct-put/max-record`: source and corner.
    pub name: String,
    pub spec: BatchSpec,
}

/// Every corner for every selected source: the batch to send, or why the flags rule it out.
#[derive(Debug, Clone)]
pub struct BoundaryCorner {
    /// `direct-put/max-record`: source and corner.
    pub name: String,
    /// The batch, or the reason it is skipped (naming the flag that excludes it).
    pub spec: Result<BatchSpec, String>,
}

/// The corner batches the configuration allows, in order.
pub fn boundary_cases(config: &GenConfig) -> Vec<BoundaryCase> {
    boundary_corners(config)
        .into_iter()
        .filter_map(|c| {
            Some(BoundaryCase {
                name: c.name,
                spec: c.spec.ok()?,
            })
        })
        .collect()
}

/// Every corner for every selected source, skipped ones included.
pub fn boundary_corners(config: &GenConfig) -> Vec<BoundaryCorner> {
    let mut out = Vec::new();
    for (si, &source) in config.sources.iter().enumerate() {
        let corners = Corners {
            config,
            source,
            seed: si as u64,
        };
        let mut push = |corner: &str, spec: Result<BatchSpec, String>| {
            out.push(BoundaryCorner {
                name: format!("{source}/{corner}"),
                spec,
            })
        };
        push("one-record", corners.one_record());
        push("empty-record", corners.empty_record());
        push("max-record", corners.max_record());
        push("full-buffer", corners.full_buffer());
        push("control-message", corners.control(PayloadFamily::Cwl));
        push(
            "control-message-decompressed",
            corners.control(PayloadFamily::CwlDecompressed),
        );
        push("json-lone-surrogate", corners.lone_surrogate());
    }
    out
}

/// The corners of one source.
struct Corners<'a> {
    config: &'a GenConfig,
    source: Source,
    seed: u64,
}

impl Corners<'_> {
    /// The family plain corners use: JSON when selected, else the first family with content.
    fn family(&self) -> PayloadFamily {
        let families = &self.config.families;
        if families.contains(&PayloadFamily::Json) {
            return PayloadFamily::Json;
        }
        *families
            .iter()
            .find(|f| **f != PayloadFamily::Empty)
            .unwrap_or(&PayloadFamily::Empty)
    }

    /// The compression corners use for `family`: none when allowed, else the first one selected.
    fn compression(&self, family: PayloadFamily) -> Compression {
        family.fixed_compression().unwrap_or_else(|| {
            if self.config.compressions.contains(&Compression::None) {
                Compression::None
            } else {
                self.config.compressions[0]
            }
        })
    }

    fn record(&self, serial: u32, family: PayloadFamily, variant: u8, size: usize) -> RecordSpec {
        let compression = self.compression(family);
        let size = match family {
            PayloadFamily::Empty => 0,
            _ => fit_compressed(compression, self.clamp(size)),
        };
        RecordSpec {
            family,
            variant,
            size,
            compression,
            level: 6,
            content_seed: 0xb0_0000 + u64::from(serial),
            id_style: self.config.id_styles[0],
            serial,
        }
    }

    fn clamp(&self, size: usize) -> usize {
        size.clamp(*self.config.record_size.start(), self.config.max_record())
    }

    /// A batch holding `records`, topped up with small plain records to `--records MIN`.
    fn batch(&self, mut records: Vec<RecordSpec>) -> BatchSpec {
        let min = *self.config.records.start();
        while records.len() < min {
            let serial = records.len() as u32;
            records.push(self.record(serial, self.family(), 0, 64));
        }
        BatchSpec {
            source: self.source,
            seed: 0xb0da_0000 + self.seed,
            records,
        }
    }

    fn one_record(&self) -> Result<BatchSpec, String> {
        let min = *self.config.records.start();
        if min > 1 {
            return Err(format!("--records starts at {min}"));
        }
        Ok(self.batch(vec![self.record(0, self.family(), 0, 64)]))
    }

    fn empty_record(&self) -> Result<BatchSpec, String> {
        if !self.config.families.contains(&PayloadFamily::Empty) {
            return Err("--payload does not include empty".into());
        }
        Ok(self.batch(vec![self.record(0, PayloadFamily::Empty, 0, 0)]))
    }

    fn max_record(&self) -> Result<BatchSpec, String> {
        let family = self.family();
        if family == PayloadFamily::Empty {
            return Err("--payload empty: every record is empty".into());
        }
        let max = self.config.max_record();
        Ok(self.batch(vec![self.record(0, family, 0, max)]))
    }

    /// Records filling the buffer to just under the hint, then one maximal record: the largest batch
    /// Firehose sends under this hint. Sizes are measured on the wire (after compression).
    fn full_buffer(&self) -> Result<BatchSpec, String> {
        let family = self.family();
        if family == PayloadFamily::Empty {
            return Err("--payload empty: every record is empty".into());
        }
        let hint = self.config.max_hint();
        let max_records = *self.config.records.end();
        let min_records = (*self.config.records.start()).max(2);
        let max = self.config.max_record();
        let wire = |r: &RecordSpec| r.payload().len();
        let filler = self.clamp(hint.div_ceil(min_records - 1)).min(max);
        let mut records: Vec<RecordSpec> = Vec::new();
        let mut total = 0usize;
        // Whole fillers while they stay under the hint, then one sized to the gap.
        loop {
            let serial = records.len() as u32;
            let r = self.record(serial, family, 0, filler);
            let len = wire(&r);
            if total + len >= hint || records.len() + 1 >= max_records {
                let mut gap = self.record(serial, family, 0, hint - 1 - total);
                if gap.compression == Compression::None && records.len() + 1 < max_records {
                    // Uncompressed families are exact or come within a line of the size asked for.
                    while gap.size > *self.config.record_size.start() && total + wire(&gap) >= hint
                    {
                        gap.size = gap
                            .size
                            .saturating_sub(gap.size / 64 + 16)
                            .max(*self.config.record_size.start());
                    }
                    if total + wire(&gap) < hint {
                        records.push(gap);
                    }
                }
                break;
            }
            total += len;
            records.push(r);
        }
        let serial = records.len() as u32;
        records.push(self.record(serial, family, 0, max));
        // Not topped up to `--records MIN`: Firehose's bound wins. The request must still fit
        // Lambda's 6 MB after base64: drop fillers until it does.
        let mut spec = BatchSpec {
            source: self.source,
            seed: 0xb0da_1000 + self.seed,
            records,
        };
        while spec.serialized_len_bound() > MAX_REQUEST_BYTES && spec.records.len() > 1 {
            spec.records.remove(0);
        }
        Ok(spec)
    }

    fn control(&self, family: PayloadFamily) -> Result<BatchSpec, String> {
        if !self.config.families.contains(&family) {
            return Err(format!("--payload does not include {family}"));
        }
        Ok(self.batch(vec![self.record(0, family, CWL_CONTROL, 0)]))
    }

    fn lone_surrogate(&self) -> Result<BatchSpec, String> {
        if !self.config.families.contains(&PayloadFamily::Json) {
            return Err("--payload does not include json".into());
        }
        Ok(self.batch(vec![self.record(
            0,
            PayloadFamily::Json,
            JSON_LONE_SURROGATE,
            64,
        )]))
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::strategies::BufferHint;

    fn corner<'a>(cases: &'a [BoundaryCorner], name: &str) -> &'a BoundaryCorner {
        cases.iter().find(|c| c.name.ends_with(name)).unwrap()
    }

    #[test]
    fn full_buffer_is_the_largest_batch_firehose_sends() {
        for source in Source::ALL {
            for hint in [200_000usize, 1_000_000, 3_000_000] {
                let cfg = GenConfig {
                    sources: vec![source],
                    buffer: BufferHint::Fixed(hint),
                    ..GenConfig::default()
                };
                let cases = boundary_corners(&cfg);
                let spec = corner(&cases, "full-buffer").spec.as_ref().unwrap();
                let event = spec.materialize();
                let data: usize = event.records.iter().map(|r| r.data.len()).sum();
                let limit = cfg.batch_limit(hint);
                assert!(data <= limit, "{source} {hint}: {data} > {limit}");
                assert!(data * 10 >= limit * 9, "{source} {hint}: {data} of {limit}");
                assert!(event.to_json().len() <= MAX_REQUEST_BYTES);
                for name in ["control-message", "json-lone-surrogate", "empty-record"] {
                    assert!(corner(&cases, name).spec.is_ok(), "{name}");
                }
            }
        }
    }

    #[test]
    fn corners_the_flags_exclude_are_skipped_with_the_flag() {
        let cfg = GenConfig {
            families: vec![PayloadFamily::Text],
            compressions: vec![Compression::Gzip],
            records: 3..=10,
            record_size: 10..=5000,
            ..GenConfig::default()
        };
        let cases = boundary_corners(&cfg);
        for (name, flag) in [
            ("one-record", "--records"),
            ("empty-record", "--payload"),
            ("control-message", "--payload"),
            ("json-lone-surrogate", "--payload"),
        ] {
            let reason = corner(&cases, name).spec.as_ref().unwrap_err();
            assert!(reason.contains(flag), "{name}: {reason}");
        }
        for case in boundary_cases(&cfg) {
            assert!(case.spec.records.len() >= 3, "{}", case.name);
            for r in &case.spec.records {
                assert_eq!(r.family, PayloadFamily::Text, "{}", case.name);
                assert_eq!(r.compression, Compression::Gzip, "{}", case.name);
                assert!((10..=5000).contains(&r.size), "{}: {}", case.name, r.size);
            }
        }
    }
}
