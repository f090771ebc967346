//! Function output, captured per invocation the way CloudWatch shows it: the lines a function
//! printed between `START` and `END`/`REPORT`, capped in size.
//!
//! Attribution must be exact for output written *before* the function answered: a runtime prints,
//! then posts its response, so the bytes are already in the pipe when the response arrives. The
//! reader tasks and [`Capture::drain`] both read the pipes under one lock, so draining at the
//! moment of the answer picks up everything written until then, in order.

use std::collections::VecDeque;
use std::io::ErrorKind;
use std::sync::{Arc, Mutex, MutexGuard};

use tokio::net::unix::pipe;
use tokio::process::{ChildStderr, ChildStdout};

/// Bytes kept from the start of one invocation's log.
pub const LOG_HEAD_BYTES: usize = 128 * 1024;
/// Bytes kept from the end of one invocation's log.
pub const LOG_TAIL_BYTES: usize = 64 * 1024;
/// Bytes of stderr kept for a crash message.
pub const STDERR_TAIL_BYTES: usize = 2 * 1024;
/// The most one lock holds reading a pipe, so a function flooding its output cannot starve the
/// invocation that waits to drain it.
const READ_BURST: usize = 1024 * 1024;

/// A log that keeps its first `head` and last `tail` bytes and counts what it dropped between.
#[derive(Debug, Clone)]
pub struct CappedLog {
    head_cap: usize,
    tail_cap: usize,
    head: Vec<u8>,
    tail: VecDeque<u8>,
    omitted: u64,
}

impl Default for CappedLog {
    fn default() -> Self {
        CappedLog::new(LOG_HEAD_BYTES, LOG_TAIL_BYTES)
    }
}

impl CappedLog {
    pub fn new(head_cap: usize, tail_cap: usize) -> Self {
        CappedLog {
            head_cap,
            tail_cap,
            head: Vec::new(),
            tail: VecDeque::new(),
            omitted: 0,
        }
    }

    pub fn push(&mut self, mut bytes: &[u8]) {
        if self.head.len() < self.head_cap {
            let n = bytes.len().min(self.head_cap - self.head.len());
            self.head.extend_from_slice(&bytes[..n]);
            bytes = &bytes[n..];
        }
        if bytes.len() >= self.tail_cap {
            self.omitted += (self.tail.len() + bytes.len() - self.tail_cap) as u64;
            self.tail.clear();
            self.tail.extend(&bytes[bytes.len() - self.tail_cap..]);
            return;
        }
        let overflow = (self.tail.len() + bytes.len()).saturating_sub(self.tail_cap);
        self.tail.drain(..overflow);
        self.omitted += overflow as u64;
        self.tail.extend(bytes);
    }

    pub fn push_str(&mut self, s: &str) {
        self.push(s.as_bytes());
    }

    pub fn is_empty(&self) -> bool {
        self.head.is_empty() && self.tail.is_empty()
    }

    /// The text, with a marker where bytes were dropped; invalid UTF-8 is replaced, not fatal.
    pub fn render(&self) -> String {
        let mut bytes = self.head.clone();
        if self.omitted > 0 {
            if !bytes.is_empty() && !bytes.ends_with(b"\n") {
                bytes.push(b'\n');
            }
            bytes.extend_from_slice(
                format!("[… {} bytes of output omitted …]\n", self.omitted).as_bytes(),
            );
        }
        bytes.extend(self.tail.iter());
        String::from_utf8_lossy(&bytes).into_owned()
    }
}

#[derive(Clone, Copy)]
enum Stream {
    Stdout,
    Stderr,
}

#[derive(Default)]
pub struct CaptureState {
    /// Output since the last invocation's log was taken.
    pub log: CappedLog,
    stderr_tail: Option<CappedLog>,
    stdout_open: bool,
    stderr_open: bool,
}

impl CaptureState {
    /// The last bytes the function wrote to stderr.
    pub fn stderr_tail(&self) -> String {
        self.stderr_tail
            .as_ref()
            .map(CappedLog::render)
            .unwrap_or_default()
    }
}

/// One process's stdout and stderr, read into one log.
pub struct Capture {
    stdout: pipe::Receiver,
    stderr: pipe::Receiver,
    state: Mutex<CaptureState>,
}

impl Capture {
    /// Take over the child's pipes and start reading them (must run inside the runtime).
    pub fn start(stdout: ChildStdout, stderr: ChildStderr) -> std::io::Result<Arc<Capture>> {
        let capture = Arc::new(Capture {
            stdout: pipe::Receiver::from_owned_fd(stdout.into_owned_fd()?)?,
            stderr: pipe::Receiver::from_owned_fd(stderr.into_owned_fd()?)?,
            state: Mutex::new(CaptureState {
                stderr_tail: Some(CappedLog::new(0, STDERR_TAIL_BYTES)),
                stdout_open: true,
                stderr_open: true,
                ..CaptureState::default()
            }),
        });
        for stream in [Stream::Stdout, Stream::Stderr] {
            tokio::spawn(pump(capture.clone(), stream));
        }
        Ok(capture)
    }

    fn receiver(&self, stream: Stream) -> &pipe::Receiver {
        match stream {
            Stream::Stdout => &self.stdout,
            Stream::Stderr => &self.stderr,
        }
    }

    fn lock(&self) -> MutexGuard<'_, CaptureState> {
        self.state.lock().unwrap_or_else(|p| p.into_inner())
    }

    /// Read what `stream` holds right now; false once it is closed.
    fn read_now(&self, state: &mut CaptureState, stream: Stream) -> bool {
        let open = match stream {
            Stream::Stdout => &mut state.stdout_open,
            Stream::Stderr => &mut state.stderr_open,
        };
        if !*open {
            return false;
        }
        let rx = self.receiver(stream);
        let mut buf = [0u8; 16 * 1024];
        let mut read = 0;
        while read < READ_BURST {
            match rx.try_read(&mut buf) {
                Ok(0) => {
                    *open = false;
                    return false;
                }
                Ok(n) => {
                    read += n;
                    state.log.push(&buf[..n]);
                    if let (Stream::Stderr, Some(tail)) = (stream, state.stderr_tail.as_mut()) {
                        tail.push(&buf[..n]);
                    }
                }
                Err(e) if e.kind() == ErrorKind::WouldBlock => return true,
                Err(e) if e.kind() == ErrorKind::Interrupted => {}
                Err(_) => {
                    *open = false;
                    return false;
                }
            }
        }
        true
    }

    /// Everything written so far, read into the log; the guard lets the caller add lines and take
    /// the log in the same breath.
    pub fn drain(&self) -> MutexGuard<'_, CaptureState> {
        let mut state = self.lock();
        self.read_now(&mut state, Stream::Stdout);
        self.read_now(&mut state, Stream::Stderr);
        state
    }
}

async fn pump(capture: Arc<Capture>, stream: Stream) {
    loop {
        if capture.receiver(stream).readable().await.is_err() {
            return;
        }
        let open = capture.read_now(&mut capture.lock(), stream);
        if !open {
            return;
        }
        tokio::task::yield_now().await;
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn keeps_head_and_tail_and_counts_the_middle() {
        let mut log = CappedLog::new(4, 3);
        log.push(b"ab");
        assert_eq!(log.render(), "ab");
        log.push(b"cdefgh");
        log.push(b"ij");
        // head "abcd", dropped "efg", tail "hij"
        assert_eq!(log.render(), "abcd\n[… 3 bytes of output omitted …]\nhij");
        log.push(b"0123456789");
        assert_eq!(log.render(), "abcd\n[… 13 bytes of output omitted …]\n789");
    }

    #[test]
    fn a_tail_only_log_keeps_the_last_bytes() {
        let mut tail = CappedLog::new(0, 5);
        tail.push(b"hello ");
        tail.push(b"world");
        assert!(tail.render().ends_with("world"));
        assert!(!CappedLog::new(0, 5).render().contains("omitted"));
    }

    #[test]
    fn invalid_utf8_is_replaced_not_fatal() {
        let mut log = CappedLog::default();
        log.push(&[0xff, b'o', b'k']);
        assert_eq!(log.render(), "\u{fffd}ok");
    }
}
