//! The SQL of the notify and schedule flows: reminders sent, digest runs,
//! double-opt-in requests, and the reads a digest needs.
//!
//! Like its parent `storage`, it owns SQL and no decisions: *when* a reminder is
//! due or *whether* a registration expired is decided in `schedule` and
//! `register`. Its tables come from `migrations/sqlite/0002_notify.sql`.

use anyhow::Context as _;
use chrono::{DateTime, Utc};
use serde::Serialize;
use sqlx::Row;

use super::{
    OptInState, OutboxKind, Registration, ReviewItem, Store, StoreTx, parse_ts,
    registration_from_row, ts,
};

/// A double-opt-in request as stored.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct OptInRequest {
    pub registration_id: i64,
    pub token: String,
    pub requested_at: DateTime<Utc>,
    pub expires_at: DateTime<Utc>,
    pub state: OptInState,
}

/// A registration that ended in the digest's period, and how.
#[derive(Debug, Clone, Serialize)]
pub struct Ended {
    #[serde(flatten)]
    pub registration: Registration,
    /// cancel | expire
    pub action: String,
    #[serde(serialize_with = "super::ser_ts")]
    pub at: DateTime<Utc>,
}

fn opt_in_from_row(r: &sqlx::sqlite::SqliteRow) -> anyhow::Result<OptInRequest> {
    Ok(OptInRequest {
        registration_id: r.get("registration_id"),
        token: r.get("token"),
        requested_at: parse_ts(r.get("requested_at")),
        expires_at: parse_ts(r.get("expires_at")),
        state: OptInState::parse(r.get("state"))?,
    })
}

impl Store {
    /// When the digest rule `rule_key` of `conference` last ran (its scheduled time).
    pub async fn digest_last_fire(
        &self,
        conference: &str,
        rule_key: &str,
    ) -> anyhow::Result<Option<DateTime<Utc>>> {
        let t: Option<String> = sqlx::query_scalar(
            "SELECT last_fire_at FROM digest_runs WHERE conference_id = ? AND rule_key = ?",
        )
        .bind(conference)
        .bind(rule_key)
        .fetch_optional(&self.pool)
        .await
        .context("reading the digest state")?;
        Ok(t.map(|t| parse_ts(&t)))
    }

    /// When the earliest open opt-in request expires.
    pub async fn next_opt_in_expiry(&self) -> anyhow::Result<Option<DateTime<Utc>>> {
        let t: Option<String> =
            sqlx::query_scalar("SELECT MIN(expires_at) FROM opt_in_requests WHERE state = 'open'")
                .fetch_one(&self.pool)
                .await
                .context("reading the opt-in requests")?;
        Ok(t.map(|t| parse_ts(&t)))
    }

    /// The complete stored message of outbox row `id`.
    pub async fn outbox_raw(&self, id: i64) -> anyhow::Result<Option<Vec<u8>>> {
        let raw = sqlx::query_scalar("SELECT raw FROM outbox WHERE id = ?")
            .bind(id)
            .fetch_optional(&self.pool)
            .await
            .context("reading the outbox")?;
        Ok(raw)
    }

    /// Every address that bounced permanently (lowercase).
    pub async fn undeliverable_addresses(
        &self,
    ) -> anyhow::Result<std::collections::HashSet<String>> {
        let rows: Vec<String> = sqlx::query_scalar("SELECT email FROM undeliverable")
            .fetch_all(&self.pool)
            .await
            .context("reading undeliverable addresses")?;
        Ok(rows.into_iter().collect())
    }

    /// Mails of `conference` that failed for good in [from, until).
    pub async fn failed_between(
        &self,
        conference: &str,
        from: DateTime<Utc>,
        until: DateTime<Utc>,
    ) -> anyhow::Result<Vec<FailedMail>> {
        let rows = sqlx::query(
            "SELECT recipient, kind, COALESCE(last_error, '') AS last_error, failed_at FROM outbox
             WHERE conference_id = ? AND state = 'failed' AND failed_at >= ? AND failed_at < ?
             ORDER BY failed_at, id",
        )
        .bind(conference)
        .bind(ts(from))
        .bind(ts(until))
        .fetch_all(&self.pool)
        .await
        .context("reading failed mail")?;
        rows.iter()
            .map(|r| {
                Ok(FailedMail {
                    recipient: r.get("recipient"),
                    kind: OutboxKind::parse(r.get("kind"))?,
                    error: r.get("last_error"),
                    at: parse_ts(r.get("failed_at")),
                })
            })
            .collect()
    }

    /// Open review items that belong to `conference` or to no conference yet.
    pub async fn review_items_for(&self, conference: &str) -> anyhow::Result<Vec<ReviewItem>> {
        Ok(self
            .review_items()
            .await?
            .into_iter()
            .filter(|i| i.conference.as_deref().is_none_or(|c| c == conference))
            .collect())
    }

    /// Registrations of `conference` made in (`since`, `until`], in order.
    pub async fn registered_between(
        &self,
        conference: &str,
        since: DateTime<Utc>,
        until: DateTime<Utc>,
    ) -> anyhow::Result<Vec<Registration>> {
        let rows = sqlx::query(
            "SELECT * FROM registrations WHERE conference_id = ? AND registered_at > ? AND registered_at <= ?
             ORDER BY registered_at, id",
        )
        .bind(conference)
        .bind(ts(since))
        .bind(ts(until))
        .fetch_all(&self.pool)
        .await
        .context("reading new registrations")?;
        rows.iter().map(registration_from_row).collect()
    }

    /// Registrations of `conference` cancelled or expired in (`since`, `until`].
    pub async fn ended_between(
        &self,
        conference: &str,
        since: DateTime<Utc>,
        until: DateTime<Utc>,
    ) -> anyhow::Result<Vec<Ended>> {
        let rows = sqlx::query(
            "SELECT r.*, a.action AS audit_action, a.at AS audit_at
             FROM audit a JOIN registrations r ON r.id = a.registration_id
             WHERE r.conference_id = ? AND a.action IN ('cancel', 'expire') AND a.at > ? AND a.at <= ?
             ORDER BY a.at, a.id",
        )
        .bind(conference)
        .bind(ts(since))
        .bind(ts(until))
        .fetch_all(&self.pool)
        .await
        .context("reading cancellations")?;
        rows.iter()
            .map(|r| {
                Ok(Ended {
                    registration: registration_from_row(r)?,
                    action: r.get("audit_action"),
                    at: parse_ts(r.get("audit_at")),
                })
            })
            .collect()
    }
}

impl StoreTx {
    pub async fn registration_by_id(&mut self, id: i64) -> anyhow::Result<Option<Registration>> {
        let row = sqlx::query("SELECT * FROM registrations WHERE id = ?")
            .bind(id)
            .fetch_optional(&mut *self.tx)
            .await
            .context("reading a registration")?;
        row.as_ref().map(registration_from_row).transpose()
    }

    /// The first confirmed registration of `conference`, made at or before
    /// `due`, that has no row for `rule_key` yet.
    pub async fn next_unreminded(
        &mut self,
        conference: &str,
        rule_key: &str,
        due: DateTime<Utc>,
    ) -> anyhow::Result<Option<Registration>> {
        let row = sqlx::query(
            "SELECT * FROM registrations r
             WHERE r.conference_id = ? AND r.status = 'confirmed' AND r.registered_at <= ?
               AND NOT EXISTS (SELECT 1 FROM reminders_sent s WHERE s.registration_id = r.id AND s.rule_key = ?)
             ORDER BY r.registered_at, r.id LIMIT 1",
        )
        .bind(conference)
        .bind(ts(due))
        .bind(rule_key)
        .fetch_optional(&mut *self.tx)
        .await
        .context("looking for reminders to send")?;
        row.as_ref().map(registration_from_row).transpose()
    }

    /// Note that the reminder `rule_key` was handled for a registration; false
    /// when it had been already (by another process), which must then roll back.
    pub async fn record_reminder(
        &mut self,
        registration_id: i64,
        rule_key: &str,
        outcome: &str,
        now: DateTime<Utc>,
    ) -> anyhow::Result<bool> {
        let n = sqlx::query(
            "INSERT INTO reminders_sent (registration_id, rule_key, outcome, at) VALUES (?, ?, ?, ?)
             ON CONFLICT (registration_id, rule_key) DO NOTHING",
        )
        .bind(registration_id)
        .bind(rule_key)
        .bind(outcome)
        .bind(ts(now))
        .execute(&mut *self.tx)
        .await
        .context("recording a reminder")?
        .rows_affected();
        Ok(n == 1)
    }

    /// The digest state inside the transaction that queues the digest:
    /// (last scheduled time handled, time the last sent digest covered to).
    pub async fn digest_state(
        &mut self,
        conference: &str,
        rule_key: &str,
    ) -> anyhow::Result<Option<(DateTime<Utc>, Option<DateTime<Utc>>)>> {
        let row = sqlx::query(
            "SELECT last_fire_at, last_digest_at FROM digest_runs WHERE conference_id = ? AND rule_key = ?",
        )
        .bind(conference)
        .bind(rule_key)
        .fetch_optional(&mut *self.tx)
        .await
        .context("reading the digest state")?;
        Ok(row.map(|r| {
            (
                parse_ts(r.get("last_fire_at")),
                r.get::<Option<String>, _>("last_digest_at")
                    .map(|t| parse_ts(&t)),
            )
        }))
    }

    /// Save the digest state; `digest_at` None keeps the stored one.
    pub async fn set_digest_state(
        &mut self,
        conference: &str,
        rule_key: &str,
        fire: DateTime<Utc>,
        digest_at: Option<DateTime<Utc>>,
    ) -> anyhow::Result<()> {
        sqlx::query(
            "INSERT INTO digest_runs (conference_id, rule_key, last_fire_at, last_digest_at) VALUES (?, ?, ?, ?)
             ON CONFLICT (conference_id, rule_key) DO UPDATE SET last_fire_at = excluded.last_fire_at,
                 last_digest_at = COALESCE(excluded.last_digest_at, digest_runs.last_digest_at)",
        )
        .bind(conference)
        .bind(rule_key)
        .bind(ts(fire))
        .bind(digest_at.map(ts))
        .execute(&mut *self.tx)
        .await
        .context("saving the digest state")?;
        Ok(())
    }

    /// Store a new request for `registration_id` (replacing an older one).
    pub async fn save_opt_in(
        &mut self,
        registration_id: i64,
        token: &str,
        now: DateTime<Utc>,
        expires_at: DateTime<Utc>,
    ) -> anyhow::Result<()> {
        sqlx::query(
            "INSERT INTO opt_in_requests (registration_id, token, requested_at, expires_at, state)
             VALUES (?, ?, ?, ?, ?)
             ON CONFLICT (registration_id) DO UPDATE SET token = excluded.token,
                 requested_at = excluded.requested_at, expires_at = excluded.expires_at, state = excluded.state",
        )
        .bind(registration_id)
        .bind(token.to_ascii_uppercase())
        .bind(ts(now))
        .bind(ts(expires_at))
        .bind(OptInState::Open.as_str())
        .execute(&mut *self.tx)
        .await
        .context("saving an opt-in request")?;
        Ok(())
    }

    pub async fn opt_in_by_token(&mut self, token: &str) -> anyhow::Result<Option<OptInRequest>> {
        let row = sqlx::query("SELECT * FROM opt_in_requests WHERE token = ?")
            .bind(token.trim().to_ascii_uppercase())
            .fetch_optional(&mut *self.tx)
            .await
            .context("reading an opt-in request")?;
        row.as_ref().map(opt_in_from_row).transpose()
    }

    pub async fn opt_in_for(
        &mut self,
        registration_id: i64,
    ) -> anyhow::Result<Option<OptInRequest>> {
        let row = sqlx::query("SELECT * FROM opt_in_requests WHERE registration_id = ?")
            .bind(registration_id)
            .fetch_optional(&mut *self.tx)
            .await
            .context("reading an opt-in request")?;
        row.as_ref().map(opt_in_from_row).transpose()
    }

    pub async fn set_opt_in_state(
        &mut self,
        registration_id: i64,
        state: OptInState,
    ) -> anyhow::Result<()> {
        sqlx::query("UPDATE opt_in_requests SET state = ? WHERE registration_id = ?")
            .bind(state.as_str())
            .bind(registration_id)
            .execute(&mut *self.tx)
            .await
            .context("updating an opt-in request")?;
        Ok(())
    }

    /// The first open request whose time ran out by `now`.
    pub async fn next_expired_opt_in(
        &mut self,
        now: DateTime<Utc>,
    ) -> anyhow::Result<Option<OptInRequest>> {
        let row = sqlx::query(
            "SELECT * FROM opt_in_requests WHERE state = 'open' AND expires_at <= ?
             ORDER BY expires_at, registration_id LIMIT 1",
        )
        .bind(ts(now))
        .fetch_optional(&mut *self.tx)
        .await
        .context("reading the opt-in requests")?;
        row.as_ref().map(opt_in_from_row).transpose()
    }
}

#[cfg(test)]
mod tests {
    use super::Store;

    /// Regression: a daemon starting while `rsvpd attendees` opened the same
    /// new database ran migration 2 twice ("table reminders_sent already exists").
    #[tokio::test(flavor = "multi_thread", worker_threads = 4)]
    async fn concurrent_opens_of_a_new_database_migrate_once() {
        for _ in 0..5 {
            let dir = tempfile::tempdir().expect("dir");
            let path = dir.path().join("rsvpd.db");
            let opens: Vec<_> = (0..6)
                .map(|_| {
                    let path = path.clone();
                    tokio::spawn(async move { Store::open(&path).await.map(|_| ()) })
                })
                .collect();
            for o in opens {
                o.await.expect("task").expect("every open succeeds");
            }
        }
    }
}

/// A mail that could not be delivered, for the digest.
#[derive(Debug, Clone)]
pub struct FailedMail {
    pub recipient: String,
    pub kind: OutboxKind,
    pub error: String,
    pub at: DateTime<Utc>,
}
