//! `junit.xml`: one testcase per check (and per load threshold), so CI systems show each contract rule
//! as a test.

use std::io::Write;

use quick_junit::{NonSuccessKind, Report as JReport, TestCase, TestCaseStatus, TestSuite};

use crate::text::visible;
use crate::{CheckStatus, Report};

pub fn write(report: &Report, out: &mut impl Write) -> std::io::Result<()> {
    let mut suite = TestSuite::new(format!("firehose-harness {}", report.command));
    if report.nothing_judged() {
        // Nothing ran: one error, and no check may read as passed.
        let mut s = TestCaseStatus::non_success(NonSuccessKind::Error);
        s.set_message(visible(report.nothing_judged_reason()).into_owned());
        s.set_type("Harness.NothingJudged");
        let mut case = TestCase::new("target reachable", s);
        case.set_classname(format!("firehose.run.{}", visible(&report.target)));
        suite.add_test_case(case);
        return serialize(suite, out);
    }
    for check in &report.checks {
        let status = match check.status {
            CheckStatus::Pass | CheckStatus::Warn => TestCaseStatus::success(),
            CheckStatus::Skipped => {
                let mut s = TestCaseStatus::skipped();
                s.set_message("not enabled for this run");
                s
            }
            CheckStatus::Fail => {
                let mut s = TestCaseStatus::non_success(NonSuccessKind::Failure);
                let failures: Vec<_> = report
                    .failures
                    .iter()
                    .filter(|f| f.check == check.id)
                    .collect();
                let first = failures
                    .first()
                    .map(|f| f.message.clone())
                    .unwrap_or_else(|| format!("{} violations", check.violations));
                s.set_message(visible(&first).into_owned());
                s.set_type(check.code.clone());
                let mut description = String::new();
                for f in failures {
                    description.push_str(&format!(
                        "{} ({}{})\n",
                        f.message,
                        f.tally(),
                        f.case
                            .as_ref()
                            .map(|c| format!(", case {c}"))
                            .unwrap_or_default()
                    ));
                }
                s.set_description(visible(&description).into_owned());
                s
            }
        };
        let mut case = TestCase::new(check.id.clone(), status);
        case.set_classname(format!("firehose.contract.{}", visible(&report.target)));
        if check.status == CheckStatus::Warn {
            case.set_system_out(format!("{} warnings", check.violations));
        }
        suite.add_test_case(case);
    }
    if let Some(load) = &report.load {
        for t in &load.thresholds {
            let status = if t.passed {
                TestCaseStatus::success()
            } else {
                let mut s = TestCaseStatus::non_success(NonSuccessKind::Failure);
                s.set_message(format!("{} breached: actual {}", t.expression, t.actual));
                s.set_type("Harness.ThresholdBreached");
                s
            };
            let mut case = TestCase::new(format!("threshold {}", t.expression), status);
            case.set_classname(format!("firehose.load.{}", visible(&report.target)));
            suite.add_test_case(case);
        }
    }
    serialize(suite, out)
}

fn serialize(suite: TestSuite, out: &mut impl Write) -> std::io::Result<()> {
    let mut junit = JReport::new("firehose-harness");
    junit.add_test_suite(suite);
    let xml = junit
        .to_string()
        .map_err(|e| std::io::Error::other(e.to_string()))?;
    out.write_all(xml_legal(&xml).as_bytes())
}

/// Text is passed through [`visible`] before quick-junit sees it (quick-junit strips ANSI
/// sequences, eating the text after a lone ESC, and passes U+FFFE/U+FFFF, which XML 1.0 forbids
/// and CI test reporters reject); this last pass guards what no field escaped.
fn xml_legal(xml: &str) -> std::borrow::Cow<'_, str> {
    if xml.contains(['\u{fffe}', '\u{ffff}']) {
        std::borrow::Cow::Owned(xml.replace(['\u{fffe}', '\u{ffff}'], "\u{fffd}"))
    } else {
        std::borrow::Cow::Borrowed(xml)
    }
}

#[cfg(test)]
mod tests {
    use crate::{CheckResult, CheckStatus, Failure, Report, Severity};

    /// Every character a target can put in its error text leaves the document well-formed.
    #[test]
    fn text_from_a_target_never_makes_the_xml_ill_formed() {
        let mut r = Report::new("check", "http://t/\u{1b}[31m");
        r.checks.push(CheckResult {
            id: "invocation_succeeded".into(),
            code: "Lambda.FunctionError".into(),
            status: CheckStatus::Fail,
            violations: 1,
            summary: String::new(),
            firehose_documented: true,
        });
        let nasty: String = (0u32..0x20)
            .chain([0x7f, 0xfffe, 0xffff, 0x1_0000])
            .filter_map(char::from_u32)
            .collect();
        r.failures.push(Failure {
            check: "invocation_succeeded".into(),
            code: "Lambda.FunctionError".into(),
            severity: Severity::Error,
            message: format!("boom {nasty} <script>&"),
            count: 1,
            cases: 1,
            record_id: None,
            case: None,
            fingerprint: "f".into(),
            phase: "random".into(),
            flaky: false,
            shrink: None,
            minimal_batch: None,
            depends_on: vec![],
            original_message: None,
        });
        let mut out = Vec::new();
        super::write(&r, &mut out).unwrap();
        let xml = String::from_utf8(out).unwrap();
        let illegal = |c: char| {
            let c = c as u32;
            !(c == 0x9
                || c == 0xA
                || c == 0xD
                || (0x20..=0xD7FF).contains(&c)
                || (0xE000..=0xFFFD).contains(&c)
                || c >= 0x1_0000)
        };
        assert!(!xml.chars().any(illegal), "{}", xml.escape_debug());
        assert!(xml.contains("&lt;script&gt;&amp;"), "{xml}");
    }
}
