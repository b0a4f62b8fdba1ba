//! Every public path, in one place: the route table, discovery, redirects and tests use these
//! constants (fixed by `CONTRACT.md`).

pub const DISCOVERY: &str = "/.well-known/openid-configuration";
pub const OAUTH_METADATA: &str = "/.well-known/oauth-authorization-server";
pub const AUTHORIZE: &str = "/oauth2/authorize";
pub const TOKEN: &str = "/oauth2/token";
pub const USERINFO: &str = "/oauth2/userinfo";
pub const JWKS: &str = "/oauth2/jwks";
pub const REVOKE: &str = "/oauth2/revoke";
pub const INTROSPECT: &str = "/oauth2/introspect";
pub const LOGOUT: &str = "/oauth2/logout";
pub const REGISTER_CLIENT: &str = "/oauth2/register";
/// RFC 7592 client configuration endpoint (`registration_client_uri`): the registration
/// endpoint followed by `/` and the client id.
pub const CLIENT_CONFIGURATION: &str = "/oauth2/register/{client_id}";
pub const HEALTHZ: &str = "/healthz";
pub const READYZ: &str = "/readyz";
pub const METRICS: &str = "/metrics";
/// The admin REST API (issue 5); its OpenAPI 3.1 document.
pub const ADMIN_API: &str = "/admin/api/v1";
pub const OPENAPI: &str = "/admin/api/openapi.json";

pub const LOGIN: &str = "/login";
pub const CONSENT: &str = "/consent";
pub const REGISTER: &str = "/register";
pub const PASSWORD_FORGOT: &str = "/password/forgot";
pub const PASSWORD_RESET: &str = "/password/reset";
pub const ACCOUNT: &str = "/account";
pub const STATIC: &str = "/static";
/// Where an emailed verification link leads.
pub const VERIFY_EMAIL: &str = "/register/verify";
/// Asks for a new verification link.
pub const RESEND_VERIFICATION: &str = "/register/resend";
