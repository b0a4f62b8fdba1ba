//! Proof Key for Code Exchange (RFC 7636), S256 only.

use sha2::Digest;

use crate::crypto::token;

/// RFC 7636 §4.1 and §4.2: a `code_verifier` or `code_challenge` is 43 to 128 characters of the
/// unreserved set `[A-Z] / [a-z] / [0-9] / "-" / "." / "_" / "~"` (an S256 challenge, base64url
/// without padding, is 43 of them).
pub fn well_formed(s: &str) -> bool {
    (43..=128).contains(&s.len())
        && s.bytes()
            .all(|b| b.is_ascii_alphanumeric() || matches!(b, b'-' | b'.' | b'_' | b'~'))
}

/// RFC 7636 §4.6: BASE64URL(SHA256(ASCII(code_verifier))) == code_challenge, compared in
/// constant time.
pub fn verifier_matches(verifier: &str, challenge: &str) -> bool {
    use base64::Engine;
    let digest = sha2::Sha256::digest(verifier.as_bytes());
    let computed = base64::engine::general_purpose::URL_SAFE_NO_PAD.encode(digest);
    token::constant_time_eq(computed.as_bytes(), challenge.as_bytes())
}

#[cfg(test)]
mod tests {
    use super::*;

    /// RFC 7636 Appendix B.
    #[test]
    fn the_appendix_b_example_matches_and_shapes_are_checked() {
        let verifier = "dBjftJeZ4CVP-mB92K27uhbUJU1p1r_wW1gFWFOEjXk";
        let challenge = "E9Melhoa2OwvFrEMTJguCHaoeK1t8URWbuGJSstw-cM";
        assert!(well_formed(verifier) && well_formed(challenge));
        assert!(verifier_matches(verifier, challenge));
        assert!(!verifier_matches(challenge, verifier));
        assert!(!well_formed(&"a".repeat(42)));
        assert!(!well_formed(&"a".repeat(129)));
        assert!(!well_formed(&format!("{}+", "a".repeat(42))));
    }
}
