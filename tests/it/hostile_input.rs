//! Hostile input at the edges: request headers over 16 KiB (RFC 6585 §5: 431), names and values
//! that are not UTF-8 once percent-decoded (`invalid_request`: an error page until the client
//! and redirect URI are established, RFC 6749 §4.1.2.1; JSON at the token, revocation and
//! introspection endpoints, §5.2), and scopes over 2 KiB or 64 tokens (`invalid_scope`, §3.3).

use crate::harness::forms::query_param;
use crate::harness::rp::{
    ALL_SCOPES, Auth, PASSWORD, REDIRECT_URI, Raw, basic_auth, browse, confidential_rp,
    create_client, create_user, expect_redirect, is_login_page, post_form, sign_in, token_request,
};
use crate::harness::{TestApp, spawn_app};

const STATE: &str = "st-1";
/// RFC 7636 Appendix B.
const CHALLENGE: &str = "E9Melhoa2OwvFrEMTJguCHaoeK1t8URWbuGJSstw-cM";

// ---------------------------------------------------------------------------------------------
// Header fields: 431 over 16 KiB.

/// Sends one request over a plain TCP connection, exactly as written; returns the status.
async fn raw_status(app: &TestApp, request: &str) -> u16 {
    use tokio::io::{AsyncReadExt, AsyncWriteExt};
    let mut stream = tokio::net::TcpStream::connect(("127.0.0.1", app.port))
        .await
        .expect("connect");
    // The server may answer and close before it has read everything.
    let _ = stream.write_all(request.as_bytes()).await;
    let mut head = [0u8; 12];
    stream.read_exact(&mut head).await.expect("a status line");
    std::str::from_utf8(&head[9..12])
        .ok()
        .and_then(|s| s.parse().ok())
        .unwrap_or_else(|| panic!("not a status line: {:?}", String::from_utf8_lossy(&head)))
}

/// A GET of `/healthz` whose header fields, counted as the server counts them (each field line
/// `name: value` with its CRLF), come to exactly `total` bytes.
fn healthz_with_header_bytes(total: usize) -> String {
    let fixed = ["host: 127.0.0.1\r\n", "connection: close\r\n"]
        .iter()
        .map(|l| l.len())
        .sum::<usize>();
    let overhead = "x-pad: \r\n".len();
    let pad = "a".repeat(total - fixed - overhead);
    let request = format!(
        "GET /healthz HTTP/1.1\r\nhost: 127.0.0.1\r\nconnection: close\r\nx-pad: {pad}\r\n\r\n"
    );
    assert_eq!(
        request.len() - "GET /healthz HTTP/1.1\r\n".len() - "\r\n".len(),
        total
    );
    request
}

#[tokio::test]
async fn header_fields_over_16_kib_get_431_and_up_to_16_kib_are_served() {
    let app = spawn_app().await;
    let http = crate::harness::browser();
    // 15 KiB and 17 KiB in one field, on an endpoint and on discovery.
    for path in ["/healthz", "/.well-known/openid-configuration"] {
        for (kib, want) in [(15, 200), (17, 431), (64, 431)] {
            let res = http
                .get(app.url(path))
                .header("x-filler", "f".repeat(kib * 1024))
                .send()
                .await
                .expect("request");
            assert_eq!(res.status().as_u16(), want, "{path} with {kib} KiB");
        }
    }
    // Spread over many fields, the total counts.
    let mut req = http.get(app.url("/healthz"));
    for i in 0..20 {
        req = req.header(format!("x-part-{i}"), "p".repeat(900));
    }
    assert_eq!(req.send().await.expect("request").status().as_u16(), 431);
    // The exact boundary: 16,384 bytes are served, one more is refused.
    assert_eq!(
        raw_status(&app, &healthz_with_header_bytes(16 * 1024)).await,
        200
    );
    assert_eq!(
        raw_status(&app, &healthz_with_header_bytes(16 * 1024 + 1)).await,
        431
    );
}

#[tokio::test]
async fn a_431_is_answered_in_the_endpoints_own_terms() {
    let app = spawn_app().await;
    let http = crate::harness::browser();
    let filler = "f".repeat(17 * 1024);
    let res = http
        .post(app.url("/oauth2/token"))
        .header("x-filler", filler.as_str())
        .form(&[("grant_type", "client_credentials")])
        .send()
        .await
        .expect("request");
    let raw = Raw::from(res).await;
    raw.assert_oauth_error(431, "invalid_request");
    raw.assert_no_store();
    let res = http
        .get(app.url("/login"))
        .header("x-filler", filler.as_str())
        .send()
        .await
        .expect("request");
    assert_eq!(res.status().as_u16(), 431);
    let ct = res.headers()["content-type"].to_str().unwrap().to_owned();
    assert!(ct.starts_with("text/html"), "{ct}");
    // The connection is answered, not dropped: the same client goes on.
    assert_eq!(app.get("/healthz").await.status().as_u16(), 200);
}

// ---------------------------------------------------------------------------------------------
// Invalid UTF-8.

/// A valid authorization query for `client_id` (PKCE, state, nonce), percent-encoded.
fn authorize_query(client_id: &str, scope: &str) -> String {
    url::form_urlencoded::Serializer::new(String::new())
        .append_pair("response_type", "code")
        .append_pair("client_id", client_id)
        .append_pair("redirect_uri", REDIRECT_URI)
        .append_pair("scope", scope)
        .append_pair("state", STATE)
        .append_pair("code_challenge", CHALLENGE)
        .append_pair("code_challenge_method", "S256")
        .finish()
}

/// A 400 HTML page, never a redirect.
async fn assert_error_page(res: reqwest::Response, what: &str) {
    let status = res.status().as_u16();
    let location = res.headers().get("location").cloned();
    let ct = res
        .headers()
        .get("content-type")
        .map(|c| c.to_str().unwrap_or_default().to_owned())
        .unwrap_or_default();
    assert_eq!(status, 400, "{what}");
    assert_eq!(location, None, "{what}: must not redirect");
    assert!(ct.starts_with("text/html"), "{what}: {ct}");
}

/// The error redirect to the client: `error`, the `state` when it decoded, and `iss`.
fn assert_error_location(app: &TestApp, loc: &str, error: &str, state: Option<&str>, what: &str) {
    assert!(
        loc.starts_with(&format!("{REDIRECT_URI}?")),
        "{what}: the error goes back to the client: {loc}"
    );
    assert_eq!(
        query_param(loc, "error").as_deref(),
        Some(error),
        "{what}: {loc}"
    );
    assert_eq!(query_param(loc, "state").as_deref(), state, "{what}: {loc}");
    assert_eq!(
        query_param(loc, "iss").as_deref(),
        Some(app.address.as_str()),
        "{what}: {loc}"
    );
    assert_eq!(query_param(loc, "code"), None, "{what}: {loc}");
}

#[tokio::test]
async fn invalid_utf8_in_the_client_or_redirect_uri_is_an_error_page() {
    let app = spawn_app().await;
    let (id, _) = create_client(
        &app,
        &["--redirect-uri", REDIRECT_URI, "--scope", ALL_SCOPES],
    );
    let valid = authorize_query(&id, "openid");
    let cases = [
        // The client_id itself does not decode: there is no client to send the error to.
        (valid.replace("client_id=", "client_id=%FF"), "client_id"),
        // The registered redirect URI with a byte that does not decode appended.
        (
            valid.replace("%2Fcb", "%2Fcb%C3"),
            "redirect_uri with a truncated sequence",
        ),
        // A second client_id that does not decode beside the valid one.
        (format!("{valid}&client_id=%FF"), "a second client_id"),
    ];
    for (query, what) in cases {
        let res = browse(&app, &app.url(&format!("/oauth2/authorize?{query}"))).await;
        assert_error_page(res, what).await;
    }
}

#[tokio::test]
async fn invalid_utf8_elsewhere_in_an_authorization_request_redirects_invalid_request() {
    let app = spawn_app().await;
    let (id, _) = create_client(
        &app,
        &["--redirect-uri", REDIRECT_URI, "--scope", ALL_SCOPES],
    );
    let valid = authorize_query(&id, "openid");
    for (extra, what) in [
        ("nonce=%FF", "a value"),
        ("nonce=ok%E2%82", "a truncated sequence"),
        ("login_hint=%C0%AF", "an overlong encoding"),
        ("%FF=1", "a name"),
        ("scope=%FF", "a second scope that does not decode"),
    ] {
        let url = app.url(&format!("/oauth2/authorize?{valid}&{extra}"));
        let loc = expect_redirect(&app, browse(&app, &url).await, what).await;
        assert_error_location(&app, &loc, "invalid_request", Some(STATE), what);
    }
    // A state that does not decode cannot be echoed: the error goes back without it.
    let query = valid.replace(&format!("state={STATE}"), "state=%FF");
    let url = app.url(&format!("/oauth2/authorize?{query}"));
    let loc = expect_redirect(&app, browse(&app, &url).await, "state").await;
    assert_error_location(&app, &loc, "invalid_request", None, "state");
    // The same request as a POST form body.
    let res = app
        .client
        .post(app.url("/oauth2/authorize"))
        .header("content-type", "application/x-www-form-urlencoded")
        .body(format!("{valid}&nonce=%FF"))
        .send()
        .await
        .expect("request");
    let loc = expect_redirect(&app, res, "POST").await;
    assert_error_location(&app, &loc, "invalid_request", Some(STATE), "POST");
    // The valid request itself goes on to the login page.
    let url = app.url(&format!("/oauth2/authorize?{valid}"));
    let loc = expect_redirect(&app, browse(&app, &url).await, "valid").await;
    assert!(is_login_page(&app, &loc), "{loc}");
}

/// POSTs a form body exactly as written.
async fn post_raw_body(path: &str, app: &TestApp, auth: Option<&str>, body: &[u8]) -> Raw {
    let mut req = crate::harness::browser()
        .post(app.url(path))
        .header("content-type", "application/x-www-form-urlencoded")
        .body(body.to_vec());
    if let Some(a) = auth {
        req = req.header("authorization", a);
    }
    Raw::from(req.send().await.expect("request")).await
}

#[tokio::test]
async fn invalid_utf8_at_the_token_revocation_and_introspection_endpoints_is_invalid_request() {
    let app = spawn_app().await;
    let (id, secret) = create_client(
        &app,
        &["--grant-type", "client_credentials", "--scope", "reports"],
    );
    let secret = secret.expect("secret");
    let basic = basic_auth(&id, &secret);
    let cases: [(&str, &[u8]); 6] = [
        ("/oauth2/token", b"grant_type=client_credentials&scope=%FF"),
        ("/oauth2/token", b"grant_type=client_credentials&%FE%FF=x"),
        // Raw octets that are not UTF-8, without percent-encoding.
        ("/oauth2/token", b"grant_type=client_credentials&scope=\xff"),
        ("/oauth2/revoke", b"token=%FF"),
        ("/oauth2/introspect", b"token=abc%C3"),
        ("/oauth2/introspect", b"token=abc&token_type_hint=%ED%A0%80"),
    ];
    for (path, body) in cases {
        let raw = post_raw_body(path, &app, Some(&basic), body).await;
        raw.assert_oauth_error(400, "invalid_request");
        raw.assert_no_store();
        assert!(
            raw.json["error_description"]
                .as_str()
                .is_some_and(|d| d.contains("UTF-8")),
            "{path} {}: {}",
            String::from_utf8_lossy(body),
            raw.text
        );
    }
    // Basic credentials whose form-urlencoded id does not decode (RFC 6749 §2.3.1).
    use base64::Engine;
    let bad_id = format!(
        "Basic {}",
        base64::engine::general_purpose::STANDARD.encode(format!("{id}%FF:{secret}"))
    );
    let raw = post_raw_body(
        "/oauth2/token",
        &app,
        Some(&bad_id),
        b"grant_type=client_credentials",
    )
    .await;
    raw.assert_oauth_error(400, "invalid_request");
    // The same requests with valid bodies work.
    let raw = token_request(
        &app,
        Auth::Basic(&id, &secret),
        &[("grant_type", "client_credentials"), ("scope", "reports")],
    )
    .await;
    assert_eq!(raw.status, 200, "{}", raw.text);
}

// ---------------------------------------------------------------------------------------------
// Scope bounds (RFC 6749 §3.3).

/// `n` distinct scope tokens, `openid` first.
fn scope_of(n: usize) -> String {
    std::iter::once("openid".to_owned())
        .chain((1..n).map(|i| format!("s{i}")))
        .collect::<Vec<_>>()
        .join(" ")
}

#[tokio::test]
async fn an_authorization_request_with_a_scope_over_64_tokens_or_2_kib_redirects_invalid_scope() {
    let app = spawn_app().await;
    let (id, _) = create_client(
        &app,
        &["--redirect-uri", REDIRECT_URI, "--scope", ALL_SCOPES],
    );
    let long = format!("openid {}", "x".repeat(2048 - "openid ".len() + 1));
    assert_eq!(long.len(), 2049);
    for (scope, what) in [
        (scope_of(65), "65 tokens"),
        (vec!["openid"; 65].join(" "), "65 tokens, all the same"),
        (long, "2049 bytes"),
    ] {
        let url = app.url(&format!(
            "/oauth2/authorize?{}",
            authorize_query(&id, &scope)
        ));
        let loc = expect_redirect(&app, browse(&app, &url).await, what).await;
        assert_error_location(&app, &loc, "invalid_scope", Some(STATE), what);
    }
    // At the bounds the request goes on (unknown scopes are left out, RFC 6749 §3.3).
    let at_bound = format!("openid {}", "x".repeat(2048 - "openid ".len()));
    for (scope, what) in [(scope_of(64), "64 tokens"), (at_bound, "2048 bytes")] {
        let url = app.url(&format!(
            "/oauth2/authorize?{}",
            authorize_query(&id, &scope)
        ));
        let loc = expect_redirect(&app, browse(&app, &url).await, what).await;
        assert!(is_login_page(&app, &loc), "{what}: {loc}");
    }
}

#[tokio::test]
async fn a_token_request_with_a_scope_over_64_tokens_or_2_kib_is_invalid_scope() {
    let app = spawn_app().await;
    let (id, secret) = create_client(
        &app,
        &["--grant-type", "client_credentials", "--scope", "reports"],
    );
    let secret = secret.expect("secret");
    let over_tokens = vec!["reports"; 65].join(" ");
    let over_bytes = format!("reports {}", "r".repeat(2048));
    for scope in [over_tokens.as_str(), over_bytes.as_str()] {
        let raw = token_request(
            &app,
            Auth::Basic(&id, &secret),
            &[("grant_type", "client_credentials"), ("scope", scope)],
        )
        .await;
        raw.assert_oauth_error(400, "invalid_scope");
    }
    let at_bound = vec!["reports"; 64].join(" ");
    let raw = token_request(
        &app,
        Auth::Basic(&id, &secret),
        &[("grant_type", "client_credentials"), ("scope", &at_bound)],
    )
    .await;
    assert_eq!(raw.status, 200, "{}", raw.text);

    // A refresh that asks for an oversized scope.
    create_user(&app, "ada@example.com", PASSWORD);
    let rp = confidential_rp(&app, &[]).await;
    let signed = sign_in(&app, &rp, "ada@example.com", &["offline_access"], true).await;
    let refresh_token = signed.refresh_token();
    let raw = post_form(
        &app,
        "/oauth2/token",
        rp.auth(),
        &[
            ("grant_type", "refresh_token"),
            ("refresh_token", &refresh_token),
            ("scope", &scope_of(65)),
        ],
    )
    .await;
    raw.assert_oauth_error(400, "invalid_scope");
}

// ---------------------------------------------------------------------------------------------
// Arbitrary bodies at the client endpoints.

/// RFC 6749 §5.2 and RFC 7009 §2.2.1: every error code the client endpoints may answer.
const CLIENT_ENDPOINT_ERRORS: &[&str] = &[
    "invalid_request",
    "invalid_client",
    "invalid_grant",
    "unauthorized_client",
    "unsupported_grant_type",
    "invalid_scope",
    "unsupported_token_type",
];

/// A form body: parameters the endpoints read with values they know or anything, and
/// sometimes octets that do not decode.
fn client_body() -> impl proptest::strategy::Strategy<Value = Vec<u8>> {
    use proptest::prelude::*;
    let name = prop_oneof![
        prop::sample::select(vec![
            "grant_type",
            "code",
            "redirect_uri",
            "code_verifier",
            "refresh_token",
            "scope",
            "client_id",
            "client_secret",
            "token",
            "token_type_hint",
        ])
        .prop_map(str::to_owned),
        "[a-z_]{1,8}",
    ];
    let value = prop_oneof![
        prop::sample::select(vec![
            "authorization_code",
            "refresh_token",
            "client_credentials",
            "password",
            "reports",
            "reports admin",
            "access_token",
            "",
            REDIRECT_URI,
        ])
        .prop_map(str::to_owned),
        ".{0,30}",
    ];
    let tail = prop::option::of(prop::sample::select(vec![
        "&scope=%FF",
        "&token=%C3",
        "&%FE=x",
        "&grant_type=client_credentials",
    ]));
    (prop::collection::vec((name, value), 0..6), tail).prop_map(|(pairs, tail)| {
        let mut body = url::form_urlencoded::Serializer::new(String::new())
            .extend_pairs(pairs)
            .finish()
            .into_bytes();
        body.extend_from_slice(tail.unwrap_or_default().as_bytes());
        body
    })
}

/// Property test over HTTP: 128 arbitrary bodies at each of the token, revocation and
/// introspection endpoints, from an authenticated client: 200, or 400/401 with one of the RFC
/// error codes, never cached, never a 5xx.
#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn arbitrary_bodies_at_the_client_endpoints_get_only_rfc_answers() {
    use proptest::test_runner::{Config, TestCaseError, TestRunner};
    let app =
        crate::harness::spawn_app_with(|s| s.rate_limit.client_auth_failures_per_minute = 0).await;
    let (id, secret) = create_client(
        &app,
        &["--grant-type", "client_credentials", "--scope", "reports"],
    );
    let auth = basic_auth(&id, &secret.expect("secret"));
    let handle = tokio::runtime::Handle::current();
    for path in ["/oauth2/token", "/oauth2/revoke", "/oauth2/introspect"] {
        let mut runner = TestRunner::new(Config {
            cases: 128,
            failure_persistence: None,
            ..Config::default()
        });
        let result = tokio::task::block_in_place(|| {
            runner.run(&client_body(), |body| {
                let raw = handle.block_on(post_raw_body(path, &app, Some(&auth), &body));
                let what = format!("POST {path} {:?}", String::from_utf8_lossy(&body));
                if !raw
                    .header("cache-control")
                    .is_some_and(|c| c.contains("no-store"))
                {
                    return Err(TestCaseError::fail(format!("{what}: cacheable {raw:?}")));
                }
                match raw.status {
                    200 => Ok(()),
                    400 | 401
                        if raw.json["error"]
                            .as_str()
                            .is_some_and(|e| CLIENT_ENDPOINT_ERRORS.contains(&e)) =>
                    {
                        Ok(())
                    }
                    _ => Err(TestCaseError::fail(format!(
                        "{what}: {} {}",
                        raw.status, raw.text
                    ))),
                }
            })
        });
        if let Err(e) = result {
            panic!("{path}: {e}");
        }
    }
}
