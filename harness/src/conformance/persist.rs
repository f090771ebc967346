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

pub(crate) fn write_case(dir: &Path, case: &SavedCase<'_>) -> io::Result<()> {
    std::fs::create_dir_all(dir)?;
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

pub(super) fn save_regression(dir: &Path, case: &SavedCase<'_>) -> io::Result<()> {
    let g = case.group;
    let name = format!(
        "{}-{:016x}",
        g.check.id(),
        fnv(format!("{}\u{0}{}", g.fingerprint, case.target.describe()).as_bytes())
    );
    let dir = dir.join(name);
    std::fs::create_dir_all(&dir)?;
    std::fs::write(dir.join("event.json"), &case.minimal.bytes)?;
    let meta = serde_json::to_vec_pretty(&case_json(case)).map_err(io::Error::other)?;
    std::fs::write(dir.join("case.json"), meta)
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

/// Every regression under `dir`, sorted by name. A missing folder is an empty list.
pub fn load_regressions(dir: &Path) -> Result<Vec<CaseFile>, String> {
    let entries = match std::fs::read_dir(dir) {
        Ok(e) => e,
        Err(e) if e.kind() == io::ErrorKind::NotFound => return Ok(Vec::new()),
        Err(e) => return Err(format!("cannot read {}: {e}", dir.display())),
    };
    let mut dirs: Vec<PathBuf> = entries
        .filter_map(Result::ok)
        .map(|e| e.path())
        .filter(|p| p.join("event.json").is_file())
        .collect();
    dirs.sort();
    dirs.iter().map(|d| load_case(d)).collect()
}
