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
    castellan::crypto::jwt::sign(
        set.signer_at(app.clock.time()),
        castellan::crypto::jwt::TYP_JWT,
        &claims,
    )
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

/// The kids of the served JWK Set.
async fn published(app: &TestApp) -> Vec<String> {
    let jwks: serde_json::Value = app.get("/oauth2/jwks").await.json().await.expect("json");
    jwks["keys"]
        .as_array()
        .expect("keys")
        .iter()
        .filter_map(|k| k["kid"].as_str().map(str::to_owned))
        .collect()
}

/// Polls the JWK Set until `wanted` says yes (a running server re-reads the keys every
/// `keys.reload_interval_ms`, in the background); panics after 5 s.
async fn published_until(app: &TestApp, wanted: impl Fn(&[String]) -> bool) -> Vec<String> {
    let started = std::time::Instant::now();
    loop {
        let kids = published(app).await;
        if wanted(&kids) {
            return kids;
        }
        assert!(
            started.elapsed() < std::time::Duration::from_secs(5),
            "the JWK Set stayed {kids:?}"
        );
        tokio::time::sleep(std::time::Duration::from_millis(20)).await;
    }
}

/// `keys list --json`: kid → state.
fn states(app: &TestApp) -> std::collections::HashMap<String, String> {
    json_out(&app.castellan(&["keys", "list", "--json"]))
        .as_array()
        .expect("array")
        .iter()
        .map(|k| {
            (
                k["kid"].as_str().unwrap_or_default().to_owned(),
                k["state"].as_str().unwrap_or_default().to_owned(),
            )
        })
        .collect()
}

/// One pass of the key lifecycle at the server's clock, as its background loop runs it.
async fn maintain(app: &TestApp) -> castellan::services::keys::Maintained {
    use castellan::clock::Clock;
    castellan::services::keys::maintain(&app.store, &app.state.settings, None, app.clock.time())
        .await
        .expect("maintain")
}

#[tokio::test]
async fn a_rotated_key_is_published_ahead_then_signs_and_the_old_one_leaves_when_its_tokens_expire()
{
    let app = spawn_app_with(|s| {
        s.keys.reload_interval_ms = 10;
        s.keys.rotate_every_secs = 0; // this test rotates by hand
    })
    .await;
    let old_jwt = server_signed_jwt(&app, "rp").await;
    let old_kid = kid_of(&old_jwt);

    // The CLI rotates in another process; the running server publishes the new key at once
    // but keeps signing with the old one for keys.publish_ahead_secs.
    let new_kid = json_out(&app.castellan(&["keys", "rotate", "--json"]))["kid"]
        .as_str()
        .expect("kid")
        .to_owned();
    published_until(&app, |kids| {
        kids.contains(&new_kid) && kids.contains(&old_kid)
    })
    .await;
    let still_old = server_signed_jwt(&app, "rp").await;
    assert_eq!(kid_of(&still_old), old_kid, "the new key does not sign yet");

    // Its time comes: every instance switches by itself, no write needed.
    let ahead = castellan::services::keys::publish_ahead(&app.state.settings);
    app.clock.advance_secs(ahead);
    tokio::time::sleep(std::time::Duration::from_millis(20)).await;
    let new_jwt = server_signed_jwt(&app, "rp").await;
    assert_eq!(
        kid_of(&new_jwt),
        new_kid,
        "the new key signs from its activate_at"
    );
    for jwt in [&old_jwt, &new_jwt] {
        assert!(verify_with_openidconnect(&app, jwt, "rp").await.is_ok());
    }
    // The lifecycle pass records it: the old key retires. (The server's own pass, under the
    // `keys` lease, may have done it first: what is checked is the state it leaves.)
    maintain(&app).await;
    let listed = states(&app);
    assert_eq!(listed[&old_kid], "retiring");
    assert_eq!(listed[&new_kid], "active");

    // Once every token the old key signed has expired, it leaves the JWK Set.
    let settings = &app.state.settings;
    let wait = settings
        .tokens
        .access_ttl_secs
        .max(settings.tokens.id_token_ttl_secs) as i64
        + 61;
    app.clock.advance_secs(wait);
    tokio::time::sleep(std::time::Duration::from_millis(20)).await;
    published_until(&app, |kids| kids == [new_kid.clone()]).await;
    maintain(&app).await;
    assert_eq!(states(&app)[&old_kid], "retired");
}

#[tokio::test]
async fn keys_rotate_on_their_own_and_each_is_published_ahead_of_signing() {
    // Short periods so that the test watches rotations happen in real time: a key signs for
    // 4 s, and the next is published at least 2 s before it signs.
    let app = spawn_app_with(|s| {
        s.keys.reload_interval_ms = 10;
        s.keys.rotate_every_secs = 4;
        s.keys.publish_ahead_secs = 2;
    })
    .await;
    let started = std::time::Instant::now();
    let mut first_published: std::collections::HashMap<String, std::time::Instant> =
        Default::default();
    let mut first_signed: Vec<(String, std::time::Instant)> = Vec::new();
    while started.elapsed() < std::time::Duration::from_secs(30) && first_signed.len() < 3 {
        let now = std::time::Instant::now();
        for kid in published(&app).await {
            first_published.entry(kid).or_insert(now);
        }
        let kid = kid_of(&server_signed_jwt(&app, "rp").await);
        if first_signed.last().is_none_or(|(k, _)| *k != kid) {
            first_signed.push((kid, now));
        }
        tokio::time::sleep(std::time::Duration::from_millis(100)).await;
    }
    assert!(
        first_signed.len() >= 3,
        "two rotations within 30 s: {first_signed:?}"
    );
    // Each key's schedule puts its signing at least publish_ahead_secs (2 s) after it was
    // stored, and the server's JWK Set showed it before the server signed with it. (How long
    // before, as seen by this loop, also depends on how quickly the loop's polls were answered
    // on a busy machine: the schedule is the guarantee.)
    let listed = json_out(&app.castellan(&["keys", "list", "--json"]));
    for (kid, signed_at) in &first_signed[1..] {
        let key = listed
            .as_array()
            .expect("array")
            .iter()
            .find(|k| k["kid"] == kid.as_str())
            .expect("listed");
        let scheduled = key["activate_at"].as_i64().expect("activate_at")
            - key["created_at"].as_i64().expect("created_at");
        assert!(
            scheduled >= 2,
            "key {kid} was scheduled {scheduled} s ahead"
        );
        let published_at = first_published[kid];
        assert!(
            published_at < *signed_at,
            "key {kid} signed before the JWK Set showed it"
        );
    }
    // The audit log says who made them.
    let audited = app
        .count("audit_events WHERE kind = 'key_rotated' AND actor = 'system'")
        .await;
    assert!(audited >= 2, "{audited} automatic rotations audited");
}

#[tokio::test]
async fn private_keys_are_stored_encrypted_and_a_missing_or_wrong_key_encryption_key_stops_start_up()
 {
    use base64::Engine;
    let kek = base64::engine::general_purpose::STANDARD.encode([7u8; 32]);
    let kek2 = kek.clone();
    let app = spawn_app_with(move |s| {
        s.keys.encryption_key = Some(castellan::config::Secret::new(kek2));
    })
    .await;
    // Stored sealed: no PKCS#8 (DER starts with 0x30) in the table.
    let rows = app.count("signing_keys").await;
    assert_eq!(rows, 1);
    let plain = app
        .count(if app.db.is_postgres() {
            "signing_keys WHERE get_byte(private_der, 0) = 48"
        } else {
            "signing_keys WHERE substr(hex(private_der), 1, 2) = '30'"
        })
        .await;
    assert_eq!(plain, 0, "a private key is stored in plaintext");
    let metrics = app.get("/metrics").await.text().await.unwrap_or_default();
    assert!(
        metrics.contains("\ncastellan_signing_keys_encrypted 1\n"),
        "{metrics}"
    );
    // And it signs.
    let jwt = server_signed_jwt(&app, "rp").await;
    assert!(verify_with_openidconnect(&app, &jwt, "rp").await.is_ok());

    // Without the key, or with another one, start-up stops with one clear line.
    let other = base64::engine::general_purpose::STANDARD.encode([8u8; 32]);
    for (env, expected) in [
        (
            vec![("CASTELLAN_KEY_ENCRYPTION_KEY", other.as_str())],
            "is encrypted under key-encryption key",
        ),
        (vec![], "no key-encryption key is configured"),
    ] {
        if env.is_empty() && !app.db.is_postgres() {
            // On SQLite the file beside the database is made and used: a wrong key, not none.
            continue;
        }
        let out = crate::harness::castellan_with(app.db.url(), &["migrate"], None, &env);
        let err = String::from_utf8_lossy(&out.stderr);
        assert!(!out.status.success(), "start-up must stop: {err}");
        assert!(err.contains(expected), "{err}");
        assert_eq!(err.trim().lines().count(), 1, "one line: {err}");
        assert!(
            !err.contains(&kek) && !err.contains(&other),
            "no key in the message"
        );
    }

    // keys rewrap moves every key to a new key-encryption key; the old one then stops working.
    let dir = tempfile::tempdir().expect("tempdir");
    let new_file = dir.path().join("new.kek");
    std::fs::write(&new_file, format!("{other}\n")).expect("write");
    let out = crate::harness::castellan_with(
        app.db.url(),
        &[
            "keys",
            "rewrap",
            "--new-key-file",
            new_file.to_str().expect("path"),
            "--json",
        ],
        None,
        &[("CASTELLAN_KEY_ENCRYPTION_KEY", kek.as_str())],
    );
    assert!(
        out.status.success(),
        "{}",
        String::from_utf8_lossy(&out.stderr)
    );
    assert_eq!(json_out(&out)["rewrapped"], 1);
    let out = crate::harness::castellan_with(
        app.db.url(),
        &["migrate"],
        None,
        &[("CASTELLAN_KEY_ENCRYPTION_KEY", kek.as_str())],
    );
    assert!(
        !out.status.success(),
        "the old key no longer opens the keys"
    );
    let new_file_s = new_file.to_str().expect("path").to_owned();
    let out = crate::harness::castellan_with(
        app.db.url(),
        &["migrate"],
        None,
        &[("CASTELLAN_KEY_ENCRYPTION_KEY_FILE", new_file_s.as_str())],
    );
    assert!(
        out.status.success(),
        "{}",
        String::from_utf8_lossy(&out.stderr)
    );
}

#[tokio::test]
async fn keys_stored_in_plaintext_are_encrypted_on_the_next_start_with_a_key_encryption_key() {
    use base64::Engine;
    let db = crate::harness::TestDb::new().await;
    // A database made before any key-encryption key: plaintext keys (PostgreSQL has no
    // default file; on SQLite a key given explicitly wins over the file).
    let kek = base64::engine::general_purpose::STANDARD.encode([9u8; 32]);
    if db.is_postgres() {
        let out = crate::harness::castellan_with(db.url(), &["migrate"], None, &[]);
        assert!(
            out.status.success(),
            "{}",
            String::from_utf8_lossy(&out.stderr)
        );
        let out = crate::harness::castellan_with(
            db.url(),
            &["migrate"],
            None,
            &[("CASTELLAN_KEY_ENCRYPTION_KEY", kek.as_str())],
        );
        assert!(
            out.status.success(),
            "{}",
            String::from_utf8_lossy(&out.stderr)
        );
        let again = crate::harness::castellan_with(db.url(), &["migrate"], None, &[]);
        assert!(
            String::from_utf8_lossy(&again.stderr).contains("no key-encryption key is configured"),
            "the key was encrypted by the start with a key-encryption key"
        );
    } else {
        let path = db
            .url()
            .trim_start_matches("sqlite://")
            .split('?')
            .next()
            .unwrap_or_default()
            .to_owned();
        let out = crate::harness::castellan_with(db.url(), &["migrate"], None, &[]);
        assert!(
            out.status.success(),
            "{}",
            String::from_utf8_lossy(&out.stderr)
        );
        let kek_file = format!("{path}.kek");
        let meta =
            std::fs::metadata(&kek_file).expect("a key-encryption key file beside the database");
        #[cfg(unix)]
        {
            use std::os::unix::fs::PermissionsExt;
            assert_eq!(
                meta.permissions().mode() & 0o777,
                0o600,
                "readable by its owner only"
            );
        }
        let text = std::fs::read_to_string(&kek_file).expect("read");
        assert_eq!(
            base64::engine::general_purpose::STANDARD
                .decode(text.trim())
                .map(|b| b.len())
                .ok(),
            Some(32)
        );
    }
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

#[tokio::test]
async fn a_malformed_key_encryption_key_or_a_rewrap_without_a_new_key_is_a_usage_error() {
    let db = crate::harness::TestDb::new().await;
    let dir = tempfile::tempdir().expect("tempdir");
    let short = dir.path().join("short.kek");
    std::fs::write(&short, "c2hvcnQ=\n").expect("write");
    let short = short.to_str().expect("path").to_owned();
    /// Arguments, environment, what the error says, the exit status.
    type Case<'a> = (&'a [&'a str], Vec<(&'a str, &'a str)>, &'a str, i32);
    let cases: [Case; 4] = [
        (
            &["migrate"],
            vec![("CASTELLAN_KEY_ENCRYPTION_KEY", "not base64 at all!")],
            "keys.encryption_key",
            2,
        ),
        (
            &["migrate"],
            vec![("CASTELLAN_KEY_ENCRYPTION_KEY_FILE", short.as_str())],
            "does not hold a key-encryption key",
            1,
        ),
        (
            &["keys", "rewrap"],
            vec![],
            "needs the new key-encryption key",
            2,
        ),
        (
            &["keys", "rewrap", "--new-key-file", short.as_str()],
            vec![],
            "--new-key-file",
            2,
        ),
    ];
    for (args, env, expected, code) in cases {
        let out = crate::harness::castellan_with(db.url(), args, None, &env);
        let err = String::from_utf8_lossy(&out.stderr);
        assert_eq!(out.status.code(), Some(code), "{args:?}: {err}");
        assert!(err.contains(expected), "{args:?}: {err}");
        // One error line (on SQLite the log may also say where the default key file was made).
        let errors = err.lines().filter(|l| l.starts_with("castellan:")).count();
        assert_eq!(errors, 1, "one error line: {err}");
        assert!(
            !err.contains("not base64 at all") && !err.contains("panicked"),
            "{err}"
        );
    }
}
