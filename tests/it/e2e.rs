//! End to end: mail delivered into a real Dovecot, rsvpd run as a real process,
//! answers received by a real SMTP server (smtp-sink).

use std::time::Duration;

use crate::app::{Backend, MAILBOX, Rsvpd, mail, on_both_backends, registration, servers};

const WAIT: Duration = Duration::from_secs(30);

on_both_backends!(
    registration_over_imap_is_recorded_and_confirmed_over_smtp,
    cancellation_reply_cancels_and_sends_a_receipt,
    mails_fetched_together_are_read_as_if_one_after_the_other,
);

fn registration_over_imap_is_recorded_and_confirmed_over_smtp(backend: Backend) {
    let (dovecot, sink) = servers();
    let app = Rsvpd::on(backend, &dovecot, &sink);
    dovecot.deliver(
        MAILBOX,
        &registration(
            "Jürgen Größmann",
            "j.groessmann@example.com",
            "reg-1@example.com",
        ),
    );

    app.run_once();

    let attendees = app.attendees("miko-2027", false);
    assert_eq!(attendees.len(), 1, "{attendees:#?}");
    let a = &attendees[0];
    assert_eq!(a["email"], "j.groessmann@example.com");
    assert_eq!(a["name"], "Jürgen Größmann");
    assert_eq!(a["status"], "confirmed");
    assert_eq!(a["party_size"], 1);
    assert_eq!(a["language"], "de");
    for key in [
        "organization",
        "companions",
        "workshops",
        "notes",
        "registered_at",
    ] {
        assert!(a.get(key).is_some(), "attendee JSON lacks `{key}`: {a}");
    }

    let sent = sink.wait_for(1, WAIT);
    assert_eq!(sent.len(), 1);
    let m = &sent[0];
    assert_eq!(m.rcpt_to, vec!["j.groessmann@example.com".to_string()]);
    assert_eq!(m.mail_from, "anmeldung@example.org");
    assert_eq!(
        m.header("In-Reply-To").as_deref(),
        Some("<reg-1@example.com>")
    );
    assert_eq!(
        m.header("References").as_deref(),
        Some("<reg-1@example.com>")
    );
    assert_eq!(m.header("Auto-Submitted").as_deref(), Some("auto-replied"));
    let own_id = m.header("Message-ID").expect("a Message-ID");
    assert!(own_id.ends_with("@example.org>"), "{own_id}");
    let parsed = mail_parser::MessageParser::default()
        .parse(&m.raw)
        .expect("parses");
    assert_eq!(
        parsed.subject(),
        Some("Anmeldebestätigung: Vierte Migrationskonferenz")
    );
    let text = parsed.body_text(0).expect("a text part");
    assert!(text.contains("Guten Tag Jürgen Größmann"), "{text}");
    assert!(
        text.contains("Donnerstag, 15. Oktober 2099, 13:30–19:30 Uhr"),
        "{text}"
    );
    assert!(text.contains("Mosaiksaal"), "{text}");

    // The mail left the inbox for the processed folder, and was not deleted.
    assert!(dovecot.list_folder(MAILBOX, "INBOX").is_empty());
    assert_eq!(dovecot.list_folder(MAILBOX, "rsvpd.processed").len(), 1);
    assert_eq!(app.inbound()[0].1, "recorded");
}

fn cancellation_reply_cancels_and_sends_a_receipt(backend: Backend) {
    let (dovecot, sink) = servers();
    let app = Rsvpd::on(backend, &dovecot, &sink);
    dovecot.deliver(
        MAILBOX,
        &registration("Ayşe Yılmaz", "ayse@example.net", "reg-2@example.net"),
    );
    app.run_once();
    let confirmation = sink.wait_for(1, WAIT).remove(0);
    let confirmation_id = confirmation.header("Message-ID").expect("Message-ID");

    let cancel = format!(
        "From: Ayşe Yılmaz <ayse@example.net>\r\nTo: {MAILBOX}\r\nSubject: Re: Anmeldebestätigung\r\n\
         In-Reply-To: {confirmation_id}\r\nReferences: <reg-2@example.net> {confirmation_id}\r\n\
         Message-ID: <cancel-2@example.net>\r\nContent-Type: text/plain; charset=utf-8\r\n\r\n\
         Leider muss ich absagen, bitte streichen Sie mich.\r\n\r\n> Guten Tag,\r\n> vielen Dank für Ihre Anmeldung.\r\n"
    );
    dovecot.deliver(MAILBOX, cancel.as_bytes());
    app.run_once();

    assert!(app.attendees("miko-2027", false).is_empty());
    let all = app.attendees("miko-2027", true);
    assert_eq!(all.len(), 1);
    assert_eq!(all[0]["status"], "cancelled");
    let sent = sink.wait_for(2, WAIT);
    let receipt = sent
        .iter()
        .find(|m| m.header("In-Reply-To").as_deref() == Some("<cancel-2@example.net>"))
        .expect("a cancellation receipt threaded to the cancel mail");
    assert_eq!(receipt.rcpt_to, vec!["ayse@example.net".to_string()]);
}

/// `run --once` records the mails of one fetch in one transaction; a mail that
/// depends on an earlier one of the batch (here: a cancellation naming no
/// conference, which only the sender's new registration routes) is read after
/// that one is committed, and a copy of a mail in the same batch is a duplicate.
fn mails_fetched_together_are_read_as_if_one_after_the_other(backend: Backend) {
    let (dovecot, sink) = servers();
    let app = Rsvpd::on(backend, &dovecot, &sink);
    let ayse = registration("Ayşe Yılmaz", "ayse@example.net", "batch-1@example.net");
    dovecot.deliver(MAILBOX, &ayse);
    dovecot.deliver(
        MAILBOX,
        &registration("Kwame Mensah", "kwame@example.com", "batch-2@example.com"),
    );
    dovecot.deliver(
        MAILBOX,
        &mail(
            "Ayşe Yılmaz",
            "ayse@example.net",
            MAILBOX,
            "Absage",
            "batch-3@example.net",
            "Guten Tag,\r\nleider muss ich absagen, bitte streichen Sie mich.\r\nAyşe Yılmaz",
        ),
    );
    dovecot.deliver(MAILBOX, &ayse);

    app.run_once();

    let all = app.attendees("miko-2027", true);
    let status = |email: &str| {
        all.iter()
            .find(|a| a["email"] == email)
            .map(|a| a["status"].clone())
            .unwrap_or_else(|| panic!("{email} not recorded: {all:#?}"))
    };
    assert_eq!(status("ayse@example.net"), "cancelled");
    assert_eq!(status("kwame@example.com"), "confirmed");
    let outcomes: Vec<(String, String)> = app.inbound().into_iter().map(|i| (i.0, i.1)).collect();
    assert_eq!(
        outcomes,
        vec![
            ("batch-1@example.net".to_string(), "recorded".to_string()),
            ("batch-2@example.com".to_string(), "recorded".to_string()),
            ("batch-3@example.net".to_string(), "recorded".to_string()),
            ("batch-1@example.net".to_string(), "duplicate".to_string()),
        ]
    );
    assert_eq!(dovecot.list_folder(MAILBOX, "rsvpd.processed").len(), 4);
    assert!(dovecot.list_folder(MAILBOX, "INBOX").is_empty());
    // Ayşe's confirmation and receipt, Kwame's confirmation.
    assert_eq!(sink.wait_for(3, WAIT).len(), 3);
}

#[test]
fn auto_reply_is_ignored_and_never_answered() {
    let (dovecot, sink) = servers();
    let app = Rsvpd::new(&dovecot, &sink);
    let ooo = "From: Peter Schmidt <p.schmidt@example.com>\r\nTo: anmeldung@example.org\r\n\
               Subject: Automatische Antwort: Anmeldung Migrationskonferenz\r\nAuto-Submitted: auto-replied\r\n\
               Message-ID: <ooo-1@example.com>\r\nContent-Type: text/plain; charset=utf-8\r\n\r\n\
               Ich bin bis zum 20.09. nicht im Büro. Ihre Anmeldung zur Migrationskonferenz lese ich danach.\r\n";
    dovecot.deliver(MAILBOX, ooo.as_bytes());
    app.run_once();

    assert!(app.attendees("miko-2027", true).is_empty());
    assert!(
        app.outbox().is_empty(),
        "nothing may be queued for an auto-reply"
    );
    let inbound = app.inbound();
    assert_eq!(inbound.len(), 1);
    assert_eq!(inbound[0].0, "ooo-1@example.com");
    assert_eq!(inbound[0].1, "ignored", "{inbound:?}");
    assert!(inbound[0].2.is_some(), "the reason is stored");
    assert_eq!(dovecot.list_folder(MAILBOX, "rsvpd.processed").len(), 1);
    // smtp-sink got nothing: give a wrong send every chance to show up.
    app.run_once();
    assert!(sink.messages().is_empty());
}

#[test]
fn the_same_mail_delivered_twice_registers_and_answers_once() {
    let (dovecot, sink) = servers();
    let app = Rsvpd::new(&dovecot, &sink);
    let raw = registration("Kwame Mensah", "kwame@example.com", "twice@example.com");
    dovecot.deliver(MAILBOX, &raw);
    app.run_once();
    dovecot.deliver(MAILBOX, &raw);
    app.run_once();
    app.run_once();

    assert_eq!(app.attendees("miko-2027", false).len(), 1);
    assert_eq!(app.outbox().len(), 1, "one confirmation only");
    let outcomes: Vec<String> = app.inbound().into_iter().map(|i| i.1).collect();
    assert_eq!(
        outcomes,
        vec!["recorded".to_string(), "duplicate".to_string()]
    );
    assert_eq!(
        dovecot.list_folder(MAILBOX, "rsvpd.processed").len(),
        2,
        "both copies kept"
    );
    assert_eq!(sink.wait_for(1, WAIT).len(), 1);
}

#[test]
fn unclear_mail_goes_to_review_and_the_review_folder() {
    let (dovecot, sink) = servers();
    let app = Rsvpd::with_config(
        &dovecot,
        &sink,
        "",
        &format!(
            "{}\n[[conference]]\nid = \"lip-2\"\ntitle = \"Auftakt LIP 2.0\"\nstarts = \"2099-01-22T10:00\"\nends = \"2099-01-22T16:00\"\n",
            crate::app::CONFERENCES
        ),
    );
    let question = mail(
        "Peter Schmidt",
        "p.schmidt@example.com",
        MAILBOX,
        "Frage",
        "question-1@example.com",
        "Hallo, gibt es bei Ihnen Parkplätze?",
    );
    dovecot.deliver(MAILBOX, &question);
    app.run_once();

    let review = app.review();
    assert_eq!(review.len(), 1, "{review:#?}");
    for key in [
        "id",
        "message_id",
        "from",
        "subject",
        "reason",
        "received_at",
    ] {
        assert!(review[0].get(key).is_some(), "review JSON lacks `{key}`");
    }
    assert_eq!(review[0]["message_id"], "question-1@example.com");
    assert_eq!(dovecot.list_folder(MAILBOX, "rsvpd.review").len(), 1);
    assert!(dovecot.list_folder(MAILBOX, "INBOX").is_empty());

    // An organizer decides it is a registration for the fishbowl: it is answered.
    let id = review[0]["id"].as_i64().expect("numeric id").to_string();
    app.ok(&["review", "assign", &id, "fishbowl-hainholz"]);
    assert!(app.review().is_empty());
    assert_eq!(app.attendees("fishbowl-hainholz", false).len(), 1);
    app.run_once();
    let sent = sink.wait_for(1, WAIT);
    assert_eq!(sent[0].rcpt_to, vec!["p.schmidt@example.com".to_string()]);
    assert_eq!(
        sent[0].header("In-Reply-To").as_deref(),
        Some("<question-1@example.com>")
    );
}

#[test]
fn daemon_answers_pushed_mail_and_stops_cleanly_on_sigterm() {
    let (dovecot, sink) = servers();
    let app = Rsvpd::new(&dovecot, &sink);
    let mut daemon = app.spawn();
    // Wait until the daemon has created its folders, i.e. is logged in and idle.
    dovecot.wait_for_folder(MAILBOX, "rsvpd.processed", 0, WAIT);
    dovecot.deliver(
        MAILBOX,
        &registration("Omar Haddad", "omar@example.com", "pushed@example.com"),
    );
    let sent = sink.wait_for(1, WAIT);
    assert_eq!(sent[0].rcpt_to, vec!["omar@example.com".to_string()]);

    daemon.stop_cleanly(libc::SIGTERM);
    assert_eq!(app.attendees("miko-2027", false).len(), 1);
}

#[test]
fn sigint_stops_the_daemon_too() {
    let (dovecot, sink) = servers();
    let app = Rsvpd::new(&dovecot, &sink);
    let mut daemon = app.spawn();
    dovecot.wait_for_folder(MAILBOX, "rsvpd.processed", 0, WAIT);
    daemon.stop_cleanly(libc::SIGINT);
}

#[test]
fn check_reaches_the_servers_and_names_a_refusal() {
    let (dovecot, sink) = servers();
    let app = Rsvpd::new(&dovecot, &sink);
    let out = app.ok(&["check"]);
    assert!(out.contains("mailbox     ok"), "{out}");
    assert!(out.contains("smtp        ok"), "{out}");

    let bad = app
        .command()
        .env("RSVPD_IMAP_PASSWORD", "wrong")
        .arg("check")
        .output()
        .expect("run");
    assert!(!bad.status.success());
    let err = String::from_utf8_lossy(&bad.stderr);
    assert!(err.contains("refused the login"), "{err}");
    assert!(
        !err.contains("wrong"),
        "the password must not be printed: {err}"
    );
}

#[test]
fn check_names_an_unreachable_smtp_server() {
    let (dovecot, sink) = servers();
    let app = Rsvpd::new(&dovecot, &sink);
    let port = sink.port();
    drop(sink);
    let out = app.output(&["check"]);
    assert!(!out.status.success());
    let err = String::from_utf8_lossy(&out.stderr);
    assert!(err.contains("SMTP"), "{err}");
    assert!(
        err.contains(&port.to_string()) || err.contains("onnection refused"),
        "{err}"
    );
}

#[test]
fn review_dismiss_closes_an_item_and_names_an_unknown_one() {
    let (dovecot, sink) = servers();
    let app = Rsvpd::new(&dovecot, &sink);
    for i in 0..2 {
        dovecot.deliver(
            MAILBOX,
            &mail(
                "Frager",
                "q@example.com",
                MAILBOX,
                "Frage",
                &format!("q-{i}@example.com"),
                "Gibt es Parkplätze?",
            ),
        );
    }
    app.run_once();
    let review = app.review();
    assert_eq!(review.len(), 2, "{review:#?}");
    let id = review[0]["id"].as_i64().expect("id").to_string();
    app.ok(&["review", "dismiss", &id]);
    let left = app.review();
    assert_eq!(left.len(), 1);
    assert_ne!(
        left[0]["id"].as_i64().map(|i| i.to_string()),
        Some(id.clone())
    );
    let out = app.output(&["review", "dismiss", &id]);
    assert_eq!(out.status.code(), Some(1));
    assert!(String::from_utf8_lossy(&out.stderr).contains(&format!("no open review item {id}")));
    assert!(
        sink.messages().is_empty(),
        "a question gets no automatic answer"
    );
}

#[test]
fn sighup_reloads_the_config_and_a_broken_one_keeps_the_old() {
    let (dovecot, sink) = servers();
    let app = Rsvpd::new(&dovecot, &sink);
    let mut daemon = app.spawn();
    dovecot.wait_for_folder(MAILBOX, "rsvpd.processed", 0, WAIT);

    // A new conference appears in the config.
    let mut text = std::fs::read_to_string(&app.config).expect("config");
    text.push_str(
        "\n[[conference]]\nid = \"lip-2\"\ntitle = \"Auftakt LIP 2.0\"\naliases = [\"LIP 2.0\"]\n\
         starts = \"2099-01-22T10:00\"\nends = \"2099-01-22T16:00\"\n",
    );
    std::fs::write(&app.config, &text).expect("write");
    daemon.signal(libc::SIGHUP);
    crate::support::wait_until(
        WAIT,
        "the reload",
        || {
            daemon
                .log()
                .contains("configuration reloaded")
                .then_some(())
        },
        || daemon.log(),
    );
    dovecot.deliver(
        MAILBOX,
        &mail(
            "Lina Haddad",
            "lina@example.com",
            MAILBOX,
            "Anmeldung LIP 2.0",
            "lip-1@example.com",
            "Hiermit melde ich mich zum Auftakt LIP 2.0 an.",
        ),
    );
    sink.wait_for(1, WAIT);
    assert_eq!(app.attendees("lip-2", false).len(), 1);

    // A typo: the daemon says so and goes on with what it had.
    std::fs::write(&app.config, format!("{text}\nbogus_key = 1\n")).expect("write");
    daemon.signal(libc::SIGHUP);
    crate::support::wait_until(
        WAIT,
        "the refused reload",
        || daemon.log().contains("keeping the old one").then_some(()),
        || daemon.log(),
    );
    assert!(
        daemon.log().contains("bogus_key"),
        "the error names the key: {}",
        daemon.log()
    );
    dovecot.deliver(
        MAILBOX,
        &registration("Jan Kowalski", "jan@example.com", "after-typo@example.com"),
    );
    sink.wait_for(2, WAIT);

    daemon.signal(libc::SIGTERM);
    let status = daemon.wait_exit(Duration::from_secs(10)).expect("stops");
    assert!(status.success(), "{}", daemon.log());
}
