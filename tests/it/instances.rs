//! Several instances on one database, as operators run them behind a load balancer: each with
//! its own port, clock, memory and background work, one issuer, one database, and (for the
//! rate limits) one Redis. What one instance issues or changes, the other honours.

use crate::harness::forms::Form;
use crate::harness::rp::{
    Auth, PASSWORD, REDIRECT_URI, browse, confidential_rp, create_user, expect_page,
    introspect_raw, login_through_pages, revoke_raw, token_request,
};
use crate::harness::{TestApp, redis_url, spawn_app_beside, spawn_app_with};

/// A second instance of `a`'s deployment: the same database and issuer, its own everything
/// else.
async fn beside(a: &TestApp, configure: impl FnOnce(&mut castellan::Settings)) -> TestApp {
    let issuer = a.address.clone();
    spawn_app_beside(a, move |s| {
        s.server.issuer = issuer;
        configure(s);
    })
    .await
}

#[tokio::test]
async fn a_code_issued_by_one_instance_is_redeemed_at_the_other_and_tokens_cross_over() {
    let a = spawn_app_with(|_| {}).await;
    let b = beside(&a, |_| {}).await;
    let rp = confidential_rp(&a, &[]).await;
    let secret = rp.client_secret.clone().expect("a secret");
    let auth = Auth::Basic(&rp.client_id, &secret);
    create_user(&a, "two@example.com", PASSWORD);

    let (url, _state, _nonce, verifier) =
        rp.authorize_url(&["openid", "profile", "offline_access"], true);
    let code = login_through_pages(&a, &url, "two@example.com", PASSWORD, true).await;
    let verifier = verifier.expect("PKCE");
    let at_b = token_request(
        &b,
        auth,
        &[
            ("grant_type", "authorization_code"),
            ("code", &code),
            ("redirect_uri", REDIRECT_URI),
            ("code_verifier", verifier.secret()),
        ],
    )
    .await;
    assert_eq!(at_b.status, 200, "the code from A at B: {}", at_b.text);
    // The ID token B signed verifies with A's JWK Set (one key set in the database).
    let id_token = at_b.json["id_token"]
        .as_str()
        .expect("an ID token")
        .to_owned();
    let kid = crate::harness::jwt::header(&id_token)["kid"]
        .as_str()
        .expect("kid")
        .to_owned();
    let jwks: serde_json::Value = a.get("/oauth2/jwks").await.json().await.expect("JWKS");
    assert!(
        jwks["keys"]
            .as_array()
            .is_some_and(|ks| ks.iter().any(|k| k["kid"] == kid.as_str())),
        "A publishes the key B signed with ({kid}): {jwks}"
    );
    assert_eq!(
        crate::harness::jwt::claims(&id_token)["iss"],
        a.address.as_str()
    );

    // The refresh token B issued, at A.
    let refresh = at_b.json["refresh_token"]
        .as_str()
        .expect("refresh")
        .to_owned();
    let at_a = token_request(
        &a,
        auth,
        &[("grant_type", "refresh_token"), ("refresh_token", &refresh)],
    )
    .await;
    assert_eq!(at_a.status, 200, "B's refresh token at A: {}", at_a.text);
    let refresh2 = at_a.json["refresh_token"]
        .as_str()
        .expect("rotated")
        .to_owned();
    let access = at_a.json["access_token"]
        .as_str()
        .expect("access")
        .to_owned();

    // Revoked at B, inactive at A; revoked at A, refused at B.
    assert_eq!(introspect_raw(&b, auth, &access).await.json["active"], true);
    revoke_raw(&b, auth, &access).await;
    assert_eq!(
        introspect_raw(&a, auth, &access).await.json["active"],
        false,
        "an access token revoked at B is inactive at A"
    );
    let revoked = revoke_raw(&a, auth, &refresh2).await;
    assert_eq!(revoked.status, 200, "{}", revoked.text);
    token_request(
        &b,
        auth,
        &[
            ("grant_type", "refresh_token"),
            ("refresh_token", &refresh2),
        ],
    )
    .await
    .assert_oauth_error(400, "invalid_grant");
    // The refresh token A rotated away, at B.
    let old_again = token_request(
        &b,
        auth,
        &[("grant_type", "refresh_token"), ("refresh_token", &refresh)],
    )
    .await;
    old_again.assert_oauth_error(400, "invalid_grant");
    // The same code again, now at A: used once, whichever instance saw it first (and, RFC 6749
    // §4.1.2, the replay revokes what it gave; so it comes last here).
    let again = token_request(
        &a,
        auth,
        &[
            ("grant_type", "authorization_code"),
            ("code", &code),
            ("redirect_uri", REDIRECT_URI),
            ("code_verifier", verifier.secret()),
        ],
    )
    .await;
    again.assert_oauth_error(400, "invalid_grant");
}

/// Submits the login form of `app` with a wrong password; returns the status.
async fn fail_login(app: &TestApp, email: &str) -> u16 {
    let page = expect_page(browse(app, &app.url("/login")).await, "the login page").await;
    let form = Form::with_input(&page, "password").on_page(&app.url("/login"));
    form.submit(
        app,
        &[("email", email), ("password", "not the password")],
        None,
    )
    .await
    .status()
    .as_u16()
}

#[tokio::test]
async fn the_failed_login_limit_is_reached_across_two_instances_through_redis() {
    let Some(redis) = redis_url() else { return };
    let set = move |s: &mut castellan::Settings| {
        s.rate_limit.redis_url = Some(castellan::config::Secret::new(&redis));
        s.rate_limit.login_per_minute = 3;
        // The account lockout stays out of the way: this test is about the address.
        s.login.max_failures = 100;
    };
    let redis2 = set.clone();
    let a = spawn_app_with(set).await;
    let b = beside(&a, redis2).await;
    create_user(&a, "shared@example.com", PASSWORD);
    assert_eq!(fail_login(&a, "shared@example.com").await, 200);
    assert_eq!(fail_login(&b, "shared@example.com").await, 200);
    assert_eq!(fail_login(&a, "shared@example.com").await, 200);
    // Three failures from this address, counted in one place: B refuses the fourth attempt.
    assert_eq!(fail_login(&b, "shared@example.com").await, 429);
    assert_eq!(fail_login(&a, "shared@example.com").await, 429);
    for app in [&a, &b] {
        let metrics = app.get("/metrics").await.text().await.unwrap_or_default();
        assert!(
            metrics.contains("castellan_ratelimit_redis_fallbacks_total 0"),
            "Redis answered every decision:\n{metrics}"
        );
    }
}

#[tokio::test]
async fn an_unreachable_redis_leaves_each_instance_counting_alone_and_sign_ins_working() {
    // Port 9 (discard) on loopback: nothing listens, connections are refused.
    let a = spawn_app_with(|s| {
        s.rate_limit.redis_url = Some(castellan::config::Secret::new("redis://127.0.0.1:9"));
        s.rate_limit.login_per_minute = 2;
        s.login.max_failures = 100;
    })
    .await;
    let rp = confidential_rp(&a, &["--skip-consent"]).await;
    create_user(&a, "alone@example.com", PASSWORD);
    let (url, _state, _nonce, verifier) = rp.authorize_url(&["openid"], true);
    let started = std::time::Instant::now();
    let code = login_through_pages(&a, &url, "alone@example.com", PASSWORD, false).await;
    assert!(
        started.elapsed() < std::time::Duration::from_secs(5),
        "sign-in does not wait on Redis: {:?}",
        started.elapsed()
    );
    rp.exchange_code(&code, verifier).await;
    // The limit still holds, counted by this instance.
    assert_eq!(fail_login(&a, "alone@example.com").await, 200);
    assert_eq!(fail_login(&a, "alone@example.com").await, 200);
    assert_eq!(fail_login(&a, "alone@example.com").await, 429);
    let metrics = a.get("/metrics").await.text().await.unwrap_or_default();
    let fallbacks: u64 = metrics
        .lines()
        .find_map(|l| l.strip_prefix("castellan_ratelimit_redis_fallbacks_total "))
        .and_then(|n| n.trim().parse().ok())
        .expect("the fallback counter");
    assert!(
        fallbacks >= 3,
        "each local decision is counted: {fallbacks}"
    );
}

/// The kid a server signs with now.
async fn signing_kid(app: &TestApp) -> String {
    use castellan::clock::Clock;
    let set = app.state.core.tokens.signing_keys().await;
    set.signer_at(app.clock.time()).kid().to_owned()
}

#[tokio::test]
async fn one_instance_rotates_the_keys_and_the_other_signs_with_the_new_one_on_time() {
    let periods = |s: &mut castellan::Settings| {
        s.keys.reload_interval_ms = 10;
        s.keys.rotate_every_secs = 4;
        s.keys.publish_ahead_secs = 2;
    };
    let a = spawn_app_with(periods).await;
    let b = beside(&a, periods).await;
    let first = signing_kid(&a).await;
    assert_eq!(signing_kid(&b).await, first);
    let started = std::time::Instant::now();
    let mut seen = vec![first];
    while started.elapsed() < std::time::Duration::from_secs(30) && seen.len() < 3 {
        // Both instances race for every rotation; one makes the key.
        let next = a.count("signing_keys WHERE state = 'next'").await;
        assert!(next <= 1, "{next} next keys: two instances rotated at once");
        let (ka, kb) = (signing_kid(&a).await, signing_kid(&b).await);
        if ka == kb && seen.last() != Some(&ka) {
            seen.push(ka);
        }
        tokio::time::sleep(std::time::Duration::from_millis(100)).await;
    }
    assert!(
        seen.len() >= 3,
        "two rotations seen on both instances: {seen:?}"
    );
    // Every key made was published by both before it signed, and only one was made per
    // rotation.
    // Keys first: a rotation writes its audit row just after its key (CI on PostgreSQL once
    // counted the rotations, then a key made a moment later), so the count of rotations is
    // read until it covers the keys counted, for up to 2 s.
    let keys = a.count("signing_keys").await;
    let mut made = a.count("audit_events WHERE kind = 'key_rotated'").await;
    for _ in 0..20 {
        if keys <= made + 1 {
            break;
        }
        tokio::time::sleep(std::time::Duration::from_millis(100)).await;
        made = a.count("audit_events WHERE kind = 'key_rotated'").await;
    }
    assert!(
        keys <= made + 1 && made <= seen.len() as i64,
        "{keys} keys, {made} rotations audited, {} seen",
        seen.len()
    );
}
