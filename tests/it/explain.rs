//! Issue 11's store-level parts: the explanation of every decision is stored
//! with the inbound message and shown by `review` (table and JSON) and
//! `person`; a mail that only thanks is stored with the outcome `thanks` and
//! shown in the attendee's history, not in the review queue. On both backends.

use std::time::Duration;

use crate::app::{Backend, MAILBOX, Rsvpd, mail, on_both_backends, servers};

on_both_backends!(review_and_person_show_why);

fn review_and_person_show_why(backend: Backend) {
    let (dovecot, sink) = servers();
    let app = Rsvpd::on(backend, &dovecot, &sink);
    let send = |name: &str, from: &str, subject: &str, id: &str, body: &str| {
        dovecot.deliver(MAILBOX, &mail(name, from, MAILBOX, subject, id, body));
    };
    send(
        "Petra Lange",
        "petra.lange@example.de",
        "Frage Migrationskonferenz",
        "why-1@example.de",
        "Guten Tag,\r\n\r\nist der Saal barrierefrei? Dann melde ich mich an.\r\n\r\nPetra Lange",
    );
    send(
        "Kemal Arslan",
        "kemal.arslan@example.de",
        "Anmeldung Migrationskonferenz",
        "why-2@example.de",
        "Hallo,\r\n\r\nich sage hiermit zu und melde mich zur Migrationskonferenz an.\r\n\r\nKemal Arslan",
    );
    app.run_once();
    sink.wait_for(1, Duration::from_secs(30));
    send(
        "Kemal Arslan",
        "kemal.arslan@example.de",
        "Danke",
        "why-3@example.de",
        "Vielen Dank für die Bestätigung!\r\n\r\nKemal",
    );
    app.run_once();

    // The review queue holds the conditional mail, with why.
    let review = app.review();
    assert_eq!(review.len(), 1, "only the conditional mail: {review:#?}");
    let steps = review[0]["explanation"]["steps"]
        .as_array()
        .cloned()
        .unwrap_or_default();
    let conditional = steps
        .iter()
        .find(|s| s["rule"] == "conditional")
        .unwrap_or_else(|| panic!("a conditional step: {review:#?}"));
    assert_eq!(conditional["text"], "Dann melde ich mich an.");
    assert_eq!(conditional["language"], "de");
    let table = app.ok(&["review"]);
    assert!(table.contains("WHY"), "{table}");
    assert!(
        table.contains("conditional \"^ dann\" (de) in «Dann"),
        "{table}"
    );

    // `person` shows why the registration was recorded, and the thank-you
    // in the history with its own outcome.
    let out = app.ok(&["person", "kemal.arslan@example.de"]);
    let p: serde_json::Value =
        serde_json::from_str(&out).unwrap_or_else(|e| panic!("person JSON ({e}):\n{out}"));
    let received = p["messages_received"]
        .as_array()
        .cloned()
        .unwrap_or_default();
    assert_eq!(received.len(), 2, "{p:#}");
    assert_eq!(received[0]["outcome"], "recorded");
    let why = received[0]["explanation"]["why"].as_str().unwrap_or("");
    assert!(
        why.contains("register") && why.contains("melde mich zur Migrationskonferenz an"),
        "{p:#}"
    );
    assert_eq!(received[1]["outcome"], "thanks", "{p:#}");
    assert!(
        received[1]["explanation"]["why"]
            .as_str()
            .unwrap_or("")
            .contains("Vielen Dank"),
        "{p:#}"
    );
}
