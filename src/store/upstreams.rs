//! Upstream identity providers as stored (`upstream_providers`), the identities linked to
//! accounts (`upstream_identities`), the flows waiting for their callback (`upstream_flows`)
//! and the links waiting for the account to be proven (`upstream_link_requests`). The client
//! secret is stored as the use case hands it over (sealed, or marked plain) and read back only
//! by [`Store::upstream_with_secret`].

use sea_orm::{
    ActiveModelTrait, ActiveValue::Set, ColumnTrait, EntityTrait, QueryFilter, QueryOrder,
};

use super::entities::{upstream_flow, upstream_identity, upstream_link_request, upstream_provider};
use super::passkeys::{KeptWayIn, lock_user};
use super::{Store, StoreError};
use crate::domain::upstream::{
    IdentityLink, LinkedIdentity, Upstream, UpstreamKind, ValidUpstream, is_upstream_id,
};
use crate::domain::{NewUser, UnixTime, User, UserId};

/// An authorization request sent to an upstream, waiting for its callback.
#[derive(Clone)]
pub struct UpstreamFlow {
    pub upstream_id: String,
    /// Hash of the browser's binding cookie.
    pub binding_hash: String,
    pub nonce: String,
    /// The PKCE code verifier (RFC 7636 §4.1): a secret until the callback uses it.
    pub pkce_verifier: String,
    /// Set when a signed-in user links this upstream from the account page.
    pub link_user_id: Option<UserId>,
    pub return_to: String,
    pub expires_at: UnixTime,
}

impl std::fmt::Debug for UpstreamFlow {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.debug_struct("UpstreamFlow")
            .field("upstream_id", &self.upstream_id)
            .field("link_user_id", &self.link_user_id)
            .finish_non_exhaustive()
    }
}

/// An upstream identity waiting for the person to prove the existing account it would link to.
#[derive(Debug, Clone)]
pub struct LinkRequest {
    pub link: IdentityLink,
    pub user_id: UserId,
    /// The existing account's email (the proof page asks for its password).
    pub email: String,
    pub return_to: String,
}

/// What linking an identity came to.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Linked {
    Done,
    /// This identity is linked to another account already.
    ToAnother,
    /// The account has an identity at this provider already.
    ProviderTaken,
}

/// The stored form of a secret that is sealed: this prefix, then base64.
pub const SEALED_PREFIX: &str = "sealed:";
/// The stored form of a secret kept as it is (no key-encryption key): this prefix, then it.
pub const PLAIN_PREFIX: &str = "plain:";

fn upstream(m: upstream_provider::Model) -> Result<Upstream, StoreError> {
    let kind = UpstreamKind::parse(&m.kind)
        .ok_or_else(|| StoreError::Corrupt(format!("upstream {} has kind {:?}", m.id, m.kind)))?;
    Ok(Upstream {
        secret_sealed: m.client_secret.starts_with(SEALED_PREFIX),
        id: m.id,
        kind,
        name: m.name,
        issuer: m.issuer,
        client_id: m.client_id,
        scope: m.scope,
        jit: m.jit,
        trust_email: m.trust_email,
        created_at: UnixTime::from_secs(m.created_at),
    })
}

impl Store {
    /// Stores a new provider; `stored_secret` is the secret's stored form. `Conflict` when the
    /// id is taken.
    pub async fn insert_upstream(
        &self,
        u: &ValidUpstream,
        stored_secret: String,
        now: UnixTime,
    ) -> Result<Upstream, StoreError> {
        let _w = self.write_gate().await;
        let m = upstream_provider::ActiveModel {
            id: Set(u.id.clone()),
            kind: Set(u.kind.as_str().to_owned()),
            name: Set(u.name.clone()),
            issuer: Set(u.issuer.clone()),
            client_id: Set(u.client_id.clone()),
            client_secret: Set(stored_secret),
            scope: Set(u.scope.clone()),
            jit: Set(u.jit),
            trust_email: Set(u.trust_email),
            created_at: Set(now.secs()),
            updated_at: Set(now.secs()),
        }
        .insert(self.conn())
        .await
        .map_err(StoreError::from_insert)?;
        upstream(m)
    }

    /// Every provider, by id.
    pub async fn upstreams(&self) -> Result<Vec<Upstream>, StoreError> {
        upstream_provider::Entity::find()
            .order_by_asc(upstream_provider::Column::Id)
            .all(self.conn())
            .await?
            .into_iter()
            .map(upstream)
            .collect()
    }

    /// The provider with this id; `None` for an id that cannot be one
    /// ([`crate::domain::upstream::is_upstream_id`]), without asking the database.
    pub async fn upstream(&self, id: &str) -> Result<Option<Upstream>, StoreError> {
        if !is_upstream_id(id) {
            return Ok(None);
        }
        upstream_provider::Entity::find_by_id(id.to_owned())
            .one(self.conn())
            .await?
            .map(upstream)
            .transpose()
    }

    /// A provider with the stored form of its client secret (for the sign-in to open), in one
    /// read.
    pub async fn upstream_with_secret(
        &self,
        id: &str,
    ) -> Result<Option<(Upstream, String)>, StoreError> {
        if !is_upstream_id(id) {
            return Ok(None);
        }
        let Some(m) = upstream_provider::Entity::find_by_id(id.to_owned())
            .one(self.conn())
            .await?
        else {
            return Ok(None);
        };
        let secret = m.client_secret.clone();
        Ok(Some((upstream(m)?, secret)))
    }

    /// Deletes a provider; `false` when there was none.
    pub async fn delete_upstream(&self, id: &str) -> Result<bool, StoreError> {
        if !is_upstream_id(id) {
            return Ok(false);
        }
        let _w = self.write_gate().await;
        let r = upstream_provider::Entity::delete_by_id(id.to_owned())
            .exec(self.conn())
            .await?;
        Ok(r.rows_affected == 1)
    }
}

impl Store {
    // --- flows -----------------------------------------------------------------------------

    pub async fn insert_upstream_flow(
        &self,
        id_hash: String,
        f: UpstreamFlow,
        now: UnixTime,
    ) -> Result<(), StoreError> {
        let _w = self.write_gate().await;
        upstream_flow::ActiveModel {
            id_hash: Set(id_hash),
            upstream_id: Set(f.upstream_id),
            binding_hash: Set(f.binding_hash),
            nonce: Set(f.nonce),
            pkce_verifier: Set(f.pkce_verifier),
            link_user_id: Set(f.link_user_id.map(|u| u.as_str().to_owned())),
            return_to: Set(f.return_to),
            created_at: Set(now.secs()),
            expires_at: Set(f.expires_at.secs()),
        }
        .insert(self.conn())
        .await
        .map_err(StoreError::from_insert)?;
        Ok(())
    }

    /// Takes the unexpired flow behind a `state`'s hash: read, then one DELETE decides, so of
    /// two callbacks with one `state` (a replay, or a race) exactly one gets the flow.
    pub async fn take_upstream_flow(
        &self,
        id_hash: &str,
        now: UnixTime,
    ) -> Result<Option<UpstreamFlow>, StoreError> {
        let Some(m) = upstream_flow::Entity::find_by_id(id_hash.to_owned())
            .filter(upstream_flow::Column::ExpiresAt.gt(now.secs()))
            .one(self.conn())
            .await?
        else {
            return Ok(None);
        };
        let _w = self.write_gate().await;
        let r = upstream_flow::Entity::delete_many()
            .filter(upstream_flow::Column::IdHash.eq(id_hash))
            .exec(self.conn())
            .await?;
        if r.rows_affected != 1 {
            return Ok(None);
        }
        Ok(Some(UpstreamFlow {
            upstream_id: m.upstream_id,
            binding_hash: m.binding_hash,
            nonce: m.nonce,
            pkce_verifier: m.pkce_verifier,
            link_user_id: m.link_user_id.map(UserId::from_stored),
            return_to: m.return_to,
            expires_at: UnixTime::from_secs(m.expires_at),
        }))
    }

    // --- identities ------------------------------------------------------------------------

    /// The account an upstream identity signs in to; marks it used.
    pub async fn identity_user(
        &self,
        upstream_id: &str,
        subject: &str,
        now: UnixTime,
    ) -> Result<Option<UserId>, StoreError> {
        let Some(m) =
            upstream_identity::Entity::find_by_id((upstream_id.to_owned(), subject.to_owned()))
                .one(self.conn())
                .await?
        else {
            return Ok(None);
        };
        let _w = self.write_gate().await;
        upstream_identity::Entity::update_many()
            .col_expr(
                upstream_identity::Column::LastUsedAt,
                sea_orm::sea_query::Expr::value(now.secs()),
            )
            .filter(upstream_identity::Column::UpstreamId.eq(upstream_id))
            .filter(upstream_identity::Column::Subject.eq(subject))
            .exec(self.conn())
            .await?;
        Ok(Some(UserId::from_stored(m.user_id)))
    }

    /// Links an upstream identity to an account (one INSERT; the keys decide a race).
    pub async fn link_identity(
        &self,
        link: &IdentityLink,
        user_id: &UserId,
        now: UnixTime,
    ) -> Result<Linked, StoreError> {
        let _w = self.write_gate().await;
        let r = identity_model(link, user_id, now).insert(self.conn()).await;
        match r.map_err(StoreError::from_insert) {
            Ok(_) => Ok(Linked::Done),
            Err(StoreError::Conflict) => self.why_not_linked(link, user_id).await,
            Err(e) => Err(e),
        }
    }

    async fn why_not_linked(
        &self,
        link: &IdentityLink,
        user_id: &UserId,
    ) -> Result<Linked, StoreError> {
        let holder =
            upstream_identity::Entity::find_by_id((link.upstream_id.clone(), link.subject.clone()))
                .one(self.conn())
                .await?;
        Ok(match holder {
            Some(h) if h.user_id == user_id.as_str() => Linked::Done,
            Some(_) => Linked::ToAnother,
            None => Linked::ProviderTaken,
        })
    }

    /// Creates an account and links an upstream identity to it, in one transaction: the
    /// account exists only with its way in. `Conflict` when the email or the identity is
    /// taken (by a parallel sign-in).
    pub async fn create_user_linked(
        &self,
        new: NewUser,
        link: &IdentityLink,
        now: UnixTime,
    ) -> Result<User, StoreError> {
        let _w = self.write_gate().await;
        let tx = self.conn().begin().await?;
        let m = super::users::new_user_model(new, now)
            .insert(&tx)
            .await
            .map_err(StoreError::from_insert)?;
        let user = super::users::to_domain(m);
        identity_model(link, &user.id, now)
            .insert(&tx)
            .await
            .map_err(StoreError::from_insert)?;
        tx.commit().await?;
        Ok(user)
    }

    /// The identities linked to an account, by provider.
    pub async fn identities_of(&self, user_id: &UserId) -> Result<Vec<LinkedIdentity>, StoreError> {
        Ok(upstream_identity::Entity::find()
            .filter(upstream_identity::Column::UserId.eq(user_id.as_str()))
            .order_by_asc(upstream_identity::Column::UpstreamId)
            .all(self.conn())
            .await?
            .into_iter()
            .map(|m| LinkedIdentity {
                upstream_id: m.upstream_id,
                subject: m.subject,
                email: m.email,
                created_at: UnixTime::from_secs(m.created_at),
                last_used_at: m.last_used_at.map(UnixTime::from_secs),
            })
            .collect())
    }

    /// Unlinks the account's identity at a provider unless it is the last way to sign in (no
    /// password, no passkey, no other identity), decided under the user's row lock like the
    /// removal of a passkey or the password.
    pub async fn unlink_identity_keeping_a_way_in(
        &self,
        user_id: &UserId,
        upstream_id: &str,
    ) -> Result<KeptWayIn, StoreError> {
        if !is_upstream_id(upstream_id) {
            return Ok(KeptWayIn::NotFound);
        }
        let _w = self.write_gate().await;
        let tx = self.conn().begin().await?;
        let Some(u) = lock_user(&tx, user_id).await? else {
            tx.rollback().await?;
            return Ok(KeptWayIn::NotFound);
        };
        let identities = super::passkeys::identities(&tx, user_id).await?;
        let passkeys = super::passkeys::passkey_count(&tx, user_id).await?;
        if u.password_hash.is_none() && passkeys == 0 && identities <= 1 {
            tx.rollback().await?;
            return Ok(if identities == 0 {
                KeptWayIn::NotFound
            } else {
                KeptWayIn::LastWayIn
            });
        }
        let r = upstream_identity::Entity::delete_many()
            .filter(upstream_identity::Column::UserId.eq(user_id.as_str()))
            .filter(upstream_identity::Column::UpstreamId.eq(upstream_id))
            .exec(&tx)
            .await?;
        tx.commit().await?;
        Ok(if r.rows_affected == 1 {
            KeptWayIn::Done
        } else {
            KeptWayIn::NotFound
        })
    }

    // --- link requests ---------------------------------------------------------------------

    pub async fn insert_link_request(
        &self,
        id_hash: String,
        r: LinkRequest,
        expires_at: UnixTime,
        now: UnixTime,
    ) -> Result<(), StoreError> {
        let _w = self.write_gate().await;
        upstream_link_request::ActiveModel {
            id_hash: Set(id_hash),
            upstream_id: Set(r.link.upstream_id),
            subject: Set(r.link.subject),
            user_id: Set(r.user_id.as_str().to_owned()),
            email: Set(r.email),
            return_to: Set(r.return_to),
            created_at: Set(now.secs()),
            expires_at: Set(expires_at.secs()),
        }
        .insert(self.conn())
        .await
        .map_err(StoreError::from_insert)?;
        Ok(())
    }

    /// The unexpired link request behind a cookie's hash.
    pub async fn link_request(
        &self,
        id_hash: &str,
        now: UnixTime,
    ) -> Result<Option<LinkRequest>, StoreError> {
        let m = upstream_link_request::Entity::find_by_id(id_hash.to_owned())
            .filter(upstream_link_request::Column::ExpiresAt.gt(now.secs()))
            .one(self.conn())
            .await?;
        let Some(m) = m else { return Ok(None) };
        // The email the provider gave is the account's (that is why the link was asked for).
        let email = m.email;
        Ok(Some(LinkRequest {
            link: IdentityLink {
                upstream_id: m.upstream_id,
                subject: m.subject,
                email: Some(email.clone()),
            },
            user_id: UserId::from_stored(m.user_id),
            email,
            return_to: m.return_to,
        }))
    }

    /// Uses a link request: one DELETE, so it serves once.
    pub async fn take_link_request(&self, id_hash: &str) -> Result<bool, StoreError> {
        let _w = self.write_gate().await;
        let r = upstream_link_request::Entity::delete_many()
            .filter(upstream_link_request::Column::IdHash.eq(id_hash))
            .exec(self.conn())
            .await?;
        Ok(r.rows_affected == 1)
    }
}

fn identity_model(
    link: &IdentityLink,
    user_id: &UserId,
    now: UnixTime,
) -> upstream_identity::ActiveModel {
    upstream_identity::ActiveModel {
        upstream_id: Set(link.upstream_id.clone()),
        subject: Set(link.subject.clone()),
        user_id: Set(user_id.as_str().to_owned()),
        email: Set(link.email.clone()),
        created_at: Set(now.secs()),
        last_used_at: Set(Some(now.secs())),
    }
}
