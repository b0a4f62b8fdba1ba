//! Second factors: TOTP seeds, recovery codes, and sign-ins waiting for their second factor.
//!
//! Each single-use value is taken by one conditional statement whose affected-row count
//! decides the winner: a TOTP time step (`last_step < step`), a recovery code (its row is
//! deleted), a pending sign-in (deleted while unexpired). Two racing requests, on one instance
//! or several, cannot both use one.

use sea_orm::sea_query::Expr;
use sea_orm::{
    ActiveModelTrait, ActiveValue::Set, ColumnTrait, EntityTrait, PaginatorTrait, QueryFilter,
};

use super::entities::{
    passkey, pending_sign_in, recovery_code, session, totp_factor, webauthn_ceremony,
};
use super::{Store, StoreError};
use crate::domain::upstream::IdentityLink;
use crate::domain::{UnixTime, UserId};

/// A user's TOTP factor as stored.
#[derive(Clone)]
pub struct TotpRecord {
    /// The seed as stored: sealed, or plain base32 (`services::factors` tells them apart).
    pub secret: String,
    /// `false` while enrolment waits for the first right code.
    pub confirmed: bool,
    pub last_step: i64,
    pub created_at: UnixTime,
}

impl std::fmt::Debug for TotpRecord {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.debug_struct("TotpRecord")
            .field("confirmed", &self.confirmed)
            .finish_non_exhaustive()
    }
}

/// What [`Store::reset_second_factors`] removed.
#[derive(Debug, Clone, Copy, Default, PartialEq, Eq)]
pub struct FactorsReset {
    /// Confirmed second factors removed (a TOTP factor, passkeys).
    pub factors: u64,
    /// Recovery codes removed.
    pub recovery_codes: u64,
    /// Sign-ins that were waiting for a second factor, ended.
    pub pending_sign_ins: u64,
}

/// What removing a TOTP factor came to.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum TotpRemoval {
    Removed,
    NotOn,
    /// It is the last second factor (no passkey) and the policy requires one: kept.
    LastFactor,
}

/// A right password waiting for its second factor.
#[derive(Debug, Clone)]
pub struct PendingSignIn {
    pub user_id: UserId,
    pub login_ticket: Option<String>,
    /// The first factor was this upstream provider (`None`: a password).
    pub upstream: Option<String>,
    /// An upstream identity to link to the account when the second step succeeds.
    pub link: Option<IdentityLink>,
}

fn link_to_json(l: &IdentityLink) -> String {
    serde_json::json!({"upstream_id": l.upstream_id, "subject": l.subject, "email": l.email})
        .to_string()
}

fn link_from_json(s: &str) -> Option<IdentityLink> {
    let v: serde_json::Value = serde_json::from_str(s).ok()?;
    Some(IdentityLink {
        upstream_id: v.get("upstream_id")?.as_str()?.to_owned(),
        subject: v.get("subject")?.as_str()?.to_owned(),
        email: v.get("email").and_then(|e| e.as_str()).map(str::to_owned),
    })
}

impl Store {
    pub async fn totp_factor(&self, user: &UserId) -> Result<Option<TotpRecord>, StoreError> {
        Ok(totp_factor::Entity::find_by_id(user.as_str().to_owned())
            .one(self.conn())
            .await?
            .map(|m| TotpRecord {
                secret: m.secret,
                confirmed: m.confirmed_at.is_some(),
                last_step: m.last_step,
                created_at: UnixTime::from_secs(m.created_at),
            }))
    }

    /// How many second factors the user has that count (a confirmed TOTP factor, each
    /// passkey): the one query every policy decision reads (`services::factors::Factors::has_any`,
    /// the rule that the last factor stays). A new kind of factor is added here.
    pub async fn count_second_factors(&self, user: &UserId) -> Result<u64, StoreError> {
        let totp = totp_factor::Entity::find()
            .filter(totp_factor::Column::UserId.eq(user.as_str()))
            .filter(totp_factor::Column::ConfirmedAt.is_not_null())
            .count(self.conn())
            .await?;
        let passkeys = passkey::Entity::find()
            .filter(passkey::Column::UserId.eq(user.as_str()))
            .count(self.conn())
            .await?;
        Ok(totp + passkeys)
    }

    /// An administrator's reset of the user's second factors, in one transaction: every
    /// factor (a TOTP factor, confirmed or still enrolling; every passkey), every recovery code,
    /// every sign-in waiting for a second factor, and the user's passkey ceremonies. Sessions,
    /// tokens and the password stay.
    pub async fn reset_second_factors(&self, user: &UserId) -> Result<FactorsReset, StoreError> {
        let _w = self.write_gate().await;
        let tx = self.conn().begin().await?;
        let factors = totp_factor::Entity::delete_many()
            .filter(totp_factor::Column::UserId.eq(user.as_str()))
            .filter(totp_factor::Column::ConfirmedAt.is_not_null())
            .exec(&tx)
            .await?
            .rows_affected;
        totp_factor::Entity::delete_many()
            .filter(totp_factor::Column::UserId.eq(user.as_str()))
            .exec(&tx)
            .await?;
        let passkeys = passkey::Entity::delete_many()
            .filter(passkey::Column::UserId.eq(user.as_str()))
            .exec(&tx)
            .await?
            .rows_affected;
        webauthn_ceremony::Entity::delete_many()
            .filter(webauthn_ceremony::Column::UserId.eq(user.as_str()))
            .exec(&tx)
            .await?;
        let recovery_codes = recovery_code::Entity::delete_many()
            .filter(recovery_code::Column::UserId.eq(user.as_str()))
            .exec(&tx)
            .await?
            .rows_affected;
        let pending_sign_ins = pending_sign_in::Entity::delete_many()
            .filter(pending_sign_in::Column::UserId.eq(user.as_str()))
            .exec(&tx)
            .await?
            .rows_affected;
        tx.commit().await?;
        Ok(FactorsReset {
            factors: factors + passkeys,
            recovery_codes,
            pending_sign_ins,
        })
    }

    /// Whether the user has a confirmed TOTP factor (the TOTP pages; policy decisions ask
    /// [`Store::count_second_factors`]).
    pub async fn has_totp(&self, user: &UserId) -> Result<bool, StoreError> {
        Ok(totp_factor::Entity::find()
            .filter(totp_factor::Column::UserId.eq(user.as_str()))
            .filter(totp_factor::Column::ConfirmedAt.is_not_null())
            .count(self.conn())
            .await?
            > 0)
    }

    /// Stores a seed waiting for its first right code, replacing an unconfirmed one; a
    /// confirmed factor is kept (`Conflict`).
    pub async fn put_unconfirmed_totp(
        &self,
        user: &UserId,
        secret: String,
        now: UnixTime,
    ) -> Result<(), StoreError> {
        let _w = self.write_gate().await;
        totp_factor::Entity::delete_many()
            .filter(totp_factor::Column::UserId.eq(user.as_str()))
            .filter(totp_factor::Column::ConfirmedAt.is_null())
            .exec(self.conn())
            .await?;
        totp_factor::ActiveModel {
            user_id: Set(user.as_str().to_owned()),
            secret: Set(secret),
            confirmed_at: Set(None),
            last_step: Set(0),
            created_at: Set(now.secs()),
        }
        .insert(self.conn())
        .await
        .map_err(StoreError::from_insert)?;
        Ok(())
    }

    /// Confirms an unconfirmed factor with the step of its first right code, and gives the
    /// user a new set of recovery codes, in one transaction. `false`: nothing to confirm.
    pub async fn confirm_totp(
        &self,
        user: &UserId,
        step: i64,
        code_hashes: &[String],
        now: UnixTime,
    ) -> Result<bool, StoreError> {
        let _w = self.write_gate().await;
        let tx = self.conn().begin().await?;
        let r = totp_factor::Entity::update_many()
            .col_expr(totp_factor::Column::ConfirmedAt, Expr::value(now.secs()))
            .col_expr(totp_factor::Column::LastStep, Expr::value(step))
            .filter(totp_factor::Column::UserId.eq(user.as_str()))
            .filter(totp_factor::Column::ConfirmedAt.is_null())
            .exec(&tx)
            .await?;
        if r.rows_affected != 1 {
            tx.rollback().await?;
            return Ok(false);
        }
        replace_codes(&tx, user, code_hashes, now).await?;
        tx.commit().await?;
        Ok(true)
    }

    /// Takes a TOTP time step for the user's confirmed factor: one conditional UPDATE, so a
    /// step at or below the last one used (a replay, here or on another instance) changes
    /// nothing and is refused (RFC 6238 §5.2: a verifier MUST NOT accept the second attempt
    /// of the same OTP after the successful validation).
    pub async fn take_totp_step(&self, user: &UserId, step: i64) -> Result<bool, StoreError> {
        let _w = self.write_gate().await;
        let r = totp_factor::Entity::update_many()
            .col_expr(totp_factor::Column::LastStep, Expr::value(step))
            .filter(totp_factor::Column::UserId.eq(user.as_str()))
            .filter(totp_factor::Column::ConfirmedAt.is_not_null())
            .filter(totp_factor::Column::LastStep.lt(step))
            .exec(self.conn())
            .await?;
        Ok(r.rows_affected == 1)
    }

    /// Removes the user's TOTP factor and recovery codes, unless `keep_a_factor` (the policy
    /// requires a second factor) and the user has no passkey left to be it.
    pub async fn remove_totp(
        &self,
        user: &UserId,
        keep_a_factor: bool,
    ) -> Result<TotpRemoval, StoreError> {
        let _w = self.write_gate().await;
        let tx = self.conn().begin().await?;
        // The user's row locked first (PostgreSQL: `FOR UPDATE`; SQLite has one writer), as
        // for a passkey's removal: of a parallel removal of the last TOTP factor and the last
        // passkey, one is refused while the policy requires a factor.
        if super::passkeys::lock_user(&tx, user).await?.is_none() {
            tx.rollback().await?;
            return Ok(TotpRemoval::NotOn);
        }
        if keep_a_factor {
            let passkeys = passkey::Entity::find()
                .filter(passkey::Column::UserId.eq(user.as_str()))
                .count(&tx)
                .await?;
            if passkeys == 0 {
                tx.rollback().await?;
                return Ok(TotpRemoval::LastFactor);
            }
        }
        let r = totp_factor::Entity::delete_many()
            .filter(totp_factor::Column::UserId.eq(user.as_str()))
            .exec(&tx)
            .await?;
        recovery_code::Entity::delete_many()
            .filter(recovery_code::Column::UserId.eq(user.as_str()))
            .exec(&tx)
            .await?;
        tx.commit().await?;
        Ok(if r.rows_affected > 0 {
            TotpRemoval::Removed
        } else {
            TotpRemoval::NotOn
        })
    }

    /// Replaces the user's recovery codes with a new set (the old set ends).
    pub async fn replace_recovery_codes(
        &self,
        user: &UserId,
        code_hashes: &[String],
        now: UnixTime,
    ) -> Result<(), StoreError> {
        let _w = self.write_gate().await;
        let tx = self.conn().begin().await?;
        replace_codes(&tx, user, code_hashes, now).await?;
        tx.commit().await?;
        Ok(())
    }

    /// Uses one recovery code: one DELETE, so of two parallel uses exactly one wins.
    pub async fn take_recovery_code(
        &self,
        user: &UserId,
        code_hash: &str,
    ) -> Result<bool, StoreError> {
        let _w = self.write_gate().await;
        let r = recovery_code::Entity::delete_many()
            .filter(recovery_code::Column::UserId.eq(user.as_str()))
            .filter(recovery_code::Column::CodeHash.eq(code_hash))
            .exec(self.conn())
            .await?;
        Ok(r.rows_affected == 1)
    }

    pub async fn count_recovery_codes(&self, user: &UserId) -> Result<u64, StoreError> {
        Ok(recovery_code::Entity::find()
            .filter(recovery_code::Column::UserId.eq(user.as_str()))
            .count(self.conn())
            .await?)
    }

    // --- pending sign-ins ------------------------------------------------------------------

    pub async fn insert_pending_sign_in(
        &self,
        id_hash: String,
        pending: PendingSignIn,
        expires_at: UnixTime,
        now: UnixTime,
    ) -> Result<(), StoreError> {
        let _w = self.write_gate().await;
        pending_sign_in::ActiveModel {
            id_hash: Set(id_hash),
            user_id: Set(pending.user_id.as_str().to_owned()),
            login_ticket: Set(pending.login_ticket),
            upstream: Set(pending.upstream),
            link: Set(pending.link.as_ref().map(link_to_json)),
            created_at: Set(now.secs()),
            expires_at: Set(expires_at.secs()),
        }
        .insert(self.conn())
        .await
        .map_err(StoreError::from_insert)?;
        Ok(())
    }

    /// The unexpired pending sign-in behind a cookie's hash.
    pub async fn pending_sign_in(
        &self,
        id_hash: &str,
        now: UnixTime,
    ) -> Result<Option<PendingSignIn>, StoreError> {
        Ok(pending_sign_in::Entity::find_by_id(id_hash.to_owned())
            .filter(pending_sign_in::Column::ExpiresAt.gt(now.secs()))
            .one(self.conn())
            .await?
            .map(|m| PendingSignIn {
                user_id: UserId::from_stored(m.user_id),
                login_ticket: m.login_ticket,
                upstream: m.upstream,
                link: m.link.as_deref().and_then(link_from_json),
            }))
    }

    /// Uses a pending sign-in: one DELETE of the unexpired row, so it serves once.
    pub async fn take_pending_sign_in(
        &self,
        id_hash: &str,
        now: UnixTime,
    ) -> Result<bool, StoreError> {
        let _w = self.write_gate().await;
        let r = pending_sign_in::Entity::delete_many()
            .filter(pending_sign_in::Column::IdHash.eq(id_hash))
            .filter(pending_sign_in::Column::ExpiresAt.gt(now.secs()))
            .exec(self.conn())
            .await?;
        Ok(r.rows_affected == 1)
    }

    /// Records in a live session that its user has now also used a second factor (TOTP
    /// enrolment proves one): its methods become `amr`.
    pub async fn set_session_amr(&self, sid: &str, amr: &[String]) -> Result<bool, StoreError> {
        let _w = self.write_gate().await;
        let r = session::Entity::update_many()
            .col_expr(session::Column::Amr, Expr::value(amr.join(" ")))
            .filter(session::Column::Sid.eq(sid))
            .exec(self.conn())
            .await?;
        Ok(r.rows_affected == 1)
    }
}

async fn replace_codes(
    tx: &super::deadline::Tx,
    user: &UserId,
    code_hashes: &[String],
    now: UnixTime,
) -> Result<(), StoreError> {
    recovery_code::Entity::delete_many()
        .filter(recovery_code::Column::UserId.eq(user.as_str()))
        .exec(tx)
        .await?;
    if code_hashes.is_empty() {
        return Ok(());
    }
    recovery_code::Entity::insert_many(code_hashes.iter().map(|h| recovery_code::ActiveModel {
        code_hash: Set(h.clone()),
        user_id: Set(user.as_str().to_owned()),
        created_at: Set(now.secs()),
    }))
    .exec(tx)
    .await
    .map_err(StoreError::from_insert)?;
    Ok(())
}
