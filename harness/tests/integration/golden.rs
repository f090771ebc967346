//! Golden files: `report.json`, `junit.xml` and `summary.md` of `check` and `load`, with fixed
//! seeds, against a `builtin:` target and a broken zoo server — recorded before the architecture
//! refactor, so moving code around cannot change what users and scripts read.
//!
//! What time decides is masked, and only that ([`MASKED_FIELDS`], [`mask_text`]); everything else
//! must match byte for byte. After a deliberate change of output, re-record with
//! `UPDATE_GOLDEN=1 cargo nextest run -p firehose-harness --test integration golden` and review
//! the diff. Every golden `report.json` also validates against the shipped JSON Schema
//! (`reports/report.schema.json`).

use std::path::{Path, PathBuf};

use serde_json::Value;

use super::support::{describe, run_in, serve, temp_dir};
use super::zoo::{Animal, router};

/// Fields of `report.json` whose values depend on the clock or the machine, replaced by
/// `"<masked>"` wherever they occur: timestamps and timings (`started_at`, `duration_ms`, every
/// latency percentile and histogram — their `count`s stay), `late_sends`, `intervals`, the achieved rates and in-flight figures, and the tool's
/// version (bumped by releases, not by behaviour).
const MASKED_FIELDS: &[&str] = &[
    // timestamps and timings
    "started_at",
    "duration_ms",
    // histograms and percentiles, wherever they sit
    "histogram",
    "p50",
    "p90",
    "p99",
    "p999",
    "min",
    "max",
    "mean",
    // load figures that follow from how fast this machine was
    "late_sends",
    "intervals",
    "rate_achieved",
    "records_per_second",
    "bytes_in_per_second",
    "bytes_out_per_second",
    "peak_in_flight",
    "mean_in_flight",
    "warmup_invocations",
    "limited_by",
    "limited_because",
    "warnings",
    "version",
];

fn golden_dir() -> PathBuf {
    Path::new(env!("CARGO_MANIFEST_DIR")).join("tests/integration/fixtures/golden")
}

fn mask_json(v: &mut Value) {
    match v {
        Value::Object(map) => {
            for (k, v) in map.iter_mut() {
                if MASKED_FIELDS.contains(&k.as_str()) && !v.is_null() {
                    *v = Value::String("<masked>".into());
                } else {
                    mask_json(v);
                }
            }
        }
        Value::Array(items) => items.iter_mut().for_each(mask_json),
        _ => {}
    }
}

/// Text outputs (`junit.xml`, `summary.md`, notes inside `report.json`): the zoo server's port and
/// the temporary folder are replaced by names; durations, timestamps, rates and percentiles by
/// `<t>`.
fn mask_text(text: &str, server: &str, tmp: &Path) -> String {
    let mut s = text
        .replace(&tmp.display().to_string(), "<tmp>")
        .replace(server, "http://ZOO");
    // `time="0.123"` and `timestamp="2026-…"` attributes (JUnit).
    s = replace_attr(&s, "time");
    s = replace_attr(&s, "timestamp");
    mask_numbers_with_units(&s)
}

fn replace_attr(s: &str, attr: &str) -> String {
    let needle = format!(" {attr}=\"");
    let mut out = String::with_capacity(s.len());
    let mut rest = s;
    while let Some(i) = rest.find(&needle) {
        out.push_str(&rest[..i + needle.len()]);
        rest = &rest[i + needle.len()..];
        let end = rest.find('"').unwrap_or(rest.len());
        out.push_str("<t>");
        rest = &rest[end..];
    }
    out.push_str(rest);
    out
}

/// Numbers that carry a unit of time or rate (`12.3ms`, `4 µs`, `1.2 s`, `350.0/s`, `9 bytes/s`)
/// and RFC 3339 timestamps become `<t>`; counts and sizes stay.
fn mask_numbers_with_units(s: &str) -> String {
    let units = [
        "records/s",
        "bytes/s",
        "inv/s",
        "µs",
        "us",
        "ms",
        "s",
        "m",
        "h",
        "/s",
        "/m",
        "%",
    ];
    let chars: Vec<char> = s.chars().collect();
    let mut out = String::with_capacity(s.len());
    let mut i = 0;
    while i < chars.len() {
        let starts_number = chars[i].is_ascii_digit()
            && (i == 0 || !(chars[i - 1].is_alphanumeric() || chars[i - 1] == '_'));
        if !starts_number {
            out.push(chars[i]);
            i += 1;
            continue;
        }
        let mut j = i;
        while j < chars.len() && (chars[j].is_ascii_digit() || ",.:-TZ+".contains(chars[j])) {
            j += 1;
        }
        let number: String = chars[i..j].iter().collect();
        // An RFC 3339 timestamp: 2026-11-30T13:03:11Z.
        if number.contains('T') && number.contains('-') && number.contains(':') {
            out.push_str("<t>");
            i = j;
            continue;
        }
        let number = number.trim_end_matches(|c: char| !c.is_ascii_digit());
        let j = i + number.chars().count();
        let mut k = j;
        while k < chars.len() && chars[k] == ' ' && k - j < 1 {
            k += 1;
        }
        let after: String = chars[k..chars.len().min(k + 10)].iter().collect();
        let unit = units.iter().find(|u| {
            after.starts_with(*u)
                && after[u.len()..]
                    .chars()
                    .next()
                    .is_none_or(|c| !c.is_alphanumeric())
        });
        match unit {
            Some(u) => {
                out.push_str("<t>");
                i = k + u.chars().count();
            }
            None => {
                out.push_str(number);
                i = j;
            }
        }
    }
    out
}

/// One recorded run: its name and arguments (the report dir is added).
struct Run {
    name: &'static str,
    args: Vec<String>,
}

fn runs(zoo: &str) -> Vec<Run> {
    let broken = format!("{zoo}{}", Animal::DropsLastId.path());
    let owned = |a: &[&str]| a.iter().map(|s| s.to_string()).collect::<Vec<_>>();
    vec![
        Run {
            name: "check-builtin",
            args: owned(&[
                "check",
                "--target",
                "builtin:ndjson",
                "--cases",
                "20",
                "--seed",
                "7",
            ]),
        },
        Run {
            name: "check-zoo-drops-last-id",
            args: owned(&["check", "--target", &broken, "--cases", "20", "--seed", "7"]),
        },
        Run {
            name: "load-builtin",
            args: owned(&[
                "load",
                "--target",
                "builtin:ndjson",
                "--concurrency",
                "2",
                "--invocations",
                "40",
                "--seed",
                "7",
            ]),
        },
        Run {
            name: "load-zoo-drops-last-id",
            args: owned(&[
                "load",
                "--target",
                &broken,
                "--concurrency",
                "1",
                "--invocations",
                "10",
                "--seed",
                "7",
            ]),
        },
    ]
}

/// The three golden outputs of one run, masked.
fn outputs(run: &Run, zoo: &str) -> Vec<(String, String)> {
    let dir = temp_dir();
    let mut args: Vec<&str> = run.args.iter().map(String::as_str).collect();
    args.extend(["--report-dir", "R"]);
    let out = run_in(dir.path(), &args);
    let code = out.status.code();
    assert!(
        matches!(code, Some(0 | 1 | 3)),
        "{}: {}",
        run.name,
        describe(&out)
    );
    let report_dir = dir.path().join("R");
    let read = |name: &str| {
        std::fs::read_to_string(report_dir.join(name))
            .unwrap_or_else(|e| panic!("{}: {name}: {e}", run.name))
    };
    let mut report: Value = serde_json::from_str(&read("report.json")).expect("report.json");
    validate_against_schema(&report, run.name);
    mask_json(&mut report);
    let report = mask_text(
        &serde_json::to_string_pretty(&report).unwrap(),
        zoo,
        dir.path(),
    ) + "\n";
    vec![
        (format!("{}.report.json", run.name), report),
        (
            format!("{}.junit.xml", run.name),
            mask_text(&read("junit.xml"), zoo, dir.path()),
        ),
        (
            format!("{}.summary.md", run.name),
            mask_text(&read("summary.md"), zoo, dir.path()),
        ),
    ]
}

fn validate_against_schema(report: &Value, name: &str) {
    let schema: Value =
        serde_json::from_str(firehose_reports::schema::SHIPPED).expect("the schema is JSON");
    let validator = jsonschema::validator_for(&schema).expect("the shipped schema compiles");
    let errors: Vec<String> = validator
        .iter_errors(report)
        .map(|e| format!("{} at {}", e, e.instance_path()))
        .collect();
    assert!(
        errors.is_empty(),
        "{name}: report.json does not match reports/report.schema.json:\n{}",
        errors.join("\n")
    );
}

#[test]
fn check_and_load_reports_match_their_golden_files() {
    let server = serve(router());
    let zoo = server.url("");
    let update = std::env::var_os("UPDATE_GOLDEN").is_some();
    let dir = golden_dir();
    let mut mismatches = Vec::new();
    for run in runs(&zoo) {
        for (file, actual) in outputs(&run, &zoo) {
            let path = dir.join(&file);
            if update {
                std::fs::create_dir_all(&dir).unwrap();
                std::fs::write(&path, &actual).unwrap();
                continue;
            }
            let expected = std::fs::read_to_string(&path).unwrap_or_else(|e| {
                panic!(
                    "{}: {e} (record with UPDATE_GOLDEN=1 cargo nextest run -p firehose-harness --test integration golden)",
                    path.display()
                )
            });
            if expected != actual {
                let line = expected
                    .lines()
                    .zip(actual.lines())
                    .position(|(a, b)| a != b)
                    .unwrap_or(expected.lines().count().min(actual.lines().count()));
                mismatches.push(format!(
                    "{file} differs from line {}:\n  golden: {:?}\n  now:    {:?}",
                    line + 1,
                    expected.lines().nth(line),
                    actual.lines().nth(line)
                ));
            }
        }
    }
    assert!(mismatches.is_empty(), "{}", mismatches.join("\n"));
}

#[test]
fn the_golden_reports_validate_against_the_shipped_schema() {
    // The golden files are masked (strings where numbers were), so they are checked for shape
    // where the mask left it alone: the schema must accept a real report (checked in the run
    // above) and reject one that breaks a pinned field.
    let schema: Value = serde_json::from_str(firehose_reports::schema::SHIPPED).unwrap();
    let validator = jsonschema::validator_for(&schema).unwrap();
    let golden: Value = serde_json::from_str(
        &std::fs::read_to_string(golden_dir().join("check-zoo-drops-last-id.report.json"))
            .expect("the golden check report"),
    )
    .unwrap();
    let mut real = golden.clone();
    unmask(&mut real);
    assert!(
        validator.is_valid(&real),
        "{:?}",
        validator
            .iter_errors(&real)
            .map(|e| e.to_string())
            .collect::<Vec<_>>()
    );
    let mut broken = real.clone();
    broken["verdict"] = Value::String("maybe".into());
    assert!(!validator.is_valid(&broken), "verdict must be pass or fail");
    let mut broken = real;
    broken["checks"][0]["status"] = Value::String("FAIL".into());
    assert!(!validator.is_valid(&broken), "a status is lowercase");
}

/// Put plausible values back where the mask wrote strings, so a golden file validates.
fn unmask(v: &mut Value) {
    match v {
        Value::Object(map) => {
            for (k, v) in map.iter_mut() {
                if v == "<masked>" {
                    *v = match k.as_str() {
                        "started_at" | "histogram" | "version" => Value::String(String::new()),
                        "limited_by" | "limited_because" => Value::Null,
                        "intervals" | "warnings" => Value::Array(Vec::new()),
                        "mean"
                        | "rate_achieved"
                        | "records_per_second"
                        | "mean_in_flight"
                        | "bytes_in_per_second"
                        | "bytes_out_per_second" => 0.0.into(),
                        _ => 0.into(),
                    };
                } else {
                    unmask(v);
                }
            }
        }
        Value::Array(items) => items.iter_mut().for_each(unmask),
        _ => {}
    }
}

#[test]
fn the_text_mask_hides_time_and_keeps_counts() {
    let tmp = Path::new("/tmp/x1");
    assert_eq!(
        mask_text(
            "p99 12.5ms, 3 µs at 2026-11-30T13:03:11Z; 1,024 records in /tmp/x1/R from http://127.0.0.1:4000/A; 350.2/s, 14383.1 records/s",
            "http://127.0.0.1:4000",
            tmp
        ),
        "p99 <t>, <t> at <t>; 1,024 records in <tmp>/R from http://ZOO/A; <t>, <t>"
    );
    assert_eq!(
        mask_text(r#"<testsuite time="0.25" timestamp="x">"#, "z", tmp),
        r#"<testsuite time="<t>" timestamp="<t>">"#
    );
}
