//! `/metrics`: the Prometheus text format, request counts by route pattern, logins, tokens,
//! live sessions, pool use, the bearer token and the separate listener.

use std::collections::{BTreeMap, HashMap};

use castellan::config::Secret;

use crate::harness::forms::Form;
use crate::harness::rp::{Auth, PASSWORD, confidential_rp, create_client, create_user, sign_in};
use crate::harness::{TestApp, castellan_with, spawn_app, spawn_app_with, stderr};

const TOKEN: &str = "scrape-token-of-some-length";

/// One sample line: `name{labels} value`.
#[derive(Debug)]
struct Sample {
    name: String,
    labels: BTreeMap<String, String>,
    value: f64,
}

/// A parsed scrape: the `# TYPE` of each family and every sample.
#[derive(Debug)]
struct Scrape {
    types: HashMap<String, String>,
    samples: Vec<Sample>,
    text: String,
}

impl Scrape {
    /// Parses the text format strictly: every line is a comment or a sample, and every sample
    /// belongs to a family whose `# TYPE` came before it.
    fn parse(text: &str) -> Scrape {
        let mut types = HashMap::new();
        let mut samples = Vec::new();
        for line in text.lines() {
            if line.is_empty() || line.starts_with("# HELP ") {
                continue;
            }
            if let Some(rest) = line.strip_prefix("# TYPE ") {
                let (name, kind) = rest.split_once(' ').expect("# TYPE name kind");
                assert!(
                    matches!(kind, "counter" | "gauge" | "histogram"),
                    "type of {name}: {kind}"
                );
                assert!(
                    types.insert(name.to_owned(), kind.to_owned()).is_none(),
                    "{name} typed twice"
                );
                continue;
            }
            assert!(!line.starts_with('#'), "unknown comment: {line}");
            let (series, value) = line.rsplit_once(' ').expect("`series value`");
            let value: f64 = value.parse().unwrap_or_else(|_| panic!("value of {line}"));
            let (name, labels) = match series.split_once('{') {
                None => (series.to_owned(), BTreeMap::new()),
                Some((name, rest)) => {
                    let body = rest.strip_suffix('}').expect("labels end with }");
                    (name.to_owned(), parse_labels(body))
                }
            };
            let family = ["_bucket", "_sum", "_count"]
                .iter()
                .find_map(|s| {
                    name.strip_suffix(s)
                        .filter(|f| types.get(*f).is_some_and(|t| t == "histogram"))
                })
                .unwrap_or(&name);
            assert!(
                types.contains_key(family),
                "{name} has no # TYPE line before it"
            );
            samples.push(Sample {
                name,
                labels,
                value,
            });
        }
        Scrape {
            types,
            samples,
            text: text.to_owned(),
        }
    }

    /// The value of the sample with exactly these labels.
    fn get(&self, name: &str, labels: &[(&str, &str)]) -> Option<f64> {
        let want: BTreeMap<String, String> = labels
            .iter()
            .map(|(k, v)| (k.to_string(), v.to_string()))
            .collect();
        self.samples
            .iter()
            .find(|s| s.name == name && s.labels == want)
            .map(|s| s.value)
    }

    fn value(&self, name: &str, labels: &[(&str, &str)]) -> f64 {
        self.get(name, labels)
            .unwrap_or_else(|| panic!("no {name}{labels:?} in:\n{}", self.text))
    }

    fn kind(&self, family: &str) -> &str {
        self.types.get(family).map(String::as_str).unwrap_or("none")
    }
}

fn parse_labels(body: &str) -> BTreeMap<String, String> {
    let mut labels = BTreeMap::new();
    let mut chars = body.chars().peekable();
    while chars.peek().is_some() {
        let name: String = chars.by_ref().take_while(|c| *c != '=').collect();
        assert_eq!(chars.next(), Some('"'), "label {name} value is quoted");
        let mut value = String::new();
        loop {
            match chars.next().expect("closing quote") {
                '"' => break,
                '\\' => match chars.next() {
                    Some('n') => value.push('\n'),
                    Some(c) => value.push(c),
                    None => panic!("dangling escape"),
                },
                c => value.push(c),
            }
        }
        labels.insert(name, value);
        if chars.peek() == Some(&',') {
            chars.next();
        }
    }
    labels
}

/// GET `/metrics` on `base` with an optional bearer token.
async fn get_metrics(base: &str, token: Option<&str>) -> reqwest::Response {
    let mut req = reqwest::Client::new().get(format!("{base}/metrics"));
    if let Some(t) = token {
        req = req.header("authorization", format!("Bearer {t}"));
    }
    req.send().await.expect("GET /metrics")
}

async fn scrape_at(base: &str, token: Option<&str>) -> Scrape {
    let res = get_metrics(base, token).await;
    assert_eq!(res.status(), 200);
    assert_eq!(
        res.headers()["content-type"],
        "text/plain; version=0.0.4; charset=utf-8"
    );
    Scrape::parse(&res.text().await.expect("body"))
}

async fn scrape(app: &TestApp) -> Scrape {
    scrape_at(&app.address, None).await
}

#[tokio::test]
async fn requests_are_counted_by_route_pattern_method_and_status_with_a_latency_histogram() {
    let app = spawn_app().await;
    for _ in 0..3 {
        assert_eq!(app.get("/healthz").await.status(), 200);
    }
    assert_eq!(app.get("/login").await.status(), 200);
    let refused = crate::harness::rp::token_request(
        &app,
        Auth::Basic("nobody", "nothing"),
        &[("grant_type", "client_credentials")],
    )
    .await;
    assert_eq!(refused.status, 401);
    let wrong_method = app
        .client
        .delete(app.url("/healthz"))
        .send()
        .await
        .expect("DELETE");
    assert_eq!(wrong_method.status(), 404);
    let odd_method = app
        .client
        .request(
            reqwest::Method::from_bytes(b"BREW").expect("method"),
            app.url("/healthz"),
        )
        .send()
        .await
        .expect("BREW");
    let odd_status = odd_method.status().as_u16().to_string();

    let m = scrape(&app).await;
    assert_eq!(m.kind("castellan_http_requests_total"), "counter");
    assert_eq!(
        m.kind("castellan_http_request_duration_seconds"),
        "histogram"
    );
    let req = |route, method, status| {
        m.value(
            "castellan_http_requests_total",
            &[("route", route), ("method", method), ("status", status)],
        )
    };
    assert_eq!(req("/healthz", "GET", "200"), 3.0);
    assert_eq!(req("/login", "GET", "200"), 1.0);
    assert_eq!(req("/oauth2/token", "POST", "401"), 1.0);
    // A known path with a method it does not serve keeps its pattern.
    assert_eq!(req("/healthz", "DELETE", "404"), 1.0);
    // Methods outside the standard list share one label.
    assert_eq!(req("/healthz", "other", &odd_status), 1.0);

    // The histogram: cumulative buckets from 1 ms to 10 s, +Inf equal to _count.
    let labels = [("route", "/healthz"), ("method", "GET")];
    let bucket = |le| {
        m.value(
            "castellan_http_request_duration_seconds_bucket",
            &[labels[0], labels[1], ("le", le)],
        )
    };
    let les = [
        "0.001", "0.0025", "0.005", "0.01", "0.025", "0.05", "0.1", "0.25", "0.5", "1", "2.5", "5",
        "10", "+Inf",
    ];
    let counts: Vec<f64> = les.iter().map(|le| bucket(le)).collect();
    assert!(
        counts.windows(2).all(|w| w[0] <= w[1]),
        "buckets are cumulative: {counts:?}"
    );
    assert_eq!(counts[les.len() - 1], 3.0);
    assert_eq!(
        m.value("castellan_http_request_duration_seconds_count", &labels),
        3.0
    );
    let sum = m.value("castellan_http_request_duration_seconds_sum", &labels);
    assert!(sum > 0.0 && sum < 30.0, "{sum}");
}

#[tokio::test]
async fn an_unknown_path_is_labelled_unmatched_not_with_its_raw_path() {
    let app = spawn_app().await;
    for path in ["/no/such/page-1", "/static/no/such", "/wp-admin.php?x=1"] {
        assert_eq!(app.get(path).await.status(), 404);
    }
    let m = scrape(&app).await;
    assert_eq!(
        m.value(
            "castellan_http_requests_total",
            &[("route", "unmatched"), ("method", "GET"), ("status", "404")]
        ),
        3.0
    );
    let routes: Vec<&String> = m
        .samples
        .iter()
        .filter_map(|s| s.labels.get("route"))
        .collect();
    assert!(
        routes
            .iter()
            .all(|r| !r.contains("no/such") && !r.contains("static") && !r.contains("wp-admin")),
        "a raw path became a label: {routes:?}"
    );
}

#[tokio::test]
async fn logins_through_the_pages_are_counted_by_outcome_and_the_session_is_counted_live() {
    let app = spawn_app_with(|s| s.login.max_failures = 2).await;
    create_user(&app, "ada@example.com", PASSWORD);
    create_user(&app, "bob@example.com", PASSWORD);
    let rp = confidential_rp(&app, &[]).await;

    let login = |email: &'static str, password: &'static str| {
        let app = &app;
        async move {
            let page = app.get("/login").await.text().await.expect("login page");
            let res = Form::with_action(&page, "/login")
                .submit(app, &[("email", email), ("password", password)], None)
                .await;
            assert_eq!(res.status(), 200, "a failed login re-renders the page");
        }
    };
    // bob: a wrong password, a second one locks the account, then even the right one is refused.
    login("bob@example.com", "wrong password").await;
    let m = scrape(&app).await;
    let logins = |m: &Scrape, outcome| m.value("castellan_logins_total", &[("outcome", outcome)]);
    assert_eq!(m.kind("castellan_logins_total"), "counter");
    assert_eq!(logins(&m, "bad_credentials"), 1.0);
    assert_eq!(logins(&m, "success"), 0.0);
    login("bob@example.com", "wrong password").await;
    login("bob@example.com", PASSWORD).await;
    let m = scrape(&app).await;
    assert_eq!(logins(&m, "bad_credentials"), 2.0);
    assert_eq!(logins(&m, "locked"), 1.0);
    assert_eq!(m.value("castellan_active_sessions", &[]), 0.0);

    // ada signs in through the real pages and the code is exchanged.
    sign_in(&app, &rp, "ada@example.com", &["openid"], true).await;
    let m = scrape(&app).await;
    assert_eq!(logins(&m, "success"), 1.0);
    assert_eq!(logins(&m, "bad_credentials"), 2.0);
    assert_eq!(m.kind("castellan_active_sessions"), "gauge");
    assert_eq!(m.value("castellan_active_sessions", &[]), 1.0);
    assert_eq!(
        m.value(
            "castellan_tokens_issued_total",
            &[("grant_type", "authorization_code")]
        ),
        1.0
    );

    // Counted in the database at scrape time: once the session has expired it is gone.
    app.clock
        .advance_secs(app.state.settings.session.ttl_secs as i64 + 1);
    let m = scrape(&app).await;
    assert_eq!(m.value("castellan_active_sessions", &[]), 0.0);
}

#[tokio::test]
async fn a_client_credentials_token_is_counted_by_its_grant_type() {
    let app = spawn_app().await;
    let (id, secret) = create_client(
        &app,
        &["--grant-type", "client_credentials", "--scope", "reports"],
    );
    let secret = secret.expect("secret");
    let form = [("grant_type", "client_credentials"), ("scope", "reports")];
    let raw = crate::harness::rp::token_request(&app, Auth::Basic(&id, &secret), &form).await;
    assert_eq!(raw.status, 200, "{}", raw.text);
    // Refused requests issue nothing: a wrong secret, a scope the client may not have.
    let raw = crate::harness::rp::token_request(&app, Auth::Basic(&id, "wrong"), &form).await;
    assert_eq!(raw.status, 401);
    let raw = crate::harness::rp::token_request(
        &app,
        Auth::Basic(&id, &secret),
        &[("grant_type", "client_credentials"), ("scope", "admin")],
    )
    .await;
    raw.assert_oauth_error(400, "invalid_scope");

    let m = scrape(&app).await;
    assert_eq!(m.kind("castellan_tokens_issued_total"), "counter");
    let issued = |grant| m.value("castellan_tokens_issued_total", &[("grant_type", grant)]);
    assert_eq!(issued("client_credentials"), 1.0);
    assert_eq!(issued("authorization_code"), 0.0);
    assert_eq!(issued("refresh_token"), 0.0);
}

#[tokio::test]
async fn pool_use_and_build_info_are_exported() {
    let app = spawn_app().await;
    let m = scrape(&app).await;
    assert_eq!(m.kind("castellan_db_pool_connections"), "gauge");
    let idle = m.value("castellan_db_pool_connections", &[("state", "idle")]);
    let in_use = m.value("castellan_db_pool_connections", &[("state", "in_use")]);
    let max = m.value("castellan_db_pool_max_connections", &[]);
    assert_eq!(max, f64::from(app.state.settings.database.pool_size()));
    assert!(
        idle + in_use >= 1.0 && idle + in_use <= max,
        "{idle} {in_use}"
    );
    assert_eq!(
        m.value(
            "castellan_build_info",
            &[("version", env!("CARGO_PKG_VERSION"))]
        ),
        1.0
    );
    assert!(m.value("process_start_time_seconds", &[]) > 1.6e9);
}

#[tokio::test]
async fn two_servers_in_one_process_keep_their_own_counters() {
    let a = spawn_app().await;
    let b = spawn_app().await;
    for _ in 0..2 {
        a.get("/healthz").await;
    }
    let healthz = [("route", "/healthz"), ("method", "GET"), ("status", "200")];
    assert_eq!(
        scrape(&a)
            .await
            .value("castellan_http_requests_total", &healthz),
        2.0
    );
    assert_eq!(
        scrape(&b)
            .await
            .get("castellan_http_requests_total", &healthz),
        None
    );
}

#[tokio::test]
async fn a_bearer_token_guards_the_scrape_when_configured() {
    let app = spawn_app_with(|s| s.metrics.bearer_token = Some(Secret::new(TOKEN))).await;

    let none = get_metrics(&app.address, None).await;
    assert_eq!(none.status(), 401);
    let challenge = none.headers()["www-authenticate"]
        .to_str()
        .expect("ascii")
        .to_owned();
    assert!(challenge.starts_with("Bearer"), "{challenge}");
    assert!(none.text().await.expect("body").is_empty());

    let wrong = get_metrics(&app.address, Some("scrape-token-of-some-lengthX")).await;
    assert_eq!(wrong.status(), 401);
    assert!(wrong.headers().contains_key("www-authenticate"));
    let basic = reqwest::Client::new()
        .get(app.url("/metrics"))
        .header("authorization", format!("Basic {TOKEN}"))
        .send()
        .await
        .expect("GET");
    assert_eq!(basic.status(), 401, "only the Bearer scheme");

    let m = scrape_at(&app.address, Some(TOKEN)).await;
    assert_eq!(
        m.value(
            "castellan_http_requests_total",
            &[("route", "/metrics"), ("method", "GET"), ("status", "401")]
        ),
        3.0
    );
    let lower = reqwest::Client::new()
        .get(app.url("/metrics"))
        .header("authorization", format!("bearer {TOKEN}"))
        .send()
        .await
        .expect("GET");
    assert_eq!(lower.status(), 200, "the scheme is case-insensitive");
}

#[tokio::test]
async fn a_metrics_listener_of_its_own_serves_metrics_and_the_main_listener_does_not() {
    let app = spawn_app_with(|s| s.metrics.listen = Some("127.0.0.1:0".into())).await;
    let port = app.metrics_port.expect("a metrics listener");
    assert_ne!(port, app.port);
    let metrics_base = format!("http://127.0.0.1:{port}");

    assert_eq!(app.get("/metrics").await.status(), 404);
    assert_eq!(app.get("/healthz").await.status(), 200);
    let other = reqwest::get(format!("{metrics_base}/healthz"))
        .await
        .expect("GET");
    assert_eq!(
        other.status(),
        404,
        "the metrics listener serves only /metrics"
    );

    let m = scrape_at(&metrics_base, None).await;
    // The main listener's requests are in the same registry.
    assert_eq!(
        m.value(
            "castellan_http_requests_total",
            &[("route", "unmatched"), ("method", "GET"), ("status", "404")]
        ),
        1.0
    );
    assert_eq!(
        m.value(
            "castellan_http_requests_total",
            &[("route", "/healthz"), ("method", "GET"), ("status", "200")]
        ),
        1.0
    );
}

#[tokio::test]
async fn disabled_metrics_are_not_served() {
    let app = spawn_app_with(|s| s.metrics.enabled = false).await;
    assert_eq!(app.get("/metrics").await.status(), 404);
}

#[test]
fn a_bad_metrics_listen_address_stops_start_up_with_one_line_naming_the_key() {
    let dir = tempfile::tempdir().expect("tempdir");
    let db = format!("sqlite://{}?mode=rwc", dir.path().join("c.db").display());
    let out = castellan_with(
        &db,
        &["serve"],
        None,
        &[("CASTELLAN_METRICS__LISTEN", "localhost")],
    );
    let err = stderr(&out);
    assert_eq!(out.status.code(), Some(2), "{err}");
    assert!(
        err.contains("metrics.listen") && err.contains("localhost"),
        "{err}"
    );
    assert_eq!(err.trim().lines().count(), 1, "{err}");
}
