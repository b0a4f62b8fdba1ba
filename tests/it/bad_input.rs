//! Malformed requests that a client or a browser can send get a clear error and change nothing.

use base64::Engine;

use crate::harness::rp::{
    ALL_SCOPES, REDIRECT_URI, confidential_rp, create_client, create_user, sign_in, sign_in_again,
};
use crate::harness::{spawn_app, spawn_app_with};

#[tokio::test]
async fn a_malformed_basic_header_is_invalid_client_and_a_second_method_is_invalid_request() {
    let app = spawn_app().await;
    let (id, secret) = create_client(
        &app,
        &["--grant-type", "client_credentials", "--scope", "reports"],
    );
    let secret = secret.expect("secret");
    let http = crate::harness::browser();
    for header in [
        "Basic !!!not-base64!!!",
        "Basic bm9jb2xvbg==", /* "nocolon" */
        "Bearer abc",
    ] {
        let res = http
            .post(app.url("/oauth2/token"))
            .header("authorization", header)
            .form(&[("grant_type", "client_credentials")])
            .send()
            .await
            .expect("request");
        assert_eq!(res.status(), 401, "{header}");
        assert_eq!(res.headers()["cache-control"], "no-store");
        assert!(res.headers().contains_key("www-authenticate"));
        let body: serde_json::Value = res.json().await.expect("json");
        assert_eq!(body["error"], "invalid_client", "{header}");
    }
    // RFC 6749 §2.3: one authentication method only.
    let basic = base64::engine::general_purpose::STANDARD.encode(format!("{id}:{secret}"));
    let res = http
        .post(app.url("/oauth2/token"))
        .header("authorization", format!("Basic {basic}"))
        .form(&[
            ("grant_type", "client_credentials"),
            ("client_secret", secret.as_str()),
        ])
        .send()
        .await
        .expect("request");
    assert_eq!(res.status(), 400);
    let body: serde_json::Value = res.json().await.expect("json");
    assert_eq!(body["error"], "invalid_request");
}

#[tokio::test]
async fn a_token_request_that_is_not_a_form_is_invalid_request() {
    let app = spawn_app().await;
    let (id, secret) = create_client(
        &app,
        &["--grant-type", "client_credentials", "--scope", "reports"],
    );
    let res = crate::harness::browser()
        .post(app.url("/oauth2/token"))
        .basic_auth(&id, secret)
        .json(&serde_json::json!({"grant_type": "client_credentials"}))
        .send()
        .await
        .expect("request");
    assert_eq!(res.status(), 400);
    assert_eq!(res.headers()["cache-control"], "no-store");
    let body: serde_json::Value = res.json().await.expect("json");
    assert_eq!(body["error"], "invalid_request");
}

#[tokio::test]
async fn userinfo_with_the_token_in_the_header_and_the_body_is_invalid_request() {
    let app = spawn_app().await;
    create_user(&app, "ada@example.com", crate::harness::rp::PASSWORD);
    let rp = confidential_rp(&app, &[]).await;
    let signed = sign_in(&app, &rp, "ada@example.com", &["openid", "email"], true).await;
    let at = signed.access_token();
    let res = crate::harness::browser()
        .post(app.url("/oauth2/userinfo"))
        .bearer_auth(&at)
        .form(&[("access_token", at.as_str())])
        .send()
        .await
        .expect("request");
    assert_eq!(res.status(), 400);
    let challenge = res.headers()["www-authenticate"]
        .to_str()
        .expect("ascii")
        .to_owned();
    assert!(
        challenge.starts_with("Bearer") && challenge.contains("error=\"invalid_request\""),
        "{challenge}"
    );
    // Each method alone works.
    let ok = crate::harness::browser()
        .post(app.url("/oauth2/userinfo"))
        .form(&[("access_token", at.as_str())])
        .send()
        .await
        .expect("request");
    assert_eq!(ok.status(), 200);
}

#[tokio::test]
async fn logout_with_a_garbage_id_token_hint_shows_an_error_page_and_keeps_the_session() {
    let app = spawn_app().await;
    create_user(&app, "ada@example.com", crate::harness::rp::PASSWORD);
    let rp = confidential_rp(&app, &[]).await;
    sign_in(&app, &rp, "ada@example.com", &["openid"], true).await;
    let res = app.get("/oauth2/logout?id_token_hint=not.a.jwt&post_logout_redirect_uri=http%3A%2F%2F127.0.0.1%3A9%2Fbye").await;
    assert_eq!(res.status(), 400);
    assert!(res.headers().get("location").is_none());
    assert!(
        res.headers()["content-type"]
            .to_str()
            .unwrap_or_default()
            .starts_with("text/html")
    );
    // The session is still there: a new authorization needs no login.
    sign_in_again(&app, &rp, &["openid"]).await;
}

#[tokio::test]
async fn an_authorization_post_that_is_not_a_form_gets_an_error_page_and_no_redirect() {
    let app = spawn_app().await;
    let (id, _) = create_client(
        &app,
        &["--redirect-uri", REDIRECT_URI, "--scope", ALL_SCOPES],
    );
    let res = app
        .client
        .post(app.url("/oauth2/authorize"))
        .json(&serde_json::json!({"client_id": id, "redirect_uri": REDIRECT_URI, "response_type": "code"}))
        .send()
        .await
        .expect("request");
    assert_eq!(res.status(), 400);
    assert!(res.headers().get("location").is_none());
    assert!(
        res.headers()["content-type"]
            .to_str()
            .unwrap_or_default()
            .starts_with("text/html")
    );
}

#[tokio::test]
async fn failed_client_authentications_are_limited_at_introspection_and_revocation_too() {
    let app = spawn_app_with(|s| s.rate_limit.client_auth_failures_per_minute = 2).await;
    let (id, _) = create_client(
        &app,
        &["--grant-type", "client_credentials", "--scope", "reports"],
    );
    let http = crate::harness::browser();
    for path in ["/oauth2/introspect", "/oauth2/introspect", "/oauth2/revoke"] {
        let res = http
            .post(app.url(path))
            .basic_auth(&id, Some("wrong"))
            .form(&[("token", "x")])
            .send()
            .await
            .expect("request");
        if path == "/oauth2/revoke" {
            assert_eq!(
                res.status(),
                429,
                "the third failure from this address is refused"
            );
            assert!(res.headers().contains_key("retry-after"));
        } else {
            assert_eq!(res.status(), 401);
        }
    }
}

/// A `return_to` with any control character is not a place to go back to: the login still
/// succeeds and lands on the home page, never a 500 or a header built from it.
#[tokio::test]
async fn a_return_to_with_a_control_character_is_ignored_after_a_successful_login() {
    use crate::harness::forms::Form;
    // A hundred logins from one address: no per-address limit here.
    let app = spawn_app_with(|s| s.rate_limit.login_per_minute = 0).await;
    let email = "ctrl@example.com";
    create_user(&app, email, crate::harness::rp::PASSWORD);
    let controls = (0u8..0x20).chain([0x7f]);
    let places = |c: char| {
        [
            format!("/oauth2/authorize?client_id=a{c}b"),
            format!("/account{c}"),
            format!("/admin/users?q={c}"),
        ]
    };
    for (c, return_to) in controls.flat_map(|c| places(c as char).map(move |r| (c, r))) {
        let client = crate::harness::browser();
        let page = client
            .get(app.url("/login"))
            .send()
            .await
            .expect("login page")
            .text()
            .await
            .expect("body");
        let form = Form::with_action(&page, "/login");
        let res = form
            .submit_with(
                &client,
                &app,
                &[
                    ("email", email),
                    ("password", crate::harness::rp::PASSWORD),
                    ("return_to", &return_to),
                ],
                None,
            )
            .await;
        let status = res.status().as_u16();
        let location = res
            .headers()
            .get("location")
            .map(|l| l.to_str().unwrap_or_default().to_owned());
        assert_eq!(
            (status, location.as_deref()),
            (303, Some("/")),
            "control character {c:#04x} in return_to {return_to:?}"
        );
    }
}
