//! Parsing `--target` strings. Unknown schemes are a usage error (exit 2) with the list of known ones.

use super::builtin::BuiltinKind;
use crate::emulator::CommandLine;

/// A parsed `--target`.
#[derive(Debug, Clone, PartialEq, Eq)]
pub enum TargetSpec {
    Builtin(BuiltinKind),
    /// `http://…` or `https://…`: the URL as given.
    Http(String),
    /// `invoke+http://HOST:PORT[/FUNCTION]`: base `http://HOST:PORT`, function name (default
    /// `function`, RIE's only name).
    InvokeHttp {
        base: String,
        function: String,
    },
    /// `exec:COMMAND`: a Lambda function run against the embedded Runtime API.
    Exec(CommandLine),
    /// `stdio:COMMAND`: one process per invocation.
    Stdio(CommandLine),
    /// `image:REF`: a Lambda container image started with testcontainers.
    Image(super::image::ImageRef),
}

/// Options every networked or process target may use.
#[derive(Debug, Clone, Default)]
pub struct TargetOptions {
    /// Extra request headers (`--header 'K: V'`), for auth tokens and the like.
    pub headers: Vec<(String, String)>,
    /// Environment added to or overriding a started function's (`--env K=V`).
    pub env: Vec<(String, String)>,
    /// How many instances of a started function may run at once (`--instances`); `None` lets the
    /// command choose (1 for `check`, the in-flight cap for `load`).
    pub instances: Option<usize>,
    /// `--timeout`, where a target hands it on to the function (`image:` sets
    /// `AWS_LAMBDA_FUNCTION_TIMEOUT` from it).
    pub timeout: Option<std::time::Duration>,
}

pub const SCHEMES: &str = "builtin:NAME, http://, https://, invoke+http://HOST:PORT[/FUNCTION], exec:COMMAND, stdio:COMMAND, image:REF";

impl TargetSpec {
    pub fn parse(s: &str) -> Result<TargetSpec, String> {
        if let Some(name) = s.strip_prefix("builtin:") {
            return BuiltinKind::parse(name)
                .map(TargetSpec::Builtin)
                .ok_or_else(|| {
                    format!(
                        "unknown builtin transformer `{name}`; built in: {}",
                        BuiltinKind::ALL.map(|k| k.name()).join(", ")
                    )
                });
        }
        if s.starts_with("http://") || s.starts_with("https://") {
            let url =
                reqwest::Url::parse(s).map_err(|e| format!("`{s}` is not a valid URL: {e}"))?;
            if url.host_str().is_none_or(str::is_empty) {
                return Err(format!("`{s}` has no host"));
            }
            return Ok(TargetSpec::Http(s.to_string()));
        }
        if let Some(rest) = s.strip_prefix("invoke+http://") {
            let (authority, function) = match rest.split_once('/') {
                Some((a, f)) if !f.is_empty() => (a, f.trim_end_matches('/').to_string()),
                Some((a, _)) => (a, "function".to_string()),
                None => (rest, "function".to_string()),
            };
            let base = format!("http://{authority}");
            reqwest::Url::parse(&base).map_err(|e| format!("`{s}` is not a valid address: {e}"))?;
            return Ok(TargetSpec::InvokeHttp { base, function });
        }
        if let Some(command) = s.strip_prefix("exec:") {
            return CommandLine::parse(command)
                .map(TargetSpec::Exec)
                .map_err(|e| format!("exec: {e}"));
        }
        if let Some(command) = s.strip_prefix("stdio:") {
            return CommandLine::parse(command)
                .map(TargetSpec::Stdio)
                .map_err(|e| format!("stdio: {e}"));
        }
        if let Some(reference) = s.strip_prefix("image:") {
            return super::image::ImageRef::parse(reference)
                .map(TargetSpec::Image)
                .map_err(|e| format!("image: {e}"));
        }
        for (scheme, when) in [("lambda:", "real AWS Lambda")] {
            if s.starts_with(scheme) {
                return Err(format!(
                    "target scheme `{scheme}` ({when}) is not available in this build; known schemes: {SCHEMES}"
                ));
            }
        }
        Err(format!("`{s}` is not a target; known schemes: {SCHEMES}"))
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn parses_each_scheme() {
        assert_eq!(
            TargetSpec::parse("builtin:ndjson").unwrap(),
            TargetSpec::Builtin(BuiltinKind::Ndjson)
        );
        assert!(matches!(
            TargetSpec::parse("http://127.0.0.1:1/").unwrap(),
            TargetSpec::Http(_)
        ));
        assert_eq!(
            TargetSpec::parse("invoke+http://127.0.0.1:9000").unwrap(),
            TargetSpec::InvokeHttp {
                base: "http://127.0.0.1:9000".into(),
                function: "function".into()
            }
        );
        assert_eq!(
            TargetSpec::parse("invoke+http://127.0.0.1:9000/my-fn").unwrap(),
            TargetSpec::InvokeHttp {
                base: "http://127.0.0.1:9000".into(),
                function: "my-fn".into()
            }
        );
        assert!(
            TargetSpec::parse("nonsense:x")
                .unwrap_err()
                .contains("known schemes")
        );
        assert!(
            TargetSpec::parse("builtin:nope")
                .unwrap_err()
                .contains("ndjson")
        );
        assert!(TargetSpec::parse("http://").is_err());
        assert_eq!(
            TargetSpec::parse("exec:python3 -m awslambdaric 'app.handler'").unwrap(),
            TargetSpec::Exec(CommandLine::parse("python3 -m awslambdaric app.handler").unwrap())
        );
        assert!(matches!(
            TargetSpec::parse("stdio:./t.sh").unwrap(),
            TargetSpec::Stdio(_)
        ));
        assert!(matches!(
            TargetSpec::parse("image:my-fn:v1").unwrap(),
            TargetSpec::Image(r) if r.to_string() == "my-fn:v1"
        ));
        assert!(
            TargetSpec::parse("image:")
                .unwrap_err()
                .starts_with("image:")
        );
        assert!(TargetSpec::parse("exec:").unwrap_err().contains("empty"));
        assert!(
            TargetSpec::parse("stdio:'open")
                .unwrap_err()
                .contains("quote")
        );
    }
}
