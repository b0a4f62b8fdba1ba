//! Passkeys (W3C Web Authentication Level 2, through `webauthn-rs`): the ceremonies and their
//! checks, below the use cases that sign in with them (`services::authn`) and manage them
//! (`services::mfa`).
//!
//! - **Relying party.** The RP ID is the issuer's host and the only origin accepted is the
//!   issuer's origin (WebAuthn §5.1.3/§7.1 step 9 and §7.2 step 13, checked by `webauthn-rs`).
//!   An issuer on an IP address has no RP ID (§5.1.3: a valid domain string): passkeys are
//!   then unavailable, and the pages do not offer them.
//! - **Ceremonies** are kept in the database (`webauthn_ceremonies`) for
//!   [`CEREMONY_TTL_SECS`], found by the hash of a cookie given to the browser that began
//!   them, bound to what began them (the session for a registration, the pending sign-in or
//!   session for a second factor), and taken once by one DELETE: any instance finishes a
//!   ceremony another began, and an answer cannot be replayed.
//! - **User verification is required** in every ceremony (§6.1 flag UV; `webauthn-rs` refuses
//!   an assertion without it), so a passkey is two factors on its own: the device and the
//!   PIN or biometric that unlocks it.
//! - **Registration asks for a discoverable credential** (`residentKey: required`, §5.4.6) so
//!   that the passkey can later sign in alone, with no email typed first.
//! - **Signature counters** rise with each use (§7.2 step 21), checked by `webauthn-rs` against
//!   the stored value and raised by one conditional UPDATE.
//!
//! No attestation is asked for (`attestation: none`): Castellan does not restrict which
//! authenticators may be used, so `amr` says `hwk` for a device-bound credential and `swk` for
//! a synced one (backup eligible, §6.1 flag BE), as RFC 8176 §2 defines them.

use std::sync::Arc;

use base64::Engine;
use base64::engine::general_purpose::URL_SAFE_NO_PAD;
use webauthn_rs::prelude::{
    CreationChallengeResponse, CredentialID, DiscoverableAuthentication, DiscoverableKey, Passkey,
    PasskeyAuthentication, PasskeyRegistration, PublicKeyCredential, RegisterPublicKeyCredential,
    RequestChallengeResponse, Url, Uuid, Webauthn, WebauthnBuilder,
};

use webauthn_rs_proto::ResidentKeyRequirement;

use crate::crypto::token;
use crate::domain::acr::{AMR_HWK, AMR_SWK};
use crate::domain::{UnixTime, User, UserId};
use crate::store::passkeys::{NewCeremony, PasskeyRecord};
use crate::store::{Store, StoreError};

/// How long a ceremony waits for the browser's answer (WebAuthn §5.4.7's recommended range
/// for a ceremony with user verification is 300 s to 600 s).
pub const CEREMONY_TTL_SECS: i64 = 300;
/// The most passkeys one account may register.
pub const MAX_PASSKEYS: u64 = 20;
/// The longest name a passkey may be given (characters).
pub const MAX_NAME_CHARS: usize = 64;
/// The largest answer from the browser that is parsed (bytes of JSON).
pub const MAX_CREDENTIAL_BYTES: usize = 16 * 1024;
/// The prefix of the ceremony cookie's value.
pub const CEREMONY_PREFIX: &str = "cas_wa_";

const PURPOSE_REGISTER: &str = "register";
const PURPOSE_SIGN_IN: &str = "sign_in";
const PURPOSE_SECOND_FACTOR: &str = "second_factor";

#[derive(Debug, thiserror::Error)]
pub enum PasskeyError {
    #[error(transparent)]
    Store(#[from] StoreError),
    #[error("a stored passkey or ceremony cannot be read: {0}")]
    Stored(#[from] serde_json::Error),
    #[error("webauthn: {0}")]
    Webauthn(webauthn_rs::prelude::WebauthnError),
}

/// A ceremony begun: the options for `navigator.credentials.create()`/`get()` (JSON) and the
/// value of the cookie that binds the ceremony to this browser (a secret, stored only hashed).
pub struct Begun {
    pub options: serde_json::Value,
    pub ceremony: String,
}

/// What the second factor of a sign-in is bound to: the pending sign-in (the right password
/// waiting), or a session stepping up.
#[derive(Debug, Clone)]
pub enum Binding {
    Pending(String),
    Session(String),
}

impl Binding {
    fn stored(&self) -> String {
        match self {
            Binding::Pending(hash) => format!("pending:{hash}"),
            Binding::Session(sid) => format!("session:{sid}"),
        }
    }
}

/// A verified assertion.
#[derive(Debug, Clone)]
pub struct Verified {
    pub user_id: UserId,
    /// `hwk` or `swk` (RFC 8176 §2).
    pub method: &'static str,
    /// The stored id of the passkey used.
    pub passkey_id: String,
}

impl Verified {
    /// The audit detail of the passkey's use: its kind and stored id.
    pub fn audit_detail(&self) -> String {
        format!("passkey {} {}", self.method, self.passkey_id)
    }
}

/// Why an answer from the browser was not accepted (the audit log's reason; the user sees one
/// message).
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Refusal {
    /// No ceremony behind the cookie: never begun here, used, or expired.
    NoCeremony,
    /// The ceremony was begun by another session or pending sign-in.
    OtherSession,
    /// The answer is not a credential (malformed JSON, too large).
    Malformed,
    /// The credential is not registered, or is another user's.
    UnknownCredential,
    /// The signature, challenge, origin, RP ID or flags did not verify.
    Invalid,
    /// The signature counter did not rise: a cloned authenticator, or a replay.
    Counter,
}

impl Refusal {
    pub fn as_str(self) -> &'static str {
        match self {
            Refusal::NoCeremony => "no_ceremony",
            Refusal::OtherSession => "other_session",
            Refusal::Malformed => "malformed",
            Refusal::UnknownCredential => "unknown_credential",
            Refusal::Invalid => "invalid_assertion",
            Refusal::Counter => "counter",
        }
    }
}

/// What a registration came to.
#[derive(Debug, Clone, PartialEq, Eq)]
pub enum Registered {
    /// Stored under this id.
    Added {
        id: String,
    },
    Refused(Refusal),
    /// The credential is registered already (to this account or another).
    Duplicate,
    /// The account has [`MAX_PASSKEYS`] already.
    TooMany,
}

/// The relying party and the ceremonies.
#[derive(Clone)]
pub struct Passkeys {
    webauthn: Option<Arc<Webauthn>>,
    store: Store,
}

impl std::fmt::Debug for Passkeys {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.debug_struct("Passkeys")
            .field("available", &self.webauthn.is_some())
            .finish_non_exhaustive()
    }
}

/// The relying party of an issuer: its host as the RP ID, its origin as the one origin.
/// `None` for an issuer whose host is not a domain (an IP address).
fn relying_party(issuer: &str) -> Option<Webauthn> {
    let url = Url::parse(issuer).ok()?;
    let host = url.domain()?.to_owned();
    let origin = Url::parse(&url.origin().ascii_serialization()).ok()?;
    WebauthnBuilder::new(&host, &origin)
        .ok()?
        .rp_name("Castellan")
        .build()
        .ok()
}

/// The WebAuthn user handle of a user (§5.4.3: an opaque id, no personal data): the bytes of
/// the user's UUID.
fn user_handle(user: &UserId) -> Option<Uuid> {
    Uuid::parse_str(user.as_str()).ok()
}

fn parse_credential<T: serde::de::DeserializeOwned>(json: &str) -> Option<T> {
    if json.len() > MAX_CREDENTIAL_BYTES {
        return None;
    }
    serde_json::from_str(json).ok()
}

impl Passkeys {
    pub fn new(issuer: &str, store: Store) -> Self {
        let webauthn = relying_party(issuer).map(Arc::new);
        if webauthn.is_none() {
            tracing::info!(
                event = "passkeys_unavailable",
                "passkeys are off: the issuer's host is not a domain name (WebAuthn needs one as the relying party id)"
            );
        }
        Self { webauthn, store }
    }

    /// Whether passkeys can be used with this issuer.
    pub fn available(&self) -> bool {
        self.webauthn.is_some()
    }

    fn rp(&self) -> Option<&Webauthn> {
        self.webauthn.as_deref()
    }

    pub async fn list(&self, user: &UserId) -> Result<Vec<PasskeyRecord>, PasskeyError> {
        Ok(self.store.passkeys_of(user).await?)
    }

    /// Keeps a ceremony's state in the database and gives the browser its options and the
    /// cookie that finds it again.
    async fn keep(
        &self,
        purpose: &'static str,
        user_id: Option<UserId>,
        binding: Option<String>,
        state: &impl serde::Serialize,
        options: &impl serde::Serialize,
        now: UnixTime,
    ) -> Result<Begun, PasskeyError> {
        let value = token::generate(CEREMONY_PREFIX);
        self.store
            .insert_ceremony(
                NewCeremony {
                    id_hash: token::hash(&value),
                    purpose,
                    user_id,
                    binding,
                    state: serde_json::to_string(state)?,
                    expires_at: now.plus(CEREMONY_TTL_SECS),
                },
                now,
            )
            .await?;
        Ok(Begun {
            options: serde_json::to_value(options)?,
            ceremony: value,
        })
    }

    /// Takes the ceremony behind a cookie when it has this purpose and binding; the ceremony
    /// is used up only when it matches (someone else's cookie cannot spend it).
    async fn take(
        &self,
        cookie: Option<&str>,
        purpose: &str,
        binding: Option<&str>,
        now: UnixTime,
    ) -> Result<Result<crate::store::passkeys::CeremonyRecord, Refusal>, PasskeyError> {
        let Some(cookie) = cookie.filter(|c| c.starts_with(CEREMONY_PREFIX)) else {
            return Ok(Err(Refusal::NoCeremony));
        };
        let hash = token::hash(cookie);
        let Some(c) = self.store.ceremony(&hash, now).await? else {
            return Ok(Err(Refusal::NoCeremony));
        };
        if c.purpose != purpose {
            return Ok(Err(Refusal::NoCeremony));
        }
        if c.binding.as_deref() != binding {
            return Ok(Err(Refusal::OtherSession));
        }
        if !self.store.take_ceremony(&hash, now).await? {
            return Ok(Err(Refusal::NoCeremony));
        }
        Ok(Ok(c))
    }

    /// Begins registering a passkey for a signed-in user (WebAuthn §7.1): options excluding
    /// the user's registered credentials (§5.4.3 `excludeCredentials`), asking for a
    /// discoverable credential with user verification. `None` when passkeys are unavailable.
    pub async fn begin_registration(
        &self,
        user: &User,
        sid: &str,
        now: UnixTime,
    ) -> Result<Option<Begun>, PasskeyError> {
        let (Some(rp), Some(handle)) = (self.rp(), user_handle(&user.id)) else {
            return Ok(None);
        };
        // §5.4.3 `excludeCredentials`: the ids are in their own column; no credential is parsed.
        let exclude = self
            .store
            .passkeys_of(&user.id)
            .await?
            .iter()
            .filter_map(|p| URL_SAFE_NO_PAD.decode(&p.credential_id).ok())
            .map(CredentialID::from)
            .collect();
        let display = user.name.as_deref().unwrap_or(&user.email);
        let (mut ccr, state): (CreationChallengeResponse, PasskeyRegistration) = rp
            .start_passkey_registration(handle, &user.email, display, Some(exclude))
            .map_err(PasskeyError::Webauthn)?;
        // §5.4.6: a discoverable credential, so that the passkey can sign in on its own.
        if let Some(sel) = ccr.public_key.authenticator_selection.as_mut() {
            sel.require_resident_key = true;
            sel.resident_key = Some(ResidentKeyRequirement::Required);
        }
        let begun = self
            .keep(
                PURPOSE_REGISTER,
                Some(user.id.clone()),
                Some(sid.to_owned()),
                &state,
                &ccr,
                now,
            )
            .await?;
        Ok(Some(begun))
    }

    /// Finishes a registration (WebAuthn §7.1): the ceremony must be this session's; the
    /// browser's answer is verified (challenge, origin, RP ID hash, flags UP and UV, the
    /// public key); the credential must be new to every account.
    pub async fn finish_registration(
        &self,
        user: &User,
        sid: &str,
        cookie: Option<&str>,
        name: &str,
        credential: &str,
        now: UnixTime,
    ) -> Result<Registered, PasskeyError> {
        let Some(rp) = self.rp() else {
            return Ok(Registered::Refused(Refusal::NoCeremony));
        };
        let c = match self.take(cookie, PURPOSE_REGISTER, Some(sid), now).await? {
            Ok(c) => c,
            Err(r) => return Ok(Registered::Refused(r)),
        };
        if c.user_id.as_ref() != Some(&user.id) {
            return Ok(Registered::Refused(Refusal::OtherSession));
        }
        let Some(reg) = parse_credential::<RegisterPublicKeyCredential>(credential) else {
            return Ok(Registered::Refused(Refusal::Malformed));
        };
        let state: PasskeyRegistration = serde_json::from_str(&c.state)?;
        let key = match rp.finish_passkey_registration(&reg, &state) {
            Ok(k) => k,
            Err(e) => {
                tracing::info!(error = %e, "a passkey registration did not verify");
                return Ok(Registered::Refused(Refusal::Invalid));
            }
        };
        if self.store.count_passkeys(&user.id).await? >= MAX_PASSKEYS {
            return Ok(Registered::TooMany);
        }
        let id = Uuid::new_v4().to_string();
        let record = PasskeyRecord {
            id: id.clone(),
            user_id: user.id.clone(),
            credential_id: URL_SAFE_NO_PAD.encode(key.cred_id().as_ref()),
            name: clean_name(name),
            data: serde_json::to_string(&key)?,
            sign_count: 0,
            created_at: now,
            last_used_at: None,
        };
        match self.store.insert_passkey(record).await {
            Ok(()) => Ok(Registered::Added { id }),
            Err(StoreError::Conflict) => Ok(Registered::Duplicate),
            Err(e) => Err(e.into()),
        }
    }

    /// Begins a sign-in with a passkey alone (a discoverable credential, WebAuthn §7.2 with an
    /// empty `allowCredentials`): the authenticator picks the account. `None` when passkeys
    /// are unavailable.
    pub async fn begin_sign_in(&self, now: UnixTime) -> Result<Option<Begun>, PasskeyError> {
        let Some(rp) = self.rp() else {
            return Ok(None);
        };
        let (rcr, state): (RequestChallengeResponse, DiscoverableAuthentication) = rp
            .start_discoverable_authentication()
            .map_err(PasskeyError::Webauthn)?;
        let begun = self
            .keep(PURPOSE_SIGN_IN, None, None, &state, &rcr, now)
            .await?;
        Ok(Some(begun))
    }

    /// Finishes a sign-in with a passkey alone: the credential named by the answer must be
    /// registered to the user its user handle names (§7.2 step 6), and the assertion must
    /// verify against it.
    pub async fn finish_sign_in(
        &self,
        cookie: Option<&str>,
        credential: &str,
        now: UnixTime,
    ) -> Result<Result<Verified, Refusal>, PasskeyError> {
        let Some(rp) = self.rp() else {
            return Ok(Err(Refusal::NoCeremony));
        };
        let c = match self.take(cookie, PURPOSE_SIGN_IN, None, now).await? {
            Ok(c) => c,
            Err(r) => return Ok(Err(r)),
        };
        let Some(answer) = parse_credential::<PublicKeyCredential>(credential) else {
            return Ok(Err(Refusal::Malformed));
        };
        let Ok((handle, cred_id)) = rp.identify_discoverable_authentication(&answer) else {
            return Ok(Err(Refusal::UnknownCredential));
        };
        let Some(record) = self
            .store
            .passkey_by_credential(&URL_SAFE_NO_PAD.encode(cred_id))
            .await?
        else {
            return Ok(Err(Refusal::UnknownCredential));
        };
        if user_handle(&record.user_id) != Some(handle) {
            return Ok(Err(Refusal::UnknownCredential));
        }
        let mut key: Passkey = serde_json::from_str(&record.data)?;
        let state: DiscoverableAuthentication = serde_json::from_str(&c.state)?;
        let result = match rp.finish_discoverable_authentication(
            &answer,
            state,
            &[DiscoverableKey::from(&key)],
        ) {
            Ok(r) => r,
            Err(e) => {
                tracing::info!(error = %e, "a passkey assertion did not verify");
                return Ok(Err(Refusal::Invalid));
            }
        };
        self.record_use(&mut key, &record, &result, now).await
    }

    /// Begins a passkey as the second factor of a known user (WebAuthn §7.2 with the user's
    /// credentials in `allowCredentials`). `None` when passkeys are unavailable or the user
    /// has none.
    pub async fn begin_second_factor(
        &self,
        user: &UserId,
        binding: &Binding,
        now: UnixTime,
    ) -> Result<Option<Begun>, PasskeyError> {
        let Some(rp) = self.rp() else {
            return Ok(None);
        };
        let records = self.store.passkeys_of(user).await?;
        if records.is_empty() {
            return Ok(None);
        }
        let mut keys = Vec::with_capacity(records.len());
        for r in &records {
            keys.push(serde_json::from_str::<Passkey>(&r.data)?);
        }
        let (rcr, state): (RequestChallengeResponse, PasskeyAuthentication) = rp
            .start_passkey_authentication(&keys)
            .map_err(PasskeyError::Webauthn)?;
        let begun = self
            .keep(
                PURPOSE_SECOND_FACTOR,
                Some(user.clone()),
                Some(binding.stored()),
                &state,
                &rcr,
                now,
            )
            .await?;
        Ok(Some(begun))
    }

    /// Finishes a passkey as the second factor: the ceremony must be bound to `binding` and
    /// begun for `user`; the credential must be one of the user's.
    pub async fn finish_second_factor(
        &self,
        user: &UserId,
        binding: &Binding,
        cookie: Option<&str>,
        credential: &str,
        now: UnixTime,
    ) -> Result<Result<Verified, Refusal>, PasskeyError> {
        let Some(rp) = self.rp() else {
            return Ok(Err(Refusal::NoCeremony));
        };
        let bound = binding.stored();
        let c = match self
            .take(cookie, PURPOSE_SECOND_FACTOR, Some(&bound), now)
            .await?
        {
            Ok(c) => c,
            Err(r) => return Ok(Err(r)),
        };
        if c.user_id.as_ref() != Some(user) {
            return Ok(Err(Refusal::OtherSession));
        }
        let Some(answer) = parse_credential::<PublicKeyCredential>(credential) else {
            return Ok(Err(Refusal::Malformed));
        };
        let Some(record) = self
            .store
            .passkey_by_credential(&URL_SAFE_NO_PAD.encode(answer.get_credential_id()))
            .await?
            .filter(|r| &r.user_id == user)
        else {
            return Ok(Err(Refusal::UnknownCredential));
        };
        let mut key: Passkey = serde_json::from_str(&record.data)?;
        let state: PasskeyAuthentication = serde_json::from_str(&c.state)?;
        let result = match rp.finish_passkey_authentication(&answer, &state) {
            Ok(r) => r,
            Err(e) => {
                tracing::info!(error = %e, "a passkey assertion did not verify");
                return Ok(Err(Refusal::Invalid));
            }
        };
        self.record_use(&mut key, &record, &result, now).await
    }

    async fn record_use(
        &self,
        key: &mut Passkey,
        record: &PasskeyRecord,
        result: &webauthn_rs::prelude::AuthenticationResult,
        now: UnixTime,
    ) -> Result<Result<Verified, Refusal>, PasskeyError> {
        if result.cred_id() != key.cred_id() {
            return Ok(Err(Refusal::UnknownCredential));
        }
        key.update_credential(result);
        let count = i64::from(result.counter());
        if !self
            .store
            .record_passkey_use(&record.id, serde_json::to_string(&*key)?, count, now)
            .await?
        {
            return Ok(Err(Refusal::Counter));
        }
        Ok(Ok(Verified {
            user_id: record.user_id.clone(),
            method: if result.backup_eligible() {
                AMR_SWK
            } else {
                AMR_HWK
            },
            passkey_id: record.id.clone(),
        }))
    }
}

/// A passkey's name as stored: trimmed, control characters dropped, at most
/// [`MAX_NAME_CHARS`] characters; "Passkey" when nothing is left.
pub fn clean_name(name: &str) -> String {
    let cleaned: String = name
        .chars()
        .filter(|c| !c.is_control())
        .take(MAX_NAME_CHARS)
        .collect();
    let cleaned = cleaned.trim();
    if cleaned.is_empty() {
        "Passkey".to_owned()
    } else {
        cleaned.to_owned()
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn an_issuer_on_an_ip_address_has_no_relying_party() {
        assert!(relying_party("http://127.0.0.1:8080").is_none());
        assert!(relying_party("https://id.example.com").is_some());
        assert!(relying_party("http://localhost:8080").is_some());
        assert!(relying_party("not a url").is_none());
    }

    #[test]
    fn names_are_cleaned_and_bounded() {
        assert_eq!(clean_name("  Laptop  "), "Laptop");
        assert_eq!(clean_name("\u{7}\n"), "Passkey");
        assert_eq!(clean_name(&"x".repeat(500)).chars().count(), MAX_NAME_CHARS);
    }
}
