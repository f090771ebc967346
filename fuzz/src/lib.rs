//! Properties of everything that reads bytes a target or a user handed over: the oracle, the event
//! parsers, case folders (`replay`, the regressions gate) and `report.json` (`report merge|compare`).
//!
//! One definition, two drivers. The `cargo fuzz` targets in `fuzz_targets/` feed each property
//! coverage-guided bytes; `harness/tests/integration/properties.rs` includes this file by path and
//! feeds it proptest's bytes, so CI checks the same properties with a bounded number of cases and
//! no second, instrumented build. A property fails by panicking — exactly what both drivers catch.
//!
//! Raw bytes rarely get past a JSON parser, so each property also has a structured form:
//! [`json_from_bytes`] reads the bytes as a recipe for a JSON text built from the words the reader
//! cares about (`records`, `recordId`, `Ok`, …), and [`mutate_json`] rewrites a real document
//! (a real event, a real report) node by node, so mutations land deep inside valid input.

use std::fmt::Write as _;
use std::path::Path;
use std::time::Duration;

use bytes::Bytes;
use firehose_generators::wire::{Event, EventView, Source};
use firehose_harness::contract::{
    self, CheckId, CheckSet, EXAMPLES_PER_KEY, Item, ItemSink, ResponseView, Severity, Top, Verdict,
};
use firehose_harness::invocation::Invocation;
use firehose_harness::{
    MaxRegression, compare_load_reports as compare, load_case, load_regressions,
    merge_load_reports as merge,
};
use serde_json::Value;

/// Words of a response, so built JSON hits the oracle's branches rather than only its parser.
pub const RESPONSE_WORDS: &[&str] = &[
    "records",
    "recordId",
    "result",
    "data",
    "kafkaRecordValue",
    "metadata",
    "partitionKeys",
    "errorMessage",
    "errorType",
    "Ok",
    "Dropped",
    "ProcessingFailed",
    "ok",
    "a",
    "b",
    "c",
    "aGk=",
    "aGkK",
    "aGk",
    "a-b=",
    "",
];

/// Words of an event.
pub const EVENT_WORDS: &[&str] = &[
    "records",
    "recordId",
    "data",
    "approximateArrivalTimestamp",
    "invocationId",
    "deliveryStreamArn",
    "sourceKinesisStreamArn",
    "sourceMSKArn",
    "region",
    "kinesisRecordMetadata",
    "kafkaRecordValue",
    "topic",
    "partition",
    "offset",
    "a",
    "b",
    "aGk=",
    "us-east-1",
    "arn:aws:firehose:us-east-1:123456789012:deliverystream/s",
];

/// Real documents to mutate: report.json of a `check`, a `load` and a `validate` run.
pub const REPORT_SEEDS: &[&str] = &[
    include_str!("../seeds/report/check.json"),
    include_str!("../seeds/report/load.json"),
    include_str!("../seeds/report/validate.json"),
];

/// A real event with three records, to mutate.
pub const EVENT_SEED: &str = r#"{"invocationId":"00540a87-5050-496a-84e4-e7d92bbaf5e2","deliveryStreamArn":"arn:aws:firehose:us-east-1:123456789012:deliverystream/s","region":"us-east-1","records":[{"recordId":"a","approximateArrivalTimestamp":1495072949453,"data":"aGkK"},{"recordId":"b","approximateArrivalTimestamp":1495072949454,"data":""},{"recordId":"c","approximateArrivalTimestamp":1495072949455,"data":"eyJ4IjoxfQ=="}]}"#;

/// Reads fuzz bytes one decision at a time; past the end every decision is 0.
struct Recipe<'a> {
    data: &'a [u8],
    at: usize,
}

impl Recipe<'_> {
    fn byte(&mut self) -> u8 {
        let b = self.data.get(self.at).copied().unwrap_or(0);
        self.at += 1;
        b
    }

    fn done(&self) -> bool {
        self.at >= self.data.len()
    }
}

/// A JSON text built from `data`: objects keyed by `words`, strings from `words` or raw bytes,
/// numbers at the edges (huge, negative, fractional), keys that repeat, arrays of up to 40
/// elements. Always valid JSON; the same bytes always give the same text.
pub fn json_from_bytes(data: &[u8], words: &[&str]) -> String {
    let mut r = Recipe { data, at: 0 };
    let mut out = String::new();
    // Most documents are objects, as the readers expect.
    object(&mut r, words, 0, &mut out);
    out
}

fn value(r: &mut Recipe<'_>, words: &[&str], depth: usize, out: &mut String) {
    let b = r.byte();
    if r.done() && depth > 0 {
        out.push_str("null");
        return;
    }
    match b % 12 {
        0 => out.push_str("null"),
        1 => out.push_str(if b & 0x80 == 0 { "true" } else { "false" }),
        2 => {
            let n = [
                "0",
                "-1",
                "1.5",
                "1e308",
                "-1e-308",
                "18446744073709551616",
                "9007199254740993",
                "1E400",
            ];
            out.push_str(n[usize::from(r.byte()) % n.len()]);
        }
        3..=5 => string(r, words, out),
        6 | 7 if depth < 6 => array(r, words, depth, out),
        _ if depth < 6 => object(r, words, depth, out),
        _ => out.push_str("null"),
    }
}

fn string(r: &mut Recipe<'_>, words: &[&str], out: &mut String) {
    let b = r.byte();
    let s = if b % 4 == 0 {
        // Raw bytes, escaped by serde_json: control characters, quotes, invalid surrogates become
        // escapes, so the parser's unescaping paths are exercised too.
        let len = usize::from(r.byte() % 16);
        let bytes: Vec<u8> = (0..len).map(|_| r.byte()).collect();
        String::from_utf8_lossy(&bytes).into_owned()
    } else if b % 4 == 1 {
        format!("{}{}", words[usize::from(r.byte()) % words.len()], r.byte())
    } else {
        words[usize::from(r.byte()) % words.len()].to_string()
    };
    out.push_str(&serde_json::to_string(&s).unwrap_or_else(|_| "\"\"".into()));
}

fn array(r: &mut Recipe<'_>, words: &[&str], depth: usize, out: &mut String) {
    let len = usize::from(r.byte() % 41);
    out.push('[');
    for i in 0..len {
        if r.done() {
            break;
        }
        if i > 0 {
            out.push(',');
        }
        value(r, words, depth + 1, out);
    }
    out.push(']');
}

fn object(r: &mut Recipe<'_>, words: &[&str], depth: usize, out: &mut String) {
    let len = usize::from(r.byte() % 7);
    out.push('{');
    for i in 0..len {
        if r.done() && i > 0 {
            break;
        }
        if i > 0 {
            out.push(',');
        }
        let key = words[usize::from(r.byte()) % words.len()];
        let _ = write!(out, "{}:", serde_json::Value::from(key));
        value(r, words, depth + 1, out);
    }
    out.push('}');
}

/// `seed` rewritten by `data`: each step walks to a node and replaces it with something built by
/// [`json_from_bytes`]' rules, deletes it, or pushes an extreme number into it. The result is
/// the mutated document's text; a seed that is not JSON comes back unchanged.
pub fn mutate_json(seed: &str, data: &[u8], words: &[&str]) -> String {
    let Ok(mut doc) = serde_json::from_str::<Value>(seed) else {
        return seed.to_string();
    };
    let mut r = Recipe { data, at: 0 };
    while !r.done() {
        // Walk down, each byte picking a child while there is one; the way there is kept as a
        // JSON pointer, since a `&mut` walk cannot stop halfway under the borrow checker.
        let mut pointer = String::new();
        let mut at = &doc;
        loop {
            let pick = usize::from(r.byte());
            match at {
                Value::Object(m) if !m.is_empty() && pick % 5 != 0 => {
                    let Some((key, child)) = m.iter().nth(pick % m.len()) else {
                        break;
                    };
                    pointer.push('/');
                    pointer.push_str(&key.replace('~', "~0").replace('/', "~1"));
                    at = child;
                }
                Value::Array(a) if !a.is_empty() && pick % 5 != 0 => {
                    let i = pick % a.len();
                    let _ = write!(pointer, "/{i}");
                    at = &a[i];
                }
                _ => break,
            }
        }
        let Some(node) = doc.pointer_mut(&pointer) else {
            continue;
        };
        match r.byte() % 6 {
            0 => *node = Value::Null,
            1 => *node = Value::from(u64::MAX),
            2 => *node = Value::from(-1),
            3 => *node = Value::from(f64::MAX),
            4 => {
                let mut text = String::new();
                value(&mut r, words, 3, &mut text);
                if let Ok(v) = serde_json::from_str(&text) {
                    *node = v;
                }
            }
            _ => {
                if let Value::Object(m) = node
                    && let Some(k) = m.keys().next().cloned()
                {
                    m.remove(&k);
                }
            }
        }
    }
    doc.to_string()
}

/// Counts the items [`contract::stream`] hands over, to compare with [`ResponseView::parse`].
struct CountSink(usize);

impl<'a> ItemSink<'a> for CountSink {
    fn start(&mut self) {
        self.0 = 0;
    }
    fn item(&mut self, _: usize, _: Item<'a>) {
        self.0 += 1;
    }
}

fn answered(body: &[u8]) -> Invocation {
    Invocation::answered(
        Some(200),
        Bytes::copy_from_slice(body),
        Duration::from_millis(1),
    )
}

/// The event a property judges against when the given bytes are not one.
fn fallback_event() -> EventView {
    EventView {
        source: Source::DirectPut,
        record_ids: ["a", "b", "c", "a"].map(String::from).to_vec(),
    }
}

/// The oracle judges any answer to any event without panicking, and its verdict keeps its own
/// bookkeeping: every counted failure has an example, counts add up, examples are capped, the
/// judgement is repeatable, and the streaming and collecting parsers agree.
pub fn oracle(event: &[u8], body: &[u8]) {
    let view = EventView::parse(event).unwrap_or_else(|_| fallback_event());
    let inv = answered(body);
    for checks in [CheckSet::default(), CheckSet::all()] {
        let verdict = contract::check(&view, &inv, &checks);
        verdict_is_consistent(&verdict, &checks);
        let again = contract::check(&view, &inv, &checks);
        assert_eq!(
            verdict.violations, again.violations,
            "the oracle is not repeatable"
        );
        assert_eq!(verdict.key_counts, again.key_counts);
    }
    // The same answer twice is deterministic, whatever it is.
    assert_eq!(contract::compare_answers(&inv, &inv), None);

    let mut counted = CountSink(0);
    let streamed = contract::stream(body, &mut counted);
    let parsed = ResponseView::parse(body);
    assert_eq!(
        streamed.is_ok(),
        parsed.is_ok(),
        "stream and parse disagree"
    );
    if let (
        Ok(Top::Object {
            records: Some(Ok(n)),
            ..
        }),
        Ok(Top::Object {
            records: Some(Ok(items)),
            ..
        }),
    ) = (&streamed, &parsed)
    {
        assert_eq!((*n, counted.0), (items.len(), items.len()));
    }
    readers_agree(body);
    if parsed.is_err() && !body.starts_with(b"Task timed out after") {
        let verdict = contract::check(&view, &inv, &CheckSet::default());
        assert!(
            verdict
                .key_counts
                .contains_key(&(CheckId::ResponseIsJson, "not-json".to_string())),
            "a body that is not JSON must fail response_is_json: {:?}",
            verdict.key_counts
        );
    }
}

/// Wherever the oracle's canonical reader reads a body at all, the general reader reads it too,
/// to the same top level and the same records.
pub fn readers_agree(body: &[u8]) {
    let mut fast = Vec::new();
    let Some(top) = contract::canonical(body, &mut fast) else {
        return;
    };
    let mut general = Vec::new();
    let slow = contract::stream_general(body, &mut general);
    assert!(
        slow.is_ok(),
        "the canonical reader accepted what is not JSON: {}",
        String::from_utf8_lossy(body)
    );
    assert_eq!(Ok(top), slow.map_err(|_| ()), "top level differs");
    assert_eq!(fast, general, "records differ");
}

/// An answer shaped as nearly every transformer shapes it — `{"records":[{"recordId", "result",
/// "data"}…]}` — and, as `data` says, bent a little: whitespace between tokens, keys left out,
/// repeated or unknown, values that are not plain strings (escapes, control characters, numbers,
/// non-ASCII), a trailing comma, text after the end. Built to sit at the edge of the oracle's
/// canonical reader, where it must agree with the general one or give way to it.
pub fn canonical_from_bytes(data: &[u8]) -> String {
    let mut r = Recipe { data, at: 0 };
    let ws = |r: &mut Recipe<'_>, out: &mut String| {
        let b = r.byte();
        if b % 4 == 0 {
            out.push_str([" ", "\n", "\t", "\r\n  "][usize::from(b >> 2) % 4]);
        }
    };
    let mut out = String::new();
    ws(&mut r, &mut out);
    out.push_str("{\"records\"");
    ws(&mut r, &mut out);
    out.push(':');
    ws(&mut r, &mut out);
    out.push('[');
    let records = usize::from(r.byte() % 6);
    for i in 0..records {
        if i > 0 {
            out.push(',');
        }
        ws(&mut r, &mut out);
        out.push('{');
        let keys = usize::from(r.byte() % 5);
        for k in 0..keys {
            if k > 0 {
                out.push(',');
            }
            ws(&mut r, &mut out);
            let key = match r.byte() % 16 {
                0 => "metadata",
                1 => "kafkaRecordValue",
                2 => "other",
                3..=5 => "recordId",
                6..=8 => "result",
                _ => "data",
            };
            out.push_str(&format!("\"{key}\""));
            ws(&mut r, &mut out);
            out.push(':');
            ws(&mut r, &mut out);
            let value = match r.byte() % 16 {
                0 => "\"a\\\"b\"".to_string(),
                1 => "\"tab\\there\"".to_string(),
                2 => "7".to_string(),
                3 => "null".to_string(),
                4 => "\"caf\u{e9} \u{1F525}\"".to_string(),
                5 => "\"raw\u{1}control\"".to_string(),
                6 => "{\"k\":\"v\"}".to_string(),
                7 => "\"\"".to_string(),
                8 | 9 => "\"Ok\"".to_string(),
                _ => format!(
                    "\"{}\"",
                    [
                        "49546986683135544286507457936321625675700192471156785154",
                        "eyJhIjoxfQ==",
                        "Dropped",
                        "x y",
                        "SGVsbG8=",
                        // A surrogate pair, then a lone surrogate serde_json refuses.
                        "\\ud83d\\ude00",
                        "\\ud800",
                        "\\u0000id%2F1",
                        // The shapes of `data` the reader's base64 shortcut must tell apart:
                        // unpadded, too much padding, padding inside, URL-safe, escaped.
                        "aGVsbG8",
                        "aGk===",
                        "aG=k",
                        "a-_b",
                        "aGk\\u003d",
                        "=",
                    ][usize::from(r.byte()) % 14]
                ),
            };
            out.push_str(&value);
            ws(&mut r, &mut out);
        }
        out.push('}');
    }
    if r.byte() % 16 == 0 {
        out.push(',');
    }
    ws(&mut r, &mut out);
    out.push(']');
    ws(&mut r, &mut out);
    out.push('}');
    match r.byte() % 16 {
        0 => out.push_str(" x"),
        1 => out.push_str(",\"records\":[]"),
        _ => {}
    }
    ws(&mut r, &mut out);
    out
}

/// The bookkeeping a verdict promises ([`Verdict`]'s invariant and the example caps).
pub fn verdict_is_consistent(v: &Verdict, checks: &CheckSet) {
    for (check, fingerprint) in v.key_counts.keys() {
        assert!(
            v.example(*check, fingerprint).is_some(),
            "({check}, {fingerprint}) is counted but has no example"
        );
        let kept = v
            .violations
            .iter()
            .filter(|x| x.check == *check && &x.fingerprint == fingerprint)
            .count();
        assert!(kept <= EXAMPLES_PER_KEY, "{kept} examples of one failure");
    }
    for x in &v.violations {
        assert!(checks.contains(x.check), "{} is not enabled", x.check);
        assert!(
            v.key_counts.contains_key(&(x.check, x.fingerprint.clone())),
            "an example of an uncounted failure: {x:?}"
        );
    }
    for (check, n) in &v.counts {
        let keyed: u64 = v
            .key_counts
            .iter()
            .filter(|((c, _), _)| c == check)
            .map(|(_, n)| n)
            .sum();
        let over = v.overflow.get(check).copied().unwrap_or(0);
        assert_eq!(*n, keyed + over, "{check}: counts do not add up");
    }
    assert_eq!(
        v.failed(),
        v.violations.iter().any(|x| x.severity == Severity::Error)
    );
}

/// The event parsers never panic, and agree: an event the strict parser reads, the lenient view
/// reads with the same ids, and writing it out reads back the same event.
pub fn event_parsers(bytes: &[u8]) {
    let view = EventView::parse(bytes);
    if let Ok(event) = Event::from_json(bytes) {
        let ids: Vec<&str> = event.record_ids().collect();
        let view = view.expect("the lenient view reads what the strict parser reads");
        assert_eq!(view.record_ids, ids);
        let again = Event::from_json(&event.to_json()).expect("a written event reads back");
        assert_eq!(again, event);
    }
}

/// `report merge` and `report compare` never panic on a file that claims to be a report; a
/// report reads back as written, merges alone, and compared with itself shows no regression.
pub fn report_readers(bytes: &[u8]) {
    let Ok(report) = firehose_reports::json::read(bytes) else {
        return;
    };
    let mut written = Vec::new();
    firehose_reports::json::write(&report, &mut written).expect("write to memory");
    let back = firehose_reports::json::read(&written).expect("a written report reads back");
    assert_eq!(
        back, report,
        "a report changed on its way through report.json"
    );

    let named = |r: &firehose_reports::Report| ("report.json".to_string(), r.clone());
    if let Ok(merged) = merge(&[named(&report)]) {
        let mut out = Vec::new();
        firehose_reports::json::write(&merged, &mut out).expect("write to memory");
    }
    let _ = merge(&[named(&report), named(&report)]);
    if let Ok(c) = compare(
        ("base", &report),
        ("new", &report),
        &MaxRegression::default(),
    ) {
        assert_eq!(
            c.regressions(),
            0,
            "a report regressed against itself: {}",
            c.text("base", "new", 3)
        );
    }
}

/// A case folder with these files (`None` = absent) loads or is refused with a reason — as a
/// `replay` argument and inside a regressions folder — and a loaded case judges any answer.
pub fn case_folder(event: Option<&[u8]>, case_json: Option<&[u8]>, body: &[u8]) {
    let root = tempfile::tempdir().expect("a temporary folder");
    let dir = root.path().join("0001-case");
    std::fs::create_dir(&dir).expect("a case folder");
    write_opt(&dir.join("event.json"), event);
    write_opt(&dir.join("case.json"), case_json);
    std::fs::write(dir.join("response.body"), body).expect("write response.body");
    match load_case(&dir) {
        Ok(case) => {
            let inv = answered(body);
            let checks = CheckSet::default();
            verdict_is_consistent(&contract::check(&case.view, &inv, &checks), &checks);
        }
        Err(why) => assert!(!why.is_empty()),
    }
    let regressions = load_regressions(root.path()).expect("the folder is readable");
    assert_eq!(regressions.cases.len() + regressions.corrupt.len(), 1);
}

fn write_opt(path: &Path, bytes: Option<&[u8]>) {
    if let Some(b) = bytes {
        std::fs::write(path, b).expect("write a case file");
    }
}
