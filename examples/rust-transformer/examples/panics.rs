//! A transformer with a bug that panics: the harness's own tests run it (`exec:`) to check that a
//! Rust panic is reported by the line that names it (`panicked at FILE:LINE:COL: bad record 17`),
//! not by the type name `lambda_runtime` posts for a caught panic.
//!
//! ```text
//! cargo build -p rust-transformer --example panics
//! firehose-harness check --target exec:./target/debug/examples/panics --cases 3
//! ```
//!
//! Expected: `invocation_succeeded` fails with "panicked at … bad record 17"; exit code 1.

use aws_lambda_events::event::firehose::{KinesisFirehoseEvent, KinesisFirehoseResponse};
use lambda_runtime::{Error, LambdaEvent, service_fn};

#[tokio::main(flavor = "current_thread")]
async fn main() -> Result<(), Error> {
    lambda_runtime::run(service_fn(handler)).await
}

async fn handler(
    event: LambdaEvent<KinesisFirehoseEvent>,
) -> Result<KinesisFirehoseResponse, Error> {
    // The bug: it gives up on the whole batch (and panics is how it gives up).
    let _records = event.payload.records;
    panic!("bad record 17");
}
