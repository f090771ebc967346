//! The oracle: judge one invocation against the event it answered.
//!
//! [`check`] is pure — `(event view, invocation, enabled checks) → Verdict` — so the conformance runner,
//! the load engine and `validate` share it. It never stops at the first problem: every record is looked
//! at, each violation names the record in words ("record 17 (id r17) came back twice"), and violations
//! carry a fingerprint so a run can group thousands of them into a handful of distinct bugs.
//!
//! Order of evaluation, each step only when the previous left something to judge: timeout → function
//! error → size → JSON → shape → per-record checks → missing ids.
//!
//! Its cost is bounded by the body, never by what the body holds: records are judged one by one as
//! the parser reads them ([`ItemSink`]), so none outlives its own check, and a violation is
//! counted by `&str` key and only built into a message when it is kept as an example
//! ([`EXAMPLES_PER_KEY`], [`EXAMPLES_PER_CHECK`], [`MAX_FAILURE_KEYS`]). A 6 MB answer of two
//! million `{}` records is two million counted violations, a handful of examples, and the body.

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
pub use response::{
    Field, Item, ItemSink, JsonKind, RecordView, ResponseView, Top, canonical, stream,
    stream_general,
};

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
    /// The running counts, made at the first violation: a clean verdict (nearly every one under
    /// load) stays small to make, move and drop.
    tally: Option<Box<Tally>>,
}

/// Per check (indexed by `CheckId as usize`): violations counted, examples kept, and the running
/// tally per distinct failure, looked up by `&str` so counting a violation allocates nothing.
/// [`Verdict::counts`] and [`Verdict::key_counts`] are brought up to date from these once per
/// verdict.
#[derive(Debug, Clone, Default)]
struct Tally {
    count_per_check: [u64; CheckId::ALL.len()],
    kept_per_check: [usize; CheckId::ALL.len()],
    keys: [FxHashMap<String, KeyTally>; CheckId::ALL.len()],
}

/// One distinct failure's running count and how many examples of it are kept.
#[derive(Debug, Clone, Copy, Default)]
struct KeyTally {
    count: u64,
    kept: usize,
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
        let (check, fingerprint) = (v.check, v.fingerprint.clone());
        self.note(checks, check, &fingerprint, || v);
        self.sync_key_count(check, &fingerprint);
    }

    /// Count one violation of `(check, fingerprint)`, and build it with `make` only when it is
    /// kept as an example.
    ///
    /// Why lazily: a hostile answer can hold two million bad records; formatting a message and
    /// cloning a key for each costs seconds of CPU for examples that are then thrown away.
    /// `key_counts` is brought up to date by [`Verdict::sync_key_counts`], once per verdict.
    fn note(
        &mut self,
        checks: &CheckSet,
        check: CheckId,
        fingerprint: &str,
        make: impl FnOnce() -> Violation,
    ) {
        if !checks.contains(check) {
            return;
        }
        let tally = self.tally.get_or_insert_with(Default::default);
        tally.count_per_check[check as usize] += 1;
        let keys = &mut tally.keys[check as usize];
        let first_of_key = match keys.get_mut(fingerprint) {
            Some(t) => {
                t.count += 1;
                false
            }
            None if self.key_counts.len() < MAX_FAILURE_KEYS => {
                keys.insert(fingerprint.to_owned(), KeyTally { count: 1, kept: 0 });
                self.key_counts.insert((check, fingerprint.to_owned()), 1);
                true
            }
            None => {
                *self.overflow.entry(check).or_default() += 1;
                return;
            }
        };
        let Some(key) = keys.get_mut(fingerprint) else {
            return;
        };
        let per_check = &mut tally.kept_per_check[check as usize];
        if first_of_key || (key.kept < EXAMPLES_PER_KEY && *per_check < EXAMPLES_PER_CHECK) {
            key.kept += 1;
            *per_check += 1;
            let v = make();
            debug_assert!(v.check == check && v.fingerprint == fingerprint);
            self.violations.push(v);
        }
    }

    /// Copy the running tally of one key into `key_counts`.
    fn sync_key_count(&mut self, check: CheckId, fingerprint: &str) {
        let Some(tally) = self.tally.as_deref() else {
            return;
        };
        self.counts
            .insert(check, tally.count_per_check[check as usize]);
        let count = tally.keys[check as usize].get(fingerprint).map(|t| t.count);
        if let (Some(count), Some(n)) = (
            count,
            self.key_counts.get_mut(&(check, fingerprint.to_owned())),
        ) {
            *n = count;
        }
    }

    /// Copy every running tally into `counts` and `key_counts` (at most [`MAX_FAILURE_KEYS`]
    /// lookups).
    fn sync_key_counts(&mut self) {
        let Some(tally) = self.tally.as_deref() else {
            return;
        };
        for check in CheckId::ALL {
            let n = tally.count_per_check[check as usize];
            if n > 0 {
                self.counts.insert(check, n);
            }
        }
        for ((check, fingerprint), n) in self.key_counts.iter_mut() {
            if let Some(t) = tally.keys[*check as usize].get(fingerprint) {
                *n = t.count;
            }
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

/// Where the bytes from `at` for which `keep` holds end, to within a 16-byte chunk: whole 64-byte,
/// then 16-byte chunks are judged without an early exit, so the compiler vectorises them; the
/// caller goes on byte by byte from the returned index. The oracle's hottest loops (string
/// scanning, the base64 alphabet) run through here.
///
/// On a CPU with AVX2 (nearly every x86-64 server) the same loops are compiled for it and chosen
/// at run time: twice the bytes per instruction of the SSE2 baseline.
#[inline(always)]
fn whole_chunks_of(b: &[u8], at: usize, keep: impl Fn(u8) -> bool + Copy) -> usize {
    #[cfg(target_arch = "x86_64")]
    if std::arch::is_x86_feature_detected!("avx2") {
        // SAFETY: the CPU has just said it has AVX2, the one thing `chunks_avx2` assumes.
        #[allow(unsafe_code)]
        return unsafe { chunks_avx2(b, at, keep) };
    }
    chunks(b, at, keep)
}

#[cfg(target_arch = "x86_64")]
#[target_feature(enable = "avx2")]
fn chunks_avx2(b: &[u8], at: usize, keep: impl Fn(u8) -> bool + Copy) -> usize {
    chunks(b, at, keep)
}

#[inline(always)]
fn chunks(b: &[u8], at: usize, keep: impl Fn(u8) -> bool + Copy) -> usize {
    #[inline(always)]
    fn run<const N: usize>(b: &[u8], mut at: usize, keep: impl Fn(u8) -> bool) -> usize {
        while let Some(chunk) = b.get(at..at + N) {
            if !chunk.iter().fold(true, |ok, &c| ok & keep(c)) {
                break;
            }
            at += N;
        }
        at
    }
    run::<16>(b, run::<64>(b, at, keep), keep)
}

/// Judge `inv` as the answer to the event described by `event`.
pub fn check(event: &EventView, inv: &Invocation, checks: &CheckSet) -> Verdict {
    let mut v = Verdict::default();
    if let Some(failed) = invocation_failed(inv) {
        v.push(checks, failed);
        return v;
    }
    let body = &inv.body[..];
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
    let mut judge = RecordJudge::new(event, checks, v);
    let top = match response::stream(body, &mut judge) {
        Ok(top) => top,
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
            let mut v = judge.into_base();
            v.push(checks, violation(CheckId::ResponseIsJson, "not-json", what));
            return v;
        }
    };
    match top_level_failure(&top) {
        None => judge.finish(),
        Some(failure) => {
            let mut v = judge.into_base();
            v.push(checks, failure);
            v
        }
    }
}

/// A violation for the function running out of time: no answer at all, or the runtime's own
/// "Task timed out" text.
fn timed_out(message: String) -> Violation {
    violation(CheckId::WithinTimeout, "timeout", message)
}

/// The one violation of an invocation that produced no response to judge: it timed out, broke
/// off, raised a function error or answered a non-2xx status. `None` when there is a body to read.
fn invocation_failed(inv: &Invocation) -> Option<Violation> {
    match &inv.outcome {
        Outcome::TimedOut => {
            return Some(timed_out(format!(
                "no answer within {:.1} s; Firehose would retry the whole batch",
                inv.elapsed.as_secs_f64()
            )));
        }
        Outcome::Broken(reason) => {
            return Some(violation(
                CheckId::InvocationSucceeded,
                "broken",
                format!("the invocation broke off: {reason}"),
            ));
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
        return Some(violation(
            CheckId::InvocationSucceeded,
            fingerprint::function_error(&fe.kind, fe.message.as_deref()),
            message,
        ));
    }
    if let Some(status) = inv.status
        && !(200..300).contains(&status)
    {
        return Some(violation(
            CheckId::InvocationSucceeded,
            format!("http-{status}"),
            format!(
                "the target answered HTTP {status}: {}",
                clip(&String::from_utf8_lossy(&inv.body), 200)
            ),
        ));
    }
    if inv.body.starts_with(b"Task timed out after") {
        // The Runtime Interface Emulator reports a timeout as HTTP 200 with this text (RIE issue 21).
        return Some(timed_out(format!(
            "the function timed out: {}",
            clip(&String::from_utf8_lossy(&inv.body), 100)
        )));
    }
    None
}

/// What is wrong with the top level of a parsed response, if anything. `None` when it has a
/// `records` array, whose records the [`RecordJudge`] has judged as they streamed past.
fn top_level_failure(top: &Top<'_, usize>) -> Option<Violation> {
    let (records, error_message, error_type) = match top {
        Top::NotObject(kind) => {
            return Some(violation(
                CheckId::ResponseShape,
                "not-object",
                format!(
                    "the response is {}, not an object with a records array",
                    kind.article()
                ),
            ));
        }
        Top::Object {
            records,
            error_message,
            error_type,
        } => (records, error_message, error_type),
    };
    match records {
        None if error_message.is_some() || error_type.is_some() => {
            let kind = error_type
                .as_ref()
                .and_then(Field::as_str)
                .unwrap_or("unknown");
            let msg = error_message
                .as_ref()
                .and_then(Field::as_str)
                .unwrap_or("no message");
            Some(violation(
                CheckId::InvocationSucceeded,
                fingerprint::function_error(kind, Some(msg)),
                format!(
                    "the function returned an error body ({kind}): {}",
                    clip(msg, 300)
                ),
            ))
        }
        None => Some(violation(
            CheckId::ResponseShape,
            "no-records",
            "the response has no `records` key",
        )),
        Some(Err(kind)) => Some(violation(
            CheckId::ResponseShape,
            "records-not-array",
            format!("`records` is {}, not an array", kind.article()),
        )),
        Some(Ok(_)) => None,
    }
}

/// The batch record an answer with `id` answers: its first copy not yet answered, else its first
/// copy (a duplicate answer); `None` when the batch has no such id. Without a map (a small batch)
/// the ids are scanned.
fn batch_index(
    ids: &[String],
    expected: Option<&FxHashMap<&str, usize>>,
    next_copy: &[usize],
    seen: &[bool],
    id: &str,
) -> Option<usize> {
    let Some(expected) = expected else {
        let mut first = None;
        for (i, x) in ids.iter().enumerate() {
            if x == id {
                if !seen[i] {
                    return Some(i);
                }
                first.get_or_insert(i);
            }
        }
        return first;
    };
    expected.get(id).map(|&first| {
        let mut i = first;
        while seen[i] && next_copy[i] != usize::MAX {
            i = next_copy[i];
        }
        if seen[i] { first } else { i }
    })
}

/// Batch record `bi` has an answer; `prefix` (the answered records at the start) grows over it.
fn answered(seen: &mut [bool], prefix: &mut usize, bi: usize) {
    seen[bi] = true;
    while seen.get(*prefix) == Some(&true) {
        *prefix += 1;
    }
}

/// Batches up to this many records find an answer's record by scanning their ids, larger ones
/// through a map.
const SCAN_MAX: usize = 16;

/// Judges the records of a response one by one as the parser reads them ([`ItemSink`]), so no
/// record outlives its own check: memory stays the body's size whatever the record count.
struct RecordJudge<'e, 'c> {
    event: &'e EventView,
    checks: &'c CheckSet,
    /// The verdict before the records (at most a size violation); each `records` array starts
    /// from it again. `None`: nothing came before (the usual case), so starting again costs no
    /// copy.
    base: Option<Verdict>,
    v: Verdict,
    /// Input ids → batch indices, for batches over [`SCAN_MAX`] records (smaller ones are
    /// scanned: cheaper than hashing every id of every invocation), made only when an answer
    /// comes out of order (see `answered_prefix`). Firehose never repeats an id,
    /// but real samples do (`--corpus-raw`): an id sent twice may come back twice, each answer
    /// taking the first unanswered copy. Copies are chained through `next_copy` so the common
    /// case costs one map entry and no allocation per record.
    expected: Option<FxHashMap<&'e str, usize>>,
    next_copy: Vec<usize>,
    seen: Vec<bool>,
    /// How many records at the start of the batch are answered: an answer at that index with
    /// that record's id is matched without looking further.
    answered_prefix: usize,
    /// Some array has been fed since `v` was last set from `base`: only then does `start` have
    /// anything to forget (a body nearly always has one `records` array; the verdict is not
    /// cloned again for it).
    fed: bool,
}

impl<'e, 'c> RecordJudge<'e, 'c> {
    fn new(event: &'e EventView, checks: &'c CheckSet, base: Verdict) -> Self {
        RecordJudge {
            event,
            checks,
            base: (!base.violations.is_empty()).then(|| base.clone()),
            v: base,
            expected: None,
            next_copy: Vec::new(),
            seen: vec![false; event.record_ids.len()],
            answered_prefix: 0,
            fed: false,
        }
    }

    /// The batch record the `ri`-th answer, with `id`, answers (see [`batch_index`]).
    fn batch_index(&mut self, ri: usize, id: &str) -> Option<usize> {
        let ids = &self.event.record_ids;
        // In order, as nearly every transformer answers: when every record before `ri` is
        // answered and `ri` is not, `ri` is the first unanswered copy of its own id.
        if self.answered_prefix == ri && ids.get(ri).is_some_and(|x| x == id) {
            return Some(ri);
        }
        if ids.len() > SCAN_MAX && self.expected.is_none() {
            self.index_ids();
        }
        batch_index(ids, self.expected.as_ref(), &self.next_copy, &self.seen, id)
    }

    /// The map of ids to batch indices, made at the first answer out of order.
    fn index_ids(&mut self) {
        let ids = &self.event.record_ids;
        let mut map: FxHashMap<&str, usize> =
            FxHashMap::with_capacity_and_hasher(ids.len(), Default::default());
        let mut next_copy = vec![usize::MAX; ids.len()];
        let mut last_copy: FxHashMap<&str, usize> = FxHashMap::default();
        for (i, id) in ids.iter().enumerate() {
            if let Some(&first) = map.get(id.as_str()) {
                let tail = last_copy.get(id.as_str()).copied().unwrap_or(first);
                next_copy[tail] = i;
                last_copy.insert(id.as_str(), i);
            } else {
                map.insert(id.as_str(), i);
            }
        }
        self.expected = Some(map);
        self.next_copy = next_copy;
    }

    /// The verdict from before the records, for a response with no `records` array to judge.
    fn into_base(self) -> Verdict {
        self.base.unwrap_or_default()
    }

    /// After the last record: every input record that never came back is missing.
    fn finish(mut self) -> Verdict {
        let (checks, seen, event) = (self.checks, &self.seen, self.event);
        let missing = seen.iter().filter(|s| !**s).count();
        for (bi, _) in seen.iter().enumerate().filter(|(_, s)| !**s) {
            let id = &event.record_ids[bi];
            self.v.note(checks, CheckId::NoMissingRecordIds, "missing", || {
                let of = if missing > 1 {
                    format!(" ({missing} of {} records are missing)", seen.len())
                } else {
                    String::new()
                };
                violation(
                    CheckId::NoMissingRecordIds,
                    "missing",
                    format!(
                        "record {bi} (id {}) is missing from the response{of}; Firehose fails the whole batch with Lambda.MissingRecordId",
                        short_id(id)
                    ),
                )
                .at(bi, Some(id))
            });
        }
        self.v.sync_key_counts();
        self.v
    }
}

impl<'a> ItemSink<'a> for RecordJudge<'_, '_> {
    fn start(&mut self) {
        if self.fed {
            self.v = self.base.clone().unwrap_or_default();
            self.seen.fill(false);
            self.answered_prefix = 0;
        }
        self.fed = true;
    }

    fn item(&mut self, ri: usize, item: Item<'a>) {
        self.fed = true;
        let (checks, v) = (self.checks, &mut self.v);
        let r = match item {
            Item::Record(r) => r,
            Item::NotObject(kind) => {
                v.note(checks, CheckId::ResponseShape, "record-not-object", || {
                    violation(
                        CheckId::ResponseShape,
                        "record-not-object",
                        format!("response record #{ri} is {}, not an object", kind.article()),
                    )
                    .at(ri, None)
                });
                return;
            }
        };
        let Some(id) = r.record_id.as_str() else {
            v.note(
                checks,
                CheckId::ResponseShape,
                "record-id-not-string",
                || {
                    let what = r.record_id.described_as("recordId");
                    violation(
                        CheckId::ResponseShape,
                        "record-id-not-string",
                        format!("response record #{ri} {what}"),
                    )
                    .at(ri, None)
                },
            );
            return;
        };
        let batch_index = self.batch_index(ri, id);
        let (checks, v) = (self.checks, &mut self.v);
        let label = match batch_index {
            Some(bi) => {
                if self.seen[bi] {
                    v.note(checks, CheckId::NoDuplicateRecordIds, "duplicate", || {
                        violation(
                            CheckId::NoDuplicateRecordIds,
                            "duplicate",
                            format!(
                                "record {bi} (id {}) came back twice (again as response record #{ri})",
                                short_id(id)
                            ),
                        )
                        .at(bi, Some(id))
                    });
                }
                answered(&mut self.seen, &mut self.answered_prefix, bi);
                Label::Batch(bi, id)
            }
            None => {
                v.note(checks, CheckId::NoUnknownRecordIds, "unknown", || {
                    violation(
                        CheckId::NoUnknownRecordIds,
                        "unknown",
                        format!(
                            "response record #{ri} has recordId {}, which was not in the batch",
                            short_id(id)
                        ),
                    )
                    .at(ri, Some(id))
                });
                Label::Response(ri, id)
            }
        };
        let index = batch_index.unwrap_or(ri);
        let source = self.event.source;
        check_record(&r, id, index, label, source, source.data_key(), checks, v);
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
            let fp = format!("result={}", clip(other, 40));
            v.note(checks, CheckId::ResultIsLegal, &fp, || {
                violation(
                    CheckId::ResultIsLegal,
                    fp.clone(),
                    format!(
                        "{label} has result {:?}; Firehose accepts exactly Ok, Dropped or ProcessingFailed{hint}",
                        clip(other, 60)
                    ),
                )
                .at(index, Some(id))
            });
        }
        None => {
            v.note(checks, CheckId::ResultIsLegal, "result-missing", || {
                let what = r.result.described_as("result");
                violation(
                    CheckId::ResultIsLegal,
                    "result-missing",
                    format!("{label} {what}"),
                )
                .at(index, Some(id))
            });
        }
    }

    // The payload field: `data`, or `kafkaRecordValue` for MSK.
    let (payload, wrong_key) = if source == Source::Msk {
        (&r.kafka_record_value, r.data.is_present())
    } else {
        (&r.data, false)
    };
    if result == Some("Ok") && !payload.is_present() {
        let fp = if wrong_key {
            "data-instead-of-kafkaRecordValue"
        } else {
            "no-data"
        };
        v.note(checks, CheckId::OkHasData, fp, || {
            let msg = if wrong_key {
                format!("{label} is Ok but answers `data`; MSK sources expect `kafkaRecordValue`")
            } else {
                format!("{label} is Ok but has no `{data_key}`")
            };
            violation(CheckId::OkHasData, fp, msg).at(index, Some(id))
        });
    }
    // The canonical reader may have found `data` base64-shaped already.
    let scanned = source != Source::Msk && r.data_scanned.base64_shaped;
    let shape = |s: &str| match scanned {
        true => self::base64::check_base64_scanned(s.as_bytes()),
        false => check_base64(s.as_bytes()),
    };
    match payload {
        Field::Str(s) => match shape(s) {
            Base64Check::Valid => {
                v.output_bytes += (s.len() / 4 * 3) as u64;
                if result == Some("Ok")
                    && checks.contains(CheckId::NewlineDelimited)
                    && !s.is_empty()
                    && self::base64::last_decoded_byte(s.as_bytes()) != Some(b'\n')
                {
                    v.note(checks, CheckId::NewlineDelimited, "no-newline", || {
                        violation(
                            CheckId::NewlineDelimited,
                            "no-newline",
                            format!(
                                "{label}: data does not end in a newline; Firehose concatenates records without delimiters"
                            ),
                        )
                        .at(index, Some(id))
                        .warning()
                    });
                }
            }
            Base64Check::Unpadded => v.note(checks, CheckId::DataIsBase64, "unpadded", || {
                violation(
                    CheckId::DataIsBase64,
                    "unpadded",
                    format!("{label}: {data_key} is base64 without `=` padding"),
                )
                .at(index, Some(id))
                .warning()
            }),
            Base64Check::Invalid { offset, reason } => {
                v.note(checks, CheckId::DataIsBase64, "invalid", || {
                    violation(
                        CheckId::DataIsBase64,
                        "invalid",
                        format!(
                            "{label}: {data_key} is not base64 ({reason} at offset {offset}); it starts {:?}",
                            clip(s, 40)
                        ),
                    )
                    .at(index, Some(id))
                })
            }
        },
        Field::Other(JsonKind::Null) | Field::Absent => {}
        Field::Other(kind) => v.note(checks, CheckId::DataIsBase64, "not-string", || {
            violation(
                CheckId::DataIsBase64,
                "not-string",
                format!("{label}: {data_key} is {}, not a base64 string", kind.article()),
            )
            .at(index, Some(id))
        }),
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
            v.note(
                checks,
                CheckId::PartitionKeysValid,
                "metadata-not-object",
                || {
                    violation(
                        CheckId::PartitionKeysValid,
                        "metadata-not-object",
                        format!(
                            "{label}: metadata is {}, not an object",
                            kind_of(other).article()
                        ),
                    )
                    .at(index, Some(id))
                },
            );
            None
        }
    };
    if let Some((fp, what)) = problem {
        v.note(checks, CheckId::PartitionKeysValid, fp, || {
            violation(
                CheckId::PartitionKeysValid,
                fp,
                format!("{label}: metadata.partitionKeys {what}; dynamic partitioning would fail"),
            )
            .at(index, Some(id))
        });
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

/// Collects the records of one answer straight into a [`Normalised`] map, never holding the
/// parsed records themselves (a 6 MB answer of `{}` would cost hundreds of MB as a `Vec`).
#[derive(Default)]
struct NormaliseSink(Normalised);

impl<'a> ItemSink<'a> for NormaliseSink {
    fn start(&mut self) {
        self.0.clear();
    }

    fn item(&mut self, _: usize, item: Item<'a>) {
        let Item::Record(r) = item else { return };
        let Some(id) = r.record_id.as_str() else {
            return;
        };
        // A repeated id keeps its last answer.
        self.0.insert(
            id.to_string(),
            (
                r.result.as_str().map(str::to_string),
                r.data
                    .as_str()
                    .or(r.kafka_record_value.as_str())
                    .map(str::to_string),
                r.metadata.as_deref().map(Value::to_string),
            ),
        );
    }
}

fn normalise(body: &[u8]) -> Option<Normalised> {
    let mut sink = NormaliseSink::default();
    match response::stream(body, &mut sink).ok()? {
        Top::Object {
            records: Some(Ok(_)),
            ..
        } => Some(sink.0),
        _ => None,
    }
}

#[cfg(test)]
mod tests;
