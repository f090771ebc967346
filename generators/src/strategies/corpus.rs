//! Real events as one more strategy: mutate a corpus event the way real traffic varies, and shrink
//! events that no spec describes by dropping records.
//!
//! Mutations keep the event one Firehose could send: payloads stay valid base64 (re-encoded after a
//! bit flip), compressed payloads are decompressed, flipped and re-compressed, duplicated records get
//! fresh unique ids, and the result stays within the request and record limits and inside the
//! generator flags: re-compression only to selected compressions, and a batch no larger than the
//! buffer hint plus one record.

use proptest::strategy::ValueTree;

use super::GenConfig;
use super::ddmin::Ddmin;
use crate::payload::{Compression, compress, decompress};
use crate::rng::{FastRng, mix};
use crate::wire::{Event, MAX_RECORD_BYTES, MAX_REQUEST_BYTES};

/// A mutated copy of `event`, deterministic in `seed`, within `config`'s compressions and batch bound.
pub fn mutate(event: &Event, seed: u64, config: &GenConfig) -> Event {
    let mut rng = FastRng::new(seed);
    let mut out = event.clone();
    if out.records.is_empty() {
        return out;
    }
    for _ in 0..rng.range(1, 3) {
        match rng.below(4) {
            0 => flip_bits(&mut out, &mut rng),
            1 => recompress(&mut out, &mut rng, &config.compressions),
            2 => duplicate(&mut out, &mut rng, seed),
            _ => reorder(&mut out, &mut rng),
        }
    }
    // Duplicates and re-compression can grow an event; drop records from the end until it fits
    // Lambda's request limit and Firehose's batch bound, unless the original was already over.
    let limit = config.batch_limit(config.max_hint()).max(data_len(event));
    while out.records.len() > 1
        && (data_len(&out) > limit || out.to_json().len() > MAX_REQUEST_BYTES)
    {
        out.records.pop();
    }
    out
}

/// The sum of the records' data as put: what Firehose's buffer hint measures.
fn data_len(event: &Event) -> usize {
    event.records.iter().map(|r| r.data.len()).sum()
}

fn flip_bits(event: &mut Event, rng: &mut FastRng) {
    let i = rng.below(event.records.len() as u64) as usize;
    let record = &mut event.records[i];
    let kind = Compression::sniff(&record.data);
    let Ok(mut raw) = decompress(kind, &record.data, MAX_RECORD_BYTES * 8) else {
        return;
    };
    if raw.is_empty() {
        return;
    }
    for _ in 0..rng.range(1, 8) {
        let at = rng.below(raw.len() as u64) as usize;
        raw[at] ^= 1 << rng.below(8);
    }
    let data = compress(kind, 6, &raw);
    if data.len() <= MAX_RECORD_BYTES {
        record.data = data;
    }
}

fn recompress(event: &mut Event, rng: &mut FastRng, allowed: &[Compression]) {
    let i = rng.below(event.records.len() as u64) as usize;
    let record = &mut event.records[i];
    let kind = Compression::sniff(&record.data);
    let targets: Vec<Compression> = allowed.iter().copied().filter(|c| *c != kind).collect();
    if targets.is_empty() {
        return;
    }
    let Ok(raw) = decompress(kind, &record.data, MAX_RECORD_BYTES * 8) else {
        return;
    };
    let target = *rng.pick(&targets);
    let data = compress(target, rng.range(1, 9) as u8, &raw);
    if data.len() <= MAX_RECORD_BYTES {
        record.data = data;
    }
}

fn duplicate(event: &mut Event, rng: &mut FastRng, seed: u64) {
    let i = rng.below(event.records.len() as u64) as usize;
    let mut copy = event.records[i].clone();
    // Fresh and unique: Firehose never sends a recordId twice.
    copy.record_id = format!(
        "{}-dup{:x}",
        copy.record_id,
        mix(seed, event.records.len() as u64)
    );
    event.records.push(copy);
}

fn reorder(event: &mut Event, rng: &mut FastRng) {
    for i in (1..event.records.len()).rev() {
        let j = rng.below(i as u64 + 1) as usize;
        event.records.swap(i, j);
    }
}

/// Shrinks an event no spec describes (a corpus event) by dropping records.
#[derive(Debug, Clone)]
pub struct EventTree {
    accepted: Event,
    candidate: Option<Event>,
    ddmin: Ddmin,
}

impl EventTree {
    pub fn new(event: Event) -> Self {
        let ddmin = Ddmin::new(event.records.len());
        EventTree {
            accepted: event,
            candidate: None,
            ddmin,
        }
    }

    fn propose(&mut self) -> bool {
        let Some(range) = self.ddmin.next(self.accepted.records.len()) else {
            return false;
        };
        let mut c = self.accepted.clone();
        c.records.drain(range);
        self.candidate = Some(c);
        true
    }
}

impl ValueTree for EventTree {
    type Value = Event;

    fn current(&self) -> Event {
        self.candidate
            .clone()
            .unwrap_or_else(|| self.accepted.clone())
    }

    fn simplify(&mut self) -> bool {
        if let Some(c) = self.candidate.take() {
            self.accepted = c;
            self.ddmin.removed();
        }
        self.propose()
    }

    fn complicate(&mut self) -> bool {
        if self.candidate.take().is_none() {
            return false;
        }
        self.ddmin.kept();
        self.propose()
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::strategies::{GenConfig, sample};

    #[test]
    fn mutations_stay_valid_and_unique() {
        let cfg = GenConfig {
            records: 2..=20,
            record_size: 0..=5000,
            ..GenConfig::default()
        };
        for seed in 0..200 {
            let event = sample(&cfg, seed).materialize();
            let m = mutate(&event, seed, &cfg);
            assert_eq!(m, mutate(&event, seed, &cfg), "deterministic");
            let json = m.to_json();
            assert!(json.len() <= MAX_REQUEST_BYTES);
            let ids: std::collections::HashSet<_> = m.record_ids().collect();
            assert_eq!(ids.len(), m.records.len(), "ids stay unique");
            assert_eq!(
                Event::from_json(&json).unwrap(),
                m,
                "valid base64, valid event"
            );
        }
    }

    #[test]
    fn event_tree_drops_to_the_record_that_matters() {
        let cfg = GenConfig {
            records: 50..=50,
            record_size: 0..=100,
            ..GenConfig::default()
        };
        let event = sample(&cfg, 4).materialize();
        let needle = event.records[31].record_id.clone();
        let fails = |e: &Event| e.records.iter().any(|r| r.record_id == needle);
        let mut tree = EventTree::new(event);
        let mut more = tree.simplify();
        while more {
            more = if fails(&tree.current()) {
                tree.simplify()
            } else {
                tree.complicate()
            };
        }
        assert_eq!(tree.current().records.len(), 1);
        assert_eq!(tree.current().records[0].record_id, needle);
    }
}
