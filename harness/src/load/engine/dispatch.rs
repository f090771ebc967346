//! Dispatch: the schedule's position shared by the workers, and the event that goes with each slot.

use std::collections::VecDeque;
use std::sync::Arc;
use std::sync::atomic::{AtomicBool, AtomicU64, Ordering};

use crossbeam_utils::CachePadded;
use firehose_generators::GenConfig;
use tokio::sync::mpsc;
use tokio::time::Instant;
use tokio_util::sync::CancellationToken;

use super::super::schedule::{Partition, Schedule, Slot};
use super::super::{EventSource, Prepared};
use super::Runtimes;

/// The schedule's position, shared by the workers (a plain lock: taking a slot never waits).
pub(super) struct Dispatch {
    pub(super) schedule: Schedule,
    /// Slots handed out so far: the partition-local index of the next one.
    pub(super) claimed: u64,
    /// Measured slots handed out (the closed model's `--invocations` quota counts these).
    pub(super) measured: u64,
}

pub(super) struct Dispatcher {
    pub(super) start: Instant,
    /// The closed model stops taking slots here.
    pub(super) deadline: Option<Instant>,
    /// The open model gives up the slots still unsent here: the planned end plus the grace.
    pub(super) overrun_at: Option<Instant>,
    pub(super) overran: AtomicBool,
    pub(super) quota: Option<u64>,
    pub(super) warmup_end: Instant,
    /// Stop taking slots: Ctrl-C, an `:abort` threshold, an unreachable target.
    pub(super) stop: CancellationToken,
    /// Cancelled once no slot is left: the collector then starts the grace period.
    pub(super) exhausted: CancellationToken,
    /// Slots taken but not yet sent (waiting for their event or due time).
    pub(super) waiting: AtomicU64,
    /// Told when `waiting` drops to zero, so the collector can start the grace period without
    /// polling for it (a poll in a loop spins a core and stops a paused clock from moving).
    pub(super) all_sent: tokio::sync::Notify,
    pub(super) slots: std::sync::Mutex<Dispatch>,
    /// No slot is left, in either model (see [`Dispatcher::finish`]).
    pub(super) finished: AtomicBool,
    /// The closed model's slots, taken without that lock; `None` in the open model.
    pub(super) closed: Option<ClosedSlots>,
    pub(super) feed: EventFeed,
}

/// The closed model takes its slots without a lock: a slot is the next index and nothing more.
/// Under the lock every caller of every thread took it, and wrote beside it, at every invocation;
/// each time the lock's cache line moved between the cores.
pub(super) struct ClosedSlots {
    pub(super) partition: Partition,
    /// The partition-local index of the next slot.
    pub(super) next: CachePadded<AtomicU64>,
    /// Measured slots taken (counted only with a `--invocations` quota).
    pub(super) measured: CachePadded<AtomicU64>,
    /// Every event is at hand ([`EventFeed::always_at_hand`]): a slot is sent as soon as it is
    /// taken, so it is not counted in [`Dispatcher::waiting`].
    pub(super) events_at_hand: bool,
}

/// A slot a worker took.
pub(super) struct Claimed {
    pub(super) event: Arc<Prepared>,
    /// When it is due (open model); `None`: now.
    pub(super) due: Option<Instant>,
    pub(super) warmup: bool,
    /// Counted in [`Dispatcher::waiting`] until it is sent.
    pub(super) counted: bool,
}

impl Dispatcher {
    /// The next slot and its event, or `None` when the schedule is done or the run stops.
    /// `stop`: the caller's thread's child of [`Dispatcher::stop`] (a token's locks are not
    /// contended within one thread); `fixed`: its copy of a fixed event
    /// ([`EventFeed::fixed_copy`]).
    pub(super) async fn claim(
        &self,
        stop: &CancellationToken,
        fixed: Option<&Arc<Prepared>>,
    ) -> Option<Claimed> {
        let (slot, j, warmup) = self.next_slot(stop)?;
        if let Some(event) = self.feed.at_hand(j, slot.index, fixed) {
            // Nothing waited for, and `next_slot` just checked the deadline.
            return self.claimed(Some(event), slot, warmup);
        }
        let event = match self.feed.make(j) {
            // Made here and now: nothing to wait for but the making.
            Some(event) => Some(event),
            None => {
                // The event comes first, the due time after: generation never eats into the wait.
                let past_deadline = async {
                    match self.deadline {
                        Some(at) => tokio::time::sleep_until(at).await,
                        None => std::future::pending().await,
                    }
                };
                tokio::select! {
                    biased;
                    e = self.feed.handed_over(j) => e,
                    _ = stop.cancelled() => None,
                    // The closed model's `--duration` is over: a call still waiting for its event
                    // is not started (as k6 starts no iteration after the duration), or a run with
                    // many callers and big batches would overrun by the time it takes to generate
                    // them all.
                    _ = past_deadline => None,
                }
            }
        };
        // Past the deadline while the event was being made?
        let event = event.filter(|_| self.deadline.is_none_or(|at| Instant::now() < at));
        self.claimed(event, slot, warmup)
    }

    /// The claim of `slot` with its event; without one, the slot is given up and no more are.
    fn claimed(&self, event: Option<Arc<Prepared>>, slot: Slot, warmup: bool) -> Option<Claimed> {
        let counted = self.counts_waiting();
        match event {
            Some(event) => Some(Claimed {
                event,
                due: slot.due.map(|t| self.start + t),
                warmup,
                counted,
            }),
            None => {
                if counted {
                    self.sent_one();
                }
                self.finish();
                None
            }
        }
    }

    /// Whether taken slots are counted in [`Dispatcher::waiting`]: all of them, but for a closed
    /// model whose events are all at hand.
    fn counts_waiting(&self) -> bool {
        self.closed.as_ref().is_none_or(|c| !c.events_at_hand)
    }

    /// `claimed` was sent or given up.
    pub(super) fn sent(&self, claimed: &Claimed) {
        if claimed.counted {
            self.sent_one();
        }
    }

    /// A counted slot was sent or given up.
    fn sent_one(&self) {
        if self.waiting.fetch_sub(1, Ordering::Relaxed) == 1 {
            self.all_sent.notify_one();
        }
    }

    /// No more slots: every later claim finds none, and the collector may start the grace period.
    pub(super) fn finish(&self) {
        self.finished.store(true, Ordering::Relaxed);
        self.exhausted.cancel();
    }

    /// Take the next slot: (slot, partition-local index, warm-up?).
    pub(super) fn next_slot(&self, stop: &CancellationToken) -> Option<(Slot, u64, bool)> {
        match &self.closed {
            Some(closed) => self.next_closed(closed, stop),
            None => self.next_open(stop),
        }
    }

    /// The closed model's next slot: the deadline, the quota and the next index, each read or
    /// taken on its own.
    fn next_closed(
        &self,
        closed: &ClosedSlots,
        stop: &CancellationToken,
    ) -> Option<(Slot, u64, bool)> {
        let taken = (|| {
            if self.finished.load(Ordering::Relaxed) || stop.is_cancelled() {
                return None;
            }
            let now = Instant::now();
            if self.deadline.is_some_and(|at| now >= at) {
                return None;
            }
            let warmup = now < self.warmup_end;
            if !warmup
                && let Some(quota) = self.quota
                && closed.measured.fetch_add(1, Ordering::Relaxed) >= quota
            {
                return None;
            }
            if !closed.events_at_hand {
                self.waiting.fetch_add(1, Ordering::Relaxed);
            }
            let j = closed.next.fetch_add(1, Ordering::Relaxed);
            let slot = Slot {
                index: closed.partition.global(j),
                due: None,
                warmup: None,
            };
            Some((slot, j, warmup))
        })();
        if taken.is_none() {
            self.finish();
        }
        taken
    }

    fn next_open(&self, stop: &CancellationToken) -> Option<(Slot, u64, bool)> {
        let mut d = self.slots.lock().unwrap_or_else(|p| p.into_inner());
        let taken = (|| {
            if self.finished.load(Ordering::Relaxed) || stop.is_cancelled() {
                return None;
            }
            let slot = d.schedule.next()?;
            let now = Instant::now();
            if self.deadline.is_some_and(|at| now >= at) {
                return None;
            }
            if self.overrun_at.is_some_and(|at| now >= at) {
                self.overran.store(true, Ordering::Relaxed);
                return None;
            }
            let warmup = slot.warmup.unwrap_or(now < self.warmup_end);
            if !warmup {
                if self.quota.is_some_and(|q| d.measured >= q) {
                    return None;
                }
                d.measured += 1;
            }
            let j = d.claimed;
            d.claimed += 1;
            Some((slot, j, warmup))
        })();
        match taken {
            Some(t) => {
                self.waiting.fetch_add(1, Ordering::Relaxed);
                Some(t)
            }
            None => {
                // Under the lock: no other caller takes the schedule further.
                self.finish();
                None
            }
        }
    }
}

/// The event of each slot, shared by the workers.
pub(super) struct EventFeed {
    pub(super) source: EventSource,
    /// Generator threads' queues: thread `t` makes the partition's events `j ≡ t (mod threads)`,
    /// handed over in chunks. Behind an async lock because only generation ever has to wait.
    pub(super) generated: tokio::sync::Mutex<Vec<mpsc::Receiver<Vec<Arc<Prepared>>>>>,
    /// Per queue, the events of its last chunk not yet taken (the first chunk is taken by
    /// [`EventFeed::prime`] before the clock starts).
    pub(super) ready: std::sync::Mutex<Vec<VecDeque<Arc<Prepared>>>>,
    /// No generator threads: each event is made when its slot is taken (the partition maps the
    /// slot to its global index). Under [`Runtimes::Current`]; and in the closed model when every
    /// event is small (see [`INLINE_EVENT_MAX`]).
    pub(super) inline: Option<Partition>,
}

/// In the closed model there is no schedule to keep: a caller can make its next event itself, on
/// its own thread, just before sending it (as a k6 VU builds its request). For small events that
/// is cheaper than any hand-over: no generator thread to wake, the event still in the cache that
/// sends and judges it, its memory freed where it was made. Making one takes microseconds, during
/// which the thread's other callers wait no longer than for one answer to be judged; the send is
/// timed after it. Events that may be bigger than this (by the configuration's own bounds) are
/// still made ahead by generator threads, so a multi-megabyte batch never holds up a thread's
/// callers.
pub(super) const INLINE_EVENT_MAX: usize = 64 * 1024;

/// Every event `config` can make is at most about [`INLINE_EVENT_MAX`] bytes of record data.
fn small(config: &GenConfig) -> bool {
    config
        .records
        .end()
        .saturating_mul(config.max_record_wire())
        <= INLINE_EVENT_MAX
}

/// Chunks a generator thread may have queued ahead of the schedule (besides the one it is making
/// and the one being taken from): enough to hide generation time, few enough that look-ahead of
/// 6 MB batches stays small.
pub(super) const LOOKAHEAD_PER_THREAD: usize = 2;

/// A generator thread hands its events over in chunks of up to this many events or bytes. One
/// event at a time, each hand-over woke a parked worker thread and each take woke the parked
/// generator — a context switch per event, which on a 2-core machine cost more than a third of
/// a small generated invocation. A 6 MB batch still goes alone.
pub(super) const CHUNK_EVENTS: usize = 32;
pub(super) const CHUNK_BYTES: usize = 256 * 1024;

impl EventFeed {
    /// `closed`: the closed model (no schedule to keep).
    pub(super) fn new(
        source: &EventSource,
        partition: Partition,
        runtimes: Runtimes,
        closed: bool,
    ) -> EventFeed {
        let mut generated = Vec::new();
        let by_the_sender = match source {
            EventSource::Generate { config, .. } => closed && small(config),
            _ => false,
        };
        let inline = (runtimes == Runtimes::Current || by_the_sender).then_some(partition);
        if let (EventSource::Generate { config, seed }, None) = (source, inline) {
            let threads = std::thread::available_parallelism()
                .map_or(1, |n| n.get())
                .clamp(1, 4) as u64;
            for t in 0..threads {
                let (tx, rx) = mpsc::channel(LOOKAHEAD_PER_THREAD);
                let config: GenConfig = config.clone();
                let seed = *seed;
                let spawned = std::thread::Builder::new()
                    .name(format!("load-gen-{t}"))
                    .spawn(move || {
                        let mut j = t;
                        loop {
                            let mut chunk = Vec::new();
                            let mut bytes = 0;
                            while chunk.len() < CHUNK_EVENTS && bytes < CHUNK_BYTES {
                                let index = partition.global(j);
                                let event = Arc::new(Prepared::generated(&config, seed, index));
                                bytes += event.bytes.len();
                                chunk.push(event);
                                j += threads;
                            }
                            // The engine is done when nobody listens any more.
                            if tx.blocking_send(chunk).is_err() {
                                return;
                            }
                        }
                    });
                if spawned.is_ok() {
                    generated.push(rx);
                }
            }
        }
        EventFeed {
            source: source.clone(),
            ready: std::sync::Mutex::new(vec![VecDeque::new(); generated.len()]),
            generated: tokio::sync::Mutex::new(generated),
            inline,
        }
    }

    /// The next ready event of queue `i`, if its current chunk has one left.
    fn take_ready(&self, i: usize) -> Option<Arc<Prepared>> {
        self.ready
            .lock()
            .unwrap_or_else(|p| p.into_inner())
            .get_mut(i)?
            .pop_front()
    }

    /// Keep a chunk's events, the first excepted, for the next takers of queue `i`; the first.
    fn keep(&self, i: usize, chunk: Vec<Arc<Prepared>>) -> Option<Arc<Prepared>> {
        let mut events = chunk.into_iter();
        let first = events.next();
        if let Some(q) = self
            .ready
            .lock()
            .unwrap_or_else(|p| p.into_inner())
            .get_mut(i)
        {
            q.extend(events);
        }
        first
    }

    /// Wait until every generator has its first event ready, so the run's clock starts with events
    /// in hand: a multi-megabyte first batch must not count as the target's lateness.
    pub(super) async fn prime(&self) {
        let mut queues = self.generated.lock().await;
        for (i, q) in queues.iter_mut().enumerate() {
            if let Some(chunk) = q.recv().await {
                let mut events = VecDeque::from(chunk);
                if let Some(ready) = self
                    .ready
                    .lock()
                    .unwrap_or_else(|p| p.into_inner())
                    .get_mut(i)
                {
                    ready.append(&mut events);
                }
            }
        }
    }

    /// Every slot's event can be had without waiting (`--event`, `--event-pool`).
    pub(super) fn always_at_hand(&self) -> bool {
        matches!(self.source, EventSource::Fixed(_) | EventSource::Pool(_))
    }

    /// A copy of the fixed event (`--event`) for one worker thread, its bytes in memory of their
    /// own (see `ThreadShare`); `None` for other sources.
    pub(super) fn fixed_copy(&self) -> Option<Arc<Prepared>> {
        match &self.source {
            EventSource::Fixed(e) => Some(Arc::new(Prepared {
                bytes: bytes::Bytes::copy_from_slice(&e.bytes),
                view: e.view.clone(),
                spec: e.spec.clone(),
                origin: e.origin.clone(),
            })),
            _ => None,
        }
    }

    /// The event of the partition's `j`-th slot, global index `k`, if it can be had without
    /// waiting: the fixed event (the caller's thread's copy, `fixed`, where it has one), the
    /// pool's, or a generated one already handed over.
    pub(super) fn at_hand(
        &self,
        j: u64,
        k: u64,
        fixed: Option<&Arc<Prepared>>,
    ) -> Option<Arc<Prepared>> {
        match &self.source {
            EventSource::Fixed(e) => Some(fixed.unwrap_or(e).clone()),
            EventSource::Pool(pool) => pool.get((k % pool.len().max(1) as u64) as usize).cloned(),
            EventSource::Generate { .. } if self.inline.is_some() => None,
            EventSource::Generate { .. } => {
                let n = self.ready.lock().unwrap_or_else(|p| p.into_inner()).len() as u64;
                if n == 0 {
                    return None;
                }
                self.take_ready((j % n) as usize)
            }
        }
    }

    /// Make the partition's `j`-th event here, when events are made by their senders.
    pub(super) fn make(&self, j: u64) -> Option<Arc<Prepared>> {
        let (EventSource::Generate { config, seed }, Some(partition)) = (&self.source, self.inline)
        else {
            return None;
        };
        Some(Arc::new(Prepared::generated(
            config,
            *seed,
            partition.global(j),
        )))
    }

    /// The partition's `j`-th event from the generator threads, waiting for its chunk (when it
    /// was not [at hand](EventFeed::at_hand)); `None` without generator threads.
    pub(super) async fn handed_over(&self, j: u64) -> Option<Arc<Prepared>> {
        let n = self.ready.lock().unwrap_or_else(|p| p.into_inner()).len() as u64;
        if n == 0 {
            return None;
        }
        let i = (j % n) as usize;
        let mut queues = self.generated.lock().await;
        // Another worker may have fetched the next chunk while this one waited.
        if let Some(e) = self.take_ready(i) {
            return Some(e);
        }
        let chunk = queues.get_mut(i)?.recv().await?;
        self.keep(i, chunk)
    }
}

#[cfg(test)]
mod tests {
    use firehose_generators::payload::{Compression, PayloadFamily};

    use super::*;

    #[test]
    fn only_configurations_bounded_to_small_events_are_made_by_their_senders() {
        let bench = GenConfig {
            families: vec![PayloadFamily::Json],
            compressions: vec![Compression::None],
            records: 1..=8,
            record_size: 256..=1024,
            ..GenConfig::default()
        };
        assert!(small(&bench));
        // Unbounded record counts, or records that may be a megabyte: made ahead, on threads.
        assert!(!small(&GenConfig::default()));
        assert!(!small(&GenConfig {
            records: 1..=8,
            ..GenConfig::default()
        }));
        assert!(!small(&GenConfig {
            records: 1..=500,
            ..bench
        }));
    }
}
