//! A small W3C WebDriver client (JSON over HTTP, with `reqwest`) driving Debian's headless
//! Chromium through `chromedriver`, for the end-to-end tests that need a real browser.
//!
//! [`Browser::start`] returns `None` when `/usr/bin/chromium` or `/usr/bin/chromedriver` is
//! missing, so `cargo test` on a bare machine skips those tests instead of failing — except
//! under CI (`CI` set to anything but `false` or `0`), where a browser test that cannot run
//! fails: `.ci/run` installs the browser, so its absence there is a broken run. Every
//! method panics with the current URL and the page's text when a step fails (and saves a
//! screenshot when [`Browser::screenshot_on_failure`] named a file), so a failed run says
//! what the browser was showing.

use std::io::{Read, Write};
use std::net::TcpStream;
use std::os::unix::process::CommandExt;
use std::path::{Path, PathBuf};
use std::process::{Child, Command, Stdio};
use std::time::{Duration, Instant};

use base64::Engine;
use serde_json::{Value, json};

pub const CHROMIUM: &str = "/usr/bin/chromium";
pub const CHROMEDRIVER: &str = "/usr/bin/chromedriver";

/// The W3C key under which an element reference travels (WebDriver §12.1).
const ELEMENT_KEY: &str = "element-6066-11e4-a52e-4f735466cecf";

/// How often the `wait_for_*` helpers look again.
const POLL: Duration = Duration::from_millis(100);

/// A WebDriver element reference.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct ElementId(pub String);

/// A WebDriver error answer (`value.error`, `value.message`) or a transport failure.
#[derive(Debug, Clone)]
pub struct DriverError {
    pub error: String,
    pub message: String,
}

impl std::fmt::Display for DriverError {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        write!(f, "{}: {}", self.error, self.message)
    }
}

pub struct Browser {
    http: reqwest::Client,
    /// `http://127.0.0.1:PORT` of chromedriver.
    driver_url: String,
    driver_port: u16,
    session_id: String,
    driver: Child,
    /// Chromium's profile, removed on drop.
    profile: tempfile::TempDir,
    failure_shot: Option<PathBuf>,
}

impl Browser {
    /// Starts chromedriver on a free port and a headless Chromium session; `None` (with a
    /// message) when the browser or the driver is not installed, outside CI. Under CI, and
    /// whenever they are installed but do not start, the test fails.
    pub async fn start() -> Option<Browser> {
        super::repeat_panic_messages();
        if !Path::new(CHROMIUM).exists() || !Path::new(CHROMEDRIVER).exists() {
            if under_ci() {
                panic!(
                    "{CHROMIUM} or {CHROMEDRIVER} is missing, and CI must run the browser test \
                     (.ci/run installs Debian's chromium and chromium-driver)"
                );
            }
            println!(
                "chromium/chromedriver not found: SKIPPING the browser test \
                 (install Debian's chromium and chromium-driver to run it; under CI=true it fails)"
            );
            return None;
        }
        let port = free_port();
        let driver = Command::new(CHROMEDRIVER)
            .arg(format!("--port={port}"))
            .stdin(Stdio::null())
            .stdout(Stdio::null())
            .stderr(Stdio::null())
            // Its own process group: Drop can end chromedriver and every Chromium it started,
            // and nothing else.
            .process_group(0)
            .spawn()
            .unwrap_or_else(|e| panic!("start {CHROMEDRIVER}: {e}"));
        let driver_url = format!("http://127.0.0.1:{port}");
        super::tls_provider();
        let http = reqwest::Client::builder()
            .timeout(Duration::from_secs(60))
            .build()
            .expect("http client");
        let profile = tempfile::Builder::new()
            .prefix("castellan-chromium-")
            .tempdir()
            .expect("a temporary Chromium profile");
        let mut browser = Browser {
            http,
            driver_url,
            driver_port: port,
            session_id: String::new(),
            driver,
            profile,
            failure_shot: None,
        };
        browser.wait_until_driver_ready().await;
        browser.new_session().await;
        Some(browser)
    }

    async fn wait_until_driver_ready(&mut self) {
        let deadline = Instant::now() + Duration::from_secs(20);
        loop {
            if let Ok(Some(status)) = self.driver.try_wait() {
                panic!("chromedriver exited at start-up: {status}");
            }
            let ready = match self
                .http
                .get(format!("{}/status", self.driver_url))
                .timeout(Duration::from_secs(2))
                .send()
                .await
            {
                Ok(res) => res
                    .json::<Value>()
                    .await
                    .is_ok_and(|v| v["value"]["ready"] == json!(true)),
                Err(_) => false,
            };
            if ready {
                return;
            }
            assert!(
                Instant::now() < deadline,
                "chromedriver did not answer GET /status with ready=true within 20 s"
            );
            tokio::time::sleep(POLL).await;
        }
    }

    async fn new_session(&mut self) {
        let profile = self.profile.path().display().to_string();
        let caps = json!({
            "capabilities": {
                "alwaysMatch": {
                    "browserName": "chrome",
                    "pageLoadStrategy": "normal",
                    "goog:chromeOptions": {
                        "binary": CHROMIUM,
                        "args": [
                            "--headless",
                            "--no-sandbox",
                            "--disable-gpu",
                            "--disable-quic",
                            "--no-first-run",
                            "--disable-background-networking",
                            "--disable-component-update",
                            "--disable-sync",
                            "--disable-dev-shm-usage",
                            "--window-size=1280,1000",
                            format!("--user-data-dir={profile}"),
                        ],
                    },
                },
            },
        });
        let value = self
            .raw("POST", "/session", Some(caps))
            .await
            .unwrap_or_else(|e| panic!("WebDriver new session failed: {e}"));
        self.session_id = value["sessionId"]
            .as_str()
            .unwrap_or_else(|| panic!("new session answer without sessionId: {value}"))
            .to_owned();
        self.cmd(
            "POST",
            "/timeouts",
            Some(json!({"implicit": 0, "pageLoad": 30_000, "script": 10_000})),
        )
        .await
        .unwrap_or_else(|e| panic!("set timeouts: {e}"));
    }

    /// One WebDriver request on the driver (path from the root); the answer's `value`.
    async fn raw(
        &self,
        method: &str,
        path: &str,
        body: Option<Value>,
    ) -> Result<Value, DriverError> {
        let url = format!("{}{}", self.driver_url, path);
        let req = match method {
            "GET" => self.http.get(&url),
            "DELETE" => self.http.delete(&url),
            _ => self
                .http
                .post(&url)
                .json(&body.unwrap_or_else(|| json!({}))),
        };
        let res = req.send().await.map_err(|e| DriverError {
            error: "transport".into(),
            message: format!("{method} {path}: {e}"),
        })?;
        let status = res.status();
        let text = res.text().await.unwrap_or_default();
        let v: Value = serde_json::from_str(&text).map_err(|e| DriverError {
            error: "bad answer".into(),
            message: format!("{method} {path}: {status}, not JSON ({e}): {text}"),
        })?;
        let value = v.get("value").cloned().unwrap_or(Value::Null);
        match value.get("error").and_then(Value::as_str) {
            Some(error) if !status.is_success() || value.get("message").is_some() => {
                Err(DriverError {
                    error: error.to_owned(),
                    message: value["message"].as_str().unwrap_or_default().to_owned(),
                })
            }
            _ if !status.is_success() => Err(DriverError {
                error: status.to_string(),
                message: text,
            }),
            _ => Ok(value),
        }
    }

    /// A command on this session (`path` after `/session/{id}`).
    async fn cmd(
        &self,
        method: &str,
        path: &str,
        body: Option<Value>,
    ) -> Result<Value, DriverError> {
        self.raw(
            method,
            &format!("/session/{}{}", self.session_id, path),
            body,
        )
        .await
    }

    /// A failure message with what the browser shows (URL, page text), after saving the
    /// failure screenshot if one was asked for; callers panic with it.
    pub async fn failure(&self, what: &str) -> String {
        let url = self
            .cmd("GET", "/url", None)
            .await
            .ok()
            .and_then(|v| v.as_str().map(str::to_owned))
            .unwrap_or_else(|| "?".into());
        let text = self
            .try_text("body")
            .await
            .unwrap_or_else(|| "(no page text)".into());
        let mut shot = String::new();
        if let Some(path) = &self.failure_shot
            && self.try_screenshot(path).await.is_ok()
        {
            shot = format!("\nscreenshot: {}", path.display());
        }
        format!("{what}\nbrowser at: {url}{shot}\npage text:\n{text}")
    }

    /// Asserts in the browser's terms: on failure, panics with [`Browser::failure`].
    pub async fn check(&self, ok: bool, what: &str) {
        if !ok {
            panic!("{}", self.failure(what).await);
        }
    }

    /// Where [`Browser::failure`] saves a screenshot (parent directories are created).
    pub fn screenshot_on_failure(&mut self, path: impl Into<PathBuf>) {
        self.failure_shot = Some(path.into());
    }

    /// Navigates and waits for the page load (WebDriver "Navigate To").
    pub async fn goto(&self, url: &str) {
        if let Err(e) = self.cmd("POST", "/url", Some(json!({ "url": url }))).await {
            panic!("{}", self.failure(&format!("navigate to {url}: {e}")).await);
        }
    }

    pub async fn current_url(&self) -> String {
        match self.cmd("GET", "/url", None).await {
            Ok(Value::String(u)) => u,
            Ok(other) => panic!("GET url answered {other}"),
            Err(e) => panic!("GET url: {e}"),
        }
    }

    /// The first element matching the CSS selector, if any.
    pub async fn try_find(&self, css: &str) -> Option<ElementId> {
        let v = self
            .cmd(
                "POST",
                "/element",
                Some(json!({"using": "css selector", "value": css})),
            )
            .await
            .ok()?;
        v[ELEMENT_KEY].as_str().map(|id| ElementId(id.to_owned()))
    }

    /// Every element matching the CSS selector.
    pub async fn find_all(&self, css: &str) -> Vec<ElementId> {
        match self
            .cmd(
                "POST",
                "/elements",
                Some(json!({"using": "css selector", "value": css})),
            )
            .await
        {
            Ok(Value::Array(items)) => items
                .iter()
                .filter_map(|v| v[ELEMENT_KEY].as_str())
                .map(|id| ElementId(id.to_owned()))
                .collect(),
            Ok(other) => panic!("find elements answered {other}"),
            Err(e) => panic!(
                "{}",
                self.failure(&format!("find elements {css:?}: {e}")).await
            ),
        }
    }

    /// The first element matching the CSS selector; fails the test when there is none.
    pub async fn find(&self, css: &str) -> ElementId {
        match self.try_find(css).await {
            Some(id) => id,
            None => panic!(
                "{}",
                self.failure(&format!("no element matches {css:?}")).await
            ),
        }
    }

    /// Waits until an element matches (pages that are still loading after a click).
    pub async fn wait_for(&self, css: &str, timeout: Duration) -> ElementId {
        let deadline = Instant::now() + timeout;
        loop {
            if let Some(id) = self.try_find(css).await {
                return id;
            }
            if Instant::now() >= deadline {
                panic!(
                    "{}",
                    self.failure(&format!("no element matched {css:?} within {timeout:?}"))
                        .await
                );
            }
            tokio::time::sleep(POLL).await;
        }
    }

    /// Clears the field and types `text` into it.
    pub async fn type_into(&self, css: &str, text: &str) {
        let el = self.find(css).await;
        let base = format!("/element/{}", el.0);
        if let Err(e) = self.cmd("POST", &format!("{base}/clear"), None).await {
            panic!("{}", self.failure(&format!("clear {css:?}: {e}")).await);
        }
        if let Err(e) = self
            .cmd(
                "POST",
                &format!("{base}/value"),
                Some(json!({ "text": text })),
            )
            .await
        {
            panic!("{}", self.failure(&format!("type into {css:?}: {e}")).await);
        }
    }

    /// Clicks the element (a navigation it starts is waited for by the driver).
    pub async fn click(&self, css: &str) {
        let el = self.find(css).await;
        if let Err(e) = self
            .cmd("POST", &format!("/element/{}/click", el.0), None)
            .await
        {
            panic!("{}", self.failure(&format!("click {css:?}: {e}")).await);
        }
    }

    /// The element's text, or `None` when nothing matches or the page changed under the
    /// read (a navigation that a click started can replace the document between finding the
    /// element and reading it: "stale element reference").
    pub async fn try_text(&self, css: &str) -> Option<String> {
        let el = self.try_find(css).await?;
        self.cmd("GET", &format!("/element/{}/text", el.0), None)
            .await
            .ok()?
            .as_str()
            .map(str::to_owned)
    }

    /// The rendered text of the first element matching the selector. A document replaced
    /// between finding the element and reading it (a navigation still landing) is looked
    /// up again, a few times, before the test fails.
    pub async fn text(&self, css: &str) -> String {
        let mut attempts = 0;
        loop {
            attempts += 1;
            let el = self.find(css).await;
            match self
                .cmd("GET", &format!("/element/{}/text", el.0), None)
                .await
            {
                Ok(Value::String(t)) => return t,
                Ok(other) => panic!("element text answered {other}"),
                Err(e) if e.error == "stale element reference" && attempts < 5 => {
                    tokio::time::sleep(POLL).await;
                }
                Err(e) => panic!("{}", self.failure(&format!("text of {css:?}: {e}")).await),
            }
        }
    }

    /// An attribute of the first element matching the selector (`None` when absent).
    pub async fn attribute(&self, css: &str, name: &str) -> Option<String> {
        let el = self.find(css).await;
        match self
            .cmd("GET", &format!("/element/{}/attribute/{name}", el.0), None)
            .await
        {
            Ok(Value::String(v)) => Some(v),
            Ok(_) => None,
            Err(e) => panic!(
                "{}",
                self.failure(&format!("attribute {name} of {css:?}: {e}"))
                    .await
            ),
        }
    }

    pub async fn page_source(&self) -> String {
        match self.cmd("GET", "/source", None).await {
            Ok(Value::String(s)) => s,
            Ok(other) => panic!("page source answered {other}"),
            Err(e) => panic!("page source: {e}"),
        }
    }

    async fn try_screenshot(&self, path: &Path) -> Result<(), String> {
        let v = self
            .cmd("GET", "/screenshot", None)
            .await
            .map_err(|e| e.to_string())?;
        let b64 = v
            .as_str()
            .ok_or_else(|| format!("screenshot answered {v}"))?;
        let png = base64::engine::general_purpose::STANDARD
            .decode(b64)
            .map_err(|e| format!("screenshot is not base64: {e}"))?;
        if let Some(dir) = path.parent() {
            std::fs::create_dir_all(dir).map_err(|e| format!("{}: {e}", dir.display()))?;
        }
        std::fs::write(path, png).map_err(|e| format!("{}: {e}", path.display()))
    }

    /// Saves a PNG of the viewport (parent directories are created).
    pub async fn screenshot(&self, path: impl AsRef<Path>) {
        let path = path.as_ref();
        if let Err(e) = self.try_screenshot(path).await {
            panic!("screenshot to {}: {e}", path.display());
        }
    }

    /// Adds a WebDriver virtual authenticator (W3C WebAuthn Level 2 §11.3): a platform
    /// authenticator (CTAP2, internal) with discoverable credentials and user verification,
    /// consenting and verifying on its own. Returns its id.
    pub async fn add_virtual_authenticator(&self) -> String {
        let value = self
            .cmd(
                "POST",
                "/webauthn/authenticator",
                Some(json!({
                    "protocol": "ctap2",
                    "transport": "internal",
                    "hasResidentKey": true,
                    "hasUserVerification": true,
                    "isUserConsenting": true,
                    "isUserVerified": true,
                })),
            )
            .await
            .unwrap_or_else(|e| panic!("add a virtual authenticator: {e}"));
        value
            .as_str()
            .unwrap_or_else(|| panic!("the authenticator id: {value}"))
            .to_owned()
    }

    /// The credentials a virtual authenticator holds (§11.7).
    pub async fn virtual_credentials(&self, authenticator: &str) -> Vec<Value> {
        let value = self
            .cmd(
                "GET",
                &format!("/webauthn/authenticator/{authenticator}/credentials"),
                None,
            )
            .await
            .unwrap_or_else(|e| panic!("read the virtual authenticator's credentials: {e}"));
        value.as_array().cloned().unwrap_or_default()
    }

    /// Deletes every cookie of the current page's site (the browser signed out).
    pub async fn delete_cookies(&self) {
        self.cmd("DELETE", "/cookie", None)
            .await
            .unwrap_or_else(|e| panic!("delete the cookies: {e}"));
    }

    /// Polls the current URL until `predicate` holds; returns it.
    pub async fn wait_for_url(
        &self,
        predicate: impl Fn(&str) -> bool,
        timeout: Duration,
        what: &str,
    ) -> String {
        let deadline = Instant::now() + timeout;
        loop {
            let url = self.current_url().await;
            if predicate(&url) {
                return url;
            }
            if Instant::now() >= deadline {
                panic!(
                    "{}",
                    self.failure(&format!(
                        "waited {timeout:?} for the browser to reach {what}"
                    ))
                    .await
                );
            }
            tokio::time::sleep(POLL).await;
        }
    }
}

impl Drop for Browser {
    fn drop(&mut self) {
        // Drop cannot await: end the session with a plain blocking request (Chromium quits),
        // then end chromedriver's process group (anything left of it).
        if !self.session_id.is_empty() {
            let _ = delete_session(self.driver_port, &self.session_id);
        }
        let _ = Command::new("kill")
            .args(["-KILL", "--", &format!("-{}", self.driver.id())])
            .stdout(Stdio::null())
            .stderr(Stdio::null())
            .status();
        let _ = self.driver.kill();
        let _ = self.driver.wait();
    }
}

/// `DELETE /session/{id}` over a blocking socket.
fn delete_session(port: u16, session_id: &str) -> std::io::Result<()> {
    let mut stream = TcpStream::connect(("127.0.0.1", port))?;
    stream.set_read_timeout(Some(Duration::from_secs(10)))?;
    stream.set_write_timeout(Some(Duration::from_secs(2)))?;
    write!(
        stream,
        "DELETE /session/{session_id} HTTP/1.1\r\nHost: 127.0.0.1:{port}\r\n\
         Content-Length: 0\r\nConnection: close\r\n\r\n"
    )?;
    // Wait for the answer: chromedriver replies once Chromium has quit.
    let mut buf = [0u8; 1024];
    let _ = stream.read(&mut buf)?;
    Ok(())
}

/// Whether this is a CI run (`CI` set, and not to `false` or `0`), where nothing may skip.
pub fn under_ci() -> bool {
    std::env::var("CI").is_ok_and(|v| !v.is_empty() && v != "false" && v != "0")
}

/// A port nothing listens on right now (bound and released at once).
fn free_port() -> u16 {
    std::net::TcpListener::bind("127.0.0.1:0")
        .and_then(|l| l.local_addr())
        .map(|a| a.port())
        .expect("a free port")
}
