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
    /// What a CloudWatch Logs subscription sends: gzip'd DATA_MESSAGE and CONTROL_MESSAGE envelopes.
    Cwl,
    /// The same envelopes as Firehose delivers them with its CloudWatch Logs decompression on: plain JSON.
    CwlDecompressed,
    /// The log messages alone, as Firehose delivers them with message extraction on.
    CwlExtracted,
    /// Arbitrary bytes, mostly invalid UTF-8.
    Binary,
}

impl PayloadFamily {
    pub const ALL: [PayloadFamily; 10] = [
        PayloadFamily::Empty,
        PayloadFamily::Text,
        PayloadFamily::Json,
        PayloadFamily::Csv,
        PayloadFamily::Apache,
        PayloadFamily::Syslog,
        PayloadFamily::Cwl,
        PayloadFamily::CwlDecompressed,
        PayloadFamily::CwlExtracted,
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
            PayloadFamily::CwlDecompressed => "cwl-decompressed",
            PayloadFamily::CwlExtracted => "cwl-extracted",
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
            PayloadFamily::Json => 4,
            PayloadFamily::Csv => 2,
            PayloadFamily::Apache => 1,
            PayloadFamily::Syslog => 4,
            PayloadFamily::Cwl | PayloadFamily::CwlDecompressed => 2,
            PayloadFamily::CwlExtracted => 1,
            PayloadFamily::Binary => 1,
        }
    }

    /// The only compression a family can arrive with, when its producer decides: CloudWatch Logs
    /// always gzips, and Firehose's own decompression and extraction deliver plain bytes.
    pub fn fixed_compression(self) -> Option<Compression> {
        match self {
            PayloadFamily::Cwl => Some(Compression::Gzip),
            PayloadFamily::CwlDecompressed | PayloadFamily::CwlExtracted => Some(Compression::None),
            _ => None,
        }
    }

    /// Whether a record of this family may arrive with `compression`.
    pub fn allows(self, compression: Compression) -> bool {
        self.fixed_compression().is_none_or(|c| c == compression)
    }

    /// The most bytes the family writes for a requested size of 0: families made of whole lines or
    /// envelopes write at least one, whatever the size asked for.
    pub fn floor(self) -> usize {
        match self {
            PayloadFamily::Empty | PayloadFamily::Text | PayloadFamily::Binary => 0,
            PayloadFamily::Json => 2,
            PayloadFamily::Apache
            | PayloadFamily::Syslog
            | PayloadFamily::Csv
            | PayloadFamily::CwlExtracted => 512,
            PayloadFamily::Cwl | PayloadFamily::CwlDecompressed => 1024,
        }
    }

    /// A short human description of a variant, for reports ("text with multi-byte UTF-8").
    pub fn describe(self, variant: u8) -> String {
        let v = match (self, variant) {
            (PayloadFamily::Text, 1) => " with multi-byte UTF-8",
            (PayloadFamily::Text, 2) => " with control characters",
            (PayloadFamily::Json, 1) => " (nested, escapes, unicode, big numbers)",
            (PayloadFamily::Json, 2) => {
                " (producer quirks: lone surrogates, \\u0000, non-BMP, long strings, deep nesting)"
            }
            (PayloadFamily::Json, JSON_LONE_SURROGATE) => " with a lone surrogate escape",
            (PayloadFamily::Csv, 1) => " with quoted fields",
            (PayloadFamily::Syslog, 0) => " (RFC 3164)",
            (PayloadFamily::Syslog, 1) => " (RFC 5424)",
            (PayloadFamily::Syslog, 2) => " (RFC 3164 without <PRI>)",
            (PayloadFamily::Syslog, _) => " (RFC 5424 without <PRI>)",
            (PayloadFamily::Cwl | PayloadFamily::CwlDecompressed, CWL_CONTROL) => {
                " CONTROL_MESSAGE health check"
            }
            (PayloadFamily::Cwl | PayloadFamily::CwlDecompressed, _) => " DATA_MESSAGE envelope",
            (PayloadFamily::CwlExtracted, _) => " log messages",
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

/// Envelope variants of `cwl` and `cwl-decompressed`: a DATA_MESSAGE, or the CONTROL_MESSAGE health check.
pub const CWL_DATA: u8 = 0;
pub const CWL_CONTROL: u8 = 1;
/// The JSON variant whose first field holds a lone surrogate escape (`"\ud800"`), as JavaScript
/// producers write a string cut in the middle of a surrogate pair.
pub const JSON_LONE_SURROGATE: u8 = 3;

/// Append the uncompressed payload of `family`/`variant` for `seed`, about `size` bytes long, to `out`.
///
/// `empty` writes nothing; `text`, `json` and `binary` produce exactly `size` bytes (JSON at least
/// `{}`); the line families stop at the last whole line that fits (at least one line); CWL envelopes
/// hold whole log events and come out near `size`. Compression is the caller's: `cwl` comes out as
/// the JSON CloudWatch Logs gzips.
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
        PayloadFamily::Cwl | PayloadFamily::CwlDecompressed => {
            cwl::envelope(&mut rng, variant, seed, size, out)
        }
        PayloadFamily::CwlExtracted => cwl::extracted(&mut rng, size, out),
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

    /// serde_json refuses lone surrogate escapes, which JSON's grammar allows and producers write:
    /// swap the four the generator writes for a paired one before parsing.
    fn parseable(json: &[u8]) -> Vec<u8> {
        let mut s = String::from_utf8(json.to_vec()).expect("JSON is UTF-8");
        for lone in [r"\ud800", r"\udbff", r"\udc00", r"\udfff"] {
            s = s.replace(lone, r"\ud83d\udd25");
        }
        s.into_bytes()
    }

    #[test]
    fn json_is_valid_json_at_every_size() {
        for variant in 0..PayloadFamily::Json.variants() {
            for size in (0..400).chain([1000, 5000, 70_000, 400_000]) {
                let mut out = Vec::new();
                generate(PayloadFamily::Json, variant, size as u64, size, &mut out);
                let v: serde_json::Value =
                    serde_json::from_slice(&parseable(&out)).unwrap_or_else(|e| {
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
    fn json_quirks_are_what_producers_send() {
        let mut quirks = Vec::new();
        for seed in 0..40 {
            generate(PayloadFamily::Json, 2, seed, 20_000, &mut quirks);
        }
        let text = String::from_utf8(quirks).unwrap();
        for needle in [
            r"\ud800",
            r"\u0000",
            "🔥",
            r#""deep":{"d":["#,
            r#""blob":""#,
        ] {
            assert!(text.contains(needle), "{needle}");
        }
        // Every lone-surrogate record holds one, at any size that fits the field.
        for size in [40usize, 64, 1000, 100_000] {
            let mut out = Vec::new();
            generate(PayloadFamily::Json, JSON_LONE_SURROGATE, 7, size, &mut out);
            assert_eq!(out.len(), size);
            assert!(
                String::from_utf8(out).unwrap().contains(r"\ud800"),
                "{size}"
            );
        }
    }

    #[test]
    fn syslog_comes_with_and_without_pri() {
        for variant in 0..PayloadFamily::Syslog.variants() {
            let mut out = Vec::new();
            generate(PayloadFamily::Syslog, variant, 1, 2_000, &mut out);
            let with_pri = out.iter().filter(|b| **b == b'\n').count();
            let pri = out
                .split(|b| *b == b'\n')
                .filter(|l| l.starts_with(b"<"))
                .count();
            if variant < 2 {
                assert_eq!(pri, with_pri, "variant {variant}");
            } else {
                assert_eq!(pri, 0, "variant {variant}");
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
