//! The self-service account pages from the outside: registration and email verification,
//! forgot/reset password, the account page (password and email change, sessions, connected
//! apps), per-account login lockout and the per-address rate limits. Mail goes to a real SMTP
//! listener ([`SmtpSink`]); time moves with `app.clock`.
//!
//! Not tested here: response timing (that unknown emails, locked accounts and wrong passwords
//! take as long as known ones). Wall-clock measurements on a shared test machine are too noisy
//! to assert on; `services::authn` and `services::accounts` do the same argon2 work on every
//! path by construction.

use std::time::Duration;

use castellan::Settings;
use castellan::config::Secret;

use crate::harness::forms::{Form, location, path_of, query_param, resolve_against, unescape};
use crate::harness::rp::{
    Auth, PASSWORD, REDIRECT_URI, assert_token_error, browse, code_of, confidential_rp,
    create_client, create_user, expect_page, expect_redirect, is_internal, post_login, sign_in,
    start_login, submit_consent, submit_login, token_request, userinfo_raw,
};
use crate::harness::smtp::SmtpSink;
use crate::harness::{TestApp, spawn_app_with};

const WAIT: Duration = Duration::from_secs(10);
/// A password that passes the policy and is not [`PASSWORD`].
const NEW_PASSWORD: &str = "tulip lantern quarry 42";
const GENERIC_FAILURE: &str = "Invalid email or password";
const FIREFOX_LINUX: &str =
    "Mozilla/5.0 (X11; Linux x86_64; rv:128.0) Gecko/20100101 Firefox/128.0";
const CHROME_WINDOWS: &str = "Mozilla/5.0 (Windows NT 10.0; Win64; x64) AppleWebKit/537.36 \
                              (KHTML, like Gecko) Chrome/126.0.0.0 Safari/537.36";

// ---------------------------------------------------------------------------------------------
// Helpers.

/// A server whose mail goes to a fresh SMTP sink.
async fn spawn_with_sink(configure: impl FnOnce(&mut Settings)) -> (TestApp, SmtpSink) {
    let sink = SmtpSink::start();
    let url = sink.url();
    let app = spawn_app_with(move |s| {
        s.mail.smtp_url = Some(Secret::new(url));
        configure(s);
    })
    .await;
    (app, sink)
}

/// Another browser: its own cookie jar, no redirects followed, the given User-Agent.
fn browser_as(user_agent: &str) -> reqwest::Client {
    reqwest::Client::builder()
        .cookie_store(true)
        .redirect(reqwest::redirect::Policy::none())
        .user_agent(user_agent)
        .build()
        .expect("http client")
}

/// GET a path or URL with the given browser.
async fn get_with(client: &reqwest::Client, app: &TestApp, url: &str) -> reqwest::Response {
    client
        .get(resolve_against(&app.url("/"), url))
        .send()
        .await
        .unwrap_or_else(|e| panic!("GET {url}: {e}"))
}

/// GET a page that must answer 200; returns its body.
async fn page_with(client: &reqwest::Client, app: &TestApp, url: &str) -> String {
    expect_page(get_with(client, app, url).await, &format!("GET {url}")).await
}

/// GET `page`, take the form posting to `action`, submit it with `fields` (hidden inputs
/// included, as a browser does).
async fn fill(
    client: &reqwest::Client,
    app: &TestApp,
    page: &str,
    action: &str,
    fields: &[(&str, &str)],
) -> reqwest::Response {
    let html = page_with(client, app, page).await;
    Form::with_action(&html, action)
        .on_page(&resolve_against(&app.url("/"), page))
        .submit_with(client, app, fields, None)
        .await
}

/// The login form posted from `/login` by the given browser.
async fn login_with(
    client: &reqwest::Client,
    app: &TestApp,
    email: &str,
    password: &str,
) -> reqwest::Response {
    fill(
        client,
        app,
        "/login",
        "/login",
        &[("email", email), ("password", password)],
    )
    .await
}

/// Logs the browser in; asserts the 303 a successful login gives.
async fn sign_in_browser(client: &reqwest::Client, app: &TestApp, email: &str, password: &str) {
    let res = login_with(client, app, email, password).await;
    let status = res.status().as_u16();
    let body = res.text().await.unwrap_or_default();
    assert_eq!(status, 303, "login of {email} should succeed:\n{body}");
}

/// Asserts a login was refused with the generic message; returns the page.
async fn assert_login_refused(res: reqwest::Response, what: &str) -> String {
    let status = res.status().as_u16();
    let location = res.headers().get("location").cloned();
    let body = res.text().await.unwrap_or_default();
    assert_eq!(
        status, 200,
        "{what}: expected the login page again (Location {location:?}):\n{body}"
    );
    assert!(
        body.contains(GENERIC_FAILURE),
        "{what}: expected {GENERIC_FAILURE:?}:\n{body}"
    );
    body
}

/// Asserts the browser has no live session: `/account` sends it to the login page.
async fn assert_signed_out(client: &reqwest::Client, app: &TestApp, what: &str) {
    let res = get_with(client, app, "/account").await;
    let status = res.status().as_u16();
    let loc = res
        .headers()
        .get("location")
        .map(|l| l.to_str().unwrap_or_default().to_owned());
    assert_eq!(
        (status, loc.as_deref()),
        (303, Some("/login?return_to=%2Faccount")),
        "{what}: /account should ask for a sign in"
    );
}

/// The account page of a signed-in browser.
async fn account_page(client: &reqwest::Client, app: &TestApp) -> String {
    page_with(client, app, "/account").await
}

/// Submits the account-page form posting to `action`.
async fn account_action(
    client: &reqwest::Client,
    app: &TestApp,
    action: &str,
    fields: &[(&str, &str)],
) -> reqwest::Response {
    fill(client, app, "/account", action, fields).await
}

/// The (unescaped) `href` of the first link whose target starts with `prefix`.
fn href_starting(html: &str, prefix: &str) -> String {
    let mut rest = html;
    while let Some(i) = rest.find("href=\"") {
        let tail = &rest[i + 6..];
        let end = tail.find('"').expect("closing quote");
        let href = unescape(&tail[..end]);
        if href.starts_with(prefix) {
            return href;
        }
        rest = &tail[end..];
    }
    panic!("no link to {prefix}... in the page:\n{html}")
}

/// The page with every CSRF token value (`cas_cf_...`) replaced by a placeholder.
fn without_csrf(html: &str) -> String {
    let mut out = String::with_capacity(html.len());
    let mut rest = html;
    while let Some(i) = rest.find("cas_cf_") {
        out.push_str(&rest[..i]);
        out.push_str("CSRF");
        let tail = &rest[i..];
        let end = tail
            .find(|c: char| !(c.is_ascii_alphanumeric() || c == '_' || c == '-'))
            .unwrap_or(tail.len());
        rest = &tail[end..];
    }
    out.push_str(rest);
    out
}

/// One login POST with an already served form: (status, Location, body without CSRF values).
async fn attempt_login(
    client: &reqwest::Client,
    app: &TestApp,
    form: &Form,
    email: &str,
    password: &str,
) -> (u16, Option<reqwest::header::HeaderValue>, String) {
    let res = form
        .submit_with(
            client,
            app,
            &[("email", email), ("password", password)],
            None,
        )
        .await;
    let status = res.status().as_u16();
    let location = res.headers().get("location").cloned();
    (status, location, without_csrf(&res.text().await.unwrap()))
}

/// `SELECT COUNT(*)` of the audit rows of one kind.
async fn audits(app: &TestApp, kind: &str) -> i64 {
    app.count(&format!("audit_events WHERE kind = '{kind}'"))
        .await
}

/// Lets mail that the server hands to its background sender reach the sink before a test
/// asserts that some mail did *not* arrive.
async fn settle() {
    tokio::time::sleep(Duration::from_millis(700)).await;
}

/// Posts `/register` from a fresh form; returns the response.
async fn register(
    client: &reqwest::Client,
    app: &TestApp,
    email: &str,
    password: &str,
    name: &str,
) -> reqwest::Response {
    fill(
        client,
        app,
        "/register",
        "/register",
        &[("email", email), ("password", password), ("name", name)],
    )
    .await
}

/// Asks for a reset link from `/password/forgot` with a fresh browser; returns the page.
async fn forgot(app: &TestApp, email: &str) -> String {
    let client = crate::harness::browser();
    let res = fill(
        &client,
        app,
        "/password/forgot",
        "/password/forgot",
        &[("email", email)],
    )
    .await;
    expect_page(res, "the forgot-password POST").await
}

// ---------------------------------------------------------------------------------------------
// Registration and verification.

#[tokio::test]
async fn a_visitor_registers_from_an_authorization_request_verifies_the_email_and_lands_back_at_the_client()
 {
    let (app, sink) = spawn_with_sink(|_| {}).await;
    let rp = confidential_rp(&app, &[]).await;
    let email = "grace@example.com";
    let (url, _state, nonce, verifier) = rp.authorize_url(&["profile", "email"], true);

    // authorize → /login?return_to=... → "Create an account" keeps return_to.
    let login_url = start_login(&app, &url).await;
    let return_to = query_param(&login_url, "return_to").expect("the login URL has return_to");
    let login_page = expect_page(browse(&app, &login_url).await, "the login page").await;
    let register_href = href_starting(&login_page, "/register");
    assert_eq!(
        query_param(&register_href, "return_to").as_deref(),
        Some(return_to.as_str()),
        "the registration link keeps return_to: {register_href}"
    );
    let register_page = expect_page(browse(&app, &register_href).await, "/register").await;
    let form = Form::with_action(&register_page, "/register");
    for name in ["email", "password", "name", "csrf_token"] {
        assert!(form.has(name), "the registration form has {name}: {form:?}");
    }
    assert_eq!(
        form.input("return_to").map(|i| i.value.as_str()),
        Some(return_to.as_str())
    );
    let res = form
        .submit(
            &app,
            &[
                ("email", email),
                ("password", NEW_PASSWORD),
                ("name", "Grace Hopper"),
            ],
            None,
        )
        .await;
    let done = expect_page(res, "the registration POST").await;
    assert!(done.contains("Check your mailbox"), "{done}");
    assert!(!done.contains(NEW_PASSWORD), "the password is not echoed");
    // The account is made by a background job (the page answers alike for a new and a taken
    // address); its mail is the sign that the job has run.
    let mail = sink.wait_for(email, WAIT).await;
    assert_eq!(
        app.count(&format!(
            "users WHERE email_lower = '{email}' AND email_verified = false"
        ))
        .await,
        1,
        "one unverified user row"
    );
    assert_eq!(audits(&app, "registered").await, 1);

    // The mail: an absolute link on the issuer's origin with a single-use token.
    assert!(
        mail.subject.contains("Confirm your email address"),
        "subject: {}",
        mail.subject
    );
    let link = mail.link();
    assert!(
        link.starts_with(&format!("{}/register/verify?token=cas_et_", app.address)),
        "verification link: {link}"
    );
    assert!(mail.text_body.contains("24 hours"), "{}", mail.text_body);

    // Following it verifies the address and leads back to sign in, still for the client.
    let verified = expect_page(browse(&app, &link).await, "the verification link").await;
    assert!(verified.contains("verified"), "{verified}");
    let continue_href = href_starting(&verified, "/login");
    assert_eq!(
        query_param(&continue_href, "return_to").as_deref(),
        Some(return_to.as_str()),
        "the verified page continues to sign in for the same request: {continue_href}"
    );
    assert_eq!(
        app.count(&format!(
            "users WHERE email_lower = '{email}' AND email_verified = true"
        ))
        .await,
        1
    );
    assert_eq!(audits(&app, "email_verified").await, 1);

    let back = submit_login(&app, &app.url(&continue_href), email, NEW_PASSWORD).await;
    assert_eq!(
        back,
        app.url(&return_to),
        "login returns to the authorization request"
    );
    let consent = expect_redirect(&app, browse(&app, &back).await, "authorize after login").await;
    assert_eq!(path_of(&consent), "/consent", "{consent}");
    let back = submit_consent(&app, &consent, "allow").await;
    let loc = expect_redirect(&app, browse(&app, &back).await, "authorize after consent").await;
    assert!(loc.starts_with(&format!("{REDIRECT_URI}?")), "{loc}");
    let tokens = rp.exchange_code(&code_of(&loc), verifier).await;
    let claims = rp.verify_id_token(&tokens, &nonce);
    assert_eq!(claims.email().map(|e| e.as_str()), Some(email));
    assert_eq!(claims.email_verified(), Some(true));

    // The link works once; a made-up one does not work at all.
    for (what, bad) in [
        ("a used link", link.clone()),
        (
            "a made-up link",
            app.url("/register/verify?token=cas_et_not-a-real-token"),
        ),
        ("a link without token", app.url("/register/verify")),
    ] {
        let res = browse(&app, &bad).await;
        let status = res.status().as_u16();
        let body = res.text().await.unwrap_or_default();
        assert_eq!(status, 400, "{what}: {body}");
        assert!(
            body.contains("href=\"/register/resend\""),
            "{what} offers a new link:\n{body}"
        );
    }
    assert_eq!(audits(&app, "email_verified").await, 1);
}

#[tokio::test]
async fn registration_errors_are_shown_per_field_and_the_password_is_never_echoed() {
    let (app, sink) = spawn_with_sink(|_| {}).await;
    let client = crate::harness::browser();
    let long_name = "n".repeat(101);
    // (email, password, name, field with the error, expected message)
    let cases: [(&str, &str, &str, &str, &str); 6] = [
        (
            "not-an-email",
            "violet harbour 77",
            "Ann",
            "email",
            "Enter a valid email address",
        ),
        (
            "ann@example.com",
            "Zq7!wr2",
            "Ann",
            "password",
            "Use at least 8 characters",
        ),
        (
            // 7 code points, 14 bytes: the minimum counts characters, not bytes.
            "ann@example.com",
            "ééééééé",
            "Ann",
            "password",
            "Use at least 8 characters",
        ),
        (
            "ann@example.com",
            "password123",
            "Ann",
            "password",
            "too common",
        ),
        (
            "marguerite@example.com",
            "x-Marguerite-2024",
            "Ann",
            "password",
            "email address in your password",
        ),
        (
            "ann@example.com",
            "violet harbour 77",
            &long_name,
            "name",
            "at most 100 characters",
        ),
    ];
    for (email, password, name, field, message) in cases {
        let what = format!("{field} error for ({email}, {password})");
        let res = register(&client, &app, email, password, name).await;
        let body = expect_page(res, &what).await;
        assert!(
            body.contains(message),
            "{what}: expected {message:?}:\n{body}"
        );
        assert!(
            body.contains(&format!("id=\"{field}-error\"")),
            "{what}: the message belongs to the {field} field:\n{body}"
        );
        assert!(
            !body.contains(password),
            "{what}: the password is echoed back:\n{body}"
        );
        let form = Form::with_action(&body, "/register");
        assert_eq!(
            form.input("password").map(|i| i.value.as_str()),
            Some(""),
            "{what}: the password input is empty"
        );
        assert_eq!(
            form.input("email").map(|i| i.value.as_str()),
            Some(email),
            "{what}: the email is kept"
        );
        assert_eq!(
            form.input("name").map(|i| i.value.as_str()),
            Some(name),
            "{what}: the name is kept"
        );
        assert!(
            !body.contains("Check your mailbox"),
            "{what}: not registered"
        );
    }
    assert_eq!(app.count("users").await, 0, "no account was created");
    assert_eq!(audits(&app, "registered").await, 0);
    settle().await;
    assert_eq!(sink.count(), 0, "no mail was sent");
}

#[tokio::test]
async fn registering_a_known_email_gives_the_same_page_and_mails_its_owner_a_notice() {
    let (app, sink) = spawn_with_sink(|_| {}).await;
    let known = "known@example.com";
    create_user(&app, known, PASSWORD);
    let client = crate::harness::browser();

    let fresh = register(&client, &app, "fresh@example.com", NEW_PASSWORD, "Fresh").await;
    let fresh = (fresh.status().as_u16(), fresh.text().await.unwrap());
    let again = register(&client, &app, known, NEW_PASSWORD, "Impostor").await;
    let again = (again.status().as_u16(), again.text().await.unwrap());
    assert_eq!(fresh.0, 200, "{}", fresh.1);
    assert_eq!(
        again, fresh,
        "a known and a new email get byte-identical answers"
    );

    let notice = sink.wait_for(known, WAIT).await;
    assert!(
        notice.subject.contains("already"),
        "subject: {}",
        notice.subject
    );
    assert!(
        notice.text_body.contains("already exists"),
        "{}",
        notice.text_body
    );
    let links = notice.links();
    assert!(
        links.contains(&app.url("/login")) && links.contains(&app.url("/password/forgot")),
        "the notice links to sign in and to reset: {links:?}"
    );
    assert!(
        !notice.text_body.contains("/register/verify"),
        "no verification link for a known address:\n{}",
        notice.text_body
    );
    let verify = sink.wait_for("fresh@example.com", WAIT).await;
    assert!(verify.link().contains("/register/verify?token="));
    settle().await;
    assert_eq!(
        sink.count_to(known),
        1,
        "only the notice went to the known address"
    );

    assert_eq!(
        app.count(&format!("users WHERE email_lower = '{known}'"))
            .await,
        1,
        "no second user row"
    );
    assert_eq!(
        audits(&app, "registered").await,
        1,
        "only the fresh address"
    );
    // The account keeps its password and name.
    sign_in_browser(&crate::harness::browser(), &app, known, PASSWORD).await;
    assert_login_refused(
        login_with(&crate::harness::browser(), &app, known, NEW_PASSWORD).await,
        "the password typed in the second registration",
    )
    .await;
    assert_eq!(
        app.count(&format!(
            "users WHERE email_lower = '{known}' AND name = 'Test User'"
        ))
        .await,
        1
    );
}

#[tokio::test]
async fn an_unverified_account_is_offered_a_new_link_instead_of_a_session() {
    let (app, sink) = spawn_with_sink(|_| {}).await;
    let rp = confidential_rp(&app, &[]).await;
    let email = "unverified@example.com";
    let res = register(&app.client, &app, email, NEW_PASSWORD, "Una").await;
    expect_page(res, "registration").await;
    let first = sink.wait_for(email, WAIT).await.link();

    // A wrong password gets the generic failure, not the resend offer.
    let (url, ..) = rp.authorize_url(&["profile"], true);
    let login_url = start_login(&app, &url).await;
    let wrong = post_login(&app, &login_url, email, "wrong password here").await;
    let wrong = assert_login_refused(wrong, "unverified, wrong password").await;
    assert!(!wrong.contains("/register/resend\""), "{wrong}");

    // The right password: a page offering a new link, no session, no redirect to return_to.
    let res = post_login(&app, &login_url, email, NEW_PASSWORD).await;
    assert!(
        res.headers().get("location").is_none(),
        "no redirect for an unverified account: {:?}",
        res.headers().get("location")
    );
    let offer = expect_page(res, "login of an unverified account").await;
    let form = Form::with_action(&offer, "/register/resend");
    assert!(form.has("csrf_token"), "{form:?}");
    assert_eq!(
        form.input("email").map(|i| i.value.as_str()),
        Some(email),
        "the resend form is filled in"
    );
    assert_eq!(app.count("sessions").await, 0, "no session was started");
    assert_signed_out(&app.client, &app, "after an unverified login").await;

    let sent = form.submit(&app, &[("email", email)], None).await;
    let sent = expect_page(sent, "the resend POST").await;
    assert!(sent.contains("Check your mailbox"), "{sent}");
    let second = sink.wait_for(email, WAIT).await;
    assert!(
        second.subject.contains("Confirm your email address"),
        "{}",
        second.subject
    );
    let second = second.link();
    assert!(
        second.starts_with(&format!("{}/register/verify?token=cas_et_", app.address)),
        "{second}"
    );
    assert_ne!(second, first, "a new token");
    assert_eq!(
        query_param(&second, "return_to").as_deref(),
        query_param(&login_url, "return_to").as_deref(),
        "the new link still leads back to the authorization request"
    );

    expect_page(browse(&app, &second).await, "the new verification link").await;
    let res = post_login(&app, &login_url, email, NEW_PASSWORD).await;
    let back = expect_redirect(&app, res, "login once verified").await;
    assert!(
        is_internal(&app, &back) && path_of(&back) == "/oauth2/authorize",
        "{back}"
    );
}

#[tokio::test]
async fn registration_can_be_turned_off() {
    let (app, sink) = spawn_with_sink(|s| s.registration.enabled = false).await;
    let res = app.get("/register").await;
    assert_eq!(res.status().as_u16(), 404);
    let res = app
        .client
        .post(app.url("/register"))
        .form(&[
            ("email", "closed@example.com"),
            ("password", NEW_PASSWORD),
            ("name", "Closed"),
            ("csrf_token", "cas_cf_whatever_whatever_whatever_whatever"),
        ])
        .send()
        .await
        .unwrap();
    assert_eq!(res.status().as_u16(), 404);
    assert_eq!(app.count("users").await, 0);
    settle().await;
    assert_eq!(sink.count(), 0);
}

// ---------------------------------------------------------------------------------------------
// Forgot and reset password.

#[tokio::test]
async fn a_password_reset_replaces_the_password_once_and_ends_every_session() {
    let (app, sink) = spawn_with_sink(|_| {}).await;
    let rp = confidential_rp(&app, &[]).await;
    let email = "reset@example.com";
    create_user(&app, email, PASSWORD);
    // Browser A holds a session and the client a refresh token; browser B another session.
    let signed = sign_in(&app, &rp, email, &["profile", "offline_access"], true).await;
    let browser_b = crate::harness::browser();
    sign_in_browser(&browser_b, &app, email, PASSWORD).await;
    account_page(&app.client, &app).await;
    account_page(&browser_b, &app).await;

    let answer = forgot(&app, email).await;
    assert!(answer.contains("Check your mailbox"), "{answer}");
    let mail = sink.wait_for(email, WAIT).await;
    assert!(mail.subject.contains("Reset"), "subject: {}", mail.subject);
    let link = mail.link();
    assert!(
        link.starts_with(&format!("{}/password/reset?token=cas_et_", app.address)),
        "reset link: {link}"
    );
    assert_eq!(audits(&app, "password_reset_requested").await, 1);

    // The form from the link; a weak password is refused and the link stays usable.
    let resetter = crate::harness::browser();
    let form_page = page_with(&resetter, &app, &link).await;
    let form = Form::with_action(&form_page, "/password/reset");
    assert!(form.has("csrf_token") && form.has("token"), "{form:?}");
    let weak = form
        .submit_with(&resetter, &app, &[("password", "password123")], None)
        .await;
    let weak = expect_page(weak, "a common password at reset").await;
    assert!(weak.contains("too common"), "{weak}");
    assert!(!weak.contains("password123"), "not echoed:\n{weak}");
    account_page(&app.client, &app).await; // nothing happened yet

    let form_page = page_with(&resetter, &app, &link).await;
    let form = Form::with_action(&form_page, "/password/reset");
    let done = form
        .submit_with(&resetter, &app, &[("password", NEW_PASSWORD)], None)
        .await;
    let done = expect_page(done, "the reset POST").await;
    assert!(done.contains("Your password is changed"), "{done}");
    assert_eq!(audits(&app, "password_reset_completed").await, 1);

    // Every session ended, the refresh token revoked.
    assert_signed_out(&app.client, &app, "browser A after the reset").await;
    assert_signed_out(&browser_b, &app, "browser B after the reset").await;
    assert_eq!(app.count("sessions").await, 0);
    assert_token_error(
        rp.refresh(&signed.refresh_token()).await,
        "invalid_grant",
        "refresh after a password reset",
    );

    // The link works once, by GET and by POST.
    let res = get_with(&resetter, &app, &link).await;
    let status = res.status().as_u16();
    let body = res.text().await.unwrap_or_default();
    assert_eq!(status, 400, "a used reset link:\n{body}");
    assert!(body.contains("href=\"/password/forgot\""), "{body}");
    let replay = form
        .submit_with(
            &resetter,
            &app,
            &[("password", "another fine passphrase")],
            None,
        )
        .await;
    assert_eq!(replay.status().as_u16(), 400, "posting a used link again");

    // Old password out, new one in; the owner was told.
    assert_login_refused(
        login_with(&crate::harness::browser(), &app, email, PASSWORD).await,
        "the old password",
    )
    .await;
    sign_in_browser(&crate::harness::browser(), &app, email, NEW_PASSWORD).await;
    let changed = sink.wait_for(email, WAIT).await;
    assert!(
        changed.subject.contains("password was changed"),
        "{}",
        changed.subject
    );
}

#[tokio::test]
async fn a_reset_link_expires_after_one_hour() {
    let (app, sink) = spawn_with_sink(|_| {}).await;
    let email = "slow@example.com";
    create_user(&app, email, PASSWORD);
    forgot(&app, email).await;
    let link = sink.wait_for(email, WAIT).await.link();
    let client = crate::harness::browser();
    let form_page = page_with(&client, &app, &link).await;
    let form = Form::with_action(&form_page, "/password/reset");

    app.clock.advance_secs(3601);
    let res = get_with(&client, &app, &link).await;
    assert_eq!(res.status().as_u16(), 400, "GET an expired link");
    let res = form
        .submit_with(&client, &app, &[("password", NEW_PASSWORD)], None)
        .await;
    let status = res.status().as_u16();
    let body = res.text().await.unwrap_or_default();
    assert_eq!(status, 400, "POST with an expired link:\n{body}");
    assert!(body.contains("expired"), "{body}");

    sign_in_browser(&crate::harness::browser(), &app, email, PASSWORD).await;
    assert_eq!(audits(&app, "password_reset_completed").await, 0);
}

#[tokio::test]
async fn a_locked_out_account_can_still_reset_its_password_and_sign_in_at_once() {
    let (app, sink) = spawn_with_sink(|_| {}).await;
    let email = "locked@example.com";
    create_user(&app, email, PASSWORD);
    let client = crate::harness::browser();
    for i in 0..5 {
        assert_login_refused(
            login_with(&client, &app, email, "not my password").await,
            &format!("failure {}", i + 1),
        )
        .await;
    }
    assert_login_refused(
        login_with(&client, &app, email, PASSWORD).await,
        "the right password while locked",
    )
    .await;

    forgot(&app, email).await;
    let link = sink.wait_for(email, WAIT).await.link();
    let res = fill(
        &client,
        &app,
        &link,
        "/password/reset",
        &[("password", NEW_PASSWORD)],
    )
    .await;
    let done = expect_page(res, "the reset of a locked account").await;
    assert!(done.contains("Your password is changed"), "{done}");
    sign_in_browser(&client, &app, email, NEW_PASSWORD).await;
}

#[tokio::test]
async fn forgot_password_answers_the_same_for_known_and_unknown_emails_and_mails_only_the_known_one()
 {
    let (app, sink) = spawn_with_sink(|_| {}).await;
    let known = "someone@example.com";
    let unknown = "nobody@example.com";
    create_user(&app, known, PASSWORD);
    let client = crate::harness::browser();

    let mut answers = Vec::new();
    for email in [known, unknown, "not an email"] {
        let res = fill(
            &client,
            &app,
            "/password/forgot",
            "/password/forgot",
            &[("email", email)],
        )
        .await;
        let status = res.status().as_u16();
        let content_type = res
            .headers()
            .get("content-type")
            .map(|v| v.to_str().unwrap_or_default().to_owned());
        let body = without_csrf(&res.text().await.unwrap_or_default());
        assert!(
            !body.contains(email),
            "the answer does not repeat the email"
        );
        answers.push((status, content_type, body));
    }
    assert_eq!(answers[0].0, 200, "{}", answers[0].2);
    assert!(
        answers[0].2.contains("Check your mailbox"),
        "{}",
        answers[0].2
    );
    assert_eq!(
        answers[1], answers[0],
        "unknown email: same answer as a known one"
    );
    assert_eq!(
        answers[2], answers[0],
        "malformed email: same answer as a known one"
    );

    let mail = sink.wait_for(known, WAIT).await;
    assert!(
        mail.link().contains("/password/reset?token="),
        "{}",
        mail.text_body
    );
    settle().await;
    assert_eq!(sink.count_to(unknown), 0, "no mail for an unknown address");
    assert_eq!(sink.count(), 1, "exactly one mail in all");
    assert_eq!(audits(&app, "password_reset_requested").await, 1);
}

// ---------------------------------------------------------------------------------------------
// The account page.

#[tokio::test]
async fn the_account_page_needs_a_session_and_login_comes_back_to_it() {
    let (app, _sink) = spawn_with_sink(|_| {}).await;
    let email = "me@example.com";
    create_user(&app, email, PASSWORD);
    assert_signed_out(&app.client, &app, "without a cookie").await;
    let res = fill(
        &app.client,
        &app,
        "/login?return_to=%2Faccount",
        "/login",
        &[("email", email), ("password", PASSWORD)],
    )
    .await;
    assert_eq!(res.status().as_u16(), 303);
    assert_eq!(location(&res), "/account");
    let page = account_page(&app.client, &app).await;
    assert!(page.contains(email), "{page}");
    // A POST without a session goes to the login page too, and changes nothing.
    let res = crate::harness::browser()
        .post(app.url("/account/profile"))
        .form(&[("name", "Intruder"), ("csrf_token", "cas_cf_x")])
        .send()
        .await
        .unwrap();
    assert_eq!(res.status().as_u16(), 303);
    assert_eq!(app.count("users WHERE name = 'Intruder'").await, 0);
}

#[tokio::test]
async fn every_account_form_refuses_a_post_without_its_csrf_token() {
    let (app, _sink) = spawn_with_sink(|_| {}).await;
    let rp = confidential_rp(&app, &[]).await;
    let email = "csrf@example.com";
    create_user(&app, email, PASSWORD);
    sign_in(&app, &rp, email, &["profile", "offline_access"], true).await;
    let other = crate::harness::browser();
    sign_in_browser(&other, &app, email, PASSWORD).await;
    let page = account_page(&app.client, &app).await;
    let other_sid = Form::with_action(&page, "/account/sessions/end")
        .input("sid")
        .expect("sid")
        .value
        .clone();

    let actions: [(&str, Vec<(&str, &str)>); 6] = [
        ("/account/profile", vec![("name", "Changed")]),
        ("/account/email", vec![("email", "elsewhere@example.com")]),
        (
            "/account/password",
            vec![("current_password", PASSWORD), ("password", NEW_PASSWORD)],
        ),
        ("/account/sessions/end", vec![("sid", other_sid.as_str())]),
        ("/account/sessions/end-all", vec![]),
        (
            "/account/apps/revoke",
            vec![("client_id", rp.client_id.as_str())],
        ),
    ];
    for (action, fields) in &actions {
        let form = Form::with_action(&page, action);
        assert!(
            form.input("csrf_token").is_some_and(|i| i.kind == "hidden"),
            "{action} carries a hidden csrf_token: {form:?}"
        );
        for (what, token) in [("without", None), ("with a forged", Some("cas_cf_forged"))] {
            let mut body: Vec<(String, String)> = form
                .hidden_fields()
                .into_iter()
                .filter(|(n, _)| n != "csrf_token" && !fields.iter().any(|(f, _)| f == n))
                .collect();
            body.extend(
                fields
                    .iter()
                    .map(|(k, v)| ((*k).to_owned(), (*v).to_owned())),
            );
            if let Some(t) = token {
                body.push(("csrf_token".into(), t.into()));
            }
            let res = form.send(&app.client, &app, &body).await;
            assert_eq!(res.status().as_u16(), 403, "{action} {what} CSRF token");
        }
    }
    // Nothing changed.
    account_page(&app.client, &app).await;
    account_page(&other, &app).await;
    assert_eq!(app.count("users WHERE name = 'Test User'").await, 1);
    assert_eq!(app.count("consents").await, 1);
    assert_eq!(app.count("email_tokens").await, 0);
    sign_in_browser(&crate::harness::browser(), &app, email, PASSWORD).await;

    // With the token the profile form works.
    let res = account_action(
        &app.client,
        &app,
        "/account/profile",
        &[("name", "Changed")],
    )
    .await;
    let saved = expect_page(res, "the profile POST").await;
    assert!(saved.contains("Your profile is saved"), "{saved}");
    assert_eq!(app.count("users WHERE name = 'Changed'").await, 1);
}

#[tokio::test]
async fn changing_the_password_needs_the_current_one_and_ends_the_other_sessions_only() {
    let (app, sink) = spawn_with_sink(|_| {}).await;
    let rp = confidential_rp(&app, &[]).await;
    let email = "changer@example.com";
    create_user(&app, email, PASSWORD);
    // Tokens issued five seconds ago (the server's clock moved back for the sign-in), so that
    // the change comes after them: a token from the same second as a sign-out everywhere stands.
    app.clock.advance_secs(-5);
    let signed = sign_in(&app, &rp, email, &["profile", "offline_access"], true).await;
    app.clock.advance_secs(5);
    let at = signed.access_token();
    assert_eq!(userinfo_raw(&app, Some(&at)).await.status, 200);
    let other = crate::harness::browser();
    sign_in_browser(&other, &app, email, PASSWORD).await;

    // A wrong current password changes nothing.
    let res = account_action(
        &app.client,
        &app,
        "/account/password",
        &[
            ("current_password", "not the current one"),
            ("password", NEW_PASSWORD),
        ],
    )
    .await;
    let refused = expect_page(res, "a wrong current password").await;
    assert!(
        refused.contains("current password is not correct"),
        "{refused}"
    );
    assert!(!refused.contains(NEW_PASSWORD), "not echoed");
    account_page(&other, &app).await;
    assert_eq!(audits(&app, "password_changed").await, 0);

    // A new password that breaks the policy changes nothing either.
    let res = account_action(
        &app.client,
        &app,
        "/account/password",
        &[("current_password", PASSWORD), ("password", "short")],
    )
    .await;
    let refused = expect_page(res, "a too short new password").await;
    assert!(refused.contains("Use at least 8 characters"), "{refused}");
    account_page(&other, &app).await;

    let res = account_action(
        &app.client,
        &app,
        "/account/password",
        &[("current_password", PASSWORD), ("password", NEW_PASSWORD)],
    )
    .await;
    let done = expect_page(res, "the password change").await;
    assert!(done.contains("Your password is changed"), "{done}");
    assert!(!done.contains(NEW_PASSWORD), "not echoed");
    assert_eq!(audits(&app, "password_changed").await, 1);

    // This browser stays signed in; the other one is out; refresh tokens are revoked.
    let still = account_page(&app.client, &app).await;
    assert!(still.contains(email), "{still}");
    assert_signed_out(&other, &app, "the other browser").await;
    assert_eq!(app.count("sessions").await, 1);
    assert_token_error(
        rp.refresh(&signed.refresh_token()).await,
        "invalid_grant",
        "refresh after a password change",
    );
    // So are the access tokens issued before the change.
    let res = userinfo_raw(&app, Some(&at)).await;
    assert_eq!(
        res.status, 401,
        "an access token from before the change: {}",
        res.text
    );

    assert_login_refused(
        login_with(&crate::harness::browser(), &app, email, PASSWORD).await,
        "the old password",
    )
    .await;
    sign_in_browser(&crate::harness::browser(), &app, email, NEW_PASSWORD).await;
    let mail = sink.wait_for(email, WAIT).await;
    assert!(
        mail.subject.contains("password was changed"),
        "{}",
        mail.subject
    );
}

#[tokio::test]
async fn an_email_change_takes_effect_only_once_the_new_address_is_verified() {
    let (app, sink) = spawn_with_sink(|_| {}).await;
    let old = "old@example.com";
    let new = "new@example.com";
    create_user(&app, old, PASSWORD);
    sign_in_browser(&app.client, &app, old, PASSWORD).await;

    let res = account_action(
        &app.client,
        &app,
        "/account/email",
        &[("email", new), ("current_password", PASSWORD)],
    )
    .await;
    let page = expect_page(res, "the email change POST").await;
    assert!(page.contains("We sent a link to the new address"), "{page}");

    // Nothing switched yet.
    let page = account_page(&app.client, &app).await;
    assert!(page.contains(old), "{page}");
    assert_eq!(
        app.count(&format!("users WHERE email_lower = '{old}'"))
            .await,
        1
    );
    assert_eq!(
        app.count(&format!("users WHERE email_lower = '{new}'"))
            .await,
        0
    );
    assert_login_refused(
        login_with(&crate::harness::browser(), &app, new, PASSWORD).await,
        "the new address before verification",
    )
    .await;

    let mail = sink.wait_for(new, WAIT).await;
    assert!(
        mail.subject.contains("new email address"),
        "{}",
        mail.subject
    );
    let link = mail.link();
    assert!(
        link.starts_with(&app.address) && link.contains("token=cas_et_"),
        "{link}"
    );
    // Followed from another browser (a phone's mail app): the link itself is the proof.
    let verified = page_with(&crate::harness::browser(), &app, &link).await;
    assert!(verified.contains("verified"), "{verified}");

    let page = account_page(&app.client, &app).await;
    assert!(page.contains(new), "{page}");
    assert!(!page.contains(old), "{page}");
    assert_eq!(
        app.count(&format!(
            "users WHERE email_lower = '{new}' AND email_verified = true"
        ))
        .await,
        1
    );
    assert_eq!(
        app.count(&format!("users WHERE email_lower = '{old}'"))
            .await,
        0
    );
    sign_in_browser(&crate::harness::browser(), &app, new, PASSWORD).await;
    assert_login_refused(
        login_with(&crate::harness::browser(), &app, old, PASSWORD).await,
        "the old address after the change",
    )
    .await;
    assert_eq!(audits(&app, "email_verified").await, 1);
    let res = get_with(&crate::harness::browser(), &app, &link).await;
    assert_eq!(
        res.status().as_u16(),
        400,
        "the email-change link works once"
    );
}

#[tokio::test]
async fn the_sessions_list_shows_both_browsers_and_signing_out_the_other_ends_it() {
    let (app, _sink) = spawn_with_sink(|_| {}).await;
    let email = "two@example.com";
    create_user(&app, email, PASSWORD);
    let firefox = browser_as(FIREFOX_LINUX);
    let chrome = browser_as(CHROME_WINDOWS);
    sign_in_browser(&firefox, &app, email, PASSWORD).await;
    sign_in_browser(&chrome, &app, email, PASSWORD).await;

    let page = account_page(&firefox, &app).await;
    assert!(page.contains("Firefox"), "{page}");
    assert!(page.contains("Chrome"), "{page}");
    assert_eq!(page.matches("(this browser)").count(), 1, "{page}");
    let this_row = page
        .lines()
        .find(|l| l.contains("(this browser)"))
        .unwrap_or_default();
    assert!(
        this_row.contains("Firefox"),
        "the current one is Firefox: {this_row}"
    );
    let end_forms: Vec<Form> = Form::all(&page)
        .into_iter()
        .filter(|f| f.action == "/account/sessions/end")
        .collect();
    assert_eq!(
        end_forms.len(),
        1,
        "a sign-out button for the other session only"
    );
    let sid = end_forms[0].input("sid").expect("sid").value.clone();
    assert_eq!(app.count(&format!("sessions WHERE sid = '{sid}'")).await, 1);

    let res = end_forms[0]
        .clone()
        .on_page(&app.url("/account"))
        .submit_with(&firefox, &app, &[], None)
        .await;
    assert_eq!(res.status().as_u16(), 303);
    assert_eq!(location(&res), "/account");
    assert_signed_out(&chrome, &app, "the signed-out browser").await;
    let page = account_page(&firefox, &app).await;
    assert!(!page.contains("Chrome"), "{page}");
    assert_eq!(app.count(&format!("sessions WHERE sid = '{sid}'")).await, 0);
    assert_eq!(audits(&app, "session_ended").await, 1);

    // "Sign out everywhere" ends both, this one included.
    sign_in_browser(&chrome, &app, email, PASSWORD).await;
    let res = account_action(&firefox, &app, "/account/sessions/end-all", &[]).await;
    assert_eq!(res.status().as_u16(), 303);
    assert!(is_internal(&app, &location(&res)) && path_of(&location(&res)) == "/login");
    assert_signed_out(&firefox, &app, "this browser after sign out everywhere").await;
    assert_signed_out(&chrome, &app, "the other browser after sign out everywhere").await;
    assert_eq!(app.count("sessions").await, 0);
    assert_eq!(audits(&app, "logout_everywhere").await, 1);
}

#[tokio::test]
async fn revoking_a_connected_app_removes_its_consent_and_refresh_tokens() {
    let (app, _sink) = spawn_with_sink(|_| {}).await;
    let rp = confidential_rp(&app, &["--name", "Photo Printer"]).await;
    let email = "apps@example.com";
    create_user(&app, email, PASSWORD);
    let signed = sign_in(&app, &rp, email, &["profile", "offline_access"], true).await;
    assert!(
        rp.refresh(&signed.refresh_token()).await.is_ok(),
        "refresh works before"
    );

    let page = account_page(&app.client, &app).await;
    assert!(page.contains("Photo Printer"), "{page}");
    let form = Form::with_action(&page, "/account/apps/revoke");
    assert_eq!(
        form.input("client_id").map(|i| i.value.as_str()),
        Some(rp.client_id.as_str())
    );
    assert_eq!(app.count("consents").await, 1);

    // A fresh refresh token (the first was rotated by the refresh above).
    let again = crate::harness::rp::sign_in_again(&app, &rp, &["profile", "offline_access"]).await;
    let rt = again.refresh_token();
    let res = form
        .on_page(&app.url("/account"))
        .submit(&app, &[], None)
        .await;
    assert_eq!(res.status().as_u16(), 303);
    assert_eq!(location(&res), "/account");

    let page = account_page(&app.client, &app).await;
    assert!(!page.contains("Photo Printer"), "{page}");
    assert!(
        Form::find(&page, |f| f.action == "/account/apps/revoke").is_none(),
        "{page}"
    );
    assert_eq!(app.count("consents").await, 0);
    assert_eq!(audits(&app, "consent_revoked").await, 1);
    assert_token_error(
        rp.refresh(&rt).await,
        "invalid_grant",
        "refresh after the app was revoked",
    );
    assert_eq!(
        app.count("refresh_tokens WHERE revoked = false").await,
        0,
        "every refresh token of the app is revoked"
    );

    // The session survives, but a new authorization asks for consent again.
    let (url, ..) = rp.authorize_url(&["profile"], true);
    let loc = expect_redirect(&app, browse(&app, &url).await, "authorize after revoke").await;
    assert!(
        is_internal(&app, &loc) && path_of(&loc) == "/consent",
        "consent is asked again, went to {loc}"
    );
}

// ---------------------------------------------------------------------------------------------
// Lockout and rate limits.

#[tokio::test]
async fn five_failures_lock_the_account_with_the_same_answer_as_a_wrong_password_until_the_lock_ends()
 {
    let (app, _sink) = spawn_with_sink(|_| {}).await;
    let email = "target@example.com";
    create_user(&app, email, PASSWORD);
    let client = crate::harness::browser();
    let login_page = page_with(&client, &app, "/login").await;
    let form = Form::with_action(&login_page, "/login");
    let attempt = |password: &'static str| attempt_login(&client, &app, &form, email, password);

    let mut wrong = Vec::new();
    for _ in 0..5 {
        wrong.push(attempt("not the password").await);
    }
    for w in &wrong {
        assert_eq!(w.0, 200, "{}", w.2);
        assert!(w.2.contains(GENERIC_FAILURE), "{}", w.2);
    }
    assert_eq!(audits(&app, "login_locked").await, 1);
    assert_eq!(app.count("users WHERE locked_until IS NOT NULL").await, 1);

    let locked_right = attempt(PASSWORD).await;
    assert_eq!(
        locked_right, wrong[4],
        "the right password on a locked account looks exactly like a wrong one"
    );
    let locked_wrong = attempt("still not the password").await;
    assert_eq!(locked_wrong.0, wrong[4].0);
    assert_eq!(app.count("sessions").await, 0);

    app.clock.advance_secs(61);
    let released = attempt(PASSWORD).await;
    assert_eq!(
        released.0, 303,
        "the lock is over after 60 s: {}",
        released.2
    );
    assert_eq!(app.count("sessions").await, 1);
}

#[tokio::test]
async fn each_failure_after_a_lock_doubles_the_next_lock() {
    let (app, _sink) = spawn_with_sink(|_| {}).await;
    let email = "doubled@example.com";
    create_user(&app, email, PASSWORD);
    let client = crate::harness::browser();
    for _ in 0..5 {
        assert_login_refused(
            login_with(&client, &app, email, "wrong one").await,
            "failure",
        )
        .await;
    }
    app.clock.advance_secs(61);
    // The sixth failure in the window locks for 120 s.
    assert_login_refused(
        login_with(&client, &app, email, "wrong again").await,
        "sixth",
    )
    .await;
    app.clock.advance_secs(61);
    assert_login_refused(
        login_with(&client, &app, email, PASSWORD).await,
        "the right password 61 s into a 120 s lock",
    )
    .await;
    app.clock.advance_secs(60);
    sign_in_browser(&client, &app, email, PASSWORD).await;
    assert_eq!(audits(&app, "login_locked").await, 2);
}

#[tokio::test]
async fn successful_sign_ins_from_one_address_never_use_up_the_login_limit() {
    // rate_limit.login_per_minute counts failed attempts: an office behind one address (or
    // every user behind a proxy) signs in as often as it likes.
    let (app, _sink) = spawn_with_sink(|s| s.rate_limit.login_per_minute = 2).await;
    create_user(&app, "office@example.com", PASSWORD);
    for i in 0..6 {
        let client = crate::harness::browser();
        let res = login_with(&client, &app, "office@example.com", PASSWORD).await;
        assert_eq!(
            res.status().as_u16(),
            303,
            "sign-in {} from one address",
            i + 1
        );
    }
    // Failures do count: two are allowed, the third attempt is refused, right password or not.
    let client = crate::harness::browser();
    for _ in 0..2 {
        assert_login_refused(
            login_with(&client, &app, "office@example.com", "wrong").await,
            "a wrong password within the limit",
        )
        .await;
    }
    let res = login_with(&client, &app, "office@example.com", PASSWORD).await;
    assert_eq!(res.status().as_u16(), 429);
}

#[tokio::test]
async fn the_login_rate_limit_answers_429_with_retry_after_and_releases_with_time() {
    let (app, _sink) = spawn_with_sink(|s| s.rate_limit.login_per_minute = 3).await;
    let email = "busy@example.com";
    create_user(&app, email, PASSWORD);
    let client = crate::harness::browser();
    let login_page = page_with(&client, &app, "/login").await;
    let form = Form::with_action(&login_page, "/login");
    for i in 0..3 {
        let res = form
            .submit_with(
                &client,
                &app,
                &[("email", email), ("password", "wrong")],
                None,
            )
            .await;
        assert_eq!(
            res.status().as_u16(),
            200,
            "attempt {} is within the limit",
            i + 1
        );
    }
    // Over the limit even with the right password: no session.
    let res = form
        .submit_with(
            &client,
            &app,
            &[("email", email), ("password", PASSWORD)],
            None,
        )
        .await;
    assert_eq!(res.status().as_u16(), 429);
    let retry_after: u64 = res
        .headers()
        .get("retry-after")
        .expect("a Retry-After header")
        .to_str()
        .unwrap()
        .parse()
        .expect("Retry-After in seconds");
    assert!((1..=60).contains(&retry_after), "Retry-After {retry_after}");
    assert_eq!(app.count("sessions").await, 0);
    // The limit is per address and per form: the GET of the page still works.
    page_with(&client, &app, "/login").await;

    app.clock.advance_secs(60);
    let res = form
        .submit_with(
            &client,
            &app,
            &[("email", email), ("password", PASSWORD)],
            None,
        )
        .await;
    assert_eq!(res.status().as_u16(), 303, "released a minute later");
}

#[tokio::test]
async fn registration_and_forgot_password_submissions_are_rate_limited_per_address() {
    let (app, _sink) = spawn_with_sink(|s| {
        s.rate_limit.register_per_minute = 2;
        s.rate_limit.forgot_password_per_minute = 2;
    })
    .await;
    let client = crate::harness::browser();
    for (page, fields) in [
        (
            "/register",
            vec![("email", "bad"), ("password", "x"), ("name", "")],
        ),
        ("/password/forgot", vec![("email", "who@example.com")]),
    ] {
        let html = page_with(&client, &app, page).await;
        let form = Form::with_action(&html, page);
        for i in 0..2 {
            let res = form.submit_with(&client, &app, &fields, None).await;
            assert_eq!(res.status().as_u16(), 200, "{page}: attempt {}", i + 1);
        }
        let res = form.submit_with(&client, &app, &fields, None).await;
        assert_eq!(res.status().as_u16(), 429, "{page}: over the limit");
        assert!(
            res.headers().get("retry-after").is_some(),
            "{page}: Retry-After"
        );
    }
    app.clock.advance_secs(60);
    let res = fill(
        &client,
        &app,
        "/password/forgot",
        "/password/forgot",
        &[("email", "who@example.com")],
    )
    .await;
    assert_eq!(res.status().as_u16(), 200, "released a minute later");
}

#[tokio::test]
async fn successful_token_requests_are_never_throttled_but_failed_client_authentications_are() {
    let (app, _sink) = spawn_with_sink(|s| s.rate_limit.client_auth_failures_per_minute = 3).await;
    let (id, secret) = create_client(
        &app,
        &["--grant-type", "client_credentials", "--scope", "reports"],
    );
    let secret = secret.expect("secret");
    let form = [("grant_type", "client_credentials"), ("scope", "reports")];

    for _ in 0..2 {
        let raw = token_request(&app, Auth::Basic(&id, "wrong secret"), &form).await;
        raw.assert_oauth_error(401, "invalid_client");
    }
    let mut statuses = std::collections::BTreeMap::new();
    for _ in 0..50 {
        let raw = token_request(&app, Auth::Basic(&id, &secret), &form).await;
        *statuses.entry(raw.status).or_insert(0) += 1;
    }
    assert_eq!(
        statuses,
        std::collections::BTreeMap::from([(200, 50)]),
        "50 good requests after 2 failures: none throttled"
    );
    // The good requests took no tokens: the third failure is still answered normally.
    let raw = token_request(&app, Auth::Basic(&id, "wrong secret"), &form).await;
    raw.assert_oauth_error(401, "invalid_client");
    let raw = token_request(&app, Auth::Basic(&id, "wrong secret"), &form).await;
    assert_eq!(
        raw.status, 429,
        "the fourth failure within a minute: {}",
        raw.text
    );
    let retry_after: u64 = raw
        .header("retry-after")
        .expect("Retry-After")
        .parse()
        .expect("seconds");
    assert!((1..=60).contains(&retry_after), "Retry-After {retry_after}");
    // Another client secret guess from the same address is refused too (no oracle).
    let raw = token_request(&app, Auth::Post(&id, "another guess"), &form).await;
    assert_eq!(raw.status, 429);

    app.clock.advance_secs(60);
    let raw = token_request(&app, Auth::Basic(&id, "wrong secret"), &form).await;
    raw.assert_oauth_error(401, "invalid_client");
    let raw = token_request(&app, Auth::Basic(&id, &secret), &form).await;
    assert_eq!(raw.status, 200, "{}", raw.text);
}

// ---------------------------------------------------------------------------------------------
// Links that die when the account's password, email or sessions change.

/// The link of the next mail to `to` whose subject contains `subject` (mails about other
/// things to the same address, such as the notice of an email change, are passed over).
async fn link_of_mail(sink: &SmtpSink, to: &str, subject: &str) -> String {
    loop {
        let mail = sink.wait_for(to, WAIT).await;
        if mail.subject.contains(subject) {
            return mail.link();
        }
    }
}

/// Asks for an email change from the account page of `client` (with the current password).
async fn request_email_change(
    client: &reqwest::Client,
    app: &TestApp,
    new: &str,
    current_password: &str,
) -> String {
    let res = account_action(
        client,
        app,
        "/account/email",
        &[("email", new), ("current_password", current_password)],
    )
    .await;
    expect_page(res, "the email change POST").await
}

/// Asserts that an emailed verification link is refused and that the account's address is
/// still `email`.
async fn assert_email_link_dead(app: &TestApp, link: &str, email: &str, what: &str) {
    let res = get_with(&crate::harness::browser(), app, link).await;
    let status = res.status().as_u16();
    let body = res.text().await.unwrap_or_default();
    assert_eq!(
        status, 400,
        "{what}: the email-change link must be dead:\n{body}"
    );
    assert_eq!(
        app.count(&format!("users WHERE email_lower = '{email}'"))
            .await,
        1,
        "{what}: the account keeps {email}"
    );
}

/// Asserts that a reset link is refused by GET and that the password did not change to
/// [`NEW_PASSWORD`] through it.
async fn assert_reset_link_dead(app: &TestApp, link: &str, what: &str) {
    let res = get_with(&crate::harness::browser(), app, link).await;
    let status = res.status().as_u16();
    let body = res.text().await.unwrap_or_default();
    assert_eq!(status, 400, "{what}: the reset link must be dead:\n{body}");
    assert!(body.contains("expired"), "{what}: {body}");
}

#[tokio::test]
async fn an_email_change_link_dies_when_the_owner_resets_the_password() {
    let (app, sink) = spawn_with_sink(|_| {}).await;
    let victim = "victim@example.com";
    let attacker = "attacker@evil.example";
    create_user(&app, victim, PASSWORD);
    // The attacker knows the password (and so holds a session) and asks for the email change.
    let attacker_browser = crate::harness::browser();
    sign_in_browser(&attacker_browser, &app, victim, PASSWORD).await;
    request_email_change(&attacker_browser, &app, attacker, PASSWORD).await;
    let takeover = link_of_mail(&sink, attacker, "new email address").await;

    // The owner resets the password: the attacker's session ends, and so does the link.
    forgot(&app, victim).await;
    let reset = link_of_mail(&sink, victim, "Reset").await;
    let resetter = crate::harness::browser();
    let form_page = page_with(&resetter, &app, &reset).await;
    let done = Form::with_action(&form_page, "/password/reset")
        .submit_with(&resetter, &app, &[("password", NEW_PASSWORD)], None)
        .await;
    expect_page(done, "the reset").await;
    assert_signed_out(&attacker_browser, &app, "the attacker after the reset").await;
    assert_email_link_dead(&app, &takeover, victim, "after a password reset").await;
    assert_eq!(audits(&app, "email_verified").await, 0);
}

#[tokio::test]
async fn pending_links_die_when_the_password_is_changed_or_the_user_signs_out_everywhere() {
    let (app, sink) = spawn_with_sink(|_| {}).await;
    let email = "owner@example.com";
    create_user(&app, email, PASSWORD);
    sign_in_browser(&app.client, &app, email, PASSWORD).await;

    // A password change on the account page ends a reset link and an email-change link.
    forgot(&app, email).await;
    let reset = link_of_mail(&sink, email, "Reset").await;
    request_email_change(&app.client, &app, "first@example.com", PASSWORD).await;
    let change = link_of_mail(&sink, "first@example.com", "new email address").await;
    let res = account_action(
        &app.client,
        &app,
        "/account/password",
        &[("current_password", PASSWORD), ("password", NEW_PASSWORD)],
    )
    .await;
    let done = expect_page(res, "the password change").await;
    assert!(done.contains("Your password is changed"), "{done}");
    assert_reset_link_dead(&app, &reset, "after a password change").await;
    assert_email_link_dead(&app, &change, email, "after a password change").await;

    // "Sign out everywhere" ends them too.
    sign_in_browser(&app.client, &app, email, NEW_PASSWORD).await;
    forgot(&app, email).await;
    let reset = link_of_mail(&sink, email, "Reset").await;
    request_email_change(&app.client, &app, "second@example.com", NEW_PASSWORD).await;
    let change = link_of_mail(&sink, "second@example.com", "new email address").await;
    let res = account_action(&app.client, &app, "/account/sessions/end-all", &[]).await;
    assert_eq!(res.status().as_u16(), 303);
    assert_reset_link_dead(&app, &reset, "after signing out everywhere").await;
    assert_email_link_dead(&app, &change, email, "after signing out everywhere").await;
}

#[tokio::test]
async fn a_reset_link_dies_when_the_email_changes_and_when_the_user_is_disabled() {
    let (app, sink) = spawn_with_sink(|_| {}).await;
    let old = "before@example.com";
    let new = "after@example.com";
    create_user(&app, old, PASSWORD);
    sign_in_browser(&app.client, &app, old, PASSWORD).await;

    // The reset link went to the old address; once the address changes it is dead.
    forgot(&app, old).await;
    let reset = link_of_mail(&sink, old, "Reset").await;
    request_email_change(&app.client, &app, new, PASSWORD).await;
    let change = link_of_mail(&sink, new, "new email address").await;
    let verified = page_with(&crate::harness::browser(), &app, &change).await;
    assert!(verified.contains("verified"), "{verified}");
    assert_reset_link_dead(&app, &reset, "after an email change").await;

    // Disabling ends a reset link, and enabling again does not bring it back.
    forgot(&app, new).await;
    let reset = link_of_mail(&sink, new, "Reset").await;
    let out = app.castellan(&["user", "disable", new]);
    assert!(out.status.success(), "{}", crate::harness::stderr(&out));
    let out = app.castellan(&["user", "disable", new, "--enable"]);
    assert!(out.status.success(), "{}", crate::harness::stderr(&out));
    assert_reset_link_dead(&app, &reset, "after disabling").await;
}

#[tokio::test]
async fn an_email_change_needs_the_current_password_and_tells_the_old_address() {
    let (app, sink) = spawn_with_sink(|_| {}).await;
    let old = "mine@example.com";
    let new = "elsewhere@example.com";
    create_user(&app, old, PASSWORD);
    sign_in_browser(&app.client, &app, old, PASSWORD).await;

    let page = account_page(&app.client, &app).await;
    let form = Form::with_action(&page, "/account/email");
    assert!(
        form.has("current_password"),
        "the email form asks for the current password: {form:?}"
    );
    for (password, what) in [("", "no password"), ("not my password", "a wrong password")] {
        let answer = request_email_change(&app.client, &app, new, password).await;
        assert!(
            answer.contains("current password is not correct"),
            "{what}:\n{answer}"
        );
    }
    settle().await;
    assert_eq!(sink.count(), 0, "nothing was mailed for a refused change");

    let answer = request_email_change(&app.client, &app, new, PASSWORD).await;
    assert!(
        answer.contains("We sent a link to the new address"),
        "{answer}"
    );
    link_of_mail(&sink, new, "new email address").await;
    let notice = sink.wait_for(old, WAIT).await;
    assert!(
        notice.subject.contains("email address"),
        "the old address is told: {}",
        notice.subject
    );
    assert!(
        notice.text_body.contains(new),
        "the notice names the new address:\n{}",
        notice.text_body
    );
    assert!(
        !notice.text_body.contains("token="),
        "the notice carries no link that changes anything:\n{}",
        notice.text_body
    );
}

// ---------------------------------------------------------------------------------------------
// The per-account lockout under parallel guesses, and every password check counting.

#[tokio::test]
async fn forty_parallel_wrong_passwords_from_forty_addresses_are_all_counted_and_lock_the_account()
{
    let (app, _sink) = spawn_with_sink(|s| {
        s.rate_limit.trusted_proxies = vec!["127.0.0.1".into()];
    })
    .await;
    let email = "parallel@example.com";
    create_user(&app, email, PASSWORD);
    let client = crate::harness::browser();
    let login_page = page_with(&client, &app, "/login").await;
    let form = Form::with_action(&login_page, "/login");
    let body = |password: &str| {
        url::form_urlencoded::Serializer::new(String::new())
            .extend_pairs(form.body(&[("email", email), ("password", password)], None))
            .finish()
    };
    let mut guesses = Vec::new();
    for i in 0..40 {
        let request = client
            .post(app.url("/login"))
            .header("x-forwarded-for", format!("198.51.100.{}", i + 1))
            .header("content-type", "application/x-www-form-urlencoded")
            .body(body(&format!("wrong guess {i}")));
        guesses.push(tokio::spawn(async move {
            let res = request.send().await.expect("login POST");
            (res.status().as_u16(), res.text().await.unwrap_or_default())
        }));
    }
    for g in guesses {
        let (status, page) = g.await.expect("guess");
        assert_eq!(status, 200, "{page}");
        assert!(page.contains(GENERIC_FAILURE), "{page}");
    }
    assert_eq!(
        app.count(&format!(
            "users WHERE email_lower = '{email}' AND failed_logins = 40 AND locked_until IS NOT NULL"
        ))
        .await,
        1,
        "every one of the 40 failures is counted and the account is locked"
    );
    let res = client
        .post(app.url("/login"))
        .header("x-forwarded-for", "198.51.100.200")
        .header("content-type", "application/x-www-form-urlencoded")
        .body(body(PASSWORD))
        .send()
        .await
        .expect("login POST");
    assert_login_refused(res, "the right password while locked").await;
    assert_eq!(app.count("sessions").await, 0);
}

#[tokio::test]
async fn the_current_password_check_on_the_account_page_counts_toward_the_lockout() {
    let (app, _sink) = spawn_with_sink(|_| {}).await;
    let email = "guessed@example.com";
    create_user(&app, email, PASSWORD);
    // A thief with the session but not the password guesses it through the password form.
    sign_in_browser(&app.client, &app, email, PASSWORD).await;
    for i in 0..5 {
        let res = account_action(
            &app.client,
            &app,
            "/account/password",
            &[
                ("current_password", &format!("guess {i}")),
                ("password", NEW_PASSWORD),
            ],
        )
        .await;
        let page = expect_page(res, "a wrong current password").await;
        assert!(page.contains("current password is not correct"), "{page}");
    }
    assert_eq!(
        app.count("users WHERE failed_logins = 5 AND locked_until IS NOT NULL")
            .await,
        1
    );
    // Locked: even the right current password is refused, and nothing changes.
    let res = account_action(
        &app.client,
        &app,
        "/account/password",
        &[("current_password", PASSWORD), ("password", NEW_PASSWORD)],
    )
    .await;
    let page = expect_page(res, "the right current password while locked").await;
    assert!(!page.contains("Your password is changed"), "{page}");
    assert!(page.contains("Too many wrong passwords"), "{page}");
    assert_eq!(audits(&app, "password_changed").await, 0);
    // The lock covers the login page too; once over, the old password still works.
    assert_login_refused(
        login_with(&crate::harness::browser(), &app, email, PASSWORD).await,
        "login while locked",
    )
    .await;
    app.clock.advance_secs(61);
    sign_in_browser(&crate::harness::browser(), &app, email, PASSWORD).await;
}

// ---------------------------------------------------------------------------------------------
// What "forgot password" and "resend the link" do before they answer.

/// A second instance on `front`'s database that runs the background jobs, mailing to `sink`.
async fn worker_beside(front: &TestApp, sink: &SmtpSink) -> TestApp {
    let url = sink.url();
    crate::harness::spawn_app_beside(front, move |s| {
        s.mail.smtp_url = Some(Secret::new(url));
    })
    .await
}

#[tokio::test]
async fn forgot_password_and_resend_do_the_same_before_answering_and_prepare_mail_afterwards() {
    let sink = SmtpSink::start();
    let (front, _unused) = spawn_with_sink(|s| s.jobs.run = false).await;
    let verified = "known@example.com";
    let unverified = "pending@example.com";
    create_user(&front, verified, PASSWORD);
    create_user(&front, unverified, PASSWORD);
    front
        .exec(&format!(
            "UPDATE users SET email_verified = false WHERE email_lower = '{unverified}'"
        ))
        .await;

    let client = crate::harness::browser();
    for (page, emails) in [
        ("/password/forgot", [verified, "unknown@example.com"]),
        ("/register/resend", [unverified, "unknown@example.com"]),
    ] {
        let mut answers = Vec::new();
        for email in emails {
            let res = fill(&client, &front, page, page, &[("email", email)]).await;
            let status = res.status().as_u16();
            answers.push((status, without_csrf(&res.text().await.unwrap_or_default())));
        }
        assert_eq!(answers[0].0, 200, "{page}: {}", answers[0].1);
        assert_eq!(answers[1], answers[0], "{page}: the same answer");
    }
    // On the request path: one queued job each, the same for a known and an unknown address;
    // no link made, nothing audited, nothing mailed.
    assert_eq!(
        front.count("email_tokens").await,
        0,
        "no link on the request path"
    );
    assert_eq!(
        front
            .count("audit_events WHERE kind = 'password_reset_requested'")
            .await,
        0
    );
    assert_eq!(front.count("jobs").await, 4);
    assert_eq!(
        front
            .count("jobs WHERE kind = 'password_reset' AND attempts = 0")
            .await,
        2
    );
    assert_eq!(
        front
            .count("jobs WHERE kind = 'resend_verification' AND attempts = 0")
            .await,
        2
    );

    // Another instance that runs background work prepares and sends the mail: to the known
    // addresses only, once each.
    let _worker = worker_beside(&front, &sink).await;
    let reset = sink.wait_for(verified, WAIT).await;
    assert!(
        reset.link().contains("/password/reset?token="),
        "{}",
        reset.text_body
    );
    let verify = sink.wait_for(unverified, WAIT).await;
    assert!(
        verify.link().contains("/register/verify?token="),
        "{}",
        verify.text_body
    );
    settle().await;
    assert_eq!(sink.count(), 2, "no mail for the unknown address");
    assert_eq!(front.count("jobs").await, 0, "every job done once");
    assert_eq!(front.count("email_tokens").await, 2);
}

#[tokio::test]
async fn a_full_password_queue_answers_503_with_retry_after_instead_of_queueing_without_bound() {
    let (app, _sink) = spawn_with_sink(|s| {
        s.rate_limit.login_per_minute = 0;
        // One argon2 worker, two waiting jobs at most, and hashes slow enough to pile up.
        s.password.max_concurrent_hashes = 1;
        s.password.max_queued_hashes = 2;
        s.password.argon2_memory_kib = 8 * 1024;
        s.password.argon2_iterations = 4;
    })
    .await;
    let email = "crowded@example.com";
    create_user(&app, email, PASSWORD);
    let client = crate::harness::browser();
    let login_page = page_with(&client, &app, "/login").await;
    let body = url::form_urlencoded::Serializer::new(String::new())
        .extend_pairs(
            Form::with_action(&login_page, "/login")
                .body(&[("email", email), ("password", "a wrong one")], None),
        )
        .finish();
    let mut burst = Vec::new();
    for _ in 0..30 {
        let request = client
            .post(app.url("/login"))
            .header("content-type", "application/x-www-form-urlencoded")
            .body(body.clone());
        burst.push(tokio::spawn(async move {
            let res = request.send().await.expect("login POST");
            let retry_after = res
                .headers()
                .get("retry-after")
                .map(|v| v.to_str().unwrap_or_default().to_owned());
            (res.status().as_u16(), retry_after)
        }));
    }
    let mut busy = 0;
    for b in burst {
        match b.await.expect("login") {
            (200, _) => {}
            (503, Some(retry)) => {
                assert!(retry.parse::<u64>().is_ok_and(|s| s >= 1), "{retry}");
                busy += 1;
            }
            other => panic!("expected 200 or 503 with Retry-After, got {other:?}"),
        }
    }
    assert!(
        busy > 0,
        "some of 30 simultaneous logins found the queue full"
    );
    // Refused before the password was checked: those attempts were not counted as failures.
    assert_eq!(
        app.count(&format!("users WHERE failed_logins = {}", 30 - busy))
            .await,
        1
    );
}

#[tokio::test]
async fn registration_does_the_same_before_answering_for_a_new_and_a_known_address() {
    let sink = SmtpSink::start();
    let (front, _unused) = spawn_with_sink(|s| s.jobs.run = false).await;
    let known = "taken@example.com";
    let new = "fresh@example.com";
    create_user(&front, known, PASSWORD);

    let mut answers = Vec::new();
    for email in [known, new] {
        let res = register(
            &crate::harness::browser(),
            &front,
            email,
            NEW_PASSWORD,
            "Someone",
        )
        .await;
        let status = res.status().as_u16();
        answers.push((status, without_csrf(&res.text().await.unwrap_or_default())));
    }
    assert_eq!(answers[0].0, 200, "{}", answers[0].1);
    assert!(
        answers[0].1.contains("Check your mailbox"),
        "{}",
        answers[0].1
    );
    assert_eq!(answers[1], answers[0], "the same answer");
    // On the request path: the same password hashing, then one queued job each; no account.
    assert_eq!(
        front.count("users").await,
        1,
        "no account made on the request path"
    );
    assert_eq!(front.count("jobs WHERE kind = 'register'").await, 2);

    let _worker = worker_beside(&front, &sink).await;
    let verify = sink.wait_for(new, WAIT).await;
    assert!(
        verify.link().contains("/register/verify?token="),
        "{}",
        verify.text_body
    );
    let notice = sink.wait_for(known, WAIT).await;
    assert!(
        notice.subject.contains("already have"),
        "{}",
        notice.subject
    );
    assert_eq!(front.count("users").await, 2);
    // A mail job's row goes once the SMTP exchange has ended, a moment after the sink holds
    // the message: wait for it rather than race it.
    let deadline = std::time::Instant::now() + WAIT;
    while front.count("jobs").await != 0 && std::time::Instant::now() < deadline {
        tokio::time::sleep(std::time::Duration::from_millis(20)).await;
    }
    assert_eq!(front.count("jobs").await, 0);
}
