//! The SQL of the web dashboard: login sessions, failed-login counts, and the
//! reads its pages need (a registration's audit trail, a person's mails in
//! and out, one review item, the outbox page, the search of an attendee list).
//!
//! Like its parent it owns SQL and no decisions: how long a session lasts,
//! how many failures lock a login, and who may see which conference are
//! decided in `web`. Tables from `migrations/sqlite/0004_web.sql`.

use anyhow::Context as _;
use chrono::{DateTime, Utc};
use serde::Serialize;
use sqlx::Row;

use super::{
    OutboxItem, Registration, ReviewItem, Status, Store, parse_ts, registration_from_row, ts,
};

/// A login session as stored.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct StoredSession {
    pub user: String,
    pub csrf: String,
    pub last_seen_at: DateTime<Utc>,
    pub expires_at: DateTime<Utc>,
}

/// One entry of a registration's audit trail.
#[derive(Debug, Clone, Serialize)]
pub struct AuditEntry {
    pub action: String,
    /// The message that caused the change, if a message did.
    pub message_id: Option<String>,
    /// mail | cli | system | web:USER
    pub by: String,
    pub detail: serde_json::Value,
    pub at: String,
}

/// A mail that reached rsvpd from one person.
#[derive(Debug, Clone, Serialize)]
pub struct ReceivedMail {
    #[serde(skip)]
    pub id: i64,
    pub message_id: String,
    pub subject: String,
    pub received_at: String,
    pub outcome: String,
    pub reason: Option<String>,
    pub conference: Option<String>,
    /// Whether the mail itself is kept (to show it as text).
    #[serde(skip)]
    pub has_source: bool,
}

/// A mail rsvpd queued for one person.
#[derive(Debug, Clone, Serialize)]
pub struct SentMail {
    #[serde(skip)]
    pub id: i64,
    pub kind: String,
    pub conference: Option<String>,
    pub subject: String,
    pub state: String,
    pub created_at: String,
    pub sent_at: Option<String>,
    #[serde(skip)]
    pub last_error: Option<String>,
}

/// Words searched in name, email and organisation, as the dashboard's
/// attendee list filters them.
pub trait Matcher {
    fn matches(&self, r: &Registration) -> bool;
}

impl Store {
    pub async fn create_session(
        &self,
        token_hash: &str,
        user: &str,
        csrf: &str,
        now: DateTime<Utc>,
        expires_at: DateTime<Utc>,
    ) -> anyhow::Result<()> {
        sqlx::query(
            "INSERT INTO web_sessions (token_hash, user_name, csrf, created_at, last_seen_at, expires_at)
             VALUES (?, ?, ?, ?, ?, ?)",
        )
        .bind(token_hash)
        .bind(user)
        .bind(csrf)
        .bind(ts(now))
        .bind(ts(now))
        .bind(ts(expires_at))
        .execute(&self.pool)
        .await
        .context("saving a login session")?;
        Ok(())
    }

    /// The session of `token_hash`, if it has not expired at `now`.
    pub async fn session(
        &self,
        token_hash: &str,
        now: DateTime<Utc>,
    ) -> anyhow::Result<Option<StoredSession>> {
        let row = sqlx::query(
            "SELECT user_name, csrf, last_seen_at, expires_at FROM web_sessions
             WHERE token_hash = ? AND expires_at > ?",
        )
        .bind(token_hash)
        .bind(ts(now))
        .fetch_optional(&self.pool)
        .await
        .context("reading a login session")?;
        Ok(row.map(|r| StoredSession {
            user: r.get("user_name"),
            csrf: r.get("csrf"),
            last_seen_at: parse_ts(r.get("last_seen_at")),
            expires_at: parse_ts(r.get("expires_at")),
        }))
    }

    /// The session was used at `now`; it now lasts until `expires_at`.
    pub async fn touch_session(
        &self,
        token_hash: &str,
        now: DateTime<Utc>,
        expires_at: DateTime<Utc>,
    ) -> anyhow::Result<()> {
        sqlx::query(
            "UPDATE web_sessions SET last_seen_at = ?, expires_at = ? WHERE token_hash = ?",
        )
        .bind(ts(now))
        .bind(ts(expires_at))
        .bind(token_hash)
        .execute(&self.pool)
        .await
        .context("extending a login session")?;
        Ok(())
    }

    /// End a session (logout), and every session that expired before `now`.
    pub async fn end_session(&self, token_hash: &str, now: DateTime<Utc>) -> anyhow::Result<()> {
        sqlx::query("DELETE FROM web_sessions WHERE token_hash = ? OR expires_at <= ?")
            .bind(token_hash)
            .bind(ts(now))
            .execute(&self.pool)
            .await
            .context("ending a login session")?;
        Ok(())
    }

    pub async fn record_login_failure(
        &self,
        user: &str,
        address: &str,
        now: DateTime<Utc>,
    ) -> anyhow::Result<()> {
        sqlx::query("INSERT INTO web_login_failures (user_name, address, at) VALUES (?, ?, ?)")
            .bind(user)
            .bind(address)
            .bind(ts(now))
            .execute(&self.pool)
            .await
            .context("counting a failed login")?;
        Ok(())
    }

    /// Failed logins since `since`: (for this user name, from this address).
    pub async fn login_failures_since(
        &self,
        user: &str,
        address: &str,
        since: DateTime<Utc>,
    ) -> anyhow::Result<(i64, i64)> {
        let row = sqlx::query(
            "SELECT
               COALESCE(SUM(CASE WHEN user_name = ? THEN 1 ELSE 0 END), 0) AS by_user,
               COALESCE(SUM(CASE WHEN address = ? THEN 1 ELSE 0 END), 0) AS by_address
             FROM web_login_failures WHERE at > ?",
        )
        .bind(user)
        .bind(address)
        .bind(ts(since))
        .fetch_one(&self.pool)
        .await
        .context("counting failed logins")?;
        Ok((row.get("by_user"), row.get("by_address")))
    }

    /// A successful login forgets the user's failures, and failures older than `before`.
    pub async fn clear_login_failures(
        &self,
        user: &str,
        before: DateTime<Utc>,
    ) -> anyhow::Result<()> {
        sqlx::query("DELETE FROM web_login_failures WHERE user_name = ? OR at <= ?")
            .bind(user)
            .bind(ts(before))
            .execute(&self.pool)
            .await
            .context("clearing failed logins")?;
        Ok(())
    }

    /// Registrations of `conference` in `status` (None: all but cancelled)
    /// that `matcher` accepts, in registration order.
    pub async fn find_registrations(
        &self,
        conference: &str,
        status: Option<Status>,
        matcher: &(dyn Matcher + Sync),
    ) -> anyhow::Result<Vec<Registration>> {
        let rows = sqlx::query(
            "SELECT * FROM registrations WHERE conference_id = ?
               AND (? IS NULL AND status != 'cancelled' OR status = ?)
             ORDER BY registered_at, id",
        )
        .bind(conference)
        .bind(status.map(Status::as_str))
        .bind(status.map(Status::as_str))
        .fetch_all(&self.pool)
        .await
        .context("searching registrations")?;
        Ok(rows
            .iter()
            .map(registration_from_row)
            .filter(|r| matcher.matches(r))
            .collect())
    }

    /// The registration of `email` for `conference`, cancelled ones included.
    pub async fn registration_of(
        &self,
        conference: &str,
        email: &str,
    ) -> anyhow::Result<Option<Registration>> {
        let row = sqlx::query("SELECT * FROM registrations WHERE conference_id = ? AND email = ?")
            .bind(conference)
            .bind(email.trim().to_lowercase())
            .fetch_optional(&self.pool)
            .await
            .context("reading a registration")?;
        Ok(row.as_ref().map(registration_from_row))
    }

    /// Every change of registration `id`, oldest first.
    pub async fn audit_trail(&self, registration_id: i64) -> anyhow::Result<Vec<AuditEntry>> {
        let rows = sqlx::query(
            "SELECT action, source_message_id, actor, detail, at FROM audit WHERE registration_id = ? ORDER BY id",
        )
        .bind(registration_id)
        .fetch_all(&self.pool)
        .await
        .context("reading the audit trail")?;
        Ok(rows
            .iter()
            .map(|a| AuditEntry {
                action: a.get("action"),
                message_id: a.get("source_message_id"),
                by: a.get("actor"),
                detail: serde_json::from_str(&a.get::<String, _>("detail")).unwrap_or_default(),
                at: a.get("at"),
            })
            .collect())
    }

    /// Mails from `email` (about `conference`, or all), oldest first.
    pub async fn mails_received(
        &self,
        email: &str,
        conference: Option<&str>,
    ) -> anyhow::Result<Vec<ReceivedMail>> {
        let rows = sqlx::query(
            "SELECT id, message_id, subject, received_at, outcome, reason, conference_id, raw IS NOT NULL AS has_raw
             FROM inbound_messages WHERE from_addr = ? AND (? IS NULL OR conference_id = ?) ORDER BY id",
        )
        .bind(email)
        .bind(conference)
        .bind(conference)
        .fetch_all(&self.pool)
        .await
        .context("reading received mail")?;
        Ok(rows
            .iter()
            .map(|m| ReceivedMail {
                id: m.get("id"),
                message_id: m.get("message_id"),
                subject: m.get("subject"),
                received_at: m.get("received_at"),
                outcome: m.get("outcome"),
                reason: m.get("reason"),
                conference: m.get("conference_id"),
                has_source: m.get::<bool, _>("has_raw"),
            })
            .collect())
    }

    /// Mails to `email` (about `conference`, or all), oldest first.
    pub async fn mails_sent(
        &self,
        email: &str,
        conference: Option<&str>,
    ) -> anyhow::Result<Vec<SentMail>> {
        let rows = sqlx::query(
            "SELECT id, kind, conference_id, subject, state, created_at, sent_at, last_error FROM outbox
             WHERE recipient = ? AND (? IS NULL OR conference_id = ?) ORDER BY id",
        )
        .bind(email)
        .bind(conference)
        .bind(conference)
        .fetch_all(&self.pool)
        .await
        .context("reading sent mail")?;
        Ok(rows
            .iter()
            .map(|m| SentMail {
                id: m.get("id"),
                kind: m.get("kind"),
                conference: m.get("conference_id"),
                subject: m.get("subject"),
                state: m.get("state"),
                created_at: m.get("created_at"),
                sent_at: m.get("sent_at"),
                last_error: m.get("last_error"),
            })
            .collect())
    }

    /// The kept source of received mail `id`, with its conference.
    pub async fn inbound_raw(&self, id: i64) -> anyhow::Result<Option<(Option<String>, Vec<u8>)>> {
        let row = sqlx::query(
            "SELECT conference_id, raw FROM inbound_messages WHERE id = ? AND raw IS NOT NULL",
        )
        .bind(id)
        .fetch_optional(&self.pool)
        .await
        .context("reading a received mail")?;
        Ok(row.map(|r| (r.get("conference_id"), r.get("raw"))))
    }

    /// One open review item.
    pub async fn review_item(&self, id: i64) -> anyhow::Result<Option<ReviewItem>> {
        Ok(self.review_items().await?.into_iter().find(|i| i.id == id))
    }

    /// The outbox as the dashboard shows it: every queued and failed mail,
    /// and the `sent` most recently sent ones.
    pub async fn outbox_page(&self, sent: i64) -> anyhow::Result<Vec<OutboxItem>> {
        let rows = sqlx::query(
            "SELECT id, kind, conference_id, recipient, subject, state, attempts, next_attempt_at,
                    last_error, created_at, sent_at, message_id
             FROM outbox WHERE state != 'sent'
                OR id IN (SELECT id FROM outbox WHERE state = 'sent' ORDER BY sent_at DESC, id DESC LIMIT ?)
             ORDER BY CASE state WHEN 'failed' THEN 0 WHEN 'queued' THEN 1 ELSE 2 END, id DESC",
        )
        .bind(sent)
        .fetch_all(&self.pool)
        .await
        .context("reading the outbox")?;
        Ok(rows.iter().map(super::outbox_item_from_row).collect())
    }

    /// Queue failed mail `id` again, due now; its recipient is no longer
    /// undeliverable. False when `id` is not a failed mail (or was erased).
    pub async fn retry_failed(&self, id: i64, now: DateTime<Utc>) -> anyhow::Result<bool> {
        let mut tx = self.begin().await?;
        let recipient: Option<String> = sqlx::query_scalar(
            "UPDATE outbox SET state = 'queued', attempts = 0, next_attempt_at = ?, failed_at = NULL
             WHERE id = ? AND state = 'failed' AND recipient != 'erased'
             RETURNING recipient",
        )
        .bind(ts(now))
        .bind(id)
        .fetch_optional(&mut *tx.tx)
        .await
        .context("queuing a failed mail again")?;
        let Some(recipient) = recipient else {
            return Ok(false);
        };
        sqlx::query("DELETE FROM undeliverable WHERE email = ?")
            .bind(recipient.to_lowercase())
            .execute(&mut *tx.tx)
            .await
            .context("clearing the undeliverable mark")?;
        tx.commit().await?;
        Ok(true)
    }
}
