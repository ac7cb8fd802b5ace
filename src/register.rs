//! Registration: turning one understood command into stored facts and queued mail.
//!
//! Everything a command changes — the registration, its audit entry, the mail that
//! answers it, and the record of the inbound message with its outcome — is written
//! in ONE transaction, so a crash leaves either all of it or none. This module
//! decides statuses (confirmed, waitlisted, pending, cancelled) and which mail
//! follows; it does not parse mail, talk to servers, or send anything.
//!
//! Double opt-in (`opt_in = "double"`): a registration by mail starts `pending`
//! and gets a request carrying a token (subject `[TOKEN]`, Reply-To
//! `anmeldung+confirm-TOKEN@…`); the reply confirms it, or waitlists it when the
//! room filled up meanwhile. A pending registration holds no place — the place
//! goes to whoever confirms first, so an unconfirmed (perhaps mistyped) address
//! cannot block a seat for days. `rsvpd add` by an organizer confirms directly:
//! the organizer vouches for the person. Expiry is the scheduler's job.

use chrono::{DateTime, Duration, Utc};
use serde_json::json;

use crate::config::{Conference, Config, OptIn};
use crate::mailer::{Kind, Rendered, Renderer};
use crate::outbox::{Enqueued, Mail, enqueue};
use crate::storage::{EmailAddress, InboundOutcome, OptInState, Registration, Status, StoreTx};
use crate::understand::{Action, Attendee};

/// Who or what caused a change, for the audit trail.
#[derive(Debug, Clone, Copy)]
pub enum Actor<'a> {
    Mail {
        message_id: &'a str,
    },
    Cli {
        message_id: Option<&'a str>,
    },
    /// An organizer logged in to the web dashboard, by user name.
    Web {
        user: &'a str,
    },
}

impl Actor<'_> {
    fn name(&self) -> String {
        match self {
            Actor::Mail { .. } => "mail".into(),
            Actor::Cli { .. } => "cli".into(),
            Actor::Web { user } => format!("web:{user}"),
        }
    }
    fn message_id(&self) -> Option<&str> {
        match self {
            Actor::Mail { message_id } => Some(message_id),
            Actor::Cli { message_id } => *message_id,
            Actor::Web { .. } => None,
        }
    }
}

/// How an attendee's details are applied to an existing registration.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Mode {
    /// A registration mail: it states everything, re-registering replaces it.
    Register,
    /// A change mail: what it does not mention stays as it was.
    Update,
    /// An organizer's `add --force`: confirmed even over capacity.
    Force,
}

/// What became of an inbound message.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Outcome {
    /// recorded, review or ignored
    pub outcome: InboundOutcome,
    pub reason: Option<String>,
    pub conference: Option<String>,
    /// Mails queued by this command.
    pub queued: usize,
}

impl Outcome {
    fn recorded(conference: &str, reason: Option<String>, queued: usize) -> Outcome {
        Outcome {
            outcome: InboundOutcome::Recorded,
            reason,
            conference: Some(conference.to_string()),
            queued,
        }
    }
    pub fn review(reason: impl Into<String>, conference: Option<String>) -> Outcome {
        Outcome {
            outcome: InboundOutcome::Review,
            reason: Some(reason.into()),
            conference,
            queued: 0,
        }
    }
    pub fn ignored(reason: impl Into<String>) -> Outcome {
        Outcome {
            outcome: InboundOutcome::Ignored,
            reason: Some(reason.into()),
            conference: None,
            queued: 0,
        }
    }
}

pub struct Registrar<'a> {
    pub config: &'a Config,
    pub renderer: &'a Renderer,
}

impl Registrar<'_> {
    /// Apply `action` inside `tx`. The caller records the inbound message with the
    /// returned outcome in the same transaction and commits.
    pub async fn apply(
        &self,
        tx: &mut StoreTx,
        action: &Action,
        actor: Actor<'_>,
        now: DateTime<Utc>,
    ) -> anyhow::Result<Outcome> {
        match action {
            Action::Register {
                conference,
                attendees,
            }
            | Action::Update {
                conference,
                attendees,
            } => {
                let Some(conf) = self.config.conference(conference) else {
                    return Ok(Outcome::review(
                        format!("conference `{conference}` is not configured"),
                        None,
                    ));
                };
                if attendees.is_empty() {
                    return Ok(Outcome::review(
                        "a registration without any attendee",
                        Some(conf.id.clone()),
                    ));
                }
                // Addresses are parsed here, once: what is no address goes to a person.
                if let Some(e) = attendees
                    .iter()
                    .find_map(|a| EmailAddress::parse(&a.email).err())
                {
                    return Ok(Outcome::review(
                        format!("a registration for {e}"),
                        Some(conf.id.clone()),
                    ));
                }
                // An update names what changes; a fresh registration states everything.
                let mode = if matches!(action, Action::Update { .. }) {
                    Mode::Update
                } else {
                    Mode::Register
                };
                // A confirmed party that grows beyond the free places keeps
                // the places it has: the growth is the organizers' decision.
                for a in attendees {
                    // A party larger than the whole room could never be seated:
                    // the waitlist would only hide it.
                    if let Some(capacity) = conf.capacity
                        && a.party_size > capacity
                    {
                        return Ok(Outcome::review(
                            format!(
                                "a party of {} for a room of {capacity} places could never be seated; please answer by hand",
                                a.party_size
                            ),
                            Some(conf.id.clone()),
                        ));
                    }
                    if let Some(reason) = growth_beyond_capacity(tx, conf, a).await? {
                        return Ok(Outcome::review(reason, Some(conf.id.clone())));
                    }
                }
                let mut queued = 0;
                let mut notes = Vec::new();
                for a in attendees {
                    let (n, note) = self.register(tx, conf, a, actor, mode, now).await?;
                    queued += n;
                    notes.extend(note);
                }
                Ok(Outcome::recorded(&conf.id, join_notes(notes), queued))
            }
            Action::Cancel {
                conference, email, ..
            } => {
                let Some(conf) = self.config.conference(conference) else {
                    return Ok(Outcome::review(
                        format!("conference `{conference}` is not configured"),
                        None,
                    ));
                };
                let cancelled = match EmailAddress::parse(email) {
                    Ok(addr) => self.cancel(tx, conf, &addr, actor, now).await?,
                    Err(_) => None,
                };
                match cancelled {
                    Some((queued, note)) => Ok(Outcome::recorded(&conf.id, note, queued)),
                    None => Ok(Outcome::review(
                        format!(
                            "a cancellation from {email}, who has no registration for {}",
                            conf.id
                        ),
                        Some(conf.id.clone()),
                    )),
                }
            }
            Action::Confirm {
                conference,
                email,
                token,
            } => {
                self.confirm(
                    tx,
                    conference.as_deref(),
                    email,
                    token.as_deref(),
                    actor,
                    now,
                )
                .await
            }
            Action::Bounce {
                recipients,
                permanent,
                reason,
            } => {
                if *permanent {
                    for r in recipients {
                        tx.mark_undeliverable(r, reason).await?;
                    }
                }
                Ok(Outcome::ignored(format!(
                    "bounce ({}) for {} address(es): {reason}",
                    if *permanent { "permanent" } else { "temporary" },
                    recipients.len()
                )))
            }
            Action::Ignore { reason } => Ok(Outcome::ignored(reason.clone())),
            Action::Thanks { conference } => Ok(Outcome {
                outcome: InboundOutcome::Thanks,
                reason: Some("only a thank-you; nothing to do".into()),
                conference: conference.clone(),
                queued: 0,
            }),
            Action::Review { reason, conference } => {
                Ok(Outcome::review(reason.clone(), conference.clone()))
            }
        }
    }

    /// The attendee's answer to an opt-in request: found by its token, else by
    /// conference and sender.
    async fn confirm(
        &self,
        tx: &mut StoreTx,
        conference: Option<&str>,
        email: &str,
        token: Option<&str>,
        actor: Actor<'_>,
        now: DateTime<Utc>,
    ) -> anyhow::Result<Outcome> {
        let mut request = None;
        if let Some(t) = token {
            request = tx.opt_in_by_token(t).await?;
        }
        let reg = match &request {
            Some(r) => tx.registration_by_id(r.registration_id).await?,
            None => match conference.and_then(|c| self.config.conference(c)) {
                Some(conf) => match EmailAddress::parse(email) {
                    Ok(addr) => tx.registration(&conf.id, &addr).await?,
                    Err(_) => None,
                },
                None => None,
            },
        };
        let Some(mut reg) = reg else {
            let what = match token {
                Some(t) => {
                    format!("a confirmation with the code {t}, which matches no registration")
                }
                None => format!("a confirmation from {email}, who has no registration to confirm"),
            };
            return Ok(Outcome::review(what, conference.map(str::to_string)));
        };
        let Some(conf) = self.config.conference(&reg.conference_id) else {
            return Ok(Outcome::review(
                format!("conference `{}` is not configured", reg.conference_id),
                None,
            ));
        };
        if request.is_none() {
            request = tx.opt_in_for(reg.id).await?;
        }
        if reg.status != Status::Pending {
            if reg.status == Status::Cancelled
                && request
                    .as_ref()
                    .is_some_and(|r| r.state == OptInState::Expired)
            {
                return Ok(Outcome::review(
                    format!(
                        "{} confirmed a registration for {} that had lapsed unconfirmed; `rsvpd add {} {}` registers them",
                        reg.email, conf.id, conf.id, reg.email
                    ),
                    Some(conf.id.clone()),
                ));
            }
            return Ok(Outcome::ignored(format!(
                "a confirmation for a registration that is already {}",
                reg.status.as_str()
            )));
        }
        reg.status = self.status_for(tx, conf, reg.party_size).await?;
        reg.updated_at = now;
        if let Some(m) = actor.message_id() {
            reg.last_message_id = Some(m.to_string());
        }
        reg.id = tx.save_registration(&reg).await?;
        tx.set_opt_in_state(reg.id, OptInState::Confirmed).await?;
        tx.audit(
            reg.id,
            "confirm",
            actor.message_id(),
            &actor.name(),
            &json!({ "status": reg.status.as_str(), "token": request.map(|r| r.token) }),
            now,
        )
        .await?;
        let kind = if reg.status == Status::Waitlisted {
            Kind::Waitlist
        } else {
            Kind::Confirmation
        };
        let (n, note) = self.answer(tx, conf, &reg, kind, false, actor, now).await?;
        Ok(Outcome::recorded(&conf.id, note, n))
    }

    /// confirmed, or waitlisted when `party_size` more people would exceed the capacity.
    async fn status_for(
        &self,
        tx: &mut StoreTx,
        conf: &Conference,
        party_size: u32,
    ) -> anyhow::Result<Status> {
        let Some(capacity) = conf.capacity else {
            return Ok(Status::Confirmed);
        };
        let taken = tx.seats_taken(&conf.id).await?;
        if taken + i64::from(party_size) <= i64::from(capacity) {
            Ok(Status::Confirmed)
        } else {
            Ok(Status::Waitlisted)
        }
    }

    /// Record (or update) one attendee; returns the mails queued and a note.
    pub async fn register(
        &self,
        tx: &mut StoreTx,
        conf: &Conference,
        a: &Attendee,
        actor: Actor<'_>,
        mode: Mode,
        now: DateTime<Utc>,
    ) -> anyhow::Result<(usize, Option<String>)> {
        let force = mode == Mode::Force;
        let email = EmailAddress::parse(&a.email)?;
        let existing = tx.registration(&conf.id, &email).await?;
        let party_size = a.party_size.max(1);
        let (mut reg, updated) = match existing {
            Some(old) if old.status != Status::Cancelled => {
                let mut r = old.clone();
                if a.name.is_some() {
                    r.name = a.name.clone();
                }
                if a.organization.is_some() {
                    r.organization = a.organization.clone();
                }
                // An update that says nothing about the party leaves it as it was.
                let party_named = party_size > 1 || !a.companions.is_empty();
                if mode != Mode::Update || party_named {
                    r.party_size = party_size;
                    r.companions = a.companions.clone();
                }
                if !a.workshops.is_empty() {
                    r.workshops = a.workshops.clone();
                }
                for n in &a.notes {
                    if !r.notes.contains(n) {
                        r.notes.push(n.clone());
                    }
                }
                r.language = a.language;
                // An organizer adding a pending person vouches for them.
                if r.status == Status::Pending && !needs_opt_in(conf, actor) {
                    r.status = if force {
                        Status::Confirmed
                    } else {
                        self.status_for(tx, conf, party_size).await?
                    };
                    tx.set_opt_in_state(r.id, OptInState::Confirmed).await?;
                }
                // A bigger party may no longer fit: re-check the places, the
                // registration's own current seats excluded.
                if let Some(cap) = conf.capacity
                    && r.status == Status::Confirmed
                    && party_size > old.party_size
                    && !force
                {
                    let others = tx.seats_taken(&conf.id).await? - i64::from(old.party_size);
                    if others + i64::from(party_size) > i64::from(cap) {
                        r.status = Status::Waitlisted;
                    }
                }
                (r, true)
            }
            old => {
                let status = if force {
                    Status::Confirmed
                } else if needs_opt_in(conf, actor) {
                    Status::Pending
                } else {
                    self.status_for(tx, conf, party_size).await?
                };
                (
                    Registration {
                        id: old.as_ref().map(|o| o.id).unwrap_or(0),
                        conference_id: conf.id.clone(),
                        email: email.clone(),
                        name: a.name.clone(),
                        organization: a.organization.clone(),
                        party_size,
                        companions: a.companions.clone(),
                        workshops: a.workshops.clone(),
                        notes: a.notes.clone(),
                        status,
                        language: a.language,
                        registered_at: now,
                        updated_at: now,
                        last_message_id: None,
                    },
                    false,
                )
            }
        };
        reg.updated_at = now;
        if let Some(m) = actor.message_id() {
            reg.last_message_id = Some(m.to_string());
        }
        reg.id = tx.save_registration(&reg).await?;
        let detail = json!({
            "name": reg.name, "organization": reg.organization, "party_size": reg.party_size,
            "companions": reg.companions, "workshops": reg.workshops, "notes": reg.notes,
            "status": reg.status.as_str(), "address_note": a.address_note,
        });
        tx.audit(
            reg.id,
            if updated { "update" } else { "register" },
            actor.message_id(),
            &actor.name(),
            &detail,
            now,
        )
        .await?;
        if reg.status == Status::Pending {
            return self.request_opt_in(tx, conf, &reg, actor, now).await;
        }
        let kind = if reg.status == Status::Waitlisted {
            Kind::Waitlist
        } else {
            Kind::Confirmation
        };
        self.answer(tx, conf, &reg, kind, updated, actor, now).await
    }

    /// Ask a pending registration to confirm: a new token, or the open one again.
    async fn request_opt_in(
        &self,
        tx: &mut StoreTx,
        conf: &Conference,
        reg: &Registration,
        actor: Actor<'_>,
        now: DateTime<Utc>,
    ) -> anyhow::Result<(usize, Option<String>)> {
        let (token, expires_at) = match tx.opt_in_for(reg.id).await? {
            Some(r) if r.state == OptInState::Open => (r.token, r.expires_at),
            _ => {
                let token = new_token();
                let expires = now
                    + Duration::from_std(self.config.defaults.opt_in_expiry)
                        .unwrap_or(Duration::days(7));
                tx.save_opt_in(reg.id, &token, now, expires).await?;
                (token, expires)
            }
        };
        self.answer_with(tx, conf, reg, Kind::OptIn, actor, now, |in_reply_to| {
            self.renderer
                .render_opt_in(conf, reg, &token, expires_at, in_reply_to, now)
        })
        .await
    }

    /// Cancel the registration of `email`; `None` when there is none to cancel.
    pub async fn cancel(
        &self,
        tx: &mut StoreTx,
        conf: &Conference,
        email: &EmailAddress,
        actor: Actor<'_>,
        now: DateTime<Utc>,
    ) -> anyhow::Result<Option<(usize, Option<String>)>> {
        let Some(mut reg) = tx.registration(&conf.id, email).await? else {
            return Ok(None);
        };
        if reg.status == Status::Cancelled {
            return Ok(Some((0, Some("already cancelled".into()))));
        }
        let freed = reg.status == Status::Confirmed || reg.status == Status::Pending;
        let was_pending = reg.status == Status::Pending;
        reg.status = Status::Cancelled;
        reg.updated_at = now;
        if let Some(m) = actor.message_id() {
            reg.last_message_id = Some(m.to_string());
        }
        reg.id = tx.save_registration(&reg).await?;
        if was_pending {
            tx.set_opt_in_state(reg.id, OptInState::Cancelled).await?;
        }
        tx.audit(
            reg.id,
            "cancel",
            actor.message_id(),
            &actor.name(),
            &json!({}),
            now,
        )
        .await?;
        let (mut queued, note) = self
            .answer(tx, conf, &reg, Kind::Cancellation, false, actor, now)
            .await?;
        if freed {
            queued += self.promote(tx, conf, now).await?;
        }
        Ok(Some((queued, note)))
    }

    /// Move waitlisted parties that now fit up, in registration order, and tell them.
    async fn promote(
        &self,
        tx: &mut StoreTx,
        conf: &Conference,
        now: DateTime<Utc>,
    ) -> anyhow::Result<usize> {
        let Some(cap) = conf.capacity else {
            return Ok(0);
        };
        let mut queued = 0;
        for mut reg in tx.waitlist(&conf.id).await? {
            let taken = tx.seats_taken(&conf.id).await?;
            if taken + i64::from(reg.party_size) > i64::from(cap) {
                continue;
            }
            reg.status = Status::Confirmed;
            reg.updated_at = now;
            reg.id = tx.save_registration(&reg).await?;
            tx.audit(reg.id, "promote", None, "system", &json!({}), now)
                .await?;
            let actor = Actor::Cli { message_id: None };
            queued += self
                .answer(tx, conf, &reg, Kind::Promotion, false, actor, now)
                .await?
                .0;
        }
        Ok(queued)
    }

    /// Queue the answer `kind` to `reg`, unless its address bounced or got too many answers today.
    #[allow(clippy::too_many_arguments)]
    async fn answer(
        &self,
        tx: &mut StoreTx,
        conf: &Conference,
        reg: &Registration,
        kind: Kind,
        updated: bool,
        actor: Actor<'_>,
        now: DateTime<Utc>,
    ) -> anyhow::Result<(usize, Option<String>)> {
        self.answer_with(tx, conf, reg, kind, actor, now, |in_reply_to| {
            self.renderer
                .render(kind, conf, reg, updated, in_reply_to, now)
        })
        .await
    }

    /// Like `answer`, with the message rendered by `render(in_reply_to)`.
    #[allow(clippy::too_many_arguments)]
    async fn answer_with(
        &self,
        tx: &mut StoreTx,
        conf: &Conference,
        reg: &Registration,
        kind: Kind,
        actor: Actor<'_>,
        now: DateTime<Utc>,
        render: impl FnOnce(Option<&str>) -> anyhow::Result<Rendered>,
    ) -> anyhow::Result<(usize, Option<String>)> {
        let in_reply_to = match actor {
            Actor::Mail { message_id } => Some(message_id.to_string()),
            Actor::Cli { .. } | Actor::Web { .. } => reg.last_message_id.clone(),
        };
        let mail = Mail {
            kind: kind.outbox_kind(),
            conference_id: Some(&conf.id),
            registration_id: Some(reg.id),
            recipient: &reg.email,
            in_reply_to: in_reply_to.as_deref(),
            answers_per_day: matches!(actor, Actor::Mail { .. })
                .then_some(self.config.defaults.answers_per_day),
        };
        let enqueued = enqueue(tx, mail, now, || render(in_reply_to.as_deref())).await?;
        Ok(match enqueued {
            Enqueued::Queued => (1, None),
            Enqueued::Undeliverable => (
                0,
                Some(format!(
                    "no {} sent: the address bounced before",
                    kind.as_str()
                )),
            ),
            Enqueued::CapReached(cap) => (
                0,
                Some(format!(
                    "no {} sent: {cap} answers went to this address in the last 24 hours ([defaults] answers_per_day)",
                    kind.as_str(),
                )),
            ),
        })
    }
}

/// Whether a registration by `actor` must first be confirmed by the attendee.
/// Why a confirmed registration cannot grow to `a`'s party: the room has
/// fewer free places than the growth. `None` when it fits or nothing grows.
async fn growth_beyond_capacity(
    tx: &mut StoreTx,
    conf: &Conference,
    a: &Attendee,
) -> anyhow::Result<Option<String>> {
    let Some(capacity) = conf.capacity else {
        return Ok(None);
    };
    let Ok(email) = EmailAddress::parse(&a.email) else {
        return Ok(None); // register() reports the bad address
    };
    let Some(old) = tx.registration(&conf.id, &email).await? else {
        return Ok(None);
    };
    let new = a.party_size.max(1);
    if old.status != Status::Confirmed || new <= old.party_size {
        return Ok(None);
    }
    let free = i64::from(capacity) - tx.seats_taken(&conf.id).await?;
    let growth = i64::from(new - old.party_size);
    if growth <= free {
        return Ok(None);
    }
    Ok(Some(format!(
        "{email} wants to come with {new} instead of {} people, but only {} place(s) are free; \
         the registration keeps its {} confirmed place(s) — please decide about the {} more",
        old.party_size,
        free.max(0),
        old.party_size,
        growth
    )))
}

fn needs_opt_in(conf: &Conference, actor: Actor<'_>) -> bool {
    conf.opt_in == OptIn::Double && matches!(actor, Actor::Mail { .. })
}

/// A confirmation code: 10 characters without look-alikes (no 0/O, 1/I/L),
/// with a digit and a letter so that `understand` recognises it in a subject.
pub fn new_token() -> String {
    const ALPHABET: &[u8] = b"ABCDEFGHJKMNPQRSTUVWXYZ23456789";
    loop {
        // A v4 UUID is 122 random bits from the OS; bytes 6 and 8 hold its
        // fixed version and variant bits, so they are left out.
        let bytes = uuid::Uuid::new_v4().into_bytes();
        let token: String = bytes[..6]
            .iter()
            .chain(&bytes[9..13])
            .map(|b| ALPHABET[usize::from(*b) % ALPHABET.len()] as char)
            .collect();
        if token.chars().any(|c| c.is_ascii_digit())
            && token.chars().any(|c| c.is_ascii_alphabetic())
        {
            return token;
        }
    }
}

fn join_notes(notes: Vec<String>) -> Option<String> {
    if notes.is_empty() {
        None
    } else {
        Some(notes.join("; "))
    }
}

#[cfg(test)]
mod tests;
