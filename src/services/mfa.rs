//! The account page's second-factor use cases: TOTP enrolment (confirmed by a right code
//! before it counts, then ten recovery codes shown once), a new set of recovery codes, and
//! removal (the current password, or a sign-in within five minutes, like an email change;
//! never the last factor while the user's roles require one).
//!
//! Checking codes at sign-in is `services::authn`'s second step; both use `services::factors`.

use std::sync::Arc;

use crate::clock::SharedClock;
use crate::config::Settings;
use crate::crypto::totp;
use crate::domain::acr::password_and_otp;
use crate::domain::{AuditEntry, AuditKind, User};
use crate::services::accounts::REAUTH_SECS;
use crate::services::authn::{Authenticated, Authn, AuthnError, PasswordCheck};
use crate::services::factors::{FactorError, Factors};
use crate::services::passkeys::{Begun, PasskeyError, Registered};
use crate::store::factors::TotpRemoval;
use crate::store::passkeys::{KeptWayIn, PasskeyRecord};
use crate::store::{Store, StoreError};

/// How long an unconfirmed seed is shown again (a reload of the enrolment page keeps the QR
/// code the user may have scanned); after that a new one is made.
const UNCONFIRMED_REUSE_SECS: i64 = 600;

#[derive(Debug, thiserror::Error)]
pub enum MfaError {
    #[error(transparent)]
    Authn(#[from] AuthnError),
    #[error(transparent)]
    Factor(#[from] FactorError),
    #[error(transparent)]
    Store(#[from] StoreError),
    #[error(transparent)]
    Passkey(#[from] PasskeyError),
}

/// What removing a passkey, or the password, came to.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum WayInRemoval {
    Removed,
    /// A wrong current password (counted toward the lockout).
    WrongPassword,
    Locked,
    /// No password given (or none to give) and the last sign-in is older than five minutes.
    SignInAgain,
    /// It is the last way to sign in (no password and no other passkey; or, for the password,
    /// no passkey): refused.
    LastWayIn,
    /// It is the last second factor, and the user's roles require one: refused.
    Required,
    NotFound,
}

/// What the enrolment page shows: the seed as text and as an `otpauth://` URI (for the QR
/// code).
pub struct TotpSetup {
    pub secret_base32: String,
    pub uri: String,
}

/// The enrolment page's state.
pub enum Enrolment {
    /// A seed waiting for its first right code.
    Setup(TotpSetup),
    /// TOTP is already on.
    AlreadyOn,
}

/// What a code typed at enrolment came to.
pub enum Confirmation {
    /// TOTP is on; these recovery codes are shown once.
    Confirmed { recovery_codes: Vec<String> },
    /// A wrong code (counted toward the lockout); the same seed again.
    Wrong(TotpSetup),
    /// Too many wrong passwords or codes: nothing is checked until the lock ends.
    Locked,
    /// No enrolment was started (or TOTP is already on).
    NotStarted,
}

/// What a removal came to.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Removal {
    Removed,
    /// A wrong current password (counted toward the lockout).
    WrongPassword,
    Locked,
    /// No password given and the last sign-in is older than five minutes.
    SignInAgain,
    NotOn,
    /// It is the user's last second factor and their roles require one
    /// (`mfa.required_for_roles`): it stays. Checked before the password, so nothing counts
    /// toward the lockout.
    Required,
}

/// The second factors of the signed-in user.
#[derive(Debug, Clone)]
pub struct Mfa {
    store: Store,
    factors: Factors,
    authn: Authn,
    settings: Arc<Settings>,
    clock: SharedClock,
}

impl Mfa {
    pub fn new(
        store: Store,
        factors: Factors,
        authn: Authn,
        settings: Arc<Settings>,
        clock: SharedClock,
    ) -> Self {
        Self {
            store,
            factors,
            authn,
            settings,
            clock,
        }
    }

    /// The Key Uri Format's issuer: the host of our issuer URL.
    fn issuer_host(&self) -> String {
        url::Url::parse(&self.settings.server.issuer)
            .ok()
            .and_then(|u| u.host_str().map(str::to_owned))
            .unwrap_or_else(|| "Castellan".to_owned())
    }

    fn setup(&self, user: &User, secret: &[u8]) -> TotpSetup {
        let issuer = self.issuer_host();
        TotpSetup {
            secret_base32: totp::base32_encode(secret),
            // Key Uri Format: label `issuer:account`, and the same `issuer` parameter.
            uri: totp::otpauth_uri(&issuer, &user.email, secret),
        }
    }

    /// Starts (or shows again) a TOTP enrolment: a new random seed, stored unconfirmed.
    pub async fn start_totp(&self, user: &User) -> Result<Enrolment, MfaError> {
        let now = self.clock.time();
        if let Some(f) = self.store.totp_factor(&user.id).await? {
            if f.confirmed {
                return Ok(Enrolment::AlreadyOn);
            }
            if now.since(f.created_at) < UNCONFIRMED_REUSE_SECS {
                let secret = self.factors.open_secret(&user.id, &f.secret)?;
                return Ok(Enrolment::Setup(self.setup(user, &secret)));
            }
        }
        let secret = totp::generate_secret();
        let stored = self.factors.seal_secret(&user.id, &secret)?;
        match self.store.put_unconfirmed_totp(&user.id, stored, now).await {
            Ok(()) => Ok(Enrolment::Setup(self.setup(user, &secret))),
            // A confirmation in parallel.
            Err(StoreError::Conflict) => Ok(Enrolment::AlreadyOn),
            Err(e) => Err(e.into()),
        }
    }

    /// Confirms the enrolment with a right code (RFC 6238, ±1 step): the factor counts from
    /// now, its step is used, ten recovery codes replace any old ones, and the session the
    /// user typed it in has now used two factors. A wrong code counts toward the lockout.
    pub async fn confirm_totp(
        &self,
        me: &Authenticated,
        code: &str,
    ) -> Result<Confirmation, MfaError> {
        let now = self.clock.time();
        let user = &me.user;
        if self.authn.locked(&user.id, now).await? {
            return Ok(Confirmation::Locked);
        }
        let Some(f) = self.store.totp_factor(&user.id).await? else {
            return Ok(Confirmation::NotStarted);
        };
        if f.confirmed {
            return Ok(Confirmation::NotStarted);
        }
        let secret = self.factors.open_secret(&user.id, &f.secret)?;
        let Some(step) = totp::matching_step(&secret, code, now.secs()) else {
            self.authn.count_wrong_code(&user.id, now).await?;
            self.store
                .record(
                    AuditEntry {
                        user_id: Some(user.id.as_str().to_owned()),
                        detail: "reason=wrong_code enrolment".into(),
                        ..AuditEntry::new(AuditKind::FactorFailed)
                    },
                    now,
                )
                .await;
            return Ok(Confirmation::Wrong(self.setup(user, &secret)));
        };
        let codes = totp::generate_recovery_codes();
        let hashes: Vec<String> = codes.iter().map(|c| totp::recovery_code_hash(c)).collect();
        if !self
            .store
            .confirm_totp(&user.id, step, &hashes, now)
            .await?
        {
            return Ok(Confirmation::NotStarted);
        }
        self.store
            .set_session_amr(&me.session.sid, &password_and_otp())
            .await?;
        self.store
            .audit(
                AuditEntry {
                    user_id: Some(user.id.as_str().to_owned()),
                    detail: "totp".into(),
                    ..AuditEntry::new(AuditKind::FactorAdded)
                },
                now,
            )
            .await?;
        Ok(Confirmation::Confirmed {
            recovery_codes: codes,
        })
    }

    /// A new set of ten recovery codes (the old set ends); `None` when TOTP is off.
    pub async fn regenerate_recovery_codes(
        &self,
        user: &User,
    ) -> Result<Option<Vec<String>>, MfaError> {
        let now = self.clock.time();
        if !self.store.has_totp(&user.id).await? {
            return Ok(None);
        }
        let codes = totp::generate_recovery_codes();
        let hashes: Vec<String> = codes.iter().map(|c| totp::recovery_code_hash(c)).collect();
        self.store
            .replace_recovery_codes(&user.id, &hashes, now)
            .await?;
        self.store
            .audit(
                AuditEntry {
                    user_id: Some(user.id.as_str().to_owned()),
                    ..AuditEntry::new(AuditKind::RecoveryCodesRegenerated)
                },
                now,
            )
            .await?;
        Ok(Some(codes))
    }

    /// Removes TOTP and the recovery codes: with the current password (a wrong one counts
    /// toward the lockout), or, with none given, a sign-in within five minutes. Refused
    /// ([`Removal::Required`]) when it is the last second factor of a user whose roles
    /// require one.
    pub async fn remove_totp(
        &self,
        me: &Authenticated,
        current_password: &str,
    ) -> Result<Removal, MfaError> {
        let now = self.clock.time();
        let user = &me.user;
        if !self.store.has_totp(&user.id).await? {
            return Ok(Removal::NotOn);
        }
        // The last factor stays while the user's roles require one (a client's requirement
        // applies at its sign-ins only: such a user is asked to enrol again there).
        if self.settings.mfa.policy().required_for(user) && self.factors.count(&user.id).await? <= 1
        {
            return Ok(Removal::Required);
        }
        if current_password.is_empty() || !user.has_password {
            if now.since(me.session.auth_time) > REAUTH_SECS {
                return Ok(Removal::SignInAgain);
            }
        } else {
            match self
                .authn
                .check_user_password(&user.id, current_password, now)
                .await?
            {
                PasswordCheck::Right => {}
                PasswordCheck::Wrong => return Ok(Removal::WrongPassword),
                PasswordCheck::Locked => return Ok(Removal::Locked),
            }
        }
        let required = self.settings.mfa.policy().required_for(user);
        match self.store.remove_totp(&user.id, required).await? {
            TotpRemoval::Removed => {}
            TotpRemoval::NotOn => return Ok(Removal::NotOn),
            TotpRemoval::LastFactor => return Ok(Removal::Required),
        }
        self.store
            .audit(
                AuditEntry {
                    user_id: Some(user.id.as_str().to_owned()),
                    detail: "totp".into(),
                    ..AuditEntry::new(AuditKind::FactorRemoved)
                },
                now,
            )
            .await?;
        Ok(Removal::Removed)
    }
}

impl Mfa {
    /// Re-authentication for a change to how the account signs in: the current password (a
    /// wrong one counts toward the lockout), or, with none given or none to give, a sign-in
    /// within five minutes.
    async fn recently_proven(
        &self,
        me: &Authenticated,
        current_password: &str,
    ) -> Result<Option<WayInRemoval>, MfaError> {
        let now = self.clock.time();
        if current_password.is_empty() || !me.user.has_password {
            if now.since(me.session.auth_time) > REAUTH_SECS {
                return Ok(Some(WayInRemoval::SignInAgain));
            }
            return Ok(None);
        }
        Ok(
            match self
                .authn
                .check_user_password(&me.user.id, current_password, now)
                .await?
            {
                PasswordCheck::Right => None,
                PasswordCheck::Wrong => Some(WayInRemoval::WrongPassword),
                PasswordCheck::Locked => Some(WayInRemoval::Locked),
            },
        )
    }

    async fn audit_factor(&self, me: &Authenticated, kind: AuditKind, detail: String) {
        self.store
            .record(
                AuditEntry {
                    user_id: Some(me.user.id.as_str().to_owned()),
                    detail,
                    ..AuditEntry::new(kind)
                },
                self.clock.time(),
            )
            .await;
    }

    /// The user's passkeys, oldest first.
    pub async fn passkeys(&self, me: &Authenticated) -> Result<Vec<PasskeyRecord>, MfaError> {
        Ok(self.factors.passkeys().list(&me.user.id).await?)
    }

    /// Whether passkeys can be used here (the issuer's host is a domain name).
    pub fn passkeys_available(&self) -> bool {
        self.factors.passkeys().available()
    }

    /// Begins registering a passkey in this session. `None`: passkeys are unavailable.
    pub async fn begin_passkey(&self, me: &Authenticated) -> Result<Option<Begun>, MfaError> {
        Ok(self
            .factors
            .passkeys()
            .begin_registration(&me.user, &me.session.sid, self.clock.time())
            .await?)
    }

    /// Finishes registering a passkey begun in this session; audited.
    pub async fn finish_passkey(
        &self,
        me: &Authenticated,
        ceremony: Option<&str>,
        name: &str,
        credential: &str,
    ) -> Result<Registered, MfaError> {
        let outcome = self
            .factors
            .passkeys()
            .finish_registration(
                &me.user,
                &me.session.sid,
                ceremony,
                name,
                credential,
                self.clock.time(),
            )
            .await?;
        match &outcome {
            Registered::Added { id } => {
                self.audit_factor(me, AuditKind::FactorAdded, format!("passkey {id}"))
                    .await;
            }
            Registered::Refused(why) => {
                self.audit_factor(
                    me,
                    AuditKind::FactorFailed,
                    format!("reason=passkey {} registration", why.as_str()),
                )
                .await;
            }
            Registered::Duplicate | Registered::TooMany => {}
        }
        Ok(outcome)
    }

    /// Renames one of the user's passkeys; `false` when there is none with this id.
    pub async fn rename_passkey(
        &self,
        me: &Authenticated,
        id: &str,
        name: &str,
    ) -> Result<bool, MfaError> {
        let name = crate::services::passkeys::clean_name(name);
        let done = self.store.rename_passkey(&me.user.id, id, &name).await?;
        if done {
            self.audit_factor(
                me,
                AuditKind::FactorUpdated,
                format!("passkey {id} renamed"),
            )
            .await;
        }
        Ok(done)
    }

    /// Removes one of the user's passkeys, after re-authentication, unless it is the last way
    /// to sign in; audited.
    pub async fn remove_passkey(
        &self,
        me: &Authenticated,
        id: &str,
        current_password: &str,
    ) -> Result<WayInRemoval, MfaError> {
        if let Some(no) = self.recently_proven(me, current_password).await? {
            return Ok(no);
        }
        let keep_a_factor = self.settings.mfa.policy().required_for(&me.user);
        Ok(
            match self
                .store
                .remove_passkey_keeping_a_way_in(&me.user.id, id, keep_a_factor)
                .await?
            {
                KeptWayIn::Done => {
                    self.audit_factor(me, AuditKind::FactorRemoved, format!("passkey {id}"))
                        .await;
                    WayInRemoval::Removed
                }
                KeptWayIn::LastWayIn => WayInRemoval::LastWayIn,
                KeptWayIn::LastFactor => WayInRemoval::Required,
                KeptWayIn::NotFound => WayInRemoval::NotFound,
            },
        )
    }

    /// Removes the password of an account that has a passkey (a passkey-only account), after
    /// the current password; audited. A password reset link sets one again.
    pub async fn remove_password(
        &self,
        me: &Authenticated,
        current_password: &str,
    ) -> Result<WayInRemoval, MfaError> {
        if !me.user.has_password {
            return Ok(WayInRemoval::NotFound);
        }
        if current_password.is_empty() {
            return Ok(WayInRemoval::WrongPassword);
        }
        if let Some(no) = self.recently_proven(me, current_password).await? {
            return Ok(no);
        }
        let now = self.clock.time();
        Ok(
            match self
                .store
                .remove_password_keeping_a_way_in(&me.user.id, now)
                .await?
            {
                KeptWayIn::Done => {
                    self.audit_factor(me, AuditKind::PasswordRemoved, String::new())
                        .await;
                    WayInRemoval::Removed
                }
                KeptWayIn::LastWayIn | KeptWayIn::LastFactor => WayInRemoval::LastWayIn,
                KeptWayIn::NotFound => WayInRemoval::NotFound,
            },
        )
    }
}
