//! One event ready to send, and where it came from.

use bytes::Bytes;
use firehose_generators::strategies::sample;
use firehose_generators::wire::EventView;
use firehose_generators::{BatchSpec, Event, GenConfig};

/// Where an input came from: what a case folder says and what a report names.
#[derive(Debug, Clone, PartialEq, Eq)]
pub enum Origin {
    Random {
        index: u64,
    },
    /// A random case that mutated a corpus event.
    Mutation {
        index: u64,
        file: String,
    },
    Boundary {
        name: String,
    },
    Corpus {
        file: String,
    },
    Regression {
        dir: String,
    },
}

/// One event ready to send: the bytes exactly as sent, the view the contract judges them by, and
/// what shrinking can edit.
#[derive(Debug, Clone)]
pub struct Input {
    pub bytes: Bytes,
    pub view: EventView,
    /// Present for generated batches: what shrinking edits and case folders describe.
    pub spec: Option<BatchSpec>,
    /// Present for corpus events that parse: shrinking drops their records.
    pub event: Option<Event>,
    /// Where it came from: a case index, a boundary name, a corpus file.
    pub origin: Origin,
    /// The records' data as put (after producer compression, before base64), summed: the bytes a
    /// buffer hint is about. Unknown for events that do not parse.
    pub data_bytes: Option<usize>,
}

impl Input {
    /// Case `index` of `seed`: derived from (seed, index) alone, so `check` with any number of
    /// workers and `load` send the same bytes for the same case.
    pub fn generated(config: &GenConfig, seed: u64, index: u64) -> Input {
        Input::from_spec(
            sample(config, GenConfig::case_seed(seed, index)),
            Origin::Random { index },
        )
    }

    pub fn from_spec(spec: BatchSpec, origin: Origin) -> Input {
        let event = spec.materialize();
        Input {
            bytes: Bytes::from(event.to_json()),
            view: EventView::from(&event),
            data_bytes: Some(data_bytes(&event)),
            spec: Some(spec),
            event: None,
            origin,
        }
    }

    pub fn from_event(event: Event, origin: Origin) -> Input {
        Input {
            bytes: Bytes::from(event.to_json()),
            view: EventView::from(&event),
            data_bytes: Some(data_bytes(&event)),
            spec: None,
            event: Some(event),
            origin,
        }
    }

    /// Bytes sent as they are (a regression, a corpus file), with `event` when they parse.
    pub fn verbatim(
        bytes: Vec<u8>,
        view: EventView,
        event: Option<Event>,
        origin: Origin,
    ) -> Input {
        Input {
            data_bytes: event.as_ref().map(data_bytes),
            bytes: Bytes::from(bytes),
            view,
            spec: None,
            event,
            origin,
        }
    }

    /// A fixed event from a file (`load --event`), sent as is: an error when it is no event.
    pub fn from_file(label: String, bytes: Vec<u8>) -> Result<Input, String> {
        let view = EventView::parse(&bytes).map_err(|e| format!("{label}: {e}"))?;
        let event = Event::from_json(&bytes).ok();
        Ok(Input::verbatim(
            bytes,
            view,
            event,
            Origin::Corpus { file: label },
        ))
    }

    /// The same bytes again, without what shrinking would edit: for re-runs of a minimal case.
    pub fn resend(&self) -> Input {
        Input {
            bytes: self.bytes.clone(),
            view: self.view.clone(),
            spec: None,
            event: None,
            origin: self.origin.clone(),
            data_bytes: None,
        }
    }
}

/// The records' data as put, summed.
fn data_bytes(event: &Event) -> usize {
    event.records.iter().map(|r| r.data.len()).sum()
}

/// "1 record from direct-put, 65,537 bytes of record data: text, 65537 bytes" — sizes are the
/// records' data as put, never the requested content size (a CloudWatch Logs envelope asked for 0
/// bytes is still 333).
pub fn describe_batch(spec: &BatchSpec) -> String {
    let records = describe_records(spec);
    let n = records.len();
    let total: usize = records.iter().map(|(bytes, _)| bytes).sum();
    let head = format!(
        "{} record{} from {}, {} bytes of record data",
        n,
        if n == 1 { "" } else { "s" },
        spec.source,
        crate::values::format_count(total as u64),
    );
    let shown: Vec<&str> = records.iter().take(3).map(|(_, d)| d.as_str()).collect();
    let more = if n > 3 {
        format!("; … {} more", n - 3)
    } else {
        String::new()
    };
    format!("{head}: {}{more}", shown.join("; "))
}

/// Each record of `spec` with its data's size as put, described.
pub fn describe_records(spec: &BatchSpec) -> Vec<(usize, String)> {
    spec.records
        .iter()
        .map(|r| {
            let bytes = r.payload().len();
            let mut s = format!("{}, {bytes} bytes", r.family.describe(r.variant));
            if r.compression != firehose_generators::payload::Compression::None {
                s.push_str(&format!(", {} level {}", r.compression, r.level));
            }
            if r.id_style != firehose_generators::IdStyle::Short {
                s.push_str(&format!(", {} id", r.id_style.name()));
            }
            (bytes, s)
        })
        .collect()
}
