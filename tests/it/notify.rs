//! Notify and schedule flows end to end: the real binary against a private
//! Dovecot and smtp-sink, with the wall clock under control by libfaketime
//! (`FAKETIME_DONT_FAKE_MONOTONIC=1`, so tokio's timers run on real time
//! while rsvpd's idea of "now" is the faked date). Nothing here sleeps and
//! hopes: every wait polls with a generous timeout.

use std::path::Path;
use std::process::Command;
use std::time::Duration;

use mail_parser::MimeHeaders as _;

use crate::app::{
    Backend, CONFERENCES, MAILBOX, Rsvpd, fake_clock, mail, on_both_backends, question,
    registration, servers,
};
use crate::support::dovecot::Dovecot;
use crate::support::smtp_sink::{SinkMessage, SmtpSink};

const WAIT: Duration = Duration::from_secs(30);

on_both_backends!(
    reminder_catch_up_within_grace_not_after_and_none_for_late_registrations,
    waitlist_and_promotion_over_smtp,
);

/// rsvpd with `args`, its clock starting at `at` (UTC, "YYYY-MM-DD HH:MM:SS") and running on.
fn faked(app: &Rsvpd, at: &str, args: &[&str]) -> Command {
    let mut c = app.command();
    c.args(args).env("TZ", "UTC");
    fake_clock(&mut c, &format!("@{at}"));
    c
}

/// Run rsvpd at the faked time `at` and insist on success; its stdout.
fn ok_at(app: &Rsvpd, at: &str, args: &[&str]) -> String {
    let out = faked(app, at, args).output().expect("run rsvpd");
    assert!(
        out.status.success(),
        "rsvpd {args:?} at {at} failed with {}:\nstdout:\n{}\nstderr:\n{}",
        out.status,
        String::from_utf8_lossy(&out.stdout),
        String::from_utf8_lossy(&out.stderr)
    );
    String::from_utf8_lossy(&out.stdout).into_owned()
}

fn parse(m: &SinkMessage) -> mail_parser::Message<'_> {
    mail_parser::MessageParser::default()
        .parse(&m.raw)
        .expect("the mail parses")
}

fn subject(m: &SinkMessage) -> String {
    parse(m).subject().unwrap_or_default().to_string()
}

fn with_subject(sent: &[SinkMessage], prefix: &str) -> Vec<SinkMessage> {
    sent.iter()
        .filter(|m| subject(m).starts_with(prefix))
        .cloned()
        .collect()
}

fn date_utc(m: &SinkMessage) -> chrono::DateTime<chrono::Utc> {
    let date = m.header("Date").expect("a Date header");
    chrono::DateTime::parse_from_rfc2822(&date)
        .unwrap_or_else(|e| panic!("Date `{date}`: {e}"))
        .with_timezone(&chrono::Utc)
}

fn utc(s: &str) -> chrono::DateTime<chrono::Utc> {
    chrono::DateTime::parse_from_rfc3339(s)
        .expect("test time")
        .with_timezone(&chrono::Utc)
}

fn outbox_kinds(app: &Rsvpd, kind: &str) -> Vec<serde_json::Value> {
    app.outbox()
        .into_iter()
        .filter(|o| o["kind"] == kind)
        .collect()
}

/// The `.ics` attached to `m`, parsed with the independent `ical` crate; checks
/// the parts PRODUCT.md promises and returns (UID, DTSTART value).
fn check_invite(m: &SinkMessage, conference: &str) -> (String, String) {
    let parsed = parse(m);
    let ics = parsed
        .attachments()
        .find(|a| a.attachment_name() == Some(&format!("{conference}.ics")))
        .unwrap_or_else(|| panic!("no {conference}.ics attached:\n{}", m.text()));
    let ct = ics.content_type().expect("a Content-Type");
    assert_eq!(
        (ct.ctype(), ct.subtype()),
        ("text", Some("calendar")),
        "{ct:?}"
    );
    let text = String::from_utf8_lossy(ics.contents()).into_owned();
    let cal = ical::IcalParser::new(std::io::BufReader::new(text.as_bytes()))
        .next()
        .expect("a calendar")
        .unwrap_or_else(|e| panic!("the ical crate refuses the invite ({e}):\n{text}"));
    let prop = |props: &[ical::property::Property], name: &str| {
        props
            .iter()
            .find(|p| p.name == name)
            .unwrap_or_else(|| panic!("{name} missing in:\n{text}"))
            .clone()
    };
    assert_eq!(
        prop(&cal.properties, "METHOD").value.as_deref(),
        Some("PUBLISH")
    );
    assert_eq!(cal.events.len(), 1);
    let ev = &cal.events[0];
    let start = prop(&ev.properties, "DTSTART");
    let tzid = start
        .params
        .as_ref()
        .and_then(|p| p.iter().find(|(k, _)| k == "TZID"))
        .map(|(_, v)| v.join(","))
        .expect("DTSTART with TZID");
    assert_eq!(tzid, "Europe/Berlin");
    assert!(
        cal.timezones.iter().any(|z| z
            .properties
            .iter()
            .any(|p| p.name == "TZID" && p.value.as_deref() == Some("Europe/Berlin"))),
        "a VTIMEZONE for Europe/Berlin:\n{text}"
    );
    assert!(prop(&ev.properties, "DTEND").params.is_some());
    assert!(prop(&ev.properties, "LOCATION").value.is_some());
    assert!(
        prop(&ev.properties, "ORGANIZER")
            .value
            .is_some_and(|o| o.starts_with("mailto:")),
        "{text}"
    );
    assert!(prop(&ev.properties, "SUMMARY").value.is_some());
    (
        prop(&ev.properties, "UID").value.unwrap_or_default(),
        start.value.unwrap_or_default(),
    )
}

const MIKO_2027: &str = r#"
[[conference]]
id = "miko-2027"
title = "Vierte Migrationskonferenz"
aliases = ["Migrationskonferenz"]
starts = "2027-10-15T13:30"
ends = "2027-10-15T19:30"
location = "Mosaiksaal, Neues Rathaus, Trammplatz 2, 30159 Hannover"
organizers = ["orga@example.org"]

[[conference.reminder]]
before = "1d"
at = "09:00"
"#;

/// The daemon sleeps until 09:00 Berlin the day before, sends the reminder
/// then (threaded to the registration, auto-generated, with the invite), and
/// neither a restart nor `run --once` sends it again.
#[test]
fn reminder_daemon_sleeps_until_nine_berlin_and_sends_once() {
    let (dovecot, sink) = servers();
    let app = Rsvpd::with_config(&dovecot, &sink, "", MIKO_2027);
    dovecot.deliver(
        MAILBOX,
        &registration("Ayşe Yılmaz", "ayse@example.net", "reg-1@example.net"),
    );
    ok_at(&app, "2027-09-06 07:14:02", &["run", "--once"]);
    assert_eq!(sink.wait_for(1, WAIT).len(), 1, "the confirmation");

    // 4 seconds before 09:00 CEST (07:00 UTC) on 14 October.
    let mut daemon = app.start_daemon(faked(&app, "2027-10-14 06:59:56", &["run"]));
    let sent = crate::support::wait_until(
        WAIT,
        "the reminder",
        || {
            let sent = sink.messages();
            (sent.len() >= 2).then_some(sent)
        },
        || daemon.log(),
    );
    let reminders = with_subject(&sent, "Erinnerung");
    assert_eq!(reminders.len(), 1, "{sent:#?}");
    let r = &reminders[0];
    let due = utc("2027-10-14T07:00:00Z");
    assert!(
        date_utc(r) >= due,
        "written at {} before 09:00 Berlin",
        date_utc(r)
    );
    assert!(date_utc(r) < due + chrono::Duration::seconds(20));
    assert_eq!(r.rcpt_to, vec!["ayse@example.net".to_string()]);
    assert_eq!(
        r.header("Auto-Submitted").as_deref(),
        Some("auto-generated")
    );
    assert_eq!(
        r.header("In-Reply-To").as_deref(),
        Some("<reg-1@example.net>")
    );
    let (uid, start) = check_invite(r, "miko-2027");
    assert_eq!(uid, "miko-2027@example.org");
    assert_eq!(start, "20271015T133000");
    let created = outbox_kinds(&app, "reminder")[0]["created_at"]
        .as_str()
        .unwrap_or_default()
        .to_string();
    assert!(
        created.as_str() >= "2027-10-14T07:00:00Z",
        "queued at {created}"
    );

    daemon.signal(libc::SIGTERM);
    assert!(
        daemon.wait_exit(Duration::from_secs(10)).is_some(),
        "{}",
        daemon.log()
    );
    // Later runs, within the grace window, send nothing more.
    ok_at(&app, "2027-10-14 08:00:00", &["run", "--once"]);
    ok_at(&app, "2027-10-14 10:00:00", &["run", "--once"]);
    assert_eq!(outbox_kinds(&app, "reminder").len(), 1);
    assert_eq!(with_subject(&sink.messages(), "Erinnerung").len(), 1);
}

/// "1 day before at 09:00" on the Sundays of both clock changes: not a
/// second early, exactly once, never after the start.
#[test]
fn reminders_leave_at_nine_local_across_both_clock_changes() {
    let (dovecot, sink) = servers();
    let app = Rsvpd::with_config(
        &dovecot,
        &sink,
        "",
        r#"
[[conference]]
id = "spring"
title = "Frühjahrsforum"
starts = "2027-03-29T10:00"
ends = "2027-03-29T12:00"
location = "Rathaus"
[[conference.reminder]]
before = "1d"
at = "09:00"

[[conference]]
id = "autumn"
title = "Herbstforum"
starts = "2027-11-01T10:00"
ends = "2027-11-01T12:00"
location = "Rathaus"
[[conference.reminder]]
before = "1d"
at = "09:00"
"#,
    );
    ok_at(
        &app,
        "2027-01-10 10:00:00",
        &["add", "spring", "a@example.net", "--name", "Anna"],
    );
    ok_at(
        &app,
        "2027-01-10 10:00:00",
        &["add", "autumn", "b@example.net", "--name", "Bernd"],
    );
    // 28 March: clocks went forward at 01:00 UTC; 09:00 CEST is 07:00 UTC.
    ok_at(&app, "2027-03-28 06:59:58", &["run", "--once"]);
    assert!(
        outbox_kinds(&app, "reminder").is_empty(),
        "not before 09:00"
    );
    ok_at(&app, "2027-03-28 07:00:00", &["run", "--once"]);
    ok_at(&app, "2027-03-28 07:30:00", &["run", "--once"]);
    let r = outbox_kinds(&app, "reminder");
    assert_eq!(r.len(), 1, "{r:#?}");
    assert_eq!(r[0]["recipient"], "a@example.net");
    // 31 October: clocks went back at 01:00 UTC; 09:00 CET is 08:00 UTC.
    ok_at(&app, "2027-10-31 07:59:58", &["run", "--once"]);
    assert_eq!(outbox_kinds(&app, "reminder").len(), 1, "not at 08:59 CET");
    ok_at(&app, "2027-10-31 08:00:00", &["run", "--once"]);
    // After the start (10:00 CET = 09:00 UTC): nothing, ever.
    ok_at(&app, "2027-11-01 09:00:00", &["run", "--once"]);
    let r = outbox_kinds(&app, "reminder");
    assert_eq!(r.len(), 2, "{r:#?}");
    assert_eq!(r[1]["recipient"], "b@example.net");

    let sent = sink.wait_for(4, WAIT);
    let reminders = with_subject(&sent, "Erinnerung");
    assert_eq!(reminders.len(), 2);
    let when: Vec<_> = reminders.iter().map(date_utc).collect();
    assert!(when[0] >= utc("2027-03-28T07:00:00Z") && when[0] < utc("2027-03-28T07:01:00Z"));
    assert!(when[1] >= utc("2027-10-31T08:00:00Z") && when[1] < utc("2027-10-31T08:01:00Z"));
}

/// After downtime a reminder is caught up within the grace window, not after
/// it, and a registration made after the rule's time gets none.
fn reminder_catch_up_within_grace_not_after_and_none_for_late_registrations(backend: Backend) {
    let (dovecot, sink) = servers();
    let app = Rsvpd::with_config_on(
        backend,
        &dovecot,
        &sink,
        "",
        r#"
[defaults]
reminder_grace = "6h"

[[conference]]
id = "within"
title = "Forum A"
starts = "2027-10-15T13:30"
ends = "2027-10-15T19:30"
[[conference.reminder]]
before = "1d"
at = "09:00"

[[conference]]
id = "beyond"
title = "Forum B"
starts = "2027-10-15T13:30"
ends = "2027-10-15T19:30"
reminder_grace = "1h"
[[conference.reminder]]
before = "1d"
at = "09:00"
"#,
    );
    for conf in ["within", "beyond"] {
        ok_at(
            &app,
            "2027-09-01 10:00:00",
            &["add", conf, "early@example.net"],
        );
    }
    // Registered at 09:30 Berlin, after the rule's 09:00.
    ok_at(
        &app,
        "2027-10-14 07:30:00",
        &["add", "within", "late@example.net"],
    );
    // rsvpd was down from 08:00 until 14:59 Berlin.
    ok_at(&app, "2027-10-14 12:59:00", &["run", "--once"]);
    let r = outbox_kinds(&app, "reminder");
    assert_eq!(r.len(), 1, "{r:#?}");
    assert_eq!(r[0]["conference"], "within");
    assert_eq!(r[0]["recipient"], "early@example.net");
    // And later runs add nothing.
    ok_at(&app, "2027-10-14 13:30:00", &["run", "--once"]);
    assert_eq!(outbox_kinds(&app, "reminder").len(), 1);
    let sent = sink.wait_for(4, WAIT);
    assert_eq!(with_subject(&sent, "Erinnerung").len(), 1);
}

/// A full room: the next registration is waitlisted and told so; a
/// cancellation promotes it with a mail and an invite; `add --force` goes over
/// capacity. Registrations by mail and by the CLI get the same mails.
fn waitlist_and_promotion_over_smtp(backend: Backend) {
    let (dovecot, sink) = servers();
    let app = Rsvpd::on(backend, &dovecot, &sink);
    // fishbowl-hainholz has capacity 3.
    app.ok(&[
        "add",
        "fishbowl-hainholz",
        "full@example.com",
        "--name",
        "Familie Mensah",
        "--party-size",
        "3",
    ]);
    dovecot.deliver(
        MAILBOX,
        &mail(
            "Omar Haddad",
            "omar@example.com",
            MAILBOX,
            "Anmeldung Fishbowl",
            "wait-1@example.com",
            "Hallo,\r\n\r\nich melde mich zur Fishbowl-Diskussion an.\r\n\r\nOmar Haddad\r\n",
        ),
    );
    app.run_once();
    let statuses: Vec<(String, String)> = app
        .attendees("fishbowl-hainholz", false)
        .iter()
        .map(|a| {
            (
                a["email"].as_str().unwrap_or_default().to_string(),
                a["status"].as_str().unwrap_or_default().to_string(),
            )
        })
        .collect();
    assert_eq!(
        statuses,
        vec![
            ("full@example.com".into(), "confirmed".into()),
            ("omar@example.com".into(), "waitlisted".into())
        ]
    );
    let sent = sink.wait_for(2, WAIT);
    let confirmation = sent
        .iter()
        .find(|m| m.rcpt_to == ["full@example.com"])
        .expect("the CLI registration is confirmed by mail");
    check_invite(confirmation, "fishbowl-hainholz");
    let waitlist = sent
        .iter()
        .find(|m| m.rcpt_to == ["omar@example.com"])
        .expect("a waitlist mail");
    assert!(
        subject(waitlist).starts_with("Warteliste"),
        "{}",
        subject(waitlist)
    );
    assert_eq!(
        waitlist.header("In-Reply-To").as_deref(),
        Some("<wait-1@example.com>")
    );
    assert_eq!(
        parse(waitlist).attachment_count(),
        0,
        "no invite while waiting"
    );

    app.ok(&["cancel", "fishbowl-hainholz", "full@example.com"]);
    app.run_once();
    let sent = sink.wait_for(4, WAIT);
    let promotion = sent
        .iter()
        .find(|m| m.rcpt_to == ["omar@example.com"] && subject(m).starts_with("Ein Platz ist frei"))
        .expect("a promotion mail");
    assert_eq!(
        promotion.header("In-Reply-To").as_deref(),
        Some("<wait-1@example.com>"),
        "threaded to the attendee's mail"
    );
    check_invite(promotion, "fishbowl-hainholz");
    assert!(
        sent.iter()
            .any(|m| m.rcpt_to == ["full@example.com"] && subject(m).starts_with("Abmeldung")),
        "the cancelled party gets a receipt"
    );
    let omar = app
        .attendees("fishbowl-hainholz", false)
        .into_iter()
        .find(|a| a["email"] == "omar@example.com")
        .expect("omar");
    assert_eq!(omar["status"], "confirmed");

    // Two more fill the room; --force goes beyond it.
    app.ok(&[
        "add",
        "fishbowl-hainholz",
        "two@example.com",
        "--party-size",
        "2",
    ]);
    let out = app.ok(&["add", "fishbowl-hainholz", "late@example.com"]);
    assert!(out.contains("waitlisted"), "{out}");
    let out = app.ok(&["add", "fishbowl-hainholz", "vip@example.com", "--force"]);
    assert!(out.contains("confirmed"), "{out}");
}

const DOUBLE: &str = r#"
[defaults]
opt_in_expiry = "7d"

[[conference]]
id = "fishbowl-hainholz"
title = "Fishbowl-Diskussion Hainholz"
aliases = ["Fishbowl"]
starts = "2099-11-04T18:00"
ends = "2099-11-04T20:30"
location = "Kulturtreff Hainholz"
capacity = 30
opt_in = "double"
"#;

/// opt_in = "double": the registration stays pending until the attendee
/// answers the request; the answer confirms it and brings the invite.
#[test]
fn double_opt_in_over_smtp() {
    let (dovecot, sink) = servers();
    let app = Rsvpd::with_config(&dovecot, &sink, "", DOUBLE);
    dovecot.deliver(
        MAILBOX,
        &mail(
            "Ayşe Yılmaz",
            "ayse@example.net",
            MAILBOX,
            "Anmeldung Fishbowl",
            "reg-1@example.net",
            "Hallo,\r\n\r\nich melde mich zur Fishbowl-Diskussion an.\r\n\r\nAyşe Yılmaz\r\n",
        ),
    );
    app.run_once();
    assert_eq!(
        app.attendees("fishbowl-hainholz", false)[0]["status"],
        "pending"
    );
    let request = sink.wait_for(1, WAIT).remove(0);
    let request_subject = subject(&request);
    assert!(
        request_subject.starts_with("Bitte bestätigen Sie Ihre Anmeldung"),
        "{request_subject}"
    );
    let token = request_subject
        .rsplit_once('[')
        .and_then(|(_, t)| t.strip_suffix(']'))
        .expect("[TOKEN] in the subject")
        .to_string();
    let reply_to = request.header("Reply-To").expect("a Reply-To");
    assert!(
        reply_to.contains(&format!("anmeldung+confirm-{token}@example.org")),
        "{reply_to}"
    );
    assert_eq!(parse(&request).attachment_count(), 0);
    let request_id = request.header("Message-ID").expect("Message-ID");

    // The attendee presses "reply": To is the Reply-To address.
    let reply = format!(
        "From: Ayşe Yılmaz <ayse@example.net>\r\nTo: {reply_to}\r\nSubject: Re: {request_subject}\r\n\
         In-Reply-To: {request_id}\r\nReferences: <reg-1@example.net> {request_id}\r\n\
         Message-ID: <yes-1@example.net>\r\nMIME-Version: 1.0\r\nContent-Type: text/plain; charset=utf-8\r\n\
         Content-Transfer-Encoding: 8bit\r\n\r\nJa, ich bestätige meine Anmeldung.\r\n\r\n> Bitte bestätigen Sie sie\r\n"
    );
    dovecot.deliver(MAILBOX, reply.as_bytes());
    app.run_once();
    assert_eq!(
        app.attendees("fishbowl-hainholz", false)[0]["status"],
        "confirmed"
    );
    let sent = sink.wait_for(2, WAIT);
    let confirmation = &sent[1];
    assert!(subject(confirmation).starts_with("Anmeldebestätigung"));
    assert_eq!(
        confirmation.header("In-Reply-To").as_deref(),
        Some("<yes-1@example.net>")
    );
    check_invite(confirmation, "fishbowl-hainholz");
}

/// A pending registration nobody confirms lapses after `opt_in_expiry`,
/// silently (no mail to an address never confirmed).
#[test]
fn unconfirmed_registration_expires_without_a_mail() {
    let (dovecot, sink) = servers();
    let app = Rsvpd::with_config(&dovecot, &sink, "", DOUBLE);
    dovecot.deliver(
        MAILBOX,
        &mail(
            "Ayşe Yılmaz",
            "ayse@example.net",
            MAILBOX,
            "Anmeldung Fishbowl",
            "reg-1@example.net",
            "Hallo,\r\n\r\nich melde mich zur Fishbowl-Diskussion an.\r\n",
        ),
    );
    ok_at(&app, "2099-10-01 10:00:00", &["run", "--once"]);
    assert_eq!(sink.wait_for(1, WAIT).len(), 1);
    ok_at(&app, "2099-10-08 09:59:00", &["run", "--once"]);
    assert_eq!(app.attendees("fishbowl-hainholz", false).len(), 1);
    ok_at(&app, "2099-10-08 10:00:30", &["run", "--once"]);
    assert!(app.attendees("fishbowl-hainholz", false).is_empty());
    let all = app.attendees("fishbowl-hainholz", true);
    assert_eq!(all[0]["status"], "cancelled");
    assert_eq!(
        app.db(async |s| s.audit_actions().await)
            .last()
            .map(String::as_str),
        Some("expire")
    );
    assert_eq!(app.outbox().len(), 1, "no mail about the expiry");
}

/// `rsvpd send`: one mail per attendee (never Bcc), filled with their name;
/// `--dry-run` prints the count and a sample and queues nothing.
#[test]
fn broadcast_over_smtp_one_mail_each_filled_with_the_name() {
    let (dovecot, sink) = servers();
    let app = Rsvpd::new(&dovecot, &sink);
    for (email, name, size) in [
        ("ayse@example.net", "Ayşe Yılmaz", "1"),
        ("kwame@example.com", "Kwame Mensah", "1"),
        ("jan@example.pl", "Jan Kowalski", "2"),
        ("gone@example.org", "Gone", "1"),
    ] {
        app.ok(&[
            "add",
            "fishbowl-hainholz",
            email,
            "--name",
            name,
            "--party-size",
            size,
        ]);
    }
    app.ok(&["cancel", "fishbowl-hainholz", "gone@example.org"]);
    app.run_once();
    let before = sink.wait_for(5, WAIT).len();
    let queued_before = app.outbox().len();

    let body = app.dir.path().join("body.txt");
    std::fs::write(
        &body,
        "Guten Tag {{ name }},\n\n{{ conference.title }} findet im großen Saal statt.\n",
    )
    .expect("write body");
    let body = body.to_str().expect("utf-8 path");
    let subject_tpl = "Raumänderung: {{ conference.title }}";
    let dry = app.ok(&[
        "send",
        "fishbowl-hainholz",
        "--subject",
        subject_tpl,
        "--body-file",
        body,
        "--dry-run",
    ]);
    assert!(dry.contains("3 mail(s) would be queued"), "{dry}");
    assert!(
        dry.contains("Subject: Raumänderung: Fishbowl-Diskussion Hainholz"),
        "{dry}"
    );
    assert!(dry.contains("Guten Tag Ayşe Yılmaz,"), "{dry}");
    assert_eq!(
        app.outbox().len(),
        queued_before,
        "a dry run queues nothing"
    );
    let dry = app.ok(&[
        "send",
        "fishbowl-hainholz",
        "--subject",
        subject_tpl,
        "--body-file",
        body,
        "--status",
        "confirmed",
        "--dry-run",
    ]);
    assert!(dry.contains("2 mail(s) would be queued"), "{dry}");

    let out = app.ok(&[
        "send",
        "fishbowl-hainholz",
        "--subject",
        subject_tpl,
        "--body-file",
        body,
    ]);
    assert!(out.contains("3 mail(s) queued"), "{out}");
    app.run_once();
    let sent = sink.wait_for(before + 3, WAIT);
    let broadcast = with_subject(&sent, "Raumänderung");
    assert_eq!(broadcast.len(), 3);
    for (email, name) in [
        ("ayse@example.net", "Ayşe Yılmaz"),
        ("kwame@example.com", "Kwame Mensah"),
        ("jan@example.pl", "Jan Kowalski"),
    ] {
        let m = broadcast
            .iter()
            .find(|m| m.rcpt_to == [email])
            .unwrap_or_else(|| panic!("no broadcast to {email}"));
        assert!(m.header("Bcc").is_none() && m.header("Cc").is_none());
        let to = parse(m)
            .to()
            .and_then(|a| a.first())
            .and_then(|a| a.address())
            .unwrap_or_default()
            .to_string();
        assert_eq!(to, email, "To names only its reader");
        let text = parse(m).body_text(0).unwrap_or_default().into_owned();
        assert!(text.contains(&format!("Guten Tag {name},")), "{text}");
        assert_eq!(
            m.header("Auto-Submitted").as_deref(),
            Some("auto-generated")
        );
    }

    // A placeholder that does not exist fails before anything is queued.
    std::fs::write(app.dir.path().join("bad.txt"), "Hallo {{ nmae }}").expect("write");
    let bad = app.output(&[
        "send",
        "fishbowl-hainholz",
        "--subject",
        "x",
        "--body-file",
        app.dir.path().join("bad.txt").to_str().unwrap_or_default(),
    ]);
    assert!(!bad.status.success());
    let err = String::from_utf8_lossy(&bad.stderr);
    assert!(err.contains("nmae") || err.contains("undefined"), "{err}");
    assert!(err.contains("templates/README.md"), "{err}");
    assert_eq!(app.outbox().len(), queued_before + 3);
}

/// The organizers' digest at its cron time (Berlin): new registrations,
/// cancellations and open review items since the last one, with the CSV.
#[test]
fn digest_over_smtp_with_the_attendee_csv() {
    let (dovecot, sink) = servers();
    let app = Rsvpd::with_config(
        &dovecot,
        &sink,
        "",
        r#"
[[conference]]
id = "miko-2027"
title = "Vierte Migrationskonferenz"
aliases = ["Migrationskonferenz"]
starts = "2027-10-15T13:30"
ends = "2027-10-15T19:30"
organizers = ["orga@example.org"]
[[conference.digest]]
cron = "0 0 8 * * Mon-Fri"
"#,
    );
    // Monday 6 September 2027, 07:00 Berlin: rsvpd starts; the digest rule begins.
    ok_at(&app, "2027-09-06 05:00:00", &["run", "--once"]);
    dovecot.deliver(
        MAILBOX,
        &registration(
            "Jürgen Größmann",
            "j.groessmann@example.com",
            "reg-1@example.com",
        ),
    );
    dovecot.deliver(MAILBOX, &question("question-1@example.com"));
    ok_at(&app, "2027-09-06 05:30:00", &["run", "--once"]);
    ok_at(
        &app,
        "2027-09-06 05:40:00",
        &["add", "miko-2027", "gone@example.org", "--name", "Gone"],
    );
    ok_at(
        &app,
        "2027-09-06 05:45:00",
        &["cancel", "miko-2027", "gone@example.org"],
    );
    ok_at(&app, "2027-09-06 05:46:00", &["run", "--once"]);
    let before = sink.wait_for(3, WAIT).len();
    ok_at(&app, "2027-09-06 05:59:58", &["run", "--once"]);
    assert!(outbox_kinds(&app, "digest").is_empty(), "not before 08:00");
    ok_at(&app, "2027-09-06 06:00:01", &["run", "--once"]);
    let sent = sink.wait_for(before + 1, WAIT);
    let digest = with_subject(&sent, "Anmeldungen Vierte Migrationskonferenz");
    assert_eq!(digest.len(), 1, "{sent:#?}");
    let d = &digest[0];
    assert_eq!(d.rcpt_to, vec!["orga@example.org".to_string()]);
    assert_eq!(
        subject(d),
        "Anmeldungen Vierte Migrationskonferenz: 2 neu, 1 abgemeldet, 1 offen"
    );
    let parsed = parse(d);
    let text = parsed.body_text(0).unwrap_or_default().into_owned();
    assert!(
        text.contains("Jürgen Größmann <j.groessmann@example.com>"),
        "{text}"
    );
    assert!(
        text.contains("Parkplätze") || text.contains("Frage"),
        "{text}"
    );
    let csv = parsed
        .attachments()
        .find(|a| a.attachment_name().is_some_and(|n| n.ends_with(".csv")))
        .expect("the attendee list as CSV");
    let csv = String::from_utf8_lossy(csv.contents()).into_owned();
    let mut reader = csv::Reader::from_reader(csv.as_bytes());
    let rows: Vec<csv::StringRecord> = reader.records().map(|r| r.expect("a CSV row")).collect();
    assert_eq!(rows.len(), 1, "{csv}");
    assert_eq!(&rows[0][0], "j.groessmann@example.com");
    assert_eq!(&rows[0][1], "Jürgen Größmann");

    // The same 08:00 is not sent twice; the next is Tuesday 08:00.
    ok_at(&app, "2027-09-06 09:00:00", &["run", "--once"]);
    assert_eq!(outbox_kinds(&app, "digest").len(), 1);
}

/// Overridden templates beside the config reach the attendee (and HTML-escape).
#[test]
fn conference_template_override_is_used() {
    let (dovecot, sink) = servers();
    let app = Rsvpd::new(&dovecot, &sink);
    let dir = app.dir.path().join("templates/miko");
    std::fs::create_dir_all(dir.join("confirmation/de")).expect("mkdir");
    std::fs::write(
        dir.join("confirmation/de/subject"),
        "Willkommen zur MiKo, {{ name }}",
    )
    .expect("write");
    let config = std::fs::read_to_string(&app.config).expect("config");
    let config = config.replace(
        "organizers = [\"orga@example.org\"]",
        "organizers = [\"orga@example.org\"]\ntemplates = \"templates/miko\"",
    );
    assert!(config.contains("templates/miko"));
    std::fs::write(&app.config, config).expect("write config");
    app.ok(&[
        "add",
        "miko-2027",
        "ayse@example.net",
        "--name",
        "Ayşe Yılmaz",
    ]);
    app.run_once();
    let sent = sink.wait_for(1, WAIT);
    assert_eq!(subject(&sent[0]), "Willkommen zur MiKo, Ayşe Yılmaz");
    assert!(Path::new(&app.config).exists());
    // An unused CONFERENCES constant would otherwise go stale unnoticed.
    assert!(CONFERENCES.contains("miko-2027"));
}

/// A confirmation refused with 5xx shows up in the organizers' next digest.
#[test]
fn digest_lists_mail_that_failed_for_good() {
    let dovecot = Dovecot::start();
    let mut sink = SmtpSink::start_with_args(&["-f", "RCPT", "-B", "550 5.1.1 User unknown"]);
    let app = Rsvpd::with_config(
        &dovecot,
        &sink,
        "",
        r#"
[[conference]]
id = "miko-2027"
title = "Vierte Migrationskonferenz"
aliases = ["Migrationskonferenz"]
starts = "2027-10-15T13:30"
ends = "2027-10-15T19:30"
organizers = ["orga@example.org"]
[[conference.digest]]
cron = "0 0 8 * * Mon-Fri"
"#,
    );
    ok_at(&app, "2027-09-06 05:00:00", &["run", "--once"]);
    dovecot.deliver(
        MAILBOX,
        &registration("Kein Postfach", "gone@example.com", "gone-1@example.com"),
    );
    ok_at(&app, "2027-09-06 05:30:00", &["run", "--once"]);
    assert_eq!(outbox_kinds(&app, "confirmation")[0]["state"], "failed");

    sink.restart_with_args(&[]);
    ok_at(&app, "2027-09-06 06:00:01", &["run", "--once"]);
    let sent = sink.wait_for(1, WAIT);
    let digest = with_subject(&sent, "Anmeldungen Vierte Migrationskonferenz");
    assert_eq!(digest.len(), 1, "{sent:#?}");
    let text = parse(&digest[0])
        .body_text(0)
        .unwrap_or_default()
        .into_owned();
    assert!(text.contains("Nicht zustellbar (1)"), "{text}");
    assert!(text.contains("gone@example.com (confirmation"), "{text}");
    assert!(text.contains("User unknown"), "{text}");
}
