//! HTTP/1.1 on the wire, without I/O: the request head the pool writes, and the answer's head and
//! body framing read back out of a connection's buffer (RFC 9112). `httparse` does the parsing;
//! this module decides what the parsed head means for the body and for the connection.
//!
//! Sans-I/O so that every framing can be tested byte by byte, split at any point.

use bytes::{Buf, BytesMut};
use hyper::header::{
    CONNECTION, CONTENT_LENGTH, HeaderMap, HeaderName, HeaderValue, TRANSFER_ENCODING,
};

/// The most header lines an answer may have (hyper's default limit).
pub(super) const MAX_HEADERS: usize = 100;

/// The most bytes an answer's head, a chunk-size line or a trailer section may take: hyper's
/// default limit of its read buffer (real transformers send a few hundred bytes of head).
pub(super) const MAX_HEAD_BYTES: usize = 8192 + 4096 * 100;

/// What is wrong with an answer, as the report says it.
#[derive(Debug, Clone, PartialEq, Eq, thiserror::Error)]
pub enum WireError {
    #[error("not an HTTP/1 answer: {0}")]
    Head(httparse::Error),
    #[error("the answer's head is over {} KiB", MAX_HEAD_BYTES / 1024)]
    HeadTooLarge,
    #[error("the answer switches protocols (101), which a transformer cannot do")]
    Switching,
    #[error("the answer's Content-Length is not one number")]
    Length,
    #[error("the answer's chunked body is malformed")]
    Chunk,
}

/// How the answer's body is delimited.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub(super) enum Framing {
    /// No body: 1xx, 204, 304.
    Empty,
    /// `Content-Length` bytes.
    Length(u64),
    /// `Transfer-Encoding: chunked`.
    Chunked,
    /// Whatever comes until the server closes the connection.
    UntilClose,
}

/// An answer's head.
#[derive(Debug)]
pub(super) struct Head {
    pub status: u16,
    pub headers: HeaderMap,
    pub framing: Framing,
    /// The server lets the connection carry another request.
    pub keep_alive: bool,
}

/// The request head up to the value of `Content-Length`, which [`finish_head`] appends: request
/// line, then `headers` (any `Content-Length` among them left out).
pub(super) fn head_prefix(path: &str, headers: &HeaderMap) -> Vec<u8> {
    let mut out = Vec::with_capacity(256);
    out.extend_from_slice(b"POST ");
    out.extend_from_slice(path.as_bytes());
    out.extend_from_slice(b" HTTP/1.1\r\n");
    for (name, value) in headers {
        if name == CONTENT_LENGTH {
            continue;
        }
        out.extend_from_slice(name.as_str().as_bytes());
        out.extend_from_slice(b": ");
        out.extend_from_slice(value.as_bytes());
        out.extend_from_slice(b"\r\n");
    }
    out.extend_from_slice(b"content-length: ");
    out
}

/// The whole request head for a body of `len` bytes into `out` (cleared first).
pub(super) fn finish_head(prefix: &[u8], len: usize, out: &mut Vec<u8>) {
    out.clear();
    out.extend_from_slice(prefix);
    out.extend_from_slice(itoa::Buffer::new().format(len).as_bytes());
    out.extend_from_slice(b"\r\n\r\n");
}

/// The answer's head, if `buf` holds all of it: taken off the front of `buf`, header values kept
/// as slices of it (no copy). Interim answers (`100 Continue`, `103 Early Hints`) are skipped.
/// `Ok(None)`: more bytes are needed.
pub(super) fn parse_head(buf: &mut BytesMut) -> Result<Option<Head>, WireError> {
    loop {
        // Few answers have more than a handful of headers: room for 16 first, all of them if not.
        // On the stack, not in a `Vec`: this runs for every answer.
        let mut few = [NO_SPAN; 16];
        let mut all;
        let (parsed, spans): (_, &[HeaderSpan]) = match parse_spans(buf, &mut few) {
            Err(WireError::Head(httparse::Error::TooManyHeaders)) => {
                all = [NO_SPAN; MAX_HEADERS];
                (parse_spans(buf, &mut all), &all)
            }
            other => (other, &few),
        };
        let Some(p) = parsed? else {
            return Ok(None);
        };
        if p.status < 100 {
            return Err(WireError::Head(httparse::Error::Status));
        }
        let head = buf.split_to(p.len).freeze();
        if (100..200).contains(&p.status) {
            if p.status == 101 {
                return Err(WireError::Switching);
            }
            continue;
        }
        let mut headers = HeaderMap::with_capacity(p.count);
        for &(name, value) in &spans[..p.count] {
            let (Ok(name), Ok(value)) = (
                HeaderName::from_bytes(&head[name.0..name.1]),
                HeaderValue::from_maybe_shared(head.slice(value.0..value.1)),
            ) else {
                continue;
            };
            headers.append(name, value);
        }
        return framing(p.status, p.version, headers).map(Some);
    }
}

/// Where a header's name and value sit in the buffer: `(start, end)` of each.
type HeaderSpan = ((usize, usize), (usize, usize));
const NO_SPAN: HeaderSpan = ((0, 0), (0, 0));

/// A parsed head: its length, status, version and how many headers it has.
struct Parsed {
    len: usize,
    status: u16,
    version: u8,
    count: usize,
}

/// Parse the head at the front of `buf` with room for `N` headers, writing where each sits to
/// `spans`.
fn parse_spans<const N: usize>(
    buf: &[u8],
    spans: &mut [HeaderSpan; N],
) -> Result<Option<Parsed>, WireError> {
    let mut headers = [httparse::EMPTY_HEADER; N];
    let mut resp = httparse::Response::new(&mut headers);
    let len = match resp.parse(buf) {
        Ok(httparse::Status::Complete(len)) if len > MAX_HEAD_BYTES => {
            return Err(WireError::HeadTooLarge);
        }
        Ok(httparse::Status::Complete(len)) => len,
        Ok(httparse::Status::Partial) if buf.len() > MAX_HEAD_BYTES => {
            return Err(WireError::HeadTooLarge);
        }
        Ok(httparse::Status::Partial) => return Ok(None),
        Err(e) => return Err(WireError::Head(e)),
    };
    let base = buf.as_ptr() as usize;
    let span = |s: &[u8]| {
        let at = s.as_ptr() as usize - base;
        (at, at + s.len())
    };
    for (slot, h) in spans.iter_mut().zip(resp.headers.iter()) {
        *slot = (span(h.name.as_bytes()), span(h.value));
    }
    Ok(Some(Parsed {
        len,
        // httparse fills both once the head is complete.
        status: resp.code.unwrap_or(0),
        version: resp.version.unwrap_or(1),
        count: resp.headers.len(),
    }))
}

/// What the head says about the body and the connection (RFC 9112 §6.3, §9.3).
fn framing(status: u16, version: u8, headers: HeaderMap) -> Result<Head, WireError> {
    let has_token = |name: &HeaderName, token: &str| {
        headers
            .get_all(name)
            .iter()
            .filter_map(|v| v.to_str().ok())
            .flat_map(|v| v.split(','))
            .any(|t| t.trim().eq_ignore_ascii_case(token))
    };
    let mut keep_alive = if version == 0 {
        has_token(&CONNECTION, "keep-alive")
    } else {
        !has_token(&CONNECTION, "close")
    };
    let framing = if status == 204 || status == 304 {
        Framing::Empty
    } else if headers.contains_key(TRANSFER_ENCODING) {
        // The last coding decides; a body framed both ways must not leave the connection in use.
        let chunked_last = headers
            .get_all(TRANSFER_ENCODING)
            .iter()
            .next_back()
            .and_then(|v| v.to_str().ok())
            .and_then(|v| v.rsplit(',').next())
            .is_some_and(|t| t.trim().eq_ignore_ascii_case("chunked"));
        // Framed both ways, or by a coding HTTP/1.0 does not have (RFC 9112 §6.1, §6.3): the
        // framing is suspect, so the connection carries nothing after this answer.
        if headers.contains_key(CONTENT_LENGTH) || version == 0 {
            keep_alive = false;
        }
        if chunked_last {
            Framing::Chunked
        } else {
            Framing::UntilClose
        }
    } else if headers.contains_key(CONTENT_LENGTH) {
        // Several equal values (or one list of them) are one length; anything else is an error.
        let mut length = None;
        for value in headers.get_all(CONTENT_LENGTH) {
            let text = value.to_str().map_err(|_| WireError::Length)?;
            for part in text.split(',') {
                let part = part.trim();
                if part.is_empty() || !part.bytes().all(|b| b.is_ascii_digit()) {
                    return Err(WireError::Length);
                }
                let n: u64 = part.parse().map_err(|_| WireError::Length)?;
                if length.is_some_and(|l| l != n) {
                    return Err(WireError::Length);
                }
                length = Some(n);
            }
        }
        Framing::Length(length.ok_or(WireError::Length)?)
    } else {
        Framing::UntilClose
    };
    if framing == Framing::UntilClose {
        keep_alive = false;
    }
    Ok(Head {
        status,
        headers,
        framing,
        keep_alive,
    })
}

/// Decodes a chunked body as its bytes arrive.
#[derive(Debug, Default)]
pub(super) struct Chunked {
    state: ChunkState,
}

#[derive(Debug, Default, Clone, Copy, PartialEq, Eq)]
enum ChunkState {
    /// At a chunk-size line.
    #[default]
    Size,
    /// Inside a chunk's data, this many bytes still to come.
    Data(u64),
    /// After a chunk's data: its CRLF.
    DataEnd,
    /// After the last chunk: trailer lines until an empty one.
    Trailers,
    Done,
}

impl Chunked {
    /// Move the data of the chunks in `buf` to `out`, keeping at most `cap` bytes in `out` and
    /// skipping the rest. Returns true once the body has ended (its bytes taken off `buf`); false
    /// when `buf` needs more bytes.
    pub(super) fn decode(
        &mut self,
        buf: &mut BytesMut,
        out: &mut BytesMut,
        cap: usize,
        truncated: &mut bool,
    ) -> Result<bool, WireError> {
        loop {
            match self.state {
                ChunkState::Size => match httparse::parse_chunk_size(buf) {
                    // httparse is lenient where RFC 9112 §7.1 is not: a size needs a digit, and
                    // an extension ends at its line's end.
                    Ok(httparse::Status::Complete((used, _)))
                        if !buf[0].is_ascii_hexdigit() || buf[..used - 1].contains(&b'\n') =>
                    {
                        return Err(WireError::Chunk);
                    }
                    Ok(httparse::Status::Complete((used, 0))) => {
                        buf.advance(used);
                        self.state = ChunkState::Trailers;
                    }
                    Ok(httparse::Status::Complete((used, size))) => {
                        buf.advance(used);
                        self.state = ChunkState::Data(size);
                    }
                    Ok(httparse::Status::Partial) if buf.len() > MAX_HEAD_BYTES => {
                        return Err(WireError::Chunk);
                    }
                    Ok(httparse::Status::Partial) => return Ok(false),
                    Err(_) => return Err(WireError::Chunk),
                },
                ChunkState::Data(left) => {
                    if buf.is_empty() {
                        return Ok(false);
                    }
                    let n = (left.min(buf.len() as u64)) as usize;
                    let room = cap.saturating_sub(out.len());
                    if n > room {
                        *truncated = true;
                    }
                    out.extend_from_slice(&buf[..n.min(room)]);
                    buf.advance(n);
                    self.state = if left == n as u64 {
                        ChunkState::DataEnd
                    } else {
                        ChunkState::Data(left - n as u64)
                    };
                }
                ChunkState::DataEnd => {
                    if buf.len() < 2 {
                        return Ok(false);
                    }
                    if &buf[..2] != b"\r\n" {
                        return Err(WireError::Chunk);
                    }
                    buf.advance(2);
                    self.state = ChunkState::Size;
                }
                ChunkState::Trailers => {
                    let Some(end) = buf.windows(2).position(|w| w == b"\r\n") else {
                        if buf.len() > MAX_HEAD_BYTES {
                            return Err(WireError::Chunk);
                        }
                        return Ok(false);
                    };
                    // One trailer line (ignored), or the empty line that ends the body.
                    buf.advance(end + 2);
                    if end == 0 {
                        self.state = ChunkState::Done;
                    }
                }
                ChunkState::Done => return Ok(true),
            }
        }
    }
}

/// `bytes` as a fresh read buffer would hold them (for tests).
#[cfg(test)]
fn buffer(bytes: &[u8]) -> BytesMut {
    BytesMut::from(bytes)
}

#[cfg(test)]
mod tests {
    use super::*;

    fn head(text: &str) -> Result<Option<Head>, WireError> {
        parse_head(&mut buffer(text.as_bytes()))
    }

    #[test]
    fn a_length_framed_answer_keeps_the_connection() {
        let mut buf = buffer(b"HTTP/1.1 200 OK\r\nContent-Length: 5\r\nX-A: b\r\n\r\nhello");
        let h = parse_head(&mut buf).unwrap().unwrap();
        assert_eq!(h.status, 200);
        assert_eq!(h.framing, Framing::Length(5));
        assert!(h.keep_alive);
        assert_eq!(h.headers.get("x-a").unwrap(), "b");
        assert_eq!(&buf[..], b"hello");
    }

    #[test]
    fn an_answer_with_more_headers_than_the_first_try_keeps_them_all() {
        let mut text = String::from("HTTP/1.1 200 OK\r\n");
        for i in 0..40 {
            text.push_str(&format!("X-H{i}: v{i}\r\n"));
        }
        text.push_str("Content-Length: 0\r\n\r\n");
        let h = head(&text).unwrap().unwrap();
        assert_eq!(h.headers.len(), 41);
        assert_eq!(h.headers.get("x-h39").unwrap(), "v39");
        let too_many = text.replace("X-H0: v0\r\n", &"X-A: b\r\n".repeat(MAX_HEADERS));
        assert!(matches!(
            head(&too_many),
            Err(WireError::Head(httparse::Error::TooManyHeaders))
        ));
    }

    #[test]
    fn interim_answers_are_skipped() {
        let mut buf =
            buffer(b"HTTP/1.1 100 Continue\r\n\r\nHTTP/1.1 103 Early Hints\r\nLink: x\r\n\r\nHTTP/1.1 204 No Content\r\n\r\n");
        let h = parse_head(&mut buf).unwrap().unwrap();
        assert_eq!((h.status, h.framing), (204, Framing::Empty));
        assert!(buf.is_empty());
        assert_eq!(
            head("HTTP/1.1 101 Switching Protocols\r\n\r\n").unwrap_err(),
            WireError::Switching
        );
    }

    #[test]
    fn a_partial_head_asks_for_more_and_a_huge_one_is_refused() {
        assert!(head("HTTP/1.1 200 OK\r\nContent-Le").unwrap().is_none());
        let huge = format!("HTTP/1.1 200 OK\r\nX: {}", "a".repeat(MAX_HEAD_BYTES));
        assert_eq!(head(&huge).unwrap_err(), WireError::HeadTooLarge);
        assert!(matches!(head("garbage\r\n\r\n"), Err(WireError::Head(_))));
    }

    #[test]
    fn framing_follows_rfc_9112() {
        let f = |t: &str| head(t).unwrap().unwrap();
        let h = f("HTTP/1.1 200 OK\r\nTransfer-Encoding: gzip, chunked\r\n\r\n");
        assert_eq!((h.framing, h.keep_alive), (Framing::Chunked, true));
        let h = f("HTTP/1.1 200 OK\r\nTransfer-Encoding: chunked\r\nContent-Length: 3\r\n\r\n");
        assert_eq!((h.framing, h.keep_alive), (Framing::Chunked, false));
        let h = f("HTTP/1.1 200 OK\r\nTransfer-Encoding: gzip\r\n\r\n");
        assert_eq!((h.framing, h.keep_alive), (Framing::UntilClose, false));
        let h = f("HTTP/1.1 200 OK\r\n\r\n");
        assert_eq!((h.framing, h.keep_alive), (Framing::UntilClose, false));
        let h = f("HTTP/1.1 200 OK\r\nConnection: Close\r\nContent-Length: 0\r\n\r\n");
        assert_eq!((h.framing, h.keep_alive), (Framing::Length(0), false));
        let h = f("HTTP/1.0 200 OK\r\nContent-Length: 0\r\n\r\n");
        assert!(!h.keep_alive);
        let h = f("HTTP/1.0 200 OK\r\nConnection: keep-alive\r\nContent-Length: 0\r\n\r\n");
        assert!(h.keep_alive);
        let h =
            f("HTTP/1.0 200 OK\r\nConnection: keep-alive\r\nTransfer-Encoding: chunked\r\n\r\n");
        assert_eq!((h.framing, h.keep_alive), (Framing::Chunked, false));
        assert!(matches!(
            head("HTTP/1.1 042 Weird\r\nContent-Length: 0\r\n\r\n"),
            Err(WireError::Head(httparse::Error::Status))
        ));
        let h = f("HTTP/1.1 200 OK\r\nContent-Length: 7, 7\r\nContent-Length: 7\r\n\r\n");
        assert_eq!(h.framing, Framing::Length(7));
        let h = f("HTTP/1.1 304 Not Modified\r\nContent-Length: 7\r\n\r\n");
        assert_eq!(h.framing, Framing::Empty);
        for bad in ["7, 8", "-1", "+7", "", "0x10", "99999999999999999999999"] {
            let text = format!("HTTP/1.1 200 OK\r\nContent-Length: {bad}\r\n\r\n");
            assert_eq!(head(&text).unwrap_err(), WireError::Length, "{bad:?}");
        }
    }

    /// Decode `wire` fed in pieces of `step` bytes; the data and whether it ended.
    fn dechunk(
        wire: &[u8],
        step: usize,
        cap: usize,
    ) -> Result<(Vec<u8>, bool, bool, Vec<u8>), WireError> {
        let mut dec = Chunked::default();
        let mut buf = BytesMut::new();
        let mut out = BytesMut::new();
        let mut truncated = false;
        for piece in wire.chunks(step.max(1)) {
            buf.extend_from_slice(piece);
            if dec.decode(&mut buf, &mut out, cap, &mut truncated)? {
                return Ok((out.to_vec(), true, truncated, buf.to_vec()));
            }
        }
        Ok((out.to_vec(), false, truncated, buf.to_vec()))
    }

    #[test]
    fn chunked_bodies_decode_at_any_split() {
        let wire =
            b"5;ext=1\r\nhello\r\n1\r\n \r\nC\r\nworld, again\r\n0\r\nX-Trailer: t\r\n\r\nNEXT";
        for step in 1..wire.len() {
            let (data, done, truncated, left) = dechunk(wire, step, usize::MAX).unwrap();
            assert_eq!(data, b"hello world, again", "step {step}");
            assert!(done && !truncated);
            // Bytes after the body stay in the buffer (and keep the connection from reuse).
            assert!(b"NEXT".starts_with(&left), "step {step}: {left:?}");
        }
    }

    #[test]
    fn chunked_bodies_are_capped_and_malformed_ones_refused() {
        let (data, done, truncated, _) = dechunk(b"5\r\nhello\r\n0\r\n\r\n", 3, 2).unwrap();
        assert_eq!((data.as_slice(), done, truncated), (&b"he"[..], true, true));
        assert_eq!(dechunk(b"zz\r\n", 10, 10).unwrap_err(), WireError::Chunk);
        // No size where one belongs; a line feed inside an extension (it would swallow data).
        assert_eq!(
            dechunk(b"3\r\nabc\r\n\r\n\r\n", 100, 100).unwrap_err(),
            WireError::Chunk
        );
        assert_eq!(
            dechunk(b"3;x\nabc\r\n0\r\n\r\n", 100, 100).unwrap_err(),
            WireError::Chunk
        );
        assert_eq!(dechunk(b";e\r\n", 100, 100).unwrap_err(), WireError::Chunk);
        assert_eq!(
            dechunk(b"2\r\nabX\r\n", 10, 10).unwrap_err(),
            WireError::Chunk
        );
        let (_, done, _, _) = dechunk(b"5\r\nhel", 2, 10).unwrap();
        assert!(!done);
    }

    #[test]
    fn the_request_head_carries_each_length_and_no_other() {
        let mut headers = HeaderMap::new();
        headers.insert("content-type", HeaderValue::from_static("application/json"));
        headers.insert(CONTENT_LENGTH, HeaderValue::from_static("0"));
        let prefix = head_prefix("/p?q=1", &headers);
        let mut out = Vec::new();
        for len in [0, 5, 5, 12_345] {
            finish_head(&prefix, len, &mut out);
            let mut parsed = [httparse::EMPTY_HEADER; 8];
            let mut req = httparse::Request::new(&mut parsed);
            assert_eq!(
                req.parse(&out).unwrap(),
                httparse::Status::Complete(out.len())
            );
            assert_eq!((req.method, req.path), (Some("POST"), Some("/p?q=1")));
            let lengths: Vec<_> = req
                .headers
                .iter()
                .filter(|h| h.name.eq_ignore_ascii_case("content-length"))
                .map(|h| h.value.to_vec())
                .collect();
            assert_eq!(lengths, [len.to_string().into_bytes()]);
        }
    }

    /// Pieces of answers, well-formed and not, that a hostile or broken server might send.
    const PIECES: &[&[u8]] = &[
        b"HTTP/1.1 200 OK\r\n",
        b"HTTP/1.0 100 Continue\r\n\r\n",
        b"HTTP/1.1 101 x\r\n\r\n",
        b"Content-Length: 3\r\n",
        b"Content-Length: 99999999999999999999\r\n",
        b"Transfer-Encoding: chunked\r\n",
        b"Connection: close\r\n",
        b"\r\n",
        b"5\r\nhello\r\n",
        b"0\r\n\r\n",
        b"ffffffffffffffff\r\n",
        b"1;a=b\r\nx\r\n",
        b"\xff\xfe\x00",
        b"abc",
        b":",
    ];

    proptest::proptest! {
        #![proptest_config(proptest::prelude::ProptestConfig::with_cases(3000))]

        /// Whatever the bytes, reading them never panics: a head, a need for more, or an error;
        /// and a chunked body after it decodes, asks for more, or is refused.
        #[test]
        fn no_answer_makes_the_reader_panic(
            picks in proptest::collection::vec(0..PIECES.len(), 0..24),
            step in 1usize..64,
        ) {
            let wire: Vec<u8> = picks.iter().flat_map(|&i| PIECES[i].iter().copied()).collect();
            let mut buf = BytesMut::new();
            let mut dec = Chunked::default();
            let mut out = BytesMut::new();
            let mut truncated = false;
            let mut head = None;
            for piece in wire.chunks(step) {
                buf.extend_from_slice(piece);
                if head.is_none() {
                    match parse_head(&mut buf) {
                        Ok(Some(h)) => head = Some(h),
                        Ok(None) => continue,
                        Err(_) => break,
                    }
                }
                match dec.decode(&mut buf, &mut out, 16, &mut truncated) {
                    Ok(true) | Err(_) => break,
                    Ok(false) => {}
                }
                proptest::prop_assert!(out.len() <= 16);
            }
        }

        /// A chunked body cut into any chunks and fed in pieces of any size decodes to itself.
        #[test]
        fn chunked_bodies_round_trip(
            chunks in proptest::collection::vec(proptest::collection::vec(proptest::num::u8::ANY, 1..40), 0..8),
            step in 1usize..50,
        ) {
            let mut wire = Vec::new();
            for c in &chunks {
                wire.extend_from_slice(format!("{:x}\r\n", c.len()).as_bytes());
                wire.extend_from_slice(c);
                wire.extend_from_slice(b"\r\n");
            }
            wire.extend_from_slice(b"0\r\n\r\n");
            let (data, done, truncated, left) = dechunk(&wire, step, usize::MAX).unwrap();
            proptest::prop_assert!(done && !truncated && left.is_empty());
            proptest::prop_assert_eq!(data, chunks.concat());
        }
    }
}
