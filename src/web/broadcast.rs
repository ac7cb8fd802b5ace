//! `GET /conferences/{id}/broadcast`: write a mail to every attendee;
//! `POST` with `step=preview` shows how many get it, who is left out and the
//! first mail as it will be sent; `step=send` queues them; `step=edit` goes
//! back to the text. Rendering and queuing are [`crate::broadcast`], the
//! functions `rsvpd send` calls.

use axum::Extension;
use axum::extract::{Path, State};
use axum::http::StatusCode;
use axum::response::{IntoResponse, Response};
use chrono::Utc;

use super::attendees::{conference_view, parse_status};
use super::auth::{FormData, Session};
use super::i18n::Lang;
use super::{WebError, WebState, path_segment, render, see_other, visible_conference};
use crate::broadcast::{self, DEFAULT_STATUSES};
use crate::config::Conference;
use crate::storage::Status;

const CHOICES: [Status; 4] = [
    Status::Confirmed,
    Status::Waitlisted,
    Status::Pending,
    Status::Cancelled,
];

fn form_page(
    lang: Lang,
    session: &Session,
    conf: &Conference,
    subject: &str,
    body: &str,
    chosen: &[Status],
    error: Option<String>,
) -> Result<Response, WebError> {
    let statuses: Vec<_> = CHOICES
        .iter()
        .map(|s| minijinja::context! { value => s.as_str(), label => lang.status(*s), checked => chosen.contains(s) })
        .collect();
    let status = if error.is_some() {
        StatusCode::BAD_REQUEST
    } else {
        StatusCode::OK
    };
    let page = render(
        "broadcast.html",
        lang,
        Some(session),
        minijinja::context! {
            conference => conference_view(conf, lang),
            step => "edit", subject, body, statuses, error,
            nav => "list",
        },
    )?;
    Ok((status, page).into_response())
}

pub async fn form(
    State(state): State<WebState>,
    Extension(session): Extension<Session>,
    lang: Lang,
    Path(id): Path<String>,
) -> Result<Response, WebError> {
    let conf = visible_conference(&state.app(), &session, &id)?;
    form_page(lang, &session, &conf, "", "", &DEFAULT_STATUSES, None)
}

pub async fn submit(
    State(state): State<WebState>,
    Extension(session): Extension<Session>,
    Extension(form): Extension<FormData>,
    lang: Lang,
    Path(id): Path<String>,
) -> Result<Response, WebError> {
    let app = state.app();
    let conf = visible_conference(&app, &session, &id)?;
    let subject = form.get("subject").to_string();
    let body = form.get("body").replace("\r\n", "\n");
    let statuses: Vec<Status> = form
        .all("status")
        .iter()
        .filter_map(|s| parse_status(s))
        .collect();
    if form.get("step") == "edit" {
        return form_page(lang, &session, &conf, &subject, &body, &statuses, None);
    }
    if subject.is_empty() || body.trim().is_empty() || statuses.is_empty() {
        let error = Some(lang.word("required").to_string());
        return form_page(lang, &session, &conf, &subject, &body, &statuses, error);
    }
    let now = Utc::now();
    let plan = match broadcast::prepare(&app, &conf, &subject, &body, &statuses, now).await {
        Ok(p) => p,
        Err(e) => {
            let error = Some(format!("{e:#}"));
            return form_page(lang, &session, &conf, &subject, &body, &statuses, error);
        }
    };
    if form.get("step") == "send" && !plan.mails.is_empty() {
        let n = broadcast::queue(&app, &conf, plan, now).await?;
        return Ok(see_other(&format!(
            "/conferences/{}?ok=broadcast&n={n}",
            path_segment(&conf.id)
        )));
    }
    let checked: Vec<&str> = statuses.iter().map(|s| s.as_str()).collect();
    let skipped: Vec<_> = plan
        .skipped
        .iter()
        .map(|(email, why)| minijinja::context! { email, why })
        .collect();
    Ok(render(
        "broadcast.html",
        lang,
        Some(&session),
        minijinja::context! {
            conference => conference_view(&conf, lang),
            step => "preview", subject, body, checked, skipped,
            count => plan.mails.len(),
            sample => plan.sample,
            nav => "list",
        },
    )?
    .into_response())
}
