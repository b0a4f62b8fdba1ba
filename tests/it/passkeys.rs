//! Passkeys (issue 17) through the real pages over HTTP, with the software authenticator of
//! `harness::authenticator` answering the server's options as a browser would: registration
//! from the account page, sign-in with a passkey alone, a passkey as the second factor and for
//! step-up to `phr`, passkey-only accounts, rename and removal, and the attacker's paths
//! (a replayed answer, another session's ceremony, an expired ceremony, another user's
//! credential, a foreign origin, no user verification, a counter that does not rise, parallel
//! answers to one challenge, a ceremony finished on another instance).

use crate::harness::authenticator::SoftPasskey;
use crate::harness::forms::{Form, location, path_of};
use crate::harness::rp::{PASSWORD, REDIRECT_URI, code_of, create_user, expect_page};
use crate::harness::{
    TestApp, browser, spawn_app, spawn_app_at_localhost, spawn_app_at_localhost_beside,
};
use crate::mfa::{
    abs, audits, claims_of, code_now, enrolled, follow, get, login, page, password_step, rp_for,
    second_step, signed_in,
};

/// The origin the software "browser" reports: the issuer's.
fn origin(app: &TestApp) -> String {
    app.address.clone()
}

/// The CSRF token and the form of the passkey form posting to `action` on `html`.
fn passkey_form(html: &str, action: &str) -> Form {
    Form::find(html, |f| f.action == action)
        .unwrap_or_else(|| panic!("no form posting to {action}:\n{html}"))
}

fn csrf_of(form: &Form) -> String {
    form.input("csrf_token")
        .expect("a csrf_token field")
        .value
        .clone()
}

/// POSTs to an options path with the CSRF token; the status and the JSON.
async fn options(
    client: &reqwest::Client,
    app: &TestApp,
    path: &str,
    csrf: &str,
) -> (u16, serde_json::Value) {
    let res = client
        .post(app.url(path))
        .form(&[("csrf_token", csrf)])
        .send()
        .await
        .unwrap_or_else(|e| panic!("POST {path}: {e}"));
    let status = res.status().as_u16();
    let json = res.json().await.unwrap_or(serde_json::Value::Null);
    (status, json)
}

/// As [`options`], also returning the ceremony cookie the answer set.
async fn options_with_ceremony(
    client: &reqwest::Client,
    app: &TestApp,
    path: &str,
    csrf: &str,
) -> (serde_json::Value, String) {
    let res = client
        .post(app.url(path))
        .form(&[("csrf_token", csrf)])
        .send()
        .await
        .unwrap_or_else(|e| panic!("POST {path}: {e}"));
    assert_eq!(res.status().as_u16(), 200);
    let ceremony = ceremony_of(&res);
    (res.json().await.expect("JSON options"), ceremony)
}

/// Registers a passkey from the account page of the signed-in `client`.
async fn register(client: &reqwest::Client, app: &TestApp, name: &str) -> SoftPasskey {
    let body = page(client, app, "/account/passkeys").await;
    let form = passkey_form(&body, "/account/passkeys").on_page(&abs(app, "/account/passkeys"));
    let (status, opts) = options(client, app, "/account/passkeys/options", &csrf_of(&form)).await;
    assert_eq!(status, 200, "{opts}");
    let (key, answer) = SoftPasskey::create(&opts, &origin(app));
    let res = form
        .submit_with(
            client,
            app,
            &[("name", name), ("credential", &answer)],
            None,
        )
        .await;
    let done = expect_page(res, "the registration POST").await;
    assert!(done.contains("Your passkey is added."), "{done}");
    key
}

/// Signs in with a passkey alone from the login page at `login_url`; the response.
async fn passkey_sign_in(
    client: &reqwest::Client,
    app: &TestApp,
    login_url: &str,
    key: &mut SoftPasskey,
) -> reqwest::Response {
    let body = page(client, app, login_url).await;
    let form = passkey_form(&body, "/login/passkey").on_page(&abs(app, login_url));
    let (status, opts) = options(client, app, "/login/passkey/options", &csrf_of(&form)).await;
    assert_eq!(status, 200, "{opts}");
    let answer = key.get(&opts, &origin(app));
    form.submit_with(client, app, &[("credential", &answer)], None)
        .await
}

/// A user signed in with the password in a new browser, with one registered passkey.
async fn user_with_passkey(app: &TestApp, email: &str) -> (reqwest::Client, SoftPasskey) {
    create_user(app, email, PASSWORD);
    let client = browser();
    let res = login(&client, app, "/login", email, PASSWORD).await;
    assert_eq!(res.status().as_u16(), 303);
    let key = register(&client, app, "Laptop").await;
    (client, key)
}

// ---------------------------------------------------------------------------------------------
// Registration, the pages, the script.

#[tokio::test]
async fn the_login_page_offers_a_passkey_and_autofill_and_the_script_is_served_under_the_csp() {
    let app = spawn_app_at_localhost(|_| {}).await;
    let body = page(&browser(), &app, "/login").await;
    assert!(body.contains("Sign in with a passkey"), "{body}");
    assert!(
        body.contains("autocomplete=\"username webauthn\""),
        "autofill: {body}"
    );
    assert!(body.contains("<script src=\"/static/js/passkeys.js\" defer></script>"));
    assert!(
        !body.contains("<script>"),
        "no inline script under the CSP: {body}"
    );
    let js = get(&browser(), &app, "/static/js/passkeys.js").await;
    assert_eq!(js.status().as_u16(), 200);
    assert_eq!(
        js.headers()["content-type"].to_str().unwrap_or_default(),
        "text/javascript; charset=utf-8"
    );
    let text = js.text().await.unwrap_or_default();
    assert!(text.contains("navigator.credentials.get"), "{text}");

    // An issuer on an IP address has no WebAuthn relying party: no passkey is offered.
    let ip = spawn_app().await;
    let client = browser();
    let body = page(&client, &ip, "/login").await;
    assert!(!body.contains("passkey"), "{body}");
    let form = Form::with_input(&body, "password");
    let (status, _) = options(
        &client,
        &ip,
        "/login/passkey/options",
        &csrf_of(&form.on_page(&ip.url("/login"))),
    )
    .await;
    assert_eq!(status, 404);
}

#[tokio::test]
async fn a_passkey_is_registered_named_renamed_and_listed_and_its_options_ask_for_a_discoverable_verified_credential()
 {
    let app = spawn_app_at_localhost(|_| {}).await;
    let email = "reg@example.com";
    create_user(&app, email, PASSWORD);
    let client = browser();
    login(&client, &app, "/login", email, PASSWORD).await;

    let body = page(&client, &app, "/account/passkeys").await;
    assert!(body.contains("data-passkeys=\"0\""), "{body}");
    let form = passkey_form(&body, "/account/passkeys");
    let (status, opts) = options(&client, &app, "/account/passkeys/options", &csrf_of(&form)).await;
    assert_eq!(status, 200);
    let pk = &opts["publicKey"];
    assert_eq!(pk["rp"]["id"], "localhost");
    assert_eq!(pk["authenticatorSelection"]["residentKey"], "required");
    assert_eq!(pk["authenticatorSelection"]["userVerification"], "required");
    assert_eq!(pk["attestation"], "none");
    assert_ne!(pk["user"]["name"], serde_json::Value::Null);

    // Without the CSRF token: refused, no ceremony.
    let (status, _) = options(&client, &app, "/account/passkeys/options", "nope").await;
    assert_eq!(status, 403);
    // Signed out: refused.
    let (status, _) = options(&browser(), &app, "/account/passkeys/options", "x").await;
    assert!(status == 401 || status == 403, "{status}");

    let _key = register(&client, &app, "  My laptop\u{7}  ").await;
    let body = page(&client, &app, "/account/passkeys").await;
    assert!(body.contains("value=\"My laptop\""), "{body}");
    assert_eq!(app.count("passkeys").await, 1);
    assert_eq!(audits(&app, "factor_added").await, 1);

    // Rename.
    let id = app
        .store
        .passkeys_of(&castellan::domain::UserId::from_stored(
            user_id(&app, email).await,
        ))
        .await
        .expect("passkeys")[0]
        .id
        .clone();
    let rename = passkey_form(&body, &format!("/account/passkeys/{id}/rename"))
        .on_page(&abs(&app, "/account/passkeys"));
    let res = rename
        .submit_with(&client, &app, &[("name", "Work phone")], None)
        .await;
    assert_eq!(res.status().as_u16(), 303);
    let body = page(&client, &app, "/account/passkeys").await;
    assert!(body.contains("value=\"Work phone\""), "{body}");
    assert_eq!(audits(&app, "factor_updated").await, 1);
    // Another user cannot rename it.
    let (other, _) = user_with_passkey(&app, "other@example.com").await;
    let other_page = page(&other, &app, "/account/passkeys").await;
    let csrf = csrf_of(&passkey_form(&other_page, "/account/passkeys"));
    let res = other
        .post(app.url(&format!("/account/passkeys/{id}/rename")))
        .form(&[("csrf_token", csrf.as_str()), ("name", "mine now")])
        .send()
        .await
        .expect("POST");
    assert_eq!(res.status().as_u16(), 404);
    assert!(
        page(&client, &app, "/account/passkeys")
            .await
            .contains("value=\"Work phone\"")
    );
}

async fn user_id(app: &TestApp, email: &str) -> String {
    app.store
        .user_by_email(&castellan::domain::Email::parse(email).expect("an email"))
        .await
        .expect("the store")
        .expect("the user")
        .id
        .as_str()
        .to_owned()
}

#[tokio::test]
async fn a_registration_answer_is_refused_from_another_session_after_expiry_from_another_origin_and_twice()
 {
    let app = spawn_app_at_localhost(|_| {}).await;
    create_user(&app, "a@example.com", PASSWORD);
    let a = browser();
    login(&a, &app, "/login", "a@example.com", PASSWORD).await;
    let body = page(&a, &app, "/account/passkeys").await;
    let form = passkey_form(&body, "/account/passkeys").on_page(&abs(&app, "/account/passkeys"));

    // Another origin (a phishing site relaying the options): refused.
    let (_, opts) = options(&a, &app, "/account/passkeys/options", &csrf_of(&form)).await;
    let (_, answer) = SoftPasskey::create(&opts, "http://evil.example");
    let res = form
        .submit_with(&a, &app, &[("credential", &answer)], None)
        .await;
    assert_eq!(res.status().as_u16(), 400);

    // Expired: the ceremony lives five minutes.
    let (_, opts) = options(&a, &app, "/account/passkeys/options", &csrf_of(&form)).await;
    let (_, answer) = SoftPasskey::create(&opts, &origin(&app));
    app.clock.advance_secs(301);
    let res = form
        .submit_with(&a, &app, &[("credential", &answer)], None)
        .await;
    assert_eq!(res.status().as_u16(), 400);

    // Another session of the same user cannot finish it (the ceremony cookie copied over).
    let (opts, ceremony) =
        options_with_ceremony(&a, &app, "/account/passkeys/options", &csrf_of(&form)).await;
    let (_, answer) = SoftPasskey::create(&opts, &origin(&app));
    let (b, jar) = browser_with_jar();
    login(&b, &app, "/login", "a@example.com", PASSWORD).await;
    let b_page = page(&b, &app, "/account/passkeys").await;
    let b_form =
        passkey_form(&b_page, "/account/passkeys").on_page(&abs(&app, "/account/passkeys"));
    give_cookie(&jar, &app, "castellan_webauthn", &ceremony);
    let res = b_form
        .submit_with(&b, &app, &[("credential", &answer)], None)
        .await;
    assert_eq!(res.status().as_u16(), 400, "another session's ceremony");
    assert_eq!(
        app.count("audit_events WHERE kind = 'factor_failed' AND detail LIKE '%other_session%'")
            .await,
        1
    );
    // The right session still can, once.
    let res = form
        .submit_with(&a, &app, &[("credential", &answer)], None)
        .await;
    assert_eq!(res.status().as_u16(), 200);
    let res = form
        .submit_with(&a, &app, &[("credential", &answer)], None)
        .await;
    assert_eq!(res.status().as_u16(), 400, "a ceremony serves once");
    assert_eq!(app.count("passkeys").await, 1);
    assert!(audits(&app, "factor_failed").await >= 3);
}

/// A browser whose cookies a test can add to.
fn browser_with_jar() -> (reqwest::Client, std::sync::Arc<reqwest::cookie::Jar>) {
    let jar = std::sync::Arc::new(reqwest::cookie::Jar::default());
    let client = reqwest::Client::builder()
        .cookie_provider(jar.clone())
        .redirect(reqwest::redirect::Policy::none())
        .build()
        .expect("http client");
    (client, jar)
}

/// Puts a cookie for the app into a browser's jar (another browser's, copied by an attacker).
fn give_cookie(jar: &reqwest::cookie::Jar, app: &TestApp, name: &str, value: &str) {
    let url = reqwest::Url::parse(&app.url("/")).expect("the app's URL");
    jar.add_cookie_str(&format!("{name}={value}; Path=/"), &url);
}

/// The ceremony cookie an options response set.
fn ceremony_of(res: &reqwest::Response) -> String {
    res.headers()
        .get_all("set-cookie")
        .iter()
        .filter_map(|v| v.to_str().ok())
        .find_map(|v| v.strip_prefix("castellan_webauthn="))
        .map(|v| v[..v.find(';').unwrap_or(v.len())].to_owned())
        .expect("a ceremony cookie")
}

// ---------------------------------------------------------------------------------------------
// Sign-in with a passkey alone.

const PASSKEY_FAILURE: &str = "That passkey could not be used.";

#[tokio::test]
async fn a_passkey_alone_signs_in_and_reaches_a_relying_party_with_phr() {
    let app = spawn_app_at_localhost(|_| {}).await;
    let (_, mut key) = user_with_passkey(&app, "alone@example.com").await;
    let rp = rp_for(&app).await;

    let client = browser();
    let req = rp.authorize(&["openid"], true, &[]);
    let (at, _) = follow(&client, &app, &req.url).await;
    assert_eq!(path_of(&at), "/login");
    let res = passkey_sign_in(&client, &app, &at, &mut key).await;
    assert_eq!(res.status().as_u16(), 303, "signed in with the passkey");
    let (back, _) = follow(&client, &app, &location(&res)).await;
    assert!(back.starts_with(REDIRECT_URI), "{back}");
    let tokens = rp.exchange_code(&code_of(&back), req.pkce_verifier).await;
    let claims = claims_of(&tokens);
    assert_eq!(claims["amr"], serde_json::json!(["hwk", "mfa"]));
    assert_eq!(claims["acr"], "phr");
    let verified = rp.verify_id_token(&tokens, &req.nonce);
    assert_eq!(verified.auth_context_ref().map(|a| a.as_str()), Some("phr"));
    assert!(audits(&app, "factor_used").await >= 1);

    // A synced passkey (backup eligible) says `swk`.
    let (_, mut synced) = {
        create_user(&app, "synced@example.com", PASSWORD);
        let c = browser();
        login(&c, &app, "/login", "synced@example.com", PASSWORD).await;
        let body = page(&c, &app, "/account/passkeys").await;
        let form =
            passkey_form(&body, "/account/passkeys").on_page(&abs(&app, "/account/passkeys"));
        let (_, opts) = options(&c, &app, "/account/passkeys/options", &csrf_of(&form)).await;
        let (mut key, _) = SoftPasskey::create(&opts, &origin(&app));
        key.backup_eligible = true;
        let challenge = opts["publicKey"]["challenge"].as_str().expect("challenge");
        let answer = key.attestation(challenge, &origin(&app));
        let res = form
            .submit_with(&c, &app, &[("credential", &answer)], None)
            .await;
        assert_eq!(res.status().as_u16(), 200);
        (c, key)
    };
    let client = browser();
    let req = rp.authorize(&["openid"], true, &[]);
    let (at, _) = follow(&client, &app, &req.url).await;
    let res = passkey_sign_in(&client, &app, &at, &mut synced).await;
    let (back, _) = follow(&client, &app, &location(&res)).await;
    let tokens = rp.exchange_code(&code_of(&back), req.pkce_verifier).await;
    assert_eq!(claims_of(&tokens)["amr"], serde_json::json!(["swk", "mfa"]));
}

#[tokio::test]
async fn a_passkey_answer_is_refused_replayed_expired_foreign_unverified_unknown_or_tampered() {
    let app = spawn_app_at_localhost(|_| {}).await;
    let (_, mut key) = user_with_passkey(&app, "attacked@example.com").await;
    let client = browser();
    let body = page(&client, &app, "/login").await;
    let form = passkey_form(&body, "/login/passkey").on_page(&abs(&app, "/login"));
    let csrf = csrf_of(&form);
    let refused = |res: reqwest::Response, why: &'static str| async move {
        let status = res.status().as_u16();
        let text = res.text().await.unwrap_or_default();
        assert_eq!(status, 200, "{why}: {text}");
        assert!(text.contains(PASSKEY_FAILURE), "{why}: {text}");
    };

    // Replayed: the first answer signs in, the same answer again is refused.
    let (opts, ceremony) =
        options_with_ceremony(&client, &app, "/login/passkey/options", &csrf).await;
    let answer = key.get(&opts, &origin(&app));
    let res = form
        .submit_with(&client, &app, &[("credential", &answer)], None)
        .await;
    assert_eq!(res.status().as_u16(), 303);
    // Another browser that copied the ceremony cookie and the answer.
    let (other, jar) = browser_with_jar();
    let other_body = page(&other, &app, "/login").await;
    let other_form = passkey_form(&other_body, "/login/passkey").on_page(&abs(&app, "/login"));
    give_cookie(&jar, &app, "castellan_webauthn", &ceremony);
    let res = other_form
        .submit_with(&other, &app, &[("credential", &answer)], None)
        .await;
    refused(res, "a replayed answer").await;

    let client = browser();
    let body = page(&client, &app, "/login").await;
    let form = passkey_form(&body, "/login/passkey").on_page(&abs(&app, "/login"));
    let csrf = csrf_of(&form);

    // Expired.
    let (_, opts) = options(&client, &app, "/login/passkey/options", &csrf).await;
    let answer = key.get(&opts, &origin(&app));
    app.clock.advance_secs(301);
    let res = form
        .submit_with(&client, &app, &[("credential", &answer)], None)
        .await;
    refused(res, "an expired ceremony").await;

    // Another origin.
    let (_, opts) = options(&client, &app, "/login/passkey/options", &csrf).await;
    let answer = key.get(&opts, "http://evil.example");
    let res = form
        .submit_with(&client, &app, &[("credential", &answer)], None)
        .await;
    refused(res, "a foreign origin").await;

    // No user verification.
    let (_, opts) = options(&client, &app, "/login/passkey/options", &csrf).await;
    key.without_user_verification();
    let answer = key.get(&opts, &origin(&app));
    key.flags = 0x01 | 0x04;
    let res = form
        .submit_with(&client, &app, &[("credential", &answer)], None)
        .await;
    refused(res, "no user verification").await;

    // A credential nobody registered.
    let (_, opts) = options(&client, &app, "/login/passkey/options", &csrf).await;
    let (mut stranger, _) = SoftPasskey::create(&register_like(&key), &origin(&app));
    let answer = stranger.get(&opts, &origin(&app));
    let res = form
        .submit_with(&client, &app, &[("credential", &answer)], None)
        .await;
    refused(res, "an unknown credential").await;

    // A tampered signature.
    let (_, opts) = options(&client, &app, "/login/passkey/options", &csrf).await;
    let answer = key.get(&opts, &origin(&app));
    let mut v: serde_json::Value = serde_json::from_str(&answer).expect("json");
    let sig = v["response"]["signature"].as_str().expect("sig").to_owned();
    let flipped = if sig.ends_with('A') { "B" } else { "A" };
    v["response"]["signature"] = format!("{}{flipped}", &sig[..sig.len() - 1]).into();
    let res = form
        .submit_with(&client, &app, &[("credential", &v.to_string())], None)
        .await;
    refused(res, "a tampered signature").await;

    // Not JSON, and an oversized answer.
    let (_, _) = options(&client, &app, "/login/passkey/options", &csrf).await;
    let res = form
        .submit_with(&client, &app, &[("credential", "{not json")], None)
        .await;
    refused(res, "malformed").await;

    // None of these signed in; each was audited and counted against the address.
    assert!(!signed_in(&client, &app).await);
    assert!(
        app.count("audit_events WHERE kind = 'login_failed' AND detail LIKE 'reason=passkey%'")
            .await
            >= 7
    );
    for reason in [
        "no_ceremony",
        "invalid_assertion",
        "unknown_credential",
        "malformed",
    ] {
        let q = format!(
            "audit_events WHERE kind = 'login_failed' AND detail = 'reason=passkey {reason}'"
        );
        assert!(app.count(&q).await >= 1, "{reason} audited");
    }
    // The passkey still works.
    let res = passkey_sign_in(&client, &app, "/login", &mut key).await;
    assert_eq!(res.status().as_u16(), 303);
}

/// Registration-like options for the same relying party (for a credential made outside it).
fn register_like(key: &SoftPasskey) -> serde_json::Value {
    serde_json::json!({"publicKey": {
        "rp": {"id": key.rp_id},
        "challenge": "AAAA",
        "user": {"id": "AAAAAAAAAAAAAAAAAAAAAA"},
    }})
}

#[tokio::test]
async fn a_counter_that_does_not_rise_and_a_user_handle_that_is_not_the_credentials_are_refused() {
    let app = spawn_app_at_localhost(|_| {}).await;
    let (_, mut a) = user_with_passkey(&app, "count@example.com").await;
    let (_, mut b) = user_with_passkey(&app, "handle@example.com").await;

    a.with_counter(5);
    let res = passkey_sign_in(&browser(), &app, "/login", &mut a).await;
    assert_eq!(res.status().as_u16(), 303, "counter 6 > 0");
    // A clone still at 3.
    a.with_counter(3);
    let res = passkey_sign_in(&browser(), &app, "/login", &mut a).await;
    assert_eq!(res.status().as_u16(), 200, "a counter that went back");
    // webauthn-rs refuses it against the stored counter (§7.2 step 21); the store's conditional
    // UPDATE is the second guard, for two uses racing.
    assert_eq!(
        app.count("audit_events WHERE kind = 'login_failed' AND detail LIKE 'reason=passkey %'")
            .await,
        1
    );

    // B's credential claiming to be A's user.
    b.user_handle = a.user_handle.clone();
    let res = passkey_sign_in(&browser(), &app, "/login", &mut b).await;
    assert_eq!(res.status().as_u16(), 200, "another user's handle");
    assert_eq!(
        app.count("audit_events WHERE detail = 'reason=passkey unknown_credential'")
            .await,
        1
    );
}

#[tokio::test]
async fn of_parallel_answers_to_one_challenge_exactly_one_signs_in() {
    let app = spawn_app_at_localhost(|_| {}).await;
    let (_, mut key) = user_with_passkey(&app, "race@example.com").await;
    let client = browser();
    let body = page(&client, &app, "/login").await;
    let form = passkey_form(&body, "/login/passkey").on_page(&abs(&app, "/login"));
    let (_, opts) = options(&client, &app, "/login/passkey/options", &csrf_of(&form)).await;
    let answer = key.get(&opts, &origin(&app));
    let tries = (0..8).map(|_| {
        let (client, form, answer, app) = (&client, &form, &answer, &app);
        async move {
            form.submit_with(client, app, &[("credential", answer)], None)
                .await
                .status()
                .as_u16()
        }
    });
    let statuses = futures_util::future::join_all(tries).await;
    assert_eq!(
        statuses.iter().filter(|s| **s == 303).count(),
        1,
        "{statuses:?}"
    );
    assert_eq!(
        app.count("sessions").await,
        2,
        "the registering one and one more"
    );
}

#[tokio::test]
async fn a_ceremony_begun_on_one_instance_is_finished_on_another() {
    let one = spawn_app_at_localhost(|_| {}).await;
    let issuer = one.address.clone();
    let two = spawn_app_at_localhost_beside(&one, |s| s.server.issuer = issuer).await;
    let (_, key) = user_with_passkey(&one, "twice@example.com").await;
    let mut key = key;
    let client = browser();
    let body = page(&client, &one, "/login").await;
    let form = passkey_form(&body, "/login/passkey").on_page(&abs(&one, "/login"));
    let (_, opts) = options(&client, &one, "/login/passkey/options", &csrf_of(&form)).await;
    let answer = key.get(&opts, &origin(&one));
    // The form posted to the second instance (cookies go by host, not port).
    let res = client
        .post(two.url("/login/passkey"))
        .form(&[
            ("csrf_token", csrf_of(&form).as_str()),
            ("credential", answer.as_str()),
        ])
        .send()
        .await
        .expect("POST");
    assert_eq!(res.status().as_u16(), 303, "finished on the other instance");
    assert!(signed_in(&client, &two).await);
}

// ---------------------------------------------------------------------------------------------
// A passkey as the second factor, and step-up.

async fn second_factor_answer(
    client: &reqwest::Client,
    app: &TestApp,
    step_url: &str,
    key: &mut SoftPasskey,
) -> reqwest::Response {
    let body = page(client, app, step_url).await;
    assert!(body.contains("Use a passkey"), "{body}");
    let form = passkey_form(&body, "/login/second-factor/passkey").on_page(&abs(app, step_url));
    let (status, opts) = options(
        client,
        app,
        "/login/second-factor/passkey/options",
        &csrf_of(&form),
    )
    .await;
    assert_eq!(status, 200, "{opts}");
    let allowed = opts["publicKey"]["allowCredentials"]
        .as_array()
        .map(Vec::len)
        .unwrap_or(0);
    assert!(allowed >= 1, "the user's credentials are allowed: {opts}");
    let answer = key.get(&opts, &origin(app));
    form.submit_with(client, app, &[("credential", &answer)], None)
        .await
}

#[tokio::test]
async fn after_the_password_a_passkey_is_the_second_factor_and_another_users_is_refused() {
    let app = spawn_app_at_localhost(|_| {}).await;
    let (_, mut mine) = user_with_passkey(&app, "second@example.com").await;
    let (_, mut theirs) = user_with_passkey(&app, "theirs@example.com").await;
    let rp = rp_for(&app).await;

    let client = browser();
    let req = rp.authorize(&["openid"], true, &[]);
    let (at, _) = follow(&client, &app, &req.url).await;
    let res = login(&client, &app, &at, "second@example.com", PASSWORD).await;
    let step = location(&res);
    assert_eq!(
        path_of(&step),
        "/login/second-factor",
        "the password is not enough"
    );
    assert!(!signed_in(&client, &app).await);

    // Another user's passkey on this pending sign-in.
    let res = second_factor_answer(&client, &app, &step, &mut theirs).await;
    assert_eq!(res.status().as_u16(), 200);
    assert!(!signed_in(&client, &app).await);
    assert_eq!(
        app.count(
            "audit_events WHERE kind = 'factor_failed' AND detail LIKE '%unknown_credential%'"
        )
        .await,
        1
    );
    // A code typed by a user whose only factor is a passkey is a wrong one, not the end.
    let res = second_step(&client, &app, &step, "123456").await;
    assert_eq!(res.status().as_u16(), 200);

    let res = second_factor_answer(&client, &app, &step, &mut mine).await;
    assert_eq!(res.status().as_u16(), 303);
    let (back, _) = follow(&client, &app, &location(&res)).await;
    let tokens = rp.exchange_code(&code_of(&back), req.pkce_verifier).await;
    let claims = claims_of(&tokens);
    assert_eq!(claims["amr"], serde_json::json!(["pwd", "hwk", "mfa"]));
    assert_eq!(claims["acr"], "phr");
}

#[tokio::test]
async fn a_ceremony_of_another_pending_sign_in_is_refused() {
    let app = spawn_app_at_localhost(|_| {}).await;
    let (_, mut key) = user_with_passkey(&app, "bound@example.com").await;
    // Browser A begins the second step and gets a ceremony; browser B (the same user's
    // password typed elsewhere) presents A's ceremony with a valid answer.
    let a = browser();
    let step_a = password_step(&a, &app, "bound@example.com").await;
    let body = page(&a, &app, &step_a).await;
    let form = passkey_form(&body, "/login/second-factor/passkey");
    let (opts, ceremony) = options_with_ceremony(
        &a,
        &app,
        "/login/second-factor/passkey/options",
        &csrf_of(&form),
    )
    .await;
    let answer = key.get(&opts, &origin(&app));
    let (b, jar) = browser_with_jar();
    let step_b = password_step(&b, &app, "bound@example.com").await;
    let body_b = page(&b, &app, &step_b).await;
    let form_b = passkey_form(&body_b, "/login/second-factor/passkey").on_page(&abs(&app, &step_b));
    give_cookie(&jar, &app, "castellan_webauthn", &ceremony);
    let res = form_b
        .submit_with(&b, &app, &[("credential", &answer)], None)
        .await;
    assert_eq!(res.status().as_u16(), 200);
    assert!(!signed_in(&b, &app).await);
    assert_eq!(
        app.count("audit_events WHERE kind = 'factor_failed' AND detail LIKE '%other_session%'")
            .await,
        1
    );
    // A still finishes with its own ceremony.
    let res = form
        .on_page(&abs(&app, &step_a))
        .submit_with(&a, &app, &[("credential", &answer)], None)
        .await;
    assert_eq!(res.status().as_u16(), 303);
}

#[tokio::test]
async fn acr_values_phr_steps_a_password_session_up_with_a_passkey_or_takes_the_user_to_register_one()
 {
    let app = spawn_app_at_localhost(|_| {}).await;
    let rp = rp_for(&app).await;
    let email = "phr@example.com";
    create_user(&app, email, PASSWORD);
    // A password-only session from before the passkey.
    let early = browser();
    login(&early, &app, "/login", email, PASSWORD).await;
    let reg = browser();
    login(&reg, &app, "/login", email, PASSWORD).await;
    let mut key = register(&reg, &app, "Phone").await;

    let req = rp.authorize(&["openid"], true, &[("acr_values", "phr")]);
    let (at, _) = follow(&early, &app, &req.url).await;
    assert_eq!(path_of(&at), "/login/second-factor", "{at}");
    let res = second_factor_answer(&early, &app, &at, &mut key).await;
    assert_eq!(res.status().as_u16(), 303);
    let (back, _) = follow(&early, &app, &location(&res)).await;
    assert!(back.starts_with(REDIRECT_URI), "{back}");
    let tokens = rp.exchange_code(&code_of(&back), req.pkce_verifier).await;
    let claims = claims_of(&tokens);
    assert_eq!(claims["acr"], "phr");
    assert_eq!(claims["amr"], serde_json::json!(["pwd", "hwk", "mfa"]));

    // A TOTP user with no passkey asked for phr: the passkeys page, then back.
    let totp_user = browser();
    let (secret, _) = enrolled(&totp_user, &app, "totp-only@example.com").await;
    let _ = secret;
    let req = rp.authorize(&["openid"], true, &[("acr_values", "phr")]);
    let (at, _) = follow(&totp_user, &app, &req.url).await;
    assert_eq!(path_of(&at), "/account/passkeys", "{at}");
    // An mfa request is met by the TOTP session as it is.
    let req = rp.authorize(
        &["openid"],
        true,
        &[("acr_values", "urn:castellan:acr:mfa")],
    );
    let (back, _) = follow(&totp_user, &app, &req.url).await;
    assert!(back.starts_with(REDIRECT_URI), "{back}");
    let _ = code_now;
}

// ---------------------------------------------------------------------------------------------
// Passkey-only accounts and removal.

#[tokio::test]
async fn an_account_can_drop_its_password_and_keep_signing_in_with_passkeys_but_not_lose_the_last()
{
    let app = spawn_app_at_localhost(|_| {}).await;
    let email = "nopw@example.com";
    let (client, mut key) = user_with_passkey(&app, email).await;

    // A wrong current password keeps it.
    let body = page(&client, &app, "/account/passkeys").await;
    let form =
        passkey_form(&body, "/account/password/remove").on_page(&abs(&app, "/account/passkeys"));
    let res = form
        .submit_with(&client, &app, &[("current_password", "wrong one")], None)
        .await;
    assert_eq!(res.status().as_u16(), 400);
    let res = form
        .submit_with(&client, &app, &[("current_password", PASSWORD)], None)
        .await;
    let done = expect_page(res, "the password removal").await;
    assert!(done.contains("Your password is removed"), "{done}");
    assert_eq!(audits(&app, "password_removed").await, 1);

    // The password no longer signs in; the passkey does.
    let res = login(&browser(), &app, "/login", email, PASSWORD).await;
    assert_eq!(res.status().as_u16(), 200);
    let res = passkey_sign_in(&browser(), &app, "/login", &mut key).await;
    assert_eq!(res.status().as_u16(), 303);

    // The last passkey of an account without a password cannot be removed.
    let uid = castellan::domain::UserId::from_stored(user_id(&app, email).await);
    let ids: Vec<String> = app
        .store
        .passkeys_of(&uid)
        .await
        .expect("passkeys")
        .into_iter()
        .map(|p| p.id)
        .collect();
    let body = page(&client, &app, "/account/passkeys").await;
    let remove = passkey_form(&body, &format!("/account/passkeys/{}/remove", ids[0]))
        .on_page(&abs(&app, "/account/passkeys"));
    let res = remove.submit_with(&client, &app, &[], None).await;
    let text = res.text().await.unwrap_or_default();
    assert!(text.contains("last way to sign in"), "{text}");
    assert_eq!(app.count("passkeys").await, 1);

    // With a second one, the first can go.
    let _second = register(&client, &app, "Backup key").await;
    let res = remove.submit_with(&client, &app, &[], None).await;
    assert_eq!(res.status().as_u16(), 303);
    assert_eq!(app.count("passkeys").await, 1);
    assert_eq!(audits(&app, "factor_removed").await, 1);

    // A session older than five minutes must sign in again to remove one.
    app.clock.advance_secs(301);
    let _third = register(&client, &app, "Third").await;
    let body = page(&client, &app, "/account/passkeys").await;
    let ids: Vec<String> = app
        .store
        .passkeys_of(&uid)
        .await
        .expect("passkeys")
        .into_iter()
        .map(|p| p.id)
        .collect();
    let remove = passkey_form(&body, &format!("/account/passkeys/{}/remove", ids[0]))
        .on_page(&abs(&app, "/account/passkeys"));
    let res = remove.submit_with(&client, &app, &[], None).await;
    let text = res.text().await.unwrap_or_default();
    assert!(text.contains("sign in again"), "{text}");
}

#[tokio::test]
async fn of_two_parallel_removals_of_a_passwordless_accounts_last_two_passkeys_one_is_refused() {
    let app = spawn_app_at_localhost(|_| {}).await;
    let email = "race-remove@example.com";
    let (client, _first) = user_with_passkey(&app, email).await;
    let _second = register(&client, &app, "Second").await;
    let body = page(&client, &app, "/account/passkeys").await;
    let form =
        passkey_form(&body, "/account/password/remove").on_page(&abs(&app, "/account/passkeys"));
    let res = form
        .submit_with(&client, &app, &[("current_password", PASSWORD)], None)
        .await;
    assert_eq!(res.status().as_u16(), 200);

    let uid = castellan::domain::UserId::from_stored(user_id(&app, email).await);
    let ids: Vec<String> = app
        .store
        .passkeys_of(&uid)
        .await
        .expect("passkeys")
        .into_iter()
        .map(|p| p.id)
        .collect();
    assert_eq!(ids.len(), 2);
    let body = page(&client, &app, "/account/passkeys").await;
    let forms: Vec<Form> = ids
        .iter()
        .map(|id| {
            passkey_form(&body, &format!("/account/passkeys/{id}/remove"))
                .on_page(&abs(&app, "/account/passkeys"))
        })
        .collect();
    let removals = forms.iter().map(|f| {
        let (client, app) = (&client, &app);
        async move {
            f.submit_with(client, app, &[], None)
                .await
                .status()
                .as_u16()
        }
    });
    let statuses = futures_util::future::join_all(removals).await;
    assert_eq!(
        statuses.iter().filter(|s| **s == 303).count(),
        1,
        "{statuses:?}"
    );
    assert_eq!(app.count("passkeys").await, 1, "one way in is kept");
}

// ---------------------------------------------------------------------------------------------
// Policy and an administrator's reset.

#[tokio::test]
async fn a_role_that_requires_a_second_factor_keeps_the_last_passkey_and_an_admin_reset_removes_them()
 {
    let app = spawn_app_at_localhost(|s| s.mfa.required_for_roles = vec!["finance".into()]).await;
    crate::harness::json_out(&app.castellan(&["role", "create", "finance", "--json"]));
    let email = "fin-pk@example.com";
    let (client, mut key) = user_with_passkey(&app, email).await;
    crate::harness::json_out(&app.castellan(&["user", "set-role", email, "finance", "--json"]));

    // The passkey is the last second factor: kept, though the password remains.
    let uid = castellan::domain::UserId::from_stored(user_id(&app, email).await);
    let id = app.store.passkeys_of(&uid).await.expect("passkeys")[0]
        .id
        .clone();
    let body = page(&client, &app, "/account/passkeys").await;
    let remove = passkey_form(&body, &format!("/account/passkeys/{id}/remove"))
        .on_page(&abs(&app, "/account/passkeys"));
    let res = remove
        .submit_with(&client, &app, &[("current_password", PASSWORD)], None)
        .await;
    let text = res.text().await.unwrap_or_default();
    assert!(text.contains("must have a second factor"), "{text}");
    assert_eq!(app.count("passkeys").await, 1);

    // The passkey counts as the required factor: the password leads to the second step.
    let other = browser();
    let step = password_step(&other, &app, email).await;
    let res = second_factor_answer(&other, &app, &step, &mut key).await;
    assert_eq!(res.status().as_u16(), 303);

    // An administrator's reset removes the passkeys with the other factors.
    let out = crate::harness::json_out(&app.castellan(&["user", "reset-mfa", email, "--json"]));
    assert_eq!(out["factors_removed"], 1, "{out}");
    assert_eq!(app.count("passkeys").await, 0);
    let res = passkey_sign_in(&browser(), &app, "/login", &mut key).await;
    assert_eq!(
        res.status().as_u16(),
        200,
        "the reset passkey no longer signs in"
    );
}

#[tokio::test]
async fn under_a_role_policy_a_parallel_removal_of_the_last_totp_and_the_last_passkey_keeps_one() {
    let app = spawn_app_at_localhost(|s| s.mfa.required_for_roles = vec!["finance".into()]).await;
    crate::harness::json_out(&app.castellan(&["role", "create", "finance", "--json"]));
    let email = "both@example.com";
    let (client, _key) = user_with_passkey(&app, email).await;
    let _ = crate::mfa::enrol(&client, &app).await;
    crate::harness::json_out(&app.castellan(&["user", "set-role", email, "finance", "--json"]));
    let uid = castellan::domain::UserId::from_stored(user_id(&app, email).await);
    let id = app.store.passkeys_of(&uid).await.expect("passkeys")[0]
        .id
        .clone();
    let account = page(&client, &app, "/account").await;
    let totp_form =
        passkey_form(&account, "/account/mfa/totp/remove").on_page(&abs(&app, "/account"));
    let body = page(&client, &app, "/account/passkeys").await;
    let pk_form = passkey_form(&body, &format!("/account/passkeys/{id}/remove"))
        .on_page(&abs(&app, "/account/passkeys"));
    let fields = [("current_password", PASSWORD)];
    let (a, b) = tokio::join!(
        totp_form.submit_with(&client, &app, &fields, None),
        pk_form.submit_with(&client, &app, &fields, None),
    );
    let removed = [a.status().as_u16(), b.status().as_u16()]
        .iter()
        .filter(|s| **s == 303)
        .count();
    assert_eq!(removed, 1, "{} {}", a.status(), b.status());
    assert_eq!(
        app.store
            .count_second_factors(&uid)
            .await
            .expect("the count"),
        1,
        "one second factor is kept"
    );
}

#[tokio::test]
async fn a_credential_registered_already_a_second_step_with_nothing_to_step_up_and_a_wrong_password_are_refused()
 {
    let app = spawn_app_at_localhost(|_| {}).await;
    let email = "errs@example.com";
    let (client, key) = user_with_passkey(&app, email).await;

    // The same credential again by its user: refused against the options' excludeCredentials
    // (WebAuthn §5.4.3), not stored twice.
    let body = page(&client, &app, "/account/passkeys").await;
    let form = passkey_form(&body, "/account/passkeys").on_page(&abs(&app, "/account/passkeys"));
    let (_, opts) = options(&client, &app, "/account/passkeys/options", &csrf_of(&form)).await;
    let excluded = opts["publicKey"]["excludeCredentials"]
        .as_array()
        .map(Vec::len);
    assert_eq!(excluded, Some(1), "{opts}");
    let challenge = opts["publicKey"]["challenge"].as_str().expect("challenge");
    let again = key.attestation(challenge, &origin(&app));
    let res = form
        .submit_with(&client, &app, &[("credential", &again)], None)
        .await;
    assert_eq!(res.status().as_u16(), 400);
    let text = res.text().await.unwrap_or_default();
    assert!(text.contains("could not be added"), "{text}");
    assert_eq!(app.count("passkeys").await, 1);

    // Its credential id claimed by another account (a forged attestation with a key of its
    // own): refused by the unique credential id, not stored.
    let (other, _) = user_with_passkey(&app, "claimer@example.com").await;
    let body = page(&other, &app, "/account/passkeys").await;
    let form = passkey_form(&body, "/account/passkeys").on_page(&abs(&app, "/account/passkeys"));
    let (_, opts) = options(&other, &app, "/account/passkeys/options", &csrf_of(&form)).await;
    let (mut forged, _) = SoftPasskey::create(&opts, &origin(&app));
    forged.credential_id = key.credential_id.clone();
    let challenge = opts["publicKey"]["challenge"].as_str().expect("challenge");
    let res = form
        .submit_with(
            &other,
            &app,
            &[("credential", &forged.attestation(challenge, &origin(&app)))],
            None,
        )
        .await;
    assert_eq!(res.status().as_u16(), 400);
    let text = res.text().await.unwrap_or_default();
    assert!(text.contains("registered already"), "{text}");
    assert_eq!(app.count("passkeys").await, 2, "one each, none twice");

    // Passkey options for a second step with no pending sign-in and no session: none.
    let stranger = browser();
    let step = page(&stranger, &app, "/login/second-factor").await;
    let code_form = Form::with_input(&step, "code");
    let (status, _) = options(
        &stranger,
        &app,
        "/login/second-factor/passkey/options",
        &csrf_of(&code_form),
    )
    .await;
    assert_eq!(status, 404);
    assert_eq!(app.count("webauthn_ceremonies").await, 0);

    // A wrong current password keeps the passkey and counts toward the lockout.
    let uid = castellan::domain::UserId::from_stored(user_id(&app, email).await);
    let id = app.store.passkeys_of(&uid).await.expect("passkeys")[0]
        .id
        .clone();
    let body = page(&client, &app, "/account/passkeys").await;
    let remove = passkey_form(&body, &format!("/account/passkeys/{id}/remove"))
        .on_page(&abs(&app, "/account/passkeys"));
    let res = remove
        .submit_with(
            &client,
            &app,
            &[("current_password", "not the password")],
            None,
        )
        .await;
    assert_eq!(res.status().as_u16(), 400);
    let text = res.text().await.unwrap_or_default();
    assert!(text.contains("current password is not right"), "{text}");
    assert_eq!(
        app.count(&format!("passkeys WHERE user_id = '{}'", uid.as_str()))
            .await,
        1
    );
    assert_eq!(
        app.count(&format!(
            "users WHERE id = '{}' AND failed_logins = 1",
            uid.as_str()
        ))
        .await,
        1
    );
}
