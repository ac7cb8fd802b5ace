//! One mailbox reader (`storage::reader`): the lease goes to one process at a
//! time on both backends, and a reader whose lease was replaced records
//! nothing (the fence); on SQLite a second daemon is refused with the first
//! one's pid, and `run --once` beside a daemon leaves the mailbox to it but
//! still sends. The failover of several instances is in `failover`.

use std::time::Duration;

use rsvpd::app::App;
use rsvpd::config::Config;
use rsvpd::storage::{Fence, HEARTBEAT, READER_LOCK, ReaderRole, Reading, STALE, is_fenced};
use sqlx::Connection as _;

use crate::app::{Daemon, MAILBOX, Rsvpd, registration, servers, wait_answered};
use crate::support::{Dovecot, Postgres, SmtpSink, wait_until};

fn config(dir: &std::path::Path, database: &str) -> Config {
    let text = format!(
        "[mailbox]\nurl = \"maildir://inbox\"\n\
         [smtp]\nurl = \"file://sent\"\nfrom = \"anmeldung@example.org\"\n\
         [database]\nurl = \"{database}\"\n{}",
        crate::app::CONFERENCES
    );
    Config::parse(&dir.join("rsvpd.toml"), &text, &|_| None).expect("config")
}

/// Two processes' worth of stores on one database: the first gets the lease,
/// the second is told who holds it; once the first lost it (`lose`), the
/// second gets a new epoch, and the first's writes of inbound state — a mail,
/// the mailbox's progress — are refused and leave nothing behind.
async fn one_reader_and_the_fence(
    database: &str,
    lose: impl AsyncFnOnce(rsvpd::storage::ReaderLease),
) {
    let dir = tempfile::tempdir().expect("dir");
    let a = App::open(config(dir.path(), database))
        .await
        .expect("app a");
    let b = App::open(config(dir.path(), database))
        .await
        .expect("app b");
    let Reading::Granted(first) = a
        .store
        .try_read_mailbox(ReaderRole::Daemon, Duration::ZERO)
        .await
        .expect("try a")
    else {
        panic!("the first process gets the mailbox");
    };
    let old = first.fence();
    match b
        .store
        .try_read_mailbox(ReaderRole::Once, Duration::ZERO)
        .await
        .expect("try b")
    {
        Reading::Granted(_) => panic!("two readers at once"),
        Reading::Busy(holder) => {
            assert_eq!(holder.role, Some(ReaderRole::Daemon), "{holder}");
            assert!(
                holder.who.contains(&format!("pid {}", std::process::id())),
                "{holder}"
            );
        }
    }
    lose(first).await;
    let second = wait_until_granted(&b).await;
    assert!(
        matches!((old, second.fence()), (Fence::Epoch(o), Fence::Epoch(n)) if n > o),
        "{old:?} then {:?}",
        second.fence()
    );

    let raw = registration("Jan Kowalski", "jan@example.pl", "fenced-1@example.pl");
    let refused = a
        .process(&raw, "imap:INBOX:1:1", None, old)
        .await
        .expect_err("the replaced reader records nothing");
    assert!(is_fenced(&refused), "{refused:#}");
    assert!(a.store.inbound_records().await.expect("read").is_empty());
    assert!(a.store.outbox_items().await.expect("read").is_empty());
    let refused = a
        .store
        .set_mailbox_state("imap:INBOX", 1, 1, old)
        .await
        .expect_err("nor its progress");
    assert!(is_fenced(&refused), "{refused:#}");
    assert_eq!(
        a.store.mailbox_state("imap:INBOX").await.expect("read"),
        None
    );

    // The new reader records the same mail.
    b.process(&raw, "imap:INBOX:1:1", None, second.fence())
        .await
        .expect("the reader records");
    b.store
        .set_mailbox_state("imap:INBOX", 1, 1, second.fence())
        .await
        .expect("progress");
    assert_eq!(b.store.inbound_records().await.expect("read").len(), 1);
    second.release().await;
    a.store.close().await;
    b.store.close().await;
}

async fn wait_until_granted(app: &App) -> rsvpd::storage::ReaderLease {
    for _ in 0..50 {
        match app
            .store
            .try_read_mailbox(ReaderRole::Daemon, Duration::from_secs(1))
            .await
            .expect("try")
        {
            Reading::Granted(lease) => return lease,
            Reading::Busy(_) => tokio::time::sleep(Duration::from_millis(100)).await,
        }
    }
    panic!("the mailbox stayed taken");
}

fn runtime() -> tokio::runtime::Runtime {
    tokio::runtime::Builder::new_multi_thread()
        .worker_threads(2)
        .enable_all()
        .build()
        .expect("runtime")
}

#[test]
fn sqlite_one_reader_and_a_replaced_one_records_nothing() {
    let dir = tempfile::tempdir().expect("dir");
    let db = format!("sqlite://{}", dir.path().join("rsvpd.db").display());
    // On SQLite the lease ends with its process (here: when it is dropped).
    runtime().block_on(one_reader_and_the_fence(&db, async |lease| drop(lease)));
}

/// On PostgreSQL the lease is lost the hard way: its lock connection is
/// terminated, and the holder notices by its heartbeat.
#[test]
fn postgres_one_reader_and_a_replaced_one_records_nothing() {
    let pg = Postgres::start();
    let url = pg.url();
    runtime().block_on(one_reader_and_the_fence(&url, async |lease| {
        let ended = pg.psql(
            "SELECT pg_terminate_backend(pid) FROM pg_stat_activity WHERE application_name = 'rsvpd mailbox reader'",
        );
        assert_eq!(ended.trim(), "t", "one lock connection");
        tokio::time::timeout(HEARTBEAT * 3, lease.lost())
            .await
            .expect("the holder learns that it lost the lock");
        assert!(lease.is_lost());
    }));
}

/// A reader that stopped renewing its lease while its lock connection stays
/// open (frozen, or cut off behind a proxy that keeps the socket) is ended by
/// a standby, which then reads. The frozen holder is played by a plain
/// connection holding the lock, its lease renewed a minute ago.
#[test]
fn postgres_a_reader_that_stopped_renewing_is_ended() {
    let pg = Postgres::start();
    let url = pg.url();
    runtime().block_on(async {
        let dir = tempfile::tempdir().expect("dir");
        let app = App::open(config(dir.path(), &url)).await.expect("app");
        let mut frozen = sqlx::PgConnection::connect(&url).await.expect("connect");
        let pid: i32 = sqlx::query_scalar("SELECT pg_backend_pid()")
            .fetch_one(&mut frozen)
            .await
            .expect("pid");
        sqlx::query("SELECT pg_advisory_lock($1)")
            .bind(READER_LOCK)
            .execute(&mut frozen)
            .await
            .expect("lock");
        let renewed = |age: u64| {
            format!(
                "INSERT INTO mailbox_lease (id, epoch, holder, role, backend_pid, since, renewed_at)
                 VALUES (1, 7, 'rsvpd run, pid 1 on frozen', 'daemon', {pid}, now(), now() - interval '{age} seconds')
                 ON CONFLICT (id) DO UPDATE SET backend_pid = excluded.backend_pid, renewed_at = excluded.renewed_at"
            )
        };
        // Renewed 5 s ago: alive, left alone.
        pg.psql(&renewed(5));
        match app
            .store
            .try_read_mailbox(ReaderRole::Daemon, Duration::from_millis(300))
            .await
            .expect("try")
        {
            Reading::Busy(holder) => assert_eq!(holder.who, "rsvpd run, pid 1 on frozen"),
            Reading::Granted(_) => panic!("a live reader's lock was taken"),
        }
        // Renewed longer ago than STALE: ended, and the standby reads.
        pg.psql(&renewed(STALE.as_secs() + 40));
        let lease = wait_until_granted(&app).await;
        assert_eq!(lease.fence(), Fence::Epoch(8));
        let alive: Result<i32, _> = sqlx::query_scalar("SELECT 1").fetch_one(&mut frozen).await;
        assert!(alive.is_err(), "the frozen holder's connection was ended");
        lease.release().await;
        app.store.close().await;
    });
}

/// The daemon of `app`, once it reads the mailbox.
fn reading_daemon(app: &Rsvpd) -> Daemon {
    let daemon = app.spawn();
    wait_until(
        Duration::from_secs(20),
        "the daemon reading the mailbox",
        || {
            daemon
                .log()
                .contains("this instance reads the mailbox")
                .then_some(())
        },
        || daemon.log(),
    );
    daemon
}

/// A second daemon on one SQLite database says which process runs and exits
/// non-zero; the first keeps running.
#[test]
fn a_second_daemon_on_one_sqlite_database_is_refused() {
    let (dovecot, sink) = servers();
    let app = Rsvpd::new(&dovecot, &sink);
    let first = reading_daemon(&app);
    let second = app.output(&["run"]);
    let stderr = String::from_utf8_lossy(&second.stderr);
    assert_eq!(second.status.code(), Some(1), "{stderr}");
    assert!(
        stderr.contains("another rsvpd already runs on the database")
            && stderr.contains(&format!("pid {}", first.pid())),
        "{stderr}"
    );
    still_reads_and_stops(&dovecot, &sink, first);
}

/// `run --once` beside a running daemon leaves the mailbox to the daemon and
/// says so, and still sends what is due (the daemon's outbox worker sleeps:
/// mail queued by another process reaches it only at its next look).
#[test]
fn run_once_beside_a_daemon_leaves_the_mailbox_to_it() {
    let (dovecot, sink) = servers();
    let app = Rsvpd::new(&dovecot, &sink);
    let daemon = reading_daemon(&app);
    // Let the daemon's outbox worker go to sleep before mail is queued.
    std::thread::sleep(Duration::from_millis(500));
    app.ok(&["add", "miko-2027", "lea@example.com", "--name", "Lea Wolf"]);
    let once = app.output(&["run", "--once"]);
    let stderr = String::from_utf8_lossy(&once.stderr);
    assert!(once.status.success(), "{stderr}");
    assert!(
        stderr.contains("leaving it to that one")
            && stderr.contains(&format!("pid {}", daemon.pid())),
        "{stderr}"
    );
    assert_eq!(
        stderr.matches("mail sent").count(),
        1,
        "run --once sent the queued mail:\n{stderr}"
    );
    assert!(!stderr.contains("message handled"), "{stderr}");
    wait_answered(&sink, "lea@example.com", Duration::from_secs(5), || {
        stderr.to_string()
    });
    still_reads_and_stops(&dovecot, &sink, daemon);
}

/// `daemon` still reads the mailbox: a mail is answered; then it stops cleanly.
fn still_reads_and_stops(dovecot: &Dovecot, sink: &SmtpSink, mut daemon: Daemon) {
    dovecot.deliver(
        MAILBOX,
        &registration("Ayşe Yılmaz", "ayse@example.net", "still-1@example.net"),
    );
    wait_answered(sink, "ayse@example.net", Duration::from_secs(30), || {
        daemon.log()
    });
    daemon.stop_cleanly(libc::SIGTERM);
    assert!(daemon.log().contains("message handled"));
}
