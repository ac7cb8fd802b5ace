//! `GET /`: the conferences the user may see, each with its people confirmed,
//! waitlisted and not yet confirmed against the capacity, the fill of each
//! workshop as a bar, and the registrations of the last seven days; above
//! them, how many mails wait for review and how many could not be delivered.

use axum::Extension;
use axum::extract::State;
use axum::response::Html;
use chrono::{DateTime, Duration, Utc};
use serde::Serialize;

use super::auth::Session;
use super::i18n::Lang;
use super::{WebError, WebState, render};
use crate::config::Conference;
use crate::storage::{Registration, Status};

#[derive(Debug, Clone, Serialize, PartialEq)]
pub struct Bar {
    pub label: String,
    pub people: u32,
    /// Width of the bar, 0–100.
    pub percent: u32,
}

/// The numbers of one conference, as the overview shows them.
#[derive(Debug, Clone, Serialize, PartialEq)]
pub struct Stats {
    pub confirmed: u32,
    pub waitlisted: u32,
    pub pending: u32,
    pub capacity: Option<u32>,
    /// Confirmed people against the capacity, 0–100 (None without capacity).
    pub percent: Option<u32>,
    pub new_this_week: usize,
    pub workshops: Vec<Bar>,
}

fn percent(part: u32, whole: u32) -> u32 {
    if whole == 0 {
        0
    } else {
        (u64::from(part) * 100 / u64::from(whole)).min(100) as u32
    }
}

/// People are party sizes; a workshop counts the confirmed parties that chose it.
pub fn stats(conf: &Conference, regs: &[Registration], now: DateTime<Utc>) -> Stats {
    let people = |s: Status| {
        regs.iter()
            .filter(|r| r.status == s)
            .map(|r| r.party_size)
            .sum::<u32>()
    };
    let confirmed = people(Status::Confirmed);
    let week_ago = now - Duration::days(7);
    let workshop_whole = conf.capacity.unwrap_or(confirmed);
    let workshops = conf
        .workshops
        .iter()
        .map(|w| {
            let n = regs
                .iter()
                .filter(|r| r.status == Status::Confirmed && r.workshops.contains(&w.id))
                .map(|r| r.party_size)
                .sum();
            Bar {
                label: w.title.clone(),
                people: n,
                percent: percent(n, workshop_whole),
            }
        })
        .collect();
    Stats {
        confirmed,
        waitlisted: people(Status::Waitlisted),
        pending: people(Status::Pending),
        capacity: conf.capacity,
        percent: conf.capacity.map(|c| percent(confirmed, c)),
        new_this_week: regs
            .iter()
            .filter(|r| r.status != Status::Cancelled && r.registered_at > week_ago)
            .count(),
        workshops,
    }
}

pub async fn page(
    State(state): State<WebState>,
    Extension(session): Extension<Session>,
    lang: Lang,
) -> Result<Html<String>, WebError> {
    let app = state.app();
    let now = Utc::now();
    let mut conferences = Vec::new();
    for c in app
        .config
        .conferences
        .iter()
        .filter(|c| session.may_see(&c.id))
    {
        let regs = app.store.registrations(&c.id, true).await?;
        let tz = c.timezone;
        conferences.push(minijinja::context! {
            id => c.id.clone(),
            title => c.title.clone(),
            when => c.local_starts().format(lang.datetime_format()).to_string(),
            location => c.location.clone(),
            open => c.is_open(now),
            stats => minijinja::Value::from(minijinja::value::Serde(stats(c, &regs, now))),
            tz => tz.name(),
        });
    }
    let review = super::review::visible_items(&app, &session).await?.len();
    let failed = super::outbox::visible_items(&app, &session)
        .await?
        .iter()
        .filter(|o| o.state == "failed")
        .count();
    render(
        "overview.html",
        lang,
        Some(&session),
        minijinja::context! { conferences, review, failed, nav => "overview" },
    )
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::config::Language;

    fn reg(status: Status, party: u32, workshops: &[&str], days_ago: i64) -> Registration {
        let now = Utc::now();
        Registration {
            id: 0,
            conference_id: "c".into(),
            email: crate::storage::EmailAddress::from_stored("a@example.org".into()),
            name: None,
            organization: None,
            party_size: party,
            companions: vec![],
            workshops: workshops.iter().map(|w| w.to_string()).collect(),
            status,
            language: Language::De,
            notes: vec![],
            registered_at: now - Duration::days(days_ago),
            updated_at: now,
            last_message_id: None,
        }
    }

    #[test]
    fn people_are_party_sizes_and_workshops_count_confirmed_parties() {
        let (_d, config) = crate::test_support::config(
            r#"[[conference]]
id = "c"
title = "C"
starts = "2099-10-15T13:30"
ends = "2099-10-15T19:30"
capacity = 10
workshops = [{ id = "w1", title = "Eins" }, { id = "w2", title = "Zwei" }]
"#,
        );
        let conf = config.expect("config").conferences[0].clone();
        let regs = vec![
            reg(Status::Confirmed, 3, &["w1"], 1),
            reg(Status::Confirmed, 2, &["w1", "w2"], 10),
            reg(Status::Waitlisted, 4, &["w2"], 2),
            reg(Status::Pending, 1, &[], 3),
            reg(Status::Cancelled, 5, &["w2"], 1),
        ];
        let s = stats(&conf, &regs, Utc::now());
        assert_eq!((s.confirmed, s.waitlisted, s.pending), (5, 4, 1));
        assert_eq!(s.percent, Some(50));
        assert_eq!(s.new_this_week, 3);
        assert_eq!(s.workshops[0].people, 5);
        assert_eq!(s.workshops[0].percent, 50);
        assert_eq!(s.workshops[1].people, 2);
        assert_eq!(s.workshops[1].percent, 20);
    }
}
