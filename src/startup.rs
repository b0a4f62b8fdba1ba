//! `Application::build`: database, migrations, keys, state, HTTP server. Used by `castellan
//! serve` and by the test harness alike.
//!
//! With `metrics.listen` set, a second small HTTP server (one worker) serves only `/metrics`
//! on that address; it stops when the main server stops.

use std::net::TcpListener;
use std::sync::Arc;

use actix_web::dev::Server;
use actix_web::middleware::{Condition, from_fn};
use actix_web::{App, HttpServer, web};
use anyhow::Context;

use crate::clock::{SharedClock, SystemClock};
use crate::config::Settings;
use crate::crypto::password::Hasher;
use crate::crypto::seal::Kek;
use crate::mail::Mailer;
use crate::oauth::authorize::Authorization;
use crate::oauth::token::TokenEndpoint;
use crate::oidc::discovery::Discovery;
use crate::oidc::logout::Logout;
use crate::oidc::userinfo::UserInfo;
use crate::services::accounts::Accounts;
use crate::services::admin::Admin;
use crate::services::authn::Authn;
use crate::services::background::Background;
use crate::services::factors::Factors;
use crate::services::housekeeping::Housekeeping;
use crate::services::jobs::Jobs;
use crate::services::keys::{self, KeyRing};
use crate::services::metrics::Metrics;
use crate::services::mfa::Mfa;
use crate::services::passwords::PasswordPool;
use crate::services::ratelimit::{Limits, RateLimiter};
use crate::services::registration::ClientRegistration;
use crate::services::status::Status;
use crate::services::tokens::Tokens;
use crate::state::{AppState, Core};
use crate::store::Store;

pub struct Application {
    port: u16,
    server: Server,
    /// The server of `metrics.listen`, and the port it is bound to.
    metrics: Option<(u16, Server)>,
    state: AppState,
    /// The database handle, for tests that look at what is stored.
    store: Store,
}

/// The core and its background work, wired from the settings and a migrated store.
pub struct Built {
    pub core: Core,
    pub background: Background,
    pub housekeeping: Housekeeping,
}

/// What every use case shares: the password workers, the mailer, the rate limiter.
struct Parts {
    passwords: Arc<PasswordPool>,
    mailer: Arc<Mailer>,
    limiter: Arc<RateLimiter>,
}

/// `shared_limits`: whether to count rate limits in Redis when configured (the server; the
/// command line limits nothing).
fn parts(
    settings: &Settings,
    metrics: &Arc<Metrics>,
    shared_limits: bool,
) -> anyhow::Result<Parts> {
    let p = &settings.password;
    let hasher = Hasher::new(
        p.argon2_memory_kib,
        p.argon2_iterations,
        p.argon2_parallelism,
    )
    .context("preparing the password hasher")?;
    let mailer = Arc::new(Mailer::new(&settings.mail).context("preparing the mailer")?);
    let rl = &settings.rate_limit;
    let limits = Limits {
        login_failures: rl.login_per_minute,
        register: rl.register_per_minute,
        forgot_password: rl.forgot_password_per_minute,
        client_auth_failures: rl.client_auth_failures_per_minute,
    };
    let limiter = match &rl.redis_url {
        Some(url) if shared_limits => {
            let timeout = std::time::Duration::from_millis(rl.redis_timeout_ms);
            let limiter = RateLimiter::shared(
                limits,
                metrics.clone(),
                url.expose(),
                &settings.server.issuer,
                timeout,
            )
            .map_err(|e| {
                anyhow::anyhow!(
                    "rate_limit.redis_url: {}",
                    crate::config::redact_in_text(&e.to_string())
                )
            })?;
            tracing::info!(
                "rate-limit counters are shared through Redis (CASTELLAN_REDIS_URL); \
                 this instance counts alone whenever Redis does not answer"
            );
            limiter
        }
        _ => RateLimiter::local(limits, metrics.clone()),
    };
    let limiter = Arc::new(limiter);
    let workers = match settings.password.max_concurrent_hashes {
        0 => cpus(),
        n => n,
    };
    let passwords = Arc::new(
        PasswordPool::start(
            Arc::new(hasher),
            workers,
            settings.password.max_queued_hashes,
        )
        .context("starting the password workers")?,
    );
    Ok(Parts {
        passwords,
        mailer,
        limiter,
    })
}

fn cpus() -> usize {
    std::thread::available_parallelism()
        .map(|n| n.get())
        .unwrap_or(2)
}

/// Sign-in, the job queue and the account use cases over the shared parts.
fn accounts_of(
    settings: &Arc<Settings>,
    store: &Store,
    clock: &SharedClock,
    metrics: &Arc<Metrics>,
    parts: &Parts,
    kek: &Option<Arc<Kek>>,
) -> (Authn, Jobs, Accounts) {
    let jobs = Jobs::new(store.clone(), kek.clone());
    let passkeys = crate::services::passkeys::Passkeys::new(&settings.server.issuer, store.clone());
    let factors = Factors::new(store.clone(), kek.clone(), jobs.clone(), passkeys);
    let authn = Authn::new(
        store.clone(),
        parts.passwords.clone(),
        settings.clone(),
        clock.clone(),
        parts.limiter.clone(),
        metrics.clone(),
        factors,
    );
    let accounts = Accounts::new(
        store.clone(),
        parts.passwords.clone(),
        settings.clone(),
        clock.clone(),
        jobs.clone(),
        authn.clone(),
        parts.limiter.clone(),
    );
    (authn, jobs, accounts)
}

/// Opens the configured database and applies pending migrations, so that every command works
/// on a fresh one. The error names the database with its password hidden.
pub async fn open_store(settings: &Settings) -> anyhow::Result<Store> {
    let store = Store::connect(settings).await?;
    store.migrate().await.map_err(|e| {
        anyhow::anyhow!(
            "applying database migrations: {}",
            crate::config::redact_in_text(&e.to_string())
        )
    })?;
    Ok(store)
}

/// The key-encryption key that private signing keys (and later other secrets) are stored
/// under: `CASTELLAN_KEY_ENCRYPTION_KEY`, or the file `CASTELLAN_KEY_ENCRYPTION_KEY_FILE` names,
/// or, on a SQLite file with neither set (the zero-configuration default), the file
/// `<database>.kek` beside the database, made on first use with mode 0600 and its path logged.
/// `None` on PostgreSQL (or SQLite in memory) without one.
pub fn key_encryption_key(settings: &Settings) -> anyhow::Result<Option<Arc<Kek>>> {
    if let Some(text) = &settings.keys.encryption_key {
        let kek = Kek::from_base64(text.expose()).map_err(|e| {
            anyhow::anyhow!("keys.encryption_key (CASTELLAN_KEY_ENCRYPTION_KEY): {e}")
        })?;
        return Ok(Some(Arc::new(kek)));
    }
    if let Some(path) = &settings.keys.encryption_key_file {
        return read_kek_file(std::path::Path::new(path)).map(|k| Some(Arc::new(k)));
    }
    let Some(db) = settings.sqlite_path() else {
        return Ok(None);
    };
    let mut name = db.file_name().unwrap_or_default().to_os_string();
    name.push(".kek");
    let path = db.with_file_name(name);
    if path.exists() {
        return read_kek_file(&path).map(|k| Some(Arc::new(k)));
    }
    let (kek, text) =
        Kek::generate().map_err(|e| anyhow::anyhow!("making a key-encryption key: {e}"))?;
    write_private_file(&path, &format!("{text}\n"))
        .with_context(|| format!("writing the key-encryption key file {}", path.display()))?;
    tracing::warn!(
        path = %path.display(),
        "made a key-encryption key beside the SQLite database: signing keys are stored encrypted \
         under it. Keep it out of the database's backups, or set CASTELLAN_KEY_ENCRYPTION_KEY_FILE"
    );
    Ok(Some(Arc::new(kek)))
}

fn read_kek_file(path: &std::path::Path) -> anyhow::Result<Kek> {
    let text = std::fs::read_to_string(path).map_err(|e| {
        anyhow::anyhow!(
            "keys.encryption_key_file: cannot read {}: {e}",
            path.display()
        )
    })?;
    Kek::from_base64(&text).map_err(|e| {
        anyhow::anyhow!(
            "keys.encryption_key_file: {} does not hold a key-encryption key: {e}",
            path.display()
        )
    })
}

/// Creates `path` holding `text`, readable by its owner only (it must not exist yet).
fn write_private_file(path: &std::path::Path, text: &str) -> std::io::Result<()> {
    use std::io::Write;
    let mut options = std::fs::OpenOptions::new();
    options.write(true).create_new(true);
    #[cfg(unix)]
    {
        use std::os::unix::fs::OpenOptionsExt;
        options.mode(0o600);
    }
    let mut file = options.open(path)?;
    file.write_all(text.as_bytes())?;
    file.sync_all()
}

/// Checks the stored signing keys against the key-encryption key and seals those stored in
/// plaintext (see [`keys::secure_at_rest`]); says what it did.
pub async fn secure_keys(
    store: &Store,
    settings: &Settings,
    kek: Option<&Kek>,
    now: crate::domain::UnixTime,
) -> anyhow::Result<keys::AtRest> {
    let at_rest = keys::secure_at_rest(store, kek, now)
        .await
        .map_err(|e| anyhow::anyhow!("{e}"))?;
    match at_rest {
        keys::AtRest::Encrypted { sealed_now } if sealed_now > 0 => tracing::info!(
            keys = sealed_now,
            "encrypted the signing keys stored before a key-encryption key was configured"
        ),
        keys::AtRest::Plain if !settings.database.is_sqlite() => tracing::warn!(
            "SIGNING KEYS ARE STORED UNENCRYPTED: no key-encryption key is configured \
             (CASTELLAN_KEY_ENCRYPTION_KEY or CASTELLAN_KEY_ENCRYPTION_KEY_FILE); anyone with a \
             copy of the database can sign tokens"
        ),
        _ => {}
    }
    Ok(at_rest)
}

/// `castellan migrate`: the schema, and the first signing key (so the first `serve` starts at
/// once). Returns the applied migrations' names.
pub async fn provision(settings: &Settings) -> anyhow::Result<Vec<String>> {
    let store = open_store(settings).await?;
    let kek = key_encryption_key(settings)?;
    let now = crate::clock::Clock::time(&SystemClock);
    secure_keys(&store, settings, kek.as_deref(), now).await?;
    keys::ensure_active_key(&store, settings, kek.as_deref(), now)
        .await
        .map_err(|e| anyhow::anyhow!("preparing the signing key: {e}"))?;
    store
        .applied_migrations()
        .await
        .map_err(|e| anyhow::anyhow!(e))
}

/// The administration use cases for the command line, over the migrated database.
/// `kek` is the configured key-encryption key ([`key_encryption_key`]), which the command
/// line resolves once.
pub async fn admin_for_cli(settings: Settings, kek: Option<Arc<Kek>>) -> anyhow::Result<Admin> {
    let store = open_store(&settings).await?;
    build_admin(Arc::new(settings), store, Arc::new(SystemClock), kek)
}

/// The administration use cases alone, for the command line: they need no signing keys, so a
/// command works on a database no server has touched (and makes no key there).
pub fn build_admin(
    settings: Arc<Settings>,
    store: Store,
    clock: SharedClock,
    kek: Option<Arc<Kek>>,
) -> anyhow::Result<Admin> {
    let metrics = Arc::new(Metrics::new(clock.now()));
    let parts = parts(&settings, &metrics, false)?;
    let (authn, _, accounts) = accounts_of(&settings, &store, &clock, &metrics, &parts, &kek);
    let factors = authn.factors().clone();
    Ok(Admin::new(store, accounts, factors, settings, clock, kek))
}

/// Builds every use case with what it needs (the server; the command line takes
/// [`build_admin`]): the key ring, the password and signing workers, the mailer, the rate
/// limiter, the job queue.
pub async fn build_core(
    settings: Arc<Settings>,
    store: Store,
    clock: SharedClock,
    metrics: Arc<Metrics>,
    kek: Option<Arc<Kek>>,
) -> anyhow::Result<Built> {
    let now = clock.time();
    let key_ring = KeyRing::load(&store, &settings, kek.clone(), now)
        .await
        .context("loading signing keys")?;
    // From here on the store serves requests: a call past `database.statement_timeout_ms` is
    // an unavailable database (503), not a wait.
    let store = store.for_requests(&settings);
    if settings.mail.smtp_url.is_none() {
        tracing::warn!(
            "SMTP IS NOT CONFIGURED (mail.smtp_url / CASTELLAN_SMTP_URL is unset): \
             emails will be written to the log instead of being sent. \
             This is for development only."
        );
    }
    let parts = parts(&settings, &metrics, true)?;
    let signing = Arc::new(
        crate::services::workers::WorkerPool::start("sign", cpus(), || ())
            .context("starting the signing workers")?,
    );
    let tokens = Tokens::new(
        store.clone(),
        Arc::new(key_ring),
        signing,
        settings.clone(),
        clock.clone(),
    );
    let (authn, jobs, accounts) = accounts_of(&settings, &store, &clock, &metrics, &parts, &kek);
    let core = Core {
        admin: Admin::new(
            store.clone(),
            accounts.clone(),
            authn.factors().clone(),
            settings.clone(),
            clock.clone(),
            kek.clone(),
        ),
        authorization: Authorization::new(
            store.clone(),
            tokens.clone(),
            authn.factors().clone(),
            settings.clone(),
            clock.clone(),
        ),
        token_endpoint: TokenEndpoint::new(
            store.clone(),
            tokens.clone(),
            metrics.clone(),
            settings.clone(),
            parts.limiter.clone(),
            clock.clone(),
        ),
        userinfo: UserInfo::new(tokens.clone(), clock.clone()),
        federation: crate::services::federation::Federation::new(
            store.clone(),
            settings.clone(),
            clock.clone(),
            kek.clone(),
            authn.clone(),
            parts.limiter.clone(),
        )
        .context("building the client for upstream providers")?,
        logout: Logout::new(store.clone(), tokens.clone(), authn.clone()),
        registration: ClientRegistration::new(
            store.clone(),
            settings.clone(),
            parts.limiter.clone(),
            clock.clone(),
        ),
        status: Status::new(store.clone(), metrics.clone(), clock.clone()),
        accounts: accounts.clone(),
        mfa: Mfa::new(
            store.clone(),
            authn.factors().clone(),
            authn.clone(),
            settings.clone(),
            clock.clone(),
        ),
        authn,
        tokens,
    };
    Ok(Built {
        background: Background {
            store: store.clone(),
            clock: clock.clone(),
            settings: settings.clone(),
            jobs,
            accounts,
            mailer: parts.mailer.clone(),
            metrics: metrics.clone(),
        },
        housekeeping: Housekeeping {
            store,
            settings,
            clock,
            kek,
            holder: uuid::Uuid::new_v4().to_string(),
        },
        core,
    })
}

impl Application {
    /// Opens the database, applies migrations, makes a signing key if none exists, and binds.
    pub async fn build(settings: Settings, listener: TcpListener) -> anyhow::Result<Self> {
        Self::build_with_clock(settings, listener, Arc::new(SystemClock)).await
    }

    pub async fn build_with_clock(
        settings: Settings,
        listener: TcpListener,
        clock: SharedClock,
    ) -> anyhow::Result<Self> {
        let store = Store::connect(&settings).await?;
        let applied = store
            .migrate()
            .await
            .context("applying database migrations")?;
        if applied > 0 {
            tracing::info!(
                applied,
                backend = store.backend(),
                "database migrations applied"
            );
        }
        let now = clock.time();
        let kek = key_encryption_key(&settings)?;
        let at_rest = secure_keys(&store, &settings, kek.as_deref(), now).await?;
        if keys::ensure_active_key(&store, &settings, kek.as_deref(), now)
            .await
            .context("preparing the signing key")?
        {
            tracing::info!(
                bits = settings.keys.rsa_bits,
                "generated the first signing key"
            );
        }
        let settings = Arc::new(settings);
        let metrics = Arc::new(Metrics::new(now.secs()));
        metrics.set_keys_encrypted(matches!(at_rest, keys::AtRest::Encrypted { .. }));
        let built = build_core(
            settings.clone(),
            store.clone(),
            clock.clone(),
            metrics.clone(),
            kek,
        )
        .await?;
        let state = AppState {
            core: built.core,
            discovery: Arc::new(Discovery::new(&settings)),
            metrics,
            clock,
            settings,
        };
        let port = listener
            .local_addr()
            .context("reading the bound address")?
            .port();
        let metrics = match state.settings.metrics_listen_addr()? {
            Some(addr) if state.settings.metrics.enabled => {
                let listener = TcpListener::bind(addr)
                    .with_context(|| format!("cannot listen on {addr} (metrics.listen)"))?;
                let bound = listener
                    .local_addr()
                    .context("reading the bound metrics address")?;
                tracing::info!(listen = %bound, "serving /metrics on its own listener");
                Some((bound.port(), Self::metrics_server(state.clone(), listener)?))
            }
            _ => None,
        };
        let server = Self::server(state.clone(), listener)?;
        crate::services::housekeeping::spawn(built.housekeeping);
        crate::services::background::spawn(built.background);
        Ok(Self {
            port,
            server,
            metrics,
            state,
            store,
        })
    }

    fn server(state: AppState, listener: TcpListener) -> anyhow::Result<Server> {
        let workers = match state.settings.server.workers {
            0 => std::thread::available_parallelism()
                .map(|n| n.get())
                .unwrap_or(2),
            n => n,
        };
        let https = state.settings.is_https();
        let metrics = state.settings.metrics.enabled;
        // `/metrics` is on the main listener unless it has a listener of its own.
        let metrics_here = metrics && state.settings.metrics.listen.is_none();
        let data = web::Data::new(state);
        let server = HttpServer::new(move || {
            App::new()
                .app_data(data.clone())
                // Bodies read whole (the admin API's JSON, dynamic registration): bounded; forms
                // are bounded per endpoint by `http::extractors`.
                .app_data(web::PayloadConfig::new(crate::http::extractors::JSON_BYTES))
                .app_data(web::JsonConfig::default().limit(crate::http::extractors::JSON_BYTES))
                .configure(crate::http::configure)
                .configure(|cfg| {
                    if metrics_here {
                        crate::http::routes::metrics(cfg);
                    }
                })
                .default_service(web::to(crate::http::routes::not_found))
                .wrap(from_fn(crate::http::middleware::bound_query))
                .wrap(from_fn(crate::http::middleware::bound_headers))
                .wrap(from_fn(move |req, next| {
                    crate::http::middleware::security_headers(req, next, https)
                }))
                .wrap(from_fn(crate::http::middleware::log_requests))
                .wrap(Condition::new(metrics, {
                    let counters = data.metrics.clone();
                    from_fn(move |req, next| {
                        crate::http::middleware::count_requests(req, next, counters.clone())
                    })
                }))
        })
        .workers(workers)
        .shutdown_timeout(10)
        .listen(listener)
        .context("listening")?
        .run();
        Ok(server)
    }

    /// The second server for `metrics.listen`: `/metrics` and nothing else, one worker, no
    /// signal handling of its own (it stops with the main server).
    fn metrics_server(state: AppState, listener: TcpListener) -> anyhow::Result<Server> {
        let data = web::Data::new(state);
        let server = HttpServer::new(move || {
            App::new()
                .app_data(data.clone())
                .configure(crate::http::routes::metrics)
                .default_service(web::to(crate::http::routes::not_found))
        })
        .workers(1)
        .disable_signals()
        .shutdown_timeout(5)
        .listen(listener)
        .context("listening for metrics")?
        .run();
        Ok(server)
    }

    pub fn port(&self) -> u16 {
        self.port
    }

    /// The port `/metrics` has to itself, when `metrics.listen` is set (it may name port 0).
    pub fn metrics_port(&self) -> Option<u16> {
        self.metrics.as_ref().map(|(port, _)| *port)
    }

    /// A handle to stop the server (used by the test harness).
    pub fn handle(&self) -> actix_web::dev::ServerHandle {
        self.server.handle()
    }

    pub fn state(&self) -> &AppState {
        &self.state
    }

    /// The database handle (the test harness reads what is stored through it).
    pub fn store(&self) -> &Store {
        &self.store
    }

    /// Serves until SIGTERM/SIGINT, then drains in-flight requests (graceful shutdown).
    /// The metrics server, if any, runs alongside and is stopped when the main one ends.
    pub async fn run_until_stopped(self) -> std::io::Result<()> {
        let Some((_, metrics)) = self.metrics else {
            return self.server.await;
        };
        let handle = metrics.handle();
        let main = async {
            let result = self.server.await;
            handle.stop(true).await;
            result
        };
        let (result, metrics_result) = futures_util::future::join(main, metrics).await;
        if let Err(e) = metrics_result {
            tracing::warn!(error = %e, "the metrics server ended with an error");
        }
        result
    }
}
