//! The database goes away while the server runs: every request that needs it is answered 503
//! with `Retry-After` within a second, in each surface's own format; what needs no database
//! keeps answering; and when the database is back the next requests succeed, without a restart.
//!
//! PostgreSQL is cut off by a TCP proxy ([`crate::harness::proxy`]) between the server and its
//! test database, in the two ways networks fail: connections refused (and open ones reset), and
//! packets dropped (connects hang, open connections stop answering). These tests need
//! PostgreSQL (`TEST_DATABASE_URL=postgres://...`); without it they skip, except under `CI=true`
//! with no PostgreSQL reachable, where they fail. Run with `--nocapture` to see the timings.

use std::future::Future;
use std::net::SocketAddr;
use std::time::{Duration, Instant};

use serde_json::json;

use crate::harness::TestApp;
use crate::harness::forms::Form;
use crate::harness::proxy::{Mode, Proxy};
use crate::harness::rp::{
    Auth, PASSWORD, Raw, Rp, browse, confidential_rp, create_user, expect_page, introspect_raw,
    revoke_raw, rp_http, sign_in, token_request, userinfo_raw,
};
use crate::harness::spawn_app_reaching_db;

/// The longest an answer may take while the database is gone.
const FAST: Duration = Duration::from_secs(1);
/// The longest the server may take to serve again once the database is back.
const RECOVERY: Duration = Duration::from_secs(2);

const EMAIL: &str = "outage@example.com";

/// `TEST_DATABASE_URL` when it names PostgreSQL; `None` (skip) otherwise, unless under
/// `CI=true` no PostgreSQL answers on 127.0.0.1:5432 (CI's PostgreSQL run would have run them).
fn postgres() -> Option<String> {
    match std::env::var("TEST_DATABASE_URL") {
        Ok(url) if url.starts_with("postgres") => return Some(url),
        _ => {}
    }
    let ci = std::env::var("CI").is_ok_and(|v| v == "true" || v == "1");
    let reachable = std::net::TcpStream::connect_timeout(
        &SocketAddr::from(([127, 0, 0, 1], 5432)),
        Duration::from_secs(1),
    )
    .is_ok();
    assert!(
        !ci || reachable,
        "CI=true: the outage tests need PostgreSQL (TEST_DATABASE_URL=postgres://...), and none \
         answers on 127.0.0.1:5432"
    );
    eprintln!("outage tests skipped: they need TEST_DATABASE_URL=postgres://...");
    None
}

/// Where the test database's server listens.
async fn upstream(url: &str) -> SocketAddr {
    let u = url::Url::parse(url).expect("TEST_DATABASE_URL is a URL");
    let host = u.host_str().unwrap_or("127.0.0.1").to_owned();
    let port = u.port().unwrap_or(5432);
    tokio::net::lookup_host((host.as_str(), port))
        .await
        .expect("resolve the PostgreSQL host")
        .next()
        .expect("an address for the PostgreSQL host")
}

/// A server whose database connections all go through `proxy`.
async fn app_behind(proxy: &Proxy) -> TestApp {
    let port = proxy.port();
    spawn_app_reaching_db(
        move |direct| {
            let mut u = url::Url::parse(direct).expect("the test database URL");
            u.set_host(Some("127.0.0.1")).expect("a host");
            u.set_port(Some(port)).expect("a port");
            u.to_string()
        },
        |s| {
            s.dynamic_registration.mode = "open".into();
            // The shipped defaults, which must meet the 1 s target.
            let defaults = castellan::config::DatabaseSettings::default();
            s.database.statement_timeout_ms = defaults.statement_timeout_ms;
        },
    )
    .await
}

/// What the test prepared while the database was there.
struct Setup {
    rp: Rp,
    access_token: String,
    /// The login form of a browser without a session, with its CSRF cookie.
    login: (reqwest::Client, Form),
}

async fn set_up(app: &TestApp) -> Setup {
    create_user(app, EMAIL, PASSWORD);
    let rp = confidential_rp(
        app,
        &[
            "--skip-consent",
            "--grant-type",
            "authorization_code",
            "--grant-type",
            "refresh_token",
            "--grant-type",
            "client_credentials",
        ],
    )
    .await;
    let signed = sign_in(app, &rp, EMAIL, &["openid", "profile", "email"], false).await;
    let browser = crate::harness::browser();
    let page = browser
        .get(app.url("/login"))
        .send()
        .await
        .expect("the login page");
    let page = expect_page(page, "the login page").await;
    let form = Form::with_input(&page, "password").on_page(&app.url("/login"));
    Setup {
        rp,
        access_token: signed.access_token(),
        login: (browser, form),
    }
}

/// Answer times, by request, printed at the end.
#[derive(Default)]
struct Timings(Vec<(String, Duration)>);

impl Timings {
    async fn time<T>(&mut self, what: &str, request: impl Future<Output = T>) -> T {
        let started = Instant::now();
        let out = request.await;
        self.0.push((what.to_owned(), started.elapsed()));
        out
    }

    fn assert_all_within(&self, limit: Duration, mode: &str) {
        let lines: Vec<String> = self
            .0
            .iter()
            .map(|(what, t)| format!("  {what:<40} {:>6.0} ms", t.as_secs_f64() * 1000.0))
            .collect();
        println!("answer times, {mode}:\n{}", lines.join("\n"));
        for (what, t) in &self.0 {
            assert!(*t < limit, "{mode}: {what} took {t:?} (limit {limit:?})");
        }
    }
}

fn retry_after(raw: &Raw) -> u64 {
    raw.header("retry-after")
        .unwrap_or_else(|| panic!("no Retry-After (status {}): {}", raw.status, raw.text))
        .parse()
        .expect("Retry-After in seconds")
}

/// A 503 with `Retry-After` and an RFC 6749 §5.2 error object.
fn assert_oauth_503(raw: &Raw, what: &str) {
    assert_eq!(raw.status, 503, "{what}: {}", raw.text);
    raw.assert_oauth_error(503, "temporarily_unavailable");
    assert!(retry_after(raw) >= 1, "{what}");
}

/// A 503 page that says to try again, with `Retry-After`.
fn assert_page_503(raw: &Raw, what: &str) {
    assert_eq!(raw.status, 503, "{what}: {}", raw.text);
    assert!(
        raw.header("content-type")
            .is_some_and(|c| c.starts_with("text/html")),
        "{what}: an HTML page"
    );
    assert!(raw.text.contains("try again"), "{what}: {}", raw.text);
    assert!(retry_after(raw) >= 1, "{what}");
}

async fn get(client: &reqwest::Client, url: &str) -> Raw {
    Raw::from(client.get(url).send().await.expect("GET")).await
}

/// Every kind of request while the database is cut off the way `mode` says.
async fn during(app: &TestApp, setup: &Setup, mode: &str) {
    let t = &mut Timings::default();
    let (id, secret) = (
        setup.rp.client_id.as_str(),
        setup.rp.client_secret.as_deref().unwrap_or_default(),
    );
    let client = Auth::Basic(id, secret);

    let raw = t
        .time("GET /readyz", get(&rp_http(), &app.url("/readyz")))
        .await;
    assert_eq!(raw.status, 503, "readyz: {}", raw.text);
    assert!(retry_after(&raw) >= 1);

    let raw = t
        .time(
            "POST /oauth2/token (client_credentials)",
            token_request(app, client, &[("grant_type", "client_credentials")]),
        )
        .await;
    assert_oauth_503(&raw, "token");

    let raw = t
        .time(
            "GET /oauth2/userinfo",
            userinfo_raw(app, Some(&setup.access_token)),
        )
        .await;
    assert_oauth_503(&raw, "userinfo");

    let raw = t
        .time(
            "POST /oauth2/introspect",
            introspect_raw(app, client, &setup.access_token),
        )
        .await;
    assert_oauth_503(&raw, "introspect");

    let raw = t
        .time(
            "POST /oauth2/revoke",
            revoke_raw(app, client, &setup.access_token),
        )
        .await;
    assert_oauth_503(&raw, "revoke");

    let register = rp_http()
        .post(app.url("/oauth2/register"))
        .header("content-type", "application/json")
        .body(json!({"redirect_uris": ["https://app.example.com/cb"]}).to_string())
        .send();
    let raw = Raw::from(
        t.time("POST /oauth2/register", register)
            .await
            .expect("register"),
    )
    .await;
    assert_oauth_503(&raw, "register");

    let (url, ..) = setup.rp.authorize_url(&["openid"], true);
    let res = t
        .time("GET /oauth2/authorize (session)", browse(app, &url))
        .await;
    assert_page_503(&Raw::from(res).await, "authorize with a session");
    let raw = t
        .time("GET /oauth2/authorize (no session)", get(&rp_http(), &url))
        .await;
    assert_page_503(&raw, "authorize without a session");

    let (browser, form) = &setup.login;
    let res = t
        .time(
            "POST /login",
            form.submit_with(
                browser,
                app,
                &[("email", EMAIL), ("password", PASSWORD)],
                None,
            ),
        )
        .await;
    assert_page_503(&Raw::from(res).await, "login");

    let admin = rp_http()
        .get(app.url("/admin/api/v1/users"))
        .bearer_auth(&setup.access_token)
        .send();
    let raw = Raw::from(
        t.time("GET /admin/api/v1/users", admin)
            .await
            .expect("admin"),
    )
    .await;
    assert_eq!(raw.status, 503, "admin API: {}", raw.text);
    assert!(
        raw.header("content-type")
            .is_some_and(|c| c.starts_with("application/problem+json")),
        "admin API: problem details"
    );
    assert_eq!(raw.json["status"], 503, "{}", raw.text);
    assert!(retry_after(&raw) >= 1);

    // What needs no database answers as usual.
    for path in [
        "/.well-known/openid-configuration",
        "/oauth2/jwks",
        "/healthz",
    ] {
        let raw = t
            .time(&format!("GET {path}"), get(&rp_http(), &app.url(path)))
            .await;
        assert_eq!(raw.status, 200, "{path}: {}", raw.text);
    }
    // The JWK Set again, after its refresh interval: still from memory.
    tokio::time::sleep(Duration::from_millis(1100)).await;
    let raw = t
        .time(
            "GET /oauth2/jwks (due a refresh)",
            get(&rp_http(), &app.url("/oauth2/jwks")),
        )
        .await;
    assert_eq!(raw.status, 200, "jwks: {}", raw.text);

    t.assert_all_within(FAST, mode);
}

/// The proxy forwards again: within [`RECOVERY`] every kind of request succeeds.
async fn after(app: &TestApp, setup: &Setup, proxy: &Proxy, mode: &str) {
    proxy.set(Mode::Forward);
    let back = Instant::now();
    let (id, secret) = (
        setup.rp.client_id.as_str(),
        setup.rp.client_secret.as_deref().unwrap_or_default(),
    );
    loop {
        let ready = get(&rp_http(), &app.url("/readyz")).await.status == 200;
        let token = token_request(
            app,
            Auth::Basic(id, secret),
            &[("grant_type", "client_credentials")],
        )
        .await
        .status
            == 200;
        let userinfo = userinfo_raw(app, Some(&setup.access_token)).await.status == 200;
        if ready && token && userinfo {
            break;
        }
        assert!(
            back.elapsed() < RECOVERY,
            "{mode}: not serving {RECOVERY:?} after the database came back (readyz {ready}, \
             token {token}, userinfo {userinfo})"
        );
        tokio::time::sleep(Duration::from_millis(20)).await;
    }
    // The browser paths too: the session is still there, and signing in works.
    let (url, ..) = setup.rp.authorize_url(&["openid"], true);
    let res = browse(app, &url).await;
    assert_eq!(res.status().as_u16(), 303, "authorize after recovery");
    let (browser, form) = &setup.login;
    let res = form
        .submit_with(
            browser,
            app,
            &[("email", EMAIL), ("password", PASSWORD)],
            None,
        )
        .await;
    assert_eq!(res.status().as_u16(), 303, "login after recovery");
    let elapsed = back.elapsed();
    println!(
        "recovery, {mode}: serving {:.0} ms after the database came back",
        elapsed.as_secs_f64() * 1000.0
    );
    assert!(elapsed < RECOVERY, "{mode}: recovery took {elapsed:?}");
}

async fn outage(mode: Mode, name: &str) {
    let Some(url) = postgres() else {
        return;
    };
    let proxy = Proxy::start(upstream(&url).await).await;
    let app = app_behind(&proxy).await;
    let setup = set_up(&app).await;
    proxy.set(mode);
    during(&app, &setup, name).await;
    after(&app, &setup, &proxy, name).await;
}

#[tokio::test]
async fn with_postgresql_refusing_connections_requests_get_a_fast_503_and_recover() {
    outage(Mode::Refuse, "refused").await;
}

#[tokio::test]
async fn with_postgresql_packets_dropped_requests_get_a_fast_503_and_recover() {
    outage(Mode::Blackhole, "blackholed").await;
}
