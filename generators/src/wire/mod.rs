//! The Firehose invocation event exactly as it travels on the wire.
//!
//! Why our own types and not `aws_lambda_events`: that crate writes absent keys as `null`, timestamps as
//! strings, and has no MSK shape (see `shared/reference/FIREHOSE_CONTRACT.md` §7). Here absent keys are
//! absent, timestamps are epoch-millisecond numbers, and record ids are opaque strings.
//!
//! The payload is held *decoded* ([`Record::data`] is the bytes the producer put, already compressed if
//! the producer compressed them) and base64-encoded only when the event is serialised.

mod corpus;
mod event;
mod limits;
mod view;

pub use corpus::{CorpusError, CorpusFile, CorpusQuirk, load_corpus_dir, load_corpus_file};
pub use event::{Event, KinesisRecordMetadata, MskRecordMetadata, Record, Source, SourceMeta};
pub use limits::*;
pub use view::{EventView, ViewError};
