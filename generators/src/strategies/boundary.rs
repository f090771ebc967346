//! The boundary phase: a fixed set of corner batches run before random search, as Schemathesis runs its
//! coverage phase. Each is the smallest batch that exercises one corner Firehose really produces.

use super::GenConfig;
use crate::payload::{CWL_CONTROL, Compression, PayloadFamily};
use crate::spec::{BatchSpec, IdStyle, RecordSpec};
use crate::wire::{MAX_REQUEST_BYTES, Source};

/// A named corner batch.
#[derive(Debug, Clone)]
pub struct BoundaryCase {
    /// `direct-put/max-record`: source and corner.
    pub name: String,
    pub spec: BatchSpec,
}

/// The corner batches for every source the configuration selects.
pub fn boundary_cases(config: &GenConfig) -> Vec<BoundaryCase> {
    let mut out = Vec::new();
    let family = if config.families.contains(&PayloadFamily::Json) {
        PayloadFamily::Json
    } else {
        *config
            .families
            .iter()
            .find(|f| **f != PayloadFamily::Empty)
            .unwrap_or(&PayloadFamily::Empty)
    };
    let id_style = config.id_styles[0];
    for (si, &source) in config.sources.iter().enumerate() {
        let record = |serial: u32, family: PayloadFamily, variant: u8, size: usize| RecordSpec {
            family,
            variant,
            size,
            compression: Compression::None,
            level: 6,
            content_seed: 0xb0_0000 + u64::from(serial),
            id_style,
            serial,
        };
        let batch = |records: Vec<RecordSpec>| BatchSpec {
            source,
            seed: 0xb0da_0000 + si as u64,
            records,
        };
        let mut push = |corner: &str, spec: BatchSpec| {
            out.push(BoundaryCase {
                name: format!("{source}/{corner}"),
                spec,
            })
        };
        push("one-record", batch(vec![record(0, family, 0, 64)]));
        if *config.record_size.start() == 0 {
            push(
                "empty-record",
                batch(vec![record(0, PayloadFamily::Empty, 0, 0)]),
            );
        }
        let max = config.max_record();
        push("max-record", batch(vec![record(0, family, 0, max)]));
        push(
            "near-6mb-batch",
            near_limit_batch(source, si as u64, family, id_style, max),
        );
        if config.families.contains(&PayloadFamily::Cwl) {
            let mut control = record(0, PayloadFamily::Cwl, CWL_CONTROL, 0);
            if config.compressions.contains(&Compression::Gzip) {
                control.compression = Compression::Gzip;
            }
            push("control-message", batch(vec![control]));
        }
    }
    out
}

/// A batch whose serialised event is just under the 6 MB request limit.
fn near_limit_batch(
    source: Source,
    seed: u64,
    family: PayloadFamily,
    id_style: IdStyle,
    max_record: usize,
) -> BatchSpec {
    let per_record = max_record.clamp(1, 700_000);
    let mut spec = BatchSpec {
        source,
        seed: 0xb0da_1000 + seed,
        records: Vec::new(),
    };
    let record = |serial: u32, size: usize| RecordSpec {
        family,
        variant: 0,
        size,
        compression: Compression::None,
        level: 6,
        content_seed: 0xb1_0000 + u64::from(serial),
        id_style,
        serial,
    };
    // Fill with whole records, then one record sized to the remaining room.
    let mut len = spec.materialize().to_json().len();
    let mut serial = 0;
    loop {
        let r = record(serial, per_record);
        let added = r.serialized_len_bound(source);
        if len + added > MAX_REQUEST_BYTES {
            break;
        }
        spec.records.push(r);
        len = spec.materialize().to_json().len();
        serial += 1;
        if spec.records.len() > 20_000 {
            break;
        }
    }
    let fixed = spec.materialize().to_json().len();
    let overhead = record(serial, 0).serialized_len_bound(source);
    let room = MAX_REQUEST_BYTES.saturating_sub(fixed + overhead);
    let mut last = record(serial, (room / 4 * 3).min(max_record));
    spec.records.push(last.clone());
    // The bound is loose by a few bytes per record; walk down until the real size fits.
    while spec.materialize().to_json().len() > MAX_REQUEST_BYTES && last.size > 0 {
        last.size = last.size.saturating_sub(64);
        *spec.records.last_mut().expect("just pushed") = last.clone();
    }
    spec
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn near_limit_is_near_and_under() {
        for source in Source::ALL {
            let cfg = GenConfig {
                sources: vec![source],
                ..GenConfig::default()
            };
            let cases = boundary_cases(&cfg);
            let near = cases
                .iter()
                .find(|c| c.name.ends_with("near-6mb-batch"))
                .unwrap();
            let len = near.spec.materialize().to_json().len();
            assert!(len <= MAX_REQUEST_BYTES, "{len}");
            assert!(len > MAX_REQUEST_BYTES - 4096, "{len}");
            assert!(cases.iter().any(|c| c.name.ends_with("control-message")));
        }
    }
}
