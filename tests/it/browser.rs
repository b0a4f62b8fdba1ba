//! End to end in a real browser (headless Chromium over WebDriver): an app's authorization
//! request, self-registration through the hosted pages, the verification mail read from a real
//! SMTP listener, login, consent, and the code exchanged for an ID token. Screenshots of the
//! pages land in `target/screenshots/`. Skips (passes) when Chromium is not installed, except
//! under `CI=true`, where it fails (see `harness::browser`).

use std::time::{Duration, Instant};

use sha2::{Digest, Sha256};

use crate::harness::browser::Browser;
use crate::harness::forms::{path_of, query_param};
use crate::harness::jwt;
use crate::harness::rp::{basic_auth, create_client, rp_http};
use crate::harness::smtp::SmtpSink;
use crate::harness::spawn_app_with;

/// The longest any one page may take to show up.
const STEP: Duration = Duration::from_secs(15);

const LOGIN_FORM: &str = r#"form:has(input[name="password"]):not(:has(input[name="name"]))"#;
const REGISTER_FORM: &str = r#"form:has(input[name="name"])"#;

fn screenshots() -> std::path::PathBuf {
    let dir = std::path::Path::new(env!("CARGO_MANIFEST_DIR")).join("target/screenshots");
    std::fs::create_dir_all(&dir).expect("create target/screenshots");
    dir
}

fn random_token(len: usize) -> String {
    use rand::Rng;
    rand::thread_rng()
        .sample_iter(&rand::distributions::Alphanumeric)
        .take(len)
        .map(char::from)
        .collect()
}

/// An app's authorization request with PKCE S256 (state `s1`, nonce `n1`), and its verifier.
fn pkce_request(
    app: &crate::harness::TestApp,
    (client_id, redirect_uri): (&str, &str),
    scope: &str,
    extra: &[(&str, &str)],
) -> (String, String) {
    let verifier = random_token(64);
    let challenge = jwt::b64(&Sha256::digest(verifier.as_bytes()));
    let mut q = url::form_urlencoded::Serializer::new(String::new());
    q.append_pair("response_type", "code")
        .append_pair("client_id", client_id)
        .append_pair("redirect_uri", redirect_uri)
        .append_pair("scope", scope)
        .append_pair("state", "s1")
        .append_pair("nonce", "n1")
        .append_pair("code_challenge", &challenge)
        .append_pair("code_challenge_method", "S256");
    for (k, v) in extra {
        q.append_pair(k, v);
    }
    (
        format!("{}?{}", app.url("/oauth2/authorize"), q.finish()),
        verifier,
    )
}

/// Fills the login form the browser shows with `email` and the test password, and submits it.
async fn submit_login_form(browser: &Browser, email: &str) {
    browser
        .type_into(&format!("{LOGIN_FORM} input[name=email]"), email)
        .await;
    browser
        .type_into(
            &format!("{LOGIN_FORM} input[name=password]"),
            crate::harness::rp::PASSWORD,
        )
        .await;
    browser
        .click(&format!(
            "{LOGIN_FORM} button:not([type=button]):not([type=reset])"
        ))
        .await;
}

/// The code of the redirect `back` exchanged at the token endpoint (client_secret_basic, PKCE);
/// the ID token's claims.
async fn claims_of_code(
    app: &crate::harness::TestApp,
    (client_id, secret, redirect_uri): (&str, &str, &str),
    back: &str,
    verifier: &str,
) -> serde_json::Value {
    let code = query_param(back, "code").expect("a code");
    let tokens: serde_json::Value = reqwest::Client::new()
        .post(app.url("/oauth2/token"))
        .header("authorization", basic_auth(client_id, secret))
        .form(&[
            ("grant_type", "authorization_code"),
            ("code", code.as_str()),
            ("redirect_uri", redirect_uri),
            ("code_verifier", verifier),
        ])
        .send()
        .await
        .expect("the token request")
        .json()
        .await
        .expect("a token response");
    jwt::claims(tokens["id_token"].as_str().expect("an ID token"))
}

/// The app's redirect URI: a listener on a random port that answers `200 ok` to anything and
/// remembers each request line, so the browser lands on a real page.
async fn start_app_listener() -> (String, tokio::sync::mpsc::UnboundedReceiver<String>) {
    use tokio::io::{AsyncReadExt, AsyncWriteExt};
    let listener = tokio::net::TcpListener::bind("127.0.0.1:0")
        .await
        .expect("bind the app's redirect listener");
    let port = listener.local_addr().expect("local addr").port();
    let (tx, rx) = tokio::sync::mpsc::unbounded_channel();
    tokio::spawn(async move {
        while let Ok((mut conn, _)) = listener.accept().await {
            let tx = tx.clone();
            tokio::spawn(async move {
                let mut buf = Vec::new();
                let mut chunk = [0u8; 4096];
                while !buf.windows(4).any(|w| w == b"\r\n\r\n") && buf.len() < 65_536 {
                    match conn.read(&mut chunk).await {
                        Ok(0) | Err(_) => break,
                        Ok(n) => buf.extend_from_slice(&chunk[..n]),
                    }
                }
                let head = String::from_utf8_lossy(&buf);
                if let Some(line) = head.lines().next() {
                    let _ = tx.send(line.to_owned());
                }
                let _ = conn
                    .write_all(
                        b"HTTP/1.1 200 OK\r\nContent-Type: text/plain\r\nContent-Length: 2\r\n\
                          Connection: close\r\n\r\nok",
                    )
                    .await;
                let _ = conn.shutdown().await;
            });
        }
    });
    (format!("http://127.0.0.1:{port}/cb"), rx)
}

#[tokio::test]
async fn a_new_user_registers_verifies_the_email_and_signs_in_to_an_app_in_a_real_browser() {
    let started = Instant::now();
    let Some(mut browser) = Browser::start().await else {
        return;
    };
    let shots = screenshots();
    browser.screenshot_on_failure(shots.join("browser-failure.png"));
    let sink = SmtpSink::start();
    let smtp_url = sink.url();
    let app = spawn_app_with(|s| {
        s.mail.smtp_url = Some(castellan::config::Secret::new(smtp_url));
    })
    .await;
    let (redirect_uri, mut landed) = start_app_listener().await;
    let (client_id, secret) = create_client(
        &app,
        &[
            "--name",
            "Browser app",
            "--redirect-uri",
            &redirect_uri,
            "--scope",
            "openid profile email",
            "--token-endpoint-auth-method",
            "client_secret_basic",
        ],
    );
    let secret = secret.expect("a confidential client has a secret");

    // The app's authorization request: PKCE S256, state, nonce.
    let verifier = random_token(64);
    let challenge = jwt::b64(&Sha256::digest(verifier.as_bytes()));
    let state = random_token(24);
    let nonce = random_token(24);
    let authorize_url = format!(
        "{}?{}",
        app.url("/oauth2/authorize"),
        url::form_urlencoded::Serializer::new(String::new())
            .append_pair("response_type", "code")
            .append_pair("client_id", &client_id)
            .append_pair("redirect_uri", &redirect_uri)
            .append_pair("scope", "openid profile email")
            .append_pair("state", &state)
            .append_pair("nonce", &nonce)
            .append_pair("code_challenge", &challenge)
            .append_pair("code_challenge_method", "S256")
            .finish()
    );
    let on_path = |path: &'static str| {
        let origin = app.address.clone();
        move |u: &str| u.starts_with(&origin) && path_of(u) == path
    };

    // 1. The request lands on the login page.
    browser.goto(&authorize_url).await;
    browser
        .wait_for_url(on_path("/login"), STEP, "the login page")
        .await;
    browser
        .find(&format!("{LOGIN_FORM} input[name=email]"))
        .await;
    browser
        .find(&format!("{LOGIN_FORM} input[name=password]"))
        .await;
    browser.screenshot(shots.join("login.png")).await;

    // 2. Its link to the registration page.
    browser.click(r#"a[href^="/register"]"#).await;
    browser
        .wait_for_url(on_path("/register"), STEP, "the registration page")
        .await;
    for field in ["email", "password", "name"] {
        browser
            .wait_for(&format!("{REGISTER_FORM} input[name={field}]"), STEP)
            .await;
    }
    browser.screenshot(shots.join("register.png")).await;
    let email = "grace@example.com";
    let password = "violet lanterns drift over nine harbours";
    browser
        .type_into(&format!("{REGISTER_FORM} input[name=name]"), "Grace Hopper")
        .await;
    browser
        .type_into(&format!("{REGISTER_FORM} input[name=email]"), email)
        .await;
    browser
        .type_into(&format!("{REGISTER_FORM} input[name=password]"), password)
        .await;
    browser
        .click(&format!(
            "{REGISTER_FORM} button:not([type=button]):not([type=reset])"
        ))
        .await;

    // 3. The page says to check the mailbox.
    let deadline = Instant::now() + STEP;
    loop {
        // The registration POST may still be landing: a read that meets the old document
        // being replaced just looks again. The form's absence first, so the text read after
        // it is the new page's.
        let form_gone = browser.try_find(REGISTER_FORM).await.is_none();
        let text = browser
            .try_text("body")
            .await
            .unwrap_or_default()
            .to_lowercase();
        if form_gone && text.contains("mail") {
            break;
        }
        if Instant::now() >= deadline {
            panic!(
                "{}",
                browser
                    .failure("after registering, the page should say to check the mailbox")
                    .await
            );
        }
        tokio::time::sleep(Duration::from_millis(100)).await;
    }
    browser.screenshot(shots.join("register-sent.png")).await;

    // 4. The verification mail, from the real SMTP listener; its link opened in the browser.
    let mail = sink.wait_for(email, STEP).await;
    let link = mail.link();
    assert!(
        link.starts_with(&format!("{}/", app.address)),
        "the verification link is an absolute URL on the issuer's origin: {link}"
    );
    browser.goto(&link).await;
    let text = browser.text("body").await.to_lowercase();
    browser
        .check(
            text.contains("verified") || text.contains("confirmed"),
            "the verification link should say the email is verified",
        )
        .await;
    browser.screenshot(shots.join("verified.png")).await;

    // 5. Back to the app's request (whatever the page offers): the login page, then log in.
    browser.goto(&authorize_url).await;
    let at = browser
        .wait_for_url(
            |u| u.starts_with(&app.address) && ["/login", "/consent"].contains(&&*path_of(u)),
            STEP,
            "the login page (or the consent page, if verifying signed the user in)",
        )
        .await;
    if path_of(&at) == "/login" {
        browser
            .type_into(&format!("{LOGIN_FORM} input[name=email]"), email)
            .await;
        browser
            .type_into(&format!("{LOGIN_FORM} input[name=password]"), password)
            .await;
        browser
            .click(&format!(
                "{LOGIN_FORM} button:not([type=button]):not([type=reset])"
            ))
            .await;
    } else {
        println!("verifying the email signed the user in: no login form this time");
    }

    // 6. Consent: allow.
    browser
        .wait_for_url(on_path("/consent"), STEP, "the consent page after login")
        .await;
    let allow = r#"button[name="decision"][value="allow"]"#;
    browser.wait_for(allow, STEP).await;
    browser
        .find(r#"button[name="decision"][value="deny"]"#)
        .await;
    browser.screenshot(shots.join("consent.png")).await;
    browser.click(allow).await;

    // 7. The browser ends at the app's redirect URI with code, state and iss.
    let back = browser
        .wait_for_url(
            |u| u.starts_with(&format!("{redirect_uri}?")),
            STEP,
            "the app's redirect URI",
        )
        .await;
    assert_eq!(query_param(&back, "error"), None, "{back}");
    assert_eq!(query_param(&back, "state").as_deref(), Some(state.as_str()));
    assert_eq!(
        query_param(&back, "iss").as_deref(),
        Some(app.address.as_str())
    );
    let code = query_param(&back, "code").unwrap_or_else(|| panic!("no code: {back}"));
    let request_line = tokio::time::timeout(STEP, async {
        loop {
            match landed.recv().await {
                Some(line) if line.contains("/cb?") => return line,
                Some(_) => continue,
                None => panic!("the app's listener stopped"),
            }
        }
    })
    .await
    .expect("the browser's request reached the app's listener");
    assert!(
        request_line.contains("code=") && request_line.contains("state="),
        "the app saw the authorization response: {request_line}"
    );

    // 8. The app exchanges the code (client_secret_basic + code_verifier).
    let body = url::form_urlencoded::Serializer::new(String::new())
        .append_pair("grant_type", "authorization_code")
        .append_pair("code", &code)
        .append_pair("redirect_uri", &redirect_uri)
        .append_pair("code_verifier", &verifier)
        .finish();
    let res = rp_http()
        .post(app.url("/oauth2/token"))
        .header("authorization", basic_auth(&client_id, &secret))
        .header("content-type", "application/x-www-form-urlencoded")
        .body(body)
        .send()
        .await
        .expect("token request");
    let status = res.status().as_u16();
    let tokens: serde_json::Value = res.json().await.expect("token response JSON");
    assert_eq!(status, 200, "{tokens}");
    let id_token = tokens["id_token"]
        .as_str()
        .unwrap_or_else(|| panic!("no id_token: {tokens}"));
    let claims = jwt::claims(id_token);
    assert_eq!(claims["iss"], app.address.as_str(), "{claims}");
    assert_eq!(claims["aud"], client_id.as_str(), "{claims}");
    assert_eq!(claims["nonce"], nonce.as_str(), "{claims}");
    assert_eq!(claims["email"], email, "{claims}");
    assert_eq!(claims["email_verified"], true, "{claims}");
    assert_eq!(claims["name"], "Grace Hopper", "{claims}");

    // 9. The account page, signed in.
    browser.goto(&app.url("/account")).await;
    browser
        .wait_for_url(on_path("/account"), STEP, "the account page")
        .await;
    let text = browser.text("body").await;
    browser
        .check(
            text.contains(email),
            "the account page shows the signed-in user's email",
        )
        .await;
    browser.screenshot(shots.join("account.png")).await;

    println!(
        "browser flow done in {:.1} s; screenshots in {}",
        started.elapsed().as_secs_f64(),
        shots.display()
    );
}

/// Issue 17: a passkey in real Chromium through its WebDriver virtual authenticator. A user
/// signed in with a password registers a passkey on the account page (the page's script runs
/// `navigator.credentials.create()`). An app then asks for `acr_values=phr`: the password
/// session steps up on the second-step page's "Use a passkey" button. Signed out, the user
/// signs in to the app with the passkey alone: the login page's autofill request (conditional
/// mediation) is answered by the authenticator, which consents on its own, so the page signs
/// in without a click (a real user picks the passkey from the email field's suggestions).
/// Both ID tokens say `acr` `phr`.
#[tokio::test]
async fn a_user_registers_a_passkey_steps_up_with_it_signs_out_and_signs_in_with_the_passkey_alone()
{
    let Some(mut browser) = Browser::start().await else {
        return;
    };
    let shots = screenshots();
    browser.screenshot_on_failure(shots.join("passkey-failure.png"));
    let app = crate::harness::spawn_app_at_localhost(|_| {}).await;
    let authenticator = browser.add_virtual_authenticator().await;
    let email = "ada@example.com";
    crate::harness::rp::create_user(&app, email, crate::harness::rp::PASSWORD);
    let (redirect_uri, _landed) = start_app_listener().await;
    let (client_id, secret) = create_client(
        &app,
        &[
            "--name",
            "Passkey app",
            "--redirect-uri",
            &redirect_uri,
            "--scope",
            "openid",
            "--skip-consent",
            "--token-endpoint-auth-method",
            "client_secret_basic",
        ],
    );
    let secret = secret.expect("a confidential client has a secret");
    let on_path = |path: &'static str| {
        let origin = app.address.clone();
        move |u: &str| u.starts_with(&origin) && path_of(u) == path
    };
    // An authorization request (PKCE) and the exchange of the code it brings back.
    let request =
        |extra: &[(&str, &str)]| pkce_request(&app, (&client_id, &redirect_uri), "openid", extra);
    let exchange = |back: String, verifier: String| {
        let (app, client_id, secret, redirect_uri) = (&app, &client_id, &secret, &redirect_uri);
        async move { claims_of_code(app, (client_id, secret, redirect_uri), &back, &verifier).await }
    };

    // Sign in with the password, then register a passkey.
    browser.goto(&app.url("/login")).await;
    submit_login_form(&browser, email).await;
    browser
        .wait_for_url(|u| path_of(u) != "/login", STEP, "past the login page")
        .await;
    browser.goto(&app.url("/account/passkeys")).await;
    browser.wait_for("#add-passkey", STEP).await;
    browser.type_into("#passkey-name", "Chromium").await;
    browser.click("#add-passkey").await;
    let deadline = Instant::now() + STEP;
    while !browser
        .try_text("body")
        .await
        .unwrap_or_default()
        .contains("Your passkey is added.")
    {
        if Instant::now() >= deadline {
            panic!("{}", browser.failure("the passkey should be added").await);
        }
        tokio::time::sleep(Duration::from_millis(100)).await;
    }
    browser.screenshot(shots.join("passkey-added.png")).await;
    let held = browser.virtual_credentials(&authenticator).await;
    assert_eq!(held.len(), 1, "{held:?}");
    assert_eq!(
        held[0]["isResidentCredential"],
        serde_json::json!(true),
        "a discoverable credential: {held:?}"
    );
    assert_eq!(app.count("passkeys").await, 1);

    // Step-up: the app asks for phr; the password session uses the passkey button.
    let (url, verifier) = request(&[("acr_values", "phr")]);
    browser.goto(&url).await;
    browser
        .wait_for_url(on_path("/login/second-factor"), STEP, "the step-up page")
        .await;
    browser.wait_for("#passkey-second-factor", STEP).await;
    browser.screenshot(shots.join("passkey-step-up.png")).await;
    browser.click("#passkey-second-factor").await;
    let back = browser
        .wait_for_url(
            |u| u.starts_with(&redirect_uri),
            STEP,
            "the app, stepped up",
        )
        .await;
    let claims = exchange(back, verifier).await;
    assert_eq!(claims["acr"], "phr", "{claims}");
    assert_eq!(claims["amr"][0], "pwd", "{claims}");
    assert_eq!(claims["amr"][2], "mfa", "{claims}");

    // Signed out (the cookies of the issuer's site go): the passkey alone, through the login
    // page's autofill.
    browser.goto(&app.url("/account")).await;
    browser.delete_cookies().await;
    let (url, verifier) = request(&[]);
    browser.goto(&url).await;
    let back = browser
        .wait_for_url(
            |u| u.starts_with(&redirect_uri),
            STEP,
            "the app, signed in with the passkey alone",
        )
        .await;
    let claims = exchange(back, verifier).await;
    assert_eq!(claims["acr"], "phr", "{claims}");
    assert!(
        claims["amr"] == serde_json::json!(["hwk", "mfa"])
            || claims["amr"] == serde_json::json!(["swk", "mfa"]),
        "{claims}"
    );
    assert!(
        app.count("audit_events WHERE kind = 'login_succeeded' AND detail LIKE '% passkey'")
            .await
            >= 2
    );
}

#[tokio::test]
async fn a_user_signs_in_to_an_app_through_an_upstream_castellan_in_a_real_browser() {
    let Some(mut browser) = Browser::start().await else {
        return;
    };
    let shots = screenshots();
    browser.screenshot_on_failure(shots.join("upstream-failure.png"));
    // The server under test on `localhost`, the upstream on `127.0.0.1`: two sites to the
    // browser, so their same-named cookies stay apart.
    let app = crate::harness::spawn_app_at_localhost(|_| {}).await;
    let idp = crate::harness::spawn_app().await;
    crate::harness::upstream::register(&app, &idp, "corp", &[], false);
    let email = "ada@example.com";
    crate::harness::rp::create_user(&idp, email, crate::harness::rp::PASSWORD);
    let (redirect_uri, _landed) = start_app_listener().await;
    let (client_id, secret) = create_client(
        &app,
        &[
            "--name",
            "Brokered app",
            "--redirect-uri",
            &redirect_uri,
            "--scope",
            "openid email",
            "--skip-consent",
        ],
    );
    let secret = secret.expect("a confidential client has a secret");
    let (url, verifier) = pkce_request(&app, (&client_id, &redirect_uri), "openid email", &[]);
    browser.goto(&url).await;
    let app_origin = app.address.clone();
    browser
        .wait_for_url(
            move |u| u.starts_with(&app_origin) && path_of(u) == "/login",
            STEP,
            "the login page",
        )
        .await;
    browser
        .wait_for(r#"a[href^="/login/upstream/corp"]"#, STEP)
        .await;
    browser.screenshot(shots.join("upstream-login.png")).await;
    browser.click(r#"a[href^="/login/upstream/corp"]"#).await;
    // At the upstream's own login page.
    let idp_origin = idp.address.clone();
    browser
        .wait_for_url(
            move |u| u.starts_with(&idp_origin) && path_of(u) == "/login",
            STEP,
            "the upstream's login page",
        )
        .await;
    submit_login_form(&browser, email).await;
    let back = browser
        .wait_for_url(
            |u| u.starts_with(&redirect_uri),
            STEP,
            "back at the app, signed in through the upstream",
        )
        .await;
    let claims = claims_of_code(&app, (&client_id, &secret, &redirect_uri), &back, &verifier).await;
    assert_eq!(claims["amr"], serde_json::json!(["fed"]), "{claims}");
    assert_eq!(claims["email"], email, "{claims}");
    assert_eq!(app.count("upstream_identities").await, 1);
    // The account page lists the provider, with its unlink button.
    browser.goto(&app.url("/account")).await;
    browser
        .wait_for(r#"button[name="unlink"][value="corp"]"#, STEP)
        .await;
    browser.screenshot(shots.join("upstream-account.png")).await;
}
