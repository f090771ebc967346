use std::io::{BufWriter, Write};

use clap::Args;
use firehose_generators::GenConfig;
use firehose_generators::strategies::sample;

use super::GeneratorArgs;
use crate::errors::CliError;
use crate::exit_codes;

#[derive(Debug, Clone, Args)]
pub struct GenerateArgs {
    /// How many events to print.
    #[arg(long, default_value_t = 10, value_name = "N")]
    pub count: u64,
    /// Same seed, same bytes.
    #[arg(long, default_value_t = 0, value_name = "S")]
    pub seed: u64,
    #[command(flatten)]
    pub generator: GeneratorArgs,
}

pub fn run(args: GenerateArgs) -> Result<i32, CliError> {
    let cfg = args.generator.to_config()?;
    let stdout = std::io::stdout();
    let mut out = BufWriter::with_capacity(1 << 20, stdout.lock());
    for i in 0..args.count {
        let event = sample(&cfg, GenConfig::case_seed(args.seed, i)).materialize();
        let written = out
            .write_all(&event.to_json())
            .and_then(|()| out.write_all(b"\n"));
        if let Err(e) = written {
            // `generate | head` closes the pipe early: that is success, not an error.
            if e.kind() == std::io::ErrorKind::BrokenPipe {
                return Ok(exit_codes::OK);
            }
            return Err(CliError::Io(format!("cannot write to stdout: {e}")));
        }
    }
    match out.flush() {
        Err(e) if e.kind() != std::io::ErrorKind::BrokenPipe => {
            Err(CliError::Io(format!("cannot write to stdout: {e}")))
        }
        _ => Ok(exit_codes::OK),
    }
}
