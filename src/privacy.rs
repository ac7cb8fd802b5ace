//! Privacy (DSGVO): personal data is kept only `[defaults] retention_days`
//! after a conference ends, then purged; `rsvpd person` shows what is held
//! about an address, `rsvpd forget` erases it — from the database rows, the
//! digests that listed the person, the `.eml` copies of sent mail, SQLite's
//! write-ahead log, and the copies of their mail in the mailbox folders. The
//! SQL lives in `storage`.
//!
//! Deleting mailbox copies needs the mailbox credentials, and `forget` is a
//! database command organizers run without them: so `forget` records the
//! request in the database, carries it out at once when it can (a Maildir,
//! or a readable IMAP password), and otherwise the daemon, which holds the
//! password, carries it out and records and logs what it deleted.

use anyhow::Context as _;
use chrono::{DateTime, Duration, Utc};
use tracing::info;

use crate::app::App;
use crate::storage::{Erased, MailboxCopy, Store};

/// Purge the personal data of every conference that ended longer ago than the
/// retention time. Cheap when there is nothing to do; safe to call often.
pub async fn purge_due(app: &App, now: DateTime<Utc>) -> anyhow::Result<Erased> {
    let keep = Duration::days(i64::from(app.config.defaults.retention_days));
    let mut total = Erased::default();
    for conf in &app.config.conferences {
        if conf.ends + keep > now {
            continue;
        }
        let e = app.store.purge_conference(&conf.id).await?;
        if e != Erased::default() {
            info!(
                conference = %conf.id,
                registrations = e.registrations,
                received = e.messages_received,
                sent = e.messages_sent,
                "personal data purged after the retention time"
            );
        }
        total.registrations += e.registrations;
        total.messages_received += e.messages_received;
        total.messages_sent += e.messages_sent;
    }
    Ok(total)
}

/// What `rsvpd forget` erased (or, in a dry run, would erase).
#[derive(Debug, Default)]
pub struct Forgotten {
    pub registrations: usize,
    pub messages_received: usize,
    pub messages_sent: usize,
    /// Organizers' digests that listed the person: their bodies go.
    pub digests: usize,
    /// `.eml` copies of sent mail (`[smtp] url = file://…`) that go.
    pub files: Vec<std::path::PathBuf>,
    /// What was done to the database files (SQLite's WAL, PostgreSQL).
    pub database_files: Option<String>,
    /// Their mail in the mailbox folders (processed, review).
    pub mailbox: Vec<MailboxCopy>,
    /// What became of those copies (none in a dry run).
    pub mailbox_erasure: Option<MailboxErasure>,
}

/// What `forget` did about the mailbox copies.
#[derive(Debug)]
pub enum MailboxErasure {
    /// Deleted now: each copy with what was deleted where.
    Done(Vec<(MailboxCopy, String)>),
    /// Left for the daemon, and why.
    Queued(String),
}

/// Carry out the requested deletions of mailbox copies (see the module
/// documentation) and record each result. Requests stay pending when this
/// fails, for the next try.
pub async fn erase_mailbox_copies(
    config: &crate::config::Config,
    store: &Store,
) -> anyhow::Result<Vec<(MailboxCopy, String)>> {
    let pending = store.pending_mailbox_erasures().await?;
    if pending.is_empty() {
        return Ok(Vec::new());
    }
    let results = crate::mailbox::erase_copies(config, &pending)
        .await
        .context("deleting a person's mail from the mailbox folders")?;
    let mut done = Vec::new();
    for (copy, result) in pending.into_iter().zip(results) {
        store
            .mailbox_erasure_done(copy.inbound_id, &result, result.starts_with("deleted "))
            .await?;
        info!(message = copy.inbound_id, %result, "mailbox copy of a person's mail erased on request");
        done.push((copy, result));
    }
    Ok(done)
}

/// Whether `raw` (a whole message) mentions any of `needles`, in its bytes or
/// in any decoded part (base64 attachments such as the digest's CSV).
fn mentions(raw: &[u8], needles: &[String]) -> bool {
    let lower = |b: &[u8]| String::from_utf8_lossy(b).to_lowercase();
    let mut texts = vec![lower(raw)];
    if let Some(m) = mail_parser::MessageParser::default().parse(raw) {
        texts.extend(m.parts.iter().map(|p| lower(p.contents())));
    }
    texts
        .iter()
        .any(|t| needles.iter().any(|n| t.contains(n.as_str())))
}

/// Erase everything rsvpd holds about `email` (DSGVO Art. 17), or with
/// `dry_run` only say what would go: the database rows, the bodies of the
/// organizers' digests that listed the person, the `.eml` copies of mail
/// sent to or about them, and old page copies in SQLite's write-ahead log
/// (its deletes overwrite with zeros), and their mail in the mailbox folders
/// (now or by the daemon, see the module documentation).
pub async fn forget(
    config: &crate::config::Config,
    store: &Store,
    email: &str,
    dry_run: bool,
) -> anyhow::Result<Forgotten> {
    let email = email.trim().to_lowercase();
    let person = store.person(&email).await?;
    let mut needles = vec![email.clone()];
    needles.extend(
        person
            .registrations
            .iter()
            .filter_map(|r| r.registration.name.as_deref())
            .filter(|n| n.chars().count() >= 4)
            .map(str::to_lowercase),
    );
    needles.sort();
    needles.dedup();
    let digests: Vec<i64> = store
        .digest_bodies()
        .await?
        .into_iter()
        .filter(|(_, raw)| mentions(raw, &needles))
        .map(|(id, _)| id)
        .collect();
    let mut files = Vec::new();
    if let crate::config::SmtpTransportConfig::File(dir) = &config.smtp.transport
        && let Ok(entries) = std::fs::read_dir(dir)
    {
        for entry in entries.flatten() {
            let path = entry.path();
            let Ok(raw) = std::fs::read(&path) else {
                continue;
            };
            // Only the person's address decides: a name alone may be someone else's.
            if mentions(&raw, std::slice::from_ref(&email)) {
                files.push(path);
            }
        }
        files.sort();
    }
    let mut report = Forgotten {
        registrations: person.registrations.len(),
        messages_received: person.messages_received.len(),
        messages_sent: person.messages_sent.len(),
        digests: digests.len(),
        files,
        database_files: None,
        mailbox: store.mailbox_copies(&email).await?,
        mailbox_erasure: None,
    };
    if dry_run {
        return Ok(report);
    }
    store.forget(&email).await?;
    report.mailbox_erasure = Some(match &config.mailbox.source {
        crate::config::MailboxSource::Imap(server) if server.password.read().is_err() => {
            MailboxErasure::Queued(format!(
                "this command cannot read the IMAP password ({})",
                server.password.describe()
            ))
        }
        _ => match erase_mailbox_copies(config, store).await {
            Ok(done) => MailboxErasure::Done(done),
            Err(e) => MailboxErasure::Queued(format!("{e:#}")),
        },
    });
    store.erase_outbox_bodies(&digests).await?;
    for f in &report.files {
        std::fs::remove_file(f)
            .with_context(|| format!("cannot delete the sent copy {}", f.display()))?;
    }
    report.database_files = Some(store.scrub_files().await?);
    info!(
        to = %crate::mask::mask(&email),
        registrations = report.registrations,
        digests = report.digests,
        files = report.files.len(),
        "personal data erased on request"
    );
    Ok(report)
}

#[cfg(test)]
mod tests {
    use super::mentions;

    #[test]
    fn a_digest_mentions_the_person_also_inside_its_base64_csv() {
        // The CSV attachment alone names her (base64: "ayse@example.net,Ayşe").
        let raw = b"Subject: Digest\r\nMIME-Version: 1.0\r\nContent-Type: multipart/mixed; boundary=b\r\n\r\n\
--b\r\nContent-Type: text/plain\r\n\r\n1 new registration\r\n\
--b\r\nContent-Type: text/csv\r\nContent-Transfer-Encoding: base64\r\n\r\nYXlzZUBleGFtcGxlLm5ldCxBecWfZQ==\r\n--b--\r\n";
        assert!(
            !String::from_utf8_lossy(raw).contains("ayse@"),
            "the test needs the encoded form"
        );
        assert!(mentions(raw, &["ayse@example.net".into()]));
        assert!(!mentions(raw, &["omar@example.com".into()]));
    }
}
