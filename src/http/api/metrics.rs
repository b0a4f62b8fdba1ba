//! `/metrics`: the Prometheus text exposition format (0.0.4), optionally behind a bearer token
//! (`metrics.bearer_token`, RFC 6750 §2.1). What is exported: `services::metrics`.

use actix_web::http::header::{CACHE_CONTROL, WWW_AUTHENTICATE};
use actix_web::{HttpRequest, HttpResponse, web};

use crate::services::metrics;
use crate::state::AppState;

pub async fn scrape(req: HttpRequest, state: web::Data<AppState>) -> HttpResponse {
    if let Some(expected) = &state.settings.metrics.bearer_token {
        let presented = crate::http::support::bearer_header(&req);
        let ok = presented.is_some_and(|t| metrics::token_matches(expected, t));
        if !ok {
            // RFC 6750 §3: no credentials → no error code; wrong ones → invalid_token.
            let challenge = if presented.is_some() {
                "Bearer realm=\"metrics\", error=\"invalid_token\""
            } else {
                "Bearer realm=\"metrics\""
            };
            return HttpResponse::Unauthorized()
                .insert_header((WWW_AUTHENTICATE, challenge))
                .insert_header((CACHE_CONTROL, "no-store"))
                .finish();
        }
    }
    HttpResponse::Ok()
        .content_type(metrics::CONTENT_TYPE)
        .insert_header((CACHE_CONTROL, "no-store"))
        .body(state.core.status.metrics_text().await)
}
