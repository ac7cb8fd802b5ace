//! The scheduler: reminders before a conference, organizers' digests, and the
//! expiry of unconfirmed double-opt-in registrations.
//!
//! It owns *when* things are due: `reminder_due` is a pure function of the rule,
//! the conference's start and its time zone (wall-clock arithmetic in that zone,
//! so "1 day before at 09:00" is 09:00 local also across a clock change), and
//! `step` does at most one unit of work per call and otherwise says when the
//! next one falls due. Exactly-once lives in the database, not in memory: a
//! reminder's row in `reminders_sent` is written in the same transaction as the
//! queued mail, a digest's state in `digest_runs` likewise, so restarts,
//! `run --once` and two processes never send twice. It never sends anything
//! itself (the outbox does) and never sleeps (the daemon's loop does).
//!
//! The rules, as promised to organizers:
//! * A reminder goes to confirmed registrations made at or before its due time
//!   (a later registration just got its confirmation), once per registration and
//!   rule, from its due time on, no later than `reminder_grace` after it (missed
//!   by downtime longer than that: not sent), and never once the conference has
//!   started. An address that bounced before is skipped (and noted as skipped).
//! * A digest fires at its cron times in the conference's zone until the
//!   conference ends. Several fire times missed during downtime become one
//!   digest. A digest with nothing to report (no new registration, cancellation
//!   or open review item) is not sent. The first digest reports everything.
//! * An opt-in request unanswered after `opt_in_expiry` cancels its pending
//!   registration (audit `expire`), without a mail: the address was never
//!   confirmed, so rsvpd does not write to it again.

use chrono::{DateTime, Duration, Utc};
use chrono_tz::Tz;
use serde_json::json;
use tracing::info;

use crate::app::App;
use crate::config::{Conference, Digest, Reminder};
use crate::mailer::{DigestData, Kind};
use crate::mask::mask;
use crate::outbox::{Enqueued, Mail, enqueue};
use crate::storage::{OptInState, Status};

#[derive(Debug, Clone, PartialEq, Eq)]
pub enum Step {
    /// One reminder, digest or expiry was handled; call again.
    Worked,
    /// Nothing due now; the next thing falls due then (None: nothing is scheduled).
    Idle(Option<DateTime<Utc>>),
}

/// When `rule` fires for a conference starting at `starts` in `tz`
/// (`Reminder::due`).
pub fn reminder_due(tz: Tz, starts: DateTime<Utc>, rule: &Reminder) -> DateTime<Utc> {
    rule.due(tz, starts)
}

/// Whether a reminder due at `due` may go out at `now`.
pub fn reminder_window_open(
    due: DateTime<Utc>,
    grace: std::time::Duration,
    starts: DateTime<Utc>,
    now: DateTime<Utc>,
) -> bool {
    let grace = Duration::from_std(grace).unwrap_or(Duration::MAX);
    due <= now && now < starts && now.signed_duration_since(due) <= grace
}

/// The latest cron time of `digest` in (`after`, `until`], in the conference's zone.
pub fn last_fire_between(
    digest: &Digest,
    tz: Tz,
    after: DateTime<Utc>,
    until: DateTime<Utc>,
) -> Option<DateTime<Utc>> {
    // Bounded: a cron firing every second over a long downtime must not spin.
    digest
        .cron
        .schedule
        .after(&after.with_timezone(&tz))
        .take(100_000)
        .map(|t| t.with_timezone(&Utc))
        .take_while(|t| *t <= until)
        .last()
}

/// The first cron time of `digest` after `after`.
pub fn next_fire(digest: &Digest, tz: Tz, after: DateTime<Utc>) -> Option<DateTime<Utc>> {
    digest
        .cron
        .schedule
        .after(&after.with_timezone(&tz))
        .next()
        .map(|t| t.with_timezone(&Utc))
}

fn earliest(a: Option<DateTime<Utc>>, b: Option<DateTime<Utc>>) -> Option<DateTime<Utc>> {
    match (a, b) {
        (Some(a), Some(b)) => Some(a.min(b)),
        (a, b) => a.or(b),
    }
}

/// Do the next due piece of scheduled work at `now`, or say when it falls due.
pub async fn step(app: &App, now: DateTime<Utc>) -> anyhow::Result<Step> {
    if expire_one(app, now).await? {
        return Ok(Step::Worked);
    }
    let mut next = app.store.next_opt_in_expiry().await?;
    for conf in &app.config.conferences {
        for rule in &conf.reminders {
            let due = reminder_due(conf.timezone, conf.starts, rule);
            if reminder_window_open(due, conf.reminder_grace, conf.starts, now) {
                if remind_one(app, conf, rule, due, now).await? {
                    return Ok(Step::Worked);
                }
            } else if due > now && due < conf.starts {
                next = earliest(next, Some(due));
            }
        }
        for digest in &conf.digests {
            match digest_one(app, conf, digest, now).await? {
                DigestStep::Worked => return Ok(Step::Worked),
                DigestStep::Next(t) => next = earliest(next, t),
            }
        }
    }
    Ok(Step::Idle(next))
}

/// Work through everything due at `now` (for `run --once`); the mails queued.
pub async fn drain(app: &App, now: DateTime<Utc>) -> anyhow::Result<usize> {
    let mut worked = 0;
    while step(app, now).await? == Step::Worked {
        worked += 1;
    }
    Ok(worked)
}

/// Cancel one pending registration whose opt-in request ran out.
async fn expire_one(app: &App, now: DateTime<Utc>) -> anyhow::Result<bool> {
    if app
        .store
        .next_opt_in_expiry()
        .await?
        .is_none_or(|t| t > now)
    {
        return Ok(false);
    }
    let mut tx = app.store.begin().await?;
    let Some(request) = tx.next_expired_opt_in(now).await? else {
        return Ok(false);
    };
    let Some(mut reg) = tx.registration_by_id(request.registration_id).await? else {
        tx.set_opt_in_state(request.registration_id, OptInState::Cancelled)
            .await?;
        tx.commit().await?;
        return Ok(true);
    };
    if reg.status != Status::Pending {
        // Confirmed or cancelled by other means meanwhile; just close the request.
        let state = if reg.status == Status::Cancelled {
            OptInState::Cancelled
        } else {
            OptInState::Confirmed
        };
        tx.set_opt_in_state(reg.id, state).await?;
        tx.commit().await?;
        return Ok(true);
    }
    reg.status = Status::Cancelled;
    reg.updated_at = now;
    tx.save_registration(&reg).await?;
    tx.set_opt_in_state(reg.id, OptInState::Expired).await?;
    tx.audit(
        reg.id,
        "expire",
        None,
        "system",
        &json!({ "requested_at": crate::storage::ts(request.requested_at) }),
        now,
    )
    .await?;
    tx.commit().await?;
    info!(conference = %reg.conference_id, to = %mask(&reg.email), "unconfirmed registration expired");
    Ok(true)
}

/// How many reminders one transaction queues. The search for registrations
/// still without the reminder passes over those that have it, so one at a
/// time would cost a conference of 100,000 about 80 ms per reminder half-way
/// through (docs/capacity.md); a batch shares that search, and still holds
/// the write lock only for the rendering of this many mails.
const REMINDER_BATCH: i64 = 100;

/// Queue the reminder `rule` for the next registrations that have not had it
/// (at most `REMINDER_BATCH`); false when everyone eligible has.
async fn remind_one(
    app: &App,
    conf: &Conference,
    rule: &Reminder,
    due: DateTime<Utc>,
    now: DateTime<Utc>,
) -> anyhow::Result<bool> {
    let key = rule.key();
    let mut tx = app.store.begin().await?;
    let regs = tx
        .next_unreminded(&conf.id, &key, due, REMINDER_BATCH)
        .await?;
    if regs.is_empty() {
        return Ok(false);
    }
    let mut queued = 0;
    for reg in &regs {
        let mail = Mail {
            kind: Kind::Reminder.outbox_kind(),
            conference_id: Some(&conf.id),
            registration_id: Some(reg.id),
            recipient: &reg.email,
            in_reply_to: reg.last_message_id.as_deref(),
            answers_per_day: None,
        };
        let enqueued = enqueue(&mut tx, mail, now, || {
            app.renderer.render(
                Kind::Reminder,
                conf,
                reg,
                false,
                reg.last_message_id.as_deref(),
                now,
            )
        })
        .await?;
        let outcome = if enqueued == Enqueued::Queued {
            queued += 1;
            "sent"
        } else {
            "skipped"
        };
        if !tx.record_reminder(reg.id, &key, outcome, now).await? {
            // Another process got there first inside its own transaction; the
            // mail queued above is rolled back with this transaction.
            return Ok(true);
        }
        if enqueued == Enqueued::Queued {
            info!(conference = %conf.id, rule = %key, to = %mask(&reg.email), "reminder queued");
        }
    }
    tx.commit().await?;
    if queued > 0 {
        app.outbox_wakeup.notify_one();
    }
    Ok(true)
}

enum DigestStep {
    Worked,
    Next(Option<DateTime<Utc>>),
}

async fn digest_one(
    app: &App,
    conf: &Conference,
    digest: &Digest,
    now: DateTime<Utc>,
) -> anyhow::Result<DigestStep> {
    let key = digest.key();
    let tz = conf.timezone;
    let Some(last_fire) = app.store.digest_last_fire(&conf.id, &key).await? else {
        // First sight of this rule: its schedule starts now.
        let mut tx = app.store.begin().await?;
        if tx.digest_state(&conf.id, &key).await?.is_none() {
            tx.set_digest_state(&conf.id, &key, now, None).await?;
        }
        tx.commit().await?;
        return Ok(DigestStep::Worked);
    };
    let until = now.min(conf.ends);
    let Some(fire) = last_fire_between(digest, tz, last_fire, until) else {
        let next = next_fire(digest, tz, last_fire.max(now)).filter(|t| *t <= conf.ends);
        return Ok(DigestStep::Next(next));
    };

    // Gather outside the write transaction; what happens meanwhile lands in the next digest.
    let mut tx = app.store.begin().await?;
    let Some((stored_fire, since)) = tx.digest_state(&conf.id, &key).await? else {
        return Ok(DigestStep::Worked);
    };
    if stored_fire != last_fire {
        // Another process handled it meanwhile.
        return Ok(DigestStep::Worked);
    }
    drop(tx);
    let from = since.unwrap_or(DateTime::<Utc>::UNIX_EPOCH);
    let data = DigestData {
        since,
        until: fire,
        new: app.store.registered_between(&conf.id, from, fire).await?,
        ended: app.store.ended_between(&conf.id, from, fire).await?,
        review: app.store.review_items_for(&conf.id).await?,
        failed: app.store.failed_between(&conf.id, from, fire).await?,
        // A pause that overlapped the period: the organizers learn that mail
        // did not go out, and what the operator has to fix.
        delivery: app
            .store
            .delivery_pause()
            .await?
            .filter(|p| p.since < fire && p.ended_at.is_none_or(|end| end >= from)),
        all: app.store.registrations(&conf.id, true).await?,
    };
    let empty = data.new.is_empty()
        && data.ended.is_empty()
        && data.review.is_empty()
        && data.failed.is_empty()
        && data.delivery.is_none();
    let mut mails = Vec::new();
    if !empty {
        let current: Vec<_> = data
            .all
            .iter()
            .filter(|r| r.status != Status::Cancelled)
            .cloned()
            .collect();
        let csv = crate::export::attendees_csv(&current)?;
        for to in &conf.organizers {
            mails.push((
                to.clone(),
                app.renderer
                    .render_digest(conf, to, &data, csv.clone(), now)?,
            ));
        }
    }
    let mut tx = app.store.begin().await?;
    if tx.digest_state(&conf.id, &key).await?.map(|s| s.0) != Some(last_fire) {
        return Ok(DigestStep::Worked);
    }
    for (to, rendered) in mails.iter() {
        let mail = Mail {
            kind: Kind::Digest.outbox_kind(),
            conference_id: Some(&conf.id),
            registration_id: None,
            recipient: to,
            in_reply_to: None,
            answers_per_day: None,
        };
        enqueue(&mut tx, mail, now, || Ok(rendered.clone())).await?;
    }
    tx.set_digest_state(&conf.id, &key, fire, (!empty).then_some(fire))
        .await?;
    tx.commit().await?;
    if !mails.is_empty() {
        app.outbox_wakeup.notify_one();
    }
    info!(
        conference = %conf.id, rule = %key, fire = %crate::storage::ts(fire),
        new = data.new.len(), ended = data.ended.len(), review = data.review.len(),
        queued = mails.len(), "digest handled"
    );
    Ok(DigestStep::Worked)
}

#[cfg(test)]
mod tests;
