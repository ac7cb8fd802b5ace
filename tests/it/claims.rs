//! Outbox claims: senders working side by side — each with its own database
//! pool, as two processes would have — never send one mail twice. Counted
//! where it matters: the mails smtp-sink received, per Message-ID.

use std::collections::BTreeMap;
use std::time::Duration;

use rsvpd::app::App;
use rsvpd::config::Config;
use rsvpd::mailer::Transport;
use rsvpd::outbox::{self, Step};
use rsvpd::storage::{NewOutbox, OutboxKind};

use crate::support::{Postgres, SmtpSink};

const MAILS: usize = 120;

fn config(dir: &std::path::Path, sink: &SmtpSink, database: &str) -> Config {
    let text = format!(
        "[mailbox]\nurl = \"maildir://inbox\"\n\
         [smtp]\nurl = \"smtp://127.0.0.1:{}?tls=none\"\nfrom = \"anmeldung@example.org\"\nmax_per_minute = 100000\n\
         [database]\nurl = \"{database}\"\n",
        sink.port()
    );
    Config::parse(&dir.join("rsvpd.toml"), &text, &|_| None).expect("config")
}

/// Queue `MAILS` mails, then let two senders with separate pools drain the
/// outbox at once; every mail arrives exactly once, and both did work.
fn two_senders_never_send_a_mail_twice(database: &str, dir: &std::path::Path, sink: &SmtpSink) {
    let runtime = tokio::runtime::Builder::new_multi_thread()
        .worker_threads(2)
        .enable_all()
        .build()
        .expect("runtime");
    let per_sender = runtime.block_on(async {
        let a = App::open(config(dir, sink, database))
            .await
            .expect("first app");
        let b = App::open(config(dir, sink, database))
            .await
            .expect("second app");
        let mut tx = a.store.begin().await.expect("begin");
        let now = chrono::Utc::now();
        for i in 0..MAILS {
            let m = NewOutbox {
                kind: OutboxKind::Confirmation,
                conference_id: None,
                registration_id: None,
                recipient: format!("p{i}@example.org"),
                message_id: format!("claim-{i}@example.org"),
                in_reply_to: None,
                subject: "s".into(),
                raw: format!("Message-ID: <claim-{i}@example.org>\r\nSubject: s\r\n\r\nx\r\n")
                    .into_bytes(),
            };
            tx.queue(&m, now).await.expect("queue");
        }
        tx.commit().await.expect("commit");
        let senders = [a, b].map(|app| {
            tokio::spawn(async move {
                let transport = Transport::new(&app.config.smtp).expect("transport");
                let mut worked = 0usize;
                loop {
                    match outbox::step(&app, &transport).await.expect("step") {
                        Step::Worked => worked += 1,
                        Step::Throttled(_) => tokio::time::sleep(Duration::from_millis(50)).await,
                        Step::Paused(until) => {
                            panic!("sending paused until {until}: the sink refused mail")
                        }
                        Step::Idle(next) => {
                            // Idle while the other sender still holds mail: try again soon.
                            if next.is_none() {
                                break;
                            }
                            tokio::time::sleep(Duration::from_millis(50)).await;
                        }
                    }
                }
                app.store.close().await;
                worked
            })
        });
        let mut per_sender = Vec::new();
        for s in senders {
            per_sender.push(s.await.expect("sender task"));
        }
        per_sender
    });
    assert_eq!(per_sender.iter().sum::<usize>(), MAILS, "{per_sender:?}");
    assert!(
        per_sender.iter().all(|n| *n > 0),
        "both senders worked side by side: {per_sender:?}"
    );
    let got = sink.wait_for(MAILS, Duration::from_secs(60));
    let mut per_id: BTreeMap<String, usize> = BTreeMap::new();
    for m in &got {
        *per_id
            .entry(m.header("Message-ID").unwrap_or_default())
            .or_default() += 1;
    }
    let twice: Vec<_> = per_id.iter().filter(|(_, n)| **n > 1).collect();
    assert!(twice.is_empty(), "sent more than once: {twice:?}");
    assert_eq!(per_id.len(), MAILS, "every mail arrived");
    // Nothing more trickles in.
    std::thread::sleep(Duration::from_millis(500));
    assert_eq!(sink.messages().len(), MAILS);
}

#[test]
fn two_senders_on_one_sqlite_file_never_send_a_mail_twice() {
    let sink = SmtpSink::start();
    let dir = tempfile::tempdir().expect("dir");
    let db = format!("sqlite://{}", dir.path().join("rsvpd.db").display());
    two_senders_never_send_a_mail_twice(&db, dir.path(), &sink);
}

#[test]
fn two_senders_on_one_postgres_database_never_send_a_mail_twice() {
    let sink = SmtpSink::start();
    let pg = Postgres::start();
    let dir = tempfile::tempdir().expect("dir");
    two_senders_never_send_a_mail_twice(&pg.url(), dir.path(), &sink);
}

/// A sender that claimed a mail and stopped answering (its lease still runs)
/// keeps it from others; once the lease ran out, another sender takes it.
#[test]
fn an_expired_claim_is_taken_again() {
    let dir = tempfile::tempdir().expect("dir");
    let sink = SmtpSink::start();
    let db = format!("sqlite://{}", dir.path().join("rsvpd.db").display());
    let runtime = tokio::runtime::Builder::new_current_thread()
        .enable_all()
        .build()
        .expect("runtime");
    runtime.block_on(async {
        let a = App::open(config(dir.path(), &sink, &db))
            .await
            .expect("app a");
        let b = App::open(config(dir.path(), &sink, &db))
            .await
            .expect("app b");
        let now = chrono::Utc::now();
        let mut tx = a.store.begin().await.expect("begin");
        tx.queue(
            &NewOutbox {
                kind: OutboxKind::Confirmation,
                conference_id: None,
                registration_id: None,
                recipient: "p@example.org".into(),
                message_id: "lease@example.org".into(),
                in_reply_to: None,
                subject: "s".into(),
                raw: b"Subject: s\r\n\r\nx\r\n".to_vec(),
            },
            now,
        )
        .await
        .expect("queue");
        tx.commit().await.expect("commit");
        let lease = chrono::Duration::minutes(5);
        let held = a.store.claim_due(now, lease).await.expect("claim");
        assert!(held.is_some(), "a claims the mail");
        // a is alive (this process) and its lease runs: b gets nothing.
        assert!(
            b.store
                .claim_due(now, lease)
                .await
                .expect("claim")
                .is_none()
        );
        assert_eq!(
            b.store.next_due_at().await.expect("next"),
            Some(chrono::SubsecRound::trunc_subsecs(now + lease, 0)),
            "b knows when the lease ends"
        );
        let later = now + lease + chrono::Duration::seconds(1);
        let taken = b.store.claim_due(later, lease).await.expect("claim");
        assert_eq!(taken.map(|m| m.recipient).as_deref(), Some("p@example.org"));
    });
}
