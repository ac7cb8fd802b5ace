//! One function per subcommand of the command line.
//!
//! Commands read through the storage layer and write only through the same
//! functions the daemon uses (pipeline, registrar), so a registration added by
//! hand gets the same audit entry and the same mail as one that came by mail.

use std::path::{Path, PathBuf};

use anyhow::{Context as _, anyhow, bail};
use chrono::Utc;

use crate::app::App;
use crate::config::{self, Config};
use crate::daemon;
use crate::mailbox::Source;
use crate::mailer::Transport;
use crate::manual::{self, NewRegistration};
use crate::output::{Format, Table, print_json};
use crate::pipeline::{Processed, hex_sha256};
use crate::register::Actor;
use crate::storage::{Fence, OutboxState, Store};
use crate::{say, say_raw};

fn load(path: &Path) -> anyhow::Result<Config> {
    Config::load(path)
}

/// `rsvpd hash-password`: the password on stdin (one line; the line break is
/// not part of it) → an argon2id hash for `[[web.user]] password_hash`.
pub fn hash_password() -> anyhow::Result<()> {
    use std::io::Read as _;
    let mut input = String::new();
    std::io::stdin()
        .read_to_string(&mut input)
        .context("cannot read the password from stdin (it must be UTF-8 text)")?;
    let password = input
        .strip_suffix('\n')
        .map(|p| p.strip_suffix('\r').unwrap_or(p))
        .unwrap_or(&input);
    if password.is_empty() {
        bail!(
            "no password on stdin; type it after `rsvpd hash-password` and press Enter, then Ctrl+D, or pipe it in"
        );
    }
    say!("{}", crate::web::auth::hash_password(password)?)?;
    Ok(())
}

pub fn default_config() -> anyhow::Result<()> {
    say_raw!("{}", config::EXAMPLE)?;
    Ok(())
}

pub async fn run(path: &Path, once: bool) -> anyhow::Result<()> {
    let config = load(path)?;
    if once {
        daemon::run_once(config).await
    } else {
        daemon::run(config).await
    }
}

pub async fn check(path: &Path, offline: bool) -> anyhow::Result<()> {
    let config = load(path)?;
    say!(
        "config      ok: {} ({} conference(s))",
        path.display(),
        config.conferences.len()
    )?;
    if offline {
        return check_offline(&config);
    }
    let app = App::open(config).await?;
    say!("database    ok: {}", app.config.database.describe())?;
    let mut source = Source::new(&app.config);
    let line = source.check(&app).await.context("mailbox check failed")?;
    say!("mailbox     ok: {line}")?;
    let transport = Transport::new(&app.config.smtp)?;
    let line = transport.check().await.context("SMTP check failed")?;
    say!("smtp        ok: {line}")?;
    app.store.close().await;
    Ok(())
}

/// `check --offline` (the unit's `ExecStartPre`): everything that can be
/// checked on this machine — templates, CA files, that the password files
/// can be read — without contacting a server, so a mail server that is down
/// at boot does not stop the start.
fn check_offline(config: &Config) -> anyhow::Result<()> {
    crate::mailer::Renderer::new(config)?;
    say!("templates   ok: every template renders")?;
    match &config.mailbox.source {
        config::MailboxSource::Maildir(dir) => say!(
            "mailbox     ok: Maildir {} (not read: --offline)",
            dir.display()
        )?,
        config::MailboxSource::Imap(s) => {
            s.password.read()?;
            say!(
                "mailbox     ok: IMAP {}:{} as {}, password from {} (not contacted: --offline)",
                s.host,
                s.port,
                s.user,
                s.password.describe()
            )?
        }
    }
    // Building the transport reads the CA file; it connects only when sending.
    Transport::new(&config.smtp)?;
    match &config.smtp.transport {
        config::SmtpTransportConfig::File(dir) => {
            say!("smtp        ok: mail is written into {}", dir.display())?
        }
        config::SmtpTransportConfig::Smtp(s) => {
            let login = match (&s.user, &s.password) {
                (Some(user), Some(password)) => {
                    password.read()?;
                    format!("as {user}, password from {}", password.describe())
                }
                _ => "without login".to_string(),
            };
            say!(
                "smtp        ok: {}:{} {login} (not contacted: --offline)",
                s.host,
                s.port
            )?
        }
    }
    say!(
        "database    not opened (--offline): {}",
        config.database.describe()
    )?;
    Ok(())
}

/// Split an mbox file into messages; a file that is not mbox is one message.
fn split_mbox(data: &[u8]) -> Vec<Vec<u8>> {
    if !data.starts_with(b"From ") {
        return vec![data.to_vec()];
    }
    let mut messages = Vec::new();
    let mut current: Option<Vec<u8>> = None;
    for line in data.split_inclusive(|&b| b == b'\n') {
        if line.starts_with(b"From ") {
            if let Some(m) = current.take() {
                messages.push(m);
            }
            current = Some(Vec::new());
            continue;
        }
        let body = current.get_or_insert_with(Vec::new);
        // mboxrd: ">From " (with any number of >) lost one >.
        let unescaped = if line.starts_with(b">")
            && line
                .iter()
                .skip_while(|&&b| b == b'>')
                .take(5)
                .eq(b"From ".iter())
        {
            &line[1..]
        } else {
            line
        };
        body.extend_from_slice(unescaped);
    }
    if let Some(m) = current {
        messages.push(m);
    }
    messages
}

pub async fn ingest(path: &Path, files: &[PathBuf]) -> anyhow::Result<()> {
    let config = load(path)?;
    let app = App::open(config).await?;
    let mut counts = std::collections::BTreeMap::<String, usize>::new();
    for file in files {
        let data =
            std::fs::read(file).with_context(|| format!("cannot read {}", file.display()))?;
        let limit = app.config.mailbox.max_message_size;
        for raw in split_mbox(&data) {
            let location = format!("file:{}", hex_sha256(&raw));
            let oversize = (raw.len() as u64 > limit).then_some(raw.len() as u64);
            let processed = app
                .process(&raw, &location, oversize, Fence::Unfenced)
                .await?;
            let outcome = match &processed {
                Processed::Done(o) => o.outcome.to_string(),
                Processed::AlreadyHandled(_) => "already handled".to_string(),
            };
            say!("{}: {outcome}", file.display())?;
            *counts.entry(outcome).or_default() += 1;
        }
    }
    let summary: Vec<String> = counts.iter().map(|(k, v)| format!("{v} {k}")).collect();
    say!("{}", summary.join(", "))?;
    app.store.close().await;
    Ok(())
}

pub async fn conferences(path: &Path, format: Format) -> anyhow::Result<()> {
    let config = load(path)?;
    let store = Store::open(&config.database).await?;
    store.sync_conferences(&config.conferences).await?;
    let now = Utc::now();
    let mut rows = Vec::new();
    for c in &config.conferences {
        let (regs, people, waiting) = store.registration_counts(&c.id).await?;
        rows.push(serde_json::json!({
            "id": c.id,
            "title": c.title,
            "starts": c.local_starts().format("%Y-%m-%dT%H:%M").to_string(),
            "ends": c.local_ends().format("%Y-%m-%dT%H:%M").to_string(),
            "timezone": c.timezone.name(),
            "location": c.location,
            "capacity": c.capacity,
            "open": c.is_open(now),
            "registrations": regs,
            "people": people,
            "waitlisted": waiting,
        }));
    }
    store.close().await;
    match format {
        Format::Json => print_json(&rows),
        _ => {
            let mut t = Table::new(&[
                "ID",
                "TITLE",
                "STARTS",
                "OPEN",
                "REGISTRATIONS",
                "PEOPLE",
                "CAPACITY",
                "WAITLISTED",
            ]);
            for (c, r) in config.conferences.iter().zip(&rows) {
                t.row(vec![
                    c.id.clone(),
                    c.title.clone(),
                    c.local_starts().format("%Y-%m-%d %H:%M").to_string(),
                    if c.is_open(now) {
                        "yes".into()
                    } else {
                        "no".into()
                    },
                    r["registrations"].to_string(),
                    r["people"].to_string(),
                    c.capacity
                        .map(|n| n.to_string())
                        .unwrap_or_else(|| "-".into()),
                    r["waitlisted"].to_string(),
                ]);
            }
            t.print()
        }
    }
}

fn known_conference<'a>(config: &'a Config, id: &str) -> anyhow::Result<&'a config::Conference> {
    config.conference(id).ok_or_else(|| {
        let ids: Vec<&str> = config.conferences.iter().map(|c| c.id.as_str()).collect();
        anyhow!(
            "no conference `{id}` in {}; known: {}",
            config.path.display(),
            ids.join(", ")
        )
    })
}

pub async fn attendees(
    path: &Path,
    conference: &str,
    all: bool,
    format: Format,
) -> anyhow::Result<()> {
    let config = load(path)?;
    known_conference(&config, conference)?;
    let store = Store::open(&config.database).await?;
    let regs = store.registrations(conference, all).await?;
    store.close().await;
    match format {
        Format::Json => print_json(&regs),
        Format::Csv => crate::export::write_attendees_csv(std::io::stdout().lock(), &regs),
        Format::Table => {
            let mut t = Table::new(&[
                "EMAIL",
                "NAME",
                "ORGANIZATION",
                "PARTY",
                "WORKSHOPS",
                "STATUS",
                "LANG",
                "NOTES",
            ]);
            for r in &regs {
                t.row(vec![
                    r.email.to_string(),
                    r.name.clone().unwrap_or_default(),
                    r.organization.clone().unwrap_or_default(),
                    r.party_size.to_string(),
                    r.workshops.join(","),
                    r.status.as_str().into(),
                    r.language.code().into(),
                    r.notes.join("; "),
                ]);
            }
            t.print()?;
            let people: u32 = regs
                .iter()
                .filter(|r| r.status == crate::storage::Status::Confirmed)
                .map(|r| r.party_size)
                .sum();
            say!("{} registration(s), {people} confirmed people", regs.len())?;
            Ok(())
        }
    }
}

pub async fn review_list(path: &Path, format: Format) -> anyhow::Result<()> {
    let config = load(path)?;
    let store = Store::open(&config.database).await?;
    let items = store.review_items().await?;
    store.close().await;
    match format {
        Format::Json => print_json(&items),
        _ => {
            let mut t = Table::new(&["ID", "RECEIVED", "FROM", "SUBJECT", "REASON", "WHY"]);
            for i in &items {
                t.row(vec![
                    i.id.to_string(),
                    i.received_at.clone(),
                    i.from.clone().unwrap_or_default(),
                    i.subject.clone(),
                    i.reason.clone(),
                    i.explanation
                        .as_ref()
                        .map(|e| e.to_string())
                        .unwrap_or_default(),
                ]);
            }
            t.print()?;
            say!("{} message(s) need a human", items.len())?;
            Ok(())
        }
    }
}

pub async fn review_assign(path: &Path, id: i64, conference: &str) -> anyhow::Result<()> {
    let config = load(path)?;
    known_conference(&config, conference)?;
    let app = App::open(config).await?;
    let assigned = crate::review::assign(&app, id, conference, None, "an organizer").await?;
    say!(
        "review item {id}: recorded for {}, {} mail(s) queued",
        assigned.conference,
        assigned.queued
    )?;
    app.store.close().await;
    Ok(())
}

pub async fn review_dismiss(path: &Path, id: i64) -> anyhow::Result<()> {
    let config = load(path)?;
    let store = Store::open(&config.database).await?;
    let dismissed = crate::review::dismiss(&store, id, "an organizer").await?;
    store.close().await;
    if !dismissed {
        bail!("no open review item {id}; `rsvpd review` lists them");
    }
    say!("review item {id} dismissed")?;
    Ok(())
}

pub async fn outbox(path: &Path, format: Format) -> anyhow::Result<()> {
    let config = load(path)?;
    let store = Store::open(&config.database).await?;
    let items = store.outbox_items().await?;
    store.close().await;
    match format {
        Format::Json => print_json(&items),
        _ => {
            let mut t = Table::new(&[
                "ID",
                "KIND",
                "CONFERENCE",
                "TO",
                "STATE",
                "TRIES",
                "NEXT/SENT",
                "LAST ERROR",
            ]);
            for i in &items {
                t.row(vec![
                    i.id.to_string(),
                    i.kind.to_string(),
                    i.conference.clone().unwrap_or_default(),
                    i.recipient.clone(),
                    i.state.to_string(),
                    i.attempts.to_string(),
                    i.sent_at
                        .clone()
                        .unwrap_or_else(|| i.next_attempt_at.clone()),
                    i.last_error.clone().unwrap_or_default(),
                ]);
            }
            t.print()?;
            let queued = items
                .iter()
                .filter(|i| i.state == OutboxState::Queued)
                .count();
            let failed = items
                .iter()
                .filter(|i| i.state == OutboxState::Failed)
                .count();
            say!("{} mail(s): {queued} queued, {failed} failed", items.len())?;
            Ok(())
        }
    }
}

pub struct AddArgs {
    pub name: Option<String>,
    pub organization: Option<String>,
    pub party_size: u32,
    pub workshops: Vec<String>,
    pub notes: Vec<String>,
    pub language: Option<String>,
    pub force: bool,
}

pub async fn add(path: &Path, conference: &str, email: &str, args: AddArgs) -> anyhow::Result<()> {
    let config = load(path)?;
    let conf = known_conference(&config, conference)?.clone();
    let language = match args.language.as_deref() {
        None => None,
        Some(l) => Some(
            config::Language::parse(l)
                .ok_or_else(|| anyhow!("--language must be de or en, not `{l}`"))?,
        ),
    };
    let app = App::open(config).await?;
    let new = NewRegistration {
        email: email.to_string(),
        name: args.name,
        organization: args.organization,
        party_size: args.party_size,
        workshops: args.workshops,
        notes: args.notes,
        language,
        force: args.force,
    };
    let added = manual::add(&app, &conf, new, Actor::Cli { message_id: None }).await?;
    say!(
        "{} registered for {} ({}); {} mail(s) queued{}",
        added.email,
        conf.id,
        added.status.map(|s| s.as_str()).unwrap_or("?"),
        added.queued,
        added.note.map(|n| format!(" — {n}")).unwrap_or_default()
    )?;
    app.store.close().await;
    Ok(())
}

pub async fn cancel(path: &Path, conference: &str, email: &str) -> anyhow::Result<()> {
    let config = load(path)?;
    let conf = known_conference(&config, conference)?.clone();
    let app = App::open(config).await?;
    let queued = manual::cancel(&app, &conf, email, Actor::Cli { message_id: None }).await?;
    say!("{email} cancelled for {}; {queued} mail(s) queued", conf.id)?;
    app.store.close().await;
    Ok(())
}

/// `rsvpd send`: one mail per attendee of `conference` in `statuses`.
pub async fn send(
    path: &Path,
    conference: &str,
    subject: &str,
    body_file: &Path,
    statuses: Option<&str>,
    dry_run: bool,
) -> anyhow::Result<()> {
    let config = load(path)?;
    let conf = known_conference(&config, conference)?.clone();
    let statuses = match statuses {
        Some(s) => crate::broadcast::parse_statuses(s)?,
        None => crate::broadcast::DEFAULT_STATUSES.to_vec(),
    };
    let body = std::fs::read_to_string(body_file).with_context(|| {
        format!(
            "cannot read the body file {} (a UTF-8 text file; placeholders such as {{{{ name }}}} are filled per attendee)",
            body_file.display()
        )
    })?;
    if subject.trim().is_empty() {
        bail!("--subject is empty; give the mail a subject");
    }
    let app = App::open(config).await?;
    let now = Utc::now();
    let plan = crate::broadcast::prepare(&app, &conf, subject, &body, &statuses, now).await?;
    let names: Vec<&str> = statuses.iter().map(|s| s.as_str()).collect();
    for (email, why) in &plan.skipped {
        say!("left out {email}: {why}")?;
    }
    if dry_run {
        say!(
            "dry run: {} mail(s) would be queued for {} ({}); nothing was queued",
            plan.mails.len(),
            conf.id,
            names.join(",")
        )?;
        if let Some(sample) = &plan.sample {
            say!("--- sample ---\n{sample}")?;
        }
    } else {
        let n = crate::broadcast::queue(&app, &conf, plan, now).await?;
        say!(
            "{n} mail(s) queued for {} ({}); `rsvpd outbox` shows them",
            conf.id,
            names.join(",")
        )?;
        // With the daemon running; `run --once` sends at the same pace.
        say!("{}", crate::outbox::backlog_notice(&app).await?)?;
    }
    app.store.close().await;
    Ok(())
}

pub async fn person(path: &Path, email: &str) -> anyhow::Result<()> {
    let config = load(path)?;
    let store = Store::open(&config.database).await?;
    let data = store.person(email).await?;
    store.close().await;
    print_json(&data)
}

pub async fn forget(path: &Path, email: &str, dry_run: bool) -> anyhow::Result<()> {
    let config = load(path)?;
    let store = Store::open(&config.database).await?;
    use crate::privacy::MailboxErasure;
    let result = crate::privacy::forget(&config, &store, email, dry_run).await;
    store.close().await;
    let f = result?;
    let verb = if dry_run { "would erase" } else { "erased" };
    say!(
        "{email}: {verb} {} registration(s), {} received and {} sent mail(s) in the database, \
         the body of {} organizers' digest(s) that listed them, and {} sent copy file(s):",
        f.registrations,
        f.messages_received,
        f.messages_sent,
        f.digests,
        f.files.len()
    )?;
    for file in &f.files {
        say!("  {}", file.display())?;
    }
    if let Some(db) = &f.database_files {
        say!("{db}")?;
    }
    let folders = format!(
        "`{}` and `{}`",
        config.mailbox.processed_folder, config.mailbox.review_folder
    );
    match &f.mailbox_erasure {
        None => {
            say!(
                "would delete {} copy(ies) of their mail from the mailbox folders {folders}:",
                f.mailbox.len()
            )?;
            for c in &f.mailbox {
                say!(
                    "  Message-ID <{}> ({}, arrived as {})",
                    c.message_id,
                    c.outcome,
                    c.location
                )?;
            }
        }
        Some(MailboxErasure::Done(done)) if done.is_empty() => {
            say!("no mail of theirs in the mailbox folders {folders}")?
        }
        Some(MailboxErasure::Done(done)) => {
            say!("their mail in the mailbox folders {folders}:")?;
            for (c, result) in done {
                say!("  Message-ID <{}>: {result}", c.message_id)?;
            }
        }
        Some(MailboxErasure::Queued(why)) => say!(
            "{} copy(ies) of their mail in the mailbox folders {folders} are queued for deletion: {why}; \
             the daemon (`rsvpd run`) deletes them the next time it looks at the mailbox and logs what it deleted",
            f.mailbox.len()
        )?,
    }
    if dry_run {
        say!("dry run: nothing was erased")?;
    }
    Ok(())
}

#[cfg(test)]
mod tests {
    use super::split_mbox;

    #[test]
    fn mbox_is_split_and_unescaped() {
        let mbox = b"From a@b Mon Jan  1 00:00:00 2027\nSubject: 1\n\n>From here\nbody\nFrom c@d Mon Jan  1 00:00:00 2027\nSubject: 2\n\nx\n";
        let m = split_mbox(mbox);
        assert_eq!(m.len(), 2);
        assert_eq!(m[0], b"Subject: 1\n\nFrom here\nbody\n");
        assert_eq!(m[1], b"Subject: 2\n\nx\n");
        assert_eq!(split_mbox(b"Subject: x\n\nbody").len(), 1);
    }
}
