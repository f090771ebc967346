//! `completions SHELL` and `man`: generated from the clap definitions, so they never drift from the
//! flags the binary actually takes.

use std::path::PathBuf;

use clap::{Args, CommandFactory};

use super::Cli;
use crate::errors::CliError;
use crate::exit_codes;

#[derive(Debug, Clone, Args)]
pub struct CompletionsArgs {
    /// bash, zsh, fish, elvish or powershell.
    #[arg(value_name = "SHELL")]
    pub shell: clap_complete::Shell,
}

#[derive(Debug, Clone, Args)]
pub struct ManArgs {
    /// Write one page per command (firehose-harness.1, firehose-harness-check.1, …) into DIR
    /// instead of printing the main page.
    #[arg(long, value_name = "DIR")]
    pub out_dir: Option<PathBuf>,
}

pub fn completions(args: CompletionsArgs) -> Result<i32, CliError> {
    let mut cmd = Cli::command();
    // Rendered first: clap_complete panics on a write error, and a closed pipe is not a crash.
    let mut script = Vec::new();
    clap_complete::generate(args.shell, &mut cmd, "firehose-harness", &mut script);
    crate::terminal::out_raw(String::from_utf8_lossy(&script));
    Ok(exit_codes::OK)
}

pub fn man(args: ManArgs) -> Result<i32, CliError> {
    let cmd = Cli::command();
    match args.out_dir {
        Some(dir) => {
            std::fs::create_dir_all(&dir)
                .map_err(|e| CliError::Io(format!("cannot create {}: {e}", dir.display())))?;
            clap_mangen::generate_to(cmd, &dir).map_err(|e| {
                CliError::Io(format!("cannot write man pages to {}: {e}", dir.display()))
            })?;
        }
        None => clap_mangen::Man::new(cmd)
            .render(&mut std::io::stdout())
            .map_err(|e| CliError::Io(format!("cannot write the man page: {e}")))?,
    }
    Ok(exit_codes::OK)
}
