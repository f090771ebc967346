//! Thresholds: k6-style pass/fail gates on a load run's figures (`--threshold 'p99<250ms'`).
//!
//! Grammar: `METRIC OP VALUE[:abort]`, with
//! - `METRIC`: `pNN` / `pNN.N` (a percentile of the corrected response time: `p50`, `p99`, `p99.9`),
//!   `max`, `mean`, `error_rate` (function errors and timeouts over invocations), `throughput`
//!   (achieved invocations per second), `violations` (contract violations), `late_sends`;
//! - `OP`: `<`, `<=`, `>`, `>=`, `==`, `!=`;
//! - `VALUE` in the metric's own grammar: a duration for latencies, a ratio (`0.1%`) for
//!   `error_rate`, a rate (`100/s`) for throughput, a count otherwise;
//! - `:abort` stops the run at the first breach (k6's `abortOnFail`). Throughput is only judged at
//!   the end: mid-run it is still ramping.
//!
//! Latency thresholds judge the corrected response time on purpose: it is what a Firehose stream,
//! which never stops sending, experiences.

use hdrhistogram::Histogram;

use crate::values::{format_count, parse_duration, parse_rate, parse_ratio};

/// What a threshold measures.
#[derive(Debug, Clone, Copy, PartialEq)]
pub enum Metric {
    /// Quantile in 0..=1 of the corrected response time.
    Percentile(f64),
    Max,
    Mean,
    ErrorRate,
    Throughput,
    Violations,
    LateSends,
}

#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Op {
    Lt,
    Le,
    Gt,
    Ge,
    Eq,
    Ne,
}

impl Op {
    fn holds(self, actual: f64, limit: f64) -> bool {
        match self {
            Op::Lt => actual < limit,
            Op::Le => actual <= limit,
            Op::Gt => actual > limit,
            Op::Ge => actual >= limit,
            Op::Eq => actual == limit,
            Op::Ne => actual != limit,
        }
    }
}

/// A parsed `--threshold`.
#[derive(Debug, Clone, PartialEq)]
pub struct Threshold {
    /// As the user wrote it, without `:abort`: the JUnit testcase name.
    pub expression: String,
    pub metric: Metric,
    pub op: Op,
    /// In the metric's base unit: microseconds, a fraction, per second, or a count.
    pub limit: f64,
    pub abort: bool,
}

/// The figures thresholds judge; built from live stats or from a (merged) report.
pub struct Figures<'a> {
    pub response_time: &'a Histogram<u64>,
    pub invocations: u64,
    pub errors: u64,
    pub throughput: f64,
    pub violations: u64,
    pub late_sends: u64,
}

/// A threshold's verdict.
#[derive(Debug, Clone, PartialEq)]
pub struct Judged {
    pub passed: bool,
    /// The measured value in the threshold's unit, as text.
    pub actual: String,
}

/// The gate every load run has unless the user sets their own on `error_rate`: a function that
/// fails under load must never pass silently.
pub const DEFAULT_ERROR_GATE: &str = "error_rate<1%";

/// How a threshold the harness added by itself is labelled, in reports and `report merge`.
const DEFAULT_LABEL: &str = " (default)";

const METRICS: &str = "pNN (p99, p99.9), max, mean, error_rate, throughput, violations, late_sends";

impl Threshold {
    pub fn parse(s: &str) -> Result<Threshold, String> {
        let text = s.trim();
        let (text, default) = match text.strip_suffix(DEFAULT_LABEL) {
            Some(t) => (t.trim_end(), true),
            None => (text, false),
        };
        let (body, abort) = match text.strip_suffix(":abort") {
            Some(b) => (b.trim(), true),
            None => (text, false),
        };
        let op_at = body
            .find(['<', '>', '=', '!'])
            .ok_or_else(|| format!("`{s}` has no comparison; write e.g. p99<250ms"))?;
        let (name, rest) = body.split_at(op_at);
        let (op, value) = [
            ("<=", Op::Le),
            (">=", Op::Ge),
            ("==", Op::Eq),
            ("!=", Op::Ne),
            ("<", Op::Lt),
            (">", Op::Gt),
        ]
        .iter()
        .find_map(|(tok, op)| rest.strip_prefix(tok).map(|v| (*op, v.trim())))
        .ok_or_else(|| format!("`{s}`: unknown comparison; use <, <=, >, >=, == or !="))?;
        let name = name.trim();
        let metric = parse_metric(name)
            .ok_or_else(|| format!("`{s}`: unknown metric `{name}`; use {METRICS}"))?;
        let limit = match metric {
            Metric::Percentile(_) | Metric::Max | Metric::Mean => {
                parse_duration(value).map(|d| d.as_secs_f64() * 1e6)
            }
            Metric::ErrorRate => parse_ratio(value),
            Metric::Throughput => parse_rate(value),
            Metric::Violations | Metric::LateSends => value
                .parse::<u64>()
                .map(|n| n as f64)
                .map_err(|_| format!("`{value}` is not a count")),
        }
        .map_err(|e| format!("`{s}`: {e}"))?;
        Ok(Threshold {
            expression: if default {
                format!("{body}{DEFAULT_LABEL}")
            } else {
                body.to_string()
            },
            metric,
            op,
            limit,
            abort,
        })
    }

    /// `thresholds` plus [`DEFAULT_ERROR_GATE`] unless one of them already judges `error_rate`.
    pub fn with_default_gate(mut thresholds: Vec<Threshold>) -> Vec<Threshold> {
        if !thresholds.iter().any(|t| t.metric == Metric::ErrorRate) {
            let mut gate = Threshold::parse(DEFAULT_ERROR_GATE)
                .unwrap_or_else(|e| unreachable!("the default gate parses: {e}"));
            gate.expression.push_str(DEFAULT_LABEL);
            thresholds.push(gate);
        }
        thresholds
    }

    /// Judge the threshold against `f`.
    pub fn judge(&self, f: &Figures<'_>) -> Judged {
        let h = f.response_time;
        let (actual, text) = match self.metric {
            Metric::Percentile(q) => micros_figure(h.value_at_quantile(q)),
            Metric::Max => micros_figure(h.max()),
            Metric::Mean => {
                let m = if h.is_empty() { 0.0 } else { h.mean() };
                (m, firehose_reports::markdown::micros(m.round() as u64))
            }
            Metric::ErrorRate => {
                let r = if f.invocations == 0 {
                    0.0
                } else {
                    f.errors as f64 / f.invocations as f64
                };
                (r, format!("{:.3}%", r * 100.0))
            }
            Metric::Throughput => (f.throughput, format!("{:.1}/s", f.throughput)),
            Metric::Violations => (f.violations as f64, format_count(f.violations)),
            Metric::LateSends => (f.late_sends as f64, format_count(f.late_sends)),
        };
        Judged {
            passed: self.op.holds(actual, self.limit),
            actual: text,
        }
    }

    /// Whether a mid-run breach of this threshold may end the run. Throughput is still ramping up
    /// mid-run, so it is judged at the end only.
    pub fn judged_mid_run(&self) -> bool {
        self.abort && self.metric != Metric::Throughput
    }
}

fn micros_figure(us: u64) -> (f64, String) {
    (us as f64, firehose_reports::markdown::micros(us))
}

fn parse_metric(name: &str) -> Option<Metric> {
    Some(match name {
        "max" => Metric::Max,
        "mean" | "avg" => Metric::Mean,
        "error_rate" => Metric::ErrorRate,
        "throughput" => Metric::Throughput,
        "violations" => Metric::Violations,
        "late_sends" => Metric::LateSends,
        _ => {
            let digits = name.strip_prefix('p')?;
            if digits.is_empty() || !digits.chars().all(|c| c.is_ascii_digit() || c == '.') {
                return None;
            }
            let pct: f64 = digits.parse().ok()?;
            if !(0.0..=100.0).contains(&pct) {
                return None;
            }
            Metric::Percentile(pct / 100.0)
        }
    })
}

#[cfg(test)]
mod tests {
    use super::*;

    fn figures(h: &Histogram<u64>) -> Figures<'_> {
        Figures {
            response_time: h,
            invocations: 1000,
            errors: 2,
            throughput: 99.5,
            violations: 0,
            late_sends: 7,
        }
    }

    #[test]
    fn parses_every_documented_form() {
        let t = Threshold::parse("p99<250ms").unwrap();
        assert_eq!(t.metric, Metric::Percentile(0.99));
        assert_eq!(t.op, Op::Lt);
        assert_eq!(t.limit, 250_000.0);
        assert!(!t.abort);
        let t = Threshold::parse("p99.9<=1s:abort").unwrap();
        assert!(
            (match t.metric {
                Metric::Percentile(q) => q,
                _ => 0.0,
            } - 0.999)
                .abs()
                < 1e-12
        );
        assert!(t.abort);
        assert_eq!(t.expression, "p99.9<=1s");
        let t = Threshold::parse("error_rate<0.1%").unwrap();
        assert!((t.limit - 0.001).abs() < 1e-12);
        let t = Threshold::parse("throughput>=100/s").unwrap();
        assert_eq!(
            (t.metric, t.op, t.limit),
            (Metric::Throughput, Op::Ge, 100.0)
        );
        let t = Threshold::parse(" violations == 0 ").unwrap();
        assert_eq!((t.metric, t.op, t.limit), (Metric::Violations, Op::Eq, 0.0));
    }

    #[test]
    fn bad_thresholds_say_what_is_wrong() {
        for (bad, says) in [
            ("p99", "no comparison"),
            ("p99<fast", "not a duration"),
            ("latency<1s", "unknown metric"),
            ("p101<1s", "unknown metric"),
            ("error_rate<lots", "not a ratio"),
            ("throughput>=quick", "not a rate"),
            ("violations==zero", "not a count"),
            ("p99=>1s", "unknown comparison"),
        ] {
            let e = Threshold::parse(bad).unwrap_err();
            assert!(e.contains(says), "{bad}: {e}");
        }
    }

    #[test]
    fn judges_against_figures() {
        let mut h = firehose_reports::histogram::new_latency_histogram();
        for v in 1..=1000u64 {
            h.record(v * 1000).unwrap(); // 1 ms .. 1 s
        }
        let f = figures(&h);
        let j = Threshold::parse("p99<250ms").unwrap().judge(&f);
        assert!(!j.passed);
        assert!(j.actual.ends_with("ms"), "{}", j.actual);
        assert!(Threshold::parse("p50<=501ms").unwrap().judge(&f).passed);
        assert!(Threshold::parse("max<=1.001s").unwrap().judge(&f).passed);
        let j = Threshold::parse("error_rate<0.1%").unwrap().judge(&f);
        assert!(!j.passed);
        assert_eq!(j.actual, "0.200%");
        assert!(Threshold::parse("error_rate<1%").unwrap().judge(&f).passed);
        assert!(
            !Threshold::parse("throughput>=100/s")
                .unwrap()
                .judge(&f)
                .passed
        );
        assert!(Threshold::parse("violations==0").unwrap().judge(&f).passed);
        assert!(Threshold::parse("late_sends<10").unwrap().judge(&f).passed);
        assert!(
            !Threshold::parse("throughput>=1/s:abort")
                .unwrap()
                .judged_mid_run()
        );
        assert!(Threshold::parse("p99<1s:abort").unwrap().judged_mid_run());
    }
}
