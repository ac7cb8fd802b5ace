//! The understanding step: one raw mail in, one command out. A pure function
//! with no I/O — it never looks anything up except in the [`Context`] it is
//! given, and it never panics: input it cannot read becomes
//! [`Action::Review`] with a reason a person can act on.
//!
//! The work is split by concern: [`mime`] reads bytes into headers and one
//! body text, [`filters`] recognises bounces and automatic mail, [`text`]
//! separates the writer's own words from quotes and signatures, [`intent`]
//! reads what they want, [`routing`] finds the conference, [`people`] and
//! [`choices`] fill in who comes, with whom, to which workshops, needing what.
//! This file holds the public types and puts the pieces together.

use std::panic::{AssertUnwindSafe, catch_unwind};

use serde::{Deserialize, Serialize};

mod choices;
mod filters;
mod html;
mod intent;
mod mime;
mod people;
mod routing;
mod text;

#[cfg(test)]
mod corpus_test;

use intent::Intent;
use routing::{Route, RouteInput};

#[derive(Debug, Clone, Copy, PartialEq, Eq, Serialize, Deserialize)]
#[serde(rename_all = "lowercase")]
pub enum Language {
    De,
    En,
}

/// What the understanding step needs to know about one conference.
#[derive(Debug, Clone)]
pub struct ConferenceRef {
    pub id: String,
    pub title: String,
    pub aliases: Vec<String>,
    pub workshops: Vec<WorkshopRef>,
    /// Open for registration now.
    pub open: bool,
    /// Optional per-conference address, e.g. "fishbowl@example.org".
    pub address: Option<String>,
}

#[derive(Debug, Clone)]
pub struct WorkshopRef {
    pub id: String,
    pub title: String,
}

pub struct Context<'a> {
    pub conferences: &'a [ConferenceRef],
    /// The registration mailbox address, e.g. "anmeldung@example.org"; plus addresses
    /// "anmeldung+<conference id or alias slug>@example.org" route to a conference.
    pub mailbox_address: &'a str,
    /// Conference of a mail rsvpd sent that this mail replies to (caller looked up
    /// the ids from `thread_references` in its outbox), if any.
    pub thread_conference: Option<&'a str>,
    pub default_language: Language,
}

#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
pub struct Understood {
    /// Without `<>`.
    pub message_id: Option<String>,
    /// Sender address, lowercased.
    pub from: Option<String>,
    /// Decoded.
    pub subject: String,
    /// Language the answer should be in.
    pub language: Language,
    pub action: Action,
}

#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
#[serde(tag = "kind", rename_all = "snake_case")]
pub enum Action {
    Register {
        conference: String,
        attendees: Vec<Attendee>,
    },
    Update {
        conference: String,
        attendees: Vec<Attendee>,
    },
    Cancel {
        conference: String,
        email: String,
        name: Option<String>,
    },
    Confirm {
        conference: Option<String>,
        email: String,
        token: Option<String>,
    },
    Bounce {
        recipients: Vec<String>,
        permanent: bool,
        reason: String,
    },
    /// Auto-replies, lists, newsletters: deliberately not answered.
    Ignore { reason: String },
    /// Needs a human; the reason says why, in plain words.
    Review {
        reason: String,
        conference: Option<String>,
    },
}

#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
pub struct Attendee {
    /// Lowercased.
    pub email: String,
    pub name: Option<String>,
    pub organization: Option<String>,
    /// The attendee plus companions (>= 1).
    pub party_size: u32,
    /// Named companions, may be fewer than party_size - 1.
    pub companions: Vec<String>,
    /// Workshop ids from [`ConferenceRef`].
    pub workshops: Vec<String>,
    /// Accessibility, interpreter, child care, diet … short phrases.
    pub notes: Vec<String>,
    pub language: Language,
    /// E.g. why Reply-To was used instead of From.
    pub address_note: Option<String>,
}

/// Reads one raw mail and says what to do with it. Never panics.
pub fn understand(raw: &[u8], ctx: &Context) -> Understood {
    match catch_unwind(AssertUnwindSafe(|| run(raw, ctx))) {
        Ok(u) => u,
        Err(_) => Understood {
            message_id: None,
            from: None,
            subject: String::new(),
            language: ctx.default_language,
            action: Action::Review {
                reason:
                    "the message could not be analysed (internal error); please read it yourself"
                        .into(),
                conference: None,
            },
        },
    }
}

/// Message-IDs (without <>) from In-Reply-To and References, for the caller's thread lookup.
pub fn thread_references(raw: &[u8]) -> Vec<String> {
    catch_unwind(|| mime::thread_references(raw)).unwrap_or_default()
}

/// The largest party we register without asking a person.
const MAX_PARTY: u32 = 30;

fn review(reason: impl Into<String>, conference: Option<String>) -> Action {
    Action::Review {
        reason: reason.into(),
        conference,
    }
}

fn run(raw: &[u8], ctx: &Context) -> Understood {
    let Some(mail) = mime::parse(raw) else {
        return Understood {
            message_id: None,
            from: None,
            subject: String::new(),
            language: ctx.default_language,
            action: review("empty message", None),
        };
    };
    let mut u = Understood {
        message_id: mail.message_id.clone(),
        from: mail.from.as_ref().map(|f| f.address.clone()),
        subject: mail.subject.clone(),
        language: ctx.default_language,
        action: review("", None),
    };
    if mail.no_headers
        || (mail.from.is_none() && mail.subject.is_empty() && mail.message_id.is_none())
    {
        u.action = review(
            "not a readable e-mail: no sender, subject or header fields found",
            None,
        );
        return u;
    }
    if let Some(action) = filters::classify(&mail, ctx.mailbox_address) {
        u.action = action;
        return u;
    }
    if let Some(problem) = &mail.decode_problem {
        u.action = review(problem.clone(), None);
        return u;
    }
    let (language, action) = decide(&mail, ctx);
    u.language = language;
    u.action = action;
    u
}

/// The person a mail speaks for, and the words that are theirs.
struct Speaker {
    email: String,
    display: Option<String>,
    address_note: Option<String>,
    own: String,
    signature: String,
    /// Subject to read for intent, party and routing (not a reply's subject).
    subject: Option<String>,
}

fn decide(mail: &mime::Mail, ctx: &Context) -> (Language, Action) {
    let (bare_subject, is_reply, is_forward) = text::strip_subject_prefixes(&mail.subject);
    let body = text::split_body(&mail.body, is_forward);
    let recipients = routing::recipient_info(&mail.recipients, ctx);
    let in_thread = ctx.thread_conference.is_some() || recipients.confirm_token.is_some();

    let Some(mut speaker) = sender(mail, ctx, &body, (!is_reply).then(|| bare_subject.clone()))
    else {
        return (
            ctx.default_language,
            review("the sender address is missing or unreadable", None),
        );
    };

    // A forward speaks for the original sender, unless the forwarder
    // registers themself in their own words.
    let forwarded = body.forwarded.clone().or_else(|| attached_as_forward(mail));
    if let Some(fwd) = forwarded
        && !intent::registers_self(&speaker.own)
        && let Some(original) = fwd.from_address.clone()
        && !is_ours(&original, ctx)
    {
        let inner = text::split_body(&fwd.text, false);
        let fwd_subject = fwd.subject.as_deref().map(text::strip_subject_prefixes);
        let fwd_subject_text = fwd_subject
            .as_ref()
            .filter(|(_, reply, _)| !reply)
            .map(|(s, _, _)| s.clone());
        let reading = intent::read(&inner.own, fwd_subject_text.as_deref(), false);
        if matches!(
            reading.intent,
            Intent::Register
                | Intent::Cancel
                | Intent::Update
                | Intent::Substitution
                | Intent::PartialCancel
        ) {
            speaker = Speaker {
                address_note: Some(format!("registration forwarded by {}", speaker.email)),
                email: original,
                display: fwd.from_name.clone(),
                own: inner.own,
                signature: inner.signature,
                subject: fwd_subject_text,
            };
        } else if speaker.own.trim().is_empty() {
            return (
                ctx.default_language,
                review(
                    "a forwarded message without a recognisable registration or cancellation",
                    None,
                ),
            );
        }
    }

    let language = text::language_of(&speaker.own)
        .or_else(|| speaker.subject.as_deref().and_then(text::language_of))
        .unwrap_or(ctx.default_language);

    if speaker.own.trim().is_empty()
        && speaker
            .subject
            .as_deref()
            .is_none_or(|s| s.trim().is_empty())
    {
        if let Some(token) = recipients.confirm_token.clone() {
            let conference = route_for(mail, ctx, &recipients, &speaker, &body).found();
            return (
                language,
                Action::Confirm {
                    conference,
                    email: speaker.email,
                    token: Some(token),
                },
            );
        }
        return (
            language,
            review("empty message", ctx.thread_conference.map(str::to_string)),
        );
    }

    let reading = intent::read(&speaker.own, speaker.subject.as_deref(), in_thread);
    let token = recipients
        .confirm_token
        .clone()
        .or_else(|| routing::subject_token(&mail.subject, ctx.conferences));
    let route = route_for(mail, ctx, &recipients, &speaker, &body);
    let conference = route.found();

    let needs_conference = |what: &str| -> Action {
        match &route {
            Route::Ambiguous(ids) => review(
                format!(
                    "{what}, but several conferences are named ({}); which one is meant?",
                    ids.join(", ")
                ),
                None,
            ),
            _ => review(
                format!("{what}, but no conference could be recognised"),
                None,
            ),
        }
    };

    let action = match reading.intent {
        Intent::Cancel => match conference {
            Some(c) => Action::Cancel {
                conference: c,
                email: speaker.email.clone(),
                name: person_name(&speaker).0,
            },
            None => needs_conference("cancellation"),
        },
        Intent::PartialCancel => review(
            "a companion cannot come, the sender still does: please adjust the party size by hand",
            conference,
        ),
        Intent::Substitution => review(
            "cancels and names someone to come instead: please re-register by hand",
            conference,
        ),
        _ if token.is_some() => Action::Confirm {
            conference,
            email: speaker.email.clone(),
            token,
        },
        Intent::Confirm => Action::Confirm {
            conference,
            email: speaker.email.clone(),
            token: None,
        },
        Intent::Update | Intent::Register | Intent::Question | Intent::Unclear => {
            let update = reading.intent == Intent::Update
                && (is_reply || in_thread || reading.refers_to_registration);
            register_or_update(
                &speaker, &reading, update, language, conference, &route, ctx,
            )
        }
    };
    (language, action)
}

fn register_or_update(
    speaker: &Speaker,
    reading: &intent::Reading,
    update: bool,
    language: Language,
    conference: Option<String>,
    route: &Route,
    ctx: &Context,
) -> Action {
    let registering = matches!(reading.intent, Intent::Register | Intent::Update);
    let Some(conf_id) = conference else {
        if !registering {
            return not_a_request(reading, None);
        }
        return match route {
            Route::Ambiguous(ids) => review(
                format!(
                    "registration, but several conferences are named ({}); which one is meant?",
                    ids.join(", ")
                ),
                None,
            ),
            _ => review("registration, but no conference could be recognised", None),
        };
    };
    let Some(conf) = ctx.conferences.iter().find(|c| c.id == conf_id) else {
        return review("registration for an unknown conference", None);
    };
    let attendees = attendees(speaker, conf, language, update);
    let chose_something = attendees
        .iter()
        .any(|a| !a.workshops.is_empty() || a.party_size > 1)
        || attendees.len() > 1;
    if !registering {
        // No register words, but a list of people or workshop choices sent to
        // the registration address is a registration; anything else a question.
        let form = people::form(&speaker.own);
        let is_form = form.fields >= 3 && (form.name.is_some() || form.email.is_some());
        if !(chose_something || is_form) || reading.intent == Intent::Question {
            return not_a_request(reading, Some(conf_id));
        }
    }
    if !conf.open {
        return review(
            format!(
                "registration for \"{}\", which is not open for registration",
                conf.title
            ),
            Some(conf_id),
        );
    }
    if let Some(big) = attendees.iter().find(|a| a.party_size > MAX_PARTY) {
        return review(
            format!(
                "registration for an unusually large group ({} people); please check",
                big.party_size
            ),
            Some(conf_id),
        );
    }
    if update {
        if !chose_something && !party_stated(speaker) {
            return review(
                "wants to change the registration, but what should change is unclear",
                Some(conf_id),
            );
        }
        return Action::Update {
            conference: conf_id,
            attendees,
        };
    }
    Action::Register {
        conference: conf_id,
        attendees,
    }
}

fn party_stated(speaker: &Speaker) -> bool {
    people::party(&speaker.own).is_stated()
}

fn not_a_request(reading: &intent::Reading, conference: Option<String>) -> Action {
    let reason = if reading.thanks_only {
        "only a thank-you; nothing to register".to_string()
    } else if let Some(q) = &reading.question {
        format!(
            "a question that needs a personal answer: \"{}\"",
            filters::short(q, 160)
        )
    } else {
        "no registration, cancellation or change recognised".to_string()
    };
    review(reason, conference)
}

trait Found {
    fn found(&self) -> Option<String>;
}

impl Found for Route {
    fn found(&self) -> Option<String> {
        match self {
            Route::Found(id) => Some(id.clone()),
            _ => None,
        }
    }
}

fn route_for(
    mail: &mime::Mail,
    ctx: &Context,
    recipients: &routing::RecipientInfo,
    speaker: &Speaker,
    body: &text::Body,
) -> Route {
    let (bare_subject, _, _) = text::strip_subject_prefixes(&mail.subject);
    let mut text = speaker.own.clone();
    if !speaker.signature.is_empty() {
        text.push('\n');
        text.push_str(&speaker.signature);
    }
    let quoted = if body.own.len() < mail.body.len() {
        mail.body.as_str()
    } else {
        ""
    };
    let subject = speaker.subject.clone().unwrap_or(bare_subject);
    routing::route(
        &RouteInput {
            recipient: recipients.conference.as_deref(),
            subject: &subject,
            text: &text,
            quoted,
        },
        ctx,
    )
}

fn is_ours(address: &str, ctx: &Context) -> bool {
    let (local, domain) = ctx
        .mailbox_address
        .split_once('@')
        .unwrap_or((ctx.mailbox_address, ""));
    let (l, d) = address.split_once('@').unwrap_or((address, ""));
    let l = l.split('+').next().unwrap_or(l);
    (l.eq_ignore_ascii_case(local) && d.eq_ignore_ascii_case(domain))
        || ctx.conferences.iter().any(|c| {
            c.address
                .as_deref()
                .is_some_and(|a| a.eq_ignore_ascii_case(address))
        })
}

fn attached_as_forward(mail: &mime::Mail) -> Option<text::Forwarded> {
    let inner = mail.attached.first()?;
    let from = inner.from.as_ref()?;
    Some(text::Forwarded {
        from_name: from.name.clone(),
        from_address: Some(from.address.clone()),
        subject: Some(inner.subject.clone()),
        text: inner.body.clone(),
    })
}

const SYSTEM_LOCALS: &[&str] = &[
    "noreply",
    "no-reply",
    "donotreply",
    "do-not-reply",
    "wordpress",
    "forms",
    "formular",
    "webmaster",
    "www",
    "web",
    "kontaktformular",
    "typo3",
    "mailer",
    "notification",
    "notifications",
    "info-noreply",
    "postmaster",
];

fn is_system_address(addr: &str) -> bool {
    let local = addr.split('@').next().unwrap_or("").to_ascii_lowercase();
    SYSTEM_LOCALS.contains(&local.as_str())
        || local.contains("noreply")
        || local.contains("no-reply")
}

/// The sender as the attendee: From, or Reply-To when it differs (noted), or
/// the e-mail field of a web form.
fn sender(
    mail: &mime::Mail,
    ctx: &Context,
    body: &text::Body,
    subject: Option<String>,
) -> Option<Speaker> {
    let from = mail.from.clone().or_else(|| mail.reply_to.clone())?;
    let mut speaker = Speaker {
        email: from.address.clone(),
        display: from.name.clone(),
        address_note: None,
        own: body.own.clone(),
        signature: body.signature.clone(),
        subject,
    };
    if let Some(rt) = &mail.reply_to
        && rt.address != from.address
        && !is_ours(&rt.address, ctx)
    {
        speaker.address_note = Some(format!(
            "Reply-To <{}> differs from From <{}>; using the Reply-To address",
            rt.address, from.address
        ));
        speaker.email = rt.address.clone();
        // The Reply-To person is the one we answer and register.
        speaker.display = rt.name.clone();
    }
    let form = people::form(&body.own);
    if let Some(fe) = form
        .email
        .filter(|e| *e != speaker.email && !is_ours(e, ctx))
        && form.fields >= 2
    {
        speaker.address_note = Some(format!(
            "address taken from the form's e-mail field; the mail came from <{}>",
            from.address
        ));
        speaker.email = fe;
        if is_system_address(&from.address) {
            speaker.display = None;
        }
    } else if is_system_address(&speaker.email) {
        speaker.display = None;
    }
    Some(speaker)
}

/// The speaker's name and organisation, from the best source available.
fn person_name(speaker: &Speaker) -> (Option<String>, Option<String>) {
    let form = people::form(&speaker.own);
    let (display_person, display_org) = speaker
        .display
        .as_deref()
        .map(people::display_parts)
        .unwrap_or((None, None));
    let sig = people::signoff(&speaker.own, &speaker.signature);
    let stated = people::stated_name(&speaker.own);
    let words = |s: &Option<String>| s.as_deref().map_or(0, |n| n.split_whitespace().count());
    let name = if form.fields >= 2 && form.name.is_some() {
        form.name.clone()
    } else if words(&display_person) >= 2 {
        display_person
    } else if stated.is_some() {
        stated
    } else if words(&sig.name) >= 2 {
        sig.name.clone()
    } else if display_person.is_some() {
        display_person
    } else {
        sig.name.clone()
    };
    let org = form
        .org
        .clone()
        .or(sig.org)
        .or(display_org)
        .or_else(|| people::org_in_text(&speaker.own));
    (
        name.map(|n| text::one_line(&n)),
        org.map(|o| text::one_line(&o)),
    )
}

fn attendees(
    speaker: &Speaker,
    conf: &ConferenceRef,
    language: Language,
    update: bool,
) -> Vec<Attendee> {
    let (name, org) = person_name(speaker);
    let form = people::form(&speaker.own);
    let is_form = form.fields >= 2 && (form.name.is_some() || form.email.is_some());
    let listed = if is_form {
        Vec::new()
    } else {
        people::group_list(&speaker.own)
    };

    // Text outside list lines: choices stated for everyone.
    let general: String = if listed.is_empty() {
        speaker.own.clone()
    } else {
        speaker
            .own
            .lines()
            .filter(|l| !listed.iter().any(|p| l.contains(&p.name)))
            .collect::<Vec<_>>()
            .join("\n")
    };
    let mut party_text = general.clone();
    if let Some(s) = &speaker.subject {
        party_text.push('\n');
        party_text.push_str(s);
    }
    let party = people::party(&party_text);
    let mut workshops = choices::workshops(&general, conf, false, update, false);
    let mut notes = choices::notes(&general, language);
    if let Some(w) = &form.workshops {
        merge(
            &mut workshops,
            choices::workshops(w, conf, true, update, false),
        );
    }
    for n in &form.notes {
        let found = choices::notes(n, language);
        if found.is_empty() {
            let value = n.split_once(": ").map_or(n.as_str(), |(_, v)| v);
            if !["nein", "keine", "no", "none", "-", "nichts"].contains(&text::fold(value).as_str())
            {
                merge(&mut notes, vec![filters::short(value, 120)]);
            }
        } else {
            merge(&mut notes, found);
        }
    }
    let base = |email: String, name: Option<String>| Attendee {
        email,
        name,
        organization: org.clone(),
        party_size: 1,
        companions: Vec::new(),
        workshops: Vec::new(),
        notes: Vec::new(),
        language,
        address_note: None,
    };

    if listed.is_empty() {
        let mut a = base(speaker.email.clone(), name);
        let mut companions = party.named.clone();
        for c in &form.companion_names {
            if !companions.iter().any(|x| text::fold(x) == text::fold(c)) {
                companions.push(c.clone());
            }
        }
        let mut size = party.size();
        if let Some(t) = form.total {
            size = size.max(t);
        }
        if let Some(c) = form.companions {
            size = size.max(1 + c);
        }
        a.party_size = size.max(1 + companions.len() as u32);
        a.companions = companions;
        a.workshops = workshops;
        a.notes = notes;
        a.address_note = speaker.address_note.clone();
        return vec![a];
    }

    // A group list.
    let sender_fold = name.as_deref().map(text::fold);
    let includes_sender_phrase = {
        let f = text::fold(&general);
        [
            "ich und",
            "mich und",
            "me and",
            "myself and",
            "und mich",
            "and me",
            "and myself",
            "sowie mich",
            "including me",
            "including myself",
            "mich selbst",
            "mich eingeschlossen",
            "ich selbst",
        ]
        .iter()
        .any(|p| f.contains(p))
    };
    let mut own_address: Vec<&people::Listed> = Vec::new();
    let mut separate: Vec<&people::Listed> = Vec::new();
    for p in &listed {
        match &p.email {
            Some(e) if *e != speaker.email => separate.push(p),
            _ => own_address.push(p),
        }
    }
    let is_sender = |p: &people::Listed| {
        sender_fold.as_deref().is_some_and(|s| {
            let f = text::fold(&p.name);
            f == s
                || (f.split_whitespace().count() >= 2 && s.contains(&f))
                || s.contains(&f) && s.split_whitespace().count() >= 2 && f.contains(' ')
        })
    };
    let sender_listed = own_address.iter().any(|p| is_sender(p));
    let mut out = Vec::new();
    if !own_address.is_empty() || includes_sender_phrase || sender_listed {
        let mut members: Vec<&people::Listed> = own_address.clone();
        let main_name;
        let registered_by;
        if sender_listed || includes_sender_phrase || own_address.is_empty() {
            main_name = name.clone();
            members.retain(|p| !is_sender(p));
            registered_by = None;
        } else {
            main_name = Some(members.remove(0).name.clone());
            registered_by = name.clone();
        }
        let mut a = base(speaker.email.clone(), main_name);
        a.companions = members.iter().map(|p| p.name.clone()).collect();
        let listed_total = 1 + a.companions.len() as u32;
        a.party_size = listed_total.max(party.total.unwrap_or(0));
        let mut ws = workshops.clone();
        let mut ns = notes.clone();
        for p in own_address.iter() {
            merge(
                &mut ws,
                choices::workshops(&p.rest, conf, true, update, false),
            );
            merge(&mut ns, choices::notes(&p.rest, language));
        }
        sort_by_conference(&mut ws, conf);
        a.workshops = ws;
        if let Some(by) = registered_by {
            ns.push(match language {
                Language::De => format!("angemeldet von {by}"),
                Language::En => format!("registered by {by}"),
            });
        }
        a.notes = ns;
        a.address_note = speaker.address_note.clone();
        out.push(a);
    }
    for p in separate {
        let mut a = base(p.email.clone().unwrap_or_default(), Some(p.name.clone()));
        let mut ws = choices::workshops(&p.rest, conf, true, update, false);
        if ws.is_empty() {
            ws = workshops.clone();
        }
        a.workshops = ws;
        let mut ns = choices::notes(&p.rest, language);
        if let Some(by) = &name {
            ns.push(match language {
                Language::De => format!("angemeldet von {by} <{}>", speaker.email),
                Language::En => format!("registered by {by} <{}>", speaker.email),
            });
        }
        a.notes = ns;
        out.push(a);
    }
    out
}

fn merge(into: &mut Vec<String>, more: Vec<String>) {
    for m in more {
        if !into.contains(&m) {
            into.push(m);
        }
    }
}

fn sort_by_conference(ids: &mut [String], conf: &ConferenceRef) {
    ids.sort_by_key(|id| {
        conf.workshops
            .iter()
            .position(|w| w.id == *id)
            .unwrap_or(usize::MAX)
    });
}
