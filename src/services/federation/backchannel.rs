//! The one HTTP client for calls to upstream providers (discovery, keys, token, UserInfo,
//! GitHub's API). What the issue and RFC 9700 §4.11 ask of a client talking to an outside
//! server, enforced here for every call whatever library builds the request:
//!
//! - only `https`, or `http` to a loopback host (development and tests), checked before the
//!   call ([`allowed`]);
//! - no redirects followed (a redirect is an answer like any other, and fails as one);
//! - a timeout on the whole call, connecting included (`upstream.timeout_secs`);
//! - at most [`MAX_BODY`] bytes of answer read, however large the server says it is;
//! - TLS through rustls on aws-lc-rs with the Mozilla roots (webpki-roots): no system store.
//!
//! Nothing of a request or an answer is logged here: a token request carries the client
//! secret and the code, its answer the tokens.

use std::future::Future;
use std::pin::Pin;
use std::sync::Arc;
use std::time::Duration;

use openidconnect::AsyncHttpClient;

/// A request to a provider, and its answer (the `http` crate's types the OAuth crates use).
pub type Outgoing = openidconnect::http::Request<Vec<u8>>;
pub type Incoming = openidconnect::http::Response<Vec<u8>>;

/// The largest answer read from an upstream (a discovery document, a key set, a token
/// response, a UserInfo answer, GitHub's emails).
pub const MAX_BODY: usize = 512 * 1024;

/// Why a call to an upstream did not get an answer.
#[derive(Debug, thiserror::Error)]
pub enum BackChannelError {
    #[error("refused to call {0}: only https, or http to a loopback host")]
    NotAllowed(String),
    #[error("the call timed out")]
    Timeout,
    #[error("cannot reach the provider: {0}")]
    Unreachable(String),
    #[error("the answer is larger than {MAX_BODY} bytes")]
    TooLarge,
    #[error("a bad request or answer: {0}")]
    Malformed(String),
}

/// The client (cheap to clone: one connection pool).
#[derive(Clone, Debug)]
pub struct BackChannel {
    client: reqwest::Client,
}

/// Whether a URL may be called: `https`, or `http` to `localhost` or a loopback address.
pub fn allowed(url: &url::Url) -> bool {
    let loopback = match url.host() {
        Some(url::Host::Domain(d)) => d == "localhost",
        Some(url::Host::Ipv4(a)) => a.is_loopback(),
        Some(url::Host::Ipv6(a)) => a.is_loopback(),
        None => false,
    };
    url.host().is_some()
        && url.username().is_empty()
        && url.password().is_none()
        && (url.scheme() == "https" || (url.scheme() == "http" && loopback))
}

impl BackChannel {
    pub fn new(timeout: Duration) -> anyhow::Result<Self> {
        let roots = rustls::RootCertStore {
            roots: webpki_roots::TLS_SERVER_ROOTS.to_vec(),
        };
        let tls = rustls::ClientConfig::builder_with_provider(Arc::new(
            rustls::crypto::aws_lc_rs::default_provider(),
        ))
        .with_safe_default_protocol_versions()?
        .with_root_certificates(roots)
        .with_no_client_auth();
        let client = reqwest::Client::builder()
            .use_preconfigured_tls(tls)
            .redirect(reqwest::redirect::Policy::none())
            .timeout(timeout)
            .connect_timeout(timeout)
            .user_agent(concat!("Castellan/", env!("CARGO_PKG_VERSION")))
            .build()?;
        Ok(Self { client })
    }

    /// One call: checked, sent, its answer read up to [`MAX_BODY`].
    pub async fn call(&self, request: Outgoing) -> Result<Incoming, BackChannelError> {
        let url = url::Url::parse(&request.uri().to_string())
            .map_err(|e| BackChannelError::Malformed(e.to_string()))?;
        if !allowed(&url) {
            return Err(BackChannelError::NotAllowed(origin_of(&url)));
        }
        let request: reqwest::Request = request
            .try_into()
            .map_err(|e: reqwest::Error| BackChannelError::Malformed(e.to_string()))?;
        let mut response = self.client.execute(request).await.map_err(failure)?;
        if response
            .content_length()
            .is_some_and(|n| n > MAX_BODY as u64)
        {
            return Err(BackChannelError::TooLarge);
        }
        let mut builder = openidconnect::http::Response::builder().status(response.status());
        for (name, value) in response.headers() {
            builder = builder.header(name, value);
        }
        let mut body = Vec::new();
        while let Some(chunk) = response.chunk().await.map_err(failure)? {
            if body.len() + chunk.len() > MAX_BODY {
                return Err(BackChannelError::TooLarge);
            }
            body.extend_from_slice(&chunk);
        }
        builder
            .body(body)
            .map_err(|e| BackChannelError::Malformed(e.to_string()))
    }
}

/// The scheme, host and port of a URL (what an error may name: never a path or a query,
/// which can carry a code or a token).
pub fn origin_of(url: &url::Url) -> String {
    url.origin().ascii_serialization()
}

fn failure(e: reqwest::Error) -> BackChannelError {
    if e.is_timeout() {
        BackChannelError::Timeout
    } else {
        // Without the URL: it may carry a query.
        BackChannelError::Unreachable(e.without_url().to_string())
    }
}

impl<'c> AsyncHttpClient<'c> for BackChannel {
    type Error = BackChannelError;
    type Future = Pin<Box<dyn Future<Output = Result<Incoming, BackChannelError>> + 'c>>;

    fn call(&'c self, request: Outgoing) -> Self::Future {
        Box::pin(BackChannel::call(self, request))
    }
}

#[cfg(test)]
mod tests {
    use super::allowed;

    #[test]
    fn only_https_or_loopback_http_is_called() {
        for ok in [
            "https://accounts.google.com/.well-known/openid-configuration",
            "http://127.0.0.1:9000/token",
            "http://localhost:8080/jwks",
            "http://[::1]:80/x",
        ] {
            assert!(allowed(&url::Url::parse(ok).unwrap()), "{ok}");
        }
        for bad in [
            "http://example.com/token",
            "http://10.0.0.1/token",
            "ftp://example.com/x",
            "https://user:pass@example.com/x",
            "file:///etc/passwd",
            "http://localhost.evil.example/x",
        ] {
            assert!(!allowed(&url::Url::parse(bad).unwrap()), "{bad}");
        }
    }
}
