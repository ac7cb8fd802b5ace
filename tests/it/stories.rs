//! Stories on both storage backends that have no home elsewhere: an update by
//! reply, and the whole command line on PostgreSQL. The other stories of the
//! pipeline run on both backends where they live (`on_both_backends!` in
//! e2e: register, cancel; notify: waitlist + promotion, reminders; privacy:
//! person + forget). PostgreSQL: a private server per test
//! (`support::postgres`); real binary, Dovecot and smtp-sink, as everywhere.

use std::time::Duration;

use crate::app::{Backend, MAILBOX, Rsvpd, mail, on_both_backends, registration, servers};

const WAIT: Duration = Duration::from_secs(30);

on_both_backends!(
    update_by_a_reply_changes_the_registration,
    the_seats_count_follows_every_change
);

/// A registration by mail is recorded and confirmed; a reply changing the
/// workshop finds its conference by the thread (a Message-ID rsvpd sent) and
/// updates the registration; a reply cancelling cancels it; a copy of that
/// mail is a duplicate and changes nothing.
fn update_by_a_reply_changes_the_registration(backend: Backend) {
    let (dovecot, sink) = servers();
    let app = Rsvpd::on(backend, &dovecot, &sink);
    dovecot.deliver(
        MAILBOX,
        &registration("Ayşe Yılmaz", "ayse@example.net", "reg-1@example.net"),
    );
    app.run_once();
    let a = app.attendees("miko-2027", false);
    assert_eq!(a.len(), 1, "{a:#?}");
    assert_eq!(a[0]["name"], "Ayşe Yılmaz");
    assert_eq!(a[0]["status"], "confirmed");
    let confirmation = sink.wait_for(1, WAIT).remove(0);
    let our_id = confirmation.header("Message-ID").expect("Message-ID");

    let update = format!(
        "From: Ayşe Yılmaz <ayse@example.net>\r\nTo: {MAILBOX}\r\n\
         Subject: AW: Anmeldebestätigung: Vierte Migrationskonferenz\r\n\
         In-Reply-To: {our_id}\r\nReferences: <reg-1@example.net> {our_id}\r\n\
         Message-ID: <upd-1@example.net>\r\nContent-Type: text/plain; charset=utf-8\r\n\r\n\
         Guten Morgen,\r\n\r\nich würde gern meinen Workshop ändern: lieber Workshop 3 \
         „Bildung und Sprache“.\r\n\r\nMit freundlichen Grüßen\r\nAyşe Yılmaz\r\n"
    );
    dovecot.deliver(MAILBOX, update.as_bytes());
    app.run_once();
    let a = app.attendees("miko-2027", false);
    assert_eq!(a.len(), 1, "still one registration: {a:#?}");
    assert_eq!(a[0]["workshops"], serde_json::json!(["w3"]), "{a:#?}");

    let cancel = format!(
        "From: Ayşe Yılmaz <ayse@example.net>\r\nTo: {MAILBOX}\r\nSubject: Re: Anmeldebestätigung\r\n\
         In-Reply-To: {our_id}\r\nReferences: <reg-1@example.net> {our_id}\r\n\
         Message-ID: <cancel-1@example.net>\r\nContent-Type: text/plain; charset=utf-8\r\n\r\n\
         Leider muss ich absagen, bitte streichen Sie mich.\r\n"
    );
    dovecot.deliver(MAILBOX, cancel.as_bytes());
    app.run_once();
    assert!(app.attendees("miko-2027", false).is_empty());
    let all = app.attendees("miko-2027", true);
    assert_eq!(all.len(), 1, "{all:#?}");
    assert_eq!(all[0]["status"], "cancelled");
    let sent = sink.wait_for(3, WAIT);
    assert!(
        sent.iter()
            .any(|m| m.header("In-Reply-To").as_deref() == Some("<cancel-1@example.net>")),
        "a cancellation receipt threaded to the cancel mail"
    );
    let outcomes: Vec<String> = app.inbound().into_iter().map(|i| i.1).collect();
    assert_eq!(outcomes, ["recorded", "recorded", "recorded"]);
    // The same mail again is a duplicate and changes nothing.
    dovecot.deliver(MAILBOX, cancel.as_bytes());
    app.run_once();
    assert_eq!(
        app.inbound().last().map(|i| i.1.clone()).as_deref(),
        Some("duplicate")
    );
    assert_eq!(sink.messages().len(), 3);
}

/// Every command of the command line, on PostgreSQL.
#[test]
fn every_cli_command_works_on_postgres() {
    let (dovecot, sink) = servers();
    let app = Rsvpd::on(Backend::Postgres, &dovecot, &sink);
    let out = app.ok(&["check"]);
    assert!(out.contains("postgres://"), "{out}");
    let conferences: serde_json::Value =
        serde_json::from_str(&app.ok(&["conferences", "--format", "json"])).expect("json");
    assert_eq!(conferences.as_array().map(Vec::len), Some(2));

    let eml = app.dir.path().join("in.eml");
    std::fs::write(
        &eml,
        registration("Jan Kowalski", "jan@example.pl", "ingest-1@example.pl"),
    )
    .expect("write");
    let out = app.ok(&["ingest", eml.to_str().expect("utf-8 path")]);
    assert!(out.contains("recorded"), "{out}");
    let unclear = app.dir.path().join("unclear.eml");
    for (i, who) in ["a", "b"].iter().enumerate() {
        std::fs::write(
            &unclear,
            mail(
                "Unklar",
                &format!("{who}@example.org"),
                MAILBOX,
                "Frage",
                &format!("unclear-{i}@example.org"),
                "Wo ist denn das Rathaus?",
            ),
        )
        .expect("write");
        app.ok(&["ingest", unclear.to_str().expect("utf-8 path")]);
    }
    let review = app.review();
    assert_eq!(review.len(), 2, "{review:#?}");
    let first = review[0]["id"].to_string();
    let second = review[1]["id"].to_string();
    app.ok(&["review", "assign", &first, "miko-2027"]);
    app.ok(&["review", "dismiss", &second]);
    assert!(app.review().is_empty());

    app.ok(&[
        "add",
        "fishbowl-hainholz",
        "lea@example.com",
        "--name",
        "Lea Wolf",
    ]);
    app.ok(&["cancel", "fishbowl-hainholz", "lea@example.com"]);
    let csv = app.ok(&["attendees", "miko-2027", "--format", "csv"]);
    assert!(
        csv.contains("jan@example.pl") && csv.contains("a@example.org"),
        "{csv}"
    );
    assert_eq!(app.attendees("fishbowl-hainholz", true).len(), 1);

    let body = app.dir.path().join("body.txt");
    std::fs::write(&body, "Guten Tag {{ name }},\n\nbis bald.\n").expect("write");
    let body = body.to_str().expect("utf-8 path");
    let send = |extra: &[&str]| {
        let mut args = vec![
            "send",
            "miko-2027",
            "--subject",
            "Hinweis",
            "--body-file",
            body,
        ];
        args.extend_from_slice(extra);
        app.ok(&args)
    };
    let out = send(&["--dry-run"]);
    assert!(out.contains("dry run: 2 mail(s)"), "{out}");
    let out = send(&[]);
    assert!(out.contains("2 mail(s) queued"), "{out}");
    let table = app.ok(&["outbox"]);
    assert!(table.contains("queued"), "{table}");

    app.run_once();
    // 1 confirmation by ingest, 1 by review assign, add + cancel, 2 broadcasts.
    let sent = sink.wait_for(6, WAIT);
    assert_eq!(sent.len(), 6);
    assert!(app.outbox().iter().all(|o| o["state"] == "sent"));

    let person: serde_json::Value =
        serde_json::from_str(&app.ok(&["person", "jan@example.pl"])).expect("json");
    assert_eq!(person["registrations"].as_array().map(Vec::len), Some(1));
    let out = app.ok(&["forget", "jan@example.pl"]);
    assert!(out.contains("erased 1 registration"), "{out}");
}

on_both_backends!(a_companion_dropping_out_frees_places_for_the_waitlist);

fn reply(name: &str, addr: &str, our_id: &str, id: &str, body: &str) -> Vec<u8> {
    format!(
        "From: {name} <{addr}>\r\nTo: {MAILBOX}\r\nSubject: AW: Anmeldebestätigung: Fishbowl-Diskussion Hainholz\r\n\
         In-Reply-To: {our_id}\r\nReferences: {our_id}\r\n\
         Message-ID: <{id}>\r\nContent-Type: text/plain; charset=utf-8\r\n\r\n{body}\r\n"
    )
    .into_bytes()
}

/// Issue 11: "mein Mann kommt doch nicht mit" is a smaller party, not a
/// cancellation: the writer stays confirmed with the party the reply states,
/// and the freed place goes to the waitlist (a promotion mail). In English
/// too ("my wife can't join us after all, so it will be just me"), where
/// "us" once made it the writer's own cancellation. Fishbowl has 3 places.
fn a_companion_dropping_out_frees_places_for_the_waitlist(backend: Backend) {
    let (dovecot, sink) = servers();
    let app = Rsvpd::on(backend, &dovecot, &sink);
    let status = |email: &str| {
        app.attendees("fishbowl-hainholz", true)
            .into_iter()
            .find(|a| a["email"] == email)
            .map(|a| (a["status"].to_string(), a["party_size"].to_string()))
    };
    dovecot.deliver(
        MAILBOX,
        &mail(
            "Sevgi Arslan",
            "sevgi@example.net",
            MAILBOX,
            "Anmeldung Fishbowl",
            "fb-1@example.net",
            "Hallo,\r\n\r\nich melde mich mit meinem Mann zur Fishbowl-Diskussion an.\r\n\r\nSevgi Arslan",
        ),
    );
    dovecot.deliver(
        MAILBOX,
        &mail(
            "Omar Haddad",
            "omar@example.net",
            MAILBOX,
            "Anmeldung Fishbowl",
            "fb-2@example.net",
            "Hallo,\r\n\r\nich melde mich mit meiner Frau zur Fishbowl-Diskussion an.\r\n\r\nOmar Haddad",
        ),
    );
    app.run_once();
    let confirmed = |n: &str| Some(("\"confirmed\"".to_string(), n.to_string()));
    assert_eq!(status("sevgi@example.net"), confirmed("2"));
    assert_eq!(
        status("omar@example.net"),
        Some(("\"waitlisted\"".to_string(), "2".to_string()))
    );
    let sent = sink.wait_for(2, WAIT);
    let our_id = |to: &str| {
        sent.iter()
            .find(|m| m.rcpt_to == [to])
            .and_then(|m| m.header("Message-ID"))
            .expect("an answer with a Message-ID")
    };
    let sevgi_id = our_id("sevgi@example.net");
    let omar_id = our_id("omar@example.net");

    dovecot.deliver(
        MAILBOX,
        &reply(
            "Sevgi Arslan",
            "sevgi@example.net",
            &sevgi_id,
            "fb-3@example.net",
            "Hallo,\r\nmein Mann kommt doch nicht mit, ich komme alleine.\r\nGrüße\r\nSevgi Arslan",
        ),
    );
    app.run_once();
    assert_eq!(
        status("sevgi@example.net"),
        confirmed("1"),
        "still coming, alone"
    );
    assert_eq!(status("omar@example.net"), confirmed("2"), "promoted");
    let sent = sink.wait_for(4, WAIT);
    assert!(
        sent.iter().any(|m| m.rcpt_to == ["omar@example.net"]
            && mail_parser::MessageParser::default()
                .parse(&m.raw)
                .and_then(|p| p.subject().map(|s| s.starts_with("Ein Platz ist frei")))
                .unwrap_or(false)),
        "a promotion mail"
    );

    dovecot.deliver(
        MAILBOX,
        &reply(
            "Omar Haddad",
            "omar@example.net",
            &omar_id,
            "fb-4@example.net",
            "Hi,\r\n\r\nmy wife can't join us after all, so it will be just me.\r\n\r\nBest,\r\nOmar Haddad",
        ),
    );
    app.run_once();
    assert_eq!(status("omar@example.net"), confirmed("1"), "not cancelled");
    let outcomes: Vec<String> = app.inbound().into_iter().map(|i| i.1).collect();
    assert_eq!(outcomes, ["recorded"; 4]);
}

/// The seats a conference's confirmed registrations take are counted by the
/// database as registrations change (migration `capacity`); after each kind
/// of change — register, grow, shrink, cancel, forget, waitlist, promotion —
/// the count equals the sum of the confirmed party sizes.
fn the_seats_count_follows_every_change(backend: Backend) {
    let (dovecot, sink) = servers();
    let app = Rsvpd::on(backend, &dovecot, &sink);
    let check = |conference: &str, expected: i64| {
        let (counted, summed) = app.db(async |s| {
            let summed: i64 = s
                .registrations(conference, true)
                .await?
                .iter()
                .filter(|r| r.status == rsvpd::storage::Status::Confirmed)
                .map(|r| i64::from(r.party_size))
                .sum();
            let mut tx = s.begin().await?;
            let counted = tx.seats_taken(conference).await?;
            Ok((counted, summed))
        });
        assert_eq!((counted, summed), (expected, expected), "{conference}");
    };
    let add = |conference: &str, who: &str, party: &str| {
        app.ok(&["add", conference, who, "--party-size", party]);
    };
    let status = |conference: &str, who: &str| {
        let all = app.attendees(conference, true);
        let r = all
            .iter()
            .find(|r| r["email"] == who)
            .unwrap_or_else(|| panic!("{who} not in {all:#?}"));
        r["status"].as_str().unwrap_or_default().to_string()
    };
    check("miko-2027", 0);
    add("miko-2027", "a@example.org", "3");
    add("miko-2027", "b@example.org", "1");
    add("miko-2027", "c@example.org", "2");
    check("miko-2027", 6);
    // Registering again changes the party: it grows, then shrinks.
    add("miko-2027", "b@example.org", "4");
    check("miko-2027", 9);
    add("miko-2027", "a@example.org", "2");
    check("miko-2027", 8);
    app.ok(&["cancel", "miko-2027", "b@example.org"]);
    check("miko-2027", 4);
    app.ok(&["forget", "c@example.org"]);
    check("miko-2027", 2);
    // Capacity 3: the second party waits, and moves up when the first cancels.
    add("fishbowl-hainholz", "q@example.org", "2");
    add("fishbowl-hainholz", "r@example.org", "2");
    assert_eq!(status("fishbowl-hainholz", "r@example.org"), "waitlisted");
    check("fishbowl-hainholz", 2);
    // The confirmed party grows into the last place; the waiting one still waits.
    add("fishbowl-hainholz", "q@example.org", "3");
    assert_eq!(status("fishbowl-hainholz", "r@example.org"), "waitlisted");
    check("fishbowl-hainholz", 3);
    app.ok(&["cancel", "fishbowl-hainholz", "q@example.org"]);
    assert_eq!(status("fishbowl-hainholz", "q@example.org"), "cancelled");
    assert_eq!(status("fishbowl-hainholz", "r@example.org"), "confirmed");
    check("fishbowl-hainholz", 2);
    check("miko-2027", 2);
}
