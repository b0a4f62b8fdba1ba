//! The provider metadata (OpenID Connect Discovery 1.0 §3, RFC 8414 §2), built once at start-up
//! and served as pre-serialised bytes with an `ETag`.
//!
//! It advertises only what Castellan really supports.

use serde_json::json;

use crate::config::{RegistrationMode, Settings};
use crate::domain::Acr;
use crate::paths;

#[derive(Debug)]
pub struct Discovery {
    pub json: bytes::Bytes,
    pub etag: String,
}

impl Discovery {
    pub fn new(settings: &Settings) -> Self {
        let base = settings.base_url();
        let url = |p: &str| format!("{base}{p}");
        let mut doc = json!({
            // Discovery §3 / RFC 8414 §2: the issuer exactly as it appears in `iss`.
            "issuer": settings.server.issuer,
            "authorization_endpoint": url(paths::AUTHORIZE),
            "token_endpoint": url(paths::TOKEN),
            "userinfo_endpoint": url(paths::USERINFO),
            "jwks_uri": url(paths::JWKS),
            "revocation_endpoint": url(paths::REVOKE),
            "introspection_endpoint": url(paths::INTROSPECT),
            "end_session_endpoint": url(paths::LOGOUT),
            "scopes_supported": ["openid", "profile", "email", "offline_access", "roles"],
            "response_types_supported": ["code"],
            "response_modes_supported": ["query", "form_post"],
            "grant_types_supported": ["authorization_code", "refresh_token", "client_credentials"],
            "subject_types_supported": ["public"],
            "id_token_signing_alg_values_supported": ["RS256"],
            "token_endpoint_auth_methods_supported": ["client_secret_basic", "client_secret_post", "none"],
            "revocation_endpoint_auth_methods_supported": ["client_secret_basic", "client_secret_post", "none"],
            "introspection_endpoint_auth_methods_supported": ["client_secret_basic", "client_secret_post", "none"],
            "code_challenge_methods_supported": ["S256"],
            // `select_account` is accepted but not advertised: there is no account chooser, it
            // only demands a fresh login like `login` (oauth::authorize, OpenID Connect Core
            // 1.0 §3.1.2.1 lets the server do what it can).
            "prompt_values_supported": ["none", "login", "consent"],
            // Discovery §3: the claims we can supply.
            "claims_supported": [
                "sub", "iss", "aud", "exp", "iat", "auth_time", "nonce", "amr", "acr", "azp", "at_hash", "sid",
                "name", "preferred_username", "updated_at", "email", "email_verified",
                settings.oauth.roles_claim
            ],
            // Discovery §3: the levels a session can reach (passkeys' `phr` is not built yet).
            "acr_values_supported": Acr::REACHABLE.iter().map(|a| a.as_str()).collect::<Vec<_>>(),
            "claims_parameter_supported": false,
            "request_parameter_supported": false,
            "request_uri_parameter_supported": false,
            "authorization_response_iss_parameter_supported": true,
            "ui_locales_supported": ["en"],
        });
        // RFC 8414 §2 / Discovery §3: advertised only when dynamic registration is on.
        if settings.dynamic_registration.registration_mode() != RegistrationMode::Off {
            doc["registration_endpoint"] = json!(url(paths::REGISTER_CLIENT));
        }
        let json = serde_json::to_vec(&doc).unwrap_or_default();
        let etag = format!(
            "\"{}\"",
            &crate::crypto::token::hash(&String::from_utf8_lossy(&json))[..32]
        );
        Self {
            json: json.into(),
            etag,
        }
    }
}
