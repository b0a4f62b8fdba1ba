//! An HTTP proxy in front of a server, which can spoil one thing on the way back: the
//! signature of the ID token in a token response (`/oauth2/token`). The server behind it is
//! started with the proxy's address as its issuer, so everything a relying party reaches
//! (discovery, keys, the authorization and token endpoints) goes through the proxy.

use std::net::TcpListener;
use std::sync::Arc;
use std::sync::atomic::{AtomicBool, Ordering};

use actix_web::http::StatusCode;
use actix_web::http::header::{HeaderName, HeaderValue};
use actix_web::{App, HttpRequest, HttpResponse, HttpServer, web};

struct St {
    target: String,
    client: reqwest::Client,
    spoil: Arc<AtomicBool>,
}

pub struct Tamper {
    pub address: String,
    spoil: Arc<AtomicBool>,
    handle: actix_web::dev::ServerHandle,
}

impl Drop for Tamper {
    fn drop(&mut self) {
        drop(self.handle.stop(false));
    }
}

/// A listener for the proxy, bound first so the server behind it can be given its address.
pub fn bind() -> (TcpListener, String) {
    let l = TcpListener::bind("127.0.0.1:0").expect("bind");
    let a = format!("http://127.0.0.1:{}", l.local_addr().expect("addr").port());
    (l, a)
}

impl Tamper {
    pub fn start(listener: TcpListener, address: String, target: &str) -> Tamper {
        let spoil = Arc::new(AtomicBool::new(false));
        let st = web::Data::new(St {
            target: target.to_owned(),
            client: reqwest::Client::builder()
                .redirect(reqwest::redirect::Policy::none())
                .build()
                .expect("client"),
            spoil: spoil.clone(),
        });
        let server = HttpServer::new(move || {
            App::new()
                .app_data(st.clone())
                .default_service(web::to(forward))
        })
        .workers(1)
        .listen(listener)
        .expect("listen")
        .run();
        let handle = server.handle();
        tokio::spawn(server);
        Tamper {
            address,
            spoil,
            handle,
        }
    }

    /// From now on, ID tokens come back with a spoiled signature.
    pub fn spoil_id_tokens(&self) {
        self.spoil.store(true, Ordering::SeqCst);
    }
}

async fn forward(req: HttpRequest, body: web::Bytes, st: web::Data<St>) -> HttpResponse {
    let path = req.uri().path_and_query().map_or("/", |p| p.as_str());
    let method = reqwest::Method::from_bytes(req.method().as_str().as_bytes()).expect("method");
    let mut out = st.client.request(method, format!("{}{path}", st.target));
    for (k, v) in req.headers() {
        if k != "host" && k != "content-length" {
            out = out.header(k.as_str(), v.as_bytes());
        }
    }
    let res = match out.body(body.to_vec()).send().await {
        Ok(r) => r,
        Err(e) => return HttpResponse::BadGateway().body(e.to_string()),
    };
    let status = StatusCode::from_u16(res.status().as_u16()).expect("status");
    let headers: Vec<(String, Vec<u8>)> = res
        .headers()
        .iter()
        .filter(|(k, _)| {
            !matches!(
                k.as_str(),
                "content-length" | "transfer-encoding" | "connection"
            )
        })
        .map(|(k, v)| (k.as_str().to_owned(), v.as_bytes().to_vec()))
        .collect();
    let mut bytes = res.bytes().await.map(|b| b.to_vec()).unwrap_or_default();
    if st.spoil.load(Ordering::SeqCst) && req.path() == "/oauth2/token" {
        let mut json: serde_json::Value = serde_json::from_slice(&bytes).expect("a token response");
        if let Some(t) = json["id_token"].as_str() {
            let (head, sig) = t.rsplit_once('.').expect("a JWS");
            let mut sig: Vec<char> = sig.chars().collect();
            sig[0] = if sig[0] == 'A' { 'B' } else { 'A' };
            json["id_token"] = format!("{head}.{}", sig.into_iter().collect::<String>()).into();
        }
        bytes = serde_json::to_vec(&json).expect("json");
    }
    let mut resp = HttpResponse::build(status);
    for (k, v) in headers {
        if let (Ok(k), Ok(v)) = (
            HeaderName::from_bytes(k.as_bytes()),
            HeaderValue::from_bytes(&v),
        ) {
            resp.append_header((k, v));
        }
    }
    resp.body(bytes)
}
