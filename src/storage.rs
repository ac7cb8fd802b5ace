//! The storage layer: every row rsvpd keeps, behind a narrow API.
//!
//! It owns the SQL and nothing else: no decisions about registrations or mail
//! live here. SQLite is the embedded default (WAL, writes begin IMMEDIATE so two
//! writers never deadlock on a lock upgrade); the flows only see `Store` and
//! `StoreTx`, so a PostgreSQL implementation can be slotted in behind the same
//! methods. Times are stored as RFC 3339 UTC text, lists as JSON arrays.

use crate::understand::Explanation;
use std::path::Path;
use std::str::FromStr;
use std::time::Duration;

use anyhow::{Context as _, bail};
use chrono::{DateTime, SecondsFormat, Utc};
use serde::Serialize;
use sqlx::sqlite::{SqliteConnectOptions, SqliteJournalMode, SqlitePoolOptions, SqliteSynchronous};
use sqlx::{Row, Sqlite, SqlitePool, Transaction};

use crate::config::{Conference, Language};

mod notify;
mod privacy;
pub use notify::{Ended, FailedMail, OptInRequest};
pub use privacy::{Erased, PersonData};

/// A stored explanation; a row from before migration 0004 (or an
/// unreadable one) has none.
pub fn explanation_from(json: Option<String>) -> Option<Explanation> {
    json.and_then(|j| serde_json::from_str(&j).ok())
}

pub fn ts(t: DateTime<Utc>) -> String {
    t.to_rfc3339_opts(SecondsFormat::Secs, true)
}

pub fn parse_ts(s: &str) -> DateTime<Utc> {
    DateTime::parse_from_rfc3339(s)
        .map(|t| t.with_timezone(&Utc))
        .unwrap_or(DateTime::<Utc>::UNIX_EPOCH)
}

#[derive(Debug, Clone, Copy, PartialEq, Eq, Serialize)]
#[serde(rename_all = "lowercase")]
pub enum Status {
    Confirmed,
    Waitlisted,
    Pending,
    Cancelled,
}

impl Status {
    pub fn as_str(self) -> &'static str {
        match self {
            Status::Confirmed => "confirmed",
            Status::Waitlisted => "waitlisted",
            Status::Pending => "pending",
            Status::Cancelled => "cancelled",
        }
    }
    fn parse(s: &str) -> Status {
        match s {
            "waitlisted" => Status::Waitlisted,
            "pending" => Status::Pending,
            "cancelled" => Status::Cancelled,
            _ => Status::Confirmed,
        }
    }
}

/// One person's registration for one conference (with their party).
#[derive(Debug, Clone, Serialize)]
pub struct Registration {
    #[serde(skip)]
    pub id: i64,
    #[serde(skip)]
    pub conference_id: String,
    pub email: String,
    pub name: Option<String>,
    pub organization: Option<String>,
    pub party_size: u32,
    pub companions: Vec<String>,
    pub workshops: Vec<String>,
    pub status: Status,
    #[serde(serialize_with = "ser_lang")]
    pub language: Language,
    pub notes: Vec<String>,
    #[serde(serialize_with = "ser_ts")]
    pub registered_at: DateTime<Utc>,
    #[serde(serialize_with = "ser_ts")]
    pub updated_at: DateTime<Utc>,
    #[serde(skip)]
    pub last_message_id: Option<String>,
}

fn ser_lang<S: serde::Serializer>(l: &Language, s: S) -> Result<S::Ok, S::Error> {
    s.serialize_str(l.code())
}
fn ser_ts<S: serde::Serializer>(t: &DateTime<Utc>, s: S) -> Result<S::Ok, S::Error> {
    s.serialize_str(&ts(*t))
}

#[derive(Debug, Clone, Serialize)]
pub struct ReviewItem {
    pub id: i64,
    pub message_id: String,
    pub from: Option<String>,
    pub subject: String,
    pub reason: String,
    pub received_at: String,
    pub conference: Option<String>,
    /// Why it is here: the rules that fired and the sentences they fired on.
    pub explanation: Option<Explanation>,
}

#[derive(Debug, Clone, Serialize)]
pub struct OutboxItem {
    pub id: i64,
    pub kind: String,
    pub conference: Option<String>,
    pub recipient: String,
    pub subject: String,
    pub state: String,
    pub attempts: i64,
    pub next_attempt_at: String,
    pub last_error: Option<String>,
    pub created_at: String,
    pub sent_at: Option<String>,
    pub message_id: String,
}

/// A message ready to hand to the SMTP server.
#[derive(Debug, Clone)]
pub struct DueMessage {
    pub id: i64,
    pub recipient: String,
    pub raw: Vec<u8>,
    pub attempts: i64,
}

/// A new outbox row.
#[derive(Debug, Clone)]
pub struct NewOutbox {
    pub kind: String,
    pub conference_id: Option<String>,
    pub registration_id: Option<i64>,
    pub recipient: String,
    pub message_id: String,
    pub in_reply_to: Option<String>,
    pub subject: String,
    pub raw: Vec<u8>,
}

/// A new row for a message that reached rsvpd.
#[derive(Debug, Clone)]
pub struct NewInbound<'a> {
    pub message_id: &'a str,
    pub location: &'a str,
    pub from: Option<&'a str>,
    pub subject: &'a str,
    pub outcome: &'a str,
    pub reason: Option<&'a str>,
    pub conference_id: Option<&'a str>,
    pub raw: Option<&'a [u8]>,
    /// Why the understanding step decided what it did.
    pub explanation: Option<&'a Explanation>,
}

#[derive(Clone)]
pub struct Store {
    pool: SqlitePool,
}

pub struct StoreTx {
    tx: Transaction<'static, Sqlite>,
}

impl Store {
    /// Open (creating when missing) the database and bring its schema up to date.
    pub async fn open(path: &Path) -> anyhow::Result<Store> {
        if let Some(dir) = path.parent().filter(|d| !d.as_os_str().is_empty()) {
            std::fs::create_dir_all(dir)
                .with_context(|| format!("cannot create the database folder {}", dir.display()))?;
        }
        // SQLite has no advisory lock for sqlx's migrator: two processes starting
        // at once (the daemon and a CLI command) would both apply migration 1.
        // A lock file beside the database serialises them. It is taken before
        // connecting: on a fresh file the first connection switches it to WAL,
        // which needs an exclusive lock that SQLite refuses at once (SQLITE_BUSY,
        // no busy wait) while another process is opening it too.
        let lock_path = path.with_extension("migrate.lock");
        let lock = std::fs::OpenOptions::new()
            .create(true)
            .truncate(false)
            .write(true)
            .open(&lock_path)
            .with_context(|| format!("cannot create {}", lock_path.display()))?;
        let lock = tokio::task::spawn_blocking(move || lock.lock().map(|()| lock))
            .await
            .context("waiting for the migration lock")?
            .with_context(|| format!("cannot lock {}", lock_path.display()))?;
        let opts = SqliteConnectOptions::from_str("sqlite://")
            .context("sqlite options")?
            .filename(path)
            .create_if_missing(true)
            .journal_mode(SqliteJournalMode::Wal)
            .synchronous(SqliteSynchronous::Full)
            .busy_timeout(Duration::from_secs(10))
            .foreign_keys(true);
        let pool = SqlitePoolOptions::new()
            .max_connections(4)
            .connect_with(opts)
            .await
            .with_context(|| format!("cannot open the database {}", path.display()))?;
        let mode: String = sqlx::query_scalar("PRAGMA journal_mode")
            .fetch_one(&pool)
            .await
            .context("reading the journal mode")?;
        if !mode.eq_ignore_ascii_case("wal") {
            bail!(
                "the database {} is not in WAL mode (it reports `{mode}`); it may sit on a file system without shared memory — put it on a local disk",
                path.display()
            );
        }
        let migrated = sqlx::migrate!("migrations/sqlite").run(&pool).await;
        drop(lock);
        migrated.with_context(|| {
            format!(
                "cannot bring the database schema of {} up to date",
                path.display()
            )
        })?;
        Ok(Store { pool })
    }

    /// A write transaction. IMMEDIATE takes the write lock up front, so the
    /// transaction cannot fail half-way on SQLITE_BUSY when it upgrades.
    pub async fn begin(&self) -> anyhow::Result<StoreTx> {
        let tx = self
            .pool
            .begin_with("BEGIN IMMEDIATE")
            .await
            .context("cannot start a database transaction")?;
        Ok(StoreTx { tx })
    }

    pub async fn sync_conferences(&self, conferences: &[Conference]) -> anyhow::Result<()> {
        let mut tx = self.begin().await?;
        let now = ts(Utc::now());
        for c in conferences {
            sqlx::query(
                "INSERT INTO conferences (id, title, starts_at, ends_at, timezone, location, capacity, synced_at)
                 VALUES (?, ?, ?, ?, ?, ?, ?, ?)
                 ON CONFLICT (id) DO UPDATE SET title = excluded.title, starts_at = excluded.starts_at,
                   ends_at = excluded.ends_at, timezone = excluded.timezone, location = excluded.location,
                   capacity = excluded.capacity, synced_at = excluded.synced_at",
            )
            .bind(&c.id)
            .bind(&c.title)
            .bind(ts(c.starts))
            .bind(ts(c.ends))
            .bind(c.timezone.name())
            .bind(&c.location)
            .bind(c.capacity.map(i64::from))
            .bind(&now)
            .execute(&mut *tx.tx)
            .await
            .context("saving the conferences")?;
        }
        tx.commit().await
    }

    /// The outcome stored for a message at this location, if it was handled.
    pub async fn inbound_outcome(&self, location: &str) -> anyhow::Result<Option<String>> {
        let row = sqlx::query_scalar("SELECT outcome FROM inbound_messages WHERE location = ?")
            .bind(location)
            .fetch_optional(&self.pool)
            .await
            .context("looking up a message")?;
        Ok(row)
    }

    /// The conference of the first of `message_ids` that is a mail rsvpd sent.
    /// The conference and recipient of our opt-in request among `message_ids`
    /// (a reply's In-Reply-To and References), if the mail answers one.
    pub async fn opt_in_thread(
        &self,
        message_ids: &[String],
    ) -> anyhow::Result<Option<(String, String)>> {
        for id in message_ids.iter().rev() {
            let row: Option<(Option<String>, String)> = sqlx::query_as(
                "SELECT conference_id, recipient FROM outbox WHERE message_id = ? AND kind = 'opt_in'",
            )
            .bind(id)
            .fetch_optional(&self.pool)
            .await
            .context("looking up the opt-in thread")?;
            if let Some((Some(conference), recipient)) = row {
                return Ok(Some((conference, recipient.to_lowercase())));
            }
        }
        Ok(None)
    }

    /// Conferences in which `email` holds an active registration (not cancelled).
    pub async fn active_conferences_of(&self, email: &str) -> anyhow::Result<Vec<String>> {
        sqlx::query_scalar(
            "SELECT DISTINCT conference_id FROM registrations WHERE email = ? AND status <> 'cancelled' ORDER BY conference_id",
        )
        .bind(email.trim().to_lowercase())
        .fetch_all(&self.pool)
        .await
        .context("looking up the sender's registrations")
    }

    pub async fn thread_conference(
        &self,
        message_ids: &[String],
    ) -> anyhow::Result<Option<String>> {
        for id in message_ids.iter().rev() {
            let c: Option<Option<String>> =
                sqlx::query_scalar("SELECT conference_id FROM outbox WHERE message_id = ?")
                    .bind(id)
                    .fetch_optional(&self.pool)
                    .await
                    .context("looking up the thread")?;
            if let Some(Some(c)) = c {
                return Ok(Some(c));
            }
        }
        Ok(None)
    }

    pub async fn registrations(
        &self,
        conference: &str,
        include_cancelled: bool,
    ) -> anyhow::Result<Vec<Registration>> {
        let rows = sqlx::query(
            "SELECT * FROM registrations WHERE conference_id = ? AND (? OR status != 'cancelled')
             ORDER BY registered_at, id",
        )
        .bind(conference)
        .bind(include_cancelled)
        .fetch_all(&self.pool)
        .await
        .context("reading registrations")?;
        Ok(rows.iter().map(registration_from_row).collect())
    }

    pub async fn registration_counts(&self, conference: &str) -> anyhow::Result<(i64, i64, i64)> {
        let row = sqlx::query(
            "SELECT
               COALESCE(SUM(CASE WHEN status = 'confirmed' THEN 1 ELSE 0 END), 0) AS regs,
               COALESCE(SUM(CASE WHEN status = 'confirmed' THEN party_size ELSE 0 END), 0) AS people,
               COALESCE(SUM(CASE WHEN status = 'waitlisted' THEN 1 ELSE 0 END), 0) AS waiting
             FROM registrations WHERE conference_id = ?",
        )
        .bind(conference)
        .fetch_one(&self.pool)
        .await
        .context("counting registrations")?;
        Ok((row.get("regs"), row.get("people"), row.get("waiting")))
    }

    pub async fn review_items(&self) -> anyhow::Result<Vec<ReviewItem>> {
        let rows = sqlx::query(
            "SELECT id, message_id, from_addr, subject, reason, received_at, conference_id, explanation
             FROM inbound_messages WHERE outcome = 'review' ORDER BY id",
        )
        .fetch_all(&self.pool)
        .await
        .context("reading the review queue")?;
        Ok(rows
            .iter()
            .map(|r| ReviewItem {
                id: r.get("id"),
                message_id: r.get("message_id"),
                from: r.get("from_addr"),
                subject: r.get("subject"),
                reason: r.get::<Option<String>, _>("reason").unwrap_or_default(),
                received_at: r.get("received_at"),
                conference: r.get("conference_id"),
                explanation: explanation_from(r.get("explanation")),
            })
            .collect())
    }

    /// The stored raw message of a review item.
    pub async fn review_raw(&self, id: i64) -> anyhow::Result<Option<(String, Vec<u8>)>> {
        let row = sqlx::query(
            "SELECT location, raw FROM inbound_messages WHERE id = ? AND outcome = 'review'",
        )
        .bind(id)
        .fetch_optional(&self.pool)
        .await
        .context("reading a review item")?;
        Ok(row.map(|r| {
            (
                r.get::<String, _>("location"),
                r.get::<Option<Vec<u8>>, _>("raw").unwrap_or_default(),
            )
        }))
    }

    pub async fn outbox_items(&self) -> anyhow::Result<Vec<OutboxItem>> {
        let rows = sqlx::query(
            "SELECT id, kind, conference_id, recipient, subject, state, attempts, next_attempt_at,
                    last_error, created_at, sent_at, message_id
             FROM outbox ORDER BY id",
        )
        .fetch_all(&self.pool)
        .await
        .context("reading the outbox")?;
        Ok(rows
            .iter()
            .map(|r| OutboxItem {
                id: r.get("id"),
                kind: r.get("kind"),
                conference: r.get("conference_id"),
                recipient: r.get("recipient"),
                subject: r.get("subject"),
                state: r.get("state"),
                attempts: r.get("attempts"),
                next_attempt_at: r.get("next_attempt_at"),
                last_error: r.get("last_error"),
                created_at: r.get("created_at"),
                sent_at: r.get("sent_at"),
                message_id: r.get("message_id"),
            })
            .collect())
    }

    /// The next queued message whose time has come.
    pub async fn next_due(&self, now: DateTime<Utc>) -> anyhow::Result<Option<DueMessage>> {
        let row = sqlx::query(
            "SELECT id, recipient, raw, attempts FROM outbox
             WHERE state = 'queued' AND next_attempt_at <= ? ORDER BY next_attempt_at, id LIMIT 1",
        )
        .bind(ts(now))
        .fetch_optional(&self.pool)
        .await
        .context("reading the outbox")?;
        Ok(row.map(|r| DueMessage {
            id: r.get("id"),
            recipient: r.get("recipient"),
            raw: r.get("raw"),
            attempts: r.get("attempts"),
        }))
    }

    /// When the next queued message falls due, if any is queued.
    pub async fn next_due_at(&self) -> anyhow::Result<Option<DateTime<Utc>>> {
        let t: Option<String> =
            sqlx::query_scalar("SELECT MIN(next_attempt_at) FROM outbox WHERE state = 'queued'")
                .fetch_one(&self.pool)
                .await
                .context("reading the outbox")?;
        Ok(t.map(|t| parse_ts(&t)))
    }

    pub async fn sent_since(&self, since: DateTime<Utc>) -> anyhow::Result<i64> {
        let n: i64 =
            sqlx::query_scalar("SELECT COUNT(*) FROM outbox WHERE state = 'sent' AND sent_at > ?")
                .bind(ts(since))
                .fetch_one(&self.pool)
                .await
                .context("counting sent mail")?;
        Ok(n)
    }

    pub async fn mark_sent(&self, id: i64, now: DateTime<Utc>) -> anyhow::Result<()> {
        sqlx::query("UPDATE outbox SET state = 'sent', sent_at = ?, attempts = attempts + 1, last_error = NULL WHERE id = ?")
            .bind(ts(now))
            .bind(id)
            .execute(&self.pool)
            .await
            .context("marking a mail as sent")?;
        Ok(())
    }

    pub async fn mark_retry(
        &self,
        id: i64,
        error: &str,
        next: DateTime<Utc>,
    ) -> anyhow::Result<()> {
        sqlx::query("UPDATE outbox SET attempts = attempts + 1, last_error = ?, next_attempt_at = ? WHERE id = ?")
            .bind(error)
            .bind(ts(next))
            .bind(id)
            .execute(&self.pool)
            .await
            .context("scheduling a retry")?;
        Ok(())
    }

    /// The message failed for good; with `undeliverable`, its recipient is never written to again.
    pub async fn mark_failed(
        &self,
        id: i64,
        error: &str,
        undeliverable: Option<&str>,
    ) -> anyhow::Result<()> {
        let mut tx = self.begin().await?;
        sqlx::query(
            "UPDATE outbox SET state = 'failed', attempts = attempts + 1, last_error = ?, failed_at = ?
             WHERE id = ?",
        )
        .bind(error)
        .bind(ts(Utc::now()))
        .bind(id)
            .execute(&mut *tx.tx)
            .await
            .context("marking a mail as failed")?;
        if let Some(addr) = undeliverable {
            tx.mark_undeliverable(addr, error).await?;
        }
        tx.commit().await
    }

    pub async fn mailbox_state(&self, source: &str) -> anyhow::Result<Option<(u32, u32)>> {
        let row = sqlx::query("SELECT uidvalidity, last_uid FROM mailbox_state WHERE source = ?")
            .bind(source)
            .fetch_optional(&self.pool)
            .await
            .context("reading the mailbox state")?;
        Ok(row.map(|r| {
            (
                r.get::<i64, _>("uidvalidity") as u32,
                r.get::<i64, _>("last_uid") as u32,
            )
        }))
    }

    pub async fn set_mailbox_state(
        &self,
        source: &str,
        uidvalidity: u32,
        last_uid: u32,
    ) -> anyhow::Result<()> {
        sqlx::query(
            "INSERT INTO mailbox_state (source, uidvalidity, last_uid) VALUES (?, ?, ?)
             ON CONFLICT (source) DO UPDATE SET uidvalidity = excluded.uidvalidity, last_uid = excluded.last_uid",
        )
        .bind(source)
        .bind(i64::from(uidvalidity))
        .bind(i64::from(last_uid))
        .execute(&self.pool)
        .await
        .context("saving the mailbox state")?;
        Ok(())
    }

    pub async fn close(&self) {
        self.pool.close().await;
    }
}

fn json_list(s: &str) -> Vec<String> {
    serde_json::from_str(s).unwrap_or_default()
}

fn registration_from_row(r: &sqlx::sqlite::SqliteRow) -> Registration {
    Registration {
        id: r.get("id"),
        conference_id: r.get("conference_id"),
        email: r.get("email"),
        name: r.get("name"),
        organization: r.get("organization"),
        party_size: r.get::<i64, _>("party_size").clamp(1, u32::MAX as i64) as u32,
        companions: json_list(r.get("companions")),
        workshops: json_list(r.get("workshops")),
        notes: json_list(r.get("notes")),
        status: Status::parse(r.get("status")),
        language: Language::parse(r.get("language")).unwrap_or(Language::De),
        registered_at: parse_ts(r.get("registered_at")),
        updated_at: parse_ts(r.get("updated_at")),
        last_message_id: r.get("last_message_id"),
    }
}

fn to_json(v: &[String]) -> String {
    serde_json::to_string(v).unwrap_or_else(|_| "[]".into())
}

impl StoreTx {
    pub async fn commit(self) -> anyhow::Result<()> {
        self.tx
            .commit()
            .await
            .context("cannot commit to the database")
    }

    pub async fn message_id_outcome(&mut self, message_id: &str) -> anyhow::Result<Option<String>> {
        let o = sqlx::query_scalar(
            "SELECT outcome FROM inbound_messages WHERE message_id = ? AND outcome != 'duplicate' ORDER BY id LIMIT 1",
        )
        .bind(message_id)
        .fetch_optional(&mut *self.tx)
        .await
        .context("looking up a Message-ID")?;
        Ok(o)
    }

    pub async fn insert_inbound(
        &mut self,
        m: &NewInbound<'_>,
        now: DateTime<Utc>,
    ) -> anyhow::Result<i64> {
        let id = sqlx::query(
            "INSERT INTO inbound_messages (message_id, location, from_addr, subject, received_at, outcome, reason, conference_id, raw, explanation)
             VALUES (?, ?, ?, ?, ?, ?, ?, ?, ?, ?)",
        )
        .bind(m.message_id)
        .bind(m.location)
        .bind(m.from)
        .bind(m.subject)
        .bind(ts(now))
        .bind(m.outcome)
        .bind(m.reason)
        .bind(m.conference_id)
        .bind(m.raw)
        .bind(
            m.explanation
                .filter(|e| !e.is_empty())
                .and_then(|e| serde_json::to_string(e).ok()),
        )
        .execute(&mut *self.tx)
        .await
        .context("recording a message")?
        .last_insert_rowid();
        Ok(id)
    }

    /// Close a review item: `outcome` is what a person decided.
    pub async fn resolve_review(
        &mut self,
        id: i64,
        outcome: &str,
        reason: &str,
        conference: Option<&str>,
    ) -> anyhow::Result<bool> {
        let n = sqlx::query(
            "UPDATE inbound_messages SET outcome = ?, reason = ?, conference_id = COALESCE(?, conference_id), raw = NULL
             WHERE id = ? AND outcome = 'review'",
        )
        .bind(outcome)
        .bind(reason)
        .bind(conference)
        .bind(id)
        .execute(&mut *self.tx)
        .await
        .context("closing a review item")?
        .rows_affected();
        Ok(n == 1)
    }

    pub async fn registration(
        &mut self,
        conference: &str,
        email: &str,
    ) -> anyhow::Result<Option<Registration>> {
        let row = sqlx::query("SELECT * FROM registrations WHERE conference_id = ? AND email = ?")
            .bind(conference)
            .bind(email)
            .fetch_optional(&mut *self.tx)
            .await
            .context("reading a registration")?;
        Ok(row.as_ref().map(registration_from_row))
    }

    /// People (party sizes) holding a place. Pending (double-opt-in)
    /// registrations hold none: the place goes to whoever confirms first.
    pub async fn seats_taken(&mut self, conference: &str) -> anyhow::Result<i64> {
        let n: i64 = sqlx::query_scalar(
            "SELECT COALESCE(SUM(party_size), 0) FROM registrations
             WHERE conference_id = ? AND status = 'confirmed'",
        )
        .bind(conference)
        .fetch_one(&mut *self.tx)
        .await
        .context("counting seats")?;
        Ok(n)
    }

    /// Waitlisted registrations in the order they came.
    pub async fn waitlist(&mut self, conference: &str) -> anyhow::Result<Vec<Registration>> {
        let rows = sqlx::query(
            "SELECT * FROM registrations WHERE conference_id = ? AND status = 'waitlisted' ORDER BY registered_at, id",
        )
        .bind(conference)
        .fetch_all(&mut *self.tx)
        .await
        .context("reading the waitlist")?;
        Ok(rows.iter().map(registration_from_row).collect())
    }

    /// Insert or overwrite the registration for (conference, email); returns its id.
    pub async fn save_registration(&mut self, r: &Registration) -> anyhow::Result<i64> {
        let id = sqlx::query_scalar(
            "INSERT INTO registrations (conference_id, email, name, organization, party_size, companions, workshops,
                 notes, status, language, registered_at, updated_at, last_message_id)
             VALUES (?, ?, ?, ?, ?, ?, ?, ?, ?, ?, ?, ?, ?)
             ON CONFLICT (conference_id, email) DO UPDATE SET name = excluded.name, organization = excluded.organization,
                 party_size = excluded.party_size, companions = excluded.companions, workshops = excluded.workshops,
                 notes = excluded.notes, status = excluded.status, language = excluded.language,
                 registered_at = excluded.registered_at, updated_at = excluded.updated_at,
                 last_message_id = COALESCE(excluded.last_message_id, registrations.last_message_id)
             RETURNING id",
        )
        .bind(&r.conference_id)
        .bind(&r.email)
        .bind(&r.name)
        .bind(&r.organization)
        .bind(i64::from(r.party_size))
        .bind(to_json(&r.companions))
        .bind(to_json(&r.workshops))
        .bind(to_json(&r.notes))
        .bind(r.status.as_str())
        .bind(r.language.code())
        .bind(ts(r.registered_at))
        .bind(ts(r.updated_at))
        .bind(&r.last_message_id)
        .fetch_one(&mut *self.tx)
        .await
        .context("saving a registration")?;
        Ok(id)
    }

    pub async fn audit(
        &mut self,
        registration_id: i64,
        action: &str,
        source_message_id: Option<&str>,
        actor: &str,
        detail: &serde_json::Value,
        now: DateTime<Utc>,
    ) -> anyhow::Result<()> {
        sqlx::query(
            "INSERT INTO audit (registration_id, action, source_message_id, actor, detail, at) VALUES (?, ?, ?, ?, ?, ?)",
        )
        .bind(registration_id)
        .bind(action)
        .bind(source_message_id)
        .bind(actor)
        .bind(detail.to_string())
        .bind(ts(now))
        .execute(&mut *self.tx)
        .await
        .context("writing the audit trail")?;
        Ok(())
    }

    pub async fn queue(&mut self, m: &NewOutbox, now: DateTime<Utc>) -> anyhow::Result<()> {
        sqlx::query(
            "INSERT INTO outbox (kind, conference_id, registration_id, recipient, message_id, in_reply_to, subject, raw,
                 state, attempts, next_attempt_at, created_at)
             VALUES (?, ?, ?, ?, ?, ?, ?, ?, 'queued', 0, ?, ?)",
        )
        .bind(&m.kind)
        .bind(&m.conference_id)
        .bind(m.registration_id)
        .bind(&m.recipient)
        .bind(&m.message_id)
        .bind(&m.in_reply_to)
        .bind(&m.subject)
        .bind(&m.raw)
        .bind(ts(now))
        .bind(ts(now))
        .execute(&mut *self.tx)
        .await
        .context("queuing a mail")?;
        Ok(())
    }

    /// Automatic answers queued to `recipient` since `since` (loop protection).
    pub async fn answers_since(
        &mut self,
        recipient: &str,
        since: DateTime<Utc>,
    ) -> anyhow::Result<i64> {
        let n: i64 = sqlx::query_scalar(
            // Only answers to incoming mail count: reminders, broadcasts and
            // promotions are not what two robots could ping-pong with.
            "SELECT COUNT(*) FROM outbox WHERE recipient = ? AND created_at > ?
               AND kind IN ('confirmation', 'waitlist', 'cancellation', 'opt_in')",
        )
        .bind(recipient)
        .bind(ts(since))
        .fetch_one(&mut *self.tx)
        .await
        .context("counting answers")?;
        Ok(n)
    }

    pub async fn is_undeliverable(&mut self, email: &str) -> anyhow::Result<bool> {
        let n: i64 = sqlx::query_scalar("SELECT COUNT(*) FROM undeliverable WHERE email = ?")
            .bind(email)
            .fetch_one(&mut *self.tx)
            .await
            .context("reading undeliverable addresses")?;
        Ok(n > 0)
    }

    pub async fn mark_undeliverable(&mut self, email: &str, reason: &str) -> anyhow::Result<()> {
        sqlx::query(
            "INSERT INTO undeliverable (email, reason, at) VALUES (?, ?, ?)
             ON CONFLICT (email) DO UPDATE SET reason = excluded.reason, at = excluded.at",
        )
        .bind(email.to_lowercase())
        .bind(reason)
        .bind(ts(Utc::now()))
        .execute(&mut *self.tx)
        .await
        .context("marking an address undeliverable")?;
        Ok(())
    }
}
