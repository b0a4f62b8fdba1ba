//! Logging through `tracing`: human-readable (`pretty`) or one JSON object per line (`json`).
//! Never a password, token, code or secret in a log line: request logs carry the path without
//! its query string.

use tracing_subscriber::EnvFilter;

/// Installs the global subscriber (once per process; later calls are ignored). Logs go to stderr.
pub fn init(filter: &str, format: &str) {
    let filter = EnvFilter::try_new(filter).unwrap_or_else(|_| EnvFilter::new("info"));
    let builder = tracing_subscriber::fmt()
        .with_env_filter(filter)
        .with_writer(std::io::stderr);
    let _ = if format == "json" {
        builder
            .json()
            .flatten_event(true)
            .with_current_span(false)
            .try_init()
    } else {
        builder.with_target(false).try_init()
    };
}
