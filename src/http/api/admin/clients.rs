//! `/admin/api/v1/clients`: list, create, read, replace, delete; a new secret.

use actix_web::http::StatusCode;
use actix_web::{HttpRequest, HttpResponse, web};
use serde::{Deserialize, Serialize};
use utoipa::ToSchema;

use super::{AdminBearer, ApiProblem, Problem, json, json_body};
use crate::domain::{Client, ClientSpec};
use crate::http::extractors::Then;
use crate::state::AppState;

#[derive(Debug, Serialize, ToSchema)]
pub struct ClientOut {
    pub client_id: String,
    pub name: String,
    pub public: bool,
    pub redirect_uris: Vec<String>,
    pub post_logout_redirect_uris: Vec<String>,
    pub grant_types: Vec<String>,
    pub scope: String,
    /// RFC 7591 §2 name; a confidential client without a fixed method accepts basic and post.
    pub token_endpoint_auth_method: String,
    pub skip_consent: bool,
    pub introspect_any: bool,
    /// Sign-ins to this client must use a second factor (`urn:castellan:acr:mfa`).
    pub require_mfa: bool,
    pub created_at: i64,
    /// Only in the answer that created the client or rotated its secret: shown once.
    #[serde(skip_serializing_if = "Option::is_none")]
    pub client_secret: Option<String>,
}

impl ClientOut {
    fn new(c: &Client, secret: Option<String>) -> Self {
        Self {
            client_id: c.id.as_str().to_owned(),
            name: c.name.clone(),
            public: c.public,
            redirect_uris: c.redirect_uri_texts(),
            post_logout_redirect_uris: c.post_logout_redirect_uri_texts(),
            grant_types: c.grant_type_names(),
            scope: c.scopes.to_string(),
            token_endpoint_auth_method: c.auth_method.metadata_name().to_owned(),
            skip_consent: c.skip_consent,
            introspect_any: c.introspect_any,
            require_mfa: c.require_mfa,
            created_at: c.created_at.secs(),
            client_secret: secret,
        }
    }
}

/// A client's metadata, as for `castellan client create`.
#[derive(Debug, Deserialize, ToSchema)]
#[serde(deny_unknown_fields)]
pub struct ClientIn {
    pub name: String,
    #[serde(default)]
    pub redirect_uris: Vec<String>,
    #[serde(default)]
    pub post_logout_redirect_uris: Vec<String>,
    /// Default: authorization_code and refresh_token.
    #[serde(default)]
    pub grant_types: Vec<String>,
    /// Default: "openid profile email offline_access". Only here (never through dynamic
    /// registration) can a client be allowed `admin`.
    pub scope: Option<String>,
    #[serde(default)]
    pub public: bool,
    /// client_secret_basic, client_secret_post or none.
    pub token_endpoint_auth_method: Option<String>,
    #[serde(default)]
    pub skip_consent: bool,
    #[serde(default)]
    pub introspect_any: bool,
    /// Sign-ins to this client must use a second factor: a user signed in with the password
    /// alone is asked for it, or taken to enrolment. Default: false.
    #[serde(default)]
    pub require_mfa: bool,
}

impl From<ClientIn> for ClientSpec {
    fn from(c: ClientIn) -> Self {
        ClientSpec {
            name: c.name,
            redirect_uris: c.redirect_uris,
            post_logout_redirect_uris: c.post_logout_redirect_uris,
            grant_types: c.grant_types,
            scope: c
                .scope
                .unwrap_or_else(|| "openid profile email offline_access".to_owned()),
            public: c.public,
            token_endpoint_auth_method: c.token_endpoint_auth_method,
            skip_consent: c.skip_consent,
            introspect_any: c.introspect_any,
            require_mfa: c.require_mfa,
        }
    }
}

#[derive(Debug, Serialize, ToSchema)]
pub struct ClientSecret {
    pub client_id: String,
    /// Shown once: store it now.
    pub client_secret: String,
}

#[utoipa::path(get, path = "/admin/api/v1/clients", tag = "clients",
    responses((status = 200, body = Vec<ClientOut>), (status = 401, body = Problem), (status = 403, body = Problem)),
    security(("bearer" = [])))]
pub async fn list_clients(
    AdminBearer(actor): AdminBearer,
    state: web::Data<AppState>,
) -> Result<HttpResponse, ApiProblem> {
    let clients = state.core.admin.list_clients(&actor).await?;
    let out: Vec<ClientOut> = clients.iter().map(|c| ClientOut::new(c, None)).collect();
    Ok(json(StatusCode::OK, &out))
}

#[utoipa::path(post, path = "/admin/api/v1/clients", tag = "clients", request_body = ClientIn,
    responses((status = 201, body = ClientOut), (status = 400, body = Problem), (status = 401, body = Problem),
        (status = 403, body = Problem)),
    security(("bearer" = [])))]
pub async fn create_client(
    req: HttpRequest,
    Then(AdminBearer(actor), body): Then<AdminBearer, web::Bytes>,
    state: web::Data<AppState>,
) -> Result<HttpResponse, ApiProblem> {
    let input: ClientIn = json_body(&req, &body)?;
    let spec = ClientSpec::from(input);
    let (client, secret) = state.core.admin.create_client(&actor, &spec).await?;
    Ok(json(StatusCode::CREATED, &ClientOut::new(&client, secret)))
}

#[utoipa::path(get, path = "/admin/api/v1/clients/{id}", tag = "clients", params(("id" = String, Path)),
    responses((status = 200, body = ClientOut), (status = 401, body = Problem), (status = 403, body = Problem),
        (status = 404, body = Problem)),
    security(("bearer" = [])))]
pub async fn get_client(
    AdminBearer(actor): AdminBearer,
    state: web::Data<AppState>,
    id: web::Path<String>,
) -> Result<HttpResponse, ApiProblem> {
    let client = state.core.admin.client(&actor, &id).await?;
    Ok(json(StatusCode::OK, &ClientOut::new(&client, None)))
}

#[utoipa::path(put, path = "/admin/api/v1/clients/{id}", tag = "clients", params(("id" = String, Path)),
    request_body = ClientIn,
    responses((status = 200, body = ClientOut), (status = 400, body = Problem), (status = 401, body = Problem),
        (status = 403, body = Problem), (status = 404, body = Problem)),
    security(("bearer" = [])))]
pub async fn update_client(
    req: HttpRequest,
    Then(AdminBearer(actor), body): Then<AdminBearer, web::Bytes>,
    state: web::Data<AppState>,
    id: web::Path<String>,
) -> Result<HttpResponse, ApiProblem> {
    let input: ClientIn = json_body(&req, &body)?;
    let spec = ClientSpec::from(input);
    let client = state.core.admin.update_client(&actor, &id, &spec).await?;
    Ok(json(StatusCode::OK, &ClientOut::new(&client, None)))
}

#[utoipa::path(delete, path = "/admin/api/v1/clients/{id}", tag = "clients", params(("id" = String, Path)),
    responses((status = 204), (status = 401, body = Problem), (status = 403, body = Problem),
        (status = 404, body = Problem)),
    security(("bearer" = [])))]
pub async fn delete_client(
    AdminBearer(actor): AdminBearer,
    state: web::Data<AppState>,
    id: web::Path<String>,
) -> Result<HttpResponse, ApiProblem> {
    state.core.admin.delete_client(&actor, &id).await?;
    Ok(HttpResponse::NoContent().finish())
}

#[utoipa::path(post, path = "/admin/api/v1/clients/{id}/secret", tag = "clients",
    params(("id" = String, Path)),
    responses((status = 200, body = ClientSecret), (status = 401, body = Problem), (status = 403, body = Problem),
        (status = 404, body = Problem), (status = 409, body = Problem)),
    security(("bearer" = [])))]
pub async fn rotate_client_secret(
    AdminBearer(actor): AdminBearer,
    state: web::Data<AppState>,
    id: web::Path<String>,
) -> Result<HttpResponse, ApiProblem> {
    let secret = state.core.admin.rotate_client_secret(&actor, &id).await?;
    Ok(json(
        StatusCode::OK,
        &ClientSecret {
            client_id: id.into_inner(),
            client_secret: secret,
        },
    ))
}

/// This resource's routes, under `/admin/api/v1`.
pub fn routes(cfg: &mut web::ServiceConfig) {
    cfg.route("/clients", web::get().to(list_clients))
        .route("/clients", web::post().to(create_client))
        .route("/clients/{id}", web::get().to(get_client))
        .route("/clients/{id}", web::put().to(update_client))
        .route("/clients/{id}", web::delete().to(delete_client))
        .route("/clients/{id}/secret", web::post().to(rotate_client_secret));
}
