//! The second-factor policy (issue 17): a client's `--require-mfa` and `mfa.required_for_roles`
//! send a password-only user to enrolment (after the password on `/login`, or from the
//! authorization endpoint), never refuse them; the last factor stays while a role requires
//! one; a password reset neither removes nor bypasses a factor; `max_age`, `prompt=login` and
//! `prompt=none` still hold; and an administrator's reset of a user's factors from the CLI, the
//! admin API and the admin pages (audited, mailed). Over HTTP against the real server, with
//! TOTP codes computed here at the server's clock.

use castellan::Settings;
use castellan::clock::Clock;
use castellan::config::Secret;
use serde_json::{Value, json};

use crate::harness::forms::{Form, location, path_of, query_param, unescape};
use crate::harness::rp::{
    PASSWORD, REDIRECT_URI, Raw, Rp, code_of, create_client, create_user, expect_page, sign_in,
    sign_in_again,
};
use crate::harness::smtp::SmtpSink;
use crate::harness::{TestApp, browser, json_out, spawn_app, spawn_app_with, stderr, stdout};
use crate::mfa::{
    MFA, WAIT, abs, audits, base32, claims_of, code_now, enrolled, follow, get, login, page,
    password_step, recovery_codes_of, second_step, secret_of, signed_in,
};

const ONE_FACTOR: &str = "urn:castellan:acr:1fa";
/// The role the policy of these tests names.
const FINANCE: &str = "finance";

// ---------------------------------------------------------------------------------------------
// Helpers.

/// A server whose policy requires a second factor of the `finance` role (created here), with
/// mail to `sink` when one is given.
async fn policy_app(sink: Option<&SmtpSink>) -> TestApp {
    let smtp = sink.map(SmtpSink::url);
    let app = spawn_app_with(move |s: &mut Settings| {
        s.mfa.required_for_roles = vec![FINANCE.into()];
        if let Some(url) = smtp {
            s.mail.smtp_url = Some(Secret::new(url));
        }
    })
    .await;
    json_out(&app.castellan(&["role", "create", FINANCE, "--json"]));
    app
}

/// A user with the `finance` role (created through the CLI).
fn finance_user(app: &TestApp, email: &str) -> String {
    let id = create_user(app, email, PASSWORD);
    json_out(&app.castellan(&["user", "set-role", email, FINANCE, "--json"]));
    id
}

/// An RP for a first-party client (no consent page) with `extra` client flags.
async fn rp_with(app: &TestApp, extra: &[&str]) -> Rp {
    let mut args = vec![
        "--redirect-uri",
        REDIRECT_URI,
        "--scope",
        "openid profile email",
        "--skip-consent",
    ];
    args.extend_from_slice(extra);
    let (id, secret) = create_client(app, &args);
    Rp::discover(app, &id, secret.as_deref(), REDIRECT_URI).await
}

/// On the enrolment page `at` (its body `body`), reached from an authorization request: types
/// the right code, checks the ten recovery codes, and returns the seed and the "continue" link
/// back to the request.
async fn enrol_on(
    client: &reqwest::Client,
    app: &TestApp,
    at: &str,
    body: &str,
) -> (Vec<u8>, String) {
    let secret = base32(&secret_of(body));
    let res = Form::with_input(body, "code")
        .on_page(&abs(app, at))
        .submit_with(client, app, &[("code", &code_now(app, &secret))], None)
        .await;
    let done = expect_page(res, "the enrolment POST").await;
    assert_eq!(recovery_codes_of(&done).len(), 10, "{done}");
    let next = done
        .split("href=\"")
        .skip(1)
        .map(|s| unescape(&s[..s.find('"').unwrap_or(0)]))
        .find(|h| h.starts_with("/oauth2/authorize"))
        .unwrap_or_else(|| panic!("no link back to the request after enrolment:\n{done}"));
    // The next code asked for is of a later time step.
    app.clock.advance_secs(30);
    (secret, next)
}

/// The ID token of a code the browser was sent back with.
async fn id_token_claims(rp: &Rp, back: &str, req: crate::harness::rp::AuthRequest) -> Value {
    let tokens = rp.exchange_code(&code_of(back), req.pkce_verifier).await;
    let claims = claims_of(&tokens);
    // The crate checks the signature, the nonce and the rest of OpenID Connect Core §3.1.3.7.
    rp.verify_id_token(&tokens, &req.nonce);
    claims
}

/// `castellan_logins_total` for one outcome, as `/metrics` shows it.
async fn logins(app: &TestApp, outcome: &str) -> f64 {
    let text = app.get("/metrics").await.text().await.expect("metrics");
    let prefix = format!("castellan_logins_total{{outcome=\"{outcome}\"}} ");
    text.lines()
        .find_map(|l| l.strip_prefix(&prefix))
        .unwrap_or_else(|| panic!("no {prefix} in:\n{text}"))
        .trim()
        .parse()
        .expect("a number")
}

// ---------------------------------------------------------------------------------------------
// A client that requires a second factor.

#[tokio::test]
async fn a_client_requiring_mfa_takes_a_password_only_user_to_enrolment_then_issues_an_mfa_token() {
    let app = spawn_app().await;
    let strict = rp_with(&app, &["--require-mfa"]).await;
    let shown = json_out(&app.castellan(&["client", "show", &strict.client_id, "--json"]));
    assert_eq!(shown["require_mfa"], true, "{shown}");
    let plain = rp_with(&app, &[]).await;
    let email = "ada@example.com";
    create_user(&app, email, PASSWORD);

    // The password alone: the login page, then enrolment (not a refusal), then the client.
    let client = browser();
    let req = strict.authorize(&["openid"], true, &[]);
    let (at, _) = follow(&client, &app, &req.url).await;
    assert_eq!(path_of(&at), "/login", "{at}");
    let res = login(&client, &app, &at, email, PASSWORD).await;
    assert_eq!(res.status().as_u16(), 303);
    let (at, body) = follow(&client, &app, &location(&res)).await;
    assert_eq!(path_of(&at), "/account/mfa/totp", "{at}");
    assert!(
        query_param(&at, "return_to").is_some_and(|r| r.starts_with("/oauth2/authorize?")),
        "enrolment returns to the request: {at}"
    );
    let (secret, next) = enrol_on(&client, &app, &at, &body.expect("the enrolment page")).await;
    let (back, _) = follow(&client, &app, &next).await;
    assert!(back.starts_with(REDIRECT_URI), "{back}");
    let claims = id_token_claims(&strict, &back, req).await;
    assert_eq!(claims["acr"], MFA);
    assert_eq!(claims["amr"], json!(["pwd", "otp", "mfa"]));

    // A later sign-in in another browser: the password, then the code, then the client.
    let other = browser();
    let req = strict.authorize(&["openid"], true, &[]);
    let (at, _) = follow(&other, &app, &req.url).await;
    let res = login(&other, &app, &at, email, PASSWORD).await;
    let step = location(&res);
    assert_eq!(path_of(&step), "/login/second-factor", "{step}");
    let res = second_step(&other, &app, &step, &code_now(&app, &secret)).await;
    assert_eq!(res.status().as_u16(), 303);
    let (back, _) = follow(&other, &app, &location(&res)).await;
    assert_eq!(id_token_claims(&strict, &back, req).await["acr"], MFA);

    // A client without the flag, for a user without a factor: the password is enough.
    create_user(&app, "bo@example.com", PASSWORD);
    let third = browser();
    let req = plain.authorize(&["openid"], true, &[]);
    let (at, _) = follow(&third, &app, &req.url).await;
    let res = login(&third, &app, &at, "bo@example.com", PASSWORD).await;
    let (back, _) = follow(&third, &app, &location(&res)).await;
    assert!(back.starts_with(REDIRECT_URI), "{back}");
    assert_eq!(id_token_claims(&plain, &back, req).await["acr"], ONE_FACTOR);
    // ... and the same password-only session is taken to enrolment by the strict client.
    let req = strict.authorize(&["openid"], true, &[]);
    let (at, _) = follow(&third, &app, &req.url).await;
    assert_eq!(path_of(&at), "/account/mfa/totp", "{at}");
}

#[tokio::test]
async fn prompt_none_below_the_required_level_gets_login_required_and_no_code() {
    let app = policy_app(None).await;
    let strict = rp_with(&app, &["--require-mfa"]).await;
    let plain = rp_with(&app, &[]).await;

    // A password-only session of a user of no special role, at a client requiring MFA.
    create_user(&app, "ada@example.com", PASSWORD);
    let client = browser();
    let res = login(&client, &app, "/login", "ada@example.com", PASSWORD).await;
    assert_eq!(location(&res), "/");
    for (rp, extra) in [
        (&strict, vec![("prompt", "none")]),
        (&plain, vec![("prompt", "none"), ("acr_values", MFA)]),
    ] {
        let req = rp.authorize(&["openid"], true, &extra);
        let (back, _) = follow(&client, &app, &req.url).await;
        assert!(back.starts_with(REDIRECT_URI), "{back}");
        assert_eq!(
            query_param(&back, "error").as_deref(),
            Some("login_required"),
            "{back}"
        );
        assert_eq!(query_param(&back, "code"), None, "{back}");
        assert_eq!(
            query_param(&back, "state").as_deref(),
            Some(req.state.secret().as_str())
        );
    }
    // Without prompt=none the same request is answered with enrolment, not an error.
    let req = strict.authorize(&["openid"], true, &[]);
    let (at, _) = follow(&client, &app, &req.url).await;
    assert_eq!(path_of(&at), "/account/mfa/totp", "{at}");

    // A finance user's password-only session at an ordinary client: the same error.
    finance_user(&app, "fin@example.com");
    let fin = browser();
    let res = login(&fin, &app, "/login", "fin@example.com", PASSWORD).await;
    assert_eq!(path_of(&location(&res)), "/account/mfa/totp");
    let req = plain.authorize(&["openid"], true, &[("prompt", "none")]);
    let (back, _) = follow(&fin, &app, &req.url).await;
    assert_eq!(
        query_param(&back, "error").as_deref(),
        Some("login_required"),
        "{back}"
    );
    assert_eq!(query_param(&back, "code"), None);
    // The ordinary user at the ordinary client: a code.
    let req = plain.authorize(&["openid"], true, &[("prompt", "none")]);
    let (back, _) = follow(&client, &app, &req.url).await;
    assert!(query_param(&back, "code").is_some(), "{back}");
}

// ---------------------------------------------------------------------------------------------
// A role that requires a second factor.

#[tokio::test]
async fn a_required_role_is_taken_to_enrolment_after_the_password_and_at_every_client() {
    let app = policy_app(None).await;
    let rp = rp_with(&app, &[]).await;
    let email = "fin@example.com";
    finance_user(&app, email);
    create_user(&app, "other@example.com", PASSWORD);

    // `/login` with no authorization request: signed in with the password, sent to enrolment.
    let client = browser();
    let res = login(&client, &app, "/login", email, PASSWORD).await;
    assert_eq!(res.status().as_u16(), 303);
    assert_eq!(location(&res), "/account/mfa/totp");
    assert!(signed_in(&client, &app).await, "one factor, signed in");
    assert_eq!(logins(&app, "second_factor_enrolment").await, 1.0);
    assert_eq!(logins(&app, "success").await, 0.0);
    let account = page(&client, &app, "/account").await;
    assert!(account.contains("data-mfa-required"), "{account}");

    // Not enrolled yet, this password-only session is taken to enrolment by an ordinary
    // client, and comes back to it with an MFA token.
    let req = rp.authorize(&["openid"], true, &[]);
    let (at, body) = follow(&client, &app, &req.url).await;
    assert_eq!(path_of(&at), "/account/mfa/totp", "{at}");
    let (secret, next) = enrol_on(&client, &app, &at, &body.expect("a page")).await;
    let (back, _) = follow(&client, &app, &next).await;
    let claims = id_token_claims(&rp, &back, req).await;
    assert_eq!(claims["acr"], MFA);
    assert_eq!(claims["amr"], json!(["pwd", "otp", "mfa"]));

    // With a factor, the next sign-in asks for it after the password.
    let other = browser();
    let step = password_step(&other, &app, email).await;
    let res = second_step(&other, &app, &step, &code_now(&app, &secret)).await;
    assert_eq!(res.status().as_u16(), 303);

    // The same through an authorization request in a fresh browser, for a second finance
    // user: the login goes to enrolment at once, then back to the request.
    finance_user(&app, "fin2@example.com");
    let fresh = browser();
    let req = rp.authorize(&["openid"], true, &[]);
    let (at, _) = follow(&fresh, &app, &req.url).await;
    let res = login(&fresh, &app, &at, "fin2@example.com", PASSWORD).await;
    let (at, body) = follow(&fresh, &app, &location(&res)).await;
    assert_eq!(path_of(&at), "/account/mfa/totp", "{at}");
    let (_, next) = enrol_on(&fresh, &app, &at, &body.expect("a page")).await;
    let (back, _) = follow(&fresh, &app, &next).await;
    assert_eq!(id_token_claims(&rp, &back, req).await["acr"], MFA);

    // A user of another role is not affected: the password alone, acr 1fa.
    let plain = browser();
    let res = login(&plain, &app, "/login", "other@example.com", PASSWORD).await;
    assert_eq!(location(&res), "/");
    let req = rp.authorize(&["openid"], true, &[]);
    let (back, _) = follow(&plain, &app, &req.url).await;
    assert_eq!(id_token_claims(&rp, &back, req).await["acr"], ONE_FACTOR);
    let account = page(&plain, &app, "/account").await;
    assert!(!account.contains("data-mfa-required"), "{account}");
}

#[tokio::test]
async fn the_admin_pages_ask_an_administrator_under_the_policy_for_the_second_factor_first() {
    let app =
        spawn_app_with(|s: &mut Settings| s.mfa.required_for_roles = vec!["admin".into()]).await;
    create_user(&app, "root@example.com", PASSWORD);
    json_out(&app.castellan(&["user", "set-role", "root@example.com", "admin", "--json"]));

    // Password alone: enrolment first, then back to the admin pages.
    let first = browser();
    let res = login(
        &first,
        &app,
        "/login?return_to=%2Fadmin%2Fusers",
        "root@example.com",
        PASSWORD,
    )
    .await;
    assert_eq!(
        location(&res),
        "/account/mfa/totp?return_to=%2Fadmin%2Fusers"
    );
    // A session that kept its one factor (signed in before enrolment) ...
    let early = browser();
    login(&early, &app, "/login", "root@example.com", PASSWORD).await;
    let poster = browser();
    login(&poster, &app, "/login", "root@example.com", PASSWORD).await;
    let res = get(&early, &app, "/admin/users").await;
    assert_eq!(res.status().as_u16(), 303);
    assert_eq!(
        location(&res),
        "/account/mfa/totp?return_to=%2Fadmin%2Fusers"
    );
    let (at, body) = follow(&first, &app, "/admin/users").await;
    assert_eq!(path_of(&at), "/account/mfa/totp", "{at}");
    let body = body.expect("the enrolment page");
    let secret = base32(&secret_of(&body));
    let res = Form::with_input(&body, "code")
        .on_page(&abs(&app, &at))
        .submit_with(&first, &app, &[("code", &code_now(&app, &secret))], None)
        .await;
    let done = expect_page(res, "enrolment").await;
    assert!(done.contains("href=\"/admin/users\""), "{done}");
    app.clock.advance_secs(30);
    assert_eq!(
        get(&first, &app, "/admin/users").await.status().as_u16(),
        200
    );

    // ... is asked for its code now (a step-up), then goes on.
    let res = get(&early, &app, "/admin/users").await;
    let step = location(&res);
    assert_eq!(step, "/login/second-factor?return_to=%2Fadmin%2Fusers");
    let res = second_step(&early, &app, &step, &code_now(&app, &secret)).await;
    assert_eq!(location(&res), "/admin/users");
    assert_eq!(
        get(&early, &app, "/admin/users").await.status().as_u16(),
        200
    );

    // A form post from a one-factor session does nothing: the step-up comes first.
    let keys = page(&first, &app, "/admin/keys").await;
    let before = app.count("signing_keys").await;
    let res = Form::with_action(&keys, "/admin/keys/rotate")
        .on_page(&abs(&app, "/admin/keys"))
        .submit_with(&poster, &app, &[], None)
        .await;
    assert_eq!(res.status().as_u16(), 303);
    assert_eq!(location(&res), "/login/second-factor?return_to=%2Fadmin");
    assert_eq!(app.count("signing_keys").await, before);
    assert_eq!(audits(&app, "key_rotated").await, 0);
}

#[tokio::test]
async fn the_last_factor_stays_under_the_policy_and_goes_without_it() {
    let app = policy_app(None).await;
    let fin = browser();
    finance_user(&app, "fin@example.com");
    // The password leads to enrolment; enrol there.
    let res = login(&fin, &app, "/login", "fin@example.com", PASSWORD).await;
    assert_eq!(location(&res), "/account/mfa/totp");
    crate::mfa::enrol(&fin, &app).await;

    let account = page(&fin, &app, "/account").await;
    let form =
        Form::with_action(&account, "/account/mfa/totp/remove").on_page(&abs(&app, "/account"));
    let res = form
        .submit_with(&fin, &app, &[("current_password", PASSWORD)], None)
        .await;
    assert_eq!(
        res.status().as_u16(),
        409,
        "the last factor of a finance user"
    );
    let body = res.text().await.expect("the account page");
    assert!(body.contains("Your account"), "the account page:\n{body}");
    assert!(
        body.contains("role=\"alert\"") && body.contains("your role requires a second"),
        "{body}"
    );
    assert!(body.contains("data-totp=\"on\""), "{body}");
    assert_eq!(app.count("totp_factors").await, 1);
    assert_eq!(app.count("recovery_codes").await, 10);
    assert_eq!(audits(&app, "factor_removed").await, 0);
    // Not counted as a wrong password either.
    assert_eq!(app.count("users WHERE failed_logins > 0").await, 0);

    // Without the policy (another role) the same removal works.
    let plain = browser();
    enrolled(&plain, &app, "plain@example.com").await;
    let account = page(&plain, &app, "/account").await;
    let res = Form::with_action(&account, "/account/mfa/totp/remove")
        .on_page(&abs(&app, "/account"))
        .submit_with(&plain, &app, &[("current_password", PASSWORD)], None)
        .await;
    assert_eq!(res.status().as_u16(), 303);
    assert_eq!(
        app.count("totp_factors").await,
        1,
        "only the finance user's"
    );
    assert_eq!(audits(&app, "factor_removed").await, 1);
}

#[tokio::test]
async fn a_password_reset_neither_removes_nor_bypasses_a_required_second_factor() {
    let sink = SmtpSink::start();
    let app = policy_app(Some(&sink)).await;
    let new_password = "tulip lantern quarry 42";
    let reset = |email: &'static str| {
        let (app, sink) = (&app, &sink);
        async move {
            let client = browser();
            let body = page(&client, app, "/password/forgot").await;
            Form::with_input(&body, "email")
                .on_page(&abs(app, "/password/forgot"))
                .submit_with(&client, app, &[("email", email)], None)
                .await;
            let link = sink.wait_for(email, WAIT).await.link();
            let body = page(&client, app, &link).await;
            let res = Form::with_action(&body, "/password/reset")
                .on_page(&abs(app, &link))
                .submit_with(&client, app, &[("password", new_password)], None)
                .await;
            expect_page(res, "the reset").await;
            // A reset signs no one in: it cannot skip a second step.
            assert!(!signed_in(&client, app).await, "a reset signs no one in");
        }
    };

    // A finance user with no factor yet: after the reset, the password leads to enrolment.
    finance_user(&app, "new@example.com");
    reset("new@example.com").await;
    let client = browser();
    let res = login(&client, &app, "/login", "new@example.com", new_password).await;
    assert_eq!(location(&res), "/account/mfa/totp");

    // A finance user with TOTP: it is still there, and still asked for.
    let owner = browser();
    finance_user(&app, "two@example.com");
    login(&owner, &app, "/login", "two@example.com", PASSWORD).await;
    let (secret, _) = crate::mfa::enrol(&owner, &app).await;
    reset("two@example.com").await;
    assert_eq!(
        app.count("totp_factors WHERE confirmed_at IS NOT NULL")
            .await,
        1
    );
    let client = browser();
    let res = login(&client, &app, "/login", "two@example.com", new_password).await;
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
}

// ---------------------------------------------------------------------------------------------
// max_age, prompt=login.

#[tokio::test]
async fn max_age_still_asks_an_mfa_session_for_the_password_then_the_code_with_a_fresh_auth_time() {
    let app = spawn_app().await;
    let strict = rp_with(&app, &["--require-mfa"]).await;
    let email = "ada@example.com";
    let client = browser();
    let (secret, _) = enrolled(&client, &app, email).await;
    // An MFA session: password and code.
    let client = browser();
    let step = password_step(&client, &app, email).await;
    second_step(&client, &app, &step, &code_now(&app, &secret)).await;
    let req = strict.authorize(&["openid"], true, &[]);
    let (back, _) = follow(&client, &app, &req.url).await;
    let first = id_token_claims(&strict, &back, req).await;
    assert_eq!(first["acr"], MFA);

    // Ten minutes on, max_age=300: a login again, the password and then the code.
    app.clock.advance_secs(600);
    let req = strict.authorize(&["openid"], true, &[("max_age", "300")]);
    let (at, _) = follow(&client, &app, &req.url).await;
    assert_eq!(path_of(&at), "/login", "max_age asks for a login: {at}");
    let before = app.clock.now();
    let res = login(&client, &app, &at, email, PASSWORD).await;
    let step = location(&res);
    assert_eq!(path_of(&step), "/login/second-factor", "{step}");
    let res = second_step(&client, &app, &step, &code_now(&app, &secret)).await;
    let (back, _) = follow(&client, &app, &location(&res)).await;
    assert!(back.starts_with(REDIRECT_URI), "{back}");
    let claims = id_token_claims(&strict, &back, req).await;
    assert_eq!(claims["acr"], MFA);
    let auth_time = claims["auth_time"].as_i64().expect("auth_time");
    assert!(
        (before..=app.clock.now()).contains(&auth_time),
        "a fresh auth_time: {auth_time}, the login began at {before}"
    );
    assert!(auth_time >= first["auth_time"].as_i64().expect("auth_time") + 600);
}

#[tokio::test]
async fn prompt_login_with_acr_values_mfa_asks_for_the_password_then_the_second_factor() {
    let app = spawn_app().await;
    let rp = rp_with(&app, &[]).await;
    let email = "ada@example.com";
    let client = browser();
    // Signed in with both factors (enrolment raises the session).
    let (secret, _) = enrolled(&client, &app, email).await;
    app.clock.advance_secs(60);
    let req = rp.authorize(
        &["openid"],
        true,
        &[("acr_values", MFA), ("prompt", "login")],
    );
    let (at, body) = follow(&client, &app, &req.url).await;
    assert_eq!(path_of(&at), "/login", "the password first: {at}");
    assert!(body.expect("the login page").contains("name=\"password\""));
    let before = app.clock.now();
    let res = login(&client, &app, &at, email, PASSWORD).await;
    let step = location(&res);
    assert_eq!(
        path_of(&step),
        "/login/second-factor",
        "then the code: {step}"
    );
    // A wrong code is refused; the right one continues.
    let res = second_step(&client, &app, &step, &crate::mfa::wrong_code(&app, &secret)).await;
    assert_eq!(res.status().as_u16(), 200);
    let res = second_step(&client, &app, &step, &code_now(&app, &secret)).await;
    let (back, _) = follow(&client, &app, &location(&res)).await;
    let claims = id_token_claims(&rp, &back, req).await;
    assert_eq!(claims["acr"], MFA);
    let auth_time = claims["auth_time"].as_i64().expect("auth_time");
    assert!(
        (before..=app.clock.now()).contains(&auth_time),
        "a fresh auth_time: {auth_time}, the login began at {before}"
    );
}

// ---------------------------------------------------------------------------------------------
// Administrator reset.

/// Two enrolled users on a policy app with mail: `plain@` (role user), `fin@` (finance).
async fn reset_setup() -> (TestApp, SmtpSink) {
    let sink = SmtpSink::start();
    let app = policy_app(Some(&sink)).await;
    enrolled(&browser(), &app, "plain@example.com").await;
    let fin = browser();
    finance_user(&app, "fin@example.com");
    login(&fin, &app, "/login", "fin@example.com", PASSWORD).await;
    crate::mfa::enrol(&fin, &app).await;
    assert_eq!(app.count("totp_factors").await, 2);
    (app, sink)
}

/// After a reset: the mail, the audit row with its actor, no factor, no recovery code left.
async fn assert_reset(app: &TestApp, sink: &SmtpSink, email: &str, actor: &str) {
    let mail = sink.wait_for(email, WAIT).await;
    assert!(
        mail.subject.contains("Two-step verification"),
        "{}",
        mail.subject
    );
    let user_id = json_out(&app.castellan(&["user", "list", "--search", email, "--json"]))[0]["id"]
        .as_str()
        .expect("an id")
        .to_owned();
    assert_eq!(
        app.count(&format!("totp_factors WHERE user_id = '{user_id}'"))
            .await,
        0
    );
    assert_eq!(
        app.count(&format!("recovery_codes WHERE user_id = '{user_id}'"))
            .await,
        0
    );
    assert_eq!(
        app.count(&format!(
            "audit_events WHERE kind = 'mfa_reset' AND user_id = '{user_id}' AND actor = '{actor}'"
        ))
        .await,
        1
    );
}

#[tokio::test]
async fn an_administrator_resets_second_factors_from_the_command_line() {
    let (app, sink) = reset_setup().await;
    // A pending sign-in (password right, code not yet typed) ends with the reset.
    let waiting = browser();
    let step = password_step(&waiting, &app, "plain@example.com").await;
    assert_eq!(app.count("pending_sign_ins").await, 1);

    let out = json_out(&app.castellan(&["user", "reset-mfa", "plain@example.com", "--json"]));
    assert_eq!(out["factors_removed"], 1, "{out}");
    assert_eq!(out["recovery_codes_removed"], 10, "{out}");
    assert_eq!(out["pending_sign_ins_ended"], 1, "{out}");
    assert_reset(&app, &sink, "plain@example.com", "cli").await;
    assert_eq!(app.count("pending_sign_ins").await, 0);
    let res = second_step(&waiting, &app, &step, "123456").await;
    assert_eq!(
        path_of(&location(&res)),
        "/login",
        "the pending sign-in ended"
    );

    // The password alone signs in now; the other user keeps theirs.
    let res = login(&browser(), &app, "/login", "plain@example.com", PASSWORD).await;
    assert_eq!(location(&res), "/");
    assert_eq!(app.count("totp_factors").await, 1);

    // A finance user, by id: the next sign-in is taken to enrolment again.
    let fin_id = json_out(&app.castellan(&["user", "list", "--search", "fin@", "--json"]))[0]["id"]
        .as_str()
        .expect("an id")
        .to_owned();
    let out = app.castellan(&["user", "reset-mfa", &fin_id]);
    assert!(out.status.success(), "{}", stderr(&out));
    assert!(stdout(&out).contains("fin@example.com"), "{}", stdout(&out));
    assert_reset(&app, &sink, "fin@example.com", "cli").await;
    let res = login(&browser(), &app, "/login", "fin@example.com", PASSWORD).await;
    assert_eq!(location(&res), "/account/mfa/totp");

    // Again: nothing left to remove, no mail, still audited.
    let before = sink.count_to("plain@example.com");
    let out = json_out(&app.castellan(&["user", "reset-mfa", "plain@example.com", "--json"]));
    assert_eq!(out["factors_removed"], 0, "{out}");
    assert_eq!(audits(&app, "mfa_reset").await, 3);
    tokio::time::sleep(std::time::Duration::from_millis(300)).await;
    assert_eq!(sink.count_to("plain@example.com"), before);

    // An unknown user: a clean error and a non-zero exit.
    let out = app.castellan(&["user", "reset-mfa", "nobody@example.com"]);
    assert_eq!(out.status.code(), Some(1), "{}", stderr(&out));
    let err = stderr(&out);
    assert!(
        err.contains("no user") && err.contains("nobody@example.com"),
        "{err}"
    );
    assert_eq!(err.trim().lines().count(), 1, "{err}");
    assert!(!err.contains("panicked"), "{err}");
    assert_eq!(audits(&app, "mfa_reset").await, 3);
}

async fn api(app: &TestApp, method: reqwest::Method, path: &str, token: Option<&str>) -> Raw {
    let mut req = reqwest::Client::new().request(method, app.url(path));
    if let Some(t) = token {
        req = req.bearer_auth(t);
    }
    Raw::from(req.send().await.expect("admin API request")).await
}

#[tokio::test]
async fn an_administrator_resets_second_factors_through_the_admin_api() {
    let (app, sink) = reset_setup().await;
    let admin_id = create_user(&app, "root@example.com", PASSWORD);
    json_out(&app.castellan(&["user", "set-role", "root@example.com", "admin", "--json"]));
    create_user(&app, "bob@example.com", PASSWORD);
    let (id, secret) = create_client(
        &app,
        &[
            "--redirect-uri",
            REDIRECT_URI,
            "--scope",
            "openid admin",
            "--skip-consent",
        ],
    );
    let console = Rp::discover(&app, &id, secret.as_deref(), REDIRECT_URI).await;
    let admin = sign_in(
        &app,
        &console,
        "root@example.com",
        &["openid", "admin"],
        false,
    )
    .await
    .access_token();
    let plain_id =
        json_out(&app.castellan(&["user", "list", "--search", "plain@", "--json"]))[0]["id"]
            .as_str()
            .expect("an id")
            .to_owned();
    let path = format!("/admin/api/v1/users/{plain_id}/mfa-reset");

    // No token: 401; a user's token without the admin role: 403; nothing changed.
    let raw = api(&app, reqwest::Method::POST, &path, None).await;
    assert_eq!(raw.status, 401, "{}", raw.text);
    let bob = {
        let client = browser();
        let req = console.authorize(&["openid", "admin"], true, &[]);
        let (at, _) = follow(&client, &app, &req.url).await;
        let res = login(&client, &app, &at, "bob@example.com", PASSWORD).await;
        let (back, _) = follow(&client, &app, &location(&res)).await;
        let tokens = console
            .exchange_code(&code_of(&back), req.pkce_verifier)
            .await;
        openidconnect::OAuth2TokenResponse::access_token(&tokens)
            .secret()
            .clone()
    };
    let raw = api(&app, reqwest::Method::POST, &path, Some(&bob)).await;
    assert_eq!(raw.status, 403, "{}", raw.text);
    assert_eq!(app.count("totp_factors").await, 2);
    assert_eq!(audits(&app, "mfa_reset").await, 0);

    // An unknown user: 404, as problem details.
    let raw = api(
        &app,
        reqwest::Method::POST,
        "/admin/api/v1/users/no-such-user/mfa-reset",
        Some(&admin),
    )
    .await;
    assert_eq!(raw.status, 404, "{}", raw.text);
    assert_eq!(
        raw.header("content-type").as_deref(),
        Some("application/problem+json")
    );

    // The administrator's token: done, audited with the administrator, mailed.
    let raw = api(&app, reqwest::Method::POST, &path, Some(&admin)).await;
    assert_eq!(raw.status, 200, "{}", raw.text);
    assert_eq!(raw.json["user_id"], plain_id.as_str());
    assert_eq!(raw.json["factors_removed"], 1);
    assert_eq!(raw.json["recovery_codes_removed"], 10);
    assert_reset(
        &app,
        &sink,
        "plain@example.com",
        &format!("user:{admin_id}"),
    )
    .await;
    let res = login(&browser(), &app, "/login", "plain@example.com", PASSWORD).await;
    assert_eq!(location(&res), "/", "the password alone signs in");

    // The OpenAPI document describes the route.
    let doc: Value = reqwest::get(app.url("/admin/api/openapi.json"))
        .await
        .expect("openapi")
        .json()
        .await
        .expect("JSON");
    let op = &doc["paths"]["/admin/api/v1/users/{id}/mfa-reset"]["post"];
    assert!(op.is_object(), "{}", doc["paths"]);
    assert!(op["responses"]["200"].is_object() && op["responses"]["403"].is_object());
    assert!(doc["components"]["schemas"]["MfaResetOut"].is_object());
    assert!(
        doc["components"]["schemas"]["ClientIn"]["properties"]["require_mfa"].is_object(),
        "{}",
        doc["components"]["schemas"]["ClientIn"]
    );
}

#[tokio::test]
async fn an_administrator_resets_second_factors_from_the_admin_pages() {
    let (app, sink) = reset_setup().await;
    create_user(&app, "root@example.com", PASSWORD);
    json_out(&app.castellan(&["user", "set-role", "root@example.com", "admin", "--json"]));
    let res = login(
        &app.client,
        &app,
        "/login?return_to=%2Fadmin",
        "root@example.com",
        PASSWORD,
    )
    .await;
    assert_eq!(location(&res), "/admin");
    let fin_id = json_out(&app.castellan(&["user", "list", "--search", "fin@", "--json"]))[0]["id"]
        .as_str()
        .expect("an id")
        .to_owned();
    let user_page = format!("/admin/users/{fin_id}");
    let body = page(&app.client, &app, &user_page).await;
    assert!(body.contains("data-second-factor=\"true\""), "{body}");
    let confirm = format!("/admin/users/{fin_id}/mfa-reset");
    assert!(body.contains(&format!("href=\"{confirm}\"")), "{body}");

    // The confirmation page; its form without the CSRF field is refused.
    let body = page(&app.client, &app, &confirm).await;
    assert!(body.contains("fin@example.com"), "{body}");
    let form = Form::with_action(&body, &confirm).on_page(&abs(&app, &confirm));
    let res = form.send(&app.client, &app, &[]).await;
    assert_eq!(res.status().as_u16(), 403);
    assert_eq!(app.count("totp_factors").await, 2);

    // A user who is not an administrator gets no page.
    create_user(&app, "bob@example.com", PASSWORD);
    let stranger = browser();
    login(&stranger, &app, "/login", "bob@example.com", PASSWORD).await;
    assert_eq!(get(&stranger, &app, &confirm).await.status().as_u16(), 403);
    let res = Form::with_action(&body, &confirm)
        .on_page(&abs(&app, &confirm))
        .send(
            &stranger,
            &app,
            &[("csrf_token".to_owned(), "x".repeat(40))],
        )
        .await;
    assert_eq!(res.status().as_u16(), 403);
    assert_eq!(app.count("totp_factors").await, 2);

    let res = form.submit(&app, &[], None).await;
    assert_eq!(res.status().as_u16(), 303);
    let after = location(&res);
    assert_eq!(after, format!("{user_page}?notice=mfa-reset"));
    let body = page(&app.client, &app, &after).await;
    assert!(body.contains("second factors are removed"), "{body}");
    assert!(body.contains("data-second-factor=\"false\""), "{body}");
    let admin_id =
        json_out(&app.castellan(&["user", "list", "--search", "root@", "--json"]))[0]["id"]
            .as_str()
            .expect("an id")
            .to_owned();
    assert_reset(&app, &sink, "fin@example.com", &format!("user:{admin_id}")).await;
    // The finance user's role requires a factor: enrolment after the password.
    let res = login(&browser(), &app, "/login", "fin@example.com", PASSWORD).await;
    assert_eq!(location(&res), "/account/mfa/totp");
}

// ---------------------------------------------------------------------------------------------
// The client flag on every surface.

#[tokio::test]
async fn require_mfa_is_set_by_the_cli_the_admin_api_and_the_admin_pages() {
    let app = spawn_app().await;
    // CLI: create, then update without the flag clears it (update replaces the settings).
    let (id, _) = create_client(&app, &["--redirect-uri", REDIRECT_URI, "--require-mfa"]);
    let shown = json_out(&app.castellan(&["client", "show", &id, "--json"]));
    assert_eq!(shown["require_mfa"], true);
    let updated = json_out(&app.castellan(&[
        "client",
        "update",
        &id,
        "--name",
        "Renamed",
        "--redirect-uri",
        REDIRECT_URI,
        "--json",
    ]));
    assert_eq!(updated["require_mfa"], false);

    // Admin pages: the checkbox on the create form and on the client page.
    create_user(&app, "root@example.com", PASSWORD);
    json_out(&app.castellan(&["user", "set-role", "root@example.com", "admin", "--json"]));
    login(
        &app.client,
        &app,
        "/login?return_to=%2Fadmin",
        "root@example.com",
        PASSWORD,
    )
    .await;
    let list = page(&app.client, &app, "/admin/clients").await;
    let form = Form::with_action(&list, "/admin/clients").on_page(&abs(&app, "/admin/clients"));
    assert!(form.input("require_mfa").is_some(), "{list}");
    let res = form
        .submit(
            &app,
            &[
                ("name", "Payroll"),
                ("redirect_uris", REDIRECT_URI),
                ("scope", "openid"),
                ("require_mfa", "yes"),
            ],
            None,
        )
        .await;
    let created = expect_page(res, "the create POST").await;
    assert!(created.contains("Payroll"), "{created}");
    assert_eq!(
        app.count("clients WHERE name = 'Payroll' AND require_mfa = true")
            .await,
        1
    );
    let payroll = json_out(&app.castellan(&["client", "list", "--json"]))
        .as_array()
        .expect("a list")
        .iter()
        .find(|c| c["name"] == "Payroll")
        .expect("the new client")["client_id"]
        .as_str()
        .expect("an id")
        .to_owned();
    let client_page = format!("/admin/clients/{payroll}");
    let body = page(&app.client, &app, &client_page).await;
    assert!(body.contains("data-require-mfa=\"true\""), "{body}");
    assert!(
        body.contains("name=\"require_mfa\" type=\"checkbox\" value=\"yes\" checked"),
        "{body}"
    );
    // Unticked on the edit form: cleared.
    let form = Form::with_action(&body, &client_page).on_page(&abs(&app, &client_page));
    let fields: Vec<(String, String)> = form
        .body(&[], None)
        .into_iter()
        .chain([
            ("name".to_owned(), "Payroll".to_owned()),
            ("redirect_uris".to_owned(), REDIRECT_URI.to_owned()),
            ("scope".to_owned(), "openid".to_owned()),
        ])
        .collect();
    let res = form.send(&app.client, &app, &fields).await;
    assert_eq!(res.status().as_u16(), 303);
    let body = page(&app.client, &app, &client_page).await;
    assert!(body.contains("data-require-mfa=\"false\""), "{body}");

    // Admin API: create with the flag, read it back, replace without it.
    let (cid, csecret) = create_client(
        &app,
        &[
            "--redirect-uri",
            REDIRECT_URI,
            "--scope",
            "openid admin",
            "--skip-consent",
        ],
    );
    let console = Rp::discover(&app, &cid, csecret.as_deref(), REDIRECT_URI).await;
    // The administrator's browser is signed in already (the pages above).
    let admin = sign_in_again(&app, &console, &["openid", "admin"])
        .await
        .access_token();
    let http = reqwest::Client::new();
    let res = http
        .post(app.url("/admin/api/v1/clients"))
        .bearer_auth(&admin)
        .json(&json!({"name": "Api", "redirect_uris": [REDIRECT_URI], "require_mfa": true}))
        .send()
        .await
        .expect("create");
    let raw = Raw::from(res).await;
    assert_eq!(raw.status, 201, "{}", raw.text);
    assert_eq!(raw.json["require_mfa"], true);
    let api_id = raw.json["client_id"].as_str().expect("an id").to_owned();
    let res = http
        .put(app.url(&format!("/admin/api/v1/clients/{api_id}")))
        .bearer_auth(&admin)
        .json(&json!({"name": "Api", "redirect_uris": [REDIRECT_URI]}))
        .send()
        .await
        .expect("replace");
    let raw = Raw::from(res).await;
    assert_eq!(raw.status, 200, "{}", raw.text);
    assert_eq!(raw.json["require_mfa"], false);
}
