//! Puts the pieces together into one command: who speaks (From, Reply-To,
//! a web form's e-mail field, or the original sender of a forward), what they
//! want ([`intent`]), for which conference ([`routing`]), and — for
//! registrations and changes — the attendees with their party, workshops and
//! notes ([`people`], [`choices`]). Everything a human must decide becomes
//! [`Action::Review`] with a reason. No I/O, no panics on input.

use super::intent::{self, Intent};
use super::routing::{self, Route, RouteInput};
use super::vocab::Vocabulary;
use super::{
    Action, Attendee, ConferenceRef, Context, Explanation, Language, Step, choices, filters,
    language, mime, people, text,
};

/// The largest party we register without asking a person.
const MAX_PARTY: u32 = 30;

pub fn review(reason: impl Into<String>, conference: Option<String>) -> Action {
    Action::Review {
        reason: reason.into(),
        conference,
    }
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

pub fn decide(
    mail: &mime::Mail,
    ctx: &Context,
    v: &Vocabulary,
    why: &mut Explanation,
) -> (Language, Action) {
    let (bare_subject, is_reply, is_forward) = text::strip_subject_prefixes(&mail.subject);
    let body = text::split_body(&mail.body, is_forward, is_reply);
    let recipients = routing::recipient_info(&mail.recipients, ctx);
    let in_thread = ctx.thread_conference.is_some() || recipients.confirm_token.is_some();

    let Some(mut speaker) = sender(
        v,
        mail,
        ctx,
        &body,
        (!is_reply).then(|| bare_subject.clone()),
    ) else {
        return (
            ctx.default_language,
            review("the sender address is missing or unreadable", None),
        );
    };
    // A display name with line breaks (header injection) or of absurd
    // length is not a person writing: nothing is recorded from it.
    if let Some(from) = &mail.from
        && let Some(problem) = hostile_display_name(from)
    {
        why.push(Step::logic("sender", problem));
        return (
            ctx.default_language,
            review(
                format!("{problem}; not recorded, please check the sender"),
                None,
            ),
        );
    }

    // A forward speaks for the original sender, unless the forwarder
    // registers themself in their own words.
    let forwarded = body.forwarded.clone().or_else(|| attached_as_forward(mail));
    if let Some(fwd) = forwarded
        && !intent::registers_self(v, &speaker.own)
        && let Some(original) = fwd.from_address.clone()
        && !is_ours(&original, ctx)
    {
        let inner = text::split_body(&fwd.text, false, false);
        let fwd_subject = fwd.subject.as_deref().map(text::strip_subject_prefixes);
        let fwd_subject_text = fwd_subject
            .as_ref()
            .filter(|(_, reply, _)| !reply)
            .map(|(s, _, _)| s.clone());
        let reading = intent::read(v, &inner.own, fwd_subject_text.as_deref(), false);
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

    let language = language::answer(v, &speaker.own)
        .or_else(|| {
            speaker
                .subject
                .as_deref()
                .and_then(language::answer_language)
        })
        .unwrap_or(ctx.default_language);

    if speaker.own.trim().is_empty()
        && speaker
            .subject
            .as_deref()
            .is_none_or(|s| s.trim().is_empty())
    {
        let token = recipients
            .confirm_token
            .clone()
            .or_else(|| routing::subject_token(&mail.subject, ctx.conferences));
        if let Some(token) = token {
            let conference = route_for(v, mail, ctx, &recipients, &speaker, &body).found();
            return (
                language,
                Action::Confirm {
                    conference,
                    email: speaker.email,
                    token: Some(token),
                },
            );
        }
        if !mail.attachments.is_empty() {
            return (
                language,
                review(
                    format!(
                        "no text, only attachments ({}); perhaps a filled-in form",
                        filters::short(&mail.attachments.join(", "), 120)
                    ),
                    route_for(v, mail, ctx, &recipients, &speaker, &body).found(),
                ),
            );
        }
        return (
            language,
            review("empty message", ctx.thread_conference.map(str::to_string)),
        );
    }

    // A tokenless "Ja, ich bestätige" confirms only a reply to a request
    // for confirmation (double opt-in), not any reply to us.
    let confirm_requested =
        (in_thread || is_reply) && intent::asks_for_confirmation(v, &mail.subject);
    let reading = intent::read(
        v,
        &speaker.own,
        speaker.subject.as_deref(),
        confirm_requested,
    );
    why.steps.extend(reading.fired.iter().cloned());
    let token = recipients
        .confirm_token
        .clone()
        .or_else(|| routing::subject_token(&mail.subject, ctx.conferences));
    let route = route_for(v, mail, ctx, &recipients, &speaker, &body);
    let conference = route.found();

    let needs_conference = |what: &str| no_conference(what, &route, &recipients);

    // The address we would record is a machine's, or the text says a machine
    // wrote it: nobody to register.
    let machine_text = text::sentences(&speaker.own)
        .iter()
        .find(|s| {
            let f = text::fold(s);
            v.is_match("machine_text", &f) || v.is_match("spam", &f)
        })
        .cloned()
        .or_else(|| {
            speaker
                .display
                .clone()
                .filter(|d| v.is_match("spam", &text::fold(d)))
        });
    if token.is_none() && (is_system_address(&speaker.email) || machine_text.is_some()) {
        why.push(Step {
            rule: "sender".into(),
            phrase: None,
            language: None,
            text: machine_text.map(|s| filters::short(&text::one_line(&s), 160)),
            note: Some(format!("<{}> is not a person", speaker.email)),
        });
        return (
            language,
            review(
                "not written by a person (a system, an automatic or a mass mail): nobody to register, please check",
                conference,
            ),
        );
    }

    // Mail in a language no vocabulary covers: rsvpd can neither read nor
    // answer it, unless a sentence in a language it reads registers or cancels.
    if token.is_none()
        && let Some(name) = language::foreign_mail(v, &speaker.own)
    {
        let readable = text::sentences(&speaker.own).into_iter().find(|s| {
            language::foreign(s, v.detect_codes()).is_none()
                && (intent::is_register_sentence(v, s) || intent::is_cancel_sentence(v, s))
        });
        match readable {
            Some(s) => why.push(Step {
                rule: "language".into(),
                phrase: None,
                language: None,
                text: Some(filters::short(&text::one_line(&s), 160)),
                note: Some(format!("written in {name}, but this sentence is readable")),
            }),
            None => {
                why.push(Step::logic("language", format!("written in {name}")));
                return (
                    ctx.default_language,
                    review(
                        format!(
                            "written in {name}; rsvpd reads and answers German and English only, please answer by hand"
                        ),
                        conference,
                    ),
                );
            }
        }
    }

    // "Anmeldung anbei" with a filled-in PDF form: the details are in the file.
    let own_words = speaker.own.split_whitespace().count();
    let mentions_attachment = {
        let f = text::fold(&speaker.own);
        [
            "anbei",
            "im anhang",
            "beigefuegt",
            "angehaengt",
            "attached",
            "attachment",
            "formular",
        ]
        .iter()
        .any(|w| f.contains(w))
    };
    if !mail.attachments.is_empty()
        && (own_words < 25 || mentions_attachment)
        && matches!(
            reading.intent,
            Intent::Register | Intent::Update | Intent::Unclear | Intent::Question
        )
        && token.is_none()
    {
        return (
            language,
            review(
                format!(
                    "the details are probably in the attachment ({}); please read it",
                    filters::short(&mail.attachments.join(", "), 120)
                ),
                conference,
            ),
        );
    }

    let action = match reading.intent {
        Intent::Cancel => match conference {
            Some(c) => Action::Cancel {
                conference: c,
                email: speaker.email.clone(),
                name: person_name(&speaker).0,
            },
            None => needs_conference("cancellation"),
        },
        Intent::PartialCancel => match (&conference, people::party(&speaker.own).total) {
            // "ich komme nun doch alleine, meine Kollegin ist verhindert":
            // the new party size is stated, so the change is clear.
            (Some(id), Some(_)) if ctx.conferences.iter().any(|c| c.id == *id && c.open) => {
                match ctx.conferences.iter().find(|c| c.id == *id) {
                    Some(conf) => Action::Update {
                        conference: id.clone(),
                        attendees: attendees(v, &speaker, conf, language, true),
                    },
                    None => review("a companion cannot come", conference.clone()),
                }
            }
            _ => review(
                "a companion cannot come, the sender still does: please adjust the party size by hand",
                conference,
            ),
        },
        Intent::WorkshopCancel => review(
            "withdraws from a workshop but still attends: please adjust the workshops by hand",
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
        Intent::Update | Intent::Register | Intent::Unclear
            if (is_reply || in_thread || reading.refers_to_registration)
                && intent::adds_people(v, &speaker.own)
                && {
                    let p = people::party(&speaker.own);
                    p.total.is_none() && (p.extra > 0 || !p.named.is_empty())
                } =>
        {
            // "Ich bringe noch meine Nachbarin mit" after an earlier
            // registration: the new party size depends on the old one, which
            // only the store knows.
            review(
                "adds people to an existing registration; please raise the party size by hand",
                conference,
            )
        }
        Intent::Update | Intent::Register | Intent::Question | Intent::Unclear => {
            let update = reading.intent == Intent::Update
                && (is_reply || in_thread || reading.refers_to_registration);
            register_or_update(
                (ctx, v),
                &speaker,
                &reading,
                update,
                language,
                conference,
                (&route, &recipients),
            )
        }
    };
    if matches!(action, Action::Register { .. } | Action::Update { .. })
        && !why.steps.iter().any(|s| s.text.is_some())
    {
        // No register phrase: people or workshop choices sent to the
        // registration address (a form, "Ja bitte, für 2 Personen").
        let first = text::sentences(&speaker.own)
            .into_iter()
            .find(|s| s.split_whitespace().count() > 1)
            .or_else(|| speaker.subject.clone());
        why.push(Step {
            rule: "choices".into(),
            phrase: None,
            language: None,
            text: first.map(|s| filters::short(&text::one_line(&s), 160)),
            note: Some(
                "no register phrase, but people or workshop choices sent to the registration address"
                    .into(),
            ),
        });
    }
    (language, action)
}

fn register_or_update(
    (ctx, v): (&Context, &Vocabulary),
    speaker: &Speaker,
    reading: &intent::Reading,
    update: bool,
    language: Language,
    conference: Option<String>,
    (route, recipients): (&Route, &routing::RecipientInfo),
) -> Action {
    let registering = matches!(reading.intent, Intent::Register | Intent::Update);
    let Some(conf_id) = conference else {
        if !registering {
            return not_a_request(reading, None);
        }
        return no_conference("registration", route, recipients);
    };
    let Some(conf) = ctx.conferences.iter().find(|c| c.id == conf_id) else {
        return review("registration for an unknown conference", None);
    };
    let attendees = attendees(v, speaker, conf, language, update);
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
        let what = if update {
            "change of a registration"
        } else {
            "registration"
        };
        return review(
            format!(
                "{what} for \"{}\", which is not open for registration",
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

/// Review for a request that names no single conference.
fn no_conference(what: &str, route: &Route, recipients: &routing::RecipientInfo) -> Action {
    let reason = match (route, &recipients.unknown_tag) {
        (Route::Ambiguous(ids), _) => format!(
            "{what}, but several conferences are named ({}); which one is meant?",
            ids.join(", ")
        ),
        (_, Some(tag)) => format!(
            "{what}, but no conference could be recognised (the address tag \"+{}\" names none)",
            text::one_line(tag)
        ),
        _ => format!("{what}, but no conference could be recognised"),
    };
    review(reason, None)
}

fn party_stated(speaker: &Speaker) -> bool {
    people::party(&speaker.own).is_stated()
}

fn not_a_request(reading: &intent::Reading, conference: Option<String>) -> Action {
    if reading.thanks_only {
        return Action::Thanks { conference };
    }
    let reason = if let Some(c) = &reading.conditional {
        format!(
            "would register only on a condition or is not decided yet: \"{}\"",
            filters::short(reading.question.as_deref().unwrap_or(c), 160)
        )
    } else if let Some(q) = &reading.question {
        format!(
            "a question that needs a personal answer: \"{}\"",
            filters::short(q, 160)
        )
    } else if let Some(r) = &reading.request {
        format!(
            "a request that needs a personal answer: \"{}\"",
            filters::short(r, 160)
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
    v: &Vocabulary,
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
    let focus = text::sentences(&speaker.own)
        .into_iter()
        .filter(|s| intent::is_register_sentence(v, s) || intent::is_cancel_sentence(v, s))
        .collect::<Vec<_>>()
        .join("\n");
    routing::route(
        &RouteInput {
            recipient: recipients.conference.as_deref(),
            subject: &subject,
            text: &text,
            quoted,
            focus: &focus,
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

/// Parts of an address's local part that only machines use
/// ("calendar-system@", "notifications.bounce@").
const SYSTEM_PARTS: &[&str] = &[
    "system",
    "noreply",
    "donotreply",
    "daemon",
    "mailer",
    "notification",
    "notifications",
    "bounce",
    "bounces",
    "automailer",
];

fn is_system_address(addr: &str) -> bool {
    let local = addr.split('@').next().unwrap_or("").to_ascii_lowercase();
    SYSTEM_LOCALS.contains(&local.as_str())
        || local.contains("noreply")
        || local.contains("no-reply")
        || local
            .split(['-', '.', '_', '+'])
            .any(|part| SYSTEM_PARTS.contains(&part))
}

/// Is this address a person's: a display name that is a name, and no office
/// word ("Sekretariat", "team", "info") in the name or the local part?
fn is_person(v: &Vocabulary, m: &mime::Mailbox) -> bool {
    let local = m.address.split('@').next().unwrap_or("");
    let words = format!(
        "{} {}",
        m.name.as_deref().unwrap_or(""),
        local.replace(['.', '-', '_', '+'], " ")
    );
    if v.is_match("office_mailbox", &text::fold(&words)) {
        return false;
    }
    m.name
        .as_deref()
        .is_some_and(|n| people::display_parts(n).0.is_some())
}

/// Why a display name is not a person's, if it is not.
fn hostile_display_name(from: &mime::Mailbox) -> Option<&'static str> {
    if from.name_broken {
        return Some(
            "the sender's display name carries control characters (header injection or a disguised name?)",
        );
    }
    let name = from.name.as_deref().unwrap_or("");
    if name.contains(['<', '>', '{', '}', ';']) || name.contains("--") || name.contains("')") {
        return Some("the sender's display name holds markup or code, not a name");
    }
    if text::addresses(name)
        .iter()
        .any(|a| !a.eq_ignore_ascii_case(&from.address))
    {
        return Some("the sender's display name shows another address than the sender's");
    }
    if from
        .name
        .as_deref()
        .is_some_and(|n| n.chars().count() > 120)
    {
        return Some("the sender's display name is absurdly long");
    }
    None
}

/// The sender as the attendee: From, or Reply-To when it differs (noted), or
/// the e-mail field of a web form.
fn sender(
    v: &Vocabulary,
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
    // Reply-To speaks for the writer only when From is a machine or an
    // office mailbox (a web form's relay, "Sekretariat"); a person's
    // Reply-To to a team mailbox does not change who registered.
    if let Some(rt) = &mail.reply_to
        && rt.address != from.address
        && !is_ours(&rt.address, ctx)
        && (is_system_address(&from.address) || !is_person(v, &from))
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
    // "Mohammed" + signature "M. Al-Sayed" → "Mohammed Al-Sayed";
    // "Nowak Małgorzata" + signature "Małgorzata Nowak" → as signed.
    let sig_name = match (&display_person, &sig.name) {
        (Some(d), Some(n)) => {
            let dw: Vec<&str> = d.split_whitespace().collect();
            let nw: Vec<&str> = n.split_whitespace().collect();
            let initial = nw.first().is_some_and(|f| {
                f.trim_end_matches('.').chars().count() == 1
                    && f.ends_with('.')
                    && dw.len() == 1
                    && dw[0].starts_with(f.trim_end_matches('.'))
            });
            if initial && nw.len() >= 2 {
                Some(format!("{} {}", dw[0], nw[1..].join(" ")))
            } else {
                sig.name.clone()
            }
        }
        _ => sig.name.clone(),
    };
    // "Gulsum Kose" and "Gülsüm Köse" are the same words: keep the signature's spelling.
    let same_words = |a: &str, b: &str| {
        let mut x: Vec<String> = text::match_tokens(a);
        let mut y: Vec<String> = text::match_tokens(b);
        x.sort();
        y.sort();
        x == y
    };
    let display_person = match (&display_person, &sig_name) {
        (Some(d), Some(n)) if same_words(d, n) => Some(n.clone()),
        _ => display_person,
    };
    let sig = people::Signoff {
        name: sig_name,
        org: sig.org,
    };
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
    v: &Vocabulary,
    speaker: &Speaker,
    conf: &ConferenceRef,
    language: Language,
    update: bool,
) -> Vec<Attendee> {
    let (name, org) = person_name(speaker);
    let form = people::form(&speaker.own);
    let is_form = form.fields >= 2 && (form.name.is_some() || form.email.is_some());
    let mut listed = if is_form {
        Vec::new()
    } else {
        people::group_list(&speaker.own)
    };
    // "please register our director, Dr. Amara Nwosu (amara@…)": people
    // named with their own address in a registering sentence.
    let mut prose = false;
    if listed.is_empty() && !is_form {
        let sentences: Vec<String> = text::sentences(&speaker.own)
            .into_iter()
            .filter(|s| intent::is_register_sentence(v, s))
            .collect();
        listed = people::named_with_address(&sentences.join("\n"))
            .into_iter()
            .filter(|p| p.email.as_deref().is_some_and(|e| e != speaker.email))
            .collect();
        prose = !listed.is_empty();
    }

    // Text outside list lines: choices stated for everyone.
    // Text outside what names the listed people: choices stated for everyone.
    // Sentences, not lines: "… meldet Frau Demir (…) an. Sie möchte in WS 1."
    // may be one line.
    let general: String = if listed.is_empty() {
        speaker.own.clone()
    } else {
        speaker
            .own
            .lines()
            .flat_map(text::sentences)
            .filter(|s| !listed.iter().any(|p| s.contains(&p.name)))
            .collect::<Vec<_>>()
            .join("\n")
    };
    let mut party_text = general.clone();
    if let Some(s) = &speaker.subject {
        party_text.push('\n');
        party_text.push_str(s);
    }
    // The subject often repeats the body ("für meine Frau und mich"): take
    // the larger statement of the two, never their sum.
    let party = {
        let body = people::party(&general);
        let subject = speaker
            .subject
            .as_deref()
            .map(people::party)
            .unwrap_or_default();
        let mut named = body.named.clone();
        for n in subject.named {
            if !named.iter().any(|x| text::fold(x) == text::fold(&n)) {
                named.push(n);
            }
        }
        people::Party {
            total: body.total.max(subject.total),
            extra: body.extra.max(subject.extra),
            named,
        }
    };
    let (mut workshops, alternatives) =
        choices::workshop_choices(&party_text, conf, false, update, false);
    let mut notes = choices::notes(&general, language);
    merge(&mut notes, questions(v, &general, language));
    for id in &alternatives {
        if let Some(w) = conf.workshops.iter().find(|w| w.id == *id) {
            notes.push(match language {
                Language::De => format!("Alternative: {}", w.title),
                Language::En => format!("alternative: {}", w.title),
            });
        }
    }
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
    let includes_sender_phrase = if prose {
        intent::registers_self(v, &speaker.own)
    } else {
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
        // A stated total ("for 3 people") covers the separately listed too.
        let total_here = party
            .total
            .unwrap_or(0)
            .saturating_sub(separate.len() as u32);
        a.party_size = listed_total.max(total_here);
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
        let by = match &name {
            Some(n) => format!("{n} <{}>", speaker.email),
            None => format!("<{}>", speaker.email),
        };
        ns.push(match language {
            Language::De => format!("angemeldet von {by}"),
            Language::En => format!("registered by {by}"),
        });
        a.notes = ns;
        out.push(a);
    }
    out
}

/// Questions asked in a registration, kept as notes so that someone answers them.
fn questions(v: &Vocabulary, text: &str, language: Language) -> Vec<String> {
    let label = match language {
        Language::De => "Frage",
        Language::En => "question",
    };
    text::sentences(text)
        .into_iter()
        .filter(|s| {
            s.trim_end().ends_with('?')
                && s.split_whitespace().count() >= 3
                && !intent::is_request(v, s)
        })
        .take(2)
        .map(|s| format!("{label}: {}", filters::short(&text::one_line(&s), 160)))
        .collect()
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
