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
use crate::oidc::discovery::Discovery;
use crate::services::keys::{self, KeyRing};
use crate::services::metrics::Metrics;
use crate::services::passwords::PasswordPool;
use crate::services::ratelimit::RateLimiter;
use crate::state::AppState;
use crate::store::Store;

pub struct Application {
    port: u16,
    server: Server,
    /// The server of `metrics.listen`, and the port it is bound to.
    metrics: Option<(u16, Server)>,
    state: AppState,
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
        let now = clock.now();
        if keys::ensure_active_key(&store, &settings, now)
            .await
            .context("preparing the signing key")?
        {
            tracing::info!(
                bits = settings.keys.rsa_bits,
                "generated the first signing key"
            );
        }
        let key_ring = KeyRing::load(&store, &settings, now)
            .await
            .context("loading signing keys")?;
        let discovery = Discovery::new(&settings);
        let p = &settings.password;
        let hasher = Hasher::new(
            p.argon2_memory_kib,
            p.argon2_iterations,
            p.argon2_parallelism,
        )
        .context("preparing the password hasher")?;
        let cpus = std::thread::available_parallelism()
            .map(|n| n.get())
            .unwrap_or(2);
        let mailer = Mailer::new(&settings.mail).context("preparing the mailer")?;
        let rl = &settings.rate_limit;
        if rl.redis_url.is_some() {
            tracing::warn!(
                "CASTELLAN_REDIS_URL is set, but shared rate-limit counters are not built yet: \
                 each instance enforces its own per-address limits"
            );
        }
        let limiter = RateLimiter::new(
            rl.login_per_minute,
            rl.register_per_minute,
            rl.forgot_password_per_minute,
            rl.client_auth_failures_per_minute,
        );
        let hasher = Arc::new(hasher);
        let workers = match settings.password.max_concurrent_hashes {
            0 => cpus,
            n => n,
        };
        let passwords =
            PasswordPool::start(hasher.clone(), workers, settings.password.max_queued_hashes)
                .context("starting the password workers")?;
        let signing = crate::services::workers::WorkerPool::start("sign", cpus, || ())
            .context("starting the signing workers")?;
        let state = AppState {
            passwords: Arc::new(passwords),
            hasher,
            mailer: Arc::new(mailer),
            limiter: Arc::new(limiter),
            store,
            keys: Arc::new(key_ring),
            clock,
            discovery: Arc::new(discovery),
            metrics: Arc::new(Metrics::new(now)),
            signing: Arc::new(signing),
            jobs_wake: Arc::new(tokio::sync::Notify::new()),
            settings: Arc::new(settings),
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
        crate::services::housekeeping::spawn(state.clone());
        crate::services::background::spawn(state.clone());
        Ok(Self {
            port,
            server,
            metrics,
            state,
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
