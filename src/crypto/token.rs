//! Bearer secrets: 256-bit random values with a recognisable prefix, stored only as SHA-256.
//!
//! A leaked database therefore holds no live credential, and a leaked value is recognisable by
//! its prefix (as secret scanners expect). Client secrets are compared as SHA-256 hashes in
//! constant time: they are 256-bit random, so a slow password hash would buy nothing.

use base64::Engine;
use base64::engine::general_purpose::URL_SAFE_NO_PAD;
use rand::RngCore;
use sha2::{Digest, Sha256};
use subtle::ConstantTimeEq;

/// Prefix of each kind of secret Castellan hands out.
pub mod prefix {
    pub const CLIENT_SECRET: &str = "cas_cs_";
    pub const AUTHORIZATION_CODE: &str = "cas_ac_";
    pub const REFRESH_TOKEN: &str = "cas_rt_";
    pub const SESSION: &str = "cas_ss_";
    /// A sign-in waiting for its second factor.
    pub const PENDING_SIGN_IN: &str = "cas_ps_";
    /// Binds a sign-in through an upstream provider to the browser that began it.
    pub const UPSTREAM_BINDING: &str = "cas_ub_";
    /// Finds an upstream identity waiting for its account to be proven.
    pub const UPSTREAM_LINK: &str = "cas_ul_";
    pub const EMAIL_TOKEN: &str = "cas_et_";
    pub const CSRF: &str = "cas_cf_";
    /// RFC 7592 §1.2: the bearer token of a client's configuration endpoint.
    pub const REGISTRATION_ACCESS_TOKEN: &str = "cas_ra_";
}

/// A new secret: `prefix` followed by 256 random bits in base64url.
pub fn generate(prefix: &str) -> String {
    let mut bytes = [0u8; 32];
    rand::rngs::OsRng.fill_bytes(&mut bytes);
    let mut out = String::with_capacity(prefix.len() + 43);
    out.push_str(prefix);
    URL_SAFE_NO_PAD.encode_string(bytes, &mut out);
    out
}

/// 128 random bits in base64url, for identifiers that must not be guessable (jti, sid).
pub fn random_id() -> String {
    let mut bytes = [0u8; 16];
    rand::rngs::OsRng.fill_bytes(&mut bytes);
    URL_SAFE_NO_PAD.encode(bytes)
}

/// The at-rest form of a secret: lower-case hex SHA-256.
pub fn hash(secret: &str) -> String {
    hex(&Sha256::digest(secret.as_bytes()))
}

/// Compares a presented secret with a stored hash in constant time.
pub fn verify(presented: &str, stored_hash: &str) -> bool {
    let h = hash(presented);
    h.as_bytes().ct_eq(stored_hash.as_bytes()).into()
}

/// Constant-time equality of two byte strings (of possibly different lengths).
pub fn constant_time_eq(a: &[u8], b: &[u8]) -> bool {
    a.ct_eq(b).into()
}

fn hex(bytes: &[u8]) -> String {
    const DIGITS: &[u8; 16] = b"0123456789abcdef";
    let mut s = String::with_capacity(bytes.len() * 2);
    for b in bytes {
        s.push(DIGITS[(b >> 4) as usize] as char);
        s.push(DIGITS[(b & 0xf) as usize] as char);
    }
    s
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn secrets_are_prefixed_random_and_verify_by_hash() {
        let a = generate(prefix::CLIENT_SECRET);
        let b = generate(prefix::CLIENT_SECRET);
        assert!(a.starts_with("cas_cs_") && a.len() == 7 + 43);
        assert_ne!(a, b);
        let h = hash(&a);
        assert_eq!(h.len(), 64);
        assert!(verify(&a, &h));
        assert!(!verify(&b, &h));
        assert_eq!(
            hash("abc"),
            "ba7816bf8f01cfea414140de5dae2223b00361a396177a9cb410ff61f20015ad"
        );
    }
}
