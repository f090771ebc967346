use std::collections::BTreeMap;
use std::time::Duration;

use firehose_generators::strategies::mutate;
use firehose_generators::strategies::{boundary_corners, sample};
use firehose_generators::wire::EventView;
use firehose_generators::{Event, GenConfig};
use hdrhistogram::Histogram;
use tokio::time::Instant;
use tokio_util::sync::CancellationToken;

use super::CheckPlan;
use super::endpoint::{EndpointProbe, Probe};
use super::inflight::InFlight;
use super::shrink::{self, Failing, Trial};
use crate::case::{
    self, Attempt, FailureGroup, FailureGroups, Input, Judge, Minimal, Origin, Reach, SavedCase,
    Stopped, describe_batch,
};
use crate::contract::{CheckId, MAX_FAILURE_KEYS, RecordResults, Severity};
use crate::events::{EventSink, Phase, RunEvent};
use crate::invocation::{Invocation, Outcome};
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
    /// Why the run ended early: [`Stopped::Deadline`], [`Stopped::MaxFailures`],
    /// [`Stopped::Hanging`] or [`Stopped::Interrupted`].
    pub stopped: Option<Stopped>,
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
        self.stopped == Some(Stopped::Interrupted)
    }

    /// Cases that got a verdict.
    pub fn judged(&self) -> u64 {
        self.phases.values().map(|t| t.run).sum()
    }

    /// The deadline ended the run before any invocation finished, or the target hung from the first
    /// call: nothing was judged, which must not read as a pass.
    pub fn nothing_judged(&self) -> bool {
        (self.stopped == Some(Stopped::Deadline) && self.judged() == 0)
            || (self.stopped == Some(Stopped::Hanging) && !self.answered_any)
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

/// A case that finished, waiting for its turn to be judged.
type Finished = (u64, Input, Result<Attempt, TargetError>);

pub(super) struct Runner<'a> {
    plan: &'a CheckPlan,
    target: &'a dyn Target,
    sink: &'a mut dyn EventSink,
    cancel: CancellationToken,
    deadline: Option<Instant>,
    /// Shared by every case in flight: the first answer makes later errors findings.
    reach: &'a Reach,
    out: CheckOutcome,
    groups: FailureGroups,
    failing_cases: u64,
    saved: u64,
    /// Decides from the first answers whether a transformer is there at all.
    probe: EndpointProbe,
    /// Answers the probe holds back until it decides.
    held: Vec<(Phase, Input, Attempt)>,
    /// Invocations in a row, in case order, that got no answer.
    hangs_in_a_row: u32,
    /// Regressions to write once the run is known to have judged something.
    pending_regressions: Vec<case::PreparedRegression>,
}

/// Run `plan` against `target` (already started). Cancel `cancel` to stop early; the outcome so far is
/// returned either way.
///
/// Up to `plan.workers` cases are in flight at once, but answers are judged, grouped, shrunk and
/// saved strictly in case order, so the outcome is the same for any number of workers (unless
/// `--deadline` or `--max-failures` cut the run at a point that depends on timing).
pub async fn run_check(
    plan: &CheckPlan,
    target: &dyn Target,
    sink: &mut dyn EventSink,
    cancel: CancellationToken,
) -> CheckOutcome {
    let started = Instant::now();
    let reach = Reach::default();
    let mut runner = Runner {
        plan,
        target,
        sink,
        cancel,
        deadline: plan.deadline.map(|d| started + d),
        reach: &reach,
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
        groups: FailureGroups::new(MAX_FAILURE_KEYS),
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
                runner.out.stopped = Some(Stopped::Deadline);
                let d = plan.deadline.unwrap_or_default();
                runner.note(format!(
                    "the --deadline of {} was reached; the remaining cases were not run",
                    crate::values::format_duration(d)
                ));
            }
            Stop::Interrupted => {
                runner.out.stopped = Some(Stopped::Interrupted);
                runner.note("interrupted; the report covers the cases run so far".into());
            }
            Stop::MaxFailures => {
                runner.out.stopped = Some(Stopped::MaxFailures);
                runner.note(format!(
                    "stopped after {} failing cases (--max-failures)",
                    runner.failing_cases
                ));
            }
            Stop::Hanging => {
                runner.out.stopped = Some(Stopped::Hanging);
                runner.note(format!(
                    "cut short: {} invocations in a row got no answer within {} (--max-hangs); the cases not run were not judged",
                    plan.max_hangs,
                    crate::values::format_duration(plan.timeout)
                ));
            }
            Stop::Unreachable(e) => runner.out.unreachable = Some(e),
        }
    }
    let groups = std::mem::replace(&mut runner.groups, FailureGroups::new(0));
    runner.out.overflow = groups.overflow.clone();
    runner.out.groups = groups.into_groups();
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

async fn sleep_until(deadline: Option<Instant>) {
    match deadline {
        Some(d) => tokio::time::sleep_until(d).await,
        None => std::future::pending().await,
    }
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
            Some(dir) => case::load_regressions(dir),
            None => Ok(case::Regressions::default()),
        };
        let regressions = regressions.unwrap_or_else(|e| {
            self.note(format!("regressions not replayed: {e}"));
            case::Regressions::default()
        });
        self.out.corrupt_regressions = regressions.corrupt;
        let regressions: Vec<Input> = regressions
            .cases
            .into_iter()
            .map(|case| {
                let event = Event::from_json(&case.event).ok();
                Input::verbatim(
                    case.event,
                    case.view,
                    event,
                    Origin::Regression { dir: case.name },
                )
            })
            .collect();
        let mut boundary = Vec::new();
        if plan.boundary {
            for corner in boundary_corners(&plan.generator) {
                match corner.spec {
                    Ok(spec) => boundary.push((corner.name, spec)),
                    Err(why) => self.note(format!("boundary case {} skipped: {why}", corner.name)),
                }
            }
        }
        let mut corpus = Vec::new();
        for case in &plan.corpus {
            match EventView::parse(&case.bytes) {
                Ok(view) => corpus.push(Input::verbatim(
                    case.bytes.clone(),
                    view,
                    Event::from_json(&case.bytes).ok(),
                    Origin::Corpus {
                        file: case.label.clone(),
                    },
                )),
                Err(e) => self.note(format!("corpus file {} skipped: {e}", case.label)),
            }
        }
        let planned = regressions.len() as u64
            + boundary.len() as u64
            + plan.corpus.len() as u64
            + plan.cases;
        self.sink.emit(RunEvent::Started { planned });
        self.begin(Phase::Regression, regressions.len() as u64);
        self.run_phase(Phase::Regression, regressions.len() as u64, &|i| {
            regressions[i as usize].clone()
        })
        .await?;
        self.begin(Phase::Boundary, boundary.len() as u64);
        self.run_phase(Phase::Boundary, boundary.len() as u64, &|i| {
            let (name, spec) = &boundary[i as usize];
            Input::from_spec(
                spec.clone(),
                Origin::Boundary {
                    name: name.to_string(),
                },
            )
        })
        .await?;
        self.begin(Phase::Corpus, plan.corpus.len() as u64);
        self.run_phase(Phase::Corpus, corpus.len() as u64, &|i| {
            corpus[i as usize].clone()
        })
        .await?;
        // With a corpus, every fourth random case mutates a real event instead of generating one.
        let seeds: Vec<(&str, Event)> = plan
            .corpus
            .iter()
            .filter_map(|c| Some((c.label.as_str(), Event::from_json(&c.bytes).ok()?)))
            .filter(|(_, e)| plan.generator.sources.contains(&e.source()))
            .collect();
        self.begin(Phase::Random, plan.cases);
        // Each case from (seed, index) alone, whichever worker makes it.
        self.run_phase(Phase::Random, plan.cases, &|index| {
            let seed = GenConfig::case_seed(plan.seed, index);
            if !seeds.is_empty() && index % 4 == 3 {
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
            }
        })
        .await?;
        // A run shorter than the probe: held answers that looked like a wrong address end it as
        // one; others are judged now.
        if !self.held.is_empty() {
            if self.probe.at_end() == Probe::WrongEndpoint {
                return Err(Stop::Unreachable(TargetError::WrongEndpoint {
                    target: self.out.target.clone(),
                    reason: self.probe.reason(),
                }));
            }
            for (phase, input, tried) in std::mem::take(&mut self.held) {
                self.judge_case(phase, input, tried).await?;
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

    fn judge(&self) -> Judge<'_> {
        Judge {
            target: self.target,
            checks: &self.plan.checks,
            timeout: self.plan.timeout,
            reach: self.reach,
        }
    }

    /// Run cases `0..n` of a phase, `make(i)` building case `i`: up to `plan.workers` in flight,
    /// judged in index order. While one case is judged (and maybe shrunk, one attempt at a time),
    /// the other workers keep running the cases after it.
    async fn run_phase(
        &mut self,
        phase: Phase,
        n: u64,
        make: &(dyn Fn(u64) -> Input + Sync),
    ) -> Result<(), Stop> {
        let workers = self.plan.workers.max(1);
        // How far past the case being judged cases may run: a long shrink must not pile up
        // answers (each up to 6 MB) in memory.
        let ahead = 8 * workers as u64;
        let (plan, target, reach) = (self.plan, self.target, self.reach);
        let judge = Judge {
            target,
            checks: &plan.checks,
            timeout: plan.timeout,
            reach,
        };
        let start = |index: u64| async move {
            let input = make(index);
            let tried = case::attempt(judge, &input.bytes, &input.view).await;
            (index, input, tried)
        };
        let mut running: InFlight<'_, Finished> = InFlight::new();
        let mut finished: BTreeMap<u64, (Input, Result<Attempt, TargetError>)> = BTreeMap::new();
        let (mut next, mut judged) = (0u64, 0u64);
        while judged < n {
            if self.cancel.is_cancelled() {
                return Err(Stop::Interrupted);
            }
            if let Some((input, tried)) = finished.remove(&judged) {
                judged += 1;
                let taken = self.take_case(phase, input, tried);
                let mut taken = std::pin::pin!(taken);
                loop {
                    tokio::select! {
                        r = &mut taken => {
                            r?;
                            break;
                        }
                        (i, input, tried) = running.next(), if !running.is_empty() => {
                            finished.insert(i, (input, tried));
                            // One worker is busy judging (shrinking): the others keep going.
                            while running.len() + 1 < workers && next < n && next < judged + ahead {
                                running.push(start(next));
                                next += 1;
                            }
                        }
                    }
                }
                continue;
            }
            while running.len() < workers && next < n && next < judged + ahead {
                running.push(start(next));
                next += 1;
            }
            tokio::select! {
                (i, input, tried) = running.next() => {
                    finished.insert(i, (input, tried));
                }
                _ = self.cancel.cancelled() => return Err(Stop::Interrupted),
                _ = sleep_until(self.deadline) => return Err(Stop::Deadline),
            }
        }
        Ok(())
    }

    /// Count whether an invocation got an answer, for `--max-hangs`.
    fn count_hang(&mut self, inv: &Invocation) {
        if inv.outcome == Outcome::TimedOut {
            self.hangs_in_a_row += 1;
        } else {
            self.hangs_in_a_row = 0;
            self.out.answered_any = true;
        }
    }

    fn hanging(&self) -> bool {
        self.plan.max_hangs > 0 && self.hangs_in_a_row >= self.plan.max_hangs
    }

    /// One attempt now, for shrinking and re-runs. Deadline and Ctrl-C interrupt the wait.
    async fn attempt_now(&mut self, input: &Input) -> Result<Attempt, Stop> {
        if self.hanging() {
            return Err(Stop::Hanging);
        }
        if self.cancel.is_cancelled() {
            return Err(Stop::Interrupted);
        }
        let tried = tokio::select! {
            r = case::attempt(self.judge(), &input.bytes, &input.view) => r,
            _ = self.cancel.cancelled() => return Err(Stop::Interrupted),
            _ = sleep_until(self.deadline) => return Err(Stop::Deadline),
        };
        let tried = tried.map_err(Stop::Unreachable)?;
        self.count_hang(&tried.inv);
        Ok(tried)
    }

    /// A case's turn: decide whether it is judged (the probe, unjudged throttles), then judge it.
    async fn take_case(
        &mut self,
        phase: Phase,
        input: Input,
        tried: Result<Attempt, TargetError>,
    ) -> Result<(), Stop> {
        if self.hanging() {
            return Err(Stop::Hanging);
        }
        let tried = tried.map_err(Stop::Unreachable)?;
        self.count_hang(&tried.inv);
        if !tried.judged() {
            // Not judged; the target counts it (see `Target::throttles`).
            return Ok(());
        }
        match self.probe.observe(&tried.inv) {
            Probe::Hold => {
                self.held.push((phase, input, tried));
                return Ok(());
            }
            Probe::WrongEndpoint => {
                return Err(Stop::Unreachable(TargetError::WrongEndpoint {
                    target: self.out.target.clone(),
                    reason: self.probe.reason(),
                }));
            }
            Probe::Judge => {
                for (phase, input, tried) in std::mem::take(&mut self.held) {
                    self.judge_case(phase, input, tried).await?;
                }
            }
        }
        self.judge_case(phase, input, tried).await?;
        if self.hanging() {
            return Err(Stop::Hanging);
        }
        Ok(())
    }

    /// Count one answer into the run and file its failures.
    async fn judge_case(&mut self, phase: Phase, input: Input, tried: Attempt) -> Result<(), Stop> {
        let (inv, verdict) = (&tried.inv, &tried.verdict);
        if let Some(delivery) = &self.plan.delivery {
            delivery.observe(&input.bytes, inv, verdict);
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
        self.record_failures(phase, &input, &tried).await?;
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

    /// File a case's failures; shrink, re-run and save each one not seen before in the run.
    async fn record_failures(
        &mut self,
        phase: Phase,
        input: &Input,
        tried: &Attempt,
    ) -> Result<(), Stop> {
        for i in self.groups.file(&tried.verdict, phase) {
            let mut group = self.groups.get(i).clone();
            group.minimal_batch = input.spec.as_ref().map(describe_batch);
            self.sink.emit(RunEvent::NewFailure {
                phase,
                check: group.check.id(),
                message: group.first.message.clone(),
            });
            if group.severity == Severity::Error {
                let fingerprint = group.fingerprint.clone();
                let minimal = self
                    .minimise(input, tried, (group.check, &fingerprint))
                    .await?;
                if let Some(v) = minimal
                    .verdict
                    .violations
                    .iter()
                    .find(|v| v.check == group.check && v.fingerprint == fingerprint)
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
            *self.groups.get_mut(i) = group;
        }
        Ok(())
    }

    /// Shrink (when allowed and possible) and re-run the minimal case once.
    async fn minimise(
        &mut self,
        input: &Input,
        tried: &Attempt,
        key: (CheckId, &str),
    ) -> Result<Minimal, Stop> {
        let plan = self.plan;
        let failing = Failing {
            input,
            first: tried,
            key,
        };
        let mut minimal = shrink::shrink(failing, &plan.generator, plan.shrink, self).await;
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
        if let Ok(rerun) = self.attempt_now(&again).await {
            minimal.flaky = !rerun
                .verdict
                .key_counts
                .contains_key(&(key.0, key.1.to_string()));
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
            match case::write_case(&dir.join(&name), &case) {
                Ok(()) => wrote = Some(name.clone()),
                Err(e) => self.note(format!("case {name} could not be saved: {e}")),
            }
        }
        if let Some(dir) = &self.plan.regressions
            && phase != Phase::Regression
        {
            match case::prepare_regression(dir, &case) {
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

/// Shrinking's attempts are the runner's: one at a time, each announced, each bounded by the
/// deadline and Ctrl-C.
impl Trial for Runner<'_> {
    async fn run(&mut self, step: u64, candidate: &Input) -> Option<Attempt> {
        let tried = self.attempt_now(candidate).await.ok()?;
        self.sink.emit(RunEvent::Shrinking {
            step,
            records: candidate.view.record_ids.len(),
            bytes: candidate.bytes.len(),
        });
        Some(tried)
    }
}
