//! The single route table. Paths come from [`crate::paths`], shared with discovery and tests.

use actix_web::web;

use super::api::{health, oidc};
use crate::paths;

pub fn configure(cfg: &mut web::ServiceConfig) {
    cfg.route(paths::DISCOVERY, web::get().to(oidc::discovery))
        .route(paths::OAUTH_METADATA, web::get().to(oidc::discovery))
        .route(paths::JWKS, web::get().to(oidc::jwks))
        .route(paths::HEALTHZ, web::get().to(health::healthz))
        .route(paths::READYZ, web::get().to(health::readyz))
        .service(web::scope(paths::STATIC).route(
            "/css/castellan.css",
            web::get().to(super::api::assets::stylesheet),
        ));
}

/// Unknown paths: a plain 404 page.
pub async fn not_found() -> actix_web::Result<actix_web::HttpResponse> {
    Err(crate::error::AppError::NotFound.into())
}
