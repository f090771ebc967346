//! Exit codes: one documented constant per outcome; [`crate::errors::exit_code`] and the run results
//! map onto them in one place. When several apply, the first in this list wins.

/// Usage or configuration error: bad flag, scenario, corpus or target string.
pub const USAGE: i32 = 2;
/// The target could not be started or reached, so nothing was judged.
pub const TARGET_UNAVAILABLE: i32 = 4;
/// Contract violations found.
pub const VIOLATIONS: i32 = 1;
/// A threshold was breached, or `report compare` found a regression.
pub const THRESHOLD: i32 = 3;
/// Interrupted (Ctrl-C); a partial report is still written.
pub const INTERRUPTED: i32 = 130;
/// Everything held.
pub const OK: i32 = 0;

/// The exit code of a finished run, by DESIGN.md's precedence.
pub fn for_run(
    unreachable: bool,
    violations: bool,
    threshold_breached: bool,
    interrupted: bool,
) -> i32 {
    if unreachable {
        TARGET_UNAVAILABLE
    } else if violations {
        VIOLATIONS
    } else if threshold_breached {
        THRESHOLD
    } else if interrupted {
        INTERRUPTED
    } else {
        OK
    }
}
