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
use sqlx::Row;

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
            let history = sqlx::query(
                "SELECT action, source_message_id, actor, detail, at FROM audit WHERE registration_id = ? ORDER BY id",
            )
            .bind(registration.id)
            .fetch_all(&self.pool)
            .await
            .context("reading the audit trail")?
            .iter()
            .map(|a| {
                serde_json::json!({
                    "action": a.get::<String, _>("action"),
                    "message_id": a.get::<Option<String>, _>("source_message_id"),
                    "by": a.get::<String, _>("actor"),
                    "detail": serde_json::from_str::<serde_json::Value>(&a.get::<String, _>("detail")).unwrap_or_default(),
                    "at": a.get::<String, _>("at"),
                })
            })
            .collect();
            registrations.push(PersonRegistration {
                conference: registration.conference_id.clone(),
                registration,
                history,
            });
        }
        let messages_received = sqlx::query(
            "SELECT message_id, subject, received_at, outcome, reason, conference_id, explanation FROM inbound_messages
             WHERE from_addr = ? ORDER BY id",
        )
        .bind(&email)
        .fetch_all(&self.pool)
        .await
        .context("reading received mail")?
        .iter()
        .map(|m| {
            serde_json::json!({
                "message_id": m.get::<String, _>("message_id"),
                "subject": m.get::<String, _>("subject"),
                "received_at": m.get::<String, _>("received_at"),
                "outcome": m.get::<String, _>("outcome"),
                "reason": m.get::<Option<String>, _>("reason"),
                "conference": m.get::<Option<String>, _>("conference_id"),
                "explanation": super::explanation_from(m.get("explanation")).map(|e| serde_json::json!({
                    "why": e.to_string(),
                    "steps": e.steps,
                })),
            })
        })
        .collect();
        let messages_sent = sqlx::query(
            "SELECT kind, conference_id, subject, state, created_at, sent_at FROM outbox WHERE recipient = ? ORDER BY id",
        )
        .bind(&email)
        .fetch_all(&self.pool)
        .await
        .context("reading sent mail")?
        .iter()
        .map(|m| {
            serde_json::json!({
                "kind": m.get::<String, _>("kind"),
                "conference": m.get::<Option<String>, _>("conference_id"),
                "subject": m.get::<String, _>("subject"),
                "state": m.get::<String, _>("state"),
                "created_at": m.get::<String, _>("created_at"),
                "sent_at": m.get::<Option<String>, _>("sent_at"),
            })
        })
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
            "UPDATE inbound_messages SET from_addr = NULL, subject = '', raw = NULL, explanation = NULL,
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
            "UPDATE inbound_messages SET from_addr = NULL, subject = '', raw = NULL, explanation = NULL,
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
