//! Strict validation of standard base64 without decoding it: a table lookup per byte.

/// How a `data` string measured up.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Base64Check {
    Valid,
    /// Standard alphabet but without `=` padding: Java's decoder accepts it, strict ones do not.
    Unpadded,
    Invalid {
        offset: usize,
        reason: &'static str,
    },
}

const fn alphabet() -> [bool; 256] {
    let mut t = [false; 256];
    let mut c = b'A';
    while c <= b'Z' {
        t[c as usize] = true;
        t[(c - b'A' + b'a') as usize] = true;
        c += 1;
    }
    let mut d = b'0';
    while d <= b'9' {
        t[d as usize] = true;
        d += 1;
    }
    t[b'+' as usize] = true;
    t[b'/' as usize] = true;
    t
}

static ALPHABET: [bool; 256] = alphabet();

/// Is `b` in the standard alphabet? Arithmetic only, no table and no branch, so that a loop over
/// a fixed-size chunk compiles to SIMD compares.
#[inline(always)]
pub(super) fn in_alphabet(b: u8) -> bool {
    ((b | 0x20).wrapping_sub(b'a') < 26) | (b.wrapping_sub(b'0') < 10) | (b == b'+') | (b == b'/')
}

/// Where the first byte outside the alphabet is. The oracle runs this over every `data` string of
/// every response, so it is the load engine's hottest loop: whole 64-byte, then 16-byte chunks
/// are judged without an early exit (vectorised), and only the rest is searched byte by byte.
fn first_outside_alphabet(body: &[u8]) -> Option<usize> {
    let base = super::whole_chunks_of(body, 0, in_alphabet);
    body[base..]
        .iter()
        .position(|b| !ALPHABET[usize::from(*b)])
        .map(|i| base + i)
}

pub fn check_base64(s: &[u8]) -> Base64Check {
    let pad = trailing_pad(s);
    let body = &s[..s.len() - pad];
    if let Some(offset) = first_outside_alphabet(body) {
        let reason = match body[offset] {
            b'=' => "padding in the middle",
            b'-' | b'_' => "URL-safe alphabet (- or _), not standard base64",
            b'\n' | b'\r' | b' ' | b'\t' => "whitespace",
            _ => "a character outside the base64 alphabet",
        };
        return Base64Check::Invalid { offset, reason };
    }
    by_length(s.len(), pad)
}

/// The `=` at the end of `s`, counting at most three.
fn trailing_pad(s: &[u8]) -> usize {
    s.iter().rev().take(3).take_while(|b| **b == b'=').count()
}

/// [`check_base64`] of a string its reader already found to be standard alphabet followed by
/// at most two `=` (see [`super::response::Scanned`]): only its length and padding are left to
/// judge, without reading it again.
pub fn check_base64_scanned(s: &[u8]) -> Base64Check {
    let checked = by_length(s.len(), trailing_pad(s));
    debug_assert_eq!(checked, check_base64(s), "a wrong `Scanned` hint");
    checked
}

/// The verdict on a string of `len` bytes, the last `pad` of them `=` and all others in the
/// alphabet.
fn by_length(len: usize, pad: usize) -> Base64Check {
    let body_len = len - pad;
    match (pad, body_len % 4) {
        (0, 0) => Base64Check::Valid,
        (0, 2 | 3) => Base64Check::Unpadded,
        (1, 3) | (2, 2) => Base64Check::Valid,
        (0, _) => Base64Check::Invalid {
            offset: len,
            reason: "a length that no bytes encode to",
        },
        _ => Base64Check::Invalid {
            offset: body_len,
            reason: "wrong amount of padding",
        },
    }
}

/// The last byte `s` decodes to, for the newline check; `None` when it decodes to nothing.
pub fn last_decoded_byte(s: &[u8]) -> Option<u8> {
    use base64::Engine as _;
    let trimmed = s.strip_suffix(b"==").or(s.strip_suffix(b"=")).unwrap_or(s);
    let tail_len = match trimmed.len() % 4 {
        0 => 4.min(trimmed.len()),
        r => r,
    };
    let tail = &trimmed[trimmed.len() - tail_len..];
    base64::engine::general_purpose::STANDARD_NO_PAD
        .decode(tail)
        .ok()?
        .last()
        .copied()
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn classifies() {
        assert_eq!(check_base64(b""), Base64Check::Valid);
        assert_eq!(check_base64(b"aGVsbG8="), Base64Check::Valid);
        assert_eq!(check_base64(b"aGVsbA=="), Base64Check::Valid);
        assert_eq!(check_base64(b"aGVsbG8"), Base64Check::Unpadded);
        assert!(matches!(
            check_base64(b"hello world"),
            Base64Check::Invalid { .. }
        ));
        assert!(matches!(
            check_base64(b"aGVs-G8="),
            Base64Check::Invalid { offset: 4, .. }
        ));
        assert!(matches!(
            check_base64(b"aGVsbG8=="),
            Base64Check::Invalid { .. }
        ));
        assert!(matches!(check_base64(b"a"), Base64Check::Invalid { .. }));
        assert!(matches!(
            check_base64(b"aG=sbG8="),
            Base64Check::Invalid { .. }
        ));
    }

    #[test]
    fn the_fast_path_agrees_with_the_table() {
        for b in 0..=255u8 {
            assert_eq!(in_alphabet(b), ALPHABET[usize::from(b)], "byte {b}");
        }
        let long = "QUJD".repeat(100);
        assert_eq!(check_base64(long.as_bytes()), Base64Check::Valid);
        for at in [0, 63, 64, 65, 127, 128, 200, 399] {
            let mut bad = long.clone().into_bytes();
            bad[at] = b'-';
            assert_eq!(first_outside_alphabet(&bad), Some(at), "offset {at}");
        }
    }

    #[test]
    fn last_byte() {
        assert_eq!(last_decoded_byte(b"aGkK"), Some(b'\n'));
        assert_eq!(last_decoded_byte(b"aGVsbG8K"), Some(b'\n'));
        assert_eq!(last_decoded_byte(b"aGVsbG8="), Some(b'o'));
        assert_eq!(last_decoded_byte(b"aA=="), Some(b'h'));
        assert_eq!(last_decoded_byte(b""), None);
    }
}
