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

use super::{Registration, Store, registration_from_row};

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
}

impl Store {
    pub async fn person(&self, email: &str) -> anyhow::Result<PersonData> {
        let email = email.trim().to_lowercase();
        let rows =
            sqlx::query("SELECT * FROM registrations WHERE email = ? ORDER BY registered_at, id")
                .bind(&email)
                .fetch_all(&self.pool)
                .await
                .context("reading registrations")?;
        let mut registrations = Vec::new();
        for r in &rows {
            let registration = registration_from_row(r);
            let history = self
                .audit_trail(registration.id)
                .await?
                .into_iter()
                .map(|a| serde_json::to_value(a).unwrap_or_default())
                .collect();
            registrations.push(PersonRegistration {
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
        let undeliverable = sqlx::query_scalar("SELECT reason FROM undeliverable WHERE email = ?")
            .bind(&email)
            .fetch_optional(&self.pool)
            .await
            .context("reading undeliverable addresses")?;
        Ok(PersonData {
            email,
            registrations,
            messages_received,
            messages_sent,
            undeliverable,
        })
    }

    /// Erase everything personal about `email`, in one transaction.
    pub async fn forget(&self, email: &str) -> anyhow::Result<Erased> {
        let email = email.trim().to_lowercase();
        let mut tx = self.begin().await?;
        let ids: Vec<i64> = sqlx::query_scalar("SELECT id FROM registrations WHERE email = ?")
            .bind(&email)
            .fetch_all(&mut *tx.tx)
            .await
            .context("finding registrations")?;
        let erased = erase_registrations(&mut tx, &ids).await?;
        let received = sqlx::query(
            "UPDATE inbound_messages SET from_addr = NULL, subject = '', raw = NULL,
                 reason = 'erased on request', outcome = CASE WHEN outcome = 'review' THEN 'dismissed' ELSE outcome END
             WHERE from_addr = ?",
        )
        .bind(&email)
        .execute(&mut *tx.tx)
        .await
        .context("erasing received mail")?
        .rows_affected();
        let sent = erase_sent(&mut tx, "recipient = ?", &email).await?;
        sqlx::query("DELETE FROM undeliverable WHERE email = ?")
            .bind(&email)
            .execute(&mut *tx.tx)
            .await
            .context("erasing the undeliverable mark")?;
        tx.commit().await?;
        Ok(Erased {
            registrations: erased,
            messages_received: received,
            messages_sent: sent,
        })
    }

    /// Erase the registrations of `conference` (it ended longer ago than the
    /// retention time) with their history and the mail about them.
    pub async fn purge_conference(&self, conference: &str) -> anyhow::Result<Erased> {
        let mut tx = self.begin().await?;
        let ids: Vec<i64> =
            sqlx::query_scalar("SELECT id FROM registrations WHERE conference_id = ?")
                .bind(conference)
                .fetch_all(&mut *tx.tx)
                .await
                .context("finding registrations")?;
        let registrations = erase_registrations(&mut tx, &ids).await?;
        let received = sqlx::query(
            "UPDATE inbound_messages SET from_addr = NULL, subject = '', raw = NULL,
                 reason = 'personal data purged after the retention time'
             WHERE conference_id = ? AND (from_addr IS NOT NULL OR raw IS NOT NULL)",
        )
        .bind(conference)
        .execute(&mut *tx.tx)
        .await
        .context("purging received mail")?
        .rows_affected();
        let sent = erase_sent(
            &mut tx,
            "conference_id = ? AND recipient != 'erased'",
            conference,
        )
        .await?;
        tx.commit().await?;
        Ok(Erased {
            registrations,
            messages_received: received,
            messages_sent: sent,
        })
    }
}

async fn erase_registrations(tx: &mut super::StoreTx, ids: &[i64]) -> anyhow::Result<u64> {
    for id in ids {
        for sql in [
            "DELETE FROM audit WHERE registration_id = ?",
            "DELETE FROM reminders_sent WHERE registration_id = ?",
            "DELETE FROM opt_in_requests WHERE registration_id = ?",
            "UPDATE outbox SET registration_id = NULL WHERE registration_id = ?",
            "DELETE FROM registrations WHERE id = ?",
        ] {
            sqlx::query(sql)
                .bind(id)
                .execute(&mut *tx.tx)
                .await
                .context("erasing a registration")?;
        }
    }
    Ok(ids.len() as u64)
}

/// Sent mail keeps its Message-ID (for threads) and loses everything else;
/// mail not yet sent is not sent any more.
async fn erase_sent(tx: &mut super::StoreTx, condition: &str, value: &str) -> anyhow::Result<u64> {
    let sql = format!(
        "UPDATE outbox SET recipient = 'erased', subject = '', raw = x'', last_error = NULL,
             state = CASE WHEN state = 'queued' THEN 'failed' ELSE state END
         WHERE {condition}"
    );
    let n = sqlx::query(sqlx::AssertSqlSafe(sql))
        .bind(value)
        .execute(&mut *tx.tx)
        .await
        .context("erasing sent mail")?
        .rows_affected();
    Ok(n)
}
