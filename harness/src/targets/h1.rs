//! A lean HTTP/1.1 client for plain `http://` targets: a pool of keep-alive connections, each
//! carrying one request at a time, spoken with hyper directly.
//!
//! Why not reqwest here: under `load`, the client's own cost per request decides how much load one
//! machine can offer. reqwest re-parses the URL, clones its client stack and checks out through a
//! generic pool on every request — several times what the exchange itself costs against a fast
//! local transformer. This pool does what oha does (one hyper connection per concurrent caller)
//! and keeps `https://` on reqwest, where TLS dominates anyway.

use std::pin::Pin;
use std::sync::Mutex;
use std::sync::atomic::{AtomicUsize, Ordering};

use bytes::{Bytes, BytesMut};
use crossbeam_utils::CachePadded;
use http_body_util::{BodyExt, Full};
use hyper::client::conn::http1::{self, SendRequest};
use hyper::header::{AUTHORIZATION, CONTENT_LENGTH, HOST, HeaderMap, HeaderName, HeaderValue};
use hyper::{Method, Request, Uri};
use hyper_util::rt::TokioIo;
use tokio::time::{Instant, Sleep};

use crate::invocation::BODY_READ_CAP;

/// Why an exchange failed.
#[derive(Debug, thiserror::Error)]
pub enum H1Error {
    /// No connection could be made: the target is not there.
    #[error("connection refused or unreachable: {0}")]
    Connect(std::io::Error),
    /// The connection broke during the exchange.
    #[error("{0}")]
    Http(#[from] hyper::Error),
    /// No whole answer by the deadline.
    #[error("no answer by the deadline")]
    TimedOut,
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
    /// Per shard, one per worker thread where possible (see [`Shard`]).
    shards: [CachePadded<Shard>; SHARDS],
}

/// What a thread's requests use: its idle connections and its own copy of the request's target
/// and headers. A single shared idle list made the runtime's threads contend (and sleep) on its
/// lock at every request; shared header values had every request's copy of them bounce their
/// reference counts between the cores. Each shard sits on cache lines of its own.
struct Shard {
    idle: Mutex<Vec<Conn>>,
    /// Origin-form request target (`/path?query`).
    path: Uri,
    headers: HeaderMap,
}

/// A kept-alive connection and the timer its exchanges run under. The timer lives as long as the
/// connection: moving a registered timer to a later deadline is one atomic exchange, where a new
/// timer per request (`tokio::time::timeout`) registers with the runtime's timer wheel and
/// deregisters again under its lock — 3.5% of the load client's CPU against a fast target. A
/// timer left at an earlier deadline fires once, is found early and moves itself on.
struct Conn {
    sender: SendRequest<Full<Bytes>>,
    timer: Pin<Box<Sleep>>,
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

/// The `Content-Length` value for `len` bytes. A load run sends bodies of few distinct sizes (one,
/// with `--event`), so each thread keeps the last value it made: a copy of it is a reference count,
/// where making one allocates.
fn content_length(len: usize) -> HeaderValue {
    thread_local! {
        static LAST: std::cell::RefCell<Option<(usize, HeaderValue)>> = const { std::cell::RefCell::new(None) };
    }
    LAST.with_borrow_mut(|last| match last {
        Some((n, value)) if *n == len => value.clone(),
        _ => {
            let value = HeaderValue::from(len);
            *last = Some((len, value.clone()));
            value
        }
    })
}

/// `headers` in memory of their own: a clone shares every value's bytes (and reference count).
fn deep_copy(headers: &HeaderMap) -> HeaderMap {
    let mut copy = HeaderMap::with_capacity(headers.len());
    for (name, value) in headers {
        let name =
            HeaderName::from_bytes(name.as_str().as_bytes()).unwrap_or_else(|_| name.clone());
        let mut fresh = HeaderValue::from_bytes(value.as_bytes()).unwrap_or_else(|_| value.clone());
        fresh.set_sensitive(value.is_sensitive());
        copy.append(name, fresh);
    }
    copy
}

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
        // A place for the length each request sets (see `request`): hyper then adds no header,
        // and a copy of these headers never grows.
        headers.insert(CONTENT_LENGTH, HeaderValue::from_static("0"));
        let shard = || {
            Some(CachePadded::new(Shard {
                idle: Mutex::default(),
                path: path.parse().ok()?,
                headers: deep_copy(&headers),
            }))
        };
        Some(H1Client {
            authority,
            shards: [shard()?, shard()?, shard()?, shard()?],
        })
    }

    /// This thread's shard.
    fn shard(&self) -> &Shard {
        &self.shards[shard_index()]
    }

    /// A new connection whose exchanges are due by `deadline`.
    async fn open(&self, deadline: Instant) -> Result<Conn, H1Error> {
        // The connection's timer bounds its connecting too.
        let mut timer = Box::pin(tokio::time::sleep_until(deadline));
        let sender = tokio::select! {
            biased;
            sender = self.connect() => sender?,
            _ = timer.as_mut() => return Err(H1Error::TimedOut),
        };
        Ok(Conn { sender, timer })
    }

    async fn connect(&self) -> Result<SendRequest<Full<Bytes>>, H1Error> {
        let stream = tokio::net::TcpStream::connect(&self.authority)
            .await
            .map_err(H1Error::Connect)?;
        let _ = stream.set_nodelay(true);
        let (sender, conn) = http1::handshake(TokioIo::new(stream)).await?;
        tokio::spawn(async move {
            // The connection ends when either side closes it; the pool notices through the sender.
            let _ = conn.await;
        });
        Ok(sender)
    }

    /// An idle connection from this thread's shard, else from any shard not busy right now.
    fn pop_idle(&self) -> Option<Conn> {
        let mine = shard_index();
        if let Some(c) = self.shards[mine]
            .idle
            .lock()
            .unwrap_or_else(|p| p.into_inner())
            .pop()
        {
            return Some(c);
        }
        (1..SHARDS).find_map(|i| {
            let shard = &self.shards[(mine + i) % SHARDS];
            shard.idle.try_lock().ok().and_then(|mut v| v.pop())
        })
    }

    fn put_idle(&self, c: Conn) {
        self.shard()
            .idle
            .lock()
            .unwrap_or_else(|p| p.into_inner())
            .push(c);
    }

    fn request(&self, body: Bytes) -> Request<Full<Bytes>> {
        let shard = self.shard();
        let length = content_length(body.len());
        let mut req = Request::new(Full::new(body));
        *req.method_mut() = Method::POST;
        *req.uri_mut() = shard.path.clone();
        *req.headers_mut() = shard.headers.clone();
        req.headers_mut().insert(CONTENT_LENGTH, length);
        req
    }

    /// POST `body` and read the answer, all of it by `deadline`.
    pub async fn post(&self, body: Bytes, deadline: Instant) -> Result<H1Response, H1Error> {
        // An idle connection that is still open, or a new one.
        let (mut conn, reused) = loop {
            match self.pop_idle() {
                Some(c) if c.sender.is_closed() => continue,
                Some(c) => break (c, true),
                None => break (self.open(deadline).await?, false),
            }
        };
        conn.timer.as_mut().reset(deadline);
        let Conn { sender, timer } = &mut conn;
        let answer = tokio::select! {
            biased;
            answer = self.exchange(sender, body, reused) => answer?,
            // The connection is mid-exchange: it goes, with its timer.
            _ = timer.as_mut() => return Err(H1Error::TimedOut),
        };
        // A body left unread would poison the connection: only a fully read one goes back.
        if !answer.truncated && !conn.sender.is_closed() {
            self.put_idle(conn);
        }
        Ok(answer)
    }

    /// One request and its answer over `sender` (replaced by a new connection if a kept-alive
    /// one turns out closed before the request left).
    async fn exchange(
        &self,
        sender: &mut SendRequest<Full<Bytes>>,
        body: Bytes,
        reused: bool,
    ) -> Result<H1Response, H1Error> {
        if reused && sender.ready().await.is_err() {
            *sender = self.connect().await?;
        }
        let resp = match sender.send_request(self.request(body.clone())).await {
            Ok(r) => r,
            // A kept-alive connection the server closed just now: the request never left, so
            // sending it once more on a fresh connection is safe.
            Err(e) if reused && e.is_canceled() => {
                *sender = self.connect().await?;
                sender.send_request(self.request(body)).await?
            }
            Err(e) => return Err(e.into()),
        };
        let status = resp.status().as_u16();
        let (parts, mut incoming) = resp.into_parts();
        // A body that arrives in one chunk (a small answer nearly always does) is kept as hyper
        // handed it, without a copy; only a second chunk starts a buffer gathering them all.
        let mut body = Bytes::new();
        let mut gathered: Option<BytesMut> = None;
        let mut truncated = false;
        while let Some(frame) = incoming.frame().await {
            let Ok(mut chunk) = frame?.into_data() else {
                continue;
            };
            let held = gathered.as_ref().map_or(body.len(), BytesMut::len);
            let room = BODY_READ_CAP - held;
            if chunk.len() > room {
                truncated = true;
                chunk.truncate(room);
            }
            match &mut gathered {
                Some(buf) => buf.extend_from_slice(&chunk),
                None if body.is_empty() => body = chunk,
                None => {
                    // Sized from Content-Length when there is one: no regrowing the buffer
                    // chunk by chunk.
                    let expected = parts
                        .headers
                        .get(CONTENT_LENGTH)
                        .and_then(|v| v.to_str().ok()?.parse::<usize>().ok())
                        .unwrap_or(0);
                    let mut buf = BytesMut::with_capacity(
                        expected.max(held + chunk.len()).min(BODY_READ_CAP),
                    );
                    buf.extend_from_slice(&body);
                    buf.extend_from_slice(&chunk);
                    gathered = Some(buf);
                }
            }
            if truncated {
                break;
            }
        }
        Ok(H1Response {
            status,
            headers: parts.headers,
            body: gathered.map_or(body, BytesMut::freeze),
            truncated,
        })
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    fn sent_headers(url: &str, extra: &HeaderMap) -> HeaderMap {
        let url = reqwest::Url::parse(url).unwrap();
        let client = H1Client::new(&url, extra).unwrap();
        client.request(Bytes::new()).headers().clone()
    }

    #[test]
    fn userinfo_is_sent_as_basic_auth_decoded() {
        // "user@corp" : "p:ss w" percent-encoded in the URL, as a user would have to write it.
        let headers = sent_headers(
            "http://user%40corp:p%3Ass%20w@127.0.0.1:9/t",
            &HeaderMap::new(),
        );
        let auth = headers.get(AUTHORIZATION).unwrap();
        assert!(auth.is_sensitive());
        use base64::Engine as _;
        let expected = base64::engine::general_purpose::STANDARD.encode("user@corp:p:ss w");
        assert_eq!(auth.to_str().unwrap(), format!("Basic {expected}"));
        assert_eq!(headers.get(HOST).unwrap(), "127.0.0.1:9");
    }

    #[test]
    fn each_request_carries_its_own_length() {
        let url = reqwest::Url::parse("http://127.0.0.1:9/t").unwrap();
        let client = H1Client::new(&url, &HeaderMap::new()).unwrap();
        for body in ["", "abc", "abc", "hello world", ""] {
            let req = client.request(Bytes::from(body));
            let sent = req
                .headers()
                .get_all(CONTENT_LENGTH)
                .iter()
                .collect::<Vec<_>>();
            assert_eq!(sent, [body.len().to_string().as_str()]);
        }
    }

    #[test]
    fn no_userinfo_no_authorization_and_a_given_one_wins() {
        let headers = sent_headers("http://127.0.0.1:9/t", &HeaderMap::new());
        assert!(headers.get(AUTHORIZATION).is_none());
        let mut extra = HeaderMap::new();
        extra.insert(AUTHORIZATION, HeaderValue::from_static("Bearer t0k3n"));
        let headers = sent_headers("http://u:p@127.0.0.1:9/t", &extra);
        assert_eq!(headers.get(AUTHORIZATION).unwrap(), "Bearer t0k3n");
    }
}
