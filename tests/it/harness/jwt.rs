//! JWT helpers for tests: read a token's header and claims without verifying, and build forged
//! tokens by hand (tampered payload, `alg: none`, HS256 keyed with public material, a foreign
//! RSA key) — no JWT library, so the forgeries are exactly what they claim to be.

use base64::Engine;
use sha2::{Digest, Sha256};

pub fn b64(bytes: &[u8]) -> String {
    base64::engine::general_purpose::URL_SAFE_NO_PAD.encode(bytes)
}

pub fn unb64(s: &str) -> Vec<u8> {
    base64::engine::general_purpose::URL_SAFE_NO_PAD
        .decode(s.trim_end_matches('='))
        .unwrap_or_else(|e| panic!("not base64url ({e}): {s}"))
}

fn part(jwt: &str, i: usize) -> serde_json::Value {
    let p = jwt
        .split('.')
        .nth(i)
        .unwrap_or_else(|| panic!("not a JWT: {jwt}"));
    serde_json::from_slice(&unb64(p))
        .unwrap_or_else(|e| panic!("JWT part {i} is not JSON ({e}): {jwt}"))
}

/// The decoded JOSE header (unverified).
pub fn header(jwt: &str) -> serde_json::Value {
    assert_eq!(jwt.split('.').count(), 3, "a JWS in compact form: {jwt}");
    part(jwt, 0)
}

/// The decoded claims (unverified).
pub fn claims(jwt: &str) -> serde_json::Value {
    assert_eq!(jwt.split('.').count(), 3, "a JWS in compact form: {jwt}");
    part(jwt, 1)
}

/// `header.claims` encoded, the JWS signing input.
pub fn signing_input(header: &serde_json::Value, claims: &serde_json::Value) -> String {
    format!(
        "{}.{}",
        b64(&serde_json::to_vec(header).expect("json")),
        b64(&serde_json::to_vec(claims).expect("json"))
    )
}

/// The same token with its claims changed and the original signature kept.
pub fn with_claims(jwt: &str, change: impl FnOnce(&mut serde_json::Value)) -> String {
    let parts: Vec<&str> = jwt.split('.').collect();
    let mut c = claims(jwt);
    change(&mut c);
    format!(
        "{}.{}.{}",
        parts[0],
        b64(&serde_json::to_vec(&c).expect("json")),
        parts[2]
    )
}

/// An unsecured JWT (`alg: none`, empty signature).
pub fn unsigned(header: &serde_json::Value, claims: &serde_json::Value) -> String {
    format!("{}.", signing_input(header, claims))
}

/// HMAC-SHA256 (RFC 2104 with a 64-byte block).
pub fn hmac_sha256(key: &[u8], message: &[u8]) -> [u8; 32] {
    let mut k = [0u8; 64];
    if key.len() > 64 {
        k[..32].copy_from_slice(&Sha256::digest(key));
    } else {
        k[..key.len()].copy_from_slice(key);
    }
    let ipad: Vec<u8> = k.iter().map(|b| b ^ 0x36).collect();
    let opad: Vec<u8> = k.iter().map(|b| b ^ 0x5c).collect();
    let inner = Sha256::new()
        .chain_update(&ipad)
        .chain_update(message)
        .finalize();
    Sha256::new()
        .chain_update(&opad)
        .chain_update(inner)
        .finalize()
        .into()
}

/// A JWS signed with HS256 under `key`.
pub fn sign_hs256(header: &serde_json::Value, claims: &serde_json::Value, key: &[u8]) -> String {
    let input = signing_input(header, claims);
    let mac = hmac_sha256(key, input.as_bytes());
    format!("{input}.{}", b64(&mac))
}

/// A JWS signed with RS256 under a private key the test made itself.
pub fn sign_rs256(
    key: &rsa::RsaPrivateKey,
    header: &serde_json::Value,
    claims: &serde_json::Value,
) -> String {
    // DigestInfo prefix for SHA-256 (RFC 8017 §9.2, note 1).
    const PREFIX: [u8; 19] = [
        0x30, 0x31, 0x30, 0x0d, 0x06, 0x09, 0x60, 0x86, 0x48, 0x01, 0x65, 0x03, 0x04, 0x02, 0x01,
        0x05, 0x00, 0x04, 0x20,
    ];
    let input = signing_input(header, claims);
    let mut digest_info = PREFIX.to_vec();
    digest_info.extend_from_slice(&Sha256::digest(input.as_bytes()));
    let sig = key
        .sign(rsa::Pkcs1v15Sign::new_unprefixed(), &digest_info)
        .expect("rsa sign");
    format!("{input}.{}", b64(&sig))
}

/// A fresh 2048-bit RSA key the server has never seen.
pub fn foreign_rsa_key() -> rsa::RsaPrivateKey {
    rsa::RsaPrivateKey::new(&mut rand::thread_rng(), 2048).expect("rsa keygen")
}

/// The public key of a served RSA JWK, rebuilt from `n` and `e`.
pub fn public_key_of_jwk(jwk: &serde_json::Value) -> rsa::RsaPublicKey {
    let n = unb64(jwk["n"].as_str().expect("n"));
    let e = unb64(jwk["e"].as_str().expect("e"));
    rsa::RsaPublicKey::new(
        rsa::BigUint::from_bytes_be(&n),
        rsa::BigUint::from_bytes_be(&e),
    )
    .expect("a valid RSA public key")
}

/// PEM armour around DER, 64 characters a line, with a trailing newline.
pub fn pem(label: &str, der: &[u8]) -> String {
    let body = base64::engine::general_purpose::STANDARD.encode(der);
    let mut out = format!("-----BEGIN {label}-----\n");
    for chunk in body.as_bytes().chunks(64) {
        out.push_str(std::str::from_utf8(chunk).expect("ascii"));
        out.push('\n');
    }
    out.push_str(&format!("-----END {label}-----\n"));
    out
}

/// The public-key encodings an algorithm-confusion attacker would try as an HMAC secret.
pub fn public_key_hmac_secrets(jwk: &serde_json::Value) -> Vec<(&'static str, Vec<u8>)> {
    use rsa::pkcs1::EncodeRsaPublicKey;
    use rsa::pkcs8::EncodePublicKey;
    let public = public_key_of_jwk(jwk);
    let spki = public.to_public_key_der().expect("spki der");
    let pkcs1 = public.to_pkcs1_der().expect("pkcs1 der");
    let spki_pem = pem("PUBLIC KEY", spki.as_bytes());
    let pkcs1_pem = pem("RSA PUBLIC KEY", pkcs1.as_bytes());
    let n = jwk["n"].as_str().expect("n");
    vec![
        ("n bytes", unb64(n)),
        ("n base64url text", n.as_bytes().to_vec()),
        ("the JWK as JSON", serde_json::to_vec(jwk).expect("json")),
        ("SPKI PEM", spki_pem.clone().into_bytes()),
        (
            "SPKI PEM without trailing newline",
            spki_pem.trim_end().as_bytes().to_vec(),
        ),
        ("PKCS#1 PEM", pkcs1_pem.into_bytes()),
        ("SPKI DER", spki.as_bytes().to_vec()),
    ]
}

#[test]
fn hmac_sha256_matches_rfc_4231() {
    fn hex(b: &[u8]) -> String {
        b.iter().map(|x| format!("{x:02x}")).collect()
    }
    // Test case 2.
    assert_eq!(
        hex(&hmac_sha256(b"Jefe", b"what do ya want for nothing?")),
        "5bdcc146bf60754e6a042426089575c75a003f089d2739839dec58b964ec3843"
    );
    // Test case 6: a key longer than the block is hashed first.
    assert_eq!(
        hex(&hmac_sha256(
            &[0xaa; 131],
            b"Test Using Larger Than Block-Size Key - Hash Key First"
        )),
        "60e431591ee0b67f0d8a26aacbf5b77f8e0bc6213728c5140546040f0ee37f54"
    );
}

#[test]
fn a_hand_made_rs256_signature_verifies() {
    let key = foreign_rsa_key();
    let jwt = sign_rs256(
        &key,
        &serde_json::json!({"alg": "RS256", "typ": "JWT"}),
        &serde_json::json!({"sub": "x"}),
    );
    let parts: Vec<&str> = jwt.split('.').collect();
    let input = format!("{}.{}", parts[0], parts[1]);
    let mut digest_info = vec![
        0x30, 0x31, 0x30, 0x0d, 0x06, 0x09, 0x60, 0x86, 0x48, 0x01, 0x65, 0x03, 0x04, 0x02, 0x01,
        0x05, 0x00, 0x04, 0x20,
    ];
    digest_info.extend_from_slice(&Sha256::digest(input.as_bytes()));
    let public = rsa::RsaPublicKey::from(&key);
    public
        .verify(
            rsa::Pkcs1v15Sign::new_unprefixed(),
            &digest_info,
            &unb64(parts[2]),
        )
        .expect("verifies");
    assert_eq!(claims(&jwt)["sub"], "x");
}
