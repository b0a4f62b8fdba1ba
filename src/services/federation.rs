//! Sign-in through upstream identity providers (issue 18): any OpenID Provider by discovery,
//! Google as a preset of it, and GitHub (OAuth 2.0 and its REST API).
//!
//! One flow, whatever the kind:
//!
//! 1. [`Federation::begin`]: a fresh `state` (256 bits), `nonce` and PKCE verifier (RFC 7636
//!    §4.1) kept in `upstream_flows` for [`FLOW_TTL_SECS`], found by the hash of `state` and
//!    bound to the browser by the hash of an HttpOnly cookie (RFC 9700 §4.7.1: `state` bound to
//!    the user agent). The browser is sent to the provider.
//! 2. [`Federation::callback`]: the flow is taken by one DELETE (a replayed or raced `state`
//!    finds nothing), must belong to this callback's provider (each provider has its own
//!    redirect URI: RFC 9700 §4.4.2.2's per-issuer redirect URIs) and to this browser; the
//!    provider's `iss` is checked when it sends one, and required when its metadata says it
//!    always does (RFC 9207 §2.4), before anything else of the answer is read, errors
//!    included; the code is exchanged with the PKCE verifier; the ID token is checked (see
//!    [`oidc`]), or GitHub's API is asked (see [`github`]).
//! 3. The identity's account ([`Federation::account_for`]): a linked identity signs in to its
//!    account. A new one whose email is an existing account's is linked silently only when the
//!    provider is trusted for email (`--trust-email`), says it verified the email, and the
//!    account's email is verified too; otherwise the person proves the account first (its
//!    password, then its second factor where enrolled: [`Federation::prove_account`]). An
//!    email nobody has makes a new account when the provider allows it (just in time), with
//!    the provider's name, and the email marked verified only when the provider says so.
//! 4. The sign-in itself is `Authn`'s, as after a password: the account's second factor (a
//!    provider is never trusted for it), the role policy's enrolment, a new session recording
//!    the provider, `amr` `fed` (`docs/decisions/2026-12-03-upstream-sign-in.md`).
//!
//! Tokens from the provider live only for the length of the callback: never stored, never
//! logged. Its answers and our calls are bounded and only go to https (or loopback) without
//! following redirects ([`backchannel`]).

pub mod backchannel;
pub mod github;
pub mod oidc;

use std::collections::HashMap;
use std::net::IpAddr;
use std::sync::{Arc, Mutex};
use std::time::{Duration, Instant};

use base64::Engine;
use base64::engine::general_purpose::STANDARD;

use self::backchannel::BackChannel;
use crate::clock::SharedClock;
use crate::config::Settings;
use crate::crypto::seal::Kek;
use crate::crypto::token;
use crate::domain::upstream::{
    IdentityLink, LinkedIdentity, MAX_PROFILE_EMAIL, MAX_PROFILE_NAME, MAX_SUBJECT, Upstream,
    UpstreamKind, UpstreamProfile, callback_uri, secret_aad,
};
use crate::domain::{AuditEntry, AuditKind, Email, NewUser, Role, UnixTime, UserId};
use crate::services::authn::{Authn, SignIn, SignInOutcome, UpstreamSignIn};
use crate::services::ratelimit::{Action, RateLimiter};
use crate::store::passkeys::KeptWayIn;
use crate::store::upstreams::{LinkRequest, PLAIN_PREFIX, SEALED_PREFIX, UpstreamFlow};
use crate::store::{Store, StoreError};

/// How long a flow waits for its callback (the person signs in at the provider meanwhile).
pub const FLOW_TTL_SECS: i64 = 600;
/// How long an identity waits for its account to be proven.
pub const LINK_TTL_SECS: i64 = 600;

/// Why a sign-in through a provider ended without one. Each has a message for the page
/// ([`Failure::message`]) and a reason for the audit log ([`Failure::reason`]); the text some
/// carry is for the log only (it never holds a token or a secret).
#[derive(Debug, Clone, PartialEq, Eq)]
pub enum Failure {
    /// No such provider (deleted, or a made-up id).
    UnknownProvider,
    /// The person declined at the provider (`access_denied`, RFC 6749 §4.1.2.1).
    Denied,
    /// The provider answered with an error.
    ProviderError(String),
    /// No flow for this `state` (expired, used, never made) or not this browser's.
    State(String),
    /// The answer is from another issuer than the provider's (RFC 9207; Discovery §4.3).
    Mixup(String),
    /// The provider's answer did not check out (token response, ID token, nonce, signature).
    BadAnswer(String),
    /// The ID token is signed by a key not in the kept key set (fetched again, once).
    UnknownKey,
    /// The provider could not be reached, or did not answer in time.
    Unreachable(String),
    /// The provider gave no usable email (GitHub: no verified primary email), and one is
    /// needed to make an account.
    NoEmail,
    /// No account has this identity or its email, and the provider does not make accounts.
    NoAccount,
    /// This identity is linked to another account.
    IdentityTaken,
    /// The account has an identity at this provider already.
    ProviderTaken,
    /// A link begun from the account page came back to a browser no longer signed in as that
    /// account.
    SessionChanged,
    /// The account is disabled.
    Disabled,
    /// Too many sign-ins begun from this address; retry after this many seconds.
    RateLimited(u64),
    /// Linking from the account page needs a recent sign-in (a stolen, old session must not
    /// be able to add a way in).
    Stale,
    /// Our side failed (logged).
    Unavailable,
}

impl Failure {
    /// What the page says.
    pub fn message(&self) -> &'static str {
        match self {
            Self::UnknownProvider => "There is no such way to sign in.",
            Self::Denied => "You did not allow the sign-in at the provider.",
            Self::ProviderError(_) => "The provider could not sign you in.",
            Self::State(_) => "This sign-in has expired or was already used. Please start again.",
            Self::Mixup(_) | Self::BadAnswer(_) | Self::UnknownKey => {
                "The provider's answer could not be accepted."
            }
            Self::Unreachable(_) => "The provider did not answer. Please try again in a moment.",
            Self::NoEmail => {
                "The provider did not share a verified email address, which an account needs."
            }
            Self::NoAccount => {
                "There is no account for this sign-in. Create an account first, then link the provider from your account page."
            }
            Self::IdentityTaken => "This sign-in is linked to another account already.",
            Self::ProviderTaken => {
                "Your account is linked to another sign-in at this provider already. Unlink it first."
            }
            Self::SessionChanged => "You are no longer signed in as the account you were linking.",
            Self::Disabled => "This account is disabled.",
            Self::RateLimited(_) => {
                "Too many sign-ins were begun from your address. Please wait a moment."
            }
            Self::Stale => {
                "For your safety, sign in again before you link a provider to your account."
            }
            Self::Unavailable => "Something went wrong on our side. Please try again in a moment.",
        }
    }

    /// The audit log's reason.
    pub fn reason(&self) -> &'static str {
        match self {
            Self::UnknownProvider => "unknown_provider",
            Self::Denied => "denied",
            Self::ProviderError(_) => "provider_error",
            Self::State(_) => "state",
            Self::Mixup(_) => "issuer",
            Self::BadAnswer(_) => "bad_answer",
            Self::UnknownKey => "unknown_key",
            Self::Unreachable(_) => "unreachable",
            Self::NoEmail => "no_email",
            Self::NoAccount => "no_account",
            Self::IdentityTaken => "identity_taken",
            Self::ProviderTaken => "provider_taken",
            Self::SessionChanged => "session_changed",
            Self::Disabled => "disabled",
            Self::RateLimited(_) => "rate_limited",
            Self::Stale => "stale_session",
            Self::Unavailable => "unavailable",
        }
    }

    fn detail(&self) -> &str {
        match self {
            Self::ProviderError(d)
            | Self::State(d)
            | Self::Mixup(d)
            | Self::BadAnswer(d)
            | Self::Unreachable(d) => d,
            _ => "",
        }
    }
}

impl From<backchannel::BackChannelError> for Failure {
    /// A call that got no answer: unreachable (timeout, refused); any other a bad answer.
    fn from(e: backchannel::BackChannelError) -> Self {
        use backchannel::BackChannelError as E;
        match e {
            E::Timeout | E::Unreachable(_) => Failure::Unreachable(e.to_string()),
            other => Failure::BadAnswer(other.to_string()),
        }
    }
}

/// A token request's failure (RFC 6749 §5.2 for an error answer). Where an answer could not be
/// read, never what it held: a token response's body holds the tokens. `unreadable_is_refusal`:
/// GitHub answers a refused code with HTTP 200 and an `error` member, which is not a token
/// response.
pub(crate) fn token_failure<T>(
    e: openidconnect::RequestTokenError<
        backchannel::BackChannelError,
        openidconnect::StandardErrorResponse<T>,
    >,
    unreadable_is_refusal: bool,
) -> Failure
where
    T: openidconnect::ErrorResponseType + std::fmt::Display,
{
    use openidconnect::RequestTokenError as E;
    match e {
        E::ServerResponse(r) => Failure::ProviderError(format!("token endpoint: {}", r.error())),
        E::Request(b) => b.into(),
        E::Parse(..) if unreadable_is_refusal => {
            Failure::ProviderError("token endpoint: not a token response".into())
        }
        E::Parse(e, _) => Failure::BadAnswer(format!("token response: unreadable at {}", e.path())),
        E::Other(_) => Failure::BadAnswer("token response: unreadable".into()),
    }
}

impl From<StoreError> for Failure {
    fn from(e: StoreError) -> Self {
        tracing::error!(error = %e, "an upstream sign-in cannot reach the database");
        Failure::Unavailable
    }
}

/// A claim from a provider, refused (not cut) when longer than we keep; an email that is not
/// one is dropped.
pub(crate) fn bounded_profile(mut p: UpstreamProfile) -> Result<UpstreamProfile, Failure> {
    if p.subject.is_empty() || p.subject.len() > MAX_SUBJECT {
        return Err(Failure::BadAnswer(
            "the subject is empty or too long".into(),
        ));
    }
    if p.email
        .as_deref()
        .is_some_and(|e| e.len() > MAX_PROFILE_EMAIL || Email::parse(e).is_err())
    {
        p.email = None;
        p.email_verified = false;
    }
    p.name = p
        .name
        .map(|n| {
            n.chars()
                .filter(|c| !c.is_control())
                .take(MAX_PROFILE_NAME)
                .collect::<String>()
        })
        .map(|n| n.trim().to_owned())
        .filter(|n| !n.is_empty());
    Ok(p)
}

/// A provider as the login page offers it.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Provider {
    pub id: String,
    pub name: String,
}

/// What to begin: a sign-in (or, with `link_for`, linking the signed-in account).
#[derive(Debug, Clone)]
pub struct Begin {
    pub upstream_id: String,
    /// Where the browser goes after (checked by the page: `safe_return_to`).
    pub return_to: String,
    /// The signed-in account to link, and when its session signed in.
    pub link_for: Option<(UserId, UnixTime)>,
    pub ip: Option<IpAddr>,
}

/// How recent a sign-in must be to link a provider from the account page.
pub const LINK_FRESH_SECS: i64 = 600;

/// What beginning came to.
#[derive(Debug)]
pub enum Begun {
    /// Send the browser to `location`, with the binding cookie `binding`.
    Redirect {
        location: String,
        binding: String,
    },
    Failed(Failure),
}

/// The provider's answer at our callback.
#[derive(Default)]
pub struct Callback {
    pub upstream_id: String,
    pub code: Option<String>,
    pub state: Option<String>,
    pub iss: Option<String>,
    pub error: Option<String>,
    /// The browser's binding cookie.
    pub binding: Option<String>,
    /// The browser's session cookie (a link from the account page; ended when a new session
    /// starts).
    pub session: Option<String>,
    pub ip: Option<IpAddr>,
    pub user_agent: Option<String>,
}

/// What a callback came to.
pub enum CallbackOutcome {
    /// As a sign-in with a password would have come to; then on to `return_to`.
    SignIn {
        outcome: SignInOutcome,
        return_to: String,
    },
    /// Linked to the signed-in account (a link begun on the account page).
    Linked,
    /// The identity's email belongs to an account that must be proven first: the page asks
    /// for its password; `cookie` finds the waiting identity.
    ProveAccount {
        cookie: String,
    },
    Failed(Failure),
}

/// The proof page's form.
pub struct ProveAccount {
    pub cookie: Option<String>,
    pub email: String,
    pub password: String,
    pub ip: Option<IpAddr>,
    pub user_agent: Option<String>,
    pub previous_session: Option<String>,
}

/// What the proof page shows: the account's email and the provider's name.
#[derive(Debug, Clone)]
pub struct LinkPrompt {
    pub email: String,
    pub provider: String,
    pub return_to: String,
}

/// The account page's list: the linked identities (with their provider's name) and the
/// providers that could be linked.
#[derive(Debug, Clone, Default)]
pub struct AccountIdentities {
    pub linked: Vec<(LinkedIdentity, String)>,
    pub linkable: Vec<Provider>,
}

/// What unlinking came to.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Unlinked {
    Done,
    /// It is the account's last way to sign in.
    LastWayIn,
    NotFound,
    Unavailable,
}

struct Cached {
    issuer: String,
    fetched: Instant,
    meta: Arc<oidc::Metadata>,
}

/// Sign-in through upstream providers.
#[derive(Clone)]
pub struct Federation {
    store: Store,
    settings: Arc<Settings>,
    clock: SharedClock,
    kek: Option<Arc<Kek>>,
    authn: Authn,
    limiter: Arc<RateLimiter>,
    http: BackChannel,
    /// Discovery documents and key sets by provider id: the provider's, not our state, so an
    /// instance may keep its own copy for `upstream.metadata_ttl_secs`.
    metadata: Arc<Mutex<HashMap<String, Cached>>>,
}

impl std::fmt::Debug for Federation {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.debug_struct("Federation").finish_non_exhaustive()
    }
}

impl Federation {
    pub fn new(
        store: Store,
        settings: Arc<Settings>,
        clock: SharedClock,
        kek: Option<Arc<Kek>>,
        authn: Authn,
        limiter: Arc<RateLimiter>,
    ) -> anyhow::Result<Self> {
        let http = BackChannel::new(Duration::from_secs(settings.upstream.timeout_secs))?;
        Ok(Self {
            store,
            settings,
            clock,
            kek,
            authn,
            limiter,
            http,
            metadata: Arc::default(),
        })
    }

    /// The providers the login and registration pages offer, by id (none when the database
    /// cannot say: logged, and the pages still offer the password).
    pub async fn providers(&self) -> Vec<Provider> {
        match self.store.upstreams().await {
            Ok(all) => all
                .into_iter()
                .map(|u| Provider {
                    id: u.id,
                    name: u.name,
                })
                .collect(),
            Err(e) => {
                tracing::error!(error = %e, "cannot list the upstream providers");
                Vec::new()
            }
        }
    }

    /// Begins a sign-in (or a link) at a provider.
    pub async fn begin(&self, b: Begin) -> Begun {
        match self.try_begin(b).await {
            Ok(b) => b,
            Err(f) => {
                if matches!(
                    f,
                    Failure::Unreachable(_) | Failure::BadAnswer(_) | Failure::Mixup(_)
                ) {
                    tracing::warn!(
                        reason = f.reason(),
                        detail = f.detail(),
                        "cannot begin an upstream sign-in"
                    );
                }
                Begun::Failed(f)
            }
        }
    }

    async fn try_begin(&self, b: Begin) -> Result<Begun, Failure> {
        let now = self.clock.time();
        if let Some(ip) = b.ip
            && let Err(wait) = self
                .limiter
                .take(Action::UpstreamStart, ip, self.clock.now_ms())
                .await
        {
            return Err(Failure::RateLimited(wait));
        }
        if b.link_for
            .as_ref()
            .is_some_and(|(_, signed_in)| now.since(*signed_in) > LINK_FRESH_SECS)
        {
            return Err(Failure::Stale);
        }
        let upstream = self
            .store
            .upstream(&b.upstream_id)
            .await?
            .ok_or(Failure::UnknownProvider)?;
        let state = token::generate("");
        let nonce = token::generate("");
        let verifier = token::generate("");
        let binding = token::generate(token::prefix::UPSTREAM_BINDING);
        let location = match upstream.kind {
            UpstreamKind::Oidc | UpstreamKind::Google => {
                let meta = self.metadata_of(&upstream, false).await?;
                let client = oidc::client(
                    &meta,
                    &upstream.client_id,
                    String::new(),
                    &self.redirect_uri(&upstream),
                )?;
                oidc::authorize_url(
                    &client,
                    &upstream.scope,
                    state.clone(),
                    nonce.clone(),
                    &verifier,
                )
            }
            UpstreamKind::Github => github::authorize_url(
                &self.settings.upstream,
                &upstream,
                &self.redirect_uri(&upstream),
                state.clone(),
                &verifier,
            )?,
        };
        let flow = UpstreamFlow {
            upstream_id: upstream.id,
            binding_hash: token::hash(&binding),
            nonce,
            pkce_verifier: verifier,
            link_user_id: b.link_for.map(|(u, _)| u),
            return_to: b.return_to,
            expires_at: now.plus(FLOW_TTL_SECS),
        };
        self.store
            .insert_upstream_flow(token::hash(&state), flow, now)
            .await?;
        Ok(Begun::Redirect { location, binding })
    }

    fn redirect_uri(&self, u: &Upstream) -> String {
        callback_uri(&self.settings.server.issuer, &u.id)
    }

    /// The provider's discovery document and keys: the kept copy unless `fresh`, or it is
    /// older than `upstream.metadata_ttl_secs`, or the provider's issuer changed.
    async fn metadata_of(&self, u: &Upstream, fresh: bool) -> Result<Arc<oidc::Metadata>, Failure> {
        let issuer = u
            .issuer
            .clone()
            .ok_or_else(|| Failure::BadAnswer("the provider has no issuer".into()))?;
        let ttl = Duration::from_secs(self.settings.upstream.metadata_ttl_secs);
        if !fresh
            && let Ok(kept) = self.metadata.lock()
            && let Some(c) = kept.get(&u.id)
            && c.issuer == issuer
            && c.fetched.elapsed() < ttl
        {
            return Ok(c.meta.clone());
        }
        let meta = Arc::new(oidc::discover(&self.http, &issuer).await?);
        if let Ok(mut kept) = self.metadata.lock() {
            kept.insert(
                u.id.clone(),
                Cached {
                    issuer,
                    fetched: Instant::now(),
                    meta: meta.clone(),
                },
            );
        }
        Ok(meta)
    }

    /// A provider's client secret, opened from its stored form.
    fn open_secret(&self, id: &str, stored: &str) -> Result<String, Failure> {
        if let Some(plain) = stored.strip_prefix(PLAIN_PREFIX) {
            return Ok(plain.to_owned());
        }
        let sealed = stored
            .strip_prefix(SEALED_PREFIX)
            .and_then(|b| STANDARD.decode(b).ok());
        let (Some(sealed), Some(kek)) = (sealed, &self.kek) else {
            tracing::error!(upstream = %id, "the provider's client secret is sealed and no key-encryption key opens it");
            return Err(Failure::Unavailable);
        };
        kek.open(&sealed, &secret_aad(id))
            .ok()
            .and_then(|s| String::from_utf8(s).ok())
            .ok_or_else(|| {
                tracing::error!(upstream = %id, "the provider's client secret does not open under the key-encryption key");
                Failure::Unavailable
            })
    }

    /// The provider's answer at our callback.
    pub async fn callback(&self, c: Callback) -> CallbackOutcome {
        let now = self.clock.time();
        let (ip, upstream_id) = (c.ip, c.upstream_id.clone());
        match self.try_callback(c, now).await {
            Ok(o) => o,
            Err(f) => {
                if matches!(
                    f,
                    Failure::Unreachable(_) | Failure::BadAnswer(_) | Failure::Mixup(_)
                ) {
                    tracing::warn!(upstream = %upstream_id, reason = f.reason(), detail = f.detail(), "an upstream sign-in was refused");
                }
                if f != Failure::Unavailable {
                    let entry = AuditEntry {
                        ip: ip.map(|a| a.to_string()),
                        detail: format!("upstream={upstream_id} reason={}", f.reason()),
                        ..AuditEntry::new(AuditKind::UpstreamLoginFailed)
                    };
                    self.store.record(entry, now).await;
                }
                CallbackOutcome::Failed(f)
            }
        }
    }

    async fn try_callback(&self, c: Callback, now: UnixTime) -> Result<CallbackOutcome, Failure> {
        // The flow first: without this browser's own flow, nothing of the answer is looked at.
        let state = c
            .state
            .as_deref()
            .filter(|s| !s.is_empty() && s.len() <= 128);
        let Some(state) = state else {
            return Err(Failure::State("no state".into()));
        };
        let flow = self
            .store
            .take_upstream_flow(&token::hash(state), now)
            .await?
            .ok_or_else(|| Failure::State("unknown, used or expired".into()))?;
        if flow.upstream_id != c.upstream_id {
            return Err(Failure::State("the flow is another provider's".into()));
        }
        let bound = c
            .binding
            .as_deref()
            .is_some_and(|b| token::verify(b, &flow.binding_hash));
        if !bound {
            return Err(Failure::State("not this browser's".into()));
        }
        let (upstream, stored_secret) = self
            .store
            .upstream_with_secret(&c.upstream_id)
            .await?
            .ok_or(Failure::UnknownProvider)?;
        let profile = match upstream.kind {
            UpstreamKind::Oidc | UpstreamKind::Google => {
                let meta = self.metadata_of(&upstream, false).await?;
                // RFC 9207 §2.4: `iss` compared before the answer is used, an error included.
                match (
                    &c.iss,
                    meta.additional_metadata()
                        .authorization_response_iss_parameter_supported,
                ) {
                    (Some(iss), _) if Some(iss.as_str()) != upstream.issuer.as_deref() => {
                        return Err(Failure::Mixup("iss is not the provider's issuer".into()));
                    }
                    (None, Some(true)) => {
                        return Err(Failure::Mixup(
                            "no iss from a provider that always sends it".into(),
                        ));
                    }
                    _ => {}
                }
                let code = answer_code(&c)?;
                let secret = self.open_secret(&upstream.id, &stored_secret)?;
                let redirect = self.redirect_uri(&upstream);
                let client = oidc::client(&meta, &upstream.client_id, secret.clone(), &redirect)?;
                let finished = oidc::finish(
                    &client,
                    &self.http,
                    code,
                    flow.pkce_verifier.clone(),
                    &flow.nonce,
                )
                .await?;
                match finished.profile(&client, &self.http).await {
                    Err(Failure::UnknownKey) => {
                        // A key rotated at the provider since we kept its set: fetch it again, once.
                        let meta = self.metadata_of(&upstream, true).await?;
                        let client = oidc::client(&meta, &upstream.client_id, secret, &redirect)?;
                        finished
                            .profile(&client, &self.http)
                            .await
                            .map_err(|f| match f {
                                Failure::UnknownKey => {
                                    Failure::BadAnswer("ID token: signed by an unknown key".into())
                                }
                                other => other,
                            })?
                    }
                    other => other?,
                }
            }
            UpstreamKind::Github => {
                let code = answer_code(&c)?;
                let secret = self.open_secret(&upstream.id, &stored_secret)?;
                github::finish(
                    &self.settings.upstream,
                    &self.http,
                    &upstream,
                    &secret,
                    &self.redirect_uri(&upstream),
                    code,
                    flow.pkce_verifier.clone(),
                )
                .await?
            }
        };
        if let Some(user) = flow.link_user_id.clone() {
            return self
                .link_from_account(&upstream, profile, user, &c, now)
                .await;
        }
        self.account_for(&upstream, profile, flow.return_to, c, now)
            .await
    }

    /// A link begun on the account page: the browser must still be signed in as that account;
    /// the identity must be no other account's.
    async fn link_from_account(
        &self,
        upstream: &Upstream,
        profile: UpstreamProfile,
        user: UserId,
        c: &Callback,
        now: UnixTime,
    ) -> Result<CallbackOutcome, Failure> {
        let current = match c.session.as_deref() {
            Some(cookie) => self.authn.current(cookie).await.map_err(|e| {
                tracing::error!(error = %e, "cannot read the session");
                Failure::Unavailable
            })?,
            None => None,
        };
        if current.is_none_or(|a| a.user.id != user) {
            return Err(Failure::SessionChanged);
        }
        let link = IdentityLink {
            upstream_id: upstream.id.clone(),
            subject: profile.subject,
            email: profile.email,
        };
        match self.store.link_identity(&link, &user, now).await? {
            crate::store::upstreams::Linked::Done => {}
            crate::store::upstreams::Linked::ToAnother => return Err(Failure::IdentityTaken),
            crate::store::upstreams::Linked::ProviderTaken => return Err(Failure::ProviderTaken),
        }
        let entry = AuditEntry {
            user_id: Some(user.as_str().to_owned()),
            ip: c.ip.map(|a| a.to_string()),
            detail: format!("upstream={}", upstream.id),
            ..AuditEntry::new(AuditKind::UpstreamLinked)
        };
        self.store.record(entry, now).await;
        Ok(CallbackOutcome::Linked)
    }

    /// Which account an identity signs in to (see the module's step 3).
    async fn account_for(
        &self,
        upstream: &Upstream,
        profile: UpstreamProfile,
        return_to: String,
        c: Callback,
        now: UnixTime,
    ) -> Result<CallbackOutcome, Failure> {
        let sign_in = |user: UserId, link: Option<IdentityLink>| UpstreamSignIn {
            user,
            upstream: upstream.id.clone(),
            link,
            ip: c.ip,
            user_agent: c.user_agent.clone(),
            previous_session: c.session.clone(),
            login_ticket: crate::oauth::authorize::login_ticket_in(&return_to),
        };
        if let Some(user) = self
            .store
            .identity_user(&upstream.id, &profile.subject, now)
            .await?
        {
            let outcome = self.authn.upstream_sign_in(sign_in(user, None)).await;
            return Ok(CallbackOutcome::SignIn { outcome, return_to });
        }
        let link = IdentityLink {
            upstream_id: upstream.id.clone(),
            subject: profile.subject.clone(),
            email: profile.email.clone(),
        };
        let email = profile.email.as_deref().and_then(|e| Email::parse(e).ok());
        let existing = match &email {
            Some(e) => self.store.user_by_email(e).await?,
            None => None,
        };
        if let Some(account) = existing {
            let at_this_provider = self
                .store
                .identities_of(&account.id)
                .await?
                .into_iter()
                .find(|i| i.upstream_id == upstream.id);
            match at_this_provider {
                // Linked by a parallel first sign-in since the lookup above: it is this one.
                Some(i) if i.subject == profile.subject => {
                    let outcome = self.authn.upstream_sign_in(sign_in(account.id, None)).await;
                    return Ok(CallbackOutcome::SignIn { outcome, return_to });
                }
                Some(_) => return Err(Failure::ProviderTaken),
                None => {}
            }
            // Silently only when all three say the email is the same person's.
            if upstream.trust_email && profile.email_verified && account.email_verified {
                let outcome = self
                    .authn
                    .upstream_sign_in(sign_in(account.id, Some(link)))
                    .await;
                return Ok(CallbackOutcome::SignIn { outcome, return_to });
            }
            let cookie = token::generate(token::prefix::UPSTREAM_LINK);
            let request = LinkRequest {
                link,
                user_id: account.id,
                email: account.email,
                return_to,
            };
            self.store
                .insert_link_request(token::hash(&cookie), request, now.plus(LINK_TTL_SECS), now)
                .await?;
            return Ok(CallbackOutcome::ProveAccount { cookie });
        }
        if !upstream.jit {
            return Err(Failure::NoAccount);
        }
        let Some(email) = email else {
            return Err(Failure::NoEmail);
        };
        let new = NewUser {
            email,
            email_verified: profile.email_verified,
            name: profile.name.clone(),
            roles: Role::parse("user").into_iter().collect(),
            password_hash: None,
        };
        let user = match self.store.create_user_linked(new, &link, now).await {
            Ok(u) => u,
            // A parallel first sign-in of this identity made the account a moment ago: sign in
            // to it. (A parallel registration of the email, with no identity: refused.)
            Err(StoreError::Conflict) => {
                let Some(user) = self
                    .store
                    .identity_user(&upstream.id, &profile.subject, now)
                    .await?
                else {
                    return Err(Failure::State("the email was taken a moment ago".into()));
                };
                let outcome = self.authn.upstream_sign_in(sign_in(user, None)).await;
                return Ok(CallbackOutcome::SignIn { outcome, return_to });
            }
            Err(e) => return Err(e.into()),
        };
        self.store
            .record_all(
                vec![
                    AuditEntry {
                        user_id: Some(user.id.as_str().to_owned()),
                        ip: c.ip.map(|a| a.to_string()),
                        detail: format!("upstream={}", upstream.id),
                        ..AuditEntry::new(AuditKind::Registered)
                    },
                    AuditEntry {
                        user_id: Some(user.id.as_str().to_owned()),
                        ip: c.ip.map(|a| a.to_string()),
                        detail: format!("upstream={}", upstream.id),
                        ..AuditEntry::new(AuditKind::UpstreamLinked)
                    },
                ],
                now,
            )
            .await;
        let outcome = self.authn.upstream_sign_in(sign_in(user.id, None)).await;
        Ok(CallbackOutcome::SignIn { outcome, return_to })
    }

    /// What the proof page shows for this browser's waiting identity (`None`: expired, used,
    /// or never made here).
    pub async fn link_prompt(&self, cookie: Option<&str>) -> Result<Option<LinkPrompt>, Failure> {
        let now = self.clock.time();
        let Some(cookie) = cookie.filter(|c| c.starts_with(token::prefix::UPSTREAM_LINK)) else {
            return Ok(None);
        };
        let Some(r) = self.store.link_request(&token::hash(cookie), now).await? else {
            return Ok(None);
        };
        let provider = self
            .store
            .upstream(&r.link.upstream_id)
            .await?
            .map_or_else(|| r.link.upstream_id.clone(), |u| u.name);
        Ok(Some(LinkPrompt {
            email: r.email,
            provider,
            return_to: r.return_to,
        }))
    }

    /// The proof page's answer: the account's password (its lockout and the address's limit
    /// as on the login page), then its second factor where enrolled; the identity is linked
    /// when the sign-in completes. The email typed must be the account's.
    pub async fn prove_account(&self, p: ProveAccount) -> Result<(SignInOutcome, String), Failure> {
        let now = self.clock.time();
        let Some(cookie) = p
            .cookie
            .filter(|c| c.starts_with(token::prefix::UPSTREAM_LINK))
        else {
            return Err(Failure::State("no link request".into()));
        };
        let hash = token::hash(&cookie);
        let Some(r) = self.store.link_request(&hash, now).await? else {
            return Err(Failure::State("no link request".into()));
        };
        let attempt = SignIn {
            email: p.email,
            password: p.password,
            ip: p.ip,
            user_agent: p.user_agent,
            previous_session: p.previous_session,
            login_ticket: crate::oauth::authorize::login_ticket_in(&r.return_to),
        };
        let outcome = self
            .authn
            .sign_in_linking(attempt, Some((r.user_id.clone(), r.link.clone())))
            .await;
        if matches!(
            outcome,
            SignInOutcome::SignedIn { .. }
                | SignInOutcome::SecondFactorNeeded { .. }
                | SignInOutcome::EnrolSecondFactor { .. }
        ) {
            self.store.take_link_request(&hash).await?;
        }
        Ok((outcome, r.return_to))
    }

    /// The account page's list.
    pub async fn identities(&self, user: &UserId) -> Result<AccountIdentities, Failure> {
        let linked = self.store.identities_of(user).await?;
        let all = self.store.upstreams().await?;
        let name_of = |id: &str| {
            all.iter()
                .find(|u| u.id == id)
                .map_or_else(|| id.to_owned(), |u| u.name.clone())
        };
        let linkable = all
            .iter()
            .filter(|u| !linked.iter().any(|l| l.upstream_id == u.id))
            .map(|u| Provider {
                id: u.id.clone(),
                name: u.name.clone(),
            })
            .collect();
        let linked = linked
            .into_iter()
            .map(|l| {
                let name = name_of(&l.upstream_id);
                (l, name)
            })
            .collect();
        Ok(AccountIdentities { linked, linkable })
    }

    /// Unlinks the account's identity at a provider, unless it is the account's last way to
    /// sign in (decided under the account's row lock); audited.
    pub async fn unlink(&self, user: &UserId, upstream_id: &str, ip: Option<IpAddr>) -> Unlinked {
        let now = self.clock.time();
        match self
            .store
            .unlink_identity_keeping_a_way_in(user, upstream_id)
            .await
        {
            Ok(KeptWayIn::Done) => {
                let entry = AuditEntry {
                    user_id: Some(user.as_str().to_owned()),
                    ip: ip.map(|a| a.to_string()),
                    detail: format!("upstream={upstream_id}"),
                    ..AuditEntry::new(AuditKind::UpstreamUnlinked)
                };
                self.store.record(entry, now).await;
                Unlinked::Done
            }
            Ok(KeptWayIn::LastWayIn | KeptWayIn::LastFactor) => Unlinked::LastWayIn,
            Ok(KeptWayIn::NotFound) => Unlinked::NotFound,
            Err(e) => {
                tracing::error!(error = %e, "cannot unlink an upstream identity");
                Unlinked::Unavailable
            }
        }
    }
}

/// The code of a provider's answer, or what the answer said instead (RFC 6749 §4.1.2.1).
fn answer_code(c: &Callback) -> Result<String, Failure> {
    if let Some(error) = &c.error {
        let error: String = error
            .chars()
            .filter(char::is_ascii_graphic)
            .take(64)
            .collect();
        return Err(if error == "access_denied" {
            Failure::Denied
        } else {
            Failure::ProviderError(format!("error={error}"))
        });
    }
    c.code
        .clone()
        .filter(|code| !code.is_empty() && code.len() <= 2048)
        .ok_or_else(|| Failure::BadAnswer("no code".into()))
}

#[cfg(test)]
mod tests {
    use super::*;

    fn callback(code: Option<&str>, error: Option<&str>) -> Callback {
        Callback {
            code: code.map(str::to_owned),
            error: error.map(str::to_owned),
            ..Callback::default()
        }
    }

    #[test]
    fn the_answer_is_a_code_or_what_the_provider_said_instead() {
        assert_eq!(answer_code(&callback(Some("c"), None)), Ok("c".to_owned()));
        assert_eq!(
            answer_code(&callback(Some("c"), Some("access_denied"))),
            Err(Failure::Denied)
        );
        // An error wins over a code; its text is cut to visible ASCII before it is logged.
        assert_eq!(
            answer_code(&callback(None, Some("server_error\r\nX-Injected: 1"))),
            Err(Failure::ProviderError(
                "error=server_errorX-Injected:1".into()
            ))
        );
        assert!(matches!(
            answer_code(&callback(None, None)),
            Err(Failure::BadAnswer(_))
        ));
        assert!(matches!(
            answer_code(&callback(Some(""), None)),
            Err(Failure::BadAnswer(_))
        ));
        let long = "c".repeat(2049);
        assert!(matches!(
            answer_code(&callback(Some(&long), None)),
            Err(Failure::BadAnswer(_))
        ));
    }

    fn profile(subject: &str, email: Option<&str>, name: Option<&str>) -> UpstreamProfile {
        UpstreamProfile {
            subject: subject.into(),
            email: email.map(str::to_owned),
            email_verified: true,
            name: name.map(str::to_owned),
        }
    }

    #[test]
    fn claims_from_a_provider_are_bounded() {
        assert!(bounded_profile(profile("", None, None)).is_err());
        assert!(bounded_profile(profile(&"s".repeat(MAX_SUBJECT + 1), None, None)).is_err());
        // Not an email: dropped, and so is its verified flag.
        let p = bounded_profile(profile("s", Some("not an email"), None)).expect("ok");
        assert_eq!((p.email, p.email_verified), (None, false));
        let p =
            bounded_profile(profile("s", Some("a@example.com"), Some(" Ada\u{7}\n "))).expect("ok");
        assert_eq!(p.email.as_deref(), Some("a@example.com"));
        assert_eq!(p.name.as_deref(), Some("Ada"));
        let p = bounded_profile(profile("s", None, Some(&"n".repeat(500)))).expect("ok");
        assert_eq!(p.name.map(|n| n.chars().count()), Some(MAX_PROFILE_NAME));
        let p = bounded_profile(profile("s", None, Some(" \t "))).expect("ok");
        assert_eq!(p.name, None);
    }

    #[test]
    fn every_failure_has_a_page_message_and_an_audit_reason_without_its_detail() {
        let secretish = "code=abc123";
        for f in [
            Failure::ProviderError(secretish.into()),
            Failure::State(secretish.into()),
            Failure::Mixup(secretish.into()),
            Failure::BadAnswer(secretish.into()),
            Failure::Unreachable(secretish.into()),
        ] {
            assert!(!f.message().contains(secretish));
            assert!(!f.reason().contains(secretish));
            assert!(!f.message().is_empty());
        }
    }
}
