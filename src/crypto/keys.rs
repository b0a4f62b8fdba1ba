//! RSA signing keys: generation (the `rsa` crate), JWK export (RFC 7517/7518 §6.3.1),
//! key ids as JWK thumbprints (RFC 7638), and the cached signer used on the hot path.
//!
//! The pure-Rust `rsa` crate is used only to generate keys and export their public part;
//! signing goes through an `aws-lc-rs` key pair parsed once and kept in memory, which is
//! several times faster than re-parsing the DER key on every signature.

use std::fmt;

use aws_lc_rs::rand::SystemRandom;
use aws_lc_rs::signature::{RSA_PKCS1_SHA256, RsaKeyPair};
use base64::Engine;
use base64::engine::general_purpose::URL_SAFE_NO_PAD;
use rsa::pkcs8::{DecodePrivateKey, EncodePrivateKey};
use rsa::traits::PublicKeyParts;
use serde::{Deserialize, Serialize};
use sha2::{Digest, Sha256};

#[derive(Debug, thiserror::Error)]
pub enum KeyError {
    #[error("RSA key generation failed: {0}")]
    Generate(String),
    #[error("stored signing key {kid} cannot be loaded: {reason}")]
    Load { kid: String, reason: String },
    #[error("signing failed")]
    Sign,
}

/// The public part of an RSA signing key as published in the JWK Set (RFC 7517 §4, RFC 7518 §6.3.1).
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
pub struct PublicJwk {
    pub kty: String,
    #[serde(rename = "use")]
    pub use_: String,
    pub alg: String,
    pub kid: String,
    pub n: String,
    pub e: String,
}

/// A freshly generated key, ready to store.
pub struct GeneratedKey {
    pub kid: String,
    pub pkcs8_der: Vec<u8>,
    pub jwk: PublicJwk,
}

impl fmt::Debug for GeneratedKey {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        write!(f, "GeneratedKey(kid={})", self.kid)
    }
}

/// Generates an RSA key of `bits` bits (e = 65537). Slow: call it off the async workers.
pub fn generate_rsa(bits: usize) -> Result<GeneratedKey, KeyError> {
    let key = rsa::RsaPrivateKey::new(&mut rand::rngs::OsRng, bits)
        .map_err(|e| KeyError::Generate(e.to_string()))?;
    let der = key
        .to_pkcs8_der()
        .map_err(|e| KeyError::Generate(e.to_string()))?;
    let jwk = public_jwk(&key);
    Ok(GeneratedKey {
        kid: jwk.kid.clone(),
        pkcs8_der: der.as_bytes().to_vec(),
        jwk,
    })
}

/// The public JWK of a stored PKCS#8 key (used to check a stored key against its JWK).
pub fn public_jwk_of_der(kid: &str, der: &[u8]) -> Result<PublicJwk, KeyError> {
    let key = rsa::RsaPrivateKey::from_pkcs8_der(der).map_err(|e| KeyError::Load {
        kid: kid.to_owned(),
        reason: e.to_string(),
    })?;
    Ok(public_jwk(&key))
}

fn public_jwk(key: &rsa::RsaPrivateKey) -> PublicJwk {
    let n = URL_SAFE_NO_PAD.encode(key.n().to_bytes_be());
    let e = URL_SAFE_NO_PAD.encode(key.e().to_bytes_be());
    let kid = thumbprint(&n, &e);
    PublicJwk {
        kty: "RSA".into(),
        use_: "sig".into(),
        alg: "RS256".into(),
        kid,
        n,
        e,
    }
}

/// RFC 7638 §3: SHA-256 over the required members in lexicographic order, no whitespace.
pub fn thumbprint(n: &str, e: &str) -> String {
    let canonical = format!(r#"{{"e":"{e}","kty":"RSA","n":"{n}"}}"#);
    URL_SAFE_NO_PAD.encode(Sha256::digest(canonical.as_bytes()))
}

/// An RS256 signer holding a parsed key pair. `Debug` prints the kid only.
pub struct Signer {
    kid: String,
    key: RsaKeyPair,
    rng: SystemRandom,
}

impl fmt::Debug for Signer {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        write!(f, "Signer(kid={})", self.kid)
    }
}

impl Signer {
    pub fn from_pkcs8(kid: &str, der: &[u8]) -> Result<Self, KeyError> {
        let key = RsaKeyPair::from_pkcs8(der).map_err(|e| KeyError::Load {
            kid: kid.to_owned(),
            reason: e.to_string(),
        })?;
        Ok(Self {
            kid: kid.to_owned(),
            key,
            rng: SystemRandom::new(),
        })
    }

    pub fn kid(&self) -> &str {
        &self.kid
    }

    /// RSASSA-PKCS1-v1_5 with SHA-256 (RFC 7518 §3.3) over `message`.
    pub fn sign(&self, message: &[u8]) -> Result<Vec<u8>, KeyError> {
        let mut sig = vec![0u8; self.key.public_modulus_len()];
        self.key
            .sign(&RSA_PKCS1_SHA256, &self.rng, message, &mut sig)
            .map_err(|_| KeyError::Sign)?;
        Ok(sig)
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn generated_key_round_trips_and_kid_is_its_thumbprint() {
        let k = generate_rsa(2048).unwrap();
        assert_eq!(k.jwk.kid, thumbprint(&k.jwk.n, &k.jwk.e));
        assert_eq!(k.jwk.e, "AQAB");
        assert_eq!(public_jwk_of_der(&k.kid, &k.pkcs8_der).unwrap(), k.jwk);
        let s = Signer::from_pkcs8(&k.kid, &k.pkcs8_der).unwrap();
        assert_eq!(s.sign(b"x").unwrap().len(), 256);
        assert_eq!(format!("{s:?}"), format!("Signer(kid={})", k.kid));
    }

    #[test]
    fn rfc7638_example_thumbprint() {
        // RFC 7638 §3.1.
        let n = "0vx7agoebGcQSuuPiLJXZptN9nndrQmbXEps2aiAFbWhM78LhWx4cbbfAAtVT86zwu1RK7aPFFxuhDR1L6tSoc_BJECPebWKRXjBZCiFV4n3oknjhMstn64tZ_2W-5JsGY4Hc5n9yBXArwl93lqt7_RN5w6Cf0h4QyQ5v-65YGjQR0_FDW2QvzqY368QQMicAtaSqzs8KJZgnYb9c7d0zgdAZHzu6qMQvRL5hajrn1n91CbOpbISD08qNLyrdkt-bFTWhAI4vMQFh6WeZu0fM4lFd2NcRwr3XPksINHaQ-G_xBniIqbw0Ls1jF44-csFCur-kEgU8awapJzKnqDKgw";
        assert_eq!(
            thumbprint(n, "AQAB"),
            "NzbLsXh8uDCcd-6MNwXF4W_7noWXFZAfHkxZsRGC9Xs"
        );
    }
}
