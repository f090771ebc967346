//! `--s3-prefix EXPR`: the S3 prefix a delivered record would be filed under, in Firehose's own
//! syntax (`data/!{partitionKeyFromLambda:customer}/!{timestamp:yyyy/MM/dd}/`).
//!
//! Two namespaces are modelled: `partitionKeyFromLambda` (the keys a transformer returns in
//! `metadata.partitionKeys`, dynamic partitioning) and `timestamp` (the batch's oldest arrival
//! time, UTC). `partitionKeyFromQuery` needs Firehose's JQ engine and is refused rather than faked.

use std::time::{Duration, SystemTime};

use serde_json::Value;

/// Why an `--s3-prefix` expression cannot be used.
#[derive(Debug, Clone, PartialEq, Eq, thiserror::Error)]
#[non_exhaustive]
pub enum PrefixError {
    #[error("`!{{` at byte {0} is never closed with `}}`")]
    Unclosed(usize),
    #[error("`!{{{0}}}` is not NAMESPACE:VALUE")]
    NoNamespace(String),
    #[error("the namespace `{0}` is not modelled")]
    UnknownNamespace(String),
    #[error("`!{{partitionKeyFromLambda:}}` needs a key name")]
    EmptyKey,
    #[error("`!{{timestamp:{0}}}`: pattern letter `{1}` is not supported")]
    TimestampPattern(String, char),
}

impl PrefixError {
    /// What to do about it.
    pub fn hint(&self) -> &'static str {
        match self {
            PrefixError::UnknownNamespace(_) => {
                "use !{partitionKeyFromLambda:KEY} or !{timestamp:yyyy/MM/dd/HH}; partitionKeyFromQuery runs JQ inside Firehose and is not modelled"
            }
            PrefixError::TimestampPattern(..) => {
                "timestamp patterns may use yyyy, yy, MM, dd, HH, mm and ss"
            }
            _ => "write expressions as !{partitionKeyFromLambda:KEY}",
        }
    }
}

#[derive(Debug, Clone, PartialEq, Eq)]
enum Part {
    Literal(String),
    LambdaKey(String),
    Timestamp(String),
}

/// A parsed `--s3-prefix`.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct S3Prefix {
    text: String,
    parts: Vec<Part>,
}

/// Why a record cannot be filed under the prefix: Firehose sends it to the error output with
/// `DynamicPartitioning.MetadataExtractionFailed`.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct MissingKey(pub String);

impl S3Prefix {
    pub fn parse(text: &str) -> Result<S3Prefix, PrefixError> {
        let mut parts = Vec::new();
        let mut rest = text;
        let mut offset = 0;
        while let Some(start) = rest.find("!{") {
            if start > 0 {
                parts.push(Part::Literal(rest[..start].to_string()));
            }
            let after = &rest[start + 2..];
            let end = after
                .find('}')
                .ok_or(PrefixError::Unclosed(offset + start))?;
            let expr = &after[..end];
            let (ns, value) = expr
                .split_once(':')
                .ok_or_else(|| PrefixError::NoNamespace(expr.to_string()))?;
            parts.push(match ns {
                "partitionKeyFromLambda" if value.is_empty() => return Err(PrefixError::EmptyKey),
                "partitionKeyFromLambda" => Part::LambdaKey(value.to_string()),
                "timestamp" => {
                    if let Some(c) = unsupported_letter(value) {
                        return Err(PrefixError::TimestampPattern(value.to_string(), c));
                    }
                    Part::Timestamp(value.to_string())
                }
                other => return Err(PrefixError::UnknownNamespace(other.to_string())),
            });
            let consumed = start + 2 + end + 1;
            offset += consumed;
            rest = &rest[consumed..];
        }
        if !rest.is_empty() {
            parts.push(Part::Literal(rest.to_string()));
        }
        Ok(S3Prefix {
            text: text.to_string(),
            parts,
        })
    }

    /// The expression as given.
    pub fn as_str(&self) -> &str {
        &self.text
    }

    /// True when records need `metadata.partitionKeys` (dynamic partitioning is on).
    pub fn uses_lambda_keys(&self) -> bool {
        self.parts.iter().any(|p| matches!(p, Part::LambdaKey(_)))
    }

    /// The prefix of one record: `metadata` is what the transformer answered for it, `batch_ms` the
    /// batch's oldest arrival time.
    pub fn evaluate(&self, metadata: Option<&Value>, batch_ms: u64) -> Result<String, MissingKey> {
        let mut out = String::new();
        for part in &self.parts {
            match part {
                Part::Literal(s) => out.push_str(s),
                Part::LambdaKey(key) => {
                    let value = metadata
                        .and_then(|m| m.get("partitionKeys"))
                        .and_then(|k| k.get(key))
                        .and_then(Value::as_str)
                        .filter(|s| !s.is_empty())
                        .ok_or_else(|| MissingKey(key.clone()))?;
                    out.push_str(value);
                }
                Part::Timestamp(pattern) => out.push_str(&format_utc(pattern, batch_ms)),
            }
        }
        Ok(out)
    }
}

const TOKENS: [&str; 7] = ["yyyy", "yy", "MM", "dd", "HH", "mm", "ss"];

fn unsupported_letter(pattern: &str) -> Option<char> {
    let mut rest = pattern;
    while let Some(c) = rest.chars().next() {
        if let Some(t) = TOKENS.iter().find(|t| rest.starts_with(**t)) {
            rest = &rest[t.len()..];
        } else if c.is_ascii_alphabetic() {
            return Some(c);
        } else {
            rest = &rest[c.len_utf8()..];
        }
    }
    None
}

/// `pattern` (Java DateTimeFormatter letters, the subset in [`TOKENS`]) at `ms` since the epoch, UTC.
fn format_utc(pattern: &str, ms: u64) -> String {
    // "2026-11-30T09:43:04Z": humantime writes the fields, the pattern picks them.
    let t = humantime::format_rfc3339_seconds(SystemTime::UNIX_EPOCH + Duration::from_millis(ms))
        .to_string();
    let field = |token: &str| -> &str {
        match token {
            "yyyy" => &t[0..4],
            "yy" => &t[2..4],
            "MM" => &t[5..7],
            "dd" => &t[8..10],
            "HH" => &t[11..13],
            "mm" => &t[14..16],
            _ => &t[17..19],
        }
    };
    let mut out = String::new();
    let mut rest = pattern;
    while let Some(c) = rest.chars().next() {
        if let Some(tok) = TOKENS.iter().find(|tok| rest.starts_with(**tok)) {
            out.push_str(field(tok));
            rest = &rest[tok.len()..];
        } else {
            out.push(c);
            rest = &rest[c.len_utf8()..];
        }
    }
    out
}

#[cfg(test)]
mod tests {
    use super::*;
    use serde_json::json;

    #[test]
    fn lambda_keys_and_timestamps() {
        let p =
            S3Prefix::parse("data/!{partitionKeyFromLambda:customer}/!{timestamp:yyyy/MM/dd/HH}/")
                .unwrap();
        assert!(p.uses_lambda_keys());
        let meta = json!({"partitionKeys": {"customer": "c-7"}});
        // 2026-11-30T09:43:04Z
        let at = 1_796_031_784_000;
        assert_eq!(
            p.evaluate(Some(&meta), at).unwrap(),
            "data/c-7/2026/11/30/09/"
        );
        assert_eq!(
            p.evaluate(Some(&json!({"partitionKeys": {}})), at),
            Err(MissingKey("customer".into()))
        );
        assert_eq!(
            p.evaluate(Some(&json!({"partitionKeys": {"customer": ""}})), at),
            Err(MissingKey("customer".into()))
        );
        assert_eq!(p.evaluate(None, at), Err(MissingKey("customer".into())));
    }

    #[test]
    fn bad_expressions_say_why() {
        assert_eq!(S3Prefix::parse("a/!{x"), Err(PrefixError::Unclosed(2)));
        assert!(matches!(
            S3Prefix::parse("!{partitionKeyFromQuery:id}"),
            Err(PrefixError::UnknownNamespace(n)) if n == "partitionKeyFromQuery"
        ));
        assert_eq!(
            S3Prefix::parse("!{partitionKeyFromLambda:}"),
            Err(PrefixError::EmptyKey)
        );
        assert!(matches!(
            S3Prefix::parse("!{timestamp:yyyy-QQ}"),
            Err(PrefixError::TimestampPattern(_, 'Q'))
        ));
        assert!(!S3Prefix::parse("plain/").unwrap().uses_lambda_keys());
    }
}
