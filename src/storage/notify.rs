//! The SQL of the notify and schedule flows: reminders sent, digest runs,
//! double-opt-in requests, and the reads a digest needs.
//!
//! Like its parent `storage`, it owns SQL and no decisions: *when* a reminder is
//! due or *whether* a registration expired is decided in `schedule` and
//! `register`. Its tables come from `migrations/sqlite/0002_notify.sql`
//! (`migrations/postgres/0001_init.sql`).

use anyhow::Context as _;
use chrono::{DateTime, Utc};
use serde::Serialize;

use super::{
    OptInState, OutboxKind, OutboxState, Registration, RegistrationRow, ReviewItem, Status, Store,
    StoreTx, Ts, registrations,
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

#[derive(sqlx::FromRow)]
struct OptInRow {
    registration_id: i64,
    token: String,
    requested_at: Ts,
    expires_at: Ts,
    state: String,
}

impl TryFrom<OptInRow> for OptInRequest {
    type Error = anyhow::Error;
    fn try_from(r: OptInRow) -> anyhow::Result<OptInRequest> {
        Ok(OptInRequest {
            registration_id: r.registration_id,
            token: r.token,
            requested_at: r.requested_at.0,
            expires_at: r.expires_at.0,
            state: OptInState::parse(&r.state)?,
        })
    }
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

#[derive(sqlx::FromRow)]
struct EndedRow {
    #[sqlx(flatten)]
    registration: RegistrationRow,
    audit_action: String,
    audit_at: Ts,
}

/// A mail that could not be delivered, for the digest.
#[derive(Debug, Clone)]
pub struct FailedMail {
    pub recipient: String,
    pub kind: OutboxKind,
    pub error: String,
    pub at: DateTime<Utc>,
}

impl Store {
    /// When the digest rule `rule_key` of `conference` last ran (its scheduled time).
    pub async fn digest_last_fire(
        &self,
        conference: &str,
        rule_key: &str,
    ) -> anyhow::Result<Option<DateTime<Utc>>> {
        let t: Option<Ts> = on_pool!(self, |c| {
            sqlx::query_scalar(
                "SELECT last_fire_at FROM digest_runs WHERE conference_id = $1 AND rule_key = $2",
            )
            .bind(conference)
            .bind(rule_key)
            .fetch_optional(c)
            .await
        })
        .context("reading the digest state")?;
        Ok(t.map(|t| t.0))
    }

    /// When the earliest open opt-in request expires.
    pub async fn next_opt_in_expiry(&self) -> anyhow::Result<Option<DateTime<Utc>>> {
        let t: Option<Ts> = on_pool!(self, |c| {
            sqlx::query_scalar("SELECT MIN(expires_at) FROM opt_in_requests WHERE state = $1")
                .bind(OptInState::Open.as_str())
                .fetch_one(c)
                .await
        })
        .context("reading the opt-in requests")?;
        Ok(t.map(|t| t.0))
    }

    /// The complete stored message of outbox row `id`.
    pub async fn outbox_raw(&self, id: i64) -> anyhow::Result<Option<Vec<u8>>> {
        let raw = on_pool!(self, |c| {
            sqlx::query_scalar("SELECT raw FROM outbox WHERE id = $1")
                .bind(id)
                .fetch_optional(c)
                .await
        })
        .context("reading the outbox")?;
        Ok(raw)
    }

    /// Every address that bounced permanently (lowercase).
    pub async fn undeliverable_addresses(
        &self,
    ) -> anyhow::Result<std::collections::HashSet<String>> {
        let rows: Vec<String> = on_pool!(self, |c| {
            sqlx::query_scalar("SELECT email FROM undeliverable")
                .fetch_all(c)
                .await
        })
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
        let rows: Vec<(String, String, String, Ts)> = on_pool!(self, |c| {
            sqlx::query_as(
                "SELECT recipient, kind, COALESCE(last_error, ''), failed_at FROM outbox
                 WHERE conference_id = $1 AND state = $2 AND failed_at >= $3 AND failed_at < $4
                 ORDER BY failed_at, id",
            )
            .bind(conference)
            .bind(OutboxState::Failed.as_str())
            .bind(Ts(from))
            .bind(Ts(until))
            .fetch_all(c)
            .await
        })
        .context("reading failed mail")?;
        rows.into_iter()
            .map(|(recipient, kind, error, at)| {
                Ok(FailedMail {
                    recipient,
                    kind: OutboxKind::parse(&kind)?,
                    error,
                    at: at.0,
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
        let rows = on_pool!(self, |c| {
            sqlx::query_as(
                "SELECT * FROM registrations WHERE conference_id = $1 AND registered_at > $2 AND registered_at <= $3
                 ORDER BY registered_at, id",
            )
            .bind(conference)
            .bind(Ts(since))
            .bind(Ts(until))
            .fetch_all(c)
            .await
        })
        .context("reading new registrations")?;
        registrations(rows)
    }

    /// Registrations of `conference` cancelled or expired in (`since`, `until`].
    pub async fn ended_between(
        &self,
        conference: &str,
        since: DateTime<Utc>,
        until: DateTime<Utc>,
    ) -> anyhow::Result<Vec<Ended>> {
        let rows: Vec<EndedRow> = on_pool!(self, |c| {
            sqlx::query_as(
                "SELECT r.*, a.action AS audit_action, a.at AS audit_at
                 FROM audit a JOIN registrations r ON r.id = a.registration_id
                 WHERE r.conference_id = $1 AND a.action IN ('cancel', 'expire') AND a.at > $2 AND a.at <= $3
                 ORDER BY a.at, a.id",
            )
            .bind(conference)
            .bind(Ts(since))
            .bind(Ts(until))
            .fetch_all(c)
            .await
        })
        .context("reading cancellations")?;
        rows.into_iter()
            .map(|r| {
                Ok(Ended {
                    registration: Registration::try_from(r.registration)?,
                    action: r.audit_action,
                    at: r.audit_at.0,
                })
            })
            .collect()
    }
}

impl StoreTx {
    pub async fn registration_by_id(&mut self, id: i64) -> anyhow::Result<Option<Registration>> {
        let row: Option<RegistrationRow> = on_tx!(self, |c| {
            sqlx::query_as("SELECT * FROM registrations WHERE id = $1")
                .bind(id)
                .fetch_optional(&mut *c)
                .await
        })
        .context("reading a registration")?;
        row.map(Registration::try_from).transpose()
    }

    /// The first `limit` confirmed registrations of `conference`, made at or
    /// before `due`, that have no row for `rule_key` yet, in the order they came.
    pub async fn next_unreminded(
        &mut self,
        conference: &str,
        rule_key: &str,
        due: DateTime<Utc>,
        limit: i64,
    ) -> anyhow::Result<Vec<Registration>> {
        let rows: Vec<RegistrationRow> = on_tx!(self, |c| {
            sqlx::query_as(
                "SELECT * FROM registrations r
                 WHERE r.conference_id = $1 AND r.status = $2 AND r.registered_at <= $3
                   AND NOT EXISTS (SELECT 1 FROM reminders_sent s WHERE s.registration_id = r.id AND s.rule_key = $4)
                 ORDER BY r.registered_at, r.id LIMIT $5",
            )
            .bind(conference)
            .bind(Status::Confirmed.as_str())
            .bind(Ts(due))
            .bind(rule_key)
            .bind(limit)
            .fetch_all(&mut *c)
            .await
        })
        .context("looking for reminders to send")?;
        rows.into_iter().map(Registration::try_from).collect()
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
        let n = on_tx!(self, |c| {
            sqlx::query(
                "INSERT INTO reminders_sent (registration_id, rule_key, outcome, at) VALUES ($1, $2, $3, $4)
                 ON CONFLICT (registration_id, rule_key) DO NOTHING",
            )
            .bind(registration_id)
            .bind(rule_key)
            .bind(outcome)
            .bind(Ts(now))
            .execute(&mut *c)
            .await
            .map(|r| r.rows_affected())
        })
        .context("recording a reminder")?;
        Ok(n == 1)
    }

    /// The digest state inside the transaction that queues the digest:
    /// (last scheduled time handled, time the last sent digest covered to).
    pub async fn digest_state(
        &mut self,
        conference: &str,
        rule_key: &str,
    ) -> anyhow::Result<Option<(DateTime<Utc>, Option<DateTime<Utc>>)>> {
        let row: Option<(Ts, Option<Ts>)> = on_tx!(self, |c| {
            sqlx::query_as(
                "SELECT last_fire_at, last_digest_at FROM digest_runs WHERE conference_id = $1 AND rule_key = $2",
            )
            .bind(conference)
            .bind(rule_key)
            .fetch_optional(&mut *c)
            .await
        })
        .context("reading the digest state")?;
        Ok(row.map(|(fire, digest)| (fire.0, digest.map(|t| t.0))))
    }

    /// Save the digest state; `digest_at` None keeps the stored one.
    pub async fn set_digest_state(
        &mut self,
        conference: &str,
        rule_key: &str,
        fire: DateTime<Utc>,
        digest_at: Option<DateTime<Utc>>,
    ) -> anyhow::Result<()> {
        on_tx!(self, |c| {
            sqlx::query(
                "INSERT INTO digest_runs (conference_id, rule_key, last_fire_at, last_digest_at) VALUES ($1, $2, $3, $4)
                 ON CONFLICT (conference_id, rule_key) DO UPDATE SET last_fire_at = excluded.last_fire_at,
                     last_digest_at = COALESCE(excluded.last_digest_at, digest_runs.last_digest_at)",
            )
            .bind(conference)
            .bind(rule_key)
            .bind(Ts(fire))
            .bind(digest_at.map(Ts))
            .execute(&mut *c)
            .await
            .map(|r| r.rows_affected())
        })
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
        on_tx!(self, |c| {
            sqlx::query(
                "INSERT INTO opt_in_requests (registration_id, token, requested_at, expires_at, state)
                 VALUES ($1, $2, $3, $4, $5)
                 ON CONFLICT (registration_id) DO UPDATE SET token = excluded.token,
                     requested_at = excluded.requested_at, expires_at = excluded.expires_at, state = excluded.state",
            )
            .bind(registration_id)
            .bind(token.to_ascii_uppercase())
            .bind(Ts(now))
            .bind(Ts(expires_at))
            .bind(OptInState::Open.as_str())
            .execute(&mut *c)
            .await
            .map(|r| r.rows_affected())
        })
        .context("saving an opt-in request")?;
        Ok(())
    }

    pub async fn opt_in_by_token(&mut self, token: &str) -> anyhow::Result<Option<OptInRequest>> {
        let row: Option<OptInRow> = on_tx!(self, |c| {
            sqlx::query_as("SELECT * FROM opt_in_requests WHERE token = $1")
                .bind(token.trim().to_ascii_uppercase())
                .fetch_optional(&mut *c)
                .await
        })
        .context("reading an opt-in request")?;
        row.map(OptInRequest::try_from).transpose()
    }

    pub async fn opt_in_for(
        &mut self,
        registration_id: i64,
    ) -> anyhow::Result<Option<OptInRequest>> {
        let row: Option<OptInRow> = on_tx!(self, |c| {
            sqlx::query_as("SELECT * FROM opt_in_requests WHERE registration_id = $1")
                .bind(registration_id)
                .fetch_optional(&mut *c)
                .await
        })
        .context("reading an opt-in request")?;
        row.map(OptInRequest::try_from).transpose()
    }

    pub async fn set_opt_in_state(
        &mut self,
        registration_id: i64,
        state: OptInState,
    ) -> anyhow::Result<()> {
        on_tx!(self, |c| {
            sqlx::query("UPDATE opt_in_requests SET state = $1 WHERE registration_id = $2")
                .bind(state.as_str())
                .bind(registration_id)
                .execute(&mut *c)
                .await
                .map(|r| r.rows_affected())
        })
        .context("updating an opt-in request")?;
        Ok(())
    }

    /// The first open request whose time ran out by `now`.
    pub async fn next_expired_opt_in(
        &mut self,
        now: DateTime<Utc>,
    ) -> anyhow::Result<Option<OptInRequest>> {
        let row: Option<OptInRow> = on_tx!(self, |c| {
            sqlx::query_as(
                "SELECT * FROM opt_in_requests WHERE state = $1 AND expires_at <= $2
                 ORDER BY expires_at, registration_id LIMIT 1",
            )
            .bind(OptInState::Open.as_str())
            .bind(Ts(now))
            .fetch_optional(&mut *c)
            .await
        })
        .context("reading the opt-in requests")?;
        row.map(OptInRequest::try_from).transpose()
    }
}

#[cfg(test)]
mod tests {
    use super::Store;
    use crate::config::DatabaseConfig;

    /// Regression: a daemon starting while `rsvpd attendees` opened the same
    /// new database ran migration 2 twice ("table reminders_sent already exists").
    #[tokio::test(flavor = "multi_thread", worker_threads = 4)]
    async fn concurrent_opens_of_a_new_database_migrate_once() {
        for _ in 0..5 {
            let dir = tempfile::tempdir().expect("dir");
            let db = DatabaseConfig::Sqlite {
                path: dir.path().join("rsvpd.db"),
            };
            let opens: Vec<_> = (0..6)
                .map(|_| {
                    let db = db.clone();
                    tokio::spawn(async move { Store::open(&db).await.map(|_| ()) })
                })
                .collect();
            for o in opens {
                o.await.expect("task").expect("every open succeeds");
            }
        }
    }
}
