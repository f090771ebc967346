//! Free text and JSON objects, both exactly `size` bytes.

use crate::rng::FastRng;

const WORDS: &[&str] = &[
    "the",
    "quick",
    "brown",
    "fox",
    "jumps",
    "over",
    "lazy",
    "dog",
    "error",
    "warning",
    "request",
    "user",
    "session",
    "latency",
    "timeout",
    "retry",
    "connection",
    "payload",
    "record",
    "stream",
    "shard",
    "delivery",
    "bucket",
    "object",
    "failed",
    "succeeded",
    "started",
    "stopped",
    "GET",
    "POST",
    "200",
    "404",
    "500",
    "id=42",
    "status=ok",
    "ms",
    "bytes",
    "10.0.0.1",
    "us-east-1",
    "firehose",
    "lambda",
    "invoke",
    "transform",
    "batch",
    "buffer",
    "flush",
    "commit",
    "queue",
];

const UNICODE_WORDS: &[&str] = &[
    "café",
    "naïve",
    "Zürich",
    "日本語",
    "데이터",
    "данные",
    "δεδομένα",
    "🔥",
    "🚒💨",
    "résumé",
    "€42",
    "ß",
    "ﬁle",
    "e\u{301}",
    "مرحبا",
    "שלום",
    "\u{200b}",
    "𝔘𝔫𝔦𝔠𝔬𝔡𝔢",
];

const CONTROL: &[&str] = &[
    "\t",
    "\r\n",
    "\u{1}",
    "\u{7f}",
    "\u{1b}[31m",
    "\u{0}",
    "\u{c}",
];

const PAD: &[u8] = b"abcdefghijklmnopqrstuvwxyz0123456789";

/// Lines of words, exactly `size` bytes; variant 1 mixes in multi-byte UTF-8, variant 2 control bytes.
pub(super) fn text(rng: &mut FastRng, variant: u8, size: usize, out: &mut Vec<u8>) {
    let end = out.len() + size;
    // Drawn first so that a shorter record stays a prefix of a longer one.
    let trailing_newline = rng.chance(1, 2);
    let mut line = 0usize;
    loop {
        let word = match variant {
            1 if rng.chance(1, 5) => *rng.pick(UNICODE_WORDS),
            2 if rng.chance(1, 8) => *rng.pick(CONTROL),
            _ => *rng.pick(WORDS),
        };
        let sep: u8 = if line > 60 && rng.chance(1, 4) {
            b'\n'
        } else {
            b' '
        };
        if out.len() + word.len() + 1 > end {
            break;
        }
        out.extend_from_slice(word.as_bytes());
        out.push(sep);
        line = if sep == b'\n' {
            0
        } else {
            line + word.len() + 1
        };
    }
    pad(out, end, trailing_newline);
}

fn pad(out: &mut Vec<u8>, end: usize, trailing_newline: bool) {
    let remaining = end - out.len();
    if remaining == 0 {
        return;
    }
    let body = if trailing_newline {
        remaining - 1
    } else {
        remaining
    };
    out.extend(PAD.iter().cycle().take(body));
    if trailing_newline {
        out.push(b'\n');
    }
}

const KEYS: &[&str] = &[
    "id",
    "user",
    "event",
    "level",
    "message",
    "ts",
    "count",
    "ok",
    "latency_ms",
    "path",
    "region",
    "tags",
    "amount",
    "session_id",
    "source_ip",
    "status",
];

/// The first field of [`super::JSON_LONE_SURROGATE`] records.
const LONE_SURROGATE_FIELD: &[u8] = br#""text":"cut here \ud800""#;

/// One JSON object of exactly `size` bytes (at least `{}`); variant 1 nests and escapes; variant 2
/// mixes in what real producers emit and strict parsers choke on (see [`quirk_field`]); variant 3 is
/// variant 2 opening with a lone surrogate escape.
pub(super) fn json_object(rng: &mut FastRng, variant: u8, size: usize, out: &mut Vec<u8>) {
    let size = size.max(2);
    let end = out.len() + size;
    out.push(b'{');
    let mut field = Vec::with_capacity(256);
    let mut first = true;
    if variant == super::JSON_LONE_SURROGATE && out.len() + LONE_SURROGATE_FIELD.len() < end {
        out.extend_from_slice(LONE_SURROGATE_FIELD);
        first = false;
    }
    loop {
        field.clear();
        if variant >= 2 && rng.chance(1, 5) {
            quirk_field(rng, end - out.len(), &mut field);
        } else {
            let key = *rng.pick(KEYS);
            json_string(rng, variant.min(1), key, &mut field);
            field.push(b':');
            json_value(rng, variant.min(1), 0, &mut field);
        }
        let comma = usize::from(!first);
        // Leave room for the closing brace.
        if out.len() + comma + field.len() + 1 > end {
            break;
        }
        if !first {
            out.push(b',');
        }
        out.extend_from_slice(&field);
        first = false;
    }
    // Fill the rest: a padding string field if it fits, else insignificant whitespace.
    let remaining = end - out.len() - 1;
    let overhead = usize::from(!first) + r#""_":"""#.len();
    if remaining > overhead {
        if !first {
            out.push(b',');
        }
        out.extend_from_slice(br#""_":""#);
        out.extend(PAD.iter().cycle().take(remaining - overhead));
        out.push(b'"');
    } else {
        out.extend(std::iter::repeat_n(b' ', remaining));
    }
    out.push(b'}');
}

/// One `"key":value` field of what real producers put in JSON and strict parsers reject or mangle:
/// lone surrogate escapes (JavaScript's `JSON.stringify` of a string cut mid-pair), `\u0000`,
/// characters outside the Basic Multilingual Plane (raw and as escaped pairs), long strings (up to
/// half of the `room` left) and deep nesting (up to 64 levels, within every common parser's limit).
fn quirk_field(rng: &mut FastRng, room: usize, out: &mut Vec<u8>) {
    match rng.below(5) {
        0 => {
            const LONE: &[&str] = &[r"\ud800", r"\udbff", r"\udc00", r"\udfff"];
            out.extend_from_slice(br#""note":"before "#);
            out.extend_from_slice(rng.pick::<&str>(LONE).as_bytes());
            out.extend_from_slice(br#" after""#);
        }
        1 => out.extend_from_slice(br#""raw":"nul\u0000byte""#),
        2 => {
            const WIDE: &[&str] = &["🔥", "𝄞", "😀", r"\ud83d\udd25", "🇺🇳", "𠜎"];
            out.extend_from_slice(br#""emoji":""#);
            for _ in 0..rng.range(1, 4) {
                out.extend_from_slice(rng.pick::<&str>(WIDE).as_bytes());
            }
            out.push(b'"');
        }
        3 => {
            let len = (rng.range(1_000, 200_000) as usize).min(room / 2);
            out.extend_from_slice(br#""blob":""#);
            while out.len() < len {
                out.extend_from_slice(rng.pick::<&str>(WORDS).as_bytes());
                out.push(b' ');
            }
            out.push(b'"');
        }
        _ => {
            let depth = rng.range(16, 64) as usize;
            out.extend_from_slice(br#""deep":"#);
            for level in 0..depth {
                out.extend_from_slice(if level % 2 == 0 { br#"{"d":"# } else { b"[" });
            }
            out.extend_from_slice(b"null");
            for level in (0..depth).rev() {
                out.push(if level % 2 == 0 { b'}' } else { b']' });
            }
        }
    }
}

fn json_value(rng: &mut FastRng, variant: u8, depth: u8, out: &mut Vec<u8>) {
    let kinds = if variant == 0 || depth >= 3 { 5 } else { 8 };
    match rng.below(kinds) {
        0 | 1 => {
            // Words are plain ASCII: written straight into the output, no escaping, no allocation.
            out.push(b'"');
            for i in 0..rng.range(1, 6) {
                if i > 0 {
                    out.push(b' ');
                }
                let word: &str = rng.pick::<&str>(WORDS);
                out.extend_from_slice(word.as_bytes());
            }
            spice(rng, variant, out);
            out.push(b'"');
        }
        2 => out.extend_from_slice(itoa::Buffer::new().format(rng.below(1_000_000)).as_bytes()),
        3 => out.extend_from_slice(if rng.chance(1, 2) { b"true" } else { b"false" }),
        4 => {
            let cents = rng.below(100_000);
            out.extend_from_slice(itoa::Buffer::new().format(cents / 100).as_bytes());
            out.push(b'.');
            out.push(b'0' + (cents / 10 % 10) as u8);
            out.push(b'0' + (cents % 10) as u8);
        }
        5 => {
            const BIG: &[&str] = &[
                "12345678901234567890123",
                "9007199254740993",
                "-9223372036854775809",
                "1e308",
                "-0.0",
                "2.5E-324",
                "null",
            ];
            let big: &str = rng.pick::<&str>(BIG);
            out.extend_from_slice(big.as_bytes());
        }
        6 => {
            out.push(b'[');
            for i in 0..rng.range(0, 3) {
                if i > 0 {
                    out.push(b',');
                }
                json_value(rng, variant, depth + 1, out);
            }
            out.push(b']');
        }
        _ => {
            out.push(b'{');
            for i in 0..rng.range(0, 3) {
                if i > 0 {
                    out.push(b',');
                }
                let key = *rng.pick(KEYS);
                json_string(rng, variant, key, out);
                out.push(b':');
                json_value(rng, variant, depth + 1, out);
            }
            out.push(b'}');
        }
    }
}

/// Variant 1 sometimes ends a string with an escape or raw unicode.
fn spice(rng: &mut FastRng, variant: u8, out: &mut Vec<u8>) {
    if variant > 0 && rng.chance(1, 3) {
        const SPICE: &[&str] = &[
            r#"\""#,
            r"\\",
            r"\n",
            r"\t",
            r"\u00e9",
            r"\ud83d\ude00",
            "é",
            "日本",
            r"\/",
            r"\u0000",
        ];
        let s: &str = rng.pick::<&str>(SPICE);
        out.extend_from_slice(s.as_bytes());
    }
}

/// A JSON string literal of a plain ASCII key; variant 1 adds escapes and raw and escaped unicode.
fn json_string(rng: &mut FastRng, variant: u8, s: &str, out: &mut Vec<u8>) {
    out.push(b'"');
    out.extend_from_slice(s.as_bytes());
    spice(rng, variant, out);
    out.push(b'"');
}
