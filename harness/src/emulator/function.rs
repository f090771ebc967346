//! What to run: a command line split the way a POSIX shell splits words (no shell is run), and the
//! environment a Lambda runtime expects, layered over the harness's own environment less its
//! credentials.
//!
//! Layering, last wins: the inherited environment (minus [`is_withheld`] names) → the Lambda
//! variables ([`FunctionSpec::lambda_env`]) → `--env K=V` → `AWS_LAMBDA_RUNTIME_API`, which only the
//! emulator can know and so cannot be overridden.

use std::ffi::OsString;
use std::path::PathBuf;

/// Lambda's default function name for a local run; `--env AWS_LAMBDA_FUNCTION_NAME=…` renames it.
pub const DEFAULT_FUNCTION_NAME: &str = "function";
/// Lambda's default memory size in MB; `--env AWS_LAMBDA_FUNCTION_MEMORY_SIZE=…` changes what the
/// function is told (it is not enforced).
pub const DEFAULT_MEMORY_MB: u64 = 128;
/// The account id in the ARNs we hand out: obviously not a real one.
pub const ACCOUNT_ID: &str = "000000000000";

/// A command split into words (`exec:`/`stdio:` strings, or `emulate -- …`'s arguments).
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct CommandLine {
    argv: Vec<String>,
}

impl CommandLine {
    /// Split `s` like a POSIX shell: quotes and backslashes respected, nothing expanded.
    pub fn parse(s: &str) -> Result<Self, String> {
        let argv = shlex::split(s)
            .ok_or_else(|| format!("`{s}` has an unbalanced quote or a trailing backslash"))?;
        Self::from_argv(argv)
    }

    /// Words already split (by the user's shell, for `emulate -- COMMAND...`).
    pub fn from_argv(argv: Vec<String>) -> Result<Self, String> {
        match argv.first() {
            Some(p) if !p.is_empty() => Ok(CommandLine { argv }),
            _ => Err("the command is empty".into()),
        }
    }

    pub fn argv(&self) -> &[String] {
        &self.argv
    }

    pub fn program(&self) -> &str {
        &self.argv[0]
    }

    /// Lambda's `_HANDLER`: the last argument when there are several (`python -m awslambdaric
    /// app.handler` → `app.handler`), else the program's file name (`./bootstrap` → `bootstrap`).
    pub fn handler(&self) -> String {
        if self.argv.len() > 1 {
            return self.argv[self.argv.len() - 1].clone();
        }
        std::path::Path::new(self.program())
            .file_name()
            .map(|n| n.to_string_lossy().into_owned())
            .unwrap_or_else(|| self.program().to_string())
    }

    /// The words quoted back for a POSIX shell (for `reproduce.sh`).
    pub fn shell_quoted(&self) -> String {
        shlex::try_join(self.argv.iter().map(String::as_str))
            .unwrap_or_else(|_| self.argv.join(" "))
    }
}

/// Credential variables withheld by name; anything containing SECRET, TOKEN or PASSWORD is
/// withheld too (see [`is_withheld`]).
const CREDENTIAL_VARS: &[&str] = &[
    "AWS_ACCESS_KEY_ID",
    "AWS_PROFILE",
    "AWS_DEFAULT_PROFILE",
    "AWS_SHARED_CREDENTIALS_FILE",
    "AWS_CONFIG_FILE",
    "AWS_ROLE_ARN",
    "AWS_ROLE_SESSION_NAME",
    "AWS_CONTAINER_CREDENTIALS_RELATIVE_URI",
    "AWS_CONTAINER_CREDENTIALS_FULL_URI",
    "AWS_CREDENTIAL_EXPIRATION",
];

/// Whether a variable of the harness's own environment is kept from the function: its credentials
/// (a test must not reach real AWS with the CI's identity by accident) and the variables of an
/// execution environment the harness might itself run in (`AWS_LAMBDA_*`, `_HANDLER`), which would
/// describe the wrong function — `AWS_LAMBDA_MAX_CONCURRENCY` would even switch awslambdaric into
/// a multi-worker mode. `--env` can still pass any of them on purpose.
pub fn is_withheld(name: &str) -> bool {
    let upper = name.to_ascii_uppercase();
    ["SECRET", "TOKEN", "PASSWORD"]
        .iter()
        .any(|w| upper.contains(w))
        || CREDENTIAL_VARS.contains(&upper.as_str())
        || upper.starts_with("AWS_LAMBDA_")
        || upper == "_HANDLER"
        || upper == "_X_AMZN_TRACE_ID"
}

/// `vars` (normally `std::env::vars_os()`) less what [`is_withheld`].
pub fn inherited_env(
    vars: impl IntoIterator<Item = (OsString, OsString)>,
) -> Vec<(OsString, OsString)> {
    vars.into_iter()
        .filter(|(k, _)| !is_withheld(&k.to_string_lossy()))
        .collect()
}

/// A function to run as Lambda would: the command, `--env` overrides and the working directory.
#[derive(Debug, Clone)]
pub struct FunctionSpec {
    pub command: CommandLine,
    /// `--env K=V`, applied after the Lambda variables so they can override them.
    pub env: Vec<(String, String)>,
    /// Working directory; `None` is the harness's own.
    pub cwd: Option<PathBuf>,
}

impl FunctionSpec {
    pub fn new(command: CommandLine) -> Self {
        FunctionSpec {
            command,
            env: Vec::new(),
            cwd: None,
        }
    }

    fn overridden(&self, key: &str) -> Option<&str> {
        self.env
            .iter()
            .rev()
            .find(|(k, _)| k == key)
            .map(|(_, v)| v.as_str())
    }

    pub fn name(&self) -> String {
        self.overridden("AWS_LAMBDA_FUNCTION_NAME")
            .unwrap_or(DEFAULT_FUNCTION_NAME)
            .to_string()
    }

    pub fn version(&self) -> String {
        self.overridden("AWS_LAMBDA_FUNCTION_VERSION")
            .unwrap_or("$LATEST")
            .to_string()
    }

    pub fn memory_mb(&self) -> u64 {
        self.overridden("AWS_LAMBDA_FUNCTION_MEMORY_SIZE")
            .and_then(|v| v.parse().ok())
            .unwrap_or(DEFAULT_MEMORY_MB)
    }

    pub fn region(&self) -> String {
        self.overridden("AWS_REGION")
            .map(str::to_string)
            .or_else(|| std::env::var("AWS_REGION").ok())
            .or_else(|| std::env::var("AWS_DEFAULT_REGION").ok())
            .unwrap_or_else(|| "us-east-1".into())
    }

    /// The ARN `/next` hands out as `Lambda-Runtime-Invoked-Function-Arn`.
    pub fn arn(&self) -> String {
        format!(
            "arn:aws:lambda:{}:{ACCOUNT_ID}:function:{}",
            self.region(),
            self.name()
        )
    }

    /// The variables Lambda sets for a runtime (LAMBDA_RUNTIME.md §1), for one instance whose log
    /// stream is `log_stream`. `AWS_LAMBDA_RUNTIME_API` is not among them: see [`Self::env_for`].
    pub fn lambda_env(&self, log_stream: &str) -> Vec<(String, String)> {
        let name = self.name();
        let region = self.region();
        let task_root = match &self.cwd {
            Some(d) => d.clone(),
            None => std::env::current_dir().unwrap_or_else(|_| PathBuf::from(".")),
        };
        vec![
            ("AWS_LAMBDA_FUNCTION_NAME".into(), name.clone()),
            (
                "AWS_LAMBDA_FUNCTION_MEMORY_SIZE".into(),
                self.memory_mb().to_string(),
            ),
            ("AWS_LAMBDA_FUNCTION_VERSION".into(), self.version()),
            (
                "AWS_LAMBDA_LOG_GROUP_NAME".into(),
                format!("/aws/lambda/{name}"),
            ),
            ("AWS_LAMBDA_LOG_STREAM_NAME".into(), log_stream.to_string()),
            ("AWS_LAMBDA_INITIALIZATION_TYPE".into(), "on-demand".into()),
            ("AWS_REGION".into(), region.clone()),
            ("AWS_DEFAULT_REGION".into(), region),
            ("AWS_EXECUTION_ENV".into(), "firehose-harness".into()),
            ("_HANDLER".into(), self.command.handler()),
            (
                "LAMBDA_TASK_ROOT".into(),
                task_root.to_string_lossy().into_owned(),
            ),
            ("TZ".into(), "UTC".into()),
        ]
    }

    /// The whole environment of one instance, layered as the module documentation says.
    pub fn env_for(
        &self,
        inherited: Vec<(OsString, OsString)>,
        runtime_api: &str,
        log_stream: &str,
    ) -> Vec<(OsString, OsString)> {
        let mut env = inherited;
        let lambda = self.lambda_env(log_stream).into_iter();
        for (k, v) in lambda.chain(self.env.iter().cloned()) {
            set(&mut env, k.into(), v.into());
        }
        set(
            &mut env,
            "AWS_LAMBDA_RUNTIME_API".into(),
            runtime_api.to_string().into(),
        );
        env
    }
}

/// Replace or add `k` in `env`.
pub fn set(env: &mut Vec<(OsString, OsString)>, k: OsString, v: OsString) {
    match env.iter_mut().find(|(name, _)| *name == k) {
        Some(slot) => slot.1 = v,
        None => env.push((k, v)),
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    fn os(pairs: &[(&str, &str)]) -> Vec<(OsString, OsString)> {
        pairs
            .iter()
            .map(|(k, v)| ((*k).into(), (*v).into()))
            .collect()
    }

    fn get<'a>(env: &'a [(OsString, OsString)], k: &str) -> Option<&'a str> {
        env.iter()
            .find(|(name, _)| name == k)
            .and_then(|(_, v)| v.to_str())
    }

    #[test]
    fn splits_like_a_posix_shell_without_running_one() {
        let c =
            CommandLine::parse(r#"python3 -m awslambdaric 'my app'.handler "$HOME" a\ b"#).unwrap();
        assert_eq!(
            c.argv(),
            [
                "python3",
                "-m",
                "awslambdaric",
                "my app.handler",
                "$HOME",
                "a b"
            ]
        );
        assert_eq!(c.handler(), "a b", "the last argument");
        assert!(CommandLine::parse("python3 'unclosed").is_err());
        assert!(CommandLine::parse("   ").is_err());
        assert_eq!(
            CommandLine::parse("./target/debug/bootstrap")
                .unwrap()
                .handler(),
            "bootstrap"
        );
        let quoted = CommandLine::parse("a 'b c'").unwrap().shell_quoted();
        assert_eq!(CommandLine::parse(&quoted).unwrap().argv(), ["a", "b c"]);
    }

    #[test]
    fn credentials_and_secrets_stay_behind() {
        let kept = inherited_env(os(&[
            ("PATH", "/bin"),
            ("AWS_ACCESS_KEY_ID", "AKIA"),
            ("AWS_SECRET_ACCESS_KEY", "x"),
            ("AWS_SESSION_TOKEN", "x"),
            ("GITHUB_TOKEN", "x"),
            ("db_password", "x"),
            ("MY_SECRET_THING", "x"),
            ("AWS_LAMBDA_MAX_CONCURRENCY", "4"),
            ("AWS_REGION", "eu-west-1"),
            ("HOME", "/root"),
        ]));
        let names: Vec<_> = kept.iter().map(|(k, _)| k.to_str().unwrap()).collect();
        assert_eq!(names, ["PATH", "AWS_REGION", "HOME"]);
    }

    #[test]
    fn env_layers_lambda_variables_then_overrides_then_the_runtime_api() {
        let mut spec =
            FunctionSpec::new(CommandLine::parse("python3 -m awslambdaric app.handler").unwrap());
        spec.env = vec![
            ("AWS_LAMBDA_FUNCTION_NAME".into(), "orders".into()),
            ("TZ".into(), "Europe/Paris".into()),
            ("AWS_LAMBDA_RUNTIME_API".into(), "evil:1".into()),
            ("EXTRA".into(), "1".into()),
        ];
        let env = spec.env_for(
            os(&[("PATH", "/bin"), ("TZ", "America/New_York")]),
            "127.0.0.1:4567",
            "stream",
        );
        assert_eq!(get(&env, "AWS_LAMBDA_RUNTIME_API"), Some("127.0.0.1:4567"));
        assert_eq!(get(&env, "AWS_LAMBDA_FUNCTION_NAME"), Some("orders"));
        assert_eq!(
            get(&env, "AWS_LAMBDA_LOG_GROUP_NAME"),
            Some("/aws/lambda/orders")
        );
        assert_eq!(get(&env, "AWS_LAMBDA_FUNCTION_MEMORY_SIZE"), Some("128"));
        assert_eq!(get(&env, "AWS_LAMBDA_FUNCTION_VERSION"), Some("$LATEST"));
        assert_eq!(get(&env, "_HANDLER"), Some("app.handler"));
        assert_eq!(get(&env, "TZ"), Some("Europe/Paris"));
        assert_eq!(get(&env, "EXTRA"), Some("1"));
        assert_eq!(get(&env, "PATH"), Some("/bin"));
        assert!(get(&env, "AWS_LAMBDA_MAX_CONCURRENCY").is_none());
        assert!(spec.arn().ends_with(":000000000000:function:orders"));
    }
}
