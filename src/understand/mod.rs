//! The understanding step: one raw mail in, one command out. A pure function
//! with no I/O — it never looks anything up except in the [`Context`] it is
//! given, and it never panics: input it cannot read becomes
//! [`Action::Review`] with a reason a person can act on.
//!
//! The work is split by concern: `mime` reads bytes into headers and one
//! body text, `filters` recognises bounces and automatic mail, `text`
//! separates the writer's own words from quotes and signatures, `intent`
//! reads what they want, `routing` finds the conference, `people` and
//! `choices` fill in who comes, with whom, to which workshops, needing what,
//! and `decide` puts the pieces together. This file holds the public types,
//! the entry points and the last guards (no panic escapes, every returned
//! string is one line).
//!
//! Tests: unit tests beside each piece; `corpus_test` runs every mail in
//! `tests/corpus/*.eml` against the expected `NAME.json` beside it (see there
//! for the context files and `UPDATE_CORPUS=1`). `corpus` reads those
//! context files for the test and the examples alike; `score` measures the
//! blind mails of `tests/blind/` (`cargo run --release --example score`).

use std::panic::{AssertUnwindSafe, catch_unwind};

use serde::{Deserialize, Serialize};

mod choices;
pub mod corpus;
mod decide;
mod filters;
mod html;
mod intent;
mod language;
mod mime;
mod pattern;
mod people;
mod routing;
pub mod score;
mod text;
pub mod vocab;
pub mod worker;

#[cfg(test)]
mod corpus_test;

use decide::review;
pub use vocab::Vocabulary;

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
    /// Places in the room (party sizes count), if limited: a party larger
    /// than the whole room could never be seated and goes to a person.
    pub capacity: Option<u32>,
}

#[derive(Debug, Clone)]
pub struct WorkshopRef {
    pub id: String,
    pub title: String,
}

pub struct Context<'a> {
    pub conferences: &'a [ConferenceRef],
    /// The registration mailbox address, e.g. "anmeldung@example.org"; plus addresses
    /// `anmeldung+<conference id or alias slug>@example.org` route to a conference.
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
    /// Why: the rules that fired and the sentences they fired on.
    #[serde(default, skip_serializing_if = "Explanation::is_empty")]
    pub explanation: Explanation,
}

/// Why the understanding step decided what it did: the rules that fired, in
/// the order they were applied. Stored with the inbound message and shown to
/// organizers (`rsvpd review`, `rsvpd person`, the dashboard); `Display`
/// renders it as one line of plain words.
#[derive(Debug, Clone, Default, PartialEq, Serialize, Deserialize)]
pub struct Explanation {
    pub steps: Vec<Step>,
}

/// One rule that fired.
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
pub struct Step {
    /// What was recognised or decided: a vocabulary section ("cancel",
    /// "register", "thanks" …) or a step of the logic ("language", "filter",
    /// "conference", "sender", "decision").
    pub rule: String,
    /// The vocabulary phrase that fired, as written in its file ("sage … ab").
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub phrase: Option<String>,
    /// The vocabulary (language code) the phrase comes from.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub language: Option<String>,
    /// The sentence or header it fired on, one line, shortened.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub text: Option<String>,
    /// More in plain words ("asked as a question", "the subject names miko-2027").
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub note: Option<String>,
}

impl Step {
    /// A step of the logic (no vocabulary phrase).
    pub fn logic(rule: &str, note: impl Into<String>) -> Step {
        Step {
            rule: rule.to_string(),
            phrase: None,
            language: None,
            text: None,
            note: Some(note.into()),
        }
    }

    /// The same step with a note added.
    pub fn noted(mut self, note: &str) -> Step {
        self.note = Some(match self.note.take() {
            Some(n) => format!("{n}; {note}"),
            None => note.to_string(),
        });
        self
    }
}

impl Explanation {
    pub fn is_empty(&self) -> bool {
        self.steps.is_empty()
    }

    pub fn push(&mut self, step: Step) {
        self.steps.push(step);
    }
}

impl std::fmt::Display for Step {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        write!(f, "{}", self.rule)?;
        if let Some(p) = &self.phrase {
            write!(f, " \"{p}\"")?;
            if let Some(l) = &self.language {
                write!(f, " ({l})")?;
            }
        }
        if let Some(t) = &self.text {
            write!(f, " in «{t}»")?;
        }
        if let Some(n) = &self.note {
            write!(f, ": {n}")?;
        }
        Ok(())
    }
}

impl std::fmt::Display for Explanation {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        for (i, s) in self.steps.iter().enumerate() {
            if i > 0 {
                write!(f, "; ")?;
            }
            write!(f, "{s}")?;
        }
        Ok(())
    }
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
    /// Only thanks or acknowledgement ("Danke für die Bestätigung!"): stored
    /// in the attendee's history, nothing to do, not the organizers' work.
    Thanks { conference: Option<String> },
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
    /// An update states the party anew ("ich komme alleine", "just me"):
    /// it replaces the old party even when it is the sender alone. Without
    /// it an update of party 1 says nothing about the party.
    #[serde(default, skip_serializing_if = "std::ops::Not::not")]
    pub party_stated: bool,
}

/// Why a party of `party_size` could never be seated in a room of `capacity`
/// places; `None` when it fits or the room is unlimited. Asked by the
/// understanding step (its context knows the capacity) and by the store,
/// which applies every registration: such a party goes to a person, never
/// to the waitlist.
pub fn never_seated(party_size: u32, capacity: Option<u32>) -> Option<String> {
    let capacity = capacity?;
    (party_size > capacity).then(|| {
        format!(
            "a party of {party_size} for a room of {capacity} places could never be seated; please answer by hand"
        )
    })
}

/// Reads one raw mail and says what to do with it. Never panics.
pub fn understand(raw: &[u8], ctx: &Context) -> Understood {
    understand_with(raw, ctx, &vocab::BUILTIN_VOCABULARY)
}

/// [`understand`] with another vocabulary (e.g. [`Vocabulary::with`] an
/// added language).
pub fn understand_with(raw: &[u8], ctx: &Context, vocabulary: &Vocabulary) -> Understood {
    match catch_unwind(AssertUnwindSafe(|| run(raw, ctx, vocabulary))) {
        Ok(mut u) => {
            single_lines(&mut u);
            u
        }
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
            explanation: Explanation::default(),
        },
    }
}

/// A mail as a person reads it (the dashboard shows it): the main header
/// fields and the body as plain text (HTML converted), the attachments by name.
#[derive(Debug, Clone, Default, PartialEq, Serialize)]
pub struct Readable {
    pub from: String,
    pub to: String,
    pub date: String,
    pub subject: String,
    pub text: String,
    pub attachments: Vec<String>,
}

/// Reads `raw` for a person. Never panics; unreadable input gives what could be read.
pub fn readable(raw: &[u8]) -> Readable {
    let read = || {
        let Some(mail) = mime::parse(raw) else {
            return Readable::default();
        };
        let header = |name: &str| {
            mail.headers
                .iter()
                .find(|(n, _)| n == name)
                .map(|(_, v)| mime::repair_encoded_words(v))
                .unwrap_or_default()
        };
        Readable {
            from: match &mail.from {
                Some(m) => match &m.name {
                    Some(n) => format!("{n} <{}>", m.address),
                    None => m.address.clone(),
                },
                None => header("from"),
            },
            to: header("to"),
            date: header("date"),
            subject: mail.subject.clone(),
            text: mail.body.clone(),
            attachments: mail.attachments.clone(),
        }
    };
    catch_unwind(read).unwrap_or_default()
}

/// Message-IDs (without <>) from In-Reply-To and References, for the caller's thread lookup.
pub fn thread_references(raw: &[u8]) -> Vec<String> {
    catch_unwind(|| mime::thread_references(raw)).unwrap_or_default()
}

fn run(raw: &[u8], ctx: &Context, v: &Vocabulary) -> Understood {
    let Some(mail) = mime::parse(raw) else {
        return Understood {
            message_id: None,
            from: None,
            subject: String::new(),
            language: ctx.default_language,
            action: review("empty message", None),
            explanation: Explanation::default(),
        };
    };
    let mut u = Understood {
        message_id: mail.message_id.clone(),
        from: mail.from.as_ref().map(|f| f.address.clone()),
        subject: mail.subject.clone(),
        language: ctx.default_language,
        action: review("", None),
        explanation: Explanation::default(),
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
    if let Some(action) = filters::classify(&mail, ctx.mailbox_address, v) {
        let what = match &action {
            Action::Bounce { .. } => "a delivery failure notice",
            _ => "automatic mail, never answered",
        };
        u.explanation.push(Step::logic("filter", what));
        u.action = action;
        return u;
    }
    if let Some(problem) = &mail.decode_problem {
        u.action = review(problem.clone(), None);
        return u;
    }
    let (language, action) = decide::decide(&mail, ctx, v, &mut u.explanation);
    u.language = language;
    u.action = action;
    u
}

/// Last guard for the promise that every returned string is a single line
/// without control characters, whatever path produced it.
fn single_lines(u: &mut Understood) {
    fn fix(s: &mut String) {
        if s.chars().any(|c| c.is_control()) {
            *s = s
                .chars()
                .map(|c| if c.is_control() { ' ' } else { c })
                .collect::<String>()
                .split_whitespace()
                .collect::<Vec<_>>()
                .join(" ");
        }
    }
    fn fix_opt(s: &mut Option<String>) {
        if let Some(s) = s {
            fix(s);
        }
    }
    for step in &mut u.explanation.steps {
        fix(&mut step.rule);
        fix_opt(&mut step.phrase);
        fix_opt(&mut step.language);
        fix_opt(&mut step.text);
        fix_opt(&mut step.note);
    }
    fix_opt(&mut u.message_id);
    fix_opt(&mut u.from);
    fix(&mut u.subject);
    match &mut u.action {
        Action::Register {
            conference,
            attendees,
        }
        | Action::Update {
            conference,
            attendees,
        } => {
            fix(conference);
            for a in attendees {
                fix(&mut a.email);
                fix_opt(&mut a.name);
                fix_opt(&mut a.organization);
                fix_opt(&mut a.address_note);
                a.companions.iter_mut().for_each(fix);
                a.workshops.iter_mut().for_each(fix);
                a.notes.iter_mut().for_each(fix);
            }
        }
        Action::Cancel {
            conference,
            email,
            name,
        } => {
            fix(conference);
            fix(email);
            fix_opt(name);
        }
        Action::Confirm {
            conference,
            email,
            token,
        } => {
            fix_opt(conference);
            fix(email);
            fix_opt(token);
        }
        Action::Bounce {
            recipients, reason, ..
        } => {
            recipients.iter_mut().for_each(fix);
            fix(reason);
        }
        Action::Ignore { reason } => fix(reason),
        Action::Thanks { conference } => fix_opt(conference),
        Action::Review { reason, conference } => {
            fix(reason);
            fix_opt(conference);
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    fn conferences() -> Vec<ConferenceRef> {
        vec![ConferenceRef {
            id: "miko-2027".into(),
            title: "Vierte Migrationskonferenz".into(),
            aliases: vec!["Migrationskonferenz".into()],
            workshops: (1..=5)
                .map(|i| WorkshopRef {
                    id: format!("w{i}"),
                    title: format!("Thema {i}"),
                })
                .collect(),
            open: true,
            address: None,
            capacity: None,
        }]
    }

    /// A party larger than the whole room goes to a person, with the
    /// capacity named; the same party fits a room without a limit.
    #[test]
    fn a_party_larger_than_the_room_goes_to_review() {
        let mail = b"From: Kirsten Hansen <k.hansen@example.de>\r\nTo: anmeldung@example.org\r\n\
            Subject: Anmeldung\r\nMessage-ID: <class-1@example.de>\r\n\
            Content-Type: text/plain; charset=utf-8\r\n\r\n\
            Hiermit melde ich mich mit meiner Klasse an, wir sind insgesamt 12 Personen.\r\n\r\nKirsten Hansen\r\n";
        let mut confs = conferences();
        let ctx = |confs: &[ConferenceRef]| {
            understand(
                mail,
                &Context {
                    conferences: confs,
                    mailbox_address: "anmeldung@example.org",
                    thread_conference: None,
                    default_language: Language::De,
                },
            )
        };
        assert!(
            matches!(&ctx(&confs).action, Action::Register { attendees, .. } if attendees[0].party_size == 12)
        );
        confs[0].capacity = Some(10);
        let u = ctx(&confs);
        match &u.action {
            Action::Review { reason, conference } => {
                assert!(reason.contains("party of 12 for a room of 10"), "{reason}");
                assert_eq!(conference.as_deref(), Some("miko-2027"));
            }
            other => panic!("{other:?}"),
        }
        assert!(u.explanation.steps.iter().any(|s| s.rule == "capacity"));
        assert_eq!(never_seated(10, Some(10)), None);
        assert_eq!(never_seated(500, None), None);
    }

    const TURKISH_MAIL: &str = "From: Emre Dogan <emre@example.com.tr>\r\nTo: anmeldung@example.org\r\n\
        Subject: Konferans\r\nMessage-ID: <tr-1@example.com.tr>\r\n\
        Content-Type: text/plain; charset=utf-8\r\n\r\n\
        Merhaba,\r\n\r\nMigrationskonferenz'e katılmak istiyorum, Workshop 3 lütfen. \
        Eşim de benimle gelecek, ikimiz de çok heyecanlıyız.\r\n\r\nEmre Dogan\r\n";

    /// Adding a language is adding one file: with `tests/vocab/tr.txt` loaded
    /// beside German and English, a Turkish registration is read; without it,
    /// it goes to review naming the language.
    #[test]
    fn an_added_language_is_understood() {
        let confs = conferences();
        let ctx = Context {
            conferences: &confs,
            mailbox_address: "anmeldung@example.org",
            thread_conference: None,
            default_language: Language::De,
        };
        let builtin = understand(TURKISH_MAIL.as_bytes(), &ctx);
        match &builtin.action {
            Action::Review { reason, .. } => {
                assert!(reason.contains("written in Turkish"), "{reason}")
            }
            other => panic!("without a Turkish vocabulary: {other:?}"),
        }

        let tr = include_str!("../../tests/vocab/tr.txt");
        let v = Vocabulary::with(&[("tr", tr)]);
        assert!(v.problems().is_empty(), "{:#?}", v.problems());
        assert!(v.check_examples().is_empty(), "{:#?}", v.check_examples());
        assert_eq!(v.languages(), ["de", "en", "tr"]);
        let u = understand_with(TURKISH_MAIL.as_bytes(), &ctx, &v);
        match &u.action {
            Action::Register {
                conference,
                attendees,
            } => {
                assert_eq!(conference, "miko-2027");
                assert_eq!(attendees[0].workshops, ["w3"]);
                assert_eq!(attendees[0].email, "emre@example.com.tr");
            }
            other => panic!("with a Turkish vocabulary: {other:?}"),
        }
        let step = u
            .explanation
            .steps
            .iter()
            .find(|s| s.rule == "register")
            .expect("a register step");
        assert_eq!(step.language.as_deref(), Some("tr"));
        assert_eq!(
            step.phrase.as_deref(),
            Some("katılmak (istiyorum|isterim|istiyoruz)")
        );
        assert!(u.explanation.to_string().contains("katılmak istiyorum"));
    }

    #[test]
    fn the_explanation_reads_as_one_line() {
        let e = Explanation {
            steps: vec![
                Step {
                    rule: "cancel".into(),
                    phrase: Some("(sage|sagen) …15 ab".into()),
                    language: Some("de".into()),
                    text: Some("Ich sage leider ab.".into()),
                    note: None,
                },
                Step::logic("conference", "the subject names miko-2027"),
            ],
        };
        assert_eq!(
            e.to_string(),
            "cancel \"(sage|sagen) …15 ab\" (de) in «Ich sage leider ab.»; conference: the subject names miko-2027"
        );
    }
}
