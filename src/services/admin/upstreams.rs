//! Upstream identity providers, for administrators (issue 18, first slice): create, list, show,
//! delete; every change audited. The client secret is sealed under the key-encryption key when
//! one is configured (`crypto::seal`, associated data: the provider's id, so a sealed secret
//! copied onto another provider's row does not open), and never shown again.

use base64::Engine;
use base64::engine::general_purpose::STANDARD;

use super::{Actor, Admin, AdminError};
use crate::domain::upstream::{Upstream, UpstreamSpec, secret_aad};
use crate::domain::{AuditEntry, AuditKind, Invalid};
use crate::store::StoreError;
use crate::store::upstreams::{PLAIN_PREFIX, SEALED_PREFIX};

impl Admin {
    /// The redirect URI to register at `upstream` (`domain::upstream::callback_uri` under this
    /// server's issuer): the CLI, the admin API and the admin pages all show this one.
    pub fn upstream_redirect_uri(&self, upstream: &Upstream) -> String {
        crate::domain::upstream::callback_uri(&self.settings.server.issuer, &upstream.id)
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
                    kek.seal(valid.client_secret.as_bytes(), &secret_aad(&valid.id))
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
    use crate::domain::upstream::callback_uri as upstream_redirect_uri;

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
