//! Crashes at named points (debug-build fail points that abort like SIGKILL)
//! and at random moments, each followed by a restart: every registration is
//! recorded exactly once, every confirmation sent at least once, and a
//! duplicate appears only where the crash fell between the SMTP server's 250
//! and our commit.

use std::collections::HashMap;
use std::time::Duration;

use crate::app::{MAILBOX, Rsvpd, mail};
use crate::support::dovecot::Dovecot;
use crate::support::smtp_sink::SmtpSink;

const WAIT: Duration = Duration::from_secs(30);

fn registration(i: usize) -> Vec<u8> {
    mail(
        &format!("Person {i}"),
        &format!("p{i}@example.com"),
        MAILBOX,
        "Anmeldung Migrationskonferenz",
        &format!("crash-{i}@example.com"),
        "Hiermit melde ich mich an.",
    )
}

/// Checks the end state after all crashes; returns the number of duplicate sends.
fn assert_exactly_once(app: &Rsvpd, dovecot: &Dovecot, sink: &SmtpSink, mails: usize) -> usize {
    assert_eq!(
        app.attendees("miko-2027", false).len(),
        mails,
        "every registration recorded"
    );
    let inbound = app.inbound();
    let recorded = inbound.iter().filter(|i| i.1 == "recorded").count();
    assert_eq!(recorded, mails, "each recorded exactly once: {inbound:?}");
    let outbox = app.outbox();
    assert_eq!(
        outbox.len(),
        mails,
        "one confirmation queued per registration"
    );
    assert!(outbox.iter().all(|o| o["state"] == "sent"), "{outbox:#?}");
    let sent = sink.wait_for(mails, WAIT);
    let mut per_rcpt = HashMap::<String, usize>::new();
    for m in &sent {
        *per_rcpt.entry(m.rcpt_to.join(",")).or_default() += 1;
    }
    assert_eq!(per_rcpt.len(), mails, "everyone got a confirmation");
    assert!(
        dovecot.list_folder(MAILBOX, "INBOX").is_empty(),
        "nothing left behind"
    );
    assert_eq!(
        dovecot.list_folder(MAILBOX, "rsvpd.processed").len(),
        mails,
        "nothing lost"
    );
    sent.len() - mails
}

fn crash_at(point: &str) -> usize {
    const MAILS: usize = 3;
    let dovecot = Dovecot::start();
    let sink = SmtpSink::start();
    let app = Rsvpd::new(&dovecot, &sink);
    for i in 0..MAILS {
        dovecot.deliver(MAILBOX, &registration(i));
    }
    let out = app
        .command()
        .env("RSVPD_FAILPOINT", point)
        .args(["run", "--once"])
        .output()
        .expect("run");
    assert!(
        !out.status.success(),
        "the fail point {point} was not reached"
    );
    assert!(String::from_utf8_lossy(&out.stderr).contains(&format!("failpoint {point} reached")));
    app.run_once();
    assert_exactly_once(&app, &dovecot, &sink, MAILS)
}

#[test]
fn crash_after_fetch_before_the_database_write() {
    assert_eq!(crash_at("after-fetch"), 0);
}

#[test]
fn crash_after_the_database_commit_before_the_move() {
    assert_eq!(crash_at("after-commit"), 0);
}

#[test]
fn crash_after_the_move() {
    assert_eq!(crash_at("after-move"), 0);
}

#[test]
fn crash_before_the_smtp_send() {
    assert_eq!(crash_at("before-send"), 0);
}

#[test]
fn crash_between_the_servers_250_and_our_commit_sends_one_duplicate() {
    assert_eq!(crash_at("after-send"), 1);
}

/// SIGKILL at random moments while a backlog of hundreds of mails is worked
/// through, repeatedly; the figures go to the test output.
#[test]
fn random_kills_during_a_backlog_lose_nothing() {
    const MAILS: usize = 200;
    const KILLS: usize = 8;
    let dovecot = Dovecot::start();
    let sink = SmtpSink::start();
    let app = Rsvpd::new(&dovecot, &sink);
    for i in 0..MAILS {
        dovecot.deliver(MAILBOX, &registration(i));
    }
    // Pseudo-random but reproducible kill moments: after a varying number of
    // answered mails, plus a varying delay, so kills land in every state.
    let mut seed: u64 = 0x9E37_79B9_7F4A_7C15;
    let mut kills = 0;
    for round in 0..KILLS {
        let mut daemon = app.spawn();
        seed ^= seed << 13;
        seed ^= seed >> 7;
        seed ^= seed << 17;
        let target = ((round + 1) * MAILS / (KILLS + 2)).min(MAILS);
        crate::support::wait_until(
            Duration::from_secs(120),
            &format!("kill round {round}: {target} mails answered"),
            || (sink.messages().len() >= target).then_some(()),
            || daemon.log(),
        );
        std::thread::sleep(Duration::from_millis(seed % 40));
        daemon.signal(libc::SIGKILL);
        let _ = daemon.wait_exit(Duration::from_secs(10));
        kills += 1;
    }
    app.run_once();
    let duplicates = assert_exactly_once(&app, &dovecot, &sink, MAILS);
    println!("crash test: {MAILS} mails, {kills} SIGKILLs, {duplicates} duplicate sends, 0 lost");
    assert!(
        duplicates <= kills,
        "{duplicates} duplicates from {kills} kills"
    );
}
