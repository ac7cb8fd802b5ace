//! SMTP faults against smtp-sink's fault flags: 4xx retried with backoff whose
//! state is in the database, 5xx failed for good with the address marked, a
//! disconnect after DATA retried with at most one duplicate, a pooled
//! connection the server closed. Time moves on with faketime, never by sleeping.

use std::time::Duration;

use crate::app::{MAILBOX, Rsvpd, mail};
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
