//! The SQL of the web dashboard: login sessions, failed-login counts, and the
//! reads its pages need (a registration's audit trail, a person's mails in
//! and out, the outbox page, the search of an attendee list) plus the retry
//! of a failed mail. `person()` (privacy) reads through the same queries.
//!
//! Like its parent it owns SQL and no decisions: how long a session lasts,
//! how many failures lock a login, and who may see which conference are
//! decided in `web`. Tables from `migrations/sqlite/0005_web.sql` and
//! `migrations/postgres/0003_web.sql`.

use anyhow::Context as _;
use chrono::{DateTime, Utc};
use serde::Serialize;
use sqlx::types::Json;

use super::{
    OutboxItem, OutboxRow, OutboxState, Registration, RegistrationRow, Status, Store, Ts,
    registrations, ts,
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
    /// Why the understanding step decided what it did (issue 11): shown as
    /// `{"why": one readable line, "steps": [the rules that fired]}`.
    #[serde(serialize_with = "explained")]
    pub explanation: Option<crate::understand::Explanation>,
    /// Whether the mail itself is kept (to show it as text).
    #[serde(skip)]
    pub has_source: bool,
}

/// An explanation for people: the line `review` shows ("why") beside the
/// steps it is made of.
fn explained<S: serde::Serializer>(
    e: &Option<crate::understand::Explanation>,
    s: S,
) -> Result<S::Ok, S::Error> {
    use serde::ser::SerializeStruct as _;
    match e {
        None => s.serialize_none(),
        Some(e) => {
            let mut m = s.serialize_struct("Explanation", 2)?;
            m.serialize_field("why", &e.to_string())?;
            m.serialize_field("steps", &e.steps)?;
            m.end()
        }
    }
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

/// Which registrations an attendee list shows; the web's search decides.
pub trait Matcher {
    fn matches(&self, r: &Registration) -> bool;
}

type AuditRow = (String, Option<String>, String, Json<serde_json::Value>, Ts);
type ReceivedRow = (
    i64,
    String,
    String,
    Ts,
    String,
    Option<String>,
    Option<String>,
    bool,
    Option<String>,
);
type SentRow = (
    i64,
    String,
    Option<String>,
    String,
    String,
    Ts,
    Option<Ts>,
    Option<String>,
);

impl Store {
    pub async fn create_session(
        &self,
        token_hash: &str,
        user: &str,
        csrf: &str,
        now: DateTime<Utc>,
        expires_at: DateTime<Utc>,
    ) -> anyhow::Result<()> {
        on_pool!(self, |c| {
            sqlx::query(
                "INSERT INTO web_sessions (token_hash, user_name, csrf, created_at, last_seen_at, expires_at)
                 VALUES ($1, $2, $3, $4, $4, $5)",
            )
            .bind(token_hash)
            .bind(user)
            .bind(csrf)
            .bind(Ts(now))
            .bind(Ts(expires_at))
            .execute(c)
            .await
            .map(|_| ())
        })
        .context("saving a login session")?;
        Ok(())
    }

    /// The session of `token_hash`, if it has not expired at `now`.
    pub async fn session(
        &self,
        token_hash: &str,
        now: DateTime<Utc>,
    ) -> anyhow::Result<Option<StoredSession>> {
        let row: Option<(String, String, Ts, Ts)> = on_pool!(self, |c| {
            sqlx::query_as(
                "SELECT user_name, csrf, last_seen_at, expires_at FROM web_sessions
                 WHERE token_hash = $1 AND expires_at > $2",
            )
            .bind(token_hash)
            .bind(Ts(now))
            .fetch_optional(c)
            .await
        })
        .context("reading a login session")?;
        Ok(row.map(|(user, csrf, seen, expires)| StoredSession {
            user,
            csrf,
            last_seen_at: seen.0,
            expires_at: expires.0,
        }))
    }

    /// The session was used at `now`; it now lasts until `expires_at`.
    pub async fn touch_session(
        &self,
        token_hash: &str,
        now: DateTime<Utc>,
        expires_at: DateTime<Utc>,
    ) -> anyhow::Result<()> {
        on_pool!(self, |c| {
            sqlx::query(
                "UPDATE web_sessions SET last_seen_at = $1, expires_at = $2 WHERE token_hash = $3",
            )
            .bind(Ts(now))
            .bind(Ts(expires_at))
            .bind(token_hash)
            .execute(c)
            .await
            .map(|_| ())
        })
        .context("extending a login session")?;
        Ok(())
    }

    /// Delete every session that expired before `now` (at each login and on
    /// the daemon's idle moments: a session cookie someone copied, or left
    /// on a shared computer, is worth nothing after it expired, and the
    /// table does not grow). How many went.
    pub async fn delete_expired_sessions(&self, now: DateTime<Utc>) -> anyhow::Result<u64> {
        on_pool!(self, |c| {
            sqlx::query("DELETE FROM web_sessions WHERE expires_at <= $1")
                .bind(Ts(now))
                .execute(c)
                .await
                .map(|r| r.rows_affected())
        })
        .context("deleting expired login sessions")
    }

    /// How many sessions are stored, expired or not (for tests and checks).
    pub async fn session_count(&self) -> anyhow::Result<i64> {
        on_pool!(self, |c| {
            sqlx::query_scalar::<_, i64>("SELECT COUNT(*) FROM web_sessions")
                .fetch_one(c)
                .await
        })
        .context("counting login sessions")
    }

    /// End a session (logout), and every session that expired before `now`.
    pub async fn end_session(&self, token_hash: &str, now: DateTime<Utc>) -> anyhow::Result<()> {
        on_pool!(self, |c| {
            sqlx::query("DELETE FROM web_sessions WHERE token_hash = $1 OR expires_at <= $2")
                .bind(token_hash)
                .bind(Ts(now))
                .execute(c)
                .await
                .map(|_| ())
        })
        .context("ending a login session")?;
        Ok(())
    }

    pub async fn record_login_failure(
        &self,
        user: &str,
        address: &str,
        now: DateTime<Utc>,
    ) -> anyhow::Result<()> {
        on_pool!(self, |c| {
            sqlx::query(
                "INSERT INTO web_login_failures (user_name, address, at) VALUES ($1, $2, $3)",
            )
            .bind(user)
            .bind(address)
            .bind(Ts(now))
            .execute(c)
            .await
            .map(|_| ())
        })
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
        let row: (i64, i64) = on_pool!(self, |c| {
            sqlx::query_as(
                "SELECT
                   CAST(COALESCE(SUM(CASE WHEN user_name = $1 THEN 1 ELSE 0 END), 0) AS BIGINT),
                   CAST(COALESCE(SUM(CASE WHEN address = $2 THEN 1 ELSE 0 END), 0) AS BIGINT)
                 FROM web_login_failures WHERE at > $3",
            )
            .bind(user)
            .bind(address)
            .bind(Ts(since))
            .fetch_one(c)
            .await
        })
        .context("counting failed logins")?;
        Ok(row)
    }

    /// A successful login forgets the user's failures, and failures older than `before`.
    pub async fn clear_login_failures(
        &self,
        user: &str,
        before: DateTime<Utc>,
    ) -> anyhow::Result<()> {
        on_pool!(self, |c| {
            sqlx::query("DELETE FROM web_login_failures WHERE user_name = $1 OR at <= $2")
                .bind(user)
                .bind(Ts(before))
                .execute(c)
                .await
                .map(|_| ())
        })
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
        let rows: Vec<RegistrationRow> = on_pool!(self, |c| {
            sqlx::query_as(
                "SELECT * FROM registrations WHERE conference_id = $1
                   AND ((CAST($2 AS TEXT) IS NULL AND status != $3) OR status = CAST($2 AS TEXT))
                 ORDER BY registered_at, id",
            )
            .bind(conference)
            .bind(status.map(Status::as_str))
            .bind(Status::Cancelled.as_str())
            .fetch_all(c)
            .await
        })
        .context("searching registrations")?;
        Ok(registrations(rows)?
            .into_iter()
            .filter(|r| matcher.matches(r))
            .collect())
    }

    /// The registration of `email` for `conference`, cancelled ones included.
    pub async fn registration_of(
        &self,
        conference: &str,
        email: &str,
    ) -> anyhow::Result<Option<Registration>> {
        let row: Option<RegistrationRow> = on_pool!(self, |c| {
            sqlx::query_as("SELECT * FROM registrations WHERE conference_id = $1 AND email = $2")
                .bind(conference)
                .bind(email.trim().to_lowercase())
                .fetch_optional(c)
                .await
        })
        .context("reading a registration")?;
        row.map(Registration::try_from).transpose()
    }

    /// Every change of registration `id`, oldest first.
    pub async fn audit_trail(&self, registration_id: i64) -> anyhow::Result<Vec<AuditEntry>> {
        let rows: Vec<AuditRow> = on_pool!(self, |c| {
            sqlx::query_as(
                "SELECT action, source_message_id, actor, detail, at FROM audit WHERE registration_id = $1 ORDER BY id",
            )
            .bind(registration_id)
            .fetch_all(c)
            .await
        })
        .context("reading the audit trail")?;
        Ok(rows
            .into_iter()
            .map(|(action, message_id, by, detail, at)| AuditEntry {
                action,
                message_id,
                by,
                detail: detail.0,
                at: ts(at.0),
            })
            .collect())
    }

    /// Mails from `email` (about `conference`, or all), oldest first.
    pub async fn mails_received(
        &self,
        email: &str,
        conference: Option<&str>,
    ) -> anyhow::Result<Vec<ReceivedMail>> {
        let rows: Vec<ReceivedRow> = on_pool!(self, |c| {
            sqlx::query_as(
                "SELECT id, message_id, subject, received_at, outcome, reason, conference_id, raw IS NOT NULL, explanation
                 FROM inbound_messages
                 WHERE from_addr = $1 AND (CAST($2 AS TEXT) IS NULL OR conference_id = CAST($2 AS TEXT))
                 ORDER BY id",
            )
            .bind(email)
            .bind(conference)
            .fetch_all(c)
            .await
        })
        .context("reading received mail")?;
        Ok(rows
            .into_iter()
            .map(
                |(
                    id,
                    message_id,
                    subject,
                    at,
                    outcome,
                    reason,
                    conference,
                    has_source,
                    explanation,
                )| {
                    ReceivedMail {
                        id,
                        message_id,
                        subject,
                        received_at: ts(at.0),
                        outcome,
                        reason,
                        conference,
                        explanation: super::explanation_from(explanation),
                        has_source,
                    }
                },
            )
            .collect())
    }

    /// Mails to `email` (about `conference`, or all), oldest first.
    pub async fn mails_sent(
        &self,
        email: &str,
        conference: Option<&str>,
    ) -> anyhow::Result<Vec<SentMail>> {
        let rows: Vec<SentRow> = on_pool!(self, |c| {
            sqlx::query_as(
                "SELECT id, kind, conference_id, subject, state, created_at, sent_at, last_error FROM outbox
                 WHERE recipient = $1 AND (CAST($2 AS TEXT) IS NULL OR conference_id = CAST($2 AS TEXT))
                 ORDER BY id",
            )
            .bind(email)
            .bind(conference)
            .fetch_all(c)
            .await
        })
        .context("reading sent mail")?;
        Ok(rows
            .into_iter()
            .map(
                |(id, kind, conference, subject, state, created, sent, last_error)| SentMail {
                    id,
                    kind,
                    conference,
                    subject,
                    state,
                    created_at: ts(created.0),
                    sent_at: sent.map(|t| ts(t.0)),
                    last_error,
                },
            )
            .collect())
    }

    /// The kept source of received mail `id`, with its conference.
    pub async fn inbound_raw(&self, id: i64) -> anyhow::Result<Option<(Option<String>, Vec<u8>)>> {
        let row: Option<(Option<String>, Vec<u8>)> = on_pool!(self, |c| {
            sqlx::query_as(
                "SELECT conference_id, raw FROM inbound_messages WHERE id = $1 AND raw IS NOT NULL",
            )
            .bind(id)
            .fetch_optional(c)
            .await
        })
        .context("reading a received mail")?;
        Ok(row)
    }

    /// One open review item.
    pub async fn review_item(&self, id: i64) -> anyhow::Result<Option<super::ReviewItem>> {
        Ok(self.review_items().await?.into_iter().find(|i| i.id == id))
    }

    /// The outbox as the dashboard shows it: every queued and failed mail,
    /// and the `sent` most recently sent ones; failed first, then queued.
    pub async fn outbox_page(&self, sent: i64) -> anyhow::Result<Vec<OutboxItem>> {
        let rows: Vec<OutboxRow> = on_pool!(self, |c| {
            // Two index ranges (the open mail, the newest sent), not `state !=
            // 'sent' OR …`, which reads the whole outbox: 0.7 s at a million
            // rows (docs/capacity.md).
            sqlx::query_as(
                "SELECT * FROM (
                   SELECT id, kind, conference_id, recipient, subject, state, attempts, next_attempt_at,
                          last_error, created_at, sent_at, message_id
                   FROM outbox WHERE state IN ($3, $4)
                   UNION ALL
                   SELECT * FROM (
                     SELECT id, kind, conference_id, recipient, subject, state, attempts, next_attempt_at,
                            last_error, created_at, sent_at, message_id
                     FROM outbox WHERE state = $1 ORDER BY sent_at DESC, id DESC LIMIT $2) newest
                 ) shown
                 ORDER BY CASE WHEN state = $3 THEN 0 WHEN state = $1 THEN 2 ELSE 1 END, id DESC",
            )
            .bind(OutboxState::Sent.as_str())
            .bind(sent)
            .bind(OutboxState::Failed.as_str())
            .bind(OutboxState::Queued.as_str())
            .fetch_all(c)
            .await
        })
        .context("reading the outbox")?;
        rows.into_iter().map(OutboxItem::try_from).collect()
    }

    /// Queue failed mail `id` again, due now; its recipient is no longer
    /// undeliverable. False when `id` is not a failed mail (or was erased).
    pub async fn retry_failed(&self, id: i64, now: DateTime<Utc>) -> anyhow::Result<bool> {
        let mut tx = self.begin().await?;
        let recipient: Option<String> = on_tx!(tx, |c| {
            sqlx::query_scalar(
                "UPDATE outbox SET state = $1, attempts = 0, next_attempt_at = $2, failed_at = NULL,
                     claimed_by = NULL, claimed_until = NULL
                 WHERE id = $3 AND state = $4 AND recipient != $5
                 RETURNING recipient",
            )
            .bind(OutboxState::Queued.as_str())
            .bind(Ts(now))
            .bind(id)
            .bind(OutboxState::Failed.as_str())
            .bind("erased")
            .fetch_optional(&mut *c)
            .await
        })
        .context("queuing a failed mail again")?;
        let Some(recipient) = recipient else {
            return Ok(false);
        };
        on_tx!(tx, |c| {
            sqlx::query("DELETE FROM undeliverable WHERE email = $1")
                .bind(recipient.to_lowercase())
                .execute(&mut *c)
                .await
                .map(|_| ())
        })
        .context("clearing the undeliverable mark")?;
        tx.commit().await?;
        Ok(true)
    }
}
