//! Static assets, compiled into the binary (no CDN, no files to deploy beside it).

use actix_web::HttpResponse;
use actix_web::http::header::{CACHE_CONTROL, CONTENT_TYPE};

const STYLESHEET: &str = include_str!("../../../static/css/castellan.css");
/// The passkey ceremonies' script, the only script the pages load.
const PASSKEYS_JS: &str = include_str!("../../../static/js/passkeys.js");

pub async fn stylesheet() -> HttpResponse {
    HttpResponse::Ok()
        .insert_header((CONTENT_TYPE, "text/css; charset=utf-8"))
        .insert_header((CACHE_CONTROL, "public, max-age=3600"))
        .body(STYLESHEET)
}

pub async fn passkeys_script() -> HttpResponse {
    HttpResponse::Ok()
        .insert_header((CONTENT_TYPE, "text/javascript; charset=utf-8"))
        .insert_header((CACHE_CONTROL, "public, max-age=3600"))
        .body(PASSKEYS_JS)
}
