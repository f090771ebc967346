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
    // Serialised length = the empty event + each record's own length + the commas between them.
    // Each record is measured once (records serialise independently), so this stays linear.
    let empty = spec.materialize().to_json().len();
    let shell = spec.clone();
    let record_len = |r: &RecordSpec| {
        let one = BatchSpec {
            records: vec![r.clone()],
            ..shell.clone()
        };
        one.materialize().to_json().len() - empty
    };
    let mut len = empty;
    let mut serial = 0;
    loop {
        let r = record(serial, per_record);
        let added = record_len(&r) + usize::from(serial > 0);
        if len + added > MAX_REQUEST_BYTES || spec.records.len() > 20_000 {
            break;
        }
        len += added;
        spec.records.push(r);
        serial += 1;
    }
    // One last record sized to the remaining room: base64 makes 4 bytes of every 3.
    let overhead = record_len(&record(serial, 0)) + 1;
    let room = MAX_REQUEST_BYTES.saturating_sub(len + overhead);
    let mut last = record(serial, (room / 4 * 3).min(max_record));
    while last.size > 0 && len + record_len(&last) + 1 > MAX_REQUEST_BYTES {
        last.size = last.size.saturating_sub(3);
    }
    spec.records.push(last);
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
