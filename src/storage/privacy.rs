//! The SQL of the privacy flow (DSGVO): everything stored about one address,
//! erasing it on request, and purging personal data after the retention time.
//!
//! Erasing keeps what rsvpd needs to stay correct without the person: the
//! Message-IDs of mail it handled (so a copy is never processed again) and of
//! mail it sent (so a late reply still finds its thread); names, addresses,
//! subjects and message bodies go. Decisions (which conferences have ended)
//! are made by the caller.

use anyhow::Context as _;
use serde::Serialize;

use super::{
    InboundOutcome, OutboxState, Registration, RegistrationRow, Store, StoreTx, Ts, registrations,
};

/// What rsvpd holds about one address (`rsvpd person`).
#[derive(Debug, Clone, Serialize)]
pub struct PersonData {
    pub email: String,
    pub registrations: Vec<PersonRegistration>,
    pub messages_received: Vec<serde_json::Value>,
    pub messages_sent: Vec<serde_json::Value>,
    pub undeliverable: Option<String>,
}

#[derive(Debug, Clone, Serialize)]
pub struct PersonRegistration {
    pub conference: String,
    #[serde(flatten)]
    pub registration: Registration,
    pub history: Vec<serde_json::Value>,
}

/// How many rows an erasure or purge touched.
#[derive(Debug, Clone, Default, Serialize, PartialEq, Eq)]
pub struct Erased {
    pub registrations: u64,
    pub messages_received: u64,
    pub messages_sent: u64,
    /// Copies in the mailbox folders whose deletion was requested.
    pub mailbox_copies: u64,
}

/// A copy of a person's mail in the mailbox folders (processed or review),
/// found by the inbound row that erasure keeps: its Message-ID and location.
#[derive(Debug, Clone, sqlx::FromRow, Serialize)]
pub struct MailboxCopy {
    pub inbound_id: i64,
    pub message_id: String,
    /// `imap:FOLDER:UIDVALIDITY:UID` (where it arrived) or `maildir:NAME`.
    pub location: String,
    pub outcome: String,
}

/// The inbound mail from or about the person `$1` that came from the mailbox
/// (not `ingest`ed files): sent by them, or the source of a change to one of
/// their registrations (someone registering them). Evaluated before the
/// erasure, which removes both links.
const PERSONS_MAILBOX_MAIL: &str = "(from_addr = $1 OR message_id IN (
        SELECT a.source_message_id FROM audit a JOIN registrations r ON r.id = a.registration_id
        WHERE r.email = $1 AND a.source_message_id IS NOT NULL))
    AND (location LIKE 'imap:%' OR location LIKE 'maildir:%')";

impl Store {
    pub async fn person(&self, email: &str) -> anyhow::Result<PersonData> {
        let email = email.trim().to_lowercase();
        let rows: Vec<RegistrationRow> = on_pool!(self, |c| {
            sqlx::query_as(
                "SELECT * FROM registrations WHERE email = $1 ORDER BY registered_at, id",
            )
            .bind(&email)
            .fetch_all(c)
            .await
        })
        .context("reading registrations")?;
        let mut out = Vec::new();
        for registration in registrations(rows)? {
            let history = self
                .audit_trail(registration.id)
                .await?
                .into_iter()
                .map(|a| serde_json::to_value(a).unwrap_or_default())
                .collect();
            out.push(PersonRegistration {
                conference: registration.conference_id.clone(),
                registration,
                history,
            });
        }
        let messages_received = self
            .mails_received(&email, None)
            .await?
            .into_iter()
            .map(|m| serde_json::to_value(m).unwrap_or_default())
            .collect();
        let messages_sent = self
            .mails_sent(&email, None)
            .await?
            .into_iter()
            .map(|m| serde_json::to_value(m).unwrap_or_default())
            .collect();
        let undeliverable = on_pool!(self, |c| {
            sqlx::query_scalar("SELECT reason FROM undeliverable WHERE email = $1")
                .bind(&email)
                .fetch_optional(c)
                .await
        })
        .context("reading undeliverable addresses")?;
        Ok(PersonData {
            email,
            registrations: out,
            messages_received,
            messages_sent,
            undeliverable,
        })
    }

    /// Erase everything personal about `email`, in one transaction.
    pub async fn forget(&self, email: &str) -> anyhow::Result<Erased> {
        let email = email.trim().to_lowercase();
        let mut tx = self.begin().await?;
        let ids: Vec<i64> = on_tx!(tx, |c| {
            sqlx::query_scalar("SELECT id FROM registrations WHERE email = $1")
                .bind(&email)
                .fetch_all(&mut *c)
                .await
        })
        .context("finding registrations")?;
        // First, while the links to the person still exist.
        let mailbox_copies = on_tx!(tx, |c| {
            sqlx::query(sqlx::AssertSqlSafe(format!(
                "INSERT INTO mailbox_erasures (inbound_id, requested_at)
                 SELECT id, $2 FROM inbound_messages WHERE {PERSONS_MAILBOX_MAIL}
                 ON CONFLICT (inbound_id) DO NOTHING"
            )))
            .bind(&email)
            .bind(Ts(chrono::Utc::now()))
            .execute(&mut *c)
            .await
            .map(|r| r.rows_affected())
        })
        .context("recording the erasure of the mailbox copies")?;
        let erased = erase_registrations(&mut tx, &ids).await?;
        let received = on_tx!(tx, |c| {
            sqlx::query(
                "UPDATE inbound_messages SET from_addr = NULL, subject = '', raw = NULL, explanation = NULL,
                     reason = 'erased on request', outcome = CASE WHEN outcome = $2 THEN $3 ELSE outcome END
                 WHERE from_addr = $1",
            )
            .bind(&email)
            .bind(InboundOutcome::Review.as_str())
            .bind(InboundOutcome::Dismissed.as_str())
            .execute(&mut *c)
            .await
            .map(|r| r.rows_affected())
        })
        .context("erasing received mail")?;
        let sent = erase_sent(&mut tx, Erase::Recipient(&email)).await?;
        on_tx!(tx, |c| {
            sqlx::query("DELETE FROM undeliverable WHERE email = $1")
                .bind(&email)
                .execute(&mut *c)
                .await
                .map(|r| r.rows_affected())
        })
        .context("erasing the undeliverable mark")?;
        tx.commit().await?;
        Ok(Erased {
            registrations: erased,
            messages_received: received,
            messages_sent: sent,
            mailbox_copies,
        })
    }

    /// The copies of `email`'s mail in the mailbox folders that `forget`
    /// would ask to delete (for `forget --dry-run`).
    pub async fn mailbox_copies(&self, email: &str) -> anyhow::Result<Vec<MailboxCopy>> {
        let email = email.trim().to_lowercase();
        let rows = on_pool!(self, |c| {
            sqlx::query_as(sqlx::AssertSqlSafe(format!(
                "SELECT id AS inbound_id, message_id, location, outcome FROM inbound_messages
                 WHERE {PERSONS_MAILBOX_MAIL} ORDER BY id"
            )))
            .bind(&email)
            .fetch_all(c)
            .await
        })
        .context("finding the person's mail in the mailbox")?;
        Ok(rows)
    }

    /// Mailbox copies whose deletion was requested and not yet carried out.
    pub async fn pending_mailbox_erasures(&self) -> anyhow::Result<Vec<MailboxCopy>> {
        let rows = on_pool!(self, |c| {
            sqlx::query_as(
                "SELECT m.id AS inbound_id, m.message_id, m.location, m.outcome
                 FROM mailbox_erasures e JOIN inbound_messages m ON m.id = e.inbound_id
                 WHERE e.done_at IS NULL ORDER BY m.id",
            )
            .fetch_all(c)
            .await
        })
        .context("reading the requested mailbox erasures")?;
        Ok(rows)
    }

    /// Record that the copies of inbound message `inbound_id` were dealt with:
    /// `result` says what was deleted where (`deleted` says it deleted some).
    /// Two processes may carry out the same request at once (the CLI and the
    /// daemon, or two daemons on PostgreSQL): the one that found nothing left
    /// does not overwrite the one that deleted.
    pub async fn mailbox_erasure_done(
        &self,
        inbound_id: i64,
        result: &str,
        deleted: bool,
    ) -> anyhow::Result<()> {
        on_pool!(self, |c| {
            sqlx::query(
                "UPDATE mailbox_erasures SET done_at = $2, result = $3
                 WHERE inbound_id = $1 AND (done_at IS NULL OR $4)",
            )
            .bind(inbound_id)
            .bind(Ts(chrono::Utc::now()))
            .bind(result)
            .bind(deleted)
            .execute(c)
            .await
            .map(|r| r.rows_affected())
        })
        .context("recording a mailbox erasure")?;
        Ok(())
    }

    /// Erase the registrations of `conference` (it ended longer ago than the
    /// retention time) with their history and the mail about them.
    pub async fn purge_conference(&self, conference: &str) -> anyhow::Result<Erased> {
        let mut tx = self.begin().await?;
        let ids: Vec<i64> = on_tx!(tx, |c| {
            sqlx::query_scalar("SELECT id FROM registrations WHERE conference_id = $1")
                .bind(conference)
                .fetch_all(&mut *c)
                .await
        })
        .context("finding registrations")?;
        let registrations = erase_registrations(&mut tx, &ids).await?;
        let received = on_tx!(tx, |c| {
            sqlx::query(
                "UPDATE inbound_messages SET from_addr = NULL, subject = '', raw = NULL, explanation = NULL,
                     reason = 'personal data purged after the retention time'
                 WHERE conference_id = $1 AND (from_addr IS NOT NULL OR raw IS NOT NULL)",
            )
            .bind(conference)
            .execute(&mut *c)
            .await
            .map(|r| r.rows_affected())
        })
        .context("purging received mail")?;
        let sent = erase_sent(&mut tx, Erase::Conference(conference)).await?;
        tx.commit().await?;
        Ok(Erased {
            registrations,
            messages_received: received,
            messages_sent: sent,
            mailbox_copies: 0,
        })
    }

    /// Every action in the audit trail, oldest first (what an erasure must leave empty).
    pub async fn audit_actions(&self) -> anyhow::Result<Vec<String>> {
        let rows = on_pool!(self, |c| {
            sqlx::query_scalar("SELECT action FROM audit ORDER BY id")
                .fetch_all(c)
                .await
        })
        .context("reading the audit trail")?;
        Ok(rows)
    }
}

async fn erase_registrations(tx: &mut StoreTx, ids: &[i64]) -> anyhow::Result<u64> {
    for id in ids {
        for sql in [
            "DELETE FROM audit WHERE registration_id = $1",
            "DELETE FROM reminders_sent WHERE registration_id = $1",
            "DELETE FROM opt_in_requests WHERE registration_id = $1",
            "UPDATE outbox SET registration_id = NULL WHERE registration_id = $1",
            "DELETE FROM registrations WHERE id = $1",
        ] {
            on_tx!(tx, |c| sqlx::query(sql)
                .bind(id)
                .execute(&mut *c)
                .await
                .map(|r| r.rows_affected()))
            .context("erasing a registration")?;
        }
    }
    Ok(ids.len() as u64)
}

/// Whose sent mail to erase.
enum Erase<'a> {
    Recipient(&'a str),
    Conference(&'a str),
}

/// Sent mail keeps its Message-ID (for threads) and loses everything else;
/// mail not yet sent is not sent any more.
async fn erase_sent(tx: &mut StoreTx, whose: Erase<'_>) -> anyhow::Result<u64> {
    let (condition, value) = match whose {
        Erase::Recipient(r) => ("recipient = $1", r),
        Erase::Conference(c) => ("conference_id = $1 AND recipient != 'erased'", c),
    };
    let sql = format!(
        "UPDATE outbox SET recipient = 'erased', subject = '', raw = $2, last_error = NULL,
             state = CASE WHEN state = $3 THEN $4 ELSE state END
         WHERE {condition}"
    );
    let n = on_tx!(tx, |c| {
        sqlx::query(sqlx::AssertSqlSafe(sql.clone()))
            .bind(value)
            .bind(Vec::<u8>::new())
            .bind(OutboxState::Queued.as_str())
            .bind(OutboxState::Failed.as_str())
            .execute(&mut *c)
            .await
            .map(|r| r.rows_affected())
    })
    .context("erasing sent mail")?;
    Ok(n)
}
