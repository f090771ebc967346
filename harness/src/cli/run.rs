//! `run SCENARIO.toml [FLAGS…]`: a scenario file is a command line written down.
//!
//! Every key is a flag of the named command (`record-size = "0..64KiB"` is `--record-size 0..64KiB`;
//! underscores may stand for dashes), so there is one parser for every flag and scenario key and a
//! scenario can never mean something the CLI cannot. Tables only group keys for readability; arrays
//! repeat a flag; `true` sets a switch and `false` leaves it off. Paths are relative to the current
//! directory, as on the command line.
//!
//! - Flags after the file override it: each replaces the scenario's key of the same name
//!   (`run ci-gate.toml --target http://127.0.0.1:8080/`).
//! - String values may use the environment: `${VAR}` (an error when unset) and `${VAR:-default}`;
//!   `$${` is a literal `${`.
//! - Every error names the file, the line and the key: TOML syntax, an unset variable, a misspelt
//!   key, a bad value.

use std::path::{Path, PathBuf};

use clap::error::{ContextKind, ContextValue, ErrorKind};
use clap::{Args, CommandFactory, Parser};
use toml::Spanned;
use toml::de::{DeTable, DeValue};

use super::Cli;
use crate::errors::CliError;

#[derive(Debug, Clone, Args)]
pub struct RunArgs {
    /// A scenario file (TOML): `command = "check"` plus that command's flags as keys.
    #[arg(value_name = "SCENARIO.toml")]
    pub scenario: PathBuf,
    /// Flags of the scenario's command; each replaces the scenario's key of the same name.
    #[arg(
        value_name = "FLAGS",
        trailing_var_arg = true,
        allow_hyphen_values = true
    )]
    pub overrides: Vec<String>,
}

/// One key of a scenario, as the flag it stands for.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Entry {
    /// The flag's name without dashes (`record-size`).
    pub flag: String,
    /// The key as written (`record_size`), for messages.
    pub key: String,
    /// 1-based line of the key.
    pub line: usize,
    /// The flag's arguments: `--flag V` per value, or just `--flag` for a switch.
    pub args: Vec<String>,
}

/// A scenario file, read: its command and its keys in file order.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Scenario {
    pub command: String,
    pub entries: Vec<Entry>,
}

/// Why a scenario cannot be read, with where.
#[derive(Debug, Clone, PartialEq, Eq, thiserror::Error)]
#[error("{}{}{reason}", line.map(|l| format!("line {l}: ")).unwrap_or_default(), key.as_ref().map(|k| format!("key `{k}`: ")).unwrap_or_default())]
pub struct ScenarioError {
    pub line: Option<usize>,
    pub key: Option<String>,
    pub reason: String,
}

impl ScenarioError {
    fn at(line: usize, key: &str, reason: impl Into<String>) -> Self {
        ScenarioError {
            line: Some(line),
            key: Some(key.to_string()),
            reason: reason.into(),
        }
    }
}

/// 1-based line of byte `offset` in `text`.
fn line_of(text: &str, offset: usize) -> usize {
    text[..offset.min(text.len())]
        .bytes()
        .filter(|b| *b == b'\n')
        .count()
        + 1
}

impl Scenario {
    /// Read a scenario; `env` looks variables up (the process environment in `run`).
    pub fn parse(
        text: &str,
        env: &dyn Fn(&str) -> Option<String>,
    ) -> Result<Scenario, ScenarioError> {
        let doc = DeTable::parse(text).map_err(|e| {
            let line = e.span().map(|s| line_of(text, s.start));
            // The key of the line the error is on, when it is a `key = value` line.
            let key = line.and_then(|l| {
                let src = text.lines().nth(l - 1)?;
                let (k, _) = src.split_once('=')?;
                let k = k.trim().trim_matches('"');
                (!k.is_empty() && !k.starts_with('[')).then(|| k.to_string())
            });
            ScenarioError {
                line,
                key,
                reason: e.message().to_string(),
            }
        })?;
        let mut command = None;
        let mut entries = Vec::new();
        walk(text, doc.get_ref(), env, &mut command, &mut entries)?;
        let command = command.ok_or_else(|| ScenarioError {
            line: None,
            key: None,
            reason: "the scenario has no `command` key (e.g. command = \"check\")".into(),
        })?;
        if command == "run" {
            return Err(ScenarioError {
                line: None,
                key: Some("command".into()),
                reason: "a scenario cannot run another scenario".into(),
            });
        }
        Ok(Scenario { command, entries })
    }

    /// The command line: scenario keys, minus those `overrides` replace, then `overrides`.
    pub fn argv(&self, overrides: &[String]) -> Vec<String> {
        let replaced = override_flags(&self.command, overrides);
        let mut argv = vec!["firehose-harness".to_string(), self.command.clone()];
        for e in &self.entries {
            if !replaced.contains(&e.flag) {
                argv.extend(e.args.iter().cloned());
            }
        }
        argv.extend(overrides.iter().cloned());
        argv
    }

    /// The scenario key behind flag `--name`, unless the command line replaced it.
    fn entry_for(&self, name: &str, overrides: &[String]) -> Option<&Entry> {
        if override_flags(&self.command, overrides)
            .iter()
            .any(|f| f == name)
        {
            return None;
        }
        self.entries.iter().find(|e| e.flag == name)
    }
}

fn walk(
    text: &str,
    table: &DeTable<'_>,
    env: &dyn Fn(&str) -> Option<String>,
    command: &mut Option<String>,
    entries: &mut Vec<Entry>,
) -> Result<(), ScenarioError> {
    for (key, value) in table.iter() {
        let name: &str = key.get_ref();
        let line = line_of(text, key.span().start);
        if name == "command" {
            match value.get_ref() {
                DeValue::String(c) => *command = Some(c.to_string()),
                _ => {
                    return Err(ScenarioError::at(
                        line,
                        name,
                        "must be a string such as \"check\" or \"load\"",
                    ));
                }
            }
            continue;
        }
        let flag_name = name.replace('_', "-");
        let flag = format!("--{flag_name}");
        let mut args = Vec::new();
        match value.get_ref() {
            DeValue::Table(inner) => {
                walk(text, inner, env, command, entries)?;
                continue;
            }
            DeValue::Array(items) => {
                for item in items.iter() {
                    args.push(flag.clone());
                    args.push(scalar(item, env).map_err(|r| ScenarioError::at(line, name, r))?);
                }
            }
            DeValue::Boolean(true) => args.push(flag),
            DeValue::Boolean(false) => {}
            _ => {
                args.push(flag);
                args.push(scalar(value, env).map_err(|r| ScenarioError::at(line, name, r))?);
            }
        }
        entries.push(Entry {
            flag: flag_name,
            key: name.to_string(),
            line,
            args,
        });
    }
    Ok(())
}

fn scalar(
    v: &Spanned<DeValue<'_>>,
    env: &dyn Fn(&str) -> Option<String>,
) -> Result<String, String> {
    match v.get_ref() {
        DeValue::String(s) => expand(s, env),
        DeValue::Integer(i) => i64::from_str_radix(i.as_str(), i.radix())
            .map(|n| n.to_string())
            .map_err(|_| format!("{} does not fit a 64-bit integer", i.as_str())),
        DeValue::Float(f) => Ok(f.as_str().to_string()),
        _ => Err("expected a string, number or list of them".into()),
    }
}

/// `${VAR}` and `${VAR:-default}` from `env`; `$${` is a literal `${`. Nothing else is touched, so
/// `$1` in an `exec:` command stays as written (unlike a shell-style expander).
pub fn expand(s: &str, env: &dyn Fn(&str) -> Option<String>) -> Result<String, String> {
    let mut out = String::with_capacity(s.len());
    let mut rest = s;
    while let Some(at) = rest.find('$') {
        out.push_str(&rest[..at]);
        let tail = &rest[at..];
        if let Some(after) = tail.strip_prefix("$${") {
            out.push_str("${");
            rest = after;
        } else if let Some(after) = tail.strip_prefix("${") {
            let end = after
                .find('}')
                .ok_or_else(|| format!("`${{` in {s:?} is never closed with `}}`"))?;
            let expr = &after[..end];
            let (name, default) = match expr.split_once(":-") {
                Some((n, d)) => (n, Some(d)),
                None => (expr, None),
            };
            let valid = !name.is_empty()
                && name.chars().all(|c| c.is_ascii_alphanumeric() || c == '_')
                && !name.starts_with(|c: char| c.is_ascii_digit());
            if !valid {
                return Err(format!(
                    "`${{{expr}}}` is not ${{VAR}} or ${{VAR:-default}}"
                ));
            }
            match (env(name).filter(|v| !v.is_empty()), default) {
                (Some(v), _) => out.push_str(&v),
                (None, Some(d)) => out.push_str(d),
                (None, None) => {
                    return Err(format!(
                        "${{{name}}} is not set (write ${{{name}:-DEFAULT}} to give a default)"
                    ));
                }
            }
            rest = &after[end + 1..];
        } else {
            out.push('$');
            rest = &tail[1..];
        }
    }
    out.push_str(rest);
    Ok(out)
}

/// The long names (`target`) of the flags in `overrides`, short ones (`-t`) resolved through the
/// command's definition.
fn override_flags(command: &str, overrides: &[String]) -> Vec<String> {
    let cmd = Cli::command();
    let sub = cmd.find_subcommand(command);
    overrides
        .iter()
        .filter_map(|a| {
            if let Some(long) = a.strip_prefix("--") {
                Some(long.split('=').next().unwrap_or(long).to_string())
            } else if let Some(short) = a.strip_prefix('-') {
                let c = short.chars().next()?;
                sub?.get_arguments()
                    .find(|arg| arg.get_short() == Some(c))
                    .and_then(|arg| arg.get_long())
                    .map(str::to_string)
            } else {
                None
            }
        })
        .collect()
}

/// The flag a clap error is about (`--casez`, `--cases <N>`), without dashes.
fn flag_of(e: &clap::Error) -> Option<String> {
    let arg = match e.get(ContextKind::InvalidArg)? {
        ContextValue::String(s) => s.clone(),
        ContextValue::Strings(v) => v.first()?.clone(),
        _ => return None,
    };
    let name = arg.strip_prefix("--")?;
    Some(
        name.split([' ', '=', '<'])
            .next()
            .unwrap_or(name)
            .to_string(),
    )
}

fn located(path: &Path, entry: Option<&Entry>, what: &str) -> CliError {
    match entry {
        Some(e) => CliError::usage(format!(
            "{}:{}: key `{}`: {what}",
            path.display(),
            e.line,
            e.key
        )),
        None => CliError::usage(format!("{}: {what}", path.display())),
    }
}

pub fn run(args: RunArgs) -> Result<i32, CliError> {
    let path = &args.scenario;
    let text = std::fs::read_to_string(path)
        .map_err(|e| CliError::usage(format!("cannot read {}: {e}", path.display())))?;
    let scenario = Scenario::parse(&text, &|name| std::env::var(name).ok()).map_err(|e| {
        let at = e.line.map(|l| format!(":{l}")).unwrap_or_default();
        let key = e.key.map(|k| format!(" key `{k}`:")).unwrap_or_default();
        CliError::usage(format!("{}{at}:{key} {}", path.display(), e.reason))
    })?;
    let argv = scenario.argv(&args.overrides);
    let cli = Cli::try_parse_from(&argv).map_err(|e| {
        let what = match e.kind() {
            // Help pages are not errors on the command line, but a scenario cannot show one.
            ErrorKind::DisplayHelp
            | ErrorKind::DisplayVersion
            | ErrorKind::DisplayHelpOnMissingArgumentOrSubcommand => format!(
                "`{}` is not a complete command (a help page, or a subcommand missing)",
                scenario.command
            ),
            _ => super::clap_one_line(&e).replace("argument '--", "key '"),
        };
        let entry = flag_of(&e).and_then(|f| scenario.entry_for(&f, &args.overrides).cloned());
        located(path, entry.as_ref(), &what)
    })?;
    cli.run().map_err(|e| match e {
        // "--deadline: …" from a scenario key: say which line.
        CliError::Usage(msg) => {
            let flag = msg
                .strip_prefix("--")
                .and_then(|m| m.split([':', ' ']).next())
                .map(str::to_string);
            match flag.and_then(|f| scenario.entry_for(&f, &args.overrides)) {
                Some(entry) => located(path, Some(entry), &msg),
                None => CliError::Usage(msg),
            }
        }
        other => other,
    })
}

#[cfg(test)]
mod tests {
    use super::*;

    fn no_env(_: &str) -> Option<String> {
        None
    }

    fn args(text: &str) -> Vec<String> {
        Scenario::parse(text, &no_env).unwrap().argv(&[])
    }

    #[test]
    fn keys_become_flags() {
        let args = args(
            r#"
            command = "check"
            target = "builtin:ndjson"
            cases = 20
            no_boundary = true
            no-shrink = false
            checks = ["+deterministic", "-partition_keys_valid"]
            [generators]
            record-size = "0..64KiB"
            "#,
        );
        // Repeated flags keep their array order.
        let joined = args.join(" ");
        for part in [
            "firehose-harness check",
            "--target builtin:ndjson",
            "--cases 20",
            "--checks +deterministic --checks -partition_keys_valid",
            "--record-size 0..64KiB",
        ] {
            assert!(joined.contains(part), "{part} in {joined}");
        }
        assert!(args.contains(&"--no-boundary".to_string()));
        assert!(!args.contains(&"--no-shrink".to_string()));
        assert!(Cli::try_parse_from(&args).is_ok());
    }

    #[test]
    fn command_line_flags_replace_keys() {
        let s = Scenario::parse(
            "command = \"check\"\ntarget = \"builtin:ndjson\"\ncases = 20\nchecks = [\"+deterministic\"]\n",
            &no_env,
        )
        .unwrap();
        let argv = s.argv(&[
            "-t".into(),
            "http://127.0.0.1:1/".into(),
            "--checks=-ok_has_data".into(),
        ]);
        let joined = argv.join(" ");
        assert!(!joined.contains("builtin:ndjson"), "{joined}");
        assert!(!joined.contains("+deterministic"), "{joined}");
        assert!(joined.contains("--cases 20"), "{joined}");
        assert!(joined.ends_with("-t http://127.0.0.1:1/ --checks=-ok_has_data"));
        assert!(Cli::try_parse_from(&argv).is_ok());
    }

    #[test]
    fn environment_variables_and_defaults() {
        let env = |n: &str| (n == "T").then(|| "http://h/".to_string());
        assert_eq!(expand("${T}", &env).unwrap(), "http://h/");
        assert_eq!(
            expand("x${U:-builtin:ndjson}y", &env).unwrap(),
            "xbuiltin:ndjsony"
        );
        assert_eq!(expand("${T:-other}", &env).unwrap(), "http://h/");
        assert_eq!(
            expand("sh -c 'echo $1' $${T}", &env).unwrap(),
            "sh -c 'echo $1' ${T}"
        );
        assert!(
            expand("${U}", &env)
                .unwrap_err()
                .contains("${U} is not set")
        );
        assert!(expand("${T", &env).is_err());
        assert!(expand("${1X}", &env).is_err());
        let e =
            Scenario::parse("command = \"check\"\n\ntarget = \"${NOPE}\"\n", &no_env).unwrap_err();
        assert_eq!((e.line, e.key.as_deref()), (Some(3), Some("target")));
    }

    #[test]
    fn shipped_scenarios_parse() {
        let dir = std::path::Path::new(env!("CARGO_MANIFEST_DIR")).join("../scenarios");
        let mut n = 0;
        for entry in std::fs::read_dir(dir).unwrap() {
            let path = entry.unwrap().path();
            if path.extension().is_some_and(|e| e == "toml") {
                let args = Scenario::parse(&std::fs::read_to_string(&path).unwrap(), &no_env)
                    .unwrap_or_else(|e| panic!("{}: {e}", path.display()))
                    .argv(&[]);
                Cli::try_parse_from(&args).unwrap_or_else(|e| panic!("{}: {e}", path.display()));
                n += 1;
            }
        }
        assert!(n >= 4);
    }

    #[test]
    fn bad_scenarios_say_where_and_why() {
        let e = Scenario::parse("target = 1", &no_env).unwrap_err();
        assert!(e.reason.contains("no `command`"));
        let e = Scenario::parse("command = \"check\"\ncases = 2OO\n", &no_env).unwrap_err();
        assert_eq!((e.line, e.key.as_deref()), (Some(2), Some("cases")), "{e}");
        assert!(!e.reason.is_empty());
        let e = Scenario::parse("command = [", &no_env).unwrap_err();
        assert_eq!(e.line, Some(1));
        let s = Scenario::parse(
            "command = \"check\"\ntarget = \"builtin:ndjson\"\ncasez = 3",
            &no_env,
        )
        .unwrap();
        let err = Cli::try_parse_from(s.argv(&[])).unwrap_err();
        assert_eq!(flag_of(&err).as_deref(), Some("casez"));
        assert_eq!(s.entry_for("casez", &[]).map(|e| e.line), Some(3));
    }
}
