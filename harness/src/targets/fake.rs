//! A target answering from a closure, in-process: tests of the runner and shrinking start no
//! process and open no socket, and run in paused time.

use std::sync::Mutex;
use std::time::Duration;

use async_trait::async_trait;
use base64::Engine;
use bytes::Bytes;
use firehose_generators::wire::EventView;

use super::{Target, TargetError};
use crate::invocation::Invocation;

/// What the fake does with one event.
pub(crate) enum Reply {
    /// Answer `body` (HTTP 200) after `after`.
    Answer { body: Vec<u8>, after: Duration },
    /// Never answer: the call runs into its timeout.
    Hang,
    /// The call cannot be made (connection refused).
    Refuse,
}

type Respond = dyn Fn(&Bytes) -> Reply + Send + Sync;

pub(crate) struct FakeTarget {
    respond: Box<Respond>,
    received: Mutex<Vec<Bytes>>,
}

impl FakeTarget {
    pub fn new(respond: impl Fn(&Bytes) -> Reply + Send + Sync + 'static) -> Self {
        FakeTarget {
            respond: Box::new(respond),
            received: Mutex::new(Vec::new()),
        }
    }

    /// Every event sent, in the order the calls were made.
    pub fn received(&self) -> Vec<Bytes> {
        self.received
            .lock()
            .unwrap_or_else(|p| p.into_inner())
            .clone()
    }
}

/// A correct answer to `event`: every record back `Ok` with data `"hi\n"`, except those `bad`
/// picks out, which get `result` (or are left out when `result` is `None`).
pub(crate) fn answer(
    event: &Bytes,
    bad: impl Fn(usize, &str) -> bool,
    result: Option<&str>,
) -> Vec<u8> {
    let Ok(view) = EventView::parse(event) else {
        return b"not an event".to_vec();
    };
    let data = base64::engine::general_purpose::STANDARD.encode("hi\n");
    let records: Vec<serde_json::Value> = view
        .record_ids
        .iter()
        .enumerate()
        .filter_map(|(i, id)| match (bad(i, id), result) {
            (false, _) => Some(serde_json::json!({"recordId": id, "result": "Ok", "data": data})),
            (true, Some(r)) => Some(serde_json::json!({"recordId": id, "result": r, "data": data})),
            (true, None) => None,
        })
        .collect();
    serde_json::to_vec(&serde_json::json!({ "records": records })).unwrap_or_default()
}

#[async_trait]
impl Target for FakeTarget {
    fn describe(&self) -> String {
        "fake:".into()
    }

    async fn invoke(&self, event: Bytes, timeout: Duration) -> Result<Invocation, TargetError> {
        self.received
            .lock()
            .unwrap_or_else(|p| p.into_inner())
            .push(event.clone());
        match (self.respond)(&event) {
            Reply::Answer { body, after } => {
                tokio::time::sleep(after).await;
                Ok(Invocation::answered(Some(200), Bytes::from(body), after))
            }
            Reply::Hang => {
                tokio::time::sleep(timeout).await;
                Ok(Invocation::timed_out(timeout))
            }
            Reply::Refuse => Err(TargetError::Unreachable {
                target: self.describe(),
                reason: "connection refused".into(),
            }),
        }
    }
}
