//! Request bodies read under a cap: a runtime or client may post far more than the emulator keeps,
//! and it must still learn the whole size (to say by how much an answer was too large).

use axum::body::Body;
use bytes::{Bytes, BytesMut};
use http_body_util::BodyExt;

/// Past this much a body is not read any further, only refused.
const DISCARD_LIMIT: usize = 64 * 1024 * 1024;

/// A request body: at most `cap` bytes kept, its whole size counted (up to [`DISCARD_LIMIT`]).
pub struct Capped {
    pub bytes: Bytes,
    pub size: usize,
    pub truncated: bool,
}

pub async fn read_capped(mut body: Body, cap: usize) -> Result<Capped, axum::Error> {
    let mut kept = BytesMut::new();
    let mut size = 0usize;
    while let Some(frame) = body.frame().await {
        let Ok(data) = frame?.into_data() else {
            continue;
        };
        size += data.len();
        let room = cap.saturating_sub(kept.len());
        kept.extend_from_slice(&data[..data.len().min(room)]);
        if size > DISCARD_LIMIT {
            break;
        }
    }
    Ok(Capped {
        truncated: size > kept.len(),
        bytes: kept.freeze(),
        size,
    })
}

#[cfg(test)]
mod tests {
    use super::*;

    fn chunked(chunks: Vec<&'static [u8]>) -> Body {
        let stream = futures_util::stream::iter(
            chunks
                .into_iter()
                .map(|c| Ok::<_, std::io::Error>(Bytes::from_static(c))),
        );
        Body::from_stream(stream)
    }

    #[tokio::test]
    async fn a_body_under_the_cap_is_kept_whole() {
        let c = read_capped(chunked(vec![b"ab", b"cd"]), 10).await.unwrap();
        assert_eq!(
            (&c.bytes[..], c.size, c.truncated),
            (&b"abcd"[..], 4, false)
        );
    }

    #[tokio::test]
    async fn a_body_over_the_cap_is_counted_but_not_kept() {
        let c = read_capped(chunked(vec![b"abc", b"defg", b"hi"]), 5)
            .await
            .unwrap();
        assert_eq!(
            (&c.bytes[..], c.size, c.truncated),
            (&b"abcde"[..], 9, true)
        );
    }

    #[tokio::test]
    async fn an_empty_body_is_empty() {
        let c = read_capped(Body::empty(), 5).await.unwrap();
        assert_eq!((c.bytes.len(), c.size, c.truncated), (0, 0, false));
    }

    #[tokio::test]
    async fn a_broken_body_is_an_error() {
        let stream = futures_util::stream::iter(vec![
            Ok(Bytes::from_static(b"ab")),
            Err(std::io::Error::other("reset")),
        ]);
        assert!(read_capped(Body::from_stream(stream), 5).await.is_err());
    }
}
