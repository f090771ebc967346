//! The one line that names a function's failure, for violation messages and reports: what a person
//! would look for first in a page of traceback.
//!
//! From an error the runtime posted (`errorType` + `errorMessage`), that is `ValueError: bad record
//! 17` — except for a Rust `lambda_runtime` panic, whose post only says `Lambda panicked: msg` while
//! the panic hook wrote where on stderr, so the `panicked at FILE:LINE:COL: msg` line is taken from
//! the output instead. From a crash (no post), it is found in the output per runtime: Python's last
//! traceback line, a Rust panic, Node's `Error: …` line; else the last non-empty line.

/// The line for an error the runtime posted to `/invocation/{id}/error` (or `/init/error`).
/// `output` gives what the function wrote before posting it (its log); it is read only for a
/// caught Rust panic.
pub fn from_report(
    error_type: &str,
    message: Option<&str>,
    output: impl FnOnce() -> String,
) -> String {
    let first = message
        .and_then(|m| m.lines().map(str::trim).find(|l| !l.is_empty()))
        .unwrap_or("");
    if first.starts_with("Lambda panicked")
        && let Some(panic) = rust_panic(&output())
    {
        return panic;
    }
    if first.is_empty() {
        error_type.to_string()
    } else if first.starts_with(error_type) {
        first.to_string()
    } else {
        format!("{error_type}: {first}")
    }
}

/// The line for a process that died without posting an error: a runtime's own way of naming the
/// failure found in `log` (everything it wrote, so a long backtrace cannot push the line out), else
/// the last non-empty line of `stderr`.
pub fn from_output(log: &str, stderr: &str) -> Option<String> {
    named(log).or_else(|| named(stderr)).or_else(|| {
        stderr
            .lines()
            .rev()
            .map(str::trim)
            .find(|l| !l.is_empty())
            .map(str::to_string)
    })
}

/// A Rust panic, Python's last traceback line or a JavaScript `Error:` line.
fn named(output: &str) -> Option<String> {
    rust_panic(output)
        .or_else(|| python_traceback(output))
        .or_else(|| js_error(output))
}

/// `thread 'main' panicked at src/main.rs:12:9:` + `msg` (Rust 1.73 and later) or `thread 'main'
/// panicked at 'msg', src/main.rs:12:9` (earlier): the last panic, as `panicked at LOCATION: msg`.
fn rust_panic(output: &str) -> Option<String> {
    let lines: Vec<&str> = output.lines().collect();
    let at = lines.iter().rposition(|l| l.contains("panicked at "))?;
    let line = lines[at];
    let from = line.find("panicked at ")?;
    let head = line[from..].trim_end();
    match head.strip_suffix(':') {
        // The message is on the following lines, up to the hint about backtraces.
        Some(location) => {
            let message: Vec<&str> = lines[at + 1..]
                .iter()
                .map(|l| l.trim())
                .take_while(|l| !l.starts_with("note: ") && !l.starts_with("stack backtrace:"))
                .filter(|l| !l.is_empty())
                .collect();
            if message.is_empty() {
                Some(location.to_string())
            } else {
                Some(format!("{location}: {}", message.join(" ")))
            }
        }
        None => Some(head.to_string()),
    }
}

/// The exception line of Python's last traceback: the first unindented line after the last
/// `Traceback (most recent call last):`.
fn python_traceback(output: &str) -> Option<String> {
    let start = output.rfind("Traceback (most recent call last):")?;
    output[start..]
        .lines()
        .skip(1)
        .find(|l| !l.is_empty() && !l.starts_with(char::is_whitespace))
        .map(|l| l.trim_end().to_string())
}

/// Node's (and other JavaScript runtimes') `Error: msg`, `TypeError: msg` line: unindented, a name
/// ending in `Error` before the colon. The last one wins.
fn js_error(output: &str) -> Option<String> {
    output
        .lines()
        .rev()
        .find(|l| {
            let Some((name, _)) = l.split_once(": ") else {
                return false;
            };
            !l.starts_with(char::is_whitespace)
                && name.ends_with("Error")
                && name
                    .chars()
                    .all(|c| c.is_ascii_alphanumeric() || c == '_' || c == '$' || c == '.')
        })
        .map(|l| l.trim_end().to_string())
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn a_posted_error_reads_type_then_message() {
        assert_eq!(
            from_report("ValueError", Some("bad record 17"), String::new),
            "ValueError: bad record 17"
        );
        assert_eq!(
            from_report(
                "JSONDecodeError",
                Some("Extra data: line 1 column 5 (char 4)"),
                String::new
            ),
            "JSONDecodeError: Extra data: line 1 column 5 (char 4)"
        );
        assert_eq!(from_report("Unhandled", None, String::new), "Unhandled");
        assert_eq!(
            from_report("Error", Some("Error: already named\n  at x"), String::new),
            "Error: already named"
        );
    }

    #[test]
    fn a_caught_rust_panic_is_named_by_the_panic_hook_line() {
        let stderr = "thread 'main' (8717) panicked at examples/panics.rs:31:9:\nbad record 17\nstack backtrace:\n   0: __rustc::rust_begin_unwind\n";
        assert_eq!(
            from_report(
                "alloc::boxed::Box<dyn core::any::Any + core::marker::Send>",
                Some("Lambda panicked: bad record 17"),
                || stderr.to_string()
            ),
            "panicked at examples/panics.rs:31:9: bad record 17"
        );
        // Without the hook's line, the post is all there is.
        assert_eq!(
            from_report(
                "Box<dyn Any>",
                Some("Lambda panicked: bad record 17"),
                String::new
            ),
            "Box<dyn Any>: Lambda panicked: bad record 17"
        );
        assert_eq!(
            from_output("thread 'main' panicked at 'boom', src/main.rs:2:5\n", "").as_deref(),
            Some("panicked at 'boom', src/main.rs:2:5")
        );
    }

    #[test]
    fn a_crash_is_named_per_runtime() {
        let python = "START\nTraceback (most recent call last):\n  File \"app.py\", line 3, in <module>\n    json.loads(\"1 2\")\njson.decoder.JSONDecodeError: Extra data: line 1 column 3 (char 2)\n";
        assert_eq!(
            from_output(python, "").as_deref(),
            Some("json.decoder.JSONDecodeError: Extra data: line 1 column 3 (char 2)")
        );
        let node = "/var/task/index.js:3\n    throw new Error('bad record 17');\n    ^\n\nError: bad record 17\n    at Object.<anonymous> (/var/task/index.js:3:11)\n    at Module._compile (node:internal/modules/cjs/loader:1256:14)\n\nNode.js v20.10.0\n";
        assert_eq!(
            from_output("", node).as_deref(),
            Some("Error: bad record 17")
        );
        assert_eq!(
            from_output("stdout line\n", "fatal: giving up on this batch\n\n").as_deref(),
            Some("fatal: giving up on this batch")
        );
        assert_eq!(from_output("", "  \n"), None);
    }
}
