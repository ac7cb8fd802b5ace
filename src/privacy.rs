//! Privacy (DSGVO): personal data is kept only `[defaults] retention_days`
//! after a conference ends, then purged; `rsvpd person` shows what is held
//! about an address, `rsvpd forget` erases it — from the database rows, the
//! digests that listed the person, the `.eml` copies of sent mail and
//! SQLite's write-ahead log. The SQL lives in `storage`.

use anyhow::Context as _;
use chrono::{DateTime, Duration, Utc};
use tracing::info;

use crate::app::App;
use crate::storage::Erased;

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
/// (its deletes overwrite with zeros). Mail in the mailbox folders is not
/// touched here.
pub async fn forget(
    config: &crate::config::Config,
    store: &crate::storage::Store,
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
    };
    if dry_run {
        return Ok(report);
    }
    store.forget(&email).await?;
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
