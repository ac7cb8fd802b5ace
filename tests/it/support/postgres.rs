//! A private PostgreSQL server for one test (Debian's `postgresql`).
//!
//! `initdb` runs as the `postgres` user into a temp dir (PostgreSQL refuses to
//! run as root), with trust authentication on loopback; the server listens on
//! a free loopback port (no Unix socket outside the temp dir) and writes its
//! log to a file there. It runs as a [`ServerProcess`] — `postgres` itself,
//! not `pg_ctl`, so the harness's process group and watchdog stop it when the
//! handle drops, during a panic's unwinding, and when the test process is
//! killed. `stop()` is a clean fast shutdown. Tests get a fresh database
//! `rsvpd` and its URL.

use std::os::unix::process::CommandExt as _;
use std::path::PathBuf;
use std::process::Command;
use std::time::{Duration, Instant};

use tempfile::TempDir;

use super::process::ServerProcess;
use super::{HOST, READY_TIMEOUT, free_port};

pub struct Postgres {
    dir: TempDir,
    process: Option<ServerProcess>,
    port: u16,
    bin: PathBuf,
    uid: u32,
    gid: u32,
    /// fsync and synchronous commit on, as in production (the benchmark);
    /// tests run without them.
    durable: bool,
}

/// The directory of the newest installed PostgreSQL's programs.
fn bin_dir() -> PathBuf {
    let mut versions: Vec<u32> = std::fs::read_dir("/usr/lib/postgresql")
        .map(|d| {
            d.filter_map(|e| e.ok()?.file_name().to_str()?.parse().ok())
                .collect()
        })
        .unwrap_or_default();
    versions.sort_unstable();
    let Some(v) = versions.last() else {
        panic!(
            "PostgreSQL is not installed (no /usr/lib/postgresql/*): install `postgresql`: run scripts/test"
        );
    };
    PathBuf::from(format!("/usr/lib/postgresql/{v}/bin"))
}

/// uid and gid of the `postgres` user.
fn postgres_user() -> (u32, u32) {
    // SAFETY: getpwnam with a NUL-terminated name; the result is read at once.
    let pw = unsafe { libc::getpwnam(c"postgres".as_ptr()) };
    if pw.is_null() {
        panic!("there is no `postgres` user: install `postgresql`: run scripts/test");
    }
    // SAFETY: non-null pointer returned by getpwnam.
    unsafe { ((*pw).pw_uid, (*pw).pw_gid) }
}

impl Postgres {
    pub fn start() -> Postgres {
        Postgres::start_with(false)
    }

    /// A server that syncs its commits to disk as a production one does, for
    /// the benchmark (the tests' servers do not: fsync only costs there).
    pub fn start_durable() -> Postgres {
        Postgres::start_with(true)
    }

    fn start_with(durable: bool) -> Postgres {
        let bin = bin_dir();
        let (uid, gid) = postgres_user();
        let dir = tempfile::Builder::new()
            .prefix("rsvpd-pg.")
            .tempdir()
            .expect("temp dir");
        std::os::unix::fs::chown(dir.path(), Some(uid), Some(gid)).expect("chown the temp dir");
        let data = dir.path().join("data");
        let out = Command::new(bin.join("initdb"))
            .args([
                "--auth=trust",
                "--username=postgres",
                "--encoding=UTF8",
                "--locale=C",
                "--no-sync",
                "-D",
            ])
            .arg(&data)
            .uid(uid)
            .gid(gid)
            .output()
            .expect("run initdb");
        assert!(
            out.status.success(),
            "initdb failed: {}{}",
            String::from_utf8_lossy(&out.stdout),
            String::from_utf8_lossy(&out.stderr)
        );
        let mut pg = Postgres {
            dir,
            process: None,
            port: 0,
            bin,
            uid,
            gid,
            durable,
        };
        let mut failures = Vec::new();
        for _ in 0..5 {
            match pg.spawn(free_port()) {
                Ok(()) => {
                    pg.psql("CREATE DATABASE rsvpd");
                    return pg;
                }
                Err(e) => failures.push(e),
            }
        }
        panic!("PostgreSQL did not start: {failures:#?}");
    }

    fn spawn(&mut self, port: u16) -> Result<(), String> {
        let data = self.dir.path().join("data");
        let mut command = Command::new(self.bin.join("postgres"));
        command
            .arg("-D")
            .arg(&data)
            .args(["-p", &port.to_string(), "-h", HOST, "-k"])
            .arg(self.dir.path())
            .uid(self.uid)
            .gid(self.gid);
        if !self.durable {
            // Tests need no durability across a machine crash; fsync only costs.
            command.args([
                "-c",
                "fsync=off",
                "-c",
                "synchronous_commit=off",
                "-c",
                "full_page_writes=off",
            ]);
        }
        let log = self.dir.path().join("postgres.log");
        let mut process = ServerProcess::spawn("postgres", command, &log, self.dir.path());
        let deadline = Instant::now() + READY_TIMEOUT;
        loop {
            if let Some(status) = process.exit_status() {
                let output = process.output();
                process.kill();
                return Err(format!(
                    "postgres on port {port} exited ({status}): {output}"
                ));
            }
            let ready = Command::new(self.bin.join("pg_isready"))
                .args(["-q", "-h", HOST, "-p", &port.to_string(), "-U", "postgres"])
                .status()
                .is_ok_and(|s| s.success());
            if ready {
                self.process = Some(process);
                self.port = port;
                return Ok(());
            }
            if Instant::now() >= deadline {
                let output = process.output();
                process.kill();
                return Err(format!(
                    "postgres on port {port} not ready within {READY_TIMEOUT:?}: {output}"
                ));
            }
            std::thread::sleep(Duration::from_millis(50));
        }
    }

    pub fn port(&self) -> u16 {
        self.port
    }

    /// The URL of the test database (trust authentication: no password).
    pub fn url(&self) -> String {
        format!("postgres://postgres@{HOST}:{}/rsvpd", self.port)
    }

    /// Run `sql` in the test database as the superuser; its output (unaligned).
    pub fn psql(&self, sql: &str) -> String {
        let db = if sql.starts_with("CREATE DATABASE") {
            "postgres"
        } else {
            "rsvpd"
        };
        let out = Command::new(self.bin.join("psql"))
            .args([
                "-X",
                "-q",
                "-A",
                "-t",
                "-v",
                "ON_ERROR_STOP=1",
                "-h",
                HOST,
                "-p",
            ])
            .arg(self.port.to_string())
            .args(["-U", "postgres", "-d", db, "-c", sql])
            .output()
            .expect("run psql");
        assert!(
            out.status.success(),
            "psql {sql:?} failed: {}",
            String::from_utf8_lossy(&out.stderr)
        );
        String::from_utf8_lossy(&out.stdout).into_owned()
    }

    /// The server's log so far.
    pub fn log(&self) -> String {
        std::fs::read_to_string(self.dir.path().join("postgres.log")).unwrap_or_default()
    }

    /// A clean, fast shutdown (SIGTERM is PostgreSQL's "smart" mode; the
    /// harness's grace then kills it if a client hangs on).
    pub fn stop(&mut self) {
        if let Some(mut p) = self.process.take() {
            p.stop();
        }
    }
}

impl Drop for Postgres {
    fn drop(&mut self) {
        if let Some(mut p) = self.process.take() {
            p.kill();
        }
    }
}
