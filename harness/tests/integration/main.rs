//! One integration-test binary (one link, not one per file): the CLI driven as users drive it, against
//! real HTTP servers on 127.0.0.1.

mod cli_basics;
mod hostile;
mod load;
mod spine;
mod support;
mod zoo;
