//! One integration-test binary (one link, not one per file): the CLI driven as users drive it, against
//! real HTTP servers on 127.0.0.1.

mod aws;
mod cli_basics;
mod emulate;
mod exec;
mod generators_zoo;
mod hostile;
mod load;
mod runtimes;
mod spine;
mod stdio;
mod support;
mod zoo;
