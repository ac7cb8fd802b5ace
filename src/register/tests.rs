//! Double opt-in, capacity and waitlist, decided against a real SQLite database.

use mail_parser::MimeHeaders as _;

use super::*;
use crate::storage::{Fence, OutboxItem};
use crate::test_support::{self as t, utc};

const DOUBLE: &str = r#"
[[conference]]
id = "fishbowl"
title = "Fishbowl-Diskussion Hainholz"
starts = "2099-11-04T18:00"
ends = "2099-11-04T20:30"
location = "Kulturtreff Hainholz"
capacity = 2
opt_in = "double"
organizers = ["orga@example.org"]
"#;

fn parse(raw: &[u8]) -> mail_parser::Message<'_> {
    mail_parser::MessageParser::default()
        .parse(raw)
        .expect("parses")
}

async fn last(app: &crate::app::App) -> (OutboxItem, Vec<u8>) {
    let item = t::outbox(app).await.pop().expect("a queued mail");
    let raw = t::raw(app, item.id).await;
    (item, raw)
}

async fn status(app: &crate::app::App, email: &str) -> Status {
    app.store
        .registrations("fishbowl", true)
        .await
        .unwrap()
        .into_iter()
        .find(|r| r.email == email)
        .expect("registered")
        .status
}

/// The token of the opt-in request last queued: from the subject, checked against Reply-To.
async fn token_of_last_request(app: &crate::app::App) -> String {
    let (item, raw) = last(app).await;
    assert_eq!(item.kind, "opt_in");
    let m = parse(&raw);
    let subject = m.subject().unwrap_or_default().to_string();
    let token = subject
        .rsplit_once('[')
        .and_then(|(_, t)| t.strip_suffix(']'))
        .unwrap_or_else(|| panic!("no [TOKEN] in {subject}"))
        .to_string();
    let reply_to = m
        .reply_to()
        .and_then(|a| a.first())
        .and_then(|a| a.address())
        .expect("a Reply-To")
        .to_string();
    assert_eq!(reply_to, format!("anmeldung+confirm-{token}@example.org"));
    token
}

#[tokio::test]
async fn double_opt_in_waits_for_the_reply_then_confirms_with_an_invite() {
    let ta = t::app(DOUBLE).await;
    let app = &ta.app;
    let now = utc("2099-10-01T10:00:00Z");
    t::register(app, "fishbowl", "ayse@example.net", 1, now).await;
    assert_eq!(status(app, "ayse@example.net").await, Status::Pending);
    let token = token_of_last_request(app).await;
    assert_eq!(token.len(), 10);
    let (_, raw) = last(app).await;
    let m = parse(&raw);
    assert_eq!(
        m.header_raw("In-Reply-To").map(str::trim),
        Some("<reg-ayse@example.net>")
    );
    assert_eq!(m.attachment_count(), 0, "no invite before confirmation");

    // The reply: some clients lowercase the plus address.
    let confirm = Action::Confirm {
        conference: None,
        email: "ayse@example.net".into(),
        token: Some(token.to_lowercase()),
    };
    assert_eq!(
        t::apply(app, &confirm, "yes-1@example.net", now).await,
        "recorded"
    );
    assert_eq!(status(app, "ayse@example.net").await, Status::Confirmed);
    let (item, raw) = last(app).await;
    assert_eq!(item.kind, "confirmation");
    let m = parse(&raw);
    assert_eq!(
        m.header_raw("In-Reply-To").map(str::trim),
        Some("<yes-1@example.net>")
    );
    assert!(
        m.attachments()
            .any(|a| a.attachment_name() == Some("fishbowl.ics")),
        "the confirmation carries the invite"
    );

    // A second reply changes nothing and sends nothing.
    let before = t::outbox(app).await.len();
    assert_eq!(
        t::apply(app, &confirm, "yes-2@example.net", now).await,
        "ignored"
    );
    assert_eq!(t::outbox(app).await.len(), before);
}

#[tokio::test]
async fn pending_holds_no_place_and_a_late_confirmation_is_waitlisted() {
    let ta = t::app(DOUBLE).await;
    let app = &ta.app;
    let now = utc("2099-10-01T10:00:00Z");
    t::register(app, "fishbowl", "first@example.net", 2, now).await;
    let first = token_of_last_request(app).await;
    t::register(app, "fishbowl", "second@example.net", 2, now).await;
    let second = token_of_last_request(app).await;
    assert_ne!(first, second);
    // The second confirms first and gets both places.
    for (token, email) in [
        (&second, "second@example.net"),
        (&first, "first@example.net"),
    ] {
        let a = Action::Confirm {
            conference: Some("fishbowl".into()),
            email: email.into(),
            token: Some(token.clone()),
        };
        t::apply(app, &a, &format!("yes-{email}"), now).await;
    }
    assert_eq!(status(app, "second@example.net").await, Status::Confirmed);
    assert_eq!(status(app, "first@example.net").await, Status::Waitlisted);
    assert_eq!(last(app).await.0.kind, "waitlist");
}

#[tokio::test]
async fn a_confirmation_without_token_is_found_by_conference_and_sender() {
    let ta = t::app(DOUBLE).await;
    let app = &ta.app;
    let now = utc("2099-10-01T10:00:00Z");
    t::register(app, "fishbowl", "ayse@example.net", 1, now).await;
    let a = Action::Confirm {
        conference: Some("fishbowl".into()),
        email: "ayse@example.net".into(),
        token: None,
    };
    assert_eq!(t::apply(app, &a, "yes@example.net", now).await, "recorded");
    assert_eq!(status(app, "ayse@example.net").await, Status::Confirmed);
    // An unknown code goes to a human.
    let a = Action::Confirm {
        conference: None,
        email: "x@example.net".into(),
        token: Some("ZZZZ9999ZZ".into()),
    };
    assert_eq!(t::apply(app, &a, "odd@example.net", now).await, "review");
}

#[tokio::test]
async fn a_reply_after_expiry_goes_to_review_naming_the_fix() {
    let ta = t::app(DOUBLE).await;
    let app = &ta.app;
    let now = utc("2099-10-01T10:00:00Z");
    t::register(app, "fishbowl", "ayse@example.net", 1, now).await;
    let token = token_of_last_request(app).await;
    crate::schedule::drain(app, utc("2099-10-08T10:00:00Z"))
        .await
        .unwrap();
    assert_eq!(status(app, "ayse@example.net").await, Status::Cancelled);
    let a = Action::Confirm {
        conference: None,
        email: "ayse@example.net".into(),
        token: Some(token),
    };
    let mut tx = app.store.begin().await.unwrap();
    let outcome = app
        .registrar()
        .apply(
            &mut tx,
            &a,
            Actor::Mail {
                message_id: "late@example.net",
            },
            utc("2099-10-09T10:00:00Z"),
        )
        .await
        .unwrap();
    assert_eq!(outcome.outcome, "review");
    let reason = outcome.reason.unwrap_or_default();
    assert!(
        reason.contains("rsvpd add fishbowl ayse@example.net"),
        "{reason}"
    );
}

#[tokio::test]
async fn the_real_reply_mail_confirms_through_the_pipeline() {
    let ta = t::app(DOUBLE).await;
    let app = &ta.app;
    let reg = String::from(
        "From: Ayşe Yılmaz <ayse@example.net>\r\nTo: anmeldung@example.org\r\nSubject: Anmeldung Fishbowl\r\n\
         Message-ID: <reg-1@example.net>\r\nContent-Type: text/plain; charset=utf-8\r\n\r\n\
         Hiermit melde ich mich zur Fishbowl-Diskussion an.\r\n\r\nAyşe Yılmaz\r\n",
    );
    app.process(reg.as_bytes(), "test:1", None, Fence::Unfenced)
        .await
        .unwrap();
    let token = token_of_last_request(app).await;
    let (request, raw) = last(app).await;
    let subject = parse(&raw).subject().unwrap_or_default().to_string();
    let reply = format!(
        "From: Ayşe Yılmaz <ayse@example.net>\r\nTo: MiSO-Netzwerk Anmeldung <anmeldung+confirm-{token}@example.org>\r\n\
         Subject: Re: {subject}\r\nIn-Reply-To: <{id}>\r\nReferences: <reg-1@example.net> <{id}>\r\n\
         Message-ID: <yes-1@example.net>\r\nContent-Type: text/plain; charset=utf-8\r\n\r\n\
         Ja, ich bestätige.\r\n\r\n> Bitte bestätigen Sie Ihre Anmeldung\r\n",
        id = request.message_id
    );
    let processed = app
        .process(reply.as_bytes(), "test:2", None, Fence::Unfenced)
        .await
        .unwrap();
    assert_eq!(processed.outcome(), "recorded", "{processed:?}");
    assert_eq!(status(app, "ayse@example.net").await, Status::Confirmed);
    assert_eq!(last(app).await.0.kind, "confirmation");
}

#[tokio::test]
async fn an_organizer_adding_someone_confirms_directly() {
    let ta = t::app(DOUBLE).await;
    let app = &ta.app;
    let now = utc("2099-10-01T10:00:00Z");
    // Pending by mail first; the organizer then adds the same person by hand.
    t::register(app, "fishbowl", "ayse@example.net", 1, now).await;
    let conf = app.config.conference("fishbowl").unwrap().clone();
    for email in ["ayse@example.net", "omar@example.net"] {
        let mut tx = app.store.begin().await.unwrap();
        app.registrar()
            .register(
                &mut tx,
                &conf,
                &t::attendee(email, "X", 1),
                Actor::Cli { message_id: None },
                Mode::Register,
                now,
            )
            .await
            .unwrap();
        tx.commit().await.unwrap();
        assert_eq!(status(app, email).await, Status::Confirmed);
    }
    // The closed request no longer expires anything.
    crate::schedule::drain(app, utc("2099-10-30T00:00:00Z"))
        .await
        .unwrap();
    assert_eq!(status(app, "ayse@example.net").await, Status::Confirmed);
}

#[test]
fn tokens_have_a_digit_and_a_letter_and_no_look_alikes() {
    for _ in 0..200 {
        let t = new_token();
        assert_eq!(t.len(), 10);
        assert!(t.chars().any(|c| c.is_ascii_digit()), "{t}");
        assert!(t.chars().any(|c| c.is_ascii_uppercase()), "{t}");
        assert!(!t.contains(['0', 'O', '1', 'I', 'L']), "{t}");
    }
}

const SINGLE_FULL: &str = r#"
[[conference]]
id = "fishbowl"
title = "Fishbowl-Diskussion Hainholz"
starts = "2099-11-04T18:00"
ends = "2099-11-04T20:30"
location = "Kulturtreff Hainholz"
capacity = 3
organizers = ["orga@example.org"]
"#;

/// Issue 11: a confirmed party that grows by reply beyond the free places
/// keeps its places; the growth goes to review (it used to be demoted to the
/// waitlist as a whole).
#[tokio::test]
async fn a_growing_party_keeps_its_places_in_a_full_room() {
    let ta = t::app(SINGLE_FULL).await;
    let app = &ta.app;
    let now = utc("2099-10-01T10:00:00Z");
    t::register(app, "fishbowl", "ayse@example.net", 2, now).await;
    t::register(app, "fishbowl", "omar@example.net", 1, now).await;
    assert_eq!(status(app, "ayse@example.net").await, Status::Confirmed);
    let grow = Action::Update {
        conference: "fishbowl".into(),
        attendees: vec![t::attendee("ayse@example.net", "Ayşe Yılmaz", 3)],
    };
    assert_eq!(t::apply(app, &grow, "grow-1", now).await, "review");
    let regs = app.store.registrations("fishbowl", true).await.unwrap();
    let ayse = regs
        .iter()
        .find(|r| r.email == "ayse@example.net")
        .expect("still registered");
    assert_eq!(
        (ayse.status, ayse.party_size),
        (Status::Confirmed, 2),
        "the registration stays as it was"
    );
    // A party larger than the whole room is never waitlisted: review.
    let class = Action::Register {
        conference: "fishbowl".into(),
        attendees: vec![t::attendee("teacher@example.net", "Kirsten Hansen", 4)],
    };
    assert_eq!(t::apply(app, &class, "class-1", now).await, "review");
    // With a free place the same growth fits and is recorded.
    let cancel = Action::Cancel {
        conference: "fishbowl".into(),
        email: "omar@example.net".into(),
        name: None,
    };
    assert_eq!(t::apply(app, &cancel, "cancel-1", now).await, "recorded");
    assert_eq!(t::apply(app, &grow, "grow-2", now).await, "recorded");
    assert_eq!(status(app, "ayse@example.net").await, Status::Confirmed);
}

/// Issue 11: a companion dropping out ("mein Mann kommt doch nicht mit")
/// shrinks the party; the freed place promotes the waitlist. An update of
/// party 1 that does not state the party (a workshop change) keeps it.
#[tokio::test]
async fn a_party_that_shrinks_frees_places_for_the_waitlist() {
    let ta = t::app(SINGLE_FULL).await;
    let app = &ta.app;
    let now = utc("2099-10-01T10:00:00Z");
    t::register(app, "fishbowl", "ayse@example.net", 2, now).await;
    t::register(app, "fishbowl", "omar@example.net", 2, now).await;
    assert_eq!(status(app, "omar@example.net").await, Status::Waitlisted);
    let party = |email: &str, stated: bool| {
        let mut a = t::attendee(email, "Ayşe Yılmaz", 1);
        a.party_stated = stated;
        Action::Update {
            conference: "fishbowl".into(),
            attendees: vec![a],
        }
    };
    let unstated = party("ayse@example.net", false);
    assert_eq!(t::apply(app, &unstated, "ws-1", now).await, "recorded");
    assert_eq!(status(app, "omar@example.net").await, Status::Waitlisted);
    let alone = party("ayse@example.net", true);
    assert_eq!(t::apply(app, &alone, "alone-1", now).await, "recorded");
    let regs = app.store.registrations("fishbowl", true).await.unwrap();
    let sizes: Vec<(&str, Status, u32)> = regs
        .iter()
        .map(|r| (r.email.as_str(), r.status, r.party_size))
        .collect();
    assert_eq!(
        sizes,
        [
            ("ayse@example.net", Status::Confirmed, 1),
            ("omar@example.net", Status::Confirmed, 2)
        ]
    );
    let (item, _) = last(app).await;
    assert_eq!(item.kind, "promotion");
}

/// Issue 11: the answer to our opt-in request lost its token (written to the
/// main address, subject rewritten): our own thread is as good as the token
/// when the registrant answers; a stranger in the thread confirms nothing.
#[tokio::test]
async fn a_reply_in_the_opt_in_thread_confirms_without_the_token() {
    let ta = t::app(DOUBLE).await;
    let app = &ta.app;
    let reg = "From: Ayşe Yılmaz <ayse@example.net>\r\nTo: anmeldung@example.org\r\nSubject: Anmeldung Fishbowl\r\n\
         Message-ID: <reg-2@example.net>\r\nContent-Type: text/plain; charset=utf-8\r\n\r\n\
         Hiermit melde ich mich zur Fishbowl-Diskussion an.\r\n\r\nAyşe Yılmaz\r\n";
    app.process(reg.as_bytes(), "test:1", None, Fence::Unfenced)
        .await
        .unwrap();
    let (request, _) = last(app).await;
    assert_eq!(request.kind, "opt_in");
    let reply = |from: &str, id: &str| {
        format!(
            "From: {from}\r\nTo: anmeldung@example.org\r\nSubject: Bestätigung\r\n\
             In-Reply-To: <{rid}>\r\nMessage-ID: <{id}>\r\nContent-Type: text/plain; charset=utf-8\r\n\r\n\
             Ja, ich möchte an der Fishbowl-Diskussion teilnehmen.\r\n",
            rid = request.message_id
        )
    };
    let stranger = app
        .process(
            reply("Omar <omar@example.net>", "s-1@example.net").as_bytes(),
            "test:2",
            None,
            Fence::Unfenced,
        )
        .await
        .unwrap();
    assert_ne!(stranger.outcome(), "duplicate");
    assert_eq!(status(app, "ayse@example.net").await, Status::Pending);
    let processed = app
        .process(
            reply("Ayşe Yılmaz <ayse@example.net>", "yes-2@example.net").as_bytes(),
            "test:3",
            None,
            Fence::Unfenced,
        )
        .await
        .unwrap();
    assert_eq!(processed.outcome(), "recorded", "{processed:?}");
    assert_eq!(status(app, "ayse@example.net").await, Status::Confirmed);
    let to_ayse: Vec<String> = t::outbox(app)
        .await
        .into_iter()
        .filter(|o| o.recipient == "ayse@example.net")
        .map(|o| o.kind.as_str().to_string())
        .collect();
    assert_eq!(to_ayse, ["opt_in", "confirmation"], "no second request");
}

const TWO_OPEN: &str = r#"
[[conference]]
id = "fishbowl"
title = "Fishbowl-Diskussion Hainholz"
starts = "2099-11-04T18:00"
ends = "2099-11-04T20:30"
location = "Kulturtreff Hainholz"
organizers = ["orga@example.org"]

[[conference]]
id = "miko"
title = "Vierte Migrationskonferenz"
starts = "2099-10-15T13:30"
ends = "2099-10-15T19:30"
location = "Neues Rathaus"
organizers = ["orga@example.org"]
"#;

/// Issue 11: a mail that names no conference (and answers no mail of ours)
/// is routed by the sender's one registration.
#[tokio::test]
async fn a_reply_naming_no_conference_is_routed_by_the_registration() {
    let ta = t::app(TWO_OPEN).await;
    let app = &ta.app;
    let now = utc("2099-10-01T10:00:00Z");
    t::register(app, "miko", "ayse@example.net", 1, now).await;
    let mail = |from: &str, id: &str| {
        format!(
            "From: {from}\r\nTo: anmeldung@example.org\r\nSubject: Absage\r\nMessage-ID: <{id}>\r\n\
             Content-Type: text/plain; charset=utf-8\r\n\r\nIch schaffe es leider doch nicht.\r\n"
        )
    };
    let u = app
        .understand(mail("Ayşe Yılmaz <ayse@example.net>", "c-1@example.net").as_bytes())
        .await
        .unwrap();
    match &u.action {
        Action::Cancel { conference, .. } => assert_eq!(conference, "miko"),
        other => panic!("routed by the registration: {other:?}"),
    }
    assert!(
        u.explanation
            .to_string()
            .contains("only registration is for miko")
    );
    // Someone without a registration: still a question of which conference.
    let u = app
        .understand(mail("Omar <omar@example.net>", "c-2@example.net").as_bytes())
        .await
        .unwrap();
    assert!(
        matches!(
            u.action,
            Action::Review {
                conference: None,
                ..
            }
        ),
        "{u:?}"
    );
}
