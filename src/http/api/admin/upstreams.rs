//! `/admin/api/v1/upstreams`: the upstream identity providers (issue 18): list, create, read,
//! delete. The client secret goes in once, at creation, and never comes out: not in an answer,
//! not in a problem, not in a `Debug` print.

use std::fmt;

use actix_web::http::StatusCode;
use actix_web::{HttpRequest, HttpResponse, web};
use serde::{Deserialize, Deserializer, Serialize};
use utoipa::ToSchema;

use super::{AdminBearer, ApiProblem, Problem, json, json_body};
use crate::domain::upstream::{Upstream, UpstreamSpec};
use crate::http::extractors::Then;
use crate::services::admin::Admin;
use crate::state::AppState;

/// An upstream provider, without its client secret.
#[derive(Debug, Serialize, ToSchema)]
pub struct UpstreamOut {
    pub id: String,
    /// oidc, github or google.
    pub kind: String,
    /// The name on the sign-in button.
    pub name: String,
    /// The issuer (oidc, google); null for github.
    pub issuer: Option<String>,
    pub client_id: String,
    pub scope: String,
    /// A first sign-in creates a local account.
    pub jit: bool,
    /// A verified email from this provider links to the local account with that email.
    pub trust_email: bool,
    /// The client secret is stored sealed under the key-encryption key.
    pub secret_sealed: bool,
    pub created_at: i64,
    /// The redirect URI to register at the provider.
    pub redirect_uri: String,
}

impl UpstreamOut {
    fn new(u: &Upstream, admin: &Admin) -> Self {
        Self {
            id: u.id.clone(),
            kind: u.kind.as_str().to_owned(),
            name: u.name.clone(),
            issuer: u.issuer.clone(),
            client_id: u.client_id.clone(),
            scope: u.scope.clone(),
            jit: u.jit,
            trust_email: u.trust_email,
            secret_sealed: u.secret_sealed,
            created_at: u.created_at.secs(),
            redirect_uri: admin.upstream_redirect_uri(u),
        }
    }
}

/// A client secret as sent. Anything but a JSON string is refused without echoing it (serde's
/// own message would quote a number or a boolean).
pub struct SecretText(String);

impl<'de> Deserialize<'de> for SecretText {
    fn deserialize<D: Deserializer<'de>>(d: D) -> Result<Self, D::Error> {
        match serde_json::Value::deserialize(d)? {
            serde_json::Value::String(s) => Ok(SecretText(s)),
            _ => Err(serde::de::Error::custom("client_secret must be a string")),
        }
    }
}

/// A provider to register, as for `castellan upstream create`.
#[derive(Deserialize, ToSchema)]
#[serde(deny_unknown_fields)]
pub struct UpstreamIn {
    /// a-z, 0-9 and '-' (not first or last), at most 32: part of the callback path.
    pub id: String,
    /// oidc (any OpenID provider, by discovery), github or google.
    pub kind: String,
    /// The name on the sign-in button.
    pub name: String,
    /// Required for oidc (https, or http on a loopback host); implied for google; none for
    /// github.
    pub issuer: Option<String>,
    /// The client id Castellan has at the provider.
    pub client_id: String,
    /// The client secret Castellan has at the provider: stored (sealed when a key-encryption
    /// key is configured), never returned.
    #[schema(value_type = String, format = Password, write_only)]
    pub client_secret: SecretText,
    /// Default: "openid email profile" (github: "read:user user:email").
    pub scope: Option<String>,
    /// A first sign-in creates a local account. Default: true.
    #[serde(default = "yes")]
    #[schema(default = true)]
    pub jit: bool,
    /// Link to a local account with the same verified email without asking for its password.
    /// Default: false.
    #[serde(default)]
    pub trust_email: bool,
}

fn yes() -> bool {
    true
}

impl fmt::Debug for UpstreamIn {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.debug_struct("UpstreamIn")
            .field("id", &self.id)
            .field("kind", &self.kind)
            .field("name", &self.name)
            .field("issuer", &self.issuer)
            .field("client_id", &self.client_id)
            .field("client_secret", &"(hidden)")
            .field("scope", &self.scope)
            .field("jit", &self.jit)
            .field("trust_email", &self.trust_email)
            .finish()
    }
}

impl From<UpstreamIn> for UpstreamSpec {
    fn from(u: UpstreamIn) -> Self {
        UpstreamSpec {
            id: u.id,
            kind: u.kind,
            name: u.name,
            issuer: u.issuer,
            client_id: u.client_id,
            client_secret: u.client_secret.0,
            scope: u.scope,
            jit: u.jit,
            trust_email: u.trust_email,
        }
    }
}

#[utoipa::path(get, path = "/admin/api/v1/upstreams", tag = "upstreams",
    responses((status = 200, body = Vec<UpstreamOut>), (status = 401, body = Problem), (status = 403, body = Problem)),
    security(("bearer" = [])))]
pub async fn list_upstreams(
    AdminBearer(actor): AdminBearer,
    state: web::Data<AppState>,
) -> Result<HttpResponse, ApiProblem> {
    let admin = &state.core.admin;
    let upstreams = admin.list_upstreams(&actor).await?;
    let out: Vec<UpstreamOut> = upstreams
        .iter()
        .map(|u| UpstreamOut::new(u, admin))
        .collect();
    Ok(json(StatusCode::OK, &out))
}

#[utoipa::path(post, path = "/admin/api/v1/upstreams", tag = "upstreams", request_body = UpstreamIn,
    responses((status = 201, body = UpstreamOut), (status = 400, body = Problem), (status = 401, body = Problem),
        (status = 403, body = Problem), (status = 409, body = Problem)),
    security(("bearer" = [])))]
pub async fn create_upstream(
    req: HttpRequest,
    Then(AdminBearer(actor), body): Then<AdminBearer, web::Bytes>,
    state: web::Data<AppState>,
) -> Result<HttpResponse, ApiProblem> {
    let input: UpstreamIn = json_body(&req, &body)?;
    let admin = &state.core.admin;
    let upstream = admin.create_upstream(&actor, input.into()).await?;
    Ok(json(
        StatusCode::CREATED,
        &UpstreamOut::new(&upstream, admin),
    ))
}

#[utoipa::path(get, path = "/admin/api/v1/upstreams/{id}", tag = "upstreams", params(("id" = String, Path)),
    responses((status = 200, body = UpstreamOut), (status = 401, body = Problem), (status = 403, body = Problem),
        (status = 404, body = Problem)),
    security(("bearer" = [])))]
pub async fn get_upstream(
    AdminBearer(actor): AdminBearer,
    state: web::Data<AppState>,
    id: web::Path<String>,
) -> Result<HttpResponse, ApiProblem> {
    let admin = &state.core.admin;
    let upstream = admin.upstream(&actor, &id).await?;
    Ok(json(StatusCode::OK, &UpstreamOut::new(&upstream, admin)))
}

#[utoipa::path(delete, path = "/admin/api/v1/upstreams/{id}", tag = "upstreams", params(("id" = String, Path)),
    responses((status = 204), (status = 401, body = Problem), (status = 403, body = Problem),
        (status = 404, body = Problem)),
    security(("bearer" = [])))]
pub async fn delete_upstream(
    AdminBearer(actor): AdminBearer,
    state: web::Data<AppState>,
    id: web::Path<String>,
) -> Result<HttpResponse, ApiProblem> {
    state.core.admin.delete_upstream(&actor, &id).await?;
    Ok(HttpResponse::NoContent().finish())
}

/// This resource's routes, under `/admin/api/v1`.
pub fn routes(cfg: &mut web::ServiceConfig) {
    cfg.route("/upstreams", web::get().to(list_upstreams))
        .route("/upstreams", web::post().to(create_upstream))
        .route("/upstreams/{id}", web::get().to(get_upstream))
        .route("/upstreams/{id}", web::delete().to(delete_upstream));
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn the_secret_is_never_in_debug_output_and_the_defaults_apply() {
        let input: UpstreamIn = serde_json::from_value(serde_json::json!({
            "id": "gh", "kind": "github", "name": "GitHub", "client_id": "Iv1.abc",
            "client_secret": "s3cret-value",
        }))
        .expect("a valid body");
        assert!(!format!("{input:?}").contains("s3cret-value"));
        assert!(input.jit);
        assert!(!input.trust_email);
        let spec = UpstreamSpec::from(input);
        assert_eq!(spec.client_secret, "s3cret-value");
        assert!(!format!("{spec:?}").contains("s3cret-value"));
    }

    #[test]
    fn a_secret_that_is_not_a_string_is_refused_without_being_quoted() {
        let err = serde_json::from_value::<UpstreamIn>(serde_json::json!({
            "id": "gh", "kind": "github", "name": "GitHub", "client_id": "Iv1.abc",
            "client_secret": 987654321,
        }))
        .err()
        .map(|e| e.to_string())
        .unwrap_or_default();
        assert!(err.contains("client_secret must be a string"), "{err}");
        assert!(!err.contains("987654321"), "{err}");
    }
}
