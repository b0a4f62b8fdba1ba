//! Authentication of browser users: password login and server-side sessions.
//!
//! Passwords are verified with argon2id on the fixed pool of `services::passwords` workers
//! so that a login storm queues instead of exhausting memory (argon2 holds `m` KiB per hash).
//! An unknown email is verified against a dummy hash, so the time taken does not reveal which
//! emails exist. A failed login is not an error: the caller re-renders the page.

use crate::crypto::token;
use crate::domain::{Email, User, UserId};
use crate::state::AppState;
use crate::store::StoreError;
use crate::store::grants::{NewSession, SessionRecord};

/// Prefix of session cookies.
pub const SESSION_PREFIX: &str = token::prefix::SESSION;

#[derive(Debug, thiserror::Error)]
pub enum AuthnError {
    #[error(transparent)]
    Store(#[from] StoreError),
    /// The password workers' queue is full: answer 503 with `Retry-After`.
    #[error("the password workers are busy")]
    Busy,
    #[error("password verification did not complete")]
    Join,
}

impl From<crate::services::passwords::PoolError> for AuthnError {
    fn from(e: crate::services::passwords::PoolError) -> Self {
        match e {
            crate::services::passwords::PoolError::Busy => AuthnError::Busy,
            crate::services::passwords::PoolError::Gone => AuthnError::Join,
        }
    }
}

/// A signed-in browser: the session and its user.
#[derive(Debug, Clone)]
pub struct Authenticated {
    pub session: SessionRecord,
    pub user: User,
}

/// The result of a password check. Failures are indistinguishable to the user (the page shows
/// one message); the reason and the account, when there is one, go to the audit log and the
/// metrics.
#[derive(Debug)]
pub enum LoginResult {
    Ok(User),
    Failed(LoginFailure, Option<UserId>),
    /// Right password, but the email is not verified and the configuration requires it.
    Unverified(User),
}

/// Why a login failed; never shown to the user.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum LoginFailure {
    /// No account has this email.
    UnknownEmail,
    /// Wrong password, or the account has no password set.
    BadCredentials,
    /// The account is locked after too many failures.
    Locked,
    /// The password was right, the account is disabled.
    Disabled,
}

impl LoginFailure {
    /// The reason as the audit log records it.
    pub fn as_str(self) -> &'static str {
        match self {
            Self::UnknownEmail => "unknown_email",
            Self::BadCredentials => "wrong_password",
            Self::Locked => "locked",
            Self::Disabled => "disabled",
        }
    }
}

/// Verifies email and password, with per-account throttling ([`crate::domain::LockoutPolicy`]):
/// after `login.max_failures` failures within `login.failure_window_secs`, the account refuses
/// further attempts for a growing delay. A locked account answers exactly like a wrong
/// password, after the same argon2 work. Each failure is counted by one statement in the
/// database ([`crate::store::Store::count_password_failure`]), so parallel guesses, on any
/// number of instances, are each counted.
pub async fn check_password(
    state: &AppState,
    email: &str,
    password: String,
    now: i64,
) -> Result<LoginResult, AuthnError> {
    let creds = match Email::parse(email) {
        Ok(e) => state.store.credentials_by_email(&e).await?,
        Err(_) => None,
    };
    let hash = creds.as_ref().and_then(|c| c.password_hash.clone());
    let password = crate::domain::password::normalize(&password);
    // Same work for an unknown user (and for one without a password): the dummy hash.
    let ok = state.passwords.verify(password, hash).await?;
    let Some(c) = creds else {
        return Ok(LoginResult::Failed(LoginFailure::UnknownEmail, None));
    };
    let id = c.user.id.clone();
    let locked = c.locked_until.is_some_and(|t| t > now);
    if !ok {
        count_failure(state, &id, locked, now).await?;
        let why = if locked {
            LoginFailure::Locked
        } else {
            LoginFailure::BadCredentials
        };
        return Ok(LoginResult::Failed(why, Some(id)));
    }
    if locked {
        return Ok(LoginResult::Failed(LoginFailure::Locked, Some(id)));
    }
    if c.user.disabled {
        return Ok(LoginResult::Failed(LoginFailure::Disabled, Some(id)));
    }
    // A lock set by a parallel failure since the read above still holds (one statement).
    if (c.failed_logins > 0 || c.locked_until.is_some())
        && !state.store.clear_password_failures(&id, now).await?
    {
        return Ok(LoginResult::Failed(LoginFailure::Locked, Some(id)));
    }
    if !c.user.email_verified && state.settings.registration.require_verified_email {
        return Ok(LoginResult::Unverified(c.user));
    }
    Ok(LoginResult::Ok(c.user))
}

/// Counts a wrong password for the account; audits the lock when this failure set one.
async fn count_failure(
    state: &AppState,
    id: &UserId,
    was_locked: bool,
    now: i64,
) -> Result<(), AuthnError> {
    let policy = state.settings.login.lockout();
    let Some(failure) = state.store.count_password_failure(id, &policy, now).await? else {
        return Ok(());
    };
    let set_now = policy
        .lock_secs(failure.count)
        .is_some_and(|secs| failure.locked_until == Some(now + secs as i64));
    if set_now && !was_locked {
        state
            .store
            .audit(
                crate::store::accounts::AuditEntry {
                    kind: "login_locked",
                    user_id: Some(id.as_str().to_owned()),
                    detail: format!("{} failed logins", failure.count),
                    ..Default::default()
                },
                now,
            )
            .await?;
    }
    Ok(())
}

/// The answer to "is this the signed-in user's current password?" (the account page asks
/// before changing the password or the email).
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum PasswordCheck {
    Right,
    /// Wrong, or the account has no password.
    Wrong,
    /// Too many wrong passwords: refused without checking until the lock ends.
    Locked,
}

/// Checks a signed-in user's password under the same per-account lockout as the login page:
/// a wrong one counts as a failed login, and while the account is locked no password is
/// checked (the user is known here, so there is nothing to hide by doing the work anyway).
pub async fn check_user_password(
    state: &AppState,
    user: &UserId,
    password: &str,
    now: i64,
) -> Result<PasswordCheck, AuthnError> {
    let Some(c) = state.store.credentials_by_id(user).await? else {
        return Ok(PasswordCheck::Wrong);
    };
    if c.locked_until.is_some_and(|t| t > now) {
        return Ok(PasswordCheck::Locked);
    }
    let Some(hash) = c.password_hash.clone() else {
        return Ok(PasswordCheck::Wrong);
    };
    let password = crate::domain::password::normalize(password);
    if !state.passwords.verify(password, Some(hash)).await? {
        count_failure(state, user, false, now).await?;
        return Ok(PasswordCheck::Wrong);
    }
    if (c.failed_logins > 0 || c.locked_until.is_some())
        && !state.store.clear_password_failures(user, now).await?
    {
        return Ok(PasswordCheck::Locked);
    }
    Ok(PasswordCheck::Right)
}

/// Starts a session; returns the cookie value (a 256-bit secret, stored only hashed).
/// `login_ticket` is the ticket of the authorization request the login was made for, if it
/// demanded a fresh login (`oauth::authorize::login_ticket_in`).
pub async fn start_session(
    state: &AppState,
    user: &User,
    amr: &[&str],
    ip: Option<String>,
    user_agent: Option<String>,
    login_ticket: Option<String>,
    now: i64,
) -> Result<(String, SessionRecord), AuthnError> {
    let value = token::generate(SESSION_PREFIX);
    let sid = token::random_id();
    let expires_at = now + state.settings.session.ttl_secs as i64;
    let amr: Vec<String> = amr.iter().map(|s| (*s).to_owned()).collect();
    let user_agent = user_agent.map(|ua| ua.chars().take(256).collect());
    state
        .store
        .create_session(
            NewSession {
                id_hash: token::hash(&value),
                sid: sid.clone(),
                user_id: user.id.as_str().to_owned(),
                auth_time: now,
                amr: amr.clone(),
                ip: ip.clone(),
                user_agent: user_agent.clone(),
                expires_at,
                login_ticket: login_ticket.clone(),
            },
            now,
        )
        .await?;
    let record = SessionRecord {
        sid,
        user_id: user.id.as_str().to_owned(),
        auth_time: now,
        amr,
        ip,
        user_agent,
        created_at: now,
        last_seen: now,
        expires_at,
        login_ticket,
    };
    Ok((value, record))
}

/// The signed-in user behind a session cookie, if the session is live and the user enabled.
pub async fn current(
    state: &AppState,
    cookie: &str,
    now: i64,
) -> Result<Option<Authenticated>, AuthnError> {
    if !cookie.starts_with(SESSION_PREFIX) {
        return Ok(None);
    }
    let hash = token::hash(cookie);
    let Some(session) = state.store.session(&hash, now).await? else {
        return Ok(None);
    };
    let Some(user) = state.store.user_by_id(&session.user_id).await? else {
        return Ok(None);
    };
    if user.disabled {
        return Ok(None);
    }
    // Sliding expiry, written at most once a minute per session.
    if now - session.last_seen >= 60 {
        let expires_at = now + state.settings.session.ttl_secs as i64;
        state.store.touch_session(&hash, now, expires_at).await?;
    }
    Ok(Some(Authenticated { session, user }))
}

/// Ends the session behind a cookie (no-op when there is none).
pub async fn end_session(state: &AppState, cookie: &str) -> Result<(), AuthnError> {
    state.store.delete_session(&token::hash(cookie)).await?;
    Ok(())
}

/// The user behind a user id, if enabled.
pub async fn enabled_user(state: &AppState, id: &str) -> Result<Option<User>, AuthnError> {
    Ok(state.store.user_by_id(id).await?.filter(|u| !u.disabled))
}
