//! "I returned my record — where did it go?": what Firehose would deliver from the answers a run got.
//!
//! - [`settle`] — pure: one judged invocation `(event, invocation, verdict)` → [`Settlement`]: the
//!   `Ok` data per S3 prefix, the records Firehose would write to `processing-failed/` (in its own
//!   JSON format, original data and error code), and the `Dropped` ids.
//! - [`DeliveryLog`] — takes the settlements of a whole run (shared by the check loop and the load
//!   workers, hence `&self`) and writes each batch's files as it comes, up to [`DEFAULT_CAP`] bytes
//!   (memory stays flat, and a killed run keeps what it wrote); [`DeliveryLog::finish`] writes the
//!   dropped ids and describes it all for the report:
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

use std::collections::BTreeSet;
use std::path::{Component, Path, PathBuf};
use std::sync::Mutex;
use std::sync::atomic::{AtomicBool, Ordering};
use std::time::SystemTime;

pub use prefix::S3Prefix;
pub use settle::{Settings, Settlement, settle};

use crate::contract::Verdict;
use crate::invocation::Invocation;
use firehose_reports::DeliverySection;

/// The most bytes one run writes (delivered data, error records and dropped ids together).
pub const DEFAULT_CAP: u64 = 64 * 1024 * 1024;

const DELIVERED: &str = "delivered";
const PROCESSING_FAILED: &str = "processing-failed";
const DROPPED: &str = "dropped.json";

/// Settlements of a run, written to files as they come (up to a cap), described at the end.
#[derive(Debug)]
pub struct DeliveryLog {
    settings: Settings,
    cap: u64,
    dir: PathBuf,
    /// Set once the cap is reached (or a write failed): later batches are not even settled.
    full: AtomicBool,
    state: Mutex<State>,
}

#[derive(Debug, Default)]
struct State {
    /// Counters and file locations so far; finished by [`DeliveryLog::finish`].
    section: DeliverySection,
    bytes: u64,
    /// Dropped ids (counted toward the cap), written as one file at the end.
    dropped: Vec<(u64, String)>,
    prefixes: BTreeSet<String>,
    skipped_batches: u64,
    unreadable: u64,
    write_error: Option<String>,
}

impl DeliveryLog {
    /// A log writing under `dir` (created with `delivered/` and `processing-failed/`).
    pub fn create(settings: Settings, dir: &Path) -> std::io::Result<DeliveryLog> {
        DeliveryLog::with_cap(settings, dir, DEFAULT_CAP)
    }

    pub fn with_cap(settings: Settings, dir: &Path, cap: u64) -> std::io::Result<DeliveryLog> {
        std::fs::create_dir_all(dir.join(DELIVERED))?;
        std::fs::create_dir_all(dir.join(PROCESSING_FAILED))?;
        Ok(DeliveryLog {
            settings,
            cap,
            dir: dir.to_path_buf(),
            full: AtomicBool::new(false),
            state: Mutex::new(State::default()),
        })
    }

    fn state(&self) -> std::sync::MutexGuard<'_, State> {
        // A panic elsewhere while holding the lock leaves counters that are still meaningful.
        self.state.lock().unwrap_or_else(|e| e.into_inner())
    }

    /// One judged invocation. Settling runs outside the lock, so load workers do not queue on it;
    /// a batch is written whole or not at all.
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
        let n = state.section.batches + 1;
        if let Err(e) = self.write(n, &s, &mut state) {
            self.full.store(true, Ordering::Relaxed);
            state.write_error = Some(e.to_string());
            return;
        }
        state.bytes += size;
        state.section.batches = n;
    }

    /// Batch `n`'s files, and its counts.
    fn write(&self, n: u64, s: &Settlement, state: &mut State) -> std::io::Result<()> {
        let name = format!("batch-{n:06}");
        for (prefix, bytes) in &s.objects {
            let path = self
                .dir
                .join(DELIVERED)
                .join(object_path(&format!("{prefix}{name}")));
            if let Some(parent) = path.parent() {
                std::fs::create_dir_all(parent)?;
            }
            std::fs::write(&path, bytes)?;
        }
        if !s.failed.is_empty() {
            let mut lines = Vec::new();
            for f in &s.failed {
                serde_json::to_writer(&mut lines, f)?;
                lines.push(b'\n');
            }
            std::fs::write(self.dir.join(PROCESSING_FAILED).join(&name), lines)?;
        }
        let section = &mut state.section;
        for (prefix, bytes) in &s.objects {
            section.objects += 1;
            section.delivered_bytes += bytes.len() as u64;
            state.prefixes.insert(prefix.clone());
        }
        section.delivered_records += s.ok_records;
        section.undelimited_records += s.undelimited;
        section.failed_records += s.failed.len() as u64;
        for f in &s.failed {
            *section.error_codes.entry(f.error_code.clone()).or_default() += 1;
        }
        if s.batch_failure.is_some() {
            section.failed_batches += 1;
        }
        state
            .dropped
            .extend(s.dropped.iter().map(|id| (n, id.clone())));
        Ok(())
    }

    /// Write `dropped.json` and describe what was written (paths relative to the log's dir).
    pub fn finish(&self) -> std::io::Result<DeliverySection> {
        let state = self.state();
        // A JSON array, one entry per line: ids can hold any character, even a newline.
        let lines = state
            .dropped
            .iter()
            .map(|(n, id)| serde_json::to_string(&serde_json::json!({"batch": n, "recordId": id})))
            .collect::<Result<Vec<_>, _>>()?;
        let text = if lines.is_empty() {
            "[]\n".to_string()
        } else {
            format!("[\n{}\n]\n", lines.join(",\n"))
        };
        std::fs::write(self.dir.join(DROPPED), text)?;
        let mut section = DeliverySection {
            delivered_dir: format!("{DELIVERED}/"),
            processing_failed_dir: format!("{PROCESSING_FAILED}/"),
            dropped_file: DROPPED.into(),
            s3_prefix: self.settings.s3_prefix.as_ref().map(|p| p.as_str().into()),
            cap_bytes: self.cap,
            truncated: state.skipped_batches > 0 || state.write_error.is_some(),
            dropped_records: state.dropped.len() as u64,
            prefixes: state
                .prefixes
                .iter()
                .filter(|p| !p.is_empty())
                .cloned()
                .collect(),
            ..state.section.clone()
        };
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
        if let Some(e) = &state.write_error {
            notes.push(format!(
                "delivery output stopped: a file could not be written under {}: {e}",
                self.dir.display()
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
    fn the_cap_keeps_whole_batches_and_says_how_many_were_left_out() {
        use crate::contract::{self, CheckSet};
        use firehose_generators::wire::EventView;
        let event = br#"{"region":"eu-west-1","records":[{"recordId":"a","approximateArrivalTimestamp":1,"data":"YWFhYQ=="}]}"#;
        let inv = Invocation::answered(
            Some(200),
            bytes::Bytes::from_static(
                br#"{"records":[{"recordId":"a","result":"Ok","data":"YWFhYQ=="}]}"#,
            ),
            std::time::Duration::ZERO,
        );
        let verdict = contract::check(
            &EventView::parse(event).unwrap(),
            &inv,
            &CheckSet::default(),
        );
        let dir = tempfile::tempdir().unwrap();
        // Room for two 4-byte batches, not three.
        let log = DeliveryLog::with_cap(Settings::default(), dir.path(), 10).unwrap();
        for _ in 0..4 {
            log.observe(event, &inv, &verdict);
        }
        let section = log.finish().unwrap();
        assert_eq!((section.batches, section.delivered_bytes), (2, 8));
        assert!(section.truncated);
        assert!(
            section.notes.iter().any(|n| n.contains("2 later batches")),
            "{:?}",
            section.notes
        );
        assert_eq!(
            std::fs::read(dir.path().join("delivered/batch-000002")).unwrap(),
            b"aaaa"
        );
        assert!(!dir.path().join("delivered/batch-000003").exists());
        assert_eq!(
            section
                .notes
                .iter()
                .filter(|n| n.contains("newline"))
                .count(),
            1
        );
    }

    #[test]
    fn object_paths_stay_inside() {
        assert_eq!(
            object_path("a/../b//c/batch-1"),
            PathBuf::from("a/%2E%2E/b/c/batch-1")
        );
        assert_eq!(object_path("/etc/passwd"), PathBuf::from("etc/passwd"));
    }
}
