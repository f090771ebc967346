//! The oracle: judge one invocation against the event it answered.
//!
//! [`check`] is pure — `(event view, invocation, enabled checks) → Verdict` — so the conformance runner,
//! the load engine and `validate` share it. It never stops at the first problem: every record is looked
//! at, each violation names the record in words ("record 17 (id r17) came back twice"), and violations
//! carry a fingerprint so a run can group thousands of them into a handful of distinct bugs.
//!
//! Order of evaluation, each step only when the previous left something to judge: timeout → function
//! error → size → JSON → shape → per-record checks → missing ids.

mod base64;
mod checks;
pub mod fingerprint;
mod response;

use std::collections::BTreeMap;
use std::fmt;

use rustc_hash::FxHashMap;

use firehose_generators::wire::{EventView, MAX_RESPONSE_BYTES, Source};
use serde_json::Value;

pub use self::base64::{Base64Check, check_base64};
pub use checks::{CheckId, CheckSet, Severity};
pub use response::{Field, Item, JsonKind, RecordView, ResponseView};

use crate::invocation::{Invocation, Outcome};

/// At most this many example violations are kept per check and invocation; the count is exact.
/// The first violation of every distinct failure is kept even past this cap, so every counted
/// (check, fingerprint) has an example to show.
pub const EXAMPLES_PER_CHECK: usize = 20;

/// At most this many examples are kept per distinct failure (check, fingerprint) and invocation.
pub const EXAMPLES_PER_KEY: usize = 5;

/// Distinct failures (check, fingerprint) tracked per invocation and per run; DESIGN's
/// `failures_truncated`. Violations of further keys are counted per check only
/// ([`Verdict::overflow`]), never as a key without an example.
pub const MAX_FAILURE_KEYS: usize = 1000;

/// One broken rule, about one record where that applies.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Violation {
    pub check: CheckId,
    pub severity: Severity,
    /// A sentence a person understands.
    pub message: String,
    pub record_id: Option<String>,
    /// Index in the input batch, or in the response's `records` for records the batch does not know.
    pub record_index: Option<usize>,
    /// What kind of problem, without record-specific detail: violations with the same check and
    /// fingerprint are the same bug.
    pub fingerprint: String,
}

/// How many records came back with each legal result.
#[derive(Debug, Clone, Copy, Default, PartialEq, Eq)]
pub struct RecordResults {
    pub ok: u64,
    pub dropped: u64,
    pub processing_failed: u64,
}

impl RecordResults {
    pub fn add(&mut self, other: &RecordResults) {
        self.ok += other.ok;
        self.dropped += other.dropped;
        self.processing_failed += other.processing_failed;
    }
}

/// The judgement of one invocation.
///
/// Invariant: every key of [`Verdict::key_counts`] has at least one example in
/// [`Verdict::violations`] — reports and shrinking look examples up by key.
#[derive(Debug, Clone, Default)]
pub struct Verdict {
    /// Examples: the first of every distinct failure, then up to [`EXAMPLES_PER_KEY`] per failure
    /// while the check has fewer than [`EXAMPLES_PER_CHECK`].
    pub violations: Vec<Violation>,
    /// Exact number of violations per check.
    pub counts: BTreeMap<CheckId, u64>,
    /// Exact number of violations per distinct failure (check, fingerprint), for at most
    /// [`MAX_FAILURE_KEYS`] distinct failures.
    pub key_counts: BTreeMap<(CheckId, String), u64>,
    /// Violations per check whose distinct failure came after the first [`MAX_FAILURE_KEYS`].
    pub overflow: BTreeMap<CheckId, u64>,
    pub results: RecordResults,
    /// Bytes of `Ok` output data the transformer produced (base64 length × 3/4), for throughput.
    pub output_bytes: u64,
    /// Examples kept per check and per key, so `push` decides in O(log n).
    kept_per_check: BTreeMap<CheckId, usize>,
    kept_per_key: BTreeMap<(CheckId, String), usize>,
}

impl Verdict {
    /// True when any violation is an error (warnings alone pass).
    pub fn failed(&self) -> bool {
        self.violations
            .iter()
            .any(|v| v.severity == Severity::Error)
    }

    /// The distinct (check, fingerprint) pairs of error severity, in check order.
    pub fn failure_keys(&self) -> Vec<(CheckId, String)> {
        let mut keys: Vec<_> = self
            .violations
            .iter()
            .filter(|v| v.severity == Severity::Error)
            .map(|v| (v.check, v.fingerprint.clone()))
            .collect();
        keys.sort();
        keys.dedup();
        keys
    }

    /// Add a violation found outside [`check`] (the runner's `deterministic` comparison).
    pub fn push(&mut self, checks: &CheckSet, v: Violation) {
        if !checks.contains(v.check) {
            return;
        }
        *self.counts.entry(v.check).or_default() += 1;
        let key = (v.check, v.fingerprint.clone());
        let tracked = self.key_counts.len();
        let first_of_key = match self.key_counts.get_mut(&key) {
            Some(n) => {
                *n += 1;
                false
            }
            None if tracked < MAX_FAILURE_KEYS => {
                self.key_counts.insert(key.clone(), 1);
                true
            }
            None => {
                *self.overflow.entry(v.check).or_default() += 1;
                return;
            }
        };
        let per_check = self.kept_per_check.entry(v.check).or_default();
        let per_key = self.kept_per_key.entry(key).or_default();
        if first_of_key || (*per_key < EXAMPLES_PER_KEY && *per_check < EXAMPLES_PER_CHECK) {
            *per_check += 1;
            *per_key += 1;
            self.violations.push(v);
        }
    }

    /// The first example of the distinct failure `(check, fingerprint)`, if this verdict counts it.
    pub fn example(&self, check: CheckId, fingerprint: &str) -> Option<&Violation> {
        self.violations
            .iter()
            .find(|v| v.check == check && v.fingerprint == fingerprint)
    }
}

/// Shorten an id for messages; real ids can be 160 characters.
pub fn short_id(id: &str) -> String {
    const MAX: usize = 48;
    if id.chars().count() <= MAX {
        return format!("{id:?}");
    }
    let head: String = id.chars().take(20).collect();
    let tail: String = {
        let v: Vec<char> = id.chars().collect();
        v[v.len() - 20..].iter().collect()
    };
    format!("\"{head}…{tail}\" ({} chars)", id.chars().count())
}

fn violation(
    check: CheckId,
    fingerprint: impl Into<String>,
    message: impl Into<String>,
) -> Violation {
    Violation {
        check,
        severity: Severity::Error,
        message: message.into(),
        record_id: None,
        record_index: None,
        fingerprint: fingerprint.into(),
    }
}

impl Violation {
    fn at(mut self, index: usize, id: Option<&str>) -> Self {
        self.record_index = Some(index);
        self.record_id = id.map(str::to_string);
        self
    }

    fn warning(mut self) -> Self {
        self.severity = Severity::Warning;
        self
    }
}

/// Judge `inv` as the answer to the event described by `event`.
pub fn check(event: &EventView, inv: &Invocation, checks: &CheckSet) -> Verdict {
    let mut v = Verdict::default();
    match &inv.outcome {
        Outcome::TimedOut => {
            v.push(
                checks,
                violation(
                    CheckId::WithinTimeout,
                    "timeout",
                    format!(
                        "no answer within {:.1} s; Firehose would retry the whole batch",
                        inv.elapsed.as_secs_f64()
                    ),
                ),
            );
            return v;
        }
        Outcome::Broken(reason) => {
            v.push(
                checks,
                violation(
                    CheckId::InvocationSucceeded,
                    "broken",
                    format!("the invocation broke off: {reason}"),
                ),
            );
            return v;
        }
        Outcome::Answered => {}
    }
    if let Some(fe) = &inv.function_error {
        let message = match &fe.message {
            // The exception line usually names its type already ("ValueError: bad record 17").
            Some(m) if m.starts_with(fe.kind.as_str()) => {
                format!("the function returned an error: {}", clip(m, 300))
            }
            Some(m) => format!(
                "the function returned an error ({}): {}",
                fe.kind,
                clip(m, 300)
            ),
            None => format!("the function returned an error ({})", fe.kind),
        };
        v.push(
            checks,
            violation(
                CheckId::InvocationSucceeded,
                fingerprint::function_error(&fe.kind, fe.message.as_deref()),
                message,
            ),
        );
        return v;
    }
    if let Some(status) = inv.status
        && !(200..300).contains(&status)
    {
        v.push(
            checks,
            violation(
                CheckId::InvocationSucceeded,
                format!("http-{status}"),
                format!(
                    "the target answered HTTP {status}: {}",
                    clip(&String::from_utf8_lossy(&inv.body), 200)
                ),
            ),
        );
        return v;
    }
    let body = &inv.body[..];
    if body.starts_with(b"Task timed out after") {
        // The Runtime Interface Emulator reports a timeout as HTTP 200 with this text (RIE issue 21).
        v.push(
            checks,
            violation(
                CheckId::WithinTimeout,
                "timeout",
                format!(
                    "the function timed out: {}",
                    clip(&String::from_utf8_lossy(body), 100)
                ),
            ),
        );
        return v;
    }
    if inv.body_truncated || inv.reported_too_large || body.len() > MAX_RESPONSE_BYTES {
        let len = if inv.reported_too_large {
            "over the limit (Lambda answered Function.ResponseSizeTooLarge)".to_string()
        } else if inv.body_truncated {
            format!("more than {} bytes", body.len())
        } else {
            format!("{} bytes", body.len())
        };
        v.push(
            checks,
            violation(
                CheckId::ResponseWithinLimit,
                "too-large",
                format!(
                    "the response is {len}, over Lambda's {MAX_RESPONSE_BYTES}-byte limit; Lambda would fail the invocation"
                ),
            ),
        );
        if inv.body_truncated || inv.reported_too_large {
            return v;
        }
    }
    let view = match ResponseView::parse(body) {
        Ok(view) => view,
        Err(e) => {
            let what = if body.is_empty() {
                "the response body is empty".to_string()
            } else if std::str::from_utf8(body).is_err() && e.is_syntax() {
                format!("the response is not JSON (not even UTF-8): {e}")
            } else {
                format!(
                    "the response is not JSON: {e}; it starts with {}",
                    clip(&String::from_utf8_lossy(&body[..body.len().min(80)]), 80)
                )
            };
            v.push(checks, violation(CheckId::ResponseIsJson, "not-json", what));
            return v;
        }
    };
    check_view(event, &view, checks, &mut v);
    v
}

fn check_view(event: &EventView, view: &ResponseView<'_>, checks: &CheckSet, v: &mut Verdict) {
    let (records, error_message, error_type) = match view {
        ResponseView::NotObject(kind) => {
            v.push(
                checks,
                violation(
                    CheckId::ResponseShape,
                    "not-object",
                    format!(
                        "the response is {}, not an object with a records array",
                        kind.article()
                    ),
                ),
            );
            return;
        }
        ResponseView::Object {
            records,
            error_message,
            error_type,
        } => (records, error_message, error_type),
    };
    let items = match records {
        None if error_message.is_some() || error_type.is_some() => {
            let kind = error_type
                .as_ref()
                .and_then(Field::as_str)
                .unwrap_or("unknown");
            let msg = error_message
                .as_ref()
                .and_then(Field::as_str)
                .unwrap_or("no message");
            v.push(
                checks,
                violation(
                    CheckId::InvocationSucceeded,
                    fingerprint::function_error(kind, Some(msg)),
                    format!(
                        "the function returned an error body ({kind}): {}",
                        clip(msg, 300)
                    ),
                ),
            );
            return;
        }
        None => {
            v.push(
                checks,
                violation(
                    CheckId::ResponseShape,
                    "no-records",
                    "the response has no `records` key",
                ),
            );
            return;
        }
        Some(Err(kind)) => {
            v.push(
                checks,
                violation(
                    CheckId::ResponseShape,
                    "records-not-array",
                    format!("`records` is {}, not an array", kind.article()),
                ),
            );
            return;
        }
        Some(Ok(items)) => items,
    };

    // Input ids → batch indices. Firehose never repeats an id, but real samples do (`--corpus-raw`):
    // an id sent twice may come back twice, each answer taking the next unanswered copy. Copies are
    // chained through `next_copy` so the common case costs one map entry and no allocation per record.
    let n = event.record_ids.len();
    let mut expected: FxHashMap<&str, usize> =
        FxHashMap::with_capacity_and_hasher(n, Default::default());
    let mut next_copy = vec![usize::MAX; n];
    let mut last_copy: FxHashMap<&str, usize> = FxHashMap::default();
    for (i, id) in event.record_ids.iter().enumerate() {
        if let Some(&first) = expected.get(id.as_str()) {
            let tail = last_copy.get(id.as_str()).copied().unwrap_or(first);
            next_copy[tail] = i;
            last_copy.insert(id.as_str(), i);
        } else {
            expected.insert(id.as_str(), i);
        }
    }
    let mut seen = vec![false; n];
    let data_key = event.source.data_key();

    for (ri, item) in items.iter().enumerate() {
        let r = match item {
            Item::Record(r) => r,
            Item::NotObject(kind) => {
                v.push(
                    checks,
                    violation(
                        CheckId::ResponseShape,
                        "record-not-object",
                        format!("response record #{ri} is {}, not an object", kind.article()),
                    )
                    .at(ri, None),
                );
                continue;
            }
        };
        let Some(id) = r.record_id.as_str() else {
            let what = match &r.record_id {
                Field::Absent => "has no recordId".to_string(),
                Field::Other(kind) => format!("has a recordId that is {}", kind.article()),
                Field::Str(_) => unreachable!("handled above"),
            };
            v.push(
                checks,
                violation(
                    CheckId::ResponseShape,
                    "record-id-not-string",
                    format!("response record #{ri} {what}"),
                )
                .at(ri, None),
            );
            continue;
        };
        let batch_index = expected.get(id).map(|&first| {
            let mut i = first;
            while seen[i] && next_copy[i] != usize::MAX {
                i = next_copy[i];
            }
            if seen[i] { first } else { i }
        });
        let label = match batch_index {
            Some(bi) => {
                if seen[bi] {
                    v.push(
                        checks,
                        violation(
                            CheckId::NoDuplicateRecordIds,
                            "duplicate",
                            format!(
                                "record {bi} (id {}) came back twice (again as response record #{ri})",
                                short_id(id)
                            ),
                        )
                        .at(bi, Some(id)),
                    );
                }
                seen[bi] = true;
                Label::Batch(bi, id)
            }
            None => {
                v.push(
                    checks,
                    violation(
                        CheckId::NoUnknownRecordIds,
                        "unknown",
                        format!(
                            "response record #{ri} has recordId {}, which was not in the batch",
                            short_id(id)
                        ),
                    )
                    .at(ri, Some(id)),
                );
                Label::Response(ri, id)
            }
        };
        let index = batch_index.unwrap_or(ri);
        check_record(r, id, index, label, event.source, data_key, checks, v);
    }

    let missing: Vec<usize> = seen
        .iter()
        .enumerate()
        .filter(|(_, s)| !**s)
        .map(|(i, _)| i)
        .collect();
    for &bi in &missing {
        let id = &event.record_ids[bi];
        let of = if missing.len() > 1 {
            format!(" ({} of {} records are missing)", missing.len(), seen.len())
        } else {
            String::new()
        };
        v.push(
            checks,
            violation(
                CheckId::NoMissingRecordIds,
                "missing",
                format!(
                    "record {bi} (id {}) is missing from the response{of}; Firehose fails the whole batch with Lambda.MissingRecordId",
                    short_id(id)
                ),
            )
            .at(bi, Some(id)),
        );
    }
}

/// Names a record in messages; formatted only when a violation is reported, since a passing 6 MB
/// response has thousands of records and no use for their names.
#[derive(Clone, Copy)]
enum Label<'a> {
    /// A record of the batch: its index there and its id.
    Batch(usize, &'a str),
    /// A record of the response the batch does not know: its index in `records`.
    Response(usize, &'a str),
}

impl fmt::Display for Label<'_> {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        match self {
            Label::Batch(i, id) => write!(f, "record {i} (id {})", short_id(id)),
            Label::Response(i, id) => write!(f, "response record #{i} (id {})", short_id(id)),
        }
    }
}

#[allow(clippy::too_many_arguments)]
fn check_record(
    r: &RecordView<'_>,
    id: &str,
    index: usize,
    label: Label<'_>,
    source: Source,
    data_key: &str,
    checks: &CheckSet,
    v: &mut Verdict,
) {
    let result = r.result.as_str();
    match result {
        Some("Ok") => v.results.ok += 1,
        Some("Dropped") => v.results.dropped += 1,
        Some("ProcessingFailed") => v.results.processing_failed += 1,
        Some(other) => {
            let hint = match other.to_ascii_lowercase().as_str() {
                "ok" | "dropped" | "processingfailed" => " (case matters)",
                _ => "",
            };
            v.push(
                checks,
                violation(
                    CheckId::ResultIsLegal,
                    format!("result={}", clip(other, 40)),
                    format!(
                        "{label} has result {:?}; Firehose accepts exactly Ok, Dropped or ProcessingFailed{hint}",
                        clip(other, 60)
                    ),
                )
                .at(index, Some(id)),
            );
        }
        None => {
            let what = match &r.result {
                Field::Absent => "has no result".to_string(),
                Field::Other(kind) => format!("has a result that is {}", kind.article()),
                Field::Str(_) => unreachable!(),
            };
            v.push(
                checks,
                violation(
                    CheckId::ResultIsLegal,
                    "result-missing",
                    format!("{label} {what}"),
                )
                .at(index, Some(id)),
            );
        }
    }

    // The payload field: `data`, or `kafkaRecordValue` for MSK.
    let (payload, wrong_key) = if source == Source::Msk {
        (&r.kafka_record_value, r.data.is_present())
    } else {
        (&r.data, false)
    };
    if result == Some("Ok") && !payload.is_present() {
        let (fp, msg) = if wrong_key {
            (
                "data-instead-of-kafkaRecordValue",
                format!("{label} is Ok but answers `data`; MSK sources expect `kafkaRecordValue`"),
            )
        } else {
            ("no-data", format!("{label} is Ok but has no `{data_key}`"))
        };
        v.push(
            checks,
            violation(CheckId::OkHasData, fp, msg).at(index, Some(id)),
        );
    }
    match payload {
        Field::Str(s) => match check_base64(s.as_bytes()) {
            Base64Check::Valid => {
                v.output_bytes += (s.len() / 4 * 3) as u64;
                if result == Some("Ok")
                    && checks.contains(CheckId::NewlineDelimited)
                    && !s.is_empty()
                    && self::base64::last_decoded_byte(s.as_bytes()) != Some(b'\n')
                {
                    v.push(
                        checks,
                        violation(
                            CheckId::NewlineDelimited,
                            "no-newline",
                            format!(
                                "{label}: data does not end in a newline; Firehose concatenates records without delimiters"
                            ),
                        )
                        .at(index, Some(id))
                        .warning(),
                    );
                }
            }
            Base64Check::Unpadded => v.push(
                checks,
                violation(
                    CheckId::DataIsBase64,
                    "unpadded",
                    format!("{label}: {data_key} is base64 without `=` padding"),
                )
                .at(index, Some(id))
                .warning(),
            ),
            Base64Check::Invalid { offset, reason } => v.push(
                checks,
                violation(
                    CheckId::DataIsBase64,
                    "invalid",
                    format!(
                        "{label}: {data_key} is not base64 ({reason} at offset {offset}); it starts {:?}",
                        clip(s, 40)
                    ),
                )
                .at(index, Some(id)),
            ),
        },
        Field::Other(JsonKind::Null) | Field::Absent => {}
        Field::Other(kind) => v.push(
            checks,
            violation(
                CheckId::DataIsBase64,
                "not-string",
                format!("{label}: {data_key} is {}, not a base64 string", kind.article()),
            )
            .at(index, Some(id)),
        ),
    }

    if let Some(meta) = &r.metadata {
        check_metadata(meta, label, index, id, checks, v);
    }
}

fn check_metadata(
    meta: &Value,
    label: Label<'_>,
    index: usize,
    id: &str,
    checks: &CheckSet,
    v: &mut Verdict,
) {
    let problem = match meta {
        Value::Null => None,
        Value::Object(m) => match m.get("partitionKeys") {
            None => None,
            Some(Value::Object(keys)) => keys.iter().find_map(|(k, val)| match val {
                _ if k.is_empty() => Some(("empty-key", "has an empty key".to_string())),
                Value::String(s) if s.is_empty() => {
                    Some(("empty-value", format!("has an empty value for {k:?}")))
                }
                Value::String(_) => None,
                Value::Null => Some(("null-value", format!("has null for {k:?}"))),
                other => Some((
                    "non-string-value",
                    format!("has {} for {k:?}, not a string", kind_of(other).article()),
                )),
            }),
            Some(other) => Some((
                "not-a-map",
                format!("is {}, not a map", kind_of(other).article()),
            )),
        },
        other => {
            v.push(
                checks,
                violation(
                    CheckId::PartitionKeysValid,
                    "metadata-not-object",
                    format!(
                        "{label}: metadata is {}, not an object",
                        kind_of(other).article()
                    ),
                )
                .at(index, Some(id)),
            );
            None
        }
    };
    if let Some((fp, what)) = problem {
        v.push(
            checks,
            violation(
                CheckId::PartitionKeysValid,
                fp,
                format!("{label}: metadata.partitionKeys {what}; dynamic partitioning would fail"),
            )
            .at(index, Some(id)),
        );
    }
}

fn kind_of(v: &Value) -> JsonKind {
    match v {
        Value::Null => JsonKind::Null,
        Value::Bool(_) => JsonKind::Bool,
        Value::Number(_) => JsonKind::Number,
        Value::String(_) => JsonKind::String,
        Value::Array(_) => JsonKind::Array,
        Value::Object(_) => JsonKind::Object,
    }
}

/// Cut `s` to `max` characters for a message.
pub fn clip(s: &str, max: usize) -> String {
    if s.chars().count() <= max {
        return s.to_string();
    }
    let mut out: String = s.chars().take(max).collect();
    out.push('…');
    out
}

/// The `deterministic` check: two answers to the same batch must agree record by record (Firehose
/// retries whole batches, so a transformer that answers differently delivers different data).
pub fn compare_answers(first: &Invocation, second: &Invocation) -> Option<Violation> {
    let a = normalise(&first.body);
    let b = normalise(&second.body);
    if a == b {
        return None;
    }
    let detail = match (&a, &b) {
        (Some(a), Some(b)) => a
            .iter()
            .find(|(id, va)| b.get(*id) != Some(va))
            .map(|(id, _)| format!("record {} differs", short_id(id)))
            .unwrap_or_else(|| "the records differ".into()),
        _ => "one answer could not be read".into(),
    };
    Some(violation(
        CheckId::Deterministic,
        "differs",
        format!("the same batch sent twice got different answers: {detail}"),
    ))
}

type Normalised = BTreeMap<String, (Option<String>, Option<String>, Option<String>)>;

fn normalise(body: &[u8]) -> Option<Normalised> {
    let ResponseView::Object {
        records: Some(Ok(items)),
        ..
    } = ResponseView::parse(body).ok()?
    else {
        return None;
    };
    Some(
        items
            .iter()
            .filter_map(|item| match item {
                Item::Record(r) => Some((
                    r.record_id.as_str()?.to_string(),
                    (
                        r.result.as_str().map(str::to_string),
                        r.data
                            .as_str()
                            .or(r.kafka_record_value.as_str())
                            .map(str::to_string),
                        r.metadata.as_ref().map(Value::to_string),
                    ),
                )),
                Item::NotObject(_) => None,
            })
            .collect(),
    )
}

#[cfg(test)]
mod tests;
