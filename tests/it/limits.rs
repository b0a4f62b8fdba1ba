//! Bounds on what one request may carry: the number of parameters and the size of the body of
//! every form and OAuth endpoint. A request over a bound is refused at once with a 4xx, before
//! any work that grows with its size.

use std::time::{Duration, Instant};

use crate::harness::forms::Form;
use crate::harness::rp::{PASSWORD, create_user};
use crate::harness::{TestApp, json_out, spawn_app_with};

/// Every route that takes a form body (`x` stands for an id).
const POST_FORMS: &[&str] = &[
    "/oauth2/authorize",
    "/oauth2/token",
    "/oauth2/revoke",
    "/oauth2/introspect",
    "/oauth2/userinfo",
    "/oauth2/logout",
    "/login",
    "/consent",
    "/register",
    "/register/resend",
    "/password/forgot",
    "/password/reset",
    "/account/profile",
    "/account/email",
    "/account/password",
    "/account/sessions/end",
    "/account/sessions/end-all",
    "/account/apps/revoke",
    "/admin/users/x/roles",
    "/admin/users/x/status",
    "/admin/users/x/sessions/end",
    "/admin/users/x/password-reset",
    "/admin/users/x/delete",
    "/admin/clients",
    "/admin/clients/x",
    "/admin/clients/x/secret",
    "/admin/clients/x/delete",
    "/admin/roles",
    "/admin/roles/x/delete",
    "/admin/keys/rotate",
];

/// Every route that reads parameters from its query.
const GET_QUERIES: &[&str] = &[
    "/oauth2/authorize",
    "/oauth2/logout",
    "/oauth2/userinfo",
    "/login",
    "/consent",
    "/register",
    "/register/verify",
    "/register/resend",
    "/password/reset",
    "/admin/users",
    "/admin/users/x",
    "/admin/clients",
    "/admin/clients/x",
    "/admin/roles",
    "/admin/audit",
    "/admin/keys",
];

/// `n` distinct parameter names of three characters, without values (`aaa&aab&…`): 50,000
/// of them are 200 KB.
fn distinct_params(n: usize) -> String {
    const ALPHABET: &[u8] = b"abcdefghijklmnopqrstuvwxyzABCDEFGHIJKLMNOPQRSTUVWXYZ0123456789";
    let mut out = String::with_capacity(n * 4);
    for i in 0..n {
        if i > 0 {
            out.push('&');
        }
        for digit in [i / (62 * 62), i / 62, i] {
            out.push(ALPHABET[digit % 62] as char);
        }
    }
    out
}

/// A server with open dynamic registration, and a browser signed in as an administrator (so
/// that no route answers "sign in first" before it reads the request).
async fn admin_browser() -> TestApp {
    let app = spawn_app_with(|s| s.dynamic_registration.mode = "open".into()).await;
    create_user(&app, "root@example.com", PASSWORD);
    json_out(&app.castellan(&["user", "set-role", "root@example.com", "admin", "--json"]));
    let page = app.get("/login").await.text().await.expect("login page");
    let res = Form::with_action(&page, "/login")
        .submit(
            &app,
            &[("email", "root@example.com"), ("password", PASSWORD)],
            None,
        )
        .await;
    assert_eq!(res.status().as_u16(), 303, "the administrator signs in");
    app
}

/// A GET over a plain TCP connection (an HTTP client library refuses to build a URL this
/// long); returns the status of the answer.
async fn raw_get(app: &TestApp, target: &str) -> u16 {
    use tokio::io::{AsyncReadExt, AsyncWriteExt};
    let mut stream = tokio::net::TcpStream::connect(("127.0.0.1", app.port))
        .await
        .expect("connect");
    let request = format!("GET {target} HTTP/1.1\r\nHost: 127.0.0.1\r\nConnection: close\r\n\r\n");
    // The server may answer and close before it has read the whole request line.
    let _ = stream.write_all(request.as_bytes()).await;
    let mut head = [0u8; 12];
    stream.read_exact(&mut head).await.expect("a status line");
    std::str::from_utf8(&head[9..12])
        .ok()
        .and_then(|s| s.parse().ok())
        .unwrap_or_else(|| {
            panic!(
                "not an HTTP status line: {:?}",
                String::from_utf8_lossy(&head)
            )
        })
}

/// Sends the request three times; returns the status and the fastest time. (The best of
/// three: a single sample on a busy test machine can be delayed by anything.)
async fn best_of_three(make: impl Fn() -> reqwest::RequestBuilder) -> (u16, Duration) {
    let mut best = Duration::MAX;
    let mut status = 0;
    for _ in 0..3 {
        let start = Instant::now();
        let res = make().send().await.expect("request");
        status = res.status().as_u16();
        let _ = res.bytes().await;
        best = best.min(start.elapsed());
    }
    (status, best)
}

fn assert_refused_fast(what: &str, status: u16, took: Duration) {
    assert!(
        (400..500).contains(&status),
        "{what}: expected a 4xx, got {status}"
    );
    assert!(
        took < Duration::from_millis(100),
        "{what}: answered in {took:?}, not within 100 ms"
    );
}

/// Every form route and every query-reading route, sent `params` as its body or its query:
/// each answers a 4xx within 100 ms (the best of three tries).
async fn assert_every_endpoint_refuses_fast(app: &TestApp, params: &str) {
    for path in POST_FORMS {
        let (status, took) = best_of_three(|| {
            app.client
                .post(app.url(path))
                .header("content-type", "application/x-www-form-urlencoded")
                .body(params.to_owned())
        })
        .await;
        assert_refused_fast(&format!("POST {path}"), status, took);
    }
    for path in GET_QUERIES {
        let mut best = Duration::MAX;
        let mut status = 0;
        for _ in 0..3 {
            let start = Instant::now();
            status = raw_get(app, &format!("{path}?{params}")).await;
            best = best.min(start.elapsed());
        }
        assert_refused_fast(&format!("GET {path}?…"), status, best);
    }
}

#[tokio::test]
async fn fifty_thousand_parameters_to_any_form_or_oauth_endpoint_are_refused_within_100_ms() {
    let app = admin_browser().await;
    assert_every_endpoint_refuses_fast(&app, &distinct_params(50_000)).await;
    let json_flood = format!(
        "{{{}}}",
        (0..50_000)
            .map(|i| format!("\"k{i}\":0"))
            .collect::<Vec<_>>()
            .join(",")
    );
    let (status, took) = best_of_three(|| {
        app.client
            .post(app.url("/oauth2/register"))
            .header("content-type", "application/json")
            .body(json_flood.clone())
    })
    .await;
    assert_refused_fast("POST /oauth2/register", status, took);
}

#[tokio::test]
async fn a_small_request_with_too_many_parameters_is_refused_in_the_endpoints_own_terms() {
    let app = admin_browser().await;
    // 2,000 parameters in 8 KB: under every size bound, over the count.
    let many = distinct_params(2_000);
    assert_every_endpoint_refuses_fast(&app, &many).await;
    // The OAuth endpoints answer in RFC 6749 §5.2 terms; the pages with an HTML page.
    let post = |path: &str| {
        app.client
            .post(app.url(path))
            .header("content-type", "application/x-www-form-urlencoded")
            .body(many.clone())
            .send()
    };
    for path in ["/oauth2/token", "/oauth2/revoke", "/oauth2/introspect"] {
        let res = post(path).await.expect("request");
        let raw = crate::harness::rp::Raw::from(res).await;
        raw.assert_oauth_error(400, "invalid_request");
        raw.assert_no_store();
    }
    for path in ["/login", "/oauth2/logout", "/oauth2/authorize"] {
        let res = post(path).await.expect("request");
        assert_eq!(res.status().as_u16(), 400, "{path}");
        let ct = res.headers()["content-type"].to_str().unwrap().to_owned();
        assert!(ct.starts_with("text/html"), "{path}: {ct}");
    }
}
