//! `lambda:NAME_OR_ARN[:QUALIFIER]`: the real AWS Lambda Invoke API
//! (`POST /2015-03-31/functions/{FunctionName}/invocations?Qualifier=…`), SigV4 signed for service
//! `lambda`, credentials and region from the standard chain (see [`super::sigv4`]).
//!
//! The endpoint is `--endpoint-url`, else `AWS_ENDPOINT_URL_LAMBDA`, else `AWS_ENDPOINT_URL`, else
//! `https://lambda.{region}.amazonaws.com`. The exchange itself is [`super::http`]'s, in its
//! [`Api::Lambda`](super::http::Api::Lambda) flavour: `X-Amz-Function-Error` is the function error,
//! 429 and the service's own 5xx are throttles (retried, counted apart), `X-Amz-Executed-Version`
//! goes to the report, and `--log-tail` puts the decoded log into failing cases.

use super::http::HttpTarget;
use super::sigv4::{Signer, SignerConfig};
use super::spec::LambdaFunction;
use super::{TargetError, TargetOptions};

/// Environment variables that name an endpoint, most specific first (AWS SDKs' own names).
pub const ENDPOINT_ENV: [&str; 2] = ["AWS_ENDPOINT_URL_LAMBDA", "AWS_ENDPOINT_URL"];

/// Build the target. The region must be known now to pick the endpoint; credentials load in
/// `start`.
pub fn build(
    function: &LambdaFunction,
    options: &TargetOptions,
) -> Result<HttpTarget, TargetError> {
    let described = function.describe();
    let region = options
        .aws
        .region
        .clone()
        .or_else(|| function.region.clone());
    let endpoint = options
        .aws
        .endpoint_url
        .clone()
        .or_else(|| {
            ENDPOINT_ENV
                .iter()
                .find_map(|k| std::env::var(k).ok().filter(|v| !v.is_empty()))
        })
        .map(Ok)
        .unwrap_or_else(|| default_endpoint(region.as_deref(), options))
        .map_err(|reason| TargetError::Credentials {
            target: described.clone(),
            reason,
        })?;
    let mut url = reqwest::Url::parse(&endpoint).map_err(|e| TargetError::Start {
        target: described.clone(),
        reason: format!("the endpoint `{endpoint}` is not a URL: {e}"),
    })?;
    // One path segment, percent-encoded as the SDKs send it (an ARN's colons become %3A).
    let base = url.path().trim_end_matches('/').to_string();
    url.set_path(&format!(
        "{base}/2015-03-31/functions/{}/invocations",
        encode_label(&function.name)
    ));
    if let Some(q) = &function.qualifier {
        url.query_pairs_mut().append_pair("Qualifier", q);
    }
    let signer = Signer::new(SignerConfig {
        service: "lambda".into(),
        region,
        profile: options.aws.profile.clone(),
    });
    HttpTarget::lambda(url.to_string(), described, signer, options)
}

/// A URI label as Smithy encodes one: everything but unreserved characters as `%XX`.
fn encode_label(s: &str) -> String {
    s.bytes()
        .map(|b| match b {
            b'A'..=b'Z' | b'a'..=b'z' | b'0'..=b'9' | b'-' | b'_' | b'.' | b'~' => {
                (b as char).to_string()
            }
            _ => format!("%{b:02X}"),
        })
        .collect()
}

/// `https://lambda.{region}.amazonaws.com` (`.amazonaws.com.cn` in China), where the region is
/// known without asking the chain; otherwise the chain's region from the environment or profile.
fn default_endpoint(region: Option<&str>, options: &TargetOptions) -> Result<String, String> {
    let region = match region {
        Some(r) => r.to_string(),
        None => region_from_environment(options.aws.profile.as_deref())?,
    };
    let suffix = if region.starts_with("cn-") {
        "amazonaws.com.cn"
    } else {
        "amazonaws.com"
    };
    Ok(format!("https://lambda.{region}.{suffix}"))
}

/// The chain's region (environment, then profile), resolved on a throwaway runtime: `build` is
/// called before the command's runtime exists.
fn region_from_environment(profile: Option<&str>) -> Result<String, String> {
    let signer = Signer::new(SignerConfig {
        service: "lambda".into(),
        region: None,
        profile: profile.map(str::to_string),
    });
    let rt = tokio::runtime::Builder::new_current_thread()
        .enable_all()
        .build()
        .map_err(|e| e.to_string())?;
    rt.block_on(signer.region()).map_err(|e| e.to_string())
}
