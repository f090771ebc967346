//! The shape of `harness/src`, checked: modules import one way, and only the CLI knows clap.
//!
//! A module here is a top-level file or folder under `harness/src` (`load/`, `report.rs`, …). The
//! test reads every `crate::` path and every `super::` chain that climbs out of its top-level
//! module, builds the graph between modules, and fails on a cycle — so `a` using `b` while `b`
//! uses `a` cannot creep back in once it is gone. It reads source text rather than compiling:
//! `cargo-modules` gives the same answer but is far too heavy for every test run.

use std::collections::{BTreeMap, BTreeSet};
use std::path::{Path, PathBuf};

/// Cycles between top-level modules that are still tolerated, each as its sorted members. The list
/// may only shrink, and it is empty: the last cycle ran `events` → `load` (`RunEvent::Load` carried
/// `load::LoadEvent`) until the load run's events moved into `events.rs`, and `load` → `conformance`
/// until the case layer (`case/`) took failure groups, case folders and `Origin` out of the check loop.
const KNOWN_CYCLES: &[&[&str]] = &[];

fn src() -> PathBuf {
    Path::new(env!("CARGO_MANIFEST_DIR")).join("src")
}

fn rust_files(dir: &Path, out: &mut Vec<PathBuf>) {
    let mut entries: Vec<_> = std::fs::read_dir(dir)
        .unwrap_or_else(|e| panic!("cannot list {}: {e}", dir.display()))
        .map(|e| e.expect("a directory entry").path())
        .collect();
    entries.sort();
    for p in entries {
        if p.is_dir() {
            rust_files(&p, out);
        } else if p.extension().is_some_and(|x| x == "rs") {
            out.push(p);
        }
    }
}

/// The module path of a file: `load/report.rs` → `[load, report]`, `load/mod.rs` → `[load]`.
fn module_path(file: &Path) -> Vec<String> {
    let rel = file.strip_prefix(src()).expect("under src");
    let mut parts: Vec<String> = rel
        .with_extension("")
        .components()
        .map(|c| c.as_os_str().to_string_lossy().into_owned())
        .collect();
    if parts.last().is_some_and(|l| l == "mod") {
        parts.pop();
    }
    parts
}

/// Code without comments: doc links and prose name modules without depending on them.
fn code_lines(text: &str) -> impl Iterator<Item = &str> {
    text.lines().filter(|l| !l.trim_start().starts_with("//"))
}

/// Identifiers following `prefix` in `line` (`crate::{a, b::c}` gives `a` and `b`).
fn names_after<'a>(line: &'a str, prefix: &str) -> Vec<&'a str> {
    let mut out = Vec::new();
    let mut rest = line;
    while let Some(i) = rest.find(prefix) {
        let before = rest[..i].chars().next_back();
        rest = &rest[i + prefix.len()..];
        if before.is_some_and(|c| c.is_alphanumeric() || c == '_') {
            continue;
        }
        if let Some(group) = rest.strip_prefix('{') {
            let end = group.find('}').unwrap_or(group.len());
            for item in group[..end].split(',') {
                let name = item.trim().split("::").next().unwrap_or("").trim();
                if !name.is_empty() {
                    out.push(name);
                }
            }
        } else {
            let end = rest
                .find(|c: char| !(c.is_alphanumeric() || c == '_'))
                .unwrap_or(rest.len());
            out.push(&rest[..end]);
        }
    }
    out
}

/// Top-level module → the top-level modules it names.
fn module_graph() -> BTreeMap<String, BTreeSet<String>> {
    let mut files = Vec::new();
    rust_files(&src(), &mut files);
    let mut graph: BTreeMap<String, BTreeSet<String>> = BTreeMap::new();
    for file in files {
        let path = module_path(&file);
        let top = path[0].clone();
        if top == "main" || top == "lib" {
            continue;
        }
        let text = std::fs::read_to_string(&file).expect("readable source");
        let deps = graph.entry(top.clone()).or_default();
        // An inline module (`mod tests {`) adds a level that `super::` climbs first.
        let mut inline = 0usize;
        for line in code_lines(&text) {
            let t = line.trim_start();
            if line.starts_with(|c: char| !c.is_whitespace())
                && (t.starts_with("mod ")
                    || t.starts_with("pub mod ")
                    || t.starts_with("pub(crate) mod "))
                && t.trim_end().ends_with('{')
            {
                inline += 1;
            } else if line.starts_with('}') {
                inline = inline.saturating_sub(1);
            }
            for name in names_after(line, "crate::") {
                if name != top {
                    deps.insert(name.to_string());
                }
            }
            // `super::super::x` from `load/report.rs` inside `mod tests` is `load::x`: only chains
            // that climb past the top-level module name another one.
            let mut rest = line;
            while let Some(i) = rest.find("super::") {
                let mut after = &rest[i..];
                let mut climbs = 0;
                while let Some(r) = after.strip_prefix("super::") {
                    after = r;
                    climbs += 1;
                }
                let depth = path.len() + inline;
                if climbs >= depth {
                    let end = after
                        .find(|c: char| !(c.is_alphanumeric() || c == '_'))
                        .unwrap_or(after.len());
                    let name = &after[..end];
                    if !name.is_empty() && name != top && name != "*" {
                        deps.insert(name.to_string());
                    }
                }
                rest = after;
            }
        }
    }
    // Only edges between modules of the crate (not `crate::SOME_CONST` at the root).
    let modules: BTreeSet<String> = graph.keys().cloned().collect();
    for deps in graph.values_mut() {
        deps.retain(|d| modules.contains(d));
    }
    graph
}

/// Strongly connected components with more than one member (Tarjan), each sorted.
fn cycles(graph: &BTreeMap<String, BTreeSet<String>>) -> Vec<Vec<String>> {
    struct State<'g> {
        graph: &'g BTreeMap<String, BTreeSet<String>>,
        index: BTreeMap<&'g str, usize>,
        low: BTreeMap<&'g str, usize>,
        stack: Vec<&'g str>,
        on_stack: BTreeSet<&'g str>,
        next: usize,
        out: Vec<Vec<String>>,
    }
    fn visit<'g>(s: &mut State<'g>, v: &'g str) {
        s.index.insert(v, s.next);
        s.low.insert(v, s.next);
        s.next += 1;
        s.stack.push(v);
        s.on_stack.insert(v);
        for w in s.graph.get(v).into_iter().flatten() {
            let w = w.as_str();
            if !s.index.contains_key(w) {
                visit(s, w);
                let low = s.low[v].min(s.low[w]);
                s.low.insert(v, low);
            } else if s.on_stack.contains(w) {
                let low = s.low[v].min(s.index[w]);
                s.low.insert(v, low);
            }
        }
        if s.low[v] == s.index[v] {
            let mut component = Vec::new();
            while let Some(w) = s.stack.pop() {
                s.on_stack.remove(w);
                component.push(w.to_string());
                if w == v {
                    break;
                }
            }
            if component.len() > 1 {
                component.sort();
                s.out.push(component);
            }
        }
    }
    let mut s = State {
        graph,
        index: BTreeMap::new(),
        low: BTreeMap::new(),
        stack: Vec::new(),
        on_stack: BTreeSet::new(),
        next: 0,
        out: Vec::new(),
    };
    for v in graph.keys() {
        if !s.index.contains_key(v.as_str()) {
            visit(&mut s, v);
        }
    }
    s.out.sort();
    s.out
}

#[test]
fn the_cycle_finder_finds_cycles_and_nothing_else() {
    let graph = |edges: &[(&str, &str)]| {
        let mut g: BTreeMap<String, BTreeSet<String>> = BTreeMap::new();
        for (a, b) in edges {
            g.entry(a.to_string()).or_default().insert(b.to_string());
            g.entry(b.to_string()).or_default();
        }
        g
    };
    assert!(cycles(&graph(&[("cli", "load"), ("load", "contract")])).is_empty());
    assert_eq!(
        cycles(&graph(&[
            ("a", "b"),
            ("b", "c"),
            ("c", "a"),
            ("c", "d"),
            ("d", "e"),
            ("e", "d")
        ])),
        vec![vec!["a", "b", "c"], vec!["d", "e"]]
    );
}

#[test]
fn imports_are_read_from_use_lines_groups_and_paths() {
    assert_eq!(
        names_after("use crate::{exit_codes, values::parse};", "crate::"),
        ["exit_codes", "values"]
    );
    assert_eq!(
        names_after("let x = crate::targets::http::read(p);", "crate::"),
        ["targets"]
    );
    assert!(names_after("let x = mycrate::load;", "crate::").is_empty());
}

#[test]
fn no_module_imports_one_that_imports_it_back() {
    let graph = module_graph();
    assert!(
        graph.get("cli").is_some_and(|d| d.contains("load")),
        "the graph reader lost the imports: {graph:?}"
    );
    let found = cycles(&graph);
    let known: Vec<Vec<String>> = KNOWN_CYCLES
        .iter()
        .map(|c| c.iter().map(|m| m.to_string()).collect())
        .collect();
    for cycle in &found {
        assert!(
            known.contains(cycle),
            "a new import cycle between modules of harness/src: {cycle:?}\nthe graph: {graph:#?}"
        );
    }
    for cycle in &known {
        assert!(
            found.contains(cycle),
            "the cycle {cycle:?} is gone (or smaller now: {found:?}): delete or shrink its entry in KNOWN_CYCLES so it cannot come back"
        );
    }
}

#[test]
fn only_the_cli_and_main_know_clap() {
    let mut files = Vec::new();
    rust_files(&src(), &mut files);
    let mut offenders = Vec::new();
    for file in files {
        let path = module_path(&file);
        if path[0] == "cli" || path[0] == "main" {
            continue;
        }
        let text = std::fs::read_to_string(&file).expect("readable source");
        for line in code_lines(&text) {
            if line.contains("clap") {
                offenders.push(format!("{}: {}", file.display(), line.trim()));
            }
        }
    }
    assert!(
        offenders.is_empty(),
        "clap outside cli/ and main.rs:\n{}",
        offenders.join("\n")
    );
}
