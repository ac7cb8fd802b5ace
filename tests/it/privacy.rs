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
    // With the password at hand, `forget` deletes the mailbox copy itself.
    assert!(
        out.contains("<dsgvo-1@example.net>: deleted rsvpd.processed: UID "),
        "{out}"
    );
    assert!(dovecot.list_folder(MAILBOX, "rsvpd.processed").is_empty());
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

/// Every file under `dir` (recursively).
fn files_under(dir: &std::path::Path) -> Vec<std::path::PathBuf> {
    let mut out = Vec::new();
    if let Ok(entries) = std::fs::read_dir(dir) {
        for e in entries.flatten() {
            let p = e.path();
            if p.is_dir() {
                out.extend(files_under(&p));
            } else {
                out.push(p);
            }
        }
    }
    out
}

/// The places (file, what) where `needle` occurs: in the raw bytes, or in a
/// decoded MIME part (base64, quoted-printable, RFC 2047 names).
fn traces(files: &[std::path::PathBuf], needle: &str) -> Vec<String> {
    let mut found = Vec::new();
    for f in files {
        let raw = std::fs::read(f).unwrap_or_default();
        let lossy = String::from_utf8_lossy(&raw).to_lowercase();
        if lossy.contains(&needle.to_lowercase()) {
            found.push(format!("{} (raw bytes)", f.display()));
            continue;
        }
        if let Some(m) = mail_parser::MessageParser::default().parse(&raw[..]) {
            let decoded = m
                .parts
                .iter()
                .map(|p| String::from_utf8_lossy(p.contents()).to_lowercase())
                .chain(
                    m.from()
                        .and_then(|a| a.first())
                        .and_then(|a| a.name())
                        .map(str::to_lowercase),
                )
                .chain(
                    m.to()
                        .and_then(|a| a.first())
                        .and_then(|a| a.name())
                        .map(str::to_lowercase),
                )
                .any(|t| t.contains(&needle.to_lowercase()));
            if decoded {
                found.push(format!("{} (decoded)", f.display()));
            }
        }
    }
    found
}

/// Before an erasure: every needle is somewhere in `files` (so the search
/// after it can fail).
fn assert_stored(files: &[std::path::PathBuf], needles: &[&str]) {
    for needle in needles {
        assert!(
            !traces(files, needle).is_empty(),
            "`{needle}` was never stored"
        );
    }
}

/// After an erasure: no needle is anywhere in `files`.
fn assert_gone(files: &[std::path::PathBuf], needles: &[&str]) {
    for needle in needles {
        let left = traces(files, needle);
        assert!(left.is_empty(), "`{needle}` is still in: {left:#?}");
    }
}

/// `forget` erases from the database file itself and its write-ahead log
/// (secure_delete, checkpoint), from the `.eml` copies of sent mail and from
/// the Maildir (its processed and review folders): afterwards neither the
/// address nor the name is in any of those bytes. `--dry-run` lists what
/// would go and erases nothing.
#[test]
fn forget_leaves_no_trace_in_the_database_files_or_the_sent_copies() {
    let dir = crate::cli::demo_copy();
    let config = dir.path().join("config/demo.toml");
    let rsvpd = |args: &[&str]| {
        let out = std::process::Command::new(crate::app::binary())
            .arg("--config")
            .arg(&config)
            .args(args)
            .output()
            .expect("run rsvpd");
        assert!(
            out.status.success(),
            "{args:?}: {}",
            String::from_utf8_lossy(&out.stderr)
        );
        String::from_utf8_lossy(&out.stdout).into_owned()
    };
    rsvpd(&["run", "--once"]);
    let (address, name) = ("ayse.yilmaz@example.net", "Ayşe Yılmaz");
    let var = dir.path().join("var/demo");
    let places = || {
        let mut files = files_under(&var.join("sent"));
        files.extend(files_under(&var.join("inbox")));
        files.extend(["rsvpd.db", "rsvpd.db-wal"].map(|f| var.join(f)));
        files
    };
    let inbox_before = files_under(&var.join("inbox")).len();
    assert!(
        !traces(&files_under(&var.join("inbox/.rsvpd.processed")), address).is_empty(),
        "her mail was filed into the processed folder"
    );
    // The test can fail: before, both are there.
    assert_stored(&places(), &[address, name]);
    let sent_before = files_under(&var.join("sent")).len();

    let dry = rsvpd(&["forget", address, "--dry-run"]);
    assert!(
        dry.contains("would erase 1 registration(s)") && dry.contains("dry run"),
        "{dry}"
    );
    assert!(dry.contains(".eml"), "the sent copy is listed: {dry}");
    assert!(
        dry.contains("would delete 2 copy(ies)")
            && dry.contains("<5F3A-11@example.net>")
            && dry.contains("<5F3A-99@example.net>"),
        "her two mails in the mailbox are listed: {dry}"
    );
    assert_eq!(files_under(&var.join("inbox")).len(), inbox_before);
    assert_eq!(
        files_under(&var.join("sent")).len(),
        sent_before,
        "a dry run deletes nothing"
    );
    assert!(
        !traces(&places(), address).is_empty(),
        "a dry run erases nothing"
    );

    let out = rsvpd(&["forget", address]);
    assert!(
        out.contains("erased 1 registration(s)") && out.contains("write-ahead log"),
        "{out}"
    );
    assert_gone(&places(), &[address, name]);
    assert!(files_under(&var.join("sent")).len() < sent_before);
    // Exactly her two mails went from the Maildir, and the command says which.
    assert!(
        out.contains("<5F3A-11@example.net>: deleted .rsvpd.processed: 1790000002.M2P1.demo")
            && out.contains("<5F3A-99@example.net>: deleted .rsvpd."),
        "{out}"
    );
    assert_eq!(files_under(&var.join("inbox")).len(), inbox_before - 2);
    // Everyone else is still there.
    let others = rsvpd(&["attendees", "miko-2027", "--format", "json"]);
    assert!(
        others.contains('@') && !others.contains(address),
        "{others}"
    );
}

/// The IMAP side of erasure, and the path without credentials: `forget` run
/// by an organizer who cannot read the IMAP password queues the deletion; the
/// daemon deletes exactly the person's messages from the processed and review
/// folders by UID and records it; afterwards neither the address nor the name
/// is in any file of Dovecot's mail store, while other people's mail stays.
#[test]
fn forget_erases_the_imap_copies_by_uid_through_the_daemon() {
    let dovecot = Dovecot::start();
    let sink = SmtpSink::start();
    // The service's credential file, which the organizer below cannot read.
    let app = Rsvpd::with_config(
        &dovecot,
        &sink,
        "password_file = \"imap-password\"\n",
        CONFERENCES,
    );
    let credential = app.dir.path().join("imap-password");
    std::fs::write(&credential, dovecot.password()).expect("write the password file");
    let (address, name) = ("ayse@example.net", "Ayşe Yılmaz");
    let register = "Hiermit melde ich mich zur Migrationskonferenz an.";
    for (who, from, subject, id, body) in [
        (
            name,
            address,
            "Anmeldung Migrationskonferenz",
            "dsgvo-imap-1@example.net",
            register,
        ),
        // Goes to review: a question, no registration.
        (
            name,
            address,
            "Frage",
            "dsgvo-imap-2@example.net",
            "Gibt es Parkplätze?",
        ),
        (
            "Omar Haddad",
            "omar@example.com",
            "Anmeldung Migrationskonferenz",
            "dsgvo-imap-3@example.net",
            register,
        ),
    ] {
        dovecot.deliver(MAILBOX, &mail(who, from, MAILBOX, subject, id, body));
    }
    app.run_once();
    let store = dovecot.maildir_path(MAILBOX);
    let places = || files_under(&store);
    assert_stored(&places(), &[address, name]);
    let processed = dovecot.list_folder(MAILBOX, "rsvpd.processed").len();
    let review = dovecot.list_folder(MAILBOX, "rsvpd.review").len();
    assert_eq!(processed + review, 3, "all three filed away");

    let dry = app.ok(&["forget", address, "--dry-run"]);
    assert!(
        dry.contains("would delete 2 copy(ies)") && dry.contains("<dsgvo-imap-2@example.net>"),
        "{dry}"
    );
    // An organizer without the service's credentials (the test runs as root,
    // whom file modes do not stop: the file is taken away instead).
    let hidden = app.dir.path().join("imap-password.away");
    std::fs::rename(&credential, &hidden).expect("hide the password file");
    let out = app.output(&["forget", address]);
    std::fs::rename(&hidden, &credential).expect("restore the password file");
    let stdout = String::from_utf8_lossy(&out.stdout);
    assert!(
        out.status.success(),
        "{stdout}\n{}",
        String::from_utf8_lossy(&out.stderr)
    );
    assert!(
        stdout.contains("2 copy(ies)") && stdout.contains("queued for deletion"),
        "{stdout}"
    );
    assert_eq!(
        dovecot.list_folder(MAILBOX, "rsvpd.processed").len()
            + dovecot.list_folder(MAILBOX, "rsvpd.review").len(),
        3,
        "nothing deleted without the password"
    );

    let run = app.output(&["run", "--once"]);
    let log = String::from_utf8_lossy(&run.stderr);
    assert!(run.status.success(), "{log}");
    assert!(
        log.contains("mailbox copy of a person's mail erased on request") && log.contains("UID"),
        "the daemon says what it deleted: {log}"
    );
    let left: Vec<_> = ["rsvpd.processed", "rsvpd.review"]
        .iter()
        .flat_map(|f| dovecot.list_folder(MAILBOX, f))
        .collect();
    assert_eq!(left.len(), 1, "exactly her two mails went");
    assert!(String::from_utf8_lossy(&left[0].2).contains("omar@example.com"));
    // The message files are gone; Dovecot's own header cache still holds
    // the old entries until it is purged, which only the mail server's admin
    // can do (README, "Erasure"): first rsvpd's part, then the whole store.
    let messages = || {
        places()
            .into_iter()
            .filter(|f| !f.to_string_lossy().contains("dovecot.index"))
            .collect::<Vec<_>>()
    };
    assert_gone(&messages(), &[address, name]);
    dovecot.doveadm(&[
        "mailbox",
        "cache",
        "purge",
        "-u",
        MAILBOX,
        "INBOX",
        "rsvpd.processed",
        "rsvpd.review",
    ]);
    assert_gone(&places(), &[address, name]);
    assert!(
        !traces(&places(), "omar@example.com").is_empty(),
        "other people's mail stays"
    );
    let results = app.db(async |s| s.pending_mailbox_erasures().await);
    assert!(results.is_empty(), "the requests are recorded as done");
}
