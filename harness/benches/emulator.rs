//! The emulator's own overhead: one round trip invoke → `/next` → `/response` → answer, with a
//! trivial `lambda_runtime` function (the Rust example, one tiny record) on loopback.
//!
//! Run: `cargo bench -p firehose-harness --bench emulator`. Besides criterion's estimate it prints
//! p50 and p99 in microseconds from an HDR histogram of every timed invocation.
//!
//! On a small VM most of the round trip is the cost of waking a process on the *other* CPU: run it
//! as `taskset -c 0 cargo bench …` to put the harness and the function on one CPU and see the
//! emulator's own share (on the 2-vCPU CI machine: p50 112 µs pinned, ~270 µs spread over both).

use std::time::{Duration, Instant};

use bytes::Bytes;
use criterion::{Criterion, criterion_group, criterion_main};
use firehose_harness::emulator::{CommandLine, Emulator, EmulatorConfig, FunctionSpec};
use hdrhistogram::Histogram;

#[allow(dead_code)]
#[path = "../tests/integration/runtimes.rs"]
mod runtimes;

const EVENT: &str = r#"{"invocationId":"bench","deliveryStreamArn":"arn:aws:firehose:us-east-1:000000000000:deliverystream/bench","region":"us-east-1","records":[{"recordId":"r0","approximateArrivalTimestamp":1700000000000,"data":"aGVsbG8K"}]}"#;

fn round_trip(c: &mut Criterion) {
    let bootstrap = runtimes::rust_transformer().display().to_string();
    let rt = tokio::runtime::Builder::new_multi_thread()
        .worker_threads(2)
        .enable_all()
        .build()
        .expect("runtime");
    let spec = FunctionSpec::new(CommandLine::from_argv(vec![bootstrap]).expect("command"));
    let emulator = Emulator::new(spec, EmulatorConfig::default());
    rt.block_on(emulator.warm()).expect("the example starts");
    let event = Bytes::from_static(EVENT.as_bytes());
    let emulator = std::sync::Arc::new(emulator);
    let hist = std::sync::Arc::new(std::sync::Mutex::new(
        Histogram::<u64>::new_with_bounds(1, 60_000_000, 3).expect("histogram"),
    ));
    c.bench_function("emulator_round_trip", |b| {
        b.iter_custom(|iters| {
            // On a worker thread, as the check runner's and the load engine's tasks run.
            let (emulator, event, hist) = (emulator.clone(), event.clone(), hist.clone());
            rt.block_on(rt.spawn(async move {
                let mut total = Duration::ZERO;
                for _ in 0..iters {
                    let start = Instant::now();
                    let inv = emulator
                        .invoke(event.clone(), Duration::from_secs(10))
                        .await
                        .expect("invoke");
                    let took = start.elapsed();
                    assert!(inv.function_error.is_none(), "{:?}", inv.logs);
                    let _ = hist.lock().unwrap().record(took.as_micros().max(1) as u64);
                    total += took;
                }
                total
            }))
            .expect("the timing task")
        })
    });
    let hist = hist.lock().unwrap();
    println!(
        "emulator round trip over {} invocations: p50 {} µs, p90 {} µs, p99 {} µs, max {} µs",
        hist.len(),
        hist.value_at_quantile(0.50),
        hist.value_at_quantile(0.90),
        hist.value_at_quantile(0.99),
        hist.max()
    );
    rt.block_on(emulator.shutdown());
}

criterion_group!(benches, round_trip);
criterion_main!(benches);
