use std::collections::BTreeMap;
use std::time::{Duration, Instant};

use bytes::Bytes;
use firehose_generators::strategies::mutate;
use firehose_generators::strategies::{boundary_corners, sample};
use firehose_generators::wire::EventView;
use firehose_generators::{BatchSpec, Event, GenConfig};
use hdrhistogram::Histogram;
use tokio_util::sync::CancellationToken;

use super::CheckPlan;
use super::endpoint::{EndpointProbe, Probe};
use super::groups::FailureGroup;
use super::persist::{self, SavedCase};
use super::shrink::{self, Minimal};
use crate::contract::{self, CheckId, MAX_FAILURE_KEYS, RecordResults, Severity, Verdict};
use crate::events::{EventSink, Phase, RunEvent};
use crate::invocation::Invocation;
use crate::targets::{Target, TargetError};

/// Cases planned, run and failed in one phase.
#[derive(Debug, Clone, Copy, Default, PartialEq, Eq)]
pub struct PhaseTally {
    pub planned: u64,
    pub run: u64,
    pub failed: u64,
}

/// What a `check` run found.
#[derive(Debug)]
pub struct CheckOutcome {
    pub target: String,
    pub seed: u64,
    pub phases: BTreeMap<Phase, PhaseTally>,
    pub groups: Vec<FailureGroup>,
    /// Violations per check over the run.
    pub check_counts: BTreeMap<CheckId, u64>,
    /// Violations per check of distinct failures beyond the first [`MAX_FAILURE_KEYS`]: counted,
    /// not listed (`failures_truncated`).
    pub overflow: BTreeMap<CheckId, u64>,
    pub results: RecordResults,
    pub records_sent: u64,
    /// Invocation time in microseconds, main-phase cases only (not shrink attempts).
    pub latency: Histogram<u64>,
    /// `deadline`, `max-failures`, `hanging` or `interrupted`.
    pub stopped: Option<&'static str>,
    /// Some invocation got an answer (anything but a timeout): a run cut short for hanging before
    /// one did judged nothing.
    pub answered_any: bool,
    /// Set when the target could not be reached before anything was judged.
    pub unreachable: Option<TargetError>,
    /// Regression folders that could not be read: the run replays the rest, then exits 2.
    pub corrupt_regressions: Vec<(std::path::PathBuf, String)>,
    /// (records, bytes of record data as put) of the largest batch that passed.
    pub largest_passing: Option<(usize, usize)>,
    /// Bytes of record data of the smallest batch that failed, so the report never calls a size
    /// safe when a smaller batch failed.
    pub smallest_failing: Option<usize>,
    pub notes: Vec<String>,
    pub duration: Duration,
}

impl CheckOutcome {
    pub fn failed(&self) -> bool {
        self.groups.iter().any(|g| g.severity == Severity::Error)
    }

    pub fn interrupted(&self) -> bool {
        self.stopped == Some("interrupted")
    }

    /// Cases that got a verdict.
    pub fn judged(&self) -> u64 {
        self.phases.values().map(|t| t.run).sum()
    }

    /// The deadline ended the run before any invocation finished, or the target hung from the first
    /// call: nothing was judged, which must not read as a pass.
    pub fn nothing_judged(&self) -> bool {
        (self.stopped == Some("deadline") && self.judged() == 0)
            || (self.stopped == Some("hanging") && !self.answered_any)
    }
}

/// Why the run loop stops early.
pub(super) enum Stop {
    Deadline,
    Interrupted,
    MaxFailures,
    /// `--max-hangs` invocations in a row got no answer.
    Hanging,
    Unreachable(TargetError),
}

/// One input ready to send.
pub(super) struct Input {
    pub bytes: Bytes,
    pub view: EventView,
    /// Present for generated batches: what shrinking edits.
    pub spec: Option<BatchSpec>,
    /// Present for corpus events that parse: shrinking drops their records.
    pub event: Option<Event>,
    /// Where it came from: a case index, a boundary name, a corpus file.
    pub origin: Origin,
    /// The records' data as put (after producer compression, before base64), summed: the bytes a
    /// buffer hint is about. Unknown for events that do not parse.
    pub data_bytes: Option<usize>,
}

#[derive(Debug, Clone)]
pub(crate) enum Origin {
    Random {
        index: u64,
    },
    /// A random case that mutated a corpus event.
    Mutation {
        index: u64,
        file: String,
    },
    Boundary {
        name: String,
    },
    Corpus {
        file: String,
    },
    Regression {
        dir: String,
    },
}

impl Input {
    pub fn from_spec(spec: BatchSpec, origin: Origin) -> Input {
        let event = spec.materialize();
        Input {
            bytes: Bytes::from(event.to_json()),
            view: EventView::from(&event),
            data_bytes: Some(data_bytes(&event)),
            spec: Some(spec),
            event: None,
            origin,
        }
    }

    pub fn from_event(event: Event, origin: Origin) -> Input {
        Input {
            bytes: Bytes::from(event.to_json()),
            view: EventView::from(&event),
            data_bytes: Some(data_bytes(&event)),
            spec: None,
            event: Some(event),
            origin,
        }
    }

    /// Bytes sent as they are (a regression, a corpus file), with `event` when they parse.
    fn verbatim(bytes: Vec<u8>, view: EventView, event: Option<Event>, origin: Origin) -> Input {
        Input {
            data_bytes: event.as_ref().map(data_bytes),
            bytes: Bytes::from(bytes),
            view,
            spec: None,
            event,
            origin,
        }
    }
}

/// The records' data as put, summed.
fn data_bytes(event: &Event) -> usize {
    event.records.iter().map(|r| r.data.len()).sum()
}

pub(super) struct Runner<'a> {
    pub plan: &'a CheckPlan,
    pub target: &'a dyn Target,
    pub sink: &'a mut dyn EventSink,
    pub cancel: CancellationToken,
    pub deadline: Option<Instant>,
    pub out: CheckOutcome,
    judged_any: bool,
    failing_cases: u64,
    saved: u64,
    /// Decides from the first answers whether a transformer is there at all.
    probe: EndpointProbe,
    /// Answers the probe holds back until it decides.
    held: Vec<(Phase, Input, Invocation, Verdict)>,
    /// Invocations in a row, in completion order, that got no answer.
    hangs_in_a_row: u32,
    /// Regressions to write once the run is known to have judged something.
    pending_regressions: Vec<persist::PreparedRegression>,
}

/// Run `plan` against `target` (already started). Cancel `cancel` to stop early; the outcome so far is
/// returned either way.
pub async fn run_check(
    plan: &CheckPlan,
    target: &dyn Target,
    sink: &mut dyn EventSink,
    cancel: CancellationToken,
) -> CheckOutcome {
    let started = Instant::now();
    let mut runner = Runner {
        plan,
        target,
        sink,
        cancel,
        deadline: plan.deadline.map(|d| started + d),
        out: CheckOutcome {
            target: target.describe(),
            seed: plan.seed,
            phases: BTreeMap::new(),
            groups: Vec::new(),
            check_counts: BTreeMap::new(),
            overflow: BTreeMap::new(),
            results: RecordResults::default(),
            records_sent: 0,
            latency: firehose_reports::histogram::new_latency_histogram(),
            stopped: None,
            answered_any: false,
            unreachable: None,
            corrupt_regressions: Vec::new(),
            largest_passing: None,
            smallest_failing: None,
            notes: Vec::new(),
            duration: Duration::ZERO,
        },
        judged_any: false,
        failing_cases: 0,
        saved: 0,
        probe: EndpointProbe::default(),
        held: Vec::new(),
        hangs_in_a_row: 0,
        pending_regressions: Vec::new(),
    };
    if let Err(stop) = runner.run_phases().await {
        match stop {
            Stop::Deadline => {
                runner.out.stopped = Some("deadline");
                let d = plan.deadline.unwrap_or_default();
                runner.note(format!(
                    "the --deadline of {} was reached; the remaining cases were not run",
                    crate::values::format_duration(d)
                ));
            }
            Stop::Interrupted => {
                runner.out.stopped = Some("interrupted");
                runner.note("interrupted; the report covers the cases run so far".into());
            }
            Stop::MaxFailures => {
                runner.out.stopped = Some("max-failures");
                runner.note(format!(
                    "stopped after {} failing cases (--max-failures)",
                    runner.failing_cases
                ));
            }
            Stop::Hanging => {
                runner.out.stopped = Some("hanging");
                runner.note(format!(
                    "cut short: {} invocations in a row got no answer within {} (--max-hangs); the cases not run were not judged",
                    plan.max_hangs,
                    crate::values::format_duration(plan.timeout)
                ));
            }
            Stop::Unreachable(e) => runner.out.unreachable = Some(e),
        }
    }
    // Nothing from a run that judged nothing is kept as a regression.
    if runner.out.unreachable.is_none() && !runner.out.nothing_judged() {
        for r in std::mem::take(&mut runner.pending_regressions) {
            if let Err(e) = r.write() {
                runner.note(format!("regression could not be saved: {e}"));
            }
        }
    }
    runner.out.duration = started.elapsed();
    runner.out
}

impl Runner<'_> {
    fn note(&mut self, note: String) {
        self.sink.emit(RunEvent::Note(note.clone()));
        self.out.notes.push(note);
    }

    async fn run_phases(&mut self) -> Result<(), Stop> {
        let plan = self.plan;
        for note in &plan.notes {
            self.note(note.clone());
        }
        let regressions = match &plan.regressions {
            Some(dir) => persist::load_regressions(dir),
            None => Ok(persist::Regressions::default()),
        };
        let regressions = regressions.unwrap_or_else(|e| {
            self.note(format!("regressions not replayed: {e}"));
            persist::Regressions::default()
        });
        self.out.corrupt_regressions = regressions.corrupt;
        let regressions = regressions.cases;
        let mut boundary = Vec::new();
        if plan.boundary {
            for corner in boundary_corners(&plan.generator) {
                match corner.spec {
                    Ok(spec) => boundary.push((corner.name, spec)),
                    Err(why) => self.note(format!("boundary case {} skipped: {why}", corner.name)),
                }
            }
        }
        let planned = regressions.len() as u64
            + boundary.len() as u64
            + plan.corpus.len() as u64
            + plan.cases;
        self.sink.emit(RunEvent::Started {
            target: self.out.target.clone(),
            seed: plan.seed,
            planned,
        });
        self.begin(Phase::Regression, regressions.len() as u64);
        for case in regressions {
            let event = Event::from_json(&case.event).ok();
            let input = Input::verbatim(
                case.event,
                case.view,
                event,
                Origin::Regression { dir: case.name },
            );
            self.run_case(Phase::Regression, input).await?;
        }
        self.begin(Phase::Boundary, boundary.len() as u64);
        for (name, spec) in boundary {
            let input = Input::from_spec(spec, Origin::Boundary { name });
            self.run_case(Phase::Boundary, input).await?;
        }
        self.begin(Phase::Corpus, plan.corpus.len() as u64);
        for case in &plan.corpus {
            let view = match EventView::parse(&case.bytes) {
                Ok(v) => v,
                Err(e) => {
                    self.note(format!("corpus file {} skipped: {e}", case.label));
                    continue;
                }
            };
            let input = Input::verbatim(
                case.bytes.clone(),
                view,
                Event::from_json(&case.bytes).ok(),
                Origin::Corpus {
                    file: case.label.clone(),
                },
            );
            self.run_case(Phase::Corpus, input).await?;
        }
        // With a corpus, every fourth random case mutates a real event instead of generating one.
        let seeds: Vec<(&str, Event)> = plan
            .corpus
            .iter()
            .filter_map(|c| Some((c.label.as_str(), Event::from_json(&c.bytes).ok()?)))
            .filter(|(_, e)| plan.generator.sources.contains(&e.source()))
            .collect();
        self.begin(Phase::Random, plan.cases);
        for index in 0..plan.cases {
            let seed = GenConfig::case_seed(plan.seed, index);
            let input = if !seeds.is_empty() && index % 4 == 3 {
                let (label, event) = &seeds[(index / 4) as usize % seeds.len()];
                Input::from_event(
                    mutate(event, seed, &plan.generator),
                    Origin::Mutation {
                        index,
                        file: label.to_string(),
                    },
                )
            } else {
                Input::from_spec(sample(&plan.generator, seed), Origin::Random { index })
            };
            self.run_case(Phase::Random, input).await?;
        }
        // A run shorter than the probe: held answers that looked like a wrong address end it as
        // one; others are judged now.
        if !self.held.is_empty() {
            if self.probe.at_end() == Probe::WrongEndpoint {
                return Err(Stop::Unreachable(TargetError::WrongEndpoint {
                    target: self.out.target.clone(),
                    reason: self.probe.reason(),
                }));
            }
            for (phase, input, inv, verdict) in std::mem::take(&mut self.held) {
                self.judge_case(phase, input, inv, verdict).await?;
            }
        }
        Ok(())
    }

    fn begin(&mut self, phase: Phase, cases: u64) {
        if cases == 0 {
            return;
        }
        self.out.phases.entry(phase).or_default().planned = cases;
        self.sink.emit(RunEvent::PhaseStarted { phase, cases });
    }

    /// Invoke once (twice with `deterministic`) and judge. Deadline and Ctrl-C interrupt the wait.
    pub(super) async fn attempt(&mut self, input: &Input) -> Result<(Invocation, Verdict), Stop> {
        if self.plan.max_hangs > 0 && self.hangs_in_a_row >= self.plan.max_hangs {
            return Err(Stop::Hanging);
        }
        let inv = self.invoke(input.bytes.clone()).await?;
        if inv.unjudged() {
            // Still throttled after its retries: the function never answered, nothing to judge.
            return Ok((inv, Verdict::default()));
        }
        let mut verdict = contract::check(&input.view, &inv, &self.plan.checks);
        if self.plan.checks.contains(CheckId::Deterministic) && !verdict.failed() {
            let again = self.invoke(input.bytes.clone()).await?;
            if let Some(v) = contract::compare_answers(&inv, &again) {
                verdict.push(&self.plan.checks, v);
            }
        }
        Ok((inv, verdict))
    }

    async fn invoke(&mut self, bytes: Bytes) -> Result<Invocation, Stop> {
        if self.cancel.is_cancelled() {
            return Err(Stop::Interrupted);
        }
        let deadline = self.deadline;
        let sleep = async move {
            match deadline {
                Some(d) => tokio::time::sleep_until(d.into()).await,
                None => std::future::pending().await,
            }
        };
        let result = tokio::select! {
            r = self.target.invoke(bytes, self.plan.timeout) => r,
            _ = self.cancel.cancelled() => return Err(Stop::Interrupted),
            _ = sleep => return Err(Stop::Deadline),
        };
        match result {
            Ok(inv) => {
                self.judged_any = true;
                if inv.outcome == crate::invocation::Outcome::TimedOut {
                    self.hangs_in_a_row += 1;
                } else {
                    self.hangs_in_a_row = 0;
                    self.out.answered_any = true;
                }
                Ok(inv)
            }
            Err(e) if !self.judged_any => Err(Stop::Unreachable(e)),
            // Reachable before, gone now: the transformer died under test. That is a finding.
            Err(e) => Ok(Invocation::broken(e.to_string(), Duration::ZERO)),
        }
    }

    async fn run_case(&mut self, phase: Phase, input: Input) -> Result<(), Stop> {
        let (inv, verdict) = self.attempt(&input).await?;
        if inv.unjudged() {
            // Not judged; the target counts it (see `Target::throttles`).
            return Ok(());
        }
        match self.probe.observe(&inv) {
            Probe::Hold => {
                self.held.push((phase, input, inv, verdict));
                return Ok(());
            }
            Probe::WrongEndpoint => {
                return Err(Stop::Unreachable(TargetError::WrongEndpoint {
                    target: self.out.target.clone(),
                    reason: self.probe.reason(),
                }));
            }
            Probe::Judge => {
                for (phase, input, inv, verdict) in std::mem::take(&mut self.held) {
                    self.judge_case(phase, input, inv, verdict).await?;
                }
            }
        }
        self.judge_case(phase, input, inv, verdict).await?;
        if self.plan.max_hangs > 0 && self.hangs_in_a_row >= self.plan.max_hangs {
            return Err(Stop::Hanging);
        }
        Ok(())
    }

    /// Count one answer into the run and file its failures.
    async fn judge_case(
        &mut self,
        phase: Phase,
        input: Input,
        inv: Invocation,
        verdict: Verdict,
    ) -> Result<(), Stop> {
        if let Some(delivery) = &self.plan.delivery {
            delivery.observe(&input.bytes, &inv, &verdict);
        }
        let _ = self
            .out
            .latency
            .record(inv.elapsed.as_micros().max(1) as u64);
        self.out.results.add(&verdict.results);
        self.out.records_sent += input.view.record_ids.len() as u64;
        for (check, n) in &verdict.counts {
            *self.out.check_counts.entry(*check).or_default() += n;
        }
        let failed = verdict.failed();
        let tally = self.out.phases.entry(phase).or_default();
        tally.run += 1;
        if failed {
            tally.failed += 1;
            if let Some(bytes) = input.data_bytes
                && self.out.smallest_failing.is_none_or(|b| bytes < b)
            {
                self.out.smallest_failing = Some(bytes);
            }
        } else if let Some(bytes) = input.data_bytes {
            let size = (input.view.record_ids.len(), bytes);
            if self.out.largest_passing.is_none_or(|(_, b)| size.1 > b) {
                self.out.largest_passing = Some(size);
            }
        }
        self.sink.emit(RunEvent::CaseFinished {
            phase,
            passed: !failed,
            elapsed: inv.elapsed,
            records: input.view.record_ids.len(),
            bytes: input.bytes.len(),
        });
        if verdict.violations.is_empty() {
            return Ok(());
        }
        self.record_failures(phase, &input, &inv, &verdict).await?;
        if failed {
            self.failing_cases += 1;
            if self
                .plan
                .max_failures
                .is_some_and(|max| self.failing_cases >= max)
            {
                return Err(Stop::MaxFailures);
            }
        }
        Ok(())
    }

    async fn record_failures(
        &mut self,
        phase: Phase,
        input: &Input,
        inv: &Invocation,
        verdict: &Verdict,
    ) -> Result<(), Stop> {
        for (check, n) in &verdict.overflow {
            *self.out.overflow.entry(*check).or_default() += n;
        }
        for ((check, fingerprint), count) in &verdict.key_counts {
            if let Some(g) = self
                .out
                .groups
                .iter_mut()
                .find(|g| g.check == *check && &g.fingerprint == fingerprint)
            {
                g.count += count;
                g.cases += 1;
                continue;
            }
            if self.out.groups.len() >= MAX_FAILURE_KEYS {
                *self.out.overflow.entry(*check).or_default() += count;
                continue;
            }
            let mut group = FailureGroup::first_seen(verdict, *check, fingerprint, phase);
            group.minimal_batch = input.spec.as_ref().map(describe_batch);
            self.sink.emit(RunEvent::NewFailure {
                phase,
                check: check.id(),
                message: group.first.message.clone(),
            });
            if group.severity == Severity::Error {
                let minimal = self
                    .minimise(input, inv, verdict, (*check, fingerprint))
                    .await?;
                if let Some(v) = minimal
                    .verdict
                    .violations
                    .iter()
                    .find(|v| v.check == *check && &v.fingerprint == fingerprint)
                {
                    if v.message != group.first.message {
                        group.original_message = Some(group.first.message.clone());
                    }
                    group.first = v.clone();
                }
                group.flaky = minimal.flaky;
                group.shrink = minimal.summary.clone();
                group.depends_on = minimal.depends_on.clone();
                group.minimal_batch = match (&minimal.spec, &minimal.origin) {
                    (Some(spec), _) => Some(describe_batch(spec)),
                    (None, Origin::Corpus { file } | Origin::Mutation { file, .. }) => {
                        Some(format!(
                            "{} of the records of corpus event {file}",
                            minimal.view.record_ids.len()
                        ))
                    }
                    _ => None,
                };
                group.case = self.save(&group, phase, &minimal);
            }
            self.out.groups.push(group);
        }
        Ok(())
    }

    /// Shrink (when allowed and possible) and re-run the minimal case once.
    async fn minimise(
        &mut self,
        input: &Input,
        inv: &Invocation,
        verdict: &Verdict,
        key: (CheckId, &String),
    ) -> Result<Minimal, Stop> {
        let mut minimal = match (&input.spec, &input.event, self.plan.shrink.enabled) {
            (Some(spec), _, true) => {
                shrink::shrink_spec(self, spec.clone(), input, inv, verdict, key).await
            }
            (None, Some(event), true) => {
                shrink::shrink_event(self, event.clone(), input, inv, verdict, key).await
            }
            _ => Minimal::unshrunk(input, inv, verdict),
        };
        // Re-run: a failure that does not come back is flaky, not fixed.
        let again = Input {
            bytes: minimal.bytes.clone(),
            view: minimal.view.clone(),
            spec: None,
            event: None,
            origin: input.origin.clone(),
            data_bytes: None,
        };
        // A deadline or Ctrl-C here must not lose the case: save it, the main loop stops next.
        if let Ok((_, rerun)) = self.attempt(&again).await {
            minimal.flaky = !rerun.key_counts.contains_key(&(key.0, key.1.clone()));
        }
        Ok(minimal)
    }

    fn save(&mut self, group: &FailureGroup, phase: Phase, minimal: &Minimal) -> Option<String> {
        self.saved += 1;
        let name = format!("{:04}-{}", self.saved, group.check.id());
        let case = SavedCase {
            name: &name,
            target: self.target,
            seed: self.plan.seed,
            origin: &minimal.origin,
            phase,
            group,
            minimal,
        };
        let mut wrote = None;
        if let Some(dir) = &self.plan.cases_dir {
            match persist::write_case(&dir.join(&name), &case) {
                Ok(()) => {
                    self.sink.emit(RunEvent::CaseSaved {
                        dir: dir.join(&name),
                    });
                    wrote = Some(name.clone());
                }
                Err(e) => self.note(format!("case {name} could not be saved: {e}")),
            }
        }
        if let Some(dir) = &self.plan.regressions
            && phase != Phase::Regression
        {
            match persist::prepare_regression(dir, &case) {
                Ok(r) => self.pending_regressions.push(r),
                Err(e) => self.note(format!(
                    "regression could not be saved under {}: {e}",
                    dir.display()
                )),
            }
        }
        wrote
    }
}

/// "1 record from direct-put, 65,537 bytes of record data: text, 65537 bytes" — sizes are the
/// records' data as put, never the requested content size (a CloudWatch Logs envelope asked for 0
/// bytes is still 333).
pub(crate) fn describe_batch(spec: &BatchSpec) -> String {
    let records = describe_records(spec);
    let n = records.len();
    let total: usize = records.iter().map(|(bytes, _)| bytes).sum();
    let head = format!(
        "{} record{} from {}, {} bytes of record data",
        n,
        if n == 1 { "" } else { "s" },
        spec.source,
        crate::values::format_count(total as u64),
    );
    let shown: Vec<&str> = records.iter().take(3).map(|(_, d)| d.as_str()).collect();
    let more = if n > 3 {
        format!("; … {} more", n - 3)
    } else {
        String::new()
    };
    format!("{head}: {}{more}", shown.join("; "))
}

/// Each record of `spec` with its data's size as put, described.
pub(crate) fn describe_records(spec: &BatchSpec) -> Vec<(usize, String)> {
    spec.records
        .iter()
        .map(|r| {
            let bytes = r.payload().len();
            let mut s = format!("{}, {bytes} bytes", r.family.describe(r.variant));
            if r.compression != firehose_generators::payload::Compression::None {
                s.push_str(&format!(", {} level {}", r.compression, r.level));
            }
            if r.id_style != firehose_generators::IdStyle::Short {
                s.push_str(&format!(", {} id", r.id_style.name()));
            }
            (bytes, s)
        })
        .collect()
}
