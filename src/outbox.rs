//! The outbox worker: sends queued mail, one message per step.
//!
//! Retry state lives in the database (attempts, next attempt, last error), never
//! in memory, so a restart picks up exactly where the last run stopped. A 4xx or
//! a connection problem is retried with exponential backoff; a 5xx fails the
//! message for good and marks the address undeliverable. The rate limit
//! (`max_per_minute`) is counted from the sent rows, so it holds across restarts.
//! A crash between the server's 250 and our commit sends that one mail twice;
//! that is the only duplicate possible. A mail is claimed before it is sent
//! (`Store::claim_due`), so senders working side by side never send one mail
//! twice while they live.
//!
//! `enqueue` is the one way mail gets into the outbox: every flow (answers,
//! reminders, digests, broadcasts) calls it inside its own transaction, and it
//! holds the rules that apply to all of them (never to an address that
//! bounced; answers to incoming mail capped per address and day).

use chrono::{DateTime, Duration, Utc};
use tracing::{info, warn};

use crate::app::App;
use crate::failpoint::failpoint;
use crate::mailer::{Rendered, SendError, Transport};
use crate::mask::mask;
use crate::storage::{NewOutbox, OutboxKind, StoreTx};

/// Give up on a message that still fails after this many tries (about two days with the backoff).
pub const MAX_ATTEMPTS: i64 = 40;

#[derive(Debug, Clone, PartialEq, Eq)]
pub enum Step {
    /// A message was handed to the transport (or failed for good).
    Worked,
    /// Nothing due now; the next message falls due then (None: the queue is empty).
    Idle(Option<DateTime<Utc>>),
    /// The rate limit is reached until then.
    Throttled(DateTime<Utc>),
}

/// A mail to queue, before it is rendered.
#[derive(Debug, Clone)]
pub struct Mail<'a> {
    pub kind: OutboxKind,
    pub conference_id: Option<&'a str>,
    pub registration_id: Option<i64>,
    pub recipient: &'a str,
    pub in_reply_to: Option<&'a str>,
    /// Some(n): an answer to incoming mail, not queued when `n` answers went
    /// to the recipient in the last 24 hours (robots must not ping-pong).
    pub answers_per_day: Option<u32>,
}

/// What `enqueue` did.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Enqueued {
    Queued,
    /// Not queued: the address bounced before.
    Undeliverable,
    /// Not queued: the daily cap of answers to this address is reached.
    CapReached(u32),
}

/// Queue `mail` inside `tx`, rendered by `render` only if it is to go out.
pub async fn enqueue(
    tx: &mut StoreTx,
    mail: Mail<'_>,
    now: DateTime<Utc>,
    render: impl FnOnce() -> anyhow::Result<Rendered>,
) -> anyhow::Result<Enqueued> {
    if tx.is_undeliverable(mail.recipient).await? {
        return Ok(Enqueued::Undeliverable);
    }
    if let Some(cap) = mail.answers_per_day
        && tx
            .answers_since(mail.recipient, now - Duration::hours(24))
            .await?
            >= i64::from(cap)
    {
        return Ok(Enqueued::CapReached(cap));
    }
    let rendered = render()?;
    tx.queue(
        &NewOutbox {
            kind: mail.kind,
            conference_id: mail.conference_id.map(str::to_string),
            registration_id: mail.registration_id,
            recipient: mail.recipient.to_string(),
            message_id: rendered.message_id,
            in_reply_to: mail.in_reply_to.map(str::to_string),
            subject: rendered.subject,
            raw: rendered.raw,
        },
        now,
    )
    .await?;
    Ok(Enqueued::Queued)
}

/// Seconds to wait after the `attempts`-th failure: 30 s, 1 min, 2 min, … at most 1 h.
pub fn backoff(attempts: i64) -> Duration {
    let secs = 30i64.saturating_mul(1i64 << attempts.clamp(0, 7));
    Duration::seconds(secs.min(3600))
}

/// How long `queued` mails take at `max_per_minute` from `now`, as a sentence
/// with the expected finish in `tz` — so that a broadcast to 2,000 people at
/// 60 a minute (half an hour) does not look stuck.
pub fn expected_finish(
    queued: usize,
    max_per_minute: u32,
    now: DateTime<Utc>,
    tz: chrono_tz::Tz,
) -> String {
    let per_minute = i64::from(max_per_minute.max(1));
    // A minute's worth leaves at once, then one more each minute.
    let minutes = (queued as i64 - 1).max(0) / per_minute;
    if minutes == 0 {
        return format!("{queued} mail(s) queued; they leave within a minute");
    }
    let finish = (now + Duration::minutes(minutes)).with_timezone(&tz);
    format!(
        "{queued} mail(s) queued; at [smtp] max_per_minute = {max_per_minute} the last leaves in about {minutes} min, around {}",
        finish.format("%H:%M")
    )
}

/// The sentence of [`expected_finish`] for what is queued now.
pub async fn backlog_notice(app: &App) -> anyhow::Result<String> {
    let queued = app
        .store
        .outbox_items()
        .await?
        .iter()
        .filter(|m| m.state == crate::domain::OutboxState::Queued)
        .count();
    Ok(expected_finish(
        queued,
        app.config.smtp.max_per_minute,
        Utc::now(),
        app.config.defaults.timezone,
    ))
}

pub async fn step(app: &App, transport: &Transport) -> anyhow::Result<Step> {
    let now = Utc::now();
    let limit = i64::from(app.config.smtp.max_per_minute);
    if app.store.sent_since(now - Duration::seconds(60)).await? >= limit {
        return Ok(Step::Throttled(now + Duration::seconds(1)));
    }
    // Claimed, not just read: another sender (a second worker, `run --once`
    // beside the daemon, another instance) skips it while this one lives.
    let lease = crate::storage::lease_for(app.config.smtp.timeout);
    let Some(msg) = app.store.claim_due(now, lease).await? else {
        return Ok(Step::Idle(app.store.next_due_at().await?));
    };
    let from = app.config.smtp.from.email.clone();
    failpoint("before-send");
    match transport.send(&from, &msg.recipient, &msg.raw).await {
        Ok(()) => {
            failpoint("after-send");
            app.store.mark_sent(msg.id, Utc::now()).await?;
            info!(outbox = msg.id, to = %mask(&msg.recipient), "mail sent");
        }
        Err(SendError::Permanent(e)) => {
            app.store
                .mark_failed(msg.id, &e, Some(&msg.recipient))
                .await?;
            warn!(outbox = msg.id, to = %mask(&msg.recipient), error = %e, "mail refused for good; address marked undeliverable");
        }
        Err(SendError::Transient(e)) if msg.attempts + 1 >= MAX_ATTEMPTS => {
            app.store.mark_failed(msg.id, &e, None).await?;
            warn!(outbox = msg.id, to = %mask(&msg.recipient), error = %e, "mail given up after {MAX_ATTEMPTS} tries");
        }
        Err(SendError::Transient(e)) => {
            let next = Utc::now() + backoff(msg.attempts);
            app.store.mark_retry(msg.id, &e, next).await?;
            warn!(outbox = msg.id, to = %mask(&msg.recipient), error = %e, retry_at = %next, "mail not sent; will retry");
        }
    }
    Ok(Step::Worked)
}

#[cfg(test)]
mod tests {
    use super::{backoff, expected_finish};
    use chrono::TimeZone as _;

    #[test]
    fn a_broadcast_to_2000_at_60_a_minute_says_when_it_ends() {
        let now = chrono::Utc.with_ymd_and_hms(2027, 9, 6, 8, 0, 0).unwrap();
        let tz = chrono_tz::Europe::Berlin;
        let s = expected_finish(2000, 60, now, tz);
        assert!(s.contains("about 33 min") && s.contains("10:33"), "{s}");
        let s = expected_finish(60, 60, now, tz);
        assert!(s.contains("within a minute"), "{s}");
    }

    #[test]
    fn backoff_grows_and_is_capped() {
        assert_eq!(backoff(0).num_seconds(), 30);
        assert_eq!(backoff(1).num_seconds(), 60);
        assert_eq!(backoff(6).num_seconds(), 1920);
        assert_eq!(backoff(7).num_seconds(), 3600);
        assert_eq!(backoff(100).num_seconds(), 3600);
    }
}

#[cfg(test)]
mod rate_tests {
    use super::*;
    use crate::config::Config;
    use crate::storage::NewOutbox;

    #[tokio::test]
    async fn max_per_minute_holds_across_steps() {
        let dir = tempfile::tempdir().expect("dir");
        let text = "[mailbox]\nurl = \"maildir://inbox\"\n[smtp]\nurl = \"file://sent\"\n\
                    from = \"a@example.org\"\nmax_per_minute = 2\n[database]\nurl = \"sqlite://db.sqlite\"\n";
        let config =
            Config::parse(&dir.path().join("rsvpd.toml"), text, &|_| None).expect("config");
        let transport = Transport::new(&config.smtp).expect("transport");
        let app = App::open(config).await.expect("app");
        let mut tx = app.store.begin().await.expect("tx");
        for i in 0..3 {
            let m = NewOutbox {
                kind: crate::domain::OutboxKind::Confirmation,
                conference_id: None,
                registration_id: None,
                recipient: format!("p{i}@example.org"),
                message_id: format!("m{i}@example.org"),
                in_reply_to: None,
                subject: "s".into(),
                raw: b"Subject: s\r\n\r\nx\r\n".to_vec(),
            };
            tx.queue(&m, Utc::now()).await.expect("queue");
        }
        tx.commit().await.expect("commit");
        assert_eq!(step(&app, &transport).await.expect("step"), Step::Worked);
        assert_eq!(step(&app, &transport).await.expect("step"), Step::Worked);
        assert!(matches!(
            step(&app, &transport).await.expect("step"),
            Step::Throttled(_)
        ));
        let sent = std::fs::read_dir(dir.path().join("sent"))
            .expect("dir")
            .count();
        assert_eq!(sent, 2);
    }
}
