//! One instance's side of the Runtime API as a small state machine: the pool drops an event into
//! the inbox with a reply slot; `/next` moves it in flight; `/response`, `/error`, `/init/error`
//! or the process's death complete the reply slot exactly once.
//!
//! ```text
//!   Init ──/next──► Idle ──/next + event──► Busy(id) ──/response|/error(id)──► Idle
//!    │                                         │
//!    └──/init/error──► InitFailed              └── process exits ──► Exited (from any state)
//! ```
//!
//! Protocol errors, as the real Runtime API answers them: an id that is not in flight or was
//! already answered is 400 `InvalidRequestID`; a call that does not fit the state (`/response`
//! before any `/next`, `/next` while an invocation is in flight, `/init/error` after init) is 403
//! `InvalidStateTransition`.
//!
//! A runtime that breaks the protocol, or whose answer the emulator refuses, is not trusted with
//! another event: [`Slot::broke`] moves it to `Broken` (no more events), and the invocation it held
//! fails with the rejection rather than the next batch failing with the runtime's exit.

use std::time::SystemTime;

use std::collections::VecDeque;
use std::time::{Duration, Instant, UNIX_EPOCH};

use bytes::Bytes;
use tokio::sync::oneshot;

use super::error::RuntimeApiError;

/// How many answered ids an instance remembers, to tell "already answered" (400) from "out of
/// order" (403).
const REMEMBERED_IDS: usize = 32;

/// An event on its way to an instance.
#[derive(Debug)]
pub struct Pending {
    pub request_id: String,
    pub event: Bytes,
    /// The function's timeout: its clock starts when `/next` hands it the event (as Lambda's does),
    /// not when the event was queued, so `Lambda-Runtime-Deadline-Ms` is computed at delivery.
    pub timeout: Duration,
    pub reply: oneshot::Sender<Finished>,
    /// Told the moment `/next` hands the event over: the function's clock starts then.
    pub delivered: Option<oneshot::Sender<tokio::time::Instant>>,
}

/// What a reply slot receives: how the invocation ended and how long the function had it.
#[derive(Debug)]
pub struct Finished {
    pub reply: Reply,
    /// From delivery (`/next` answered) to the end; `None` when the event was never delivered.
    pub ran: Option<Duration>,
}

/// How an invocation ended, seen from the instance.
#[derive(Debug)]
pub enum Reply {
    /// `/response`: the body as received (at most the read cap), its full size.
    Response {
        body: Bytes,
        size: usize,
        truncated: bool,
    },
    /// `/error`.
    Error(ErrorReport),
    /// `/init/error` while this invocation's cold start was under way.
    InitError(ErrorReport),
    /// The process died first.
    Exited { status: String },
    /// The runtime broke the protocol, or posted an answer the emulator refused: the invocation
    /// fails with that, and the instance is retired.
    Rejected {
        error: RuntimeApiError,
        /// What the runtime did, in words (`POST /response for an id not in flight`).
        what: String,
    },
}

/// A runtime's `/error` or `/init/error` post: the body as posted (or a JSON object wrapping it),
/// and the `errorType`/`errorMessage` read from it.
#[derive(Debug, Clone)]
pub struct ErrorReport {
    pub body: Bytes,
    pub error_type: String,
    pub message: Option<String>,
}

/// What `/next` should do.
#[derive(Debug)]
pub enum Next {
    /// Hand this event to the runtime; it is now in flight.
    Deliver {
        request_id: String,
        event: Bytes,
        deadline_ms: u64,
    },
    /// Nothing yet: wait to be woken.
    Wait,
    Reject(RuntimeApiError),
}

#[derive(Debug)]
struct InFlight {
    request_id: String,
    reply: oneshot::Sender<Finished>,
    delivered: Instant,
}

#[derive(Debug)]
enum Phase {
    Init,
    Idle,
    Busy(InFlight),
    InitFailed,
    /// Broke the protocol: takes no more events and waits to be killed.
    Broken,
    Exited,
}

/// One instance's Runtime API state.
#[derive(Debug)]
pub struct Slot {
    phase: Phase,
    inbox: Option<Pending>,
    answered: VecDeque<String>,
}

impl Default for Slot {
    fn default() -> Self {
        Slot {
            phase: Phase::Init,
            inbox: None,
            answered: VecDeque::new(),
        }
    }
}

impl Slot {
    /// Give the instance an event; it comes back when the instance cannot take it (dead, or
    /// already holding one — the pool never does that).
    pub fn dispatch(&mut self, pending: Pending) -> Result<(), Pending> {
        match self.phase {
            Phase::Exited | Phase::InitFailed | Phase::Broken | Phase::Busy(_) => Err(pending),
            Phase::Init | Phase::Idle if self.inbox.is_some() => Err(pending),
            Phase::Init | Phase::Idle => {
                self.inbox = Some(pending);
                Ok(())
            }
        }
    }

    /// `GET /next`. The flag is true on the first call: the runtime finished initialising.
    pub fn poll_next(&mut self) -> (Next, bool) {
        let first = matches!(self.phase, Phase::Init);
        match self.phase {
            Phase::Init | Phase::Idle => {}
            _ => return (Next::Reject(RuntimeApiError::InvalidStateTransition), false),
        }
        self.phase = Phase::Idle;
        let Some(p) = self.inbox.take() else {
            return (Next::Wait, first);
        };
        self.phase = Phase::Busy(InFlight {
            request_id: p.request_id.clone(),
            reply: p.reply,
            delivered: Instant::now(),
        });
        if let Some(tell) = p.delivered {
            let _ = tell.send(tokio::time::Instant::now());
        }
        let next = Next::Deliver {
            request_id: p.request_id,
            event: p.event,
            deadline_ms: deadline_ms(p.timeout),
        };
        (next, first)
    }

    /// `POST /{id}/response` or `/{id}/error`: the reply slot to complete and when the event was
    /// delivered.
    pub fn answer(
        &mut self,
        request_id: &str,
    ) -> Result<(oneshot::Sender<Finished>, Instant), RuntimeApiError> {
        if self.answered.iter().any(|a| a == request_id) {
            return Err(RuntimeApiError::InvalidRequestId);
        }
        match &self.phase {
            Phase::Busy(f) if f.request_id == request_id => {}
            Phase::Busy(_) => return Err(RuntimeApiError::InvalidRequestId),
            _ => return Err(RuntimeApiError::InvalidStateTransition),
        }
        let Phase::Busy(f) = std::mem::replace(&mut self.phase, Phase::Idle) else {
            unreachable!("matched Busy above")
        };
        if self.answered.len() == REMEMBERED_IDS {
            self.answered.pop_front();
        }
        self.answered.push_back(f.request_id);
        Ok((f.reply, f.delivered))
    }

    /// `POST /init/error`: the invocation whose cold start just failed, if one was waiting.
    pub fn init_error(&mut self) -> Result<Option<Pending>, RuntimeApiError> {
        match self.phase {
            Phase::Init => {
                self.phase = Phase::InitFailed;
                Ok(self.inbox.take())
            }
            _ => Err(RuntimeApiError::InvalidStateTransition),
        }
    }

    /// The process died: every reply slot still open (with its delivery time), to be told so.
    pub fn exited(&mut self) -> Vec<(oneshot::Sender<Finished>, Option<Instant>)> {
        self.close(Phase::Exited)
    }

    /// Move to a final phase; the reply slots still open, with their delivery times.
    fn close(&mut self, to: Phase) -> Vec<(oneshot::Sender<Finished>, Option<Instant>)> {
        let phase = std::mem::replace(&mut self.phase, to);
        let mut open = Vec::new();
        if let Phase::Busy(f) = phase {
            open.push((f.reply, Some(f.delivered)));
        }
        if let Some(p) = self.inbox.take() {
            open.push((p.reply, None));
        }
        open
    }

    /// The runtime broke the protocol (or had an answer refused): take no more events. Returns the
    /// reply slots still open (with their delivery times), to be failed with the rejection; none
    /// when the instance is already dead or broken.
    pub fn broke(&mut self) -> Vec<(oneshot::Sender<Finished>, Option<Instant>)> {
        match self.phase {
            Phase::Exited | Phase::InitFailed | Phase::Broken => Vec::new(),
            _ => self.close(Phase::Broken),
        }
    }

    /// Whether the runtime broke the protocol (rather than died).
    pub fn is_broken(&self) -> bool {
        matches!(self.phase, Phase::Broken)
    }

    /// Whether the runtime has not asked for its first event yet.
    pub fn initialising(&self) -> bool {
        matches!(self.phase, Phase::Init)
    }

    /// When the invocation in flight was delivered, if one is.
    pub fn delivered_at(&self) -> Option<Instant> {
        match &self.phase {
            Phase::Busy(f) => Some(f.delivered),
            _ => None,
        }
    }

    pub fn is_dead(&self) -> bool {
        matches!(
            self.phase,
            Phase::Exited | Phase::InitFailed | Phase::Broken
        )
    }
}

/// Epoch milliseconds `timeout` from now: `Lambda-Runtime-Deadline-Ms`.
pub fn deadline_ms(timeout: Duration) -> u64 {
    (SystemTime::now() + timeout)
        .duration_since(UNIX_EPOCH)
        .unwrap_or_default()
        .as_millis() as u64
}

#[cfg(test)]
mod tests {
    use super::*;

    fn pending(id: &str) -> (Pending, oneshot::Receiver<Finished>) {
        let (tx, rx) = oneshot::channel();
        let p = Pending {
            request_id: id.into(),
            event: Bytes::from_static(b"{}"),
            timeout: Duration::from_secs(1),
            reply: tx,
            delivered: None,
        };
        (p, rx)
    }

    #[test]
    fn the_happy_path_delivers_then_answers_once() {
        let mut s = Slot::default();
        let (next, first) = s.poll_next();
        assert!(matches!(next, Next::Wait) && first);
        let (p, _rx) = pending("a");
        s.dispatch(p).unwrap();
        let (next, first) = s.poll_next();
        assert!(!first);
        assert!(matches!(next, Next::Deliver { ref request_id, .. } if request_id == "a"));
        assert!(s.delivered_at().is_some());
        assert!(s.answer("a").is_ok());
        assert_eq!(
            s.answer("a").unwrap_err(),
            RuntimeApiError::InvalidRequestId
        );
        assert!(matches!(s.poll_next().0, Next::Wait));
    }

    #[test]
    fn out_of_order_calls_are_403_and_unknown_ids_400() {
        let mut s = Slot::default();
        assert_eq!(
            s.answer("x").unwrap_err(),
            RuntimeApiError::InvalidStateTransition
        );
        let (p, _rx) = pending("a");
        s.dispatch(p).unwrap();
        s.poll_next();
        assert_eq!(
            s.answer("other").unwrap_err(),
            RuntimeApiError::InvalidRequestId
        );
        assert!(matches!(
            s.poll_next().0,
            Next::Reject(RuntimeApiError::InvalidStateTransition)
        ));
        assert_eq!(
            s.init_error().unwrap_err(),
            RuntimeApiError::InvalidStateTransition
        );
        let (p, _rx2) = pending("b");
        assert!(s.dispatch(p).is_err(), "one invocation at a time");
    }

    #[test]
    fn an_init_error_fails_the_waiting_cold_start() {
        let mut s = Slot::default();
        let (p, _rx) = pending("cold");
        s.dispatch(p).unwrap();
        let waiting = s.init_error().unwrap();
        assert_eq!(waiting.unwrap().request_id, "cold");
        assert!(s.is_dead());
        assert!(matches!(s.poll_next().0, Next::Reject(_)));
    }

    #[test]
    fn the_deadline_is_set_at_delivery_and_delivery_is_told() {
        let mut s = Slot::default();
        let (tx, _rx) = oneshot::channel();
        let (told, mut delivered) = oneshot::channel();
        s.dispatch(Pending {
            request_id: "a".into(),
            event: Bytes::from_static(b"{}"),
            timeout: Duration::from_secs(60),
            reply: tx,
            delivered: Some(told),
        })
        .unwrap();
        assert!(delivered.try_recv().is_err(), "not before /next");
        let before = deadline_ms(Duration::from_secs(60));
        let Next::Deliver { deadline_ms: d, .. } = s.poll_next().0 else {
            panic!("delivered")
        };
        assert!(d >= before && d <= before + 1_000, "{d} vs {before}");
        assert!(delivered.try_recv().is_ok());
    }

    #[test]
    fn a_broken_runtime_gives_up_its_invocation_and_takes_no_more() {
        let mut s = Slot::default();
        let (p, _rx) = pending("a");
        s.dispatch(p).unwrap();
        s.poll_next();
        assert_eq!(s.broke().len(), 1, "the invocation in flight is failed");
        assert!(s.is_dead());
        let (p, _rx) = pending("b");
        assert!(s.dispatch(p).is_err());
        assert!(s.broke().is_empty(), "once");
        assert!(matches!(s.poll_next().0, Next::Reject(_)));
    }

    #[test]
    fn a_death_opens_every_reply_slot_and_refuses_new_events() {
        let mut s = Slot::default();
        let (p, _rx) = pending("a");
        s.dispatch(p).unwrap();
        s.poll_next();
        assert_eq!(s.exited().len(), 1);
        let (p, _rx) = pending("b");
        assert!(s.dispatch(p).is_err());
        assert!(s.exited().is_empty());
    }
}
