//! `run SCENARIO.toml`: a scenario file is a command line written down.
//!
//! Every key is a flag of the named command (`record-size = "0..64KiB"` is `--record-size 0..64KiB`;
//! underscores may stand for dashes), so there is one parser for every flag and scenario key and a
//! scenario can never mean something the CLI cannot. Tables only group keys for readability; arrays
//! repeat a flag; `true` sets a switch and `false` leaves it off. Paths are relative to the current
//! directory, as on the command line.

use std::path::PathBuf;

use clap::{Args, Parser};
use toml::Value;

use super::Cli;
use crate::errors::CliError;

#[derive(Debug, Clone, Args)]
pub struct RunArgs {
    /// A scenario file (TOML): `command = "check"` plus that command's flags as keys.
    #[arg(value_name = "SCENARIO.toml")]
    pub scenario: PathBuf,
}

/// The command-line arguments a scenario stands for.
pub fn scenario_args(text: &str) -> Result<Vec<String>, String> {
    let table: toml::Table = text.parse().map_err(|e: toml::de::Error| {
        e.to_string()
            .lines()
            .next()
            .unwrap_or("invalid TOML")
            .to_string()
    })?;
    let command = match table.get("command") {
        Some(Value::String(c)) => c.clone(),
        Some(_) => return Err("`command` must be a string such as \"check\" or \"load\"".into()),
        None => return Err("the scenario has no `command` key (e.g. command = \"check\")".into()),
    };
    if command == "run" {
        return Err("a scenario cannot run another scenario".into());
    }
    let mut args = vec!["firehose-harness".to_string(), command];
    flatten(&table, &mut args)?;
    Ok(args)
}

fn flatten(table: &toml::Table, args: &mut Vec<String>) -> Result<(), String> {
    for (key, value) in table {
        if key == "command" {
            continue;
        }
        let flag = format!("--{}", key.replace('_', "-"));
        match value {
            Value::Table(inner) => flatten(inner, args)?,
            Value::Array(items) => {
                for item in items {
                    args.push(flag.clone());
                    args.push(scalar(key, item)?);
                }
            }
            Value::Boolean(true) => args.push(flag),
            Value::Boolean(false) => {}
            other => {
                args.push(flag);
                args.push(scalar(key, other)?);
            }
        }
    }
    Ok(())
}

fn scalar(key: &str, v: &Value) -> Result<String, String> {
    match v {
        Value::String(s) => Ok(s.clone()),
        Value::Integer(i) => Ok(i.to_string()),
        Value::Float(f) => Ok(f.to_string()),
        _ => Err(format!(
            "`{key}`: expected a string, number or list of them"
        )),
    }
}

pub fn run(args: RunArgs) -> Result<i32, CliError> {
    let text = std::fs::read_to_string(&args.scenario)
        .map_err(|e| CliError::usage(format!("cannot read {}: {e}", args.scenario.display())))?;
    let argv = scenario_args(&text)
        .map_err(|e| CliError::usage(format!("{}: {e}", args.scenario.display())))?;
    let cli = Cli::try_parse_from(&argv).map_err(|e| {
        use clap::error::ErrorKind;
        let what = match e.kind() {
            // Help pages are not errors on the command line, but a scenario cannot show one.
            ErrorKind::DisplayHelp
            | ErrorKind::DisplayVersion
            | ErrorKind::DisplayHelpOnMissingArgumentOrSubcommand => format!(
                "`{}` is not a complete command (a help page, or a subcommand missing)",
                argv.get(1).map_or("", String::as_str)
            ),
            _ => super::clap_one_line(&e).replace("argument '--", "key '"),
        };
        CliError::usage(format!("{}: {what}", args.scenario.display()))
    })?;
    cli.run()
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn keys_become_flags() {
        let args = scenario_args(
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
        )
        .unwrap();
        // Keys come in table order; repeated flags keep their array order.
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
    fn shipped_scenarios_parse() {
        let dir = std::path::Path::new(env!("CARGO_MANIFEST_DIR")).join("../scenarios");
        let mut n = 0;
        for entry in std::fs::read_dir(dir).unwrap() {
            let path = entry.unwrap().path();
            if path.extension().is_some_and(|e| e == "toml") {
                let args = scenario_args(&std::fs::read_to_string(&path).unwrap()).unwrap();
                Cli::try_parse_from(&args).unwrap_or_else(|e| panic!("{}: {e}", path.display()));
                n += 1;
            }
        }
        assert!(n >= 3);
    }

    #[test]
    fn bad_scenarios_say_why() {
        assert!(
            scenario_args("target = 1")
                .unwrap_err()
                .contains("no `command`")
        );
        assert!(scenario_args("command = [").is_err());
        let args =
            scenario_args("command = \"check\"\ntarget = \"builtin:ndjson\"\ncasez = 3").unwrap();
        assert!(Cli::try_parse_from(&args).is_err());
    }
}
