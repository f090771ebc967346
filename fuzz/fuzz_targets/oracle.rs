//! Arbitrary bytes as the answer (and, split at the first 0xFF, as the event) to the oracle.
#![no_main]

use libfuzzer_sys::fuzz_target;

fuzz_target!(|data: &[u8]| {
    let (event, body) = match data.iter().position(|&b| b == 0xFF) {
        Some(i) => (&data[..i], &data[i + 1..]),
        None => (firehose_harness_fuzz::EVENT_SEED.as_bytes(), data),
    };
    firehose_harness_fuzz::oracle(event, body);
});
