//! A second Castellan as the upstream OpenID Provider of the one under test: real discovery,
//! real keys and signatures, its own login pages. The browser is two cookie jars, one per
//! server (both listen on 127.0.0.1, where a real browser would mix their same-named cookies).

use super::forms::{Form, location_abs, path_of, query_param};
use super::rp::{PASSWORD, create_client, expect_page, expect_redirect};
use super::{TestApp, browser, json_out, spawn_app};

/// The server under test, the upstream, and the provider's id at the server.
pub struct Federated {
    pub app: TestApp,
    pub idp: TestApp,
    pub id: String,
    /// The browser's cookie jar at the upstream (the app's is `app.client`).
    pub idp_browser: reqwest::Client,
}

/// The app's callback for provider `id`.
pub fn callback_of(app: &TestApp, id: &str) -> String {
    format!("{}/login/upstream/{id}/callback", app.address)
}

/// Registers `idp` at `app` as provider `id` (an `oidc` provider found by discovery), with a
/// confidential client at the idp whose redirect URI is the app's callback; `flags` are added
/// to `upstream create` (`--trust-email`, `--no-jit`). `consent`: the idp asks for consent.
pub fn register(app: &TestApp, idp: &TestApp, id: &str, flags: &[&str], consent: bool) {
    register_at(app, idp, &idp.address, id, flags, consent);
}

/// [`register`] under the issuer `issuer` (a proxy in front of the idp, or a wrong one).
pub fn register_at(
    app: &TestApp,
    idp: &TestApp,
    issuer: &str,
    id: &str,
    flags: &[&str],
    consent: bool,
) {
    let callback = callback_of(app, id);
    let mut args = vec![
        "--redirect-uri",
        callback.as_str(),
        "--scope",
        "openid profile email",
    ];
    if !consent {
        args.push("--skip-consent");
    }
    let (client_id, secret) = create_client(idp, &args);
    let secret = secret.expect("a confidential client");
    let mut up = vec![
        "upstream",
        "create",
        "--id",
        id,
        "--kind",
        "oidc",
        "--name",
        "Corp SSO",
        "--issuer",
        issuer,
        "--client-id",
        client_id.as_str(),
        "--client-secret-stdin",
        "--json",
    ];
    up.extend_from_slice(flags);
    let out = app.castellan_stdin(&up, &format!("{secret}\n"));
    assert!(
        out.status.success(),
        "upstream create: {}",
        String::from_utf8_lossy(&out.stderr)
    );
    let _ = json_out(&out);
}

pub async fn federated(flags: &[&str]) -> Federated {
    federated_with(flags, false).await
}

pub async fn federated_with(flags: &[&str], consent: bool) -> Federated {
    let app = spawn_app().await;
    let idp = spawn_app().await;
    register(&app, &idp, "corp", flags, consent);
    Federated {
        app,
        idp,
        id: "corp".into(),
        idp_browser: browser(),
    }
}

impl Federated {
    /// `GET /login/upstream/corp` at the app: asserts the redirect to the idp's authorization
    /// endpoint and returns it.
    pub async fn begin(&self, start: &str) -> String {
        let res = self
            .app
            .client
            .get(self.app.url(start))
            .send()
            .await
            .expect("begin");
        let loc = expect_redirect(&self.app, res, "the upstream start").await;
        assert!(
            loc.starts_with(&format!("{}/oauth2/authorize?", self.idp.address)),
            "the start should go to the upstream's authorization endpoint, went to {loc}"
        );
        loc
    }

    /// At the idp with the idp's browser: the authorization request, the idp's login page
    /// (when it has no session yet) with `email`, and its consent (when asked); returns where
    /// the idp sends the browser back to (the app's callback).
    pub async fn at_idp(&self, authorize: &str, email: &str) -> String {
        let c = &self.idp_browser;
        let mut loc = self.idp_get(authorize).await;
        for _ in 0..6 {
            if loc.starts_with(&format!("{}/", self.app.address)) {
                return loc;
            }
            let path = path_of(&loc);
            if path == "/login" {
                let page =
                    expect_page(c.get(&loc).send().await.expect("idp login"), "idp login").await;
                let res = Form::with_input(&page, "password")
                    .on_page(&loc)
                    .submit_with(
                        c,
                        &self.idp,
                        &[("email", email), ("password", PASSWORD)],
                        None,
                    )
                    .await;
                loc = expect_redirect(&self.idp, res, "the idp's login POST").await;
            } else if path == "/consent" {
                let page =
                    expect_page(c.get(&loc).send().await.expect("consent"), "idp consent").await;
                let res = Form::find(&page, |f| f.has_button("decision", "allow"))
                    .expect("a consent form")
                    .on_page(&loc)
                    .submit_with(c, &self.idp, &[], Some(("decision", "allow")))
                    .await;
                loc = expect_redirect(&self.idp, res, "the idp's consent").await;
            } else {
                loc = self.idp_get(&loc).await;
            }
        }
        panic!("the idp did not send the browser back: {loc}");
    }

    async fn idp_get(&self, url: &str) -> String {
        let res = self.idp_browser.get(url).send().await.expect("idp GET");
        expect_redirect(&self.idp, res, &format!("GET {url} at the idp")).await
    }

    /// The app's callback, with the app's browser.
    pub async fn callback(&self, url: &str) -> reqwest::Response {
        self.app.client.get(url).send().await.expect("callback")
    }

    /// The whole round: start, idp, callback; returns the callback's response.
    pub async fn round(&self, start: &str, email: &str) -> reqwest::Response {
        let authorize = self.begin(start).await;
        let back = self.at_idp(&authorize, email).await;
        assert!(query_param(&back, "code").is_some(), "a code: {back}");
        self.callback(&back).await
    }

    /// A round that must sign in: the callback's redirect, resolved.
    pub async fn signs_in(&self, start: &str, email: &str) -> String {
        let res = self.round(start, email).await;
        expect_redirect(&self.app, res, "the callback").await
    }
}

/// The Location of a response as an absolute URL at `app`.
pub fn loc(app: &TestApp, res: &reqwest::Response) -> String {
    location_abs(app, res)
}
