//! The report model. Field names are pinned by DESIGN.md: scripts read them.

use schemars::JsonSchema;
use serde::{Deserialize, Serialize};

use crate::histogram::LatencySummary;

/// Bumped on any change that could break a reader of `report.json`.
///
/// 2: a load report's headline `latency` is the corrected response time (it was the uncorrected
/// service time); `load.intervals[].planned`, `load.limited_by`/`limited_because`, `load.warnings`
/// and `load.cold_starts` were added.
pub const SCHEMA_VERSION: u32 = 2;

#[derive(Debug, Clone, Copy, PartialEq, Eq, Serialize, Deserialize, JsonSchema)]
#[serde(rename_all = "lowercase")]
pub enum Verdict {
    Pass,
    Fail,
}

impl Verdict {
    /// A run passes exactly when it exits 0: the verdict is read off the exit code, never judged
    /// a second time.
    pub fn from_exit_code(code: i32) -> Self {
        if code == 0 {
            Verdict::Pass
        } else {
            Verdict::Fail
        }
    }
}

#[derive(Debug, Clone, Copy, PartialEq, Eq, Serialize, Deserialize, JsonSchema)]
#[serde(rename_all = "lowercase")]
pub enum CheckStatus {
    Pass,
    Fail,
    Warn,
    Skipped,
}

impl CheckStatus {
    /// The status as `report.json` spells it: what scripts and `report compare` match on.
    pub fn as_str(self) -> &'static str {
        match self {
            CheckStatus::Pass => "pass",
            CheckStatus::Fail => "fail",
            CheckStatus::Warn => "warn",
            CheckStatus::Skipped => "skipped",
        }
    }

    /// The status for people: a failure shouts, the rest do not.
    pub fn label(self) -> &'static str {
        match self {
            CheckStatus::Fail => "FAIL",
            other => other.as_str(),
        }
    }

    /// How bad a status is: a check that failed in any shard failed in the merged run.
    fn rank(self) -> u8 {
        match self {
            CheckStatus::Skipped => 0,
            CheckStatus::Pass => 1,
            CheckStatus::Warn => 2,
            CheckStatus::Fail => 3,
        }
    }

    /// The worse of two statuses of one check (merging shards).
    pub fn worse(self, other: CheckStatus) -> CheckStatus {
        if other.rank() > self.rank() {
            other
        } else {
            self
        }
    }
}

#[derive(Debug, Clone, Copy, PartialEq, Eq, Serialize, Deserialize, JsonSchema)]
#[serde(rename_all = "lowercase")]
pub enum Severity {
    Error,
    Warning,
}

/// One check's outcome over the whole run.
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize, JsonSchema)]
pub struct CheckResult {
    pub id: String,
    pub code: String,
    pub status: CheckStatus,
    /// How many violations (records or invocations) the check found.
    pub violations: u64,
    /// What the check guards, in one line.
    pub summary: String,
    /// False where Firehose's exact behaviour is undocumented and the verdict is the harness's own.
    pub firehose_documented: bool,
}

/// How a failure's case was shrunk.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize, JsonSchema)]
pub struct ShrinkInfo {
    pub from_records: u64,
    pub to_records: u64,
    pub from_bytes: u64,
    pub to_bytes: u64,
    /// Invocations spent shrinking.
    pub steps: u64,
    /// True when the shrink budget ran out before shrinking finished.
    pub budget_exhausted: bool,
}

/// An input dimension a failure depends on, with the flag that narrows a run along it.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize, JsonSchema)]
pub struct Dependency {
    pub dimension: String,
    pub flag: String,
}

/// One distinct failure: all violations with the same check and fingerprint.
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize, JsonSchema)]
pub struct Failure {
    pub check: String,
    pub code: String,
    pub severity: Severity,
    /// The first occurrence, in words.
    pub message: String,
    /// Violations of this kind over the run.
    pub count: u64,
    /// Cases (invocations) in which it occurred.
    pub cases: u64,
    pub record_id: Option<String>,
    /// The case folder under `cases/` of the first occurrence (after shrinking).
    pub case: Option<String>,
    pub fingerprint: String,
    /// Where it was first found: `regression`, `boundary`, `corpus`, `random`, `replay`, `validate`.
    pub phase: String,
    /// The minimal case passed when re-run: the transformer is flaky here.
    pub flaky: bool,
    pub shrink: Option<ShrinkInfo>,
    /// The minimal batch, described ("1 record: json, 65,537 bytes").
    pub minimal_batch: Option<String>,
    pub depends_on: Vec<Dependency>,
    /// The message as first seen, when it differs from the minimal case's `message` (shrinking
    /// keeps the bug, not the words: ids and offsets change).
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub original_message: Option<String>,
}

impl Failure {
    /// "1 violation in 1 case", "3,412 violations in 12 cases": every renderer says it the same way.
    pub fn tally(&self) -> String {
        format!(
            "{} violation{} in {} case{}",
            format_count(self.count),
            if self.count == 1 { "" } else { "s" },
            format_count(self.cases),
            if self.cases == 1 { "" } else { "s" },
        )
    }

    /// "records (--records), record size (--record-size)": the generator dimensions the failure
    /// depends on, as every renderer lists them; `None` when it depends on none.
    pub fn depends_on_text(&self) -> Option<String> {
        if self.depends_on.is_empty() {
            return None;
        }
        let deps: Vec<_> = self
            .depends_on
            .iter()
            .map(|d| format!("{} ({})", d.dimension, d.flag))
            .collect();
        Some(deps.join(", "))
    }
}

/// `1234567` → `1,234,567`.
pub fn format_count(n: u64) -> String {
    let s = n.to_string();
    let mut out = String::with_capacity(s.len() + s.len() / 3);
    for (i, c) in s.chars().enumerate() {
        if i > 0 && (s.len() - i) % 3 == 0 {
            out.push(',');
        }
        out.push(c);
    }
    out
}

/// What came back per record, over the run.
#[derive(Debug, Clone, Default, PartialEq, Eq, Serialize, Deserialize, JsonSchema)]
pub struct RecordCounts {
    pub sent: u64,
    pub ok: u64,
    pub dropped: u64,
    pub processing_failed: u64,
}

/// How many cases each phase ran and how many failed.
#[derive(Debug, Clone, Default, PartialEq, Eq, Serialize, Deserialize, JsonSchema)]
pub struct PhaseCounts {
    pub phase: String,
    pub planned: u64,
    pub run: u64,
    pub failed: u64,
}

/// The largest batch that passed, so users learn which buffer hint is safe.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize, JsonSchema)]
pub struct BatchSize {
    pub records: u64,
    pub bytes: u64,
}

/// Throughput in one second of a load run, by completion time.
#[derive(Debug, Clone, Default, PartialEq, Serialize, Deserialize, JsonSchema)]
pub struct Interval {
    /// Seconds since the start of the measured run (after the warm-up).
    pub second: u64,
    pub invocations: u64,
    pub records: u64,
    /// Event bytes sent.
    pub bytes_in: u64,
    /// Response bytes received.
    pub bytes_out: u64,
    pub errors: u64,
    pub violations: u64,
    pub late_sends: u64,
    /// Corrected response time in this second, µs.
    pub p50: u64,
    pub p99: u64,
    /// This second's corrected response-time histogram (V2 + DEFLATE, base64), so merged reports
    /// recompute p50/p99 exactly.
    pub histogram: String,
    /// Invocations the schedule planned for this second (open model only), so a plot can show
    /// achieved against planned.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub planned: Option<f64>,
}

/// A threshold and whether it held.
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize, JsonSchema)]
pub struct ThresholdResult {
    pub expression: String,
    pub passed: bool,
    /// The measured value, in the threshold's unit, as text ("312.4ms", "0.02%").
    pub actual: String,
    pub aborted_run: bool,
}

/// Latency of a load run, three ways (see the `load` docs for why they differ).
#[derive(Debug, Clone, Default, PartialEq, Serialize, Deserialize, JsonSchema)]
pub struct LoadLatency {
    /// From the intended send time: corrected for coordinated omission.
    pub response_time: LatencySummary,
    /// From the actual send time: what a closed-loop tool reports.
    pub service_time: LatencySummary,
    /// Actual minus intended send time: how far the schedule slipped.
    pub lag: LatencySummary,
    /// Time invocations waited for a free function instance (`exec:`, where the target reports
    /// it): part of response and service time, never of the function's timeout.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub queue_wait: Option<LatencySummary>,
}

/// The Firehose model's derivation (`--firehose-ingest`), so the report reads "at 5 MB/s …".
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize, JsonSchema)]
pub struct FirehoseModelSection {
    pub ingest_bytes_per_second: f64,
    pub buffer_size: u64,
    pub buffer_interval_ms: u64,
    pub shards: u32,
    /// `size` or `interval`: which buffer hint ends a batch.
    pub trigger: String,
    pub invocation_rate: f64,
    pub batch_bytes: u64,
    /// Firehose's outstanding-invocation limit (5 per shard): the run's in-flight cap.
    pub outstanding_limit: u32,
    /// The derivation in one sentence.
    pub description: String,
    /// The answer in one sentence: latency and the concurrency it took.
    pub verdict: String,
}

/// The figures only a load run has.
#[derive(Debug, Clone, Default, PartialEq, Serialize, Deserialize, JsonSchema)]
pub struct LoadSection {
    pub model: String,
    pub invocations: u64,
    pub planned_invocations: u64,
    pub interrupted: u64,
    pub duration_ms: u64,
    pub rate_target: Option<f64>,
    pub rate_achieved: f64,
    pub late_sends: u64,
    pub errors: u64,
    pub error_rate: f64,
    /// Calls refused for lack of concurrency (429 `TooManyRequestsException`): the function never
    /// ran, so they are neither invocations nor errors.
    #[serde(default)]
    pub throttles: u64,
    pub violations: u64,
    pub records_per_second: f64,
    pub bytes_in_per_second: f64,
    pub bytes_out_per_second: f64,
    pub max_in_flight: u64,
    pub peak_in_flight: u64,
    /// Little's law: achieved rate × mean service time — the instances the target kept busy.
    pub mean_in_flight: f64,
    /// Invocations sent during `--warmup`, excluded from every figure here.
    pub warmup_invocations: u64,
    /// Where events came from: `generated`, `pool of N`, or the `--event` file.
    pub events: String,
    pub latency: LoadLatency,
    pub thresholds: Vec<ThresholdResult>,
    pub intervals: Vec<Interval>,
    /// Partition `i/n` this report covers, if the run was split.
    pub partition: Option<String>,
    /// The Firehose model's derivation, when `--firehose-ingest` was used.
    pub firehose_model: Option<FirehoseModelSection>,
    /// Instances started by an `exec:`/`image:` target (each one a cold start), when the harness
    /// ran them.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub cold_starts: Option<u64>,
    /// What held the run back when it fell behind its schedule: `target`, `in-flight cap` or
    /// `harness`, with the reason in [`LoadSection::limited_because`].
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub limited_by: Option<String>,
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub limited_because: Option<String>,
    /// Things that make the figures mean less than they seem: an under-achieved rate, a run
    /// shorter than one buffer interval, …
    #[serde(default, skip_serializing_if = "Vec::is_empty")]
    pub warnings: Vec<String>,
}

/// What the byte rates count: the events as sent (JSON, records base64-encoded inside), not the
/// raw record data — so 5 MB/s of ingest reads as more "in".
pub const BYTE_RATE_BASIS: &str = "event JSON as sent (records base64-encoded, envelope included)";

impl LoadSection {
    /// Why the corrected and uncorrected figures differ, in one sentence (reports print it beside
    /// them).
    pub fn latency_explanation(&self) -> String {
        format!(
            "Response time runs from when each invocation was due, so it includes any wait before it could be sent ({} late sends{}); service time starts when the request actually left, which is what closed-loop tools such as oha report and why it can look better.",
            self.late_sends,
            match &self.limited_by {
                Some(by) if self.late_sends > 0 => format!(", held back by the {by}"),
                _ => String::new(),
            }
        )
    }
}

/// What Firehose would have done with the answers: where the files of `delivered/`,
/// `processing-failed/` and the dropped ids are (relative to the report), and what they hold.
#[derive(Debug, Clone, Default, PartialEq, Eq, Serialize, Deserialize, JsonSchema)]
pub struct DeliverySection {
    pub delivered_dir: String,
    pub processing_failed_dir: String,
    pub dropped_file: String,
    /// `--s3-prefix`, when records were filed under prefixes.
    pub s3_prefix: Option<String>,
    /// Batches recorded (judged invocations, up to the cap).
    pub batches: u64,
    /// Files written under `delivered/` (one per batch and prefix).
    pub objects: u64,
    pub delivered_records: u64,
    pub delivered_bytes: u64,
    /// Delivered records whose data does not end in a newline.
    pub undelimited_records: u64,
    pub failed_records: u64,
    /// Batches that failed as a whole (every record in `processing-failed/`).
    pub failed_batches: u64,
    pub dropped_records: u64,
    /// Records in `processing-failed/` per `errorCode`.
    pub error_codes: std::collections::BTreeMap<String, u64>,
    /// Distinct S3 prefixes records were filed under.
    pub prefixes: Vec<String>,
    pub cap_bytes: u64,
    /// True when the cap stopped the recording before the run ended.
    pub truncated: bool,
    pub notes: Vec<String>,
}

#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize, JsonSchema)]
pub struct Tool {
    pub name: String,
    pub version: String,
}

/// The whole report.
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize, JsonSchema)]
pub struct Report {
    pub schema_version: u32,
    pub tool: Tool,
    /// `check`, `load`, `replay` or `validate`.
    pub command: String,
    pub verdict: Verdict,
    pub exit_code: i32,
    pub target: String,
    /// A decimal string, so no JSON reader loses digits.
    pub seed: Option<String>,
    /// RFC 3339, UTC.
    pub started_at: String,
    pub duration_ms: u64,
    /// Why the run stopped before its plan: `deadline`, `max-failures`, `interrupted`, `threshold`,
    /// `unreachable`, `overrun`.
    pub stopped_early: Option<String>,
    pub phases: Vec<PhaseCounts>,
    pub checks: Vec<CheckResult>,
    pub failures: Vec<Failure>,
    pub failures_truncated: bool,
    pub records: RecordCounts,
    /// Invocation time in microseconds.
    pub latency: Option<LatencySummary>,
    pub largest_passing_batch: Option<BatchSize>,
    pub load: Option<LoadSection>,
    /// The generator settings of the run, as the flags that reproduce them.
    pub generator: Option<String>,
    /// Anything a reader should know: normalised corpus quirks, undocumented Firehose behaviour, …
    pub notes: Vec<String>,
    /// What Firehose would deliver (`check`, `replay`, and `load --keep-delivered`).
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub delivery: Option<DeliverySection>,
}

/// At most this many distinct failures are listed; the rest are counted in the checks.
pub const MAX_FAILURES_LISTED: usize = 1000;

/// The exit code of a run that judged nothing: the target could not be started or reached.
pub const EXIT_NOTHING_JUDGED: i32 = 4;

impl Report {
    pub fn new(command: &str, target: &str) -> Self {
        Report {
            schema_version: SCHEMA_VERSION,
            tool: Tool {
                name: "firehose-harness".into(),
                version: env!("CARGO_PKG_VERSION").into(),
            },
            command: command.into(),
            verdict: Verdict::Pass,
            exit_code: 0,
            target: target.into(),
            seed: None,
            started_at: String::new(),
            duration_ms: 0,
            stopped_early: None,
            phases: Vec::new(),
            checks: Vec::new(),
            failures: Vec::new(),
            failures_truncated: false,
            records: RecordCounts::default(),
            latency: None,
            largest_passing_batch: None,
            load: None,
            generator: None,
            notes: Vec::new(),
            delivery: None,
        }
    }

    /// The target could not be started or reached, so no check ran: every renderer says so
    /// instead of showing checks as passed.
    pub fn nothing_judged(&self) -> bool {
        self.exit_code == EXIT_NOTHING_JUDGED
    }

    /// Why nothing was judged, in one line: the first note, which the harness writes for it.
    pub fn nothing_judged_reason(&self) -> &str {
        self.notes
            .first()
            .map(String::as_str)
            .unwrap_or("the target could not be started or reached")
    }

    /// Failures of error severity.
    pub fn errors(&self) -> impl Iterator<Item = &Failure> {
        self.failures
            .iter()
            .filter(|f| f.severity == Severity::Error)
    }
}
