//! The PostgreSQL backend's own parts: connecting (`postgres://USER@HOST:PORT/DB`,
//! the password given apart from the URL), `migrations/postgres` embedded in
//! the binary (sqlx's migrator takes PostgreSQL's advisory lock, so instances
//! starting together migrate once), and write transactions serialised by a
//! transaction-level advisory lock (see the parent module's doc).

use std::str::FromStr as _;
use std::time::Duration;

use anyhow::Context as _;
use sqlx::postgres::{PgConnectOptions, PgPoolOptions};
use sqlx::{PgPool, Postgres, Transaction};

use crate::config::Secret;

/// The advisory lock every write transaction takes ("rsvpd wr" in ASCII).
const WRITE_LOCK: i64 = 0x7273_7670_6420_7772;

/// Connect to the server at `url` and migrate the database; the pool, and
/// the one connection whose commits do not wait for the server's disk
/// (`synchronous_commit = off`, connected when first used): it records a mail
/// as sent (see `Store::record_sent`), which survives rsvpd dying, not the
/// database server crashing within its next WAL flush (≤ 3 × wal_writer_delay)
/// — then the mail goes out once more, never lost.
pub(super) async fn open(url: &str, password: Option<&Secret>) -> anyhow::Result<(PgPool, PgPool)> {
    let mut opts = PgConnectOptions::from_str(url)
        .with_context(|| format!("[database] url `{url}` is not a PostgreSQL URL"))?
        .application_name("rsvpd")
        .options([
            // Notices such as "relation _sqlx_migrations already exists,
            // skipping" on every start are not news for the log.
            ("client_min_messages", "warning"),
            // The server notices a client machine that vanished within
            // 5 + 3 × 2 s of silence, instead of the system's two hours, and
            // drops its locks (the mailbox reader's, see `reader`).
            ("tcp_keepalives_idle", "5"),
            ("tcp_keepalives_interval", "2"),
            ("tcp_keepalives_count", "3"),
            // A client that stops in the middle of a write transaction (frozen,
            // cut off behind a proxy) would hold the write lock for good; no
            // transaction of rsvpd waits on anything but the database.
            ("idle_in_transaction_session_timeout", "15s"),
        ]);
    if let Some(p) = password {
        opts = opts.password(p.expose());
    }
    let relaxed = PgPoolOptions::new()
        .max_connections(1)
        .min_connections(0)
        .acquire_timeout(Duration::from_secs(30))
        .connect_lazy_with(opts.clone().options([("synchronous_commit", "off")]));
    let pool = PgPoolOptions::new()
        .max_connections(8)
        .acquire_timeout(Duration::from_secs(30))
        .connect_with(opts)
        .await
        .with_context(|| {
            format!(
                "cannot connect to the database {url} (is the server running, the role and database created, \
                 and the password in [database] password_file or RSVPD_DATABASE_PASSWORD?)"
            )
        })?;
    sqlx::migrate!("migrations/postgres")
        .run(&pool)
        .await
        .with_context(|| format!("cannot bring the database schema of {url} up to date"))?;
    Ok((pool, relaxed))
}

/// A write transaction, serialised with every other one on this database.
pub(super) async fn begin(pool: &PgPool) -> anyhow::Result<Transaction<'static, Postgres>> {
    let mut tx = pool
        .begin()
        .await
        .context("cannot start a database transaction")?;
    sqlx::query("SELECT pg_advisory_xact_lock($1)")
        .bind(WRITE_LOCK)
        .execute(&mut *tx)
        .await
        .context("waiting for the database write lock")?;
    Ok(tx)
}
