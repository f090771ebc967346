//! Aggregates that merge: HDR histograms (response time, service time, lag, and queue wait where the
//! target reports it) and a handful of counters, for the whole run and for each second of it. Nothing here grows with the number of invocations.
//!
//! - [`Sample`] — one finished invocation's figures: every timestamp, from the intended send on.
//! - [`LoadStats`] — the sum of samples (shards merge later, as reports: `firehose_reports::merge`).
//! - [`Intervals`] — per-second [`IntervalStats`], closed a little after each second ends so stragglers
//!   still land in their own second; closed seconds leave as rows (and, through [`crate::load::hlog`],
//!   as interval-log lines).

use std::collections::{BTreeMap, VecDeque};
use std::time::Duration;

use firehose_reports::histogram::new_latency_histogram;
use hdrhistogram::Histogram;

use crate::contract::{CheckId, RecordResults};

/// A send counts as late when it left more than this after its due time: tokio's timer has a
/// millisecond grain, so smaller slips are the clock, not the target.
pub const LATE_TOLERANCE: Duration = Duration::from_millis(2);

/// One finished invocation, as the collector sees it. Times are from the start of the run.
#[derive(Debug, Clone, Default)]
pub struct Sample {
    pub intended: Duration,
    pub sent: Duration,
    pub done: Duration,
    /// A function error or a timeout: counts toward `error_rate`.
    pub errored: bool,
    /// Some contract check other than `invocation_succeeded`/`within_timeout` failed.
    pub violated: bool,
    pub records: u64,
    pub bytes_in: u64,
    pub bytes_out: u64,
    /// Time spent waiting for a free instance before the function got the event (`exec:`): part
    /// of the response and service times, shown apart so a queue is not mistaken for a slow
    /// function.
    pub queue_wait: Option<Duration>,
}

impl Sample {
    pub fn response_time(&self) -> Duration {
        self.done.saturating_sub(self.intended)
    }

    pub fn service_time(&self) -> Duration {
        self.done.saturating_sub(self.sent)
    }

    pub fn lag(&self) -> Duration {
        self.sent.saturating_sub(self.intended)
    }

    pub fn late(&self) -> bool {
        self.lag() > LATE_TOLERANCE
    }
}

fn micros(d: Duration) -> u64 {
    // A histogram's lowest trackable value is 1 µs.
    (d.as_micros() as u64).max(1)
}

/// Everything a load run measured.
#[derive(Debug, Clone)]
pub struct LoadStats {
    /// From the intended send to the end of the answer (corrected for coordinated omission), µs.
    pub response_time: Histogram<u64>,
    /// From the actual send to the end of the answer (what closed-loop tools report), µs.
    pub service_time: Histogram<u64>,
    /// Actual minus intended send, µs.
    pub lag: Histogram<u64>,
    /// Waiting for a free instance, µs; empty when the target does not report it.
    pub queue_wait: Histogram<u64>,
    pub invocations: u64,
    /// Calls refused for lack of concurrency (429): not invocations, not errors, counted apart.
    pub throttles: u64,
    pub late_sends: u64,
    pub errors: u64,
    /// Invocations with at least one contract violation.
    pub violations: u64,
    /// Violations per check (records or invocations, as the oracle counts them).
    pub check_counts: BTreeMap<CheckId, u64>,
    pub records: u64,
    pub bytes_in: u64,
    pub bytes_out: u64,
    pub results: RecordResults,
}

impl Default for LoadStats {
    fn default() -> Self {
        LoadStats {
            response_time: new_latency_histogram(),
            service_time: new_latency_histogram(),
            lag: new_latency_histogram(),
            queue_wait: new_latency_histogram(),
            invocations: 0,
            throttles: 0,
            late_sends: 0,
            errors: 0,
            violations: 0,
            check_counts: BTreeMap::new(),
            records: 0,
            bytes_in: 0,
            bytes_out: 0,
            results: RecordResults::default(),
        }
    }
}

impl LoadStats {
    pub fn record(&mut self, s: &Sample) {
        // Auto-resizing histograms cannot refuse a value.
        let _ = self.response_time.record(micros(s.response_time()));
        let _ = self.service_time.record(micros(s.service_time()));
        let _ = self.lag.record(micros(s.lag()));
        if let Some(wait) = s.queue_wait {
            let _ = self.queue_wait.record(micros(wait));
        }
        self.invocations += 1;
        self.late_sends += u64::from(s.late());
        self.errors += u64::from(s.errored);
        self.violations += u64::from(s.violated);
        self.records += s.records;
        self.bytes_in += s.bytes_in;
        self.bytes_out += s.bytes_out;
    }

    pub fn error_rate(&self) -> f64 {
        if self.invocations == 0 {
            0.0
        } else {
            self.errors as f64 / self.invocations as f64
        }
    }
}

/// One second of a run: the report's row, counted as samples arrive, and the second's histograms.
#[derive(Debug, Clone)]
pub struct IntervalStats {
    /// Its counts; the latency fields are filled in by [`IntervalStats::row`].
    pub counts: firehose_reports::Interval,
    pub response_time: Histogram<u64>,
    pub service_time: Histogram<u64>,
}

impl IntervalStats {
    fn new(second: u64) -> Self {
        IntervalStats {
            counts: firehose_reports::Interval {
                second,
                ..Default::default()
            },
            response_time: new_latency_histogram(),
            service_time: new_latency_histogram(),
        }
    }

    /// Seconds since the measured start.
    pub fn second(&self) -> u64 {
        self.counts.second
    }

    fn record(&mut self, s: &Sample) {
        let _ = self.response_time.record(micros(s.response_time()));
        let _ = self.service_time.record(micros(s.service_time()));
        let c = &mut self.counts;
        c.invocations += 1;
        c.records += s.records;
        c.bytes_in += s.bytes_in;
        c.bytes_out += s.bytes_out;
        c.errors += u64::from(s.errored);
        c.violations += u64::from(s.violated);
        c.late_sends += u64::from(s.late());
    }

    /// The report's row for this second, with its histogram so merged reports stay exact.
    pub fn row(&self) -> firehose_reports::Interval {
        firehose_reports::Interval {
            p50: self.response_time.value_at_quantile(0.5),
            p99: self.response_time.value_at_quantile(0.99),
            histogram: firehose_reports::LatencySummary::encode(&self.response_time),
            // The report builder knows the schedule and fills `planned` in.
            ..self.counts.clone()
        }
    }
}

/// How long after a second ends it stays open for invocations that finished in it but reached the
/// collector late.
const SETTLE: Duration = Duration::from_millis(300);

/// Seconds of the measured run, open ones in a short queue. Memory is two or three seconds' worth.
#[derive(Debug)]
pub struct Intervals {
    /// Where second 0 starts, from the start of the run (the end of the warm-up).
    origin: Duration,
    open: VecDeque<IntervalStats>,
    /// The next second to open: seconds are emitted in order, empty ones included.
    next: u64,
}

impl Intervals {
    pub fn new(origin: Duration) -> Self {
        Intervals {
            origin,
            open: VecDeque::new(),
            next: 0,
        }
    }

    /// The second a time (from the start of the run) falls in.
    fn second_of(&self, t: Duration) -> u64 {
        t.saturating_sub(self.origin).as_secs()
    }

    /// Add a sample, by its completion time; a sample for a second already closed goes into the
    /// oldest open one. Returns seconds that had to be closed to make room.
    pub fn record(&mut self, s: &Sample) -> Vec<IntervalStats> {
        let second = self.second_of(s.done);
        let mut closed = Vec::new();
        while self.next <= second {
            self.open.push_back(IntervalStats::new(self.next));
            self.next += 1;
            // Keep at most three seconds open: the current one and two settling.
            if self.open.len() > 3 {
                closed.extend(self.open.pop_front());
            }
        }
        if self.open.is_empty() {
            self.open.push_back(IntervalStats::new(self.next));
            self.next += 1;
        }
        // Nearly every sample belongs to the newest second.
        let at = if self.open.back().is_some_and(|i| i.second() == second) {
            self.open.len() - 1
        } else {
            self.open
                .iter()
                .position(|i| i.second() == second)
                .unwrap_or(0)
        };
        if let Some(i) = self.open.get_mut(at) {
            i.record(s);
        }
        closed
    }

    /// Close every second that ended more than [`SETTLE`] before `now`, opening empty ones for
    /// seconds in which nothing finished, so a stall shows as a row of zeros.
    pub fn tick(&mut self, now: Duration) -> Vec<IntervalStats> {
        let settled = self.second_of(now.saturating_sub(SETTLE));
        if now.saturating_sub(SETTLE) < self.origin {
            return Vec::new();
        }
        while self.next < settled {
            self.open.push_back(IntervalStats::new(self.next));
            self.next += 1;
        }
        let mut closed = Vec::new();
        while self.open.front().is_some_and(|i| i.second() < settled) {
            closed.extend(self.open.pop_front());
        }
        closed
    }

    /// Close everything at the end of the run; the last second is usually partial.
    pub fn finish(&mut self) -> Vec<IntervalStats> {
        self.open.drain(..).collect()
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    fn sample(intended_ms: u64, sent_ms: u64, done_ms: u64) -> Sample {
        Sample {
            intended: Duration::from_millis(intended_ms),
            sent: Duration::from_millis(sent_ms),
            done: Duration::from_millis(done_ms),
            records: 2,
            bytes_in: 100,
            bytes_out: 90,
            ..Sample::default()
        }
    }

    #[test]
    fn three_timestamps_three_histograms() {
        let mut st = LoadStats::default();
        st.record(&sample(0, 0, 5));
        st.record(&sample(10, 510, 515));
        assert_eq!(st.invocations, 2);
        assert_eq!(st.late_sends, 1);
        // Corrected: 5 ms and 505 ms; uncorrected: 5 ms twice.
        assert!(st.response_time.max() >= 500_000);
        assert!(st.service_time.max() < 6_000);
        assert!(st.lag.max() >= 500_000);
        assert_eq!(st.records, 4);
    }

    #[test]
    fn queue_wait_is_its_own_histogram_and_only_where_reported() {
        let mut st = LoadStats::default();
        st.record(&sample(0, 0, 5));
        assert!(st.queue_wait.is_empty(), "an http target reports none");
        let mut queued = sample(0, 0, 305);
        queued.queue_wait = Some(Duration::from_millis(300));
        st.record(&queued);
        assert_eq!(st.queue_wait.len(), 1);
        assert!(st.queue_wait.max() >= 299_000);
        assert!(
            st.response_time.max() >= 300_000,
            "queue wait is response time too"
        );
    }

    #[test]
    fn seconds_close_in_order_with_gaps_filled() {
        let mut iv = Intervals::new(Duration::from_secs(1));
        assert!(iv.record(&sample(1000, 1000, 1100)).is_empty());
        assert!(iv.record(&sample(1200, 1200, 1300)).is_empty());
        // Nothing finishes for a while (a stall): ticks still close seconds, empty ones included.
        let closed = iv.tick(Duration::from_millis(4400));
        assert_eq!(
            closed.iter().map(|i| i.second()).collect::<Vec<_>>(),
            vec![0, 1, 2]
        );
        assert_eq!(closed[0].counts.invocations, 2);
        assert_eq!(closed[1].counts.invocations, 0);
        // A straggler for a closed second lands in the oldest open one rather than vanishing.
        iv.record(&sample(4500, 4500, 4600));
        iv.record(&sample(1500, 1500, 1600));
        let rest = iv.finish();
        assert_eq!(rest.iter().map(|i| i.counts.invocations).sum::<u64>(), 2);
    }
}
