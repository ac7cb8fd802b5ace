//! A fresh rsvpd per test: its own config, database and folders in a temp dir,
//! wired to a private Dovecot and smtp-sink, driven through the real binary.

use std::path::{Path, PathBuf};
use std::process::{Command, Output};
use std::time::{Duration, Instant};

use rsvpd::config::Config;
use rsvpd::storage::Store;
use tempfile::TempDir;

use crate::support::dovecot::Dovecot;
use crate::support::postgres::Postgres;
use crate::support::process::ServerProcess;
use crate::support::smtp_sink::SmtpSink;

/// The registration mailbox user at the test Dovecot.
pub const MAILBOX: &str = "anmeldung@example.org";

pub const CONFERENCES: &str = r#"
[[conference]]
id = "miko-2027"
title = "Vierte Migrationskonferenz"
aliases = ["Migrationskonferenz", "MiKo 2027"]
starts = "2099-10-15T13:30"
ends = "2099-10-15T19:30"
location = "Mosaiksaal, Neues Rathaus, Trammplatz 2, 30159 Hannover"
organizers = ["orga@example.org"]
workshops = [
  { id = "w1", title = "Teilhabe in Gremien" },
  { id = "w2", title = "Antidiskriminierung" },
  { id = "w3", title = "Bildung und Sprache" },
]

[[conference]]
id = "fishbowl-hainholz"
title = "Fishbowl-Diskussion Hainholz"
aliases = ["Fishbowl"]
starts = "2099-11-04T18:00"
ends = "2099-11-04T20:30"
location = "Kulturtreff Hainholz"
capacity = 3
"#;

/// Make `STORY::sqlite` and `STORY::postgres` tests of each `fn STORY(Backend)`:
/// the pipeline's story tests run against both storage backends.
macro_rules! on_both_backends {
    ($($story:ident),* $(,)?) => {$(
        mod $story {
            #[test]
            fn sqlite() {
                super::$story(crate::app::Backend::Sqlite)
            }
            #[test]
            fn postgres() {
                super::$story(crate::app::Backend::Postgres)
            }
        }
    )*};
}
pub(crate) use on_both_backends;

/// The storage backend an rsvpd under test uses.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Backend {
    /// `sqlite://rsvpd.db` in the test's temp dir.
    Sqlite,
    /// A private PostgreSQL server for this test (started by `Rsvpd::on`).
    Postgres,
}

pub struct Rsvpd {
    pub dir: TempDir,
    pub config: PathBuf,
    imap_password: String,
    /// The PostgreSQL server of a `Backend::Postgres` rsvpd; stopped when
    /// the `Rsvpd` is dropped (after the daemon handles, which tests drop first).
    pub postgres: Option<Postgres>,
}

pub fn binary() -> &'static str {
    env!("CARGO_BIN_EXE_rsvpd")
}

impl Rsvpd {
    /// rsvpd reading `MAILBOX` at `dovecot` over plain IMAP on loopback and
    /// sending through `sink`.
    pub fn new(dovecot: &Dovecot, sink: &SmtpSink) -> Rsvpd {
        Self::with_config(dovecot, sink, "", CONFERENCES)
    }

    /// Like `new`, on `backend`.
    pub fn on(backend: Backend, dovecot: &Dovecot, sink: &SmtpSink) -> Rsvpd {
        Self::with_config_on(backend, dovecot, sink, "", CONFERENCES)
    }

    /// Like `with_config`, on `backend`.
    pub fn with_config_on(
        backend: Backend,
        dovecot: &Dovecot,
        sink: &SmtpSink,
        mailbox_extra: &str,
        conferences: &str,
    ) -> Rsvpd {
        let app = Self::with_config(dovecot, sink, mailbox_extra, conferences);
        match backend {
            Backend::Sqlite => app,
            Backend::Postgres => app.on_postgres(),
        }
    }

    /// This rsvpd with its database moved to a private PostgreSQL server.
    pub fn on_postgres(mut self) -> Rsvpd {
        let pg = Postgres::start();
        let text = std::fs::read_to_string(&self.config).expect("read config");
        let text = text.replace(
            "url = \"sqlite://rsvpd.db\"",
            &format!("url = \"{}\"", pg.url()),
        );
        assert!(text.contains(&pg.url()), "the config names the database");
        std::fs::write(&self.config, text).expect("write config");
        self.postgres = Some(pg);
        self
    }

    /// Like `new`, with extra `[mailbox]` lines and other conferences.
    pub fn with_config(
        dovecot: &Dovecot,
        sink: &SmtpSink,
        mailbox_extra: &str,
        conferences: &str,
    ) -> Rsvpd {
        let url = format!(
            "imap://anmeldung%40example.org@127.0.0.1:{}?tls=none",
            dovecot.imap_port()
        );
        Self::with_mailbox_url(dovecot, sink, &url, mailbox_extra, conferences)
    }

    /// rsvpd with the mailbox at `url` (e.g. imaps:// with a `ca_file` in `mailbox_extra`).
    pub fn with_mailbox_url(
        dovecot: &Dovecot,
        sink: &SmtpSink,
        url: &str,
        mailbox_extra: &str,
        conferences: &str,
    ) -> Rsvpd {
        let dir = tempfile::Builder::new()
            .prefix("rsvpd-app.")
            .tempdir()
            .expect("temp dir");
        let config = dir.path().join("rsvpd.toml");
        let text = format!(
            r#"[mailbox]
url = "{url}"
poll_interval = "2s"
{mailbox_extra}

[smtp]
url = "smtp://127.0.0.1:{smtp}?tls=none"
from = "MiSO-Netzwerk Anmeldung <anmeldung@example.org>"
max_per_minute = 1000

[database]
url = "sqlite://rsvpd.db"
{conferences}"#,
            smtp = sink.port(),
        );
        std::fs::write(&config, text).expect("write config");
        Rsvpd {
            dir,
            config,
            imap_password: dovecot.password().to_string(),
            postgres: None,
        }
    }

    /// Replace the `[smtp] url` line (which points at the sink) by `lines`.
    pub fn set_smtp(&self, lines: &str) {
        let text = std::fs::read_to_string(&self.config).expect("config");
        let start = text
            .find("url = \"smtp://127.0.0.1:")
            .expect("the sink's url line");
        let end = start + text[start..].find('\n').expect("end of line");
        let text = format!("{}{lines}{}", &text[..start], &text[end..]);
        std::fs::write(&self.config, text).expect("write config");
    }

    pub fn db_path(&self) -> PathBuf {
        self.dir.path().join("rsvpd.db")
    }

    pub fn command(&self) -> Command {
        let mut c = Command::new(binary());
        c.arg("--config")
            .arg(&self.config)
            .env("RSVPD_IMAP_PASSWORD", &self.imap_password)
            .env_remove("RSVPD_SMTP_PASSWORD")
            .env("RSVPD_LOG", "info");
        c
    }

    /// rsvpd as if the clock were `offset` ahead (e.g. "+2h"), through libfaketime.
    pub fn command_at(&self, offset: &str) -> Command {
        let mut c = self.command();
        fake_clock(&mut c, offset);
        c
    }

    /// `run --once` as if the clock were `offset` ahead.
    pub fn run_once_at(&self, offset: &str) -> String {
        let out = self
            .command_at(offset)
            .args(["run", "--once"])
            .output()
            .expect("run rsvpd");
        assert!(
            out.status.success(),
            "rsvpd run --once at {offset} failed with {}:\n{}",
            out.status,
            String::from_utf8_lossy(&out.stderr)
        );
        String::from_utf8_lossy(&out.stdout).into_owned()
    }

    /// Run rsvpd with `args`; returns its output whatever the exit code.
    pub fn output(&self, args: &[&str]) -> Output {
        self.command().args(args).output().expect("run rsvpd")
    }

    /// Run rsvpd with `args` and insist on success; returns stdout.
    pub fn ok(&self, args: &[&str]) -> String {
        let out = self.output(args);
        assert!(
            out.status.success(),
            "rsvpd {args:?} failed with {}:\nstdout:\n{}\nstderr:\n{}",
            out.status,
            String::from_utf8_lossy(&out.stdout),
            String::from_utf8_lossy(&out.stderr)
        );
        String::from_utf8_lossy(&out.stdout).into_owned()
    }

    pub fn run_once(&self) -> String {
        self.ok(&["run", "--once"])
    }

    pub fn attendees(&self, conference: &str, all: bool) -> Vec<serde_json::Value> {
        let mut args = vec!["attendees", conference, "--format", "json"];
        if all {
            args.push("--all");
        }
        let out = self.ok(&args);
        serde_json::from_str(&out)
            .unwrap_or_else(|e| panic!("attendees JSON does not parse ({e}):\n{out}"))
    }

    pub fn review(&self) -> Vec<serde_json::Value> {
        let out = self.ok(&["review", "--format", "json"]);
        serde_json::from_str(&out)
            .unwrap_or_else(|e| panic!("review JSON does not parse ({e}):\n{out}"))
    }

    pub fn outbox(&self) -> Vec<serde_json::Value> {
        let out = self.ok(&["outbox", "--format", "json"]);
        serde_json::from_str(&out)
            .unwrap_or_else(|e| panic!("outbox JSON does not parse ({e}):\n{out}"))
    }

    /// (Message-ID, outcome, reason) of every inbound message, in arrival order.
    pub fn inbound(&self) -> Vec<(String, String, Option<String>)> {
        self.db(async |s| s.inbound_records().await)
            .into_iter()
            .map(|r| (r.message_id, r.outcome.to_string(), r.reason))
            .collect()
    }

    /// Run `f` on this rsvpd's database through rsvpd's own storage layer
    /// (whichever backend the config names), as the CLI would open it.
    pub fn db<T>(&self, f: impl AsyncFnOnce(&Store) -> anyhow::Result<T>) -> T {
        let text = std::fs::read_to_string(&self.config).expect("read config");
        let password = self.imap_password.clone();
        let config = Config::parse(&self.config, &text, &|name| {
            (name == "RSVPD_IMAP_PASSWORD").then(|| password.clone())
        })
        .expect("config parses");
        let runtime = tokio::runtime::Builder::new_current_thread()
            .enable_all()
            .build()
            .expect("runtime");
        runtime.block_on(async {
            let store = Store::open(&config.database)
                .await
                .expect("open the database");
            let out = f(&store).await.expect("read the database");
            store.close().await;
            out
        })
    }

    /// The daemon (`run`), started in the background.
    pub fn spawn(&self) -> Daemon {
        let mut c = self.command();
        c.arg("run");
        self.start_daemon(c)
    }

    /// `command` (rsvpd with its arguments) as a daemon whose output goes to
    /// a log in the app's dir; stopped with its process group when dropped.
    pub fn start_daemon(&self, command: Command) -> Daemon {
        static N: std::sync::atomic::AtomicUsize = std::sync::atomic::AtomicUsize::new(0);
        let n = N.fetch_add(1, std::sync::atomic::Ordering::Relaxed);
        let log = self.dir.path().join(format!("daemon-{n}.log"));
        Daemon::start(command, log, self.dir.path())
    }
}

/// The clock of `faketime -f SPEC` ("+2h", "@2027-10-14 06:59:56") for rsvpd
/// itself: libfaketime preloaded into rsvpd, with tokio's monotonic clock left
/// real. Not the `faketime` wrapper: it forks rsvpd and waits, so a signal or a
/// kill meant for the daemon reached the wrapper and left rsvpd orphaned.
pub fn fake_clock(c: &mut Command, spec: &str) {
    c.env("LD_PRELOAD", libfaketime())
        .env("FAKETIME", spec)
        .env("FAKETIME_DONT_FAKE_MONOTONIC", "1");
}

fn libfaketime() -> PathBuf {
    let found = std::fs::read_dir("/usr/lib").ok().and_then(|dirs| {
        dirs.flatten()
            .map(|d| d.path().join("faketime/libfaketime.so.1"))
            .find(|p| p.is_file())
    });
    found.unwrap_or_else(|| {
        panic!("libfaketime.so.1 not found under /usr/lib/*/faketime: install faketime: run scripts/test")
    })
}

/// A running `rsvpd run`. It runs in its own process group with the
/// harness's watchdog (`support::process`): dropped — also while a failed
/// test unwinds — it is killed and reaped, and if the test process itself
/// dies, the watchdog kills it. No test leaves a daemon behind.
pub struct Daemon {
    process: ServerProcess,
    pub log: PathBuf,
}

impl Daemon {
    fn start(command: Command, log: PathBuf, scratch: &Path) -> Daemon {
        let process = ServerProcess::spawn("rsvpd", command, &log, scratch);
        Daemon { process, log }
    }

    pub fn pid(&self) -> u32 {
        self.process.pid()
    }

    pub fn log(&self) -> String {
        std::fs::read_to_string(&self.log).unwrap_or_default()
    }

    pub fn signal(&self, sig: i32) {
        // SAFETY: kill(2) on our own child's pid, not reaped while we hold it.
        let rc = unsafe { libc::kill(self.pid() as i32, sig) };
        assert_eq!(rc, 0, "kill({sig}) failed");
    }

    /// Wait for the exit at most `limit`; None when it is still running.
    pub fn wait_exit(&mut self, limit: Duration) -> Option<std::process::ExitStatus> {
        let start = Instant::now();
        while start.elapsed() < limit {
            if let Some(status) = self.process.exit_status() {
                return Some(status);
            }
            std::thread::sleep(Duration::from_millis(20));
        }
        None
    }

    /// Send `sig` (SIGTERM, SIGINT) and insist on exit 0 within 10 s.
    pub fn stop_cleanly(&mut self, sig: i32) {
        self.signal(sig);
        let status = self.wait_exit(Duration::from_secs(10)).unwrap_or_else(|| {
            panic!(
                "rsvpd did not stop within 10 s of signal {sig}:\n{}",
                self.log()
            )
        });
        assert!(status.success(), "exit status {status}:\n{}", self.log());
    }

    /// SIGKILL it (and anything in its group) and reap it.
    pub fn kill(&mut self) {
        self.process.kill();
    }
}

/// A registration mail as Thunderbird would write it.
pub fn mail(
    from_name: &str,
    from: &str,
    to: &str,
    subject: &str,
    message_id: &str,
    body: &str,
) -> Vec<u8> {
    format!(
        "From: {from_name} <{from}>\r\nTo: {to}\r\nSubject: {subject}\r\nDate: Mon, 6 Sep 2027 09:14:02 +0200\r\n\
         Message-ID: <{message_id}>\r\nMIME-Version: 1.0\r\nContent-Type: text/plain; charset=UTF-8\r\n\
         Content-Transfer-Encoding: 8bit\r\nUser-Agent: Mozilla Thunderbird\r\n\r\n{body}\r\n"
    )
    .into_bytes()
}

/// A private Dovecot and smtp-sink for one test.
pub fn servers() -> (Dovecot, SmtpSink) {
    (Dovecot::start(), SmtpSink::start())
}

/// A plain registration for the Migrationskonferenz.
pub fn registration(name: &str, addr: &str, id: &str) -> Vec<u8> {
    mail(
        name,
        addr,
        MAILBOX,
        "Anmeldung zur Migrationskonferenz",
        id,
        "Sehr geehrte Damen und Herren,\r\n\r\nhiermit melde ich mich zur Migrationskonferenz an.\r\n\r\nMit freundlichen Grüßen\r\n",
    )
}

/// A question that is no registration: it goes to review.
pub fn question(id: &str) -> Vec<u8> {
    mail(
        "Peter Schmidt",
        "p.schmidt@example.com",
        MAILBOX,
        "Frage",
        id,
        "Hallo, gibt es bei Ihnen Parkplätze?",
    )
}

/// Wait at most `limit` until smtp-sink got a mail for `who`.
pub fn wait_answered(sink: &SmtpSink, who: &str, limit: Duration, log: impl Fn() -> String) {
    crate::support::wait_until(
        limit,
        &format!("a mail to {who}"),
        || {
            sink.messages()
                .iter()
                .any(|m| m.rcpt_to == [who])
                .then_some(())
        },
        log,
    );
}

/// Dovecot's submission service as a real SMTP server with TLS and login,
/// relaying what it accepts to smtp-sink: (STARTTLS port, implicit TLS port).
pub fn submission(sink: &SmtpSink) -> (Dovecot, u16, u16) {
    let [starttls, implicit] = crate::support::free_ports::<2>();
    let dovecot = Dovecot::start_with(&format!(
        "protocols = imap lmtp submission\nhostname = localhost\n\
         submission_relay_host = 127.0.0.1\nsubmission_relay_port = {relay}\n\
         submission_relay_trusted = yes\nsubmission_relay_ssl = no\n\
         service submission-login {{\n  inet_listener submission {{\n    address = 127.0.0.1\n    port = {starttls}\n  }}\n\
         inet_listener submissions {{\n    address = 127.0.0.1\n    port = {implicit}\n    ssl = yes\n  }}\n}}\n",
        relay = sink.port()
    ));
    crate::support::wait_until(
        Duration::from_secs(20),
        "Dovecot submission listening",
        || {
            (crate::support::is_listening(starttls) && crate::support::is_listening(implicit))
                .then_some(())
        },
        || dovecot.log(),
    );
    (dovecot, starttls, implicit)
}
