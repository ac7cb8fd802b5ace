//! Nothing lost: hostile mail, loops and a locked database, against real servers.

use std::process::{Command, Stdio};
use std::time::Duration;

use crate::app::{CONFERENCES, MAILBOX, Rsvpd, mail};
use crate::support::dovecot::Dovecot;
use crate::support::smtp_sink::SmtpSink;

const WAIT: Duration = Duration::from_secs(30);

/// A registration with an attachment of `size` bytes (base64 in the mail).
fn with_attachment(size: usize, id: &str) -> Vec<u8> {
    let mut m = format!(
        "From: Big Sender <big@example.com>\r\nTo: {MAILBOX}\r\nSubject: Anmeldung Migrationskonferenz\r\n\
         Message-ID: <{id}>\r\nMIME-Version: 1.0\r\nContent-Type: multipart/mixed; boundary=\"b\"\r\n\r\n\
         --b\r\nContent-Type: text/plain; charset=utf-8\r\n\r\nHiermit melde ich mich an.\r\n\
         --b\r\nContent-Type: application/pdf; name=\"flyer.pdf\"\r\nContent-Transfer-Encoding: base64\r\n\r\n"
    )
    .into_bytes();
    let line = b"QUJDREVGR0hJSktMTU5PUFFSU1RVVldYWVphYmNkZWZnaGlqa2xtbm9wcXJzdHV2d3h5ejAx\r\n";
    while m.len() < size {
        m.extend_from_slice(line);
    }
    m.extend_from_slice(b"--b--\r\n");
    m
}

#[test]
fn a_30_mb_attachment_goes_to_review_unread_and_the_rest_goes_on() {
    let dovecot = Dovecot::start();
    let sink = SmtpSink::start();
    let app = Rsvpd::new(&dovecot, &sink);
    dovecot.deliver(
        MAILBOX,
        &with_attachment(30 * 1024 * 1024, "big-1@example.com"),
    );
    dovecot.deliver(
        MAILBOX,
        &mail(
            "Ana Lima",
            "ana@example.com",
            MAILBOX,
            "Anmeldung Migrationskonferenz",
            "small-1@example.com",
            "Ich melde mich an.",
        ),
    );
    app.run_once();

    let review = app.review();
    assert_eq!(review.len(), 1, "{review:#?} {:?}", app.inbound());
    assert_eq!(review[0]["message_id"], "big-1@example.com");
    let reason = review[0]["reason"].as_str().unwrap_or_default();
    assert!(reason.contains("max_message_size"), "{reason}");
    assert_eq!(
        dovecot.list_folder(MAILBOX, "rsvpd.review").len(),
        1,
        "kept, not deleted"
    );
    // The small mail behind it was handled normally.
    assert_eq!(app.attendees("miko-2027", false).len(), 1);
    assert_eq!(
        sink.wait_for(1, WAIT)[0].rcpt_to,
        vec!["ana@example.com".to_string()]
    );
}

#[test]
fn a_configured_size_limit_applies_to_smaller_mail_too() {
    let dovecot = Dovecot::start();
    let sink = SmtpSink::start();
    let app = Rsvpd::with_config(&dovecot, &sink, "max_message_size = \"100KB\"", CONFERENCES);
    dovecot.deliver(MAILBOX, &with_attachment(200 * 1024, "mid-1@example.com"));
    app.run_once();
    assert_eq!(app.review().len(), 1);
    assert!(app.attendees("miko-2027", true).is_empty());
}

/// Regression: a display name with CR/LF must not add a `Bcc:` (or any header) to our answer.
#[test]
fn header_injection_in_the_name_does_not_reach_our_answer() {
    let dovecot = Dovecot::start();
    let sink = SmtpSink::start();
    let app = Rsvpd::new(&dovecot, &sink);
    let raw = "From: =?utf-8?q?Eve=0D=0ABcc=3A_victim=40example=2Eorg?= <eve@example.com>\r\n\
               To: anmeldung@example.org\r\nSubject: Anmeldung Migrationskonferenz\r\n\
               Message-ID: <inject-1@example.com>\r\nContent-Type: text/plain; charset=utf-8\r\n\r\n\
               Ich melde mich an.\r\n";
    dovecot.deliver(MAILBOX, raw.as_bytes());
    app.run_once();
    // Issue 11: a display name that carries CR/LF is no person writing: it
    // goes to review, nobody is recorded and nothing is answered.
    assert!(app.attendees("miko-2027", true).is_empty());
    assert!(app.outbox().is_empty(), "{:#?}", app.outbox());
    let review = app.review();
    assert_eq!(review.len(), 1, "{review:#?}");
    let reason = review[0]["reason"].as_str().unwrap_or_default();
    assert!(reason.contains("display name"), "{reason}");
    assert!(
        !reason.contains('\n') && !reason.contains('\r'),
        "{reason:?}"
    );
    drop(sink);
}

/// An address that keeps writing (a robot, or a person pressing send ten times)
/// gets at most the daily cap of automatic answers.
#[test]
fn answers_to_one_address_are_capped_per_day() {
    let dovecot = Dovecot::start();
    let sink = SmtpSink::start();
    let app = Rsvpd::new(&dovecot, &sink);
    for i in 0..12 {
        dovecot.deliver(
            MAILBOX,
            &mail(
                "Robo Responder",
                "robot@example.com",
                MAILBOX,
                "Anmeldung Migrationskonferenz",
                &format!("loop-{i}@example.com"),
                "Hiermit melde ich mich zur Migrationskonferenz an.",
            ),
        );
    }
    app.run_once();
    assert_eq!(
        app.attendees("miko-2027", false).len(),
        1,
        "one person, updated"
    );
    assert_eq!(app.outbox().len(), 5, "the daily cap");
    assert_eq!(
        app.inbound().len(),
        12,
        "every mail recorded with its outcome"
    );
    assert_eq!(dovecot.list_folder(MAILBOX, "rsvpd.processed").len(), 12);
}

/// While another process holds the database's write lock, nothing is marked
/// processed whose result was not stored; afterwards the mail is handled.
#[test]
fn a_locked_database_fails_clearly_and_loses_nothing() {
    let dovecot = Dovecot::start();
    let sink = SmtpSink::start();
    let app = Rsvpd::new(&dovecot, &sink);
    // Create the database first.
    app.ok(&["conferences"]);
    dovecot.deliver(
        MAILBOX,
        &mail(
            "Lea Wolf",
            "lea@example.com",
            MAILBOX,
            "Anmeldung Migrationskonferenz",
            "locked-1@example.com",
            "Ich melde mich an.",
        ),
    );
    let db = app.db_path();
    let mut locker = crate::support::process::KillOnDrop(
        Command::new("python3")
            .arg("-c")
            .arg(
                "import sqlite3, sys, time\n\
             c = sqlite3.connect(sys.argv[1], isolation_level=None)\n\
             c.execute('BEGIN EXCLUSIVE')\n\
             print('locked', flush=True)\n\
             time.sleep(60)\n",
            )
            .arg(&db)
            .stdout(Stdio::piped())
            .spawn()
            .expect("python3"),
    );
    {
        use std::io::BufRead;
        let mut line = String::new();
        let stdout = locker.stdout.as_mut().expect("stdout");
        std::io::BufReader::new(stdout)
            .read_line(&mut line)
            .expect("read");
        assert_eq!(line.trim(), "locked");
    }
    let out = app.output(&["run", "--once"]);
    let _ = locker.kill();
    let _ = locker.wait();
    assert!(
        !out.status.success(),
        "must fail while the database is locked"
    );
    let err = String::from_utf8_lossy(&out.stderr);
    assert!(err.contains("locked"), "{err}");
    assert_eq!(
        dovecot.list_folder(MAILBOX, "INBOX").len(),
        1,
        "the mail stays in the inbox"
    );

    app.run_once();
    assert_eq!(app.attendees("miko-2027", false).len(), 1);
    assert!(dovecot.list_folder(MAILBOX, "INBOX").is_empty());
}

fn hostile_mails() -> Vec<(&'static str, Vec<u8>)> {
    let head = |id: &str| {
        format!(
            "From: Mallory <mallory@example.com>\r\nTo: {MAILBOX}\r\nSubject: Anmeldung Migrationskonferenz\r\nMessage-ID: <{id}>\r\n"
        )
    };
    let mut noise = Vec::new();
    let mut x: u32 = 12345;
    for _ in 0..4096 {
        x = x.wrapping_mul(1_103_515_245).wrapping_add(12_345);
        noise.push((x >> 16) as u8);
    }
    let mut nested = head("nested@x");
    for i in 0..500 {
        nested.push_str(&format!(
            "Content-Type: multipart/mixed; boundary=\"b{i}\"\r\n\r\n--b{i}\r\n"
        ));
    }
    nested.push_str("Content-Type: text/plain\r\n\r\nIch melde mich an.\r\n");
    let mut many_cc = head("cc@x");
    for i in 0..5000 {
        many_cc.push_str(&format!("Cc: person{i}@example.com\r\n"));
    }
    many_cc.push_str("\r\nIch melde mich an.\r\n");
    vec![
        ("binary noise", noise),
        (
            "NUL bytes",
            format!("{}\r\nIch\0 melde\0 mich an.\0\r\n", head("nul@x")).into_bytes(),
        ),
        (
            "unterminated multipart",
            format!(
                "{}MIME-Version: 1.0\r\nContent-Type: multipart/mixed; boundary=\"never\"\r\n\r\n--never\r\nContent-Type: text/plain\r\n\r\nIch melde mich an.\r\n",
                head("unterminated@x")
            )
            .into_bytes(),
        ),
        ("500 nested parts", nested.into_bytes()),
        (
            "200 KB header line",
            format!("{}X-Long: {}\r\n\r\nIch melde mich an.\r\n", head("long@x"), "a".repeat(200 * 1024)).into_bytes(),
        ),
        ("5000 Cc headers", many_cc.into_bytes()),
    ]
}

/// Hostile and broken mail through the real daemon path: each one ends with a
/// stored outcome and is filed away; none stops the mail behind it.
#[test]
fn hostile_mail_is_filed_with_an_outcome_and_never_stops_the_daemon() {
    let dovecot = Dovecot::start();
    let sink = SmtpSink::start();
    let app = Rsvpd::new(&dovecot, &sink);
    let hostile = hostile_mails();
    for (_, raw) in &hostile {
        dovecot.deliver(MAILBOX, raw);
    }
    dovecot.deliver(
        MAILBOX,
        &mail(
            "Ana Lima",
            "ana@example.com",
            MAILBOX,
            "Anmeldung Migrationskonferenz",
            "after-hostile@example.com",
            "Ich melde mich an.",
        ),
    );
    let mut daemon = app.spawn();
    crate::app::wait_answered(&sink, "ana@example.com", Duration::from_secs(120), || {
        daemon.log()
    });
    daemon.stop_cleanly(libc::SIGTERM);
    let inbound = app.inbound();
    assert_eq!(inbound.len(), hostile.len() + 1, "{inbound:?}");
    for (id, outcome, _) in &inbound {
        assert!(
            ["recorded", "review", "ignored"].contains(&outcome.as_str()),
            "{id}: {outcome}"
        );
    }
    let filed = dovecot.list_folder(MAILBOX, "rsvpd.processed").len()
        + dovecot.list_folder(MAILBOX, "rsvpd.review").len();
    assert_eq!(filed, hostile.len() + 1);
    assert!(dovecot.list_folder(MAILBOX, "INBOX").is_empty());
    for a in app.attendees("miko-2027", true) {
        let name = a["name"].as_str().unwrap_or_default();
        assert!(!name.contains('\0') && !name.contains('\n'), "{name:?}");
    }
}

/// A panic while one mail is being read is caught: that mail goes to review
/// with the reason, the daemon goes on.
#[test]
fn a_panic_while_reading_a_mail_sends_it_to_review() {
    let dovecot = Dovecot::start();
    let sink = SmtpSink::start();
    let app = Rsvpd::new(&dovecot, &sink);
    dovecot.deliver(
        MAILBOX,
        &mail(
            "Ana Lima",
            "ana@example.com",
            MAILBOX,
            "Anmeldung Migrationskonferenz",
            "panic-1@example.com",
            "Ich melde mich an.",
        ),
    );
    let out = app
        .command()
        .env("RSVPD_FAILPOINT", "understand-panic")
        .args(["run", "--once"])
        .output()
        .expect("run");
    assert!(
        out.status.success(),
        "{}",
        String::from_utf8_lossy(&out.stderr)
    );
    let review = app.review();
    assert_eq!(review.len(), 1);
    let reason = review[0]["reason"].as_str().unwrap_or_default();
    assert!(
        reason.contains("internal error") && reason.contains("failpoint"),
        "{reason}"
    );
    assert_eq!(dovecot.list_folder(MAILBOX, "rsvpd.review").len(), 1);
    // An organizer can still assign it, and the attendee gets the answer.
    let id = review[0]["id"].as_i64().expect("id").to_string();
    app.ok(&["review", "assign", &id, "miko-2027"]);
    app.run_once();
    assert_eq!(
        sink.wait_for(1, WAIT)[0].rcpt_to,
        vec!["ana@example.com".to_string()]
    );
}

/// A DSN marks the address undeliverable and is never answered.
#[test]
fn a_bounce_marks_the_address_and_gets_no_answer() {
    let dovecot = Dovecot::start();
    let sink = SmtpSink::start();
    let app = Rsvpd::new(&dovecot, &sink);
    let dsn = std::fs::read(concat!(
        env!("CARGO_MANIFEST_DIR"),
        "/tests/corpus/bounce-postfix-dsn.eml"
    ))
    .expect("corpus");
    dovecot.deliver_from("", MAILBOX, &dsn);
    app.run_once();
    let marked = app.db(async |s| s.undeliverable_addresses().await);
    assert_eq!(
        marked.into_iter().collect::<Vec<_>>(),
        ["m.mustermann@example.net"]
    );
    assert_eq!(app.inbound()[0].1, "ignored");
    assert!(app.outbox().is_empty());
    // The person registers later from that address: recorded, but not written to.
    dovecot.deliver(
        MAILBOX,
        &mail(
            "Max Mustermann",
            "m.mustermann@example.net",
            MAILBOX,
            "Anmeldung Migrationskonferenz",
            "mm-1@example.net",
            "Ich melde mich an.",
        ),
    );
    app.run_once();
    assert_eq!(app.attendees("miko-2027", false).len(), 1);
    assert!(app.outbox().is_empty());
    assert!(sink.messages().is_empty());
}

/// Unmounts the small file system of the disk-full test, whatever happens.
struct Mount(std::path::PathBuf);

impl Drop for Mount {
    fn drop(&mut self) {
        let _ = Command::new("umount").arg("-l").arg(&self.0).status();
    }
}

/// With the database's disk full, a mail is not marked processed; once there
/// is room again it is recorded.
#[test]
fn a_full_disk_fails_clearly_and_loses_nothing() {
    let dovecot = Dovecot::start();
    let sink = SmtpSink::start();
    let app = Rsvpd::new(&dovecot, &sink);
    let db_dir = app.dir.path().join("db");
    std::fs::create_dir_all(&db_dir).expect("mkdir");
    let status = Command::new("mount")
        .args(["-t", "tmpfs", "-o", "size=4m", "tmpfs"])
        .arg(&db_dir)
        .status()
        .expect("mount");
    assert!(
        status.success(),
        "mounting a small tmpfs needs root (CI runs as root)"
    );
    let _mount = Mount(db_dir.clone());
    let text = std::fs::read_to_string(&app.config).expect("config");
    std::fs::write(
        &app.config,
        text.replace("sqlite://rsvpd.db", "sqlite://db/rsvpd.db"),
    )
    .expect("write");
    app.ok(&["conferences"]);

    // Fill the disk to the last byte.
    let filler = db_dir.join("filler");
    {
        use std::io::Write;
        let mut f = std::fs::File::create(&filler).expect("filler");
        let block = vec![0u8; 4096];
        while f.write_all(&block).is_ok() {}
        let _ = f.sync_all();
    }
    dovecot.deliver(
        MAILBOX,
        &mail(
            "Ole Berg",
            "ole@example.com",
            MAILBOX,
            "Anmeldung Migrationskonferenz",
            "full-1@example.com",
            &"Ich melde mich an. ".repeat(400),
        ),
    );
    let out = app.output(&["run", "--once"]);
    assert!(!out.status.success(), "must fail with the disk full");
    let err = String::from_utf8_lossy(&out.stderr).to_lowercase();
    assert!(err.contains("full") || err.contains("disk"), "{err}");
    assert_eq!(
        dovecot.list_folder(MAILBOX, "INBOX").len(),
        1,
        "the mail stays in the inbox"
    );

    std::fs::remove_file(&filler).expect("free the disk");
    app.run_once();
    assert_eq!(app.attendees("miko-2027", false).len(), 1);
    assert!(dovecot.list_folder(MAILBOX, "INBOX").is_empty());
    assert_eq!(sink.wait_for(1, WAIT).len(), 1);
}
