//! Arbitrary bytes and mutated real report.json files to `report merge` and `report compare`.
#![no_main]

use firehose_harness_fuzz::{EVENT_WORDS, REPORT_SEEDS, mutate_json, report_readers};
use libfuzzer_sys::fuzz_target;

fuzz_target!(|data: &[u8]| {
    report_readers(data);
    let Some((&pick, mutation)) = data.split_first() else {
        return;
    };
    let seed = REPORT_SEEDS[usize::from(pick) % REPORT_SEEDS.len()];
    report_readers(mutate_json(seed, mutation, EVENT_WORDS).as_bytes());
});
