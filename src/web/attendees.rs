//! `GET /conferences/{id}`: the attendee list with `?q=` (name, email,
//! organisation) and `?status=`; the links to the exports, the sign-in sheets
//! and the broadcast. `GET|POST /conferences/{id}/add`: register someone by hand
//! through [`manual::add`](crate::manual::add), the function `rsvpd add` calls.

use axum::Extension;
use axum::extract::{Path, Query, State};
use axum::http::StatusCode;
use axum::response::{IntoResponse, Response};
use serde::Deserialize;
use unicode_normalization::UnicodeNormalization as _;

use super::auth::{FormData, Session};
use super::i18n::Lang;
use super::{WebError, WebState, local_time, path_segment, render, see_other, visible_conference};
use crate::config::{Conference, Language};
use crate::manual::{self, ManualError, NewRegistration};
use crate::register::Actor;
use crate::storage::{Matcher, Registration, Status};

/// `s` as a German reader compares letters: case, accents and the Turkish
/// dotless i do not matter (Ş is S, Ö is O, ı is i), ß is ss (DIN 5007-1).
pub fn fold(s: &str) -> String {
    s.nfkd()
        .filter(|c| !unicode_normalization::char::is_combining_mark(*c))
        .flat_map(char::to_lowercase)
        .map(|c| match c {
            'ı' => "i".to_string(),
            'ß' => "ss".to_string(),
            'ø' => "o".to_string(),
            'ł' => "l".to_string(),
            'æ' => "ae".to_string(),
            'œ' => "oe".to_string(),
            c => c.to_string(),
        })
        .collect()
}

/// The words of `?q=`: each must appear in the name, email or organisation.
pub struct Search(Vec<String>);

impl Search {
    pub fn new(q: &str) -> Search {
        Search(q.split_whitespace().map(fold).collect())
    }
}

impl Matcher for Search {
    fn matches(&self, r: &Registration) -> bool {
        let hay = fold(&format!(
            "{} {} {}",
            r.name.as_deref().unwrap_or(""),
            r.email,
            r.organization.as_deref().unwrap_or("")
        ));
        self.0.iter().all(|w| hay.contains(w.as_str()))
    }
}

pub fn parse_status(s: &str) -> Option<Status> {
    match s {
        "confirmed" => Some(Status::Confirmed),
        "waitlisted" => Some(Status::Waitlisted),
        "pending" => Some(Status::Pending),
        "cancelled" => Some(Status::Cancelled),
        _ => None,
    }
}

#[derive(Debug, Default, Deserialize)]
pub struct ListQuery {
    #[serde(default)]
    pub q: String,
    #[serde(default)]
    pub status: String,
    #[serde(default)]
    pub ok: String,
    /// How many mails a broadcast queued (with `ok=broadcast`).
    pub n: Option<usize>,
}

/// The registrations a list (or an export of it) shows.
pub async fn filtered(
    state: &WebState,
    conf: &Conference,
    query: &ListQuery,
) -> Result<Vec<Registration>, WebError> {
    Ok(state
        .app()
        .store
        .find_registrations(
            &conf.id,
            parse_status(&query.status),
            &Search::new(&query.q),
        )
        .await?)
}

pub fn workshop_titles(conf: &Conference, ids: &[String]) -> Vec<String> {
    ids.iter()
        .map(|id| {
            conf.workshops
                .iter()
                .find(|w| &w.id == id)
                .map(|w| w.title.clone())
                .unwrap_or_else(|| id.clone())
        })
        .collect()
}

/// One registration as the templates show it.
pub fn row(conf: &Conference, r: &Registration, lang: Lang) -> minijinja::Value {
    minijinja::context! {
        email => r.email.to_string(),
        href => format!("/conferences/{}/attendees/{}", path_segment(&conf.id), path_segment(&r.email)),
        name => r.name.clone(),
        organization => r.organization.clone(),
        party_size => r.party_size,
        companions => r.companions.clone(),
        workshops => workshop_titles(conf, &r.workshops),
        notes => r.notes.clone(),
        status => r.status.as_str(),
        status_label => lang.status(r.status),
        language => r.language.code(),
        registered_at => r.registered_at.with_timezone(&conf.timezone).format(lang.datetime_format()).to_string(),
    }
}

pub async fn list(
    State(state): State<WebState>,
    Extension(session): Extension<Session>,
    lang: Lang,
    Path(id): Path<String>,
    Query(query): Query<ListQuery>,
) -> Result<Response, WebError> {
    let app = state.app();
    let conf = visible_conference(&app, &session, &id)?;
    let regs = filtered(&state, &conf, &query).await?;
    let people: u32 = regs.iter().map(|r| r.party_size).sum();
    let rows: Vec<_> = regs.iter().map(|r| row(&conf, r, lang)).collect();
    let filter = serde_urlencoded::to_string([("q", &query.q), ("status", &query.status)])
        .unwrap_or_default();
    let statuses: Vec<_> = [
        Status::Confirmed,
        Status::Waitlisted,
        Status::Pending,
        Status::Cancelled,
    ]
    .iter()
    .map(|s| minijinja::context! { value => s.as_str(), label => lang.status(*s) })
    .collect();
    let workshops: Vec<_> = conf
        .workshops
        .iter()
        .map(|w| minijinja::context! { id => w.id.clone(), title => w.title.clone() })
        .collect();
    Ok(render(
        "attendees.html",
        lang,
        Some(&session),
        minijinja::context! {
            conference => conference_view(&conf, lang),
            rows, people, statuses, workshops, filter,
            q => query.q, status => query.status,
            ok => super::flash(lang, &query.ok), n => query.n,
            nav => "list",
        },
    )?
    .into_response())
}

/// Title, date and place of a conference for page headers.
pub fn conference_view(conf: &Conference, lang: Lang) -> minijinja::Value {
    minijinja::context! {
        id => conf.id.clone(),
        href => format!("/conferences/{}", path_segment(&conf.id)),
        title => conf.title.clone(),
        when => conf.local_starts().format(lang.datetime_format()).to_string(),
        date => conf.local_starts().format(lang.date_format()).to_string(),
        time => format!("{}–{}", conf.local_starts().format("%H:%M"), conf.local_ends().format("%H:%M")),
        location => conf.location.clone(),
        capacity => conf.capacity,
    }
}

fn add_page(
    lang: Lang,
    session: &Session,
    conf: &Conference,
    form: &FormData,
    errors: minijinja::Value,
    default_language: Language,
) -> Result<Response, WebError> {
    let chosen = form.all("workshop");
    let workshops: Vec<_> = conf
        .workshops
        .iter()
        .map(|w| minijinja::context! { id => w.id.clone(), title => w.title.clone(), checked => chosen.contains(&w.id) })
        .collect();
    // A form sent back with a mistake is a 400, so tests and tools see it.
    let status = if form.has("csrf") {
        StatusCode::BAD_REQUEST
    } else {
        StatusCode::OK
    };
    let language = match form.get("language") {
        "" => default_language.code(),
        l => l,
    };
    let page = render(
        "add.html",
        lang,
        Some(session),
        minijinja::context! {
            conference => conference_view(conf, lang),
            workshops, errors,
            email => form.get("email"), name => form.get("name"),
            organization => form.get("organization"),
            party_size => match form.get("party_size") { "" => "1", p => p },
            notes => form.get("notes"), language, force => form.has("force"),
            nav => "list",
        },
    )?;
    Ok((status, page).into_response())
}

pub async fn add_form(
    State(state): State<WebState>,
    Extension(session): Extension<Session>,
    lang: Lang,
    Path(id): Path<String>,
) -> Result<Response, WebError> {
    let app = state.app();
    let conf = visible_conference(&app, &session, &id)?;
    add_page(
        lang,
        &session,
        &conf,
        &FormData::default(),
        no_errors(),
        app.config.defaults.language,
    )
}

fn no_errors() -> minijinja::Value {
    minijinja::context! { email => (), party_size => () }
}

/// A party size from a form: 1 to 50.
pub fn party_size(s: &str) -> Option<u32> {
    s.parse::<u32>().ok().filter(|n| (1..=50).contains(n))
}

/// One note per line of a text area.
pub fn lines(s: &str) -> Vec<String> {
    s.lines()
        .map(str::trim)
        .filter(|l| !l.is_empty())
        .map(str::to_string)
        .collect()
}

pub async fn add(
    State(state): State<WebState>,
    Extension(session): Extension<Session>,
    Extension(form): Extension<FormData>,
    lang: Lang,
    Path(id): Path<String>,
) -> Result<Response, WebError> {
    let app = state.app();
    let conf = visible_conference(&app, &session, &id)?;
    let size = party_size(form.get("party_size"));
    let default_language = app.config.defaults.language;
    if form.get("email").is_empty() || size.is_none() {
        let errors = minijinja::context! {
            email => form.get("email").is_empty().then(|| lang.word("required")),
            party_size => size.is_none().then(|| lang.word("bad_number")),
        };
        return add_page(lang, &session, &conf, &form, errors, default_language);
    }
    let new = NewRegistration {
        email: form.get("email").to_string(),
        name: Some(form.get("name").to_string()),
        organization: Some(form.get("organization").to_string()),
        party_size: size.unwrap_or(1),
        workshops: form.all("workshop"),
        notes: lines(form.get("notes")),
        language: Language::parse(form.get("language")),
        force: form.has("force"),
    };
    match manual::add(
        &app,
        &conf,
        new,
        Actor::Web {
            user: &session.user.name,
        },
    )
    .await
    {
        Ok(added) => Ok(see_other(&format!(
            "/conferences/{}/attendees/{}?ok=added",
            path_segment(&conf.id),
            path_segment(&added.email)
        ))),
        Err(ManualError::BadEmail(_)) => {
            let errors = minijinja::context! { email => lang.word("bad_email"), party_size => () };
            add_page(lang, &session, &conf, &form, errors, default_language)
        }
        Err(e @ ManualError::UnknownWorkshop { .. }) => Err(WebError::BadRequest(e.to_string())),
        Err(e) => Err(WebError::Internal(e.into())),
    }
}

/// Times stored as text, shown in the conference's zone.
pub fn when(stored: &str, conf: &Conference, lang: Lang) -> String {
    local_time(stored, conf.timezone, lang)
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn folding_compares_as_a_german_reader_does() {
        assert_eq!(fold("Şahin"), "sahin");
        assert_eq!(fold("Öztürk"), "ozturk");
        assert_eq!(fold("Yılmaz"), "yilmaz");
        assert_eq!(fold("Groß"), "gross");
        assert_eq!(fold("Łukasz"), "lukasz");
    }

    #[test]
    fn every_search_word_must_be_found_somewhere() {
        let r = Registration {
            id: 1,
            conference_id: "c".into(),
            email: crate::storage::EmailAddress::from_stored("ayse@example.org".into()),
            name: Some("Ayşe Yılmaz".into()),
            organization: Some("Verein Brückenbau".into()),
            party_size: 1,
            companions: vec![],
            workshops: vec![],
            status: Status::Confirmed,
            language: Language::De,
            notes: vec![],
            registered_at: chrono::Utc::now(),
            updated_at: chrono::Utc::now(),
            last_message_id: None,
        };
        assert!(Search::new("yilmaz").matches(&r));
        assert!(Search::new("AYSE bruckenbau").matches(&r));
        assert!(Search::new("example.org").matches(&r));
        assert!(Search::new("").matches(&r));
        assert!(!Search::new("yilmaz hannover").matches(&r));
    }
}
