//! `castellan audit list`: the audit log, newest first, filtered like the admin API's
//! `/admin/api/v1/audit`.

use clap::Subcommand;
use serde_json::json;

use super::{AdminCli, CliError, admin_error, now, print_json};
use crate::domain::AuditQuery;

#[derive(Debug, Subcommand)]
pub enum AuditCommand {
    /// List audit events, newest first.
    List {
        /// Only this kind (e.g. login_failed, role_changed, client_created).
        #[arg(long)]
        kind: Option<String>,
        /// Only events about this user id.
        #[arg(long)]
        user: Option<String>,
        /// Only events about this client id.
        #[arg(long)]
        client: Option<String>,
        /// Only the last N seconds.
        #[arg(long, value_name = "SECONDS")]
        since: Option<i64>,
        /// Only events older than this event id (for the next page).
        #[arg(long)]
        before: Option<i64>,
        /// At most this many events (1 to 500).
        #[arg(long, default_value_t = 50, value_parser = clap::value_parser!(u64).range(1..=500))]
        limit: u64,
    },
}

pub async fn run(cmd: AuditCommand, cli: &AdminCli, json_out: bool) -> Result<(), CliError> {
    let AuditCommand::List {
        kind,
        user,
        client,
        since,
        before,
        limit,
    } = cmd;
    let events = cli
        .admin
        .audit_events(
            &cli.actor,
            AuditQuery {
                from: since.map(|s| now().minus(s.max(0))),
                to: None,
                user_id: user,
                client_id: client,
                kind,
                before,
                limit,
            },
        )
        .await
        .map_err(|e| admin_error(e, "", str::to_owned))?;
    if json_out {
        print_json(&json!(
            events
                .iter()
                .map(|e| json!({
                    "id": e.id, "at": e.at.secs(), "kind": e.kind, "actor": e.actor,
                    "user_id": e.user_id, "client_id": e.client_id, "ip": e.ip, "detail": e.detail,
                }))
                .collect::<Vec<_>>()
        ));
    } else if events.is_empty() {
        println!("no events");
    } else {
        for e in &events {
            let when = chrono::DateTime::from_timestamp(e.at.secs(), 0)
                .map(|t| t.format("%Y-%m-%d %H:%M:%S").to_string())
                .unwrap_or_else(|| e.at.to_string());
            println!(
                "{:>8}  {when}  {:<26} actor={} user={} client={} ip={} {}",
                e.id,
                e.kind,
                e.actor.as_deref().unwrap_or("-"),
                e.user_id.as_deref().unwrap_or("-"),
                e.client_id.as_deref().unwrap_or("-"),
                e.ip.as_deref().unwrap_or("-"),
                e.detail
            );
        }
    }
    Ok(())
}
