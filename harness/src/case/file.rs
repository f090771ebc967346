//! Case folders and regression files: every failure reproducible from its folder alone.
//!
//! `cases/<name>/` holds `event.json` exactly as sent, `response.body` exactly as received,
//! `case.json` ([`CaseJson`]: seed, case index, generator version, violations, how it was shrunk),
//! `reproduce.sh` and, where the target captured them, `logs.txt`. Regressions keep `event.json`
//! and `case.json` under `<regressions>/<check>-<hash>/` and are replayed first on every later run.

use std::io;
use std::path::{Path, PathBuf};

use firehose_generators::GENERATOR_VERSION;
use firehose_generators::wire::EventView;
use serde::{Deserialize, Serialize};

use super::groups::FailureGroup;
use super::input::{Origin, describe_records};
use super::minimal::Minimal;
use crate::contract::Severity;
use crate::events::Phase;
use crate::invocation::Outcome;
use crate::targets::Target;

/// One failure's case, ready to write.
pub struct SavedCase<'a> {
    pub name: &'a str,
    pub target: &'a dyn Target,
    pub seed: u64,
    pub origin: &'a Origin,
    pub phase: Phase,
    pub group: &'a FailureGroup,
    pub minimal: &'a Minimal,
}

/// `case.json`. Fields are in alphabetical order, the order the files have always had. Reading
/// is lenient: a field a hand-written or older file lacks takes its default, so a case folder
/// stays replayable across versions.
#[derive(Debug, Clone, PartialEq, Default, Serialize, Deserialize)]
#[serde(default)]
pub struct CaseJson {
    pub batch: Option<BatchJson>,
    pub case: String,
    /// The random case's index, with `seed` all it takes to generate the event again.
    pub case_index: Option<u64>,
    pub check: Option<String>,
    pub code: Option<String>,
    pub depends_on: Vec<String>,
    pub event_bytes: usize,
    pub fingerprint: Option<String>,
    /// Cases written before the field existed are version 1.
    #[serde(default = "fingerprint_v1")]
    pub fingerprint_version: u32,
    pub flaky: bool,
    pub generator_version: String,
    pub invocation: InvocationJson,
    pub origin: Option<OriginJson>,
    pub original_message: Option<String>,
    pub phase: String,
    /// Decimal, so no JSON reader loses digits.
    pub seed: String,
    pub shrink: Option<ShrinkJson>,
    pub target: String,
    pub violations: Vec<ViolationJson>,
}

fn fingerprint_v1() -> u32 {
    1
}

/// Where a case that is no plain random case came from.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
#[serde(rename_all = "snake_case")]
pub enum OriginJson {
    MutatedCorpus(String),
    Boundary(String),
    Corpus(String),
    Regression(String),
}

/// The generated batch's recipe, one line per record.
#[derive(Debug, Clone, PartialEq, Eq, Default, Serialize, Deserialize)]
#[serde(default)]
pub struct BatchJson {
    pub records: Vec<String>,
    pub source: String,
}

#[derive(Debug, Clone, PartialEq, Default, Serialize, Deserialize)]
#[serde(default)]
pub struct InvocationJson {
    pub body_bytes: usize,
    pub body_truncated: bool,
    pub elapsed_ms: f64,
    pub function_error: Option<FunctionErrorJson>,
    /// `answered`, `timed out` or `broken: WHY`.
    pub outcome: String,
    pub status: Option<u16>,
}

#[derive(Debug, Clone, PartialEq, Eq, Default, Serialize, Deserialize)]
#[serde(default)]
pub struct FunctionErrorJson {
    pub kind: String,
    pub message: Option<String>,
}

#[derive(Debug, Clone, PartialEq, Eq, Default, Serialize, Deserialize)]
#[serde(default)]
pub struct ShrinkJson {
    pub budget_exhausted: bool,
    pub from_bytes: usize,
    pub from_records: usize,
    pub steps: u64,
    pub to_bytes: usize,
    pub to_records: usize,
}

#[derive(Debug, Clone, PartialEq, Eq, Default, Serialize, Deserialize)]
#[serde(default)]
pub struct ViolationJson {
    pub check: String,
    pub code: String,
    pub message: String,
    pub record_id: Option<String>,
    pub record_index: Option<usize>,
    /// `error` or `warning`.
    pub severity: String,
}

impl CaseJson {
    pub fn new(case: &SavedCase<'_>) -> CaseJson {
        let m = case.minimal;
        let g = case.group;
        let (case_index, origin) = match case.origin {
            Origin::Random { index } => (Some(*index), None),
            Origin::Mutation { index, file } => {
                (Some(*index), Some(OriginJson::MutatedCorpus(file.clone())))
            }
            Origin::Boundary { name } => (None, Some(OriginJson::Boundary(name.clone()))),
            Origin::Corpus { file } => (None, Some(OriginJson::Corpus(file.clone()))),
            Origin::Regression { dir } => (None, Some(OriginJson::Regression(dir.clone()))),
        };
        let violations = m
            .verdict
            .violations
            .iter()
            .map(|v| ViolationJson {
                check: v.check.id().into(),
                code: v.check.code().into(),
                severity: if v.severity == Severity::Error {
                    "error"
                } else {
                    "warning"
                }
                .into(),
                message: v.message.clone(),
                record_id: v.record_id.clone(),
                record_index: v.record_index,
            })
            .collect();
        let outcome = match &m.inv.outcome {
            Outcome::Answered => "answered".to_string(),
            Outcome::TimedOut => "timed out".to_string(),
            Outcome::Broken(why) => format!("broken: {why}"),
        };
        CaseJson {
            case: case.name.to_string(),
            target: case.target.describe(),
            seed: case.seed.to_string(),
            case_index,
            origin,
            phase: case.phase.name().into(),
            generator_version: GENERATOR_VERSION.into(),
            check: Some(g.check.id().into()),
            code: Some(g.check.code().into()),
            fingerprint: Some(g.fingerprint.clone()),
            fingerprint_version: crate::contract::fingerprint::FINGERPRINT_VERSION,
            original_message: g.original_message.clone(),
            flaky: m.flaky,
            violations,
            batch: m.spec.as_ref().map(|s| BatchJson {
                source: s.source.name().into(),
                records: describe_records(s).into_iter().map(|(_, d)| d).collect(),
            }),
            event_bytes: m.bytes.len(),
            invocation: InvocationJson {
                outcome,
                status: m.inv.status,
                elapsed_ms: m.inv.elapsed.as_secs_f64() * 1e3,
                function_error: m.inv.function_error.as_ref().map(|e| FunctionErrorJson {
                    kind: e.kind.clone(),
                    message: e.message.clone(),
                }),
                body_bytes: m.inv.body.len(),
                body_truncated: m.inv.body_truncated,
            },
            shrink: m.summary.as_ref().map(|s| ShrinkJson {
                from_records: s.from_records,
                to_records: s.to_records,
                from_bytes: s.from_bytes,
                to_bytes: s.to_bytes,
                steps: s.steps,
                budget_exhausted: s.budget_exhausted,
            }),
            depends_on: m.depends_on.iter().map(|d| d.name().to_string()).collect(),
        }
    }

    /// The failure the case was saved for: (check id, fingerprint, fingerprint version).
    pub fn failure(&self) -> Option<(&str, &str, u32)> {
        Some((
            self.check.as_deref()?,
            self.fingerprint.as_deref()?,
            self.fingerprint_version,
        ))
    }

    fn to_vec(&self) -> io::Result<Vec<u8>> {
        serde_json::to_vec_pretty(self).map_err(io::Error::other)
    }
}

/// Fill a folder through a temporary sibling renamed into place at the end, so a CI cache saved
/// mid-write, a full disk or a kill never leaves a half-written case that breaks later runs.
fn write_atomically(dir: &Path, fill: impl FnOnce(&Path) -> io::Result<()>) -> io::Result<()> {
    let name = dir
        .file_name()
        .map(|n| n.to_string_lossy().into_owned())
        .unwrap_or_default();
    let parent = dir.parent().unwrap_or(Path::new("."));
    std::fs::create_dir_all(parent)?;
    let tmp = parent.join(format!(".{name}.tmp-{}", std::process::id()));
    let _ = std::fs::remove_dir_all(&tmp);
    std::fs::create_dir_all(&tmp)?;
    if let Err(e) = fill(&tmp) {
        let _ = std::fs::remove_dir_all(&tmp);
        return Err(e);
    }
    if dir.exists() {
        std::fs::remove_dir_all(dir)?;
    }
    std::fs::rename(&tmp, dir)
}

/// Write the case folder `dir` (replacing one of the same name).
pub fn write_case(dir: &Path, case: &SavedCase<'_>) -> io::Result<()> {
    write_atomically(dir, |dir| fill_case(dir, case))
}

fn fill_case(dir: &Path, case: &SavedCase<'_>) -> io::Result<()> {
    let m = case.minimal;
    std::fs::write(dir.join("event.json"), &m.bytes)?;
    std::fs::write(dir.join("response.body"), &m.inv.body)?;
    std::fs::write(dir.join("case.json"), CaseJson::new(case).to_vec()?)?;
    if let Some(logs) = &m.inv.logs {
        std::fs::write(dir.join("logs.txt"), logs)?;
    }
    let script = case.target.reproduce_script().unwrap_or_else(|| {
        format!(
            "#!/bin/sh\n# Replays this case against {t} and says FIXED, FAILED or FLAKY.\nset -eu\nexec firehose-harness replay \"$(dirname \"$0\")\" --target {t}\n",
            t = crate::targets::http::shell_quote(&case.target.describe())
        )
    });
    let path = dir.join("reproduce.sh");
    std::fs::write(&path, script)?;
    #[cfg(unix)]
    {
        use std::os::unix::fs::PermissionsExt;
        std::fs::set_permissions(&path, std::fs::Permissions::from_mode(0o755))?;
    }
    Ok(())
}

/// FNV-1a, for stable regression folder names.
fn fnv(s: &[u8]) -> u64 {
    s.iter().fold(0xcbf2_9ce4_8422_2325, |h, b| {
        (h ^ u64::from(*b)).wrapping_mul(0x0100_0000_01b3)
    })
}

/// A regression ready to write: runs keep them until they know they judged something (a run that
/// ends with exit 4 saves none).
pub struct PreparedRegression {
    dir: PathBuf,
    event: bytes::Bytes,
    meta: Vec<u8>,
}

impl PreparedRegression {
    pub fn write(&self) -> io::Result<()> {
        write_atomically(&self.dir, |dir| {
            std::fs::write(dir.join("event.json"), &self.event)?;
            std::fs::write(dir.join("case.json"), &self.meta)
        })
    }
}

/// The regression folder for `case` under `dir`, named by check and a hash of the failure and the
/// target, so the same bug found again overwrites its own folder.
pub fn prepare_regression(dir: &Path, case: &SavedCase<'_>) -> io::Result<PreparedRegression> {
    let g = case.group;
    let name = format!(
        "{}-{:016x}",
        g.check.id(),
        fnv(format!("{}\u{0}{}", g.fingerprint, case.target.describe()).as_bytes())
    );
    Ok(PreparedRegression {
        dir: dir.join(name),
        event: case.minimal.bytes.clone(),
        meta: CaseJson::new(case).to_vec()?,
    })
}

/// A saved event, ready to send again.
#[derive(Debug, Clone)]
pub struct CaseFile {
    pub name: String,
    pub dir: PathBuf,
    pub event: Vec<u8>,
    pub view: EventView,
    /// `case.json`, when present and readable.
    pub meta: Option<CaseJson>,
}

/// Read a case folder (or a regression folder): `event.json` is required.
pub fn load_case(dir: &Path) -> Result<CaseFile, String> {
    let event_path = dir.join("event.json");
    let event = std::fs::read(&event_path)
        .map_err(|e| format!("cannot read {}: {e}", event_path.display()))?;
    let view = EventView::parse(&event)
        .map_err(|e| format!("{} is not an event: {e}", event_path.display()))?;
    let meta = std::fs::read(dir.join("case.json"))
        .ok()
        .and_then(|b| serde_json::from_slice(&b).ok());
    Ok(CaseFile {
        name: dir
            .file_name()
            .map(|n| n.to_string_lossy().into_owned())
            .unwrap_or_default(),
        dir: dir.to_path_buf(),
        event,
        view,
        meta,
    })
}

/// The regressions under a folder: those that load, and those that do not with the reason.
#[derive(Debug, Default)]
pub struct Regressions {
    pub cases: Vec<CaseFile>,
    /// Folders that are not a readable case: (folder, why). They must not switch the whole gate off
    /// silently, so the run replays the rest and then fails with exit 2 naming each.
    pub corrupt: Vec<(PathBuf, String)>,
}

/// Every regression under `dir`, sorted by name. A missing folder is an empty list; temporary
/// folders of an interrupted write (`.NAME.tmp-PID`) are not regressions.
pub fn load_regressions(dir: &Path) -> Result<Regressions, String> {
    let entries = match std::fs::read_dir(dir) {
        Ok(e) => e,
        Err(e) if e.kind() == io::ErrorKind::NotFound => return Ok(Regressions::default()),
        Err(e) => return Err(format!("cannot read {}: {e}", dir.display())),
    };
    let mut dirs: Vec<PathBuf> = entries
        .filter_map(Result::ok)
        .map(|e| e.path())
        .filter(|p| p.is_dir())
        .filter(|p| {
            !p.file_name()
                .is_some_and(|n| n.to_string_lossy().starts_with('.'))
        })
        .collect();
    dirs.sort();
    let mut out = Regressions::default();
    for d in dirs {
        match load_case(&d) {
            Ok(case) => out.cases.push(case),
            Err(e) => out.corrupt.push((d, e)),
        }
    }
    Ok(out)
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn an_old_case_json_reads_back_as_fingerprint_version_1() {
        let old = r#"{"check":"invocation_succeeded","fingerprint":"error:ValueError","seed":"7"}"#;
        let meta: CaseJson = serde_json::from_str(old).unwrap();
        assert_eq!(
            meta.failure(),
            Some(("invocation_succeeded", "error:ValueError", 1))
        );
    }

    #[test]
    fn origins_keep_their_shape_on_disk() {
        let v = serde_json::to_value(Some(OriginJson::MutatedCorpus("a.json".into()))).unwrap();
        assert_eq!(v, serde_json::json!({ "mutated_corpus": "a.json" }));
        let none: Option<OriginJson> = None;
        assert_eq!(serde_json::to_value(none).unwrap(), serde_json::Value::Null);
    }
}
