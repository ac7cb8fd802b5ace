//! What an organizer changes by hand, from the CLI (`rsvpd add`, `cancel`)
//! or the web dashboard: add a registration, cancel one, send a failed mail
//! again. Each goes through the same [`Registrar`](crate::register) as a mail
//! would, in one transaction with its audit entry and its queued answer, so a
//! registration added by hand gets the same mail as one that came by mail.
//!
//! Input is checked here once, for both callers; the errors are a
//! [`ManualError`] so the web page can say in the reader's language what to
//! fix, while the CLI prints the English message.

use chrono::Utc;

use crate::app::App;
use crate::config::{Conference, Language};
use crate::register::{Actor, Mode};
use crate::storage::{EmailAddress, Status};
use crate::understand::Attendee;

/// A registration an organizer enters.
#[derive(Debug, Clone, Default)]
pub struct NewRegistration {
    pub email: String,
    pub name: Option<String>,
    pub organization: Option<String>,
    pub party_size: u32,
    pub workshops: Vec<String>,
    pub notes: Vec<String>,
    /// None: `[defaults] language`.
    pub language: Option<Language>,
    /// Confirm even over capacity.
    pub force: bool,
}

#[derive(Debug, thiserror::Error)]
pub enum ManualError {
    #[error("`{0}` is not an email address")]
    BadEmail(String),
    #[error("conference {conference} has no workshop `{workshop}`; known: {known}")]
    UnknownWorkshop {
        conference: String,
        workshop: String,
        known: String,
    },
    #[error("{email} has no registration for {conference}")]
    NoRegistration { conference: String, email: String },
    #[error(transparent)]
    Other(#[from] anyhow::Error),
}

/// What `add` did.
#[derive(Debug, Clone)]
pub struct Added {
    pub email: String,
    pub status: Option<Status>,
    pub queued: usize,
    pub note: Option<String>,
}

/// Register someone by hand for `conf` (the same mail as by writing).
pub async fn add(
    app: &App,
    conf: &Conference,
    new: NewRegistration,
    actor: Actor<'_>,
) -> Result<Added, ManualError> {
    let email =
        EmailAddress::parse(&new.email).map_err(|_| ManualError::BadEmail(new.email.clone()))?;
    for w in &new.workshops {
        if !conf.workshops.iter().any(|x| &x.id == w) {
            let known: Vec<&str> = conf.workshops.iter().map(|w| w.id.as_str()).collect();
            return Err(ManualError::UnknownWorkshop {
                conference: conf.id.clone(),
                workshop: w.clone(),
                known: known.join(", "),
            });
        }
    }
    let nonempty = |s: Option<String>| s.map(|s| s.trim().to_string()).filter(|s| !s.is_empty());
    let attendee = Attendee {
        email: email.to_string(),
        name: nonempty(new.name).map(|n| crate::mailer::header_safe(&n)),
        organization: nonempty(new.organization),
        party_size: new.party_size.max(1),
        companions: vec![],
        workshops: new.workshops,
        notes: new
            .notes
            .into_iter()
            .map(|n| n.trim().to_string())
            .filter(|n| !n.is_empty())
            .collect(),
        language: new.language.unwrap_or(app.config.defaults.language),
        address_note: Some("added by an organizer".into()),
    };
    let mode = if new.force {
        Mode::Force
    } else {
        Mode::Register
    };
    let now = Utc::now();
    let mut tx = app.store.begin().await?;
    let (queued, note) = app
        .registrar()
        .register(&mut tx, conf, &attendee, actor, mode, now)
        .await?;
    let status = tx.registration(&conf.id, &email).await?.map(|r| r.status);
    tx.commit().await?;
    if queued > 0 {
        app.outbox_wakeup.notify_one();
    }
    app.schedule_wakeup.notify_one();
    Ok(Added {
        email: email.to_string(),
        status,
        queued,
        note,
    })
}

/// Cancel `email`'s registration for `conf` by hand; returns the mails queued
/// (the receipt, and the promotions of waitlisted people who now fit).
pub async fn cancel(
    app: &App,
    conf: &Conference,
    email: &str,
    actor: Actor<'_>,
) -> Result<usize, ManualError> {
    let parsed =
        EmailAddress::parse(email).map_err(|_| ManualError::BadEmail(email.to_string()))?;
    let mut tx = app.store.begin().await?;
    let result = app
        .registrar()
        .cancel(&mut tx, conf, &parsed, actor, Utc::now())
        .await?;
    let Some((queued, _)) = result else {
        return Err(ManualError::NoRegistration {
            conference: conf.id.clone(),
            email: email.to_string(),
        });
    };
    tx.commit().await?;
    if queued > 0 {
        app.outbox_wakeup.notify_one();
    }
    app.schedule_wakeup.notify_one();
    Ok(queued)
}

/// Queue a mail that failed for good once more, now; its address is no
/// longer treated as undeliverable (the organizer says it works again).
/// False when `id` is not a failed mail.
pub async fn retry(app: &App, id: i64) -> anyhow::Result<bool> {
    let retried = app.store.retry_failed(id, Utc::now()).await?;
    if retried {
        app.outbox_wakeup.notify_one();
    }
    Ok(retried)
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::test_support;

    const CONF: &str = r#"[[conference]]
id = "fishbowl"
title = "Fishbowl"
starts = "2099-11-04T18:00"
ends = "2099-11-04T20:30"
capacity = 2
workshops = [{ id = "w1", title = "Eins" }]
"#;

    #[tokio::test]
    async fn add_checks_its_input_once_for_cli_and_web() {
        let t = test_support::app(CONF).await;
        let conf = t.app.config.conferences[0].clone();
        let bad = NewRegistration {
            email: "not an address".into(),
            ..NewRegistration::default()
        };
        let e = add(&t.app, &conf, bad, Actor::Cli { message_id: None }).await;
        assert!(matches!(e, Err(ManualError::BadEmail(_))), "{e:?}");
        let bad = NewRegistration {
            email: "a@example.org".into(),
            workshops: vec!["w7".into()],
            ..NewRegistration::default()
        };
        let e = add(&t.app, &conf, bad, Actor::Cli { message_id: None }).await;
        assert!(
            matches!(e, Err(ManualError::UnknownWorkshop { ref known, .. }) if known == "w1"),
            "{e:?}"
        );
    }

    #[tokio::test]
    async fn add_then_cancel_by_hand_queues_the_same_mails_as_by_mail() {
        let t = test_support::app(CONF).await;
        let conf = t.app.config.conferences[0].clone();
        let new = NewRegistration {
            email: " Ayse@Example.org ".into(),
            name: Some("Ayşe Yılmaz".into()),
            party_size: 2,
            ..NewRegistration::default()
        };
        let added = add(&t.app, &conf, new, Actor::Web { user: "orga" })
            .await
            .expect("added");
        assert_eq!(added.email, "ayse@example.org");
        assert_eq!(added.status, Some(Status::Confirmed));
        assert_eq!(added.queued, 1);
        let n = cancel(
            &t.app,
            &conf,
            "ayse@example.org",
            Actor::Web { user: "orga" },
        )
        .await
        .expect("cancelled");
        assert_eq!(n, 1);
        let kinds: Vec<&str> = test_support::outbox(&t.app)
            .await
            .into_iter()
            .map(|o| o.kind.as_str())
            .collect();
        assert_eq!(kinds, vec!["confirmation", "cancellation"]);
        let e = cancel(
            &t.app,
            &conf,
            "nobody@example.org",
            Actor::Web { user: "orga" },
        )
        .await;
        assert!(
            matches!(e, Err(ManualError::NoRegistration { .. })),
            "{e:?}"
        );
    }
}
