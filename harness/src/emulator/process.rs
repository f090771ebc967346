//! Processes the way Lambda treats them: each function process leads its own process group, so a
//! timeout kills the runtime *and* whatever it forked; deaths are described the way Lambda words
//! them, with signals named; peak memory is read from `/proc`.

use std::ffi::OsString;
use std::os::unix::process::ExitStatusExt;
use std::path::Path;
use std::process::{ExitStatus, Stdio};

use nix::sys::signal::{Signal, killpg};
use nix::unistd::Pid;

/// A command ready to spawn: its own process group, exactly `env`, output piped, killed if the
/// harness drops it.
pub fn command(
    argv: &[String],
    env: Vec<(OsString, OsString)>,
    cwd: Option<&Path>,
    stdin: Stdio,
) -> tokio::process::Command {
    let mut cmd = tokio::process::Command::new(&argv[0]);
    cmd.args(&argv[1..])
        .env_clear()
        .envs(env)
        .stdin(stdin)
        .stdout(Stdio::piped())
        .stderr(Stdio::piped())
        .process_group(0)
        .kill_on_drop(true);
    if let Some(dir) = cwd {
        cmd.current_dir(dir);
    }
    cmd
}

/// Why `program` could not be started, in words a user acts on.
pub fn spawn_error(program: &str, e: &std::io::Error) -> String {
    match e.kind() {
        std::io::ErrorKind::NotFound => format!("`{program}` was not found ({e})"),
        std::io::ErrorKind::PermissionDenied => {
            format!("`{program}` is not executable ({e})")
        }
        _ => format!("`{program}` could not be started: {e}"),
    }
}

/// Where `program` would be found, as `execvp` looks: a path with a `/` as is (relative to the
/// working directory), a bare name on `PATH`. The error says why not, in words a user acts on.
pub fn resolve(program: &str) -> Result<std::path::PathBuf, String> {
    use std::os::unix::fs::PermissionsExt;
    let executable = |p: &Path| {
        std::fs::metadata(p).is_ok_and(|m| m.is_file() && m.permissions().mode() & 0o111 != 0)
    };
    if program.contains('/') {
        let p = Path::new(program);
        return match std::fs::metadata(p) {
            Err(e) => Err(spawn_error(program, &e)),
            Ok(_) if executable(p) => Ok(p.to_path_buf()),
            Ok(_) => Err(format!("`{program}` is not an executable file")),
        };
    }
    let path = std::env::var_os("PATH").unwrap_or_default();
    std::env::split_paths(&path)
        .map(|dir| dir.join(program))
        .find(|p| executable(p))
        .ok_or_else(|| format!("`{program}` was not found on PATH"))
}

/// Kill the whole process group led by `pid`. The kernel never reuses a pid while a group of that
/// id still exists, so this is safe even after the leader has been reaped: either stragglers of
/// that group die, or there is nothing left (ESRCH, ignored).
pub fn kill_group(pid: u32) {
    if let Ok(pid) = i32::try_from(pid) {
        let _ = killpg(Pid::from_raw(pid), Signal::SIGKILL);
    }
}

/// `exit status 3`, `signal: SIGSEGV` — Lambda's wording, with the signal named, since a runtime
/// killed by a signal leaves no message of its own.
pub fn describe_exit(status: ExitStatus) -> String {
    if let Some(code) = status.code() {
        return format!("exit status {code}");
    }
    match status.signal() {
        Some(sig) => match Signal::try_from(sig) {
            Ok(s) => format!("signal: {}", s.as_str()),
            Err(_) => format!("signal: {sig}"),
        },
        None => "exited".into(),
    }
}

/// A process's `/proc/PID/status`, kept open: reading it again costs only the kernel's rendering
/// of the file, not a path lookup, on every invocation's REPORT line.
pub struct ProcStatus(Option<std::fs::File>);

impl ProcStatus {
    pub fn open(pid: u32) -> Self {
        ProcStatus(std::fs::File::open(format!("/proc/{pid}/status")).ok())
    }

    /// Peak resident memory in MB (`VmHWM`), Lambda's "Max Memory Used"; `None` once the process
    /// is gone.
    pub fn max_memory_mb(&self) -> Option<u64> {
        use std::os::unix::fs::FileExt;
        let mut buf = [0u8; 4096];
        let n = self.0.as_ref()?.read_at(&mut buf, 0).ok()?;
        let text = std::str::from_utf8(&buf[..n]).ok()?;
        let line = text.lines().find(|l| l.starts_with("VmHWM:"))?;
        let kb: u64 = line
            .trim_start_matches("VmHWM:")
            .trim()
            .trim_end_matches("kB")
            .trim()
            .parse()
            .ok()?;
        Some(kb.div_ceil(1024))
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn deaths_are_described_with_the_signal_named() {
        assert_eq!(describe_exit(ExitStatus::from_raw(3 << 8)), "exit status 3");
        assert_eq!(describe_exit(ExitStatus::from_raw(11)), "signal: SIGSEGV");
        assert_eq!(describe_exit(ExitStatus::from_raw(9)), "signal: SIGKILL");
    }

    #[test]
    fn resolves_programs_as_execvp_does() {
        assert!(resolve("sh").is_ok());
        assert!(resolve("/bin/sh").is_ok());
        assert!(
            resolve("no-such-program-here")
                .unwrap_err()
                .contains("PATH")
        );
        assert!(resolve("./no/such/file").unwrap_err().contains("not found"));
        assert!(resolve("/etc/hostname").is_err() || resolve("/etc/passwd").is_err());
    }

    #[test]
    fn reads_our_own_peak_memory() {
        let status = ProcStatus::open(std::process::id());
        assert!(status.max_memory_mb().expect("/proc/self/status") >= 1);
        assert_eq!(ProcStatus::open(u32::MAX).max_memory_mb(), None);
    }
}
