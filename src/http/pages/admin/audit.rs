//! `/admin/audit`: the audit log, newest first, filtered by kind, user, client and dates.

use actix_web::http::StatusCode;
use actix_web::{HttpResponse, web};
use askama::Template;
use serde::Deserialize;

use super::*;
use crate::domain::AuditQuery;
use crate::paths;
use crate::state::AppState;

/// Audit events per page of the audit log.
const EVENTS_PER_PAGE: u64 = 50;

struct EventRow {
    at: String,
    kind: String,
    actor: String,
    user_id: String,
    user_href: Option<String>,
    client_id: String,
    client_href: Option<String>,
    ip: String,
    detail: String,
}

#[derive(Template)]
#[template(path = "admin/audit.html")]
struct AuditPage {
    frame: Frame,
    filter: AuditFilter,
    rows: Vec<EventRow>,
    errors: Errors,
    /// The next page, older events.
    older: Option<String>,
    /// Back to the newest events (when looking at an older page).
    newest: Option<String>,
}

/// The filters as typed (dates as `YYYY-MM-DD`, UTC).
#[derive(Deserialize, Default)]
pub struct AuditFilter {
    #[serde(default)]
    kind: String,
    #[serde(default)]
    user_id: String,
    #[serde(default)]
    client_id: String,
    #[serde(default)]
    from: String,
    #[serde(default)]
    to: String,
    before: Option<String>,
}

impl AuditFilter {
    /// The filters as a query string (without `before`).
    fn query(&self) -> url::form_urlencoded::Serializer<'static, String> {
        let mut s = url::form_urlencoded::Serializer::new(String::new());
        for (k, v) in [
            ("kind", &self.kind),
            ("user_id", &self.user_id),
            ("client_id", &self.client_id),
            ("from", &self.from),
            ("to", &self.to),
        ] {
            if !v.trim().is_empty() {
                s.append_pair(k, v.trim());
            }
        }
        s
    }

    /// The store query; `to` includes its whole day.
    fn parse(&self) -> Result<AuditQuery, Vec<Invalid>> {
        let text = |s: &str| Some(s.trim().to_owned()).filter(|s| !s.is_empty());
        let mut errors = Vec::new();
        let mut day = |field: &'static str, raw: &str, days: i64| -> Option<i64> {
            let raw = raw.trim();
            if raw.is_empty() {
                return None;
            }
            match chrono::NaiveDate::parse_from_str(raw, "%Y-%m-%d") {
                Ok(d) => {
                    Some(d.and_time(chrono::NaiveTime::MIN).and_utc().timestamp() + days * 86_400)
                }
                Err(_) => {
                    errors.push(Invalid::new(field, "enter a date as YYYY-MM-DD"));
                    None
                }
            }
        };
        let from = day("from", &self.from, 0);
        let to = day("to", &self.to, 1);
        let before = match self.before.as_deref().map(str::trim) {
            None | Some("") => None,
            Some(b) => match b.parse::<i64>() {
                Ok(b) => Some(b),
                Err(_) => {
                    errors.push(Invalid::new("before", "not an event number"));
                    None
                }
            },
        };
        if !errors.is_empty() {
            return Err(errors);
        }
        Ok(AuditQuery {
            from: from.map(UnixTime::from_secs),
            to: to.map(UnixTime::from_secs),
            user_id: text(&self.user_id),
            client_id: text(&self.client_id),
            kind: text(&self.kind),
            before,
            // One more than shown: whether an older page exists.
            limit: EVENTS_PER_PAGE + 1,
        })
    }
}

pub async fn audit(
    a: Admin,
    state: web::Data<AppState>,
    filter: web::Query<AuditFilter>,
) -> HttpResponse {
    let filter = filter.into_inner();
    let result = match filter.parse() {
        Ok(q) => state.core.admin.audit_events(&a.actor, q).await,
        Err(v) => Err(AdminError::Invalid(v)),
    };
    let (mut events, errors) = match result {
        Ok(events) => (events, Errors::default()),
        Err(AdminError::Invalid(v)) => (Vec::new(), v.into()),
        Err(e) => return failure(e),
    };
    let more = events.len() as u64 > EVENTS_PER_PAGE;
    events.truncate(EVENTS_PER_PAGE as usize);
    let older = match events.last() {
        Some(last) if more => {
            let mut q = filter.query();
            q.append_pair("before", &last.id.to_string());
            Some(format!("{}?{}", paths::ADMIN_AUDIT, q.finish()))
        }
        _ => None,
    };
    let newest = filter.before.as_deref().filter(|b| !b.is_empty()).map(|_| {
        let q = filter.query().finish();
        if q.is_empty() {
            paths::ADMIN_AUDIT.to_owned()
        } else {
            format!("{}?{q}", paths::ADMIN_AUDIT)
        }
    });
    let status = if errors.is_empty() {
        StatusCode::OK
    } else {
        StatusCode::UNPROCESSABLE_ENTITY
    };
    let view = AuditPage {
        frame: a.frame("audit", None),
        rows: events
            .into_iter()
            .map(|e| EventRow {
                at: datetime(e.at),
                kind: e.kind,
                actor: e.actor.unwrap_or_default(),
                user_href: e.user_id.as_deref().map(|u| fill(paths::ADMIN_USER, u)),
                user_id: e.user_id.unwrap_or_default(),
                client_href: e.client_id.as_deref().map(|c| fill(paths::ADMIN_CLIENT, c)),
                client_id: e.client_id.unwrap_or_default(),
                ip: e.ip.unwrap_or_default(),
                detail: e.detail,
            })
            .collect(),
        filter,
        errors,
        older,
        newest,
    };
    page(status, &view, Some(&a.csrf))
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn route_parameters_are_filled_in_percent_encoded() {
        assert_eq!(fill(paths::ADMIN_USER, "a-1_b.c~"), "/admin/users/a-1_b.c~");
        assert_eq!(
            fill(paths::ADMIN_ROLE_DELETE, "a/b?c d"),
            "/admin/roles/a%2Fb%3Fc%20d/delete"
        );
    }

    #[test]
    fn the_to_date_of_the_audit_filter_includes_its_whole_day() {
        let f = AuditFilter {
            from: "2026-01-01".into(),
            to: "2026-01-01".into(),
            ..Default::default()
        };
        let q = f.parse().unwrap();
        assert_eq!(q.from.map(UnixTime::secs), Some(1_767_225_600));
        assert_eq!(q.to.map(UnixTime::secs), Some(1_767_225_600 + 86_400));
        let bad = AuditFilter {
            from: "01/02/2026".into(),
            before: Some("x".into()),
            ..Default::default()
        };
        let fields: Vec<_> = bad.parse().unwrap_err().iter().map(|e| e.field).collect();
        assert_eq!(fields, ["from", "before"]);
    }

    #[test]
    fn only_known_notice_codes_show_a_message() {
        assert!(notice(Some("roles-saved")).is_some());
        assert_eq!(notice(Some("<script>")), None);
        assert_eq!(notice(None), None);
    }
}
