//! Properties of everything the default strategy generates, over every source: the limits Firehose
//! enforces hold, compressed records decompress, CloudWatch Logs envelopes are complete, and events
//! round-trip through the wire model.

use firehose_generators::GenConfig;
use firehose_generators::payload::{
    CWL_EXTRACTED, Compression, PayloadFamily, check_envelope, decompress,
};
use firehose_generators::strategies::BatchStrategy;
use firehose_generators::wire::{Event, MAX_RECORD_BYTES, MAX_REQUEST_BYTES, Source};
use proptest::prelude::*;
use proptest::test_runner::Config;

fn all_sources() -> BatchStrategy {
    BatchStrategy::new(GenConfig {
        sources: Source::ALL.to_vec(),
        ..GenConfig::default()
    })
}

proptest! {
    // Each case materialises up to 6 MB; 64 cases over every source reach the corners the
    // strategy aims at (single records, megabyte records, near-6 MB batches).
    #![proptest_config(Config { cases: 64, ..Config::default() })]

    /// Every event ≤ 6,291,456 bytes; every record ≤ 1,024,000 bytes before base64; every compressed
    /// record decompresses; every CloudWatch Logs envelope has its required keys; and the event
    /// round-trips through the wire model.
    #[test]
    fn generated_events_honour_firehoses_limits(spec in all_sources()) {
        let event = spec.materialize();
        let bytes = event.to_json();
        prop_assert!(bytes.len() <= MAX_REQUEST_BYTES, "{} bytes", bytes.len());
        for (r, wire) in spec.records.iter().zip(&event.records) {
            prop_assert!(wire.data.len() <= MAX_RECORD_BYTES, "{} bytes", wire.data.len());
            let raw = decompress(r.compression, &wire.data, 64 << 20)
                .map_err(|e| TestCaseError::fail(format!("{:?}: {e}", r.compression)))?;
            if r.compression == Compression::Gzip {
                prop_assert!(wire.data.starts_with(&[0x1f, 0x8b]));
            }
            if r.family == PayloadFamily::Cwl && r.variant != CWL_EXTRACTED {
                check_envelope(&raw).map_err(|e| TestCaseError::fail(e.to_string()))?;
            }
        }
        prop_assert_eq!(Event::from_json(&bytes).unwrap(), event);
    }
}

#[test]
fn every_real_fixture_loads_and_normalises() {
    let dir = std::path::Path::new(env!("CARGO_MANIFEST_DIR")).join("../fixtures/real-events");
    let files = firehose_generators::wire::load_corpus_dir(&dir).unwrap();
    assert!(files.len() >= 20, "{}", files.len());
    let mut quirky = 0;
    for f in &files {
        if f.is_response {
            assert!(f.normalised().is_none());
            continue;
        }
        let view = f
            .view
            .as_ref()
            .unwrap_or_else(|| panic!("{}", f.path.display()));
        let event = f
            .normalised()
            .unwrap_or_else(|| panic!("{}", f.path.display()));
        assert_eq!(event.records.len(), view.record_ids.len());
        // Normalised events are what Firehose sends: unique ids, strict base64, numeric timestamps.
        let ids: std::collections::HashSet<_> = event.record_ids().collect();
        assert_eq!(ids.len(), event.records.len(), "{}", f.path.display());
        assert_eq!(Event::from_json(&event.to_json()).unwrap(), event);
        quirky += usize::from(!f.quirks.is_empty());
    }
    assert!(quirky >= 5, "the fixtures are messy on purpose: {quirky}");
}
