//! `castellan serve`.

use std::net::TcpListener;

use anyhow::Context;

use super::CliError;
use crate::config::Settings;
use crate::startup::Application;

pub async fn run(settings: Settings) -> Result<(), CliError> {
    let addr = settings.listen_addr()?;
    let listener = TcpListener::bind(addr).with_context(|| format!("cannot listen on {addr}"))?;
    let issuer = settings.base_url().to_owned();
    let app = Application::build(settings, listener).await?;
    tracing::info!(
        listen = %addr,
        discovery = format!("{issuer}{}", crate::paths::DISCOVERY),
        "castellan is serving"
    );
    app.run_until_stopped().await.context("serving HTTP")?;
    tracing::info!("castellan stopped");
    Ok(())
}
