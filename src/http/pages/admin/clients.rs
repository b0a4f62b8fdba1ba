//! `/admin/clients`: the client list and the form to register one; a client's page to edit it,
//! rotate its secret and delete it.

use actix_web::http::StatusCode;
use actix_web::{HttpResponse, web};
use askama::Template;

use super::*;
use crate::domain::{AuthMethod, Client, ClientSpec, GrantType};
use crate::paths;
use crate::state::AppState;

struct ClientRow {
    href: String,
    id: String,
    name: String,
    public: bool,
    grants: String,
    scope: String,
}

struct Check {
    value: &'static str,
    checked: bool,
}

struct Choice {
    value: &'static str,
    label: &'static str,
    selected: bool,
}

/// The client form, blank, prefilled from a client, or as submitted.
struct ClientForm {
    action: String,
    submit: &'static str,
    /// Editing: a client cannot switch between public and confidential.
    editing: bool,
    name: String,
    redirect_uris: String,
    post_logout_redirect_uris: String,
    public: bool,
    grant_types: Vec<Check>,
    scope: String,
    auth_methods: Vec<Choice>,
    skip_consent: bool,
    introspect_any: bool,
    require_mfa: bool,
}

const AUTH_METHODS: [(&str, &str); 4] = [
    (
        "",
        "Default: client_secret_basic or client_secret_post (none for a public client)",
    ),
    ("client_secret_basic", "client_secret_basic only"),
    ("client_secret_post", "client_secret_post only"),
    ("none", "none (a public client, with PKCE)"),
];

impl ClientForm {
    fn build(action: String, editing: bool, spec: &ClientSpec) -> Self {
        let method = spec.token_endpoint_auth_method.as_deref().unwrap_or("");
        ClientForm {
            action,
            submit: if editing { "Save" } else { "Create the client" },
            editing,
            name: spec.name.clone(),
            redirect_uris: spec.redirect_uris.join("\n"),
            post_logout_redirect_uris: spec.post_logout_redirect_uris.join("\n"),
            public: spec.public,
            grant_types: GrantType::ALL
                .into_iter()
                .map(|g| Check {
                    value: g.as_str(),
                    checked: spec.grant_types.iter().any(|s| s == g.as_str()),
                })
                .collect(),
            scope: spec.scope.clone(),
            auth_methods: AUTH_METHODS
                .into_iter()
                .map(|(value, label)| Choice {
                    value,
                    label,
                    selected: value == method,
                })
                .collect(),
            skip_consent: spec.skip_consent,
            introspect_any: spec.introspect_any,
            require_mfa: spec.require_mfa,
        }
    }

    /// A new client: the defaults of `castellan client create`.
    fn blank() -> Self {
        let spec = ClientSpec {
            grant_types: vec!["authorization_code".into(), "refresh_token".into()],
            scope: "openid profile email".into(),
            ..Default::default()
        };
        Self::build(paths::ADMIN_CLIENTS.to_owned(), false, &spec)
    }
}

/// A registered client as the form describes it.
fn spec_of(c: &Client) -> ClientSpec {
    let method = match c.auth_method {
        AuthMethod::SecretBasicOrPost => None,
        AuthMethod::None if c.public => None,
        m => Some(m.metadata_name().to_owned()),
    };
    ClientSpec {
        name: c.name.clone(),
        redirect_uris: c.redirect_uri_texts(),
        post_logout_redirect_uris: c.post_logout_redirect_uri_texts(),
        grant_types: c.grant_type_names(),
        scope: c.scopes.to_string(),
        public: c.public,
        token_endpoint_auth_method: method,
        skip_consent: c.skip_consent,
        introspect_any: c.introspect_any,
        require_mfa: c.require_mfa,
    }
}

/// The submitted client form; URIs one per line, scope tokens separated by any white space.
fn spec_from(f: &Fields) -> ClientSpec {
    let lines = |name: &str| -> Vec<String> {
        f.text(name)
            .lines()
            .map(str::trim)
            .filter(|l| !l.is_empty())
            .map(str::to_owned)
            .collect()
    };
    ClientSpec {
        name: f.text("name"),
        redirect_uris: lines("redirect_uris"),
        post_logout_redirect_uris: lines("post_logout_redirect_uris"),
        grant_types: f.all("grant_types"),
        scope: f
            .text("scope")
            .split_whitespace()
            .collect::<Vec<_>>()
            .join(" "),
        public: f.flag("public"),
        token_endpoint_auth_method: f
            .one("token_endpoint_auth_method")
            .filter(|m| !m.is_empty())
            .map(str::to_owned),
        skip_consent: f.flag("skip_consent"),
        introspect_any: f.flag("introspect_any"),
        require_mfa: f.flag("require_mfa"),
    }
}

#[derive(Template)]
#[template(path = "admin/clients.html")]
struct ClientsPage {
    frame: Frame,
    rows: Vec<ClientRow>,
    form: ClientForm,
    errors: Errors,
}

async fn render_clients(
    state: &AppState,
    a: &Admin,
    status: StatusCode,
    frame: Frame,
    form: ClientForm,
    errors: Errors,
) -> HttpResponse {
    let clients = match state.core.admin.list_clients(&a.actor).await {
        Ok(c) => c,
        Err(e) => return failure(e),
    };
    let view = ClientsPage {
        frame,
        rows: clients
            .into_iter()
            .map(|c| ClientRow {
                href: fill(paths::ADMIN_CLIENT, c.id.as_str()),
                id: c.id.as_str().to_owned(),
                grants: c.grant_type_names().join(" "),
                scope: c.scopes.to_string(),
                public: c.public,
                name: c.name,
            })
            .collect(),
        form,
        errors,
    };
    page(status, &view, Some(&a.csrf))
}

pub async fn clients(
    a: Admin,
    state: web::Data<AppState>,
    q: web::Query<NoticeQuery>,
) -> HttpResponse {
    let frame = a.frame("clients", notice(q.notice.as_deref()));
    render_clients(
        &state,
        &a,
        StatusCode::OK,
        frame,
        ClientForm::blank(),
        Errors::default(),
    )
    .await
}

#[derive(Template)]
#[template(path = "admin/secret.html")]
struct SecretPage<'a> {
    frame: Frame,
    title: &'a str,
    client_id: &'a str,
    client_name: &'a str,
    secret: Option<&'a str>,
    href: String,
}

/// The one time a client secret is shown: rendered into this response (no redirect, so never in
/// a URL), `Cache-Control: no-store` like every page.
fn secret_page(a: &Admin, title: &str, client: &Client, secret: Option<&str>) -> HttpResponse {
    let view = SecretPage {
        frame: a.frame("clients", None),
        title,
        client_id: client.id.as_str(),
        client_name: &client.name,
        secret,
        href: fill(paths::ADMIN_CLIENT, client.id.as_str()),
    };
    page(StatusCode::OK, &view, Some(&a.csrf))
}

pub async fn client_create(Then(a, form): AdminPost, state: web::Data<AppState>) -> HttpResponse {
    let form = Fields(form.into_inner());
    let spec = spec_from(&form);
    match state.core.admin.create_client(&a.actor, &spec).await {
        Ok((client, secret)) => secret_page(&a, "Client created", &client, secret.as_deref()),
        Err(AdminError::Invalid(v)) => {
            let form = ClientForm::build(paths::ADMIN_CLIENTS.to_owned(), false, &spec);
            let frame = a.frame("clients", None);
            let status = StatusCode::UNPROCESSABLE_ENTITY;
            render_clients(&state, &a, status, frame, form, v.into()).await
        }
        Err(AdminError::Conflict(m) | AdminError::Refused(m)) => {
            let form = ClientForm::build(paths::ADMIN_CLIENTS.to_owned(), false, &spec);
            let mut frame = a.frame("clients", None);
            frame.error = Some(m);
            render_clients(
                &state,
                &a,
                StatusCode::CONFLICT,
                frame,
                form,
                Errors::default(),
            )
            .await
        }
        Err(e) => failure(e),
    }
}

#[derive(Template)]
#[template(path = "admin/client.html")]
struct ClientPage {
    frame: Frame,
    id: String,
    name: String,
    public: bool,
    require_mfa: bool,
    created: String,
    form: ClientForm,
    errors: Errors,
    rotate: String,
    delete: String,
    audit: String,
}

/// The client page; `submitted` keeps the values of a refused form.
async fn render_client(
    state: &AppState,
    a: &Admin,
    id: &str,
    status: StatusCode,
    frame: Frame,
    submitted: Option<(ClientSpec, Errors)>,
) -> HttpResponse {
    let client = match state.core.admin.client(&a.actor, id).await {
        Ok(c) => c,
        Err(e) => return failure(e),
    };
    let cid = client.id.as_str();
    let (spec, errors) = submitted.unwrap_or_else(|| (spec_of(&client), Errors::default()));
    let view = ClientPage {
        frame,
        form: ClientForm::build(
            fill(paths::ADMIN_CLIENT, cid),
            true,
            &ClientSpec {
                // Fixed for the life of a client.
                public: client.public,
                ..spec
            },
        ),
        errors,
        rotate: fill(paths::ADMIN_CLIENT_SECRET, cid),
        delete: fill(paths::ADMIN_CLIENT_DELETE, cid),
        audit: format!(
            "{}?{}",
            paths::ADMIN_AUDIT,
            url::form_urlencoded::Serializer::new(String::new())
                .append_pair("client_id", cid)
                .finish()
        ),
        id: cid.to_owned(),
        public: client.public,
        require_mfa: client.require_mfa,
        created: datetime(client.created_at),
        name: client.name,
    };
    page(status, &view, Some(&a.csrf))
}

pub async fn client(
    a: Admin,
    state: web::Data<AppState>,
    id: web::Path<String>,
    q: web::Query<NoticeQuery>,
) -> HttpResponse {
    let frame = a.frame("clients", notice(q.notice.as_deref()));
    render_client(&state, &a, &id, StatusCode::OK, frame, None).await
}

pub async fn client_update(
    Then(a, form): AdminPost,
    state: web::Data<AppState>,
    id: web::Path<String>,
) -> HttpResponse {
    let form = Fields(form.into_inner());
    let spec = spec_from(&form);
    match state.core.admin.update_client(&a.actor, &id, &spec).await {
        Ok(_) => with_notice(&fill(paths::ADMIN_CLIENT, &id), "client-saved"),
        Err(AdminError::Invalid(v)) => {
            let frame = a.frame("clients", None);
            let status = StatusCode::UNPROCESSABLE_ENTITY;
            render_client(&state, &a, &id, status, frame, Some((spec, v.into()))).await
        }
        Err(AdminError::Conflict(m) | AdminError::Refused(m)) => {
            let mut frame = a.frame("clients", None);
            frame.error = Some(m);
            let submitted = Some((spec, Errors::default()));
            render_client(&state, &a, &id, StatusCode::CONFLICT, frame, submitted).await
        }
        Err(e) => failure(e),
    }
}

pub async fn client_rotate_secret(
    Then(a, _): AdminPost,
    state: web::Data<AppState>,
    id: web::Path<String>,
) -> HttpResponse {
    let secret = match state.core.admin.rotate_client_secret(&a.actor, &id).await {
        Ok(s) => s,
        Err(AdminError::Conflict(m) | AdminError::Refused(m)) => {
            let mut frame = a.frame("clients", None);
            frame.error = Some(m);
            return render_client(&state, &a, &id, StatusCode::CONFLICT, frame, None).await;
        }
        Err(e) => return failure(e),
    };
    match state.core.admin.client(&a.actor, &id).await {
        Ok(client) => secret_page(&a, "New client secret", &client, Some(&secret)),
        Err(e) => failure(e),
    }
}

pub async fn client_delete_confirm(
    a: Admin,
    state: web::Data<AppState>,
    id: web::Path<String>,
) -> HttpResponse {
    let client = match state.core.admin.client(&a.actor, &id).await {
        Ok(c) => c,
        Err(e) => return failure(e),
    };
    let subject = format!("{} ({})", client.name, client.id);
    let view = ConfirmPage {
        frame: a.frame("clients", None),
        title: "Delete this client?",
        subject: &subject,
        consequence: "Its tokens stop working and its users' consents go with it. This cannot \
                      be undone.",
        action: fill(paths::ADMIN_CLIENT_DELETE, client.id.as_str()),
        button: "Delete the client",
        cancel: fill(paths::ADMIN_CLIENT, client.id.as_str()),
    };
    page(StatusCode::OK, &view, Some(&a.csrf))
}

pub async fn client_delete(
    Then(a, _): AdminPost,
    state: web::Data<AppState>,
    id: web::Path<String>,
) -> HttpResponse {
    match state.core.admin.delete_client(&a.actor, &id).await {
        Ok(()) => with_notice(paths::ADMIN_CLIENTS, "client-deleted"),
        Err(e) => failure(e),
    }
}
