//! Why a run ended before its plan did: one enum for `check` and `load`.

/// Why a run ended before its plan did.
#[derive(Debug, Clone, PartialEq, Eq)]
pub enum Stopped {
    /// Ctrl-C.
    Interrupted,
    /// `check --deadline` was reached.
    Deadline,
    /// `check --max-failures` failing cases were found.
    MaxFailures,
    /// `--max-hangs` invocations in a row got no answer.
    Hanging,
    /// A `:abort` threshold was breached (`load`).
    Threshold(String),
    /// The target could not be reached before anything answered.
    Unreachable,
    /// Open model: sends fell further behind the schedule than the grace period, so the slots
    /// still unsent were given up (k6's dropped iterations) instead of running for hours.
    Overrun { unsent: u64 },
}

impl Stopped {
    /// The stable name reports use (`stopped_early`).
    pub fn name(&self) -> &'static str {
        match self {
            Stopped::Interrupted => "interrupted",
            Stopped::Deadline => "deadline",
            Stopped::MaxFailures => "max-failures",
            Stopped::Hanging => "hanging",
            Stopped::Threshold(_) => "threshold",
            Stopped::Unreachable => "unreachable",
            Stopped::Overrun { .. } => "overrun",
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn names_are_the_report_strings() {
        assert_eq!(Stopped::MaxFailures.name(), "max-failures");
        assert_eq!(Stopped::Hanging.name(), "hanging");
        assert_eq!(Stopped::Overrun { unsent: 3 }.name(), "overrun");
    }
}
