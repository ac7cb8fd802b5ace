//! SIGTERM in every state exits 0 within 10 s; what was in flight is finished
//! or stays queued for the next start.

use std::time::Duration;

use crate::app::{MAILBOX, Rsvpd, mail};
use crate::support::dovecot::Dovecot;
use crate::support::smtp_sink::SmtpSink;
use crate::support::wait_until;

const WAIT: Duration = Duration::from_secs(30);

#[test]
fn sigterm_while_the_smtp_server_hangs_exits_and_keeps_the_mail_queued() {
    let dovecot = Dovecot::start();
    // The sink takes 60 s to answer DATA: the send is in flight when SIGTERM comes.
    let mut sink = SmtpSink::start_with_args(&["-w", "60"]);
    let app = Rsvpd::new(&dovecot, &sink);
    let mut daemon = app.spawn();
    dovecot.deliver(
        MAILBOX,
        &mail(
            "Nia Owusu",
            "nia@example.com",
            MAILBOX,
            "Anmeldung Migrationskonferenz",
            "hang-1@example.com",
            "Ich melde mich an.",
        ),
    );
    wait_until(
        WAIT,
        "the registration recorded and its send begun",
        || {
            (app.attendees("miko-2027", false).len() == 1
                && daemon.log().contains("message handled"))
            .then_some(())
        },
        || daemon.log(),
    );
    std::thread::sleep(Duration::from_millis(500));
    daemon.stop_cleanly(libc::SIGTERM);
    assert_eq!(
        app.outbox()[0]["state"],
        "queued",
        "not sent, so still queued"
    );

    // Next start, with a working server: it goes out.
    sink.restart_with_args(&[]);
    app.run_once();
    assert_eq!(app.outbox()[0]["state"], "sent");
    assert!(
        sink.messages()
            .iter()
            .any(|m| m.rcpt_to == ["nia@example.com"])
    );
}

#[test]
fn sigterm_while_reconnecting_to_a_dead_imap_server_exits_at_once() {
    let mut dovecot = Dovecot::start();
    let sink = SmtpSink::start();
    let app = Rsvpd::new(&dovecot, &sink);
    dovecot.kill();
    let mut daemon = app.spawn();
    wait_until(
        WAIT,
        "a failed connect",
        || daemon.log().contains("mailbox step failed").then_some(()),
        || daemon.log(),
    );
    daemon.stop_cleanly(libc::SIGTERM);
}

#[test]
fn sigterm_while_a_backlog_is_worked_through_finishes_the_message_in_hand() {
    let dovecot = Dovecot::start();
    let sink = SmtpSink::start();
    let app = Rsvpd::new(&dovecot, &sink);
    for i in 0..30 {
        dovecot.deliver(
            MAILBOX,
            &mail(
                "P",
                &format!("b{i}@example.com"),
                MAILBOX,
                "Anmeldung Migrationskonferenz",
                &format!("bl-{i}@example.com"),
                "Ich melde mich an.",
            ),
        );
    }
    let mut daemon = app.spawn();
    wait_until(
        WAIT,
        "some mail answered",
        || (!sink.messages().is_empty()).then_some(()),
        || daemon.log(),
    );
    daemon.stop_cleanly(libc::SIGTERM);
    // Whatever was recorded was also filed away; the rest waits in the inbox.
    let recorded = app.inbound().len();
    let processed = dovecot.list_folder(MAILBOX, "rsvpd.processed").len();
    let inbox = dovecot.list_folder(MAILBOX, "INBOX").len();
    assert_eq!(processed, recorded, "no message stored but left unfiled");
    assert_eq!(processed + inbox, 30);
    app.run_once();
    assert_eq!(app.attendees("miko-2027", false).len(), 30);
}
