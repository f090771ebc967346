//! No process outlives its instance or the harness: every `exec:` and `stdio:` function runs under a
//! small supervisor, the harness itself re-executed as `firehose-harness __spawn --parent PID --
//! COMMAND...`.
//!
//! Why a process of its own: a process group dies with one `killpg`, but a function child that calls
//! `setsid()` leaves the group, and `PR_SET_PDEATHSIG` only covers the direct child. The supervisor is
//! a *child subreaper* (`PR_SET_CHILD_SUBREAPER`), so every orphan below it — `setsid()` daemons
//! included — is re-parented to it instead of to init, and it can kill them all:
//!
//! - when the function exits (the end of a `stdio:` invocation, a crashed runtime);
//! - when the harness asks (`SIGTERM`: a timeout, the end of the run) — see
//!   [`crate::emulator::process::kill_group`];
//! - when the harness dies, however it dies (`SIGKILL` by the OOM killer or CI): `PR_SET_PDEATHSIG`
//!   sends it `SIGTERM`. That signal fires when the *thread* that forked the supervisor exits, not
//!   the process, so supervisors are forked by one thread that lives as long as the harness
//!   ([`spawn`]), never by tokio's blocking threads, which come and go.
//!
//! The supervisor then exits the way its function did (the same exit code, or the same signal), so
//! the harness describes deaths exactly as before. The function's standard streams are the
//! supervisor's own, handed down; the supervisor keeps no copy, so a function that closes its stdout
//! is seen to close it.
//!
//! Elsewhere than Linux, and when the current executable is not `firehose-harness` (a test binary
//! using the library), functions run directly in their own process group as before; set
//! [`SUPERVISOR_ENV`] to the binary's path to supervise them anyway.

use std::ffi::OsString;
use std::path::PathBuf;
use std::sync::OnceLock;

/// The hidden subcommand the supervisor runs as.
pub const SUBCOMMAND: &str = "__spawn";

/// Path of the `firehose-harness` binary to run supervisors with (tests whose current executable is
/// the test binary set it); `off` runs functions unsupervised.
pub const SUPERVISOR_ENV: &str = "FIREHOSE_HARNESS_SUPERVISOR";

/// The binary supervisors are run with, or `None` when functions run unsupervised. Decided once.
pub fn program() -> Option<&'static PathBuf> {
    static PROGRAM: OnceLock<Option<PathBuf>> = OnceLock::new();
    PROGRAM.get_or_init(choose).as_ref()
}

fn choose() -> Option<PathBuf> {
    if !cfg!(target_os = "linux") {
        return None;
    }
    match std::env::var_os(SUPERVISOR_ENV) {
        Some(v) if v == "off" || v == "0" => None,
        Some(v) if !v.is_empty() => Some(PathBuf::from(v)),
        _ => {
            let exe = std::env::current_exe().ok()?;
            let name = exe.file_stem()?.to_string_lossy().into_owned();
            (name == "firehose-harness").then_some(exe)
        }
    }
}

/// The argument vector that runs `argv` under a supervisor started by `program`.
pub fn wrap(program: &std::path::Path, argv: &[String]) -> Vec<OsString> {
    let mut out: Vec<OsString> = vec![
        program.into(),
        SUBCOMMAND.into(),
        "--parent".into(),
        std::process::id().to_string().into(),
        "--".into(),
    ];
    out.extend(argv.iter().map(OsString::from));
    out
}

/// Spawn `cmd` from the harness's spawner thread, which lives as long as the process, so a
/// supervisor's `PR_SET_PDEATHSIG` fires only when the harness dies. Call it inside a tokio runtime,
/// as `tokio::process::Command::spawn` requires.
pub fn spawn(mut cmd: tokio::process::Command) -> std::io::Result<tokio::process::Child> {
    use std::sync::mpsc;
    type Job = (
        tokio::process::Command,
        tokio::runtime::Handle,
        mpsc::SyncSender<std::io::Result<tokio::process::Child>>,
    );
    static SPAWNER: OnceLock<Option<std::sync::Mutex<mpsc::Sender<Job>>>> = OnceLock::new();
    let Ok(handle) = tokio::runtime::Handle::try_current() else {
        return cmd.spawn();
    };
    let spawner = SPAWNER.get_or_init(|| {
        let (tx, rx) = mpsc::channel::<Job>();
        std::thread::Builder::new()
            .name("firehose-spawner".into())
            .spawn(move || {
                for (mut cmd, handle, reply) in rx {
                    let _entered = handle.enter();
                    let _ = reply.send(cmd.spawn());
                }
            })
            .ok()
            .map(|_| std::sync::Mutex::new(tx))
    });
    let Some(spawner) = spawner else {
        return cmd.spawn();
    };
    let (reply, answer) = mpsc::sync_channel(1);
    let sent = spawner
        .lock()
        .unwrap_or_else(|p| p.into_inner())
        .send((cmd, handle, reply));
    match sent {
        Ok(()) => answer
            .recv()
            .unwrap_or_else(|_| Err(std::io::Error::other("the process spawner thread is gone"))),
        Err(mpsc::SendError((mut cmd, _, _))) => cmd.spawn(),
    }
}

/// The `__spawn` subcommand: run `argv` as a supervised function and exit as it did.
pub fn run(parent: u32, argv: &[OsString]) -> i32 {
    #[cfg(target_os = "linux")]
    {
        linux::supervise(parent, argv)
    }
    #[cfg(not(target_os = "linux"))]
    {
        let _ = parent;
        let Some((program, args)) = argv.split_first() else {
            return 2;
        };
        match std::process::Command::new(program).args(args).status() {
            Ok(s) => s.code().unwrap_or(1),
            Err(e) => {
                eprintln!(
                    "firehose-harness: `{}` could not be started: {e}",
                    program.to_string_lossy()
                );
                127
            }
        }
    }
}

/// Pids of the processes whose parent is `parent` (a single-threaded process: the supervisor).
/// `/proc/PID/task/PID/children` is one small read, which a kill on the invocation's clock wants;
/// kernels built without it get a scan of `/proc/*/stat`.
#[cfg(target_os = "linux")]
pub fn children_of(parent: u32) -> Vec<u32> {
    if let Ok(list) = std::fs::read_to_string(format!("/proc/{parent}/task/{parent}/children")) {
        return list
            .split_whitespace()
            .filter_map(|p| p.parse().ok())
            .collect();
    }
    scan_children_of(parent)
}

/// [`children_of`] by reading every `/proc/*/stat` (the parent is the field after the command
/// name, which may itself hold spaces and parentheses).
#[cfg(target_os = "linux")]
fn scan_children_of(parent: u32) -> Vec<u32> {
    let Ok(dir) = std::fs::read_dir("/proc") else {
        return Vec::new();
    };
    dir.filter_map(|e| e.ok()?.file_name().to_str()?.parse::<u32>().ok())
        .filter(|pid| {
            std::fs::read_to_string(format!("/proc/{pid}/stat"))
                .ok()
                .and_then(|stat| parent_in_stat(&stat))
                == Some(parent)
        })
        .collect()
}

/// The parent pid in one `/proc/PID/stat` line.
#[cfg(target_os = "linux")]
fn parent_in_stat(stat: &str) -> Option<u32> {
    let after_name = &stat[stat.rfind(')')? + 1..];
    let mut fields = after_name.split_whitespace();
    let _state = fields.next()?;
    fields.next()?.parse().ok()
}

#[cfg(target_os = "linux")]
mod linux {
    use std::ffi::OsString;
    use std::os::unix::process::CommandExt;

    use nix::errno::Errno;
    use nix::sys::signal::{SigSet, Signal, kill, killpg};
    use nix::sys::wait::{WaitPidFlag, WaitStatus, waitpid};
    use nix::unistd::{Pid, getppid};

    /// The signals that end the supervision early; `SIGCHLD` says a child changed state.
    fn watched() -> SigSet {
        let mut set = SigSet::empty();
        for s in [
            Signal::SIGTERM,
            Signal::SIGINT,
            Signal::SIGHUP,
            Signal::SIGQUIT,
            Signal::SIGCHLD,
        ] {
            set.add(s);
        }
        set
    }

    pub(super) fn supervise(parent: u32, argv: &[OsString]) -> i32 {
        let Some((program, args)) = argv.split_first() else {
            eprintln!("firehose-harness: {} needs a command", super::SUBCOMMAND);
            return 2;
        };
        // Blocked before anything can send them, and taken with `sigwait` below: no handler runs.
        let set = watched();
        let _ = set.thread_block();
        let _ = nix::sys::prctl::set_child_subreaper(true);
        let _ = nix::sys::prctl::set_pdeathsig(Signal::SIGTERM);
        // The harness may have died before PDEATHSIG was armed: then nobody will send it.
        if getppid().as_raw() as u32 != parent {
            return 1;
        }

        let mut cmd = std::process::Command::new(program);
        cmd.args(args).process_group(0);
        // SAFETY: the closure only makes one async-signal-safe system call (prctl) in the forked
        // child; it allocates nothing and touches no lock.
        #[allow(unsafe_code)]
        unsafe {
            cmd.pre_exec(|| {
                // The supervisor itself killed outright (SIGKILL) still takes its function along.
                nix::sys::prctl::set_pdeathsig(Signal::SIGKILL)?;
                Ok(())
            });
        }
        // std clears the signal mask in the child before exec, so the function starts with none blocked.
        let child = match cmd.spawn() {
            Ok(c) => c,
            Err(e) => {
                eprintln!(
                    "firehose-harness: `{}` could not be started: {e}",
                    program.to_string_lossy()
                );
                return if e.kind() == std::io::ErrorKind::PermissionDenied {
                    126
                } else {
                    127
                };
            }
        };
        let function = Pid::from_raw(child.id() as i32);
        drop(child);
        let _ = release_stdio();

        let mut status = wait_for_end(&set, function);
        let _ = killpg(function, Signal::SIGKILL);
        if let Some(s) = kill_descendants(function) {
            status.get_or_insert(s);
        }
        exit_as(status)
    }

    /// Point stdin, stdout and stderr at `/dev/null`: the function holds the only copies of the
    /// harness's pipes, so its closing them is seen at once.
    fn release_stdio() -> std::io::Result<()> {
        let null = std::fs::OpenOptions::new()
            .read(true)
            .write(true)
            .open("/dev/null")?;
        nix::unistd::dup2_stdin(&null)?;
        nix::unistd::dup2_stdout(&null)?;
        nix::unistd::dup2_stderr(&null)?;
        Ok(())
    }

    /// Wait until the function exits (its status) or a signal says stop (`None`), reaping adopted
    /// orphans that exit meanwhile.
    fn wait_for_end(set: &SigSet, function: Pid) -> Option<WaitStatus> {
        loop {
            // A child may have ended before SIGCHLD was waited for: reap first, then wait.
            loop {
                match waitpid(None, Some(WaitPidFlag::WNOHANG)) {
                    Ok(WaitStatus::StillAlive) | Err(_) => break,
                    Ok(s) if s.pid() == Some(function) && ended(&s) => return Some(s),
                    Ok(_) => continue,
                }
            }
            match set.wait() {
                Ok(Signal::SIGCHLD) | Err(_) => continue,
                Ok(_) => return None,
            }
        }
    }

    fn ended(s: &WaitStatus) -> bool {
        matches!(s, WaitStatus::Exited(..) | WaitStatus::Signaled(..))
    }

    /// Kill every descendant: the function's group, then each child (adopted orphans become
    /// children as their parents die), until none is left. Returns the function's status if it was
    /// reaped here.
    fn kill_descendants(function: Pid) -> Option<WaitStatus> {
        let me = std::process::id();
        let mut status = None;
        loop {
            let _ = killpg(function, Signal::SIGKILL);
            for pid in super::children_of(me) {
                let _ = kill(Pid::from_raw(pid as i32), Signal::SIGKILL);
            }
            match waitpid(None, None) {
                Ok(s) if s.pid() == Some(function) && ended(&s) => status = Some(s),
                Ok(_) | Err(Errno::EINTR) => {}
                Err(_) => return status, // ECHILD: nobody left
            }
        }
    }

    /// Exit with the function's code, or die of its signal so the harness sees the same death.
    fn exit_as(status: Option<WaitStatus>) -> i32 {
        let signal = match status {
            Some(WaitStatus::Exited(_, code)) => return code,
            Some(WaitStatus::Signaled(_, sig, _)) => sig,
            _ => Signal::SIGKILL,
        };
        // No core file of our own: the function already left one if it was going to.
        let _ = nix::sys::resource::setrlimit(nix::sys::resource::Resource::RLIMIT_CORE, 0, 0);
        // SAFETY: restoring the default disposition installs no handler; nothing else runs here.
        #[allow(unsafe_code)]
        let _ = unsafe { nix::sys::signal::signal(signal, nix::sys::signal::SigHandler::SigDfl) };
        let mut one = SigSet::empty();
        one.add(signal);
        let _ = one.thread_unblock();
        let _ = nix::sys::signal::raise(signal);
        // Still here: a signal whose default is to be ignored. The shell's convention then.
        128 + signal as i32
    }
}

#[cfg(all(test, target_os = "linux"))]
mod tests {
    use super::*;

    #[test]
    fn reads_the_parent_from_a_stat_line_whose_name_has_parentheses() {
        assert_eq!(
            parent_in_stat("42 (a) b (c)) S 17 42 42 0 -1"),
            Some(17),
            "the name ends at the last parenthesis"
        );
        assert_eq!(parent_in_stat("garbage"), None);
    }

    #[test]
    fn finds_our_own_children() {
        let mut child = std::process::Command::new("sleep")
            .arg("5")
            .spawn()
            .expect("sleep");
        let kids = scan_children_of(std::process::id());
        let _ = child.kill();
        let _ = child.wait();
        assert!(kids.contains(&child.id()), "{kids:?}");
    }

    #[test]
    fn wraps_the_command_after_a_double_dash() {
        let argv = wrap(
            std::path::Path::new("/bin/firehose-harness"),
            &["./f".into(), "--x".into()],
        );
        assert_eq!(argv[1], SUBCOMMAND);
        assert_eq!(argv[3], std::process::id().to_string().as_str());
        assert_eq!(&argv[4..], ["--", "./f", "--x"]);
    }
}
