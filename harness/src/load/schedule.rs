//! When each invocation is meant to leave: a pure function of the plan, so it can be unit-tested
//! without a clock and sliced across machines without coordination.
//!
//! - **Open model** (`--rate`, `--stages`, the Firehose model): a [`RateProfile`] of linear segments.
//!   Invocation `k` (0-based, counted over the whole run) is due at the time `t_k` where the
//!   cumulative count `N(t) = ∫ rate` reaches `k`, so a constant 10/s sends at 0, 0.1 s, 0.2 s, …
//!   and a ramp sends ever more densely. Times never depend on responses: a slow target cannot slow
//!   the schedule (the engine counts what it could not send on time as late).
//! - **Closed model** (`--concurrency C`): `C` callers, each sending again as soon as its previous
//!   invocation finished; slots have no due time.
//!
//! A [`Partition`] `i/n` keeps the invocations `k ≡ i-1 (mod n)`: each slice runs the same timeline at
//! `1/n` of the rate, and the slices together are exactly the whole run (same `k`, same events, same
//! due times), which is what lets `report merge` add their histograms.
//!
//! The warm-up is a first segment whose invocations carry `warmup: true`; `--invocations` counts only
//! measured ones.

use std::time::Duration;

use crate::values::Stage;

/// One linear piece of the rate curve, in invocations per second.
#[derive(Debug, Clone, Copy, PartialEq)]
pub struct Segment {
    /// `None`: forever (a constant rate limited only by `--invocations`).
    pub duration: Option<Duration>,
    pub from: f64,
    pub to: f64,
}

impl Segment {
    /// Invocations due over the whole segment (infinite for an endless one with a rate).
    fn count(&self) -> f64 {
        match self.duration {
            Some(d) => (self.from + self.to) / 2.0 * d.as_secs_f64(),
            None if self.from > 0.0 => f64::INFINITY,
            None => 0.0,
        }
    }

    /// Seconds into the segment at which `n` invocations (0 < n < count) have become due.
    ///
    /// Solves `from·s + (to-from)·s²/(2T) = n` in the form `2n / (from + sqrt(from² + 2(to-from)n/T))`,
    /// which stays exact for flat segments and ramps from zero alike.
    fn time_of(&self, n: f64) -> f64 {
        if n <= 0.0 {
            return 0.0;
        }
        let (a, b) = (self.from, self.to);
        match self.duration {
            Some(d) if a != b => {
                let t = d.as_secs_f64();
                let disc = (a * a + 2.0 * (b - a) * n / t).max(0.0);
                2.0 * n / (a + disc.sqrt())
            }
            _ => n / a,
        }
    }
}

/// The open model's rate over time: piecewise linear.
#[derive(Debug, Clone, PartialEq)]
pub struct RateProfile {
    pub segments: Vec<Segment>,
}

impl RateProfile {
    /// `rate` per second for `duration` (forever when `None`).
    pub fn constant(rate: f64, duration: Option<Duration>) -> Self {
        RateProfile {
            segments: vec![Segment {
                duration,
                from: rate,
                to: rate,
            }],
        }
    }

    /// k6 stages: each ramps linearly from the previous stage's rate (0 before the first).
    pub fn stages(stages: &[Stage]) -> Self {
        let mut from = 0.0;
        let segments = stages
            .iter()
            .map(|st| {
                let seg = Segment {
                    duration: Some(st.duration),
                    from,
                    to: st.target,
                };
                from = st.target;
                seg
            })
            .collect();
        RateProfile { segments }
    }

    /// The rate the profile starts measuring at: what a warm-up before it runs at. For stages that
    /// ramp up from zero that is the first stage's target, so the target is warm when the ramp starts.
    pub fn warmup_rate(&self) -> f64 {
        self.segments
            .first()
            .map(|s| if s.from > 0.0 { s.from } else { s.to })
            .unwrap_or(0.0)
    }

    /// Total length, `None` when endless.
    pub fn duration(&self) -> Option<Duration> {
        self.segments.iter().map(|s| s.duration).sum()
    }

    /// Invocations due over the whole profile (may be infinite).
    pub fn total(&self) -> f64 {
        self.segments.iter().map(Segment::count).sum()
    }

    /// The highest rate anywhere on the curve.
    pub fn peak(&self) -> f64 {
        self.segments
            .iter()
            .map(|s| s.from.max(s.to))
            .fold(0.0, f64::max)
    }
}

/// The `i`-th of `n` slices (1-based).
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub struct Partition {
    pub index: u32,
    pub count: u32,
}

impl Partition {
    pub const WHOLE: Partition = Partition { index: 1, count: 1 };

    fn residue(self) -> u64 {
        u64::from(self.index - 1)
    }

    /// How many of the indices `lo..hi` fall in this slice.
    pub fn share_of(self, lo: u64, hi: u64) -> u64 {
        let n = u64::from(self.count);
        let r = self.residue();
        // Indices k ≡ r (mod n) below x: ceil((x - r) / n) for x > r.
        let below = |x: u64| if x > r { (x - r).div_ceil(n) } else { 0 };
        below(hi).saturating_sub(below(lo))
    }

    /// The global index of this slice's `j`-th invocation.
    pub fn global(self, j: u64) -> u64 {
        self.residue() + j * u64::from(self.count)
    }
}

impl std::fmt::Display for Partition {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        write!(f, "{}/{}", self.index, self.count)
    }
}

/// Open or closed.
#[derive(Debug, Clone, PartialEq)]
pub enum Model {
    /// Sends follow the profile, whatever the target does.
    Open(RateProfile),
    /// This many callers, each waiting for its answer before sending again.
    Closed { callers: u32 },
}

/// One invocation to make.
#[derive(Debug, Clone, Copy, PartialEq)]
pub struct Slot {
    /// Position in the whole run (all partitions): it picks the event and orders the run.
    pub index: u64,
    /// When it is due, from the start of the run; `None` in the closed model (as soon as a caller is
    /// free).
    pub due: Option<Duration>,
    /// `Some(true)` for warm-up invocations; `None` when only the send time can tell (closed model).
    pub warmup: Option<bool>,
}

/// A whole run's timeline, sliced to one partition. An iterator of [`Slot`]s.
#[derive(Debug, Clone)]
pub struct Schedule {
    model: Model,
    warmup: Duration,
    /// `--duration` (measured part), when given.
    measured: Option<Duration>,
    /// `--invocations`, over all partitions.
    limit: Option<u64>,
    partition: Partition,
    /// Open model: the profile with the warm-up segment in front, and its precomputed counts.
    full: RateProfile,
    warmup_slots: u64,
    end_slot: Option<u64>,
    /// Iteration state: the slice's next `j`, the current segment and the count before it.
    next_j: u64,
    seg: usize,
    seg_base: f64,
    seg_start: f64,
}

/// Cumulative counts are floating point: `0.1 × 30` must still be 3 invocations, not 4.
const COUNT_EPSILON: f64 = 1e-9;

fn slots_below(count: f64) -> u64 {
    if count.is_infinite() {
        u64::MAX
    } else {
        (count - COUNT_EPSILON).max(0.0).ceil() as u64
    }
}

impl Schedule {
    /// A schedule for `model`, `warmup` first, then the measured part bounded by `duration` (for the
    /// closed model; the open model's profile already has its length) and/or `limit`.
    pub fn new(
        model: Model,
        warmup: Duration,
        duration: Option<Duration>,
        limit: Option<u64>,
        partition: Partition,
    ) -> Schedule {
        let full = match &model {
            Model::Open(profile) => {
                let mut segments = Vec::new();
                if !warmup.is_zero() {
                    let r = profile.warmup_rate();
                    segments.push(Segment {
                        duration: Some(warmup),
                        from: r,
                        to: r,
                    });
                }
                segments.extend(profile.segments.iter().copied());
                RateProfile { segments }
            }
            Model::Closed { .. } => RateProfile {
                segments: Vec::new(),
            },
        };
        let warmup_slots = match &model {
            Model::Open(profile) if !warmup.is_zero() => {
                slots_below(profile.warmup_rate() * warmup.as_secs_f64())
            }
            _ => 0,
        };
        let end_slot = match &model {
            Model::Open(_) => {
                let by_time = slots_below(full.total());
                let by_count = limit.map_or(u64::MAX, |n| warmup_slots.saturating_add(n));
                Some(by_time.min(by_count))
            }
            Model::Closed { .. } => None,
        };
        Schedule {
            model,
            warmup,
            measured: duration,
            limit,
            partition,
            full,
            warmup_slots,
            end_slot,
            next_j: 0,
            seg: 0,
            seg_base: 0.0,
            seg_start: 0.0,
        }
    }

    pub fn model(&self) -> &Model {
        &self.model
    }

    pub fn slice(&self) -> Partition {
        self.partition
    }

    pub fn warmup(&self) -> Duration {
        self.warmup
    }

    /// How many callers (closed model) share this partition: `C` split as evenly as it goes.
    pub fn callers(&self) -> Option<u32> {
        match self.model {
            Model::Closed { callers } => {
                let p = self.partition;
                let share = Partition::share_of(p, 0, u64::from(callers));
                Some(share as u32)
            }
            Model::Open(_) => None,
        }
    }

    /// Measured invocations this partition will make, when that is known in advance.
    pub fn planned(&self) -> Option<u64> {
        match (&self.model, self.end_slot) {
            (Model::Open(_), Some(end)) if end != u64::MAX => Some(
                self.partition
                    .share_of(self.warmup_slots, end.max(self.warmup_slots)),
            ),
            _ => self.measured_quota(),
        }
    }

    /// Warm-up invocations this partition makes (open model).
    pub fn planned_warmup(&self) -> u64 {
        self.partition.share_of(0, self.warmup_slots)
    }

    /// The closed model's share of `--invocations`: the engine stops after that many measured sends.
    pub fn measured_quota(&self) -> Option<u64> {
        self.limit.map(|n| self.partition.share_of(0, n))
    }

    /// When the closed model stops sending, from the start (warm-up plus `--duration`). The open
    /// model has none: every due invocation is sent, however late.
    pub fn deadline(&self) -> Option<Duration> {
        match self.model {
            Model::Closed { .. } => self.measured.map(|d| self.warmup + d),
            Model::Open(_) => None,
        }
    }

    /// The measured part's planned length, for the achieved rate.
    pub fn measured_duration(&self) -> Option<Duration> {
        match &self.model {
            Model::Open(p) => p.duration(),
            Model::Closed { .. } => self.measured,
        }
    }

    /// The rate this partition is planned to average over the measured part (open model): the
    /// constant rate, or for stages the planned invocations over their length — the figure the
    /// achieved rate should match.
    pub fn rate_target(&self) -> Option<f64> {
        let Model::Open(p) = &self.model else {
            return None;
        };
        let share = f64::from(self.partition.count);
        match (self.planned(), p.duration()) {
            (Some(n), Some(d)) if !d.is_zero() => Some(n as f64 / d.as_secs_f64()),
            _ => Some(p.peak() / share),
        }
    }

    /// When open-model slot `k` is due, from the start of the run.
    fn due(&mut self, k: u64) -> Option<Duration> {
        let k = k as f64;
        loop {
            let seg = self.full.segments.get(self.seg)?;
            let count = seg.count();
            if k < self.seg_base + count - COUNT_EPSILON {
                let s = seg.time_of(k - self.seg_base);
                return Some(Duration::from_secs_f64(self.seg_start + s));
            }
            self.seg_base += count;
            self.seg_start += seg.duration?.as_secs_f64();
            self.seg += 1;
        }
    }
}

impl Iterator for Schedule {
    type Item = Slot;

    fn next(&mut self) -> Option<Slot> {
        let k = self.partition.global(self.next_j);
        let slot = match self.model {
            Model::Open(_) => {
                if self.end_slot.is_some_and(|end| k >= end) {
                    return None;
                }
                Slot {
                    index: k,
                    due: Some(self.due(k)?),
                    warmup: Some(k < self.warmup_slots),
                }
            }
            Model::Closed { .. } => Slot {
                index: k,
                due: None,
                warmup: None,
            },
        };
        self.next_j += 1;
        Some(slot)
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::values::parse_stages;

    fn secs(s: f64) -> Option<Duration> {
        Some(Duration::from_secs_f64(s))
    }

    fn open(profile: RateProfile, limit: Option<u64>, p: Partition) -> Schedule {
        Schedule::new(Model::Open(profile), Duration::ZERO, None, limit, p)
    }

    #[test]
    fn constant_rate_issues_rate_times_duration() {
        let s = open(
            RateProfile::constant(10.0, secs(3.0)),
            None,
            Partition::WHOLE,
        );
        assert_eq!(s.planned(), Some(30));
        assert_eq!(s.rate_target(), Some(10.0));
        let slots: Vec<Slot> = s.collect();
        assert_eq!(slots.len(), 30);
        assert_eq!(slots[0].due, Some(Duration::ZERO));
        assert_eq!(slots[1].due, secs(0.1));
        let last = slots[29].due.unwrap().as_secs_f64();
        assert!((last - 2.9).abs() < 1e-9, "{last}");
        assert!(slots.windows(2).all(|w| w[0].due < w[1].due));
    }

    #[test]
    fn fractional_rates_and_float_noise() {
        let n = open(
            RateProfile::constant(0.5, secs(10.0)),
            None,
            Partition::WHOLE,
        )
        .count();
        assert_eq!(n, 5);
        // 0.1 × 30 is 3.0000000000000004 in floating point: still three.
        let n = open(
            RateProfile::constant(0.1, secs(30.0)),
            None,
            Partition::WHOLE,
        )
        .count();
        assert_eq!(n, 3);
    }

    #[test]
    fn invocation_limit_and_endless_profile() {
        let s = open(
            RateProfile::constant(1000.0, None),
            Some(250),
            Partition::WHOLE,
        );
        assert_eq!(s.planned(), Some(250));
        assert_eq!(s.count(), 250);
        let s = open(
            RateProfile::constant(10.0, secs(1.0)),
            Some(250),
            Partition::WHOLE,
        );
        assert_eq!(s.count(), 10, "the duration ends it first");
    }

    #[test]
    fn stages_ramp_linearly_like_k6() {
        let profile = RateProfile::stages(&parse_stages("10s:100,10s:100,10s:0").unwrap());
        // Ramp up: 500, plateau: 1000, ramp down: 500.
        assert!((profile.total() - 2000.0).abs() < 1e-9);
        let s = open(profile.clone(), None, Partition::WHOLE);
        // The planned average, not the peak: what the achieved rate is measured against.
        assert!((s.rate_target().unwrap() - 2000.0 / 30.0).abs() < 1e-9);
        let slots: Vec<Slot> = s.collect();
        assert_eq!(slots.len(), 2000);
        let due = |i: usize| slots[i].due.unwrap().as_secs_f64();
        // N(t) = 5t² on the ramp: the 125th invocation is due at 5 s.
        assert!((due(125) - 5.0).abs() < 1e-9, "{}", due(125));
        // 500 due by 10 s, then 100/s.
        assert!((due(500) - 10.0).abs() < 1e-9);
        assert!((due(600) - 11.0).abs() < 1e-9);
        // Ramp down mirrors the ramp up: the last sends thin out towards 30 s.
        assert!(due(1999) < 30.0 && due(1999) > 29.0);
        let gaps_up = due(2) - due(1);
        let gaps_mid = due(701) - due(700);
        assert!(gaps_up > gaps_mid);
        assert!(slots.windows(2).all(|w| w[0].due <= w[1].due));
    }

    #[test]
    fn stage_with_zero_rate_sends_nothing_then_resumes() {
        let profile = RateProfile::stages(&parse_stages("1s:0,1s:0,1s:10").unwrap());
        let slots: Vec<Slot> = open(profile, None, Partition::WHOLE).collect();
        assert_eq!(slots.len(), 5);
        assert!(slots[0].due.unwrap() >= Duration::from_secs(2));
    }

    #[test]
    fn warmup_comes_first_and_is_not_counted() {
        let s = Schedule::new(
            Model::Open(RateProfile::constant(10.0, secs(2.0))),
            Duration::from_secs(1),
            None,
            None,
            Partition::WHOLE,
        );
        assert_eq!(s.planned(), Some(20));
        assert_eq!(s.planned_warmup(), 10);
        let slots: Vec<Slot> = s.collect();
        assert_eq!(slots.len(), 30);
        assert!(slots[..10].iter().all(|s| s.warmup == Some(true)));
        assert!(slots[10..].iter().all(|s| s.warmup == Some(false)));
        assert_eq!(slots[10].due, secs(1.0));
        // --invocations counts measured ones only.
        let s = Schedule::new(
            Model::Open(RateProfile::constant(10.0, None)),
            Duration::from_secs(1),
            None,
            Some(5),
            Partition::WHOLE,
        );
        assert_eq!(s.filter(|s| s.warmup == Some(false)).count(), 5);
    }

    #[test]
    fn partitions_slice_the_whole_exactly() {
        let profile = RateProfile::stages(&parse_stages("2s:50,3s:80,1s:0").unwrap());
        let whole: Vec<Slot> = Schedule::new(
            Model::Open(profile.clone()),
            Duration::from_millis(500),
            None,
            None,
            Partition::WHOLE,
        )
        .collect();
        let mut merged = Vec::new();
        let mut planned = 0;
        for index in 1..=3 {
            let s = Schedule::new(
                Model::Open(profile.clone()),
                Duration::from_millis(500),
                None,
                None,
                Partition { index, count: 3 },
            );
            planned += s.planned().unwrap();
            let slice: Vec<Slot> = s.collect();
            assert!(slice.iter().all(|s| s.index % 3 == u64::from(index - 1)));
            merged.extend(slice);
        }
        merged.sort_by_key(|s| s.index);
        assert_eq!(merged, whole);
        assert_eq!(
            planned,
            whole.iter().filter(|s| s.warmup == Some(false)).count() as u64
        );
    }

    #[test]
    fn partition_shares_add_up() {
        for n in 1..=7u32 {
            for total in [0u64, 1, 5, 99, 100, 101] {
                let sum: u64 = (1..=n)
                    .map(|i| Partition { index: i, count: n }.share_of(0, total))
                    .sum();
                assert_eq!(sum, total, "n={n} total={total}");
            }
        }
        assert_eq!(Partition { index: 2, count: 4 }.share_of(3, 10), 2); // 5 and 9
    }

    #[test]
    fn closed_model_has_no_due_times_and_splits_callers() {
        let s = Schedule::new(
            Model::Closed { callers: 10 },
            Duration::ZERO,
            secs(5.0),
            Some(101),
            Partition { index: 1, count: 3 },
        );
        assert_eq!(s.callers(), Some(4));
        assert_eq!(s.measured_quota(), Some(34));
        assert_eq!(s.deadline(), secs(5.0));
        let first: Vec<Slot> = s.take(3).collect();
        assert_eq!(
            first.iter().map(|s| s.index).collect::<Vec<_>>(),
            vec![0, 3, 6]
        );
        assert!(first.iter().all(|s| s.due.is_none() && s.warmup.is_none()));
    }
}
