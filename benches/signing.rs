//! RS256 signing throughput: Castellan's cached aws-lc-rs signer against `jsonwebtoken::encode`,
//! which parses the DER key again on every call. Run with `cargo bench --bench signing`.
//! A plain timing loop (no criterion) keeps the build small; it prints signatures per second
//! on one core for each path.

use std::time::{Duration, Instant};

use castellan::crypto::{jwt, keys};

fn rate(label: &str, mut f: impl FnMut()) -> f64 {
    for _ in 0..50 {
        f();
    }
    let start = Instant::now();
    let mut n = 0u64;
    while start.elapsed() < Duration::from_secs(3) {
        f();
        n += 1;
    }
    let per_sec = n as f64 / start.elapsed().as_secs_f64();
    println!("{label:<44} {per_sec:>8.0} signatures/s");
    per_sec
}

fn main() {
    let key = match keys::generate_rsa(2048) {
        Ok(k) => k,
        Err(e) => {
            eprintln!("cannot generate a key: {e}");
            std::process::exit(1);
        }
    };
    let claims = serde_json::json!({
        "iss": "http://localhost:8080", "sub": "0b0f1c2e-6d1a-4b7e-9c55-0f3f2c6b9a10",
        "aud": "client", "iat": 1_800_000_000, "exp": 1_800_000_900, "scope": "openid profile",
    });
    let signer = match keys::Signer::from_pkcs8(&key.kid, &key.pkcs8_der) {
        Ok(s) => s,
        Err(e) => {
            eprintln!("cannot load the key: {e}");
            std::process::exit(1);
        }
    };
    let cached = rate("castellan Signer (cached aws-lc-rs key pair)", || {
        std::hint::black_box(jwt::sign(&signer, jwt::TYP_JWT, &claims).ok());
    });
    // jsonwebtoken's EncodingKey keeps the DER bytes; `encode` parses them on every call.
    let pkcs1 = pkcs1_der(&key.pkcs8_der);
    let enc = jsonwebtoken::EncodingKey::from_rsa_der(&pkcs1);
    let header = jsonwebtoken::Header::new(jsonwebtoken::Algorithm::RS256);
    let reparsed = rate("jsonwebtoken::encode (re-parses the key)", || {
        std::hint::black_box(jsonwebtoken::encode(&header, &claims, &enc).ok());
    });
    println!("speed-up: {:.2}x", cached / reparsed);
}

/// jsonwebtoken wants PKCS#1 DER for RSA; convert from our PKCS#8.
fn pkcs1_der(pkcs8: &[u8]) -> Vec<u8> {
    use rsa::pkcs1::EncodeRsaPrivateKey;
    use rsa::pkcs8::DecodePrivateKey;
    rsa::RsaPrivateKey::from_pkcs8_der(pkcs8)
        .ok()
        .and_then(|k| k.to_pkcs1_der().ok())
        .map(|d| d.as_bytes().to_vec())
        .unwrap_or_default()
}
