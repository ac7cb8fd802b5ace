//! The pipeline for one inbound message: understand it, apply it, record the outcome.
//!
//! Every source (IMAP, Maildir, `rsvpd ingest`) hands raw bytes and a location
//! here. A message is handled at most once per location and at most once per
//! Message-ID: a copy seen before ends as `duplicate`, changes nothing and sends
//! nothing. A panic while understanding a message is caught and the message goes
//! to review with the reason, so one hostile mail cannot stop the daemon.
//! A mail read from the mailbox is recorded only while its reader still holds
//! the mailbox (the fence, see `storage::reader`).

use anyhow::Context as _;
use chrono::Utc;
use tracing::{info, warn};

use crate::app::App;
use crate::mask::mask;
use crate::register::{Actor, Outcome};
use crate::storage::{Fence, InboundOutcome, NewInbound, is_fenced};
use crate::understand::{self, Action, Context, Step, Understood};

impl App {
    /// Understand `raw` (never panics: a panic becomes a review item), with
    /// what only the store knows: the thread the mail answers, the sender's
    /// registration when the text names no conference, and our opt-in
    /// request when the reply lost its token.
    ///
    /// Reading runs on an understanding thread (`understand::worker`): a mail
    /// takes a millisecond or more of CPU (see `benches/understand.rs`), which
    /// would otherwise hold up the IMAP and SMTP work of the other workers on
    /// the daemon's async threads.
    pub async fn understand(&self, raw: &[u8]) -> anyhow::Result<Understood> {
        self.understand_answering(raw, &understand::thread_references(raw))
            .await
    }

    /// `understand`, with the message ids the mail answers already read
    /// (`understand::thread_references`).
    async fn understand_answering(
        &self,
        raw: &[u8],
        refs: &[String],
    ) -> anyhow::Result<Understood> {
        let thread = self.store.thread_conference(refs).await?;
        let mut understood = self.understand_in(raw, thread.clone()).await?;
        if thread.is_none()
            && unrouted(&understood.action)
            && let Some(from) = understood.from.clone()
        {
            // A reply that names no conference: the sender's one registration says which.
            let mine = self.store.active_conferences_of(&from).await?;
            if let [conference] = mine.as_slice() {
                let mut again = self.understand_in(raw, Some(conference.clone())).await?;
                if !unrouted(&again.action) {
                    again.explanation.push(Step::logic(
                        "conference",
                        format!("no conference named; the sender's only registration is for {conference}"),
                    ));
                    understood = again;
                }
            }
        }
        if let Some((conference, registrant)) = self.store.opt_in_thread(refs).await? {
            confirm_by_thread(&mut understood, &conference, &registrant);
        }
        Ok(understood)
    }

    async fn understand_in(
        &self,
        raw: &[u8],
        thread: Option<String>,
    ) -> anyhow::Result<Understood> {
        let conferences = self.conference_refs();
        let mailbox_address = self.config.mailbox.address.clone();
        let default_language = self.config.defaults.language;
        let raw = raw.to_vec();
        let result = understand::worker::run(move || {
            std::panic::catch_unwind(std::panic::AssertUnwindSafe(|| {
                crate::failpoint::panic_point("understand-panic");
                let ctx = Context {
                    conferences: &conferences,
                    mailbox_address: &mailbox_address,
                    thread_conference: thread.as_deref(),
                    default_language,
                };
                understand::understand(&raw, &ctx)
            }))
        })
        .await?;
        Ok(result.unwrap_or_else(|panic| {
            let what = panic
                .downcast_ref::<&str>()
                .map(|s| s.to_string())
                .or_else(|| panic.downcast_ref::<String>().cloned())
                .unwrap_or_else(|| "unknown".into());
            Understood {
                message_id: None,
                from: None,
                subject: String::new(),
                language: self.config.defaults.language,
                action: Action::Review {
                    reason: format!("rsvpd failed while reading this mail (internal error: {what}); please handle it by hand"),
                    conference: None,
                },
                explanation: Default::default(),
            }
        }))
    }

    /// Handle one message found at `location`; returns what became of it.
    /// Calling it again for the same location changes nothing. With `oversize`,
    /// `raw` is only the header of a mail too large to read: it goes to review.
    /// A mail from the mailbox carries its reader's `fence`: when another
    /// process has taken the mailbox over, nothing is recorded (`Fenced`).
    pub async fn process(
        &self,
        raw: &[u8],
        location: &str,
        oversize: Option<u64>,
        fence: Fence,
    ) -> anyhow::Result<Processed> {
        let prepared = match self.prepare(raw, location, oversize).await? {
            Ok(p) => p,
            Err(outcome) => return Ok(Processed::AlreadyHandled(outcome)),
        };
        let mut outcomes = self.record(std::slice::from_ref(&prepared), fence).await?;
        Ok(Processed::Done(outcomes.remove(0)))
    }

    /// Handle several messages in order, as `process` would one after the
    /// other, but committing them together: one transaction (and one fsync)
    /// for many mails, each with its own outcome. Understanding reads what is
    /// committed, so a mail that could depend on an earlier one of the batch —
    /// the same sender, or an answer to one of its messages — first commits
    /// what came before it and is then read afresh. When a batch cannot be
    /// recorded, its mails are handled one by one, so one mail's error is
    /// reported for that mail only.
    pub async fn process_many(
        &self,
        mails: &[Incoming<'_>],
        fence: Fence,
    ) -> anyhow::Result<Vec<Processed>> {
        let mut batch: Vec<(usize, Prepared<'_>)> = Vec::new();
        let mut results: Vec<Option<Processed>> = vec![None; mails.len()];
        // Read side by side (understanding is CPU on the blocking threads,
        // the store's lookups are waits), recorded in order below.
        let mut read = Vec::with_capacity(mails.len());
        let locations: Vec<&str> = mails.iter().map(|m| m.location).collect();
        let handled_before = self.store.inbound_outcomes(&locations).await?;
        for chunk in mails.chunks(READ_AHEAD) {
            let mut side_by_side = Vec::with_capacity(chunk.len());
            for m in chunk {
                let known = handled_before.get(m.location).copied();
                side_by_side.push(self.prepare_known(m.raw, m.location, m.oversize, known));
            }
            read.extend(futures_util::future::join_all(side_by_side).await);
        }
        for ((i, mail), read) in mails.iter().enumerate().zip(read) {
            let mut read = read?;
            if let Ok(prepared) = &read
                && batch.iter().any(|(_, b)| depends_on(prepared, b))
            {
                self.record_batch(&mut batch, &mut results, mails, fence)
                    .await?;
                read = self.prepare(mail.raw, mail.location, mail.oversize).await?;
            }
            match read {
                Ok(prepared) => batch.push((i, prepared)),
                Err(outcome) => results[i] = Some(Processed::AlreadyHandled(outcome)),
            }
        }
        self.record_batch(&mut batch, &mut results, mails, fence)
            .await?;
        results
            .into_iter()
            .map(|r| r.ok_or_else(|| anyhow::anyhow!("a mail of the batch was left unhandled")))
            .collect()
    }

    async fn record_batch<'a>(
        &self,
        batch: &mut Vec<(usize, Prepared<'a>)>,
        results: &mut [Option<Processed>],
        mails: &[Incoming<'_>],
        fence: Fence,
    ) -> anyhow::Result<()> {
        if batch.is_empty() {
            return Ok(());
        }
        let taken = std::mem::take(batch);
        let (indexes, prepared): (Vec<usize>, Vec<Prepared<'a>>) = taken.into_iter().unzip();
        match self.record(&prepared, fence).await {
            Ok(outcomes) => {
                for (i, o) in indexes.into_iter().zip(outcomes) {
                    results[i] = Some(Processed::Done(o));
                }
            }
            Err(e) if prepared.len() == 1 || is_fenced(&e) => return Err(e),
            Err(e) => {
                warn!(error = %format!("{e:#}"), mails = prepared.len(), "recording a batch failed; recording its mails one by one");
                for i in indexes {
                    let m = &mails[i];
                    results[i] = Some(self.process(m.raw, m.location, m.oversize, fence).await?);
                }
            }
        }
        Ok(())
    }

    /// Understand a mail not handled before (`Err`: its stored outcome).
    async fn prepare<'a>(
        &self,
        raw: &'a [u8],
        location: &'a str,
        oversize: Option<u64>,
    ) -> anyhow::Result<Result<Prepared<'a>, InboundOutcome>> {
        let known = self.store.inbound_outcome(location).await?;
        self.prepare_known(raw, location, oversize, known).await
    }

    /// `prepare`, with the location's stored outcome already looked up.
    async fn prepare_known<'a>(
        &self,
        raw: &'a [u8],
        location: &'a str,
        oversize: Option<u64>,
        handled_before: Option<InboundOutcome>,
    ) -> anyhow::Result<Result<Prepared<'a>, InboundOutcome>> {
        if let Some(outcome) = handled_before {
            return Ok(Err(outcome));
        }
        let references = understand::thread_references(raw);
        let understood = self.understand_answering(raw, &references).await?;
        let message_id = understood
            .message_id
            .clone()
            .filter(|m| !m.trim().is_empty())
            .unwrap_or_else(|| synthetic_message_id(raw));
        Ok(Ok(Prepared {
            raw,
            location,
            oversize,
            references,
            understood,
            message_id,
        }))
    }

    /// Apply and record understood mails in one transaction, in order.
    async fn record(&self, mails: &[Prepared<'_>], fence: Fence) -> anyhow::Result<Vec<Outcome>> {
        let now = Utc::now();
        let mut tx = self.store.begin().await?;
        tx.check_fence(fence).await?;
        let mut outcomes = Vec::with_capacity(mails.len());
        let ids: Vec<&str> = mails.iter().map(|p| p.message_id.as_str()).collect();
        let mut seen = tx.message_id_outcomes(&ids).await?;
        for p in mails {
            let outcome = if let Some(previous) = seen.get(&p.message_id) {
                Outcome {
                    outcome: InboundOutcome::Duplicate,
                    reason: Some(format!(
                        "a copy of a message handled before (outcome: {previous})"
                    )),
                    conference: None,
                    queued: 0,
                }
            } else if let Some(size) = p.oversize {
                Outcome::review(
                    format!(
                        "the mail is {:.1} MB, more than [mailbox] max_message_size ({:.1} MB); \
                         it was not read — see it in the review folder",
                        size as f64 / 1_048_576.0,
                        self.config.mailbox.max_message_size as f64 / 1_048_576.0
                    ),
                    None,
                )
            } else {
                let actor = Actor::Mail {
                    message_id: &p.message_id,
                };
                self.registrar()
                    .apply(&mut tx, &p.understood.action, actor, now)
                    .await?
            };
            // Review needs the mail to assign it later; a recorded mail is the
            // source of a registration, shown to the organizers beside it (both
            // are erased with the person and purged after the retention time).
            let raw_kept = matches!(
                outcome.outcome,
                InboundOutcome::Review | InboundOutcome::Recorded
            )
            .then_some(p.raw);
            tx.insert_inbound(
                &NewInbound {
                    message_id: &p.message_id,
                    location: p.location,
                    from: p.understood.from.as_deref(),
                    subject: &p.understood.subject,
                    outcome: outcome.outcome,
                    reason: outcome.reason.as_deref(),
                    conference_id: outcome.conference.as_deref(),
                    raw: raw_kept,
                    explanation: Some(&p.understood.explanation),
                },
                now,
            )
            .await?;
            if outcome.outcome != InboundOutcome::Duplicate {
                seen.entry(p.message_id.clone()).or_insert(outcome.outcome);
            }
            outcomes.push(outcome);
        }
        let what = match mails {
            [one] => format!("recording message {}", one.location),
            many => format!("recording {} messages", many.len()),
        };
        tx.commit().await.context(what)?;
        for (p, outcome) in mails.iter().zip(&outcomes) {
            self.handled(p, outcome);
        }
        Ok(outcomes)
    }

    /// After the commit: metrics, wake-ups and the log line of one mail.
    fn handled(&self, p: &Prepared<'_>, outcome: &Outcome) {
        let location = p.location;
        crate::metrics::message_handled(outcome.outcome.as_str());
        if outcome.queued > 0 {
            self.outbox_wakeup.notify_one();
        }
        if outcome.outcome == InboundOutcome::Recorded {
            self.schedule_wakeup.notify_one();
        }
        let from = p
            .understood
            .from
            .as_deref()
            .map(mask)
            .unwrap_or_else(|| "-".into());
        match outcome.outcome {
            InboundOutcome::Review => {
                warn!(%location, %from, reason = outcome.reason.as_deref().unwrap_or(""), "message needs a human")
            }
            _ => info!(
                %location, %from, outcome = %outcome.outcome,
                conference = outcome.conference.as_deref().unwrap_or("-"),
                queued = outcome.queued,
                reason = outcome.reason.as_deref().unwrap_or(""),
                "message handled"
            ),
        }
    }
}

/// How many mails of a batch `process_many` reads at the same time: as
/// many as the machine has cores (2 here) gives the speed; more only adds
/// regex caches on more blocking threads (peak RSS 81 MiB with 4, 71–77 with 2).
const READ_AHEAD: usize = 2;

/// One mail handed to [`App::process_many`].
pub struct Incoming<'a> {
    pub raw: &'a [u8],
    pub location: &'a str,
    pub oversize: Option<u64>,
}

/// A mail understood and not yet recorded.
struct Prepared<'a> {
    raw: &'a [u8],
    location: &'a str,
    oversize: Option<u64>,
    references: Vec<String>,
    understood: Understood,
    message_id: String,
}

/// Could reading `later` change once `earlier` is recorded? Understanding
/// asks the store about the sender's registrations and about the thread a
/// mail answers; both can be what `earlier` records.
fn depends_on(later: &Prepared<'_>, earlier: &Prepared<'_>) -> bool {
    let same_sender = match (&later.understood.from, &earlier.understood.from) {
        (Some(a), Some(b)) => a.eq_ignore_ascii_case(b),
        _ => false,
    };
    same_sender
        || later.references.iter().any(|r| r == &earlier.message_id)
        || later.message_id == earlier.message_id
}

#[derive(Debug, Clone, PartialEq, Eq)]
pub enum Processed {
    /// Handled now, with this outcome.
    Done(Outcome),
    /// This location was handled before (outcome stored then).
    AlreadyHandled(InboundOutcome),
}

impl Processed {
    pub fn outcome(&self) -> InboundOutcome {
        match self {
            Processed::Done(o) => o.outcome,
            Processed::AlreadyHandled(o) => *o,
        }
    }
}

/// A request that found no conference to apply to.
fn unrouted(action: &Action) -> bool {
    matches!(action, Action::Review { conference: None, reason } if reason.contains("no conference could be recognised"))
}

/// A reply from the registrant to our opt-in request is the confirmation,
/// token or not: our own thread is as good as the token. Not when it cancels
/// or when someone else answers.
fn confirm_by_thread(u: &mut Understood, conference: &str, registrant: &str) {
    let from_registrant = u.from.as_deref() == Some(registrant);
    let cancels = u.explanation.steps.iter().any(|s| s.rule == "cancel");
    let convertible = matches!(
        u.action,
        Action::Register { .. }
            | Action::Update { .. }
            | Action::Review { .. }
            | Action::Thanks { .. }
            | Action::Confirm { token: None, .. }
    );
    if from_registrant && !cancels && convertible {
        u.explanation.push(Step::logic(
            "confirm",
            "a reply from the registrant to our opt-in request (In-Reply-To), as good as the token",
        ));
        u.action = Action::Confirm {
            conference: Some(conference.to_string()),
            email: registrant.to_string(),
            token: None,
        };
    }
}

/// A stable id for a message that has none: a hash of its bytes.
pub fn synthetic_message_id(raw: &[u8]) -> String {
    format!("sha256-{}@rsvpd.invalid", hex_sha256(raw))
}

pub fn hex_sha256(raw: &[u8]) -> String {
    use sha2::Digest;
    let digest = sha2::Sha256::digest(raw);
    digest.iter().map(|b| format!("{b:02x}")).collect()
}
