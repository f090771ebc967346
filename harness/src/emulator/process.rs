//! Processes the way Lambda treats them: each function process leads its own process group, so a
//! timeout kills the runtime *and* whatever it forked; deaths are described the way Lambda words
//! them, with signals named; peak memory is read from `/proc`.

use std::ffi::OsString;
use std::os::unix::process::ExitStatusExt;
use std::path::Path;
use std::process::{ExitStatus, Stdio};

use nix::sys::signal::{Signal, killpg};
use nix::unistd::Pid;

/// A function's command, ready to spawn: its own process group, exactly `env`, output piped; run
/// under a [`crate::supervisor`] where there is one, so nothing it forks outlives it.
pub struct FunctionCommand {
    inner: tokio::process::Command,
    program: String,
    cwd: Option<std::path::PathBuf>,
    path: Option<OsString>,
    supervised: bool,
}

impl FunctionCommand {
    /// Start the process. A program that is missing or not executable fails here, as an unsupervised
    /// `spawn` would, rather than inside the supervisor.
    pub fn spawn(&mut self) -> std::io::Result<tokio::process::Child> {
        let placeholder = tokio::process::Command::new("/");
        let cmd = std::mem::replace(&mut self.inner, placeholder);
        if !self.supervised {
            let mut cmd = cmd;
            return cmd.spawn();
        }
        locate(&self.program, self.cwd.as_deref(), self.path.as_deref())?;
        crate::supervisor::spawn(cmd)
    }
}

/// A command ready to spawn: see [`FunctionCommand`]. Supervised or not, [`kill_group`] with the
/// child's pid ends it and everything it started.
pub fn command(
    argv: &[String],
    env: Vec<(OsString, OsString)>,
    cwd: Option<&Path>,
    stdin: Stdio,
) -> FunctionCommand {
    let supervisor = crate::supervisor::program();
    let path = env
        .iter()
        .find(|(k, _)| k == "PATH")
        .map(|(_, v)| v.clone());
    let wrapped: Vec<OsString> = match supervisor {
        Some(program) => crate::supervisor::wrap(program, argv),
        None => argv.iter().map(OsString::from).collect(),
    };
    let mut cmd = tokio::process::Command::new(&wrapped[0]);
    cmd.args(&wrapped[1..])
        .env_clear()
        .envs(env)
        .stdin(stdin)
        .stdout(Stdio::piped())
        .stderr(Stdio::piped())
        .process_group(0)
        // A supervisor is stopped with SIGTERM (it then kills its function's tree); a SIGKILL on
        // drop would leave that tree behind.
        .kill_on_drop(supervisor.is_none());
    if let Some(dir) = cwd {
        cmd.current_dir(dir);
    }
    FunctionCommand {
        inner: cmd,
        program: argv[0].clone(),
        cwd: cwd.map(Path::to_path_buf),
        path,
        supervised: supervisor.is_some(),
    }
}

/// Whether `program` can be executed as `execvp` would find it (relative to `cwd`, on `path`), as
/// the error an unsupervised spawn would have returned.
fn locate(
    program: &str,
    cwd: Option<&Path>,
    path: Option<&std::ffi::OsStr>,
) -> std::io::Result<()> {
    use std::os::unix::fs::PermissionsExt;
    let check = |p: &Path| -> std::io::Result<()> {
        let meta = std::fs::metadata(p)?;
        if meta.is_file() && meta.permissions().mode() & 0o111 != 0 {
            Ok(())
        } else {
            Err(std::io::Error::from_raw_os_error(libc::EACCES))
        }
    };
    if program.contains('/') {
        let p = Path::new(program);
        return match cwd {
            Some(dir) if p.is_relative() => check(&dir.join(p)),
            _ => check(p),
        };
    }
    let path = path.unwrap_or_default();
    if std::env::split_paths(path).any(|dir| check(&dir.join(program)).is_ok()) {
        Ok(())
    } else {
        Err(std::io::Error::from_raw_os_error(libc::ENOENT))
    }
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
///
/// A supervised function's group holds only its supervisor, which takes `SIGTERM` as "kill the
/// function and everything it started, `setsid()` children too, then exit"; SIGKILL would leave
/// that tree behind.
pub fn kill_group(pid: u32) {
    let signal = if crate::supervisor::program().is_some() {
        Signal::SIGTERM
    } else {
        Signal::SIGKILL
    };
    if let Ok(pid) = i32::try_from(pid) {
        let _ = killpg(Pid::from_raw(pid), signal);
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
/// of the file, not a path lookup, on every invocation's REPORT line. For a supervised function it
/// is the function's file, not the supervisor's, found on first use (the supervisor may not have
/// forked it yet when this is made).
pub struct ProcStatus {
    pid: u32,
    supervised: bool,
    file: std::sync::OnceLock<Option<std::fs::File>>,
}

impl ProcStatus {
    pub fn open(pid: u32) -> Self {
        let supervised = crate::supervisor::program().is_some();
        let file = std::sync::OnceLock::new();
        if !supervised {
            let _ = file.set(std::fs::File::open(format!("/proc/{pid}/status")).ok());
        }
        ProcStatus {
            pid,
            supervised,
            file,
        }
    }

    fn file(&self) -> Option<&std::fs::File> {
        if self.supervised && self.file.get().is_none() {
            // The supervisor's first child is its function (orphans it adopts come later).
            let function = function_of(self.pid)?;
            let _ = self
                .file
                .set(std::fs::File::open(format!("/proc/{function}/status")).ok());
        }
        self.file.get()?.as_ref()
    }

    /// Peak resident memory in MB (`VmHWM`), Lambda's "Max Memory Used"; `None` once the process
    /// is gone.
    pub fn max_memory_mb(&self) -> Option<u64> {
        use std::os::unix::fs::FileExt;
        let mut buf = [0u8; 4096];
        let n = self.file()?.read_at(&mut buf, 0).ok()?;
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

/// The function a supervisor runs: its child that leads its own process group.
#[cfg(target_os = "linux")]
fn function_of(supervisor: u32) -> Option<u32> {
    crate::supervisor::children_of(supervisor)
        .into_iter()
        .find(|&pid| {
            nix::unistd::getpgid(Some(Pid::from_raw(pid as i32))).ok()
                == Some(Pid::from_raw(pid as i32))
        })
}

#[cfg(not(target_os = "linux"))]
fn function_of(_supervisor: u32) -> Option<u32> {
    None
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
