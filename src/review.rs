//! The review queue's two decisions, for the CLI (`rsvpd review assign|dismiss`)
//! and the web dashboard alike: *assign* a mail rsvpd could not place to a
//! conference (optionally with the organizer's corrections of what it read),
//! or *dismiss* it.
//!
//! Assigning reads the stored mail again as if only the chosen conference
//! existed and applies it through the same [`Registrar`](crate::register)
//! as any mail, in one transaction with closing the review item: the answer
//! threads to the attendee's mail, and the audit trail names that mail as
//! the source. This module decides nothing about statuses or mail; it only
//! turns the organizer's choice into an [`Action`].

use anyhow::{Context as _, anyhow, bail};
use chrono::Utc;

use crate::app::App;
use crate::config::Conference;
use crate::register::Actor;
use crate::storage::{EmailAddress, InboundOutcome, Status, Store};
use crate::understand::{self, Action, Attendee, Context, Understood};

/// What an organizer corrected before assigning: these replace what rsvpd
/// read for the first attendee (the sender).
#[derive(Debug, Clone, Default, PartialEq, Eq)]
pub struct Correction {
    pub name: Option<String>,
    pub organization: Option<String>,
    pub party_size: u32,
    /// Workshop ids of the chosen conference.
    pub workshops: Vec<String>,
    pub notes: Vec<String>,
}

/// What became of an assigned review item.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Assigned {
    pub conference: String,
    /// The first attendee's address and status after the assignment, if the
    /// mail registered someone.
    pub email: Option<String>,
    pub status: Option<Status>,
    pub queued: usize,
}

/// Read the stored mail of open review item `id` as if it were written for
/// `conference` only; `None` when there is no such open item.
pub async fn understood_for(
    app: &App,
    id: i64,
    conference: &str,
) -> anyhow::Result<Option<(Understood, Vec<u8>)>> {
    let Some((_, raw)) = app.store.review_raw(id).await? else {
        return Ok(None);
    };
    let refs: Vec<_> = app
        .conference_refs()
        .into_iter()
        .filter(|c| c.id == conference)
        .collect();
    let ctx = Context {
        conferences: &refs,
        mailbox_address: &app.config.mailbox.address,
        thread_conference: Some(conference),
        default_language: app.config.defaults.language,
    };
    let understood = understand::understand(&raw, &ctx);
    Ok(Some((understood, raw)))
}

/// The action an assignment applies: what rsvpd reads for `conference`, or
/// (when that is not a registration, or the organizer corrected it) a
/// registration of the sender with the corrected fields.
pub fn action_for(
    understood: &Understood,
    conference: &Conference,
    correction: Option<&Correction>,
) -> anyhow::Result<Action> {
    let sender = || -> anyhow::Result<Attendee> {
        let email = understood
            .from
            .clone()
            .ok_or_else(|| anyhow!("the mail has no sender address to register"))?;
        Ok(Attendee {
            email,
            name: None,
            organization: None,
            party_size: 1,
            companions: vec![],
            workshops: vec![],
            notes: vec![],
            language: understood.language,
            address_note: None,
        })
    };
    let Some(c) = correction else {
        return match &understood.action {
            a @ (Action::Register { .. }
            | Action::Update { .. }
            | Action::Cancel { .. }
            | Action::Confirm { .. }) => Ok(a.clone()),
            // The organizer decided this is a registration: register the sender.
            _ => Ok(Action::Register {
                conference: conference.id.clone(),
                attendees: vec![sender()?],
            }),
        };
    };
    for w in &c.workshops {
        if !conference.workshops.iter().any(|x| &x.id == w) {
            let ids: Vec<&str> = conference.workshops.iter().map(|w| w.id.as_str()).collect();
            bail!(
                "conference {} has no workshop `{w}`; known: {}",
                conference.id,
                ids.join(", ")
            );
        }
    }
    let mut attendees = match &understood.action {
        Action::Register { attendees, .. } | Action::Update { attendees, .. }
            if !attendees.is_empty() =>
        {
            attendees.clone()
        }
        _ => vec![sender()?],
    };
    let first = &mut attendees[0];
    first.name = c.name.clone().filter(|n| !n.trim().is_empty());
    first.organization = c.organization.clone().filter(|o| !o.trim().is_empty());
    first.party_size = c.party_size.max(1);
    first
        .companions
        .truncate(first.party_size.saturating_sub(1) as usize);
    first.workshops = c.workshops.clone();
    first.notes = c.notes.clone();
    Ok(Action::Register {
        conference: conference.id.clone(),
        attendees,
    })
}

/// Assign review item `id` to `conference` (with the organizer's corrections,
/// if any) and answer the attendee; `by` names the organizer for the record.
pub async fn assign(
    app: &App,
    id: i64,
    conference: &str,
    correction: Option<&Correction>,
    by: &str,
) -> anyhow::Result<Assigned> {
    let conf = app
        .config
        .conference(conference)
        .ok_or_else(|| anyhow!("conference `{conference}` is not configured"))?;
    let (understood, raw) = understood_for(app, id, conference)
        .await?
        .ok_or_else(|| anyhow!("no open review item {id}; `rsvpd review` lists them"))?;
    let action =
        action_for(&understood, conf, correction).with_context(|| format!("review item {id}"))?;
    let message_id = understood
        .message_id
        .clone()
        .unwrap_or_else(|| crate::pipeline::synthetic_message_id(&raw));
    let now = Utc::now();
    let mut tx = app.store.begin().await?;
    let outcome = app
        .registrar()
        .apply(
            &mut tx,
            &action,
            Actor::Mail {
                message_id: &message_id,
            },
            now,
        )
        .await?;
    if outcome.outcome == InboundOutcome::Review {
        bail!(
            "review item {id} still cannot be applied: {}",
            outcome.reason.unwrap_or_default()
        );
    }
    let email = match &action {
        Action::Register { attendees, .. } | Action::Update { attendees, .. } => {
            attendees.first().map(|a| a.email.trim().to_lowercase())
        }
        Action::Cancel { email, .. } | Action::Confirm { email, .. } => {
            Some(email.trim().to_lowercase())
        }
        _ => None,
    };
    let status = match email.as_deref().map(EmailAddress::parse) {
        Some(Ok(e)) => tx.registration(&conf.id, &e).await?.map(|r| r.status),
        _ => None,
    };
    let reason = format!("assigned to {conference} by {by}");
    if !tx
        .resolve_review(id, InboundOutcome::Recorded, &reason, Some(conference))
        .await?
    {
        bail!("review item {id} was closed meanwhile");
    }
    tx.commit().await?;
    if outcome.queued > 0 {
        app.outbox_wakeup.notify_one();
    }
    app.schedule_wakeup.notify_one();
    Ok(Assigned {
        conference: conf.id.clone(),
        email,
        status,
        queued: outcome.queued,
    })
}

/// Close review item `id` without action; false when it is not open.
pub async fn dismiss(store: &Store, id: i64, by: &str) -> anyhow::Result<bool> {
    let mut tx = store.begin().await?;
    let reason = format!("dismissed by {by}");
    if !tx
        .resolve_review(id, InboundOutcome::Dismissed, &reason, None)
        .await?
    {
        return Ok(false);
    }
    tx.commit().await?;
    Ok(true)
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::config::Language;

    fn conf() -> Conference {
        let (_dir, config) = crate::test_support::config(
            r#"[[conference]]
id = "miko"
title = "MiKo"
starts = "2099-10-15T13:30"
ends = "2099-10-15T19:30"
workshops = [{ id = "w1", title = "Eins" }, { id = "w2", title = "Zwei" }]
"#,
        );
        config.expect("config").conferences[0].clone()
    }

    fn review_of(from: &str) -> Understood {
        Understood {
            message_id: Some("m@x".into()),
            from: Some(from.into()),
            subject: "Hallo".into(),
            language: Language::En,
            action: Action::Review {
                reason: "unclear".into(),
                conference: None,
            },
            explanation: Default::default(),
        }
    }

    #[test]
    fn without_correction_an_unclear_mail_registers_the_sender() {
        let a = action_for(&review_of("ayse@example.org"), &conf(), None).expect("action");
        let Action::Register {
            conference,
            attendees,
        } = a
        else {
            panic!("not a registration: {a:?}");
        };
        assert_eq!(conference, "miko");
        assert_eq!(attendees.len(), 1);
        assert_eq!(attendees[0].email, "ayse@example.org");
        assert_eq!(attendees[0].party_size, 1);
        assert_eq!(attendees[0].language, Language::En);
    }

    #[test]
    fn a_correction_replaces_what_was_read_for_the_sender() {
        let mut u = review_of("ayse@example.org");
        u.action = Action::Register {
            conference: "miko".into(),
            attendees: vec![Attendee {
                email: "ayse@example.org".into(),
                name: Some("Ayse".into()),
                organization: None,
                party_size: 4,
                companions: vec!["A".into(), "B".into(), "C".into()],
                workshops: vec!["w1".into()],
                notes: vec!["Rollstuhl".into()],
                language: Language::De,
                address_note: None,
            }],
        };
        let c = Correction {
            name: Some("Ayşe Yılmaz".into()),
            organization: Some("MiSO".into()),
            party_size: 2,
            workshops: vec!["w2".into()],
            notes: vec![],
        };
        let Action::Register { attendees, .. } = action_for(&u, &conf(), Some(&c)).expect("action")
        else {
            panic!("not a registration");
        };
        let a = &attendees[0];
        assert_eq!(a.name.as_deref(), Some("Ayşe Yılmaz"));
        assert_eq!(a.organization.as_deref(), Some("MiSO"));
        assert_eq!(a.party_size, 2);
        assert_eq!(a.companions, vec!["A".to_string()]);
        assert_eq!(a.workshops, vec!["w2".to_string()]);
        assert!(a.notes.is_empty());
        assert_eq!(a.language, Language::De);
    }

    #[test]
    fn a_correction_with_an_unknown_workshop_is_refused_with_the_known_ones() {
        let c = Correction {
            party_size: 1,
            workshops: vec!["w9".into()],
            ..Correction::default()
        };
        let e = action_for(&review_of("a@example.org"), &conf(), Some(&c))
            .expect_err("refused")
            .to_string();
        assert!(e.contains("w9") && e.contains("w1, w2"), "{e}");
    }
}
