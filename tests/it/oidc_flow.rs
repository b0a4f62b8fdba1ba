//! The OpenID Connect flows end to end with an independent relying party (the `openidconnect`
//! crate): discovery, authorization code with PKCE through the hosted login and consent pages,
//! ID token verification, access-token shape (RFC 9068), UserInfo, refresh rotation,
//! revocation (RFC 7009), introspection (RFC 7662), RP-initiated logout, and the variants
//! (session reuse, public client, skipped consent, client credentials, form_post, no openid).

use openidconnect::{OAuth2TokenResponse, TokenIntrospectionResponse, TokenResponse};

use crate::harness::forms::{Form, query_param};
use crate::harness::jwt;
use crate::harness::rp::{
    ALL_SCOPES, Auth, PASSWORD, POST_LOGOUT_URI, REDIRECT_URI, Rp, assert_token_error,
    authorize_with_session, browse, code_of, confidential_rp, create_client, create_user,
    create_user_named, expect_redirect, is_login_page, login_through_pages,
    login_through_pages_location, sign_in, start_login, token_request, userinfo_raw,
};
use crate::harness::spawn_app;

fn now() -> i64 {
    std::time::SystemTime::now()
        .duration_since(std::time::UNIX_EPOCH)
        .expect("time")
        .as_secs() as i64
}

fn scope_set(s: &str) -> std::collections::BTreeSet<String> {
    s.split_whitespace().map(str::to_owned).collect()
}

#[tokio::test]
async fn a_confidential_client_completes_the_whole_openid_connect_flow() {
    let app = spawn_app().await;
    let email = "ada@example.com";
    create_user_named(&app, email, "Ada Lovelace", PASSWORD);
    let (client_id, secret) = create_client(
        &app,
        &[
            "--name",
            "Web app",
            "--redirect-uri",
            REDIRECT_URI,
            "--post-logout-redirect-uri",
            POST_LOGOUT_URI,
            "--scope",
            ALL_SCOPES,
            "--token-endpoint-auth-method",
            "client_secret_basic",
        ],
    );
    let secret = secret.expect("a confidential client has a secret");
    let rp = Rp::discover(&app, &client_id, Some(&secret), REDIRECT_URI).await;

    // Authorization request: PKCE S256, nonce, state, every scope.
    let (url, state, nonce, verifier) =
        rp.authorize_url(&["profile", "email", "offline_access"], true);
    assert_eq!(
        query_param(&url, "code_challenge_method").as_deref(),
        Some("S256")
    );
    let loc = login_through_pages_location(&app, &url, email, PASSWORD, true).await;
    assert!(loc.starts_with(&format!("{REDIRECT_URI}?")), "{loc}");
    assert_eq!(
        query_param(&loc, "state").as_deref(),
        Some(state.secret().as_str())
    );
    assert_eq!(
        query_param(&loc, "iss").as_deref(),
        Some(app.address.as_str()),
        "RFC 9207: the issuer is in the authorization response"
    );
    assert_eq!(query_param(&loc, "error"), None);
    let code = code_of(&loc);

    // Token exchange (client_secret_basic by the crate).
    let tokens = rp.exchange_code(&code, verifier).await;
    assert_eq!(tokens.token_type().as_ref().to_ascii_lowercase(), "bearer");
    let expires_in = tokens.expires_in().expect("expires_in").as_secs();
    assert!((890..=900).contains(&expires_in), "expires_in {expires_in}");
    let refresh_token = tokens
        .refresh_token()
        .expect("offline_access gives a refresh token")
        .secret()
        .clone();
    let access_token = tokens.access_token().secret().clone();

    // The ID token, verified by the crate (signature via the JWKS, iss, aud, exp, nonce, at_hash).
    let claims = rp.verify_id_token(&tokens, &nonce);
    let sub = claims.subject().as_str().to_owned();
    assert!(!sub.is_empty());
    assert_ne!(sub, email, "sub is a stable identifier, not the email");
    assert!(!sub.contains('@'), "sub {sub}");
    assert_eq!(claims.issuer().as_str(), app.address);
    assert_eq!(
        claims
            .audiences()
            .iter()
            .map(|a| a.as_str())
            .collect::<Vec<_>>(),
        vec![client_id.as_str()]
    );
    assert_eq!(claims.email().map(|e| e.as_str()), Some(email));
    assert_eq!(claims.email_verified(), Some(true));
    assert_eq!(
        claims.name().and_then(|n| n.get(None)).map(|n| n.as_str()),
        Some("Ada Lovelace")
    );
    let auth_time = claims.auth_time().expect("auth_time").timestamp();
    assert!((auth_time - now()).abs() < 120, "auth_time {auth_time}");
    assert!(claims.access_token_hash().is_some(), "at_hash");
    assert_eq!(
        claims.nonce().map(|n| n.secret().as_str()),
        Some(nonce.secret().as_str())
    );
    let id_token = tokens.id_token().expect("id_token").to_string();
    let raw_id = jwt::claims(&id_token);
    assert!(
        raw_id["sid"].as_str().is_some_and(|s| !s.is_empty()),
        "sid: {raw_id}"
    );
    assert_eq!(raw_id["azp"], client_id.as_str());
    let id_header = jwt::header(&id_token);
    assert_eq!(id_header["alg"], "RS256");
    assert!(id_header["kid"].is_string(), "{id_header}");
    let exp = raw_id["exp"].as_i64().expect("exp");
    let iat = raw_id["iat"].as_i64().expect("iat");
    assert_eq!(exp - iat, 900, "id_token lifetime");

    // The access token: a JWT per RFC 9068.
    let at_header = jwt::header(&access_token);
    let typ = at_header["typ"]
        .as_str()
        .unwrap_or_default()
        .to_ascii_lowercase();
    assert!(typ == "at+jwt" || typ == "application/at+jwt", "typ {typ}");
    assert_eq!(at_header["alg"], "RS256");
    assert_eq!(at_header["kid"], id_header["kid"]);
    let at = jwt::claims(&access_token);
    assert_eq!(at["iss"], app.address.as_str());
    assert_eq!(at["sub"], sub.as_str());
    assert_eq!(at["client_id"], client_id.as_str());
    assert!(
        !at["aud"].is_null() && at["aud"] != serde_json::json!([]),
        "aud: {at}"
    );
    assert_eq!(
        scope_set(at["scope"].as_str().expect("scope")),
        scope_set(ALL_SCOPES)
    );
    assert!(at["jti"].as_str().is_some_and(|j| !j.is_empty()), "{at}");
    let (iat, exp) = (
        at["iat"].as_i64().expect("iat"),
        at["exp"].as_i64().expect("exp"),
    );
    assert_eq!(exp - iat, 900, "access token lifetime");
    assert!((iat - now()).abs() < 120);

    // UserInfo, through the crate (which checks sub) and raw.
    let info = rp.userinfo(&access_token, Some(&sub)).await;
    assert_eq!(info.subject().as_str(), sub);
    assert_eq!(info.email().map(|e| e.as_str()), Some(email));
    assert_eq!(
        info.name().and_then(|n| n.get(None)).map(|n| n.as_str()),
        Some("Ada Lovelace")
    );
    let raw = userinfo_raw(&app, Some(&access_token)).await;
    assert_eq!(raw.status, 200, "{}", raw.text);
    assert_eq!(raw.json["sub"], sub.as_str());
    assert_eq!(raw.json["email"], email);
    assert_eq!(raw.json["email_verified"], true);
    assert_eq!(raw.json["name"], "Ada Lovelace");

    // Refresh: both tokens rotate.
    let refreshed = rp
        .refresh(&refresh_token)
        .await
        .unwrap_or_else(|e| panic!("refresh: {}", crate::harness::rp::describe(&e)));
    let new_refresh = refreshed
        .refresh_token()
        .expect("a rotated refresh token")
        .secret()
        .clone();
    let new_access = refreshed.access_token().secret().clone();
    assert_ne!(new_refresh, refresh_token, "the refresh token rotates");
    assert_ne!(new_access, access_token);
    assert_eq!(jwt::claims(&new_access)["sub"], sub.as_str());
    rp.userinfo(&new_access, Some(&sub)).await;

    // Introspection of the new access token, by its own client.
    let intro = rp.introspect(&new_access).await;
    assert!(intro.active(), "{intro:?}");
    assert_eq!(
        intro.client_id().map(|c| c.as_str()),
        Some(client_id.as_str())
    );
    assert_eq!(intro.sub(), Some(sub.as_str()));
    let scopes: std::collections::BTreeSet<String> = intro
        .scopes()
        .expect("scope")
        .iter()
        .map(|s| s.as_str().to_owned())
        .collect();
    assert_eq!(scopes, scope_set(ALL_SCOPES));
    let garbage = rp.introspect("not-a-token").await;
    assert!(!garbage.active());
    let raw = crate::harness::rp::introspect_raw(&app, rp.auth(), "not-a-token").await;
    assert_eq!(raw.status, 200);
    assert_eq!(
        raw.json,
        serde_json::json!({"active": false}),
        "an inactive token reveals nothing else"
    );

    // Revocation of the refresh token (200), after which it cannot be used.
    rp.revoke_refresh_token(&new_refresh)
        .await
        .expect("revocation answers 200");
    assert_token_error(
        rp.refresh(&new_refresh).await,
        "invalid_grant",
        "revoked refresh token",
    );

    // RP-initiated logout with id_token_hint: straight back to the registered URI with state.
    let logout = format!(
        "/oauth2/logout?{}",
        url::form_urlencoded::Serializer::new(String::new())
            .append_pair("id_token_hint", &id_token)
            .append_pair("post_logout_redirect_uri", POST_LOGOUT_URI)
            .append_pair("state", "s")
            .finish()
    );
    let loc = expect_redirect(&app, browse(&app, &logout).await, "logout").await;
    assert!(loc.starts_with(POST_LOGOUT_URI), "{loc}");
    assert_eq!(query_param(&loc, "state").as_deref(), Some("s"));

    // The session ended: the next authorization asks for a login again.
    let (url, ..) = rp.authorize_url(&["profile"], true);
    start_login(&app, &url).await;
}

#[tokio::test]
async fn a_second_authorization_with_a_live_session_skips_login_and_consent() {
    let app = spawn_app().await;
    create_user(&app, "bob@example.com", PASSWORD);
    let rp = confidential_rp(&app, &[]).await;
    let first = sign_in(&app, &rp, "bob@example.com", &["profile", "email"], true).await;
    let first_claims = rp.verify_id_token(&first.tokens, &first.nonce);

    let (url, state, nonce, verifier) = rp.authorize_url(&["profile", "email"], true);
    // Straight back to the client: no login page, no consent page.
    let loc = authorize_with_session(&app, &url).await;
    assert_eq!(
        query_param(&loc, "state").as_deref(),
        Some(state.secret().as_str())
    );
    assert_eq!(
        query_param(&loc, "iss").as_deref(),
        Some(app.address.as_str())
    );
    let tokens = rp.exchange_code(&code_of(&loc), verifier).await;
    let claims = rp.verify_id_token(&tokens, &nonce);
    assert_eq!(claims.subject(), first_claims.subject());
    assert_eq!(
        claims.auth_time(),
        first_claims.auth_time(),
        "no new authentication happened"
    );
}

#[tokio::test]
async fn a_public_client_with_pkce_completes_the_flow_without_a_secret() {
    let app = spawn_app().await;
    create_user(&app, "spa@example.com", PASSWORD);
    let (client_id, secret) = create_client(
        &app,
        &[
            "--public",
            "--redirect-uri",
            REDIRECT_URI,
            "--scope",
            "openid profile email",
        ],
    );
    assert_eq!(secret, None);
    let rp = Rp::discover(&app, &client_id, None, REDIRECT_URI).await;
    let (url, state, nonce, verifier) = rp.authorize_url(&["email"], true);
    let loc = login_through_pages_location(&app, &url, "spa@example.com", PASSWORD, true).await;
    assert_eq!(
        query_param(&loc, "state").as_deref(),
        Some(state.secret().as_str())
    );
    // The crate sends client_id in the body and no Authorization header (method `none`).
    let tokens = rp.exchange_code(&code_of(&loc), verifier).await;
    let claims = rp.verify_id_token(&tokens, &nonce);
    assert_eq!(claims.email().map(|e| e.as_str()), Some("spa@example.com"));
    assert_eq!(
        jwt::claims(tokens.access_token().secret())["client_id"],
        client_id.as_str()
    );
    let info = rp.userinfo(tokens.access_token().secret(), None).await;
    assert_eq!(info.subject(), claims.subject());
}

#[tokio::test]
async fn a_public_client_cannot_redeem_a_code_without_the_pkce_verifier() {
    let app = spawn_app().await;
    create_user(&app, "spa@example.com", PASSWORD);
    let (client_id, _) = create_client(
        &app,
        &[
            "--public",
            "--redirect-uri",
            REDIRECT_URI,
            "--scope",
            "openid profile",
        ],
    );
    let rp = Rp::discover(&app, &client_id, None, REDIRECT_URI).await;
    let (url, _, _, _verifier) = rp.authorize_url(&["profile"], true);
    let code = login_through_pages(&app, &url, "spa@example.com", PASSWORD, true).await;
    assert_token_error(
        rp.try_exchange_code(&code, None).await,
        "invalid_grant",
        "a code whose request had a challenge, redeemed without a verifier",
    );
}

#[tokio::test]
async fn a_client_created_with_skip_consent_never_sees_the_consent_page() {
    let app = spawn_app().await;
    create_user(&app, "carol@example.com", PASSWORD);
    let rp = confidential_rp(&app, &["--skip-consent"]).await;
    // `consent: false` makes the helper fail if the consent page shows up.
    let (url, _, nonce, verifier) = rp.authorize_url(&["profile", "email", "offline_access"], true);
    let code = login_through_pages(&app, &url, "carol@example.com", PASSWORD, false).await;
    let tokens = rp.exchange_code(&code, verifier).await;
    rp.verify_id_token(&tokens, &nonce);
    assert!(tokens.refresh_token().is_some());

    // Nor for a later request with more scopes.
    let (url, ..) = rp.authorize_url(&["profile", "email"], true);
    authorize_with_session(&app, &url).await;
}

#[tokio::test]
async fn client_credentials_gives_an_access_token_without_refresh_or_id_token() {
    let app = spawn_app().await;
    let (client_id, secret) = create_client(
        &app,
        &["--grant-type", "client_credentials", "--scope", "reports"],
    );
    let secret = secret.expect("secret");
    let raw = token_request(
        &app,
        Auth::Basic(&client_id, &secret),
        &[("grant_type", "client_credentials"), ("scope", "reports")],
    )
    .await;
    assert_eq!(raw.status, 200, "{}", raw.text);
    raw.assert_no_store();
    assert!(
        raw.header("content-type")
            .is_some_and(|c| c.starts_with("application/json"))
    );
    assert_eq!(
        raw.json["token_type"]
            .as_str()
            .map(str::to_ascii_lowercase)
            .as_deref(),
        Some("bearer")
    );
    assert!(raw.json.get("refresh_token").is_none(), "{}", raw.text);
    assert!(raw.json.get("id_token").is_none(), "{}", raw.text);
    if let Some(scope) = raw.json.get("scope") {
        assert_eq!(scope, "reports");
    }
    let access = raw.json["access_token"].as_str().expect("access_token");
    let claims = jwt::claims(access);
    assert_eq!(claims["client_id"], client_id.as_str());
    assert_eq!(claims["scope"], "reports");
    assert_eq!(claims["iss"], app.address.as_str());

    // The client may introspect its own token.
    let intro =
        crate::harness::rp::introspect_raw(&app, Auth::Basic(&client_id, &secret), access).await;
    assert_eq!(intro.json["active"], true, "{}", intro.text);
    assert_eq!(intro.json["client_id"], client_id.as_str());
}

#[tokio::test]
async fn response_mode_form_post_returns_an_auto_submitting_form() {
    let app = spawn_app().await;
    create_user(&app, "dora@example.com", PASSWORD);
    let rp = confidential_rp(&app, &[]).await;
    // A session and a consent first, so the form_post request is answered at once.
    sign_in(&app, &rp, "dora@example.com", &["profile"], true).await;

    let req = rp.authorize(&["profile"], true, &[("response_mode", "form_post")]);
    let res = browse(&app, &req.url).await;
    assert_eq!(res.status().as_u16(), 200, "form_post answers with a page");
    assert!(res.headers().get("location").is_none());
    assert!(
        res.headers()["content-type"]
            .to_str()
            .unwrap_or_default()
            .starts_with("text/html")
    );
    let html = res.text().await.expect("body");
    let form = Form::find(&html, |f| f.action == REDIRECT_URI)
        .unwrap_or_else(|| panic!("no form posting to the redirect URI:\n{html}"));
    assert_eq!(form.method, "post");
    let hidden: std::collections::HashMap<String, String> =
        form.hidden_fields().into_iter().collect();
    assert_eq!(hidden.get("state"), Some(req.state.secret()));
    assert_eq!(hidden.get("iss"), Some(&app.address));
    let code = hidden.get("code").expect("a code field");
    assert!(
        html.contains(".submit()"),
        "the form submits itself:\n{html}"
    );
    assert!(
        !html.contains(&format!("{REDIRECT_URI}?code=")),
        "the code is not in a URL"
    );
    // The code is good.
    let tokens = rp.exchange_code(code, req.pkce_verifier).await;
    rp.verify_id_token(&tokens, &req.nonce);
}

#[tokio::test]
async fn a_request_without_the_openid_scope_gets_no_id_token() {
    let app = spawn_app().await;
    create_user(&app, "eve@example.com", PASSWORD);
    let rp = confidential_rp(&app, &["--skip-consent"]).await;
    let req = rp.authorize_without_openid(&["profile"], true);
    assert!(
        !query_param(&req.url, "scope")
            .unwrap_or_default()
            .contains("openid"),
        "{}",
        req.url
    );
    let code = login_through_pages(&app, &req.url, "eve@example.com", PASSWORD, false).await;
    let tokens = rp.exchange_code(&code, req.pkce_verifier).await;
    assert!(tokens.id_token().is_none(), "no openid, no ID token");
    assert!(!tokens.access_token().secret().is_empty());
    let at = jwt::claims(tokens.access_token().secret());
    assert_eq!(at["scope"], "profile");
}

#[tokio::test]
async fn after_logout_with_an_id_token_hint_the_next_authorization_needs_a_login() {
    let app = spawn_app().await;
    create_user(&app, "finn@example.com", PASSWORD);
    let rp = confidential_rp(&app, &[]).await;
    let signed = sign_in(&app, &rp, "finn@example.com", &["profile"], true).await;
    let logout = format!(
        "/oauth2/logout?id_token_hint={}&post_logout_redirect_uri={}",
        signed.id_token(),
        url::form_urlencoded::byte_serialize(POST_LOGOUT_URI.as_bytes()).collect::<String>()
    );
    let loc = expect_redirect(&app, browse(&app, &logout).await, "logout").await;
    assert!(loc.starts_with(POST_LOGOUT_URI), "{loc}");
    assert_eq!(query_param(&loc, "state"), None, "no state was sent");
    let (url, ..) = rp.authorize_url(&["profile"], true);
    let res = browse(&app, &url).await;
    let loc = expect_redirect(&app, res, "authorization after logout").await;
    assert!(is_login_page(&app, &loc), "{loc}");
}
