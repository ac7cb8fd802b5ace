//! The storage layer: every row rsvpd keeps, behind one narrow API with two
//! backends — SQLite embedded (the default, `sqlite://PATH`) and PostgreSQL
//! for several instances (`postgres://USER@HOST:PORT/DB`), chosen by the URL.
//!
//! It owns the SQL and nothing else: no decisions about registrations or mail
//! live here, and no SQL lives anywhere else. The flows see `Store` (reads,
//! single-statement writes, outbox claims) and `StoreTx` (a write transaction);
//! neither names a backend type.
//!
//! # Why an enum over the two pools, not a trait
//!
//! A `Storage` trait with two implementations would make every flow either
//! generic over the backend (`Registrar<S>`, `App<S>`, …) or dependent on boxed
//! `dyn` futures for ~60 methods and a boxed transaction type. Instead `Store`
//! holds an enum of the two sqlx pools, and each method is written ONCE: the
//! `on_pool!`/`on_tx!` macros expand its body for each backend, so both share
//! the same SQL text (`$1` placeholders work in both) and the compiler checks
//! both. Where the SQL really differs (opening, `BEGIN`, claims) the method
//! matches on the backend itself (`sqlite.rs`, `postgres.rs`).
//!
//! # Adding a method
//!
//! Write it in the submodule of its flow (`notify.rs`, `privacy.rs`, or a new
//! one) as `on_pool!(self, |c| sqlx::query("… $1 …").bind(x).fetch_one(c).await)`
//! (or `on_tx!` inside a transaction, with `&mut *c`). Bind and read times as
//! `Ts`, lists as `Json<Vec<String>>`, states as their `domain` enum's
//! `as_str()`/`parse()`; SUMs need `CAST(… AS BIGINT)` (PostgreSQL's SUM is
//! NUMERIC). A schema change is one file in `migrations/sqlite` AND one in
//! `migrations/postgres`. `tests/it/stories.rs` runs the flows on both.
//!
//! # Concurrency
//!
//! SQLite: WAL; write transactions begin IMMEDIATE, so two writers never
//! deadlock on a lock upgrade, and a lock file serialises migrations.
//! PostgreSQL: every write transaction first takes one transaction-level
//! advisory lock, so write transactions are serialised exactly as on SQLite
//! (the registration flow reads seats, then writes; two instances must not
//! both give away the last place). Outbox claims and marks run outside it.

use std::collections::HashMap;
use std::sync::Arc;

use crate::understand::Explanation;

use anyhow::Context as _;
use chrono::{DateTime, SecondsFormat, Utc};
use serde::Serialize;
use sqlx::types::Json;
use sqlx::{Postgres, Sqlite, Transaction};

use crate::config::{Conference, DatabaseConfig, Language};
pub use crate::domain::{
    EmailAddress, InboundOutcome, OptInState, OutboxKind, OutboxState, Status, UnknownValue,
};

/// Run `$body` with `$c` bound to the pool of whichever backend `$store` uses;
/// the body is compiled once per backend.
macro_rules! on_pool {
    ($store:expr, |$c:ident| $body:expr) => {
        match &$store.pool {
            $crate::storage::Pool::Sqlite($c) => $body,
            $crate::storage::Pool::Postgres($c) => $body,
        }
    };
}

/// Run `$body` with `$c` bound to the connection of the transaction `$tx`
/// (use it as `&mut *c`); the body is compiled once per backend.
macro_rules! on_tx {
    ($tx:expr, |$c:ident| $body:expr) => {
        match &mut $tx.tx {
            $crate::storage::Tx::Sqlite(t) => {
                let $c = &mut **t;
                $body
            }
            $crate::storage::Tx::Postgres(t) => {
                let $c = &mut **t;
                $body
            }
        }
    };
}

mod claims;
mod notify;
mod ops;
mod postgres;
mod privacy;
mod reader;
mod sqlite;
mod types;
mod web;

pub use claims::{Claimed, Outcome, lease_for};
pub use notify::{Ended, FailedMail, OptInRequest};
pub use ops::DeliveryPause;
pub use privacy::{Erased, MailboxCopy, PersonData};
pub use reader::{
    Fence, Fenced, HEARTBEAT, Holder, READER_LOCK, ReaderLease, ReaderRole, Reading, STALE,
    STANDBY_WAIT, is_fenced,
};
pub use types::Ts;
pub use web::{AuditEntry, Matcher, ReceivedMail, SentMail, StoredSession};

/// A time as rsvpd shows and compares it: RFC 3339 UTC to the second.
pub fn ts(t: DateTime<Utc>) -> String {
    t.to_rfc3339_opts(SecondsFormat::Secs, true)
}

/// Parse `ts` output back; a malformed time is the epoch (display only).
pub fn parse_ts(s: &str) -> DateTime<Utc> {
    DateTime::parse_from_rfc3339(s)
        .map(|t| t.with_timezone(&Utc))
        .unwrap_or(DateTime::<Utc>::UNIX_EPOCH)
}

/// One person's registration for one conference (with their party).
#[derive(Debug, Clone, Serialize)]
pub struct Registration {
    #[serde(skip)]
    pub id: i64,
    #[serde(skip)]
    pub conference_id: String,
    pub email: EmailAddress,
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

/// A registration row as both backends return it.
#[derive(sqlx::FromRow)]
struct RegistrationRow {
    id: i64,
    conference_id: String,
    email: String,
    name: Option<String>,
    organization: Option<String>,
    party_size: i64,
    companions: Json<Vec<String>>,
    workshops: Json<Vec<String>>,
    notes: Json<Vec<String>>,
    status: String,
    language: String,
    registered_at: Ts,
    updated_at: Ts,
    last_message_id: Option<String>,
}

impl TryFrom<RegistrationRow> for Registration {
    type Error = anyhow::Error;
    fn try_from(r: RegistrationRow) -> anyhow::Result<Registration> {
        Ok(Registration {
            id: r.id,
            conference_id: r.conference_id,
            email: EmailAddress::from_stored(r.email),
            name: r.name,
            organization: r.organization,
            party_size: r.party_size.clamp(1, i64::from(u32::MAX)) as u32,
            companions: r.companions.0,
            workshops: r.workshops.0,
            notes: r.notes.0,
            status: Status::parse(&r.status)?,
            language: Language::parse(&r.language).ok_or_else(|| UnknownValue {
                what: "a language",
                value: r.language.clone(),
                known: "de, en".into(),
            })?,
            registered_at: r.registered_at.0,
            updated_at: r.updated_at.0,
            last_message_id: r.last_message_id,
        })
    }
}

fn registrations(rows: Vec<RegistrationRow>) -> anyhow::Result<Vec<Registration>> {
    rows.into_iter().map(Registration::try_from).collect()
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

#[derive(sqlx::FromRow)]
struct ReviewRow {
    id: i64,
    message_id: String,
    from_addr: Option<String>,
    subject: String,
    reason: Option<String>,
    received_at: Ts,
    conference_id: Option<String>,
    explanation: Option<String>,
}

/// A stored explanation; a row from before the explanation column (or an
/// unreadable one) has none.
pub fn explanation_from(json: Option<String>) -> Option<Explanation> {
    json.and_then(|j| serde_json::from_str(&j).ok())
}

impl From<ReviewRow> for ReviewItem {
    fn from(r: ReviewRow) -> ReviewItem {
        ReviewItem {
            id: r.id,
            message_id: r.message_id,
            from: r.from_addr,
            subject: r.subject,
            reason: r.reason.unwrap_or_default(),
            received_at: ts(r.received_at.0),
            conference: r.conference_id,
            explanation: explanation_from(r.explanation),
        }
    }
}

/// What became of one message that reached rsvpd, in arrival order.
#[derive(Debug, Clone, Serialize, PartialEq, Eq)]
pub struct InboundRecord {
    pub message_id: String,
    pub outcome: InboundOutcome,
    pub reason: Option<String>,
}

#[derive(Debug, Clone, Serialize)]
pub struct OutboxItem {
    pub id: i64,
    pub kind: OutboxKind,
    pub conference: Option<String>,
    pub recipient: String,
    pub subject: String,
    pub state: OutboxState,
    pub attempts: i64,
    pub next_attempt_at: String,
    pub last_error: Option<String>,
    pub created_at: String,
    pub sent_at: Option<String>,
    pub message_id: String,
}

#[derive(sqlx::FromRow)]
struct OutboxRow {
    id: i64,
    kind: String,
    conference_id: Option<String>,
    recipient: String,
    subject: String,
    state: String,
    attempts: i64,
    next_attempt_at: Ts,
    last_error: Option<String>,
    created_at: Ts,
    sent_at: Option<Ts>,
    message_id: String,
}

impl TryFrom<OutboxRow> for OutboxItem {
    type Error = anyhow::Error;
    fn try_from(r: OutboxRow) -> anyhow::Result<OutboxItem> {
        Ok(OutboxItem {
            id: r.id,
            kind: OutboxKind::parse(&r.kind)?,
            conference: r.conference_id,
            recipient: r.recipient,
            subject: r.subject,
            state: OutboxState::parse(&r.state)?,
            attempts: r.attempts,
            next_attempt_at: ts(r.next_attempt_at.0),
            last_error: r.last_error,
            created_at: ts(r.created_at.0),
            sent_at: r.sent_at.map(|t| ts(t.0)),
            message_id: r.message_id,
        })
    }
}

/// A message ready to hand to the SMTP server, claimed by this store's sender.
#[derive(Debug, Clone, sqlx::FromRow)]
pub struct DueMessage {
    pub id: i64,
    pub recipient: String,
    pub raw: Vec<u8>,
    pub attempts: i64,
}

/// A new outbox row.
#[derive(Debug, Clone)]
pub struct NewOutbox {
    pub kind: OutboxKind,
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
    pub outcome: InboundOutcome,
    pub reason: Option<&'a str>,
    pub conference_id: Option<&'a str>,
    pub raw: Option<&'a [u8]>,
    /// Why the understanding step decided what it did.
    pub explanation: Option<&'a Explanation>,
}

#[derive(Clone)]
pub(crate) enum Pool {
    Sqlite(sqlx::SqlitePool),
    Postgres(sqlx::PgPool),
}

pub(crate) enum Tx {
    Sqlite(Transaction<'static, Sqlite>),
    Postgres(Transaction<'static, Postgres>),
}

/// The database, whichever backend the config names.
#[derive(Clone)]
pub struct Store {
    pool: Pool,
    /// The connection for `record_sent`, whose commits do not wait for the
    /// disk (see `sqlite::relaxed`, `postgres::open`).
    relaxed: Pool,
    /// This store's name in outbox claims (see `claims`).
    claimer: Arc<str>,
    /// The database as a person recognises it (`DatabaseConfig::describe`).
    database: String,
}

/// A write transaction; dropped without `commit`, it rolls back.
pub struct StoreTx {
    tx: Tx,
}

impl Store {
    /// Open (creating when missing, on SQLite) the database and bring its
    /// schema up to date.
    pub async fn open(db: &DatabaseConfig) -> anyhow::Result<Store> {
        let (pool, relaxed) = match db {
            DatabaseConfig::Sqlite { path } => (
                Pool::Sqlite(sqlite::open(path).await?),
                Pool::Sqlite(sqlite::relaxed(path)?),
            ),
            DatabaseConfig::Postgres { url, password } => {
                let (pool, relaxed) = postgres::open(url, password.as_ref()).await?;
                (Pool::Postgres(pool), Pool::Postgres(relaxed))
            }
        };
        Ok(Store {
            pool,
            relaxed,
            claimer: claims::new_claimer().into(),
            database: db.describe(),
        })
    }

    /// A write transaction (on SQLite `BEGIN IMMEDIATE`, on PostgreSQL
    /// serialised by an advisory lock; see the module doc).
    pub async fn begin(&self) -> anyhow::Result<StoreTx> {
        let tx = match &self.pool {
            Pool::Sqlite(p) => Tx::Sqlite(sqlite::begin(p).await?),
            Pool::Postgres(p) => Tx::Postgres(postgres::begin(p).await?),
        };
        Ok(StoreTx { tx })
    }

    pub async fn sync_conferences(&self, conferences: &[Conference]) -> anyhow::Result<()> {
        let mut tx = self.begin().await?;
        let now = Ts(Utc::now());
        for c in conferences {
            on_tx!(tx, |c_| {
                sqlx::query(
                    "INSERT INTO conferences (id, title, starts_at, ends_at, timezone, location, capacity, synced_at)
                     VALUES ($1, $2, $3, $4, $5, $6, $7, $8)
                     ON CONFLICT (id) DO UPDATE SET title = excluded.title, starts_at = excluded.starts_at,
                       ends_at = excluded.ends_at, timezone = excluded.timezone, location = excluded.location,
                       capacity = excluded.capacity, synced_at = excluded.synced_at",
                )
                .bind(&c.id)
                .bind(&c.title)
                .bind(Ts(c.starts))
                .bind(Ts(c.ends))
                .bind(c.timezone.name())
                .bind(&c.location)
                .bind(c.capacity.map(i64::from))
                .bind(now)
                .execute(&mut *c_)
                .await
                .map(|r| r.rows_affected())
            })
            .context("saving the conferences")?;
        }
        tx.commit().await
    }

    /// The outcome stored for a message at this location, if it was handled.
    pub async fn inbound_outcome(&self, location: &str) -> anyhow::Result<Option<InboundOutcome>> {
        let row: Option<String> = on_pool!(self, |c| {
            sqlx::query_scalar("SELECT outcome FROM inbound_messages WHERE location = $1")
                .bind(location)
                .fetch_optional(c)
                .await
        })
        .context("looking up a message")?;
        Ok(row.map(|o| InboundOutcome::parse(&o)).transpose()?)
    }

    /// `inbound_outcome` of several locations in one query: the outcome of
    /// each location handled before (absent: not handled yet).
    pub async fn inbound_outcomes(
        &self,
        locations: &[&str],
    ) -> anyhow::Result<HashMap<String, InboundOutcome>> {
        if locations.is_empty() {
            return Ok(HashMap::new());
        }
        let sql = format!(
            "SELECT location, outcome FROM inbound_messages WHERE location IN ({})",
            placeholders(1, locations.len())
        );
        let rows: Vec<(String, String)> = on_pool!(self, |c| {
            let mut q = sqlx::query_as(sqlx::AssertSqlSafe(sql.clone()));
            for l in locations {
                q = q.bind(*l);
            }
            q.fetch_all(c).await
        })
        .context("looking up messages")?;
        rows.into_iter()
            .map(|(l, o)| Ok((l, InboundOutcome::parse(&o)?)))
            .collect()
    }

    /// Every message that reached rsvpd and what became of it, in arrival order.
    pub async fn inbound_records(&self) -> anyhow::Result<Vec<InboundRecord>> {
        let rows: Vec<(String, String, Option<String>)> = on_pool!(self, |c| {
            sqlx::query_as("SELECT message_id, outcome, reason FROM inbound_messages ORDER BY id")
                .fetch_all(c)
                .await
        })
        .context("reading the inbound messages")?;
        rows.into_iter()
            .map(|(message_id, outcome, reason)| {
                Ok(InboundRecord {
                    message_id,
                    outcome: InboundOutcome::parse(&outcome)?,
                    reason,
                })
            })
            .collect()
    }

    /// The conference and recipient of our opt-in request among `message_ids`
    /// (a reply's In-Reply-To and References), if the mail answers one.
    pub async fn opt_in_thread(
        &self,
        message_ids: &[String],
    ) -> anyhow::Result<Option<(String, String)>> {
        for id in message_ids.iter().rev() {
            let row: Option<(Option<String>, String)> = on_pool!(self, |c| {
                sqlx::query_as(
                    "SELECT conference_id, recipient FROM outbox WHERE message_id = $1 AND kind = $2",
                )
                .bind(id)
                .bind(OutboxKind::OptIn.as_str())
                .fetch_optional(c)
                .await
            })
            .context("looking up the opt-in thread")?;
            if let Some((Some(conference), recipient)) = row {
                return Ok(Some((conference, recipient.to_lowercase())));
            }
        }
        Ok(None)
    }

    /// Conferences in which `email` holds a registration that is not cancelled.
    pub async fn active_conferences_of(&self, email: &str) -> anyhow::Result<Vec<String>> {
        let email = email.trim().to_lowercase();
        on_pool!(self, |c| {
            sqlx::query_scalar(
                "SELECT DISTINCT conference_id FROM registrations WHERE email = $1 AND status <> $2 ORDER BY conference_id",
            )
            .bind(&email)
            .bind(Status::Cancelled.as_str())
            .fetch_all(c)
            .await
        })
        .context("looking up the sender's registrations")
    }

    /// The conference of the first of `message_ids` that is a mail rsvpd sent.
    pub async fn thread_conference(
        &self,
        message_ids: &[String],
    ) -> anyhow::Result<Option<String>> {
        for id in message_ids.iter().rev() {
            let c: Option<Option<String>> = on_pool!(self, |c| {
                sqlx::query_scalar("SELECT conference_id FROM outbox WHERE message_id = $1")
                    .bind(id)
                    .fetch_optional(c)
                    .await
            })
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
        let rows = on_pool!(self, |c| {
            sqlx::query_as(
                "SELECT * FROM registrations WHERE conference_id = $1 AND ($2 OR status != $3)
                 ORDER BY registered_at, id",
            )
            .bind(conference)
            .bind(include_cancelled)
            .bind(Status::Cancelled.as_str())
            .fetch_all(c)
            .await
        })
        .context("reading registrations")?;
        registrations(rows)
    }

    /// (confirmed registrations, confirmed people, waitlisted registrations).
    pub async fn registration_counts(&self, conference: &str) -> anyhow::Result<(i64, i64, i64)> {
        let row: (i64, i64, i64) = on_pool!(self, |c| {
            sqlx::query_as(
                "SELECT
                   CAST(COALESCE(SUM(CASE WHEN status = $2 THEN 1 ELSE 0 END), 0) AS BIGINT),
                   CAST(COALESCE(SUM(CASE WHEN status = $2 THEN party_size ELSE 0 END), 0) AS BIGINT),
                   CAST(COALESCE(SUM(CASE WHEN status = $3 THEN 1 ELSE 0 END), 0) AS BIGINT)
                 FROM registrations WHERE conference_id = $1",
            )
            .bind(conference)
            .bind(Status::Confirmed.as_str())
            .bind(Status::Waitlisted.as_str())
            .fetch_one(c)
            .await
        })
        .context("counting registrations")?;
        Ok(row)
    }

    pub async fn review_items(&self) -> anyhow::Result<Vec<ReviewItem>> {
        let rows: Vec<ReviewRow> = on_pool!(self, |c| {
            sqlx::query_as(
                "SELECT id, message_id, from_addr, subject, reason, received_at, conference_id, explanation
                 FROM inbound_messages WHERE outcome = $1 ORDER BY id",
            )
            .bind(InboundOutcome::Review.as_str())
            .fetch_all(c)
            .await
        })
        .context("reading the review queue")?;
        Ok(rows.into_iter().map(ReviewItem::from).collect())
    }

    /// The stored raw message of a review item.
    pub async fn review_raw(&self, id: i64) -> anyhow::Result<Option<(String, Vec<u8>)>> {
        let row: Option<(String, Option<Vec<u8>>)> = on_pool!(self, |c| {
            sqlx::query_as(
                "SELECT location, raw FROM inbound_messages WHERE id = $1 AND outcome = $2",
            )
            .bind(id)
            .bind(InboundOutcome::Review.as_str())
            .fetch_optional(c)
            .await
        })
        .context("reading a review item")?;
        Ok(row.map(|(location, raw)| (location, raw.unwrap_or_default())))
    }

    pub async fn outbox_items(&self) -> anyhow::Result<Vec<OutboxItem>> {
        let rows: Vec<OutboxRow> = on_pool!(self, |c| {
            sqlx::query_as(
                "SELECT id, kind, conference_id, recipient, subject, state, attempts, next_attempt_at,
                        last_error, created_at, sent_at, message_id
                 FROM outbox ORDER BY id",
            )
            .fetch_all(c)
            .await
        })
        .context("reading the outbox")?;
        rows.into_iter().map(OutboxItem::try_from).collect()
    }

    /// Mails marked sent after `since` (the rate limit counts them).
    pub async fn sent_since(&self, since: DateTime<Utc>) -> anyhow::Result<i64> {
        let n: i64 = on_pool!(self, |c| {
            sqlx::query_scalar("SELECT COUNT(*) FROM outbox WHERE state = $1 AND sent_at > $2")
                .bind(OutboxState::Sent.as_str())
                .bind(Ts(since))
                .fetch_one(c)
                .await
        })
        .context("counting sent mail")?;
        Ok(n)
    }

    pub async fn mailbox_state(&self, source: &str) -> anyhow::Result<Option<(u32, u32)>> {
        let row: Option<(i64, i64)> = on_pool!(self, |c| {
            sqlx::query_as("SELECT uidvalidity, last_uid FROM mailbox_state WHERE source = $1")
                .bind(source)
                .fetch_optional(c)
                .await
        })
        .context("reading the mailbox state")?;
        Ok(row.map(|(v, u)| (v as u32, u as u32)))
    }

    /// Record how far the mailbox was read; refused with `Fenced` when
    /// `fence` is a lease another reader has replaced.
    pub async fn set_mailbox_state(
        &self,
        source: &str,
        uidvalidity: u32,
        last_uid: u32,
        fence: Fence,
    ) -> anyhow::Result<()> {
        let mut tx = self.begin().await?;
        tx.check_fence(fence).await?;
        on_tx!(tx, |c| {
            sqlx::query(
                "INSERT INTO mailbox_state (source, uidvalidity, last_uid) VALUES ($1, $2, $3)
                 ON CONFLICT (source) DO UPDATE SET uidvalidity = excluded.uidvalidity, last_uid = excluded.last_uid",
            )
            .bind(source)
            .bind(i64::from(uidvalidity))
            .bind(i64::from(last_uid))
            .execute(&mut *c)
            .await
            .map(|r| r.rows_affected())
        })
        .context("saving the mailbox state")?;
        tx.commit().await
    }

    pub async fn close(&self) {
        on_pool!(self, |c| c.close().await);
        match &self.relaxed {
            Pool::Sqlite(c) => c.close().await,
            Pool::Postgres(c) => c.close().await,
        }
    }
}

impl StoreTx {
    pub async fn commit(self) -> anyhow::Result<()> {
        match self.tx {
            Tx::Sqlite(t) => t.commit().await,
            Tx::Postgres(t) => t.commit().await,
        }
        .context("cannot commit to the database")
    }

    /// The stored outcome of each of several Message-IDs (the first mail with
    /// it that was not itself a duplicate), in one query.
    pub async fn message_id_outcomes(
        &mut self,
        message_ids: &[&str],
    ) -> anyhow::Result<HashMap<String, InboundOutcome>> {
        if message_ids.is_empty() {
            return Ok(HashMap::new());
        }
        let sql = format!(
            "SELECT message_id, outcome FROM inbound_messages
              WHERE message_id IN ({}) AND outcome != $1 ORDER BY id",
            placeholders(2, message_ids.len())
        );
        let rows: Vec<(String, String)> = on_tx!(self, |c| {
            let mut q = sqlx::query_as(sqlx::AssertSqlSafe(sql.clone()))
                .bind(InboundOutcome::Duplicate.as_str());
            for m in message_ids {
                q = q.bind(*m);
            }
            q.fetch_all(&mut *c).await
        })
        .context("looking up Message-IDs")?;
        let mut first = HashMap::new();
        for (m, o) in rows {
            if let std::collections::hash_map::Entry::Vacant(e) = first.entry(m) {
                e.insert(InboundOutcome::parse(&o)?);
            }
        }
        Ok(first)
    }

    pub async fn insert_inbound(
        &mut self,
        m: &NewInbound<'_>,
        now: DateTime<Utc>,
    ) -> anyhow::Result<i64> {
        let id: i64 = on_tx!(self, |c| {
            sqlx::query_scalar(
                "INSERT INTO inbound_messages (message_id, location, from_addr, subject, received_at, outcome, reason, conference_id, raw, explanation)
                 VALUES ($1, $2, $3, $4, $5, $6, $7, $8, $9, $10) RETURNING id",
            )
            .bind(m.message_id)
            .bind(m.location)
            .bind(m.from)
            .bind(m.subject)
            .bind(Ts(now))
            .bind(m.outcome.as_str())
            .bind(m.reason)
            .bind(m.conference_id)
            .bind(m.raw)
            .bind(
                m.explanation
                    .filter(|e| !e.is_empty())
                    .and_then(|e| serde_json::to_string(e).ok()),
            )
            .fetch_one(&mut *c)
            .await
        })
        .context("recording a message")?;
        Ok(id)
    }

    /// Close a review item: `outcome` is what a person decided.
    pub async fn resolve_review(
        &mut self,
        id: i64,
        outcome: InboundOutcome,
        reason: &str,
        conference: Option<&str>,
    ) -> anyhow::Result<bool> {
        let n = on_tx!(self, |c| {
            sqlx::query(
                // A recorded mail keeps its source (the attendee page shows
                // it); a dismissed one has no reason to.
                "UPDATE inbound_messages SET outcome = $1, reason = $2, conference_id = COALESCE($3, conference_id),
                     raw = CASE WHEN $1 = $6 THEN raw END
                 WHERE id = $4 AND outcome = $5",
            )
            .bind(outcome.as_str())
            .bind(reason)
            .bind(conference)
            .bind(id)
            .bind(InboundOutcome::Review.as_str())
            .bind(InboundOutcome::Recorded.as_str())
            .execute(&mut *c)
            .await
            .map(|r| r.rows_affected())
        })
        .context("closing a review item")?;
        Ok(n == 1)
    }

    pub async fn registration(
        &mut self,
        conference: &str,
        email: &EmailAddress,
    ) -> anyhow::Result<Option<Registration>> {
        let row: Option<RegistrationRow> = on_tx!(self, |c| {
            sqlx::query_as("SELECT * FROM registrations WHERE conference_id = $1 AND email = $2")
                .bind(conference)
                .bind(email.as_str())
                .fetch_optional(&mut *c)
                .await
        })
        .context("reading a registration")?;
        row.map(Registration::try_from).transpose()
    }

    /// People (party sizes) holding a place. Pending (double-opt-in)
    /// registrations hold none: the place goes to whoever confirms first.
    /// The database keeps the count as registrations change (a trigger of
    /// the migration `capacity`), so this reads one row, not the conference.
    pub async fn seats_taken(&mut self, conference: &str) -> anyhow::Result<i64> {
        let n: Option<i64> = on_tx!(self, |c| {
            sqlx::query_scalar("SELECT taken FROM conference_seats WHERE conference_id = $1")
                .bind(conference)
                .fetch_optional(&mut *c)
                .await
        })
        .context("counting seats")?;
        Ok(n.unwrap_or(0))
    }

    /// Waitlisted registrations in the order they came.
    pub async fn waitlist(&mut self, conference: &str) -> anyhow::Result<Vec<Registration>> {
        let rows = on_tx!(self, |c| {
            sqlx::query_as(
                "SELECT * FROM registrations WHERE conference_id = $1 AND status = $2 ORDER BY registered_at, id",
            )
            .bind(conference)
            .bind(Status::Waitlisted.as_str())
            .fetch_all(&mut *c)
            .await
        })
        .context("reading the waitlist")?;
        registrations(rows)
    }

    /// Insert or overwrite the registration for (conference, email); returns its id.
    pub async fn save_registration(&mut self, r: &Registration) -> anyhow::Result<i64> {
        let id: i64 = on_tx!(self, |c| {
            sqlx::query_scalar(
                "INSERT INTO registrations (conference_id, email, name, organization, party_size, companions, workshops,
                     notes, status, language, registered_at, updated_at, last_message_id)
                 VALUES ($1, $2, $3, $4, $5, $6, $7, $8, $9, $10, $11, $12, $13)
                 ON CONFLICT (conference_id, email) DO UPDATE SET name = excluded.name, organization = excluded.organization,
                     party_size = excluded.party_size, companions = excluded.companions, workshops = excluded.workshops,
                     notes = excluded.notes, status = excluded.status, language = excluded.language,
                     registered_at = excluded.registered_at, updated_at = excluded.updated_at,
                     last_message_id = COALESCE(excluded.last_message_id, registrations.last_message_id)
                 RETURNING id",
            )
            .bind(&r.conference_id)
            .bind(r.email.as_str())
            .bind(&r.name)
            .bind(&r.organization)
            .bind(i64::from(r.party_size))
            .bind(Json(&r.companions))
            .bind(Json(&r.workshops))
            .bind(Json(&r.notes))
            .bind(r.status.as_str())
            .bind(r.language.code())
            .bind(Ts(r.registered_at))
            .bind(Ts(r.updated_at))
            .bind(&r.last_message_id)
            .fetch_one(&mut *c)
            .await
        })
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
        on_tx!(self, |c| {
            sqlx::query(
                "INSERT INTO audit (registration_id, action, source_message_id, actor, detail, at)
                 VALUES ($1, $2, $3, $4, $5, $6)",
            )
            .bind(registration_id)
            .bind(action)
            .bind(source_message_id)
            .bind(actor)
            .bind(Json(detail))
            .bind(Ts(now))
            .execute(&mut *c)
            .await
            .map(|r| r.rows_affected())
        })
        .context("writing the audit trail")?;
        Ok(())
    }

    /// Insert a queued mail. Flows call `outbox::enqueue`, which applies the
    /// rules every mail obeys before it calls this.
    pub async fn queue(&mut self, m: &NewOutbox, now: DateTime<Utc>) -> anyhow::Result<()> {
        on_tx!(self, |c| {
            sqlx::query(
                "INSERT INTO outbox (kind, conference_id, registration_id, recipient, message_id, in_reply_to, subject, raw,
                     state, attempts, next_attempt_at, created_at)
                 VALUES ($1, $2, $3, $4, $5, $6, $7, $8, $9, 0, $10, $10)",
            )
            .bind(m.kind.as_str())
            .bind(&m.conference_id)
            .bind(m.registration_id)
            .bind(&m.recipient)
            .bind(&m.message_id)
            .bind(&m.in_reply_to)
            .bind(&m.subject)
            .bind(&m.raw)
            .bind(OutboxState::Queued.as_str())
            .bind(Ts(now))
            .execute(&mut *c)
            .await
            .map(|r| r.rows_affected())
        })
        .context("queuing a mail")?;
        Ok(())
    }

    /// Whether `recipient` bounced before, and how many automatic answers
    /// were queued to it since `since` (loop protection) — one query, as
    /// every answer asks both.
    pub async fn answer_blockers(
        &mut self,
        recipient: &str,
        since: DateTime<Utc>,
    ) -> anyhow::Result<(bool, i64)> {
        let [a, b, c3, d] = OutboxKind::ANSWERS;
        let (bounced, answers): (i64, i64) = on_tx!(self, |c| {
            sqlx::query_as(
                "SELECT (SELECT COUNT(*) FROM undeliverable WHERE email = $1),
                        (SELECT COUNT(*) FROM outbox WHERE recipient = $1 AND created_at > $2
                           AND kind IN ($3, $4, $5, $6))",
            )
            .bind(recipient)
            .bind(Ts(since))
            .bind(a.as_str())
            .bind(b.as_str())
            .bind(c3.as_str())
            .bind(d.as_str())
            .fetch_one(&mut *c)
            .await
        })
        .context("reading undeliverable addresses and counting answers")?;
        Ok((bounced > 0, answers))
    }

    pub async fn is_undeliverable(&mut self, email: &str) -> anyhow::Result<bool> {
        let n: i64 = on_tx!(self, |c| {
            sqlx::query_scalar("SELECT COUNT(*) FROM undeliverable WHERE email = $1")
                .bind(email)
                .fetch_one(&mut *c)
                .await
        })
        .context("reading undeliverable addresses")?;
        Ok(n > 0)
    }

    pub async fn mark_undeliverable(&mut self, email: &str, reason: &str) -> anyhow::Result<()> {
        on_tx!(self, |c| {
            sqlx::query(
                "INSERT INTO undeliverable (email, reason, at) VALUES ($1, $2, $3)
                 ON CONFLICT (email) DO UPDATE SET reason = excluded.reason, at = excluded.at",
            )
            .bind(email.to_lowercase())
            .bind(reason)
            .bind(Ts(Utc::now()))
            .execute(&mut *c)
            .await
            .map(|r| r.rows_affected())
        })
        .context("marking an address undeliverable")?;
        Ok(())
    }
}

/// `$first, $first+1, …` for `n` values of an `IN (…)` list.
fn placeholders(first: usize, n: usize) -> String {
    (first..first + n)
        .map(|i| format!("${i}"))
        .collect::<Vec<_>>()
        .join(", ")
}
