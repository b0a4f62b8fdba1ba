//! Every error path of the protocol endpoints and hosted pages: which errors are shown as a page
//! (the redirect URI cannot be trusted) and which go back to the client (RFC 6749 §4.1.2.1 with
//! `iss`, RFC 9207), login CSRF and failures, token-endpoint errors (§5.2), code and refresh
//! token reuse, bearer-token forgeries at UserInfo (RFC 6750 §3.1), introspection and
//! revocation authentication, and logout.

use openidconnect::OAuth2TokenResponse;

use crate::harness::forms::{Form, path_of, query_param};
use crate::harness::jwt;
use crate::harness::rp::{
    ALL_SCOPES, Auth, PASSWORD, POST_LOGOUT_URI, REDIRECT_URI, Raw, Rp, Signed, assert_token_error,
    authorize_with_session, browse, code_of, confidential_rp, create_client, create_user,
    expect_page, expect_redirect, introspect_raw, is_internal, is_login_page, login_through_pages,
    post_form, post_login, revoke_raw, sign_in, start_login, submit_consent, submit_login,
    token_request, userinfo_raw,
};
use crate::harness::{TestApp, spawn_app, spawn_app_with};

const EMAIL: &str = "user@example.com";
const OTHER_REDIRECT_URI: &str = "http://127.0.0.1:9/other";
/// RFC 7636 Appendix B.
const VERIFIER: &str = "dBjftJeZ4CVP-mB92K27uhbUJU1p1r_wW1gFWFOEjXk";
const CHALLENGE: &str = "E9Melhoa2OwvFrEMTJguCHaoeK1t8URWbuGJSstw-cM";
const STATE: &str = "st-123";

/// A server, a user, and a confidential client with every scope.
async fn setup() -> (TestApp, Rp) {
    setup_with(|_| {}).await
}

async fn setup_with(configure: impl FnOnce(&mut castellan::Settings)) -> (TestApp, Rp) {
    let app = spawn_app_with(configure).await;
    create_user(&app, EMAIL, PASSWORD);
    let rp = confidential_rp(&app, &[]).await;
    (app, rp)
}

/// Signed in with every scope (so with a refresh token).
async fn signed_in(app: &TestApp, rp: &Rp) -> Signed {
    sign_in(
        app,
        rp,
        EMAIL,
        &["profile", "email", "offline_access"],
        true,
    )
    .await
}

/// A hand-built authorization request: valid by default, each test breaks one thing.
struct Authz {
    params: Vec<(String, String)>,
}

impl Authz {
    fn new(client_id: &str) -> Authz {
        Authz {
            params: [
                ("response_type", "code"),
                ("client_id", client_id),
                ("redirect_uri", REDIRECT_URI),
                ("scope", "openid profile"),
                ("state", STATE),
                ("nonce", "n-1"),
                ("code_challenge", CHALLENGE),
                ("code_challenge_method", "S256"),
            ]
            .iter()
            .map(|(k, v)| ((*k).to_owned(), (*v).to_owned()))
            .collect(),
        }
    }

    fn set(mut self, name: &str, value: &str) -> Authz {
        match self.params.iter_mut().find(|(k, _)| k == name) {
            Some(p) => p.1 = value.to_owned(),
            None => self.params.push((name.to_owned(), value.to_owned())),
        }
        self
    }

    fn without(mut self, name: &str) -> Authz {
        self.params.retain(|(k, _)| k != name);
        self
    }

    /// Adds the parameter once more (a duplicate when it is already there).
    fn again(mut self, name: &str, value: &str) -> Authz {
        self.params.push((name.to_owned(), value.to_owned()));
        self
    }

    fn url(&self, app: &TestApp) -> String {
        let query = url::form_urlencoded::Serializer::new(String::new())
            .extend_pairs(self.params.iter())
            .finish();
        app.url(&format!("/oauth2/authorize?{query}"))
    }
}

/// An error the authorization endpoint must show itself: 400, HTML, and no redirect.
async fn assert_error_page(res: reqwest::Response, what: &str) -> String {
    let status = res.status().as_u16();
    let location = res.headers().get("location").cloned();
    let content_type = res
        .headers()
        .get("content-type")
        .map(|c| c.to_str().unwrap_or_default().to_owned())
        .unwrap_or_default();
    let body = res.text().await.unwrap_or_default();
    assert_eq!(
        status, 400,
        "{what}: expected a 400 page, got {status}:\n{body}"
    );
    assert_eq!(location, None, "{what}: must not redirect");
    assert!(
        content_type.starts_with("text/html"),
        "{what}: an HTML page, got {content_type}"
    );
    body
}

/// An error sent back to the client: redirect to the redirect URI with `error`, `state`, `iss`.
async fn assert_error_redirect(app: &TestApp, res: reqwest::Response, error: &str, state: &str) {
    let loc = expect_redirect(app, res, &format!("expected a redirect with {error}")).await;
    assert_error_location(app, &loc, error, state);
}

fn assert_error_location(app: &TestApp, loc: &str, error: &str, state: &str) {
    assert!(
        loc.starts_with(&format!("{REDIRECT_URI}?")),
        "the error goes back to the client: {loc}"
    );
    assert_eq!(query_param(loc, "error").as_deref(), Some(error), "{loc}");
    assert_eq!(query_param(loc, "state").as_deref(), Some(state), "{loc}");
    assert_eq!(
        query_param(loc, "iss").as_deref(),
        Some(app.address.as_str()),
        "{loc}"
    );
    assert_eq!(query_param(loc, "code"), None, "{loc}");
}

// ---------------------------------------------------------------------------------------------
// Authorization errors shown as a page.

#[tokio::test]
async fn authorize_with_an_unknown_client_id_shows_an_error_page_instead_of_redirecting() {
    let (app, _rp) = setup().await;
    let url = Authz::new("no-such-client").url(&app);
    assert_error_page(browse(&app, &url).await, "unknown client_id").await;
}

#[tokio::test]
async fn authorize_without_a_redirect_uri_when_the_client_has_two_shows_an_error_page() {
    let app = spawn_app().await;
    let (client_id, _) = create_client(
        &app,
        &[
            "--redirect-uri",
            REDIRECT_URI,
            "--redirect-uri",
            OTHER_REDIRECT_URI,
            "--scope",
            ALL_SCOPES,
        ],
    );
    let url = Authz::new(&client_id).without("redirect_uri").url(&app);
    assert_error_page(browse(&app, &url).await, "missing redirect_uri").await;
}

#[tokio::test]
async fn authorize_with_an_unregistered_redirect_uri_shows_an_error_page() {
    let (app, rp) = setup().await;
    let url = Authz::new(&rp.client_id)
        .set("redirect_uri", "http://127.0.0.1:9/evil")
        .url(&app);
    let body = assert_error_page(browse(&app, &url).await, "unregistered redirect_uri").await;
    assert!(
        !body.contains("href=\"http://127.0.0.1:9/evil"),
        "the page does not link to the unregistered URI"
    );
}

#[tokio::test]
async fn authorize_with_a_redirect_uri_differing_by_a_trailing_slash_shows_an_error_page() {
    let (app, rp) = setup().await;
    let url = Authz::new(&rp.client_id)
        .set("redirect_uri", &format!("{REDIRECT_URI}/"))
        .url(&app);
    assert_error_page(
        browse(&app, &url).await,
        "redirect_uri with a trailing slash",
    )
    .await;
}

#[tokio::test]
async fn authorize_with_a_duplicated_client_id_or_redirect_uri_shows_an_error_page() {
    let (app, rp) = setup().await;
    let url = Authz::new(&rp.client_id)
        .again("client_id", &rp.client_id)
        .url(&app);
    assert_error_page(browse(&app, &url).await, "client_id given twice").await;
    let url = Authz::new(&rp.client_id)
        .again("redirect_uri", REDIRECT_URI)
        .url(&app);
    assert_error_page(browse(&app, &url).await, "redirect_uri given twice").await;
}

// ---------------------------------------------------------------------------------------------
// Authorization errors sent back to the client.

#[tokio::test]
async fn authorize_with_response_type_token_redirects_unsupported_response_type() {
    let (app, rp) = setup().await;
    let url = Authz::new(&rp.client_id)
        .set("response_type", "token")
        .url(&app);
    assert_error_redirect(
        &app,
        browse(&app, &url).await,
        "unsupported_response_type",
        STATE,
    )
    .await;
}

#[tokio::test]
async fn authorize_without_a_code_challenge_redirects_invalid_request() {
    let (app, rp) = setup().await;
    let url = Authz::new(&rp.client_id)
        .without("code_challenge")
        .without("code_challenge_method")
        .url(&app);
    assert_error_redirect(&app, browse(&app, &url).await, "invalid_request", STATE).await;
}

#[tokio::test]
async fn authorize_with_code_challenge_method_plain_redirects_invalid_request() {
    let (app, rp) = setup().await;
    let url = Authz::new(&rp.client_id)
        .set("code_challenge", VERIFIER)
        .set("code_challenge_method", "plain")
        .url(&app);
    assert_error_redirect(&app, browse(&app, &url).await, "invalid_request", STATE).await;
}

#[tokio::test]
async fn authorize_with_a_parameter_given_twice_redirects_invalid_request() {
    let (app, rp) = setup().await;
    let url = Authz::new(&rp.client_id).again("scope", "openid").url(&app);
    assert_error_redirect(&app, browse(&app, &url).await, "invalid_request", STATE).await;
}

#[tokio::test]
async fn prompt_none_without_a_session_redirects_login_required() {
    let (app, rp) = setup().await;
    let url = Authz::new(&rp.client_id).set("prompt", "none").url(&app);
    assert_error_redirect(&app, browse(&app, &url).await, "login_required", STATE).await;
}

#[tokio::test]
async fn prompt_none_with_a_session_but_without_consent_redirects_consent_required() {
    let (app, rp) = setup().await;
    // A session, made through another client that needs no consent.
    let other = confidential_rp(&app, &["--skip-consent"]).await;
    sign_in(&app, &other, EMAIL, &["profile"], false).await;

    let url = Authz::new(&rp.client_id).set("prompt", "none").url(&app);
    assert_error_redirect(&app, browse(&app, &url).await, "consent_required", STATE).await;
}

#[tokio::test]
async fn denying_consent_redirects_access_denied() {
    let (app, rp) = setup().await;
    let req = rp.authorize(&["profile"], true, &[]);
    let login = start_login(&app, &req.url).await;
    let back = submit_login(&app, &login, EMAIL, PASSWORD).await;
    let consent =
        expect_redirect(&app, browse(&app, &back).await, "authorization after login").await;
    assert!(
        is_internal(&app, &consent) && path_of(&consent) == "/consent",
        "expected the consent page, went to {consent}"
    );
    // The POST may go back through the authorization endpoint or straight to the client.
    let mut loc = submit_consent(&app, &consent, "deny").await;
    for _ in 0..3 {
        if !is_internal(&app, &loc) {
            break;
        }
        loc = expect_redirect(&app, browse(&app, &loc).await, "after denying consent").await;
    }
    assert_error_location(&app, &loc, "access_denied", req.state.secret());
}

// ---------------------------------------------------------------------------------------------
// Re-authentication.

#[tokio::test]
async fn max_age_shorter_than_the_session_sends_the_user_back_to_the_login_page() {
    let (app, rp) = setup().await;
    signed_in(&app, &rp).await;
    app.clock.advance_secs(5);
    // The session itself is still good...
    let (url, ..) = rp.authorize_url(&["profile"], true);
    authorize_with_session(&app, &url).await;
    // ...but not fresh enough for max_age=1.
    let req = rp.authorize(&["profile"], true, &[("max_age", "1")]);
    let loc = expect_redirect(
        &app,
        browse(&app, &req.url).await,
        "authorization with max_age=1",
    )
    .await;
    assert!(
        is_login_page(&app, &loc),
        "expected the login page, went to {loc}"
    );
}

/// `prompt=select_account` is accepted (not advertised: there is no account chooser) and met
/// as `prompt=login` is: a fresh login, as any account.
#[tokio::test]
async fn prompt_login_or_select_account_with_a_live_session_sends_the_user_to_the_login_page() {
    let (app, rp) = setup().await;
    signed_in(&app, &rp).await;
    for prompt in ["login", "select_account"] {
        let req = rp.authorize(&["profile"], true, &[("prompt", prompt)]);
        let loc = expect_redirect(
            &app,
            browse(&app, &req.url).await,
            &format!("authorization with prompt={prompt}"),
        )
        .await;
        assert!(
            is_login_page(&app, &loc),
            "prompt={prompt}: expected the login page, went to {loc}"
        );
    }
}

/// The login page's `return_to` for a request that demands a fresh login (`prompt=login`, a
/// `max_age` the session is older than), opened again by the browser that still holds the old
/// session: the login page again, never a code. Only a login made after the request satisfies
/// it, once; the ID token then carries that login's `auth_time`.
#[tokio::test]
async fn a_demanded_fresh_login_cannot_be_skipped_by_replaying_the_login_return_to() {
    let (app, rp) = setup().await;
    signed_in(&app, &rp).await;
    app.clock.advance_secs(30);
    for extra in [("prompt", "login"), ("max_age", "10")] {
        let req = rp.authorize(&["profile"], true, &[extra]);
        let login = start_login(&app, &req.url).await;
        let return_to = query_param(&login, "return_to").expect("return_to");
        let replay = expect_redirect(
            &app,
            browse(&app, &return_to).await,
            "the return_to replayed with the old session",
        )
        .await;
        assert!(
            is_login_page(&app, &replay),
            "{extra:?}: the old session must not satisfy the request, went to {replay}"
        );
    }

    app.clock.advance_secs(5);
    let req = rp.authorize(&["profile"], true, &[("prompt", "login")]);
    let login = start_login(&app, &req.url).await;
    let before = castellan::clock::Clock::now(&app.clock);
    let back = submit_login(&app, &login, EMAIL, PASSWORD).await;
    let after = castellan::clock::Clock::now(&app.clock);
    let loc = authorize_with_session(&app, &back).await;
    let tokens = rp.exchange_code(&code_of(&loc), req.pkce_verifier).await;
    let id_token = openidconnect::TokenResponse::id_token(&tokens)
        .expect("an ID token")
        .to_string();
    let auth_time = jwt::claims(&id_token)["auth_time"]
        .as_i64()
        .expect("auth_time");
    assert!(
        (before..=after).contains(&auth_time),
        "the ID token carries the new login's auth_time: {auth_time} not in {before}..={after}"
    );
    // The same return_to, used once already, asks for a login again.
    let replay = expect_redirect(&app, browse(&app, &back).await, "a second replay").await;
    assert!(
        is_login_page(&app, &replay),
        "a satisfied request is used up, went to {replay}"
    );
}

/// A code issued but not yet redeemed grants access too: signing the user out everywhere (a
/// password change or reset, disabling, "sign out everywhere") ends it with the sessions.
#[tokio::test]
async fn a_code_not_yet_redeemed_dies_when_the_user_is_signed_out_everywhere() {
    let (app, rp) = setup().await;
    let (url, _state, _nonce, verifier) = rp.authorize_url(&["profile"], true);
    let code = login_through_pages(&app, &url, EMAIL, PASSWORD, true).await;
    let out = app.castellan(&["user", "end-sessions", EMAIL]);
    assert!(out.status.success(), "{}", crate::harness::stderr(&out));
    assert_token_error(
        rp.try_exchange_code(&code, verifier).await,
        "invalid_grant",
        "a code from before the sign-out",
    );
}

// ---------------------------------------------------------------------------------------------
// Login page.

/// Asserts the login POST did not log anyone in: an error status or the login page again,
/// never the redirect back; and the authorization request still needs a login.
async fn assert_not_logged_in(
    app: &TestApp,
    res: reqwest::Response,
    authorize_url: &str,
    what: &str,
) {
    let status = res.status().as_u16();
    let body = res.text().await.unwrap_or_default();
    assert!(
        matches!(status, 200 | 400 | 403),
        "{what}: expected 400/403 or the login page again, got {status}:\n{body}"
    );
    if status == 200 {
        assert!(
            Form::find(&body, |f| f.has("password")).is_some(),
            "{what}: a 200 must be the login page again:\n{body}"
        );
    }
    start_login(app, authorize_url).await;
}

/// The login page's form and its URL, reached from an authorization request.
async fn login_form(app: &TestApp, rp: &Rp) -> (String, Form, String) {
    let (url, ..) = rp.authorize_url(&["profile"], true);
    let login = start_login(app, &url).await;
    let page = expect_page(browse(app, &login).await, "the login page").await;
    let form = Form::with_input(&page, "password").on_page(&login);
    assert!(
        form.hidden_fields().iter().any(|(n, _)| n.contains("csrf")),
        "the login form carries a hidden CSRF field: {form:?}"
    );
    (url, form, login)
}

#[tokio::test]
async fn a_login_post_without_the_csrf_field_does_not_log_in() {
    let (app, rp) = setup().await;
    let (url, form, _) = login_form(&app, &rp).await;
    let mut body: Vec<(String, String)> = form
        .hidden_fields()
        .into_iter()
        .filter(|(n, _)| !n.contains("csrf"))
        .collect();
    body.push(("email".into(), EMAIL.into()));
    body.push(("password".into(), PASSWORD.into()));
    let res = form.send(&app.client, &app, &body).await;
    assert_not_logged_in(&app, res, &url, "login without CSRF field").await;
}

#[tokio::test]
async fn a_login_post_with_a_wrong_csrf_field_does_not_log_in() {
    let (app, rp) = setup().await;
    let (url, form, _) = login_form(&app, &rp).await;
    let mut body: Vec<(String, String)> = form
        .hidden_fields()
        .into_iter()
        .map(|(n, v)| {
            if n.contains("csrf") {
                (n, format!("forged{}", v.chars().rev().collect::<String>()))
            } else {
                (n, v)
            }
        })
        .collect();
    body.push(("email".into(), EMAIL.into()));
    body.push(("password".into(), PASSWORD.into()));
    let res = form.send(&app.client, &app, &body).await;
    assert_not_logged_in(&app, res, &url, "login with a forged CSRF field").await;
}

#[tokio::test]
async fn a_login_form_from_another_browser_does_not_log_in() {
    let (app, rp) = setup().await;
    let (url, form, _) = login_form(&app, &rp).await;
    // The attacker's browser has none of the victim's cookies.
    let other = crate::harness::browser();
    let res = form
        .submit_with(
            &other,
            &app,
            &[("email", EMAIL), ("password", PASSWORD)],
            None,
        )
        .await;
    let status = res.status().as_u16();
    let location = res
        .headers()
        .get("location")
        .map(|l| l.to_str().unwrap_or_default().to_owned());
    assert!(
        !(matches!(status, 302 | 303)
            && location
                .as_deref()
                .is_some_and(|l| l.contains("/oauth2/authorize"))),
        "a form posted from a browser without the CSRF cookie logged in ({status}, {location:?})"
    );
    start_login(&app, &url).await;
}

#[tokio::test]
async fn a_wrong_password_shows_the_login_page_with_a_generic_message() {
    let (app, rp) = setup().await;
    let (url, ..) = rp.authorize_url(&["profile"], true);
    let login = start_login(&app, &url).await;
    let res = post_login(&app, &login, EMAIL, "wrong password 123").await;
    let body = expect_page(res, "login with a wrong password").await;
    assert!(body.contains("Invalid email or password"), "{body}");
    assert!(
        !body.contains("wrong password 123"),
        "the password is not echoed back"
    );
    assert!(
        Form::find(&body, |f| f.has("password")).is_some(),
        "the form again"
    );
    start_login(&app, &url).await;
}

#[tokio::test]
async fn an_unknown_email_gets_the_same_message_as_a_wrong_password() {
    let (app, rp) = setup().await;
    let (url, ..) = rp.authorize_url(&["profile"], true);
    let login = start_login(&app, &url).await;
    let res = post_login(&app, &login, "nobody@example.com", PASSWORD).await;
    let body = expect_page(res, "login with an unknown email").await;
    assert!(body.contains("Invalid email or password"), "{body}");
    start_login(&app, &url).await;
}

// ---------------------------------------------------------------------------------------------
// Token endpoint.

/// A fresh code for `rp` (logging in and consenting the first time) with its verifier.
async fn fresh_code(app: &TestApp, rp: &Rp, first: bool) -> (String, String) {
    let (url, _, _, verifier) = rp.authorize_url(&["profile", "offline_access"], true);
    let verifier = verifier.expect("pkce").secret().clone();
    let code = if first {
        login_through_pages(app, &url, EMAIL, PASSWORD, true).await
    } else {
        code_of(&authorize_with_session(app, &url).await)
    };
    (code, verifier)
}

async fn exchange_raw(
    app: &TestApp,
    rp: &Rp,
    code: &str,
    verifier: &str,
    redirect_uri: &str,
) -> Raw {
    token_request(
        app,
        rp.auth(),
        &[
            ("grant_type", "authorization_code"),
            ("code", code),
            ("redirect_uri", redirect_uri),
            ("code_verifier", verifier),
        ],
    )
    .await
}

#[tokio::test]
async fn token_responses_are_never_cached_whether_success_or_error() {
    let (app, rp) = setup().await;
    let (code, verifier) = fresh_code(&app, &rp, true).await;
    // `token_request` asserts `Cache-Control: no-store` on every response.
    let ok = exchange_raw(&app, &rp, &code, &verifier, REDIRECT_URI).await;
    assert_eq!(ok.status, 200, "{}", ok.text);
    assert!(
        ok.header("content-type")
            .is_some_and(|c| c.starts_with("application/json"))
    );
    assert!(ok.json["access_token"].is_string());
    let err = exchange_raw(&app, &rp, "no-such-code", &verifier, REDIRECT_URI).await;
    err.assert_oauth_error(400, "invalid_grant");
}

#[tokio::test]
async fn reusing_an_authorization_code_fails_and_revokes_the_tokens_it_gave() {
    let (app, rp) = setup().await;
    let (code, verifier) = fresh_code(&app, &rp, true).await;
    let first = exchange_raw(&app, &rp, &code, &verifier, REDIRECT_URI).await;
    assert_eq!(first.status, 200, "{}", first.text);
    let access = first.json["access_token"]
        .as_str()
        .expect("access_token")
        .to_owned();
    let refresh = first.json["refresh_token"]
        .as_str()
        .expect("refresh_token")
        .to_owned();
    assert_eq!(userinfo_raw(&app, Some(&access)).await.status, 200);

    let second = exchange_raw(&app, &rp, &code, &verifier, REDIRECT_URI).await;
    second.assert_oauth_error(400, "invalid_grant");

    // RFC 6749 §4.1.2 / RFC 9700 §4.5: the tokens of the first exchange are revoked.
    let info = userinfo_raw(&app, Some(&access)).await;
    assert_eq!(info.status, 401, "{}", info.text);
    let intro = introspect_raw(&app, rp.auth(), &access).await;
    assert_eq!(intro.status, 200);
    assert_eq!(intro.json["active"], false, "{}", intro.text);
    assert_token_error(
        rp.refresh(&refresh).await,
        "invalid_grant",
        "refresh from a reused code",
    );
}

#[tokio::test]
async fn a_code_raced_by_six_exchanges_gives_tokens_once_and_the_losers_revoke_them() {
    let (app, rp) = setup().await;
    let (code, verifier) = fresh_code(&app, &rp, true).await;
    let go = || exchange_raw(&app, &rp, &code, &verifier, REDIRECT_URI);
    let (a, b, c, d, e, f) = tokio::join!(go(), go(), go(), go(), go(), go());
    let all = [a, b, c, d, e, f];
    let won: Vec<&Raw> = all.iter().filter(|r| r.status == 200).collect();
    assert_eq!(won.len(), 1, "exactly one exchange wins the code");
    for lost in all.iter().filter(|r| r.status != 200) {
        lost.assert_oauth_error(400, "invalid_grant");
    }
    // Each loser found the code redeemed, so what the winner got is revoked (RFC 6749 §4.1.2),
    // whichever order the requests finished in.
    let access = won[0].json["access_token"].as_str().expect("access_token");
    let intro = introspect_raw(&app, rp.auth(), access).await;
    assert_eq!(intro.json["active"], false, "{}", intro.text);
    // The refresh token too, even when a loser's revocation ran before the winner stored it.
    let refresh = won[0].json["refresh_token"]
        .as_str()
        .expect("refresh_token");
    let intro = introspect_raw(&app, rp.auth(), refresh).await;
    assert_eq!(intro.json["active"], false, "{}", intro.text);
    assert_token_error(
        rp.refresh(refresh).await,
        "invalid_grant",
        "refresh from a raced code",
    );
}

#[tokio::test]
async fn a_pkce_verifier_mismatch_is_invalid_grant() {
    let (app, rp) = setup().await;
    let (code, _verifier) = fresh_code(&app, &rp, true).await;
    let wrong = "x".repeat(43);
    let res = exchange_raw(&app, &rp, &code, &wrong, REDIRECT_URI).await;
    res.assert_oauth_error(400, "invalid_grant");
}

#[tokio::test]
async fn a_code_redeemed_with_another_redirect_uri_is_invalid_grant() {
    let app = spawn_app().await;
    create_user(&app, EMAIL, PASSWORD);
    let (client_id, secret) = create_client(
        &app,
        &[
            "--redirect-uri",
            REDIRECT_URI,
            "--redirect-uri",
            OTHER_REDIRECT_URI,
            "--scope",
            ALL_SCOPES,
        ],
    );
    let rp = Rp::discover(&app, &client_id, secret.as_deref(), REDIRECT_URI).await;
    let (code, verifier) = fresh_code(&app, &rp, true).await;
    let res = exchange_raw(&app, &rp, &code, &verifier, OTHER_REDIRECT_URI).await;
    res.assert_oauth_error(400, "invalid_grant");
}

#[tokio::test]
async fn an_expired_code_is_invalid_grant() {
    let (app, rp) = setup().await;
    let (code, verifier) = fresh_code(&app, &rp, true).await;
    app.clock.advance_secs(61);
    let res = exchange_raw(&app, &rp, &code, &verifier, REDIRECT_URI).await;
    res.assert_oauth_error(400, "invalid_grant");
}

#[tokio::test]
async fn a_wrong_client_secret_is_invalid_client_with_a_www_authenticate_header() {
    let (app, rp) = setup().await;
    let (code, verifier) = fresh_code(&app, &rp, true).await;
    let res = token_request(
        &app,
        Auth::Basic(&rp.client_id, "not-the-secret"),
        &[
            ("grant_type", "authorization_code"),
            ("code", &code),
            ("redirect_uri", REDIRECT_URI),
            ("code_verifier", &verifier),
        ],
    )
    .await;
    res.assert_oauth_error(401, "invalid_client");
    let www = res
        .header("www-authenticate")
        .expect("WWW-Authenticate on a 401");
    assert!(
        www.to_ascii_lowercase().starts_with("basic"),
        "the challenge matches the scheme the client used: {www}"
    );
}

#[tokio::test]
async fn an_unknown_grant_type_is_unsupported_grant_type() {
    let (app, rp) = setup().await;
    let res = token_request(
        &app,
        rp.auth(),
        &[("grant_type", "urn:example:made-up"), ("code", "x")],
    )
    .await;
    res.assert_oauth_error(400, "unsupported_grant_type");
}

#[tokio::test]
async fn a_token_request_with_a_parameter_given_twice_is_invalid_request() {
    let (app, rp) = setup().await;
    let (code, verifier) = fresh_code(&app, &rp, true).await;
    let res = token_request(
        &app,
        rp.auth(),
        &[
            ("grant_type", "authorization_code"),
            ("code", &code),
            ("code", &code),
            ("redirect_uri", REDIRECT_URI),
            ("code_verifier", &verifier),
        ],
    )
    .await;
    res.assert_oauth_error(400, "invalid_request");
}

// ---------------------------------------------------------------------------------------------
// Refresh tokens.

#[tokio::test]
async fn reusing_a_rotated_refresh_token_revokes_the_whole_family() {
    let (app, rp) = setup().await;
    let signed = signed_in(&app, &rp).await;
    let (a, at0) = (signed.refresh_token(), signed.access_token());
    let rotated = rp.refresh(&a).await.expect("first rotation");
    let b = rotated.refresh_token().expect("B").secret().clone();
    let at1 = rotated.access_token().secret().clone();
    assert_eq!(userinfo_raw(&app, Some(&at1)).await.status, 200);

    assert_token_error(rp.refresh(&a).await, "invalid_grant", "presenting A again");
    assert_token_error(rp.refresh(&b).await, "invalid_grant", "B after A's reuse");
    for (name, at) in [("first", &at0), ("rotated", &at1)] {
        let res = userinfo_raw(&app, Some(at)).await;
        assert_eq!(
            res.status, 401,
            "the {name} access token of the family: {}",
            res.text
        );
    }
    // The reuse is an audit event; B's refusal (its family is revoked) is not a second one.
    assert_eq!(
        app.count("audit_events WHERE kind = 'refresh_reuse_detected'")
            .await,
        1
    );
    assert_eq!(
        app.count("audit_events WHERE kind = 'token_refreshed'")
            .await,
        1
    );
}

#[tokio::test]
async fn within_the_grace_window_a_just_rotated_refresh_token_gets_a_fresh_token() {
    let (app, rp) = setup_with(|s| s.tokens.refresh_reuse_grace_secs = 30).await;
    let signed = signed_in(&app, &rp).await;
    let a = signed.refresh_token();
    let rotated = rp.refresh(&a).await.expect("first rotation");
    assert!(rotated.refresh_token().is_some(), "rotation gives B");
    let again = rp.refresh(&a).await.unwrap_or_else(|e| {
        panic!(
            "A again within the window: {}",
            crate::harness::rp::describe(&e)
        )
    });
    let at = again.access_token().secret().clone();
    assert_eq!(userinfo_raw(&app, Some(&at)).await.status, 200);
    let c = again.refresh_token().map(|t| t.secret().clone());
    assert_ne!(
        c.as_deref(),
        Some(a.as_str()),
        "never the presented token back"
    );
}

#[tokio::test]
async fn after_the_grace_window_reusing_a_rotated_refresh_token_revokes_the_family() {
    let (app, rp) = setup_with(|s| s.tokens.refresh_reuse_grace_secs = 30).await;
    let signed = signed_in(&app, &rp).await;
    let a = signed.refresh_token();
    let rotated = rp.refresh(&a).await.expect("first rotation");
    let b = rotated.refresh_token().expect("B").secret().clone();
    app.clock.advance_secs(31);
    assert_token_error(rp.refresh(&a).await, "invalid_grant", "A after the window");
    assert_token_error(
        rp.refresh(&b).await,
        "invalid_grant",
        "B after A's late reuse",
    );
}

#[tokio::test]
async fn refreshing_with_a_wider_scope_than_granted_is_invalid_scope() {
    let (app, rp) = setup().await;
    // Granted: openid profile offline_access (the client could have had email too).
    let signed = sign_in(&app, &rp, EMAIL, &["profile", "offline_access"], true).await;
    let res = token_request(
        &app,
        rp.auth(),
        &[
            ("grant_type", "refresh_token"),
            ("refresh_token", &signed.refresh_token()),
            ("scope", "openid profile email offline_access"),
        ],
    )
    .await;
    res.assert_oauth_error(400, "invalid_scope");
}

#[tokio::test]
async fn refreshing_with_a_narrower_scope_gives_tokens_with_that_scope() {
    let (app, rp) = setup().await;
    let signed = sign_in(
        &app,
        &rp,
        EMAIL,
        &["profile", "email", "offline_access"],
        true,
    )
    .await;
    let res = token_request(
        &app,
        rp.auth(),
        &[
            ("grant_type", "refresh_token"),
            ("refresh_token", &signed.refresh_token()),
            ("scope", "openid offline_access"),
        ],
    )
    .await;
    assert_eq!(res.status, 200, "{}", res.text);
    fn narrowed(s: &str) -> std::collections::BTreeSet<String> {
        s.split_whitespace().map(str::to_owned).collect()
    }
    if let Some(scope) = res.json["scope"].as_str() {
        assert_eq!(narrowed(scope), narrowed("openid offline_access"));
    }
    let at = jwt::claims(res.json["access_token"].as_str().expect("access_token"));
    assert_eq!(
        narrowed(at["scope"].as_str().expect("scope")),
        narrowed("openid offline_access")
    );
}

// ---------------------------------------------------------------------------------------------
// UserInfo and bearer tokens.

async fn assert_invalid_token(app: &TestApp, token: &str, what: &str) {
    let res = userinfo_raw(app, Some(token)).await;
    assert_eq!(res.status, 401, "{what}: {}", res.text);
    let www = res
        .header("www-authenticate")
        .unwrap_or_else(|| panic!("{what}: no WWW-Authenticate"));
    assert!(www.starts_with("Bearer"), "{what}: {www}");
    assert!(www.contains(r#"error="invalid_token""#), "{what}: {www}");
}

/// Signs `claims` as an access token with the server's current key (through the library, as
/// keys.rs does): the positive control for the forgeries.
async fn server_signed_access_token(app: &TestApp, claims: &serde_json::Value) -> String {
    use castellan::clock::Clock;
    let set = app.state.core.tokens.signing_keys().await;
    castellan::crypto::jwt::sign(
        set.signer_at(app.clock.time()),
        castellan::crypto::jwt::TYP_AT_JWT,
        claims,
    )
    .expect("sign")
}

async fn served_jwk(app: &TestApp, kid: &str) -> serde_json::Value {
    let jwks: serde_json::Value = app.get("/oauth2/jwks").await.json().await.expect("jwks");
    jwks["keys"]
        .as_array()
        .expect("keys")
        .iter()
        .find(|k| k["kid"] == kid)
        .unwrap_or_else(|| panic!("kid {kid} not in {jwks}"))
        .clone()
}

#[tokio::test]
async fn userinfo_without_a_token_is_401_with_a_bearer_challenge() {
    let (app, _rp) = setup().await;
    let res = userinfo_raw(&app, None).await;
    assert_eq!(res.status, 401, "{}", res.text);
    let www = res.header("www-authenticate").expect("WWW-Authenticate");
    assert!(www.starts_with("Bearer"), "{www}");
    assert!(
        !www.contains("invalid_token"),
        "RFC 6750 §3.1: no error code without a token: {www}"
    );
}

#[tokio::test]
async fn userinfo_rejects_a_token_whose_payload_was_changed() {
    let (app, rp) = setup().await;
    let at = signed_in(&app, &rp).await.access_token();
    assert_eq!(
        userinfo_raw(&app, Some(&at)).await.status,
        200,
        "the genuine token works"
    );
    let forged = jwt::with_claims(&at, |c| c["sub"] = "someone-else".into());
    assert_invalid_token(&app, &forged, "changed sub").await;
    let forged = jwt::with_claims(&at, |c| {
        c["exp"] = (c["exp"].as_i64().expect("exp") + 3600).into()
    });
    assert_invalid_token(&app, &forged, "extended exp").await;
    assert_invalid_token(&app, "garbage", "not a JWT").await;
}

#[tokio::test]
async fn userinfo_rejects_an_expired_token() {
    let (app, rp) = setup_with(|s| s.tokens.access_ttl_secs = 5).await;
    let at = signed_in(&app, &rp).await.access_token();
    let c = jwt::claims(&at);
    assert_eq!(
        c["exp"].as_i64().expect("exp") - c["iat"].as_i64().expect("iat"),
        5
    );
    assert_eq!(userinfo_raw(&app, Some(&at)).await.status, 200);
    app.clock.advance_secs(10);
    assert_invalid_token(&app, &at, "expired").await;
}

#[tokio::test]
async fn userinfo_rejects_an_unsigned_alg_none_token() {
    let (app, rp) = setup().await;
    let at = signed_in(&app, &rp).await.access_token();
    let header = jwt::header(&at);
    let claims = jwt::claims(&at);
    for alg in ["none", "None", "NONE"] {
        let mut h = header.clone();
        h["alg"] = alg.into();
        assert_invalid_token(&app, &jwt::unsigned(&h, &claims), &format!("alg {alg}")).await;
        // And with the original signature left on.
        let sig = at.split('.').nth(2).expect("signature");
        let with_sig = format!("{}{sig}", jwt::unsigned(&h, &claims));
        assert_invalid_token(&app, &with_sig, &format!("alg {alg} with a signature")).await;
    }
}

#[tokio::test]
async fn userinfo_rejects_an_hs256_token_keyed_with_the_public_key() {
    let (app, rp) = setup().await;
    let at = signed_in(&app, &rp).await.access_token();
    let mut header = jwt::header(&at);
    let kid = header["kid"].as_str().expect("kid").to_owned();
    let jwk = served_jwk(&app, &kid).await;
    let claims = jwt::claims(&at);
    header["alg"] = "HS256".into();
    for (what, secret) in jwt::public_key_hmac_secrets(&jwk) {
        let forged = jwt::sign_hs256(&header, &claims, &secret);
        assert_invalid_token(&app, &forged, &format!("HS256 keyed with {what}")).await;
    }
}

#[tokio::test]
async fn userinfo_rejects_tokens_signed_by_a_key_it_does_not_publish() {
    let (app, rp) = setup().await;
    let at = signed_in(&app, &rp).await.access_token();
    let header = jwt::header(&at);
    let claims = jwt::claims(&at);
    let foreign = jwt::foreign_rsa_key();

    // Control: the same claims signed by the server's own key are accepted, so the refusals
    // below are about the key alone.
    let resigned = server_signed_access_token(&app, &claims).await;
    assert_eq!(jwt::header(&resigned)["kid"], header["kid"]);
    let res = userinfo_raw(&app, Some(&resigned)).await;
    assert_eq!(res.status, 200, "the control token: {}", res.text);

    let mut unknown_kid = header.clone();
    unknown_kid["kid"] = "unknown-kid".into();
    assert_invalid_token(
        &app,
        &jwt::sign_rs256(&foreign, &unknown_kid, &claims),
        "unknown kid",
    )
    .await;

    // The server's kid, but another key's signature.
    assert_invalid_token(
        &app,
        &jwt::sign_rs256(&foreign, &header, &claims),
        "the server's kid, a foreign key",
    )
    .await;

    let mut no_kid = header.clone();
    no_kid.as_object_mut().expect("object").remove("kid");
    assert_invalid_token(
        &app,
        &jwt::sign_rs256(&foreign, &no_kid, &claims),
        "no kid, a foreign key",
    )
    .await;

    // An embedded key is not trusted either (RFC 8725 §3.10 style attack).
    let public = rsa::RsaPublicKey::from(&foreign);
    let mut embedded = header.clone();
    embedded["jwk"] = serde_json::json!({
        "kty": "RSA",
        "n": jwt::b64(&rsa::traits::PublicKeyParts::n(&public).to_bytes_be()),
        "e": jwt::b64(&rsa::traits::PublicKeyParts::e(&public).to_bytes_be()),
    });
    embedded["kid"] = "attacker".into();
    assert_invalid_token(
        &app,
        &jwt::sign_rs256(&foreign, &embedded, &claims),
        "embedded jwk",
    )
    .await;
}

// ---------------------------------------------------------------------------------------------
// Introspection and revocation.

#[tokio::test]
async fn a_client_cannot_introspect_another_clients_token_unless_it_may_introspect_any() {
    let (app, rp) = setup().await;
    let at = signed_in(&app, &rp).await.access_token();

    let (other_id, other_secret) = create_client(&app, &["--redirect-uri", REDIRECT_URI]);
    let other_secret = other_secret.expect("secret");
    let res = introspect_raw(&app, Auth::Basic(&other_id, &other_secret), &at).await;
    assert_eq!(res.status, 200, "{}", res.text);
    assert_eq!(res.json, serde_json::json!({"active": false}));

    let (rs_id, rs_secret) =
        create_client(&app, &["--redirect-uri", REDIRECT_URI, "--introspect-any"]);
    let rs_secret = rs_secret.expect("secret");
    let res = introspect_raw(&app, Auth::Basic(&rs_id, &rs_secret), &at).await;
    assert_eq!(res.status, 200, "{}", res.text);
    assert_eq!(res.json["active"], true, "{}", res.text);
    assert_eq!(res.json["client_id"], rp.client_id.as_str());
}

/// RFC 7662 §2.2: an access token is active only while the authorization behind it stands.
/// Disabling its user ends it at introspection and userinfo for good (disabling signs the user
/// out everywhere), deleting its user ends it, and deleting the client it was issued to ends it
/// and that client's own client-credentials tokens.
#[tokio::test]
async fn an_access_token_ends_when_its_user_is_disabled_or_deleted_or_its_client_deleted() {
    let (app, rp) = setup().await;
    let (rs_id, rs_secret) =
        create_client(&app, &["--redirect-uri", REDIRECT_URI, "--introspect-any"]);
    let rs_secret = rs_secret.expect("secret");
    let cli = |args: &[&str]| {
        let out = app.castellan(args);
        let err = String::from_utf8_lossy(&out.stderr);
        assert!(out.status.success(), "castellan {args:?}: {err}");
    };
    let active = async |token: &str| {
        let res = introspect_raw(&app, Auth::Basic(&rs_id, &rs_secret), token).await;
        assert_eq!(res.status, 200, "{}", res.text);
        res.json["active"] == true
    };
    // Issued five seconds ago (the server's clock moved back for the sign-in), so that
    // disabling the user (the CLI, on the real clock) comes after it: a token from the same
    // second as a sign-out everywhere is let stand.
    app.clock.advance_secs(-5);
    let old = signed_in(&app, &rp).await.access_token();
    app.clock.advance_secs(5);
    assert!(active(&old).await, "a fresh token");

    // Disabled: inactive, and userinfo refuses it. Enabled again, it stays ended: disabling
    // signed the user out everywhere. A new sign-in gets a token that works.
    cli(&["user", "disable", EMAIL]);
    assert!(!active(&old).await, "a disabled user's token");
    assert_invalid_token(&app, &old, "a disabled user's token").await;
    cli(&["user", "disable", EMAIL, "--enable"]);
    assert!(
        !active(&old).await,
        "a token from before the disable, user enabled again"
    );
    assert_invalid_token(&app, &old, "a token from before the disable").await;
    let scopes = ["profile", "email", "offline_access"];
    let at = sign_in(&app, &rp, EMAIL, &scopes, false)
        .await
        .access_token();
    assert!(active(&at).await, "a token from after the enable");
    assert_eq!(userinfo_raw(&app, Some(&at)).await.status, 200);

    // A client deleted: the user's token it got ends.
    cli(&["client", "delete", &rp.client_id]);
    assert!(!active(&at).await, "a deleted client's token");
    assert_invalid_token(&app, &at, "a deleted client's token").await;

    // So does a client's own token (client credentials).
    let (batch_id, batch_secret) = create_client(
        &app,
        &["--grant-type", "client_credentials", "--scope", "reports"],
    );
    let batch_secret = batch_secret.expect("secret");
    let form = [("grant_type", "client_credentials"), ("scope", "reports")];
    let raw = token_request(&app, Auth::Basic(&batch_id, &batch_secret), &form).await;
    assert_eq!(raw.status, 200, "{}", raw.text);
    let cc = raw.json["access_token"].as_str().expect("access_token");
    assert!(active(cc).await, "a client credentials token");
    cli(&["client", "delete", &batch_id]);
    assert!(!active(cc).await, "a deleted client's own token");

    // A user deleted: a token from another client ends too. (Signed out first, so that the
    // next sign-in goes through the login page.)
    cli(&["user", "end-sessions", EMAIL]);
    let rp2 = confidential_rp(&app, &[]).await;
    let at2 = signed_in(&app, &rp2).await.access_token();
    assert!(active(&at2).await, "a token from another client");
    cli(&["user", "delete", EMAIL]);
    assert!(!active(&at2).await, "a deleted user's token");
    assert_invalid_token(&app, &at2, "a deleted user's token").await;
}

/// The client and the token's revocation state are read in one query once the token's signature
/// checks out: a valid token must not let a wrong secret or an unknown client through, nor say
/// anything about the token.
#[tokio::test]
async fn introspecting_a_valid_token_with_a_wrong_secret_or_an_unknown_client_is_invalid_client() {
    let (app, rp) = setup().await;
    let at = signed_in(&app, &rp).await.access_token();
    for auth in [
        Auth::Basic(&rp.client_id, "not-the-secret"),
        Auth::Post(&rp.client_id, "not-the-secret"),
        Auth::Basic("no-such-client", "whatever"),
    ] {
        let res = introspect_raw(&app, auth, &at).await;
        res.assert_oauth_error(401, "invalid_client");
        assert!(res.json.get("active").is_none(), "{}", res.text);
    }
    // The same token with the right credentials is active: the refusals were the client's.
    let res = introspect_raw(&app, rp.auth(), &at).await;
    assert_eq!(res.json["active"], true, "{}", res.text);
}

/// RFC 7662 §2.1: `token` is required, once. The request is refused as `invalid_request` for an
/// authenticated client; with bad credentials `invalid_client` comes first, whatever the token.
#[tokio::test]
async fn introspection_without_exactly_one_token_is_invalid_request_after_client_authentication() {
    let (app, rp) = setup().await;
    let at = signed_in(&app, &rp).await.access_token();
    let path = "/oauth2/introspect";
    let missing: &[(&str, &str)] = &[("token_type_hint", "access_token")];
    let twice: &[(&str, &str)] = &[("token", &at), ("token", &at)];
    for form in [missing, twice] {
        post_form(&app, path, rp.auth(), form)
            .await
            .assert_oauth_error(400, "invalid_request");
        let res = post_form(
            &app,
            path,
            Auth::Basic(&rp.client_id, "not-the-secret"),
            form,
        )
        .await;
        res.assert_oauth_error(401, "invalid_client");
    }
    // A malformed or foreign-signed token is inactive, not an error.
    for token in ["not-a-token", "a.b.c"] {
        let res = introspect_raw(&app, rp.auth(), token).await;
        assert_eq!(res.status, 200, "{}", res.text);
        assert_eq!(res.json, serde_json::json!({"active": false}));
    }
}

#[tokio::test]
async fn revocation_without_client_authentication_is_invalid_client() {
    let (app, rp) = setup().await;
    let rt = signed_in(&app, &rp).await.refresh_token();
    let res = revoke_raw(&app, Auth::None, &rt).await;
    res.assert_oauth_error(401, "invalid_client");
    // Nothing was revoked.
    rp.refresh(&rt).await.unwrap_or_else(|e| {
        panic!(
            "the refresh token still works: {}",
            crate::harness::rp::describe(&e)
        )
    });
}

#[tokio::test]
async fn introspection_without_client_authentication_is_invalid_client() {
    let (app, rp) = setup().await;
    let at = signed_in(&app, &rp).await.access_token();
    let res = introspect_raw(&app, Auth::None, &at).await;
    res.assert_oauth_error(401, "invalid_client");
    assert!(res.json.get("active").is_none(), "{}", res.text);
}

// ---------------------------------------------------------------------------------------------
// Logout.

#[tokio::test]
async fn logout_to_an_unregistered_post_logout_redirect_uri_does_not_redirect_there() {
    let (app, rp) = setup().await;
    let signed = signed_in(&app, &rp).await;
    let evil = "http://127.0.0.1:9/evil";
    let url = format!(
        "/oauth2/logout?{}",
        url::form_urlencoded::Serializer::new(String::new())
            .append_pair("id_token_hint", &signed.id_token())
            .append_pair("post_logout_redirect_uri", evil)
            .append_pair("state", "s")
            .finish()
    );
    let res = browse(&app, &url).await;
    let status = res.status().as_u16();
    let location = res
        .headers()
        .get("location")
        .map(|l| l.to_str().unwrap_or_default().to_owned());
    assert!(
        location.as_deref().is_none_or(|l| !l.starts_with(evil)),
        "redirected to an unregistered URI: {location:?}"
    );
    assert!(
        !location
            .as_deref()
            .is_some_and(|l| l.starts_with(POST_LOGOUT_URI)),
        "nor to the registered one in its place: {location:?}"
    );
    if location.is_none() {
        let content_type = res
            .headers()
            .get("content-type")
            .map(|c| c.to_str().unwrap_or_default().to_owned())
            .unwrap_or_default();
        assert!(
            content_type.starts_with("text/html"),
            "{status} {content_type}"
        );
        assert!(matches!(status, 200 | 400), "{status}");
    }
}

#[tokio::test]
async fn logout_without_an_id_token_hint_asks_for_confirmation_and_then_ends_the_session() {
    let (app, rp) = setup().await;
    signed_in(&app, &rp).await;
    let page = expect_page(
        browse(&app, "/oauth2/logout").await,
        "logout without a hint",
    )
    .await;
    let form = Form::find(&page, |f| f.has_button("decision", "logout"))
        .unwrap_or_else(|| panic!("no form with a decision=logout button:\n{page}"))
        .on_page(&app.url("/oauth2/logout"));

    // Nothing happened yet: the session is alive.
    let (url, ..) = rp.authorize_url(&["profile"], true);
    authorize_with_session(&app, &url).await;

    let res = form.submit(&app, &[], Some(("decision", "logout"))).await;
    let status = res.status().as_u16();
    assert!(
        status < 400,
        "confirming the logout failed: {status} {}",
        res.text().await.unwrap_or_default()
    );
    let (url, ..) = rp.authorize_url(&["profile"], true);
    start_login(&app, &url).await;
}

/// `concurrency` refreshes of one token sent at the same moment; their responses.
async fn refresh_at_once(app: &TestApp, rp: &Rp, token: &str, concurrency: usize) -> Vec<Raw> {
    let form = [("grant_type", "refresh_token"), ("refresh_token", token)];
    futures_util::future::join_all((0..concurrency).map(|_| token_request(app, rp.auth(), &form)))
        .await
}

/// A refresh reads its token and the token's user in one query and checks the user: a user
/// disabled while a refresh token is still live (`user disable` and the admin API set the flag,
/// then end the user's tokens, in two steps) gets `invalid_grant`, and the refusal does not spend
/// the token: it works again once the user is enabled. Disabling through the CLI ends the
/// tokens for good.
#[tokio::test]
async fn a_refresh_for_a_disabled_user_is_invalid_grant() {
    let (app, rp) = setup().await;
    let rt = signed_in(&app, &rp).await.refresh_token();
    let store = &app.store;
    let email = castellan::domain::Email::parse(EMAIL).expect("email");
    let user = store
        .user_by_email(&email)
        .await
        .expect("store")
        .expect("user");
    let now = app.state.clock.time();

    store
        .set_user_disabled(&user.id, true, now)
        .await
        .expect("disable");
    assert_token_error(rp.refresh(&rt).await, "invalid_grant", "disabled user");

    store
        .set_user_disabled(&user.id, false, now)
        .await
        .expect("enable");
    let rotated = rp.refresh(&rt).await.unwrap_or_else(|e| {
        panic!(
            "enabled again, the same token refreshes: {}",
            crate::harness::rp::describe(&e)
        )
    });
    let next = rotated
        .refresh_token()
        .expect("a successor")
        .secret()
        .clone();

    let out = app.castellan(&["user", "disable", EMAIL]);
    assert!(
        out.status.success(),
        "{}",
        String::from_utf8_lossy(&out.stderr)
    );
    app.castellan(&["user", "disable", EMAIL, "--enable"]);
    assert_token_error(
        rp.refresh(&next).await,
        "invalid_grant",
        "tokens ended by the CLI",
    );
}

#[tokio::test]
async fn concurrent_refreshes_of_one_token_rotate_it_once_and_revoke_the_family() {
    // RFC 9700 §4.14.2 without a grace window: one request wins the rotation; every other
    // presentation of the same token is a reuse, which revokes the family.
    let (app, rp) = setup().await;
    let a = signed_in(&app, &rp).await.refresh_token();
    let results = refresh_at_once(&app, &rp, &a, 8).await;
    let won: Vec<&Raw> = results.iter().filter(|r| r.status == 200).collect();
    assert_eq!(
        won.len(),
        1,
        "exactly one rotation: {:?}",
        statuses(&results)
    );
    for r in results.iter().filter(|r| r.status != 200) {
        r.assert_oauth_error(400, "invalid_grant");
    }
    let b = won[0].json["refresh_token"].as_str().expect("B").to_owned();
    assert_token_error(rp.refresh(&b).await, "invalid_grant", "B after the reuse");
    assert!(
        app.count("audit_events WHERE kind = 'refresh_reuse_detected'")
            .await
            >= 1
    );
    assert_eq!(
        app.count("audit_events WHERE kind = 'token_refreshed'")
            .await,
        1
    );
}

#[tokio::test]
async fn within_the_grace_window_concurrent_refreshes_each_get_a_successor() {
    let (app, rp) = setup_with(|s| s.tokens.refresh_reuse_grace_secs = 30).await;
    let a = signed_in(&app, &rp).await.refresh_token();
    let results = refresh_at_once(&app, &rp, &a, 8).await;
    assert!(
        results.iter().all(|r| r.status == 200),
        "{:?}",
        statuses(&results)
    );
    let mut successors: Vec<&str> = results
        .iter()
        .map(|r| r.json["refresh_token"].as_str().expect("a successor"))
        .collect();
    successors.sort_unstable();
    successors.dedup();
    assert_eq!(successors.len(), 8, "eight different successors");
    assert!(!successors.contains(&a.as_str()));
    let next = rp.refresh(successors[0]).await;
    assert!(next.is_ok(), "a successor rotates in its turn");
    assert_eq!(
        app.count("refresh_tokens WHERE rotated_at IS NOT NULL")
            .await,
        2,
        "A once, and the successor just used"
    );
}

fn statuses(results: &[Raw]) -> Vec<u16> {
    results.iter().map(|r| r.status).collect()
}
