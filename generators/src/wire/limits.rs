//! The numbers Firehose and Lambda enforce (`FIREHOSE_CONTRACT.md` §5). One place, so every generator,
//! check and report quotes the same figure.

/// Largest synchronous Lambda request, in bytes (Lambda's own error text says 6,291,456).
pub const MAX_REQUEST_BYTES: usize = 6_291_456;
/// Largest synchronous Lambda response, in bytes (Lambda's own error text says 6,291,556).
pub const MAX_RESPONSE_BYTES: usize = 6_291_556;
/// Largest record a producer may put, before base64: 1,000 KiB.
pub const MAX_RECORD_BYTES: usize = 1_024_000;
/// The Lambda processor's buffer-size hint, legal range in bytes (0.2–3 MB, default 1 MB).
pub const BUFFER_HINT_MIN: usize = 200_000;
pub const BUFFER_HINT_MAX: usize = 3_000_000;
pub const BUFFER_HINT_DEFAULT: usize = 1_000_000;
/// Firehose gives a transformer at most five minutes.
pub const MAX_INVOCATION_SECS: u64 = 300;

/// Bytes that base64 makes of `n` bytes (standard alphabet, padded).
pub const fn base64_len(n: usize) -> usize {
    n.div_ceil(3) * 4
}
