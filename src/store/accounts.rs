//! What the account pages need beyond users and grants: one-time email tokens, a user's
//! sessions and connected apps, and the audit log.

use sea_orm::{
    ActiveModelTrait, ActiveValue::Set, ColumnTrait, EntityTrait, QueryFilter, QueryOrder,
    QuerySelect,
};

use super::entities::{audit_event, client, consent, email_token, refresh_token, session};
use super::{Store, StoreError};
pub use crate::domain::{AuditEntry, AuditEvent, AuditKind, AuditQuery};
use crate::domain::{ClientId, ScopeSet, UnixTime, UserId};

/// The kinds of one-time email tokens (`email_tokens.kind`).
pub mod token_kind {
    /// Verifies the address given at registration.
    pub const VERIFY: &str = "verify";
    /// Sets a new password.
    pub const RESET: &str = "reset";
    /// Moves the account to a new address.
    pub const EMAIL_CHANGE: &str = "email_change";
}

/// A one-time email token (verification, reset, email change).
#[derive(Debug, Clone)]
pub struct EmailTokenRecord {
    pub user_id: UserId,
    pub kind: String,
    pub email: String,
    pub expires_at: UnixTime,
}

/// A session as the account page lists it.
#[derive(Debug, Clone)]
pub struct SessionSummary {
    pub sid: String,
    pub ip: Option<String>,
    pub user_agent: Option<String>,
    pub created_at: UnixTime,
    pub last_seen: UnixTime,
}

/// An app the user has consented to.
#[derive(Debug, Clone)]
pub struct ConnectedApp {
    pub client_id: ClientId,
    pub name: String,
    pub scopes: ScopeSet,
    pub granted_at: UnixTime,
}

/// Writes the structured log line of an audit event and returns its row, to insert on its own
/// ([`Store::audit`]) or in the transaction of the change it records.
pub(super) fn audit_row(e: AuditEntry, now: UnixTime) -> audit_event::ActiveModel {
    tracing::info!(
        target: "castellan::audit",
        kind = e.kind.as_str(),
        actor = e.actor.as_deref(),
        user_id = e.user_id.as_deref(),
        client_id = e.client_id.as_deref(),
        ip = e.ip.as_deref(),
        detail = e.detail.as_str(),
        "audit"
    );
    audit_event::ActiveModel {
        at: Set(now.secs()),
        kind: Set(e.kind.as_str().to_owned()),
        actor: Set(e.actor),
        user_id: Set(e.user_id),
        client_id: Set(e.client_id),
        ip: Set(e.ip),
        detail: Set(e.detail),
        ..Default::default()
    }
}

/// The email token with this hash, if it is of `kind` and not expired: what peeking shows and
/// taking uses up.
fn live_email_token(token_hash: &str, kind: &str, now: UnixTime) -> sea_orm::Condition {
    sea_orm::Condition::all()
        .add(email_token::Column::TokenHash.eq(token_hash))
        .add(email_token::Column::Kind.eq(kind))
        .add(email_token::Column::ExpiresAt.gt(now.secs()))
}

impl From<email_token::Model> for EmailTokenRecord {
    fn from(m: email_token::Model) -> Self {
        Self {
            user_id: UserId::from_stored(m.user_id),
            kind: m.kind,
            email: m.email,
            expires_at: UnixTime::from_secs(m.expires_at),
        }
    }
}

impl Store {
    // --- email tokens ----------------------------------------------------------------------

    pub async fn insert_email_token(
        &self,
        token_hash: &str,
        user_id: &UserId,
        kind: &str,
        email: &str,
        now: UnixTime,
        expires_at: UnixTime,
    ) -> Result<(), StoreError> {
        let _w = self.write_gate().await;
        email_token::ActiveModel {
            token_hash: Set(token_hash.to_owned()),
            user_id: Set(user_id.as_str().to_owned()),
            kind: Set(kind.to_owned()),
            email: Set(email.to_owned()),
            created_at: Set(now.secs()),
            expires_at: Set(expires_at.secs()),
        }
        .insert(self.conn())
        .await
        .map_err(StoreError::from_insert)?;
        Ok(())
    }

    /// A live token of `kind`, without using it up (to show the reset form).
    pub async fn peek_email_token(
        &self,
        token_hash: &str,
        kind: &str,
        now: UnixTime,
    ) -> Result<Option<EmailTokenRecord>, StoreError> {
        Ok(email_token::Entity::find()
            .filter(live_email_token(token_hash, kind, now))
            .all(self.conn())
            .await?
            .pop()
            .map(EmailTokenRecord::from))
    }

    /// Uses a token up: only the caller whose delete removed the row gets it (one statement).
    pub async fn take_email_token(
        &self,
        token_hash: &str,
        kind: &str,
        now: UnixTime,
    ) -> Result<Option<EmailTokenRecord>, StoreError> {
        let _w = self.write_gate().await;
        Ok(email_token::Entity::delete_many()
            .filter(live_email_token(token_hash, kind, now))
            .exec_with_returning(self.conn())
            .await?
            .pop()
            .map(EmailTokenRecord::from))
    }

    /// Removes a user's other tokens of a kind (a new link replaces the old ones).
    pub async fn delete_email_tokens(
        &self,
        user_id: &UserId,
        kind: &str,
    ) -> Result<(), StoreError> {
        let _w = self.write_gate().await;
        email_token::Entity::delete_many()
            .filter(email_token::Column::UserId.eq(user_id.as_str()))
            .filter(email_token::Column::Kind.eq(kind))
            .exec(self.conn())
            .await?;
        Ok(())
    }

    // --- a user's sessions -----------------------------------------------------------------

    pub async fn user_sessions(
        &self,
        user_id: &UserId,
        now: UnixTime,
    ) -> Result<Vec<SessionSummary>, StoreError> {
        Ok(session::Entity::find()
            .filter(session::Column::UserId.eq(user_id.as_str()))
            .filter(session::Column::ExpiresAt.gt(now.secs()))
            .order_by_desc(session::Column::LastSeen)
            .limit(100)
            .all(self.conn())
            .await?
            .into_iter()
            .map(|m| SessionSummary {
                sid: m.sid,
                ip: m.ip,
                user_agent: m.user_agent,
                created_at: UnixTime::from_secs(m.created_at),
                last_seen: UnixTime::from_secs(m.last_seen),
            })
            .collect())
    }

    /// Ends one of the user's sessions by its public id.
    pub async fn delete_user_session(
        &self,
        user_id: &UserId,
        sid: &str,
    ) -> Result<bool, StoreError> {
        let _w = self.write_gate().await;
        let r = session::Entity::delete_many()
            .filter(session::Column::UserId.eq(user_id.as_str()))
            .filter(session::Column::Sid.eq(sid))
            .exec(self.conn())
            .await?;
        Ok(r.rows_affected > 0)
    }

    /// Ends every session of the user except `keep_sid`.
    pub async fn delete_user_sessions(
        &self,
        user_id: &UserId,
        keep_sid: Option<&str>,
    ) -> Result<u64, StoreError> {
        let _w = self.write_gate().await;
        let mut q =
            session::Entity::delete_many().filter(session::Column::UserId.eq(user_id.as_str()));
        if let Some(keep) = keep_sid {
            q = q.filter(session::Column::Sid.ne(keep));
        }
        Ok(q.exec(self.conn()).await?.rows_affected)
    }

    // --- connected apps ----------------------------------------------------------------------

    /// The apps the user has consented to, most recently granted first. A stored scope value
    /// that does not parse shows as no scopes (`store::stored_scope`).
    pub async fn user_consents(&self, user_id: &UserId) -> Result<Vec<ConnectedApp>, StoreError> {
        let rows = consent::Entity::find()
            .filter(consent::Column::UserId.eq(user_id.as_str()))
            .order_by_desc(consent::Column::UpdatedAt)
            .limit(200)
            .all(self.conn())
            .await?;
        // The clients' names in one query, not one per consent.
        let names: std::collections::HashMap<String, String> = client::Entity::find()
            .filter(client::Column::Id.is_in(rows.iter().map(|c| c.client_id.clone())))
            .select_only()
            .column(client::Column::Id)
            .column(client::Column::Name)
            .into_tuple::<(String, String)>()
            .all(self.conn())
            .await?
            .into_iter()
            .collect();
        Ok(rows
            .into_iter()
            .map(|c| ConnectedApp {
                name: names
                    .get(&c.client_id)
                    .cloned()
                    .unwrap_or_else(|| c.client_id.clone()),
                client_id: ClientId::from_stored(c.client_id),
                scopes: super::stored_scope(&c.scopes),
                granted_at: UnixTime::from_secs(c.updated_at),
            })
            .collect())
    }

    /// Revokes a consent and the refresh tokens the user gave that client.
    pub async fn revoke_consent(
        &self,
        user_id: &UserId,
        client_id: &str,
    ) -> Result<bool, StoreError> {
        let user_id = user_id.as_str();
        let r = {
            let _w = self.write_gate().await;
            consent::Entity::delete_many()
                .filter(consent::Column::UserId.eq(user_id))
                .filter(consent::Column::ClientId.eq(client_id))
                .exec(self.conn())
                .await?
        };
        self.flag_refresh_tokens_revoked(
            sea_orm::Condition::all()
                .add(refresh_token::Column::UserId.eq(user_id))
                .add(refresh_token::Column::ClientId.eq(client_id)),
        )
        .await?;
        Ok(r.rows_affected > 0)
    }

    // --- audit -----------------------------------------------------------------------------

    /// Stores an audit event and writes it as a structured log line.
    pub async fn audit(&self, e: AuditEntry, now: UnixTime) -> Result<(), StoreError> {
        let _w = self.write_gate().await;
        audit_row(e, now).insert(self.conn()).await?;
        Ok(())
    }

    /// [`Store::audit`] for an event recorded after the change it describes is made: a failure
    /// is logged (the structured line is already written) and does not undo the change.
    pub async fn record(&self, e: AuditEntry, now: UnixTime) {
        let kind = e.kind;
        if let Err(err) = self.audit(e, now).await {
            tracing::error!(error = %err, kind = kind.as_str(), "cannot write an audit row");
        }
    }

    /// Several events recorded together (a sign-in's factor and the sign-in itself): one
    /// multi-row INSERT, so one write instead of one per event. A failure is logged, as for
    /// [`Store::record`].
    pub async fn record_all(&self, entries: Vec<AuditEntry>, now: UnixTime) {
        if entries.is_empty() {
            return;
        }
        let _w = self.write_gate().await;
        let rows = entries.into_iter().map(|e| audit_row(e, now));
        if let Err(err) = audit_event::Entity::insert_many(rows)
            .exec(self.conn())
            .await
        {
            tracing::error!(error = %err, "cannot write audit rows");
        }
    }

    /// Audit events matching `q`, newest first. Every filter has an index (`at`, and
    /// `user_id`/`client_id`/`kind` each paired with `at`).
    pub async fn audit_events(&self, q: &AuditQuery) -> Result<Vec<AuditEvent>, StoreError> {
        let mut find = audit_event::Entity::find();
        if let Some(from) = q.from {
            find = find.filter(audit_event::Column::At.gte(from.secs()));
        }
        if let Some(to) = q.to {
            find = find.filter(audit_event::Column::At.lt(to.secs()));
        }
        if let Some(u) = &q.user_id {
            find = find.filter(audit_event::Column::UserId.eq(u.as_str()));
        }
        if let Some(c) = &q.client_id {
            find = find.filter(audit_event::Column::ClientId.eq(c.as_str()));
        }
        if let Some(k) = &q.kind {
            find = find.filter(audit_event::Column::Kind.eq(k.as_str()));
        }
        if let Some(b) = q.before {
            find = find.filter(audit_event::Column::Id.lt(b));
        }
        Ok(find
            .order_by_desc(audit_event::Column::Id)
            .limit(q.limit)
            .all(self.conn())
            .await?
            .into_iter()
            .map(|m| AuditEvent {
                id: m.id,
                at: UnixTime::from_secs(m.at),
                kind: m.kind,
                actor: m.actor,
                user_id: m.user_id,
                client_id: m.client_id,
                ip: m.ip,
                detail: m.detail,
            })
            .collect())
    }
}
