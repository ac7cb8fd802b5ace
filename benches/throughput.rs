//! Throughput and memory of rsvpd against the physical limit: what Dovecot and
//! smtp-sink do on their own with the same mails.
//!
//! `cargo bench --bench throughput` (or `scripts/bench`) runs N mails (default
//! 2000, `RSVPD_BENCH_MAILS`) through three measurements:
//!
//! 1. IMAP limit: a bare client FETCHes every mail from Dovecot and MOVEs it,
//!    one by one — the IMAP work rsvpd does, without understanding or storing.
//! 2. SMTP limit: Postfix's smtp-source feeds smtp-sink N mails (the server's
//!    own limit), and a bare lettre client sends N answers of the same size over
//!    one pooled connection, one after the other (the client library's limit:
//!    lettre does not set TCP_NODELAY, so each mail waits ~40 ms for a delayed ACK).
//! 3. rsvpd: `rsvpd run --once` on the same N mails in Dovecot, answering
//!    through smtp-sink; wall time and peak RSS of the process.
//!
//! Under `cargo test` (no `--bench`) it runs with 20 mails as a smoke test, so
//! the benchmark cannot rot; no figure is asserted — timing is not a test.

// Shared with the integration tests; this bench uses only part of it.
#[allow(unused_imports)]
#[path = "../tests/it/support/mod.rs"]
mod support;

use std::time::{Duration, Instant};

use lettre::Transport as _;
use support::dovecot::Dovecot;
use support::smtp_sink::SmtpSink;

const MAILBOX: &str = "anmeldung@example.org";

fn registration(i: usize) -> Vec<u8> {
    format!(
        "From: Person {i} <p{i}@example.com>\r\nTo: {MAILBOX}\r\nSubject: Anmeldung zur Migrationskonferenz\r\n\
         Date: Mon, 6 Sep 2027 09:14:02 +0200\r\nMessage-ID: <bench-{i}@example.com>\r\nMIME-Version: 1.0\r\n\
         Content-Type: text/plain; charset=UTF-8\r\nContent-Transfer-Encoding: 8bit\r\n\r\n\
         Sehr geehrte Damen und Herren,\r\n\r\nhiermit melde ich mich zur Migrationskonferenz an und möchte\r\n\
         am Workshop 2 teilnehmen. Ich komme mit einer Begleitperson.\r\n\r\nMit freundlichen Grüßen\r\nPerson {i}\r\n\
         Verein Nummer {i} e.V.\r\n"
    )
    .into_bytes()
}

fn deliver_all(dovecot: &Dovecot, n: usize) {
    for i in 0..n {
        dovecot.deliver(MAILBOX, &registration(i));
    }
}

/// The IMAP work alone: FETCH each mail and MOVE it, as rsvpd does.
fn imap_limit(n: usize) -> Duration {
    let dovecot = Dovecot::start();
    deliver_all(&dovecot, n);
    let mut s = dovecot.imap_session(MAILBOX);
    s.create("rsvpd.processed")
        .unwrap_or_else(|e| panic!("CREATE: {e}"));
    let start = Instant::now();
    s.select("INBOX").unwrap_or_else(|e| panic!("SELECT: {e}"));
    let list = s
        .uid_fetch("1:*", "(UID FLAGS RFC822.SIZE)")
        .unwrap_or_else(|e| panic!("FETCH: {e}"));
    let uids: Vec<u32> = list.iter().filter_map(|f| f.uid).collect();
    assert_eq!(uids.len(), n);
    for uid in uids {
        let f = s
            .uid_fetch(uid.to_string(), "(UID BODY.PEEK[])")
            .unwrap_or_else(|e| panic!("FETCH: {e}"));
        assert!(f.iter().any(|m| m.body().is_some()));
        s.uid_mv(uid.to_string(), "rsvpd.processed")
            .unwrap_or_else(|e| panic!("MOVE: {e}"));
    }
    start.elapsed()
}

/// smtp-sink's own limit: Postfix's `smtp-source` sends N mails of 3 KB over
/// one session (the fastest client there is).
fn smtp_sink_limit(n: usize) -> Duration {
    let sink = SmtpSink::start();
    let source = support::find_binary("smtp-source", "postfix");
    let start = Instant::now();
    let status = std::process::Command::new(source)
        .args(["-s", "1", "-m", &n.to_string(), "-l", "3000"])
        .args(["-f", "anmeldung@example.org", "-t", "p@example.com"])
        .arg(format!("127.0.0.1:{}", sink.port()))
        .status()
        .expect("smtp-source");
    let elapsed = start.elapsed();
    assert!(status.success());
    sink.wait_for(n, Duration::from_secs(120));
    elapsed
}

/// The SMTP work through the client library rsvpd uses (lettre), one mail
/// after the other over a pooled connection, as the outbox worker sends.
fn smtp_limit(n: usize) -> Duration {
    let sink = SmtpSink::start();
    let body = "x".repeat(3000);
    let transport = lettre::SmtpTransport::builder_dangerous("127.0.0.1")
        .port(sink.port())
        .build();
    let start = Instant::now();
    for i in 0..n {
        let m = lettre::Message::builder()
            .from("anmeldung@example.org".parse().expect("from"))
            .to(format!("p{i}@example.com").parse().expect("to"))
            .subject("Anmeldebestätigung")
            .body(body.clone())
            .expect("message");
        transport.send(&m).unwrap_or_else(|e| panic!("send: {e}"));
    }
    let elapsed = start.elapsed();
    sink.wait_for(n, Duration::from_secs(120));
    elapsed
}

/// rsvpd end to end; returns wall time and peak RSS in KiB.
fn rsvpd(n: usize) -> (Duration, i64) {
    let dovecot = Dovecot::start();
    let sink = SmtpSink::start();
    deliver_all(&dovecot, n);
    let dir = tempfile::tempdir().expect("dir");
    let config = dir.path().join("rsvpd.toml");
    std::fs::write(
        &config,
        format!(
            "[mailbox]\nurl = \"imap://anmeldung%40example.org@127.0.0.1:{}?tls=none\"\n\
             [smtp]\nurl = \"smtp://127.0.0.1:{}?tls=none\"\nfrom = \"Anmeldung <anmeldung@example.org>\"\n\
             max_per_minute = 1000000\n[defaults]\nanswers_per_day = 1000000\n\
             [database]\nurl = \"sqlite://rsvpd.db\"\n\
             [[conference]]\nid = \"miko-2027\"\ntitle = \"Vierte Migrationskonferenz\"\n\
             aliases = [\"Migrationskonferenz\"]\nstarts = \"2099-10-15T13:30\"\nends = \"2099-10-15T19:30\"\n\
             workshops = [{{ id = \"w1\", title = \"Teilhabe\" }}, {{ id = \"w2\", title = \"Antidiskriminierung\" }}]\n",
            dovecot.imap_port(),
            sink.port()
        ),
    )
    .expect("config");
    let start = Instant::now();
    let status = std::process::Command::new(env!("CARGO_BIN_EXE_rsvpd"))
        .arg("--config")
        .arg(&config)
        .args(["run", "--once"])
        .env("RSVPD_IMAP_PASSWORD", dovecot.password())
        .env("RSVPD_LOG", "warn")
        .status()
        .expect("rsvpd");
    let elapsed = start.elapsed();
    assert!(status.success());
    assert_eq!(sink.wait_for(n, Duration::from_secs(120)).len(), n);
    // SAFETY: getrusage only fills the struct we pass.
    let rss = unsafe {
        let mut usage: libc::rusage = std::mem::zeroed();
        libc::getrusage(libc::RUSAGE_CHILDREN, &mut usage);
        usage.ru_maxrss
    };
    (elapsed, rss)
}

fn per_second(n: usize, d: Duration) -> f64 {
    n as f64 / d.as_secs_f64().max(1e-9)
}

fn main() {
    let full = std::env::args().any(|a| a == "--bench");
    let n = if full {
        std::env::var("RSVPD_BENCH_MAILS")
            .ok()
            .and_then(|v| v.parse().ok())
            .unwrap_or(2000)
    } else {
        20
    };
    let imap = imap_limit(n);
    let sink_alone = smtp_sink_limit(n);
    let smtp = smtp_limit(n);
    let (ours, rss) = rsvpd(n);
    let limit = imap + smtp;
    println!("throughput with {n} registration mails");
    println!(
        "  Dovecot alone (FETCH + MOVE each): {:>8.0} mails/s  ({imap:.2?})",
        per_second(n, imap)
    );
    println!(
        "  smtp-sink fed by smtp-source:      {:>8.0} mails/s  ({sink_alone:.2?})",
        per_second(n, sink_alone)
    );
    println!(
        "  smtp-sink fed by lettre, serially: {:>8.0} mails/s  ({smtp:.2?})",
        per_second(n, smtp)
    );
    println!(
        "  IMAP + lettre in sequence (limit): {:>8.0} mails/s  ({limit:.2?})",
        per_second(n, limit)
    );
    println!(
        "  rsvpd run --once, end to end:      {:>8.0} mails/s  ({ours:.2?}), {:.0}% of the limit, peak RSS {} MiB",
        per_second(n, ours),
        100.0 * limit.as_secs_f64() / ours.as_secs_f64().max(1e-9),
        rss / 1024
    );
}
