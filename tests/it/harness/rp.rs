//! A relying party built on the `openidconnect` crate (an independent implementation), the
//! browser path through the hosted pages done by hand, raw protocol requests for the error
//! cases the crate hides, and CLI shortcuts to create users and clients.

use openidconnect::core::{
    CoreAuthenticationFlow, CoreClient, CoreErrorResponseType, CoreIdTokenClaims,
    CoreProviderMetadata, CoreTokenIntrospectionResponse, CoreTokenResponse, CoreUserInfoClaims,
};
use openidconnect::{
    AccessToken, AccessTokenHash, AuthorizationCode, ClientId, ClientSecret, CsrfToken,
    EndpointMaybeSet, EndpointNotSet, EndpointSet, HttpClientError, IntrospectionUrl, IssuerUrl,
    Nonce, OAuth2TokenResponse, PkceCodeChallenge, PkceCodeVerifier, RedirectUrl, RefreshToken,
    RequestTokenError, RevocationUrl, Scope, StandardErrorResponse, SubjectIdentifier,
    TokenResponse,
};

use super::forms::{Form, location_abs, path_of, query_param};
use super::{TestApp, json_out};

pub type RpClient = CoreClient<
    EndpointSet,      // authorization
    EndpointNotSet,   // device authorization
    EndpointSet,      // introspection
    EndpointSet,      // revocation
    EndpointMaybeSet, // token
    EndpointMaybeSet, // userinfo
>;

pub type TokenError = RequestTokenError<
    HttpClientError<openidconnect::reqwest::Error>,
    StandardErrorResponse<CoreErrorResponseType>,
>;

/// The password every test user gets unless a test says otherwise.
pub const PASSWORD: &str = "correct horse battery staple";

/// The RP's back channel: no cookies, no redirects followed.
pub fn rp_http() -> openidconnect::reqwest::Client {
    super::tls_provider();
    openidconnect::reqwest::Client::builder()
        .redirect(openidconnect::reqwest::redirect::Policy::none())
        .build()
        .expect("http client")
}

pub struct Rp {
    pub client: RpClient,
    pub http: openidconnect::reqwest::Client,
    pub client_id: String,
    pub client_secret: Option<String>,
    pub redirect_uri: String,
    pub issuer: String,
}

/// What an authorization request leaves the RP to remember.
pub struct AuthRequest {
    pub url: String,
    pub state: CsrfToken,
    pub nonce: Nonce,
    pub pkce_verifier: Option<PkceCodeVerifier>,
}

impl Rp {
    /// OpenID Connect Discovery with the crate, then a client from the provider metadata; the
    /// revocation and introspection endpoints are read from the same discovery document.
    pub async fn discover(
        app: &TestApp,
        client_id: &str,
        client_secret: Option<&str>,
        redirect_uri: &str,
    ) -> Rp {
        let http = rp_http();
        let metadata = CoreProviderMetadata::discover_async(
            IssuerUrl::new(app.address.clone()).expect("issuer"),
            &http,
        )
        .await
        .unwrap_or_else(|e| panic!("discovery with the openidconnect crate failed: {e:?}"));
        let raw: serde_json::Value = http
            .get(app.url("/.well-known/openid-configuration"))
            .send()
            .await
            .expect("discovery")
            .json()
            .await
            .expect("discovery JSON");
        let revocation = raw["revocation_endpoint"]
            .as_str()
            .unwrap_or_else(|| panic!("discovery lacks revocation_endpoint: {raw}"));
        let introspection = raw["introspection_endpoint"]
            .as_str()
            .unwrap_or_else(|| panic!("discovery lacks introspection_endpoint: {raw}"));
        let client = CoreClient::from_provider_metadata(
            metadata,
            ClientId::new(client_id.to_owned()),
            client_secret.map(|s| ClientSecret::new(s.to_owned())),
        )
        .set_redirect_uri(RedirectUrl::new(redirect_uri.to_owned()).expect("redirect uri"))
        .set_revocation_url(RevocationUrl::new(revocation.to_owned()).expect("revocation url"))
        .set_introspection_url(
            IntrospectionUrl::new(introspection.to_owned()).expect("introspection url"),
        );
        Rp {
            client,
            http,
            client_id: client_id.to_owned(),
            client_secret: client_secret.map(str::to_owned),
            redirect_uri: redirect_uri.to_owned(),
            issuer: app.address.clone(),
        }
    }

    /// An authorization request (response_type=code, `openid` added by the crate, random
    /// `state` and `nonce`, PKCE S256 when `pkce`).
    pub fn authorize_url(
        &self,
        scopes: &[&str],
        pkce: bool,
    ) -> (String, CsrfToken, Nonce, Option<PkceCodeVerifier>) {
        let r = self.authorize(scopes, pkce, &[]);
        (r.url, r.state, r.nonce, r.pkce_verifier)
    }

    /// Same, with extra parameters (`prompt`, `max_age`, `response_mode`, ...).
    pub fn authorize(&self, scopes: &[&str], pkce: bool, extra: &[(&str, &str)]) -> AuthRequest {
        self.authorize_impl(&self.client, scopes, pkce, extra)
    }

    /// A plain OAuth 2.0 request: the crate does not add `openid`.
    pub fn authorize_without_openid(&self, scopes: &[&str], pkce: bool) -> AuthRequest {
        let client = self.client.clone().disable_openid_scope();
        self.authorize_impl(&client, scopes, pkce, &[])
    }

    fn authorize_impl(
        &self,
        client: &RpClient,
        scopes: &[&str],
        pkce: bool,
        extra: &[(&str, &str)],
    ) -> AuthRequest {
        let mut req = client.authorize_url(
            CoreAuthenticationFlow::AuthorizationCode,
            CsrfToken::new_random,
            Nonce::new_random,
        );
        for s in scopes {
            req = req.add_scope(Scope::new((*s).to_owned()));
        }
        for (k, v) in extra {
            req = req.add_extra_param((*k).to_owned(), (*v).to_owned());
        }
        let mut pkce_verifier = None;
        if pkce {
            let (challenge, verifier) = PkceCodeChallenge::new_random_sha256();
            req = req.set_pkce_challenge(challenge);
            pkce_verifier = Some(verifier);
        }
        let (url, state, nonce) = req.url();
        AuthRequest {
            url: url.to_string(),
            state,
            nonce,
            pkce_verifier,
        }
    }

    pub async fn try_exchange_code(
        &self,
        code: &str,
        verifier: Option<PkceCodeVerifier>,
    ) -> Result<CoreTokenResponse, TokenError> {
        let mut req = self
            .client
            .exchange_code(AuthorizationCode::new(code.to_owned()))
            .expect("a token endpoint");
        if let Some(v) = verifier {
            req = req.set_pkce_verifier(v);
        }
        req.request_async(&self.http).await
    }

    pub async fn exchange_code(
        &self,
        code: &str,
        verifier: Option<PkceCodeVerifier>,
    ) -> CoreTokenResponse {
        self.try_exchange_code(code, verifier)
            .await
            .unwrap_or_else(|e| panic!("code exchange failed: {}", describe(&e)))
    }

    /// Verifies the ID token with the crate's own verifier (signature via the JWKS, `iss`,
    /// `aud`, `exp`, `nonce`) and, when present, `at_hash` against the access token.
    pub fn verify_id_token(&self, tokens: &CoreTokenResponse, nonce: &Nonce) -> CoreIdTokenClaims {
        let id_token = tokens
            .id_token()
            .expect("the token response has an id_token");
        let verifier = self.client.id_token_verifier();
        let claims = id_token
            .claims(&verifier, nonce)
            .unwrap_or_else(|e| panic!("the ID token does not verify: {e:?}\n{id_token}"))
            .clone();
        if let Some(expected) = claims.access_token_hash() {
            let actual = AccessTokenHash::from_token(
                tokens.access_token(),
                id_token.signing_alg().expect("signing alg"),
                id_token.signing_key(&verifier).expect("signing key"),
            )
            .expect("hash the access token");
            assert_eq!(&actual, expected, "at_hash does not match the access token");
        }
        claims
    }

    pub async fn try_userinfo(
        &self,
        access_token: &str,
        expected_sub: Option<&str>,
    ) -> Result<CoreUserInfoClaims, String> {
        self.client
            .user_info(
                AccessToken::new(access_token.to_owned()),
                expected_sub.map(|s| SubjectIdentifier::new(s.to_owned())),
            )
            .expect("a userinfo endpoint")
            .request_async(&self.http)
            .await
            .map_err(|e| format!("{e:?}"))
    }

    pub async fn userinfo(
        &self,
        access_token: &str,
        expected_sub: Option<&str>,
    ) -> CoreUserInfoClaims {
        self.try_userinfo(access_token, expected_sub)
            .await
            .unwrap_or_else(|e| panic!("userinfo failed: {e}"))
    }

    pub async fn refresh(&self, refresh_token: &str) -> Result<CoreTokenResponse, TokenError> {
        self.refresh_with_scopes(refresh_token, &[]).await
    }

    pub async fn refresh_with_scopes(
        &self,
        refresh_token: &str,
        scopes: &[&str],
    ) -> Result<CoreTokenResponse, TokenError> {
        let rt = RefreshToken::new(refresh_token.to_owned());
        let mut req = self
            .client
            .exchange_refresh_token(&rt)
            .expect("a token endpoint");
        for s in scopes {
            req = req.add_scope(Scope::new((*s).to_owned()));
        }
        req.request_async(&self.http).await
    }

    /// RFC 7009. The crate refuses a non-https revocation URL (`InsecureUrl`), so this posts
    /// by hand to the advertised endpoint with the client's authentication; `Ok` only on 200.
    pub async fn revoke(&self, token: &str, token_type_hint: Option<&str>) -> Result<(), String> {
        let mut form = vec![("token", token)];
        if let Some(hint) = token_type_hint {
            form.push(("token_type_hint", hint));
        }
        let mut req = self.http.post(self.client.revocation_url().as_str());
        match &self.client_secret {
            Some(secret) => req = req.header("authorization", basic_auth(&self.client_id, secret)),
            None => form.push(("client_id", &self.client_id)),
        }
        let body = url::form_urlencoded::Serializer::new(String::new())
            .extend_pairs(form)
            .finish();
        let res = req
            .header("content-type", "application/x-www-form-urlencoded")
            .body(body)
            .send()
            .await
            .map_err(|e| e.to_string())?;
        let raw = Raw::from(res).await;
        if raw.status == 200 {
            Ok(())
        } else {
            Err(format!("revocation answered {}: {}", raw.status, raw.text))
        }
    }

    pub async fn revoke_refresh_token(&self, refresh_token: &str) -> Result<(), String> {
        self.revoke(refresh_token, Some("refresh_token")).await
    }

    /// RFC 7662 through the crate.
    pub async fn introspect(&self, token: &str) -> CoreTokenIntrospectionResponse {
        let t = AccessToken::new(token.to_owned());
        self.client
            .introspect(&t)
            .request_async(&self.http)
            .await
            .unwrap_or_else(|e| panic!("introspection failed: {e:?}"))
    }

    /// How this client authenticates at the token endpoint in raw requests.
    pub fn auth(&self) -> Auth<'_> {
        match &self.client_secret {
            Some(s) => Auth::Basic(&self.client_id, s),
            None => Auth::ClientId(&self.client_id),
        }
    }
}

/// The OAuth error code of a failed token request, if the server answered with one.
pub fn error_code(e: &TokenError) -> Option<String> {
    match e {
        RequestTokenError::ServerResponse(r) => Some(r.error().as_ref().to_owned()),
        _ => None,
    }
}

pub fn describe(e: &TokenError) -> String {
    match e {
        RequestTokenError::ServerResponse(r) => format!("server said {r:?}"),
        RequestTokenError::Parse(err, body) => {
            format!(
                "unparsable response ({err}): {}",
                String::from_utf8_lossy(body)
            )
        }
        other => format!("{other:?}"),
    }
}

/// Asserts that a token request failed with `code`.
pub fn assert_token_error<T: std::fmt::Debug>(
    result: Result<T, TokenError>,
    code: &str,
    what: &str,
) {
    match result {
        Ok(t) => panic!("{what}: expected {code}, got a token response {t:?}"),
        Err(e) => assert_eq!(
            error_code(&e).as_deref(),
            Some(code),
            "{what}: {}",
            describe(&e)
        ),
    }
}

// ---------------------------------------------------------------------------------------------
// The browser path, by hand.

/// GET with the app's browser client (cookies kept, no redirects followed).
pub async fn browse(app: &TestApp, url: &str) -> reqwest::Response {
    app.client
        .get(super::forms::resolve_against(&app.url("/"), url))
        .send()
        .await
        .unwrap_or_else(|e| panic!("GET {url}: {e}"))
}

/// Asserts a 302/303 and returns its Location resolved against the app's address.
pub async fn expect_redirect(app: &TestApp, res: reqwest::Response, step: &str) -> String {
    let status = res.status().as_u16();
    if status == 302 || status == 303 {
        return location_abs(app, &res);
    }
    let body = res.text().await.unwrap_or_default();
    panic!("{step}: expected a 302/303 redirect, got {status}:\n{body}");
}

/// Asserts a 200 and returns the body.
pub async fn expect_page(res: reqwest::Response, step: &str) -> String {
    let status = res.status().as_u16();
    let location = res
        .headers()
        .get("location")
        .map(|l| l.to_str().unwrap_or_default().to_owned());
    let body = res.text().await.unwrap_or_default();
    assert_eq!(
        status, 200,
        "{step}: expected a page (Location: {location:?}):\n{body}"
    );
    body
}

/// Whether a URL is on the app (absolute on its address, or relative).
pub fn is_internal(app: &TestApp, url: &str) -> bool {
    url.starts_with('/') || url.starts_with(&format!("{}/", app.address)) || url == app.address
}

/// Whether a Location points at the login page.
pub fn is_login_page(app: &TestApp, url: &str) -> bool {
    is_internal(app, url) && path_of(url) == "/login"
}

/// GET the authorization request with no session: asserts the redirect to the login page and
/// returns its URL.
pub async fn start_login(app: &TestApp, authorize_url: &str) -> String {
    let res = browse(app, authorize_url).await;
    let loc = expect_redirect(app, res, "authorization request without a session").await;
    assert!(
        is_login_page(app, &loc),
        "the authorization request should send the browser to /login, went to {loc}"
    );
    loc
}

/// GET the login page, fill `email` and `password` (plus every hidden input), POST it; returns
/// the login page and the response.
pub async fn post_login(
    app: &TestApp,
    login_url: &str,
    email: &str,
    password: &str,
) -> reqwest::Response {
    let page = expect_page(browse(app, login_url).await, "the login page").await;
    let form = Form::with_input(&page, "password").on_page(login_url);
    assert!(
        form.has("email"),
        "the login form has an email input: {form:?}"
    );
    form.submit(app, &[("email", email), ("password", password)], None)
        .await
}

/// Logs in from the login page; asserts the redirect back to the authorization endpoint and
/// returns it.
pub async fn submit_login(app: &TestApp, login_url: &str, email: &str, password: &str) -> String {
    let res = post_login(app, login_url, email, password).await;
    let loc = expect_redirect(app, res, "the login POST").await;
    assert!(
        is_internal(app, &loc) && path_of(&loc) == "/oauth2/authorize",
        "after login the browser should go back to /oauth2/authorize, went to {loc}"
    );
    loc
}

/// GET the consent page, click `decision`; returns where the POST redirects to.
pub async fn submit_consent(app: &TestApp, consent_url: &str, decision: &str) -> String {
    let page = expect_page(browse(app, consent_url).await, "the consent page").await;
    let form = Form::find(&page, |f| f.has_button("decision", decision))
        .unwrap_or_else(|| panic!("no form with a decision={decision} button:\n{page}"))
        .on_page(consent_url);
    let res = form.submit(app, &[], Some(("decision", decision))).await;
    expect_redirect(app, res, &format!("the consent POST ({decision})")).await
}

/// The whole browser path from an authorization request to the redirect back to the client:
/// authorize → /login → POST → authorize → (/consent → allow → authorize) → redirect_uri.
/// `consent` says whether the consent page must appear (and be accepted). Returns the final
/// Location (on the client's redirect URI).
pub async fn login_through_pages_location(
    app: &TestApp,
    authorize_url: &str,
    email: &str,
    password: &str,
    consent: bool,
) -> String {
    let login_url = start_login(app, authorize_url).await;
    let back = submit_login(app, &login_url, email, password).await;
    let mut loc = expect_redirect(app, browse(app, &back).await, "authorization after login").await;
    let at_consent = is_internal(app, &loc) && path_of(&loc) == "/consent";
    if consent {
        assert!(at_consent, "expected the consent page, went to {loc}");
        let back = submit_consent(app, &loc, "allow").await;
        assert!(
            is_internal(app, &back) && path_of(&back) == "/oauth2/authorize",
            "after consent the browser should go back to /oauth2/authorize, went to {back}"
        );
        loc = expect_redirect(app, browse(app, &back).await, "authorization after consent").await;
    } else {
        assert!(!at_consent, "the consent page was not expected here: {loc}");
    }
    assert_back_at_client(app, authorize_url, &loc);
    loc
}

/// Same, returning the authorization code.
pub async fn login_through_pages(
    app: &TestApp,
    authorize_url: &str,
    email: &str,
    password: &str,
    consent: bool,
) -> String {
    let loc = login_through_pages_location(app, authorize_url, email, password, consent).await;
    code_of(&loc)
}

/// An authorization request answered at once (live session, consent given): the redirect to
/// the client.
pub async fn authorize_with_session(app: &TestApp, authorize_url: &str) -> String {
    let loc = expect_redirect(
        app,
        browse(app, authorize_url).await,
        "authorization with a live session",
    )
    .await;
    assert_back_at_client(app, authorize_url, &loc);
    loc
}

fn assert_back_at_client(app: &TestApp, authorize_url: &str, loc: &str) {
    match query_param(authorize_url, "redirect_uri") {
        Some(redirect_uri) => assert!(
            loc.starts_with(&format!("{redirect_uri}?")),
            "expected the redirect to {redirect_uri}, went to {loc}"
        ),
        None => assert!(
            !is_internal(app, loc),
            "expected a redirect to the client, went to {loc}"
        ),
    }
}

/// The `code` of a redirect back to the client; panics showing `error` otherwise.
pub fn code_of(loc: &str) -> String {
    query_param(loc, "code").unwrap_or_else(|| {
        panic!(
            "no code in the redirect (error={:?}, description={:?}): {loc}",
            query_param(loc, "error"),
            query_param(loc, "error_description")
        )
    })
}

// ---------------------------------------------------------------------------------------------
// Raw protocol requests.

/// How a raw request authenticates the client.
#[derive(Debug, Clone, Copy)]
pub enum Auth<'a> {
    None,
    /// `client_secret_basic`: HTTP Basic with form-urlencoded id and secret (RFC 6749 §2.3.1).
    Basic(&'a str, &'a str),
    /// `client_secret_post`: `client_id` and `client_secret` in the body.
    Post(&'a str, &'a str),
    /// A public client: `client_id` in the body.
    ClientId(&'a str),
}

pub fn basic_auth(id: &str, secret: &str) -> String {
    use base64::Engine;
    let enc = |s: &str| url::form_urlencoded::byte_serialize(s.as_bytes()).collect::<String>();
    format!(
        "Basic {}",
        base64::engine::general_purpose::STANDARD.encode(format!("{}:{}", enc(id), enc(secret)))
    )
}

/// A raw response: status, headers, body, and the body as JSON (`Null` when it is not).
#[derive(Debug)]
pub struct Raw {
    pub status: u16,
    pub headers: reqwest::header::HeaderMap,
    pub text: String,
    pub json: serde_json::Value,
}

impl Raw {
    pub async fn from(res: reqwest::Response) -> Raw {
        let status = res.status().as_u16();
        let headers = res.headers().clone();
        let text = res.text().await.unwrap_or_default();
        let json = serde_json::from_str(&text).unwrap_or(serde_json::Value::Null);
        Raw {
            status,
            headers,
            text,
            json,
        }
    }

    pub fn header(&self, name: &str) -> Option<String> {
        self.headers
            .get(name)
            .map(|v| v.to_str().unwrap_or_default().to_owned())
    }

    /// Asserts an RFC 6749 §5.2 error: status, `Cache-Control: no-store`, a JSON content
    /// type and `error` (plus `error_description`, when present, a string).
    pub fn assert_oauth_error(&self, status: u16, error: &str) {
        assert_eq!(
            (self.status, self.json["error"].as_str()),
            (status, Some(error)),
            "expected {status} {error}, got {} {}",
            self.status,
            self.text
        );
        assert!(
            self.header("content-type")
                .is_some_and(|c| c.starts_with("application/json")),
            "error responses are JSON: {:?}",
            self.header("content-type")
        );
        assert!(
            self.json
                .get("error_description")
                .is_none_or(|d| d.is_string()),
            "error_description is a string: {}",
            self.text
        );
    }

    pub fn assert_no_store(&self) {
        let cc = self.header("cache-control").unwrap_or_default();
        assert!(
            cc.to_ascii_lowercase().contains("no-store"),
            "expected Cache-Control: no-store, got {cc:?} (status {}, {})",
            self.status,
            self.text
        );
    }
}

/// POSTs an application/x-www-form-urlencoded body (pairs as given, duplicates kept).
pub async fn post_form(app: &TestApp, path: &str, auth: Auth<'_>, form: &[(&str, &str)]) -> Raw {
    let mut pairs: Vec<(&str, &str)> = form.to_vec();
    let mut req = rp_http().post(app.url(path));
    match auth {
        Auth::None => {}
        Auth::Basic(id, secret) => req = req.header("authorization", basic_auth(id, secret)),
        Auth::Post(id, secret) => {
            pairs.push(("client_id", id));
            pairs.push(("client_secret", secret));
        }
        Auth::ClientId(id) => pairs.push(("client_id", id)),
    }
    let body = url::form_urlencoded::Serializer::new(String::new())
        .extend_pairs(pairs)
        .finish();
    let res = req
        .header("content-type", "application/x-www-form-urlencoded")
        .body(body)
        .send()
        .await
        .unwrap_or_else(|e| panic!("POST {path}: {e}"));
    Raw::from(res).await
}

/// A token request whose response is checked for `Cache-Control: no-store` (every one must
/// have it, success or error).
pub async fn token_request(app: &TestApp, auth: Auth<'_>, form: &[(&str, &str)]) -> Raw {
    let raw = post_form(app, "/oauth2/token", auth, form).await;
    raw.assert_no_store();
    raw
}

/// GET the UserInfo endpoint with a bearer token.
pub async fn userinfo_raw(app: &TestApp, access_token: Option<&str>) -> Raw {
    let mut req = rp_http().get(app.url("/oauth2/userinfo"));
    if let Some(t) = access_token {
        req = req.bearer_auth(t);
    }
    Raw::from(req.send().await.expect("userinfo")).await
}

pub async fn introspect_raw(app: &TestApp, auth: Auth<'_>, token: &str) -> Raw {
    post_form(app, "/oauth2/introspect", auth, &[("token", token)]).await
}

pub async fn revoke_raw(app: &TestApp, auth: Auth<'_>, token: &str) -> Raw {
    post_form(app, "/oauth2/revoke", auth, &[("token", token)]).await
}

// ---------------------------------------------------------------------------------------------
// CLI shortcuts.

/// `user create` through the CLI; returns the user's id.
pub fn create_user(app: &TestApp, email: &str, password: &str) -> String {
    create_user_named(app, email, "Test User", password)
}

pub fn create_user_named(app: &TestApp, email: &str, name: &str, password: &str) -> String {
    let out = json_out(&app.castellan_stdin(
        &[
            "user",
            "create",
            "--email",
            email,
            "--name",
            name,
            "--password-stdin",
            "--json",
        ],
        &format!("{password}\n"),
    ));
    out["id"]
        .as_str()
        .unwrap_or_else(|| panic!("user create --json has no id: {out}"))
        .to_owned()
}

/// `client create ARGS --json` through the CLI (a `--name` is added when none is given);
/// returns the client id and, for a confidential client, its secret.
pub fn create_client(app: &TestApp, args: &[&str]) -> (String, Option<String>) {
    let mut full = vec!["client", "create"];
    if !args.contains(&"--name") {
        full.extend(["--name", "Test client"]);
    }
    full.extend_from_slice(args);
    full.push("--json");
    let out = json_out(&app.castellan(&full));
    let id = out["client_id"]
        .as_str()
        .unwrap_or_else(|| panic!("client create --json has no client_id: {out}"))
        .to_owned();
    let secret = out["client_secret"].as_str().map(str::to_owned);
    (id, secret)
}

// ---------------------------------------------------------------------------------------------
// Common set-ups.

/// Where test clients are sent back to (nothing listens: tests read the Location only).
pub const REDIRECT_URI: &str = "http://127.0.0.1:9/cb";
pub const POST_LOGOUT_URI: &str = "http://127.0.0.1:9/bye";
pub const ALL_SCOPES: &str = "openid profile email offline_access";

/// A confidential client with every scope, a user, and an RP for the client.
pub async fn confidential_rp(app: &TestApp, extra_client_args: &[&str]) -> Rp {
    let mut args = vec![
        "--redirect-uri",
        REDIRECT_URI,
        "--post-logout-redirect-uri",
        POST_LOGOUT_URI,
        "--scope",
        ALL_SCOPES,
    ];
    args.extend_from_slice(extra_client_args);
    let (id, secret) = create_client(app, &args);
    let secret = secret.expect("a confidential client has a secret");
    Rp::discover(app, &id, Some(&secret), REDIRECT_URI).await
}

/// Tokens from a completed browser flow, with what the RP kept.
pub struct Signed {
    pub tokens: CoreTokenResponse,
    pub nonce: Nonce,
}

impl Signed {
    pub fn access_token(&self) -> String {
        self.tokens.access_token().secret().clone()
    }
    pub fn refresh_token(&self) -> String {
        self.tokens
            .refresh_token()
            .expect("a refresh token (offline_access was asked)")
            .secret()
            .clone()
    }
    pub fn id_token(&self) -> String {
        self.tokens.id_token().expect("an ID token").to_string()
    }
}

/// Browser flow through the pages (login, and consent when `consent`) then the code exchange.
pub async fn sign_in(
    app: &TestApp,
    rp: &Rp,
    email: &str,
    scopes: &[&str],
    consent: bool,
) -> Signed {
    let (url, _state, nonce, verifier) = rp.authorize_url(scopes, true);
    let code = login_through_pages(app, &url, email, PASSWORD, consent).await;
    let tokens = rp.exchange_code(&code, verifier).await;
    Signed { tokens, nonce }
}

/// `sign_in` for another user in the same browser: `prompt=login` makes the server ask again,
/// and the new login replaces the browser's session.
pub async fn sign_in_as(
    app: &TestApp,
    rp: &Rp,
    email: &str,
    scopes: &[&str],
    consent: bool,
) -> Signed {
    let (url, _state, nonce, verifier) = rp.authorize_url(scopes, true);
    let url = format!("{url}&prompt=login");
    let code = login_through_pages(app, &url, email, PASSWORD, consent).await;
    let tokens = rp.exchange_code(&code, verifier).await;
    Signed { tokens, nonce }
}

/// Another authorization for an RP whose user already has a session and gave consent.
pub async fn sign_in_again(app: &TestApp, rp: &Rp, scopes: &[&str]) -> Signed {
    let (url, _state, nonce, verifier) = rp.authorize_url(scopes, true);
    let loc = authorize_with_session(app, &url).await;
    let tokens = rp.exchange_code(&code_of(&loc), verifier).await;
    Signed { tokens, nonce }
}
