//! Payload content: the bytes a producer puts into one record, by family, then compressed.
//!
//! Every family writes a *stream*: the content for size `n` is, as far as the format allows, the prefix
//! of the content for any larger size with the same seed. That is what lets the shrinker bisect a
//! record's size and land within a few bytes of the size where a transformer starts to fail.

mod compression;
mod cwl;
mod lines;
mod text;

use std::fmt;

pub use compression::{Compression, compress, decompress};
pub use cwl::{CONTROL_MESSAGE_TEXT, CwlEnvelopeError, check_envelope};

use crate::rng::FastRng;

/// The kinds of producer payload the generators know (`--payload`).
#[derive(Debug, Clone, Copy, PartialEq, Eq, Hash, PartialOrd, Ord)]
pub enum PayloadFamily {
    /// A zero-byte record.
    Empty,
    /// Lines of words; variants add multi-byte UTF-8 and control characters.
    Text,
    /// One JSON object; variants add nesting, escapes, unicode and big numbers.
    Json,
    /// Comma-separated rows with a header; quoted fields with commas and quotes.
    Csv,
    /// Apache combined log format lines.
    Apache,
    /// Syslog lines, RFC 3164 and RFC 5424.
    Syslog,
    /// CloudWatch Logs subscription envelopes (DATA_MESSAGE, CONTROL_MESSAGE) or extracted messages.
    Cwl,
    /// Arbitrary bytes, mostly invalid UTF-8.
    Binary,
}

impl PayloadFamily {
    pub const ALL: [PayloadFamily; 8] = [
        PayloadFamily::Empty,
        PayloadFamily::Text,
        PayloadFamily::Json,
        PayloadFamily::Csv,
        PayloadFamily::Apache,
        PayloadFamily::Syslog,
        PayloadFamily::Cwl,
        PayloadFamily::Binary,
    ];

    pub fn name(self) -> &'static str {
        match self {
            PayloadFamily::Empty => "empty",
            PayloadFamily::Text => "text",
            PayloadFamily::Json => "json",
            PayloadFamily::Csv => "csv",
            PayloadFamily::Apache => "apache",
            PayloadFamily::Syslog => "syslog",
            PayloadFamily::Cwl => "cwl",
            PayloadFamily::Binary => "binary",
        }
    }

    pub fn parse(s: &str) -> Option<PayloadFamily> {
        PayloadFamily::ALL.into_iter().find(|f| f.name() == s)
    }

    /// How many content variants the family has; variant 0 is always the plainest (ASCII, flat).
    pub fn variants(self) -> u8 {
        match self {
            PayloadFamily::Empty => 1,
            PayloadFamily::Text => 3,
            PayloadFamily::Json => 2,
            PayloadFamily::Csv => 2,
            PayloadFamily::Apache => 1,
            PayloadFamily::Syslog => 2,
            PayloadFamily::Cwl => CWL_VARIANTS,
            PayloadFamily::Binary => 1,
        }
    }

    /// A short human description of a variant, for reports ("text with multi-byte UTF-8").
    pub fn describe(self, variant: u8) -> String {
        let v = match (self, variant) {
            (PayloadFamily::Text, 1) => " with multi-byte UTF-8",
            (PayloadFamily::Text, 2) => " with control characters",
            (PayloadFamily::Json, 1) => " (nested, escapes, unicode, big numbers)",
            (PayloadFamily::Csv, 1) => " with quoted fields",
            (PayloadFamily::Syslog, 0) => " (RFC 3164)",
            (PayloadFamily::Syslog, _) => " (RFC 5424)",
            (PayloadFamily::Cwl, CWL_DATA) => " DATA_MESSAGE envelope",
            (PayloadFamily::Cwl, CWL_CONTROL) => " CONTROL_MESSAGE health check",
            (PayloadFamily::Cwl, _) => " extracted messages",
            _ => "",
        };
        format!("{}{v}", self.name())
    }
}

impl fmt::Display for PayloadFamily {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.write_str(self.name())
    }
}

/// CWL variants: a DATA_MESSAGE envelope, the CONTROL_MESSAGE health check, or the `message` fields
/// alone as Firehose's message extraction delivers them.
pub const CWL_DATA: u8 = 0;
pub const CWL_CONTROL: u8 = 1;
pub const CWL_EXTRACTED: u8 = 2;
const CWL_VARIANTS: u8 = 3;

/// Append the uncompressed payload of `family`/`variant` for `seed`, about `size` bytes long, to `out`.
///
/// `empty`, `text`, `json` and `binary` produce exactly `size` bytes (JSON at least `{}`); the line
/// families stop at the last whole line that fits (at least one line); CWL envelopes hold whole log
/// events and come out near `size`.
pub fn generate(family: PayloadFamily, variant: u8, seed: u64, size: usize, out: &mut Vec<u8>) {
    let mut rng = FastRng::new(seed);
    out.reserve(size + 64);
    match family {
        PayloadFamily::Empty => {}
        PayloadFamily::Text => text::text(&mut rng, variant, size, out),
        PayloadFamily::Json => text::json_object(&mut rng, variant, size, out),
        PayloadFamily::Binary => {
            let start = out.len();
            out.resize(start + size, 0);
            rng.fill(&mut out[start..]);
        }
        PayloadFamily::Csv => lines::csv(&mut rng, variant, size, out),
        PayloadFamily::Apache => lines::apache(&mut rng, size, out),
        PayloadFamily::Syslog => lines::syslog(&mut rng, variant, size, out),
        PayloadFamily::Cwl => cwl::cwl(&mut rng, variant, seed, size, out),
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn exact_families_hit_the_size() {
        for family in [
            PayloadFamily::Text,
            PayloadFamily::Json,
            PayloadFamily::Binary,
        ] {
            for variant in 0..family.variants() {
                for size in [0usize, 1, 2, 3, 17, 100, 4096, 65_537] {
                    let mut out = Vec::new();
                    generate(family, variant, 42, size, &mut out);
                    let expected = if family == PayloadFamily::Json {
                        size.max(2)
                    } else {
                        size
                    };
                    assert_eq!(out.len(), expected, "{family} v{variant} size {size}");
                }
            }
        }
    }

    #[test]
    fn json_is_valid_json_at_every_size() {
        for variant in 0..2 {
            for size in (0..400).chain([1000, 5000, 70_000]) {
                let mut out = Vec::new();
                generate(PayloadFamily::Json, variant, size as u64, size, &mut out);
                let v: serde_json::Value = serde_json::from_slice(&out).unwrap_or_else(|e| {
                    panic!(
                        "v{variant} size {size}: {e}: {}",
                        String::from_utf8_lossy(&out)
                    )
                });
                assert!(v.is_object());
            }
        }
    }

    #[test]
    fn text_variants_are_utf8_and_ascii_variant_is_ascii() {
        for size in [10usize, 1000, 50_000] {
            let mut ascii = Vec::new();
            generate(PayloadFamily::Text, 0, 9, size, &mut ascii);
            assert!(ascii.is_ascii());
            let mut uni = Vec::new();
            generate(PayloadFamily::Text, 1, 9, size, &mut uni);
            assert!(std::str::from_utf8(&uni).is_ok());
            if size >= 1000 {
                assert!(!uni.is_ascii());
            }
        }
    }

    #[test]
    fn shorter_text_is_a_prefix() {
        let mut long = Vec::new();
        generate(PayloadFamily::Text, 1, 5, 10_000, &mut long);
        let mut short = Vec::new();
        generate(PayloadFamily::Text, 1, 5, 5_000, &mut short);
        // All but the padding tail is shared.
        let shared = short.iter().zip(&long).take_while(|(a, b)| a == b).count();
        assert!(
            shared + 64 >= short.len(),
            "shared {shared} of {}",
            short.len()
        );
    }

    #[test]
    fn line_families_are_whole_lines() {
        for family in [
            PayloadFamily::Apache,
            PayloadFamily::Syslog,
            PayloadFamily::Csv,
        ] {
            for variant in 0..family.variants() {
                let mut out = Vec::new();
                generate(family, variant, 3, 5_000, &mut out);
                assert!(
                    out.len() <= 5_000 && out.len() > 2_000,
                    "{family}: {}",
                    out.len()
                );
                assert!(out.ends_with(b"\n"));
                assert!(std::str::from_utf8(&out).is_ok());
            }
        }
    }
}
