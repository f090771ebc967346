//! Text a target sent, made safe to show: in a terminal, in Markdown, in XML.
//!
//! A transformer's error message or body can hold ESC sequences (recolour or clear a CI log), a
//! bare CR (overwrite the line a reader trusts), BEL, NUL or U+FFFF (which XML 1.0 forbids). Such
//! characters are shown escaped (`\u{1b}`), so the reader sees that they were there.

use std::borrow::Cow;

/// `s` with every control character but newline and tab, and the non-characters U+FFFE/U+FFFF,
/// written as `\u{..}`.
pub fn visible(s: &str) -> Cow<'_, str> {
    if !s.chars().any(hidden) {
        return Cow::Borrowed(s);
    }
    let mut out = String::with_capacity(s.len() + 8);
    for c in s.chars() {
        if hidden(c) {
            out.push_str(&format!("\\u{{{:x}}}", c as u32));
        } else {
            out.push(c);
        }
    }
    Cow::Owned(out)
}

fn hidden(c: char) -> bool {
    (c.is_control() && c != '\n' && c != '\t') || c == '\u{fffe}' || c == '\u{ffff}'
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn controls_are_shown_escaped_text_is_kept() {
        assert_eq!(visible("plain\ttext\nok"), "plain\ttext\nok");
        assert_eq!(
            visible("red \u{1b}[31m\r\u{7}\u{0}\u{9b}\u{ffff}"),
            "red \\u{1b}[31m\\u{d}\\u{7}\\u{0}\\u{9b}\\u{ffff}"
        );
        assert_eq!(visible("日本語 😀"), "日本語 😀");
    }
}
