//! Broadcast: one mail an organizer wrote, sent to every attendee of a
//! conference (`rsvpd send`) — one message per attendee, never one message
//! with everyone in Bcc, so nobody sees anybody's address and every mail can
//! greet its reader by name.
//!
//! The subject and body are minijinja templates with the same placeholders as
//! the built-in mails (`{{ name }}`, `{{ conference.title }}`, …; see
//! templates/README.md). Everything is rendered before anything is queued, and
//! all mails are queued in one transaction: a placeholder that does not exist
//! fails the whole broadcast with its name, and a crash queues all or nothing.
//! Broadcasts are plain text, marked `Auto-Submitted: auto-generated`, and not
//! threaded (they start a new topic). Addresses that bounced are left out.

use anyhow::{Context as _, anyhow};
use chrono::{DateTime, Utc};

use crate::app::App;
use crate::config::Conference;
use crate::mailer::Rendered;
use crate::outbox::{Enqueued, Mail, enqueue};
use crate::storage::{OutboxKind, Registration, Status};

/// Who gets a broadcast when `--status` is not given.
pub const DEFAULT_STATUSES: [Status; 2] = [Status::Confirmed, Status::Waitlisted];

/// "confirmed,waitlisted" → the statuses; an unknown word names the known ones.
pub fn parse_statuses(s: &str) -> anyhow::Result<Vec<Status>> {
    let mut out = Vec::new();
    for word in s.split(',').map(str::trim).filter(|w| !w.is_empty()) {
        let Ok(status) = Status::parse(word) else {
            return Err(anyhow!(
                "--status `{word}` is not a status; use confirmed, waitlisted, pending or cancelled, separated by commas"
            ));
        };
        if !out.contains(&status) {
            out.push(status);
        }
    }
    if out.is_empty() {
        return Err(anyhow!(
            "--status names no status; e.g. --status confirmed,waitlisted"
        ));
    }
    Ok(out)
}

/// A broadcast rendered for each recipient, not queued yet.
pub struct Plan {
    pub mails: Vec<(Registration, Rendered)>,
    /// Recipients left out, with the reason.
    pub skipped: Vec<(String, String)>,
    /// The first mail as text, for `--dry-run`.
    pub sample: Option<String>,
}

/// Render `subject` and `body` for every registration of `conf` in `statuses`.
pub async fn prepare(
    app: &App,
    conf: &Conference,
    subject: &str,
    body: &str,
    statuses: &[Status],
    now: DateTime<Utc>,
) -> anyhow::Result<Plan> {
    let mut env = minijinja::Environment::new();
    env.set_undefined_behavior(minijinja::UndefinedBehavior::Strict);
    env.add_template("subject", subject)
        .context("the broadcast subject is not a valid template")?;
    env.add_template("body.txt", body)
        .context("the broadcast body is not a valid template")?;
    let regs: Vec<Registration> = app
        .store
        .registrations(&conf.id, true)
        .await?
        .into_iter()
        .filter(|r| statuses.contains(&r.status))
        .collect();
    let undeliverable = app.store.undeliverable_addresses().await?;
    let mut plan = Plan {
        mails: Vec::new(),
        skipped: Vec::new(),
        sample: None,
    };
    for reg in regs {
        if undeliverable.contains(reg.email.as_str()) {
            plan.skipped
                .push((reg.email.to_string(), "the address bounced before".into()));
            continue;
        }
        let ctx = app.renderer.context(conf, &reg, false);
        let render = |name: &str| -> anyhow::Result<String> {
            env.get_template(name)
                .and_then(|t| t.render(minijinja::value::Serde(&ctx)))
                .with_context(|| {
                    format!(
                        "the broadcast {} does not render (templates/README.md lists every placeholder)",
                        if name == "subject" { "subject" } else { "body" }
                    )
                })
        };
        let subject = render("subject")?;
        let text = render("body.txt")?;
        if plan.sample.is_none() {
            plan.sample = Some(format!(
                "To: {}\nSubject: {}\n\n{}",
                reg.email,
                crate::mailer::header_safe(&subject),
                text
            ));
        }
        let rendered = app.renderer.compose_to(&reg, &subject, text, now)?;
        plan.mails.push((reg, rendered));
    }
    Ok(plan)
}

/// Queue every mail of `plan` in one transaction; returns how many.
pub async fn queue(
    app: &App,
    conf: &Conference,
    plan: Plan,
    now: DateTime<Utc>,
) -> anyhow::Result<usize> {
    let mut tx = app.store.begin().await?;
    let mut n = 0;
    for (reg, rendered) in plan.mails {
        let mail = Mail {
            kind: OutboxKind::Broadcast,
            conference_id: Some(&conf.id),
            registration_id: Some(reg.id),
            recipient: &reg.email,
            in_reply_to: None,
            answers_per_day: None,
        };
        // An address that bounced since `prepare` is left out here too.
        if enqueue(&mut tx, mail, now, || Ok(rendered)).await? == Enqueued::Queued {
            n += 1;
        }
    }
    tx.commit().await?;
    app.outbox_wakeup.notify_one();
    Ok(n)
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn statuses_parse_and_unknown_ones_are_named() {
        assert_eq!(
            parse_statuses("confirmed, waitlisted,confirmed").unwrap(),
            vec![Status::Confirmed, Status::Waitlisted]
        );
        let e = parse_statuses("confirmd").unwrap_err().to_string();
        assert!(e.contains("confirmd") && e.contains("waitlisted"), "{e}");
        assert!(parse_statuses(",").is_err());
    }
}
