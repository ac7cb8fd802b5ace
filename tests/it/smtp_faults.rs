//! SMTP faults against smtp-sink's fault flags and Dovecot submission: a 4xx
//! to RCPT retried with backoff whose state is in the database; a 5xx to RCPT
//! failed for good with the address marked; every problem of the server or of
//! our setup (5xx to MAIL FROM or DATA, a wrong password, TLS, no server)
//! pausing the queue and marking nobody; a disconnect after DATA retried with
//! at most one duplicate; a pooled connection the server closed. Time moves on
//! with faketime, never by sleeping.

use std::time::Duration;

use crate::app::{MAILBOX, Rsvpd, mail, submission};
use crate::support::dovecot::Dovecot;
use crate::support::smtp_sink::SmtpSink;

const WAIT: Duration = Duration::from_secs(30);

fn registration(addr: &str, id: &str) -> Vec<u8> {
    mail(
        "Test Person",
        addr,
        MAILBOX,
        "Anmeldung Migrationskonferenz",
        id,
        "Ich melde mich an.",
    )
}

#[test]
fn a_4xx_is_retried_later_with_its_state_in_the_database() {
    let dovecot = Dovecot::start();
    let mut sink = SmtpSink::start_with_args(&["-r", "RCPT", "-b", "451 4.3.2 Try again later"]);
    let app = Rsvpd::new(&dovecot, &sink);
    dovecot.deliver(
        MAILBOX,
        &registration("soft@example.com", "soft-1@example.com"),
    );
    app.run_once();

    let outbox = app.outbox();
    assert_eq!(outbox.len(), 1);
    assert_eq!(outbox[0]["state"], "queued");
    assert_eq!(outbox[0]["attempts"], 1);
    let err = outbox[0]["last_error"].as_str().unwrap_or_default();
    assert!(err.contains("451") && err.contains("127.0.0.1"), "{err}");
    // Not due yet: a second run right away does not hammer the server.
    app.run_once();
    assert_eq!(app.outbox()[0]["attempts"], 1);

    sink.restart_with_args(&[]);
    app.run_once_at("+2h");
    let outbox = app.outbox();
    assert_eq!(outbox[0]["state"], "sent", "{outbox:#?}");
    assert_eq!(outbox[0]["attempts"], 2);
    assert_eq!(
        sink.wait_for(1, WAIT)[0].rcpt_to,
        vec!["soft@example.com".to_string()]
    );
}

#[test]
fn a_5xx_fails_for_good_and_marks_the_address() {
    let dovecot = Dovecot::start();
    let sink = SmtpSink::start_with_args(&["-f", "RCPT", "-B", "550 5.1.1 User unknown"]);
    let app = Rsvpd::new(&dovecot, &sink);
    dovecot.deliver(
        MAILBOX,
        &registration("gone@example.com", "hard-1@example.com"),
    );
    app.run_once();

    let outbox = app.outbox();
    assert_eq!(outbox[0]["state"], "failed");
    let err = outbox[0]["last_error"].as_str().unwrap_or_default();
    assert!(err.contains("550") && err.contains("User unknown"), "{err}");
    let table = app.ok(&["outbox"]);
    assert!(
        table.contains("failed") && table.contains("1 failed"),
        "{table}"
    );
    let marked = app.db(async |s| s.undeliverable_addresses().await);
    assert_eq!(marked.into_iter().collect::<Vec<_>>(), ["gone@example.com"]);

    // The person writes again: recorded, but no mail goes to the dead address.
    dovecot.deliver(
        MAILBOX,
        &registration("gone@example.com", "hard-2@example.com"),
    );
    app.run_once_at("+2h");
    assert_eq!(
        app.outbox().len(),
        1,
        "nothing new queued for an undeliverable address"
    );
    assert!(sink.messages().is_empty());
    let inbound = app.inbound();
    assert_eq!(inbound[1].1, "recorded");
    assert!(
        inbound[1]
            .2
            .as_deref()
            .unwrap_or_default()
            .contains("bounced"),
        "{inbound:?}"
    );
}

#[test]
fn a_disconnect_after_data_is_retried_with_at_most_one_duplicate() {
    let dovecot = Dovecot::start();
    // smtp-sink dumps the mail, then hangs up without answering the final dot.
    let mut sink = SmtpSink::start_with_args(&["-q", "."]);
    let app = Rsvpd::new(&dovecot, &sink);
    dovecot.deliver(
        MAILBOX,
        &registration("dup@example.com", "dup-1@example.com"),
    );
    app.run_once();
    assert_eq!(app.outbox()[0]["state"], "queued");

    sink.restart_with_args(&[]);
    app.run_once_at("+2h");
    assert_eq!(app.outbox()[0]["state"], "sent");
    let received = sink.wait_for(2, WAIT);
    assert_eq!(received.len(), 2, "the cut-off copy and the retry");
    let ids: Vec<_> = received.iter().map(|m| m.header("Message-ID")).collect();
    assert_eq!(
        ids[0], ids[1],
        "the retry is the same message, so clients can drop the copy"
    );
}

#[test]
fn a_pooled_connection_closed_by_the_server_is_replaced() {
    let dovecot = Dovecot::start();
    let mut sink = SmtpSink::start();
    let app = Rsvpd::new(&dovecot, &sink);
    let mut daemon = app.spawn();
    dovecot.wait_for_folder(MAILBOX, "rsvpd.processed", 0, WAIT);
    dovecot.deliver(
        MAILBOX,
        &registration("first@example.com", "pool-1@example.com"),
    );
    sink.wait_for(1, WAIT);
    // The server goes away and comes back: the pooled connection is dead.
    sink.restart_with_args(&[]);
    dovecot.deliver(
        MAILBOX,
        &registration("second@example.com", "pool-2@example.com"),
    );
    crate::app::wait_answered(
        &sink,
        "second@example.com",
        Duration::from_secs(120),
        || daemon.log(),
    );
    daemon.stop_cleanly(libc::SIGTERM);
}

/// `max_per_minute` holds against a real server: of five answers, the fourth
/// leaves no earlier than a minute after the first (read from the outbox's own
/// send times, not from a stopwatch).
#[test]
fn max_per_minute_is_respected() {
    let dovecot = Dovecot::start();
    let sink = SmtpSink::start();
    let app = Rsvpd::new(&dovecot, &sink);
    let text = std::fs::read_to_string(&app.config).expect("config");
    std::fs::write(
        &app.config,
        text.replace("max_per_minute = 1000", "max_per_minute = 3"),
    )
    .expect("write");
    for i in 0..5 {
        dovecot.deliver(
            MAILBOX,
            &registration(
                &format!("rate{i}@example.com"),
                &format!("rate-{i}@example.com"),
            ),
        );
    }
    let mut daemon = app.spawn();
    let sent = sink.wait_for(5, Duration::from_secs(150));
    assert_eq!(sent.len(), 5);
    daemon.stop_cleanly(libc::SIGTERM);
    let mut times: Vec<chrono::DateTime<chrono::Utc>> = app
        .outbox()
        .iter()
        .map(|o| {
            let t = o["sent_at"].as_str().expect("sent");
            chrono::DateTime::parse_from_rfc3339(t)
                .expect("time")
                .with_timezone(&chrono::Utc)
        })
        .collect();
    times.sort();
    assert!(
        times[3] - times[0] >= chrono::Duration::seconds(59),
        "the 4th mail left {}s after the 1st",
        (times[3] - times[0]).num_seconds()
    );
}

/// What a run left behind when the server or our setup refused the mail.
struct Paused {
    /// stderr of `run --once`
    log: String,
    outbox: serde_json::Value,
    /// "stage | failures | error | fix | ended", or "" without a pause.
    pause: String,
    marked: Vec<String>,
}

/// The delivery pause as one line (see `Paused::pause`).
fn pause_line(app: &Rsvpd) -> String {
    app.db(async |s| s.delivery_pause().await)
        .map(|p| {
            format!(
                "{} | {} | {} | {} | {}",
                p.stage,
                p.failures,
                p.error,
                p.fix,
                p.ended_at.map(|t| t.to_rfc3339()).unwrap_or_default()
            )
        })
        .unwrap_or_default()
}

/// One registration answered against `sink` (started with `flags`), as a
/// `run --once`; the state it left.
fn run_against(app: &Rsvpd, dovecot: &Dovecot, who: &str) -> Paused {
    dovecot.deliver(MAILBOX, &registration(who, &format!("{who}-reg")));
    let out = app.output(&["run", "--once"]);
    let log = String::from_utf8_lossy(&out.stderr).into_owned();
    assert!(out.status.success(), "{log}");
    Paused {
        outbox: app.outbox()[0].clone(),
        pause: pause_line(app),
        marked: app
            .db(async |s| s.undeliverable_addresses().await)
            .into_iter()
            .collect(),
        log,
    }
}

impl Paused {
    /// The queue paused at `stage`, the mail still queued, nobody marked,
    /// and the log saying what is wrong and what to fix.
    fn assert_paused(&self, stage: &str, said: &str, fix: &str) {
        assert_eq!(self.outbox["state"], "queued", "{:#?}", self.outbox);
        assert!(self.marked.is_empty(), "marked: {:?}", self.marked);
        assert!(
            self.pause.starts_with(&format!("{stage} | 1 | ")),
            "{}",
            self.pause
        );
        assert!(
            self.pause.contains(said) && self.pause.contains(fix),
            "{}",
            self.pause
        );
        let err = self.outbox["last_error"].as_str().unwrap_or_default();
        assert!(err.contains(said) && err.contains(fix), "{err}");
        assert!(
            self.log.contains("sending paused")
                && self.log.contains(fix)
                && self.log.contains(said),
            "{}",
            self.log
        );
    }
}

#[test]
fn a_5xx_to_mail_from_pauses_the_queue_marks_nobody_and_resumes() {
    let dovecot = Dovecot::start();
    let mut sink = SmtpSink::start_with_args(&[
        "-f",
        "MAIL",
        "-B",
        "553 5.7.1 Sender address rejected: not owned by user",
    ]);
    let app = Rsvpd::new(&dovecot, &sink);
    let p = run_against(&app, &dovecot, "sender@example.com");
    p.assert_paused("sender", "553 5.7.1 Sender address rejected", "[smtp] from");
    assert_eq!(
        p.outbox["attempts"], 0,
        "our setup does not count against the mail"
    );
    assert!(p.log.contains("sender refused (MAIL FROM)"), "{}", p.log);

    // Within the pause, a run does not try again.
    app.run_once();
    assert!(pause_line(&app).starts_with("sender | 1 | "));

    // Fixed: after the pause the mail goes, and the pause is over.
    sink.restart_with_args(&[]);
    app.run_once_at("+2h");
    assert_eq!(app.outbox()[0]["state"], "sent");
    assert_eq!(
        sink.wait_for(1, WAIT)[0].rcpt_to,
        vec!["sender@example.com".to_string()]
    );
    let ended = app.db(async |s| s.delivery_pause().await);
    assert!(
        ended.is_some_and(|p| p.ended_at.is_some()),
        "the pause is over"
    );
}

#[test]
fn a_4xx_to_mail_from_pauses_the_queue_too() {
    let dovecot = Dovecot::start();
    let sink = SmtpSink::start_with_args(&[
        "-r",
        "MAIL",
        "-b",
        "451 4.7.1 Too many messages from this account, slow down",
    ]);
    let app = Rsvpd::new(&dovecot, &sink);
    let p = run_against(&app, &dovecot, "busy@example.com");
    p.assert_paused("sender", "451 4.7.1 Too many messages", "[smtp] from");
}

#[test]
fn a_5xx_to_data_about_us_pauses_and_marks_nobody() {
    let dovecot = Dovecot::start();
    let sink = SmtpSink::start_with_args(&["-f", "DATA"]);
    let app = Rsvpd::new(&dovecot, &sink);
    let p = run_against(&app, &dovecot, "data@example.com");
    p.assert_paused(
        "data",
        "500 5.3.0 Error: command failed",
        "the server's answer",
    );
    // Refused at DATA, the message may be at fault itself: it backs off on its own too.
    assert_eq!(p.outbox["attempts"], 1);
}

#[test]
fn a_5xx_after_the_message_pauses_unless_it_names_the_recipient() {
    let dovecot = Dovecot::start();
    let spam = SmtpSink::start_with_args(&["-f", ".", "-B", "554 5.7.1 Message rejected as spam"]);
    let app = Rsvpd::new(&dovecot, &spam);
    let p = run_against(&app, &dovecot, "spam@example.com");
    p.assert_paused(
        "data",
        "554 5.7.1 Message rejected as spam",
        "content filter",
    );

    // A server that checks the recipient only after the message (5.1.1 at
    // the final dot) does say something about the recipient.
    let dovecot = Dovecot::start();
    let late = SmtpSink::start_with_args(&[
        "-f",
        ".",
        "-B",
        "550 5.1.1 <late@example.com>: Recipient address rejected",
    ]);
    let app = Rsvpd::new(&dovecot, &late);
    let p = run_against(&app, &dovecot, "late@example.com");
    assert_eq!(p.outbox["state"], "failed");
    assert_eq!(p.marked, ["late@example.com"]);
    assert!(p.pause.trim().is_empty(), "{}", p.pause);
    // The server's reply quotes the address: masked like an address, in the database and in the log.
    let err = p.outbox["last_error"].as_str().unwrap_or_default();
    assert!(
        err.contains("<l***@example.com>") && !err.contains("late@"),
        "{err}"
    );
    assert!(!p.log.contains("late@example.com"), "{}", p.log);
}

#[test]
fn a_wrong_password_at_dovecot_submission_pauses_and_marks_nobody() {
    let sink = SmtpSink::start();
    let (dovecot, starttls, _) = submission(&sink);
    let app = Rsvpd::new(&dovecot, &sink);
    let password = app.dir.path().join("smtp.password");
    std::fs::write(&password, "rotated-yesterday\n").expect("write");
    app.set_smtp(&format!(
        "url = \"smtp://anmeldung%40example.org@localhost:{starttls}\"\nca_file = \"{}\"\npassword_file = \"{}\"",
        dovecot.ca_cert_path().display(),
        password.display()
    ));
    let p = run_against(&app, &dovecot, "ewa@example.pl");
    p.assert_paused("login", "login refused: 535", "password_file");
    assert!(!p.log.contains("rotated-yesterday"), "{}", p.log);
    assert!(!p.pause.contains("rotated-yesterday"));
    assert!(sink.messages().is_empty());

    // `rsvpd check` says the same, and so does the fixed password, the other way.
    let out = app.output(&["check"]);
    assert!(!out.status.success());
    let err = String::from_utf8_lossy(&out.stderr);
    assert!(
        err.contains("login refused") && err.contains("password_file"),
        "{err}"
    );
    std::fs::write(&password, dovecot.password()).expect("write");
    app.ok(&["check"]);
    app.run_once_at("+2h");
    assert_eq!(
        sink.wait_for(1, WAIT)[0].rcpt_to,
        vec!["ewa@example.pl".to_string()]
    );
}

#[test]
fn tls_and_connection_failures_pause_and_mark_nobody() {
    // smtps:// (TLS from the first byte) against a server that speaks plain SMTP.
    let dovecot = Dovecot::start();
    let sink = SmtpSink::start();
    let app = Rsvpd::new(&dovecot, &sink);
    app.set_smtp(&format!("url = \"smtps://127.0.0.1:{}\"", sink.port()));
    let p = run_against(&app, &dovecot, "tls@example.com");
    p.assert_paused("tls", "SMTP server 127.0.0.1", "ca_file");

    // Nobody listens on the port.
    let dovecot = Dovecot::start();
    let app = Rsvpd::new(&dovecot, &sink);
    let closed = crate::support::free_port();
    app.set_smtp(&format!("url = \"smtp://127.0.0.1:{closed}?tls=none\""));
    let p = run_against(&app, &dovecot, "down@example.com");
    p.assert_paused("connect", "cannot connect", "reachable");
    assert!(sink.messages().is_empty());
}
