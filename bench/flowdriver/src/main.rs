//! A compiled driver for the three scenarios of `../shared/bench/bench.py` that its Python
//! driver runs itself: `refresh`, `flow_sso` and `flow_login`.
//!
//! The Python driver spends 0.5–0.7 of a core at Castellan's rates, on a 2-core machine where
//! the server under test shares those cores. This driver does the same work per iteration
//! (same requests, same PKCE, same form handling, same timing window and statistics) on one
//! thread for a fraction of that. `bench/flowdriver/bench-python` swaps it into `bench.py`, so
//! the peers are measured with it too.
//!
//! Input: one JSON object on stdin (`Config`). Output: one JSON object on stdout with the
//! fields `bench.py`'s `timed_workers` reports. Errors: a message on stderr, exit status 1.

mod html;

use std::collections::HashMap;
use std::sync::{Arc, Mutex};
use std::time::{Duration, Instant};

use base64::Engine;
use reqwest::header::{HeaderValue, AUTHORIZATION, LOCATION};
use reqwest::{Client, Method, StatusCode};
use serde::Deserialize;
use serde_json::{json, Value};
use sha2::Digest;
use tokio::io::AsyncReadExt;
use url::Url;

const MAX_ITERS_PER_WORKER: u64 = 1_000_000;
const MAX_STEPS: usize = 12;

#[derive(Deserialize, Clone)]
struct Config {
    scenario: String,
    concurrency: usize,
    warmup: f64,
    duration: f64,
    authorization_endpoint: String,
    token_endpoint: String,
    client_id: String,
    client_secret: String,
    redirect_uri: String,
    username: String,
    password: String,
    scope: String,
    rt_scope: String,
    #[serde(default)]
    rt_auth_params: Vec<(String, String)>,
    adapter: String,
    login_field: String,
    password_field: String,
    consent_name: String,
    consent_value: String,
}

type Res<T> = Result<T, String>;

fn b64url(bytes: &[u8]) -> String {
    base64::engine::general_purpose::URL_SAFE_NO_PAD.encode(bytes)
}

fn random(n: usize) -> Res<Vec<u8>> {
    let mut v = vec![0u8; n];
    getrandom::getrandom(&mut v).map_err(|e| e.to_string())?;
    Ok(v)
}

/// Every URL the driver follows must be on loopback, as in `bench.py`.
fn assert_loopback(u: &Url) -> Res<()> {
    match u.host() {
        Some(url::Host::Ipv4(a)) if a.is_loopback() => Ok(()),
        Some(url::Host::Ipv6(a)) if a.is_loopback() => Ok(()),
        Some(url::Host::Domain("localhost")) => Ok(()),
        _ => Err(format!("refusing a non-loopback URL: {u}")),
    }
}

// ------------------------------------------------------------------------------ cookies

/// One worker's cookie jar: name, value and path (RFC 6265 §5.1.4 path matching). The host is
/// always the one server under test, so domains are not tracked.
#[derive(Default)]
struct Jar(Mutex<Vec<(String, String, String)>>);

impl Jar {
    fn clear(&self) {
        if let Ok(mut c) = self.0.lock() {
            c.clear();
        }
    }
}

fn default_path(url: &Url) -> String {
    let p = url.path();
    match p.rfind('/') {
        Some(0) | None => "/".into(),
        Some(i) => p[..i].into(),
    }
}

fn path_matches(request: &str, cookie: &str) -> bool {
    request == cookie
        || (request.starts_with(cookie)
            && (cookie.ends_with('/') || request.as_bytes().get(cookie.len()) == Some(&b'/')))
}

impl reqwest::cookie::CookieStore for Jar {
    fn set_cookies(&self, headers: &mut dyn Iterator<Item = &HeaderValue>, url: &Url) {
        let Ok(mut jar) = self.0.lock() else { return };
        for h in headers {
            let Ok(s) = h.to_str() else { continue };
            let mut parts = s.split(';');
            let Some((name, value)) = parts.next().and_then(|nv| nv.split_once('=')) else {
                continue;
            };
            let (name, value) = (name.trim().to_owned(), value.trim().to_owned());
            let mut path = default_path(url);
            let mut delete = false;
            for attr in parts {
                let (k, v) = attr.split_once('=').unwrap_or((attr, ""));
                match k.trim().to_ascii_lowercase().as_str() {
                    "path" if v.trim().starts_with('/') => path = v.trim().to_owned(),
                    "max-age" => delete |= v.trim().parse::<i64>().is_ok_and(|n| n <= 0),
                    // Deletions are written with a date in the past (1970); a real expiry
                    // date in these runs is always in the future.
                    "expires" => delete |= v.contains("1970"),
                    _ => {}
                }
            }
            jar.retain(|(n, _, p)| !(n == &name && p == &path));
            if !delete {
                jar.push((name, value, path));
            }
        }
    }

    fn cookies(&self, url: &Url) -> Option<HeaderValue> {
        let jar = self.0.lock().ok()?;
        let v: Vec<String> = jar
            .iter()
            .filter(|(_, _, p)| path_matches(url.path(), p))
            .map(|(n, v, _)| format!("{n}={v}"))
            .collect();
        if v.is_empty() {
            None
        } else {
            HeaderValue::from_str(&v.join("; ")).ok()
        }
    }
}

// ------------------------------------------------------------------------------ the flow

struct Ctx {
    cfg: Config,
    basic: HeaderValue,
    authorize: Url,
    token: Url,
}

struct Worker {
    http: Client,
    jar: Arc<Jar>,
    counts: HashMap<&'static str, u64>,
    refresh_token: String,
}

impl Worker {
    fn new() -> Res<Self> {
        let jar = Arc::new(Jar::default());
        let http = Client::builder()
            .cookie_provider(jar.clone())
            .redirect(reqwest::redirect::Policy::none())
            .pool_max_idle_per_host(1)
            .timeout(Duration::from_secs(30))
            .build()
            .map_err(|e| e.to_string())?;
        Ok(Self {
            http,
            jar,
            counts: HashMap::new(),
            refresh_token: String::new(),
        })
    }

    fn count(&mut self, what: &'static str) {
        *self.counts.entry(what).or_insert(0) += 1;
    }
}

/// A submission the adapter makes for a page: kind, method, URL, form fields.
type Submission = (&'static str, Method, Url, Vec<(String, String)>);

/// `FormAdapter.next_submission` of `adapters.py`: a login form (both fields present), else
/// a consent button with the configured name and value; hidden inputs are carried over.
fn next_submission(cfg: &Config, body: &str, page: &Url) -> Res<Submission> {
    let forms = html::parse_forms(body);
    let carry = |f: &html::Form| -> Vec<(String, String)> {
        f.inputs
            .iter()
            .filter(|i| {
                html::attr(i, "type")
                    .unwrap_or("text")
                    .eq_ignore_ascii_case("hidden")
            })
            .filter_map(|i| {
                let n = html::attr(i, "name").filter(|n| !n.is_empty())?;
                Some((
                    n.to_owned(),
                    html::attr(i, "value").unwrap_or("").to_owned(),
                ))
            })
            .collect()
    };
    let target = |f: &html::Form| -> Res<(Method, Url)> {
        let url = if f.action.is_empty() {
            page.clone()
        } else {
            page.join(&f.action).map_err(|e| e.to_string())?
        };
        let method = Method::from_bytes(f.method.as_bytes()).map_err(|e| e.to_string())?;
        Ok((method, url))
    };
    let set = |fields: &mut Vec<(String, String)>, k: &str, v: &str| {
        fields.retain(|(n, _)| n != k);
        fields.push((k.to_owned(), v.to_owned()));
    };
    for f in &forms {
        let has = |n: &str| f.inputs.iter().any(|i| html::attr(i, "name") == Some(n));
        if has(&cfg.password_field) && has(&cfg.login_field) {
            let mut fields = carry(f);
            set(&mut fields, &cfg.login_field, &cfg.username);
            set(&mut fields, &cfg.password_field, &cfg.password);
            if let Some(b) = f
                .buttons
                .iter()
                .find(|b| html::attr(b, "name").is_some_and(|n| !n.is_empty()))
            {
                let (n, v) = (
                    html::attr(b, "name").unwrap_or(""),
                    html::attr(b, "value").unwrap_or(""),
                );
                set(&mut fields, n, v);
            }
            let (m, u) = target(f)?;
            return Ok(("login", m, u, fields));
        }
    }
    for f in &forms {
        for b in &f.buttons {
            if html::attr(b, "name") == Some(cfg.consent_name.as_str())
                && html::attr(b, "value").unwrap_or("") == cfg.consent_value
            {
                let mut fields = carry(f);
                set(&mut fields, &cfg.consent_name, &cfg.consent_value);
                let (m, u) = target(f)?;
                return Ok(("consent", m, u, fields));
            }
        }
    }
    let head: String = body.chars().take(200).collect();
    Err(format!(
        "no login or consent form recognised at {page} ({} forms, first 200 chars: {head:?})",
        forms.len()
    ))
}

/// `GlewlwydAdapter.handle_redirect`: Glewlwyd's login page is a JavaScript app; make the JSON
/// calls it makes and return the URL it sends the browser back to.
async fn glewlwyd_redirect(ctx: &Ctx, w: &mut Worker, loc: &Url) -> Res<Option<Url>> {
    if !loc.path().ends_with("/login.html") {
        return Ok(None);
    }
    let q: HashMap<String, String> = loc.query_pairs().into_owned().collect();
    let get = |k: &str| q.get(k).cloned().ok_or(format!("login.html without {k}"));
    let (client_id, scope, cb) = (get("client_id")?, get("scope")?, get("callback_url")?);
    let host = loc.host_str().ok_or("login.html without a host")?;
    let api = match loc.port() {
        Some(port) => format!("{}://{host}:{port}/api", loc.scheme()),
        None => format!("{}://{host}/api", loc.scheme()),
    };
    let grant_url = format!("{api}/auth/grant/{}/{}", quote(&client_id), quote(&scope));

    async fn grant_state(w: &mut Worker, url: &str) -> Res<(StatusCode, Option<Value>)> {
        w.count("requests");
        let r = w.http.get(url).send().await.map_err(|e| e.to_string())?;
        let status = r.status();
        let body = r.bytes().await.map_err(|e| e.to_string())?;
        Ok((
            status,
            if status == StatusCode::OK {
                serde_json::from_slice(&body).ok()
            } else {
                None
            },
        ))
    }
    let (mut status, mut g) = grant_state(w, &grant_url).await?;
    if status != StatusCode::OK {
        w.count("requests");
        w.count("login");
        let body = json!({"username": ctx.cfg.username, "password": ctx.cfg.password});
        let st = send_json(w, Method::POST, format!("{api}/auth/"), body).await?;
        if st != StatusCode::OK {
            return Err(format!("glewlwyd login failed: HTTP {st}"));
        }
        (status, g) = grant_state(w, &grant_url).await?;
        if status != StatusCode::OK {
            return Err(format!("glewlwyd grant state: HTTP {status}"));
        }
    }
    let all_granted = g
        .as_ref()
        .and_then(|g| g.get("scope"))
        .and_then(Value::as_array)
        .is_some_and(|s| {
            s.iter()
                .all(|x| x.get("granted").and_then(Value::as_bool) == Some(true))
        });
    if !all_granted {
        w.count("requests");
        w.count("consent");
        let url = format!("{api}/auth/grant/{}", quote(&client_id));
        let st = send_json(w, Method::PUT, url, json!({"scope": scope})).await?;
        if st != StatusCode::OK {
            return Err(format!("glewlwyd grant failed: HTTP {st}"));
        }
    }
    let next = format!("{cb}{}g_continue", if cb.contains('?') { "&" } else { "?" });
    Url::parse(&next).map(Some).map_err(|e| e.to_string())
}

/// Sends a JSON body and reads the answer to its end; returns the status.
async fn send_json(w: &Worker, method: Method, url: String, body: Value) -> Res<StatusCode> {
    let r = w
        .http
        .request(method, url)
        .header("content-type", "application/json")
        .body(body.to_string())
        .send()
        .await
        .map_err(|e| e.to_string())?;
    let status = r.status();
    let _ = r.bytes().await;
    Ok(status)
}

/// Python's `urllib.parse.quote` with its default `safe='/'`.
fn quote(s: &str) -> String {
    let mut out = String::new();
    for b in s.bytes() {
        if b.is_ascii_alphanumeric() || matches!(b, b'_' | b'.' | b'-' | b'~' | b'/') {
            out.push(b as char);
        } else {
            out.push_str(&format!("%{b:02X}"));
        }
    }
    out
}

/// Authorization code + PKCE (S256) through the adapter, then the token request; returns the
/// token response. The same steps as `code_flow` in `bench.py`.
async fn code_flow(
    ctx: &Ctx,
    w: &mut Worker,
    scope: &str,
    extra: &[(String, String)],
) -> Res<Value> {
    let cfg = &ctx.cfg;
    let verifier = b64url(&random(32)?);
    let challenge = b64url(&sha2::Sha256::digest(verifier.as_bytes()));
    let state = b64url(&random(12)?);
    let nonce = b64url(&random(12)?);
    let mut url = ctx.authorize.clone();
    {
        let mut q = url.query_pairs_mut();
        for (k, v) in [
            ("response_type", "code"),
            ("client_id", cfg.client_id.as_str()),
            ("redirect_uri", cfg.redirect_uri.as_str()),
            ("scope", scope),
            ("state", state.as_str()),
            ("nonce", nonce.as_str()),
            ("code_challenge", challenge.as_str()),
            ("code_challenge_method", "S256"),
        ] {
            if !extra.iter().any(|(e, _)| e == k) {
                q.append_pair(k, v);
            }
        }
        for (k, v) in extra {
            q.append_pair(k, v);
        }
    }
    let mut method = Method::GET;
    let mut form: Option<Vec<(String, String)>> = None;
    let mut code = None;
    for _ in 0..MAX_STEPS {
        assert_loopback(&url)?;
        w.count("requests");
        let mut req = w.http.request(method.clone(), url.clone());
        if let Some(f) = &form {
            let body = url::form_urlencoded::Serializer::new(String::new())
                .extend_pairs(f.iter())
                .finish();
            req = req
                .header("content-type", "application/x-www-form-urlencoded")
                .body(body);
        }
        let r = req
            .send()
            .await
            .map_err(|e| format!("{method} {url}: {e}"))?;
        let status = r.status();
        if status.is_redirection() {
            let loc = r
                .headers()
                .get(LOCATION)
                .and_then(|l| l.to_str().ok())
                .ok_or("a redirect without Location")?
                .to_owned();
            let _ = r.bytes().await;
            let mut loc = url.join(&loc).map_err(|e| e.to_string())?;
            if loc.as_str().starts_with(&cfg.redirect_uri) {
                let q: HashMap<String, String> = loc.query_pairs().into_owned().collect();
                if q.contains_key("error") {
                    return Err(format!("authorization error: {q:?}"));
                }
                if q.get("state") != Some(&state) {
                    return Err("state mismatch".into());
                }
                code = q.get("code").cloned();
                break;
            }
            if cfg.adapter == "glewlwyd" {
                if let Some(next) = glewlwyd_redirect(ctx, w, &loc).await? {
                    loc = next;
                }
            }
            (url, method, form) = (loc, Method::GET, None);
            continue;
        }
        let body = r.text().await.map_err(|e| e.to_string())?;
        if status != StatusCode::OK {
            let head: String = body.chars().take(200).collect();
            return Err(format!("HTTP {status} at {url}: {head:?}"));
        }
        let (kind, m, u, fields) = next_submission(cfg, &body, &url)?;
        w.count(kind);
        if m == Method::GET {
            let mut u = u;
            u.query_pairs_mut().extend_pairs(fields.iter());
            (url, method, form) = (u, m, None);
        } else {
            (url, method, form) = (u, m, Some(fields));
        }
    }
    let code = code.ok_or(format!("no code after {MAX_STEPS} steps"))?;
    w.count("requests");
    let tok = token_request(
        ctx,
        w,
        &[
            ("grant_type", "authorization_code"),
            ("code", &code),
            ("redirect_uri", &cfg.redirect_uri),
            ("code_verifier", &verifier),
        ],
    )
    .await?;
    match tok {
        (StatusCode::OK, j) if j.get("access_token").is_some() => Ok(j),
        (s, j) => Err(format!("token endpoint {s}: {j}")),
    }
}

async fn token_request(ctx: &Ctx, w: &Worker, form: &[(&str, &str)]) -> Res<(StatusCode, Value)> {
    let body = url::form_urlencoded::Serializer::new(String::new())
        .extend_pairs(form.iter())
        .finish();
    let r = w
        .http
        .post(ctx.token.clone())
        .header(AUTHORIZATION, ctx.basic.clone())
        .header("content-type", "application/x-www-form-urlencoded")
        .body(body)
        .send()
        .await
        .map_err(|e| e.to_string())?;
    let status = r.status();
    let bytes = r.bytes().await.map_err(|e| e.to_string())?;
    Ok((
        status,
        serde_json::from_slice(&bytes).unwrap_or(Value::Null),
    ))
}

// ------------------------------------------------------------------------------ scenarios

#[derive(Default)]
struct Tally {
    lats: Vec<f64>,
    errors: u64,
    samples: Vec<String>,
    rotated: u64,
    reacquired: u64,
}

async fn setup(ctx: Arc<Ctx>) -> Res<Worker> {
    let mut w = Worker::new()?;
    match ctx.cfg.scenario.as_str() {
        "refresh" => {
            let cfg = &ctx.cfg;
            let tok = code_flow(&ctx, &mut w, &cfg.rt_scope, &cfg.rt_auth_params).await?;
            let Some(rt) = tok.get("refresh_token").and_then(Value::as_str) else {
                return Err(format!(
                    "no refresh_token issued for scope {:?}: keys {:?}",
                    cfg.rt_scope,
                    tok.as_object()
                        .map(|o| o.keys().cloned().collect::<Vec<_>>())
                ));
            };
            w.refresh_token = rt.to_owned();
        }
        "flow_sso" => {
            code_flow(&ctx, &mut w, &ctx.cfg.scope, &[]).await?;
        }
        _ => {}
    }
    w.counts.clear();
    Ok(w)
}

/// One iteration; `Ok(true)` is a success, an `Err` is a counted error.
async fn iterate(ctx: &Ctx, w: &mut Worker, t: &mut Tally) -> Res<()> {
    match ctx.cfg.scenario.as_str() {
        "refresh" => {
            let rt = w.refresh_token.clone();
            let (status, j) = token_request(
                ctx,
                w,
                &[("grant_type", "refresh_token"), ("refresh_token", &rt)],
            )
            .await?;
            if status == StatusCode::OK && j.get("access_token").is_some() {
                if let Some(new) = j.get("refresh_token").and_then(Value::as_str) {
                    if new != rt {
                        w.refresh_token = new.to_owned();
                        t.rotated += 1;
                    }
                }
                return Ok(());
            }
            // The chain broke: get a new refresh token (counted as an error, not timed).
            t.reacquired += 1;
            let cfg = &ctx.cfg;
            let tok = code_flow(ctx, w, &cfg.rt_scope, &cfg.rt_auth_params).await?;
            if let Some(new) = tok.get("refresh_token").and_then(Value::as_str) {
                w.refresh_token = new.to_owned();
            }
            Err(format!("refresh failed {status}: {j}"))
        }
        "flow_sso" => code_flow(ctx, w, &ctx.cfg.scope, &[]).await.map(drop),
        _ => {
            w.jar.clear();
            code_flow(ctx, w, &ctx.cfg.scope, &[]).await.map(drop)
        }
    }
}

async fn run_worker(
    ctx: Arc<Ctx>,
    mut w: Worker,
    warm_end: Instant,
    end: Instant,
) -> (Tally, HashMap<&'static str, u64>) {
    let mut tally = Tally::default();
    for _ in 0..MAX_ITERS_PER_WORKER {
        let t = Instant::now();
        if t >= end {
            break;
        }
        let r = iterate(&ctx, &mut w, &mut tally).await;
        let dt = t.elapsed().as_secs_f64();
        if t >= warm_end {
            match r {
                Ok(()) => tally.lats.push(dt),
                Err(e) => {
                    tally.errors += 1;
                    if tally.samples.len() < 5 {
                        tally.samples.push(e.chars().take(300).collect());
                    }
                }
            }
        }
    }
    (tally, w.counts)
}

/// `pct` of `bench.py`: linear interpolation between closest ranks.
fn pct(sorted: &[f64], p: f64) -> Option<f64> {
    if sorted.is_empty() {
        return None;
    }
    let k = (sorted.len() - 1) as f64 * p / 100.0;
    let lo = k as usize;
    let hi = (lo + 1).min(sorted.len() - 1);
    Some(sorted[lo] + (sorted[hi] - sorted[lo]) * (k - lo as f64))
}

/// This process's CPU time (user + system), from /proc/self/stat in clock ticks (100 Hz).
fn cpu_seconds() -> f64 {
    std::fs::read_to_string("/proc/self/stat")
        .ok()
        .and_then(|s| {
            let after = s.rsplit_once(')')?.1;
            let f: Vec<&str> = after.split_whitespace().collect();
            let ticks = f.get(11)?.parse::<f64>().ok()? + f.get(12)?.parse::<f64>().ok()?;
            Some(ticks / 100.0)
        })
        .unwrap_or(f64::NAN)
}

async fn run(cfg: Config) -> Res<Value> {
    let basic_raw = format!(
        "{}:{}",
        url::form_urlencoded::byte_serialize(cfg.client_id.as_bytes()).collect::<String>(),
        url::form_urlencoded::byte_serialize(cfg.client_secret.as_bytes()).collect::<String>()
    );
    let basic = HeaderValue::from_str(&format!(
        "Basic {}",
        base64::engine::general_purpose::STANDARD.encode(basic_raw)
    ))
    .map_err(|e| e.to_string())?;
    let authorize = Url::parse(&cfg.authorization_endpoint).map_err(|e| e.to_string())?;
    let token = Url::parse(&cfg.token_endpoint).map_err(|e| e.to_string())?;
    for u in [
        &authorize,
        &token,
        &Url::parse(&cfg.redirect_uri).map_err(|e| e.to_string())?,
    ] {
        assert_loopback(u)?;
    }
    if !matches!(cfg.scenario.as_str(), "refresh" | "flow_sso" | "flow_login") {
        return Err(format!("unknown scenario {}", cfg.scenario));
    }
    let (conc, warmup, duration) = (cfg.concurrency.max(1), cfg.warmup, cfg.duration);
    let ctx = Arc::new(Ctx {
        cfg,
        basic,
        authorize,
        token,
    });

    // Untimed, one worker after another: Glewlwyd answers 500 to some of 32 code flows
    // started in the same millisecond (its SQLite store), which would fail the scenario
    // before it is measured.
    let mut workers = Vec::with_capacity(conc);
    for _ in 0..conc {
        workers.push(setup(ctx.clone()).await?);
    }

    let t0 = Instant::now();
    let warm_end = t0 + Duration::from_secs_f64(warmup);
    let end = warm_end + Duration::from_secs_f64(duration);
    let cpu0 = cpu_seconds();
    let mut set = tokio::task::JoinSet::new();
    for w in workers {
        set.spawn(run_worker(ctx.clone(), w, warm_end, end));
    }
    let mut all = Tally::default();
    let mut counts: HashMap<&'static str, u64> = HashMap::new();
    while let Some(r) = set.join_next().await {
        let (t, c) = r.map_err(|e| e.to_string())?;
        all.lats.extend(t.lats);
        all.errors += t.errors;
        all.rotated += t.rotated;
        all.reacquired += t.reacquired;
        for s in t.samples {
            if all.samples.len() < 5 {
                all.samples.push(s);
            }
        }
        for (k, v) in c {
            *counts.entry(k).or_insert(0) += v;
        }
    }
    let cpu1 = cpu_seconds();
    let wall = Instant::now()
        .max(end)
        .duration_since(warm_end)
        .as_secs_f64();
    all.lats.sort_by(f64::total_cmp);
    let ms = |v: Option<f64>| v.map(|x| x * 1000.0);
    let mean = (!all.lats.is_empty()).then(|| all.lats.iter().sum::<f64>() / all.lats.len() as f64);
    let mut res = json!({
        "requests_ok": all.lats.len(),
        "rps_ok": all.lats.len() as f64 / duration,
        "p50_ms": ms(pct(&all.lats, 50.0)),
        "p99_ms": ms(pct(&all.lats, 99.0)),
        "mean_ms": ms(mean),
        "errors": all.errors,
        "error_samples": all.samples,
        "client_cpu_s": cpu1 - cpu0,
        "client_wall_s": warmup + wall,
        "driver": "bench/flowdriver (Rust, one thread)",
    });
    if ctx.cfg.scenario == "refresh" {
        res["rt_rotated_responses"] = all.rotated.into();
        res["chains_reacquired"] = all.reacquired.into();
        res["note"] =
            "one refresh-token rotation chain per worker, one keep-alive connection each".into();
    } else {
        res["counts_incl_warmup"] = json!(counts);
        res["note"] = if ctx.cfg.scenario == "flow_sso" {
            "per worker: own cookie jar + one keep-alive connection; SSO session established in setup"
        } else {
            "per worker: own cookie jar + one keep-alive connection; cookie jar cleared each iteration -> password login every flow"
        }
        .into();
    }
    Ok(res)
}

fn main() {
    let rt = match tokio::runtime::Builder::new_current_thread()
        .enable_all()
        .build()
    {
        Ok(rt) => rt,
        Err(e) => {
            eprintln!("flowdriver: cannot start a runtime: {e}");
            std::process::exit(1);
        }
    };
    let out = rt.block_on(async {
        let mut input = String::new();
        tokio::io::stdin()
            .read_to_string(&mut input)
            .await
            .map_err(|e| e.to_string())?;
        let cfg: Config = serde_json::from_str(&input).map_err(|e| format!("bad config: {e}"))?;
        run(cfg).await
    });
    match out {
        Ok(v) => println!("{v}"),
        Err(e) => {
            eprintln!("flowdriver: {e}");
            std::process::exit(1);
        }
    }
}
