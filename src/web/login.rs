//! `GET /login`, `POST /login`, `POST /logout`: the only pages without a session.
//!
//! The login form carries a token equal to a SameSite=Strict cookie set with
//! the form (no session exists yet to hold one); a POST without it is 403.
//! Failed attempts are counted per user name and per address (see `auth`).

use axum::Extension;
use axum::body::Bytes;
use axum::extract::{Request, State};
use axum::http::{HeaderMap, StatusCode, header};
use axum::response::{IntoResponse, Response};
use chrono::Utc;
use cookie::SameSite;
use tracing::{info, warn};

use super::auth::{self, FormData, LOGIN_COOKIE, Session};
use super::i18n::Lang;
use super::{WebError, WebState, render, see_other};

/// The login page, with a fresh form token in its cookie.
fn login_page(
    state: &WebState,
    lang: Lang,
    status: StatusCode,
    message: Option<&str>,
    username: &str,
) -> Result<Response, WebError> {
    let token = auth::new_token();
    let page = render(
        "login.html",
        lang,
        None,
        minijinja::context! {
            login_csrf => token.clone(),
            message => message.map(|k| lang.word(k)),
            username,
        },
    )?;
    let cookie = auth::set_cookie(
        LOGIN_COOKIE,
        &token,
        SameSite::Strict,
        state.secure_cookies(),
        None,
    );
    Ok((status, [(header::SET_COOKIE, cookie)], page).into_response())
}

pub async fn form(
    State(state): State<WebState>,
    lang: Lang,
    headers: HeaderMap,
) -> Result<Response, WebError> {
    if auth::current_session(&state, &headers).await?.is_some() {
        return Ok(see_other("/"));
    }
    login_page(&state, lang, StatusCode::OK, None, "")
}

pub async fn submit(
    State(state): State<WebState>,
    lang: Lang,
    request: Request,
) -> Result<Response, WebError> {
    let peer = auth::peer(request.extensions());
    let (parts, body) = request.into_parts();
    let body: Bytes = axum::body::to_bytes(body, 16 * 1024)
        .await
        .map_err(|_| WebError::BadRequest("the form is too large".into()))?;
    let form = FormData::parse(&body)?;
    let cookie = auth::cookie_value(&parts.headers, LOGIN_COOKIE).unwrap_or_default();
    if !auth::same_token(form.get("csrf"), &cookie) {
        return Err(WebError::Forbidden);
    }
    let username = form.get("username").to_string();
    let password = form.get("password").to_string();
    let address = auth::client_address(&parts.headers, peer);
    let app = state.app();
    let now = Utc::now();
    let (by_user, by_address) = app
        .store
        .login_failures_since(&username, &address, now - auth::FAILURE_WINDOW)
        .await?;
    if by_user >= auth::MAX_FAILURES_PER_USER || by_address >= auth::MAX_FAILURES_PER_ADDRESS {
        warn!(user = %username, %address, "login refused: too many failed attempts");
        return login_page(
            &state,
            lang,
            StatusCode::TOO_MANY_REQUESTS,
            Some("login_locked"),
            &username,
        );
    }
    let users = app
        .config
        .web
        .as_ref()
        .map(|w| w.users.clone())
        .unwrap_or_default();
    let name = username.clone();
    // argon2 takes tens of milliseconds of CPU: not on the async workers.
    let user =
        tokio::task::spawn_blocking(move || auth::check_login(&users, &name, &password).cloned())
            .await
            .map_err(|e| WebError::Internal(e.into()))?;
    let Some(user) = user else {
        app.store
            .record_login_failure(&username, &address, now)
            .await?;
        warn!(user = %username, %address, "login failed");
        return login_page(
            &state,
            lang,
            StatusCode::UNAUTHORIZED,
            Some("login_failed"),
            &username,
        );
    };
    app.store
        .clear_login_failures(&user.name, now - auth::FAILURE_WINDOW)
        .await?;
    let session_cookie = auth::start_session(&state, &user, now).await?;
    let clear = auth::set_cookie(
        LOGIN_COOKIE,
        "",
        SameSite::Strict,
        state.secure_cookies(),
        Some(chrono::Duration::zero()),
    );
    info!(user = %user.name, "logged in");
    let mut response = see_other("/");
    let headers = response.headers_mut();
    headers.append(header::SET_COOKIE, session_cookie);
    headers.append(header::SET_COOKIE, clear);
    Ok(response)
}

pub async fn logout(
    State(state): State<WebState>,
    Extension(session): Extension<Session>,
) -> Result<Response, WebError> {
    let cookie = auth::end_session(&state, &session).await?;
    info!(user = %session.user.name, "logged out");
    let mut response = see_other("/login");
    response.headers_mut().append(header::SET_COOKIE, cookie);
    Ok(response)
}
