//! The discovery document (OpenID Connect Discovery 1.0 §3, RFC 8414 §2): required fields,
//! the same content at both well-known paths, caching headers, and an independent RP reads it.

use crate::harness::spawn_app;

#[tokio::test]
async fn discovery_has_every_required_field_and_matches_the_issuer() {
    let app = spawn_app().await;
    let res = app.get("/.well-known/openid-configuration").await;
    assert_eq!(res.status(), 200);
    assert!(
        res.headers()["content-type"]
            .to_str()
            .unwrap_or_default()
            .starts_with("application/json")
    );
    let doc: serde_json::Value = res.json().await.expect("json");
    assert_eq!(doc["issuer"], app.address.as_str());
    for field in [
        "authorization_endpoint",
        "token_endpoint",
        "jwks_uri",
        "response_types_supported",
        "subject_types_supported",
        "id_token_signing_alg_values_supported",
    ] {
        assert!(!doc[field].is_null(), "{field} missing");
    }
    assert_eq!(doc["jwks_uri"], app.url("/oauth2/jwks").as_str());
    assert_eq!(
        doc["authorization_endpoint"],
        app.url("/oauth2/authorize").as_str()
    );
    assert_eq!(doc["token_endpoint"], app.url("/oauth2/token").as_str());
    assert_eq!(
        doc["id_token_signing_alg_values_supported"],
        serde_json::json!(["RS256"])
    );
    assert_eq!(doc["response_types_supported"], serde_json::json!(["code"]));
    assert_eq!(
        doc["code_challenge_methods_supported"],
        serde_json::json!(["S256"])
    );
    // Advertised only when enabled (off by default).
    assert!(doc.get("registration_endpoint").is_none());
}

#[tokio::test]
async fn discovery_advertises_only_the_prompt_values_and_claims_the_server_supports() {
    let app = spawn_app().await;
    let doc: serde_json::Value = app
        .get("/.well-known/openid-configuration")
        .await
        .json()
        .await
        .expect("json");
    // `select_account` is accepted (as a fresh login: oauth_errors tests it) but there is no
    // account chooser, so it is not advertised.
    assert_eq!(
        doc["prompt_values_supported"],
        serde_json::json!(["none", "login", "consent"])
    );
    let claims: Vec<&str> = doc["claims_supported"]
        .as_array()
        .expect("claims_supported is a list")
        .iter()
        .filter_map(serde_json::Value::as_str)
        .collect();
    // Every ID token carries `acr` (issue 17); the three levels of CONTRACT.md, lowest first.
    assert!(claims.contains(&"acr"), "{claims:?}");
    assert_eq!(
        doc["acr_values_supported"],
        serde_json::json!(["urn:castellan:acr:1fa", "urn:castellan:acr:mfa", "phr"])
    );
    for claim in [
        "sub",
        "iss",
        "auth_time",
        "nonce",
        "amr",
        "sid",
        "email",
        "roles",
    ] {
        assert!(claims.contains(&claim), "{claim} missing from {claims:?}");
    }
}

#[tokio::test]
async fn rfc8414_metadata_has_the_same_content() {
    let app = spawn_app().await;
    let a: serde_json::Value = app
        .get("/.well-known/openid-configuration")
        .await
        .json()
        .await
        .expect("json");
    let b: serde_json::Value = app
        .get("/.well-known/oauth-authorization-server")
        .await
        .json()
        .await
        .expect("json");
    assert_eq!(a, b);
}

#[tokio::test]
async fn discovery_and_jwks_are_cacheable_and_answer_304_to_a_matching_etag() {
    let app = spawn_app().await;
    for path in ["/.well-known/openid-configuration", "/oauth2/jwks"] {
        let res = app.get(path).await;
        assert_eq!(res.status(), 200);
        let cache = res.headers()["cache-control"]
            .to_str()
            .unwrap_or_default()
            .to_owned();
        assert!(cache.contains("max-age"), "{path}: {cache}");
        let etag = res.headers()["etag"].clone();
        let again = app
            .client
            .get(app.url(path))
            .header("if-none-match", etag.clone())
            .send()
            .await
            .expect("request");
        assert_eq!(again.status(), 304, "{path}");
        assert_eq!(again.headers()["etag"], etag);
        let other = app
            .client
            .get(app.url(path))
            .header("if-none-match", "\"nope\"")
            .send()
            .await
            .expect("request");
        assert_eq!(other.status(), 200, "{path}");
    }
}

#[tokio::test]
async fn an_independent_relying_party_library_reads_the_discovery_document() {
    use openidconnect::IssuerUrl;
    use openidconnect::core::CoreProviderMetadata;
    let app = spawn_app().await;
    let http = openidconnect::reqwest::Client::builder()
        .redirect(openidconnect::reqwest::redirect::Policy::none())
        .build()
        .expect("client");
    let issuer = IssuerUrl::new(app.address.clone()).expect("issuer");
    let meta = CoreProviderMetadata::discover_async(issuer, &http)
        .await
        .expect("discovery");
    assert_eq!(meta.issuer().as_str(), app.address);
    assert_eq!(meta.jwks().keys().len(), 1);
}
