//! The only way a test gets a server: [`spawn_app`] binds `127.0.0.1:0`, builds the issuer from
//! the real port, gives the server its own database and clock, and runs it in-process.

#![allow(dead_code)]

pub mod authenticator;
pub mod browser;
mod db;
pub mod forms;
pub mod github;
pub mod jwt;
pub mod proxy;
pub mod rp;
pub mod smtp;
pub mod tamper;
pub mod upstream;

use std::net::TcpListener;
use std::process::{Command, Output, Stdio};
use std::sync::Arc;

use castellan::Settings;
use castellan::clock::TestClock;
use castellan::state::AppState;

pub use db::TestDb;

pub struct TestApp {
    /// `http://127.0.0.1:PORT`, also the issuer.
    pub address: String,
    pub port: u16,
    /// The port of the separate metrics listener, when `metrics.listen` is set.
    pub metrics_port: Option<u16>,
    /// Keeps cookies, never follows redirects.
    pub client: reqwest::Client,
    pub state: AppState,
    /// The database handle: what tests look at and set up below the HTTP surface.
    pub store: castellan::store::Store,
    pub clock: TestClock,
    handle: actix_web::dev::ServerHandle,
    /// Shared with the other instances of [`spawn_app_beside`]; dropped with the last one.
    pub db: Arc<TestDb>,
}

impl Drop for TestApp {
    fn drop(&mut self) {
        // Sends the stop command at once; the returned future only waits for completion.
        drop(self.handle.stop(false));
    }
}

pub async fn spawn_app() -> TestApp {
    spawn_app_with(|_| {}).await
}

/// Spawns a server whose settings the caller may adjust first.
pub async fn spawn_app_with(configure: impl FnOnce(&mut Settings)) -> TestApp {
    init_test_log();
    let db = Arc::new(TestDb::new().await);
    spawn_on(db, configure).await
}

/// A server on its own test database reached at another URL: `url_for` gets the test
/// database's URL and gives the one the server uses (through a [`proxy::Proxy`], say). The
/// CLI helpers and [`TestApp::count`] still go to the database directly.
pub async fn spawn_app_reaching_db(
    url_for: impl FnOnce(&str) -> String,
    configure: impl FnOnce(&mut Settings),
) -> TestApp {
    init_test_log();
    let db = Arc::new(TestDb::new().await);
    let url = url_for(db.url());
    spawn_on(db, move |s| {
        s.database.url = castellan::config::Secret::new(url);
        configure(s);
    })
    .await
}

/// A server whose issuer is `http://localhost:PORT` (still bound to 127.0.0.1): WebAuthn needs
/// a domain name as the relying party id, so passkeys are offered only on such an issuer.
pub async fn spawn_app_at_localhost(configure: impl FnOnce(&mut Settings)) -> TestApp {
    init_test_log();
    let db = Arc::new(TestDb::new().await);
    spawn_on_host(db, "localhost", configure).await
}

/// A second instance beside `app` with the same issuer host (`localhost`, for passkeys).
pub async fn spawn_app_at_localhost_beside(
    app: &TestApp,
    configure: impl FnOnce(&mut Settings),
) -> TestApp {
    spawn_on_host(app.db.clone(), "localhost", configure).await
}

/// A second instance on the database of `app` (what operators run behind a load balancer):
/// its own port, clock, state and background work, the same stored state.
pub async fn spawn_app_beside(app: &TestApp, configure: impl FnOnce(&mut Settings)) -> TestApp {
    spawn_on(app.db.clone(), configure).await
}

async fn spawn_on(db: Arc<TestDb>, configure: impl FnOnce(&mut Settings)) -> TestApp {
    spawn_on_host(db, "127.0.0.1", configure).await
}

async fn spawn_on_host(
    db: Arc<TestDb>,
    host: &str,
    configure: impl FnOnce(&mut Settings),
) -> TestApp {
    let listener = TcpListener::bind("127.0.0.1:0").expect("bind a random port");
    let port = listener.local_addr().expect("local addr").port();
    let address = format!("http://{host}:{port}");
    let mut settings = Settings::for_test(&address, db.url());
    configure(&mut settings);
    settings.validate().expect("test settings are valid");
    let clock = TestClock::default();
    let app = castellan::Application::build_with_clock(settings, listener, Arc::new(clock.clone()))
        .await
        .expect("build the application");
    let state = app.state().clone();
    let store = app.store().clone();
    let handle = app.handle();
    let metrics_port = app.metrics_port();
    tokio::spawn(app.run_until_stopped());
    TestApp {
        address,
        port,
        metrics_port,
        client: browser(),
        state,
        store,
        clock,
        handle,
        db,
    }
}

/// reqwest is built with rustls and no crypto provider of its own (the server's back channel
/// brings its own, aws-lc-rs): the test clients use the same one, set once for the process.
pub fn tls_provider() {
    let _ = rustls::crypto::aws_lc_rs::default_provider().install_default();
}

/// A client like a browser's: keeps cookies, does not follow redirects (tests look at them).
pub fn browser() -> reqwest::Client {
    tls_provider();
    reqwest::Client::builder()
        .cookie_store(true)
        .redirect(reqwest::redirect::Policy::none())
        .build()
        .expect("http client")
}

impl TestApp {
    pub fn url(&self, path: &str) -> String {
        format!("{}{}", self.address, path)
    }

    pub async fn get(&self, path: &str) -> reqwest::Response {
        self.client
            .get(self.url(path))
            .send()
            .await
            .expect("request")
    }

    /// Runs `SELECT COUNT(*) FROM ...` (the part after `FROM` is given) on the test database,
    /// over a connection of its own: what a test sees is what is really stored.
    pub async fn count(&self, from: &str) -> i64 {
        use sea_orm::{ConnectionTrait, Database, Statement};
        let db = Database::connect(self.db.url())
            .await
            .expect("connect to the test database");
        let sql = format!("SELECT COUNT(*) AS n FROM {from}");
        let row = db
            .query_one_raw(Statement::from_string(
                db.get_database_backend(),
                sql.clone(),
            ))
            .await
            .unwrap_or_else(|e| panic!("{sql}: {e}"))
            .expect("one row");
        let n: i64 = row.try_get("", "n").expect("count");
        let _ = db.close().await;
        n
    }

    /// Runs one SQL statement on the test database over a connection of its own (to set up a
    /// state no public interface makes, such as an unverified user created by the CLI).
    pub async fn exec(&self, sql: &str) {
        use sea_orm::{ConnectionTrait, Database};
        let db = Database::connect(self.db.url())
            .await
            .expect("connect to the test database");
        db.execute_unprepared(sql)
            .await
            .unwrap_or_else(|e| panic!("{sql}: {e}"));
        let _ = db.close().await;
    }

    /// Runs the built `castellan` binary against this server's database.
    pub fn castellan(&self, args: &[&str]) -> Output {
        castellan_with(self.db.url(), args, None, &[])
    }

    pub fn castellan_stdin(&self, args: &[&str], stdin: &str) -> Output {
        castellan_with(self.db.url(), args, Some(stdin), &[])
    }
}

/// Runs the built binary with a clean `CASTELLAN_*` environment plus the given variables.
pub fn castellan_with(
    db_url: &str,
    args: &[&str],
    stdin: Option<&str>,
    env: &[(&str, &str)],
) -> Output {
    use std::io::Write;
    let mut cmd = Command::new(env!("CARGO_BIN_EXE_castellan"));
    for (k, _) in std::env::vars() {
        if k.starts_with("CASTELLAN_") {
            cmd.env_remove(k);
        }
    }
    cmd.env("CASTELLAN_DATABASE_URL", db_url)
        // Keeps `user create` quick: the CLI hashes with the configured argon2 parameters.
        .env("CASTELLAN_PASSWORD__ARGON2_MEMORY_KIB", "1024")
        .env("CASTELLAN_PASSWORD__ARGON2_ITERATIONS", "1");
    for (k, v) in env {
        cmd.env(k, v);
    }
    cmd.args(args)
        .stdin(if stdin.is_some() {
            Stdio::piped()
        } else {
            Stdio::null()
        })
        .stdout(Stdio::piped())
        .stderr(Stdio::piped());
    let mut child = cmd.spawn().expect("run castellan");
    if let Some(input) = stdin {
        let mut pipe = child.stdin.take().expect("stdin");
        pipe.write_all(input.as_bytes()).expect("write stdin");
    }
    child.wait_with_output().expect("castellan output")
}

pub fn stdout(o: &Output) -> String {
    String::from_utf8_lossy(&o.stdout).into_owned()
}

pub fn stderr(o: &Output) -> String {
    String::from_utf8_lossy(&o.stderr).into_owned()
}

/// Asserts success and parses standard output as JSON.
pub fn json_out(o: &Output) -> serde_json::Value {
    assert!(
        o.status.success(),
        "castellan failed: {}\n{}",
        stderr(o),
        stdout(o)
    );
    serde_json::from_slice(&o.stdout).unwrap_or_else(|e| panic!("not JSON ({e}): {}", stdout(o)))
}

/// With `RUST_BACKTRACE` set (CI sets it), a failing test's panic message is printed once
/// more after the backtrace: a log that keeps only its last lines (CI's summary does) would
/// otherwise show the backtrace's tokio frames and not what failed. Installed once, by the
/// first test that spawns a server or a browser.
pub fn repeat_panic_messages() {
    static INIT: std::sync::Once = std::sync::Once::new();
    INIT.call_once(|| {
        let default = std::panic::take_hook();
        std::panic::set_hook(Box::new(move |info| {
            default(info);
            if std::env::var_os("RUST_BACKTRACE").is_some_and(|v| v != "0")
                && let Some(message) = info.payload_as_str()
            {
                let at = info
                    .location()
                    .map(|l| format!(" at {}:{}", l.file(), l.line()))
                    .unwrap_or_default();
                eprintln!("\nthe panic above, again{at}:\n{message}");
            }
        }));
    });
}

/// Server logs stay silent unless `TEST_LOG` is set.
fn init_test_log() {
    repeat_panic_messages();
    tls_provider();
    static INIT: std::sync::Once = std::sync::Once::new();
    INIT.call_once(|| {
        if let Ok(filter) = std::env::var("TEST_LOG") {
            let _ = tracing_subscriber::fmt()
                .with_env_filter(filter)
                .with_test_writer()
                .try_init();
        }
    });
}

/// The Redis the tests share (`TEST_REDIS_URL`, default `redis://127.0.0.1:6379`), when one
/// answers. Under `CI=true` a missing Redis fails the test instead of skipping it.
pub fn redis_url() -> Option<String> {
    let url = std::env::var("TEST_REDIS_URL").unwrap_or_else(|_| "redis://127.0.0.1:6379".into());
    let addr = url
        .trim_start_matches("redis://")
        .split('/')
        .next()
        .unwrap_or("127.0.0.1:6379")
        .rsplit('@')
        .next()
        .unwrap_or("127.0.0.1:6379")
        .to_owned();
    let reachable = addr
        .parse::<std::net::SocketAddr>()
        .ok()
        .and_then(|a| {
            std::net::TcpStream::connect_timeout(&a, std::time::Duration::from_secs(1)).ok()
        })
        .is_some();
    if reachable {
        return Some(url);
    }
    if std::env::var("CI").is_ok_and(|v| v == "true") {
        panic!("Redis is not reachable at {url}, and CI=true: this test must run");
    }
    eprintln!("skipped: Redis is not reachable at {url} (set TEST_REDIS_URL)");
    None
}
