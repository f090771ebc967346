//! `report.html`: one self-contained page (inline CSS and SVG, no scripts, no network) with the verdict,
//! the checks, the failures and latency plots — something to attach to a pull request or a release.

use std::io::Write;

use plotters::prelude::*;

use crate::markdown::micros;
use crate::{CheckStatus, LatencySummary, LoadSection, Report, Verdict, format_count};

/// Escape text for HTML: ids and messages can hold `<`, `&` and quotes.
fn esc(s: &str) -> String {
    let mut out = String::with_capacity(s.len());
    for c in s.chars() {
        match c {
            '<' => out.push_str("&lt;"),
            '>' => out.push_str("&gt;"),
            '&' => out.push_str("&amp;"),
            '"' => out.push_str("&quot;"),
            '\'' => out.push_str("&#39;"),
            _ => out.push(c),
        }
    }
    out
}

const QUANTILES: [f64; 11] = [
    0.0, 0.25, 0.5, 0.75, 0.9, 0.95, 0.99, 0.995, 0.999, 0.9995, 0.9999,
];

/// Position of a quantile on a "nines" axis: 90% → 1, 99% → 2, 99.9% → 3 (as HdrHistogram plots).
fn nines(q: f64) -> f64 {
    -(1.0 - q.min(0.9999)).log10()
}

/// The axes of a line chart.
struct Axes<'a> {
    size: (u32, u32),
    caption: Option<&'a str>,
    x: (f64, f64),
    y_max: f64,
    x_desc: &'a str,
    y_desc: &'a str,
    /// Tick labels on the x axis, when numbers are not what a reader expects.
    x_label: Option<&'a dyn Fn(&f64) -> String>,
}

/// Series colours, in order.
const COLORS: [RGBColor; 3] = [
    RGBColor(200, 60, 40),
    RGBColor(40, 90, 200),
    RGBColor(60, 150, 60),
];

/// The legend, as HTML under the chart: outside the plot area, so it never covers a line.
fn legend(names: &[&str]) -> String {
    let mut out = String::from("<p class=\"legend\">");
    for (i, name) in names.iter().enumerate() {
        let RGBColor(r, g, b) = COLORS[i % COLORS.len()];
        out.push_str(&format!(
            "<span class=\"swatch\" style=\"background:rgb({r},{g},{b})\"></span>{} ",
            esc(name)
        ));
    }
    out.push_str("</p>");
    out
}

/// One SVG line chart: every series a coloured line; the legend follows as HTML.
fn line_chart(axes: &Axes<'_>, series: &[(&str, Vec<(f64, f64)>)]) -> Option<String> {
    let mut svg = String::new();
    {
        let root = SVGBackend::with_string(&mut svg, axes.size).into_drawing_area();
        root.fill(&WHITE).ok()?;
        let mut builder = ChartBuilder::on(&root);
        if let Some(caption) = axes.caption {
            builder.caption(caption, ("sans-serif", 16));
        }
        let mut chart = builder
            .margin(12)
            .x_label_area_size(36)
            .y_label_area_size(56)
            .build_cartesian_2d(axes.x.0..axes.x.1, 0f64..axes.y_max.max(0.001) * 1.1)
            .ok()?;
        let mut mesh = chart.configure_mesh();
        mesh.x_desc(axes.x_desc).y_desc(axes.y_desc);
        if let Some(label) = axes.x_label {
            mesh.x_labels(5).x_label_formatter(label);
        }
        mesh.draw().ok()?;
        // The first series is drawn last, on top: an achieved rate that meets its plan stays
        // visible over the planned line, which is drawn wider beneath it.
        for (i, (_, points)) in series.iter().enumerate().rev() {
            let color = COLORS[i % COLORS.len()];
            let width = if i == 0 { 2 } else { 4 };
            chart
                .draw_series(LineSeries::new(
                    points.iter().copied(),
                    color
                        .mix(if i == 0 { 1.0 } else { 0.6 })
                        .stroke_width(width),
                ))
                .ok()?;
        }
        root.present().ok()?;
    }
    let names: Vec<&str> = series.iter().map(|(n, _)| *n).collect();
    Some(format!("<figure>{svg}{}</figure>", legend(&names)))
}

/// Latency against percentile on a "nines" axis, one line per named summary.
pub fn percentile_chart(series: &[(&str, &LatencySummary)]) -> Option<String> {
    let curves: Vec<(&str, Vec<(f64, f64)>)> = series
        .iter()
        .filter_map(|(name, s)| {
            let h = s.histogram().ok()?;
            (!h.is_empty()).then(|| {
                let points = QUANTILES
                    .iter()
                    .map(|q| (nines(*q), h.value_at_quantile(*q) as f64 / 1000.0))
                    .collect();
                (*name, points)
            })
        })
        .collect();
    if curves.is_empty() {
        return None;
    }
    let y_max = curves
        .iter()
        .flat_map(|(_, p)| p.iter().map(|(_, y)| *y))
        .fold(0.0, f64::max);
    let label = |x: &f64| match x.round() as i64 {
        0 => "0%".to_string(),
        1 => "90%".into(),
        2 => "99%".into(),
        3 => "99.9%".into(),
        _ => "99.99%".into(),
    };
    let axes = Axes {
        size: (720, 320),
        caption: None,
        x: (0.0, 4.2),
        y_max,
        x_desc: "percentile",
        y_desc: "milliseconds",
        x_label: Some(&label),
    };
    line_chart(&axes, &curves)
}

/// Per-second values (throughput, p99 over time); `unit` labels the y axis.
pub fn time_chart(title: &str, unit: &str, series: &[(&str, Vec<(f64, f64)>)]) -> Option<String> {
    let points: Vec<&(f64, f64)> = series.iter().flat_map(|(_, p)| p.iter()).collect();
    if points.len() < 2 {
        return None;
    }
    let axes = Axes {
        size: (720, 260),
        caption: Some(title),
        x: (0.0, points.iter().map(|p| p.0).fold(1.0, f64::max)),
        y_max: points.iter().map(|p| p.1).fold(0.0, f64::max),
        x_desc: "seconds since the start of the measured run",
        y_desc: unit,
        x_label: None,
    };
    line_chart(&axes, series)
}

const STYLE: &str = "body{font-family:system-ui,sans-serif;max-width:980px;margin:2em auto;padding:0 1em;color:#222}\
h1{font-size:1.5em}.pass{color:#1a7f37}.fail{color:#cf222e}.warn{color:#9a6700}\
table{border-collapse:collapse;margin:1em 0}td,th{border:1px solid #ddd;padding:4px 8px;text-align:left;font-size:.92em}\
th{background:#f6f8fa}code,pre{font-family:ui-monospace,monospace;font-size:.9em}\
pre{background:#f6f8fa;padding:8px;overflow-x:auto;white-space:pre-wrap}.note{background:#fff8c5;padding:6px 10px;margin:4px 0}\
figure{margin:1em 0}.legend{margin:2px 0 0 60px;font-size:.9em}.swatch{display:inline-block;width:14px;height:4px;margin:0 5px 3px 10px;vertical-align:middle}\
.warning{background:#ffebe9;padding:6px 10px;margin:4px 0}";

/// A row of a two-column table: a heading and HTML (already escaped).
fn row(out: &mut impl Write, head: &str, html: &str) -> std::io::Result<()> {
    write!(out, "<tr><th>{}</th><td>{html}</td></tr>", esc(head))
}

/// What decided a load run's verdict, first: thresholds with their values, the error rate, the
/// rate achieved against the rate planned, what held the run back, the Firehose model's verdict.
fn load_section(load: &LoadSection, out: &mut impl Write) -> std::io::Result<()> {
    if !load.thresholds.is_empty() {
        write!(
            out,
            "<h2>Thresholds</h2><table class=\"thresholds\"><tr><th>threshold</th><th>actual</th><th>result</th></tr>"
        )?;
        for t in &load.thresholds {
            let (cls, result) = if t.passed {
                ("pass", "pass")
            } else {
                ("fail", "BREACHED")
            };
            write!(
                out,
                "<tr><td><code>{}</code></td><td>{}</td><td class=\"{cls}\">{result}{}</td></tr>",
                esc(&t.expression),
                esc(&t.actual),
                if t.aborted_run {
                    " — aborted the run"
                } else {
                    ""
                }
            )?;
        }
        write!(out, "</table>")?;
    }
    for w in &load.warnings {
        write!(out, "<p class=\"warning\">warning: {}</p>", esc(w))?;
    }
    write!(out, "<h2>Load</h2><table class=\"load\">")?;
    row(out, "model", &esc(&load.model))?;
    let planned = load
        .rate_target
        .map(|p| format!(" of {p:.1}/s planned"))
        .unwrap_or_default();
    row(
        out,
        "invocations",
        &format!(
            "{} measured ({:.1}/s achieved{planned}) · {} warm-up · {} interrupted",
            format_count(load.invocations),
            load.rate_achieved,
            format_count(load.warmup_invocations),
            format_count(load.interrupted)
        ),
    )?;
    row(
        out,
        "error rate",
        &format!(
            "{:.3}% ({} function errors and timeouts) · contract violations in {} invocations",
            load.error_rate * 100.0,
            format_count(load.errors),
            format_count(load.violations)
        ),
    )?;
    let lat = &load.latency.response_time;
    row(
        out,
        "response time (corrected)",
        &format!(
            "p50 {} · p90 {} · p99 {} · p99.9 {} · max {}",
            micros(lat.p50),
            micros(lat.p90),
            micros(lat.p99),
            micros(lat.p999),
            micros(lat.max)
        ),
    )?;
    let st = &load.latency.service_time;
    row(
        out,
        "service time (uncorrected)",
        &format!(
            "p50 {} · p99 {} · p99.9 {}",
            micros(st.p50),
            micros(st.p99),
            micros(st.p999)
        ),
    )?;
    row(
        out,
        "in flight",
        &format!(
            "peak {} of {} allowed · mean {:.2} (Little's law: achieved rate × mean service time)",
            load.peak_in_flight, load.max_in_flight, load.mean_in_flight
        ),
    )?;
    row(
        out,
        "late sends",
        &format!(
            "{}{}",
            format_count(load.late_sends),
            match (&load.limited_by, &load.limited_because) {
                (Some(by), Some(why)) => format!(
                    " · limited by the <strong>{}</strong>: {}",
                    esc(by),
                    esc(why)
                ),
                _ => String::new(),
            }
        ),
    )?;
    if let Some(n) = load.cold_starts {
        row(out, "cold starts", &format_count(n))?;
    }
    if let Some(q) = &load.latency.queue_wait {
        row(
            out,
            "queue wait (free instance)",
            &format!(
                "p50 {} · p99 {} · max {} — part of response and service time, never of the timeout",
                micros(q.p50),
                micros(q.p99),
                micros(q.max)
            ),
        )?;
    }
    if load.throttles > 0 {
        row(
            out,
            "throttled",
            &format!(
                "{} calls (429 TooManyRequestsException: every instance busy; not invocations, not errors)",
                format_count(load.throttles)
            ),
        )?;
    }
    row(
        out,
        "throughput",
        &format!(
            "{:.1} records/s · {:.0} bytes/s in · {:.0} bytes/s out — bytes count the {}",
            load.records_per_second,
            load.bytes_in_per_second,
            load.bytes_out_per_second,
            crate::BYTE_RATE_BASIS
        ),
    )?;
    row(out, "events", &esc(&load.events))?;
    write!(out, "</table>")?;
    if let Some(f) = &load.firehose_model {
        write!(
            out,
            "<h2>Firehose model</h2><p class=\"firehose-model\">{}</p><p class=\"firehose-verdict\"><strong>{}</strong></p>",
            esc(&f.description),
            esc(&f.verdict)
        )?;
    }
    Ok(())
}

pub fn write(report: &Report, out: &mut impl Write) -> std::io::Result<()> {
    let (class, verdict) = match report.verdict {
        Verdict::Pass => ("pass", "PASS"),
        Verdict::Fail => ("fail", "FAIL"),
    };
    write!(
        out,
        "<!doctype html><html><head><meta charset=\"utf-8\"><title>firehose-harness {cmd}: {verdict}</title><style>{STYLE}</style></head><body>",
        cmd = esc(&report.command)
    )?;
    write!(
        out,
        "<h1>firehose-harness {} · <span class=\"{class}\">{verdict}</span> (exit {})</h1>",
        esc(&report.command),
        report.exit_code
    )?;
    write!(
        out,
        "<table><tr><th>target</th><td><code>{}</code></td></tr>",
        esc(&report.target)
    )?;
    if let Some(seed) = &report.seed {
        write!(
            out,
            "<tr><th>seed</th><td><code>{}</code></td></tr>",
            esc(seed)
        )?;
    }
    write!(
        out,
        "<tr><th>started</th><td>{}</td></tr><tr><th>duration</th><td>{:.1} s</td></tr>",
        esc(&report.started_at),
        report.duration_ms as f64 / 1000.0
    )?;
    if let Some(g) = &report.generator {
        write!(
            out,
            "<tr><th>generators</th><td><code>{}</code></td></tr>",
            esc(g)
        )?;
    }
    if let Some(why) = &report.stopped_early {
        write!(out, "<tr><th>stopped early</th><td>{}</td></tr>", esc(why))?;
    }
    let r = &report.records;
    write!(
        out,
        "<tr><th>records</th><td>{} sent · {} Ok · {} Dropped · {} ProcessingFailed</td></tr></table>",
        r.sent, r.ok, r.dropped, r.processing_failed
    )?;
    if let Some(load) = &report.load {
        load_section(load, out)?;
    }
    if !report.phases.is_empty() {
        write!(
            out,
            "<h2>Phases</h2><table><tr><th>phase</th><th>planned</th><th>run</th><th>failed</th></tr>"
        )?;
        for p in &report.phases {
            write!(
                out,
                "<tr><td>{}</td><td>{}</td><td>{}</td><td>{}</td></tr>",
                esc(&p.phase),
                p.planned,
                p.run,
                p.failed
            )?;
        }
        write!(out, "</table>")?;
    }
    write!(
        out,
        "<h2>Checks</h2><table><tr><th>check</th><th>code</th><th>status</th><th>violations</th><th>guards</th></tr>"
    )?;
    for c in &report.checks {
        let status = c.status.label();
        let cls = match c.status {
            CheckStatus::Skipped => "",
            other => other.as_str(),
        };
        write!(
            out,
            "<tr><td><code>{}</code></td><td><code>{}</code></td><td class=\"{cls}\">{status}</td><td>{}</td><td>{}</td></tr>",
            esc(&c.id),
            esc(&c.code),
            c.violations,
            esc(&c.summary)
        )?;
    }
    write!(out, "</table>")?;
    if !report.failures.is_empty() {
        write!(out, "<h2>Failures</h2>")?;
        for f in &report.failures {
            write!(
                out,
                "<h3><code>{}</code> ({}) — {}{}</h3><p>{}</p>",
                esc(&f.check),
                esc(&f.code),
                f.tally(),
                if f.flaky { " · flaky" } else { "" },
                esc(&f.message)
            )?;
            if let Some(m) = &f.original_message {
                write!(out, "<p>first seen as: {}</p>", esc(m))?;
            }
            if let Some(b) = &f.minimal_batch {
                write!(out, "<p>minimal batch: {}</p>", esc(b))?;
            }
            if !f.depends_on.is_empty() {
                let deps: Vec<String> = f
                    .depends_on
                    .iter()
                    .map(|d| format!("{} (<code>{}</code>)", esc(&d.dimension), esc(&d.flag)))
                    .collect();
                write!(out, "<p>depends on: {}</p>", deps.join(", "))?;
            }
            if let Some(case) = &f.case {
                write!(
                    out,
                    "<p>case folder: <a href=\"cases/{0}/\"><code>cases/{0}/</code></a> — <code>sh cases/{0}/reproduce.sh</code></p>",
                    esc(case)
                )?;
            }
        }
    }
    if let Some(d) = &report.delivery {
        write!(
            out,
            "<h2>Where the records went</h2><ul><li><a href=\"{0}\"><code>{0}</code></a> — {1} records, {2} bytes in {3} objects</li><li><a href=\"{4}\"><code>{4}</code></a> — {5} records</li><li><a href=\"{6}\"><code>{6}</code></a> — {7} records Dropped</li></ul>",
            esc(&d.delivered_dir),
            d.delivered_records,
            d.delivered_bytes,
            d.objects,
            esc(&d.processing_failed_dir),
            d.failed_records,
            esc(&d.dropped_file),
            d.dropped_records,
        )?;
    }
    let mut charts: Vec<(&str, &LatencySummary)> = Vec::new();
    if let Some(load) = &report.load {
        charts.push(("response time (corrected)", &load.latency.response_time));
        charts.push(("service time (uncorrected)", &load.latency.service_time));
        if let Some(q) = &load.latency.queue_wait {
            charts.push(("queue wait (free instance)", q));
        }
    } else if let Some(l) = &report.latency {
        charts.push(("invocation time", l));
    }
    if let Some(svg) = percentile_chart(&charts) {
        write!(out, "<h2>Latency by percentile</h2>{svg}")?;
        if let Some(load) = &report.load {
            write!(out, "<p>{}</p>", esc(&load.latency_explanation()))?;
        }
    }
    if let Some(load) = &report.load {
        let per_second = |f: &dyn Fn(&crate::Interval) -> f64| -> Vec<(f64, f64)> {
            load.intervals
                .iter()
                .map(|i| (i.second as f64, f(i)))
                .collect()
        };
        let mut rate = vec![(
            "achieved (invocations completed)",
            per_second(&|i| i.invocations as f64),
        )];
        if load.intervals.iter().any(|i| i.planned.is_some()) {
            rate.push(("planned", per_second(&|i| i.planned.unwrap_or(0.0))));
        }
        if let Some(svg) = time_chart(
            "throughput: achieved against planned",
            "invocations per second",
            &rate,
        ) {
            write!(out, "<h2>Over time</h2>{svg}")?;
        }
        if let Some(svg) = time_chart(
            "response time per second (corrected, from when each invocation was due)",
            "milliseconds",
            &[
                ("p50", per_second(&|i| i.p50 as f64 / 1000.0)),
                ("p99", per_second(&|i| i.p99 as f64 / 1000.0)),
            ],
        ) {
            write!(out, "{svg}")?;
        }
    }
    for note in &report.notes {
        write!(out, "<p class=\"note\">{}</p>", esc(note))?;
    }
    write!(
        out,
        "<p><small>{} {} · report schema {}</small></p></body></html>",
        esc(&report.tool.name),
        esc(&report.tool.version),
        report.schema_version
    )?;
    Ok(())
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::histogram::new_latency_histogram;

    #[test]
    fn escapes_and_plots() {
        let mut r = Report::new("check", "http://x/<script>");
        let mut h = new_latency_histogram();
        for v in 1..1000u64 {
            h.record(v * 10).unwrap();
        }
        r.latency = Some(LatencySummary::from_histogram(&h));
        let mut out = Vec::new();
        write(&r, &mut out).unwrap();
        let html = String::from_utf8(out).unwrap();
        assert!(html.contains("http://x/&lt;script&gt;"));
        assert!(!html.contains("<script>"));
        assert!(html.contains("<svg"));
    }
}
