//! Event generation throughput, per payload family, with and without gzip: bytes of serialised event
//! JSON per second on one core. Generation must never limit a load test.

use criterion::{BenchmarkId, Criterion, Throughput, criterion_group, criterion_main};
use firehose_generators::payload::{Compression, PayloadFamily};
use firehose_generators::spec::{BatchSpec, IdStyle, RecordSpec};
use firehose_generators::strategies::{GenConfig, sample};
use firehose_generators::wire::{EventView, Source};

/// A 1 MB batch of 64 KiB records of one family.
fn batch(family: PayloadFamily, compression: Compression) -> BatchSpec {
    BatchSpec {
        source: Source::DirectPut,
        seed: 1,
        records: (0..16)
            .map(|i| RecordSpec {
                family,
                // The richest content of each family; for CloudWatch Logs a DATA_MESSAGE envelope
                // (variant 1 is the tiny CONTROL_MESSAGE).
                variant: if family == PayloadFamily::Cwl {
                    firehose_generators::payload::CWL_DATA
                } else {
                    1.min(family.variants() - 1)
                },
                size: 64 * 1024,
                compression,
                level: 6,
                content_seed: i,
                id_style: IdStyle::DirectPut,
                serial: i as u32,
            })
            .collect(),
    }
}

fn families(c: &mut Criterion) {
    let mut group = c.benchmark_group("generate");
    for compression in [Compression::None, Compression::Gzip] {
        for family in PayloadFamily::ALL
            .into_iter()
            .filter(|f| *f != PayloadFamily::Empty)
        {
            let spec = batch(family, compression);
            // Compressed batches are measured by the content generated (what a producer put),
            // uncompressed ones by the event bytes; for those the two differ only by base64.
            let len = match compression {
                Compression::None => spec.materialize().to_json().len(),
                _ => spec.records.iter().map(|r| r.size).sum(),
            };
            group.throughput(Throughput::Bytes(len as u64));
            group.bench_with_input(
                BenchmarkId::new(compression.name(), family.name()),
                &spec,
                |b, spec| b.iter(|| spec.materialize().to_json()),
            );
        }
    }
    group.finish();
}

fn default_mix(c: &mut Criterion) {
    // The default strategy: every family, mixed compression, sizes across the whole range.
    let cfg = GenConfig::default();
    let specs: Vec<_> = (0..32).map(|s| sample(&cfg, s)).collect();
    let total: usize = specs.iter().map(|s| s.materialize().to_json().len()).sum();
    let mut group = c.benchmark_group("generate-default-mix");
    group.sample_size(10);
    group.throughput(Throughput::Bytes(total as u64));
    group.bench_function("32 batches", |b| {
        b.iter(|| {
            specs
                .iter()
                .map(|s| s.materialize().to_json().len())
                .sum::<usize>()
        })
    });
    group.finish();
}

/// One event exactly as `load` makes each fresh one for `bench/load-vs-oha.sh` (`--payload json
/// --compression none --records 1..8 --record-size 256..1KiB`): sample the case, materialise it,
/// index its ids for the oracle, serialise it. Per event, so the bench's CPU per generated
/// invocation can be held against it (the speed issue's budget: this plus 2 µs).
fn load_bench_event(c: &mut Criterion) {
    let cfg = GenConfig {
        families: vec![PayloadFamily::Json],
        compressions: vec![Compression::None],
        records: 1..=8,
        record_size: 256..=1024,
        ..GenConfig::default()
    };
    let mut group = c.benchmark_group("generate-load-bench-event");
    group.throughput(Throughput::Elements(1));
    let mut index = 0u64;
    group.bench_function("json, 1..8 records of 256..1KiB", |b| {
        b.iter(|| {
            index += 1;
            let spec = sample(&cfg, GenConfig::case_seed(1, index));
            let event = spec.materialize();
            let view = EventView::from(&event);
            (view.record_ids.len(), event.to_json().len())
        })
    });
    group.finish();
}

criterion_group!(benches, families, default_mix, load_bench_event);
criterion_main!(benches);
