//! The fuzz targets' properties (`fuzz/src/lib.rs`, included here by path so there is one
//! definition), driven by proptest in every CI run: a few hundred cases each, seconds in all.
//! `cargo fuzz run <target>` drives the same functions for as long as one cares to wait.

#[path = "../../../fuzz/src/lib.rs"]
mod shared;

use proptest::prelude::*;
use proptest::test_runner::Config;

use shared::{EVENT_SEED, EVENT_WORDS, REPORT_SEEDS, RESPONSE_WORDS};

fn bytes(max: usize) -> impl Strategy<Value = Vec<u8>> {
    proptest::collection::vec(any::<u8>(), 0..max)
}

proptest! {
    #![proptest_config(Config::with_cases(256))]

    #[test]
    fn the_oracle_judges_any_bytes(event in bytes(256), body in bytes(512)) {
        shared::oracle(&event, &body);
    }

    #[test]
    fn the_oracle_judges_any_json_answer(recipe in bytes(2048), mutation in bytes(64)) {
        let body = shared::json_from_bytes(&recipe, RESPONSE_WORDS);
        let event = shared::mutate_json(EVENT_SEED, &mutation, EVENT_WORDS);
        shared::oracle(event.as_bytes(), body.as_bytes());
    }

    #[test]
    fn the_canonical_reader_agrees_with_the_general_one(recipe in bytes(256), cut in any::<usize>()) {
        // Whole, and cut anywhere: a reader that accepts a prefix must accept what serde_json does.
        let body = shared::canonical_from_bytes(&recipe);
        shared::oracle(EVENT_SEED.as_bytes(), body.as_bytes());
        shared::readers_agree(&body.as_bytes()[..cut % (body.len() + 1)]);
    }

    #[test]
    fn the_oracle_judges_an_answer_cut_anywhere(recipe in bytes(2048), cut in any::<usize>()) {
        // Records stream past before the parser finds the body broken: what they produced must
        // not survive into the verdict.
        let body = shared::json_from_bytes(&recipe, RESPONSE_WORDS);
        let body = &body.as_bytes()[..cut % (body.len() + 1)];
        shared::oracle(EVENT_SEED.as_bytes(), body);
    }

    #[test]
    fn the_event_parsers_read_any_bytes(raw in bytes(512), recipe in bytes(1024)) {
        shared::event_parsers(&raw);
        shared::event_parsers(shared::json_from_bytes(&recipe, EVENT_WORDS).as_bytes());
        shared::event_parsers(shared::mutate_json(EVENT_SEED, &recipe, EVENT_WORDS).as_bytes());
    }

    #[test]
    fn the_report_readers_read_any_report(seed in 0..REPORT_SEEDS.len(), mutation in bytes(96), raw in bytes(256)) {
        shared::report_readers(&raw);
        shared::report_readers(REPORT_SEEDS[seed].as_bytes());
        let words: Vec<&str> = RESPONSE_WORDS.iter().chain(EVENT_WORDS).copied().collect();
        shared::report_readers(shared::mutate_json(REPORT_SEEDS[seed], &mutation, &words).as_bytes());
    }
}

proptest! {
    // Each case writes a folder: fewer cases, same properties.
    #![proptest_config(Config::with_cases(48))]

    #[test]
    fn case_folders_load_or_are_refused(
        event in bytes(128),
        case_json in bytes(256),
        body in bytes(512),
        which in 0u8..8,
    ) {
        let event = match which % 4 {
            0 => event,
            1 => shared::json_from_bytes(&event, EVENT_WORDS).into_bytes(),
            _ => shared::mutate_json(EVENT_SEED, &event, EVENT_WORDS).into_bytes(),
        };
        let case_json = shared::json_from_bytes(&case_json, &["check", "fingerprint", "fingerprint_version", "seed", "a"]);
        let body = shared::json_from_bytes(&body, RESPONSE_WORDS);
        let present = |bit: u8, b: &[u8]| (which & bit == 0).then_some(b.to_vec());
        shared::case_folder(
            present(4, &event).as_deref(),
            Some(case_json.as_bytes()),
            body.as_bytes(),
        );
    }
}

#[test]
fn the_report_seeds_are_real_reports() {
    // A seed that stopped parsing would make every report property vacuous.
    for seed in REPORT_SEEDS {
        firehose_reports::json::read(seed.as_bytes()).expect("a seed is a report");
    }
}

#[test]
fn the_canonical_bodies_sit_on_both_sides_of_the_canonical_reader() {
    // The agreement property means something only if the canonical reader both reads and refuses
    // a good share of what it is fed.
    let mut read = 0;
    let total = 2000u32;
    for i in 0..total {
        let recipe: Vec<u8> = (0..64u32)
            .map(|j| (i.wrapping_mul(2_654_435_761) ^ j.wrapping_mul(40_503)).rotate_left(j) as u8)
            .collect();
        let body = shared::canonical_from_bytes(&recipe);
        let mut items = Vec::new();
        read +=
            u32::from(firehose_harness::contract::canonical(body.as_bytes(), &mut items).is_some());
    }
    assert!(
        read > total / 10 && read < total * 9 / 10,
        "{read} of {total} read"
    );
}
