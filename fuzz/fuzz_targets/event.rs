//! Arbitrary bytes, arbitrary JSON and mutated real events to both event parsers.
#![no_main]

use firehose_harness_fuzz::{EVENT_SEED, EVENT_WORDS, event_parsers, json_from_bytes, mutate_json};
use libfuzzer_sys::fuzz_target;

fuzz_target!(|data: &[u8]| {
    event_parsers(data);
    event_parsers(json_from_bytes(data, EVENT_WORDS).as_bytes());
    event_parsers(mutate_json(EVENT_SEED, data, EVENT_WORDS).as_bytes());
});
