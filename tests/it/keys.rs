//! The JWK Set and the signing keys: a JWT signed by the server verifies against the served
//! JWKS with an independent implementation (the `openidconnect` crate); rotation keeps old
//! keys published until their tokens have expired.

use openidconnect::core::{CoreIdToken, CoreIdTokenVerifier, CoreJsonWebKeySet};
use openidconnect::{ClientId, IssuerUrl, JsonWebKeySetUrl, Nonce};

use crate::harness::{TestApp, json_out, spawn_app_with};

fn http() -> openidconnect::reqwest::Client {
    openidconnect::reqwest::Client::builder()
        .redirect(openidconnect::reqwest::redirect::Policy::none())
        .build()
        .expect("client")
}

/// Signs an ID-token-shaped JWT with the server's current key, as the token endpoint will.
async fn server_signed_jwt(app: &TestApp, aud: &str) -> String {
    use castellan::clock::Clock;
    let now = app.clock.now();
    let set = app.state.core.tokens.signing_keys().await;
    let claims = serde_json::json!({
        "iss": app.address, "sub": "user-1", "aud": aud, "iat": now, "exp": now + 300,
    });
    castellan::crypto::jwt::sign(&set.signer, castellan::crypto::jwt::TYP_JWT, &claims)
        .expect("sign")
}

async fn verify_with_openidconnect(app: &TestApp, jwt: &str, aud: &str) -> Result<String, String> {
    let jwks_url = JsonWebKeySetUrl::new(app.url("/oauth2/jwks")).expect("url");
    let jwks = CoreJsonWebKeySet::fetch_async(&jwks_url, &http())
        .await
        .expect("fetch jwks");
    let verifier = CoreIdTokenVerifier::new_confidential_client(
        ClientId::new(aud.into()),
        openidconnect::ClientSecret::new("unused-for-rs256".into()),
        IssuerUrl::new(app.address.clone()).expect("issuer"),
        jwks,
    );
    let token: CoreIdToken = jwt.parse().map_err(|e| format!("parse: {e}"))?;
    token
        .claims(&verifier, |_: Option<&Nonce>| Ok(()))
        .map(|c| c.subject().to_string())
        .map_err(|e| e.to_string())
}

#[tokio::test]
async fn the_jwks_publishes_rsa_public_keys_only() {
    let app = spawn_app_with(|_| {}).await;
    let jwks: serde_json::Value = app.get("/oauth2/jwks").await.json().await.expect("json");
    let keys = jwks["keys"].as_array().expect("keys");
    assert_eq!(keys.len(), 1);
    let k = &keys[0];
    for f in ["kid", "kty", "alg", "use", "n", "e"] {
        assert!(k[f].is_string(), "{f} missing");
    }
    assert_eq!(k["kty"], "RSA");
    assert_eq!(k["alg"], "RS256");
    assert_eq!(k["use"], "sig");
    for private in ["d", "p", "q", "dp", "dq", "qi"] {
        assert!(
            k.get(private).is_none(),
            "private member {private} published"
        );
    }
    // 2048-bit modulus: 256 bytes, 342 base64url characters.
    assert_eq!(k["n"].as_str().map(str::len), Some(342));
}

#[tokio::test]
async fn a_server_signed_jwt_verifies_against_the_served_jwks_with_an_independent_library() {
    let app = spawn_app_with(|_| {}).await;
    let jwt = server_signed_jwt(&app, "rp-1").await;
    assert_eq!(
        verify_with_openidconnect(&app, &jwt, "rp-1").await,
        Ok("user-1".into())
    );
    // Tampering with the payload breaks the signature.
    let mut parts: Vec<String> = jwt.split('.').map(str::to_owned).collect();
    use base64::Engine;
    let b64 = base64::engine::general_purpose::URL_SAFE_NO_PAD;
    let mut claims: serde_json::Value =
        serde_json::from_slice(&b64.decode(&parts[1]).expect("b64")).expect("json");
    claims["sub"] = "admin".into();
    parts[1] = b64.encode(serde_json::to_vec(&claims).expect("json"));
    assert!(
        verify_with_openidconnect(&app, &parts.join("."), "rp-1")
            .await
            .is_err()
    );
    // Wrong audience is refused by the independent verifier too.
    assert!(verify_with_openidconnect(&app, &jwt, "rp-2").await.is_err());
}

#[tokio::test]
async fn after_rotation_old_tokens_still_verify_and_new_ones_use_the_new_key() {
    let app = spawn_app_with(|s| s.keys.reload_interval_ms = 10).await;
    let old_jwt = server_signed_jwt(&app, "rp").await;
    let old_kid = kid_of(&old_jwt);

    // The CLI rotates in another process; the running server picks the new key up.
    json_out(&app.castellan(&["keys", "rotate", "--json"]));
    tokio::time::sleep(std::time::Duration::from_millis(20)).await;
    let new_jwt = server_signed_jwt(&app, "rp").await;
    assert_ne!(
        kid_of(&new_jwt),
        old_kid,
        "the running server signs with the rotated key"
    );

    let jwks: serde_json::Value = app.get("/oauth2/jwks").await.json().await.expect("json");
    assert_eq!(jwks["keys"].as_array().map(Vec::len), Some(2));
    assert!(
        verify_with_openidconnect(&app, &old_jwt, "rp")
            .await
            .is_ok()
    );
    assert!(
        verify_with_openidconnect(&app, &new_jwt, "rp")
            .await
            .is_ok()
    );

    // Once every token the old key signed has expired, it leaves the JWK Set.
    let settings = &app.state.settings;
    let wait = settings
        .tokens
        .access_ttl_secs
        .max(settings.tokens.id_token_ttl_secs) as i64
        + 61;
    app.clock.advance_secs(wait);
    tokio::time::sleep(std::time::Duration::from_millis(20)).await;
    let _ = server_signed_jwt(&app, "rp").await; // a request after the deadline triggers the reload
    let jwks: serde_json::Value = app.get("/oauth2/jwks").await.json().await.expect("json");
    let kids: Vec<&str> = jwks["keys"]
        .as_array()
        .expect("keys")
        .iter()
        .filter_map(|k| k["kid"].as_str())
        .collect();
    assert_eq!(kids, vec![kid_of(&new_jwt).as_str()]);
    let listed = json_out(&app.castellan(&["keys", "list", "--json"]));
    assert!(
        listed
            .as_array()
            .expect("array")
            .iter()
            .any(|k| k["kid"] == old_kid.as_str() && k["state"] == "retired")
    );
}

fn kid_of(jwt: &str) -> String {
    use base64::Engine;
    let header = jwt.split('.').next().expect("header");
    let bytes = base64::engine::general_purpose::URL_SAFE_NO_PAD
        .decode(header)
        .expect("b64");
    let v: serde_json::Value = serde_json::from_slice(&bytes).expect("json");
    v["kid"].as_str().expect("kid").to_owned()
}
