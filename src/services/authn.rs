//! Authentication of browser users: sign-in with a password, and server-side sessions.
//!
//! [`Authn::sign_in`] is the whole use case: the per-address limit, the password (argon2id on
//! the fixed pool of `services::passwords` workers, so a login storm queues instead of
//! exhausting memory), the per-account lockout, a new session replacing the browser's old one
//! (no fixation), the audit rows and the login metric. Its [`SignInOutcome`] is what the login
//! page shows; a second factor, when there is one, is another outcome of the same call.
//!
//! An unknown email is verified against a dummy hash, so the time taken does not reveal which
//! emails exist. A failed login is not an error: the caller shows one generic message.

use std::net::IpAddr;
use std::sync::Arc;

use crate::clock::SharedClock;
use crate::config::Settings;
use crate::crypto::token;
use crate::domain::acr::{
    AMR_FED, AMR_OTP, AMR_PWD, first_and_second, passkey_only, password_and_passkey, password_only,
    upstream_only,
};
use crate::domain::upstream::IdentityLink;
use crate::domain::{AuditEntry, AuditKind};
use crate::domain::{Email, UnixTime, User, UserId};
use crate::services::factors::{FactorCheck, FactorError, Factors};
use crate::services::metrics::{LoginOutcome, Metrics};
use crate::services::passkeys::{Begun, Binding, PasskeyError, Refusal, Verified};
use crate::services::passwords::PasswordPool;
use crate::services::ratelimit::{Action, RateLimiter};
use crate::store::factors::PendingSignIn;
use crate::store::grants::{NewSession, SessionRecord};
use crate::store::upstreams::Linked;
use crate::store::users::Credentials;
use crate::store::{Store, StoreError};

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
    #[error(transparent)]
    Factor(#[from] FactorError),
    #[error(transparent)]
    Passkey(#[from] PasskeyError),
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

    fn metric(self) -> LoginOutcome {
        match self {
            Self::UnknownEmail | Self::BadCredentials => LoginOutcome::BadCredentials,
            Self::Locked => LoginOutcome::Locked,
            Self::Disabled => LoginOutcome::Disabled,
        }
    }
}

/// A sign-in through an upstream provider, for the account its identity belongs to.
#[derive(Debug)]
pub struct UpstreamSignIn {
    pub user: UserId,
    /// The provider's id.
    pub upstream: String,
    /// An identity to link to the account as part of this sign-in.
    pub link: Option<IdentityLink>,
    pub ip: Option<IpAddr>,
    pub user_agent: Option<String>,
    pub previous_session: Option<String>,
    pub login_ticket: Option<String>,
}

/// How a sign-in began: the first factor.
#[derive(Debug, Clone)]
enum FirstFactor {
    Password,
    /// The person signed in at this upstream provider.
    Upstream(String),
}

impl FirstFactor {
    fn amr(&self) -> Vec<String> {
        match self {
            Self::Password => password_only(),
            Self::Upstream(_) => upstream_only(),
        }
    }

    fn upstream(&self) -> Option<String> {
        match self {
            Self::Password => None,
            Self::Upstream(u) => Some(u.clone()),
        }
    }
}

/// A sign-in attempt from the login page.
#[derive(Debug)]
pub struct SignIn {
    pub email: String,
    pub password: String,
    /// The client's address (rate limit, audit, the session list).
    pub ip: Option<IpAddr>,
    pub user_agent: Option<String>,
    /// The cookie of the session the browser had: it ends when the new one starts.
    pub previous_session: Option<String>,
    /// The ticket of the authorization request this login answers, when that request demanded
    /// a fresh login: the session stores it, and only that session may answer the request
    /// (`oauth::authorize::login_ticket_in` finds it in the login page's `return_to`).
    pub login_ticket: Option<String>,
}

impl std::fmt::Debug for SignInOutcome {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.write_str(match self {
            SignInOutcome::SignedIn { .. } => "SignedIn",
            SignInOutcome::EnrolSecondFactor { .. } => "EnrolSecondFactor",
            SignInOutcome::SecondFactorNeeded { .. } => "SecondFactorNeeded",
            SignInOutcome::Refused => "Refused",
            SignInOutcome::Unverified => "Unverified",
            SignInOutcome::RateLimited(_) => "RateLimited",
            SignInOutcome::Busy => "Busy",
            SignInOutcome::Unavailable => "Unavailable",
        })
    }
}

/// What a sign-in attempt came to.
pub enum SignInOutcome {
    /// A new session; `cookie` is its value for the browser (a secret, stored only hashed).
    SignedIn { cookie: String },
    /// The password was right, the account has no second factor and its roles require one
    /// (`mfa.required_for_roles`): a new session with the password alone (one factor, as
    /// `SignedIn`), and the browser goes to TOTP enrolment next, not refused (CONTRACT.md).
    EnrolSecondFactor { cookie: String },
    /// The password was right and the account has a second factor: no session yet. `pending`
    /// is the value of the cookie that binds the pending sign-in to this browser (a secret,
    /// stored only hashed); the second step ([`Authn::second_step`]) finishes it within
    /// [`PENDING_TTL_SECS`].
    SecondFactorNeeded { pending: String },
    /// Unknown email, wrong password, locked or disabled account: one answer for all.
    Refused,
    /// The right password for an account whose email is not verified yet (only someone who
    /// knows the password learns this).
    Unverified,
    /// Too many attempts from this address; retry after this many seconds.
    RateLimited(u64),
    /// The password workers' queue is full; retry in a moment.
    Busy,
    /// The database or the workers failed (logged).
    Unavailable,
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

/// Sign-in, the lockout rules, and sessions.
#[derive(Debug, Clone)]
pub struct Authn {
    store: Store,
    passwords: Arc<PasswordPool>,
    settings: Arc<Settings>,
    clock: SharedClock,
    limiter: Arc<RateLimiter>,
    metrics: Arc<Metrics>,
    factors: Factors,
}

impl Authn {
    pub fn new(
        store: Store,
        passwords: Arc<PasswordPool>,
        settings: Arc<Settings>,
        clock: SharedClock,
        limiter: Arc<RateLimiter>,
        metrics: Arc<Metrics>,
        factors: Factors,
    ) -> Self {
        Self {
            factors,
            store,
            passwords,
            settings,
            clock,
            limiter,
            metrics,
        }
    }

    /// The clock reading a use case works with.
    pub fn now(&self) -> UnixTime {
        self.clock.time()
    }

    /// The whole sign-in: the per-address limit, the password and the lockout, a new session
    /// (the browser's previous one ends), the audit rows and the login metric.
    ///
    /// The per-address limit (`rate_limit.login_per_minute`) counts failed attempts only: an
    /// address that has used up its failures is refused before any check, but successful
    /// sign-ins from one address (an office behind one NAT, every user behind a proxy) never
    /// use it up.
    pub async fn sign_in(&self, attempt: SignIn) -> SignInOutcome {
        self.sign_in_linking(attempt, None).await
    }

    /// A sign-in with a password that, with `link`, proves the account an upstream identity is
    /// to be linked to (`services::federation`): the password must be that account's (another
    /// account's right password is refused like a wrong one), and the identity is linked when
    /// the sign-in completes (after the second step, where there is one).
    pub async fn sign_in_linking(
        &self,
        attempt: SignIn,
        link: Option<(UserId, IdentityLink)>,
    ) -> SignInOutcome {
        let now = self.clock.time();
        if let Some(wait) = self.limited(attempt.ip).await {
            self.metrics.count_login(LoginOutcome::RateLimited);
            return SignInOutcome::RateLimited(wait);
        }
        let ip = attempt.ip.map(|a| a.to_string());
        let checked = match self
            .check_password(&attempt.email, attempt.password, now)
            .await
        {
            Ok(c) => c,
            Err(e) => {
                self.metrics.count_login(LoginOutcome::Error);
                if matches!(e, AuthnError::Busy) {
                    return SignInOutcome::Busy;
                }
                tracing::error!(error = %e, "login failed unexpectedly");
                return SignInOutcome::Unavailable;
            }
        };
        let checked = match (checked, &link) {
            (LoginResult::Ok(u), Some((owner, _))) if &u.id != owner => {
                LoginResult::Failed(LoginFailure::BadCredentials, Some(u.id))
            }
            (other, _) => other,
        };
        let user = match checked {
            LoginResult::Ok(u) => u,
            LoginResult::Failed(why, user_id) => {
                self.metrics.count_login(why.metric());
                // A failure uses up one of the address's attempts; whether this one was the
                // last is told on the next attempt.
                self.count_refusal(attempt.ip).await;
                let entry = AuditEntry {
                    user_id: user_id.map(|u| u.as_str().to_owned()),
                    ip,
                    detail: format!("reason={}", why.as_str()),
                    ..AuditEntry::new(AuditKind::LoginFailed)
                };
                self.store.record(entry, now).await;
                return SignInOutcome::Refused;
            }
            LoginResult::Unverified(_) => {
                self.metrics.count_login(LoginOutcome::Unverified);
                return SignInOutcome::Unverified;
            }
        };
        self.after_first_factor(
            &user,
            FirstFactor::Password,
            link.map(|(_, l)| l),
            (ip, attempt.user_agent),
            attempt.previous_session.as_deref(),
            attempt.login_ticket,
            now,
        )
        .await
    }

    /// A sign-in through an upstream identity provider whose answer passed every check
    /// (`services::federation`), for this local account; `link`, when set, is linked to the
    /// account as part of the sign-in (after the second step, where there is one). Then as a
    /// password sign-in: the account's second factor, or the policy's enrolment, or a session
    /// whose `amr` is `fed` ([`crate::domain::acr::AMR_FED`]).
    pub async fn upstream_sign_in(&self, attempt: UpstreamSignIn) -> SignInOutcome {
        let now = self.clock.time();
        let ip = attempt.ip.map(|a| a.to_string());
        let user = match self.store.user_by_id(attempt.user.as_str()).await {
            Ok(Some(u)) if !u.disabled => u,
            Ok(_) => {
                let entry = AuditEntry {
                    user_id: Some(attempt.user.as_str().to_owned()),
                    ip,
                    detail: format!("reason=disabled upstream={}", attempt.upstream),
                    ..AuditEntry::new(AuditKind::LoginFailed)
                };
                self.store.record(entry, now).await;
                self.metrics.count_login(LoginOutcome::Disabled);
                return SignInOutcome::Refused;
            }
            Err(e) => {
                tracing::error!(error = %e, "cannot read the user of an upstream sign-in");
                self.metrics.count_login(LoginOutcome::Error);
                return SignInOutcome::Unavailable;
            }
        };
        self.after_first_factor(
            &user,
            FirstFactor::Upstream(attempt.upstream),
            attempt.link,
            (ip, attempt.user_agent),
            attempt.previous_session.as_deref(),
            attempt.login_ticket,
            now,
        )
        .await
    }

    /// After the first factor: the second step when the account has a factor, else a new
    /// session (the browser's previous one ends), the `link` made first; the audit row and
    /// the login metric; enrolment next when the account's roles require a second factor.
    #[allow(clippy::too_many_arguments)]
    async fn after_first_factor(
        &self,
        user: &User,
        first: FirstFactor,
        link: Option<IdentityLink>,
        (ip, user_agent): (Option<String>, Option<String>),
        previous_session: Option<&str>,
        login_ticket: Option<String>,
        now: UnixTime,
    ) -> SignInOutcome {
        match self.factors.has_any(&user.id).await {
            Ok(false) => {}
            Ok(true) => {
                return self
                    .begin_second_step(user, login_ticket, first.upstream(), link, now)
                    .await;
            }
            Err(e) => {
                tracing::error!(error = %e, "cannot read the second factors");
                self.metrics.count_login(LoginOutcome::Error);
                return SignInOutcome::Unavailable;
            }
        }
        if let Some(link) = &link {
            self.link(link, &user.id, ip.clone(), now).await;
        }
        // No second factor: a user whose roles require one is signed in with the first factor
        // alone and taken to enrolment (the authorization endpoint still asks for the level
        // its client needs).
        let enrol = self.settings.mfa.policy().required_for(user);
        // A new session for every login (no session fixation); the previous one ends.
        if let Some(old) = previous_session
            && let Err(e) = self.end_session(old).await
        {
            tracing::warn!(error = %e, "cannot end the previous session");
        }
        let started = self
            .start_session(
                user,
                &first.amr(),
                ip.clone(),
                user_agent,
                (login_ticket, first.upstream()),
                now,
            )
            .await;
        let (cookie, session) = match started {
            Ok(v) => v,
            Err(e) => {
                tracing::error!(error = %e, "cannot start a session");
                self.metrics.count_login(LoginOutcome::Error);
                return SignInOutcome::Unavailable;
            }
        };
        let detail = match first.upstream() {
            Some(u) => format!("sid {} upstream={u}", session.sid),
            None => format!("sid {}", session.sid),
        };
        let entry = AuditEntry {
            user_id: Some(user.id.as_str().to_owned()),
            ip,
            detail,
            ..AuditEntry::new(AuditKind::LoginSucceeded)
        };
        self.store.record(entry, now).await;
        if enrol {
            self.metrics
                .count_login(LoginOutcome::SecondFactorEnrolment);
            return SignInOutcome::EnrolSecondFactor { cookie };
        }
        self.metrics.count_login(LoginOutcome::Success);
        SignInOutcome::SignedIn { cookie }
    }

    /// Links an upstream identity to the account, audited; a link lost to a parallel one is
    /// logged (the sign-in goes on: the person proved the account).
    async fn link(&self, link: &IdentityLink, user: &UserId, ip: Option<String>, now: UnixTime) {
        match self.store.link_identity(link, user, now).await {
            Ok(Linked::Done) => {
                let entry = AuditEntry {
                    user_id: Some(user.as_str().to_owned()),
                    ip,
                    detail: format!("upstream={}", link.upstream_id),
                    ..AuditEntry::new(AuditKind::UpstreamLinked)
                };
                self.store.record(entry, now).await;
            }
            Ok(other) => {
                tracing::warn!(upstream = %link.upstream_id, outcome = ?other, "an upstream identity was not linked");
            }
            Err(e) => tracing::error!(error = %e, "cannot link an upstream identity"),
        }
    }

    /// Verifies email and password, with per-account throttling ([`crate::domain::LockoutPolicy`]):
    /// after `login.max_failures` failures within `login.failure_window_secs`, the account refuses
    /// further attempts for a growing delay. A locked account answers exactly like a wrong
    /// password, after the same argon2 work. Each failure is counted by one statement in the
    /// database ([`crate::store::Store::count_password_failure`]), so parallel guesses, on any
    /// number of instances, are each counted.
    async fn check_password(
        &self,
        email: &str,
        password: String,
        now: UnixTime,
    ) -> Result<LoginResult, AuthnError> {
        let creds = match Email::parse(email) {
            Ok(e) => self.store.credentials_by_email(&e).await?,
            Err(_) => None,
        };
        let hash = creds.as_ref().and_then(|c| c.password_hash.clone());
        let password = crate::domain::password::normalize(&password);
        // Same work for an unknown user (and for one without a password): the dummy hash.
        let ok = self.passwords.verify(password, hash).await?;
        let Some(c) = creds else {
            return Ok(LoginResult::Failed(LoginFailure::UnknownEmail, None));
        };
        let id = c.user.id.clone();
        let locked = c.locked_until.is_some_and(|t| t > now);
        if !ok {
            self.count_failure(&id, locked, now).await?;
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
            && !self.store.clear_password_failures(&id, now).await?
        {
            return Ok(LoginResult::Failed(LoginFailure::Locked, Some(id)));
        }
        if !c.user.email_verified && self.settings.registration.require_verified_email {
            return Ok(LoginResult::Unverified(c.user));
        }
        Ok(LoginResult::Ok(c.user))
    }

    /// Counts a wrong password for the account; audits the lock when this failure set one.
    async fn count_failure(
        &self,
        id: &UserId,
        was_locked: bool,
        now: UnixTime,
    ) -> Result<(), AuthnError> {
        let policy = self.settings.login.lockout();
        let Some(failure) = self.store.count_password_failure(id, &policy, now).await? else {
            return Ok(());
        };
        let set_now = policy
            .lock_secs(failure.count)
            .is_some_and(|secs| failure.locked_until == Some(now.plus(secs as i64)));
        if set_now && !was_locked {
            self.store
                .audit(
                    AuditEntry {
                        user_id: Some(id.as_str().to_owned()),
                        detail: format!("{} failed logins", failure.count),
                        ..AuditEntry::new(AuditKind::LoginLocked)
                    },
                    now,
                )
                .await?;
        }
        Ok(())
    }

    /// Checks a signed-in user's password under the same per-account lockout as the login page:
    /// a wrong one counts as a failed login, and while the account is locked no password is
    /// checked (the user is known here, so there is nothing to hide by doing the work anyway).
    pub async fn check_user_password(
        &self,
        user: &UserId,
        password: &str,
        now: UnixTime,
    ) -> Result<PasswordCheck, AuthnError> {
        let Some(c) = self.store.credentials_by_id(user).await? else {
            return Ok(PasswordCheck::Wrong);
        };
        if c.locked_until.is_some_and(|t| t > now) {
            return Ok(PasswordCheck::Locked);
        }
        let Some(hash) = c.password_hash.clone() else {
            return Ok(PasswordCheck::Wrong);
        };
        let password = crate::domain::password::normalize(password);
        if !self.passwords.verify(password, Some(hash)).await? {
            self.count_failure(user, false, now).await?;
            return Ok(PasswordCheck::Wrong);
        }
        if (c.failed_logins > 0 || c.locked_until.is_some())
            && !self.store.clear_password_failures(user, now).await?
        {
            return Ok(PasswordCheck::Locked);
        }
        Ok(PasswordCheck::Right)
    }

    /// Starts a session; returns the cookie value (a 256-bit secret, stored only hashed).
    /// `login_ticket` is the ticket of the authorization request the login was made for, if it
    /// demanded a fresh login (`oauth::authorize::login_ticket_in`).
    async fn start_session(
        &self,
        user: &User,
        amr: &[String],
        ip: Option<String>,
        user_agent: Option<String>,
        (login_ticket, upstream): (Option<String>, Option<String>),
        now: UnixTime,
    ) -> Result<(String, SessionRecord), AuthnError> {
        let value = token::generate(SESSION_PREFIX);
        let sid = token::random_id();
        let expires_at = now.plus(self.settings.session.ttl_secs as i64);
        let amr = amr.to_vec();
        let user_agent = user_agent.map(|ua| ua.chars().take(256).collect());
        self.store
            .create_session(
                NewSession {
                    id_hash: token::hash(&value),
                    sid: sid.clone(),
                    user_id: user.id.clone(),
                    auth_time: now,
                    amr: amr.clone(),
                    ip: ip.clone(),
                    user_agent: user_agent.clone(),
                    expires_at,
                    login_ticket: login_ticket.clone(),
                    upstream: upstream.clone(),
                },
                now,
            )
            .await?;
        let record = SessionRecord {
            sid,
            user_id: user.id.clone(),
            auth_time: now,
            amr,
            ip,
            user_agent,
            created_at: now,
            last_seen: now,
            expires_at,
            login_ticket,
            upstream,
        };
        Ok((value, record))
    }

    /// The signed-in user behind a session cookie, if the session is live and the user enabled.
    pub async fn current(&self, cookie: &str) -> Result<Option<Authenticated>, AuthnError> {
        let now = self.clock.time();
        if !cookie.starts_with(SESSION_PREFIX) {
            return Ok(None);
        }
        let hash = token::hash(cookie);
        let Some(session) = self.store.session(&hash, now).await? else {
            return Ok(None);
        };
        let Some(user) = self.store.user_by_id(session.user_id.as_str()).await? else {
            return Ok(None);
        };
        if user.disabled {
            return Ok(None);
        }
        // Sliding expiry, written at most once a minute per session.
        if now.since(session.last_seen) >= 60 {
            let expires_at = now.plus(self.settings.session.ttl_secs as i64);
            self.store.touch_session(&hash, now, expires_at).await?;
        }
        Ok(Some(Authenticated { session, user }))
    }

    /// Ends the session behind a cookie (no-op when there is none).
    pub async fn end_session(&self, cookie: &str) -> Result<(), AuthnError> {
        self.store.delete_session(&token::hash(cookie)).await?;
        Ok(())
    }

    /// The user behind a user id, if enabled.
    pub async fn enabled_user(&self, id: &str) -> Result<Option<User>, AuthnError> {
        Ok(self.store.user_by_id(id).await?.filter(|u| !u.disabled))
    }
}

/// How long a right password waits for its second factor (a pending sign-in).
pub const PENDING_TTL_SECS: i64 = 300;

/// A code from the second-step page: it finishes the browser's pending sign-in or, with no
/// pending sign-in, raises the browser's session to two factors (step-up, when an
/// authorization request asks for `urn:castellan:acr:mfa`).
pub struct SecondStep {
    /// The pending sign-in cookie of this browser.
    pub pending: Option<String>,
    /// The session cookie of this browser.
    pub session: Option<String>,
    /// A TOTP code or a recovery code.
    pub code: String,
    pub ip: Option<IpAddr>,
    pub user_agent: Option<String>,
}

/// What a second-step attempt came to.
pub enum SecondStepOutcome {
    /// A new session with both factors; `cookie` is its value.
    SignedIn { cookie: String },
    /// A wrong, replayed or used code, or a locked account: the page again.
    Wrong,
    /// No pending sign-in of this browser (expired, used, or never made here) and no session
    /// with a factor to raise: start again at the login page.
    Expired,
    /// Too many failures from this address.
    RateLimited(u64),
    /// The database failed (logged).
    Unavailable,
}

impl Authn {
    /// Keeps a right password waiting for its second factor: a pending sign-in in the
    /// database (any instance can finish it), bound to the browser by a cookie.
    async fn begin_second_step(
        &self,
        user: &User,
        login_ticket: Option<String>,
        upstream: Option<String>,
        link: Option<IdentityLink>,
        now: UnixTime,
    ) -> SignInOutcome {
        let value = token::generate(token::prefix::PENDING_SIGN_IN);
        let pending = PendingSignIn {
            user_id: user.id.clone(),
            login_ticket,
            upstream,
            link,
        };
        let expires_at = now.plus(PENDING_TTL_SECS);
        match self
            .store
            .insert_pending_sign_in(token::hash(&value), pending, expires_at, now)
            .await
        {
            Ok(()) => {
                self.metrics.count_login(LoginOutcome::SecondFactorNeeded);
                SignInOutcome::SecondFactorNeeded { pending: value }
            }
            Err(e) => {
                tracing::error!(error = %e, "cannot store a pending sign-in");
                self.metrics.count_login(LoginOutcome::Error);
                SignInOutcome::Unavailable
            }
        }
    }

    /// The second step of a sign-in, or a step-up: the per-address limit, the account's lock,
    /// the code (used up when right; a wrong one counts toward the lockout like a wrong
    /// password), then a new session whose `amr` is `pwd otp mfa` (RFC 8176 §2), replacing the
    /// browser's session; the audit rows and the login metric.
    pub async fn second_step(&self, step: SecondStep) -> SecondStepOutcome {
        let now = self.clock.time();
        if let Some(wait) = self.limited(step.ip).await {
            self.metrics.count_login(LoginOutcome::RateLimited);
            return SecondStepOutcome::RateLimited(wait);
        }
        match self.try_second_step(step, now).await {
            Ok(outcome) => outcome,
            Err(e) => {
                tracing::error!(error = %e, "the second step of a sign-in failed unexpectedly");
                self.metrics.count_login(LoginOutcome::Error);
                SecondStepOutcome::Unavailable
            }
        }
    }

    async fn try_second_step(
        &self,
        step: SecondStep,
        now: UnixTime,
    ) -> Result<SecondStepOutcome, AuthnError> {
        let ip = step.ip.map(|a| a.to_string());
        let Some((of, c, locked)) = self
            .step_account(step.pending.as_deref(), step.session.as_deref(), now)
            .await?
        else {
            return Ok(SecondStepOutcome::Expired);
        };
        let check = if locked {
            FactorCheck::Wrong
        } else {
            self.factors
                .check(&c.user, &step.code, ip.clone(), now)
                .await?
        };
        match check {
            FactorCheck::Totp | FactorCheck::RecoveryCode { .. } => {}
            // A user whose only second factor is a passkey typed a code: a wrong one.
            FactorCheck::NoFactor if !self.factors.has_any(&c.user.id).await? => {
                return Ok(SecondStepOutcome::Expired);
            }
            FactorCheck::Wrong | FactorCheck::Replayed | FactorCheck::NoFactor => {
                return self
                    .refuse_second_factor(&c.user.id, locked, step.ip, ip, check.method(), now)
                    .await;
            }
        }
        let detail = check.method().to_owned();
        let amr = first_and_second(of.first_amr(), AMR_OTP);
        self.finish_second_step(
            &c,
            of,
            amr,
            step.session.as_deref(),
            (ip, step.user_agent),
            detail,
            "mfa",
            now,
        )
        .await
    }

    /// A refused second factor (a wrong, replayed or used code; an assertion that did not
    /// verify; a locked account): counted like a wrong password, toward the account's lockout
    /// and the address's failures; audited with `reason`; the login metric.
    async fn refuse_second_factor(
        &self,
        user: &UserId,
        locked: bool,
        addr: Option<IpAddr>,
        ip: Option<String>,
        reason: &str,
        now: UnixTime,
    ) -> Result<SecondStepOutcome, AuthnError> {
        self.metrics.count_login(LoginOutcome::SecondFactorFailed);
        self.count_failure(user, locked, now).await?;
        self.count_refusal(addr).await;
        let reason = if locked { "locked" } else { reason };
        let entry = AuditEntry {
            user_id: Some(user.as_str().to_owned()),
            ip,
            detail: format!("reason={reason}"),
            ..AuditEntry::new(AuditKind::FactorFailed)
        };
        self.store.record(entry, now).await;
        Ok(SecondStepOutcome::Wrong)
    }

    /// The end of a second step whose factor was right: a lock set by a parallel failure since
    /// the account was read still holds; the pending sign-in serves once (of two right answers
    /// in parallel, one signs in); then the new session ([`Authn::finish_with_session`]).
    #[allow(clippy::too_many_arguments)]
    async fn finish_second_step(
        &self,
        c: &Credentials,
        of: SecondStepOf,
        amr: Vec<String>,
        previous_session: Option<&str>,
        (ip, user_agent): (Option<String>, Option<String>),
        factor_detail: String,
        how: &str,
        now: UnixTime,
    ) -> Result<SecondStepOutcome, AuthnError> {
        if (c.failed_logins > 0 || c.locked_until.is_some())
            && !self.store.clear_password_failures(&c.user.id, now).await?
        {
            return Ok(SecondStepOutcome::Wrong);
        }
        if let Some(h) = &of.pending
            && !self.store.take_pending_sign_in(h, now).await?
        {
            return Ok(SecondStepOutcome::Expired);
        }
        if let Some(link) = &of.link {
            self.link(link, &c.user.id, ip.clone(), now).await;
        }
        let started = self
            .finish_with_session(
                &c.user,
                amr,
                previous_session,
                (ip, user_agent),
                (of.login_ticket, of.upstream),
                factor_detail,
                how,
                now,
            )
            .await;
        Ok(match started {
            Some(cookie) => SecondStepOutcome::SignedIn { cookie },
            None => SecondStepOutcome::Unavailable,
        })
    }

    /// Counts a wrong second-factor code toward the account's lockout, exactly as a wrong
    /// password (`services::mfa` asks, for codes typed at enrolment).
    pub(crate) async fn count_wrong_code(
        &self,
        user: &UserId,
        now: UnixTime,
    ) -> Result<(), AuthnError> {
        self.count_failure(user, false, now).await
    }

    /// Whether the account is locked now (too many wrong passwords or codes).
    pub(crate) async fn locked(&self, user: &UserId, now: UnixTime) -> Result<bool, AuthnError> {
        Ok(self
            .store
            .credentials_by_id(user)
            .await?
            .is_some_and(|c| c.locked_until.is_some_and(|t| t > now)))
    }

    /// The second-factor checks and stores.
    pub fn factors(&self) -> &Factors {
        &self.factors
    }
}

/// A sign-in with a passkey alone: the browser's answer to the options of
/// [`Authn::begin_passkey_sign_in`].
pub struct PasskeySignIn {
    /// The ceremony cookie of this browser.
    pub ceremony: Option<String>,
    /// The `PublicKeyCredential` as JSON.
    pub credential: String,
    pub ip: Option<IpAddr>,
    pub user_agent: Option<String>,
    pub previous_session: Option<String>,
    pub login_ticket: Option<String>,
}

/// A passkey as the second step of a sign-in or a step-up.
pub struct PasskeyStep {
    pub ceremony: Option<String>,
    pub credential: String,
    pub pending: Option<String>,
    pub session: Option<String>,
    pub ip: Option<IpAddr>,
    pub user_agent: Option<String>,
}

/// What asking for passkey options came to.
pub enum PasskeyOptions {
    /// The options for the browser, and the ceremony cookie.
    Begun(Begun),
    /// Passkeys are unavailable here, or (second step) the user has none, or there is no
    /// pending sign-in or session to step up.
    NotOffered,
    RateLimited(u64),
    Unavailable,
}

impl PasskeyOptions {
    /// The options a begun ceremony gives, or why there are none (a failure is logged).
    fn of<E: std::fmt::Display>(begun: Result<Option<Begun>, E>, what: &str) -> Self {
        match begun {
            Ok(Some(b)) => PasskeyOptions::Begun(b),
            Ok(None) => PasskeyOptions::NotOffered,
            Err(e) => {
                tracing::error!(error = %e, "cannot begin {what}");
                PasskeyOptions::Unavailable
            }
        }
    }
}

/// Whose second step this browser is taking: the user, the ticket of the login, the pending
/// sign-in's hash when there is one, and what a passkey ceremony binds to.
struct SecondStepOf {
    user_id: UserId,
    login_ticket: Option<String>,
    pending: Option<String>,
    binding: Binding,
    /// The pending sign-in began at this upstream provider (`None`: a password, or a step-up).
    upstream: Option<String>,
    /// An identity to link when the step succeeds.
    link: Option<IdentityLink>,
}

impl SecondStepOf {
    /// The `amr` value of the first factor: `fed` after an upstream, else `pwd`.
    fn first_amr(&self) -> &'static str {
        if self.upstream.is_some() {
            AMR_FED
        } else {
            AMR_PWD
        }
    }
}

impl Authn {
    /// Whose second step this browser is taking ([`Authn::second_step_of`]), that account's
    /// credentials, and whether it is locked now; `None` when there is no step to take, or the
    /// account is gone or disabled.
    async fn step_account(
        &self,
        pending: Option<&str>,
        session: Option<&str>,
        now: UnixTime,
    ) -> Result<Option<(SecondStepOf, Credentials, bool)>, AuthnError> {
        let Some(of) = self.second_step_of(pending, session, now).await? else {
            return Ok(None);
        };
        let Some(c) = self.store.credentials_by_id(&of.user_id).await? else {
            return Ok(None);
        };
        if c.user.disabled {
            return Ok(None);
        }
        let locked = c.locked_until.is_some_and(|t| t > now);
        Ok(Some((of, c, locked)))
    }

    async fn second_step_of(
        &self,
        pending: Option<&str>,
        session: Option<&str>,
        now: UnixTime,
    ) -> Result<Option<SecondStepOf>, AuthnError> {
        let pending_hash = pending
            .filter(|v| v.starts_with(token::prefix::PENDING_SIGN_IN))
            .map(token::hash);
        if let Some(h) = pending_hash
            && let Some(p) = self.store.pending_sign_in(&h, now).await?
        {
            return Ok(Some(SecondStepOf {
                user_id: p.user_id,
                login_ticket: p.login_ticket,
                binding: Binding::Pending(h.clone()),
                pending: Some(h),
                upstream: p.upstream,
                link: p.link,
            }));
        }
        if let Some(cookie) = session
            && let Some(a) = self.current(cookie).await?
        {
            return Ok(Some(SecondStepOf {
                user_id: a.user.id,
                login_ticket: a.session.login_ticket,
                pending: None,
                binding: Binding::Session(a.session.sid),
                upstream: None,
                link: None,
            }));
        }
        Ok(None)
    }

    /// How long the address must wait, when it has used up its failed sign-ins
    /// (`rate_limit.login_per_minute`); nothing is taken.
    async fn limited(&self, ip: Option<IpAddr>) -> Option<u64> {
        let ip = ip?;
        self.limiter
            .would_allow(Action::Login, ip, self.clock.now_ms())
            .await
            .err()
    }

    /// Uses up one of the address's failed sign-ins.
    async fn count_refusal(&self, ip: Option<IpAddr>) {
        if let Some(addr) = ip {
            let _ = self
                .limiter
                .take(Action::Login, addr, self.clock.now_ms())
                .await;
        }
    }

    /// Options for a sign-in with a passkey alone (the login page's button, and the browser's
    /// autofill). Limited like failed sign-ins from the address, since each makes a ceremony.
    pub async fn begin_passkey_sign_in(&self, ip: Option<IpAddr>) -> PasskeyOptions {
        if let Some(wait) = self.limited(ip).await {
            return PasskeyOptions::RateLimited(wait);
        }
        let begun = self
            .factors
            .passkeys()
            .begin_sign_in(self.clock.time())
            .await;
        PasskeyOptions::of(begun, "a passkey sign-in")
    }

    /// Options for a passkey as the second step of this browser's pending sign-in, or to step
    /// up its session.
    pub async fn begin_passkey_step(
        &self,
        pending: Option<&str>,
        session: Option<&str>,
        ip: Option<IpAddr>,
    ) -> PasskeyOptions {
        if let Some(wait) = self.limited(ip).await {
            return PasskeyOptions::RateLimited(wait);
        }
        let now = self.clock.time();
        let begun = async {
            let Some(of) = self.second_step_of(pending, session, now).await? else {
                return Ok::<_, AuthnError>(None);
            };
            Ok(self
                .factors
                .passkeys()
                .begin_second_factor(&of.user_id, &of.binding, now)
                .await?)
        };
        PasskeyOptions::of(begun.await, "a passkey second step")
    }

    /// Whether the user of this browser's second step has a passkey (the second-step page shows
    /// its button then).
    pub async fn second_step_has_passkey(
        &self,
        pending: Option<&str>,
        session: Option<&str>,
    ) -> bool {
        if !self.factors.passkeys().available() {
            return false;
        }
        let now = self.clock.time();
        match self.second_step_of(pending, session, now).await {
            Ok(Some(of)) => self.factors.has_passkey(&of.user_id).await.unwrap_or(false),
            _ => false,
        }
    }

    /// A sign-in with a passkey alone: the per-address limit, the ceremony (once), the
    /// assertion (WebAuthn §7.2, user verification required), an enabled account, then a new
    /// session whose `amr` is the key's kind and `mfa` (level `phr`); the audit rows and the
    /// login metric. The account's password lockout does not stop it: the lock is against
    /// guessing, and an assertion cannot be guessed.
    pub async fn passkey_sign_in(&self, attempt: PasskeySignIn) -> SignInOutcome {
        if let Some(wait) = self.limited(attempt.ip).await {
            self.metrics.count_login(LoginOutcome::RateLimited);
            return SignInOutcome::RateLimited(wait);
        }
        let now = self.clock.time();
        let ip = attempt.ip.map(|a| a.to_string());
        let verified = self
            .factors
            .passkeys()
            .finish_sign_in(attempt.ceremony.as_deref(), &attempt.credential, now)
            .await;
        let refused = |user: Option<&UserId>, detail: String| AuditEntry {
            user_id: user.map(|u| u.as_str().to_owned()),
            ip: ip.clone(),
            detail,
            ..AuditEntry::new(AuditKind::LoginFailed)
        };
        let v: Verified = match verified {
            Ok(Ok(v)) => v,
            Ok(Err(why)) => {
                let entry = refused(None, format!("reason=passkey {}", why.as_str()));
                self.store.record(entry, now).await;
                self.metrics.count_login(LoginOutcome::BadCredentials);
                self.count_refusal(attempt.ip).await;
                return SignInOutcome::Refused;
            }
            Err(e) => {
                tracing::error!(error = %e, "a passkey sign-in failed unexpectedly");
                self.metrics.count_login(LoginOutcome::Error);
                return SignInOutcome::Unavailable;
            }
        };
        let user = match self.store.user_by_id(v.user_id.as_str()).await {
            Ok(Some(u)) if !u.disabled => u,
            Ok(_) => {
                let entry = refused(Some(&v.user_id), "reason=disabled passkey".into());
                self.store.record(entry, now).await;
                self.metrics.count_login(LoginOutcome::Disabled);
                return SignInOutcome::Refused;
            }
            Err(e) => {
                tracing::error!(error = %e, "cannot read the user of a passkey");
                self.metrics.count_login(LoginOutcome::Error);
                return SignInOutcome::Unavailable;
            }
        };
        self.finish_with_session(
            &user,
            passkey_only(v.method),
            attempt.previous_session.as_deref(),
            (ip, attempt.user_agent),
            (attempt.login_ticket, None),
            v.audit_detail(),
            "passkey",
            now,
        )
        .await
        .map_or(SignInOutcome::Unavailable, |cookie| {
            SignInOutcome::SignedIn { cookie }
        })
    }

    /// A passkey as the second step of this browser's pending sign-in, or to step its session
    /// up: as [`Authn::second_step`], with an assertion for the code. A refused assertion of a
    /// known user counts toward the account's lockout like a wrong code.
    pub async fn passkey_second_step(&self, step: PasskeyStep) -> SecondStepOutcome {
        if let Some(wait) = self.limited(step.ip).await {
            self.metrics.count_login(LoginOutcome::RateLimited);
            return SecondStepOutcome::RateLimited(wait);
        }
        match self.try_passkey_second_step(step).await {
            Ok(o) => o,
            Err(e) => {
                tracing::error!(error = %e, "a passkey second step failed unexpectedly");
                self.metrics.count_login(LoginOutcome::Error);
                SecondStepOutcome::Unavailable
            }
        }
    }

    async fn try_passkey_second_step(
        &self,
        step: PasskeyStep,
    ) -> Result<SecondStepOutcome, AuthnError> {
        let now = self.clock.time();
        let ip = step.ip.map(|a| a.to_string());
        let Some((of, c, locked)) = self
            .step_account(step.pending.as_deref(), step.session.as_deref(), now)
            .await?
        else {
            return Ok(SecondStepOutcome::Expired);
        };
        let verified = if locked {
            Err(Refusal::Invalid)
        } else {
            self.factors
                .passkeys()
                .finish_second_factor(
                    &of.user_id,
                    &of.binding,
                    step.ceremony.as_deref(),
                    &step.credential,
                    now,
                )
                .await?
        };
        let v = match verified {
            Ok(v) => v,
            Err(why) => {
                let reason = format!("passkey {}", why.as_str());
                return self
                    .refuse_second_factor(&of.user_id, locked, step.ip, ip, &reason, now)
                    .await;
            }
        };
        // A step-up of a passkey-only session keeps no password among its methods.
        let amr = if of.pending.is_some() {
            first_and_second(of.first_amr(), v.method)
        } else if c.password_hash.is_some() {
            password_and_passkey(v.method)
        } else {
            passkey_only(v.method)
        };
        self.finish_second_step(
            &c,
            of,
            amr,
            step.session.as_deref(),
            (ip, step.user_agent),
            v.audit_detail(),
            "passkey",
            now,
        )
        .await
    }

    /// The end of every sign-in with a second factor or a passkey: the previous session ends,
    /// a new one starts with these methods, the factor's use and the login are audited (one
    /// INSERT; the login's detail names the session and `how`) and counted. `None`: the
    /// session could not be stored (logged).
    #[allow(clippy::too_many_arguments)]
    async fn finish_with_session(
        &self,
        user: &User,
        amr: Vec<String>,
        previous_session: Option<&str>,
        (ip, user_agent): (Option<String>, Option<String>),
        (login_ticket, upstream): (Option<String>, Option<String>),
        factor_detail: String,
        how: &str,
        now: UnixTime,
    ) -> Option<String> {
        if let Some(old) = previous_session
            && let Err(e) = self.end_session(old).await
        {
            tracing::warn!(error = %e, "cannot end the previous session");
        }
        let (cookie, session) = match self
            .start_session(
                user,
                &amr,
                ip.clone(),
                user_agent,
                (login_ticket, upstream),
                now,
            )
            .await
        {
            Ok(v) => v,
            Err(e) => {
                tracing::error!(error = %e, "cannot start a session");
                self.metrics.count_login(LoginOutcome::Error);
                return None;
            }
        };
        self.store
            .record_all(
                vec![
                    AuditEntry {
                        user_id: Some(user.id.as_str().to_owned()),
                        ip: ip.clone(),
                        detail: factor_detail,
                        ..AuditEntry::new(AuditKind::FactorUsed)
                    },
                    AuditEntry {
                        user_id: Some(user.id.as_str().to_owned()),
                        ip,
                        detail: format!("sid {} {how}", session.sid),
                        ..AuditEntry::new(AuditKind::LoginSucceeded)
                    },
                ],
                now,
            )
            .await;
        self.metrics.count_login(LoginOutcome::Success);
        Some(cookie)
    }
}
