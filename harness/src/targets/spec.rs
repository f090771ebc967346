//! Parsing `--target` strings. Unknown schemes are a usage error (exit 2) with the list of known ones.

use super::builtin::BuiltinKind;
use crate::emulator::CommandLine;

/// A parsed `--target`.
#[derive(Debug, Clone, PartialEq, Eq)]
pub enum TargetSpec {
    Builtin(BuiltinKind),
    /// `http://…` or `https://…`: the URL as given.
    Http(String),
    /// `invoke+http(s)://HOST:PORT[/FUNCTION]`: base `http(s)://HOST:PORT`, function name (default
    /// `function`, RIE's only name).
    InvokeHttp {
        base: String,
        function: String,
    },
    /// `lambda:NAME_OR_ARN[:QUALIFIER]`: the real Invoke API, SigV4 signed.
    Lambda(LambdaFunction),
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
    /// `--region`, `--profile`, `--endpoint-url`, `--log-tail`, `--sigv4`, `--ca-cert`.
    pub aws: AwsOptions,
    /// How a started function's instances start and queue (`--init-timeout`, `--max-queue`,
    /// `--throttle`).
    pub pool: crate::emulator::PoolOptions,
    /// `--timeout`, where a target hands it on to the function (`image:` sets
    /// `AWS_LAMBDA_FUNCTION_TIMEOUT` from it).
    pub timeout: Option<std::time::Duration>,
}

/// Options for AWS targets (`lambda:`) and signed or privately-trusted `https://` targets.
#[derive(Debug, Clone, Default)]
pub struct AwsOptions {
    /// `--region`; otherwise the function ARN's region, then the standard chain (`AWS_REGION`, profile).
    pub region: Option<String>,
    /// `--profile`: a named profile of the shared config files (`AWS_PROFILE` otherwise).
    pub profile: Option<String>,
    /// `--endpoint-url` (LocalStack, tests); otherwise `AWS_ENDPOINT_URL_LAMBDA`, `AWS_ENDPOINT_URL`.
    pub endpoint_url: Option<String>,
    /// `--log-tail`: ask Lambda for the last 4 KB of each invocation's log.
    pub log_tail: bool,
    /// `--sigv4 SERVICE`: sign `https://` requests for this service (`lambda`, `execute-api`).
    pub sigv4: Option<String>,
    /// `--ca-cert FILE`: PEM certificates to trust in addition to the built-in roots.
    pub ca_cert: Option<std::path::PathBuf>,
}

/// The function a `lambda:` target names.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct LambdaFunction {
    /// A name, a full ARN (without qualifier) or a partial ARN, as Lambda's FunctionName takes it.
    pub name: String,
    /// A version or alias (`:live`, `:7`, `:$LATEST`).
    pub qualifier: Option<String>,
    /// The region named in a full ARN, used when `--region` is not given.
    pub region: Option<String>,
}

impl LambdaFunction {
    /// `NAME`, `NAME:QUALIFIER`, `arn:PARTITION:lambda:REGION:ACCOUNT:function:NAME[:QUALIFIER]`,
    /// or `ACCOUNT:function:NAME[:QUALIFIER]`.
    pub fn parse(s: &str) -> Result<LambdaFunction, String> {
        let parts: Vec<&str> = s.split(':').collect();
        let bad = |why: &str| {
            format!(
                "`lambda:{s}` {why}; write lambda:NAME[:QUALIFIER] or lambda:arn:aws:lambda:REGION:ACCOUNT:function:NAME[:QUALIFIER]"
            )
        };
        // Split off the qualifier: the part after the name, if the shape has one.
        let (name_parts, qualifier) = match parts.as_slice() {
            [_] | ["arn", _, "lambda", _, _, "function", _] | [_, "function", _] => {
                (&parts[..], None)
            }
            [_, q] | ["arn", _, "lambda", _, _, "function", _, q] | [_, "function", _, q] => {
                (&parts[..parts.len() - 1], Some(*q))
            }
            _ => return Err(bad("is not a function name or ARN")),
        };
        let region = (name_parts.len() == 7).then(|| name_parts[3]);
        let name = name_parts.join(":");
        let function_name = name_parts.last().copied().unwrap_or_default();
        let legal = |t: &str| {
            !t.is_empty()
                && t.chars()
                    .all(|c| c.is_ascii_alphanumeric() || c == '-' || c == '_')
        };
        if !legal(function_name) || function_name.len() > 64 {
            return Err(bad(
                "has an invalid function name (1-64 letters, digits, - and _)",
            ));
        }
        if let Some(q) = qualifier
            && (q.is_empty()
                || !q
                    .chars()
                    .all(|c| c.is_ascii_alphanumeric() || "-_$".contains(c)))
        {
            return Err(bad("has an invalid qualifier"));
        }
        Ok(LambdaFunction {
            name,
            qualifier: qualifier.map(str::to_string),
            region: region.filter(|r| !r.is_empty()).map(str::to_string),
        })
    }

    /// `lambda:NAME[:QUALIFIER]`, as the user wrote it.
    pub fn describe(&self) -> String {
        match &self.qualifier {
            Some(q) => format!("lambda:{}:{q}", self.name),
            None => format!("lambda:{}", self.name),
        }
    }
}

/// What stands in for a redacted secret in every output.
pub const REDACTED: &str = "***";

/// The environment variable a reproducer reads a target URL's `user:password` from.
pub const USERINFO_VAR: &str = "FIREHOSE_TARGET_USERINFO";

/// `s` with the userinfo of every URL in it (`http://user:password@host/`) replaced by
/// [`REDACTED`]: reports, case folders, terminals and CI logs name the target without its
/// credentials. Works on free text (error messages quoting a URL) as well as on a bare URL.
pub fn redact_userinfo(s: &str) -> String {
    let mut out = String::with_capacity(s.len());
    let mut rest = s;
    while let Some(i) = rest.find("://") {
        let (head, tail) = rest.split_at(i + 3);
        out.push_str(head);
        let end = tail
            .find(|c: char| "/?#".contains(c) || c.is_whitespace() || "'\"`)>".contains(c))
            .unwrap_or(tail.len());
        match tail[..end].rfind('@') {
            Some(at) => {
                out.push_str(REDACTED);
                rest = &tail[at..];
            }
            None => rest = tail,
        }
    }
    out.push_str(rest);
    out
}

/// The userinfo (`user:password`) of a URL, if it has one.
pub fn userinfo(url: &str) -> Option<&str> {
    let tail = &url[url.find("://")? + 3..];
    let end = tail.find(['/', '?', '#']).unwrap_or(tail.len());
    tail[..end]
        .rfind('@')
        .map(|at| &tail[..at])
        .filter(|u| !u.is_empty())
}

/// `url` as a double-quoted shell word whose userinfo, if any, is read from [`USERINFO_VAR`] when
/// the script runs, so a reproducer carries no credentials but still sends them.
pub fn shell_url_from_env(url: &str) -> String {
    let escape = |s: &str| {
        s.chars()
            .flat_map(|c| match c {
                '$' | '`' | '"' | '\\' => vec!['\\', c],
                c => vec![c],
            })
            .collect::<String>()
    };
    match (userinfo(url), url.find("://")) {
        (Some(info), Some(i)) => {
            let after = &url[i + 3 + info.len()..];
            format!(
                "\"{}${{{USERINFO_VAR}:?set {USERINFO_VAR} to the user:password of the target URL}}{}\"",
                escape(&url[..i + 3]),
                escape(after)
            )
        }
        _ => format!("\"{}\"", escape(url)),
    }
}

pub const SCHEMES: &str = "builtin:NAME, http://, https://, invoke+http(s)://HOST:PORT[/FUNCTION], lambda:NAME_OR_ARN[:QUALIFIER], exec:COMMAND, stdio:COMMAND, image:REF";

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
            let url = reqwest::Url::parse(s)
                .map_err(|e| format!("`{}` is not a valid URL: {e}", redact_userinfo(s)))?;
            if url.host_str().is_none_or(str::is_empty) {
                return Err(format!("`{}` has no host", redact_userinfo(s)));
            }
            return Ok(TargetSpec::Http(s.to_string()));
        }
        let invoke = [("invoke+http://", "http"), ("invoke+https://", "https")]
            .into_iter()
            .find_map(|(prefix, scheme)| s.strip_prefix(prefix).map(|rest| (rest, scheme)));
        if let Some((rest, scheme)) = invoke {
            let (authority, function) = match rest.split_once('/') {
                Some((a, f)) if !f.is_empty() => (a, f.trim_end_matches('/').to_string()),
                Some((a, _)) => (a, "function".to_string()),
                None => (rest, "function".to_string()),
            };
            if authority.is_empty() {
                return Err(format!("`{}` has no host", redact_userinfo(s)));
            }
            let base = format!("{scheme}://{authority}");
            reqwest::Url::parse(&base)
                .map_err(|e| format!("`{}` is not a valid address: {e}", redact_userinfo(s)))?;
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
        if let Some(function) = s.strip_prefix("lambda:") {
            return LambdaFunction::parse(function).map(TargetSpec::Lambda);
        }
        if let Some(reference) = s.strip_prefix("image:") {
            return super::image::ImageRef::parse(reference)
                .map(TargetSpec::Image)
                .map_err(|e| format!("image: {e}"));
        }
        Err(format!(
            "`{}` is not a target; known schemes: {SCHEMES}",
            redact_userinfo(s)
        ))
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn userinfo_is_redacted_wherever_a_url_appears() {
        assert_eq!(
            redact_userinfo("http://user:pa@ss@host:8080/p?q=a@b"),
            "http://***@host:8080/p?q=a@b"
        );
        assert_eq!(
            redact_userinfo("error sending request for url (https://u:secret@h/x): refused"),
            "error sending request for url (https://***@h/x): refused"
        );
        assert_eq!(redact_userinfo("http://host/a@b"), "http://host/a@b");
        assert_eq!(redact_userinfo("builtin:ndjson"), "builtin:ndjson");
        assert_eq!(userinfo("http://u:p@h/"), Some("u:p"));
        assert_eq!(userinfo("http://h/u@x"), None);
    }

    #[test]
    fn a_reproducer_url_reads_its_userinfo_from_the_environment() {
        let word = shell_url_from_env("http://user:secret@host/a$b");
        assert!(!word.contains("secret"), "{word}");
        assert_eq!(
            word,
            "\"http://${FIREHOSE_TARGET_USERINFO:?set FIREHOSE_TARGET_USERINFO to the user:password of the target URL}@host/a\\$b\""
        );
        assert_eq!(shell_url_from_env("http://h/"), "\"http://h/\"");
    }

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
        assert_eq!(
            TargetSpec::parse("invoke+https://example.com:8443/f").unwrap(),
            TargetSpec::InvokeHttp {
                base: "https://example.com:8443".into(),
                function: "f".into()
            }
        );
        assert!(TargetSpec::parse("invoke+https:///f").is_err());
        assert!(
            TargetSpec::parse("stdio:'open")
                .unwrap_err()
                .contains("quote")
        );
    }

    #[test]
    fn parses_lambda_names_and_arns() {
        let f = |s: &str| LambdaFunction::parse(s);
        assert_eq!(
            f("my-fn").unwrap(),
            LambdaFunction {
                name: "my-fn".into(),
                qualifier: None,
                region: None
            }
        );
        assert_eq!(f("my-fn:live").unwrap().qualifier.as_deref(), Some("live"));
        assert_eq!(
            f("my-fn:$LATEST").unwrap().qualifier.as_deref(),
            Some("$LATEST")
        );
        let arn = f("arn:aws:lambda:eu-west-1:123456789012:function:my-fn:7").unwrap();
        assert_eq!(
            arn.name,
            "arn:aws:lambda:eu-west-1:123456789012:function:my-fn"
        );
        assert_eq!(arn.qualifier.as_deref(), Some("7"));
        assert_eq!(arn.region.as_deref(), Some("eu-west-1"));
        assert_eq!(
            f("123456789012:function:my-fn").unwrap().name,
            "123456789012:function:my-fn"
        );
        assert!(f("").is_err());
        assert!(f("a:b:c").is_err());
        assert!(f("my fn").is_err());
        assert!(f("my-fn:").is_err());
        assert!(
            TargetSpec::parse("lambda:my/fn")
                .unwrap_err()
                .contains("lambda:NAME")
        );
        assert!(matches!(
            TargetSpec::parse("lambda:my-fn:live").unwrap(),
            TargetSpec::Lambda(_)
        ));
    }
}
