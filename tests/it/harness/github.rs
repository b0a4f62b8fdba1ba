//! A stand-in for the parts of GitHub that Castellan calls (github.com cannot be reached from
//! here), answering as GitHub documents them:
//!
//! - `GET /login/oauth/authorize` ("Authorizing OAuth apps"): the person is signed in at
//!   "GitHub" and has authorized the app already, so the browser goes straight back to the
//!   `redirect_uri` with `code` and `state`. The PKCE challenge is kept with the code.
//! - `POST /login/oauth/access_token`: `client_id`, `client_secret`, `code`, `redirect_uri`,
//!   `code_verifier` in a form body; with `Accept: application/json` a JSON answer. A bad code
//!   or secret is answered as GitHub does: HTTP 200 with an `error` member.
//! - `GET /user` and `GET /user/emails` (REST API): a `Bearer` token, and a `User-Agent`
//!   (GitHub refuses requests without one with 403).

use std::collections::HashMap;
use std::net::TcpListener;
use std::sync::{Arc, Mutex};

use actix_web::{App, HttpRequest, HttpResponse, HttpServer, web};
use base64::Engine;
use sha2::Digest;

pub const CLIENT_ID: &str = "Iv1.stand-in-client";
pub const CLIENT_SECRET: &str = "stand-in-github-secret";

/// The GitHub account the stand-in signs in: `emails` as (address, primary, verified).
#[derive(Clone)]
pub struct GithubUser {
    pub id: u64,
    pub login: String,
    pub name: Option<String>,
    pub emails: Vec<(String, bool, bool)>,
}

#[derive(Default)]
struct State {
    user: Option<GithubUser>,
    /// code → (PKCE challenge, redirect_uri)
    codes: HashMap<String, (Option<String>, String)>,
    /// access token → user
    tokens: HashMap<String, GithubUser>,
    /// Every request's path, for the tests to look at.
    seen: Vec<String>,
    /// `/user` answers with a redirect elsewhere (a client must not follow it).
    redirect_user: bool,
}

pub struct Github {
    pub address: String,
    state: Arc<Mutex<State>>,
    handle: actix_web::dev::ServerHandle,
}

impl Drop for Github {
    fn drop(&mut self) {
        drop(self.handle.stop(false));
    }
}

impl Github {
    pub async fn start() -> Github {
        let listener = TcpListener::bind("127.0.0.1:0").expect("bind");
        let address = format!(
            "http://127.0.0.1:{}",
            listener.local_addr().expect("addr").port()
        );
        let state = Arc::new(Mutex::new(State::default()));
        let data = web::Data::from(state.clone());
        let server = HttpServer::new(move || {
            App::new()
                .app_data(data.clone())
                .route("/login/oauth/authorize", web::get().to(authorize))
                .route("/login/oauth/access_token", web::post().to(access_token))
                .route("/user", web::get().to(user))
                .route("/user/emails", web::get().to(emails))
        })
        .workers(1)
        .listen(listener)
        .expect("listen")
        .run();
        let handle = server.handle();
        tokio::spawn(server);
        Github {
            address,
            state,
            handle,
        }
    }

    /// Who is signed in at "GitHub" from now on.
    pub fn sign_in_as(&self, user: GithubUser) {
        self.state.lock().expect("lock").user = Some(user);
    }

    /// From now on `/user` answers `302 Found` to another host.
    pub fn redirect_user(&self) {
        self.state.lock().expect("lock").redirect_user = true;
    }

    pub fn seen(&self) -> Vec<String> {
        self.state.lock().expect("lock").seen.clone()
    }
}

type Shared = web::Data<Mutex<State>>;

fn random() -> String {
    base64::engine::general_purpose::URL_SAFE_NO_PAD.encode(uuid::Uuid::new_v4().as_bytes())
}

async fn authorize(
    req: HttpRequest,
    st: Shared,
    q: web::Query<HashMap<String, String>>,
) -> HttpResponse {
    let mut s = st.lock().expect("lock");
    s.seen.push(req.uri().to_string());
    let (Some(redirect), Some(state)) = (q.get("redirect_uri"), q.get("state")) else {
        return HttpResponse::BadRequest().body("redirect_uri and state are required");
    };
    if q.get("client_id").map(String::as_str) != Some(CLIENT_ID) {
        return HttpResponse::NotFound().body("unknown client");
    }
    if q.get("code_challenge_method").is_some_and(|m| m != "S256") {
        return HttpResponse::BadRequest().body("S256 only");
    }
    let code = random();
    s.codes.insert(
        code.clone(),
        (q.get("code_challenge").cloned(), redirect.clone()),
    );
    let sep = if redirect.contains('?') { '&' } else { '?' };
    let back = format!(
        "{redirect}{sep}code={code}&state={}",
        url::form_urlencoded::byte_serialize(state.as_bytes()).collect::<String>()
    );
    HttpResponse::Found()
        .insert_header(("Location", back))
        .finish()
}

async fn access_token(
    req: HttpRequest,
    st: Shared,
    form: web::Form<HashMap<String, String>>,
) -> HttpResponse {
    let mut s = st.lock().expect("lock");
    s.seen.push(req.uri().to_string());
    let error =
        |e: &str| HttpResponse::Ok().json(serde_json::json!({"error": e, "error_description": e}));
    if form.get("client_id").map(String::as_str) != Some(CLIENT_ID)
        || form.get("client_secret").map(String::as_str) != Some(CLIENT_SECRET)
    {
        return error("incorrect_client_credentials");
    }
    let Some((challenge, redirect)) = form.get("code").and_then(|c| s.codes.remove(c)) else {
        return error("bad_verification_code");
    };
    if form.get("redirect_uri").is_some_and(|r| r != &redirect) {
        return error("redirect_uri_mismatch");
    }
    if let Some(challenge) = challenge {
        let verifier = form.get("code_verifier").cloned().unwrap_or_default();
        let computed = base64::engine::general_purpose::URL_SAFE_NO_PAD
            .encode(sha2::Sha256::digest(verifier.as_bytes()));
        if computed != challenge {
            return error("bad_verification_code");
        }
    }
    let Some(user) = s.user.clone() else {
        return error("bad_verification_code");
    };
    let token = format!("gho_{}", random());
    s.tokens.insert(token.clone(), user);
    HttpResponse::Ok().json(serde_json::json!({
        "access_token": token,
        "token_type": "bearer",
        "scope": "read:user,user:email",
    }))
}

fn caller(req: &HttpRequest, s: &State) -> Result<GithubUser, Box<HttpResponse>> {
    if req.headers().get("user-agent").is_none() {
        return Err(Box::new(HttpResponse::Forbidden().body("Request forbidden by administrative rules. Please make sure your request has a User-Agent header")));
    }
    let token = req
        .headers()
        .get("authorization")
        .and_then(|h| h.to_str().ok())
        .and_then(|h| {
            h.strip_prefix("Bearer ")
                .or_else(|| h.strip_prefix("token "))
        })
        .unwrap_or_default();
    s.tokens.get(token).cloned().ok_or_else(|| {
        Box::new(
            HttpResponse::Unauthorized().json(serde_json::json!({"message": "Bad credentials"})),
        )
    })
}

async fn user(req: HttpRequest, st: Shared) -> HttpResponse {
    let mut s = st.lock().expect("lock");
    s.seen.push(req.uri().to_string());
    if s.redirect_user {
        return HttpResponse::Found()
            .insert_header(("Location", "http://127.0.0.1:9/user"))
            .finish();
    }
    match caller(&req, &s) {
        Ok(u) => HttpResponse::Ok().json(serde_json::json!({
            "id": u.id,
            "login": u.login,
            "name": u.name,
            // The public profile email: often null; never used by Castellan.
            "email": null,
        })),
        Err(r) => *r,
    }
}

async fn emails(req: HttpRequest, st: Shared) -> HttpResponse {
    let mut s = st.lock().expect("lock");
    s.seen.push(req.uri().to_string());
    match caller(&req, &s) {
        Ok(u) => HttpResponse::Ok().json(
            u.emails
                .iter()
                .map(|(email, primary, verified)| {
                    serde_json::json!({
                        "email": email,
                        "primary": primary,
                        "verified": verified,
                        "visibility": if *primary { Some("private") } else { None },
                    })
                })
                .collect::<Vec<_>>(),
        ),
        Err(r) => *r,
    }
}
