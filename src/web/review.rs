//! `GET /review`: the mails rsvpd could not place, with its reason.
//! `GET /review/{id}`: one of them — the mail as text, the reason, what rsvpd
//! understood — with the form to choose the conference, correct name,
//! organisation, party size, workshops and notes, and assign it; or dismiss it.
//! `POST /review/{id}/assign|dismiss` call [`crate::review`], the functions
//! `rsvpd review assign|dismiss` call.
//!
//! A user sees the items of the conferences they may see, and the items
//! rsvpd could not route to any conference (someone has to).

use axum::Extension;
use axum::extract::{Path, Query, State};
use axum::response::{Html, Response};
use serde::Deserialize;

use super::attendees::{lines, party_size};
use super::auth::{FormData, Session};
use super::i18n::Lang;
use super::{
    WebError, WebState, flash, local_time, path_segment, render, see_other, visible_conference,
};
use crate::app::App;
use crate::review::{self, Correction};
use crate::storage::ReviewItem;
use crate::understand::{self, Action, Attendee};

pub async fn visible_items(app: &App, session: &Session) -> Result<Vec<ReviewItem>, WebError> {
    Ok(app
        .store
        .review_items()
        .await?
        .into_iter()
        .filter(|i| i.conference.as_deref().is_none_or(|c| session.may_see(c)))
        .collect())
}

async fn visible_item(app: &App, session: &Session, id: i64) -> Result<ReviewItem, WebError> {
    visible_items(app, session)
        .await?
        .into_iter()
        .find(|i| i.id == id)
        .ok_or(WebError::NotFound)
}

#[derive(Debug, Default, Deserialize)]
pub struct ReviewQuery {
    #[serde(default)]
    pub conference: String,
    #[serde(default)]
    pub ok: String,
}

pub async fn list(
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
        .map(|i| {
            minijinja::context! {
                href => format!("/review/{}", i.id),
                received => local_time(&i.received_at, tz, lang),
                from => i.from, subject => i.subject, reason => i.reason,
                conference => i.conference.as_deref().and_then(|c| app.config.conference(c)).map(|c| c.title.clone()),
            }
        })
        .collect();
    render(
        "review_list.html",
        lang,
        Some(&session),
        minijinja::context! { items, ok => flash(lang, &query.ok), nav => "review" },
    )
}

fn attendee_view(a: &Attendee) -> minijinja::Value {
    minijinja::context! {
        email => a.email.clone(), name => a.name.clone(), organization => a.organization.clone(),
        party_size => a.party_size, companions => a.companions.clone(),
        workshops => a.workshops.clone(), notes => a.notes.clone(),
    }
}

fn person(email: &str, name: Option<String>) -> minijinja::Value {
    attendee_view(&Attendee {
        email: email.to_string(),
        name,
        organization: None,
        party_size: 0,
        companions: vec![],
        workshops: vec![],
        notes: vec![],
        language: crate::config::Language::De,
        address_note: None,
    })
}

/// What rsvpd read in a mail, for a person.
fn understood_view(u: &understand::Understood, lang: Lang) -> minijinja::Value {
    let (kind, conference, attendees, reason) = match &u.action {
        Action::Register {
            conference,
            attendees,
        } => (
            "register",
            Some(conference.clone()),
            attendees.iter().map(attendee_view).collect(),
            None,
        ),
        Action::Update {
            conference,
            attendees,
        } => (
            "update",
            Some(conference.clone()),
            attendees.iter().map(attendee_view).collect(),
            None,
        ),
        Action::Cancel {
            conference,
            email,
            name,
        } => (
            "cancel",
            Some(conference.clone()),
            vec![person(email, name.clone())],
            None,
        ),
        Action::Confirm {
            conference, email, ..
        } => (
            "confirm",
            conference.clone(),
            vec![person(email, None)],
            None,
        ),
        Action::Bounce { reason, .. } => ("bounce", None, vec![], Some(reason.clone())),
        Action::Ignore { reason } => ("ignore", None, vec![], Some(reason.clone())),
        Action::Thanks { conference } => ("thanks", conference.clone(), vec![], None),
        Action::Review { reason, conference } => {
            ("review", conference.clone(), vec![], Some(reason.clone()))
        }
    };
    minijinja::context! {
        kind => lang.word(&format!("kind_{kind}")),
        conference, attendees, reason,
        language => u.language.code(),
        why => u.explanation.to_string(),
    }
}

pub async fn item(
    State(state): State<WebState>,
    Extension(session): Extension<Session>,
    lang: Lang,
    Path(id): Path<i64>,
    Query(query): Query<ReviewQuery>,
) -> Result<Html<String>, WebError> {
    let app = state.app();
    let item = visible_item(&app, &session, id).await?;
    let (_, raw) = app.store.review_raw(id).await?.ok_or(WebError::NotFound)?;
    let mail = understand::readable(&raw);
    let understood = app.understand(&raw).await?;
    let visible: Vec<_> = app
        .config
        .conferences
        .iter()
        .filter(|c| session.may_see(&c.id))
        .collect();
    // The conference to assign to: the one chosen, else the one rsvpd found,
    // else the only one the user has.
    let chosen = match query.conference.as_str() {
        "" => item
            .conference
            .clone()
            .filter(|c| session.may_see(c))
            .or_else(|| (visible.len() == 1).then(|| visible[0].id.clone())),
        c => Some(visible_conference(&app, &session, c)?.id),
    };
    let mut form = minijinja::Value::from(());
    if let Some(c) = &chosen
        && let Some(conf) = app.config.conference(c)
        && let Some((u, _)) = review::understood_for(&app, id, c).await?
    {
        let first = match &u.action {
            Action::Register { attendees, .. } | Action::Update { attendees, .. } => {
                attendees.first().cloned()
            }
            _ => None,
        };
        let workshops: Vec<_> = conf
            .workshops
            .iter()
            .map(|w| {
                let checked = first.as_ref().is_some_and(|a| a.workshops.contains(&w.id));
                minijinja::context! { id => w.id.clone(), title => w.title.clone(), checked }
            })
            .collect();
        form = minijinja::context! {
            conference => conf.id.clone(), title => conf.title.clone(), workshops,
            email => first.as_ref().map(|a| a.email.clone()).or(u.from.clone()),
            name => first.as_ref().and_then(|a| a.name.clone()),
            organization => first.as_ref().and_then(|a| a.organization.clone()),
            party_size => first.as_ref().map(|a| a.party_size).unwrap_or(1),
            notes => first.as_ref().map(|a| a.notes.join("\n")).unwrap_or_default(),
        };
    }
    let conferences: Vec<_> = visible
        .iter()
        .map(|c| minijinja::context! { id => c.id.clone(), title => c.title.clone(), selected => chosen.as_deref() == Some(c.id.as_str()) })
        .collect();
    render(
        "review_item.html",
        lang,
        Some(&session),
        minijinja::context! {
            id, form, conferences,
            mail => minijinja::Value::from(minijinja::value::Serde(&mail)),
            reason => item.reason,
            received => local_time(&item.received_at, app.config.defaults.timezone, lang),
            understood => understood_view(&understood, lang),
            nav => "review",
        },
    )
}

pub async fn assign(
    State(state): State<WebState>,
    Extension(session): Extension<Session>,
    Extension(form): Extension<FormData>,
    Path(id): Path<i64>,
) -> Result<Response, WebError> {
    let app = state.app();
    visible_item(&app, &session, id).await?;
    let conf = visible_conference(&app, &session, form.get("conference"))?;
    let party = party_size(form.get("party_size"))
        .ok_or_else(|| WebError::BadRequest("party size: a number from 1 to 50".into()))?;
    let correction = Correction {
        name: Some(form.get("name").to_string()),
        organization: Some(form.get("organization").to_string()),
        party_size: party,
        workshops: form.all("workshop"),
        notes: lines(form.get("notes")),
    };
    let by = format!("{} (web)", session.user.name);
    let assigned = review::assign(&app, id, &conf.id, Some(&correction), &by)
        .await
        .map_err(|e| WebError::BadRequest(format!("{e:#}")))?;
    Ok(match (&assigned.email, assigned.status) {
        (Some(email), Some(_)) => see_other(&format!(
            "/conferences/{}/attendees/{}?ok=assigned",
            path_segment(&conf.id),
            path_segment(email)
        )),
        _ => see_other("/review?ok=assigned"),
    })
}

pub async fn dismiss(
    State(state): State<WebState>,
    Extension(session): Extension<Session>,
    Path(id): Path<i64>,
) -> Result<Response, WebError> {
    let app = state.app();
    visible_item(&app, &session, id).await?;
    let by = format!("{} (web)", session.user.name);
    if !review::dismiss(&app.store, id, &by).await? {
        return Err(WebError::NotFound);
    }
    Ok(see_other("/review?ok=dismissed"))
}
