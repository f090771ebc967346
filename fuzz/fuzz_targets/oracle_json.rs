//! Arbitrary JSON answers, built from response words, to the oracle: whole, and cut short.
#![no_main]

use firehose_harness_fuzz::{
    EVENT_SEED, EVENT_WORDS, RESPONSE_WORDS, json_from_bytes, mutate_json, oracle,
};
use libfuzzer_sys::fuzz_target;

fuzz_target!(|data: &[u8]| {
    let (head, recipe) = data.split_at(data.len().min(8));
    let event = mutate_json(EVENT_SEED, head, EVENT_WORDS);
    let body = json_from_bytes(recipe, RESPONSE_WORDS);
    oracle(event.as_bytes(), body.as_bytes());
    let cut = head
        .first()
        .map_or(0, |&b| usize::from(b) * body.len() / 256);
    oracle(EVENT_SEED.as_bytes(), &body.as_bytes()[..cut]);
});
