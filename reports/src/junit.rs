//! `junit.xml`: one testcase per check (and per load threshold), so CI systems show each contract rule
//! as a test.

use std::io::Write;

use quick_junit::{NonSuccessKind, Report as JReport, TestCase, TestCaseStatus, TestSuite};

use crate::{CheckStatus, Report};

pub fn write(report: &Report, out: &mut impl Write) -> std::io::Result<()> {
    let mut suite = TestSuite::new(format!("firehose-harness {}", report.command));
    if report.nothing_judged() {
        // Nothing ran: one error, and no check may read as passed.
        let mut s = TestCaseStatus::non_success(NonSuccessKind::Error);
        s.set_message(report.nothing_judged_reason().to_string());
        s.set_type("Harness.NothingJudged");
        let mut case = TestCase::new("target reachable", s);
        case.set_classname(format!("firehose.run.{}", report.target));
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
                s.set_message(first);
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
                s.set_description(description);
                s
            }
        };
        let mut case = TestCase::new(check.id.clone(), status);
        case.set_classname(format!("firehose.contract.{}", report.target));
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
            case.set_classname(format!("firehose.load.{}", report.target));
            suite.add_test_case(case);
        }
    }
    serialize(suite, out)
}

fn serialize(suite: TestSuite, out: &mut impl Write) -> std::io::Result<()> {
    let mut junit = JReport::new("firehose-harness");
    junit.add_test_suite(suite);
    junit
        .serialize(&mut *out)
        .map_err(|e| std::io::Error::other(e.to_string()))
}
