//! An OpenID Provider as upstream, through the `openidconnect` crate: its discovery document
//! and keys (OpenID Connect Discovery 1.0 §4: the document's `issuer` must equal the configured
//! one, §4.3), the authorization request with `state`, `nonce` and PKCE S256 (RFC 7636), the
//! code exchanged at its token endpoint, and the ID token checked (Core 1.0 §3.1.3.7:
//! signature against the provider's JWK Set, `iss`, `aud`, `azp`, `exp`, `nonce`); UserInfo
//! (Core §5.3, its `sub` must be the ID token's) when the ID token lacks the email.

use openidconnect::core::{
    CoreAuthDisplay, CoreAuthenticationFlow, CoreClaimName, CoreClaimType, CoreClient,
    CoreClientAuthMethod, CoreGrantType, CoreJsonWebKey, CoreJweContentEncryptionAlgorithm,
    CoreJweKeyManagementAlgorithm, CoreResponseMode, CoreResponseType, CoreSubjectIdentifierType,
    CoreUserInfoClaims,
};
use openidconnect::{
    AdditionalProviderMetadata, AuthType, AuthorizationCode, ClaimsVerificationError, ClientId,
    ClientSecret, CsrfToken, EndpointMaybeSet, EndpointNotSet, EndpointSet, IssuerUrl, Nonce,
    OAuth2TokenResponse, PkceCodeChallenge, PkceCodeVerifier, ProviderMetadata, RedirectUrl, Scope,
    SignatureVerificationError, TokenResponse,
};
use serde::{Deserialize, Serialize};

use super::backchannel::BackChannel;
use super::{Failure, bounded_profile};
use crate::domain::upstream::UpstreamProfile;

/// What discovery documents may say beyond the core set that we act on.
#[derive(Clone, Debug, Default, Deserialize, Serialize)]
pub struct Extra {
    /// RFC 9207 §3: the provider sends `iss` in every authorization response.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub authorization_response_iss_parameter_supported: Option<bool>,
}

impl AdditionalProviderMetadata for Extra {}

pub type Metadata = ProviderMetadata<
    Extra,
    CoreAuthDisplay,
    CoreClientAuthMethod,
    CoreClaimName,
    CoreClaimType,
    CoreGrantType,
    CoreJweContentEncryptionAlgorithm,
    CoreJweKeyManagementAlgorithm,
    CoreJsonWebKey,
    CoreResponseMode,
    CoreResponseType,
    CoreSubjectIdentifierType,
>;

type Client = CoreClient<
    EndpointSet,      // authorization
    EndpointNotSet,   // device authorization
    EndpointNotSet,   // introspection
    EndpointNotSet,   // revocation
    EndpointMaybeSet, // token
    EndpointMaybeSet, // userinfo
>;

/// Fetches and checks a provider's discovery document and keys.
pub async fn discover(http: &BackChannel, issuer: &str) -> Result<Metadata, Failure> {
    let issuer = IssuerUrl::new(issuer.to_owned())
        .map_err(|e| Failure::BadAnswer(format!("issuer: {e}")))?;
    Metadata::discover_async(issuer, http)
        .await
        .map_err(|e| match e {
            openidconnect::DiscoveryError::Request(b) => b.into(),
            // The crate checks the document's issuer against ours (Discovery §4.3).
            openidconnect::DiscoveryError::Validation(v) => Failure::Mixup(v),
            other => Failure::BadAnswer(format!("discovery: {other}")),
        })
}

/// The client for one provider: its id and secret, our callback, and the token endpoint's
/// authentication: `client_secret_basic` unless the provider lists only `client_secret_post`
/// (Discovery §3 `token_endpoint_auth_methods_supported`; its default is basic).
pub fn client(
    meta: &Metadata,
    client_id: &str,
    secret: String,
    redirect: &str,
) -> Result<Client, Failure> {
    let redirect = RedirectUrl::new(redirect.to_owned())
        .map_err(|e| Failure::BadAnswer(format!("redirect uri: {e}")))?;
    let post_only = meta
        .token_endpoint_auth_methods_supported()
        .is_some_and(|m| {
            !m.contains(&CoreClientAuthMethod::ClientSecretBasic)
                && m.contains(&CoreClientAuthMethod::ClientSecretPost)
        });
    let mut c = CoreClient::from_provider_metadata(
        meta.clone(),
        ClientId::new(client_id.to_owned()),
        Some(ClientSecret::new(secret)),
    )
    .set_redirect_uri(redirect);
    if post_only {
        c = c.set_auth_type(AuthType::RequestBody);
    }
    Ok(c)
}

/// The authorization request's URL.
pub fn authorize_url(
    client: &Client,
    scope: &str,
    state: String,
    nonce: String,
    verifier: &str,
) -> String {
    let challenge =
        PkceCodeChallenge::from_code_verifier_sha256(&PkceCodeVerifier::new(verifier.to_owned()));
    let mut req = client.authorize_url(
        CoreAuthenticationFlow::AuthorizationCode,
        move || CsrfToken::new(state),
        move || Nonce::new(nonce),
    );
    // `openid` is added by the crate.
    for s in scope.split(' ').filter(|s| !s.is_empty() && *s != "openid") {
        req = req.add_scope(Scope::new(s.to_owned()));
    }
    let (url, _, _) = req.set_pkce_challenge(challenge).url();
    url.to_string()
}

/// The code exchanged and the ID token checked; UserInfo when the ID token has no email.
/// `Err(Failure::UnknownKey)` when the ID token is signed by a key not in `meta`'s set (the
/// caller fetches the keys again once).
pub async fn finish(
    client: &Client,
    http: &BackChannel,
    code: String,
    verifier: String,
    nonce: &str,
) -> Result<Finished, Failure> {
    let tokens = client
        .exchange_code(AuthorizationCode::new(code))
        .map_err(|e| Failure::BadAnswer(format!("token endpoint: {e}")))?
        .set_pkce_verifier(PkceCodeVerifier::new(verifier))
        .request_async(http)
        .await
        .map_err(|e| super::token_failure(e, false))?;
    let Some(id_token) = tokens.id_token() else {
        return Err(Failure::BadAnswer(
            "no ID token in the token response".into(),
        ));
    };
    Ok(Finished {
        id_token: id_token.clone(),
        access_token: tokens.access_token().secret().clone(),
        nonce: nonce.to_owned(),
    })
}

/// A token response whose ID token is still to be checked (against keys that may be fetched
/// again).
pub struct Finished {
    id_token: openidconnect::core::CoreIdToken,
    access_token: String,
    nonce: String,
}

impl Finished {
    /// Checks the ID token against `client`'s keys; then UserInfo when the email is missing.
    pub async fn profile(
        &self,
        client: &Client,
        http: &BackChannel,
    ) -> Result<UpstreamProfile, Failure> {
        let verifier = client.id_token_verifier();
        let claims = self
            .id_token
            .claims(&verifier, &Nonce::new(self.nonce.clone()))
            .map_err(|e| match e {
                ClaimsVerificationError::SignatureVerification(
                    SignatureVerificationError::NoMatchingKey,
                ) => Failure::UnknownKey,
                ClaimsVerificationError::InvalidNonce(_) => {
                    Failure::BadAnswer("ID token: the nonce is not ours".into())
                }
                ClaimsVerificationError::InvalidIssuer(_) => {
                    Failure::Mixup("ID token: iss is not the provider's".into())
                }
                ClaimsVerificationError::SignatureVerification(s) => {
                    Failure::BadAnswer(format!("ID token signature: {s}"))
                }
                other => Failure::BadAnswer(format!("ID token: {other}")),
            })?;
        let subject = claims.subject().as_str().to_owned();
        let mut profile = UpstreamProfile {
            subject: subject.clone(),
            email: claims.email().map(|e| e.as_str().to_owned()),
            email_verified: claims.email_verified().unwrap_or(false),
            name: claims
                .name()
                .and_then(|n| n.get(None))
                .map(|n| n.as_str().to_owned()),
        };
        if profile.email.is_none()
            && let Ok(req) = client.user_info(
                openidconnect::AccessToken::new(self.access_token.clone()),
                Some(claims.subject().clone()),
            )
        {
            let info: CoreUserInfoClaims = req
                .request_async(http)
                .await
                // Not the error's text: it can carry the answer's body.
                .map_err(|_| Failure::BadAnswer("UserInfo: refused or unreadable".into()))?;
            profile.email = info.email().map(|e| e.as_str().to_owned());
            profile.email_verified = info.email_verified().unwrap_or(false);
            if profile.name.is_none() {
                profile.name = info
                    .name()
                    .and_then(|n| n.get(None))
                    .map(|n| n.as_str().to_owned());
            }
        }
        bounded_profile(profile)
    }
}
