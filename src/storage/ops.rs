//! The SQL behind what operators see: the outbox's pause (the one row that
//! says since when, until when and why the SMTP server or our setup refuses
//! mail) and the counts for `/metrics`, `/healthz` and systemd's `STATUS=`.
//! Decisions (how long to pause, when to end it, what is healthy) are made in
//! `outbox` and `health`. Its table comes from
//! `migrations/sqlite/0007_delivery_pause.sql`
//! (`migrations/postgres/0005_delivery_pause.sql`).

use anyhow::Context as _;
use chrono::{DateTime, Utc};
use serde::Serialize;

use super::{InboundOutcome, Store, Ts};

/// A pause of all sending, current (`ended_at` None) or the last one.
#[derive(Debug, Clone, PartialEq, Eq, Serialize)]
pub struct DeliveryPause {
    #[serde(serialize_with = "super::ser_ts")]
    pub since: DateTime<Utc>,
    #[serde(serialize_with = "super::ser_ts")]
    pub until: DateTime<Utc>,
    /// Tries that failed in a row since `since`.
    pub failures: i64,
    /// connect | tls | login | sender | data
    pub stage: String,
    pub error: String,
    pub fix: String,
    #[serde(skip)]
    pub ended_at: Option<DateTime<Utc>>,
}

#[derive(sqlx::FromRow)]
struct PauseRow {
    since: Ts,
    paused_until: Ts,
    failures: i64,
    stage: String,
    error: String,
    fix: String,
    ended_at: Option<Ts>,
}

impl Store {
    /// The current pause, or the last one that ended.
    pub async fn delivery_pause(&self) -> anyhow::Result<Option<DeliveryPause>> {
        let row: Option<PauseRow> = on_pool!(self, |c| {
            sqlx::query_as(
                "SELECT since, paused_until, failures, stage, error, fix, ended_at
                 FROM delivery_pause WHERE id = 1",
            )
            .fetch_optional(c)
            .await
        })
        .context("reading the delivery pause")?;
        Ok(row.map(|r| DeliveryPause {
            since: r.since.0,
            until: r.paused_until.0,
            failures: r.failures,
            stage: r.stage,
            error: r.error,
            fix: r.fix,
            ended_at: r.ended_at.map(|t| t.0),
        }))
    }

    /// Store `pause` as the current one.
    pub async fn set_delivery_pause(&self, pause: &DeliveryPause) -> anyhow::Result<()> {
        on_pool!(self, |c| {
            sqlx::query(
                "INSERT INTO delivery_pause (id, since, paused_until, failures, stage, error, fix, ended_at)
                 VALUES (1, $1, $2, $3, $4, $5, $6, NULL)
                 ON CONFLICT (id) DO UPDATE SET since = excluded.since,
                     paused_until = excluded.paused_until, failures = excluded.failures,
                     stage = excluded.stage, error = excluded.error, fix = excluded.fix,
                     ended_at = NULL",
            )
            .bind(Ts(pause.since))
            .bind(Ts(pause.until))
            .bind(pause.failures)
            .bind(&pause.stage)
            .bind(&pause.error)
            .bind(&pause.fix)
            .execute(c)
            .await
            .map(|r| r.rows_affected())
        })
        .context("saving the delivery pause")?;
        Ok(())
    }

    /// The current pause is over (a mail went out); true if there was one.
    pub async fn end_delivery_pause(&self, now: DateTime<Utc>) -> anyhow::Result<bool> {
        let n = on_pool!(self, |c| {
            sqlx::query("UPDATE delivery_pause SET ended_at = $1 WHERE ended_at IS NULL")
                .bind(Ts(now))
                .execute(c)
                .await
                .map(|r| r.rows_affected())
        })
        .context("ending the delivery pause")?;
        Ok(n > 0)
    }

    /// Outbox rows per state: (queued|sent|failed, count).
    pub async fn outbox_counts(&self) -> anyhow::Result<Vec<(String, i64)>> {
        let rows = on_pool!(self, |c| {
            sqlx::query_as("SELECT state, COUNT(*) FROM outbox GROUP BY state")
                .fetch_all(c)
                .await
        })
        .context("counting the outbox")?;
        Ok(rows)
    }

    /// Incoming mails waiting for a human.
    pub async fn review_open_count(&self) -> anyhow::Result<i64> {
        let n = on_pool!(self, |c| {
            sqlx::query_scalar("SELECT COUNT(*) FROM inbound_messages WHERE outcome = $1")
                .bind(InboundOutcome::Review.as_str())
                .fetch_one(c)
                .await
        })
        .context("counting the review queue")?;
        Ok(n)
    }

    /// When the last incoming mail was handled, if ever.
    pub async fn last_mail_at(&self) -> anyhow::Result<Option<DateTime<Utc>>> {
        let t: Option<Ts> = on_pool!(self, |c| {
            sqlx::query_scalar("SELECT MAX(received_at) FROM inbound_messages")
                .fetch_one(c)
                .await
        })
        .context("reading the last mail's time")?;
        Ok(t.map(|t| t.0))
    }

    /// The bodies of the organizers' digests (they list attendees by name and
    /// address, also in the CSV attachment): (row id, raw message).
    pub async fn digest_bodies(&self) -> anyhow::Result<Vec<(i64, Vec<u8>)>> {
        let rows = on_pool!(self, |c| {
            sqlx::query_as("SELECT id, raw FROM outbox WHERE kind = $1 AND subject != ''")
                .bind(super::OutboxKind::Digest.as_str())
                .fetch_all(c)
                .await
        })
        .context("reading the digests")?;
        Ok(rows)
    }

    /// Blank the subject and body of outbox rows `ids` (their Message-IDs
    /// stay, for threads); not yet sent, they are not sent any more.
    pub async fn erase_outbox_bodies(&self, ids: &[i64]) -> anyhow::Result<()> {
        for id in ids {
            on_pool!(self, |c| {
                sqlx::query(
                    "UPDATE outbox SET subject = '', raw = $1, last_error = NULL,
                         state = CASE WHEN state = $2 THEN $3 ELSE state END
                     WHERE id = $4",
                )
                .bind(Vec::<u8>::new())
                .bind(super::OutboxState::Queued.as_str())
                .bind(super::OutboxState::Failed.as_str())
                .bind(id)
                .execute(c)
                .await
                .map(|r| r.rows_affected())
            })
            .context("erasing a mail body")?;
        }
        Ok(())
    }

    /// After an erasure, make the files hold no old copy: on SQLite (whose
    /// deletes overwrite with zeros, `secure_delete`) the write-ahead log is
    /// checkpointed and cut to zero bytes. On PostgreSQL the row updates and
    /// deletes are all there is to do here: its files and WAL are the
    /// server's (old row versions go with its VACUUM). What was done, for
    /// the operator.
    pub async fn scrub_files(&self) -> anyhow::Result<String> {
        match &self.pool {
            super::Pool::Sqlite(pool) => {
                if super::sqlite::checkpoint_truncate(pool).await? {
                    Ok("the database's write-ahead log was checkpointed and emptied".into())
                } else {
                    anyhow::bail!(
                        "the database's write-ahead log could not be emptied (another process kept reading for 5 s); run `rsvpd forget` again when the daemon is quiet"
                    )
                }
            }
            super::Pool::Postgres(_) => Ok(
                "PostgreSQL: the rows were updated and deleted; the server's own files and WAL are reclaimed by its VACUUM".into(),
            ),
        }
    }
}
