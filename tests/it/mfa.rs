//! TOTP second factor and recovery codes (issue 17, first slice), through the real pages over
//! HTTP, with codes computed here (RFC 6238 over HMAC-SHA-1, written apart from the server's)
//! at the server's test clock: enrolment, the second step of a sign-in, replay (also two
//! parallel submissions), lockout, recovery codes, the pending sign-in's expiry and binding
//! to its browser, password reset, `amr`/`acr` in the ID token, step-up with `acr_values`, and
//! the seed sealed under the key-encryption key.

use std::time::Duration;

use castellan::Settings;
use castellan::clock::Clock;
use castellan::config::Secret;
use openidconnect::TokenResponse;

use crate::harness::forms::{Form, location, path_of, resolve_against, unescape};
use crate::harness::rp::{
    PASSWORD, REDIRECT_URI, Rp, code_of, create_client, create_user, expect_page,
};
use crate::harness::smtp::SmtpSink;
use crate::harness::{TestApp, browser, spawn_app, spawn_app_with};

pub(crate) const WAIT: Duration = Duration::from_secs(10);
pub(crate) const MFA: &str = "urn:castellan:acr:mfa";

// ---------------------------------------------------------------------------------------------
// Helpers.

/// RFC 4648 base32 decoding, for the secret the page shows.
pub(crate) fn base32(text: &str) -> Vec<u8> {
    const ALPHABET: &[u8] = b"ABCDEFGHIJKLMNOPQRSTUVWXYZ234567";
    let (mut buf, mut bits, mut out) = (0u64, 0, Vec::new());
    for c in text.bytes().filter(|c| *c != b'=') {
        let v = ALPHABET
            .iter()
            .position(|a| *a == c.to_ascii_uppercase())
            .expect("a base32 character") as u64;
        buf = (buf << 5) | v;
        bits += 5;
        if bits >= 8 {
            bits -= 8;
            out.push((buf >> bits) as u8);
        }
    }
    out
}

/// RFC 6238 TOTP (SHA-1, 6 digits, 30 s) at a Unix time.
pub(crate) fn totp(secret: &[u8], unix: i64) -> String {
    use aws_lc_rs::hmac;
    let key = hmac::Key::new(hmac::HMAC_SHA1_FOR_LEGACY_USE_ONLY, secret);
    let mac = hmac::sign(&key, &(unix / 30).to_be_bytes());
    let m = mac.as_ref();
    let o = (m[19] & 0x0f) as usize;
    let bin = u32::from_be_bytes([m[o] & 0x7f, m[o + 1], m[o + 2], m[o + 3]]);
    format!("{:06}", bin % 1_000_000)
}

/// The code for the server's clock now.
pub(crate) fn code_now(app: &TestApp, secret: &[u8]) -> String {
    totp(secret, app.clock.now())
}

/// A code that is not right now (nor in the steps either side).
pub(crate) fn wrong_code(app: &TestApp, secret: &[u8]) -> String {
    let t = app.clock.now();
    let right: Vec<String> = [-30, 0, 30].iter().map(|d| totp(secret, t + d)).collect();
    (0..)
        .map(|n: u32| format!("{:06}", (n * 7919) % 1_000_000))
        .find(|c| !right.contains(c))
        .expect("a wrong code")
}

/// A path or URL made absolute on the app.
pub(crate) fn abs(app: &TestApp, url: &str) -> String {
    resolve_against(&app.url("/"), url)
}

pub(crate) async fn get(client: &reqwest::Client, app: &TestApp, url: &str) -> reqwest::Response {
    client
        .get(resolve_against(&app.url("/"), url))
        .send()
        .await
        .unwrap_or_else(|e| panic!("GET {url}: {e}"))
}

pub(crate) async fn page(client: &reqwest::Client, app: &TestApp, url: &str) -> String {
    expect_page(get(client, app, url).await, &format!("GET {url}")).await
}

/// Posts the login form from `login_url`; returns the response.
pub(crate) async fn login(
    client: &reqwest::Client,
    app: &TestApp,
    login_url: &str,
    email: &str,
    password: &str,
) -> reqwest::Response {
    let body = page(client, app, login_url).await;
    Form::with_input(&body, "password")
        .on_page(&abs(app, login_url))
        .submit_with(
            client,
            app,
            &[("email", email), ("password", password)],
            None,
        )
        .await
}

/// Signs in with the password; asserts the second-step page comes next; returns its URL.
pub(crate) async fn password_step(client: &reqwest::Client, app: &TestApp, email: &str) -> String {
    let res = login(client, app, "/login", email, PASSWORD).await;
    assert_eq!(res.status().as_u16(), 303, "the login POST");
    let loc = location(&res);
    assert_eq!(path_of(&loc), "/login/second-factor", "{loc}");
    loc
}

/// Posts a code on the second-step page at `url`.
pub(crate) async fn second_step(
    client: &reqwest::Client,
    app: &TestApp,
    url: &str,
    code: &str,
) -> reqwest::Response {
    let body = page(client, app, url).await;
    Form::with_input(&body, "code")
        .on_page(&abs(app, url))
        .submit_with(client, app, &[("code", code)], None)
        .await
}

/// Whether the browser is signed in (the account page answers instead of a redirect).
pub(crate) async fn signed_in(client: &reqwest::Client, app: &TestApp) -> bool {
    get(client, app, "/account").await.status().as_u16() == 200
}

/// The `data-totp-secret` of the enrolment page.
pub(crate) fn secret_of(page: &str) -> String {
    let at = page
        .find("data-totp-secret=\"")
        .unwrap_or_else(|| panic!("no data-totp-secret:\n{page}"));
    let rest = &page[at + 18..];
    rest[..rest.find('"').expect("closing quote")].to_owned()
}

/// The texts of the elements with class `recovery-code`.
pub(crate) fn recovery_codes_of(page: &str) -> Vec<String> {
    page.split("class=\"recovery-code\">")
        .skip(1)
        .map(|s| s[..s.find('<').expect("element end")].trim().to_owned())
        .collect()
}

/// A user signed in with the password in `client`, then TOTP enrolment with a right code;
/// returns the seed and the recovery codes. The clock then moves to the next time step, so the
/// enrolment's code is not the next one to be asked for.
pub(crate) async fn enrolled(
    client: &reqwest::Client,
    app: &TestApp,
    email: &str,
) -> (Vec<u8>, Vec<String>) {
    create_user(app, email, PASSWORD);
    let res = login(client, app, "/login", email, PASSWORD).await;
    assert_eq!(res.status().as_u16(), 303, "the password sign-in");
    enrol(client, app).await
}

pub(crate) async fn enrol(client: &reqwest::Client, app: &TestApp) -> (Vec<u8>, Vec<String>) {
    let body = page(client, app, "/account/mfa/totp").await;
    let secret = base32(&secret_of(&body));
    let res = Form::with_input(&body, "code")
        .on_page(&abs(app, "/account/mfa/totp"))
        .submit_with(client, app, &[("code", &code_now(app, &secret))], None)
        .await;
    let done = expect_page(res, "the enrolment POST").await;
    let codes = recovery_codes_of(&done);
    assert_eq!(codes.len(), 10, "{done}");
    app.clock.advance_secs(30);
    (secret, codes)
}

pub(crate) async fn audits(app: &TestApp, kind: &str) -> i64 {
    app.count(&format!("audit_events WHERE kind = '{kind}'"))
        .await
}

pub(crate) async fn rp_for(app: &TestApp) -> Rp {
    let (id, secret) = create_client(
        app,
        &[
            "--redirect-uri",
            REDIRECT_URI,
            "--scope",
            "openid profile email",
            "--skip-consent",
        ],
    );
    Rp::discover(app, &id, secret.as_deref(), REDIRECT_URI).await
}

/// Follows internal redirects with `client` from `url` until a page (returned with its URL) or
/// the client's redirect URI (returned as the URL, with no page).
pub(crate) async fn follow(
    client: &reqwest::Client,
    app: &TestApp,
    url: &str,
) -> (String, Option<String>) {
    let mut url = url.to_owned();
    for _ in 0..10 {
        if url.starts_with(REDIRECT_URI) {
            return (url, None);
        }
        let res = get(client, app, &url).await;
        if res.status().as_u16() == 303 || res.status().as_u16() == 302 {
            url = location(&res);
            continue;
        }
        let body = expect_page(res, &url).await;
        return (url, Some(body));
    }
    panic!("too many redirects from {url}");
}

// ---------------------------------------------------------------------------------------------
// Enrolment.

#[tokio::test]
async fn enrolment_refuses_a_wrong_code_accepts_the_right_one_and_shows_ten_recovery_codes() {
    let app = spawn_app().await;
    let email = "enrol@example.com";
    create_user(&app, email, PASSWORD);
    let client = browser();
    login(&client, &app, "/login", email, PASSWORD).await;

    let account = page(&client, &app, "/account").await;
    assert!(account.contains("data-totp=\"off\""), "{account}");
    assert!(account.contains("href=\"/account/mfa/totp\""), "{account}");

    let body = page(&client, &app, "/account/mfa/totp").await;
    let secret_text = secret_of(&body);
    let secret = base32(&secret_text);
    assert_eq!(secret.len(), 20, "a 160-bit seed");
    assert!(
        body.contains("<svg"),
        "a QR code drawn as inline SVG:\n{body}"
    );
    assert!(!body.contains("<script"), "{body}");
    // A reload shows the same seed (the user may have scanned it already).
    assert_eq!(
        secret_of(&page(&client, &app, "/account/mfa/totp").await),
        secret_text
    );

    let form = Form::with_input(&body, "code").on_page(&abs(&app, "/account/mfa/totp"));
    let res = form
        .submit_with(&client, &app, &[("code", &wrong_code(&app, &secret))], None)
        .await;
    let again = expect_page(res, "a wrong code").await;
    assert!(recovery_codes_of(&again).is_empty(), "{again}");
    assert_eq!(secret_of(&again), secret_text);
    assert!(
        page(&client, &app, "/account")
            .await
            .contains("data-totp=\"off\""),
        "a wrong code does not turn it on"
    );

    let res = form
        .submit_with(&client, &app, &[("code", &code_now(&app, &secret))], None)
        .await;
    let done = expect_page(res, "the right code").await;
    let codes = recovery_codes_of(&done);
    assert_eq!(codes.len(), 10, "{done}");
    let mut unique = codes.clone();
    unique.sort();
    unique.dedup();
    assert_eq!(unique.len(), 10);
    let account = page(&client, &app, "/account").await;
    assert!(account.contains("data-totp=\"on\""), "{account}");
    assert!(account.contains("10 recovery codes left"), "{account}");
    assert_eq!(audits(&app, "factor_added").await, 1);
    assert_eq!(audits(&app, "factor_failed").await, 1);
    assert_eq!(app.count("recovery_codes").await, 10);
    // Shown once: the enrolment page now only says it is on.
    let after = page(&client, &app, "/account/mfa/totp").await;
    assert!(recovery_codes_of(&after).is_empty() && !after.contains("data-totp-secret"));
}

#[tokio::test]
async fn the_otpauth_uri_names_the_issuer_host_and_the_email() {
    // The URI is in the QR code; the core builds it (crypto::totp has its unit test), and the
    // label is `issuer:email` with the issuer's host.
    let app = spawn_app().await;
    let client = browser();
    create_user(&app, "uri@example.com", PASSWORD);
    login(&client, &app, "/login", "uri@example.com", PASSWORD).await;
    let body = page(&client, &app, "/account/mfa/totp").await;
    let secret = base32(&secret_of(&body));
    let uri = castellan::crypto::totp::otpauth_uri("127.0.0.1", "uri@example.com", &secret);
    assert!(
        uri.starts_with("otpauth://totp/127.0.0.1:uri%40example.com?secret="),
        "{uri}"
    );
}

// ---------------------------------------------------------------------------------------------
// Sign-in.

#[tokio::test]
async fn sign_in_asks_for_the_second_factor_and_a_code_is_accepted_once() {
    let app = spawn_app().await;
    let email = "two@example.com";
    let (secret, _) = enrolled(&browser(), &app, email).await;

    let client = browser();
    let step = password_step(&client, &app, email).await;
    assert!(
        !signed_in(&client, &app).await,
        "no session after the password alone"
    );
    let code = code_now(&app, &secret);
    let res = second_step(&client, &app, &step, &code).await;
    assert_eq!(res.status().as_u16(), 303, "a right code");
    assert!(signed_in(&client, &app).await);
    assert!(audits(&app, "factor_used").await >= 1);

    // The same code again, from another browser: refused (one use per time step).
    let other = browser();
    let step = password_step(&other, &app, email).await;
    let res = second_step(&other, &app, &step, &code).await;
    assert_eq!(res.status().as_u16(), 200, "a replayed code is refused");
    assert!(!signed_in(&other, &app).await);
    assert!(audits(&app, "factor_failed").await >= 1);
}

#[tokio::test]
async fn of_two_parallel_submissions_of_one_code_exactly_one_signs_in() {
    let app = spawn_app().await;
    let email = "race@example.com";
    let (secret, _) = enrolled(&browser(), &app, email).await;
    let (a, b) = (browser(), browser());
    let step_a = password_step(&a, &app, email).await;
    let step_b = password_step(&b, &app, email).await;
    let page_a = page(&a, &app, &step_a).await;
    let page_b = page(&b, &app, &step_b).await;
    let code = code_now(&app, &secret);
    let form_a = Form::with_input(&page_a, "code").on_page(&abs(&app, &step_a));
    let form_b = Form::with_input(&page_b, "code").on_page(&abs(&app, &step_b));
    let fields = [("code", code.as_str())];
    let (ra, rb) = tokio::join!(
        form_a.submit_with(&a, &app, &fields, None),
        form_b.submit_with(&b, &app, &fields, None),
    );
    let wins = [ra.status().as_u16(), rb.status().as_u16()]
        .iter()
        .filter(|s| **s == 303)
        .count();
    assert_eq!(wins, 1, "{} {}", ra.status(), rb.status());
    assert_eq!(
        u8::from(signed_in(&a, &app).await) + u8::from(signed_in(&b, &app).await),
        1
    );
}

#[tokio::test]
async fn wrong_codes_count_toward_the_lockout_like_wrong_passwords() {
    let app = spawn_app().await;
    let email = "guess@example.com";
    let (secret, _) = enrolled(&browser(), &app, email).await;
    let client = browser();
    let step = password_step(&client, &app, email).await;
    for _ in 0..5 {
        let res = second_step(&client, &app, &step, &wrong_code(&app, &secret)).await;
        assert_eq!(res.status().as_u16(), 200);
    }
    assert_eq!(audits(&app, "login_locked").await, 1);
    assert_eq!(app.count("users WHERE locked_until IS NOT NULL").await, 1);
    // Locked: the right code is refused too.
    let res = second_step(&client, &app, &step, &code_now(&app, &secret)).await;
    assert_eq!(res.status().as_u16(), 200);
    assert!(!signed_in(&client, &app).await);
}

#[tokio::test]
async fn a_recovery_code_signs_in_once_is_mailed_about_and_new_codes_end_the_old_ones() {
    let sink = SmtpSink::start();
    let url = sink.url();
    let app =
        spawn_app_with(move |s: &mut Settings| s.mail.smtp_url = Some(Secret::new(url))).await;
    let email = "recover@example.com";
    let owner = browser();
    let (_, codes) = enrolled(&owner, &app, email).await;

    let client = browser();
    let step = password_step(&client, &app, email).await;
    // Case and dashes do not matter.
    let typed = codes[0].to_uppercase().replace('-', " ");
    let res = second_step(&client, &app, &step, &typed).await;
    assert_eq!(res.status().as_u16(), 303, "a recovery code");
    assert!(signed_in(&client, &app).await);
    assert_eq!(audits(&app, "recovery_code_used").await, 1);
    let mail = sink.wait_for(email, WAIT).await;
    assert!(mail.subject.contains("recovery code"), "{}", mail.subject);
    assert_eq!(app.count("recovery_codes").await, 9);

    // Used once: refused the second time.
    let again = browser();
    let step = password_step(&again, &app, email).await;
    let res = second_step(&again, &app, &step, &codes[0]).await;
    assert_eq!(res.status().as_u16(), 200);
    assert!(!signed_in(&again, &app).await);

    // New codes from the account page end the old set.
    let account = page(&client, &app, "/account").await;
    let res = Form::with_action(&account, "/account/mfa/recovery-codes")
        .on_page(&abs(&app, "/account"))
        .submit_with(&client, &app, &[], None)
        .await;
    let fresh = recovery_codes_of(&expect_page(res, "new recovery codes").await);
    assert_eq!(fresh.len(), 10);
    assert!(fresh.iter().all(|c| !codes.contains(c)));
    assert_eq!(audits(&app, "recovery_codes_regenerated").await, 1);
    let res = second_step(&again, &app, &step, &codes[1]).await;
    assert_eq!(
        res.status().as_u16(),
        200,
        "an old code after new ones were made"
    );
    let res = second_step(&again, &app, &step, &fresh[0]).await;
    assert_eq!(res.status().as_u16(), 303, "a new code");
}

#[tokio::test]
async fn a_pending_sign_in_expires_after_five_minutes_and_serves_only_its_browser() {
    let app = spawn_app().await;
    let email = "pending@example.com";
    let (secret, _) = enrolled(&browser(), &app, email).await;

    // Another browser (no pending sign-in cookie) cannot finish this one's sign-in.
    let client = browser();
    let step = password_step(&client, &app, email).await;
    let stranger = browser();
    let res = second_step(&stranger, &app, &step, &code_now(&app, &secret)).await;
    assert_eq!(res.status().as_u16(), 303);
    assert_eq!(path_of(&location(&res)), "/login", "back to the login page");
    assert!(!signed_in(&stranger, &app).await);

    // Five minutes later the pending sign-in is gone.
    let body = page(&client, &app, &step).await;
    app.clock.advance_secs(301);
    let res = Form::with_input(&body, "code")
        .on_page(&abs(&app, &step))
        .submit_with(&client, &app, &[("code", &code_now(&app, &secret))], None)
        .await;
    assert_eq!(res.status().as_u16(), 303);
    assert_eq!(path_of(&location(&res)), "/login");
    assert!(!signed_in(&client, &app).await);
}

#[tokio::test]
async fn a_password_reset_leaves_the_second_factor_on() {
    let sink = SmtpSink::start();
    let url = sink.url();
    let app =
        spawn_app_with(move |s: &mut Settings| s.mail.smtp_url = Some(Secret::new(url))).await;
    let email = "reset@example.com";
    let (secret, _) = enrolled(&browser(), &app, email).await;

    let client = browser();
    let body = page(&client, &app, "/password/forgot").await;
    Form::with_input(&body, "email")
        .on_page(&abs(&app, "/password/forgot"))
        .submit_with(&client, &app, &[("email", email)], None)
        .await;
    let link = sink.wait_for(email, WAIT).await.link();
    let body = page(&client, &app, &link).await;
    let new_password = "tulip lantern quarry 42";
    let res = Form::with_action(&body, "/password/reset")
        .on_page(&abs(&app, &link))
        .submit_with(&client, &app, &[("password", new_password)], None)
        .await;
    expect_page(res, "the reset").await;
    assert!(!signed_in(&client, &app).await, "a reset signs no one in");

    let res = login(&client, &app, "/login", email, new_password).await;
    assert_eq!(path_of(&location(&res)), "/login/second-factor");
    assert!(!signed_in(&client, &app).await);
    let res = second_step(
        &client,
        &app,
        "/login/second-factor",
        &code_now(&app, &secret),
    )
    .await;
    assert_eq!(res.status().as_u16(), 303);
    assert!(signed_in(&client, &app).await);
    assert_eq!(
        app.count("totp_factors WHERE confirmed_at IS NOT NULL")
            .await,
        1
    );
}

#[tokio::test]
async fn removing_totp_needs_the_password_and_ends_the_recovery_codes() {
    let app = spawn_app().await;
    let email = "remove@example.com";
    let client = browser();
    enrolled(&client, &app, email).await;
    // The sign-in is older than five minutes: the password is needed.
    app.clock.advance_secs(301);
    let account = page(&client, &app, "/account").await;
    let form =
        Form::with_action(&account, "/account/mfa/totp/remove").on_page(&abs(&app, "/account"));
    let res = form.submit_with(&client, &app, &[], None).await;
    assert_eq!(res.status().as_u16(), 400, "no password, an old sign-in");
    let res = form
        .submit_with(&client, &app, &[("current_password", "not it")], None)
        .await;
    assert_eq!(res.status().as_u16(), 400, "a wrong password");
    let res = form
        .submit_with(&client, &app, &[("current_password", PASSWORD)], None)
        .await;
    assert_eq!(res.status().as_u16(), 303);
    assert_eq!(app.count("totp_factors").await, 0);
    assert_eq!(app.count("recovery_codes").await, 0);
    assert_eq!(audits(&app, "factor_removed").await, 1);
    // The next sign-in asks for the password only.
    let other = browser();
    let res = login(&other, &app, "/login", email, PASSWORD).await;
    assert_eq!(location(&res), "/");
}

// ---------------------------------------------------------------------------------------------
// Claims and step-up.

#[tokio::test]
async fn the_id_token_says_pwd_and_1fa_or_pwd_otp_mfa_and_mfa() {
    let app = spawn_app().await;
    let rp = rp_for(&app).await;

    // Password only.
    create_user(&app, "one@example.com", PASSWORD);
    let client = browser();
    let req = rp.authorize(&["openid"], true, &[]);
    let (url, _) = follow(&client, &app, &req.url).await;
    assert_eq!(path_of(&url), "/login");
    let res = login(&client, &app, &url, "one@example.com", PASSWORD).await;
    let (back, _) = follow(&client, &app, &location(&res)).await;
    let tokens = rp.exchange_code(&code_of(&back), req.pkce_verifier).await;
    let claims = claims_of(&tokens);
    assert_eq!(claims["amr"], serde_json::json!(["pwd"]));
    assert_eq!(claims["acr"], "urn:castellan:acr:1fa");
    let verified = rp.verify_id_token(&tokens, &req.nonce);
    assert_eq!(
        verified.auth_context_ref().map(|a| a.as_str()),
        Some("urn:castellan:acr:1fa")
    );

    // Password and TOTP.
    let (secret, _) = enrolled(&browser(), &app, "two@example.com").await;
    let client = browser();
    let req = rp.authorize(&["openid"], true, &[]);
    let (url, _) = follow(&client, &app, &req.url).await;
    let res = login(&client, &app, &url, "two@example.com", PASSWORD).await;
    let step = location(&res);
    assert_eq!(path_of(&step), "/login/second-factor");
    let res = second_step(&client, &app, &step, &code_now(&app, &secret)).await;
    let (back, _) = follow(&client, &app, &location(&res)).await;
    let tokens = rp.exchange_code(&code_of(&back), req.pkce_verifier).await;
    let claims = claims_of(&tokens);
    assert_eq!(claims["amr"], serde_json::json!(["pwd", "otp", "mfa"]));
    assert_eq!(claims["acr"], MFA);
    let verified = rp.verify_id_token(&tokens, &req.nonce);
    assert_eq!(verified.auth_context_ref().map(|a| a.as_str()), Some(MFA));
}

pub(crate) fn claims_of(tokens: &openidconnect::core::CoreTokenResponse) -> serde_json::Value {
    let jwt = tokens.id_token().expect("an ID token").to_string();
    crate::harness::jwt::claims(&jwt)
}

#[tokio::test]
async fn acr_values_mfa_steps_a_password_session_up_with_the_second_factor() {
    let app = spawn_app().await;
    let rp = rp_for(&app).await;
    let email = "stepup@example.com";
    let client = browser();
    let (secret, _) = enrolled(&client, &app, email).await;
    // A session with `pwd` only: the user's session from before enrolment, in `early`.
    let early = browser();
    let email2 = "early@example.com";
    create_user(&app, email2, PASSWORD);
    login(&early, &app, "/login", email2, PASSWORD).await;
    // Enrol from another browser, so `early` stays password-only.
    let enrolling = browser();
    login(&enrolling, &app, "/login", email2, PASSWORD).await;
    let (secret2, _) = enrol(&enrolling, &app).await;

    // Without acr_values the password-only session is enough.
    let req = rp.authorize(&["openid"], true, &[]);
    let (back, _) = follow(&early, &app, &req.url).await;
    assert!(back.starts_with(REDIRECT_URI), "{back}");

    // With acr_values=mfa: the second-step page, not the login page.
    let req = rp.authorize(&["openid"], true, &[("acr_values", MFA)]);
    let (at, body) = follow(&early, &app, &req.url).await;
    assert_eq!(path_of(&at), "/login/second-factor", "{at}");
    assert!(body.expect("a page").contains("name=\"code\""));
    let res = second_step(&early, &app, &at, &code_now(&app, &secret2)).await;
    assert_eq!(res.status().as_u16(), 303);
    let (back, _) = follow(&early, &app, &location(&res)).await;
    let tokens = rp.exchange_code(&code_of(&back), req.pkce_verifier).await;
    let claims = claims_of(&tokens);
    assert_eq!(claims["acr"], MFA);
    assert_eq!(claims["amr"], serde_json::json!(["pwd", "otp", "mfa"]));

    // prompt=login still asks for the password first, then the second factor.
    let req = rp.authorize(
        &["openid"],
        true,
        &[("acr_values", MFA), ("prompt", "login")],
    );
    let (at, _) = follow(&client, &app, &req.url).await;
    assert_eq!(path_of(&at), "/login", "{at}");
    let res = login(&client, &app, &at, email, PASSWORD).await;
    let step = location(&res);
    assert_eq!(path_of(&step), "/login/second-factor");
    let res = second_step(&client, &app, &step, &code_now(&app, &secret)).await;
    let (back, _) = follow(&client, &app, &location(&res)).await;
    assert!(back.starts_with(REDIRECT_URI), "{back}");
    let tokens = rp.exchange_code(&code_of(&back), req.pkce_verifier).await;
    assert_eq!(claims_of(&tokens)["acr"], MFA);
}

#[tokio::test]
async fn a_user_without_a_second_factor_asked_for_mfa_is_taken_to_enrolment_then_continues() {
    let app = spawn_app().await;
    let rp = rp_for(&app).await;
    let email = "noenrol@example.com";
    create_user(&app, email, PASSWORD);
    let client = browser();
    let req = rp.authorize(&["openid"], true, &[("acr_values", MFA)]);
    let (at, _) = follow(&client, &app, &req.url).await;
    assert_eq!(path_of(&at), "/login");
    let res = login(&client, &app, &at, email, PASSWORD).await;
    let (at, body) = follow(&client, &app, &location(&res)).await;
    assert_eq!(path_of(&at), "/account/mfa/totp", "{at}");
    let body = body.expect("the enrolment page");
    let secret = base32(&secret_of(&body));
    let res = Form::with_input(&body, "code")
        .on_page(&abs(&app, &at))
        .submit_with(&client, &app, &[("code", &code_now(&app, &secret))], None)
        .await;
    let done = expect_page(res, "enrolment").await;
    assert_eq!(recovery_codes_of(&done).len(), 10);
    // "Continue" goes back to the authorization request.
    let cont = unescape(
        done.split("href=\"")
            .map(|s| &s[..s.find('"').unwrap_or(0)])
            .find(|h| h.starts_with("/oauth2/authorize"))
            .unwrap_or_else(|| panic!("no link back to the request:\n{done}")),
    );
    let (back, _) = follow(&client, &app, &cont).await;
    assert!(back.starts_with(REDIRECT_URI), "{back}");
    let tokens = rp.exchange_code(&code_of(&back), req.pkce_verifier).await;
    assert_eq!(claims_of(&tokens)["acr"], MFA);
}

// ---------------------------------------------------------------------------------------------
// Storage.

#[tokio::test]
async fn the_seed_is_stored_sealed_under_the_key_encryption_key() {
    use base64::Engine;
    let kek = base64::engine::general_purpose::STANDARD.encode([9u8; 32]);
    let app = spawn_app_with(move |s: &mut Settings| {
        s.keys.encryption_key = Some(Secret::new(kek));
    })
    .await;
    let client = browser();
    create_user(&app, "sealed@example.com", PASSWORD);
    login(&client, &app, "/login", "sealed@example.com", PASSWORD).await;
    let body = page(&client, &app, "/account/mfa/totp").await;
    let secret_text = secret_of(&body);
    assert_eq!(
        app.count("totp_factors WHERE secret LIKE 'sealed:%'").await,
        1
    );
    assert_eq!(
        app.count(&format!("totp_factors WHERE secret LIKE '%{secret_text}%'"))
            .await,
        0,
        "the seed is not stored in the clear"
    );
    // And it opens: enrolment with a code from the shown seed works.
    let secret = base32(&secret_text);
    let res = Form::with_input(&body, "code")
        .on_page(&abs(&app, "/account/mfa/totp"))
        .submit_with(&client, &app, &[("code", &code_now(&app, &secret))], None)
        .await;
    assert_eq!(
        recovery_codes_of(&expect_page(res, "enrolment").await).len(),
        10
    );
}
