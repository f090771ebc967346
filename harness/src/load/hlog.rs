//! The per-second histograms as an HdrHistogram interval log (`latency.hlog`), written with
//! hdrhistogram's own `IntervalLogWriter` so HdrHistogram's tools (`HistogramLogProcessor`,
//! HdrHistogramVisualizer, `hdr-plot`) read it.
//!
//! Values are microseconds. Untagged lines are the corrected response time (what the tools plot by
//! default); lines tagged `service_time` are the uncorrected figures. Each histogram is V2 + DEFLATE,
//! as the Java `HistogramLogWriter` writes them.
//!
//! The log is written by its own thread from a bounded channel, so file I/O never stalls the
//! collector and a long run holds one second's histograms in memory, not the whole log.

use std::fs::File;
use std::io::{BufWriter, Write};
use std::path::{Path, PathBuf};
use std::sync::mpsc::{Receiver, SyncSender, sync_channel};
use std::thread::JoinHandle;
use std::time::{Duration, SystemTime};

use hdrhistogram::Histogram;
use hdrhistogram::serialization::V2DeflateSerializer;
use hdrhistogram::serialization::interval_log::{IntervalLogWriterBuilder, Tag};

/// The file name inside `--report-dir`.
pub const FILE_NAME: &str = "latency.hlog";

/// One second for the log.
pub struct HlogEntry {
    /// From the measured start.
    pub start: Duration,
    pub length: Duration,
    pub response_time: Histogram<u64>,
    pub service_time: Histogram<u64>,
}

/// The writer thread's handle. Dropping the sender ends the log; [`HlogWriter::finish`] waits for it.
pub struct HlogWriter {
    tx: Option<SyncSender<HlogEntry>>,
    thread: Option<JoinHandle<Result<(), String>>>,
    path: PathBuf,
}

impl HlogWriter {
    /// Create `path` and start the writer. `start` is the wall-clock time of the measured start.
    pub fn create(path: &Path, start: SystemTime, target: &str) -> Result<HlogWriter, String> {
        let file =
            File::create(path).map_err(|e| format!("cannot create {}: {e}", path.display()))?;
        let (tx, rx) = sync_channel::<HlogEntry>(64);
        let comment = format!(
            "firehose-harness {} load against {target}; values in microseconds; untagged = response time (corrected), Tag=service_time = service time (uncorrected)",
            env!("CARGO_PKG_VERSION")
        );
        let thread = std::thread::Builder::new()
            .name("hlog-writer".into())
            .spawn(move || write_log(file, rx, start, &comment))
            .map_err(|e| format!("cannot start the interval-log writer: {e}"))?;
        Ok(HlogWriter {
            tx: Some(tx),
            thread: Some(thread),
            path: path.to_path_buf(),
        })
    }

    /// Queue one second. Blocks only if the writer is 64 seconds behind.
    pub fn write(&self, entry: HlogEntry) {
        if let Some(tx) = &self.tx {
            // A writer that died has already reported its error through `finish`.
            let _ = tx.send(entry);
        }
    }

    /// Flush and close the log.
    pub fn finish(mut self) -> Result<PathBuf, String> {
        self.tx.take();
        match self.thread.take().map(JoinHandle::join) {
            Some(Ok(Ok(()))) | None => Ok(self.path.clone()),
            Some(Ok(Err(e))) => Err(format!("{}: {e}", self.path.display())),
            Some(Err(_)) => Err(format!(
                "{}: the writer thread panicked",
                self.path.display()
            )),
        }
    }
}

fn write_log(
    file: File,
    rx: Receiver<HlogEntry>,
    start: SystemTime,
    comment: &str,
) -> Result<(), String> {
    let mut out = BufWriter::new(file);
    let mut serializer = V2DeflateSerializer::new();
    {
        let mut log = IntervalLogWriterBuilder::new()
            .add_comment(comment)
            .add_comment("[Histogram log format version 1.3]")
            .with_start_time(start)
            .with_base_time(start)
            .begin_log_with(&mut out, &mut serializer)
            .map_err(|e| e.to_string())?;
        let service = Tag::new("service_time");
        for e in rx {
            log.write_histogram(&e.response_time, e.start, e.length, None)
                .map_err(|e| e.to_string())?;
            log.write_histogram(&e.service_time, e.start, e.length, service)
                .map_err(|e| e.to_string())?;
        }
    }
    out.flush().map_err(|e| e.to_string())
}

#[cfg(test)]
mod tests {
    use super::*;
    use hdrhistogram::serialization::interval_log::{IntervalLogIterator, LogEntry};

    #[test]
    fn writes_a_log_hdrhistogram_reads_back() {
        let dir = tempfile::tempdir().unwrap();
        let path = dir.path().join(FILE_NAME);
        let w = HlogWriter::create(&path, SystemTime::now(), "builtin:ndjson").unwrap();
        for second in 0..3u64 {
            let mut r = firehose_reports::histogram::new_latency_histogram();
            let mut s = firehose_reports::histogram::new_latency_histogram();
            r.record(1000 * (second + 1)).unwrap();
            s.record(500).unwrap();
            w.write(HlogEntry {
                start: Duration::from_secs(second),
                length: Duration::from_secs(1),
                response_time: r,
                service_time: s,
            });
        }
        w.finish().unwrap();
        let text = std::fs::read(&path).unwrap();
        let intervals: Vec<_> = IntervalLogIterator::new(&text)
            .filter_map(|e| match e.unwrap() {
                LogEntry::Interval(i) => Some(i),
                _ => None,
            })
            .collect();
        assert_eq!(intervals.len(), 6);
        assert!(intervals[0].tag().is_none());
        assert_eq!(intervals[1].tag().map(|t| t.as_str()), Some("service_time"));
        assert_eq!(intervals[4].start_timestamp(), Duration::from_secs(2));
        let decoded: Histogram<u64> = hdrhistogram::serialization::Deserializer::new()
            .deserialize(&mut &base64_decode(intervals[4].encoded_histogram())[..])
            .unwrap();
        assert_eq!(decoded.max(), decoded.highest_equivalent(3000));
    }

    fn base64_decode(s: &str) -> Vec<u8> {
        use base64::Engine as _;
        base64::engine::general_purpose::STANDARD.decode(s).unwrap()
    }
}
