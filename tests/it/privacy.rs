//! Privacy (DSGVO): `person` shows what is stored about an address, `forget`
//! erases it, and personal data is purged `retention_days` after a conference.

use std::time::Duration;

use crate::app::{Backend, CONFERENCES, MAILBOX, Rsvpd, mail, on_both_backends};
use crate::support::dovecot::Dovecot;
use crate::support::smtp_sink::SmtpSink;

on_both_backends!(person_shows_everything_and_forget_erases_it);

fn person(app: &Rsvpd, email: &str) -> serde_json::Value {
    let out = app.ok(&["person", email]);
    serde_json::from_str(&out).unwrap_or_else(|e| panic!("person JSON ({e}):\n{out}"))
}

fn person_shows_everything_and_forget_erases_it(backend: Backend) {
    let dovecot = Dovecot::start();
    let sink = SmtpSink::start();
    let app = Rsvpd::on(backend, &dovecot, &sink);
    let raw = mail(
        "Ayşe Yılmaz",
        "ayse@example.net",
        MAILBOX,
        "Anmeldung Migrationskonferenz",
        "dsgvo-1@example.net",
        "Hiermit melde ich mich zur Migrationskonferenz an. Ich brauche einen Rollstuhlplatz.",
    );
    dovecot.deliver(MAILBOX, &raw);
    app.run_once();
    sink.wait_for(1, Duration::from_secs(30));

    let p = person(&app, "Ayse@Example.net");
    assert_eq!(
        p["registrations"].as_array().map(Vec::len),
        Some(1),
        "{p:#}"
    );
    assert_eq!(p["registrations"][0]["conference"], "miko-2027");
    assert_eq!(p["registrations"][0]["name"], "Ayşe Yılmaz");
    assert_eq!(p["registrations"][0]["history"][0]["action"], "register");
    assert_eq!(
        p["messages_received"][0]["message_id"],
        "dsgvo-1@example.net"
    );
    assert_eq!(p["messages_sent"][0]["kind"], "confirmation");

    let out = app.ok(&["forget", "ayse@example.net"]);
    assert!(out.contains("erased 1 registration"), "{out}");
    let p = person(&app, "ayse@example.net");
    assert_eq!(
        p["registrations"].as_array().map(Vec::len),
        Some(0),
        "{p:#}"
    );
    assert_eq!(p["messages_received"].as_array().map(Vec::len), Some(0));
    assert_eq!(p["messages_sent"].as_array().map(Vec::len), Some(0));
    assert!(app.attendees("miko-2027", true).is_empty());
    assert!(
        app.db(async |s| s.audit_actions().await).is_empty(),
        "no history left"
    );
    let copies = app.db(async |s| {
        let mut copies = Vec::new();
        for item in s.outbox_items().await? {
            let raw = s.outbox_raw(item.id).await?.unwrap_or_default();
            if item.recipient.contains("ayse") || String::from_utf8_lossy(&raw).contains("ayse") {
                copies.push(item.id);
            }
        }
        Ok(copies)
    });
    assert!(copies.is_empty(), "no copy of the mail left: {copies:?}");

    // A stray copy of the old mail is recognised and not registered again.
    dovecot.deliver(MAILBOX, &raw);
    app.run_once();
    assert!(app.attendees("miko-2027", true).is_empty());
    assert_eq!(
        app.inbound().last().map(|i| i.1.clone()).as_deref(),
        Some("duplicate")
    );
}

#[test]
fn personal_data_is_purged_after_the_retention_time() {
    let dovecot = Dovecot::start();
    let sink = SmtpSink::start();
    let conferences = format!(
        "{CONFERENCES}\n[[conference]]\nid = \"old-2020\"\ntitle = \"Alte Konferenz\"\n\
         starts = \"2020-03-01T10:00\"\nends = \"2020-03-01T16:00\"\n"
    );
    let app = Rsvpd::with_config(&dovecot, &sink, "", &conferences);
    app.ok(&["add", "old-2020", "old@example.com", "--name", "Old Timer"]);
    app.ok(&["add", "miko-2027", "new@example.com", "--name", "New Comer"]);
    assert_eq!(app.attendees("old-2020", true).len(), 1);
    app.run_once();
    assert!(
        app.attendees("old-2020", true).is_empty(),
        "purged: ended in 2020, kept 90 days"
    );
    assert_eq!(
        app.attendees("miko-2027", true).len(),
        1,
        "a coming conference keeps its data"
    );
    let p = person(&app, "old@example.com");
    assert_eq!(
        p["messages_sent"].as_array().map(Vec::len),
        Some(0),
        "{p:#}"
    );
}
