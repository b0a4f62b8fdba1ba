//! Grants: browser sessions, authorization codes (and the record of redeemed ones), refresh
//! tokens, revoked access tokens and consents. Every bearer value is stored only as its SHA-256
//! hash; single-use values are taken with a conditional delete/update whose affected-row count
//! decides the winner, so two racing requests cannot both redeem one value.

use sea_orm::sea_query::{Asterisk, Expr, Func};
use sea_orm::{
    ActiveModelTrait, ActiveValue::Set, ColumnTrait, EntityTrait, JoinType, QueryFilter,
    QuerySelect,
};

use super::entities::{
    authorization_code, consent, redeemed_code, refresh_token, revoked_token, session, user,
};
use super::{Step, Store, StoreError, split_list, stored_scope};
use crate::domain::{ClientId, ScopeSet, UnixTime, User, UserId};

/// A live browser session.
#[derive(Debug, Clone)]
pub struct SessionRecord {
    pub sid: String,
    pub user_id: UserId,
    pub auth_time: UnixTime,
    pub amr: Vec<String>,
    pub ip: Option<String>,
    pub user_agent: Option<String>,
    pub created_at: UnixTime,
    pub last_seen: UnixTime,
    pub expires_at: UnixTime,
    /// The ticket of the authorization request this session's login was made for, until a
    /// code is issued for that request.
    pub login_ticket: Option<String>,
    /// The upstream provider the session was signed in through (`None`: a local method).
    pub upstream: Option<String>,
}

pub struct NewSession {
    pub id_hash: String,
    pub sid: String,
    pub user_id: UserId,
    pub auth_time: UnixTime,
    pub amr: Vec<String>,
    pub ip: Option<String>,
    pub user_agent: Option<String>,
    pub expires_at: UnixTime,
    pub login_ticket: Option<String>,
    pub upstream: Option<String>,
}

/// What an authorization code stands for.
#[derive(Debug, Clone)]
pub struct CodeRecord {
    pub client_id: ClientId,
    pub user_id: UserId,
    pub redirect_uri: String,
    pub scope: ScopeSet,
    pub nonce: Option<String>,
    pub code_challenge: Option<String>,
    pub code_challenge_method: Option<String>,
    pub auth_time: UnixTime,
    pub amr: Vec<String>,
    pub sid: Option<String>,
    pub expires_at: UnixTime,
}

/// Joins a refresh token to the revocation-list entry of its grant (family), if any.
fn grant_revocation() -> sea_orm::RelationDef {
    refresh_token::Entity::belongs_to(revoked_token::Entity)
        .from(refresh_token::Column::FamilyId)
        .to(revoked_token::Column::Id)
        .into()
}

fn refresh_record(m: refresh_token::Model, grant_revoked: bool) -> RefreshRecord {
    RefreshRecord {
        token_hash: m.token_hash,
        family_id: m.family_id,
        client_id: ClientId::from_stored(m.client_id),
        user_id: UserId::from_stored(m.user_id),
        scope: stored_scope(&m.scope),
        auth_time: UnixTime::from_secs(m.auth_time),
        amr: split(&m.amr),
        sid: m.sid,
        created_at: UnixTime::from_secs(m.created_at),
        expires_at: UnixTime::from_secs(m.expires_at),
        rotated_at: m.rotated_at.map(UnixTime::from_secs),
        revoked: m.revoked || grant_revoked,
    }
}

#[derive(Debug, Clone)]
pub struct RefreshRecord {
    pub token_hash: String,
    pub family_id: String,
    pub client_id: ClientId,
    pub user_id: UserId,
    pub scope: ScopeSet,
    pub auth_time: UnixTime,
    pub amr: Vec<String>,
    pub sid: Option<String>,
    pub created_at: UnixTime,
    pub expires_at: UnixTime,
    pub rotated_at: Option<UnixTime>,
    pub revoked: bool,
}

pub struct NewRefresh {
    pub token_hash: String,
    pub family_id: String,
    /// The token this one replaces (a rotation); `None` for the first of a grant.
    pub parent: Option<ParentLink>,
    pub client_id: ClientId,
    pub user_id: UserId,
    pub scope: ScopeSet,
    pub auth_time: UnixTime,
    pub amr: Vec<String>,
    pub sid: Option<String>,
    pub expires_at: UnixTime,
}

/// The refresh token a successor replaces.
#[derive(Debug, Clone)]
pub struct ParentLink {
    pub hash: String,
    /// Mark the parent rotated in the transaction that stores its successor; `None` when it
    /// already was (a reuse inside the grace window).
    pub claim: Option<ParentClaim>,
}

/// Claiming a refresh token's rotation while storing its successor
/// ([`Store::insert_refresh`]).
#[derive(Debug, Clone, Copy)]
pub struct ParentClaim {
    /// Store the successor even if another request rotated the parent first: true inside the
    /// reuse grace window (`tokens.refresh_reuse_grace_secs`).
    pub successor_if_taken: bool,
}

fn join(list: &[String]) -> String {
    list.join(" ")
}

fn split(s: &str) -> Vec<String> {
    split_list(s).map(str::to_owned).collect()
}

impl Store {
    // --- sessions -------------------------------------------------------------------------

    pub async fn create_session(&self, s: NewSession, now: UnixTime) -> Result<(), StoreError> {
        let _w = self.write_gate().await;
        session::ActiveModel {
            id_hash: Set(s.id_hash),
            sid: Set(s.sid),
            user_id: Set(s.user_id.as_str().to_owned()),
            auth_time: Set(s.auth_time.secs()),
            amr: Set(join(&s.amr)),
            ip: Set(s.ip),
            user_agent: Set(s.user_agent),
            created_at: Set(now.secs()),
            last_seen: Set(now.secs()),
            expires_at: Set(s.expires_at.secs()),
            login_ticket: Set(s.login_ticket),
            upstream: Set(s.upstream),
        }
        .insert(self.conn())
        .await
        .map_err(StoreError::from_insert)?;
        Ok(())
    }

    /// The live session whose cookie hashes to `id_hash`.
    pub async fn session(
        &self,
        id_hash: &str,
        now: UnixTime,
    ) -> Result<Option<SessionRecord>, StoreError> {
        let m = session::Entity::find_by_id(id_hash.to_owned())
            .filter(session::Column::ExpiresAt.gt(now.secs()))
            .all(self.conn())
            .await?
            .pop();
        Ok(m.map(|m| SessionRecord {
            sid: m.sid,
            user_id: UserId::from_stored(m.user_id),
            auth_time: UnixTime::from_secs(m.auth_time),
            amr: split(&m.amr),
            ip: m.ip,
            user_agent: m.user_agent,
            created_at: UnixTime::from_secs(m.created_at),
            last_seen: UnixTime::from_secs(m.last_seen),
            expires_at: UnixTime::from_secs(m.expires_at),
            login_ticket: m.login_ticket,
            upstream: m.upstream,
        }))
    }

    /// Uses up the login ticket of a session: `true` for the one caller whose update found
    /// the session still holding `ticket` (one statement, so a ticket serves one code).
    pub async fn take_login_ticket(&self, sid: &str, ticket: &str) -> Result<bool, StoreError> {
        let _w = self.write_gate().await;
        let r = session::Entity::update_many()
            .col_expr(
                session::Column::LoginTicket,
                Expr::value(Option::<String>::None),
            )
            .filter(session::Column::Sid.eq(sid))
            .filter(session::Column::LoginTicket.eq(ticket))
            .exec(self.conn())
            .await?;
        Ok(r.rows_affected == 1)
    }

    /// How many sessions are live at `now`, across every instance sharing the database. One
    /// `COUNT(*)` over the `expires_at` index.
    pub async fn count_live_sessions(&self, now: UnixTime) -> Result<u64, StoreError> {
        let n: Option<i64> = session::Entity::find()
            .select_only()
            .column_as(Expr::expr(Func::count(Expr::col(Asterisk))), "n")
            .filter(session::Column::ExpiresAt.gt(now.secs()))
            .into_tuple()
            .one(self.conn())
            .await?;
        Ok(n.unwrap_or(0).max(0) as u64)
    }

    /// Records activity (at most one write a minute per session, by the caller's choice).
    pub async fn touch_session(
        &self,
        id_hash: &str,
        now: UnixTime,
        expires_at: UnixTime,
    ) -> Result<(), StoreError> {
        let _w = self.write_gate().await;
        session::Entity::update_many()
            .col_expr(session::Column::LastSeen, Expr::value(now.secs()))
            .col_expr(session::Column::ExpiresAt, Expr::value(expires_at.secs()))
            .filter(session::Column::IdHash.eq(id_hash))
            .exec(self.conn())
            .await?;
        Ok(())
    }

    pub async fn delete_session(&self, id_hash: &str) -> Result<bool, StoreError> {
        let _w = self.write_gate().await;
        let r = session::Entity::delete_by_id(id_hash.to_owned())
            .exec(self.conn())
            .await?;
        Ok(r.rows_affected > 0)
    }

    // --- authorization codes ---------------------------------------------------------------

    pub async fn insert_code(
        &self,
        code_hash: String,
        c: CodeRecord,
        now: UnixTime,
    ) -> Result<(), StoreError> {
        let _w = self.write_gate().await;
        authorization_code::ActiveModel {
            code_hash: Set(code_hash),
            client_id: Set(c.client_id.as_str().to_owned()),
            user_id: Set(c.user_id.as_str().to_owned()),
            redirect_uri: Set(c.redirect_uri),
            scope: Set(c.scope.to_string()),
            nonce: Set(c.nonce),
            code_challenge: Set(c.code_challenge),
            code_challenge_method: Set(c.code_challenge_method),
            auth_time: Set(c.auth_time.secs()),
            amr: Set(join(&c.amr)),
            sid: Set(c.sid),
            created_at: Set(now.secs()),
            expires_at: Set(c.expires_at.secs()),
        }
        .insert(self.conn())
        .await
        .map_err(StoreError::from_insert)?;
        Ok(())
    }

    /// Takes a code: returns it only to the one caller whose delete removed the row (expired
    /// codes are returned too; the caller decides), and in the same transaction remembers the
    /// redemption as starting `grant_id` until `redeemed_until`, so that a replay can revoke
    /// what this one issues (RFC 6749 §4.1.2). One write transaction, one statement to take.
    pub async fn take_code(
        &self,
        code_hash: &str,
        grant_id: &str,
        redeemed_until: UnixTime,
    ) -> Result<Option<CodeRecord>, StoreError> {
        use sea_orm::{ConnectionTrait, FromQueryResult, QueryTrait};
        let _w = self.write_gate().await;
        let tx = self.conn().begin().await?;
        let backend = tx.get_database_backend();
        let mut take = authorization_code::Entity::delete_by_id(code_hash.to_owned()).into_query();
        take.returning_all();
        let record = redeemed_code::ActiveModel {
            code_hash: Set(code_hash.to_owned()),
            grant_id: Set(grant_id.to_owned()),
            expires_at: Set(redeemed_until.secs()),
        };
        // The record only if the code was taken, in the same transaction (`commit_steps`): a
        // code is taken once, so its record is written once.
        let steps = vec![
            Step::returning(backend.build(&take)),
            Step::insert(record, backend, true, None)?,
        ];
        let rows = super::commit_steps(tx, steps).await?;
        let Some(row) = rows.first() else {
            return Ok(None);
        };
        let m = authorization_code::Model::from_query_result(row, "")?;
        Ok(Some(CodeRecord {
            client_id: ClientId::from_stored(m.client_id),
            user_id: UserId::from_stored(m.user_id),
            redirect_uri: m.redirect_uri,
            scope: stored_scope(&m.scope),
            nonce: m.nonce,
            code_challenge: m.code_challenge,
            code_challenge_method: m.code_challenge_method,
            auth_time: UnixTime::from_secs(m.auth_time),
            amr: split(&m.amr),
            sid: m.sid,
            expires_at: UnixTime::from_secs(m.expires_at),
        }))
    }

    /// The grant a redeemed code started, if the code was redeemed.
    pub async fn redeemed_code_grant(&self, code_hash: &str) -> Result<Option<String>, StoreError> {
        Ok(redeemed_code::Entity::find_by_id(code_hash.to_owned())
            .all(self.conn())
            .await?
            .pop()
            .map(|m| m.grant_id))
    }

    // --- refresh tokens --------------------------------------------------------------------

    /// Stores a refresh token; with `audit`, its audit row goes in the same transaction. When
    /// the parent link carries a claim, the same transaction first marks the parent rotated
    /// (RFC 9700 §4.14.2): one write transaction per refresh, not two. Returns false, having
    /// written nothing, when the parent was already rotated (or revoked) and the claim does not
    /// allow a successor then.
    pub async fn insert_refresh(
        &self,
        r: NewRefresh,
        audit: Option<super::accounts::AuditEntry>,
        now: UnixTime,
    ) -> Result<bool, StoreError> {
        use sea_orm::{ConnectionTrait, QueryTrait};
        let _w = self.write_gate().await;
        let (parent_hash, claim) = match r.parent {
            Some(ParentLink { hash, claim }) => (Some(hash), claim),
            None => (None, None),
        };
        let claiming = claim.zip(parent_hash.clone());
        let row = refresh_token::ActiveModel {
            token_hash: Set(r.token_hash),
            family_id: Set(r.family_id),
            parent_hash: Set(parent_hash),
            client_id: Set(r.client_id.as_str().to_owned()),
            user_id: Set(r.user_id.as_str().to_owned()),
            scope: Set(r.scope.to_string()),
            auth_time: Set(r.auth_time.secs()),
            amr: Set(join(&r.amr)),
            sid: Set(r.sid),
            created_at: Set(now.secs()),
            expires_at: Set(r.expires_at.secs()),
            rotated_at: Set(None),
            revoked: Set(false),
        };
        if audit.is_none() && claiming.is_none() {
            row.insert(self.conn())
                .await
                .map_err(StoreError::from_insert)?;
            return Ok(true);
        }
        let tx = self.conn().begin().await?;
        let backend = tx.get_database_backend();
        let mut steps = Vec::with_capacity(3);
        if let Some((_, parent)) = &claiming {
            steps.push(Step::run(
                refresh_token::Entity::update_many()
                    .col_expr(refresh_token::Column::RotatedAt, Expr::value(now.secs()))
                    .filter(refresh_token::Column::TokenHash.eq(parent.as_str()))
                    .filter(refresh_token::Column::RotatedAt.is_null())
                    .filter(refresh_token::Column::Revoked.eq(false))
                    .build(backend),
            ));
        }
        // The successor only if the claim won (unless the grace window lets a lost claim have
        // one too), the audit row only if the successor was written; the successor's
        // `RETURNING` says whether it was.
        let guard_successor = claiming.is_some_and(|(c, _)| !c.successor_if_taken);
        let successor_hash = Some(refresh_token::Column::TokenHash);
        steps.push(Step::insert(row, backend, guard_successor, successor_hash)?);
        if let Some(e) = audit {
            let audit = super::accounts::audit_row(e, now);
            steps.push(Step::insert(audit, backend, true, None)?);
        }
        let stored = super::commit_steps(tx, steps)
            .await
            .map_err(StoreError::from_insert)?;
        Ok(!stored.is_empty())
    }

    /// A refresh token by its hash. `revoked` is true when the token's own flag is set or when
    /// its whole grant is on the revocation list: a token stored by a request that raced the
    /// revocation of its grant (a replayed code, a reused refresh token) has no flag, and is
    /// refused all the same. One query (a left join on `revoked_tokens`).
    pub async fn refresh_token(
        &self,
        token_hash: &str,
    ) -> Result<Option<RefreshRecord>, StoreError> {
        Ok(refresh_token::Entity::find_by_id(token_hash.to_owned())
            .join(JoinType::LeftJoin, grant_revocation())
            .select_also(revoked_token::Entity)
            .one(self.conn())
            .await?
            .map(|(m, grant_revoked)| refresh_record(m, grant_revoked.is_some())))
    }

    /// [`Store::refresh_token`] and the user it was issued to (`None`: the user is gone), in one
    /// query: a refresh reads both before it writes, and on SQLite every statement is a hand-off
    /// to a connection's thread and back.
    pub async fn refresh_token_and_user(
        &self,
        token_hash: &str,
    ) -> Result<Option<(RefreshRecord, Option<User>)>, StoreError> {
        use sea_orm::{ConnectionTrait, FromQueryResult, IdenStatic, Iterable, QueryTrait};
        const GRANT_REVOKED: &str = "grant_revoked_id";
        const USER: &str = "user_";
        let owner = refresh_token::Entity::belongs_to(user::Entity)
            .from(refresh_token::Column::UserId)
            .to(user::Column::Id)
            .into();
        let mut select = refresh_token::Entity::find_by_id(token_hash.to_owned())
            .join(JoinType::LeftJoin, grant_revocation())
            .join(JoinType::LeftJoin, owner)
            .column_as(revoked_token::Column::Id, GRANT_REVOKED);
        for c in user::Column::iter() {
            select = select.column_as(c, format!("{USER}{}", c.as_str()));
        }
        let stmt = select.build(self.conn().get_database_backend());
        let Some(row) = self.conn().query_one_raw(stmt).await? else {
            return Ok(None);
        };
        let record = refresh_record(
            refresh_token::Model::from_query_result(&row, "")?,
            row.try_get::<Option<String>>("", GRANT_REVOKED)?.is_some(),
        );
        // A left join: the user's columns are NULL when the user is gone.
        let user = match row.try_get::<Option<String>>(USER, user::Column::Id.as_str())? {
            Some(_) => Some(super::users::to_domain(user::Model::from_query_result(
                &row, USER,
            )?)),
            None => None,
        };
        Ok(Some((record, user)))
    }

    /// Revokes every refresh token of a family (RFC 9700 §4.14.2) and, through `revoked_tokens`,
    /// every access token issued under it.
    pub async fn revoke_family(
        &self,
        family_id: &str,
        access_expiry: UnixTime,
    ) -> Result<(), StoreError> {
        self.flag_refresh_tokens_revoked(refresh_token::Column::FamilyId.eq(family_id))
            .await?;
        self.revoke_token_id(family_id, access_expiry).await
    }

    /// Sets the revoked flag on the refresh tokens that match (takes a write slot itself).
    pub(super) async fn flag_refresh_tokens_revoked(
        &self,
        which: impl sea_orm::sea_query::IntoCondition,
    ) -> Result<(), StoreError> {
        let _w = self.write_gate().await;
        refresh_token::Entity::update_many()
            .col_expr(refresh_token::Column::Revoked, Expr::value(true))
            .filter(which)
            .exec(self.conn())
            .await?;
        Ok(())
    }

    /// Signs a user out everywhere, in one transaction: ends their sessions (all but
    /// `keep_sid`), revokes every refresh token they hold, ends the access tokens issued to
    /// them before `now` (`users.tokens_valid_after`, checked by [`super::standing::TokenStanding`]), deletes
    /// their authorization codes not yet redeemed (a code is a grant waiting to be collected),
    /// and deletes their pending password-reset and email-change links (a link that sets a
    /// password or moves the account must not outlive a sign-out everywhere: an attacker who
    /// asked for it would keep the account after the owner's reset). Returns how many sessions
    /// ended. Used by logout-everywhere, password change and reset, disabling a user and the
    /// administrators' "end sessions".
    pub async fn end_user_access(
        &self,
        user_id: &UserId,
        keep_sid: Option<&str>,
        now: UnixTime,
    ) -> Result<u64, StoreError> {
        use super::accounts::token_kind;
        use super::entities::{authorization_code, email_token, session};
        let user_id = user_id.as_str();
        let _w = self.write_gate().await;
        let tx = self.conn().begin().await?;
        let mut sessions =
            session::Entity::delete_many().filter(session::Column::UserId.eq(user_id));
        if let Some(keep) = keep_sid {
            sessions = sessions.filter(session::Column::Sid.ne(keep));
        }
        let ended = sessions.exec(&tx).await?.rows_affected;
        refresh_token::Entity::update_many()
            .col_expr(refresh_token::Column::Revoked, Expr::value(true))
            .filter(refresh_token::Column::UserId.eq(user_id))
            .exec(&tx)
            .await?;
        user::Entity::update_many()
            .col_expr(user::Column::TokensValidAfter, Expr::value(now.secs()))
            .filter(user::Column::Id.eq(user_id))
            .exec(&tx)
            .await?;
        email_token::Entity::delete_many()
            .filter(email_token::Column::UserId.eq(user_id))
            .filter(email_token::Column::Kind.is_in([token_kind::RESET, token_kind::EMAIL_CHANGE]))
            .exec(&tx)
            .await?;
        authorization_code::Entity::delete_many()
            .filter(authorization_code::Column::UserId.eq(user_id))
            .exec(&tx)
            .await?;
        tx.commit().await?;
        Ok(ended)
    }

    // --- revoked access tokens -------------------------------------------------------------

    /// Records a revoked access token id (`jti`) or grant id until `expires_at`.
    pub async fn revoke_token_id(&self, id: &str, expires_at: UnixTime) -> Result<(), StoreError> {
        let _w = self.write_gate().await;
        let res = revoked_token::ActiveModel {
            id: Set(id.to_owned()),
            expires_at: Set(expires_at.secs()),
        }
        .insert(self.conn())
        .await;
        match res.map_err(StoreError::from_insert) {
            Ok(_) | Err(StoreError::Conflict) => Ok(()),
            Err(e) => Err(e),
        }
    }

    // --- consents --------------------------------------------------------------------------

    /// The scopes a user has granted a client, if any. A stored value that does not parse
    /// (Castellan writes it from a [`ScopeSet`]) reads as no consent: the user is asked again.
    pub async fn consent(
        &self,
        user_id: &UserId,
        client_id: &ClientId,
    ) -> Result<Option<ScopeSet>, StoreError> {
        Ok(consent::Entity::find_by_id((
            user_id.as_str().to_owned(),
            client_id.as_str().to_owned(),
        ))
        .all(self.conn())
        .await?
        .pop()
        .and_then(|m| ScopeSet::parse(&m.scopes).ok()))
    }

    /// Stores the granted scopes (the union with what was granted before).
    pub async fn save_consent(
        &self,
        user_id: &UserId,
        client_id: &ClientId,
        scopes: &ScopeSet,
        now: UnixTime,
    ) -> Result<(), StoreError> {
        let (user_id, client_id, scopes) =
            (user_id.as_str(), client_id.as_str(), scopes.to_string());
        let _w = self.write_gate().await;
        let updated = consent::Entity::update_many()
            .col_expr(consent::Column::Scopes, Expr::value(scopes.as_str()))
            .col_expr(consent::Column::UpdatedAt, Expr::value(now.secs()))
            .filter(consent::Column::UserId.eq(user_id))
            .filter(consent::Column::ClientId.eq(client_id))
            .exec(self.conn())
            .await?;
        if updated.rows_affected == 0 {
            let res = consent::ActiveModel {
                user_id: Set(user_id.to_owned()),
                client_id: Set(client_id.to_owned()),
                scopes: Set(scopes),
                created_at: Set(now.secs()),
                updated_at: Set(now.secs()),
            }
            .insert(self.conn())
            .await;
            match res.map_err(StoreError::from_insert) {
                Ok(_) | Err(StoreError::Conflict) => {}
                Err(e) => return Err(e),
            }
        }
        Ok(())
    }
}
