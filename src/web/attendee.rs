//! `GET /conferences/{id}/attendees/{email}`: one registration — its fields,
//! its audit trail, and the mails in and out (each readable as text).
//! `POST …/cancel`: cancel it through [`manual::cancel`](crate::manual::cancel),
//! the function `rsvpd cancel` calls.

use axum::Extension;
use axum::extract::{Path, Query, State};
use axum::response::{Html, Response};

use super::attendees::{ListQuery, conference_view, row, when};
use super::auth::Session;
use super::i18n::Lang;
use super::{WebError, WebState, path_segment, render, see_other, visible_conference};
use crate::config::Conference;
use crate::manual::{self, ManualError};
use crate::register::Actor;
use crate::storage::{AuditEntry, Status};
use crate::understand;

/// "web:orga" → "orga (web)"; the other actors by their words.
fn actor(by: &str, lang: Lang) -> String {
    match by {
        "mail" => lang.word("by_mail").to_string(),
        "system" => lang.word("by_system").to_string(),
        "cli" => lang.word("by_cli").to_string(),
        other => match other.strip_prefix("web:") {
            Some(user) => user.to_string(),
            None => other.to_string(),
        },
    }
}

/// The parts of an audit entry's detail a person cares about, in words.
fn detail(e: &AuditEntry, conf: &Conference, lang: Lang) -> String {
    let d = &e.detail;
    let mut parts = Vec::new();
    if let Some(s) = d.get("status").and_then(|s| s.as_str())
        && let Some(status) = super::attendees::parse_status(s)
    {
        parts.push(format!("{}: {}", lang.word("status"), lang.status(status)));
    }
    if let Some(n) = d.get("party_size").and_then(|n| n.as_u64()) {
        parts.push(format!("{}: {n}", lang.word("party_size")));
    }
    if let Some(w) = d.get("workshops").and_then(|w| w.as_array())
        && !w.is_empty()
    {
        let ids: Vec<String> = w
            .iter()
            .filter_map(|x| x.as_str().map(str::to_string))
            .collect();
        parts.push(format!(
            "{}: {}",
            lang.word("workshops"),
            super::attendees::workshop_titles(conf, &ids).join(", ")
        ));
    }
    if let Some(n) = d.get("notes").and_then(|w| w.as_array())
        && !n.is_empty()
    {
        let notes: Vec<&str> = n.iter().filter_map(|x| x.as_str()).collect();
        parts.push(format!("{}: {}", lang.word("notes"), notes.join("; ")));
    }
    parts.join(" · ")
}

pub async fn page(
    State(state): State<WebState>,
    Extension(session): Extension<Session>,
    lang: Lang,
    Path((id, email)): Path<(String, String)>,
    Query(query): Query<ListQuery>,
) -> Result<Html<String>, WebError> {
    let app = state.app();
    let conf = visible_conference(&app, &session, &id)?;
    let reg = app
        .store
        .registration_of(&conf.id, &email)
        .await?
        .ok_or(WebError::NotFound)?;
    let history: Vec<_> = app
        .store
        .audit_trail(reg.id)
        .await?
        .iter()
        .map(|e| {
            minijinja::context! {
                at => when(&e.at, &conf, lang),
                action => lang.words().get(format!("action_{}", e.action).as_str()).copied().unwrap_or(e.action.as_str()),
                by => actor(&e.by, lang),
                detail => detail(e, &conf, lang),
            }
        })
        .collect();
    let mut mails_in = Vec::new();
    for m in app.store.mails_received(&reg.email, Some(&conf.id)).await? {
        let mail = app
            .store
            .inbound_raw(m.id)
            .await?
            .map(|(_, raw)| understand::readable(&raw));
        mails_in.push(minijinja::context! {
            at => when(&m.received_at, &conf, lang),
            subject => m.subject, outcome => m.outcome, reason => m.reason,
            mail => mail.as_ref().map(|m| minijinja::Value::from(minijinja::value::Serde(m))),
        });
    }
    let mut mails_out = Vec::new();
    for m in app.store.mails_sent(&reg.email, Some(&conf.id)).await? {
        let mail = app
            .store
            .outbox_raw(m.id)
            .await?
            .filter(|raw| !raw.is_empty())
            .map(|raw| understand::readable(&raw));
        mails_out.push(minijinja::context! {
            at => when(&m.created_at, &conf, lang),
            sent_at => m.sent_at.as_deref().map(|t| when(t, &conf, lang)),
            kind => lang.mail_kind(&m.kind), subject => m.subject,
            state => m.state.clone(),
            state_label => lang.word(&format!("state_{}", m.state)),
            last_error => m.last_error,
            mail => mail.as_ref().map(|m| minijinja::Value::from(minijinja::value::Serde(m))),
        });
    }
    render(
        "attendee.html",
        lang,
        Some(&session),
        minijinja::context! {
            conference => conference_view(&conf, lang),
            r => row(&conf, &reg, lang),
            cancelled => reg.status == Status::Cancelled,
            cancel_href => format!("/conferences/{}/attendees/{}/cancel", path_segment(&conf.id), path_segment(&reg.email)),
            history, mails_in, mails_out,
            ok => super::flash(lang, &query.ok),
            nav => "list",
        },
    )
}

pub async fn cancel(
    State(state): State<WebState>,
    Extension(session): Extension<Session>,
    Path((id, email)): Path<(String, String)>,
) -> Result<Response, WebError> {
    let app = state.app();
    let conf = visible_conference(&app, &session, &id)?;
    match manual::cancel(
        &app,
        &conf,
        &email,
        Actor::Web {
            user: &session.user.name,
        },
    )
    .await
    {
        Ok(_) => Ok(see_other(&format!(
            "/conferences/{}/attendees/{}?ok=cancelled",
            path_segment(&conf.id),
            path_segment(&email.trim().to_lowercase())
        ))),
        Err(ManualError::NoRegistration { .. }) => Err(WebError::NotFound),
        Err(e) => Err(WebError::Internal(e.into())),
    }
}
