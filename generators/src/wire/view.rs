//! A lenient view of any event JSON: what the oracle needs (the source, the record ids in order) from
//! events we did not write — real samples, corpus files, regressions saved by older versions. It never
//! rejects a quirk Firehose itself might tolerate; it only needs a `records` array.

use serde_json::Value;

use super::Source;

/// What the contract check needs to know about the event a response answers.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct EventView {
    pub source: Source,
    /// Record ids in batch order. A non-string id is kept as its JSON text so it can still be matched.
    pub record_ids: Vec<String>,
}

#[derive(Debug, thiserror::Error)]
pub enum ViewError {
    #[error("the event is not JSON: {0}")]
    NotJson(#[from] serde_json::Error),
    #[error("the event is not a JSON object")]
    NotObject,
    #[error("the event has no `records` array")]
    NoRecords,
}

impl EventView {
    pub fn parse(bytes: &[u8]) -> Result<EventView, ViewError> {
        let value: Value = serde_json::from_slice(bytes)?;
        EventView::from_value(&value)
    }

    pub fn from_value(value: &Value) -> Result<EventView, ViewError> {
        let obj = value.as_object().ok_or(ViewError::NotObject)?;
        let records = obj
            .get("records")
            .and_then(Value::as_array)
            .ok_or(ViewError::NoRecords)?;
        let has = |key: &str| obj.get(key).is_some_and(|v| !v.is_null());
        let any_record_has = |key: &str| {
            records
                .iter()
                .any(|r| r.get(key).is_some_and(|v| !v.is_null()))
        };
        let source = if has("sourceMSKArn") || any_record_has("kafkaRecordValue") {
            Source::Msk
        } else if has("sourceKinesisStreamArn") || any_record_has("kinesisRecordMetadata") {
            Source::Kinesis
        } else {
            Source::DirectPut
        };
        let record_ids = records
            .iter()
            .map(|r| match r.get("recordId") {
                Some(Value::String(s)) => s.clone(),
                Some(other) => other.to_string(),
                None => String::new(),
            })
            .collect();
        Ok(EventView { source, record_ids })
    }
}

impl From<&super::Event> for EventView {
    fn from(event: &super::Event) -> Self {
        EventView {
            source: event.source(),
            record_ids: event.records.iter().map(|r| r.record_id.clone()).collect(),
        }
    }
}
