//! Compact JWS (RFC 7515 §7.1) signing with the cached [`Signer`], and verification pinned
//! to RS256 through `jsonwebtoken` (RFC 8725 §3.1: never trust the token's own `alg`).

use base64::Engine;
use base64::engine::general_purpose::URL_SAFE_NO_PAD;
use serde::Serialize;
use serde::de::DeserializeOwned;

use super::keys::{KeyError, Signer};

/// `typ` of an ID token / generic JWT.
pub const TYP_JWT: &str = "JWT";
/// `typ` of an access token (RFC 9068 §2.1).
pub const TYP_AT_JWT: &str = "at+jwt";

#[derive(Debug, thiserror::Error)]
pub enum JwtError {
    #[error("cannot serialise claims: {0}")]
    Claims(#[from] serde_json::Error),
    #[error(transparent)]
    Key(#[from] KeyError),
}

#[derive(Serialize)]
struct Header<'a> {
    alg: &'static str,
    typ: &'a str,
    kid: &'a str,
}

/// Signs `claims` as an RS256 JWS with `kid` and `typ` in the protected header.
pub fn sign<T: Serialize>(signer: &Signer, typ: &str, claims: &T) -> Result<String, JwtError> {
    let header = serde_json::to_vec(&Header {
        alg: "RS256",
        typ,
        kid: signer.kid(),
    })?;
    let payload = serde_json::to_vec(claims)?;
    let mut out = String::with_capacity((header.len() + payload.len()) * 4 / 3 + 360);
    URL_SAFE_NO_PAD.encode_string(&header, &mut out);
    out.push('.');
    URL_SAFE_NO_PAD.encode_string(&payload, &mut out);
    let sig = signer.sign(out.as_bytes())?;
    out.push('.');
    URL_SAFE_NO_PAD.encode_string(sig, &mut out);
    Ok(out)
}

/// Why a presented token was refused. Only the kind is shown to the caller.
#[derive(Debug, thiserror::Error)]
pub enum VerifyError {
    #[error("malformed token")]
    Malformed,
    #[error("unknown or missing key id")]
    UnknownKey,
    #[error("wrong token type")]
    WrongType,
    #[error("invalid token: {0}")]
    Invalid(String),
}

/// The verification keys of the published JWK Set, by kid.
pub struct Verifier {
    keys: std::collections::HashMap<String, jsonwebtoken::DecodingKey>,
}

impl std::fmt::Debug for Verifier {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.debug_list().entries(self.keys.keys()).finish()
    }
}

impl Verifier {
    pub fn new<'a>(
        jwks: impl IntoIterator<Item = &'a super::keys::PublicJwk>,
    ) -> Result<Self, KeyError> {
        let mut keys = std::collections::HashMap::new();
        for jwk in jwks {
            let key =
                jsonwebtoken::DecodingKey::from_rsa_components(&jwk.n, &jwk.e).map_err(|e| {
                    KeyError::Load {
                        kid: jwk.kid.clone(),
                        reason: e.to_string(),
                    }
                })?;
            keys.insert(jwk.kid.clone(), key);
        }
        Ok(Self { keys })
    }

    /// Verifies an RS256 JWT of type `typ` issued by `issuer`: the signature with the key named
    /// by `kid`, `alg` pinned to RS256, `exp` (no leeway beyond `leeway_secs`) and `iss`.
    pub fn verify<T: DeserializeOwned>(
        &self,
        token: &str,
        typ: &str,
        issuer: &str,
        now: i64,
        leeway_secs: u64,
    ) -> Result<T, VerifyError> {
        let header = jsonwebtoken::decode_header(token).map_err(|_| VerifyError::Malformed)?;
        // RFC 8725 §3.1: the algorithm is ours to choose, not the token's.
        if header.alg != jsonwebtoken::Algorithm::RS256 {
            return Err(VerifyError::Invalid("algorithm not allowed".into()));
        }
        if !header.typ.as_deref().is_some_and(|t| {
            t.eq_ignore_ascii_case(typ) || t.eq_ignore_ascii_case(&format!("application/{typ}"))
        }) {
            return Err(VerifyError::WrongType);
        }
        let kid = header.kid.ok_or(VerifyError::UnknownKey)?;
        let key = self.keys.get(&kid).ok_or(VerifyError::UnknownKey)?;
        let mut v = jsonwebtoken::Validation::new(jsonwebtoken::Algorithm::RS256);
        v.set_issuer(&[issuer]);
        v.validate_aud = false;
        v.validate_exp = false;
        v.set_required_spec_claims(&["exp", "iss"]);
        let data = jsonwebtoken::decode::<serde_json::Value>(token, key, &v)
            .map_err(|e| VerifyError::Invalid(e.to_string()))?;
        // Expiry against our clock (RFC 7519 §4.1.4), so tests can move time.
        let exp = data
            .claims
            .get("exp")
            .and_then(serde_json::Value::as_i64)
            .ok_or(VerifyError::Malformed)?;
        if now > exp.saturating_add(leeway_secs as i64) {
            return Err(VerifyError::Invalid("expired".into()));
        }
        serde_json::from_value(data.claims).map_err(|_| VerifyError::Malformed)
    }
}

#[cfg(test)]
mod tests {
    use super::super::keys::generate_rsa;
    use super::*;

    #[test]
    fn signed_tokens_verify_and_tampering_fails() {
        let k = generate_rsa(2048).unwrap();
        let signer = Signer::from_pkcs8(&k.kid, &k.pkcs8_der).unwrap();
        let verifier = Verifier::new([&k.jwk]).unwrap();
        let claims = serde_json::json!({"iss": "https://i", "sub": "u", "exp": 2000});
        let t = sign(&signer, TYP_AT_JWT, &claims).unwrap();
        let got: serde_json::Value = verifier
            .verify(&t, TYP_AT_JWT, "https://i", 1000, 0)
            .unwrap();
        assert_eq!(got["sub"], "u");
        assert!(matches!(
            verifier.verify::<serde_json::Value>(&t, TYP_JWT, "https://i", 1000, 0),
            Err(VerifyError::WrongType)
        ));
        assert!(
            verifier
                .verify::<serde_json::Value>(&t, TYP_AT_JWT, "https://other", 1000, 0)
                .is_err()
        );
        assert!(
            verifier
                .verify::<serde_json::Value>(&t, TYP_AT_JWT, "https://i", 2001, 0)
                .is_err()
        );
        let mut parts: Vec<&str> = t.split('.').collect();
        let forged = URL_SAFE_NO_PAD.encode(br#"{"iss":"https://i","sub":"admin","exp":2000}"#);
        parts[1] = &forged;
        assert!(
            verifier
                .verify::<serde_json::Value>(&parts.join("."), TYP_AT_JWT, "https://i", 1000, 0)
                .is_err()
        );
    }

    #[test]
    fn alg_none_and_hs256_confusion_are_refused() {
        let k = generate_rsa(2048).unwrap();
        let verifier = Verifier::new([&k.jwk]).unwrap();
        let body = URL_SAFE_NO_PAD.encode(br#"{"iss":"https://i","sub":"u","exp":2000}"#);
        let none_header = URL_SAFE_NO_PAD.encode(format!(
            r#"{{"alg":"none","typ":"at+jwt","kid":"{}"}}"#,
            k.kid
        ));
        let none_token = format!("{none_header}.{body}.");
        assert!(
            verifier
                .verify::<serde_json::Value>(&none_token, TYP_AT_JWT, "https://i", 1000, 0)
                .is_err()
        );
        // HS256 keyed with the public key's bytes (the classic confusion attack).
        let hs = jsonwebtoken::encode(
            &jsonwebtoken::Header {
                alg: jsonwebtoken::Algorithm::HS256,
                kid: Some(k.kid.clone()),
                typ: Some("at+jwt".into()),
                ..Default::default()
            },
            &serde_json::json!({"iss":"https://i","sub":"u","exp":2000}),
            &jsonwebtoken::EncodingKey::from_secret(k.jwk.n.as_bytes()),
        )
        .unwrap();
        assert!(
            verifier
                .verify::<serde_json::Value>(&hs, TYP_AT_JWT, "https://i", 1000, 0)
                .is_err()
        );
    }
}

/// Property tests (proptest): verifying arbitrary text, tokens with arbitrary headers and
/// payloads, and a signed token with any one character changed never panics and never passes.
#[cfg(test)]
mod properties {
    use std::sync::OnceLock;

    use super::super::keys::{GeneratedKey, generate_rsa};
    use super::*;
    use proptest::prelude::*;

    const ISSUER: &str = "https://i";

    /// One key for every case (RSA generation is slow).
    fn key() -> &'static GeneratedKey {
        static KEY: OnceLock<GeneratedKey> = OnceLock::new();
        KEY.get_or_init(|| generate_rsa(2048).expect("an RSA key"))
    }

    fn verify(token: &str) -> Result<serde_json::Value, VerifyError> {
        let verifier = Verifier::new([&key().jwk]).expect("a verifier");
        verifier.verify(token, TYP_AT_JWT, ISSUER, 1000, 0)
    }

    fn b64(bytes: &[u8]) -> String {
        URL_SAFE_NO_PAD.encode(bytes)
    }

    /// A protected header: our own kid and typ with any `alg`, or arbitrary JSON, or bytes.
    fn header() -> impl Strategy<Value = Vec<u8>> {
        let alg = prop_oneof![
            prop::sample::select(vec![
                "RS256", "none", "HS256", "PS256", "ES256", "rs256", ""
            ])
            .prop_map(str::to_owned),
            ".{0,8}",
        ];
        prop_oneof![
            alg.prop_map(|alg| serde_json::to_vec(&serde_json::json!({
                "alg": alg, "typ": TYP_AT_JWT, "kid": key().kid,
            }))
            .unwrap_or_default()),
            ".{0,60}".prop_map(String::into_bytes),
            prop::collection::vec(any::<u8>(), 0..60),
        ]
    }

    fn payload() -> impl Strategy<Value = Vec<u8>> {
        prop_oneof![
            Just(br#"{"iss":"https://i","sub":"u","exp":2000}"#.to_vec()),
            ".{0,60}".prop_map(String::into_bytes),
            prop::collection::vec(any::<u8>(), 0..60),
        ]
    }

    /// A signature segment: empty, random bytes, or a real signature over something else.
    fn signature() -> impl Strategy<Value = String> {
        prop_oneof![
            Just(String::new()),
            prop::collection::vec(any::<u8>(), 0..300).prop_map(|b| b64(&b)),
            "[A-Za-z0-9_-]{0,400}",
        ]
    }

    proptest! {
        #![proptest_config(ProptestConfig::with_cases(256))]

        #[test]
        fn arbitrary_text_never_verifies(token in ".{0,200}") {
            prop_assert!(verify(&token).is_err());
        }

        #[test]
        fn a_token_with_any_header_payload_and_foreign_signature_never_verifies(
            h in header(),
            p in payload(),
            s in signature(),
            dots in prop::sample::select(vec![".", "..", ""]),
        ) {
            let token = format!("{}.{}{dots}{s}", b64(&h), b64(&p));
            prop_assert!(verify(&token).is_err());
        }

        #[test]
        fn a_signed_token_with_one_character_changed_never_verifies(
            at in any::<prop::sample::Index>(),
            with in prop_oneof![
                prop::sample::select(
                    "ABCDEFGHIJKLMNOPQRSTUVWXYZabcdefghijklmnopqrstuvwxyz0123456789-_."
                        .chars()
                        .collect::<Vec<_>>()
                ),
                any::<char>(),
            ],
        ) {
            let signer = Signer::from_pkcs8(&key().kid, &key().pkcs8_der).expect("a signer");
            let claims = serde_json::json!({"iss": ISSUER, "sub": "u", "exp": 2000});
            let token = sign(&signer, TYP_AT_JWT, &claims).expect("signed");
            prop_assert!(verify(&token).is_ok());
            let mut chars: Vec<char> = token.chars().collect();
            let i = at.index(chars.len());
            prop_assume!(chars[i] != with);
            chars[i] = with;
            let changed: String = chars.into_iter().collect();
            prop_assert!(verify(&changed).is_err(), "{changed}");
        }
    }
}
