//! Properties of everything the strategies generate: the limits Firehose enforces hold, compressed
//! records decompress, CloudWatch Logs envelopes are complete, events round-trip through the wire
//! model — and every phase (random, boundary, shrinking) stays inside the generator flags, with each
//! batch at most the buffer hint plus one record.

use std::ops::RangeInclusive;

use firehose_generators::GenConfig;
use firehose_generators::payload::{Compression, PayloadFamily, check_envelope, decompress};
use firehose_generators::spec::BatchSpec;
use firehose_generators::strategies::{
    BatchStrategy, BatchTree, BufferHint, boundary_cases, sample,
};
use firehose_generators::wire::{Event, MAX_RECORD_BYTES, MAX_REQUEST_BYTES, Source};
use proptest::prelude::*;
use proptest::sample::subsequence;
use proptest::strategy::ValueTree;
use proptest::test_runner::Config;

fn all_sources() -> BatchStrategy {
    BatchStrategy::new(GenConfig {
        sources: Source::ALL.to_vec(),
        ..GenConfig::default()
    })
}

/// Every check a batch drawn from `cfg` must pass; `hint` is the buffer hint it was shaped by.
fn within_flags(cfg: &GenConfig, spec: &BatchSpec, hint: usize) -> Result<(), TestCaseError> {
    let event = spec.materialize();
    let bytes = event.to_json();
    prop_assert!(bytes.len() <= MAX_REQUEST_BYTES, "{} bytes", bytes.len());
    prop_assert!(cfg.sources.contains(&spec.source), "{}", spec.source);
    prop_assert!(spec.records.len() <= *cfg.records.end());
    prop_assert!(!spec.records.is_empty());
    let data: usize = event.records.iter().map(|r| r.data.len()).sum();
    let limit = cfg.batch_limit(hint);
    prop_assert!(
        data <= limit,
        "batch {data} bytes > hint {hint} + one record = {limit}"
    );
    for (r, wire) in spec.records.iter().zip(&event.records) {
        let what = r.describe();
        prop_assert!(cfg.families.contains(&r.family), "{what}");
        prop_assert!(cfg.compressions.contains(&r.compression), "{what}");
        prop_assert!(r.family.allows(r.compression), "{what}");
        prop_assert!(cfg.record_size.contains(&r.size), "{what}");
        prop_assert!(
            wire.data.len() <= MAX_RECORD_BYTES,
            "{what}: {}",
            wire.data.len()
        );
        prop_assert!(wire.data.len() <= cfg.max_record_wire(), "{what}");
        let raw = decompress(r.compression, &wire.data, 64 << 20)
            .map_err(|e| TestCaseError::fail(format!("{what}: {e}")))?;
        prop_assert!(
            raw.len() <= r.size.max(r.family.floor()),
            "{what}: {} raw",
            raw.len()
        );
        if r.compression == Compression::Gzip {
            prop_assert!(wire.data.starts_with(&[0x1f, 0x8b]), "{what}");
        }
        match r.family {
            PayloadFamily::Cwl | PayloadFamily::CwlDecompressed => {
                check_envelope(&raw).map_err(|e| TestCaseError::fail(format!("{what}: {e}")))?
            }
            PayloadFamily::CwlExtracted => prop_assert!(check_envelope(&raw).is_err()),
            PayloadFamily::Empty => prop_assert!(raw.is_empty()),
            _ => {}
        }
    }
    prop_assert_eq!(Event::from_json(&bytes).unwrap(), event);
    Ok(())
}

fn range(lo: usize, hi: usize) -> RangeInclusive<usize> {
    lo.min(hi)..=lo.max(hi)
}

/// Narrowed configurations as users write them, kept to those `validate` accepts.
fn configs() -> impl Strategy<Value = GenConfig> {
    (
        subsequence(Source::ALL.to_vec(), 1..=3),
        subsequence(PayloadFamily::ALL.to_vec(), 1..=4),
        subsequence(Compression::ALL.to_vec(), 1..=3),
        prop_oneof![
            Just(1..=usize::MAX),
            (1usize..40, 1usize..400).prop_map(|(a, b)| range(a, b))
        ],
        prop_oneof![
            Just(0..=MAX_RECORD_BYTES),
            (0usize..2_000, 0usize..300_000).prop_map(|(a, b)| range(a, b)),
        ],
        200_000usize..=3_000_000,
    )
        .prop_map(
            |(sources, families, compressions, records, record_size, hint)| {
                let mut cfg = GenConfig {
                    sources,
                    families,
                    compressions,
                    records,
                    record_size,
                    buffer: BufferHint::Fixed(hint),
                    ..GenConfig::default()
                };
                cfg.keep_possible_families();
                cfg
            },
        )
        .prop_filter("the flags allow some family", |cfg| cfg.validate().is_ok())
}

proptest! {
    // Each case materialises up to 6 MB; 64 cases over every source reach the corners the
    // strategy aims at (single records, megabyte records, full buffers).
    #![proptest_config(Config { cases: 64, ..Config::default() })]

    /// The default strategy over every source: within the limits, hints explored.
    #[test]
    fn generated_events_honour_firehoses_limits(spec in all_sources()) {
        let cfg = GenConfig { sources: Source::ALL.to_vec(), ..GenConfig::default() };
        within_flags(&cfg, &spec, cfg.max_hint())?;
    }

    /// Random batches of any narrowed configuration stay inside its flags and its bound.
    #[test]
    fn random_batches_stay_inside_the_flags(cfg in configs(), seed in any::<u64>()) {
        let hint = cfg.max_hint();
        within_flags(&cfg, &sample(&cfg, seed), hint)?;
    }

    /// Shrinking proposes only candidates inside the flags, whichever way the target answers.
    #[test]
    fn shrink_candidates_stay_inside_the_flags(
        cfg in configs(),
        seed in any::<u64>(),
        answers in proptest::collection::vec(any::<bool>(), 40),
    ) {
        let hint = cfg.max_hint();
        let mut tree = BatchTree::new(sample(&cfg, seed), &cfg);
        let mut more = tree.simplify();
        for still_fails in answers {
            if !more {
                break;
            }
            let candidate = tree.current();
            prop_assert!(candidate.records.len() >= (*cfg.records.start()).min(tree.minimal().records.len()));
            within_flags(&cfg, &candidate, hint)?;
            more = if still_fails { tree.simplify() } else { tree.complicate() };
        }
    }
}

proptest! {
    // Boundary batches are fixed per configuration and large: fewer cases.
    #![proptest_config(Config { cases: 12, ..Config::default() })]

    /// Every boundary case the flags allow stays inside them.
    #[test]
    fn boundary_cases_stay_inside_the_flags(cfg in configs()) {
        let hint = cfg.max_hint();
        for case in boundary_cases(&cfg) {
            within_flags(&cfg, &case.spec, hint)
                .map_err(|e| TestCaseError::fail(format!("{}: {e}", case.name)))?;
        }
    }
}

#[test]
fn a_fixed_hint_bounds_every_batch_and_is_reached() {
    for source in Source::ALL {
        let cfg = GenConfig {
            sources: vec![source],
            buffer: BufferHint::Fixed(1_000_000),
            ..GenConfig::default()
        };
        let mut largest = 0;
        for seed in 0..40 {
            let spec = sample(&cfg, seed);
            let data: usize = spec
                .materialize()
                .records
                .iter()
                .map(|r| r.data.len())
                .sum();
            assert!(
                data <= cfg.batch_limit(1_000_000),
                "{source} seed {seed}: {data}"
            );
            largest = largest.max(data);
        }
        assert!(largest > 900_000, "{source}: largest batch {largest}");
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
