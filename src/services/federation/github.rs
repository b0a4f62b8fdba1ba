//! GitHub as upstream: OAuth 2.0 through the `oauth2` crate, then its REST API for who the
//! person is. GitHub is not an OpenID Provider: there is no ID token, so the identity is what
//! its API says for the access token.
//!
//! - Authorization: `GET {github_url}/login/oauth/authorize` with `client_id`, `redirect_uri`,
//!   `scope`, `state` and PKCE S256 (GitHub's "Authorizing OAuth apps" documentation).
//! - Token: `POST {github_url}/login/oauth/access_token`, the client's id and secret in the
//!   body, `Accept: application/json`. GitHub answers a bad code with HTTP 200 and an `error`
//!   member: that is not a token response, and fails as a bad answer.
//! - `GET {github_api_url}/user`: the numeric `id` is the subject (a login can be renamed and
//!   reused; the id cannot), `name` or else `login` the name.
//! - `GET {github_api_url}/user/emails`: the email is the one marked `primary` *and*
//!   `verified`; without one, there is no email (an unverified address is never used to find
//!   or make an account).

use oauth2::basic::BasicClient;
use oauth2::{
    AuthType, AuthUrl, AuthorizationCode, ClientId, ClientSecret, CsrfToken, PkceCodeChallenge,
    PkceCodeVerifier, RedirectUrl, Scope, TokenResponse, TokenUrl,
};
use serde::Deserialize;

use super::backchannel::BackChannel;
use super::{Failure, bounded_profile};
use crate::config::UpstreamSettings;
use crate::domain::upstream::{Upstream, UpstreamProfile};

fn endpoints(s: &UpstreamSettings) -> Result<(AuthUrl, TokenUrl), Failure> {
    let base = s.github_url.trim_end_matches('/');
    let auth = AuthUrl::new(format!("{base}/login/oauth/authorize"))
        .map_err(|e| Failure::BadAnswer(format!("github url: {e}")))?;
    let token = TokenUrl::new(format!("{base}/login/oauth/access_token"))
        .map_err(|e| Failure::BadAnswer(format!("github url: {e}")))?;
    Ok((auth, token))
}

/// The authorization request's URL.
pub fn authorize_url(
    s: &UpstreamSettings,
    u: &Upstream,
    redirect: &str,
    state: String,
    verifier: &str,
) -> Result<String, Failure> {
    let (auth, _) = endpoints(s)?;
    let redirect = RedirectUrl::new(redirect.to_owned())
        .map_err(|e| Failure::BadAnswer(format!("redirect uri: {e}")))?;
    let client = BasicClient::new(ClientId::new(u.client_id.clone()))
        .set_auth_uri(auth)
        .set_redirect_uri(redirect);
    let challenge =
        PkceCodeChallenge::from_code_verifier_sha256(&PkceCodeVerifier::new(verifier.to_owned()));
    let mut req = client.authorize_url(move || CsrfToken::new(state));
    for scope in u.scope.split(' ').filter(|s| !s.is_empty()) {
        req = req.add_scope(Scope::new(scope.to_owned()));
    }
    let (url, _) = req.set_pkce_challenge(challenge).url();
    Ok(url.to_string())
}

#[derive(Deserialize)]
struct GithubUser {
    id: u64,
    login: String,
    name: Option<String>,
}

#[derive(Deserialize)]
struct GithubEmail {
    email: String,
    primary: bool,
    verified: bool,
}

/// The code exchanged, then who the token belongs to.
pub async fn finish(
    s: &UpstreamSettings,
    http: &BackChannel,
    u: &Upstream,
    secret: &str,
    redirect: &str,
    code: String,
    verifier: String,
) -> Result<UpstreamProfile, Failure> {
    let (auth, token) = endpoints(s)?;
    let redirect = RedirectUrl::new(redirect.to_owned())
        .map_err(|e| Failure::BadAnswer(format!("redirect uri: {e}")))?;
    let client = BasicClient::new(ClientId::new(u.client_id.clone()))
        .set_client_secret(ClientSecret::new(secret.to_owned()))
        .set_auth_uri(auth)
        .set_token_uri(token)
        .set_redirect_uri(redirect)
        .set_auth_type(AuthType::RequestBody);
    let tokens = client
        .exchange_code(AuthorizationCode::new(code))
        .set_pkce_verifier(PkceCodeVerifier::new(verifier))
        .request_async(http)
        .await
        .map_err(|e| super::token_failure(e, true))?;
    let access = tokens.access_token().secret();
    let api = s.github_api_url.trim_end_matches('/');
    let user: GithubUser = get_json(http, &format!("{api}/user"), access).await?;
    let emails: Vec<GithubEmail> = get_json(http, &format!("{api}/user/emails"), access).await?;
    let email = emails
        .into_iter()
        .find(|e| e.primary && e.verified)
        .map(|e| e.email);
    bounded_profile(UpstreamProfile {
        subject: user.id.to_string(),
        email_verified: email.is_some(),
        email,
        name: user
            .name
            .filter(|n| !n.trim().is_empty())
            .or(Some(user.login)),
    })
}

/// One call to GitHub's REST API with the person's token (GitHub's "Getting started with the
/// REST API": `Accept: application/vnd.github+json`, the API version header).
async fn get_json<T: serde::de::DeserializeOwned>(
    http: &BackChannel,
    url: &str,
    access_token: &str,
) -> Result<T, Failure> {
    let request = openidconnect::http::Request::builder()
        .method("GET")
        .uri(url)
        .header("Accept", "application/vnd.github+json")
        .header("X-GitHub-Api-Version", "2022-11-28")
        .header("Authorization", format!("Bearer {access_token}"))
        .body(Vec::new())
        .map_err(|e| Failure::BadAnswer(format!("github request: {e}")))?;
    let response = http.call(request).await.map_err(Failure::from)?;
    if !response.status().is_success() {
        return Err(Failure::ProviderError(format!(
            "github api: status {}",
            response.status().as_u16()
        )));
    }
    // Where it failed, never what it read.
    serde_json::from_slice(response.body()).map_err(|e| {
        Failure::BadAnswer(format!(
            "github api: unreadable at line {} column {}",
            e.line(),
            e.column()
        ))
    })
}
