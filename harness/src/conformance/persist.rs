//! Case folders and regression files: every failure reproducible from its folder alone.
//!
//! `cases/<name>/` holds `event.json` exactly as sent, `response.body` exactly as received,
//! `case.json` (seed, case index, generator version, violations, how it was shrunk), `reproduce.sh`
//! and, where the target captured them, `logs.txt`. Regressions keep `event.json` and `case.json`
//! under `<regressions>/<check>-<hash>/` and are replayed first on every later run.

use std::io;
use std::path::{Path, PathBuf};

use firehose_generators::GENERATOR_VERSION;
use firehose_generators::wire::EventView;
use serde_json::{Value, json};

use super::groups::FailureGroup;
use super::runner::Origin;
use super::shrink::Minimal;
use crate::contract::Severity;
use crate::events::Phase;
use crate::invocation::Outcome;
use crate::targets::Target;

pub(crate) struct SavedCase<'a> {
    pub name: &'a str,
    pub target: &'a dyn Target,
    pub seed: u64,
    pub origin: &'a Origin,
    pub phase: Phase,
    pub group: &'a FailureGroup,
    pub minimal: &'a Minimal,
}

fn case_json(case: &SavedCase<'_>) -> Value {
    let m = case.minimal;
    let g = case.group;
    let (case_index, origin) = match case.origin {
        Origin::Random { index } => (Some(*index), Value::Null),
        Origin::Mutation { index, file } => (Some(*index), json!({ "mutated_corpus": file })),
        Origin::Boundary { name } => (None, json!({ "boundary": name })),
        Origin::Corpus { file } => (None, json!({ "corpus": file })),
        Origin::Regression { dir } => (None, json!({ "regression": dir })),
    };
    let violations: Vec<Value> = m
        .verdict
        .violations
        .iter()
        .map(|v| {
            json!({
                "check": v.check.id(),
                "code": v.check.code(),
                "severity": if v.severity == Severity::Error { "error" } else { "warning" },
                "message": v.message,
                "record_id": v.record_id,
                "record_index": v.record_index,
            })
        })
        .collect();
    let outcome = match &m.inv.outcome {
        Outcome::Answered => "answered".to_string(),
        Outcome::TimedOut => "timed out".to_string(),
        Outcome::Broken(why) => format!("broken: {why}"),
    };
    json!({
        "case": case.name,
        "target": case.target.describe(),
        "seed": case.seed.to_string(),
        "case_index": case_index,
        "origin": origin,
        "phase": case.phase.name(),
        "generator_version": GENERATOR_VERSION,
        "check": g.check.id(),
        "code": g.check.code(),
        "fingerprint": g.fingerprint,
        "fingerprint_version": crate::contract::fingerprint::FINGERPRINT_VERSION,
        "original_message": g.original_message,
        "flaky": m.flaky,
        "violations": violations,
        "batch": m.spec.as_ref().map(|s| json!({
            "source": s.source.name(),
            "records": super::runner::describe_records(s).into_iter().map(|(_, d)| d).collect::<Vec<_>>(),
        })),
        "event_bytes": m.bytes.len(),
        "invocation": {
            "outcome": outcome,
            "status": m.inv.status,
            "elapsed_ms": m.inv.elapsed.as_secs_f64() * 1e3,
            "function_error": m.inv.function_error.as_ref().map(|e| json!({"kind": e.kind, "message": e.message})),
            "body_bytes": m.inv.body.len(),
            "body_truncated": m.inv.body_truncated,
        },
        "shrink": m.summary.as_ref().map(|s| json!({
            "from_records": s.from_records, "to_records": s.to_records,
            "from_bytes": s.from_bytes, "to_bytes": s.to_bytes,
            "steps": s.steps, "budget_exhausted": s.budget_exhausted,
        })),
        "depends_on": m.depends_on.iter().map(|d| d.name()).collect::<Vec<_>>(),
    })
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

pub(crate) fn write_case(dir: &Path, case: &SavedCase<'_>) -> io::Result<()> {
    write_atomically(dir, |dir| fill_case(dir, case))
}

fn fill_case(dir: &Path, case: &SavedCase<'_>) -> io::Result<()> {
    let m = case.minimal;
    std::fs::write(dir.join("event.json"), &m.bytes)?;
    std::fs::write(dir.join("response.body"), &m.inv.body)?;
    let meta = serde_json::to_vec_pretty(&case_json(case)).map_err(io::Error::other)?;
    std::fs::write(dir.join("case.json"), meta)?;
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
pub(crate) struct PreparedRegression {
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

pub(super) fn prepare_regression(
    dir: &Path,
    case: &SavedCase<'_>,
) -> io::Result<PreparedRegression> {
    let g = case.group;
    let name = format!(
        "{}-{:016x}",
        g.check.id(),
        fnv(format!("{}\u{0}{}", g.fingerprint, case.target.describe()).as_bytes())
    );
    Ok(PreparedRegression {
        dir: dir.join(name),
        event: case.minimal.bytes.clone(),
        meta: serde_json::to_vec_pretty(&case_json(case)).map_err(io::Error::other)?,
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
    pub meta: Option<Value>,
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
