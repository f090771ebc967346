//! A lean HTTP/1.1 client for plain `http://` targets: a pool of keep-alive connections, each
//! carrying one request at a time, the exchange driven by the calling task itself.
//!
//! Why not reqwest here: under `load`, the client's own cost per request decides how much load one
//! machine can offer. reqwest re-parses the URL, clones its client stack and checks out through a
//! generic pool on every request. Why not hyper's connection either: hyper runs each connection as
//! a task of its own, so every request crosses two channels (request in, answer and body out) and
//! wakes two tasks. Here the worker writes the request and reads the answer on its own socket —
//! one `writev` and, against a fast target, one read per exchange — and [`wire`] frames the answer
//! (RFC 9112: length, chunked, until close) with `httparse`. `https://` stays on reqwest, where TLS
//! dominates anyway.

mod wire;

use std::io;
use std::pin::Pin;
use std::sync::Mutex;
use std::sync::atomic::{AtomicUsize, Ordering};
use std::task::{Context, Poll, Waker};

use bytes::{Buf, Bytes, BytesMut};
use crossbeam_utils::CachePadded;
use hyper::header::{AUTHORIZATION, HOST, HeaderMap, HeaderValue};
use tokio::io::{AsyncReadExt, AsyncWriteExt};
use tokio::net::TcpStream;
use tokio::time::{Instant, Sleep};

use crate::invocation::BODY_READ_CAP;
pub use wire::WireError;
use wire::{Chunked, Framing};

/// Why an exchange failed.
#[derive(Debug, thiserror::Error)]
pub enum H1Error {
    /// No connection could be made: the target is not there.
    #[error("connection refused or unreachable: {0}")]
    Connect(io::Error),
    /// The connection broke during the exchange.
    #[error("the connection broke: {0}")]
    Io(#[from] io::Error),
    /// The server closed the connection before its answer was whole.
    #[error("the connection closed before {}", if *.0 { "the answer was whole" } else { "any answer" })]
    Closed(bool),
    /// What came back is not HTTP/1 as RFC 9112 frames it.
    #[error(transparent)]
    Wire(#[from] WireError),
    /// No whole answer by the deadline.
    #[error("no answer by the deadline")]
    TimedOut,
}

impl H1Error {
    /// The connection was closed or reset under the request. On a kept-alive connection, and only
    /// while the request had not all gone out (the caller checks), the server had closed it
    /// before it could have read the request: it can go again on a new connection.
    fn stale(&self) -> bool {
        match self {
            H1Error::Closed(_) => true,
            H1Error::Io(e) => matches!(
                e.kind(),
                io::ErrorKind::BrokenPipe
                    | io::ErrorKind::ConnectionReset
                    | io::ErrorKind::ConnectionAborted
            ),
            _ => false,
        }
    }
}

/// What came back: status, headers, the body (at most [`BODY_READ_CAP`] bytes) and whether it was cut.
pub struct H1Response {
    pub status: u16,
    pub headers: HeaderMap,
    pub body: Bytes,
    pub truncated: bool,
}

/// Keep-alive connections to one `host:port`.
pub struct H1Client {
    /// `host:port` to connect to.
    authority: String,
    /// The request head up to the value of `Content-Length` (see [`wire::head_prefix`]).
    prefix: Vec<u8>,
    /// Per shard, one per worker thread where possible: its idle connections. A single shared
    /// idle list made the runtime's threads contend (and sleep) on its lock at every request.
    shards: [CachePadded<Mutex<Vec<Conn>>>; SHARDS],
}

/// A kept-alive connection, its buffers, and the timer its exchanges run under. The timer lives as
/// long as the connection: moving a registered timer to a later deadline is one atomic exchange,
/// where a new timer per request (`tokio::time::timeout`) registers with the runtime's timer wheel
/// and deregisters again under its lock — 3.5% of the load client's CPU against a fast target. A
/// timer left at an earlier deadline fires once, is found early and moves itself on.
struct Conn {
    link: Link,
    timer: Pin<Box<Sleep>>,
}

/// A connection's socket and buffers.
struct Link {
    stream: TcpStream,
    /// What has been read and not yet taken: the answer's head and body are split off its front.
    read: BytesMut,
    /// The request head, rewritten for each request.
    head: Vec<u8>,
    /// Some of the current request's answer has been read.
    heard: bool,
    /// All of the current request has been written.
    sent: bool,
}

/// Per-thread state of a target comes in this many shards: one per worker thread on machines of
/// up to this many cores.
pub(super) const SHARDS: usize = 4;

thread_local! {
    /// This thread's shard, assigned round-robin on first use.
    static SHARD: usize = {
        static NEXT: AtomicUsize = AtomicUsize::new(0);
        NEXT.fetch_add(1, Ordering::Relaxed) % SHARDS
    };
}

/// The calling thread's shard, below [`SHARDS`].
pub(super) fn shard_index() -> usize {
    SHARD.with(|s| *s)
}

/// Room kept free in a connection's read buffer before each read: more than a small answer, so
/// the read that brings it is short and tokio knows the socket is drained without another call.
const READ_ROOM: usize = 16 * 1024;

/// An idle connection unused for this long is checked with the kernel before it carries a
/// request (see [`Link::closed`]); well under any server's keep-alive timeout.
const LONG_IDLE: std::time::Duration = std::time::Duration::from_millis(100);

/// The most of a body one read step reserves room for: a hostile `Content-Length` of a terabyte
/// does not allocate the body cap up front.
const READ_STEP_MAX: usize = 1 << 20;

/// The `Authorization: Basic …` header for a URL's userinfo (percent-decoded, as reqwest does),
/// marked sensitive so nothing that prints headers shows it.
fn basic_auth(url: &reqwest::Url) -> Option<HeaderValue> {
    use base64::Engine as _;
    if url.username().is_empty() && url.password().is_none() {
        return None;
    }
    let decode = |s: &str| {
        percent_encoding::percent_decode_str(s)
            .decode_utf8_lossy()
            .into_owned()
    };
    let pair = format!(
        "{}:{}",
        decode(url.username()),
        url.password().map(decode).unwrap_or_default()
    );
    let encoded = base64::engine::general_purpose::STANDARD.encode(pair);
    let mut value = HeaderValue::from_str(&format!("Basic {encoded}")).ok()?;
    value.set_sensitive(true);
    Some(value)
}

impl H1Client {
    /// A client for `url` (`None` unless it is `http://`), sending `extra` with every request.
    pub fn new(url: &reqwest::Url, extra: &HeaderMap) -> Option<H1Client> {
        if url.scheme() != "http" {
            return None;
        }
        // IPv6 hosts come bracketed (`[::1]`), as an authority needs them.
        let authority = format!("{}:{}", url.host_str()?, url.port_or_known_default()?);
        let path = match url.query() {
            Some(q) => format!("{}?{q}", url.path()),
            None => url.path().to_string(),
        };
        // The target's headers already carry the content type and any `--header`s.
        let mut headers = extra.clone();
        if !headers.contains_key(HOST) {
            headers.insert(HOST, HeaderValue::from_str(&authority).ok()?);
        }
        // `http://user:pass@host/`: Basic auth, as reqwest (and curl) send it for such a URL.
        if let Some(auth) = basic_auth(url)
            && !headers.contains_key(AUTHORIZATION)
        {
            headers.insert(AUTHORIZATION, auth);
        }
        Some(H1Client {
            authority,
            prefix: wire::head_prefix(&path, &headers),
            shards: Default::default(),
        })
    }

    /// A new connection whose exchanges are due by `deadline`.
    async fn open(&self, deadline: Instant) -> Result<Conn, H1Error> {
        // The connection's timer bounds its connecting too.
        let mut timer = Box::pin(tokio::time::sleep_until(deadline));
        let stream = tokio::select! {
            biased;
            stream = self.connect() => stream?,
            _ = timer.as_mut() => return Err(H1Error::TimedOut),
        };
        Ok(Conn {
            link: Link::new(stream),
            timer,
        })
    }

    async fn connect(&self) -> Result<TcpStream, H1Error> {
        let stream = TcpStream::connect(&self.authority)
            .await
            .map_err(H1Error::Connect)?;
        let _ = stream.set_nodelay(true);
        Ok(stream)
    }

    /// An idle connection from this thread's shard, else from any shard not busy right now.
    fn pop_idle(&self) -> Option<Conn> {
        let mine = shard_index();
        if let Some(c) = self.shards[mine]
            .lock()
            .unwrap_or_else(|p| p.into_inner())
            .pop()
        {
            return Some(c);
        }
        (1..SHARDS).find_map(|i| {
            let shard = &self.shards[(mine + i) % SHARDS];
            shard.try_lock().ok().and_then(|mut v| v.pop())
        })
    }

    fn put_idle(&self, c: Conn) {
        self.shards[shard_index()]
            .lock()
            .unwrap_or_else(|p| p.into_inner())
            .push(c);
    }

    /// POST `body` and read the answer, all of it by `deadline`.
    pub async fn post(&self, body: Bytes, deadline: Instant) -> Result<H1Response, H1Error> {
        // An idle connection that is still open, or a new one.
        let (mut conn, reused) = loop {
            match self.pop_idle() {
                // Time since its last request was due to end is time since it started: no clock
                // read needed to tell a connection idle for a while.
                Some(c)
                    if c.link.closed(
                        deadline.saturating_duration_since(c.timer.deadline()) > LONG_IDLE,
                    ) =>
                {
                    continue;
                }
                Some(c) => break (c, true),
                None => break (self.open(deadline).await?, false),
            }
        };
        conn.timer.as_mut().reset(deadline);
        let Conn { link, timer } = &mut conn;
        let answer = tokio::select! {
            biased;
            answer = self.exchange(link, &body, reused) => answer?,
            // The connection is mid-exchange: it goes, with its timer.
            _ = timer.as_mut() => return Err(H1Error::TimedOut),
        };
        // Only a connection whose answer was read to its end, and nothing after it, goes back.
        let (response, reusable) = answer;
        if reusable {
            self.put_idle(conn);
        }
        Ok(response)
    }

    /// One request and its answer over `conn`, and whether `conn` can carry another.
    ///
    /// A kept-alive connection the server closed before the request had all gone out is replaced
    /// by a new one, once. Once it has all gone out the server may have acted on it, and a POST is
    /// not sent twice (RFC 9112 §9.3.1; hyper and Go's client do the same): the failure is the
    /// answer. An idle connection the server closed is found before it is used (see
    /// [`Link::closed`]), so that is left to a close racing the request itself.
    async fn exchange(
        &self,
        link: &mut Link,
        body: &Bytes,
        reused: bool,
    ) -> Result<(H1Response, bool), H1Error> {
        match link.exchange(&self.prefix, body).await {
            Err(e) if reused && !link.sent && !link.heard && e.stale() => {
                // Unreachable now, after it was reached: still this request's failure.
                let Ok(stream) = self.connect().await else {
                    return Err(e);
                };
                *link = Link::new(stream);
                link.exchange(&self.prefix, body).await
            }
            answer => answer,
        }
    }
}

impl Link {
    fn new(stream: TcpStream) -> Link {
        Link {
            stream,
            read: BytesMut::new(),
            head: Vec::new(),
            heard: false,
            sent: false,
        }
    }

    /// Whether the server has closed (or written to) this idle connection. A connection idle for
    /// a while (`long_idle`) is asked the kernel: that is where servers close kept-alive
    /// connections, after an idle timeout of a second or more. One in steady use is asked the
    /// runtime only, which knows without a system call unless the socket has become readable.
    fn closed(&self, long_idle: bool) -> bool {
        let idle =
            |r: io::Result<usize>| matches!(r, Err(e) if e.kind() == io::ErrorKind::WouldBlock);
        if long_idle {
            // A peek of its own: tokio's `try_read` answers from the readiness it has cached,
            // without asking the kernel.
            let mut byte = [std::mem::MaybeUninit::uninit()];
            return !idle(socket2::SockRef::from(&self.stream).peek(&mut byte));
        }
        let mut cx = Context::from_waker(Waker::noop());
        match self.stream.poll_read_ready(&mut cx) {
            Poll::Pending => false,
            Poll::Ready(Err(_)) => true,
            // Readable: an end of stream, unasked-for bytes (a `408` before closing), or nothing
            // (readiness left over from the last answer's read, which this read clears).
            Poll::Ready(Ok(())) => !idle(self.stream.try_read(&mut [0u8; 1])),
        }
    }

    /// Write the request and read the whole answer (its body up to [`BODY_READ_CAP`]), and
    /// whether the connection can carry another request. Both at once: a server may answer
    /// before it has read the whole request (a big one), and neither side may then wait for the
    /// other to read.
    async fn exchange(
        &mut self,
        prefix: &[u8],
        body: &Bytes,
    ) -> Result<(H1Response, bool), H1Error> {
        wire::finish_head(prefix, body.len(), &mut self.head);
        let mut request = Buf::chain(&self.head[..], &body[..]);
        let (half, mut out) = self.stream.split();
        let mut incoming = Incoming {
            half,
            read: &mut self.read,
            heard: &mut self.heard,
        };
        *incoming.heard = false;
        let mut writing = std::pin::pin!(out.write_all_buf(&mut request));
        let mut reading = std::pin::pin!(incoming.answer());
        let mut sent = None;
        let answer = loop {
            tokio::select! {
                biased;
                w = &mut writing, if sent.is_none() => sent = Some(w),
                a = &mut reading => break a,
            }
        };
        self.sent = matches!(sent, Some(Ok(())));
        match (answer, sent) {
            (Ok(answer), Some(Ok(()))) => Ok(answer),
            // Answered before the whole request went out: the rest of it is unsent, so the
            // connection cannot carry another.
            (Ok((response, _)), _) => Ok((response, false)),
            // Why the request could not be sent says more than the end of the answer that
            // followed.
            (Err(_), Some(Err(e))) => Err(e.into()),
            (Err(e), _) => Err(e),
        }
    }
}

/// The reading side of one exchange.
struct Incoming<'a> {
    half: tokio::net::tcp::ReadHalf<'a>,
    read: &'a mut BytesMut,
    heard: &'a mut bool,
}

impl Incoming<'_> {
    /// Read more of the answer, with room for at least `room` bytes. False at the end of the
    /// stream.
    async fn fill(&mut self, room: usize) -> Result<bool, H1Error> {
        self.read.reserve(room);
        let n = self.half.read_buf(self.read).await?;
        *self.heard |= n > 0;
        Ok(n > 0)
    }

    /// The whole answer, and whether the connection can carry another request.
    async fn answer(&mut self) -> Result<(H1Response, bool), H1Error> {
        let head = loop {
            if let Some(head) = wire::parse_head(self.read)? {
                break head;
            }
            if !self.fill(READ_ROOM).await? {
                return Err(H1Error::Closed(*self.heard));
            }
        };
        let mut truncated = false;
        let mut reusable = head.keep_alive;
        let body = match head.framing {
            Framing::Empty => Bytes::new(),
            Framing::Length(n) => {
                let keep = usize::try_from(n).unwrap_or(usize::MAX).min(BODY_READ_CAP);
                truncated = n > keep as u64;
                while self.read.len() < keep {
                    let room = (keep - self.read.len()).min(READ_STEP_MAX);
                    if !self.fill(room).await? {
                        return Err(H1Error::Closed(true));
                    }
                }
                self.read.split_to(keep).freeze()
            }
            Framing::Chunked => {
                let mut decoder = Chunked::default();
                let mut out = BytesMut::new();
                while !decoder.decode(self.read, &mut out, BODY_READ_CAP, &mut truncated)? {
                    if truncated {
                        break;
                    }
                    if !self.fill(READ_ROOM).await? {
                        return Err(H1Error::Closed(true));
                    }
                }
                out.freeze()
            }
            Framing::UntilClose => {
                loop {
                    if self.read.len() > BODY_READ_CAP {
                        truncated = true;
                        self.read.truncate(BODY_READ_CAP);
                        break;
                    }
                    let room = (BODY_READ_CAP + 1 - self.read.len()).min(READ_STEP_MAX);
                    if !self.fill(room).await? {
                        break;
                    }
                }
                reusable = false;
                self.read.split().freeze()
            }
        };
        // A cut body leaves the rest unread; bytes after the answer are none the client asked for.
        reusable &= !truncated && self.read.is_empty();
        // A big answer's buffer is not kept by an idle connection for the rest of its life (the
        // next answer's tail would pin it): the next read starts a small one.
        if body.len() > READ_STEP_MAX {
            *self.read = BytesMut::new();
        }
        let response = H1Response {
            status: head.status,
            headers: head.headers,
            body,
            truncated,
        };
        Ok((response, reusable))
    }
}

#[cfg(test)]
mod tests {
    use hyper::header::CONTENT_LENGTH;

    use super::*;

    /// The headers of the request `url`'s client sends with a body of `len` bytes.
    fn sent_headers(url: &str, extra: &HeaderMap, len: usize) -> HeaderMap {
        let url = reqwest::Url::parse(url).unwrap();
        let client = H1Client::new(&url, extra).unwrap();
        let mut head = Vec::new();
        wire::finish_head(&client.prefix, len, &mut head);
        let mut parsed = [httparse::EMPTY_HEADER; 16];
        let mut req = httparse::Request::new(&mut parsed);
        assert_eq!(
            req.parse(&head).unwrap(),
            httparse::Status::Complete(head.len())
        );
        assert_eq!((req.method, req.path), (Some("POST"), Some(url.path())));
        let mut headers = HeaderMap::new();
        for h in req.headers.iter() {
            headers.append(
                hyper::header::HeaderName::from_bytes(h.name.as_bytes()).unwrap(),
                HeaderValue::from_bytes(h.value).unwrap(),
            );
        }
        headers
    }

    #[test]
    fn userinfo_is_sent_as_basic_auth_decoded() {
        // "user@corp" : "p:ss w" percent-encoded in the URL, as a user would have to write it.
        let url = "http://user%40corp:p%3Ass%20w@127.0.0.1:9/t";
        let headers = sent_headers(url, &HeaderMap::new(), 0);
        let auth = headers.get(AUTHORIZATION).unwrap();
        use base64::Engine as _;
        let expected = base64::engine::general_purpose::STANDARD.encode("user@corp:p:ss w");
        assert_eq!(auth.to_str().unwrap(), format!("Basic {expected}"));
        assert_eq!(headers.get(HOST).unwrap(), "127.0.0.1:9");
        let made = basic_auth(&reqwest::Url::parse(url).unwrap()).unwrap();
        assert!(made.is_sensitive());
    }

    #[test]
    fn each_request_carries_its_own_length_and_no_other() {
        let mut extra = HeaderMap::new();
        // A length among the target's headers (a `--header`) never goes out beside the real one.
        extra.insert(CONTENT_LENGTH, HeaderValue::from_static("99"));
        for len in [0, 3, 3, 11, 0] {
            let headers = sent_headers("http://127.0.0.1:9/t", &extra, len);
            let sent = headers.get_all(CONTENT_LENGTH).iter().collect::<Vec<_>>();
            assert_eq!(sent, [len.to_string().as_str()]);
        }
    }

    #[test]
    fn no_userinfo_no_authorization_and_a_given_one_wins() {
        let headers = sent_headers("http://127.0.0.1:9/t", &HeaderMap::new(), 0);
        assert!(headers.get(AUTHORIZATION).is_none());
        let mut extra = HeaderMap::new();
        extra.insert(AUTHORIZATION, HeaderValue::from_static("Bearer t0k3n"));
        let headers = sent_headers("http://u:p@127.0.0.1:9/t", &extra, 0);
        assert_eq!(headers.get(AUTHORIZATION).unwrap(), "Bearer t0k3n");
    }
}

/// The client against real sockets: a scripted server on 127.0.0.1 that reads each request whole
/// and answers as a test tells it to.
#[cfg(test)]
mod exchange_tests {
    use std::sync::Arc;
    use std::sync::atomic::AtomicUsize;
    use std::time::Duration;

    use tokio::io::{AsyncReadExt, AsyncWriteExt};
    use tokio::net::TcpListener;

    use super::*;

    /// What the server does with the `n`-th request (counted over all connections) on a
    /// connection's `k`-th request.
    #[derive(Clone, Copy)]
    enum Script {
        /// Write these bytes and keep the connection.
        Answer(&'static [u8]),
        /// Write these bytes and close.
        AnswerClose(&'static [u8]),
        /// Close without answering.
        Close,
        /// Never answer.
        Hang,
    }

    struct Server {
        url: reqwest::Url,
        connections: Arc<AtomicUsize>,
        requests: Arc<AtomicUsize>,
    }

    /// Read one request (head and `Content-Length` body) off `stream`; false at its end.
    async fn read_request(stream: &mut TcpStream, buf: &mut Vec<u8>) -> bool {
        loop {
            let mut headers = [httparse::EMPTY_HEADER; 32];
            let mut req = httparse::Request::new(&mut headers);
            if let Ok(httparse::Status::Complete(n)) = req.parse(buf) {
                let len: usize = req
                    .headers
                    .iter()
                    .find(|h| h.name.eq_ignore_ascii_case("content-length"))
                    .map(|h| std::str::from_utf8(h.value).unwrap().parse().unwrap())
                    .unwrap_or(0);
                if buf.len() >= n + len {
                    buf.drain(..n + len);
                    return true;
                }
            }
            let mut chunk = [0u8; 65536];
            match stream.read(&mut chunk).await {
                Ok(0) | Err(_) => return false,
                Ok(k) => buf.extend_from_slice(&chunk[..k]),
            }
        }
    }

    /// A server answering request `n` (0-based, over all connections) with `script(n, k)`, `k`
    /// the request's place on its connection.
    async fn server(script: fn(usize, usize) -> Script) -> Server {
        let listener = TcpListener::bind("127.0.0.1:0").await.unwrap();
        let url =
            reqwest::Url::parse(&format!("http://{}/t", listener.local_addr().unwrap())).unwrap();
        let connections = Arc::new(AtomicUsize::new(0));
        let requests = Arc::new(AtomicUsize::new(0));
        let (c, r) = (connections.clone(), requests.clone());
        tokio::spawn(async move {
            while let Ok((mut stream, _)) = listener.accept().await {
                c.fetch_add(1, Ordering::SeqCst);
                let r = r.clone();
                tokio::spawn(async move {
                    let mut buf = Vec::new();
                    for k in 0.. {
                        if !read_request(&mut stream, &mut buf).await {
                            return;
                        }
                        let n = r.fetch_add(1, Ordering::SeqCst);
                        match script(n, k) {
                            Script::Answer(bytes) => {
                                let _ = stream.write_all(bytes).await;
                            }
                            Script::AnswerClose(bytes) => {
                                let _ = stream.write_all(bytes).await;
                                return;
                            }
                            Script::Close => return,
                            Script::Hang => std::future::pending::<()>().await,
                        }
                    }
                });
            }
        });
        Server {
            url,
            connections,
            requests,
        }
    }

    const OK: &[u8] = b"HTTP/1.1 200 OK\r\nContent-Length: 14\r\n\r\n{\"records\":[]}";

    async fn post(client: &H1Client, body: &'static str) -> Result<H1Response, H1Error> {
        client
            .post(Bytes::from(body), Instant::now() + Duration::from_secs(5))
            .await
    }

    fn client(s: &Server) -> H1Client {
        H1Client::new(&s.url, &HeaderMap::new()).unwrap()
    }

    #[tokio::test]
    async fn a_kept_alive_connection_carries_the_next_request() {
        let s = server(|_, _| Script::Answer(OK)).await;
        let c = client(&s);
        for body in ["{}", "{\"records\":[]}", ""] {
            let r = post(&c, body).await.unwrap();
            assert_eq!((r.status, &r.body[..]), (200, &b"{\"records\":[]}"[..]));
        }
        assert_eq!(s.connections.load(Ordering::SeqCst), 1);
    }

    /// Answers once on each connection, then closes it without saying so.
    const ONCE: &[u8] = b"HTTP/1.1 200 OK\r\nContent-Length: 2\r\n\r\nok";

    async fn post_by(
        client: &H1Client,
        body: Bytes,
        deadline: Duration,
    ) -> Result<H1Response, H1Error> {
        client.post(body, Instant::now() + deadline).await
    }

    #[tokio::test]
    async fn connections_the_server_closed_are_not_used_again() {
        // Closed after answering with `Connection: close`, or silently while idle: the next
        // request goes on a new connection.
        let close = |_, _| {
            Script::AnswerClose(
                b"HTTP/1.1 200 OK\r\nConnection: close\r\nContent-Length: 2\r\n\r\nok",
            )
        };
        for script in [close as fn(usize, usize) -> Script, |_, _| {
            Script::AnswerClose(ONCE)
        }] {
            let s = server(script).await;
            let c = client(&s);
            for _ in 0..3 {
                let r = post(&c, "{}").await.unwrap();
                assert_eq!(&r.body[..], b"ok");
                // Idle: the runtime hears of the close.
                tokio::time::sleep(Duration::from_millis(20)).await;
            }
            assert_eq!(s.connections.load(Ordering::SeqCst), 3);
        }
    }

    #[tokio::test]
    async fn a_connection_idle_for_a_while_is_checked_with_the_kernel() {
        // A server on a thread of its own answers once per connection and closes it 10 ms later.
        // The close reaches the kernel while this test's runtime is kept from polling for events,
        // so only the kernel can tell: a connection idle for longer than `LONG_IDLE` is asked it.
        let listener = std::net::TcpListener::bind("127.0.0.1:0").unwrap();
        let url =
            reqwest::Url::parse(&format!("http://{}/t", listener.local_addr().unwrap())).unwrap();
        let connections = Arc::new(AtomicUsize::new(0));
        let counted = connections.clone();
        std::thread::spawn(move || {
            use std::io::{Read, Write};
            for stream in listener.incoming() {
                let Ok(mut stream) = stream else { return };
                counted.fetch_add(1, Ordering::SeqCst);
                let mut seen = Vec::new();
                while !seen.ends_with(b"\r\n\r\n{}") {
                    let mut chunk = [0u8; 4096];
                    match stream.read(&mut chunk) {
                        Ok(0) | Err(_) => break,
                        Ok(n) => seen.extend_from_slice(&chunk[..n]),
                    }
                }
                let _ = stream.write_all(ONCE);
                std::thread::sleep(Duration::from_millis(10));
            }
        });
        let c = H1Client::new(&url, &HeaderMap::new()).unwrap();
        post_by(&c, Bytes::from("{}"), Duration::from_secs(5))
            .await
            .unwrap();
        std::thread::sleep(Duration::from_millis(50));
        // Due a second later than the first: idle for a second, as far as the pool can tell.
        let r = post_by(&c, Bytes::from("{}"), Duration::from_secs(6))
            .await
            .unwrap();
        assert_eq!(&r.body[..], b"ok");
        assert_eq!(connections.load(Ordering::SeqCst), 2);
    }

    #[tokio::test]
    async fn a_request_cut_off_by_a_close_goes_again_on_a_new_connection() {
        // The server closed the kept-alive connection; the client finds out while the (big)
        // request is still going out: the server cannot have read it, so it goes again.
        let s = server(|_, _| Script::AnswerClose(ONCE)).await;
        let c = client(&s);
        post(&c, "{}").await.unwrap();
        std::thread::sleep(Duration::from_millis(50));
        let big = Bytes::from(vec![b' '; 8 << 20]);
        let r = post_by(&c, big, Duration::from_secs(5)).await.unwrap();
        assert_eq!(&r.body[..], b"ok");
        assert_eq!(s.connections.load(Ordering::SeqCst), 2);
        assert_eq!(s.requests.load(Ordering::SeqCst), 2);
    }

    #[tokio::test]
    async fn a_request_that_went_out_is_never_sent_twice() {
        // The server reads the request and closes without an answer (it crashed on it): on a new
        // connection, and on a kept-alive one alike, that is the answer.
        let s = server(|_, _| Script::Close).await;
        let c = client(&s);
        let e = post(&c, "{}").await.err().unwrap();
        assert!(matches!(e, H1Error::Closed(false)), "{e}");
        assert_eq!(s.requests.load(Ordering::SeqCst), 1);
        let s = server(|n, _| {
            if n == 0 {
                Script::Answer(OK)
            } else {
                Script::Close
            }
        })
        .await;
        let c = client(&s);
        post(&c, "{}").await.unwrap();
        let e = post(&c, "{}").await.err().unwrap();
        assert!(matches!(e, H1Error::Closed(false)), "{e}");
        assert_eq!(s.requests.load(Ordering::SeqCst), 2);
        assert_eq!(s.connections.load(Ordering::SeqCst), 1);
    }

    #[tokio::test]
    async fn a_big_answer_leaves_no_big_buffer_with_its_idle_connection() {
        static BIG: std::sync::OnceLock<&'static [u8]> = std::sync::OnceLock::new();
        let big = *BIG.get_or_init(|| {
            let mut v =
                format!("HTTP/1.1 200 OK\r\nContent-Length: {}\r\n\r\n", 10 << 20).into_bytes();
            v.resize(v.len() + (10 << 20), b' ');
            Vec::leak(v)
        });
        let _ = big;
        let s = server(|_, _| Script::Answer(BIG.get().unwrap())).await;
        let c = client(&s);
        let r = post(&c, "{}").await.unwrap();
        assert_eq!(r.body.len(), 10 << 20);
        drop(r);
        let idle = c.pop_idle().unwrap();
        assert!(
            idle.link.read.capacity() < READ_ROOM * 2,
            "{}",
            idle.link.read.capacity()
        );
    }

    #[tokio::test]
    async fn chunked_interim_and_until_close_answers_are_read_whole() {
        let s = server(|_, _| {
            Script::Answer(b"HTTP/1.1 100 Continue\r\n\r\nHTTP/1.1 200 OK\r\nTransfer-Encoding: chunked\r\nX-Amz-Function-Error: Unhandled\r\n\r\n4\r\n{\"a\"\r\n3\r\n:1}\r\n0\r\n\r\n")
        })
        .await;
        let c = client(&s);
        for _ in 0..2 {
            let r = post(&c, "{}").await.unwrap();
            assert_eq!(&r.body[..], b"{\"a\":1}");
            assert_eq!(r.headers.get("x-amz-function-error").unwrap(), "Unhandled");
        }
        assert_eq!(s.connections.load(Ordering::SeqCst), 1);
        let s = server(|_, _| Script::AnswerClose(b"HTTP/1.0 200 OK\r\n\r\nto the end")).await;
        let c = client(&s);
        for _ in 0..2 {
            assert_eq!(&post(&c, "{}").await.unwrap().body[..], b"to the end");
        }
        assert_eq!(s.connections.load(Ordering::SeqCst), 2);
    }

    #[tokio::test]
    async fn a_body_over_the_cap_is_cut_and_its_connection_dropped() {
        static BIG: std::sync::OnceLock<&'static [u8]> = std::sync::OnceLock::new();
        BIG.get_or_init(|| {
            let mut v = format!(
                "HTTP/1.1 200 OK\r\nContent-Length: {}\r\n\r\n",
                BODY_READ_CAP + 10
            )
            .into_bytes();
            v.resize(v.len() + BODY_READ_CAP + 10, b' ');
            Vec::leak(v)
        });
        let s = server(|_, _| Script::Answer(BIG.get().unwrap())).await;
        let c = client(&s);
        for _ in 0..2 {
            let r = post(&c, "{}").await.unwrap();
            assert!(r.truncated);
            assert_eq!(r.body.len(), BODY_READ_CAP);
        }
        assert_eq!(s.connections.load(Ordering::SeqCst), 2);
    }

    #[tokio::test]
    async fn a_server_answering_before_it_has_read_a_big_request_is_read_meanwhile() {
        // As an axum handler that never takes the body does: 4 MB of answer right after the
        // request's head, the request's 8 MB body read (and dropped) only after that. Writing the
        // whole request before reading would leave both sides waiting for the other to read.
        const ANSWER: usize = 4 << 20;
        let listener = TcpListener::bind("127.0.0.1:0").await.unwrap();
        let url =
            reqwest::Url::parse(&format!("http://{}/t", listener.local_addr().unwrap())).unwrap();
        tokio::spawn(async move {
            let (mut stream, _) = listener.accept().await.unwrap();
            let mut seen = Vec::new();
            while !seen.windows(4).any(|w| w == b"\r\n\r\n") {
                let mut chunk = [0u8; 4096];
                let n = stream.read(&mut chunk).await.unwrap();
                seen.extend_from_slice(&chunk[..n]);
            }
            let mut answer =
                format!("HTTP/1.1 200 OK\r\nContent-Length: {ANSWER}\r\n\r\n").into_bytes();
            answer.resize(answer.len() + ANSWER, b' ');
            stream.write_all(&answer).await.unwrap();
            let mut sink = [0u8; 65536];
            while stream.read(&mut sink).await.is_ok_and(|n| n > 0) {}
        });
        let c = H1Client::new(&url, &HeaderMap::new()).unwrap();
        let r = c
            .post(
                Bytes::from(vec![b'x'; 8 << 20]),
                Instant::now() + Duration::from_secs(20),
            )
            .await
            .unwrap();
        assert_eq!((r.status, r.body.len(), r.truncated), (200, ANSWER, false));
    }

    #[tokio::test]
    async fn garbage_unasked_bytes_and_silence_are_errors_or_new_connections() {
        let s = server(|_, _| Script::Answer(b"SSH-2.0-OpenSSH_9.6\r\n\r\n")).await;
        assert!(matches!(
            post(&client(&s), "{}").await,
            Err(H1Error::Wire(WireError::Head(_)))
        ));
        // Bytes after the answer (a second, unasked-for answer): that connection is not reused.
        let s = server(|_, _| {
            Script::Answer(b"HTTP/1.1 200 OK\r\nContent-Length: 2\r\n\r\nokHTTP/1.1 408 Request Timeout\r\n\r\n")
        })
        .await;
        let c = client(&s);
        for _ in 0..2 {
            assert_eq!(&post(&c, "{}").await.unwrap().body[..], b"ok");
        }
        assert_eq!(s.connections.load(Ordering::SeqCst), 2);
        let s = server(|_, _| Script::Hang).await;
        let c = client(&s);
        let e = c
            .post(
                Bytes::from("{}"),
                Instant::now() + Duration::from_millis(200),
            )
            .await
            .err()
            .unwrap();
        assert!(matches!(e, H1Error::TimedOut));
    }
}
