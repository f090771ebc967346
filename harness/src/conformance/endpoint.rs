//! Is anything at the target's address a transformer at all?
//!
//! A plain `http://` target pointed at the wrong path, or at an Invoke API server, answers every
//! call 404 or with a web page. Judged as answers, those would be reported as the function failing
//! (`invocation_succeeded`, exit 1) and saved as a regression forever. So the first
//! [`PROBE_CALLS`] answers are held back: if every one of them looks like a wrong address and none
//! is a 2xx JSON answer, the run ends with exit 4 instead; otherwise they are judged as usual.

use crate::invocation::{Invocation, Outcome};

/// How many first answers decide.
pub const PROBE_CALLS: u32 = 3;

/// Calls that broke off (neither a wrong address nor a transformer's answer) the probe waits
/// through before it judges anyway.
const MAX_UNDECIDED: u32 = 10;

/// What to do with an answer.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Probe {
    /// Judge it now (and release anything held).
    Judge,
    /// Hold it: it looks like a wrong address, and the probe has not decided yet.
    Hold,
    /// Every first answer looked like a wrong address: nothing there is a transformer.
    WrongEndpoint,
}

/// The probe's state over the first answers of a run.
#[derive(Debug, Default)]
pub struct EndpointProbe {
    calls: u32,
    wrong: u32,
    decided: bool,
    /// What the wrong answers were, for the error: "HTTP 404", "an HTML page".
    last_wrong: Option<String>,
}

impl EndpointProbe {
    pub fn observe(&mut self, inv: &Invocation) -> Probe {
        if self.decided {
            return Probe::Judge;
        }
        self.calls += 1;
        if matches!(inv.outcome, Outcome::Broken(_)) {
            // Cut off while the event was still being written: a server that answered without
            // reading the request (a 404 page does) or a crash. Neither decides.
            if self.calls >= MAX_UNDECIDED {
                self.decided = true;
                return Probe::Judge;
            }
            return Probe::Hold;
        }
        match wrong_address(inv) {
            Some(what) => {
                self.wrong += 1;
                self.last_wrong = Some(what);
                if self.wrong >= PROBE_CALLS {
                    self.decided = true;
                    Probe::WrongEndpoint
                } else {
                    Probe::Hold
                }
            }
            None => {
                self.decided = true;
                Probe::Judge
            }
        }
    }

    /// The run ended while answers were held: a wrong endpoint if any looked like one (and none
    /// was a transformer's answer), otherwise judge them.
    pub fn at_end(&self) -> Probe {
        if !self.decided && self.wrong > 0 {
            Probe::WrongEndpoint
        } else {
            Probe::Judge
        }
    }

    /// "the first 3 calls got HTTP 404".
    pub fn reason(&self) -> String {
        format!(
            "{} of the first {} calls got {} and none a transformer's answer",
            self.wrong,
            self.calls,
            self.last_wrong.as_deref().unwrap_or("no answer")
        )
    }
}

/// Does this answer say "nothing here" rather than "a function answered"?
fn wrong_address(inv: &Invocation) -> Option<String> {
    if inv.outcome != Outcome::Answered || inv.function_error.is_some() {
        return None;
    }
    if let Some(status @ (404 | 405)) = inv.status {
        return Some(format!("HTTP {status}"));
    }
    let head = &inv.body[..inv.body.len().min(512)];
    let text = String::from_utf8_lossy(head).to_ascii_lowercase();
    let text = text.trim_start();
    (text.starts_with("<!doctype html") || text.starts_with("<html"))
        .then(|| "an HTML page".to_string())
}

#[cfg(test)]
mod tests {
    use std::time::Duration;

    use bytes::Bytes;

    use super::*;

    fn answer(status: u16, body: &str) -> Invocation {
        Invocation::answered(Some(status), Bytes::from(body.to_string()), Duration::ZERO)
    }

    #[test]
    fn three_404s_are_a_wrong_endpoint() {
        let mut p = EndpointProbe::default();
        assert_eq!(p.observe(&answer(404, "Not Found")), Probe::Hold);
        assert_eq!(p.observe(&answer(404, "")), Probe::Hold);
        assert_eq!(p.observe(&answer(405, "")), Probe::WrongEndpoint);
        assert_eq!(
            p.reason(),
            "3 of the first 3 calls got HTTP 405 and none a transformer's answer"
        );
    }

    #[test]
    fn html_pages_are_a_wrong_endpoint() {
        let mut p = EndpointProbe::default();
        for _ in 0..2 {
            assert_eq!(
                p.observe(&answer(200, "\n<!DOCTYPE html><html>hi</html>")),
                Probe::Hold
            );
        }
        assert_eq!(p.observe(&answer(200, "<html>")), Probe::WrongEndpoint);
    }

    #[test]
    fn one_real_answer_decides_for_judging() {
        let mut p = EndpointProbe::default();
        assert_eq!(p.observe(&answer(404, "")), Probe::Hold);
        assert_eq!(p.observe(&answer(200, r#"{"records":[]}"#)), Probe::Judge);
        // Decided: later 404s are the transformer's own answers.
        for _ in 0..5 {
            assert_eq!(p.observe(&answer(404, "")), Probe::Judge);
        }
    }

    #[test]
    fn broken_calls_do_not_decide() {
        let mut p = EndpointProbe::default();
        let broken = Invocation::broken("Broken pipe", Duration::ZERO);
        assert_eq!(p.observe(&broken), Probe::Hold);
        assert_eq!(p.observe(&answer(404, "")), Probe::Hold);
        assert_eq!(p.observe(&answer(404, "")), Probe::Hold);
        assert_eq!(p.observe(&answer(404, "")), Probe::WrongEndpoint);
        let mut p = EndpointProbe::default();
        assert_eq!(p.observe(&broken), Probe::Hold);
        assert_eq!(p.at_end(), Probe::Judge);
        for _ in 1..MAX_UNDECIDED - 1 {
            assert_eq!(p.observe(&broken), Probe::Hold);
        }
        assert_eq!(p.observe(&broken), Probe::Judge);
    }

    #[test]
    fn a_500_or_a_function_error_is_the_functions_own_answer() {
        let mut p = EndpointProbe::default();
        assert_eq!(p.observe(&answer(500, "boom")), Probe::Judge);
        let mut p = EndpointProbe::default();
        let mut inv = answer(404, "");
        inv.function_error = Some(crate::invocation::FunctionError {
            kind: "Unhandled".into(),
            message: None,
        });
        assert_eq!(p.observe(&inv), Probe::Judge);
    }
}
