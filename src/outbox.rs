//! The outbox worker: sends queued mail, a batch of due messages per step.
//!
//! Retry state lives in the database (attempts, next attempt, last error, the
//! pause), never in memory, so a restart picks up exactly where the last run
//! stopped. Failures are told apart by whom they concern (`mailer::SendError`):
//! a 4xx to one message is retried with exponential backoff; a 5xx to RCPT TO
//! fails the message for good and marks the address undeliverable; a problem
//! of the server or of our setup (connection, TLS, login, sender, a 5xx to
//! DATA not about the recipient) pauses the whole queue with a growing backoff,
//! says what to fix, and marks nobody. The rate limit
//! (`max_per_minute`) is counted from the sent and the claimed rows when mail
//! is claimed, so it holds across restarts and for all senders together.
//! A step claims a batch and sends it over a few SMTP connections side by
//! side. A mail the server accepts is recorded as sent at once, and only one
//! mail per process at a time is between its final `.` and that record
//! (`mailer::Finishing`; the other connections wait before their final `.`):
//! a crash between the server's 250 and our commit sends that one mail twice,
//! the only duplicate possible. That record is one statement on a connection
//! whose commits do not wait for the disk (SQLite `synchronous = NORMAL`,
//! PostgreSQL `synchronous_commit = off`; `Store::record_sent`): it survives
//! the process dying, and a power loss can only make a mail go out again.
//! The other outcomes (retry, failed, waiting)
//! are recorded for the whole batch in one transaction at its end. A mail is
//! claimed before it is sent
//! (`Store::claim_batch`), so senders working side by side never send one mail
//! twice while they live.
//!
//! `enqueue` is the one way mail gets into the outbox: every flow (answers,
//! reminders, digests, broadcasts) calls it inside its own transaction, and it
//! holds the rules that apply to all of them (never to an address that
//! bounced; answers to incoming mail capped per address and day).

use std::sync::atomic::Ordering;

use chrono::{DateTime, Duration, Utc};
use futures_util::StreamExt as _;
use tracing::{error, info, warn};

use crate::app::App;
use crate::failpoint::{failpoint, hang_point};
use crate::mailer::{Rendered, SendError, SetupProblem, Stage, Transport};
use crate::mask::mask;
use crate::storage::{DeliveryPause, DueMessage, NewOutbox, OutboxKind, Outcome, StoreTx};

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
    /// The server or our setup refuses mail; nothing is sent before then.
    Paused(DateTime<Utc>),
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
    if let Some(cap) = mail.answers_per_day {
        let (bounced, answers) = tx
            .answer_blockers(mail.recipient, now - Duration::hours(24))
            .await?;
        if bounced {
            return Ok(Enqueued::Undeliverable);
        }
        if answers >= i64::from(cap) {
            return Ok(Enqueued::CapReached(cap));
        }
    } else if tx.is_undeliverable(mail.recipient).await? {
        return Ok(Enqueued::Undeliverable);
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

/// The most mails one step claims (one commit) and sends; each sent mail is
/// recorded the moment the server accepts it, the other outcomes in one
/// commit at the end of the batch.
pub const BATCH: usize = 32;
/// The most SMTP connections one sender uses side by side.
pub const CONNECTIONS: usize = 4;
/// One connection per this many mails of a batch: a few mails go over one
/// connection, one after the other; a backlog is spread over several.
pub const MAILS_PER_CONNECTION: usize = 8;

/// One mail: claim the next due mail, send it, record it.
pub async fn step(app: &App, transport: &Transport) -> anyhow::Result<Step> {
    Ok(step_many(app, transport, 1, &|| {}).await?.0)
}

/// Claim up to `max` due mails within `max_per_minute`, send them over up to
/// [`CONNECTIONS`] connections side by side, and record each one's outcome
/// (a sent mail at once, the others at the end); the step and how many mails
/// it handled.
/// `on_mail` is called as each send ends (sent or not), so the daemon's
/// health sees a step of many mails make progress mail by mail.
pub async fn step_many(
    app: &App,
    transport: &Transport,
    max: usize,
    on_mail: &(dyn Fn() + Sync),
) -> anyhow::Result<(Step, usize)> {
    let now = Utc::now();
    if let Some(pause) = app.store.delivery_pause().await?
        && pause.ended_at.is_none()
        && pause.until > now
    {
        return Ok((Step::Paused(pause.until), 0));
    }
    // Claimed, not just read: another sender (a second worker, `run --once`
    // beside the daemon, another instance) skips them while this one lives.
    let lease = crate::storage::lease_for(app.config.smtp.timeout);
    let limit = i64::from(app.config.smtp.max_per_minute);
    let claimed = app.store.claim_batch(now, lease, max, limit).await?;
    if claimed.mails.is_empty() {
        let step = if claimed.throttled {
            Step::Throttled(now + Duration::seconds(1))
        } else {
            Step::Idle(app.store.next_due_at().await?)
        };
        return Ok((step, 0));
    }
    let handled = claimed.mails.len();
    let connections = handled.div_ceil(MAILS_PER_CONNECTION).clamp(1, CONNECTIONS);
    let from = app.config.smtp.from.email.clone();
    // After the first setup problem the mails not yet tried wait for the pause.
    let refused = std::sync::atomic::AtomicBool::new(false);
    let send_one = |msg: DueMessage| {
        let (from, refused) = (&from, &refused);
        async move {
            if refused.load(Ordering::SeqCst) {
                return (msg, None);
            }
            failpoint("before-send");
            hang_point("before-send").await;
            let result = transport.send(from, &msg.recipient, &msg.raw).await;
            on_mail();
            let result = match result {
                Ok(turn) => {
                    failpoint("after-send");
                    // Kept at once: a worker aborted before the commit
                    // (shutdown) still records it (see `record_pending`).
                    let at = Utc::now();
                    let sent = (msg.id, Outcome::Sent(at));
                    pending(app).push(sent.clone());
                    // Recorded before the turn passes on: at most one mail of
                    // this process is ever between the server's 250 and our
                    // commit. Should the record fail, the batch records it.
                    match app.store.record_sent(msg.id, at).await {
                        Ok(()) => forget(app, std::slice::from_ref(&sent)),
                        Err(e) => {
                            warn!(outbox = msg.id, error = %format!("{e:#}"), "recording a sent mail failed; retrying with its batch")
                        }
                    }
                    drop(turn);
                    Ok(())
                }
                Err(e) => {
                    if matches!(e, SendError::Setup(_)) {
                        refused.store(true, Ordering::SeqCst);
                    }
                    Err(e)
                }
            };
            (msg, Some(result))
        }
    };
    let results: Vec<_> = futures_util::stream::iter(claimed.mails)
        .map(send_one)
        .buffer_unordered(connections)
        .collect()
        .await;
    let mut outcomes = Vec::with_capacity(results.len());
    let mut problem = None;
    for (msg, result) in results {
        let outcome = match result {
            None => Outcome::Waiting(None),
            Some(Ok(())) => {
                crate::metrics::mail_sent();
                info!(outbox = msg.id, to = %mask(&msg.recipient), "mail sent");
                continue;
            }
            Some(Err(SendError::Recipient(e))) => {
                warn!(outbox = msg.id, to = %mask(&msg.recipient), error = %e, "mail refused for good; address marked undeliverable");
                Outcome::Failed {
                    error: e,
                    undeliverable: Some(msg.recipient.clone()),
                }
            }
            Some(Err(SendError::Transient(e))) => retry_later(&msg, &e),
            Some(Err(SendError::Setup(p))) => {
                // A refusal at DATA may be this message's own (its size, its
                // content): it backs off on its own too, so the others can go
                // after the pause. Earlier stages do not count against the message.
                let outcome = if p.stage == Stage::Data {
                    retry_later(&msg, &p.to_string())
                } else {
                    Outcome::Waiting(Some(p.to_string()))
                };
                problem.get_or_insert(p);
                outcome
            }
        };
        outcomes.push((msg.id, outcome));
    }
    let sent = handled - outcomes.len();
    outcomes.extend(pending(app).clone());
    app.store.record_outcomes(&outcomes).await?;
    forget(app, &outcomes);
    if sent > 0 && app.store.end_delivery_pause(Utc::now()).await? {
        info!("the SMTP server accepts mail again; sending resumed");
    }
    if let Some(problem) = problem {
        let until = pause(app, &problem, Utc::now()).await?;
        return Ok((Step::Paused(until), handled));
    }
    Ok((Step::Worked, handled))
}

/// Record the sends a step could not record itself (its worker was aborted
/// at shutdown while another mail of its batch hung), before the claims are
/// given back: otherwise those mails would go out a second time.
pub async fn record_pending(app: &App) -> anyhow::Result<()> {
    let outcomes = pending(app).clone();
    app.store.record_outcomes(&outcomes).await?;
    forget(app, &outcomes);
    Ok(())
}

/// The sends of this process not yet recorded.
fn pending(app: &App) -> std::sync::MutexGuard<'_, Vec<(i64, Outcome)>> {
    // A panic while holding it cannot leave the list half-changed.
    app.outbox_pending
        .lock()
        .unwrap_or_else(std::sync::PoisonError::into_inner)
}

/// Drop what is now recorded from the pending list (only those: another
/// step may have added its own meanwhile).
fn forget(app: &App, recorded: &[(i64, Outcome)]) {
    pending(app).retain(|p| !recorded.contains(p));
}

fn retry_later(msg: &DueMessage, e: &str) -> Outcome {
    if msg.attempts + 1 >= MAX_ATTEMPTS {
        warn!(outbox = msg.id, to = %mask(&msg.recipient), error = %e, "mail given up after {MAX_ATTEMPTS} tries");
        Outcome::Failed {
            error: e.to_string(),
            undeliverable: None,
        }
    } else {
        let next = Utc::now() + backoff(msg.attempts);
        warn!(outbox = msg.id, to = %mask(&msg.recipient), error = %e, retry_at = %next, "mail not sent; will retry");
        Outcome::Retry {
            error: e.to_string(),
            next,
        }
    }
}

/// Pause all sending after `problem`, longer with each failure in a row; the
/// time it ends.
async fn pause(
    app: &App,
    problem: &SetupProblem,
    now: DateTime<Utc>,
) -> anyhow::Result<DateTime<Utc>> {
    let previous = app
        .store
        .delivery_pause()
        .await?
        .filter(|p| p.ended_at.is_none());
    let failures = previous.as_ref().map_or(0, |p| p.failures) + 1;
    let pause = DeliveryPause {
        since: previous.as_ref().map_or(now, |p| p.since),
        until: now + backoff(failures - 1),
        failures,
        stage: problem.stage.as_str().to_string(),
        error: problem.error.clone(),
        fix: problem.fix().to_string(),
        ended_at: None,
    };
    app.store.set_delivery_pause(&pause).await?;
    error!(
        stage = problem.stage.as_str(),
        error = %problem.error,
        fix = problem.fix(),
        paused_since = %crate::storage::ts(pause.since),
        retry_at = %crate::storage::ts(pause.until),
        "sending paused: the SMTP server or our setup refuses mail; no address is marked"
    );
    Ok(pause.until)
}

/// After a start or a reload (perhaps with a fixed password), try once now
/// instead of waiting out the pause; a failure continues the backoff.
pub async fn retry_now(app: &App) -> anyhow::Result<()> {
    if let Some(mut p) = app.store.delivery_pause().await?
        && p.ended_at.is_none()
    {
        p.until = Utc::now();
        app.store.set_delivery_pause(&p).await?;
    }
    Ok(())
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
mod step_tests {
    use super::*;
    use crate::config::Config;
    use crate::storage::NewOutbox;

    /// An App whose `[smtp]` is `smtp` (url and more lines), with `n` mails queued.
    async fn app_with_queue(
        smtp: &str,
        n: usize,
    ) -> (tempfile::TempDir, std::sync::Arc<App>, Transport) {
        let dir = tempfile::tempdir().expect("dir");
        let text = format!(
            "[mailbox]\nurl = \"maildir://inbox\"\n[smtp]\n{smtp}\nfrom = \"a@example.org\"\n\
             [database]\nurl = \"sqlite://db.sqlite\"\n"
        );
        let config =
            Config::parse(&dir.path().join("rsvpd.toml"), &text, &|_| None).expect("config");
        let transport = Transport::new(&config.smtp).expect("transport");
        let app = App::open(config).await.expect("app");
        let mut tx = app.store.begin().await.expect("tx");
        for i in 0..n {
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
        (dir, app, transport)
    }

    #[tokio::test]
    async fn max_per_minute_holds_across_steps() {
        let (dir, app, transport) =
            app_with_queue("url = \"file://sent\"\nmax_per_minute = 2", 3).await;
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

    /// A batch takes no more than `max_per_minute` leaves room for: mails
    /// another sender holds count as if sent, and every mail's outcome is
    /// recorded.
    #[tokio::test]
    async fn a_batch_stays_within_max_per_minute_counting_held_mails() {
        let (dir, app, transport) =
            app_with_queue("url = \"file://sent\"\nmax_per_minute = 5", 10).await;
        let held = app
            .store
            .claim_batch(Utc::now(), Duration::minutes(5), 2, 100)
            .await
            .expect("claim");
        assert_eq!(held.mails.len(), 2);
        let (worked, n) = step_many(&app, &transport, BATCH, &|| {})
            .await
            .expect("step");
        assert_eq!((worked, n), (Step::Worked, 3));
        let (next, n) = step_many(&app, &transport, BATCH, &|| {})
            .await
            .expect("step");
        assert!(matches!(next, Step::Throttled(_)) && n == 0, "{next:?}");
        let files = std::fs::read_dir(dir.path().join("sent"))
            .expect("dir")
            .count();
        assert_eq!(files, 3);
        let items = app.store.outbox_items().await.expect("outbox");
        let sent: Vec<_> = items.iter().filter(|i| i.state == "sent").collect();
        assert_eq!(sent.len(), 3, "{items:#?}");
        assert!(sent.iter().all(|i| i.sent_at.is_some() && i.attempts == 1));
        assert!(pending(&app).is_empty());
    }

    async fn current_pause(app: &App) -> DeliveryPause {
        let pause = app.store.delivery_pause().await.expect("read");
        pause.expect("a pause")
    }

    /// A server nobody listens on: every connect is refused, a setup problem.
    #[tokio::test]
    async fn a_refused_connection_pauses_the_queue_with_growing_backoff_and_marks_nobody() {
        let port = std::net::TcpListener::bind("127.0.0.1:0")
            .and_then(|l| l.local_addr())
            .expect("a free port")
            .port();
        let (_dir, app, transport) =
            app_with_queue(&format!("url = \"smtp://127.0.0.1:{port}?tls=none\""), 2).await;

        let before = Utc::now();
        let Step::Paused(until) = step(&app, &transport).await.expect("step") else {
            panic!("a refused connection must pause the queue");
        };
        assert!(
            until >= before + Duration::seconds(29) && until <= Utc::now() + Duration::seconds(31)
        );
        let pause = current_pause(&app).await;
        assert_eq!((pause.failures, pause.stage.as_str()), (1, "connect"));
        assert!(pause.fix.contains("[smtp] url"), "{}", pause.fix);
        let since = pause.since;
        // Paused: the next step does not even try (times are stored to the second).
        let again = step(&app, &transport).await.expect("step");
        assert!(
            matches!(again, Step::Paused(u) if (u - until).num_seconds().abs() <= 1),
            "{again:?}"
        );

        // A restart tries at once; failing again doubles the pause.
        retry_now(&app).await.expect("retry now");
        let Step::Paused(second) = step(&app, &transport).await.expect("step") else {
            panic!("still refused");
        };
        assert!(second - Utc::now() > Duration::seconds(50), "{second}");
        let pause = current_pause(&app).await;
        assert_eq!(pause.failures, 2);
        assert_eq!(pause.since, since, "the same pause goes on");

        let items = app.store.outbox_items().await.expect("outbox");
        assert!(
            items.iter().all(|i| i.state == "queued" && i.attempts == 0),
            "{items:#?}"
        );
        assert!(
            items[0]
                .last_error
                .as_deref()
                .unwrap_or_default()
                .contains("cannot connect"),
            "{items:#?}"
        );
        assert!(
            app.store
                .undeliverable_addresses()
                .await
                .expect("read")
                .is_empty()
        );
    }
}
