//! Users: accounts, roles, the disabled flag and lockout counters.

use sea_orm::{
    ActiveModelTrait, ActiveValue::Set, ColumnTrait, EntityTrait, PaginatorTrait, QueryFilter,
    QueryOrder, QuerySelect,
};

use super::entities::user;
use super::{Store, StoreError, split_list};
use crate::domain::{Email, NewUser, User, UserId};

pub(super) fn to_domain(m: user::Model) -> User {
    User {
        id: UserId::from_stored(m.id),
        email: m.email,
        email_verified: m.email_verified,
        name: m.name,
        roles: split_list(&m.roles).map(str::to_owned).collect(),
        disabled: m.disabled,
        created_at: m.created_at,
        updated_at: m.updated_at,
    }
}

/// A user together with what login needs: the password hash and lockout state.
#[derive(Debug, Clone)]
pub struct Credentials {
    pub user: User,
    pub password_hash: Option<String>,
    pub failed_logins: i32,
    pub failed_window_start: Option<i64>,
    pub locked_until: Option<i64>,
}

impl Store {
    pub async fn create_user(&self, new: NewUser, now: i64) -> Result<User, StoreError> {
        let _w = self.write_gate().await;
        let mut roles: Vec<String> = new.roles.iter().map(|r| r.as_str().to_owned()).collect();
        roles.sort();
        roles.dedup();
        let model = user::ActiveModel {
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
            created_at: Set(now),
            updated_at: Set(now),
            tokens_valid_after: Set(None),
        };
        let m = model
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
    /// ([`super::grants::TokenStanding`]: revoked, its client deleted, this user disabled). One
    /// query where userinfo and the admin API would otherwise make two: on SQLite every
    /// statement is a hand-off to a connection thread and back. `None`: no such user.
    pub async fn token_user(
        &self,
        standing: super::grants::TokenStanding<'_>,
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

    pub async fn credentials_by_email(
        &self,
        email: &Email,
    ) -> Result<Option<Credentials>, StoreError> {
        Ok(user::Entity::find()
            .filter(user::Column::EmailLower.eq(email.key()))
            .one(self.conn())
            .await?
            .map(|m| Credentials {
                password_hash: m.password_hash.clone(),
                failed_logins: m.failed_logins,
                failed_window_start: m.failed_window_start,
                locked_until: m.locked_until,
                user: to_domain(m),
            }))
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
        now: i64,
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
        now: i64,
    ) -> Result<User, StoreError> {
        self.update_user(id, now, |m| m.disabled = Set(disabled))
            .await
    }

    async fn update_user(
        &self,
        id: &UserId,
        now: i64,
        f: impl FnOnce(&mut user::ActiveModel),
    ) -> Result<User, StoreError> {
        let _w = self.write_gate().await;
        let m = user::Entity::find_by_id(id.as_str().to_owned())
            .one(self.conn())
            .await?
            .ok_or(StoreError::NotFound)?;
        let mut am: user::ActiveModel = m.into();
        f(&mut am);
        am.updated_at = Set(now);
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
        now: i64,
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

    /// Marks `email` verified for the user; for an email change it becomes the user's address.
    pub async fn verify_user_email(
        &self,
        id: &UserId,
        email: &Email,
        now: i64,
    ) -> Result<User, StoreError> {
        let (shown, key) = (email.as_str().to_owned(), email.key());
        self.update_user(id, now, move |m| {
            m.email = Set(shown);
            m.email_lower = Set(key);
            m.email_verified = Set(true);
        })
        .await
    }

    pub async fn set_user_name(
        &self,
        id: &UserId,
        name: Option<String>,
        now: i64,
    ) -> Result<User, StoreError> {
        self.update_user(id, now, move |m| m.name = Set(name)).await
    }

    /// Stores the per-account throttling state after a failed login.
    pub async fn record_login_failure(
        &self,
        id: &UserId,
        failed_logins: i32,
        window_start: i64,
        locked_until: Option<i64>,
    ) -> Result<(), StoreError> {
        let _w = self.write_gate().await;
        user::Entity::update_many()
            .col_expr(
                user::Column::FailedLogins,
                sea_orm::sea_query::Expr::value(failed_logins),
            )
            .col_expr(
                user::Column::FailedWindowStart,
                sea_orm::sea_query::Expr::value(window_start),
            )
            .col_expr(
                user::Column::LockedUntil,
                sea_orm::sea_query::Expr::value(locked_until),
            )
            .filter(user::Column::Id.eq(id.as_str()))
            .exec(self.conn())
            .await?;
        Ok(())
    }

    /// Clears the throttling state after a successful login (one write only when needed).
    pub async fn reset_login_failures(&self, id: &UserId) -> Result<(), StoreError> {
        let _w = self.write_gate().await;
        user::Entity::update_many()
            .col_expr(
                user::Column::FailedLogins,
                sea_orm::sea_query::Expr::value(0),
            )
            .col_expr(
                user::Column::FailedWindowStart,
                sea_orm::sea_query::Expr::value(Option::<i64>::None),
            )
            .col_expr(
                user::Column::LockedUntil,
                sea_orm::sea_query::Expr::value(Option::<i64>::None),
            )
            .filter(user::Column::Id.eq(id.as_str()))
            .exec(self.conn())
            .await?;
        Ok(())
    }
}
