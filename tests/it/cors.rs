//! CORS as built (`http::middleware::CORS_PATHS`): the protocol endpoints a browser app calls
//! from another origin without cookies answer a preflight and carry
//! `Access-Control-Allow-Origin: *`; the pages, the authorization and logout endpoints (browser
//! navigations, with cookies), dynamic registration and the admin API do not.

use crate::harness::rp::{PASSWORD, confidential_rp, create_user, sign_in};
use crate::harness::{TestApp, spawn_app};

const ORIGIN: &str = "https://spa.example";

/// The paths with CORS, a method their routes serve, and what their preflight allows.
const CORS: &[(&str, &str, &str)] = &[
    ("/.well-known/openid-configuration", "GET", "GET, OPTIONS"),
    (
        "/.well-known/oauth-authorization-server",
        "GET",
        "GET, OPTIONS",
    ),
    ("/oauth2/jwks", "GET", "GET, OPTIONS"),
    ("/oauth2/token", "POST", "POST, OPTIONS"),
    ("/oauth2/userinfo", "GET", "GET, POST, OPTIONS"),
    ("/oauth2/revoke", "POST", "POST, OPTIONS"),
    ("/oauth2/introspect", "POST", "POST, OPTIONS"),
];

/// Paths without CORS.
const NOT_CORS: &[&str] = &[
    "/oauth2/authorize",
    "/oauth2/logout",
    "/oauth2/register",
    "/login",
    "/consent",
    "/account",
    "/admin",
    "/admin/api/v1/users",
    "/healthz",
];

async fn preflight(app: &TestApp, path: &str, method: &str) -> reqwest::Response {
    crate::harness::browser()
        .request(reqwest::Method::OPTIONS, app.url(path))
        .header("origin", ORIGIN)
        .header("access-control-request-method", method)
        .header(
            "access-control-request-headers",
            "authorization, content-type",
        )
        .send()
        .await
        .expect("preflight")
}

fn header<'a>(res: &'a reqwest::Response, name: &str) -> Option<&'a str> {
    res.headers().get(name).and_then(|v| v.to_str().ok())
}

#[tokio::test]
async fn the_protocol_endpoints_answer_a_cors_preflight_for_any_origin() {
    let app = spawn_app().await;
    for (path, method, allowed) in CORS {
        let res = preflight(&app, path, method).await;
        assert_eq!(res.status().as_u16(), 204, "{path}");
        assert_eq!(
            header(&res, "access-control-allow-origin"),
            Some("*"),
            "{path}"
        );
        assert_eq!(
            header(&res, "access-control-allow-methods"),
            Some(*allowed),
            "{path}"
        );
        assert_eq!(
            header(&res, "access-control-allow-headers"),
            Some("Authorization, Content-Type"),
            "{path}"
        );
        assert_eq!(
            header(&res, "access-control-max-age"),
            Some("86400"),
            "{path}"
        );
        // No credentials mode: the answers are public or bearer-protected.
        assert_eq!(
            header(&res, "access-control-allow-credentials"),
            None,
            "{path}"
        );
    }
}

#[tokio::test]
async fn the_protocol_endpoints_answers_and_errors_carry_allow_origin_star() {
    let app = spawn_app().await;
    create_user(&app, "ada@example.com", PASSWORD);
    let rp = confidential_rp(&app, &[]).await;
    let signed = sign_in(&app, &rp, "ada@example.com", &["openid"], true).await;
    let http = crate::harness::browser();
    let at = signed.access_token();
    let cases = [
        ("/.well-known/openid-configuration", None, 200),
        ("/oauth2/jwks", None, 200),
        ("/oauth2/userinfo", Some(at.as_str()), 200),
        // Errors too, so that the app can read them.
        ("/oauth2/userinfo", None, 401),
    ];
    for (path, token, status) in cases {
        let mut req = http.get(app.url(path)).header("origin", ORIGIN);
        if let Some(t) = token {
            req = req.bearer_auth(t);
        }
        let res = req.send().await.expect("request");
        assert_eq!(res.status().as_u16(), status, "{path}");
        assert_eq!(
            header(&res, "access-control-allow-origin"),
            Some("*"),
            "{path}"
        );
    }
    let res = http
        .post(app.url("/oauth2/token"))
        .header("origin", ORIGIN)
        .form(&[("grant_type", "authorization_code"), ("code", "nope")])
        .send()
        .await
        .expect("request");
    assert_eq!(res.status().as_u16(), 401);
    assert_eq!(header(&res, "access-control-allow-origin"), Some("*"));
    // The app's script may read a bearer error's challenge and when to retry, nothing more
    // beyond the CORS-safelisted headers.
    assert_eq!(
        header(&res, "access-control-expose-headers"),
        Some("WWW-Authenticate, Retry-After")
    );
    let res = http
        .get(app.url("/oauth2/userinfo"))
        .header("origin", ORIGIN)
        .send()
        .await
        .expect("request");
    assert!(
        header(&res, "www-authenticate").is_some_and(|c| c.starts_with("Bearer")),
        "the challenge is there to read"
    );
    assert_eq!(
        header(&res, "access-control-expose-headers"),
        Some("WWW-Authenticate, Retry-After")
    );
}

#[tokio::test]
async fn pages_and_browser_endpoints_have_no_cors() {
    let app = spawn_app().await;
    for path in NOT_CORS {
        // No preflight route: the 404 page, or 405 where the path is one resource with its
        // own methods (dynamic registration).
        let res = preflight(&app, path, "POST").await;
        let want = if *path == "/oauth2/register" {
            405
        } else {
            404
        };
        assert_eq!(res.status().as_u16(), want, "OPTIONS {path}");
        assert_eq!(
            header(&res, "access-control-allow-origin"),
            None,
            "OPTIONS {path}"
        );
        assert_eq!(
            header(&res, "access-control-allow-methods"),
            None,
            "OPTIONS {path}"
        );
        // Nor on a plain request from another origin.
        let res = crate::harness::browser()
            .get(app.url(path))
            .header("origin", ORIGIN)
            .send()
            .await
            .expect("request");
        assert_eq!(
            header(&res, "access-control-allow-origin"),
            None,
            "GET {path}"
        );
    }
}
