//! The HTTP server inside the daemon: the service endpoints (`/healthz`,
//! `/metrics`) and the organizers' dashboard, all on the one `[web] listen`
//! address of PRODUCT.md.
//!
//! This module owns the listener, the route table and the hand-over of the
//! current [`App`] across SIGHUP reloads (the listener lives as long as the
//! daemon; every request reads the newest `App`, so a reload that adds a web
//! user or a conference takes effect without dropping a connection). Pages and
//! endpoints live in submodules, one per page. No pipeline logic lives here:
//! handlers read through the storage layer and write through the same library
//! functions the CLI calls.

use std::net::SocketAddr;
use std::sync::{Arc, OnceLock};

use anyhow::Context as _;
use axum::Router;
use axum::http::{StatusCode, header};
use axum::middleware::from_fn_with_state;
use axum::response::{Html, IntoResponse, Response};
use axum::routing::{get, post};
use tokio::net::TcpListener;
use tokio::sync::watch;
use tracing::{error, info};

use crate::app::App;
use crate::config::{Conference, WebConfig};
use crate::health::Health;

mod attendee;
mod attendees;
pub mod auth;
mod broadcast;
mod exports;
pub mod i18n;
mod login;
mod outbox;
mod overview;
mod review;
mod signin;
#[cfg(test)]
mod tests;

use auth::Session;
use i18n::Lang;

mod service;

/// What every handler gets: the daemon's current `App`, and the workers' health.
#[derive(Clone)]
pub struct WebState {
    app: watch::Receiver<Arc<App>>,
    health: Arc<Health>,
}

impl WebState {
    pub fn new(app: watch::Receiver<Arc<App>>) -> WebState {
        WebState {
            app,
            health: Health::new(crate::config::DEFAULT_UNHEALTHY_AFTER),
        }
    }

    /// The daemon's health, which its workers report to.
    pub fn with_health(mut self, health: Arc<Health>) -> WebState {
        self.health = health;
        self
    }

    /// The `App` of the configuration in force now (it changes on SIGHUP).
    pub fn app(&self) -> Arc<App> {
        self.app.borrow().clone()
    }

    pub fn health(&self) -> &Health {
        &self.health
    }

    /// Cookies are `Secure` when `[web] public_url` is https.
    pub fn secure_cookies(&self) -> bool {
        self.app
            .borrow()
            .config
            .web
            .as_ref()
            .is_some_and(WebConfig::secure_cookies)
    }
}

/// Every route the daemon serves. Pages behind the login are grouped under
/// one layer ([`auth::require_login`]), so no page can forget the check.
pub fn router(state: WebState) -> Router {
    let public = Router::new()
        .route("/login", get(login::form).post(login::submit))
        .route("/static/style.css", get(style));
    let private = Router::new()
        .route("/", get(overview::page))
        .route("/logout", post(login::logout))
        .route("/conferences/{id}", get(attendees::list))
        .route(
            "/conferences/{id}/add",
            get(attendees::add_form).post(attendees::add),
        )
        .route("/conferences/{id}/attendees/{email}", get(attendee::page))
        .route(
            "/conferences/{id}/attendees/{email}/cancel",
            post(attendee::cancel),
        )
        .route("/conferences/{id}/attendees.csv", get(exports::csv))
        .route("/conferences/{id}/attendees.xlsx", get(exports::xlsx))
        .route("/conferences/{id}/attendees.json", get(exports::json))
        .route("/conferences/{id}/sign-in", get(signin::page))
        .route(
            "/conferences/{id}/broadcast",
            get(broadcast::form).post(broadcast::submit),
        )
        .route("/review", get(review::list))
        .route("/review/{id}", get(review::item))
        .route("/review/{id}/assign", post(review::assign))
        .route("/review/{id}/dismiss", post(review::dismiss))
        .route("/outbox", get(outbox::page))
        .route("/outbox/{id}/retry", post(outbox::retry))
        .route_layer(from_fn_with_state(state.clone(), auth::require_login));
    // `/healthz` and `/metrics` (service) need no login, like the login page.
    public
        .merge(service::routes())
        .merge(private)
        .layer(axum::middleware::map_response(safety_headers))
        .with_state(state)
}

/// Headers every answer carries: no framing (clickjacking), no type guessing,
/// no referrer to other sites, and — since pages show personal data — no
/// copy in the browser's cache (the back button after logout on a shared
/// computer shows nothing). Inline: the sign-in sheet's print button (the
/// only script) and the widths of the fill bars.
async fn safety_headers(mut response: Response) -> Response {
    let h = response.headers_mut();
    h.insert(
        header::X_FRAME_OPTIONS,
        header::HeaderValue::from_static("DENY"),
    );
    h.insert(
        header::X_CONTENT_TYPE_OPTIONS,
        header::HeaderValue::from_static("nosniff"),
    );
    h.insert(
        header::REFERRER_POLICY,
        header::HeaderValue::from_static("same-origin"),
    );
    h.insert(
        header::CONTENT_SECURITY_POLICY,
        header::HeaderValue::from_static(
            "default-src 'self'; script-src 'unsafe-inline'; style-src 'self' 'unsafe-inline'; img-src 'self' data:; form-action 'self'; frame-ancestors 'none'",
        ),
    );
    if !h.contains_key(header::CACHE_CONTROL) {
        h.insert(
            header::CACHE_CONTROL,
            header::HeaderValue::from_static("no-store"),
        );
    }
    response
}

async fn style() -> Response {
    (
        [
            (header::CONTENT_TYPE, "text/css; charset=utf-8"),
            (header::CACHE_CONTROL, "max-age=3600"),
        ],
        include_str!("../../templates/web/style.css"),
    )
        .into_response()
}

/// Why a request did not get its page.
#[derive(Debug)]
pub enum WebError {
    /// No such page — or a conference, attendee or item the user may not see.
    NotFound,
    /// A POST without the form's CSRF token.
    Forbidden,
    BadRequest(String),
    Internal(anyhow::Error),
}

impl From<anyhow::Error> for WebError {
    fn from(e: anyhow::Error) -> WebError {
        WebError::Internal(e)
    }
}

impl IntoResponse for WebError {
    fn into_response(self) -> Response {
        let (status, key, detail) = match self {
            WebError::NotFound => (StatusCode::NOT_FOUND, "not_found", None),
            WebError::Forbidden => (StatusCode::FORBIDDEN, "forbidden", None),
            WebError::BadRequest(m) => (StatusCode::BAD_REQUEST, "error", Some(m)),
            WebError::Internal(e) => {
                error!(error = %format!("{e:#}"), "a dashboard request failed");
                (StatusCode::INTERNAL_SERVER_ERROR, "internal", None)
            }
        };
        // The error page has no session to take the language from: both.
        let de = Lang(crate::config::Language::De);
        let en = Lang(crate::config::Language::En);
        let body = templates()
            .get_template("error.html")
            .and_then(|t| {
                t.render(minijinja::context! {
                    de => de.word(key), en => en.word(key), detail,
                })
            })
            .unwrap_or_else(|_| de.word(key).to_string());
        (status, Html(body)).into_response()
    }
}

/// The dashboard's templates, built into the binary (no files to deploy).
fn templates() -> &'static minijinja::Environment<'static> {
    static ENV: OnceLock<minijinja::Environment<'static>> = OnceLock::new();
    ENV.get_or_init(|| {
        let mut env = minijinja::Environment::new();
        env.set_undefined_behavior(minijinja::UndefinedBehavior::Strict);
        macro_rules! add {
            ($($name:literal),*) => {$(
                if let Err(e) = env.add_template($name, include_str!(concat!("../../templates/web/", $name))) {
                    error!(template = $name, error = %e, "a built-in dashboard template does not parse");
                }
            )*};
        }
        add!(
            "base.html",
            "error.html",
            "login.html",
            "overview.html",
            "attendees.html",
            "attendee.html",
            "add.html",
            "review_list.html",
            "review_item.html",
            "outbox.html",
            "broadcast.html",
            "signin.html"
        );
        env
    })
}

/// Render template `name` with `ctx` plus what every page needs: the words
/// of `lang`, the user and the session's CSRF token.
pub fn render(
    name: &str,
    lang: Lang,
    session: Option<&Session>,
    ctx: minijinja::Value,
) -> Result<Html<String>, WebError> {
    let base = minijinja::context! {
        t => lang.words(),
        lang => lang.code(),
        user => session.map(|s| s.user.name.clone()),
        csrf => session.map(|s| s.csrf.clone()),
    };
    let html = templates()
        .get_template(name)
        .and_then(|t| t.render(minijinja::context! { ..ctx, ..base }))
        .with_context(|| format!("rendering the page {name}"))?;
    Ok(Html(html))
}

/// The conference `id` if the session may see it; otherwise 404, exactly as
/// for a conference that does not exist.
pub fn visible_conference(app: &App, session: &Session, id: &str) -> Result<Conference, WebError> {
    app.config
        .conference(id)
        .filter(|c| session.may_see(&c.id))
        .cloned()
        .ok_or(WebError::NotFound)
}

/// A stored UTC time ("2027-10-15T11:30:00Z") as local time in `tz`.
pub fn local_time(stored: &str, tz: chrono_tz::Tz, lang: Lang) -> String {
    chrono::DateTime::parse_from_rfc3339(stored)
        .map(|t| {
            t.with_timezone(&tz)
                .format(lang.datetime_format())
                .to_string()
        })
        .unwrap_or_else(|_| stored.to_string())
}

/// The message of `?ok=KEY` after a change (only known keys are shown).
pub fn flash(lang: Lang, ok: &str) -> Option<&'static str> {
    lang.words().get(format!("{ok}_ok").as_str()).copied()
}

/// A 303 to `to` (after a POST, so reloading does not send the form again).
pub fn see_other(to: &str) -> Response {
    axum::response::Redirect::to(to).into_response()
}

/// `s` for a URL path segment (emails carry `@` and `+`).
pub fn path_segment(s: &str) -> String {
    s.bytes()
        .map(|b| match b {
            b'A'..=b'Z' | b'a'..=b'z' | b'0'..=b'9' | b'-' | b'.' | b'_' | b'~' | b'@' => {
                (b as char).to_string()
            }
            _ => format!("%{b:02X}"),
        })
        .collect()
}

/// Bind `[web] listen` before anything starts, so a port in use stops the
/// start with a message instead of a daemon that silently serves nothing.
pub async fn bind(web: &WebConfig) -> anyhow::Result<TcpListener> {
    TcpListener::bind(web.listen).await.with_context(|| {
        format!(
            "cannot listen on [web] listen = \"{}\"; is another process (or another rsvpd) using that port? Pick a free one",
            web.listen
        )
    })
}

/// Serve until `stop` turns true; requests in flight are finished first.
pub async fn serve(listener: TcpListener, state: WebState, mut stop: watch::Receiver<bool>) {
    let addr = listener
        .local_addr()
        .map(|a| a.to_string())
        .unwrap_or_default();
    info!(listen = %addr, "serving HTTP");
    let shutdown = async move {
        while !*stop.borrow() {
            if stop.changed().await.is_err() {
                break;
            }
        }
    };
    let service = router(state).into_make_service_with_connect_info::<SocketAddr>();
    if let Err(e) = axum::serve(listener, service)
        .with_graceful_shutdown(shutdown)
        .await
    {
        error!(error = %e, "the HTTP server stopped with an error");
    }
}
