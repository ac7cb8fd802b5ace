//! `GET /conferences/{id}/sign-in`: the printable sign-in sheet — for the
//! whole conference or one workshop (`?workshop=w1`; publicly funded events
//! file a signed list per session). A4 pages of `?rows=` rows (20 unless
//! given), each page with the title, date, place and the column heads again;
//! confirmed people sorted by name as a German reader expects (Ş with S, Ö
//! with O, see [`fold`]); the last page filled with empty numbered rows for
//! people who come without registering.

use axum::Extension;
use axum::extract::{Path, Query, State};
use axum::response::Html;
use serde::Deserialize;

use super::attendees::{conference_view, fold};
use super::auth::Session;
use super::i18n::Lang;
use super::{WebError, WebState, render, visible_conference};
use crate::storage::{Registration, Status};

#[derive(Debug, Default, Deserialize)]
pub struct SignInQuery {
    #[serde(default)]
    pub workshop: String,
    pub rows: Option<usize>,
}

/// Sorted by name (the address where there is none), German letters folded.
pub fn sorted(mut regs: Vec<Registration>) -> Vec<Registration> {
    let key = |r: &Registration| {
        let name = r.name.clone().unwrap_or_else(|| r.email.to_string());
        (fold(&name), name)
    };
    regs.sort_by_cached_key(key);
    regs
}

pub async fn page(
    State(state): State<WebState>,
    Extension(session): Extension<Session>,
    lang: Lang,
    Path(id): Path<String>,
    Query(query): Query<SignInQuery>,
) -> Result<Html<String>, WebError> {
    let app = state.app();
    let conf = visible_conference(&app, &session, &id)?;
    let workshop = match query.workshop.as_str() {
        "" => None,
        w => Some(
            conf.workshops
                .iter()
                .find(|x| x.id == w)
                .cloned()
                .ok_or(WebError::NotFound)?,
        ),
    };
    let per_page = query.rows.unwrap_or(20).clamp(5, 40);
    let regs: Vec<Registration> = app
        .store
        .registrations(&conf.id, false)
        .await?
        .into_iter()
        .filter(|r| r.status == Status::Confirmed)
        .filter(|r| {
            workshop
                .as_ref()
                .is_none_or(|w| r.workshops.contains(&w.id))
        })
        .collect();
    let people: u32 = regs.iter().map(|r| r.party_size).sum();
    let mut rows: Vec<minijinja::Value> = sorted(regs)
        .iter()
        .enumerate()
        .map(|(i, r)| {
            minijinja::context! {
                n => i + 1,
                name => r.name.clone().unwrap_or_else(|| r.email.to_string()),
                companions => r.companions.clone(),
                organization => r.organization.clone(),
                party_size => r.party_size,
                blank => false,
            }
        })
        .collect();
    let registered = rows.len();
    // Fill the last page (or start one) with empty rows for walk-ins.
    let blanks = per_page - registered % per_page;
    let blanks = if blanks < 3 {
        blanks + per_page
    } else {
        blanks
    };
    for i in 0..blanks {
        rows.push(minijinja::context! { n => registered + i + 1, blank => true });
    }
    let pages: Vec<Vec<minijinja::Value>> = rows.chunks(per_page).map(|c| c.to_vec()).collect();
    let total = pages.len();
    render(
        "signin.html",
        lang,
        Some(&session),
        minijinja::context! {
            conference => conference_view(&conf, lang),
            workshop => workshop.map(|w| w.title),
            pages, total, people, registered,
            nav => "list",
        },
    )
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::config::Language;

    fn named(name: &str) -> Registration {
        Registration {
            id: 0,
            conference_id: "c".into(),
            email: crate::storage::EmailAddress::from_stored(format!("{}@example.org", name.len())),
            name: Some(name.into()),
            organization: None,
            party_size: 1,
            companions: vec![],
            workshops: vec![],
            status: Status::Confirmed,
            language: Language::De,
            notes: vec![],
            registered_at: chrono::Utc::now(),
            updated_at: chrono::Utc::now(),
            last_message_id: None,
        }
    }

    #[test]
    fn names_sort_as_in_a_german_list() {
        let names = [
            "Zeynep Kaya",
            "Şahin Demir",
            "Özlem Arslan",
            "Oliver Brandt",
            "Sabine Schulz",
            "Ahmed Yıldız",
        ];
        let regs = names.iter().map(|n| named(n)).collect();
        let order: Vec<String> = sorted(regs).into_iter().filter_map(|r| r.name).collect();
        assert_eq!(
            order,
            vec![
                "Ahmed Yıldız",
                "Oliver Brandt",
                "Özlem Arslan",
                "Sabine Schulz",
                "Şahin Demir",
                "Zeynep Kaya"
            ]
        );
    }
}
