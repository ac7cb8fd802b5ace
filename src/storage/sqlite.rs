//! The SQLite backend's own parts: opening the file (WAL, the migration lock
//! file, `migrations/sqlite` embedded in the binary) and `BEGIN IMMEDIATE`.

use std::path::Path;
use std::str::FromStr as _;
use std::time::Duration;

use anyhow::{Context as _, bail};
use sqlx::sqlite::{SqliteConnectOptions, SqliteJournalMode, SqlitePoolOptions, SqliteSynchronous};
use sqlx::{Sqlite, SqlitePool, Transaction};

/// Open (creating when missing) the database file and migrate it.
pub(super) async fn open(path: &Path) -> anyhow::Result<SqlitePool> {
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
    let opts = options(path)?.synchronous(SqliteSynchronous::Full);
    let pool = SqlitePoolOptions::new()
        .max_connections(4)
        .idle_timeout(IDLE_CONNECTION)
        // A connection to a local file does not go stale; the test would be
        // one more round trip to its thread for every statement outside a
        // transaction.
        .test_before_acquire(false)
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
    Ok(pool)
}

/// A connection unused for this long closes (checked as often): each holds
/// a thread, a page cache and prepared statements, several hundred KiB that
/// an idle daemon does not need. Opening one again takes a millisecond or two.
pub const IDLE_CONNECTION: Duration = Duration::from_secs(10);

fn options(path: &Path) -> anyhow::Result<SqliteConnectOptions> {
    Ok(SqliteConnectOptions::from_str("sqlite://")
        .context("sqlite options")?
        .filename(path)
        .create_if_missing(true)
        .journal_mode(SqliteJournalMode::Wal)
        // Freed and shrunk records are overwritten with zeros: an erased
        // person's data must not linger in the file's free space.
        .pragma("secure_delete", "on")
        .busy_timeout(Duration::from_secs(10))
        .foreign_keys(true))
}

/// One connection whose commits do not wait for the disk (`synchronous =
/// NORMAL`): in WAL mode such a commit survives the process dying, not the
/// machine losing power; the next ordinary commit makes it durable too.
/// Used only to record a mail as sent (see `Store::record_sent`), where
/// losing the record means sending the mail again, never losing one.
/// Opened after `open` has brought the schema up to date.
pub(super) fn relaxed(path: &Path) -> anyhow::Result<SqlitePool> {
    Ok(SqlitePoolOptions::new()
        .max_connections(1)
        .test_before_acquire(false)
        .min_connections(0)
        .idle_timeout(IDLE_CONNECTION)
        .connect_lazy_with(options(path)?.synchronous(SqliteSynchronous::Normal)))
}

/// A write transaction. IMMEDIATE takes the write lock up front, so the
/// transaction cannot fail half-way on SQLITE_BUSY when it upgrades.
pub(super) async fn begin(pool: &SqlitePool) -> anyhow::Result<Transaction<'static, Sqlite>> {
    pool.begin_with("BEGIN IMMEDIATE")
        .await
        .context("cannot start a database transaction")
}

/// Copy every page from the write-ahead log into the database file and cut
/// the log to zero bytes, so no older version of a page stays in it. Retried
/// while a reader holds the log; false when it stayed busy.
pub(super) async fn checkpoint_truncate(pool: &SqlitePool) -> anyhow::Result<bool> {
    for _ in 0..50 {
        let (busy, _log, _done): (i64, i64, i64) =
            sqlx::query_as("PRAGMA wal_checkpoint(TRUNCATE)")
                .fetch_one(pool)
                .await
                .context("checkpointing the write-ahead log")?;
        if busy == 0 {
            return Ok(true);
        }
        tokio::time::sleep(Duration::from_millis(100)).await;
    }
    Ok(false)
}

#[cfg(test)]
mod tests {
    use super::*;

    #[tokio::test(flavor = "multi_thread", worker_threads = 2)]
    async fn unused_connections_close() {
        let dir = tempfile::tempdir().expect("dir");
        let pool = open(&dir.path().join("rsvpd.db")).await.expect("open");
        let a = pool.acquire().await.expect("first connection");
        let b = pool.acquire().await.expect("second connection");
        assert!(pool.size() >= 2, "two connections in use: {}", pool.size());
        drop((a, b));
        // Closed at the first check after IDLE_CONNECTION unused, and the
        // checks come every IDLE_CONNECTION.
        tokio::time::sleep(IDLE_CONNECTION * 2 + Duration::from_secs(2)).await;
        assert_eq!(pool.size(), 0, "connections left open after a quiet spell");
        // And the pool opens one again when asked.
        let n: i64 = sqlx::query_scalar("SELECT 1")
            .fetch_one(&pool)
            .await
            .expect("query after the quiet spell");
        assert_eq!(n, 1);
    }
}
