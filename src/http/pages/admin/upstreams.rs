//! `/admin/upstreams`: the upstream identity providers (issue 18), each with the redirect URI
//! to register at it, the form to register one, and a delete behind a confirmation page. The
//! client secret typed into the form is never rendered back, not even into a refused form.

use actix_web::http::StatusCode;
use actix_web::{HttpResponse, web};
use askama::Template;

use super::*;
use crate::domain::upstream::UpstreamSpec;
use crate::paths;
use crate::state::AppState;

struct UpstreamRow {
    id: String,
    name: String,
    kind: &'static str,
    issuer: String,
    client_id: String,
    scope: String,
    jit: bool,
    trust_email: bool,
    secret_sealed: bool,
    redirect_uri: String,
    created: String,
    delete: String,
}

struct Choice {
    value: &'static str,
    label: &'static str,
    selected: bool,
}

const KINDS: [(&str, &str); 3] = [
    (
        "oidc",
        "OpenID Connect provider (by its issuer's discovery document)",
    ),
    ("github", "GitHub"),
    ("google", "Google"),
];

/// The registration form, blank or as submitted: everything but the client secret.
struct UpstreamForm {
    id: String,
    kinds: Vec<Choice>,
    name: String,
    issuer: String,
    client_id: String,
    scope: String,
    jit: bool,
    trust_email: bool,
}

impl UpstreamForm {
    fn build(spec: &UpstreamSpec) -> Self {
        UpstreamForm {
            id: spec.id.clone(),
            kinds: KINDS
                .into_iter()
                .map(|(value, label)| Choice {
                    value,
                    label,
                    selected: value == spec.kind,
                })
                .collect(),
            name: spec.name.clone(),
            issuer: spec.issuer.clone().unwrap_or_default(),
            client_id: spec.client_id.clone(),
            scope: spec.scope.clone().unwrap_or_default(),
            jit: spec.jit,
            trust_email: spec.trust_email,
        }
    }

    /// A new provider: the defaults of `castellan upstream create` (an OpenID provider, with
    /// just-in-time accounts).
    fn blank() -> Self {
        Self::build(&UpstreamSpec {
            id: String::new(),
            kind: "oidc".into(),
            name: String::new(),
            issuer: None,
            client_id: String::new(),
            client_secret: String::new(),
            scope: None,
            jit: true,
            trust_email: false,
        })
    }
}

/// The submitted form; an empty issuer or scope is left out (the kind's default applies).
fn spec_from(f: &Fields) -> UpstreamSpec {
    let optional = |name: &str| {
        f.one(name)
            .map(str::trim)
            .filter(|v| !v.is_empty())
            .map(str::to_owned)
    };
    UpstreamSpec {
        id: f.text("id"),
        kind: f.text("kind"),
        name: f.text("name"),
        issuer: optional("issuer"),
        client_id: f.text("client_id"),
        client_secret: f.text("client_secret"),
        scope: optional("scope"),
        jit: f.flag("jit"),
        trust_email: f.flag("trust_email"),
    }
}

#[derive(Template)]
#[template(path = "admin/upstreams.html")]
struct UpstreamsPage {
    frame: Frame,
    rows: Vec<UpstreamRow>,
    form: UpstreamForm,
    errors: Errors,
}

async fn render_upstreams(
    state: &AppState,
    a: &Admin,
    status: StatusCode,
    frame: Frame,
    form: UpstreamForm,
    errors: Errors,
) -> HttpResponse {
    let admin = &state.core.admin;
    let upstreams = match admin.list_upstreams(&a.actor).await {
        Ok(u) => u,
        Err(e) => return failure(e),
    };
    let view = UpstreamsPage {
        frame,
        rows: upstreams
            .into_iter()
            .map(|u| UpstreamRow {
                redirect_uri: admin.upstream_redirect_uri(&u),
                delete: fill(paths::ADMIN_UPSTREAM_DELETE, &u.id),
                created: datetime(u.created_at),
                kind: u.kind.as_str(),
                issuer: u.issuer.unwrap_or_default(),
                jit: u.jit,
                trust_email: u.trust_email,
                secret_sealed: u.secret_sealed,
                id: u.id,
                name: u.name,
                client_id: u.client_id,
                scope: u.scope,
            })
            .collect(),
        form,
        errors,
    };
    page(status, &view, Some(&a.csrf))
}

pub async fn upstreams(
    a: Admin,
    state: web::Data<AppState>,
    q: web::Query<NoticeQuery>,
) -> HttpResponse {
    let frame = a.frame("upstreams", notice(q.notice.as_deref()));
    render_upstreams(
        &state,
        &a,
        StatusCode::OK,
        frame,
        UpstreamForm::blank(),
        Errors::default(),
    )
    .await
}

pub async fn upstream_create(Then(a, form): AdminPost, state: web::Data<AppState>) -> HttpResponse {
    let spec = spec_from(&Fields(form.into_inner()));
    // What goes back into a refused form: the spec without its secret.
    let kept = UpstreamForm::build(&spec);
    match state.core.admin.create_upstream(&a.actor, spec).await {
        Ok(_) => with_notice(paths::ADMIN_UPSTREAMS, "upstream-created"),
        Err(AdminError::Invalid(v)) => {
            let frame = a.frame("upstreams", None);
            let status = StatusCode::UNPROCESSABLE_ENTITY;
            render_upstreams(&state, &a, status, frame, kept, v.into()).await
        }
        Err(AdminError::Conflict(m) | AdminError::Refused(m)) => {
            let mut frame = a.frame("upstreams", None);
            frame.error = Some(m);
            let status = StatusCode::CONFLICT;
            render_upstreams(&state, &a, status, frame, kept, Errors::default()).await
        }
        Err(e) => failure(e),
    }
}

pub async fn upstream_delete_confirm(
    a: Admin,
    state: web::Data<AppState>,
    id: web::Path<String>,
) -> HttpResponse {
    let upstream = match state.core.admin.upstream(&a.actor, &id).await {
        Ok(u) => u,
        Err(e) => return failure(e),
    };
    let subject = format!("{} ({})", upstream.name, upstream.id);
    let view = ConfirmPage {
        frame: a.frame("upstreams", None),
        title: "Delete this upstream provider?",
        subject: &subject,
        consequence: "Nobody can sign in through it any more, and its stored client secret is \
                      deleted. This cannot be undone.",
        action: fill(paths::ADMIN_UPSTREAM_DELETE, &upstream.id),
        button: "Delete the upstream provider",
        cancel: paths::ADMIN_UPSTREAMS.to_owned(),
    };
    page(StatusCode::OK, &view, Some(&a.csrf))
}

pub async fn upstream_delete(
    Then(a, _): AdminPost,
    state: web::Data<AppState>,
    id: web::Path<String>,
) -> HttpResponse {
    match state.core.admin.delete_upstream(&a.actor, &id).await {
        Ok(()) => with_notice(paths::ADMIN_UPSTREAMS, "upstream-deleted"),
        Err(e) => failure(e),
    }
}
