//! One integration-test binary (one link, not one per file): the CLI driven as users drive it, against
//! real HTTP servers on 127.0.0.1.

mod aws;
mod ci_templates;
mod cli_basics;
mod delivery;
mod emulate;
mod exec;
mod generator_flags;
mod generators_zoo;
mod golden;
mod hardening;
mod hostile;
mod load;
mod oracle_cost;
mod orphans;
mod properties;
mod reports;
mod runtimes;
mod scenarios;
mod secrets;
mod spine;
mod stdio;
mod structure;
mod support;
mod verdicts;
mod workers;
mod zoo;
