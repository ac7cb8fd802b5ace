//! Mailbox sources: where raw registration mails come from, and where a handled
//! mail goes afterwards.
//!
//! A source yields one message at a time with a location that names it uniquely
//! (`imap:FOLDER:UIDVALIDITY:UID`, `maildir:NAME`); after the pipeline has stored
//! the outcome, the message is filed away — into `processed_folder`, or into
//! `review_folder` when it needs a human. Mail is never deleted, except a
//! person's own mail on their request (`erase_copies`). The order is what
//! makes crashes harmless: store first, then move; a message whose move was lost
//! is seen again, found already handled by its location, and only moved.
//!
//! IMAP works in batches, because every command is a round trip: the bodies of
//! up to [`FETCH_BATCH`] new mails come in one UID FETCH, and the mails handled
//! meanwhile are filed away with one UID MOVE per target folder before the
//! next batch is fetched and before the worker waits for new mail. The UID
//! recorded as handled advances only after that move, so the order above holds
//! for every mail of a batch. The mails of one fetch are also recorded
//! together, up to [`READ_BATCH`] in one transaction (`App::process_many`):
//! one commit, and one fsync, for many mails, each with its own outcome.
//!
//! Only one process reads the mailbox at a time (`storage::reader`): the
//! daemon's worker reads while it holds the reader's lease and passes the
//! lease's fence to every write here.

pub mod imap;
pub mod maildir;

use std::collections::VecDeque;
use std::time::Duration;

use anyhow::{Context as _, anyhow};
use tracing::{debug, info};

use crate::app::App;
use crate::config::{Config, ImapServer, MailboxSource};
use crate::failpoint::reader_failpoint;
use crate::pipeline::{Incoming, Processed};
use crate::storage::Fence;

/// At most this many mails are fetched in one command…
pub const FETCH_BATCH: usize = 64;
/// …and at most this many bytes (by RFC822.SIZE; one larger mail still comes
/// alone), so a batch of big mails cannot blow up the daemon's memory.
const FETCH_BATCH_BYTES: u64 = 8 * 1024 * 1024;

/// At most this many mails of one fetch are recorded in one transaction.
pub const READ_BATCH: usize = 32;

/// One message waiting to be handled.
pub struct Pending {
    pub location: String,
    /// The message; only its header when it is larger than `max_message_size`.
    pub raw: Vec<u8>,
    /// The full size, when it was too large to read.
    pub oversize: Option<u64>,
    key: Key,
}

enum Key {
    Uid(u32),
    File(std::path::PathBuf),
}

pub enum Source {
    Imap(Box<ImapSource>),
    Maildir(maildir::Maildir),
}

impl Source {
    pub fn new(config: &Config) -> Source {
        match &config.mailbox.source {
            MailboxSource::Maildir(root) => Source::Maildir(maildir::Maildir::new(
                root.clone(),
                &config.mailbox.processed_folder,
                &config.mailbox.review_folder,
                config.mailbox.max_message_size,
            )),
            MailboxSource::Imap(server) => Source::Imap(Box::new(ImapSource {
                server: server.clone(),
                folder: config.mailbox.folder.clone(),
                processed_folder: config.mailbox.processed_folder.clone(),
                review_folder: config.mailbox.review_folder.clone(),
                timeout: config.mailbox.timeout,
                idle: config.mailbox.idle,
                max_size: config.mailbox.max_message_size,
                session: None,
                state: None,
                queue: VecDeque::new(),
                fetched: VecDeque::new(),
                handled: Vec::new(),
                logins: 0,
            })),
        }
    }

    /// The next message to handle, if any is there now. `fence` is the
    /// reader's: the progress recorded on the way is fenced like the outcomes.
    pub async fn next(&mut self, app: &App, fence: Fence) -> anyhow::Result<Option<Pending>> {
        match self {
            Source::Maildir(m) => m.next_message(),
            Source::Imap(s) => s.next(app, fence).await,
        }
    }

    /// The next message already fetched with the last one, without a round
    /// trip to the server and without filing anything away (IMAP only: a
    /// Maildir yields its next file only after the last was filed away).
    pub fn next_fetched(&mut self) -> Option<Pending> {
        match self {
            Source::Maildir(_) => None,
            Source::Imap(s) => s.fetched.pop_front(),
        }
    }

    /// File a handled message away according to its outcome.
    pub async fn file_away(
        &mut self,
        msg: Pending,
        outcome: crate::storage::InboundOutcome,
    ) -> anyhow::Result<()> {
        let review = outcome == crate::storage::InboundOutcome::Review;
        match (self, msg.key) {
            (Source::Maildir(m), Key::File(path)) => {
                m.file_away(&path, review)?;
                reader_failpoint("after-move").await;
                Ok(())
            }
            // Moved with the rest of its batch (see the module documentation).
            (Source::Imap(s), Key::Uid(uid)) => {
                s.handled.push((uid, review));
                Ok(())
            }
            _ => Err(anyhow!("a message was filed away by the wrong source")),
        }
    }

    /// File away what was handled and not yet moved (IMAP moves in batches);
    /// called by `next` itself before it looks for more, and by the daemon
    /// before it stops. The progress is recorded under the reader's `fence`.
    pub async fn flush(&mut self, app: &App, fence: Fence) -> anyhow::Result<()> {
        match self {
            Source::Imap(s) => s.flush(app, fence).await,
            Source::Maildir(_) => Ok(()),
        }
    }

    /// Wait until new mail may be there: IDLE where the server offers it, else
    /// the poll interval. Cancel-safe: the caller may drop it at shutdown.
    pub async fn wait(&mut self, poll_interval: Duration) -> anyhow::Result<()> {
        match self {
            Source::Imap(s) if s.idle => s.idle_wait(poll_interval).await,
            _ => {
                tokio::time::sleep(poll_interval).await;
                Ok(())
            }
        }
    }

    /// Drop the connection after an error, so the next call reconnects.
    pub fn reset(&mut self) {
        if let Source::Imap(s) = self {
            s.session = None;
            s.forget_folder();
        }
    }

    /// Connect and look (for `rsvpd check`): a line describing what was found.
    pub async fn check(&mut self, app: &App) -> anyhow::Result<String> {
        match self {
            Source::Maildir(m) => m.check(),
            Source::Imap(s) => {
                s.ensure_session(app).await?;
                let n = s.queue.len();
                Ok(format!(
                    "IMAP {}:{} login as {} works; folder `{}` holds {n} new message(s)",
                    s.server.host, s.server.port, s.server.user, s.folder
                ))
            }
        }
    }
}

/// What we know about the selected folder.
struct FolderState {
    uidvalidity: u32,
    last_uid: u32,
    caps: imap::Caps,
    processed: String,
    review: String,
}

pub struct ImapSource {
    server: ImapServer,
    folder: String,
    processed_folder: String,
    review_folder: String,
    timeout: Duration,
    idle: bool,
    max_size: u64,
    session: Option<imap::Session>,
    state: Option<FolderState>,
    /// UIDs (with sizes) found new, not fetched yet.
    queue: VecDeque<(u32, u32)>,
    /// Fetched in the last batch, not handled yet.
    fetched: VecDeque<Pending>,
    /// Handled (outcome stored), not moved yet: UID and whether to review.
    handled: Vec<(u32, bool)>,
    /// Successful logins so far; every one after the first is a reconnect.
    logins: u64,
}

impl ImapSource {
    fn state_key(&self) -> String {
        format!("imap:{}", self.folder)
    }

    /// Run `f` on the session in a blocking thread. On error the session is
    /// dropped: after a timeout or a broken pipe its state is unknown.
    async fn blocking<T: Send + 'static>(
        &mut self,
        f: impl FnOnce(&mut imap::Session) -> anyhow::Result<T> + Send + 'static,
    ) -> anyhow::Result<T> {
        let mut session = self
            .session
            .take()
            .ok_or_else(|| anyhow!("no IMAP session"))?;
        let (session, result) = tokio::task::spawn_blocking(move || {
            let r = f(&mut session);
            (session, r)
        })
        .await
        .context("the IMAP thread failed")?;
        if result.is_ok() {
            self.session = Some(session);
        } else {
            self.forget_folder();
        }
        result
    }

    /// After the session is lost: whatever was found, fetched or handled and
    /// not yet moved is found again after reconnecting (handled mail by its
    /// location), because the recorded UID never passed it.
    fn forget_folder(&mut self) {
        self.state = None;
        self.queue.clear();
        self.fetched.clear();
        self.handled.clear();
    }

    async fn ensure_session(&mut self, app: &App) -> anyhow::Result<()> {
        if self.session.is_some() && self.state.is_some() {
            return Ok(());
        }
        let server = self.server.clone();
        let timeout = self.timeout;
        let session = tokio::task::spawn_blocking(move || imap::connect(&server, timeout))
            .await
            .context("the IMAP thread failed")??;
        if self.logins > 0 {
            crate::metrics::imap_reconnected();
        }
        self.logins += 1;
        self.session = Some(session);
        let folder = self.folder.clone();
        let processed = self.processed_folder.clone();
        let review = self.review_folder.clone();
        let (caps, processed, review, uidvalidity) = self
            .blocking(move |s| {
                let caps = imap::capabilities(s)?;
                let processed = imap::ensure_folder(s, &processed)?;
                let review = imap::ensure_folder(s, &review)?;
                let uidvalidity = imap::select(s, &folder)?;
                Ok((caps, processed, review, uidvalidity))
            })
            .await?;
        let last_uid = match app.store.mailbox_state(&self.state_key()).await? {
            Some((v, last)) if v == uidvalidity => last,
            Some((v, _)) => {
                info!(folder = %self.folder, old = v, new = uidvalidity, "UIDVALIDITY changed; looking at every message again (handled ones are recognised by Message-ID)");
                0
            }
            None => 0,
        };
        debug!(?caps, %processed, %review, uidvalidity, last_uid, "IMAP session ready");
        self.state = Some(FolderState {
            uidvalidity,
            last_uid,
            caps,
            processed,
            review,
        });
        self.refill().await
    }

    async fn refill(&mut self) -> anyhow::Result<()> {
        let last = self.state.as_ref().map(|s| s.last_uid).unwrap_or(0);
        let uids = self.blocking(move |s| imap::new_uids(s, last)).await?;
        self.queue = uids.into();
        Ok(())
    }

    async fn next(&mut self, app: &App, fence: Fence) -> anyhow::Result<Option<Pending>> {
        self.ensure_session(app).await?;
        loop {
            if let Some(msg) = self.fetched.pop_front() {
                return Ok(Some(msg));
            }
            // The batch in hand is done: move it before looking further.
            self.flush(app, fence).await?;
            if self.queue.is_empty() {
                self.refill().await?;
                if self.queue.is_empty() {
                    return Ok(None);
                }
            }
            self.fetch_batch().await?;
        }
    }

    /// Fetch the next batch from the queue: whole mails in one command, the
    /// headers of mails over `max_message_size` in another.
    async fn fetch_batch(&mut self) -> anyhow::Result<()> {
        let mut batch = Vec::new();
        let mut bytes = 0u64;
        while let Some(&(uid, size)) = self.queue.front() {
            let oversize = u64::from(size) > self.max_size;
            let cost = if oversize { 0 } else { u64::from(size) };
            if batch.len() >= FETCH_BATCH || (!batch.is_empty() && bytes + cost > FETCH_BATCH_BYTES)
            {
                break;
            }
            self.queue.pop_front();
            bytes += cost;
            batch.push((uid, size, oversize));
        }
        let whole: Vec<u32> = batch.iter().filter(|b| !b.2).map(|b| b.0).collect();
        let headers: Vec<u32> = batch.iter().filter(|b| b.2).map(|b| b.0).collect();
        let (mut whole, mut headers) = self
            .blocking(move |s| {
                Ok((
                    imap::fetch(s, &whole, false)?,
                    imap::fetch(s, &headers, true)?,
                ))
            })
            .await?;
        let uidvalidity = self.state.as_ref().map(|s| s.uidvalidity).unwrap_or(0);
        for (uid, size, oversize) in batch {
            let found = if oversize { &mut headers } else { &mut whole };
            // Gone meanwhile (another client moved it): nothing to handle.
            let Some(i) = found.iter().position(|(u, _)| *u == uid) else {
                continue;
            };
            let (_, raw) = found.swap_remove(i);
            self.fetched.push_back(Pending {
                location: format!("imap:{}:{}:{}", self.folder, uidvalidity, uid),
                raw,
                oversize: oversize.then_some(u64::from(size)),
                key: Key::Uid(uid),
            });
        }
        Ok(())
    }

    /// Move the handled mails, one command per target folder, then record the
    /// highest UID as handled.
    async fn flush(&mut self, app: &App, fence: Fence) -> anyhow::Result<()> {
        if self.handled.is_empty() {
            return Ok(());
        }
        let state = self
            .state
            .as_ref()
            .ok_or_else(|| anyhow!("no IMAP folder selected"))?;
        let caps = state.caps;
        let (processed, review) = (state.processed.clone(), state.review.clone());
        let uidvalidity = state.uidvalidity;
        let done: Vec<u32> = self.handled.iter().filter(|h| !h.1).map(|h| h.0).collect();
        let to_review: Vec<u32> = self.handled.iter().filter(|h| h.1).map(|h| h.0).collect();
        let highest = self.handled.iter().map(|h| h.0).max().unwrap_or(0);
        self.blocking(move |s| {
            imap::file_away(s, caps, &done, &processed)?;
            imap::file_away(s, caps, &to_review, &review)
        })
        .await?;
        self.handled.clear();
        let key = self.state_key();
        if let Some(state) = self.state.as_mut() {
            state.last_uid = state.last_uid.max(highest);
            app.store
                .set_mailbox_state(&key, uidvalidity, state.last_uid, fence)
                .await?;
        }
        reader_failpoint("after-move").await;
        Ok(())
    }

    async fn idle_wait(&mut self, poll_interval: Duration) -> anyhow::Result<()> {
        let can_idle = self.state.as_ref().map(|s| s.caps.idle).unwrap_or(false);
        if self.session.is_none() || !can_idle {
            tokio::time::sleep(poll_interval).await;
            return Ok(());
        }
        // Re-issue IDLE well within the 29 minutes of RFC 2177.
        let wait = poll_interval.clamp(Duration::from_secs(1), Duration::from_secs(25 * 60));
        self.blocking(move |s| {
            // Mail may have arrived while we worked: then there is no need to wait.
            let pending = s
                .unsolicited_responses
                .try_iter()
                .any(|r| matches!(r, ::imap::types::UnsolicitedResponse::Exists(_)));
            if pending {
                return Ok(true);
            }
            imap::idle(s, wait)
        })
        .await?;
        Ok(())
    }
}

/// Delete `copies` (a person's mail, on request) from the processed and
/// review folders: the one place rsvpd deletes mail, because the law asks for
/// it. Maildir files go by the name they arrived with; on IMAP, the messages
/// with the copy's Message-ID go by UID (their UID changed when they were
/// moved). Returns, for each copy in order, what was deleted where.
pub async fn erase_copies(
    config: &Config,
    copies: &[crate::storage::MailboxCopy],
) -> anyhow::Result<Vec<String>> {
    let mailbox = &config.mailbox;
    let folders = format!(
        "`{}` or `{}`",
        mailbox.processed_folder, mailbox.review_folder
    );
    let not_found = move |what: &str| format!("{what} not in {folders} (already gone)");
    match &mailbox.source {
        MailboxSource::Maildir(root) => {
            let m = maildir::Maildir::new(
                root.clone(),
                &mailbox.processed_folder,
                &mailbox.review_folder,
                mailbox.max_message_size,
            );
            let copies = copies.to_vec();
            let not_found = not_found.clone();
            tokio::task::spawn_blocking(move || {
                copies
                    .iter()
                    .map(|c| {
                        let Some(name) = c.location.strip_prefix("maildir:") else {
                            return Ok(format!(
                                "{} came from another mailbox; not here",
                                c.location
                            ));
                        };
                        let deleted = m.erase(name)?;
                        Ok(if deleted.is_empty() {
                            not_found(&format!("file {name}"))
                        } else {
                            format!("deleted {}", deleted.join(", "))
                        })
                    })
                    .collect()
            })
            .await
            .context("the Maildir thread failed")?
        }
        MailboxSource::Imap(server) => {
            let server = server.clone();
            let timeout = mailbox.timeout;
            let targets = [
                mailbox.processed_folder.clone(),
                mailbox.review_folder.clone(),
            ];
            // Mail without a Message-ID has a synthetic one (`pipeline`) that
            // no server can search for.
            let searchable = |c: &crate::storage::MailboxCopy| {
                c.location.starts_with("imap:") && !c.message_id.ends_with("@rsvpd.invalid")
            };
            let ids: Vec<String> = copies
                .iter()
                .filter(|c| searchable(c))
                .map(|c| c.message_id.clone())
                .collect();
            let per_folder = tokio::task::spawn_blocking(move || {
                let mut s = imap::connect(&server, timeout)?;
                let caps = imap::capabilities(&mut s)?;
                let ids: Vec<&str> = ids.iter().map(String::as_str).collect();
                let mut out = Vec::new();
                for folder in &targets {
                    let name = imap::ensure_folder(&mut s, folder)?;
                    out.push((name.clone(), imap::erase(&mut s, caps, &name, &ids)?));
                }
                // Closing is courtesy; the deletions are done.
                let _ = s.logout();
                anyhow::Ok(out)
            })
            .await
            .context("the IMAP thread failed")??;
            let mut next = 0;
            Ok(copies
                .iter()
                .map(|c| {
                    if !c.location.starts_with("imap:") {
                        return format!("{} came from another mailbox; not here", c.location);
                    }
                    if !searchable(c) {
                        return "not searchable on IMAP: the mail had no Message-ID; delete it by hand".into();
                    }
                    let i = next;
                    next += 1;
                    let deleted: Vec<String> = per_folder
                        .iter()
                        .filter(|(_, found)| !found[i].is_empty())
                        .map(|(folder, found)| {
                            let uids: Vec<String> = found[i].iter().map(u32::to_string).collect();
                            format!("{folder}: UID {}", uids.join(", "))
                        })
                        .collect();
                    if deleted.is_empty() {
                        not_found(&format!("Message-ID <{}>", c.message_id))
                    } else {
                        format!("deleted {}", deleted.join("; "))
                    }
                })
                .collect())
        }
    }
}

/// Handle every message that is there now; returns how many were handled.
/// `fence` is the reader's (see `storage::reader`).
pub async fn drain(app: &App, source: &mut Source, fence: Fence) -> anyhow::Result<usize> {
    let mut n = 0;
    loop {
        match step(app, source, fence).await? {
            0 => return Ok(n),
            handled => n += handled,
        }
    }
}

/// Handle the next message and those fetched with it (up to [`READ_BATCH`],
/// recorded in one transaction, see `App::process_many`); returns how many
/// were handled, 0 when there was none.
pub async fn step(app: &App, source: &mut Source, fence: Fence) -> anyhow::Result<usize> {
    let Some(first) = source.next(app, fence).await? else {
        return Ok(0);
    };
    reader_failpoint("after-fetch").await;
    let mut batch = vec![first];
    while batch.len() < READ_BATCH
        && let Some(msg) = source.next_fetched()
    {
        batch.push(msg);
    }
    let incoming: Vec<Incoming<'_>> = batch
        .iter()
        .map(|m| Incoming {
            raw: &m.raw,
            location: &m.location,
            oversize: m.oversize,
        })
        .collect();
    let processed = app.process_many(&incoming, fence).await?;
    reader_failpoint("after-commit").await;
    let n = batch.len();
    for (msg, processed) in batch.into_iter().zip(processed) {
        if let Processed::AlreadyHandled(outcome) = &processed {
            debug!(location = %msg.location, %outcome, "already handled; filing it away");
        }
        source.file_away(msg, processed.outcome()).await?;
    }
    Ok(n)
}
