//! The format-neutral report of a firehose-harness run, and its renderers.
//!
//! - [`model`] — [`Report`]: verdict, checks, grouped failures, latency, load figures. Versioned
//!   ([`SCHEMA_VERSION`]); `report.json` is this struct serialised.
//! - [`histogram`] — [`LatencySummary`]: HDR percentiles plus the serialised histogram, so reports from
//!   several machines merge exactly instead of averaging percentiles.
//! - [`json`], [`junit`], [`markdown`], [`html`] — one renderer per file, each writing to any
//!   `impl Write`.
//! - [`merge`] — the sums of combining shards' reports: counts, histograms, worst statuses.
//! - [`schema`] — `report.json`'s JSON Schema, generated from the model and shipped as
//!   `reports/report.schema.json`.
//! - [`write_all`] — the four files of `--report-dir` at once.
//!
//! ```
//! use firehose_reports::{Report, Verdict};
//! let mut report = Report::new("check", "builtin:ndjson");
//! report.verdict = Verdict::Pass;
//! let mut json = Vec::new();
//! firehose_reports::json::write(&report, &mut json).unwrap();
//! assert!(String::from_utf8(json).unwrap().contains("\"verdict\": \"pass\""));
//! ```

pub mod histogram;
pub mod html;
pub mod json;
pub mod junit;
pub mod markdown;
pub mod merge;
pub mod model;
pub mod schema;
pub mod text;

use std::path::Path;

pub use histogram::{HistogramError, LatencySummary};
pub use model::*;

/// Write `report.json`, `junit.xml`, `summary.md` and `report.html` into `dir` (created if needed).
pub fn write_all(report: &Report, dir: &Path) -> std::io::Result<()> {
    std::fs::create_dir_all(dir)?;
    let write = |name: &str, f: &dyn Fn(&mut Vec<u8>) -> std::io::Result<()>| {
        let mut buf = Vec::new();
        f(&mut buf)?;
        // Write then rename, so an interrupted run never leaves half a report.
        let tmp = dir.join(format!(".{name}.tmp"));
        std::fs::write(&tmp, &buf)?;
        std::fs::rename(&tmp, dir.join(name))
    };
    write("report.json", &|b| json::write(report, b))?;
    write("junit.xml", &|b| junit::write(report, b))?;
    write("summary.md", &|b| markdown::write(report, b))?;
    write("report.html", &|b| html::write(report, b))?;
    Ok(())
}
