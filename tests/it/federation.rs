//! Sign-in through an upstream provider (issue 18), with a second Castellan as the upstream:
//! real discovery, real keys and signatures, its own login and consent pages. Accounts made
//! just in time, reused, linked silently only when all three say the email is verified, linked
//! by proving the local password (and second factor), linked and unlinked from the account
//! page; and the attacks: an upstream error, a wrong issuer (discovery and RFC 9207 `iss`), a
//! wrong nonce, a replayed or foreign `state`, a bad signature.

use openidconnect::TokenResponse;

use crate::harness::forms::{Form, path_of, query_param};
use crate::harness::jwt::claims;
use crate::harness::rp::{
    PASSWORD, REDIRECT_URI, browse, code_of, confidential_rp, create_user, expect_page,
    expect_redirect,
};
use crate::harness::upstream::{callback_of, federated, federated_with, register, register_at};
use crate::harness::{browser, spawn_app};
use crate::mfa::{code_now, enrolled};

const START: &str = "/login/upstream/corp";

async fn audits(app: &crate::harness::TestApp, kind: &str) -> i64 {
    app.count(&format!("audit_events WHERE kind = '{kind}'"))
        .await
}

/// The failure page's reason (`data-upstream-failure`), asserting its status.
async fn failure(res: reqwest::Response, status: u16) -> String {
    let got = res.status().as_u16();
    let body = res.text().await.unwrap_or_default();
    assert_eq!(got, status, "{body}");
    assert!(
        body.contains("href=\"/login"),
        "the failure page offers the other ways to sign in:\n{body}"
    );
    let at = body
        .find("data-upstream-failure=\"")
        .unwrap_or_else(|| panic!("not the failure page:\n{body}"));
    let rest = &body[at + 23..];
    rest[..rest.find('"').expect("quote")].to_owned()
}

/// The proof page at `prove` (its inputs `email` and `password`, CONTRACT.md), filled and
/// posted.
async fn prove_with(
    app: &crate::harness::TestApp,
    prove: &str,
    email: &str,
    password: &str,
) -> reqwest::Response {
    let page = expect_page(browse(app, prove).await, "the proof page").await;
    let form = Form::with_input(&page, "password").on_page(prove);
    assert!(form.has("email"), "inputs email and password (CONTRACT.md)");
    form.submit(app, &[("email", email), ("password", password)], None)
        .await
}

#[tokio::test]
async fn a_first_upstream_login_makes_an_account_the_next_one_reuses_it_and_an_app_gets_fed_tokens()
{
    let f = federated(&[]).await;
    create_user(&f.idp, "ada@example.com", PASSWORD);
    // An app at the server under test: its login page offers the provider.
    let rp = confidential_rp(&f.app, &["--skip-consent"]).await;
    let (url, _state, nonce, verifier) = rp.authorize_url(&["openid", "email", "profile"], true);
    let login = expect_redirect(&f.app, browse(&f.app, &url).await, "authorize").await;
    let page = expect_page(browse(&f.app, &login).await, "login").await;
    let href_at = page
        .find("href=\"/login/upstream/corp")
        .expect("a button for the provider");
    let href = &page[href_at + 6..];
    let href = crate::harness::forms::unescape(&href[..href.find('"').expect("quote")]);
    assert!(
        href.contains("return_to="),
        "the button carries where the login was going: {href}"
    );

    let register = expect_page(browse(&f.app, "/register").await, "register").await;
    assert!(
        register.contains("href=\"/login/upstream/corp"),
        "the registration page offers the provider too"
    );

    let back = f.signs_in(&href, "ada@example.com").await;
    assert_eq!(
        path_of(&back),
        "/oauth2/authorize",
        "the authorization request resumes: {back}"
    );
    let done = expect_redirect(&f.app, browse(&f.app, &back).await, "authorize again").await;
    assert!(done.starts_with(REDIRECT_URI), "{done}");
    let tokens = rp.exchange_code(&code_of(&done), verifier).await;
    let id = rp.verify_id_token(&tokens, &nonce);
    let raw = claims(&tokens.id_token().expect("id token").to_string());
    assert_eq!(
        raw["amr"],
        serde_json::json!(["fed"]),
        "no pwd for an upstream sign-in"
    );
    assert_eq!(raw["acr"], "urn:castellan:acr:1fa");
    assert_eq!(id.email().map(|e| e.as_str()), Some("ada@example.com"));
    // The account: made just in time, no password, the email verified (the upstream said so).
    assert_eq!(f.app.count("users").await, 1);
    assert_eq!(
        f.app
            .count("users WHERE email = 'ada@example.com' AND email_verified = true AND password_hash IS NULL")
            .await,
        1
    );
    assert_eq!(
        f.app
            .count("upstream_identities WHERE upstream_id = 'corp'")
            .await,
        1
    );
    assert_eq!(f.app.count("sessions WHERE upstream = 'corp'").await, 1);
    assert_eq!(audits(&f.app, "registered").await, 1);
    assert_eq!(audits(&f.app, "upstream_linked").await, 1);
    assert_eq!(
        f.app
            .count("audit_events WHERE kind = 'login_succeeded' AND detail LIKE '%upstream=corp'")
            .await,
        1
    );
    // The provider's tokens are not kept anywhere.
    assert_eq!(
        f.app.count("upstream_flows").await,
        0,
        "the flow is used up"
    );

    // Signed out of the app (the upstream is not needed for that), signed in again: the same
    // account, no second one.
    let mut fresh = f;
    fresh.app.client = browser();
    let back = fresh.signs_in(START, "ada@example.com").await;
    assert_eq!(path_of(&back), "/", "{back}");
    assert_eq!(fresh.app.count("users").await, 1, "the account is reused");
    assert_eq!(fresh.app.count("upstream_identities").await, 1);
    assert_eq!(
        fresh
            .app
            .count("upstream_identities WHERE last_used_at IS NOT NULL")
            .await,
        1
    );
    // Deleting the provider unlinks its identities (the account stays, and can set a
    // password by email); its button is gone from the login page.
    let out = fresh.app.castellan(&["upstream", "delete", "corp"]);
    assert!(out.status.success());
    assert_eq!(fresh.app.count("upstream_identities").await, 0);
    assert_eq!(fresh.app.count("users").await, 1);
    let login = expect_page(browse(&fresh.app, "/login").await, "login").await;
    assert!(!login.contains("/login/upstream/corp"), "{login}");
    let res = fresh
        .app
        .client
        .get(fresh.app.url(START))
        .send()
        .await
        .expect("start");
    assert_eq!(failure(res, 404).await, "unknown_provider");
}

#[tokio::test]
async fn a_trusted_provider_links_a_verified_email_silently_an_untrusted_one_asks_for_the_password()
{
    // Trusted for email: the existing, verified account signs in; nothing new is made.
    let f = federated(&["--trust-email"]).await;
    create_user(&f.idp, "grace@example.com", PASSWORD);
    let local = create_user(&f.app, "grace@example.com", "a different local password");
    let back = f.signs_in(START, "grace@example.com").await;
    assert_eq!(path_of(&back), "/");
    assert_eq!(f.app.count("users").await, 1);
    assert_eq!(
        f.app
            .count(&format!("upstream_identities WHERE user_id = '{local}'"))
            .await,
        1
    );

    // Not trusted: the page asks for the local account's password first.
    let f = federated(&[]).await;
    create_user(&f.idp, "grace@example.com", PASSWORD);
    let local_password = "the local account's own password";
    let local = create_user(&f.app, "grace@example.com", local_password);
    let res = f.round(START, "grace@example.com").await;
    let prove = expect_redirect(&f.app, res, "the callback").await;
    assert_eq!(path_of(&prove), "/login/link-account");
    assert_eq!(
        f.app.count("upstream_identities").await,
        0,
        "nothing linked yet"
    );
    // The upstream's password is not the local one.
    let res = prove_with(&f.app, &prove, "grace@example.com", PASSWORD).await;
    let again = expect_page(res, "a wrong password").await;
    assert!(again.contains("Invalid email or password."), "{again}");
    assert_eq!(f.app.count("upstream_identities").await, 0);
    // Another account's right password does not link this one.
    create_user(&f.app, "mallory@example.com", "mallory's own password");
    assert!(
        again.contains("name=\"email\""),
        "the proof page again: {again}"
    );
    let res = prove_with(
        &f.app,
        &prove,
        "mallory@example.com",
        "mallory's own password",
    )
    .await;
    expect_page(res, "another account's password").await;
    assert_eq!(f.app.count("upstream_identities").await, 0);
    let res = prove_with(&f.app, &prove, "grace@example.com", local_password).await;
    let back = expect_redirect(&f.app, res, "the right password").await;
    assert_eq!(path_of(&back), "/");
    assert_eq!(
        f.app
            .count(&format!("upstream_identities WHERE user_id = '{local}'"))
            .await,
        1
    );
    assert_eq!(audits(&f.app, "upstream_linked").await, 1);
    // The link request is used up.
    assert_eq!(f.app.count("upstream_link_requests").await, 0);
    let res = browse(&f.app, &prove).await;
    assert_eq!(failure(res, 400).await, "state");
    // From now on the upstream signs in at once.
    let mut f = f;
    f.app.client = browser();
    let back = f.signs_in(START, "grace@example.com").await;
    assert_eq!(path_of(&back), "/");
}

#[tokio::test]
async fn proving_an_account_with_a_second_factor_links_only_after_the_second_step() {
    let f = federated(&[]).await;
    create_user(&f.idp, "hopper@example.com", PASSWORD);
    let enrol_browser = browser();
    let (seed, _) = enrolled(&enrol_browser, &f.app, "hopper@example.com").await;
    let res = f.round(START, "hopper@example.com").await;
    let prove = expect_redirect(&f.app, res, "the callback").await;
    let res = prove_with(&f.app, &prove, "hopper@example.com", PASSWORD).await;
    let step = expect_redirect(&f.app, res, "the password").await;
    assert_eq!(path_of(&step), "/login/second-factor");
    assert_eq!(
        f.app.count("upstream_identities").await,
        0,
        "not before the second factor"
    );
    let res = crate::mfa::second_step(&f.app.client, &f.app, &step, &code_now(&f.app, &seed)).await;
    expect_redirect(&f.app, res, "the second step").await;
    assert_eq!(f.app.count("upstream_identities").await, 1);
    // Next time through the upstream, the account's second factor is still asked for, and the
    // session's methods say both.
    let mut f = f;
    f.app.client = browser();
    f.app.clock.advance_secs(30);
    let res = f.round(START, "hopper@example.com").await;
    let step = expect_redirect(&f.app, res, "callback").await;
    assert_eq!(
        path_of(&step),
        "/login/second-factor",
        "a provider is not trusted for the second factor"
    );
    let res = crate::mfa::second_step(&f.app.client, &f.app, &step, &code_now(&f.app, &seed)).await;
    expect_redirect(&f.app, res, "the second step").await;
    assert_eq!(
        f.app
            .count("sessions WHERE upstream = 'corp' AND amr = 'fed otp mfa'")
            .await,
        1
    );
}

#[tokio::test]
async fn no_account_is_made_when_the_provider_does_not_make_accounts() {
    let f = federated(&["--no-jit"]).await;
    create_user(&f.idp, "nobody@example.com", PASSWORD);
    let res = f.round(START, "nobody@example.com").await;
    assert_eq!(failure(res, 403).await, "no_account");
    assert_eq!(f.app.count("users").await, 0);
    assert_eq!(audits(&f.app, "upstream_login_failed").await, 1);
}

#[tokio::test]
async fn the_account_page_links_and_unlinks_and_keeps_the_last_way_in() {
    let f = federated(&[]).await;
    create_user(&f.idp, "lin@example.com", PASSWORD);
    create_user(&f.app, "local@example.com", PASSWORD);
    // Signed in with the local password; link the provider from the account page.
    let res = crate::mfa::login(
        &f.app.client,
        &f.app,
        "/login",
        "local@example.com",
        PASSWORD,
    )
    .await;
    assert_eq!(res.status().as_u16(), 303);
    let account = expect_page(browse(&f.app, "/account").await, "account").await;
    let res = Form::find(&account, |fm| fm.has_button("upstream", "corp"))
        .expect("a link button")
        .on_page(&f.app.url("/account"))
        .submit(&f.app, &[], Some(("upstream", "corp")))
        .await;
    let authorize = expect_redirect(&f.app, res, "link").await;
    let back = f.at_idp(&authorize, "lin@example.com").await;
    let res = f.callback(&back).await;
    let to = expect_redirect(&f.app, res, "the link's callback").await;
    assert_eq!(path_of(&to), "/account");
    let account = expect_page(browse(&f.app, "/account").await, "account").await;
    assert!(
        account.contains("lin@example.com"),
        "the identity is listed:\n{account}"
    );
    let unlink = Form::find(&account, |fm| fm.has_button("unlink", "corp"))
        .expect("each identity has a submit named unlink (CONTRACT.md)");
    assert_eq!(audits(&f.app, "upstream_linked").await, 1);
    // The account has a password: unlinking is fine.
    let res = unlink
        .on_page(&f.app.url("/account"))
        .submit(&f.app, &[], Some(("unlink", "corp")))
        .await;
    assert_eq!(res.status().as_u16(), 303);
    assert_eq!(f.app.count("upstream_identities").await, 0);
    assert_eq!(audits(&f.app, "upstream_unlinked").await, 1);

    // An account made by the upstream has no password: its only identity stays.
    let mut f = f;
    f.app.client = browser();
    f.idp_browser = browser();
    create_user(&f.idp, "only@example.com", PASSWORD);
    f.signs_in(START, "only@example.com").await;
    let account = expect_page(browse(&f.app, "/account").await, "account").await;
    let res = Form::find(&account, |fm| fm.has_button("unlink", "corp"))
        .expect("unlink")
        .on_page(&f.app.url("/account"))
        .submit(&f.app, &[], Some(("unlink", "corp")))
        .await;
    assert_eq!(res.status().as_u16(), 409);
    let body = res.text().await.unwrap_or_default();
    assert!(body.contains("last way to sign in"), "{body}");
    assert_eq!(f.app.count("upstream_identities").await, 1);
}

#[tokio::test]
async fn a_denied_consent_at_the_provider_ends_on_a_clear_page() {
    let f = federated_with(&[], true).await;
    create_user(&f.idp, "deny@example.com", PASSWORD);
    let authorize = f.begin(START).await;
    // At the idp: log in, then deny.
    let c = &f.idp_browser;
    let res = c.get(&authorize).send().await.expect("authorize");
    let login = expect_redirect(&f.idp, res, "idp").await;
    let page = expect_page(c.get(&login).send().await.expect("login"), "login").await;
    let res = Form::with_input(&page, "password")
        .on_page(&login)
        .submit_with(
            c,
            &f.idp,
            &[("email", "deny@example.com"), ("password", PASSWORD)],
            None,
        )
        .await;
    let back = expect_redirect(&f.idp, res, "login").await;
    let consent = expect_redirect(&f.idp, c.get(&back).send().await.expect("a"), "consent").await;
    let page = expect_page(c.get(&consent).send().await.expect("c"), "consent").await;
    let res = Form::find(&page, |fm| fm.has_button("decision", "deny"))
        .expect("deny")
        .on_page(&consent)
        .submit_with(c, &f.idp, &[], Some(("decision", "deny")))
        .await;
    let cb = expect_redirect(&f.idp, res, "deny").await;
    assert_eq!(query_param(&cb, "error").as_deref(), Some("access_denied"));
    assert_eq!(failure(f.callback(&cb).await, 403).await, "denied");
    assert_eq!(f.app.count("users").await, 0);
}

#[tokio::test]
async fn a_wrong_issuer_is_refused_at_discovery_and_in_the_answer() {
    let f = federated(&[]).await;
    create_user(&f.idp, "iss@example.com", PASSWORD);
    // RFC 9207: the idp sends iss; another value is a mix-up.
    let authorize = f.begin(START).await;
    let back = f.at_idp(&authorize, "iss@example.com").await;
    let iss = query_param(&back, "iss").expect("the upstream sends iss (RFC 9207)");
    let forged = back.replace(
        &format!(
            "iss={}",
            url::form_urlencoded::byte_serialize(iss.as_bytes()).collect::<String>()
        ),
        "iss=https%3A%2F%2Fevil.example",
    );
    assert_ne!(forged, back);
    assert_eq!(failure(f.callback(&forged).await, 502).await, "issuer");
    // Missing from a provider that says it always sends it: refused too.
    let authorize = f.begin(START).await;
    let back = f.at_idp(&authorize, "iss@example.com").await;
    let stripped: String = {
        let mut u = url::Url::parse(&back).expect("url");
        let kept: Vec<(String, String)> = u
            .query_pairs()
            .filter(|(k, _)| k != "iss")
            .map(|(k, v)| (k.into_owned(), v.into_owned()))
            .collect();
        u.query_pairs_mut().clear().extend_pairs(kept);
        u.to_string()
    };
    assert_eq!(failure(f.callback(&stripped).await, 502).await, "issuer");
    assert_eq!(f.app.count("users").await, 0);

    // A provider configured under another issuer than its discovery document names
    // (Discovery §4.3): refused before the browser is sent anywhere.
    let app = spawn_app().await;
    let idp = spawn_app().await;
    let other = idp.address.replace("127.0.0.1", "localhost");
    register_at(&app, &idp, &other, "corp", &[], true);
    let res = app.client.get(app.url(START)).send().await.expect("start");
    assert_eq!(failure(res, 502).await, "issuer");
}

#[tokio::test]
async fn a_wrong_nonce_a_replayed_state_and_another_browsers_callback_are_refused() {
    let f = federated(&[]).await;
    create_user(&f.idp, "nonce@example.com", PASSWORD);
    // The browser changes the nonce on its way to the idp: the ID token carries that one.
    let authorize = f.begin(START).await;
    let nonce = query_param(&authorize, "nonce").expect("a nonce");
    let tampered = authorize.replace(&format!("nonce={nonce}"), "nonce=chosen-by-the-attacker");
    assert_ne!(tampered, authorize);
    let back = f.at_idp(&tampered, "nonce@example.com").await;
    assert_eq!(failure(f.callback(&back).await, 502).await, "bad_answer");

    // A good answer serves once.
    let authorize = f.begin(START).await;
    let back = f.at_idp(&authorize, "nonce@example.com").await;
    // Another browser (no binding cookie) presenting it: refused, and it is used up.
    let other = browser();
    let res = other.get(&back).send().await.expect("other browser");
    assert_eq!(failure(res, 400).await, "state");
    assert_eq!(failure(f.callback(&back).await, 400).await, "state");

    let authorize = f.begin(START).await;
    let back = f.at_idp(&authorize, "nonce@example.com").await;
    let res = f.callback(&back).await;
    assert_eq!(res.status().as_u16(), 303, "the first use signs in");
    assert_eq!(
        failure(f.callback(&back).await, 400).await,
        "state",
        "a replay"
    );
    assert_eq!(f.app.count("users").await, 1);
    assert!(audits(&f.app, "upstream_login_failed").await >= 3);
}

#[tokio::test]
async fn concurrent_callbacks_with_one_state_sign_in_once() {
    let f = federated(&[]).await;
    create_user(&f.idp, "race@example.com", PASSWORD);
    let authorize = f.begin(START).await;
    let back = f.at_idp(&authorize, "race@example.com").await;
    let calls = (0..6).map(|_| f.callback(&back));
    let statuses: Vec<u16> = futures_util::future::join_all(calls)
        .await
        .into_iter()
        .map(|r| r.status().as_u16())
        .collect();
    assert_eq!(
        statuses.iter().filter(|s| **s == 303).count(),
        1,
        "{statuses:?}"
    );
    assert_eq!(f.app.count("users").await, 1);
}

#[tokio::test]
async fn an_unknown_provider_and_an_unreachable_one_end_on_a_page() {
    let app = spawn_app().await;
    let res = app
        .client
        .get(app.url("/login/upstream/nope"))
        .send()
        .await
        .expect("start");
    assert_eq!(failure(res, 404).await, "unknown_provider");
    // A provider whose issuer nobody answers at.
    let idp = spawn_app().await;
    register(&app, &idp, "gone", &[], false);
    drop(idp);
    tokio::time::sleep(std::time::Duration::from_millis(200)).await;
    let res = app
        .client
        .get(app.url("/login/upstream/gone"))
        .send()
        .await
        .expect("start");
    assert!(
        matches!(failure(res, 504).await.as_str(), "unreachable"),
        "an unreachable provider"
    );
}

// --- GitHub, against a stand-in that answers as GitHub documents ---------------------------

use crate::harness::github::{CLIENT_ID, CLIENT_SECRET, Github, GithubUser};

async fn with_github(secret: &str) -> (crate::harness::TestApp, Github) {
    let gh = Github::start().await;
    let (web_url, api_url) = (gh.address.clone(), gh.address.clone());
    let app = crate::harness::spawn_app_with(move |s| {
        s.upstream.github_url = web_url;
        s.upstream.github_api_url = api_url;
    })
    .await;
    let out = app.castellan_stdin(
        &[
            "upstream",
            "create",
            "--id",
            "github",
            "--kind",
            "github",
            "--name",
            "GitHub",
            "--client-id",
            CLIENT_ID,
            "--client-secret-stdin",
        ],
        &format!("{secret}\n"),
    );
    assert!(
        out.status.success(),
        "{}",
        String::from_utf8_lossy(&out.stderr)
    );
    (app, gh)
}

/// Start at the app, through the stand-in (which answers at once), back at the callback.
async fn github_round(app: &crate::harness::TestApp) -> reqwest::Response {
    let res = app
        .client
        .get(app.url("/login/upstream/github"))
        .send()
        .await
        .expect("start");
    let to_github = expect_redirect(app, res, "start").await;
    assert!(to_github.contains("/login/oauth/authorize?"), "{to_github}");
    assert_eq!(
        query_param(&to_github, "code_challenge_method").as_deref(),
        Some("S256")
    );
    assert_eq!(
        query_param(&to_github, "scope").as_deref(),
        Some("read:user user:email")
    );
    let res = browser().get(&to_github).send().await.expect("github");
    let back = crate::harness::forms::location(&res);
    app.client.get(&back).send().await.expect("callback")
}

fn octocat(emails: Vec<(String, bool, bool)>) -> GithubUser {
    GithubUser {
        id: 583231,
        login: "octocat".into(),
        name: Some("The Octocat".into()),
        emails,
    }
}

#[tokio::test]
async fn github_signs_in_with_the_verified_primary_email_and_the_numeric_id() {
    let (app, gh) = with_github(CLIENT_SECRET).await;
    gh.sign_in_as(octocat(vec![
        ("old@example.com".into(), false, true),
        ("octo@example.com".into(), true, true),
    ]));
    let res = github_round(&app).await;
    let to = expect_redirect(&app, res, "callback").await;
    assert_eq!(path_of(&to), "/");
    assert_eq!(
        app.count("users WHERE email = 'octo@example.com' AND email_verified = true AND name = 'The Octocat'")
            .await,
        1
    );
    assert_eq!(
        app.count("upstream_identities WHERE upstream_id = 'github' AND subject = '583231'")
            .await,
        1
    );
    // The login can change at GitHub; the id cannot: the same account signs in.
    let mut renamed = octocat(vec![("octo@example.com".into(), true, true)]);
    renamed.login = "octo-renamed".into();
    gh.sign_in_as(renamed);
    let mut app = app;
    app.client = browser();
    let res = github_round(&app).await;
    expect_redirect(&app, res, "callback").await;
    assert_eq!(app.count("users").await, 1);
    // Castellan called the token endpoint and both API paths.
    let seen = gh.seen();
    assert!(seen.iter().any(|p| p == "/user/emails"), "{seen:?}");
}

#[tokio::test]
async fn a_github_account_whose_only_email_is_unverified_makes_no_account_and_links_nothing() {
    let (app, gh) = with_github(CLIENT_SECRET).await;
    // Someone claims another person's address at GitHub without verifying it.
    create_user(&app, "victim@example.com", PASSWORD);
    gh.sign_in_as(octocat(vec![("victim@example.com".into(), true, false)]));
    let res = github_round(&app).await;
    assert_eq!(failure(res, 403).await, "no_email");
    assert_eq!(app.count("users").await, 1, "no account made");
    assert_eq!(
        app.count("upstream_identities").await,
        0,
        "nothing linked to the victim"
    );
    assert_eq!(
        app.count("upstream_link_requests").await,
        0,
        "not even a proof page"
    );
}

#[tokio::test]
async fn a_redirect_from_the_provider_s_api_is_not_followed() {
    let (app, gh) = with_github(CLIENT_SECRET).await;
    gh.sign_in_as(octocat(vec![("octo@example.com".into(), true, true)]));
    gh.redirect_user();
    let res = github_round(&app).await;
    // Followed, it would have met a closed port (unreachable); it is an answer like any other.
    assert_eq!(failure(res, 502).await, "provider_error");
    assert_eq!(app.count("users").await, 0);
}

#[tokio::test]
async fn github_refusing_the_code_ends_on_a_clear_page() {
    let (app, gh) = with_github("not-the-secret-github-knows").await;
    gh.sign_in_as(octocat(vec![("octo@example.com".into(), true, true)]));
    let res = github_round(&app).await;
    assert_eq!(failure(res, 502).await, "provider_error");
    assert_eq!(app.count("users").await, 0);
}

#[tokio::test]
async fn an_id_token_with_a_bad_signature_is_refused() {
    use crate::harness::tamper::{Tamper, bind};
    let app = spawn_app().await;
    let (listener, proxy_address) = bind();
    let issuer = proxy_address.clone();
    let idp = crate::harness::spawn_app_with(move |s| s.server.issuer = issuer).await;
    let proxy = Tamper::start(listener, proxy_address.clone(), &idp.address);
    create_user(&idp, "sig@example.com", PASSWORD);
    register_at(&app, &idp, &proxy_address, "corp", &[], false);

    // Unspoiled, through the proxy: signed in (the proxy itself changes nothing).
    let res = proxied_round(&app, &proxy, false).await;
    assert_eq!(res.status().as_u16(), 303, "{:?}", res.text().await);
    let mut app = app;
    app.client = browser();
    let res = proxied_round(&app, &proxy, true).await;
    assert_eq!(failure(res, 502).await, "bad_answer");
    assert_eq!(
        app.count(
            "audit_events WHERE kind = 'upstream_login_failed' AND detail LIKE '%reason=bad_answer'"
        )
        .await,
        1
    );
}

/// Start at the app; through the proxy with a browser of its own (the idp's login); then the
/// app's callback, with the proxy spoiling ID tokens from then on when `spoil`.
async fn proxied_round(
    app: &crate::harness::TestApp,
    proxy: &crate::harness::tamper::Tamper,
    spoil: bool,
) -> reqwest::Response {
    use crate::harness::forms::{location, resolve_against};
    let ua = browser();
    let res = app.client.get(app.url(START)).send().await.expect("start");
    let mut loc = expect_redirect(app, res, "start").await;
    for _ in 0..6 {
        if loc.starts_with(&format!("{}/", app.address)) {
            break;
        }
        let url = resolve_against(&proxy.address, &loc);
        let res = if path_of(&url) == "/login" {
            let page = expect_page(ua.get(&url).send().await.expect("login"), "login").await;
            let form = Form::with_input(&page, "password").on_page(&url);
            let body = form.body(
                &[("email", "sig@example.com"), ("password", PASSWORD)],
                None,
            );
            ua.post(resolve_against(&url, &form.action))
                .form(&body)
                .send()
                .await
                .expect("login POST")
        } else {
            ua.get(&url).send().await.expect("idp")
        };
        loc = location(&res);
    }
    if spoil {
        proxy.spoil_id_tokens();
    }
    app.client.get(&loc).send().await.expect("callback")
}

#[tokio::test]
async fn a_provider_that_accepts_but_never_answers_times_out_on_a_clear_page() {
    use crate::harness::proxy::{Mode, Proxy};
    let app = crate::harness::spawn_app_with(|s| s.upstream.timeout_secs = 1).await;
    let idp = spawn_app().await;
    let proxy = Proxy::start(format!("127.0.0.1:{}", idp.port).parse().expect("addr")).await;
    proxy.set(Mode::Blackhole);
    let issuer = format!("http://127.0.0.1:{}", proxy.port());
    register_at(&app, &idp, &issuer, "corp", &[], true);
    let t0 = std::time::Instant::now();
    let res = app.client.get(app.url(START)).send().await.expect("start");
    assert_eq!(failure(res, 504).await, "unreachable");
    assert!(
        t0.elapsed() < std::time::Duration::from_secs(5),
        "bounded by upstream.timeout_secs"
    );
}

#[tokio::test]
async fn a_client_that_requires_a_second_factor_still_gets_one_after_the_provider() {
    let f = federated(&[]).await;
    create_user(&f.idp, "strict@example.com", PASSWORD);
    let rp = confidential_rp(&f.app, &["--skip-consent", "--require-mfa"]).await;
    let (url, _state, _nonce, _verifier) = rp.authorize_url(&["openid"], true);
    let login = expect_redirect(&f.app, browse(&f.app, &url).await, "authorize").await;
    let return_to = query_param(&login, "return_to").expect("return_to");
    let start = format!(
        "{START}?return_to={}",
        url::form_urlencoded::byte_serialize(return_to.as_bytes()).collect::<String>()
    );
    let back = f.signs_in(&start, "strict@example.com").await;
    // Signed in through the provider with one factor; the app needs two: enrolment next.
    let next = expect_redirect(&f.app, browse(&f.app, &back).await, "authorize again").await;
    assert!(
        !next.starts_with(REDIRECT_URI),
        "no code for a one-factor session: {next}"
    );
    assert!(
        matches!(
            path_of(&next).as_str(),
            "/account/mfa/totp" | "/login/second-factor"
        ),
        "{next}"
    );
}

#[tokio::test]
async fn beginning_is_limited_per_address_and_linking_needs_a_recent_sign_in() {
    let app = crate::harness::spawn_app_with(|s| s.rate_limit.login_per_minute = 3).await;
    let idp = spawn_app().await;
    register(&app, &idp, "corp", &[], false);
    for _ in 0..3 {
        let res = app.client.get(app.url(START)).send().await.expect("start");
        assert_eq!(res.status().as_u16(), 303);
    }
    let res = app.client.get(app.url(START)).send().await.expect("start");
    assert!(res.headers().get("retry-after").is_some(), "Retry-After");
    assert_eq!(failure(res, 429).await, "rate_limited");
    assert_eq!(
        app.count("upstream_flows").await,
        3,
        "no flow stored past the limit"
    );

    // A session older than ten minutes cannot link a provider (a stolen session must not add
    // a way in); a fresh sign-in can.
    let f = federated(&[]).await;
    create_user(&f.app, "old@example.com", PASSWORD);
    let res = crate::mfa::login(&f.app.client, &f.app, "/login", "old@example.com", PASSWORD).await;
    assert_eq!(res.status().as_u16(), 303);
    f.app.clock.advance_secs(11 * 60);
    let account = expect_page(browse(&f.app, "/account").await, "account").await;
    let res = Form::find(&account, |fm| fm.has_button("upstream", "corp"))
        .expect("a link button")
        .on_page(&f.app.url("/account"))
        .submit(&f.app, &[], Some(("upstream", "corp")))
        .await;
    assert_eq!(failure(res, 403).await, "stale_session");
    assert_eq!(f.app.count("upstream_flows").await, 0);
}

#[tokio::test]
async fn two_first_sign_ins_of_one_identity_in_parallel_make_one_account_and_both_sign_in() {
    let f = federated(&[]).await;
    create_user(&f.idp, "twice@example.com", PASSWORD);
    // Two browsers at the app, one session at the idp: two flows, each with its own code.
    let first = f.begin(START).await;
    let back1 = f.at_idp(&first, "twice@example.com").await;
    let other = browser();
    let res = other.get(f.app.url(START)).send().await.expect("start");
    let second = crate::harness::forms::location(&res);
    let back2 = f.at_idp(&second, "twice@example.com").await;
    let (r1, r2) = tokio::join!(f.callback(&back1), other.get(&back2).send());
    let r2 = r2.expect("second callback");
    assert_eq!(r1.status().as_u16(), 303, "{:?}", r1.text().await);
    assert_eq!(r2.status().as_u16(), 303, "{:?}", r2.text().await);
    assert_eq!(f.app.count("users").await, 1);
    assert_eq!(f.app.count("upstream_identities").await, 1);
    assert_eq!(f.app.count("sessions WHERE upstream = 'corp'").await, 2);
}

#[tokio::test]
async fn bad_input_at_every_upstream_path_ends_on_a_page_and_changes_nothing() {
    let f = federated(&[]).await;
    create_user(&f.idp, "bad@example.com", PASSWORD);
    let app = &f.app;
    // The callback without a state, with an oversized one, with one nobody made.
    let cb = callback_of(app, "corp");
    for q in [
        "?code=x".to_owned(),
        format!("?code=x&state={}", "s".repeat(129)),
        "?code=x&state=made-up".to_owned(),
        "?error=access_denied".to_owned(),
    ] {
        let res = app.client.get(format!("{cb}{q}")).send().await.expect("cb");
        assert_eq!(failure(res, 400).await, "state", "{q}");
    }
    // A provider id nobody registered, odd ones included.
    for id in ["nope", "..", &"a".repeat(300), "corp%00"] {
        let res = app
            .client
            .get(app.url(&format!("/login/upstream/{id}")))
            .send()
            .await
            .expect("start");
        assert_eq!(res.status().as_u16(), 404, "{id}");
    }
    // The provider's own error other than a denial, on a real flow: a provider error.
    let authorize = f.begin(START).await;
    let state = query_param(&authorize, "state").expect("state");
    let iss = url::form_urlencoded::byte_serialize(f.idp.address.as_bytes()).collect::<String>();
    let res = f
        .callback(&format!("{cb}?error=server_error&state={state}&iss={iss}"))
        .await;
    assert_eq!(failure(res, 502).await, "provider_error");
    // A code of more than 2 KiB on a real flow: refused before any call to the provider.
    let authorize = f.begin(START).await;
    let state = query_param(&authorize, "state").expect("state");
    let res = f
        .callback(&format!(
            "{cb}?code={}&state={state}&iss={iss}",
            "c".repeat(2049)
        ))
        .await;
    assert_eq!(failure(res, 502).await, "bad_answer");

    // The proof page without a waiting identity, shown or posted.
    let res = app
        .client
        .get(app.url("/login/link-account"))
        .send()
        .await
        .expect("get");
    assert_eq!(failure(res, 400).await, "state");
    let login = expect_page(browse(app, "/login").await, "login").await;
    let csrf = Form::with_input(&login, "password")
        .input("csrf_token")
        .expect("csrf")
        .value
        .clone();
    let res = app
        .client
        .post(app.url("/login/link-account"))
        .form(&[
            ("csrf_token", csrf.as_str()),
            ("email", "bad@example.com"),
            ("password", PASSWORD),
        ])
        .send()
        .await
        .expect("post");
    assert_eq!(failure(res, 400).await, "state");

    // Signed in: linking an unknown provider, unlinking one that is not linked.
    create_user(app, "local@example.com", PASSWORD);
    let res = crate::mfa::login(&app.client, app, "/login", "local@example.com", PASSWORD).await;
    assert_eq!(res.status().as_u16(), 303);
    let account = expect_page(browse(app, "/account").await, "account").await;
    let link = Form::find(&account, |fm| fm.has_button("upstream", "corp")).expect("link form");
    let res = link
        .on_page(&app.url("/account"))
        .submit(app, &[("upstream", "nope")], None)
        .await;
    assert_eq!(failure(res, 404).await, "unknown_provider");
    let res = app
        .client
        .post(app.url("/account/identities/unlink"))
        .form(&[("csrf_token", csrf.as_str()), ("unlink", "corp")])
        .send()
        .await
        .expect("unlink");
    assert_eq!(res.status().as_u16(), 404);
    // An id with a NUL byte names no provider (PostgreSQL would refuse it as text).
    let res = app
        .client
        .post(app.url("/account/identities/unlink"))
        .form(&[("csrf_token", csrf.as_str()), ("unlink", "corp\0")])
        .send()
        .await
        .expect("unlink");
    assert_eq!(res.status().as_u16(), 404);
    // Without the CSRF field: refused, nothing begun.
    let res = app
        .client
        .post(app.url("/account/identities/link"))
        .form(&[("upstream", "corp")])
        .send()
        .await
        .expect("link");
    assert_eq!(res.status().as_u16(), 403);
    assert_eq!(app.count("users").await, 1);
    assert_eq!(app.count("upstream_identities").await, 0);
    assert_eq!(
        app.count("upstream_flows").await,
        0,
        "every flow begun here was used up"
    );
}
