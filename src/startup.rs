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
use crate::services::housekeeping::Housekeeping;
use crate::services::jobs::Jobs;
use crate::services::keys::{self, KeyRing};
use crate::services::metrics::Metrics;
use crate::services::passwords::PasswordPool;
use crate::services::ratelimit::RateLimiter;
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

fn parts(settings: &Settings) -> anyhow::Result<Parts> {
    let p = &settings.password;
    let hasher = Hasher::new(
        p.argon2_memory_kib,
        p.argon2_iterations,
        p.argon2_parallelism,
    )
    .context("preparing the password hasher")?;
    let mailer = Arc::new(Mailer::new(&settings.mail).context("preparing the mailer")?);
    let rl = &settings.rate_limit;
    let limiter = Arc::new(RateLimiter::new(
        rl.login_per_minute,
        rl.register_per_minute,
        rl.forgot_password_per_minute,
        rl.client_auth_failures_per_minute,
    ));
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
) -> (Authn, Jobs, Accounts) {
    let authn = Authn::new(
        store.clone(),
        parts.passwords.clone(),
        settings.clone(),
        clock.clone(),
        parts.limiter.clone(),
        metrics.clone(),
    );
    let jobs = Jobs::new(store.clone());
    let accounts = Accounts::new(
        store.clone(),
        parts.passwords.clone(),
        parts.mailer.clone(),
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

/// `castellan migrate`: the schema, and the first signing key (so the first `serve` starts at
/// once). Returns the applied migrations' names.
pub async fn provision(settings: &Settings) -> anyhow::Result<Vec<String>> {
    let store = open_store(settings).await?;
    keys::ensure_active_key(&store, settings, crate::clock::Clock::time(&SystemClock))
        .await
        .map_err(|e| anyhow::anyhow!("preparing the signing key: {e}"))?;
    store
        .applied_migrations()
        .await
        .map_err(|e| anyhow::anyhow!(e))
}

/// The administration use cases for the command line, over the migrated database.
pub async fn admin_for_cli(settings: Settings) -> anyhow::Result<Admin> {
    let store = open_store(&settings).await?;
    build_admin(Arc::new(settings), store, Arc::new(SystemClock))
}

/// The administration use cases alone, for the command line: they need no signing keys, so a
/// command works on a database no server has touched (and makes no key there).
pub fn build_admin(
    settings: Arc<Settings>,
    store: Store,
    clock: SharedClock,
) -> anyhow::Result<Admin> {
    let parts = parts(&settings)?;
    let metrics = Arc::new(Metrics::new(clock.now()));
    let (_, _, accounts) = accounts_of(&settings, &store, &clock, &metrics, &parts);
    Ok(Admin::new(store, accounts, settings, clock))
}

/// Builds every use case with what it needs (the server; the command line takes
/// [`build_admin`]): the key ring, the password and signing workers, the mailer, the rate
/// limiter, the job queue.
pub async fn build_core(
    settings: Arc<Settings>,
    store: Store,
    clock: SharedClock,
    metrics: Arc<Metrics>,
) -> anyhow::Result<Built> {
    let now = clock.time();
    let key_ring = KeyRing::load(&store, &settings, now)
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
    if settings.rate_limit.redis_url.is_some() {
        tracing::warn!(
            "CASTELLAN_REDIS_URL is set, but shared rate-limit counters are not built yet: \
             each instance enforces its own per-address limits"
        );
    }
    let parts = parts(&settings)?;
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
    let (authn, jobs, accounts) = accounts_of(&settings, &store, &clock, &metrics, &parts);
    let core = Core {
        admin: Admin::new(
            store.clone(),
            accounts.clone(),
            settings.clone(),
            clock.clone(),
        ),
        authorization: Authorization::new(
            store.clone(),
            tokens.clone(),
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
        logout: Logout::new(store.clone(), tokens.clone(), authn.clone()),
        registration: ClientRegistration::new(
            store.clone(),
            settings.clone(),
            parts.limiter.clone(),
            clock.clone(),
        ),
        status: Status::new(store.clone(), metrics, clock.clone()),
        accounts: accounts.clone(),
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
        },
        housekeeping: Housekeeping {
            store,
            settings,
            clock,
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
        if keys::ensure_active_key(&store, &settings, now)
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
        let built = build_core(
            settings.clone(),
            store.clone(),
            clock.clone(),
            metrics.clone(),
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
