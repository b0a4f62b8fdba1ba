//! The single route table. Paths come from [`crate::paths`], shared with discovery and tests.

use actix_web::web;

use super::api::{admin, health, metrics as metrics_api, oauth, oidc, registration};
use super::pages::{
    account, consent, home, login, logout, mfa, passkeys, password, register, second_factor,
    upstream,
};
use crate::paths;
// Named apart from `api::admin` (the admin REST API).
use super::pages::admin as admin_pages;

pub fn configure(cfg: &mut web::ServiceConfig) {
    for path in super::middleware::CORS_PATHS {
        cfg.route(
            path,
            web::method(actix_web::http::Method::OPTIONS).to(super::middleware::preflight),
        );
    }
    cfg.route(paths::DISCOVERY, web::get().to(oidc::discovery))
        .route(paths::OAUTH_METADATA, web::get().to(oidc::discovery))
        .route(paths::JWKS, web::get().to(oidc::jwks))
        .route(paths::AUTHORIZE, web::get().to(oauth::authorize_get))
        .route(paths::AUTHORIZE, web::post().to(oauth::authorize_post))
        .route(paths::TOKEN, web::post().to(oauth::token))
        .route(paths::REVOKE, web::post().to(oauth::revoke))
        .route(paths::INTROSPECT, web::post().to(oauth::introspect))
        .route(paths::USERINFO, web::get().to(oidc::userinfo))
        .route(paths::USERINFO, web::post().to(oidc::userinfo))
        .route(paths::LOGOUT, web::get().to(logout::get))
        .route(paths::LOGOUT, web::post().to(logout::post))
        .route(paths::LOGIN, web::get().to(login::show))
        .route(paths::LOGIN, web::post().to(login::submit))
        .route(
            paths::LOGIN_SECOND_FACTOR,
            web::get().to(second_factor::show),
        )
        .route(
            paths::LOGIN_SECOND_FACTOR,
            web::post().to(second_factor::submit),
        )
        .route(
            paths::LOGIN_PASSKEY_OPTIONS,
            web::post().to(passkeys::sign_in_options),
        )
        .route(paths::LOGIN_PASSKEY, web::post().to(passkeys::sign_in))
        .route(paths::LOGIN_UPSTREAM, web::get().to(upstream::begin))
        .route(
            paths::LOGIN_UPSTREAM_CALLBACK,
            web::get().to(upstream::callback),
        )
        .route(
            paths::LOGIN_LINK_ACCOUNT,
            web::get().to(upstream::link_page),
        )
        .route(paths::LOGIN_LINK_ACCOUNT, web::post().to(upstream::prove))
        .route(paths::ACCOUNT_IDENTITY_LINK, web::post().to(upstream::link))
        .route(
            paths::ACCOUNT_IDENTITY_UNLINK,
            web::post().to(upstream::unlink),
        )
        .route(
            paths::LOGIN_SECOND_FACTOR_PASSKEY_OPTIONS,
            web::post().to(passkeys::second_factor_options),
        )
        .route(
            paths::LOGIN_SECOND_FACTOR_PASSKEY,
            web::post().to(passkeys::second_factor),
        )
        .route(paths::ACCOUNT_PASSKEYS, web::get().to(passkeys::show))
        .route(paths::ACCOUNT_PASSKEYS, web::post().to(passkeys::register))
        .route(
            paths::ACCOUNT_PASSKEYS_OPTIONS,
            web::post().to(passkeys::register_options),
        )
        .route(
            paths::ACCOUNT_PASSKEY_RENAME,
            web::post().to(passkeys::rename),
        )
        .route(
            paths::ACCOUNT_PASSKEY_REMOVE,
            web::post().to(passkeys::remove),
        )
        .route(
            paths::ACCOUNT_PASSWORD_REMOVE,
            web::post().to(passkeys::remove_password),
        )
        .route(paths::ACCOUNT_TOTP, web::get().to(mfa::show))
        .route(paths::ACCOUNT_TOTP, web::post().to(mfa::confirm))
        .route(paths::ACCOUNT_TOTP_REMOVE, web::post().to(mfa::remove))
        .route(
            paths::ACCOUNT_RECOVERY_CODES,
            web::post().to(mfa::regenerate),
        )
        .route(paths::CONSENT, web::get().to(consent::show))
        .route(paths::CONSENT, web::post().to(consent::submit))
        .route(paths::REGISTER, web::get().to(register::show))
        .route(paths::REGISTER, web::post().to(register::submit))
        .route(paths::VERIFY_EMAIL, web::get().to(register::verify))
        .route(
            paths::RESEND_VERIFICATION,
            web::get().to(register::resend_form),
        )
        .route(paths::RESEND_VERIFICATION, web::post().to(register::resend))
        .route(paths::PASSWORD_FORGOT, web::get().to(password::forgot_form))
        .route(paths::PASSWORD_FORGOT, web::post().to(password::forgot))
        .route(paths::PASSWORD_RESET, web::get().to(password::reset_form))
        .route(paths::PASSWORD_RESET, web::post().to(password::reset))
        .route(paths::ACCOUNT, web::get().to(account::show))
        .route("/account/profile", web::post().to(account::profile))
        .route("/account/email", web::post().to(account::email))
        .route("/account/password", web::post().to(account::password))
        .route(
            "/account/sessions/end",
            web::post().to(account::end_session),
        )
        .route(
            "/account/sessions/end-all",
            web::post().to(account::end_all),
        )
        .route("/account/apps/revoke", web::post().to(account::revoke_app))
        // RFC 7591 / RFC 7592, with a bounded body; they answer 404 while the mode is off.
        .service(
            web::resource(paths::REGISTER_CLIENT)
                .app_data(web::PayloadConfig::new(registration::MAX_BODY))
                .route(web::post().to(registration::register)),
        )
        .service(
            web::resource(paths::CLIENT_CONFIGURATION)
                .app_data(web::PayloadConfig::new(registration::MAX_BODY))
                .route(web::get().to(registration::read))
                .route(web::put().to(registration::update))
                .route(web::delete().to(registration::delete)),
        )
        .route("/", web::get().to(home::show))
        .configure(admin::configure)
        .route(paths::HEALTHZ, web::get().to(health::healthz))
        .route(paths::READYZ, web::get().to(health::readyz))
        // The admin pages (issue 5).
        .route(paths::ADMIN, web::get().to(admin_pages::index))
        .route(paths::ADMIN_USERS, web::get().to(admin_pages::users::users))
        .route(paths::ADMIN_USER, web::get().to(admin_pages::users::user))
        .route(
            paths::ADMIN_USER_ROLES,
            web::post().to(admin_pages::users::user_roles),
        )
        .route(
            paths::ADMIN_USER_STATUS,
            web::post().to(admin_pages::users::user_status),
        )
        .route(
            paths::ADMIN_USER_SESSIONS_END,
            web::post().to(admin_pages::users::user_end_sessions),
        )
        .route(
            paths::ADMIN_USER_PASSWORD_RESET,
            web::post().to(admin_pages::users::user_password_reset),
        )
        .route(
            paths::ADMIN_USER_MFA_RESET,
            web::get().to(admin_pages::users::user_mfa_reset_confirm),
        )
        .route(
            paths::ADMIN_USER_MFA_RESET,
            web::post().to(admin_pages::users::user_mfa_reset),
        )
        .route(
            paths::ADMIN_USER_DELETE,
            web::get().to(admin_pages::users::user_delete_confirm),
        )
        .route(
            paths::ADMIN_USER_DELETE,
            web::post().to(admin_pages::users::user_delete),
        )
        .route(
            paths::ADMIN_CLIENTS,
            web::get().to(admin_pages::clients::clients),
        )
        .route(
            paths::ADMIN_CLIENTS,
            web::post().to(admin_pages::clients::client_create),
        )
        .route(
            paths::ADMIN_CLIENT,
            web::get().to(admin_pages::clients::client),
        )
        .route(
            paths::ADMIN_CLIENT,
            web::post().to(admin_pages::clients::client_update),
        )
        .route(
            paths::ADMIN_CLIENT_SECRET,
            web::post().to(admin_pages::clients::client_rotate_secret),
        )
        .route(
            paths::ADMIN_CLIENT_DELETE,
            web::get().to(admin_pages::clients::client_delete_confirm),
        )
        .route(
            paths::ADMIN_CLIENT_DELETE,
            web::post().to(admin_pages::clients::client_delete),
        )
        .route(paths::ADMIN_ROLES, web::get().to(admin_pages::roles::roles))
        .route(
            paths::ADMIN_ROLES,
            web::post().to(admin_pages::roles::role_create),
        )
        .route(
            paths::ADMIN_ROLE_DELETE,
            web::post().to(admin_pages::roles::role_delete),
        )
        .route(
            paths::ADMIN_UPSTREAMS,
            web::get().to(admin_pages::upstreams::upstreams),
        )
        .route(
            paths::ADMIN_UPSTREAMS,
            web::post().to(admin_pages::upstreams::upstream_create),
        )
        .route(
            paths::ADMIN_UPSTREAM_DELETE,
            web::get().to(admin_pages::upstreams::upstream_delete_confirm),
        )
        .route(
            paths::ADMIN_UPSTREAM_DELETE,
            web::post().to(admin_pages::upstreams::upstream_delete),
        )
        .route(paths::ADMIN_AUDIT, web::get().to(admin_pages::audit::audit))
        .route(paths::ADMIN_KEYS, web::get().to(admin_pages::keys::keys))
        .route(
            paths::ADMIN_KEYS_ROTATE,
            web::post().to(admin_pages::keys::key_rotate),
        )
        .service(
            web::scope(paths::STATIC)
                .route(
                    "/css/castellan.css",
                    web::get().to(super::api::assets::stylesheet),
                )
                .route(
                    "/js/passkeys.js",
                    web::get().to(super::api::assets::passkeys_script),
                ),
        );
}

/// `/metrics`: registered on the main listener, or alone on the metrics listener (by
/// `startup`, following `[metrics]`).
pub fn metrics(cfg: &mut web::ServiceConfig) {
    cfg.route(paths::METRICS, web::get().to(metrics_api::scrape));
}

/// Unknown paths: a plain 404 page.
pub async fn not_found() -> actix_web::Result<actix_web::HttpResponse> {
    Err(crate::error::AppError::NotFound.into())
}
