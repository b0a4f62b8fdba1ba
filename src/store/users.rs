//! Users: accounts, roles, the disabled flag and lockout counters.

use sea_orm::{
    ActiveModelTrait, ActiveValue::Set, ColumnTrait, EntityTrait, PaginatorTrait, QueryFilter,
    QueryOrder, QuerySelect,
};

use super::entities::user;
use super::{Store, StoreError, split_list};
use crate::domain::{Email, LockoutPolicy, NewUser, UnixTime, User, UserId};

pub(super) fn to_domain(m: user::Model) -> User {
    User {
        id: UserId::from_stored(m.id),
        email: m.email,
        email_verified: m.email_verified,
        name: m.name,
        roles: split_list(&m.roles).map(str::to_owned).collect(),
        disabled: m.disabled,
        has_password: m.password_hash.is_some(),
        created_at: UnixTime::from_secs(m.created_at),
        updated_at: UnixTime::from_secs(m.updated_at),
    }
}

fn credentials_of(m: user::Model) -> Credentials {
    Credentials {
        password_hash: m.password_hash.clone(),
        failed_logins: m.failed_logins,
        failed_window_start: m.failed_window_start.map(UnixTime::from_secs),
        locked_until: m.locked_until.map(UnixTime::from_secs),
        user: to_domain(m),
    }
}

/// A user together with what login needs: the password hash and lockout state.
#[derive(Debug, Clone)]
pub struct Credentials {
    pub user: User,
    pub password_hash: Option<String>,
    pub failed_logins: i32,
    pub failed_window_start: Option<UnixTime>,
    pub locked_until: Option<UnixTime>,
}

/// An account's failed password checks after one more ([`Store::count_password_failure`]).
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub struct PasswordFailure {
    /// Failures in the current window, this one included.
    pub count: u32,
    /// Until when the account is locked (possibly a lock from before this failure).
    pub locked_until: Option<UnixTime>,
}

/// The row of a new account (a fresh id, no failures, not disabled).
pub(super) fn new_user_model(new: NewUser, now: UnixTime) -> user::ActiveModel {
    let mut roles: Vec<String> = new.roles.iter().map(|r| r.as_str().to_owned()).collect();
    roles.sort();
    roles.dedup();
    user::ActiveModel {
        id: Set(UserId::generate().as_str().to_owned()),
        email: Set(new.email.as_str().to_owned()),
        email_lower: Set(new.email.key()),
        email_verified: Set(new.email_verified),
        password_hash: Set(new.password_hash),
        name: Set(new.name),
        roles: Set(roles.join(" ")),
        disabled: Set(false),
        failed_logins: Set(0),
        failed_window_start: Set(None),
        locked_until: Set(None),
        created_at: Set(now.secs()),
        updated_at: Set(now.secs()),
        tokens_valid_after: Set(None),
    }
}

impl Store {
    pub async fn create_user(&self, new: NewUser, now: UnixTime) -> Result<User, StoreError> {
        let _w = self.write_gate().await;
        let m = new_user_model(new, now)
            .insert(self.conn())
            .await
            .map_err(StoreError::from_insert)?;
        Ok(to_domain(m))
    }

    pub async fn user_by_id(&self, id: &str) -> Result<Option<User>, StoreError> {
        Ok(user::Entity::find_by_id(id.to_owned())
            .one(self.conn())
            .await?
            .map(to_domain))
    }

    /// The user an access token names, and whether the token has ended
    /// ([`super::standing::TokenStanding`]: revoked, its client deleted, this user disabled). One
    /// query where userinfo and the admin API would otherwise make two: on SQLite every
    /// statement is a hand-off to a connection thread and back. `None`: no such user.
    pub async fn token_user(
        &self,
        standing: super::standing::TokenStanding<'_>,
    ) -> Result<Option<(User, bool)>, StoreError> {
        let Some(user_id) = standing.user_id else {
            return Ok(None);
        };
        let select = user::Entity::find_by_id(user_id.to_owned());
        Ok(self
            .find_with_standing(select, standing)
            .await?
            .map(|(m, ended)| (to_domain(m), ended)))
    }

    pub async fn user_by_email(&self, email: &Email) -> Result<Option<User>, StoreError> {
        Ok(self.credentials_by_email(email).await?.map(|c| c.user))
    }

    /// Finds a user by id or (case-insensitively) by email: what the CLI accepts.
    pub async fn user_by_id_or_email(&self, key: &str) -> Result<Option<User>, StoreError> {
        if let Some(u) = self.user_by_id(key).await? {
            return Ok(Some(u));
        }
        match Email::parse(key) {
            Ok(e) => self.user_by_email(&e).await,
            Err(_) => Ok(None),
        }
    }

    /// [`Credentials`] of the user with this id.
    pub async fn credentials_by_id(&self, id: &UserId) -> Result<Option<Credentials>, StoreError> {
        Ok(user::Entity::find_by_id(id.as_str().to_owned())
            .one(self.conn())
            .await?
            .map(credentials_of))
    }

    pub async fn credentials_by_email(
        &self,
        email: &Email,
    ) -> Result<Option<Credentials>, StoreError> {
        Ok(user::Entity::find()
            .filter(user::Column::EmailLower.eq(email.key()))
            .one(self.conn())
            .await?
            .map(credentials_of))
    }

    /// Users ordered by creation, a page at a time; `search` matches a part of the email.
    pub async fn list_users(
        &self,
        search: Option<&str>,
        offset: u64,
        limit: u64,
    ) -> Result<(Vec<User>, u64), StoreError> {
        let mut q = user::Entity::find();
        if let Some(s) = search.filter(|s| !s.is_empty()) {
            q = q.filter(user::Column::EmailLower.contains(s.to_lowercase()));
        }
        let total = q.clone().count(self.conn()).await?;
        let rows = q
            .order_by_asc(user::Column::CreatedAt)
            .order_by_asc(user::Column::Id)
            .offset(offset)
            .limit(limit)
            .all(self.conn())
            .await?;
        Ok((rows.into_iter().map(to_domain).collect(), total))
    }

    pub async fn set_user_roles(
        &self,
        id: &UserId,
        roles: &[String],
        now: UnixTime,
    ) -> Result<User, StoreError> {
        let mut roles = roles.to_vec();
        roles.sort();
        roles.dedup();
        self.update_user(id, now, |m| m.roles = Set(roles.join(" ")))
            .await
    }

    pub async fn set_user_disabled(
        &self,
        id: &UserId,
        disabled: bool,
        now: UnixTime,
    ) -> Result<User, StoreError> {
        self.update_user(id, now, |m| m.disabled = Set(disabled))
            .await
    }

    async fn update_user(
        &self,
        id: &UserId,
        now: UnixTime,
        f: impl FnOnce(&mut user::ActiveModel),
    ) -> Result<User, StoreError> {
        let _w = self.write_gate().await;
        let m = user::Entity::find_by_id(id.as_str().to_owned())
            .one(self.conn())
            .await?
            .ok_or(StoreError::NotFound)?;
        let mut am: user::ActiveModel = m.into();
        f(&mut am);
        am.updated_at = Set(now.secs());
        Ok(to_domain(
            am.update(self.conn())
                .await
                .map_err(StoreError::from_insert)?,
        ))
    }

    /// Deletes a user; sessions, grants, consents and email tokens go with it (foreign keys cascade).
    pub async fn delete_user(&self, id: &UserId) -> Result<(), StoreError> {
        let _w = self.write_gate().await;
        let r = user::Entity::delete_by_id(id.as_str().to_owned())
            .exec(self.conn())
            .await?;
        if r.rows_affected == 0 {
            Err(StoreError::NotFound)
        } else {
            Ok(())
        }
    }
}

impl Store {
    /// Replaces the password hash and clears any lockout.
    pub async fn set_password_hash(
        &self,
        id: &UserId,
        hash: &str,
        now: UnixTime,
    ) -> Result<User, StoreError> {
        let hash = hash.to_owned();
        self.update_user(id, now, move |m| {
            m.password_hash = Set(Some(hash));
            m.failed_logins = Set(0);
            m.failed_window_start = Set(None);
            m.locked_until = Set(None);
        })
        .await
    }

    /// Makes `email` the user's verified address (a verified registration, or an email change).
    /// When it differs from the address the user had, the user's pending email links are
    /// deleted in the same transaction: a reset link or a verification link went to the old
    /// address, an email-change link to yet another one, and none of them may act on the
    /// account once its address has moved. Returns the former address and the user.
    pub async fn set_verified_email(
        &self,
        id: &UserId,
        email: &Email,
        now: UnixTime,
    ) -> Result<(String, User), StoreError> {
        use super::entities::email_token;
        let _w = self.write_gate().await;
        // Read before the transaction: on SQLite a transaction that reads and then writes fails
        // at once ("database is locked", no busy wait) when another connection wrote in
        // between; one whose first statement writes waits its turn.
        let m = user::Entity::find_by_id(id.as_str().to_owned())
            .one(self.conn())
            .await?
            .ok_or(StoreError::NotFound)?;
        let tx = self.conn().begin().await?;
        let former = m.email.clone();
        let moved = m.email_lower != email.key();
        let mut am: user::ActiveModel = m.into();
        am.email = Set(email.as_str().to_owned());
        am.email_lower = Set(email.key());
        am.email_verified = Set(true);
        am.updated_at = Set(now.secs());
        let updated = am.update(&tx).await.map_err(StoreError::from_insert)?;
        if moved {
            email_token::Entity::delete_many()
                .filter(email_token::Column::UserId.eq(id.as_str()))
                .exec(&tx)
                .await?;
        }
        tx.commit().await?;
        Ok((former, to_domain(updated)))
    }

    pub async fn set_user_name(
        &self,
        id: &UserId,
        name: Option<String>,
        now: UnixTime,
    ) -> Result<User, StoreError> {
        self.update_user(id, now, move |m| m.name = Set(name)).await
    }

    /// Counts one failed password check for the account and decides in the same statement
    /// whether it locks the account ([`LockoutPolicy`]): `failed_logins` is incremented in the
    /// database, never read and written back, so parallel failures (on any number of
    /// instances) are each counted. Returns the count and the lock after this failure; `None`
    /// when the user is gone.
    ///
    /// ```sql
    /// UPDATE users SET
    ///   failed_logins = CASE WHEN <in window> THEN failed_logins + 1 ELSE 1 END,
    ///   failed_window_start = CASE WHEN <in window> THEN failed_window_start ELSE :now END,
    ///   locked_until = CASE WHEN <not locked> AND <new count> >= :max
    ///                       THEN :now + <lock for the new count> ELSE locked_until END
    /// WHERE id = :id RETURNING failed_logins, locked_until
    /// ```
    /// (every right-hand side reads the row as it was before the update, on both backends).
    pub async fn count_password_failure(
        &self,
        id: &UserId,
        policy: &LockoutPolicy,
        now: UnixTime,
    ) -> Result<Option<PasswordFailure>, StoreError> {
        use sea_orm::ConnectionTrait;
        use sea_orm::sea_query::{CaseStatement, Expr, ExprTrait, Query};
        use user::Column as C;
        let window_start = now
            .minus(i64::try_from(policy.window_secs).unwrap_or(i64::MAX))
            .secs();
        let in_window = || {
            Expr::col(C::FailedWindowStart)
                .is_not_null()
                .and(Expr::col(C::FailedWindowStart).gt(window_start))
        };
        let new_count = || -> Expr {
            CaseStatement::new()
                .case(in_window(), Expr::col(C::FailedLogins).add(1))
                .finally(Expr::val(1))
                .into()
        };
        let secs = |s: u64| now.plus(i64::try_from(s).unwrap_or(i64::MAX)).secs();
        let mut lock_for = CaseStatement::new();
        for (count, lock) in policy.schedule() {
            lock_for = lock_for.case(new_count().eq(i64::from(count)), Expr::val(secs(lock)));
        }
        let lock_for = lock_for.finally(Expr::val(secs(policy.max_secs)));
        let not_locked = Expr::col(C::LockedUntil)
            .is_null()
            .or(Expr::col(C::LockedUntil).lte(now.secs()));
        let threshold = i64::from(Ord::max(policy.max_failures, 1));
        let locked_until = CaseStatement::new()
            .case(not_locked.and(new_count().gte(threshold)), lock_for)
            .finally(Expr::col(C::LockedUntil));
        let stmt = Query::update()
            .table(user::Entity)
            .value(C::FailedLogins, new_count())
            .value(
                C::FailedWindowStart,
                CaseStatement::new()
                    .case(in_window(), Expr::col(C::FailedWindowStart))
                    .finally(Expr::val(now.secs())),
            )
            .value(C::LockedUntil, locked_until)
            .and_where(Expr::col(C::Id).eq(id.as_str()))
            .returning(Query::returning().columns([C::FailedLogins, C::LockedUntil]))
            .to_owned();
        let _w = self.write_gate().await;
        let stmt = self.conn().get_database_backend().build(&stmt);
        let Some(row) = self.conn().query_one_raw(stmt).await? else {
            return Ok(None);
        };
        let count: i32 = row.try_get("", "failed_logins")?;
        let locked_until: Option<i64> = row.try_get("", "locked_until")?;
        Ok(Some(PasswordFailure {
            count: u32::try_from(count).unwrap_or(0),
            locked_until: locked_until.map(UnixTime::from_secs),
        }))
    }

    /// Clears the failures of an account after a right password, unless it is locked: one
    /// statement, so a lock set by a parallel failure a moment ago still holds. `false`: the
    /// account is locked (or gone).
    pub async fn clear_password_failures(
        &self,
        id: &UserId,
        now: UnixTime,
    ) -> Result<bool, StoreError> {
        use sea_orm::sea_query::Expr;
        let _w = self.write_gate().await;
        let r = user::Entity::update_many()
            .col_expr(user::Column::FailedLogins, Expr::value(0))
            .col_expr(
                user::Column::FailedWindowStart,
                Expr::value(Option::<i64>::None),
            )
            .col_expr(user::Column::LockedUntil, Expr::value(Option::<i64>::None))
            .filter(user::Column::Id.eq(id.as_str()))
            .filter(
                sea_orm::Condition::any()
                    .add(user::Column::LockedUntil.is_null())
                    .add(user::Column::LockedUntil.lte(now.secs())),
            )
            .exec(self.conn())
            .await?;
        Ok(r.rows_affected == 1)
    }
}
