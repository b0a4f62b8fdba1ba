//! ID token rules (OpenID Connect Core 1.0 §2, §3.1.3.6, §5.4): which claims an ID token carries,
//! `at_hash`, the profile claims a scope releases (also UserInfo's), and what an `id_token_hint`
//! presented back to us tells (RP-Initiated Logout 1.0 §2, Core §3.1.2.1).
//!
//! Pure functions: the signing is `services::tokens`'.

use base64::Engine;
use base64::engine::general_purpose::URL_SAFE_NO_PAD;
use serde::Deserialize;
use sha2::Digest;

use crate::domain::{Acr, ScopeSet, UnixTime, User};

/// What an ID token says about one authentication of one user for one client.
pub struct IdTokenFacts<'a> {
    pub issuer: &'a str,
    pub client_id: &'a str,
    pub user: &'a User,
    pub scope: &'a ScopeSet,
    /// Core §2: when the user authenticated.
    pub auth_time: UnixTime,
    /// RFC 8176 methods of that authentication.
    pub amr: &'a [String],
    /// The browser session (OpenID Connect Front-Channel/Back-Channel Logout `sid`).
    pub sid: Option<&'a str>,
    /// Core §3.1.2.1: echoed from the authorization request; never on a refresh (§12.2).
    pub nonce: Option<&'a str>,
    /// The roles claim (name, value) when the `roles` scope was granted.
    pub roles: Option<&'a (&'a str, serde_json::Value)>,
    pub ttl_secs: u64,
}

/// The ID token's claims (Core §2), all but `at_hash`, which needs the signed access token
/// ([`with_at_hash`]).
pub fn claims(f: &IdTokenFacts<'_>, now: UnixTime) -> serde_json::Value {
    let mut claims = serde_json::json!({
        "iss": f.issuer,
        "sub": f.user.id.as_str(),
        "aud": f.client_id,
        // Core §2: `azp` names the party the token was issued to.
        "azp": f.client_id,
        "iat": now.secs(),
        "exp": now.plus(f.ttl_secs as i64).secs(),
        "auth_time": f.auth_time.secs(),
    });
    if let Some(obj) = claims.as_object_mut() {
        if let Some(nonce) = f.nonce {
            obj.insert("nonce".into(), nonce.into());
        }
        if let Some(sid) = f.sid {
            obj.insert("sid".into(), sid.into());
        }
        if !f.amr.is_empty() {
            obj.insert("amr".into(), f.amr.into());
            // Core §2: `acr`, the level the authentication reached (CONTRACT.md's levels),
            // follows from its methods.
            obj.insert("acr".into(), Acr::of(f.amr).as_str().into());
        }
        for (k, v) in profile_claims(f.user, f.scope) {
            obj.insert(k.into(), v);
        }
        if let Some((name, roles)) = f.roles {
            obj.insert((*name).to_owned(), roles.clone());
        }
    }
    claims
}

/// Core §3.1.3.6: `at_hash` is the base64url of the left half of the SHA-256 of the access
/// token's ASCII octets (RS256).
pub fn at_hash(access_token: &str) -> String {
    let digest = sha2::Sha256::digest(access_token.as_bytes());
    URL_SAFE_NO_PAD.encode(&digest[..16])
}

/// Adds `at_hash` of `access_token` to the claims.
pub fn with_at_hash(mut claims: serde_json::Value, access_token: &str) -> serde_json::Value {
    if let Some(obj) = claims.as_object_mut() {
        obj.insert("at_hash".into(), at_hash(access_token).into());
    }
    claims
}

/// Claims released by scope (Core §5.4): `profile` and `email`. The ID token and UserInfo
/// release the same ones.
pub fn profile_claims(user: &User, scope: &ScopeSet) -> Vec<(&'static str, serde_json::Value)> {
    let mut out = Vec::new();
    if scope.contains("profile") {
        if let Some(name) = &user.name {
            out.push(("name", name.clone().into()));
        }
        out.push(("preferred_username", user.email.clone().into()));
        out.push(("updated_at", user.updated_at.secs().into()));
    }
    if scope.contains("email") {
        out.push(("email", user.email.clone().into()));
        out.push(("email_verified", user.email_verified.into()));
    }
    out
}

/// Claims of an ID token presented back to us (`id_token_hint`): only what logout and the
/// authorization endpoint need.
#[derive(Debug, Deserialize)]
pub struct IdTokenHint {
    pub sub: String,
    pub aud: serde_json::Value,
    #[serde(default)]
    pub sid: Option<String>,
}

impl IdTokenHint {
    /// The client the ID token was issued to (`aud`, a string or a one-element array).
    pub fn client_id(&self) -> Option<&str> {
        match &self.aud {
            serde_json::Value::String(s) => Some(s),
            serde_json::Value::Array(a) => a.first().and_then(|v| v.as_str()),
            _ => None,
        }
    }
}

/// RP-Initiated Logout 1.0 §2: an expired `id_token_hint` is still accepted (the OP SHOULD
/// accept it); this is how far back.
pub const HINT_MAX_AGE_SECS: u64 = 10 * 365 * 86_400;

#[cfg(test)]
mod tests {
    use super::*;

    /// Core §3.1.3.6, checked against the example in the Implicit flow section (A.4 of the
    /// errata set uses the same construction): left 128 bits of SHA-256, base64url.
    #[test]
    fn at_hash_is_the_left_half_of_the_sha256_in_base64url() {
        let h = at_hash("jHkWEdUXMU1BwAsC4vtUsZwnNvTIxEl0z9K3vx5KF0Y");
        assert_eq!(h.len(), 22);
        assert_eq!(h, at_hash("jHkWEdUXMU1BwAsC4vtUsZwnNvTIxEl0z9K3vx5KF0Y"));
        assert_ne!(h, at_hash("another token"));
    }

    #[test]
    fn a_hint_names_its_client_by_a_string_or_a_one_element_array() {
        let h: IdTokenHint =
            serde_json::from_value(serde_json::json!({"sub": "u", "aud": ["c1"]})).unwrap();
        assert_eq!(h.client_id(), Some("c1"));
        let h: IdTokenHint =
            serde_json::from_value(serde_json::json!({"sub": "u", "aud": "c2"})).unwrap();
        assert_eq!(h.client_id(), Some("c2"));
    }
}
