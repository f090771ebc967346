//! Request and trace ids in the shapes Lambda uses: a v4 UUID and an X-Ray trace header. Random
//! enough to be unique per run; nothing depends on them being unpredictable.

use std::hash::{BuildHasher, Hasher};
use std::sync::atomic::{AtomicU64, Ordering};
use std::time::{SystemTime, UNIX_EPOCH};

static COUNTER: AtomicU64 = AtomicU64::new(0);

fn random_u64() -> u64 {
    let mut h = std::collections::hash_map::RandomState::new().build_hasher();
    h.write_u64(COUNTER.fetch_add(1, Ordering::Relaxed));
    h.write_u128(
        SystemTime::now()
            .duration_since(UNIX_EPOCH)
            .unwrap_or_default()
            .as_nanos(),
    );
    h.finish()
}

/// `8-4-4-4-12` hex, version 4, RFC 4122 variant.
pub fn request_id() -> String {
    let (a, b) = (random_u64(), random_u64());
    format!(
        "{:08x}-{:04x}-4{:03x}-{:04x}-{:012x}",
        a >> 32,
        (a >> 16) & 0xffff,
        a & 0xfff,
        ((b >> 48) & 0x3fff) | 0x8000,
        b & 0xffff_ffff_ffff
    )
}

/// `Root=1-{epoch hex}-{96 bits};Parent={64 bits};Sampled=0`.
pub fn trace_id() -> String {
    let secs = SystemTime::now()
        .duration_since(UNIX_EPOCH)
        .unwrap_or_default()
        .as_secs();
    let (a, b, c) = (random_u64(), random_u64(), random_u64());
    format!(
        "Root=1-{secs:08x}-{:08x}{:016x};Parent={c:016x};Sampled=0",
        a >> 32,
        b
    )
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn ids_have_lambdas_shapes_and_differ() {
        let id = request_id();
        let parts: Vec<_> = id.split('-').map(str::len).collect();
        assert_eq!(parts, [8, 4, 4, 4, 12], "{id}");
        assert_ne!(request_id(), request_id());
        let t = trace_id();
        assert!(t.starts_with("Root=1-") && t.ends_with(";Sampled=0"), "{t}");
        assert_eq!(
            t.split(';').next().unwrap().len(),
            "Root=1-".len() + 8 + 1 + 24
        );
    }
}
