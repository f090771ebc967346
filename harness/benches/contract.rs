//! Checking throughput of the oracle: MB of response JSON judged per second on one core. The oracle
//! must never be the bottleneck of a load test.

use std::time::Duration;

use bytes::Bytes;
use criterion::{Criterion, Throughput, criterion_group, criterion_main};
use firehose_generators::strategies::{GenConfig, sample};
use firehose_generators::wire::{EventView, MAX_RESPONSE_BYTES};
use firehose_harness::contract::{CheckSet, check};
use firehose_harness::invocation::Invocation;
use firehose_harness::targets::builtin::{BuiltinKind, transform};

/// An event whose identity response is just under 6 MB, with `records` records.
fn near_limit(records: usize) -> (EventView, Bytes) {
    let cfg = GenConfig {
        records: records..=records,
        record_size: 1..=(MAX_RESPONSE_BYTES * 3 / 4 / records - 200),
        compressions: vec![firehose_generators::payload::Compression::None],
        ..GenConfig::default()
    };
    let mut best = None;
    for seed in 0..64 {
        let event = sample(&cfg, seed).materialize();
        let body = transform(BuiltinKind::Identity, &event.to_json()).unwrap();
        if body.len() <= MAX_RESPONSE_BYTES
            && best
                .as_ref()
                .is_none_or(|(_, b): &(EventView, Bytes)| body.len() > b.len())
        {
            best = Some((EventView::from(&event), Bytes::from(body)));
        }
    }
    best.unwrap()
}

fn check_6mb(c: &mut Criterion) {
    let mut group = c.benchmark_group("check");
    group.measurement_time(Duration::from_secs(5));
    for records in [6, 600, 6000] {
        let (view, body) = near_limit(records);
        let inv = Invocation::answered(Some(200), body.clone(), Duration::ZERO);
        let checks = CheckSet::all();
        group.throughput(Throughput::Bytes(body.len() as u64));
        group.bench_function(
            format!("{} MB response, {records} records", body.len() / 1_000_000),
            |b| {
                b.iter(|| {
                    let v = check(&view, &inv, &checks);
                    assert!(!v.failed());
                    v
                })
            },
        );
    }
    group.finish();
}

/// The answers `bench/load-vs-oha.sh` has judged per invocation: identity responses to the load
/// bench's events (JSON, 1..8 records of 256 B..1 KiB, uncompressed; about 5.5 KB), cycled through
/// 64 of them. This is the oracle's share of the harness's CPU per invocation.
fn check_load_bench_answers(c: &mut Criterion) {
    let cfg = GenConfig {
        families: vec![firehose_generators::payload::PayloadFamily::Json],
        compressions: vec![firehose_generators::payload::Compression::None],
        records: 1..=8,
        record_size: 256..=1024,
        ..GenConfig::default()
    };
    let answers: Vec<(EventView, Invocation)> = (1..=64)
        .map(|i| {
            let event = sample(&cfg, GenConfig::case_seed(1, i)).materialize();
            let body = transform(BuiltinKind::Identity, &event.to_json()).unwrap();
            let inv = Invocation::answered(Some(200), Bytes::from(body), Duration::ZERO);
            (EventView::from(&event), inv)
        })
        .collect();
    let checks = CheckSet::default();
    let mut group = c.benchmark_group("check-load-bench-answer");
    group.throughput(Throughput::Elements(1));
    let mut next = 0;
    group.bench_function("identity answer to a json 1..8 x 256..1KiB event", |b| {
        b.iter(|| {
            let (view, inv) = &answers[next % answers.len()];
            next += 1;
            let v = check(view, inv, &checks);
            assert!(!v.failed());
            v
        })
    });
    group.finish();
}

criterion_group!(benches, check_6mb, check_load_bench_answers);
criterion_main!(benches);
