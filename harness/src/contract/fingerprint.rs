//! Fingerprints of function errors: the same bug gives the same fingerprint, a different bug a
//! different one.
//!
//! An error's type alone is too coarse — Python's `JSONDecodeError: Extra data` and
//! `JSONDecodeError: Expecting value` are two bugs, and shrinking one must not slide into the
//! other — while the raw message is too fine: it names record ids, offsets and values that change
//! with every batch. So the fingerprint is the type plus the message with numbers, ids and quoted
//! values masked.

/// Bumped whenever fingerprints change meaning; `case.json` records it so saved regressions made
/// under an older version still match (see [`matches_saved`]).
pub const FINGERPRINT_VERSION: u32 = 2;

/// How much of the masked message takes part: enough to tell bugs apart, not a whole traceback.
const MAX_MASKED_CHARS: usize = 160;

/// `error:<type>:<masked message>`, or `error:<type>` when there is no message.
pub fn function_error(kind: &str, message: Option<&str>) -> String {
    match message.map(mask).filter(|m| !m.is_empty()) {
        Some(m) => format!("error:{kind}:{m}"),
        None => format!("error:{kind}"),
    }
}

/// Does a fingerprint saved under `saved_version` name the same failure as `now`?
///
/// Version 1 fingerprinted a function error by its type alone (`error:ValueError`): such a case
/// still matches any error of that type.
pub fn matches_saved(saved: &str, saved_version: u32, now: &str) -> bool {
    if saved == now {
        return true;
    }
    saved_version < 2
        && saved.starts_with("error:")
        && now
            .strip_prefix(saved)
            .is_some_and(|rest| rest.starts_with(':'))
}

/// The message with what varies from batch to batch replaced: quoted values by `'…'`, runs of
/// digits (and the hex ids and UUIDs they sit in) by `#`; white space folded; cut to
/// [`MAX_MASKED_CHARS`].
pub fn mask(message: &str) -> String {
    let mut out = String::with_capacity(message.len().min(MAX_MASKED_CHARS + 8));
    let mut chars = message.chars().peekable();
    let mut last_space = false;
    while let Some(c) = chars.next() {
        if out.chars().count() >= MAX_MASKED_CHARS {
            break;
        }
        match c {
            '"' | '\'' | '`' => {
                // A quoted value: skip to the closing quote on the same line; an unmatched quote is
                // kept as it is (an apostrophe in "can't").
                let mut inner = String::new();
                let mut closed = false;
                let mut line_ended = false;
                for d in chars.by_ref() {
                    if d == c {
                        closed = true;
                        break;
                    }
                    if d == '\n' {
                        line_ended = true;
                        break;
                    }
                    inner.push(d);
                }
                out.push(c);
                if closed {
                    out.push('…');
                    out.push(c);
                } else {
                    out.push_str(&mask(&inner));
                }
                last_space = line_ended;
                if line_ended {
                    out.push(' ');
                }
            }
            c if c.is_ascii_alphanumeric() || c == '_' || c == '-' => {
                let mut word = String::from(c);
                while let Some(&d) = chars.peek() {
                    if d.is_ascii_alphanumeric() || d == '_' || d == '-' {
                        word.push(d);
                        chars.next();
                    } else {
                        break;
                    }
                }
                out.push_str(&mask_word(&word));
                last_space = false;
            }
            c if c.is_whitespace() => {
                if !last_space && !out.is_empty() {
                    out.push(' ');
                }
                last_space = true;
            }
            c => {
                out.push(c);
                last_space = false;
            }
        }
    }
    out.trim_end().to_string()
}

/// A word with a digit in it is an id, a number or an offset: `#`. Words are kept otherwise, so
/// `line 1 column 5` and `line 9 column 12` agree while `Extra data` and `Expecting value` differ.
fn mask_word(word: &str) -> String {
    if word.bytes().any(|b| b.is_ascii_digit()) {
        "#".to_string()
    } else {
        word.to_string()
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn numbers_ids_and_quoted_values_are_masked() {
        assert_eq!(
            mask("Extra data: line 1 column 5 (char 4)"),
            "Extra data: line # column # (char #)"
        );
        assert_eq!(
            mask("record 'r17' has bad field \"amount\" = 12.5"),
            "record '…' has bad field \"…\" = #.#"
        );
        assert_eq!(
            mask("no such id 49590338271490256608559692538361571095921575989136588898"),
            "no such id #"
        );
        assert_eq!(
            mask("request 0c156959-f9a0-4356-b90d-05b113486ca7 failed"),
            "request # failed"
        );
        assert_eq!(mask("can't   decode\nbyte 0x8b"), "can't decode byte #");
    }

    #[test]
    fn two_bugs_of_one_type_differ_one_bug_on_two_batches_agrees() {
        let a = function_error(
            "JSONDecodeError",
            Some("Extra data: line 1 column 5 (char 4)"),
        );
        let b = function_error(
            "JSONDecodeError",
            Some("Expecting value: line 1 column 1 (char 0)"),
        );
        let a2 = function_error(
            "JSONDecodeError",
            Some("Extra data: line 3 column 18 (char 411)"),
        );
        assert_ne!(a, b);
        assert_eq!(a, a2);
        assert_eq!(function_error("Unhandled", None), "error:Unhandled");
    }

    #[test]
    fn version_one_cases_match_on_the_error_type() {
        let now = function_error("ValueError", Some("bad record 17"));
        assert!(matches_saved("error:ValueError", 1, &now));
        assert!(!matches_saved("error:ValueError", 2, &now));
        assert!(!matches_saved("error:Value", 1, &now));
        assert!(!matches_saved("error:TypeError", 1, &now));
        assert!(matches_saved("missing", 1, "missing"));
    }

    #[test]
    fn long_messages_are_cut() {
        let long = "word ".repeat(200);
        assert!(mask(&long).chars().count() <= MAX_MASKED_CHARS);
    }
}
