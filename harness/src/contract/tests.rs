use std::time::Duration;

use bytes::Bytes;
use firehose_generators::wire::{EventView, Source};

use super::*;
use crate::invocation::{FunctionError, Invocation};

fn event(ids: &[&str]) -> EventView {
    EventView {
        source: Source::DirectPut,
        record_ids: ids.iter().map(|s| s.to_string()).collect(),
    }
}

fn answer(body: &str) -> Invocation {
    Invocation::answered(
        Some(200),
        Bytes::from(body.to_string()),
        Duration::from_millis(1),
    )
}

fn failed_checks(ev: &EventView, inv: &Invocation, checks: &CheckSet) -> Vec<&'static str> {
    let verdict = check(ev, inv, checks);
    let mut ids: Vec<_> = verdict
        .violations
        .iter()
        .filter(|v| v.severity == Severity::Error)
        .map(|v| v.check.id())
        .collect();
    ids.dedup();
    ids
}

fn fails(body: &str) -> Vec<&'static str> {
    failed_checks(&event(&["a", "b"]), &answer(body), &CheckSet::default())
}

#[test]
fn a_correct_answer_passes() {
    let body = r#"{"records":[{"recordId":"a","result":"Ok","data":"aGkK"},{"recordId":"b","result":"Dropped"}]}"#;
    let verdict = check(&event(&["a", "b"]), &answer(body), &CheckSet::all());
    assert!(verdict.violations.is_empty(), "{:?}", verdict.violations);
    assert_eq!(verdict.results.ok, 1);
    assert_eq!(verdict.results.dropped, 1);
}

#[test]
fn each_bug_names_its_check() {
    let ok = |id: &str| format!(r#"{{"recordId":"{id}","result":"Ok","data":"aGk="}}"#);
    let cases: Vec<(String, &str)> = vec![
        (
            format!(r#"{{"records":[{}]}}"#, ok("a")),
            "no_missing_record_ids",
        ),
        (
            format!(r#"{{"records":[{},{},{}]}}"#, ok("a"), ok("b"), ok("b")),
            "no_duplicate_record_ids",
        ),
        (
            format!(r#"{{"records":[{},{},{}]}}"#, ok("a"), ok("b"), ok("zz")),
            "no_unknown_record_ids",
        ),
        (
            format!(
                r#"{{"records":[{},{{"recordId":"b","result":"OK","data":"aGk="}}]}}"#,
                ok("a")
            ),
            "result_is_legal",
        ),
        (
            format!(
                r#"{{"records":[{},{{"recordId":"b","data":"aGk="}}]}}"#,
                ok("a")
            ),
            "result_is_legal",
        ),
        (
            format!(
                r#"{{"records":[{},{{"recordId":"b","result":"Ok","data":"hello world"}}]}}"#,
                ok("a")
            ),
            "data_is_base64",
        ),
        (
            format!(
                r#"{{"records":[{},{{"recordId":"b","result":"Ok"}}]}}"#,
                ok("a")
            ),
            "ok_has_data",
        ),
        ("not json".into(), "response_is_json"),
        ("".into(), "response_is_json"),
        (r#"{"recs":[]}"#.into(), "response_shape"),
        (r#"{"records":{}}"#.into(), "response_shape"),
        (r#"[1]"#.into(), "response_shape"),
        (
            format!(r#"{{"records":[{},{},7]}}"#, ok("a"), ok("b")),
            "response_shape",
        ),
        (
            format!(
                r#"{{"records":[{},{{"recordId":"b","result":"Ok","data":"aGk=","metadata":{{"partitionKeys":{{"k":1}}}}}}]}}"#,
                ok("a")
            ),
            "partition_keys_valid",
        ),
        (
            format!(
                r#"{{"records":[{},{{"recordId":"b","result":"Ok","data":"aGk=","metadata":{{"partitionKeys":{{"k":""}}}}}}]}}"#,
                ok("a")
            ),
            "partition_keys_valid",
        ),
        (
            r#"{"errorMessage":"boom","errorType":"ValueError"}"#.into(),
            "invocation_succeeded",
        ),
        ("Task timed out after 3.00 seconds".into(), "within_timeout"),
    ];
    for (body, expected) in cases {
        let got = fails(&body);
        assert!(
            got.contains(&expected),
            "{body}: expected {expected}, got {got:?}"
        );
    }
}

#[test]
fn messages_name_the_record() {
    let verdict = check(
        &event(&["a", "b", "c"]),
        &answer(
            r#"{"records":[{"recordId":"a","result":"Ok","data":"aGk="},{"recordId":"a","result":"Ok","data":"aGk="},{"recordId":"b","result":"Ok","data":"aGk="}]}"#,
        ),
        &CheckSet::default(),
    );
    let msgs: Vec<_> = verdict
        .violations
        .iter()
        .map(|v| v.message.as_str())
        .collect();
    assert!(
        msgs.iter()
            .any(|m| m.starts_with("record 0 (id \"a\") came back twice")),
        "{msgs:?}"
    );
    assert!(
        msgs.iter()
            .any(|m| m.starts_with("record 2 (id \"c\") is missing")),
        "{msgs:?}"
    );
}

#[test]
fn msk_expects_kafka_record_value() {
    let ev = EventView {
        source: Source::Msk,
        record_ids: vec!["a".into()],
    };
    let good = answer(r#"{"records":[{"recordId":"a","result":"Ok","kafkaRecordValue":"aGk="}]}"#);
    assert!(
        check(&ev, &good, &CheckSet::default())
            .violations
            .is_empty()
    );
    let bad = answer(r#"{"records":[{"recordId":"a","result":"Ok","data":"aGk="}]}"#);
    let v = check(&ev, &bad, &CheckSet::default());
    assert_eq!(v.violations[0].check, CheckId::OkHasData);
    assert_eq!(
        v.violations[0].fingerprint,
        "data-instead-of-kafkaRecordValue"
    );
}

#[test]
fn transport_level_failures() {
    let ev = event(&["a"]);
    let checks = CheckSet::default();
    let mut inv = answer(r#"{"records":[]}"#);
    inv.function_error = Some(FunctionError {
        kind: "Unhandled".into(),
        message: Some("boom".into()),
    });
    assert_eq!(failed_checks(&ev, &inv, &checks), ["invocation_succeeded"]);
    let mut inv = answer("oops");
    inv.status = Some(502);
    assert_eq!(failed_checks(&ev, &inv, &checks), ["invocation_succeeded"]);
    let inv = Invocation::timed_out(Duration::from_secs(3));
    assert_eq!(failed_checks(&ev, &inv, &checks), ["within_timeout"]);
    let mut inv = answer("x");
    inv.body_truncated = true;
    assert_eq!(failed_checks(&ev, &inv, &checks), ["response_within_limit"]);
}

#[test]
fn warnings_do_not_fail() {
    let ev = event(&["a"]);
    let mut checks = CheckSet::default();
    checks.apply("+newline_delimited").unwrap();
    let v = check(
        &ev,
        &answer(r#"{"records":[{"recordId":"a","result":"Ok","data":"aGk"}]}"#),
        &checks,
    );
    assert!(!v.failed());
    assert_eq!(v.violations[0].check, CheckId::DataIsBase64);
    let v = check(
        &ev,
        &answer(r#"{"records":[{"recordId":"a","result":"Ok","data":"aGk="}]}"#),
        &checks,
    );
    assert!(!v.failed());
    assert_eq!(v.violations[0].check, CheckId::NewlineDelimited);
}

#[test]
fn examples_are_capped_counts_are_exact() {
    let ids: Vec<String> = (0..500).map(|i| format!("r{i}")).collect();
    let ev = EventView {
        source: Source::DirectPut,
        record_ids: ids,
    };
    let v = check(&ev, &answer(r#"{"records":[]}"#), &CheckSet::default());
    assert_eq!(v.counts[&CheckId::NoMissingRecordIds], 500);
    assert_eq!(v.violations.len(), EXAMPLES_PER_CHECK);
    assert_eq!(v.failure_keys().len(), 1);
}

#[test]
fn determinism_compares_records_not_bytes() {
    let a = answer(
        r#"{"records":[{"recordId":"a","result":"Ok","data":"aGk="},{"recordId":"b","result":"Dropped"}]}"#,
    );
    let b = answer(
        r#"{"records":[{"result":"Dropped","recordId":"b"},{"recordId":"a","result":"Ok","data":"aGk="}]}"#,
    );
    assert!(compare_answers(&a, &b).is_none());
    let c = answer(
        r#"{"records":[{"recordId":"a","result":"Ok","data":"aGo="},{"recordId":"b","result":"Dropped"}]}"#,
    );
    assert!(compare_answers(&a, &c).unwrap().message.contains("\"a\""));
}

#[test]
fn ids_sent_twice_may_come_back_twice() {
    let ev = event(&["a", "a", "b"]);
    let ok = |id: &str| format!(r#"{{"recordId":"{id}","result":"Ok","data":"aGk="}}"#);
    let both = answer(&format!(
        r#"{{"records":[{},{},{}]}}"#,
        ok("a"),
        ok("a"),
        ok("b")
    ));
    assert!(
        check(&ev, &both, &CheckSet::default())
            .violations
            .is_empty()
    );
    let once = answer(&format!(r#"{{"records":[{},{}]}}"#, ok("a"), ok("b")));
    assert_eq!(
        failed_checks(&ev, &once, &CheckSet::default()),
        ["no_missing_record_ids"]
    );
    let thrice = answer(&format!(
        r#"{{"records":[{},{},{},{}]}}"#,
        ok("a"),
        ok("a"),
        ok("a"),
        ok("b")
    ));
    assert_eq!(
        failed_checks(&ev, &thrice, &CheckSet::default()),
        ["no_duplicate_record_ids"]
    );
}
