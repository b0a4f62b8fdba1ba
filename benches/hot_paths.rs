//! Criterion micro-benchmarks of the hot paths, so that a regression shows:
//! RS256 signing with the cached key (and `jsonwebtoken::encode` for comparison), JWT
//! verification, building a token response (access token + ID token + JSON), counting a
//! request in the metrics registry (what every request pays), and argon2id password
//! verification at the production parameters.
//!
//! `cargo bench --bench hot_paths` (add `-- --quick` for a fast pass).

use criterion::{Criterion, criterion_group, criterion_main};
use std::hint::black_box;

use castellan::crypto::{jwt, keys, password};

fn claims() -> serde_json::Value {
    serde_json::json!({
        "iss": "http://localhost:8080", "sub": "0b0f1c2e-6d1a-4b7e-9c55-0f3f2c6b9a10", "aud": "client",
        "client_id": "client", "scope": "openid profile email", "jti": "grant.abcdefghijklmnop",
        "iat": 1_800_000_000i64, "exp": 4_000_000_000i64, "auth_time": 1_800_000_000i64,
    })
}

fn bench(c: &mut Criterion) {
    let Ok(key) = keys::generate_rsa(2048) else {
        eprintln!("cannot generate a key");
        return;
    };
    let Ok(signer) = keys::Signer::from_pkcs8(&key.kid, &key.pkcs8_der) else {
        eprintln!("cannot load the key");
        return;
    };
    let claims = claims();

    c.bench_function("rs256_sign_cached_key", |b| {
        b.iter(|| jwt::sign(&signer, jwt::TYP_AT_JWT, black_box(&claims)))
    });

    let pkcs1 = {
        use rsa::pkcs1::EncodeRsaPrivateKey;
        use rsa::pkcs8::DecodePrivateKey;
        rsa::RsaPrivateKey::from_pkcs8_der(&key.pkcs8_der)
            .ok()
            .and_then(|k| k.to_pkcs1_der().ok())
            .map(|d| d.as_bytes().to_vec())
            .unwrap_or_default()
    };
    let enc = jsonwebtoken::EncodingKey::from_rsa_der(&pkcs1);
    let header = jsonwebtoken::Header::new(jsonwebtoken::Algorithm::RS256);
    c.bench_function("rs256_sign_jsonwebtoken_encode", |b| {
        b.iter(|| jsonwebtoken::encode(&header, black_box(&claims), &enc))
    });

    let Ok(verifier) = jwt::Verifier::new([&key.jwk]) else {
        eprintln!("cannot build the verifier");
        return;
    };
    let Ok(token) = jwt::sign(&signer, jwt::TYP_AT_JWT, &claims) else {
        eprintln!("cannot sign");
        return;
    };
    c.bench_function("jwt_verify_rs256", |b| {
        b.iter(|| {
            verifier.verify::<serde_json::Value>(
                black_box(&token),
                jwt::TYP_AT_JWT,
                "http://localhost:8080",
                1_800_000_100,
                0,
            )
        })
    });

    // What the token endpoint does for a code exchange, minus the database: an access token, an
    // ID token with at_hash, and the JSON body.
    c.bench_function("token_response_build", |b| {
        b.iter(|| {
            let at = jwt::sign(&signer, jwt::TYP_AT_JWT, &claims).unwrap_or_default();
            let id_claims = serde_json::json!({
                "iss": "http://localhost:8080", "sub": "0b0f1c2e", "aud": "client", "azp": "client",
                "iat": 1_800_000_000i64, "exp": 1_800_000_900i64, "auth_time": 1_800_000_000i64,
                "nonce": "n-0S6_WzA2Mj", "at_hash": castellan::oidc::id_token::at_hash(&at), "sid": "sid",
            });
            let id = jwt::sign(&signer, jwt::TYP_JWT, &id_claims).unwrap_or_default();
            serde_json::to_vec(&serde_json::json!({
                "access_token": at, "token_type": "Bearer", "expires_in": 900, "id_token": id,
                "refresh_token": castellan::crypto::token::generate("cas_rt_"), "scope": "openid profile email",
            }))
        })
    });

    // The per-request cost of `/metrics`: one request counted on a route already seen.
    let metrics = castellan::services::metrics::Metrics::new(0);
    let elapsed = std::time::Duration::from_micros(40);
    c.bench_function("metrics_observe_request", |b| {
        b.iter(|| {
            metrics.observe_request(
                black_box(Some("/.well-known/openid-configuration")),
                black_box("GET"),
                200,
                elapsed,
            )
        })
    });

    let Ok(hasher) = password::Hasher::new(19_456, 2, 1) else {
        eprintln!("cannot build the hasher");
        return;
    };
    let Ok(phc) = hasher.hash("correct horse battery staple") else {
        eprintln!("cannot hash");
        return;
    };
    let mut slow = c.benchmark_group("argon2id");
    slow.sample_size(10);
    slow.bench_function("password_verify_m19456_t2_p1", |b| {
        b.iter(|| hasher.verify(black_box("correct horse battery staple"), &phc))
    });
    slow.finish();
}

criterion_group!(benches, bench);
criterion_main!(benches);
