//! Upstream identity providers, for administrators (issue 18, first slice): create, list, show,
//! delete; every change audited. The client secret is sealed under the key-encryption key when
//! one is configured (`crypto::seal`, associated data: the provider's id, so a sealed secret
//! copied onto another provider's row does not open), and never shown again.

use base64::Engine;
use base64::engine::general_purpose::STANDARD;

use super::{Actor, Admin, AdminError};
use crate::domain::upstream::{Upstream, UpstreamSpec};
use crate::domain::{AuditEntry, AuditKind, Invalid};
use crate::paths;
use crate::store::StoreError;
use crate::store::upstreams::{PLAIN_PREFIX, SEALED_PREFIX};

fn aad(id: &str) -> Vec<u8> {
    let mut a = id.as_bytes().to_vec();
    a.extend_from_slice(b"\0upstream client secret");
    a
}

/// The redirect URI to register at the provider for the upstream `id`: this server's issuer
/// followed by [`paths::LOGIN_UPSTREAM_CALLBACK`]. Ids are `a-z`, `0-9` and `-`
/// ([`UpstreamSpec::validate`]), so they go into the path as they are.
pub fn upstream_redirect_uri(issuer: &str, id: &str) -> String {
    format!(
        "{}{}",
        issuer.trim_end_matches('/'),
        paths::LOGIN_UPSTREAM_CALLBACK.replace("{id}", id)
    )
}

impl Admin {
    /// The redirect URI to register at `upstream` ([`upstream_redirect_uri`] under this
    /// server's issuer): the CLI, the admin API and the admin pages all show this one.
    pub fn upstream_redirect_uri(&self, upstream: &Upstream) -> String {
        upstream_redirect_uri(&self.settings.server.issuer, &upstream.id)
    }

    /// Registers an upstream provider.
    pub async fn create_upstream(
        &self,
        actor: &Actor,
        spec: UpstreamSpec,
    ) -> Result<Upstream, AdminError> {
        let now = self.clock.time();
        let valid = spec.validate().map_err(|problems| {
            AdminError::Invalid(
                problems
                    .into_iter()
                    .map(|p| Invalid::new(p.field, p.message))
                    .collect(),
            )
        })?;
        let stored = match &self.kek {
            Some(kek) => format!(
                "{SEALED_PREFIX}{}",
                STANDARD.encode(
                    kek.seal(valid.client_secret.as_bytes(), &aad(&valid.id))
                        .map_err(|e| AdminError::Unexpected(e.to_string()))?
                )
            ),
            None => format!("{PLAIN_PREFIX}{}", valid.client_secret),
        };
        let upstream = self
            .store
            .insert_upstream(&valid, stored, now)
            .await
            .map_err(|e| match e {
                StoreError::Conflict => {
                    AdminError::Conflict(format!("an upstream with the id {:?} exists", valid.id))
                }
                other => other.into(),
            })?;
        self.record(
            actor,
            AuditEntry {
                detail: format!(
                    "upstream={} kind={} jit={} trust_email={}",
                    upstream.id, upstream.kind, upstream.jit, upstream.trust_email
                ),
                ..AuditEntry::new(AuditKind::UpstreamCreated)
            },
            now,
        )
        .await;
        Ok(upstream)
    }

    pub async fn list_upstreams(&self, _actor: &Actor) -> Result<Vec<Upstream>, AdminError> {
        Ok(self.store.upstreams().await?)
    }

    pub async fn upstream(&self, _actor: &Actor, id: &str) -> Result<Upstream, AdminError> {
        self.store
            .upstream(id)
            .await?
            .ok_or(AdminError::NotFound("upstream"))
    }

    /// Deletes an upstream provider.
    pub async fn delete_upstream(&self, actor: &Actor, id: &str) -> Result<(), AdminError> {
        let now = self.clock.time();
        if !self.store.delete_upstream(id).await? {
            return Err(AdminError::NotFound("upstream"));
        }
        self.record(
            actor,
            AuditEntry {
                detail: format!("upstream={id}"),
                ..AuditEntry::new(AuditKind::UpstreamDeleted)
            },
            now,
        )
        .await;
        Ok(())
    }
}

#[cfg(test)]
mod tests {
    use super::upstream_redirect_uri;

    #[test]
    fn the_redirect_uri_is_the_issuer_and_the_callback_path() {
        for issuer in ["https://id.example.com", "https://id.example.com/"] {
            assert_eq!(
                upstream_redirect_uri(issuer, "corp"),
                "https://id.example.com/login/upstream/corp/callback"
            );
        }
        assert_eq!(
            upstream_redirect_uri("https://example.com/sso", "gh"),
            "https://example.com/sso/login/upstream/gh/callback"
        );
    }
}
