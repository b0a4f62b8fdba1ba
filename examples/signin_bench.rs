//! Sign-in throughput with each kind of authentication (issue 17): a whole authorization-code
//! flow per iteration — authorization request, login page, the sign-in, the code, the token
//! exchange — with a password, with a password and a TOTP code, and with a passkey alone.
//! `bench/second-factors.sh` provisions a server and runs this against it.
//!
//! ```text
//! signin_bench ISSUER CLIENT_ID CLIENT_SECRET REDIRECT_URI SCENARIO CONCURRENCY SECONDS [USERS]
//! ```
//! SCENARIO: `password` (user `pw@bench.test`), `totp` (users `totp{N}@bench.test`, enrolled
//! here through the pages; each may sign in at most three times per 30 s, the RFC 6238 steps
//! the server accepts and never twice; `TOTP_OFFSET=N` starts at `totp{N}`), `passkey` (user
//! `pk@bench.test` or `PASSKEY_USER`, its passkey registered
//! here; the software authenticator of the tests answers), `brokered` (through the upstream
//! provider `corp`, a second Castellan, with a password sign-in there in every flow) and
//! `brokered-sso` (the same with one session at the upstream, `UPSTREAM` its issuer, as when
//! the person is signed in there already). Every user's password is
//! `load-test-passphrase-42`. Prints one JSON line: flows per second, errors, latency
//! percentiles (ms).

// A benchmark driver, like the tests: a broken setup panics with its message.
#![allow(clippy::expect_used, clippy::unwrap_used)]

use std::collections::VecDeque;
use std::sync::{Arc, Mutex};
use std::time::{Duration, Instant};

use base64::Engine;
use base64::engine::general_purpose::URL_SAFE_NO_PAD;
use sha2::{Digest, Sha256};

#[path = "../tests/it/harness/authenticator.rs"]
#[allow(dead_code)]
mod authenticator;

use authenticator::SoftPasskey;

const PASSWORD: &str = "load-test-passphrase-42";
const WARMUP: Duration = Duration::from_secs(2);

type Res<T> = Result<T, String>;

struct Target {
    issuer: String,
    client_id: String,
    client_secret: String,
    redirect_uri: String,
}

fn client() -> reqwest::Client {
    reqwest::Client::builder()
        .cookie_store(true)
        .redirect(reqwest::redirect::Policy::none())
        .build()
        .expect("http client")
}

/// HTML character references (named ones askama writes, and numeric ones) decoded.
fn unescape(s: &str) -> String {
    let mut out = String::with_capacity(s.len());
    let mut rest = s;
    while let Some(at) = rest.find('&') {
        out.push_str(&rest[..at]);
        rest = &rest[at..];
        let Some(end) = rest.find(';') else { break };
        let entity = &rest[1..end];
        let c = match entity {
            "amp" => Some('&'),
            "lt" => Some('<'),
            "gt" => Some('>'),
            "quot" => Some('"'),
            "apos" => Some('\''),
            e if e.starts_with("#x") || e.starts_with("#X") => u32::from_str_radix(&e[2..], 16)
                .ok()
                .and_then(char::from_u32),
            e if e.starts_with('#') => e[1..].parse().ok().and_then(char::from_u32),
            _ => None,
        };
        match c {
            Some(c) => {
                out.push(c);
                rest = &rest[end + 1..];
            }
            None => {
                out.push('&');
                rest = &rest[1..];
            }
        }
    }
    out.push_str(rest);
    out
}

/// The value of the first input named `name` on a page.
fn field(html: &str, name: &str) -> Res<String> {
    let at = html
        .find(&format!("name=\"{name}\" value=\""))
        .ok_or_else(|| format!("no field {name}"))?;
    let rest = &html[at + name.len() + 15..];
    Ok(unescape(
        &rest[..rest.find('"').ok_or("unterminated value")?],
    ))
}

fn location(res: &reqwest::Response) -> Res<String> {
    res.headers()
        .get("location")
        .and_then(|v| v.to_str().ok())
        .map(str::to_owned)
        .ok_or_else(|| format!("no Location on {} from {}", res.status(), res.url().path()))
}

impl Target {
    fn abs(&self, path: &str) -> String {
        if path.starts_with("http") {
            path.to_owned()
        } else {
            format!("{}{}", self.issuer, path)
        }
    }

    async fn get(&self, c: &reqwest::Client, path: &str) -> Res<reqwest::Response> {
        c.get(self.abs(path))
            .send()
            .await
            .map_err(|e| e.to_string())
    }

    async fn post(
        &self,
        c: &reqwest::Client,
        path: &str,
        form: &[(&str, &str)],
    ) -> Res<reqwest::Response> {
        c.post(self.abs(path))
            .form(form)
            .send()
            .await
            .map_err(|e| e.to_string())
    }

    async fn page(&self, c: &reqwest::Client, path: &str) -> Res<String> {
        let res = self.get(c, path).await?;
        if res.status() != 200 {
            return Err(format!("GET {path}: {}", res.status()));
        }
        res.text().await.map_err(|e| e.to_string())
    }

    async fn password_login(&self, c: &reqwest::Client, email: &str) -> Res<String> {
        let login = self.page(c, "/login").await?;
        let csrf = field(&login, "csrf_token")?;
        let res = self
            .post(
                c,
                "/login",
                &[
                    ("csrf_token", &csrf),
                    ("email", email),
                    ("password", PASSWORD),
                ],
            )
            .await?;
        location(&res)
    }

    /// Enrols TOTP for a user (through the account pages); the seed.
    async fn enrol_totp(&self, email: &str) -> Res<Vec<u8>> {
        let c = client();
        self.password_login(&c, email).await?;
        let page = self.page(&c, "/account/mfa/totp").await?;
        let at = page
            .find("data-totp-secret=\"")
            .ok_or("no data-totp-secret")?;
        let rest = &page[at + 18..];
        let secret = base32(&rest[..rest.find('"').ok_or("unterminated")?]);
        let csrf = field(&page, "csrf_token")?;
        let step = unix() / 30;
        let res = self
            .post(
                &c,
                "/account/mfa/totp",
                &[("csrf_token", &csrf), ("code", &totp(&secret, step))],
            )
            .await?;
        let text = res.text().await.map_err(|e| e.to_string())?;
        if !text.contains("recovery-code") {
            return Err("TOTP enrolment failed".into());
        }
        Ok(secret)
    }

    /// Registers a passkey for a user (through the account pages).
    async fn register_passkey(&self, email: &str) -> Res<SoftPasskey> {
        let c = client();
        self.password_login(&c, email).await?;
        let page = self.page(&c, "/account/passkeys").await?;
        let csrf = field(&page, "csrf_token")?;
        let opts: serde_json::Value = self
            .post(&c, "/account/passkeys/options", &[("csrf_token", &csrf)])
            .await?
            .json()
            .await
            .map_err(|e| e.to_string())?;
        let (key, answer) = SoftPasskey::create(&opts, &self.issuer);
        let res = self
            .post(
                &c,
                "/account/passkeys",
                &[
                    ("csrf_token", &csrf),
                    ("name", "bench"),
                    ("credential", &answer),
                ],
            )
            .await?;
        if res.status() != 200 {
            return Err(format!("passkey registration: {}", res.status()));
        }
        Ok(key)
    }

    /// The sign-in on a login page (its CSRF token and `return_to`): where the browser goes
    /// next.
    async fn sign_in(
        &self,
        c: &reqwest::Client,
        how: &How,
        csrf: &str,
        return_to: &str,
    ) -> Res<String> {
        let (csrf, return_to) = (csrf.to_owned(), return_to.to_owned());
        Ok(match how {
            How::Password => {
                let res = self
                    .post(
                        c,
                        "/login",
                        &[
                            ("csrf_token", &csrf),
                            ("return_to", &return_to),
                            ("email", "pw@bench.test"),
                            ("password", PASSWORD),
                        ],
                    )
                    .await?;
                location(&res)?
            }
            How::Totp(pool) => {
                let (email, code) = pool.take().await?;
                let res = self
                    .post(
                        c,
                        "/login",
                        &[
                            ("csrf_token", &csrf),
                            ("return_to", &return_to),
                            ("email", &email),
                            ("password", PASSWORD),
                        ],
                    )
                    .await?;
                let step_url = location(&res)?;
                let step = self.page(c, &step_url).await?;
                let csrf = field(&step, "csrf_token")?;
                let res = self
                    .post(
                        c,
                        "/login/second-factor",
                        &[
                            ("csrf_token", &csrf),
                            ("return_to", &return_to),
                            ("code", &code),
                        ],
                    )
                    .await?;
                location(&res)?
            }
            How::Brokered(session) => {
                let start = format!(
                    "/login/upstream/corp?return_to={}",
                    url::form_urlencoded::byte_serialize(return_to.as_bytes()).collect::<String>()
                );
                let res = self.get(c, &start).await?;
                let mut loc = location(&res)?;
                let idp = session.clone().unwrap_or_else(client);
                for _ in 0..6 {
                    if loc.starts_with(&self.issuer) {
                        break;
                    }
                    let res = idp.get(&loc).send().await.map_err(|e| e.to_string())?;
                    if res.status() == 200 {
                        // The upstream's login page.
                        let origin = url::Url::parse(&loc).map_err(|e| e.to_string())?;
                        let page = res.text().await.map_err(|e| e.to_string())?;
                        let res = idp
                            .post(origin.join("/login").map_err(|e| e.to_string())?)
                            .form(&[
                                ("csrf_token", field(&page, "csrf_token")?),
                                ("return_to", field(&page, "return_to")?),
                                ("email", "pw@bench.test".into()),
                                ("password", PASSWORD.into()),
                            ])
                            .send()
                            .await
                            .map_err(|e| e.to_string())?;
                        loc = origin
                            .join(&location(&res)?)
                            .map_err(|e| e.to_string())?
                            .to_string();
                    } else {
                        let origin = url::Url::parse(&loc).map_err(|e| e.to_string())?;
                        loc = origin
                            .join(&location(&res)?)
                            .map_err(|e| e.to_string())?
                            .to_string();
                    }
                }
                let res = c.get(&loc).send().await.map_err(|e| e.to_string())?;
                if res.status() != 303 {
                    return Err(format!("the callback answered {}", res.status()));
                }
                location(&res)?
            }
            How::Passkey(key) => {
                let opts: serde_json::Value = self
                    .post(c, "/login/passkey/options", &[("csrf_token", &csrf)])
                    .await?
                    .json()
                    .await
                    .map_err(|e| e.to_string())?;
                let challenge = opts["publicKey"]["challenge"]
                    .as_str()
                    .ok_or("no challenge")?;
                // The counter stays 0 (as synced passkeys do): parallel uses are all valid.
                let answer = key.assertion(challenge, &self.issuer);
                let res = self
                    .post(
                        c,
                        "/login/passkey",
                        &[
                            ("csrf_token", &csrf),
                            ("return_to", &return_to),
                            ("credential", &answer),
                        ],
                    )
                    .await?;
                location(&res)?
            }
        })
    }

    /// One whole flow; `sign_in` runs on the login page (its CSRF token and `return_to`) and
    /// returns where the browser goes next.
    async fn flow(&self, how: &How, whole: bool) -> Res<()> {
        let c = client();
        if !whole {
            // The sign-in alone: the login page, the sign-in, a session.
            let login = self.page(&c, "/login").await?;
            let csrf = field(&login, "csrf_token")?;
            let next = self.sign_in(&c, how, &csrf, "").await?;
            return if next == "/" {
                Ok(())
            } else {
                Err(format!("the sign-in went to {next}"))
            };
        }
        let verifier = URL_SAFE_NO_PAD.encode(rand_bytes(32));
        let challenge = URL_SAFE_NO_PAD.encode(Sha256::digest(verifier.as_bytes()));
        let query = url::form_urlencoded::Serializer::new(String::new())
            .append_pair("response_type", "code")
            .append_pair("client_id", &self.client_id)
            .append_pair("redirect_uri", &self.redirect_uri)
            .append_pair("scope", "openid")
            .append_pair("state", "s")
            .append_pair("nonce", "n")
            .append_pair("code_challenge", &challenge)
            .append_pair("code_challenge_method", "S256")
            .finish();
        let res = self.get(&c, &format!("/oauth2/authorize?{query}")).await?;
        let login_url = location(&res)?;
        let login = self.page(&c, &login_url).await?;
        let csrf = field(&login, "csrf_token")?;
        let return_to = field(&login, "return_to")?;
        let next = self.sign_in(&c, how, &csrf, &return_to).await?;
        let res = self.get(&c, &next).await?;
        let back = location(&res)?;
        let code = url::Url::parse(&back)
            .map_err(|e| e.to_string())?
            .query_pairs()
            .find(|(k, _)| k == "code")
            .map(|(_, v)| v.into_owned())
            .ok_or_else(|| format!("no code in {back}"))?;
        let res = c
            .post(self.abs("/oauth2/token"))
            .basic_auth(&self.client_id, Some(&self.client_secret))
            .form(&[
                ("grant_type", "authorization_code"),
                ("code", code.as_str()),
                ("redirect_uri", self.redirect_uri.as_str()),
                ("code_verifier", verifier.as_str()),
            ])
            .send()
            .await
            .map_err(|e| e.to_string())?;
        if res.status() != 200 {
            return Err(format!("token: {}", res.status()));
        }
        Ok(())
    }
}

enum How {
    Password,
    Totp(Arc<TotpPool>),
    Passkey(Arc<SoftPasskey>),
    /// Through the upstream provider `corp` (a second Castellan): with `Some`, the browser's
    /// session at the upstream (signed in once, shared); with `None`, a password sign-in at
    /// the upstream in every flow.
    Brokered(Option<reqwest::Client>),
}

/// TOTP users and the last time step each has used: a code is taken for a step the server
/// accepts now (the current one ±1) and above the user's last, as the server demands.
struct TotpPool {
    users: Mutex<VecDeque<(String, Vec<u8>, i64)>>,
}

impl TotpPool {
    async fn take(&self) -> Res<(String, String)> {
        let deadline = Instant::now() + Duration::from_secs(35);
        loop {
            let now = unix() / 30;
            {
                let mut users = self.users.lock().map_err(|_| "poisoned")?;
                for _ in 0..users.len() {
                    let Some((email, seed, last)) = users.pop_front() else {
                        break;
                    };
                    let step = (last + 1).max(now - 1);
                    if step <= now + 1 {
                        let code = totp(&seed, step);
                        users.push_back((email.clone(), seed, step));
                        return Ok((email, code));
                    }
                    users.push_back((email, seed, last));
                }
            }
            if Instant::now() > deadline {
                return Err("no TOTP user has a step left".into());
            }
            tokio::time::sleep(Duration::from_millis(50)).await;
        }
    }
}

fn unix() -> i64 {
    std::time::SystemTime::now()
        .duration_since(std::time::UNIX_EPOCH)
        .map(|d| d.as_secs() as i64)
        .unwrap_or(0)
}

fn rand_bytes(n: usize) -> Vec<u8> {
    let mut v = vec![0u8; n];
    aws_lc_rs::rand::fill(&mut v).expect("random");
    v
}

fn base32(text: &str) -> Vec<u8> {
    const ALPHABET: &[u8] = b"ABCDEFGHIJKLMNOPQRSTUVWXYZ234567";
    let (mut buf, mut bits, mut out) = (0u64, 0, Vec::new());
    for c in text.bytes().filter(|c| *c != b'=') {
        let Some(v) = ALPHABET.iter().position(|a| *a == c.to_ascii_uppercase()) else {
            continue;
        };
        buf = (buf << 5) | v as u64;
        bits += 5;
        if bits >= 8 {
            bits -= 8;
            out.push((buf >> bits) as u8);
        }
    }
    out
}

/// RFC 6238 (SHA-1, 6 digits) for a time step.
fn totp(secret: &[u8], step: i64) -> String {
    use aws_lc_rs::hmac;
    let key = hmac::Key::new(hmac::HMAC_SHA1_FOR_LEGACY_USE_ONLY, secret);
    let mac = hmac::sign(&key, &step.to_be_bytes());
    let m = mac.as_ref();
    let o = (m[19] & 0x0f) as usize;
    let bin = u32::from_be_bytes([m[o] & 0x7f, m[o + 1], m[o + 2], m[o + 3]]);
    format!("{:06}", bin % 1_000_000)
}

fn percentile(sorted: &[f64], p: f64) -> f64 {
    if sorted.is_empty() {
        return 0.0;
    }
    let i = ((sorted.len() as f64 - 1.0) * p).round() as usize;
    sorted[i.min(sorted.len() - 1)]
}

#[tokio::main(flavor = "current_thread")]
async fn main() {
    // reqwest has rustls without a provider of its own (the server brings aws-lc-rs).
    let _ = rustls::crypto::aws_lc_rs::default_provider().install_default();
    let args: Vec<String> = std::env::args().collect();
    if args.len() < 8 {
        eprintln!(
            "usage: signin_bench ISSUER CLIENT_ID CLIENT_SECRET REDIRECT_URI SCENARIO CONCURRENCY SECONDS [USERS]"
        );
        std::process::exit(2);
    }
    let target = Arc::new(Target {
        issuer: args[1].clone(),
        client_id: args[2].clone(),
        client_secret: args[3].clone(),
        redirect_uri: args[4].clone(),
    });
    let scenario = args[5].as_str();
    let concurrency: usize = args[6].parse().unwrap_or(32);
    let seconds: u64 = args[7].parse().unwrap_or(10);
    let users: usize = args.get(8).and_then(|a| a.parse().ok()).unwrap_or(256);
    let how = match scenario {
        "password" => How::Password,
        "totp" => {
            let mut pool = VecDeque::new();
            // TOTP_OFFSET=N: users totp{N}.. (a second run needs users not enrolled yet).
            let offset: usize = std::env::var("TOTP_OFFSET")
                .ok()
                .and_then(|v| v.parse().ok())
                .unwrap_or(0);
            for i in offset..offset + users {
                let email = format!("totp{i}@bench.test");
                match target.enrol_totp(&email).await {
                    Ok(seed) => pool.push_back((email, seed, unix() / 30)),
                    Err(e) => {
                        eprintln!("enrol {email}: {e}");
                        std::process::exit(1);
                    }
                }
            }
            How::Totp(Arc::new(TotpPool {
                users: Mutex::new(pool),
            }))
        }
        "passkey" => match target
            .register_passkey(
                &std::env::var("PASSKEY_USER").unwrap_or_else(|_| "pk@bench.test".into()),
            )
            .await
        {
            Ok(k) => How::Passkey(Arc::new(k)),
            Err(e) => {
                eprintln!("register the passkey: {e}");
                std::process::exit(1);
            }
        },
        "brokered" => How::Brokered(None),
        "brokered-sso" => {
            // Signed in at the upstream once (UPSTREAM names it); every flow reuses that session.
            let upstream = std::env::var("UPSTREAM").expect("UPSTREAM: the upstream's issuer");
            let idp = client();
            let login = idp
                .get(format!("{upstream}/login"))
                .send()
                .await
                .expect("the upstream's login page")
                .text()
                .await
                .expect("a page");
            let res = idp
                .post(format!("{upstream}/login"))
                .form(&[
                    ("csrf_token", field(&login, "csrf_token").expect("csrf")),
                    ("email", "pw@bench.test".into()),
                    ("password", PASSWORD.into()),
                ])
                .send()
                .await
                .expect("sign in at the upstream");
            assert_eq!(res.status(), 303, "signed in at the upstream");
            How::Brokered(Some(idp))
        }
        other => {
            eprintln!("unknown scenario {other}");
            std::process::exit(2);
        }
    };
    let how = Arc::new(how);
    // SIGNIN_ONLY=1: the sign-in alone (login page to session), no authorization request.
    let whole = std::env::var("SIGNIN_ONLY").map_or(true, |v| v.is_empty() || v == "0");
    let start = Instant::now();
    let measure_from = start + WARMUP;
    let end = measure_from + Duration::from_secs(seconds);
    let latencies = Arc::new(Mutex::new(Vec::new()));
    let errors = Arc::new(Mutex::new((0u64, None::<String>)));
    let mut tasks = Vec::new();
    for _ in 0..concurrency {
        let (target, how, latencies, errors) = (
            target.clone(),
            how.clone(),
            latencies.clone(),
            errors.clone(),
        );
        tasks.push(tokio::spawn(async move {
            while Instant::now() < end {
                let t0 = Instant::now();
                let r = target.flow(&how, whole).await;
                let t1 = Instant::now();
                if t0 < measure_from || t1 > end {
                    continue;
                }
                match r {
                    Ok(()) => {
                        if let Ok(mut l) = latencies.lock() {
                            l.push((t1 - t0).as_secs_f64() * 1000.0);
                        }
                    }
                    Err(e) => {
                        if let Ok(mut er) = errors.lock() {
                            er.0 += 1;
                            er.1.get_or_insert(e);
                        }
                    }
                }
            }
        }));
    }
    for t in tasks {
        let _ = t.await;
    }
    let mut l = latencies.lock().map(|l| l.clone()).unwrap_or_default();
    l.sort_by(|a, b| a.total_cmp(b));
    let (errs, first_error) = errors
        .lock()
        .map(|e| (e.0, e.1.clone()))
        .unwrap_or((0, None));
    println!(
        "{}",
        serde_json::json!({
            "scenario": scenario,
            "measured": if whole { "whole code flow" } else { "sign-in only" },
            "concurrency": concurrency,
            "seconds": seconds,
            "flows": l.len(),
            "flows_per_sec": (l.len() as f64 / seconds as f64 * 10.0).round() / 10.0,
            "errors": errs,
            "first_error": first_error,
            "p50_ms": (percentile(&l, 0.5) * 10.0).round() / 10.0,
            "p95_ms": (percentile(&l, 0.95) * 10.0).round() / 10.0,
            "p99_ms": (percentile(&l, 0.99) * 10.0).round() / 10.0,
        })
    );
}
