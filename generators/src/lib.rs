//! What goes on the wire to a Firehose transformer, and how to produce lots of it.
//!
//! - [`wire`] — the invocation event exactly as Firehose sends it ([`wire::Event`]), the limits
//!   ([`wire::MAX_REQUEST_BYTES`], …), a lenient [`wire::EventView`] of any event JSON, and the loader
//!   for real sample corpora ([`wire::load_corpus_dir`]).
//! - [`payload`] — producer payloads by family (JSON, text, CloudWatch Logs as a subscription sends
//!   it and as Firehose decompresses or extracts it, Apache, syslog, CSV, binary, empty) and
//!   compression.
//! - [`spec`] — [`spec::BatchSpec`], a batch described by a few numbers, and its deterministic
//!   [`spec::BatchSpec::materialize`] into an event.
//! - [`strategies`] — [`strategies::GenConfig`] (what may be generated), [`strategies::sample`] (one
//!   batch from a seed), the proptest [`strategies::BatchStrategy`] whose [`strategies::BatchTree`]
//!   shrinks by bisection within the config, and the fixed corner batches
//!   ([`strategies::boundary_corners`]: each corner's batch, or why the config rules it out).
//!
//! Every strategy stays inside its [`GenConfig`]: only the selected sources, payload families and
//! compressions, and batches of at most the buffer hint plus one record
//! ([`GenConfig::batch_limit`]).
//!
//! Data flow: `GenConfig` + seed → `BatchSpec` → `Event` → JSON bytes.
//!
//! ```
//! use firehose_generators::strategies::{GenConfig, sample};
//!
//! let spec = sample(&GenConfig::default(), 42);
//! let bytes = spec.materialize().to_json();
//! assert!(bytes.len() <= firehose_generators::wire::MAX_REQUEST_BYTES);
//! assert_eq!(bytes, sample(&GenConfig::default(), 42).materialize().to_json());
//! ```

pub mod payload;
pub mod rng;
pub mod spec;
pub mod strategies;
pub mod wire;

pub use spec::{BatchSpec, GENERATOR_VERSION, IdStyle, RecordSpec};
pub use strategies::{BatchStrategy, BatchTree, Dimension, GenConfig};
pub use wire::{Event, EventView, Source};
