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
/// The second step of a sign-in (a TOTP or recovery code), also the step-up page.
pub const LOGIN_SECOND_FACTOR: &str = "/login/second-factor";
/// TOTP enrolment (CONTRACT.md), removal, and a new set of recovery codes.
pub const ACCOUNT_TOTP: &str = "/account/mfa/totp";
pub const ACCOUNT_TOTP_REMOVE: &str = "/account/mfa/totp/remove";
pub const ACCOUNT_RECOVERY_CODES: &str = "/account/mfa/recovery-codes";
/// Passkeys (CONTRACT.md): the list with rename and remove forms, and registration.
pub const ACCOUNT_PASSKEYS: &str = "/account/passkeys";
/// Begins a passkey registration: the options for `navigator.credentials.create()` (JSON).
pub const ACCOUNT_PASSKEYS_OPTIONS: &str = "/account/passkeys/options";
pub const ACCOUNT_PASSKEY_RENAME: &str = "/account/passkeys/{id}/rename";
pub const ACCOUNT_PASSKEY_REMOVE: &str = "/account/passkeys/{id}/remove";
/// Removes the password of an account that has a passkey.
pub const ACCOUNT_PASSWORD_REMOVE: &str = "/account/password/remove";
/// Sign-in with a passkey alone: the options (JSON), and the answer (a form).
pub const LOGIN_PASSKEY_OPTIONS: &str = "/login/passkey/options";
pub const LOGIN_PASSKEY: &str = "/login/passkey";
/// A passkey as the second step (or step-up): the options (JSON), and the answer (a form).
pub const LOGIN_SECOND_FACTOR_PASSKEY_OPTIONS: &str = "/login/second-factor/passkey/options";
pub const LOGIN_SECOND_FACTOR_PASSKEY: &str = "/login/second-factor/passkey";
/// The passkey ceremonies' script.
pub const PASSKEYS_SCRIPT: &str = "/static/js/passkeys.js";
/// Sign-in through an upstream provider (CONTRACT.md): begins at `/login/upstream/{id}`, comes
/// back to `/login/upstream/{id}/callback` (the redirect URI registered at the provider).
pub const LOGIN_UPSTREAM: &str = "/login/upstream/{id}";
pub const LOGIN_UPSTREAM_CALLBACK: &str = "/login/upstream/{id}/callback";
/// Proves an existing account (inputs `email`, `password`) before an upstream identity is
/// linked to it.
pub const LOGIN_LINK_ACCOUNT: &str = "/login/link-account";
/// The account page's link (a form naming `upstream`) and unlink (a submit `name="unlink"`).
pub const ACCOUNT_IDENTITY_LINK: &str = "/account/identities/link";
pub const ACCOUNT_IDENTITY_UNLINK: &str = "/account/identities/unlink";
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

/// The admin pages (`http::pages::admin`), for users with the `admin` role. `{id}` and `{name}`
/// are route parameters.
pub const ADMIN: &str = "/admin";
pub const ADMIN_USERS: &str = "/admin/users";
pub const ADMIN_USER: &str = "/admin/users/{id}";
pub const ADMIN_USER_ROLES: &str = "/admin/users/{id}/roles";
pub const ADMIN_USER_STATUS: &str = "/admin/users/{id}/status";
pub const ADMIN_USER_SESSIONS_END: &str = "/admin/users/{id}/sessions/end";
pub const ADMIN_USER_PASSWORD_RESET: &str = "/admin/users/{id}/password-reset";
pub const ADMIN_USER_DELETE: &str = "/admin/users/{id}/delete";
/// Reset a user's second factors (a confirmation page, then the POST).
pub const ADMIN_USER_MFA_RESET: &str = "/admin/users/{id}/mfa-reset";
pub const ADMIN_CLIENTS: &str = "/admin/clients";
pub const ADMIN_CLIENT: &str = "/admin/clients/{id}";
pub const ADMIN_CLIENT_SECRET: &str = "/admin/clients/{id}/secret";
pub const ADMIN_CLIENT_DELETE: &str = "/admin/clients/{id}/delete";
pub const ADMIN_ROLES: &str = "/admin/roles";
pub const ADMIN_ROLE_DELETE: &str = "/admin/roles/{name}/delete";
/// Upstream identity providers: the list with the form to register one, and a delete (a
/// confirmation page, then the POST).
pub const ADMIN_UPSTREAMS: &str = "/admin/upstreams";
pub const ADMIN_UPSTREAM_DELETE: &str = "/admin/upstreams/{id}/delete";
pub const ADMIN_AUDIT: &str = "/admin/audit";
pub const ADMIN_KEYS: &str = "/admin/keys";
pub const ADMIN_KEYS_ROTATE: &str = "/admin/keys/rotate";
