//! SigV4 request signing for AWS targets (`lambda:`, `--sigv4 SERVICE`), with credentials and region
//! from the standard chain.
//!
//! Credentials come from `aws-config` (environment, shared config and credentials files with
//! `--profile`, SSO, web identity for CI OIDC, container and instance roles) and are cached here:
//! every signature reuses them until five minutes before they expire, then one caller refreshes them
//! while the others keep signing with the still-valid old ones. So a load test longer than a role
//! session keeps going. Signing is `aws-sigv4`'s, never hand-written.
//!
//! Nothing secret leaves this module except inside the request: errors name providers and regions,
//! never keys, tokens or signatures.

use std::time::{Duration, SystemTime};

use aws_config::BehaviorVersion;
use aws_credential_types::Credentials;
use aws_credential_types::provider::{ProvideCredentials, SharedCredentialsProvider};
use aws_sigv4::http_request::{SignableBody, SignableRequest, SigningSettings, sign};
use aws_sigv4::sign::v4;
use aws_smithy_runtime_api::client::identity::Identity;
use reqwest::header::{HOST, HeaderMap, HeaderName, HeaderValue};
use tokio::sync::{Mutex, OnceCell, RwLock};

/// Refresh credentials this long before they expire.
const REFRESH_BEFORE_EXPIRY: Duration = Duration::from_secs(5 * 60);

/// Why a request could not be signed.
#[derive(Debug, thiserror::Error)]
#[non_exhaustive]
pub enum SignError {
    #[error(
        "no AWS region: pass --region, set AWS_REGION, or name a profile with a region (--profile)"
    )]
    NoRegion,
    #[error("no AWS credentials: {0}")]
    NoCredentials(String),
    #[error("cannot sign the request: {0}")]
    Sign(String),
}

/// Where the signer finds its region and credentials.
#[derive(Debug, Clone, Default)]
pub struct SignerConfig {
    /// The service signatures are for: `lambda`, `execute-api`.
    pub service: String,
    /// `--region` (or a function ARN's region); otherwise the chain's.
    pub region: Option<String>,
    /// `--profile`; otherwise `AWS_PROFILE` or `default`.
    pub profile: Option<String>,
}

struct Chain {
    provider: SharedCredentialsProvider,
    region: String,
}

/// Signs requests for one service in one region; cheap to share between tasks.
pub struct Signer {
    config: SignerConfig,
    chain: OnceCell<Chain>,
    cached: RwLock<Option<Credentials>>,
    refreshing: Mutex<()>,
}

impl Signer {
    pub fn new(config: SignerConfig) -> Signer {
        Signer {
            config,
            chain: OnceCell::new(),
            cached: RwLock::new(None),
            refreshing: Mutex::new(()),
        }
    }

    /// A signer with its own credentials provider instead of the chain (tests, embedding).
    pub fn with_provider(
        service: &str,
        region: &str,
        provider: impl ProvideCredentials + 'static,
    ) -> Signer {
        let signer = Signer::new(SignerConfig {
            service: service.into(),
            region: Some(region.into()),
            profile: None,
        });
        let _ = signer.chain.set(Chain {
            provider: SharedCredentialsProvider::new(provider),
            region: region.into(),
        });
        signer
    }

    /// Resolve region and credentials once, so a missing profile or expired SSO session fails
    /// before the first event instead of on it.
    pub async fn load(&self) -> Result<(), SignError> {
        self.chain().await?;
        self.credentials().await.map(drop)
    }

    /// The region signatures are scoped to (after [`Signer::load`]).
    pub async fn region(&self) -> Result<String, SignError> {
        Ok(self.chain().await?.region.clone())
    }

    async fn chain(&self) -> Result<&Chain, SignError> {
        self.chain
            .get_or_try_init(|| async {
                let http = aws_smithy_http_client::Builder::new()
                    .tls_provider(aws_smithy_http_client::tls::Provider::Rustls(
                        aws_smithy_http_client::tls::rustls_provider::CryptoMode::Ring,
                    ))
                    .build_https();
                let mut loader = aws_config::defaults(BehaviorVersion::latest()).http_client(http);
                if let Some(p) = &self.config.profile {
                    loader = loader.profile_name(p);
                }
                if let Some(r) = &self.config.region {
                    loader = loader.region(aws_config::Region::new(r.clone()));
                }
                let sdk = loader.load().await;
                let region = sdk
                    .region()
                    .map(|r| r.to_string())
                    .ok_or(SignError::NoRegion)?;
                let provider = sdk.credentials_provider().ok_or_else(|| {
                    SignError::NoCredentials("no credentials provider is configured".into())
                })?;
                Ok(Chain { provider, region })
            })
            .await
    }

    /// Cached credentials, refreshed when they are close to expiry.
    async fn credentials(&self) -> Result<Credentials, SignError> {
        let fresh = |c: &Credentials| {
            c.expiry()
                .is_none_or(|e| e > SystemTime::now() + REFRESH_BEFORE_EXPIRY)
        };
        if let Some(c) = self.cached.read().await.as_ref().filter(|c| fresh(c)) {
            return Ok(c.clone());
        }
        let _one_refresher = self.refreshing.lock().await;
        if let Some(c) = self.cached.read().await.as_ref().filter(|c| fresh(c)) {
            return Ok(c.clone());
        }
        let chain = self.chain().await?;
        match chain.provider.provide_credentials().await {
            Ok(c) => {
                *self.cached.write().await = Some(c.clone());
                Ok(c)
            }
            Err(e) => {
                // A failed refresh is not yet fatal while the old credentials still work.
                let still_valid = self
                    .cached
                    .read()
                    .await
                    .as_ref()
                    .filter(|c| c.expiry().is_none_or(|e| e > SystemTime::now()))
                    .cloned();
                still_valid.ok_or_else(|| SignError::NoCredentials(super::http::chain(&e)))
            }
        }
    }

    /// Add `Authorization`, `X-Amz-Date` and (with a session) `X-Amz-Security-Token` to `headers`
    /// for a request of `method` to `url` carrying `body`. Every header already in `headers` is
    /// signed, and `Host` is set to what the HTTP client will send.
    pub async fn sign(
        &self,
        method: &str,
        url: &reqwest::Url,
        headers: &mut HeaderMap,
        body: &[u8],
    ) -> Result<(), SignError> {
        let chain = self.chain().await?;
        let identity: Identity = self.credentials().await?.into();
        let host = match (url.host_str(), url.port()) {
            (Some(h), Some(p)) => format!("{h}:{p}"),
            (Some(h), None) => h.to_string(),
            (None, _) => return Err(SignError::Sign(format!("`{url}` has no host"))),
        };
        headers.insert(
            HOST,
            HeaderValue::from_str(&host).map_err(|e| SignError::Sign(e.to_string()))?,
        );
        let params = v4::SigningParams::builder()
            .identity(&identity)
            .region(&chain.region)
            .name(&self.config.service)
            .time(SystemTime::now())
            .settings(SigningSettings::default())
            .build()
            .map_err(|e| SignError::Sign(e.to_string()))?
            .into();
        let pairs: Vec<(&str, &str)> = headers
            .iter()
            .filter_map(|(k, v)| Some((k.as_str(), v.to_str().ok()?)))
            .collect();
        let signable = SignableRequest::new(
            method,
            url.as_str(),
            pairs.into_iter(),
            SignableBody::Bytes(body),
        )
        .map_err(|e| SignError::Sign(e.to_string()))?;
        let (instructions, _signature) = sign(signable, &params)
            .map_err(|e| SignError::Sign(e.to_string()))?
            .into_parts();
        let (signed, _query) = instructions.into_parts();
        for h in signed {
            let mut value =
                HeaderValue::from_str(h.value()).map_err(|e| SignError::Sign(e.to_string()))?;
            value.set_sensitive(h.sensitive() || h.name() == "authorization");
            headers.insert(HeaderName::from_static(h.name()), value);
        }
        Ok(())
    }
}

#[cfg(test)]
mod tests {
    use std::sync::Arc;
    use std::sync::atomic::{AtomicU32, Ordering};

    use aws_credential_types::provider::future;

    use super::*;

    /// Hands out credentials valid for `lifetime`, counting how often it is asked.
    #[derive(Debug)]
    struct Counting {
        calls: Arc<AtomicU32>,
        lifetime: Duration,
    }

    impl ProvideCredentials for Counting {
        fn provide_credentials<'a>(&'a self) -> future::ProvideCredentials<'a>
        where
            Self: 'a,
        {
            let n = self.calls.fetch_add(1, Ordering::SeqCst);
            future::ProvideCredentials::ready(Ok(Credentials::new(
                "AKIATEST",
                format!("secret-{n}"),
                Some("token".into()),
                Some(SystemTime::now() + self.lifetime),
                "test",
            )))
        }
    }

    async fn sign_times(signer: &Signer, n: usize) -> HeaderMap {
        let url = reqwest::Url::parse("https://lambda.eu-west-1.amazonaws.com/x").unwrap();
        let mut headers = HeaderMap::new();
        for _ in 0..n {
            headers = HeaderMap::new();
            signer
                .sign("POST", &url, &mut headers, b"{}")
                .await
                .unwrap();
        }
        headers
    }

    #[tokio::test]
    async fn credentials_are_cached_until_close_to_expiry_then_refreshed() {
        let calls = Arc::new(AtomicU32::new(0));
        let long = Signer::with_provider(
            "lambda",
            "eu-west-1",
            Counting {
                calls: calls.clone(),
                lifetime: Duration::from_secs(3600),
            },
        );
        let headers = sign_times(&long, 10).await;
        assert_eq!(
            calls.load(Ordering::SeqCst),
            1,
            "an hour-long session is reused"
        );
        assert!(headers["authorization"].is_sensitive());
        assert_eq!(headers["x-amz-security-token"], "token");
        assert!(
            headers["authorization"]
                .to_str()
                .unwrap()
                .contains("/eu-west-1/lambda/aws4_request")
        );

        let calls = Arc::new(AtomicU32::new(0));
        let expiring = Signer::with_provider(
            "lambda",
            "eu-west-1",
            Counting {
                calls: calls.clone(),
                lifetime: Duration::from_secs(60),
            },
        );
        sign_times(&expiring, 3).await;
        assert_eq!(
            calls.load(Ordering::SeqCst),
            3,
            "credentials inside the refresh window are fetched again"
        );
    }
}
