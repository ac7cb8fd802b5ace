//! Outbox claims: a sender takes a due mail for itself before it talks to the
//! SMTP server, so any number of senders (the daemon's worker, `run --once`
//! beside it, a worker left over after SIGHUP, other instances on PostgreSQL)
//! never send one mail twice while they live.
//!
//! A claim is `claimed_by` (who) and `claimed_until` (a lease). The claim is
//! one atomic statement: on SQLite an `UPDATE … RETURNING` inside `BEGIN
//! IMMEDIATE`; on PostgreSQL the same `UPDATE` whose row is chosen `FOR UPDATE
//! SKIP LOCKED`, so concurrent claimers pass each other instead of queueing.
//! A claim ends when the sender marks the mail sent, retried or failed; a
//! sender that stops cleanly releases what it still holds.
//!
//! A sender that died holds its claim until the lease runs out — unless it ran
//! on this machine: the claimer's name carries the machine's boot id, its
//! process id and that process's start time, so a claim whose process is gone
//! is taken back at once (a crash between claim and send, then a restart,
//! sends the mail right away, as before claims existed). Claims of other
//! machines wait for their lease.

use std::time::Duration as StdDuration;

use anyhow::Context as _;
use chrono::{DateTime, Duration, Utc};

use super::{DueMessage, OutboxState, Pool, Store, StoreTx, Ts};

/// How long a claim holds: longer than any one send can take (connect and
/// the SMTP dialogue, each step bounded by `[smtp] timeout`), at least 2 min.
pub fn lease_for(smtp_timeout: StdDuration) -> Duration {
    let send = Duration::from_std(smtp_timeout.saturating_mul(8)).unwrap_or(Duration::hours(1));
    send.max(Duration::minutes(2))
}

/// A new claimer name: `BOOT_ID/PID/START/UNIQUE` (see the module doc).
pub(super) fn new_claimer() -> String {
    let pid = std::process::id();
    format!(
        "{}/{pid}/{}/{}",
        boot_id().unwrap_or_else(|| "-".into()),
        process_start(pid).unwrap_or_else(|| "-".into()),
        uuid::Uuid::new_v4().simple()
    )
}

fn boot_id() -> Option<String> {
    std::fs::read_to_string("/proc/sys/kernel/random/boot_id")
        .ok()
        .map(|s| s.trim().to_string())
        .filter(|s| !s.is_empty())
}

/// The start time of process `pid` (clock ticks since boot), from /proc.
fn process_start(pid: u32) -> Option<String> {
    let stat = std::fs::read_to_string(format!("/proc/{pid}/stat")).ok()?;
    // The command name (field 2) may hold spaces and parentheses: count from
    // the last ')'. starttime is field 22, the 20th after it.
    let rest = &stat[stat.rfind(')')? + 1..];
    rest.split_whitespace().nth(19).map(str::to_string)
}

/// Whether `claimer` names a process of this machine that no longer runs.
/// Claims of other machines (or where /proc is missing) are never judged dead.
fn claimer_is_gone(claimer: &str) -> bool {
    let mut parts = claimer.split('/');
    let (Some(boot), Some(pid), Some(start)) = (parts.next(), parts.next(), parts.next()) else {
        return false;
    };
    let Some(here) = boot_id() else {
        return false;
    };
    if boot != here || start == "-" {
        return false;
    }
    let Ok(pid) = pid.parse::<u32>() else {
        return false;
    };
    process_start(pid).as_deref() != Some(start)
}

/// The claim, shared by both backends; `{lock}` is the backend's row lock.
fn claim_sql(lock: &str) -> String {
    format!(
        "UPDATE outbox SET claimed_by = $1, claimed_until = $2
         WHERE id IN (SELECT id FROM outbox
                      WHERE state = $3 AND next_attempt_at <= $4
                        AND (claimed_until IS NULL OR claimed_until <= $4)
                      ORDER BY next_attempt_at, id LIMIT $5 {lock})
         RETURNING id, recipient, raw, attempts"
    )
}

/// What one claim took.
#[derive(Debug, Default)]
pub struct Claimed {
    /// The mails, oldest due first.
    pub mails: Vec<DueMessage>,
    /// True when the rate limit, not an empty queue, kept mails back.
    pub throttled: bool,
}

/// What became of one claimed mail; the outcomes of a batch are recorded in
/// one transaction (`Store::record_outcomes`), each still its own.
#[derive(Debug, Clone, PartialEq, Eq)]
pub enum Outcome {
    /// The server took it (its 250) at that time.
    Sent(DateTime<Utc>),
    /// Refused for now; tried again then.
    Retry { error: String, next: DateTime<Utc> },
    /// Refused for good; with `undeliverable`, that address is never written to again.
    Failed {
        error: String,
        undeliverable: Option<String>,
    },
    /// Not sent and not counted as a try (the queue paused): given back, with why it waits.
    Waiting(Option<String>),
}

impl Store {
    /// Claim the next queued mail whose time has come, for `lease`; None
    /// when every due mail is sent or held by a live sender.
    pub async fn claim_due(
        &self,
        now: DateTime<Utc>,
        lease: Duration,
    ) -> anyhow::Result<Option<DueMessage>> {
        let claimed = self.claim_batch(now, lease, 1, i64::MAX).await?;
        Ok(claimed.mails.into_iter().next())
    }

    /// Claim up to `max` due mails for `lease`, in one transaction, and no
    /// more than `per_minute` allows: the mails sent in the last minute and
    /// those any live sender holds count against it, and claimers take turns
    /// (SQLite's `BEGIN IMMEDIATE`, PostgreSQL's write lock), so
    /// `max_per_minute` is a ceiling for all senders together.
    pub async fn claim_batch(
        &self,
        now: DateTime<Utc>,
        lease: Duration,
        max: usize,
        per_minute: i64,
    ) -> anyhow::Result<Claimed> {
        self.release_gone_claims(now).await?;
        let mut tx = self.begin().await?;
        // Every mail sent in the minute before a claim, or held then, was
        // counted by that claim; so no minute ever sees more than the limit.
        let used: i64 = on_tx!(tx, |c| {
            sqlx::query_scalar(
                "SELECT (SELECT COUNT(*) FROM outbox WHERE state = $1 AND sent_at > $2)
                      + (SELECT COUNT(*) FROM outbox WHERE state = $3 AND claimed_until > $4)",
            )
            .bind(OutboxState::Sent.as_str())
            .bind(Ts(now - Duration::seconds(60)))
            .bind(OutboxState::Queued.as_str())
            .bind(Ts(now))
            .fetch_one(&mut *c)
            .await
        })
        .context("counting the mail of the last minute")?;
        let room = per_minute.saturating_sub(used).min(max as i64);
        if room <= 0 {
            return Ok(Claimed {
                mails: Vec::new(),
                throttled: true,
            });
        }
        let lock = match &self.pool {
            Pool::Sqlite(_) => "",
            Pool::Postgres(_) => "FOR UPDATE SKIP LOCKED",
        };
        let mut mails: Vec<DueMessage> = on_tx!(tx, |c| {
            sqlx::query_as(sqlx::AssertSqlSafe(claim_sql(lock)))
                .bind(&*self.claimer)
                .bind(Ts(now + lease))
                .bind(OutboxState::Queued.as_str())
                .bind(Ts(now))
                .bind(room)
                .fetch_all(&mut *c)
                .await
        })
        .context("claiming mail in the outbox")?;
        tx.commit().await?;
        // RETURNING gives no order; send the oldest first.
        mails.sort_by_key(|m| m.id);
        Ok(Claimed {
            mails,
            throttled: false,
        })
    }

    /// Record what became of claimed mails, in one transaction; each ends its
    /// claim. Recording a mail sent a second time changes nothing.
    pub async fn record_outcomes(&self, outcomes: &[(i64, Outcome)]) -> anyhow::Result<()> {
        if outcomes.is_empty() {
            return Ok(());
        }
        record_in(self.begin().await?, outcomes).await
    }

    /// Record mails the server has just accepted, the moment it did: the
    /// commit does not wait for the disk. A crash of the process keeps it; a
    /// power loss may take the last ones back, and those mails go out once
    /// more — a duplicate, never a lost mail. Everything else the outbox
    /// records (`record_outcomes`) waits for the disk.
    pub async fn record_sent(&self, id: i64, at: DateTime<Utc>) -> anyhow::Result<()> {
        // One statement, its own transaction: a writing statement takes
        // SQLite's write lock at its start (waiting like BEGIN IMMEDIATE); on
        // PostgreSQL it locks the row and needs no write lock (a mark, see the
        // module doc). One round trip instead of three to five.
        match &self.relaxed {
            Pool::Sqlite(c) => mark_sent!(c, id, at).map(drop),
            Pool::Postgres(c) => mark_sent!(c, id, at).map(drop),
        }
        .context("marking a mail as sent")?;
        Ok(())
    }

    /// Take back the claims of senders on this machine that are gone.
    async fn release_gone_claims(&self, now: DateTime<Utc>) -> anyhow::Result<()> {
        let claimers: Vec<String> = on_pool!(self, |c| {
            sqlx::query_scalar(
                "SELECT DISTINCT claimed_by FROM outbox
                 WHERE state = $1 AND claimed_by IS NOT NULL AND claimed_until > $2",
            )
            .bind(OutboxState::Queued.as_str())
            .bind(Ts(now))
            .fetch_all(c)
            .await
        })
        .context("reading the outbox claims")?;
        for gone in claimers.iter().filter(|c| claimer_is_gone(c)) {
            tracing::info!(claimer = %gone, "a sender on this machine died holding mail; taking it back");
            self.release_claims_of(gone).await?;
        }
        Ok(())
    }

    /// Give back every mail this store still holds (a clean stop).
    pub async fn release_claims(&self) -> anyhow::Result<()> {
        let me = self.claimer.clone();
        self.release_claims_of(&me).await
    }

    async fn release_claims_of(&self, claimer: &str) -> anyhow::Result<()> {
        on_pool!(self, |c| {
            sqlx::query(
                "UPDATE outbox SET claimed_by = NULL, claimed_until = NULL
                 WHERE claimed_by = $1 AND state = $2",
            )
            .bind(claimer)
            .bind(OutboxState::Queued.as_str())
            .execute(c)
            .await
            .map(|r| r.rows_affected())
        })
        .context("releasing outbox claims")?;
        Ok(())
    }

    /// When the next queued mail can be claimed (its time has come and no
    /// live claim holds it), if any is queued.
    pub async fn next_due_at(&self) -> anyhow::Result<Option<DateTime<Utc>>> {
        let t: Option<Ts> = on_pool!(self, |c| {
            sqlx::query_scalar(
                "SELECT MIN(CASE WHEN claimed_until IS NOT NULL AND claimed_until > next_attempt_at
                                 THEN claimed_until ELSE next_attempt_at END)
                 FROM outbox WHERE state = $1",
            )
            .bind(OutboxState::Queued.as_str())
            .fetch_one(c)
            .await
        })
        .context("reading the outbox")?;
        Ok(t.map(|t| t.0))
    }

    /// The message failed for good; with `undeliverable`, its recipient is never written to again.
    pub async fn mark_failed(
        &self,
        id: i64,
        error: &str,
        undeliverable: Option<&str>,
    ) -> anyhow::Result<()> {
        let failed = Outcome::Failed {
            error: error.to_string(),
            undeliverable: undeliverable.map(str::to_string),
        };
        self.record_outcomes(&[(id, failed)]).await
    }
}

impl StoreTx {
    async fn record_outcome(&mut self, id: i64, outcome: &Outcome) -> anyhow::Result<()> {
        let queued = OutboxState::Queued.as_str();
        match outcome {
            Outcome::Sent(at) => {
                on_tx!(self, |c| mark_sent!(&mut *c, id, *at).map(|r| r.rows_affected()))
                    .context("marking a mail as sent")?
            }
            Outcome::Retry { error, next } => on_tx!(self, |c| {
                sqlx::query(
                    "UPDATE outbox SET attempts = attempts + 1, last_error = $1, next_attempt_at = $2,
                         claimed_by = NULL, claimed_until = NULL
                     WHERE id = $3 AND state = $4",
                )
                .bind(error)
                .bind(Ts(*next))
                .bind(id)
                .bind(queued)
                .execute(&mut *c)
                .await
                .map(|r| r.rows_affected())
            })
            .context("scheduling a retry")?,
            Outcome::Failed {
                error,
                undeliverable,
            } => {
                on_tx!(self, |c| {
                    sqlx::query(
                        "UPDATE outbox SET state = $1, attempts = attempts + 1, last_error = $2, failed_at = $3,
                             claimed_by = NULL, claimed_until = NULL
                         WHERE id = $4",
                    )
                    .bind(OutboxState::Failed.as_str())
                    .bind(error)
                    .bind(Ts(Utc::now()))
                    .bind(id)
                    .execute(&mut *c)
                    .await
                    .map(|r| r.rows_affected())
                })
                .context("marking a mail as failed")?;
                if let Some(addr) = undeliverable {
                    self.mark_undeliverable(addr, error).await?;
                }
                0
            }
            Outcome::Waiting(note) => on_tx!(self, |c| {
                sqlx::query(
                    "UPDATE outbox SET last_error = COALESCE($1, last_error),
                         claimed_by = NULL, claimed_until = NULL
                     WHERE id = $2",
                )
                .bind(note.as_deref())
                .bind(id)
                .execute(&mut *c)
                .await
                .map(|r| r.rows_affected())
            })
            .context("noting why a mail waits")?,
        };
        Ok(())
    }
}

/// `MARK_SENT` for mail `$id`, accepted at `$at`, executed on `$c` (a pool
/// or a transaction's connection); the query's result. The one place its
/// values are bound, for `record_sent` and a batch's `record_outcome`.
macro_rules! mark_sent {
    ($c:expr, $id:expr, $at:expr) => {
        sqlx::query(MARK_SENT)
            .bind(OutboxState::Sent.as_str())
            .bind(Ts($at))
            .bind($id)
            .bind(OutboxState::Queued.as_str())
            .execute($c)
            .await
    };
}
use mark_sent;

/// A mail the server accepted: sent, no longer claimed.
const MARK_SENT: &str =
    "UPDATE outbox SET state = $1, sent_at = $2, attempts = attempts + 1, last_error = NULL,
         claimed_by = NULL, claimed_until = NULL
     WHERE id = $3 AND state = $4";

/// Record each outcome in `tx` and commit it.
async fn record_in(mut tx: StoreTx, outcomes: &[(i64, Outcome)]) -> anyhow::Result<()> {
    for (id, outcome) in outcomes {
        tx.record_outcome(*id, outcome).await?;
    }
    tx.commit().await
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn this_process_is_alive_and_a_finished_one_is_gone() {
        let me = new_claimer();
        if boot_id().is_none() {
            return; // no /proc: claims only ever expire by their lease
        }
        assert!(!claimer_is_gone(&me), "{me}");
        let mut child = std::process::Command::new("true").spawn().expect("true");
        let pid = child.id();
        let start = process_start(pid);
        child.wait().expect("wait");
        let dead = format!(
            "{}/{pid}/{}/x",
            boot_id().unwrap_or_default(),
            start.unwrap_or_else(|| "1".into())
        );
        assert!(claimer_is_gone(&dead), "{dead}");
        assert!(
            !claimer_is_gone("other-boot/1/1/x"),
            "another machine's claim waits for its lease"
        );
        assert!(!claimer_is_gone("garbage"));
    }

    #[test]
    fn the_lease_outlasts_a_send() {
        assert_eq!(lease_for(StdDuration::from_secs(5)), Duration::minutes(2));
        assert_eq!(lease_for(StdDuration::from_secs(60)), Duration::minutes(8));
    }
}
