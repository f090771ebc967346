//! The `firehose-harness` binary: parse, run, map the outcome to an exit code — nothing else.

use clap::Parser;
use clap::error::ErrorKind;
use firehose_harness::cli::Cli;
use firehose_harness::errors::exit_code;
use firehose_harness::{exit_codes, terminal};

// See harness/Cargo.toml: glibc's allocator makes the load engine's threads contend.
#[cfg(not(target_env = "msvc"))]
#[global_allocator]
static ALLOCATOR: tikv_jemallocator::Jemalloc = tikv_jemallocator::Jemalloc;

fn main() {
    let cli = match Cli::try_parse() {
        Ok(cli) => cli,
        Err(e) => match e.kind() {
            ErrorKind::DisplayHelp | ErrorKind::DisplayVersion => {
                let _ = e.print();
                std::process::exit(exit_codes::OK);
            }
            ErrorKind::DisplayHelpOnMissingArgumentOrSubcommand => {
                let _ = e.print();
                std::process::exit(exit_codes::USAGE);
            }
            _ => {
                // One line, not clap's page: what is wrong, then where to look.
                let first = firehose_harness::cli::clap_one_line(&e);
                terminal::err(format_args!("firehose-harness: {first} (see --help)"));
                std::process::exit(exit_codes::USAGE);
            }
        },
    };
    match cli.run() {
        Ok(code) => std::process::exit(code),
        Err(e) => {
            match e.hint() {
                Some(hint) => terminal::err(format_args!("firehose-harness: {e} — {hint}")),
                None => terminal::err(format_args!("firehose-harness: {e}")),
            }
            std::process::exit(exit_code(&e));
        }
    }
}
