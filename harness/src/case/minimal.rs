//! The smallest failing case found for one failure, with what it took to get there.

use std::collections::BTreeSet;

use bytes::Bytes;
use firehose_generators::wire::EventView;
use firehose_generators::{BatchSpec, Dimension};

use super::groups::ShrinkSummary;
use super::input::{Input, Origin};
use crate::contract::Verdict;
use crate::invocation::Invocation;

/// The smallest failing case found, with what it took to get there.
#[derive(Debug, Clone)]
pub struct Minimal {
    pub spec: Option<BatchSpec>,
    pub bytes: Bytes,
    pub view: EventView,
    pub inv: Invocation,
    pub verdict: Verdict,
    pub origin: Origin,
    pub flaky: bool,
    pub summary: Option<ShrinkSummary>,
    pub depends_on: BTreeSet<Dimension>,
}

impl Minimal {
    /// The case as it failed, not shrunk (shrinking off, impossible, or `load`).
    pub fn unshrunk(input: &Input, inv: &Invocation, verdict: &Verdict) -> Minimal {
        Minimal {
            spec: input.spec.clone(),
            bytes: input.bytes.clone(),
            view: input.view.clone(),
            inv: inv.clone(),
            verdict: verdict.clone(),
            origin: input.origin.clone(),
            flaky: false,
            summary: None,
            depends_on: BTreeSet::new(),
        }
    }

    /// The case as it failed, from its parts: for callers that keep no [`Input`] (`load`).
    pub fn of(
        bytes: Bytes,
        view: EventView,
        spec: Option<BatchSpec>,
        origin: Origin,
        inv: &Invocation,
        verdict: &Verdict,
    ) -> Minimal {
        Minimal {
            spec,
            bytes,
            view,
            inv: inv.clone(),
            verdict: verdict.clone(),
            origin,
            flaky: false,
            summary: None,
            depends_on: BTreeSet::new(),
        }
    }
}
