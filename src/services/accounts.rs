//! Self-service accounts: registration, email verification, password reset and change,
//! profile and email change.
//!
//! Nothing here reveals whether an email is registered: registration and forgot-password give
//! the same answer and do the same argon2 work for known and unknown addresses; the owner of a
//! known address gets a notice mail instead. Links carry 256-bit single-use tokens stored only
//! as SHA-256 hashes (24 h for verification, 1 h for reset).

use crate::crypto::token;
use crate::domain::password::{PasswordPolicy, PasswordProblem, normalize};
use crate::domain::{Email, NewUser, Role, User};
use crate::mail::Mail;
use crate::paths;
use crate::state::AppState;
use crate::store::StoreError;
use crate::store::accounts::AuditEntry;

pub const VERIFY_TTL_SECS: i64 = 24 * 3600;
pub const RESET_TTL_SECS: i64 = 3600;

pub const KIND_VERIFY: &str = "verify";
pub const KIND_RESET: &str = "reset";
pub const KIND_EMAIL_CHANGE: &str = "email_change";

#[derive(Debug, thiserror::Error)]
pub enum AccountsError {
    #[error(transparent)]
    Store(#[from] StoreError),
    #[error("password hashing did not complete")]
    Hash,
}

/// Field-level problems of a form, in plain words.
#[derive(Debug, Default)]
pub struct FieldErrors {
    pub email: Option<String>,
    pub password: Option<String>,
    pub name: Option<String>,
}

impl FieldErrors {
    pub fn is_empty(&self) -> bool {
        self.email.is_none() && self.password.is_none() && self.name.is_none()
    }
}

pub fn policy(state: &AppState) -> PasswordPolicy {
    let p = &state.settings.password;
    PasswordPolicy::new(p.min_length, p.max_length, p.require_composition)
}

fn password_message(problems: &[PasswordProblem]) -> Option<String> {
    (!problems.is_empty()).then(|| {
        problems
            .iter()
            .map(ToString::to_string)
            .collect::<Vec<_>>()
            .join(" ")
    })
}

/// Hashes a password (already normalised) on the password workers.
pub async fn hash_password(state: &AppState, password: String) -> Result<String, AccountsError> {
    state
        .passwords
        .hash(password)
        .await
        .map_err(|_| AccountsError::Hash)
}

fn link(state: &AppState, path: &str, token_value: &str, return_to: Option<&str>) -> String {
    let mut ser = url::form_urlencoded::Serializer::new(String::new());
    ser.append_pair("token", token_value);
    if let Some(r) = return_to {
        ser.append_pair("return_to", r);
    }
    format!("{}{}?{}", state.settings.base_url(), path, ser.finish())
}

async fn new_email_token(
    state: &AppState,
    user: &User,
    kind: &str,
    email: &str,
    ttl: i64,
    now: i64,
) -> Result<String, StoreError> {
    state
        .store
        .delete_email_tokens(user.id.as_str(), kind)
        .await?;
    let value = token::generate(token::prefix::EMAIL_TOKEN);
    state
        .store
        .insert_email_token(
            &token::hash(&value),
            user.id.as_str(),
            kind,
            email,
            now,
            now + ttl,
        )
        .await?;
    Ok(value)
}

/// Registration (`/register`). `Ok(Err(errors))` re-renders the form; `Ok(Ok(()))` shows
/// "check your mailbox" — for a new and for an already registered email alike.
pub async fn register(
    state: &AppState,
    email_raw: &str,
    password: &str,
    name_raw: &str,
    return_to: Option<&str>,
    ip: Option<String>,
    now: i64,
) -> Result<Result<(), FieldErrors>, AccountsError> {
    let mut errors = FieldErrors::default();
    let email = match Email::parse(email_raw) {
        Ok(e) => Some(e),
        Err(_) => {
            errors.email = Some("Enter a valid email address, like name@example.com.".into());
            None
        }
    };
    let name = name_raw.trim();
    if name.chars().count() > 100 {
        errors.name = Some("Use at most 100 characters.".into());
    }
    let password = normalize(password);
    if let Err(problems) = policy(state).check(&password, email.as_ref().map(Email::as_str)) {
        errors.password = password_message(&problems);
    }
    let Some(email) = email.filter(|_| errors.is_empty()) else {
        return Ok(Err(errors));
    };
    // The same argon2 work whether or not the email is known.
    let hash = hash_password(state, password).await?;
    if let Some(existing) = state
        .store
        .credentials_by_email(&email)
        .await?
        .map(|c| c.user)
    {
        let login_link = format!("{}{}", state.settings.base_url(), paths::LOGIN);
        let reset_link = format!("{}{}", state.settings.base_url(), paths::PASSWORD_FORGOT);
        state.mailer.send(
            &existing.email,
            Mail::AlreadyRegistered {
                login_link,
                reset_link,
            },
        );
        return Ok(Ok(()));
    }
    let new = NewUser {
        email: email.clone(),
        email_verified: false,
        name: (!name.is_empty()).then(|| name.to_owned()),
        roles: Role::parse("user").into_iter().collect(),
        password_hash: Some(hash),
    };
    let user = match state.store.create_user(new, now).await {
        Ok(u) => u,
        // Registered by a racing request a moment ago: the same answer.
        Err(StoreError::Conflict) => return Ok(Ok(())),
        Err(e) => return Err(e.into()),
    };
    let value =
        new_email_token(state, &user, KIND_VERIFY, &user.email, VERIFY_TTL_SECS, now).await?;
    state.mailer.send(
        &user.email,
        Mail::VerifyEmail {
            link: link(state, paths::VERIFY_EMAIL, &value, return_to),
        },
    );
    state
        .store
        .audit(
            AuditEntry {
                kind: "registered",
                user_id: Some(user.id.as_str().to_owned()),
                ip,
                ..Default::default()
            },
            now,
        )
        .await?;
    Ok(Ok(()))
}

/// Follows a verification (or email-change) link: the address becomes verified.
pub async fn verify_email(
    state: &AppState,
    token_value: &str,
    now: i64,
) -> Result<Option<User>, AccountsError> {
    let hash = token::hash(token_value);
    let record = match state
        .store
        .take_email_token(&hash, KIND_VERIFY, now)
        .await?
    {
        Some(r) => r,
        None => match state
            .store
            .take_email_token(&hash, KIND_EMAIL_CHANGE, now)
            .await?
        {
            Some(r) => r,
            None => return Ok(None),
        },
    };
    let Ok(email) = Email::parse(&record.email) else {
        return Ok(None);
    };
    let id = crate::domain::UserId::from_stored(record.user_id.clone());
    let user = match state.store.verify_user_email(&id, &email, now).await {
        Ok(u) => u,
        // The new address was taken by someone else meanwhile.
        Err(StoreError::Conflict) | Err(StoreError::NotFound) => return Ok(None),
        Err(e) => return Err(e.into()),
    };
    state
        .store
        .audit(
            AuditEntry {
                kind: "email_verified",
                user_id: Some(record.user_id),
                detail: record.kind,
                ..Default::default()
            },
            now,
        )
        .await?;
    Ok(Some(user))
}

/// Sends a new verification link to an unverified account (same answer for any email).
pub async fn resend_verification(
    state: &AppState,
    email_raw: &str,
    return_to: Option<&str>,
    now: i64,
) -> Result<(), AccountsError> {
    let Ok(email) = Email::parse(email_raw) else {
        return Ok(());
    };
    if let Some(c) = state.store.credentials_by_email(&email).await?
        && !c.user.email_verified
    {
        let value = new_email_token(
            state,
            &c.user,
            KIND_VERIFY,
            &c.user.email,
            VERIFY_TTL_SECS,
            now,
        )
        .await?;
        state.mailer.send(
            &c.user.email,
            Mail::VerifyEmail {
                link: link(state, paths::VERIFY_EMAIL, &value, return_to),
            },
        );
    }
    Ok(())
}

/// Forgot password: a reset link to a known, enabled account; the same answer for any email.
/// A locked account can still reset its password.
pub async fn forgot_password(
    state: &AppState,
    email_raw: &str,
    ip: Option<String>,
    now: i64,
) -> Result<(), AccountsError> {
    let Ok(email) = Email::parse(email_raw) else {
        return Ok(());
    };
    let Some(c) = state.store.credentials_by_email(&email).await? else {
        return Ok(());
    };
    if c.user.disabled {
        return Ok(());
    }
    send_reset_link(state, &c.user, ip, None, now).await
}

/// Mails `user` a single-use password-reset link (1 h) and records it; `actor` is the
/// administrator who asked for it, if it was not the user.
pub async fn send_reset_link(
    state: &AppState,
    user: &User,
    ip: Option<String>,
    actor: Option<String>,
    now: i64,
) -> Result<(), AccountsError> {
    let value = new_email_token(state, user, KIND_RESET, &user.email, RESET_TTL_SECS, now).await?;
    state.mailer.send(
        &user.email,
        Mail::PasswordReset {
            link: link(state, paths::PASSWORD_RESET, &value, None),
        },
    );
    state
        .store
        .audit(
            AuditEntry {
                kind: "password_reset_requested",
                user_id: Some(user.id.as_str().to_owned()),
                actor,
                ip,
                ..Default::default()
            },
            now,
        )
        .await?;
    Ok(())
}

/// Whether a reset link is still usable (to show the form or the "expired" page).
pub async fn reset_link_valid(
    state: &AppState,
    token_value: &str,
    now: i64,
) -> Result<bool, AccountsError> {
    Ok(state
        .store
        .peek_email_token(&token::hash(token_value), KIND_RESET, now)
        .await?
        .is_some())
}

#[derive(Debug)]
pub enum ResetOutcome {
    Done(User),
    /// The link is used or expired.
    InvalidLink,
    /// The new password breaks the policy (message for the form).
    Rejected(String),
}

/// Sets a new password from a reset link: applies the policy, ends every session, revokes every
/// refresh token, clears any lockout, audits.
pub async fn reset_password(
    state: &AppState,
    token_value: &str,
    password: &str,
    ip: Option<String>,
    now: i64,
) -> Result<ResetOutcome, AccountsError> {
    let hash_of_token = token::hash(token_value);
    let Some(record) = state
        .store
        .peek_email_token(&hash_of_token, KIND_RESET, now)
        .await?
    else {
        return Ok(ResetOutcome::InvalidLink);
    };
    let password = normalize(password);
    if let Err(problems) = policy(state).check(&password, Some(&record.email)) {
        return Ok(ResetOutcome::Rejected(
            password_message(&problems).unwrap_or_default(),
        ));
    }
    if state
        .store
        .take_email_token(&hash_of_token, KIND_RESET, now)
        .await?
        .is_none()
    {
        return Ok(ResetOutcome::InvalidLink);
    }
    let hash = hash_password(state, password).await?;
    let id = crate::domain::UserId::from_stored(record.user_id.clone());
    let user = state.store.set_password_hash(&id, &hash, now).await?;
    state
        .store
        .end_user_access(user.id.as_str(), None, now)
        .await?;
    state
        .store
        .audit(
            AuditEntry {
                kind: "password_reset_completed",
                user_id: Some(record.user_id),
                ip,
                ..Default::default()
            },
            now,
        )
        .await?;
    state.mailer.send(&user.email, Mail::PasswordChanged);
    Ok(ResetOutcome::Done(user))
}

/// Changes the password of a signed-in user: the current one is required; every other session
/// ends and refresh tokens are revoked.
pub async fn change_password(
    state: &AppState,
    user: &User,
    current_sid: &str,
    current: &str,
    new: &str,
    now: i64,
) -> Result<Result<(), FieldErrors>, AccountsError> {
    let mut errors = FieldErrors::default();
    let creds = state
        .store
        .credentials_by_email(&Email::parse(&user.email).map_err(|_| AccountsError::Hash)?)
        .await?;
    let stored = creds.and_then(|c| c.password_hash);
    let current = normalize(current);
    let had_password = stored.is_some();
    let ok = had_password
        && state
            .passwords
            .verify(current, stored)
            .await
            .map_err(|_| AccountsError::Hash)?;
    if !ok {
        errors.password = Some("Your current password is not correct.".into());
        return Ok(Err(errors));
    }
    let new = normalize(new);
    if let Err(problems) = policy(state).check(&new, Some(&user.email)) {
        errors.password = password_message(&problems);
        return Ok(Err(errors));
    }
    let hash = hash_password(state, new).await?;
    state.store.set_password_hash(&user.id, &hash, now).await?;
    state
        .store
        .end_user_access(user.id.as_str(), Some(current_sid), now)
        .await?;
    state
        .store
        .audit(
            AuditEntry {
                kind: "password_changed",
                user_id: Some(user.id.as_str().to_owned()),
                ..Default::default()
            },
            now,
        )
        .await?;
    state.mailer.send(&user.email, Mail::PasswordChanged);
    Ok(Ok(()))
}

/// Starts an email change: the new address gets a verification link; it becomes the account's
/// address only once verified. The same answer whether or not the address is taken.
pub async fn request_email_change(
    state: &AppState,
    user: &User,
    new_raw: &str,
    now: i64,
) -> Result<Result<(), FieldErrors>, AccountsError> {
    let Ok(email) = Email::parse(new_raw) else {
        return Ok(Err(FieldErrors {
            email: Some("Enter a valid email address, like name@example.com.".into()),
            ..Default::default()
        }));
    };
    if state.store.credentials_by_email(&email).await?.is_some() {
        return Ok(Ok(()));
    }
    let value = new_email_token(
        state,
        user,
        KIND_EMAIL_CHANGE,
        email.as_str(),
        VERIFY_TTL_SECS,
        now,
    )
    .await?;
    state.mailer.send(
        email.as_str(),
        Mail::EmailChangeVerify {
            link: link(state, paths::VERIFY_EMAIL, &value, None),
        },
    );
    Ok(Ok(()))
}

pub async fn update_name(
    state: &AppState,
    user: &User,
    name_raw: &str,
    now: i64,
) -> Result<Result<User, FieldErrors>, AccountsError> {
    let name = name_raw.trim();
    if name.chars().count() > 100 {
        return Ok(Err(FieldErrors {
            name: Some("Use at most 100 characters.".into()),
            ..Default::default()
        }));
    }
    Ok(Ok(state
        .store
        .set_user_name(&user.id, (!name.is_empty()).then(|| name.to_owned()), now)
        .await?))
}
