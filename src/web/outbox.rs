//! `GET /outbox`: failed mail first (with the server's answer and a button to
//! send it again), then mail waiting to go, then the latest sent.
//! `POST /outbox/{id}/retry` calls [`manual::retry`](crate::manual::retry).
//!
//! A user sees the mail of the conferences they may see; mail about no
//! conference only when they may see all.

use axum::Extension;
use axum::extract::{Path, Query, State};
use axum::response::{Html, Response};

use super::auth::Session;
use super::i18n::Lang;
use super::review::ReviewQuery;
use super::{WebError, WebState, flash, local_time, render, see_other};
use crate::app::App;
use crate::storage::OutboxItem;

/// How many sent mails the page shows.
const SENT_SHOWN: i64 = 100;

pub async fn visible_items(app: &App, session: &Session) -> Result<Vec<OutboxItem>, WebError> {
    Ok(app
        .store
        .outbox_page(SENT_SHOWN)
        .await?
        .into_iter()
        .filter(|o| match &o.conference {
            Some(c) => session.may_see(c),
            None => session.user.conferences.iter().any(|c| c == "*"),
        })
        .collect())
}

pub async fn page(
    State(state): State<WebState>,
    Extension(session): Extension<Session>,
    lang: Lang,
    Query(query): Query<ReviewQuery>,
) -> Result<Html<String>, WebError> {
    let app = state.app();
    let tz = app.config.defaults.timezone;
    let items: Vec<_> = visible_items(&app, &session)
        .await?
        .into_iter()
        .map(|o| {
            minijinja::context! {
                id => o.id,
                state => o.state.as_str(),
                state_label => lang.word(&format!("state_{}", o.state)),
                created => local_time(&o.created_at, tz, lang),
                sent => o.sent_at.as_deref().map(|t| local_time(t, tz, lang)),
                to => o.recipient, kind => lang.mail_kind(o.kind.as_str()), subject => o.subject,
                conference => o.conference.as_deref().and_then(|c| app.config.conference(c)).map(|c| c.title.clone()), attempts => o.attempts, last_error => o.last_error,
            }
        })
        .collect();
    render(
        "outbox.html",
        lang,
        Some(&session),
        minijinja::context! { items, ok => flash(lang, &query.ok), nav => "outbox" },
    )
}

pub async fn retry(
    State(state): State<WebState>,
    Extension(session): Extension<Session>,
    Path(id): Path<i64>,
) -> Result<Response, WebError> {
    let app = state.app();
    let visible = visible_items(&app, &session)
        .await?
        .into_iter()
        .any(|o| o.id == id && o.state == "failed");
    if !visible || !crate::manual::retry(&app, id).await? {
        return Err(WebError::NotFound);
    }
    Ok(see_other("/outbox?ok=retried"))
}
