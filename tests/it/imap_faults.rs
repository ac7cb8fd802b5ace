//! IMAP faults against a real Dovecot: a restart mid-session, a connection that
//! goes silent during IDLE and during FETCH, a UIDVALIDITY change with unread
//! mail, a server without MOVE and UIDPLUS, and other clients changing the
//! folder under rsvpd's feet. rsvpd reconnects and loses and doubles nothing.

use std::time::Duration;

use crate::app::{CONFERENCES, MAILBOX, Rsvpd, mail, wait_answered};
use crate::support::dovecot::Dovecot;
use crate::support::proxy::Proxy;
use crate::support::smtp_sink::SmtpSink;
use crate::support::wait_until;

/// Generous: reconnects back off (2 s, 4 s, … plus jitter).
const WAIT: Duration = Duration::from_secs(90);

fn registration(i: usize) -> Vec<u8> {
    mail(
        &format!("Person {i}"),
        &format!("p{i}@example.com"),
        MAILBOX,
        "Anmeldung Migrationskonferenz",
        &format!("imapfault-{i}@example.com"),
        "Hiermit melde ich mich an.",
    )
}

fn through_proxy(dovecot: &Dovecot, sink: &SmtpSink, proxy: &Proxy) -> Rsvpd {
    let url = format!(
        "imap://anmeldung%40example.org@127.0.0.1:{}?tls=none",
        proxy.port()
    );
    Rsvpd::with_mailbox_url(dovecot, sink, &url, "timeout = \"3s\"", CONFERENCES)
}

/// Wait until the daemon has logged in and created its folders.
fn wait_ready(dovecot: &Dovecot, daemon: &crate::app::Daemon) {
    wait_until(
        WAIT,
        "rsvpd logged in and created its folders",
        || {
            dovecot
                .try_list_folder(MAILBOX, "rsvpd.processed")
                .ok()
                .map(|_| ())
        },
        || daemon.log(),
    );
}

#[test]
fn dovecot_restarting_mid_session_is_survived() {
    let mut dovecot = Dovecot::start();
    let sink = SmtpSink::start();
    let app = Rsvpd::new(&dovecot, &sink);
    let daemon = app.spawn();
    wait_ready(&dovecot, &daemon);
    dovecot.deliver(MAILBOX, &registration(1));
    wait_answered(&sink, "p1@example.com", WAIT, || daemon.log());

    dovecot.restart();
    dovecot.deliver(MAILBOX, &registration(2));
    wait_answered(&sink, "p2@example.com", WAIT, || daemon.log());
    assert_eq!(app.attendees("miko-2027", false).len(), 2);
}

/// Through restarts and reconnects, one rsvpd never holds two IMAP sessions.
#[test]
fn reconnects_never_hold_two_sessions_at_once() {
    let mut dovecot = Dovecot::start();
    let sink = SmtpSink::start();
    let proxy = Proxy::start(dovecot.imap_port());
    let app = through_proxy(&dovecot, &sink, &proxy);
    let daemon = app.spawn();
    wait_ready(&dovecot, &daemon);
    for i in 0..3 {
        dovecot.kill();
        dovecot.restart();
        dovecot.deliver(MAILBOX, &registration(i));
        wait_answered(&sink, &format!("p{i}@example.com"), WAIT, || daemon.log());
    }
    assert!(proxy.accepted() >= 4, "it reconnected after each restart");
    assert_eq!(proxy.max_open(), 1, "never two sessions at once");
}

#[test]
fn a_connection_gone_silent_during_idle_is_noticed_and_replaced() {
    let dovecot = Dovecot::start();
    let sink = SmtpSink::start();
    let proxy = Proxy::start(dovecot.imap_port());
    let app = through_proxy(&dovecot, &sink, &proxy);
    let daemon = app.spawn();
    wait_ready(&dovecot, &daemon);
    let before = proxy.accepted();

    proxy.freeze();
    dovecot.deliver(MAILBOX, &registration(1));
    wait_answered(&sink, "p1@example.com", WAIT, || daemon.log());
    assert!(proxy.accepted() > before, "rsvpd reconnected");
    assert_eq!(app.attendees("miko-2027", false).len(), 1);
}

#[test]
fn a_connection_gone_silent_during_fetch_is_noticed_and_nothing_is_lost() {
    let dovecot = Dovecot::start();
    let sink = SmtpSink::start();
    let proxy = Proxy::start(dovecot.imap_port());
    let app = through_proxy(&dovecot, &sink, &proxy);
    let daemon = app.spawn();
    wait_ready(&dovecot, &daemon);

    // A registration with a 1 MB attachment: the connection dies 100 KB into its FETCH.
    let mut big = String::from_utf8_lossy(&registration(1)).into_owned();
    big = big.replace(
        "Content-Type: text/plain; charset=UTF-8\r\nContent-Transfer-Encoding: 8bit",
        "Content-Type: multipart/mixed; boundary=\"x\"",
    );
    big = big.replace(
        "Hiermit melde ich mich an.",
        &format!(
            "--x\r\nContent-Type: text/plain; charset=utf-8\r\n\r\nHiermit melde ich mich an.\r\n\
             --x\r\nContent-Type: application/octet-stream\r\nContent-Transfer-Encoding: base64\r\n\r\n{}--x--",
            "QUJDREVGR0hJSktMTU5PUFFSU1RVVldYWVphYmNkZWZnaGlqa2xtbm9wcXJzdHV2d3h5ejAx\r\n".repeat(14_000)
        ),
    );
    proxy.freeze_after(100 * 1024);
    dovecot.deliver(MAILBOX, big.as_bytes());
    // The mail is handled once after the reconnect, whatever its outcome
    // (a short text beside a big attachment may well go to review).
    wait_until(
        WAIT,
        "the big mail handled",
        || (app.inbound().len() == 1).then_some(()),
        || daemon.log(),
    );
    assert!(
        daemon.log().contains("UID FETCH"),
        "the FETCH was cut: {}",
        daemon.log()
    );
    let filed = dovecot.list_folder(MAILBOX, "rsvpd.processed").len()
        + dovecot.list_folder(MAILBOX, "rsvpd.review").len();
    assert_eq!(filed, 1);
    assert!(dovecot.list_folder(MAILBOX, "INBOX").is_empty());
}

#[test]
fn a_uidvalidity_change_with_unread_mail_loses_and_doubles_nothing() {
    let mut dovecot = Dovecot::start();
    let sink = SmtpSink::start();
    let app = Rsvpd::new(&dovecot, &sink);
    dovecot.deliver(MAILBOX, &registration(1));
    app.run_once();
    let uidvalidity = |d: &Dovecot| {
        let mut s = d.imap_session(MAILBOX);
        let v = s.examine("INBOX").map(|m| m.uid_validity);
        let _ = s.logout();
        v.unwrap_or_else(|e| panic!("EXAMINE: {e}"))
    };
    let old = uidvalidity(&dovecot);

    // Unread mail, then the server renumbers the folder (as after a restore).
    dovecot.deliver(MAILBOX, &registration(2));
    dovecot.deliver(MAILBOX, &registration(3));
    let maildir = dovecot.maildir_path(MAILBOX);
    let mut changed = false;
    for _ in 0..5 {
        dovecot.stop();
        // Without its UID list and index, Dovecot numbers the folder anew.
        for entry in std::fs::read_dir(&maildir).expect("maildir").flatten() {
            let name = entry.file_name().to_string_lossy().into_owned();
            if name == "dovecot-uidlist" || name.starts_with("dovecot.index") {
                std::fs::remove_file(entry.path()).expect("remove");
            }
        }
        // Dovecot takes the current second as the new UIDVALIDITY.
        std::thread::sleep(Duration::from_millis(1100));
        dovecot.restart();
        if uidvalidity(&dovecot) != old {
            changed = true;
            break;
        }
    }
    assert!(changed, "Dovecot did not change UIDVALIDITY");

    app.run_once();
    assert_eq!(app.attendees("miko-2027", false).len(), 3);
    let outcomes: Vec<String> = app.inbound().into_iter().map(|i| i.1).collect();
    assert_eq!(outcomes, vec!["recorded"; 3], "each once");
    assert_eq!(app.outbox().len(), 3);
    assert!(dovecot.list_folder(MAILBOX, "INBOX").is_empty());
}

#[test]
fn a_server_without_move_gets_copy_and_a_keyword_never_expunge() {
    let dovecot = Dovecot::start_with(
        "imap_capability = IMAP4rev1 SASL-IR LOGIN-REFERRALS ID ENABLE IDLE LITERAL+",
    );
    let sink = SmtpSink::start();
    let app = Rsvpd::new(&dovecot, &sink);
    // Someone else's mail marked \Deleted must survive us.
    dovecot.deliver(MAILBOX, b"From: other@example.com\r\nSubject: keep me\r\nMessage-ID: <keep@example.com>\r\n\r\nx\r\n");
    {
        let mut s = dovecot.imap_session(MAILBOX);
        s.select("INBOX").unwrap_or_else(|e| panic!("{e}"));
        s.store("1", "+FLAGS (\\Deleted)")
            .unwrap_or_else(|e| panic!("{e}"));
        let _ = s.logout();
    }
    dovecot.deliver(MAILBOX, &registration(1));
    app.run_once();
    app.run_once();

    assert_eq!(app.attendees("miko-2027", false).len(), 1);
    assert_eq!(
        app.inbound().len(),
        1,
        "the \\Deleted mail is not ours to read, ours is read once"
    );
    let inbox = dovecot.list_folder(MAILBOX, "INBOX");
    assert_eq!(inbox.len(), 2, "nothing expunged");
    let ours = inbox
        .iter()
        .find(|m| String::from_utf8_lossy(&m.2).contains("imapfault-1"))
        .expect("ours");
    assert!(ours.1.iter().any(|f| f == "$RsvpdDone"), "{:?}", ours.1);
    assert_eq!(
        dovecot.list_folder(MAILBOX, "rsvpd.processed").len(),
        1,
        "a copy was filed"
    );
}

#[test]
fn other_clients_changing_the_folder_meanwhile_do_not_confuse_rsvpd() {
    let dovecot = Dovecot::start_with("imap_idle_notify_interval = 1 secs");
    let sink = SmtpSink::start();
    let app = Rsvpd::new(&dovecot, &sink);
    let daemon = app.spawn();
    wait_ready(&dovecot, &daemon);
    // Another client delivers, flags and expunges mail that is not a registration,
    // so rsvpd sees untagged EXISTS, FETCH and EXPUNGE responses and "Still here".
    for i in 0..3 {
        dovecot.deliver(MAILBOX, format!("From: x@example.com\r\nSubject: noise {i}\r\nMessage-ID: <noise-{i}@x>\r\nAuto-Submitted: auto-generated\r\n\r\nx\r\n").as_bytes());
    }
    {
        let mut s = dovecot.imap_session(MAILBOX);
        s.select("rsvpd.processed")
            .unwrap_or_else(|e| panic!("{e}"));
        let _ = s.store("1:*", "+FLAGS (\\Flagged)");
        let _ = s.logout();
    }
    std::thread::sleep(Duration::from_millis(1500));
    dovecot.deliver(MAILBOX, &registration(7));
    wait_answered(&sink, "p7@example.com", WAIT, || daemon.log());
    let inbound = app.inbound();
    assert_eq!(inbound.len(), 4, "{inbound:?}");
}
