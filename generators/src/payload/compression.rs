use std::io::{Read, Write};

use flate2::Compression as Level;
use flate2::read::{GzDecoder, ZlibDecoder};
use flate2::write::{GzEncoder, ZlibEncoder};

/// How a producer compressed a record before putting it (`--compression`).
#[derive(Debug, Clone, Copy, PartialEq, Eq, Hash, PartialOrd, Ord)]
pub enum Compression {
    None,
    Gzip,
    Zlib,
}

impl Compression {
    pub const ALL: [Compression; 3] = [Compression::None, Compression::Gzip, Compression::Zlib];

    pub fn name(self) -> &'static str {
        match self {
            Compression::None => "none",
            Compression::Gzip => "gzip",
            Compression::Zlib => "zlib",
        }
    }

    pub fn parse(s: &str) -> Option<Compression> {
        Compression::ALL.into_iter().find(|c| c.name() == s)
    }

    /// How `data` was compressed, by its header: gzip by its magic number, zlib by a valid header
    /// checksum (text rarely starts with one).
    pub fn sniff(data: &[u8]) -> Compression {
        match data {
            [0x1f, 0x8b, ..] => Compression::Gzip,
            [cmf, flg, ..]
                if cmf & 0x0f == 8 && (u16::from(*cmf) << 8 | u16::from(*flg)) % 31 == 0 =>
            {
                Compression::Zlib
            }
            _ => Compression::None,
        }
    }

    /// The most a compressed stream can exceed its input by (deflate stored blocks plus headers).
    pub fn worst_case_len(self, raw: usize) -> usize {
        match self {
            Compression::None => raw,
            _ => raw + raw / 1000 + 64,
        }
    }
}

impl std::fmt::Display for Compression {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.write_str(self.name())
    }
}

/// Compress `raw` at `level` (1–9; 0 stores), never longer than [`Compression::worst_case_len`].
///
/// Level 1 (zlib-rs's quick strategy) codes every block with the fixed Huffman table, which grows
/// incompressible bytes by up to 12.5 % (about 5.5 % for random ones): a 970 KB binary record
/// would pass Firehose's 1,000 KiB record limit. Such output is made again at level 6, whose
/// stored-block fallback keeps the growth to a few bytes per block.
pub fn compress(kind: Compression, level: u8, raw: &[u8]) -> Vec<u8> {
    let out = compress_at(kind, level, raw);
    if out.len() > kind.worst_case_len(raw.len()) {
        return compress_at(kind, 6, raw);
    }
    out
}

fn compress_at(kind: Compression, level: u8, raw: &[u8]) -> Vec<u8> {
    let level = Level::new(u32::from(level.min(9)));
    let out = Vec::with_capacity(raw.len() / 3 + 64);
    // Writing into a Vec cannot fail.
    match kind {
        Compression::None => raw.to_vec(),
        Compression::Gzip => {
            let mut enc = GzEncoder::new(out, level);
            enc.write_all(raw).expect("in-memory gzip");
            enc.finish().expect("in-memory gzip")
        }
        Compression::Zlib => {
            let mut enc = ZlibEncoder::new(out, level);
            enc.write_all(raw).expect("in-memory zlib");
            enc.finish().expect("in-memory zlib")
        }
    }
}

/// Decompress, refusing to produce more than `limit` bytes (a zip bomb must not exhaust memory).
pub fn decompress(kind: Compression, bytes: &[u8], limit: usize) -> std::io::Result<Vec<u8>> {
    let mut out = Vec::new();
    let cap = limit as u64 + 1;
    match kind {
        Compression::None => out.extend_from_slice(bytes),
        Compression::Gzip => {
            GzDecoder::new(bytes).take(cap).read_to_end(&mut out)?;
        }
        Compression::Zlib => {
            ZlibDecoder::new(bytes).take(cap).read_to_end(&mut out)?;
        }
    }
    if out.len() > limit {
        return Err(std::io::Error::other(format!(
            "decompressed data exceeds {limit} bytes"
        )));
    }
    Ok(out)
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn random_bytes_never_grow_past_the_worst_case_at_any_level() {
        let mut rng = crate::rng::FastRng::new(7);
        let mut raw = vec![0u8; 200_000];
        rng.fill(&mut raw);
        for kind in [Compression::Gzip, Compression::Zlib] {
            for level in 0..=9 {
                let out = compress(kind, level, &raw);
                assert!(
                    out.len() <= kind.worst_case_len(raw.len()),
                    "{kind} level {level}: {} bytes",
                    out.len()
                );
                assert_eq!(decompress(kind, &out, 1 << 20).unwrap(), raw);
            }
        }
    }

    #[test]
    fn roundtrip() {
        let raw = b"hello hello hello hello".repeat(100);
        for kind in Compression::ALL {
            for level in [0, 1, 6, 9] {
                let c = compress(kind, level, &raw);
                assert!(c.len() <= kind.worst_case_len(raw.len()));
                assert_eq!(decompress(kind, &c, 1 << 20).unwrap(), raw);
            }
        }
    }

    #[test]
    fn bomb_is_refused() {
        let raw = vec![0u8; 1 << 20];
        let c = compress(Compression::Gzip, 9, &raw);
        assert!(decompress(Compression::Gzip, &c, 1000).is_err());
    }
}
