//! The one mailbox reader: which process reads the mailbox, and the fence
//! that keeps a process that lost that right from recording anything.
//!
//! Any number of processes may share a database (several `rsvpd run` on
//! PostgreSQL; on SQLite a daemon and `run --once` beside it), but only one
//! may read the mailbox. The right to read is a lock:
//!
//! * SQLite: an exclusive `flock` on `<database>.mailbox.lock` beside the file.
//!   SQLite is one machine, and the kernel drops the lock when the process
//!   dies, however it dies. The file says who holds it (`PID ROLE`), so a
//!   second daemon can name the first.
//! * PostgreSQL: a session advisory lock (key "rsvpd mb"; write transactions
//!   take "rsvpd wr") held by a connection of its own, outside the pool. The
//!   server drops it when that connection ends: the process died (its socket
//!   closed), someone ran `pg_terminate_backend`, or the server's TCP
//!   keepalive (5 s idle, then 3 probes 2 s apart, set on every connection)
//!   found the machine gone.
//!
//! A lock alone is not enough on PostgreSQL: a reader whose lock connection
//! ended may not know yet, and may be about to record a mail that the next
//! reader handles too. So each acquisition bumps `mailbox_lease.epoch` (in a
//! write transaction), the reader keeps the epoch it got as its [`Fence`], and
//! every commit of inbound state — the pipeline's transaction, the mailbox's
//! progress — checks inside its transaction that the epoch is still its own
//! ([`StoreTx::check_fence`]). Write transactions are serialised (see the
//! parent module), so no takeover can fall between that check and the commit:
//! a fenced reader's transaction fails with [`Fenced`] before it changes
//! anything, and its mailbox worker stops reading and stands by. SQLite keeps
//! the same epoch and check (one code path; its lock cannot be lost while the
//! process lives).
//!
//! The reader also learns of the loss without writing: on PostgreSQL a
//! heartbeat on the lock connection (every [`HEARTBEAT`], `UPDATE … WHERE
//! epoch = ours`, which renews `renewed_at`) fails or finds the epoch moved,
//! and [`ReaderLease::lost`] fires.
//!
//! # How soon another instance takes over (PostgreSQL)
//!
//! Instances standing by wait inside `pg_advisory_lock` ([`STANDBY_WAIT`] at a
//! time), so one gets the lock the moment the server drops it:
//!
//! * the reader's process died, or its lock connection was terminated: at once;
//! * its machine vanished: when the server's keepalive gives up, at most
//!   `HEARTBEAT` + 5 s + 3 × 2 s = 16 s after its last heartbeat;
//! * it is alive but silent with its connection open (frozen, a partition
//!   behind a proxy that keeps the socket open): its heartbeat stops renewing
//!   `renewed_at`; a standby that finds it older than [`STALE`] terminates the
//!   holder's lock connection itself, at most `STALE` + `STANDBY_WAIT` = 25 s.
//!
//! The new reader's epoch bump then waits for the write transaction in flight,
//! if any — a frozen holder's one is ended by the server after
//! `idle_in_transaction_session_timeout` (15 s, set by `postgres::open`), which
//! runs meanwhile. All within the 30 s of PRODUCT.md.

use std::fmt;
use std::io::{Read as _, Seek as _, Write as _};
use std::path::PathBuf;
use std::time::Duration;

use anyhow::{Context as _, anyhow};
use chrono::Utc;
use sqlx::{ConnectOptions as _, Connection as _, PgConnection};
use tokio::sync::{oneshot, watch};

use super::{Pool, Store, StoreTx, Ts};

/// The session advisory lock of the mailbox reader ("rsvpd mb" in ASCII).
pub const READER_LOCK: i64 = 0x7273_7670_6420_6d62;
/// How often the PostgreSQL reader renews its lease and checks its lock.
pub const HEARTBEAT: Duration = Duration::from_secs(5);
/// How long a standby waits inside `pg_advisory_lock` before it looks again.
pub const STANDBY_WAIT: Duration = Duration::from_secs(5);
/// A reader that has not renewed its lease for this long is taken to hang.
pub const STALE: Duration = Duration::from_secs(20);

/// Which kind of process reads (or wants to read) the mailbox.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum ReaderRole {
    /// `rsvpd run`
    Daemon,
    /// `rsvpd run --once`
    Once,
}

impl ReaderRole {
    fn as_str(self) -> &'static str {
        match self {
            ReaderRole::Daemon => "daemon",
            ReaderRole::Once => "once",
        }
    }

    fn parse(s: &str) -> Option<ReaderRole> {
        match s {
            "daemon" => Some(ReaderRole::Daemon),
            "once" => Some(ReaderRole::Once),
            _ => None,
        }
    }

    fn command(self) -> &'static str {
        match self {
            ReaderRole::Daemon => "rsvpd run",
            ReaderRole::Once => "rsvpd run --once",
        }
    }
}

/// The process that reads the mailbox now, as far as it said.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Holder {
    /// "rsvpd run, pid 4242 on host-a"
    pub who: String,
    /// What it runs as, when it said.
    pub role: Option<ReaderRole>,
}

impl fmt::Display for Holder {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.write_str(&self.who)
    }
}

/// What a write of inbound state checks before it commits.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Fence {
    /// Not read from the mailbox (`rsvpd ingest` of files): nothing to check.
    Unfenced,
    /// Read from the mailbox under the lease of this epoch.
    Epoch(i64),
}

/// A reader's write was refused: another process took the mailbox over.
#[derive(Debug, Clone, PartialEq, Eq, thiserror::Error)]
#[error(
    "another process reads the mailbox now (its lease {current} replaced ours, {ours}); \
     this one stops reading and stands by"
)]
pub struct Fenced {
    pub ours: i64,
    pub current: i64,
}

/// Whether `e` (or anything in its chain) is [`Fenced`].
pub fn is_fenced(e: &anyhow::Error) -> bool {
    e.chain().any(|c| c.is::<Fenced>())
}

/// The answer to [`Store::try_read_mailbox`].
pub enum Reading {
    /// This process reads the mailbox now.
    Granted(ReaderLease),
    /// Another one does.
    Busy(Holder),
}

/// The right to read the mailbox; given back when dropped (or `release`d).
pub struct ReaderLease {
    epoch: i64,
    /// The database it is for (`DatabaseConfig::describe`).
    database: String,
    inner: Inner,
}

enum Inner {
    /// The locked file; closing it unlocks.
    Sqlite { _file: std::fs::File },
    /// The heartbeat task that owns the lock connection.
    Postgres {
        lost: watch::Receiver<bool>,
        stop: Option<oneshot::Sender<()>>,
        task: tokio::task::JoinHandle<()>,
    },
}

impl ReaderLease {
    /// What this reader's writes of inbound state check.
    pub fn fence(&self) -> Fence {
        Fence::Epoch(self.epoch)
    }

    pub fn epoch(&self) -> i64 {
        self.epoch
    }

    /// Whether this lease is for the database `store` opened.
    pub fn is_for(&self, store: &Store) -> bool {
        self.database == store.database
    }

    /// Whether the lock is known to be gone (the lock connection ended or
    /// another process bumped the epoch).
    pub fn is_lost(&self) -> bool {
        match &self.inner {
            Inner::Sqlite { .. } => false,
            Inner::Postgres { lost, .. } => *lost.borrow(),
        }
    }

    /// Resolves when the lock is known to be gone; never on SQLite.
    pub async fn lost(&self) {
        match &self.inner {
            Inner::Sqlite { .. } => std::future::pending().await,
            Inner::Postgres { lost, .. } => {
                let mut lost = lost.clone();
                // An error means the heartbeat task ended: lost as well.
                let _ = lost.wait_for(|l| *l).await;
            }
        }
    }

    /// Give the lock back now and wait (briefly) until it is.
    pub async fn release(mut self) {
        if let Inner::Postgres { stop, task, .. } = &mut self.inner {
            if let Some(stop) = stop.take() {
                let _ = stop.send(());
            }
            let _ = tokio::time::timeout(Duration::from_secs(3), task).await;
        }
    }
}

impl Drop for ReaderLease {
    fn drop(&mut self) {
        // Dropping the stop sender ends the heartbeat task, which closes the
        // lock connection; the file of SQLite closes with the struct.
        if let Inner::Postgres { stop, .. } = &mut self.inner {
            stop.take();
        }
    }
}

/// "rsvpd run, pid 4242 on host-a"
fn describe_self(role: ReaderRole) -> String {
    let host = std::fs::read_to_string("/proc/sys/kernel/hostname")
        .map(|h| h.trim().to_string())
        .unwrap_or_default();
    let pid = std::process::id();
    if host.is_empty() {
        format!("{}, pid {pid}", role.command())
    } else {
        format!("{}, pid {pid} on {host}", role.command())
    }
}

impl Store {
    /// Try to become the process that reads the mailbox. On PostgreSQL wait
    /// at most `wait` for the current reader to go (and end a reader that
    /// stopped renewing its lease, see the module doc); on SQLite look once.
    pub async fn try_read_mailbox(
        &self,
        role: ReaderRole,
        wait: Duration,
    ) -> anyhow::Result<Reading> {
        match &self.pool {
            Pool::Sqlite(p) => {
                let path = p.connect_options().get_filename().to_path_buf();
                self.try_read_sqlite(path, role).await
            }
            Pool::Postgres(p) => self.try_read_postgres(p, role, wait).await,
        }
    }

    async fn try_read_sqlite(&self, db: PathBuf, role: ReaderRole) -> anyhow::Result<Reading> {
        let path = db.with_extension("mailbox.lock");
        let mut file = std::fs::OpenOptions::new()
            .create(true)
            .truncate(false)
            .read(true)
            .write(true)
            .open(&path)
            .with_context(|| format!("cannot create {}", path.display()))?;
        match file.try_lock() {
            Ok(()) => {}
            Err(std::fs::TryLockError::WouldBlock) => {
                return Ok(Reading::Busy(sqlite_holder(&mut file)));
            }
            Err(std::fs::TryLockError::Error(e)) => {
                return Err(e).with_context(|| format!("cannot lock {}", path.display()));
            }
        }
        let me = format!("{} {}\n", std::process::id(), role.as_str());
        file.set_len(0)
            .and_then(|()| file.rewind())
            .and_then(|()| file.write_all(me.as_bytes()))
            .with_context(|| format!("cannot write {}", path.display()))?;
        let epoch = self.bump_epoch(role, None).await?;
        Ok(Reading::Granted(ReaderLease {
            epoch,
            database: self.database.clone(),
            inner: Inner::Sqlite { _file: file },
        }))
    }

    async fn try_read_postgres(
        &self,
        pool: &sqlx::PgPool,
        role: ReaderRole,
        wait: Duration,
    ) -> anyhow::Result<Reading> {
        let opts = (*pool.connect_options())
            .clone()
            .application_name("rsvpd mailbox reader")
            // Waiting inside pg_advisory_lock is this connection's job.
            .disable_statement_logging();
        let mut conn = PgConnection::connect_with(&opts)
            .await
            .context("cannot open the mailbox reader's connection to the database")?;
        let got = if wait.is_zero() {
            sqlx::query_scalar("SELECT pg_try_advisory_lock($1)")
                .bind(READER_LOCK)
                .fetch_one(&mut conn)
                .await
                .context("trying the mailbox reader's lock")?
        } else {
            wait_for_lock(&mut conn, wait).await?
        };
        if !got {
            if !wait.is_zero() {
                end_stale_holder(&mut conn).await;
            }
            let holder = self.reader_holder().await?;
            let _ = conn.close().await;
            return Ok(Reading::Busy(holder));
        }
        let backend_pid: i32 = sqlx::query_scalar("SELECT pg_backend_pid()")
            .fetch_one(&mut conn)
            .await
            .context("reading the lock connection's server process")?;
        let epoch = self.bump_epoch(role, Some(backend_pid)).await?;
        // The bump wrote this machine's time; renew with the server's at
        // once, so a standby never judges a fresh lease by a skewed clock.
        if !heartbeat(&mut conn, epoch).await? {
            return Err(anyhow!(
                "the mailbox reader's lease changed right after it was taken"
            ));
        }
        let (lost_tx, lost) = watch::channel(false);
        let (stop, stop_rx) = oneshot::channel();
        let task = tokio::spawn(keep_lock(conn, epoch, lost_tx, stop_rx));
        Ok(Reading::Granted(ReaderLease {
            epoch,
            database: self.database.clone(),
            inner: Inner::Postgres {
                lost,
                stop: Some(stop),
                task,
            },
        }))
    }

    /// A new epoch for this reader, in a write transaction (serialised with
    /// every inbound transaction, so their fence checks see it or precede it).
    async fn bump_epoch(&self, role: ReaderRole, backend_pid: Option<i32>) -> anyhow::Result<i64> {
        let mut tx = self.begin().await?;
        let now = Ts(Utc::now());
        let epoch: i64 = on_tx!(tx, |c| {
            sqlx::query_scalar(
                "INSERT INTO mailbox_lease (id, epoch, holder, role, backend_pid, since, renewed_at)
                 VALUES (1, 1, $1, $2, $3, $4, $4)
                 ON CONFLICT (id) DO UPDATE SET epoch = mailbox_lease.epoch + 1, holder = excluded.holder,
                     role = excluded.role, backend_pid = excluded.backend_pid, since = excluded.since,
                     renewed_at = excluded.renewed_at
                 RETURNING epoch",
            )
            .bind(describe_self(role))
            .bind(role.as_str())
            .bind(backend_pid.map(i64::from))
            .bind(now)
            .fetch_one(&mut *c)
            .await
        })
        .context("taking the mailbox reader's lease")?;
        tx.commit().await?;
        Ok(epoch)
    }

    /// Who holds the mailbox, as the lease row says.
    async fn reader_holder(&self) -> anyhow::Result<Holder> {
        let row: Option<(String, String)> = on_pool!(self, |c| {
            sqlx::query_as("SELECT holder, role FROM mailbox_lease WHERE id = 1")
                .fetch_optional(c)
                .await
        })
        .context("reading the mailbox reader's lease")?;
        Ok(match row {
            Some((who, role)) => Holder {
                who,
                role: ReaderRole::parse(&role),
            },
            None => Holder {
                who: "another rsvpd".into(),
                role: None,
            },
        })
    }
}

impl StoreTx {
    /// Refuse to go on (with [`Fenced`]) when `fence` is a lease another
    /// reader has replaced. Call it inside every transaction that records
    /// inbound state, before the commit.
    pub async fn check_fence(&mut self, fence: Fence) -> anyhow::Result<()> {
        let Fence::Epoch(ours) = fence else {
            return Ok(());
        };
        let current: Option<i64> = on_tx!(self, |c| {
            sqlx::query_scalar("SELECT epoch FROM mailbox_lease WHERE id = 1")
                .fetch_optional(&mut *c)
                .await
        })
        .context("reading the mailbox reader's lease")?;
        match current {
            Some(current) if current == ours => Ok(()),
            current => Err(Fenced {
                ours,
                current: current.unwrap_or(0),
            }
            .into()),
        }
    }
}

/// Who the lock file says holds it (written right after locking; an empty
/// file is a holder that has not written yet).
fn sqlite_holder(file: &mut std::fs::File) -> Holder {
    let mut text = String::new();
    let _ = file.rewind().and_then(|_| file.read_to_string(&mut text));
    let mut words = text.split_whitespace();
    match (
        words.next().and_then(|p| p.parse::<u32>().ok()),
        words.next(),
    ) {
        (Some(pid), role) => {
            let role = role.and_then(ReaderRole::parse);
            let command = role.map(ReaderRole::command).unwrap_or("rsvpd");
            Holder {
                who: format!("{command}, pid {pid}"),
                role,
            }
        }
        _ => Holder {
            who: "another rsvpd process".into(),
            role: None,
        },
    }
}

/// Wait inside `pg_advisory_lock` at most `wait`; false when the lock was not free.
async fn wait_for_lock(conn: &mut PgConnection, wait: Duration) -> anyhow::Result<bool> {
    sqlx::query(sqlx::AssertSqlSafe(format!(
        "SET lock_timeout = {}",
        wait.as_millis().max(1)
    )))
    .execute(&mut *conn)
    .await
    .context("setting the lock timeout")?;
    // The client gives up a little after the server would, in case the
    // connection itself went silent.
    let waited = tokio::time::timeout(
        wait + Duration::from_secs(5),
        sqlx::query("SELECT pg_advisory_lock($1)")
            .bind(READER_LOCK)
            .execute(&mut *conn),
    )
    .await;
    match waited {
        Err(_) => Err(anyhow!(
            "the database did not answer while waiting for the mailbox reader's lock"
        )),
        Ok(Ok(_)) => Ok(true),
        // 55P03 lock_not_available: the lock timeout ran out.
        Ok(Err(sqlx::Error::Database(e))) if e.code().as_deref() == Some("55P03") => Ok(false),
        Ok(Err(e)) => Err(e).context("waiting for the mailbox reader's lock"),
    }
}

/// End the lock connection of a reader that stopped renewing its lease
/// (see the module doc). Best effort: failing here only delays a takeover.
async fn end_stale_holder(conn: &mut PgConnection) {
    let ended: Result<Vec<(String, bool)>, _> = sqlx::query_as(
        "SELECT m.holder, pg_terminate_backend(l.pid)
         FROM pg_locks l JOIN mailbox_lease m ON m.backend_pid = l.pid
         WHERE m.id = 1 AND m.renewed_at < now() - make_interval(secs => $1)
           AND l.locktype = 'advisory' AND l.granted AND l.objsubid = 1
           AND l.classid::bigint = $2 AND l.objid::bigint = $3
           AND l.database = (SELECT oid FROM pg_database WHERE datname = current_database())",
    )
    .bind(STALE.as_secs_f64())
    .bind(READER_LOCK >> 32)
    .bind(READER_LOCK & 0xffff_ffff)
    .fetch_all(&mut *conn)
    .await;
    match ended {
        Ok(rows) => {
            for (holder, done) in rows {
                tracing::warn!(
                    %holder, ended = done,
                    "the mailbox reader has not renewed its lease for {} s; ending its lock connection so another instance can read",
                    STALE.as_secs()
                );
            }
        }
        Err(e) => {
            tracing::warn!(error = %e, "could not check whether the mailbox reader still renews its lease")
        }
    }
}

/// Renew the lease; false when the epoch is no longer ours.
async fn heartbeat(conn: &mut PgConnection, epoch: i64) -> anyhow::Result<bool> {
    let renewed = tokio::time::timeout(
        HEARTBEAT,
        sqlx::query("UPDATE mailbox_lease SET renewed_at = now() WHERE id = 1 AND epoch = $1")
            .bind(epoch)
            .execute(&mut *conn),
    )
    .await
    .map_err(|_| anyhow!("the database did not answer within {HEARTBEAT:?}"))?
    .context("renewing the mailbox reader's lease")?;
    Ok(renewed.rows_affected() == 1)
}

/// Hold the lock connection: renew the lease every `HEARTBEAT`; report a
/// failure as lost and end. On `stop` (or when the lease is dropped), unlock
/// and close.
async fn keep_lock(
    mut conn: PgConnection,
    epoch: i64,
    lost: watch::Sender<bool>,
    mut stop: oneshot::Receiver<()>,
) {
    loop {
        tokio::select! {
            _ = &mut stop => break,
            _ = tokio::time::sleep(HEARTBEAT) => {}
        }
        match heartbeat(&mut conn, epoch).await {
            Ok(true) => {}
            Ok(false) => {
                tracing::warn!(
                    epoch,
                    "another process took the mailbox reader's lease; this one stops reading"
                );
                let _ = lost.send(true);
                break;
            }
            Err(e) => {
                tracing::warn!(
                    error = %format!("{e:#}"), epoch,
                    "the mailbox reader's lock connection failed; this one stops reading"
                );
                // Without the connection the lock is gone (or will be soon).
                let _ = lost.send(true);
                return;
            }
        }
    }
    let _ = sqlx::query("SELECT pg_advisory_unlock($1)")
        .bind(READER_LOCK)
        .execute(&mut conn)
        .await;
    let _ = tokio::time::timeout(Duration::from_secs(2), conn.close()).await;
}
