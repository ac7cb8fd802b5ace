//! The scheduler with the clock under control: every step is called with an
//! explicit `now`, against a real SQLite database.

use super::*;
use crate::config::{HumanDuration, LocalTime};
use crate::test_support::{self as t, utc};
use chrono::NaiveDateTime;
use mail_parser::MimeHeaders as _;

fn rule(before: &str, at: Option<&str>) -> Reminder {
    Reminder {
        before: HumanDuration::parse(before).expect("duration"),
        at: at.map(|a| LocalTime(chrono::NaiveTime::parse_from_str(a, "%H:%M").expect("time"))),
    }
}

const BERLIN: Tz = chrono_tz::Europe::Berlin;

/// 13:30 local on a date, as written in the config.
fn starts(local: &str) -> DateTime<Utc> {
    crate::localtime::local_to_utc(
        BERLIN,
        NaiveDateTime::parse_from_str(local, "%Y-%m-%dT%H:%M").expect("local time"),
    )
    .expect("exists")
}

#[test]
fn one_day_before_at_nine_is_nine_berlin_time_the_day_before() {
    let due = reminder_due(
        BERLIN,
        starts("2027-10-15T13:30"),
        &rule("1d", Some("09:00")),
    );
    // CEST: UTC+2.
    assert_eq!(due, utc("2027-10-14T07:00:00Z"));
}

#[test]
fn one_day_before_at_nine_across_the_march_clock_change() {
    // Clocks go forward on Sunday 2027-03-28 at 02:00; the reminder on that
    // Sunday at 09:00 is already summer time.
    let due = reminder_due(
        BERLIN,
        starts("2027-03-29T10:00"),
        &rule("1d", Some("09:00")),
    );
    assert_eq!(due, utc("2027-03-28T07:00:00Z"));
    // The day before the change it is still winter time.
    let due = reminder_due(
        BERLIN,
        starts("2027-03-28T10:00"),
        &rule("1d", Some("09:00")),
    );
    assert_eq!(due, utc("2027-03-27T08:00:00Z"));
}

#[test]
fn one_day_before_at_nine_across_the_october_clock_change() {
    // Clocks go back on Sunday 2027-10-31 at 03:00.
    let due = reminder_due(
        BERLIN,
        starts("2027-11-01T10:00"),
        &rule("1d", Some("09:00")),
    );
    assert_eq!(due, utc("2027-10-31T08:00:00Z"));
    let due = reminder_due(
        BERLIN,
        starts("2027-10-31T10:00"),
        &rule("1d", Some("09:00")),
    );
    assert_eq!(due, utc("2027-10-30T07:00:00Z"));
}

#[test]
fn before_without_at_counts_wall_clock_days() {
    // 7 days before 13:30 after the October change is 13:30 summer time.
    let due = reminder_due(BERLIN, starts("2027-11-03T13:30"), &rule("7d", None));
    assert_eq!(due, utc("2027-10-27T11:30:00Z"));
    let due = reminder_due(BERLIN, starts("2027-11-03T13:30"), &rule("2h", None));
    assert_eq!(due, utc("2027-11-03T10:30:00Z"));
}

#[test]
fn a_time_in_the_spring_gap_moves_forward_and_a_doubled_one_is_the_first() {
    // 02:30 does not exist on 2027-03-28: read with winter offset = 03:30 CEST.
    let due = reminder_due(
        BERLIN,
        starts("2027-03-29T10:00"),
        &rule("1d", Some("02:30")),
    );
    assert_eq!(due, utc("2027-03-28T01:30:00Z"));
    // 02:30 exists twice on 2027-10-31: the first (summer time).
    let due = reminder_due(
        BERLIN,
        starts("2027-11-01T10:00"),
        &rule("1d", Some("02:30")),
    );
    assert_eq!(due, utc("2027-10-31T00:30:00Z"));
}

#[test]
fn the_window_opens_at_due_closes_after_grace_and_at_the_start() {
    let due = utc("2027-10-14T07:00:00Z");
    let start = utc("2027-10-15T11:30:00Z");
    let grace = std::time::Duration::from_secs(6 * 3600);
    assert!(!reminder_window_open(
        due,
        grace,
        start,
        utc("2027-10-14T06:59:59Z")
    ));
    assert!(reminder_window_open(due, grace, start, due));
    assert!(reminder_window_open(
        due,
        grace,
        start,
        utc("2027-10-14T13:00:00Z")
    ));
    assert!(!reminder_window_open(
        due,
        grace,
        start,
        utc("2027-10-14T13:00:01Z")
    ));
    // A long grace never reaches past the start.
    let long = std::time::Duration::from_secs(7 * 86400);
    assert!(reminder_window_open(
        due,
        long,
        start,
        utc("2027-10-15T11:29:59Z")
    ));
    assert!(!reminder_window_open(due, long, start, start));
}

const MIKO: &str = r#"
[[conference]]
id = "miko-2027"
title = "Vierte Migrationskonferenz"
starts = "2027-10-15T13:30"
ends = "2027-10-15T19:30"
location = "Mosaiksaal, Neues Rathaus, Trammplatz 2, 30159 Hannover"
organizers = ["orga@example.org"]
[[conference.reminder]]
before = "1d"
at = "09:00"
"#;

async fn reminders(app: &App) -> Vec<crate::storage::OutboxItem> {
    t::outbox_of_kind(app, "reminder").await
}

#[tokio::test]
async fn reminder_leaves_at_nine_not_earlier_and_not_twice() {
    let ta = t::app(MIKO).await;
    let app = &ta.app;
    t::register(
        app,
        "miko-2027",
        "ayse@example.net",
        1,
        utc("2027-09-06T07:14:02Z"),
    )
    .await;
    let due = utc("2027-10-14T07:00:00Z");

    assert_eq!(
        step(app, utc("2027-10-14T06:59:59Z")).await.unwrap(),
        Step::Idle(Some(due)),
        "the scheduler sleeps until exactly 09:00 Berlin"
    );
    assert!(reminders(app).await.is_empty(), "not a second early");

    assert_eq!(step(app, due).await.unwrap(), Step::Worked);
    assert_eq!(step(app, due).await.unwrap(), Step::Idle(None));
    let sent = reminders(app).await;
    assert_eq!(sent.len(), 1);
    assert_eq!(sent[0].recipient, "ayse@example.net");
    assert_eq!(sent[0].created_at, "2027-10-14T07:00:00Z");

    // Later steps, and a restart, never send it again.
    assert_eq!(drain(app, utc("2027-10-14T09:00:00Z")).await.unwrap(), 0);
    let again = ta.reopen().await;
    assert_eq!(drain(&again, utc("2027-10-14T10:00:00Z")).await.unwrap(), 0);
    assert_eq!(reminders(app).await.len(), 1);
}

#[tokio::test]
async fn reminder_mail_is_auto_generated_threaded_and_carries_the_invite() {
    let ta = t::app(MIKO).await;
    let app = &ta.app;
    t::register(
        app,
        "miko-2027",
        "ayse@example.net",
        2,
        utc("2027-09-06T07:14:02Z"),
    )
    .await;
    drain(app, utc("2027-10-14T07:00:00Z")).await.unwrap();
    let sent = reminders(app).await;
    let raw = t::raw(app, sent[0].id).await;
    let m = mail_parser::MessageParser::default()
        .parse(&raw)
        .expect("parses");
    let header = |name: &str| {
        m.header_raw(name)
            .map(|v| v.trim().to_string())
            .unwrap_or_default()
    };
    assert_eq!(header("Auto-Submitted"), "auto-generated");
    assert_eq!(header("In-Reply-To"), "<reg-ayse@example.net>");
    assert_eq!(header("References"), "<reg-ayse@example.net>");
    assert!(
        m.subject().unwrap_or_default().starts_with("Erinnerung:"),
        "{:?}",
        m.subject()
    );
    let ics = m
        .attachments()
        .find(|a| a.attachment_name() == Some("miko-2027.ics"))
        .expect("an .ics attachment");
    let ics = String::from_utf8_lossy(ics.contents()).into_owned();
    assert!(ics.contains("METHOD:PUBLISH"), "{ics}");
    assert!(
        ics.contains("DTSTART;TZID=Europe/Berlin:20271015T133000"),
        "{ics}"
    );
}

#[tokio::test]
async fn march_and_october_reminders_leave_at_nine_local() {
    let ta = t::app(
        r#"
[[conference]]
id = "spring"
title = "Frühjahr"
starts = "2027-03-29T10:00"
ends = "2027-03-29T12:00"
[[conference.reminder]]
before = "1d"
at = "09:00"
[[conference]]
id = "autumn"
title = "Herbst"
starts = "2027-11-01T10:00"
ends = "2027-11-01T12:00"
[[conference.reminder]]
before = "1d"
at = "09:00"
"#,
    )
    .await;
    let app = &ta.app;
    t::register(
        app,
        "spring",
        "a@example.net",
        1,
        utc("2027-01-10T10:00:00Z"),
    )
    .await;
    t::register(
        app,
        "autumn",
        "b@example.net",
        1,
        utc("2027-01-10T10:00:00Z"),
    )
    .await;

    // 08:59:59 CEST on 28 March: nothing; the next due time is 09:00 CEST.
    assert_eq!(
        step(app, utc("2027-03-28T06:59:59Z")).await.unwrap(),
        Step::Idle(Some(utc("2027-03-28T07:00:00Z")))
    );
    assert_eq!(drain(app, utc("2027-03-28T07:00:00Z")).await.unwrap(), 1);
    let spring = reminders(app).await;
    assert_eq!(spring.len(), 1);
    assert_eq!(spring[0].conference.as_deref(), Some("spring"));

    // On 31 October 07:00 UTC is 08:00 CET (the clocks went back at 01:00 UTC): not yet.
    assert_eq!(
        step(app, utc("2027-10-31T07:59:59Z")).await.unwrap(),
        Step::Idle(Some(utc("2027-10-31T08:00:00Z")))
    );
    assert_eq!(reminders(app).await.len(), 1);
    assert_eq!(drain(app, utc("2027-10-31T08:00:00Z")).await.unwrap(), 1);
    let all = reminders(app).await;
    assert_eq!(all.len(), 2);
    assert_eq!(all[1].conference.as_deref(), Some("autumn"));
    assert_eq!(all[1].created_at, "2027-10-31T08:00:00Z");
}

#[tokio::test]
async fn catch_up_within_grace_but_not_after_it() {
    let ta = t::app(MIKO).await;
    let app = &ta.app;
    t::register(
        app,
        "miko-2027",
        "ayse@example.net",
        1,
        utc("2027-09-06T07:14:02Z"),
    )
    .await;
    // Down from 08:00 to 15:00 (Berlin): 6 h grace ends 15:00 local = 13:00 UTC.
    assert_eq!(drain(app, utc("2027-10-14T13:00:01Z")).await.unwrap(), 0);
    assert!(reminders(app).await.is_empty());

    let ta = t::app(MIKO).await;
    let app = &ta.app;
    t::register(
        app,
        "miko-2027",
        "ayse@example.net",
        1,
        utc("2027-09-06T07:14:02Z"),
    )
    .await;
    assert_eq!(drain(app, utc("2027-10-14T12:59:00Z")).await.unwrap(), 1);
    assert_eq!(reminders(app).await.len(), 1);
}

#[tokio::test]
async fn grace_is_configurable_per_conference_and_never_reaches_the_start() {
    let conf = MIKO.replace(
        "organizers = [\"orga@example.org\"]",
        "organizers = [\"orga@example.org\"]\nreminder_grace = \"3d\"",
    );
    let ta = t::app(&conf).await;
    let app = &ta.app;
    t::register(
        app,
        "miko-2027",
        "ayse@example.net",
        1,
        utc("2027-09-06T07:14:02Z"),
    )
    .await;
    // The conference starts 2027-10-15 11:30 UTC: a step after that sends nothing.
    assert_eq!(drain(app, utc("2027-10-15T11:30:00Z")).await.unwrap(), 0);
    assert!(reminders(app).await.is_empty());
    // Just before the start, the 3-day grace still allows it.
    assert_eq!(drain(app, utc("2027-10-15T11:29:00Z")).await.unwrap(), 1);
}

#[tokio::test]
async fn registrations_after_the_rule_time_get_no_reminder() {
    let ta = t::app(MIKO).await;
    let app = &ta.app;
    let due = utc("2027-10-14T07:00:00Z");
    t::register(app, "miko-2027", "early@example.net", 1, due).await;
    t::register(
        app,
        "miko-2027",
        "late@example.net",
        1,
        utc("2027-10-14T07:00:01Z"),
    )
    .await;
    assert_eq!(drain(app, utc("2027-10-14T08:00:00Z")).await.unwrap(), 1);
    let sent = reminders(app).await;
    assert_eq!(sent.len(), 1);
    assert_eq!(sent[0].recipient, "early@example.net");
}

#[tokio::test]
async fn waitlisted_and_cancelled_people_get_no_reminder_and_bounced_ones_are_skipped() {
    let conf = MIKO.replace(
        "organizers = [\"orga@example.org\"]",
        "organizers = [\"orga@example.org\"]\ncapacity = 2",
    );
    let ta = t::app(&conf).await;
    let app = &ta.app;
    let at = utc("2027-09-06T07:14:02Z");
    t::register(app, "miko-2027", "a@example.net", 2, at).await;
    t::register(app, "miko-2027", "waiting@example.net", 1, at).await;
    t::register(app, "miko-2027", "c@example.net", 1, at).await;
    let mut tx = app.store.begin().await.unwrap();
    tx.mark_undeliverable("a@example.net", "550 no such user")
        .await
        .unwrap();
    tx.commit().await.unwrap();
    // a (confirmed, bounced): skipped; waiting, c: waitlisted → nothing.
    assert_eq!(drain(app, utc("2027-10-14T07:00:00Z")).await.unwrap(), 1);
    assert!(reminders(app).await.is_empty());
    // And the skip is remembered: no endless work.
    assert_eq!(
        step(app, utc("2027-10-14T07:00:01Z")).await.unwrap(),
        Step::Idle(None)
    );
}

const DIGEST: &str = r#"
[[conference]]
id = "miko-2027"
title = "Vierte Migrationskonferenz"
starts = "2027-10-15T13:30"
ends = "2027-10-15T19:30"
capacity = 100
organizers = ["orga@example.org", "second@example.org"]
[[conference.digest]]
cron = "0 0 8 * * *"
"#;

#[tokio::test]
async fn digest_fires_at_eight_berlin_with_what_is_new_and_a_csv() {
    let ta = t::app(DIGEST).await;
    let app = &ta.app;
    let first_sight = utc("2027-09-06T05:00:00Z");
    // The rule is seen for the first time: its schedule starts now.
    assert_eq!(step(app, first_sight).await.unwrap(), Step::Worked);
    assert_eq!(
        step(app, first_sight).await.unwrap(),
        Step::Idle(Some(utc("2027-09-06T06:00:00Z"))),
        "08:00 CEST"
    );
    t::register(
        app,
        "miko-2027",
        "ayse@example.net",
        2,
        utc("2027-09-06T05:30:00Z"),
    )
    .await;
    t::register(
        app,
        "miko-2027",
        "omar@example.net",
        1,
        utc("2027-09-06T05:31:00Z"),
    )
    .await;
    let conf = app.config.conference("miko-2027").unwrap().clone();
    let mut tx = app.store.begin().await.unwrap();
    app.registrar()
        .cancel(
            &mut tx,
            &conf,
            &crate::domain::EmailAddress::parse("omar@example.net").unwrap(),
            crate::register::Actor::Cli { message_id: None },
            utc("2027-09-06T05:45:00Z"),
        )
        .await
        .unwrap();
    tx.commit().await.unwrap();

    assert_eq!(
        drain(app, utc("2027-09-06T05:59:59Z")).await.unwrap(),
        0,
        "not before 08:00"
    );
    assert_eq!(drain(app, utc("2027-09-06T06:00:00Z")).await.unwrap(), 1);
    let digests = t::outbox_of_kind(app, "digest").await;
    let to: Vec<&str> = digests.iter().map(|d| d.recipient.as_str()).collect();
    assert_eq!(to, vec!["orga@example.org", "second@example.org"]);
    let raw = t::raw(app, digests[0].id).await;
    let m = mail_parser::MessageParser::default()
        .parse(&raw)
        .expect("parses");
    assert_eq!(
        m.subject(),
        Some("Anmeldungen Vierte Migrationskonferenz: 2 neu, 1 abgemeldet, 0 offen")
    );
    let text = m.body_text(0).expect("text").into_owned();
    assert!(text.contains("ayse@example.net"), "{text}");
    assert!(
        text.contains("2 Personen in 1 bestätigten Anmeldungen (Plätze: 100)"),
        "{text}"
    );
    let csv = m
        .attachments()
        .find(|a| {
            a.attachment_name()
                .is_some_and(|n| n.starts_with("miko-2027-attendees-2027-09-06"))
        })
        .expect("a CSV attachment");
    let csv = String::from_utf8_lossy(csv.contents()).into_owned();
    assert!(csv.starts_with("email,name,"), "{csv}");
    assert!(csv.contains("ayse@example.net"), "{csv}");
    assert!(!csv.contains("omar@example.net"), "cancelled: {csv}");

    // Next one at 08:00 the next day; with nothing new, it is not sent.
    assert_eq!(
        step(app, utc("2027-09-06T06:00:01Z")).await.unwrap(),
        Step::Idle(Some(utc("2027-09-07T06:00:00Z")))
    );
    assert_eq!(drain(app, utc("2027-09-07T06:00:00Z")).await.unwrap(), 1);
    assert_eq!(t::outbox_of_kind(app, "digest").await.len(), 2);
}

#[tokio::test]
async fn digests_missed_during_downtime_become_one() {
    let ta = t::app(DIGEST).await;
    let app = &ta.app;
    drain(app, utc("2027-09-06T05:00:00Z")).await.unwrap();
    t::register(
        app,
        "miko-2027",
        "ayse@example.net",
        1,
        utc("2027-09-06T05:30:00Z"),
    )
    .await;
    // Three 08:00s pass while rsvpd is down.
    assert_eq!(drain(app, utc("2027-09-09T12:00:00Z")).await.unwrap(), 1);
    assert_eq!(t::outbox_of_kind(app, "digest").await.len(), 2);
    assert_eq!(
        step(app, utc("2027-09-09T12:00:00Z")).await.unwrap(),
        Step::Idle(Some(utc("2027-09-10T06:00:00Z")))
    );
}

#[tokio::test]
async fn digests_stop_when_the_conference_ends() {
    let ta = t::app(DIGEST).await;
    let app = &ta.app;
    drain(app, utc("2027-10-14T05:00:00Z")).await.unwrap();
    // The last 08:00 before the end (15 Oct 19:30) is 15 Oct 08:00.
    assert_eq!(
        step(app, utc("2027-10-15T06:00:01Z")).await.unwrap(),
        Step::Worked
    );
    assert_eq!(
        step(app, utc("2027-10-15T06:00:01Z")).await.unwrap(),
        Step::Idle(None)
    );
}

const DOUBLE: &str = r#"
[defaults]
opt_in_expiry = "7d"
[[conference]]
id = "fishbowl"
title = "Fishbowl-Diskussion Hainholz"
starts = "2027-11-04T18:00"
ends = "2027-11-04T20:30"
capacity = 2
opt_in = "double"
"#;

#[tokio::test]
async fn unconfirmed_registrations_expire_silently_after_the_expiry_time() {
    let ta = t::app(DOUBLE).await;
    let app = &ta.app;
    let at = utc("2027-10-01T10:00:00Z");
    t::register(app, "fishbowl", "ayse@example.net", 1, at).await;
    let regs = app.store.registrations("fishbowl", true).await.unwrap();
    assert_eq!(regs[0].status, Status::Pending);
    assert_eq!(
        step(app, utc("2027-10-08T09:59:59Z")).await.unwrap(),
        Step::Idle(Some(utc("2027-10-08T10:00:00Z")))
    );
    let queued_before = t::outbox(app).await.len();
    assert_eq!(drain(app, utc("2027-10-08T10:00:00Z")).await.unwrap(), 1);
    let regs = app.store.registrations("fishbowl", true).await.unwrap();
    assert_eq!(regs[0].status, Status::Cancelled);
    assert_eq!(t::outbox(app).await.len(), queued_before, "no mail");
    let ended = app
        .store
        .ended_between("fishbowl", at, utc("2027-10-09T00:00:00Z"))
        .await
        .unwrap();
    assert_eq!(ended.len(), 1);
    assert_eq!(ended[0].action, "expire");
}
