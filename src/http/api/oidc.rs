//! Discovery and the JWK Set: pre-serialised bytes with `ETag` and `Cache-Control`.

use actix_web::http::header::{CACHE_CONTROL, CONTENT_TYPE, ETAG, IF_NONE_MATCH};
use actix_web::{HttpRequest, HttpResponse, web};

use crate::state::AppState;

fn cached_json(req: &HttpRequest, body: &bytes::Bytes, etag: &str, max_age: u64) -> HttpResponse {
    let cache = format!("public, max-age={max_age}");
    // RFC 9110 §13.1.2: a weak comparison of the listed tags.
    let matches = req
        .headers()
        .get(IF_NONE_MATCH)
        .and_then(|v| v.to_str().ok())
        .is_some_and(|v| {
            v.split(',')
                .any(|t| t.trim().trim_start_matches("W/") == etag || t.trim() == "*")
        });
    if matches {
        return HttpResponse::NotModified()
            .insert_header((ETAG, etag))
            .insert_header((CACHE_CONTROL, cache))
            .finish();
    }
    HttpResponse::Ok()
        .insert_header((CONTENT_TYPE, "application/json"))
        .insert_header((ETAG, etag))
        .insert_header((CACHE_CONTROL, cache))
        .body(body.clone())
}

/// OpenID Connect Discovery 1.0 §4 and RFC 8414 §3.
pub async fn discovery(req: HttpRequest, state: web::Data<AppState>) -> HttpResponse {
    cached_json(&req, &state.discovery.json, &state.discovery.etag, 3600)
}

/// RFC 7517 §5: the JWK Set, with every key whose signatures may still be presented.
pub async fn jwks(req: HttpRequest, state: web::Data<AppState>) -> HttpResponse {
    let keys = state.keys.current(&state.store, state.clock.now_ms()).await;
    let mut resp = cached_json(
        &req,
        &keys.jwks_json,
        &keys.jwks_etag,
        state.settings.keys.jwks_max_age_secs,
    );
    if resp.status().is_success() {
        resp.headers_mut().insert(
            CONTENT_TYPE,
            actix_web::http::header::HeaderValue::from_static("application/jwk-set+json"),
        );
    }
    resp
}
