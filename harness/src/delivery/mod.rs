//! "I returned my record — where did it go?": what Firehose would deliver from the answers a run got.
//!
//! - [`settle`] — pure: one judged invocation `(event, invocation, verdict)` → [`Settlement`]: the
//!   `Ok` data per S3 prefix, the records Firehose would write to `processing-failed/` (in its own
//!   JSON format, original data and error code), and the `Dropped` ids.
//! - [`DeliveryLog`] — collects settlements from a whole run (shared by the check loop and the load
//!   workers, hence `&self`), keeps at most [`DEFAULT_CAP`] bytes, and writes them out once at the
//!   end with [`DeliveryLog::finish`]:
//!
//! ```text
//! REPORT_DIR/delivered/[PREFIX]batch-000001      decoded Ok data, as one S3 object per batch
//! REPORT_DIR/processing-failed/batch-000001      one Firehose error object per line
//! REPORT_DIR/dropped.json                        [{"batch":1,"recordId":"…"}, …]
//! ```
//!
//! Batch numbers count judged invocations in run order (for `check`: regressions, boundary, corpus,
//! random). Shrinking attempts and `deterministic`'s second call are not deliveries and not counted.

mod prefix;
mod settle;

use std::collections::BTreeMap;
use std::path::{Component, Path, PathBuf};
use std::sync::Mutex;
use std::sync::atomic::{AtomicBool, Ordering};
use std::time::SystemTime;

pub use prefix::{MissingKey, PrefixError, S3Prefix};
pub use settle::{DEFAULT_RETRIES, FailedRecord, Settings, Settlement, settle};

use crate::contract::Verdict;
use crate::invocation::Invocation;
use firehose_reports::DeliverySection;

/// The most bytes one run keeps (delivered data, error records and dropped ids together).
pub const DEFAULT_CAP: u64 = 64 * 1024 * 1024;

/// Settlements of a run, in memory up to a cap, written out at the end.
#[derive(Debug)]
pub struct DeliveryLog {
    settings: Settings,
    cap: u64,
    /// Set once the cap is reached: later batches are not even settled.
    full: AtomicBool,
    state: Mutex<State>,
}

#[derive(Debug, Default)]
struct State {
    batches: u64,
    kept: Vec<(u64, Settlement)>,
    bytes: u64,
    skipped_batches: u64,
    unreadable: u64,
}

impl DeliveryLog {
    pub fn new(settings: Settings) -> DeliveryLog {
        DeliveryLog::with_cap(settings, DEFAULT_CAP)
    }

    pub fn with_cap(settings: Settings, cap: u64) -> DeliveryLog {
        DeliveryLog {
            settings,
            cap,
            full: AtomicBool::new(false),
            state: Mutex::new(State::default()),
        }
    }

    fn state(&self) -> std::sync::MutexGuard<'_, State> {
        // A panic elsewhere while holding the lock leaves counters that are still meaningful.
        self.state.lock().unwrap_or_else(|e| e.into_inner())
    }

    /// One judged invocation. Settling runs outside the lock, so load workers do not queue on it.
    pub fn observe(&self, event: &[u8], inv: &Invocation, verdict: &Verdict) {
        if self.full.load(Ordering::Relaxed) {
            self.state().skipped_batches += 1;
            return;
        }
        let now_ms = SystemTime::now()
            .duration_since(SystemTime::UNIX_EPOCH)
            .map_or(0, |d| d.as_millis() as u64);
        let s = settle(event, inv, verdict, &self.settings, now_ms);
        let mut state = self.state();
        if s.unreadable {
            state.unreadable += 1;
            return;
        }
        let size = s.size();
        if state.bytes + size > self.cap {
            self.full.store(true, Ordering::Relaxed);
            state.skipped_batches += 1;
            return;
        }
        state.bytes += size;
        state.batches += 1;
        let n = state.batches;
        state.kept.push((n, s));
    }

    /// Write `delivered/`, `processing-failed/` and `dropped.json` under `dir` and describe them.
    pub fn finish(&self, dir: &Path) -> std::io::Result<DeliverySection> {
        let state = self.state();
        let delivered = dir.join("delivered");
        let failed_dir = dir.join("processing-failed");
        std::fs::create_dir_all(&delivered)?;
        std::fs::create_dir_all(&failed_dir)?;
        let mut section = DeliverySection {
            delivered_dir: "delivered/".into(),
            processing_failed_dir: "processing-failed/".into(),
            dropped_file: "dropped.json".into(),
            s3_prefix: self.settings.s3_prefix.as_ref().map(|p| p.as_str().into()),
            batches: state.batches,
            cap_bytes: self.cap,
            truncated: state.skipped_batches > 0,
            ..DeliverySection::default()
        };
        let mut dropped = Vec::new();
        let mut codes: BTreeMap<String, u64> = BTreeMap::new();
        let mut prefixes = std::collections::BTreeSet::new();
        for (n, s) in &state.kept {
            let name = format!("batch-{n:06}");
            for (prefix, bytes) in &s.objects {
                let path = delivered.join(object_path(&format!("{prefix}{name}")));
                if let Some(parent) = path.parent() {
                    std::fs::create_dir_all(parent)?;
                }
                std::fs::write(&path, bytes)?;
                section.objects += 1;
                section.delivered_bytes += bytes.len() as u64;
                prefixes.insert(prefix.clone());
            }
            section.delivered_records += s.ok_records;
            section.undelimited_records += s.undelimited;
            if !s.failed.is_empty() {
                let mut lines = Vec::new();
                for f in &s.failed {
                    serde_json::to_writer(&mut lines, f)?;
                    lines.push(b'\n');
                    *codes.entry(f.error_code.clone()).or_default() += 1;
                }
                std::fs::write(failed_dir.join(&name), lines)?;
                section.failed_records += s.failed.len() as u64;
            }
            if s.batch_failure.is_some() {
                section.failed_batches += 1;
            }
            for id in &s.dropped {
                dropped.push(serde_json::json!({"batch": n, "recordId": id}));
            }
        }
        section.dropped_records = dropped.len() as u64;
        // A JSON array, one entry per line: ids can hold any character, even a newline.
        let lines = dropped
            .iter()
            .map(serde_json::to_string)
            .collect::<Result<Vec<_>, _>>()?;
        let text = if lines.is_empty() {
            "[]\n".to_string()
        } else {
            format!("[\n{}\n]\n", lines.join(",\n"))
        };
        std::fs::write(dir.join("dropped.json"), text)?;
        section.error_codes = codes;
        section.prefixes = prefixes.into_iter().filter(|p| !p.is_empty()).collect();
        section.notes = self.notes(&state, &section);
        Ok(section)
    }

    fn notes(&self, state: &State, section: &DeliverySection) -> Vec<String> {
        let mut notes = Vec::new();
        if section.undelimited_records > 0 {
            notes.push(format!(
                "{} of {} delivered records do not end in a newline: Firehose adds no delimiter, so in delivered/ they run into the next record",
                section.undelimited_records, section.delivered_records
            ));
        }
        if section.failed_batches > 0 {
            notes.push(format!(
                "{} batches failed as a whole; their records are in processing-failed/ with attemptsMade {} (1 + NumberOfRetries {}). FIREHOSE_CONTRACT.md documents these retries for function errors, timeouts and throttling only: for the other codes the count and Firehose's exact handling are unconfirmed, and the harness's verdict is used",
                section.failed_batches,
                1 + self.settings.retries,
                self.settings.retries
            ));
        }
        if state.skipped_batches > 0 {
            notes.push(format!(
                "delivery output stopped at the {} MiB cap: {} later batches are not in delivered/ or processing-failed/",
                self.cap / (1024 * 1024),
                state.skipped_batches
            ));
        }
        if state.unreadable > 0 {
            notes.push(format!(
                "{} events could not be read as Firehose events (raw corpus files) and are left out of delivered/",
                state.unreadable
            ));
        }
        notes.push(
            "timestamps in processing-failed/ are the harness's clock; lambdaARN is made from the event's region and account; a timeout is filed under Lambda.FunctionError, as Lambda reports a timed-out function".into(),
        );
        notes
    }
}

/// An S3 key as a relative path that cannot leave `delivered/`: `.` and `..` are escaped, empty
/// segments dropped (S3 keys may hold both; a file system may not).
fn object_path(key: &str) -> PathBuf {
    key.split('/')
        .filter(|s| !s.is_empty())
        .map(|s| match s {
            "." => "%2E".to_string(),
            ".." => "%2E%2E".to_string(),
            s => s.replace('\0', "%00"),
        })
        .filter(|s| matches!(Path::new(s).components().next(), Some(Component::Normal(_))))
        .collect()
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn object_paths_stay_inside() {
        assert_eq!(
            object_path("a/../b//c/batch-1"),
            PathBuf::from("a/%2E%2E/b/c/batch-1")
        );
        assert_eq!(object_path("/etc/passwd"), PathBuf::from("etc/passwd"));
    }
}
