//! The collector: folds records into figures, per-second rows, the interval log and failure
//! groups; judges `:abort` thresholds; emits [`LoadEvent`]s. It owns everything the run reports.

use std::time::{Duration, SystemTime};

use tokio::time::Instant;

use super::super::hlog::{HlogEntry, HlogWriter};
use super::super::stats::{IntervalStats, Intervals, LoadStats, Sample};
use super::super::thresholds::{Figures, Judged, Threshold};
use super::super::{LoadEvent, LoadPlan, Progress, counts_as_error};
use super::outcome::{Answered, End, LoadOutcome, Record, Stopped};
use crate::case::FailureGroups;
use crate::contract::{CheckId, Severity, Verdict};
use crate::events::{EventSink, Phase, RunEvent};
use crate::targets::TargetError;

/// Distinct failures kept for the report; later kinds are still counted per check.
pub(super) const MAX_GROUPS: usize = firehose_reports::MAX_FAILURES_LISTED;

/// Folds records into figures; owns everything the run reports.
pub(super) struct Collector<'a> {
    pub(super) sink: &'a mut dyn EventSink,
    pub(super) start: Instant,
    pub(super) warmup: Duration,
    pub(super) planned: Option<u64>,
    pub(super) planned_span: Option<Duration>,
    pub(super) thresholds: Vec<Threshold>,
    pub(super) aborted_by: Option<String>,
    pub(super) stats: LoadStats,
    pub(super) intervals: Intervals,
    pub(super) rows: Vec<firehose_reports::Interval>,
    pub(super) hlog: Option<HlogWriter>,
    pub(super) groups: FailureGroups,
    pub(super) warmup_invocations: u64,
    pub(super) interrupted: u64,
    pub(super) measuring_announced: bool,
    pub(super) last_done: Option<Duration>,
    /// Measured invocations at the last progress event, and when, for the live rate.
    pub(super) rate_mark: (u64, Duration),
    pub(super) rate: f64,
    pub(super) stopped: Option<Stopped>,
    pub(super) unreachable: Option<TargetError>,
    pub(super) target: String,
    pub(super) started_at: SystemTime,
    pub(super) notes: Vec<String>,
    /// `--max-hangs` and the timeout, for the note when they stop the run.
    pub(super) max_hangs: (u32, Duration),
}

impl<'a> Collector<'a> {
    pub(super) fn new(
        plan: &LoadPlan,
        target: String,
        start: Instant,
        started_at: SystemTime,
        sink: &'a mut dyn EventSink,
    ) -> Self {
        let warmup = plan.schedule.warmup();
        let mut notes = Vec::new();
        let hlog = plan.hlog.as_ref().and_then(|path| {
            match HlogWriter::create(path, started_at + warmup, &target) {
                Ok(w) => Some(w),
                Err(e) => {
                    notes.push(format!("no interval log: {e}"));
                    None
                }
            }
        });
        Collector {
            sink,
            start,
            warmup,
            planned: plan.schedule.planned(),
            planned_span: plan.schedule.measured_duration(),
            thresholds: plan.thresholds.clone(),
            aborted_by: None,
            stats: LoadStats::default(),
            intervals: Intervals::new(warmup),
            rows: Vec::new(),
            hlog,
            groups: FailureGroups::new(MAX_GROUPS),
            warmup_invocations: 0,
            interrupted: 0,
            measuring_announced: warmup.is_zero(),
            last_done: None,
            rate_mark: (0, Duration::ZERO),
            rate: 0.0,
            stopped: None,
            unreachable: None,
            target,
            started_at,
            notes,
            max_hangs: (plan.max_hangs, plan.timeout),
        }
    }

    pub(super) fn emit(&mut self, e: LoadEvent) {
        self.sink.emit(RunEvent::Load(e));
    }

    pub(super) fn note(&mut self, note: String) {
        self.sink.emit(RunEvent::Note(note.clone()));
        self.notes.push(note);
    }

    /// The first reason to stop wins.
    pub(super) fn stop(&mut self, why: Stopped) {
        if self.stopped.is_none() {
            self.stopped = Some(why);
        }
    }

    /// Fold one record in. Returns a reason to stop everything at once.
    pub(super) fn take(&mut self, r: Record) -> Option<Stopped> {
        let hang_limit = r.hang_limit;
        let stop = self.fold(r);
        if hang_limit && stop.is_none() && self.stopped.is_none() {
            self.note(format!(
                "cut short: {} invocations in a row got no answer within {} (--max-hangs); the invocations not sent were not judged",
                self.max_hangs.0,
                crate::values::format_duration(self.max_hangs.1)
            ));
            return Some(Stopped::Hanging);
        }
        stop
    }

    fn fold(&mut self, r: Record) -> Option<Stopped> {
        let (figures, violated, errored) = match r.end {
            End::Interrupted => {
                self.interrupted += 1;
                return None;
            }
            End::Unreachable(e) => {
                if self.stats.invocations + self.warmup_invocations == 0 {
                    if self.unreachable.is_none() {
                        self.unreachable = Some(e);
                    }
                    return Some(Stopped::Unreachable);
                }
                // Lost a race with the first answer: not unreachable after all, but not judged.
                self.interrupted += 1;
                return None;
            }
            End::Throttled => {
                if !r.warmup {
                    self.stats.throttles += 1;
                }
                return None;
            }
            End::Clean(figures) => (figures, false, false),
            End::Answered(answered) => {
                let Answered {
                    figures,
                    verdict: v,
                    saved,
                } = *answered;
                for (check, n) in &v.counts {
                    *self.stats.check_counts.entry(*check).or_default() += n;
                }
                self.group(&v, &saved);
                let violated = v
                    .violations
                    .iter()
                    .any(|x| x.severity == Severity::Error && !counts_as_error(x.check));
                let errored = v.counts.keys().any(|c| counts_as_error(*c));
                (figures, violated, errored)
            }
        };
        self.stats.results.add(&figures.results);
        if r.warmup {
            self.warmup_invocations += 1;
            // Contract violations count whenever they happen; the warm-up only leaves the figures.
            self.stats.violations += u64::from(violated);
            return None;
        }
        let sample = Sample {
            intended: r.intended - self.start,
            sent: r.sent - self.start,
            done: r.done - self.start,
            errored,
            violated,
            records: figures.records,
            bytes_in: figures.bytes_in,
            bytes_out: figures.bytes_out,
            queue_wait: figures.queue_wait,
        };
        self.stats.record(&sample);
        self.last_done = Some(self.last_done.map_or(sample.done, |d| d.max(sample.done)));
        for closed in self.intervals.record(&sample) {
            self.close(closed);
        }
        None
    }

    /// Count a verdict's failures into (check, fingerprint) groups, announcing new ones, and
    /// point each group at the first case folder saved for it.
    pub(super) fn group(&mut self, v: &Verdict, saved: &[(CheckId, String, String)]) {
        for i in self.groups.file(v, Phase::Random) {
            let first = &self.groups.get(i).first;
            let (check, message) = (first.check.id(), first.message.clone());
            self.emit(LoadEvent::NewFailure { check, message });
        }
        for (check, fingerprint, name) in saved {
            if let Some(i) = self.groups.find(*check, fingerprint) {
                let g = self.groups.get_mut(i);
                if g.case.is_none() {
                    g.case = Some(name.clone());
                }
            }
        }
    }

    /// A closed second: a report row and two interval-log lines.
    pub(super) fn close(&mut self, i: IntervalStats) {
        self.rows.push(i.row());
        if let Some(h) = &self.hlog {
            h.write(HlogEntry {
                start: Duration::from_secs(i.second()),
                length: Duration::from_secs(1),
                response_time: i.response_time,
                service_time: i.service_time,
            });
        }
    }

    /// Periodic work: close settled seconds, judge `:abort` thresholds, refresh the live view.
    /// Returns the expression of a breached `:abort` threshold.
    pub(super) fn tick(&mut self, now: Duration, in_flight: u64) -> Option<String> {
        let warming_up = now < self.warmup;
        if !warming_up && !self.measuring_announced {
            self.measuring_announced = true;
            self.emit(LoadEvent::Measuring);
        }
        for closed in self.intervals.tick(now) {
            self.close(closed);
        }
        let since = now.saturating_sub(self.rate_mark.1);
        if since >= Duration::from_secs(1) {
            self.rate = (self.stats.invocations - self.rate_mark.0) as f64 / since.as_secs_f64();
            self.rate_mark = (self.stats.invocations, now);
        }
        let progress = Progress {
            elapsed: now,
            warming_up,
            invocations: self.stats.invocations,
            planned: self.planned,
            rate: self.rate,
            in_flight,
            p99: self.stats.response_time.value_at_quantile(0.99),
            errors: self.stats.errors,
            violations: self.stats.violations,
            late_sends: self.stats.late_sends,
        };
        self.emit(LoadEvent::Progress(progress));
        if self.aborted_by.is_some() || self.stats.invocations == 0 {
            return None;
        }
        let span = self.span();
        let breach = {
            let figures = self.figures(span);
            self.thresholds
                .iter()
                .filter(|t| t.judged_mid_run())
                .map(|t| (t, t.judge(&figures)))
                .find(|(_, j)| !j.passed)
                .map(|(t, j)| (t.expression.clone(), j.actual))
        };
        let (expression, actual) = breach?;
        self.aborted_by = Some(expression.clone());
        self.emit(LoadEvent::ThresholdBreached {
            expression: expression.clone(),
            actual,
            aborting: true,
        });
        Some(expression)
    }

    pub(super) fn span(&self) -> Duration {
        let actual = self
            .last_done
            .map_or(Duration::ZERO, |d| d.saturating_sub(self.warmup));
        // A run that went to plan spans at least its planned length: the last send of a 10 s run
        // at 100/s leaves at 9.99 s, and the achieved rate should read 100/s, not 100.1/s.
        match self.planned_span {
            Some(p) if self.stopped.is_none() => actual.max(p),
            _ => actual,
        }
    }

    pub(super) fn figures(&self, span: Duration) -> Figures<'_> {
        let secs = span.as_secs_f64();
        Figures {
            response_time: &self.stats.response_time,
            invocations: self.stats.invocations,
            errors: self.stats.errors,
            throughput: if secs > 0.0 {
                self.stats.invocations as f64 / secs
            } else {
                0.0
            },
            violations: self.stats.violations,
            late_sends: self.stats.late_sends,
        }
    }

    pub(super) fn finish(
        mut self,
        duration: Duration,
        peak_in_flight: u64,
        answered_any: bool,
    ) -> LoadOutcome {
        for closed in self.intervals.finish() {
            self.close(closed);
        }
        if let Some(Err(e)) = self.hlog.take().map(HlogWriter::finish) {
            self.note(format!("the interval log is incomplete: {e}"));
        }
        if self.interrupted > 0 {
            let n = self.interrupted;
            self.note(format!(
                "{n} invocation{} still in flight at the end {} not counted (interrupted)",
                if n == 1 { " was" } else { "s were" },
                if self.stopped == Some(Stopped::Interrupted) {
                    "of the run"
                } else {
                    "of the grace period"
                }
            ));
        }
        let span = self.span();
        let judged: Vec<(Threshold, Judged, bool)> = {
            let figures = self.figures(span);
            self.thresholds
                .iter()
                .map(|t| {
                    let aborted = self.aborted_by.as_deref() == Some(t.expression.as_str());
                    (t.clone(), t.judge(&figures), aborted)
                })
                .collect()
        };
        LoadOutcome {
            target: self.target,
            started_at: self.started_at,
            duration,
            measured_span: span,
            stats: self.stats,
            intervals: self.rows,
            groups_truncated: self.groups.truncated,
            groups: self.groups.into_groups(),
            warmup_invocations: self.warmup_invocations,
            interrupted: self.interrupted,
            peak_in_flight,
            stopped: self.stopped,
            answered_any,
            unreachable: self.unreachable,
            thresholds: judged,
            notes: self.notes,
        }
    }
}
