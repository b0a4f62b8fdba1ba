//! Passkeys and WebAuthn ceremonies.
//!
//! A ceremony is taken by one conditional DELETE of its unexpired row, whose affected-row
//! count decides the winner: two answers to one challenge, on one instance or several, cannot
//! both be checked. A passkey's signature counter is raised by one conditional UPDATE (W3C
//! WebAuthn Level 2 §7.2 step 21): an assertion whose counter is not above the stored one,
//! where either is non-zero, changes nothing and is refused.

use sea_orm::sea_query::Expr;
use sea_orm::{
    ActiveModelTrait, ActiveValue::Set, ColumnTrait, Condition, ConnectionTrait, EntityTrait,
    PaginatorTrait, QueryFilter, QueryOrder, QuerySelect,
};

use super::entities::{passkey, totp_factor, upstream_identity, user, webauthn_ceremony};
use super::{Store, StoreError};
use crate::domain::{UnixTime, UserId};

/// A registered passkey as stored.
#[derive(Clone)]
pub struct PasskeyRecord {
    pub id: String,
    pub user_id: UserId,
    /// base64url of the credential id.
    pub credential_id: String,
    pub name: String,
    /// The credential as `webauthn-rs` serialises it (public key, flags, counter).
    pub data: String,
    pub sign_count: i64,
    pub created_at: UnixTime,
    pub last_used_at: Option<UnixTime>,
}

impl std::fmt::Debug for PasskeyRecord {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.debug_struct("PasskeyRecord")
            .field("id", &self.id)
            .field("name", &self.name)
            .finish_non_exhaustive()
    }
}

impl From<passkey::Model> for PasskeyRecord {
    fn from(m: passkey::Model) -> Self {
        PasskeyRecord {
            id: m.id,
            user_id: UserId::from_stored(m.user_id),
            credential_id: m.credential_id,
            name: m.name,
            data: m.data,
            sign_count: m.sign_count,
            created_at: UnixTime::from_secs(m.created_at),
            last_used_at: m.last_used_at.map(UnixTime::from_secs),
        }
    }
}

/// A ceremony waiting for the browser's answer.
#[derive(Clone)]
pub struct CeremonyRecord {
    pub purpose: String,
    pub user_id: Option<UserId>,
    /// What started it (a session, a pending sign-in), as `services::passkeys` names it.
    pub binding: Option<String>,
    /// The ceremony state as `webauthn-rs` serialises it (the challenge).
    pub state: String,
}

/// A new ceremony.
pub struct NewCeremony {
    pub id_hash: String,
    pub purpose: &'static str,
    pub user_id: Option<UserId>,
    pub binding: Option<String>,
    pub state: String,
    pub expires_at: UnixTime,
}

impl Store {
    pub async fn insert_ceremony(&self, c: NewCeremony, now: UnixTime) -> Result<(), StoreError> {
        let _w = self.write_gate().await;
        webauthn_ceremony::ActiveModel {
            id_hash: Set(c.id_hash),
            purpose: Set(c.purpose.to_owned()),
            user_id: Set(c.user_id.map(|u| u.as_str().to_owned())),
            binding: Set(c.binding),
            state: Set(c.state),
            created_at: Set(now.secs()),
            expires_at: Set(c.expires_at.secs()),
        }
        .insert(self.conn())
        .await
        .map_err(StoreError::from_insert)?;
        Ok(())
    }

    /// The unexpired ceremony behind a cookie's hash, not yet used.
    pub async fn ceremony(
        &self,
        id_hash: &str,
        now: UnixTime,
    ) -> Result<Option<CeremonyRecord>, StoreError> {
        Ok(webauthn_ceremony::Entity::find_by_id(id_hash.to_owned())
            .filter(webauthn_ceremony::Column::ExpiresAt.gt(now.secs()))
            .one(self.conn())
            .await?
            .map(|m| CeremonyRecord {
                purpose: m.purpose,
                user_id: m.user_id.map(UserId::from_stored),
                binding: m.binding,
                state: m.state,
            }))
    }

    /// Uses a ceremony: one DELETE of the unexpired row, so it serves once.
    pub async fn take_ceremony(&self, id_hash: &str, now: UnixTime) -> Result<bool, StoreError> {
        let _w = self.write_gate().await;
        let r = webauthn_ceremony::Entity::delete_many()
            .filter(webauthn_ceremony::Column::IdHash.eq(id_hash))
            .filter(webauthn_ceremony::Column::ExpiresAt.gt(now.secs()))
            .exec(self.conn())
            .await?;
        Ok(r.rows_affected == 1)
    }

    /// Stores a new passkey; `Conflict` when its credential id is registered already (to any
    /// account).
    pub async fn insert_passkey(&self, p: PasskeyRecord) -> Result<(), StoreError> {
        let _w = self.write_gate().await;
        passkey::ActiveModel {
            id: Set(p.id),
            user_id: Set(p.user_id.as_str().to_owned()),
            credential_id: Set(p.credential_id),
            name: Set(p.name),
            data: Set(p.data),
            sign_count: Set(p.sign_count),
            created_at: Set(p.created_at.secs()),
            last_used_at: Set(p.last_used_at.map(|t| t.secs())),
        }
        .insert(self.conn())
        .await
        .map_err(StoreError::from_insert)?;
        Ok(())
    }

    /// The user's passkeys, oldest first.
    pub async fn passkeys_of(&self, user: &UserId) -> Result<Vec<PasskeyRecord>, StoreError> {
        Ok(passkey::Entity::find()
            .filter(passkey::Column::UserId.eq(user.as_str()))
            .order_by_asc(passkey::Column::CreatedAt)
            .order_by_asc(passkey::Column::Id)
            .all(self.conn())
            .await?
            .into_iter()
            .map(PasskeyRecord::from)
            .collect())
    }

    pub async fn count_passkeys(&self, user: &UserId) -> Result<u64, StoreError> {
        Ok(passkey::Entity::find()
            .filter(passkey::Column::UserId.eq(user.as_str()))
            .count(self.conn())
            .await?)
    }

    /// The passkey with this credential id (base64url), whoever's it is.
    pub async fn passkey_by_credential(
        &self,
        credential_id: &str,
    ) -> Result<Option<PasskeyRecord>, StoreError> {
        Ok(passkey::Entity::find()
            .filter(passkey::Column::CredentialId.eq(credential_id))
            .one(self.conn())
            .await?
            .map(PasskeyRecord::from))
    }

    /// Records a sign-in with a passkey: the new credential data and counter, in one
    /// conditional UPDATE (the counter must rise, unless the authenticator keeps none: both 0).
    /// `false`: the counter did not rise (a cloned authenticator, or a parallel use).
    pub async fn record_passkey_use(
        &self,
        id: &str,
        data: String,
        sign_count: i64,
        now: UnixTime,
    ) -> Result<bool, StoreError> {
        let _w = self.write_gate().await;
        let counter_ok = if sign_count == 0 {
            Condition::all().add(passkey::Column::SignCount.eq(0))
        } else {
            Condition::all().add(passkey::Column::SignCount.lt(sign_count))
        };
        let r = passkey::Entity::update_many()
            .col_expr(passkey::Column::Data, Expr::value(data))
            .col_expr(passkey::Column::SignCount, Expr::value(sign_count))
            .col_expr(passkey::Column::LastUsedAt, Expr::value(now.secs()))
            .filter(passkey::Column::Id.eq(id))
            .filter(counter_ok)
            .exec(self.conn())
            .await?;
        Ok(r.rows_affected == 1)
    }

    /// Renames one of the user's passkeys; `false` when the user has none with this id.
    pub async fn rename_passkey(
        &self,
        user: &UserId,
        id: &str,
        name: &str,
    ) -> Result<bool, StoreError> {
        let _w = self.write_gate().await;
        let r = passkey::Entity::update_many()
            .col_expr(passkey::Column::Name, Expr::value(name))
            .filter(passkey::Column::Id.eq(id))
            .filter(passkey::Column::UserId.eq(user.as_str()))
            .exec(self.conn())
            .await?;
        Ok(r.rows_affected == 1)
    }

    /// Removes one of the user's passkeys unless it is the last way to sign in (no password,
    /// no other passkey, no linked upstream identity), or, with `keep_a_factor` (the user's roles require a second factor),
    /// the last second factor (no other passkey, no TOTP). The user's row is locked first
    /// (PostgreSQL: `FOR UPDATE`; SQLite has one writer), so two parallel removals of the last
    /// two passkeys cannot both win.
    pub async fn remove_passkey_keeping_a_way_in(
        &self,
        user_id: &UserId,
        id: &str,
        keep_a_factor: bool,
    ) -> Result<KeptWayIn, StoreError> {
        let _w = self.write_gate().await;
        let tx = self.conn().begin().await?;
        let Some(u) = lock_user(&tx, user_id).await? else {
            tx.rollback().await?;
            return Ok(KeptWayIn::NotFound);
        };
        let others = passkey::Entity::find()
            .filter(passkey::Column::UserId.eq(user_id.as_str()))
            .filter(passkey::Column::Id.ne(id))
            .count(&tx)
            .await?;
        if u.password_hash.is_none() && others == 0 && identities(&tx, user_id).await? == 0 {
            tx.rollback().await?;
            return Ok(KeptWayIn::LastWayIn);
        }
        if keep_a_factor && others == 0 {
            let totp = totp_factor::Entity::find()
                .filter(totp_factor::Column::UserId.eq(user_id.as_str()))
                .filter(totp_factor::Column::ConfirmedAt.is_not_null())
                .count(&tx)
                .await?;
            if totp == 0 {
                tx.rollback().await?;
                return Ok(KeptWayIn::LastFactor);
            }
        }
        let r = passkey::Entity::delete_many()
            .filter(passkey::Column::Id.eq(id))
            .filter(passkey::Column::UserId.eq(user_id.as_str()))
            .exec(&tx)
            .await?;
        tx.commit().await?;
        Ok(if r.rows_affected == 1 {
            KeptWayIn::Done
        } else {
            KeptWayIn::NotFound
        })
    }

    /// Removes the user's password when the user has a passkey or a linked upstream identity
    /// to sign in with, under the same lock as [`Store::remove_passkey_keeping_a_way_in`].
    pub async fn remove_password_keeping_a_way_in(
        &self,
        user_id: &UserId,
        now: UnixTime,
    ) -> Result<KeptWayIn, StoreError> {
        let _w = self.write_gate().await;
        let tx = self.conn().begin().await?;
        let Some(u) = lock_user(&tx, user_id).await? else {
            tx.rollback().await?;
            return Ok(KeptWayIn::NotFound);
        };
        if u.password_hash.is_none() {
            tx.rollback().await?;
            return Ok(KeptWayIn::NotFound);
        }
        let passkeys = passkey::Entity::find()
            .filter(passkey::Column::UserId.eq(user_id.as_str()))
            .count(&tx)
            .await?;
        if passkeys == 0 && identities(&tx, user_id).await? == 0 {
            tx.rollback().await?;
            return Ok(KeptWayIn::LastWayIn);
        }
        user::Entity::update_many()
            .col_expr(
                user::Column::PasswordHash,
                Expr::value(Option::<String>::None),
            )
            .col_expr(user::Column::UpdatedAt, Expr::value(now.secs()))
            .filter(user::Column::Id.eq(user_id.as_str()))
            .exec(&tx)
            .await?;
        tx.commit().await?;
        Ok(KeptWayIn::Done)
    }
}

/// What a removal that must keep a way to sign in came to.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum KeptWayIn {
    Done,
    /// It is the last way to sign in: refused.
    LastWayIn,
    /// It is the last second factor of a user whose roles require one: refused.
    LastFactor,
    /// No such passkey (or password) of this user.
    NotFound,
}

/// How many passkeys the account has.
pub(super) async fn passkey_count(
    tx: &super::deadline::Tx,
    user_id: &UserId,
) -> Result<u64, StoreError> {
    Ok(passkey::Entity::find()
        .filter(passkey::Column::UserId.eq(user_id.as_str()))
        .count(tx)
        .await?)
}

/// How many upstream identities can sign in to the account (each is a way in).
pub(super) async fn identities(
    tx: &super::deadline::Tx,
    user_id: &UserId,
) -> Result<u64, StoreError> {
    Ok(upstream_identity::Entity::find()
        .filter(upstream_identity::Column::UserId.eq(user_id.as_str()))
        .count(tx)
        .await?)
}

/// Locks the user's row for the rest of the transaction: `SELECT … FOR UPDATE` on PostgreSQL.
/// On SQLite the transaction's first statement is a write to the row that changes nothing: it
/// takes the database's write lock (waiting its turn like any writer), so the reads and writes
/// after it cannot fail with "database is locked" as a transaction that reads first does when
/// another connection writes in between.
pub(super) async fn lock_user(
    tx: &super::deadline::Tx,
    id: &UserId,
) -> Result<Option<user::Model>, StoreError> {
    let mut q = user::Entity::find_by_id(id.as_str().to_owned());
    if tx.get_database_backend() == sea_orm::DbBackend::Postgres {
        q = q.lock_exclusive();
    } else {
        user::Entity::update_many()
            .col_expr(user::Column::UpdatedAt, Expr::col(user::Column::UpdatedAt))
            .filter(user::Column::Id.eq(id.as_str()))
            .exec(tx)
            .await?;
    }
    Ok(q.one(tx).await?)
}
