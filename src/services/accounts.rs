//! Self-service accounts: registration, email verification, password reset and change,
//! profile and email change.
//!
//! Nothing here reveals whether an email is registered: registration and forgot-password give
//! the same answer and do the same argon2 work for known and unknown addresses; the owner of a
//! known address gets a notice mail instead. Links carry 256-bit single-use tokens stored only
//! as SHA-256 hashes (24 h for verification, 1 h for reset).
//!
//! "Forgot password" and "send the verification link again" only queue a job on the request
//! path (`services::jobs`): the same statement for every address, so neither the answer nor
//! its timing says whether the address is known; the job looks the address up and mails.
//!
//! A link dies with what it was issued against: every pending reset and email-change link
//! ends when the user signs out everywhere, changes or resets the password, or is disabled
//! (`Store::end_user_access`), and every pending link ends when the account's address moves
//! (`Store::set_verified_email`). A link is also checked against the account's current
//! address when it is used.

use std::sync::Arc;

use crate::clock::SharedClock;
use crate::config::Settings;
use crate::crypto::token;
use crate::domain::password::{PasswordPolicy, PasswordProblem, normalize};
use crate::domain::{AuditEntry, AuditKind};
use crate::domain::{Email, NewUser, Role, UnixTime, User};
use crate::mail::Mail;
use crate::paths;
use crate::services::authn::{Authenticated, Authn};
use crate::services::jobs::{Job, Jobs};
use crate::services::passwords::PasswordPool;
use crate::services::ratelimit::{Action, RateLimiter};
use crate::store::accounts::{ConnectedApp, SessionSummary};
use crate::store::{Store, StoreError};

pub const VERIFY_TTL_SECS: i64 = 24 * 3600;
pub const RESET_TTL_SECS: i64 = 3600;

pub use crate::store::accounts::token_kind::{
    EMAIL_CHANGE as KIND_EMAIL_CHANGE, RESET as KIND_RESET, VERIFY as KIND_VERIFY,
};

/// How recent a sign-in must be to change the email of an account that has no password.
pub const REAUTH_SECS: i64 = 300;

#[derive(Debug, thiserror::Error)]
pub enum AccountsError {
    #[error(transparent)]
    Store(#[from] StoreError),
    /// The password workers' queue is full: answer 503 with `Retry-After`.
    #[error("the password workers are busy")]
    Busy,
    /// Too many requests of this kind from the address; retry after this many seconds.
    #[error("rate limited")]
    RateLimited(u64),
    #[error("password hashing did not complete")]
    Hash,
    /// A mail of the outbox could not be delivered (the SMTP server's answer).
    #[error("mail delivery failed: {0}")]
    Mail(String),
    /// A second factor could not be read (a seed that does not open).
    #[error("second factor: {0}")]
    Factor(String),
}

/// Field-level problems of a form, in plain words.
#[derive(Debug, Default)]
pub struct FieldErrors {
    pub email: Option<String>,
    pub password: Option<String>,
    pub name: Option<String>,
}

impl From<crate::services::passwords::PoolError> for AccountsError {
    fn from(e: crate::services::passwords::PoolError) -> Self {
        match e {
            crate::services::passwords::PoolError::Busy => AccountsError::Busy,
            crate::services::passwords::PoolError::Gone => AccountsError::Hash,
        }
    }
}

impl From<crate::services::authn::AuthnError> for AccountsError {
    fn from(e: crate::services::authn::AuthnError) -> Self {
        use crate::services::authn::AuthnError;
        match e {
            AuthnError::Store(e) => AccountsError::Store(e),
            AuthnError::Busy => AccountsError::Busy,
            AuthnError::Join => AccountsError::Hash,
            AuthnError::Factor(e) => AccountsError::Factor(e.to_string()),
            AuthnError::Passkey(e) => AccountsError::Factor(e.to_string()),
        }
    }
}

impl FieldErrors {
    pub fn is_empty(&self) -> bool {
        self.email.is_none() && self.password.is_none() && self.name.is_none()
    }
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

#[derive(Debug)]
pub enum ResetOutcome {
    Done(User),
    /// The link is used or expired.
    InvalidLink,
    /// The new password breaks the policy (message for the form).
    Rejected(String),
}

/// The message for a refused current password.
fn current_password_problem(check: crate::services::authn::PasswordCheck) -> Option<String> {
    use crate::services::authn::PasswordCheck;
    match check {
        PasswordCheck::Right => None,
        PasswordCheck::Wrong => Some("Your current password is not correct.".into()),
        PasswordCheck::Locked => Some(
            "Too many wrong passwords: this account is locked for a while. Try again later.".into(),
        ),
    }
}

/// Self-service accounts, with what they need.
#[derive(Debug, Clone)]
pub struct Accounts {
    store: Store,
    passwords: Arc<PasswordPool>,
    settings: Arc<Settings>,
    clock: SharedClock,
    jobs: Jobs,
    authn: Authn,
    limiter: Arc<RateLimiter>,
}

/// What the account page shows besides the user: where they are signed in, and the apps
/// they gave access to.
#[derive(Debug, Clone)]
pub struct AccountOverview {
    pub sessions: Vec<SessionSummary>,
    pub apps: Vec<ConnectedApp>,
    /// Whether a confirmed TOTP factor is on.
    pub totp: bool,
    /// Unused recovery codes.
    pub recovery_codes_left: u64,
    /// The user's roles require a second factor (`mfa.required_for_roles`).
    pub second_factor_required: bool,
}

impl Accounts {
    // Each dependency named, as `startup` wires them.
    #[allow(clippy::too_many_arguments)]
    pub fn new(
        store: Store,
        passwords: Arc<PasswordPool>,
        settings: Arc<Settings>,
        clock: SharedClock,
        jobs: Jobs,
        authn: Authn,
        limiter: Arc<RateLimiter>,
    ) -> Self {
        Self {
            store,
            passwords,
            settings,
            clock,
            jobs,
            authn,
            limiter,
        }
    }

    /// Puts a mail in the outbox (the `jobs` table): a background worker on any instance
    /// delivers it, retrying with a growing delay, across restarts. Never fails the caller: a
    /// mail that cannot even be queued is logged.
    async fn send_mail(&self, to: &str, mail: Mail) {
        let job = Job::Mail {
            to: to.to_owned(),
            mail,
        };
        if let Err(e) = self.jobs.enqueue(&job, self.clock.time()).await {
            tracing::error!(event = "mail_failed", to, error = %e, "cannot queue an email");
        }
    }

    /// Takes a token of the per-address limit of `action`; `Err(seconds)` to wait.
    async fn throttle(&self, action: Action, ip: Option<std::net::IpAddr>) -> Result<(), u64> {
        match ip {
            Some(ip) => self.limiter.take(action, ip, self.clock.now_ms()).await,
            None => Ok(()),
        }
    }

    /// The clock reading a use case works with (read once per request).
    pub fn now(&self) -> UnixTime {
        self.clock.time()
    }

    /// Whether people may register themselves (`registration.enabled`).
    pub fn registration_open(&self) -> bool {
        self.settings.registration.enabled
    }

    /// The account page's lists: the user's live sessions and connected apps.
    pub async fn overview(&self, user: &User) -> Result<AccountOverview, AccountsError> {
        let now = self.clock.time();
        Ok(AccountOverview {
            sessions: self.store.user_sessions(&user.id, now).await?,
            apps: self.store.user_consents(&user.id).await?,
            totp: self.store.has_totp(&user.id).await?,
            recovery_codes_left: self.store.count_recovery_codes(&user.id).await?,
            second_factor_required: self.settings.mfa.policy().required_for(user),
        })
    }

    /// Signs out one of the user's other sessions, by its public id; audited when it ended one.
    pub async fn end_session(&self, user: &User, sid: &str) -> Result<(), AccountsError> {
        if self.store.delete_user_session(&user.id, sid).await? {
            let entry = AuditEntry {
                user_id: Some(user.id.as_str().to_owned()),
                ..AuditEntry::new(AuditKind::SessionEnded)
            };
            self.store.audit(entry, self.clock.time()).await?;
        }
        Ok(())
    }

    /// "Sign out everywhere": every session, refresh token, unredeemed code and pending link of
    /// the user ends (`Store::end_user_access`); audited.
    pub async fn sign_out_everywhere(&self, user: &User) -> Result<(), AccountsError> {
        let now = self.clock.time();
        self.store.end_user_access(&user.id, None, now).await?;
        let entry = AuditEntry {
            user_id: Some(user.id.as_str().to_owned()),
            ..AuditEntry::new(AuditKind::LogoutEverywhere)
        };
        self.store.audit(entry, now).await?;
        Ok(())
    }

    /// Takes back what the user gave an app: its consent and refresh tokens; audited.
    pub async fn revoke_app(&self, user: &User, client_id: &str) -> Result<(), AccountsError> {
        if self.store.revoke_consent(&user.id, client_id).await? {
            let entry = AuditEntry {
                user_id: Some(user.id.as_str().to_owned()),
                client_id: Some(client_id.to_owned()),
                ..AuditEntry::new(AuditKind::ConsentRevoked)
            };
            self.store.audit(entry, self.clock.time()).await?;
        }
        Ok(())
    }

    pub fn policy(&self) -> PasswordPolicy {
        let p = &self.settings.password;
        PasswordPolicy::new(p.min_length, p.max_length, p.require_composition)
    }

    /// Hashes a password (already normalised) on the password workers.
    pub async fn hash_password(&self, password: String) -> Result<String, AccountsError> {
        Ok(self.passwords.hash(password).await?)
    }

    fn link(&self, path: &str, token_value: &str, return_to: Option<&str>) -> String {
        let mut ser = url::form_urlencoded::Serializer::new(String::new());
        ser.append_pair("token", token_value);
        if let Some(r) = return_to {
            ser.append_pair("return_to", r);
        }
        format!("{}{}?{}", self.settings.base_url(), path, ser.finish())
    }

    async fn new_email_token(
        &self,
        user: &User,
        kind: &str,
        email: &str,
        ttl: i64,
        now: UnixTime,
    ) -> Result<String, StoreError> {
        self.store.delete_email_tokens(&user.id, kind).await?;
        let value = token::generate(token::prefix::EMAIL_TOKEN);
        self.store
            .insert_email_token(
                &token::hash(&value),
                &user.id,
                kind,
                email,
                now,
                now.plus(ttl),
            )
            .await?;
        Ok(value)
    }

    /// Registration (`/register`). `Ok(Err(errors))` re-renders the form; `Ok(Ok(()))` shows
    /// "check your mailbox" — for a new and for an already registered email alike.
    pub async fn register(
        &self,
        email_raw: &str,
        password: &str,
        name_raw: &str,
        return_to: Option<&str>,
        ip: Option<std::net::IpAddr>,
    ) -> Result<Result<(), FieldErrors>, AccountsError> {
        let now = self.clock.time();
        self.throttle(Action::Register, ip)
            .await
            .map_err(AccountsError::RateLimited)?;
        let ip = ip.map(|a| a.to_string());
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
        if let Err(problems) = self
            .policy()
            .check(&password, email.as_ref().map(Email::as_str))
        {
            errors.password = password_message(&problems);
        }
        let Some(email) = email.filter(|_| errors.is_empty()) else {
            return Ok(Err(errors));
        };
        // The same argon2 work and the same queued job whether or not the email is known: the
        // answer and its timing do not tell (the job makes the account or mails its owner).
        let hash = self.hash_password(password).await?;
        let job = crate::services::jobs::Job::Register {
            email: email.as_str().to_owned(),
            name: (!name.is_empty()).then(|| name.to_owned()),
            password_hash: hash,
            return_to: return_to.map(str::to_owned),
            ip,
        };
        self.jobs.enqueue(&job, now).await?;
        Ok(Ok(()))
    }

    /// The job behind [`register`]: a new account and its verification link, or, for an address
    /// that has an account already, a notice to its owner.
    pub async fn create_registered_account(
        &self,
        email_raw: &str,
        name: Option<String>,
        password_hash: String,
        return_to: Option<&str>,
        ip: Option<String>,
        now: UnixTime,
    ) -> Result<(), AccountsError> {
        let Ok(email) = Email::parse(email_raw) else {
            return Ok(());
        };
        if let Some(existing) = self
            .store
            .credentials_by_email(&email)
            .await?
            .map(|c| c.user)
        {
            let login_link = format!("{}{}", self.settings.base_url(), paths::LOGIN);
            let reset_link = format!("{}{}", self.settings.base_url(), paths::PASSWORD_FORGOT);
            self.send_mail(
                &existing.email,
                Mail::AlreadyRegistered {
                    login_link,
                    reset_link,
                },
            )
            .await;
            return Ok(());
        }
        let new = NewUser {
            email: email.clone(),
            email_verified: false,
            name,
            roles: Role::parse("user").into_iter().collect(),
            password_hash: Some(password_hash),
        };
        let user = match self.store.create_user(new, now).await {
            Ok(u) => u,
            // Registered by a racing job a moment ago: nothing more to do.
            Err(StoreError::Conflict) => return Ok(()),
            Err(e) => return Err(e.into()),
        };
        let value = self
            .new_email_token(&user, KIND_VERIFY, &user.email, VERIFY_TTL_SECS, now)
            .await?;
        self.send_mail(
            &user.email,
            Mail::VerifyEmail {
                link: self.link(paths::VERIFY_EMAIL, &value, return_to),
            },
        )
        .await;
        self.store
            .audit(
                AuditEntry {
                    user_id: Some(user.id.as_str().to_owned()),
                    ip,
                    ..AuditEntry::new(AuditKind::Registered)
                },
                now,
            )
            .await?;
        Ok(())
    }

    /// Follows a verification (or email-change) link: the address becomes verified. A
    /// verification link counts only for the address the account still has; an email-change link
    /// moves the account to its address and tells the former one.
    pub async fn verify_email(&self, token_value: &str) -> Result<Option<User>, AccountsError> {
        let now = self.clock.time();
        let hash = token::hash(token_value);
        let record = match self.store.take_email_token(&hash, KIND_VERIFY, now).await? {
            Some(r) => r,
            None => match self
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
        let id = record.user_id;
        if record.kind == KIND_VERIFY {
            // A verification link for an address the account no longer has verifies nothing (and
            // must not move the account back to it).
            match self.store.user_by_id(id.as_str()).await? {
                Some(u) if Email::parse(&u.email).is_ok_and(|e| e.key() == email.key()) => {}
                _ => return Ok(None),
            }
        }
        let (former, user) = match self.store.set_verified_email(&id, &email, now).await {
            Ok(changed) => changed,
            // The new address was taken by someone else meanwhile.
            Err(StoreError::Conflict) | Err(StoreError::NotFound) => return Ok(None),
            Err(e) => return Err(e.into()),
        };
        if record.kind == KIND_EMAIL_CHANGE && former != user.email {
            self.send_mail(
                &former,
                Mail::EmailChanged {
                    new_email: user.email.clone(),
                },
            )
            .await;
        }
        self.store
            .audit(
                AuditEntry {
                    user_id: Some(id.as_str().to_owned()),
                    detail: record.kind,
                    ..AuditEntry::new(AuditKind::EmailVerified)
                },
                now,
            )
            .await?;
        Ok(Some(user))
    }

    /// "Send the verification link again" (`/register/resend`), on the request path: queues the
    /// job ([`mail_verification_link`]) whatever the address, so the answer and its timing are the
    /// same for every address.
    pub async fn resend_verification(
        &self,
        email_raw: &str,
        return_to: Option<&str>,
        ip: Option<std::net::IpAddr>,
    ) -> Result<(), AccountsError> {
        let now = self.clock.time();
        self.throttle(Action::ForgotPassword, ip)
            .await
            .map_err(AccountsError::RateLimited)?;
        let Ok(email) = Email::parse(email_raw) else {
            return Ok(());
        };
        let job = crate::services::jobs::Job::VerificationLink {
            email: email.as_str().to_owned(),
            return_to: return_to.map(str::to_owned),
        };
        Ok(self.jobs.enqueue(&job, now).await?)
    }

    /// The job behind [`resend_verification`]: a new verification link to an unverified account.
    pub async fn mail_verification_link(
        &self,
        email_raw: &str,
        return_to: Option<&str>,
        now: UnixTime,
    ) -> Result<(), AccountsError> {
        let Ok(email) = Email::parse(email_raw) else {
            return Ok(());
        };
        if let Some(c) = self.store.credentials_by_email(&email).await?
            && !c.user.email_verified
        {
            let value = self
                .new_email_token(&c.user, KIND_VERIFY, &c.user.email, VERIFY_TTL_SECS, now)
                .await?;
            self.send_mail(
                &c.user.email,
                Mail::VerifyEmail {
                    link: self.link(paths::VERIFY_EMAIL, &value, return_to),
                },
            )
            .await;
        }
        Ok(())
    }

    /// Forgot password (`/password/forgot`), on the request path: queues the job
    /// ([`mail_reset_link`]) whatever the address, so the answer and its timing are the same for a
    /// known and an unknown one.
    pub async fn forgot_password(
        &self,
        email_raw: &str,
        ip: Option<std::net::IpAddr>,
    ) -> Result<(), AccountsError> {
        let now = self.clock.time();
        self.throttle(Action::ForgotPassword, ip)
            .await
            .map_err(AccountsError::RateLimited)?;
        let ip = ip.map(|a| a.to_string());
        let Ok(email) = Email::parse(email_raw) else {
            return Ok(());
        };
        let job = crate::services::jobs::Job::ResetLink {
            email: email.as_str().to_owned(),
            ip,
        };
        Ok(self.jobs.enqueue(&job, now).await?)
    }

    /// The job behind [`forgot_password`]: a reset link to a known, enabled account. A locked
    /// account can still reset its password.
    pub async fn mail_reset_link(
        &self,
        email_raw: &str,
        ip: Option<String>,
        now: UnixTime,
    ) -> Result<(), AccountsError> {
        let Ok(email) = Email::parse(email_raw) else {
            return Ok(());
        };
        let Some(c) = self.store.credentials_by_email(&email).await? else {
            return Ok(());
        };
        if c.user.disabled {
            return Ok(());
        }
        self.send_reset_link(&c.user, ip, None, now).await
    }

    /// Mails `user` a single-use password-reset link (1 h) and records it; `actor` is the
    /// administrator who asked for it, if it was not the user.
    pub async fn send_reset_link(
        &self,
        user: &User,
        ip: Option<String>,
        actor: Option<String>,
        now: UnixTime,
    ) -> Result<(), AccountsError> {
        let value = self
            .new_email_token(user, KIND_RESET, &user.email, RESET_TTL_SECS, now)
            .await?;
        self.send_mail(
            &user.email,
            Mail::PasswordReset {
                link: self.link(paths::PASSWORD_RESET, &value, None),
            },
        )
        .await;
        self.store
            .audit(
                AuditEntry {
                    user_id: Some(user.id.as_str().to_owned()),
                    actor,
                    ip,
                    ..AuditEntry::new(AuditKind::PasswordResetRequested)
                },
                now,
            )
            .await?;
        Ok(())
    }

    /// Whether a reset link is still usable (to show the form or the "expired" page).
    pub async fn reset_link_valid(&self, token_value: &str) -> Result<bool, AccountsError> {
        let now = self.clock.time();
        Ok(self
            .store
            .peek_email_token(&token::hash(token_value), KIND_RESET, now)
            .await?
            .is_some())
    }

    /// Sets a new password from a reset link: applies the policy, ends every session, revokes every
    /// refresh token, clears any lockout, audits.
    pub async fn reset_password(
        &self,
        token_value: &str,
        password: &str,
        ip: Option<std::net::IpAddr>,
    ) -> Result<ResetOutcome, AccountsError> {
        let ip = ip.map(|a| a.to_string());
        let now = self.clock.time();
        let hash_of_token = token::hash(token_value);
        let Some(record) = self
            .store
            .peek_email_token(&hash_of_token, KIND_RESET, now)
            .await?
        else {
            return Ok(ResetOutcome::InvalidLink);
        };
        let password = normalize(password);
        if let Err(problems) = self.policy().check(&password, Some(&record.email)) {
            return Ok(ResetOutcome::Rejected(
                password_message(&problems).unwrap_or_default(),
            ));
        }
        if self
            .store
            .take_email_token(&hash_of_token, KIND_RESET, now)
            .await?
            .is_none()
        {
            return Ok(ResetOutcome::InvalidLink);
        }
        let id = record.user_id;
        // The link went to the address the account had then: if it has moved since, the link
        // is dead (the move deletes pending links too; this holds even for one made meanwhile).
        match self.store.user_by_id(id.as_str()).await? {
            Some(u)
                if Email::parse(&u.email)
                    .is_ok_and(|e| e.as_str().eq_ignore_ascii_case(&record.email)) => {}
            _ => return Ok(ResetOutcome::InvalidLink),
        }
        let hash = self.hash_password(password).await?;
        let user = self.store.set_password_hash(&id, &hash, now).await?;
        self.store.end_user_access(&user.id, None, now).await?;
        self.store
            .audit(
                AuditEntry {
                    user_id: Some(id.as_str().to_owned()),
                    ip,
                    ..AuditEntry::new(AuditKind::PasswordResetCompleted)
                },
                now,
            )
            .await?;
        self.send_mail(&user.email, Mail::PasswordChanged).await;
        Ok(ResetOutcome::Done(user))
    }

    /// Changes the password of a signed-in user: the current one is required (and a wrong one
    /// counts toward the account's lockout, like a failed login); every other session ends,
    /// refresh tokens are revoked and pending reset and email-change links end.
    pub async fn change_password(
        &self,
        user: &User,
        current_sid: &str,
        current: &str,
        new: &str,
    ) -> Result<Result<(), FieldErrors>, AccountsError> {
        let now = self.clock.time();
        let check = self
            .authn
            .check_user_password(&user.id, current, now)
            .await?;
        if let Some(problem) = current_password_problem(check) {
            return Ok(Err(FieldErrors {
                password: Some(problem),
                ..Default::default()
            }));
        }
        let new = normalize(new);
        if let Err(problems) = self.policy().check(&new, Some(&user.email)) {
            return Ok(Err(FieldErrors {
                password: password_message(&problems),
                ..Default::default()
            }));
        }
        let hash = self.hash_password(new).await?;
        self.store.set_password_hash(&user.id, &hash, now).await?;
        self.store
            .end_user_access(&user.id, Some(current_sid), now)
            .await?;
        self.store
            .audit(
                AuditEntry {
                    user_id: Some(user.id.as_str().to_owned()),
                    ..AuditEntry::new(AuditKind::PasswordChanged)
                },
                now,
            )
            .await?;
        self.send_mail(&user.email, Mail::PasswordChanged).await;
        Ok(Ok(()))
    }

    /// Starts an email change: the new address gets a verification link; it becomes the account's
    /// address only once verified. It takes the current password (or, for an account without one,
    /// a sign-in within [`REAUTH_SECS`]): a session alone, perhaps a stolen one, cannot move the
    /// account. The current address is told at once, so its owner can reset the password, which
    /// ends the pending change. The same answer whether or not the new address is taken.
    pub async fn request_email_change(
        &self,
        me: &Authenticated,
        new_raw: &str,
        current_password: &str,
    ) -> Result<Result<(), FieldErrors>, AccountsError> {
        let now = self.clock.time();
        let user = &me.user;
        let refused = |message: String| {
            Ok(Err(FieldErrors {
                email: Some(message),
                ..Default::default()
            }))
        };
        let Ok(email) = Email::parse(new_raw) else {
            return refused("Enter a valid email address, like name@example.com.".into());
        };
        if user.has_password {
            let check = self
                .authn
                .check_user_password(&user.id, current_password, now)
                .await?;
            if let Some(problem) = current_password_problem(check) {
                return refused(problem);
            }
        } else if now.since(me.session.auth_time) > REAUTH_SECS {
            return refused(
                "For your security, sign out and sign in again, then change your email within five minutes."
                    .into(),
            );
        }
        self.send_mail(
            &user.email,
            Mail::EmailChangeRequested {
                new_email: email.as_str().to_owned(),
            },
        )
        .await;
        self.store
            .audit(
                AuditEntry {
                    user_id: Some(user.id.as_str().to_owned()),
                    ..AuditEntry::new(AuditKind::EmailChangeRequested)
                },
                now,
            )
            .await?;
        if self.store.credentials_by_email(&email).await?.is_some() {
            return Ok(Ok(()));
        }
        let value = self
            .new_email_token(
                user,
                KIND_EMAIL_CHANGE,
                email.as_str(),
                VERIFY_TTL_SECS,
                now,
            )
            .await?;
        self.send_mail(
            email.as_str(),
            Mail::EmailChangeVerify {
                link: self.link(paths::VERIFY_EMAIL, &value, None),
            },
        )
        .await;
        Ok(Ok(()))
    }

    pub async fn update_name(
        &self,
        user: &User,
        name_raw: &str,
    ) -> Result<Result<User, FieldErrors>, AccountsError> {
        let now = self.clock.time();
        let name = name_raw.trim();
        if name.chars().count() > 100 {
            return Ok(Err(FieldErrors {
                name: Some("Use at most 100 characters.".into()),
                ..Default::default()
            }));
        }
        Ok(Ok(self
            .store
            .set_user_name(&user.id, (!name.is_empty()).then(|| name.to_owned()), now)
            .await?))
    }
}
