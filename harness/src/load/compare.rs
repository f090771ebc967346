//! `report compare BASE NEW`: is the new run worse than the baseline?
//!
//! Percentiles are read from the serialised HDR histograms, never from the rounded figures beside
//! them, and a percentile is judged only when both runs hold enough samples for it to mean
//! something: `n ≥ 10 / (1 − q)` (20 for p50, 1,000 for p99). With 50 samples p99 *is* the maximum,
//! and one slow request would read as a regression — so it is shown and marked "too few samples".
//! p50 is judged like the tail, because a 17× median slowdown with the same tail is a regression too.

use firehose_reports::markdown::micros;
use firehose_reports::{CheckStatus, HistogramError, LatencySummary, Report};

use crate::values::{format_count, parse_ratio};

/// How much worse each figure may get before it counts as a regression (`--max-regression`).
#[derive(Debug, Clone, Copy, PartialEq)]
pub struct MaxRegression {
    /// Relative growth allowed per percentile of corrected response time: p50, p90, p99, p99.9.
    pub p50: f64,
    pub p90: f64,
    pub p99: f64,
    pub p999: f64,
    /// Relative fall allowed in the achieved rate.
    pub throughput: f64,
    /// Rise allowed in the error rate, in percentage points (0.1 = from 1.0% to 1.1%).
    pub error_rate_points: f64,
    /// Latency changes smaller than this (µs) never count: 80 µs → 100 µs is +25% and noise.
    pub latency_floor_us: u64,
}

impl Default for MaxRegression {
    fn default() -> Self {
        MaxRegression {
            p50: 0.10,
            p90: 0.10,
            p99: 0.10,
            p999: 0.10,
            throughput: 0.10,
            error_rate_points: 0.1,
            latency_floor_us: 1000,
        }
    }
}

impl MaxRegression {
    /// `p50=10%,p99=20%,throughput=5%,error_rate=0.1`: each key overrides its default.
    pub fn parse(spec: &str, base: MaxRegression) -> Result<Self, String> {
        let mut limits = base;
        for item in spec.split(',').map(str::trim).filter(|s| !s.is_empty()) {
            let (key, value) = item.split_once('=').ok_or_else(|| {
                format!("`{item}` is not KEY=VALUE; write e.g. p50=10%,p99=20%,throughput=5%,error_rate=0.1")
            })?;
            let (key, value) = (key.trim(), value.trim());
            if key == "error_rate" {
                // Percentage points: a bare number, or with `%`/`pts` for readers who write them.
                let n = value.trim_end_matches("pts").trim_end_matches('%').trim();
                limits.error_rate_points = n
                    .parse::<f64>()
                    .ok()
                    .filter(|v| v.is_finite() && *v >= 0.0)
                    .ok_or_else(|| {
                        format!("error_rate=`{value}` is not a number of percentage points, e.g. error_rate=0.1")
                    })?;
                continue;
            }
            let ratio = parse_ratio(value).map_err(|e| format!("{key}: {e}"))?;
            match key {
                "p50" => limits.p50 = ratio,
                "p90" => limits.p90 = ratio,
                "p99" => limits.p99 = ratio,
                "p99.9" | "p999" => limits.p999 = ratio,
                "throughput" => limits.throughput = ratio,
                _ => {
                    return Err(format!(
                        "unknown key `{key}`; choose from p50, p90, p99, p99.9, throughput, error_rate"
                    ));
                }
            }
        }
        Ok(limits)
    }

    /// One line for the header of a comparison.
    pub fn describe(&self) -> String {
        format!(
            "p50 +{}, p90 +{}, p99 +{}, p99.9 +{} (changes under {} never count), throughput −{}, error rate +{} pts",
            pct(self.p50),
            pct(self.p90),
            pct(self.p99),
            pct(self.p999),
            micros(self.latency_floor_us),
            pct(self.throughput),
            self.error_rate_points
        )
    }
}

fn pct(r: f64) -> String {
    format!("{}%", (r * 1000.0).round() / 10.0)
}

/// The verdict on one line of a comparison.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Judgement {
    Held,
    Regressed,
    /// Shown, not judged: fewer samples than `needed` in one of the runs.
    TooFewSamples {
        needed: u64,
    },
}

impl Judgement {
    fn text(self) -> String {
        match self {
            Judgement::Held => "ok".into(),
            Judgement::Regressed => "REGRESSION".into(),
            Judgement::TooFewSamples { needed } => {
                format!("too few samples (needs {})", format_count(needed))
            }
        }
    }
}

/// One line of a comparison.
#[derive(Debug, Clone, PartialEq)]
pub struct Line {
    pub what: String,
    pub base: String,
    pub new: String,
    pub change: String,
    pub judgement: Judgement,
}

impl Line {
    pub fn regressed(&self) -> bool {
        self.judgement == Judgement::Regressed
    }
}

/// Why two reports cannot be compared.
#[derive(Debug, thiserror::Error)]
pub enum CompareError {
    #[error(
        "{base_name} is report schema {base} and {new_name} is schema {new}: their figures are not comparable; re-run the baseline with this firehose-harness"
    )]
    SchemaMismatch {
        base_name: String,
        base: u32,
        new_name: String,
        new: u32,
    },
    #[error("{base_name} ({base}) and {new_name} ({new}) are not the same kind of run")]
    DifferentKinds {
        base_name: String,
        base: String,
        new_name: String,
        new: String,
    },
    #[error("{name}: {source}")]
    Histogram {
        name: String,
        source: HistogramError,
    },
}

/// A comparison, line by line.
#[derive(Debug, Clone, PartialEq)]
pub struct Comparison {
    pub limits: MaxRegression,
    pub lines: Vec<Line>,
}

/// The fewest samples at which percentile `q` is judged: `10 / (1 − q)`, so that at least ten
/// samples lie beyond it.
pub fn samples_needed(q: f64) -> u64 {
    (10.0 / (1.0 - q)).round() as u64
}

fn relative(base: f64, new: f64) -> String {
    if base == 0.0 {
        if new == 0.0 {
            "±0%".into()
        } else {
            "new".into()
        }
    } else {
        format!("{:+.1}%", (new - base) / base * 100.0)
    }
}

/// `kind (version)` of a report, for the "not the same kind of run" line.
fn kind(r: &Report) -> String {
    if r.load.is_some() {
        r.command.clone()
    } else {
        format!("{}, no load figures", r.command)
    }
}

/// Compare `new` with `base`. The names label errors.
pub fn compare(
    (base_name, base): (&str, &Report),
    (new_name, new): (&str, &Report),
    limits: &MaxRegression,
) -> Result<Comparison, CompareError> {
    if base.schema_version != new.schema_version {
        return Err(CompareError::SchemaMismatch {
            base_name: base_name.into(),
            base: base.schema_version,
            new_name: new_name.into(),
            new: new.schema_version,
        });
    }
    // Comparing a check with a load run would find nothing to compare and read as "no regression".
    if base.command != new.command || base.load.is_some() != new.load.is_some() {
        return Err(CompareError::DifferentKinds {
            base_name: base_name.into(),
            base: kind(base),
            new_name: new_name.into(),
            new: kind(new),
        });
    }
    let mut lines = Vec::new();
    if let (Some(b), Some(n)) = (&base.load, &new.load) {
        let decode = |name: &str, s: &LatencySummary| {
            s.histogram().map_err(|source| CompareError::Histogram {
                name: name.into(),
                source,
            })
        };
        let bh = decode(base_name, &b.latency.response_time)?;
        let nh = decode(new_name, &n.latency.response_time)?;
        let samples = bh.len().min(nh.len());
        let percentiles = [
            ("p50", 0.5, limits.p50),
            ("p90", 0.9, limits.p90),
            ("p99", 0.99, limits.p99),
            ("p99.9", 0.999, limits.p999),
        ];
        for (name, q, allowed) in percentiles {
            let (bv, nv) = (bh.value_at_quantile(q), nh.value_at_quantile(q));
            let needed = samples_needed(q);
            let judgement = if samples < needed {
                Judgement::TooFewSamples { needed }
            } else if nv as f64 > bv as f64 * (1.0 + allowed)
                && nv.saturating_sub(bv) >= limits.latency_floor_us
            {
                Judgement::Regressed
            } else {
                Judgement::Held
            };
            lines.push(Line {
                what: format!("response time {name} (corrected)"),
                base: micros(bv),
                new: micros(nv),
                change: relative(bv as f64, nv as f64),
                judgement,
            });
        }
        lines.push(Line {
            what: "throughput (achieved)".into(),
            base: format!("{:.1}/s", b.rate_achieved),
            new: format!("{:.1}/s", n.rate_achieved),
            change: relative(b.rate_achieved, n.rate_achieved),
            judgement: if n.rate_achieved < b.rate_achieved * (1.0 - limits.throughput) {
                Judgement::Regressed
            } else {
                Judgement::Held
            },
        });
        let points = (n.error_rate - b.error_rate) * 100.0;
        lines.push(Line {
            what: "error rate".into(),
            base: format!("{:.3}%", b.error_rate * 100.0),
            new: format!("{:.3}%", n.error_rate * 100.0),
            change: format!("{points:+.3} pts"),
            // A hair of tolerance for float noise in the division.
            judgement: if points > limits.error_rate_points + 1e-9 {
                Judgement::Regressed
            } else {
                Judgement::Held
            },
        });
    }
    // Checks that newly fail, by id: their failures are not listed again one by one.
    let mut newly_failing: Vec<&str> = Vec::new();
    for c in &new.checks {
        let was = base.checks.iter().find(|x| x.id == c.id).map(|x| x.status);
        if c.status == CheckStatus::Fail && was != Some(CheckStatus::Fail) {
            newly_failing.push(&c.id);
            lines.push(Line {
                what: format!("check {}", c.id),
                base: was.map_or("absent".into(), status_name),
                new: status_name(c.status),
                change: format!("{} violations", format_count(c.violations)),
                judgement: Judgement::Regressed,
            });
        }
    }
    for f in new.errors() {
        let known = base
            .failures
            .iter()
            .any(|x| x.check == f.check && x.fingerprint == f.fingerprint);
        let check_newly_failing = newly_failing.contains(&f.check.as_str());
        if !known && !check_newly_failing {
            lines.push(Line {
                what: format!("new failure in {}", f.check),
                base: "-".into(),
                new: f.message.clone(),
                change: format!("{} violations", format_count(f.count)),
                judgement: Judgement::Regressed,
            });
        }
    }
    Ok(Comparison {
        limits: *limits,
        lines,
    })
}

fn status_name(s: CheckStatus) -> String {
    s.as_str().into()
}

impl Comparison {
    pub fn regressions(&self) -> usize {
        self.lines.iter().filter(|l| l.regressed()).count()
    }

    fn verdict(&self, exit_regressed: i32) -> String {
        match self.regressions() {
            0 => "no regression (exit 0)".into(),
            n => format!(
                "REGRESSION: {n} figure{} worse than the baseline (exit {exit_regressed})",
                if n == 1 { " is" } else { "s are" }
            ),
        }
    }

    /// For a terminal or a CI log.
    pub fn text(&self, base_name: &str, new_name: &str, exit_regressed: i32) -> String {
        let mut out = format!(
            "report compare {base_name} → {new_name}\n  allowed: {}\n",
            self.limits.describe()
        );
        out.push_str(&format!(
            "  {:<36} {:>12} {:>12} {:>12}  verdict\n",
            "", "base", "new", "change"
        ));
        for l in &self.lines {
            out.push_str(&format!(
                "  {:<36} {:>12} {:>12} {:>12}  {}\n",
                l.what,
                l.base,
                l.new,
                l.change,
                l.judgement.text()
            ));
        }
        out.push_str(&format!("\n{}", self.verdict(exit_regressed)));
        out
    }

    /// For a pull-request comment.
    pub fn markdown(&self, base_name: &str, new_name: &str, exit_regressed: i32) -> String {
        let cell = |s: &str| s.replace('|', "\\|").replace('\n', " ");
        let icon = if self.regressions() == 0 {
            "✅"
        } else {
            "❌"
        };
        let mut out = format!(
            "## {icon} firehose-harness report compare\n\n`{}` → `{}`\n\n| figure | base | new | change | verdict |\n|---|---:|---:|---:|---|\n",
            cell(base_name),
            cell(new_name)
        );
        for l in &self.lines {
            let verdict = match l.judgement {
                Judgement::Regressed => "**REGRESSION**".to_string(),
                j => j.text(),
            };
            out.push_str(&format!(
                "| {} | {} | {} | {} | {verdict} |\n",
                cell(&l.what),
                cell(&l.base),
                cell(&l.new),
                cell(&l.change)
            ));
        }
        out.push_str(&format!(
            "\nAllowed: {}.\n\n**{}**\n",
            self.limits.describe(),
            self.verdict(exit_regressed)
        ));
        out
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use firehose_reports::histogram::new_latency_histogram;
    use firehose_reports::{LoadLatency, LoadSection};

    /// A load report whose response time holds exactly `values` (µs).
    fn load_report(values: &[u64]) -> Report {
        let mut h = new_latency_histogram();
        for v in values {
            h.record(*v).unwrap();
        }
        let s = LatencySummary::from_histogram(&h);
        let mut r = Report::new("load", "builtin:ndjson");
        r.load = Some(LoadSection {
            model: "open".into(),
            invocations: values.len() as u64,
            rate_achieved: 100.0,
            latency: LoadLatency {
                response_time: s.clone(),
                service_time: s.clone(),
                lag: s,
                queue_wait: None,
            },
            ..LoadSection::default()
        });
        r
    }

    /// 2,000 samples: the body at `body_us`, a tail at 40 ms in the slowest 20 % (so p90 and p99
    /// lie in the tail and p50 in the body).
    fn body_and_tail(body_us: u64) -> Vec<u64> {
        (0..2000u64)
            .map(|k| {
                if k % 5 == 0 {
                    40_000 + k
                } else {
                    body_us + k % 50
                }
            })
            .collect()
    }

    fn judged(c: &Comparison, what: &str) -> Judgement {
        c.lines
            .iter()
            .find(|l| l.what.starts_with(what))
            .unwrap_or_else(|| panic!("no line {what}: {c:?}"))
            .judgement
    }

    #[test]
    fn a_slower_median_with_the_same_tail_is_a_regression() {
        let base = load_report(&body_and_tail(4_000));
        // +30% at p50, the tail untouched.
        let new = load_report(&body_and_tail(5_200));
        let c = compare(("base", &base), ("new", &new), &MaxRegression::default()).unwrap();
        assert_eq!(judged(&c, "response time p50"), Judgement::Regressed);
        assert_eq!(judged(&c, "response time p99 "), Judgement::Held);
        assert_eq!(c.regressions(), 1, "{c:?}");
        // A looser p50 limit lets it through.
        let loose = MaxRegression::parse("p50=50%", MaxRegression::default()).unwrap();
        let c = compare(("base", &base), ("new", &new), &loose).unwrap();
        assert_eq!(c.regressions(), 0, "{c:?}");
    }

    #[test]
    fn identical_reports_pass() {
        let base = load_report(&body_and_tail(4_000));
        let c = compare(("a", &base), ("b", &base), &MaxRegression::default()).unwrap();
        assert_eq!(c.regressions(), 0);
        assert!(c.text("a", "b", 3).ends_with("no regression (exit 0)"));
    }

    #[test]
    fn the_tail_of_fifty_samples_is_not_judged() {
        let base = load_report(&(0..50).map(|k| 1000 + k * 10).collect::<Vec<_>>());
        // The slowest sample is 10× slower: p99 and p99.9 are that one sample.
        let mut slow: Vec<u64> = (0..50).map(|k| 1000 + k * 10).collect();
        slow[49] = 20_000;
        let new = load_report(&slow);
        let c = compare(("base", &base), ("new", &new), &MaxRegression::default()).unwrap();
        assert_eq!(
            judged(&c, "response time p99.9"),
            Judgement::TooFewSamples { needed: 10_000 }
        );
        assert_eq!(
            judged(&c, "response time p99 "),
            Judgement::TooFewSamples { needed: 1_000 }
        );
        assert_eq!(judged(&c, "response time p50"), Judgement::Held);
        assert_eq!(c.regressions(), 0);
        assert!(c.markdown("base", "new", 3).contains("too few samples"));
    }

    #[test]
    fn error_rate_is_judged_in_percentage_points() {
        let base = load_report(&body_and_tail(4_000));
        let mut new = base.clone();
        new.load.as_mut().unwrap().error_rate = 0.0015;
        let c = compare(("a", &base), ("b", &new), &MaxRegression::default()).unwrap();
        assert_eq!(judged(&c, "error rate"), Judgement::Regressed);
        let loose = MaxRegression::parse("error_rate=0.2", MaxRegression::default()).unwrap();
        let c = compare(("a", &base), ("b", &new), &loose).unwrap();
        assert_eq!(judged(&c, "error rate"), Judgement::Held);
    }

    #[test]
    fn versions_do_not_mix() {
        let base = load_report(&[1000]);
        let mut new = base.clone();
        new.schema_version += 1;
        let e = compare(
            ("a.json", &base),
            ("b.json", &new),
            &MaxRegression::default(),
        )
        .unwrap_err()
        .to_string();
        assert!(
            e.contains("a.json is report schema") && e.contains("b.json"),
            "{e}"
        );
    }

    #[test]
    fn bad_limits_say_what_to_write() {
        let d = MaxRegression::default();
        assert!(
            MaxRegression::parse("p42=1%", d)
                .unwrap_err()
                .contains("p99.9")
        );
        assert!(
            MaxRegression::parse("p50", d)
                .unwrap_err()
                .contains("KEY=VALUE")
        );
        assert!(MaxRegression::parse("error_rate=lots", d).is_err());
        let m = MaxRegression::parse("p50=10%,p99=20%,throughput=5%,error_rate=0.1", d).unwrap();
        assert_eq!((m.p99, m.throughput, m.error_rate_points), (0.2, 0.05, 0.1));
        assert_eq!(samples_needed(0.5), 20);
        assert_eq!(samples_needed(0.9), 100);
    }
}
