//! The SQL behind what operators see: the outbox's pause (the one row that
//! says since when, until when and why the SMTP server or our setup refuses
//! mail) and the counts for `/metrics`, `/healthz` and systemd's `STATUS=`.
//! Decisions (how long to pause, when to end it, what is healthy) are made in
//! `outbox` and `health`.

use anyhow::Context as _;
use chrono::{DateTime, Utc};
use serde::Serialize;
use sqlx::Row;

use super::{Store, parse_ts, ts};

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

impl Store {
    /// The current pause, or the last one that ended.
    pub async fn delivery_pause(&self) -> anyhow::Result<Option<DeliveryPause>> {
        let row = sqlx::query(
            "SELECT since, until, failures, stage, error, fix, ended_at FROM delivery_pause WHERE id = 1",
        )
        .fetch_optional(&self.pool)
        .await
        .context("reading the delivery pause")?;
        Ok(row.map(|r| DeliveryPause {
            since: parse_ts(r.get("since")),
            until: parse_ts(r.get("until")),
            failures: r.get("failures"),
            stage: r.get("stage"),
            error: r.get("error"),
            fix: r.get("fix"),
            ended_at: r.get::<Option<String>, _>("ended_at").map(|t| parse_ts(&t)),
        }))
    }

    /// Store `pause` as the current one.
    pub async fn set_delivery_pause(&self, pause: &DeliveryPause) -> anyhow::Result<()> {
        sqlx::query(
            "INSERT INTO delivery_pause (id, since, until, failures, stage, error, fix, ended_at)
             VALUES (1, ?, ?, ?, ?, ?, ?, NULL)
             ON CONFLICT (id) DO UPDATE SET since = excluded.since, until = excluded.until,
                 failures = excluded.failures, stage = excluded.stage, error = excluded.error,
                 fix = excluded.fix, ended_at = NULL",
        )
        .bind(ts(pause.since))
        .bind(ts(pause.until))
        .bind(pause.failures)
        .bind(&pause.stage)
        .bind(&pause.error)
        .bind(&pause.fix)
        .execute(&self.pool)
        .await
        .context("saving the delivery pause")?;
        Ok(())
    }

    /// The current pause is over (a mail went out); true if there was one.
    pub async fn end_delivery_pause(&self, now: DateTime<Utc>) -> anyhow::Result<bool> {
        let n = sqlx::query("UPDATE delivery_pause SET ended_at = ? WHERE ended_at IS NULL")
            .bind(ts(now))
            .execute(&self.pool)
            .await
            .context("ending the delivery pause")?
            .rows_affected();
        Ok(n > 0)
    }

    /// Note on queued message `id` why it waits, without counting a try.
    pub async fn note_waiting(&self, id: i64, error: &str) -> anyhow::Result<()> {
        sqlx::query("UPDATE outbox SET last_error = ? WHERE id = ?")
            .bind(error)
            .bind(id)
            .execute(&self.pool)
            .await
            .context("noting why a mail waits")?;
        Ok(())
    }

    /// Outbox rows per state: (queued|sent|failed, count).
    pub async fn outbox_counts(&self) -> anyhow::Result<Vec<(String, i64)>> {
        let rows = sqlx::query("SELECT state, COUNT(*) AS n FROM outbox GROUP BY state")
            .fetch_all(&self.pool)
            .await
            .context("counting the outbox")?;
        Ok(rows.iter().map(|r| (r.get("state"), r.get("n"))).collect())
    }

    /// Incoming mails waiting for a human.
    pub async fn review_open_count(&self) -> anyhow::Result<i64> {
        let n =
            sqlx::query_scalar("SELECT COUNT(*) FROM inbound_messages WHERE outcome = 'review'")
                .fetch_one(&self.pool)
                .await
                .context("counting the review queue")?;
        Ok(n)
    }

    /// When the last incoming mail was handled, if ever.
    pub async fn last_mail_at(&self) -> anyhow::Result<Option<DateTime<Utc>>> {
        let t: Option<String> = sqlx::query_scalar("SELECT MAX(received_at) FROM inbound_messages")
            .fetch_one(&self.pool)
            .await
            .context("reading the last mail's time")?;
        Ok(t.map(|t| parse_ts(&t)))
    }
}
