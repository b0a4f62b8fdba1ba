//! Dynamic client registration: RFC 7591 at `/oauth2/register`, RFC 7592 at the
//! `registration_client_uri`, switched by `dynamic_registration.mode`.

use serde_json::{Value, json};

use crate::harness::rp::{
    Auth, PASSWORD, Raw, Rp, assert_token_error, code_of, create_client, create_user,
    introspect_raw, login_through_pages_location, rp_http, sign_in, token_request,
};
use crate::harness::{TestApp, castellan_with, json_out, spawn_app, spawn_app_with, stderr};

const INITIAL_TOKEN: &str = "initial-access-token-for-tests-0123";
const WEB_REDIRECT: &str = "https://app.example.com/cb";

async fn open_app() -> TestApp {
    spawn_app_with(|s| s.dynamic_registration.mode = "open".into()).await
}

/// POSTs a JSON body (or `raw` text with a content type) to the registration endpoint.
async fn post_raw(app: &TestApp, bearer: Option<&str>, content_type: &str, body: String) -> Raw {
    let mut req = rp_http()
        .post(app.url("/oauth2/register"))
        .header("content-type", content_type)
        .body(body);
    if let Some(t) = bearer {
        req = req.header("authorization", format!("Bearer {t}"));
    }
    Raw::from(req.send().await.expect("register")).await
}

async fn register_with(app: &TestApp, bearer: Option<&str>, body: Value) -> Raw {
    post_raw(app, bearer, "application/json", body.to_string()).await
}

async fn register(app: &TestApp, body: Value) -> Raw {
    register_with(app, None, body).await
}

/// Registers and asserts a 201; returns the client information response.
async fn registered(app: &TestApp, body: Value) -> Value {
    let raw = register(app, body).await;
    assert_eq!(raw.status, 201, "{}", raw.text);
    raw.assert_no_store();
    raw.json
}

/// A request to a client configuration endpoint (RFC 7592).
async fn manage(
    method: reqwest::Method,
    uri: &str,
    bearer: Option<&str>,
    body: Option<Value>,
) -> Raw {
    let mut req = rp_http().request(method, uri);
    if let Some(t) = bearer {
        req = req.header("authorization", format!("Bearer {t}"));
    }
    if let Some(b) = body {
        req = req
            .header("content-type", "application/json")
            .body(b.to_string());
    }
    Raw::from(req.send().await.expect("configuration endpoint")).await
}

fn s<'a>(v: &'a Value, key: &str) -> &'a str {
    v[key]
        .as_str()
        .unwrap_or_else(|| panic!("{key} is not a string in {v}"))
}

fn sha256_hex(s: &str) -> String {
    castellan::crypto::token::hash(s)
}

/// Asserts a 401 with the RFC 6750 §3 challenge; `error` says whether it names invalid_token.
fn assert_invalid_token(raw: &Raw, with_error_attribute: bool, what: &str) {
    assert_eq!(raw.status, 401, "{what}: {}", raw.text);
    assert_eq!(raw.json["error"], "invalid_token", "{what}: {}", raw.text);
    raw.assert_no_store();
    let challenge = raw.header("www-authenticate").unwrap_or_default();
    assert!(challenge.starts_with("Bearer"), "{what}: {challenge:?}");
    assert_eq!(
        challenge.contains("error=\"invalid_token\""),
        with_error_attribute,
        "{what}: {challenge:?}"
    );
}

async fn discovery(app: &TestApp) -> Value {
    app.get("/.well-known/openid-configuration")
        .await
        .json()
        .await
        .expect("discovery JSON")
}

#[tokio::test]
async fn with_registration_off_the_endpoint_is_not_found_and_not_advertised() {
    let app = spawn_app().await;
    let raw = register(&app, json!({"redirect_uris": [WEB_REDIRECT]})).await;
    assert_eq!(raw.status, 404, "{}", raw.text);
    let raw = manage(
        reqwest::Method::GET,
        &app.url("/oauth2/register/abc"),
        Some("cas_ra_x"),
        None,
    )
    .await;
    assert_eq!(raw.status, 404, "{}", raw.text);
    assert!(discovery(&app).await.get("registration_endpoint").is_none());
    let metadata: Value = app
        .get("/.well-known/oauth-authorization-server")
        .await
        .json()
        .await
        .expect("metadata");
    assert!(metadata.get("registration_endpoint").is_none());
    assert_eq!(app.count("clients").await, 0);
}

#[tokio::test]
async fn token_mode_without_an_initial_access_token_is_a_configuration_error() {
    let out = castellan_with(
        "sqlite::memory:",
        &["migrate"],
        None,
        &[("CASTELLAN_DYNAMIC_REGISTRATION__MODE", "token")],
    );
    let err = stderr(&out);
    assert_eq!(out.status.code(), Some(2), "{err}");
    assert!(
        err.contains("dynamic_registration.initial_access_token"),
        "{err}"
    );
}

#[tokio::test]
async fn an_openly_registered_client_completes_a_full_authorization_code_login() {
    let app = open_app().await;
    let doc = discovery(&app).await;
    assert_eq!(
        doc["registration_endpoint"],
        app.url("/oauth2/register").as_str()
    );

    let info = registered(
        &app,
        json!({
            "client_name": "Registered app",
            "redirect_uris": [WEB_REDIRECT],
            "post_logout_redirect_uris": ["https://app.example.com/bye"],
            "grant_types": ["authorization_code", "refresh_token"],
            "scope": "openid profile email offline_access",
            "client_uri": "https://app.example.com/",
            "contacts": ["ops@app.example.com"],
            "software_id": "4NRB1-0XZABZI9E6-5SM3R",
            "unknown_extension": {"ignored": true},
        }),
    )
    .await;
    let client_id = s(&info, "client_id");
    let secret = s(&info, "client_secret");
    let registration_token = s(&info, "registration_access_token");
    assert!(secret.starts_with("cas_cs_"), "{info}");
    assert!(registration_token.starts_with("cas_ra_"), "{info}");
    assert_eq!(
        info["registration_client_uri"],
        app.url(&format!("/oauth2/register/{client_id}")).as_str()
    );
    assert_eq!(info["client_secret_expires_at"], 0);
    assert!(info["client_id_issued_at"].as_i64().is_some_and(|t| t > 0));
    assert_eq!(info["client_name"], "Registered app");
    assert_eq!(info["redirect_uris"], json!([WEB_REDIRECT]));
    assert_eq!(
        info["post_logout_redirect_uris"],
        json!(["https://app.example.com/bye"])
    );
    assert_eq!(
        info["grant_types"],
        json!(["authorization_code", "refresh_token"])
    );
    assert_eq!(info["response_types"], json!(["code"]));
    assert_eq!(info["token_endpoint_auth_method"], "client_secret_basic");
    assert_eq!(info["application_type"], "web");
    assert_eq!(info["scope"], "email offline_access openid profile");
    assert_eq!(info["client_uri"], "https://app.example.com/");
    assert_eq!(info["contacts"], json!(["ops@app.example.com"]));
    assert!(info.get("unknown_extension").is_none());

    // Stored only as hashes; never first-party, never a resource server.
    assert_eq!(
        app.count(&format!(
            "clients WHERE id = '{client_id}' AND secret_hash = '{}' AND registration_token_hash = '{}' \
             AND skip_consent = false AND introspect_any = false",
            sha256_hex(secret),
            sha256_hex(registration_token)
        ))
        .await,
        1
    );
    assert_eq!(
        app.count(&format!(
            "clients WHERE secret_hash = '{secret}' OR registration_token_hash = '{registration_token}'"
        ))
        .await,
        0
    );

    // The registered client logs a user in with the openidconnect crate; consent is asked.
    create_user(&app, "ada@example.com", PASSWORD);
    let rp = Rp::discover(&app, client_id, Some(secret), WEB_REDIRECT).await;
    let signed = sign_in(
        &app,
        &rp,
        "ada@example.com",
        &["profile", "email", "offline_access"],
        true,
    )
    .await;
    let claims = rp.verify_id_token(&signed.tokens, &signed.nonce);
    assert_eq!(claims.audiences()[0].as_str(), client_id);
    rp.refresh(&signed.refresh_token())
        .await
        .expect("the registered client refreshes");

    // It may introspect its own tokens, and not another client's.
    let own = introspect_raw(&app, rp.auth(), &signed.access_token()).await;
    assert_eq!(own.json["active"], true, "{}", own.text);
    let (machine, machine_secret) = create_client(
        &app,
        &["--grant-type", "client_credentials", "--scope", "reports"],
    );
    let machine_secret = machine_secret.expect("a confidential client");
    let theirs = token_request(
        &app,
        Auth::Basic(&machine, &machine_secret),
        &[("grant_type", "client_credentials")],
    )
    .await;
    let their_token = s(&theirs.json, "access_token");
    let foreign = introspect_raw(&app, rp.auth(), their_token).await;
    assert_eq!(foreign.json["active"], false, "{}", foreign.text);
}

#[tokio::test]
async fn invalid_metadata_is_refused_with_the_right_error_code() {
    let app = spawn_app_with(|s| {
        s.dynamic_registration.mode = "open".into();
        s.rate_limit.register_per_minute = 0;
    })
    .await;
    let web = |extra: Value| {
        let mut body = json!({"redirect_uris": [WEB_REDIRECT]});
        for (k, v) in extra.as_object().expect("object") {
            body[k] = v.clone();
        }
        body
    };
    let cases: Vec<(&str, Value, &str)> = vec![
        ("no redirect URI", json!({}), "invalid_redirect_uri"),
        (
            "empty redirect URIs",
            json!({"redirect_uris": []}),
            "invalid_redirect_uri",
        ),
        (
            "http for a web client",
            json!({"redirect_uris": ["http://app.example.com/cb"]}),
            "invalid_redirect_uri",
        ),
        (
            "loopback for a web client",
            json!({"redirect_uris": ["http://127.0.0.1/cb"]}),
            "invalid_redirect_uri",
        ),
        (
            "a fragment",
            json!({"redirect_uris": ["https://app.example.com/cb#x"]}),
            "invalid_redirect_uri",
        ),
        (
            "a relative URI",
            json!({"redirect_uris": ["/cb"]}),
            "invalid_redirect_uri",
        ),
        (
            "http on a public host for a native client",
            json!({"application_type": "native", "redirect_uris": ["http://app.example.com/cb"]}),
            "invalid_redirect_uri",
        ),
        (
            "a private-use scheme not in reverse domain form",
            json!({"application_type": "native", "redirect_uris": ["myapp:/cb"]}),
            "invalid_redirect_uri",
        ),
        (
            "redirect_uris not an array",
            json!({"redirect_uris": WEB_REDIRECT}),
            "invalid_client_metadata",
        ),
        (
            "an unknown grant type",
            web(json!({"grant_types": ["authorization_code", "urn:example:magic"]})),
            "invalid_client_metadata",
        ),
        (
            "the implicit grant",
            web(json!({"grant_types": ["implicit"], "response_types": ["token"]})),
            "invalid_client_metadata",
        ),
        (
            "client credentials",
            web(json!({"grant_types": ["client_credentials"]})),
            "invalid_client_metadata",
        ),
        (
            "the token response type",
            web(json!({"response_types": ["token"]})),
            "invalid_client_metadata",
        ),
        (
            "a hybrid response type",
            web(json!({"response_types": ["code id_token"]})),
            "invalid_client_metadata",
        ),
        (
            "a grant and response type mismatch",
            web(json!({"grant_types": ["refresh_token"], "response_types": ["code"]})),
            "invalid_client_metadata",
        ),
        (
            "private_key_jwt",
            web(json!({"token_endpoint_auth_method": "private_key_jwt"})),
            "invalid_client_metadata",
        ),
        (
            "an unknown application type",
            web(json!({"application_type": "desktop"})),
            "invalid_client_metadata",
        ),
        (
            "a number for client_name",
            web(json!({"client_name": 42})),
            "invalid_client_metadata",
        ),
        (
            "an array for scope",
            web(json!({"scope": ["openid"]})),
            "invalid_client_metadata",
        ),
        (
            "a scope outside the OpenID ones",
            web(json!({"scope": "openid reports"})),
            "invalid_client_metadata",
        ),
        (
            "the phone scope (not served)",
            web(json!({"scope": "openid phone"})),
            "invalid_client_metadata",
        ),
        (
            "pairwise subjects",
            web(json!({"subject_type": "pairwise"})),
            "invalid_client_metadata",
        ),
        (
            "an unsupported ID token algorithm",
            web(json!({"id_token_signed_response_alg": "HS256"})),
            "invalid_client_metadata",
        ),
        (
            "a javascript logo",
            web(json!({"logo_uri": "javascript:alert(1)"})),
            "invalid_client_metadata",
        ),
        (
            "an http post-logout URI for a web client",
            web(json!({"post_logout_redirect_uris": ["http://app.example.com/bye"]})),
            "invalid_client_metadata",
        ),
        (
            "a JSON array body",
            json!([WEB_REDIRECT]),
            "invalid_client_metadata",
        ),
    ];
    for (what, body, code) in cases {
        let raw = register(&app, body).await;
        assert_eq!(
            (raw.status, raw.json["error"].as_str()),
            (400, Some(code)),
            "{what}: {}",
            raw.text
        );
        raw.assert_oauth_error(400, code);
        raw.assert_no_store();
        assert!(
            raw.json["error_description"].as_str().is_some(),
            "{what}: {}",
            raw.text
        );
    }

    // Not JSON at all.
    let raw = post_raw(
        &app,
        None,
        "application/x-www-form-urlencoded",
        "redirect_uris=https%3A%2F%2Fapp.example.com%2Fcb".into(),
    )
    .await;
    raw.assert_oauth_error(400, "invalid_request");
    let raw = post_raw(&app, None, "application/json", "{not json".into()).await;
    raw.assert_oauth_error(400, "invalid_request");
    // The body is bounded.
    let huge = json!({"redirect_uris": [WEB_REDIRECT], "client_name": "x".repeat(100 * 1024)});
    let raw = register(&app, huge).await;
    assert_eq!(raw.status, 413, "{}", raw.text);

    assert_eq!(app.count("clients").await, 0, "nothing was registered");
}

#[tokio::test]
async fn a_native_client_registers_loopback_and_private_use_redirect_uris() {
    let app = open_app().await;
    let info = registered(
        &app,
        json!({
            "application_type": "native",
            "client_name": "Desktop app",
            "token_endpoint_auth_method": "none",
            "redirect_uris": [
                "http://127.0.0.1/callback",
                "http://[::1]/callback",
                "http://localhost/callback",
                "com.example.app:/oauth2redirect",
            ],
        }),
    )
    .await;
    let client_id = s(&info, "client_id");
    assert_eq!(info["application_type"], "native");
    assert_eq!(info["token_endpoint_auth_method"], "none");
    assert!(info.get("client_secret").is_none(), "{info}");
    assert!(info.get("client_secret_expires_at").is_none(), "{info}");
    assert_eq!(
        app.count(&format!(
            "clients WHERE id = '{client_id}' AND public = true AND secret_hash IS NULL"
        ))
        .await,
        1
    );

    // RFC 8252 §7.3: the app listens on a port it picks at run time; any port matches.
    create_user(&app, "ada@example.com", PASSWORD);
    let loopback = "http://127.0.0.1:53123/callback";
    let rp = Rp::discover(&app, client_id, None, loopback).await;
    let (url, _state, nonce, verifier) = rp.authorize_url(&["email"], true);
    let loc = login_through_pages_location(&app, &url, "ada@example.com", PASSWORD, true).await;
    assert!(loc.starts_with(&format!("{loopback}?")), "{loc}");
    let tokens = rp.exchange_code(&code_of(&loc), verifier).await;
    rp.verify_id_token(&tokens, &nonce);

    // The private-use scheme works as a redirect URI too (the session and consent exist now).
    let app_rp = Rp::discover(&app, client_id, None, "com.example.app:/oauth2redirect").await;
    let (url, _state, _nonce, verifier) = app_rp.authorize_url(&["email"], true);
    let loc = crate::harness::rp::authorize_with_session(&app, &url).await;
    assert!(loc.starts_with("com.example.app:/oauth2redirect?"), "{loc}");
    app_rp.exchange_code(&code_of(&loc), verifier).await;

    // A port on a web client's or a non-loopback URI is still compared exactly.
    let other = Rp::discover(&app, client_id, None, "http://localhost:53123/callback").await;
    let (url, ..) = other.authorize_url(&["email"], true);
    let res = crate::harness::rp::browse(&app, &url).await;
    assert_eq!(res.status(), 400, "an unregistered redirect URI is refused");
}

#[tokio::test]
async fn the_admin_scope_can_never_be_registered() {
    let app = open_app().await;
    let raw = register(
        &app,
        json!({"redirect_uris": [WEB_REDIRECT], "scope": "openid admin"}),
    )
    .await;
    raw.assert_oauth_error(400, "invalid_client_metadata");
    assert!(
        s(&raw.json, "error_description").contains("admin"),
        "{}",
        raw.text
    );
    assert_eq!(app.count("clients").await, 0);

    // Nor through an update.
    let info = registered(&app, json!({"redirect_uris": [WEB_REDIRECT]})).await;
    let client_id = s(&info, "client_id");
    let raw = manage(
        reqwest::Method::PUT,
        s(&info, "registration_client_uri"),
        Some(s(&info, "registration_access_token")),
        Some(json!({
            "client_id": client_id,
            "redirect_uris": [WEB_REDIRECT],
            "scope": "openid admin",
        })),
    )
    .await;
    raw.assert_oauth_error(400, "invalid_client_metadata");
    assert_eq!(app.count("clients WHERE scopes LIKE '%admin%'").await, 0);
}

#[tokio::test]
async fn a_clients_own_update_keeps_the_second_factor_requirement_an_administrator_set() {
    let app = open_app().await;
    let info = registered(
        &app,
        json!({"client_name": "Self", "redirect_uris": [WEB_REDIRECT]}),
    )
    .await;
    let client_id = s(&info, "client_id");
    // Registered through RFC 7591: no requirement of its own.
    let shown = json_out(&app.castellan(&["client", "show", client_id, "--json"]));
    assert_eq!(shown["require_mfa"], false, "{shown}");
    // An administrator requires a second factor for it.
    let updated = json_out(&app.castellan(&[
        "client",
        "update",
        client_id,
        "--name",
        "Self",
        "--redirect-uri",
        WEB_REDIRECT,
        "--require-mfa",
        "--json",
    ]));
    assert_eq!(updated["require_mfa"], true, "{updated}");
    // The client replaces its metadata (RFC 7592 §2.2): the requirement is not its to drop.
    let raw = manage(
        reqwest::Method::PUT,
        s(&info, "registration_client_uri"),
        Some(s(&info, "registration_access_token")),
        Some(json!({
            "client_id": client_id,
            "client_name": "Self renamed",
            "redirect_uris": [WEB_REDIRECT],
        })),
    )
    .await;
    assert_eq!(raw.status, 200, "{}", raw.text);
    let shown = json_out(&app.castellan(&["client", "show", client_id, "--json"]));
    assert_eq!(shown["name"], "Self renamed");
    assert_eq!(shown["require_mfa"], true, "{shown}");
}

#[tokio::test]
async fn token_mode_requires_the_initial_access_token() {
    let app = spawn_app_with(|s| {
        s.dynamic_registration.mode = "token".into();
        s.dynamic_registration.initial_access_token =
            Some(castellan::config::Secret::new(INITIAL_TOKEN));
    })
    .await;
    assert_eq!(
        discovery(&app).await["registration_endpoint"],
        app.url("/oauth2/register").as_str()
    );
    let body = json!({"redirect_uris": [WEB_REDIRECT]});

    let raw = register_with(&app, None, body.clone()).await;
    assert_invalid_token(&raw, false, "no token");
    let raw = register_with(
        &app,
        Some("initial-access-token-for-tests-0124"),
        body.clone(),
    )
    .await;
    assert_invalid_token(&raw, true, "a wrong token");
    let raw = register_with(&app, Some(&INITIAL_TOKEN[..20]), body.clone()).await;
    assert_invalid_token(&raw, true, "a prefix of the token");
    // Another scheme is no bearer token.
    let res = rp_http()
        .post(app.url("/oauth2/register"))
        .header("content-type", "application/json")
        .header(
            "authorization",
            crate::harness::rp::basic_auth("x", INITIAL_TOKEN),
        )
        .body(body.to_string())
        .send()
        .await
        .expect("register");
    assert_invalid_token(&Raw::from(res).await, false, "Basic credentials");
    // The token is checked before anything is said about the body.
    let raw = post_raw(&app, None, "text/plain", "hello".into()).await;
    assert_invalid_token(&raw, false, "no token and no JSON");
    assert_eq!(app.count("clients").await, 0);

    let raw = register_with(&app, Some(INITIAL_TOKEN), body).await;
    assert_eq!(raw.status, 201, "{}", raw.text);
    assert!(raw.json["client_secret"].is_string());
    assert_eq!(app.count("clients").await, 1);
}

#[tokio::test]
async fn the_configuration_endpoint_reads_updates_and_deletes_only_with_its_registration_token() {
    let app = open_app().await;
    let a = registered(
        &app,
        json!({"client_name": "A", "redirect_uris": [WEB_REDIRECT], "contacts": ["a@example.com"]}),
    )
    .await;
    let b = registered(
        &app,
        json!({"client_name": "B", "redirect_uris": [WEB_REDIRECT]}),
    )
    .await;
    let (a_id, a_uri, a_token) = (
        s(&a, "client_id"),
        s(&a, "registration_client_uri"),
        s(&a, "registration_access_token"),
    );
    let a_secret = s(&a, "client_secret");
    let b_token = s(&b, "registration_access_token");
    let get = reqwest::Method::GET;

    // Read (RFC 7592 §2.1): the metadata as registered, the secret not shown again.
    let raw = manage(get.clone(), a_uri, Some(a_token), None).await;
    assert_eq!(raw.status, 200, "{}", raw.text);
    raw.assert_no_store();
    assert_eq!(raw.json["client_id"], a_id);
    assert_eq!(raw.json["client_name"], "A");
    assert_eq!(raw.json["contacts"], json!(["a@example.com"]));
    assert_eq!(raw.json["registration_access_token"], a_token);
    assert_eq!(raw.json["registration_client_uri"], a_uri);
    assert_eq!(raw.json["client_id_issued_at"], a["client_id_issued_at"]);
    assert!(raw.json.get("client_secret").is_none(), "{}", raw.text);

    // Wrong, missing, another client's token, or an unknown client: the same 401.
    assert_invalid_token(
        &manage(get.clone(), a_uri, Some(b_token), None).await,
        true,
        "B's token",
    );
    assert_invalid_token(
        &manage(get.clone(), a_uri, None, None).await,
        false,
        "no token",
    );
    assert_invalid_token(
        &manage(get.clone(), a_uri, Some("cas_ra_forged"), None).await,
        true,
        "a forged token",
    );
    assert_invalid_token(
        &manage(
            get.clone(),
            &app.url("/oauth2/register/nosuchclient"),
            Some(a_token),
            None,
        )
        .await,
        true,
        "an unknown client",
    );
    assert_invalid_token(
        &manage(get.clone(), a_uri, Some(a_secret), None).await,
        true,
        "the client secret instead of the registration token",
    );

    // Update (RFC 7592 §2.2): the body replaces the metadata.
    let put = reqwest::Method::PUT;
    let update = json!({
        "client_id": a_id,
        "client_name": "A renamed",
        "redirect_uris": ["https://app.example.com/new-cb"],
        "grant_types": ["authorization_code", "refresh_token"],
        // Server-managed fields a client copies back from a read are ignored.
        "client_id_issued_at": 1,
        "registration_access_token": "ignored",
    });
    let raw = manage(put.clone(), a_uri, Some(b_token), Some(update.clone())).await;
    assert_invalid_token(&raw, true, "update with B's token");
    let raw = manage(put.clone(), a_uri, Some(a_token), Some(update.clone())).await;
    assert_eq!(raw.status, 200, "{}", raw.text);
    raw.assert_no_store();
    assert_eq!(raw.json["client_name"], "A renamed");
    assert_eq!(
        raw.json["redirect_uris"],
        json!(["https://app.example.com/new-cb"])
    );
    assert_eq!(
        raw.json["grant_types"],
        json!(["authorization_code", "refresh_token"])
    );
    assert!(
        raw.json.get("contacts").is_none(),
        "omitted fields are deleted: {}",
        raw.text
    );
    assert!(
        raw.json.get("client_secret").is_none(),
        "the secret is kept, not re-shown"
    );
    assert_eq!(raw.json["registration_access_token"], a_token);
    assert_eq!(
        app.count(&format!(
            "clients WHERE id = '{a_id}' AND name = 'A renamed' AND secret_hash = '{}'",
            sha256_hex(a_secret)
        ))
        .await,
        1
    );
    let raw = manage(get.clone(), a_uri, Some(a_token), None).await;
    assert_eq!(raw.json["client_name"], "A renamed");

    // The body's client_id must be this client's; a client_secret must be the current one.
    let mut wrong_id = update.clone();
    wrong_id["client_id"] = b["client_id"].clone();
    let raw = manage(put.clone(), a_uri, Some(a_token), Some(wrong_id)).await;
    raw.assert_oauth_error(400, "invalid_client_metadata");
    let mut no_id = update.clone();
    no_id.as_object_mut().expect("object").remove("client_id");
    let raw = manage(put.clone(), a_uri, Some(a_token), Some(no_id)).await;
    raw.assert_oauth_error(400, "invalid_client_metadata");
    let mut wrong_secret = update.clone();
    wrong_secret["client_secret"] = json!("cas_cs_chosen-by-the-client");
    let raw = manage(put.clone(), a_uri, Some(a_token), Some(wrong_secret)).await;
    raw.assert_oauth_error(400, "invalid_client_metadata");
    let mut right_secret = update.clone();
    right_secret["client_secret"] = json!(a_secret);
    let raw = manage(put.clone(), a_uri, Some(a_token), Some(right_secret)).await;
    assert_eq!(raw.status, 200, "{}", raw.text);
    // Validation is the same as at registration.
    let mut bad_uri = update.clone();
    bad_uri["redirect_uris"] = json!(["http://app.example.com/cb"]);
    let raw = manage(put.clone(), a_uri, Some(a_token), Some(bad_uri)).await;
    raw.assert_oauth_error(400, "invalid_redirect_uri");
    let raw = manage(put.clone(), a_uri, Some(a_token), None).await;
    raw.assert_oauth_error(400, "invalid_request");

    // Becoming public drops the secret; becoming confidential again issues a new one.
    let mut public = update.clone();
    public["token_endpoint_auth_method"] = json!("none");
    let raw = manage(put.clone(), a_uri, Some(a_token), Some(public)).await;
    assert_eq!(raw.status, 200, "{}", raw.text);
    assert_eq!(
        app.count(&format!(
            "clients WHERE id = '{a_id}' AND public = true AND secret_hash IS NULL"
        ))
        .await,
        1
    );
    let raw = manage(put.clone(), a_uri, Some(a_token), Some(update.clone())).await;
    assert_eq!(raw.status, 200, "{}", raw.text);
    let new_secret = s(&raw.json, "client_secret");
    assert!(new_secret.starts_with("cas_cs_") && new_secret != a_secret);
    let form = [("grant_type", "client_credentials")];
    let old = token_request(&app, Auth::Basic(a_id, a_secret), &form).await;
    old.assert_oauth_error(401, "invalid_client");

    // Delete (RFC 7592 §2.3).
    let delete = reqwest::Method::DELETE;
    assert_invalid_token(
        &manage(delete.clone(), a_uri, Some(b_token), None).await,
        true,
        "delete with B's token",
    );
    assert_eq!(app.count(&format!("clients WHERE id = '{a_id}'")).await, 1);
    let raw = manage(delete.clone(), a_uri, Some(a_token), None).await;
    assert_eq!(raw.status, 204, "{}", raw.text);
    assert_eq!(app.count(&format!("clients WHERE id = '{a_id}'")).await, 0);
    assert_invalid_token(
        &manage(get.clone(), a_uri, Some(a_token), None).await,
        true,
        "read after delete",
    );
    assert_invalid_token(
        &manage(delete, a_uri, Some(a_token), None).await,
        true,
        "delete twice",
    );
    // B is untouched.
    let raw = manage(get, s(&b, "registration_client_uri"), Some(b_token), None).await;
    assert_eq!(raw.status, 200, "{}", raw.text);
}

#[tokio::test]
async fn a_deleted_client_cannot_get_tokens_any_more() {
    let app = open_app().await;
    let info = registered(
        &app,
        json!({
            "redirect_uris": [WEB_REDIRECT],
            "grant_types": ["authorization_code", "refresh_token"],
            "token_endpoint_auth_method": "client_secret_post",
        }),
    )
    .await;
    let (client_id, secret) = (s(&info, "client_id"), s(&info, "client_secret"));
    create_user(&app, "ada@example.com", PASSWORD);
    let rp = Rp::discover(&app, client_id, Some(secret), WEB_REDIRECT).await;
    let rp = Rp {
        client: rp
            .client
            .set_auth_type(openidconnect::AuthType::RequestBody),
        ..rp
    };
    let signed = sign_in(&app, &rp, "ada@example.com", &["email"], true).await;
    let refresh_token = signed.refresh_token();
    assert_eq!(
        app.count(&format!("refresh_tokens WHERE client_id = '{client_id}'"))
            .await,
        1
    );
    // A code issued before the deletion is no use afterwards either.
    let (url, _state, _nonce, verifier) = rp.authorize_url(&["email"], true);
    let loc = crate::harness::rp::authorize_with_session(&app, &url).await;
    let code = code_of(&loc);

    let raw = manage(
        reqwest::Method::DELETE,
        s(&info, "registration_client_uri"),
        Some(s(&info, "registration_access_token")),
        None,
    )
    .await;
    assert_eq!(raw.status, 204, "{}", raw.text);

    assert_token_error(
        rp.refresh(&refresh_token).await,
        "invalid_client",
        "refresh",
    );
    assert_token_error(
        rp.try_exchange_code(&code, verifier).await,
        "invalid_client",
        "code exchange",
    );
    assert_eq!(
        app.count(&format!("refresh_tokens WHERE client_id = '{client_id}'"))
            .await,
        0,
        "its refresh tokens are gone"
    );
    assert_eq!(
        app.count(&format!(
            "authorization_codes WHERE client_id = '{client_id}'"
        ))
        .await,
        0
    );
    assert_eq!(
        app.count(&format!("consents WHERE client_id = '{client_id}'"))
            .await,
        0
    );
    // Authorization requests for it are refused too.
    let (url, ..) = rp.authorize_url(&["email"], true);
    let res = crate::harness::rp::browse(&app, &url).await;
    assert_eq!(res.status(), 400);
}

#[tokio::test]
async fn registration_changes_are_audited_without_secrets() {
    let app = open_app().await;
    let info = registered(&app, json!({"redirect_uris": [WEB_REDIRECT]})).await;
    let client_id = s(&info, "client_id");
    let (uri, token) = (
        s(&info, "registration_client_uri"),
        s(&info, "registration_access_token"),
    );
    let raw = manage(
        reqwest::Method::PUT,
        uri,
        Some(token),
        Some(json!({"client_id": client_id, "redirect_uris": [WEB_REDIRECT], "client_name": "N"})),
    )
    .await;
    assert_eq!(raw.status, 200, "{}", raw.text);
    let raw = manage(reqwest::Method::DELETE, uri, Some(token), None).await;
    assert_eq!(raw.status, 204, "{}", raw.text);
    for kind in ["client_created", "client_updated", "client_deleted"] {
        assert_eq!(
            app.count(&format!(
                "audit_events WHERE kind = '{kind}' AND actor = 'dynamic_registration' \
                 AND client_id = '{client_id}' AND ip = '127.0.0.1'"
            ))
            .await,
            1,
            "{kind}"
        );
    }
    // A refused request changes nothing and records no change.
    let raw = register(&app, json!({"redirect_uris": ["http://x.example/cb"]})).await;
    assert_eq!(raw.status, 400);
    assert_eq!(
        app.count("audit_events WHERE kind LIKE 'client_%'").await,
        3
    );
    assert_eq!(
        app.count(&format!(
            "audit_events WHERE detail LIKE '%cas_%' OR detail LIKE '%{}%'",
            &token[7..20]
        ))
        .await,
        0,
        "no secret or token in an audit row"
    );
}

#[tokio::test]
async fn open_registration_is_rate_limited_per_address() {
    let app = spawn_app_with(|s| {
        s.dynamic_registration.mode = "open".into();
        s.rate_limit.register_per_minute = 2;
    })
    .await;
    let body = json!({"redirect_uris": [WEB_REDIRECT]});
    for _ in 0..2 {
        assert_eq!(register(&app, body.clone()).await.status, 201);
    }
    let raw = register(&app, body.clone()).await;
    raw.assert_oauth_error(429, "temporarily_unavailable");
    raw.assert_no_store();
    let wait: u64 = raw
        .header("retry-after")
        .and_then(|v| v.parse().ok())
        .expect("Retry-After in seconds");
    assert!((1..=60).contains(&wait), "{wait}");
    assert_eq!(app.count("clients").await, 2);
    // The user registration page has its own bucket, and time refills this one.
    assert_eq!(app.get("/register").await.status(), 200);
    app.clock.advance_secs(30);
    assert_eq!(register(&app, body).await.status, 201);
}

#[tokio::test]
async fn an_administrator_made_client_has_no_configuration_endpoint() {
    let app = open_app().await;
    let (id, secret) = create_client(&app, &["--redirect-uri", WEB_REDIRECT]);
    let secret = secret.expect("a confidential client");
    let uri = app.url(&format!("/oauth2/register/{id}"));
    for token in [secret.as_str(), "", "cas_ra_"] {
        let raw = manage(reqwest::Method::DELETE, &uri, Some(token), None).await;
        assert_eq!(raw.status, 401, "{}", raw.text);
    }
    assert_eq!(app.count(&format!("clients WHERE id = '{id}'")).await, 1);
}

/// RFC 9700 §4.11.2: anyone may register a client under open registration, so its redirect
/// URI is not trusted to receive a browser that no user sent there: an error that would go
/// back to it before the user did anything is shown as a page instead (no open redirect).
#[tokio::test]
async fn an_openly_registered_client_cannot_bounce_a_browser_to_its_redirect_uri() {
    let app = open_app().await;
    let phish = "https://evil.example/phish";
    let info = registered(
        &app,
        json!({"redirect_uris": [phish], "client_name": "Totally legit"}),
    )
    .await;
    let id = s(&info, "client_id").to_owned();
    let challenge = "E9Melhoa2OwvFrEMTJguCHaoeK1t8URWbuGJSstw-cM";
    let enc = |pairs: &[(&str, &str)]| {
        url::form_urlencoded::Serializer::new(String::new())
            .extend_pairs(pairs)
            .finish()
    };
    let cases = [
        (
            "no response_type",
            enc(&[("client_id", &id), ("redirect_uri", phish)]),
        ),
        (
            "an unsupported response_type",
            enc(&[
                ("client_id", &id),
                ("redirect_uri", phish),
                ("response_type", "token"),
            ]),
        ),
        (
            "prompt=none without a session",
            enc(&[
                ("client_id", &id),
                ("redirect_uri", phish),
                ("response_type", "code"),
                ("scope", "openid"),
                ("code_challenge", challenge),
                ("code_challenge_method", "S256"),
                ("prompt", "none"),
            ]),
        ),
    ];
    let http = rp_http();
    for (what, query) in &cases {
        let res = http
            .get(app.url(&format!("/oauth2/authorize?{query}")))
            .send()
            .await
            .expect("authorize");
        let status = res.status().as_u16();
        let location = res.headers().get("location").cloned();
        let body = res.text().await.unwrap_or_default();
        assert_eq!(
            (status, location),
            (400, None),
            "{what}: an error page, not a redirect:\n{body}"
        );
        assert!(
            !body.contains(phish),
            "{what}: the page links nowhere:\n{body}"
        );
    }

    // A client an administrator made is trusted with its errors (RFC 6749 §4.1.2.1).
    let (admin_made, _) = create_client(&app, &["--redirect-uri", WEB_REDIRECT]);
    let res = http
        .get(app.url(&format!(
            "/oauth2/authorize?{}",
            enc(&[("client_id", &admin_made), ("redirect_uri", WEB_REDIRECT)])
        )))
        .send()
        .await
        .expect("authorize");
    assert_eq!(res.status().as_u16(), 303);
    let location = res.headers()["location"].to_str().unwrap().to_owned();
    assert!(
        location.starts_with(&format!("{WEB_REDIRECT}?error=invalid_request")),
        "{location}"
    );
}

/// RP-Initiated Logout with a self-registered client's own ID token and its registered
/// post-logout URI: without the user's confirmation it would bounce any browser there (the
/// ID token is the attacker's own). The confirmation page comes first; an administrator's
/// client is still sent back at once.
#[tokio::test]
async fn a_self_registered_client_cannot_bounce_a_browser_through_logout() {
    let app = open_app().await;
    let bye = "https://app.example.com/bye";
    let info = registered(
        &app,
        json!({
            "redirect_uris": [WEB_REDIRECT],
            "post_logout_redirect_uris": [bye],
            "scope": "openid profile",
        }),
    )
    .await;
    create_user(&app, "mallory@example.com", PASSWORD);
    let rp = Rp::discover(
        &app,
        s(&info, "client_id"),
        Some(s(&info, "client_secret")),
        WEB_REDIRECT,
    )
    .await;
    let signed = sign_in(&app, &rp, "mallory@example.com", &["profile"], true).await;
    let logout = |hint: &str, back_to: &str| {
        format!(
            "/oauth2/logout?{}",
            url::form_urlencoded::Serializer::new(String::new())
                .append_pair("id_token_hint", hint)
                .append_pair("post_logout_redirect_uri", back_to)
                .append_pair("state", "s1")
                .finish()
        )
    };
    // A victim's browser, signed in to nothing.
    let res = crate::harness::browser()
        .get(app.url(&logout(&signed.id_token(), bye)))
        .send()
        .await
        .expect("logout");
    let status = res.status().as_u16();
    let location = res.headers().get("location").cloned();
    let body = res.text().await.unwrap_or_default();
    assert_eq!(
        (status, location),
        (200, None),
        "a confirmation page:\n{body}"
    );
    assert!(body.contains("name=\"decision\""), "{body}");

    // The same request for a client an administrator made goes straight back.
    let admin_rp = crate::harness::rp::confidential_rp(&app, &[]).await;
    // (prompt=login: this browser is still signed in from the first sign-in.)
    let signed =
        crate::harness::rp::sign_in_as(&app, &admin_rp, "mallory@example.com", &["profile"], true)
            .await;
    let res = crate::harness::browser()
        .get(app.url(&logout(
            &signed.id_token(),
            crate::harness::rp::POST_LOGOUT_URI,
        )))
        .send()
        .await
        .expect("logout");
    assert_eq!(res.status().as_u16(), 303);
}
